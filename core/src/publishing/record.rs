//! Recording posts the platform has: every publish run of the process hands its post to one
//! batcher, which records up to [`RECORD_BATCH`] of them in one statement
//! ([`crate::items::publications::published`]), one statement at a time, each starting
//! [`RECORD_LINGER`] after its first post.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::publish::Loaded;
use crate::batch::Batcher;
use crate::items::publications::{self as items, Post};
use crate::platforms::Published;

/// How many posts one recording statement takes at most. Statements go one at a time: a
/// record commits without waiting for the disk, so what it costs is the statement itself, whose
/// fixed part (the roll-up of the items, the triggers, the constraints) is paid once per batch;
/// two at a time made batches of about two posts in a burst, one at a time with the linger
/// about thirteen. A post recorded a few milliseconds later changes nothing the platform sees.
const RECORD_BATCH: usize = 200;
const RECORD_PARALLEL: usize = 1;
const RECORD_LINGER: Duration = Duration::from_millis(10);

/// The batcher a [`super::Publisher`] records its posts through.
pub(super) type Records = Arc<Batcher<Post, bool>>;

pub(super) fn records(pool: PgPool) -> Records {
    Arc::new(
        Batcher::new(RECORD_BATCH, RECORD_PARALLEL, move |batch| {
            let pool = pool.clone();
            async move { Ok(items::published(&pool, &batch).await?) }
        })
        .linger(RECORD_LINGER),
    )
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
