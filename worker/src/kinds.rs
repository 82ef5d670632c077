//! The job kinds this binary runs and their handlers: one [`Run`] impl per kind of
//! `autosocial_core::jobs`, registered by type in [`KINDS`]. A kind's settings (name, backoff,
//! attempts, period) come from its `Job` impl in core; here live only what the worker adds: the
//! handler, and whether the kind is a diagnostic that runs only when named.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use autosocial_core::jobs::{
    DiagSleep, GenerateItem, Noop, PlanSweep, PlanWeek, Prune, PublishPost, PublishSweep,
    RefreshSweep, RefreshToken, SyncMetrics, WebhookDelivery,
};
use autosocial_core::queue::job::Job;
use autosocial_core::queue::runner::{JobContext, KindSpec, Outcome};
use autosocial_core::vault::Vault;
use fred::prelude::*;
use sqlx::PgPool;

/// What the handlers share.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub redis: Client,
    pub vault: Arc<Vault>,
    pub platforms: Arc<autosocial_core::platforms::PlatformsConfig>,
    pub retention: Duration,
    /// Content jobs: caption provider, templates, fonts, media directory.
    pub content: Arc<autosocial_core::content::generate::Content>,
    /// Posts: publish jobs (smoothing, signed media URLs, the connectors).
    pub publisher: autosocial_core::publishing::Publisher,
    /// Webhook deliveries: the guarded HTTP client and the vault.
    pub webhooks: autosocial_core::webhooks::Sender,
}

/// A kind's handler in this binary.
pub trait Run: Job {
    /// Diagnostics (benchmarks, fault tests) run only when `--kinds` names them.
    const DIAGNOSTIC: bool = false;

    fn run(
        self,
        ctx: Context,
        job: JobContext,
    ) -> impl Future<Output = anyhow::Result<Outcome>> + Send + 'static;
}

/// A kind this binary knows, by name.
pub struct Kind {
    pub name: &'static str,
    pub diagnostic: bool,
    spec: fn(usize, &Context) -> KindSpec,
}

impl Kind {
    const fn of<J: Run>() -> Kind {
        Kind {
            name: J::KIND,
            diagnostic: J::DIAGNOSTIC,
            spec: spec::<J>,
        }
    }

    /// The runner's spec of the kind, at most `concurrency` in flight in this process.
    pub fn spec(&self, concurrency: usize, ctx: &Context) -> KindSpec {
        (self.spec)(concurrency, ctx)
    }
}

fn spec<J: Run>(concurrency: usize, ctx: &Context) -> KindSpec {
    let ctx = ctx.clone();
    KindSpec::of::<J, _, _>(concurrency, move |payload: J, job| {
        payload.run(ctx.clone(), job)
    })
}

/// Every kind this binary knows.
pub const KINDS: &[Kind] = &[
    Kind::of::<PublishPost>(),
    Kind::of::<PublishSweep>(),
    Kind::of::<SyncMetrics>(),
    Kind::of::<Prune>(),
    Kind::of::<RefreshToken>(),
    Kind::of::<RefreshSweep>(),
    Kind::of::<PlanWeek>(),
    Kind::of::<PlanSweep>(),
    Kind::of::<GenerateItem>(),
    Kind::of::<WebhookDelivery>(),
    Kind::of::<Noop>(),
    Kind::of::<DiagSleep>(),
];

/// The kind named `name`.
pub fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Every kind's name.
pub fn names() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.name)
}

/// What `run` runs without `--kinds`: every kind but the diagnostics. Written out for clap's
/// default (its help and the README show it); a test holds it to [`KINDS`].
pub const DEFAULT_LIST: &str = "publish,publish_sweep,sync_metrics,prune,refresh_token,refresh_sweep,plan,plan_sweep,generate,webhook";

impl Run for PublishPost {
    async fn run(self, ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        ctx.publisher.run(&job).await
    }
}

impl Run for PublishSweep {
    async fn run(self, ctx: Context, _job: JobContext) -> anyhow::Result<Outcome> {
        // the moves and their webhook events commit together
        let mut tx = ctx.pool.begin().await?;
        let orphans = autosocial_core::items::publications::orphaned(
            &mut tx,
            autosocial_core::publishing::ORPHAN_QUIET,
            500,
        )
        .await?;
        tx.commit().await?;
        for o in &orphans {
            tracing::warn!(publication = %o.publication, agency = %o.agency, was = o.was.as_str(), "publication's publish job ended without finishing it: handed to a person");
        }
        Ok(Outcome::Done)
    }
}

impl Run for PlanWeek {
    async fn run(self, _ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        autosocial_core::content::generate::run_plan(&job).await
    }
}

impl Run for PlanSweep {
    async fn run(self, _ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        autosocial_core::content::generate::run_sweep(&job).await
    }
}

impl Run for GenerateItem {
    async fn run(self, ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        autosocial_core::content::generate::run_generate(&job, &ctx.content).await
    }
}

impl Run for WebhookDelivery {
    async fn run(self, ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        use autosocial_core::webhooks::{Delivered, deliver::deliver};
        let (attempt, max) = (job.job.attempt, job.job.max_attempts);
        Ok(
            match deliver(&ctx.pool, &ctx.webhooks, self.delivery_id, attempt, max).await? {
                Delivered::Done => Outcome::Done,
                Delivered::Skipped(why) => {
                    tracing::info!(delivery = %self.delivery_id, why, "webhook delivery skipped");
                    Outcome::Done
                }
                Delivered::Retry(reason) => Outcome::RetryIn {
                    delay: Self::BACKOFF.delay(attempt),
                    reason,
                },
                Delivered::Failed(reason) => Outcome::Fail(reason),
            },
        )
    }
}

impl Run for SyncMetrics {
    async fn run(self, ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        let n =
            autosocial_core::publishing::sync_metrics(&ctx.publisher, &job.gate, Some(&job.lease))
                .await?;
        if n > 0 {
            tracing::info!(posts = n, "metrics collected");
        }
        Ok(Outcome::Done)
    }
}

impl Run for Prune {
    async fn run(self, ctx: Context, _job: JobContext) -> anyhow::Result<Outcome> {
        let jobs = autosocial_core::queue::prune(&ctx.pool, ctx.retention, 1000).await?;
        let oauth = sqlx::query!(
            "DELETE FROM oauth_transactions WHERE expires_at < now() - interval '1 day'"
        )
        .execute(&ctx.pool)
        .await?
        .rows_affected();
        let buckets = sqlx::query!("DELETE FROM rate_buckets WHERE tat < now() - interval '1 day'")
            .execute(&ctx.pool)
            .await?
            .rows_affected();
        // webhook events a month old, with their deliveries and attempts; secrets past their
        // rotation overlap
        let events = sqlx::query!(
            "DELETE FROM webhook_events WHERE id IN (
                 SELECT id FROM webhook_events WHERE created_at < now() - interval '30 days' LIMIT 5000)"
        )
        .execute(&ctx.pool)
        .await?
        .rows_affected();
        sqlx::query!("DELETE FROM webhook_secrets WHERE expires_at < now()")
            .execute(&ctx.pool)
            .await?;
        tracing::info!(
            jobs,
            oauth,
            buckets,
            events,
            "pruned finished jobs and stale rows"
        );
        Ok(Outcome::Done)
    }
}

impl Run for RefreshToken {
    async fn run(self, ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        use autosocial_core::platforms::PlatformError;
        use autosocial_core::tokens::{self, Refreshed};
        let account = self.account_id;
        match tokens::refresh(
            &ctx.pool,
            &ctx.vault,
            &ctx.platforms,
            &job.gate,
            Some(&job.lease),
            account,
        )
        .await?
        {
            Refreshed::Done => match tokens::next_refresh(&ctx.pool, account).await? {
                Some(next) => Ok(Outcome::DoneThen(Box::new(next))),
                None => Ok(Outcome::Done),
            },
            Refreshed::Skipped(why) => {
                tracing::info!(%account, why, "refresh skipped");
                Ok(Outcome::Done)
            }
            Refreshed::LeaseLost(why) => Ok(Outcome::LeaseLost(why)),
            // no retry helps: the app's configuration must change
            Refreshed::AppRefused(reason) => {
                tracing::warn!(%account, %reason, "the platform refused the app's credentials");
                Ok(Outcome::Fail(format!(
                    "the platform refused the app's credentials (client id or secret): {reason}"
                )))
            }
            Refreshed::NeedsReconnect(reason) => {
                tracing::warn!(%account, %reason, "account needs reconnecting");
                Ok(Outcome::Fail(format!(
                    "the platform refused the refresh: {reason}"
                )))
            }
            Refreshed::Retry(PlatformError::RateLimited {
                retry_after,
                message,
            }) => Ok(Outcome::RetryIn {
                delay: retry_after,
                reason: message,
            }),
            // transient: retried with backoff; the account stays connected
            Refreshed::Retry(e) => Err(anyhow::anyhow!(e)),
        }
    }
}

impl Run for RefreshSweep {
    async fn run(self, ctx: Context, _job: JobContext) -> anyhow::Result<Outcome> {
        let n = autosocial_core::tokens::sweep(&ctx.pool).await?;
        if n > 0 {
            tracing::info!(accounts = n, "refreshes enqueued by the sweep");
        }
        Ok(Outcome::Done)
    }
}

impl Run for Noop {
    const DIAGNOSTIC: bool = true;

    async fn run(self, _ctx: Context, _job: JobContext) -> anyhow::Result<Outcome> {
        Ok(Outcome::Done)
    }
}

impl Run for DiagSleep {
    const DIAGNOSTIC: bool = true;

    async fn run(self, ctx: Context, job: JobContext) -> anyhow::Result<Outcome> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(self.ms)) => {}
            _ = job.cancel.cancelled() => return Ok(Outcome::Cancelled),
        }
        if let Some(list) = &self.record {
            let _: i64 = ctx.redis.rpush(list.as_str(), job.job.id).await?;
        }
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_is_every_production_kind() {
        let production: Vec<&str> = KINDS
            .iter()
            .filter(|k| !k.diagnostic)
            .map(|k| k.name)
            .collect();
        assert_eq!(DEFAULT_LIST, production.join(","));
    }

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<&str> = names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
    }
}
