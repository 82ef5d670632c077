//! The kill-switch page: who may engage what, the server-side confirmation, the banner on every
//! page, disengaging, and tenant isolation.

mod common;

use axum::http::StatusCode;
use common::{agency_id, client, logged_in, user};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::domain::Role;

async fn engaged(pool: &PgPool) -> Vec<(Uuid, String)> {
    sqlx::query_as(
        "SELECT id, scope FROM kill_switches WHERE disengaged_at IS NULL ORDER BY engaged_at",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn engage_form<'a>(csrf: &'a str, scope: &'a str, reason: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("_csrf", csrf),
        ("scope", scope),
        ("reason", reason),
        ("confirm", "yes"),
    ]
}

/// Make `email` an operator of the deployment, as `autosocial-admin operator grant` does.
async fn grant_operator(pool: &PgPool, email: &str) {
    let mut tx = pool.begin().await.unwrap();
    autosocial_core::authority::grant(
        &mut tx,
        &autosocial_core::audit::Actor::system("operator (CLI)"),
        email,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn admins_switch_their_agency_and_only_the_operator_reaches_every_agency(pool: PgPool) {
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        user(&pool, "Acme", email, role).await;
        let (mut b, csrf) = logged_in(&pool, email).await;
        assert_eq!(
            b.get("/switches").await.status,
            StatusCode::OK,
            "{role} GET"
        );
        let admin = role.allows(Role::Admin);
        let r = b
            .post("/switches", &engage_form(&csrf, "agency", "maintenance"))
            .await;
        assert_eq!(
            r.status,
            if admin {
                StatusCode::SEE_OTHER
            } else {
                StatusCode::FORBIDDEN
            },
            "{role} engage agency: {}",
            r.body
        );
        // not even an owner stops every agency, or a platform for every agency
        let r = b
            .post("/switches", &engage_form(&csrf, "global", "incident"))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} engage global");
        let mut form = engage_form(&csrf, "platform_all", "incident");
        form.push(("platform", "x"));
        let r = b.post("/switches", &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} engage X for all");
        let page = b.get("/switches").await;
        assert!(
            !page.body.contains("value=\"global\""),
            "{role} is offered global"
        );
        assert!(!page.body.contains("value=\"platform_all\""));
        for (id, scope) in engaged(&pool).await {
            let r = b
                .post(&format!("/switches/{id}/disengage"), &[("_csrf", &csrf)])
                .await;
            assert_eq!(
                r.status,
                if admin {
                    StatusCode::SEE_OTHER
                } else {
                    StatusCode::FORBIDDEN
                },
                "{role} disengage {scope}"
            );
        }
        if admin {
            assert!(engaged(&pool).await.is_empty());
        }
    }

    // the operator (granted by the CLI only), whatever their role in an agency
    user(&pool, "Acme", "ops@acme.test", Role::Viewer).await;
    grant_operator(&pool, "ops@acme.test").await;
    let (mut ops, ops_csrf) = logged_in(&pool, "ops@acme.test").await;
    let page = ops.get("/switches").await;
    assert!(page.body.contains("value=\"global\""));
    assert!(
        !page.body.contains("value=\"agency\""),
        "a viewer of the agency still does not switch it"
    );
    let r = ops
        .post(
            "/switches",
            &engage_form(&ops_csrf, "global", "deployment incident"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut form = engage_form(&ops_csrf, "platform_all", "X is down");
    form.push(("platform", "x"));
    let r = ops.post("/switches", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let wide: Vec<(String, Option<String>, Option<Uuid>)> = sqlx::query_as(
        "SELECT scope, platform, agency_id FROM kill_switches WHERE disengaged_at IS NULL ORDER BY engaged_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        wide,
        [
            ("global".to_owned(), None, None),
            ("platform".to_owned(), Some("x".to_owned()), None)
        ]
    );
    let r = ops
        .post("/switches", &engage_form(&ops_csrf, "agency", "no"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // an owner sees them and why, not who engaged them, and cannot disengage them
    let (mut owner, owner_csrf) = logged_in(&pool, "owner@acme.test").await;
    let page = owner.get("/switches").await;
    assert!(page.body.contains("deployment incident") && page.body.contains("X (all agencies)"));
    assert!(!page.body.contains("ops@acme.test"), "{}", page.body);
    assert!(
        page.body.contains("the deployment&#39;s operator")
            || page.body.contains("the deployment's operator")
    );
    for (id, _) in engaged(&pool).await {
        let r = owner
            .post(
                &format!("/switches/{id}/disengage"),
                &[("_csrf", &owner_csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = ops
            .post(
                &format!("/switches/{id}/disengage"),
                &[("_csrf", &ops_csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
    assert!(engaged(&pool).await.is_empty());
    // deployment-wide switches are audited in the system chain, not an agency's
    let chains: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "SELECT action, agency_id FROM audit_log WHERE action LIKE 'kill_switch.%' AND actor_label = 'ops@acme.test' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(chains.len(), 4);
    assert!(
        chains.iter().all(|(_, agency)| agency.is_none()),
        "{chains:?}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn engaging_needs_a_reason_and_the_confirmation_box(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let (mut b, csrf) = logged_in(&pool, "admin@acme.test").await;
    let r = b
        .post(
            "/switches",
            &[
                ("_csrf", csrf.as_str()),
                ("scope", "agency"),
                ("reason", "   "),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Give a reason"), "{}", r.body);
    assert!(r.body.contains("Tick the box"), "{}", r.body);
    let r = b
        .post(
            "/switches",
            &[
                ("_csrf", csrf.as_str()),
                ("scope", "client"),
                ("reason", "bad posts"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose the client"), "{}", r.body);
    assert!(r.body.contains("bad posts"), "the typed reason is kept");
    assert!(engaged(&pool).await.is_empty());
    // the same target twice is refused with a message
    let form = engage_form(&csrf, "platform", "API trouble");
    let mut form = form;
    form.push(("platform", "x"));
    assert_eq!(
        b.post("/switches", &form).await.status,
        StatusCode::SEE_OTHER
    );
    let r = b.post("/switches", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already engaged"));
    assert_eq!(engaged(&pool).await.len(), 1);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_engaged_switch_shows_a_banner_on_every_page_until_disengaged(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let (mut admin, csrf) = logged_in(&pool, "admin@acme.test").await;
    let (mut viewer, _) = logged_in(&pool, "viewer@acme.test").await;
    assert!(
        !viewer
            .get("/clients")
            .await
            .body
            .contains("Publishing is stopped")
    );

    let bakery_s = bakery.to_string();
    let mut form = engage_form(&csrf, "client", "The client asked us to pause");
    form.push(("client_id", &bakery_s));
    let r = admin.post("/switches", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/switches"));

    for page in [
        "/clients",
        &format!("/clients/{bakery}"),
        "/fleet",
        "/switches",
    ] {
        let r = viewer.get(page).await;
        assert_eq!(r.status, StatusCode::OK, "{page}");
        assert!(
            r.body.contains("Publishing is stopped"),
            "{page}: no banner"
        );
        assert!(r.body.contains("Client Bakery"), "{page}");
        assert!(r.body.contains("The client asked us to pause"), "{page}");
    }
    // an htmx partial carries no banner (its page already has one)
    let partial = viewer
        .request(
            axum::http::Method::GET,
            "/clients",
            None,
            &[("hx-request", "true")],
        )
        .await;
    assert!(!partial.body.contains("Publishing is stopped"));
    assert_eq!(partial.headers.get("vary").unwrap(), "HX-Request");

    // the list says who, when and why; a viewer gets no buttons
    let list = viewer.get("/switches").await;
    assert!(list.body.contains("admin@acme.test"));
    assert!(list.body.contains("(UTC)"));
    assert!(!list.body.contains("/disengage"));

    let (id, _) = engaged(&pool).await[0].clone();
    let r = admin
        .post(&format!("/switches/{id}/disengage"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        !viewer
            .get("/clients")
            .await
            .body
            .contains("Publishing is stopped")
    );
    let history = viewer.get("/switches").await;
    assert!(history.body.contains("Recently disengaged"));
    assert!(history.body.contains("The client asked us to pause"));

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'kill_switch.%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(actions, ["kill_switch.engage", "kill_switch.disengage"]);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn another_agencys_switches_authors_and_targets_are_never_reached(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let their_client = client(&pool, "Other", "Their client").await;
    let (mut theirs, their_csrf) = logged_in(&pool, "owner@other.test").await;
    let r = theirs
        .post(
            "/switches",
            &engage_form(&their_csrf, "agency", "their own reason"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let (their_switch, _) = engaged(&pool).await[0].clone();

    let (mut b, csrf) = logged_in(&pool, "owner@acme.test").await;
    // not ours: not listed, no banner, cannot be disengaged
    let page = b.get("/switches").await;
    assert!(!page.body.contains("their own reason"));
    assert!(!page.body.contains("Publishing is stopped"));
    let r = b
        .post(
            &format!("/switches/{their_switch}/disengage"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = b
        .post(
            &format!("/switches/{}/disengage", Uuid::now_v7()),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // nor can their client or an unknown account be targeted
    let their_client_s = their_client.to_string();
    let mut form = engage_form(&csrf, "client", "nope");
    form.push(("client_id", &their_client_s));
    assert_eq!(
        b.post("/switches", &form).await.status,
        StatusCode::NOT_FOUND
    );
    let unknown = Uuid::now_v7().to_string();
    let mut form = engage_form(&csrf, "account", "nope");
    form.push(("account_id", &unknown));
    assert_eq!(
        b.post("/switches", &form).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(engaged(&pool).await.len(), 1);

    // an owner cannot stop every agency: that is the operator's
    let r = b
        .post(
            "/switches",
            &engage_form(&csrf, "global", "deployment incident"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(engaged(&pool).await.len(), 1);
    // a global switch (engaged before this rule, by an agency's owner) concerns everyone: both
    // agencies see it and why, neither sees who engaged it
    let acme = agency_id(&pool, "Acme").await;
    let acme_owner: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'owner@acme.test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO kill_switches (id, scope, reason, engaged_by) VALUES ($1, 'global', 'deployment incident', $2)",
    )
    .bind(Uuid::now_v7())
    .bind(acme_owner)
    .execute(&pool)
    .await
    .unwrap();
    let page = theirs.get("/switches").await;
    assert!(page.body.contains("deployment incident"));
    assert!(
        !page.body.contains("owner@acme.test"),
        "another agency's member is never shown (not {acme}'s owner)"
    );
    assert!(
        theirs
            .get("/clients")
            .await
            .body
            .contains("deployment incident")
    );
}
