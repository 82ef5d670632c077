//! Every resource route added after the first slice: each role below the route's is a 403 that
//! changes nothing; another agency's ids, and other clients' ids for a key limited to some
//! clients, are 404 (or absent from lists) and change nothing.

mod api_support;
mod common;

use axum::http::{Method, StatusCode};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use api_support::*;
use autosocial_core::domain::Role;

// ---------------------------------------------------------------------------------------------
// Every new route: roles, other agencies, other clients

/// Every route this file covers: (method, path, least role, path id kind, a body).
const NEW_ROUTES: &[(&str, &str, Role, &str)] = &[
    ("POST", "/api/v1/clients/{id}/pause", Role::Admin, "client"),
    ("POST", "/api/v1/clients/{id}/resume", Role::Admin, "client"),
    ("GET", "/api/v1/clients/{id}/brand", Role::Viewer, "client"),
    ("PATCH", "/api/v1/clients/{id}/brand", Role::Admin, "client"),
    ("GET", "/api/v1/clients/{id}/rules", Role::Viewer, "client"),
    ("GET", "/api/v1/rules/{id}", Role::Viewer, "rule"),
    ("PATCH", "/api/v1/rules/{id}", Role::Admin, "rule"),
    (
        "POST",
        "/api/v1/clients/{id}/media",
        Role::Reviewer,
        "client",
    ),
    (
        "GET",
        "/api/v1/clients/{id}/onboarding-links",
        Role::Viewer,
        "client",
    ),
    (
        "POST",
        "/api/v1/clients/{id}/onboarding-links",
        Role::Admin,
        "client",
    ),
    ("GET", "/api/v1/onboarding-links/{id}", Role::Viewer, "link"),
    (
        "POST",
        "/api/v1/onboarding-links/{id}/revoke",
        Role::Admin,
        "link",
    ),
    ("GET", "/api/v1/accounts/{id}", Role::Viewer, "account"),
    (
        "POST",
        "/api/v1/accounts/{id}/disconnect",
        Role::Admin,
        "account",
    ),
    ("PATCH", "/api/v1/items/{id}", Role::Reviewer, "item"),
    (
        "POST",
        "/api/v1/items/{id}/regenerate",
        Role::Reviewer,
        "item",
    ),
    ("POST", "/api/v1/items/{id}/cancel", Role::Reviewer, "item"),
    (
        "POST",
        "/api/v1/items/{id}/reschedule",
        Role::Reviewer,
        "item",
    ),
    (
        "GET",
        "/api/v1/publications/{id}",
        Role::Viewer,
        "publication",
    ),
    ("GET", "/api/v1/kill-switches/{id}", Role::Viewer, "switch"),
    (
        "POST",
        "/api/v1/kill-switches/{id}/disengage",
        Role::Admin,
        "switch",
    ),
    ("POST", "/api/v1/kill-switches", Role::Admin, "none"),
    ("GET", "/api/v1/accounts", Role::Viewer, "none"),
    ("GET", "/api/v1/publications", Role::Viewer, "none"),
    ("GET", "/api/v1/kill-switches", Role::Viewer, "none"),
];

/// The id of `kind` of the tenant's client `i`.
fn id_of(t: &Tenant, kind: &str, i: usize) -> Uuid {
    match kind {
        "client" => t.clients[i],
        "rule" => t.rules[i],
        "link" => t.links[i],
        "account" => t.accounts[i],
        "item" => t.pending[i],
        "publication" => t.publications[i],
        "switch" => t.switch,
        _ => Uuid::nil(),
    }
}

/// A body that would do something on `route` for the tenant's client `i`.
fn body_for(method: &str, route: &str, t: &Tenant, i: usize) -> Option<Value> {
    match (method, route) {
        ("PATCH", r) if r.ends_with("brand") => Some(json!({ "voice": "Probe" })),
        ("PATCH", r) if r.starts_with("/api/v1/rules") => Some(json!({ "name": "Probe" })),
        ("PATCH", _) => Some(json!({ "caption": "Probe" })),
        ("POST", r) if r.ends_with("reschedule") => {
            Some(json!({ "slot_at": (Utc::now() + TimeDelta::days(3)).to_rfc3339() }))
        }
        ("POST", "/api/v1/kill-switches") => Some(json!({
            "scope": "client", "client_id": t.clients[i], "reason": "probe",
        })),
        ("POST", _) => Some(json!({})),
        _ => None,
    }
}

/// The rows of every agency table of `agency`, hashed (but the keys, whose last-used time is
/// all that a refused call changes).
async fn digest(pool: &PgPool, agency: Uuid) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
         WHERE c.table_schema = 'public' AND c.column_name = 'agency_id' AND t.table_type = 'BASE TABLE'
           AND c.table_name <> 'api_keys'
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
async fn another_agencys_and_other_clients_ids_are_not_found_on_every_new_route(pool: PgPool) {
    let a = tenant(&pool, "Qz7").await;
    let b = tenant(&pool, "Beta").await;
    let b_admin = key(&pool, &b, "beta admin", Role::Admin, None).await;
    // a key of the first agency limited to its first client
    let a_limited = key(&pool, &a, "limited", Role::Admin, Some(&[a.clients[0]])).await;
    let api = api(&pool).await;
    let before = digest(&pool, a.agency).await;
    for (method, route, _, kind) in NEW_ROUTES {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        for (who, caller, i) in [
            ("other agency", &b_admin, 0),
            ("other client", &a_limited, 1),
        ] {
            if *kind == "switch" && who == "other client" {
                // the tenant's switch is on the first client's account: the next test's job
                continue;
            }
            let path = route.replace("{id}", &id_of(&a, kind, i).to_string());
            let body = body_for(method, route, &a, i);
            let r = api
                .call(
                    m.clone(),
                    &path,
                    caller,
                    body.as_ref(),
                    &[("if-match", "*")],
                )
                .await;
            let what = format!("{method} {path} ({who})");
            let text = String::from_utf8_lossy(&r.bytes).to_lowercase();
            if *kind == "none" {
                if *method == "POST" {
                    assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {text}");
                } else {
                    assert_eq!(r.status, StatusCode::OK, "{what}: {text}");
                    let ids = [a.accounts[i], a.publications[i], a.switch, a.clients[i]];
                    for id in ids {
                        if who == "other agency" || id != a.switch {
                            assert!(!text.contains(&id.to_string()), "{what} shows {id}");
                        }
                    }
                }
            } else {
                r.problem(StatusCode::NOT_FOUND, "not-found");
            }
            if who == "other agency" {
                assert!(
                    !text.contains("qz7"),
                    "{what} shows the first agency: {text}"
                );
            }
            assert_eq!(
                digest(&pool, a.agency).await,
                before,
                "{what} changed something"
            );
        }
    }
    // the limited key does reach its own client's switch
    let own = api
        .get(&format!("/api/v1/kill-switches/{}", a.switch), &a_limited)
        .await;
    own.ok(StatusCode::OK);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn each_new_route_refuses_roles_below_its_own_with_403_and_changes_nothing(pool: PgPool) {
    let t = tenant(&pool, "Acme").await;
    let viewer = key(&pool, &t, "viewer", Role::Viewer, None).await;
    let reviewer = key(&pool, &t, "reviewer", Role::Reviewer, None).await;
    let api = api(&pool).await;
    let before = digest(&pool, t.agency).await;
    let mut refused = 0;
    for (method, route, least, kind) in NEW_ROUTES {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let path = route.replace("{id}", &id_of(&t, kind, 0).to_string());
        let body = body_for(method, route, &t, 0);
        for (role, caller) in [(Role::Viewer, &viewer), (Role::Reviewer, &reviewer)] {
            if role.allows(*least) {
                continue;
            }
            let r = api.call(m.clone(), &path, caller, body.as_ref(), &[]).await;
            r.problem(StatusCode::FORBIDDEN, "forbidden");
            refused += 1;
        }
    }
    assert!(refused >= 20, "{refused}");
    assert_eq!(digest(&pool, t.agency).await, before);
}
