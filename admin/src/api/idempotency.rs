//! `Idempotency-Key` on POST and PATCH, with Stripe's semantics: the first response (anything
//! but a server error) is kept per agency and key for 24 hours and replayed byte for byte with
//! `Idempotent-Replayed: true`; the same key with another request (a SHA-256 of method, path and
//! body) or from another API key of the agency is a 422; while the first request is still
//! running, a 409. Two identical requests racing run the action once: the claim is one
//! `INSERT … ON CONFLICT` per agency and key.
//!
//! An answer marked `Cache-Control: no-store` holds a secret shown once (a new onboarding
//! link's URL): it is not kept; its replay is a 409 saying the action happened.
//!
//! A request that ends in a server error, or that is dropped while running (the client went
//! away), gives its key up, so a retry runs the action again (its transaction did not commit).
//! A claim left by a process that died is taken over after [`ABANDONED_AFTER_SECS`].

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::auth::Caller;
use super::input::MAX_BODY_BYTES;
use super::problem::{ApiError, ProblemType};
use crate::app::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// How long a response is kept.
pub const KEEP_HOURS: i32 = 24;

/// An in-flight claim older than this is taken to be abandoned by a process that died.
pub const ABANDONED_AFTER_SECS: i32 = 600;

fn request_hash(method: &Method, path: &str, body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [method.as_str().as_bytes(), path.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    h.finalize().to_vec()
}

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Gives the claim up if the request is dropped before it finished.
struct Claim {
    pool: PgPool,
    agency: Uuid,
    key: String,
    token: Uuid,
    done: bool,
}

impl Claim {
    async fn release(&mut self) -> sqlx::Result<()> {
        self.done = true;
        release(&self.pool, self.agency, &self.key, self.token).await
    }
}

async fn release(pool: &PgPool, agency: Uuid, key: &str, token: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM api_idempotency WHERE agency_id = $1 AND key = $2 AND lock_token = $3 AND status IS NULL",
        agency,
        key,
        token
    )
    .execute(pool)
    .await?;
    Ok(())
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.done {
            let (pool, agency, key, token) =
                (self.pool.clone(), self.agency, self.key.clone(), self.token);
            tokio::spawn(async move {
                if let Err(e) = release(&pool, agency, &key, token).await {
                    tracing::warn!(error = %e, "could not give up an idempotency key");
                }
            });
        }
    }
}

/// Middleware (inside [`super::auth::authenticate`]) for every API route.
pub async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(&state, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(state: &AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    if !matches!(*req.method(), Method::POST | Method::PATCH) {
        return Ok(next.run(req).await);
    }
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .ok_or_else(|| {
            ApiError::malformed_field(
                "Idempotency-Key",
                "Use 1 to 255 visible ASCII characters (a UUID is a good choice).",
            )
        })?
        .to_owned();
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return Err(ApiError::unauthorized("Send an API key."));
    };
    let agency = caller.key.agency_id;
    let (parts, body) = req.into_parts();
    // an upload (multipart) may be as large as the upload route takes; JSON bodies 1 MiB
    let multipart = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    let limit = if multipart {
        crate::pages::composer::UPLOAD_BODY_LIMIT
    } else {
        MAX_BODY_BYTES
    };
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ProblemType::PayloadTooLarge,
            format!("Send at most {limit} bytes."),
        )
    })?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let hash = request_hash(&parts.method, path, &bytes);
    let token = Uuid::new_v4();
    // One statement claims the key: a new row, or one that expired or was abandoned.
    let claimed = sqlx::query_scalar!(
        "INSERT INTO api_idempotency (agency_id, key, request_hash, lock_token, api_key_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $6))
         ON CONFLICT (agency_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, lock_token = EXCLUDED.lock_token,
                api_key_id = EXCLUDED.api_key_id, created_at = now(), expires_at = EXCLUDED.expires_at,
                status = NULL, headers = NULL, body = NULL, completed_at = NULL
            WHERE api_idempotency.expires_at <= now()
               OR (api_idempotency.status IS NULL
                   AND api_idempotency.created_at < now() - make_interval(secs => $7))
         RETURNING lock_token",
        agency,
        key,
        hash,
        token,
        caller.key.id,
        KEEP_HOURS,
        f64::from(ABANDONED_AFTER_SECS),
    )
    .fetch_optional(&state.pool)
    .await?;
    if claimed != Some(token) {
        return earlier(state, &caller, &key, &hash).await;
    }
    let mut claim = Claim {
        pool: state.pool.clone(),
        agency,
        key: key.clone(),
        token,
        done: false,
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status().is_server_error() {
        claim.release().await?;
        return Ok(response);
    }
    let (mut rparts, rbody) = response.into_parts();
    let body = match axum::body::to_bytes(rbody, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            claim.release().await?;
            return Err(ApiError::internal(&e));
        }
    };
    // an answer that holds a secret shown once (`Cache-Control: no-store`, e.g. a new
    // onboarding link's URL) is never kept: its replay says the action happened, without it
    let secret = rparts
        .headers
        .get(axum::http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("no-store"));
    let (kept_status, kept_body, headers) = if secret {
        let p = ApiError::new(
            ProblemType::InvalidState,
            "The first request with this Idempotency-Key succeeded. Its answer held a secret that is shown only once, so it is not replayed; nothing was done again.",
        );
        let body = serde_json::to_vec(&p.problem()).unwrap_or_default();
        let headers = vec![(
            "content-type".to_owned(),
            super::problem::CONTENT_TYPE.to_owned(),
        )];
        (p.kind.status(), Bytes::from(body), headers)
    } else {
        let headers: Vec<(String, String)> = rparts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        (rparts.status, body.clone(), headers)
    };
    let stored = sqlx::query!(
        "UPDATE api_idempotency SET status = $4, headers = $5, body = $6, completed_at = now()
         WHERE agency_id = $1 AND key = $2 AND lock_token = $3 AND status IS NULL",
        agency,
        key,
        token,
        i16::try_from(kept_status.as_u16()).unwrap_or(500),
        serde_json::to_value(&headers).unwrap_or_default(),
        kept_body.as_ref(),
    )
    .execute(&state.pool)
    .await;
    claim.done = true;
    if let Err(e) = stored {
        // the action happened; only its replay is lost, so the answer still goes out
        tracing::error!(error = %e, "could not store an idempotent response");
    }
    rparts.headers.remove(REPLAYED);
    Ok(Response::from_parts(rparts, Body::from(body)))
}

/// The answer when the key was claimed before: the stored response, or why not.
async fn earlier(
    state: &AppState,
    caller: &Caller,
    key: &str,
    hash: &[u8],
) -> Result<Response, ApiError> {
    let row = sqlx::query!(
        r#"SELECT request_hash, api_key_id, status, headers AS "headers: sqlx::types::Json<Vec<(String, String)>>", body
           FROM api_idempotency WHERE agency_id = $1 AND key = $2"#,
        caller.key.agency_id,
        key
    )
    .fetch_optional(&state.pool)
    .await?;
    let in_flight = || {
        ApiError::new(
            ProblemType::IdempotencyKeyInFlight,
            "A request with this Idempotency-Key is still being processed: retry it in a moment.",
        )
    };
    let Some(row) = row else {
        // given up between the claim and this read: the first request failed
        return Err(in_flight());
    };
    // a replay is for the key that made the request: another key (perhaps limited to fewer
    // clients) learns nothing from the answer
    if row.request_hash != hash || row.api_key_id != Some(caller.key.id) {
        return Err(ApiError::new(
            ProblemType::IdempotencyKeyReused,
            "This Idempotency-Key was used with another request (method, path or body) or by another API key. Use a new key for a new request.",
        ));
    }
    let (Some(status), Some(headers), Some(body)) = (row.status, row.headers, row.body) else {
        return Err(in_flight());
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, Bytes::from(body)).into_response();
    let h = r.headers_mut();
    h.clear();
    for (name, value) in headers.0 {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.append(n, v);
        }
    }
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(r)
}

/// Forget responses older than a day.
pub async fn prune(pool: &PgPool) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM api_idempotency WHERE expires_at <= now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let a = request_hash(&Method::POST, "/api/v1/clients", b"{}");
        assert_eq!(a, request_hash(&Method::POST, "/api/v1/clients", b"{}"));
        assert_ne!(a, request_hash(&Method::PATCH, "/api/v1/clients", b"{}"));
        assert_ne!(a, request_hash(&Method::POST, "/api/v1/clients/x", b"{}"));
        assert_ne!(a, request_hash(&Method::POST, "/api/v1/clients", b"{ }"));
        // the boundary between path and body is not ambiguous
        assert_ne!(
            request_hash(&Method::POST, "/a", b"b"),
            request_hash(&Method::POST, "/ab", b"")
        );
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(valid_key("3f2c1d9e-0b7a-4c55-9d1e-1b2a3c4d5e6f"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("é"));
    }
}
