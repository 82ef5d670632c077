//! Publishing: the `publish` job kind and what it posts. Approval (in [`crate::items`]) turns a
//! content item into one publication per target account, with a frozen [`Snapshot`] of what
//! will be posted, and one `publish` job at the scheduled instant; the publish handler
//! ([`Publisher`]) posts it exactly once as the platform sees it.
//!
//! - [`schedule`]: the publish job of a publication and the next free slot of an account;
//! - [`publish`]: the publish handler;
//! - [`record`]: recording posts the platform has, batched across the process;
//! - [`metrics`]: measuring published posts.
//!
//! Exactly once: a publication moves `scheduled → publishing → published | failed | cancelled`
//! (or `held` while its account or client cannot post, `needs_attention` when nobody can know;
//! every move is made in [`crate::items::publications`]). The attempt id and the marker are
//! written in the transaction that moves it to `publishing`, before the platform is called. A run
//! that finds an earlier attempt (`attempt_id` set: a crash, a lost answer, an expired lease, a
//! transient failure) first asks the platform whether the post exists
//! ([`crate::platforms::Connector::find_by_marker`]): found → record it; not found → publish;
//! unknowable → `needs_attention` for a person, never a guess.

mod metrics;
mod publish;
mod record;
mod schedule;

pub use crate::items::publications::{release_held, schedule};
pub use crate::items::{ApproveError, ApproveFailure};
pub use metrics::{METRICS_EVERY, sync_metrics};
pub use publish::Publisher;
pub use schedule::{approve, next_free_slot, publish_job};

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Platform;
use crate::jobs::PublishPost;
use crate::limits::{self, Rate};
use crate::queue::job::Job;

/// The kind of the publish job ([`PublishPost`]).
pub const KIND: &str = PublishPost::KIND;

/// How long a publication stays untouched without a live publish job before the sweep hands it
/// to a person ([`crate::items::publications::orphaned`]).
pub const ORPHAN_QUIET: std::time::Duration = std::time::Duration::from_secs(120);

/// The unique key of a publication's publish job.
pub fn unique_key(publication: Uuid) -> String {
    PublishPost {
        publication_id: publication,
    }
    .unique_key()
    .expect("a publish job is unique per publication")
}

/// Short-window smoothing per account as the platform counts it, by the posts' arrival (the
/// platforms' daily and hourly quotas are enforced exactly from Postgres by
/// [`limits::quota_wait`]; this keeps bursts polite). Grants come from [`bucket`].
pub fn smoothing(platform: Platform) -> Rate {
    match platform {
        Platform::Sandbox => Rate::per(1, Duration::from_secs(1)).with_burst(5),
        Platform::X => Rate::per(1, Duration::from_secs(20)).with_burst(3),
        Platform::Instagram => Rate::per(1, Duration::from_secs(60)).with_burst(2),
        Platform::Tiktok => Rate::per(1, Duration::from_secs(60)).with_burst(1),
        Platform::Linkedin => Rate::per(1, Duration::from_secs(30)).with_burst(3),
        Platform::Facebook => Rate::per(1, Duration::from_secs(10)).with_burst(5),
    }
}

/// The bucket posts are granted from: [`smoothing`] with room for a post to arrive up to
/// [`limits::ARRIVAL_JITTER`] after its grant (the fence makes a post whose grant is older than
/// [`limits::GRANT_VALIDITY`] ask again).
pub fn bucket(platform: Platform) -> Rate {
    smoothing(platform).for_arrivals_within(limits::ARRIVAL_JITTER)
}

/// A post turned away by the smoothing with a slot held for it comes back at this priority,
/// ahead of the publish jobs due (50), and [`HELD_SLOT_LEAD`] early: its slot is charged at its
/// time and spent if it comes later than [`limits::GRANT_VALIDITY`] after it, so it waits for
/// the slot in the process rather than trust the queue's start lag.
pub const HELD_SLOT_PRIORITY: i16 = 40;
pub const HELD_SLOT_LEAD: Duration = Duration::from_millis(250);

/// A publish run's first ask of the smoothing holds a slot at least this far ahead rather than
/// take a grant at once ([`limits::Smoother::reserve_ahead`]): the move to `publishing` (a
/// batched statement and its durable commit) happens meanwhile, and the post's grant is charged
/// at the slot, not before the move. With the grant taken before the move, a burst under SIGKILL
/// and a CPU hog had posts arriving more than [`limits::ARRIVAL_JITTER`] after their charge
/// (smoothing violations as the platform saw them). A move that outlasts the lead and the
/// grant's validity only makes the fence ask again (a spent slot, never a violation).
pub const START_LEAD: Duration = Duration::from_millis(50);

/// The smoothing bucket of an account.
pub fn smoothing_key(account: Uuid) -> String {
    format!("publish:acct:{account}")
}

/// A stored image in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMedia {
    /// Relative to the media directory (content-addressed).
    pub path: String,
    pub mime: String,
}

/// What will be posted, frozen at approval (and refreshed by edits before the post's time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub caption: String,
    pub hashtags: Vec<String>,
    pub cta: Option<String>,
    pub link_url: Option<String>,
    pub media: Vec<SnapshotMedia>,
    /// The full text as posted.
    pub text: String,
}

/// The text as it appears on the platform: the caption, the call to action unless the caption
/// already carries it, then the hashtags (each with one `#`).
pub fn compose_text(caption: &str, cta: Option<&str>, hashtags: &[String]) -> String {
    let mut text = caption.trim().to_owned();
    let mut push_block = |block: &str| {
        if block.is_empty() {
            return;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(block);
    };
    if let Some(cta) = cta.map(str::trim)
        && !caption.contains(cta)
    {
        push_block(cta);
    }
    push_block(&crate::content::moderation::hashtag_line(hashtags));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_joins_caption_cta_and_hashtags_once() {
        let tags = vec!["#spring".to_owned(), "sale".to_owned(), " ".to_owned()];
        assert_eq!(
            compose_text("New in store.", Some("Shop now"), &tags),
            "New in store.\n\nShop now\n\n#spring #sale"
        );
        assert_eq!(
            compose_text("Shop now: new in store.", Some("Shop now"), &[]),
            "Shop now: new in store."
        );
        assert_eq!(compose_text("", None, &tags), "#spring #sale");
    }
}
