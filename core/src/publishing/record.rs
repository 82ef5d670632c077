//! Recording posts the platform has: every publish run of the process hands its post to one
//! batcher, which records up to [`RECORD_BATCH`] of them in one statement
//! ([`crate::items::publications::published`]), [`RECORD_PARALLEL`] statements at a time.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::publish::Loaded;
use crate::batch::Batcher;
use crate::items::publications::{self as items, Post};
use crate::platforms::Published;

/// How many posts one recording statement takes at most, and how many such statements a
/// process runs at once.
const RECORD_BATCH: usize = 200;
const RECORD_PARALLEL: usize = 4;

/// The batcher a [`super::Publisher`] records its posts through.
pub(super) type Records = Arc<Batcher<Post, bool>>;

pub(super) fn records(pool: PgPool) -> Records {
    Arc::new(Batcher::new(RECORD_BATCH, RECORD_PARALLEL, move |batch| {
        let pool = pool.clone();
        async move { Ok(items::published(&pool, &batch).await?) }
    }))
}

/// Record a post the platform has: published, with its log row, and the item's roll-up (in one
/// statement with the other posts this process is recording right now).
pub(super) async fn record_published(
    records: &Records,
    publication: Uuid,
    l: &Loaded,
    attempt: Uuid,
    p: &Published,
    action: &str,
    latency: Duration,
) -> anyhow::Result<()> {
    let updated = records
        .call(Post {
            publication,
            attempt,
            agency: l.agency,
            post_id: p.post_id.clone(),
            url: p.url.clone(),
            request_id: p.request_id.clone(),
            action: action.to_owned(),
            latency_ms: latency.as_millis().min(i32::MAX as u128) as i32,
        })
        .await?;
    if !updated {
        tracing::warn!(%publication, "published, but another attempt took the publication over meanwhile");
    }
    Ok(())
}
