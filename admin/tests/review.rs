//! The review queue and the item page: who may do what, tenant isolation, approval (one item and
//! in bulk), edits that re-run moderation and re-snapshot approved posts, rejection, regeneration,
//! rescheduling failed publications, pagination and filters.

mod common;

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use common::{Browser, account, agency_id, client, logged_in, user};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::domain::Role;
use autosocial_core::testing::build;

const BLOCKED_MODERATION: &str = r#"{"reasons":[{"platform":"x","rule":"length","message":"X allows 280 characters as X counts them; this post has 300"}]}"#;

/// A generated item waiting for review: three variants (the bold one blocked), the balanced one
/// chosen, unless `blocked`, where the chosen (balanced) one is blocked too.
async fn pending_item(
    pool: &PgPool,
    client: Uuid,
    accounts: &[Uuid],
    blocked: bool,
    slot: DateTime<Utc>,
) -> Uuid {
    let (status, moderation) = if blocked {
        ("blocked", BLOCKED_MODERATION)
    } else {
        ("pass", r#"{"reasons":[]}"#)
    };
    let agency: Uuid = sqlx::query_scalar("SELECT agency_id FROM clients WHERE id = $1")
        .bind(client)
        .fetch_one(pool)
        .await
        .unwrap();
    let id = build::item(agency, client)
        .generated()
        .slot_at(slot)
        .chosen_variant("balanced")
        .caption("Balanced caption")
        .hashtags(&["#bread"])
        .cta("Visit us")
        .moderation(status, Some(serde_json::from_str(moderation).unwrap()))
        .targets(accounts)
        .insert(pool)
        .await;
    for (kind, caption, st, m) in [
        (
            "conservative",
            "Conservative caption",
            "pass",
            r#"{"reasons":[]}"#,
        ),
        ("balanced", "Balanced caption", status, moderation),
        ("bold", "Bold caption", "blocked", BLOCKED_MODERATION),
    ] {
        sqlx::query(
            "INSERT INTO content_variants (item_id, agency_id, kind, caption, hashtags, cta, moderation_status, moderation)
             SELECT $1, agency_id, $2, $3, '{#bread}', 'Visit us', $4, $5::jsonb FROM content_items WHERE id = $1",
        )
        .bind(id)
        .bind(kind)
        .bind(caption)
        .bind(st)
        .bind(m)
        .execute(pool)
        .await
        .unwrap();
    }
    id
}

async fn item_state(pool: &PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT state FROM content_items WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn slot() -> DateTime<Utc> {
    // whole seconds: compared with what Postgres gives back
    DateTime::from_timestamp((Utc::now() + TimeDelta::hours(5)).timestamp(), 0).unwrap()
}

/// Acme with a client, an X and a LinkedIn account, and a member of each role.
async fn acme(pool: &PgPool) -> (Uuid, Uuid, Uuid) {
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        user(pool, "Acme", email, role).await;
    }
    let c = client(pool, "Acme", "Bakery").await;
    let x = account(pool, c, "x", "@bakery").await;
    let li = account(pool, c, "linkedin", "Bakery GmbH").await;
    (c, x, li)
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_route_checks_the_role(pool: PgPool) {
    let (c, x, li) = acme(&pool).await;
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        let (mut b, csrf) = logged_in(&pool, email).await;
        let may = role.allows(Role::Reviewer);
        let want = |ok: StatusCode| if may { ok } else { StatusCode::FORBIDDEN };
        // everyone reads
        let queue = b.get("/review").await;
        assert_eq!(queue.status, StatusCode::OK, "{role} GET /review");
        let a = pending_item(&pool, c, &[x, li], false, slot()).await;
        let page = b.get(&format!("/items/{a}")).await;
        assert_eq!(page.status, StatusCode::OK, "{role} GET item");
        assert_eq!(
            page.body.contains("data-action=\"approve\""),
            may,
            "{role} sees actions"
        );

        let back = format!("/items/{a}");
        let r = b
            .post(
                &format!("/items/{a}/edit"),
                &[
                    ("_csrf", &csrf),
                    ("back", &back),
                    ("caption", "Fresh bread"),
                    ("hashtags", ""),
                    ("cta", ""),
                    ("link_url", ""),
                ],
            )
            .await;
        assert_eq!(
            r.status,
            want(StatusCode::SEE_OTHER),
            "{role} edit: {}",
            r.body
        );
        let r = b
            .post(
                &format!("/items/{a}/approve"),
                &[("_csrf", &csrf), ("back", &back)],
            )
            .await;
        assert_eq!(
            r.status,
            want(StatusCode::SEE_OTHER),
            "{role} approve: {}",
            r.body
        );

        let b2 = pending_item(&pool, c, &[x], false, slot()).await;
        let r = b
            .post(
                &format!("/items/{b2}/reject"),
                &[("_csrf", &csrf), ("reason", "off brand")],
            )
            .await;
        assert_eq!(r.status, want(StatusCode::SEE_OTHER), "{role} reject");
        let r = b
            .post(&format!("/items/{b2}/regenerate"), &[("_csrf", &csrf)])
            .await;
        assert_eq!(r.status, want(StatusCode::SEE_OTHER), "{role} regenerate");

        let b3 = pending_item(&pool, c, &[x], false, slot()).await;
        let r = b
            .post(
                "/review/approve",
                &[("_csrf", &csrf), ("item", &b3.to_string())],
            )
            .await;
        assert_eq!(r.status, want(StatusCode::OK), "{role} bulk approve");

        if may {
            let p: Uuid = sqlx::query_scalar(
                "SELECT id FROM publications WHERE item_id = $1 ORDER BY id LIMIT 1",
            )
            .bind(a)
            .fetch_one(&pool)
            .await
            .unwrap();
            sqlx::query(
                "UPDATE publications SET state = 'failed', last_error = 'refused' WHERE id = $1",
            )
            .bind(p)
            .execute(&pool)
            .await
            .unwrap();
        }
        let p: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM publications WHERE item_id = $1 ORDER BY id LIMIT 1",
        )
        .bind(a)
        .fetch_optional(&pool)
        .await
        .unwrap();
        let p = p.unwrap_or_else(Uuid::now_v7);
        let r = b
            .post(
                &format!("/items/{a}/publications/{p}/reschedule"),
                &[("_csrf", &csrf), ("at", "2099-01-01T10:00")],
            )
            .await;
        assert_eq!(
            r.status,
            want(StatusCode::SEE_OTHER),
            "{role} reschedule: {}",
            r.body
        );
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn another_agencys_items_are_not_found(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x], false, slot()).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let (mut b, csrf) = logged_in(&pool, "owner@other.test").await;
    assert_eq!(
        b.get(&format!("/items/{item}")).await.status,
        StatusCode::NOT_FOUND
    );
    for action in ["approve", "edit", "reject", "regenerate"] {
        let r = b
            .post(
                &format!("/items/{item}/{action}"),
                &[("_csrf", &csrf), ("reason", "x"), ("caption", "x")],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    let r = b
        .post(
            &format!("/items/{item}/publications/{}/reschedule", Uuid::now_v7()),
            &[("_csrf", &csrf), ("at", "2099-01-01T10:00")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get(&format!("/review?client={c}")).await.status,
        StatusCode::NOT_FOUND
    );
    // not in the other agency's queue, and a bulk approval cannot reach it
    let queue = b.get("/review").await;
    assert!(!queue.body.contains(&item.to_string()));
    let r = b
        .post(
            "/review/approve",
            &[("_csrf", &csrf), ("item", &item.to_string())],
        )
        .await;
    assert!(r.body.contains("there is no such item"), "{}", r.body);
    assert_eq!(item_state(&pool, item).await, "pending_review");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn approving_schedules_a_publication_and_publish_job_per_account_at_the_slot(pool: PgPool) {
    let (c, x, li) = acme(&pool).await;
    let at = slot();
    let item = pending_item(&pool, c, &[x, li], false, at).await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let queue = b.get("/review").await;
    assert!(queue.body.contains("Balanced caption") && queue.body.contains("Bold caption"));
    let r = b
        .post(
            &format!("/items/{item}/approve"),
            &[
                ("_csrf", &csrf),
                ("variant", "conservative"),
                ("back", "/review"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/review"));
    let (state, variant, caption): (String, String, String) =
        sqlx::query_as("SELECT state, chosen_variant, caption FROM content_items WHERE id = $1")
            .bind(item)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), variant.as_str(), caption.as_str()),
        ("approved", "conservative", "Conservative caption")
    );
    let pubs: Vec<(Uuid, String, DateTime<Utc>, serde_json::Value)> =
        sqlx::query_as("SELECT account_id, state, scheduled_at, snapshot FROM publications WHERE item_id = $1 ORDER BY account_id")
            .bind(item)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(pubs.len(), 2);
    for (_, st, when, snap) in &pubs {
        assert_eq!(st, "scheduled");
        assert_eq!(*when, at);
        assert_eq!(snap["caption"], "Conservative caption");
    }
    let jobs: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT j.run_at FROM jobs j JOIN publications p ON j.unique_key = 'publish:' || p.id WHERE p.item_id = $1 AND j.kind = 'publish' AND j.state = 'available'",
    )
    .bind(item)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(jobs, vec![at, at]);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'item.approve' AND target_id = $1::text",
            item
        )
        .await,
        1
    );
    // out of the queue now; the item page lists the publications
    assert!(!b.get("/review").await.body.contains(&item.to_string()));
    let page = b.get(&format!("/items/{item}")).await;
    assert!(page.body.contains("@bakery (X)") && page.body.contains("scheduled"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_blocked_item_cannot_be_approved(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x], true, slot()).await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let page = b.get(&format!("/items/{item}")).await;
    assert!(page.body.contains("X allows 280"), "the reasons are shown");
    for variant in ["", "bold"] {
        let r = b
            .post(
                &format!("/items/{item}/approve"),
                &[("_csrf", &csrf), ("variant", variant)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{variant}");
        assert!(r.body.contains("cannot be approved"), "{}", r.body);
    }
    // from the queue with htmx: the card comes back with the message
    let r = b
        .request(
            axum::http::Method::POST,
            &format!("/items/{item}/approve"),
            Some(&[("back", "/review")]),
            &[
                ("sec-fetch-site", "same-origin"),
                ("hx-request", "true"),
                ("x-csrf-token", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.starts_with("<article") && r.body.contains("cannot be approved"),
        "{}",
        r.body
    );
    assert_eq!(item_state(&pool, item).await, "pending_review");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM publications WHERE item_id = $1",
            item
        )
        .await,
        0
    );
    // a variant that passes can be approved
    let r = b
        .post(
            &format!("/items/{item}/approve"),
            &[("_csrf", &csrf), ("variant", "conservative")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(item_state(&pool, item).await, "approved");
}

const LINK: &str = "https://bakery.example/order";

async fn edit(
    b: &mut Browser,
    item: Uuid,
    csrf: &str,
    caption: &str,
    link: &str,
) -> common::Response {
    b.post(
        &format!("/items/{item}/edit"),
        &[
            ("_csrf", csrf),
            ("caption", caption),
            ("hashtags", "bread, #sourdough"),
            ("cta", "Order today"),
            ("link_url", link),
        ],
    )
    .await
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn edits_rerun_moderation_and_resnapshot_an_approved_item(pool: PgPool) {
    let (c, x, li) = acme(&pool).await;
    sqlx::query("INSERT INTO brand_settings (client_id, agency_id, banned_terms) SELECT id, agency_id, '{cheap}' FROM clients WHERE id = $1")
        .bind(c)
        .execute(&pool)
        .await
        .unwrap();
    let item = pending_item(&pool, c, &[x, li], false, slot()).await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    // a banned term: saved for the pending item, but blocked with the reason
    let r = edit(&mut b, item, &csrf, "Cheap bread for everyone", LINK).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (status, moderation, tags): (String, serde_json::Value, Vec<String>) = sqlx::query_as(
        "SELECT moderation_status, moderation, hashtags FROM content_items WHERE id = $1",
    )
    .bind(item)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "blocked");
    assert_eq!(moderation["reasons"][0]["rule"], "banned_term");
    assert_eq!(tags, vec!["#bread", "#sourdough"]);
    // fixed: passes, and can be approved as edited
    let r = edit(&mut b, item, &csrf, "Fresh bread for everyone", LINK).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = b
        .post(
            &format!("/items/{item}/approve"),
            &[("_csrf", &csrf), ("variant", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // editing the approved item updates the scheduled snapshots
    let r = edit(
        &mut b,
        item,
        &csrf,
        "Warm bread, straight from the oven",
        LINK,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let snaps: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT snapshot FROM publications WHERE item_id = $1")
            .bind(item)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(snaps.len(), 2);
    for s in &snaps {
        assert_eq!(s["caption"], "Warm bread, straight from the oven");
        assert_eq!(s["link_url"], "https://bakery.example/order");
    }
    // an approved post may not become a blocked one: refused, nothing changes
    let r = edit(&mut b, item, &csrf, &"a".repeat(300), LINK).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("X allows 280"), "{}", r.body);
    let caption: String = sqlx::query_scalar("SELECT caption FROM content_items WHERE id = $1")
        .bind(item)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(caption, "Warm bread, straight from the oven");
    // a bad link is a field error
    let r = edit(&mut b, item, &csrf, "Fine", "javascript:alert(1)").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("full link starting with https://"));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'item.edit' AND target_id = $1::text",
            item
        )
        .await,
        3
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn rejecting_requires_a_reason(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x], false, slot()).await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let r = b
        .post(
            &format!("/items/{item}/reject"),
            &[("_csrf", &csrf), ("reason", "   ")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Say why it is rejected"));
    assert_eq!(item_state(&pool, item).await, "pending_review");
    let r = b
        .post(
            &format!("/items/{item}/reject"),
            &[
                ("_csrf", &csrf),
                ("reason", "Wrong season"),
                ("back", "/review"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let reason: Option<String> =
        sqlx::query_scalar("SELECT rejection_reason FROM content_items WHERE id = $1")
            .bind(item)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("Wrong season"));
    assert_eq!(item_state(&pool, item).await, "rejected");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'item.reject' AND target_id = $1::text",
            item
        )
        .await,
        1
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn bulk_approval_reports_each_item(pool: PgPool) {
    let (c, x, li) = acme(&pool).await;
    let good = pending_item(&pool, c, &[x, li], false, slot()).await;
    let blocked = pending_item(&pool, c, &[x], true, slot()).await;
    let unknown = Uuid::now_v7();
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let r = b
        .post(
            "/review/approve",
            &[
                ("_csrf", &csrf),
                ("item", &good.to_string()),
                ("item", &blocked.to_string()),
                ("item", &unknown.to_string()),
                ("back", "/review"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("Bulk approval: 1 of 3 approved"),
        "{}",
        r.body
    );
    assert!(r.body.contains("approved, 2 posts scheduled"));
    assert!(
        r.body
            .contains("not approved — Moderation blocked this item")
    );
    assert!(r.body.contains("there is no such item"));
    assert_eq!(item_state(&pool, good).await, "approved");
    assert_eq!(item_state(&pool, blocked).await, "pending_review");
    // nothing selected: a message, nothing changes
    let r = b.post("/review/approve", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Select at least one item"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn regenerating_resets_the_item_and_enqueues_its_generate_job(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x], false, slot()).await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let r = b
        .post(&format!("/items/{item}/regenerate"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(item_state(&pool, item).await, "planned");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content_variants WHERE item_id = $1",
            item
        )
        .await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM jobs WHERE kind = 'generate' AND unique_key = 'generate:' || $1::text AND state = 'available'", item).await,
        1
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_failed_publication_is_rescheduled_in_the_clients_zone(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x], false, slot()).await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    b.post(&format!("/items/{item}/approve"), &[("_csrf", &csrf)])
        .await;
    let p: Uuid = sqlx::query_scalar("SELECT id FROM publications WHERE item_id = $1")
        .bind(item)
        .fetch_one(&pool)
        .await
        .unwrap();
    // the platform refused it: the job failed, the publication too
    sqlx::query("UPDATE jobs SET state = 'failed', finished_at = now() WHERE unique_key = 'publish:' || $1::text")
        .bind(p)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE publications SET state = 'failed', last_error = 'media rejected' WHERE id = $1",
    )
    .bind(p)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE content_items SET state = 'failed' WHERE id = $1")
        .bind(item)
        .execute(&pool)
        .await
        .unwrap();
    let page = b.get(&format!("/items/{item}")).await;
    assert!(page.body.contains("media rejected") && page.body.contains("Reschedule"));
    let uri = format!("/items/{item}/publications/{p}/reschedule");
    let r = b
        .post(&uri, &[("_csrf", &csrf), ("at", "next tuesday")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a date and time"));
    let r = b
        .post(&uri, &[("_csrf", &csrf), ("at", "2020-01-01T10:00")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("That time has passed"));
    // 10:00 in Berlin (the test client's zone) in July is 08:00 UTC
    let r = b
        .post(&uri, &[("_csrf", &csrf), ("at", "2099-07-01T10:00")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let want: DateTime<Utc> = "2099-07-01T08:00:00Z".parse().unwrap();
    let (state, at): (String, DateTime<Utc>) =
        sqlx::query_as("SELECT state, scheduled_at FROM publications WHERE id = $1")
            .bind(p)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), at), ("scheduled", want));
    let run_at: DateTime<Utc> = sqlx::query_scalar(
        "SELECT run_at FROM jobs WHERE kind = 'publish' AND unique_key = 'publish:' || $1::text AND state = 'available'",
    )
    .bind(p)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(run_at, want);
    assert_eq!(item_state(&pool, item).await, "approved");
    // only failed (or needs-attention) publications are rescheduled by hand
    let r = b
        .post(&uri, &[("_csrf", &csrf), ("at", "2099-07-02T10:00")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_queue_pages_by_keyset_filters_and_answers_htmx_with_a_partial(pool: PgPool) {
    let (c, x, li) = acme(&pool).await;
    let other = client(&pool, "Acme", "Florist").await;
    let fx = account(&pool, other, "facebook", "Florist page").await;
    let base = slot();
    let mut bakery = Vec::new();
    for i in 0..22 {
        bakery.push(pending_item(&pool, c, &[x, li], false, base + TimeDelta::minutes(i)).await);
    }
    let florist = pending_item(&pool, other, &[fx], false, base + TimeDelta::minutes(30)).await;
    let (mut b, _) = logged_in(&pool, "viewer@acme.test").await;
    let first = b.get("/review").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.contains("Keyboard shortcuts"));
    let shown = |body: &str, ids: &[Uuid]| {
        ids.iter()
            .filter(|id| body.contains(&format!("id=\"item-{id}\"")))
            .count()
    };
    assert_eq!(shown(&first.body, &bakery), 20);
    let next = format!("/review?after={}", bakery[19]);
    assert!(
        first.body.contains(&next.replace('&', "&amp;")),
        "a next-page link"
    );
    let second = b.get(&next).await;
    assert_eq!(shown(&second.body, &bakery[20..]), 2);
    assert_eq!(shown(&second.body, &[florist]), 1);
    assert_eq!(shown(&second.body, &bakery[..20]), 0);
    let fb = b.get("/review?platform=facebook").await;
    assert_eq!(
        (shown(&fb.body, &bakery), shown(&fb.body, &[florist])),
        (0, 1)
    );
    let by_client = b.get(&format!("/review?client={other}")).await;
    assert_eq!(
        (
            shown(&by_client.body, &bakery),
            shown(&by_client.body, &[florist])
        ),
        (0, 1)
    );
    // htmx gets the partial, and caches know the two differ
    let partial = b
        .request(
            axum::http::Method::GET,
            "/review",
            None,
            &[("hx-request", "true")],
        )
        .await;
    assert!(!partial.body.contains("<html") && partial.body.contains("Review queue"));
    assert_eq!(partial.headers.get("vary").unwrap(), "HX-Request");
    // the shortcuts script is a same-origin file with an immutable, content-hashed name
    let src = first
        .body
        .split("src=\"/static/review.")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let js = b.get(&format!("/static/review.{src}")).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("keydown"));
    assert!(
        js.headers
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let _ = agency_id(&pool, "Acme").await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn cancelling_an_approved_item_cancels_its_posts_and_their_jobs(pool: PgPool) {
    let (c, x, li) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x, li], false, slot()).await;
    let (mut viewer, viewer_csrf) = logged_in(&pool, "viewer@acme.test").await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let back = format!("/items/{item}");
    let r = b
        .post(
            &format!("/items/{item}/approve"),
            &[("_csrf", &csrf), ("back", &back)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        b.get(&back)
            .await
            .body
            .contains("Cancel the scheduled posts")
    );
    let denied = viewer
        .post(
            &format!("/items/{item}/cancel"),
            &[("_csrf", &viewer_csrf), ("back", &back)],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let r = b
        .post(
            &format!("/items/{item}/cancel"),
            &[("_csrf", &csrf), ("back", &back)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(item_state(&pool, item).await, "cancelled");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM publications WHERE item_id = $1 AND state = 'cancelled'",
            item
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs j JOIN publications p ON j.unique_key = 'publish:' || p.id
             WHERE p.item_id = $1 AND j.state <> 'cancelled'",
            item
        )
        .await,
        0,
        "no publish job is left to run"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'item.cancel' AND target_id = $1::text",
            item
        )
        .await,
        1
    );
    // only approved items can be cancelled
    let again = b
        .post(
            &format!("/items/{item}/cancel"),
            &[("_csrf", &csrf), ("back", &back)],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again.body.contains("only approved items can be cancelled"),
        "{}",
        again.body
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_client_filter_is_a_name_field_with_suggestions_and_works_without_javascript(
    pool: PgPool,
) {
    let (c, x, _) = acme(&pool).await;
    let florist = client(&pool, "Acme", "Florist <Rosa>").await;
    let fl2 = client(&pool, "Acme", "Florist Lily").await;
    let fx = account(&pool, florist, "facebook", "Rosa page").await;
    let lx = account(&pool, fl2, "facebook", "Lily page").await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    client(&pool, "Other", "Florist Foreign").await;
    let bakery_item = pending_item(&pool, c, &[x], false, slot()).await;
    let rosa_item = pending_item(&pool, florist, &[fx], false, slot()).await;
    let lily_item = pending_item(&pool, fl2, &[lx], false, slot()).await;
    let shown = |body: &str, id: Uuid| body.contains(&format!("id=\"item-{id}\""));
    let (mut b, _) = logged_in(&pool, "reviewer@acme.test").await;

    // no list of every client on the page: a text field with a datalist filled by htmx
    let page = b.get("/review").await;
    assert!(!page.body.contains(&format!("<option value=\"{c}\"")));
    assert!(page.body.contains("name=\"client_name\""));
    assert!(page.body.contains("list=\"f-client-suggestions\""));
    assert!(page.body.contains("data-hx-get=\"/clients/suggest\""));

    // suggestions: the agency's own clients whose names contain the text, escaped
    let s = b.get("/clients/suggest?client_name=flor").await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(
        s.body.contains("<option value=\"Florist &lt;Rosa&gt;\">"),
        "{}",
        s.body
    );
    assert!(s.body.contains("<option value=\"Florist Lily\">"));
    assert!(!s.body.contains("Foreign") && !s.body.contains("Bakery"));
    assert_eq!(b.get("/clients/suggest?client_name=").await.body, "");
    assert_eq!(
        b.get("/clients/suggest?client_name=%25").await.body,
        "",
        "% is literal"
    );

    // the plain form: an exact name, or the one client whose name contains the text
    for typed in ["Florist <Rosa>", "rosa"] {
        let r = b
            .get(&format!(
                "/review?client_name={}",
                url::form_urlencoded::byte_serialize(typed.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(shown(&r.body, rosa_item), "{typed}");
        assert!(
            !shown(&r.body, bakery_item) && !shown(&r.body, lily_item),
            "{typed}"
        );
        assert!(
            r.body.contains("value=\"Florist &lt;Rosa&gt;\""),
            "the field names the client"
        );
    }
    // several matches: links to choose from, every item meanwhile
    let r = b.get("/review?client_name=florist").await;
    assert!(r.body.contains("Several clients match"));
    assert!(
        r.body
            .contains(&format!("href=\"/review?client={florist}\""))
    );
    assert!(r.body.contains(&format!("href=\"/review?client={fl2}\"")));
    assert!(!r.body.contains("Foreign"));
    assert!(shown(&r.body, bakery_item) && shown(&r.body, rosa_item));
    // nothing matches (another agency's client is nothing): said, every item shown
    let r = b.get("/review?client_name=Foreign").await;
    assert!(r.body.contains("No client’s name contains “Foreign”"));
    assert!(shown(&r.body, bakery_item));
    // an empty field is every client; links and paging keep the resolved id
    let r = b.get("/review?client_name=&platform=facebook").await;
    assert!(shown(&r.body, rosa_item) && shown(&r.body, lily_item) && !shown(&r.body, bakery_item));
    let r = b
        .get("/review?client_name=Florist+Lily&platform=facebook")
        .await;
    assert!(shown(&r.body, lily_item) && !shown(&r.body, rosa_item));
    assert!(
        r.body.contains(&format!(
            "name=\"back\" value=\"/review?client={fl2}&amp;platform=facebook\""
        )),
        "{}",
        r.body
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_queue_loads_a_cards_edit_form_when_it_is_opened(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x], false, slot()).await;
    let (mut b, _) = logged_in(&pool, "reviewer@acme.test").await;
    let queue = b.get("/review").await;
    // the card's edit section: fetched by htmx on opening; without JavaScript, the post's page
    assert!(queue.body.contains(&format!(
        "data-hx-get=\"/items/{item}/edit-form?back=%2Freview\""
    )));
    assert!(
        queue
            .body
            .contains(&format!("href=\"/items/{item}#item-{item}-caption\""))
    );
    assert!(!queue.body.contains(&format!("id=\"item-{item}-caption\"")));
    let page = b.get(&format!("/items/{item}")).await;
    assert!(
        page.body.contains(&format!("id=\"item-{item}-caption\"")),
        "the item page has the form"
    );
    let frag = b
        .request(
            axum::http::Method::GET,
            &format!("/items/{item}/edit-form?back=%2Freview"),
            None,
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(frag.status, StatusCode::OK);
    assert!(!frag.body.contains("<html"));
    assert!(
        frag.body
            .contains(&format!("data-hx-post=\"/items/{item}/edit\""))
    );
    assert!(frag.body.contains("name=\"back\" value=\"/review\""));
    assert!(frag.body.contains("Balanced caption"));
    // a viewer may not edit; another agency's item does not exist
    let (mut v, _) = logged_in(&pool, "viewer@acme.test").await;
    assert_eq!(
        v.get(&format!("/items/{item}/edit-form")).await.status,
        StatusCode::FORBIDDEN
    );
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let (mut o, _) = logged_in(&pool, "owner@other.test").await;
    assert_eq!(
        o.get(&format!("/items/{item}/edit-form")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_queue_shows_changes_made_anywhere_at_once(pool: PgPool) {
    // cards are remembered between requests; a change made by this process, by another admin
    // process or by a worker shows on the next request all the same
    let (c, x, _) = acme(&pool).await;
    let item = pending_item(&pool, c, &[x], false, slot()).await;
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let first = b.get("/review").await;
    assert!(first.body.contains("Balanced caption") && first.body.contains("Bakery"));
    // remembered: a write that leaves the version as it was is not read again (every writer
    // sets `updated_at`; this one pretends not to)
    sqlx::query("UPDATE content_items SET caption = 'Unversioned caption' WHERE id = $1")
        .bind(item)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(b.get("/review").await.body, first.body);
    assert!(
        first
            .body
            .contains(&format!("name=\"_csrf\" value=\"{csrf}\""))
    );
    assert!(
        first.body.contains("<span class=\"when\">in 4 h"),
        "{}",
        first.body
    );
    // others looking at the same remembered card through the same process see it with their own
    // session's token, and only with the actions their role allows
    let mut admin = b.sharing();
    let admin_csrf = admin.logged_in("admin@acme.test").await;
    let theirs = admin.get("/review").await;
    assert!(
        theirs
            .body
            .contains(&format!("name=\"_csrf\" value=\"{admin_csrf}\""))
    );
    assert!(!theirs.body.contains(&csrf));
    assert!(theirs.body.contains("data-action=\"approve\""));
    let mut viewer = b.sharing();
    viewer.logged_in("viewer@acme.test").await;
    let read_only = viewer.get("/review").await;
    assert!(read_only.body.contains("Balanced caption"));
    assert!(!read_only.body.contains("data-action=\"approve\""));
    assert!(
        b.get("/review")
            .await
            .body
            .contains("data-action=\"approve\"")
    );

    assert_eq!(
        edit(&mut b, item, &csrf, "Rye on Fridays", LINK)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let edited = b.get("/review").await;
    assert!(edited.body.contains("Rye on Fridays"));

    // elsewhere: another process edits the caption and renames the client
    sqlx::query(
        "UPDATE content_items SET caption = 'Spelt on Saturdays', updated_at = now() WHERE id = $1",
    )
    .bind(item)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE clients SET name = 'Corner Bakery', updated_at = now() WHERE id = $1")
        .bind(c)
        .execute(&pool)
        .await
        .unwrap();
    let elsewhere = b.get("/review").await;
    assert!(elsewhere.body.contains("Spelt on Saturdays"));
    assert!(!elsewhere.body.contains("Rye on Fridays"));
    assert!(elsewhere.body.contains("Corner Bakery"));

    // an item that leaves the queue leaves the page
    sqlx::query("UPDATE content_items SET state = 'rejected', rejection_reason = 'off brand', updated_at = now() WHERE id = $1")
        .bind(item)
        .execute(&pool)
        .await
        .unwrap();
    let gone = b.get("/review").await;
    assert!(!gone.body.contains(&format!("id=\"item-{item}\"")));
}
