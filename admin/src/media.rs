//! `/media/{path}?exp=…&sig=…`: the images platforms fetch themselves (Instagram, Facebook),
//! served only with a valid, unexpired signature (see `autosocial_core::media`). No session:
//! the platform's fetcher has none. Anything unsigned, tampered or expired is 403, without
//! saying which.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::extract::{Path, Query};

#[derive(Debug, Deserialize)]
pub struct Signed {
    exp: Option<i64>,
    sig: Option<String>,
}

pub async fn serve(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    let forbidden = || (StatusCode::FORBIDDEN, "forbidden").into_response();
    let (Some(exp), Some(sig)) = (q.exp, q.sig) else {
        return forbidden();
    };
    if autosocial_core::media::verify(
        &state.vault,
        &path,
        exp,
        &sig,
        chrono::Utc::now().timestamp(),
    )
    .is_err()
    {
        return forbidden();
    }
    let mime = match path.rsplit_once('.').map(|(_, e)| e) {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        _ => return forbidden(),
    };
    match tokio::fs::read(state.web.media_dir.join(&path)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime),
                // content-addressed: the bytes behind a path never change
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
