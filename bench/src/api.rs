//! `autosocial-bench api`: the JSON API under load on the console benchmark's data (one agency,
//! `clients` clients with an account each, `items` items; the same kept database,
//! `autosocial_bench_console`, seeded by [`crate::console`]). Starts the release
//! `autosocial-admin serve` with a rate limit out of the way, creates an API key of the agency,
//! and drives with `wrk` at `connections` connections:
//!
//! - list items: `GET /api/v1/items` (a page of 50, newest first), p99 (target ≤ 20 ms);
//! - create item: `POST /api/v1/items`, posts written by hand for the clients with an active
//!   account in turn, requests/s (target ≥ 1,000), every answer a 201;
//! - event → webhook receiver p99 (target ≤ 1 s): [`event_to_webhook_p99_ms`], measured once
//!   outbound webhooks exist.
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

/// Event → webhook receiver p99, in ms: the time from an event (an item approved) to its
/// signed delivery at a local receiver. Outbound webhooks are not on this branch; this is where
/// that measurement goes once they land, and until then the benchmark reports `null` for it.
async fn event_to_webhook_p99_ms(_pool: &PgPool, _base: &str, _key: &str) -> Option<f64> {
    None
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

    let (admin, base) = start_admin(
        &admin_bin,
        &url,
        &a.redis_url,
        &[("AUTOSOCIAL_API_REQUESTS_PER_MINUTE", "1000000")],
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
    let create = wrk(
        &list_url,
        &[auth.clone(), "Content-Type: application/json".into()],
        &create_script(&pairs),
        a.connections,
        a.seconds,
    )?;
    report("create item", &create);
    let webhook = event_to_webhook_p99_ms(&pool, &base, &created.secret).await;
    if webhook.is_none() {
        println!("event → webhook: not measured (outbound webhooks are not on this build)");
    }
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
    if webhook.is_some_and(|ms| ms > WEBHOOK_P99_TARGET_MS) {
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
            "targets": {
                "list_items_p99_ms": LIST_P99_TARGET_MS,
                "create_items_per_s": CREATE_TARGET_PER_S,
                "event_to_webhook_p99_ms": WEBHOOK_P99_TARGET_MS,
            },
        })
    );
    Ok(())
}
