//! The review queue's cache: items by version, each with its queue card rendered once per way of
//! looking at it and filled in per request (the CSRF token and the slot's relative time).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use autosocial_core::domain::Role;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::relative;

use super::card::{CardOpts, card_at};
use super::load::{Item, load};

/// An item as cards show it, with the versions it was read at.
pub struct CachedItem {
    agency: Uuid,
    item_version: DateTime<Utc>,
    client_version: DateTime<Utc>,
    pub item: Item,
    /// The item's queue card as rendered for this version, by who looks (see [`queue_card`]).
    templates: std::sync::Mutex<Vec<Arc<CardTemplate>>>,
}

/// A queue card rendered once, with holes for what differs between requests that see the same
/// card: the session's CSRF token and the slot's time relative to now.
struct CardTemplate {
    reviewer: bool,
    back: String,
    parts: Vec<Part>,
}

enum Part {
    /// Markup as maud rendered (and escaped) it.
    Markup(String),
    Csrf,
    When,
}

/// Holes in a rendered template: nothing a person writes is rendered as one (maud escapes
/// neither, and the random part is this process's own), and one that was would only be filled
/// with the viewer's own token or time.
struct Holes {
    csrf: String,
    when: String,
}

fn holes() -> &'static Holes {
    static HOLES: std::sync::OnceLock<Holes> = std::sync::OnceLock::new();
    HOLES.get_or_init(|| {
        let nonce = Uuid::new_v4().simple();
        Holes {
            csrf: format!("\u{e000}csrf-{nonce}\u{e000}"),
            when: format!("\u{e000}when-{nonce}\u{e000}"),
        }
    })
}

impl CardTemplate {
    fn render(state: &AppState, user: &CurrentUser, item: &Item, back: &str) -> CardTemplate {
        let h = holes();
        let mut template_user = user.clone();
        template_user.csrf_token = h.csrf.clone();
        let opts = CardOpts {
            back,
            queue: true,
            notice: None,
            edit: None,
            reject_error: None,
        };
        let html = card_at(state, &template_user, item, &opts, &h.when).into_string();
        let mut parts = Vec::new();
        let mut rest = html.as_str();
        loop {
            let next = [
                (rest.find(&h.csrf), Part::Csrf, h.csrf.len()),
                (rest.find(&h.when), Part::When, h.when.len()),
            ]
            .into_iter()
            .filter_map(|(at, part, len)| at.map(|at| (at, part, len)))
            .min_by_key(|n| n.0);
            let Some((at, part, len)) = next else { break };
            parts.push(Part::Markup(rest[..at].to_owned()));
            parts.push(part);
            rest = &rest[at + len..];
        }
        parts.push(Part::Markup(rest.to_owned()));
        CardTemplate {
            reviewer: user.role.allows(Role::Reviewer),
            back: back.to_owned(),
            parts,
        }
    }
}

/// A card of the review queue filled in for one request.
pub struct QueueCard<'a> {
    template: Arc<CardTemplate>,
    csrf: &'a str,
    when: String,
}

impl maud::Render for QueueCard<'_> {
    fn render_to(&self, buffer: &mut String) {
        for part in &self.template.parts {
            match part {
                Part::Markup(m) => buffer.push_str(m),
                Part::Csrf => self.csrf.render_to(buffer),
                Part::When => self.when.render_to(buffer),
            }
        }
    }
}

/// The queue's card of a remembered item, as [`card`] renders it with the queue's options:
/// rendered once per version of the item and way of looking at it (a reviewer's or not, the
/// page returned to), then only filled in.
pub fn queue_card<'a>(
    state: &AppState,
    user: &'a CurrentUser,
    cached: &CachedItem,
    back: &str,
) -> QueueCard<'a> {
    let reviewer = user.role.allows(Role::Reviewer);
    let found = {
        let templates = cached.templates.lock().unwrap_or_else(|e| e.into_inner());
        templates
            .iter()
            .find(|t| t.reviewer == reviewer && t.back == back)
            .cloned()
    };
    let template = found.unwrap_or_else(|| {
        let t = Arc::new(CardTemplate::render(state, user, &cached.item, back));
        let mut templates = cached.templates.lock().unwrap_or_else(|e| e.into_inner());
        // a few ways of looking at one item at most: the oldest goes
        if templates.len() >= 4 {
            templates.remove(0);
        }
        templates.push(t.clone());
        t
    });
    QueueCard {
        template,
        csrf: &user.csrf_token,
        when: relative(cached.item.slot_at, Utc::now()),
    }
}

/// Items as the review queue last read them, by version: an item's `updated_at` changes with
/// every write to it, and its variants, targets and images are only ever written together with
/// it; its client's `updated_at` covers the client's name and timezone. Only the target accounts'
/// display names are not versioned: they can lag by an entry's lifetime.
pub type ItemCache = moka::sync::Cache<Uuid, Arc<CachedItem>>;

pub fn item_cache() -> Arc<ItemCache> {
    Arc::new(
        moka::sync::Cache::builder()
            .max_capacity(5_000)
            .time_to_live(Duration::from_secs(60))
            .build(),
    )
}

/// The items of a page, each given with its version and its client's (see [`ItemCache`]):
/// from the cache where both still match, the rest read (in one query) and remembered.
pub async fn load_versioned(
    state: &AppState,
    agency: Uuid,
    page: &[(Uuid, DateTime<Utc>, DateTime<Utc>)],
) -> AppResult<Vec<Arc<CachedItem>>> {
    let cache = &state.items;
    let mut found: HashMap<Uuid, Arc<CachedItem>> = page
        .iter()
        .filter_map(|(id, iv, cv)| {
            cache
                .get(id)
                .filter(|c| c.agency == agency && c.item_version == *iv && c.client_version == *cv)
                .map(|c| (*id, c))
        })
        .collect();
    let missing: Vec<Uuid> = page
        .iter()
        .map(|p| p.0)
        .filter(|id| !found.contains_key(id))
        .collect();
    for item in load(state, agency, &missing).await? {
        let Some((_, iv, cv)) = page.iter().find(|p| p.0 == item.id) else {
            continue;
        };
        // read after the page's versions: at least as new as they say
        let c = Arc::new(CachedItem {
            agency,
            item_version: *iv,
            client_version: *cv,
            item,
            templates: Default::default(),
        });
        cache.insert(c.item.id, c.clone());
        found.insert(c.item.id, c);
    }
    Ok(page.iter().filter_map(|p| found.remove(&p.0)).collect())
}
