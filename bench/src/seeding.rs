//! Bulk seeding against a sandbox and the exactly-once audit, shared by the burst benchmark and
//! the worker's publishing fault tests: real accounts connected through the sandbox's own
//! OAuth flow (tokens encrypted like any other), approved items with one publication each due at
//! one instant, and a comparison of the sandbox's posts with the database.

use std::collections::HashMap;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::domain::Platform;
use autosocial_core::platforms::{self, PlatformsConfig};
use autosocial_core::publishing::{self, Snapshot};
use autosocial_core::queue;
use autosocial_core::vault::Vault;

/// Seeded accounts: (client, account) pairs of one agency.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub agency: Uuid,
    pub accounts: Vec<(Uuid, Uuid)>,
}

/// Create `name` (an agency) with `clients` clients, each with one account on `platform`
/// connected through the sandbox's OAuth flow. The sandbox must be in auto-approve mode.
pub async fn connect_fleet(
    pool: &PgPool,
    vault: &Vault,
    config: &PlatformsConfig,
    name: &str,
    clients: usize,
    platform: Platform,
) -> anyhow::Result<Fleet> {
    let connector = platforms::connector(platform, config)
        .with_context(|| format!("no connector for {platform}"))?;
    let app = config
        .app(platform)
        .with_context(|| format!("no app for {platform}"))?;
    let agency = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO agencies (id, name) VALUES ($1, $2)",
        agency,
        name
    )
    .execute(pool)
    .await?;
    let mut accounts = Vec::with_capacity(clients);
    use futures::StreamExt as _;
    // connect a few at a time: the sandbox's OAuth is quick, the round trips are not free
    let mut pending = futures::stream::iter(0..clients)
        .map(|i| {
            let connector = &connector;
            let app = &app;
            async move {
                let hint = format!("{name}-acct-{i:05}")
                    .to_lowercase()
                    .replace(' ', "-");
                platforms::connect_headless(connector.as_ref(), app, &config.http, &hint).await
            }
        })
        .buffer_unordered(16);
    let mut i = 0usize;
    while let Some(connected) = pending.next().await {
        let (tokens, info) = connected?;
        let client = Uuid::now_v7();
        let mut tx = pool.begin().await?;
        sqlx::query!(
            "INSERT INTO clients (id, agency_id, name, timezone) VALUES ($1, $2, $3, 'UTC')",
            client,
            agency,
            format!("Client {i:05}")
        )
        .execute(&mut *tx)
        .await?;
        let account = autosocial_core::accounts::store_connection(
            &mut tx,
            vault,
            agency,
            client,
            platform,
            &info,
            &tokens,
            connector.scopes(),
        )
        .await?;
        tx.commit().await?;
        accounts.push((client, account));
        i += 1;
    }
    Ok(Fleet { agency, accounts })
}

/// For every account, `per_account` approved text items with one publication each, all due at
/// `due`, with their publish jobs. Returns the publication ids.
pub async fn due_publications(
    pool: &PgPool,
    fleet: &Fleet,
    per_account: usize,
    due: DateTime<Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(fleet.accounts.len() * per_account);
    for chunk in fleet.accounts.chunks(200) {
        let mut tx = pool.begin().await?;
        let mut jobs = Vec::with_capacity(chunk.len() * per_account);
        for (client, account) in chunk {
            let platform = sqlx::query_scalar!(
                r#"SELECT platform AS "p: Platform" FROM social_accounts WHERE id = $1"#,
                account
            )
            .fetch_one(&mut *tx)
            .await?;
            for n in 0..per_account {
                let item = Uuid::now_v7();
                let publication = Uuid::now_v7();
                let caption = format!("Seeded post {n} of {account}");
                sqlx::query!(
                    "INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, caption,
                                                moderation_status, approved_at)
                     VALUES ($1, $2, $3, 'manual', 'approved', $4, 'text', $5, 'pass', now())",
                    item,
                    fleet.agency,
                    client,
                    due,
                    caption
                )
                .execute(&mut *tx)
                .await?;
                let snapshot = Snapshot {
                    caption: caption.clone(),
                    hashtags: vec![],
                    cta: None,
                    link_url: None,
                    media: vec![],
                    text: caption,
                };
                sqlx::query!(
                    "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
                    item,
                    account,
                    fleet.agency
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query!(
                    "INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, scheduled_at, snapshot)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    publication,
                    fleet.agency,
                    client,
                    item,
                    account,
                    platform.as_str(),
                    due,
                    serde_json::to_value(&snapshot)?
                )
                .execute(&mut *tx)
                .await?;
                jobs.push(publishing::publish_job(
                    fleet.agency,
                    *client,
                    *account,
                    platform,
                    publication,
                    due,
                ));
                ids.push(publication);
            }
        }
        queue::enqueue_many(&mut tx, &jobs).await?;
        tx.commit().await?;
    }
    Ok(ids)
}

/// The platform's side against ours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactlyOnce {
    /// Publications the database has as published.
    pub published: usize,
    /// Posts the sandbox holds for these publications' markers.
    pub posts: usize,
    /// Markers the sandbox holds more than once.
    pub duplicates: usize,
    /// Publications not published, or published in the database but absent on the platform,
    /// or recorded with another post id than the platform's.
    pub lost: usize,
    /// Posts on the platform the database does not know as published.
    pub unrecorded: usize,
}

/// A post as the sandbox reports it on `/_sandbox/posts`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SandboxPost {
    pub id: String,
    pub account: String,
    pub marker: Option<String>,
    pub created_us: u128,
    /// When the request that made it arrived (what a platform's rate limits count).
    pub arrived_us: u128,
}

pub async fn sandbox_posts(
    http: &reqwest::Client,
    sandbox: &url::Url,
) -> anyhow::Result<Vec<SandboxPost>> {
    Ok(http
        .get(sandbox.join("/_sandbox/posts")?)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Compare the publications `ids` with the sandbox's posts.
pub async fn audit(
    pool: &PgPool,
    posts: &[SandboxPost],
    ids: &[Uuid],
) -> anyhow::Result<ExactlyOnce> {
    let rows = sqlx::query!(
        "SELECT id, state, marker, platform_post_id FROM publications WHERE id = ANY($1)",
        ids
    )
    .fetch_all(pool)
    .await?;
    let mut by_marker: HashMap<&str, Vec<&SandboxPost>> = HashMap::new();
    for p in posts {
        if let Some(m) = &p.marker {
            by_marker.entry(m.as_str()).or_default().push(p);
        }
    }
    let mut report = ExactlyOnce::default();
    for r in &rows {
        let on_platform = r
            .marker
            .as_deref()
            .and_then(|m| by_marker.get(m))
            .map(Vec::as_slice)
            .unwrap_or_default();
        report.posts += on_platform.len();
        if on_platform.len() > 1 {
            report.duplicates += on_platform.len() - 1;
        }
        if r.state == "published" {
            report.published += 1;
            let matches = on_platform
                .iter()
                .any(|p| Some(p.id.as_str()) == r.platform_post_id.as_deref());
            if !matches {
                report.lost += 1;
            }
        } else {
            report.lost += 1;
            if !on_platform.is_empty() {
                report.unrecorded += 1;
            }
        }
    }
    report.lost += ids.len() - rows.len();
    Ok(report)
}

/// Posts beyond what a GCRA bucket of `rate` allows per account, by the arrival of the requests
/// that made them: in any stretch of time `t` between two of an account's arrivals, at most
/// `burst + t / interval` posts (plus 50 ms of tolerance for the sandbox's own stamping).
pub fn smoothing_violations(posts: &[SandboxPost], rate: autosocial_core::limits::Rate) -> usize {
    smoothing_violators(posts, rate).iter().map(|v| v.1).sum()
}

/// The accounts whose posts arrived closer than `rate` allows, with how many posts too many
/// their worst stretch held.
pub fn smoothing_violators(
    posts: &[SandboxPost],
    rate: autosocial_core::limits::Rate,
) -> Vec<(String, usize)> {
    let mut by_account: HashMap<&str, Vec<u128>> = HashMap::new();
    for p in posts {
        by_account
            .entry(p.account.as_str())
            .or_default()
            .push(p.arrived_us);
    }
    let interval_us = rate.interval.as_micros().max(1);
    let mut violators = Vec::new();
    for (account, times) in by_account.iter_mut() {
        times.sort_unstable();
        let mut worst = 0usize;
        for i in 0..times.len() {
            for j in i..times.len() {
                let span = times[j] - times[i] + 50_000;
                let allowed = rate.burst as u128 + span / interval_us;
                let n = (j - i + 1) as u128;
                worst = worst.max(n.saturating_sub(allowed) as usize);
            }
        }
        if worst > 0 {
            violators.push((account.to_string(), worst));
        }
    }
    violators.sort();
    violators
}

/// Posts beyond a quota of `max` per rolling `window` per account, by the arrival of the
/// requests that made them (the most any window holds beyond `max`, summed over accounts).
pub fn quota_violations(posts: &[SandboxPost], window: std::time::Duration, max: usize) -> usize {
    let mut by_account: HashMap<&str, Vec<u128>> = HashMap::new();
    for p in posts {
        by_account
            .entry(p.account.as_str())
            .or_default()
            .push(p.arrived_us);
    }
    let window_us = window.as_micros();
    let mut violations = 0;
    for times in by_account.values_mut() {
        times.sort_unstable();
        let mut worst = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end] - times[start] >= window_us {
                start += 1;
            }
            worst = worst.max((end - start + 1).saturating_sub(max));
        }
        violations += worst;
    }
    violations
}

/// A loaded machine for fault tests and benchmarks: one busy-looping process per core, stopped
/// on drop. Promises that hold only on a quiet machine do not hold.
pub struct CpuHog(Vec<std::process::Child>);

impl CpuHog {
    pub fn start() -> std::io::Result<CpuHog> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut children = Vec::with_capacity(cores);
        for _ in 0..cores {
            children.push(
                std::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()?,
            );
        }
        Ok(CpuHog(children))
    }

    pub fn processes(&self) -> usize {
        self.0.len()
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Send a signal to a process by pid (`STOP`, `CONT`, `KILL`) with the system's `kill`.
pub fn signal(pid: u32, signal: &str) -> std::io::Result<()> {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "kill -{signal} {pid} failed"
        )))
    }
}
