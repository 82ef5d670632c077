//! Sending one delivery: the body `{"type", "timestamp", "data"}`, signed per Standard Webhooks
//! (`webhook-id` = the event's id, stable over retries and redeliveries; `webhook-timestamp` =
//! the attempt's Unix time; `webhook-signature` = `v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">` under each live secret's decoded bytes, space-separated), POSTed
//! through the address guard with a 10-second timeout. A 2xx is delivered; anything else is a
//! failed attempt, retried by the `webhook` job's backoff until its attempts run out.
//!
//! Every attempt is logged (status, duration, error, the first KiB of the answer). An endpoint
//! whose attempts all failed for [`DISABLE_AFTER`] is disabled with the reason, and the agency
//! is told through its audit log and the endpoint's row in the console.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::endpoints::{SECRET_PREFIX, signing_secrets};
use crate::audit::{self, Actor, Entry};
use crate::net_guard::{self, Policy};
use crate::vault::Vault;

/// The whole exchange with a receiver, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a receiver's answer is kept in the log.
pub const EXCERPT_BYTES: usize = 1024;
/// An endpoint failing every attempt for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What the `webhook` job needs: the guarded HTTP client and the vault.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    vault: Arc<Vault>,
    policy: Policy,
}

impl Sender {
    pub fn new(vault: Arc<Vault>, policy: Policy) -> Sender {
        Sender {
            client: net_guard::client(policy, TIMEOUT),
            vault,
            policy,
        }
    }
}

/// The `webhook-signature` header's value for a message, one `v1,` signature per secret.
/// A secret that is not `whsec_` + base64 signs with its raw bytes (never the case for ours).
pub fn sign(secrets: &[impl AsRef<str>], id: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut out = Vec::with_capacity(secrets.len());
    for s in secrets {
        let s = s.as_ref();
        let key = s
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .unwrap_or_else(|| s.as_bytes().to_vec());
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        out.push(format!(
            "v1,{}",
            STANDARD.encode(mac.finalize().into_bytes())
        ));
    }
    out.join(" ")
}

/// What became of a run of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The receiver answered 2xx.
    Done,
    /// Nothing to send: the delivery is gone (its endpoint deleted), already delivered, or its
    /// endpoint disabled.
    Skipped(String),
    /// The attempt failed and another may follow.
    Retry(String),
    /// The attempt failed and no other follows (attempts spent, or the endpoint was disabled).
    Failed(String),
}

/// The answer of one attempt.
struct Answer {
    status: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    duration: Duration,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    fn reason(&self) -> String {
        match (&self.status, &self.error) {
            (_, Some(e)) => e.clone(),
            (Some(s), None) => format!("the endpoint answered {s}"),
            (None, None) => "no answer".into(),
        }
    }
}

/// An error's chain, without the URL (which the log shows elsewhere), bounded.
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if e.is_timeout() {
        parts.push(format!("no answer within {} s", TIMEOUT.as_secs()));
    } else if e.is_connect() {
        parts.push("could not connect".to_owned());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        parts.push("the request failed".to_owned());
    }
    let joined = parts.join(": ");
    joined.chars().take(900).collect()
}

async fn post(
    sender: &Sender,
    url: &str,
    headers: [(&'static str, String); 3],
    body: Vec<u8>,
) -> Answer {
    let started = Instant::now();
    let url = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Answer {
                status: None,
                error: Some(format!("the endpoint's URL does not parse: {e}")),
                excerpt: None,
                duration: started.elapsed(),
            };
        }
    };
    if let Err(e) = net_guard::check_url(&url, sender.policy) {
        return Answer {
            status: None,
            error: Some(format!("refused by the address guard: {e}")),
            excerpt: None,
            duration: started.elapsed(),
        };
    }
    let mut req = sender
        .client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let mut resp = match req.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: None,
                error: Some(describe(&e)),
                excerpt: None,
                duration: started.elapsed(),
            };
        }
    };
    let status = resp.status().as_u16();
    // the first KiB of the answer, read within the same timeout; the rest is not waited for
    let mut kept: Vec<u8> = Vec::new();
    while kept.len() < EXCERPT_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => kept.extend_from_slice(&c[..c.len().min(EXCERPT_BYTES - kept.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    let mut excerpt = String::from_utf8_lossy(&kept).into_owned();
    while excerpt.len() > EXCERPT_BYTES {
        excerpt.pop();
    }
    Answer {
        status: Some(status),
        error: None,
        excerpt: (!excerpt.is_empty()).then_some(excerpt),
        duration: started.elapsed(),
    }
}

/// Run attempt `attempt` (of at most `max_attempts`) of a delivery: send it and record what
/// happened. Safe to run again after a crash (the receiver dedupes by `webhook-id`).
pub async fn deliver(
    pool: &PgPool,
    sender: &Sender,
    delivery: Uuid,
    attempt: i32,
    max_attempts: i32,
) -> anyhow::Result<Delivered> {
    let Some(d) = sqlx::query!(
        r#"SELECT d.agency_id, d.endpoint_id, d.state, e.url, e.disabled_at IS NOT NULL AS "disabled!",
                  ev.id AS event_id, ev.event_type, ev.data, ev.created_at
           FROM webhook_deliveries d
           JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.agency_id = d.agency_id
           JOIN webhook_events ev ON ev.id = d.event_id
           WHERE d.id = $1"#,
        delivery
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(Delivered::Skipped(
            "the delivery is gone (its endpoint was deleted)".into(),
        ));
    };
    if d.state == "delivered" {
        return Ok(Delivered::Skipped("delivered already".into()));
    }
    if d.disabled {
        sqlx::query!(
            "UPDATE webhook_deliveries SET state = 'failed', last_error = 'The endpoint is disabled.'
             WHERE id = $1 AND state = 'pending'",
            delivery
        )
        .execute(pool)
        .await?;
        return Ok(Delivered::Skipped("the endpoint is disabled".into()));
    }
    let secrets = signing_secrets(pool, &sender.vault, d.agency_id, d.endpoint_id).await?;
    let body = serde_json::to_vec(&json!({
        "type": d.event_type,
        "timestamp": d.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": d.data,
    }))?;
    let id = d.event_id.to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(&secrets, &id, timestamp, &body);
    drop(secrets);
    let answer = post(
        sender,
        &d.url,
        [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ],
        body,
    )
    .await;
    record(
        pool,
        delivery,
        d.agency_id,
        d.endpoint_id,
        attempt,
        max_attempts,
        &answer,
    )
    .await
}

async fn record(
    pool: &PgPool,
    delivery: Uuid,
    agency: Uuid,
    endpoint: Uuid,
    attempt: i32,
    max_attempts: i32,
    answer: &Answer,
) -> anyhow::Result<Delivered> {
    let ok = answer.ok();
    let reason = answer.reason();
    let last = attempt >= max_attempts;
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO webhook_attempts (delivery_id, agency_id, attempt, status_code, duration_ms, error, response_excerpt)
         VALUES ($1, $2, (SELECT attempts + 1 FROM webhook_deliveries WHERE id = $1), $3, $4, left($5, 1000), $6)",
        delivery,
        agency,
        answer.status.map(|s| s as i16),
        answer.duration.as_millis().min(i32::MAX as u128) as i32,
        answer.error,
        answer.excerpt
    )
    .execute(&mut *tx)
    .await?;
    let state = match (ok, last) {
        (true, _) => "delivered",
        (false, true) => "failed",
        (false, false) => "pending",
    };
    sqlx::query!(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, state = $2, last_status = $3,
                last_error = CASE WHEN $4 THEN NULL ELSE left($5, 2000) END, last_attempt_at = now(),
                delivered_at = CASE WHEN $4 THEN now() END
         WHERE id = $1",
        delivery,
        state,
        answer.status.map(|s| s as i16),
        ok,
        reason
    )
    .execute(&mut *tx)
    .await?;
    if ok {
        sqlx::query!(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
            endpoint
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Delivered::Done);
    }
    // failing since the first failure after the last success; disabled once that is a day ago
    let why = format!(
        "Disabled automatically: every delivery attempt failed for {} hours (the last: {reason}).",
        DISABLE_AFTER.as_secs() / 3600
    );
    let disabled = sqlx::query_scalar!(
        r#"UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()),
                  disabled_at = CASE WHEN failing_since <= now() - make_interval(secs => $2) THEN now() END,
                  disabled_reason = CASE WHEN failing_since <= now() - make_interval(secs => $2) THEN left($3, 2000) END,
                  updated_at = now()
           WHERE id = $1 AND disabled_at IS NULL
           RETURNING disabled_at IS NOT NULL AS "disabled!""#,
        endpoint,
        DISABLE_AFTER.as_secs_f64(),
        why
    )
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(false);
    if disabled {
        sqlx::query!(
            "UPDATE webhook_deliveries SET state = 'failed' WHERE id = $1",
            delivery
        )
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            &Actor::system("webhooks"),
            Entry::new(Some(agency), "webhook.disable")
                .target("webhook_endpoint", endpoint)
                .details(json!({ "reason": why, "automatic": true })),
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(%endpoint, %agency, "webhook endpoint disabled after failing for a day");
        return Ok(Delivered::Failed(why));
    }
    tx.commit().await?;
    Ok(if last {
        Delivered::Failed(format!("attempts exhausted; the last: {reason}"))
    } else {
        Delivered::Retry(reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_specifications_example() {
        // the example of the Standard Webhooks reference libraries' tests
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&[secret], id, ts, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn two_secrets_give_two_space_separated_signatures() {
        let a = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let b = super::super::endpoints::new_secret();
        let both = sign(&[a, b.as_str()], "id", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&[a], "id", 1, b"{}"));
        assert_eq!(parts[1], sign(&[b.as_str()], "id", 1, b"{}"));
    }
}
