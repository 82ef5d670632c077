//! The calendar: month and week views of the agency's publications (scheduled, held, publishing,
//! published, failed; cancelled ones are left out), grouped by content item, agency-wide
//! (`/calendar`, optionally filtered by client) or for one client (`/clients/{id}/calendar`).
//!
//! Zone: filtered by a client, days and times are the client's (its posting schedule lives
//! there); agency-wide, they are UTC. Either way the zone is named on the page. Days are local
//! calendar days, so a day across a DST change is 23 or 25 hours long.
//!
//! Rescheduling without drag and drop: each movable entry has a small form (a local date and
//! time). An approved item moves as a whole; a failed or needs-attention publication is put
//! back on schedule alone. Which posts may move, and to when, is `items`' rule
//! (`items::reschedule`, `items::publications::reschedule`); its refusals are shown as they are.
//! Reviewers and up.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{
    DateTime, Datelike, LocalResult, Months, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::domain::{ItemState, Platform, PublicationState, Role};
use autosocial_core::items::{self, Failure, ItemMove, PublicationMove};

use crate::app::AppState;
use crate::auth::{CurrentUser, Reviewer, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path, Query};
use crate::pages::client_filter;
use crate::pages::layout::{Htmx, Nav, respond};

mod reschedule;
pub use reschedule::*;

/// Publications shown at most in one month or week view (a client's own calendar is complete
/// far below this; it only guards against a runaway).
const MAX_SHOWN: i64 = 3000;
/// Agency-wide, a month or week with more publications than this shows per-day counts, each
/// day opening its own list: a large agency has thousands of posts a day.
pub const DETAIL_MAX: i64 = 400;
/// Publications per page of a day's list.
pub const DAY_PAGE: i64 = 100;
/// How long the agency-wide per-day counts are served as counted, and served stale (while
/// recounted) at most. A busy agency's month is ~100,000 publications to count; an overview of
/// thousands of posts a day is as useful half a minute old (the page says when it was counted),
/// and each day's own list is always read live.
pub const COUNTS_TTL: Duration = Duration::from_secs(30);
const COUNTS_STALE_MAX: Duration = Duration::from_secs(60);

/// Per-day counts of an agency-wide range: key (agency, first instant, end).
pub type CountsCache =
    crate::cache::TtlCache<(Uuid, DateTime<Utc>, DateTime<Utc>), BTreeMap<NaiveDate, DayCounts>>;

pub fn counts_cache() -> std::sync::Arc<CountsCache> {
    std::sync::Arc::new(CountsCache::new(COUNTS_TTL, COUNTS_STALE_MAX, 1000))
}

/// One day's publications by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub total: i64,
    pub by_state: Vec<(PublicationState, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Month,
    Week,
    Day,
}

impl View {
    fn as_str(self) -> &'static str {
        match self {
            View::Month => "month",
            View::Week => "week",
            View::Day => "day",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct CalendarQuery {
    #[serde(default)]
    view: String,
    /// Any day of the month or week shown (local), `YYYY-MM-DD`.
    #[serde(default)]
    date: String,
    /// Agency-wide calendar filtered by a client's id (empty: all clients).
    #[serde(default)]
    client: String,
    /// The client's name as typed in the filter form (wins over `client`).
    #[serde(default)]
    client_name: Option<String>,
    /// A day's list: publications after this one.
    #[serde(default)]
    after: String,
}

impl CalendarQuery {
    /// Check what the address asks for before anything is read: a known view, a date inside the
    /// console's window (empty: today) and a well-formed cursor. Refused with a 400 that says
    /// which parameter and why; a date like `-262143-01-01` would otherwise overflow the
    /// month's arithmetic.
    fn checked(&self, today: NaiveDate) -> AppResult<(View, NaiveDate, Option<Uuid>)> {
        let view = match self.view.trim() {
            "" | "month" => View::Month,
            "week" => View::Week,
            "day" => View::Day,
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(AppError::BadRequest(format!(
                    "The calendar has no view “{shown}”: choose month, week or day."
                )));
            }
        };
        let anchor = crate::pages::parse_day(&self.date)
            .map_err(|m| AppError::BadRequest(format!("The calendar’s date: {m}")))?
            .unwrap_or(today);
        let after = match self.after.trim() {
            "" => None,
            a => Some(Uuid::from_str(a).map_err(|_| {
                AppError::BadRequest(
                    "The calendar’s “after” is not a post’s id; open the day again from the calendar."
                        .into(),
                )
            })?),
        };
        Ok((view, anchor, after))
    }
}

/// The first instant of a local day: local midnight, or the first hour that exists when the
/// clocks skip midnight.
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    for hour in 0..4 {
        if let Some(t) = tz
            .from_local_datetime(&date.and_hms_opt(hour, 0, 0).expect("valid hour"))
            .earliest()
        {
            return t.with_timezone(&Utc);
        }
    }
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// The local days a view shows: whole weeks, Monday first.
pub fn grid(view: View, anchor: NaiveDate) -> Vec<[NaiveDate; 7]> {
    let monday = |d: NaiveDate| d - TimeDelta::days(i64::from(d.weekday().num_days_from_monday()));
    let (start, weeks) = match view {
        View::Week | View::Day => (monday(anchor), 1),
        View::Month => {
            let first = anchor.with_day(1).expect("day 1 exists");
            let last = first + Months::new(1) - TimeDelta::days(1);
            let start = monday(first);
            let weeks = ((last - start).num_days() / 7 + 1) as usize;
            (start, weeks)
        }
    };
    (0..weeks)
        .map(|w| std::array::from_fn(|d| start + TimeDelta::days((w * 7 + d) as i64)))
        .collect()
}

/// The first and last local day a view covers.
fn span(view: View, anchor: NaiveDate) -> (NaiveDate, NaiveDate) {
    match view {
        View::Day => (anchor, anchor),
        _ => {
            let weeks = grid(view, anchor);
            (weeks[0][0], weeks[weeks.len() - 1][6])
        }
    }
}

/// Where prev/next go from `anchor`.
fn step(view: View, anchor: NaiveDate, forward: bool) -> NaiveDate {
    match (view, forward) {
        (View::Week, true) => anchor + TimeDelta::days(7),
        (View::Week, false) => anchor - TimeDelta::days(7),
        (View::Month, true) => anchor.with_day(1).expect("day 1") + Months::new(1),
        (View::Month, false) => anchor.with_day(1).expect("day 1") - Months::new(1),
        (View::Day, true) => anchor + TimeDelta::days(1),
        (View::Day, false) => anchor - TimeDelta::days(1),
    }
}

/// A local date-time from a `datetime-local` field, as an instant in `tz`. Ambiguous times (the
/// hour the clocks go back) mean the first occurrence.
pub fn parse_local(value: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            if value.is_empty() {
                "Enter the new date and time.".to_owned()
            } else {
                let shown: String = value.chars().take(40).collect();
                format!("“{shown}” is not a date and time like 2026-11-24T09:30.")
            }
        })?;
    if !crate::pages::in_date_window(naive.date()) {
        return Err(crate::pages::outside_window(
            &value.chars().take(40).collect::<String>(),
        ));
    }
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(format!(
            "{} does not exist in {} (the clocks go forward then); choose another time.",
            naive.format("%Y-%m-%d %H:%M"),
            tz.name()
        )),
    }
}

/// Whose calendar: the agency's (maybe filtered) or one client's page.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Agency(Option<Uuid>),
    Client(Uuid),
}

impl Scope {
    fn client(self) -> Option<Uuid> {
        match self {
            Scope::Agency(c) => c,
            Scope::Client(c) => Some(c),
        }
    }

    fn base(self) -> String {
        match self {
            Scope::Agency(_) => "/calendar".into(),
            Scope::Client(c) => format!("/clients/{c}/calendar"),
        }
    }

    fn url(self, view: View, date: NaiveDate) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("view", view.as_str())
            .append_pair("date", &date.to_string());
        if let Scope::Agency(Some(c)) = self {
            q.append_pair("client", &c.to_string());
        }
        format!("{}?{}", self.base(), q.finish())
    }
}

/// A form that was refused: shown again with its value and message next to its field.
struct Refusal {
    target: Uuid,
    value: String,
    message: String,
}

struct Pub {
    id: Uuid,
    item_id: Uuid,
    client_name: String,
    platform: Platform,
    state: PublicationState,
    scheduled_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    item_state: ItemState,
    snippet: String,
}

/// One item on one day, with its publications.
struct CalEntry {
    item_id: Uuid,
    client_name: String,
    at: DateTime<Utc>,
    item_state: ItemState,
    snippet: String,
    pubs: Vec<Pub>,
}

fn state_label(s: PublicationState) -> &'static str {
    match s {
        PublicationState::Scheduled => "scheduled",
        PublicationState::Held => "held",
        PublicationState::Publishing => "publishing",
        PublicationState::Published => "published",
        PublicationState::Failed => "failed",
        PublicationState::Cancelled => "cancelled",
        PublicationState::NeedsAttention => "needs attention",
    }
}

async fn client_zone(state: &AppState, agency: Uuid, client: Uuid) -> AppResult<(String, Tz)> {
    let row = sqlx::query!(
        "SELECT name, timezone FROM clients WHERE id = $1 AND agency_id = $2",
        client,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok((
        row.name,
        Tz::from_str(&row.timezone).unwrap_or(chrono_tz::UTC),
    ))
}

/// How many of the range's publications there are, counted up to `cap + 1` (cheap: it stops).
async fn probe(
    state: &AppState,
    agency: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cap: i64,
) -> AppResult<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM (
               SELECT 1 FROM publications
               WHERE agency_id = $1 AND scheduled_at >= $2 AND scheduled_at < $3 AND state <> 'cancelled'
               LIMIT $4) x"#,
        agency,
        from,
        to,
        cap + 1
    )
    .fetch_one(&state.pool)
    .await?)
}

/// The agency's publications per UTC day and state in [from, to) (cached for [`COUNTS_TTL`]).
async fn day_counts(
    state: &AppState,
    agency: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<crate::cache::Cached<BTreeMap<NaiveDate, DayCounts>>> {
    let pool = state.pool.clone();
    state
        .calendar_counts
        .get_or_compute((agency, from, to), 0, move || async move {
            let rows = sqlx::query!(
                r#"SELECT (scheduled_at AT TIME ZONE 'UTC')::date AS "day!", state AS "state: PublicationState",
                          count(*) AS "n!"
                   FROM publications
                   WHERE agency_id = $1 AND scheduled_at >= $2 AND scheduled_at < $3 AND state <> 'cancelled'
                   GROUP BY 1, 2"#,
                agency,
                from,
                to
            )
            .fetch_all(&pool)
            .await?;
            let mut days: BTreeMap<NaiveDate, DayCounts> = BTreeMap::new();
            for r in rows {
                let d = days.entry(r.day).or_default();
                d.total += r.n;
                d.by_state.push((r.state, r.n));
            }
            for d in days.values_mut() {
                d.by_state.sort_by_key(|(s, _)| state_order(*s));
            }
            Ok::<_, AppError>(days)
        })
        .await
}

fn state_order(s: PublicationState) -> u8 {
    match s {
        PublicationState::Scheduled => 0,
        PublicationState::Held => 1,
        PublicationState::Publishing => 2,
        PublicationState::Published => 3,
        PublicationState::Failed => 4,
        PublicationState::NeedsAttention => 5,
        PublicationState::Cancelled => 6,
    }
}

/// "12,345"
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// What a month or week shows in its cells.
enum Cells {
    /// Every post (a client's calendar, or a quiet agency).
    Entries(BTreeMap<NaiveDate, Vec<CalEntry>>),
    /// Per-day counts (a busy agency, all clients).
    Counts(crate::cache::Cached<BTreeMap<NaiveDate, DayCounts>>),
}

/// The publications of a scope in [from, to), as entries per local day; at most `limit` rows,
/// after the publication `after` (a day's next page). Returns the entries, whether more
/// followed, and the last publication's id (the next page's cursor).
#[allow(clippy::too_many_arguments)]
async fn entries(
    state: &AppState,
    agency: Uuid,
    client: Option<Uuid>,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<(BTreeMap<NaiveDate, Vec<CalEntry>>, bool, Option<Uuid>)> {
    let rows = sqlx::query_as!(
        Pub,
        r#"SELECT p.id, p.item_id, c.name AS client_name, p.platform AS "platform: Platform",
                  p.state AS "state: PublicationState", p.scheduled_at, p.published_at,
                  i.state AS "item_state: ItemState", left(i.caption, 90) AS "snippet!"
           FROM publications p
           JOIN content_items i ON i.id = p.item_id AND i.agency_id = p.agency_id
           JOIN clients c ON c.id = p.client_id AND c.agency_id = p.agency_id
           WHERE p.agency_id = $1 AND ($2::uuid IS NULL OR p.client_id = $2)
             AND p.scheduled_at >= $3 AND p.scheduled_at < $4 AND p.state <> 'cancelled'
             AND ($6::uuid IS NULL OR (p.scheduled_at, p.item_id, p.platform, p.id) > (
                 SELECT a.scheduled_at, a.item_id, a.platform, a.id FROM publications a
                 WHERE a.id = $6 AND a.agency_id = $1))
           ORDER BY p.scheduled_at, p.item_id, p.platform, p.id
           LIMIT $5"#,
        agency,
        client,
        from,
        to,
        limit + 1,
        after
    )
    .fetch_all(&state.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let mut last = None;
    let mut days: BTreeMap<NaiveDate, Vec<CalEntry>> = BTreeMap::new();
    for p in rows.into_iter().take(limit as usize) {
        last = Some(p.id);
        let day = p.scheduled_at.with_timezone(&tz).date_naive();
        let entries = days.entry(day).or_default();
        match entries.iter_mut().find(|e| e.item_id == p.item_id) {
            Some(e) => e.pubs.push(p),
            None => entries.push(CalEntry {
                item_id: p.item_id,
                client_name: p.client_name.clone(),
                at: p.scheduled_at,
                item_state: p.item_state,
                snippet: p.snippet.clone(),
                pubs: vec![p],
            }),
        }
    }
    Ok((days, more, last))
}

async fn render(
    state: &AppState,
    user: &CurrentUser,
    scope: Scope,
    q: &CalendarQuery,
    refusal: Option<&Refusal>,
) -> AppResult<(String, Markup)> {
    // agency-wide, the client filter comes from the query (an id from links, or a typed name)
    let (scope, filter) = match scope {
        Scope::Agency(_) => {
            let r =
                client_filter::resolve(state, user.agency_id, &q.client, q.client_name.as_deref())
                    .await?;
            (Scope::Agency(r.client()), Some(r))
        }
        Scope::Client(c) => (Scope::Client(c), None),
    };
    let (client_name, tz) = match scope.client() {
        Some(c) => {
            let (n, tz) = client_zone(state, user.agency_id, c).await?;
            (Some(n), tz)
        }
        None => (None, chrono_tz::UTC),
    };
    let now = Utc::now();
    let today = now.with_timezone(&tz).date_naive();
    let (view, anchor, after) = q.checked(today)?;
    let (first, last) = span(view, anchor);
    let from = local_midnight(tz, first);
    let to = local_midnight(tz, last + TimeDelta::days(1));

    // a day: its list, a page at a time; a month or week: every post, or (a busy agency, all
    // clients) the counts per day
    let mut truncated = false;
    let mut day_more: Option<Uuid> = None;
    let cells = if view == View::Day {
        let (days, more, last_id) = entries(
            state,
            user.agency_id,
            scope.client(),
            tz,
            from,
            to,
            after,
            DAY_PAGE,
        )
        .await?;
        day_more = if more { last_id } else { None };
        Cells::Entries(days)
    } else if scope.client().is_none()
        && probe(state, user.agency_id, from, to, DETAIL_MAX).await? > DETAIL_MAX
    {
        Cells::Counts(day_counts(state, user.agency_id, from, to).await?)
    } else {
        let (days, more, _) = entries(
            state,
            user.agency_id,
            scope.client(),
            tz,
            from,
            to,
            None,
            MAX_SHOWN,
        )
        .await?;
        truncated = more;
        Cells::Entries(days)
    };
    let empty = match &cells {
        Cells::Entries(d) => d.is_empty(),
        Cells::Counts(c) => c.value.is_empty(),
    };

    let can_move = user.role.allows(Role::Reviewer);
    let zone_name = format!(
        "{} ({})",
        tz.name(),
        now.with_timezone(&tz).format("%Z, UTC%:z")
    );
    let heading = match view {
        View::Month => anchor.format("%B %Y").to_string(),
        View::Week => format!(
            "Week {} · {} – {}",
            first.iso_week().week(),
            first.format("%d %b"),
            last.format("%d %b %Y")
        ),
        View::Day => anchor.format("%A %d %B %Y").to_string(),
    };
    let title = match &client_name {
        Some(n) => format!("Calendar · {n}"),
        None => "Calendar".to_owned(),
    };
    let ctx = FormContext {
        user,
        scope,
        view,
        anchor,
        tz,
        refusal,
    };
    let (prev_label, next_label) = match view {
        View::Month => ("← Previous month", "Next month →"),
        View::Week => ("← Previous week", "Next week →"),
        View::Day => ("← Previous day", "Next day →"),
    };
    let body = html! {
        @if let Scope::Client(c) = scope {
            (crate::pages::client_tabs::nav(c, crate::pages::client_tabs::Tab::Calendar))
        }
        h1 { (title) }
        p.hint { "Times in " strong { (zone_name) } "." @if client_name.is_none() { " Filter by a client to see its own timezone." } }
        @if let Some(filter) = &filter {
            form.toolbar method="get" action="/calendar" role="search" {
                input type="hidden" name="view" value=(view.as_str());
                input type="hidden" name="date" value=(anchor.to_string());
                div.grow { (client_filter::field("client", filter, "All clients (UTC)")) }
                button.secondary type="submit" { "Show" }
            }
            (client_filter::outcome(filter, |id| Scope::Agency(Some(id)).url(view, anchor)))
        }
        nav.calendar-nav aria-label="Calendar navigation" {
            a.button.secondary rel="prev" href=(scope.url(view, step(view, anchor, false))) { (prev_label) }
            a.button.secondary href=(scope.url(view, today)) { "Today" }
            a.button.secondary rel="next" href=(scope.url(view, step(view, anchor, true))) { (next_label) }
            span.views {
                a href=(scope.url(View::Month, anchor)) aria-current=[(view == View::Month).then_some("page")] { "Month" }
                " · "
                a href=(scope.url(View::Week, anchor)) aria-current=[(view == View::Week).then_some("page")] { "Week" }
                " · "
                a href=(scope.url(View::Day, anchor)) aria-current=[(view == View::Day).then_some("page")] { "Day" }
            }
        }
        @if let Some(r) = refusal {
            p.alert role="alert" { "Nothing was changed: " (r.message) }
        }
        @if truncated {
            p.alert role="status" { "Only the first " (MAX_SHOWN) " posts are shown. Open a day to see all of its posts." }
        }
        @if let Cells::Counts(c) = &cells {
            p.hint {
                "More than " (DETAIL_MAX) " posts in this period: each day shows how many, open a day for its posts or filter by a client. "
                "Counts as of " time datetime=(crate::pages::html_datetime(&c.at)) { (c.at.format("%H:%M:%S")) " UTC" } "."
            }
        }
        @match view {
            View::Day => {
                section.day-list aria-labelledby="day-heading" {
                    h2 #day-heading { (heading) @if anchor == today { " (today)" } }
                    @if let Cells::Entries(days) = &cells {
                        @if let Some(entries) = days.get(&anchor) {
                            ul.entries {
                                @for e in entries { (entry(&ctx, e, can_move, client_name.is_none())) }
                            }
                        }
                    }
                    @if after.is_some() || day_more.is_some() {
                        nav.pager aria-label="Pages of this day" {
                            @if after.is_some() { a href=(scope.url(view, anchor)) { "First posts of the day" } }
                            @if let Some(last) = day_more {
                                " " a rel="next" href={ (scope.url(view, anchor)) "&after=" (last) } { "Later posts" }
                            }
                        }
                    }
                }
            }
            _ => {
                table class={ "calendar " (view.as_str()) } {
                    caption { (heading) }
                    thead { tr { @for d in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] { th scope="col" { (d) } } } }
                    tbody {
                        @for week in &grid(view, anchor) {
                            tr {
                                @for day in week {
                                    @let outside = view == View::Month && day.month() != anchor.month();
                                    td class={ @if *day == today { "today " } @if outside { "outside" } }
                                        aria-current=[(*day == today).then_some("date")] {
                                        div.day-number {
                                            a href=(scope.url(View::Day, *day)) {
                                                time datetime=(day.to_string()) {
                                                    @match view { View::Week => (day.format("%a %d %b")), _ => (day.day()) }
                                                }
                                                span.visually-hidden { " " (day.format("%B")) ": the day's posts" }
                                            }
                                            @if *day == today { span.visually-hidden { " (today)" } }
                                        }
                                        @match &cells {
                                            Cells::Entries(days) => {
                                                @if let Some(entries) = days.get(day) {
                                                    ul.entries {
                                                        @for e in entries { (entry(&ctx, e, can_move, client_name.is_none())) }
                                                    }
                                                }
                                            }
                                            Cells::Counts(c) => {
                                                @if let Some(n) = c.value.get(day) { (day_count(scope, *day, n)) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if empty {
            p.empty { "Nothing scheduled or published in this period." }
        }
    };
    Ok((title, body))
}

/// A day's counts in a busy agency's month or week: the total (a link to the day) and by state.
fn day_count(scope: Scope, day: NaiveDate, n: &DayCounts) -> Markup {
    html! {
        div.day-count {
            a href=(scope.url(View::Day, day)) { strong { (thousands(n.total)) } " post" @if n.total != 1 { "s" } }
            ul.pubs {
                @for (s, count) in &n.by_state {
                    li class={ "pub " (s.as_str()) } { (thousands(*count)) " " (state_label(*s)) }
                }
            }
        }
    }
}

/// What every reschedule form carries to come back to the same view.
struct FormContext<'a> {
    user: &'a CurrentUser,
    scope: Scope,
    view: View,
    anchor: NaiveDate,
    tz: Tz,
    refusal: Option<&'a Refusal>,
}

fn entry(ctx: &FormContext<'_>, e: &CalEntry, can_move: bool, show_client: bool) -> Markup {
    let tz = ctx.tz;
    let movable_item = ItemMove::Reschedule.allows(e.item_state)
        && e.pubs.iter().any(|p| {
            matches!(
                p.state,
                PublicationState::Scheduled | PublicationState::Held
            )
        });
    let retryable: Vec<&Pub> = e
        .pubs
        .iter()
        .filter(|p| PublicationMove::Reschedule.allows(p.state))
        .collect();
    let open = ctx
        .refusal
        .is_some_and(|r| r.target == e.item_id || retryable.iter().any(|p| p.id == r.target));
    html! {
        li.entry {
            a href={ "/items/" (e.item_id) } {
                time datetime=(crate::pages::html_datetime(&e.at)) { (e.at.with_timezone(&tz).format("%H:%M")) }
                " "
                @if show_client { strong { (e.client_name) } " · " }
                @if e.snippet.is_empty() { "(no caption yet)" } @else { (e.snippet) }
            }
            ul.pubs {
                @for p in &e.pubs {
                    li class={ "pub " (p.state.as_str()) } {
                        (p.platform.label()) ": " (state_label(p.state))
                        @if p.scheduled_at != e.at { " at " (p.scheduled_at.with_timezone(&tz).format("%H:%M")) }
                        @if let Some(t) = p.published_at { " (" (t.with_timezone(&tz).format("%H:%M")) ")" }
                    }
                }
            }
            @if can_move && (movable_item || !retryable.is_empty()) {
                details.reschedule open[open] {
                    summary { "Reschedule" span.visually-hidden { " " (e.snippet) } }
                    @if movable_item {
                        (reschedule_form(ctx, &format!("/calendar/items/{}/reschedule", e.item_id), e.item_id, e.at, "Move the post (every platform) to"))
                    }
                    @for p in &retryable {
                        (reschedule_form(ctx, &format!("/calendar/publications/{}/reschedule", p.id), p.id, p.scheduled_at,
                            &format!("Try {} again at", p.platform.label())))
                    }
                }
            }
        }
    }
}

fn reschedule_form(
    ctx: &FormContext<'_>,
    action: &str,
    target: Uuid,
    current: DateTime<Utc>,
    label: &str,
) -> Markup {
    let refused = ctx.refusal.filter(|r| r.target == target);
    let value = match refused {
        Some(r) => r.value.clone(),
        None => current
            .with_timezone(&ctx.tz)
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
    };
    let field = format!("at-{target}");
    html! {
        form method="post" action=(action) {
            input type="hidden" name=(csrf::FIELD) value=(ctx.user.csrf_token);
            input type="hidden" name="view" value=(ctx.view.as_str());
            input type="hidden" name="date" value=(ctx.anchor.to_string());
            @match ctx.scope {
                Scope::Agency(Some(c)) => { input type="hidden" name="client" value=(c); }
                Scope::Client(c) => { input type="hidden" name="client" value=(c); input type="hidden" name="scope" value="client"; }
                Scope::Agency(None) => {}
            }
            label for=(field) { (label) " (" (ctx.tz.name()) ")" }
            input id=(field) type="datetime-local" name="at" value=(value) required
                aria-invalid=[refused.map(|_| "true")] aria-describedby=[refused.map(|_| format!("{field}-error"))];
            @if let Some(r) = refused {
                p.field-error id={ (field) "-error" } { (r.message) }
            }
            button type="submit" { "Reschedule" }
        }
    }
}

fn parse_client(s: &str) -> AppResult<Option<Uuid>> {
    match s.trim() {
        "" => Ok(None),
        s => Uuid::from_str(s).map(Some).map_err(|_| AppError::NotFound),
    }
}

/// `GET /calendar`
pub async fn agency(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Query(q): Query<CalendarQuery>,
) -> AppResult<Response> {
    let scope = Scope::Agency(parse_client(&q.client)?);
    let (title, body) = render(&state, &user, scope, &q, None).await?;
    Ok(respond(htmx, &user, &title, Nav::Calendar, body))
}

/// `GET /clients/{id}/calendar`
pub async fn client(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Query(q): Query<CalendarQuery>,
) -> AppResult<Response> {
    let (title, body) = render(&state, &user, Scope::Client(id), &q, None).await?;
    Ok(respond(htmx, &user, &title, Nav::Clients, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn counts_have_thousands_separators_and_days_step_by_one() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(step(View::Day, d("2026-03-31"), true), d("2026-04-01"));
        assert_eq!(
            span(View::Day, d("2026-03-31")),
            (d("2026-03-31"), d("2026-03-31"))
        );
    }

    #[test]
    fn a_month_is_whole_weeks_from_monday() {
        let g = grid(View::Month, d("2026-03-18"));
        assert_eq!(g[0][0], d("2026-02-23"));
        assert_eq!(g.last().unwrap()[6], d("2026-04-05"));
        assert_eq!(g.len(), 6);
        let w = grid(View::Week, d("2026-03-29"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0][0], d("2026-03-23"));
        assert_eq!(w[0][6], d("2026-03-29"));
        assert_eq!(step(View::Month, d("2026-01-31"), true), d("2026-02-01"));
        assert_eq!(step(View::Week, d("2026-03-29"), false), d("2026-03-22"));
    }

    #[test]
    fn local_times_respect_dst() {
        let berlin = chrono_tz::Europe::Berlin;
        // the day the clocks go forward is 23 hours long
        let a = local_midnight(berlin, d("2026-03-29"));
        let b = local_midnight(berlin, d("2026-03-30"));
        assert_eq!((b - a).num_hours(), 23);
        assert_eq!(
            parse_local("2026-03-29T03:30", berlin).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap()
        );
        let gap = parse_local("2026-03-29T02:30", berlin).unwrap_err();
        assert!(gap.contains("does not exist in Europe/Berlin"), "{gap}");
        // the hour the clocks go back: the first occurrence
        assert_eq!(
            parse_local("2026-10-25T02:30", berlin).unwrap(),
            Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()
        );
        assert!(
            parse_local("tomorrow", berlin)
                .unwrap_err()
                .contains("tomorrow")
        );
        // a zone whose clocks skip midnight itself
        let havana = chrono_tz::America::Havana;
        let t = local_midnight(havana, d("2026-03-08"));
        assert_eq!(t.with_timezone(&havana).date_naive(), d("2026-03-08"));
    }
}
