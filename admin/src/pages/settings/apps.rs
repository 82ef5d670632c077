//! Settings: Platform apps: an agency's own OAuth app per platform.

use super::*;

// ---------------------------------------------------------------------------------------------
// Platform apps
// ---------------------------------------------------------------------------------------------

/// The app form. No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct AppForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

fn platform_of(s: &str) -> AppResult<Platform> {
    Platform::from_str(s).map_err(|_| AppError::NotFound)
}

pub async fn save_app(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Path(platform): Path<String>,
    Form(f): Form<AppForm>,
) -> AppResult<Response> {
    let platform = platform_of(&platform)?;
    let secret = SecretString::from(f.client_secret);
    let saved = platform_apps::save(
        &state.pool,
        &state.vault,
        &user.actor(),
        user.agency_id,
        NewApp {
            platform,
            client_id: &f.client_id,
            client_secret: Some(&secret),
        },
    )
    .await;
    match saved {
        Ok(()) => Ok(back("apps")),
        Err(e) => match e.field() {
            Some(field) => {
                let id_field = format!("app-{platform}-client_id");
                let flash = Flash::error(format!("app-{platform}-{field}"), e.to_string())
                    .value(id_field, &f.client_id);
                page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await
            }
            None => Err(anyhow::Error::from(e).into()),
        },
    }
}

pub async fn remove_app(
    State(state): State<AppState>,
    user: Owner,
    Path(platform): Path<String>,
) -> AppResult<Response> {
    let platform = platform_of(&platform)?;
    platform_apps::remove(&state.pool, &user.actor(), user.agency_id, platform).await?;
    Ok(back("apps"))
}
