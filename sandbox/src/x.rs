//! X (API v2) under `/x/`, in the shapes of X's OpenAPI document
//! (`shared/specs/x-api-v2-openapi.json`): OAuth 2.0 at `/i/oauth2/authorize` and
//! `/2/oauth2/token` (confidential clients must use HTTP Basic), `GET /2/users/me`, the one-shot
//! `POST /2/media/upload` (JSON with a base64 payload), `POST /2/tweets`, the user timeline
//! `GET /2/users/{id}/tweets` and `GET /2/tweets/{id}`.
//!
//! Requests are validated as X does (unknown fields, missing text and media, weighted length
//! over 280, unknown media ids, duplicate text, `max_results` out of 5–100, bad `start_time`),
//! and every refusal is an RFC 7807 problem (`application/problem+json`). Faults from the knobs
//! come out as X's: 401 `Unauthorized`, 5xx, and 429 `Too Many Requests` with
//! `x-rate-limit-reset` (the 15-minute window) or, for the daily cap, also
//! `x-user-limit-24hour-reset` (epoch seconds). Returned texts carry `t.co` links and X's HTML
//! escaping, as X's do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::posts::{Fault, NewPost, Post};
use crate::{Sandbox, TokenForm, now_us};

const PLATFORM: &str = "x";
/// Fields `TweetCreateRequest` defines (`additionalProperties: false`).
const TWEET_FIELDS_ALLOWED: &[&str] = &[
    "card_uri",
    "community_id",
    "direct_message_deep_link",
    "edit_options",
    "for_super_followers_only",
    "geo",
    "made_with_ai",
    "media",
    "nullcast",
    "paid_partnership",
    "poll",
    "quote_tweet_id",
    "reply",
    "reply_settings",
    "share_with_followers",
    "text",
];
/// `tweet.fields` values the sandbox knows (a subset of X's enum).
const TWEET_FIELD_VALUES: &[&str] = &[
    "author_id",
    "created_at",
    "edit_history_tweet_ids",
    "entities",
    "id",
    "lang",
    "public_metrics",
    "text",
];
const MEDIA_CATEGORIES: &[&str] = &["tweet_image", "dm_image", "subtitles"];
const MEDIA_TYPES: &[&str] = &[
    "image/jpeg",
    "image/bmp",
    "image/png",
    "image/webp",
    "image/pjpeg",
    "image/tiff",
];
const MAX_WEIGHTED_LENGTH: usize = 280;
/// Every link counts as a `t.co` link of this length.
const URL_LENGTH: usize = 23;

/// Media uploaded to this sandbox instance: id → owner.
#[derive(Clone, Default)]
struct Uploads(Arc<Mutex<HashMap<String, String>>>);

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/i/oauth2/authorize", get(crate::authorize))
        .route("/2/oauth2/token", post(token))
        .route("/2/users/me", get(me))
        .route("/2/media/upload", post(media_upload))
        .route("/2/tweets", post(create_tweet))
        .route("/2/tweets/{id}", get(lookup_tweet))
        .route("/2/users/{id}/tweets", get(timeline))
        .layer(Extension(Uploads::default()))
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn problem_response(status: StatusCode, body: Value, headers: &[(&str, String)]) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(name, value);
        }
    }
    r
}

/// An `about:blank` problem: title and detail only.
fn generic(status: StatusCode, title: &str, detail: &str) -> Response {
    problem_response(
        status,
        json!({"title": title, "detail": detail, "type": "about:blank", "status": status.as_u16()}),
        &[],
    )
}

/// X's `invalid-request` problem with the specific messages in `errors`.
fn invalid(messages: &[(&str, String)]) -> Response {
    let errors: Vec<Value> = messages
        .iter()
        .map(|(param, m)| json!({"parameters": {*param: []}, "message": m}))
        .collect();
    problem_response(
        StatusCode::BAD_REQUEST,
        json!({
            "errors": errors,
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"
        }),
        &[],
    )
}

fn unauthorized() -> Response {
    generic(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
}

/// A knob's fault as X answers it.
fn fault(sb: &Sandbox, f: Fault, account: Option<&str>) -> Response {
    let now = epoch_secs();
    match f {
        Fault::Unauthorized => unauthorized(),
        Fault::ServerError => generic(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "Service Unavailable",
        ),
        Fault::RateLimited(wait) => problem_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
            &[
                ("x-rate-limit-limit", "100".into()),
                ("x-rate-limit-remaining", "0".into()),
                ("x-rate-limit-reset", (now + wait.as_secs()).to_string()),
            ],
        ),
        Fault::QuotaExceeded { limit, .. } => {
            // the daily cap frees up 24 hours after the oldest post in the window
            let since = now_us().saturating_sub(24 * 3600 * 1_000_000);
            let oldest = sb
                .posts_of(PLATFORM, account.unwrap_or_default(), since)
                .first()
                .map(|p| (p.created_us / 1_000_000) as u64)
                .unwrap_or(now);
            problem_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
                &[
                    ("x-rate-limit-limit", "100".into()),
                    ("x-rate-limit-remaining", "99".into()),
                    ("x-rate-limit-reset", (now + 900).to_string()),
                    ("x-user-limit-24hour-limit", limit.to_string()),
                    ("x-user-limit-24hour-remaining", "0".into()),
                    (
                        "x-user-limit-24hour-reset",
                        (oldest + 24 * 3600).to_string(),
                    ),
                ],
            )
        }
    }
}

/// X's token endpoint: a confidential client authenticates with HTTP Basic, then the generic
/// OAuth server (PKCE check, rotating refresh tokens) answers.
async fn token(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic "));
    if !basic {
        sb.record_full(PLATFORM, "oauth2.token", None, None, None, "no_basic_auth");
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized_client", "error_description": "Missing valid authorization header"})),
        )
            .into_response();
    }
    crate::token_endpoint(State(sb), headers, Form(f)).await
}

async fn me(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "users.me", account.as_deref(), false)
        .await
    {
        return fault(&sb, f, account.as_deref());
    }
    let a = account.unwrap_or_default();
    sb.record_full(PLATFORM, "users.me", Some(&a), None, None, "ok");
    Json(json!({"data": {"id": a, "name": format!("Sandbox X account {a}"), "username": a}}))
        .into_response()
}

/// What kind of image the bytes are, by their signature.
fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"BM") {
        Some("image/bmp")
    } else {
        None
    }
}

async fn media_upload(
    State(sb): State<Sandbox>,
    Extension(uploads): Extension<Uploads>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "media.upload", account.as_deref(), false)
        .await
    {
        return fault(&sb, f, account.as_deref());
    }
    let account = account.unwrap_or_default();
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Some(req) = json_body
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten()
        .filter(Value::is_object)
    else {
        return invalid(&[(
            "media",
            "the sandbox takes the JSON form of the one-shot upload: {\"media\": base64, \"media_category\", \"media_type\"}".into(),
        )]);
    };
    let mut problems = Vec::new();
    for k in req.as_object().into_iter().flat_map(|o| o.keys()) {
        if ![
            "media",
            "media_category",
            "media_type",
            "additional_owners",
            "shared",
        ]
        .contains(&k.as_str())
        {
            problems.push((k.as_str(), format!("The `{k}` field is not allowed")));
        }
    }
    let category = req["media_category"].as_str();
    if !category.is_some_and(|c| MEDIA_CATEGORIES.contains(&c)) {
        problems.push((
            "media_category",
            format!(
                "media_category must be one of {}",
                MEDIA_CATEGORIES.join(", ")
            ),
        ));
    }
    let declared = req["media_type"].as_str();
    if declared.is_some_and(|t| !MEDIA_TYPES.contains(&t)) {
        problems.push(("media_type", "media_type is not an accepted type".into()));
    }
    let bytes = req["media"].as_str().and_then(|m| STANDARD.decode(m).ok());
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        problems.push(("media", "media must be the file, base64-encoded".into()));
        return invalid(&problems);
    };
    match sniff_image(&bytes) {
        None => problems.push(("media", "media is not a supported image".into())),
        Some(kind)
            if declared
                .is_some_and(|d| d != kind && !(d == "image/pjpeg" && kind == "image/jpeg")) =>
        {
            problems.push((
                "media_type",
                format!("media_type does not match the file ({kind})"),
            ))
        }
        _ => {}
    }
    if !problems.is_empty() {
        sb.record_full(
            PLATFORM,
            "media.upload",
            Some(&account),
            None,
            None,
            "invalid",
        );
        return invalid(&problems);
    }
    let id = format!(
        "{}",
        rand::rng().random_range(10u64.pow(18)..9 * 10u64.pow(18))
    );
    uploads
        .0
        .lock()
        .expect("uploads")
        .insert(id.clone(), account.clone());
    sb.record_full(
        PLATFORM,
        "media.upload",
        Some(&account),
        None,
        Some(&id),
        "uploaded",
    );
    Json(json!({"data": {"id": id, "media_key": format!("3_{id}"), "size": bytes.len(), "expires_after_secs": 86400}}))
        .into_response()
}

/// twitter-text's weighted length (v3 configuration): code points in the Latin, general
/// punctuation and similar ranges weigh 1, all others 2; each link counts 23.
pub fn weighted_length(text: &str) -> usize {
    let mut len = 0;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            len += 1;
        }
        if word.starts_with("http://") || word.starts_with("https://") {
            len += URL_LENGTH;
            continue;
        }
        for c in word.chars() {
            let cp = c as u32;
            let light = matches!(cp, 0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247);
            len += if light { 1 } else { 2 };
        }
    }
    len
}

/// The text as X returns it: links as `t.co` links (with `entities.urls` to expand them) and
/// `&`, `<`, `>` HTML-escaped.
fn rendered(text: &str) -> (String, Vec<Value>) {
    let mut links = Vec::new();
    let words: Vec<String> = text
        .split(' ')
        .map(|w| {
            if w.starts_with("http://") || w.starts_with("https://") {
                let digest = Sha256::digest(w.as_bytes());
                let short = format!(
                    "https://t.co/{}",
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)[..10]
                );
                links.push((short.clone(), w.to_owned()));
                short
            } else {
                w.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            }
        })
        .collect();
    let out = words.join(" ");
    let mut entities = Vec::new();
    let mut from = 0;
    for (short, long) in links {
        if let Some(pos) = out[from..].find(&short) {
            let byte_start = from + pos;
            let start = out[..byte_start].chars().count();
            entities.push(json!({
                "start": start,
                "end": start + short.chars().count(),
                "url": short,
                "expanded_url": long,
                "display_url": long.split("://").nth(1).unwrap_or(&long),
            }));
            from = byte_start + short.len();
        }
    }
    (out, entities)
}

async fn create_tweet(
    State(sb): State<Sandbox>,
    Extension(uploads): Extension<Uploads>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "tweets.create", account.as_deref(), true)
        .await
    {
        return fault(&sb, f, account.as_deref());
    }
    let account = account.unwrap_or_default();
    let refuse = |outcome: &str, r: Response| {
        sb.record_full(
            PLATFORM,
            "tweets.create",
            Some(&account),
            None,
            None,
            outcome,
        );
        r
    };
    let Some(req) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return refuse(
            "invalid",
            invalid(&[("body", "Request body is not a JSON object".into())]),
        );
    };
    let mut problems = Vec::new();
    for k in req.as_object().into_iter().flat_map(|o| o.keys()) {
        if !TWEET_FIELDS_ALLOWED.contains(&k.as_str()) {
            problems.push((k.as_str(), format!("The `{k}` field is not allowed")));
        }
    }
    if !req["text"].is_null() && !req["text"].is_string() {
        problems.push(("text", "text must be a string".into()));
    }
    let text = req["text"].as_str().unwrap_or_default().to_owned();
    let mut media_ids = Vec::new();
    if !req["media"].is_null() {
        match req["media"]["media_ids"].as_array() {
            Some(ids) if (1..=4).contains(&ids.len()) => {
                let known = uploads.0.lock().expect("uploads");
                for id in ids {
                    match id.as_str() {
                        Some(id) if known.get(id) == Some(&account) => {
                            media_ids.push(id.to_owned())
                        }
                        _ => {
                            problems.push(("media.media_ids", "Your media IDs are invalid.".into()))
                        }
                    }
                }
            }
            _ => problems.push((
                "media.media_ids",
                "media.media_ids must hold 1 to 4 media ids".into(),
            )),
        }
    }
    if text.trim().is_empty() && media_ids.is_empty() && problems.is_empty() {
        problems.push((
            "text",
            "Requests must include text or media (a poll, a quote or a card are not supported by the sandbox)".into(),
        ));
    }
    let weight = weighted_length(&text);
    if weight > MAX_WEIGHTED_LENGTH {
        problems.push((
            "text",
            format!(
                "Your Tweet text is too long: its weighted length is {weight}, the limit is {MAX_WEIGHTED_LENGTH}"
            ),
        ));
    }
    if !problems.is_empty() {
        return refuse("invalid", invalid(&problems));
    }
    let since = now_us().saturating_sub(24 * 3600 * 1_000_000);
    if !text.is_empty()
        && sb
            .posts_of(PLATFORM, &account, since)
            .iter()
            .any(|p| p.text == text)
    {
        return refuse(
            "duplicate",
            generic(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "You are not allowed to create a Tweet with duplicate content.",
            ),
        );
    }
    let (post, after) = sb.create_post(NewPost {
        platform: PLATFORM,
        endpoint: "tweets.create",
        account: &account,
        text: &text,
        marker: None,
        link_url: None,
        media: media_ids,
    });
    let (shown, _) = rendered(&post.text);
    let mut ok = (
        StatusCode::CREATED,
        Json(json!({"data": {"id": post.id, "text": shown, "edit_history_tweet_ids": [post.id]}})),
    )
        .into_response();
    ok.headers_mut().insert(
        "x-transaction-id",
        HeaderValue::from_str(&crate::token("tx")).expect("token is ASCII"),
    );
    sb.answer_created(after, ok)
}

/// A tweet object with the requested `tweet.fields`.
fn tweet_json(p: &Post, fields: &[&str]) -> Value {
    let (text, urls) = rendered(&p.text);
    let mut t = json!({"id": p.id, "text": text, "edit_history_tweet_ids": [p.id]});
    if fields.contains(&"created_at") {
        let at = DateTime::<Utc>::from_timestamp_micros(p.created_us as i64).unwrap_or_default();
        t["created_at"] = json!(at.to_rfc3339_opts(SecondsFormat::Millis, true));
    }
    if fields.contains(&"author_id") {
        t["author_id"] = json!(p.account);
    }
    if fields.contains(&"entities") && !urls.is_empty() {
        t["entities"] = json!({"urls": urls});
    }
    if fields.contains(&"public_metrics") {
        let (likes, comments, shares, impressions) = Sandbox::engagement(p);
        t["public_metrics"] = json!({
            "retweet_count": shares,
            "reply_count": comments,
            "like_count": likes,
            "quote_count": 0,
            "bookmark_count": likes / 25,
            "impression_count": impressions
        });
    }
    t
}

/// `tweet.fields` as a list, or the problem naming the unknown values.
fn tweet_fields(q: &HashMap<String, String>) -> Result<Vec<&str>, Box<Response>> {
    let fields: Vec<&str> = q
        .get("tweet.fields")
        .map(|f| f.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let unknown: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| !TWEET_FIELD_VALUES.contains(f))
        .collect();
    if unknown.is_empty() {
        Ok(fields)
    } else {
        Err(Box::new(invalid(&[(
            "tweet.fields",
            format!(
                "The `tweet.fields` query parameter value [{}] is not one of [{}]",
                unknown.join(","),
                TWEET_FIELD_VALUES.join(",")
            ),
        )])))
    }
}

async fn lookup_tweet(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "tweets.lookup", account.as_deref(), false)
        .await
    {
        return fault(&sb, f, account.as_deref());
    }
    let fields = match tweet_fields(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    match sb.post(PLATFORM, &id) {
        Some(p) => {
            sb.record_full(
                PLATFORM,
                "tweets.lookup",
                account.as_deref(),
                None,
                Some(&id),
                "found",
            );
            Json(json!({"data": tweet_json(&p, &fields)})).into_response()
        }
        // X answers 200 with only `errors` for an unknown or deleted post
        None => {
            sb.record_full(
                PLATFORM,
                "tweets.lookup",
                account.as_deref(),
                None,
                Some(&id),
                "not_found",
            );
            Json(json!({"errors": [{
                "value": id,
                "detail": format!("Could not find tweet with id: [{id}]."),
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "id",
                "resource_id": id,
                "type": "https://api.twitter.com/2/problems/resource-not-found"
            }]}))
            .into_response()
        }
    }
}

async fn timeline(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(user): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let account = sb.bearer_account(&headers);
    if let Err(f) = sb
        .admit(PLATFORM, "users.tweets", account.as_deref(), false)
        .await
    {
        return fault(&sb, f, account.as_deref());
    }
    let fields = match tweet_fields(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let max_results = match q.get("max_results").map(|m| m.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (5..=100).contains(&n) => n,
        Some(_) => {
            return invalid(&[(
                "max_results",
                format!(
                    "The `max_results` query parameter value [{}] is not between 5 and 100",
                    q["max_results"]
                ),
            )]);
        }
    };
    let since_us = match q.get("start_time").map(|s| DateTime::parse_from_rfc3339(s)) {
        None => 0,
        Some(Ok(t)) => t.timestamp_micros().max(0) as u128,
        Some(Err(_)) => {
            return invalid(&[(
                "start_time",
                format!(
                    "Invalid 'start_time':'{}'. 'start_time' must be a valid RFC 3339 date-time",
                    q["start_time"]
                ),
            )]);
        }
    };
    if let Some(ex) = q.get("exclude")
        && ex.split(',').any(|e| !matches!(e, "replies" | "retweets"))
    {
        return invalid(&[(
            "exclude",
            format!("The `exclude` value [{ex}] is not one of [replies,retweets]"),
        )]);
    }
    let offset = match q.get("pagination_token") {
        None => 0,
        Some(t) => match t.strip_prefix("pt").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return invalid(&[(
                    "pagination_token",
                    "The `pagination_token` is invalid".into(),
                )]);
            }
        },
    };
    let mut posts = sb.posts_of(PLATFORM, &user, since_us);
    posts.reverse();
    let page: Vec<Value> = posts
        .iter()
        .skip(offset)
        .take(max_results)
        .map(|p| tweet_json(p, &fields))
        .collect();
    sb.record_full(
        PLATFORM,
        "users.tweets",
        account.as_deref(),
        None,
        None,
        "ok",
    );
    let mut meta = json!({"result_count": page.len()});
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        meta["newest_id"] = first["id"].clone();
        meta["oldest_id"] = last["id"].clone();
    }
    if posts.len() > offset + max_results {
        meta["next_token"] = json!(format!("pt{}", offset + max_results));
    }
    if page.is_empty() {
        Json(json!({"meta": meta})).into_response()
    } else {
        Json(json!({"data": page, "meta": meta})).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_length_counts_links_and_wide_characters() {
        assert_eq!(weighted_length("hello"), 5);
        assert_eq!(
            weighted_length("see https://example.com/a/very/long/path"),
            4 + 23
        );
        assert_eq!(weighted_length("日本"), 4);
        assert_eq!(weighted_length(&"a".repeat(280)), 280);
    }

    #[test]
    fn rendered_text_has_tco_links_and_html_escapes() {
        let (text, urls) = rendered("A & B https://example.com/x");
        assert!(text.starts_with("A &amp; B https://t.co/"), "{text}");
        assert_eq!(urls[0]["expanded_url"], "https://example.com/x");
        assert_eq!(urls[0]["start"], 10);
    }
}
