//! `autosocial-bench`: the benchmarks `deploy/dev bench NAME` runs. Each prints its figures and,
//! as its last line, one JSON object.
//!
//! `queue`: N no-op jobs drained by worker processes (jobs/s); jobs scheduled at known future
//! instants (start lag p50/p99/max, measured by the database); each worker's idle and peak RSS.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use autosocial_core::queue::{self, NewJob, RunAt};

#[path = "../burst.rs"]
mod burst;

#[path = "../bench_cards.rs"]
mod bench_cards;

#[path = "../console_bench.rs"]
mod console_bench;

#[path = "../fence_bench.rs"]
mod fence_bench;

#[derive(Debug, Parser)]
#[command(name = "autosocial-bench", about = "AutoSocial benchmarks")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Publications due at one instant against the sandbox: drain time, lag, exactly-once,
    /// limits, worker memory.
    Burst {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 10_000)]
        publications: usize,
        /// The sandbox's latency per platform request.
        #[arg(long, default_value_t = 150)]
        latency_ms: u64,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Publish jobs in flight per worker process.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        #[arg(long)]
        worker_bin: Option<String>,
        /// The workers' job lease.
        #[arg(long, default_value_t = 30)]
        lease_secs: u64,
        /// Freeze one worker at a time (SIGSTOP) this often while the burst drains...
        #[arg(long)]
        freeze_every_secs: Option<f64>,
        /// ...for this long, then thaw it (SIGCONT).
        #[arg(long, default_value_t = 5.0)]
        freeze_secs: f64,
        /// Kill one worker at a time (SIGKILL) this often and start a new one.
        #[arg(long)]
        kill_every_secs: Option<f64>,
        /// Run a busy loop per core beside the benchmark.
        #[arg(long)]
        cpu_hog: bool,
    },
    /// The window a job's fence leaves open: from a passed fence check to the request's first
    /// byte at a local server, through the connector a worker uses.
    Fence {
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Requests in flight at once (a busy worker has many).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Run a busy loop per core beside the benchmark.
        #[arg(long)]
        cpu_hog: bool,
    },
    /// Image cards end to end (render + encode) per format and platform size, and the render
    /// and encode alone (1080×1080, logo, three-line headline).
    Cards {
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Also compare PNG levels and filters and the JPEG encoders (time and size).
        #[arg(long)]
        encoders: bool,
        /// The shipped fonts.
        #[arg(long, default_value = "templates/fonts")]
        fonts: std::path::PathBuf,
        /// Also write the benchmark card in every size (PNG, 540 px wide) into this directory.
        #[arg(long)]
        samples: Option<std::path::PathBuf>,
    },
    /// The console's pages under load on a large agency (10,000 clients, 1,000,000 items):
    /// requests/s and p99 of the dashboard, client list, review queue and calendar.
    Console {
        /// Postgres server URL; the benchmark keeps its own database on it.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value_t = 10_000)]
        clients: i64,
        #[arg(long, default_value_t = 1_000_000)]
        items: i64,
        /// Concurrent connections per page.
        #[arg(long, default_value_t = 50)]
        connections: u32,
        /// Seconds per page.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Seed a new database even when the kept one has the same counts.
        #[arg(long)]
        reseed: bool,
        /// The console binary (default: next to this one).
        #[arg(long)]
        admin_bin: Option<String>,
    },
    /// Queue throughput, start lag and worker memory.
    Queue {
        /// Postgres server URL; the benchmark creates (and drops) its own database on it.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Jobs in flight per worker process.
        #[arg(long, default_value_t = 1000)]
        concurrency: usize,
        /// Jobs scheduled at future instants for the lag measurement.
        #[arg(long, default_value_t = 2000)]
        timed_jobs: usize,
        /// The worker binary (default: next to this one).
        #[arg(long)]
        worker_bin: Option<String>,
    },
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (VmRSS, VmHWM) in MiB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Drop and create database `name` on the server of `server_url`, migrated; returns a pool on
/// the server (to drop it again) and the new database's URL.
async fn fresh_database(server_url: &str, name: &str) -> anyhow::Result<(PgPool, String)> {
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(server_url)
        .await
        .context("connecting to DATABASE_URL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let url = with_db(server_url, name)?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    autosocial_core::db::MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok((admin, url))
}

fn with_db(url: &str, db: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(url).context("DATABASE_URL")?;
    u.set_path(db);
    Ok(u.to_string())
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

#[allow(clippy::too_many_arguments)]
async fn bench_queue(
    database_url: &str,
    redis_url: &str,
    jobs: usize,
    workers: usize,
    concurrency: usize,
    timed_jobs: usize,
    worker_bin: Option<String>,
) -> anyhow::Result<()> {
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Cards {
            iterations,
            encoders,
            fonts,
            samples,
        } => bench_cards::run(bench_cards::Args {
            iterations,
            fonts,
            samples,
            encoders,
        }),
        Bench::Fence {
            requests,
            concurrency,
            cpu_hog,
        } => {
            fence_bench::run(fence_bench::Args {
                requests,
                concurrency,
                cpu_hog,
            })
            .await
        }
        Bench::Burst {
            database_url,
            redis_url,
            clients,
            publications,
            latency_ms,
            workers,
            concurrency,
            worker_bin,
            lease_secs,
            freeze_every_secs,
            freeze_secs,
            kill_every_secs,
            cpu_hog,
        } => {
            let secs = |s: f64| Duration::try_from_secs_f64(s).context("a duration in seconds");
            burst::run(burst::Args {
                database_url,
                redis_url,
                clients,
                publications,
                latency_ms,
                workers,
                concurrency,
                worker_bin,
                lease_secs,
                faults: burst::Faults {
                    freeze_every: freeze_every_secs.map(secs).transpose()?,
                    freeze_for: secs(freeze_secs)?,
                    kill_every: kill_every_secs.map(secs).transpose()?,
                },
                cpu_hog,
            })
            .await
        }
        Bench::Console {
            database_url,
            redis_url,
            clients,
            items,
            connections,
            seconds,
            reseed,
            admin_bin,
        } => {
            console_bench::run(console_bench::Args {
                database_url,
                redis_url,
                clients,
                items,
                connections,
                seconds,
                reseed,
                admin_bin,
            })
            .await
        }
        Bench::Queue {
            database_url,
            redis_url,
            jobs,
            workers,
            concurrency,
            timed_jobs,
            worker_bin,
        } => {
            bench_queue(
                &database_url,
                &redis_url,
                jobs,
                workers,
                concurrency,
                timed_jobs,
                worker_bin,
            )
            .await
        }
    }
}
