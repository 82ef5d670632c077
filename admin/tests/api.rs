//! The JSON API (`/api/v1`): keys created in Settings and their roles, client limits and
//! revocation; tenant isolation on every route; Problem Details on the error paths;
//! Idempotency-Key (replay, another body, in flight, a race); cursor pages while rows are
//! inserted; ETag and If-Match; the per-key rate limit; the OpenAPI document.

mod common;

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

use autosocial_admin::app::{AppState, router};
use autosocial_admin::config::WebArgs;
use autosocial_core::api_keys::{self, NewKey};
use autosocial_core::audit::Actor;
use autosocial_core::domain::{ItemState, Role};
use autosocial_core::testing::build;
use common::{Browser, agency_id, state_with, user};

const PROBLEM: &str = "application/problem+json";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A Problem Details answer of `status` and type `slug`; returns it.
    fn problem(&self, status: StatusCode, slug: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(self.header("content-type"), Some(PROBLEM));
        let p = self.json();
        assert_eq!(
            p["type"],
            format!("https://autosocial.dev/problems/{slug}"),
            "{p}"
        );
        assert_eq!(p["status"], status.as_u16());
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()));
        p
    }

    /// The fields an error lists.
    fn fields(&self) -> BTreeSet<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
                        e["field"].as_str().unwrap().to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct Api {
    app: Router,
}

impl Api {
    fn new(state: AppState) -> Api {
        Api { app: router(state) }
    }

    async fn raw(&self, req: Request<Body>) -> Answer {
        let res = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            self.app.clone().oneshot(req),
        )
        .await
        .expect("answered within 30 s")
        .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Answer {
            status,
            headers,
            bytes,
        }
    }

    /// `method uri` with the key, a JSON body (if any) and extra headers.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        key: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(b).unwrap())
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    async fn get(&self, uri: &str, key: &str) -> Answer {
        self.call(Method::GET, uri, key, None, &[]).await
    }

    async fn post(&self, uri: &str, key: &str, body: &Value) -> Answer {
        self.call(Method::POST, uri, key, Some(body), &[]).await
    }
}

/// An agency with an owner, two clients (each with an X account) and items waiting for review.
struct Tenant {
    agency: Uuid,
    owner: Uuid,
    owner_email: String,
    clients: [Uuid; 2],
    /// Pending items, one per client, with a target account.
    pending: [Uuid; 2],
    /// Each client's X account.
    accounts: [Uuid; 2],
}

async fn tenant(pool: &PgPool, name: &str) -> Tenant {
    let agency_name = format!("{name} Agency");
    let owner_email = format!("owner@{}.test", name.to_lowercase());
    let owner = user(pool, &agency_name, &owner_email, Role::Owner).await;
    let agency = agency_id(pool, &agency_name).await;
    let mut clients = [Uuid::nil(); 2];
    let mut pending = [Uuid::nil(); 2];
    let mut accounts = [Uuid::nil(); 2];
    for (i, label) in ["Bakery", "Florist"].iter().enumerate() {
        let client = common::client(pool, &agency_name, &format!("{name} {label}")).await;
        let account = common::account(pool, client, "x", &format!("@{name}_{label}")).await;
        pending[i] = build::item(agency, client)
            .generated()
            .caption(format!("{name} {label} caption"))
            .moderation("pass", Some(json!({ "reasons": [] })))
            .targets(&[account])
            .insert(pool)
            .await;
        clients[i] = client;
        accounts[i] = account;
    }
    Tenant {
        agency,
        owner,
        owner_email,
        clients,
        pending,
        accounts,
    }
}

/// A key of the tenant's agency, made as its owner would in Settings.
async fn key(
    pool: &PgPool,
    t: &Tenant,
    name: &str,
    role: Role,
    clients: Option<&[Uuid]>,
) -> String {
    let actor = Actor {
        user_id: Some(t.owner),
        label: t.owner_email.clone(),
        ip: None,
    };
    let mut tx = pool.begin().await.unwrap();
    let created = api_keys::create(
        &mut tx,
        &actor,
        t.agency,
        &NewKey {
            name,
            role,
            clients,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    created.secret
}

/// A body for `POST /api/v1/items`.
fn new_item(client: Uuid, accounts: &[Uuid]) -> Value {
    json!({
        "client_id": client,
        "accounts": accounts,
        "slot_at": (chrono::Utc::now() + chrono::TimeDelta::days(2)).to_rfc3339(),
        "caption": "Fresh bread every morning",
        "hashtags": ["bread", "#bakery"],
        "cta": "Visit us",
    })
}

async fn api(pool: &PgPool) -> Api {
    api_with(pool, WebArgs::for_tests()).await
}

async fn api_with(pool: &PgPool, web: WebArgs) -> Api {
    Api::new(state_with(pool.clone(), web).await)
}

async fn count(pool: &PgPool, sql: &str, bind: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(pool)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Keys in Settings

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_key_is_created_in_settings_shown_once_stored_hashed_audited_and_revocable(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    user(&pool, "Acme Agency", "admin@acme.test", Role::Admin).await;
    user(&pool, "Acme Agency", "reviewer@acme.test", Role::Reviewer).await;
    let state = state_with(pool.clone(), WebArgs::for_tests()).await;
    let api = Api::new(state.clone());

    // reviewers (and viewers) neither see nor make keys
    let mut reviewer = Browser::new(state.clone());
    let rcsrf = reviewer.logged_in("reviewer@acme.test").await;
    assert_eq!(
        reviewer.get("/settings/api-keys").await.status,
        StatusCode::FORBIDDEN
    );
    let r = reviewer
        .post(
            "/settings/api-keys",
            &[("_csrf", &rcsrf), ("name", "sneaky"), ("role", "admin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let mut admin = Browser::new(state.clone());
    let csrf = admin.logged_in("admin@acme.test").await;
    let page = admin.get("/settings/api-keys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Create a key"));
    // the main settings page leads there
    assert!(
        admin
            .get("/settings")
            .await
            .body
            .contains("href=\"/settings/api-keys\"")
    );

    // without the CSRF token: refused, nothing made
    let r = admin
        .post(
            "/settings/api-keys",
            &[("name", "CRM sync"), ("role", "reviewer")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // every field wrong at once: each is named, nothing made
    let r = admin
        .post(
            "/settings/api-keys",
            &[
                ("_csrf", &csrf),
                ("name", "  "),
                ("role", "owner"),
                ("clients", "Nobody Inc"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"key-name-error\""), "{}", r.body);
    assert!(r.body.contains("id=\"key-role-error\""));
    assert!(r.body.contains("“Nobody Inc”"));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_keys WHERE agency_id = $1",
            t.agency
        )
        .await,
        0
    );

    let r = admin
        .post(
            "/settings/api-keys",
            &[
                ("_csrf", &csrf),
                ("name", "CRM sync"),
                ("role", "reviewer"),
                ("clients", "acme bakery\n"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let start = r.body.find("value=\"as_live_").expect("the key is shown") + "value=\"".len();
    let secret: String = r.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert_eq!(secret.len(), "as_live_".len() + 43, "{secret}");

    // stored only as its SHA-256, with the client limit and who made it
    let (hash, all_clients, created_by): (Vec<u8>, bool, Option<Uuid>) = sqlx::query_as(
        "SELECT secret_hash, all_clients, created_by FROM api_keys WHERE agency_id = $1",
    )
    .bind(t.agency)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(hash, Sha256::digest(secret.as_bytes()).to_vec());
    assert!(!all_clients);
    assert!(created_by.is_some());
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys k WHERE strpos(k::text, $1) > 0 OR strpos(k::text, $2) > 0",
    )
    .bind(&secret)
    .bind(&secret[8..])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 0, "the key itself is nowhere in its row");

    // shown once: the list shows its start only
    let page = admin.get("/settings/api-keys").await;
    assert!(!page.body.contains(&secret));
    assert!(page.body.contains(&secret[..14]));
    assert!(page.body.contains("CRM sync"));
    assert!(page.body.contains("Acme Bakery"));
    assert!(page.body.contains("never"));

    // it works, for its client only, and its use is recorded
    let r = api.get("/api/v1/clients", &secret).await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Acme Bakery"]);
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_keys WHERE agency_id = $1")
            .bind(t.agency)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(used.is_some());
    assert!(
        !admin
            .get("/settings/api-keys")
            .await
            .body
            .contains(">never<")
    );

    // revoked: 401 at once, audited both ways, naming the key
    let id: Uuid = sqlx::query_scalar("SELECT id FROM api_keys WHERE agency_id = $1")
        .bind(t.agency)
        .fetch_one(&pool)
        .await
        .unwrap();
    let r = admin
        .post(
            &format!("/settings/api-keys/{id}/revoke"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    api.get("/api/v1/clients", &secret)
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        admin
            .get("/settings/api-keys")
            .await
            .body
            .contains("Revoked")
    );
    let audit: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT action, actor_label, details FROM audit_log WHERE agency_id = $1 AND action LIKE 'api_key.%' ORDER BY id",
    )
    .bind(t.agency)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0].0, "api_key.create");
    assert_eq!(audit[1].0, "api_key.revoke");
    for (_, actor, details) in &audit {
        assert_eq!(actor, "admin@acme.test");
        assert_eq!(details["name"], "CRM sync");
        assert_eq!(details["key"], &secret[..14]);
    }
    let everything: String = sqlx::query_scalar("SELECT string_agg(a::text, '|') FROM audit_log a")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        !everything.contains(&secret),
        "the key is not in the audit log"
    );
    // revoking again (or a key that does not exist) is not found
    let r = admin
        .post(
            &format!("/settings/api-keys/{id}/revoke"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn missing_malformed_unknown_and_revoked_keys_are_401_problems(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let good = key(&pool, &t, "good", Role::Viewer, None).await;
    let api = api(&pool).await;
    let no_key = api
        .raw(Request::get("/api/v1/clients").body(Body::empty()).unwrap())
        .await;
    no_key.problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        no_key
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    for auth in [
        "Basic dXNlcjpwYXNz".to_owned(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {}x", good),
        "Bearer as_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        format!("Bearer {}", "a".repeat(5000)),
        good.clone(),
    ] {
        let r = api
            .raw(
                Request::get("/api/v1/clients")
                    .header(header::AUTHORIZATION, &auth)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.problem(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // non-UTF-8 bytes in the header
    let r = api
        .raw(
            Request::get("/api/v1/clients")
                .header(
                    header::AUTHORIZATION,
                    axum::http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.problem(StatusCode::UNAUTHORIZED, "unauthorized");
    // the scheme is case-insensitive
    let r = api
        .raw(
            Request::get("/api/v1/clients")
                .header(header::AUTHORIZATION, format!("bearer {good}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // revoked directly in core, behind the console's back (the console's own revoke forgets
    // the keys it has cached at once, above): refused once the cached key is 2 s old
    let id: Uuid = sqlx::query_scalar("SELECT id FROM api_keys WHERE agency_id = $1")
        .bind(t.agency)
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(
        api_keys::revoke(&mut tx, &Actor::system("test"), t.agency, id)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let revoked = std::time::Instant::now();
    loop {
        let r = api.get("/api/v1/clients", &good).await;
        if r.status == StatusCode::UNAUTHORIZED {
            r.problem(StatusCode::UNAUTHORIZED, "unauthorized");
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            revoked.elapsed() < std::time::Duration::from_secs(3),
            "a key revoked in the database still works after 3 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Roles and client limits

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn each_role_does_what_it_allows_and_is_refused_the_rest_with_403(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let viewer = key(&pool, &t, "viewer", Role::Viewer, None).await;
    let reviewer = key(&pool, &t, "reviewer", Role::Reviewer, None).await;
    let admin = key(&pool, &t, "admin", Role::Admin, None).await;
    let api = api(&pool).await;
    let new_client = json!({ "name": "Role Test", "timezone": "UTC" });
    let approve = format!("/api/v1/items/{}/approve", t.pending[0]);
    let reject = format!("/api/v1/items/{}/reject", t.pending[1]);
    let patch = format!("/api/v1/clients/{}", t.clients[0]);

    // viewer: reads only
    assert_eq!(
        api.get("/api/v1/clients", &viewer).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/api/v1/items", &viewer).await.status,
        StatusCode::OK
    );
    assert_eq!(api.get(&patch, &viewer).await.status, StatusCode::OK);
    api.post(&approve, &viewer, &json!({}))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    api.post(&reject, &viewer, &json!({ "reason": "no" }))
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    api.post("/api/v1/clients", &viewer, &new_client)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    api.call(
        Method::PATCH,
        &patch,
        &viewer,
        Some(&json!({ "name": "x" })),
        &[],
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    // reviewer: also approves and rejects, but does not manage clients
    api.post("/api/v1/clients", &reviewer, &new_client)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    api.call(
        Method::PATCH,
        &patch,
        &reviewer,
        Some(&json!({ "name": "x" })),
        &[],
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        api.post(&approve, &reviewer, &json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.post(&reject, &reviewer, &json!({ "reason": "off brand" }))
            .await
            .status,
        StatusCode::OK
    );
    // admin: also creates and changes clients
    let r = api.post("/api/v1/clients", &admin, &new_client).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = api
        .call(
            Method::PATCH,
            &patch,
            &admin,
            Some(&json!({ "auto_approve": true })),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["auto_approve"], true);
    // nothing the refused calls asked for happened
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM clients WHERE agency_id = $1",
            t.agency
        )
        .await,
        3
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_key_limited_to_some_clients_reaches_nothing_of_the_others(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let limited = key(&pool, &t, "bakery only", Role::Admin, Some(&[t.clients[0]])).await;
    let api = api(&pool).await;
    let r = api.get("/api/v1/clients", &limited).await;
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [t.clients[0].to_string()]);
    let r = api.get("/api/v1/items", &limited).await;
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [t.pending[0].to_string()]);
    let r = api
        .get(&format!("/api/v1/items?client={}", t.clients[1]), &limited)
        .await;
    assert_eq!(r.json()["data"], json!([]));
    // the other client and its item: not found, on every route
    let other = t.clients[1];
    let item = t.pending[1];
    api.get(&format!("/api/v1/clients/{other}"), &limited)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    api.call(
        Method::PATCH,
        &format!("/api/v1/clients/{other}"),
        &limited,
        Some(&json!({ "status": "paused" })),
        &[],
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    api.get(&format!("/api/v1/items/{item}"), &limited)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    api.post(
        &format!("/api/v1/items/{item}/approve"),
        &limited,
        &json!({}),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    api.post(
        &format!("/api/v1/items/{item}/reject"),
        &limited,
        &json!({ "reason": "x" }),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not-found");
    // and it cannot make clients it would not reach
    api.post(
        "/api/v1/clients",
        &limited,
        &json!({ "name": "New", "timezone": "UTC" }),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM content_items WHERE id = $1")
        .bind(item)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(states, ["pending_review"]);
    let status: String = sqlx::query_scalar("SELECT status FROM clients WHERE id = $1")
        .bind(other)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "active");
    // its own client: fine
    assert_eq!(
        api.post(
            &format!("/api/v1/items/{}/approve", t.pending[0]),
            &limited,
            &json!({})
        )
        .await
        .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Every route, across agencies

/// Every route of `autosocial_admin::api::router` besides the document.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/clients"),
    ("POST", "/api/v1/clients"),
    ("GET", "/api/v1/clients/{id}"),
    ("PATCH", "/api/v1/clients/{id}"),
    ("GET", "/api/v1/items"),
    ("POST", "/api/v1/items"),
    ("GET", "/api/v1/items/{id}"),
    ("POST", "/api/v1/items/{id}/approve"),
    ("POST", "/api/v1/items/{id}/reject"),
    ("POST", "/api/v1/clients/{id}/pause"),
    ("POST", "/api/v1/clients/{id}/resume"),
    ("GET", "/api/v1/clients/{id}/brand"),
    ("PATCH", "/api/v1/clients/{id}/brand"),
    ("POST", "/api/v1/clients/{id}/media"),
    ("GET", "/api/v1/clients/{id}/rules"),
    ("GET", "/api/v1/rules/{id}"),
    ("PATCH", "/api/v1/rules/{id}"),
    ("GET", "/api/v1/clients/{id}/onboarding-links"),
    ("POST", "/api/v1/clients/{id}/onboarding-links"),
    ("GET", "/api/v1/onboarding-links/{id}"),
    ("POST", "/api/v1/onboarding-links/{id}/revoke"),
    ("GET", "/api/v1/accounts"),
    ("GET", "/api/v1/accounts/{id}"),
    ("POST", "/api/v1/accounts/{id}/disconnect"),
    ("PATCH", "/api/v1/items/{id}"),
    ("POST", "/api/v1/items/{id}/regenerate"),
    ("POST", "/api/v1/items/{id}/cancel"),
    ("POST", "/api/v1/items/{id}/reschedule"),
    ("GET", "/api/v1/publications"),
    ("GET", "/api/v1/publications/{id}"),
    ("GET", "/api/v1/kill-switches"),
    ("POST", "/api/v1/kill-switches"),
    ("GET", "/api/v1/kill-switches/{id}"),
    ("POST", "/api/v1/kill-switches/{id}/disengage"),
];

/// The tenant's id a route's `{id}` takes (one that names nothing for the kinds this file's
/// tenant has none of: `api_resources_scope.rs` walks those with real ids).
fn id_for(route: &str, t: &Tenant, i: usize) -> Uuid {
    if route.starts_with("/api/v1/clients") {
        t.clients[i]
    } else if route.starts_with("/api/v1/accounts") {
        t.accounts[i]
    } else {
        t.pending[i]
    }
}

/// `(METHOD, path)` of every `.route("/api/v1/…", get(..).post(..))` in `src/api/mod.rs`.
fn declared_routes() -> BTreeSet<(String, String)> {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs")).unwrap();
    let mut out = BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).unwrap().to_owned();
        let call: String = chunk.chars().take_while(|c| *c != ';').collect();
        let call = call
            .split("\n        .")
            .next()
            .unwrap_or_default()
            .to_owned();
        for m in ["get", "post", "patch", "put", "delete"] {
            if call.contains(&format!("{m}(")) {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_route_list_is_the_api_routers() {
    let mut declared = declared_routes();
    declared.remove(&("GET".to_owned(), "/api/v1/openapi.json".to_owned()));
    // the reference page over the document (tests/api_docs.rs)
    declared.remove(&("GET".to_owned(), "/api/v1/docs".to_owned()));
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(declared, listed, "src/api/mod.rs and ROUTES differ");
}

/// The rows of every agency table of `agency`, hashed.
async fn digest(pool: &PgPool, agency: Uuid) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
         WHERE c.table_schema = 'public' AND c.column_name = 'agency_id' AND t.table_type = 'BASE TABLE'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let d: String = sqlx::query_scalar(&format!(
            "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {table} x WHERE agency_id = $1"
        ))
        .bind(agency)
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table, d));
    }
    out
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn another_agencys_ids_are_not_found_on_every_route(pool: PgPool) {
    let a = tenant(&pool, "Qz7").await;
    let b = tenant(&pool, "Beta").await;
    let b_admin = key(&pool, &b, "beta admin", Role::Admin, None).await;
    let api = api(&pool).await;
    let before = digest(&pool, a.agency).await;
    for (method, route) in ROUTES {
        let id = id_for(route, &a, 0);
        let path = route.replace("{id}", &id.to_string());
        let body = match *method {
            "POST" if route.ends_with("reject") => Some(json!({ "reason": "probe" })),
            "POST" if route.ends_with("approve") => Some(json!({ "variant": "balanced" })),
            "POST" if route.ends_with("items") => Some(new_item(a.clients[0], &[a.accounts[0]])),
            "POST" if route.ends_with("kill-switches") => Some(json!({
                "scope": "client", "client_id": a.clients[0], "reason": "probe",
            })),
            "POST" => Some(json!({ "name": "Probe", "timezone": "UTC" })),
            "PATCH" => Some(json!({ "name": "Probe", "status": "archived" })),
            _ => None,
        };
        let r = api
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &path,
                &b_admin,
                body.as_ref(),
                &[("if-match", "*")],
            )
            .await;
        let what = format!("{method} {path}");
        let text = String::from_utf8_lossy(&r.bytes).to_lowercase();
        assert!(
            !text.contains("qz7"),
            "{what} shows the first agency: {text}"
        );
        if route.contains("{id}")
            || (*method == "POST" && (route.ends_with("items") || route.ends_with("kill-switches")))
        {
            r.problem(StatusCode::NOT_FOUND, "not-found");
        } else {
            assert!(r.status.is_success(), "{what}: {}", r.status);
        }
        // the first agency's ids as filters show nothing of it either
        if *method == "GET" && !route.contains("{id}") {
            let r = api
                .get(&format!("{route}?client={}", a.clients[0]), &b_admin)
                .await;
            if route.ends_with("items") {
                assert_eq!(r.json()["data"], json!([]), "{what}");
            }
            assert!(
                !String::from_utf8_lossy(&r.bytes)
                    .to_lowercase()
                    .contains("qz7")
            );
        }
        assert_eq!(
            digest(&pool, a.agency).await,
            before,
            "{what} changed the first agency"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Problem Details

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn bad_input_is_a_problem_that_names_every_field_and_changes_nothing(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "admin", Role::Admin, None).await;
    let api = api(&pool).await;
    let clients_before = count(
        &pool,
        "SELECT count(*) FROM clients WHERE agency_id = $1",
        t.agency,
    )
    .await;

    // not JSON, a JSON that is not an object, the wrong content type
    let raw = |body: &'static [u8], ct: &'static str| {
        let mut req = Request::post("/api/v1/clients")
            .header(header::AUTHORIZATION, format!("Bearer {admin}"));
        if !ct.is_empty() {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(Body::from(body)).unwrap()
    };
    api.raw(raw(b"{\"name\": ", "application/json"))
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed-request");
    api.raw(raw(b"\"\\ud800\"", "application/json"))
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed-request");
    api.raw(raw(&[0xff, 0xfe], "application/json"))
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed-request");
    let r = api.raw(raw(b"[1, 2]", "application/json")).await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    api.raw(raw(b"name=x", "application/x-www-form-urlencoded"))
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    let deep: &'static [u8] = Box::leak("[".repeat(10_000).into_bytes().into_boxed_slice());
    api.raw(raw(deep, "application/json"))
        .await
        .problem(StatusCode::BAD_REQUEST, "malformed-request");
    let big: &'static [u8] = Box::leak(
        format!("{{\"name\": \"{}\"}}", "a".repeat(2 * 1024 * 1024))
            .into_bytes()
            .into_boxed_slice(),
    );
    api.raw(raw(big, "application/json"))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");

    // every wrong field at once: wrong types, bad values, an unknown member
    let r = api
        .post(
            "/api/v1/clients",
            &admin,
            &json!({ "name": 12, "timezone": "Mars/Olympus", "auto_approve": "yes", "status": "gone",
                     "reschedule_policy": ["manual"], "colour": "red" }),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        r.fields(),
        [
            "name",
            "timezone",
            "auto_approve",
            "status",
            "reschedule_policy",
            "colour"
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
    // a required field missing, a NUL, a huge number, a name taken
    let r = api
        .post(
            "/api/v1/clients",
            &admin,
            &json!({ "name": "a\u{0}b", "timezone": 1e308 }),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        r.fields(),
        ["name", "timezone"].map(String::from).into_iter().collect()
    );
    let r = api
        .post(
            "/api/v1/clients",
            &admin,
            &json!({ "name": "Acme Bakery", "timezone": "UTC" }),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already")
    );
    let r = api.post("/api/v1/clients", &admin, &json!({})).await;
    assert_eq!(
        r.fields(),
        ["name", "timezone"].map(String::from).into_iter().collect()
    );

    // parameters and ids
    for (uri, field) in [
        ("/api/v1/items?limit=99999999999999999999999", "limit"),
        ("/api/v1/items?limit=0", "limit"),
        ("/api/v1/items?limit=-1", "limit"),
        ("/api/v1/items?limit=1e3", "limit"),
        ("/api/v1/items?state=lost", "state"),
        ("/api/v1/items?client=12", "client"),
        ("/api/v1/items?cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("/api/v1/items?cursor=%FF%FE", "cursor"),
        ("/api/v1/items?colour=red", "colour"),
        ("/api/v1/items?limit=1&limit=2", "limit"),
        ("/api/v1/clients?status=gone", "status"),
        ("/api/v1/clients/12", "id"),
        ("/api/v1/items/00000000-0000-0000-0000-00000000000g", "id"),
        ("/api/v1/items/%FF", "id"),
    ] {
        let r = api.get(uri, &admin).await;
        r.problem(StatusCode::BAD_REQUEST, "malformed-request");
        assert!(r.fields().contains(field), "{uri}: {:?}", r.fields());
    }
    // an id that parses but names nothing
    api.get(&format!("/api/v1/items/{}", Uuid::nil()), &admin)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    // unknown paths and methods
    api.get("/api/v1/nothing", &admin)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    api.get("/api/v2/clients", &admin)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    // a method the path does not have is 405 before the key's Idempotency-Key is looked at
    let r = api
        .call(
            Method::PATCH,
            &format!("/api/v1/items/{}/approve", t.pending[0]),
            &admin,
            Some(&json!({})),
            &[("idempotency-key", "k-405")],
        )
        .await;
    r.problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM api_idempotency WHERE agency_id = $1 AND key = 'k-405'",
            t.agency
        )
        .await,
        0
    );
    let r = api
        .call(Method::DELETE, "/api/v1/clients", &admin, None, &[])
        .await;
    r.problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
    // bad items actions
    let approve = format!("/api/v1/items/{}/approve", t.pending[0]);
    let r = api
        .post(&approve, &admin, &json!({ "variant": "loud", "extra": 1 }))
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        r.fields(),
        ["variant", "extra"].map(String::from).into_iter().collect()
    );
    let reject = format!("/api/v1/items/{}/reject", t.pending[0]);
    for body in [
        json!({}),
        json!({ "reason": "   " }),
        json!({ "reason": 5 }),
        json!({ "reason": "x".repeat(2001) }),
    ] {
        let r = api.post(&reject, &admin, &body).await;
        r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert_eq!(
            r.fields(),
            ["reason"].map(String::from).into_iter().collect(),
            "{body}"
        );
    }
    // the idempotency header itself
    let r = api
        .call(
            Method::POST,
            &approve,
            &admin,
            Some(&json!({})),
            &[("idempotency-key", "has space")],
        )
        .await;
    r.problem(StatusCode::BAD_REQUEST, "malformed-request");
    // nothing changed
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM clients WHERE agency_id = $1",
            t.agency
        )
        .await,
        clients_before
    );
    let state: String = sqlx::query_scalar("SELECT state FROM content_items WHERE id = $1")
        .bind(t.pending[0])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "pending_review");
}

// ---------------------------------------------------------------------------------------------
// Items: the lifecycle's moves

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn approving_and_rejecting_run_the_lifecycle_and_audit_the_key(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let reviewer = key(&pool, &t, "Review bot", Role::Reviewer, None).await;
    let api = api(&pool).await;
    let approve = format!("/api/v1/items/{}/approve", t.pending[0]);
    let r = api.post(&approve, &reviewer, &json!({})).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(r.json()["state"], "approved");
    assert!(r.header("etag").is_some());
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM publications WHERE item_id = $1",
            t.pending[0]
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM jobs WHERE kind = 'publish' AND agency_id = $1",
            t.agency
        )
        .await,
        1
    );
    // the lifecycle's table: approving again is refused, said as the console says it
    let r = api.post(&approve, &reviewer, &json!({})).await;
    let p = r.problem(StatusCode::CONFLICT, "invalid-state");
    assert!(p["detail"].as_str().unwrap().contains("approved"), "{p}");
    let r = api
        .post(
            &format!("/api/v1/items/{}/reject", t.pending[0]),
            &reviewer,
            &json!({ "reason": "late" }),
        )
        .await;
    r.problem(StatusCode::CONFLICT, "invalid-state");

    // moderation's verdict holds: a blocked item is not approved
    let account = common::account(&pool, t.clients[1], "linkedin", "Blocked GmbH").await;
    let blocked = build::item(t.agency, t.clients[1])
        .moderation("blocked", Some(json!({ "reasons": [] })))
        .targets(&[account])
        .insert(&pool)
        .await;
    let r = api
        .post(
            &format!("/api/v1/items/{blocked}/approve"),
            &reviewer,
            &json!({}),
        )
        .await;
    r.problem(StatusCode::CONFLICT, "invalid-state");

    let reject = format!("/api/v1/items/{}/reject", t.pending[1]);
    let r = api
        .post(&reject, &reviewer, &json!({ "reason": "  Off brand  " }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["state"], "rejected");
    assert_eq!(r.json()["rejection_reason"], "Off brand");

    // audited like the console's, with the key as the actor
    let entries: Vec<(String, String, Option<Uuid>, String)> = sqlx::query_as(
        "SELECT action, actor_label, actor_user_id, target_id FROM audit_log WHERE agency_id = $1 AND action LIKE 'item.%' ORDER BY id",
    )
    .bind(t.agency)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].0, "item.approve");
    assert_eq!(entries[1].0, "item.reject");
    for (_, actor, user_id, _) in &entries {
        assert!(actor.starts_with("api-key:Review bot (as_live_"), "{actor}");
        assert_eq!(*user_id, None);
    }
    assert!(
        !entries[0].1.contains(&reviewer[14..]),
        "the audit names the key, not its secret"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_item_written_through_the_api_waits_for_review_like_the_composers(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let b = tenant(&pool, "Beta").await;
    let reviewer = key(&pool, &t, "Writer", Role::Reviewer, None).await;
    let viewer = key(&pool, &t, "Reader", Role::Viewer, None).await;
    let api = api(&pool).await;
    let body = new_item(t.clients[0], &[t.accounts[0]]);
    api.post("/api/v1/items", &viewer, &body)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let r = api
        .call(
            Method::POST,
            "/api/v1/items",
            &reviewer,
            Some(&body),
            &[("idempotency-key", "write-1")],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let item = r.json();
    assert_eq!(item["state"], "pending_review");
    assert_eq!(item["source"], "manual");
    assert_eq!(item["moderation_status"], "pass");
    assert_eq!(item["hashtags"], json!(["#bread", "#bakery"]));
    assert_eq!(item["targets"][0]["account_id"], t.accounts[0].to_string());
    let id = item["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/items/{id}").as_str())
    );
    // the answer is the item as it reads back: the same representation and ETag
    let read = api.get(&format!("/api/v1/items/{id}"), &reviewer).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.bytes, r.bytes);
    assert_eq!(read.header("etag"), r.header("etag"));
    assert!(r.header("etag").is_some());
    // a retry creates nothing more
    let again = api
        .call(
            Method::POST,
            "/api/v1/items",
            &reviewer,
            Some(&body),
            &[("idempotency-key", "write-1")],
        )
        .await;
    assert_eq!(again.bytes, r.bytes);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content_items WHERE source = 'manual' AND agency_id = $1",
            t.agency
        )
        .await,
        1
    );
    // audited as the composer's, by the key; and it can be approved at once
    let actor: String = sqlx::query_scalar(
        "SELECT actor_label FROM audit_log WHERE action = 'item.create' AND target_id = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(actor.starts_with("api-key:Writer"), "{actor}");
    let r = api
        .call(
            Method::POST,
            &format!("/api/v1/items/{id}/approve"),
            &reviewer,
            Some(&json!({})),
            &[("idempotency-key", "approve-1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["state"], "approved");

    // moderation's verdict is the console's: the client's banned term blocks it
    sqlx::query(
        "INSERT INTO brand_settings (client_id, agency_id, banned_terms) VALUES ($1, $2, ARRAY['cheap'])
         ON CONFLICT (client_id) DO UPDATE SET banned_terms = EXCLUDED.banned_terms",
    )
    .bind(t.clients[0])
    .bind(t.agency)
        .execute(&pool)
        .await
        .unwrap();
    let mut blocked = body.clone();
    blocked["caption"] = json!("Cheap bread");
    let r = api.post("/api/v1/items", &reviewer, &blocked).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["moderation_status"], "blocked");

    // every field wrong at once
    let r = api
        .post(
            "/api/v1/items",
            &reviewer,
            &json!({ "client_id": t.clients[0], "accounts": [], "slot_at": "yesterday",
                     "caption": " ", "hashtags": "bread", "cta": "x".repeat(501),
                     "link_url": "ftp://x", "colour": 1 }),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        r.fields(),
        [
            "accounts", "slot_at", "caption", "hashtags", "cta", "link_url", "colour"
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
    let mut past = body.clone();
    past["slot_at"] = json!("2020-01-01T00:00:00Z");
    let r = api.post("/api/v1/items", &reviewer, &past).await;
    assert_eq!(
        r.fields(),
        ["slot_at"].map(String::from).into_iter().collect()
    );
    // an account of the agency's other client: named; another agency's client or account: 404
    let r = api
        .post(
            "/api/v1/items",
            &reviewer,
            &new_item(t.clients[0], &[t.accounts[1]]),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(r.fields().contains("accounts"));
    for foreign in [
        new_item(b.clients[0], &[b.accounts[0]]),
        new_item(t.clients[0], &[b.accounts[0]]),
        new_item(b.clients[0], &[t.accounts[0]]),
        new_item(Uuid::now_v7(), &[t.accounts[0]]),
    ] {
        let r = api.post("/api/v1/items", &reviewer, &foreign).await;
        r.problem(StatusCode::NOT_FOUND, "not-found");
    }
    // a key limited to the other client cannot write for this one
    let limited = key(
        &pool,
        &t,
        "Florist only",
        Role::Reviewer,
        Some(&[t.clients[1]]),
    )
    .await;
    api.post("/api/v1/items", &limited, &body)
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content_items WHERE source = 'manual' AND agency_id = $1",
            t.agency
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content_items WHERE source = 'manual' AND agency_id = $1",
            b.agency
        )
        .await,
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotency-Key

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_request(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "admin", Role::Admin, None).await;
    let other_key = key(&pool, &t, "admin 2", Role::Admin, None).await;
    let api = api(&pool).await;
    let body = json!({ "name": "Idem Bakery", "timezone": "Europe/Paris" });
    let first = api
        .call(
            Method::POST,
            "/api/v1/clients",
            &admin,
            Some(&body),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = api
        .call(
            Method::POST,
            "/api/v1/clients",
            &admin,
            Some(&body),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.bytes, first.bytes, "byte for byte");
    for h in ["location", "etag", "content-type"] {
        assert_eq!(again.header(h), first.header(h), "{h}");
    }
    // the answer is the key's: another key of the agency (perhaps reaching fewer clients) gets
    // no replay and runs nothing
    api.call(
        Method::POST,
        "/api/v1/clients",
        &other_key,
        Some(&body),
        &[("idempotency-key", "k-1")],
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM clients WHERE name = 'Idem Bakery' AND agency_id = $1",
            t.agency
        )
        .await,
        1
    );

    // the same key with another body, path or method: 422, nothing done
    let other = json!({ "name": "Idem Florist", "timezone": "Europe/Paris" });
    api.call(
        Method::POST,
        "/api/v1/clients",
        &admin,
        Some(&other),
        &[("idempotency-key", "k-1")],
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused");
    let patch = format!("/api/v1/clients/{}", t.clients[0]);
    api.call(
        Method::PATCH,
        &patch,
        &admin,
        Some(&body),
        &[("idempotency-key", "k-1")],
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM clients WHERE name = 'Idem Florist' AND agency_id = $1",
            t.agency
        )
        .await,
        0
    );

    // a refusal is an answer too: replayed, not run again
    let approve = format!("/api/v1/items/{}/approve", t.pending[0]);
    let bad = api
        .call(
            Method::POST,
            &approve,
            &admin,
            Some(&json!({ "variant": "loud" })),
            &[("idempotency-key", "k-2")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad2 = api
        .call(
            Method::POST,
            &approve,
            &admin,
            Some(&json!({ "variant": "loud" })),
            &[("idempotency-key", "k-2")],
        )
        .await;
    assert_eq!(bad2.bytes, bad.bytes);
    assert_eq!(bad2.header("idempotent-replayed"), Some("true"));

    // another agency's identical key is its own
    let b = tenant(&pool, "Beta").await;
    let b_admin = key(&pool, &b, "admin", Role::Admin, None).await;
    let r = api
        .call(
            Method::POST,
            "/api/v1/clients",
            &b_admin,
            Some(&body),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_ne!(r.bytes, first.bytes);

    // while the first request with a key is still running: 409
    sqlx::query(
        "INSERT INTO api_idempotency (agency_id, key, request_hash, lock_token, api_key_id, expires_at)
         VALUES ($1, 'k-3', $2, gen_random_uuid(),
                 (SELECT id FROM api_keys WHERE agency_id = $1 AND name = 'admin'), now() + interval '1 day')",
    )
    .bind(t.agency)
    .bind(Sha256::digest(b"running").to_vec())
    .execute(&pool)
    .await
    .unwrap();
    // (a running request's hash is compared first: the same request is told to wait)
    let hash: Vec<u8> = {
        let mut h = Sha256::new();
        for part in [b"POST".as_slice(), b"/api/v1/clients".as_slice()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.update(serde_json::to_vec(&other).unwrap());
        h.finalize().to_vec()
    };
    sqlx::query(
        "UPDATE api_idempotency SET request_hash = $2 WHERE agency_id = $1 AND key = 'k-3'",
    )
    .bind(t.agency)
    .bind(hash)
    .execute(&pool)
    .await
    .unwrap();
    api.call(
        Method::POST,
        "/api/v1/clients",
        &admin,
        Some(&other),
        &[("idempotency-key", "k-3")],
    )
    .await
    .problem(StatusCode::CONFLICT, "idempotency-key-in-flight");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM clients WHERE name = 'Idem Florist' AND agency_id = $1",
            t.agency
        )
        .await,
        0
    );
    // a claim left by a process that died (in flight for over ten minutes) is taken over
    sqlx::query(
        "UPDATE api_idempotency SET created_at = now() - interval '11 minutes' WHERE agency_id = $1 AND key = 'k-3'",
    )
    .bind(t.agency)
    .execute(&pool)
    .await
    .unwrap();
    let r = api
        .call(
            Method::POST,
            "/api/v1/clients",
            &admin,
            Some(&other),
            &[("idempotency-key", "k-3")],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(r.header("idempotent-replayed"), None);
    sqlx::query("DELETE FROM clients WHERE name = 'Idem Florist' AND agency_id = $1")
        .bind(t.agency)
        .execute(&pool)
        .await
        .unwrap();
    // after a day the key is free again
    sqlx::query(
        "UPDATE api_idempotency SET expires_at = now() - interval '1 second' WHERE agency_id = $1",
    )
    .bind(t.agency)
    .execute(&pool)
    .await
    .unwrap();
    let r = api
        .call(
            Method::POST,
            "/api/v1/clients",
            &admin,
            Some(&other),
            &[("idempotency-key", "k-3")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("idempotent-replayed"), None);
    assert!(
        autosocial_admin::api::idempotency::prune(&pool)
            .await
            .unwrap()
            >= 2
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn identical_requests_racing_with_one_key_create_one_client(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "admin", Role::Admin, None).await;
    let api = api(&pool).await;
    let body = json!({ "name": "Race Bakery", "timezone": "UTC" });
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (api, admin, body) = (api.clone(), admin.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            api.call(
                Method::POST,
                "/api/v1/clients",
                &admin,
                Some(&body),
                &[("idempotency-key", "race-1")],
            )
            .await
        }));
    }
    let mut originals = 0;
    let mut first_body = None;
    for task in tasks {
        let r = task.await.unwrap();
        match (r.status, r.header("idempotent-replayed")) {
            (StatusCode::CREATED, None) => {
                originals += 1;
                first_body = Some(r.bytes.clone());
            }
            (StatusCode::CREATED, Some("true")) => {}
            (StatusCode::CONFLICT, _) => {
                r.problem(StatusCode::CONFLICT, "idempotency-key-in-flight");
            }
            (s, _) => panic!("unexpected {s}: {}", String::from_utf8_lossy(&r.bytes)),
        }
    }
    assert_eq!(originals, 1, "one request ran the action");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM clients WHERE name = 'Race Bakery' AND agency_id = $1",
            t.agency
        )
        .await,
        1
    );
    // afterwards every retry is the replay
    let r = api
        .call(
            Method::POST,
            "/api/v1/clients",
            &admin,
            Some(&body),
            &[("idempotency-key", "race-1")],
        )
        .await;
    assert_eq!(Some(r.bytes), first_body);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'client.create' AND agency_id = $1",
            t.agency
        )
        .await,
        1
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_request_dropped_while_running_gives_its_idempotency_key_up(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "admin", Role::Admin, None).await;
    let api = api(&pool).await;
    let uri = format!("/api/v1/clients/{}", t.clients[0]);
    let body = json!({ "name": "Held Bakery" });
    // someone else holds the client's row: the PATCH waits inside its handler
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM clients WHERE id = $1 FOR UPDATE")
        .bind(t.clients[0])
        .execute(&mut *holder)
        .await
        .unwrap();
    let running = {
        let (api, admin, uri, body) = (api.clone(), admin.clone(), uri.clone(), body.clone());
        tokio::spawn(async move {
            api.call(
                Method::PATCH,
                &uri,
                &admin,
                Some(&body),
                &[("idempotency-key", "drop-1")],
            )
            .await
        })
    };
    let claimed = "SELECT count(*) FROM api_idempotency WHERE agency_id = $1 AND key = 'drop-1' AND status IS NULL";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&pool, claimed, t.agency).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never claimed its key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // meanwhile the same request is told to wait
    api.call(
        Method::PATCH,
        &uri,
        &admin,
        Some(&body),
        &[("idempotency-key", "drop-1")],
    )
    .await
    .problem(StatusCode::CONFLICT, "idempotency-key-in-flight");
    // the client goes away: the claim is given up, nothing was changed
    running.abort();
    assert!(running.await.is_err_and(|e| e.is_cancelled()));
    let all = "SELECT count(*) FROM api_idempotency WHERE agency_id = $1 AND key = 'drop-1'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&pool, all, t.agency).await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the claim was not given up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    holder.rollback().await.unwrap();
    // a retry with the same key runs the change once
    let r = api
        .call(
            Method::PATCH,
            &uri,
            &admin,
            Some(&body),
            &[("idempotency-key", "drop-1")],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_eq!(r.json()["name"], "Held Bakery");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE agency_id = $1 AND action = 'client.update'",
            t.agency
        )
        .await,
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Pages, ETags, limits, the document

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn cursor_pages_stay_stable_while_items_are_inserted(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let viewer = key(&pool, &t, "viewer", Role::Viewer, None).await;
    let api = api(&pool).await;
    let mut ours: Vec<Uuid> = t.pending.to_vec();
    for i in 0..9 {
        let state = if i % 3 == 0 {
            ItemState::Rejected
        } else {
            ItemState::PendingReview
        };
        ours.push(
            build::item(t.agency, t.clients[i % 2])
                .state(state)
                .caption(format!("item {i}"))
                .insert(&pool)
                .await,
        );
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/items?limit=4&cursor={c}"),
            None => "/api/v1/items?limit=4".to_owned(),
        };
        let r = api.get(&uri, &viewer).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = r.json();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        // new items arrive while the list is read: they are newer, so no page shifts
        for _ in 0..3 {
            build::item(t.agency, t.clients[0])
                .caption("newcomer")
                .insert(&pool)
                .await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = ours.iter().rev().map(Uuid::to_string).collect();
    // created in order (uuid v7 and the same or later created_at): newest first, each once
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(sorted_seen.len(), seen.len(), "no item twice");
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(
        sorted_seen, sorted_expected,
        "every item that existed at the start, and no newcomer"
    );

    // filters: by client and state, paged the same way
    let r = api
        .get(
            &format!(
                "/api/v1/items?client={}&state=rejected&limit=100",
                t.clients[0]
            ),
            &viewer,
        )
        .await;
    let data = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2, "{data:?}");
    assert!(
        data.iter()
            .all(|i| i["state"] == "rejected" && i["client_id"] == t.clients[0].to_string())
    );
    assert!(r.json()["next_cursor"].is_null());
    // clients page the same way
    let r = api.get("/api/v1/clients?limit=1", &viewer).await;
    let c = r.json()["next_cursor"].as_str().unwrap().to_owned();
    let r2 = api
        .get(&format!("/api/v1/clients?limit=1&cursor={c}"), &viewer)
        .await;
    assert_ne!(r.json()["data"][0]["id"], r2.json()["data"][0]["id"]);
    assert!(r2.json()["next_cursor"].is_null());
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_stale_if_match_is_412_and_changes_nothing(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let admin = key(&pool, &t, "admin", Role::Admin, None).await;
    let api = api(&pool).await;
    let uri = format!("/api/v1/clients/{}", t.clients[0]);
    let r = api.get(&uri, &admin).await;
    let etag = r.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    // the same representation, the same tag
    assert_eq!(
        api.get(&uri, &admin).await.header("etag"),
        Some(etag.as_str())
    );
    let r = api
        .call(
            Method::PATCH,
            &uri,
            &admin,
            Some(&json!({ "name": "Renamed Bakery", "timezone": "America/New_York" })),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let new_etag = r.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);
    assert_eq!(r.json()["name"], "Renamed Bakery");
    assert_eq!(r.json()["timezone"], "America/New_York");
    assert_eq!(
        r.json()["status"],
        "active",
        "fields not sent keep their values"
    );
    // someone else's write in between: the old tag is stale
    let r = api
        .call(
            Method::PATCH,
            &uri,
            &admin,
            Some(&json!({ "name": "Lost Update" })),
            &[("if-match", &etag)],
        )
        .await;
    r.problem(StatusCode::PRECONDITION_FAILED, "precondition-failed");
    let name: String = sqlx::query_scalar("SELECT name FROM clients WHERE id = $1")
        .bind(t.clients[0])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "Renamed Bakery");
    // pause and resume by status, audited as the console's pause and resume
    let r = api
        .call(
            Method::PATCH,
            &uri,
            &admin,
            Some(&json!({ "status": "paused" })),
            &[("if-match", &new_etag)],
        )
        .await;
    assert_eq!(r.json()["status"], "paused");
    let r = api
        .call(
            Method::PATCH,
            &uri,
            &admin,
            Some(&json!({ "status": "active" })),
            &[],
        )
        .await;
    assert_eq!(r.json()["status"], "active");
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE agency_id = $1 AND target_id = $2 ORDER BY id",
    )
    .bind(t.agency)
    .bind(t.clients[0].to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(actions, ["client.update", "client.status", "client.status"]);
    // a name another client has: the field says so
    let r = api
        .call(
            Method::PATCH,
            &uri,
            &admin,
            Some(&json!({ "name": "Acme Florist" })),
            &[],
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(r.fields().contains("name"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_key_over_its_rate_limit_is_told_when_to_come_back(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let first = key(&pool, &t, "first", Role::Viewer, None).await;
    let second = key(&pool, &t, "second", Role::Viewer, None).await;
    let api = api_with(
        &pool,
        WebArgs {
            api_requests_per_minute: 3,
            ..WebArgs::for_tests()
        },
    )
    .await;
    for remaining in [2, 1, 0] {
        let r = api.get("/api/v1/clients", &first).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("ratelimit-policy"), Some("\"per-key\";q=3;w=60"));
        let rl = r.header("ratelimit").unwrap();
        assert!(
            rl.starts_with(&format!("\"per-key\";r={remaining};t=")),
            "{rl}"
        );
    }
    let r = api.get("/api/v1/clients", &first).await;
    r.problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert!(
        r.header("ratelimit")
            .unwrap()
            .starts_with("\"per-key\";r=0;")
    );
    // another key of the same agency has its own budget
    assert_eq!(
        api.get("/api/v1/clients", &second).await.status,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_openapi_document_is_3_1_and_describes_every_route(pool: PgPool) {
    let api = api(&pool).await;
    let r = api
        .raw(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut operation_ids = BTreeSet::new();
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(operation_ids.insert(id.clone()), "operationId {id:?} twice");
        assert!(op.is_object(), "{method} {path} is not in the document");
        assert!(op["responses"].is_object());
        assert_eq!(op["security"][0]["api_key"], json!([]), "{method} {path}");
    }
    for schema in [
        "Problem",
        "FieldError",
        "Client",
        "ClientList",
        "Item",
        "ItemList",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}

// ---------------------------------------------------------------------------------------------
// Edge values everywhere

/// The fields each route's body reads.
fn body_fields(method: &str, route: &str) -> &'static [&'static str] {
    match (method, route) {
        ("POST", "/api/v1/clients") | ("PATCH", "/api/v1/clients/{id}") => &[
            "name",
            "timezone",
            "status",
            "auto_approve",
            "reschedule_policy",
        ],
        ("POST", "/api/v1/items") => &[
            "client_id",
            "accounts",
            "slot_at",
            "caption",
            "hashtags",
            "cta",
            "link_url",
        ],
        ("PATCH", "/api/v1/items/{id}") => &["caption", "hashtags", "cta", "link_url"],
        ("POST", "/api/v1/items/{id}/reschedule") => &["slot_at"],
        ("POST", "/api/v1/kill-switches") => {
            &["scope", "client_id", "platform", "account_id", "reason"]
        }
        ("PATCH", "/api/v1/clients/{id}/brand") => &[
            "voice",
            "tone",
            "pillars",
            "ctas",
            "banned_terms",
            "hashtag_sets",
            "color_primary",
            "font",
            "handle",
        ],
        ("POST", "/api/v1/items/{id}/approve") => &["variant"],
        ("POST", "/api/v1/items/{id}/reject") => &["reason"],
        _ => &[],
    }
}

/// JSON values (as raw text) that fit no field, or only just.
fn json_edges() -> Vec<String> {
    vec![
        "null".into(),
        "true".into(),
        "-1".into(),
        "1e308".into(),
        "-1e309".into(),
        "99999999999999999999999999999".into(),
        "\"\"".into(),
        format!("\"{}\"", "é".repeat(70_000)),
        "\"a\\u0000b\"".into(),
        "\"\\u202egnp.exe\"".into(),
        "\"<script>alert(1)</script>\"".into(),
        "\"-262143-01-01T00:00:00Z\"".into(),
        "\"+262142-12-31T23:59:59Z\"".into(),
        "\"9999-12-31T23:59:59Z\"".into(),
        "\"00000000-0000-0000-0000-000000000000\"".into(),
        "[]".into(),
        "[null, 1, \"x\"]".into(),
        "{}".into(),
        format!("{}1{}", "[".repeat(100), "]".repeat(100)),
    ]
}

/// Query values (already percent-encoded).
const QUERY_EDGES: &[&str] = &[
    "",
    "0",
    "-1",
    "1e3",
    "99999999999999999999999999999",
    "-9223372036854775809",
    "%FF%FE",
    "a%00b",
    "%3Cscript%3E",
    "00000000-0000-0000-0000-000000000000",
    "djE6OTIyMzM3MjAzNjg1NDc3NTgwNzowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA",
];

/// Path segments (already percent-encoded).
const PATH_EDGES: &[&str] = &[
    "0",
    "-1",
    "99999999999999999999999",
    "00000000-0000-0000-0000-000000000000",
    "%FF%FE",
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "%E2%80%AE",
];

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn edge_values_in_every_field_of_every_route_are_problems_never_server_errors(pool: PgPool) {
    let t = tenant(&pool, "Edge").await;
    let admin = key(&pool, &t, "admin", Role::Admin, None).await;
    // a generous limit: this test makes thousands of requests with one key
    let api = api_with(
        &pool,
        WebArgs {
            api_requests_per_minute: 1_000_000,
            ..WebArgs::for_tests()
        },
    )
    .await;
    let long = "a".repeat(5000);
    let mut tried = 0usize;
    let check = |what: &str, r: &Answer| {
        assert!(
            r.status.as_u16() < 500,
            "{what}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.bytes[..r.bytes.len().min(2000)])
        );
        if r.status.as_u16() >= 400 {
            assert_eq!(r.header("content-type"), Some(PROBLEM), "{what}");
            let p = r.json();
            assert!(
                p["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("https://autosocial.dev/problems/")),
                "{what}: {p}"
            );
        }
    };
    for (method, route) in ROUTES {
        let id = id_for(route, &t, 1);
        let valid = route.replace("{id}", &id.to_string());
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        // path segments
        if route.contains("{id}") {
            for edge in PATH_EDGES.iter().copied().chain([long.as_str()]) {
                let path = route.replace("{id}", edge);
                let r = api.call(m.clone(), &path, &admin, None, &[]).await;
                check(&format!("{method} {path}"), &r);
                assert!(
                    matches!(r.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
                    "{method} {path}: {}",
                    r.status
                );
                tried += 1;
            }
        }
        // query parameters of the lists
        if *method == "GET" && !route.contains("{id}") {
            for param in [
                "limit", "cursor", "client", "state", "status", "from", "to", "account", "platform",
            ] {
                for edge in QUERY_EDGES {
                    let uri = format!("{valid}?{param}={edge}");
                    let r = api.get(&uri, &admin).await;
                    check(&uri, &r);
                    tried += 1;
                }
            }
        }
        // each body field with each edge value, and whole bodies that are not objects
        for field in body_fields(method, route) {
            for edge in json_edges() {
                let body = format!("{{\"{field}\": {edge}}}");
                let req = Request::builder()
                    .method(m.clone())
                    .uri(&valid)
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .unwrap();
                let r = api.raw(req).await;
                check(&format!("{method} {valid} {field}={:.60}", edge), &r);
                tried += 1;
            }
        }
        if *method != "GET" {
            for raw in ["", "null", "[]", "\"s\"", "{", "1e999", "{\"a\":1,\"a\":2}"] {
                let req = Request::builder()
                    .method(m.clone())
                    .uri(&valid)
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(raw))
                    .unwrap();
                let r = api.raw(req).await;
                check(&format!("{method} {valid} body {raw}"), &r);
                tried += 1;
            }
        }
    }
    assert!(tried > 500, "{tried}");
}
