//! Platform connectors: one trait for what every platform does, one file per platform.
//!
//! This first part covers connecting an account (OAuth 2.0 authorization code with PKCE S256,
//! code exchange, refresh, account info) and classifying every platform answer into one error
//! type. Base URLs are configuration: tests and the demo point them at `autosocial-sandbox`.

pub mod errors;
pub mod sandbox;

use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::SecretString;
use url::Url;

use crate::domain::Platform;

/// The agency's (or the deployment's) OAuth app on a platform.
#[derive(Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

/// What a successful code exchange or refresh returns.
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None` when the platform did not send one (keep the stored one).
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<Duration>,
    pub scopes: Vec<String>,
}

/// The connected account as the platform names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub id: String,
    pub name: String,
}

/// Every platform answer that is not a success, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// 5xx, timeouts, connection failures: try again later.
    #[error("temporary platform failure: {0}")]
    Transient(String),
    /// Over a platform limit: not before `retry_after`.
    #[error("rate limited for {retry_after:?}: {message}")]
    RateLimited {
        retry_after: Duration,
        message: String,
    },
    /// The token is not accepted (401, Meta code 190): refresh, then reconnect.
    #[error("authorization failed: {0}")]
    Auth(String),
    /// The grant is gone (`invalid_grant`, revoked): the account must be reconnected.
    #[error("the platform revoked the grant: {0}")]
    GrantRevoked(String),
    /// The platform refused the request itself; its own message is kept for the console.
    #[error("refused by the platform: {0}")]
    Permanent(String),
}

/// What every platform connector does.
pub trait Connector: Send + Sync {
    fn platform(&self) -> Platform;
    /// Scopes needed for publishing and metrics, and nothing more.
    fn scopes(&self) -> Vec<String>;
    /// Where to send the person to authorize: our state and the S256 challenge of `pkce_verifier`.
    fn authorization_url(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        state: &str,
        pkce_verifier: &str,
    ) -> Url;
    /// The `iss` the platform puts in its callbacks (RFC 9207), when it sends one.
    fn issuer(&self) -> Option<String>;
    fn exchange_code<'a>(
        &'a self,
        app: &'a OAuthApp,
        redirect_uri: &'a Url,
        code: &'a str,
        pkce_verifier: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>>;
    fn refresh<'a>(
        &'a self,
        app: &'a OAuthApp,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>>;
    fn account_info<'a>(
        &'a self,
        access_token: &'a str,
    ) -> BoxFuture<'a, Result<AccountInfo, PlatformError>>;
}

/// The HTTP client every connector uses: rustls, timeouts on connect and on the whole request,
/// a user agent, and no redirects followed (a token endpoint that redirects is refused).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("AutoSocial/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("static HTTP client configuration is valid")
}

/// Classify an OAuth token-endpoint error (RFC 6749 5.2) or transport failure.
pub fn classify_oauth_error<RE: std::error::Error + 'static>(
    e: oauth2::RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> PlatformError {
    use oauth2::basic::BasicErrorResponseType as T;
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            let detail = r
                .error_description()
                .cloned()
                .unwrap_or_else(|| r.error().to_string());
            match r.error() {
                T::InvalidGrant => PlatformError::GrantRevoked(detail),
                T::InvalidClient | T::UnauthorizedClient => {
                    PlatformError::Permanent(format!("app credentials refused: {detail}"))
                }
                _ => PlatformError::Permanent(detail),
            }
        }
        oauth2::RequestTokenError::Request(e) => PlatformError::Transient(e.to_string()),
        oauth2::RequestTokenError::Parse(e, _) => {
            PlatformError::Transient(format!("unreadable answer: {e}"))
        }
        oauth2::RequestTokenError::Other(e) => PlatformError::Transient(e),
    }
}

/// The connector for a platform, when this deployment can connect it.
pub fn connector(platform: Platform, config: &PlatformsConfig) -> Option<Box<dyn Connector>> {
    match platform {
        Platform::Sandbox => config.sandbox_url.clone().map(|base| {
            Box::new(sandbox::SandboxConnector::new(base, config.http.clone()))
                as Box<dyn Connector>
        }),
        _ => None,
    }
}

/// Where the platforms are, the deployment-wide app credentials, and the one HTTP client every
/// connector shares (its connection pool and TLS setup are built once per process).
#[derive(Debug, Clone)]
pub struct PlatformsConfig {
    pub sandbox_url: Option<Url>,
    pub sandbox_app: Option<OAuthApp>,
    pub http: reqwest::Client,
}

impl PlatformsConfig {
    /// Platforms this deployment can connect (a connector and an app).
    pub fn connectable(&self) -> Vec<Platform> {
        Platform::ALL
            .iter()
            .copied()
            .filter(|p| connector(*p, self).is_some() && self.app(*p).is_some())
            .collect()
    }

    pub fn app(&self, platform: Platform) -> Option<OAuthApp> {
        match platform {
            Platform::Sandbox => self.sandbox_app.clone(),
            _ => None,
        }
    }
}
