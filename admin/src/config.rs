//! The console's settings.

use std::net::SocketAddr;

use autosocial_core::config::{DatabaseArgs, KeyArgs, RedisArgs};
use clap::Args;

fn parse_public_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s)
        .map_err(|_| "expected an absolute URL like https://social.example.com".to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected an http:// or https:// URL with a host".into());
    }
    if url.path() != "/" || url.query().is_some() {
        return Err("expected the site root, without a path or query".into());
    }
    Ok(url)
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub web: WebArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// Address the console listens on.
    #[arg(
        long = "listen",
        env = "AUTOSOCIAL_ADMIN_LISTEN",
        value_name = "AUTOSOCIAL_ADMIN_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// The URL people reach the console at (OAuth redirect URIs and the Origin check use it;
    /// https:// makes cookies Secure and `__Host-` prefixed).
    #[arg(long = "public-url", env = "AUTOSOCIAL_PUBLIC_URL", value_name = "AUTOSOCIAL_PUBLIC_URL",
          default_value = "http://127.0.0.1:8080", value_parser = parse_public_url)]
    pub public_url: url::Url,

    /// A session ends after this many minutes without a request.
    #[arg(long = "session-idle-minutes", env = "AUTOSOCIAL_SESSION_IDLE_MINUTES", value_name = "AUTOSOCIAL_SESSION_IDLE_MINUTES",
          default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub session_idle_minutes: u32,

    /// A session ends this many hours after login, active or not.
    #[arg(long = "session-absolute-hours", env = "AUTOSOCIAL_SESSION_ABSOLUTE_HOURS", value_name = "AUTOSOCIAL_SESSION_ABSOLUTE_HOURS",
          default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub session_absolute_hours: u32,

    /// Take the client address from X-Real-IP (set this only behind the shipped nginx site).
    #[arg(long = "trust-proxy", env = "AUTOSOCIAL_TRUST_PROXY", value_name = "AUTOSOCIAL_TRUST_PROXY", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub trust_proxy: bool,

    /// Failed-or-not login attempts allowed per account per minute.
    #[arg(long = "login-per-account-per-minute", env = "AUTOSOCIAL_LOGIN_PER_ACCOUNT_PER_MINUTE",
          value_name = "AUTOSOCIAL_LOGIN_PER_ACCOUNT_PER_MINUTE", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub login_per_account_per_minute: u32,

    /// Login attempts allowed per client address per minute.
    #[arg(long = "login-per-ip-per-minute", env = "AUTOSOCIAL_LOGIN_PER_IP_PER_MINUTE",
          value_name = "AUTOSOCIAL_LOGIN_PER_IP_PER_MINUTE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub login_per_ip_per_minute: u32,

    /// Where generated cards and uploads live (content-addressed); served to platforms only
    /// through signed, expiring links.
    #[arg(
        long = "media-dir",
        env = "AUTOSOCIAL_MEDIA_DIR",
        value_name = "AUTOSOCIAL_MEDIA_DIR",
        default_value = "var/media"
    )]
    pub media_dir: std::path::PathBuf,

    /// The shipped templates (the composer renders brand cards with `fonts/` in it).
    #[arg(
        long = "templates-dir",
        env = "AUTOSOCIAL_TEMPLATES_DIR",
        value_name = "AUTOSOCIAL_TEMPLATES_DIR",
        default_value = "templates"
    )]
    pub templates_dir: std::path::PathBuf,

    /// Requests each API key may make per minute (`/api/v1`); a minute's worth may come at once.
    #[arg(long = "api-requests-per-minute", env = "AUTOSOCIAL_API_REQUESTS_PER_MINUTE",
          value_name = "AUTOSOCIAL_API_REQUESTS_PER_MINUTE", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_requests_per_minute: u32,

    #[command(flatten)]
    pub outbound: autosocial_core::net_guard::OutboundArgs,

    #[command(flatten)]
    pub platforms: autosocial_core::config::PlatformArgs,
}

impl WebArgs {
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Defaults for tests and embedding.
    pub fn for_tests() -> WebArgs {
        WebArgs {
            listen: "127.0.0.1:0".parse().expect("valid"),
            public_url: url::Url::parse("http://127.0.0.1:8080").expect("valid"),
            session_idle_minutes: 60,
            session_absolute_hours: 12,
            trust_proxy: false,
            login_per_account_per_minute: 5,
            login_per_ip_per_minute: 20,
            media_dir: std::env::temp_dir().join("autosocial-test-media"),
            templates_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates"),
            api_requests_per_minute: 600,
            // tests' webhook receivers listen on 127.0.0.1 over http
            outbound: autosocial_core::net_guard::OutboundArgs {
                allow_private: true,
            },
            platforms: autosocial_core::config::PlatformArgs::sandbox(None),
        }
    }
}
