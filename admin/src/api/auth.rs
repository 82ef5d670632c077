//! Who is calling: `Authorization: Bearer as_live_…` names a live key of an agency
//! ([`authenticate`], a middleware for every `/api/v1` route but the OpenAPI document), each key
//! with its own rate limit ([`RateLimits`], `RateLimit` / `RateLimit-Policy` headers, 429 with
//! `Retry-After`), and the role each handler needs as an extractor ([`Key`]).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use autosocial_core::api_keys::{self, ApiKey};

use super::problem::{ApiError, ProblemType};
use crate::app::AppState;
use crate::auth::{AdminRequirement, ReviewerRole, RoleRequirement, ViewerRole, client_ip};

/// The name of the one policy, as the `RateLimit` headers call it.
const POLICY: &str = "per-key";

type Limiter =
    RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;

/// Requests per minute per key, in process (there is one admin process), as a GCRA bucket that
/// holds a minute's worth.
pub struct RateLimits {
    per_minute: u32,
    limiter: Limiter,
}

impl RateLimits {
    pub fn new(per_minute: u32) -> RateLimits {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        RateLimits {
            per_minute: per_minute.get(),
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute))
                .with_middleware::<StateInformationMiddleware>(),
        }
    }

    pub fn policy(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("\"{POLICY}\";q={};w=60", self.per_minute))
            .unwrap_or_else(|_| HeaderValue::from_static("\"per-key\""))
    }

    /// Count one request of `key`: `Ok(remaining)`, or `Err(seconds to wait)`.
    fn check(&self, key: Uuid) -> Result<u32, u64> {
        match self.limiter.check_key(&key) {
            Ok(snapshot) => Ok(snapshot.remaining_burst_capacity()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }

    /// Seconds until a bucket with `remaining` left is full again.
    fn reset_secs(&self, remaining: u32) -> u64 {
        let spent = u64::from(self.per_minute.saturating_sub(remaining));
        (spent * 60).div_ceil(u64::from(self.per_minute))
    }

    fn header(&self, remaining: u32, reset: u64) -> HeaderValue {
        HeaderValue::from_str(&format!("\"{POLICY}\";r={remaining};t={reset}"))
            .unwrap_or_else(|_| HeaderValue::from_static("\"per-key\""))
    }

    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}

/// How long a key, once found live, is taken on trust without asking the database again.
/// Revoking in the console forgets every key at once ([`KeyCache::forget_all`]); only a key
/// revoked behind the console's back (by SQL) works for up to this long afterwards.
const KEY_TTL: Duration = Duration::from_secs(2);
/// Live keys kept at most; past it the cache starts afresh.
const KEY_CACHE_MAX: usize = 10_000;

/// Live keys recently proven, by their secret's SHA-256 (never the secret), so that a client
/// making many requests costs one key lookup a [`KEY_TTL`], not one a request.
#[derive(Default)]
pub struct KeyCache {
    inner: Mutex<KeyCacheInner>,
}

#[derive(Default)]
struct KeyCacheInner {
    /// Bumped by every [`KeyCache::forget_all`]: a lookup that started before it is not kept.
    generation: u64,
    keys: HashMap<Vec<u8>, (ApiKey, Instant)>,
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyCacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live key with this secret's hash, if proven within [`KEY_TTL`]; else the generation
    /// to hand [`KeyCache::keep`] after asking the database.
    fn get(&self, hash: &[u8]) -> Result<ApiKey, u64> {
        let inner = self.lock();
        match inner.keys.get(hash) {
            Some((key, at)) if at.elapsed() < KEY_TTL => Ok(key.clone()),
            _ => Err(inner.generation),
        }
    }

    fn keep(&self, hash: Vec<u8>, key: &ApiKey, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.keys.len() >= KEY_CACHE_MAX {
            inner.keys.retain(|_, (_, at)| at.elapsed() < KEY_TTL);
            if inner.keys.len() >= KEY_CACHE_MAX {
                inner.keys.clear();
            }
        }
        inner.keys.insert(hash, (key.clone(), Instant::now()));
    }

    /// A key was revoked: ask the database about every key from now on.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.keys.clear();
    }

    /// Drop the entries past their time (called with the rate limits' housekeeping).
    pub fn retain_recent(&self) {
        self.lock().keys.retain(|_, (_, at)| at.elapsed() < KEY_TTL);
    }
}

/// The live key behind `token`: from the cache, or from the database (which also marks it
/// used, at most once a minute).
async fn live_key(state: &AppState, token: &str) -> sqlx::Result<Option<ApiKey>> {
    let cache = &state.api.keys;
    let hash = autosocial_core::secret::token_hash(token);
    let generation = match cache.get(&hash) {
        Ok(key) => return Ok(Some(key)),
        Err(generation) => generation,
    };
    let mut conn = state.pool.acquire().await?;
    let key = api_keys::authenticate(&mut conn, token).await?;
    if let Some(k) = &key {
        cache.keep(hash, k, generation);
    }
    Ok(key)
}

/// The request's key and the address it came from (in the request's extensions).
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    pub ip: Option<IpAddr>,
}

impl Caller {
    pub fn actor(&self) -> autosocial_core::audit::Actor {
        self.key.actor(self.ip)
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "Send an API key as `Authorization: Bearer as_live_…` (create one in the console's Settings).",
            )
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header is not a Bearer key."))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(ApiError::unauthorized(
            "The Authorization header is not a Bearer key.",
        )),
    }
}

/// Middleware: a live key or 401; then the key's rate limit (429), and the `RateLimit` headers
/// on every answer.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let token = match bearer(&parts) {
        Ok(t) => t.to_owned(),
        Err(e) => return e.into_response(),
    };
    let key = match live_key(&state, &token).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return ApiError::unauthorized("This API key is unknown or was revoked.")
                .into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let limits = &state.api.limits;
    let remaining = match limits.check(key.id) {
        Ok(remaining) => remaining,
        Err(wait) => {
            let mut e = ApiError::new(
                ProblemType::RateLimited,
                format!(
                    "This key may make {} requests a minute. Try again in {wait} s.",
                    limits.per_minute
                ),
            );
            e.retry_after_secs = Some(wait);
            let mut r = e.into_response();
            r.headers_mut().insert("ratelimit-policy", limits.policy());
            r.headers_mut().insert("ratelimit", limits.header(0, wait));
            return r;
        }
    };
    let ip = client_ip(&parts, &state.web);
    parts.extensions.insert(Caller { key, ip });
    let mut r = next.run(Request::from_parts(parts, body)).await;
    r.headers_mut().insert("ratelimit-policy", limits.policy());
    r.headers_mut().insert(
        "ratelimit",
        limits.header(remaining, limits.reset_secs(remaining)),
    );
    r
}

/// The calling key, proven to hold at least `R`'s role.
pub struct Key<R: RoleRequirement>(pub Caller, PhantomData<R>);

impl<R: RoleRequirement> std::ops::Deref for Key<R> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<S: Send + Sync, R: RoleRequirement> FromRequestParts<S> for Key<R> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Send an API key."))?;
        if caller.key.role.allows(R::ROLE) {
            Ok(Key(caller, PhantomData))
        } else {
            Err(ApiError::forbidden(format!(
                "This key's role is {}; this needs {} or above.",
                caller.key.role,
                R::ROLE
            )))
        }
    }
}

pub type ViewerKey = Key<ViewerRole>;
pub type ReviewerKey = Key<ReviewerRole>;
pub type AdminKey = Key<AdminRequirement>;
