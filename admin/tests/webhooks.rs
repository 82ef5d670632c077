//! Webhook endpoints through the JSON API (`/api/v1/webhooks`) and the console (Settings →
//! Webhooks): created with the secret shown once, validated field by field, and scoped by
//! agency on every route (another agency's ids are 404, a client-limited key is 403).

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

use autosocial_admin::app::router;
use autosocial_admin::config::WebArgs;
use autosocial_core::api_keys::{self, NewKey};
use autosocial_core::audit::Actor;
use autosocial_core::domain::Role;
use common::{Browser, agency_id, state_with, user};

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(&b).unwrap())
        }
        None => Body::empty(),
    };
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        app.clone().oneshot(req.body(body).unwrap()),
    )
    .await
    .expect("answered within 30 s")
    .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn key(pool: &PgPool, agency: Uuid, clients: Option<&[Uuid]>) -> String {
    let mut tx = pool.begin().await.unwrap();
    let k = api_keys::create(
        &mut tx,
        &Actor::system("test"),
        agency,
        &NewKey {
            name: "hooks",
            role: Role::Admin,
            clients,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    k.secret
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_api_creates_endpoints_and_keeps_them_to_their_agency(pool: PgPool) {
    user(&pool, "Acme Agency", "owner@acme.test", Role::Owner).await;
    user(&pool, "Other Agency", "owner@other.test", Role::Owner).await;
    let acme = agency_id(&pool, "Acme Agency").await;
    let other = agency_id(&pool, "Other Agency").await;
    let client = common::client(&pool, "Acme Agency", "Acme Bakery").await;
    let state = state_with(pool.clone(), WebArgs::for_tests()).await;
    let app = router(state);
    let a = key(&pool, acme, None).await;
    let limited = key(&pool, acme, Some(&[client])).await;
    let b = key(&pool, other, None).await;

    // every wrong field at once, nothing created
    let (s, p) = call(&app, Method::POST, "/api/v1/webhooks", &a,
        Some(json!({ "url": "ftp://hooks.example.com", "event_types": ["item.deleted"], "colour": 1 }))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let mut f = fields(&p);
    f.sort();
    assert_eq!(f, ["colour", "event_types", "url"]);
    let (s, p) = call(&app, Method::POST, "/api/v1/webhooks", &a, Some(json!({}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(fields(&p), ["url", "event_types"]);

    let (s, created) = call(&app, Method::POST, "/api/v1/webhooks", &a,
        Some(json!({ "url": "https://hooks.example.com/in", "event_types": ["item.approved", "killswitch.engaged"] }))).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = created["id"].as_str().unwrap().to_owned();
    let (s, shown) = call(
        &app,
        Method::GET,
        &format!("/api/v1/webhooks/{id}"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown only once"
    );
    assert_eq!(
        shown["event_types"],
        json!(["item.approved", "killswitch.engaged"])
    );

    // a test event, its delivery in the log, a redelivery
    let (s, t) = call(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/test"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{t}");
    let (s, log) = call(
        &app,
        Method::GET,
        &format!("/api/v1/webhooks/{id}/deliveries"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(log["data"][0]["event_type"], "webhook.test");
    assert_eq!(log["data"][0]["event_id"], t["event_id"]);
    let delivery = log["data"][0]["id"].as_str().unwrap().to_owned();

    // another agency's key: every route is 404, and its list is empty
    let (s, list) = call(&app, Method::GET, "/api/v1/webhooks", &b, None).await;
    assert_eq!(
        (s, list["data"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    for (method, uri, body) in [
        (Method::GET, format!("/api/v1/webhooks/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/webhooks/{id}"),
            Some(json!({ "enabled": false })),
        ),
        (Method::DELETE, format!("/api/v1/webhooks/{id}"), None),
        (
            Method::POST,
            format!("/api/v1/webhooks/{id}/rotate-secret"),
            None,
        ),
        (Method::POST, format!("/api/v1/webhooks/{id}/test"), None),
        (
            Method::GET,
            format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/webhook-deliveries/{delivery}/attempts"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhook-deliveries/{delivery}/redeliver"),
            None,
        ),
    ] {
        let (s, p) = call(&app, method.clone(), &uri, &b, body.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {uri}: {p}");
        // a key limited to some clients may not manage agency-wide webhooks
        let (s, _) = call(&app, method.clone(), &uri, &limited, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    let (s, still) = call(
        &app,
        Method::GET,
        &format!("/api/v1/webhooks/{id}"),
        &a,
        None,
    )
    .await;
    assert_eq!(
        (s, still["enabled"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    // the owner disables it, rotates its secret, and deletes it
    let (s, p) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        &a,
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(
        (s, p["enabled"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{p}"
    );
    assert!(
        p["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("api-key:hooks")
    );
    let (s, p) = call(
        &app,
        Method::POST,
        &format!("/api/v1/webhook-deliveries/{delivery}/redeliver"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    let (s, r) = call(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/rotate-secret"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(r["secret"], created["secret"]);
    assert!(r["previous_secret_expires_at"].is_string());
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/webhooks/{id}"),
        &a,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_console_shows_the_secret_once_and_keeps_endpoints_to_their_agency(pool: PgPool) {
    user(&pool, "Acme Agency", "admin@acme.test", Role::Admin).await;
    user(&pool, "Acme Agency", "reviewer@acme.test", Role::Reviewer).await;
    user(&pool, "Other Agency", "owner@other.test", Role::Owner).await;
    let state = state_with(pool.clone(), WebArgs::for_tests()).await;

    let mut reviewer = Browser::new(state.clone());
    reviewer.logged_in("reviewer@acme.test").await;
    assert_eq!(
        reviewer.get("/settings/webhooks").await.status,
        StatusCode::FORBIDDEN
    );

    let mut admin = Browser::new(state.clone());
    let csrf = admin.logged_in("admin@acme.test").await;
    // refused field by field, nothing stored
    let r = admin
        .post(
            "/settings/webhooks",
            &[
                ("_csrf", &csrf),
                ("url", "http//nope"),
                ("events", "item.deleted"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"wh-url-error\""));
    assert!(r.body.contains("id=\"wh-events-error\""));
    // without the CSRF token nothing happens
    let r = admin
        .post(
            "/settings/webhooks",
            &[
                ("url", "https://hooks.example.com/in"),
                ("events", "item.created"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);

    let r = admin
        .post(
            "/settings/webhooks",
            &[
                ("_csrf", &csrf),
                ("url", "https://hooks.example.com/in"),
                ("events", "item.created"),
                ("events", "publication.failed"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let marker = "id=\"new-secret\" type=\"text\" readonly value=\"";
    let start = r.body.find(marker).expect("the secret is shown") + marker.len();
    let secret = r.body[start..].split('"').next().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id: Uuid = sqlx::query_scalar("SELECT id FROM webhook_endpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    let page = admin.get("/settings/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("https://hooks.example.com/in"));
    assert!(
        !page.body.contains(&secret),
        "the secret is shown only once"
    );
    let r = admin
        .post(
            &format!("/settings/webhooks/{id}/test"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let log = admin.get(&format!("/settings/webhooks/{id}")).await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.body.contains("webhook.test"));
    assert!(!log.body.contains(&secret));

    // another agency's owner: not found, and nothing changes
    let mut other = Browser::new(state.clone());
    let ocsrf = other.logged_in("owner@other.test").await;
    assert_eq!(
        other.get(&format!("/settings/webhooks/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    for action in ["rotate", "enable", "disable", "delete", "test"] {
        let r = other
            .post(
                &format!("/settings/webhooks/{id}/{action}"),
                &[("_csrf", &ocsrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    let delivery: Uuid = sqlx::query_scalar("SELECT id FROM webhook_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    let r = other
        .post(
            &format!("/settings/webhook-deliveries/{delivery}/redeliver"),
            &[("_csrf", &ocsrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        !other
            .get("/settings/webhooks")
            .await
            .body
            .contains("hooks.example.com")
    );
    let enabled: bool =
        sqlx::query_scalar("SELECT disabled_at IS NULL FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(enabled);
}
