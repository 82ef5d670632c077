//! The lifecycle of content items and their publications: every change of `content_items.state`
//! and `publications.state` (and every other write to those two tables) happens here, and only
//! here. Console handlers, the worker's handlers and the planner call these functions; each one
//! checks the row's state against the table below in its own statement, writes the audit entry
//! where a person or a policy decided, moves the jobs the change affects through the queue's
//! API, and runs on the caller's connection or transaction so callers compose it.
//!
//! # Content items ([`ItemMove`])
//!
//! | move           | from                                             | to                                       |
//! |----------------|--------------------------------------------------|------------------------------------------|
//! | `plan`         | (new row, from a content rule)                   | planned                                  |
//! | `create`       | (new row, written in the composer)               | pending_review                           |
//! | `claim`        | planned, generating                              | generating                               |
//! | `release`      | generating                                       | planned                                  |
//! | `to_review`    | generating                                       | pending_review                           |
//! | `auto_approve` | generating                                       | approved                                 |
//! | `approve`      | pending_review                                   | approved                                 |
//! | `reject`       | pending_review                                   | rejected                                 |
//! | `edit`         | pending_review, approved                         | (unchanged)                              |
//! | `regenerate`   | pending_review, rejected, planned                | planned                                  |
//! | `cancel`       | approved                                         | cancelled (approved while a post is out) |
//! | `drop_planned` | planned                                          | cancelled                                |
//! | `reschedule`   | approved                                         | approved (a new slot)                    |
//! | `reopen`       | failed, partially_published, cancelled           | approved                                 |
//! | `roll_up`      | approved, partially_published, failed, published | published, partially_published, failed   |
//!
//! `reopen` is the item's side of rescheduling one of its publications; `roll_up` follows its
//! publications once none of them is open (scheduled, held, publishing, needs attention).
//!
//! # Publications ([`PublicationMove`])
//!
//! | move                | from                               | to              |
//! |---------------------|------------------------------------|-----------------|
//! | `schedule`          | (new row), scheduled, held, cancelled | scheduled (held stays held) |
//! | `hold`              | scheduled, publishing              | held            |
//! | `hold_account`      | scheduled                          | held            |
//! | `release`           | held                               | scheduled       |
//! | `start`             | scheduled, publishing, held        | publishing      |
//! | `published`         | publishing                         | published       |
//! | `fail`              | publishing                         | failed          |
//! | `needs_attention`   | publishing                         | needs_attention |
//! | `back_to_scheduled` | publishing                         | scheduled       |
//! | `orphaned`          | scheduled, publishing              | needs_attention |
//! | `cancel`            | scheduled, held                    | cancelled       |
//! | `reschedule`        | failed, needs_attention            | scheduled       |
//!
//! Moves out of `publishing` are made only by the attempt that holds the publication (its
//! `attempt_id`), and `start` and `hold` only while the job's lease is the run's. The one
//! exception is `orphaned`: a publication whose publish job has ended without finishing it (its
//! attempts ran out while workers died holding it, or someone discarded it) has no attempt left
//! to move it, so the sweep hands it to a person.
//!
//! # Rescheduling
//!
//! One rule for every caller ([`check_reschedule`]): an approved item moves as a whole, a failed
//! or needs-attention publication is put back on schedule alone; the new time may be at most
//! [`RESCHEDULE_GRACE`] in the past (the time a person takes to submit "now").
//!
//! # Audit
//!
//! A person's decisions (create, approve, reject, edit, regenerate, cancel, reschedule) and the
//! system's decisions on their behalf (auto-approval, the client's reschedule policy) are written
//! to the audit log in the same transaction. The publish handler's own moves (start, published,
//! failed, held, back to scheduled) are recorded per attempt in `post_logs` instead.

mod item;
pub mod publications;

pub use item::*;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::{ItemState, PublicationState};

/// A transition of a content item (see the module docs for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemMove {
    Plan,
    Create,
    Claim,
    Release,
    ToReview,
    AutoApprove,
    Approve,
    Reject,
    Edit,
    Regenerate,
    Cancel,
    DropPlanned,
    Reschedule,
    Reopen,
    RollUp,
}

impl ItemMove {
    pub const ALL: &'static [ItemMove] = &[
        ItemMove::Plan,
        ItemMove::Create,
        ItemMove::Claim,
        ItemMove::Release,
        ItemMove::ToReview,
        ItemMove::AutoApprove,
        ItemMove::Approve,
        ItemMove::Reject,
        ItemMove::Edit,
        ItemMove::Regenerate,
        ItemMove::Cancel,
        ItemMove::DropPlanned,
        ItemMove::Reschedule,
        ItemMove::Reopen,
        ItemMove::RollUp,
    ];

    /// The states an item may be in for this move (empty: the move creates the row).
    pub fn from(self) -> &'static [ItemState] {
        use ItemState::*;
        match self {
            ItemMove::Plan | ItemMove::Create => &[],
            ItemMove::Claim => &[Planned, Generating],
            ItemMove::Release | ItemMove::ToReview | ItemMove::AutoApprove => &[Generating],
            ItemMove::Approve | ItemMove::Reject => &[PendingReview],
            ItemMove::Edit => &[PendingReview, Approved],
            ItemMove::Regenerate => &[PendingReview, Rejected, Planned],
            ItemMove::Cancel | ItemMove::Reschedule => &[Approved],
            ItemMove::DropPlanned => &[Planned],
            ItemMove::Reopen => &[Failed, PartiallyPublished, Cancelled],
            ItemMove::RollUp => &[Approved, PartiallyPublished, Failed, Published],
        }
    }

    /// The states the move may leave the item in.
    pub fn to(self) -> &'static [ItemState] {
        use ItemState::*;
        match self {
            ItemMove::Plan | ItemMove::Release | ItemMove::Regenerate => &[Planned],
            ItemMove::Create | ItemMove::ToReview => &[PendingReview],
            ItemMove::Claim => &[Generating],
            ItemMove::AutoApprove | ItemMove::Approve | ItemMove::Reschedule | ItemMove::Reopen => {
                &[Approved]
            }
            ItemMove::Reject => &[Rejected],
            ItemMove::Edit => &[PendingReview, Approved],
            ItemMove::Cancel => &[Cancelled, Approved],
            ItemMove::DropPlanned => &[Cancelled],
            ItemMove::RollUp => &[Approved, Published, PartiallyPublished, Failed],
        }
    }

    /// Whether an item in `state` may make this move.
    pub fn allows(self, state: ItemState) -> bool {
        self.from().contains(&state)
    }

    /// The from-states as the database stores them, for `state = ANY($n)`.
    fn allowed(self) -> Vec<&'static str> {
        self.from().iter().map(|s| s.as_str()).collect()
    }
}

/// A transition of a publication (see the module docs for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicationMove {
    Schedule,
    Hold,
    HoldAccount,
    Release,
    Start,
    Published,
    Fail,
    NeedsAttention,
    BackToScheduled,
    Cancel,
    Reschedule,
    Orphaned,
}

impl PublicationMove {
    pub const ALL: &'static [PublicationMove] = &[
        PublicationMove::Schedule,
        PublicationMove::Hold,
        PublicationMove::HoldAccount,
        PublicationMove::Release,
        PublicationMove::Start,
        PublicationMove::Published,
        PublicationMove::Fail,
        PublicationMove::NeedsAttention,
        PublicationMove::BackToScheduled,
        PublicationMove::Cancel,
        PublicationMove::Reschedule,
        PublicationMove::Orphaned,
    ];

    /// The states a publication may be in for this move (`Schedule` also creates the row).
    pub fn from(self) -> &'static [PublicationState] {
        use PublicationState::*;
        match self {
            PublicationMove::Schedule => &[Scheduled, Held, Cancelled],
            PublicationMove::Hold => &[Scheduled, Publishing],
            PublicationMove::HoldAccount => &[Scheduled],
            PublicationMove::Release => &[Held],
            PublicationMove::Start => &[Scheduled, Publishing, Held],
            PublicationMove::Published
            | PublicationMove::Fail
            | PublicationMove::NeedsAttention
            | PublicationMove::BackToScheduled => &[Publishing],
            PublicationMove::Cancel => &[Scheduled, Held],
            PublicationMove::Reschedule => &[Failed, NeedsAttention],
            PublicationMove::Orphaned => &[Scheduled, Publishing],
        }
    }

    /// The states the move may leave the publication in.
    pub fn to(self) -> &'static [PublicationState] {
        use PublicationState::*;
        match self {
            PublicationMove::Schedule => &[Scheduled, Held],
            PublicationMove::Hold | PublicationMove::HoldAccount => &[Held],
            PublicationMove::Release
            | PublicationMove::BackToScheduled
            | PublicationMove::Reschedule => &[Scheduled],
            PublicationMove::Start => &[Publishing],
            PublicationMove::Published => &[Published],
            PublicationMove::Fail => &[Failed],
            PublicationMove::NeedsAttention | PublicationMove::Orphaned => &[NeedsAttention],
            PublicationMove::Cancel => &[Cancelled],
        }
    }

    /// Whether a publication in `state` may make this move.
    pub fn allows(self, state: PublicationState) -> bool {
        self.from().contains(&state)
    }

    /// The from-states as the database stores them, for `state = ANY($n)`.
    fn allowed(self) -> Vec<&'static str> {
        self.from().iter().map(|s| s.as_str()).collect()
    }
}

/// How far in the past a new time may lie: the moments a person takes to submit "now".
pub const RESCHEDULE_GRACE: TimeDelta = TimeDelta::minutes(1);

/// Why a transition was refused, for a person (the page shows the message as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such item or publication")]
    NotFound,
    #[error("{}", item_state_message(*.state, *.wanted))]
    ItemState { state: ItemState, wanted: ItemMove },
    #[error("{}", publication_state_message(*.state, *.wanted))]
    PublicationState {
        state: PublicationState,
        wanted: PublicationMove,
    },
    #[error("That time has passed. Choose a time in the future.")]
    TimePassed,
}

fn label(state: &str) -> String {
    match state {
        "pending_review" => "waiting for review".into(),
        "partially_published" => "partly published".into(),
        other => other.replace('_', " "),
    }
}

fn item_state_message(state: ItemState, wanted: ItemMove) -> String {
    let now = label(state.as_str());
    match wanted {
        ItemMove::Reschedule => {
            format!("This post is {now} now; only approved posts waiting to go out can be moved.")
        }
        ItemMove::Approve => {
            format!("This item is {now}; only items waiting for review can be approved.")
        }
        ItemMove::Reject => {
            format!("This item is {now}; only items waiting for review can be rejected.")
        }
        ItemMove::Edit => format!(
            "This item is {now}; only items waiting for review or approved and not yet published can be edited."
        ),
        ItemMove::Regenerate => format!(
            "This item is {now}; only items waiting for review or rejected can be regenerated."
        ),
        ItemMove::Cancel => format!("This item is {now}; only approved items can be cancelled."),
        other => format!("This item is {now}; it cannot make the move {other:?}."),
    }
}

fn publication_state_message(state: PublicationState, wanted: PublicationMove) -> String {
    let now = label(state.as_str());
    match wanted {
        PublicationMove::Reschedule => format!(
            "This post is {now} now; only failed posts and posts that need attention can be rescheduled."
        ),
        other => format!("This post is {now}; it cannot make the move {other:?}."),
    }
}

/// The rescheduling rule on time: `at` may be at most [`RESCHEDULE_GRACE`] before `now`.
pub fn check_reschedule_time(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if at < now - RESCHEDULE_GRACE {
        return Err(Refusal::TimePassed);
    }
    Ok(())
}

/// The whole rescheduling rule for a publication: its state, then the time.
pub fn check_reschedule(
    state: PublicationState,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if !PublicationMove::Reschedule.allows(state) {
        return Err(Refusal::PublicationState {
            state,
            wanted: PublicationMove::Reschedule,
        });
    }
    check_reschedule_time(at, now)
}

/// The rescheduling rule for a whole item: its state, then the time.
pub fn check_item_reschedule(
    state: ItemState,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if !ItemMove::Reschedule.allows(state) {
        return Err(Refusal::ItemState {
            state,
            wanted: ItemMove::Reschedule,
        });
    }
    check_reschedule_time(at, now)
}

/// A refusal a person can act on, or a database failure.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_move_leads_somewhere_and_only_row_creators_start_from_nothing() {
        for m in ItemMove::ALL {
            assert!(!m.to().is_empty(), "{m:?}");
            assert_eq!(
                m.from().is_empty(),
                matches!(m, ItemMove::Plan | ItemMove::Create),
                "{m:?}"
            );
        }
        for m in PublicationMove::ALL {
            assert!(!m.to().is_empty() && !m.from().is_empty(), "{m:?}");
        }
    }

    #[test]
    fn the_reschedule_rule_takes_a_minute_of_grace_and_names_both_messages() {
        let now: DateTime<Utc> = "2030-01-01T10:00:00Z".parse().unwrap();
        assert!(check_reschedule_time(now - TimeDelta::seconds(59), now).is_ok());
        let e = check_reschedule_time(now - TimeDelta::minutes(2), now).unwrap_err();
        assert!(e.to_string().contains("That time has passed"));
        assert!(e.to_string().contains("Choose a time in the future."));
        assert!(check_reschedule(PublicationState::Failed, now, now).is_ok());
        assert!(check_reschedule(PublicationState::NeedsAttention, now, now).is_ok());
        for s in [
            PublicationState::Scheduled,
            PublicationState::Cancelled,
            PublicationState::Published,
        ] {
            assert!(matches!(
                check_reschedule(s, now, now),
                Err(Refusal::PublicationState { .. })
            ));
        }
        assert!(check_item_reschedule(ItemState::Approved, now, now).is_ok());
        let e = check_item_reschedule(ItemState::Published, now, now).unwrap_err();
        assert!(e.to_string().contains("only approved posts"));
    }
}
