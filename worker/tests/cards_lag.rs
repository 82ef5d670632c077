//! A week of image items generated at once (dozens of `generate` jobs rendering cards in five
//! platform sizes each) leaves the queue's start lag as it is: jobs due meanwhile start on
//! time. The worker binary runs as deployed (a multi-threaded runtime, `generate` allowed ¾ of
//! the process's concurrency); cards render on the blocking pool, one per core at a time.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use autosocial_core::content::generate::generate_job;
use autosocial_core::domain::ItemState;
use autosocial_core::queue::{self, NewJob, RunAt};
use autosocial_core::testing::{build, database_url, wait_until};
use chrono::{TimeDelta, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const WORKER: &str = env!("CARGO_BIN_EXE_autosocial-worker");
const KEY: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One client with an account on each platform whose card size differs, a brand, and a week of
/// image items (two a day) waiting to be generated.
async fn a_week_of_image_items(pool: &PgPool) -> (Uuid, Uuid, Vec<Uuid>) {
    let (agency, client) = autosocial_core::testing::tenant(pool).await;
    sqlx::query(
        r##"INSERT INTO brand_settings (client_id, agency_id, voice, tone, pillars, ctas, hashtag_sets, handle)
           VALUES ($1, $2, 'Warm and practical', 'friendly', ARRAY['Home energy savings', 'Solar myths'],
                   ARRAY['Book a free survey today.'], '{"energy": ["#Energy", "#HomeEnergy"]}'::jsonb, '@acme')"##,
    )
    .bind(client)
    .bind(agency)
    .execute(pool)
    .await
    .unwrap();
    let mut accounts = Vec::new();
    for platform in ["instagram", "tiktok", "x", "linkedin", "facebook"] {
        let id = build::account(agency, client)
            .platform(platform.parse().unwrap())
            .tokens(vec![0], None, "test")
            .insert(pool)
            .await;
        accounts.push(id);
    }
    let mut items = Vec::new();
    for slot in 0..14 {
        let id = build::item(agency, client)
            .generated()
            .state(ItemState::Planned)
            .slot_at(Utc::now() + TimeDelta::days(1) + TimeDelta::hours(12 * slot))
            .content_type("image")
            .targets(&accounts)
            .insert(pool)
            .await;
        items.push(id);
    }
    (agency, client, items)
}

/// `n` no-op jobs due every `every` from `first` on; returns their tag.
async fn timed_noops(pool: &PgPool, tag: &str, n: u64, first: Duration, every: Duration) {
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| {
            NewJob::new("noop", json!({ "tag": tag })).run_at(RunAt::In(first + every * i as u32))
        })
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    queue::enqueue_many(&mut conn, &jobs).await.unwrap();
}

/// Start lags in ms of the no-op jobs tagged `tag`, sorted.
async fn lags(pool: &PgPool, tag: &str) -> Vec<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM started_at - run_at)::float8 * 1000 FROM jobs
         WHERE kind = 'noop' AND payload->>'tag' = $1 ORDER BY 1",
    )
    .bind(tag)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_due_job_starts_on_time_while_a_weeks_cards_render(pool: PgPool) {
    let db = database_url(&pool).await;
    let media = tempfile::tempdir().unwrap();
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/../templates");
    let (agency, client, items) = a_week_of_image_items(&pool).await;
    let _worker = Worker(
        Command::new(WORKER)
            .args(["run", "--kinds", "generate,noop", "--concurrency", "64"])
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .env("DATABASE_URL", &db)
            .env("REDIS_URL", autosocial_core::testing::redis_url())
            .env("AUTOSOCIAL_KEYS", KEY)
            .env("AUTOSOCIAL_MEDIA_DIR", media.path())
            .env("AUTOSOCIAL_TEMPLATES_DIR", templates)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    // the lag of an idle worker, for comparison
    timed_noops(
        &pool,
        "idle",
        20,
        Duration::from_secs(2),
        Duration::from_millis(100),
    )
    .await;
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'noop' AND state = 'completed'",
        20,
        Duration::from_secs(30),
    )
    .await;
    let idle = lags(&pool, "idle").await;

    // a week of items at once, and jobs falling due every 50 ms while their cards render (the
    // 40 fall due within 2.3 s; the cards take 4 to 5 s on 2 CPUs, so every one falls due
    // while they render: at 100 ms apart the last ones sometimes came after)
    let generate: Vec<NewJob> = items
        .iter()
        .map(|i| generate_job(agency, client, *i))
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    queue::enqueue_many(&mut conn, &generate).await.unwrap();
    drop(conn);
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'generate' AND state = 'running'",
        items.len() as i64,
        Duration::from_secs(30),
    )
    .await;
    timed_noops(
        &pool,
        "busy",
        40,
        Duration::from_millis(300),
        Duration::from_millis(50),
    )
    .await;
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'noop' AND state = 'completed'",
        60,
        Duration::from_secs(60),
    )
    .await;
    let still_rendering: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'generate' AND state = 'running'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    wait_until(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'generate' AND state = 'completed'",
        items.len() as i64,
        Duration::from_secs(300),
    )
    .await;
    let generated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM content_items WHERE agency_id = $1 AND state = 'pending_review'",
    )
    .bind(agency)
    .fetch_one(&pool)
    .await
    .unwrap();
    // identical cards (the same headline) are stored once: count each item's sizes
    let cards: i64 =
        sqlx::query_scalar("SELECT count(*) FROM content_item_media WHERE agency_id = $1")
            .bind(agency)
            .fetch_one(&pool)
            .await
            .unwrap();
    let busy = lags(&pool, "busy").await;
    eprintln!(
        "start lag ms, idle: p50 {:.1} p99 {:.1} max {:.1}; while {} items' cards rendered \
         ({still_rendering} still rendering when the last timed job had started): p50 {:.1} p99 {:.1} max {:.1}",
        pct(&idle, 0.5),
        pct(&idle, 0.99),
        idle[idle.len() - 1],
        items.len(),
        pct(&busy, 0.5),
        pct(&busy, 0.99),
        busy[busy.len() - 1],
    );
    assert!(
        still_rendering > 0,
        "the timed jobs fell due while cards were rendering"
    );
    assert_eq!(generated, items.len() as i64, "every item was generated");
    assert_eq!(cards, items.len() as i64 * 5, "five card sizes per item");
    // unaffected: the bulk of due jobs start as on the idle worker (the queue's own target is
    // 50 ms); the p90 rather than the maximum, as one stall of a shared machine is no regression
    assert!(
        pct(&busy, 0.5) <= pct(&idle, 0.5) + 20.0 && pct(&busy, 0.5) < 50.0,
        "median start lag while cards render: {busy:?} (idle: {idle:?})"
    );
    assert!(
        pct(&busy, 0.9) <= pct(&idle, 0.9).max(50.0) + 50.0,
        "p90 start lag while cards render: {busy:?} (idle: {idle:?})"
    );
}
