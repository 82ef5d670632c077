//! LinkedIn: "Sign In with LinkedIn using OpenID Connect" and "Share on LinkedIn" for members,
//! the Community Management API for organizations, following LinkedIn's reference pages
//! (learn.microsoft.com/linkedin): OAuth 2.0 authorization code at
//! `www.linkedin.com/oauth/v2/authorization` and `/oauth/v2/accessToken` (client credentials in
//! the form body), the OpenID `GET /v2/userinfo`, and the versioned REST API
//! (`LinkedIn-Version: YYYYMM`, `X-Restli-Protocol-Version: 2.0.0`): `POST /rest/posts`,
//! `POST /rest/images?action=initializeUpload` then a PUT of the bytes, `GET /rest/posts?q=author`,
//! `GET /rest/socialActions/{urn}` and `GET /rest/organizationalEntityShareStatistics`.
//!
//! Member or organization: an account whose [`AccountRef::kind`] is `organization` posts as
//! `urn:li:organization:{id}` (its `platform_account_id` is the numeric id or the whole URN);
//! every other account posts as the member `urn:li:person:{id}` (the OpenID `sub`). Members are
//! the default and ask only `openid profile w_member_social`. Connecting an organization needs a
//! connector built with [`LinkedinConnector::with_organization_scopes`], which adds
//! `w_organization_social r_organization_social rw_organization_admin` (posting, reading the
//! page's posts, and its share statistics).
//!
//! What members cannot do without a restricted permission: listing a member's posts and reading
//! their social actions need `r_member_social`, which LinkedIn grants to approved partners only.
//! Apps that have it build the connector with [`LinkedinConnector::with_member_read_scope`];
//! without it reconciliation answers [`Lookup::Unknowable`] (a person checks the profile) and
//! member metrics fail with LinkedIn's refusal. Organizations read both with their own scopes.
//!
//! LinkedIn also supports PKCE only for some app types; the challenge and verifier are sent
//! anyway (our OAuth rules demand it; LinkedIn ignores what it does not use).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::{
    AccountInfo, AccountRef, Connector, Fence, Lookup, OAuthApp, PlatformError, PostMetrics,
    PostRequest, Published, Quota, TokenSet, oauth,
};
use crate::domain::Platform;

const AUTH_HOST: &str = "https://www.linkedin.com/";
const API: &str = "https://api.linkedin.com/";
/// The Marketing API version this connector was written against; LinkedIn keeps each version
/// for about a year and answers 426 for a retired one.
pub const LINKEDIN_VERSION: &str = "202610";
/// Characters LinkedIn's "little text" format reserves in `commentary`; unescaped, the text
/// from them on is lost.
const RESERVED: &[char] = &[
    '\\', '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '*', '_', '~',
];
/// Pages of 50 posts read while reconciling.
const MAX_PAGES: usize = 6;
/// How long an uploaded image may stay in processing before the post is attempted anyway.
const IMAGE_READY_POLLS: usize = 10;

const MEMBER_SCOPES: &[&str] = &["openid", "profile", "w_member_social"];
const ORGANIZATION_SCOPES: &[&str] = &[
    "w_organization_social",
    "r_organization_social",
    "rw_organization_admin",
];

pub struct LinkedinConnector {
    base: Option<Url>,
    http: reqwest::Client,
    version: String,
    extra_scopes: Vec<&'static str>,
}

/// Escape text for `commentary` (LinkedIn's little text format).
pub fn escape_commentary(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if RESERVED.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The plain text of a `commentary` in little text format.
pub fn unescape_commentary(commentary: &str) -> String {
    let mut out = String::with_capacity(commentary.len());
    let mut chars = commentary.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The author URN a post is made as (see the module docs).
pub fn author_urn(account: &AccountRef) -> String {
    let id = account.platform_account_id.as_str();
    if account.kind == "organization" {
        if id.starts_with("urn:li:organization:") {
            id.to_owned()
        } else {
            format!("urn:li:organization:{id}")
        }
    } else if id.starts_with("urn:li:person:") {
        id.to_owned()
    } else {
        format!("urn:li:person:{id}")
    }
}

/// A URN as one path segment or query value: Rest.li 2.0 wants `:` and friends encoded.
fn encode_urn(urn: &str) -> String {
    url::form_urlencoded::byte_serialize(urn.as_bytes()).collect()
}

fn post_url(urn: &str) -> String {
    format!("https://www.linkedin.com/feed/update/{urn}/")
}

impl LinkedinConnector {
    /// `base == None`: LinkedIn's real hosts; otherwise every path under `base`.
    pub fn new(base: Option<Url>, http: reqwest::Client) -> LinkedinConnector {
        LinkedinConnector {
            base,
            http,
            version: LINKEDIN_VERSION.to_owned(),
            extra_scopes: Vec::new(),
        }
    }

    /// Also ask what posting as, and reading, an organization the member administers needs.
    pub fn with_organization_scopes(mut self) -> Self {
        self.extra_scopes.extend_from_slice(ORGANIZATION_SCOPES);
        self
    }

    /// Also ask `r_member_social` (restricted; only for apps LinkedIn approved for it).
    pub fn with_member_read_scope(mut self) -> Self {
        self.extra_scopes.push("r_member_social");
        self
    }

    /// Another `LinkedIn-Version` (`YYYYMM`), e.g. from configuration when LinkedIn retires ours.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    fn url(&self, real_host: &str, path: &str) -> Url {
        match &self.base {
            Some(b) => b.join(path),
            None => Url::parse(real_host).expect("static URL").join(path),
        }
        .expect("static paths join")
    }

    fn api(&self, path: &str) -> Url {
        self.url(API, path)
    }

    fn oauth(&self, app: &OAuthApp) -> oauth::Client {
        // LinkedIn reads client_id and client_secret from the form body
        oauth::client(
            app,
            self.authorization_endpoint(),
            self.url(AUTH_HOST, "oauth/v2/accessToken"),
            oauth2::AuthType::RequestBody,
        )
    }

    /// A token request: the client credentials go in the form body, as LinkedIn reads them.
    async fn token_request(
        &self,
        app: &OAuthApp,
        params: &[(&str, &str)],
    ) -> Result<TokenSet, PlatformError> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("client_id", &app.client_id));
        form.push(("client_secret", app.client_secret.expose_secret()));
        let a = super::fetch(
            self.http
                .post(self.url(AUTH_HOST, "oauth/v2/accessToken"))
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&form),
        )
        .await?;
        if !a.status.is_success() {
            return Err(token_error(a.status.as_u16(), &a.body));
        }
        serde_json::from_str::<TokenAnswer>(&a.body)
            .map(TokenSet::from)
            .map_err(|e| PlatformError::Transient(format!("unreadable token answer: {e}")))
    }

    /// A request to the versioned REST API with the headers every call there needs.
    fn rest(&self, method: reqwest::Method, url: Url, token: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(token)
            .header("LinkedIn-Version", &self.version)
            .header("X-Restli-Protocol-Version", "2.0.0")
    }

    /// Initialize an image upload owned by `owner`, PUT the bytes, wait until it is available.
    async fn upload_image(
        &self,
        token: &str,
        owner: &str,
        media: &super::MediaRef,
        fence: &dyn Fence,
    ) -> Result<String, PlatformError> {
        let bytes = super::x::fetch_media(&self.http, &media.url).await?;
        let mut init = self.api("rest/images");
        init.query_pairs_mut()
            .append_pair("action", "initializeUpload");
        fence.check().await?;
        let (_, v) = send_json(
            self.rest(reqwest::Method::POST, init, token)
                .json(&json!({ "initializeUploadRequest": { "owner": owner } })),
        )
        .await?;
        let (Some(upload_url), Some(image)) = (
            v["value"]["uploadUrl"].as_str(),
            v["value"]["image"].as_str(),
        ) else {
            return Err(PlatformError::Transient(
                "image upload answer without uploadUrl and image".into(),
            ));
        };
        let upload_url = Url::parse(upload_url)
            .map_err(|e| PlatformError::Transient(format!("unusable uploadUrl: {e}")))?;
        fence.check().await?;
        super::send(
            Platform::Linkedin,
            self.http
                .put(upload_url)
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, &media.content_type)
                .body(bytes),
        )
        .await?;
        let status_url = self.api(&format!("rest/images/{}", encode_urn(image)));
        for _ in 0..IMAGE_READY_POLLS {
            let (_, v) =
                send_json(self.rest(reqwest::Method::GET, status_url.clone(), token)).await?;
            match v["status"].as_str() {
                Some("AVAILABLE") => return Ok(image.to_owned()),
                Some("PROCESSING_FAILED") => {
                    return Err(PlatformError::Permanent(format!(
                        "LinkedIn could not process the image {image}"
                    )));
                }
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        // still processing: the post itself will say whether LinkedIn takes it
        Ok(image.to_owned())
    }

    /// The author's posts created at or after `since`, newest first (`sortBy=CREATED`).
    async fn posts_since(
        &self,
        token: &str,
        author: &str,
        since: DateTime<Utc>,
    ) -> Result<Result<Vec<Value>, String>, PlatformError> {
        let since_ms = since.timestamp_millis();
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let mut url = self.api("rest/posts");
            url.set_query(Some(&format!(
                "author={}&q=author&count=50&start={}&sortBy=CREATED",
                encode_urn(author),
                page * 50
            )));
            let v = match send_json(self.rest(reqwest::Method::GET, url, token)).await {
                Ok((_, v)) => v,
                Err(PlatformError::Permanent(m)) if m.starts_with("ACCESS_DENIED") => {
                    return Ok(Err(format!(
                        "LinkedIn does not let this app list {author}'s posts ({m}); members need \
                         the restricted r_member_social permission"
                    )));
                }
                Err(e) => return Err(e),
            };
            let elements = v["elements"].as_array().cloned().unwrap_or_default();
            let n = elements.len();
            let mut older = false;
            for p in elements {
                if p["createdAt"].as_i64().is_some_and(|c| c < since_ms) {
                    older = true;
                } else {
                    out.push(p);
                }
            }
            if older || n < 50 {
                return Ok(Ok(out));
            }
        }
        Ok(Err(format!(
            "more than {} posts since {since}: not all were compared",
            MAX_PAGES * 50
        )))
    }
}

/// [`super::send_json`] for LinkedIn, keeping the error `code` (`ACCESS_DENIED`, …) in the
/// message, which the shared classification leaves out.
async fn send_json(request: reqwest::RequestBuilder) -> Result<(HeaderMap, Value), PlatformError> {
    let a = super::fetch(request).await?;
    if !a.status.is_success() {
        let code = serde_json::from_str::<Value>(&a.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        return Err(match (a.error(Platform::Linkedin), code) {
            (PlatformError::Permanent(m), Some(code)) if !m.contains(&code) => {
                PlatformError::Permanent(format!("{code}: {m}"))
            }
            (other, _) => other,
        });
    }
    if a.body.trim().is_empty() {
        return Ok((a.headers, Value::Null));
    }
    let v = a.json()?;
    Ok((a.headers, v))
}

/// LinkedIn's token answer: no `token_type` (which RFC 6749 clients insist on), `scope`
/// comma-separated, and `refresh_token` only for apps enabled for programmatic refresh.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

impl From<TokenAnswer> for TokenSet {
    fn from(t: TokenAnswer) -> TokenSet {
        TokenSet {
            access_token: SecretString::from(t.access_token),
            refresh_token: t.refresh_token.map(SecretString::from),
            expires_in: t.expires_in.map(Duration::from_secs),
            scopes: t
                .scope
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// An RFC 6749 error answer from the token endpoint, classified.
fn token_error(status: u16, body: &str) -> PlatformError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let detail = v["error_description"]
        .as_str()
        .or_else(|| v["error"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| body.chars().take(300).collect());
    match v["error"].as_str() {
        Some("invalid_grant") => PlatformError::GrantRevoked(detail),
        Some("invalid_client" | "unauthorized_client") => PlatformError::AppCredentials(detail),
        _ if status >= 500 || status == 429 => PlatformError::Transient(detail),
        _ => PlatformError::Permanent(detail),
    }
}

/// The body of `POST /rest/posts` for this post as `author`, with an uploaded image's URN.
pub fn post_body(post: &PostRequest, author: &str, image: Option<&str>) -> Value {
    let mut body = json!({
        "author": author,
        "commentary": escape_commentary(&post.text),
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": []
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false
    });
    if let Some(image) = image {
        body["content"] = json!({ "media": { "id": image } });
    } else if let Some(link) = &post.link_url {
        // the Posts API does not scrape the page: the article needs its own title
        let title: String = post
            .text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(200).collect())
            .unwrap_or_else(|| link.host_str().unwrap_or("Link").to_owned());
        body["content"] = json!({ "article": { "source": link.as_str(), "title": title } });
    }
    body
}

impl Connector for LinkedinConnector {
    fn platform(&self) -> Platform {
        Platform::Linkedin
    }

    fn scopes(&self) -> Vec<String> {
        MEMBER_SCOPES
            .iter()
            .chain(self.extra_scopes.iter())
            .map(|s| s.to_string())
            .collect()
    }

    fn issuer(&self) -> Option<String> {
        None
    }

    fn authorization_endpoint(&self) -> Url {
        self.url(AUTH_HOST, "oauth/v2/authorization")
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
            self.token_request(
                app,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri.as_str()),
                    ("code_verifier", pkce_verifier),
                ],
            )
            .await
            .map_err(PlatformError::at_code_exchange)
        }
        .boxed()
    }

    /// Only apps LinkedIn enabled for programmatic refresh get refresh tokens; the others
    /// reconnect when the 60-day access token ends.
    fn refresh<'a>(
        &'a self,
        app: &'a OAuthApp,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            self.token_request(
                app,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await
        }
        .boxed()
    }

    fn account_info<'a>(
        &'a self,
        access_token: &'a str,
    ) -> BoxFuture<'a, Result<AccountInfo, PlatformError>> {
        async move {
            let (_, v) = send_json(
                self.http
                    .get(self.api("v2/userinfo"))
                    .bearer_auth(access_token),
            )
            .await?;
            match (v["sub"].as_str(), v["name"].as_str()) {
                (Some(sub), name) => Ok(AccountInfo {
                    id: sub.to_owned(),
                    name: name.unwrap_or(sub).to_owned(),
                }),
                _ => Err(PlatformError::Permanent(
                    "LinkedIn answered /v2/userinfo without sub".into(),
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
            let author = author_urn(&post.account);
            let image = match post.media.first() {
                Some(m) => Some(self.upload_image(access_token, &author, m, fence).await?),
                None => None,
            };
            let body = post_body(post, &author, image.as_deref());
            fence.check().await?;
            let (headers, _) = send_json(
                self.rest(reqwest::Method::POST, self.api("rest/posts"), access_token)
                    .json(&body),
            )
            .await?;
            let Some(urn) = headers.get("x-restli-id").and_then(|h| h.to_str().ok()) else {
                return Err(PlatformError::Transient(
                    "LinkedIn accepted the post without naming it (no x-restli-id)".into(),
                ));
            };
            Ok(Published {
                post_id: urn.to_owned(),
                url: Some(post_url(urn)),
                request_id: headers
                    .get("x-li-uuid")
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
            let author = author_urn(&post.account);
            let posts = match self.posts_since(access_token, &author, since).await? {
                Ok(p) => p,
                Err(why) => return Ok(Lookup::Unknowable(why)),
            };
            let found: Vec<&str> = posts
                .iter()
                .filter(|p| {
                    p["commentary"]
                        .as_str()
                        .is_some_and(|c| unescape_commentary(c) == post.text)
                })
                .filter_map(|p| p["id"].as_str())
                .collect();
            Ok(match found.as_slice() {
                [] => Lookup::NotFound,
                [urn] => Lookup::Found(Published {
                    post_id: urn.to_string(),
                    url: Some(post_url(urn)),
                    request_id: None,
                }),
                many => Lookup::Unknowable(format!(
                    "{} posts by {author} since {since} have exactly this text",
                    many.len()
                )),
            })
        }
        .boxed()
    }

    /// Organizations: `organizationalEntityShareStatistics` (impressions, reach, clicks, likes,
    /// comments, shares). Members: `socialActions` (likes and comments only; LinkedIn reports
    /// nothing else for a member's post to a non-partner app).
    fn metrics<'a>(
        &'a self,
        access_token: &'a str,
        account: &'a AccountRef,
        post_id: &'a str,
    ) -> BoxFuture<'a, Result<PostMetrics, PlatformError>> {
        async move {
            let author = author_urn(account);
            if author.starts_with("urn:li:organization:") {
                let list = if post_id.starts_with("urn:li:ugcPost:") {
                    "ugcPosts"
                } else {
                    "shares"
                };
                let mut url = self.api("rest/organizationalEntityShareStatistics");
                // Rest.li 2.0 list syntax: the parentheses stay, the URNs inside are encoded
                url.set_query(Some(&format!(
                    "q=organizationalEntity&organizationalEntity={}&{list}=List({})",
                    encode_urn(&author),
                    encode_urn(post_id)
                )));
                let (_, v) = send_json(self.rest(reqwest::Method::GET, url, access_token)).await?;
                let Some(s) = v["elements"]
                    .as_array()
                    .and_then(|e| e.first())
                    .map(|e| &e["totalShareStatistics"])
                else {
                    return Err(PlatformError::Permanent(format!(
                        "LinkedIn has no statistics for {post_id}"
                    )));
                };
                Ok(PostMetrics {
                    likes: s["likeCount"].as_i64(),
                    comments: s["commentCount"].as_i64(),
                    shares: s["shareCount"].as_i64(),
                    impressions: s["impressionCount"].as_i64(),
                    reach: s["uniqueImpressionsCount"].as_i64(),
                    clicks: s["clickCount"].as_i64(),
                    views: None,
                })
            } else {
                let url = self.api(&format!("rest/socialActions/{}", encode_urn(post_id)));
                let (_, v) = send_json(self.rest(reqwest::Method::GET, url, access_token)).await?;
                Ok(PostMetrics {
                    likes: v["likesSummary"]["totalLikes"].as_i64(),
                    comments: v["commentsSummary"]["aggregatedTotalComments"]
                        .as_i64()
                        .or_else(|| v["commentsSummary"]["totalFirstLevelComments"].as_i64()),
                    ..Default::default()
                })
            }
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

    fn account(id: &str, kind: &str) -> AccountRef {
        AccountRef {
            platform_account_id: id.into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn authors_are_members_unless_the_account_is_an_organization() {
        assert_eq!(author_urn(&account("abc", "user")), "urn:li:person:abc");
        assert_eq!(
            author_urn(&account("urn:li:person:abc", "user")),
            "urn:li:person:abc"
        );
        assert_eq!(
            author_urn(&account("123", "organization")),
            "urn:li:organization:123"
        );
        assert_eq!(
            author_urn(&account("urn:li:organization:123", "organization")),
            "urn:li:organization:123"
        );
    }

    #[test]
    fn commentary_escapes_little_text_and_round_trips() {
        let text = "Launch (today) #news @team 50% off_now \\o/";
        let escaped = escape_commentary(text);
        assert_eq!(
            escaped,
            "Launch \\(today\\) \\#news \\@team 50% off\\_now \\\\o/"
        );
        assert_eq!(unescape_commentary(&escaped), text);
    }

    #[test]
    fn post_body_has_the_documented_shape() {
        let mut post = PostRequest {
            account: account("abc", "user"),
            text: "Hello".into(),
            link_url: None,
            media: vec![],
            marker: "m".into(),
        };
        let b = post_body(&post, "urn:li:person:abc", Some("urn:li:image:1"));
        assert_eq!(
            b,
            json!({
                "author": "urn:li:person:abc",
                "commentary": "Hello",
                "visibility": "PUBLIC",
                "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
                "lifecycleState": "PUBLISHED",
                "isReshareDisabledByAuthor": false,
                "content": {"media": {"id": "urn:li:image:1"}}
            })
        );
        post.link_url = Some(Url::parse("https://example.com/a").unwrap());
        let b = post_body(&post, "urn:li:person:abc", None);
        assert_eq!(
            b["content"],
            json!({"article": {"source": "https://example.com/a", "title": "Hello"}})
        );
    }

    #[test]
    fn scopes_ask_organization_rights_only_when_built_for_them() {
        let c = LinkedinConnector::new(None, reqwest::Client::new());
        assert_eq!(c.scopes(), ["openid", "profile", "w_member_social"]);
        let c = c.with_organization_scopes();
        assert!(c.scopes().contains(&"rw_organization_admin".to_owned()));
        assert_eq!(
            c.api("rest/posts").as_str(),
            "https://api.linkedin.com/rest/posts"
        );
        assert_eq!(
            c.url(AUTH_HOST, "oauth/v2/accessToken").as_str(),
            "https://www.linkedin.com/oauth/v2/accessToken"
        );
    }
}
