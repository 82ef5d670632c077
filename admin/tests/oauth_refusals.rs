//! What a person is told when a platform's token endpoint refuses: a wrong or used code at the
//! exchange is not a revoked grant, and a refusal of the app's own credentials (at the exchange
//! or at a refresh) is shown on the settings page and on every account it affects, until the app
//! is fixed.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use autosocial_admin::config::WebArgs;
use autosocial_core::domain::{Platform, Role};
use autosocial_core::platform_apps::{self, NewApp};
use autosocial_core::tokens::{self, Refreshed};
use autosocial_sandbox::Knobs;
use axum::http::StatusCode;
use common::{Browser, client, state_with, user};
use sqlx::PgPool;
use uuid::Uuid;

struct Setup {
    admin: Browser,
    state: autosocial_admin::app::AppState,
    agency: Uuid,
    client_id: Uuid,
    csrf: String,
}

async fn setup(pool: &PgPool) -> Setup {
    user(pool, "Acme", "owner@acme.test", Role::Owner).await;
    sqlx::query("UPDATE agency_settings SET platforms_enabled = ARRAY['sandbox']")
        .execute(pool)
        .await
        .unwrap();
    let client_id = client(pool, "Acme", "Bakery").await;
    let agency = common::agency_id(pool, "Acme").await;
    let mut web = WebArgs::for_tests();
    web.platforms.sandbox_url = Some(
        autosocial_sandbox::spawn(Knobs {
            auto_approve: true,
            ..Knobs::default()
        })
        .await
        .unwrap(),
    );
    let state = state_with(pool.clone(), web).await;
    let mut admin = Browser::new(state.clone());
    let csrf = admin.logged_in("owner@acme.test").await;
    Setup {
        admin,
        state,
        agency,
        client_id,
        csrf,
    }
}

/// Connect from the console and return the sandbox's redirect back to us (path and query).
async fn authorize(s: &mut Setup) -> String {
    let r = s
        .admin
        .post(
            &format!("/clients/{}/accounts/connect/sandbox", s.client_id),
            &[("_csrf", &s.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to_provider = r.location().unwrap().to_owned();
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(to_provider)
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    format!("{}?{}", back.path(), back.query().unwrap())
}

fn with_code(callback: &str, code: &str) -> String {
    let url = url::Url::parse(&format!("http://x{callback}")).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &q {
        out.append_pair(k, if k == "code" { code } else { v });
    }
    format!("{}?{}", url.path(), out.finish())
}

async fn save_app(s: &Setup, secret: &str) {
    platform_apps::save(
        &s.state.pool,
        &s.state.vault,
        &autosocial_core::audit::Actor {
            user_id: None,
            label: "test".into(),
            ip: None,
        },
        s.agency,
        NewApp {
            platform: Platform::Sandbox,
            client_id: "autosocial-sandbox-client",
            client_secret: Some(&secrecy::SecretString::from(secret.to_owned())),
        },
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_wrong_code_says_so_instead_of_a_revoked_grant(pool: PgPool) {
    let mut s = setup(&pool).await;
    let callback = authorize(&mut s).await;
    let r = s.admin.get(&with_code(&callback, "not-the-code")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("did not accept the authorization")
            && r.body.contains("Please start connecting again"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("revoked"), "{}", r.body);
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM social_accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn refused_app_credentials_show_on_settings_and_on_the_accounts_until_fixed(pool: PgPool) {
    let mut s = setup(&pool).await;
    // connected with the right app
    let callback = authorize(&mut s).await;
    assert_eq!(s.admin.get(&callback).await.status, StatusCode::SEE_OTHER);
    let account: Uuid = sqlx::query_scalar("SELECT id FROM social_accounts")
        .fetch_one(&pool)
        .await
        .unwrap();

    // the agency's own app, with a secret the platform does not accept
    save_app(&s, "a-wrong-secret-123").await;
    let gate = autosocial_core::killswitch::Gate::new(pool.clone(), Duration::from_secs(2));
    let refreshed = tokens::refresh(
        &pool,
        &s.state.vault,
        &s.state.platforms,
        &gate,
        None,
        account,
    )
    .await
    .unwrap();
    assert!(
        matches!(refreshed, Refreshed::AppRefused(_)),
        "{refreshed:?}"
    );

    let settings = s.admin.get("/settings").await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(
        settings
            .body
            .contains("Sandbox refused the app&#39;s credentials")
            || settings
                .body
                .contains("Sandbox refused the app's credentials"),
        "{}",
        settings.body
    );
    assert!(
        settings
            .body
            .contains("Check the client id and secret of your agency")
    );
    assert!(
        !settings.body.contains("a-wrong-secret-123"),
        "no secret on the page"
    );
    let page = s.admin.get(&format!("/clients/{}", s.client_id)).await;
    assert!(
        page.body.contains("App credentials refused"),
        "the account shows it: {}",
        page.body
    );
    let status: String = sqlx::query_scalar("SELECT status FROM social_accounts WHERE id = $1")
        .bind(account)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "active", "reconnecting would not help: not marked");

    // connecting anew with the broken app: the person is told, nothing is stored
    let callback = authorize(&mut s).await;
    let r = s.admin.get(&callback).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body
            .contains("refused the app this agency connects accounts with"),
        "{}",
        r.body
    );

    // fixed: saving the app clears the message, and the refresh works again
    save_app(&s, "autosocial-sandbox-secret").await;
    assert!(
        !s.admin
            .get(&format!("/clients/{}", s.client_id))
            .await
            .body
            .contains("App credentials refused")
    );
    let refreshed = tokens::refresh(
        &pool,
        &s.state.vault,
        &s.state.platforms,
        &gate,
        None,
        account,
    )
    .await
    .unwrap();
    assert_eq!(refreshed, Refreshed::Done);
    assert!(
        !s.admin
            .get("/settings")
            .await
            .body
            .contains("refused the app")
    );
}
