//! The content jobs: `plan_sweep` (periodic) makes sure every active client has a `plan` job;
//! `plan` turns a client's rules into `planned` items for the next 7 days and enqueues one
//! `generate` per item; `generate` fills an item (pillar, captions, hashtags, CTA, moderation,
//! image cards) and hands it to review, or approves it when the client auto-approves.
//!
//! Idempotence: planning matches each rule's nominal slots against what is already planned
//! (`content_items.planned_for`, unique per rule) under a per-client lock, so any number of
//! workers planning one client plan each slot once. Generation claims an item by moving it
//! `planned → generating` and writes its result only while it is still `generating`; an item
//! already generated is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeDelta, Utc};
use clap::Args;
use secrecy::SecretString;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::brand::{self, Brand};
use super::cards::{self, CardSize, CardSpec, Fonts};
use super::moderation::{self, Verdict};
use super::openai::{OpenAiConfig, OpenAiProvider};
use super::provider::{
    ContentType, GenerationRequest, PlatformLimits, Provider, ProviderError, TemplateProvider,
    VariantKind, week_index,
};
use super::replicate::{ReplicateConfig, ReplicateProvider};
use super::schedule::{self, Occupied};
use super::slots;
use super::templates::{self, Library};
use crate::domain::{ClientStatus, Platform};
use crate::items::{self, PlannedSlot};
use crate::limits::{Rate, Smoother};
use crate::queue::runner::{Backoff, JobContext, Outcome};
use crate::queue::{self, NewJob, RunAt, Scope};

pub const PLAN: &str = "plan";
pub const PLAN_SWEEP: &str = "plan_sweep";
pub const GENERATE: &str = "generate";

/// Days ahead a plan covers (the local date of the run and the six after it).
pub const PLAN_DAYS: u32 = 7;
/// How often the sweep looks for clients without a plan job.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Hashtags per post at most, below any platform's own cap: more reads as spam everywhere.
pub const MAX_HASHTAGS: usize = 5;

/// Backoff of `generate` after a transient provider failure.
pub const GENERATE_BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(5),
    cap: Duration::from_secs(900),
};

/// Which caption provider the deployment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    Template,
    Openai,
}

/// Where the images of image items come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageProviderKind {
    /// Brand cards rendered here (offline, deterministic).
    Card,
    /// Replicate's predictions API, cropped to each size; the card when it refuses.
    Replicate,
}

/// Settings of planning and generation (the worker flattens these into its arguments).
#[derive(Debug, Clone, Args)]
pub struct ContentArgs {
    /// Where rendered image cards are stored (content-addressed; the admin serves them).
    #[arg(
        long = "media-dir",
        env = "AUTOSOCIAL_MEDIA_DIR",
        value_name = "AUTOSOCIAL_MEDIA_DIR",
        default_value = "var/media"
    )]
    pub media_dir: PathBuf,
    /// The shipped templates: `captions/` and `fonts/`.
    #[arg(
        long = "templates-dir",
        env = "AUTOSOCIAL_TEMPLATES_DIR",
        value_name = "AUTOSOCIAL_TEMPLATES_DIR",
        default_value = "templates"
    )]
    pub templates_dir: PathBuf,
    /// Caption provider: `template` (offline, deterministic) or `openai` (any OpenAI-compatible
    /// endpoint).
    #[arg(
        long = "ai-provider",
        env = "AUTOSOCIAL_AI_PROVIDER",
        value_name = "AUTOSOCIAL_AI_PROVIDER",
        value_enum,
        default_value = "template"
    )]
    pub ai_provider: ProviderKind,
    /// OpenAI-compatible API base, up to the version: `https://api.openai.com/v1`,
    /// `https://api.groq.com/openai/v1`, `http://127.0.0.1:11434/v1`.
    #[arg(
        long = "ai-base-url",
        env = "AUTOSOCIAL_AI_BASE_URL",
        value_name = "AUTOSOCIAL_AI_BASE_URL"
    )]
    pub ai_base_url: Option<url::Url>,
    #[arg(
        long = "ai-model",
        env = "AUTOSOCIAL_AI_MODEL",
        value_name = "AUTOSOCIAL_AI_MODEL"
    )]
    pub ai_model: Option<String>,
    /// The endpoint's API key (local servers may need none).
    #[arg(
        long = "ai-key",
        env = "AUTOSOCIAL_AI_KEY",
        value_name = "AUTOSOCIAL_AI_KEY",
        hide_env_values = true
    )]
    pub ai_key: Option<SecretString>,
    #[arg(long = "ai-timeout-secs", env = "AUTOSOCIAL_AI_TIMEOUT_SECS", value_name = "AUTOSOCIAL_AI_TIMEOUT_SECS",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub ai_timeout_secs: u64,
    /// AI requests per agency per minute across the fleet (0: no limit).
    #[arg(long = "ai-requests-per-minute", env = "AUTOSOCIAL_AI_REQUESTS_PER_MINUTE", value_name = "AUTOSOCIAL_AI_REQUESTS_PER_MINUTE",
          default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub ai_requests_per_minute: u32,
    /// Tokens per agency per month unless the agency sets its own.
    #[arg(long = "ai-monthly-token-budget", env = "AUTOSOCIAL_AI_MONTHLY_TOKEN_BUDGET", value_name = "AUTOSOCIAL_AI_MONTHLY_TOKEN_BUDGET",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub ai_monthly_token_budget: Option<i64>,
    /// Tokens per agency per UTC day unless the agency sets its own.
    #[arg(long = "ai-daily-token-budget", env = "AUTOSOCIAL_AI_DAILY_TOKEN_BUDGET", value_name = "AUTOSOCIAL_AI_DAILY_TOKEN_BUDGET",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub ai_daily_token_budget: Option<i64>,
    /// Image source of image items: `card` (brand card renderer) or `replicate`.
    #[arg(
        long = "image-provider",
        env = "AUTOSOCIAL_IMAGE_PROVIDER",
        value_name = "AUTOSOCIAL_IMAGE_PROVIDER",
        value_enum,
        default_value = "card"
    )]
    pub image_provider: ImageProviderKind,
    #[arg(
        long = "replicate-base-url",
        env = "AUTOSOCIAL_REPLICATE_BASE_URL",
        value_name = "AUTOSOCIAL_REPLICATE_BASE_URL",
        default_value = "https://api.replicate.com"
    )]
    pub replicate_base_url: url::Url,
    #[arg(
        long = "replicate-token",
        env = "AUTOSOCIAL_REPLICATE_TOKEN",
        value_name = "AUTOSOCIAL_REPLICATE_TOKEN",
        hide_env_values = true
    )]
    pub replicate_token: Option<SecretString>,
    /// `owner/name` (an official model) or `owner/name:version`.
    #[arg(
        long = "replicate-model",
        env = "AUTOSOCIAL_REPLICATE_MODEL",
        value_name = "AUTOSOCIAL_REPLICATE_MODEL",
        default_value = "black-forest-labs/flux-schnell"
    )]
    pub replicate_model: String,
}

/// A setting that cannot work: the variable and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ContentArgs {
    /// Defaults with the given directories (tests, tools).
    pub fn with_dirs(media_dir: PathBuf, templates_dir: PathBuf) -> ContentArgs {
        ContentArgs {
            media_dir,
            templates_dir,
            ai_provider: ProviderKind::Template,
            ai_base_url: None,
            ai_model: None,
            ai_key: None,
            ai_timeout_secs: 60,
            ai_requests_per_minute: 30,
            ai_monthly_token_budget: None,
            ai_daily_token_budget: None,
            image_provider: ImageProviderKind::Card,
            replicate_base_url: url::Url::parse("https://api.replicate.com").expect("a valid URL"),
            replicate_token: None,
            replicate_model: "black-forest-labs/flux-schnell".into(),
        }
    }

    /// Check the settings and build what the jobs use. With `generates` (this process runs
    /// `generate`) the templates directory must hold `captions/` and usable `fonts/`.
    pub fn build(
        &self,
        pool: PgPool,
        smoother: Smoother,
        generates: bool,
    ) -> Result<Content, ConfigError> {
        let fonts = if generates {
            let fonts =
                Fonts::load(&self.templates_dir.join("fonts")).map_err(|e| ConfigError {
                    variable: "AUTOSOCIAL_TEMPLATES_DIR",
                    message: format!("{e:#}"),
                })?;
            if !self.templates_dir.join("captions").is_dir() {
                return Err(ConfigError {
                    variable: "AUTOSOCIAL_TEMPLATES_DIR",
                    message: format!(
                        "{} has no captions/ directory",
                        self.templates_dir.display()
                    ),
                });
            }
            Some(Arc::new(fonts))
        } else {
            None
        };
        let library = Library::new(&self.templates_dir);
        let provider: Arc<dyn Provider> = match self.ai_provider {
            ProviderKind::Template => Arc::new(TemplateProvider::new(library.clone())),
            ProviderKind::Openai => {
                let base_url = self.ai_base_url.clone().ok_or(ConfigError {
                    variable: "AUTOSOCIAL_AI_BASE_URL",
                    message: "required with AUTOSOCIAL_AI_PROVIDER=openai (like https://api.openai.com/v1)".into(),
                })?;
                if !matches!(base_url.scheme(), "http" | "https") {
                    return Err(ConfigError {
                        variable: "AUTOSOCIAL_AI_BASE_URL",
                        message: "expected an http:// or https:// URL".into(),
                    });
                }
                let model = self
                    .ai_model
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .ok_or(ConfigError {
                        variable: "AUTOSOCIAL_AI_MODEL",
                        message: "required with AUTOSOCIAL_AI_PROVIDER=openai (like gpt-4o-mini)"
                            .into(),
                    })?;
                Arc::new(OpenAiProvider::new(
                    OpenAiConfig {
                        base_url,
                        model,
                        key: self.ai_key.clone(),
                        timeout: Duration::from_secs(self.ai_timeout_secs),
                        retries: 2,
                        retry_base: Duration::from_millis(500),
                        rate: (self.ai_requests_per_minute > 0).then(|| {
                            Rate::per(self.ai_requests_per_minute, Duration::from_secs(60))
                        }),
                        monthly_token_budget: self.ai_monthly_token_budget,
                        daily_token_budget: self.ai_daily_token_budget,
                    },
                    pool,
                    smoother,
                ))
            }
        };
        let images = match self.image_provider {
            ImageProviderKind::Card => None,
            ImageProviderKind::Replicate => Some(Arc::new(self.replicate()?)),
        };
        Ok(Content {
            provider,
            images,
            library,
            fonts,
            media_dir: self.media_dir.clone(),
        })
    }
}

impl ContentArgs {
    /// The Replicate image provider these settings describe.
    fn replicate(&self) -> Result<ReplicateProvider, ConfigError> {
        let token = self.replicate_token.clone().ok_or(ConfigError {
            variable: "AUTOSOCIAL_REPLICATE_TOKEN",
            message: "required with AUTOSOCIAL_IMAGE_PROVIDER=replicate (an API token from replicate.com)".into(),
        })?;
        if !matches!(self.replicate_base_url.scheme(), "http" | "https") {
            return Err(ConfigError {
                variable: "AUTOSOCIAL_REPLICATE_BASE_URL",
                message: "expected an http:// or https:// URL".into(),
            });
        }
        let model = self.replicate_model.trim();
        if model
            .split(':')
            .next()
            .and_then(|m| m.split_once('/'))
            .is_none()
        {
            return Err(ConfigError {
                variable: "AUTOSOCIAL_REPLICATE_MODEL",
                message: "expected owner/name or owner/name:version (like black-forest-labs/flux-schnell)".into(),
            });
        }
        Ok(ReplicateProvider::new(ReplicateConfig {
            base_url: self.replicate_base_url.clone(),
            token,
            model: model.to_owned(),
            timeout: Duration::from_secs(60),
            deadline: Duration::from_secs(120),
            poll_every: Duration::from_secs(1),
        }))
    }
}

/// What the content jobs share in a worker.
#[derive(Clone)]
pub struct Content {
    pub provider: Arc<dyn Provider>,
    /// The image generator when not the card renderer.
    pub images: Option<Arc<ReplicateProvider>>,
    pub library: Library,
    /// Loaded where this process generates.
    pub fonts: Option<Arc<Fonts>>,
    pub media_dir: PathBuf,
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

/// The unique key of a client's plan job for a local date.
pub fn plan_key(client: Uuid, local_date: chrono::NaiveDate) -> String {
    format!("plan:{client}:{}", local_date.format("%Y-%m-%d"))
}

/// A plan job for `client`, keyed by the local date of `at`.
pub fn plan_job(agency: Uuid, client: Uuid, tz: chrono_tz::Tz, at: DateTime<Utc>) -> NewJob {
    NewJob::new(PLAN, json!({"agency_id": agency, "client_id": client}))
        .unique(plan_key(client, schedule::local_date(tz, at)))
        .scope(Scope {
            agency_id: Some(agency),
            client_id: Some(client),
            ..Scope::default()
        })
}

/// The generate job of an item.
pub fn generate_job(agency: Uuid, client: Uuid, item: Uuid) -> NewJob {
    NewJob::new(GENERATE, json!({"agency_id": agency, "item_id": item}))
        .unique(format!("generate:{item}"))
        .max_attempts(8)
        .scope(Scope {
            agency_id: Some(agency),
            client_id: Some(client),
            ..Scope::default()
        })
}

/// What one plan run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanReport {
    /// Items created.
    pub planned: usize,
    /// Slots that could not keep their accounts' gap on their day.
    pub dropped: usize,
    /// Enabled rules without an active account.
    pub idle_rules: usize,
    /// Generate jobs enqueued (new items, and planned items left without one).
    pub generate_enqueued: u64,
}

/// Plan a client's next [`PLAN_DAYS`] days in one transaction (see the module docs). A client
/// that is not active plans nothing. Returns `None` when the client does not exist.
pub async fn plan(
    pool: &PgPool,
    agency: Uuid,
    client_id: Uuid,
) -> anyhow::Result<Option<PlanReport>> {
    let mut tx = pool.begin().await?;
    // one planner per client at a time: the next one sees what this one planned
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('autosocial:plan:' || $1::uuid::text, 0))",
        client_id
    )
    .execute(&mut *tx)
    .await?;
    let Some(client) = brand::client(&mut *tx, agency, client_id).await? else {
        return Ok(None);
    };
    let mut report = PlanReport::default();
    if client.status != ClientStatus::Active {
        tx.commit().await?;
        return Ok(Some(report));
    }
    let tz = client.timezone;
    let now: DateTime<Utc> = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&mut *tx)
        .await?;
    let rules = brand::rules(&mut *tx, &client).await?;
    let mut candidates = Vec::new();
    let mut content_type_of: BTreeMap<(Uuid, DateTime<Utc>), ContentType> = BTreeMap::new();
    for rule in &rules {
        if rule.accounts.is_empty() {
            report.idle_rules += 1;
            tracing::info!(client = %client.id, rule = %rule.id, "rule has no active account; nothing planned for it");
            continue;
        }
        for s in slots::rule_slots(rule, tz, now, PLAN_DAYS) {
            content_type_of.insert((rule.id, s.candidate.nominal), s.content_type);
            candidates.push(s.candidate);
        }
    }
    let horizon = now + TimeDelta::days(i64::from(PLAN_DAYS) + 1);
    let max_gap = rules.iter().map(|r| r.min_gap()).max().unwrap_or_default();
    // slots already planned by rule (nominal or actual instant): never planned twice
    let rule_ids: Vec<Uuid> = rules.iter().map(|r| r.id).collect();
    let known: BTreeSet<(Uuid, DateTime<Utc>)> = sqlx::query!(
        r#"SELECT rule_id AS "rule_id!", planned_for, slot_at FROM content_items
           WHERE agency_id = $1 AND rule_id = ANY($2) AND slot_at >= $3::timestamptz - interval '1 day'"#,
        agency,
        &rule_ids,
        now
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .flat_map(|r| [Some((r.rule_id, r.slot_at)), r.planned_for.map(|p| (r.rule_id, p))])
    .flatten()
    .collect();
    candidates.retain(|c| !known.contains(&(c.rule_id, c.nominal)));
    // posts already on the accounts' calendars (any rule, or made by hand)
    let occupied: Vec<Occupied> = sqlx::query!(
        r#"SELECT i.slot_at, coalesce(r.min_gap_minutes, 0) AS "gap!",
                  array_agg(t.account_id) AS "accounts!: Vec<Uuid>"
           FROM content_items i
           JOIN content_item_targets t ON t.item_id = i.id
           LEFT JOIN content_rules r ON r.id = i.rule_id
           WHERE i.agency_id = $1 AND i.client_id = $2
             AND i.state NOT IN ('rejected', 'cancelled', 'failed')
             AND i.slot_at BETWEEN $3 AND $4
           GROUP BY i.id, r.min_gap_minutes"#,
        agency,
        client.id,
        now - max_gap,
        horizon + max_gap
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| Occupied {
        at: r.slot_at,
        accounts: r.accounts,
        min_gap: TimeDelta::minutes(i64::from(r.gap)),
    })
    .collect();
    let (placed, dropped) = schedule::place(tz, candidates, &occupied);
    for d in &dropped {
        tracing::warn!(client = %client.id, rule = %d.rule_id, slot = %d.nominal, reason = %d.reason, "slot dropped");
    }
    report.dropped = dropped.len();

    let slots: Vec<PlannedSlot> = placed
        .iter()
        .map(|p| PlannedSlot {
            id: Uuid::now_v7(),
            rule_id: p.rule_id,
            slot_at: p.at,
            planned_for: p.nominal,
            content_type: content_type_of
                .get(&(p.rule_id, p.nominal))
                .copied()
                .unwrap_or(ContentType::Text)
                .as_str()
                .to_owned(),
            accounts: p.accounts.clone(),
        })
        .collect();
    let created = items::plan(&mut tx, agency, client.id, &slots).await?;
    report.planned = created.len();
    // every future planned item gets a generate job (new ones, and any whose job ended)
    let waiting = sqlx::query_scalar!(
        "SELECT id FROM content_items
         WHERE agency_id = $1 AND client_id = $2 AND state = 'planned' AND slot_at > $3
         ORDER BY slot_at",
        agency,
        client.id,
        now
    )
    .fetch_all(&mut *tx)
    .await?;
    let jobs: Vec<NewJob> = waiting
        .iter()
        .map(|item| generate_job(agency, client.id, *item))
        .collect();
    report.generate_enqueued = queue::enqueue_many(&mut tx, &jobs).await?;
    tx.commit().await?;
    Ok(Some(report))
}

/// Enqueue a plan job for every active client that has none waiting or running (new and
/// reactivated clients; a plan that failed for good). Returns how many were enqueued.
pub async fn sweep(pool: &PgPool) -> anyhow::Result<u64> {
    let planning = queue::clients_with_unfinished(pool, PLAN).await?;
    let rows = sqlx::query!(
        r#"SELECT c.id, c.agency_id, c.timezone, now() AS "now!" FROM clients c
           WHERE c.status = 'active' AND NOT (c.id = ANY($1))"#,
        &planning
    )
    .fetch_all(pool)
    .await?;
    let mut jobs = Vec::new();
    for r in rows {
        match schedule::parse_timezone("clients.timezone", &r.timezone) {
            Ok(tz) => jobs.push(plan_job(r.agency_id, r.id, tz, r.now)),
            Err(e) => tracing::error!(client = %r.id, error = %e, "client cannot be planned"),
        }
    }
    let mut conn = pool.acquire().await?;
    Ok(queue::enqueue_many(&mut conn, &jobs).await?)
}

fn payload_uuid(job: &JobContext, field: &str) -> anyhow::Result<Uuid> {
    serde_json::from_value(job.job.payload[field].clone())
        .map_err(|e| anyhow::anyhow!("payload without {field}: {e}"))
}

/// The `plan` job: plan, then schedule the next run shortly after the client's next local
/// midnight (keyed by that date).
pub async fn run_plan(job: &JobContext) -> anyhow::Result<Outcome> {
    let agency = payload_uuid(job, "agency_id")?;
    let client_id = payload_uuid(job, "client_id")?;
    let Some(report) = plan(&job.pool, agency, client_id).await? else {
        return Ok(Outcome::Done);
    };
    tracing::info!(client = %client_id, planned = report.planned, dropped = report.dropped,
                   idle_rules = report.idle_rules, generate = report.generate_enqueued, "planned");
    let Some(client) = brand::client(&job.pool, agency, client_id).await? else {
        return Ok(Outcome::Done);
    };
    if client.status != ClientStatus::Active {
        // the sweep plans it again once it is active
        return Ok(Outcome::Done);
    }
    let now: DateTime<Utc> = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(&job.pool)
        .await?;
    let today = schedule::local_date(client.timezone, now);
    let next_day = today + Days::new(1);
    let next = schedule::resolve_local(
        client.timezone,
        next_day,
        NaiveTime::from_hms_opt(0, 5, 0).expect("valid time"),
    );
    Ok(Outcome::DoneThen(Box::new(
        plan_job(agency, client_id, client.timezone, next).run_at(RunAt::At(next)),
    )))
}

/// The `plan_sweep` job.
pub async fn run_sweep(job: &JobContext) -> anyhow::Result<Outcome> {
    let n = sweep(&job.pool).await?;
    if n > 0 {
        tracing::info!(clients = n, "plan jobs enqueued by the sweep");
    }
    Ok(Outcome::Done)
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

/// What a generate run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Generation {
    /// The item was filled and is now in this state.
    Generated { state: String, blocked: bool },
    /// Nothing to do: already generated, cancelled, gone, or its client is not active.
    Skipped(String),
    /// Try again later; the item stays `planned` with the reason.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Postpone without counting an attempt (a rate limit said "not yet").
    Postpone { after: Duration, reason: String },
    /// A permanent failure; the item stays `planned` with the reason recorded.
    Failed(String),
}

/// Hashtags for a post: a tag made from the topic first, then the brand's tags from sets whose
/// name or tags match the topic's words, then the rest in set order; deduplicated without
/// regard to case, tags with spaces dropped, at most `cap`.
pub fn rank_hashtags(sets: &BTreeMap<String, Vec<String>>, topic: &str, cap: usize) -> Vec<String> {
    let words: Vec<String> = topic
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    let matches = |s: &str| {
        let s = s.to_lowercase();
        words.iter().any(|w| s.contains(w.as_str()))
    };
    let mut scored: Vec<(u8, usize, String)> = Vec::new();
    let topic_tag: String = topic
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    if !topic_tag.is_empty() && topic_tag.chars().count() <= 40 {
        scored.push((3, 0, format!("#{topic_tag}")));
    }
    let mut order = 1;
    for (name, tags) in sets {
        let set_match = matches(name);
        for tag in tags {
            let tag = tag.trim();
            let bare = tag.trim_start_matches('#');
            if bare.is_empty() || bare.contains(char::is_whitespace) {
                continue;
            }
            let score = u8::from(set_match) + u8::from(matches(bare));
            scored.push((score, order, format!("#{bare}")));
            order += 1;
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut seen = BTreeSet::new();
    scored
        .into_iter()
        .filter(|(_, _, t)| seen.insert(t.to_lowercase()))
        .map(|(_, _, t)| t)
        .take(cap)
        .collect()
}

/// The hashtag line's share of a post at most: a third of the tightest length.
fn fit_hashtags(mut tags: Vec<String>, platforms: &[Platform]) -> Vec<String> {
    let tightest = platforms
        .iter()
        .map(|p| moderation::max_length(*p))
        .min()
        .unwrap_or(usize::MAX);
    while !tags.is_empty() && tags.join(" ").chars().count() > tightest / 3 {
        tags.pop();
    }
    tags
}

/// The text moderation measures and publishing posts: the caption with the CTA appended when
/// the caption does not already carry it.
fn caption_with_cta(caption: &str, cta: Option<&str>) -> String {
    crate::publishing::compose_text(caption, cta, &[])
}

struct Item {
    client_id: Uuid,
    rule_id: Option<Uuid>,
    slot_at: DateTime<Utc>,
    content_type: ContentType,
    link_url: Option<String>,
}

/// Hand the item back as `planned` with the reason (only while this run holds it).
async fn release(pool: &PgPool, agency: Uuid, item: Uuid, reason: &str) -> sqlx::Result<()> {
    items::release(pool, agency, item, reason).await
}

/// A card rendered and stored in the media directory.
struct StoredCard {
    label: &'static str,
    /// `card` or `generated` (`media_assets.purpose`).
    purpose: &'static str,
    path: String,
    sha256: [u8; 32],
    mime: &'static str,
    width: u32,
    height: u32,
    bytes: usize,
}

struct CardJob {
    sizes: Vec<CardSize>,
    headline: String,
    footer: String,
    palette: cards::Palette,
    font: Option<String>,
    logo: Option<PathBuf>,
    media_dir: PathBuf,
    fonts: Arc<Fonts>,
}

fn render_cards(job: CardJob) -> anyhow::Result<Vec<StoredCard>> {
    let logo = match &job.logo {
        Some(path) => match image::open(path) {
            Ok(img) => Some(img),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "brand logo unreadable; card without logo");
                None
            }
        },
        None => None,
    };
    let font = job
        .font
        .as_deref()
        .filter(|f| job.fonts.names().iter().any(|n| n == f));
    let mut out = Vec::new();
    for size in job.sizes {
        let spec = CardSpec {
            size,
            headline: &job.headline,
            footer: &job.footer,
            palette: job.palette,
            gradient: false,
            logo: logo.as_ref(),
            font,
        };
        let rendered = cards::render(&job.fonts, &spec)?;
        let (bytes, ext, mime) = if size.prefers_jpeg() {
            (
                cards::encode_jpeg(&rendered.image, 90)?,
                "jpg",
                "image/jpeg",
            )
        } else {
            (cards::encode_png(&rendered.image)?, "png", "image/png")
        };
        let (path, sha256) = cards::store(&job.media_dir, &bytes, ext)?;
        let (width, height) = size.dimensions();
        out.push(StoredCard {
            label: size.label(),
            purpose: "card",
            path,
            sha256,
            mime,
            width,
            height,
            bytes: bytes.len(),
        });
    }
    Ok(out)
}

/// What the job does after a provider failure: wait out a rate limit, retry a transient
/// failure with backoff, give up on the rest.
fn after_provider_failure(e: ProviderError) -> Generation {
    let reason = e.to_string();
    match e {
        ProviderError::RateLimited { retry_after } => Generation::Postpone {
            after: retry_after,
            reason,
        },
        ProviderError::Transient(_) => Generation::Retry {
            after: None,
            reason,
        },
        ProviderError::Refused(_)
        | ProviderError::Malformed(_)
        | ProviderError::Budget(_)
        | ProviderError::Config(_) => Generation::Failed(reason),
    }
}

/// The image prompt: the headline, the pillar and the brand's voice; no lettering, since the
/// caption carries the words.
pub fn image_prompt(brand: &Brand, pillar: &str, headline: &str) -> String {
    let mut prompt = format!(
        "A social media image for the brand \"{}\" about {pillar}: {headline}.",
        brand.name
    );
    if !brand.voice.trim().is_empty() {
        prompt.push_str(&format!(" Brand voice: {}.", brand.voice.trim()));
    }
    prompt.push_str(" No text, letters or logos in the image.");
    prompt
}

/// The aspect ratio to ask for: the size's own when there is one, square when several sizes
/// share the image (a centre crop of a square loses least to each).
pub fn image_aspect(sizes: &[CardSize]) -> &'static str {
    match sizes {
        [one] => {
            let (w, h) = one.dimensions();
            super::replicate::aspect_ratio(w, h)
        }
        _ => "1:1",
    }
}

/// Crop and scale one generated image to each size and store it like a card.
fn store_generated(
    picture: &image::DynamicImage,
    sizes: &[CardSize],
    media_dir: &std::path::Path,
) -> anyhow::Result<Vec<StoredCard>> {
    let mut out = Vec::new();
    for &size in sizes {
        let (width, height) = size.dimensions();
        let fitted = picture
            .resize_to_fill(width, height, image::imageops::FilterType::Lanczos3)
            .to_rgba8();
        let (bytes, ext, mime) = if size.prefers_jpeg() {
            (cards::encode_jpeg(&fitted, 90)?, "jpg", "image/jpeg")
        } else {
            (cards::encode_png(&fitted)?, "png", "image/png")
        };
        let (path, sha256) = cards::store(media_dir, &bytes, ext)?;
        out.push(StoredCard {
            label: size.label(),
            purpose: "generated",
            path,
            sha256,
            mime,
            width,
            height,
            bytes: bytes.len(),
        });
    }
    Ok(out)
}

/// Generate one item (see the module docs).
pub async fn generate(
    pool: &PgPool,
    content: &Content,
    agency: Uuid,
    item_id: Uuid,
) -> anyhow::Result<Generation> {
    let Some(row) = items::claim(pool, agency, item_id).await? else {
        return Ok(Generation::Skipped(
            "already generated, cancelled or gone".into(),
        ));
    };
    let item = Item {
        client_id: row.client_id,
        rule_id: row.rule_id,
        slot_at: row.slot_at,
        content_type: row
            .content_type
            .parse()
            .map_err(|e| anyhow::anyhow!("item {item_id}: {e}"))?,
        link_url: row.link_url,
    };
    match prepare_and_write(pool, content, agency, item_id, &item).await {
        Ok(g) => Ok(g),
        Err(e) => {
            // unexpected failure (database, disk): hand the item back, retry the job
            let _ = release(pool, agency, item_id, &format!("{e:#}")).await;
            Err(e)
        }
    }
}

async fn prepare_and_write(
    pool: &PgPool,
    content: &Content,
    agency: Uuid,
    item_id: Uuid,
    item: &Item,
) -> anyhow::Result<Generation> {
    let Some(client) = brand::client(pool, agency, item.client_id).await? else {
        return Ok(Generation::Skipped("client gone".into()));
    };
    if client.status != ClientStatus::Active {
        release(pool, agency, item_id, "client is not active").await?;
        return Ok(Generation::Skipped(format!("client is {}", client.status)));
    }
    let brand: Brand = brand::brand(pool, &client).await?;
    let platforms: Vec<Platform> = sqlx::query_scalar!(
        r#"SELECT DISTINCT a.platform AS "platform!: Platform" FROM content_item_targets t
           JOIN social_accounts a ON a.id = t.account_id AND a.agency_id = t.agency_id
           WHERE t.item_id = $1 AND t.agency_id = $2 ORDER BY 1"#,
        item_id,
        agency
    )
    .fetch_all(pool)
    .await?;
    if platforms.is_empty() {
        let why = "the item has no target accounts";
        release(pool, agency, item_id, why).await?;
        return Ok(Generation::Failed(why.into()));
    }
    let tz = client.timezone;
    let slot_date = schedule::local_date(tz, item.slot_at);
    // position among the client's posts of its local ISO week: drives every rotation
    let monday = slot_date - Days::new(u64::from(slot_date.weekday().num_days_from_monday()));
    let midnight = NaiveTime::MIN;
    let week_start = schedule::resolve_local(tz, monday, midnight);
    let week_end = schedule::resolve_local(tz, monday + Days::new(7), midnight);
    let sequence = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM content_items
           WHERE agency_id = $1 AND client_id = $2 AND slot_at >= $3 AND slot_at < $4
             AND (slot_at, id) < ($5, $6) AND state NOT IN ('cancelled', 'rejected')"#,
        agency,
        client.id,
        week_start,
        week_end,
        item.slot_at,
        item_id
    )
    .fetch_one(pool)
    .await? as u32;
    let turn = (week_index(slot_date) + sequence) as usize;
    let rule_name = match item.rule_id {
        Some(rule) => {
            sqlx::query_scalar!(
                "SELECT name FROM content_rules WHERE id = $1 AND agency_id = $2",
                rule,
                agency
            )
            .fetch_optional(pool)
            .await?
        }
        None => None,
    };
    let pillar = if brand.pillars.is_empty() {
        rule_name.unwrap_or_else(|| brand.name.clone())
    } else {
        brand.pillars[turn % brand.pillars.len()].clone()
    };
    let cta = (!brand.ctas.is_empty()).then(|| brand.ctas[turn % brand.ctas.len()].clone());
    let cap = platforms
        .iter()
        .filter_map(|p| moderation::max_hashtags(*p))
        .min()
        .unwrap_or(MAX_HASHTAGS)
        .min(MAX_HASHTAGS);
    let hashtags = fit_hashtags(rank_hashtags(&brand.hashtag_sets, &pillar, cap), &platforms);
    let hashtag_room = if hashtags.is_empty() {
        0
    } else {
        hashtags.join(" ").chars().count() + 2
    };
    let limits: Vec<PlatformLimits> = platforms
        .iter()
        .map(|p| {
            let link_room = match (&item.link_url, p) {
                (Some(l), Platform::X) => l.chars().count() + 2,
                _ => 0,
            };
            PlatformLimits {
                platform: *p,
                max_chars: moderation::max_length(*p).saturating_sub(hashtag_room + link_room),
                max_hashtags: moderation::max_hashtags(*p).unwrap_or(cap),
            }
        })
        .collect();
    let request = GenerationRequest {
        agency_id: agency,
        client_id: client.id,
        brand_name: brand.name.clone(),
        voice: brand.voice.clone(),
        tone: brand.tone.clone(),
        handle: brand.handle.clone(),
        topic: pillar.clone(),
        pillar: pillar.clone(),
        content_type: item.content_type,
        platforms: limits,
        banned_terms: brand.banned_terms.clone(),
        cta: cta.clone(),
        hashtags: hashtags.clone(),
        slot_date,
        sequence,
        template_overrides: templates::overrides(pool, agency, client.id).await?,
    };
    let generated = match content.provider.generate(&request).await {
        Ok(g) => g,
        Err(e) => {
            release(pool, agency, item_id, &e.to_string()).await?;
            return Ok(after_provider_failure(e));
        }
    };

    // moderation of every variant for every target platform
    let verdicts: Vec<(VariantKind, String, Verdict)> = generated
        .variants
        .iter()
        .map(|v| {
            let text = caption_with_cta(&v.caption, cta.as_deref());
            let verdict = moderation::check(
                &platforms,
                &moderation::Input {
                    text: &text,
                    hashtags: &hashtags,
                    link_url: item.link_url.as_deref(),
                    banned_terms: &brand.banned_terms,
                },
            );
            (v.kind, v.caption.clone(), verdict)
        })
        .collect();
    let chosen = verdicts
        .iter()
        .find(|v| v.0 == VariantKind::Balanced && v.2.passed())
        .or_else(|| verdicts.iter().find(|v| v.2.passed()))
        .unwrap_or(&verdicts[1]);
    let passed = chosen.2.passed();

    // image cards, one per target size, rendered off the async threads
    let mut sizes: Vec<CardSize> = Vec::new();
    for size in platforms.iter().map(|p| CardSize::for_platform(*p)) {
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    // or one generated image cropped to each size; the card when the generator refuses
    let picture = match &content.images {
        Some(images) if item.content_type == ContentType::Image => {
            let prompt = image_prompt(&brand, &pillar, &generated.headline);
            match images.generate(&prompt, image_aspect(&sizes)).await {
                Ok(img) => Some(img),
                Err(e) if e.is_transient() => {
                    release(pool, agency, item_id, &e.to_string()).await?;
                    return Ok(after_provider_failure(e));
                }
                Err(e) => {
                    tracing::warn!(item = %item_id, provider = %images.name(), error = %e,
                        "image generation failed; falling back to the brand card");
                    None
                }
            }
        }
        _ => None,
    };
    let stored = if let Some(picture) = picture {
        let media_dir = content.media_dir.clone();
        cards::on_blocking_pool(move || store_generated(&picture, &sizes, &media_dir)).await?
    } else if item.content_type == ContentType::Image {
        let logo = match brand.logo_media_id {
            Some(logo) => sqlx::query_scalar!(
                "SELECT path FROM media_assets WHERE id = $1 AND agency_id = $2",
                logo,
                agency
            )
            .fetch_optional(pool)
            .await?
            .filter(|p| crate::media::valid_path(p))
            .map(|p| content.media_dir.join(p)),
            None => None,
        };
        let palette = cards::Palette::from_hex(
            &brand.palette.primary,
            &brand.palette.secondary,
            &brand.palette.background,
            &brand.palette.text,
        )
        .map_err(|e| anyhow::anyhow!("brand palette: {e}"))?;
        let job = CardJob {
            sizes,
            headline: generated.headline.clone(),
            footer: brand
                .handle
                .clone()
                .or_else(|| cta.clone())
                .unwrap_or_default(),
            palette,
            font: brand.font.clone(),
            logo,
            media_dir: content.media_dir.clone(),
            fonts: content
                .fonts
                .clone()
                .ok_or_else(|| anyhow::anyhow!("this process was not set up to render cards"))?,
        };
        cards::on_blocking_pool(move || render_cards(job)).await?
    } else {
        Vec::new()
    };

    // everything in one transaction, only while this run still holds the item
    let mut tx = pool.begin().await?;
    if !items::lock_generating(&mut tx, agency, item_id).await? {
        return Ok(Generation::Skipped(
            "the item changed while it was generated".into(),
        ));
    }
    for (kind, caption, verdict) in &verdicts {
        sqlx::query!(
            "INSERT INTO content_variants (item_id, agency_id, kind, caption, hashtags, cta, moderation_status, moderation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (item_id, kind) DO UPDATE SET caption = EXCLUDED.caption, hashtags = EXCLUDED.hashtags,
                 cta = EXCLUDED.cta, moderation_status = EXCLUDED.moderation_status, moderation = EXCLUDED.moderation",
            item_id,
            agency,
            kind.as_str(),
            caption,
            &hashtags,
            cta,
            if verdict.passed() { "pass" } else { "blocked" },
            verdict.to_json()
        )
        .execute(&mut *tx)
        .await?;
    }
    for card in &stored {
        let media_id = sqlx::query_scalar!(
            r#"WITH ins AS (
                   INSERT INTO media_assets (id, agency_id, client_id, sha256, path, mime, width, height, bytes, purpose)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT (agency_id, sha256, mime) DO NOTHING
                   RETURNING id)
               SELECT id AS "id!" FROM ins
               UNION ALL
               SELECT id FROM media_assets WHERE agency_id = $2 AND sha256 = $4 AND mime = $6
               LIMIT 1"#,
            Uuid::now_v7(),
            agency,
            client.id,
            &card.sha256[..],
            card.path,
            card.mime,
            card.width as i32,
            card.height as i32,
            card.bytes as i64,
            card.purpose
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO content_item_media (item_id, media_id, agency_id, size_label) VALUES ($1, $2, $3, $4)
             ON CONFLICT (item_id, size_label) DO UPDATE SET media_id = EXCLUDED.media_id",
            item_id,
            media_id,
            agency,
            card.label
        )
        .execute(&mut *tx)
        .await?;
    }
    let moderation = json!({
        "reasons": chosen.2.reasons,
        "variants": verdicts.iter().map(|(k, _, v)| (k.as_str(), v.to_json())).collect::<BTreeMap<_, _>>(),
    });
    let state = items::generated(
        &mut tx,
        agency,
        item_id,
        &items::Generated {
            pillar: &pillar,
            chosen_variant: chosen.0.as_str(),
            caption: &chosen.1,
            hashtags: &hashtags,
            cta: cta.as_deref(),
            passed,
            moderation,
            generator: content.provider.name(),
            auto_approve: client.auto_approve,
        },
    )
    .await;
    let state = match state {
        Ok(state) => state,
        Err(items::Failure::Refused(_)) => {
            return Ok(Generation::Skipped(
                "the item changed while it was generated".into(),
            ));
        }
        Err(items::Failure::Database(e)) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(Generation::Generated {
        state: state.as_str().to_owned(),
        blocked: !passed,
    })
}

/// The `generate` job.
pub async fn run_generate(job: &JobContext, content: &Content) -> anyhow::Result<Outcome> {
    let agency = payload_uuid(job, "agency_id")?;
    let item = payload_uuid(job, "item_id")?;
    Ok(match generate(&job.pool, content, agency, item).await? {
        Generation::Generated { state, blocked } => {
            tracing::info!(%item, %state, blocked, "item generated");
            Outcome::Done
        }
        Generation::Skipped(why) => {
            tracing::info!(%item, why, "generation skipped");
            Outcome::Done
        }
        Generation::Retry { after, reason } => Outcome::RetryIn {
            delay: after.unwrap_or_else(|| GENERATE_BACKOFF.delay(job.job.attempt)),
            reason,
        },
        Generation::Postpone { after, reason } => Outcome::Postpone {
            delay: after,
            reason,
        },
        Generation::Failed(reason) => Outcome::Fail(reason),
    })
}
