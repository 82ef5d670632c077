//! Every job kind of the application: its payload struct and, on its [`Job`] impl, its settings.
//! This is the one place a kind's name, priority, attempts, backoff, uniqueness, kill-switch
//! scope and period are written; the worker binary runs them, anything in core or the admin
//! enqueues them with [`crate::queue::NewJob::typed`] or [`crate::queue::job::enqueue_typed`].

use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::queue::job::{AccountTarget, AgencyTarget, ClientTarget, Job};
use crate::queue::runner::Backoff;

/// Post one publication exactly once, reconciling an earlier attempt first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishPost {
    pub publication_id: Uuid,
}

impl Job for PublishPost {
    const KIND: &'static str = "publish";
    const PRIORITY: i16 = 50;
    /// Then a person has to look at the publication.
    const MAX_ATTEMPTS: i32 = 8;
    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(300),
    };
    type Target = AccountTarget;

    fn unique_key(&self) -> Option<String> {
        Some(format!("publish:{}", self.publication_id))
    }
}

/// Hand the publications whose publish job ended without finishing them to a person
/// ([`crate::items::publications::orphaned`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishSweep {}

impl Job for PublishSweep {
    const KIND: &'static str = "publish_sweep";
    const EVERY: Option<Duration> = Some(Duration::from_secs(60));
    type Target = ();
}

/// Read published posts' engagement from the platforms, a batch at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMetrics {}

impl Job for SyncMetrics {
    const KIND: &'static str = "sync_metrics";
    const EVERY: Option<Duration> = Some(Duration::from_secs(1800));
    type Target = ();
}

/// Delete finished jobs past the retention window, expired OAuth transactions and idle
/// rate-limit buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prune {}

impl Job for Prune {
    const KIND: &'static str = "prune";
    const EVERY: Option<Duration> = Some(Duration::from_secs(600));
    type Target = ();
}

/// Renew an account's tokens ahead of expiry; single-flight per account by its unique key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub account_id: Uuid,
}

impl Job for RefreshToken {
    const KIND: &'static str = "refresh_token";
    const MAX_ATTEMPTS: i32 = 20;
    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(900),
    };
    type Target = AccountTarget;

    fn unique_key(&self) -> Option<String> {
        Some(format!("refresh:{}", self.account_id))
    }
}

/// Refresh now every active account whose token expires within the hour (what a scheduled
/// refresh missed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshSweep {}

impl Job for RefreshSweep {
    const KIND: &'static str = "refresh_sweep";
    const EVERY: Option<Duration> = Some(Duration::from_secs(600));
    type Target = ();
}

/// Plan a client's week from its content rules, then schedule the next plan after the client's
/// next local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanWeek {
    pub agency_id: Uuid,
    pub client_id: Uuid,
    /// The client's local date the plan is for: one plan per client and date. Without it the
    /// job is not unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

impl Job for PlanWeek {
    const KIND: &'static str = "plan";
    type Target = ClientTarget;

    fn unique_key(&self) -> Option<String> {
        self.date
            .map(|d| format!("plan:{}:{}", self.client_id, d.format("%Y-%m-%d")))
    }
}

/// Enqueue a plan job for every active client without an unfinished one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSweep {}

impl Job for PlanSweep {
    const KIND: &'static str = "plan_sweep";
    const EVERY: Option<Duration> = Some(Duration::from_secs(600));
    type Target = ();
}

/// Fill one planned content item: caption, hashtags, moderation, image cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerateItem {
    pub agency_id: Uuid,
    pub item_id: Uuid,
}

impl Job for GenerateItem {
    const KIND: &'static str = "generate";
    const MAX_ATTEMPTS: i32 = 8;
    /// After a transient provider failure.
    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(900),
    };
    type Target = ClientTarget;

    fn unique_key(&self) -> Option<String> {
        Some(format!("generate:{}", self.item_id))
    }
}

/// Send one webhook delivery (an event to one endpoint), signed; retried for about a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub delivery_id: Uuid,
}

impl Job for WebhookDelivery {
    const KIND: &'static str = "webhook";
    const PRIORITY: i16 = 80;
    /// With the backoff below, the retries spread over about a day (each delay is drawn up to
    /// 1 min, 2, 4, … then 6 h: about 22 h in all on average, at most 44 h).
    const MAX_ATTEMPTS: i32 = 16;
    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(60),
        cap: Duration::from_secs(6 * 3600),
    };
    type Target = AgencyTarget;

    fn unique_key(&self) -> Option<String> {
        Some(format!("webhook:{}", self.delivery_id))
    }
}

/// Diagnostics (benchmarks): does nothing. Any payload fields are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "noop";
    type Target = ();
}

/// Diagnostics (fault tests): sleep `ms`, then append the job id to the Redis list `record`,
/// so a test can count executions from outside the process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagSleep {
    #[serde(default)]
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

impl Job for DiagSleep {
    const KIND: &'static str = "diag_sleep";
    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(5),
    };
    type Target = ();
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::content::{generate, schedule};
    use crate::domain::Platform;

    fn ids() -> (Uuid, Uuid, Uuid, Uuid) {
        (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        )
    }

    #[test]
    fn payloads_of_jobs_queued_before_typed_jobs_still_decode() {
        let (agency, _, account, publication) = ids();
        let p: PublishPost =
            crate::queue::job::decode(&json!({ "publication_id": publication })).unwrap();
        assert_eq!(p.publication_id, publication);
        let r: RefreshToken = crate::queue::job::decode(&json!({ "account_id": account })).unwrap();
        assert_eq!(r.account_id, account);
        let g: GenerateItem =
            crate::queue::job::decode(&json!({ "agency_id": agency, "item_id": publication }))
                .unwrap();
        assert_eq!((g.agency_id, g.item_id), (agency, publication));
        let plan: PlanWeek =
            crate::queue::job::decode(&json!({ "agency_id": agency, "client_id": account }))
                .unwrap();
        assert_eq!(
            (plan.client_id, plan.date, plan.unique_key()),
            (account, None, None)
        );
    }

    #[test]
    fn the_builders_core_enqueues_with_carry_each_kinds_settings() {
        let (agency, client, account, publication) = ids();
        let at = Utc.with_ymd_and_hms(2026, 12, 8, 23, 30, 0).unwrap();
        let publish =
            crate::publishing::publish_job(agency, client, account, Platform::X, publication, at);
        assert_eq!(publish.kind, "publish");
        assert_eq!((publish.priority, publish.max_attempts), (50, 8));
        assert_eq!(publish.unique_key, Some(format!("publish:{publication}")));
        assert_eq!(publish.scope.account_id, Some(account));
        assert_eq!(publish.payload, json!({ "publication_id": publication }));

        let generate = generate::generate_job(agency, client, publication);
        assert_eq!(
            (generate.kind.as_str(), generate.max_attempts),
            ("generate", 8)
        );
        assert_eq!(generate.unique_key, Some(format!("generate:{publication}")));
        assert_eq!(generate.scope.client_id, Some(client));

        // a plan is keyed by the client's local date: 23:30 UTC is already the 9th in Paris
        let plan = generate::plan_job(agency, client, chrono_tz::Europe::Paris, at);
        assert_eq!(plan.kind, "plan");
        assert_eq!(plan.unique_key, Some(format!("plan:{client}:2026-12-09")));
        let decoded: PlanWeek = crate::queue::job::decode(&plan.payload).unwrap();
        assert_eq!(
            decoded.date,
            schedule::local_date(chrono_tz::Europe::Paris, at).into()
        );
        assert_eq!(
            generate::plan_key(client, decoded.date.unwrap()),
            plan.unique_key.unwrap()
        );
    }

    #[test]
    fn periodic_kinds_take_the_empty_payload_and_diagnostics_their_defaults() {
        let empty = json!({});
        crate::queue::job::decode::<SyncMetrics>(&empty).unwrap();
        crate::queue::job::decode::<Prune>(&empty).unwrap();
        crate::queue::job::decode::<PublishSweep>(&empty).unwrap();
        crate::queue::job::decode::<RefreshSweep>(&empty).unwrap();
        crate::queue::job::decode::<PlanSweep>(&empty).unwrap();
        crate::queue::job::decode::<Noop>(&json!({ "tag": "t-1" })).unwrap();
        assert_eq!(
            crate::queue::job::decode::<DiagSleep>(&empty).unwrap(),
            DiagSleep::default()
        );
    }

    #[test]
    fn a_malformed_payload_is_refused_with_the_kind_and_the_field() {
        let err =
            crate::queue::job::decode::<PublishPost>(&json!({ "publication": "x" })).unwrap_err();
        assert!(err.contains("`publish`"), "{err}");
        assert!(err.contains("publication_id"), "{err}");
        let err =
            crate::queue::job::decode::<RefreshToken>(&json!({ "account_id": 7 })).unwrap_err();
        assert!(err.contains("`refresh_token`"), "{err}");
    }
}
