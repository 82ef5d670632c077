//! The JSON API's resources around posts: item edits and moves, publications, kill switches and
//! media uploads, each through the lifecycle the console uses, audited with the key.

mod api_support;
mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use api_support::*;
use autosocial_core::audit::Actor;
use autosocial_core::domain::{PublicationState, Role};
use autosocial_core::testing::build;

// ---------------------------------------------------------------------------------------------
// Items: edit, regenerate, cancel, reschedule; list filters

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn items_are_edited_regenerated_cancelled_and_moved_by_the_lifecycle(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let reviewer = key(&pool, &t, "desk", Role::Reviewer, None).await;
    let api = api(&pool).await;
    let item = format!("/api/v1/items/{}", t.pending[0]);
    let r = api.get(&item, &reviewer).await;
    r.ok(StatusCode::OK);
    let etag = r.header("etag").unwrap().to_owned();
    // edit: every wrong field listed, nothing saved
    let bad = api
        .patch(
            &item,
            &reviewer,
            &json!({ "caption": " ", "link_url": "ftp://x", "hashtags": "x", "cta": 5 }),
            &[],
        )
        .await;
    assert_eq!(
        bad.fields(),
        ["caption", "link_url", "hashtags", "cta"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let edited = api
        .patch(
            &item,
            &reviewer,
            &json!({ "caption": "Sourdough Saturday", "hashtags": ["bread", "#local"] }),
            &[("if-match", &etag)],
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(edited["caption"], "Sourdough Saturday");
    assert_eq!(edited["hashtags"], json!(["#bread", "#local"]));
    assert_eq!(edited["moderation_status"], "pass");
    let (actor, target, _) = audited(&pool, t.agency, "item.edit").await;
    names_key(&actor, "desk");
    assert_eq!(target.as_deref(), Some(t.pending[0].to_string().as_str()));
    api.patch(
        &item,
        &reviewer,
        &json!({ "caption": "Again" }),
        &[("if-match", &etag)],
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED, "precondition-failed");
    let caption: String = scalar(
        &pool,
        "SELECT caption FROM content_items WHERE id = $1",
        t.pending[0],
    )
    .await;
    assert_eq!(caption, "Sourdough Saturday");

    // regenerate: back to planned with its generate job
    let regen = api
        .post(
            &format!("/api/v1/items/{}/regenerate", t.pending[1]),
            &reviewer,
            &json!({}),
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(regen["state"], "planned");
    let jobs: i64 = scalar(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'generate' AND payload->>'item_id' = $1::text",
        t.pending[1],
    )
    .await;
    assert_eq!(jobs, 1);
    names_key(&audited(&pool, t.agency, "item.regenerate").await.0, "desk");

    // approve, then move: the client's zone reads a local time; then cancel
    api.post(&format!("{item}/approve"), &reviewer, &json!({}))
        .await
        .ok(StatusCode::OK);
    sqlx::query("UPDATE clients SET timezone = 'Europe/Berlin' WHERE id = $1")
        .bind(t.clients[0])
        .execute(&pool)
        .await
        .unwrap();
    let year = (Utc::now() + TimeDelta::days(400)).format("%Y").to_string();
    let bad = api
        .post(
            &format!("{item}/reschedule"),
            &reviewer,
            &json!({ "slot_at": "next week" }),
        )
        .await;
    assert_eq!(bad.fields(), BTreeSet::from(["slot_at".to_owned()]));
    let passed = api
        .post(
            &format!("{item}/reschedule"),
            &reviewer,
            &json!({ "slot_at": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(passed.fields(), BTreeSet::from(["slot_at".to_owned()]));
    let moved = api
        .post(
            &format!("{item}/reschedule"),
            &reviewer,
            &json!({ "slot_at": format!("{year}-07-01T14:00") }),
        )
        .await
        .ok(StatusCode::OK);
    let expected: chrono::DateTime<Utc> = format!("{year}-07-01T12:00:00Z").parse().unwrap();
    let slot: chrono::DateTime<Utc> = moved["slot_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(slot, expected);
    let scheduled: chrono::DateTime<Utc> = scalar(
        &pool,
        "SELECT scheduled_at FROM publications WHERE item_id = $1",
        t.pending[0],
    )
    .await;
    assert_eq!(scheduled, expected);
    let exact = api
        .post(
            &format!("{item}/reschedule"),
            &reviewer,
            &json!({ "slot_at": format!("{year}-07-01T14:00:00+00:00") }),
        )
        .await
        .ok(StatusCode::OK);
    let slot: chrono::DateTime<Utc> = exact["slot_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(slot, expected + TimeDelta::hours(2));
    names_key(&audited(&pool, t.agency, "item.reschedule").await.0, "desk");
    let cancelled = api
        .post(&format!("{item}/cancel"), &reviewer, &json!({}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(cancelled["state"], "cancelled");
    let state: String = scalar(
        &pool,
        "SELECT state FROM publications WHERE item_id = $1",
        t.pending[0],
    )
    .await;
    assert_eq!(state, "cancelled");
    names_key(&audited(&pool, t.agency, "item.cancel").await.0, "desk");
    // a cancelled item cannot move
    api.post(&format!("{item}/cancel"), &reviewer, &json!({}))
        .await
        .problem(StatusCode::CONFLICT, "invalid-state");

    // list filters: slot window
    let from = (expected - TimeDelta::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let listed = api
        .get(&format!("/api/v1/items?from={from}"), &reviewer)
        .await
        .ok(StatusCode::OK);
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [t.pending[0].to_string()]);
    api.get("/api/v1/items?to=yesterday", &reviewer)
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed-request");
}

// ---------------------------------------------------------------------------------------------
// Publications

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn publications_are_listed_with_filters_and_pages_and_show_their_outcome(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let viewer = key(&pool, &t, "wall", Role::Viewer, None).await;
    let api = api(&pool).await;
    let item = build::item(t.agency, t.clients[0])
        .state(autosocial_core::domain::ItemState::Published)
        .targets(&[t.accounts[0]])
        .insert(&pool)
        .await;
    let published = build::publication(t.agency, t.clients[0], item, t.accounts[0])
        .state(PublicationState::Published)
        .scheduled_at(Utc::now() - TimeDelta::hours(2))
        .published("post-123", Utc::now() - TimeDelta::hours(1))
        .insert(&pool)
        .await;
    sqlx::query("UPDATE publications SET platform_post_url = 'https://x.example/p/123', attempts = 1 WHERE id = $1")
        .bind(published)
        .execute(&pool)
        .await
        .unwrap();
    let one = api
        .get(&format!("/api/v1/publications/{published}"), &viewer)
        .await
        .ok(StatusCode::OK);
    assert_eq!(one["state"], "published");
    assert_eq!(one["platform_post_id"], "post-123");
    assert_eq!(one["platform_post_url"], "https://x.example/p/123");
    assert_eq!(one["attempts"], 1);
    let all = api
        .get("/api/v1/publications", &viewer)
        .await
        .ok(StatusCode::OK);
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    let by = |q: String| {
        let api = api.clone();
        let viewer = viewer.clone();
        async move {
            let v = api
                .get(&format!("/api/v1/publications?{q}"), &viewer)
                .await
                .ok(StatusCode::OK);
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by("state=published".into()).await, [published.to_string()]);
    assert_eq!(
        by(format!("client={}", t.clients[1])).await,
        [t.publications[1].to_string()]
    );
    assert_eq!(
        by(format!("account={}&state=scheduled", t.accounts[0])).await,
        [t.publications[0].to_string()]
    );
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(by(format!("to={now}")).await, [published.to_string()]);
    assert_eq!(by(format!("from={now}")).await.len(), 2);
    // cursor pages cover everything once
    let mut seen = Vec::new();
    let mut uri = "/api/v1/publications?limit=2".to_owned();
    loop {
        let page = api.get(&uri, &viewer).await.ok(StatusCode::OK);
        for p in page["data"].as_array().unwrap() {
            seen.push(p["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/publications?limit=2&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    api.get("/api/v1/publications?state=lost", &viewer)
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed-request");
}

// ---------------------------------------------------------------------------------------------
// Kill switches

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_key_engages_and_disengages_its_agencys_switches_never_the_deployments(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "ops", Role::Admin, None).await;
    let api = api(&pool).await;
    // a deployment-wide switch, engaged by the operator: seen, not touchable
    let operator = Actor {
        user_id: None,
        label: "cli".into(),
        ip: None,
    };
    let global = autosocial_core::killswitch::engage(
        &pool,
        None,
        std::time::Duration::ZERO,
        &operator,
        autosocial_core::killswitch::Target::Global,
        "platform outage",
    )
    .await
    .unwrap();
    let listed = api
        .get("/api/v1/kill-switches", &admin)
        .await
        .ok(StatusCode::OK);
    let ids: BTreeSet<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([global.to_string(), t.switch.to_string()])
    );
    let g = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == global.to_string())
        .unwrap();
    assert_eq!(g["deployment_wide"], true);
    assert_eq!(g["reason"], "platform outage");
    for scope in ["global", "platform_all"] {
        api.post(
            "/api/v1/kill-switches",
            &admin,
            &json!({ "scope": scope, "platform": "x", "reason": "no" }),
        )
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    }
    api.post(
        &format!("/api/v1/kill-switches/{global}/disengage"),
        &admin,
        &json!({}),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    let still: bool = scalar(
        &pool,
        "SELECT disengaged_at IS NULL FROM kill_switches WHERE id = $1",
        global,
    )
    .await;
    assert!(still);
    // validation lists the fields
    let bad = api
        .post(
            "/api/v1/kill-switches",
            &admin,
            &json!({ "scope": "client", "platform": "x" }),
        )
        .await;
    assert_eq!(
        bad.fields(),
        ["reason", "client_id", "platform"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    // engage a client switch: durable, audited naming the key
    let r = api
        .post(
            "/api/v1/kill-switches",
            &admin,
            &json!({ "scope": "client", "client_id": t.clients[1], "reason": "client asked to stop" }),
        )
        .await;
    let s = r.ok(StatusCode::CREATED);
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/kill-switches/{id}").as_str())
    );
    assert_eq!(s["scope"], "client");
    assert_eq!(s["client_id"], t.clients[1].to_string());
    let (actor, target, details) = audited(&pool, t.agency, "kill_switch.engage").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(id.to_string().as_str()));
    assert_eq!(details["reason"], "client asked to stop");
    api.post(
        "/api/v1/kill-switches",
        &admin,
        &json!({ "scope": "client", "client_id": t.clients[1], "reason": "again" }),
    )
    .await
    .problem(StatusCode::CONFLICT, "invalid-state");
    // a platform switch for the agency is an agency scope too
    api.post(
        "/api/v1/kill-switches",
        &admin,
        &json!({ "scope": "platform", "platform": "x", "reason": "X is flaky" }),
    )
    .await
    .ok(StatusCode::CREATED);
    // a key limited to the first client sees the agency-wide switches, not the second client's
    let limited = key(&pool, &t, "one", Role::Admin, Some(&[t.clients[0]])).await;
    let seen = api
        .get("/api/v1/kill-switches", &limited)
        .await
        .ok(StatusCode::OK);
    let seen: Vec<&Value> = seen["data"].as_array().unwrap().iter().collect();
    assert!(seen.iter().any(|s| s["scope"] == "platform"));
    assert!(!seen.iter().any(|s| s["id"] == id.to_string()));
    api.get(&format!("/api/v1/kill-switches/{id}"), &limited)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    api.post(
        &format!("/api/v1/kill-switches/{id}/disengage"),
        &limited,
        &json!({}),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    // disengage
    let d = api
        .post(
            &format!("/api/v1/kill-switches/{id}/disengage"),
            &admin,
            &json!({}),
        )
        .await
        .ok(StatusCode::OK);
    assert!(d["disengaged_at"].is_string());
    let (actor, target, _) = audited(&pool, t.agency, "kill_switch.disengage").await;
    names_key(&actor, "ops");
    assert_eq!(target.as_deref(), Some(id.to_string().as_str()));
    // and it may stop only that client (or its accounts)
    api.post(
        "/api/v1/kill-switches",
        &limited,
        &json!({ "scope": "agency", "reason": "x" }),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    api.post(
        "/api/v1/kill-switches",
        &limited,
        &json!({ "scope": "client", "client_id": t.clients[1], "reason": "x" }),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    api.post(
        "/api/v1/kill-switches",
        &limited,
        &json!({ "scope": "account", "account_id": t.accounts[0], "reason": "x" }),
    )
    .await
    .problem(StatusCode::CONFLICT, "invalid-state");
}

// ---------------------------------------------------------------------------------------------
// Media

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 120, 40]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_uploaded_image_is_decoded_stored_and_usable_in_a_new_item(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let reviewer = key(&pool, &t, "desk", Role::Reviewer, None).await;
    let viewer = key(&pool, &t, "wall", Role::Viewer, None).await;
    let api = api(&pool).await;
    let uri = format!("/api/v1/clients/{}/media", t.clients[0]);
    // not an image, a truncated one, the wrong field: refused, nothing stored
    let text = api
        .upload(&uri, &reviewer, "file", b"hello, not an image")
        .await;
    assert_eq!(text.fields(), BTreeSet::from(["file".to_owned()]));
    let full = png(64, 48);
    let cut = api
        .upload(&uri, &reviewer, "file", &full[..full.len() / 2])
        .await;
    assert_eq!(cut.fields(), BTreeSet::from(["file".to_owned()]));
    let wrong = api.upload(&uri, &reviewer, "image", &full).await;
    assert_eq!(
        wrong.fields(),
        BTreeSet::from(["image".to_owned(), "file".to_owned()])
    );
    api.post(&uri, &reviewer, &json!({ "file": "x" }))
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    api.upload(&uri, &viewer, "file", &full)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let none: i64 = scalar(
        &pool,
        "SELECT count(*) FROM media_assets WHERE agency_id = $1",
        t.agency,
    )
    .await;
    assert_eq!(none, 0);
    // a real PNG
    let m = api
        .upload(&uri, &reviewer, "file", &full)
        .await
        .ok(StatusCode::CREATED);
    assert_eq!(m["mime"], "image/png");
    assert_eq!(
        (m["width"].as_i64(), m["height"].as_i64()),
        (Some(64), Some(48))
    );
    let media: Uuid = m["id"].as_str().unwrap().parse().unwrap();
    let (actor, target, _) = audited(&pool, t.agency, "media.upload").await;
    names_key(&actor, "desk");
    assert_eq!(target.as_deref(), Some(media.to_string().as_str()));
    // it makes an image post; another client's item cannot use it
    let body = |client: Uuid, account: Uuid| {
        json!({
            "client_id": client, "accounts": [account], "caption": "Our new loaf",
            "slot_at": (Utc::now() + TimeDelta::days(2)).to_rfc3339(), "media_id": media,
        })
    };
    let item = api
        .post(
            "/api/v1/items",
            &reviewer,
            &body(t.clients[0], t.accounts[0]),
        )
        .await
        .ok(StatusCode::CREATED);
    assert_eq!(item["content_type"], "image");
    let attached: i64 = scalar(
        &pool,
        "SELECT count(*) FROM content_item_media WHERE item_id = $1",
        item["id"].as_str().unwrap().parse().unwrap(),
    )
    .await;
    assert_eq!(attached, 1);
    let other = api
        .post(
            "/api/v1/items",
            &reviewer,
            &body(t.clients[1], t.accounts[1]),
        )
        .await;
    assert_eq!(other.fields(), BTreeSet::from(["media_id".to_owned()]));
}
