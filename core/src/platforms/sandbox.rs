//! The neutral `sandbox` platform (autosocial-sandbox): standard OAuth 2.0 + PKCE, `/v1/me`,
//! `POST /v1/posts` (which stores our marker, so reconciliation asks it exactly),
//! `GET /v1/posts?marker=`, `/v1/posts/{id}/metrics` and `/v1/quota`.

use futures::FutureExt;
use futures::future::BoxFuture;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    AccountInfo, AccountRef, Connector, Lookup, OAuthApp, PlatformError, PostMetrics, PostRequest,
    Published, Quota, TokenSet, classify_oauth_error, errors, send_json,
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

    fn oauth(
        &self,
        app: &OAuthApp,
    ) -> oauth2::Client<
        oauth2::basic::BasicErrorResponse,
        oauth2::basic::BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        oauth2::StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        BasicClient::new(ClientId::new(app.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                app.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(self.endpoint("/oauth/authorize")))
            .set_token_uri(TokenUrl::from_url(self.endpoint("/oauth/token")))
    }
}

fn token_set(t: &oauth2::basic::BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(t.access_token().secret().to_owned()),
        refresh_token: t
            .refresh_token()
            .map(|r| SecretString::from(r.secret().to_owned())),
        expires_in: t.expires_in(),
        scopes: t
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default(),
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

    fn authorization_url(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        state: &str,
        pkce_verifier: &str,
    ) -> Url {
        let state = state.to_owned();
        let (url, _) = self
            .oauth(app)
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()))
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes().into_iter().map(Scope::new))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(
                &PkceCodeVerifier::new(pkce_verifier.to_owned()),
            ))
            .url();
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
            let client = self
                .oauth(app)
                .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
            let t = client
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
                .request_async(&self.http)
                .await
                .map_err(classify_oauth_error)?;
            Ok(token_set(&t))
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        app: &'a OAuthApp,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            let token = RefreshToken::new(refresh_token.to_owned());
            let t = self
                .oauth(app)
                .exchange_refresh_token(&token)
                .request_async(&self.http)
                .await
                .map_err(classify_oauth_error)?;
            Ok(token_set(&t))
        }
        .boxed()
    }

    fn account_info<'a>(
        &'a self,
        access_token: &'a str,
    ) -> BoxFuture<'a, Result<AccountInfo, PlatformError>> {
        async move {
            let r = self
                .http
                .get(self.endpoint("/v1/me"))
                .bearer_auth(access_token)
                .send()
                .await
                .map_err(|e| PlatformError::Transient(e.without_url().to_string()))?;
            let status = r.status();
            let headers = r.headers().clone();
            let body = r
                .text()
                .await
                .map_err(|e| PlatformError::Transient(e.to_string()))?;
            if !status.is_success() {
                return Err(errors::classify(
                    Platform::Sandbox,
                    status.as_u16(),
                    &headers,
                    &body,
                    chrono::Utc::now(),
                ));
            }
            let v: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| PlatformError::Transient(format!("unreadable answer: {e}")))?;
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
    ) -> BoxFuture<'a, Result<Published, PlatformError>> {
        async move {
            let body = json!({
                "text": post.text,
                "marker": post.marker,
                "link_url": post.link_url.as_ref().map(|u| u.as_str()),
                "media": post.media.iter().map(|m| m.url.as_str()).collect::<Vec<_>>(),
            });
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
