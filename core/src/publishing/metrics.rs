//! Measuring published posts: the `sync_metrics` job's work.

use std::time::Duration;

use serde_json::json;

use super::Publisher;
use crate::domain::Platform;
use crate::fence::JobFence;
use crate::platforms::{self, AccountRef, NotSent, PlatformError};
use crate::queue::Scope;
use crate::vault::Aad;

/// How often published posts are measured, and for how long after publishing.
pub const METRICS_EVERY: Duration = Duration::from_secs(1800);
const METRICS_WINDOW_DAYS: i32 = 14;
const METRICS_BATCH: i64 = 200;

/// Measure recently published posts: one `metrics` row per post and run, oldest measurement
/// first, a batch per run. Platform errors skip the post until the next run (rate limits and
/// expired tokens are the refresh job's and the next run's business); a kill switch over a
/// post's scope skips it too. Each read goes through the run's fence (`lease`: `None` outside a
/// job): a run that lost its lease stops. Returns how many posts were measured.
pub async fn sync_metrics(
    p: &Publisher,
    gate: &crate::killswitch::Gate,
    lease: Option<&crate::queue::lease::Lease>,
) -> anyhow::Result<usize> {
    let due = sqlx::query!(
        r#"SELECT p.id, p.agency_id, p.client_id, p.account_id, p.platform AS "platform: Platform", p.platform_post_id AS "post_id!",
                  a.platform_account_id, a.account_kind, a.access_token_ct
           FROM publications p JOIN social_accounts a ON a.id = p.account_id
           WHERE p.state = 'published' AND p.published_at > now() - make_interval(days => $1)
             AND a.status = 'active'
           ORDER BY (SELECT max(m.collected_at) FROM metrics m WHERE m.publication_id = p.id) NULLS FIRST
           LIMIT $2"#,
        METRICS_WINDOW_DAYS,
        METRICS_BATCH
    )
    .fetch_all(&p.pool)
    .await?;
    let mut measured = 0;
    for d in due {
        let Some(connector) = platforms::connector(d.platform, &p.platforms) else {
            continue;
        };
        let scope = Scope {
            agency_id: Some(d.agency_id),
            client_id: Some(d.client_id),
            account_id: Some(d.account_id),
            platform: Some(d.platform),
        };
        let fence = JobFence::new(lease, gate, scope, None);
        match platforms::Fence::check(&fence).await {
            Ok(()) => {}
            Err(PlatformError::NotSent(NotSent::LeaseLost(why))) => {
                tracing::warn!(reason = %why, measured, "metrics run stopped: lease lost");
                return Ok(measured);
            }
            Err(_) => continue,
        }
        let row = d.account_id.to_string();
        let token = p.vault.decrypt_string(
            &d.access_token_ct,
            &Aad {
                table: "social_accounts",
                column: "access_token_ct",
                agency: Some(d.agency_id),
                row: &row,
            },
        )?;
        let account = AccountRef {
            platform_account_id: d.platform_account_id,
            kind: d.account_kind,
        };
        let result = connector.metrics(&token, &account, &d.post_id).await;
        drop(fence);
        match result {
            Ok(m) => {
                let nonneg = |v: Option<i64>| v.map(|x| x.max(0));
                sqlx::query!(
                    "INSERT INTO metrics (publication_id, agency_id, likes, comments, shares, views, reach, impressions, raw)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    d.id,
                    d.agency_id,
                    nonneg(m.likes),
                    nonneg(m.comments),
                    nonneg(m.shares),
                    nonneg(m.views),
                    nonneg(m.reach),
                    nonneg(m.impressions),
                    json!({ "clicks": m.clicks })
                )
                .execute(&p.pool)
                .await?;
                measured += 1;
            }
            Err(e) => {
                tracing::info!(publication = %d.id, error = %e, "metrics not read this time");
            }
        }
    }
    Ok(measured)
}
