//! The agency's audit log (admins and owners): filter by actor, action, target and date range,
//! newest first with keyset pagination, and the result of recomputing the agency's hash chain
//! ("verified: N entries" or the first entry that does not match).
//!
//! Only the agency's own chain is shown; the system chain (failed logins of unknown accounts and
//! other deployment-wide events) belongs to no agency.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Days, NaiveDate, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use autosocial_core::audit::{self, ChainStatus};

use crate::app::AppState;
use crate::auth::AdminRole;
use crate::error::AppResult;
use crate::extract::Query;
use crate::pages::layout::{Htmx, Nav, respond};
use crate::pages::{format_in_zone, parse_day};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    /// `YYYY-MM-DD`, inclusive, in UTC.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Keyset cursor: entries older than this id.
    before: Option<i64>,
}

struct Row {
    id: i64,
    created_at: DateTime<Utc>,
    actor_label: String,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    details: serde_json::Value,
    ip: Option<sqlx::types::ipnetwork::IpNetwork>,
}

fn like_pattern(s: &str) -> String {
    format!(
        "%{}%",
        s.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

fn chain_status(status: &ChainStatus) -> Markup {
    html! {
        @match status {
            ChainStatus::Intact { entries } => {
                p.notice role="status" { "Chain verified: " (entries) " entries, none altered or removed." }
            }
            ChainStatus::Broken { at_id, entries_checked } => {
                p.alert role="alert" {
                    "Chain broken at entry #" (at_id) ": it was altered, or an entry before it was removed. "
                    (entries_checked) " earlier entries verified."
                }
            }
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let from = parse_day(&q.from);
    let to = parse_day(&q.to);
    let (actor, action, target) = (q.actor.trim(), q.action.trim(), q.target.trim());
    let rows = match (&from, &to) {
        (Ok(from), Ok(to)) => {
            let from = from.map(start_of);
            // inclusive: everything before the next day's midnight
            let to = to
                .and_then(|d| d.checked_add_days(Days::new(1)))
                .map(start_of);
            sqlx::query_as!(
                Row,
                r#"SELECT id, created_at, actor_label, action, target_type, target_id, details, ip
                   FROM audit_log
                   WHERE agency_id = $1
                     AND ($2 = '' OR actor_label ILIKE $3)
                     AND ($4 = '' OR action ILIKE $5)
                     AND ($6 = '' OR target_id ILIKE $7 OR target_type ILIKE $7 OR (target_type || ':' || target_id) ILIKE $7)
                     AND ($8::timestamptz IS NULL OR created_at >= $8)
                     AND ($9::timestamptz IS NULL OR created_at < $9)
                     AND ($10::int8 IS NULL OR id < $10)
                   ORDER BY id DESC
                   LIMIT $11"#,
                user.agency_id,
                actor,
                like_pattern(actor),
                action,
                like_pattern(action),
                target,
                like_pattern(target),
                from,
                to,
                q.before,
                PAGE_SIZE + 1,
            )
            .fetch_all(&state.pool)
            .await?
        }
        _ => Vec::new(),
    };
    let status = audit::verify(&state.pool, Some(user.agency_id)).await?;
    let has_more = rows.len() as i64 > PAGE_SIZE;
    let rows = &rows[..rows.len().min(PAGE_SIZE as usize)];
    let next = has_more.then(|| rows.last()).flatten().map(|last| {
        let params = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", actor)
            .append_pair("action", action)
            .append_pair("target", target)
            .append_pair("from", q.from.trim())
            .append_pair("to", q.to.trim())
            .append_pair("before", &last.id.to_string())
            .finish();
        format!("/audit?{params}")
    });
    let from_error = from.as_ref().err();
    let to_error = to.as_ref().err();
    // a filter that cannot be read is refused (400) with its field's message; nothing is listed
    let http_status = if from_error.is_some() || to_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = html! {
        h1 { "Audit log" }
        (chain_status(&status))
        form.toolbar method="get" action="/audit" role="search" {
            div.grow {
                label for="actor" { "Actor" }
                input #actor type="search" name="actor" value=(actor) placeholder="email or label";
            }
            div.grow {
                label for="action" { "Action" }
                input #action type="search" name="action" value=(action) placeholder="e.g. kill_switch";
            }
            div.grow {
                label for="target" { "Target" }
                input #target type="search" name="target" value=(target) placeholder="type or id";
            }
            div {
                label for="from" { "From (UTC)" }
                input #from type="date" name="from" value=(q.from.trim())
                    aria-invalid=[from_error.map(|_| "true")] aria-describedby=[from_error.map(|_| "from-error")];
            }
            div {
                label for="to" { "To (UTC, inclusive)" }
                input #to type="date" name="to" value=(q.to.trim())
                    aria-invalid=[to_error.map(|_| "true")] aria-describedby=[to_error.map(|_| "to-error")];
            }
            button.secondary type="submit" { "Filter" }
        }
        @if let Some(e) = from_error { p.field-error #from-error { "From: " (e) } }
        @if let Some(e) = to_error { p.field-error #to-error { "To: " (e) } }
        @if rows.is_empty() {
            p.empty { "No entry matches." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" }
                    th scope="col" { "Target" } th scope="col" { "Details" } th scope="col" { "Address" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.id) }
                            td { (format_in_zone(r.created_at, chrono_tz::UTC)) }
                            td { (r.actor_label) }
                            td { code { (r.action) } }
                            td {
                                @if let Some(t) = &r.target_type { (t) }
                                @if let Some(id) = &r.target_id { " " code { (id) } }
                            }
                            td { @if r.details.as_object().is_some_and(|o| !o.is_empty()) { code { (r.details.to_string()) } } }
                            td { @if let Some(ip) = r.ip { (ip.ip()) } }
                        }
                    }
                }
            }
        }
        @if let Some(link) = next {
            div.actions { a.button.secondary href=(link) rel="next" { "Older entries" } }
        }
    };
    let mut r = respond(htmx, &user, "Audit log", Nav::Audit, body);
    *r.status_mut() = http_status;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_and_wildcards_escaped() {
        assert_eq!(parse_day(""), Ok(None));
        assert_eq!(
            parse_day("2026-11-23"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 23))
        );
        assert!(parse_day("23/11/2026").unwrap_err().contains("23/11/2026"));
        assert_eq!(like_pattern("a_b%"), "%a\\_b\\%%");
        // the end of the last day in the window still exists
        let (_, last) = crate::pages::date_window();
        assert!(last.checked_add_days(Days::new(1)).is_some());
    }
}
