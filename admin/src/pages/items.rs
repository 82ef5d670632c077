//! A content item as a reviewer sees it (shared by the review queue and the item page): its
//! variants, image, moderation result and a preview per target platform, and the actions on it
//! — approve, edit, reject, regenerate, and rescheduling a failed publication by hand.
//!
//! Every action is a plain form that works without JavaScript (it redirects back to the page it
//! came from, or shows the item page with the reason it was refused); from the review queue htmx
//! posts the same forms and swaps only the item's card. Every action is audited in the same
//! transaction as the change it records.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Deserialize;
use sqlx::types::Json;
use uuid::Uuid;

use autosocial_core::audit::{self, Entry};
use autosocial_core::content::cards::CardSize;
use autosocial_core::content::moderation::{self, Reason, Verdict};
use autosocial_core::content::{brand, generate, schedule};
use autosocial_core::domain::{Platform, Role};
use autosocial_core::publishing::{self, ApproveError, ApproveFailure};
use autosocial_core::queue;

use crate::app::AppState;
use crate::auth::{CurrentUser, Reviewer, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path, Query};
use crate::pages::layout::{Htmx, Nav, respond};
use crate::pages::{format_in_zone, relative};

pub type FieldErrors = BTreeMap<&'static str, String>;

/// How long a signed image link in the console stays valid.
const PREVIEW_URL_TTL: Duration = Duration::from_secs(3600);

/// The variants in the order they are shown.
pub const VARIANTS: [&str; 3] = ["conservative", "balanced", "bold"];

/// An item with what the console shows about it.
pub struct Item {
    pub id: Uuid,
    pub client_id: Uuid,
    pub client_name: String,
    pub tz: Tz,
    pub state: String,
    pub source: String,
    pub slot_at: DateTime<Utc>,
    pub chosen_variant: Option<String>,
    pub caption: String,
    pub hashtags: Vec<String>,
    pub cta: Option<String>,
    pub link_url: Option<String>,
    pub moderation_status: String,
    pub reasons: Vec<Reason>,
    pub rejection_reason: Option<String>,
    pub pillar: Option<String>,
    pub generation_error: Option<String>,
    pub variants: Vec<Variant>,
    pub targets: Vec<Target>,
    pub images: Vec<Image>,
    /// The text as each target platform gets it, with its length as the platform counts it:
    /// worked out on the first preview (an item in [`ItemCache`] is shown many times).
    platform_texts: std::sync::OnceLock<Vec<(Platform, String, usize)>>,
}

impl Item {
    /// The platforms of its targets, each once (targets are loaded ordered by platform).
    fn platforms(&self) -> Vec<Platform> {
        let mut platforms: Vec<Platform> = self.targets.iter().map(|t| t.platform).collect();
        platforms.dedup();
        platforms
    }

    /// The text `platform` gets and its length as that platform counts it.
    fn platform_text(&self, platform: Platform) -> (&str, usize) {
        let texts = self.platform_texts.get_or_init(|| {
            let body = publishing::compose_text(&self.caption, self.cta.as_deref(), &[]);
            self.platforms()
                .into_iter()
                .map(|p| {
                    let text = moderation::compose(
                        p,
                        &moderation::Input {
                            text: &body,
                            hashtags: &self.hashtags,
                            link_url: self.link_url.as_deref(),
                            banned_terms: &[],
                        },
                    );
                    let length = platform_length(&text, p);
                    (p, text, length)
                })
                .collect()
        });
        texts
            .iter()
            .find(|t| t.0 == platform)
            .map(|t| (t.1.as_str(), t.2))
            .unwrap_or(("", 0))
    }
}

pub struct Variant {
    pub kind: String,
    pub caption: String,
    pub moderation_status: String,
    pub reasons: Vec<Reason>,
}

pub struct Target {
    pub account_id: Uuid,
    pub platform: Platform,
    pub display_name: String,
}

pub struct Image {
    pub label: String,
    pub path: String,
    pub width: i32,
    pub height: i32,
}

fn reasons_of(moderation: &serde_json::Value) -> Vec<Reason> {
    match moderation.get("reasons") {
        Some(r) if !r.is_null() => serde_json::from_value(r.clone()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The client's zone; a stored zone that does not parse (it cannot: onboarding validates it)
/// falls back to UTC, which the page then names.
pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::UTC)
}

/// Load items of the agency by id, in the order given; ids that are not the agency's are
/// left out.
/// A variant, target or image as the item query aggregates it (JSON).
#[derive(Debug, Deserialize)]
struct VariantRow {
    kind: String,
    caption: String,
    moderation_status: String,
    moderation: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct TargetRow {
    id: Uuid,
    platform: Platform,
    display_name: String,
}

#[derive(Debug, Deserialize)]
struct ImageRow {
    size_label: String,
    path: String,
    width: i32,
    height: i32,
}

/// The agency's items with these ids (in the order given; unknown or foreign ids are left out),
/// with their variants, target accounts and images: one query, so a page of the review queue
/// costs one round trip for its items however many it shows.
pub async fn load(state: &AppState, agency: Uuid, ids: &[Uuid]) -> AppResult<Vec<Item>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"SELECT i.id, i.client_id, c.name AS client_name, c.timezone, i.state, i.source, i.slot_at,
                  i.chosen_variant, i.caption, i.hashtags, i.cta, i.link_url, i.moderation_status,
                  i.moderation, i.rejection_reason, i.pillar, i.generation_error,
                  coalesce((SELECT json_agg(json_build_object('kind', v.kind, 'caption', v.caption,
                                       'moderation_status', v.moderation_status, 'moderation', v.moderation)
                                   ORDER BY array_position(ARRAY['conservative', 'balanced', 'bold'], v.kind))
                            FROM content_variants v WHERE v.item_id = i.id AND v.agency_id = i.agency_id),
                           '[]'::json) AS "variants!: Json<Vec<VariantRow>>",
                  coalesce((SELECT json_agg(json_build_object('id', a.id, 'platform', a.platform,
                                       'display_name', a.display_name)
                                   ORDER BY a.platform, a.display_name, a.id)
                            FROM content_item_targets t
                            JOIN social_accounts a ON a.id = t.account_id AND a.agency_id = t.agency_id
                            WHERE t.item_id = i.id AND t.agency_id = i.agency_id),
                           '[]'::json) AS "targets!: Json<Vec<TargetRow>>",
                  coalesce((SELECT json_agg(json_build_object('size_label', m.size_label, 'path', a.path,
                                       'width', a.width, 'height', a.height)
                                   ORDER BY m.size_label)
                            FROM content_item_media m
                            JOIN media_assets a ON a.id = m.media_id AND a.agency_id = m.agency_id
                            WHERE m.item_id = i.id AND m.agency_id = i.agency_id),
                           '[]'::json) AS "images!: Json<Vec<ImageRow>>"
           FROM content_items i JOIN clients c ON c.id = i.client_id AND c.agency_id = i.agency_id
           WHERE i.agency_id = $1 AND i.id = ANY($2)"#,
        agency,
        ids
    )
    .fetch_all(&state.pool)
    .await?;
    let mut by_id: HashMap<Uuid, Item> = rows
        .into_iter()
        .map(|r| {
            let item = Item {
                id: r.id,
                client_id: r.client_id,
                client_name: r.client_name,
                tz: zone(&r.timezone),
                state: r.state,
                source: r.source,
                slot_at: r.slot_at,
                chosen_variant: r.chosen_variant,
                caption: r.caption,
                hashtags: r.hashtags,
                cta: r.cta,
                link_url: r.link_url,
                moderation_status: r.moderation_status,
                reasons: reasons_of(&r.moderation),
                rejection_reason: r.rejection_reason,
                pillar: r.pillar,
                generation_error: r.generation_error,
                variants: r
                    .variants
                    .0
                    .into_iter()
                    .map(|v| Variant {
                        reasons: reasons_of(&v.moderation),
                        kind: v.kind,
                        caption: v.caption,
                        moderation_status: v.moderation_status,
                    })
                    .collect(),
                targets: r
                    .targets
                    .0
                    .into_iter()
                    .map(|t| Target {
                        account_id: t.id,
                        platform: t.platform,
                        display_name: t.display_name,
                    })
                    .collect(),
                images: r
                    .images
                    .0
                    .into_iter()
                    .map(|m| Image {
                        label: m.size_label,
                        path: m.path,
                        width: m.width,
                        height: m.height,
                    })
                    .collect(),
                platform_texts: Default::default(),
            };
            (r.id, item)
        })
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

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

/// One item of the agency, or 404.
pub async fn load_one(state: &AppState, agency: Uuid, id: Uuid) -> AppResult<Item> {
    load(state, agency, &[id])
        .await?
        .pop()
        .ok_or(AppError::NotFound)
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (time, hashtags, links, moderation)

/// "2026-11-23 16:04 CET (Europe/Berlin) · in 3 h".
pub fn when(at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> String {
    format!("{} · {}", format_in_zone(at, tz), relative(at, now))
}

/// The value for an `<input type="datetime-local">` showing `at` in `tz`.
pub fn local_input(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// A local date-time typed in the client's zone (`2026-11-23T16:30`, as a datetime-local input
/// sends it, or with a space or seconds). A time the clocks skip is moved to the next valid
/// instant, an ambiguous one (clocks turned back) takes the first.
pub fn parse_local(input: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("Enter a date and time.".into());
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| {
            let shown: String = s.chars().take(40).collect();
            format!("“{shown}” is not a date and time like 2026-11-23 16:30.")
        })?;
    if !crate::pages::in_date_window(naive.date()) {
        return Err(crate::pages::outside_window(
            &s.chars().take(40).collect::<String>(),
        ));
    }
    Ok(schedule::resolve_local(tz, naive.date(), naive.time()))
}

/// Hashtags as typed (spaces, commas or new lines between them), each with one leading `#`.
pub fn parse_hashtags(input: &str) -> Vec<String> {
    input
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "#")
        .map(|t| format!("#{}", t.trim_start_matches('#')))
        .collect()
}

/// An optional http(s) link: empty is none.
pub fn parse_link(input: &str) -> Result<Option<String>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(Some(s.to_owned()))
        }
        _ => Err("Enter a full link starting with https:// (or http://).".into()),
    }
}

/// Moderation of a text for `platforms` with the client's banned terms, measured as it will be
/// posted (caption with the call to action, then hashtags; the link on X).
pub async fn moderate(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    platforms: &[Platform],
    draft: &Draft<'_>,
) -> AppResult<Verdict> {
    let Some(c) = brand::client(&state.pool, agency, client).await? else {
        return Err(AppError::NotFound);
    };
    let brand = brand::brand(&state.pool, &c).await?;
    let text = publishing::compose_text(draft.caption, draft.cta, &[]);
    Ok(moderation::check(
        platforms,
        &moderation::Input {
            text: &text,
            hashtags: draft.hashtags,
            link_url: draft.link,
            banned_terms: &brand.banned_terms,
        },
    ))
}

/// A post's text as typed, before it is saved.
pub struct Draft<'a> {
    pub caption: &'a str,
    pub cta: Option<&'a str>,
    pub hashtags: &'a [String],
    pub link: Option<&'a str>,
}

/// A signed `/media/...` link for an image, valid for an hour (the console's own `<img>`s go
/// through the same signed route the platforms use).
pub fn media_url(state: &AppState, path: &str) -> Option<String> {
    autosocial_core::media::valid_path(path).then(|| {
        autosocial_core::media::sign(
            &state.vault,
            &state.web.public_url,
            path,
            Utc::now().timestamp(),
            PREVIEW_URL_TTL,
        )
        .to_string()
    })
}

// ---------------------------------------------------------------------------------------------
// Platform previews

/// Characters a platform shows before its "more" / "see more" cut (the feed view), if it cuts.
/// X shows everything up to its limit.
pub fn fold_at(platform: Platform) -> Option<usize> {
    match platform {
        Platform::Instagram => Some(125),
        Platform::Linkedin => Some(210),
        Platform::Facebook | Platform::Sandbox => Some(480),
        // about two lines under the video
        Platform::Tiktok => Some(100),
        Platform::X => None,
    }
}

/// What the feed shows before the cut, and whether there is more.
pub fn folded(text: &str, platform: Platform) -> (&str, bool) {
    match fold_at(platform).and_then(|n| text.char_indices().nth(n)) {
        Some((i, _)) => (text[..i].trim_end(), true),
        None => (text, false),
    }
}

/// The post's length as the platform counts it (X weighted, others by characters).
pub fn platform_length(text: &str, platform: Platform) -> usize {
    match platform {
        Platform::X => moderation::x_weighted_length(text),
        _ => text.chars().count(),
    }
}

fn preview(state: &AppState, item: &Item, platform: Platform) -> Markup {
    let (text, length) = item.platform_text(platform);
    let size = CardSize::for_platform(platform);
    let image = item
        .images
        .iter()
        .find(|i| i.label == size.label())
        .or(item.images.first());
    let (shown, more) = folded(text, platform);
    let max = moderation::max_length(platform);
    html! {
        figure.preview {
            figcaption { strong { (platform.label()) } " preview" }
            @if let Some(img) = image
                && let Some(src) = media_url(state, &img.path) {
                div class={ "crop crop-" (size.label()) } {
                    img src=(src) alt={ "The post's image (" (img.width) "×" (img.height) "), cropped as " (platform.label()) " shows it" } loading="lazy";
                }
            }
            p.preview-text {
                (shown)
                @if more { span.more { "… more" } }
            }
            @if let (Some(link), true) = (&item.link_url, platform != Platform::X) {
                p.preview-link { (link) }
            }
            p.counter.over[length > max] { (length) " / " (max)
                @if platform == Platform::X { " (as X counts)" } }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The item card

/// A message shown on an item after an action.
pub enum Notice {
    Done(String),
    Refused(String),
}

fn notice(n: &Notice) -> Markup {
    html! {
        @match n {
            Notice::Done(m) => p.notice role="status" { (m) },
            Notice::Refused(m) => p.alert role="alert" { (m) },
        }
    }
}

/// An edit that was refused, shown again with its messages.
#[derive(Default)]
pub struct EditAttempt {
    pub form: EditForm,
    pub errors: FieldErrors,
    pub reasons: Vec<Reason>,
}

/// How a card is shown.
pub struct CardOpts<'a> {
    /// Where the actions return to (`/review?...` or `/items/{id}`).
    pub back: &'a str,
    /// On the review queue: htmx swaps the card, and a checkbox joins the bulk form.
    pub queue: bool,
    pub notice: Option<&'a Notice>,
    pub edit: Option<&'a EditAttempt>,
    pub reject_error: Option<&'a str>,
}

fn field_error(errors: &FieldErrors, id: &str, field: &str) -> Markup {
    html! {
        @if let Some(e) = errors.get(field) {
            p.field-error id={ (id) "-error" } { (e) }
        }
    }
}

fn reasons_list(reasons: &[Reason]) -> Markup {
    html! {
        ul.reasons {
            @for r in reasons {
                li {
                    @if let Some(p) = r.platform { strong { (p.label()) ": " } }
                    (r.message)
                }
            }
        }
    }
}

fn moderation_badge(status: &str) -> Markup {
    html! {
        @match status {
            "pass" => span.badge.pass { "Moderation: pass" },
            "blocked" => span.badge.blocked { "Moderation: blocked" },
            _ => span.badge { "Moderation: pending" },
        }
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "planned" => "Planned",
        "generating" => "Generating",
        "pending_review" => "Waiting for review",
        "approved" => "Approved",
        "rejected" => "Rejected",
        "published" => "Published",
        "partially_published" => "Partly published",
        "failed" => "Failed",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

/// Hidden fields every action form carries.
fn form_basics(user: &CurrentUser, back: &str) -> Markup {
    html! {
        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
        input type="hidden" name="back" value=(back);
    }
}

/// The edit form of an item's card (also `GET /items/{id}/edit-form`, which the queue loads
/// when its Edit section is opened).
fn edit_form(user: &CurrentUser, item: &Item, opts: &CardOpts<'_>) -> Markup {
    let id = item.id;
    let dom = format!("item-{id}");
    let hx_target = format!("#{dom}");
    let hx = |action: &str| opts.queue.then(|| format!("/items/{id}/{action}"));
    let hx_target = opts.queue.then_some(hx_target.as_str());
    let hx_swap = opts.queue.then_some("outerHTML");
    let empty = EditAttempt::default();
    let e = opts.edit.unwrap_or(&empty);
    let ef = match opts.edit {
        Some(a) => a.form.clone(),
        None => EditForm {
            caption: item.caption.clone(),
            hashtags: item.hashtags.join(" "),
            cta: item.cta.clone().unwrap_or_default(),
            link_url: item.link_url.clone().unwrap_or_default(),
            back: String::new(),
        },
    };
    let invalid = |f: &str| e.errors.contains_key(f).then_some("true");
    let described = |f: &str| e.errors.contains_key(f).then(|| format!("{dom}-{f}-error"));
    html! {
        form method="post" action={ "/items/" (id) "/edit" } data-hx-post=[hx("edit")] data-hx-target=[hx_target] data-hx-swap=[hx_swap] novalidate {
            (form_basics(user, opts.back))
            @if !e.reasons.is_empty() {
                div.alert role="alert" { p { "Moderation blocks this text; nothing was saved:" } (reasons_list(&e.reasons)) }
            }
            label for={ (dom) "-caption" } { "Caption" }
            textarea id={ (dom) "-caption" } name="caption" rows="6" maxlength="63206"
                aria-invalid=[invalid("caption")] aria-describedby=[described("caption")] { (ef.caption) }
            (field_error(&e.errors, &format!("{dom}-caption"), "caption"))
            label for={ (dom) "-hashtags" } { "Hashtags" }
            input id={ (dom) "-hashtags" } type="text" name="hashtags" value=(ef.hashtags)
                aria-invalid=[invalid("hashtags")] aria-describedby=[described("hashtags")];
            p.hint { "Separated by spaces or commas; the # is added where missing." }
            (field_error(&e.errors, &format!("{dom}-hashtags"), "hashtags"))
            label for={ (dom) "-cta" } { "Call to action" }
            input id={ (dom) "-cta" } type="text" name="cta" maxlength="500" value=(ef.cta)
                aria-invalid=[invalid("cta")] aria-describedby=[described("cta")];
            (field_error(&e.errors, &format!("{dom}-cta"), "cta"))
            label for={ (dom) "-link" } { "Link" }
            input id={ (dom) "-link" } type="url" name="link_url" value=(ef.link_url)
                aria-invalid=[invalid("link_url")] aria-describedby=[described("link_url")];
            (field_error(&e.errors, &format!("{dom}-link"), "link_url"))
            @if item.state == "approved" {
                p.hint { "Saving updates the scheduled posts that have not gone out yet." }
            }
            div.actions { button type="submit" { "Save changes" } }
        }
    }
}

fn url_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Debug, Deserialize, Default)]
pub struct EditFormQuery {
    #[serde(default)]
    back: String,
}

/// `GET /items/{id}/edit-form`: the edit form of a card on the review queue (htmx).
pub async fn edit_form_fragment(
    State(state): State<AppState>,
    user: Reviewer,
    Path(id): Path<Uuid>,
    Query(q): Query<EditFormQuery>,
) -> AppResult<Response> {
    let item = load_one(&state, user.agency_id, id).await?;
    if !matches!(item.state.as_str(), "pending_review" | "approved") {
        return Ok((
            StatusCode::CONFLICT,
            html! { p.alert { "This post can no longer be edited. " a href={ "/items/" (id) } { "Open it" } } },
        )
            .into_response());
    }
    let back = back_to(&q.back, id);
    let opts = CardOpts {
        back: &back,
        queue: true,
        notice: None,
        edit: None,
        reject_error: None,
    };
    let mut r = edit_form(&user, &item, &opts).into_response();
    r.headers_mut().insert(
        axum::http::header::VARY,
        axum::http::HeaderValue::from_static("HX-Request"),
    );
    Ok(r)
}

/// The item's card: what it says, how it will look, and the actions the user may take.
pub fn card(state: &AppState, user: &CurrentUser, item: &Item, opts: &CardOpts<'_>) -> Markup {
    card_at(state, user, item, opts, &relative(item.slot_at, Utc::now()))
}

/// [`card`], with `when` for the slot's time relative to now.
fn card_at(
    state: &AppState,
    user: &CurrentUser,
    item: &Item,
    opts: &CardOpts<'_>,
    when: &str,
) -> Markup {
    let id = item.id;
    let dom = format!("item-{id}");
    let reviewer = user.role.allows(Role::Reviewer);
    let pending = item.state == "pending_review";
    let editable = matches!(item.state.as_str(), "pending_review" | "approved");
    let regenerable = matches!(
        item.state.as_str(),
        "pending_review" | "rejected" | "planned"
    );
    let hx = |action: &str| opts.queue.then(|| format!("/items/{id}/{action}"));
    let hx_swap = opts.queue.then_some("outerHTML");
    let edit = opts.edit;
    let platforms = item.platforms();
    let custom_text = item.chosen_variant.is_none() || item.variants.is_empty();
    html! {
        // on the queue every form of the card swaps the card (one declaration, inherited)
        article.review-card id=(dom) data-review-item tabindex="-1" aria-labelledby={ (dom) "-title" }
            "data-hx-target_inherited"=[opts.queue.then_some("this")] "data-hx-swap_inherited"=[hx_swap] {
            header.review-head {
                @if opts.queue && reviewer && pending {
                    div.checkbox.pick {
                        input id={ (dom) "-pick" } type="checkbox" name="item" value=(id) form="bulk";
                        label for={ (dom) "-pick" } { span.visually-hidden { "Select " } "for bulk approval" }
                    }
                }
                h2 id={ (dom) "-title" } {
                    a href={ "/items/" (id) } { (item.client_name) " · " (format_in_zone(item.slot_at, item.tz)) }
                }
                p.meta {
                    span.badge { (state_label(&item.state)) }
                    " " (moderation_badge(&item.moderation_status))
                    " " span.when { (when) }
                    @if item.source == "manual" { " · written by hand" }
                    @if let Some(p) = &item.pillar { " · " (p) }
                }
                p.targets {
                    "For: "
                    @if item.targets.is_empty() { em { "no target accounts" } }
                    @for (i, t) in item.targets.iter().enumerate() {
                        @if i > 0 { ", " }
                        (t.display_name) " (" (t.platform.label()) ")"
                    }
                }
            }
            @if let Some(n) = opts.notice { (notice(n)) }
            @if let Some(r) = &item.rejection_reason {
                p.alert { "Rejected: " (r) }
            }
            @if let Some(g) = &item.generation_error {
                p.alert { "Last generation attempt failed: " (g) }
            }
            // plain sections, not landmarks: named regions repeated on every card of the queue
            // are landmarks with the same name (axe: landmark-unique), 150 of them on a page
            div.review-grid {
                section.variants {
                    @if item.variants.is_empty() {
                        div.variant.chosen {
                            h3 { "Text" }
                            p.caption { (item.caption) }
                        }
                    }
                    @for v in &item.variants {
                        @let chosen = item.chosen_variant.as_deref() == Some(v.kind.as_str());
                        div.variant.chosen[chosen] {
                            h3 { (capitalised(&v.kind)) @if chosen { " " span.badge.chosen-mark { "chosen" } } " " (moderation_badge(&v.moderation_status)) }
                            p.caption { (v.caption) }
                            @if !v.reasons.is_empty() { (reasons_list(&v.reasons)) }
                        }
                    }
                    @if custom_text && !item.variants.is_empty() {
                        div.variant.chosen {
                            h3 { "Current text (edited) " span.badge.chosen-mark { "chosen" } }
                            p.caption { (item.caption) }
                        }
                    }
                    dl.facts {
                        dt { "Hashtags" } dd { @if item.hashtags.is_empty() { "—" } @else { (item.hashtags.join(" ")) } }
                        dt { "Call to action" } dd { (item.cta.as_deref().unwrap_or("—")) }
                        dt { "Link" } dd { (item.link_url.as_deref().unwrap_or("—")) }
                    }
                }
                section.moderation {
                    h3 { "Moderation" }
                    @match item.moderation_status.as_str() {
                        "pass" => p { "Passed for every target platform." },
                        "blocked" => {
                            p { "Blocked — this text cannot be approved as it is:" }
                            (reasons_list(&item.reasons))
                        },
                        _ => p { "Not checked yet." },
                    }
                }
                section.previews {
                    @for p in &platforms { (preview(state, item, *p)) }
                }
            }
            @if reviewer {
                div.item-actions {
                    @if pending {
                        form method="post" action={ "/items/" (id) "/approve" } data-hx-post=[hx("approve")] {
                            (form_basics(user, opts.back))
                            @if !item.variants.is_empty() {
                                fieldset.variant-choice {
                                    legend { "Variant to publish" }
                                    @for v in &item.variants {
                                        @let vid = format!("{dom}-v-{}", v.kind);
                                        span.radio {
                                            input id=(vid) type="radio" name="variant" value=(v.kind)
                                                checked[item.chosen_variant.as_deref() == Some(v.kind.as_str())];
                                            label for=(vid) { (capitalised(&v.kind)) @if v.moderation_status == "blocked" { " (blocked)" } }
                                        }
                                    }
                                    @if custom_text {
                                        span.radio {
                                            input id={ (dom) "-v-current" } type="radio" name="variant" value="" checked;
                                            label for={ (dom) "-v-current" } { "Current text" }
                                        }
                                    }
                                }
                            }
                            button type="submit" data-action="approve" { "Approve" }
                        }
                    }
                    @if editable {
                        @if opts.queue && edit.is_none() {
                            // the queue loads the form when the section is opened (it is most of a
                            // card); without JavaScript the link leads to the post's own page
                            details data-section="edit" data-hx-get={ "/items/" (id) "/edit-form?back=" (url_component(opts.back)) }
                                data-hx-trigger="toggle once" data-hx-target="find .edit-slot" data-hx-swap="innerHTML" {
                                summary { "Edit" }
                                div.edit-slot {
                                    p { a href={ "/items/" (id) "#" (dom) "-caption" } { "Edit this post on its own page" } }
                                }
                            }
                        } @else {
                            details data-section="edit" open[edit.is_some()] {
                                summary { "Edit" }
                                (edit_form(user, item, opts))
                            }
                        }
                    }
                    @if pending {
                        details data-section="reject" open[opts.reject_error.is_some()] {
                            summary { "Reject" }
                            form method="post" action={ "/items/" (id) "/reject" } data-hx-post=[hx("reject")] novalidate {
                                (form_basics(user, opts.back))
                                label for={ (dom) "-reason" } { "Why is it rejected?" }
                                textarea id={ (dom) "-reason" } name="reason" rows="2" maxlength="2000" required
                                    aria-invalid=[opts.reject_error.map(|_| "true")]
                                    aria-describedby=[opts.reject_error.map(|_| format!("{dom}-reason-error"))] {}
                                @if let Some(err) = opts.reject_error {
                                    p.field-error id={ (dom) "-reason-error" } { (err) }
                                }
                                div.actions { button.danger type="submit" { "Reject" } }
                            }
                        }
                    }
                    @if item.state == "approved" {
                        form method="post" action={ "/items/" (id) "/cancel" } data-hx-post=[hx("cancel")] {
                            (form_basics(user, opts.back))
                            button.danger type="submit" { "Cancel the scheduled posts" }
                        }
                    }
                    @if regenerable {
                        form method="post" action={ "/items/" (id) "/regenerate" } data-hx-post=[hx("regenerate")] {
                            (form_basics(user, opts.back))
                            button.secondary type="submit" { "Regenerate" }
                        }
                    }
                }
            }
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The card after an action took it out of the queue (htmx only).
fn done_card(id: Uuid, message: &str) -> Markup {
    html! {
        article.review-card.done id={ "item-" (id) } {
            p.notice role="status" { (message) " " a href={ "/items/" (id) } { "Open the item" } }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The item page

struct PublicationRow {
    id: Uuid,
    platform: Platform,
    account: String,
    state: String,
    scheduled_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    post_url: Option<String>,
    last_error: Option<String>,
    held_reason: Option<String>,
    attempts: i32,
}

struct LogRow {
    created_at: DateTime<Utc>,
    platform: Platform,
    account: String,
    action: String,
    outcome: String,
    status_code: Option<i32>,
    latency_ms: Option<i32>,
    error: Option<String>,
}

/// What the item page shows besides the item.
#[derive(Default)]
pub struct PageOpts {
    pub notice: Option<Notice>,
    pub edit: Option<EditAttempt>,
    pub reject_error: Option<String>,
    /// A refused reschedule: the publication and the message.
    pub reschedule_error: Option<(Uuid, String, String)>,
}

fn reschedulable(state: &str) -> bool {
    matches!(state, "failed" | "needs_attention")
}

async fn item_page(
    state: &AppState,
    user: &CurrentUser,
    item: &Item,
    opts: &PageOpts,
) -> AppResult<Markup> {
    let agency = user.agency_id;
    let publications: Vec<PublicationRow> = sqlx::query!(
        r#"SELECT p.id, p.platform AS "platform: Platform", a.display_name, p.state, p.scheduled_at, p.published_at,
                  p.platform_post_url, p.last_error, p.held_reason, p.attempts
           FROM publications p JOIN social_accounts a ON a.id = p.account_id AND a.agency_id = p.agency_id
           WHERE p.item_id = $1 AND p.agency_id = $2 ORDER BY p.platform, a.display_name, p.id"#,
        item.id,
        agency
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| PublicationRow {
        id: r.id,
        platform: r.platform,
        account: r.display_name,
        state: r.state,
        scheduled_at: r.scheduled_at,
        published_at: r.published_at,
        post_url: r.platform_post_url,
        last_error: r.last_error,
        held_reason: r.held_reason,
        attempts: r.attempts,
    })
    .collect();
    let logs: Vec<LogRow> = sqlx::query!(
        r#"SELECT l.created_at, p.platform AS "platform: Platform", a.display_name, l.action, l.outcome,
                  l.status_code, l.latency_ms, l.error
           FROM post_logs l
           JOIN publications p ON p.id = l.publication_id AND p.agency_id = l.agency_id
           JOIN social_accounts a ON a.id = p.account_id AND a.agency_id = p.agency_id
           WHERE p.item_id = $1 AND l.agency_id = $2 ORDER BY l.created_at DESC, l.id DESC LIMIT 200"#,
        item.id,
        agency
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| LogRow {
        created_at: r.created_at,
        platform: r.platform,
        account: r.display_name,
        action: r.action,
        outcome: r.outcome,
        status_code: r.status_code,
        latency_ms: r.latency_ms,
        error: r.error,
    })
    .collect();
    let now = Utc::now();
    let back = format!("/items/{}", item.id);
    let reviewer = user.role.allows(Role::Reviewer);
    let tz = item.tz;
    Ok(html! {
        p { a href="/review" { "← Review queue" } }
        h1 { "Post for " (item.client_name) }
        (card(state, user, item, &CardOpts {
            back: &back,
            queue: false,
            notice: opts.notice.as_ref(),
            edit: opts.edit.as_ref(),
            reject_error: opts.reject_error.as_deref(),
        }))
        // while a post is about to go out (or going), this section refreshes itself
        @let soon = publications.iter().any(|p| p.state == "publishing"
            || (p.state == "scheduled" && p.scheduled_at < now + chrono::TimeDelta::minutes(15)));
        section #publications-live data-hx-get=[soon.then_some(&back)]
            data-hx-select=[soon.then_some("#publications-live")] data-hx-target=[soon.then_some("this")]
            data-hx-swap=[soon.then_some("outerHTML")] data-hx-trigger=[soon.then_some("every 3s")] {
        h2 { "Publications" }
        @if publications.is_empty() {
            p.empty { "None yet: publications are made when the item is approved." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Account" } th scope="col" { "State" } th scope="col" { "When" }
                    th scope="col" { "Post" } th scope="col" { "Last error" }
                } }
                tbody {
                    @for p in &publications {
                        tr {
                            td { (p.account) " (" (p.platform.label()) ")" }
                            td { span.badge { (p.state) } @if p.attempts > 0 { " · " (p.attempts) " attempt" @if p.attempts != 1 { "s" } } }
                            td {
                                @if let Some(at) = p.published_at { "Published " (when(at, tz, now)) }
                                @else { (when(p.scheduled_at, tz, now)) }
                            }
                            td {
                                @match &p.post_url {
                                    Some(u) if u.starts_with("https://") || u.starts_with("http://") => a href=(u) rel="noopener noreferrer" { "View on " (p.platform.label()) },
                                    _ => "—",
                                }
                            }
                            td {
                                @if let Some(h) = &p.held_reason { "Held: " (h) br; }
                                (p.last_error.as_deref().unwrap_or(""))
                                @if reviewer && reschedulable(&p.state) {
                                    @let err = opts.reschedule_error.as_ref().filter(|(id, _, _)| *id == p.id);
                                    @let fid = format!("resched-{}", p.id);
                                    form.inline method="post" action={ "/items/" (item.id) "/publications/" (p.id) "/reschedule" } novalidate {
                                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                        label for=(fid) { "New time (" (tz.name()) ")" }
                                        input id=(fid) type="datetime-local" name="at" required
                                            value=(err.map(|e| e.2.clone()).unwrap_or_else(|| local_input(now + chrono::TimeDelta::minutes(10), tz)))
                                            aria-invalid=[err.map(|_| "true")] aria-describedby=[err.map(|_| format!("{fid}-error"))];
                                        @if let Some((_, m, _)) = err { p.field-error id={ (fid) "-error" } { (m) } }
                                        button.secondary type="submit" { "Reschedule" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Post log" }
        @if logs.is_empty() {
            p.empty { "No attempt yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Account" } th scope="col" { "Action" }
                    th scope="col" { "Outcome" } th scope="col" { "HTTP" } th scope="col" { "Latency" } th scope="col" { "Error" }
                } }
                tbody {
                    @for l in &logs {
                        tr {
                            td { (when(l.created_at, tz, now)) }
                            td { (l.account) " (" (l.platform.label()) ")" }
                            td { (l.action) }
                            td { (l.outcome) }
                            td { @if let Some(c) = l.status_code { (c) } @else { "—" } }
                            td { @if let Some(ms) = l.latency_ms { (ms) " ms" } @else { "—" } }
                            td { (l.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        }
    })
}

async fn render_page(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    item: &Item,
    opts: &PageOpts,
    status: StatusCode,
) -> AppResult<Response> {
    let body = item_page(state, user, item, opts).await?;
    Ok((status, respond(htmx, user, "Post", Nav::Review, body)).into_response())
}

/// `GET /items/{id}`.
pub async fn show(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let item = load_one(&state, user.agency_id, id).await?;
    render_page(
        &state,
        &user,
        htmx,
        &item,
        &PageOpts::default(),
        StatusCode::OK,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Actions

/// Where an action returns to: the review queue or the item page, never elsewhere.
fn back_to(back: &str, id: Uuid) -> String {
    let ok = (back == "/review" || back.starts_with("/review?") || back == format!("/items/{id}"))
        && !back.contains(['\\', '\r', '\n']);
    if ok {
        back.to_owned()
    } else {
        format!("/items/{id}")
    }
}

fn from_queue(htmx: Htmx, back: &str) -> bool {
    htmx.0 && back.starts_with("/review")
}

/// The outcome of an action for the caller: htmx from the queue gets the card, a form gets a
/// redirect (success) or the item page with the message (refused).
async fn answer(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    id: Uuid,
    back: &str,
    outcome: Result<Notice, PageOpts>,
) -> AppResult<Response> {
    let back = back_to(back, id);
    match outcome {
        Ok(Notice::Done(message)) if from_queue(htmx, &back) => {
            // gone from the queue (approved, rejected, regenerating) or changed (edited)
            let item = load_one(state, user.agency_id, id).await?;
            if item.state == "pending_review" {
                let n = Notice::Done(message);
                Ok(card(
                    state,
                    user,
                    &item,
                    &CardOpts {
                        back: &back,
                        queue: true,
                        notice: Some(&n),
                        edit: None,
                        reject_error: None,
                    },
                )
                .into_response())
            } else {
                Ok(done_card(id, &message).into_response())
            }
        }
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        Err(opts) => {
            let item = load_one(state, user.agency_id, id).await?;
            if from_queue(htmx, &back) {
                let body = card(
                    state,
                    user,
                    &item,
                    &CardOpts {
                        back: &back,
                        queue: true,
                        notice: opts.notice.as_ref(),
                        edit: opts.edit.as_ref(),
                        reject_error: opts.reject_error.as_deref(),
                    },
                );
                Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
            } else {
                render_page(
                    state,
                    user,
                    Htmx(false),
                    &item,
                    &opts,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
        }
    }
}

fn refused(message: impl Into<String>) -> PageOpts {
    PageOpts {
        notice: Some(Notice::Refused(message.into())),
        ..PageOpts::default()
    }
}

/// Why an approval was refused, for a person.
pub fn approve_message(e: &ApproveError) -> String {
    match e {
        ApproveError::Blocked => "Moderation blocked this item, so it cannot be approved. Edit it until it passes (or choose a variant that passes), or reject it.".into(),
        ApproveError::WrongState(s) => format!("This item is {}; only items waiting for review can be approved.", state_label(s).to_lowercase()),
        ApproveError::NoTargets => "This item has no target accounts, so there is nothing to publish. Reject it or regenerate it.".into(),
        ApproveError::NoVariant(v) => format!("There is no variant “{v}” for this item."),
        ApproveError::NotFound => "This item no longer exists.".into(),
    }
}

/// Approve one item in its own transaction (with its audit entry). `Ok(Err(message))`: refused.
pub async fn approve_one(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    variant: Option<&str>,
) -> AppResult<Result<usize, String>> {
    let mut tx = state.pool.begin().await?;
    match publishing::approve(&mut tx, user.agency_id, id, Some(user.user_id), variant).await {
        Ok(n) => {
            audit::append(
                &mut tx,
                &user.actor(),
                Entry::new(Some(user.agency_id), "item.approve")
                    .target("content_item", id)
                    .details(serde_json::json!({ "variant": variant, "publications": n })),
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(n))
        }
        Err(ApproveFailure::Refused(ApproveError::NotFound)) => Err(AppError::NotFound),
        Err(ApproveFailure::Refused(e)) => Ok(Err(approve_message(&e))),
        Err(ApproveFailure::Database(e)) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ApproveForm {
    #[serde(default)]
    variant: String,
    #[serde(default)]
    back: String,
}

/// `POST /items/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<ApproveForm>,
) -> AppResult<Response> {
    let variant = match f.variant.trim() {
        "" => None,
        v if VARIANTS.contains(&v) => Some(v),
        _ => {
            return answer(
                &state,
                &user,
                htmx,
                id,
                &f.back,
                Err(refused("Choose one of the variants shown.")),
            )
            .await;
        }
    };
    let outcome = match approve_one(&state, &user, id, variant).await? {
        Ok(n) => Ok(Notice::Done(format!(
            "Approved: {n} post{} scheduled.",
            if n == 1 { "" } else { "s" }
        ))),
        Err(m) => Err(refused(m)),
    };
    answer(&state, &user, htmx, id, &f.back, outcome).await
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct EditForm {
    #[serde(default)]
    pub caption: String,
    #[serde(default)]
    pub hashtags: String,
    #[serde(default)]
    pub cta: String,
    #[serde(default)]
    pub link_url: String,
    #[serde(default)]
    pub back: String,
}

/// `POST /items/{id}/edit`: save the text, re-run moderation for the item's platforms, and
/// re-snapshot the publications of an approved item that have not gone out.
pub async fn edit(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<EditForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    if !matches!(item.state.as_str(), "pending_review" | "approved") {
        let m = format!(
            "This item is {}; only items waiting for review or approved and not yet published can be edited.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
    }
    let mut errors = FieldErrors::new();
    let caption = f.caption.trim_end().to_owned();
    if caption.trim().is_empty() {
        errors.insert("caption", "Write the caption.".into());
    } else if caption.chars().count() > 63_206 {
        errors.insert("caption", "Use at most 63,206 characters.".into());
    }
    let hashtags = parse_hashtags(&f.hashtags);
    let cta = Some(f.cta.trim().to_owned()).filter(|c| !c.is_empty());
    if cta.as_ref().is_some_and(|c| c.chars().count() > 500) {
        errors.insert("cta", "Use at most 500 characters.".into());
    }
    let link = match parse_link(&f.link_url) {
        Ok(l) => l,
        Err(m) => {
            errors.insert("link_url", m);
            None
        }
    };
    if !errors.is_empty() {
        let opts = PageOpts {
            edit: Some(EditAttempt {
                form: f.clone(),
                errors,
                reasons: Vec::new(),
            }),
            ..PageOpts::default()
        };
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    let mut platforms: Vec<Platform> = item.targets.iter().map(|t| t.platform).collect();
    platforms.dedup();
    let verdict = moderate(
        &state,
        agency,
        item.client_id,
        &platforms,
        &Draft {
            caption: &caption,
            cta: cta.as_deref(),
            hashtags: &hashtags,
            link: link.as_deref(),
        },
    )
    .await?;
    if item.state == "approved" && !verdict.passed() {
        // an approved post may not turn into a blocked one: keep what was approved
        let opts = PageOpts {
            edit: Some(EditAttempt {
                form: f.clone(),
                errors: FieldErrors::new(),
                reasons: verdict.reasons,
            }),
            ..PageOpts::default()
        };
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    let status = if verdict.passed() { "pass" } else { "blocked" };
    let mut tx = state.pool.begin().await?;
    let updated = sqlx::query_scalar!(
        "UPDATE content_items SET caption = $3, hashtags = $4, cta = $5, link_url = $6, chosen_variant = NULL,
                moderation_status = $7, moderation = $8, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state IN ('pending_review', 'approved') RETURNING state",
        id,
        agency,
        caption,
        &hashtags,
        cta,
        link,
        status,
        verdict.to_json()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(now_state) = updated else {
        tx.rollback().await?;
        return answer(
            &state,
            &user,
            htmx,
            id,
            &f.back,
            Err(refused("The item changed meanwhile; reload and try again.")),
        )
        .await;
    };
    let resnapshot = if now_state == "approved" {
        publishing::schedule(&mut tx, agency, id).await?
    } else {
        0
    };
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.edit")
            .target("content_item", id)
            .details(
                serde_json::json!({ "moderation": status, "publications_updated": resnapshot }),
            ),
    )
    .await?;
    tx.commit().await?;
    let message = match (status, resnapshot) {
        ("blocked", _) => "Saved, but moderation blocks it: see the reasons.".to_owned(),
        (_, 0) => "Saved; moderation passed.".to_owned(),
        (_, n) => format!(
            "Saved; moderation passed and {n} scheduled post{} updated.",
            if n == 1 { " was" } else { "s were" }
        ),
    };
    answer(&state, &user, htmx, id, &f.back, Ok(Notice::Done(message))).await
}

#[derive(Debug, Deserialize, Default)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// `POST /items/{id}/reject`: a reason is required.
pub async fn reject(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<RejectForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    let reason = f.reason.trim();
    let error = if reason.is_empty() {
        Some("Say why it is rejected: the reason is kept with the item.")
    } else if reason.chars().count() > 2000 {
        Some("Use at most 2000 characters.")
    } else {
        None
    };
    if let Some(e) = error {
        let opts = PageOpts {
            reject_error: Some(e.into()),
            ..PageOpts::default()
        };
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    if item.state != "pending_review" {
        let m = format!(
            "This item is {}; only items waiting for review can be rejected.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
    }
    let mut tx = state.pool.begin().await?;
    let done = sqlx::query!(
        "UPDATE content_items SET state = 'rejected', rejection_reason = $3, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = 'pending_review'",
        id,
        agency,
        reason
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return answer(
            &state,
            &user,
            htmx,
            id,
            &f.back,
            Err(refused("The item changed meanwhile; reload and try again.")),
        )
        .await;
    }
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.reject")
            .target("content_item", id)
            .details(serde_json::json!({ "reason": reason })),
    )
    .await?;
    tx.commit().await?;
    answer(
        &state,
        &user,
        htmx,
        id,
        &f.back,
        Ok(Notice::Done("Rejected.".into())),
    )
    .await
}

/// `POST /items/{id}/cancel`: an approved item's posts that have not gone out are cancelled
/// with their publish jobs (what already went out stays).
pub async fn cancel(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<BackForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    if item.state != "approved" {
        let m = format!(
            "This item is {}; only approved items can be cancelled.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
    }
    let mut tx = state.pool.begin().await?;
    let cancelled = publishing::cancel_item(&mut tx, agency, id).await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.cancel")
            .target("content_item", id)
            .details(serde_json::json!({ "publications": cancelled })),
    )
    .await?;
    tx.commit().await?;
    let notice = if cancelled == 0 {
        Err(refused(
            "Nothing was left to cancel: the posts are going out or have gone out.",
        ))
    } else {
        Ok(Notice::Done(format!(
            "Cancelled {cancelled} scheduled post(s)."
        )))
    };
    answer(&state, &user, htmx, id, &f.back, notice).await
}

#[derive(Debug, Deserialize, Default)]
pub struct BackForm {
    #[serde(default)]
    back: String,
}

/// `POST /items/{id}/regenerate`: back to `planned` without its variants, and the item's
/// `generate` job enqueued in the same transaction (generation claims only planned items).
pub async fn regenerate(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<BackForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    let mut tx = state.pool.begin().await?;
    let reset = sqlx::query_scalar!(
        "UPDATE content_items SET state = 'planned', chosen_variant = NULL, moderation_status = 'pending',
                moderation = '{}', rejection_reason = NULL, generation_error = NULL, approved_by = NULL,
                approved_at = NULL, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state IN ('pending_review', 'rejected', 'planned')
         RETURNING client_id",
        id,
        agency
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(client) = reset else {
        tx.rollback().await?;
        let m = format!(
            "This item is {}; only items waiting for review or rejected can be regenerated.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
    };
    sqlx::query!(
        "DELETE FROM content_variants WHERE item_id = $1 AND agency_id = $2",
        id,
        agency
    )
    .execute(&mut *tx)
    .await?;
    queue::enqueue(&mut tx, &generate::generate_job(agency, client, id)).await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.regenerate").target("content_item", id),
    )
    .await?;
    tx.commit().await?;
    answer(
        &state,
        &user,
        htmx,
        id,
        &f.back,
        Ok(Notice::Done(
            "Regenerating: the new variants will be back in the queue shortly.".into(),
        )),
    )
    .await
}

#[derive(Debug, Deserialize, Default)]
pub struct RescheduleForm {
    #[serde(default)]
    at: String,
}

/// `POST /items/{id}/publications/{publication}/reschedule`: a failed (or needs-attention)
/// publication back on schedule at a local time of the client.
pub async fn reschedule(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path((id, publication)): Path<(Uuid, Uuid)>,
    Form(f): Form<RescheduleForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    let p = sqlx::query!(
        "SELECT state FROM publications WHERE id = $1 AND item_id = $2 AND agency_id = $3",
        publication,
        id,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let refuse = |m: String| PageOpts {
        reschedule_error: Some((publication, m, f.at.clone())),
        ..PageOpts::default()
    };
    if !reschedulable(&p.state) {
        let opts = refuse(format!(
            "This publication is {}; only failed ones or ones that need attention can be rescheduled.",
            p.state
        ));
        return render_page(
            &state,
            &user,
            htmx,
            &item,
            &opts,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let at = match parse_local(&f.at, item.tz) {
        Ok(at) if at < Utc::now() - chrono::TimeDelta::minutes(1) => {
            Err("That time has passed; choose a time from now on.".to_owned())
        }
        other => other,
    };
    let at = match at {
        Ok(at) => at,
        Err(m) => {
            return render_page(
                &state,
                &user,
                htmx,
                &item,
                &refuse(m),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let mut tx = state.pool.begin().await?;
    if !publishing::reschedule(&mut tx, agency, publication, at).await? {
        tx.rollback().await?;
        let opts = refuse("The publication changed meanwhile; reload and try again.".into());
        return render_page(
            &state,
            &user,
            htmx,
            &item,
            &opts,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "publication.reschedule")
            .target("publication", publication)
            .details(serde_json::json!({ "item": id, "at": at })),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/items/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_cut_where_each_platform_does() {
        let long = "a".repeat(600);
        assert_eq!(folded(&long, Platform::Instagram).0.len(), 125);
        assert_eq!(folded(&long, Platform::Linkedin).0.len(), 210);
        assert_eq!(folded(&long, Platform::Facebook).0.len(), 480);
        assert_eq!(folded(&long, Platform::X), (long.as_str(), false));
        assert_eq!(folded("short", Platform::Instagram), ("short", false));
        // characters, not bytes
        let umlauts = "ä".repeat(200);
        assert_eq!(folded(&umlauts, Platform::Instagram).0.chars().count(), 125);
    }

    #[test]
    fn local_times_resolve_in_the_clients_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = parse_local("2026-07-01T14:00", berlin).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-07-01T12:00:00+00:00");
        // spring forward: 02:30 does not exist, the next valid instant is 03:00 CEST
        let gap = parse_local("2026-03-29T02:30", berlin).unwrap();
        assert_eq!(gap.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        // fall back: 02:30 happens twice, the first (CEST) is taken
        let twice = parse_local("2026-10-25 02:30", berlin).unwrap();
        assert_eq!(twice.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        assert!(parse_local("tomorrow", berlin).is_err());
        assert!(parse_local("", berlin).is_err());
    }

    #[test]
    fn hashtags_and_links_are_normalised() {
        assert_eq!(
            parse_hashtags("spring, #sale  ##new\n#"),
            vec!["#spring", "#sale", "#new"]
        );
        assert_eq!(parse_link(" ").unwrap(), None);
        assert!(parse_link("javascript:alert(1)").is_err());
        assert!(parse_link("example.com").is_err());
        assert_eq!(
            parse_link("https://example.com/a").unwrap().as_deref(),
            Some("https://example.com/a")
        );
    }

    #[test]
    fn actions_return_only_to_our_pages() {
        let id = Uuid::nil();
        assert_eq!(back_to("/review?client=x", id), "/review?client=x");
        assert_eq!(back_to(&format!("/items/{id}"), id), format!("/items/{id}"));
        assert_eq!(back_to("https://evil.example/", id), format!("/items/{id}"));
        assert_eq!(back_to("//evil.example/review", id), format!("/items/{id}"));
    }
}
