//! The calendar: entries on the right local day across a DST change, month and week views,
//! rescheduling through the form (publication and job move together), roles and tenant isolation.

mod common;

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::{Browser, agency_id, client, state, user};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::domain::{ItemState, Role};
use autosocial_core::testing::build;

async fn account(pool: &PgPool, agency: Uuid, client: Uuid) -> Uuid {
    build::account(agency, client)
        .display_name("Main page")
        .insert(pool)
        .await
}

/// An approved item targeting `acct` at `slot`, scheduled the way approval does it (publication
/// and publish job).
async fn scheduled_item(
    pool: &PgPool,
    agency: Uuid,
    client: Uuid,
    acct: Uuid,
    slot: DateTime<Utc>,
    caption: &str,
) -> Uuid {
    let id = build::item(agency, client)
        .state(ItemState::Approved)
        .slot_at(slot)
        .caption(caption)
        .targets(&[acct])
        .insert(pool)
        .await;
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        autosocial_core::publishing::schedule(&mut conn, agency, id)
            .await
            .unwrap(),
        1
    );
    id
}

async fn set_timezone(pool: &PgPool, client: Uuid, tz: &str) {
    sqlx::query("UPDATE clients SET timezone = $2 WHERE id = $1")
        .bind(client)
        .bind(tz)
        .execute(pool)
        .await
        .unwrap();
}

async fn post_form(b: &mut Browser, uri: &str, f: &[(&str, String)]) -> common::Response {
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post(uri, &pairs).await
}

/// The HTML of the calendar cell of a date (from its `<time datetime>` to the cell's end).
fn cell<'a>(body: &'a str, date: &str) -> &'a str {
    let marker = format!("<time datetime=\"{date}\">");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no cell for {date}"));
    let rest = &body[start..];
    &rest[..rest.find("</td>").unwrap()]
}

async fn pub_and_job(pool: &PgPool, item: Uuid) -> (String, DateTime<Utc>, DateTime<Utc>) {
    sqlx::query_as(
        "SELECT p.state, p.scheduled_at, j.run_at FROM publications p
         JOIN jobs j ON j.kind = 'publish' AND j.unique_key = 'publish:' || p.id AND j.state = 'available'
         WHERE p.item_id = $1",
    )
    .bind(item)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn entries_fall_on_the_clients_local_day_across_a_dst_change(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    set_timezone(&pool, bakery, "Europe/Berlin").await;
    let a = account(&pool, acme, bakery).await;
    // Berlin moves to summer time on 2026-03-29 at 02:00 local
    let before = Utc.with_ymd_and_hms(2026, 3, 28, 23, 30, 0).unwrap(); // 29th 00:30 CET
    let after = Utc.with_ymd_and_hms(2026, 3, 29, 22, 30, 0).unwrap(); // 30th 00:30 CEST
    let spring = scheduled_item(&pool, acme, bakery, a, before, "Spring bakes").await;
    scheduled_item(&pool, acme, bakery, a, after, "Monday rolls").await;

    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("viewer@acme.test").await;
    let r = b
        .get(&format!(
            "/clients/{bakery}/calendar?view=month&date=2026-03-10"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Europe/Berlin"), "the zone is named");
    assert!(r.body.contains("March 2026"));
    let sunday = cell(&r.body, "2026-03-29");
    assert!(
        sunday.contains("Spring bakes") && sunday.contains("00:30"),
        "{sunday}"
    );
    assert!(!sunday.contains("Monday rolls"));
    let monday = cell(&r.body, "2026-03-30");
    assert!(
        monday.contains("Monday rolls") && monday.contains("00:30"),
        "{monday}"
    );
    assert!(sunday.contains(&format!("href=\"/items/{spring}\"")));
    assert!(sunday.contains("Sandbox: scheduled"));
    assert!(!cell(&r.body, "2026-03-28").contains("Spring bakes"));

    // the week of the 29th (Mon 23rd – Sun 29th) has the first post, not the second
    let r = b
        .get(&format!(
            "/clients/{bakery}/calendar?view=week&date=2026-03-29"
        ))
        .await;
    assert!(r.body.contains("Spring bakes"));
    assert!(!r.body.contains("Monday rolls"));
    assert!(r.body.contains("rel=\"prev\""));
    assert!(r.body.contains("date=2026-03-22"), "previous week link");
    assert!(r.body.contains("date=2026-04-05"), "next week link");

    // agency-wide, days are UTC days: the first post is on the 28th at 23:30
    let r = b.get("/calendar?view=month&date=2026-03-10").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("UTC"));
    let saturday = cell(&r.body, "2026-03-28");
    assert!(
        saturday.contains("Spring bakes") && saturday.contains("23:30"),
        "{saturday}"
    );
    assert!(
        saturday.contains("Bakery"),
        "agency-wide entries name the client"
    );
    // filtered by the client: its own zone again
    let r = b
        .get(&format!(
            "/calendar?view=month&date=2026-03-10&client={bakery}"
        ))
        .await;
    assert!(cell(&r.body, "2026-03-29").contains("Spring bakes"));
    // a viewer may not reschedule
    assert!(!r.body.contains("/reschedule"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn today_is_marked(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("viewer@acme.test").await;
    let r = b.get("/calendar").await;
    let today = Utc::now().date_naive().to_string();
    assert!(r.body.contains("aria-current=\"date\""));
    assert!(cell(&r.body, &today).contains("(today)"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_form_moves_the_publication_and_its_job(pool: PgPool) {
    user(&pool, "Acme", "reviewer@acme.test", Role::Reviewer).await;
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    set_timezone(&pool, bakery, "Europe/Berlin").await;
    let a = account(&pool, acme, bakery).await;
    let slot = (Utc::now() + TimeDelta::days(2))
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let slot = chrono_tz::Europe::Berlin
        .from_local_datetime(&slot)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    let it = scheduled_item(&pool, acme, bakery, a, slot, "Weekend offer").await;

    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in("reviewer@acme.test").await;
    let date = slot.date_naive().to_string();
    let page = b
        .get(&format!("/clients/{bakery}/calendar?view=week&date={date}"))
        .await;
    assert!(
        page.body
            .contains(&format!("action=\"/calendar/items/{it}/reschedule\""))
    );
    assert!(page.body.contains(&format!("<label for=\"at-{it}\">")));

    // a new local time, a day later at 15:45 Berlin time
    let new_local = (slot + TimeDelta::days(1))
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive()
        .and_hms_opt(15, 45, 0)
        .unwrap();
    let expected = chrono_tz::Europe::Berlin
        .from_local_datetime(&new_local)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    let value = new_local.format("%Y-%m-%dT%H:%M").to_string();
    let bakery_s = bakery.to_string();
    let form = |at: &str| {
        vec![
            ("_csrf", csrf.clone()),
            ("at", at.to_owned()),
            ("view", "week".to_owned()),
            ("date", date.clone()),
            ("client", bakery_s.clone()),
            ("scope", "client".to_owned()),
        ]
    };
    // refused: a time in the past, and one that does not exist; nothing moves
    let r = post_form(
        &mut b,
        &format!("/calendar/items/{it}/reschedule"),
        &form("2020-01-01T10:00"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose a time in the future."));
    assert!(
        r.body.contains("value=\"2020-01-01T10:00\""),
        "typed value kept"
    );
    assert!(r.body.contains(&format!("id=\"at-{it}-error\"")));
    let r = post_form(
        &mut b,
        &format!("/calendar/items/{it}/reschedule"),
        &form("soon"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        pub_and_job(&pool, it).await,
        ("scheduled".into(), slot, slot)
    );

    let r = post_form(
        &mut b,
        &format!("/calendar/items/{it}/reschedule"),
        &form(&value),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.location(),
        Some(format!("/clients/{bakery}/calendar?view=week&date={date}").as_str())
    );
    assert_eq!(
        pub_and_job(&pool, it).await,
        ("scheduled".into(), expected, expected)
    );
    let slot_now: DateTime<Utc> =
        sqlx::query_scalar("SELECT slot_at FROM content_items WHERE id = $1")
            .bind(it)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(slot_now, expected);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'item.reschedule'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);

    // a failed publication is tried again at the new time, with a new job
    let p: Uuid = sqlx::query_scalar("SELECT id FROM publications WHERE item_id = $1")
        .bind(it)
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET state = 'failed', finished_at = now() WHERE unique_key = 'publish:' || $1::text")
        .bind(p)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE publications SET state = 'failed', last_error = 'refused' WHERE id = $1")
        .bind(p)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE content_items SET state = 'failed' WHERE id = $1")
        .bind(it)
        .execute(&pool)
        .await
        .unwrap();
    let page = b
        .get(&format!("/clients/{bakery}/calendar?view=week&date={date}"))
        .await;
    assert!(
        page.body
            .contains(&format!("action=\"/calendar/publications/{p}/reschedule\""))
    );
    let r = post_form(
        &mut b,
        &format!("/calendar/publications/{p}/reschedule"),
        &form(&value),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        pub_and_job(&pool, it).await,
        ("scheduled".into(), expected, expected)
    );
    // an item that is no longer approved cannot be moved as a whole
    sqlx::query("UPDATE content_items SET state = 'published' WHERE id = $1")
        .bind(it)
        .execute(&pool)
        .await
        .unwrap();
    let r = post_form(
        &mut b,
        &format!("/calendar/items/{it}/reschedule"),
        &form(&value),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("only approved posts"));

    // a viewer may not; another agency gets 404 for every route of this client
    let mut v = Browser::new(state(pool.clone()).await);
    let vcsrf = v.logged_in("viewer@acme.test").await;
    let r = v
        .post(
            &format!("/calendar/items/{it}/reschedule"),
            &[("_csrf", vcsrf.as_str()), ("at", value.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut o = Browser::new(state(pool.clone()).await);
    let ocsrf = o.logged_in("owner@other.test").await;
    assert_eq!(
        o.get(&format!("/clients/{bakery}/calendar")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        o.get(&format!("/calendar?client={bakery}")).await.status,
        StatusCode::NOT_FOUND
    );
    for uri in [
        format!("/calendar/items/{it}/reschedule"),
        format!("/calendar/publications/{p}/reschedule"),
    ] {
        let r = o
            .post(&uri, &[("_csrf", ocsrf.as_str()), ("at", value.as_str())])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    // and its agency-wide calendar does not show this agency's posts
    let r = o.get(&format!("/calendar?view=week&date={date}")).await;
    assert!(!r.body.contains("Weekend offer"));
}

/// `n` approved items of `client` with one scheduled publication each, spread over three UTC
/// days from `day` (n/3 a day).
async fn busy(pool: &PgPool, agency: Uuid, client: Uuid, acct: Uuid, day: DateTime<Utc>, n: i64) {
    sqlx::query(
        "WITH i AS (
             INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, caption, approved_at)
             SELECT gen_random_uuid(), $1, $2, 'manual', 'approved',
                    $3::timestamptz + (g % 3) * interval '1 day' + g * interval '1 minute', 'text', 'Busy post ' || g, now()
             FROM generate_series(1, $4) g
             RETURNING id, slot_at)
         INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, state, scheduled_at, snapshot)
         SELECT gen_random_uuid(), $1, $2, i.id, $5, 'sandbox', 'scheduled', i.slot_at, '{}' FROM i",
    )
    .bind(agency)
    .bind(client)
    .bind(day)
    .bind(n)
    .bind(acct)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_busy_agency_month_shows_counts_per_day_and_each_day_lists_its_posts(pool: PgPool) {
    use autosocial_admin::pages::calendar::{DAY_PAGE, DETAIL_MAX};
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let a = account(&pool, acme, bakery).await;
    let day = Utc.with_ymd_and_hms(2031, 5, 10, 0, 0, 0).unwrap();
    let per_day = DETAIL_MAX / 2 + 10;
    busy(&pool, acme, bakery, a, day, per_day * 3).await;
    let quiet = client(&pool, "Acme", "Quiet").await;
    let qa = account(&pool, acme, quiet).await;
    scheduled_item(
        &pool,
        acme,
        quiet,
        qa,
        day + TimeDelta::days(5),
        "Quiet news",
    )
    .await;

    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("viewer@acme.test").await;
    let r = b.get("/calendar?view=month&date=2031-05-01").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains(&format!("More than {DETAIL_MAX} posts")),
        "{}",
        r.body
    );
    assert!(r.body.contains("Counts as of"));
    assert!(
        !r.body.contains("Busy post"),
        "no post details in the month"
    );
    let tenth = cell(&r.body, "2031-05-10");
    assert!(
        tenth.contains(&format!("<strong>{per_day}</strong> posts")),
        "{tenth}"
    );
    assert!(tenth.contains(&format!("{per_day} scheduled")), "{tenth}");
    assert!(
        tenth.contains("href=\"/calendar?view=day&amp;date=2031-05-10\""),
        "{tenth}"
    );
    let fifteenth = cell(&r.body, "2031-05-15");
    assert!(
        fifteenth.contains("<strong>1</strong> post<"),
        "{fifteenth}"
    );
    assert!(!cell(&r.body, "2031-05-14").contains("<strong>"));
    // the week is counted too
    let w = b.get("/calendar?view=week&date=2031-05-10").await;
    assert!(cell(&w.body, "2031-05-10").contains(&format!("{per_day} scheduled")));

    // a day lists its posts, a page at a time, earliest first
    let d = b.get("/calendar?view=day&date=2031-05-10").await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(d.body.contains("Saturday 10 May 2031"));
    let listed = |body: &str| body.matches("<li class=\"entry\">").count() as i64;
    assert_eq!(listed(&d.body), DAY_PAGE);
    assert!(
        d.body.contains("Bakery"),
        "agency-wide entries name the client"
    );
    // the later pages, by their links, until the day is complete
    let later = |body: &str| {
        body.split("rel=\"next\" href=\"")
            .nth(2)
            .map(|s| s.split('"').next().unwrap().replace("&amp;", "&"))
    };
    let (mut seen, mut pages, mut page) = (listed(&d.body), 1, d);
    while let Some(next) = later(&page.body) {
        assert!(next.contains("after="), "{next}");
        page = b.get(&next).await;
        assert!(page.body.contains("First posts of the day"));
        seen += listed(&page.body);
        pages += 1;
        assert!(pages < 10, "the pages end");
    }
    assert!(!page.body.contains("Later posts"));
    assert_eq!(seen, per_day, "every post of the day, once");
    assert_eq!(pages, (per_day + DAY_PAGE - 1) / DAY_PAGE);

    // filtered by a client, and on a client's own page, the month is complete
    let f = b
        .get(&format!(
            "/calendar?view=month&date=2031-05-01&client={quiet}"
        ))
        .await;
    assert!(cell(&f.body, "2031-05-15").contains("Quiet news"));
    let own = b
        .get(&format!(
            "/clients/{bakery}/calendar?view=month&date=2031-05-01"
        ))
        .await;
    assert_eq!(own.body.matches("Busy post").count() as i64, per_day * 3);

    // another agency counts only its own
    let mut o = Browser::new(state(pool.clone()).await);
    o.logged_in("owner@other.test").await;
    let r = o.get("/calendar?view=month&date=2031-05-01").await;
    assert!(!r.body.contains("posts</a>") && !r.body.contains("Busy post"));
    assert!(
        r.body
            .contains("Nothing scheduled or published in this period.")
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_calendar_filter_takes_a_typed_client_name(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let a = account(&pool, acme, bakery).await;
    let slot = Utc.with_ymd_and_hms(2031, 5, 10, 8, 0, 0).unwrap();
    scheduled_item(&pool, acme, bakery, a, slot, "Rolls").await;
    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("viewer@acme.test").await;
    let r = b
        .get("/calendar?view=month&date=2031-05-01&client_name=bake")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<h1>Calendar · Bakery</h1>"), "{}", r.body);
    assert!(r.body.contains("Europe/Berlin"));
    assert!(
        r.body.contains(&format!("client={bakery}")),
        "links carry the id"
    );
    assert!(!r.body.contains("<select id=\"client\""));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn hostile_dates_are_refused_with_a_400_that_says_why(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let acct = account(&pool, acme, bakery).await;
    let item = scheduled_item(
        &pool,
        acme,
        bakery,
        acct,
        Utc::now() + TimeDelta::days(2),
        "Bread",
    )
    .await;
    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in("owner@acme.test").await;
    for date in [
        "-262143-01-01",
        "+262142-12-31",
        "0000-01-01",
        "1969-12-31",
        "2200-01-01",
    ] {
        for view in ["month", "week", "day"] {
            for base in [
                "/calendar".to_owned(),
                format!("/clients/{bakery}/calendar"),
            ] {
                let uri = format!("{base}?view={view}&date={}", date.replace('+', "%2B"));
                let r = b.get(&uri).await;
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
                assert!(
                    r.body.contains("1970-01-01 to 2199-12-31"),
                    "{uri}: {}",
                    r.body
                );
            }
        }
    }
    // the edges of the window work, and so does every view's step beyond them (refused)
    for date in ["1970-01-01", "2199-12-31"] {
        for view in ["month", "week", "day"] {
            let r = b.get(&format!("/calendar?view={view}&date={date}")).await;
            assert_eq!(r.status, StatusCode::OK, "{view} {date}");
        }
    }
    // beyond four digits a year needs its sign: without it, it is no date at all
    let r = b.get("/calendar?date=262142-12-31").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("is not a date like 2026-11-23"),
        "{}",
        r.body
    );
    let r = b.get("/calendar?view=fortnight").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("month, week or day"), "{}", r.body);
    let r = b.get("/calendar?view=day&after=not-an-id").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // the audit log's filter: the form again with its field's message, and a 400
    for (field, value) in [
        ("from", "-262143-01-01"),
        ("to", "%2B262142-12-31"),
        ("to", "31.12.2026"),
    ] {
        let r = b.get(&format!("/audit?{field}={value}")).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{field}={value}: {}",
            r.body
        );
        assert!(
            r.body.contains(&format!("id=\"{field}-error\"")),
            "{}",
            r.body
        );
        assert!(r.body.contains("aria-invalid=\"true\""));
    }

    // a reschedule to a date beyond the window is refused with the field's message and
    // changes nothing
    let (_, before, _) = pub_and_job(&pool, item).await;
    for at in [
        "-262143-01-01T00:00",
        "+262142-12-31T23:59",
        "9999-12-31T23:59",
    ] {
        let r = post_form(
            &mut b,
            &format!("/calendar/items/{item}/reschedule"),
            &[("_csrf", csrf.clone()), ("at", at.to_owned())],
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{at}: {}",
            r.body
        );
        assert!(r.body.contains("1970-01-01 to 2199-12-31"), "{}", r.body);
    }
    // and a hostile date of the view to come back to is refused before anything moves
    let r = post_form(
        &mut b,
        &format!("/calendar/items/{item}/reschedule"),
        &[
            ("_csrf", csrf.clone()),
            ("at", "2030-01-01T10:00".to_owned()),
            ("date", "-262143-01-01".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(pub_and_job(&pool, item).await.1, before, "nothing moved");
}
