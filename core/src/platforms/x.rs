//! X (API v2) as its OpenAPI document (`shared/specs/x-api-v2-openapi.json`) and the OAuth 2.0
//! guide describe it: authorization code with PKCE S256 at `x.com/i/oauth2/authorize`, a
//! confidential client at `api.x.com/2/oauth2/token` (HTTP Basic; refresh tokens rotate, so the
//! new one must replace the old at once), `GET /2/users/me`, one-shot image upload at
//! `POST /2/media/upload` (JSON, base64 payload, `media_category: tweet_image`),
//! `POST /2/tweets`, the user timeline `GET /2/users/{id}/tweets` for reconciliation and
//! `GET /2/tweets/{id}?tweet.fields=public_metrics` for metrics. X has no read-out of the
//! posting caps (they show only as 429 headers), so [`Connector::quota`] answers `None`.
//!
//! X rewrites every link to a `t.co` one and HTML-escapes `&`, `<`, `>` in the text it returns;
//! reconciliation undoes both (with the tweet's `entities.urls`) before comparing texts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::{
    AccountInfo, AccountRef, Connector, Fence, Lookup, OAuthApp, PlatformError, PostMetrics,
    PostRequest, Published, Quota, TokenSet, oauth,
};
use crate::domain::Platform;

const AUTHORIZE: &str = "https://x.com/i/oauth2/authorize";
const API: &str = "https://api.x.com/";
/// Image types the one-shot upload takes for `tweet_image` (`MediaUploadRequestOneShot`).
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/bmp"];
/// Timeline pages read while reconciling (100 posts each): far more than one account posts in
/// the window since an attempt started.
const MAX_PAGES: usize = 5;

pub struct XConnector {
    base: Option<Url>,
    http: reqwest::Client,
}

impl XConnector {
    /// `base == None`: X's real hosts; otherwise every path under `base` (the sandbox's `/x/`).
    pub fn new(base: Option<Url>, http: reqwest::Client) -> XConnector {
        XConnector { base, http }
    }

    fn authorize_endpoint(&self) -> Url {
        match &self.base {
            Some(b) => b.join("i/oauth2/authorize").expect("static paths join"),
            None => Url::parse(AUTHORIZE).expect("static URL"),
        }
    }

    /// An API path such as `2/tweets` on `api.x.com` (or under the base).
    fn api(&self, path: &str) -> Url {
        match &self.base {
            Some(b) => b.join(path),
            None => Url::parse(API).expect("static URL").join(path),
        }
        .expect("static paths join")
    }

    fn oauth(&self, app: &OAuthApp) -> oauth::Client {
        // X wants confidential clients to authenticate with HTTP Basic at the token endpoint
        oauth::client(
            app,
            self.authorize_endpoint(),
            self.api("2/oauth2/token"),
            oauth2::AuthType::BasicAuth,
        )
    }

    /// Upload one image with the one-shot upload and return its media id.
    async fn upload_image(
        &self,
        access_token: &str,
        media: &super::MediaRef,
        fence: &dyn Fence,
    ) -> Result<String, PlatformError> {
        let content_type = media
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !IMAGE_TYPES.contains(&content_type.as_str()) {
            return Err(PlatformError::Permanent(format!(
                "X takes images as {} for a post, not {content_type}",
                IMAGE_TYPES.join(", ")
            )));
        }
        let bytes = fetch_media(&self.http, &media.url).await?;
        let body = json!({
            "media": STANDARD.encode(&bytes),
            "media_category": "tweet_image",
            "media_type": content_type,
        });
        fence.check().await?;
        let (_, v) = x_send(
            self.http
                .post(self.api("2/media/upload"))
                .bearer_auth(access_token)
                .json(&body),
        )
        .await?;
        v["data"]["id"].as_str().map(str::to_owned).ok_or_else(|| {
            PlatformError::Transient(format!(
                "media upload answer without an id: {}",
                problems(&v)
            ))
        })
    }
}

/// GET an image the post names (the admin's signed media URL). Our own media server failing is
/// transient; a refusal (404, expired signature) is permanent for this post.
pub(crate) async fn fetch_media(
    http: &reqwest::Client,
    url: &Url,
) -> Result<Vec<u8>, PlatformError> {
    let r = http.get(url.clone()).send().await.map_err(|e| {
        PlatformError::Transient(format!("media could not be fetched: {}", e.without_url()))
    })?;
    let status = r.status();
    if status.is_server_error() {
        return Err(PlatformError::Transient(format!(
            "media URL answered {}",
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(PlatformError::Permanent(format!(
            "media URL answered {}",
            status.as_u16()
        )));
    }
    let bytes = r.bytes().await.map_err(|e| {
        PlatformError::Transient(format!("media could not be read: {}", e.without_url()))
    })?;
    if bytes.is_empty() {
        return Err(PlatformError::Permanent("media URL served no bytes".into()));
    }
    Ok(bytes.to_vec())
}

/// The text X is sent: the post's text, with its link appended when the text does not carry it
/// (X has no separate link attachment; it renders the link's card itself).
pub fn tweet_text(post: &PostRequest) -> String {
    match &post.link_url {
        Some(link) if !post.text.contains(link.as_str()) => {
            if post.text.is_empty() {
                link.to_string()
            } else {
                format!("{} {}", post.text, link)
            }
        }
        _ => post.text.clone(),
    }
}

/// A tweet's text as it was written: `t.co` links expanded from `entities.urls`, and X's HTML
/// escaping of `&`, `<`, `>` undone.
pub fn original_text(tweet: &Value) -> String {
    let mut text = tweet["text"].as_str().unwrap_or_default().to_owned();
    if let Some(urls) = tweet["entities"]["urls"].as_array() {
        for u in urls {
            if let (Some(short), Some(long)) = (u["url"].as_str(), u["expanded_url"].as_str()) {
                text = text.replacen(short, long, 1);
            }
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The messages of an answer's `errors` array (validation details and partial errors).
fn problems(v: &Value) -> String {
    v["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e["message"].as_str().or_else(|| e["detail"].as_str()))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Send, classify with X's problem format and keep the `errors[].message` details of a refused
/// request (the problem's own `detail` is only "One or more parameters … invalid").
async fn x_send(request: reqwest::RequestBuilder) -> Result<(HeaderMap, Value), PlatformError> {
    let a = super::fetch(request).await?;
    if !a.status.is_success() {
        let details = serde_json::from_str::<Value>(&a.body)
            .map(|v| problems(&v))
            .unwrap_or_default();
        return Err(match a.error(Platform::X) {
            PlatformError::Permanent(m) if !details.is_empty() && !m.contains(&details) => {
                PlatformError::Permanent(format!("{m} ({details})"))
            }
            other => other,
        });
    }
    let v = a.json()?;
    Ok((a.headers, v))
}

fn status_url(id: &str) -> String {
    format!("https://x.com/i/web/status/{id}")
}

impl Connector for XConnector {
    fn platform(&self) -> Platform {
        Platform::X
    }

    /// Posting needs `tweet.write` with `tweet.read` and `users.read`; `media.write` for images;
    /// `offline.access` for a refresh token (access tokens last two hours).
    fn scopes(&self) -> Vec<String> {
        [
            "tweet.read",
            "tweet.write",
            "users.read",
            "offline.access",
            "media.write",
        ]
        .map(String::from)
        .to_vec()
    }

    fn issuer(&self) -> Option<String> {
        None
    }

    fn authorization_endpoint(&self) -> Url {
        self.authorize_endpoint()
    }

    fn authorization_url(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        state: &str,
        pkce_verifier: &str,
    ) -> Url {
        oauth::authorization_url(
            &self.oauth(app),
            redirect_uri,
            state,
            pkce_verifier,
            self.scopes(),
        )
    }

    fn exchange_code<'a>(
        &'a self,
        app: &'a OAuthApp,
        redirect_uri: &'a Url,
        code: &'a str,
        pkce_verifier: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            oauth::exchange_code(
                &self.oauth(app),
                &self.http,
                redirect_uri,
                code,
                pkce_verifier,
            )
            .await
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        app: &'a OAuthApp,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move { oauth::refresh(&self.oauth(app), &self.http, refresh_token).await }.boxed()
    }

    fn account_info<'a>(
        &'a self,
        access_token: &'a str,
    ) -> BoxFuture<'a, Result<AccountInfo, PlatformError>> {
        async move {
            let (_, v) = x_send(
                self.http
                    .get(self.api("2/users/me"))
                    .bearer_auth(access_token),
            )
            .await?;
            let user = &v["data"];
            match (user["id"].as_str(), user["username"].as_str()) {
                (Some(id), Some(username)) => Ok(AccountInfo {
                    id: id.to_owned(),
                    name: match user["name"].as_str() {
                        Some(name) => format!("{name} (@{username})"),
                        None => format!("@{username}"),
                    },
                }),
                _ => Err(PlatformError::Permanent(format!(
                    "X answered /2/users/me without the user: {}",
                    problems(&v)
                ))),
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
            let mut body = json!({ "text": tweet_text(post) });
            if let Some(media) = post.media.first() {
                let id = self.upload_image(access_token, media, fence).await?;
                body["media"] = json!({ "media_ids": [id] });
            }
            fence.check().await?;
            let (headers, v) = x_send(
                self.http
                    .post(self.api("2/tweets"))
                    .bearer_auth(access_token)
                    .json(&body),
            )
            .await?;
            let Some(id) = v["data"]["id"].as_str() else {
                // a success status without the post: whether it exists is for reconciliation
                return Err(PlatformError::Transient(format!(
                    "X answered the post without an id: {}",
                    problems(&v)
                )));
            };
            Ok(Published {
                post_id: id.to_owned(),
                url: Some(status_url(id)),
                request_id: headers
                    .get("x-transaction-id")
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned),
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
            let wanted = tweet_text(post);
            let mut found = Vec::new();
            let mut next: Option<String> = None;
            for page in 0.. {
                if page == MAX_PAGES {
                    return Ok(Lookup::Unknowable(format!(
                        "more than {} posts since {since}: not all were compared",
                        MAX_PAGES * 100
                    )));
                }
                let mut url = self.api("2/users/");
                url.path_segments_mut()
                    .map_err(|_| PlatformError::Permanent("bad X base URL".into()))?
                    .pop_if_empty()
                    .push(&post.account.platform_account_id)
                    .push("tweets");
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair(
                        "start_time",
                        &since.to_rfc3339_opts(SecondsFormat::Secs, true),
                    )
                    .append_pair("max_results", "100")
                    .append_pair("exclude", "replies,retweets")
                    .append_pair("tweet.fields", "created_at,text,entities");
                    if let Some(t) = &next {
                        q.append_pair("pagination_token", t);
                    }
                }
                let (_, v) = x_send(self.http.get(url).bearer_auth(access_token)).await?;
                if let Some(tweets) = v["data"].as_array() {
                    found.extend(
                        tweets
                            .iter()
                            .filter(|t| original_text(t) == wanted)
                            .filter_map(|t| t["id"].as_str().map(str::to_owned)),
                    );
                }
                match v["meta"]["next_token"].as_str() {
                    Some(t) => next = Some(t.to_owned()),
                    None => break,
                }
            }
            Ok(match found.as_slice() {
                [] => Lookup::NotFound,
                [id] => Lookup::Found(Published {
                    post_id: id.clone(),
                    url: Some(status_url(id)),
                    request_id: None,
                }),
                many => Lookup::Unknowable(format!(
                    "{} posts since {since} have exactly this text",
                    many.len()
                )),
            })
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
            let mut url = self.api("2/tweets/");
            url.path_segments_mut()
                .map_err(|_| PlatformError::Permanent("bad X base URL".into()))?
                .pop_if_empty()
                .push(post_id);
            url.query_pairs_mut()
                .append_pair("tweet.fields", "public_metrics");
            let (_, v) = x_send(self.http.get(url).bearer_auth(access_token)).await?;
            let m = &v["data"]["public_metrics"];
            if m.is_null() {
                // X answers 200 with only `errors` for a deleted or unknown post
                return Err(PlatformError::Permanent(format!(
                    "X has no metrics for post {post_id}: {}",
                    problems(&v)
                )));
            }
            // reposts and quotes are both the post shared onwards
            let shares = match (m["retweet_count"].as_i64(), m["quote_count"].as_i64()) {
                (None, None) => None,
                (r, q) => Some(r.unwrap_or(0) + q.unwrap_or(0)),
            };
            Ok(PostMetrics {
                likes: m["like_count"].as_i64(),
                comments: m["reply_count"].as_i64(),
                shares,
                impressions: m["impression_count"].as_i64(),
                ..Default::default()
            })
        }
        .boxed()
    }

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
    use crate::platforms::AccountRef;

    fn post(text: &str, link: Option<&str>) -> PostRequest {
        PostRequest {
            account: AccountRef {
                platform_account_id: "42".into(),
                kind: "user".into(),
            },
            text: text.into(),
            link_url: link.map(|l| Url::parse(l).unwrap()),
            media: vec![],
            marker: "mk".into(),
        }
    }

    #[test]
    fn endpoints_are_the_real_hosts_or_under_the_base() {
        let real = XConnector::new(None, reqwest::Client::new());
        assert_eq!(real.api("2/tweets").as_str(), "https://api.x.com/2/tweets");
        let app = OAuthApp {
            client_id: "cid".into(),
            client_secret: secrecy::SecretString::from("s".to_owned()),
        };
        let url = real.authorization_url(
            &app,
            &Url::parse("https://app.example/cb").unwrap(),
            "st",
            "verifier-verifier-verifier-verifier-verifier-01",
        );
        assert_eq!(
            url.as_str().split('?').next().unwrap(),
            "https://x.com/i/oauth2/authorize"
        );
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["state"], "st");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(
            q["scope"],
            "tweet.read tweet.write users.read offline.access media.write"
        );
        let sandboxed = XConnector::new(
            Some(Url::parse("http://127.0.0.1:9/x/").unwrap()),
            reqwest::Client::new(),
        );
        assert_eq!(
            sandboxed.api("2/oauth2/token").as_str(),
            "http://127.0.0.1:9/x/2/oauth2/token"
        );
    }

    #[test]
    fn links_are_appended_once_and_expanded_back() {
        assert_eq!(
            tweet_text(&post("Read this", Some("https://ex.com/a"))),
            "Read this https://ex.com/a"
        );
        assert_eq!(
            tweet_text(&post("Read https://ex.com/a now", Some("https://ex.com/a"))),
            "Read https://ex.com/a now"
        );
        let tweet = json!({
            "id": "1",
            "text": "Tom &amp; Jerry &lt;3 https://t.co/abc",
            "entities": {"urls": [{"start": 22, "end": 45, "url": "https://t.co/abc", "expanded_url": "https://ex.com/a"}]}
        });
        assert_eq!(original_text(&tweet), "Tom & Jerry <3 https://ex.com/a");
    }
}
