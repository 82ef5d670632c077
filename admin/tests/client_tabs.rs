//! A client's tabs: Accounts (disconnect holds pending posts), Pipeline, Logs (escaped, keyset
//! pages), the tab navigation on the Overview, roles and tenant isolation.

mod common;

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use common::{Browser, agency_id, client, state, user};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::domain::Role;
use autosocial_core::testing::build;

async fn account(pool: &PgPool, agency: Uuid, client: Uuid, name: &str) -> Uuid {
    build::account(agency, client)
        .display_name(name)
        .tokens(vec![1, 2], None, "k1")
        .token_expires_at(Utc::now() + TimeDelta::days(3))
        .insert(pool)
        .await
}

async fn item(pool: &PgPool, agency: Uuid, client: Uuid, state: &str, caption: &str) -> Uuid {
    build::item(agency, client)
        .state(state.parse().unwrap())
        .slot_at(Utc::now() + TimeDelta::days(1))
        .caption(caption)
        .hashtags(&["bread"])
        .approved_at(Utc::now())
        .insert(pool)
        .await
}

/// An approved item for `acct`, scheduled as approval does (publication + publish job).
async fn scheduled(pool: &PgPool, agency: Uuid, client: Uuid, acct: Uuid) -> Uuid {
    let it = item(pool, agency, client, "approved", "Scheduled bread").await;
    sqlx::query(
        "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
    )
    .bind(it)
    .bind(acct)
    .bind(agency)
    .execute(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    autosocial_core::publishing::schedule(&mut conn, agency, it)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT id FROM publications WHERE item_id = $1")
        .bind(it)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn disconnecting_holds_pending_posts_and_cancels_their_jobs(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    user(&pool, "Acme", "reviewer@acme.test", Role::Reviewer).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let a = account(&pool, acme, bakery, "Bakery <page>").await;
    let keep = account(&pool, acme, bakery, "Other page").await;
    let p1 = scheduled(&pool, acme, bakery, a).await;
    let p2 = scheduled(&pool, acme, bakery, a).await;
    let untouched = scheduled(&pool, acme, bakery, keep).await;

    // a reviewer sees the tab without the action and may not disconnect
    let mut r_b = Browser::new(state(pool.clone()).await);
    let rcsrf = r_b.logged_in("reviewer@acme.test").await;
    let page = r_b.get(&format!("/clients/{bakery}/accounts")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Bakery &lt;page&gt;"), "escaped name");
    assert!(
        page.body.contains("in 2 d") || page.body.contains("in 3 d"),
        "relative expiry"
    );
    assert!(!page.body.contains("/disconnect"));
    let uri = format!("/clients/{bakery}/accounts/{a}/disconnect");
    assert_eq!(
        r_b.post(&uri, &[("_csrf", &rcsrf)]).await.status,
        StatusCode::FORBIDDEN
    );
    // another agency: 404, nothing changes
    let mut o = Browser::new(state(pool.clone()).await);
    let ocsrf = o.logged_in("owner@other.test").await;
    assert_eq!(
        o.post(&uri, &[("_csrf", &ocsrf)]).await.status,
        StatusCode::NOT_FOUND
    );
    // the right account under another client id of the same agency: 404 as well
    let cafe = client(&pool, "Acme", "Cafe").await;
    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in("admin@acme.test").await;
    assert_eq!(
        b.post(
            &format!("/clients/{cafe}/accounts/{a}/disconnect"),
            &[("_csrf", &csrf)]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let status: String = sqlx::query_scalar("SELECT status FROM social_accounts WHERE id = $1")
        .bind(a)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "active");

    let page = b.get(&format!("/clients/{bakery}/accounts")).await;
    assert!(page.body.contains(&format!("action=\"{uri}\"")));
    assert!(
        page.body
            .contains(&format!("action=\"/clients/{bakery}/onboarding\""))
    );
    let r = b.post(&uri, &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (status, ct_len): (String, i32) =
        sqlx::query_as("SELECT status, length(access_token_ct) FROM social_accounts WHERE id = $1")
            .bind(a)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "disconnected");
    assert_eq!(ct_len, 2, "the ciphertext is kept");
    for p in [p1, p2] {
        let (state, reason): (String, Option<String>) =
            sqlx::query_as("SELECT state, held_reason FROM publications WHERE id = $1")
                .bind(p)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(state, "held");
        assert_eq!(reason.as_deref(), Some("the account was disconnected"));
        let job: String = sqlx::query_scalar(
            "SELECT state FROM jobs WHERE kind = 'publish' AND unique_key = 'publish:' || $1::text",
        )
        .bind(p)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(job, "cancelled");
    }
    let other_state: String = sqlx::query_scalar("SELECT state FROM publications WHERE id = $1")
        .bind(untouched)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(other_state, "scheduled");
    let audit: serde_json::Value = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'account.disconnect' AND target_id = $1",
    )
    .bind(a.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audit["held_publications"], 2);
    // again: nothing more happens (no second audit entry)
    assert_eq!(
        b.post(&uri, &[("_csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'account.disconnect'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 1);
    // a reconnect releases the held posts (core's upsert after OAuth)
    let mut conn = pool.acquire().await.unwrap();
    let released = autosocial_core::publishing::release_held(&mut conn, acme, None, Some(a))
        .await
        .unwrap();
    assert_eq!(released, 2);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_pipeline_counts_items_by_state_with_previews(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let a = account(&pool, acme, bakery, "Main").await;
    for i in 0..7 {
        item(
            &pool,
            acme,
            bakery,
            "pending_review",
            &format!("Review me {i}"),
        )
        .await;
    }
    scheduled(&pool, acme, bakery, a).await;
    let other = agency_id(&pool, "Other").await;
    let foreign = client(&pool, "Other", "Foreign").await;
    item(&pool, other, foreign, "pending_review", "Foreign post").await;

    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("viewer@acme.test").await;
    let r = b.get(&format!("/clients/{bakery}/pipeline")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<td data-state=\"pending_review\">7</td>"));
    assert!(r.body.contains("<td data-state=\"approved\">1</td>"));
    assert!(r.body.contains("<td data-state=\"rejected\">0</td>"));
    // the latest five per state, linked to their item page
    assert_eq!(
        r.body.matches("Review me").count(),
        0,
        "no target: no preview"
    );
    assert_eq!(r.body.matches("No target account.").count(), 5);
    // the scheduled one has a Sandbox preview with its length
    assert!(r.body.contains("Scheduled bread\n\n#bread"), "{}", r.body);
    assert!(r.body.contains("/63206"));
    assert!(!r.body.contains("Foreign"));
    assert!(r.body.contains(&format!(
        "data-hx-sse_connect=\"/live/events?client={bakery}\""
    )));
    let frag = b
        .request(
            axum::http::Method::GET,
            &format!("/clients/{bakery}/pipeline/live"),
            None,
            &[("hx-request", "true")],
        )
        .await;
    assert!(
        frag.body
            .contains("<td data-state=\"pending_review\">7</td>")
    );
    assert!(!frag.body.contains("<html"));

    let mut o = Browser::new(state(pool.clone()).await);
    o.logged_in("owner@other.test").await;
    for tab in ["accounts", "pipeline", "pipeline/live", "logs", "calendar"] {
        assert_eq!(
            o.get(&format!("/clients/{bakery}/{tab}")).await.status,
            StatusCode::NOT_FOUND,
            "{tab}"
        );
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn logs_are_newest_first_escaped_and_paged(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let acme = agency_id(&pool, "Acme").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let a = account(&pool, acme, bakery, "Main").await;
    let p = scheduled(&pool, acme, bakery, a).await;
    for i in 0..55 {
        sqlx::query(
            "INSERT INTO post_logs (agency_id, publication_id, attempt_id, action, outcome, status_code, error, response)
             VALUES ($1, $2, $3, 'publish', 'permanent', 400, $4, '{\"error\":\"<img src=x onerror=alert(1)>\"}')",
        )
        .bind(acme)
        .bind(p)
        .bind(Uuid::now_v7())
        .bind(format!("attempt {i:02} <b>refused</b>"))
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("viewer@acme.test").await;
    let r = b.get(&format!("/clients/{bakery}/logs")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("attempt 54 &lt;b&gt;refused&lt;/b&gt;"));
    assert!(!r.body.contains("<b>refused</b>"));
    assert!(!r.body.contains("<img src=x"));
    assert!(r.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert_eq!(r.body.matches("<tr>").count(), 51, "header + 50 rows");
    let newest = r.body.find("attempt 54").unwrap();
    let older = r.body.find("attempt 53").unwrap();
    assert!(newest < older, "newest first");
    assert!(!r.body.contains("attempt 04 "));
    let start = r.body.find("logs?before=").expect("a next page link");
    let next: String = r.body[start..].split('"').next().unwrap().to_owned();
    let r2 = b.get(&format!("/clients/{bakery}/{next}")).await;
    assert_eq!(r2.body.matches("<tr>").count(), 6);
    assert!(r2.body.contains("attempt 04 ") && r2.body.contains("attempt 00 "));
    assert!(!r2.body.contains("logs?before="));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_role_reads_every_tab_and_the_overview_links_them(pool: PgPool) {
    let bakery = {
        user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
        client(&pool, "Acme", "Bakery").await
    };
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        if role != Role::Viewer {
            user(&pool, "Acme", email, role).await;
        }
        let mut b = Browser::new(state(pool.clone()).await);
        b.logged_in(email).await;
        for tab in ["", "/accounts", "/pipeline", "/logs", "/calendar"] {
            let r = b.get(&format!("/clients/{bakery}{tab}")).await;
            assert_eq!(r.status, StatusCode::OK, "{role} {tab}");
            assert!(r.body.contains("aria-label=\"Client sections\""), "{tab}");
            for link in [
                "brand",
                "rules",
                "onboarding",
                "accounts",
                "pipeline",
                "logs",
            ] {
                assert!(
                    r.body
                        .contains(&format!("href=\"/clients/{bakery}/{link}\"")),
                    "{tab} links {link}"
                );
            }
        }
    }
}
