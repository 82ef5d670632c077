//! Static files compiled into the binary: htmx and its SSE extension (vendored from the npm
//! package `htmx.org`, see `admin/static/README.md`), Swagger UI for the API's reference page
//! (from `swagger-ui-dist`) and the stylesheet. Names carry a content
//! hash, so they are served with a year-long immutable cache lifetime.

use std::sync::LazyLock;

use crate::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const HTMX: &[u8] = include_bytes!("../static/htmx.min.js");
const CSS: &[u8] = include_bytes!("../static/app.css");
const SSE: &[u8] = include_bytes!("../static/sse.js");
const REVIEW_JS: &[u8] = include_bytes!("../static/review.js");
const FAVICON: &[u8] = include_bytes!("../static/favicon.svg");
const SWAGGER_JS: &[u8] = include_bytes!("../static/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../static/swagger-ui.css");
const API_DOCS_JS: &[u8] = include_bytes!("../static/api-docs.js");

struct Asset {
    name: String,
    body: &'static [u8],
    content_type: &'static str,
}

fn asset(stem: &str, ext: &str, body: &'static [u8], content_type: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(body)[..6]);
    Asset {
        name: format!("{stem}.{hash}.{ext}"),
        body,
        content_type,
    }
}

static ASSETS: LazyLock<[Asset; 8]> = LazyLock::new(|| {
    [
        asset("htmx", "js", HTMX, "text/javascript; charset=utf-8"),
        asset("app", "css", CSS, "text/css; charset=utf-8"),
        asset("review", "js", REVIEW_JS, "text/javascript; charset=utf-8"),
        asset("sse", "js", SSE, "text/javascript; charset=utf-8"),
        asset("favicon", "svg", FAVICON, "image/svg+xml"),
        asset(
            "swagger-ui-bundle",
            "js",
            SWAGGER_JS,
            "text/javascript; charset=utf-8",
        ),
        asset("swagger-ui", "css", SWAGGER_CSS, "text/css; charset=utf-8"),
        asset(
            "api-docs",
            "js",
            API_DOCS_JS,
            "text/javascript; charset=utf-8",
        ),
    ]
});

pub fn htmx_path() -> String {
    format!("/static/{}", ASSETS[0].name)
}

pub fn css_path() -> String {
    format!("/static/{}", ASSETS[1].name)
}

/// The review queue's keyboard shortcuts.
pub fn review_js_path() -> String {
    format!("/static/{}", ASSETS[2].name)
}

/// The htmx SSE extension (`hx-sse:connect`), loaded by the pages that update live.
pub fn sse_path() -> String {
    format!("/static/{}", ASSETS[3].name)
}

/// The site icon, linked from every page's head.
pub fn favicon_path() -> String {
    format!("/static/{}", ASSETS[4].name)
}

/// Swagger UI's script, for the API's reference page.
pub fn swagger_js_path() -> String {
    format!("/static/{}", ASSETS[5].name)
}

/// Swagger UI's stylesheet.
pub fn swagger_css_path() -> String {
    format!("/static/{}", ASSETS[6].name)
}

/// The reference page's own script: starts Swagger UI on the OpenAPI document.
pub fn api_docs_js_path() -> String {
    format!("/static/{}", ASSETS[7].name)
}

/// `GET /favicon.ico`: browsers ask for it where no page names an icon (an image or a JSON
/// answer opened directly); the same icon, under a day's cache lifetime since the name is fixed.
pub async fn favicon() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        FAVICON,
    )
        .into_response()
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            a.body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
