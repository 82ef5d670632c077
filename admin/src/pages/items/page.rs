//! The item page: the item's card, its publications (with rescheduling of a failed one) and its
//! post log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use uuid::Uuid;

use autosocial_core::domain::{Platform, PublicationState, Role};
use autosocial_core::items::PublicationMove;

use crate::app::AppState;
use crate::auth::{CurrentUser, Viewer};
use crate::csrf;
use crate::error::AppResult;
use crate::extract::Path;
use crate::pages::layout::{Htmx, Nav, respond};

use super::card::{CardOpts, EditAttempt, Notice, card};
use super::fields::{local_input, when};
use super::load::{Item, load_one};

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

/// Whether a publication in `state` may be rescheduled by hand (the lifecycle's rule).
fn reschedulable(state: &str) -> bool {
    state
        .parse()
        .is_ok_and(|s: PublicationState| PublicationMove::Reschedule.allows(s))
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

pub(super) async fn render_page(
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
