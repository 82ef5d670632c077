//! Postgres: the one migrator and pool construction.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, PgPool};

/// Every migration in `migrations/`, embedded at build time. Binaries and tests use this one.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Connect a pool. `max_connections` should exceed the number of concurrent database users in the
/// process; nothing may hold a connection while waiting on the network.
pub async fn connect(url: &SecretString, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    pool(connect_options(url.expose_secret())?, max_connections).await
}

async fn pool(options: PgConnectOptions, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// Connect the worker's pool: like [`connect`], with every prepared statement planned once,
/// generically. The worker runs a few statements thousands of times a second with array
/// parameters (the claim, the start and the record of a batch of posts, completions,
/// renewals); Postgres otherwise plans most of those calls again for their values, and in a
/// burst the planning cost as much as the execution (the start: 2,116 plans for 3,347 calls,
/// 3.5 s planning against 4.4 s executing). Their plans do not depend on the values: each row is
/// found by its key, or by a partial index named by literal states.
pub async fn connect_worker(
    url: &SecretString,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let options =
        connect_options(url.expose_secret())?.options([("plan_cache_mode", "force_generic_plan")]);
    pool(options, max_connections).await
}

/// The options for `url`. A server on this machine (loopback address, `localhost`) is spoken to
/// without TLS unless the URL (`sslmode=`) or `PGSSLMODE` asks for a mode: loopback traffic
/// never leaves the kernel, so TLS there protects nothing and costs both sides CPU on every
/// query. A Unix socket, as `deploy/install.sh` configures, never uses TLS anyway; a remote
/// server keeps sqlx's default (`prefer`) or what the URL says.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let explicit = std::env::var_os("PGSSLMODE").is_some()
        || url::Url::parse(url)
            .map(|u| {
                u.query_pairs()
                    .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
            })
            .unwrap_or(true);
    let host = options.get_host();
    let local = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let options = if local && !explicit {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    };
    Ok(options
        .application_name("autosocial")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500)))
}

/// Fail early, with a message an operator can act on, when the schema is behind the binary.
pub async fn ensure_migrated(pool: &PgPool) -> anyhow::Result<()> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the migration table ({e}); run `autosocial-admin migrate`"
                )
            })?;
    let missing: Vec<i64> = MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("the database lacks migrations {missing:?}; run `autosocial-admin migrate`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> String {
        format!("{:?}", connect_options(url).unwrap().get_ssl_mode())
    }

    #[test]
    fn loopback_servers_are_spoken_to_without_tls_unless_asked() {
        if std::env::var_os("PGSSLMODE").is_some() {
            return; // the environment decides for every URL
        }
        assert_eq!(mode("postgres://u@127.0.0.1:5432/db"), "Disable");
        assert_eq!(mode("postgres://u@localhost/db"), "Disable");
        assert_eq!(mode("postgres://u@[::1]:5432/db"), "Disable");
        assert_eq!(mode("postgres://u@127.0.0.1/db?sslmode=require"), "Require");
        assert_eq!(mode("postgres://u@db.example.net/db"), "Prefer");
        assert_eq!(mode("postgres:///db?host=/var/run/postgresql"), "Prefer");
    }
}
