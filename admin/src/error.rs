//! The web layer's one error type. Internal errors are logged with an id; the page shows the id,
//! never the error's text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::pages::layout::bare_page;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("login required")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("request refused: {0}")]
    Csrf(&'static str),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// Input that cannot be read at all (not UTF-8, a parameter that does not fit, a date out
    /// of range): 400 with the message, which names the field.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large: {0}")]
    PayloadTooLarge(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<autosocial_core::clients::ClientError> for AppError {
    fn from(e: autosocial_core::clients::ClientError) -> AppError {
        use autosocial_core::clients::ClientError;
        match e {
            ClientError::NotFound => AppError::NotFound,
            ClientError::NameTaken => AppError::BadRequest(e.to_string()),
            ClientError::Database(e) => AppError::Database(e),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                bare_page("Not found", html! { h1 { "Not found" } p { "There is nothing here, or it is not yours to see." } a href="/" { "Back to the console" } }),
            )
                .into_response(),
            AppError::Unauthorized => Redirect::to("/login").into_response(),
            AppError::Forbidden => (
                StatusCode::FORBIDDEN,
                bare_page("Not allowed", html! { h1 { "Not allowed" } p { "Your role does not allow this action. Ask an owner or admin of your agency." } }),
            )
                .into_response(),
            AppError::Csrf(why) => {
                tracing::warn!(reason = why, "refused a state-changing request");
                (
                    StatusCode::FORBIDDEN,
                    bare_page("Request refused", html! { h1 { "Request refused" } p { "This request did not come from a page of this console (" (why) "). Reload the page and try again." } }),
                )
                    .into_response()
            }
            AppError::TooManyRequests { retry_after_secs } => {
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    bare_page("Too many attempts", html! { h1 { "Too many attempts" } p { "Wait " (retry_after_secs) " seconds and try again." } }),
                )
                    .into_response();
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                r
            }
            AppError::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                bare_page("Request refused", html! { h1 { "Request refused" } p { (message) } p { "Nothing was changed." } a href="/" { "Back to the console" } }),
            )
                .into_response(),
            AppError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                bare_page("Request refused", html! { h1 { "Request refused" } p { "Send this form as a web form (application/x-www-form-urlencoded)." } p { "Nothing was changed." } }),
            )
                .into_response(),
            AppError::PayloadTooLarge(message) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                bare_page("Request refused", html! { h1 { "Request refused" } p { (message) } p { "Nothing was changed." } }),
            )
                .into_response(),
            AppError::Database(e) => internal(&e),
            AppError::Other(e) => internal(&*e),
        }
    }
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    tracing::error!(error_id = %id, error = %e, "internal error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        bare_page("Something went wrong", html! { h1 { "Something went wrong" } p { "The error was logged with id " code { (id) } ". Nothing was changed by the failed request." } }),
    )
        .into_response()
}

/// The name of the constraint a database error violated, if any: handlers turn a known one into
/// a field message (`clients_agency_id_name_key` → "a client with this name already exists").
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}
