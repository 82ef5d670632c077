//! The neutral `sandbox` platform (autosocial-sandbox): standard OAuth 2.0 + PKCE, `/v1/me`,
//! `POST /v1/posts` (which stores our marker, so reconciliation asks it exactly),
//! `GET /v1/posts?marker=`, `/v1/posts/{id}/metrics` and `/v1/quota`.

use futures::FutureExt;
use futures::future::BoxFuture;
use url::Url;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    AccountInfo, AccountRef, Connector, Fence, Lookup, OAuthApp, PlatformError, PostMetrics,
    PostRequest, Published, Quota, TokenSet, oauth, send_json,
};
use crate::domain::Platform;

pub struct SandboxConnector {
    base: Url,
    http: reqwest::Client,
}

impl SandboxConnector {
    pub fn new(base: Url, http: reqwest::Client) -> SandboxConnector {
        SandboxConnector { base, http }
    }

    fn endpoint(&self, path: &str) -> Url {
        self.base.join(path).expect("static paths join")
    }

    fn oauth(&self, app: &OAuthApp) -> oauth::Client {
        oauth::client(
            app,
            self.authorization_endpoint(),
            self.endpoint("/oauth/token"),
            oauth2::AuthType::BasicAuth,
        )
    }
}

impl Connector for SandboxConnector {
    fn platform(&self) -> Platform {
        Platform::Sandbox
    }

    fn scopes(&self) -> Vec<String> {
        vec!["publish".into(), "metrics".into()]
    }

    fn issuer(&self) -> Option<String> {
        Some(self.base.origin().ascii_serialization())
    }

    fn authorization_endpoint(&self) -> Url {
        self.endpoint("/oauth/authorize")
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
            let (_, v) = send_json(
                Platform::Sandbox,
                self.http
                    .get(self.endpoint("/v1/me"))
                    .bearer_auth(access_token),
            )
            .await?;
            match (v["id"].as_str(), v["name"].as_str()) {
                (Some(id), Some(name)) => Ok(AccountInfo {
                    id: id.to_owned(),
                    name: name.to_owned(),
                }),
                _ => Err(PlatformError::Permanent(
                    "account answer without id and name".into(),
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
            let body = json!({
                "text": post.text,
                "marker": post.marker,
                "link_url": post.link_url.as_ref().map(|u| u.as_str()),
                "media": post.media.iter().map(|m| m.url.as_str()).collect::<Vec<_>>(),
            });
            fence.check().await?;
            let (headers, v) = send_json(
                Platform::Sandbox,
                self.http
                    .post(self.endpoint("/v1/posts"))
                    .bearer_auth(access_token)
                    .json(&body),
            )
            .await?;
            let Some(id) = v["id"].as_str() else {
                return Err(PlatformError::Transient("post answer without an id".into()));
            };
            Ok(Published {
                post_id: id.to_owned(),
                url: v["url"].as_str().map(str::to_owned),
                request_id: headers
                    .get("x-request-id")
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
        _since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Lookup, PlatformError>> {
        async move {
            let mut url = self.endpoint("/v1/posts");
            url.query_pairs_mut().append_pair("marker", &post.marker);
            let (_, v) = send_json(
                Platform::Sandbox,
                self.http.get(url).bearer_auth(access_token),
            )
            .await?;
            let Some(found) = v["data"].as_array() else {
                return Ok(Lookup::Unknowable("search answer without data".into()));
            };
            Ok(match found.as_slice() {
                [] => Lookup::NotFound,
                [p] => match p["id"].as_str() {
                    Some(id) => Lookup::Found(Published {
                        post_id: id.to_owned(),
                        url: p["url"].as_str().map(str::to_owned),
                        request_id: None,
                    }),
                    None => Lookup::Unknowable("search answer without an id".into()),
                },
                many => Lookup::Unknowable(format!(
                    "{} posts carry the marker {}",
                    many.len(),
                    post.marker
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
            let mut url = self.endpoint("/v1/posts/");
            url.path_segments_mut()
                .map_err(|_| PlatformError::Permanent("bad sandbox base URL".into()))?
                .pop_if_empty()
                .push(post_id)
                .push("metrics");
            let (_, v) = send_json(
                Platform::Sandbox,
                self.http.get(url).bearer_auth(access_token),
            )
            .await?;
            Ok(PostMetrics {
                likes: v["likes"].as_i64(),
                comments: v["comments"].as_i64(),
                shares: v["shares"].as_i64(),
                impressions: v["impressions"].as_i64(),
                ..Default::default()
            })
        }
        .boxed()
    }

    fn quota<'a>(
        &'a self,
        access_token: &'a str,
        _account: &'a AccountRef,
    ) -> BoxFuture<'a, Result<Option<Quota>, PlatformError>> {
        async move {
            let (_, v) = send_json(
                Platform::Sandbox,
                self.http
                    .get(self.endpoint("/v1/quota"))
                    .bearer_auth(access_token),
            )
            .await?;
            Ok(match (v["used"].as_i64(), v["limit"].as_i64()) {
                (Some(used), Some(limit)) => Some(Quota {
                    used,
                    limit,
                    window: std::time::Duration::from_secs(
                        v["window_secs"].as_u64().unwrap_or(86_400),
                    ),
                }),
                _ => None,
            })
        }
        .boxed()
    }
}
