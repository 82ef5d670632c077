//! Platform connectors: one trait for what every platform does, one file per platform.
//!
//! A connector connects an account (OAuth 2.0 authorization code with PKCE S256, code exchange,
//! refresh, account info), publishes (text, single image, link) with the platform's own
//! sequence, finds a post again by its marker (reconciliation after a crash or a lost answer),
//! reads a post's metrics and, where the platform has one, the account's publishing quota.
//! Every answer that is not a success is classified into one [`PlatformError`].
//!
//! Base URLs are configuration ([`PlatformsConfig::base`]): unset means the platform's real
//! hosts; tests, benchmarks and the demo point them at `autosocial-sandbox`, which serves each
//! platform's paths under `/<platform>/`.

pub mod errors;
pub mod facebook;
pub mod instagram;
pub mod linkedin;
pub mod meta;
pub mod oauth;
pub mod sandbox;
pub mod tiktok;
pub mod x;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

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
    /// The grant is gone (`invalid_grant` on a refresh, revoked): the account must be reconnected.
    #[error("the platform revoked the grant: {0}")]
    GrantRevoked(String),
    /// The authorization code was not accepted at the exchange (`invalid_grant` there): wrong,
    /// expired, already used, or issued for another redirect URI or PKCE verifier. Nothing was
    /// revoked; the person starts connecting again.
    #[error(
        "the platform did not accept the authorization code (wrong, expired or already used): {0}"
    )]
    CodeRejected(String),
    /// The platform refused the app's own credentials (`invalid_client`, `unauthorized_client`,
    /// Meta's codes for a wrong app id or secret). No account is to blame and retrying cannot
    /// help: the app's configuration (the agency's in Settings, or the deployment's) must change.
    #[error("the platform refused the app's credentials (client id or secret): {0}")]
    AppCredentials(String),
    /// The platform refused the request itself; its own message is kept for the console.
    #[error("refused by the platform: {0}")]
    Permanent(String),
    /// Not sent at all: the [`Fence`] refused it (nothing reached the platform with it).
    #[error("not sent: {0}")]
    NotSent(NotSent),
}

/// Why a [`Fence`] kept a request from leaving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSent {
    /// This run no longer holds its job: whoever holds it now decides.
    #[error("{0}")]
    LeaseLost(String),
    /// A kill switch covers the request's scope now.
    #[error("{0}")]
    Switched(String),
    /// A limit says not yet: ask again after this long.
    #[error("{reason} (again in {after:?})")]
    Later { after: Duration, reason: String },
}

/// Asked right before each request that creates or changes something on a platform (a post, each
/// step of an upload, a token refresh): `Ok` means the request may leave now. A job's fence
/// checks that its run still holds the job's lease with a margin, that its kill-switch permit is
/// from a snapshot still valid, and that its rate-limit grant has not expired — and renews the
/// permit and the grant when it can. Reads are not fenced.
pub trait Fence: Send + Sync {
    fn check(&self) -> BoxFuture<'_, Result<(), PlatformError>>;
}

/// No fence: requests made outside a job (tests, headless connection in tools).
pub struct Unfenced;

impl Fence for Unfenced {
    fn check(&self) -> BoxFuture<'_, Result<(), PlatformError>> {
        Box::pin(async { Ok(()) })
    }
}

impl PlatformError {
    /// The same failure as seen at the authorization code exchange, where `invalid_grant` is
    /// about the code (the connectors' token classification is shared with refreshes, where it
    /// means the grant is gone).
    pub fn at_code_exchange(self) -> PlatformError {
        match self {
            PlatformError::GrantRevoked(m) => PlatformError::CodeRejected(m),
            other => other,
        }
    }
}

/// The connected account a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// The platform's id of the account (user, page, organization, Instagram business account).
    pub platform_account_id: String,
    /// `user`, `page`, `organization` or `business` (LinkedIn and Facebook post as either).
    pub kind: String,
}

/// An image the platform is given: a URL it (or the connector) can fetch. For platforms that
/// pull media themselves (Instagram, Facebook) this is the admin's signed, expiring media URL;
/// connectors for platforms that want the bytes uploaded (X, LinkedIn, TikTok) GET it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub url: Url,
    /// `image/png`, `image/jpeg`.
    pub content_type: String,
}

/// One post to publish.
#[derive(Debug, Clone)]
pub struct PostRequest {
    pub account: AccountRef,
    /// The full text as it will appear (caption, hashtags and CTA already joined).
    pub text: String,
    pub link_url: Option<Url>,
    /// At most one image for now.
    pub media: Vec<MediaRef>,
    /// Our unique id for this publication. Platforms that carry metadata (the sandbox) store it;
    /// for the others, [`Connector::find_by_marker`] matches the exact text among the account's
    /// posts created since the attempt started.
    pub marker: String,
}

/// What the platform answered when it accepted a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub post_id: String,
    pub url: Option<String>,
    /// The platform's request or trace id (`x-fb-trace-id`, `x-request-id`, TikTok `log_id`).
    pub request_id: Option<String>,
}

/// Engagement of one post as the platform reports it; `None` where it reports no such figure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostMetrics {
    pub likes: Option<i64>,
    pub comments: Option<i64>,
    pub shares: Option<i64>,
    pub impressions: Option<i64>,
    pub reach: Option<i64>,
    pub clicks: Option<i64>,
    pub views: Option<i64>,
}

/// A platform's own publishing quota read-out (Instagram `content_publishing_limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub used: i64,
    pub limit: i64,
    pub window: Duration,
}

/// What reconciliation learned from the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Published),
    NotFound,
    /// The platform cannot say (no listing endpoint, or it answered with an error that is not
    /// worth retrying): a person decides.
    Unknowable(String),
}

/// What every platform connector does.
pub trait Connector: Send + Sync {
    fn platform(&self) -> Platform;
    /// Scopes needed for publishing and metrics, and nothing more.
    fn scopes(&self) -> Vec<String>;
    /// The platform's authorization endpoint (without parameters); the console's policy lets
    /// its Connect forms redirect to this origin.
    fn authorization_endpoint(&self) -> Url;
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
    /// Publish with the platform's own sequence (containers, uploads, status polling included);
    /// returns once the platform has the post. `fence` is asked before every request of the
    /// sequence that creates or changes something.
    fn publish<'a>(
        &'a self,
        access_token: &'a str,
        post: &'a PostRequest,
        fence: &'a dyn Fence,
    ) -> BoxFuture<'a, Result<Published, PlatformError>>;
    /// Whether the post of an earlier attempt exists on the platform, looking at posts created
    /// since `since` (the earlier attempt's start, less a margin).
    fn find_by_marker<'a>(
        &'a self,
        access_token: &'a str,
        post: &'a PostRequest,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Lookup, PlatformError>>;
    fn metrics<'a>(
        &'a self,
        access_token: &'a str,
        account: &'a AccountRef,
        post_id: &'a str,
    ) -> BoxFuture<'a, Result<PostMetrics, PlatformError>>;
    /// The platform's quota read-out, `None` where the platform has none.
    fn quota<'a>(
        &'a self,
        access_token: &'a str,
        account: &'a AccountRef,
    ) -> BoxFuture<'a, Result<Option<Quota>, PlatformError>>;
}

/// A platform's whole answer.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The answer classified with the platform's own error format.
    pub fn error(&self, platform: Platform) -> PlatformError {
        errors::classify(
            platform,
            self.status.as_u16(),
            &self.headers,
            &self.body,
            Utc::now(),
        )
    }

    /// The body as JSON; an unreadable body is transient.
    pub fn json(&self) -> Result<serde_json::Value, PlatformError> {
        serde_json::from_str(&self.body)
            .map_err(|e| PlatformError::Transient(format!("unreadable answer: {e}")))
    }
}

/// Send a request and read the whole answer, whatever its status; a transport failure (no
/// answer, or one cut off) is transient.
pub async fn fetch(request: reqwest::RequestBuilder) -> Result<Answer, PlatformError> {
    let r = request
        .send()
        .await
        .map_err(|e| PlatformError::Transient(e.without_url().to_string()))?;
    let status = r.status();
    let headers = r.headers().clone();
    let body = r
        .text()
        .await
        .map_err(|e| PlatformError::Transient(e.without_url().to_string()))?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// [`fetch`], with a non-success status classified with the platform's own error format.
pub async fn send(
    platform: Platform,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::header::HeaderMap, String), PlatformError> {
    let a = fetch(request).await?;
    if !a.status.is_success() {
        return Err(a.error(platform));
    }
    Ok((a.headers, a.body))
}

/// [`send`] and parse the answer as JSON.
pub async fn send_json(
    platform: Platform,
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::header::HeaderMap, serde_json::Value), PlatformError> {
    let a = fetch(request).await?;
    if !a.status.is_success() {
        return Err(a.error(platform));
    }
    let v = a.json()?;
    Ok((a.headers, v))
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
                T::InvalidClient | T::UnauthorizedClient => PlatformError::AppCredentials(detail),
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
    let http = config.http.clone();
    match platform {
        Platform::Sandbox => config
            .sandbox_url
            .clone()
            .map(|base| Box::new(sandbox::SandboxConnector::new(base, http)) as Box<dyn Connector>),
        // connector per platform: `<platform>::Connector::new(config.base(platform), http)`
        Platform::Facebook => Some(Box::new(facebook::FacebookConnector::new(
            config.base(platform),
            http,
        ))),
        Platform::Instagram => Some(Box::new(instagram::InstagramConnector::new(
            config.base(platform),
            http,
        ))),
        Platform::Tiktok => Some(
            Box::new(tiktok::TiktokConnector::new(config.base(platform), http))
                as Box<dyn Connector>,
        ),
        Platform::Linkedin => Some(Box::new(linkedin::LinkedinConnector::new(
            config.base(platform),
            http,
        ))),
        Platform::X => Some(Box::new(x::XConnector::new(config.base(platform), http))),
    }
}

/// Where the platforms are, the deployment-wide app credentials, and the one HTTP client every
/// connector shares (its connection pool and TLS setup are built once per process).
#[derive(Debug, Clone)]
pub struct PlatformsConfig {
    pub sandbox_url: Option<Url>,
    pub sandbox_app: Option<OAuthApp>,
    /// Base URL per platform when not its real hosts (the sandbox serves `/<platform>/…`).
    pub bases: HashMap<Platform, Url>,
    /// Deployment-wide OAuth apps per platform (an agency's own app, set in the console,
    /// takes precedence).
    pub apps: HashMap<Platform, OAuthApp>,
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
            p => self.apps.get(&p).cloned(),
        }
    }

    /// The base URL a connector uses instead of the platform's real hosts, if configured.
    pub fn base(&self, platform: Platform) -> Option<Url> {
        self.bases.get(&platform).cloned()
    }

    /// Every platform pointed at one sandbox, each under `/<platform>/`, with the sandbox's
    /// default app for all of them (tests, benchmarks, the demo).
    pub fn all_in_sandbox(sandbox: &Url, http: reqwest::Client) -> PlatformsConfig {
        let app = OAuthApp {
            client_id: "autosocial-sandbox-client".into(),
            client_secret: SecretString::from("autosocial-sandbox-secret".to_owned()),
        };
        let mut bases = HashMap::new();
        let mut apps = HashMap::new();
        for p in Platform::ALL
            .iter()
            .copied()
            .filter(|p| *p != Platform::Sandbox)
        {
            let base = sandbox
                .join(&format!("{p}/"))
                .expect("a platform name joins a URL");
            bases.insert(p, base);
            apps.insert(p, app.clone());
        }
        PlatformsConfig {
            sandbox_url: Some(sandbox.clone()),
            sandbox_app: Some(app),
            bases,
            apps,
            http,
        }
    }
}

/// Run the authorization code flow without a person, against a sandbox in auto-approve mode
/// (demo seeding, tests, benchmarks): open the authorization URL, take the code from the
/// redirect and exchange it. `login_hint` picks the sandbox account.
pub async fn connect_headless(
    connector: &dyn Connector,
    app: &OAuthApp,
    http: &reqwest::Client,
    login_hint: &str,
) -> anyhow::Result<(TokenSet, AccountInfo)> {
    let redirect = Url::parse(&format!(
        "http://127.0.0.1/oauth/callback/{}",
        connector.platform()
    ))?;
    let verifier = crate::secret::random_token(48);
    let mut auth =
        connector.authorization_url(app, &redirect, &crate::secret::random_token(16), &verifier);
    auth.query_pairs_mut().append_pair("login_hint", login_hint);
    let back = http.get(auth).send().await?;
    let location = back
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("the sandbox did not redirect (is auto_approve on?)"))?;
    let code = Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow::anyhow!("the sandbox answered without a code: {location}"))?;
    let tokens = connector
        .exchange_code(app, &redirect, &code, &verifier)
        .await?;
    let info = connector
        .account_info(secrecy::ExposeSecret::expose_secret(&tokens.access_token))
        .await?;
    Ok((tokens, info))
}
