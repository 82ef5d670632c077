//! The settings page: roles, members, platform apps (write-only secrets, encrypted at rest,
//! precedence over the deployment's app), AI settings and limit overrides.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use common::{Browser, agency_id, client, state_with, user};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use autosocial_admin::app::AppState;
use autosocial_admin::config::WebArgs;
use autosocial_core::audit::Actor;
use autosocial_core::domain::{Platform, Role};
use autosocial_core::platform_apps::{self, NewApp};
use autosocial_core::vault::{self, Aad, Vault};

const APP_SECRET: &str = "agency-app-secret-5f1c9e";
const AI_KEY: &str = "gsk_live_key_8d2a7b";

/// The web settings with a deployment-wide X app and a sandbox (whose connector needs no server
/// to build an authorization URL).
fn web() -> WebArgs {
    let mut web = WebArgs::for_tests();
    web.platforms.sandbox_url = Some(url::Url::parse("http://127.0.0.1:9/").unwrap());
    web.platforms.x_client_id = Some("deployment-x-client".into());
    web.platforms.x_client_secret = Some(SecretString::from("deployment-x-secret".to_owned()));
    web
}

async fn logged_in(pool: &PgPool, email: &str) -> (Browser, String, AppState) {
    let state = state_with(pool.clone(), web()).await;
    let mut b = Browser::new(state.clone());
    let csrf = b.logged_in(email).await;
    (b, csrf, state)
}

/// One member per role in "Acme"; returns their emails in role order.
async fn members(pool: &PgPool) -> [(&'static str, Role); 4] {
    let all = [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ];
    for (email, role) in all {
        user(pool, "Acme", email, role).await;
    }
    all
}

/// A console POST: where, the form, and the status an owner gets.
type Post<'a> = (String, Vec<(&'a str, &'a str)>, StatusCode);

/// Everything the code under test logs, at every level, for the current thread.
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || Captured(writer.clone()))
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn only_admins_see_and_only_owners_change_settings(pool: PgPool) {
    let other = user(&pool, "Acme", "member@acme.test", Role::Viewer).await;
    for (email, role) in members(&pool).await {
        let (mut b, csrf, _) = logged_in(&pool, email).await;
        let see = b.get("/settings").await.status;
        let change = role == Role::Owner;
        assert_eq!(
            see,
            if role.allows(Role::Admin) {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            },
            "{role} GET /settings"
        );
        let expect = |ok: StatusCode| if change { ok } else { StatusCode::FORBIDDEN };
        let posts: [Post<'_>; 7] = [
            (
                "/settings/limits".into(),
                vec![
                    ("platform", "x"),
                    ("window_seconds", "900"),
                    ("max_posts", ""),
                ],
                StatusCode::SEE_OTHER,
            ),
            (
                "/settings/ai".into(),
                vec![("ai_provider", "template")],
                StatusCode::SEE_OTHER,
            ),
            (
                "/settings/apps/x".into(),
                vec![("client_id", ""), ("client_secret", "")],
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "/settings/apps/x/remove".into(),
                vec![],
                StatusCode::SEE_OTHER,
            ),
            (
                "/settings/members".into(),
                vec![("email", "not-an-email"), ("role", "viewer")],
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                format!("/settings/members/{other}/role"),
                vec![("role", "viewer")],
                StatusCode::SEE_OTHER,
            ),
            (
                format!("/settings/members/{other}/remove"),
                vec![],
                StatusCode::SEE_OTHER,
            ),
        ];
        for (uri, mut form, ok) in posts {
            if uri.ends_with("/remove") && uri.starts_with("/settings/members") && change {
                // keep the member for the next role in the loop: removing is tested below
                continue;
            }
            form.push(("_csrf", &csrf));
            let r = b.post(&uri, &form).await;
            assert_eq!(r.status, expect(ok), "{role} POST {uri}: {}", r.body);
        }
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_agency_app_is_write_only_encrypted_and_wins_over_the_deployment_app(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let other = agency_id(&pool, "Other").await;
    let bakery = client(&pool, "Acme", "Bakery").await;
    let (mut b, csrf, state) = logged_in(&pool, "owner@acme.test").await;
    let (logs, _guard) = capture_logs();

    // no secret for a new app: refused, naming the field, nothing stored
    let r = b
        .post(
            "/settings/apps/x",
            &[
                ("_csrf", &csrf),
                ("client_id", "acme-x-client"),
                ("client_secret", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Enter the client secret"), "{}", r.body);
    assert!(r.body.contains("acme-x-client"), "typed client id kept");

    for p in ["x", "sandbox"] {
        let r = b
            .post(
                &format!("/settings/apps/{p}"),
                &[
                    ("_csrf", &csrf),
                    ("client_id", &format!("acme-{p}-client")),
                    ("client_secret", APP_SECRET),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let page = b.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("acme-x-client"));
    assert!(page.body.contains("Your agency&#39;s app") || page.body.contains("Your agency's app"));
    assert!(
        !page.body.contains(APP_SECRET),
        "the secret is never echoed"
    );

    // encrypted at rest, bound to its place
    let (ct, key_id): (Vec<u8>, String) = sqlx::query_as(
        "SELECT client_secret_ct, key_id FROM platform_apps WHERE agency_id = $1 AND platform = 'x'",
    )
    .bind(acme)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        !ct.windows(APP_SECRET.len())
            .any(|w| w == APP_SECRET.as_bytes())
    );
    assert_eq!(Vault::key_id_of(&ct).unwrap(), key_id);

    // the agency's app beats the deployment's; another agency still gets the deployment's
    let own = platform_apps::resolve(&pool, &state.vault, &state.platforms, acme, Platform::X)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own.client_id, "acme-x-client");
    assert_eq!(own.client_secret.expose_secret(), APP_SECRET);
    let theirs = platform_apps::resolve(&pool, &state.vault, &state.platforms, other, Platform::X)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs.client_id, "deployment-x-client");

    // connecting from the console uses the agency's app
    let r = b
        .post(
            &format!("/clients/{bakery}/accounts/connect/sandbox"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location()
            .unwrap()
            .contains("client_id=acme-sandbox-client"),
        "{:?}",
        r.location()
    );

    // a new client id alone keeps the stored secret
    let r = b
        .post(
            "/settings/apps/x",
            &[
                ("_csrf", &csrf),
                ("client_id", "acme-x-client-2"),
                ("client_secret", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let kept = platform_apps::resolve(&pool, &state.vault, &state.platforms, acme, Platform::X)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.client_id, "acme-x-client-2");
    assert_eq!(kept.client_secret.expose_secret(), APP_SECRET);

    // removing is explicit; the deployment's app applies again
    let r = b.post("/settings/apps/x/remove", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let back = platform_apps::resolve(&pool, &state.vault, &state.platforms, acme, Platform::X)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.client_id, "deployment-x-client");

    // audited, without the secret; and no log line carries it
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE agency_id = $1 AND action LIKE 'platform_app.%' ORDER BY id")
            .bind(acme)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "platform_app.save",
            "platform_app.save",
            "platform_app.save",
            "platform_app.remove"
        ]
    );
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE details::text LIKE '%' || $1 || '%'",
    )
    .bind(APP_SECRET)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!logged.is_empty(), "the capture works");
    assert!(
        !logged.contains(APP_SECRET),
        "a log line carries the secret"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn key_rotation_re_encrypts_agency_app_secrets_in_place(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let (k1, k2) = (Vault::generate_entry("k1"), Vault::generate_entry("k2"));
    let old = Vault::from_spec(&k1).unwrap();
    let secret = SecretString::from(APP_SECRET.to_owned());
    platform_apps::save(
        &pool,
        &old,
        &Actor::system("test"),
        acme,
        NewApp {
            platform: Platform::Linkedin,
            client_id: "acme-li",
            client_secret: Some(&secret),
        },
    )
    .await
    .unwrap();
    let new = Vault::from_spec(&format!("{k2}\n{k1}")).unwrap();
    let report = vault::rotate(&pool, &new, 10).await.unwrap();
    assert_eq!(report.rows, 1);
    let (ct, key_id): (Vec<u8>, String) =
        sqlx::query_as("SELECT client_secret_ct, key_id FROM platform_apps WHERE agency_id = $1")
            .bind(acme)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(key_id, "k2");
    let aad = Aad {
        table: "platform_apps",
        column: "client_secret_ct",
        agency: Some(acme),
        row: "linkedin",
    };
    assert_eq!(new.decrypt_string(&ct, &aad).unwrap().as_str(), APP_SECRET);
    // and resolve reads it with the new key alone once the old one is retired
    let only_new = Vault::from_spec(&k2).unwrap();
    let config = WebArgs::for_tests().platforms.config();
    let app = platform_apps::resolve(&pool, &only_new, &config, acme, Platform::Linkedin)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.client_secret.expose_secret(), APP_SECRET);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_ai_key_is_write_only_encrypted_and_removable(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let (mut b, csrf, state) = logged_in(&pool, "owner@acme.test").await;
    let r = b
        .post(
            "/settings/ai",
            &[
                ("_csrf", &csrf),
                ("ai_provider", "openai"),
                ("ai_base_url", ""),
                ("ai_model", ""),
                ("ai_api_key", AI_KEY),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("needs its base URL") && r.body.contains("needs a model name"));
    assert!(
        !r.body.contains(AI_KEY),
        "a refused form does not echo the key"
    );

    let r = b
        .post(
            "/settings/ai",
            &[
                ("_csrf", &csrf),
                ("ai_provider", "openai"),
                ("ai_base_url", "https://api.groq.com/openai/v1"),
                ("ai_model", "llama-3.3-70b"),
                ("ai_api_key", AI_KEY),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get("/settings").await;
    assert!(page.body.contains("llama-3.3-70b"));
    assert!(!page.body.contains(AI_KEY));
    let ct: Vec<u8> =
        sqlx::query_scalar("SELECT ai_api_key_ct FROM agency_settings WHERE agency_id = $1")
            .bind(acme)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!ct.windows(AI_KEY.len()).any(|w| w == AI_KEY.as_bytes()));
    let row = acme.to_string();
    let aad = Aad {
        table: "agency_settings",
        column: "ai_api_key_ct",
        agency: Some(acme),
        row: &row,
    };
    assert_eq!(
        state.vault.decrypt_string(&ct, &aad).unwrap().as_str(),
        AI_KEY
    );

    // saving without a key keeps it; the explicit box removes it
    let keep = [
        ("_csrf", csrf.as_str()),
        ("ai_provider", "openai"),
        ("ai_base_url", "https://api.groq.com/openai/v1"),
        ("ai_model", "llama-3.1-8b"),
        ("ai_api_key", ""),
    ];
    assert_eq!(
        b.post("/settings/ai", &keep).await.status,
        StatusCode::SEE_OTHER
    );
    let set: bool = sqlx::query_scalar(
        "SELECT ai_api_key_ct IS NOT NULL FROM agency_settings WHERE agency_id = $1",
    )
    .bind(acme)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(set);
    let mut clear = keep.to_vec();
    clear.push(("ai_clear_key", "yes"));
    assert_eq!(
        b.post("/settings/ai", &clear).await.status,
        StatusCode::SEE_OTHER
    );
    let (set, key_id): (bool, Option<String>) = sqlx::query_as(
        "SELECT ai_api_key_ct IS NOT NULL, ai_key_id FROM agency_settings WHERE agency_id = $1",
    )
    .bind(acme)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!set && key_id.is_none());
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT details->>'api_key' FROM audit_log WHERE agency_id = $1 AND action = 'settings.ai' ORDER BY id",
    )
    .bind(acme)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited, ["replaced", "kept", "removed"]);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn limit_overrides_must_be_positive_and_for_a_known_window(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme").await;
    let (mut b, csrf, _) = logged_in(&pool, "owner@acme.test").await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM platform_limit_overrides")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    for (platform, window, value) in [
        ("x", "900", "0"),
        ("x", "900", "-5"),
        ("x", "900", "ten"),
        ("x", "1234", "10"),
        ("myspace", "900", "10"),
    ] {
        let r = b
            .post(
                "/settings/limits",
                &[
                    ("_csrf", &csrf),
                    ("platform", platform),
                    ("window_seconds", window),
                    ("max_posts", value),
                ],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{platform}/{window}={value}"
        );
        assert!(r.body.contains("field-error"), "{}", r.body);
    }
    assert_eq!(count().await, 0);
    let set = [
        ("_csrf", csrf.as_str()),
        ("platform", "x"),
        ("window_seconds", "900"),
        ("max_posts", "40"),
    ];
    assert_eq!(
        b.post("/settings/limits", &set).await.status,
        StatusCode::SEE_OTHER
    );
    let stored: i32 = sqlx::query_scalar(
        "SELECT max_posts FROM platform_limit_overrides WHERE agency_id = $1 AND platform = 'x' AND window_seconds = 900",
    )
    .bind(acme)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 40);
    let clear = [
        ("_csrf", csrf.as_str()),
        ("platform", "x"),
        ("window_seconds", "900"),
        ("max_posts", ""),
    ];
    assert_eq!(
        b.post("/settings/limits", &clear).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(count().await, 0);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE agency_id = $1 AND action = 'settings.limit'",
    )
    .bind(acme)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn owners_invite_change_roles_and_never_lose_the_last_owner(pool: PgPool) {
    let owner = user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let (mut b, csrf, _) = logged_in(&pool, "owner@acme.test").await;

    let r = b
        .post(
            "/settings/members",
            &[
                ("_csrf", &csrf),
                ("email", "new@acme.test"),
                ("role", "reviewer"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = invitation_token(&r.body);
    // shown once: the settings page lists the invitation, not its link
    let settings = b.get("/settings").await;
    assert!(settings.body.contains("new@acme.test") && !settings.body.contains(&token));
    // the newcomer accepts by choosing a password, and is logged in to Acme
    let mut newcomer = Browser::new(state_with(pool.clone(), web()).await);
    let password = "a newcomer's own passphrase";
    let r = accept(&mut newcomer, &token, password).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        newcomer
            .get("/clients")
            .await
            .body
            .contains("new@acme.test")
    );
    let mut again = Browser::new(state_with(pool.clone(), web()).await);
    assert_eq!(
        again.login("new@acme.test", password).await.status,
        StatusCode::SEE_OTHER
    );
    // inviting a member again is refused
    let r = b
        .post(
            "/settings/members",
            &[
                ("_csrf", &csrf),
                ("email", "NEW@acme.test"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already a member"));

    let new_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'new@acme.test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let r = b
        .post(
            &format!("/settings/members/{new_id}/role"),
            &[("_csrf", &csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1")
        .bind(new_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(role, "admin");

    // the only owner can neither step down nor leave
    for (uri, form) in [
        (
            format!("/settings/members/{owner}/role"),
            vec![("_csrf", csrf.as_str()), ("role", "admin")],
        ),
        (
            format!("/settings/members/{owner}/remove"),
            vec![("_csrf", csrf.as_str())],
        ),
    ] {
        let r = b.post(&uri, &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        assert!(r.body.contains("at least one owner"), "{}", r.body);
    }
    // with a second owner, the first may step down
    b.post(
        &format!("/settings/members/{new_id}/role"),
        &[("_csrf", &csrf), ("role", "owner")],
    )
    .await;
    let r = b
        .post(
            &format!("/settings/members/{owner}/role"),
            &[("_csrf", &csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // removing a member ends their sessions in this agency
    let csrf2 = newcomer.get("/clients").await.csrf();
    let r = newcomer
        .post(
            &format!("/settings/members/{owner}/remove"),
            &[("_csrf", &csrf2)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(members, 1);
    assert_eq!(
        b.get("/settings").await.status,
        StatusCode::SEE_OTHER,
        "the removed member's session ended"
    );
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1")
        .bind(owner)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'member.%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            "member.invite",
            "member.join",
            "member.role",
            "member.role",
            "member.role",
            "member.remove"
        ]
    );
    for secret in [password, token.as_str()] {
        let leaked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE details::text LIKE '%' || $1 || '%'",
        )
        .bind(secret)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(leaked, 0);
    }
}

/// The invitation link on the page that answered an invite.
fn invitation_token(body: &str) -> String {
    let marker = "/invite/";
    let start = body.find(marker).expect("the invitation link is shown") + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// Accept an invitation in `b` with `password`.
async fn accept(b: &mut Browser, token: &str, password: &str) -> common::Response {
    let page = b.get(&format!("/invite/{token}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    b.post(
        &format!("/invite/{token}"),
        &[("_csrf", &csrf), ("password", password)],
    )
    .await
}

async fn is_member(pool: &PgPool, email: &str, agency: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id JOIN agencies a ON a.id = m.agency_id
                        WHERE u.email = $1 AND a.name = $2)",
    )
    .bind(email)
    .bind(agency)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn inviting_says_nothing_of_other_agencies_and_joining_is_the_invitees_choice(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    user(&pool, "Other", "known@other.test", Role::Owner).await;
    let (mut b, csrf, _) = logged_in(&pool, "owner@acme.test").await;
    let mut answers = Vec::new();
    let mut tokens = Vec::new();
    for email in ["known@other.test", "nobody@nowhere.test"] {
        let r = b
            .post(
                "/settings/members",
                &[("_csrf", &csrf), ("email", email), ("role", "reviewer")],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{email}: {}", r.body);
        let token = invitation_token(&r.body);
        assert_eq!(token.len(), 43, "256 bits");
        // the same answer, but for the address, the link and its expiry
        let start = r.body.find("<div class=\"notice\"").expect("a notice");
        let notice = &r.body[start..];
        let notice = &notice[..notice.find("</div>").unwrap()];
        let expires = notice.split("expires ").nth(1).unwrap()[..16].to_owned();
        answers.push(
            notice
                .replace(email, "EMAIL")
                .replace(&token, "TOKEN")
                .replace(&expires, "WHEN"),
        );
        tokens.push(token);
    }
    assert_eq!(
        answers[0], answers[1],
        "an existing account is not told apart"
    );
    assert!(!answers[0].contains("already had an account"));
    // nobody joined by being invited
    assert!(!is_member(&pool, "known@other.test", "Acme").await);
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'nobody@nowhere.test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(users, 0, "no account is made before the invitee accepts");
    // only the link's hash is stored
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invitations WHERE token_hash = convert_to($1, 'UTF8')",
    )
    .bind(&tokens[0])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);

    // the known person opens their link: the agency and role are named; a wrong password
    // changes nothing; their own password makes them a member, logged in to Acme
    let mut known = Browser::new(state_with(pool.clone(), web()).await);
    let page = known.get(&format!("/invite/{}", tokens[0])).await;
    assert!(page.body.contains("Acme") && page.body.contains("reviewer"));
    let r = accept(&mut known, &tokens[0], "not my password at all").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!is_member(&pool, "known@other.test", "Acme").await);
    let r = accept(&mut known, &tokens[0], common::PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(is_member(&pool, "known@other.test", "Acme").await);
    let home = known.get("/clients").await;
    assert!(home.body.contains("Acme"), "logged in to the agency joined");
    // used: the link shows the neutral page now
    let r = known.get(&format!("/invite/{}", tokens[0])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("cannot be used") && !r.body.contains("Acme"));

    // the new person chooses a password (too short is refused, and changes nothing)
    let mut newcomer = Browser::new(state_with(pool.clone(), web()).await);
    let r = accept(&mut newcomer, &tokens[1], "short").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("at least 12 characters"), "{}", r.body);
    let r = accept(&mut newcomer, &tokens[1], "a passphrase of my own").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(is_member(&pool, "nobody@nowhere.test", "Acme").await);

    // a revoked or expired invitation cannot be used
    let r = b
        .post(
            "/settings/members",
            &[
                ("_csrf", &csrf),
                ("email", "late@acme.test"),
                ("role", "viewer"),
            ],
        )
        .await;
    let late = invitation_token(&r.body);
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM invitations WHERE email = 'late@acme.test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let r = b
        .post(
            &format!("/settings/invitations/{id}/revoke"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut stranger = Browser::new(state_with(pool.clone(), web()).await);
    assert_eq!(
        stranger.get(&format!("/invite/{late}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = b
        .post(
            "/settings/members",
            &[
                ("_csrf", &csrf),
                ("email", "expired@acme.test"),
                ("role", "viewer"),
            ],
        )
        .await;
    let expired = invitation_token(&r.body);
    sqlx::query("UPDATE invitations SET created_at = now() - interval '8 days', expires_at = now() - interval '1 day' WHERE email = 'expired@acme.test'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        stranger.get(&format!("/invite/{expired}")).await.status,
        StatusCode::NOT_FOUND
    );

    // another agency's owner cannot revoke Acme's invitations
    let (mut other, other_csrf, _) = logged_in(&pool, "known@other.test").await;
    let pending: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM invitations WHERE email = 'expired@acme.test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let r = other
        .post(
            &format!("/settings/invitations/{pending}/revoke"),
            &[("_csrf", &other_csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action IN ('member.invite', 'member.join', 'member.join_refused', 'invitation.revoke') ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "member.invite",
            "member.invite",
            "member.join_refused",
            "member.join",
            "member.join",
            "member.invite",
            "invitation.revoke",
            "member.invite"
        ]
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn another_agencys_members_and_unknown_platforms_are_404(pool: PgPool) {
    user(&pool, "Acme", "owner@acme.test", Role::Owner).await;
    let theirs = user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let (mut b, csrf, _) = logged_in(&pool, "owner@acme.test").await;
    for (uri, form) in [
        (
            format!("/settings/members/{theirs}/role"),
            vec![("_csrf", csrf.as_str()), ("role", "viewer")],
        ),
        (
            format!("/settings/members/{theirs}/remove"),
            vec![("_csrf", csrf.as_str())],
        ),
        (
            "/settings/apps/myspace".to_owned(),
            vec![
                ("_csrf", csrf.as_str()),
                ("client_id", "a"),
                ("client_secret", "b"),
            ],
        ),
        (
            "/settings/apps/myspace/remove".to_owned(),
            vec![("_csrf", csrf.as_str())],
        ),
    ] {
        assert_eq!(
            b.post(&uri, &form).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1")
        .bind(theirs)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(role, "owner");
    // the other agency's members are not listed
    assert!(!b.get("/settings").await.body.contains("owner@other.test"));
}
