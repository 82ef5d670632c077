//! The job queue: one Postgres table, claimed with `FOR UPDATE SKIP LOCKED`, leased, retried
//! with backoff, unique per key over unfinished work. Every instant is the database's `now()`.
//!
//! This module holds the SQL; [`runner`] runs jobs in a worker process; [`job`] makes job kinds
//! types. States are [`JobState`] in Rust (bound and decoded as `"state: JobState"`); the
//! `WHERE` clauses keep literal states because a partial index (the claim's, the unique key's)
//! is only used for a predicate that names its states literally.

pub mod job;
pub mod lease;
mod manage;
pub mod runner;

pub use manage::*;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::{JobState, Platform};

/// The channel workers LISTEN on; the payload is the kind that became available.
pub const CHANNEL: &str = "autosocial_jobs";

/// What a job touches, for kill switches and rate limits. Empty for internal work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    pub agency_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub platform: Option<Platform>,
}

/// When a new job may run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunAt {
    Now,
    /// After this long, measured from the database's `now()`.
    In(Duration),
    At(DateTime<Utc>),
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub priority: i16,
    pub run_at: RunAt,
    pub max_attempts: i32,
    pub unique_key: Option<String>,
    pub scope: Scope,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: Value) -> NewJob {
        NewJob {
            kind: kind.into(),
            payload,
            priority: 100,
            run_at: RunAt::Now,
            max_attempts: 10,
            unique_key: None,
            scope: Scope::default(),
        }
    }
    /// At most one unfinished job of this kind with this key exists.
    pub fn unique(mut self, key: impl Into<String>) -> NewJob {
        self.unique_key = Some(key.into());
        self
    }
    pub fn run_at(mut self, at: RunAt) -> NewJob {
        self.run_at = at;
        self
    }
    /// Lower runs first.
    pub fn priority(mut self, p: i16) -> NewJob {
        self.priority = p;
        self
    }
    pub fn max_attempts(mut self, n: i32) -> NewJob {
        self.max_attempts = n.max(1);
        self
    }
    pub fn scope(mut self, scope: Scope) -> NewJob {
        self.scope = scope;
        self
    }

    fn at_and_delay(&self) -> (Option<DateTime<Utc>>, f64) {
        match self.run_at {
            RunAt::Now => (None, 0.0),
            RunAt::In(d) => (None, d.as_secs_f64()),
            RunAt::At(t) => (Some(t), 0.0),
        }
    }
}

/// Result of an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Created(i64),
    /// An unfinished job with the same kind and unique key exists; nothing was added.
    AlreadyThere(i64),
}

impl Enqueued {
    pub fn id(self) -> i64 {
        match self {
            Enqueued::Created(id) | Enqueued::AlreadyThere(id) => id,
        }
    }
}

/// Enqueue one job inside the caller's transaction: it exists iff the caller commits.
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> sqlx::Result<Enqueued> {
    let (at, delay) = job.at_and_delay();
    let created = sqlx::query_scalar!(
        r#"INSERT INTO jobs (kind, payload, priority, run_at, max_attempts, unique_key, agency_id, client_id, account_id, platform)
           VALUES ($1, $2, $3, coalesce($4, now() + make_interval(secs => $5)), $6, $7, $8, $9, $10, $11)
           ON CONFLICT (kind, unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'held')
           DO NOTHING
           RETURNING id"#,
        job.kind,
        job.payload,
        job.priority,
        at,
        delay,
        job.max_attempts,
        job.unique_key,
        job.scope.agency_id,
        job.scope.client_id,
        job.scope.account_id,
        job.scope.platform.map(|p| p.as_str()),
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = created {
        return Ok(Enqueued::Created(id));
    }
    let existing = sqlx::query_scalar!(
        "SELECT id FROM jobs WHERE kind = $1 AND unique_key = $2 AND state IN ('available', 'running', 'held')",
        job.kind,
        job.unique_key
    )
    .fetch_optional(&mut *conn)
    .await?;
    match existing {
        Some(id) => Ok(Enqueued::AlreadyThere(id)),
        // the other job finished between the two statements: try once more
        None => Box::pin(enqueue(conn, job)).await,
    }
}

/// Enqueue many jobs in one statement (one NOTIFY per kind). Returns how many were created;
/// jobs whose unique key is taken are skipped.
pub async fn enqueue_many(conn: &mut PgConnection, jobs: &[NewJob]) -> sqlx::Result<u64> {
    let mut kinds = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    let mut priorities = Vec::with_capacity(jobs.len());
    let mut ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(jobs.len());
    let mut delays = Vec::with_capacity(jobs.len());
    let mut max_attempts = Vec::with_capacity(jobs.len());
    let mut keys: Vec<Option<String>> = Vec::with_capacity(jobs.len());
    let mut agencies: Vec<Option<Uuid>> = Vec::with_capacity(jobs.len());
    let mut clients: Vec<Option<Uuid>> = Vec::with_capacity(jobs.len());
    let mut accounts: Vec<Option<Uuid>> = Vec::with_capacity(jobs.len());
    let mut platforms: Vec<Option<String>> = Vec::with_capacity(jobs.len());
    for j in jobs {
        let (at, delay) = j.at_and_delay();
        kinds.push(j.kind.clone());
        payloads.push(j.payload.clone());
        priorities.push(j.priority);
        ats.push(at);
        delays.push(delay);
        max_attempts.push(j.max_attempts);
        keys.push(j.unique_key.clone());
        agencies.push(j.scope.agency_id);
        clients.push(j.scope.client_id);
        accounts.push(j.scope.account_id);
        platforms.push(j.scope.platform.map(|p| p.as_str().to_owned()));
    }
    let r = sqlx::query!(
        r#"INSERT INTO jobs (kind, payload, priority, run_at, max_attempts, unique_key, agency_id, client_id, account_id, platform)
           SELECT k, p, pr, coalesce(a, now() + make_interval(secs => d)), m, u, ag, cl, ac, pl
           FROM unnest($1::text[], $2::jsonb[], $3::int2[], $4::timestamptz[], $5::float8[], $6::int4[], $7::text[],
                       $8::uuid[], $9::uuid[], $10::uuid[], $11::text[]) AS t(k, p, pr, a, d, m, u, ag, cl, ac, pl)
           ON CONFLICT (kind, unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'held')
           DO NOTHING"#,
        &kinds,
        &payloads,
        &priorities,
        &ats as &[Option<DateTime<Utc>>],
        &delays,
        &max_attempts,
        &keys as &[Option<String>],
        &agencies as &[Option<Uuid>],
        &clients as &[Option<Uuid>],
        &accounts as &[Option<Uuid>],
        &platforms as &[Option<String>],
    )
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// A job this worker holds a lease on.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    /// This claim's fencing token: every statement about the run names `(id, lease_token)`, so
    /// nothing a run does after losing its lease (a freeze, a rescue, another claim of the same
    /// job, even by the same process) changes the job.
    pub lease_token: i64,
    pub kind: String,
    pub payload: Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub unique_key: Option<String>,
    pub scope: Scope,
    /// How late the job started: the database's claim time minus its `run_at`.
    pub lag: Duration,
}

/// Claim due jobs in one statement: up to its limit of each kind in `wants` (each at most
/// `total`), and at most `total` over all of them, the most urgent first (priority, then
/// `run_at`). Every kind with room is asked each time, so a due job never waits for its kind's
/// turn. The `FOR UPDATE SKIP LOCKED` subquery sits in a CTE (a planner fence) so exactly the
/// picked rows are updated; rows a kind's subquery locked beyond `total` are free again when the
/// statement ends (meanwhile other workers skip them and come back at once: they were due).
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    wants: &[(&str, i64)],
    total: i64,
    lease: Duration,
) -> sqlx::Result<Vec<ClaimedJob>> {
    let kinds: Vec<&str> = wants.iter().map(|w| w.0).collect();
    let limits: Vec<i64> = wants.iter().map(|w| w.1).collect();
    let token: i64 = rand::random();
    let rows = sqlx::query!(
        r#"WITH picked AS MATERIALIZED (
               SELECT x.id
               FROM unnest($1::text[], $2::int8[]) AS w(kind, lim)
               CROSS JOIN LATERAL (
                   SELECT id, priority, run_at FROM jobs
                   WHERE state = 'available' AND kind = w.kind AND run_at <= now()
                   ORDER BY priority, run_at, id
                   LIMIT w.lim
                   FOR UPDATE SKIP LOCKED
               ) x
               ORDER BY x.priority, x.run_at, x.id
               LIMIT $5
           )
           UPDATE jobs j
           SET state = 'running', attempts = j.attempts + 1, locked_by = $3,
               locked_until = now() + make_interval(secs => $4), started_at = now(), lease_token = $6
           -- an id array, not a join: the planner would hash-join against the whole table
           WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
           RETURNING j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.unique_key,
                     j.agency_id, j.client_id, j.account_id, j.platform,
                     greatest(extract(epoch FROM now() - j.run_at), 0)::float8 AS "lag_secs!""#,
        &kinds as &[&str],
        &limits,
        worker,
        lease.as_secs_f64(),
        total,
        token,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ClaimedJob {
            id: r.id,
            lease_token: token,
            kind: r.kind,
            payload: r.payload,
            attempt: r.attempts,
            max_attempts: r.max_attempts,
            unique_key: r.unique_key,
            scope: Scope {
                agency_id: r.agency_id,
                client_id: r.client_id,
                account_id: r.account_id,
                platform: r.platform.and_then(|p| p.parse().ok()),
            },
            lag: Duration::from_secs_f64(r.lag_secs.max(0.0)),
        })
        .collect())
}

/// Seconds from the database's `now()` until the earliest available job of these kinds is due
/// (zero when one is due already); `None` when there is none.
pub async fn next_due_in(pool: &PgPool, kinds: &[&str]) -> sqlx::Result<Option<Duration>> {
    let secs = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM min(x.run_at) - now())::float8
           FROM unnest($1::text[]) AS k(kind)
           CROSS JOIN LATERAL (
               SELECT run_at FROM jobs WHERE state = 'available' AND kind = k.kind ORDER BY run_at LIMIT 1
           ) x"#,
        kinds as &[&str]
    )
    .fetch_one(pool)
    .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

// Statements that change several of one worker's running jobs lock them in id order first
// (`mine`): the heartbeat renews the leases of jobs the finisher is completing or postponing at
// the same moment, and two multi-row updates that lock in different orders deadlock. Each row
// is found by its primary key alone (`OFFSET 0` keeps the other conditions out of the lateral
// subquery) and its lease, worker and state are checked on the locked row: otherwise the planner
// may read the partial index of running jobs, which in a burst holds thousands of rows, and
// filter it on every call.

/// A run of a job: its id and its claim's fencing token.
pub type Run = (i64, i64);

fn split(runs: &[Run]) -> (Vec<i64>, Vec<i64>) {
    runs.iter().copied().unzip()
}

/// Mark jobs done (only the runs that still hold them).
pub async fn complete(pool: &PgPool, worker: &str, runs: &[Run]) -> sqlx::Result<u64> {
    let (ids, tokens) = split(runs);
    Ok(sqlx::query!(
        "WITH mine AS MATERIALIZED (
             SELECT j.id FROM (SELECT * FROM unnest($1::int8[], $3::int8[]) AS r(id, token) ORDER BY id) r
             CROSS JOIN LATERAL (SELECT id, lease_token, locked_by, state FROM jobs WHERE id = r.id OFFSET 0 FOR UPDATE) j
             WHERE j.lease_token = r.token AND j.locked_by = $2 AND j.state = 'running')
         UPDATE jobs SET state = $4, finished_at = now(), locked_by = NULL, locked_until = NULL
         WHERE id = ANY(ARRAY(SELECT id FROM mine))",
        &ids,
        worker,
        &tokens,
        JobState::Completed as _
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Record a failed attempt: retry after `delay`, or fail for good when attempts are exhausted.
/// Returns whether the job will run again.
pub async fn retry_or_fail(
    pool: &PgPool,
    worker: &str,
    (id, token): Run,
    delay: Duration,
    error: &str,
) -> sqlx::Result<bool> {
    let again = sqlx::query_scalar!(
        r#"UPDATE jobs SET
               state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'available' END,
               finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
               run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE now() + make_interval(secs => $3) END,
               last_error = left($4, 4000), locked_by = NULL, locked_until = NULL
           WHERE id = $1 AND locked_by = $2 AND state = 'running' AND lease_token = $5
           RETURNING state AS "state: JobState""#,
        id,
        worker,
        delay.as_secs_f64(),
        error,
        token
    )
    .fetch_optional(pool)
    .await?;
    Ok(again == Some(JobState::Available))
}

/// A run to give back to the queue without counting its attempt.
#[derive(Debug, Clone)]
pub struct Postponed {
    pub run: Run,
    pub delay: Duration,
    /// A new priority for the job, if it should come back at another one.
    pub priority: Option<i16>,
    pub reason: String,
}

/// Run these jobs again after their delays without counting the attempt (a rate limit said
/// "not yet"; nothing was attempted), in one statement. Committed without waiting for the disk:
/// the statement notifies (which serialises commits), and if the database loses it in a crash
/// the jobs are still this worker's and come back when their leases expire.
pub async fn postpone_many(pool: &PgPool, worker: &str, jobs: &[Postponed]) -> sqlx::Result<u64> {
    let ids: Vec<i64> = jobs.iter().map(|j| j.run.0).collect();
    let tokens: Vec<i64> = jobs.iter().map(|j| j.run.1).collect();
    let delays: Vec<f64> = jobs.iter().map(|j| j.delay.as_secs_f64()).collect();
    let priorities: Vec<Option<i16>> = jobs.iter().map(|j| j.priority).collect();
    let reasons: Vec<&str> = jobs.iter().map(|j| j.reason.as_str()).collect();
    Ok(sqlx::query!(
        "WITH mine AS MATERIALIZED (
             SELECT j.id FROM (SELECT * FROM unnest($1::int8[], $5::int8[]) AS r(id, token) ORDER BY id) r
             CROSS JOIN LATERAL (SELECT id, lease_token, locked_by, state FROM jobs WHERE id = r.id OFFSET 0 FOR UPDATE) j
             WHERE j.lease_token = r.token AND j.locked_by = $4 AND j.state = 'running')
         UPDATE jobs j SET state = 'available', run_at = now() + make_interval(secs => p.delay),
                attempts = greatest(j.attempts - 1, 0), last_error = left(p.reason, 4000),
                priority = coalesce(p.priority, j.priority), locked_by = NULL, locked_until = NULL
         FROM unnest($1::int8[], $2::float8[], $3::text[], $6::int2[]) AS p(id, delay, reason, priority)
         WHERE j.id = p.id AND j.id = ANY(ARRAY(SELECT id FROM mine))
           AND set_config('synchronous_commit', 'off', true) IS NOT NULL",
        &ids,
        &delays,
        &reasons as &[&str],
        worker,
        &tokens,
        &priorities as &[Option<i16>]
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Fail at once (a permanent error), keeping the reason.
pub async fn fail(pool: &PgPool, worker: &str, (id, token): Run, error: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE jobs SET state = $5, finished_at = now(), last_error = left($3, 4000), locked_by = NULL, locked_until = NULL
         WHERE id = $1 AND locked_by = $2 AND state = 'running' AND lease_token = $4",
        id,
        worker,
        error,
        token,
        JobState::Failed as _
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Park a job until a kill switch over its scope is disengaged; the attempt is not counted.
/// If no switch covers it any more (disengaged a moment ago) it goes straight back to the
/// queue instead. Serialised against `killswitch::disengage` so a job is never parked after
/// the release ran. Returns whether the job was held.
pub async fn hold(
    pool: &PgPool,
    worker: &str,
    (id, token): Run,
    reason: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock_shared($1)",
        crate::killswitch::HOLD_LOCK
    )
    .execute(&mut *tx)
    .await?;
    let held = sqlx::query_scalar!(
        r#"UPDATE jobs SET
               state = CASE WHEN kill_switch_covers(agency_id, client_id, account_id, platform) THEN 'held' ELSE 'available' END,
               attempts = greatest(attempts - 1, 0), last_error = left($3, 4000), run_at = now(),
               locked_by = NULL, locked_until = NULL
           WHERE id = $1 AND locked_by = $2 AND state = 'running' AND lease_token = $4
           RETURNING state AS "state: JobState""#,
        id,
        worker,
        reason,
        token
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(held == Some(JobState::Held))
}

/// What a heartbeat learned about one running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseState {
    pub run: Run,
    pub cancel_requested: bool,
}

/// Extend the leases of the runs this worker has going. Runs missing from the answer lost their
/// job (rescued after an expired lease, claimed again since, or finished elsewhere). A lease
/// that has already expired is not extended, even if nobody rescued it yet: its run may have
/// been judged dead, and it must stop rather than race the rescuer.
pub async fn renew(
    pool: &PgPool,
    worker: &str,
    runs: &[Run],
    lease: Duration,
) -> sqlx::Result<Vec<LeaseState>> {
    let (ids, tokens) = split(runs);
    let rows = sqlx::query!(
        r#"WITH mine AS MATERIALIZED (
               SELECT j.id FROM (SELECT * FROM unnest($1::int8[], $4::int8[]) AS r(id, token) ORDER BY id) r
               CROSS JOIN LATERAL (SELECT id, lease_token, locked_by, state, locked_until FROM jobs WHERE id = r.id OFFSET 0 FOR UPDATE) j
               WHERE j.lease_token = r.token AND j.locked_by = $2 AND j.state = 'running' AND j.locked_until > now())
           UPDATE jobs SET locked_until = now() + make_interval(secs => $3)
           WHERE id = ANY(ARRAY(SELECT id FROM mine))
           RETURNING id, lease_token AS "lease_token!", cancel_requested"#,
        &ids,
        worker,
        lease.as_secs_f64(),
        &tokens
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LeaseState {
            run: (r.id, r.lease_token),
            cancel_requested: r.cancel_requested,
        })
        .collect())
}

/// Return jobs whose lease expired (their worker died or stalled) to `available`, or fail them
/// when that was their last attempt. Any worker may run this; SKIP LOCKED keeps them apart.
pub async fn rescue_expired(pool: &PgPool, limit: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        r#"WITH expired AS MATERIALIZED (
               SELECT id FROM jobs WHERE state = 'running' AND locked_until < now()
               ORDER BY locked_until LIMIT $1 FOR UPDATE SKIP LOCKED
           )
           UPDATE jobs j SET
               state = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'available' END,
               finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
               run_at = now(),
               last_error = 'lease expired: worker ' || j.locked_by || ' stopped renewing it',
               locked_by = NULL, locked_until = NULL
           WHERE j.id = ANY(ARRAY(SELECT id FROM expired))"#,
        limit
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It had not started; it never will.
    Cancelled,
    /// It is running; its handler sees the request at its next check.
    Requested,
    /// Too late: it had already finished.
    AlreadyFinished,
    NotFound,
}

pub async fn cancel(pool: &PgPool, id: i64) -> sqlx::Result<Cancelled> {
    let state = sqlx::query_scalar!(
        r#"WITH target AS (SELECT id, state FROM jobs WHERE id = $1 FOR UPDATE)
           UPDATE jobs j SET
               state = CASE WHEN t.state IN ('available', 'held') THEN 'cancelled' ELSE j.state END,
               finished_at = CASE WHEN t.state IN ('available', 'held') THEN now() ELSE j.finished_at END,
               cancel_requested = (t.state = 'running') OR j.cancel_requested
           FROM target t WHERE j.id = t.id
           RETURNING t.state AS "state: JobState""#,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(match state {
        None => Cancelled::NotFound,
        Some(JobState::Available | JobState::Held) => Cancelled::Cancelled,
        Some(JobState::Running) => Cancelled::Requested,
        Some(_) => Cancelled::AlreadyFinished,
    })
}

/// The handler saw the cancellation request: finish as cancelled.
pub async fn mark_cancelled(pool: &PgPool, worker: &str, (id, token): Run) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE jobs SET state = $4, finished_at = now(), locked_by = NULL, locked_until = NULL
         WHERE id = $1 AND locked_by = $2 AND state = 'running' AND lease_token = $3",
        id,
        worker,
        token,
        JobState::Cancelled as _
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Finish a periodic job and enqueue its next run in one transaction, so exactly one unfinished
/// job with its unique key exists at every moment.
pub async fn complete_and_reschedule(
    pool: &PgPool,
    worker: &str,
    (id, token): Run,
    next: &NewJob,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query!(
        "UPDATE jobs SET state = $4, finished_at = now(), locked_by = NULL, locked_until = NULL
         WHERE id = $1 AND locked_by = $2 AND state = 'running' AND lease_token = $3",
        id,
        worker,
        token,
        JobState::Completed as _
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        enqueue(&mut tx, next).await?;
    }
    tx.commit().await
}

/// Delete jobs finished longer ago than `keep`, `batch` rows per statement. Returns the count.
pub async fn prune(pool: &PgPool, keep: Duration, batch: i64) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let n = sqlx::query!(
            "DELETE FROM jobs WHERE id IN (
                 SELECT id FROM jobs WHERE finished_at < now() - make_interval(secs => $1)
                 ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            keep.as_secs_f64(),
            batch
        )
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < batch as u64 {
            return Ok(total);
        }
    }
}

/// Jobs by kind and state (unfinished only), for metrics and the console.
pub async fn depth(pool: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, JobState, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT kind, state AS "state: JobState", count(*) AS "n!" FROM jobs WHERE state IN ('available', 'running', 'held') GROUP BY kind, state ORDER BY kind, state"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kind, r.state, r.n)).collect())
}
