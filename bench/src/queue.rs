//! `autosocial-bench queue`: N no-op jobs drained by worker processes (jobs/s); jobs scheduled
//! at known future instants (start lag p50/p99/max, measured by the database); each worker's
//! idle and peak RSS.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use autosocial_core::queue::{self, NewJob, RunAt};

use crate::harness::{Proc, fresh_database, percentile, rss_mb};

pub struct Args {
    pub database_url: String,
    pub redis_url: String,
    pub jobs: usize,
    pub workers: usize,
    /// Jobs in flight per worker process.
    pub concurrency: usize,
    /// Jobs scheduled at future instants for the lag measurement.
    pub timed_jobs: usize,
    /// The worker binary (default: next to this one).
    pub worker_bin: Option<String>,
}

/// Wait until no job is left to run. Polls sparingly and through the partial indexes only:
/// a benchmark that scans the table in a loop measures itself (and its long snapshots keep
/// Postgres from cleaning the index the workers claim from).
async fn wait_drained(pool: &PgPool, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let busy: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'available') OR EXISTS (SELECT 1 FROM jobs WHERE state = 'running')",
        )
        .fetch_one(pool)
        .await?;
        if !busy {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out waiting for the queue to drain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let Args {
        database_url,
        redis_url,
        jobs,
        workers,
        concurrency,
        timed_jobs,
        worker_bin,
    } = a;
    let (database_url, redis_url) = (database_url.as_str(), redis_url.as_str());
    let db = "autosocial_bench_queue";
    let (admin, url) = fresh_database(database_url, db).await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;

    let bin = worker_bin.unwrap_or_else(|| {
        let me = std::env::current_exe().expect("own path");
        me.with_file_name("autosocial-worker").display().to_string()
    });
    let key = autosocial_core::vault::Vault::generate_entry("bench");
    let spawn_workers = || -> anyhow::Result<Vec<Proc>> {
        let mut procs = Vec::new();
        for w in 0..workers {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let child = Command::new(&bin)
                .args([
                    "run",
                    "--kinds",
                    "noop",
                    "--concurrency",
                    &concurrency.to_string(),
                    "--metrics-listen",
                    &format!("127.0.0.1:{port}"),
                ])
                .env("DATABASE_URL", &url)
                .env("REDIS_URL", redis_url)
                .env("AUTOSOCIAL_KEYS", &key)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .spawn()
                .with_context(|| format!("starting worker {w} ({bin})"))?;
            procs.push(Proc(child));
        }
        Ok(procs)
    };
    let procs = spawn_workers()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: Vec<f64> = procs.iter().map(|p| rss_mb(p.0.id()).0).collect();

    // Start lag: jobs at known instants 200 ms .. 5.2 s ahead, workers idle in between.
    println!("start lag: {timed_jobs} jobs at known future instants over 5 s");
    let timed: Vec<NewJob> = (0..timed_jobs)
        .map(|i| {
            NewJob::new("noop", json!({})).run_at(RunAt::In(
                Duration::from_millis(200)
                    + Duration::from_micros(5_000_000 / timed_jobs as u64 * i as u64),
            ))
        })
        .collect();
    let mut conn = pool.acquire().await?;
    queue::enqueue_many(&mut conn, &timed).await?;
    drop(conn);
    wait_drained(&pool, Duration::from_secs(60)).await?;
    let mut lags: Vec<f64> = sqlx::query_scalar("SELECT (extract(epoch FROM started_at - run_at) * 1000)::float8 FROM jobs WHERE state = 'completed'")
        .fetch_all(&pool)
        .await?;
    lags.sort_by(f64::total_cmp);
    sqlx::query("DELETE FROM jobs").execute(&pool).await?;

    // Throughput: N due jobs, drained by the workers.
    println!("throughput: enqueueing {jobs} no-op jobs");
    let mut conn = pool.acquire().await?;
    // all due at once, enqueued while no worker runs; then fresh workers drain them
    drop(procs);
    let batch: Vec<NewJob> = (0..jobs).map(|_| NewJob::new("noop", json!({}))).collect();
    for chunk in batch.chunks(10_000) {
        queue::enqueue_many(&mut conn, chunk).await?;
    }
    sqlx::query("VACUUM ANALYZE jobs")
        .execute(&mut *conn)
        .await?;
    drop(conn);
    let procs = spawn_workers()?;
    wait_drained(&pool, Duration::from_secs(600)).await?;
    // from the first claim to the last completion, by the database's clock
    let (done, due, last): (
        i64,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    ) = sqlx::query_as(
        "SELECT count(*), min(started_at), max(finished_at) FROM jobs WHERE state = 'completed'",
    )
    .fetch_one(&pool)
    .await?;
    anyhow::ensure!(done == jobs as i64, "{done} of {jobs} jobs completed");
    let drain = (last - due).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let peaks: Vec<f64> = procs.iter().map(|p| rss_mb(p.0.id()).1).collect();
    drop(procs);
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&admin)
        .await?;

    let jobs_per_s = jobs as f64 / drain;
    let (p50, p99, max) = (
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0.0),
    );
    let idle_max = idle.iter().copied().fold(0.0, f64::max);
    let peak_max = peaks.iter().copied().fold(0.0, f64::max);
    println!("drained {jobs} jobs in {drain:.2} s with {workers} workers: {jobs_per_s:.0} jobs/s");
    println!("start lag ms: p50 {p50:.1}, p99 {p99:.1}, max {max:.1}");
    println!("worker RSS MiB: idle {idle:?}, peak {peaks:?}");
    println!(
        "{}",
        json!({
            "bench": "queue", "jobs": jobs, "jobs_per_s": jobs_per_s.round(),
            "lag_p50_ms": (p50 * 10.0).round() / 10.0, "lag_p99_ms": (p99 * 10.0).round() / 10.0, "lag_max_ms": (max * 10.0).round() / 10.0,
            "idle_rss_mb": (idle_max * 10.0).round() / 10.0, "peak_rss_mb": (peak_max * 10.0).round() / 10.0,
        })
    );
    Ok(())
}
