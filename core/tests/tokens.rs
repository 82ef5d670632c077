//! The token lifecycle against the sandbox's OAuth server.

use std::sync::Arc;
use std::time::Duration;

use autosocial_core::config::PlatformArgs;
use autosocial_core::domain::Platform;
use autosocial_core::killswitch::Gate;
use autosocial_core::platforms::{self, PlatformError, PlatformsConfig};
use autosocial_core::tokens::{self, Refreshed};
use autosocial_core::vault::{Aad, Vault};
use autosocial_sandbox::Knobs;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use uuid::Uuid;

struct World {
    pool: PgPool,
    vault: Arc<Vault>,
    platforms: PlatformsConfig,
    gate: Arc<Gate>,
    base: String,
    account: Uuid,
    agency: Uuid,
}

async fn knobs(base: &str, k: Knobs) {
    reqwest::Client::new()
        .post(format!("{base}/_sandbox/knobs"))
        .json(&k)
        .send()
        .await
        .unwrap();
}

fn aad<'a>(column: &'a str, agency: Uuid, row: &'a str) -> Aad<'a> {
    Aad {
        table: "social_accounts",
        column,
        agency: Some(agency),
        row,
    }
}

/// A sandbox, and an account connected to it through the real connector.
async fn world(pool: PgPool) -> World {
    let base = autosocial_sandbox::spawn(Knobs {
        auto_approve: true,
        ..Knobs::default()
    })
    .await
    .unwrap()
    .as_str()
    .trim_end_matches('/')
    .to_owned();
    let platforms = PlatformArgs::sandbox(Some(url::Url::parse(&base).unwrap())).config();
    let connector = platforms::connector(Platform::Sandbox, &platforms).unwrap();
    let app = platforms.app(Platform::Sandbox).unwrap();
    let redirect = url::Url::parse("http://127.0.0.1:9/oauth/callback/sandbox").unwrap();
    let verifier = "a-verifier-of-enough-length-0123456789-abcdefgh";
    let auth = connector.authorization_url(&app, &redirect, "st", verifier);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(auth)
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t = connector
        .exchange_code(&app, &redirect, &code, verifier)
        .await
        .unwrap();

    let vault = autosocial_core::testing::vault();
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let account = Uuid::now_v7();
    let row = account.to_string();
    sqlx::query(
        "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, access_token_ct, refresh_token_ct, key_id, token_expires_at)
         VALUES ($1, $2, $3, 'sandbox', 'sandbox-user-1', $4, $5, $6, now() + interval '30 minutes')",
    )
    .bind(account)
    .bind(agency)
    .bind(client)
    .bind(vault.encrypt_str(t.access_token.expose_secret(), &aad("access_token_ct", agency, &row)))
    .bind(vault.encrypt_str(t.refresh_token.as_ref().unwrap().expose_secret(), &aad("refresh_token_ct", agency, &row)))
    .bind(vault.current_key_id())
    .execute(&pool)
    .await
    .unwrap();
    let gate = Gate::new(pool.clone(), Duration::from_secs(2));
    World {
        pool,
        vault,
        platforms,
        gate,
        base,
        account,
        agency,
    }
}

async fn stored(w: &World) -> (String, String, String) {
    let (a, r, status): (Vec<u8>, Vec<u8>, String) = sqlx::query_as(
        "SELECT access_token_ct, refresh_token_ct, status FROM social_accounts WHERE id = $1",
    )
    .bind(w.account)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    let row = w.account.to_string();
    (
        w.vault
            .decrypt_string(&a, &aad("access_token_ct", w.agency, &row))
            .unwrap()
            .to_string(),
        w.vault
            .decrypt_string(&r, &aad("refresh_token_ct", w.agency, &row))
            .unwrap()
            .to_string(),
        status,
    )
}

async fn refresh(w: &World) -> Refreshed {
    tokens::refresh(&w.pool, &w.vault, &w.platforms, &w.gate, None, w.account)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_rotated_refresh_token_is_kept(pool: PgPool) {
    let w = world(pool).await;
    let (a0, r0, _) = stored(&w).await;
    assert_eq!(refresh(&w).await, Refreshed::Done);
    let (a1, r1, status) = stored(&w).await;
    assert_ne!(a0, a1);
    assert_ne!(r0, r1, "the rotated refresh token was stored");
    assert_eq!(status, "active");
    // the stored one is the live one: the next refresh works (the old one would revoke the grant)
    assert_eq!(refresh(&w).await, Refreshed::Done);
    let next = tokens::next_refresh(&w.pool, w.account)
        .await
        .unwrap()
        .expect("the next refresh is planned");
    assert_eq!(
        next.unique_key.as_deref(),
        Some(tokens::unique_key(w.account).as_str())
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_response_without_a_refresh_token_does_not_wipe_the_stored_one(pool: PgPool) {
    let w = world(pool).await;
    knobs(
        &w.base,
        Knobs {
            auto_approve: true,
            omit_refresh_token: true,
            ..Knobs::default()
        },
    )
    .await;
    let (a0, r0, _) = stored(&w).await;
    assert_eq!(refresh(&w).await, Refreshed::Done);
    let (a1, r1, _) = stored(&w).await;
    assert_ne!(a0, a1);
    assert_eq!(r0, r1, "kept");
    assert_eq!(refresh(&w).await, Refreshed::Done, "and it still works");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_transient_failure_never_disconnects(pool: PgPool) {
    let w = world(pool).await;
    let before = stored(&w).await;
    knobs(
        &w.base,
        Knobs {
            auto_approve: true,
            fail_refresh: Some("transient".into()),
            ..Knobs::default()
        },
    )
    .await;
    assert!(matches!(
        refresh(&w).await,
        Refreshed::Retry(PlatformError::Transient(_))
    ));
    assert_eq!(stored(&w).await, before, "nothing changed");
    // the next try succeeds
    assert_eq!(refresh(&w).await, Refreshed::Done);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn invalid_grant_marks_the_account_needs_reconnect(pool: PgPool) {
    let w = world(pool).await;
    knobs(
        &w.base,
        Knobs {
            auto_approve: true,
            fail_refresh: Some("invalid_grant".into()),
            ..Knobs::default()
        },
    )
    .await;
    assert!(matches!(refresh(&w).await, Refreshed::NeedsReconnect(_)));
    let (status, reason): (String, String) =
        sqlx::query_as("SELECT status, status_reason FROM social_accounts WHERE id = $1")
            .bind(w.account)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(status, "needs_reconnect");
    assert!(reason.contains("revoked by the user"), "{reason}");
    assert_eq!(
        refresh(&w).await,
        Refreshed::Skipped("account is not active")
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_sweep_enqueues_one_refresh_per_expiring_account(pool: PgPool) {
    let w = world(pool).await;
    assert_eq!(tokens::sweep(&w.pool).await.unwrap(), 1);
    assert_eq!(
        tokens::sweep(&w.pool).await.unwrap(),
        0,
        "unique per account"
    );
    let key: String =
        sqlx::query_scalar("SELECT unique_key FROM jobs WHERE kind = 'refresh_token'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(key, tokens::unique_key(w.account));
    sqlx::query("UPDATE social_accounts SET token_expires_at = now() + interval '1 day'")
        .execute(&w.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM jobs")
        .execute(&w.pool)
        .await
        .unwrap();
    assert_eq!(tokens::sweep(&w.pool).await.unwrap(), 0, "nothing due");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn wrong_app_credentials_stop_the_refresh_and_are_shown_until_the_app_works(pool: PgPool) {
    let mut w = world(pool).await;
    let good = w.platforms.clone();
    // the deployment's app with a wrong secret: the sandbox answers invalid_client
    let mut bad = w.platforms.clone();
    bad.sandbox_app = Some(platforms::OAuthApp {
        client_id: "autosocial-sandbox-client".into(),
        client_secret: secrecy::SecretString::from("not-the-secret".to_owned()),
    });
    let before = stored(&w).await;
    w.platforms = bad;
    match refresh(&w).await {
        Refreshed::AppRefused(reason) => assert!(!reason.is_empty()),
        other => panic!("expected the app's credentials refused, got {other:?}"),
    }
    assert_eq!(
        stored(&w).await,
        before,
        "the account is untouched: still active, same tokens"
    );
    let refusals = autosocial_core::platform_apps::refusals(&w.pool, w.agency)
        .await
        .unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].platform, Platform::Sandbox);
    assert!(
        !refusals[0].own_app,
        "the deployment's app, not the agency's"
    );
    assert_eq!(refusals[0].client_id, "autosocial-sandbox-client");
    // no secret in what is kept
    assert!(!refusals[0].message.contains("not-the-secret"));

    // the app fixed: the next refresh works and the refusal is gone
    w.platforms = good;
    assert_eq!(refresh(&w).await, Refreshed::Done);
    assert!(
        autosocial_core::platform_apps::refusals(&w.pool, w.agency)
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_used_authorization_code_is_a_rejected_code_not_a_revoked_grant(pool: PgPool) {
    let w = world(pool).await;
    let connector = platforms::connector(Platform::Sandbox, &w.platforms).unwrap();
    let app = w.platforms.app(Platform::Sandbox).unwrap();
    let redirect = url::Url::parse("http://127.0.0.1:9/oauth/callback/sandbox").unwrap();
    // `world` already exchanged its code: a made-up one and a used one are both refused
    match connector
        .exchange_code(
            &app,
            &redirect,
            "no-such-code",
            "a-verifier-of-enough-length-0123456789-abcdefgh",
        )
        .await
    {
        Err(e @ PlatformError::CodeRejected(_)) => {
            let text = e.to_string();
            assert!(
                text.contains("did not accept the authorization code"),
                "{text}"
            );
            assert!(!text.contains("revoked"), "{text}");
        }
        Err(other) => panic!("expected the code rejected, got {other:?}"),
        Ok(_) => panic!("a made-up code was accepted"),
    }
}
