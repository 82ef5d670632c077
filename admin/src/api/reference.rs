//! `GET /api/v1/docs`: the API's reference page, Swagger UI (vendored from the npm package
//! `swagger-ui-dist`, served from `/static/` like htmx) over `/api/v1/openapi.json`. Like the
//! document it needs no key: it shows what the API is, not any agency's data. It runs under the
//! console's Content-Security-Policy: no inline script or style, its start-up in
//! `static/api-docs.js`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, html};

use crate::statics;

/// Where the reference page is (the route in `super::router` spells it out too).
pub const PATH: &str = "/api/v1/docs";

pub async fn page() -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "API reference · AutoSocial" }
                link rel="icon" href=(statics::favicon_path()) type="image/svg+xml";
                link rel="stylesheet" href=(statics::swagger_css_path());
                script src=(statics::swagger_js_path()) defer {}
                script src=(statics::api_docs_js_path()) defer {}
            }
            body {
                main #api-docs data-spec="/api/v1/openapi.json" {
                    h1 { "AutoSocial API reference" }
                    p {
                        "This page needs JavaScript. The API's OpenAPI document is at "
                        a href="/api/v1/openapi.json" { "/api/v1/openapi.json" } "."
                    }
                }
            }
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response()
}
