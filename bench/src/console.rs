//! `autosocial-bench console`: the console's busiest pages under load on a large agency. Seeds one agency with
//! `clients` clients (one account each) and `items` content items over ±60 days (states by
//! time: past ones mostly published, future ones waiting for review or scheduled), with a
//! publication for the share of items that reached approval and a post log row per attempt;
//! starts the release `autosocial-admin serve` with a logged-in owner session; drives each page
//! with `wrk` (50 connections, ~10 s) and reports requests/s and p99 per page.
//!
//! The seeded database (`autosocial_bench_console`) is kept between runs and reused when it
//! holds the same counts (`--reseed` forces a new one); migrations are applied either way.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::harness::{Proc, with_db};

pub struct Args {
    pub database_url: String,
    pub redis_url: String,
    pub clients: i64,
    pub items: i64,
    pub connections: u32,
    pub seconds: u32,
    pub reseed: bool,
    pub admin_bin: Option<String>,
}

const DB: &str = "autosocial_bench_console";
/// The pages measured: (JSON name, path).
const PAGES: &[(&str, &str)] = &[
    ("dashboard", "/"),
    ("clients", "/clients"),
    ("review", "/review"),
    ("calendar", "/calendar"),
];
const TARGET_P99_MS: f64 = 50.0;

/// wrk reports its figures through this script: one JSON line at the end.
const WRK_SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"socket_errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The seeded counts, when the database exists and was seeded completely.
async fn seeded(url: &str) -> Option<(i64, i64)> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .ok()?;
    sqlx::query_as("SELECT clients, items FROM bench_console_meta")
        .fetch_one(&pool)
        .await
        .ok()
}

/// Bulk seed with set-based SQL (generate_series); returns when ANALYZE is done.
async fn seed(pool: &PgPool, clients: i64, items: i64, password_hash: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let agency = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO agencies (id, name) VALUES ($1, 'Bench Agency')")
        .bind(agency)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO agency_settings (agency_id) VALUES ($1)")
        .bind(agency)
        .execute(&mut *tx)
        .await?;
    let user = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, 'owner@bench.test', 'Bench Owner', $2)",
    )
    .bind(user)
    .bind(password_hash)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO memberships (agency_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(agency)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    // clients: mostly active, a few paused or archived, in a handful of zones
    sqlx::query(
        "INSERT INTO clients (id, agency_id, name, status, timezone, created_at)
         SELECT gen_random_uuid(), $1, 'Client ' || lpad(g::text, 6, '0'),
                CASE WHEN g % 50 = 0 THEN 'paused' WHEN g % 97 = 0 THEN 'archived' ELSE 'active' END,
                (ARRAY['Europe/Berlin', 'Europe/London', 'America/New_York', 'Asia/Tokyo', 'Australia/Sydney'])[1 + (g % 5)::int],
                now() - make_interval(days => (g % 365)::int)
         FROM generate_series(1, $2) g",
    )
    .bind(agency)
    .bind(clients)
    .execute(&mut *tx)
    .await?;
    // one account per client; the token columns hold opaque bytes (pages never decrypt them)
    sqlx::query(
        "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, display_name, access_token_ct, key_id, status)
         SELECT gen_random_uuid(), $1, c.id,
                (ARRAY['facebook', 'instagram', 'linkedin', 'x', 'tiktok'])[1 + (row_number() OVER (ORDER BY c.id))::int % 5],
                'acct-' || c.id, c.name || ' page', '\\x00'::bytea, 'bench',
                CASE WHEN random() < 0.02 THEN 'needs_reconnect' ELSE 'active' END
         FROM clients c WHERE c.agency_id = $1",
    )
    .bind(agency)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    println!(
        "  {clients} clients and accounts ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );

    // items: spread evenly over the clients and over ±60 days; the state follows the time
    let t1 = Instant::now();
    sqlx::query(
        "CREATE UNLOGGED TABLE bench_clients AS
         SELECT row_number() OVER (ORDER BY c.id) - 1 AS n, c.id AS client_id, a.id AS account_id, a.platform
         FROM clients c JOIN social_accounts a ON a.client_id = c.id WHERE c.agency_id = $1",
    )
    .bind(agency)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, pillar, caption, hashtags,
                                    moderation_status, rejection_reason, approved_at, approved_by, created_at, updated_at)
         SELECT id, $1, client_id, CASE WHEN g % 10 = 0 THEN 'manual' ELSE 'generated' END, state, slot_at,
                (ARRAY['text', 'image', 'link'])[1 + (g % 3)::int], 'Pillar ' || (g % 7),
                'Post number ' || g || ': fresh news from the shop, told in a friendly voice.',
                ARRAY['#bench', '#autosocial'],
                CASE WHEN state = 'pending_review' AND g % 40 = 0 THEN 'blocked' WHEN state = 'planned' THEN 'pending' ELSE 'pass' END,
                CASE WHEN state = 'rejected' THEN 'Off brand' END,
                CASE WHEN state IN ('approved', 'published', 'partially_published', 'failed') THEN slot_at - interval '1 day' END,
                CASE WHEN state IN ('approved', 'published', 'partially_published', 'failed') THEN $3::uuid END,
                slot_at - interval '3 days', slot_at - interval '2 days'
         FROM (
             SELECT g, gen_random_uuid() AS id, c.client_id, s.slot_at,
                    CASE
                        WHEN s.slot_at < now() THEN
                            CASE WHEN r < 0.27 THEN 'published' WHEN r < 0.30 THEN 'failed'
                                 WHEN r < 0.50 THEN 'rejected' ELSE 'cancelled' END
                        ELSE
                            CASE WHEN r < 0.30 THEN 'approved' WHEN r < 0.35 THEN 'pending_review'
                                 WHEN r < 0.40 THEN 'planned' WHEN r < 0.60 THEN 'rejected' ELSE 'cancelled' END
                    END AS state
             FROM generate_series(1, $2) g
             CROSS JOIN LATERAL (SELECT now() - interval '60 days' + (g::float8 / $2) * interval '120 days'
                                        + make_interval(mins => ((g * 37) % 600)::int) AS slot_at, random() AS r) s
             JOIN bench_clients c ON c.n = g % (SELECT count(*) FROM bench_clients)
         ) x",
    )
    .bind(agency)
    .bind(items)
    .bind(user)
    .execute(pool)
    .await?;
    println!(
        "  {items} content items ({:.1} s)",
        t1.elapsed().as_secs_f64()
    );

    let t2 = Instant::now();
    sqlx::query(
        "INSERT INTO content_item_targets (item_id, account_id, agency_id)
         SELECT i.id, a.id, $1 FROM content_items i JOIN social_accounts a ON a.client_id = i.client_id
         WHERE i.agency_id = $1",
    )
    .bind(agency)
    .execute(pool)
    .await?;
    // three variants for the items waiting for review
    sqlx::query(
        "INSERT INTO content_variants (item_id, agency_id, kind, caption, hashtags, moderation_status)
         SELECT i.id, $1, k, i.caption || ' (' || k || ')', i.hashtags, i.moderation_status
         FROM content_items i CROSS JOIN unnest(ARRAY['conservative', 'balanced', 'bold']) k
         WHERE i.agency_id = $1 AND i.state = 'pending_review'",
    )
    .bind(agency)
    .execute(pool)
    .await?;
    // a publication for every item that got approved (about 30 %)
    sqlx::query(
        "INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, state, scheduled_at, snapshot,
                                   attempt_id, attempts, marker, platform_post_id, platform_post_url, published_at, last_error,
                                   created_at, updated_at)
         SELECT gen_random_uuid(), $1, i.client_id, i.id, a.id, a.platform,
                CASE i.state WHEN 'approved' THEN 'scheduled' WHEN 'failed' THEN 'failed' ELSE 'published' END,
                i.slot_at,
                jsonb_build_object('caption', i.caption, 'hashtags', i.hashtags, 'media', '[]'::jsonb, 'text', i.caption),
                CASE WHEN i.state <> 'approved' THEN gen_random_uuid() END,
                CASE WHEN i.state = 'approved' THEN 0 ELSE 1 END,
                CASE WHEN i.state <> 'approved' THEN 'as-' || left(md5(i.id::text), 16) END,
                CASE WHEN i.state = 'published' THEN 'post-' || left(md5(i.id::text), 20) END,
                CASE WHEN i.state = 'published' THEN 'https://example.invalid/p/' || left(md5(i.id::text), 20) END,
                CASE WHEN i.state = 'published' THEN i.slot_at + interval '2 seconds' END,
                CASE WHEN i.state = 'failed' THEN 'permanent: the platform refused the post' END,
                i.approved_at, i.slot_at
         FROM content_items i JOIN social_accounts a ON a.client_id = i.client_id
         WHERE i.agency_id = $1 AND i.state IN ('approved', 'published', 'failed')",
    )
    .bind(agency)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO post_logs (agency_id, publication_id, attempt_id, action, outcome, status_code, latency_ms, error, created_at)
         SELECT $1, p.id, p.attempt_id, 'publish', CASE p.state WHEN 'published' THEN 'published' ELSE 'permanent' END,
                CASE p.state WHEN 'published' THEN 200 ELSE 400 END, 150 + (abs(hashtext(p.id::text)) % 400),
                p.last_error, p.scheduled_at + interval '1 second'
         FROM publications p WHERE p.agency_id = $1 AND p.state IN ('published', 'failed')",
    )
    .bind(agency)
    .execute(pool)
    .await?;
    println!(
        "  targets, variants, publications, post logs ({:.1} s)",
        t2.elapsed().as_secs_f64()
    );
    sqlx::query("DROP TABLE bench_clients")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE bench_console_meta (clients bigint NOT NULL, items bigint NOT NULL)")
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO bench_console_meta VALUES ($1, $2)")
        .bind(clients)
        .bind(items)
        .execute(pool)
        .await?;
    let t3 = Instant::now();
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    println!("  vacuum analyze ({:.1} s)", t3.elapsed().as_secs_f64());
    Ok(())
}

/// A session for the owner, stored the way the console stores logins: only the token's hash.
async fn session(pool: &PgPool) -> anyhow::Result<String> {
    let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let csrf = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, agency_id, csrf_token, expires_at)
         SELECT $1, m.user_id, m.agency_id, $2, now() + interval '12 hours'
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = 'owner@bench.test'",
    )
    .bind(autosocial_core::secret::token_hash(&token))
    .bind(csrf)
    .execute(pool)
    .await?;
    Ok(token)
}

pub(crate) fn admin_binary(given: Option<String>) -> anyhow::Result<std::path::PathBuf> {
    let path = match given {
        Some(p) => p.into(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark binary's directory")?
            .join("autosocial-admin"),
    };
    anyhow::ensure!(
        path.is_file(),
        "{} not found: build it (cargo build --release -p autosocial-admin) or pass --admin-bin",
        path.display()
    );
    Ok(path)
}

/// One page under wrk: (rps, p99 ms, p50 ms, requests).
fn measure(url: &str, cookie: &str, connections: u32, seconds: u32) -> anyhow::Result<Value> {
    wrk(
        url,
        &[format!("Cookie: {cookie}"), "Accept: text/html".into()],
        "",
        connections,
        seconds,
    )
}

/// `url` under wrk with these headers (and `lua` before the reporting script, e.g. a `request`
/// function that makes each request): rps, p50, p99 and max ms, requests, non-2xx answers and
/// socket errors.
pub(crate) fn wrk(
    url: &str,
    headers: &[String],
    lua: &str,
    connections: u32,
    seconds: u32,
) -> anyhow::Result<Value> {
    let script = std::env::temp_dir().join(format!(
        "autosocial-bench-wrk-{}-{}.lua",
        std::process::id(),
        Uuid::new_v4().simple()
    ));
    std::fs::write(&script, format!("{lua}\n{WRK_SCRIPT}"))?;
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", connections.clamp(1, 2)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout=5s");
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg("-s")
        .arg(&script)
        .arg(url)
        .output()
        .context("running wrk (deploy/dev bench installs it; apt-get install wrk)")?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("wrk printed no summary")?;
    let r: Value = serde_json::from_str(line)?;
    let requests = r["requests"].as_f64().unwrap_or(0.0);
    let secs = r["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "rps": round(requests / secs),
        "p99_ms": round(r["p99_us"].as_f64().unwrap_or(0.0) / 1000.0),
        "p50_ms": round(r["p50_us"].as_f64().unwrap_or(0.0) / 1000.0),
        "max_ms": round(r["max_us"].as_f64().unwrap_or(0.0) / 1000.0),
        "requests": r["requests"],
        "non2xx": r["non2xx"],
        "socket_errors": r["socket_errors"],
    }))
}

/// The benchmark database (`autosocial_bench_console`) with `clients` clients and `items`
/// items, migrated: the kept one when it holds these counts (unless `reseed`), else seeded
/// anew. Shared with the API benchmark, which measures the same data.
pub(crate) async fn seeded_database(
    database_url: &str,
    clients: i64,
    items: i64,
    reseed: bool,
) -> anyhow::Result<(PgPool, String)> {
    anyhow::ensure!(
        clients > 0 && items >= clients,
        "--items must be at least --clients"
    );
    let url = with_db(database_url, DB)?;
    let server = PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let reuse = !reseed && seeded(&url).await == Some((clients, items));
    if !reuse {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
            .execute(&server)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {DB}"))
            .execute(&server)
            .await?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;
    autosocial_core::db::MIGRATOR.run(&pool).await?;
    if reuse {
        println!("reusing {DB} ({clients} clients, {items} items; --reseed for a new one)");
        sqlx::query("ANALYZE").execute(&pool).await?;
    } else {
        println!("seeding {DB}: {clients} clients, {items} items");
        let hash = autosocial_core::password::hash(&Uuid::new_v4().to_string())?;
        seed(&pool, clients, items, &hash).await?;
    }
    Ok((pool, url))
}

/// The release console serving `url` on a free port, ready (its `/readyz` answered): the
/// process (stopped when dropped) and its base URL.
pub(crate) async fn start_admin(
    admin_bin: &std::path::Path,
    url: &str,
    redis_url: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let key = autosocial_core::vault::Vault::generate_entry("bench");
    let log = std::env::temp_dir().join(format!("autosocial-bench-admin-{port}.log"));
    let mut cmd = Command::new(admin_bin);
    cmd.arg("serve")
        .env("DATABASE_URL", url)
        .env("REDIS_URL", redis_url)
        .env("AUTOSOCIAL_KEYS", key)
        .env("AUTOSOCIAL_ADMIN_LISTEN", format!("127.0.0.1:{port}"))
        .env("AUTOSOCIAL_PUBLIC_URL", &base)
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let admin = Proc(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", admin_bin.display()))?,
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the console did not become ready within 60 s (log: {})",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((admin, base))
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let admin_bin = admin_binary(a.admin_bin.clone())?;
    let (pool, url) = seeded_database(&a.database_url, a.clients, a.items, a.reseed).await?;
    sqlx::query("DELETE FROM sessions").execute(&pool).await?;
    let token = session(&pool).await?;
    let cookie = format!("autosocial_session={token}");

    let (admin, base) = start_admin(&admin_bin, &url, &a.redis_url, &[]).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let mut pages = serde_json::Map::new();
    let mut missed = Vec::new();
    for (name, path) in PAGES {
        let page = format!("{base}{path}");
        // the page must answer 200 to this session: a redirect to the login or a 404 measures nothing
        let t = Instant::now();
        let r = http.get(&page).header("cookie", &cookie).send().await?;
        let status = r.status();
        let bytes = r.bytes().await?.len();
        if !status.is_success() {
            println!("{name:<10} {path:<10} answered {status}: not measured");
            pages.insert(
                (*name).into(),
                json!({ "error": format!("HTTP {}", status.as_u16()) }),
            );
            missed.push(*name);
            continue;
        }
        println!(
            "{name:<10} {path:<10} first answer {:.1} ms, {bytes} bytes; {} connections for {} s ...",
            t.elapsed().as_secs_f64() * 1000.0,
            a.connections,
            a.seconds
        );
        let m = measure(&page, &cookie, a.connections, a.seconds)?;
        let p99 = m["p99_ms"].as_f64().unwrap_or(f64::MAX);
        println!(
            "{name:<10} {:>8.1} req/s  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  non-2xx {}  socket errors {}{}",
            m["rps"].as_f64().unwrap_or(0.0),
            m["p50_ms"].as_f64().unwrap_or(0.0),
            p99,
            m["max_ms"].as_f64().unwrap_or(0.0),
            m["non2xx"],
            m["socket_errors"],
            if p99 > TARGET_P99_MS {
                "  (over the 50 ms target)"
            } else {
                ""
            }
        );
        if p99 > TARGET_P99_MS || m["non2xx"].as_u64() != Some(0) {
            missed.push(*name);
        }
        pages.insert(
            (*name).into(),
            json!({ "rps": m["rps"], "p99_ms": m["p99_ms"], "p50_ms": m["p50_ms"], "non2xx": m["non2xx"] }),
        );
    }
    drop(admin);
    if !missed.is_empty() {
        println!(
            "pages over the p99 target of {TARGET_P99_MS} ms or with errors: {}",
            missed.join(", ")
        );
    }
    println!(
        "{}",
        json!({
            "bench": "console",
            "clients": a.clients,
            "items": a.items,
            "connections": a.connections,
            "seconds": a.seconds,
            "target_p99_ms": TARGET_P99_MS,
            "pages": pages,
        })
    );
    Ok(())
}
