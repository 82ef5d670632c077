//! A content item as a reviewer sees it (shared by the review queue and the item page): its
//! variants, image, moderation result and a preview per target platform, and the actions on it
//! — approve, edit, reject, regenerate, and rescheduling a failed publication by hand.
//!
//! Every action is a plain form that works without JavaScript (it redirects back to the page it
//! came from, or shows the item page with the reason it was refused); from the review queue htmx
//! posts the same forms and swaps only the item's card. Every action is audited in the same
//! transaction as the change it records.
//!
//! - `load`: reading items with their variants, targets and images;
//! - `cache`: the review queue's items by version and their cards rendered once;
//! - `fields`: times, hashtags and links as typed, moderation of a draft, image links;
//! - `preview`: how each platform shows the post;
//! - `card`: the item card and its action forms;
//! - `page`: the item page with its publications and post log;
//! - `actions`: the handlers of the actions.

use std::collections::BTreeMap;

mod actions;
mod cache;
mod card;
mod fields;
mod load;
mod page;
mod preview;

pub use actions::{
    ApproveForm, BackForm, EditForm, RejectForm, RescheduleForm, approve, approve_message,
    approve_one, cancel, edit, regenerate, reject, reschedule,
};
pub use cache::{CachedItem, ItemCache, QueueCard, item_cache, load_versioned, queue_card};
pub use card::{CardOpts, EditAttempt, EditFormQuery, Notice, card, edit_form_fragment};
pub use fields::{
    Draft, local_input, media_url, moderate, moderate_with, parse_hashtags, parse_link,
    parse_local, when,
};
pub use load::{Image, Item, Target, Variant, load, load_one, zone};
pub use page::{PageOpts, show};
pub use preview::{fold_at, folded, platform_length};

pub type FieldErrors = BTreeMap<&'static str, String>;

/// The variants in the order they are shown.
pub const VARIANTS: [&str; 3] = ["conservative", "balanced", "bold"];
