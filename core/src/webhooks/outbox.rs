//! The transactional outbox: an event, its deliveries and their `webhook` jobs are written by
//! the statement that the state change's transaction runs, so they exist iff the change
//! commits. One statement whatever the number of endpoints; for an agency without an endpoint
//! that wants the type it is one probe of `webhook_endpoints_agency_idx` and writes nothing.
//!
//! The jobs are inserted here rather than through [`crate::queue::enqueue`] so that the whole
//! outbox write stays one statement (the publish path runs it inside its batched statement,
//! see `items::publications::published`); the kind's settings are bound from its
//! [`Job`] impl (the agency is the job's scope, as `AgencyTarget` writes it), and the `jobs` insert trigger wakes the workers as for any other job.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::EventType;
use crate::jobs::WebhookDelivery;
use crate::queue::job::Job;

/// The `webhook` job settings the outbox statements bind: kind, priority, attempts.
pub fn job_settings() -> (&'static str, i16, i32) {
    (
        WebhookDelivery::KIND,
        WebhookDelivery::PRIORITY,
        WebhookDelivery::MAX_ATTEMPTS,
    )
}

/// Emit `event` about `agency` (`None`: about the whole deployment, e.g. a global kill switch,
/// told to every agency with an endpoint that wants it) in the caller's transaction. Returns
/// how many deliveries were queued.
pub async fn emit(
    conn: impl PgExecutor<'_>,
    agency: Option<Uuid>,
    event: EventType,
    data: Value,
) -> sqlx::Result<u64> {
    let (kind, priority, attempts) = job_settings();
    let queued = sqlx::query_scalar!(
        r#"WITH e AS MATERIALIZED (
               SELECT id, agency_id FROM webhook_endpoints
               WHERE ($1::uuid IS NULL OR agency_id = $1) AND disabled_at IS NULL AND $2 = ANY(event_types)),
           ev AS (
               INSERT INTO webhook_events (id, agency_id, event_type, data)
               SELECT gen_random_uuid(), a.agency_id, $2, $3 FROM (SELECT DISTINCT agency_id FROM e) a
               RETURNING id, agency_id),
           d AS (
               INSERT INTO webhook_deliveries (id, agency_id, endpoint_id, event_id)
               SELECT gen_random_uuid(), e.agency_id, e.id, ev.id FROM e JOIN ev ON ev.agency_id = e.agency_id
               RETURNING id, agency_id),
           j AS (
               INSERT INTO jobs (kind, payload, priority, max_attempts, unique_key, agency_id)
               SELECT $4, jsonb_build_object('delivery_id', d.id), $5, $6, 'webhook:' || d.id, d.agency_id FROM d
               RETURNING 1)
           SELECT count(*) AS "n!" FROM j"#,
        agency,
        event.as_str(),
        data,
        kind,
        priority,
        attempts,
    )
    .fetch_one(conn)
    .await?;
    Ok(queued as u64)
}

/// Emit an event of `event_type` to one endpoint of `agency` only, whatever it subscribes to
/// (the console's "Send test event"). `None`: no such live endpoint.
pub async fn emit_to(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    endpoint: Uuid,
    event_type: &str,
    data: Value,
) -> sqlx::Result<Option<Uuid>> {
    let (kind, priority, attempts) = job_settings();
    sqlx::query_scalar!(
        r#"WITH e AS MATERIALIZED (
               SELECT id, agency_id FROM webhook_endpoints WHERE id = $1 AND agency_id = $2 AND disabled_at IS NULL),
           ev AS (
               INSERT INTO webhook_events (id, agency_id, event_type, data)
               SELECT gen_random_uuid(), e.agency_id, $3, $4 FROM e
               RETURNING id, agency_id),
           d AS (
               INSERT INTO webhook_deliveries (id, agency_id, endpoint_id, event_id)
               SELECT gen_random_uuid(), ev.agency_id, $1, ev.id FROM ev
               RETURNING id),
           j AS (
               INSERT INTO jobs (kind, payload, priority, max_attempts, unique_key, agency_id)
               SELECT $5, jsonb_build_object('delivery_id', d.id), $6, $7, 'webhook:' || d.id, $2 FROM d
               RETURNING 1)
           -- a data-modifying CTE runs to completion whether or not it is read
           SELECT ev.id AS "id!" FROM ev"#,
        endpoint,
        agency,
        event_type,
        data,
        kind,
        priority,
        attempts,
    )
    .fetch_optional(conn)
    .await
}
