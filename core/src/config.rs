//! Settings shared by the binaries, read from flags and the environment (clap `env`) and
//! validated at start. Every failure exits with status 2 and names the variable and what it
//! expects; secrets are [`SecretString`]s and never print in Debug or logs.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use secrecy::SecretString;

use crate::vault::Vault;

/// Print a configuration error naming the variable and exit with status 2.
pub fn exit_config_error(variable: &str, message: impl std::fmt::Display) -> ! {
    eprintln!("configuration error: {variable}: {message}");
    std::process::exit(2)
}

fn parse_postgres_url(s: &str) -> Result<SecretString, String> {
    let url = url::Url::parse(s)
        .map_err(|_| "expected a URL like postgres://user@host:5432/db".to_string())?;
    match url.scheme() {
        "postgres" | "postgresql" => Ok(SecretString::from(s.to_owned())),
        other => Err(format!("expected a postgres:// URL, got scheme `{other}`")),
    }
}

fn parse_redis_url(s: &str) -> Result<SecretString, String> {
    let url = url::Url::parse(s)
        .map_err(|_| "expected a URL like redis://127.0.0.1:6379/".to_string())?;
    match url.scheme() {
        "redis" | "rediss" => Ok(SecretString::from(s.to_owned())),
        other => Err(format!(
            "expected a redis:// or rediss:// URL, got scheme `{other}`"
        )),
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Postgres connection URL.
    #[arg(long = "database-url", env = "DATABASE_URL", value_name = "DATABASE_URL", value_parser = parse_postgres_url, hide_env_values = true)]
    pub database_url: SecretString,

    /// Maximum connections in this process's pool. Unset: the console 2 per CPU + 2 (at most
    /// 16), a worker 16.
    #[arg(long = "db-max-connections", env = "AUTOSOCIAL_DB_MAX_CONNECTIONS", value_name = "AUTOSOCIAL_DB_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub max_connections: Option<u32>,
}

impl DatabaseArgs {
    /// The console's pool: the setting, else two connections per CPU and two more, at most 16.
    /// The console's queries are short and never wait on the network with a connection held,
    /// so more connections than the machine can run at once only make them take turns inside
    /// Postgres: on 2 CPUs, 16 connections served the API's item list at 2,300 to 3,200
    /// requests/s with p99 30 to 41 ms, 6 connections at 3,800 with p99 20 ms.
    pub fn console_pool(&self) -> u32 {
        self.max_connections.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            (2 * cpus + 2).min(16)
        })
    }

    /// A worker's pool: the setting, else 16 (it runs many jobs at once).
    pub fn worker_pool(&self) -> u32 {
        self.max_connections.unwrap_or(16)
    }
}

#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis connection URL (rate-limit buckets, kill-switch broadcast, worker presence).
    #[arg(long = "redis-url", env = "REDIS_URL", value_name = "REDIS_URL", value_parser = parse_redis_url, hide_env_values = true)]
    pub redis_url: SecretString,
}

#[derive(Clone, Args)]
pub struct KeyArgs {
    /// File holding the vault keys (`id:BASE64` per line, current first). In production the
    /// systemd credential: `LoadCredential=keys:/etc/autosocial/keys` and `%d/keys` here.
    #[arg(
        long = "key-file",
        env = "AUTOSOCIAL_KEY_FILE",
        value_name = "AUTOSOCIAL_KEY_FILE"
    )]
    pub key_file: Option<PathBuf>,

    /// Vault keys inline, for development only (`id:BASE64,id:BASE64`, current first).
    #[arg(
        long = "keys",
        env = "AUTOSOCIAL_KEYS",
        value_name = "AUTOSOCIAL_KEYS",
        hide_env_values = true
    )]
    pub keys: Option<SecretString>,
}

impl std::fmt::Debug for KeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyArgs")
            .field("key_file", &self.key_file)
            .field("keys", &self.keys.as_ref().map(|_| "***"))
            .finish()
    }
}

impl KeyArgs {
    /// Load the vault or exit 2 naming the setting. The key file wins; without one,
    /// `$CREDENTIALS_DIRECTORY/keys` (systemd) is used when present, then `AUTOSOCIAL_KEYS`.
    pub fn load_or_exit(&self) -> Arc<Vault> {
        use secrecy::ExposeSecret;
        let credential =
            std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| PathBuf::from(d).join("keys"));
        let (variable, result) = if let Some(path) = &self.key_file {
            ("AUTOSOCIAL_KEY_FILE", Vault::from_file(path))
        } else if let Some(path) = credential.filter(|p| p.exists()) {
            ("CREDENTIALS_DIRECTORY/keys", Vault::from_file(&path))
        } else if let Some(spec) = &self.keys {
            ("AUTOSOCIAL_KEYS", Vault::from_spec(spec.expose_secret()))
        } else {
            exit_config_error(
                "AUTOSOCIAL_KEY_FILE",
                "not set (nor AUTOSOCIAL_KEYS for development): expected the path of a file with `id:BASE64` \
                 32-byte keys, current first (make one with `autosocial-admin keys generate`)",
            )
        };
        match result {
            Ok(v) => Arc::new(v),
            Err(e) => exit_config_error(variable, e),
        }
    }
}

/// Where the platforms are and the deployment-wide OAuth apps (agencies' own apps come later
/// from the console's settings).
#[derive(Debug, Clone, Args)]
pub struct PlatformArgs {
    /// Base URL of autosocial-sandbox (tests and the demo); unset in production.
    #[arg(
        long = "sandbox-url",
        env = "AUTOSOCIAL_SANDBOX_URL",
        value_name = "AUTOSOCIAL_SANDBOX_URL"
    )]
    pub sandbox_url: Option<url::Url>,
    /// The sandbox app's client id.
    #[arg(
        long = "sandbox-client-id",
        env = "AUTOSOCIAL_SANDBOX_CLIENT_ID",
        value_name = "AUTOSOCIAL_SANDBOX_CLIENT_ID",
        default_value = "autosocial-sandbox-client"
    )]
    pub sandbox_client_id: String,
    #[arg(
        long = "sandbox-client-secret",
        env = "AUTOSOCIAL_SANDBOX_CLIENT_SECRET",
        value_name = "AUTOSOCIAL_SANDBOX_CLIENT_SECRET",
        default_value = "autosocial-sandbox-secret",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub sandbox_client_secret: SecretString,
    /// Point every platform at the sandbox (`<sandbox>/<platform>/`) with the sandbox's app:
    /// the demo and benchmarks.
    #[arg(
        long = "platforms-in-sandbox",
        env = "AUTOSOCIAL_PLATFORMS_IN_SANDBOX",
        value_name = "AUTOSOCIAL_PLATFORMS_IN_SANDBOX",
        default_value_t = false
    )]
    pub platforms_in_sandbox: bool,
    /// Facebook: base URL instead of the real hosts (the sandbox serves `/facebook/`).
    #[arg(
        long = "facebook-base-url",
        env = "AUTOSOCIAL_FACEBOOK_BASE_URL",
        value_name = "AUTOSOCIAL_FACEBOOK_BASE_URL"
    )]
    pub facebook_base_url: Option<url::Url>,
    /// Facebook: the deployment's app (agencies may set their own in the console).
    #[arg(
        long = "facebook-client-id",
        env = "AUTOSOCIAL_FACEBOOK_CLIENT_ID",
        value_name = "AUTOSOCIAL_FACEBOOK_CLIENT_ID"
    )]
    pub facebook_client_id: Option<String>,
    #[arg(
        long = "facebook-client-secret",
        env = "AUTOSOCIAL_FACEBOOK_CLIENT_SECRET",
        value_name = "AUTOSOCIAL_FACEBOOK_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub facebook_client_secret: Option<SecretString>,
    /// Instagram: base URL instead of the real hosts (the sandbox serves `/instagram/`).
    #[arg(
        long = "instagram-base-url",
        env = "AUTOSOCIAL_INSTAGRAM_BASE_URL",
        value_name = "AUTOSOCIAL_INSTAGRAM_BASE_URL"
    )]
    pub instagram_base_url: Option<url::Url>,
    /// Instagram: the deployment's app (agencies may set their own in the console).
    #[arg(
        long = "instagram-client-id",
        env = "AUTOSOCIAL_INSTAGRAM_CLIENT_ID",
        value_name = "AUTOSOCIAL_INSTAGRAM_CLIENT_ID"
    )]
    pub instagram_client_id: Option<String>,
    #[arg(
        long = "instagram-client-secret",
        env = "AUTOSOCIAL_INSTAGRAM_CLIENT_SECRET",
        value_name = "AUTOSOCIAL_INSTAGRAM_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub instagram_client_secret: Option<SecretString>,
    /// TikTok: base URL instead of the real hosts (the sandbox serves `/tiktok/`).
    #[arg(
        long = "tiktok-base-url",
        env = "AUTOSOCIAL_TIKTOK_BASE_URL",
        value_name = "AUTOSOCIAL_TIKTOK_BASE_URL"
    )]
    pub tiktok_base_url: Option<url::Url>,
    /// TikTok: the deployment's app (agencies may set their own in the console).
    #[arg(
        long = "tiktok-client-id",
        env = "AUTOSOCIAL_TIKTOK_CLIENT_ID",
        value_name = "AUTOSOCIAL_TIKTOK_CLIENT_ID"
    )]
    pub tiktok_client_id: Option<String>,
    #[arg(
        long = "tiktok-client-secret",
        env = "AUTOSOCIAL_TIKTOK_CLIENT_SECRET",
        value_name = "AUTOSOCIAL_TIKTOK_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub tiktok_client_secret: Option<SecretString>,
    /// LinkedIn: base URL instead of the real hosts (the sandbox serves `/linkedin/`).
    #[arg(
        long = "linkedin-base-url",
        env = "AUTOSOCIAL_LINKEDIN_BASE_URL",
        value_name = "AUTOSOCIAL_LINKEDIN_BASE_URL"
    )]
    pub linkedin_base_url: Option<url::Url>,
    /// LinkedIn: the deployment's app (agencies may set their own in the console).
    #[arg(
        long = "linkedin-client-id",
        env = "AUTOSOCIAL_LINKEDIN_CLIENT_ID",
        value_name = "AUTOSOCIAL_LINKEDIN_CLIENT_ID"
    )]
    pub linkedin_client_id: Option<String>,
    #[arg(
        long = "linkedin-client-secret",
        env = "AUTOSOCIAL_LINKEDIN_CLIENT_SECRET",
        value_name = "AUTOSOCIAL_LINKEDIN_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub linkedin_client_secret: Option<SecretString>,
    /// X: base URL instead of the real hosts (the sandbox serves `/x/`).
    #[arg(
        long = "x-base-url",
        env = "AUTOSOCIAL_X_BASE_URL",
        value_name = "AUTOSOCIAL_X_BASE_URL"
    )]
    pub x_base_url: Option<url::Url>,
    /// X: the deployment's app (agencies may set their own in the console).
    #[arg(
        long = "x-client-id",
        env = "AUTOSOCIAL_X_CLIENT_ID",
        value_name = "AUTOSOCIAL_X_CLIENT_ID"
    )]
    pub x_client_id: Option<String>,
    #[arg(
        long = "x-client-secret",
        env = "AUTOSOCIAL_X_CLIENT_SECRET",
        value_name = "AUTOSOCIAL_X_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub x_client_secret: Option<SecretString>,
}

impl PlatformArgs {
    pub fn config(&self) -> crate::platforms::PlatformsConfig {
        use crate::domain::Platform;
        use crate::platforms::{OAuthApp, PlatformsConfig};
        let http = crate::platforms::http_client();
        let mut config = match (&self.sandbox_url, self.platforms_in_sandbox) {
            (Some(url), true) => PlatformsConfig::all_in_sandbox(url, http),
            (Some(_), false) | (None, _) => PlatformsConfig {
                http,
                sandbox_url: self.sandbox_url.clone(),
                sandbox_app: None,
                bases: Default::default(),
                apps: Default::default(),
            },
        };
        if self.sandbox_url.is_some() {
            config.sandbox_app = Some(OAuthApp {
                client_id: self.sandbox_client_id.clone(),
                client_secret: self.sandbox_client_secret.clone(),
            });
        }
        let per_platform = [
            (
                Platform::Facebook,
                &self.facebook_base_url,
                &self.facebook_client_id,
                &self.facebook_client_secret,
            ),
            (
                Platform::Instagram,
                &self.instagram_base_url,
                &self.instagram_client_id,
                &self.instagram_client_secret,
            ),
            (
                Platform::Tiktok,
                &self.tiktok_base_url,
                &self.tiktok_client_id,
                &self.tiktok_client_secret,
            ),
            (
                Platform::Linkedin,
                &self.linkedin_base_url,
                &self.linkedin_client_id,
                &self.linkedin_client_secret,
            ),
            (
                Platform::X,
                &self.x_base_url,
                &self.x_client_id,
                &self.x_client_secret,
            ),
        ];
        for (platform, base, id, secret) in per_platform {
            if let Some(base) = base {
                config.bases.insert(platform, base.clone());
            }
            if let (Some(id), Some(secret)) = (id, secret) {
                config.apps.insert(
                    platform,
                    OAuthApp {
                        client_id: id.clone(),
                        client_secret: secret.clone(),
                    },
                );
            }
        }
        config
    }

    /// Only the sandbox, at `url` (tests).
    pub fn sandbox(url: Option<url::Url>) -> PlatformArgs {
        PlatformArgs {
            sandbox_url: url,
            sandbox_client_id: "autosocial-sandbox-client".into(),
            sandbox_client_secret: SecretString::from("autosocial-sandbox-secret".to_owned()),
            platforms_in_sandbox: false,
            facebook_base_url: None,
            facebook_client_id: None,
            facebook_client_secret: None,
            instagram_base_url: None,
            instagram_client_id: None,
            instagram_client_secret: None,
            tiktok_base_url: None,
            tiktok_client_id: None,
            tiktok_client_secret: None,
            linkedin_base_url: None,
            linkedin_client_id: None,
            linkedin_client_secret: None,
            x_base_url: None,
            x_client_id: None,
            x_client_secret: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format: `text` for people, `json` for log collectors. Levels come from RUST_LOG.
    #[arg(
        long = "log-format",
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        keys: KeyArgs,
    }

    #[test]
    fn a_malformed_database_url_is_refused_naming_the_variable() {
        let err = Cli::try_parse_from(["x", "--database-url", "mysql://h/db"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(text.contains("expected a postgres:// URL"), "{text}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let cli = Cli::try_parse_from([
            "x",
            "--database-url",
            "postgres://u:hunter2@h/db",
            "--keys",
            "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ])
        .unwrap();
        let dbg = format!("{cli:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("AAAAAAAA"), "{dbg}");
    }
}
