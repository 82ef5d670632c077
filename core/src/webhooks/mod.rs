//! Signed outbound webhooks, per the Standard Webhooks specification.
//!
//! - [`endpoints`]: an agency's endpoints (URL, the event types wanted, enabled or disabled with
//!   a reason) and their signing secrets, encrypted by the vault; the only code that writes
//!   `webhook_endpoints` and `webhook_secrets`.
//! - [`outbox`]: events written in the transaction of the change they describe, with one
//!   delivery and one `webhook` job per subscribed endpoint, so no event is lost and none is
//!   sent for a change that rolled back. An agency without endpoints pays one index probe.
//! - [`deliver`]: the `webhook` job's work: sign (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature`), POST through [`crate::net_guard`], log the attempt, retry with the
//!   kind's backoff for about a day, disable an endpoint that kept failing for 24 hours.

pub mod deliver;
pub mod endpoints;
pub mod outbox;

use serde::{Deserialize, Serialize};

pub use deliver::{Delivered, Sender, sign};
pub use outbox::emit;

/// What happened, as a receiver sees it in `type`. Open for more (client review decisions come
/// with the review portal): match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventType {
    #[serde(rename = "item.created")]
    ItemCreated,
    #[serde(rename = "item.approved")]
    ItemApproved,
    #[serde(rename = "item.rejected")]
    ItemRejected,
    #[serde(rename = "publication.published")]
    PublicationPublished,
    #[serde(rename = "publication.failed")]
    PublicationFailed,
    #[serde(rename = "publication.needs_attention")]
    PublicationNeedsAttention,
    #[serde(rename = "account.connected")]
    AccountConnected,
    #[serde(rename = "account.needs_reconnecting")]
    AccountNeedsReconnecting,
    #[serde(rename = "killswitch.engaged")]
    KillswitchEngaged,
    #[serde(rename = "killswitch.released")]
    KillswitchReleased,
}

/// The type of the event "Send test event" sends; no endpoint subscribes to it.
pub const TEST_EVENT: &str = "webhook.test";

impl EventType {
    /// Every type an endpoint may subscribe to, in the order forms list them.
    pub const ALL: &'static [EventType] = &[
        EventType::ItemCreated,
        EventType::ItemApproved,
        EventType::ItemRejected,
        EventType::PublicationPublished,
        EventType::PublicationFailed,
        EventType::PublicationNeedsAttention,
        EventType::AccountConnected,
        EventType::AccountNeedsReconnecting,
        EventType::KillswitchEngaged,
        EventType::KillswitchReleased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ItemCreated => "item.created",
            EventType::ItemApproved => "item.approved",
            EventType::ItemRejected => "item.rejected",
            EventType::PublicationPublished => "publication.published",
            EventType::PublicationFailed => "publication.failed",
            EventType::PublicationNeedsAttention => "publication.needs_attention",
            EventType::AccountConnected => "account.connected",
            EventType::AccountNeedsReconnecting => "account.needs_reconnecting",
            EventType::KillswitchEngaged => "killswitch.engaged",
            EventType::KillswitchReleased => "killswitch.released",
        }
    }

    /// What a person reads beside the checkbox.
    pub fn label(self) -> &'static str {
        match self {
            EventType::ItemCreated => "a post was created and waits for review",
            EventType::ItemApproved => "a post was approved",
            EventType::ItemRejected => "a post was rejected",
            EventType::PublicationPublished => "a post went out on a platform",
            EventType::PublicationFailed => "a platform refused a post for good",
            EventType::PublicationNeedsAttention => "a post needs a person to decide",
            EventType::AccountConnected => "an account was connected or reconnected",
            EventType::AccountNeedsReconnecting => "an account needs reconnecting",
            EventType::KillswitchEngaged => "a kill switch was engaged",
            EventType::KillswitchReleased => "a kill switch was released",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = ();
    fn from_str(s: &str) -> Result<EventType, ()> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip_through_text_and_serde() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::String(t.as_str().into())
            );
        }
        assert!(TEST_EVENT.parse::<EventType>().is_err());
        assert!("item.deleted".parse::<EventType>().is_err());
    }
}
