//! Publishing end to end with worker processes against the sandbox: exactly once as the
//! platform sees it under crashes, lost answers, database and Redis faults, platform refusals
//! and kill switches. Every count comes from the sandbox's own ledger and posts.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autosocial_bench::seeding::{self, ExactlyOnce, Fleet};
use autosocial_core::domain::Platform;
use autosocial_core::platforms::{self, PlatformsConfig};
use autosocial_core::testing::{PrivateRedis, count, database_url, wait_until};
use autosocial_core::vault::Vault;
use autosocial_sandbox::Knobs;
use sqlx::PgPool;
use uuid::Uuid;

const WORKER: &str = env!("CARGO_BIN_EXE_autosocial-worker");
const KEY: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn vault() -> Arc<Vault> {
    Arc::new(Vault::from_spec(KEY).unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A worker process, killed if the test ends without stopping it.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct World {
    pool: PgPool,
    db: String,
    sandbox: url::Url,
    config: PlatformsConfig,
    http: reqwest::Client,
    redis_url: String,
}

impl World {
    async fn new(pool: PgPool, knobs: Knobs) -> World {
        let sandbox = autosocial_sandbox::spawn(Knobs {
            auto_approve: true,
            ..knobs
        })
        .await
        .unwrap();
        let config = PlatformsConfig::all_in_sandbox(&sandbox, platforms::http_client());
        World {
            db: database_url(&pool).await,
            pool,
            http: reqwest::Client::new(),
            sandbox,
            config,
            redis_url: autosocial_core::testing::redis_url(),
        }
    }

    async fn knobs(&self, k: Knobs) {
        self.http
            .post(self.sandbox.join("/_sandbox/knobs").unwrap())
            .json(&Knobs {
                auto_approve: true,
                ..k
            })
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    async fn fleet(&self, name: &str, accounts: usize) -> Fleet {
        seeding::connect_fleet(
            &self.pool,
            &vault(),
            &self.config,
            name,
            accounts,
            Platform::Sandbox,
        )
        .await
        .unwrap()
    }

    async fn due_now(&self, fleet: &Fleet, per_account: usize) -> Vec<Uuid> {
        let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await
            .unwrap();
        seeding::due_publications(&self.pool, fleet, per_account, now)
            .await
            .unwrap()
    }

    fn worker(&self, args: &[&str]) -> Worker {
        self.worker_with(args, &[])
    }

    /// A worker process running publish (and refresh) jobs; `env` comes last and wins.
    fn worker_with(&self, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let mut cmd = Command::new(WORKER);
        cmd.args([
            "run",
            "--kinds",
            "publish,refresh_token",
            "--lease-secs",
            "3",
            "--metrics-listen",
        ])
        .arg(format!("127.0.0.1:{}", free_port()))
        .args(args)
        .env("DATABASE_URL", &self.db)
        .env("REDIS_URL", &self.redis_url)
        .env("AUTOSOCIAL_KEYS", KEY)
        // several workers share one Postgres (max_connections 100) with the test itself
        .env("AUTOSOCIAL_DB_MAX_CONNECTIONS", "12")
        .env("AUTOSOCIAL_SANDBOX_URL", self.sandbox.as_str())
        .env("AUTOSOCIAL_PLATFORMS_IN_SANDBOX", "true")
        .env("AUTOSOCIAL_PUBLIC_URL", "http://127.0.0.1:9/")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        cmd.envs(env.iter().copied());
        Worker(cmd.spawn().unwrap())
    }

    async fn audit(&self, ids: &[Uuid]) -> ExactlyOnce {
        let posts = seeding::sandbox_posts(&self.http, &self.sandbox)
            .await
            .unwrap();
        seeding::audit(&self.pool, &posts, ids).await.unwrap()
    }

    async fn ledger(&self, query: &str) -> Vec<serde_json::Value> {
        self.http
            .get(
                self.sandbox
                    .join(&format!("/_sandbox/ledger?{query}"))
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn all_published(&self, n: usize, within: Duration) {
        wait_until(
            &self.pool,
            "SELECT count(*) FROM publications WHERE state = 'published'",
            n as i64,
            within,
        )
        .await;
    }
}

fn clean(n: usize) -> ExactlyOnce {
    ExactlyOnce {
        published: n,
        posts: n,
        duplicates: 0,
        lost: 0,
        unrecorded: 0,
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn approved_posts_go_out_once_each_with_a_post_log(pool: PgPool) {
    let w = World::new(pool, Knobs::default()).await;
    let fleet = w.fleet("Burst small", 5).await;
    let ids = w.due_now(&fleet, 2).await;
    let _a = w.worker(&[]);
    w.all_published(ids.len(), Duration::from_secs(30)).await;
    assert_eq!(w.audit(&ids).await, clean(ids.len()));
    assert_eq!(
        count(&w.pool, "SELECT count(*) FROM post_logs WHERE action = 'publish' AND outcome = 'published' AND latency_ms IS NOT NULL").await,
        ids.len() as i64
    );
    assert_eq!(
        count(
            &w.pool,
            "SELECT count(*) FROM content_items WHERE state = 'published'"
        )
        .await,
        ids.len() as i64,
        "each item rolls up to published"
    );
    // and their engagement is read back from the platform
    let gate = autosocial_core::killswitch::Gate::new(w.pool.clone(), Duration::from_secs(2));
    gate.refresh().await.unwrap();
    let publisher = autosocial_core::publishing::Publisher::new(
        w.pool.clone(),
        vault(),
        Arc::new(w.config.clone()),
        Arc::new(autosocial_core::limits::Smoother::new(w.pool.clone(), None)),
        None,
        Duration::from_secs(60),
    );
    let measured = autosocial_core::publishing::sync_metrics(&publisher, &gate, None)
        .await
        .unwrap();
    assert_eq!(measured, ids.len());
    assert_eq!(
        count(
            &w.pool,
            "SELECT count(*) FROM metrics WHERE likes IS NOT NULL AND impressions >= 100"
        )
        .await,
        ids.len() as i64
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_lost_answer_is_reconciled_not_posted_twice(pool: PgPool) {
    let w = World::new(pool, Knobs::default()).await;
    let fleet = w.fleet("Lost acks", 10).await;
    // every post is accepted, then the answer is a 500 (half) or a dropped connection (half)
    w.knobs(Knobs {
        accept_then_fail: Some("500".into()),
        accept_then_fail_rate: 1.0,
        ..Knobs::default()
    })
    .await;
    let first = w.due_now(&fleet, 1).await;
    let _a = w.worker(&[]);
    wait_until(
        &w.pool,
        "SELECT count(*) FROM post_logs WHERE outcome = 'transient'",
        first.len() as i64,
        Duration::from_secs(30),
    )
    .await;
    w.knobs(Knobs {
        accept_then_fail: Some("drop".into()),
        accept_then_fail_rate: 1.0,
        ..Knobs::default()
    })
    .await;
    let second = w.due_now(&fleet, 1).await;
    wait_until(
        &w.pool,
        "SELECT count(*) FROM post_logs WHERE outcome = 'transient'",
        (first.len() + second.len()) as i64,
        Duration::from_secs(30),
    )
    .await;
    w.knobs(Knobs::default()).await;
    let ids: Vec<Uuid> = first.into_iter().chain(second).collect();
    w.all_published(ids.len(), Duration::from_secs(60)).await;
    assert_eq!(w.audit(&ids).await, clean(ids.len()));
    assert_eq!(
        count(
            &w.pool,
            "SELECT count(*) FROM post_logs WHERE action = 'reconcile' AND outcome = 'found'"
        )
        .await,
        ids.len() as i64,
        "every lost answer was found on the platform instead of posted again"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn workers_killed_every_two_seconds_lose_and_duplicate_nothing(pool: PgPool) {
    let w = World::new(
        pool,
        Knobs {
            latency_ms: 40,
            jitter_ms: 40,
            ..Knobs::default()
        },
    )
    .await;
    let fleet = w.fleet("Crashes", 400).await;
    let ids = w.due_now(&fleet, 5).await;
    assert_eq!(ids.len(), 2000);
    let args = ["--concurrency", "40"];
    let mut workers = [w.worker(&args), w.worker(&args), w.worker(&args)];
    // on a loaded machine: the time between a grant and its post's arrival varies with load
    let _hog = seeding::CpuHog::start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut victim = 0;
    let mut kills = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let done = count(
            &w.pool,
            "SELECT count(*) FROM publications WHERE state = 'published'",
        )
        .await;
        if done == ids.len() as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {} published",
            ids.len()
        );
        // SIGKILL: no chance to finish, release or record anything
        workers[victim] = w.worker(&args);
        victim = (victim + 1) % workers.len();
        kills += 1;
    }
    assert!(
        kills >= 3,
        "only {kills} workers were killed before the burst ended"
    );
    assert_eq!(w.audit(&ids).await, clean(ids.len()));
    let posts = seeding::sandbox_posts(&w.http, &w.sandbox).await.unwrap();
    let rate = autosocial_core::publishing::smoothing(Platform::Sandbox);
    assert_eq!(
        seeding::smoothing_violations(&posts, rate),
        0,
        "no account's posts arrived closer than its smoothing allows"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn workers_frozen_past_their_lease_neither_double_a_post_nor_exceed_a_limit(pool: PgPool) {
    // SIGSTOP is what a VM pause, memory pressure or a stalled disk does to a process: it stands
    // still, its jobs are rescued after their 3 s lease and run elsewhere, and then it wakes up
    // where it stood, with grants, permits and requests of seconds ago in hand.
    let w = World::new(
        pool,
        Knobs {
            latency_ms: 150,
            ..Knobs::default()
        },
    )
    .await;
    // a quota the burst runs into: 8 posts per account per 20 s (12 are due per account)
    let (window, max) = (Duration::from_secs(20), 8);
    sqlx::query(
        "INSERT INTO platform_limits (platform, window_seconds, max_posts, note)
         VALUES ('sandbox', $1, $2, 'fault test: a quota the burst runs into')",
    )
    .bind(window.as_secs() as i32)
    .bind(max as i32)
    .execute(&w.pool)
    .await
    .unwrap();
    let fleet = w.fleet("Freezes", 100).await;
    let ids = w.due_now(&fleet, 12).await;
    let args = ["--concurrency", "40"];
    let workers = [w.worker(&args), w.worker(&args), w.worker(&args)];
    let _hog = seeding::CpuHog::start().unwrap();
    let t0 = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(240);
    let (mut victim, mut freezes) = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let done = count(
            &w.pool,
            "SELECT count(*) FROM publications WHERE state = 'published'",
        )
        .await;
        eprintln!(
            "{:.1?}: {done} of {} published after {freezes} freezes",
            t0.elapsed(),
            ids.len()
        );
        if done == ids.len() as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {} published",
            ids.len()
        );
        let pid = workers[victim].0.id();
        seeding::signal(pid, "STOP").unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        seeding::signal(pid, "CONT").unwrap();
        freezes += 1;
        victim = (victim + 1) % workers.len();
    }
    assert!(
        freezes >= 3,
        "only {freezes} freezes before the burst ended"
    );
    assert_eq!(w.audit(&ids).await, clean(ids.len()));
    let posts = seeding::sandbox_posts(&w.http, &w.sandbox).await.unwrap();
    let rate = autosocial_core::publishing::smoothing(Platform::Sandbox);
    assert_eq!(
        seeding::smoothing_violations(&posts, rate),
        0,
        "no account's posts arrived closer than its smoothing allows"
    );
    assert_eq!(
        seeding::quota_violations(&posts, window, max),
        0,
        "no account had more than {max} posts arrive within {window:?}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn terminated_database_connections_are_survived(pool: PgPool) {
    let w = World::new(
        pool,
        Knobs {
            latency_ms: 30,
            ..Knobs::default()
        },
    )
    .await;
    // 10 per account: the smoothing (burst 5, then 1/s) spreads the burst over seconds
    let fleet = w.fleet("Pg faults", 100).await;
    let ids = w.due_now(&fleet, 10).await;
    let _a = w.worker(&["--concurrency", "30"]);
    let _b = w.worker(&["--concurrency", "30"]);
    let db_name = w.db.rsplit('/').next().unwrap().to_owned();
    for round in 0..3 {
        wait_until(
            &w.pool,
            "SELECT least(count(*), 1) FROM publications WHERE state = 'published'",
            1,
            Duration::from_secs(30),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND application_name = 'autosocial') t",
        )
        .bind(&db_name)
        .fetch_one(&w.pool)
        .await
        .unwrap();
        assert!(killed > 0, "the workers had connections to terminate");
        if round == 0 {
            let done = count(
                &w.pool,
                "SELECT count(*) FROM publications WHERE state = 'published'",
            )
            .await;
            assert!(
                done < ids.len() as i64,
                "the burst was over before the fault"
            );
        }
    }
    w.all_published(ids.len(), Duration::from_secs(90)).await;
    assert_eq!(w.audit(&ids).await, clean(ids.len()));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_redis_outage_exceeds_no_limit_and_publishing_resumes_by_itself(pool: PgPool) {
    let mut redis = PrivateRedis::start();
    let mut w = World::new(
        pool,
        Knobs {
            latency_ms: 20,
            ..Knobs::default()
        },
    )
    .await;
    w.redis_url = redis.url();
    // 10 posts per account due at once: the smoothing (burst 5, then 1/s) spreads them over
    // seconds, across both workers, while Redis goes away and comes back
    let fleet = w.fleet("Redis outage", 40).await;
    let ids = w.due_now(&fleet, 10).await;
    let _a = w.worker(&["--concurrency", "40"]);
    let _b = w.worker(&["--concurrency", "40"]);
    wait_until(
        &w.pool,
        "SELECT least(count(*), 1) FROM publications WHERE state = 'published'",
        1,
        Duration::from_secs(30),
    )
    .await;
    redis.stop();
    let done = count(
        &w.pool,
        "SELECT count(*) FROM publications WHERE state = 'published'",
    )
    .await;
    assert!(
        done < ids.len() as i64,
        "the burst was over before Redis stopped"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart();
    w.all_published(ids.len(), Duration::from_secs(90)).await;
    assert_eq!(w.audit(&ids).await, clean(ids.len()));
    let rate = autosocial_core::publishing::smoothing(Platform::Sandbox);
    let posts = seeding::sandbox_posts(&w.http, &w.sandbox).await.unwrap();
    let violations = seeding::smoothing_violations(&posts, rate);
    assert_eq!(violations, 0, "no account got more than its bucket allows");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn platform_refusals_wait_retry_or_fail_as_the_platform_says(pool: PgPool) {
    let w = World::new(pool, Knobs::default()).await;
    let fleet = w.fleet("Refusals", 2).await;
    // 429 with Retry-After: 3 s, for the first requests
    w.knobs(Knobs {
        rate_limit_rate: 1.0,
        retry_after_secs: 3,
        ..Knobs::default()
    })
    .await;
    let limited = w
        .due_now(
            &Fleet {
                agency: fleet.agency,
                accounts: fleet.accounts[..1].to_vec(),
            },
            1,
        )
        .await;
    let _a = w.worker(&[]);
    wait_until(
        &w.pool,
        "SELECT count(*) FROM post_logs WHERE outcome = 'rate_limited'",
        1,
        Duration::from_secs(20),
    )
    .await;
    w.knobs(Knobs::default()).await;
    w.all_published(1, Duration::from_secs(20)).await;
    let arrivals: Vec<u128> = w
        .ledger("platform=sandbox&outcome=arrived")
        .await
        .into_iter()
        .filter(|e| e["endpoint"] == "POST /v1/posts")
        .map(|e| e["at_us"].as_u64().unwrap() as u128)
        .collect();
    assert!(arrivals.len() >= 2);
    let gap = arrivals[arrivals.len() - 1] - arrivals[arrivals.len() - 2];
    assert!(
        gap >= 3_000_000,
        "the retry came {gap} µs after the 429, before Retry-After"
    );

    // 5xx: retried with backoff until it works
    w.knobs(Knobs {
        error_rate: 1.0,
        ..Knobs::default()
    })
    .await;
    let flaky = w
        .due_now(
            &Fleet {
                agency: fleet.agency,
                accounts: fleet.accounts[1..].to_vec(),
            },
            1,
        )
        .await;
    wait_until(
        &w.pool,
        "SELECT count(*) FROM post_logs WHERE outcome = 'transient'",
        2,
        Duration::from_secs(20),
    )
    .await;
    w.knobs(Knobs::default()).await;
    w.all_published(2, Duration::from_secs(30)).await;

    // a refusal on the merits fails at once, with the platform's message kept (due in a
    // moment: the worker must not take it before its text is emptied)
    let soon: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now() + interval '2 seconds'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    let refused = seeding::due_publications(
        &w.pool,
        &Fleet {
            agency: fleet.agency,
            accounts: fleet.accounts[..1].to_vec(),
        },
        1,
        soon,
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE publications SET snapshot = jsonb_set(snapshot, '{text}', '\"\"') WHERE id = $1",
    )
    .bind(refused[0])
    .execute(&w.pool)
    .await
    .unwrap();
    wait_until(
        &w.pool,
        "SELECT count(*) FROM publications WHERE state = 'failed'",
        1,
        Duration::from_secs(20),
    )
    .await;
    let (error, attempts): (String, i32) =
        sqlx::query_as("SELECT last_error, attempts FROM publications WHERE id = $1")
            .bind(refused[0])
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert!(error.contains("a post needs text or media"), "{error}");
    assert_eq!(attempts, 1, "a permanent refusal is not retried");
    let all: Vec<Uuid> = limited.into_iter().chain(flaky).collect();
    assert_eq!(w.audit(&all).await, clean(2));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn nothing_reaches_the_platform_after_a_kill_switch_is_engaged(pool: PgPool) {
    use autosocial_core::audit::Actor;
    use autosocial_core::killswitch::{self, Target};
    let w = World::new(
        pool,
        Knobs {
            latency_ms: 100,
            ..Knobs::default()
        },
    )
    .await;
    let fleet = w.fleet("Switches", 60).await;
    let redis = autosocial_core::redis::connect(&w.redis_url.clone().into())
        .await
        .unwrap();
    let _a = w.worker(&["--concurrency", "20"]);
    let _b = w.worker(&["--concurrency", "20"]);
    let published = |ids: Vec<Uuid>| {
        let pool = w.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM publications WHERE state = 'published' AND id = ANY($1)",
            )
            .bind(ids)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let mut all = Vec::new();
    let mut mid_burst = 0;
    for trial in 0..20 {
        // 120 posts at 100 ms each through 40 slots: a burst of several rounds
        let ids = w.due_now(&fleet, 2).await;
        all.extend(ids.iter().copied());
        // engage once the burst is under way (a little later each trial)
        let started = Instant::now();
        while published(ids.clone()).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "trial {trial} never started"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(10 * trial)).await;
        let switch = killswitch::engage(
            &w.pool,
            Some(&redis),
            Duration::from_secs(5),
            &Actor::system("test"),
            Target::Agency(fleet.agency),
            "trial",
        )
        .await
        .unwrap();
        let returned = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        if published(ids.clone()).await < ids.len() as i64 {
            mid_burst += 1;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let late: Vec<serde_json::Value> = w
            .ledger(&format!(
                "platform=sandbox&outcome=arrived&since_us={returned}"
            ))
            .await
            .into_iter()
            .filter(|e| e["endpoint"] == "POST /v1/posts" || e["endpoint"] == "GET /v1/posts")
            .collect();
        assert!(
            late.is_empty(),
            "trial {trial}: {} requests arrived after the engage returned",
            late.len()
        );
        killswitch::disengage(&w.pool, Some(&redis), &Actor::system("test"), switch)
            .await
            .unwrap();
        w.all_published(all.len(), Duration::from_secs(30)).await;
    }
    assert!(
        mid_burst >= 15,
        "only {mid_burst} of 20 engages came in the middle of a burst"
    );
    // the ledger's arrival stamps name the publish requests the check above looks for
    let arrivals = w
        .ledger("platform=sandbox&outcome=arrived")
        .await
        .into_iter()
        .filter(|e| e["endpoint"] == "POST /v1/posts")
        .count();
    assert!(
        arrivals >= all.len(),
        "{arrivals} publish arrivals for {} posts",
        all.len()
    );
    assert_eq!(w.audit(&all).await, clean(all.len()));
}

/// An image post: the publication carries a content-addressed card; the worker hands the
/// platform a signed, expiring link to the console, which serves it only with a valid
/// signature; the sandbox (like Instagram) fetches it before accepting the post.
#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_image_reaches_the_platform_through_a_signed_link(pool: PgPool) {
    let w = World::new(pool, Knobs::default()).await;
    let fleet = w.fleet("Images", 1).await;
    let (client, account) = fleet.accounts[0];
    // the console, serving /media from its media directory, with the workers' vault
    let media_dir = tempfile::tempdir().unwrap();
    let mut png = Vec::new();
    image::RgbaImage::from_pixel(8, 8, image::Rgba([200, 30, 30, 255]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (path, sha) =
        autosocial_core::content::cards::store(media_dir.path(), &png, "png").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}/", listener.local_addr().unwrap());
    let mut web = autosocial_admin::config::WebArgs::for_tests();
    web.media_dir = media_dir.path().to_owned();
    web.public_url = url::Url::parse(&public).unwrap();
    let redis = autosocial_core::redis::connect(&w.redis_url.clone().into())
        .await
        .unwrap();
    let state = autosocial_admin::app::AppState::new(w.pool.clone(), redis, vault(), web);
    tokio::spawn(async move {
        axum::serve(listener, autosocial_admin::app::router(state))
            .await
            .unwrap();
    });

    let media = Uuid::now_v7();
    let item = Uuid::now_v7();
    let mut tx = w.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO media_assets (id, agency_id, client_id, sha256, path, mime, width, height, bytes, purpose) VALUES ($1, $2, $3, $4, $5, 'image/png', 8, 8, $6, 'card')")
        .bind(media).bind(fleet.agency).bind(client).bind(sha.to_vec()).bind(&path).bind(png.len() as i64)
        .execute(&mut *tx).await.unwrap();
    sqlx::query("INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, caption, moderation_status) VALUES ($1, $2, $3, 'manual', 'pending_review', now(), 'image', 'A red square', 'pass')")
        .bind(item).bind(fleet.agency).bind(client)
        .execute(&mut *tx).await.unwrap();
    sqlx::query(
        "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
    )
    .bind(item)
    .bind(account)
    .bind(fleet.agency)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO content_item_media (item_id, media_id, agency_id, size_label) VALUES ($1, $2, $3, 'instagram_square')")
        .bind(item).bind(media).bind(fleet.agency)
        .execute(&mut *tx).await.unwrap();
    assert_eq!(
        autosocial_core::publishing::approve(&mut tx, fleet.agency, item, None, None)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();

    // unsigned, tampered or expired links are refused
    let plain = w
        .http
        .get(format!("{public}media/{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 403);
    let forged = w
        .http
        .get(format!("{public}media/{path}?exp=9999999999&sig=00"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let expired = autosocial_core::media::sign(
        &vault(),
        &url::Url::parse(&public).unwrap(),
        &path,
        1000,
        Duration::from_secs(60),
    );
    assert_eq!(w.http.get(expired).send().await.unwrap().status(), 403);

    let _worker = w.worker_with(&[], &[("AUTOSOCIAL_PUBLIC_URL", &public)]);
    w.all_published(1, Duration::from_secs(30)).await;
    let posts: Vec<serde_json::Value> = w
        .http
        .get(w.sandbox.join("/_sandbox/posts").unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media_url = posts[0]["media"][0].as_str().unwrap();
    assert!(
        media_url.starts_with(&format!("{public}media/{path}?exp=")),
        "{media_url}"
    );
    assert_eq!(posts[0]["text"], "A red square");
}
