//! The worker binary as a process: SIGKILL mid-job, graceful SIGTERM, a wrong wall clock,
//! configuration errors.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use autosocial_core::jobs::DiagSleep;
use autosocial_core::queue::{self, NewJob, RunAt};
use autosocial_core::testing::{count, database_url, wait_until};
use fred::prelude::*;
use sqlx::PgPool;

const WORKER: &str = env!("CARGO_BIN_EXE_autosocial-worker");
const KEY: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `diag_sleep` job: sleep `ms`, then append its id to the Redis list `record`.
fn diag_sleep(ms: u64, record: Option<&str>) -> NewJob {
    let job = DiagSleep {
        ms,
        record: record.map(str::to_owned),
    };
    NewJob::typed(&job, ())
}

/// A worker process, killed if the test ends without stopping it.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Worker {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn_worker(db: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Worker {
    let port = free_port().to_string();
    let mut cmd = Command::new(WORKER);
    cmd.args([
        "run",
        "--kinds",
        "diag_sleep",
        "--lease-secs",
        "3",
        "--metrics-listen",
    ])
    .arg(format!("127.0.0.1:{port}"))
    .args(args)
    .env("DATABASE_URL", db)
    .env("REDIS_URL", autosocial_core::testing::redis_url())
    .env("AUTOSOCIAL_KEYS", KEY)
    .env("RUST_LOG", "warn")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    Worker(cmd.spawn().unwrap())
}

async fn redis() -> Client {
    autosocial_core::redis::connect(&autosocial_core::testing::redis_url().into())
        .await
        .unwrap()
}

fn signal(child: &Worker, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_worker_killed_mid_job_has_its_jobs_rescued_and_each_completes_once(pool: PgPool) {
    let db = database_url(&pool).await;
    let record = format!("test:record:{}", uuid::Uuid::new_v4());
    let mut conn = pool.acquire().await.unwrap();
    let jobs: Vec<NewJob> = (0..20).map(|_| diag_sleep(1500, Some(&record))).collect();
    queue::enqueue_many(&mut conn, &jobs).await.unwrap();
    drop(conn);
    let mut a = spawn_worker(&db, &[], &["--concurrency", "10"]);
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        10,
        Duration::from_secs(15),
    )
    .await;
    a.kill().unwrap(); // SIGKILL: no chance to clean up
    a.wait().unwrap();
    let mut b = spawn_worker(&db, &[], &["--concurrency", "10"]);
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'completed'",
        20,
        Duration::from_secs(60),
    )
    .await;
    signal(&b, "-TERM");
    b.wait().unwrap();
    let ids: Vec<i64> = redis().await.lrange(&record, 0, -1).await.unwrap();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids.len(), 20, "every job completed exactly once: {ids:?}");
    assert_eq!(sorted.len(), 20);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM jobs WHERE attempts = 2").await,
        10,
        "the killed attempts were counted"
    );
    let _: i64 = redis().await.del(&record).await.unwrap();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn sigterm_finishes_jobs_in_flight_then_exits_0(pool: PgPool) {
    let db = database_url(&pool).await;
    let record = format!("test:record:{}", uuid::Uuid::new_v4());
    let mut conn = pool.acquire().await.unwrap();
    let jobs: Vec<NewJob> = (0..4).map(|_| diag_sleep(1000, Some(&record))).collect();
    queue::enqueue_many(&mut conn, &jobs).await.unwrap();
    drop(conn);
    let mut w = spawn_worker(&db, &[], &["--concurrency", "2"]);
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        2,
        Duration::from_secs(15),
    )
    .await;
    signal(&w, "-TERM");
    let status = w.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        count(&pool, "SELECT count(*) FROM jobs WHERE state = 'completed'").await,
        2,
        "in-flight jobs finished"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE state = 'available' AND attempts = 0"
        )
        .await,
        2,
        "the rest untouched"
    );
    let ids: Vec<i64> = redis().await.lrange(&record, 0, -1).await.unwrap();
    assert_eq!(ids.len(), 2);
    let _: i64 = redis().await.del(&record).await.unwrap();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_worker_whose_clock_is_an_hour_off_behaves_the_same(pool: PgPool) {
    let db = database_url(&pool).await;
    for offset in ["3600", "-3600"] {
        sqlx::query("DELETE FROM jobs")
            .execute(&pool)
            .await
            .unwrap();
        let mut w = spawn_worker(&db, &[("AUTOSOCIAL_TEST_CLOCK_OFFSET_SECS", offset)], &[]);
        tokio::time::sleep(Duration::from_millis(700)).await; // idle
        let mut conn = pool.acquire().await.unwrap();
        queue::enqueue(
            &mut conn,
            &diag_sleep(0, None).run_at(RunAt::In(Duration::from_millis(300))),
        )
        .await
        .unwrap();
        let far = queue::enqueue(
            &mut conn,
            &diag_sleep(0, None).run_at(RunAt::In(Duration::from_secs(1800))),
        )
        .await
        .unwrap()
        .id();
        drop(conn);
        wait_until(
            &pool,
            "SELECT count(*) FROM jobs WHERE state = 'completed'",
            1,
            Duration::from_secs(5),
        )
        .await;
        let lag_ms: f64 = sqlx::query_scalar("SELECT extract(epoch FROM started_at - run_at)::float8 * 1000 FROM jobs WHERE state = 'completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(
            (0.0..50.0).contains(&lag_ms),
            "offset {offset}: started {lag_ms} ms late"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let far_state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(far)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            far_state, "available",
            "offset {offset}: a job due in 30 minutes did not run early"
        );
        signal(&w, "-TERM");
        assert!(w.wait().unwrap().success());
    }
}

#[test]
fn bad_settings_exit_2_naming_the_variable() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(WORKER);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .arg("run")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let base = [
        ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
        ("REDIS_URL", "redis://127.0.0.1:1/"),
        ("AUTOSOCIAL_KEYS", KEY),
    ];
    for (var, value) in [
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "memcached://x"),
        ("AUTOSOCIAL_KEYS", "nope"),
        ("AUTOSOCIAL_WORKER_CONCURRENCY", "0"),
        ("AUTOSOCIAL_WORKER_KINDS", "publish_to_myspace"),
        ("AUTOSOCIAL_WORKER_METRICS_LISTEN", "somewhere"),
        ("AUTOSOCIAL_WORKER_LEASE_SECS", "1"),
    ] {
        let mut env: Vec<(&str, &str)> = base.iter().copied().filter(|(k, _)| *k != var).collect();
        env.push((var, value));
        let out = run(&env, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var} named: {stderr}");
    }
}
