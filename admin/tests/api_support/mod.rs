//! Helpers of the API resource tests (`api_resources*.rs`): requests in process, Problem
//! Details checks, a tenant with one of every resource, keys, audit entries.
#![allow(dead_code)] // each test binary uses its own share

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{TimeDelta, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

use crate::common::{self, agency_id, state_with, user};
use autosocial_admin::app::router;
use autosocial_admin::config::WebArgs;
use autosocial_core::api_keys::{self, NewKey};
use autosocial_core::audit::Actor;
use autosocial_core::domain::Role;
use autosocial_core::testing::build;

pub const PROBLEM: &str = "application/problem+json";

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `status` with a JSON body; returns it.
    pub fn ok(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        self.json()
    }

    /// A Problem Details answer of `status` and type `slug`; returns it.
    pub fn problem(&self, status: StatusCode, slug: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(self.header("content-type"), Some(PROBLEM));
        let p = self.json();
        assert_eq!(p["type"], format!("https://autosocial.dev/problems/{slug}"));
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()));
        p
    }

    /// The fields a validation problem lists (each with a message).
    pub fn fields(&self) -> BTreeSet<String> {
        let p = self.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
                e["field"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

#[derive(Clone)]
pub struct Api {
    pub app: Router,
}

impl Api {
    pub async fn raw(&self, req: Request<Body>) -> Answer {
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

    pub async fn call(
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

    pub async fn get(&self, uri: &str, key: &str) -> Answer {
        self.call(Method::GET, uri, key, None, &[]).await
    }

    pub async fn post(&self, uri: &str, key: &str, body: &Value) -> Answer {
        self.call(Method::POST, uri, key, Some(body), &[]).await
    }

    pub async fn patch(
        &self,
        uri: &str,
        key: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> Answer {
        self.call(Method::PATCH, uri, key, Some(body), extra).await
    }

    /// A multipart upload of `bytes` as field `field`.
    pub async fn upload(&self, uri: &str, key: &str, field: &str, bytes: &[u8]) -> Answer {
        let boundary = "XyZboundary42";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::post(uri)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        self.raw(req).await
    }
}

/// An agency with an owner, two clients (each with an X account, a pending item, an approved
/// item with a scheduled publication, a rule and an onboarding link) and an engaged switch.
pub struct Tenant {
    pub agency: Uuid,
    pub owner: Uuid,
    pub owner_email: String,
    pub clients: [Uuid; 2],
    pub accounts: [Uuid; 2],
    pub pending: [Uuid; 2],
    pub publications: [Uuid; 2],
    pub rules: [Uuid; 2],
    pub links: [Uuid; 2],
    /// An account switch on the first client's account.
    pub switch: Uuid,
}

pub async fn tenant(pool: &PgPool, name: &str) -> Tenant {
    let agency_name = format!("{name} Agency");
    let owner_email = format!("owner@{}.test", name.to_lowercase());
    let owner = user(pool, &agency_name, &owner_email, Role::Owner).await;
    let agency = agency_id(pool, &agency_name).await;
    let mut t = Tenant {
        agency,
        owner,
        owner_email,
        clients: [Uuid::nil(); 2],
        accounts: [Uuid::nil(); 2],
        pending: [Uuid::nil(); 2],
        publications: [Uuid::nil(); 2],
        rules: [Uuid::nil(); 2],
        links: [Uuid::nil(); 2],
        switch: Uuid::nil(),
    };
    for (i, label) in ["Bakery", "Florist"].iter().enumerate() {
        let client = common::client(pool, &agency_name, &format!("{name} {label}")).await;
        let account = common::account(pool, client, "x", &format!("@{name}_{label}")).await;
        t.pending[i] = build::item(agency, client)
            .generated()
            .caption(format!("{name} {label} caption"))
            .moderation("pass", Some(json!({ "reasons": [] })))
            .targets(&[account])
            .insert(pool)
            .await;
        let approved = build::item(agency, client)
            .state(autosocial_core::domain::ItemState::Approved)
            .caption(format!("{name} {label} approved"))
            .moderation("pass", Some(json!({ "reasons": [] })))
            .targets(&[account])
            .insert(pool)
            .await;
        t.publications[i] = build::publication(agency, client, approved, account)
            .scheduled_at(Utc::now() + TimeDelta::days(1))
            .insert(pool)
            .await;
        t.rules[i] = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO content_rules (id, agency_id, client_id, name, enabled, frequency, posts_per_period,
                                        days_of_week, local_times, content_types, min_gap_minutes)
             VALUES ($1, $2, $3, 'Weekday mornings', true, 'per_day', 1, '{1,2,3,4,5}', '{09:00}', '{text}', 60)",
        )
        .bind(t.rules[i])
        .bind(agency)
        .bind(client)
        .execute(pool)
        .await
        .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        t.links[i] = autosocial_core::onboarding::create(&mut conn, agency, client, None)
            .await
            .unwrap()
            .unwrap()
            .id;
        t.clients[i] = client;
        t.accounts[i] = account;
    }
    let actor = Actor {
        user_id: Some(owner),
        label: "owner".into(),
        ip: None,
    };
    t.switch = autosocial_core::killswitch::engage(
        pool,
        None,
        std::time::Duration::ZERO,
        &actor,
        autosocial_core::killswitch::Target::Account {
            agency,
            account: t.accounts[0],
        },
        "probe",
    )
    .await
    .unwrap();
    t
}

/// A key of the tenant's agency, as its owner makes one in Settings.
pub async fn key(
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

pub async fn api(pool: &PgPool) -> Api {
    let web = WebArgs {
        api_requests_per_minute: 100_000,
        ..WebArgs::for_tests()
    };
    Api {
        app: router(state_with(pool.clone(), web).await),
    }
}

/// The newest audit entry of `action` in the agency: (actor label, target id, details).
pub async fn audited(pool: &PgPool, agency: Uuid, action: &str) -> (String, Option<String>, Value) {
    sqlx::query_as(
        "SELECT actor_label, target_id, details FROM audit_log WHERE agency_id = $1 AND action = $2
         ORDER BY id DESC LIMIT 1",
    )
    .bind(agency)
    .bind(action)
    .fetch_optional(pool)
    .await
    .unwrap()
    .unwrap_or_else(|| panic!("no audit entry {action}"))
}

/// The audit entry names the key (by name), not a person.
pub fn names_key(actor: &str, name: &str) {
    assert!(
        actor.starts_with(&format!("api-key:{name} (as_live_")),
        "{actor}"
    );
}

pub async fn scalar<T>(pool: &PgPool, sql: &str, bind: Uuid) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(pool)
        .await
        .unwrap()
}
