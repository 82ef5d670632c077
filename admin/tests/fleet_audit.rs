//! The fleet page (worker presence, queue, failed jobs with retry and discard) and the audit log
//! page (filters, keyset pages, hash-chain verification).

mod common;

use axum::http::{Method, StatusCode};
use common::{Browser, agency_id, state, user};
use sqlx::PgPool;

use autosocial_admin::app::AppState;
use autosocial_admin::config::WebArgs;
use autosocial_core::domain::Role;
use autosocial_core::fleet;
use autosocial_core::testing::PrivateRedis;

const ROLES: [(&str, Role); 4] = [
    ("viewer@acme.test", Role::Viewer),
    ("reviewer@acme.test", Role::Reviewer),
    ("admin@acme.test", Role::Admin),
    ("owner@acme.test", Role::Owner),
];

async fn logged_in(state: AppState, email: &str) -> (Browser, String) {
    let mut b = Browser::new(state);
    let csrf = b.logged_in(email).await;
    (b, csrf)
}

/// A failed job of `agency` (or a system job for `None`).
async fn failed_job(
    pool: &PgPool,
    agency: Option<uuid::Uuid>,
    error: &str,
    key: Option<&str>,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO jobs (kind, state, agency_id, attempts, max_attempts, last_error, finished_at, unique_key)
         VALUES ('publish', 'failed', $1, 3, 3, $2, now(), $3) RETURNING id",
    )
    .bind(agency)
    .bind(error)
    .bind(key)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn job_state(pool: &PgPool, id: i64) -> (String, i32) {
    sqlx::query_as("SELECT state, attempts FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_fleet_shows_live_workers_and_failed_jobs_and_retry_requeues(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let acme = agency_id(&pool, "Acme").await;
    // a Redis of its own: a fake worker in the shared one would make other tests' engage wait
    let redis_server = PrivateRedis::start();
    let redis = autosocial_core::redis::connect(&redis_server.url().into())
        .await
        .unwrap();
    let worker = format!("test-worker-{}", uuid::Uuid::now_v7().simple());
    fleet::beat(
        &redis,
        &worker,
        &[
            ("host", "fleet-test-host".into()),
            ("pid", "4242".into()),
            ("version", "9.9.9".into()),
            ("in_flight", "3".into()),
        ],
    )
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO jobs (kind, state, agency_id, run_at) VALUES ('generate', 'available', $1, now() - interval '90 seconds')",
    )
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    let failed = failed_job(
        &pool,
        Some(acme),
        "permanent: the platform said the caption is too long",
        None,
    )
    .await;
    let other = failed_job(&pool, Some(acme), "permanent: media rejected", None).await;

    let state = AppState::new(
        pool.clone(),
        redis.clone(),
        autosocial_core::testing::vault(),
        WebArgs::for_tests(),
    );
    let (mut b, csrf) = logged_in(state, "admin@acme.test").await;
    let page = b.get("/fleet").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&worker), "worker listed");
    assert!(page.body.contains("fleet-test-host"));
    assert!(
        page.body.contains("caption is too long"),
        "failed job with its error"
    );
    assert!(
        page.body.contains("data-hx-trigger=\"every 5s\""),
        "the live part polls"
    );
    assert!(page.body.contains("generate"), "queue depth by kind");
    assert!(
        page.body.contains("min") || page.body.contains(" s"),
        "lag shown"
    );

    // the polled partial: no page shell, and caches told it varies
    let live = b
        .request(Method::GET, "/fleet/live", None, &[("hx-request", "true")])
        .await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(!live.body.contains("<html"));
    assert!(live.body.contains(&worker));
    assert_eq!(live.headers.get("vary").unwrap(), "HX-Request");

    let r = b
        .post(&format!("/fleet/jobs/{failed}/retry"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(job_state(&pool, failed).await, ("available".into(), 0));
    let r = b
        .post(&format!("/fleet/jobs/{other}/discard"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(job_state(&pool, other).await.0, "discarded");
    // neither is failed any more: a second click changes nothing and says so
    let r = b
        .post(&format!("/fleet/jobs/{other}/retry"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(job_state(&pool, other).await.0, "discarded");
    let page = b.get("/fleet").await;
    assert!(!page.body.contains("caption is too long"));

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'job.%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(actions, ["job.retry", "job.discard"]);
    fleet::leave(&redis, &worker).await.unwrap();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn retrying_work_that_is_already_queued_again_is_refused(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let acme = agency_id(&pool, "Acme").await;
    let failed = failed_job(&pool, Some(acme), "boom", Some("refresh:abc")).await;
    sqlx::query(
        "INSERT INTO jobs (kind, agency_id, unique_key) VALUES ('publish', $1, 'refresh:abc')",
    )
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    let (mut b, csrf) = logged_in(state(pool.clone()).await, "admin@acme.test").await;
    let r = b
        .post(&format!("/fleet/jobs/{failed}/retry"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("already queued"));
    assert_eq!(job_state(&pool, failed).await.0, "failed");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn fleet_roles_and_tenancy(pool: PgPool) {
    for (email, role) in ROLES {
        user(&pool, "Acme", email, role).await;
    }
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let other = agency_id(&pool, "Other").await;
    let theirs = failed_job(&pool, Some(other), "their failure", None).await;
    let system = failed_job(&pool, None, "sweep failed: system detail", None).await;
    for (email, role) in ROLES {
        let ours = failed_job(&pool, Some(acme), "our failure", None).await;
        let (mut b, csrf) = logged_in(state(pool.clone()).await, email).await;
        let page = b.get("/fleet").await;
        assert_eq!(page.status, StatusCode::OK, "{role} GET /fleet");
        assert_eq!(b.get("/fleet/live").await.status, StatusCode::OK);
        assert!(page.body.contains("our failure"));
        assert!(
            !page.body.contains("their failure"),
            "{role} sees another agency's job"
        );
        // system jobs: the deployment's operator only, never an agency's role
        assert!(!page.body.contains("system detail"), "{role}");
        let admin = role.allows(Role::Admin);
        let r = b
            .post(&format!("/fleet/jobs/{ours}/retry"), &[("_csrf", &csrf)])
            .await;
        assert_eq!(
            r.status,
            if admin {
                StatusCode::SEE_OTHER
            } else {
                StatusCode::FORBIDDEN
            },
            "{role} retry"
        );
        for action in ["retry", "discard"] {
            let r = b
                .post(
                    &format!("/fleet/jobs/{theirs}/{action}"),
                    &[("_csrf", &csrf)],
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{role} {action} another agency's job"
            );
            let r = b
                .post(
                    &format!("/fleet/jobs/{system}/{action}"),
                    &[("_csrf", &csrf)],
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{role} {action} a system job"
            );
        }
    }
    assert_eq!(job_state(&pool, theirs).await.0, "failed");
    assert_eq!(job_state(&pool, system).await.0, "failed");
    // the operator (granted by the CLI), a viewer in their agency, sees and acts on system jobs;
    // it is audited in the system chain
    user(&pool, "Acme", "ops@acme.test", Role::Viewer).await;
    let mut tx = pool.begin().await.unwrap();
    autosocial_core::authority::grant(
        &mut tx,
        &autosocial_core::audit::Actor::system("operator (CLI)"),
        "ops@acme.test",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (mut ops, csrf) = logged_in(state(pool.clone()).await, "ops@acme.test").await;
    let page = ops.get("/fleet").await;
    assert!(page.body.contains("system detail"));
    assert!(!page.body.contains("their failure"));
    let r = ops
        .post(
            &format!("/fleet/jobs/{system}/discard"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(job_state(&pool, system).await.0, "discarded");
    let chain: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT agency_id FROM audit_log WHERE action = 'job.discard' AND target_id = $1",
    )
    .bind(system.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(chain, None);
    // but not the agency's own jobs, which need an admin of it
    let ours = failed_job(&pool, Some(acme), "our failure", None).await;
    let r = ops
        .post(&format!("/fleet/jobs/{ours}/retry"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn failed_jobs_are_paged_newest_first(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let acme = agency_id(&pool, "Acme").await;
    sqlx::query(
        "INSERT INTO jobs (kind, state, agency_id, attempts, max_attempts, last_error, finished_at)
         SELECT 'publish', 'failed', $1, 1, 1, 'failure number ' || n || '.', now() - make_interval(secs => n)
         FROM generate_series(1, 30) AS n",
    )
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    let (mut b, _) = logged_in(state(pool.clone()).await, "admin@acme.test").await;
    let first = b.get("/fleet").await;
    assert!(first.body.contains("failure number 1."));
    assert!(first.body.contains("failure number 25."));
    assert!(!first.body.contains("failure number 26."));
    let marker = "href=\"/fleet?";
    let start = first.body.find(marker).expect("a next page link") + "href=\"".len();
    let link = first.body[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = b.get(&link).await;
    assert_eq!(second.status, StatusCode::OK, "{link}");
    assert!(second.body.contains("failure number 26."));
    assert!(second.body.contains("failure number 30."));
    assert!(!second.body.contains("failure number 25."));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_audit_log_is_for_admins_filters_and_verifies_its_chain(pool: PgPool) {
    for (email, role) in ROLES {
        user(&pool, "Acme", email, role).await;
    }
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    for (email, role) in ROLES {
        let (mut b, _) = logged_in(state(pool.clone()).await, email).await;
        let expect = if role.allows(Role::Admin) {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(b.get("/audit").await.status, expect, "{role} GET /audit");
    }
    let (mut theirs, _) = logged_in(state(pool.clone()).await, "owner@other.test").await;
    let (mut b, _) = logged_in(state(pool.clone()).await, "owner@acme.test").await;

    let page = b.get("/audit").await;
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE agency_id = $1")
        .bind(acme)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        page.body
            .contains(&format!("Chain verified: {entries} entries")),
        "{}",
        page.body
    );
    assert!(page.body.contains("auth.login"));
    assert!(page.body.contains("(UTC)"));
    assert!(
        !page.body.contains("owner@other.test"),
        "another agency's entries are not shown"
    );

    // filters: actor, action, target, dates
    let only_admin = b.get("/audit?actor=admin%40acme").await;
    assert!(only_admin.body.contains("admin@acme.test"));
    assert!(!only_admin.body.contains("viewer@acme.test"));
    let logins = b.get("/audit?action=auth.logout").await;
    assert!(logins.body.contains("No entry matches."));
    let today = chrono::Utc::now().date_naive();
    let dated = b.get(&format!("/audit?from={today}&to={today}")).await;
    assert!(dated.body.contains("auth.login"));
    let future = today + chrono::Days::new(2);
    assert!(
        b.get(&format!("/audit?from={future}"))
            .await
            .body
            .contains("No entry matches.")
    );
    let bad = b.get("/audit?from=yesterday").await;
    assert!(bad.body.contains("is not a date"));
    let admin_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'admin@acme.test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let by_target = b.get(&format!("/audit?target={admin_id}")).await;
    assert!(by_target.body.contains(&admin_id.to_string()));
    assert!(!by_target.body.contains("viewer@acme.test"));

    // keyset pages of 50
    let actor = autosocial_core::audit::Actor::system("test");
    let mut tx = pool.begin().await.unwrap();
    for n in 0..60 {
        autosocial_core::audit::append(
            &mut tx,
            &actor,
            autosocial_core::audit::Entry::new(Some(acme), "test.entry")
                .target("thing", format!("thing-{n:03}")),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let first = b.get("/audit?action=test.entry").await;
    assert!(first.body.contains("thing-059") && first.body.contains("thing-010"));
    assert!(!first.body.contains("thing-009"));
    let start = first.body.find("href=\"/audit?").expect("next page") + "href=\"".len();
    let link = first.body[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = b.get(&link).await;
    assert!(second.body.contains("thing-009") && second.body.contains("thing-000"));
    assert!(!second.body.contains("thing-010"));

    // tamper with one row (as the superuser, around the append-only trigger): the page says where
    let victim: i64 = sqlx::query_scalar(
        "SELECT id FROM audit_log WHERE agency_id = $1 AND action = 'test.entry' ORDER BY id LIMIT 1 OFFSET 5",
    )
    .bind(acme)
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET target_id = 'forged' WHERE id = $1")
        .bind(victim)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let broken = b.get("/audit").await;
    assert!(
        broken
            .body
            .contains(&format!("Chain broken at entry #{victim}")),
        "{}",
        broken.body
    );
    // another agency's chain is unaffected
    assert!(theirs.get("/audit").await.body.contains("Chain verified"));
}
