//! The API's reference page, `/api/v1/docs`: Swagger UI vendored from npm and served by the
//! admin itself, under the console's Content-Security-Policy; linked from Settings → API keys.
//! In process for the route and its files; in headless Chromium (tools from
//! `deploy/lib/browser.sh`) for what a person sees: every operation of the OpenAPI document
//! rendered, and nothing refused by the CSP or failed in the browser's console.

mod common;
#[path = "browser/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use autosocial_admin::api::ApiDoc;
use autosocial_admin::config::WebArgs;
use autosocial_core::domain::Role;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fantoccini::{Client, Locator};
use harness::{Driver, Tools};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use utoipa::OpenApi;

/// A GET through the app's Router: status, headers and body.
async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = tokio::time::timeout(
        Duration::from_secs(30),
        app.clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap()),
    )
    .await
    .expect("answered within 30 s")
    .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

/// Every `src="…"` and `href="…"` of a page, and whether it has a `<script>` without `src`.
fn references(html: &str) -> (Vec<String>, bool) {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').expect("a closed attribute");
            refs.push(rest[..end].to_owned());
        }
    }
    let inline_script = html
        .split("<script")
        .skip(1)
        .any(|tag| !tag.split('>').next().unwrap_or("").contains("src="));
    (refs, inline_script)
}

/// The operation ids the document lists.
fn operation_ids() -> Vec<String> {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let mut ids: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_reference_page_loads_only_its_own_vendored_files_under_the_csp(pool: PgPool) {
    let state = common::state(pool.clone()).await;
    let app = autosocial_admin::app::router(state);
    let (status, headers, body) = get(&app, "/api/v1/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    // the console's policy, unchanged: no inline script or style, no eval
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("style-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = String::from_utf8(body).unwrap();
    let (refs, inline_script) = references(&html);
    assert!(!inline_script, "an inline script would be refused: {html}");
    assert!(!html.contains("style="), "an inline style would be refused");
    let statics: Vec<&String> = refs.iter().filter(|r| r.starts_with("/static/")).collect();
    assert_eq!(
        statics.len(),
        4,
        "icon, stylesheet and two scripts: {refs:?}"
    );
    for r in &refs {
        assert!(
            r.starts_with('/'),
            "everything comes from the admin itself, no CDN: {r}"
        );
    }
    let want = [
        (
            "/static/swagger-ui-bundle.",
            "text/javascript; charset=utf-8",
            include_bytes!("../static/swagger-ui-bundle.js").len(),
        ),
        (
            "/static/swagger-ui.",
            "text/css; charset=utf-8",
            include_bytes!("../static/swagger-ui.css").len(),
        ),
        (
            "/static/api-docs.",
            "text/javascript; charset=utf-8",
            include_bytes!("../static/api-docs.js").len(),
        ),
    ];
    for (prefix, content_type, len) in want {
        let path = statics
            .iter()
            .find(|r| r.starts_with(prefix))
            .unwrap_or_else(|| panic!("the page links {prefix}…: {refs:?}"));
        let (status, headers, body) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(body.len(), len, "{path} is the vendored file");
        assert!(
            headers[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable"),
            "{path} is content-hashed and cached for good"
        );
    }
    // the document the page shows is served without a key
    let (status, _, body) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // the page is for reading: other methods are the API's 405 problem
    let res = app
        .clone()
        .oneshot(Request::post("/api/v1/docs").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn settings_api_keys_links_the_reference_page(pool: PgPool) {
    common::user(&pool, "Docs", "admin@docs.test", Role::Admin).await;
    let (mut admin, _) = common::logged_in(&pool, "admin@docs.test").await;
    let res = admin.get("/settings/api-keys").await;
    assert_eq!(res.status, StatusCode::OK);
    let html = res.body;
    assert!(
        html.contains("href=\"/api/v1/docs\""),
        "Settings → API keys links the reference page"
    );
}

/// Wait until `script` (a function body returning a boolean) is true in the page.
async fn wait_js(c: &Client, script: &str, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        if c.execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            == json!(true)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The browser console's entries since the last read, as (level, message).
async fn console(c: &Client, driver: &str) -> Vec<(String, String)> {
    let id = c.session_id().await.ok().flatten().expect("a session id");
    let answer: Value = reqwest::Client::new()
        .post(format!("{driver}/session/{id}/se/log"))
        .json(&json!({ "type": "browser" }))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("chromedriver hands out the browser's console log")
        .json()
        .await
        .expect("the console log as JSON");
    answer["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["level"].as_str().unwrap_or("").to_owned(),
                e["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_reference_page_renders_every_operation_in_chromium_without_console_errors(
    pool: PgPool,
) {
    let tools = Tools::find();
    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut web = WebArgs::for_tests();
    web.public_url = url::Url::parse(&base).unwrap();
    let state = common::state_with(pool.clone(), web).await;
    tokio::spawn(autosocial_admin::app::serve(
        listener,
        state,
        stop.clone().cancelled_owned(),
    ));

    let dir = harness::target_dir().join("api-docs-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let driver = Driver::start(&tools, &dir.join("chromedriver.log")).await;
    let c = driver.session(&tools).await;
    c.goto(&format!("{base}/api/v1/docs")).await.unwrap();

    let ids = operation_ids();
    assert!(
        ids.len() >= 9,
        "the document lists the API's operations: {ids:?}"
    );
    wait_js(
        &c,
        &format!(
            "return document.querySelectorAll('.opblock').length === {};",
            ids.len()
        ),
        Duration::from_secs(30),
        "Swagger UI renders one block per operation",
    )
    .await;
    let shown: Vec<String> = c
        .execute(
            "return [...document.querySelectorAll('.opblock-summary-operation-id')].map(e => e.textContent.trim()).sort();",
            vec![],
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, ids, "every operation is shown by its id");
    let title = c
        .execute(
            "return document.querySelector('.info .title').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        title.as_str().unwrap().contains("AutoSocial API"),
        "{title}"
    );

    // an operation opened shows its parameters, responses and the schemas they refer to
    c.find(Locator::Css(
        "#operations-items-create_item .opblock-summary-control",
    ))
    .await
    .expect("the create_item operation")
    .click()
    .await
    .unwrap();
    wait_js(
        &c,
        "return !!document.querySelector('#operations-items-create_item .responses-table');",
        Duration::from_secs(10),
        "the opened operation shows its responses",
    )
    .await;
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join("api-docs.png"), png).unwrap();

    let problems: Vec<String> = console(&c, &driver.url)
        .await
        .into_iter()
        .filter(|(level, message)| level == "SEVERE" || message.contains("Content Security Policy"))
        .map(|(level, message)| format!("{level}: {message}"))
        .collect();
    assert!(
        problems.is_empty(),
        "the browser's console on /api/v1/docs:\n{}",
        problems.join("\n")
    );
    c.close().await.unwrap();
}
