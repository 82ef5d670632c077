//! The person's own account: switching between their agencies (membership checked, roles of the
//! new agency apply, audited) and changing their password (validated, other sessions ended,
//! audited).

mod common;

use axum::http::StatusCode;
use common::{Browser, PASSWORD, agency_id, client, logged_in, state, user};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::domain::Role;

async fn session_agencies(pool: &PgPool, user: Uuid) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT agency_id FROM sessions WHERE user_id = $1 ORDER BY created_at")
        .bind(user)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn audited(pool: &PgPool, action: &str) -> Vec<Option<Uuid>> {
    sqlx::query_scalar("SELECT agency_id FROM audit_log WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Acme (owner) first, then Beta (viewer): login opens Acme, the oldest membership.
async fn two_agencies(pool: &PgPool) -> (Uuid, Uuid, Uuid) {
    let u = user(pool, "Acme", "sam@two.test", Role::Owner).await;
    user(pool, "Beta", "sam@two.test", Role::Viewer).await;
    (
        u,
        agency_id(pool, "Acme").await,
        agency_id(pool, "Beta").await,
    )
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn switching_moves_the_session_and_the_new_agencys_role_applies(pool: PgPool) {
    let (u, acme, beta) = two_agencies(&pool).await;
    client(&pool, "Acme", "Acme Bakery").await;
    client(&pool, "Beta", "Beta Florist").await;
    let (mut b, csrf) = logged_in(&pool, "sam@two.test").await;

    // the header offers both agencies, the current one selected
    let page = b.get("/clients").await;
    assert!(page.body.contains("action=\"/account/agency\""));
    assert!(
        page.body
            .contains(&format!("<option value=\"{acme}\" selected>Acme</option>"))
    );
    assert!(
        page.body
            .contains(&format!("<option value=\"{beta}\">Beta</option>"))
    );
    assert!(page.body.contains("Acme Bakery") && !page.body.contains("Beta Florist"));
    // as Acme's owner: settings and creating clients are allowed
    assert_eq!(b.get("/settings").await.status, StatusCode::OK);
    let old_cookie = b.cookies.clone();

    // without the CSRF token nothing happens
    let r = b
        .post("/account/agency", &[("agency", &beta.to_string())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(session_agencies(&pool, u).await, vec![acme]);

    let r = b
        .post(
            "/account/agency",
            &[("_csrf", &csrf), ("agency", &beta.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/"));
    assert_eq!(
        session_agencies(&pool, u).await,
        vec![beta],
        "one session, now in Beta"
    );
    assert_ne!(b.cookies, old_cookie, "a new session id");

    // now Beta's data and Beta's role (viewer)
    let page = b.get("/clients").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Beta Florist") && !page.body.contains("Acme Bakery"));
    assert!(page.body.contains("sam@two.test · Beta · viewer"));
    assert!(
        page.body
            .contains(&format!("<option value=\"{beta}\" selected>Beta</option>"))
    );
    let beta_csrf = page.csrf();
    assert_ne!(beta_csrf, csrf, "a new CSRF token with the new session");
    assert_eq!(b.get("/settings").await.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/audit").await.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            "/clients",
            &[
                ("_csrf", &beta_csrf),
                ("name", "Sneaky"),
                ("timezone", "UTC"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/clients/new").await.status, StatusCode::FORBIDDEN);
    // the old session and its token are gone
    let mut old = Browser::new(state(pool.clone()).await);
    old.cookies = old_cookie;
    let r = old.get("/clients").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // and back to Acme: owner again
    let r = b
        .post(
            "/account/agency",
            &[("_csrf", &beta_csrf), ("agency", &acme.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/settings").await.status, StatusCode::OK);
    assert_eq!(session_agencies(&pool, u).await, vec![acme]);

    // audited in both agencies, each time
    let a = audited(&pool, "auth.switch_agency").await;
    assert_eq!(a, vec![Some(acme), Some(beta), Some(beta), Some(acme)]);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn switching_to_an_agency_you_do_not_belong_to_is_404_and_changes_nothing(pool: PgPool) {
    let (u, acme, _) = two_agencies(&pool).await;
    user(&pool, "Gamma", "owner@gamma.test", Role::Owner).await;
    let gamma = agency_id(&pool, "Gamma").await;
    let (mut b, csrf) = logged_in(&pool, "sam@two.test").await;
    let before = b.cookies.clone();
    for target in [
        gamma.to_string(),
        Uuid::now_v7().to_string(),
        "junk".to_owned(),
    ] {
        let r = b
            .post("/account/agency", &[("_csrf", &csrf), ("agency", &target)])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{target}");
    }
    assert_eq!(session_agencies(&pool, u).await, vec![acme]);
    assert_eq!(b.cookies, before);
    let page = b.get("/clients").await;
    assert!(page.body.contains("sam@two.test · Acme · owner"));
    assert!(!page.body.contains("Gamma"));
    assert!(audited(&pool, "auth.switch_agency").await.is_empty());
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn one_membership_shows_no_switcher(pool: PgPool) {
    user(&pool, "Acme", "solo@acme.test", Role::Owner).await;
    let (mut b, _) = logged_in(&pool, "solo@acme.test").await;
    let page = b.get("/").await;
    assert!(!page.body.contains("/account/agency"));
    assert!(page.body.contains("href=\"/account/password\""));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_password_change_is_validated_and_ends_the_other_sessions(pool: PgPool) {
    let (u, acme, beta) = two_agencies(&pool).await;
    // this browser's console allows more attempts than the default: every refusal below counts
    let web = autosocial_admin::config::WebArgs {
        login_per_account_per_minute: 50,
        ..autosocial_admin::config::WebArgs::for_tests()
    };
    let mut b = Browser::new(common::state_with(pool.clone(), web).await);
    let csrf = b.logged_in("sam@two.test").await;
    // two more sessions: another browser in Acme, one switched to Beta
    let (mut other, _) = logged_in(&pool, "sam@two.test").await;
    let (mut third, third_csrf) = logged_in(&pool, "sam@two.test").await;
    let r = third
        .post(
            "/account/agency",
            &[("_csrf", &third_csrf), ("agency", &beta.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(session_agencies(&pool, u).await.len(), 3);

    let page = b.get("/account/password").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<label for=\"current_password\">"));
    assert!(page.body.contains("autocomplete=\"new-password\""));
    let hash_before: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(u)
        .fetch_one(&pool)
        .await
        .unwrap();

    let new = "a much longer passphrase";
    // each refusal names its field and changes nothing
    for (fields, field, says) in [
        (
            (PASSWORD, "short", "short"),
            "new_password",
            "at least 12 characters",
        ),
        (
            (PASSWORD, new, "something else entirely"),
            "new_password_confirm",
            "differs",
        ),
        (
            ("not my password at all", new, new),
            "current_password",
            "not your current password",
        ),
        (
            ("", new, new),
            "current_password",
            "Enter your current password",
        ),
        (
            (PASSWORD, PASSWORD, PASSWORD),
            "new_password",
            "other than the current",
        ),
    ] {
        let (current, n1, n2) = fields;
        let r = b
            .post(
                "/account/password",
                &[
                    ("_csrf", &csrf),
                    ("current_password", current),
                    ("new_password", n1),
                    ("new_password_confirm", n2),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(
            r.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            r.body
        );
        assert!(r.body.contains(says), "{field}: {}", r.body);
        assert!(
            r.body
                .contains(&format!("aria-describedby=\"{field}-error\""))
                || field == "new_password"
        );
        assert!(!r.body.contains(new), "passwords are never echoed");
    }
    let hash_now: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(u)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(hash_now, hash_before);
    assert_eq!(session_agencies(&pool, u).await.len(), 3);
    // without the CSRF token: refused
    let r = b
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = b
        .post(
            "/account/password",
            &[
                ("_csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/account/password?changed=2"));
    let done = b.get("/account/password?changed=2").await;
    assert!(done.body.contains("Your 2 other sessions were ended."));
    // argon2id, the new password; this session goes on, the two others are gone
    let hash_now: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(u)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(hash_now.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(autosocial_core::password::verify(new, &hash_now));
    assert_eq!(session_agencies(&pool, u).await, vec![acme]);
    assert_eq!(b.get("/clients").await.status, StatusCode::OK);
    assert_eq!(other.get("/clients").await.status, StatusCode::SEE_OTHER);
    assert_eq!(third.get("/clients").await.status, StatusCode::SEE_OTHER);
    // the old password no longer logs in, the new one does
    let mut fresh = Browser::new(state(pool.clone()).await);
    assert_eq!(
        fresh.login("sam@two.test", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fresh.login("sam@two.test", new).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        audited(&pool, "auth.password_change").await,
        vec![Some(acme)]
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn guessing_the_current_password_is_throttled(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let (mut b, csrf) = logged_in(&pool, "viewer@acme.test").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let guess = format!("wrong guess number {i}");
        let r = b
            .post(
                "/account/password",
                &[
                    ("_csrf", &csrf),
                    ("current_password", &guess),
                    ("new_password", "a much longer passphrase"),
                    ("new_password_confirm", "a much longer passphrase"),
                ],
            )
            .await;
        statuses.push(r.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}
