//! `autosocial-bench burst`: many publications due at one instant, drained by worker processes
//! against the sandbox with a platform latency; exactly-once and limits checked from the
//! sandbox's own records.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

use autosocial_core::domain::Platform;
use autosocial_core::platforms::{self, PlatformsConfig};
use autosocial_sandbox::Knobs;

use crate::harness::{Proc, fresh_database, percentile, rss_mb};
use crate::{cpu, seeding};

pub struct Args {
    pub database_url: String,
    pub redis_url: String,
    pub clients: usize,
    pub publications: usize,
    pub latency_ms: u64,
    pub workers: usize,
    pub concurrency: usize,
    pub worker_bin: Option<String>,
    /// The workers' job lease.
    pub lease_secs: u64,
    /// Faults while the burst drains: one worker at a time, round robin.
    pub faults: Faults,
    /// A busy loop per core beside everything.
    pub cpu_hog: bool,
}

/// Faults applied to the workers while the burst drains.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Freeze a worker (SIGSTOP) this often, for `freeze_for`, then thaw it (SIGCONT).
    pub freeze_every: Option<Duration>,
    pub freeze_for: Duration,
    /// Kill a worker (SIGKILL) this often and start a new one.
    pub kill_every: Option<Duration>,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.clients > 0 && a.publications >= a.clients,
        "--publications must be at least --clients"
    );
    let db = "autosocial_bench_burst";
    let (admin, url) = fresh_database(&a.database_url, db).await?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await?;

    let sandbox = autosocial_sandbox::spawn(Knobs {
        auto_approve: true,
        ..Knobs::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let config = PlatformsConfig::all_in_sandbox(&sandbox, platforms::http_client());
    let key = autosocial_core::vault::Vault::generate_entry("bench");
    let vault = autosocial_core::vault::Vault::from_spec(&key)?;

    println!(
        "seeding {} clients with one sandbox account each (through the sandbox's OAuth)",
        a.clients
    );
    let fleet = seeding::connect_fleet(
        &pool,
        &vault,
        &config,
        "Burst",
        a.clients,
        Platform::Sandbox,
    )
    .await?;
    let per_account = a.publications / a.clients;
    let n = per_account * a.clients;
    // seeded far ahead; the instant is set once the workers are up (seeding time varies)
    let parked: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now() + interval '1 hour'")
            .fetch_one(&pool)
            .await?;
    println!("seeding {n} publications");
    let ids = seeding::due_publications(&pool, &fleet, per_account, parked).await?;
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    http.post(sandbox.join("/_sandbox/knobs")?)
        .json(&Knobs {
            auto_approve: true,
            latency_ms: a.latency_ms,
            ..Knobs::default()
        })
        .send()
        .await?
        .error_for_status()?;

    let bin = a.worker_bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().expect("own path");
        me.with_file_name("autosocial-worker").display().to_string()
    });
    let spawn_worker = |w: usize| -> anyhow::Result<(Proc, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&bin)
            .args([
                "run",
                "--kinds",
                "publish",
                "--concurrency",
                &a.concurrency.to_string(),
                "--lease-secs",
                &a.lease_secs.to_string(),
                "--metrics-listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("DATABASE_URL", &url)
            .env("AUTOSOCIAL_DB_MAX_CONNECTIONS", "30")
            .env("REDIS_URL", &a.redis_url)
            .env("AUTOSOCIAL_KEYS", &key)
            .env("AUTOSOCIAL_SANDBOX_URL", sandbox.as_str())
            .env("AUTOSOCIAL_PLATFORMS_IN_SANDBOX", "true")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting worker {w} ({bin})"))?;
        Ok((Proc(child), format!("http://127.0.0.1:{port}/healthz")))
    };
    let mut procs = Vec::new();
    let mut health = Vec::new();
    for w in 0..a.workers {
        let (p, h) = spawn_worker(w)?;
        procs.push(p);
        health.push(h);
    }
    let up_by = Instant::now() + Duration::from_secs(60);
    for h in &health {
        while !http
            .get(h)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < up_by, "worker at {h} did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The instant: all publications due at once, a few seconds from now, idle workers waiting.
    let due: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now() + interval '5 seconds'")
            .fetch_one(&pool)
            .await?;
    sqlx::query("UPDATE publications SET scheduled_at = $1")
        .bind(due)
        .execute(&pool)
        .await?;
    sqlx::query("UPDATE jobs SET run_at = $1 WHERE kind = 'publish' AND state = 'available'")
        .bind(due)
        .execute(&pool)
        .await?;
    sqlx::query("VACUUM ANALYZE jobs, publications")
        .execute(&pool)
        .await?;
    let wait = (due - chrono::Utc::now()).to_std().map_err(|_| {
        anyhow::anyhow!("preparing the instant took longer than its 5 s lead; nothing measured")
    })?;
    println!(
        "{} workers up; the burst is due in {:.1} s",
        a.workers,
        wait.as_secs_f64()
    );
    let hog = if a.cpu_hog {
        let hog = seeding::CpuHog::start()?;
        println!("CPU hog: {} busy processes", hog.processes());
        Some(hog)
    } else {
        None
    };
    let transactions = async |pool: &sqlx::PgPool| -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(pool)
        .await?)
    };
    let pids = |procs: &[Proc]| procs.iter().map(|p| p.0.id()).collect::<Vec<_>>();
    tokio::time::sleep(wait).await;
    let (workers_cpu_at_start, postgres_cpu_at_start) = (cpu::of(&pids(&procs)), cpu::postgres());
    let transactions_at_start = transactions(&pool).await?;
    // CPU of workers killed meanwhile, read just before the kill
    let mut workers_cpu_killed = 0.0;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let (mut freezes, mut kills, mut victim) = (0usize, 0usize, 0usize);
    let mut next_freeze = a.faults.freeze_every.map(|e| started + e);
    let mut next_kill = a.faults.kill_every.map(|e| started + e);
    let mut peaks = vec![0.0f64; procs.len()];
    loop {
        let open: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('available', 'running') AND kind = 'publish')",
        )
        .fetch_one(&pool)
        .await?;
        if !open {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the burst did not drain within 300 s"
        );
        for (peak, p) in peaks.iter_mut().zip(&procs) {
            *peak = peak.max(rss_mb(p.0.id()).1);
        }
        if let Some(at) = next_freeze.filter(|at| Instant::now() >= *at) {
            // a VM pause, a host under memory pressure: the process stands still past its lease
            let pid = procs[victim].0.id();
            seeding::signal(pid, "STOP")?;
            tokio::time::sleep(a.faults.freeze_for).await;
            seeding::signal(pid, "CONT")?;
            freezes += 1;
            victim = (victim + 1) % procs.len();
            next_freeze = a.faults.freeze_every.map(|e| at.max(Instant::now()) + e);
            continue;
        }
        if let Some(at) = next_kill.filter(|at| Instant::now() >= *at) {
            workers_cpu_killed += cpu::of(&[procs[victim].0.id()]);
            seeding::signal(procs[victim].0.id(), "KILL")?;
            (procs[victim], health[victim]) = spawn_worker(victim)?;
            kills += 1;
            victim = (victim + 1) % procs.len();
            next_kill = a.faults.kill_every.map(|e| at + e);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(hog);
    // cost per post: CPU of the workers and of Postgres, and transactions (each backend reports
    // its counts within a second of going idle)
    let workers_cpu = cpu::of(&pids(&procs)) + workers_cpu_killed - workers_cpu_at_start;
    let postgres_cpu = cpu::postgres() - postgres_cpu_at_start;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let transactions_run = transactions(&pool).await? - transactions_at_start;
    // what the workers saw (those alive at the end)
    let (mut late_slots, mut lease_lost) = (0.0, 0.0);
    for h in &health {
        let text = http
            .get(h.replace("/healthz", "/metrics"))
            .send()
            .await?
            .text()
            .await?;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = || {
                line.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            if line.starts_with("autosocial_rate_slots_spent_late") {
                late_slots += value();
            } else if line.starts_with("autosocial_jobs_lease_lost") {
                lease_lost += value();
            }
        }
    }
    drop(procs);

    let posts = seeding::sandbox_posts(&http, &sandbox).await?;
    let report = seeding::audit(&pool, &posts, &ids).await?;
    let due_us = due.timestamp_micros() as i128;
    let mut lags: Vec<f64> = posts
        .iter()
        .map(|p| ((p.created_us as i128 - due_us) as f64 / 1000.0).max(0.0))
        .collect();
    lags.sort_by(f64::total_cmp);
    let last: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT max(published_at) FROM publications")
            .fetch_one(&pool)
            .await?;
    let drain = last.map_or(f64::NAN, |l| {
        (l - due).num_microseconds().unwrap_or(0) as f64 / 1e6
    });
    // limits from the platform's side: the smoothing bucket and the platform's daily quota
    let smoothing = seeding::smoothing_violations(
        &posts,
        autosocial_core::publishing::smoothing(Platform::Sandbox),
    );
    // what a person needs to see why: each violating account's arrivals, after the due instant,
    // with what the database kept of each post's runs
    for (account, over) in seeding::smoothing_violators(
        &posts,
        autosocial_core::publishing::smoothing(Platform::Sandbox),
    ) {
        eprintln!("account {account}: {over} post(s) over its smoothing; arrivals:");
        let mut mine: Vec<&seeding::SandboxPost> =
            posts.iter().filter(|p| p.account == account).collect();
        mine.sort_by_key(|p| p.arrived_us);
        for p in mine {
            let runs: Vec<(String, String, Option<i32>)> = sqlx::query_as(
                "SELECT g.action, g.outcome, g.latency_ms FROM post_logs g JOIN publications pub ON pub.id = g.publication_id
                 WHERE pub.marker = $1 ORDER BY g.created_at",
            )
            .bind(p.marker.as_deref().unwrap_or(""))
            .fetch_all(&pool)
            .await?;
            eprintln!(
                "  {:>8.1} ms (created {:>8.1} ms) {} runs {:?}",
                (p.arrived_us as i128 - due_us) as f64 / 1000.0,
                (p.created_us as i128 - due_us) as f64 / 1000.0,
                p.marker.as_deref().unwrap_or("-"),
                runs
            );
        }
    }
    let daily: i64 = sqlx::query_scalar("SELECT max_posts::bigint FROM platform_limits WHERE platform = 'sandbox' AND window_seconds = 86400")
        .fetch_one(&pool)
        .await?;
    let mut per_account = std::collections::HashMap::<&str, i64>::new();
    for p in &posts {
        *per_account.entry(p.account.as_str()).or_default() += 1;
    }
    let quota: i64 = per_account.values().map(|c| (c - daily).max(0)).sum();
    let violations = smoothing as i64 + quota;
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&admin)
        .await?;

    let per_s = n as f64 / drain;
    let (p50, p99, max) = (
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0.0),
    );
    let peak = peaks.iter().copied().fold(0.0, f64::max);
    println!(
        "drained {n} publications in {drain:.2} s with {} workers: {per_s:.0} publishes/s (platform latency {} ms)",
        a.workers, a.latency_ms
    );
    println!("lag due → platform ms: p50 {p50:.0}, p99 {p99:.0}, max {max:.0}");
    println!(
        "duplicates {}, lost {}, unrecorded {}, limit violations {violations}",
        report.duplicates, report.lost, report.unrecorded
    );
    println!("worker peak RSS MiB: {peaks:?}");
    if freezes + kills > 0 {
        println!("faults while draining: {freezes} freezes, {kills} kills");
    }
    let per_post = |x: f64| x / n as f64;
    println!(
        "cost per post: workers {:.2} ms CPU, Postgres {:.2} ms CPU (the whole server), {:.1} transactions",
        per_post(workers_cpu) * 1e3,
        per_post(postgres_cpu) * 1e3,
        per_post(transactions_run as f64)
    );
    println!(
        "held slots spent because their post came late: {late_slots}; runs stopped by a lost lease: {lease_lost}"
    );
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    println!(
        "{}",
        json!({
            "bench": "burst", "publications": n, "drain_s": r1(drain), "publishes_per_s": per_s.round(),
            "lag_p50_ms": p50.round(), "lag_p99_ms": p99.round(), "lag_max_ms": max.round(),
            "duplicates": report.duplicates, "lost": report.lost, "limit_violations": violations,
            "peak_rss_mb": r1(peak), "freezes": freezes, "kills": kills, "cpu_hog": a.cpu_hog,
            "late_slots": late_slots, "lease_lost": lease_lost,
            "worker_cpu_ms_per_post": (per_post(workers_cpu) * 1e5).round() / 100.0,
            "postgres_cpu_ms_per_post": (per_post(postgres_cpu) * 1e5).round() / 100.0,
            "transactions_per_post": r1(per_post(transactions_run as f64)),
        })
    );
    Ok(())
}
