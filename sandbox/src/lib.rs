//! A local stand-in for the social platforms' HTTP APIs, for tests, benchmarks and the demo.
//! Never used by production paths.
//!
//! This part is the neutral `sandbox` platform's OAuth 2.0 server (RFC 6749 + PKCE, RFC 7636):
//! an authorize endpoint with a consent page (or auto-approve), a token endpoint that checks the
//! PKCE verifier and rotates refresh tokens (a reused refresh token revokes the whole grant, as
//! real providers do), revocation, a `/v1/me` account endpoint, knobs to make it misbehave, and a
//! ledger of every request it received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

pub mod linkedin;
pub mod meta;
pub mod openai;
pub mod posts;
pub mod replicate;
pub mod tiktok;
pub mod x;

/// How the sandbox behaves; changed at run time through `POST /_sandbox/knobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// Skip the consent page and approve at once (tests).
    pub auto_approve: bool,
    pub token_lifetime_secs: u64,
    /// Make the next refresh fail: `transient` (503) or `invalid_grant` (400).
    pub fail_refresh: Option<String>,
    /// Answer refreshes without a new refresh token (some providers do).
    pub omit_refresh_token: bool,
    /// Added to every API (not OAuth) request: fixed latency plus up to `jitter_ms`.
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Probability (0–1) that an API request answers 500 without doing anything.
    pub error_rate: f64,
    /// Probability (0–1) that an API request answers 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_rate: f64,
    pub retry_after_secs: u64,
    /// Posts per account per rolling 24 hours; beyond it the platform's limit error.
    pub quota_per_day: Option<u32>,
    /// Create the post, then answer `"500"` or drop the connection (`"drop"`), with probability
    /// `accept_then_fail_rate`.
    pub accept_then_fail: Option<String>,
    pub accept_then_fail_rate: f64,
    /// Fetch every media URL a post names (as Instagram does) and refuse the post when it is
    /// not served.
    pub fetch_media: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            auto_approve: false,
            token_lifetime_secs: 3600,
            fail_refresh: None,
            omit_refresh_token: false,
            latency_ms: 0,
            jitter_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 2,
            quota_per_day: None,
            accept_then_fail: None,
            accept_then_fail_rate: 1.0,
            fetch_media: true,
        }
    }
}

/// One request the sandbox received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Arrival, microseconds since the Unix epoch.
    pub at_us: u128,
    /// `sandbox`, `x`, `instagram`, … (`oauth` for the authorization server).
    pub platform: String,
    pub endpoint: String,
    pub account: Option<String>,
    pub marker: Option<String>,
    pub post_id: Option<String>,
    pub outcome: String,
}

pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) scope: String,
    pub(crate) account: String,
    pub(crate) expires: Instant,
}

pub(crate) struct RefreshGrant {
    pub(crate) family: String,
    pub(crate) account: String,
    pub(crate) scope: String,
}

pub(crate) struct AccessGrant {
    pub(crate) account: String,
    pub(crate) expires: Instant,
    pub(crate) family: String,
}

#[derive(Default)]
pub(crate) struct Store {
    pub(crate) knobs: Knobs,
    pub(crate) codes: HashMap<String, CodeGrant>,
    pub(crate) refresh: HashMap<String, RefreshGrant>,
    /// refresh tokens already exchanged: reuse means theft, revoke the family
    pub(crate) used_refresh: HashMap<String, String>,
    pub(crate) access: HashMap<String, AccessGrant>,
    pub(crate) revoked_families: Vec<String>,
    pub(crate) ledger: Vec<LedgerEntry>,
    pub(crate) posts: Vec<posts::Post>,
    pub(crate) next_post: u64,
}

/// The sandbox's registered OAuth client.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

#[derive(Clone)]
pub struct Sandbox {
    pub(crate) client: Client,
    issuer: String,
    pub(crate) store: Arc<Mutex<Store>>,
    http: reqwest::Client,
}

pub(crate) fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

pub(crate) fn token(prefix: &str) -> String {
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(b))
}

impl Sandbox {
    pub fn new(client: Client, issuer: impl Into<String>, knobs: Knobs) -> Sandbox {
        let store = Store {
            knobs,
            ..Default::default()
        };
        Sandbox {
            client,
            issuer: issuer.into(),
            store: Arc::new(Mutex::new(store)),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("static HTTP client configuration"),
        }
    }

    /// The base URL the sandbox was started with.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn record(&self, endpoint: &str, account: Option<&str>, outcome: &str) {
        self.record_full("oauth", endpoint, account, None, None, outcome);
    }

    /// Append to the ledger.
    pub fn record_full(
        &self,
        platform: &str,
        endpoint: &str,
        account: Option<&str>,
        marker: Option<&str>,
        post_id: Option<&str>,
        outcome: &str,
    ) {
        self.store.lock().expect("store").ledger.push(LedgerEntry {
            at_us: now_us(),
            platform: platform.to_owned(),
            endpoint: endpoint.to_owned(),
            account: account.map(str::to_owned),
            marker: marker.map(str::to_owned),
            post_id: post_id.map(str::to_owned),
            outcome: outcome.to_owned(),
        });
    }

    /// GET a media URL as a platform that pulls media would; `Err` names why it was refused.
    /// Returns the bytes and content type.
    pub async fn fetch_media(&self, url: &str) -> Result<(Vec<u8>, String), String> {
        if !self.store.lock().expect("store").knobs.fetch_media {
            return Ok((Vec::new(), "application/octet-stream".into()));
        }
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("media could not be fetched: {}", e.without_url()))?;
        if !r.status().is_success() {
            return Err(format!("media URL answered {}", r.status().as_u16()));
        }
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !ct.starts_with("image/") {
            return Err(format!("media is not an image ({ct})"));
        }
        let bytes = r.bytes().await.map_err(|e| e.to_string())?;
        Ok((bytes.to_vec(), ct))
    }

    /// The knobs now (platform modules read them).
    pub fn knobs(&self) -> Knobs {
        self.store.lock().expect("store").knobs.clone()
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/oauth/authorize", get(authorize).post(consent))
            .route("/oauth/token", post(token_endpoint))
            .route("/oauth/revoke", post(revoke))
            .route("/v1/me", get(me))
            .route("/v1/posts", post(posts::create).get(posts::find))
            .route("/v1/posts/{id}/metrics", get(posts::metrics))
            .route("/v1/quota", get(posts::quota))
            .route("/_sandbox/knobs", get(get_knobs).post(set_knobs))
            .route("/_sandbox/ledger", get(ledger))
            .route("/_sandbox/posts", get(all_posts))
            .nest("/tiktok", tiktok::routes())
            .nest("/facebook", meta::facebook_routes())
            .nest("/instagram", meta::instagram_routes())
            .nest("/x", x::routes())
            .nest("/linkedin", linkedin::routes())
            .nest("/openai", openai::routes())
            .nest("/replicate", replicate::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                stamp_arrival,
            ))
            .with_state(self)
    }
}

/// Ledger every platform API request the moment it arrives (before any knob's latency), as
/// `outcome = "arrived"`, `endpoint = "METHOD /path"`: the kill-switch test asserts that no
/// request for a scope arrived after the engage call returned.
async fn stamp_arrival(
    State(sb): State<Sandbox>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let internal =
        path.starts_with("/_sandbox") || path.starts_with("/oauth") || path == "/healthz";
    if !internal {
        let platform = path
            .split('/')
            .nth(1)
            .filter(|p| {
                matches!(
                    *p,
                    "x" | "facebook" | "instagram" | "tiktok" | "linkedin" | "openai"
                )
            })
            .unwrap_or("sandbox");
        let account = sb.bearer_account(req.headers());
        let endpoint = format!("{} {}", req.method(), path);
        sb.record_full(
            platform,
            &endpoint,
            account.as_deref(),
            None,
            None,
            "arrived",
        );
    }
    // a post made while handling this request remembers when the request arrived
    ARRIVED_US.scope(now_us(), next.run(req)).await
}

tokio::task_local! {
    /// When the request being handled arrived (before any knob's latency).
    static ARRIVED_US: u128;
}

/// When the request this task is handling arrived; now, outside a request.
pub(crate) fn arrived_us() -> u128 {
    ARRIVED_US.try_with(|t| *t).unwrap_or_else(|_| now_us())
}

/// Serve a sandbox with the default client on a free 127.0.0.1 port inside this process (tests
/// and seeding); returns its base URL, which is also its issuer.
pub async fn spawn(knobs: Knobs) -> std::io::Result<url::Url> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let sandbox = Sandbox::new(default_client(), base.clone(), knobs);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, sandbox.router()).await {
            tracing::error!(error = %e, "sandbox stopped");
        }
    });
    Ok(url::Url::parse(&base).expect("a socket address makes a URL"))
}

/// The client id and secret the sandbox accepts unless told otherwise.
pub fn default_client() -> Client {
    Client {
        id: "autosocial-sandbox-client".into(),
        secret: "autosocial-sandbox-secret".into(),
    }
}

pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuthorizeQuery {
    pub(crate) response_type: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
    /// Which sandbox account consents (defaults to `sandbox-user-1`).
    pub(crate) login_hint: Option<String>,
}

pub(crate) fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri is not a URL",
            );
        }
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

pub(crate) async fn authorize(
    State(sb): State<Sandbox>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let valid_redirect = q
        .redirect_uri
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    // errors about the client or redirect URI are shown, never redirected (RFC 6749 4.1.2.1)
    if q.client_id.as_deref() != Some(sb.client.id.as_str()) || valid_redirect.is_none() {
        sb.record("authorize", None, "invalid_client");
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown client_id or bad redirect_uri",
        );
    }
    let redirect_uri = q.redirect_uri.clone().unwrap_or_default();
    let state = q.state.clone().unwrap_or_default();
    if q.response_type.as_deref() != Some("code") {
        return redirect_with(
            &redirect_uri,
            &[("error", "unsupported_response_type"), ("state", &state)],
        );
    }
    if q.code_challenge_method.as_deref() != Some("S256")
        || q.code_challenge.as_deref().is_none_or(str::is_empty)
    {
        sb.record("authorize", None, "pkce_required");
        return redirect_with(
            &redirect_uri,
            &[
                ("error", "invalid_request"),
                ("error_description", "PKCE S256 required"),
                ("state", &state),
            ],
        );
    }
    let account = q
        .login_hint
        .clone()
        .unwrap_or_else(|| "sandbox-user-1".into());
    if sb.store.lock().expect("store").knobs.auto_approve {
        return approve(&sb, &q, &account);
    }
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let hidden = [
        ("client_id", q.client_id.as_deref().unwrap_or_default()),
        ("redirect_uri", redirect_uri.as_str()),
        ("state", state.as_str()),
        ("scope", q.scope.as_deref().unwrap_or_default()),
        (
            "code_challenge",
            q.code_challenge.as_deref().unwrap_or_default(),
        ),
        ("code_challenge_method", "S256"),
        ("response_type", "code"),
    ]
    .iter()
    .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, esc(v)))
    .collect::<String>();
    Html(format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sandbox · authorize</title></head>
<body><main><h1>Sandbox platform</h1><p>AutoSocial asks to publish and read metrics (scopes: {scope}).</p>
<form method="post" action="/oauth/authorize">{hidden}
<label for="login_hint">Account</label> <input id="login_hint" name="login_hint" value="{account}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></form></main></body></html>"#,
        scope = esc(q.scope.as_deref().unwrap_or_default()),
        account = esc(&account),
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct ConsentForm {
    decision: String,
    #[serde(flatten)]
    query: HashMap<String, String>,
}

pub(crate) async fn consent(State(sb): State<Sandbox>, Form(f): Form<ConsentForm>) -> Response {
    let get = |k: &str| f.query.get(k).cloned();
    let q = AuthorizeQuery {
        response_type: get("response_type"),
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        state: get("state"),
        scope: get("scope"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        login_hint: get("login_hint"),
    };
    if q.client_id.as_deref() != Some(sb.client.id.as_str()) || q.redirect_uri.is_none() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown client_id or bad redirect_uri",
        );
    }
    let account = q
        .login_hint
        .clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "sandbox-user-1".into());
    if f.decision == "approve" {
        approve(&sb, &q, &account)
    } else {
        sb.record("authorize", Some(&account), "denied");
        let state = q.state.clone().unwrap_or_default();
        redirect_with(
            q.redirect_uri.as_deref().unwrap_or_default(),
            &[("error", "access_denied"), ("state", &state)],
        )
    }
}

pub(crate) fn approve(sb: &Sandbox, q: &AuthorizeQuery, account: &str) -> Response {
    let code = token("code");
    sb.store.lock().expect("store").codes.insert(
        code.clone(),
        CodeGrant {
            client_id: q.client_id.clone().unwrap_or_default(),
            redirect_uri: q.redirect_uri.clone().unwrap_or_default(),
            challenge: q.code_challenge.clone().unwrap_or_default(),
            scope: q.scope.clone().unwrap_or_default(),
            account: account.to_owned(),
            expires: Instant::now() + Duration::from_secs(600),
        },
    );
    sb.record("authorize", Some(account), "approved");
    let state = q.state.clone().unwrap_or_default();
    redirect_with(
        q.redirect_uri.as_deref().unwrap_or_default(),
        &[("code", &code), ("state", &state), ("iss", &sb.issuer)],
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    pub(crate) grant_type: String,
    pub(crate) code: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_verifier: Option<String>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
}

/// Client authentication: HTTP Basic (RFC 6749 2.3.1) or the body parameters.
pub(crate) fn client_ok(sb: &Sandbox, headers: &HeaderMap, f: &TokenForm) -> bool {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        && let Ok(raw) = STANDARD.decode(basic.trim())
        && let Ok(pair) = String::from_utf8(raw)
        && let Some((id, secret)) = pair.split_once(':')
    {
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return dec(id) == sb.client.id && dec(secret) == sb.client.secret;
    }
    f.client_id.as_deref() == Some(sb.client.id.as_str())
        && f.client_secret.as_deref() == Some(sb.client.secret.as_str())
}

pub(crate) fn issue_tokens(
    store: &mut Store,
    family: &str,
    account: &str,
    scope: &str,
    with_refresh: bool,
) -> serde_json::Value {
    let access = token("at");
    let lifetime = store.knobs.token_lifetime_secs;
    store.access.insert(
        access.clone(),
        AccessGrant {
            account: account.to_owned(),
            expires: Instant::now() + Duration::from_secs(lifetime),
            family: family.to_owned(),
        },
    );
    let mut body = json!({ "access_token": access, "token_type": "Bearer", "expires_in": lifetime, "scope": scope });
    if with_refresh {
        let refresh = token("rt");
        store.refresh.insert(
            refresh.clone(),
            RefreshGrant {
                family: family.to_owned(),
                account: account.to_owned(),
                scope: scope.to_owned(),
            },
        );
        body["refresh_token"] = json!(refresh);
    }
    body
}

pub(crate) async fn token_endpoint(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if !client_ok(&sb, &headers, &f) {
        sb.record("token", None, "invalid_client");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let mut store = sb.store.lock().expect("store");
    match f.grant_type.as_str() {
        "authorization_code" => {
            let Some(grant) = f.code.as_deref().and_then(|c| store.codes.remove(c)) else {
                drop(store);
                sb.record("token", None, "invalid_grant");
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown, used or expired code",
                );
            };
            let verifier_ok = f.code_verifier.as_deref().is_some_and(|v| {
                URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == grant.challenge
            });
            if grant.expires < Instant::now()
                || grant.client_id != sb.client.id
                || f.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str())
            {
                drop(store);
                sb.record("token", Some(&grant.account), "invalid_grant");
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code expired or redirect_uri mismatch",
                );
            }
            if !verifier_ok {
                drop(store);
                sb.record("token", Some(&grant.account), "pkce_mismatch");
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            let family = token("grant");
            let body = issue_tokens(&mut store, &family, &grant.account, &grant.scope, true);
            drop(store);
            sb.record("token", Some(&grant.account), "issued");
            Json(body).into_response()
        }
        "refresh_token" => {
            let presented = f.refresh_token.clone().unwrap_or_default();
            if let Some(family) = store.used_refresh.get(&presented).cloned() {
                // a rotated refresh token used twice: revoke the whole grant
                store.revoked_families.push(family.clone());
                store.refresh.retain(|_, g| g.family != family);
                store.access.retain(|_, g| g.family != family);
                drop(store);
                sb.record("refresh", None, "reuse_revoked");
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token reused; grant revoked",
                );
            }
            match store.knobs.fail_refresh.take().as_deref() {
                Some("transient") => {
                    drop(store);
                    sb.record("refresh", None, "transient");
                    return (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable")
                        .into_response();
                }
                Some("invalid_grant") => {
                    store.refresh.remove(&presented);
                    drop(store);
                    sb.record("refresh", None, "invalid_grant");
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token revoked by the user",
                    );
                }
                _ => {}
            }
            let Some(grant) = store.refresh.remove(&presented) else {
                drop(store);
                sb.record("refresh", None, "invalid_grant");
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown refresh token",
                );
            };
            store.used_refresh.insert(presented, grant.family.clone());
            let rotate = !store.knobs.omit_refresh_token;
            let body = issue_tokens(
                &mut store,
                &grant.family,
                &grant.account,
                &grant.scope,
                rotate,
            );
            if !rotate {
                // without rotation the old refresh token stays valid
                let family = grant.family.clone();
                let account = grant.account.clone();
                store.used_refresh.retain(|_, f| *f != family);
                store.refresh.insert(
                    f.refresh_token.clone().unwrap_or_default(),
                    RefreshGrant {
                        family,
                        account,
                        scope: grant.scope.clone(),
                    },
                );
            }
            drop(store);
            sb.record("refresh", Some(&grant.account), "issued");
            Json(body).into_response()
        }
        other => {
            drop(store);
            oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other} is not supported"),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    token: String,
}

pub(crate) async fn revoke(State(sb): State<Sandbox>, Form(f): Form<RevokeForm>) -> StatusCode {
    let mut store = sb.store.lock().expect("store");
    let family = store
        .refresh
        .get(&f.token)
        .map(|g| g.family.clone())
        .or_else(|| store.access.get(&f.token).map(|g| g.family.clone()));
    if let Some(family) = family {
        store.refresh.retain(|_, g| g.family != family);
        store.access.retain(|_, g| g.family != family);
        store.revoked_families.push(family);
    }
    drop(store);
    sb.record("revoke", None, "ok");
    StatusCode::OK
}

async fn me(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let account = {
        let store = sb.store.lock().expect("store");
        bearer
            .and_then(|t| store.access.get(t))
            .filter(|g| g.expires > Instant::now())
            .map(|g| g.account.clone())
    };
    match account {
        Some(a) => {
            sb.record("me", Some(&a), "ok");
            Json(json!({ "id": a, "name": format!("Sandbox account {a}") })).into_response()
        }
        None => {
            sb.record("me", None, "invalid_token");
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": "invalid_token" })),
            )
                .into_response()
        }
    }
}

async fn get_knobs(State(sb): State<Sandbox>) -> Json<Knobs> {
    Json(sb.store.lock().expect("store").knobs.clone())
}

async fn set_knobs(State(sb): State<Sandbox>, Json(k): Json<Knobs>) -> Json<Knobs> {
    sb.store.lock().expect("store").knobs = k.clone();
    Json(k)
}

#[derive(Debug, Deserialize)]
struct LedgerQuery {
    platform: Option<String>,
    outcome: Option<String>,
    /// Only entries that arrived at or after this instant (µs since the epoch).
    since_us: Option<u64>,
}

/// The ledger, optionally filtered by platform, outcome and arrival.
async fn ledger(State(sb): State<Sandbox>, Query(q): Query<LedgerQuery>) -> Json<Vec<LedgerEntry>> {
    let store = sb.store.lock().expect("store");
    Json(
        store
            .ledger
            .iter()
            .filter(|e| q.platform.as_ref().is_none_or(|p| *p == e.platform))
            .filter(|e| q.outcome.as_ref().is_none_or(|o| *o == e.outcome))
            .filter(|e| q.since_us.is_none_or(|s| e.at_us >= u128::from(s)))
            .cloned()
            .collect(),
    )
}

async fn all_posts(State(sb): State<Sandbox>) -> Json<Vec<posts::Post>> {
    Json(sb.all_posts())
}
