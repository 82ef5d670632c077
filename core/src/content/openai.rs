//! Captions from any OpenAI-compatible chat completions endpoint (OpenAI, Groq, Ollama,
//! llama.cpp's server) by base URL, model and key.
//!
//! * Structured output: `response_format: {"type": "json_schema", "strict": true}` asking for
//!   exactly `{conservative, balanced, bold, headline}`; the answer is parsed strictly (unknown
//!   or missing fields, empty strings, a truncated answer → [`ProviderError::Malformed`]), and a
//!   `message.refusal` → [`ProviderError::Refused`]. The generate job re-moderates the text
//!   whatever the model promised.
//! * Transient failures (timeouts, connection errors, 5xx) are retried here a few times with
//!   backoff before the job's own retry takes over; a 429 is returned at once as
//!   [`ProviderError::RateLimited`] with the endpoint's `Retry-After`.
//! * Per agency: a GCRA limit on requests ([`crate::limits::Smoother`], shared by the fleet) and
//!   token budgets per UTC day and month, counted from `usage.total_tokens` in `ai_usage`. The
//!   agency's own budgets (`agency_settings`) win over the deployment's. Requests already in
//!   flight when a budget runs out may overshoot it by their own usage.

use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use url::Url;
use uuid::Uuid;

use super::provider::{
    Generated, GenerationRequest, Provider, ProviderError, Variant, VariantKind,
};
use crate::limits::{Rate, Smoother};

/// How to reach the endpoint and what to allow an agency.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Up to the version segment: `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`.
    pub base_url: Url,
    pub model: String,
    pub key: Option<SecretString>,
    /// The whole request, answer included.
    pub timeout: Duration,
    /// Extra attempts after a transient failure, inside one job attempt.
    pub retries: u32,
    /// First backoff between those attempts (doubled each time).
    pub retry_base: Duration,
    /// Requests per agency, smoothed across the fleet; `None` for no limit.
    pub rate: Option<Rate>,
    pub monthly_token_budget: Option<i64>,
    pub daily_token_budget: Option<i64>,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url.as_str())
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// The OpenAI-compatible provider.
pub struct OpenAiProvider {
    config: OpenAiConfig,
    http: reqwest::Client,
    pool: PgPool,
    smoother: Smoother,
    name: String,
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig, pool: PgPool, smoother: Smoother) -> OpenAiProvider {
        let http = reqwest::Client::builder()
            .user_agent(concat!("AutoSocial/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5).min(config.timeout))
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("static HTTP client configuration is valid");
        let name = format!("openai:{}", config.model);
        OpenAiProvider {
            config,
            http,
            pool,
            smoother,
            name,
        }
    }

    fn endpoint(&self) -> Url {
        let mut base = self.config.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join("chat/completions")
            .expect("a relative path joins onto an http(s) URL")
    }

    async fn check_budget(&self, agency: Uuid) -> Result<(), ProviderError> {
        let row = sqlx::query!(
            r#"SELECT
                 (SELECT coalesce(sum(total_tokens), 0)::int8 FROM ai_usage
                   WHERE agency_id = $1 AND day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS "month!",
                 (SELECT coalesce(sum(total_tokens), 0)::int8 FROM ai_usage
                   WHERE agency_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date) AS "today!",
                 (SELECT ai_monthly_token_budget FROM agency_settings WHERE agency_id = $1) AS monthly,
                 (SELECT ai_daily_token_budget FROM agency_settings WHERE agency_id = $1) AS daily"#,
            agency
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| ProviderError::Transient(format!("reading AI usage: {e}")))?;
        if let Some(budget) = row.monthly.or(self.config.monthly_token_budget)
            && row.month >= budget
        {
            return Err(ProviderError::Budget(format!(
                "{} of {budget} tokens used this month",
                row.month
            )));
        }
        if let Some(budget) = row.daily.or(self.config.daily_token_budget)
            && row.today >= budget
        {
            return Err(ProviderError::Budget(format!(
                "{} of {budget} tokens used today",
                row.today
            )));
        }
        Ok(())
    }

    async fn record_usage(&self, agency: Uuid, usage: &Usage) {
        let r = sqlx::query!(
            "INSERT INTO ai_usage (agency_id, day, requests, prompt_tokens, completion_tokens, total_tokens)
             VALUES ($1, (now() AT TIME ZONE 'UTC')::date, 1, $2, $3, $4)
             ON CONFLICT (agency_id, day) DO UPDATE SET
                 requests = ai_usage.requests + 1,
                 prompt_tokens = ai_usage.prompt_tokens + EXCLUDED.prompt_tokens,
                 completion_tokens = ai_usage.completion_tokens + EXCLUDED.completion_tokens,
                 total_tokens = ai_usage.total_tokens + EXCLUDED.total_tokens",
            agency,
            usage.prompt_tokens.unwrap_or(0) as i64,
            usage.completion_tokens.unwrap_or(0) as i64,
            usage.total_tokens as i64
        )
        .execute(&self.pool)
        .await;
        if let Err(e) = r {
            // the tokens are spent either way; losing the count only loosens the budget
            tracing::error!(%agency, error = %e, "recording AI token usage failed");
        }
    }

    /// One request and its classification. `Ok` carries the answer's text.
    async fn attempt(&self, body: &serde_json::Value) -> Result<Completion, ProviderError> {
        let mut req = self.http.post(self.endpoint()).json(body);
        if let Some(key) = &self.config.key {
            req = req.bearer_auth(key.expose_secret());
        }
        let resp = req.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "request failed"
            };
            ProviderError::Transient(format!("{what}: {}", e.without_url()))
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = resp.text().await.map_err(|e| {
            ProviderError::Transient(format!("reading the answer: {}", e.without_url()))
        })?;
        if status.as_u16() == 429 {
            return Err(ProviderError::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(30)),
            });
        }
        if status.is_server_error() || status.as_u16() == 408 {
            return Err(ProviderError::Transient(format!(
                "HTTP {status}: {}",
                error_message(&text)
            )));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(ProviderError::Config(format!(
                "the endpoint refused the key (HTTP {status}): {}",
                error_message(&text)
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Config(format!(
                "the endpoint refused the request (HTTP {status}): {}",
                error_message(&text)
            )));
        }
        serde_json::from_str::<Completion>(&text)
            .map_err(|e| ProviderError::Malformed(format!("not a chat completion: {e}")))
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate<'a>(
        &'a self,
        req: &'a GenerationRequest,
    ) -> BoxFuture<'a, Result<Generated, ProviderError>> {
        Box::pin(async move {
            let agency = req.agency_id;
            self.check_budget(agency).await?;
            if let Some(rate) = self.config.rate
                && let Err(wait) = self
                    .smoother
                    .try_acquire(&format!("ai:{agency}"), rate)
                    .await
            {
                return Err(ProviderError::RateLimited { retry_after: wait });
            }
            let body = request_body(&self.config.model, req);
            let mut delay = self.config.retry_base;
            let mut tries = 0;
            let completion = loop {
                match self.attempt(&body).await {
                    Err(ProviderError::Transient(why)) if tries < self.config.retries => {
                        tries += 1;
                        tracing::info!(%agency, attempt = tries, reason = %why, "AI request failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    other => break other?,
                }
            };
            if let Some(usage) = &completion.usage {
                self.record_usage(agency, usage).await;
            }
            parse_completion(completion)
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    Some(Duration::from_millis(secs.max(0) as u64))
}

/// The `error.message` of an OpenAI-style error body, or a bounded prefix of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// The JSON schema the answer must follow (strict mode: every property required, nothing else).
pub fn answer_schema() -> serde_json::Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    json!({
        "type": "object",
        "properties": {
            "conservative": s("a safe, understated caption"),
            "balanced": s("the caption we would normally post"),
            "bold": s("a punchy, attention-grabbing caption"),
            "headline": s("at most 8 words for an image card")
        },
        "required": ["conservative", "balanced", "bold", "headline"],
        "additionalProperties": false
    })
}

/// The prompt: brand voice and tone, banned terms, each platform's limit, the pillar, the CTA.
pub fn request_body(model: &str, req: &GenerationRequest) -> serde_json::Value {
    let mut system = format!(
        "You write social media captions for the brand \"{}\".",
        req.brand_name
    );
    if !req.voice.trim().is_empty() {
        system.push_str(&format!("\nBrand voice: {}", req.voice.trim()));
    }
    if !req.tone.trim().is_empty() {
        system.push_str(&format!("\nTone: {}", req.tone.trim()));
    }
    if !req.banned_terms.is_empty() {
        system.push_str(&format!(
            "\nNever use these words or phrases: {}.",
            req.banned_terms.join(", ")
        ));
    }
    system.push_str(
        "\nWrite three variants of one caption: conservative, balanced and bold, plus a short \
         headline for an image card. No hashtags (they are added afterwards). Answer with JSON only.",
    );
    let mut user = format!(
        "Brand: {}\nTopic: {}\nContent pillar: {}\nPost type: {}\nPublishing date: {}",
        req.brand_name,
        req.topic,
        req.pillar,
        req.content_type.as_str(),
        req.slot_date
    );
    if let Some(handle) = &req.handle {
        user.push_str(&format!("\nHandle: {handle}"));
    }
    if let Some(cta) = &req.cta {
        user.push_str(&format!("\nEnd with this call to action: {cta}"));
    }
    for p in &req.platforms {
        user.push_str(&format!(
            "\nPlatform {}: at most {} characters per caption",
            p.platform.label(),
            p.max_chars
        ));
    }
    if let Some(max) = req.max_chars() {
        user.push_str(&format!(
            "\nEvery caption must fit in {max} characters, call to action included."
        ));
    }
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user}
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "social_captions", "strict": true, "schema": answer_schema()}
        },
        "temperature": 0.7
    })
}

#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Message,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: u64,
}

/// What the model must answer, and nothing more.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Captions {
    conservative: String,
    balanced: String,
    bold: String,
    headline: String,
}

fn parse_completion(c: Completion) -> Result<Generated, ProviderError> {
    let choice = c
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::Malformed("the answer has no choices".into()))?;
    if let Some(refusal) = choice.message.refusal {
        return Err(ProviderError::Refused(refusal));
    }
    if choice.finish_reason.as_deref() == Some("length") {
        return Err(ProviderError::Malformed(
            "the answer was cut off at the token limit".into(),
        ));
    }
    if choice.finish_reason.as_deref() == Some("content_filter") {
        return Err(ProviderError::Refused(
            "the endpoint's content filter stopped the answer".into(),
        ));
    }
    let content = choice
        .message
        .content
        .ok_or_else(|| ProviderError::Malformed("the answer has no content".into()))?;
    let captions: Captions = serde_json::from_str(content.trim()).map_err(|e| {
        ProviderError::Malformed(format!("the captions are not the asked JSON: {e}"))
    })?;
    for (field, value) in [
        ("conservative", &captions.conservative),
        ("balanced", &captions.balanced),
        ("bold", &captions.bold),
        ("headline", &captions.headline),
    ] {
        if value.trim().is_empty() {
            return Err(ProviderError::Malformed(format!("`{field}` is empty")));
        }
    }
    Ok(Generated {
        variants: [
            Variant {
                kind: VariantKind::Conservative,
                caption: captions.conservative.trim().to_owned(),
            },
            Variant {
                kind: VariantKind::Balanced,
                caption: captions.balanced.trim().to_owned(),
            },
            Variant {
                kind: VariantKind::Bold,
                caption: captions.bold.trim().to_owned(),
            },
        ],
        headline: captions.headline.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn an_answer_with_an_extra_field_is_malformed() {
        let c: Completion = serde_json::from_value(json!({
            "choices": [{"message": {"content": "{\"conservative\":\"a\",\"balanced\":\"b\",\"bold\":\"c\",\"headline\":\"h\",\"mood\":\"x\"}", "refusal": null}, "finish_reason": "stop"}]
        }))
        .unwrap();
        let e = parse_completion(c).unwrap_err();
        assert!(
            matches!(e, ProviderError::Malformed(ref m) if m.contains("mood")),
            "{e}"
        );
    }
}
