//! The item card: what an item says, how it will look on each platform, and the action forms a
//! reviewer may use (shared by the review queue and the item page).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::content::moderation::Reason;
use autosocial_core::domain::Role;

use crate::app::AppState;
use crate::auth::{CurrentUser, Reviewer};
use crate::csrf;
use crate::error::AppResult;
use crate::extract::{Path, Query};
use crate::pages::{format_in_zone, relative};

use super::FieldErrors;
use super::actions::{EditForm, back_to};
use super::load::{Item, load_one};
use super::preview::preview;

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

pub(super) fn state_label(state: &str) -> &'static str {
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
pub(super) fn card_at(
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
pub(super) fn done_card(id: Uuid, message: &str) -> Markup {
    html! {
        article.review-card.done id={ "item-" (id) } {
            p.notice role="status" { (message) " " a href={ "/items/" (id) } { "Open the item" } }
        }
    }
}
