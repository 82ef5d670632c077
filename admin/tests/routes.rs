//! Every route of the router, from the router's own source, tried two ways:
//!
//! * as a second agency's owner, with the first agency's ids (in the path, the query and the
//!   form) and with the deployment-wide scopes: nothing of the first agency changes, nothing of
//!   it is shown, and its ids are "not found";
//! * with edge values in every parameter (dates at chrono's limits, huge and negative numbers,
//!   invalid UTF-8, NUL, overlong strings): never a server error, and input that is not text is
//!   refused with 400.
//!
//! [`ROUTES`] lists every route with the parameters it reads. `the_route_list_is_the_routers`
//! parses `src/app.rs` and fails when a route is declared there and missing here (or listed
//! here and gone there), so a new route cannot escape these tests.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{TimeDelta, Utc};
use common::{Browser, Response, state};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::audit::Actor;
use autosocial_core::domain::{ItemState, Platform, Role};
use autosocial_core::testing::build;

/// A route and the query (GET) or form (POST) fields it reads, besides `_csrf`.
struct Route {
    method: &'static str,
    path: &'static str,
    params: &'static [&'static str],
}

const fn get(path: &'static str, params: &'static [&'static str]) -> Route {
    Route {
        method: "GET",
        path,
        params,
    }
}

const fn post(path: &'static str, params: &'static [&'static str]) -> Route {
    Route {
        method: "POST",
        path,
        params,
    }
}

const CALENDAR: &[&str] = &["view", "date", "client", "client_name", "after"];
const RESCHEDULE: &[&str] = &["at", "view", "date", "client", "scope"];
const CLIENT_FORM: &[&str] = &[
    "name",
    "timezone",
    "status",
    "auto_approve",
    "reschedule_policy",
];
const BRAND_FORM: &[&str] = &[
    "voice",
    "tone",
    "pillars",
    "ctas",
    "banned_terms",
    "hashtag_sets",
    "color_primary",
    "color_primary_hex",
    "color_primary_was",
    "color_secondary",
    "color_secondary_hex",
    "color_secondary_was",
    "color_background",
    "color_background_hex",
    "color_background_was",
    "color_text",
    "color_text_hex",
    "color_text_was",
    "font",
    "handle",
    "size",
];
const RULE_FORM: &[&str] = &[
    "name",
    "enabled",
    "accounts",
    "frequency",
    "posts",
    "days",
    "times",
    "content_types",
    "min_gap",
    "from",
];
const COMPOSE_FORM: &[&str] = &[
    "caption", "hashtags", "cta", "link_url", "account", "image", "media_id", "when", "at",
];

/// Every route of `autosocial_admin::app::router`.
const ROUTES: &[Route] = &[
    // console
    get("/", &[]),
    get("/dashboard/live", &[]),
    get("/calendar", CALENDAR),
    post("/calendar/items/{id}/reschedule", RESCHEDULE),
    post("/calendar/publications/{id}/reschedule", RESCHEDULE),
    get("/clients/{id}/calendar", CALENDAR),
    get("/clients/{id}/accounts", &[]),
    post("/clients/{id}/accounts/{account}/disconnect", &[]),
    get("/clients/{id}/pipeline", &[]),
    get("/clients/{id}/pipeline/live", &[]),
    get("/clients/{id}/logs", &["before"]),
    get("/live/events", &["client"]),
    get("/clients", &["q", "status", "after_name", "after_id"]),
    post("/clients", CLIENT_FORM),
    get("/clients/new", &[]),
    get("/clients/suggest", &["client_name"]),
    get("/clients/{id}", &[]),
    post("/clients/{id}", CLIENT_FORM),
    get("/clients/{id}/edit", &[]),
    post("/clients/{id}/status", &["action"]),
    get("/clients/{id}/brand", &["size", "saved"]),
    post("/clients/{id}/brand", BRAND_FORM),
    post("/clients/{id}/brand/preview", BRAND_FORM),
    get(
        "/clients/{id}/brand/preview.png",
        &[
            "size",
            "primary",
            "secondary",
            "background",
            "text",
            "font",
            "handle",
            "cta",
            "headline",
        ],
    ),
    post("/clients/{id}/brand/logo", &[]),
    post("/clients/{id}/brand/logo/remove", &[]),
    get("/clients/{id}/rules", &["from", "saved"]),
    post("/clients/{id}/rules", RULE_FORM),
    get("/clients/{id}/rules/new", &[]),
    post("/clients/{id}/rules/preview", RULE_FORM),
    post("/clients/{id}/rules/{rule}", RULE_FORM),
    get("/clients/{id}/rules/{rule}/edit", &[]),
    post("/clients/{id}/rules/{rule}/delete", &[]),
    get("/clients/{id}/onboarding", &[]),
    post("/clients/{id}/onboarding", &[]),
    post("/clients/{id}/onboarding/{link}/revoke", &[]),
    post("/clients/{id}/accounts/connect/{platform}", &[]),
    get("/review", &["client", "client_name", "platform", "after"]),
    post("/review/approve", &["item", "back"]),
    get("/items/{id}", &[]),
    post("/items/{id}/approve", &["variant", "back"]),
    post(
        "/items/{id}/edit",
        &["caption", "hashtags", "cta", "link_url", "back"],
    ),
    get("/items/{id}/edit-form", &["back"]),
    post("/items/{id}/reject", &["reason", "back"]),
    post("/items/{id}/regenerate", &["back"]),
    post("/items/{id}/cancel", &["back"]),
    post("/items/{id}/publications/{publication}/reschedule", &["at"]),
    get("/clients/{id}/compose", &[]),
    post("/clients/{id}/compose", COMPOSE_FORM),
    post("/clients/{id}/compose/check", COMPOSE_FORM),
    post("/clients/{id}/compose/upload", &[]),
    get("/settings", &[]),
    post("/settings/members", &["email", "role"]),
    post("/settings/members/{user}/role", &["role"]),
    post("/settings/members/{user}/remove", &[]),
    post("/settings/invitations/{id}/revoke", &[]),
    post("/settings/apps/{platform}", &["client_id", "client_secret"]),
    post("/settings/apps/{platform}/remove", &[]),
    post(
        "/settings/ai",
        &[
            "ai_provider",
            "ai_base_url",
            "ai_model",
            "ai_api_key",
            "ai_clear_key",
        ],
    ),
    post(
        "/settings/limits",
        &["platform", "window_seconds", "max_posts"],
    ),
    get("/settings/api-keys", &[]),
    post("/settings/api-keys", &["name", "role", "clients"]),
    post("/settings/api-keys/{id}/revoke", &[]),
    get("/settings/webhooks", &[]),
    post("/settings/webhooks", &["url", "description", "events"]),
    get("/settings/webhooks/{id}", &["before"]),
    post("/settings/webhooks/{id}/rotate", &[]),
    post("/settings/webhooks/{id}/enable", &[]),
    post("/settings/webhooks/{id}/disable", &[]),
    post("/settings/webhooks/{id}/delete", &[]),
    post("/settings/webhooks/{id}/test", &[]),
    post("/settings/webhook-deliveries/{id}/redeliver", &[]),
    get("/switches", &[]),
    post(
        "/switches",
        &[
            "scope",
            "client_id",
            "platform",
            "account_id",
            "reason",
            "confirm",
        ],
    ),
    post("/switches/{id}/disengage", &[]),
    get("/fleet", &["before_at", "before_id"]),
    get("/fleet/live", &[]),
    post("/fleet/jobs/{id}/retry", &[]),
    post("/fleet/jobs/{id}/discard", &[]),
    get(
        "/audit",
        &["actor", "action", "target", "from", "to", "before"],
    ),
    post("/logout", &[]),
    post("/account/agency", &["agency"]),
    get("/account/password", &["changed"]),
    post(
        "/account/password",
        &["current_password", "new_password", "new_password_confirm"],
    ),
    // public
    get("/login", &["next"]),
    post("/login", &["email", "password", "next"]),
    get("/onboard/continue", &[]),
    get("/onboard/{token}", &[]),
    post("/onboard/{token}/connect/{platform}", &[]),
    post("/onboard/{token}/finish", &["timezone"]),
    get(
        "/oauth/callback/{platform}",
        &["code", "state", "error", "error_description", "iss"],
    ),
    get("/invite/{token}", &[]),
    post("/invite/{token}", &["password"]),
    get("/media/{*path}", &["exp", "sig"]),
    get("/healthz", &[]),
    get("/readyz", &[]),
    get("/static/{name}", &[]),
    get("/favicon.ico", &[]),
];

/// Routes outside the console: no session needed (and none used).
fn public(path: &str) -> bool {
    [
        "/login",
        "/onboard",
        "/oauth",
        "/invite",
        "/media",
        "/healthz",
        "/readyz",
        "/static",
        "/favicon.ico",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

// ---------------------------------------------------------------------------------------------
// The router's own list

/// Collects `(METHOD, path)` from every `.route("path", get(..).post(..))` in a file.
#[derive(Default)]
struct RouteCalls {
    found: BTreeSet<(String, String)>,
    unknown: Vec<String>,
}

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "any",
];

/// The HTTP methods a method-router expression names (`get(a).post(b).layer(..)`).
fn methods_of(expr: &syn::Expr, out: &mut Vec<String>) {
    match expr {
        syn::Expr::Call(call) => {
            if let syn::Expr::Path(p) = &*call.func
                && p.path.segments.len() == 1
                && METHODS.contains(&p.path.segments[0].ident.to_string().as_str())
            {
                out.push(p.path.segments[0].ident.to_string().to_uppercase());
            }
        }
        syn::Expr::MethodCall(mc) => {
            if METHODS.contains(&mc.method.to_string().as_str()) {
                out.push(mc.method.to_string().to_uppercase());
            }
            methods_of(&mc.receiver, out);
        }
        syn::Expr::Paren(p) => methods_of(&p.expr, out),
        _ => {}
    }
}

impl<'ast> syn::visit::Visit<'ast> for RouteCalls {
    fn visit_expr_method_call(&mut self, mc: &'ast syn::ExprMethodCall) {
        let name = mc.method.to_string();
        if name == "route" {
            let path = match mc.args.first() {
                Some(syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                })) => s.value(),
                _ => {
                    self.unknown
                        .push("a .route(..) whose path is not a string literal".into());
                    String::new()
                }
            };
            let mut methods = Vec::new();
            if let Some(handler) = mc.args.iter().nth(1) {
                methods_of(handler, &mut methods);
            }
            if methods.is_empty() {
                self.unknown
                    .push(format!("{path}: no get(..)/post(..) found in its handler"));
            }
            for m in methods {
                self.found.insert((m, path.clone()));
            }
        } else if matches!(
            name.as_str(),
            "nest" | "nest_service" | "route_service" | "route_layer"
        ) {
            self.unknown.push(format!(
                ".{name}(..) is not understood by this test: list its routes by hand"
            ));
        }
        syn::visit::visit_expr_method_call(self, mc);
    }
}

fn declared_routes() -> RouteCalls {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/src/app.rs");
    let source = std::fs::read_to_string(file).expect("the router's source");
    let ast = syn::parse_file(&source).expect("app.rs parses");
    let mut calls = RouteCalls::default();
    syn::visit::visit_file(&mut calls, &ast);
    calls
}

#[test]
fn the_route_list_is_the_routers() {
    let declared = declared_routes();
    assert!(declared.unknown.is_empty(), "{:?}", declared.unknown);
    assert!(
        declared.found.len() > 50,
        "the parser found only {:?}",
        declared.found
    );
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(listed.len(), ROUTES.len(), "a route is listed twice");
    let missing: Vec<_> = declared.found.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&declared.found).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "routes declared in src/app.rs but not in ROUTES (add them, with their parameters): {missing:?}; \
         listed in ROUTES but no longer declared: {gone:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Two agencies with one of everything

/// An agency with one of everything, every name carrying `marker`.
#[derive(Debug, Clone)]
struct Tenant {
    agency: Uuid,
    owner_email: String,
    member: Uuid,
    client: Uuid,
    account_x: Uuid,
    rule: Uuid,
    link: Uuid,
    invitation: Uuid,
    api_key: Uuid,
    webhook: Uuid,
    webhook_delivery: Uuid,
    switch: Uuid,
    pending_item: Uuid,
    approved_item: Uuid,
    failed_publication: Uuid,
    job: i64,
}

async fn exec(pool: &PgPool, sql: &str, binds: &[Uuid]) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(pool).await.unwrap();
}

async fn tenant(pool: &PgPool, vault: &autosocial_core::vault::Vault, marker: &str) -> Tenant {
    let agency_name = format!("{marker} Agency");
    let domain = marker.to_lowercase();
    let owner_email = format!("owner@{domain}.test");
    let owner = common::user(pool, &agency_name, &owner_email, Role::Owner).await;
    let member = common::user(
        pool,
        &agency_name,
        &format!("admin@{domain}.test"),
        Role::Admin,
    )
    .await;
    let agency = common::agency_id(pool, &agency_name).await;
    let client = common::client(pool, &agency_name, &format!("{marker} Bakery")).await;
    let account_x = common::account(pool, client, "x", &format!("@{domain}_x")).await;
    let account_li = common::account(pool, client, "linkedin", &format!("{marker} GmbH")).await;
    let rule = Uuid::now_v7();
    exec(
        pool,
        "INSERT INTO content_rules (id, agency_id, client_id, name, frequency, posts_per_period, days_of_week, local_times)
         VALUES ($1, $2, $3, 'rule', 'per_day', 1, '{1,2,3,4,5}', '{09:00}')",
        &[rule, agency, client],
    )
    .await;
    sqlx::query("UPDATE content_rules SET name = $2 WHERE id = $1")
        .bind(rule)
        .bind(format!("{marker} weekday rule"))
        .execute(pool)
        .await
        .unwrap();
    exec(
        pool,
        "INSERT INTO content_rule_accounts (rule_id, account_id, agency_id) VALUES ($1, $2, $3)",
        &[rule, account_x, agency],
    )
    .await;
    let actor = Actor {
        user_id: Some(owner),
        label: owner_email.clone(),
        ip: None,
    };
    let mut conn = pool.acquire().await.unwrap();
    let link = autosocial_core::onboarding::create(&mut conn, agency, client, Some(owner))
        .await
        .unwrap()
        .unwrap()
        .id;
    let invitation = match autosocial_core::invitations::create(
        &mut conn,
        &actor,
        agency,
        &format!("invitee@{domain}.test"),
        Role::Viewer,
    )
    .await
    .unwrap()
    {
        autosocial_core::invitations::Invited::Created(i) => i.id,
        autosocial_core::invitations::Invited::AlreadyMember => unreachable!(),
    };
    let api_key = autosocial_core::api_keys::create(
        &mut conn,
        &actor,
        agency,
        &autosocial_core::api_keys::NewKey {
            name: &format!("{marker} CRM key"),
            role: Role::Admin,
            clients: Some(&[client]),
        },
    )
    .await
    .unwrap()
    .id;
    let webhook_url = url::Url::parse(&format!("https://hooks.{domain}.test/{marker}")).unwrap();
    let webhook = autosocial_core::webhooks::endpoints::create(
        &mut conn,
        vault,
        &actor,
        agency,
        &autosocial_core::webhooks::endpoints::NewEndpoint {
            url: &webhook_url,
            description: &format!("{marker} receiver"),
            events: autosocial_core::webhooks::EventType::ALL,
        },
    )
    .await
    .unwrap()
    .id;
    autosocial_core::webhooks::emit(
        &mut *conn,
        Some(agency),
        autosocial_core::webhooks::EventType::ItemCreated,
        serde_json::json!({ "marker": marker }),
    )
    .await
    .unwrap();
    let webhook_delivery: Uuid =
        sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(webhook)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    let switch = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO kill_switches (id, scope, agency_id, account_id, reason, engaged_by) VALUES ($1, 'account', $2, $3, $4, $5)",
    )
    .bind(switch)
    .bind(agency)
    .bind(account_li)
    .bind(format!("{marker} account paused"))
    .bind(owner)
    .execute(pool)
    .await
    .unwrap();
    // a generated item waiting for review
    let slot = Utc::now() + TimeDelta::hours(30);
    let pending_item = build::item(agency, client)
        .generated()
        .slot_at(slot)
        .chosen_variant("balanced")
        .caption(format!("{marker} pending caption"))
        .moderation("pass", Some(serde_json::json!({ "reasons": [] })))
        .insert(pool)
        .await;
    for kind in ["conservative", "balanced", "bold"] {
        sqlx::query(
            "INSERT INTO content_variants (item_id, agency_id, kind, caption, hashtags, moderation_status, moderation)
             VALUES ($1, $2, $3, $4, '{}', 'pass', '{\"reasons\":[]}')",
        )
        .bind(pending_item)
        .bind(agency)
        .bind(kind)
        .bind(format!("{marker} {kind} caption"))
        .execute(pool)
        .await
        .unwrap();
    }
    exec(
        pool,
        "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
        &[pending_item, account_x, agency],
    )
    .await;
    // an approved item on both accounts, its LinkedIn post failed
    let approved_item = build::item(agency, client)
        .state(ItemState::Approved)
        .slot_at(slot + TimeDelta::hours(1))
        .caption(format!("{marker} approved caption"))
        .insert(pool)
        .await;
    for acct in [account_x, account_li] {
        exec(
            pool,
            "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
            &[approved_item, acct, agency],
        )
        .await;
    }
    assert_eq!(
        autosocial_core::publishing::schedule(&mut conn, agency, approved_item)
            .await
            .unwrap(),
        2
    );
    let failed_publication: Uuid = sqlx::query_scalar(
        "UPDATE publications SET state = 'failed', last_error = $2 WHERE item_id = $1 AND platform = 'linkedin' RETURNING id",
    )
    .bind(approved_item)
    .bind(format!("{marker} refused by LinkedIn"))
    .fetch_one(pool)
    .await
    .unwrap();
    let job: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (kind, state, agency_id, attempts, max_attempts, last_error, finished_at)
         VALUES ('publish', 'failed', $1, 3, 3, $2, now()) RETURNING id",
    )
    .bind(agency)
    .bind(format!("{marker} job error"))
    .fetch_one(pool)
    .await
    .unwrap();
    // the agency's settings: a limit override, an AI model, its own X app
    exec(
        pool,
        "INSERT INTO platform_limit_overrides (agency_id, platform, window_seconds, max_posts) VALUES ($1, 'x', 900, 7)",
        &[agency],
    )
    .await;
    sqlx::query(
        "UPDATE agency_settings SET ai_provider = 'openai', ai_base_url = 'https://ai.example/v1', ai_model = $2 WHERE agency_id = $1",
    )
    .bind(agency)
    .bind(format!("{domain}-model"))
    .execute(pool)
    .await
    .unwrap();
    autosocial_core::platform_apps::save(
        pool,
        vault,
        &actor,
        agency,
        autosocial_core::platform_apps::NewApp {
            platform: Platform::X,
            client_id: &format!("{domain}-app-id"),
            client_secret: Some(&SecretString::from("app-secret-value".to_owned())),
        },
    )
    .await
    .unwrap();
    Tenant {
        agency,
        owner_email,
        member,
        client,
        account_x,
        rule,
        link,
        invitation,
        api_key,
        webhook,
        webhook_delivery,
        switch,
        pending_item,
        approved_item,
        failed_publication,
        job,
    }
}

/// The deployment's own state: an operator (in an agency of their own) who engaged a global
/// switch, and a failed system job (no agency). Returns (switch, job).
async fn deployment(pool: &PgPool) -> (Uuid, i64) {
    let operator = common::user(pool, "Operations", "operator@ops.test", Role::Owner).await;
    exec(
        pool,
        "INSERT INTO operators (user_id) VALUES ($1)",
        &[operator],
    )
    .await;
    let switch = Uuid::now_v7();
    exec(
        pool,
        "INSERT INTO kill_switches (id, scope, reason, engaged_by) VALUES ($1, 'global', 'deployment maintenance', $2)",
        &[switch, operator],
    )
    .await;
    let job: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (kind, state, attempts, max_attempts, last_error, finished_at)
         VALUES ('refresh_sweep', 'failed', 3, 3, 'system sweep detail', now()) RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (switch, job)
}

/// A digest of everything that is the agency's, and of the deployment's own state (switches and
/// jobs of no agency, the platforms' default limits, operators): any change shows.
async fn digest(pool: &PgPool, t: &Tenant) -> BTreeMap<String, String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
         WHERE c.table_schema = 'public' AND c.column_name = 'agency_id' AND t.table_type = 'BASE TABLE'
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() > 15, "{tables:?}");
    let mut out = BTreeMap::new();
    for table in tables {
        let sql = format!(
            "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {table} x WHERE agency_id = $1"
        );
        let d: String = sqlx::query_scalar(&sql)
            .bind(t.agency)
            .fetch_one(pool)
            .await
            .unwrap();
        out.insert(table, d);
    }
    for (name, sql) in [
        (
            "agency and its people",
            "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM (
                 SELECT a::text FROM agencies a WHERE a.id = $1
                 UNION ALL SELECT u::text FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.agency_id = $1
                 UNION ALL SELECT m2::text FROM memberships m2 WHERE m2.user_id IN (SELECT user_id FROM memberships WHERE agency_id = $1)) x",
        ),
        (
            "deployment",
            "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM (
                 SELECT k::text FROM kill_switches k WHERE k.agency_id IS NULL
                 UNION ALL SELECT j::text FROM jobs j WHERE j.agency_id IS NULL
                 UNION ALL SELECT l::text FROM platform_limits l
                 UNION ALL SELECT o::text FROM operators o) x
             WHERE $1::uuid IS NOT NULL",
        ),
    ] {
        let d: String = sqlx::query_scalar(sql)
            .bind(t.agency)
            .fetch_one(pool)
            .await
            .unwrap();
        out.insert(name.to_owned(), d);
    }
    out
}

/// The value of a path parameter for `t`'s objects.
fn path_value(route: &str, param: &str, t: &Tenant, token: &str) -> String {
    match param {
        "id" if route.starts_with("/clients/") => t.client.to_string(),
        "id" if route.starts_with("/calendar/items/") => t.approved_item.to_string(),
        "id" if route.starts_with("/calendar/publications/") => t.failed_publication.to_string(),
        "id" if route.starts_with("/items/") && route.contains("{publication}") => {
            t.approved_item.to_string()
        }
        "id" if route.starts_with("/items/") => t.pending_item.to_string(),
        "id" if route.starts_with("/switches/") => t.switch.to_string(),
        "id" if route.starts_with("/fleet/jobs/") => t.job.to_string(),
        "id" if route.starts_with("/settings/invitations/") => t.invitation.to_string(),
        "id" if route.starts_with("/settings/api-keys/") => t.api_key.to_string(),
        "id" if route.starts_with("/settings/webhooks/") => t.webhook.to_string(),
        "id" if route.starts_with("/settings/webhook-deliveries/") => {
            t.webhook_delivery.to_string()
        }
        "account" => t.account_x.to_string(),
        "rule" => t.rule.to_string(),
        "link" => t.link.to_string(),
        "publication" => t.failed_publication.to_string(),
        "user" => t.member.to_string(),
        "platform" => "x".to_owned(),
        "token" => token.to_owned(),
        "*path" => "cards/none.png".to_owned(),
        "name" => "app.css".to_owned(),
        other => panic!("no value for {{{other}}} in {route}"),
    }
}

/// The route's path with each `{param}` replaced by `value(param)`.
fn fill(route: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = route;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(&rest[..start]);
        out.push_str(&value(&rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn path_params(route: &str) -> Vec<&str> {
    route
        .split('{')
        .skip(1)
        .map(|p| p.split('}').next().unwrap())
        .collect()
}

/// What a second agency sends in a field to reach the first agency: its ids where the field
/// takes one, and words that are not the first agency's otherwise.
fn foreign_value(param: &str, t: &Tenant) -> String {
    match param {
        "client" | "client_id" | "after_id" => t.client.to_string(),
        "account" | "account_id" | "accounts" => t.account_x.to_string(),
        "item" => t.pending_item.to_string(),
        "after" => t.failed_publication.to_string(),
        "agency" => t.agency.to_string(),
        "before" | "before_id" => t.job.to_string(),
        "media_id" => t.rule.to_string(),
        // its client's name without the marker: a filter must not find it
        "client_name" | "q" => "Bakery".to_owned(),
        "back" => format!("/items/{}", t.pending_item),
        "scope" => "client".to_owned(),
        "platform" => "x".to_owned(),
        "confirm" => "yes".to_owned(),
        "reason" => "cross-tenant probe".to_owned(),
        "email" => t.owner_email.clone(),
        "role" => "owner".to_owned(),
        "at" => "2031-03-04T10:00".to_owned(),
        "date" => "2031-03-04".to_owned(),
        "view" => "month".to_owned(),
        "variant" => "balanced".to_owned(),
        "action" => "archive".to_owned(),
        "timezone" => "UTC".to_owned(),
        "name" => "Probe".to_owned(),
        _ => "probe".to_owned(),
    }
}

/// Form or query fields, as bytes (not every value is text).
type Fields = Vec<(String, Vec<u8>)>;

/// Send `method path` with `fields` (a form for POST, a query for GET), as a browser on our own
/// pages would (same-origin headers, the session's CSRF token in the header htmx uses).
async fn send(
    b: &mut Browser,
    method: &str,
    path: &str,
    fields: &[(String, Vec<u8>)],
    csrf: &str,
) -> Response {
    let encoded = {
        let mut s = String::new();
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                s.push('&');
            }
            s.push_str(&url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>());
            s.push('=');
            s.push_str(&url::form_urlencoded::byte_serialize(v).collect::<String>());
        }
        s
    };
    let (uri, body) = if method == "GET" {
        let uri = if encoded.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{encoded}")
        };
        (uri, Body::empty())
    } else {
        (path.to_owned(), Body::from(encoded))
    };
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri)
        .header("sec-fetch-site", "same-origin")
        .header("origin", "http://127.0.0.1:8080")
        .header("x-csrf-token", csrf);
    if method == "POST" {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    tokio::time::timeout(Duration::from_secs(30), b.send(req.body(body).unwrap()))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} did not answer within 30 s"))
}

/// Whether the browser's session still works (a route like logout may have ended it).
async fn session_alive(b: &mut Browser) -> bool {
    b.get("/settings").await.status == StatusCode::OK
}

/// [`send`] as `email`: when the answer says the session (or its CSRF token) is gone — an
/// earlier request switched agency or ended it — log in again and send once more.
async fn send_as(
    b: &mut Browser,
    csrf: &mut String,
    email: &str,
    method: &str,
    path: &str,
    fields: &[(String, Vec<u8>)],
) -> Response {
    let r = send(b, method, path, fields, csrf).await;
    let ended = (r.status == StatusCode::SEE_OTHER
        && r.location().is_some_and(|l| l.starts_with("/login")))
        || (r.status == StatusCode::FORBIDDEN && r.body.contains("did not come from a page"));
    if ended && !public(path) {
        *b = b.sharing();
        *csrf = b.logged_in(email).await;
        return send(b, method, path, fields, csrf).await;
    }
    r
}

/// Everything the first agency's pages would show that the second agency must never see.
const MARKER: &str = "qz7";

/// The body and `Location` of a response, with everything the second agency itself has sent so
/// far taken out (an echo of one's own input — an invitation one made, a name one typed — shows
/// nothing of anyone else), lowercased.
fn shown(r: &Response, sent: &BTreeSet<String>) -> String {
    let mut s = format!("{} {}", r.location().unwrap_or_default(), r.body).to_lowercase();
    // longest first, so a value is not cut up by a shorter one inside it
    let mut sent: Vec<&String> = sent.iter().collect();
    sent.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in sent {
        s = s.replace(v.as_str(), "");
    }
    s
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_second_agencys_owner_reaches_nothing_of_the_first_on_any_route(pool: PgPool) {
    let app_state = state(pool.clone()).await;
    let vault = app_state.vault.clone();
    let a = tenant(&pool, &vault, "Qz7").await;
    let b_tenant = tenant(&pool, &vault, "Beta").await;
    let (global_switch, system_job) = deployment(&pool).await;
    let mut b = Browser::new(app_state);
    let mut csrf = b.logged_in(&b_tenant.owner_email).await;
    let before = digest(&pool, &a).await;
    let mut tried = 0;
    let mut sent: BTreeSet<String> = BTreeSet::new();

    for route in ROUTES {
        if route.path == "/logout" {
            continue; // last, below
        }
        let params = path_params(route.path);
        // (path, expect "not found") attempts: the first agency's ids in the path, and — for a
        // route with ids — the second agency's own ids with the first's in the fields
        let mut attempts = vec![(
            fill(route.path, |p| {
                path_value(route.path, p, &a, &a.link.to_string())
            }),
            !params.is_empty()
                && params
                    .iter()
                    .any(|p| !matches!(*p, "platform" | "*path" | "name")),
        )];
        if !params.is_empty() {
            attempts.push((
                fill(route.path, |p| {
                    path_value(route.path, p, &b_tenant, &b_tenant.link.to_string())
                }),
                false,
            ));
        }
        for (path, expect_not_found) in attempts {
            let fields: Vec<(String, Vec<u8>)> = route
                .params
                .iter()
                .map(|p| (p.to_string(), foreign_value(p, &a).into_bytes()))
                .collect();
            sent.extend(
                fields
                    .iter()
                    .map(|(_, v)| String::from_utf8_lossy(v).to_lowercase())
                    .filter(|v| !v.is_empty()),
            );
            let r = send_as(
                &mut b,
                &mut csrf,
                &b_tenant.owner_email,
                route.method,
                &path,
                &fields,
            )
            .await;
            tried += 1;
            let what = format!("{} {path} (as {})", route.method, b_tenant.owner_email);
            assert!(r.status.as_u16() < 500, "{what}: {} {}", r.status, r.body);
            if expect_not_found && !public(route.path) {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.body);
            }
            assert!(
                !shown(&r, &sent).contains(MARKER),
                "{what} shows something of the first agency: {}",
                r.body
            );
            let now = digest(&pool, &a).await;
            assert_eq!(
                now, before,
                "{what} changed the first agency or the deployment"
            );
        }
    }
    assert!(tried > ROUTES.len(), "{tried}");

    // the deployment-wide scopes: an agency's owner is not the operator
    if !session_alive(&mut b).await {
        b = b.sharing();
        csrf = b.logged_in(&b_tenant.owner_email).await;
    }
    for (scope, platform) in [("global", ""), ("platform_all", "x")] {
        let form = [
            ("_csrf", csrf.as_str()),
            ("scope", scope),
            ("platform", platform),
            ("reason", "stop everyone"),
            ("confirm", "yes"),
        ];
        let r = b.post("/switches", &form).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "engage {scope}: {}",
            r.body
        );
    }
    let r = b
        .post(
            &format!("/switches/{global_switch}/disengage"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "disengage the global switch"
    );
    for action in ["retry", "discard"] {
        let r = b
            .post(
                &format!("/fleet/jobs/{system_job}/{action}"),
                &[("_csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action} a system job");
    }
    // what the agency may see of the deployment: that a global switch is engaged and why, not
    // who engaged it; no system job
    let switches = b.get("/switches").await;
    assert!(switches.body.contains("deployment maintenance"));
    assert!(!switches.body.contains("operator@ops.test"));
    assert!(
        !switches
            .body
            .contains(&format!("/switches/{global_switch}/disengage"))
    );
    let fleet = b.get("/fleet").await;
    assert!(!fleet.body.contains("system sweep detail"));
    assert_eq!(digest(&pool, &a).await, before);

    // and finally logging out ends only the second agency's session
    let r = b.post("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(digest(&pool, &a).await, before);
}

// ---------------------------------------------------------------------------------------------
// Edge values

/// Values for query and form fields.
fn edge_values() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("min date", b"-262143-01-01".to_vec()),
        ("max date", b"+262142-12-31".to_vec()),
        ("year zero", b"0000-01-01".to_vec()),
        ("min date-time", b"-262143-01-01T00:00".to_vec()),
        ("max date-time", b"+262142-12-31T23:59".to_vec()),
        ("rfc3339 far", b"9999-12-31T23:59:59Z".to_vec()),
        ("huge number", b"99999999999999999999999999999".to_vec()),
        ("below i64", b"-9223372036854775809".to_vec()),
        ("i64 min", b"-9223372036854775808".to_vec()),
        ("negative", b"-1".to_vec()),
        ("float", b"1e308".to_vec()),
        ("empty", Vec::new()),
        // 5,000 characters, 30 kB percent-encoded: over every field's limit, under the URI's
        ("overlong", "é".repeat(5_000).into_bytes()),
        ("markup", b"<script>alert(1)</script>".to_vec()),
        ("bidi", "\u{202e}gnp.exe".as_bytes().to_vec()),
        ("invalid utf-8", vec![0xff, 0xfe, b'a']),
        ("nul", b"a\0b".to_vec()),
    ]
}

/// Values for path segments (percent-encoded as they would arrive).
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

fn not_text(label: &str) -> bool {
    matches!(label, "invalid utf-8" | "nul")
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn edge_values_in_every_parameter_of_every_route_are_refused_or_handled(pool: PgPool) {
    let app_state = state(pool.clone()).await;
    let vault = app_state.vault.clone();
    let t = tenant(&pool, &vault, "Edge").await;
    let mut b = Browser::new(app_state);
    let mut csrf = b.logged_in(&t.owner_email).await;
    let long = "a".repeat(5000);
    let mut tried = 0usize;
    for route in ROUTES {
        if route.path == "/logout" {
            continue;
        }
        let valid_path = fill(route.path, |p| {
            path_value(route.path, p, &t, &t.link.to_string())
        });
        // each field alone with each edge value
        let mut cases: Vec<(String, String, Fields)> = Vec::new();
        for param in route.params {
            for (label, value) in edge_values() {
                cases.push((
                    valid_path.clone(),
                    format!("{param}={label}"),
                    vec![(param.to_string(), value)],
                ));
            }
        }
        // each path parameter with each edge value
        for param in path_params(route.path) {
            for edge in PATH_EDGES.iter().copied().chain([long.as_str()]) {
                let path = fill(route.path, |p| {
                    if p == param {
                        edge.to_owned()
                    } else {
                        path_value(route.path, p, &t, &t.link.to_string())
                    }
                });
                cases.push((
                    path,
                    format!("{{{param}}}={}", &edge[..edge.len().min(40)]),
                    Vec::new(),
                ));
            }
        }
        for (path, label, fields) in cases {
            let r = send_as(
                &mut b,
                &mut csrf,
                &t.owner_email,
                route.method,
                &path,
                &fields,
            )
            .await;
            tried += 1;
            let what = format!("{} {} with {label}", route.method, route.path);
            assert!(
                r.status.as_u16() < 500,
                "{what}: {} {}",
                r.status,
                &r.body[..r.body.len().min(2000)]
            );
            let label_only = label.split('=').nth(1).unwrap_or_default();
            if !fields.is_empty() && not_text(label_only) {
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.body);
                assert!(
                    r.body.contains(&format!("“{}”", fields[0].0)),
                    "{what}: the refusal names the field: {}",
                    r.body
                );
            }
        }
    }
    assert!(tried > 1000, "{tried}");
}
