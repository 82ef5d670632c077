//! The onboarding flow over HTTP: the console makes a link, the client opens it and connects an
//! account through the sandbox's OAuth (PKCE), tokens are stored encrypted, the link is used up.

mod common;

use std::collections::HashMap;

use autosocial_admin::config::WebArgs;
use autosocial_core::domain::Role;
use autosocial_core::vault::Aad;
use autosocial_sandbox::Knobs;
use axum::http::StatusCode;
use common::{Browser, client, state_with, user};
use sqlx::PgPool;
use uuid::Uuid;

async fn sandbox() -> url::Url {
    autosocial_sandbox::spawn(Knobs {
        auto_approve: true,
        ..Knobs::default()
    })
    .await
    .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Setup {
    admin: Browser,
    vault: std::sync::Arc<autosocial_core::vault::Vault>,
    client_id: Uuid,
    csrf: String,
}

async fn setup(pool: &PgPool) -> Setup {
    user(pool, "Acme", "admin@acme.test", Role::Admin).await;
    sqlx::query("UPDATE agency_settings SET platforms_enabled = ARRAY['sandbox', 'x']")
        .execute(pool)
        .await
        .unwrap();
    let client_id = client(pool, "Acme", "Bakery").await;
    let mut web = WebArgs::for_tests();
    web.platforms.sandbox_url = Some(sandbox().await);
    let state = state_with(pool.clone(), web).await;
    let vault = state.vault.clone();
    let mut admin = Browser::new(state);
    let csrf = admin.logged_in("admin@acme.test").await;
    Setup {
        admin,
        vault,
        client_id,
        csrf,
    }
}

/// Create a link in the console and return its token.
async fn new_link(s: &mut Setup) -> String {
    let r = s
        .admin
        .post(
            &format!("/clients/{}/onboarding", s.client_id),
            &[("_csrf", &s.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let marker = "/onboard/";
    let start = r.body.find(marker).expect("the link is shown") + marker.len();
    r.body[start..].split('"').next().unwrap().to_owned()
}

/// A client's browser sharing the admin's app (same router, own cookies).
fn client_browser(s: &Setup) -> Browser {
    s.admin.sharing()
}

/// Start connecting and return the sandbox's redirect back to us (path and query).
async fn authorize(b: &mut Browser, token: &str) -> String {
    let page = b.get(&format!("/onboard/{token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let r = b
        .post(
            &format!("/onboard/{token}/connect/sandbox"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to_provider = r.location().unwrap().to_owned();
    let provider = url::Url::parse(&to_provider).unwrap();
    let q: HashMap<String, String> = provider.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 22, "state carries at least 128 bits");
    assert_eq!(
        q["redirect_uri"],
        "http://127.0.0.1:8080/oauth/callback/sandbox"
    );
    let back = http().get(to_provider).send().await.unwrap();
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    format!("{}?{}", back.path(), back.query().unwrap())
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_client_connects_an_account_and_the_link_is_used_up(pool: PgPool) {
    let mut s = setup(&pool).await;
    let token = new_link(&mut s).await;
    assert_eq!(token.len(), 43, "256-bit token");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM onboarding_links")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(stored, token.as_bytes(), "only a hash is stored");

    let mut c = client_browser(&s);
    let page = c.get(&format!("/onboard/{token}")).await;
    assert!(page.body.contains("Acme") && page.body.contains("Bakery"));
    assert!(page.body.contains("Connect Sandbox"));
    assert!(page.body.contains("X — not available yet"));

    let callback = authorize(&mut c, &token).await;
    let r = c.get(&callback).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/onboard/continue"));
    let r = c.get("/onboard/continue").await;
    assert_eq!(r.location(), Some(format!("/onboard/{token}").as_str()));
    let page = c.get(&format!("/onboard/{token}")).await;
    assert!(
        page.body
            .contains("Sandbox: Sandbox account sandbox-user-1"),
        "{}",
        page.body
    );

    // stored encrypted, bound to its row
    let (id, agency, access, refresh, scopes): (Uuid, Uuid, Vec<u8>, Vec<u8>, Vec<String>) = sqlx::query_as(
        "SELECT id, agency_id, access_token_ct, refresh_token_ct, scopes FROM social_accounts WHERE platform = 'sandbox'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let row = id.to_string();
    let at = s
        .vault
        .decrypt_string(
            &access,
            &Aad {
                table: "social_accounts",
                column: "access_token_ct",
                agency: Some(agency),
                row: &row,
            },
        )
        .unwrap();
    let rt = s
        .vault
        .decrypt_string(
            &refresh,
            &Aad {
                table: "social_accounts",
                column: "refresh_token_ct",
                agency: Some(agency),
                row: &row,
            },
        )
        .unwrap();
    assert!(at.starts_with("at_") && rt.starts_with("rt_"));
    assert!(
        !access.windows(3).any(|w| w == b"at_"),
        "no plaintext in the column"
    );
    assert_eq!(scopes, ["publish", "metrics"]);

    // connecting the same account again updates the row
    let callback = authorize(&mut c, &token).await;
    assert_eq!(c.get(&callback).await.status, StatusCode::SEE_OTHER);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM social_accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // finish: a bad timezone changes nothing, a good one uses the link up
    let csrf = c.get(&format!("/onboard/{token}")).await.csrf();
    let bad = c
        .post(
            &format!("/onboard/{token}/finish"),
            &[("_csrf", &csrf), ("timezone", "Moon/Base")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let done = c
        .post(
            &format!("/onboard/{token}/finish"),
            &[("_csrf", &csrf), ("timezone", "America/Chicago")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("All set"));
    let tz: String = sqlx::query_scalar("SELECT timezone FROM clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tz, "America/Chicago");
    assert_eq!(
        c.get(&format!("/onboard/{token}")).await.status,
        StatusCode::NOT_FOUND,
        "used up"
    );
    let list = s
        .admin
        .get(&format!("/clients/{}/onboarding", s.client_id))
        .await;
    assert!(list.body.contains("Used"));
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE agency_id IS NOT NULL ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    for a in [
        "onboarding_link.create",
        "account.connect",
        "onboarding_link.finish",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_unusable_link_shows_the_same_neutral_page(pool: PgPool) {
    let mut s = setup(&pool).await;
    let expired = new_link(&mut s).await;
    sqlx::query("UPDATE onboarding_links SET created_at = now() - interval '9 days', expires_at = now() - interval '1 day'").execute(&pool).await.unwrap();
    let revoked = new_link(&mut s).await;
    let id: Uuid = sqlx::query_scalar(
        "SELECT id FROM onboarding_links WHERE revoked_at IS NULL AND expires_at > now()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let r = s
        .admin
        .post(
            &format!("/clients/{}/onboarding/{id}/revoke", s.client_id),
            &[("_csrf", &s.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let unknown = "x".repeat(43);
    let mut c = client_browser(&s);
    let mut bodies = Vec::new();
    for t in [
        expired.as_str(),
        revoked.as_str(),
        unknown.as_str(),
        "short",
    ] {
        let r = c.get(&format!("/onboard/{t}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(
            !r.body.contains("Bakery") && !r.body.contains("Acme"),
            "reveals nothing"
        );
        bodies.push(r.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one page for all");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn tampered_replayed_expired_and_foreign_states_are_refused(pool: PgPool) {
    let mut s = setup(&pool).await;
    let token = new_link(&mut s).await;
    let mut c = client_browser(&s);
    let accounts = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM social_accounts")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    // tampered state
    let callback = authorize(&mut c, &token).await;
    let tampered = callback.replace("state=", "state=x");
    assert_eq!(c.get(&tampered).await.status, StatusCode::BAD_REQUEST);
    // missing state
    let no_state: String = callback
        .split('&')
        .filter(|p| !p.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(c.get(&no_state).await.status, StatusCode::BAD_REQUEST);
    // for another provider (mix-up): refused and consumed
    let foreign = callback.replace("/oauth/callback/sandbox", "/oauth/callback/x");
    assert_eq!(c.get(&foreign).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        c.get(&callback).await.status,
        StatusCode::BAD_REQUEST,
        "the state was consumed by the refused attempt"
    );
    assert_eq!(accounts().await, 0);

    // replayed
    let callback = authorize(&mut c, &token).await;
    assert_eq!(c.get(&callback).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        c.get(&callback).await.status,
        StatusCode::BAD_REQUEST,
        "a state works once"
    );
    assert_eq!(accounts().await, 1);

    // expired
    sqlx::query("DELETE FROM social_accounts")
        .execute(&pool)
        .await
        .unwrap();
    let callback = authorize(&mut c, &token).await;
    sqlx::query("UPDATE oauth_transactions SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 minute' WHERE consumed_at IS NULL")
        .execute(&pool)
        .await
        .unwrap();
    let r = c.get(&callback).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("expired"));

    // a wrong issuer
    let callback = authorize(&mut c, &token).await;
    let wrong_iss = callback.replace("iss=http", "iss=https%3A%2F%2Fevil.example%2Fx");
    assert_eq!(c.get(&wrong_iss).await.status, StatusCode::BAD_REQUEST);

    // the provider's own refusal
    let callback = authorize(&mut c, &token).await;
    let state: String = callback
        .split('&')
        .find(|p| p.contains("state="))
        .unwrap()
        .split("state=")
        .nth(1)
        .unwrap()
        .to_owned();
    let r = c.get(&format!("/oauth/callback/sandbox?error=access_denied&error_description=The+user+said+no&state={state}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("The user said no"));
    assert_eq!(
        accounts().await,
        0,
        "nothing stored by any refused callback"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn onboarding_forms_need_their_token_and_links_are_tenant_scoped(pool: PgPool) {
    let mut s = setup(&pool).await;
    let token = new_link(&mut s).await;
    let mut c = client_browser(&s);
    c.get(&format!("/onboard/{token}")).await;
    let r = c
        .post(
            &format!("/onboard/{token}/connect/sandbox"),
            &[("_csrf", "forged")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .post(
            &format!("/onboard/{token}/finish"),
            &[("_csrf", "forged"), ("timezone", "UTC")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let open: i64 =
        sqlx::query_scalar("SELECT count(*) FROM onboarding_links WHERE used_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(open, 1);

    user(&pool, "Beta", "owner@beta.test", Role::Owner).await;
    let theirs = client(&pool, "Beta", "Beta client").await;
    let link: Uuid = sqlx::query_scalar("SELECT id FROM onboarding_links")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut beta = s.admin.sharing();
    let csrf = beta.logged_in("owner@beta.test").await;
    assert_eq!(
        beta.get(&format!("/clients/{}/onboarding", s.client_id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        beta.post(
            &format!("/clients/{}/onboarding", s.client_id),
            &[("_csrf", &csrf)]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let r = beta
        .post(
            &format!("/clients/{}/onboarding/{link}/revoke", s.client_id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = beta
        .post(
            &format!("/clients/{theirs}/onboarding/{link}/revoke"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let still: i64 =
        sqlx::query_scalar("SELECT count(*) FROM onboarding_links WHERE revoked_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(still, 1);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_admin_connects_an_account_from_the_console(pool: PgPool) {
    let mut s = setup(&pool).await;
    let detail = s.admin.get(&format!("/clients/{}", s.client_id)).await;
    assert!(detail.body.contains("Connect Sandbox yourself"));
    let r = s
        .admin
        .post(
            &format!("/clients/{}/accounts/connect/sandbox", s.client_id),
            &[("_csrf", &s.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let back = http().get(r.location().unwrap()).send().await.unwrap();
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let r = s
        .admin
        .get(&format!("{}?{}", back.path(), back.query().unwrap()))
        .await;
    assert_eq!(
        r.location(),
        Some(format!("/clients/{}", s.client_id).as_str())
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM social_accounts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let actor: String =
        sqlx::query_scalar("SELECT actor_label FROM audit_log WHERE action = 'account.connect'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(actor, "agency member (console)");
    // a reviewer may not
    user(&pool, "Acme", "rev@acme.test", Role::Reviewer).await;
    let mut rev = s.admin.sharing();
    let csrf = rev.logged_in("rev@acme.test").await;
    let r = rev
        .post(
            &format!("/clients/{}/accounts/connect/sandbox", s.client_id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_demo_seed_connects_a_sandbox_account_per_client(pool: PgPool) {
    let base = sandbox().await;
    let platforms = autosocial_core::config::PlatformArgs::sandbox(Some(base.clone())).config();
    let vault = autosocial_core::testing::vault();
    // the demo's sandbox asks for consent; the seed approves its own connections only
    http()
        .post(base.join("/_sandbox/knobs").unwrap())
        .json(&Knobs::default())
        .send()
        .await
        .unwrap();
    autosocial_admin::seed::demo(&pool).await.unwrap();
    assert_eq!(
        autosocial_admin::seed::connect_demo_accounts(&pool, &vault, &platforms)
            .await
            .unwrap(),
        3
    );
    // again (the sandbox restarted, say): the same rows are updated, not duplicated
    assert_eq!(
        autosocial_admin::seed::connect_demo_accounts(&pool, &vault, &platforms)
            .await
            .unwrap(),
        3
    );
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT platform_account_id FROM social_accounts ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(ids, ["bakery-bloom", "harbor-fitness", "koala-coffee"]);
    // the sandbox's consent setting is restored
    let knobs: serde_json::Value = reqwest::get(base.join("/_sandbox/knobs").unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(knobs["auto_approve"], false, "the consent page is back");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'refresh_token'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 3, "each account's refresh is scheduled");
}

/// Start connecting `platform` and return the provider's redirect back to us (path and query).
async fn authorize_on(b: &mut Browser, token: &str, platform: &str) -> String {
    let csrf = b.get(&format!("/onboard/{token}")).await.csrf();
    let r = b
        .post(
            &format!("/onboard/{token}/connect/{platform}"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{platform}: {}", r.body);
    let to_provider = r.location().unwrap().to_owned();
    let q: HashMap<String, String> = url::Url::parse(&to_provider)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256", "{platform}");
    assert_eq!(
        q["redirect_uri"],
        format!("http://127.0.0.1:8080/oauth/callback/{platform}")
    );
    let back = http().get(to_provider).send().await.unwrap();
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    format!("{}?{}", back.path(), back.query().unwrap())
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn one_link_connects_two_different_platforms(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    sqlx::query("UPDATE agency_settings SET platforms_enabled = ARRAY['sandbox', 'x', 'linkedin']")
        .execute(&pool)
        .await
        .unwrap();
    let client_id = client(&pool, "Acme", "Bakery").await;
    let mut web = WebArgs::for_tests();
    let sandbox_base = sandbox().await;
    web.platforms.sandbox_url = Some(sandbox_base.clone());
    web.platforms.platforms_in_sandbox = true;
    let state = state_with(pool.clone(), web).await;
    let vault = state.vault.clone();
    let mut admin = Browser::new(state);
    let csrf = admin.logged_in("admin@acme.test").await;
    let mut s = Setup {
        admin,
        vault,
        client_id,
        csrf,
    };
    let token = new_link(&mut s).await;
    let mut c = client_browser(&s);
    let page = c.get(&format!("/onboard/{token}")).await;
    assert!(
        page.body.contains("Connect X") && page.body.contains("Connect LinkedIn"),
        "{}",
        page.body
    );
    // the Connect forms redirect to the platform: the page's policy allows that origin
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    let allowed = format!(
        "form-action 'self' {}",
        sandbox_base.origin().ascii_serialization()
    );
    assert!(csp.contains(&allowed), "{csp}");
    for platform in ["x", "linkedin"] {
        let callback = authorize_on(&mut c, &token, platform).await;
        let r = c.get(&callback).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{platform}: {}", r.body);
    }
    let rows: Vec<(String, Uuid, Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT platform, id, agency_id, access_token_ct FROM social_accounts ORDER BY platform",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["linkedin", "x"]
    );
    for (platform, id, agency, ct) in &rows {
        let row = id.to_string();
        let token = s
            .vault
            .decrypt_string(
                ct,
                &Aad {
                    table: "social_accounts",
                    column: "access_token_ct",
                    agency: Some(*agency),
                    row: &row,
                },
            )
            .unwrap();
        assert!(!token.is_empty(), "{platform}");
        assert!(
            !ct.windows(token.len()).any(|w| w == token.as_bytes()),
            "{platform}: encrypted"
        );
    }
    let csrf = c.get(&format!("/onboard/{token}")).await.csrf();
    let done = c
        .post(
            &format!("/onboard/{token}/finish"),
            &[("_csrf", &csrf), ("timezone", "Europe/Berlin")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(
        c.get(&format!("/onboard/{token}")).await.status,
        StatusCode::NOT_FOUND,
        "used up"
    );
}

async fn accounts(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM social_accounts")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn refusals(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT details->>'reason' FROM audit_log WHERE action = 'account.connect_refused' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_connection_in_flight_stops_when_its_link_is_revoked_used_or_its_client_archived(
    pool: PgPool,
) {
    let mut s = setup(&pool).await;

    // revoked while the client was at the platform
    let token = new_link(&mut s).await;
    let mut c = client_browser(&s);
    let callback = authorize(&mut c, &token).await;
    let link: Uuid = sqlx::query_scalar("SELECT id FROM onboarding_links")
        .fetch_one(&pool)
        .await
        .unwrap();
    let r = s
        .admin
        .post(
            &format!("/clients/{}/onboarding/{link}/revoke", s.client_id),
            &[("_csrf", &s.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = c.get(&callback).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert!(r.body.contains("revoked, used up or expired"), "{}", r.body);
    assert_eq!(accounts(&pool).await, 0, "nothing was connected");

    // used up (the client finished in another tab) while at the platform
    let token = new_link(&mut s).await;
    let mut c = client_browser(&s);
    let callback = authorize(&mut c, &token).await;
    let page = c.get(&format!("/onboard/{token}")).await;
    let r = c
        .post(
            &format!("/onboard/{token}/finish"),
            &[("_csrf", &page.csrf()), ("timezone", "Europe/Berlin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = c.get(&callback).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert_eq!(accounts(&pool).await, 0);

    // the client archived meanwhile
    let token = new_link(&mut s).await;
    let mut c = client_browser(&s);
    let callback = authorize(&mut c, &token).await;
    sqlx::query("UPDATE clients SET status = 'archived' WHERE id = $1")
        .bind(s.client_id)
        .execute(&pool)
        .await
        .unwrap();
    let r = c.get(&callback).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert_eq!(accounts(&pool).await, 0);

    // started from the console by an admin who is a viewer by the time it comes back
    sqlx::query("UPDATE clients SET status = 'active' WHERE id = $1")
        .bind(s.client_id)
        .execute(&pool)
        .await
        .unwrap();
    let r = s
        .admin
        .post(
            &format!("/clients/{}/accounts/connect/sandbox", s.client_id),
            &[("_csrf", &s.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let back = http().get(r.location().unwrap()).send().await.unwrap();
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    sqlx::query("UPDATE memberships SET role = 'viewer' WHERE user_id = (SELECT id FROM users WHERE email = 'admin@acme.test')")
        .execute(&pool)
        .await
        .unwrap();
    let r = s
        .admin
        .get(&format!("{}?{}", back.path(), back.query().unwrap()))
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert!(r.body.contains("no longer an admin"), "{}", r.body);
    assert_eq!(accounts(&pool).await, 0);

    assert_eq!(
        refusals(&pool).await,
        [
            "link_no_longer_active",
            "link_no_longer_active",
            "client_archived",
            "member_no_longer_admin"
        ]
    );
}

/// The re-check at the moment of storing holds the link: a revoke that comes while the account
/// is being stored waits until it is stored (it was connected before the revoke returned), and
/// a store after the revoke sees it.
#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn revoking_waits_for_a_connection_being_stored_or_is_seen_by_it(pool: PgPool) {
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let link = autosocial_core::onboarding::create(&mut conn, agency, client, None)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let mut storing = pool.begin().await.unwrap();
    let allowed = autosocial_core::onboarding::recheck_for_connection(
        &mut storing,
        agency,
        client,
        Some(link.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(allowed, Ok(()));
    // a revoke now waits for the storing transaction
    let revoke = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let done = autosocial_core::onboarding::revoke(&mut tx, agency, link.id)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            done
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            !revoke.is_finished(),
            "the revoke did not wait for the connection"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the revoke never blocked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    storing.commit().await.unwrap();
    assert!(
        revoke.await.unwrap(),
        "revoked once the connection was stored"
    );
    // after the revoke, a connection is refused
    let mut late = pool.begin().await.unwrap();
    assert_eq!(
        autosocial_core::onboarding::recheck_for_connection(
            &mut late,
            agency,
            client,
            Some(link.id),
            None
        )
        .await
        .unwrap(),
        Err(autosocial_core::onboarding::ConnectRefused::LinkGone)
    );
}
