//! The dashboard (`/`): what is due, what waits for review, how publishing went over the last 14
//! days, which accounts need reconnecting, which kill switches are engaged, and whether the fleet
//! keeps up. The figures refresh on live events (SSE); without JavaScript a reload does the same.
//!
//! Days are UTC days, the same for every client of the agency (an agency-wide figure cannot use
//! each client's own midnight and still add up): "today" is the current UTC date, "this week" the
//! current ISO week (Monday 00:00 UTC to the next Monday), and the chart's bars are UTC dates.
//! Due counts are publications not yet gone out (scheduled, held, publishing) whose scheduled
//! time falls in that window; the chart counts publications published on a day (`published_at`)
//! and publications that failed on a day (their last change).
//!
//! Every figure is one range scan of a partial index (migration `console_indexes`), but for an
//! agency with 10,000 clients those ranges hold tens of thousands of rows to count.
//! The figures are therefore counted at most once per [`FIGURES_TTL`] per agency and shared by
//! every request in between ([`crate::cache`]); the page says when they were counted. A live
//! event of the agency (a post or item changed state) or a kill switch changed from this console
//! makes the next request count again, so a page refreshed by a live event is exact.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use maud::{Markup, html};
use uuid::Uuid;

use autosocial_core::domain::{Platform, Role};
use autosocial_core::fleet;

use crate::app::AppState;
use crate::auth::{CurrentUser, Viewer};
use crate::csrf;
use crate::error::AppResult;
use crate::pages::layout::{Htmx, Nav, respond};
use crate::pages::{live, relative};

/// Days in the published/failed chart (today included).
pub const CHART_DAYS: i64 = 14;
/// Accounts needing reconnection listed by name (the count covers all).
const RECONNECT_SHOWN: i64 = 20;
/// Counting the agency's overdue jobs stops here ("1000+").
const DUE_JOBS_CAP: i64 = 1000;
/// How long counted figures are served as they are.
pub const FIGURES_TTL: Duration = Duration::from_secs(5);
/// Past the TTL, figures are still served (while one request's task recounts them) up to this
/// age; older ones are recounted before the page is answered.
pub const FIGURES_STALE_MAX: Duration = Duration::from_secs(15);

/// The per-agency cache of the dashboard's figures.
pub type FiguresCache = crate::cache::TtlCache<Uuid, Figures>;

pub fn figures_cache() -> std::sync::Arc<FiguresCache> {
    std::sync::Arc::new(FiguresCache::new(FIGURES_TTL, FIGURES_STALE_MAX, 10_000))
}

/// The UTC windows the figures count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub today: NaiveDate,
    pub day_start: DateTime<Utc>,
    pub day_end: DateTime<Utc>,
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    pub chart_start: DateTime<Utc>,
}

impl Windows {
    pub fn at(now: DateTime<Utc>) -> Windows {
        let today = now.date_naive();
        let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        let monday = today - TimeDelta::days(i64::from(today.weekday().num_days_from_monday()));
        Windows {
            today,
            day_start: midnight(today),
            day_end: midnight(today + TimeDelta::days(1)),
            week_start: midnight(monday),
            week_end: midnight(monday + TimeDelta::days(7)),
            chart_start: midnight(today - TimeDelta::days(CHART_DAYS - 1)),
        }
    }
}

/// One day of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    pub published: i64,
    pub failed: i64,
}

struct Reconnect {
    client_id: Uuid,
    client_name: String,
    platform: Platform,
    display_name: String,
    status_reason: Option<String>,
    updated_at: DateTime<Utc>,
}

pub struct Figures {
    windows: Windows,
    due_today: i64,
    due_week: i64,
    pending_review: i64,
    chart: Vec<Day>,
    reconnect_total: i64,
    reconnect: Vec<Reconnect>,
    switches: usize,
    workers: Option<usize>,
    lag_secs: Option<f64>,
    due_jobs: i64,
}

/// The agency's figures: the cached ones, or counted now.
async fn figures(state: &AppState, agency: Uuid) -> AppResult<crate::cache::Cached<Figures>> {
    let version = state.live.version(agency);
    let st = state.clone();
    state
        .dashboard
        .get_or_compute(
            agency,
            version,
            move || async move { count(&st, agency).await },
        )
        .await
}

async fn count(state: &AppState, agency: Uuid) -> AppResult<Figures> {
    let now = Utc::now();
    let w = Windows::at(now);
    let due = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE scheduled_at >= $2 AND scheduled_at < $3) AS "today!", count(*) AS "week!"
           FROM publications
           WHERE agency_id = $1 AND state IN ('scheduled', 'held', 'publishing')
             AND scheduled_at >= $4 AND scheduled_at < $5"#,
        agency,
        w.day_start,
        w.day_end,
        w.week_start,
        w.week_end
    )
    .fetch_one(&state.pool)
    .await?;
    let pending_review = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM content_items WHERE agency_id = $1 AND state = 'pending_review'"#,
        agency
    )
    .fetch_one(&state.pool)
    .await?;
    let published = sqlx::query!(
        r#"SELECT (published_at AT TIME ZONE 'UTC')::date AS "day!", count(*) AS "n!"
           FROM publications WHERE agency_id = $1 AND state = 'published' AND published_at >= $2
           GROUP BY 1"#,
        agency,
        w.chart_start
    )
    .fetch_all(&state.pool)
    .await?;
    let failed = sqlx::query!(
        r#"SELECT (updated_at AT TIME ZONE 'UTC')::date AS "day!", count(*) AS "n!"
           FROM publications WHERE agency_id = $1 AND state = 'failed' AND updated_at >= $2
           GROUP BY 1"#,
        agency,
        w.chart_start
    )
    .fetch_all(&state.pool)
    .await?;
    let chart = chart_days(
        w,
        published.iter().map(|r| (r.day, r.n)),
        failed.iter().map(|r| (r.day, r.n)),
    );
    let reconnect_total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM social_accounts WHERE agency_id = $1 AND status = 'needs_reconnect'"#,
        agency
    )
    .fetch_one(&state.pool)
    .await?;
    let reconnect = sqlx::query_as!(
        Reconnect,
        r#"SELECT a.client_id, c.name AS client_name, a.platform AS "platform: Platform", a.display_name,
                  a.status_reason, a.updated_at
           FROM social_accounts a JOIN clients c ON c.id = a.client_id AND c.agency_id = a.agency_id
           WHERE a.agency_id = $1 AND a.status = 'needs_reconnect'
           ORDER BY a.updated_at DESC, a.id LIMIT $2"#,
        agency,
        RECONNECT_SHOWN
    )
    .fetch_all(&state.pool)
    .await?;
    let switches = crate::pages::switches::engaged_for(&state.pool, agency, false)
        .await?
        .len();
    let (lag_secs, due_jobs) = {
        let mut conn = state.pool.acquire().await?;
        autosocial_core::queue::due_for_agency(&mut conn, agency, DUE_JOBS_CAP).await?
    };
    let workers =
        match tokio::time::timeout(Duration::from_secs(2), fleet::live_workers(&state.redis)).await
        {
            Ok(Ok(ws)) => Some(ws.len()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading worker presence failed");
                None
            }
            Err(_) => {
                tracing::warn!("reading worker presence timed out");
                None
            }
        };
    Ok(Figures {
        windows: w,
        due_today: due.today,
        due_week: due.week,
        pending_review,
        chart,
        reconnect_total,
        reconnect,
        switches,
        workers,
        lag_secs,
        due_jobs,
    })
}

/// Every day of the chart window, oldest first, zero where nothing happened.
pub fn chart_days(
    w: Windows,
    published: impl IntoIterator<Item = (NaiveDate, i64)>,
    failed: impl IntoIterator<Item = (NaiveDate, i64)>,
) -> Vec<Day> {
    let mut days: BTreeMap<NaiveDate, Day> = (0..CHART_DAYS)
        .map(|i| w.today - TimeDelta::days(CHART_DAYS - 1 - i))
        .map(|date| {
            (
                date,
                Day {
                    date,
                    published: 0,
                    failed: 0,
                },
            )
        })
        .collect();
    for (d, n) in published {
        if let Some(day) = days.get_mut(&d) {
            day.published += n;
        }
    }
    for (d, n) in failed {
        if let Some(day) = days.get_mut(&d) {
            day.failed += n;
        }
    }
    days.into_values().collect()
}

/// Published and failed per day as SVG bars: no script, a title and description for assistive
/// technology, a title per bar for pointer users, and the same numbers in a table below.
pub fn chart(days: &[Day]) -> Markup {
    const BAR: i64 = 14;
    const GAP: i64 = 4;
    const GROUP: i64 = 2 * BAR + GAP + 12;
    const HEIGHT: i64 = 120;
    const TOP: i64 = 10;
    const LABELS: i64 = 30;
    let max = days
        .iter()
        .map(|d| d.published.max(d.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let h = |n: i64| n * HEIGHT / max;
    let width = GROUP * days.len() as i64;
    let total_published: i64 = days.iter().map(|d| d.published).sum();
    let total_failed: i64 = days.iter().map(|d| d.failed).sum();
    html! {
        figure.chart {
            svg role="img" aria-labelledby="chart-title chart-desc" width=(width) height=(HEIGHT + TOP + LABELS)
                viewBox={ "0 0 " (width) " " (HEIGHT + TOP + LABELS) } xmlns="http://www.w3.org/2000/svg" {
                title #chart-title { "Published and failed posts per day, last " (CHART_DAYS) " days (UTC)" }
                desc #chart-desc { (total_published) " published and " (total_failed) " failed in total; the table below has each day." }
                line.axis x1="0" x2=(width) y1=(TOP + HEIGHT) y2=(TOP + HEIGHT) {}
                @for (i, d) in days.iter().enumerate() {
                    @let x = i as i64 * GROUP + 6;
                    rect.published x=(x) y=(TOP + HEIGHT - h(d.published)) width=(BAR) height=(h(d.published)) {
                        title { (d.date.format("%a %d %b")) ": " (d.published) " published" }
                    }
                    rect.failed x=(x + BAR + GAP) y=(TOP + HEIGHT - h(d.failed)) width=(BAR) height=(h(d.failed)) {
                        title { (d.date.format("%a %d %b")) ": " (d.failed) " failed" }
                    }
                    text x=(x + BAR) y=(TOP + HEIGHT + 14) text-anchor="middle" { (d.date.format("%d")) }
                    text.weekday x=(x + BAR) y=(TOP + HEIGHT + 27) text-anchor="middle" { (d.date.format("%a")) }
                }
            }
            figcaption {
                span.key.published { "Published" } " " span.key.failed { "Failed" }
            }
        }
        details.chart-data {
            summary { "The chart's numbers as a table" }
            table {
                caption.visually-hidden { "Published and failed posts per UTC day" }
                thead { tr { th scope="col" { "Day (UTC)" } th scope="col" { "Published" } th scope="col" { "Failed" } } }
                tbody {
                    @for d in days {
                        tr { th scope="row" { (d.date.format("%a %Y-%m-%d")) } td { (d.published) } td { (d.failed) } }
                    }
                }
            }
        }
    }
}

fn seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

fn figures_markup(user: &CurrentUser, figures: &crate::cache::Cached<Figures>) -> Markup {
    let f = &*figures.value;
    let now = Utc::now();
    let can_manage = user.role.allows(Role::Admin);
    let w = f.windows;
    html! {
        div.tiles {
            a.tile href={ "/calendar?view=week&date=" (w.today) } {
                span.figure data-figure="due-today" { (f.due_today) }
                span.label { "posts due today (UTC " (w.today.format("%a %d %b")) ")" }
            }
            a.tile href={ "/calendar?view=week&date=" (w.today) } {
                span.figure data-figure="due-week" { (f.due_week) }
                span.label { "posts due this week (UTC, Mon–Sun)" }
            }
            a.tile href="/review" {
                span.figure data-figure="pending-review" { (f.pending_review) }
                span.label { "waiting for review" }
            }
            a.tile href="/switches" {
                span.figure data-figure="switches" { (f.switches) }
                span.label { @if f.switches == 1 { "kill switch engaged" } @else { "kill switches engaged" } }
            }
        }
        h2 { "Publishing, last " (CHART_DAYS) " days" }
        (chart(&f.chart))
        h2 { "Accounts needing reconnection" }
        @if f.reconnect_total == 0 {
            p.empty { "Every connected account works." }
        } @else {
            p { span data-figure="reconnect" { (f.reconnect_total) } " account(s) no longer accepted by their platform. Their posts are held until they are reconnected." }
            table {
                thead { tr { th scope="col" { "Client" } th scope="col" { "Account" } th scope="col" { "Why" } th scope="col" { "Since" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for a in &f.reconnect {
                        tr {
                            td { a href={ "/clients/" (a.client_id) "/accounts" } { (a.client_name) } }
                            td { (a.platform.label()) " · " (a.display_name) }
                            td { (a.status_reason.as_deref().unwrap_or("—")) }
                            td { (relative(a.updated_at, now)) }
                            td {
                                @if can_manage {
                                    form method="post" action={ "/clients/" (a.client_id) "/onboarding" } {
                                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                        button.secondary type="submit" { "Fresh onboarding link" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Fleet" }
        dl.facts {
            dt { "Workers alive" }
            dd { @match f.workers { Some(n) => { span data-figure="workers" { (n) } }, None => "unknown (Redis did not answer)" } }
            dt { "Your jobs due now" }
            dd { @if f.due_jobs > DUE_JOBS_CAP { (DUE_JOBS_CAP) "+" } @else { (f.due_jobs) } }
            dt { "Queue lag" }
            dd { @match f.lag_secs { Some(s) => { (seconds(s)) " (oldest due job waiting)" }, None => "none: nothing is waiting" } }
        }
        p { a href="/fleet" { "Fleet details" } }
        p.hint {
            "Figures as of " time datetime=(crate::pages::html_datetime(&figures.at)) { (figures.at.format("%H:%M:%S")) " UTC" }
            " (counted at most every " (FIGURES_TTL.as_secs()) " s; live changes recount them)."
        }
    }
}

/// `GET /`: the dashboard.
pub async fn show(State(state): State<AppState>, user: Viewer, htmx: Htmx) -> AppResult<Response> {
    let f = figures(&state, user.agency_id).await?;
    let body = html! {
        h1 { "Dashboard" }
        (live::connector(None))
        div #dashboard-live data-hx-get="/dashboard/live" data-hx-trigger=(live::TRIGGER) data-hx-swap="innerHTML" aria-live="polite" {
            (figures_markup(&user, &f))
        }
    };
    Ok(respond(htmx, &user, "Dashboard", Nav::Dashboard, body))
}

/// `GET /dashboard/live`: the figures alone, re-fetched on live events.
pub async fn live_figures(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
) -> AppResult<Response> {
    let f = figures(&state, user.agency_id).await?;
    Ok(respond(
        htmx,
        &user,
        "Dashboard",
        Nav::Dashboard,
        figures_markup(&user, &f),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_are_utc_days_and_the_iso_week() {
        // a Wednesday, late evening UTC
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 23, 30, 0).unwrap();
        let w = Windows::at(now);
        assert_eq!(
            w.day_start,
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
        );
        assert_eq!(
            w.day_end,
            Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()
        );
        assert_eq!(
            w.week_start,
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
        );
        assert_eq!(
            w.week_end,
            Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap()
        );
        assert_eq!(
            w.chart_start,
            Utc.with_ymd_and_hms(2026, 11, 12, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn the_chart_has_every_day_and_a_text_alternative() {
        let w = Windows::at(Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap());
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days = chart_days(
            w,
            [
                (d("2026-11-25"), 3),
                (d("2026-11-12"), 1),
                (d("2026-11-01"), 9),
            ],
            [(d("2026-11-24"), 2)],
        );
        assert_eq!(days.len(), CHART_DAYS as usize);
        assert_eq!(days[0].date, d("2026-11-12"));
        assert_eq!(days[0].published, 1);
        assert_eq!(days[13].published, 3);
        assert_eq!(days[12].failed, 2);
        // the day outside the window is not counted anywhere
        assert_eq!(days.iter().map(|d| d.published).sum::<i64>(), 4);
        let svg = chart(&days).into_string();
        assert!(svg.contains("<title id=\"chart-title\">"));
        assert!(svg.contains("Wed 25 Nov: 3 published"));
        assert!(svg.contains("<table>"));
        assert!(!svg.contains("style="));
    }
}
