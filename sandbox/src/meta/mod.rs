//! Meta's Graph API in the sandbox: Facebook Pages under `/facebook/…` and Instagram (with
//! Facebook Login) under `/instagram/…`, each serving the paths of both Meta hosts
//! (`www.facebook.com/{version}/dialog/oauth` and `graph.facebook.com/{version}/…`).
//!
//! * Login: the dialog is the sandbox's own consent (or auto-approve) flow; `GET
//!   /oauth/access_token` exchanges a code (PKCE checked) for a short-lived user token, and
//!   `grant_type=fb_exchange_token` a live user token for a long-lived one (60 days). The
//!   `fail_refresh` knob applies to that exchange, Meta's only way to renew.
//! * Accounts: the login hint names the account. On `/facebook` it is the Page id, and `/me/accounts`
//!   lists that one Page with a Page token (publishing needs the Page token, as on Facebook). On
//!   `/instagram` it is the Instagram user id, linked to Page `page-<hint>`.
//! * Instagram containers report `IN_PROGRESS` on the first status read and `FINISHED` after;
//!   `media_publish` refuses a container not yet seen `FINISHED`. The image is fetched when the
//!   container is created (Facebook photos: when posted), as Meta does.
//! * Tokens are accepted as `Authorization: Bearer` or as the `access_token` parameter.
//! * Faults from the knobs answer in Meta's error shape: code 190 (bad token), code 2 (server
//!   error), code 32 / 4 with `x-business-use-case-usage` (throttling), and on Instagram's
//!   `media_publish` the publishing limit, code 9 subcode 2207042.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::posts::{Fault, NewPost, Post};
use crate::{AccessGrant, AuthorizeQuery, Sandbox, now_us, token};

mod publish;
use publish::*;

/// Lifetime of a long-lived user token (Meta: "about 60 days").
const LONG_LIVED_SECS: u64 = 5_183_944;
/// Page tokens obtained with a long-lived user token do not expire; the sandbox gives them a year.
const PAGE_TOKEN_SECS: u64 = 365 * 86_400;
/// Instagram's default publishing limit when the `quota_per_day` knob is unset.
const IG_DEFAULT_LIMIT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    Facebook,
    Instagram,
}

impl Meta {
    fn name(self) -> &'static str {
        match self {
            Meta::Facebook => "facebook",
            Meta::Instagram => "instagram",
        }
    }
}

/// An Instagram media container.
struct Container {
    owner: String,
    image_url: String,
    caption: String,
    status_reads: u32,
    published: Option<String>,
}

#[derive(Clone)]
struct Ctx {
    meta: Meta,
    containers: Arc<Mutex<HashMap<String, Container>>>,
    /// Which live tokens are Page tokens (their grant's account is the Page id, so the rest of
    /// the sandbox sees the Page as the account).
    page_tokens: Arc<Mutex<HashSet<String>>>,
}

pub fn facebook_routes() -> Router<Sandbox> {
    routes(Meta::Facebook)
}

pub fn instagram_routes() -> Router<Sandbox> {
    routes(Meta::Instagram)
}

fn routes(meta: Meta) -> Router<Sandbox> {
    let ctx = Ctx {
        meta,
        containers: Arc::default(),
        page_tokens: Arc::default(),
    };
    Router::new()
        .route("/{version}/dialog/oauth", get(dialog))
        .route("/{version}/oauth/access_token", get(access_token))
        .route("/{version}/me", get(me))
        .route("/{version}/me/accounts", get(me_accounts))
        .route("/{version}/{id}", get(node))
        .route("/{version}/{id}/{edge}", get(edge_get).post(edge_post))
        .layer(Extension(ctx))
        .layer(axum::middleware::map_response(with_trace_id))
}

/// Meta sends a trace id with every answer (errors name the same id in `fbtrace_id`).
async fn with_trace_id(mut r: Response) -> Response {
    if !r.headers().contains_key("x-fb-trace-id")
        && let Ok(v) = HeaderValue::from_str(&token("trace"))
    {
        r.headers_mut().insert("x-fb-trace-id", v);
    }
    r
}

// ----- shapes ----------------------------------------------------------------------------------

/// Meta's error answer: `{"error": {"message", "type", "code", …, "fbtrace_id"}}`.
fn graph_error(status: StatusCode, mut error: Value) -> Response {
    let trace = token("trace");
    if error["type"].is_null() {
        error["type"] = json!("OAuthException");
    }
    error["fbtrace_id"] = json!(trace);
    (
        status,
        [("x-fb-trace-id", trace)],
        Json(json!({ "error": error })),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        json!({"message": message, "code": 100}),
    )
}

fn unsupported(id: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        json!({
            "message": format!("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
            "code": 100,
            "error_subcode": 33,
        }),
    )
}

fn bad_token() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        json!({"message": "Invalid OAuth access token - Cannot parse access token", "code": 190}),
    )
}

/// Throttling: the code plus the Business Use Case header with the wait in whole minutes.
fn throttled(meta: Meta, code: i64, message: &str, wait: Duration) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let usage = json!({ "sandbox": [{
        "type": if meta == Meta::Facebook { "pages" } else { "instagram" },
        "call_count": 100, "total_cputime": 100, "total_time": 100,
        "estimated_time_to_regain_access": minutes,
    }]});
    let mut r = graph_error(
        StatusCode::BAD_REQUEST,
        json!({"message": message, "code": code}),
    );
    if let Ok(v) = HeaderValue::from_str(&usage.to_string()) {
        r.headers_mut().insert("x-business-use-case-usage", v);
    }
    r
}

fn fault(meta: Meta, f: Fault) -> Response {
    match f {
        Fault::Unauthorized => bad_token(),
        Fault::ServerError => graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "An unexpected error has occurred. Please retry your request later.", "code": 2, "is_transient": true}),
        ),
        Fault::RateLimited(wait) => match meta {
            Meta::Facebook => throttled(meta, 32, "(#32) Page request limit reached", wait),
            Meta::Instagram => throttled(meta, 4, "(#4) Application request limit reached", wait),
        },
        Fault::QuotaExceeded { .. } => match meta {
            Meta::Instagram => graph_error(
                StatusCode::BAD_REQUEST,
                json!({
                    "message": "Application request limit reached",
                    "code": 9,
                    "error_subcode": 2207042,
                    "is_transient": false,
                    "error_user_title": "Max posts reached",
                    "error_user_msg": "The account has reached its publishing limit for the day. Try again later.",
                }),
            ),
            Meta::Facebook => throttled(
                meta,
                32,
                "(#32) Page request limit reached",
                Duration::from_secs(3600),
            ),
        },
    }
}

fn graph_time(us: u128) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// The top-level names of a `fields` parameter (`a,b{c,d},e.summary(true)` → `a`, `b`, `e`).
fn fields(p: &HashMap<String, String>) -> Vec<String> {
    let Some(raw) = p.get("fields") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let (mut depth, mut current) = (0i32, String::new());
    for ch in raw.chars() {
        match ch {
            '{' | '(' => depth += 1,
            '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if depth == 0 && ch != '}' && ch != ')' {
            current.push(ch);
        }
    }
    out.push(current);
    out.into_iter()
        .map(|f| f.split('.').next().unwrap_or_default().trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect()
}

/// POST parameters: the query plus a form (or JSON) body, as the Graph API takes them.
fn post_params(
    q: HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> HashMap<String, String> {
    let mut p = q;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if json {
        if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
            for (k, v) in o {
                p.insert(
                    k,
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                );
            }
        }
    } else {
        p.extend(url::form_urlencoded::parse(body).into_owned());
    }
    p
}

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// A (Facebook) user token; the sandbox account named at login.
    User(String),
    /// A Page token for this Page.
    Page(String),
}

impl Caller {
    /// The account the knobs and the ledger see (a Page's posts belong to the Page).
    fn account(&self) -> &str {
        match self {
            Caller::User(a) | Caller::Page(a) => a,
        }
    }
}

fn caller(
    sb: &Sandbox,
    ctx: &Ctx,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Option<Caller> {
    let token = presented_token(headers, p)?;
    let account = sb.token_account(&token)?;
    Some(if ctx.is_page_token(&token) {
        Caller::Page(account)
    } else {
        Caller::User(account)
    })
}

impl Ctx {
    fn is_page_token(&self, token: &str) -> bool {
        self.page_tokens
            .lock()
            .expect("page tokens")
            .contains(token)
    }
}

/// Faults and latency for an API request; the caller on success.
async fn admit(
    sb: &Sandbox,
    ctx: &Ctx,
    endpoint: &str,
    who: Option<&Caller>,
    creates: bool,
) -> Result<Caller, Response> {
    sb.admit(ctx.meta.name(), endpoint, who.map(Caller::account), creates)
        .await
        .map_err(|f| fault(ctx.meta, f))?;
    who.cloned().ok_or_else(bad_token)
}

fn ok(sb: &Sandbox, ctx: &Ctx, endpoint: &str, account: &str, post_id: Option<&str>) {
    sb.record_full(
        ctx.meta.name(),
        endpoint,
        Some(account),
        None,
        post_id,
        "ok",
    );
}

fn refused(sb: &Sandbox, ctx: &Ctx, endpoint: &str, account: &str, outcome: &str) {
    sb.record_full(
        ctx.meta.name(),
        endpoint,
        Some(account),
        None,
        None,
        outcome,
    );
}

// ----- login -----------------------------------------------------------------------------------

async fn dialog(State(sb): State<Sandbox>, Query(q): Query<AuthorizeQuery>) -> Response {
    crate::authorize(State(sb), Query(q)).await
}

async fn access_token(
    State(sb): State<Sandbox>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let platform = ctx.meta.name();
    if q.get("client_id") != Some(&sb.client.id) {
        sb.record_full(
            platform,
            "oauth.access_token",
            None,
            None,
            None,
            "invalid_client",
        );
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Error validating application. Invalid application ID.", "code": 101}),
        );
    }
    if q.get("client_secret") != Some(&sb.client.secret) {
        sb.record_full(
            platform,
            "oauth.access_token",
            None,
            None,
            None,
            "invalid_client",
        );
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Error validating client secret.", "code": 1}),
        );
    }
    match q.get("grant_type").map(String::as_str) {
        None | Some("authorization_code") => code_exchange(&sb, platform, &q),
        Some("fb_exchange_token") => long_lived_exchange(&sb, &ctx, &q),
        Some(other) => invalid(&format!("Unsupported grant_type: {other}")),
    }
}

fn token_answer(token: &str, expires_in: u64) -> Response {
    Json(json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}))
        .into_response()
}

fn code_exchange(sb: &Sandbox, platform: &str, q: &HashMap<String, String>) -> Response {
    let mut store = sb.store.lock().expect("store");
    let Some(grant) = q.get("code").and_then(|c| store.codes.remove(c)) else {
        drop(store);
        sb.record_full(platform, "oauth.code", None, None, None, "invalid_grant");
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "This authorization code has been used.", "code": 100, "error_subcode": 36009}),
        );
    };
    if grant.expires < Instant::now()
        || q.get("redirect_uri").map(String::as_str) != Some(grant.redirect_uri.as_str())
    {
        drop(store);
        sb.record_full(
            platform,
            "oauth.code",
            Some(&grant.account),
            None,
            None,
            "invalid_grant",
        );
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request", "code": 100, "error_subcode": 36008}),
        );
    }
    let verifier_ok = q
        .get("code_verifier")
        .is_some_and(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == grant.challenge);
    if !verifier_ok {
        drop(store);
        sb.record_full(
            platform,
            "oauth.code",
            Some(&grant.account),
            None,
            None,
            "pkce_mismatch",
        );
        return invalid("Invalid code_verifier for this authorization code.");
    }
    let family = token("grant");
    let body = crate::issue_tokens(&mut store, &family, &grant.account, &grant.scope, false);
    drop(store);
    sb.record_full(
        platform,
        "oauth.code",
        Some(&grant.account),
        None,
        None,
        "issued",
    );
    token_answer(
        body["access_token"].as_str().unwrap_or_default(),
        body["expires_in"].as_u64().unwrap_or_default(),
    )
}

fn long_lived_exchange(sb: &Sandbox, ctx: &Ctx, q: &HashMap<String, String>) -> Response {
    let platform = ctx.meta.name();
    let presented = q.get("fb_exchange_token").cloned().unwrap_or_default();
    // a Page token is not a user token: Meta will not exchange it
    let is_page = ctx.is_page_token(&presented);
    let mut store = sb.store.lock().expect("store");
    match store.knobs.fail_refresh.take().as_deref() {
        Some("transient") => {
            drop(store);
            sb.record_full(platform, "oauth.exchange", None, None, None, "transient");
            return graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "An unexpected error has occurred. Please retry your request later.", "code": 2, "is_transient": true}),
            );
        }
        Some("invalid_grant") => {
            if let Some(family) = store.access.get(&presented).map(|g| g.family.clone()) {
                store.access.retain(|_, g| g.family != family);
                store.revoked_families.push(family);
            }
            drop(store);
            sb.record_full(
                platform,
                "oauth.exchange",
                None,
                None,
                None,
                "invalid_grant",
            );
            return graph_error(
                StatusCode::BAD_REQUEST,
                json!({"message": "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.", "code": 190, "error_subcode": 460}),
            );
        }
        _ => {}
    }
    let grant = store
        .access
        .get(&presented)
        .filter(|g| g.expires > Instant::now() && !is_page)
        .map(|g| (g.account.clone(), g.family.clone()));
    let Some((account, family)) = grant else {
        drop(store);
        sb.record_full(
            platform,
            "oauth.exchange",
            None,
            None,
            None,
            "invalid_token",
        );
        return bad_token();
    };
    let long = token("at");
    store.access.insert(
        long.clone(),
        AccessGrant {
            account: account.clone(),
            expires: Instant::now() + Duration::from_secs(LONG_LIVED_SECS),
            family,
        },
    );
    drop(store);
    sb.record_full(
        platform,
        "oauth.exchange",
        Some(&account),
        None,
        None,
        "issued",
    );
    token_answer(&long, LONG_LIVED_SECS)
}

// ----- accounts --------------------------------------------------------------------------------

fn user_id(account: &str) -> String {
    format!("user-{account}")
}

async fn me(
    State(sb): State<Sandbox>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let who = caller(&sb, &ctx, &headers, &q);
    let who = match admit(&sb, &ctx, "me", who.as_ref(), false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    ok(&sb, &ctx, "me", who.account(), None);
    match who {
        Caller::Page(page) => Json(json!({"id": page, "name": format!("Sandbox Page {page}")})),
        Caller::User(a) => Json(json!({"id": user_id(&a), "name": format!("Sandbox user {a}")})),
    }
    .into_response()
}

/// The Page token of `page` for the user grant `family`: the same token on every call, as Meta's
/// Page tokens derived from one user token are.
fn page_token(sb: &Sandbox, ctx: &Ctx, page: &str, family: &str) -> String {
    let mut pages = ctx.page_tokens.lock().expect("page tokens");
    let mut store = sb.store.lock().expect("store");
    if let Some((t, _)) = store.access.iter().find(|(t, g)| {
        pages.contains(*t) && g.account == page && g.family == family && g.expires > Instant::now()
    }) {
        return t.clone();
    }
    let t = token("pt");
    pages.insert(t.clone());
    store.access.insert(
        t.clone(),
        AccessGrant {
            account: page.to_owned(),
            expires: Instant::now() + Duration::from_secs(PAGE_TOKEN_SECS),
            family: family.to_owned(),
        },
    );
    t
}

fn presented_token(headers: &HeaderMap, q: &HashMap<String, String>) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| q.get("access_token").cloned())
}

async fn me_accounts(
    State(sb): State<Sandbox>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let who = caller(&sb, &ctx, &headers, &q);
    let who = match admit(&sb, &ctx, "me.accounts", who.as_ref(), false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Caller::User(account) = who else {
        return invalid("(#100) Tried accessing nonexisting field (accounts) on node type (Page)");
    };
    let family = presented_token(&headers, &q)
        .and_then(|t| {
            sb.store
                .lock()
                .expect("store")
                .access
                .get(&t)
                .map(|g| g.family.clone())
        })
        .unwrap_or_default();
    let wanted = fields(&q);
    let wants = |f: &str| {
        wanted.is_empty() && f != "instagram_business_account" || wanted.iter().any(|w| w == f)
    };
    let page_id = match ctx.meta {
        Meta::Facebook => account.clone(),
        Meta::Instagram => format!("page-{account}"),
    };
    let mut page = serde_json::Map::new();
    page.insert("id".into(), json!(page_id));
    if wants("name") {
        page.insert("name".into(), json!(format!("Sandbox Page {page_id}")));
    }
    if wants("access_token") {
        page.insert(
            "access_token".into(),
            json!(page_token(&sb, &ctx, &page_id, &family)),
        );
    }
    if wants("category") {
        page.insert("category".into(), json!("Brand"));
    }
    if ctx.meta == Meta::Instagram && wants("instagram_business_account") {
        page.insert(
            "instagram_business_account".into(),
            json!({"id": account, "username": account}),
        );
    }
    ok(&sb, &ctx, "me.accounts", &account, None);
    Json(json!({
        "data": [Value::Object(page)],
        "paging": {"cursors": {"before": "QVFIUjAy", "after": "QVFIUjAy"}},
    }))
    .into_response()
}

// ----- nodes -----------------------------------------------------------------------------------

fn version_ok(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
}

fn unknown_version(v: &str) -> Response {
    invalid(&format!("Unknown path components: /{v}"))
}

/// A Facebook post id is `{page-id}_{post}`.
fn fb_post(sb: &Sandbox, id: &str) -> Option<Post> {
    let (page, post) = id.rsplit_once('_')?;
    sb.post("facebook", post).filter(|p| p.account == page)
}

fn fb_post_id(p: &Post) -> String {
    format!("{}_{}", p.account, p.id)
}

fn ig_permalink(p: &Post) -> String {
    format!("https://www.instagram.com/p/{}/", p.id)
}

/// Whether a caller may read a Page's (or an Instagram account's) data.
fn may_read(who: &Caller, owner: &str) -> bool {
    who.account() == owner
}

async fn node(
    State(sb): State<Sandbox>,
    Extension(ctx): Extension<Ctx>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !version_ok(&version) {
        return unknown_version(&version);
    }
    let who = caller(&sb, &ctx, &headers, &q);
    let endpoint = match ctx.meta {
        Meta::Facebook => "post.read",
        Meta::Instagram if ctx.containers.lock().expect("containers").contains_key(&id) => {
            "container.status"
        }
        Meta::Instagram => "media.read",
    };
    let who = match admit(&sb, &ctx, endpoint, who.as_ref(), false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let wanted = fields(&q);
    let wants = |f: &str| wanted.iter().any(|w| w == f);
    match ctx.meta {
        Meta::Facebook => {
            if id == who.account() {
                ok(&sb, &ctx, "page.read", who.account(), None);
                return Json(json!({"id": id, "name": format!("Sandbox Page {id}")}))
                    .into_response();
            }
            let Some(p) = fb_post(&sb, &id).filter(|p| may_read(&who, &p.account)) else {
                return unsupported(&id);
            };
            let (likes, comments, shares, _) = Sandbox::engagement(&p);
            let mut out = json!({"id": fb_post_id(&p)});
            if wants("message") {
                out["message"] = json!(p.text);
            }
            if wants("created_time") {
                out["created_time"] = json!(graph_time(p.created_us));
            }
            if wants("permalink_url") {
                out["permalink_url"] =
                    json!(format!("https://www.facebook.com/{}", fb_post_id(&p)));
            }
            if wants("likes") {
                out["likes"] = json!({"data": [], "summary": {"total_count": likes, "can_like": true, "has_liked": false}});
            }
            if wants("comments") {
                out["comments"] = json!({"data": [], "summary": {"order": "ranked", "total_count": comments, "can_comment": true}});
            }
            // Meta leaves `shares` out of a post nobody shared
            if wants("shares") && shares > 0 {
                out["shares"] = json!({"count": shares});
            }
            ok(&sb, &ctx, endpoint, who.account(), Some(&p.id));
            Json(out).into_response()
        }
        Meta::Instagram => {
            let mut containers = ctx.containers.lock().expect("containers");
            if let Some(c) = containers.get_mut(&id) {
                if !may_read(&who, &c.owner) {
                    drop(containers);
                    return unsupported(&id);
                }
                c.status_reads += 1;
                let status = match (&c.published, c.status_reads) {
                    (Some(_), _) => "PUBLISHED",
                    (None, 1) => "IN_PROGRESS",
                    (None, _) => "FINISHED",
                };
                drop(containers);
                ok(&sb, &ctx, endpoint, who.account(), Some(&id));
                let mut out = json!({"id": id, "status_code": status});
                if wants("status") {
                    out["status"] = json!(if status == "IN_PROGRESS" {
                        "In Progress"
                    } else {
                        "Finished: Media has been uploaded and it is ready to be published."
                    });
                }
                return Json(out).into_response();
            }
            drop(containers);
            let Some(p) = sb
                .post("instagram", &id)
                .filter(|p| may_read(&who, &p.account))
            else {
                return unsupported(&id);
            };
            let (likes, comments, _, _) = Sandbox::engagement(&p);
            let mut out = json!({"id": p.id});
            for f in &wanted {
                let v = match f.as_str() {
                    "caption" => json!(p.text),
                    "timestamp" => json!(graph_time(p.created_us)),
                    "permalink" => json!(ig_permalink(&p)),
                    "like_count" => json!(likes),
                    "comments_count" => json!(comments),
                    "media_type" => json!("IMAGE"),
                    "media_product_type" => json!("FEED"),
                    "media_url" => json!(p.media.first()),
                    "username" => json!(p.account),
                    _ => continue,
                };
                out[f.as_str()] = v;
            }
            ok(&sb, &ctx, endpoint, who.account(), Some(&p.id));
            Json(out).into_response()
        }
    }
}

/// A lifetime insights answer.
fn insights(object: &str, values: &[(&str, i64)]) -> Response {
    let data: Vec<Value> = values
        .iter()
        .map(|(name, value)| {
            json!({
                "name": name, "period": "lifetime", "values": [{"value": value}],
                "title": name, "description": format!("Lifetime {name}"),
                "id": format!("{object}/insights/{name}/lifetime"),
            })
        })
        .collect();
    Json(json!({ "data": data })).into_response()
}

fn metric_names(q: &HashMap<String, String>) -> Vec<String> {
    q.get("metric")
        .map(|m| {
            m.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

async fn edge_get(
    State(sb): State<Sandbox>,
    Extension(ctx): Extension<Ctx>,
    Path((version, id, edge)): Path<(String, String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !version_ok(&version) {
        return unknown_version(&version);
    }
    let who = caller(&sb, &ctx, &headers, &q);
    let endpoint = match (ctx.meta, edge.as_str()) {
        (Meta::Facebook, "feed") => "feed.list",
        (Meta::Facebook, "insights") => "post.insights",
        (Meta::Instagram, "media") => "media.list",
        (Meta::Instagram, "insights") => "media.insights",
        (Meta::Instagram, "content_publishing_limit") => "publishing_limit",
        _ => {
            return invalid(&format!(
                "(#100) Tried accessing nonexisting field ({edge}) on node type ({})",
                if ctx.meta == Meta::Facebook {
                    "Page"
                } else {
                    "IGUser"
                }
            ));
        }
    };
    let who = match admit(&sb, &ctx, endpoint, who.as_ref(), false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let since_us = q
        .get("since")
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| s as u128 * 1_000_000)
        .unwrap_or(0);
    match endpoint {
        "feed.list" | "media.list" => {
            if !may_read(&who, &id) {
                return unsupported(&id);
            }
            let mut posts = sb.posts_of(ctx.meta.name(), &id, since_us);
            posts.reverse(); // newest first, as Meta lists
            let more = posts.len() > limit;
            let data: Vec<Value> = posts
                .iter()
                .take(limit)
                .map(|p| match ctx.meta {
                    Meta::Facebook => json!({"id": fb_post_id(p), "message": p.text, "created_time": graph_time(p.created_us)}),
                    Meta::Instagram => json!({"id": p.id, "caption": p.text, "timestamp": graph_time(p.created_us), "permalink": ig_permalink(p)}),
                })
                .collect();
            let mut out = json!({"data": data, "paging": {"cursors": {"before": "QVFIUjAx", "after": "QVFIUjAy"}}});
            if more {
                out["paging"]["next"] = json!(format!(
                    "{}/{}/{version}/{id}/{edge}?limit={limit}&after=QVFIUjAy",
                    sb.issuer(),
                    ctx.meta.name()
                ));
            }
            sb.record_full(
                ctx.meta.name(),
                endpoint,
                Some(who.account()),
                None,
                None,
                if data.is_empty() { "empty" } else { "ok" },
            );
            Json(out).into_response()
        }
        "post.insights" | "media.insights" => {
            let post = match ctx.meta {
                Meta::Facebook => fb_post(&sb, &id),
                Meta::Instagram => sb.post("instagram", &id),
            };
            let Some(p) = post.filter(|p| may_read(&who, &p.account)) else {
                return unsupported(&id);
            };
            let (likes, comments, shares, impressions) = Sandbox::engagement(&p);
            let reach = impressions * 2 / 3;
            let mut values = Vec::new();
            for m in metric_names(&q) {
                let v = match (ctx.meta, m.as_str()) {
                    (Meta::Facebook, "post_impressions") => impressions,
                    (
                        Meta::Facebook,
                        "post_impressions_unique" | "post_total_media_view_unique",
                    ) => reach,
                    (Meta::Facebook, "post_clicks") => likes / 3,
                    (Meta::Instagram, "reach") => reach,
                    (Meta::Instagram, "views") => impressions,
                    (Meta::Instagram, "shares") => shares,
                    (Meta::Instagram, "likes") => likes,
                    (Meta::Instagram, "comments") => comments,
                    (Meta::Instagram, "saved") => likes / 7,
                    (Meta::Instagram, "impressions") => {
                        return invalid(
                            "(#100) Starting from version v22.0 and above, the impressions metric is no longer supported for media created after July 1, 2024. Please use the views metric instead.",
                        );
                    }
                    (_, other) => {
                        return invalid(&format!(
                            "(#100) The value must be a valid insights metric: {other}"
                        ));
                    }
                };
                values.push((m, v));
            }
            if values.is_empty() {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "No metric was specified to be fetched. Please specify one or more metrics to be fetched and try again.", "code": 3001, "error_subcode": 1504028}),
                );
            }
            ok(&sb, &ctx, endpoint, who.account(), Some(&p.id));
            let object = match ctx.meta {
                Meta::Facebook => fb_post_id(&p),
                Meta::Instagram => p.id.clone(),
            };
            let refs: Vec<(&str, i64)> = values.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            insights(&object, &refs)
        }
        _ => {
            // publishing_limit
            if !may_read(&who, &id) {
                return unsupported(&id);
            }
            let used = sb.quota_used("instagram", &id);
            let limit = sb.quota_limit().unwrap_or(IG_DEFAULT_LIMIT);
            ok(&sb, &ctx, endpoint, who.account(), None);
            Json(json!({"data": [{"quota_usage": used, "config": {"quota_total": limit, "quota_duration": 86400}}]}))
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_fields_are_named() {
        let q = HashMap::from([(
            "fields".to_owned(),
            "id,name,instagram_business_account{id,username},likes.summary(true).limit(0),shares"
                .to_owned(),
        )]);
        assert_eq!(
            fields(&q),
            [
                "id",
                "name",
                "instagram_business_account",
                "likes",
                "shares"
            ]
        );
    }

    #[test]
    fn versions_look_like_meta_versions() {
        assert!(version_ok("v21.0"));
        assert!(!version_ok("21.0"));
        assert!(!version_ok("vX"));
    }
}
