//! CSRF defence for every state-changing request: an Origin / Sec-Fetch-Site check, then a
//! token — the session's CSRF token in the `x-csrf-token` header (htmx, from the layout) or the
//! `_csrf` form field (plain forms). Before login, the login form's token is a double-submit
//! cookie.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use autosocial_core::secret::constant_time_eq;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::config::WebArgs;
use crate::error::AppError;

pub const FIELD: &str = "_csrf";
pub const HEADER: &str = "x-csrf-token";
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;
/// Uploads (logo, composer images) are buffered to find their `_csrf` field; each route's own
/// body limit, lower than this, still applies after.
const MAX_MULTIPART_BYTES: usize = 8 * 1024 * 1024;

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request must come from our own pages: `Sec-Fetch-Site: same-origin` where the browser
/// sends it, else an `Origin` equal to the public URL's (or the Host the browser used). Requests
/// with neither header (non-browser clients) fall through to the token check alone.
pub fn check_origin(req: &Request, web: &WebArgs) -> Result<(), AppError> {
    check_origin_headers(req.headers(), web)
}

/// [`check_origin`] on the headers alone.
pub fn check_origin_headers(
    headers: &axum::http::HeaderMap,
    web: &WebArgs,
) -> Result<(), AppError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
    {
        return Err(AppError::Csrf("cross-site request"));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let public = web.public_url.origin().ascii_serialization();
        let host_origin = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("{}://{h}", web.public_url.scheme()));
        if origin != public && Some(origin) != host_origin.as_deref() {
            return Err(AppError::Csrf("foreign origin"));
        }
    }
    Ok(())
}

/// The `_csrf` field of a buffered multipart body, if any.
async fn multipart_token(bytes: &Bytes, boundary: String) -> Option<String> {
    let body = bytes.clone();
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some(FIELD) {
            return field.text().await.ok();
        }
    }
    None
}

/// The token a request carries: the header, else the `_csrf` field of a urlencoded or
/// multipart body (so uploads work without JavaScript). The body is buffered (bounded) and
/// handed on unchanged.
pub async fn extract_token(req: Request) -> Result<(Option<String>, Request), AppError> {
    if let Some(t) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        let t = t.to_owned();
        return Ok((Some(t), req));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(boundary) = multer::parse_boundary(&content_type) {
        let (parts, body) = req.into_parts();
        let bytes: Bytes = axum::body::to_bytes(body, MAX_MULTIPART_BYTES)
            .await
            .map_err(|_| AppError::Csrf("upload too large"))?;
        let token = multipart_token(&bytes, boundary).await;
        return Ok((token, Request::from_parts(parts, Body::from(bytes))));
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok((None, req));
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::Csrf("form too large"))?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// Middleware for the console's routes (inside `require_session`).
pub async fn protect(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_safe(req.method()) {
        return next.run(req).await;
    }
    match verify_session_request(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn verify_session_request(state: &AppState, req: Request) -> Result<Request, AppError> {
    check_origin(&req, &state.web)?;
    let expected = req
        .extensions()
        .get::<CurrentUser>()
        .map(|u| u.csrf_token.clone())
        .ok_or(AppError::Unauthorized)?;
    let (token, req) = extract_token(req).await?;
    match token {
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(req),
        Some(_) => Err(AppError::Csrf("wrong token")),
        None => Err(AppError::Csrf("missing token")),
    }
}
