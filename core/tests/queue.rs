//! The job queue and runner against real Postgres (and Redis where the fleet is involved).
//! Several runners in one test process stand for several workers: they share nothing but the
//! database and Redis, exactly like processes do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autosocial_core::audit::Actor;
use autosocial_core::domain::Platform;
use autosocial_core::killswitch::{self, Gate, Target};
use autosocial_core::limits::{GRANT_VALIDITY, Grant, Rate, Smoother};
use autosocial_core::queue::runner::{
    Backoff, JobContext, KindSpec, Metrics, Outcome, Runner, RunnerConfig, handler,
};
use autosocial_core::queue::{self, Enqueued, NewJob, RunAt, Scope};
use autosocial_core::testing::{PrivateRedis, build, count, tenant, wait_until};
use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Worker {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    background: CancellationToken,
}

impl Worker {
    async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("runner stops in time")
            .unwrap()
            .unwrap();
        self.background.cancel();
    }
}

fn config(id: &str, concurrency: usize) -> RunnerConfig {
    let mut c = RunnerConfig::new(id);
    c.concurrency = concurrency;
    c.lease = Duration::from_secs(5);
    // a long poll interval: wake-ups must come from NOTIFY and due times, not polling
    c.poll_interval = Duration::from_secs(60);
    c.shutdown_deadline = Duration::from_secs(10);
    c
}

/// Start a runner; with `redis`, it also beats presence and follows kill-switch broadcasts.
async fn start(
    shared: &PgPool,
    id: &str,
    concurrency: usize,
    kinds: Vec<KindSpec>,
    redis: Option<&str>,
) -> Worker {
    // each worker has its own pool, as each process does
    let pool = &sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(shared.connect_options().as_ref().clone())
        .await
        .unwrap();
    let gate = Gate::new(pool.clone(), Duration::from_millis(1500));
    gate.refresh().await.unwrap();
    let background = CancellationToken::new();
    tokio::spawn(gate.clone().keep_fresh(background.clone()));
    if let Some(url) = redis {
        let url = secrecy::SecretString::from(url.to_owned());
        let client = autosocial_core::redis::connect(&url).await.unwrap();
        let sub = autosocial_core::redis::subscriber(&url).await.unwrap();
        tokio::spawn(gate.clone().follow_fleet(
            sub,
            client.clone(),
            id.to_owned(),
            background.clone(),
        ));
        let (id, stop) = (id.to_owned(), background.clone());
        tokio::spawn(async move {
            loop {
                let _ = autosocial_core::fleet::beat(&client, &id, &[]).await;
                tokio::select! { _ = tokio::time::sleep(Duration::from_millis(500)) => {}, _ = stop.cancelled() => break }
            }
            let _ = autosocial_core::fleet::leave(&client, &id).await;
        });
        // let the subscription settle before the test engages anything
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let runner = Runner::new(
        config(id, concurrency),
        pool.clone(),
        kinds,
        gate,
        Arc::new(Metrics::new()),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    Worker {
        stop,
        task,
        background,
    }
}

async fn enqueue_n(pool: &PgPool, kind: &str, n: usize, scope: Scope) {
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new(kind, json!({ "i": i })).scope(scope))
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    for chunk in jobs.chunks(5000) {
        queue::enqueue_many(&mut conn, chunk).await.unwrap();
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn eight_concurrent_claimers_run_ten_thousand_jobs_exactly_once(pool: PgPool) {
    enqueue_n(&pool, "count", 10_000, Scope::default()).await;
    let runs: Arc<Mutex<HashMap<i64, u32>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..8 {
        let runs = runs.clone();
        let spec = KindSpec::new(
            "count",
            50,
            handler(move |ctx: JobContext| {
                let runs = runs.clone();
                async move {
                    *runs.lock().unwrap().entry(ctx.job.id).or_default() += 1;
                    Ok(Outcome::Done)
                }
            }),
        );
        workers.push(start(&pool, &format!("w{w}"), 50, vec![spec], None).await);
    }
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'completed'",
        10_000,
        Duration::from_secs(120),
    )
    .await;
    for w in workers {
        w.shutdown().await;
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 10_000, "every job ran");
    assert!(runs.values().all(|&n| n == 1), "no job ran twice");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM jobs WHERE attempts <> 1").await,
        0
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn unique_keys_hold_under_concurrent_enqueue(pool: PgPool) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            queue::enqueue(
                &mut conn,
                &NewJob::new("refresh_token", json!({})).unique("refresh:acct-1"),
            )
            .await
            .unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        if matches!(r, Enqueued::Created(_)) {
            created += 1;
        }
        ids.insert(r.id());
    }
    assert_eq!(created, 1, "exactly one enqueue created the job");
    assert_eq!(ids.len(), 1, "every caller learned the same job id");
    assert_eq!(count(&pool, "SELECT count(*) FROM jobs").await, 1);
    // a job enqueued inside a transaction that rolls back does not exist
    let mut tx = pool.begin().await.unwrap();
    queue::enqueue(
        &mut tx,
        &NewJob::new("refresh_token", json!({})).unique("refresh:acct-2"),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM jobs").await, 1);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn retries_follow_backoff_and_retry_after_and_permanent_failure_stops(pool: PgPool) {
    let attempts: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let a = attempts.clone();
    let spec = KindSpec::new(
        "flaky",
        10,
        handler(move |ctx: JobContext| {
            let a = a.clone();
            async move {
                let mode = ctx.job.payload["mode"].as_str().unwrap().to_owned();
                a.lock()
                    .unwrap()
                    .entry(mode.clone())
                    .or_default()
                    .push(Instant::now());
                match mode.as_str() {
                    "always_error" => anyhow::bail!("platform 503"),
                    "retry_after" if ctx.job.attempt == 1 => Ok(Outcome::RetryIn {
                        delay: Duration::from_millis(1200),
                        reason: "429 Retry-After: 1.2".into(),
                    }),
                    "permanent" => Ok(Outcome::Fail(
                        "400: caption too long (platform said so)".into(),
                    )),
                    _ => Ok(Outcome::Done),
                }
            }
        }),
    )
    .backoff(Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(400),
    });
    let mut conn = pool.acquire().await.unwrap();
    for mode in ["always_error", "retry_after", "permanent"] {
        queue::enqueue(
            &mut conn,
            &NewJob::new("flaky", json!({ "mode": mode })).max_attempts(4),
        )
        .await
        .unwrap();
    }
    drop(conn);
    let w = start(&pool, "w1", 10, vec![spec], None).await;
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state IN ('completed', 'failed')",
        3,
        Duration::from_secs(20),
    )
    .await;
    w.shutdown().await;
    let attempts = attempts.lock().unwrap().clone();

    let errors = &attempts["always_error"];
    assert_eq!(errors.len(), 4, "max_attempts honoured");
    for (n, pair) in errors.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let ceiling =
            Duration::from_millis(100 * 2u64.pow(n as u32)).min(Duration::from_millis(400));
        assert!(
            gap <= ceiling + Duration::from_millis(250),
            "attempt gap {gap:?} above backoff ceiling {ceiling:?}"
        );
    }
    let (state, error): (String, String) = sqlx::query_as(
        "SELECT state, last_error FROM jobs WHERE payload->>'mode' = 'always_error'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), error.as_str()), ("failed", "platform 503"));

    let ra = &attempts["retry_after"];
    assert_eq!(ra.len(), 2);
    assert!(
        ra[1] - ra[0] >= Duration::from_millis(1200),
        "Retry-After respected: {:?}",
        ra[1] - ra[0]
    );

    assert_eq!(
        attempts["permanent"].len(),
        1,
        "a permanent failure is not retried"
    );
    let (state, error, tries): (String, String, i32) = sqlx::query_as(
        "SELECT state, last_error, attempts FROM jobs WHERE payload->>'mode' = 'permanent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), tries), ("failed", 1));
    assert!(error.contains("caption too long"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn periodic_jobs_never_double_with_three_workers(pool: PgPool) {
    let running = Arc::new(Mutex::new((0u32, 0u32, 0u32))); // (now, max, total)
    let mut workers = Vec::new();
    for w in 0..3 {
        let running = running.clone();
        let spec = KindSpec::new(
            "sweep",
            4,
            handler(move |_ctx: JobContext| {
                let running = running.clone();
                async move {
                    {
                        let mut r = running.lock().unwrap();
                        r.0 += 1;
                        r.1 = r.1.max(r.0);
                        r.2 += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    running.lock().unwrap().0 -= 1;
                    Ok(Outcome::Done)
                }
            }),
        )
        .periodic(Duration::from_millis(200), json!({}));
        workers.push(start(&pool, &format!("w{w}"), 4, vec![spec], None).await);
    }
    // the runners enqueue the periodic job when they start
    wait_until(
        &pool,
        "SELECT least(count(*), 1) FROM jobs WHERE kind = 'sweep'",
        1,
        Duration::from_secs(5),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let unfinished = count(
            &pool,
            "SELECT count(*) FROM jobs WHERE kind = 'sweep' AND state IN ('available', 'running')",
        )
        .await;
        assert_eq!(
            unfinished,
            1,
            "exactly one pending run of the periodic job at every moment: {:?}",
            sqlx::query_as::<_, (i64, String, i32)>(
                "SELECT id, state, attempts FROM jobs ORDER BY id"
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for w in workers {
        w.shutdown().await;
    }
    let (_, max, total) = *running.lock().unwrap();
    assert_eq!(max, 1, "never two runs at once");
    assert!(
        (8..=16).contains(&total),
        "about one run per 250 ms over 3 s, got {total}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_job_scheduled_300ms_ahead_starts_on_time_without_polling(pool: PgPool) {
    let started: Arc<Mutex<Option<Instant>>> = Arc::default();
    let s = started.clone();
    let spec = KindSpec::new(
        "timed",
        1,
        handler(move |_ctx: JobContext| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some(Instant::now());
                Ok(Outcome::Done)
            }
        }),
    );
    let w = start(&pool, "w1", 4, vec![spec], None).await;
    // let the runner go idle (its poll interval is a minute)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let enqueued = Instant::now();
    let mut conn = pool.acquire().await.unwrap();
    queue::enqueue(
        &mut conn,
        &NewJob::new("timed", json!({})).run_at(RunAt::In(Duration::from_millis(300))),
    )
    .await
    .unwrap();
    drop(conn);
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'completed'",
        1,
        Duration::from_secs(5),
    )
    .await;
    w.shutdown().await;
    let took = started.lock().unwrap().unwrap() - enqueued;
    assert!(took >= Duration::from_millis(290), "not early: {took:?}");
    assert!(
        took < Duration::from_millis(350),
        "started {took:?} after enqueue, target 300 ms + at most 50 ms lag"
    );
    let lag_ms: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM started_at - run_at)::float8 * 1000 FROM jobs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        (0.0..50.0).contains(&lag_ms),
        "database-measured start lag {lag_ms} ms"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_kind_starts_on_time_while_others_are_busy(pool: PgPool) {
    // a worker as deployed: many kinds, each allowed three quarters of the process's capacity;
    // one kind keeps its share busy, and one job of every other kind falls due at its own time
    let kinds = ["busy", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    let specs = kinds
        .iter()
        .map(|k| {
            let slow = *k == "busy";
            KindSpec::new(
                k,
                6,
                handler(move |_ctx: JobContext| async move {
                    if slow {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    Ok(Outcome::Done)
                }),
            )
        })
        .collect();
    let w = start(&pool, "w1", 8, specs, None).await;
    enqueue_n(&pool, "busy", 6, Scope::default()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = pool.acquire().await.unwrap();
    for (i, k) in kinds[1..].iter().enumerate() {
        let ahead = Duration::from_millis(300 + 150 * i as u64);
        queue::enqueue(
            &mut conn,
            &NewJob::new(*k, json!({})).run_at(RunAt::In(ahead)),
        )
        .await
        .unwrap();
    }
    drop(conn);
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'completed' AND kind <> 'busy'",
        7,
        Duration::from_secs(10),
    )
    .await;
    w.shutdown().await;
    let lags: Vec<(String, f64)> = sqlx::query_as(
        "SELECT kind, extract(epoch FROM started_at - run_at)::float8 * 1000 FROM jobs
         WHERE kind <> 'busy' ORDER BY kind",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (kind, lag_ms) in &lags {
        assert!(
            (0.0..50.0).contains(lag_ms),
            "{kind} started {lag_ms} ms after it was due (all: {lags:?})"
        );
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn cancelled_jobs_never_run_and_running_ones_see_it(pool: PgPool) {
    let spec = KindSpec::new(
        "long",
        4,
        handler(|ctx: JobContext| async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(30)) => Ok(Outcome::Done),
                _ = ctx.cancel.cancelled() => Ok(Outcome::Cancelled),
            }
        }),
    );
    let mut conn = pool.acquire().await.unwrap();
    let later = queue::enqueue(
        &mut conn,
        &NewJob::new("long", json!({})).run_at(RunAt::In(Duration::from_secs(3600))),
    )
    .await
    .unwrap()
    .id();
    let now = queue::enqueue(&mut conn, &NewJob::new("long", json!({})))
        .await
        .unwrap()
        .id();
    drop(conn);
    assert_eq!(
        queue::cancel(&pool, later).await.unwrap(),
        queue::Cancelled::Cancelled
    );
    let w = start(&pool, "w1", 4, vec![spec], None).await;
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        queue::cancel(&pool, now).await.unwrap(),
        queue::Cancelled::Requested
    );
    // the heartbeat (every lease/3) carries the request to the handler
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'cancelled'",
        2,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        queue::cancel(&pool, now).await.unwrap(),
        queue::Cancelled::AlreadyFinished
    );
    assert_eq!(
        queue::cancel(&pool, 999_999).await.unwrap(),
        queue::Cancelled::NotFound
    );
    w.shutdown().await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn graceful_shutdown_finishes_in_flight_jobs_and_leaves_the_rest(pool: PgPool) {
    let begun = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let b = begun.clone();
    let spec = KindSpec::new(
        "slow",
        2,
        handler(move |_ctx: JobContext| {
            let b = b.clone();
            async move {
                b.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(Outcome::Done)
            }
        }),
    );
    enqueue_n(&pool, "slow", 5, Scope::default()).await;
    let w = start(&pool, "w1", 2, vec![spec], None).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while begun.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "two handlers should have started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    w.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(3));
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
        3,
        "the rest untouched"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_claim_takes_the_most_urgent_across_kinds_up_to_its_total(pool: PgPool) {
    enqueue_n(&pool, "x", 4, Scope::default()).await;
    let urgent: Vec<NewJob> = (0..4)
        .map(|i| NewJob::new("y", json!({ "i": i })).priority(10))
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    queue::enqueue_many(&mut conn, &urgent).await.unwrap();
    drop(conn);
    let claimed = queue::claim(&pool, "w", &[("x", 4), ("y", 4)], 5, Duration::from_secs(5))
        .await
        .unwrap();
    let kinds: Vec<&str> = claimed.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "y").count(), 4, "{kinds:?}");
    // what was locked but not taken is free again
    let available: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'available' AND kind = 'x'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(available, 3);
    let again = queue::claim(&pool, "v", &[("x", 4)], 4, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn expired_leases_are_rescued_counting_the_attempt(pool: PgPool) {
    enqueue_n(&pool, "x", 3, Scope::default()).await;
    // a worker that claimed and vanished
    let claimed = queue::claim(&pool, "ghost", &[("x", 3)], 3, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(queue::rescue_expired(&pool, 100).await.unwrap(), 3);
    assert_eq!(count(&pool, "SELECT count(*) FROM jobs WHERE state = 'available' AND attempts = 1 AND locked_by IS NULL").await, 3);
    // the ghost's late completion changes nothing
    assert_eq!(
        queue::complete(
            &pool,
            "ghost",
            &claimed
                .iter()
                .map(|j| (j.id, j.lease_token))
                .collect::<Vec<_>>()
        )
        .await
        .unwrap(),
        0
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_stale_run_changes_nothing_even_when_its_own_process_claimed_the_job_again(pool: PgPool) {
    // A process froze past its lease; the job was rescued and this same process (same worker
    // id) claimed it again. The first, stale run wakes up: nothing it records may touch the
    // second run's job.
    enqueue_n(&pool, "x", 1, Scope::default()).await;
    let lease = Duration::from_millis(100);
    let first = queue::claim(&pool, "w", &[("x", 1)], 1, lease)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(queue::rescue_expired(&pool, 10).await.unwrap(), 1);
    let second = queue::claim(&pool, "w", &[("x", 1)], 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (1, 1));
    let (stale, live) = (
        (first[0].id, first[0].lease_token),
        (second[0].id, second[0].lease_token),
    );
    assert_eq!(stale.0, live.0);
    assert_ne!(stale.1, live.1, "each claim has its own token");
    // the stale run's heartbeat learns it lost the job; the live run's lease is renewed
    let renewed = queue::renew(&pool, "w", &[stale, live], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        renewed.iter().map(|r| r.run).collect::<Vec<_>>(),
        vec![live]
    );
    // nothing the stale run records lands
    assert_eq!(queue::complete(&pool, "w", &[stale]).await.unwrap(), 0);
    let postponed = queue::postpone_many(
        &pool,
        "w",
        &[queue::Postponed {
            run: stale,
            delay: Duration::from_secs(60),
            priority: Some(1),
            reason: "stale".into(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(postponed, 0);
    assert!(
        !queue::retry_or_fail(&pool, "w", stale, Duration::ZERO, "stale")
            .await
            .unwrap()
    );
    queue::fail(&pool, "w", stale, "stale").await.unwrap();
    assert!(!queue::hold(&pool, "w", stale, "stale").await.unwrap());
    queue::mark_cancelled(&pool, "w", stale).await.unwrap();
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE state = 'running' AND attempts = 2 AND priority = 100"
        )
        .await,
        1,
        "the live run still holds the job, untouched"
    );
    assert!(
        sqlx::query_scalar::<_, bool>(
            "SELECT job_lease_held($1, $2) AND NOT job_lease_held($1, $3)"
        )
        .bind(live.0)
        .bind(live.1)
        .bind(stale.1)
        .fetch_one(&pool)
        .await
        .unwrap()
    );
    assert_eq!(queue::complete(&pool, "w", &[live]).await.unwrap(), 1);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn no_new_start_after_engage_returns_and_disengage_completes_everything(pool: PgPool) {
    let redis = PrivateRedis::start();
    let (agency, client) = tenant(&pool).await;
    let scope = Scope {
        agency_id: Some(agency),
        client_id: Some(client),
        account_id: None,
        platform: Some(Platform::X),
    };
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let make = |starts: Arc<Mutex<Vec<Instant>>>| {
        KindSpec::new(
            "post",
            20,
            handler(move |ctx: JobContext| {
                let starts = starts.clone();
                async move {
                    let permit = match ctx.permit().await {
                        Ok(p) => p,
                        Err(blocked) => return Ok(blocked.into()),
                    };
                    starts.lock().unwrap().push(Instant::now()); // the platform request starts here
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    drop(permit);
                    Ok(Outcome::Done)
                }
            }),
        )
    };
    let w1 = start(
        &pool,
        "w1",
        20,
        vec![make(starts.clone())],
        Some(&redis.url()),
    )
    .await;
    let w2 = start(
        &pool,
        "w2",
        20,
        vec![make(starts.clone())],
        Some(&redis.url()),
    )
    .await;
    enqueue_n(&pool, "post", 1000, scope).await;
    // let some run, then pull the switch mid-burst
    while starts.lock().unwrap().len() < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let admin_redis = autosocial_core::redis::connect(&redis.url().into())
        .await
        .unwrap();
    let engaged_at = Instant::now();
    let id = killswitch::engage(
        &pool,
        Some(&admin_redis),
        Duration::from_millis(1500),
        &Actor::system("test"),
        Target::Platform {
            agency: Some(agency),
            platform: Platform::X,
        },
        "X is misbehaving",
    )
    .await
    .unwrap();
    let returned = Instant::now();
    assert!(
        returned - engaged_at < Duration::from_millis(1000),
        "with Redis up, engage returns on acknowledgements: {:?}",
        returned - engaged_at
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = starts.lock().unwrap().len();
    let late = starts
        .lock()
        .unwrap()
        .iter()
        .filter(|t| **t > returned)
        .count();
    assert_eq!(late, 0, "no platform request started after engage returned");
    assert!(
        before < 1000,
        "the switch stopped the burst ({before} started)"
    );
    let unfinished = count(
        &pool,
        "SELECT count(*) FROM jobs WHERE state IN ('held', 'available', 'running')",
    )
    .await;
    let completed = count(&pool, "SELECT count(*) FROM jobs WHERE state = 'completed'").await;
    assert_eq!(unfinished + completed, 1000, "nothing dropped");
    assert_eq!(
        completed, before as i64,
        "only what started before the switch completed"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM jobs WHERE state = 'failed'").await,
        0
    );

    killswitch::disengage(&pool, Some(&admin_redis), &Actor::system("test"), id)
        .await
        .unwrap();
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'completed'",
        1000,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        starts.lock().unwrap().len(),
        1000,
        "each job started exactly once in all"
    );
    w1.shutdown().await;
    w2.shutdown().await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn engage_holds_even_when_redis_is_down(pool: PgPool) {
    let mut redis = PrivateRedis::start();
    let (agency, _) = tenant(&pool).await;
    let scope = Scope {
        agency_id: Some(agency),
        ..Scope::default()
    };
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let s = starts.clone();
    let spec = KindSpec::new(
        "post",
        10,
        handler(move |ctx: JobContext| {
            let s = s.clone();
            async move {
                let permit = match ctx.permit().await {
                    Ok(p) => p,
                    Err(blocked) => return Ok(blocked.into()),
                };
                s.lock().unwrap().push(Instant::now());
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(permit);
                Ok(Outcome::Done)
            }
        }),
    );
    let w = start(&pool, "w1", 10, vec![spec], Some(&redis.url())).await;
    redis.stop(); // the broadcast cannot reach anyone
    enqueue_n(&pool, "post", 300, scope).await;
    while starts.lock().unwrap().len() < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killswitch::engage(
        &pool,
        None,
        Duration::from_millis(1500),
        &Actor::system("test"),
        Target::Agency(agency),
        "pause everything",
    )
    .await
    .unwrap();
    let returned = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        starts
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t > returned)
            .count(),
        0,
        "the database alone stops new starts"
    );
    w.shutdown().await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn two_workers_sharing_ten_per_second_never_exceed_it_even_when_redis_stops(pool: PgPool) {
    let mut redis = PrivateRedis::start();
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop_probes = CancellationToken::new();
    let mut workers = Vec::new();
    for w in 0..2 {
        let client = autosocial_core::redis::connect(&redis.url().into())
            .await
            .unwrap();
        let smoother = Smoother::new(pool.clone(), Some(client));
        tokio::spawn(smoother.clone().probe(stop_probes.clone()));
        let starts = starts.clone();
        let spec = KindSpec::new(
            "limited",
            8,
            handler(move |_ctx: JobContext| {
                let (smoother, starts) = (smoother.clone(), starts.clone());
                async move {
                    match smoother
                        .try_acquire("account:acct-1", Rate::per(10, Duration::from_secs(1)))
                        .await
                    {
                        Ok(()) => {
                            starts.lock().unwrap().push(Instant::now());
                            Ok(Outcome::Done)
                        }
                        Err(wait) => Ok(Outcome::Postpone {
                            delay: wait,
                            reason: "rate limit".into(),
                        }),
                    }
                }
            }),
        );
        workers.push(start(&pool, &format!("w{w}"), 8, vec![spec], None).await);
    }
    enqueue_n(&pool, "limited", 200, Scope::default()).await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    redis.stop();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop_probes.cancel();
    for w in workers {
        w.shutdown().await;
    }
    let mut s = starts.lock().unwrap().clone();
    s.sort();
    for (i, t) in s.iter().enumerate() {
        let in_window = s[i..]
            .iter()
            .take_while(|u| **u - *t < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 10,
            "{in_window} starts within 1 s from {:?}",
            *t - t0
        );
    }
    let before = s.iter().filter(|t| **t < stopped).count();
    let after = s.len() - before;
    assert!(
        before >= 15,
        "the limit was used, not starved ({before} starts while Redis was up)"
    );
    assert!(
        after >= 10,
        "publishing went on without Redis ({after} starts after it stopped)"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM jobs WHERE state = 'failed'").await,
        0,
        "nothing over the limit is dropped"
    );
}

/// Take from the bucket, waiting as told, the way a postponed job would.
async fn acquire_within(smoother: &Smoother, rate: Rate, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match smoother.try_acquire("k", rate).await {
            Ok(()) => return,
            Err(wait) => {
                assert!(
                    Instant::now() + wait < deadline,
                    "no grant within {within:?}"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn requests_turned_away_together_each_hold_their_own_later_slot(pool: PgPool) {
    let redis_url = std::env::var("REDIS_URL").expect("REDIS_URL");
    let client = autosocial_core::redis::connect(&redis_url.into())
        .await
        .unwrap();
    let smoother = Smoother::new(pool.clone(), Some(client));
    let key = format!("test:{}", Uuid::now_v7());
    let rate = Rate::per(5, Duration::from_secs(1)).with_burst(2);
    let mut granted_now = 0;
    let mut held = Vec::new();
    for h in 0..6 {
        match smoother.reserve(&key, rate, &format!("h{h}")).await {
            Grant::Now { age } => {
                assert_eq!(age, Duration::ZERO, "a fresh grant is charged now");
                granted_now += 1
            }
            Grant::Reserved(wait) => held.push((h, wait)),
            Grant::Wait(w) => panic!("within the horizon a slot is held, not {w:?}"),
        }
    }
    assert_eq!(granted_now, 2, "the burst goes at once");
    // one slot each, one interval apart
    let waits: Vec<u128> = held.iter().map(|(_, w)| w.as_millis()).collect();
    for (i, w) in waits.iter().enumerate() {
        let expected = 200 * (i as u128 + 1);
        assert!(
            w.abs_diff(expected) <= 60,
            "holder {i} waits about {expected} ms, not {w}: {waits:?}"
        );
    }
    // the held slots are taken: an unreserved request waits behind all of them
    let plain = smoother.try_acquire(&key, rate).await.unwrap_err();
    assert!(plain >= Duration::from_millis(850), "{plain:?}");
    // asking early keeps the slot (it does not take another one)
    let (first, first_wait) = held[0];
    match smoother.reserve(&key, rate, &format!("h{first}")).await {
        Grant::Reserved(w) => assert!(w <= first_wait, "{w:?} > {first_wait:?}"),
        other => panic!("early: {other:?}"),
    }
    // each comes back once, at its slot, and goes
    let t0 = Instant::now();
    for (h, wait) in &held {
        tokio::time::sleep_until((t0 + *wait + Duration::from_millis(20)).into()).await;
        match smoother.reserve(&key, rate, &format!("h{h}")).await {
            // charged at its slot, a little earlier than now: the grant is that much older
            Grant::Now { age } => assert!(age < GRANT_VALIDITY, "holder {h}: {age:?}"),
            other => panic!("holder {h} at its slot: {other:?}"),
        }
    }
    // a reservation is used once
    let again = smoother.reserve(&key, rate, &format!("h{first}")).await;
    assert!(
        !matches!(again, Grant::Now { .. }),
        "a used slot does not grant twice: {again:?}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_holder_that_comes_back_late_finds_its_slot_spent(pool: PgPool) {
    // A slot is charged at its time: granting it much later would let the request arrive close
    // behind the next slot's, so a late holder asks the bucket anew (the slot stays spent).
    let redis_url = std::env::var("REDIS_URL").expect("REDIS_URL");
    let client = autosocial_core::redis::connect(&redis_url.into())
        .await
        .unwrap();
    let smoother = Smoother::new(pool.clone(), Some(client));
    let key = format!("test:{}", Uuid::now_v7());
    let rate = Rate::per(2, Duration::from_secs(1)).with_burst(1);
    assert!(matches!(
        smoother.reserve(&key, rate, "first").await,
        Grant::Now { .. }
    ));
    let Grant::Reserved(wait) = smoother.reserve(&key, rate, "late").await else {
        panic!("the second holds the next slot");
    };
    let Grant::Reserved(next) = smoother.reserve(&key, rate, "on-time").await else {
        panic!("the third holds the slot after it");
    };
    assert!(next > wait);
    // "late" sleeps past its slot and its grace, until "on-time"'s slot
    tokio::time::sleep(next + Duration::from_millis(10)).await;
    assert!(matches!(
        smoother.reserve(&key, rate, "on-time").await,
        Grant::Now { .. }
    ));
    match smoother.reserve(&key, rate, "late").await {
        Grant::Reserved(w) => assert!(
            w >= Duration::from_millis(400),
            "a new slot, one interval after the last: {w:?}"
        ),
        other => panic!("a late holder's slot is spent: {other:?}"),
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn slots_held_before_a_switch_to_postgres_and_back_are_void(pool: PgPool) {
    // Redis stops answering without losing its data (CLIENT PAUSE): meanwhile Postgres grants,
    // knowing nothing of the slots held in Redis, so those must not be honoured afterwards
    let redis = PrivateRedis::start();
    let client = autosocial_core::redis::connect(&redis.url().into())
        .await
        .unwrap();
    let smoother = Smoother::new(pool.clone(), Some(client.clone()));
    let stop = CancellationToken::new();
    tokio::spawn(smoother.clone().probe(stop.clone()));
    let rate = Rate::per(1, Duration::from_secs(2)).with_burst(1);
    assert!(matches!(
        smoother.reserve("k", rate, "first").await,
        Grant::Now { .. }
    ));
    let Grant::Reserved(wait) = smoother.reserve("k", rate, "second").await else {
        panic!("the second holds the next slot");
    };
    assert!(wait <= Duration::from_secs(2));
    let _: String = fred::interfaces::ClientLike::custom(
        &client,
        fred::cmd!("CLIENT"),
        vec!["PAUSE".to_owned(), "1500".to_owned()],
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while smoother.on_redis() {
        assert!(Instant::now() < deadline, "the pause is noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !smoother.on_redis() {
        assert!(
            Instant::now() < deadline,
            "back on Redis after it answered for a while"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the slot's time has long passed, but it was held before the switch: whoever asks first
    // after the switch (once its pause is over), every earlier slot is void
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match smoother.reserve("k", rate, "third").await {
            Grant::Wait(pause) => {
                assert!(Instant::now() < deadline, "the switch's pause ends");
                tokio::time::sleep(pause).await;
            }
            Grant::Reserved(_) => break,
            Grant::Now { .. } => panic!("the bucket starts full after a switch"),
        }
    }
    let second = smoother.reserve("k", rate, "second").await;
    assert!(
        !matches!(second, Grant::Now { .. }),
        "a slot held before the switch is void: {second:?}"
    );
    stop.cancel();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn without_redis_nothing_is_held_and_the_bucket_still_limits(pool: PgPool) {
    let smoother = Smoother::new(pool.clone(), None);
    let rate = Rate::per(5, Duration::from_secs(1)).with_burst(2);
    let mut answers = Vec::new();
    for h in 0..4 {
        answers.push(smoother.reserve("k", rate, &format!("h{h}")).await);
    }
    assert!(
        answers[..2].iter().all(|g| matches!(g, Grant::Now { .. })),
        "{answers:?}"
    );
    assert!(
        answers[2..].iter().all(|g| matches!(g, Grant::Wait(_))),
        "{answers:?}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn rate_buckets_return_to_redis_by_themselves(pool: PgPool) {
    let mut redis = PrivateRedis::start();
    let client = autosocial_core::redis::connect(&redis.url().into())
        .await
        .unwrap();
    let smoother = Smoother::new(pool.clone(), Some(client));
    let stop = CancellationToken::new();
    tokio::spawn(smoother.clone().probe(stop.clone()));
    let rate = Rate::per(100, Duration::from_secs(1));
    assert!(smoother.on_redis());
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while smoother.on_redis() {
        assert!(Instant::now() < deadline, "Redis loss noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // grants go on from Postgres after the switch pause (and one interval: the bucket starts full)
    acquire_within(&smoother, rate, Duration::from_secs(2)).await;
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !smoother.on_redis() {
        assert!(
            Instant::now() < deadline,
            "back on Redis after it answered for a while"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    acquire_within(&smoother, rate, Duration::from_secs(2)).await;
    stop.cancel();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn platform_quotas_count_what_postgres_recorded_as_published(pool: PgPool) {
    let (agency, client) = tenant(&pool).await;
    let account = build::account(agency, client)
        .platform(Platform::Instagram)
        .platform_account_id("ig-1")
        .tokens(vec![1], None, "k1")
        .insert(&pool)
        .await;
    // this agency may post 3 per 24 h on Instagram
    sqlx::query("INSERT INTO platform_limit_overrides (agency_id, platform, window_seconds, max_posts) VALUES ($1, 'instagram', 86400, 3)")
        .bind(agency)
        .execute(&pool)
        .await
        .unwrap();
    let publish = |hours_ago: f64, state: &'static str| {
        let pool = pool.clone();
        async move {
            // one item per publication (item, account) is unique
            let item = build::item(agency, client).insert(&pool).await;
            let mut p = build::publication(agency, client, item, account)
                .platform(Platform::Instagram)
                .state(state.parse().unwrap())
                .attempt(Uuid::new_v4(), "as-marker-1");
            if state == "published" {
                let at =
                    Utc::now() - chrono::TimeDelta::milliseconds((hours_ago * 3_600_000.0) as i64);
                p = p.published("p", at);
            }
            p.insert(&pool).await
        }
    };
    // the wait of a post that is not among them
    let next = Uuid::now_v7();
    let wait_of = |pool: PgPool, publication: Uuid| async move {
        let mut conn = pool.acquire().await.unwrap();
        autosocial_core::limits::quota_wait(&mut conn, agency, account, "instagram", publication)
            .await
            .unwrap()
    };
    let wait = |pool: PgPool| wait_of(pool, next);
    publish(30.0, "published").await; // outside the window
    publish(20.0, "published").await;
    publish(10.0, "published").await;
    assert_eq!(
        wait(pool.clone()).await,
        None,
        "two in the window: one more fits"
    );
    let in_flight = publish(0.0, "publishing").await; // in flight counts too
    let w = wait(pool.clone()).await.expect("full");
    // ...but not against itself: an earlier attempt left it `publishing`, and its next run is
    // that same post (else an account with its quota's worth of such posts never moves again)
    assert_eq!(wait_of(pool.clone(), in_flight).await, None);
    // the post of 20 h ago leaves the window in 4 h
    assert!(
        (Duration::from_secs(4 * 3600 - 5)..Duration::from_secs(4 * 3600 + 5)).contains(&w),
        "{w:?}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_self_renewing_job_enqueues_its_successor_when_it_completes(pool: PgPool) {
    let spec = KindSpec::new(
        "renew",
        2,
        handler(|ctx: JobContext| async move {
            let n = ctx.job.payload["n"].as_u64().unwrap();
            if n >= 3 {
                return Ok(Outcome::Done);
            }
            let next = NewJob::new("renew", json!({ "n": n + 1 })).unique("renew:a");
            Ok(Outcome::DoneThen(Box::new(next)))
        }),
    );
    let mut conn = pool.acquire().await.unwrap();
    queue::enqueue(
        &mut conn,
        &NewJob::new("renew", json!({ "n": 1 })).unique("renew:a"),
    )
    .await
    .unwrap();
    drop(conn);
    let w = start(&pool, "w1", 2, vec![spec], None).await;
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state = 'completed'",
        3,
        Duration::from_secs(10),
    )
    .await;
    w.shutdown().await;
    assert_eq!(
        count(&pool, "SELECT count(*) FROM jobs").await,
        3,
        "one successor each, none left over"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_malformed_payload_fails_its_job_at_once_with_the_reason(pool: PgPool) {
    use autosocial_core::jobs::PublishPost;
    use autosocial_core::queue::job::AccountTarget;

    let runs: Arc<Mutex<Vec<Uuid>>> = Arc::default();
    let r = runs.clone();
    let spec = KindSpec::of::<PublishPost, _, _>(4, move |post, _job| {
        let r = r.clone();
        async move {
            r.lock().unwrap().push(post.publication_id);
            Ok(Outcome::Done)
        }
    });
    let (agency, client) = tenant(&pool).await;
    let good = PublishPost {
        publication_id: Uuid::now_v7(),
    };
    let target = AccountTarget {
        agency_id: agency,
        client_id: client,
        account_id: Uuid::now_v7(),
        platform: Platform::Sandbox,
    };
    let mut conn = pool.acquire().await.unwrap();
    let good_id = queue::job::enqueue_typed(&mut conn, &good, target, RunAt::Now)
        .await
        .unwrap()
        .id();
    let bad_id = queue::enqueue(
        &mut conn,
        &NewJob::new("publish", json!({ "publication": "not-a-uuid" })).max_attempts(8),
    )
    .await
    .unwrap()
    .id();
    drop(conn);
    let w = start(&pool, "w1", 4, vec![spec], None).await;
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE state IN ('completed', 'failed')",
        2,
        Duration::from_secs(20),
    )
    .await;
    w.shutdown().await;

    assert_eq!(*runs.lock().unwrap(), vec![good.publication_id]);
    let (state, attempts, reason): (autosocial_core::domain::JobState, i32, String) =
        sqlx::query_as("SELECT state, attempts, last_error FROM jobs WHERE id = $1")
            .bind(bad_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, autosocial_core::domain::JobState::Failed);
    assert_eq!(attempts, 1, "failed for good, not retried");
    assert!(
        reason.contains("malformed `publish` job payload") && reason.contains("publication_id"),
        "{reason}"
    );
    let good_state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(good_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(good_state, "completed");
}
