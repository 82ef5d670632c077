//! The token lifecycle: refresh ahead of expiry, single-flight per account, rotation kept, and
//! only a definitive refusal marks an account `needs_reconnect`.
//!
//! Single flight: every refresh runs as the job `refresh_token` with the unique key
//! `refresh:<account>`, so the fleet has at most one unfinished refresh per account. A rotated
//! refresh token used twice makes many providers revoke the whole grant, so a run that froze
//! past its lease does not send its refresh (its fence checks the lease first), and what a
//! refresh stores is compare-and-set against the refresh token it used: a run that was
//! overtaken (frozen while its request was out) never overwrites newer tokens or marks an
//! account whose tokens another run already renewed.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::Platform;
use crate::fence::JobFence;
use crate::jobs::RefreshToken;
use crate::killswitch::Gate;
use crate::platforms::{self, NotSent, PlatformError, PlatformsConfig};
use crate::queue::job::{AccountTarget, Job};
use crate::queue::lease::Lease;
use crate::queue::{self, NewJob, RunAt, Scope};
use crate::vault::{Aad, Vault};

/// Refresh when this share of the token's lifetime has passed.
const REFRESH_AT: f64 = 0.8;

pub fn unique_key(account: Uuid) -> String {
    RefreshToken {
        account_id: account,
    }
    .unique_key()
    .expect("refresh jobs are unique per account")
}

/// The refresh job of an account, due at 80% of a token lifetime of `lifetime`.
pub fn refresh_job(
    agency: Uuid,
    client: Uuid,
    account: Uuid,
    platform: Platform,
    lifetime: Duration,
) -> NewJob {
    let target = AccountTarget {
        agency_id: agency,
        client_id: client,
        account_id: account,
        platform,
    };
    NewJob::typed(
        &RefreshToken {
            account_id: account,
        },
        target,
    )
    .run_at(RunAt::In(lifetime.mul_f64(REFRESH_AT)))
}

/// Enqueue the refresh of an account (inside the transaction that stored its tokens).
pub async fn schedule(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Uuid,
    account: Uuid,
    platform: Platform,
    lifetime: Duration,
) -> sqlx::Result<()> {
    queue::enqueue(
        conn,
        &refresh_job(agency, client, account, platform, lifetime),
    )
    .await
    .map(|_| ())
}

/// Catch anything a scheduled refresh missed: every active account whose token expires within
/// the hour gets a refresh now (the unique key keeps it single).
pub async fn sweep(pool: &PgPool) -> sqlx::Result<u64> {
    let due = sqlx::query!(
        r#"SELECT id, agency_id, client_id, platform AS "platform: Platform" FROM social_accounts
           WHERE status = 'active' AND refresh_token_ct IS NOT NULL AND token_expires_at < now() + interval '1 hour'"#
    )
    .fetch_all(pool)
    .await?;
    let jobs: Vec<NewJob> = due
        .iter()
        .map(|a| refresh_job(a.agency_id, a.client_id, a.id, a.platform, Duration::ZERO))
        .collect();
    if jobs.is_empty() {
        return Ok(0);
    }
    let mut conn = pool.acquire().await?;
    queue::enqueue_many(&mut conn, &jobs).await
}

/// What a refresh came to.
#[derive(Debug, PartialEq)]
pub enum Refreshed {
    /// New tokens stored; the next refresh is scheduled.
    Done,
    /// Nothing to do: the account is gone, not active, or has no refresh token.
    Skipped(&'static str),
    /// Try again later; the account stays connected.
    Retry(PlatformError),
    /// The platform refused for good: the account now needs reconnecting.
    NeedsReconnect(String),
    /// The job's run lost its lease before the refresh left: whoever holds it now refreshes.
    LeaseLost(String),
    /// The platform refused the app's own credentials: no retry can help and the account is
    /// not to blame. The refusal is recorded for the settings page and the platform's accounts
    /// ([`crate::platform_apps::refusals`]); the account stays connected, and the next sweep
    /// tries again (once the app is fixed, that refresh succeeds and clears the refusal).
    AppRefused(String),
}

fn aad<'a>(column: &'a str, agency: Uuid, row: &'a str) -> Aad<'a> {
    Aad {
        table: "social_accounts",
        column,
        agency: Some(agency),
        row,
    }
}

/// Refresh one account's tokens.
pub async fn refresh(
    pool: &PgPool,
    vault: &Vault,
    platforms: &PlatformsConfig,
    gate: &Arc<Gate>,
    lease: Option<&Lease>,
    account: Uuid,
) -> anyhow::Result<Refreshed> {
    let Some(a) = sqlx::query!(
        r#"SELECT agency_id, client_id, platform AS "platform: Platform", status, refresh_token_ct FROM social_accounts WHERE id = $1"#,
        account
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(Refreshed::Skipped("account no longer exists"));
    };
    if a.status != "active" {
        return Ok(Refreshed::Skipped("account is not active"));
    }
    let Some(refresh_ct) = a.refresh_token_ct else {
        return Ok(Refreshed::Skipped("no refresh token"));
    };
    let (Some(connector), Some(app)) = (
        platforms::connector(a.platform, platforms),
        crate::platform_apps::resolve(pool, vault, platforms, a.agency_id, a.platform).await?,
    ) else {
        return Ok(Refreshed::Retry(PlatformError::Transient(format!(
            "no app configured for {}",
            a.platform
        ))));
    };
    let row = account.to_string();
    let refresh_token =
        vault.decrypt_string(&refresh_ct, &aad("refresh_token_ct", a.agency_id, &row))?;
    let scope = Scope {
        agency_id: Some(a.agency_id),
        client_id: Some(a.client_id),
        account_id: Some(account),
        platform: Some(a.platform),
    };
    let fence = JobFence::new(lease, gate, scope, None);
    match platforms::Fence::check(&fence).await {
        Ok(()) => {}
        Err(PlatformError::NotSent(NotSent::LeaseLost(why))) => {
            return Ok(Refreshed::LeaseLost(why));
        }
        Err(e) => return Ok(Refreshed::Retry(PlatformError::Transient(e.to_string()))),
    }
    let result = connector.refresh(&app, &refresh_token).await;
    drop(fence);
    crate::platform_apps::record_outcome(
        pool,
        a.agency_id,
        a.platform,
        &app,
        result.as_ref().err(),
    )
    .await?;
    match result {
        Ok(tokens) => {
            let mut tx = pool.begin().await?;
            let access_ct = vault.encrypt_str(
                tokens.access_token.expose_secret(),
                &aad("access_token_ct", a.agency_id, &row),
            );
            // a provider that sends no new refresh token keeps the old one valid: never wipe it
            let new_refresh_ct = tokens.refresh_token.as_ref().map(|r| {
                vault.encrypt_str(
                    r.expose_secret(),
                    &aad("refresh_token_ct", a.agency_id, &row),
                )
            });
            // everything in the row moves to the current key together
            let kept_refresh_ct = match new_refresh_ct {
                Some(ct) => ct,
                None => {
                    vault.encrypt_str(&refresh_token, &aad("refresh_token_ct", a.agency_id, &row))
                }
            };
            let mut expected = refresh_ct;
            loop {
                let stored = sqlx::query!(
                    "UPDATE social_accounts SET access_token_ct = $2, refresh_token_ct = $3, key_id = $4,
                            token_expires_at = now() + make_interval(secs => $5), last_refreshed_at = now(), updated_at = now()
                     WHERE id = $1 AND refresh_token_ct = $6",
                    account,
                    access_ct,
                    kept_refresh_ct,
                    vault.current_key_id(),
                    tokens.expires_in.map(|d| d.as_secs_f64()),
                    expected,
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if stored > 0 {
                    break;
                }
                match still_stored(&mut tx, vault, account, a.agency_id, &refresh_token).await? {
                    // only re-encrypted meanwhile (a key rotation): the same token, store ours
                    Some(current) => expected = current,
                    None => {
                        tracing::warn!(%account, "refreshed, but the account's tokens were renewed meanwhile; kept the newer ones");
                        break;
                    }
                }
            }
            tx.commit().await?;
            Ok(Refreshed::Done)
        }
        Err(PlatformError::GrantRevoked(reason)) => {
            // only if the refused refresh token is still the account's: a run overtaken while
            // its request was out may be refused a token another run has already rotated
            let mut tx = pool.begin().await?;
            let Some(current) =
                still_stored(&mut tx, vault, account, a.agency_id, &refresh_token).await?
            else {
                tracing::warn!(%account, %reason, "refresh refused, but the account's tokens were renewed meanwhile");
                return Ok(Refreshed::Done);
            };
            let why = format!("The platform refused to refresh the connection: {reason}");
            // the status before, read in the same statement: the endpoints hear of the change once
            let before = sqlx::query_scalar!(
                "UPDATE social_accounts s SET status = 'needs_reconnect', status_reason = left($2, 2000), updated_at = now()
                 FROM (SELECT id, status FROM social_accounts WHERE id = $1) o
                 WHERE s.id = o.id AND s.refresh_token_ct = $3
                 RETURNING o.status",
                account,
                why,
                current
            )
            .fetch_optional(&mut *tx)
            .await?;
            if before.is_some_and(|b| b != "needs_reconnect") {
                crate::accounts::tell_needs_reconnecting(
                    &mut tx,
                    a.agency_id,
                    a.client_id,
                    account,
                    a.platform,
                    &why,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(Refreshed::NeedsReconnect(reason))
        }
        Err(PlatformError::AppCredentials(reason)) => Ok(Refreshed::AppRefused(reason)),
        Err(e) => Ok(Refreshed::Retry(e)),
    }
}

/// The account's stored refresh token (locked for the transaction), if it is still `used`; its
/// ciphertext then. `None` when another token replaced it (a refresh or a reconnect).
async fn still_stored(
    tx: &mut PgConnection,
    vault: &Vault,
    account: Uuid,
    agency: Uuid,
    used: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    let current = sqlx::query_scalar!(
        "SELECT refresh_token_ct FROM social_accounts WHERE id = $1 FOR UPDATE",
        account
    )
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    let Some(current) = current else {
        return Ok(None);
    };
    let row = account.to_string();
    let plain = vault.decrypt_string(&current, &aad("refresh_token_ct", agency, &row))?;
    Ok((plain.as_str() == used).then_some(current))
}

/// The next refresh after a successful one (its job completes and enqueues this one together,
/// since both carry the same unique key).
pub async fn next_refresh(pool: &PgPool, account: Uuid) -> sqlx::Result<Option<NewJob>> {
    let a = sqlx::query!(
        r#"SELECT agency_id, client_id, platform AS "platform: Platform",
                  extract(epoch FROM token_expires_at - now())::float8 AS lifetime_secs
           FROM social_accounts WHERE id = $1 AND status = 'active' AND refresh_token_ct IS NOT NULL"#,
        account
    )
    .fetch_optional(pool)
    .await?;
    Ok(a.and_then(|a| {
        let secs = a.lifetime_secs.filter(|s| *s > 0.0)?;
        Some(refresh_job(
            a.agency_id,
            a.client_id,
            account,
            a.platform,
            Duration::from_secs_f64(secs),
        ))
    }))
}
