//! LinkedIn under `/linkedin/`, in the shapes of LinkedIn's reference pages: OAuth 2.0 at
//! `/oauth/v2/authorization` and `/oauth/v2/accessToken` (client credentials in the form body;
//! `scope` answered comma-separated), OpenID `GET /v2/userinfo`, and the versioned REST API —
//! `POST /rest/images?action=initializeUpload` + `PUT` of the bytes to the `uploadUrl`,
//! `GET /rest/images/{urn}`, `POST /rest/posts` (201, the URN in `x-restli-id`),
//! `GET /rest/posts?q=author`, `GET /rest/socialActions/{urn}` and
//! `GET /rest/organizationalEntityShareStatistics?q=organizationalEntity`.
//!
//! Validated as LinkedIn does: a missing `LinkedIn-Version` is 400 `VERSION_MISSING`, a version
//! that is not active (older than a year, or in the future) 426 `NONEXISTENT_VERSION`, a missing
//! `X-Restli-Protocol-Version: 2.0.0` 400; unknown or missing post fields 422; an author the
//! token may not post as 403 `ACCESS_DENIED`; reading a member's posts or social actions needs
//! `r_member_social`, an organization's `r_organization_social`, its share statistics
//! `rw_organization_admin`. Commentary is LinkedIn's "little text": an unescaped reserved
//! character cuts the text there, as on LinkedIn. Errors are `{"status", "serviceErrorCode",
//! "code", "message"}`; the knobs' 429s are the daily throttles (no `Retry-After`: they reset at
//! midnight UTC).
//!
//! In the sandbox any member with the organization scopes administers every organization.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Form, Json, Router};
use chrono::{Datelike, Utc};
use serde_json::{Value, json};

use crate::posts::{Fault, NewPost, Post};
use crate::{Sandbox, TokenForm, now_us};

const PLATFORM: &str = "linkedin";
const RESERVED: &[char] = &[
    '\\', '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '*', '_', '~',
];
const POST_FIELDS: &[&str] = &[
    "author",
    "commentary",
    "visibility",
    "distribution",
    "lifecycleState",
    "isReshareDisabledByAuthor",
    "content",
    "contentLandingPage",
    "contentCallToActionLabel",
    "adContext",
    "container",
    "reshareContext",
];
const MAX_COMMENTARY: usize = 3000;

struct Image {
    owner: String,
    upload_id: String,
    uploaded: bool,
}

/// Images initialized on this sandbox instance, by URN.
#[derive(Clone, Default)]
struct Images(Arc<Mutex<HashMap<String, Image>>>);

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/oauth/v2/authorization", get(crate::authorize))
        .route("/oauth/v2/accessToken", post(access_token))
        .route("/v2/userinfo", get(userinfo))
        .route("/rest/images", post(initialize_upload))
        .route("/rest/images/{urn}", get(image_status))
        .route("/dms-uploads/{id}", put(upload))
        .route("/rest/posts", post(create_post).get(find_posts))
        .route("/rest/socialActions/{urn}", get(social_actions))
        .route(
            "/rest/organizationalEntityShareStatistics",
            get(share_statistics),
        )
        .layer(Extension(Images::default()))
}

fn error(
    status: StatusCode,
    code: Option<&str>,
    service_code: Option<i64>,
    message: &str,
) -> Response {
    let mut body = json!({"status": status.as_u16(), "message": message});
    if let Some(c) = code {
        body["code"] = json!(c);
    }
    if let Some(s) = service_code {
        body["serviceErrorCode"] = json!(s);
    }
    (status, Json(body)).into_response()
}

fn access_denied(message: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        Some("ACCESS_DENIED"),
        Some(100),
        message,
    )
}

fn unprocessable(message: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"errorDetailType": "com.linkedin.common.error.BadRequest", "message": message, "status": 422})),
    )
        .into_response()
}

fn fault(f: Fault) -> Response {
    match f {
        Fault::Unauthorized => error(
            StatusCode::UNAUTHORIZED,
            Some("INVALID_ACCESS_TOKEN"),
            Some(65600),
            "Invalid access token",
        ),
        Fault::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            None,
            "Internal Server Error",
        ),
        Fault::RateLimited(_) => error(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            None,
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        ),
        Fault::QuotaExceeded { .. } => error(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            None,
            "Resource level throttle MEMBER DAY limit for calls to this resource is reached.",
        ),
    }
}

/// The versioned API's gate: `LinkedIn-Version` present and active, Rest.li 2.0.0.
fn versioned(headers: &HeaderMap) -> Option<Response> {
    let Some(version) = headers
        .get("linkedin-version")
        .and_then(|v| v.to_str().ok())
    else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            Some("VERSION_MISSING"),
            None,
            "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
        ));
    };
    let now = Utc::now();
    let current = now.year() * 12 + now.month0() as i32;
    let requested = (version.len() == 6)
        .then(|| {
            let y: i32 = version[..4].parse().ok()?;
            let m: i32 = version[4..].parse().ok()?;
            (1..=12).contains(&m).then_some(y * 12 + m - 1)
        })
        .flatten();
    if !requested.is_some_and(|r| r <= current && current - r <= 12) {
        return Some(error(
            StatusCode::UPGRADE_REQUIRED,
            Some("NONEXISTENT_VERSION"),
            None,
            &format!("Requested version {version} is not active"),
        ));
    }
    if headers
        .get("x-restli-protocol-version")
        .and_then(|v| v.to_str().ok())
        != Some("2.0.0")
    {
        return Some(error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "This API requires the header X-Restli-Protocol-Version: 2.0.0",
        ));
    }
    None
}

/// The scopes granted with the bearer token.
fn token_scopes(sb: &Sandbox, headers: &HeaderMap) -> Vec<String> {
    let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Vec::new();
    };
    let store = sb.store.lock().expect("store");
    let Some(family) = store.access.get(bearer).map(|g| g.family.clone()) else {
        return Vec::new();
    };
    store
        .refresh
        .values()
        .find(|g| g.family == family)
        .map(|g| {
            g.scope
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn person(account: &str) -> String {
    format!("urn:li:person:{account}")
}

/// Whether the token's member may write as `author`.
fn may_write_as(account: &str, scopes: &[String], author: &str) -> Option<Response> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let ok = if author.starts_with("urn:li:organization:") {
        has("w_organization_social")
    } else {
        author == person(account) && has("w_member_social")
    };
    if ok {
        None
    } else {
        Some(access_denied(&format!(
            "Unpermitted fields present in REQUEST_BODY: Data Processing Exception while processing fields [/author] ({author})"
        )))
    }
}

/// Whether the token's member may read `author`'s posts and their social actions.
fn may_read(account: &str, scopes: &[String], author: &str, what: &str) -> Option<Response> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let ok = if author.starts_with("urn:li:organization:") {
        has("r_organization_social")
    } else {
        author == person(account) && has("r_member_social")
    };
    if ok {
        None
    } else {
        Some(access_denied(&format!(
            "Not enough permissions to access: {what}"
        )))
    }
}

/// LinkedIn's token endpoint: credentials in the body; LinkedIn's answer adds
/// `refresh_token_expires_in` and lists scopes comma-separated.
async fn access_token(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if f.client_id.is_none() || f.client_secret.is_none() {
        sb.record_full(
            PLATFORM,
            "oauth.accessToken",
            None,
            None,
            None,
            "no_client_in_body",
        );
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "A required parameter \"client_id\" or \"client_secret\" is missing"})),
        )
            .into_response();
    }
    let r = crate::token_endpoint(State(sb), headers, Form(f)).await;
    if r.status() != StatusCode::OK {
        return r;
    }
    let Ok(bytes) = axum::body::to_bytes(r.into_body(), 64 * 1024).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            None,
            "token answer lost",
        );
    };
    let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Some(scope) = v["scope"].as_str() {
        v["scope"] = json!(scope.split(' ').collect::<Vec<_>>().join(","));
    }
    if v.get("refresh_token").is_some() {
        v["refresh_token_expires_in"] = json!(365 * 24 * 3600);
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("token_type");
    }
    Json(v).into_response()
}

async fn userinfo(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "userinfo", account.as_deref(), false)
        .await
    {
        return fault(f);
    }
    let a = account.unwrap_or_default();
    sb.record_full(PLATFORM, "userinfo", Some(&a), None, None, "ok");
    Json(json!({
        "sub": a,
        "email_verified": true,
        "name": format!("Sandbox LinkedIn member {a}"),
        "given_name": "Sandbox",
        "family_name": a,
        "locale": {"country": "US", "language": "en"}
    }))
    .into_response()
}

async fn initialize_upload(
    State(sb): State<Sandbox>,
    Extension(images): Extension<Images>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(r) = versioned(&headers) {
        return r;
    }
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(
            PLATFORM,
            "images.initializeUpload",
            account.as_deref(),
            false,
        )
        .await
    {
        return fault(f);
    }
    let account = account.unwrap_or_default();
    if q.get("action").map(String::as_str) != Some("initializeUpload") {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "action=initializeUpload is required",
        );
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(owner) = req["initializeUploadRequest"]["owner"].as_str() else {
        return unprocessable(
            "ERROR :: /initializeUploadRequest/owner :: field is required but not found and has no default value\n".into(),
        );
    };
    if let Some(r) = may_write_as(&account, &token_scopes(&sb, &headers), owner) {
        return r;
    }
    let upload_id = crate::token("up");
    let urn = format!("urn:li:image:{}", crate::token("C4E"));
    images.0.lock().expect("images").insert(
        urn.clone(),
        Image {
            owner: owner.to_owned(),
            upload_id: upload_id.clone(),
            uploaded: false,
        },
    );
    sb.record_full(
        PLATFORM,
        "images.initializeUpload",
        Some(owner),
        None,
        Some(&urn),
        "ok",
    );
    let expires = (now_us() / 1000) as u64 + 3600 * 1000;
    Json(json!({"value": {
        "uploadUrlExpiresAt": expires,
        "uploadUrl": format!("{}/linkedin/dms-uploads/{upload_id}", sb.issuer()),
        "image": urn
    }}))
    .into_response()
}

async fn upload(
    State(sb): State<Sandbox>,
    Extension(images): Extension<Images>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(account) = sb.bearer_account(&headers) else {
        return fault(Fault::Unauthorized);
    };
    let is_image = body.starts_with(b"\x89PNG\r\n\x1a\n")
        || body.starts_with(&[0xFF, 0xD8, 0xFF])
        || body.starts_with(b"GIF8");
    let mut images = images.0.lock().expect("images");
    let Some((urn, image)) = images.iter_mut().find(|(_, i)| i.upload_id == id) else {
        return error(StatusCode::NOT_FOUND, None, None, "Unknown upload");
    };
    if !is_image {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "The uploaded file is not a PNG, JPEG or GIF image",
        );
    }
    image.uploaded = true;
    let urn = urn.clone();
    drop(images);
    sb.record_full(
        PLATFORM,
        "images.upload",
        Some(&account),
        None,
        Some(&urn),
        "uploaded",
    );
    StatusCode::CREATED.into_response()
}

async fn image_status(
    State(sb): State<Sandbox>,
    Extension(images): Extension<Images>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Response {
    if let Some(r) = versioned(&headers) {
        return r;
    }
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "images.get", account.as_deref(), false)
        .await
    {
        return fault(f);
    }
    let images = images.0.lock().expect("images");
    match images.get(&urn) {
        Some(i) => Json(json!({
            "id": urn,
            "owner": i.owner,
            "status": if i.uploaded { "AVAILABLE" } else { "WAITING_UPLOAD" },
            "downloadUrlExpiresAt": (now_us() / 1000) as u64 + 3600 * 1000,
        }))
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            None,
            None,
            &format!("Image {urn} not found"),
        ),
    }
}

/// The text LinkedIn keeps of a commentary: escapes resolved, cut at an unescaped reserved
/// character (LinkedIn drops what follows).
fn kept_text(commentary: &str) -> String {
    let mut out = String::new();
    let mut chars = commentary.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) => out.push(n),
                None => break,
            }
        } else if RESERVED.contains(&c) {
            break;
        } else {
            out.push(c);
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if RESERVED.contains(&c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Check the post body's fields; `Err` is LinkedIn's 422 message.
fn validate_post(req: &Value) -> Result<(), String> {
    let Some(o) = req.as_object() else {
        return Err("ERROR :: / :: the request body is not a JSON object\n".into());
    };
    let unknown: Vec<&str> = o
        .keys()
        .map(String::as_str)
        .filter(|k| !POST_FIELDS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "Unpermitted fields present in REQUEST_BODY: Data Processing Exception while processing fields [{}]",
            unknown
                .iter()
                .map(|k| format!("/{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for field in [
        "author",
        "commentary",
        "visibility",
        "distribution",
        "lifecycleState",
    ] {
        if o.get(field).is_none_or(Value::is_null) {
            return Err(format!(
                "ERROR :: /{field} :: field is required but not found and has no default value\n"
            ));
        }
    }
    let author = req["author"].as_str().unwrap_or_default();
    if !(author.starts_with("urn:li:person:") || author.starts_with("urn:li:organization:")) {
        return Err(format!(
            "ERROR :: /author :: {author} is not a person or organization URN\n"
        ));
    }
    let commentary = req["commentary"]
        .as_str()
        .ok_or("ERROR :: /commentary :: expected a string\n")?;
    let len = commentary.chars().count();
    if len > MAX_COMMENTARY {
        return Err(format!(
            "ERROR :: /commentary :: length {len} exceeds maximum allowed length {MAX_COMMENTARY}\n"
        ));
    }
    if !matches!(
        req["visibility"].as_str(),
        Some("PUBLIC" | "CONNECTIONS" | "LOGGED_IN" | "CONTAINER")
    ) {
        return Err("ERROR :: /visibility :: invalid enum value\n".into());
    }
    let d = &req["distribution"];
    if !matches!(d["feedDistribution"].as_str(), Some("MAIN_FEED" | "NONE")) {
        return Err("ERROR :: /distribution/feedDistribution :: field is required but not found and has no default value\n".into());
    }
    if !matches!(req["lifecycleState"].as_str(), Some("PUBLISHED" | "DRAFT")) {
        return Err("ERROR :: /lifecycleState :: invalid enum value\n".into());
    }
    if let Some(b) = o.get("isReshareDisabledByAuthor")
        && !b.is_boolean()
    {
        return Err("ERROR :: /isReshareDisabledByAuthor :: expected a boolean\n".into());
    }
    let content = &req["content"];
    if !content.is_null() {
        let article = &content["article"];
        if !content["media"].is_null() {
            if !content["media"]["id"]
                .as_str()
                .is_some_and(|i| i.starts_with("urn:li:image:"))
            {
                return Err("ERROR :: /content/media/id :: field is required but not found and has no default value\n".into());
            }
        } else if !article.is_null() {
            if article["source"]
                .as_str()
                .is_none_or(|s| url::Url::parse(s).is_err())
            {
                return Err(
                    "ERROR :: /content/article/source :: field is required and must be a URL\n"
                        .into(),
                );
            }
            if article["title"].as_str().is_none_or(str::is_empty) {
                return Err("ERROR :: /content/article/title :: field is required but not found and has no default value\n".into());
            }
        } else {
            return Err(
                "ERROR :: /content :: the sandbox supports media (image) and article content\n"
                    .into(),
            );
        }
    }
    if commentary.is_empty() && content.is_null() {
        return Err("ERROR :: /commentary :: a post without content needs commentary\n".into());
    }
    Ok(())
}

fn post_urn(p: &Post) -> String {
    format!("urn:li:share:{}", p.id)
}

fn post_of_urn(sb: &Sandbox, urn: &str) -> Option<Post> {
    sb.post(PLATFORM, urn.strip_prefix("urn:li:share:")?)
}

async fn create_post(
    State(sb): State<Sandbox>,
    Extension(images): Extension<Images>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = versioned(&headers) {
        return r;
    }
    let account = sb.bearer_account(&headers);
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let author = req["author"].as_str().unwrap_or_default().to_owned();
    // the daily caps count per author
    let counted = account.as_ref().map(|_| author.as_str());
    if let Err(f) = sb.admit(PLATFORM, "posts.create", counted, true).await {
        return fault(f);
    }
    let account = account.unwrap_or_default();
    if let Err(m) = validate_post(&req) {
        sb.record_full(
            PLATFORM,
            "posts.create",
            Some(&author),
            None,
            None,
            "invalid",
        );
        return unprocessable(m);
    }
    if let Some(r) = may_write_as(&account, &token_scopes(&sb, &headers), &author) {
        sb.record_full(
            PLATFORM,
            "posts.create",
            Some(&author),
            None,
            None,
            "access_denied",
        );
        return r;
    }
    let mut media = Vec::new();
    if let Some(image) = req["content"]["media"]["id"].as_str() {
        let ready = images
            .0
            .lock()
            .expect("images")
            .get(image)
            .map(|i| (i.owner == author, i.uploaded));
        match ready {
            Some((true, true)) => media.push(image.to_owned()),
            Some((true, false)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    None,
                    None,
                    &format!("Image {image} is not uploaded yet"),
                );
            }
            _ => {
                sb.record_full(
                    PLATFORM,
                    "posts.create",
                    Some(&author),
                    None,
                    None,
                    "invalid",
                );
                return unprocessable(format!(
                    "ERROR :: /content/media/id :: {image} does not exist or is not owned by {author}\n"
                ));
            }
        }
    }
    let text = kept_text(req["commentary"].as_str().unwrap_or_default());
    let (post, after) = sb.create_post(NewPost {
        platform: PLATFORM,
        endpoint: "posts.create",
        account: &author,
        text: &text,
        marker: None,
        link_url: req["content"]["article"]["source"].as_str(),
        media,
    });
    let urn = post_urn(&post);
    let mut ok = StatusCode::CREATED.into_response();
    for (k, v) in [
        ("x-restli-id", urn.clone()),
        ("x-li-uuid", crate::token("li")),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            ok.headers_mut().insert(k, v);
        }
    }
    sb.answer_created(after, ok)
}

fn post_json(p: &Post) -> Value {
    let ms = (p.created_us / 1000) as u64;
    let mut v = json!({
        "id": post_urn(p),
        "author": p.account,
        "commentary": escape(&p.text),
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false,
        "createdAt": ms,
        "publishedAt": ms,
        "lastModifiedAt": ms,
        "lifecycleStateInfo": {"isEditedByAuthor": false}
    });
    if let Some(image) = p.media.first() {
        v["content"] = json!({"media": {"id": image}});
    } else if let Some(link) = &p.link_url {
        v["content"] = json!({"article": {"source": link}});
    }
    v
}

async fn find_posts(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = versioned(&headers) {
        return r;
    }
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "posts.find", account.as_deref(), false)
        .await
    {
        return fault(f);
    }
    let account = account.unwrap_or_default();
    if q.get("q").map(String::as_str) != Some("author") {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "The sandbox serves the author finder only (q=author)",
        );
    }
    let Some(author) = q.get("author") else {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "Parameter 'author' is required",
        );
    };
    if let Some(r) = may_read(
        &account,
        &token_scopes(&sb, &headers),
        author,
        "partnerApiPostsExternal.FINDER-author",
    ) {
        sb.record_full(
            PLATFORM,
            "posts.find",
            Some(author),
            None,
            None,
            "access_denied",
        );
        return r;
    }
    let count = q
        .get("count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(10);
    let start = q
        .get("start")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    if count == 0 || count > 100 {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "count must be between 1 and 100",
        );
    }
    if !matches!(
        q.get("sortBy").map(String::as_str),
        None | Some("CREATED" | "LAST_MODIFIED")
    ) {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "sortBy must be CREATED or LAST_MODIFIED",
        );
    }
    let mut posts = sb.posts_of(PLATFORM, author, 0);
    posts.reverse();
    let page: Vec<Value> = posts
        .iter()
        .skip(start)
        .take(count)
        .map(post_json)
        .collect();
    sb.record_full(PLATFORM, "posts.find", Some(author), None, None, "ok");
    Json(json!({
        "paging": {"start": start, "count": count, "links": [], "total": posts.len()},
        "elements": page
    }))
    .into_response()
}

async fn social_actions(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Response {
    if let Some(r) = versioned(&headers) {
        return r;
    }
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "socialActions.get", account.as_deref(), false)
        .await
    {
        return fault(f);
    }
    let account = account.unwrap_or_default();
    let Some(p) = post_of_urn(&sb, &urn) else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            None,
            &format!("Not found: {urn}"),
        );
    };
    if let Some(r) = may_read(
        &account,
        &token_scopes(&sb, &headers),
        &p.account,
        "socialActions.GET",
    ) {
        return r;
    }
    let (likes, comments, _, _) = Sandbox::engagement(&p);
    sb.record_full(
        PLATFORM,
        "socialActions.get",
        Some(&p.account),
        None,
        Some(&urn),
        "ok",
    );
    Json(json!({
        "target": urn,
        "likesSummary": {"selectedLikes": [], "likedByCurrentUser": false, "totalLikes": likes, "aggregatedTotalLikes": likes},
        "commentsSummary": {"selectedComments": [], "totalFirstLevelComments": comments, "commentsState": "OPEN", "aggregatedTotalComments": comments}
    }))
    .into_response()
}

async fn share_statistics(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(r) = versioned(&headers) {
        return r;
    }
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "shareStatistics.get", account.as_deref(), false)
        .await
    {
        return fault(f);
    }
    let raw = raw.unwrap_or_default();
    let q: HashMap<String, String> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    if q.get("q").map(String::as_str) != Some("organizationalEntity") {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "q=organizationalEntity is required",
        );
    }
    let Some(org) = q
        .get("organizationalEntity")
        .filter(|o| o.starts_with("urn:li:organization:"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            None,
            None,
            "organizationalEntity must be an organization URN",
        );
    };
    if !token_scopes(&sb, &headers)
        .iter()
        .any(|s| s == "rw_organization_admin")
    {
        return access_denied(
            "Not enough permissions to access: organizationalEntityShareStatistics.FINDER-organizationalEntity",
        );
    }
    let mut elements = Vec::new();
    for key in ["shares", "ugcPosts"] {
        let Some(list) = q.get(key) else { continue };
        let Some(inner) = list.strip_prefix("List(").and_then(|l| l.strip_suffix(')')) else {
            return error(
                StatusCode::BAD_REQUEST,
                None,
                None,
                &format!("{key} must use the Rest.li 2.0 List(...) syntax"),
            );
        };
        for urn in inner.split(',').filter(|u| !u.is_empty()) {
            if let Some(p) = post_of_urn(&sb, urn).filter(|p| &p.account == org) {
                let (likes, comments, shares, impressions) = Sandbox::engagement(&p);
                let clicks = likes / 2;
                let mut element = json!({
                    "organizationalEntity": org,
                    "totalShareStatistics": {
                        "uniqueImpressionsCount": impressions * 3 / 4,
                        "shareCount": shares,
                        "engagement": (likes + comments + shares + clicks) as f64 / impressions.max(1) as f64,
                        "clickCount": clicks,
                        "likeCount": likes,
                        "impressionCount": impressions,
                        "commentCount": comments
                    }
                });
                // `share` or `ugcPost`, as the URN was asked
                element[key.trim_end_matches('s')] = json!(urn);
                elements.push(element);
            }
        }
    }
    sb.record_full(PLATFORM, "shareStatistics.get", Some(org), None, None, "ok");
    Json(
        json!({"paging": {"start": 0, "count": elements.len(), "links": []}, "elements": elements}),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaped_reserved_characters_cut_the_text() {
        assert_eq!(
            kept_text("Launch \\(today\\) \\#news"),
            "Launch (today) #news"
        );
        assert_eq!(kept_text("Launch (today) #news"), "Launch ");
        assert_eq!(kept_text(&escape("a_b~c")), "a_b~c");
    }
}
