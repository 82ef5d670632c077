//! An agency's webhook endpoints and their signing secrets: the only code that writes
//! `webhook_endpoints` and `webhook_secrets`, and the reads of the delivery log. Every function
//! is scoped by the agency; another agency's id is "not found". Changes are audited.
//!
//! A secret is `whsec_` + base64 of 32 random bytes (Standard Webhooks), shown once when it is
//! made, stored only encrypted (AAD: `webhook_secrets`, `secret_ct`, the agency, the row id).
//! Rotating keeps the previous secret for [`ROTATION_OVERLAP`], and deliveries meanwhile carry
//! a signature by each.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};
use url::Url;
use uuid::Uuid;

use super::EventType;
use crate::audit::{self, Actor, Entry};
use crate::net_guard::{self, Policy};
use crate::queue::{self, NewJob};
use crate::vault::{Aad, Vault};

/// What every signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest URL and description accepted.
pub const MAX_URL: usize = 2000;
pub const MAX_DESCRIPTION: usize = 300;

/// Where a secret's ciphertext lives (as `vault::ENCRYPTED` describes it for key rotation).
pub fn secret_aad(agency: Uuid, row: &str) -> Aad<'_> {
    Aad {
        table: "webhook_secrets",
        column: "secret_ct",
        agency: Some(agency),
        row,
    }
}

/// A fresh signing secret.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// A URL as typed, checked: parsed, at most [`MAX_URL`] long, and allowed by the address guard
/// as far as it can tell without resolving (https, no credentials, no private literal).
pub fn check_url(raw: &str, policy: Policy) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Give the endpoint's URL.".into());
    }
    if raw.len() > MAX_URL {
        return Err(format!("Use at most {MAX_URL} characters."));
    }
    let url = Url::parse(raw).map_err(|e| format!("This is not a URL ({e})."))?;
    net_guard::check_url(&url, policy).map_err(|e| {
        let mut m = e.to_string();
        if let Some(first) = m.get(..1) {
            m = first.to_uppercase() + &m[1..];
        }
        format!("{m}.")
    })?;
    if url.fragment().is_some() {
        return Err("Remove the #fragment: it is never sent.".into());
    }
    Ok(url)
}

/// A description as typed, checked.
pub fn check_description(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(format!("Use at most {MAX_DESCRIPTION} characters."));
    }
    if d.chars().any(char::is_control) {
        return Err("The description cannot contain control characters.".into());
    }
    Ok(d.to_owned())
}

/// Event type names as given, checked: at least one, each known; duplicates folded.
pub fn check_events<S: AsRef<str>>(names: &[S]) -> Result<Vec<EventType>, String> {
    let mut out: Vec<EventType> = Vec::new();
    let mut unknown = Vec::new();
    for n in names {
        match n.as_ref().parse::<EventType>() {
            Ok(t) if !out.contains(&t) => out.push(t),
            Ok(_) => {}
            Err(()) => unknown.push(n.as_ref().chars().take(60).collect::<String>()),
        }
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(format!(
            "Unknown event type {}; the types are {}.",
            unknown
                .iter()
                .map(|u| format!("“{u}”"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        ));
    }
    if out.is_empty() {
        return Err("Choose at least one event type.".into());
    }
    out.sort_by_key(|t| EventType::ALL.iter().position(|a| a == t));
    Ok(out)
}

fn names(events: &[EventType]) -> Vec<String> {
    events.iter().map(|t| t.as_str().to_owned()).collect()
}

/// An endpoint as the console and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it is disabled (by a person, or by the system after it kept failing).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when every attempt failed (cleared by a success).
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when a previous secret still signs (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of a new endpoint, checked.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub url: &'a Url,
    pub description: &'a str,
    pub events: &'a [EventType],
}

/// An endpoint just created: its signing secret, shown once.
#[derive(Debug)]
pub struct Created {
    pub id: Uuid,
    pub secret: String,
}

async fn store_secret(
    conn: &mut PgConnection,
    vault: &Vault,
    agency: Uuid,
    endpoint: Uuid,
) -> sqlx::Result<String> {
    let secret = new_secret();
    let id = Uuid::now_v7();
    let row = id.to_string();
    let ct = vault.encrypt_str(&secret, &secret_aad(agency, &row));
    sqlx::query!(
        "INSERT INTO webhook_secrets (id, agency_id, endpoint_id, secret_ct, key_id) VALUES ($1, $2, $3, $4, $5)",
        id,
        agency,
        endpoint,
        ct,
        vault.current_key_id()
    )
    .execute(&mut *conn)
    .await?;
    Ok(secret)
}

/// Create an endpoint with its first secret, audited, in the caller's transaction.
pub async fn create(
    conn: &mut PgConnection,
    vault: &Vault,
    actor: &Actor,
    agency: Uuid,
    new: &NewEndpoint<'_>,
) -> sqlx::Result<Created> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO webhook_endpoints (id, agency_id, url, description, event_types, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        agency,
        new.url.as_str(),
        new.description,
        &names(new.events),
        actor.user_id
    )
    .execute(&mut *conn)
    .await?;
    let secret = store_secret(conn, vault, agency, id).await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "webhook.create")
            .target("webhook_endpoint", id)
            .details(json!({ "url": new.url.as_str(), "events": names(new.events) })),
    )
    .await?;
    Ok(Created { id, secret })
}

/// The changes to an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct Change<'a> {
    pub url: Option<&'a Url>,
    pub description: Option<&'a str>,
    pub events: Option<&'a [EventType]>,
    /// `Some(true)` enables (clearing the reason and the failure streak), `Some(false)`
    /// disables with the actor named in the reason.
    pub enabled: Option<bool>,
}

/// Change an endpoint of `agency`, audited. `false`: no such endpoint.
pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    id: Uuid,
    change: &Change<'_>,
) -> sqlx::Result<bool> {
    let reason = format!("Disabled by {}.", actor.label);
    let events = change.events.map(names);
    let done = sqlx::query!(
        "UPDATE webhook_endpoints SET
             url = coalesce($3, url),
             description = coalesce($4, description),
             event_types = coalesce($5, event_types),
             disabled_at = CASE WHEN $6::bool IS NULL THEN disabled_at
                                WHEN $6 THEN NULL
                                ELSE coalesce(disabled_at, now()) END,
             disabled_reason = CASE WHEN $6::bool IS NULL THEN disabled_reason
                                    WHEN $6 THEN NULL
                                    ELSE coalesce(disabled_reason, $7) END,
             failing_since = CASE WHEN $6::bool THEN NULL ELSE failing_since END,
             updated_at = now()
         WHERE id = $1 AND agency_id = $2",
        id,
        agency,
        change.url.map(Url::as_str),
        change.description,
        events.as_deref(),
        change.enabled,
        reason
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let action = match change.enabled {
        Some(true) if change.url.is_none() && change.events.is_none() => "webhook.enable",
        Some(false) if change.url.is_none() && change.events.is_none() => "webhook.disable",
        _ => "webhook.update",
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), action)
            .target("webhook_endpoint", id)
            .details(json!({
                "url": change.url.map(Url::as_str),
                "events": events,
                "enabled": change.enabled,
            })),
    )
    .await?;
    Ok(true)
}

/// Delete an endpoint (its secrets and delivery log go with it), audited. `false`: no such
/// endpoint.
pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    let Some(url) = sqlx::query_scalar!(
        "DELETE FROM webhook_endpoints WHERE id = $1 AND agency_id = $2 RETURNING url",
        id,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(false);
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "webhook.delete")
            .target("webhook_endpoint", id)
            .details(json!({ "url": url })),
    )
    .await?;
    Ok(true)
}

/// Rotate an endpoint's secret: a new one signs from now on, the current one keeps signing for
/// [`ROTATION_OVERLAP`], older ones stop. Returns the new secret (shown once); `None`: no such
/// endpoint.
pub async fn rotate(
    conn: &mut PgConnection,
    vault: &Vault,
    actor: &Actor,
    agency: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<String>> {
    let found = sqlx::query_scalar!(
        "SELECT id FROM webhook_endpoints WHERE id = $1 AND agency_id = $2 FOR UPDATE",
        id,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?;
    if found.is_none() {
        return Ok(None);
    }
    // a secret already on its way out stops now: two secrets at most
    sqlx::query!(
        "DELETE FROM webhook_secrets WHERE endpoint_id = $1 AND agency_id = $2 AND expires_at IS NOT NULL",
        id,
        agency
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE webhook_secrets SET expires_at = now() + make_interval(secs => $3)
         WHERE endpoint_id = $1 AND agency_id = $2 AND expires_at IS NULL",
        id,
        agency,
        ROTATION_OVERLAP.as_secs_f64()
    )
    .execute(&mut *conn)
    .await?;
    let secret = store_secret(conn, vault, agency, id).await?;
    sqlx::query!(
        "UPDATE webhook_endpoints SET updated_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "webhook.rotate_secret").target("webhook_endpoint", id),
    )
    .await?;
    Ok(Some(secret))
}

/// The secrets that sign a delivery to `endpoint` now, newest first (two during a rotation).
pub async fn signing_secrets(
    conn: impl PgExecutor<'_>,
    vault: &Vault,
    agency: Uuid,
    endpoint: Uuid,
) -> anyhow::Result<Vec<zeroize::Zeroizing<String>>> {
    let rows = sqlx::query!(
        "SELECT id, secret_ct FROM webhook_secrets
         WHERE endpoint_id = $1 AND agency_id = $2 AND (expires_at IS NULL OR expires_at > now())
         ORDER BY created_at DESC, id DESC",
        endpoint,
        agency
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let row = r.id.to_string();
            Ok(vault.decrypt_string(&r.secret_ct, &secret_aad(agency, &row))?)
        })
        .collect()
}

/// Every endpoint of `agency`, newest first.
pub async fn list(conn: impl PgExecutor<'_>, agency: Uuid) -> sqlx::Result<Vec<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        r#"SELECT e.id, e.url, e.description, e.event_types, e.disabled_at IS NULL AS "enabled!",
                  e.disabled_reason, e.disabled_at, e.failing_since,
                  (SELECT max(s.expires_at) FROM webhook_secrets s
                   WHERE s.endpoint_id = e.id AND s.expires_at > now()) AS previous_secret_expires_at,
                  e.created_at, e.updated_at
           FROM webhook_endpoints e WHERE e.agency_id = $1
           ORDER BY e.created_at DESC, e.id DESC"#,
        agency
    )
    .fetch_all(conn)
    .await
}

/// One endpoint of `agency`.
pub async fn get(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as!(
        Endpoint,
        r#"SELECT e.id, e.url, e.description, e.event_types, e.disabled_at IS NULL AS "enabled!",
                  e.disabled_reason, e.disabled_at, e.failing_since,
                  (SELECT max(s.expires_at) FROM webhook_secrets s
                   WHERE s.endpoint_id = e.id AND s.expires_at > now()) AS previous_secret_expires_at,
                  e.created_at, e.updated_at
           FROM webhook_endpoints e WHERE e.id = $1 AND e.agency_id = $2"#,
        id,
        agency
    )
    .fetch_optional(conn)
    .await
}

/// One delivery of an endpoint's log.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The `webhook-id` every attempt carries.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i16>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i32>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A page of an endpoint's deliveries, newest first, older than `before` (`(created_at, id)`).
pub async fn deliveries(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    endpoint: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as!(
        Delivery,
        r#"SELECT d.id, d.endpoint_id, d.event_id, ev.event_type, d.state, d.attempts, d.last_status, d.last_error,
                  d.last_attempt_at,
                  (SELECT a.duration_ms FROM webhook_attempts a WHERE a.delivery_id = d.id
                   ORDER BY a.attempt DESC, a.id DESC LIMIT 1) AS last_duration_ms,
                  d.delivered_at, d.created_at
           FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
           WHERE d.endpoint_id = $1 AND d.agency_id = $2
             AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4))
           ORDER BY d.created_at DESC, d.id DESC
           LIMIT $5"#,
        endpoint,
        agency,
        before.map(|b| b.0),
        before.map(|b| b.1).unwrap_or_default(),
        limit
    )
    .fetch_all(conn)
    .await
}

/// One delivery of `agency`.
pub async fn delivery(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Delivery>> {
    sqlx::query_as!(
        Delivery,
        r#"SELECT d.id, d.endpoint_id, d.event_id, ev.event_type, d.state, d.attempts, d.last_status, d.last_error,
                  d.last_attempt_at,
                  (SELECT a.duration_ms FROM webhook_attempts a WHERE a.delivery_id = d.id
                   ORDER BY a.attempt DESC, a.id DESC LIMIT 1) AS last_duration_ms,
                  d.delivered_at, d.created_at
           FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
           WHERE d.id = $1 AND d.agency_id = $2"#,
        id,
        agency
    )
    .fetch_optional(conn)
    .await
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i16>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// Every attempt of a delivery of `agency`, in order.
pub async fn attempts(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    delivery: Uuid,
) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as!(
        Attempt,
        "SELECT attempt, attempted_at, status_code, duration_ms, error, response_excerpt
         FROM webhook_attempts WHERE delivery_id = $1 AND agency_id = $2
         ORDER BY attempt, id",
        delivery,
        agency
    )
    .fetch_all(conn)
    .await
}

/// Why a delivery cannot be sent again.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("no such delivery")]
    NotFound,
    #[error("the endpoint is disabled; enable it first")]
    Disabled,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Send a delivery of `agency` again (same event, same `webhook-id`), audited. A delivery whose
/// job is still unfinished keeps that job.
pub async fn redeliver(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    delivery: Uuid,
) -> Result<(), RedeliverError> {
    let Some(row) = sqlx::query!(
        r#"SELECT d.endpoint_id, e.disabled_at IS NULL AS "enabled!"
           FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
           WHERE d.id = $1 AND d.agency_id = $2 FOR UPDATE OF d"#,
        delivery,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Err(RedeliverError::NotFound);
    };
    if !row.enabled {
        return Err(RedeliverError::Disabled);
    }
    sqlx::query!(
        "UPDATE webhook_deliveries SET state = 'pending', delivered_at = NULL WHERE id = $1",
        delivery
    )
    .execute(&mut *conn)
    .await?;
    let job = NewJob::typed(
        &crate::jobs::WebhookDelivery {
            delivery_id: delivery,
        },
        crate::queue::job::AgencyTarget { agency_id: agency },
    );
    queue::enqueue(conn, &job).await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "webhook.redeliver")
            .target("webhook_delivery", delivery)
            .details(json!({ "endpoint": row.endpoint_id })),
    )
    .await?;
    Ok(())
}

/// Queue a `webhook.test` event to one live endpoint of `agency`. `None`: no such live endpoint.
pub async fn send_test(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    endpoint: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    let data = json!({ "message": "A test event sent from AutoSocial.", "endpoint_id": endpoint });
    let Some(event) =
        super::outbox::emit_to(&mut *conn, agency, endpoint, super::TEST_EVENT, data).await?
    else {
        return Ok(None);
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "webhook.test")
            .target("webhook_endpoint", endpoint)
            .details(json!({ "event": event })),
    )
    .await?;
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_whsec_and_32_bytes_of_standard_base64() {
        let s = new_secret();
        let raw = STANDARD
            .decode(s.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(new_secret(), s);
    }

    #[test]
    fn urls_and_events_are_checked_with_messages() {
        let strict = Policy::default();
        assert!(check_url("https://hooks.example.com/in", strict).is_ok());
        assert!(
            check_url("http://hooks.example.com/in", strict)
                .unwrap_err()
                .contains("https")
        );
        assert!(
            check_url("https://10.0.0.1/in", strict)
                .unwrap_err()
                .contains("private")
        );
        assert!(check_url("", strict).unwrap_err().contains("Give"));
        assert!(check_url("not a url", strict).is_err());
        assert_eq!(
            check_events(&["item.created", "item.created", "killswitch.engaged"]).unwrap(),
            vec![EventType::ItemCreated, EventType::KillswitchEngaged]
        );
        assert!(
            check_events(&["item.deleted"])
                .unwrap_err()
                .contains("item.deleted")
        );
        assert!(check_events::<&str>(&[]).unwrap_err().contains("at least"));
    }
}
