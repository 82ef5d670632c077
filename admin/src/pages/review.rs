//! The review queue: every item waiting for review across the agency's clients, oldest slot
//! first (keyset pagination), filterable by client (a searchable name field, see
//! [`client_filter`]) and platform. Each card shows the variants,
//! image, moderation and platform previews with the actions of the item page; checkboxes and
//! one button approve several items at once, reporting each one's outcome.
//!
//! Keyboard shortcuts (j/k, a, r, e) come from `static/review.js`; everything works without it.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::domain::{Platform, Role};

use crate::app::AppState;
use crate::auth::{CurrentUser, Reviewer, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Query, RawForm};
use crate::pages::client_filter::{self, Resolved};
use crate::pages::items;
use crate::pages::layout::{Htmx, Nav, respond};
use crate::statics;

const PAGE_SIZE: i64 = 20;
/// Items one bulk approval takes at most (a page and then some).
const BULK_MAX: usize = 100;

#[derive(Debug, Deserialize, Default, Clone)]
pub struct ReviewQuery {
    /// A client's id (links, paging).
    #[serde(default)]
    client: String,
    /// A client's name as typed in the filter form (wins over `client`).
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    platform: String,
    /// Keyset cursor: items after this one in (slot, id) order.
    #[serde(default)]
    after: String,
}

struct Filters {
    resolved: Resolved,
    client: Option<Uuid>,
    platform: Option<Platform>,
    after: Option<Uuid>,
}

impl ReviewQuery {
    /// The query string of this filter (without the cursor), for links and `back`.
    fn href(&self, after: Option<Uuid>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if !self.client.is_empty() {
            s.append_pair("client", &self.client);
        }
        if !self.platform.is_empty() {
            s.append_pair("platform", &self.platform);
        }
        if let Some(a) = after {
            s.append_pair("after", &a.to_string());
        }
        let q = s.finish();
        if q.is_empty() {
            "/review".into()
        } else {
            format!("/review?{q}")
        }
    }
}

/// The filters of `q`, with the client resolved (another agency's client is as absent as a
/// made-up one: 404), and the query normalised to the resolved client's id for links.
async fn filters(
    state: &AppState,
    agency: Uuid,
    q: &ReviewQuery,
) -> AppResult<(Filters, ReviewQuery)> {
    let resolved =
        client_filter::resolve(state, agency, &q.client, q.client_name.as_deref()).await?;
    let client = resolved.client();
    let platform = Platform::from_str(q.platform.trim()).ok();
    let after = Uuid::from_str(q.after.trim()).ok();
    let normal = ReviewQuery {
        client: client.map(|c| c.to_string()).unwrap_or_default(),
        client_name: None,
        platform: platform.map(|p| p.as_str().to_owned()).unwrap_or_default(),
        after: String::new(),
    };
    Ok((
        Filters {
            resolved,
            client,
            platform,
            after,
        },
        normal,
    ))
}

/// A page of the pending items of agency `$1`, with the extra conditions given, the page's rows
/// picked first and only then joined to their clients. The whole queue, paged, has statements of
/// its own: Postgres keeps their plans. One statement with `$n IS NULL OR …` for every filter
/// was planned again on each request (its generic plan cannot pick an index by which filters
/// are present), which cost more than running it; a filtered view still pays that.
macro_rules! pending_page {
    ($pool:expr, [$($condition:literal),*], $($arg:expr),+ $(,)?) => {
        sqlx::query!(
            "WITH page AS MATERIALIZED (
                 SELECT i.id, i.client_id, i.updated_at, i.slot_at FROM content_items i
                 WHERE i.agency_id = $1 AND i.state = 'pending_review'"
            $(+ $condition)* +
            " ORDER BY i.slot_at, i.id LIMIT 21)
             SELECT p.id, p.updated_at, c.updated_at AS client_updated_at
             FROM page p JOIN clients c ON c.id = p.client_id AND c.agency_id = $1
             ORDER BY p.slot_at, p.id",
            $($arg),+
        )
        .fetch_all($pool)
        .await?
        .into_iter()
        .map(|r| (r.id, r.updated_at, r.client_updated_at))
        .collect::<Vec<_>>()
    };
}

/// One page: each item's id with its version and its client's (see [`items::ItemCache`]), and
/// whether more follow.
async fn page_ids(
    state: &AppState,
    agency: Uuid,
    f: &Filters,
) -> AppResult<(Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>, bool)> {
    const _: () = assert!(PAGE_SIZE + 1 == 21, "the statements below say LIMIT 21");
    let pool = &state.pool;
    let mut rows = match (f.client, f.platform, f.after) {
        (None, None, None) => pending_page!(pool, [], agency),
        (None, None, Some(after)) => pending_page!(
            pool,
            [" AND (i.slot_at, i.id) > (SELECT cur.slot_at, cur.id FROM content_items cur WHERE cur.id = $2 AND cur.agency_id = $1)"],
            agency,
            after
        ),
        (client, platform, after) => pending_page!(
            pool,
            [
                " AND ($2::uuid IS NULL OR i.client_id = $2)",
                " AND ($3::text IS NULL OR EXISTS (
                      SELECT 1 FROM content_item_targets t
                      JOIN social_accounts a ON a.id = t.account_id AND a.agency_id = t.agency_id
                      WHERE t.item_id = i.id AND t.agency_id = $1 AND a.platform = $3))",
                " AND ($4::uuid IS NULL OR (i.slot_at, i.id) > (
                      SELECT cur.slot_at, cur.id FROM content_items cur WHERE cur.id = $4 AND cur.agency_id = $1))"
            ],
            agency,
            client,
            platform.map(|p| p.as_str()),
            after
        ),
    };
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok((rows, more))
}

/// Per-item outcomes of a bulk approval.
struct BulkReport {
    rows: Vec<(Uuid, String, Result<usize, String>)>,
}

fn legend() -> Markup {
    html! {
        section.shortcuts aria-labelledby="shortcuts-title" {
            h2 #shortcuts-title { "Keyboard shortcuts" }
            dl.keys {
                dt { kbd { "j" } " / " kbd { "k" } } dd { "next / previous item" }
                dt { kbd { "a" } } dd { "approve the focused item" }
                dt { kbd { "r" } } dd { "reject (opens the reason field)" }
                dt { kbd { "e" } } dd { "edit" }
            }
            p.hint { "Shortcuts are off while you type in a field." }
        }
    }
}

fn filter_form(q: &ReviewQuery, f: &Filters) -> Markup {
    html! {
        form.toolbar method="get" action="/review" role="search" {
            div.grow { (client_filter::field("f-client", &f.resolved, "All clients")) }
            div {
                label for="f-platform" { "Platform" }
                select #f-platform name="platform" {
                    option value="" { "All platforms" }
                    @for p in Platform::ALL {
                        option value=(p.as_str()) selected[q.platform == p.as_str()] { (p.label()) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
    }
}

fn bulk_report(r: &BulkReport) -> Markup {
    let ok = r.rows.iter().filter(|x| x.2.is_ok()).count();
    html! {
        section.bulk-report role="status" aria-labelledby="bulk-title" {
            h2 #bulk-title { "Bulk approval: " (ok) " of " (r.rows.len()) " approved" }
            ul {
                @for (id, label, outcome) in &r.rows {
                    li {
                        a href={ "/items/" (id) } { (label) } ": "
                        @match outcome {
                            Ok(n) => span.ok { "approved, " (n) " post" @if *n != 1 { "s" } " scheduled" },
                            Err(m) => span.refused { "not approved — " (m) },
                        }
                    }
                }
            }
        }
    }
}

async fn body(
    state: &AppState,
    user: &CurrentUser,
    q: &ReviewQuery,
    report: Option<&BulkReport>,
) -> AppResult<Markup> {
    let agency = user.agency_id;
    let (f, q) = filters(state, agency, q).await?;
    let q = &q;
    let (page, more) = page_ids(state, agency, &f).await?;
    let items = items::load_versioned(state, agency, &page).await?;
    let back = q.href(f.after);
    let reviewer = user.role.allows(Role::Reviewer);
    Ok(html! {
        script src=(statics::review_js_path()) defer {}
        h1 { "Review queue" }
        p { "Posts waiting for review across all clients, the earliest first." }
        (legend())
        (filter_form(q, &f))
        (client_filter::outcome(&f.resolved, |id| ReviewQuery { client: id.to_string(), ..q.clone() }.href(None)))
        @if let Some(r) = report { (bulk_report(r)) }
        @if items.is_empty() {
            p.empty { "Nothing is waiting for review." }
        } @else {
            @if reviewer {
                form #bulk.toolbar method="post" action="/review/approve" {
                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                    input type="hidden" name="back" value=(back);
                    button type="submit" { "Approve selected" }
                    span.hint { "Each selected item is approved with its chosen variant." }
                }
            }
            div.review-list {
                @for cached in &items {
                    (items::queue_card(state, user, cached, &back))
                }
            }
            nav.pager aria-label="Pages" {
                @if f.after.is_some() { a href=(q.href(None)) { "First page" } }
                @if more && let Some((last, _, _)) = page.last() {
                    " " a href=(q.href(Some(*last))) { "Next page" }
                }
            }
        }
    })
}

/// `GET /review`.
pub async fn list(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Query(q): Query<ReviewQuery>,
) -> AppResult<Response> {
    let body = body(&state, &user, &q, None).await?;
    Ok(respond(htmx, &user, "Review queue", Nav::Review, body))
}

/// `POST /review/approve`: approve every selected item, each on its own (one refusal does not
/// stop the others), and show what happened to each.
pub async fn bulk_approve(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    RawForm(raw): RawForm,
) -> AppResult<Response> {
    let (ids, back) = parse_bulk(&raw);
    let q: ReviewQuery = back
        .as_deref()
        .and_then(|b| b.strip_prefix("/review?"))
        .map(filters_of)
        .unwrap_or_default();
    if ids.is_empty() {
        let report = BulkReport { rows: Vec::new() };
        let body = html! {
            p.alert role="alert" { "Select at least one item to approve." }
            (body(&state, &user, &q, Some(&report)).await?)
        };
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            respond(htmx, &user, "Review queue", Nav::Review, body),
        )
            .into_response());
    }
    let known = items::load(&state, user.agency_id, &ids).await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(item) = known.iter().find(|i| i.id == id) else {
            rows.push((
                id,
                "Unknown item".to_owned(),
                Err("there is no such item".to_owned()),
            ));
            continue;
        };
        let label = format!(
            "{} · {}",
            item.client_name,
            crate::pages::format_in_zone(item.slot_at, item.tz)
        );
        let outcome = match items::approve_one(&state, &user, id, None).await {
            Ok(r) => r,
            Err(AppError::NotFound) => Err("there is no such item".to_owned()),
            Err(e) => return Err(e),
        };
        rows.push((id, label, outcome));
    }
    let report = BulkReport { rows };
    let body = body(&state, &user, &q, Some(&report)).await?;
    Ok(respond(htmx, &user, "Review queue", Nav::Review, body))
}

/// The selected ids (repeated `item` fields; anything that is not an id is ignored) and `back`.
fn parse_bulk(raw: &Bytes) -> (Vec<Uuid>, Option<String>) {
    let mut ids = Vec::new();
    let mut back = None;
    for (k, v) in url::form_urlencoded::parse(raw) {
        match k.as_ref() {
            "item" => {
                if let Ok(id) = Uuid::from_str(v.trim())
                    && !ids.contains(&id)
                    && ids.len() < BULK_MAX
                {
                    ids.push(id);
                }
            }
            "back" => back = Some(v.into_owned()),
            _ => {}
        }
    }
    (ids, back)
}

/// The filters of a `/review?…` query string (the page a bulk approval came from).
fn filters_of(qs: &str) -> ReviewQuery {
    let mut q = ReviewQuery::default();
    for (k, v) in url::form_urlencoded::parse(qs.as_bytes()) {
        match k.as_ref() {
            "client" => q.client = v.into_owned(),
            "platform" => q.platform = v.into_owned(),
            _ => {}
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_form_reads_repeated_items_once() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let raw = Bytes::from(format!(
            "_csrf=t&item={a}&item={b}&item={a}&item=junk&back=%2Freview%3Fplatform%3Dx"
        ));
        let (ids, back) = parse_bulk(&raw);
        assert_eq!(ids, vec![a, b]);
        assert_eq!(back.as_deref(), Some("/review?platform=x"));
        let q = filters_of("platform=x&client=");
        assert_eq!(q.href(None), "/review?platform=x");
    }
}
