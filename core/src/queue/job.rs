//! Job kinds as types: a kind is a serde payload struct implementing [`Job`], which names the
//! kind and carries its settings (priority, attempts, backoff, uniqueness, the kill-switch scope
//! it runs under, periodicity) in one place. Typed enqueueing ([`NewJob::typed`],
//! [`enqueue_typed`]) is built on the untyped primitive ([`NewJob`], [`super::enqueue`]);
//! [`super::runner::KindSpec::of`] registers a kind by type and decodes its payload before the
//! handler runs, failing the job for good when the payload does not decode.
//!
//! The concrete kinds live in [`crate::jobs`]; the worker binary implements its handlers for
//! them.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use uuid::Uuid;

use super::runner::Backoff;
use super::{Enqueued, NewJob, RunAt, Scope};
use crate::domain::Platform;

/// A kind of job: its payload is `Self`, stored as JSON in `jobs.payload`.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind's name in `jobs.kind`; unique over the application.
    const KIND: &'static str;
    /// Lower runs first among due jobs.
    const PRIORITY: i16 = 100;
    /// Attempts before the job fails for good.
    const MAX_ATTEMPTS: i32 = 10;
    /// Delay before the next attempt after a handler error.
    const BACKOFF: Backoff = Backoff::DEFAULT;
    /// Periodic work: the runner keeps one job of the kind (unique key `periodic:<kind>`, an
    /// empty payload) and re-enqueues it this long after each run.
    const EVERY: Option<Duration> = None;

    /// What the job touches: the kill switches that cover it and the scope columns written with
    /// it. `()` for internal work no switch stops.
    type Target: Into<Scope> + Send;

    /// At most one unfinished job of the kind with this key exists.
    fn unique_key(&self) -> Option<String> {
        None
    }
}

/// The scope of a client's work (planning, generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTarget {
    pub agency_id: Uuid,
    pub client_id: Uuid,
}

/// Work for an agency that no kill switch stops by itself (webhook deliveries): the agency is
/// written with the job so the agency's views of the queue show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgencyTarget {
    pub agency_id: Uuid,
}

impl From<AgencyTarget> for Scope {
    fn from(t: AgencyTarget) -> Scope {
        Scope {
            agency_id: Some(t.agency_id),
            ..Scope::default()
        }
    }
}

/// The scope of work on one connected account (publishing, token refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountTarget {
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub account_id: Uuid,
    pub platform: Platform,
}

impl From<()> for Scope {
    fn from(_: ()) -> Scope {
        Scope::default()
    }
}

impl From<ClientTarget> for Scope {
    fn from(t: ClientTarget) -> Scope {
        Scope {
            agency_id: Some(t.agency_id),
            client_id: Some(t.client_id),
            ..Scope::default()
        }
    }
}

impl From<AccountTarget> for Scope {
    fn from(t: AccountTarget) -> Scope {
        Scope {
            agency_id: Some(t.agency_id),
            client_id: Some(t.client_id),
            account_id: Some(t.account_id),
            platform: Some(t.platform),
        }
    }
}

impl NewJob {
    /// A job of kind `J` with its payload and the kind's settings, due now; change when it runs
    /// with [`NewJob::run_at`].
    pub fn typed<J: Job>(job: &J, target: J::Target) -> NewJob {
        let payload = serde_json::to_value(job)
            .expect("job payloads are plain structs and always serialize to JSON");
        let mut new = NewJob::new(J::KIND, payload)
            .priority(J::PRIORITY)
            .max_attempts(J::MAX_ATTEMPTS)
            .scope(target.into());
        new.unique_key = job.unique_key();
        new
    }
}

/// Enqueue a job of kind `J` inside the caller's transaction (see [`super::enqueue`]).
pub async fn enqueue_typed<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    target: J::Target,
    run_at: RunAt,
) -> sqlx::Result<Enqueued> {
    super::enqueue(conn, &NewJob::typed(job, target).run_at(run_at)).await
}

/// Decode a claimed job's payload as kind `J`; the error is the reason the job fails with.
pub fn decode<J: Job>(payload: &serde_json::Value) -> Result<J, String> {
    J::deserialize(payload).map_err(|e| format!("malformed `{}` job payload: {e}", J::KIND))
}
