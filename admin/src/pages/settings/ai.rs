//! Settings: AI provider: the agency's key and model.

use super::*;

// ---------------------------------------------------------------------------------------------
// AI provider
// ---------------------------------------------------------------------------------------------

/// The AI form. No `Debug`: it holds the API key.
#[derive(Deserialize)]
pub struct AiForm {
    #[serde(default)]
    ai_provider: String,
    #[serde(default)]
    ai_base_url: String,
    #[serde(default)]
    ai_model: String,
    #[serde(default)]
    ai_api_key: String,
    #[serde(default)]
    ai_clear_key: Option<String>,
}

struct ValidAi {
    provider: &'static str,
    base_url: Option<String>,
    model: Option<String>,
    key: KeyChange,
}

enum KeyChange {
    Keep,
    Set(String),
    Remove,
}

impl AiForm {
    fn validate(&self) -> Result<ValidAi, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let provider = match self.ai_provider.as_str() {
            "template" => "template",
            "openai" => "openai",
            _ => {
                errors.insert(
                    "ai-provider".into(),
                    "Choose the built-in templates or an OpenAI-compatible endpoint.".into(),
                );
                "template"
            }
        };
        let base_url = self.ai_base_url.trim();
        let base_url = if base_url.is_empty() {
            None
        } else {
            match url::Url::parse(base_url) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && base_url.len() <= 500 =>
                {
                    Some(base_url.trim_end_matches('/').to_owned())
                }
                _ => {
                    errors.insert(
                        "ai-base-url".into(),
                        "Enter an http:// or https:// URL with a host and no credentials, e.g. https://api.openai.com/v1.".into(),
                    );
                    None
                }
            }
        };
        let model = self.ai_model.trim();
        let model = if model.is_empty() {
            None
        } else if model.chars().count() > 200 || model.chars().any(char::is_control) {
            errors.insert(
                "ai-model".into(),
                "Use at most 200 characters without control characters.".into(),
            );
            None
        } else {
            Some(model.to_owned())
        };
        if provider == "openai" {
            if base_url.is_none() && !errors.contains_key("ai-base-url") {
                errors.insert(
                    "ai-base-url".into(),
                    "An OpenAI-compatible provider needs its base URL.".into(),
                );
            }
            if model.is_none() && !errors.contains_key("ai-model") {
                errors.insert(
                    "ai-model".into(),
                    "An OpenAI-compatible provider needs a model name.".into(),
                );
            }
        }
        let key = self.ai_api_key.trim();
        let key = match (key.is_empty(), self.ai_clear_key.is_some()) {
            (true, false) => KeyChange::Keep,
            (true, true) => KeyChange::Remove,
            (false, true) => {
                errors.insert(
                    "ai-key".into(),
                    "Either enter a new key or tick “remove”, not both.".into(),
                );
                KeyChange::Keep
            }
            (false, false)
                if key.len() > 500 || key.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                errors.insert(
                    "ai-key".into(),
                    "The key must be at most 500 characters without spaces.".into(),
                );
                KeyChange::Keep
            }
            (false, false) => KeyChange::Set(key.to_owned()),
        };
        if errors.is_empty() {
            Ok(ValidAi {
                provider,
                base_url,
                model,
                key,
            })
        } else {
            Err(errors)
        }
    }
}

pub async fn save_ai(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Form(f): Form<AiForm>,
) -> AppResult<Response> {
    let v = match f.validate() {
        Ok(v) => v,
        Err(errors) => {
            let flash = Flash {
                errors,
                ..Flash::default()
            }
            .value("ai-provider", &f.ai_provider)
            .value("ai-base-url", &f.ai_base_url)
            .value("ai-model", &f.ai_model);
            return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
        }
    };
    let agency = user.agency_id;
    let row = agency.to_string();
    // same place as `vault::ENCRYPTED` gives key rotation: row = the agency id
    let aad = Aad {
        table: "agency_settings",
        column: "ai_api_key_ct",
        agency: Some(agency),
        row: &row,
    };
    let (set_key, ct, key_id) = match &v.key {
        KeyChange::Keep => (false, None, None),
        KeyChange::Set(k) => (
            true,
            Some(state.vault.encrypt_str(k, &aad)),
            Some(state.vault.current_key_id().to_owned()),
        ),
        KeyChange::Remove => (true, None, None),
    };
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO agency_settings (agency_id) VALUES ($1) ON CONFLICT DO NOTHING",
        agency
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE agency_settings SET ai_provider = $2, ai_base_url = $3, ai_model = $4,
                ai_api_key_ct = CASE WHEN $5 THEN $6 ELSE ai_api_key_ct END,
                ai_key_id = CASE WHEN $5 THEN $7 ELSE ai_key_id END,
                updated_at = now()
         WHERE agency_id = $1",
        agency,
        v.provider,
        v.base_url,
        v.model,
        set_key,
        ct,
        key_id,
    )
    .execute(&mut *tx)
    .await?;
    let key = match v.key {
        KeyChange::Keep => "kept",
        KeyChange::Set(_) => "replaced",
        KeyChange::Remove => "removed",
    };
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "settings.ai")
            .target("agency", agency)
            .details(serde_json::json!({ "provider": v.provider, "base_url": v.base_url, "model": v.model, "api_key": key })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("ai"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ai(provider: &str, url: &str, model: &str, key: &str, clear: bool) -> AiForm {
        AiForm {
            ai_provider: provider.into(),
            ai_base_url: url.into(),
            ai_model: model.into(),
            ai_api_key: key.into(),
            ai_clear_key: clear.then(|| "yes".into()),
        }
    }

    #[test]
    fn ai_settings_are_validated_per_field() {
        let e = ai("openai", "", "", "", false).validate().err().unwrap();
        assert!(e.contains_key("ai-base-url") && e.contains_key("ai-model"));
        let e = ai("openai", "https://u:p@x.test/v1", "m", "", false)
            .validate()
            .err()
            .unwrap();
        assert!(e["ai-base-url"].contains("no credentials"));
        let e = ai("template", "", "", "k", true).validate().err().unwrap();
        assert!(e.contains_key("ai-key"));
        let ok = ai(
            "openai",
            "https://api.groq.com/openai/v1/",
            "llama",
            "gsk_1",
            false,
        )
        .validate()
        .ok()
        .unwrap();
        assert_eq!(
            ok.base_url.as_deref(),
            Some("https://api.groq.com/openai/v1")
        );
        assert!(matches!(ok.key, KeyChange::Set(ref k) if k == "gsk_1"));
    }
}
