//! A local stand-in for the social platforms' HTTP APIs, for tests, benchmarks and the demo.
//! Never used by production paths.

use axum::Router;
use axum::routing::get;

/// The sandbox's router.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}
