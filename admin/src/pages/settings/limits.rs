//! Settings: Limit overrides per platform and window.

use super::*;

// ---------------------------------------------------------------------------------------------
// Limit overrides
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct LimitForm {
    #[serde(default)]
    platform: String,
    #[serde(default)]
    window_seconds: String,
    #[serde(default)]
    max_posts: String,
}

const MAX_OVERRIDE: i32 = 1_000_000;

pub async fn save_limit(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Form(f): Form<LimitForm>,
) -> AppResult<Response> {
    let platform = Platform::from_str(&f.platform).ok();
    let window = f.window_seconds.trim().parse::<i32>().ok();
    // only the windows the platform defaults define can be overridden
    let exists = match (platform, window) {
        (Some(p), Some(w)) => sqlx::query_scalar!(
            r#"SELECT true AS "exists!" FROM platform_limits WHERE platform = $1 AND window_seconds = $2"#,
            p.as_str(),
            w
        )
        .fetch_optional(&state.pool)
        .await?
        .is_some(),
        _ => false,
    };
    let (Some(platform), Some(window), true) = (platform, window, exists) else {
        let flash = Flash::error(
            "limit",
            "There is no such platform limit to override; reload the page.",
        );
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    let field = format!("limit-{platform}-{window}");
    let typed = f.max_posts.trim();
    let max_posts = if typed.is_empty() {
        None
    } else {
        match typed.parse::<i32>() {
            Ok(n) if (1..=MAX_OVERRIDE).contains(&n) => Some(n),
            _ => {
                let flash = Flash::error(
                    &field,
                    format!("Enter a whole number from 1 to {MAX_OVERRIDE}, or leave it empty for the default."),
                )
                .value(&field, typed);
                return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
            }
        }
    };
    let mut tx = state.pool.begin().await?;
    match max_posts {
        Some(n) => {
            sqlx::query!(
                "INSERT INTO platform_limit_overrides (agency_id, platform, window_seconds, max_posts) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (agency_id, platform, window_seconds) DO UPDATE SET max_posts = EXCLUDED.max_posts",
                user.agency_id,
                platform.as_str(),
                window,
                n
            )
            .execute(&mut *tx)
            .await?;
        }
        None => {
            sqlx::query!(
                "DELETE FROM platform_limit_overrides WHERE agency_id = $1 AND platform = $2 AND window_seconds = $3",
                user.agency_id,
                platform.as_str(),
                window
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "settings.limit")
            .target("platform_limit", format!("{platform}/{window}"))
            .details(serde_json::json!({ "platform": platform, "window_seconds": window, "max_posts": max_posts })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("limits"))
}
