//! Postgres: the one migrator and pool construction.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// Every migration in `migrations/`, embedded at build time. Binaries and tests use this one.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Connect a pool. `max_connections` should exceed the number of concurrent database users in the
/// process; nothing may hold a connection while waiting on the network.
pub async fn connect(url: &SecretString, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.expose_secret().parse()?;
    let options = options
        .application_name("autosocial")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
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
