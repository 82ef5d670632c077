//! Helpers for tests in every crate (enabled with the `testing` feature): processes and
//! databases to run against, polling, and [`build`]ers for the rows tests start from.

pub mod build;

pub use build::{account, agency, client, item, publication};

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::vault::Vault;

/// A vault with a fresh random key, for tests.
pub fn vault() -> Arc<Vault> {
    Arc::new(Vault::from_spec(&Vault::generate_entry("test")).expect("generated keys parse"))
}

/// The Redis URL the test run was given (deploy/dev test sets REDIS_URL).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// The URL of the test's own database (the one `#[sqlx::test]` made), for child processes.
pub async fn database_url(pool: &PgPool) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .expect("current_database");
    let mut url = url::Url::parse(
        &std::env::var("DATABASE_URL").expect("DATABASE_URL is set by deploy/dev test"),
    )
    .expect("valid DATABASE_URL");
    url.set_path(&db);
    url.to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A private redis-server on its own port, for tests that stop Redis or need the fleet's keys
/// to themselves. Killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Start (again) on the same port and wait until it answers.
    pub fn restart(&mut self) {
        let bin =
            std::env::var("AUTOSOCIAL_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (deploy/dev installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The single `bigint` a query returns (`SELECT count(*) ...`).
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count query")
}

/// Poll `sql` until it returns `want`, failing the test with the last value after `within`.
pub async fn wait_until(pool: &PgPool, sql: &str, want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = count(pool, sql).await;
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for `{sql}` = {want} (now {n})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh agency with one client, for tests that need real rows to point at.
pub async fn tenant(pool: &PgPool) -> (uuid::Uuid, uuid::Uuid) {
    let agency = agency().insert(pool).await;
    let client = client(agency).insert(pool).await;
    (agency, client)
}
