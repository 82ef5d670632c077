//! The fleet: live workers (Redis presence), jobs in flight, queue depth and lag per kind, and
//! failed jobs with their error, which admins may retry or discard. The live part refreshes
//! itself every few seconds through htmx polling; without JavaScript a reload does the same.
//!
//! Tenancy: jobs carrying an `agency_id` are shown to that agency only (admins and owners retry
//! or discard them). Jobs without one are system work (sweeps, periodic planning) that serves
//! every agency of the deployment: they are the operator's (granted by the CLI only), shown to
//! and acted on by operators alone, and audited in the system chain. How many jobs each worker
//! runs counts every agency's work, so only operators see it.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeZone, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use autosocial_core::audit::{self, Entry};
use autosocial_core::domain::Role;
use autosocial_core::fleet;
use autosocial_core::queue;

use crate::app::AppState;
use crate::auth::{CurrentUser, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Path, Query};
use crate::pages::layout::{Htmx, Nav, bare_page, respond};
use crate::pages::{format_in_zone, relative};

const FAILED_PAGE: i64 = 25;
const RUNNING_SHOWN: i64 = 100;

fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        "{} · {}",
        format_in_zone(at, chrono_tz::UTC),
        relative(at, now)
    )
}

fn sees_system_jobs(user: &CurrentUser) -> bool {
    user.operator
}

/// Workers, in-flight jobs and queue depth: the part that polls.
async fn live_partial(state: &AppState, user: &CurrentUser) -> AppResult<Markup> {
    let system = sees_system_jobs(user);
    let workers = fleet::workers(&state.redis).await;
    let depth = queue::depth_by_kind(&state.pool, user.agency_id, system).await?;
    let running = queue::running(&state.pool, user.agency_id, system, RUNNING_SHOWN).await?;
    if let Err(e) = &workers {
        tracing::warn!(error = %e, "reading worker presence failed");
    }
    let now = Utc::now();
    Ok(html! {
        h2 { "Workers" }
        @match &workers {
            Err(_) => {
                p.alert role="alert" { "Worker presence is unavailable: Redis did not answer. Jobs keep running; this list comes back with Redis." }
            }
            Ok(ws) if ws.is_empty() => { p.empty { "No worker is alive. Jobs wait until one starts." } }
            Ok(ws) => { (workers_table(ws, now, system)) }
        }
        h2 { "Queue" }
        @if depth.is_empty() {
            p.empty { "Nothing is queued." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Kind" } th scope="col" { "Due now" } th scope="col" { "Lag" }
                    th scope="col" { "Scheduled later" } th scope="col" { "Running" } th scope="col" { "Held by a switch" }
                } }
                tbody {
                    @for d in &depth {
                        tr {
                            td { code { (d.kind) } }
                            td { (d.due) }
                            td { @match d.lag_secs { Some(s) => (seconds(s)), None => "—" } }
                            td { (d.scheduled) }
                            td { (d.running) }
                            td { (d.held) }
                        }
                    }
                }
            }
        }
        h2 { "In flight" }
        @if running.is_empty() {
            p.empty { "No job is running." }
        } @else {
            table {
                thead { tr { th scope="col" { "Job" } th scope="col" { "Kind" } th scope="col" { "Attempt" } th scope="col" { "Worker" } th scope="col" { "Started" } } }
                tbody {
                    @for r in &running {
                        tr {
                            td { "#" (r.id) }
                            td { code { (r.kind) } }
                            td { (r.attempts) " of " (r.max_attempts) }
                            td { (r.locked_by.as_deref().unwrap_or("—")) }
                            td { @if let Some(t) = r.started_at { (when(t, now)) } @else { "—" } }
                        }
                    }
                }
            }
        }
        p.hint { "Updated " (format_in_zone(now, chrono_tz::UTC)) "." }
    })
}

fn seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// The live workers; `operator` adds how many jobs each runs (every agency's work together).
fn workers_table(ws: &[HashMap<String, String>], now: DateTime<Utc>, operator: bool) -> Markup {
    let field = |w: &HashMap<String, String>, k: &str| w.get(k).cloned().unwrap_or_default();
    let at = |w: &HashMap<String, String>, k: &str| {
        w.get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
    };
    html! {
        table {
            thead { tr {
                th scope="col" { "Worker" } th scope="col" { "Host" } th scope="col" { "Version" }
                @if operator { th scope="col" { "Jobs in flight" } }
                th scope="col" { "Started" } th scope="col" { "Last beat" }
            } }
            tbody {
                @for w in ws {
                    tr {
                        td { code { (field(w, "id")) } }
                        td { (field(w, "host")) " (pid " (field(w, "pid")) ")" }
                        td { (field(w, "version")) }
                        @if operator { td { (field(w, "in_flight")) } }
                        td { @if let Some(t) = at(w, "started_ms") { (when(t, now)) } @else { "—" } }
                        td { @if let Some(t) = at(w, "last_beat_ms") { (relative(t, now)) } @else { "—" } }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct FailedQuery {
    /// Keyset cursor: the last row of the previous page (finished_at, id), newest first.
    before_at: Option<DateTime<Utc>>,
    before_id: Option<i64>,
}

async fn failed_partial(
    state: &AppState,
    user: &CurrentUser,
    q: &FailedQuery,
) -> AppResult<Markup> {
    let system = sees_system_jobs(user);
    let rows = queue::failed(
        &state.pool,
        user.agency_id,
        system,
        (q.before_at, q.before_id),
        FAILED_PAGE + 1,
    )
    .await?;
    let has_more = rows.len() as i64 > FAILED_PAGE;
    let rows = &rows[..rows.len().min(FAILED_PAGE as usize)];
    let next = has_more.then(|| rows.last()).flatten().map(|last| {
        let params = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("before_at", &last.finished_at.to_rfc3339())
            .append_pair("before_id", &last.id.to_string())
            .finish();
        format!("/fleet?{params}")
    });
    let admin = user.role.allows(Role::Admin);
    let now = Utc::now();
    Ok(html! {
        h2 { "Failed jobs" }
        @if rows.is_empty() {
            p.empty { "No failed job." }
        } @else {
            table {
                thead { tr { th scope="col" { "Job" } th scope="col" { "Kind" } th scope="col" { "Attempts" } th scope="col" { "Error" } th scope="col" { "Failed" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for j in rows {
                        tr {
                            td { "#" (j.id) @if j.system { " " span.badge.archived { "system" } } }
                            td { code { (j.kind) } }
                            td { (j.attempts) " of " (j.max_attempts) }
                            td { (j.last_error.as_deref().unwrap_or("—")) }
                            td { (when(j.finished_at, now)) }
                            td {
                                @if (j.system && system) || (!j.system && admin) {
                                    div.actions {
                                        form method="post" action={ "/fleet/jobs/" (j.id) "/retry" } {
                                            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                            button.secondary type="submit" { "Retry" }
                                        }
                                        form method="post" action={ "/fleet/jobs/" (j.id) "/discard" } {
                                            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                            button.secondary type="submit" { "Discard" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(link) = next {
            div.actions { a.button.secondary href=(link) rel="next" { "Older failures" } }
        }
    })
}

pub async fn show(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Query(q): Query<FailedQuery>,
) -> AppResult<Response> {
    let live = live_partial(&state, &user).await?;
    let failed = failed_partial(&state, &user, &q).await?;
    let body = html! {
        h1 { "Fleet" }
        // polls its own partial; the polled response replaces only the inside
        div #fleet-live data-hx-get="/fleet/live" data-hx-trigger="every 5s" data-hx-swap="innerHTML" aria-live="polite" {
            (live)
        }
        (failed)
    };
    Ok(respond(htmx, &user, "Fleet", Nav::Fleet, body))
}

/// The polled part alone (a full page for a plain GET, like every partial).
pub async fn live(State(state): State<AppState>, user: Viewer, htmx: Htmx) -> AppResult<Response> {
    let live = live_partial(&state, &user).await?;
    Ok(respond(htmx, &user, "Fleet", Nav::Fleet, live))
}

enum Action {
    Retry,
    Discard,
}

/// Find a failed job this user may act on: another agency's job, or a system job for anyone
/// but an operator, is a 404; the agency's own jobs need an admin; a job that is no longer
/// failed gets a plain explanation. Actions on system jobs go to the system audit chain.
async fn act(state: &AppState, user: &CurrentUser, id: i64, action: Action) -> AppResult<Response> {
    let system = sees_system_jobs(user);
    let mut tx = state.pool.begin().await?;
    let job = queue::lock_for_action(&mut tx, id, user.agency_id, system)
        .await?
        .ok_or(AppError::NotFound)?;
    if job.agency_id.is_some() && !user.role.allows(Role::Admin) {
        return Err(AppError::Forbidden);
    }
    if job.state != "failed" {
        return Ok(not_failed(id, &job.state));
    }
    let verb = match action {
        Action::Retry => match queue::retry(&mut tx, id).await? {
            // a fresh set of attempts, due now; the last error stays visible until it runs
            queue::Retried::Retried => "job.retry",
            queue::Retried::Duplicate => {
                return Ok(conflict(&format!(
                    "Job #{id} was not retried: the same work is already queued or running."
                )));
            }
            queue::Retried::NotFailed => return Ok(not_failed(id, &job.state)),
        },
        Action::Discard => {
            if !queue::discard(&mut *tx, id).await? {
                return Ok(not_failed(id, &job.state));
            }
            "job.discard"
        }
    };
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(job.agency_id, verb)
            .target("job", id)
            .details(serde_json::json!({ "kind": job.kind, "system": job.agency_id.is_none() })),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to("/fleet").into_response())
}

fn not_failed(id: i64, state: &str) -> Response {
    conflict(&format!(
        "Job #{id} is no longer failed (it is {state}); nothing was changed."
    ))
}

fn conflict(message: &str) -> Response {
    (
        StatusCode::CONFLICT,
        bare_page(
            "Nothing changed",
            html! { h1 { "Nothing changed" } p { (message) } a href="/fleet" { "Back to the fleet" } },
        ),
    )
        .into_response()
}

pub async fn retry(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    act(&state, &user, id, Action::Retry).await
}

pub async fn discard(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    act(&state, &user, id, Action::Discard).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_reads_in_sensible_units() {
        assert_eq!(seconds(-3.0), "0 s");
        assert_eq!(seconds(42.4), "42 s");
        assert_eq!(seconds(600.0), "10 min");
        assert_eq!(seconds(7200.0), "2 h");
    }
}
