//! TikTok: Login Kit for Web (OAuth 2.0 with TikTok's `client_key` instead of `client_id`, PKCE
//! S256, comma-separated scopes), the Content Posting API (Direct Post of photo posts that TikTok
//! pulls from our signed media URL, then status polling) and the Display API (`/v2/video/list/`
//! for reconciliation, `/v2/video/query/` for metrics).
//!
//! What TikTok cannot do, refused before any request with a clear message:
//! * no text-only posts: every TikTok post is a video or photo post;
//! * no link posts: a link is written at the end of the description of a photo post (TikTok
//!   shows it as text; links in descriptions are not clickable), and a link without an image is
//!   refused;
//! * photo posts take JPEG or WebP only (no PNG), pulled from a URL (`PULL_FROM_URL`) on a
//!   domain verified in the TikTok app settings.
//!
//! TikTok answers many failures with HTTP 200 and `error.code != "ok"`, so every answer's
//! `error.code` is checked, not only the status.
//!
//! Reconciliation: the `publish_id` is only known after the init call, so a lost init answer is
//! found again by listing the account's recent posts (`/v2/video/list/`) and matching the exact
//! description. That listing holds public posts only: when the creator cannot post publicly (an
//! unaudited app, a private account) our post is invisible there and the answer is
//! [`Lookup::Unknowable`]; posts still in TikTok's moderation are not listed yet either.
//!
//! TikTok gives a post's id (`publicaly_available_post_id`, TikTok's own spelling) only for
//! public posts once moderation is done. Until then the post is recorded under its `publish_id`;
//! [`TiktokConnector::metrics`] resolves a `publish_id` to the post id when TikTok has one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::{
    AccountInfo, AccountRef, Connector, Fence, Lookup, OAuthApp, PlatformError, PostMetrics,
    PostRequest, Published, Quota, TokenSet, errors,
};
use crate::domain::Platform;

const AUTH_HOST: &str = "https://www.tiktok.com/";
const API_HOST: &str = "https://open.tiktokapis.com/";
const JSON_UTF8: &str = "application/json; charset=UTF-8";
/// TikTok's limits on photo posts (Content Posting API, photo post reference).
const MAX_TITLE_UTF16: usize = 90;
const MAX_DESCRIPTION_UTF16: usize = 4000;
const MAX_PHOTOS: usize = 35;
/// `/v2/video/list/` answers at most 20 videos a page; reconciliation looks at a bounded number
/// of pages (the posts since an attempt started are the newest ones).
const LIST_PAGE: u64 = 20;
const LIST_MAX_PAGES: usize = 10;
const PREFERRED_PRIVACY: &str = "PUBLIC_TO_EVERYONE";

/// How long [`TiktokConnector::publish`] waits for TikTok to process a post: the status endpoint
/// allows 30 requests a minute per token, so the interval grows from `first` to `max`, and the
/// whole wait is bounded by `total` (TikTok's moderation may take hours; the post is accepted
/// by then and recorded under its `publish_id`).
#[derive(Debug, Clone, Copy)]
struct Polling {
    first: Duration,
    max: Duration,
    total: Duration,
}

const POLLING: Polling = Polling {
    first: Duration::from_millis(500),
    max: Duration::from_secs(5),
    total: Duration::from_secs(60),
};

pub struct TiktokConnector {
    /// `www.tiktok.com` (authorization page, public post URLs).
    web: Url,
    /// `open.tiktokapis.com` (token, user info, Content Posting and Display APIs).
    api: Url,
    http: reqwest::Client,
    polling: Polling,
}

impl TiktokConnector {
    /// `base == None`: TikTok's real hosts; `Some(b)`: every path under `b` (the sandbox).
    pub fn new(base: Option<Url>, http: reqwest::Client) -> TiktokConnector {
        let (web, api) = match base {
            Some(b) => (b.clone(), b),
            None => (
                Url::parse(AUTH_HOST).expect("static URL"),
                Url::parse(API_HOST).expect("static URL"),
            ),
        };
        TiktokConnector {
            web,
            api,
            http,
            polling: POLLING,
        }
    }

    fn api_url(&self, path: &str) -> Url {
        self.api.join(path).expect("static paths join")
    }

    /// A JSON request to the API with the user's token.
    fn post_json(&self, url: Url, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(url)
            .bearer_auth(token)
            .header(CONTENT_TYPE, JSON_UTF8)
            .body(body.to_string())
    }

    /// Send an API request and classify the answer: a non-success status or an `error.code`
    /// other than `ok` (TikTok answers many failures with HTTP 200) is a [`PlatformError`].
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(HeaderMap, Value), PlatformError> {
        let a = super::fetch(request).await?;
        let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        let code = v["error"]["code"].as_str().unwrap_or("ok");
        if !a.status.is_success() || code != "ok" {
            return Err(a.error(Platform::Tiktok));
        }
        if !v.is_object() {
            return Err(PlatformError::Transient(
                "unreadable answer from TikTok".into(),
            ));
        }
        Ok((a.headers, v))
    }

    /// `POST /v2/oauth/token/` (form, `client_key`): TikTok's token endpoint answers
    /// `{access_token, expires_in, open_id, refresh_token, refresh_expires_in, scope, token_type}`
    /// or `{error, error_description, log_id}`.
    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenSet, PlatformError> {
        let a = super::fetch(
            self.http
                .post(self.api_url("v2/oauth/token/"))
                .header(CACHE_CONTROL, "no-cache")
                .form(form),
        )
        .await?;
        let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        if let Some(error) = v["error"].as_str().filter(|e| !e.is_empty()) {
            return Err(oauth_failure(
                a.status.as_u16(),
                &a.headers,
                &a.body,
                error,
                v["error_description"].as_str().unwrap_or_default(),
            ));
        }
        if !a.status.is_success() {
            return Err(a.error(Platform::Tiktok));
        }
        token_set(&v)
    }

    /// `POST /v2/post/publish/creator_info/query/`: Direct Post must ask it before every post
    /// (privacy levels the creator may use, whether comments are off, the username).
    async fn creator_info(&self, token: &str) -> Result<CreatorInfo, PlatformError> {
        let (_, v) = self
            .call(
                self.http
                    .post(self.api_url("v2/post/publish/creator_info/query/"))
                    .bearer_auth(token)
                    .header(CONTENT_TYPE, JSON_UTF8),
            )
            .await?;
        let d = &v["data"];
        Ok(CreatorInfo {
            username: d["creator_username"].as_str().map(str::to_owned),
            privacy_level_options: d["privacy_level_options"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            comment_disabled: d["comment_disabled"].as_bool().unwrap_or(false),
        })
    }

    /// `POST /v2/post/publish/status/fetch/` once.
    async fn status(&self, token: &str, publish_id: &str) -> Result<PublishStatus, PlatformError> {
        let (_, v) = self
            .call(self.post_json(
                self.api_url("v2/post/publish/status/fetch/"),
                token,
                &json!({ "publish_id": publish_id }),
            ))
            .await?;
        let d = &v["data"];
        Ok(match d["status"].as_str().unwrap_or_default() {
            "PUBLISH_COMPLETE" => PublishStatus::Complete(
                d["publicaly_available_post_id"]
                    .as_array()
                    .and_then(|ids| ids.first())
                    .and_then(id_text),
            ),
            "FAILED" => {
                PublishStatus::Failed(d["fail_reason"].as_str().unwrap_or("unknown").to_owned())
            }
            other => PublishStatus::Processing(other.to_owned()),
        })
    }

    /// Poll the status until TikTok has published or refused the post, within [`Polling`].
    /// Transient trouble while polling counts as "still processing": the post was accepted.
    async fn await_publish(
        &self,
        token: &str,
        publish_id: &str,
    ) -> Result<Option<String>, PlatformError> {
        let deadline = tokio::time::Instant::now() + self.polling.total;
        let mut wait = self.polling.first;
        loop {
            match self.status(token, publish_id).await {
                Ok(PublishStatus::Complete(id)) => return Ok(id),
                Ok(PublishStatus::Failed(reason)) => return Err(publish_failure(&reason)),
                Ok(PublishStatus::Processing(status)) => {
                    tracing::debug!(publish_id, status, "TikTok is processing the post");
                }
                Err(PlatformError::Transient(e)) => {
                    tracing::warn!(publish_id, error = %e, "TikTok status fetch failed; polling on");
                }
                Err(PlatformError::RateLimited { retry_after, .. }) => {
                    wait = wait.max(retry_after);
                }
                Err(e) => return Err(e),
            }
            let now = tokio::time::Instant::now();
            if now + wait > deadline {
                tracing::info!(
                    publish_id,
                    "TikTok is still processing the post; recorded under its publish_id"
                );
                return Ok(None);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.polling.max);
        }
    }

    /// The account's posts created since `since`, newest first (`/v2/video/list/`).
    async fn posts_since(
        &self,
        token: &str,
        since: DateTime<Utc>,
    ) -> Result<Result<Vec<Value>, String>, PlatformError> {
        let mut url = self.api_url("v2/video/list/");
        url.query_pairs_mut()
            .append_pair("fields", "id,title,video_description,create_time");
        let mut found = Vec::new();
        let mut cursor: Option<i64> = None;
        for _ in 0..LIST_MAX_PAGES {
            let mut body = json!({ "max_count": LIST_PAGE });
            if let Some(c) = cursor {
                body["cursor"] = json!(c);
            }
            let (_, v) = self.call(self.post_json(url.clone(), token, &body)).await?;
            let Some(videos) = v["data"]["videos"].as_array() else {
                return Ok(Err("TikTok's video list answer has no videos".into()));
            };
            let mut older = false;
            for video in videos {
                match video["create_time"].as_i64() {
                    Some(t) if t >= since.timestamp() => found.push(video.clone()),
                    Some(_) => older = true,
                    None => return Ok(Err("TikTok listed a video without create_time".into())),
                }
            }
            if older || !v["data"]["has_more"].as_bool().unwrap_or(false) {
                return Ok(Ok(found));
            }
            match v["data"]["cursor"].as_i64() {
                Some(c) => cursor = Some(c),
                None => return Ok(Err("TikTok's video list has more but no cursor".into())),
            }
        }
        Ok(Err(format!(
            "more than {} posts since {since}; too many to look through",
            LIST_PAGE as usize * LIST_MAX_PAGES
        )))
    }

    fn post_url(&self, username: Option<&str>, post_id: &str) -> Option<String> {
        let username = username.filter(|u| !u.is_empty())?;
        self.web
            .join(&format!("@{username}/photo/{post_id}"))
            .ok()
            .map(String::from)
    }
}

struct CreatorInfo {
    username: Option<String>,
    privacy_level_options: Vec<String>,
    comment_disabled: bool,
}

enum PublishStatus {
    Complete(Option<String>),
    Failed(String),
    Processing(String),
}

/// TikTok sends post ids as JSON numbers (int64) or strings.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A `publish_id` (`p_pub_url~v2.…`, `v_pub_file~v2-1.…`) rather than a post id.
fn is_publish_id(id: &str) -> bool {
    id.contains('~')
}

fn token_set(v: &Value) -> Result<TokenSet, PlatformError> {
    let Some(access) = v["access_token"].as_str().filter(|t| !t.is_empty()) else {
        return Err(PlatformError::Transient(
            "TikTok's token answer has no access_token".into(),
        ));
    };
    Ok(TokenSet {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: v["refresh_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned())),
        expires_in: v["expires_in"].as_u64().map(Duration::from_secs),
        scopes: v["scope"]
            .as_str()
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// TikTok's OAuth error categories (RFC 6749 names plus `log_id`).
fn oauth_failure(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    error: &str,
    description: &str,
) -> PlatformError {
    let detail = if description.is_empty() {
        error.to_owned()
    } else {
        format!("{error}: {description}")
    };
    match error {
        "invalid_grant" => PlatformError::GrantRevoked(detail),
        "invalid_client" | "unauthorized_client" => PlatformError::AppCredentials(detail),
        "server_error" | "temporarily_unavailable" => PlatformError::Transient(detail),
        _ if status == 429 || status >= 500 => {
            errors::classify(Platform::Tiktok, status, headers, body, Utc::now())
        }
        _ => PlatformError::Permanent(detail),
    }
}

/// A `FAILED` status: TikTok's `fail_reason` classified like an error code (`internal` is
/// TikTok's own trouble, the spam-risk caps are limits), everything else is final.
fn publish_failure(reason: &str) -> PlatformError {
    if reason == "internal" {
        return PlatformError::Transient(format!("TikTok failed to publish the post: {reason}"));
    }
    let body = json!({"error": {"code": reason, "message": "TikTok did not publish the post"}});
    errors::classify(
        Platform::Tiktok,
        200,
        &HeaderMap::new(),
        &body.to_string(),
        Utc::now(),
    )
}

/// The description TikTok gets (and that reconciliation matches): the text, with the link at
/// the end when the text does not already carry it.
fn description(post: &PostRequest) -> String {
    match &post.link_url {
        Some(link) if !post.text.contains(link.as_str()) => {
            format!("{}\n\n{}", post.text.trim_end(), link)
        }
        _ => post.text.clone(),
    }
}

/// A photo post's title: the first line of a text of several lines (TikTok shows the title
/// above the description), cut to TikTok's 90 UTF-16 units; none for a one-line text, which
/// would otherwise show twice.
fn title(text: &str) -> Option<String> {
    let (first, rest) = text.trim().split_once('\n')?;
    if rest.trim().is_empty() || first.trim().is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut units = 0;
    for c in first.trim().chars() {
        units += c.len_utf16();
        if units > MAX_TITLE_UTF16 {
            break;
        }
        out.push(c);
    }
    Some(out)
}

/// The privacy level for a Direct Post: public when the creator may post publicly, else the
/// first level TikTok offers (unaudited apps get `SELF_ONLY` only).
fn choose_privacy(options: &[String]) -> Option<&str> {
    options
        .iter()
        .find(|o| *o == PREFERRED_PRIVACY)
        .or_else(|| options.first())
        .map(String::as_str)
}

/// Everything TikTok would refuse, refused before any request.
fn check(post: &PostRequest) -> Result<String, PlatformError> {
    if post.media.is_empty() {
        return Err(PlatformError::Permanent(if post.link_url.is_some() {
            "TikTok has no link posts: a link can only go in the description of a photo post; \
             add an image"
                .into()
        } else {
            "TikTok has no text-only posts: a TikTok post needs a photo or a video; add an image"
                .into()
        }));
    }
    if post.media.len() > MAX_PHOTOS {
        return Err(PlatformError::Permanent(format!(
            "a TikTok photo post takes at most {MAX_PHOTOS} images, not {}",
            post.media.len()
        )));
    }
    if let Some(m) = post
        .media
        .iter()
        .find(|m| !matches!(m.content_type.as_str(), "image/jpeg" | "image/webp"))
    {
        return Err(PlatformError::Permanent(format!(
            "TikTok photo posts take JPEG or WebP images only, not {}",
            m.content_type
        )));
    }
    let description = description(post);
    let units = description.encode_utf16().count();
    if units > MAX_DESCRIPTION_UTF16 {
        return Err(PlatformError::Permanent(format!(
            "a TikTok description takes at most {MAX_DESCRIPTION_UTF16} UTF-16 units, not {units}"
        )));
    }
    Ok(description)
}

impl Connector for TiktokConnector {
    fn platform(&self) -> Platform {
        Platform::Tiktok
    }

    /// `video.publish` covers photo Direct Posts too; `video.list` is needed by the Display
    /// API (reconciliation and metrics).
    fn scopes(&self) -> Vec<String> {
        vec![
            "user.info.basic".into(),
            "video.publish".into(),
            "video.list".into(),
        ]
    }

    /// TikTok sends no `iss` in its callbacks.
    fn issuer(&self) -> Option<String> {
        None
    }

    fn authorization_endpoint(&self) -> Url {
        self.web.join("v2/auth/authorize/").expect("static path")
    }

    fn authorization_url(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        state: &str,
        pkce_verifier: &str,
    ) -> Url {
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_owned(),
        ));
        let mut url = self.authorization_endpoint();
        url.query_pairs_mut()
            .append_pair("client_key", &app.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", &self.scopes().join(","))
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("state", state)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        url
    }

    fn exchange_code<'a>(
        &'a self,
        app: &'a OAuthApp,
        redirect_uri: &'a Url,
        code: &'a str,
        pkce_verifier: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            self.token(&[
                ("client_key", app.client_id.as_str()),
                ("client_secret", app.client_secret.expose_secret()),
                ("code", code),
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri.as_str()),
                ("code_verifier", pkce_verifier),
            ])
            .await
            .map_err(PlatformError::at_code_exchange)
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        app: &'a OAuthApp,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            self.token(&[
                ("client_key", app.client_id.as_str()),
                ("client_secret", app.client_secret.expose_secret()),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .await
        }
        .boxed()
    }

    fn account_info<'a>(
        &'a self,
        access_token: &'a str,
    ) -> BoxFuture<'a, Result<AccountInfo, PlatformError>> {
        async move {
            let mut url = self.api_url("v2/user/info/");
            url.query_pairs_mut()
                .append_pair("fields", "open_id,display_name");
            let (_, v) = self
                .call(self.http.get(url).bearer_auth(access_token))
                .await?;
            let user = &v["data"]["user"];
            match (user["open_id"].as_str(), user["display_name"].as_str()) {
                (Some(id), name) if !id.is_empty() => Ok(AccountInfo {
                    id: id.to_owned(),
                    name: name.unwrap_or(id).to_owned(),
                }),
                _ => Err(PlatformError::Permanent(
                    "TikTok's user info has no open_id".into(),
                )),
            }
        }
        .boxed()
    }

    fn publish<'a>(
        &'a self,
        access_token: &'a str,
        post: &'a PostRequest,
        fence: &'a dyn Fence,
    ) -> BoxFuture<'a, Result<Published, PlatformError>> {
        async move {
            let description = check(post)?;
            let creator = self.creator_info(access_token).await?;
            let Some(privacy) = choose_privacy(&creator.privacy_level_options) else {
                return Err(PlatformError::Permanent(
                    "TikTok offers this creator no privacy level to post with".into(),
                ));
            };
            let mut post_info = json!({
                "description": description,
                "privacy_level": privacy,
                "disable_comment": creator.comment_disabled,
                "auto_add_music": true,
            });
            if let Some(title) = title(&post.text) {
                post_info["title"] = json!(title);
            }
            let body = json!({
                "post_info": post_info,
                "source_info": {
                    "source": "PULL_FROM_URL",
                    "photo_cover_index": 0,
                    "photo_images": post.media.iter().map(|m| m.url.as_str()).collect::<Vec<_>>(),
                },
                "post_mode": "DIRECT_POST",
                "media_type": "PHOTO",
            });
            fence.check().await?;
            let (_, v) = self
                .call(self.post_json(
                    self.api_url("v2/post/publish/content/init/"),
                    access_token,
                    &body,
                ))
                .await?;
            let Some(publish_id) = v["data"]["publish_id"].as_str().filter(|p| !p.is_empty())
            else {
                return Err(PlatformError::Transient(
                    "TikTok accepted the post without a publish_id".into(),
                ));
            };
            let request_id = v["error"]["log_id"].as_str().map(str::to_owned);
            let post_id = self.await_publish(access_token, publish_id).await?;
            Ok(match post_id {
                Some(id) => Published {
                    url: self.post_url(creator.username.as_deref(), &id),
                    post_id: id,
                    request_id,
                },
                None => Published {
                    post_id: publish_id.to_owned(),
                    url: None,
                    request_id,
                },
            })
        }
        .boxed()
    }

    fn find_by_marker<'a>(
        &'a self,
        access_token: &'a str,
        post: &'a PostRequest,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Lookup, PlatformError>> {
        async move {
            let wanted = description(post);
            let listed = match self.posts_since(access_token, since).await? {
                Ok(listed) => listed,
                Err(why) => return Ok(Lookup::Unknowable(why)),
            };
            let matches: Vec<&Value> = listed
                .iter()
                .filter(|v| v["video_description"].as_str() == Some(wanted.as_str()))
                .collect();
            match matches.as_slice() {
                [] => {
                    // the listing shows public posts only: if the creator cannot post publicly,
                    // our post is private and the list cannot show it
                    let creator = self.creator_info(access_token).await?;
                    if creator
                        .privacy_level_options
                        .iter()
                        .any(|o| o == PREFERRED_PRIVACY)
                    {
                        Ok(Lookup::NotFound)
                    } else {
                        Ok(Lookup::Unknowable(
                            "the creator cannot post publicly and TikTok lists public posts only"
                                .into(),
                        ))
                    }
                }
                [one] => match id_text(&one["id"]) {
                    Some(id) => {
                        let username = self.creator_info(access_token).await.ok();
                        Ok(Lookup::Found(Published {
                            url: self.post_url(
                                username.as_ref().and_then(|c| c.username.as_deref()),
                                &id,
                            ),
                            post_id: id,
                            request_id: None,
                        }))
                    }
                    None => Ok(Lookup::Unknowable(
                        "TikTok listed the post without an id".into(),
                    )),
                },
                many => Ok(Lookup::Unknowable(format!(
                    "{} TikTok posts since {since} have this exact description",
                    many.len()
                ))),
            }
        }
        .boxed()
    }

    fn metrics<'a>(
        &'a self,
        access_token: &'a str,
        _account: &'a AccountRef,
        post_id: &'a str,
    ) -> BoxFuture<'a, Result<PostMetrics, PlatformError>> {
        async move {
            let id = if is_publish_id(post_id) {
                match self.status(access_token, post_id).await? {
                    PublishStatus::Complete(Some(id)) => id,
                    // not public (yet): TikTok has no figures for it
                    PublishStatus::Complete(None) | PublishStatus::Processing(_) => {
                        return Ok(PostMetrics::default());
                    }
                    PublishStatus::Failed(reason) => {
                        return Err(PlatformError::Permanent(format!(
                            "TikTok did not publish the post: {reason}"
                        )));
                    }
                }
            } else {
                post_id.to_owned()
            };
            let mut url = self.api_url("v2/video/query/");
            url.query_pairs_mut().append_pair(
                "fields",
                "id,like_count,comment_count,share_count,view_count",
            );
            let (_, v) = self
                .call(self.post_json(
                    url,
                    access_token,
                    &json!({ "filters": { "video_ids": [id] } }),
                ))
                .await?;
            let Some(video) = v["data"]["videos"]
                .as_array()
                .and_then(|a| a.iter().find(|x| id_text(&x["id"]).as_deref() == Some(&id)))
            else {
                return Err(PlatformError::Permanent(format!(
                    "TikTok does not show post {id} (deleted, or not public)"
                )));
            };
            Ok(PostMetrics {
                likes: video["like_count"].as_i64(),
                comments: video["comment_count"].as_i64(),
                shares: video["share_count"].as_i64(),
                views: video["view_count"].as_i64(),
                ..Default::default()
            })
        }
        .boxed()
    }

    /// TikTok has no readable publishing quota; its daily cap shows as
    /// `spam_risk_too_many_posts`, classified as a rate limit.
    fn quota<'a>(
        &'a self,
        _access_token: &'a str,
        _account: &'a AccountRef,
    ) -> BoxFuture<'a, Result<Option<Quota>, PlatformError>> {
        async move { Ok(None) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::MediaRef;

    fn post(text: &str, link: Option<&str>, media: &[&str]) -> PostRequest {
        PostRequest {
            account: AccountRef {
                platform_account_id: "open-1".into(),
                kind: "user".into(),
            },
            text: text.into(),
            link_url: link.map(|l| Url::parse(l).unwrap()),
            media: media
                .iter()
                .map(|ct| MediaRef {
                    url: Url::parse("https://media.example/a").unwrap(),
                    content_type: (*ct).into(),
                })
                .collect(),
            marker: "mk-1".into(),
        }
    }

    #[test]
    fn the_link_goes_at_the_end_of_the_description_once() {
        let p = post("Spring menu", Some("https://shop.example/menu"), &[]);
        assert_eq!(description(&p), "Spring menu\n\nhttps://shop.example/menu");
        let p = post(
            "Spring menu https://shop.example/menu",
            Some("https://shop.example/menu"),
            &[],
        );
        assert_eq!(description(&p), "Spring menu https://shop.example/menu");
    }

    #[test]
    fn titles_come_from_the_first_of_several_lines_within_90_utf16_units() {
        assert_eq!(title("One line only"), None);
        assert_eq!(title("Headline\nBody text"), Some("Headline".into()));
        let long = format!("{}\nrest", "😀".repeat(50));
        let t = title(&long).unwrap();
        assert_eq!(t.encode_utf16().count(), 90);
    }

    #[test]
    fn public_privacy_is_preferred_else_the_first_offered() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            choose_privacy(&o(&["SELF_ONLY", "PUBLIC_TO_EVERYONE"])),
            Some("PUBLIC_TO_EVERYONE")
        );
        assert_eq!(
            choose_privacy(&o(&["MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"])),
            Some("MUTUAL_FOLLOW_FRIENDS")
        );
        assert_eq!(choose_privacy(&[]), None);
    }

    #[test]
    fn what_tiktok_cannot_post_is_refused_with_a_reason() {
        let refused = |p: &PostRequest| match check(p) {
            Err(PlatformError::Permanent(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused(&post("hello", None, &[])).contains("no text-only posts"));
        assert!(refused(&post("hello", Some("https://a.example/"), &[])).contains("no link posts"));
        assert!(refused(&post("hello", None, &["image/png"])).contains("JPEG or WebP"));
        assert!(refused(&post(&"é".repeat(4001), None, &["image/jpeg"])).contains("4000"));
        assert_eq!(
            check(&post("hello", None, &["image/jpeg"])).unwrap(),
            "hello"
        );
    }

    #[test]
    fn fail_reasons_and_oauth_errors_are_classified() {
        assert!(matches!(
            publish_failure("internal"),
            PlatformError::Transient(_)
        ));
        assert!(matches!(
            publish_failure("spam_risk_too_many_posts"),
            PlatformError::RateLimited { .. }
        ));
        match publish_failure("file_format_check_failed") {
            PlatformError::Permanent(m) => assert!(m.contains("file_format_check_failed")),
            other => panic!("{other:?}"),
        }
        let h = HeaderMap::new();
        assert!(matches!(
            oauth_failure(400, &h, "", "invalid_grant", "Refresh token is invalid"),
            PlatformError::GrantRevoked(_)
        ));
        assert!(matches!(
            oauth_failure(401, &h, "", "invalid_client", "Client key is invalid"),
            PlatformError::AppCredentials(m) if m.contains("Client key is invalid")
        ));
    }

    #[test]
    fn the_authorization_url_uses_client_key_comma_scopes_and_s256() {
        let c = TiktokConnector::new(None, reqwest::Client::new());
        let app = OAuthApp {
            client_id: "awkey".into(),
            client_secret: SecretString::from("s".to_owned()),
        };
        let u = c.authorization_url(
            &app,
            &Url::parse("https://app.example/oauth/callback/tiktok").unwrap(),
            "st",
            "verifier-verifier-verifier-verifier-verifier-1",
        );
        assert_eq!(
            u.as_str().split('?').next(),
            Some("https://www.tiktok.com/v2/auth/authorize/")
        );
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["client_key"], "awkey");
        assert!(!q.contains_key("client_id"));
        assert_eq!(q["scope"], "user.info.basic,video.publish,video.list");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"].len(), 43);
    }
}
