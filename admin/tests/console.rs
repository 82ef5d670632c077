//! The console's login, sessions, CSRF, roles and tenant isolation, driven over HTTP in process.

mod common;

use axum::http::{Method, StatusCode};
use common::{Browser, PASSWORD, client, state, user};
use sqlx::PgPool;

use autosocial_core::domain::Role;

async fn client_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM clients")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn login_opens_a_session_and_logout_ends_it(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    // not logged in: the console sends you to the login page
    let r = b.get("/clients").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login?next=%2Fclients"));

    let r = b.login("owner@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/clients"));
    let page = b.get("/clients").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("owner@acme.test"));
    let session_cookie = b
        .cookies
        .get("autosocial_session")
        .cloned()
        .expect("session cookie set");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    // the database keeps only a hash of the cookie's token
    let raw: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sessions WHERE encode(id_hash, 'escape') LIKE '%' || $1 || '%'",
    )
    .bind(&session_cookie)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(raw, 0);

    let csrf = page.csrf();
    let r = b.post("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("autosocial_session"));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // replaying the old cookie does not work
    b.cookies
        .insert("autosocial_session".into(), session_cookie);
    assert_eq!(b.get("/clients").await.status, StatusCode::SEE_OTHER);

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        actions.contains(&"auth.login".to_string()) && actions.contains(&"auth.logout".to_string()),
        "{actions:?}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn each_login_gets_a_new_session_id(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("owner@acme.test").await;
    let first = b.cookies["autosocial_session"].clone();
    b.logged_in("owner@acme.test").await;
    assert_ne!(first, b.cookies["autosocial_session"]);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_wrong_password_or_unknown_account_is_refused_alike(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    let wrong = b.login("owner@acme.test", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Email or password is wrong."));
    let unknown = b.login("nobody@acme.test", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("Email or password is wrong."));
    assert!(!b.cookies.contains_key("autosocial_session"));
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(failed, 2);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn repeated_attempts_on_one_account_are_throttled(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    for _ in 0..5 {
        assert_eq!(
            b.login("owner@acme.test", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // the sixth, even with the right password, waits
    let r = b.login("owner@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());
    assert!(!b.cookies.contains_key("autosocial_session"));
    // another account is not affected
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    assert_eq!(
        b.login("admin@acme.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn login_needs_the_form_token(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    b.get("/login").await;
    let r = b
        .post(
            "/login",
            &[
                ("_csrf", "forged"),
                ("email", "owner@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("autosocial_session"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_idle_session_expires(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("owner@acme.test").await;
    sqlx::query("UPDATE sessions SET last_seen_at = now() - interval '61 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(b.get("/clients").await.status, StatusCode::SEE_OTHER);
    // and an absolute expiry ends even an active one
    b.logged_in("owner@acme.test").await;
    sqlx::query("UPDATE sessions SET created_at = now() - interval '13 hours', expires_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(b.get("/clients").await.status, StatusCode::SEE_OTHER);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn missing_or_wrong_csrf_is_403_and_changes_nothing(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let id = client(&pool, "Acme", "Bakery").await;
    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in("owner@acme.test").await;
    let form = |token: Option<&'static str>| {
        let mut f = vec![("name", "Forged"), ("timezone", "UTC")];
        if let Some(t) = token {
            f.push(("_csrf", t));
        }
        f
    };
    assert_eq!(
        b.post("/clients", &form(None)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.post("/clients", &form(Some("wrong-token"))).await.status,
        StatusCode::FORBIDDEN
    );
    let uri = format!("/clients/{id}");
    assert_eq!(
        b.post(&uri, &form(None)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.post(&format!("{uri}/status"), &[("action", "archive")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // the right token from a foreign site is refused too
    let with_token = [
        ("name", "Forged"),
        ("timezone", "UTC"),
        ("_csrf", csrf.as_str()),
    ];
    let cross = b
        .request(
            Method::POST,
            "/clients",
            Some(&with_token),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let foreign = b
        .request(
            Method::POST,
            "/clients",
            Some(&with_token),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(client_count(&pool).await, 1);
    let name: String = sqlx::query_scalar("SELECT name || status FROM clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "Bakeryactive");
    // the htmx header carries the token as well as the form field does
    let ok = b
        .request(
            Method::POST,
            "/clients",
            Some(&[("name", "Via header"), ("timezone", "UTC")]),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(client_count(&pool).await, 2);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn clients_are_created_edited_paused_with_field_messages(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in("owner@acme.test").await;

    let bad = b
        .post(
            "/clients",
            &[("_csrf", &csrf), ("name", ""), ("timezone", "Mars/Base")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("Enter the client&#39;s name.")
            || bad.body.contains("Enter the client's name."),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains("“Mars/Base” is not an IANA timezone name")
    );
    assert!(
        bad.body.contains("value=\"Mars/Base\""),
        "typed values are kept"
    );
    assert_eq!(client_count(&pool).await, 0);

    let r = b
        .post(
            "/clients",
            &[
                ("_csrf", &csrf),
                ("name", "  Bakery Bloom "),
                ("timezone", "Europe/Berlin"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let loc = r.location().unwrap().to_owned();
    let page = b.get(&loc).await;
    assert!(page.body.contains("Bakery Bloom") && page.body.contains("Europe/Berlin"));

    let dup = b
        .post(
            "/clients",
            &[
                ("_csrf", &csrf),
                ("name", "Bakery Bloom"),
                ("timezone", "UTC"),
            ],
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(dup.body.contains("already has a client with this name"));

    let edit = b
        .post(
            &loc,
            &[
                ("_csrf", &csrf),
                ("name", "Bakery Bloom GmbH"),
                ("timezone", "America/New_York"),
                ("status", "active"),
                ("auto_approve", "on"),
            ],
        )
        .await;
    assert_eq!(edit.status, StatusCode::SEE_OTHER);
    let row: (String, String, bool) =
        sqlx::query_as("SELECT name, timezone, auto_approve FROM clients")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        row,
        ("Bakery Bloom GmbH".into(), "America/New_York".into(), true)
    );

    let bad_edit = b
        .post(
            &loc,
            &[
                ("_csrf", &csrf),
                ("name", "X"),
                ("timezone", "Nowhere"),
                ("status", "gone"),
            ],
        )
        .await;
    assert_eq!(bad_edit.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unchanged: String = sqlx::query_scalar("SELECT name FROM clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        unchanged, "Bakery Bloom GmbH",
        "a refused edit changes nothing"
    );

    assert_eq!(
        b.post(
            &format!("{loc}/status"),
            &[("_csrf", &csrf), ("action", "pause")]
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    let status: String = sqlx::query_scalar("SELECT status FROM clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "paused");
    let list = b.get("/clients?status=paused").await;
    assert!(list.body.contains("Bakery Bloom GmbH"));
    let list = b.get("/clients?status=active").await;
    assert!(!list.body.contains("Bakery Bloom GmbH"));

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'client.%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(actions, ["client.create", "client.update", "client.status"]);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_client_list_pages_by_keyset_and_searches(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    for n in 0..120 {
        client(&pool, "Acme", &format!("Client {n:03}")).await;
    }
    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("owner@acme.test").await;
    let mut seen = Vec::new();
    let mut uri = "/clients".to_owned();
    loop {
        let page = b.get(&uri).await;
        for part in page.body.split("\">Client ").skip(1) {
            seen.push(format!("Client {}", &part[..3]));
        }
        match page
            .body
            .split("rel=\"next\"")
            .next()
            .and_then(|before| before.rsplit("href=\"").next())
        {
            Some(href) if page.body.contains("rel=\"next\"") => {
                uri = href.split('"').next().unwrap().replace("&amp;", "&")
            }
            _ => break,
        }
    }
    let expected: Vec<String> = (0..120).map(|n| format!("Client {n:03}")).collect();
    assert_eq!(seen, expected, "every client exactly once, in order");
    let found = b.get("/clients?q=Client+07").await;
    assert_eq!(found.body.matches("\">Client 07").count(), 10);
    // LIKE wildcards in the search are taken literally
    assert!(
        b.get("/clients?q=%25")
            .await
            .body
            .contains("No clients match.")
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn roles_limit_what_a_member_can_do(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    user(&pool, "Acme", "reviewer@acme.test", Role::Reviewer).await;
    let id = client(&pool, "Acme", "Bakery").await;
    for email in ["viewer@acme.test", "reviewer@acme.test"] {
        let mut b = Browser::new(state(pool.clone()).await);
        let csrf = b.logged_in(email).await;
        assert_eq!(b.get("/clients").await.status, StatusCode::OK);
        assert_eq!(
            b.get(&format!("/clients/{id}")).await.status,
            StatusCode::OK
        );
        assert_eq!(b.get("/clients/new").await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            b.get(&format!("/clients/{id}/edit")).await.status,
            StatusCode::FORBIDDEN
        );
        let r = b
            .post(
                "/clients",
                &[("_csrf", &csrf), ("name", "New"), ("timezone", "UTC")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = b
            .post(
                &format!("/clients/{id}/status"),
                &[("_csrf", &csrf), ("action", "archive")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(
            !b.get("/clients").await.body.contains("New client"),
            "no button for what the role cannot do"
        );
    }
    let row: (i64, String) = sqlx::query_as("SELECT count(*), min(status) FROM clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row, (1, "active".into()));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn another_agencys_client_is_404_on_every_client_route(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    user(&pool, "Beta", "owner@beta.test", Role::Owner).await;
    let theirs = client(&pool, "Beta", "Beta's client").await;
    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in("owner@acme.test").await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("name", "Hijacked"),
        ("timezone", "UTC"),
        ("action", "archive"),
    ];
    let gets = [
        format!("/clients/{theirs}"),
        format!("/clients/{theirs}/edit"),
    ];
    let posts = [
        format!("/clients/{theirs}"),
        format!("/clients/{theirs}/status"),
    ];
    for uri in &gets {
        let r = b.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {uri}");
        assert!(!r.body.contains("Beta"), "GET {uri} reveals nothing");
    }
    for uri in &posts {
        let r = b.post(uri, &form).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "POST {uri}");
    }
    assert!(
        !b.get("/clients?status=all")
            .await
            .body
            .contains("Beta&#39;s client")
    );
    let row: (String, String) = sqlx::query_as("SELECT name, status FROM clients WHERE id = $1")
        .bind(theirs)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row, ("Beta's client".into(), "active".into()));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn htmx_requests_get_the_partial_and_pages_carry_security_headers(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    b.logged_in("owner@acme.test").await;
    let full = b.get("/clients").await;
    assert!(full.body.starts_with("<!DOCTYPE html>"));
    assert!(
        full.body.contains("data-hx-headers_inherited="),
        "the CSRF header is set once for htmx"
    );
    let partial = b
        .request(Method::GET, "/clients", None, &[("hx-request", "true")])
        .await;
    assert!(!partial.body.contains("<html"));
    assert!(partial.body.contains("<h1>Clients</h1>"));
    assert_eq!(partial.headers["vary"], "HX-Request");
    let csp = full.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe")
    );
    assert_eq!(full.headers["x-content-type-options"], "nosniff");
    assert!(full.headers.contains_key("referrer-policy"));
    // the vendored htmx is served by us, cacheable for a year
    let src = full
        .body
        .split("<script src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let js = b.get(&src).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert!(js.body.contains("htmx"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn health_and_readiness(pool: PgPool) {
    let mut b = Browser::new(state(pool.clone()).await);
    assert_eq!(b.get("/healthz").await.status, StatusCode::OK);
    let ready = b.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, r#"{"database":true,"redis":true}"#);
}

/// Log in with `next` and return the answer (the login form's own token is used).
async fn login_with_next(b: &mut Browser, next: &str) -> common::Response {
    let token = b.get("/login").await.csrf();
    b.post(
        "/login",
        &[
            ("_csrf", &token),
            ("email", "owner@acme.test"),
            ("password", PASSWORD),
            ("next", next),
        ],
    )
    .await
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn after_login_only_a_path_on_this_console_is_followed(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    // one account logs in many times here: not what the throttle is tested with
    let mut web = autosocial_admin::config::WebArgs::for_tests();
    web.login_per_account_per_minute = 100;
    let state = common::state_with(pool.clone(), web).await;
    for hostile in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\\evil.example",
        "//evil.example",
        "https://evil.example/",
        "/\u{a0}/evil.example",
        "evil.example",
    ] {
        let mut b = Browser::new(state.clone());
        let r = login_with_next(&mut b, hostile).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{hostile:?}: {}", r.body);
        assert_eq!(r.location(), Some("/"), "{hostile:?}");
        assert!(b.cookies.contains_key("autosocial_session"), "{hostile:?}");
        // the login form does not carry it either
        let form = b
            .get(&format!(
                "/login?next={}",
                url::form_urlencoded::byte_serialize(hostile.as_bytes()).collect::<String>()
            ))
            .await;
        assert!(
            form.body.contains("name=\"next\" value=\"/\""),
            "{hostile:?}"
        );
    }
    // a path on this console is kept, in its parsed (percent-encoded) form
    let mut b = Browser::new(state.clone());
    let r = login_with_next(&mut b, "/calendar?view=week&date=2026-11-23").await;
    assert_eq!(r.location(), Some("/calendar?view=week&date=2026-11-23"));
    let mut b = Browser::new(state);
    let r = login_with_next(&mut b, "/clients?q=café").await;
    assert_eq!(r.location(), Some("/clients?q=caf%C3%A9"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_form_that_is_not_text_is_refused_naming_the_field(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in("owner@acme.test").await;
    for body in [
        format!("_csrf={csrf}&name=%FF%FE%FD&timezone=Europe%2FBerlin"),
        format!("_csrf={csrf}&name=Bakery%C3&timezone=Europe%2FBerlin"),
        format!("_csrf={csrf}&name=Bake%00ry&timezone=Europe%2FBerlin"),
    ] {
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/clients")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .header("origin", "http://127.0.0.1:8080")
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let r = b.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(r.body.contains("The field “name”"), "{}", r.body);
        assert!(r.body.contains("Nothing was changed"), "{}", r.body);
    }
    // raw bytes, not percent-encoded, likewise
    let mut raw = format!("_csrf={csrf}&timezone=UTC&name=").into_bytes();
    raw.extend_from_slice(&[0xc3, 0x28]);
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/clients")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("origin", "http://127.0.0.1:8080")
        .body(axum::body::Body::from(raw))
        .unwrap();
    assert_eq!(b.send(req).await.status, StatusCode::BAD_REQUEST);
    // and in a query string
    let r = b.get("/clients?q=%FF").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("The field “q”"), "{}", r.body);
    assert_eq!(client_count(&pool).await, 0, "nothing was created");
    // a parameter that does not fit its type is named too
    let r = b.get("/audit?before=99999999999999999999").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("“before”"), "{}", r.body);
}
