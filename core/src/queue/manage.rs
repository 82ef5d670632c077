//! Moving jobs by hand or on behalf of the state they serve: cancel the jobs of work that is no
//! longer wanted, pull a job's time forward or back, retry or discard a failed job, release what
//! a kill switch held, and the reads the console and the planner make of the table. Every
//! statement runs on the caller's executor, so it commits with the change that caused it.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::RunAt;

/// Cancel the unfinished jobs of `kind` with these unique keys: one that has not started never
/// will; a running one is asked to stop (its handler sees the request at its next check).
/// Returns how many jobs were cancelled or asked.
pub async fn cancel_by_keys(
    conn: impl PgExecutor<'_>,
    kind: &str,
    keys: &[String],
) -> sqlx::Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query!(
        "UPDATE jobs SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
                finished_at = CASE WHEN state = 'running' THEN finished_at ELSE now() END,
                cancel_requested = (state = 'running')
         WHERE kind = $1 AND unique_key = ANY($2) AND state IN ('available', 'held', 'running')",
        kind,
        keys
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Move a job that waits to run to a new time (`RunAt::Now`: due at once). A job that already
/// runs, is held or finished is left alone. Returns whether it moved.
pub async fn set_run_at(conn: impl PgExecutor<'_>, id: i64, at: RunAt) -> sqlx::Result<bool> {
    let (at, delay): (Option<DateTime<Utc>>, f64) = match at {
        RunAt::Now => (None, 0.0),
        RunAt::In(d) => (None, d.as_secs_f64()),
        RunAt::At(t) => (Some(t), 0.0),
    };
    Ok(sqlx::query!(
        "UPDATE jobs SET run_at = coalesce($2, now() + make_interval(secs => $3))
         WHERE id = $1 AND state = 'available'",
        id,
        at,
        delay
    )
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Held jobs that no engaged kill switch covers any more become due now. Returns the count.
pub async fn release_uncovered(conn: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE jobs SET state = 'available', run_at = now(), last_error = NULL
         WHERE state = 'held' AND NOT kill_switch_covers(agency_id, client_id, account_id, platform)"
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// A job as a person acting on it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHead {
    pub kind: String,
    pub state: String,
    pub agency_id: Option<Uuid>,
}

/// Lock a job of `agency` (or, with `system`, a job of no agency) for an action on it.
pub async fn lock_for_action(
    conn: &mut PgConnection,
    id: i64,
    agency: Uuid,
    system: bool,
) -> sqlx::Result<Option<JobHead>> {
    let row = sqlx::query!(
        "SELECT kind, state, agency_id FROM jobs WHERE id = $1 AND (agency_id = $2 OR (agency_id IS NULL AND $3)) FOR UPDATE",
        id,
        agency,
        system
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| JobHead {
        kind: r.kind,
        state: r.state,
        agency_id: r.agency_id,
    }))
}

/// What retrying a failed job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// Due now with a fresh set of attempts (the last error stays until it runs).
    Retried,
    /// Not failed (any more): nothing changed.
    NotFailed,
    /// The same work (kind and unique key) is already queued or running: nothing changed.
    Duplicate,
}

/// Retry a failed job. The statement runs under a savepoint, so a duplicate leaves the caller's
/// transaction usable.
pub async fn retry(conn: &mut PgConnection, id: i64) -> sqlx::Result<Retried> {
    sqlx::query("SAVEPOINT retry_job")
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query!(
        "UPDATE jobs SET state = 'available', run_at = now(), attempts = 0, finished_at = NULL, cancel_requested = false
         WHERE id = $1 AND state = 'failed'",
        id
    )
    .execute(&mut *conn)
    .await;
    match r {
        Ok(done) => {
            sqlx::query("RELEASE SAVEPOINT retry_job")
                .execute(&mut *conn)
                .await?;
            Ok(if done.rows_affected() > 0 {
                Retried::Retried
            } else {
                Retried::NotFailed
            })
        }
        Err(e) if e.as_database_error().and_then(|d| d.constraint()) == Some("jobs_unique_key") => {
            sqlx::query("ROLLBACK TO SAVEPOINT retry_job")
                .execute(&mut *conn)
                .await?;
            Ok(Retried::Duplicate)
        }
        Err(e) => Err(e),
    }
}

/// Discard a failed job: it stays visible as discarded and never runs. Returns whether it was
/// failed.
pub async fn discard(conn: impl PgExecutor<'_>, id: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE jobs SET state = 'discarded' WHERE id = $1 AND state = 'failed'",
        id
    )
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// The clients that have an unfinished job of `kind` (waiting, running or held).
pub async fn clients_with_unfinished(
    conn: impl PgExecutor<'_>,
    kind: &str,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT client_id AS "client_id!" FROM jobs
           WHERE kind = $1 AND client_id IS NOT NULL AND state IN ('available', 'running', 'held')"#,
        kind
    )
    .fetch_all(conn)
    .await
}

/// Unfinished jobs of one kind, as the console shows the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct KindDepth {
    pub kind: String,
    pub due: i64,
    pub scheduled: i64,
    pub running: i64,
    pub held: i64,
    /// How long the oldest due job has waited.
    pub lag_secs: Option<f64>,
}

/// The queue by kind for `agency` (with `system`, also the jobs of no agency).
pub async fn depth_by_kind(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    system: bool,
) -> sqlx::Result<Vec<KindDepth>> {
    sqlx::query_as!(
        KindDepth,
        r#"SELECT kind,
                  count(*) FILTER (WHERE state = 'available' AND run_at <= now()) AS "due!",
                  count(*) FILTER (WHERE state = 'available' AND run_at > now()) AS "scheduled!",
                  count(*) FILTER (WHERE state = 'running') AS "running!",
                  count(*) FILTER (WHERE state = 'held') AS "held!",
                  extract(epoch FROM now() - min(run_at) FILTER (WHERE state = 'available' AND run_at <= now()))::float8 AS lag_secs
           FROM jobs
           WHERE state IN ('available', 'running', 'held') AND (agency_id = $1 OR (agency_id IS NULL AND $2))
           GROUP BY kind ORDER BY kind"#,
        agency,
        system
    )
    .fetch_all(conn)
    .await
}

/// A job running now.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningJob {
    pub id: i64,
    pub kind: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub locked_by: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
}

/// The running jobs of `agency` (with `system`, also those of no agency), oldest first.
pub async fn running(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    system: bool,
    limit: i64,
) -> sqlx::Result<Vec<RunningJob>> {
    sqlx::query_as!(
        RunningJob,
        r#"SELECT id, kind, attempts, max_attempts, locked_by, started_at
           FROM jobs WHERE state = 'running' AND (agency_id = $1 OR (agency_id IS NULL AND $2))
           ORDER BY started_at NULLS LAST, id LIMIT $3"#,
        agency,
        system,
        limit
    )
    .fetch_all(conn)
    .await
}

/// A job that failed for good.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedJob {
    pub id: i64,
    pub kind: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub finished_at: DateTime<Utc>,
    /// A job of no agency.
    pub system: bool,
}

/// Failed jobs of `agency` (with `system`, also those of no agency), newest first, after the
/// keyset cursor `before` (finished at, id) of the previous page.
pub async fn failed(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    system: bool,
    before: (Option<DateTime<Utc>>, Option<i64>),
    limit: i64,
) -> sqlx::Result<Vec<FailedJob>> {
    sqlx::query_as!(
        FailedJob,
        r#"SELECT id, kind, attempts, max_attempts, last_error, finished_at AS "finished_at!", agency_id IS NULL AS "system!"
           FROM jobs
           WHERE state = 'failed' AND (agency_id = $1 OR (agency_id IS NULL AND $2))
             AND ($3::timestamptz IS NULL OR (finished_at, id) < ($3, $4))
           ORDER BY finished_at DESC, id DESC
           LIMIT $5"#,
        agency,
        system,
        before.0,
        before.1.unwrap_or(i64::MAX),
        limit
    )
    .fetch_all(conn)
    .await
}

/// How long the oldest due job of `agency` has waited, and how many are due (counted up to
/// `cap + 1`, so a page can say "more than `cap`").
pub async fn due_for_agency(
    conn: &mut PgConnection,
    agency: Uuid,
    cap: i64,
) -> sqlx::Result<(Option<f64>, i64)> {
    let lag = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM now() - min(run_at))::float8 FROM jobs
           WHERE agency_id = $1 AND state = 'available' AND run_at <= now()"#,
        agency
    )
    .fetch_one(&mut *conn)
    .await?;
    let due = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM (SELECT 1 FROM jobs
               WHERE agency_id = $1 AND state = 'available' AND run_at <= now() LIMIT $2) d"#,
        agency,
        cap + 1
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((lag, due))
}
