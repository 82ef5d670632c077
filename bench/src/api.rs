//! `autosocial-bench api`: the JSON API under load on the console benchmark's data (one agency,
//! `clients` clients with an account each, `items` items; the same kept database,
//! `autosocial_bench_console`, seeded by [`crate::console`]). Starts the release
//! `autosocial-admin serve` with a rate limit out of the way, creates an API key of the agency,
//! and drives with `wrk` at `connections` connections, each measurement after
//! [`WARM_UP_SECS`] of the same load that is not counted (the console's statements are
//! prepared on each pooled connection at first use, and its pool opens as demand grows):
//!
//! - list items: `GET /api/v1/items` (a page of 50, newest first), p99 (target ≤ 20 ms);
//! - create item: `POST /api/v1/items`, posts written by hand for the clients with an active
//!   account in turn, requests/s (target ≥ 1,000), every answer a 201;
//! - event → webhook receiver p99 (target ≤ 1 s): [`event_to_webhook`], items created at a
//!   steady pace, each `item.created` delivered by a worker to a receiver on 127.0.0.1.
//!
//! The items it created and its key are removed afterwards, so the kept database still holds
//! the counts it was seeded with.

use anyhow::Context;
use chrono::{Duration as Days, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::api_keys::{self, NewKey};
use autosocial_core::audit::Actor;
use autosocial_core::domain::Role;

use crate::console::{admin_binary, seeded_database, start_admin, wrk};
use crate::harness::percentile;

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

const LIST_P99_TARGET_MS: f64 = 20.0;
const CREATE_TARGET_PER_S: f64 = 1000.0;
const WEBHOOK_P99_TARGET_MS: f64 = 1000.0;
/// The caption that marks the items this benchmark created (removed afterwards).
const CAPTION: &str = "API bench post";
/// Seconds of each load run, uncounted, before it is measured.
const WARM_UP_SECS: u32 = 2;
/// (client, account) pairs the create requests take turns over.
const CREATE_TARGETS: i64 = 500;

/// A `request` function for wrk: each call a new item for the next of `pairs`.
fn create_script(pairs: &[(Uuid, Uuid)]) -> String {
    let slot = (Utc::now() + Days::days(30)).format("%Y-%m-%dT%H:%M:%SZ");
    let list: Vec<String> = pairs
        .iter()
        .map(|(c, a)| format!("{{\"{c}\",\"{a}\"}}"))
        .collect();
    format!(
        r#"local targets = {{{}}}
local n = 0
request = function()
  n = n + 1
  local p = targets[(n % #targets) + 1]
  local body = '{{"client_id":"' .. p[1] .. '","accounts":["' .. p[2] .. '"],"slot_at":"{slot}",' ..
    '"caption":"{CAPTION} ' .. n .. ' written by the benchmark","hashtags":["bench"]}}'
  return wrk.format("POST", nil, nil, body)
end
"#,
        list.join(",")
    )
}

/// Events sent for the webhook measurement, and their pace (an agency's steady stream, not a
/// burst: the burst is what the create phase measures).
const WEBHOOK_EVENTS: usize = 400;
const WEBHOOK_EVENTS_PER_S: f64 = 40.0;

/// Event → webhook receiver, in ms: an endpoint of the agency subscribed to `item.created` at a
/// receiver on 127.0.0.1, one `autosocial-worker run --kinds webhook` beside the console (with
/// the console's vault key, to read the signing secret), and [`WEBHOOK_EVENTS`] items created
/// through the API at [`WEBHOOK_EVENTS_PER_S`]; each figure is from the instant the create
/// request was sent to the instant its signed delivery reached the receiver. Returns the sorted
/// latencies, and how many events never arrived (within 30 s of the last).
async fn event_to_webhook(
    base: &str,
    key: &str,
    worker_bin: &std::path::Path,
    url: &str,
    redis_url: &str,
    vault_key: &str,
    pairs: &[(Uuid, Uuid)],
) -> anyhow::Result<(Vec<f64>, usize)> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    type Arrivals = Arc<Mutex<HashMap<Uuid, Instant>>>;
    let arrivals: Arrivals = Arc::default();
    let receiver = {
        let arrivals = arrivals.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let arrivals = arrivals.clone();
                async move {
                    let at = Instant::now();
                    if let Some(item) = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["data"]["item_id"].as_str()?.parse::<Uuid>().ok())
                    {
                        arrivals.lock().expect("arrivals").entry(item).or_insert(at);
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let worker_log = std::env::temp_dir().join("autosocial-bench-api-worker.log");
    let worker = crate::harness::Proc(
        std::process::Command::new(worker_bin)
            .args(["run", "--kinds", "webhook"])
            .env("DATABASE_URL", url)
            .env("REDIS_URL", redis_url)
            .env("AUTOSOCIAL_KEYS", vault_key)
            .env("AUTOSOCIAL_OUTBOUND_ALLOW_PRIVATE", "true")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&worker_log)?)
            .spawn()
            .with_context(|| format!("starting {}", worker_bin.display()))?,
    );

    let http = reqwest::Client::new();
    let endpoint: Value = http
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(key)
        .json(
            &json!({"url": hook, "description": "API benchmark", "event_types": ["item.created"]}),
        )
        .send()
        .await?
        .error_for_status()
        .context("creating the benchmark's webhook endpoint")?
        .json()
        .await?;
    let endpoint_id = endpoint["id"]
        .as_str()
        .context("the endpoint's id")?
        .to_owned();

    let slot = (Utc::now() + Days::days(30)).to_rfc3339();
    let mut sent: Vec<(Uuid, Instant)> = Vec::with_capacity(WEBHOOK_EVENTS);
    let pace = Duration::from_secs_f64(1.0 / WEBHOOK_EVENTS_PER_S);
    let start = Instant::now();
    for n in 0..WEBHOOK_EVENTS {
        tokio::time::sleep_until((start + pace * n as u32).into()).await;
        let (client, account) = pairs[n % pairs.len()];
        let at = Instant::now();
        let created: Value = http
            .post(format!("{base}/api/v1/items"))
            .bearer_auth(key)
            .json(&json!({
                "client_id": client,
                "accounts": [account],
                "slot_at": slot,
                "caption": format!("{CAPTION} webhook {n} written by the benchmark"),
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("the created item's id")?;
        sent.push((id, at));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && arrivals.lock().expect("arrivals").len() < sent.len() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = arrivals.lock().expect("arrivals").clone();
    let mut ms: Vec<f64> = sent
        .iter()
        .filter_map(|(id, at)| {
            got.get(id)
                .map(|r| r.duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let missing = sent.len() - ms.len();

    http.delete(format!("{base}/api/v1/webhooks/{endpoint_id}"))
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()
        .context("deleting the benchmark's webhook endpoint")?;
    drop(worker);
    server.abort();
    Ok((ms, missing))
}

/// Remove what the benchmark wrote: its items and its key.
async fn clean_up(pool: &PgPool, key: Uuid) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    // targets go with their items (ON DELETE CASCADE)
    let items =
        sqlx::query("DELETE FROM content_items WHERE source = 'manual' AND caption LIKE $1")
            .bind(format!("{CAPTION} %"))
            .execute(&mut *tx)
            .await?
            .rows_affected();
    sqlx::query("DELETE FROM api_keys WHERE id = $1")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(items)
}

fn report(name: &str, m: &Value) {
    println!(
        "{name:<13} {:>8.1} req/s  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  non-2xx {}  socket errors {}",
        m["rps"].as_f64().unwrap_or(0.0),
        m["p50_ms"].as_f64().unwrap_or(0.0),
        m["p99_ms"].as_f64().unwrap_or(0.0),
        m["max_ms"].as_f64().unwrap_or(0.0),
        m["non2xx"],
        m["socket_errors"],
    );
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let admin_bin = admin_binary(a.admin_bin.clone())?;
    let (pool, url) = seeded_database(&a.database_url, a.clients, a.items, a.reseed).await?;
    let agency: Uuid = sqlx::query_scalar("SELECT id FROM agencies WHERE name = 'Bench Agency'")
        .fetch_one(&pool)
        .await
        .context("the benchmark's agency")?;
    // items left by a run that did not finish
    clean_up(&pool, Uuid::nil()).await?;
    let created = {
        let mut tx = pool.begin().await?;
        let k = api_keys::create(
            &mut tx,
            &Actor::system("benchmark"),
            agency,
            &NewKey {
                name: "API benchmark",
                role: Role::Admin,
                clients: None,
            },
        )
        .await?;
        tx.commit().await?;
        k
    };
    let pairs: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT c.id, a.id FROM clients c JOIN social_accounts a ON a.client_id = c.id AND a.agency_id = c.agency_id
         WHERE c.agency_id = $1 AND a.status = 'active' ORDER BY c.id LIMIT $2",
    )
    .bind(agency)
    .bind(CREATE_TARGETS)
    .fetch_all(&pool)
    .await?;
    anyhow::ensure!(!pairs.is_empty(), "no client with an active account");

    let vault_key = autosocial_core::vault::Vault::generate_entry("bench");
    let (admin, base) = start_admin(
        &admin_bin,
        &url,
        &a.redis_url,
        &[
            ("AUTOSOCIAL_API_REQUESTS_PER_MINUTE", "1000000"),
            // the webhook receiver is on 127.0.0.1; the worker reads the secret with this key
            ("AUTOSOCIAL_OUTBOUND_ALLOW_PRIVATE", "true"),
            ("AUTOSOCIAL_KEYS", &vault_key),
        ],
    )
    .await?;
    let auth = format!("Authorization: Bearer {}", created.secret);
    let list_url = format!("{base}/api/v1/items");
    let first = reqwest::Client::new()
        .get(&list_url)
        .header("authorization", format!("Bearer {}", created.secret))
        .send()
        .await?;
    anyhow::ensure!(
        first.status().is_success(),
        "GET /api/v1/items answered {}",
        first.status()
    );

    println!(
        "list items: GET /api/v1/items, {} connections for {} s ...",
        a.connections, a.seconds
    );
    wrk(
        &list_url,
        std::slice::from_ref(&auth),
        "",
        a.connections,
        WARM_UP_SECS,
    )?;
    let list = wrk(
        &list_url,
        std::slice::from_ref(&auth),
        "",
        a.connections,
        a.seconds,
    )?;
    report("list items", &list);
    println!(
        "create item: POST /api/v1/items over {} clients, {} connections for {} s ...",
        pairs.len(),
        a.connections,
        a.seconds
    );
    let create_headers = [auth.clone(), "Content-Type: application/json".into()];
    wrk(
        &list_url,
        &create_headers,
        &create_script(&pairs),
        a.connections,
        WARM_UP_SECS,
    )?;
    let create = wrk(
        &list_url,
        &create_headers,
        &create_script(&pairs),
        a.connections,
        a.seconds,
    )?;
    report("create item", &create);
    println!(
        "event → webhook: {WEBHOOK_EVENTS} items created at {WEBHOOK_EVENTS_PER_S}/s, each item.created delivered to a receiver on 127.0.0.1 ..."
    );
    let worker_bin = admin_bin.with_file_name("autosocial-worker");
    let (latencies, missing) = event_to_webhook(
        &base,
        &created.secret,
        &worker_bin,
        &url,
        &a.redis_url,
        &vault_key,
        &pairs,
    )
    .await?;
    let webhook = (!latencies.is_empty()).then(|| percentile(&latencies, 0.99));
    println!(
        "event → webhook  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  missing {missing}",
        percentile(&latencies, 0.5),
        webhook.unwrap_or(f64::NAN),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    drop(admin);
    let removed = clean_up(&pool, created.id).await?;
    println!("removed the {removed} items and the key the benchmark created");

    let list_p99 = list["p99_ms"].as_f64().unwrap_or(f64::MAX);
    let create_rps = create["rps"].as_f64().unwrap_or(0.0);
    let mut missed = Vec::new();
    if list_p99 > LIST_P99_TARGET_MS || list["non2xx"].as_u64() != Some(0) {
        missed.push("list items");
    }
    if create_rps < CREATE_TARGET_PER_S || create["non2xx"].as_u64() != Some(0) {
        missed.push("create item");
    }
    if missing > 0 || webhook.is_none_or(|ms| ms > WEBHOOK_P99_TARGET_MS) {
        missed.push("event → webhook");
    }
    if !missed.is_empty() {
        println!("over target or with errors: {}", missed.join(", "));
    }
    println!(
        "{}",
        json!({
            "bench": "api",
            "clients": a.clients,
            "items": a.items,
            "connections": a.connections,
            "seconds": a.seconds,
            "list_items_p99_ms": list["p99_ms"],
            "list_items_p50_ms": list["p50_ms"],
            "list_items_rps": list["rps"],
            "list_items_non2xx": list["non2xx"],
            "create_items_per_s": create["rps"],
            "create_items_p99_ms": create["p99_ms"],
            "create_items_non2xx": create["non2xx"],
            "event_to_webhook_p99_ms": webhook,
            "event_to_webhook_p50_ms": (!latencies.is_empty()).then(|| percentile(&latencies, 0.5)),
            "event_to_webhook_missing": missing,
            "targets": {
                "list_items_p99_ms": LIST_P99_TARGET_MS,
                "create_items_per_s": CREATE_TARGET_PER_S,
                "event_to_webhook_p99_ms": WEBHOOK_P99_TARGET_MS,
            },
        })
    );
    Ok(())
}
