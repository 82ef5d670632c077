//! What every platform shape shares: the posts the sandbox holds, the faults its knobs inject
//! (latency, server errors, 429 with Retry-After, a per-account quota, accept-then-fail), and the
//! neutral `sandbox` platform's own publish, find, metrics and quota endpoints.
//!
//! Each platform module (`/x/…`, `/instagram/…`, …) parses its platform's request shape, asks
//! [`Sandbox::admit`] whether the knobs let the request through, stores the post with
//! [`Sandbox::create_post`] and answers in its platform's shape; the faults are rendered in the
//! platform's own error format by the module.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Sandbox, now_us};

/// A post the sandbox holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Post {
    pub id: String,
    pub platform: String,
    pub account: String,
    pub text: String,
    pub marker: Option<String>,
    pub link_url: Option<String>,
    pub media: Vec<String>,
    /// Microseconds since the Unix epoch.
    pub created_us: u128,
    /// When the request that made the post arrived (before the knobs' latency): what the
    /// platform's rate limits count.
    pub arrived_us: u128,
}

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No or an unknown/expired bearer token.
    Unauthorized,
    /// The `error_rate` knob: 500 before anything happened.
    ServerError,
    /// The `rate_limit_rate` knob: 429 with this Retry-After.
    RateLimited(Duration),
    /// The account's `quota_per_day` is used up.
    QuotaExceeded { used: u32, limit: u32 },
}

/// How an accepted post's answer goes wrong (`accept_then_fail` knob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCreate {
    Answer,
    Answer500,
    Drop,
}

/// What a post-creating request brings.
pub struct NewPost<'a> {
    pub platform: &'a str,
    pub endpoint: &'a str,
    pub account: &'a str,
    pub text: &'a str,
    pub marker: Option<&'a str>,
    pub link_url: Option<&'a str>,
    pub media: Vec<String>,
}

impl Sandbox {
    /// The account behind a `Bearer` token, if the token is live.
    pub fn bearer_account(&self, headers: &HeaderMap) -> Option<String> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?;
        self.token_account(bearer)
    }

    /// The account behind an access token given some other way (Meta's `access_token` field).
    pub fn token_account(&self, token: &str) -> Option<String> {
        let store = self.store.lock().expect("store");
        store
            .access
            .get(token)
            .filter(|g| g.expires > std::time::Instant::now())
            .map(|g| g.account.clone())
    }

    /// Apply the knobs' latency and faults to a request for `account`; `creates` says whether it
    /// would create a post (quota applies then). Faults are recorded in the ledger.
    pub async fn admit(
        &self,
        platform: &str,
        endpoint: &str,
        account: Option<&str>,
        creates: bool,
    ) -> Result<(), Fault> {
        let (latency, jitter, error_rate, rate_limit_rate, retry_after, quota) = {
            let k = &self.store.lock().expect("store").knobs;
            (
                k.latency_ms,
                k.jitter_ms,
                k.error_rate,
                k.rate_limit_rate,
                k.retry_after_secs,
                k.quota_per_day,
            )
        };
        let wait = latency
            + if jitter > 0 {
                rand::rng().random_range(0..=jitter)
            } else {
                0
            };
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        let Some(account) = account else {
            self.record_full(platform, endpoint, None, None, None, "invalid_token");
            return Err(Fault::Unauthorized);
        };
        let roll = |p: f64| p > 0.0 && rand::rng().random_bool(p.min(1.0));
        if roll(error_rate) {
            self.record_full(platform, endpoint, Some(account), None, None, "error_500");
            return Err(Fault::ServerError);
        }
        if roll(rate_limit_rate) {
            self.record_full(
                platform,
                endpoint,
                Some(account),
                None,
                None,
                "rate_limited",
            );
            return Err(Fault::RateLimited(Duration::from_secs(retry_after)));
        }
        if creates && let Some(limit) = quota {
            let used = self.quota_used(platform, account);
            if used >= limit {
                self.record_full(
                    platform,
                    endpoint,
                    Some(account),
                    None,
                    None,
                    "quota_exceeded",
                );
                return Err(Fault::QuotaExceeded { used, limit });
            }
        }
        Ok(())
    }

    /// Posts this account created on this platform in the last 24 hours.
    pub fn quota_used(&self, platform: &str, account: &str) -> u32 {
        let since = now_us().saturating_sub(24 * 3600 * 1_000_000);
        let store = self.store.lock().expect("store");
        store
            .posts
            .iter()
            .filter(|p| p.platform == platform && p.account == account && p.created_us >= since)
            .count() as u32
    }

    pub fn quota_limit(&self) -> Option<u32> {
        self.store.lock().expect("store").knobs.quota_per_day
    }

    /// Store a post (it now exists on the "platform") and decide how its answer goes.
    pub fn create_post(&self, new: NewPost<'_>) -> (Post, AfterCreate) {
        let mut store = self.store.lock().expect("store");
        store.next_post += 1;
        let post = Post {
            id: format!(
                "{}{}",
                new.platform.chars().next().unwrap_or('p'),
                10_000_000 + store.next_post
            ),
            platform: new.platform.to_owned(),
            account: new.account.to_owned(),
            text: new.text.to_owned(),
            marker: new.marker.map(str::to_owned),
            link_url: new.link_url.map(str::to_owned),
            media: new.media,
            created_us: now_us(),
            arrived_us: crate::arrived_us(),
        };
        store.posts.push(post.clone());
        let after = match store.knobs.accept_then_fail.as_deref() {
            Some(mode)
                if rand::rng().random_bool(store.knobs.accept_then_fail_rate.clamp(0.0, 1.0)) =>
            {
                if mode == "drop" {
                    AfterCreate::Drop
                } else {
                    AfterCreate::Answer500
                }
            }
            _ => AfterCreate::Answer,
        };
        drop(store);
        let outcome = match after {
            AfterCreate::Answer => "created",
            AfterCreate::Answer500 => "created_then_500",
            AfterCreate::Drop => "created_then_drop",
        };
        self.record_full(
            new.platform,
            new.endpoint,
            Some(new.account),
            new.marker,
            Some(&post.id),
            outcome,
        );
        (post, after)
    }

    /// The answer for an accepted post: `ok` unless the knobs say to fail it anyway.
    pub fn answer_created(&self, after: AfterCreate, ok: Response) -> Response {
        match after {
            AfterCreate::Answer => ok,
            AfterCreate::Answer500 => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
            AfterCreate::Drop => dropped_connection(),
        }
    }

    /// The account's posts on a platform created at or after `since_us`, oldest first.
    pub fn posts_of(&self, platform: &str, account: &str, since_us: u128) -> Vec<Post> {
        let store = self.store.lock().expect("store");
        store
            .posts
            .iter()
            .filter(|p| p.platform == platform && p.account == account && p.created_us >= since_us)
            .cloned()
            .collect()
    }

    pub fn post(&self, platform: &str, id: &str) -> Option<Post> {
        let store = self.store.lock().expect("store");
        store
            .posts
            .iter()
            .rev()
            .find(|p| p.platform == platform && p.id == id)
            .cloned()
    }

    /// Every post the sandbox holds (tests and benchmarks compare them with the database).
    pub fn all_posts(&self) -> Vec<Post> {
        self.store.lock().expect("store").posts.clone()
    }

    /// Deterministic engagement figures for a post, so metrics can be checked.
    pub fn engagement(post: &Post) -> (i64, i64, i64, i64) {
        let seed: u64 = post
            .id
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        let likes = (seed % 500) as i64;
        (likes, likes / 10, likes / 20, likes * 12 + 100)
    }
}

/// A 200 whose body never completes: the client sees the connection fail after the platform
/// had already done the work.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox dropped the connection",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("static response")
}

// ----- the neutral `sandbox` platform ----------------------------------------------------------

fn sandbox_fault(f: Fault) -> Response {
    match f {
        Fault::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response(),
        Fault::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "server_error"})),
        )
            .into_response(),
        Fault::RateLimited(d) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, d.as_secs().to_string())],
            Json(json!({"error": "rate_limited"})),
        )
            .into_response(),
        Fault::QuotaExceeded { used, limit } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "3600".to_owned())],
            Json(json!({"error": "quota_exceeded", "used": used, "limit": limit})),
        )
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateBody {
    text: String,
    marker: Option<String>,
    link_url: Option<String>,
    #[serde(default)]
    media: Vec<String>,
}

pub(crate) async fn create(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Json(b): Json<CreateBody>,
) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit("sandbox", "posts.create", account.as_deref(), true)
        .await
    {
        return sandbox_fault(f);
    }
    let account = account.unwrap_or_default();
    if b.text.trim().is_empty() && b.media.is_empty() {
        sb.record_full(
            "sandbox",
            "posts.create",
            Some(&account),
            b.marker.as_deref(),
            None,
            "invalid",
        );
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "a post needs text or media"}))).into_response();
    }
    for m in &b.media {
        if let Err(e) = sb.fetch_media(m).await {
            sb.record_full(
                "sandbox",
                "posts.create",
                Some(&account),
                b.marker.as_deref(),
                None,
                "media_refused",
            );
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_media", "error_description": e})),
            )
                .into_response();
        }
    }
    let (post, after) = sb.create_post(NewPost {
        platform: "sandbox",
        endpoint: "posts.create",
        account: &account,
        text: &b.text,
        marker: b.marker.as_deref(),
        link_url: b.link_url.as_deref(),
        media: b.media.clone(),
    });
    let url = format!("{}/posts/{}", sb.issuer, post.id);
    sb.answer_created(
        after,
        (
            StatusCode::CREATED,
            Json(json!({"id": post.id, "url": url})),
        )
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct FindQuery {
    marker: String,
}

pub(crate) async fn find(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<FindQuery>,
) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit("sandbox", "posts.find", account.as_deref(), false)
        .await
    {
        return sandbox_fault(f);
    }
    let account = account.unwrap_or_default();
    let found: Vec<_> = sb
        .posts_of("sandbox", &account, 0)
        .into_iter()
        .filter(|p| p.marker.as_deref() == Some(q.marker.as_str()))
        .map(
            |p| json!({"id": p.id, "url": format!("{}/posts/{}", sb.issuer, p.id), "text": p.text}),
        )
        .collect();
    sb.record_full(
        "sandbox",
        "posts.find",
        Some(&account),
        Some(&q.marker),
        None,
        if found.is_empty() {
            "not_found"
        } else {
            "found"
        },
    );
    Json(json!({ "data": found })).into_response()
}

pub(crate) async fn metrics(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit("sandbox", "posts.metrics", account.as_deref(), false)
        .await
    {
        return sandbox_fault(f);
    }
    match sb
        .post("sandbox", &id)
        .filter(|p| Some(&p.account) == account.as_ref())
    {
        Some(p) => {
            let (likes, comments, shares, impressions) = Sandbox::engagement(&p);
            Json(json!({"likes": likes, "comments": comments, "shares": shares, "impressions": impressions})).into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response(),
    }
}

pub(crate) async fn quota(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit("sandbox", "quota", account.as_deref(), false)
        .await
    {
        return sandbox_fault(f);
    }
    let account = account.unwrap_or_default();
    match sb.quota_limit() {
        Some(limit) => Json(json!({"used": sb.quota_used("sandbox", &account), "limit": limit, "window_secs": 86400})).into_response(),
        None => Json(json!({"used": sb.quota_used("sandbox", &account), "limit": null, "window_secs": 86400})).into_response(),
    }
}
