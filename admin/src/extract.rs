//! Input at the edge: request extractors and a middleware that refuse bad input with a clear
//! page (and change nothing), instead of axum's plain-text rejections or a silent repair.
//!
//! * [`reject_invalid_text`] (middleware, every route but the JSON API's, which checks its own
//!   input in `api::input`): a query string or urlencoded form whose
//!   percent-decoded names or values are not UTF-8 is refused with 400, naming the field. Without
//!   it, form parsing would replace the bytes with U+FFFD and store the result.
//! * [`Form`] and [`Query`]: deserialize with the field's name in the message when a value does
//!   not fit (`before: invalid digit found in string` → 400 naming `before`).
//! * [`Path`]: a path segment that does not parse (not a UUID, a number out of range, bytes that
//!   are not UTF-8) names nothing that exists: 404, like an id of another agency.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// The largest urlencoded body read (the same bound as the CSRF check's).
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_encoding::percent_decode(&spaced).collect())
    } else {
        percent_encoding::percent_decode(raw).into()
    }
}

/// The first field of an `application/x-www-form-urlencoded` text (a query string or a form
/// body) whose name or value is not text once percent-decoded — not UTF-8, or holding a NUL
/// character, which no text column can store — by its name (lossily decoded, to be shown).
pub fn invalid_text_field(encoded: &[u8]) -> Option<String> {
    for pair in encoded.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode(name);
        let value = decode(value);
        let text = |b: &[u8]| std::str::from_utf8(b).is_ok() && !b.contains(&0);
        if !text(&name) || !text(&value) {
            return Some(String::from_utf8_lossy(&name).chars().take(100).collect());
        }
    }
    None
}

fn invalid_text(field: String) -> AppError {
    AppError::BadRequest(format!(
        "The field “{field}” contains bytes that are not text (invalid UTF-8, or a NUL character). Type it again, or paste it as plain text."
    ))
}

fn is_urlencoded(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Middleware for every route: refuse a query string or urlencoded body that is not UTF-8 text
/// once decoded, naming the field (400; nothing runs, nothing changes).
pub async fn reject_invalid_text(req: Request, next: Next) -> Response {
    // the JSON API checks its own input and answers with Problem Details
    if req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    if let Some(field) = req
        .uri()
        .query()
        .and_then(|q| invalid_text_field(q.as_bytes()))
    {
        return invalid_text(field).into_response();
    }
    if !is_urlencoded(req.headers()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return AppError::PayloadTooLarge("The form is larger than 2 MB.").into_response();
        }
    };
    if let Some(field) = invalid_text_field(&bytes) {
        return invalid_text(field).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn deserialize<T: DeserializeOwned>(encoded: &[u8], what: &str) -> Result<T, AppError> {
    if let Some(field) = invalid_text_field(encoded) {
        return Err(invalid_text(field));
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field: String = e.path().to_string().chars().take(100).collect();
        // serde names the value it could not take: enough of it to recognise, not an echo
        let problem: String = e.inner().to_string().chars().take(200).collect();
        if field.is_empty() || field == "." {
            AppError::BadRequest(format!("The {what} could not be read: {problem}."))
        } else {
            AppError::BadRequest(format!(
                "The field “{field}” is not valid: {problem}. Correct it and try again."
            ))
        }
    })
}

/// An urlencoded form, deserialized with the failing field named in the refusal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_urlencoded(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::PayloadTooLarge("The form is larger than allowed."))?;
        deserialize(&bytes, "form").map(Form)
    }
}

/// A query string, deserialized with the failing parameter named in the refusal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        deserialize(q.as_bytes(), "address").map(Query)
    }
}

/// The raw bytes of an urlencoded form, checked to be UTF-8 text (for handlers that read
/// repeated fields themselves).
#[derive(Debug, Clone)]
pub struct RawForm(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawForm {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_urlencoded(req.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::PayloadTooLarge("The form is larger than allowed."))?;
        if let Some(field) = invalid_text_field(&bytes) {
            return Err(invalid_text(field));
        }
        Ok(RawForm(bytes))
    }
}

/// Path parameters; one that does not parse names nothing: 404.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Path(t))
            .map_err(|_| AppError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_are_not_utf8_are_named() {
        assert_eq!(invalid_text_field(b"name=Bakery&tz=Europe%2FBerlin"), None);
        assert_eq!(invalid_text_field(b"name=caf%C3%A9+au+lait"), None);
        assert_eq!(invalid_text_field(b""), None);
        assert_eq!(invalid_text_field(b"a&&b="), None);
        assert_eq!(
            invalid_text_field(b"_csrf=x&name=%FF%FE%FD"),
            Some("name".to_owned())
        );
        // raw (unencoded) bytes count too, and so does a name
        assert_eq!(
            invalid_text_field(b"reason=ok&note=\xff"),
            Some("note".to_owned())
        );
        assert_eq!(
            invalid_text_field(b"n%FFame=1"),
            Some("n\u{fffd}ame".to_owned())
        );
        // a truncated sequence, and a NUL (valid UTF-8, but no text column stores it)
        assert_eq!(invalid_text_field(b"x=%E2%82"), Some("x".to_owned()));
        assert_eq!(invalid_text_field(b"q=a%00b"), Some("q".to_owned()));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Q {
        before: Option<i64>,
    }

    #[test]
    fn a_value_that_does_not_fit_names_its_field() {
        let e = deserialize::<Q>(b"before=99999999999999999999", "address").unwrap_err();
        match e {
            AppError::BadRequest(m) => assert!(m.contains("“before”"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            deserialize::<Q>(b"before=-5", "address").unwrap().before,
            Some(-5)
        );
    }
}
