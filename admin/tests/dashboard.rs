//! The dashboard's figures from seeded data, its roles and tenant isolation, and live updates
//! over SSE (a state change reaches the same agency's stream and no other's).

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeDelta, Utc};
use common::{Browser, agency_id, client, state, user};
use futures::StreamExt;
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

use autosocial_admin::pages::dashboard::{CHART_DAYS, Windows};
use autosocial_core::domain::{AccountStatus, PublicationState, Role};
use autosocial_core::testing::build;

async fn account(pool: &PgPool, agency: Uuid, client: Uuid, status: &str) -> Uuid {
    let status: AccountStatus = status.parse().unwrap();
    let reason = (status == AccountStatus::NeedsReconnect).then_some("token revoked <by platform>");
    build::account(agency, client)
        .display_name("Main page")
        .status(status, reason)
        .insert(pool)
        .await
}

async fn item(pool: &PgPool, agency: Uuid, client: Uuid, state: &str) -> Uuid {
    build::item(agency, client)
        .state(state.parse().unwrap())
        .caption("Fresh bread")
        .approved_at(Utc::now())
        .insert(pool)
        .await
}

/// A publication of a new item in `state` at `at` (published: `published_at = at`; failed:
/// last changed at `at`).
async fn publication(
    pool: &PgPool,
    agency: Uuid,
    client: Uuid,
    acct: Uuid,
    state: &str,
    at: DateTime<Utc>,
) -> Uuid {
    let it = item(pool, agency, client, "approved").await;
    let state: PublicationState = state.parse().unwrap();
    let mut p = build::publication(agency, client, it, acct)
        .state(state)
        .scheduled_at(at)
        .updated_at(at);
    match state {
        PublicationState::Published => p = p.published("p1", at),
        PublicationState::Held => p = p.held_reason("paused"),
        _ => {}
    }
    p.insert(pool).await
}

fn figure(body: &str, name: &str) -> String {
    let marker = format!("data-figure=\"{name}\">");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} figure in {body}"))
        + marker.len();
    body[start..].split('<').next().unwrap().to_owned()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn figures_count_the_agencys_own_rows_in_utc_windows(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let other = agency_id(&pool, "Other").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let foreign = client(&pool, "Other", "Foreign").await;
    let a = account(&pool, acme, bakery, "active").await;
    let broken = account(&pool, acme, bakery, "needs_reconnect").await;
    let fa = account(&pool, other, foreign, "needs_reconnect").await;
    let w = Windows::at(Utc::now());
    let min = TimeDelta::minutes(1);

    // due today: two pending ones at the edges of the UTC day, one held
    publication(&pool, acme, bakery, a, "scheduled", w.day_start + min).await;
    publication(&pool, acme, bakery, a, "held", w.day_end - min).await;
    publication(&pool, acme, bakery, broken, "scheduled", w.day_end - min).await;
    // this week but another day (when there is one), and next week
    let other_day = if w.week_start < w.day_start {
        w.week_start + min
    } else {
        w.week_end - min
    };
    let week_extra = i64::from(other_day < w.day_start || other_day >= w.day_end);
    publication(&pool, acme, bakery, a, "scheduled", other_day).await;
    publication(&pool, acme, bakery, a, "scheduled", w.week_end + min).await;
    // cancelled and foreign ones never count
    publication(&pool, acme, bakery, a, "cancelled", w.day_start + min).await;
    publication(&pool, other, foreign, fa, "scheduled", w.day_start + min).await;
    // pending review
    for _ in 0..3 {
        item(&pool, acme, bakery, "pending_review").await;
    }
    item(&pool, other, foreign, "pending_review").await;
    // the chart: today 2 published, three days ago 1, yesterday 1 failed; too old and foreign ones not
    let today_noon = w.day_start + TimeDelta::hours(12);
    let now = Utc::now();
    let published_today = if today_noon < now {
        today_noon
    } else {
        w.day_start + min
    };
    publication(&pool, acme, bakery, a, "published", published_today).await;
    publication(&pool, acme, bakery, a, "published", w.day_start + min).await;
    publication(
        &pool,
        acme,
        bakery,
        a,
        "published",
        today_noon - TimeDelta::days(3),
    )
    .await;
    publication(
        &pool,
        acme,
        bakery,
        a,
        "failed",
        today_noon - TimeDelta::days(1),
    )
    .await;
    publication(
        &pool,
        acme,
        bakery,
        a,
        "published",
        today_noon - TimeDelta::days(CHART_DAYS + 2),
    )
    .await;
    publication(&pool, other, foreign, fa, "published", w.day_start + min).await;

    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("viewer@acme.test").await;
    let r = b.get("/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(figure(&r.body, "due-today"), "3");
    assert_eq!(figure(&r.body, "due-week"), (3 + week_extra).to_string());
    assert_eq!(figure(&r.body, "pending-review"), "3");
    assert_eq!(figure(&r.body, "reconnect"), "1");
    assert_eq!(figure(&r.body, "switches"), "0");
    assert!(r.body.contains("href=\"/review\""));
    assert!(
        r.body.contains("token revoked &lt;by platform&gt;"),
        "escaped reason"
    );
    assert!(!r.body.contains("Foreign"));
    // the chart's table: one row per UTC day, exact counts
    let row = |d: DateTime<Utc>, p: i64, f: i64| {
        format!(
            "<th scope=\"row\">{}</th><td>{p}</td><td>{f}</td>",
            d.format("%a %Y-%m-%d")
        )
    };
    assert!(r.body.contains(&row(w.day_start, 2, 0)), "{}", r.body);
    assert!(
        r.body
            .contains(&row(w.day_start - TimeDelta::days(1), 0, 1))
    );
    assert!(
        r.body
            .contains(&row(w.day_start - TimeDelta::days(3), 1, 0))
    );
    assert_eq!(
        r.body.matches("<th scope=\"row\">").count(),
        CHART_DAYS as usize
    );
    assert!(r.body.contains("<svg role=\"img\""));
    assert!(r.body.contains("<title id=\"chart-title\">"));
    // a viewer sees no action; the SSE connector is on the page
    assert!(!r.body.contains("Fresh onboarding link"));
    assert!(r.body.contains("data-hx-sse_connect=\"/live/events\""));

    // the live fragment is the figures alone
    let frag = b
        .request(
            axum::http::Method::GET,
            "/dashboard/live",
            None,
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(frag.status, StatusCode::OK);
    assert!(!frag.body.contains("<html"));
    assert_eq!(figure(&frag.body, "due-today"), "3");

    // the other agency sees its own figures only
    let mut o = Browser::new(state(pool.clone()).await);
    o.logged_in("owner@other.test").await;
    let r = o.get("/").await;
    assert_eq!(figure(&r.body, "due-today"), "1");
    assert_eq!(figure(&r.body, "pending-review"), "1");
    assert_eq!(figure(&r.body, "reconnect"), "1");
    assert!(!r.body.contains("Bakery"));
    // an owner gets the one-click fresh onboarding link for the broken account
    assert!(
        r.body
            .contains(&format!("action=\"/clients/{foreign}/onboarding\""))
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_role_sees_the_dashboard_and_a_stranger_is_sent_to_login(pool: PgPool) {
    let mut b = Browser::new(state(pool.clone()).await);
    let r = b.get("/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().unwrap().starts_with("/login"));
    assert_eq!(b.get("/live/events").await.status, StatusCode::SEE_OTHER);
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        user(&pool, "Acme", email, role).await;
        let mut b = Browser::new(state(pool.clone()).await);
        b.logged_in(email).await;
        let r = b.get("/").await;
        assert_eq!(r.status, StatusCode::OK, "{role}");
        assert_eq!(r.headers.get(header::VARY).unwrap(), "HX-Request");
        assert!(r.body.contains("<h1>Dashboard</h1>"));
    }
}

/// Open `/live/events` with the browser's session and return the body's byte stream.
async fn open_stream(
    b: &Browser,
) -> impl futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin {
    let cookie = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let req = Request::get("/live/events")
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::empty())
        .unwrap();
    let res = b.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    res.into_body().into_data_stream()
}

/// Read the stream until `want` appears (Some(text so far)) or `within` passes (None).
async fn read_until(
    stream: &mut (impl futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    want: &str,
    within: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = String::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains(want) {
                    return Some(seen);
                }
            }
            Ok(Some(Err(e))) => panic!("stream failed: {e}"),
            Ok(None) | Err(_) => return None,
        }
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_state_change_reaches_its_own_agencys_stream_and_no_other(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    user(&pool, "Other", "viewer@other.test", Role::Viewer).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let a = account(&pool, acme, bakery, "active").await;
    let p = publication(
        &pool,
        acme,
        bakery,
        a,
        "scheduled",
        Utc::now() + TimeDelta::hours(1),
    )
    .await;

    // one admin process: both sessions share its LISTEN
    let st = state(pool.clone()).await;
    let mut mine = Browser::new(st.clone());
    mine.logged_in("viewer@acme.test").await;
    let mut theirs = Browser::new(st);
    theirs.logged_in("viewer@other.test").await;
    let mut my_stream = open_stream(&mine).await;
    let mut their_stream = open_stream(&theirs).await;
    assert!(
        read_until(&mut my_stream, ": connected", Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        read_until(&mut their_stream, ": connected", Duration::from_secs(5))
            .await
            .is_some()
    );

    sqlx::query("UPDATE publications SET state = 'failed', last_error = 'refused' WHERE id = $1")
        .bind(p)
        .execute(&pool)
        .await
        .unwrap();
    let got = read_until(&mut my_stream, "\n\n", Duration::from_secs(5))
        .await
        .expect("an event for the same agency");
    assert!(got.contains("event: live"), "{got}");
    assert!(got.contains(&format!("\"id\":\"{p}\"")), "{got}");
    assert!(got.contains("\"state\":\"failed\""), "{got}");
    assert!(got.contains("\"kind\":\"publication\""), "{got}");
    assert!(!got.contains(&acme.to_string()), "no agency id is sent");
    // the other agency hears nothing of it
    assert_eq!(
        read_until(&mut their_stream, "event:", Duration::from_millis(1500)).await,
        None
    );

    // a change that is not a state change sends nothing
    sqlx::query("UPDATE publications SET last_error = 'still refused' WHERE id = $1")
        .bind(p)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        read_until(&mut my_stream, "event:", Duration::from_millis(1000)).await,
        None
    );
    // nor does a post going out (that commit must wait for the disk, and a notifying commit
    // would hold every other one up): pages see it on their next refresh, and its result live
    sqlx::query(
        "UPDATE publications SET state = 'publishing', attempt_id = gen_random_uuid(), marker = 'as-marker-1'
         WHERE id = $1",
    )
    .bind(p)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        read_until(&mut my_stream, "event:", Duration::from_millis(1000)).await,
        None
    );
    // an item's state change is an event too
    let it = item(&pool, acme, bakery, "pending_review").await;
    let got = read_until(&mut my_stream, &it.to_string(), Duration::from_secs(5))
        .await
        .expect("the new item's event");
    assert!(got.contains("\"kind\":\"item\""), "{got}");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn figures_are_shared_for_a_few_seconds_and_a_live_change_recounts_them(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    item(&pool, acme, bakery, "pending_review").await;
    // one admin process: the dashboard and the live page share its cache and its LISTEN
    let st = state(pool.clone()).await;
    let mut b = Browser::new(st.clone());
    b.logged_in("viewer@acme.test").await;
    let mut live_page = Browser::new(st);
    live_page.logged_in("viewer@acme.test").await;
    let r = b.get("/").await;
    assert_eq!(figure(&r.body, "pending-review"), "1");
    assert!(
        r.body.contains("Figures as of"),
        "the page says when it counted"
    );

    // counted a moment ago: the same figures (no live page listens yet)
    item(&pool, acme, bakery, "pending_review").await;
    let r = b.get("/").await;
    assert_eq!(figure(&r.body, "pending-review"), "1");

    // once a live page listens, a change is recounted at once: the refresh it triggers is exact
    let mut stream = open_stream(&live_page).await;
    assert!(
        read_until(&mut stream, ": connected", Duration::from_secs(5))
            .await
            .is_some()
    );
    let it = item(&pool, acme, bakery, "pending_review").await;
    assert!(
        read_until(&mut stream, &it.to_string(), Duration::from_secs(5))
            .await
            .is_some()
    );
    let frag = b
        .request(
            axum::http::Method::GET,
            "/dashboard/live",
            None,
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(figure(&frag.body, "pending-review"), "3");
}
