//! The job kinds this binary runs, and their handlers. Platform work (publish, refresh_token,
//! sync_metrics) and content work (plan, generate) join this list as they are built.

use std::sync::Arc;
use std::time::Duration;

use autosocial_core::queue::runner::{Backoff, KindSpec, Outcome, handler};
use autosocial_core::vault::Vault;
use fred::prelude::*;
use sqlx::PgPool;

/// Every kind this binary knows.
pub const ALL: &[&str] = &[
    "publish",
    "sync_metrics",
    "prune",
    "refresh_token",
    "refresh_sweep",
    "plan",
    "plan_sweep",
    "generate",
    "noop",
    "diag_sleep",
];
/// [`DEFAULT`] as the `--kinds` default (clap's help and the README show it).
pub const DEFAULT_LIST: &str =
    "publish,sync_metrics,prune,refresh_token,refresh_sweep,plan,plan_sweep,generate";

/// What `run` runs without `--kinds`. `noop` and `diag_sleep` are diagnostics (benchmarks,
/// fault tests) and run only when asked for.
pub const DEFAULT: &[&str] = &[
    "publish",
    "sync_metrics",
    "prune",
    "refresh_token",
    "refresh_sweep",
    "plan",
    "plan_sweep",
    "generate",
];

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
}

pub fn spec(kind: &str, concurrency: usize, ctx: &Context) -> KindSpec {
    match kind {
        // Post one publication exactly once (reconciling an earlier attempt first).
        "publish" => {
            let publisher = ctx.publisher.clone();
            KindSpec::new(
                kind,
                concurrency,
                handler(move |job| {
                    let publisher = publisher.clone();
                    async move { publisher.run(&job).await }
                }),
            )
            .backoff(Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(300),
            })
        }
        // Content: plan a client's week, fill one planned item, plan new clients.
        "plan" => KindSpec::new(
            kind,
            concurrency,
            handler(|job| async move { autosocial_core::content::generate::run_plan(&job).await }),
        ),
        "plan_sweep" => KindSpec::new(
            kind,
            1,
            handler(|job| async move { autosocial_core::content::generate::run_sweep(&job).await }),
        )
        .periodic(
            autosocial_core::content::generate::SWEEP_EVERY,
            serde_json::json!({}),
        ),
        "generate" => {
            let content = ctx.content.clone();
            KindSpec::new(
                kind,
                concurrency,
                handler(move |job| {
                    let content = content.clone();
                    async move { autosocial_core::content::generate::run_generate(&job, &content).await }
                }),
            )
            .backoff(autosocial_core::content::generate::GENERATE_BACKOFF)
        }
        // Read published posts' engagement from the platforms, a batch every half hour.
        "sync_metrics" => {
            let publisher = ctx.publisher.clone();
            KindSpec::new(
                kind,
                1,
                handler(move |job| {
                    let publisher = publisher.clone();
                    async move {
                        let n = autosocial_core::publishing::sync_metrics(
                            &publisher,
                            &job.gate,
                            Some(&job.lease),
                        )
                        .await?;
                        if n > 0 {
                            tracing::info!(posts = n, "metrics collected");
                        }
                        Ok(Outcome::Done)
                    }
                }),
            )
            .periodic(
                autosocial_core::publishing::METRICS_EVERY,
                serde_json::json!({}),
            )
        }
        "prune" => {
            let ctx = ctx.clone();
            KindSpec::new(
                kind,
                1,
                handler(move |_job| {
                    let ctx = ctx.clone();
                    async move {
                        let jobs = autosocial_core::queue::prune(&ctx.pool, ctx.retention, 1000).await?;
                        let oauth = sqlx::query!("DELETE FROM oauth_transactions WHERE expires_at < now() - interval '1 day'")
                            .execute(&ctx.pool)
                            .await?
                            .rows_affected();
                        let buckets = sqlx::query!("DELETE FROM rate_buckets WHERE tat < now() - interval '1 day'")
                            .execute(&ctx.pool)
                            .await?
                            .rows_affected();
                        tracing::info!(jobs, oauth, buckets, "pruned finished jobs and stale rows");
                        Ok(Outcome::Done)
                    }
                }),
            )
            .periodic(Duration::from_secs(600), serde_json::json!({}))
        }
        // Renew an account's tokens ahead of expiry; single-flight by its unique key.
        "refresh_token" => {
            let ctx = ctx.clone();
            KindSpec::new(
                kind,
                concurrency,
                handler(move |job| {
                    let ctx = ctx.clone();
                    async move {
                        use autosocial_core::platforms::PlatformError;
                        use autosocial_core::tokens::{self, Refreshed};
                        let account: uuid::Uuid =
                            serde_json::from_value(job.job.payload["account_id"].clone())
                                .map_err(|e| anyhow::anyhow!("payload without account_id: {e}"))?;
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
                            Refreshed::Done => {
                                match tokens::next_refresh(&ctx.pool, account).await? {
                                    Some(next) => Ok(Outcome::DoneThen(Box::new(next))),
                                    None => Ok(Outcome::Done),
                                }
                            }
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
                }),
            )
            .backoff(Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(900),
            })
        }
        "refresh_sweep" => {
            let ctx = ctx.clone();
            KindSpec::new(
                kind,
                1,
                handler(move |_job| {
                    let pool = ctx.pool.clone();
                    async move {
                        let n = autosocial_core::tokens::sweep(&pool).await?;
                        if n > 0 {
                            tracing::info!(accounts = n, "refreshes enqueued by the sweep");
                        }
                        Ok(Outcome::Done)
                    }
                }),
            )
            .periodic(Duration::from_secs(600), serde_json::json!({}))
        }
        "noop" => KindSpec::new(
            kind,
            concurrency,
            handler(|_job| async { Ok(Outcome::Done) }),
        ),
        // Diagnostics for fault tests: sleep `ms`, then append the job id to the Redis list
        // `record` (so a test can count executions from outside the process).
        "diag_sleep" => {
            let ctx = ctx.clone();
            KindSpec::new(
                kind,
                concurrency,
                handler(move |job| {
                    let redis = ctx.redis.clone();
                    async move {
                        let ms = job.job.payload["ms"].as_u64().unwrap_or(0);
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                            _ = job.cancel.cancelled() => return Ok(Outcome::Cancelled),
                        }
                        if let Some(list) = job.job.payload["record"].as_str() {
                            let _: i64 = redis.rpush(list, job.job.id).await?;
                        }
                        Ok(Outcome::Done)
                    }
                }),
            )
            .backoff(Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(5),
            })
        }
        other => unreachable!("kind `{other}` passed validation but has no handler"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_list_is_every_production_kind() {
        assert_eq!(super::DEFAULT_LIST, super::DEFAULT.join(","));
        assert!(super::DEFAULT.iter().all(|k| super::ALL.contains(k)));
    }
}
