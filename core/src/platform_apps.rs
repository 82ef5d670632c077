//! An agency's own OAuth app per platform. Agencies that registered their own app with a
//! platform (their brand on the consent screen, their own quotas) set it in the console; it takes
//! precedence over the deployment-wide app from the environment.
//!
//! The client secret is encrypted by the vault before it is stored, bound to its place
//! (`platform_apps.client_secret_ct`, the agency, the platform name as the row), and never leaves
//! this module except inside an [`OAuthApp`] handed to a connector: [`list`] reports only whether
//! one is set.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::domain::Platform;
use crate::platforms::{self, OAuthApp, PlatformsConfig};
use crate::vault::{Aad, Vault};

const TABLE: &str = "platform_apps";
const SECRET_COLUMN: &str = "client_secret_ct";
/// Platforms' client ids and secrets are short tokens; anything longer is a paste mistake.
const MAX_CLIENT_ID: usize = 500;
const MAX_SECRET: usize = 2000;

/// Where a secret lives, as `vault::ENCRYPTED` describes it for key rotation (row = platform).
fn aad(agency: Uuid, platform: Platform) -> Aad<'static> {
    Aad {
        table: TABLE,
        column: SECRET_COLUMN,
        agency: Some(agency),
        row: platform.as_str(),
    }
}

/// What the console may show about an agency's app: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSummary {
    pub platform: Platform,
    pub client_id: String,
    pub secret_set: bool,
    pub updated_at: DateTime<Utc>,
}

/// An app to store. `client_secret: None` keeps the stored secret (the form never echoes it).
pub struct NewApp<'a> {
    pub platform: Platform,
    pub client_id: &'a str,
    pub client_secret: Option<&'a SecretString>,
}

/// Why an app was not saved; each names the form field it is about.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("Enter the client id the platform gave your app.")]
    MissingClientId,
    #[error(
        "The client id must be at most {MAX_CLIENT_ID} characters without spaces or control characters."
    )]
    BadClientId,
    #[error("Enter the client secret: there is none stored for this platform yet.")]
    MissingSecret,
    #[error(
        "The client secret must be at most {MAX_SECRET} characters without spaces or control characters."
    )]
    BadSecret,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SaveError {
    /// The form field the message belongs to (`None` for a database failure).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            SaveError::MissingClientId | SaveError::BadClientId => Some("client_id"),
            SaveError::MissingSecret | SaveError::BadSecret => Some("client_secret"),
            SaveError::Database(_) => None,
        }
    }
}

fn token_like(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The agency's apps, one per platform that has one.
pub async fn list(pool: &PgPool, agency: Uuid) -> sqlx::Result<Vec<AppSummary>> {
    let rows = sqlx::query!(
        r#"SELECT platform AS "platform: Platform", client_id, octet_length(client_secret_ct) > 0 AS "secret_set!", updated_at
           FROM platform_apps WHERE agency_id = $1 ORDER BY platform"#,
        agency
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AppSummary {
            platform: r.platform,
            client_id: r.client_id,
            secret_set: r.secret_set,
            updated_at: r.updated_at,
        })
        .collect())
}

/// Store (or replace) the agency's app for a platform, audited. The secret is encrypted before
/// it reaches the database and appears in no log or audit entry.
pub async fn save(
    pool: &PgPool,
    vault: &Vault,
    actor: &Actor,
    agency: Uuid,
    app: NewApp<'_>,
) -> Result<(), SaveError> {
    let client_id = app.client_id.trim();
    if client_id.is_empty() {
        return Err(SaveError::MissingClientId);
    }
    if !token_like(client_id, MAX_CLIENT_ID) {
        return Err(SaveError::BadClientId);
    }
    let secret = app
        .client_secret
        .map(|s| s.expose_secret().trim())
        .filter(|s| !s.is_empty());
    if let Some(s) = secret
        && !token_like(s, MAX_SECRET)
    {
        return Err(SaveError::BadSecret);
    }
    let mut tx = pool.begin().await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT true AS "exists!" FROM platform_apps WHERE agency_id = $1 AND platform = $2 FOR UPDATE"#,
        agency,
        app.platform.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    match secret {
        Some(s) => {
            let ct = vault.encrypt_str(s, &aad(agency, app.platform));
            sqlx::query!(
                "INSERT INTO platform_apps (agency_id, platform, client_id, client_secret_ct, key_id)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (agency_id, platform) DO UPDATE SET
                     client_id = EXCLUDED.client_id, client_secret_ct = EXCLUDED.client_secret_ct,
                     key_id = EXCLUDED.key_id, updated_at = now()",
                agency,
                app.platform.as_str(),
                client_id,
                ct,
                vault.current_key_id(),
            )
            .execute(&mut *tx)
            .await?;
        }
        None if exists => {
            sqlx::query!(
                "UPDATE platform_apps SET client_id = $3, updated_at = now() WHERE agency_id = $1 AND platform = $2",
                agency,
                app.platform.as_str(),
                client_id,
            )
            .execute(&mut *tx)
            .await?;
        }
        None => return Err(SaveError::MissingSecret),
    }
    // the app changed: an earlier refusal of its credentials no longer says anything
    sqlx::query!(
        "DELETE FROM platform_app_refusals WHERE agency_id = $1 AND platform = $2",
        agency,
        app.platform.as_str()
    )
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        actor,
        Entry::new(Some(agency), "platform_app.save")
            .target("platform_app", app.platform)
            .details(serde_json::json!({
                "platform": app.platform,
                "client_id": client_id,
                "secret_changed": secret.is_some(),
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Remove the agency's app for a platform (the deployment-wide app, if any, applies again).
/// Returns whether there was one.
pub async fn remove(
    pool: &PgPool,
    actor: &Actor,
    agency: Uuid,
    platform: Platform,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query!(
        "DELETE FROM platform_apps WHERE agency_id = $1 AND platform = $2",
        agency,
        platform.as_str()
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if removed {
        sqlx::query!(
            "DELETE FROM platform_app_refusals WHERE agency_id = $1 AND platform = $2",
            agency,
            platform.as_str()
        )
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            actor,
            Entry::new(Some(agency), "platform_app.remove")
                .target("platform_app", platform)
                .details(serde_json::json!({ "platform": platform })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// The app to use for an agency on a platform: the agency's own (secret decrypted), else the
/// deployment-wide one. An agency app that cannot be decrypted is an error, never a silent
/// fallback: accounts connected through one app cannot be refreshed through another.
pub async fn resolve(
    pool: &PgPool,
    vault: &Vault,
    config: &PlatformsConfig,
    agency: Uuid,
    platform: Platform,
) -> anyhow::Result<Option<OAuthApp>> {
    let row = sqlx::query!(
        "SELECT client_id, client_secret_ct FROM platform_apps WHERE agency_id = $1 AND platform = $2",
        agency,
        platform.as_str()
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(config.app(platform));
    };
    let secret = vault
        .decrypt_string(&row.client_secret_ct, &aad(agency, platform))
        .map_err(|e| {
            anyhow::anyhow!("{TABLE}.{SECRET_COLUMN} of {platform} for agency {agency}: {e}")
        })?;
    Ok(Some(OAuthApp {
        client_id: row.client_id,
        client_secret: SecretString::from(secret.as_str().to_owned()),
    }))
}

/// A platform refused an app's own credentials for this agency (see [`record_outcome`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub platform: Platform,
    /// The agency's own app (Settings) or the deployment's (environment).
    pub own_app: bool,
    pub client_id: String,
    /// The platform's own words.
    pub message: String,
    pub refused_at: DateTime<Utc>,
}

/// The agency's platforms whose app credentials were refused and not since fixed.
pub async fn refusals(pool: &PgPool, agency: Uuid) -> sqlx::Result<Vec<Refusal>> {
    let rows = sqlx::query!(
        r#"SELECT platform AS "platform: Platform", own_app, client_id, message, refused_at
           FROM platform_app_refusals WHERE agency_id = $1 ORDER BY platform"#,
        agency
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Refusal {
            platform: r.platform,
            own_app: r.own_app,
            client_id: r.client_id,
            message: r.message,
            refused_at: r.refused_at,
        })
        .collect())
}

/// What an app's use at a platform's token endpoint (a refresh, a code exchange) says about
/// the app: a refusal of its credentials is kept for the settings page and the accounts it
/// affects; a success clears an earlier refusal. Other failures are about the account or the
/// moment, not the app, and change nothing here.
pub async fn record_outcome(
    pool: &PgPool,
    agency: Uuid,
    platform: Platform,
    app: &OAuthApp,
    failure: Option<&platforms::PlatformError>,
) -> sqlx::Result<()> {
    match failure {
        None => {
            sqlx::query!(
                "DELETE FROM platform_app_refusals WHERE agency_id = $1 AND platform = $2",
                agency,
                platform.as_str()
            )
            .execute(pool)
            .await?;
        }
        Some(platforms::PlatformError::AppCredentials(message)) => {
            sqlx::query!(
                "INSERT INTO platform_app_refusals (agency_id, platform, own_app, client_id, message)
                 SELECT $1, $2, EXISTS (SELECT 1 FROM platform_apps WHERE agency_id = $1 AND platform = $2 AND client_id = $3),
                        left($3, 500), left($4, 2000)
                 ON CONFLICT (agency_id, platform) DO UPDATE SET own_app = EXCLUDED.own_app,
                     client_id = EXCLUDED.client_id, message = EXCLUDED.message, refused_at = now()",
                agency,
                platform.as_str(),
                app.client_id,
                message
            )
            .execute(pool)
            .await?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// Platforms this agency can connect: a connector exists and there is an app for it (the
/// agency's own or the deployment's).
pub async fn connectable(
    pool: &PgPool,
    config: &PlatformsConfig,
    agency: Uuid,
) -> sqlx::Result<Vec<Platform>> {
    let own: Vec<Platform> = sqlx::query_scalar!(
        r#"SELECT platform AS "platform: Platform" FROM platform_apps WHERE agency_id = $1"#,
        agency
    )
    .fetch_all(pool)
    .await?;
    Ok(Platform::ALL
        .iter()
        .copied()
        .filter(|p| {
            platforms::connector(*p, config).is_some()
                && (own.contains(p) || config.app(*p).is_some())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_field() {
        assert_eq!(SaveError::MissingClientId.field(), Some("client_id"));
        assert_eq!(SaveError::BadSecret.field(), Some("client_secret"));
        assert!(token_like("abc-123_XYZ", 500));
        assert!(!token_like("has space", 500));
        assert!(!token_like("line\nbreak", 500));
        assert!(!token_like(&"x".repeat(501), 500));
    }
}
