//! TikTok's shapes under `/tiktok`: Login Kit v2 (`/v2/auth/authorize/` with `client_key`,
//! `/v2/oauth/token/` answering `open_id` and `refresh_expires_in`), `/v2/user/info/`, the
//! Content Posting API's photo Direct Post (`creator_info/query`, `content/init`,
//! `status/fetch`) and the Display API (`/v2/video/list/`, `/v2/video/query/`).
//!
//! Every answer is TikTok's envelope `{"data": {...}, "error": {"code", "message", "log_id"}}`
//! with `code: "ok"` on success. Faults: a bad token is 401 `access_token_invalid`, the
//! `rate_limit_rate` knob 429 `rate_limit_exceeded` (with `Retry-After`), the `error_rate` knob
//! 500 `internal_error`, the `quota_per_day` knob TikTok's daily post cap, 403
//! `spam_risk_too_many_posts`.
//!
//! The post exists from `content/init` on (accept-then-fail applies to that answer). The photo
//! URLs are pulled at init; TikTok reports a failed pull or a format it does not take (PNG) later,
//! as `FAILED` with a `fail_reason` on `status/fetch`. The first status poll of a post answers
//! `PROCESSING_DOWNLOAD`, the next ones `PUBLISH_COMPLETE` with `publicaly_available_post_id`.
//! Unlike TikTok, whose video list may leave photo posts out, the sandbox lists them.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::posts::{Fault, NewPost, Post};
use crate::{AuthorizeQuery, Sandbox, TokenForm, now_us, token};

const PLATFORM: &str = "tiktok";
const PUBLISH_PREFIX: &str = "p_pub_url~v2.";
/// What the sandbox's creators may post with.
const PRIVACY_LEVELS: [&str; 3] = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];
const MAX_TITLE_UTF16: usize = 90;
const MAX_DESCRIPTION_UTF16: usize = 4000;
const MAX_PHOTOS: usize = 35;
const MAX_LIST: u64 = 20;
/// TikTok's refresh tokens live a year.
const REFRESH_LIFETIME_SECS: u64 = 365 * 24 * 3600;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v2/auth/authorize/", get(authorize))
        .route("/v2/oauth/token/", post(token_endpoint))
        .route("/v2/user/info/", get(user_info))
        .route("/v2/post/publish/creator_info/query/", post(creator_info))
        .route("/v2/post/publish/content/init/", post(content_init))
        .route("/v2/post/publish/status/fetch/", post(status_fetch))
        .route("/v2/video/list/", post(video_list))
        .route("/v2/video/query/", post(video_query))
}

fn log_id() -> String {
    token("log")
}

/// TikTok's envelope with `error.code == "ok"`.
fn ok(data: Value) -> Response {
    Json(json!({
        "data": data,
        "error": {"code": "ok", "message": "", "log_id": log_id()},
    }))
    .into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "data": {},
            "error": {"code": code, "message": message, "log_id": log_id()},
        })),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_params", message)
}

fn fault(f: Fault) -> Response {
    match f {
        Fault::Unauthorized => error(
            StatusCode::UNAUTHORIZED,
            "access_token_invalid",
            "The access token is invalid or not found in the request.",
        ),
        Fault::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong. Please try again later.",
        ),
        Fault::RateLimited(d) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "API rate limit was exceeded. Please try again later.",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                d.as_secs()
                    .to_string()
                    .parse()
                    .expect("digits are a header value"),
            );
            r
        }
        Fault::QuotaExceeded { used, limit } => error(
            StatusCode::FORBIDDEN,
            "spam_risk_too_many_posts",
            &format!(
                "The daily post cap from the API is reached for the current user ({used} of {limit})."
            ),
        ),
    }
}

/// Let the request through the knobs for the bearer's account.
async fn admit(
    sb: &Sandbox,
    headers: &HeaderMap,
    endpoint: &str,
    creates: bool,
) -> Result<String, Fault> {
    let account = sb.bearer_account(headers);
    sb.admit(PLATFORM, endpoint, account.as_deref(), creates)
        .await?;
    Ok(account.unwrap_or_default())
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The comma-separated `fields` query parameter, required by TikTok's read endpoints.
#[derive(Debug, Deserialize)]
struct Fields {
    fields: Option<String>,
}

impl Fields {
    fn list(&self) -> Result<Vec<String>, &'static str> {
        let list: Vec<String> = self
            .fields
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        if list.is_empty() {
            return Err("fields is required");
        }
        Ok(list)
    }
}

/// Only the requested fields of an object, as TikTok answers.
fn select(all: Value, fields: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    if let Value::Object(map) = all {
        for (k, v) in map {
            if fields.contains(&k) {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

/// A JSON object body, or why not.
fn json_body(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| "the request body is not a JSON object".to_owned())
}

// ----- Login Kit ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    client_key: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    login_hint: Option<String>,
}

/// TikTok's authorize page: `client_key` and comma-separated scopes, otherwise the sandbox's
/// own consent flow.
async fn authorize(State(sb): State<Sandbox>, Query(q): Query<AuthorizeParams>) -> Response {
    if q.scope.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return crate::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope is required",
        );
    }
    if q.scope.as_deref().is_some_and(|s| s.contains(' ')) {
        return crate::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scopes are separated by commas",
        );
    }
    crate::authorize(
        State(sb),
        Query(AuthorizeQuery {
            response_type: q.response_type,
            client_id: q.client_key,
            redirect_uri: q.redirect_uri,
            state: q.state,
            scope: q.scope,
            code_challenge: q.code_challenge,
            code_challenge_method: q.code_challenge_method,
            login_hint: q.login_hint,
        }),
    )
    .await
}

#[derive(Debug, Deserialize)]
struct TokenParams {
    client_key: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

/// `POST /v2/oauth/token/`: the sandbox's grant logic (PKCE, rotation, reuse detection, knobs)
/// in TikTok's shape: credentials in the form as `client_key`/`client_secret`, `open_id` and
/// `refresh_expires_in` in the answer, `log_id` in errors.
async fn token_endpoint(State(sb): State<Sandbox>, Form(f): Form<TokenParams>) -> Response {
    let Some(grant_type) = f.grant_type.filter(|g| !g.is_empty()) else {
        return tiktok_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        );
    };
    let inner = crate::token_endpoint(
        State(sb.clone()),
        HeaderMap::new(),
        Form(TokenForm {
            grant_type,
            code: f.code,
            redirect_uri: f.redirect_uri,
            code_verifier: f.code_verifier,
            refresh_token: f.refresh_token,
            client_id: f.client_key,
            client_secret: f.client_secret,
        }),
    )
    .await;
    let status = inner.status();
    let Ok(bytes) = axum::body::to_bytes(inner.into_body(), 64 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "token answer lost").into_response();
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        // the sandbox's plain-text failures (the `fail_refresh=transient` knob) stay as they are
        return (status, bytes).into_response();
    };
    if let Some(access) = v["access_token"].as_str() {
        let open_id = sb.token_account(access).unwrap_or_default();
        v["open_id"] = json!(open_id);
        v["refresh_expires_in"] = json!(REFRESH_LIFETIME_SECS);
        v["token_type"] = json!("Bearer");
        return (status, Json(v)).into_response();
    }
    v["log_id"] = json!(log_id());
    (status, Json(v)).into_response()
}

fn tiktok_oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description, "log_id": log_id()})),
    )
        .into_response()
}

// ----- user info ---------------------------------------------------------------------------------

async fn user_info(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let account = match admit(&sb, &headers, "user.info", false).await {
        Ok(a) => a,
        Err(f) => return fault(f),
    };
    let fields = match q.list() {
        Ok(f) => f,
        Err(m) => return invalid(m),
    };
    sb.record_full(PLATFORM, "user.info", Some(&account), None, None, "ok");
    ok(json!({"user": select(
        json!({
            "open_id": account,
            "union_id": format!("union-{account}"),
            "display_name": format!("TikTok sandbox {account}"),
            "avatar_url": "",
        }),
        &fields,
    )}))
}

// ----- Content Posting API -----------------------------------------------------------------------

async fn creator_info(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let account = match admit(&sb, &headers, "creator_info.query", false).await {
        Ok(a) => a,
        Err(f) => return fault(f),
    };
    sb.record_full(
        PLATFORM,
        "creator_info.query",
        Some(&account),
        None,
        None,
        "ok",
    );
    ok(json!({
        "creator_avatar_url": "",
        "creator_username": account,
        "creator_nickname": format!("TikTok sandbox {account}"),
        "privacy_level_options": PRIVACY_LEVELS,
        "comment_disabled": false,
        "duet_disabled": false,
        "stitch_disabled": false,
        "max_video_post_duration_sec": 600,
    }))
}

/// The parts of a photo `content/init` request the sandbox checks as TikTok does.
struct PhotoInit {
    description: String,
    photos: Vec<String>,
}

fn validate_init(b: &Value) -> Result<PhotoInit, String> {
    match b["media_type"].as_str() {
        Some("PHOTO") => {}
        Some(other) => return Err(format!("media_type {other} is not supported; only PHOTO")),
        None => return Err("media_type is required".into()),
    }
    match b["post_mode"].as_str() {
        Some("DIRECT_POST") => {}
        Some("MEDIA_UPLOAD") => {
            return Err("post_mode MEDIA_UPLOAD is not enabled for this client".into());
        }
        Some(other) => return Err(format!("post_mode {other} is not valid")),
        None => return Err("post_mode is required".into()),
    }
    let info = &b["post_info"];
    if !info.is_object() {
        return Err("post_info is required".into());
    }
    match info["privacy_level"].as_str() {
        Some(p) if PRIVACY_LEVELS.contains(&p) => {}
        Some(p) => {
            return Err(format!(
                "privacy_level {p} is not an option of this creator"
            ));
        }
        None => return Err("post_info.privacy_level is required for DIRECT_POST".into()),
    }
    for flag in ["disable_comment", "auto_add_music"] {
        if !(info[flag].is_null() || info[flag].is_boolean()) {
            return Err(format!("post_info.{flag} must be a boolean"));
        }
    }
    let title = match &info["title"] {
        Value::Null => "",
        Value::String(s) => s.as_str(),
        _ => return Err("post_info.title must be a string".into()),
    };
    if utf16(title) > MAX_TITLE_UTF16 {
        return Err(format!(
            "post_info.title is longer than {MAX_TITLE_UTF16} characters"
        ));
    }
    let description = match &info["description"] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        _ => return Err("post_info.description must be a string".into()),
    };
    if utf16(&description) > MAX_DESCRIPTION_UTF16 {
        return Err(format!(
            "post_info.description is longer than {MAX_DESCRIPTION_UTF16} characters"
        ));
    }
    let source = &b["source_info"];
    match source["source"].as_str() {
        Some("PULL_FROM_URL") => {}
        Some(other) => {
            return Err(format!(
                "source {other} is not supported for photos; only PULL_FROM_URL"
            ));
        }
        None => return Err("source_info.source is required".into()),
    }
    let photos: Vec<String> = match source["photo_images"].as_array() {
        Some(a) if !a.is_empty() && a.len() <= MAX_PHOTOS => {
            let urls: Vec<String> = a
                .iter()
                .filter_map(|u| u.as_str())
                .filter(|u| url::Url::parse(u).is_ok())
                .map(str::to_owned)
                .collect();
            if urls.len() != a.len() {
                return Err("source_info.photo_images must be URLs".into());
            }
            urls
        }
        Some(a) if !a.is_empty() => {
            return Err(format!("at most {MAX_PHOTOS} photo_images"));
        }
        _ => return Err("source_info.photo_images is required".into()),
    };
    match source["photo_cover_index"].as_u64() {
        Some(i) if (i as usize) < photos.len() => {}
        Some(_) => return Err("source_info.photo_cover_index is out of range".into()),
        None => return Err("source_info.photo_cover_index is required".into()),
    }
    Ok(PhotoInit {
        description,
        photos,
    })
}

/// Pull every photo as TikTok would: `Err(fail_reason)` when one cannot be pulled or is not
/// JPEG or WebP.
async fn pull_photos(sb: &Sandbox, photos: &[String]) -> Result<(), &'static str> {
    let checking = sb.knobs().fetch_media;
    for url in photos {
        let Ok((bytes, content_type)) = sb.fetch_media(url).await else {
            return Err("photo_pull_failed");
        };
        if !checking {
            continue;
        }
        let jpeg = content_type == "image/jpeg" && bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
        let webp = content_type == "image/webp"
            && bytes.len() >= 12
            && &bytes[0..4] == b"RIFF"
            && &bytes[8..12] == b"WEBP";
        if !(jpeg || webp) {
            return Err("file_format_check_failed");
        }
    }
    Ok(())
}

async fn content_init(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let account = match admit(&sb, &headers, "content.init", true).await {
        Ok(a) => a,
        Err(f) => return fault(f),
    };
    let init = match json_body(&body).and_then(|b| validate_init(&b)) {
        Ok(i) => i,
        Err(e) => {
            sb.record_full(
                PLATFORM,
                "content.init",
                Some(&account),
                None,
                None,
                "invalid",
            );
            return invalid(&e);
        }
    };
    if let Err(reason) = pull_photos(&sb, &init.photos).await {
        // accepted, then failed while TikTok pulled the photos: no post, a FAILED status
        let publish_id = format!("{PUBLISH_PREFIX}{}", token("failed"));
        sb.record_full(
            PLATFORM,
            "content.init",
            Some(&account),
            None,
            Some(&publish_id),
            reason,
        );
        return ok(json!({ "publish_id": publish_id }));
    }
    let (post, after) = sb.create_post(NewPost {
        platform: PLATFORM,
        endpoint: "content.init",
        account: &account,
        text: &init.description,
        marker: None,
        link_url: None,
        media: init.photos,
    });
    sb.answer_created(
        after,
        ok(json!({ "publish_id": format!("{PUBLISH_PREFIX}{}", post.id) })),
    )
}

async fn status_fetch(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let account = match admit(&sb, &headers, "status.fetch", false).await {
        Ok(a) => a,
        Err(f) => return fault(f),
    };
    let Some(publish_id) = json_body(&body)
        .ok()
        .and_then(|b| b["publish_id"].as_str().map(str::to_owned))
    else {
        return invalid("publish_id is required");
    };
    let post = publish_id
        .strip_prefix(PUBLISH_PREFIX)
        .and_then(|id| sb.post(PLATFORM, id))
        .filter(|p| p.account == account);
    if let Some(post) = post {
        let polled = {
            let store = sb.store.lock().expect("store");
            store.ledger.iter().any(|e| {
                e.platform == PLATFORM
                    && e.endpoint == "status.fetch"
                    && e.post_id.as_deref() == Some(post.id.as_str())
            })
        };
        let (outcome, data) = if polled {
            (
                "complete",
                json!({"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [post.id]}),
            )
        } else {
            (
                "processing",
                json!({"status": "PROCESSING_DOWNLOAD", "uploaded_bytes": 0}),
            )
        };
        sb.record_full(
            PLATFORM,
            "status.fetch",
            Some(&account),
            None,
            Some(&post.id),
            outcome,
        );
        return ok(data);
    }
    let failed = {
        let store = sb.store.lock().expect("store");
        store
            .ledger
            .iter()
            .find(|e| {
                e.platform == PLATFORM
                    && e.endpoint == "content.init"
                    && e.account.as_deref() == Some(account.as_str())
                    && e.post_id.as_deref() == Some(publish_id.as_str())
            })
            .map(|e| e.outcome.clone())
    };
    match failed {
        Some(reason) => {
            sb.record_full(
                PLATFORM,
                "status.fetch",
                Some(&account),
                None,
                Some(&publish_id),
                "failed",
            );
            ok(json!({"status": "FAILED", "fail_reason": reason}))
        }
        None => invalid("publish_id does not exist"),
    }
}

// ----- Display API -------------------------------------------------------------------------------

/// A post as the Display API shows a video (photo posts included here).
fn video(sb: &Sandbox, p: &Post, with_counts: bool) -> Value {
    let first_line = p.text.lines().next().unwrap_or_default();
    let mut v = json!({
        "id": p.id,
        "create_time": (p.created_us / 1_000_000) as i64,
        "title": first_line.chars().take(MAX_TITLE_UTF16).collect::<String>(),
        "video_description": p.text,
        "share_url": format!("{}/tiktok/@{}/photo/{}", sb.issuer(), p.account, p.id),
        "cover_image_url": p.media.first().cloned().unwrap_or_default(),
    });
    if with_counts {
        let (likes, comments, shares, views) = Sandbox::engagement(p);
        v["like_count"] = json!(likes);
        v["comment_count"] = json!(comments);
        v["share_count"] = json!(shares);
        v["view_count"] = json!(views);
    }
    v
}

async fn video_list(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
    body: Bytes,
) -> Response {
    let account = match admit(&sb, &headers, "video.list", false).await {
        Ok(a) => a,
        Err(f) => return fault(f),
    };
    let fields = match q.list() {
        Ok(f) => f,
        Err(m) => return invalid(m),
    };
    // an empty body is allowed: the first page of 20
    let b = if body.is_empty() {
        json!({})
    } else {
        match json_body(&body) {
            Ok(b) => b,
            Err(e) => return invalid(&e),
        }
    };
    let max = match &b["max_count"] {
        Value::Null => MAX_LIST,
        v => match v.as_u64() {
            Some(n) if (1..=MAX_LIST).contains(&n) => n,
            _ => return invalid("max_count must be between 1 and 20"),
        },
    };
    // the cursor is a UTC timestamp in milliseconds: posts created before it
    let before_us = match &b["cursor"] {
        Value::Null => u128::MAX,
        v => match v.as_u64() {
            Some(ms) => u128::from(ms) * 1000,
            None => return invalid("cursor must be a timestamp in milliseconds"),
        },
    };
    let mut posts: Vec<Post> = sb
        .posts_of(PLATFORM, &account, 0)
        .into_iter()
        .filter(|p| p.created_us < before_us)
        .collect();
    posts.reverse();
    let has_more = posts.len() as u64 > max;
    posts.truncate(max as usize);
    let cursor = posts
        .last()
        .map(|p| (p.created_us / 1000) as u64)
        .unwrap_or_else(|| (now_us() / 1000) as u64);
    let videos: Vec<Value> = posts
        .iter()
        .map(|p| select(video(&sb, p, true), &fields))
        .collect();
    sb.record_full(
        PLATFORM,
        "video.list",
        Some(&account),
        None,
        None,
        if videos.is_empty() { "empty" } else { "listed" },
    );
    ok(json!({"videos": videos, "cursor": cursor, "has_more": has_more}))
}

async fn video_query(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
    body: Bytes,
) -> Response {
    let account = match admit(&sb, &headers, "video.query", false).await {
        Ok(a) => a,
        Err(f) => return fault(f),
    };
    let fields = match q.list() {
        Ok(f) => f,
        Err(m) => return invalid(m),
    };
    let ids: Vec<String> = match json_body(&body)
        .ok()
        .and_then(|b| b["filters"]["video_ids"].as_array().cloned())
    {
        Some(ids) if !ids.is_empty() && ids.len() <= MAX_LIST as usize => ids
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => return invalid("filters.video_ids must hold 1 to 20 ids"),
    };
    let videos: Vec<Value> = ids
        .iter()
        .filter_map(|id| sb.post(PLATFORM, id))
        .filter(|p| p.account == account)
        .map(|p| select(video(&sb, &p, true), &fields))
        .collect();
    sb.record_full(
        PLATFORM,
        "video.query",
        Some(&account),
        None,
        ids.first().map(String::as_str),
        if videos.is_empty() {
            "not_found"
        } else {
            "found"
        },
    );
    ok(json!({"videos": videos, "cursor": 0, "has_more": false}))
}
