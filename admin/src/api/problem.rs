//! Every error of the API as Problem Details (RFC 9457, `application/problem+json`), with a
//! `type` URI per kind of problem ([`ProblemType`], listed in the README and the OpenAPI
//! document). Internal errors are logged with an id; the answer carries the id, never the text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Where the problem types are documented; each type is this base and its slug.
pub const TYPE_BASE: &str = "https://autosocial.dev/problems/";

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The kinds of problem the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// 401: no key, or a key that is unknown or revoked.
    Unauthorized,
    /// 403: the key's role (or its client limit) does not allow the action.
    Forbidden,
    /// 404: nothing here, or nothing this key may see.
    NotFound,
    /// 400: a request that cannot be read (JSON syntax, a header or parameter that does not parse).
    MalformedRequest,
    /// 422: the request was read, and fields are wrong: `errors` lists each with its message.
    Validation,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: the resource's state does not allow the action (approve an approved item).
    InvalidState,
    /// 412: `If-Match` names a version that is no longer current.
    PreconditionFailed,
    /// 422: the Idempotency-Key was used with another request (method, path or body).
    IdempotencyKeyReused,
    /// 409: a request with this Idempotency-Key is still being processed.
    IdempotencyKeyInFlight,
    /// 429: the key's rate limit is spent; `Retry-After` says when to come back.
    RateLimited,
    /// 500: something broke on our side; the id in `detail` is in our logs.
    Internal,
}

impl ProblemType {
    pub const ALL: &'static [ProblemType] = &[
        ProblemType::Unauthorized,
        ProblemType::Forbidden,
        ProblemType::NotFound,
        ProblemType::MalformedRequest,
        ProblemType::Validation,
        ProblemType::UnsupportedMediaType,
        ProblemType::PayloadTooLarge,
        ProblemType::MethodNotAllowed,
        ProblemType::InvalidState,
        ProblemType::PreconditionFailed,
        ProblemType::IdempotencyKeyReused,
        ProblemType::IdempotencyKeyInFlight,
        ProblemType::RateLimited,
        ProblemType::Internal,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::Forbidden => "forbidden",
            ProblemType::NotFound => "not-found",
            ProblemType::MalformedRequest => "malformed-request",
            ProblemType::Validation => "validation",
            ProblemType::UnsupportedMediaType => "unsupported-media-type",
            ProblemType::PayloadTooLarge => "payload-too-large",
            ProblemType::MethodNotAllowed => "method-not-allowed",
            ProblemType::InvalidState => "invalid-state",
            ProblemType::PreconditionFailed => "precondition-failed",
            ProblemType::IdempotencyKeyReused => "idempotency-key-reused",
            ProblemType::IdempotencyKeyInFlight => "idempotency-key-in-flight",
            ProblemType::RateLimited => "rate-limited",
            ProblemType::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ProblemType::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemType::Forbidden => StatusCode::FORBIDDEN,
            ProblemType::NotFound => StatusCode::NOT_FOUND,
            ProblemType::MalformedRequest => StatusCode::BAD_REQUEST,
            ProblemType::Validation | ProblemType::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ProblemType::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemType::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemType::InvalidState | ProblemType::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            ProblemType::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ProblemType::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ProblemType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ProblemType::Unauthorized => "Missing or invalid API key",
            ProblemType::Forbidden => "Not allowed for this key",
            ProblemType::NotFound => "Not found",
            ProblemType::MalformedRequest => "The request cannot be read",
            ProblemType::Validation => "Some fields are not valid",
            ProblemType::UnsupportedMediaType => "Send the body as application/json",
            ProblemType::PayloadTooLarge => "The body is too large",
            ProblemType::MethodNotAllowed => "Method not allowed",
            ProblemType::InvalidState => "Not possible in the resource's current state",
            ProblemType::PreconditionFailed => "The resource has changed",
            ProblemType::IdempotencyKeyReused => "Idempotency-Key used for another request",
            ProblemType::IdempotencyKeyInFlight => {
                "A request with this Idempotency-Key is in progress"
            }
            ProblemType::RateLimited => "Rate limit exceeded",
            ProblemType::Internal => "Internal error",
        }
    }

    pub fn uri(self) -> String {
        format!("{TYPE_BASE}{}", self.slug())
    }
}

/// One field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name (a JSON member, a query parameter or a header).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A Problem Details object (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI under `https://autosocial.dev/problems/` naming the kind of problem.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present for `validation` (and for malformed parameters): every field that is wrong.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
}

/// An API error: its problem type, a sentence for people, the fields concerned, and for 429 the
/// seconds to wait.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ProblemType,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    pub fn not_found() -> ApiError {
        ApiError::new(
            ProblemType::NotFound,
            "There is nothing here, or nothing this key may see.",
        )
    }

    pub fn unauthorized(detail: &str) -> ApiError {
        ApiError::new(ProblemType::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(ProblemType::Forbidden, detail)
    }

    pub fn malformed(detail: impl Into<String>) -> ApiError {
        ApiError::new(ProblemType::MalformedRequest, detail)
    }

    /// A parameter or header that does not parse: 400 naming it.
    pub fn malformed_field(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            errors: vec![FieldError::new(field, message.clone())],
            ..ApiError::malformed(format!("“{field}”: {message}"))
        }
    }

    /// 422 listing every field that is wrong.
    pub fn validation(errors: Vec<FieldError>) -> ApiError {
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        ApiError {
            detail: format!(
                "Correct the fields listed in `errors` ({}); nothing was changed.",
                names.join(", ")
            ),
            errors,
            ..ApiError::new(ProblemType::Validation, "")
        }
    }

    pub fn invalid_state(detail: impl Into<String>) -> ApiError {
        ApiError::new(ProblemType::InvalidState, detail)
    }

    pub fn internal(e: &dyn std::fmt::Display) -> ApiError {
        let id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(error_id = %id, error = %e, "internal error in the API");
        ApiError::new(
            ProblemType::Internal,
            format!(
                "The error was logged with id {id}. Nothing was changed by the failed request."
            ),
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: self.kind.uri(),
            title: self.kind.title().to_owned(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        ApiError::internal(&e)
    }
}

/// A console helper's error (shared code such as moderation) as the API's.
impl From<crate::error::AppError> for ApiError {
    fn from(e: crate::error::AppError) -> ApiError {
        use crate::error::AppError;
        match e {
            AppError::NotFound => ApiError::not_found(),
            AppError::Forbidden => ApiError::forbidden("Not allowed for this key."),
            AppError::BadRequest(m) => ApiError::malformed(m),
            other => ApiError::internal(&other),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut r = (self.kind.status(), body).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(secs) = self.retry_after_secs {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.kind == ProblemType::Unauthorized {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"autosocial\""),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_has_its_own_uri_and_an_error_status() {
        let mut uris: Vec<String> = ProblemType::ALL.iter().map(|t| t.uri()).collect();
        uris.sort();
        uris.dedup();
        assert_eq!(uris.len(), ProblemType::ALL.len());
        for t in ProblemType::ALL {
            assert!(t.status().as_u16() >= 400, "{t:?}");
            assert!(t.uri().starts_with(TYPE_BASE));
        }
    }
}
