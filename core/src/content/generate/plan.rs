//! Planning: the `plan_sweep` job makes sure every active client has a `plan` job; `plan` turns
//! a client's rules into `planned` items for the next [`PLAN_DAYS`] days (through
//! [`crate::items::plan`]) and enqueues one `generate` job per planned item.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveTime, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{PLAN, PLAN_DAYS, payload_uuid};
use crate::content::brand;
use crate::content::provider::ContentType;
use crate::content::schedule::{self, Occupied};
use crate::content::slots;
use crate::domain::ClientStatus;
use crate::items::{self, PlannedSlot};
use crate::jobs::{GenerateItem, PlanWeek};
use crate::queue::job::{ClientTarget, Job};
use crate::queue::runner::{JobContext, Outcome};
use crate::queue::{self, NewJob, RunAt};

/// The unique key of a client's plan job for a local date.
pub fn plan_key(client: Uuid, local_date: chrono::NaiveDate) -> String {
    plan_week(Uuid::nil(), client, local_date)
        .unique_key()
        .expect("a plan job with a date is unique")
}

fn plan_week(agency: Uuid, client: Uuid, local_date: chrono::NaiveDate) -> PlanWeek {
    PlanWeek {
        agency_id: agency,
        client_id: client,
        date: Some(local_date),
    }
}

/// A plan job for `client`, keyed by the local date of `at`.
pub fn plan_job(agency: Uuid, client: Uuid, tz: chrono_tz::Tz, at: DateTime<Utc>) -> NewJob {
    NewJob::typed(
        &plan_week(agency, client, schedule::local_date(tz, at)),
        ClientTarget {
            agency_id: agency,
            client_id: client,
        },
    )
}

/// The generate job of an item.
pub fn generate_job(agency: Uuid, client: Uuid, item: Uuid) -> NewJob {
    NewJob::typed(
        &GenerateItem {
            agency_id: agency,
            item_id: item,
        },
        ClientTarget {
            agency_id: agency,
            client_id: client,
        },
    )
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
