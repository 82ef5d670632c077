//! Storing a connected account: tokens encrypted before they touch the database, one row per
//! platform account and client (a reconnect updates it), the next refresh scheduled; and
//! disconnecting one (the console's button and the API's `disconnect` both call [`disconnect`]).

use secrecy::ExposeSecret;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::domain::{AccountStatus, Platform};
use crate::platforms::{AccountInfo, TokenSet};
use crate::vault::{Aad, Vault};
use crate::webhooks::{self, EventType};

/// Tell the agency's webhook endpoints that an account needs reconnecting (its token was
/// refused for good), in the transaction that marked it.
pub async fn tell_needs_reconnecting(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Uuid,
    account: Uuid,
    platform: Platform,
    reason: &str,
) -> sqlx::Result<()> {
    let data = serde_json::json!({
        "account_id": account,
        "client_id": client,
        "platform": platform.as_str(),
        "reason": reason.chars().take(1000).collect::<String>(),
    });
    webhooks::emit(
        conn,
        Some(agency),
        EventType::AccountNeedsReconnecting,
        data,
    )
    .await?;
    Ok(())
}

/// Store (or update) the account behind a fresh authorization, in the caller's transaction.
/// A provider that sends no refresh token keeps the stored one (re-encrypted under the current
/// key with the rest of the row, so `keys rotate` sees the row as done).
#[allow(clippy::too_many_arguments)] // each is a distinct fact of the connection
pub async fn store_connection(
    conn: &mut PgConnection,
    vault: &Vault,
    agency: Uuid,
    client: Uuid,
    platform: Platform,
    info: &AccountInfo,
    tokens: &TokenSet,
    default_scopes: Vec<String>,
) -> anyhow::Result<Uuid> {
    let existing = sqlx::query!(
        "SELECT id, refresh_token_ct FROM social_accounts WHERE client_id = $1 AND platform = $2 AND platform_account_id = $3 FOR UPDATE",
        client,
        platform.as_str(),
        info.id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let reconnected = existing.is_some();
    let account = existing.as_ref().map_or_else(Uuid::now_v7, |e| e.id);
    let row = account.to_string();
    let aad = |column| Aad {
        table: "social_accounts",
        column,
        agency: Some(agency),
        row: &row,
    };
    let access_ct = vault.encrypt_str(tokens.access_token.expose_secret(), &aad("access_token_ct"));
    let refresh_ct = match (
        &tokens.refresh_token,
        existing.and_then(|e| e.refresh_token_ct),
    ) {
        (Some(new), _) => Some(vault.encrypt_str(new.expose_secret(), &aad("refresh_token_ct"))),
        (None, Some(old)) => {
            let plain = vault.decrypt(&old, &aad("refresh_token_ct"))?;
            Some(vault.encrypt(&plain, &aad("refresh_token_ct")))
        }
        (None, None) => None,
    };
    let scopes = if tokens.scopes.is_empty() {
        default_scopes
    } else {
        tokens.scopes.clone()
    };
    sqlx::query!(
        "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, display_name, access_token_ct,
                                      refresh_token_ct, key_id, token_expires_at, scopes, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10), $11, 'active')
         ON CONFLICT (id) DO UPDATE SET
             display_name = EXCLUDED.display_name, access_token_ct = EXCLUDED.access_token_ct,
             refresh_token_ct = EXCLUDED.refresh_token_ct, key_id = EXCLUDED.key_id,
             token_expires_at = EXCLUDED.token_expires_at, scopes = EXCLUDED.scopes,
             status = 'active', status_reason = NULL, connected_at = now(), updated_at = now()",
        account,
        agency,
        client,
        platform.as_str(),
        info.id,
        info.name,
        access_ct,
        refresh_ct,
        vault.current_key_id(),
        tokens.expires_in.map(|d| d.as_secs_f64()),
        &scopes,
    )
    .execute(&mut *conn)
    .await?;
    // renew ahead of expiry (a reconnect keeps an already scheduled refresh; the sweep catches the rest)
    if let Some(lifetime) = tokens.expires_in {
        crate::tokens::schedule(conn, agency, client, account, platform, lifetime).await?;
    }
    // a reconnect lets the posts held for this account go out
    crate::items::publications::release_held(conn, agency, None, Some(account)).await?;
    let data = serde_json::json!({
        "account_id": account,
        "client_id": client,
        "platform": platform.as_str(),
        "display_name": info.name,
        "reconnected": reconnected,
    });
    webhooks::emit(&mut *conn, Some(agency), EventType::AccountConnected, data).await?;
    Ok(account)
}

/// What [`disconnect`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnected {
    /// The account stopped posting; this many scheduled publications are held.
    Now { held: usize },
    /// It was disconnected already; nothing changed.
    Already,
}

/// Disconnect an account of `agency` (of `client` when given) in the caller's transaction: it
/// stops posting, its scheduled publications are held (not lost) with their jobs cancelled until
/// a reconnect releases them, and the move is audited. The encrypted tokens stay, so the row
/// keeps its history; nothing decrypts them while it is disconnected. `None`: no such account.
pub async fn disconnect(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    client: Option<Uuid>,
    account: Uuid,
    by: &str,
) -> sqlx::Result<Option<Disconnected>> {
    let Some(row) = sqlx::query!(
        r#"SELECT client_id, status AS "status: AccountStatus", platform AS "platform: Platform", display_name
           FROM social_accounts WHERE id = $1 AND agency_id = $2 AND ($3::uuid IS NULL OR client_id = $3)
           FOR UPDATE"#,
        account,
        agency,
        client
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    if row.status == AccountStatus::Disconnected {
        return Ok(Some(Disconnected::Already));
    }
    sqlx::query!(
        "UPDATE social_accounts SET status = 'disconnected', status_reason = left($2, 2000), updated_at = now()
         WHERE id = $1",
        account,
        format!("Disconnected {by}")
    )
    .execute(&mut *conn)
    .await?;
    let held = crate::items::publications::hold_account(
        conn,
        agency,
        account,
        "the account was disconnected",
    )
    .await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "account.disconnect")
            .target("social_account", account)
            .details(serde_json::json!({
                "client_id": row.client_id, "platform": row.platform, "display_name": row.display_name,
                "held_publications": held.len(),
            })),
    )
    .await?;
    Ok(Some(Disconnected::Now { held: held.len() }))
}
