//! The neutral `sandbox` platform (autosocial-sandbox): standard OAuth 2.0 + PKCE and `/v1/me`.

use futures::FutureExt;
use futures::future::BoxFuture;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{
    AccountInfo, Connector, OAuthApp, PlatformError, TokenSet, classify_oauth_error, errors,
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
}
