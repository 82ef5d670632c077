//! The JSON API's resources around clients: pause and resume, accounts and their token
//! health, onboarding links, brand and rules. Each route's effect in the database and its audit
//! entry naming the key; validation errors listing their fields; a stale If-Match is 412.
//! (`api_resources_items.rs`: items, publications, kill switches, media; `api_resources_scope.rs`:
//! roles and tenant isolation over every new route.)

mod api_support;
mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use api_support::*;
use autosocial_core::domain::Role;

// ---------------------------------------------------------------------------------------------
// Clients: pause and resume

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn pausing_holds_a_clients_posts_and_resuming_releases_them(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "ops", Role::Admin, None).await;
    let api = api(&pool).await;
    let c = t.clients[1];
    let p = api
        .post(&format!("/api/v1/clients/{c}/pause"), &admin, &json!({}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(p["status"], "paused");
    assert!(
        api.get(&format!("/api/v1/clients/{c}"), &admin)
            .await
            .json()["status"]
            == "paused"
    );
    let (actor, target, details) = audited(&pool, t.agency, "client.status").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(c.to_string().as_str()));
    assert_eq!(details["status"], "paused");
    // a held post goes out again on resume
    sqlx::query(
        "UPDATE publications SET state = 'held', held_reason = 'client paused' WHERE id = $1",
    )
    .bind(t.publications[1])
    .execute(&pool)
    .await
    .unwrap();
    let r = api
        .post(&format!("/api/v1/clients/{c}/resume"), &admin, &json!({}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(r["status"], "active");
    let state: String = scalar(
        &pool,
        "SELECT state FROM publications WHERE id = $1",
        t.publications[1],
    )
    .await;
    assert_eq!(state, "scheduled");
    let (_, _, details) = audited(&pool, t.agency, "client.status").await;
    assert_eq!(details["status"], "active");
    // an action takes no fields
    let r = api
        .post(
            &format!("/api/v1/clients/{c}/pause"),
            &admin,
            &json!({ "why": 1 }),
        )
        .await;
    assert_eq!(r.fields(), BTreeSet::from(["why".to_owned()]));
    let status: String = scalar(&pool, "SELECT status FROM clients WHERE id = $1", c).await;
    assert_eq!(status, "active");
}

// ---------------------------------------------------------------------------------------------
// Accounts

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn accounts_show_token_health_and_disconnecting_holds_their_posts(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "ops", Role::Admin, None).await;
    let api = api(&pool).await;
    // one token expired, one account needing a reconnect
    sqlx::query("UPDATE social_accounts SET token_expires_at = now() - interval '1 hour', scopes = '{tweet.write}' WHERE id = $1")
        .bind(t.accounts[0])
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE social_accounts SET status = 'needs_reconnect', status_reason = 'token revoked' WHERE id = $1")
        .bind(t.accounts[1])
        .execute(&pool)
        .await
        .unwrap();
    let all = api.get("/api/v1/accounts", &admin).await.ok(StatusCode::OK);
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    assert!(!String::from_utf8_lossy(&serde_json::to_vec(&all).unwrap()).contains("token_ct"));
    let one = api
        .get(&format!("/api/v1/accounts?client={}", t.clients[0]), &admin)
        .await
        .ok(StatusCode::OK);
    let a = &one["data"][0];
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(a["id"], t.accounts[0].to_string());
    assert_eq!(a["token"]["expired"], true);
    assert_eq!(a["token"]["needs_reconnect"], false);
    assert_eq!(a["token"]["scopes"], json!(["tweet.write"]));
    assert_eq!(a["scheduled_posts"], 1);
    let broken = api
        .get("/api/v1/accounts?status=needs_reconnect", &admin)
        .await
        .ok(StatusCode::OK);
    assert_eq!(broken["data"].as_array().unwrap().len(), 1);
    assert_eq!(broken["data"][0]["token"]["needs_reconnect"], true);
    assert_eq!(broken["data"][0]["status_reason"], "token revoked");
    // pages of one
    let first = api
        .get("/api/v1/accounts?limit=1", &admin)
        .await
        .ok(StatusCode::OK);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = api
        .get(&format!("/api/v1/accounts?limit=1&cursor={cursor}"), &admin)
        .await
        .ok(StatusCode::OK);
    assert_ne!(first["data"][0]["id"], second["data"][0]["id"]);
    assert!(second["next_cursor"].is_null());
    api.get("/api/v1/accounts?status=gone", &admin)
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed-request");

    // disconnect: the account stops, its scheduled post is held, audited with the key
    let d = api
        .post(
            &format!("/api/v1/accounts/{}/disconnect", t.accounts[0]),
            &admin,
            &json!({}),
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(d["status"], "disconnected");
    assert_eq!(d["held_posts"], 1);
    let state: String = scalar(
        &pool,
        "SELECT state FROM publications WHERE id = $1",
        t.publications[0],
    )
    .await;
    assert_eq!(state, "held");
    let (actor, target, details) = audited(&pool, t.agency, "account.disconnect").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(t.accounts[0].to_string().as_str()));
    assert_eq!(details["held_publications"], 1);
    let shown = api
        .get(&format!("/api/v1/accounts/{}", t.accounts[0]), &admin)
        .await
        .ok(StatusCode::OK);
    assert!(
        shown["status_reason"]
            .as_str()
            .unwrap()
            .contains("through the API")
    );
}

// ---------------------------------------------------------------------------------------------
// Onboarding links

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_onboarding_link_is_shown_once_listed_without_its_url_and_revocable(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "ops", Role::Admin, None).await;
    let api = api(&pool).await;
    let c = t.clients[0];
    let r = api
        .post(
            &format!("/api/v1/clients/{c}/onboarding-links"),
            &admin,
            &json!({}),
        )
        .await;
    let created = r.ok(StatusCode::CREATED);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let url = created["url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap();
    assert!(url.contains("/onboard/") && token.len() >= 40, "{url}");
    assert_eq!(created["state"], "active");
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    // stored only as its hash, and it opens the client's onboarding
    let stored: Vec<u8> = scalar(
        &pool,
        "SELECT token_hash FROM onboarding_links WHERE id = $1",
        id,
    )
    .await;
    assert_ne!(stored, token.as_bytes());
    assert!(
        autosocial_core::onboarding::open(&pool, token)
            .await
            .unwrap()
            .is_some()
    );
    let (actor, target, details) = audited(&pool, t.agency, "onboarding_link.create").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(c.to_string().as_str()));
    assert_eq!(details["link_id"], id.to_string());
    // the list and the link itself never show the URL again
    let list = api
        .get(&format!("/api/v1/clients/{c}/onboarding-links"), &admin)
        .await;
    let text = String::from_utf8_lossy(&list.bytes).to_string();
    assert!(!text.contains(token) && !text.contains("/onboard/"));
    assert_eq!(list.json()["data"].as_array().unwrap().len(), 2);
    // revoke: it opens nothing any more; revoking again is a conflict
    let revoked = api
        .post(
            &format!("/api/v1/onboarding-links/{id}/revoke"),
            &admin,
            &json!({}),
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(revoked["state"], "revoked");
    assert!(
        autosocial_core::onboarding::open(&pool, token)
            .await
            .unwrap()
            .is_none()
    );
    let (actor, target, _) = audited(&pool, t.agency, "onboarding_link.revoke").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(id.to_string().as_str()));
    api.post(
        &format!("/api/v1/onboarding-links/{id}/revoke"),
        &admin,
        &json!({}),
    )
    .await
    .problem(StatusCode::CONFLICT, "invalid-state");
}

// ---------------------------------------------------------------------------------------------
// Brand and rules

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_brand_is_changed_with_the_consoles_checks_and_a_stale_etag_is_412(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "ops", Role::Admin, None).await;
    let api = api(&pool).await;
    let uri = format!("/api/v1/clients/{}/brand", t.clients[0]);
    let r = api.get(&uri, &admin).await;
    let before = r.ok(StatusCode::OK);
    let etag = r.header("etag").unwrap().to_owned();
    // every wrong field is listed, and nothing is saved
    let bad = api
        .patch(
            &uri,
            &admin,
            &json!({
                "tone": "calm\u{7}",
                "banned_terms": ["!!!"],
                "hashtag_sets": { "food": ["#bre ad!"] },
                "color_primary": "blue",
                "font": "Comic Neue Imaginary",
                "pillars": "not a list",
                "mood": "x",
            }),
            &[],
        )
        .await;
    assert_eq!(
        bad.fields(),
        [
            "tone",
            "banned_terms",
            "hashtag_sets",
            "color_primary",
            "font",
            "pillars",
            "mood"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    let rows: i64 = scalar(
        &pool,
        "SELECT count(*) FROM brand_settings WHERE client_id = $1",
        t.clients[0],
    )
    .await;
    assert_eq!(rows, 0);
    // a good change, based on the current version
    let after = api
        .patch(
            &uri,
            &admin,
            &json!({
                "voice": "Warm and local.",
                "pillars": ["Fresh bread", "Neighbours"],
                "banned_terms": ["cheap", "cheap", "fast food"],
                "hashtag_sets": { "food": ["bread", "#bakery"] },
                "color_primary": "#1D4ED8",
                "handle": "@acme",
            }),
            &[("if-match", &etag)],
        )
        .await;
    let b = after.ok(StatusCode::OK);
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert_eq!(b["voice"], "Warm and local.");
    assert_eq!(b["banned_terms"], json!(["cheap", "fast food"]));
    assert_eq!(b["hashtag_sets"], json!({ "food": ["#bread", "#bakery"] }));
    assert_eq!(b["color_primary"], "#1d4ed8");
    assert_eq!(b["color_text"], before["color_text"]);
    let terms: Vec<String> = scalar(
        &pool,
        "SELECT banned_terms FROM brand_settings WHERE client_id = $1",
        t.clients[0],
    )
    .await;
    assert_eq!(terms, ["cheap", "fast food"]);
    let (actor, target, details) = audited(&pool, t.agency, "brand.update").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(t.clients[0].to_string().as_str()));
    assert_eq!(details["banned_terms"], 2);
    // the first ETag is stale now: 412, and nothing changes
    api.patch(
        &uri,
        &admin,
        &json!({ "voice": "Loud." }),
        &[("if-match", &etag)],
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED, "precondition-failed");
    let voice: String = scalar(
        &pool,
        "SELECT voice FROM brand_settings WHERE client_id = $1",
        t.clients[0],
    )
    .await;
    assert_eq!(voice, "Warm and local.");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_rule_is_changed_with_the_consoles_checks_and_its_plan_job_enqueued(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "ops", Role::Admin, None).await;
    let api = api(&pool).await;
    let list = api
        .get(&format!("/api/v1/clients/{}/rules", t.clients[0]), &admin)
        .await
        .ok(StatusCode::OK);
    assert_eq!(list["data"][0]["id"], t.rules[0].to_string());
    assert_eq!(list["data"][0]["local_times"], json!(["09:00"]));
    let uri = format!("/api/v1/rules/{}", t.rules[0]);
    let r = api.get(&uri, &admin).await;
    r.ok(StatusCode::OK);
    let etag = r.header("etag").unwrap().to_owned();
    // the console form's checks, named as the API names the fields
    let bad = api
        .patch(
            &uri,
            &admin,
            &json!({
                "name": " ",
                "frequency": "hourly",
                "days_of_week": [0, 8],
                "local_times": ["25:00"],
                "content_types": ["video"],
                "min_gap_minutes": 99999,
                "accounts": [t.accounts[1]],
            }),
            &[],
        )
        .await;
    assert_eq!(
        bad.fields(),
        [
            "name",
            "frequency",
            "days_of_week",
            "local_times",
            "content_types",
            "min_gap_minutes",
            "accounts"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    let changed = api
        .patch(
            &uri,
            &admin,
            &json!({
                "posts_per_period": 2,
                "local_times": ["08:30", "17:00"],
                "accounts": [t.accounts[0]],
            }),
            &[("if-match", &etag)],
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(changed["posts_per_period"], 2);
    assert_eq!(changed["local_times"], json!(["08:30", "17:00"]));
    assert_eq!(changed["accounts"], json!([t.accounts[0]]));
    assert_eq!(changed["name"], "Weekday mornings");
    let (actor, target, details) = audited(&pool, t.agency, "rule.update").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(t.rules[0].to_string().as_str()));
    assert_eq!(details["posts_per_period"], 2);
    let plans: i64 = scalar(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'plan' AND client_id = $1",
        t.clients[0],
    )
    .await;
    assert!(plans >= 1);
    api.patch(
        &uri,
        &admin,
        &json!({ "enabled": false }),
        &[("if-match", &etag)],
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED, "precondition-failed");
    let enabled: bool = scalar(
        &pool,
        "SELECT enabled FROM content_rules WHERE id = $1",
        t.rules[0],
    )
    .await;
    assert!(enabled);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_link_made_with_an_idempotency_key_is_made_once_and_its_url_never_kept(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "ops", Role::Admin, None).await;
    let api = api(&pool).await;
    let uri = format!("/api/v1/clients/{}/onboarding-links", t.clients[1]);
    let send = || {
        api.call(
            axum::http::Method::POST,
            &uri,
            &admin,
            None,
            &[("idempotency-key", "link-for-florist")],
        )
    };
    let first = send().await;
    let url = first.ok(StatusCode::CREATED)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = url.rsplit('/').next().unwrap().to_owned();
    // the retry makes no second link and does not show the URL again
    let again = send().await;
    again.problem(StatusCode::CONFLICT, "invalid-state");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert!(!String::from_utf8_lossy(&again.bytes).contains(&token));
    let links: i64 = scalar(
        &pool,
        "SELECT count(*) FROM onboarding_links WHERE client_id = $1",
        t.clients[1],
    )
    .await;
    assert_eq!(links, 2, "the tenant's link and this one");
    // the idempotency store holds no copy of the secret
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_idempotency WHERE position(convert_to($1, 'UTF8') in body) > 0",
    )
    .bind(&token)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, 0);
}
