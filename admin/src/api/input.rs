//! Reading requests at the edge of the API: JSON bodies field by field (so a refusal lists every
//! field that is wrong, with its message), query parameters, path ids, and JSON answers with
//! their `ETag`. Nothing here panics on any input: what cannot be read is a 400, what is read and
//! wrong is a 422, and the problem names the field.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::problem::{ApiError, ApiResult, FieldError, ProblemType};

/// The largest JSON body read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"))
}

/// A JSON object body, its members taken one by one with [`JsonBody::take`]. An empty body is
/// an empty object (actions like approve need none).
#[derive(Debug, Default)]
pub struct JsonBody {
    members: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError::new(
                    ProblemType::PayloadTooLarge,
                    format!("Send at most {MAX_BODY_BYTES} bytes."),
                )
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody::default());
        }
        if !json {
            return Err(ApiError::new(
                ProblemType::UnsupportedMediaType,
                "Send the body with Content-Type: application/json.",
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::malformed(format!("The body is not valid JSON: {e}.")))?;
        match value {
            Value::Object(members) => Ok(JsonBody {
                members,
                errors: Vec::new(),
            }),
            _ => Err(ApiError::validation(vec![FieldError::new(
                "body",
                "Send a JSON object.",
            )])),
        }
    }
}

impl JsonBody {
    /// The member `name` as a `T` (absent or null: `None`); a value of the wrong type is noted
    /// as that field's error and also gives `None`.
    pub fn take<T: DeserializeOwned>(&mut self, name: &'static str, expected: &str) -> Option<T> {
        match self.members.remove(name) {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value::<T>(v) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.errors
                        .push(FieldError::new(name, format!("Expected {expected}.")));
                    None
                }
            },
        }
    }

    /// Whether the member `name` was sent (even as `null`); ask before taking it.
    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Note an error for a field (after its value was read), unless it has one already (a
    /// value of the wrong type).
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        if !self.errors.iter().any(|e| e.field == field) {
            self.errors.push(FieldError::new(field, message));
        }
    }

    /// The errors found, unknown members included; `Ok` when there are none.
    pub fn finish(mut self) -> ApiResult<()> {
        let mut unknown: Vec<String> = self.members.keys().cloned().collect();
        unknown.sort();
        for name in unknown {
            let shown: String = name.chars().take(100).collect();
            self.errors
                .push(FieldError::new(shown, "Unknown field: remove it."));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// The id in the path: one that is not a UUID is a 400 naming it.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::malformed_field("id", "Expected a UUID."))?;
        Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| ApiError::malformed_field("id", "Expected a UUID."))
    }
}

/// The query string's parameters, in order; bytes that are not text are a 400 naming the field.
#[derive(Debug, Default)]
pub struct QueryParams(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        if let Some(field) = crate::extract::invalid_text_field(q.as_bytes()) {
            return Err(ApiError::malformed_field(
                &field,
                "Not text (invalid UTF-8, or a NUL character).",
            ));
        }
        Ok(QueryParams(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

impl QueryParams {
    /// Refuse parameters other than `known` and any given twice (400 naming each).
    pub fn check(&self, known: &[&str]) -> ApiResult<()> {
        let mut errors = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in &self.0 {
            let shown: String = k.chars().take(100).collect();
            if !known.contains(&k.as_str()) {
                errors.push(FieldError::new(shown, "Unknown parameter."));
            } else if seen.contains(&k.as_str()) {
                errors.push(FieldError::new(shown, "Given more than once."));
            } else {
                seen.push(k);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            let mut e = ApiError::malformed("Correct the parameters listed in `errors`.");
            e.errors = errors;
            Err(e)
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `limit`: 1 to `max` (default `default`).
    pub fn limit(&self, default: i64, max: i64) -> ApiResult<i64> {
        match self.get("limit") {
            None => Ok(default),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::malformed_field(
                    "limit",
                    format!("Expected a whole number from 1 to {max}."),
                )),
            },
        }
    }

    /// A parameter that names one of `choices` (the values `T` parses), 400 listing them.
    pub fn one_of<T: std::str::FromStr>(
        &self,
        name: &str,
        choices: &[&str],
    ) -> ApiResult<Option<T>> {
        self.get(name)
            .map(|s| {
                s.parse::<T>().map_err(|_| {
                    ApiError::malformed_field(
                        name,
                        format!("Expected one of {}.", choices.join(", ")),
                    )
                })
            })
            .transpose()
    }

    /// An RFC 3339 date-time parameter (`2026-12-01T00:00:00Z`).
    pub fn time(&self, name: &str) -> ApiResult<Option<DateTime<Utc>>> {
        self.get(name)
            .map(|s| {
                // a `+` of an offset arrives as a space unless it was percent-encoded
                DateTime::parse_from_rfc3339(&s.replace(' ', "+"))
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::malformed_field(
                            name,
                            "Expected an RFC 3339 date-time, like 2026-12-01T00:00:00Z.",
                        )
                    })
            })
            .transpose()
    }

    pub fn uuid(&self, name: &str) -> ApiResult<Option<Uuid>> {
        self.get(name)
            .map(|s| {
                Uuid::parse_str(s).map_err(|_| ApiError::malformed_field(name, "Expected a UUID."))
            })
            .transpose()
    }
}

/// A position in a list ordered by `(created_at, id)` newest first, as an opaque string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "v1:{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let mut parts = text.splitn(3, ':');
        if parts.next()? != "v1" {
            return None;
        }
        let micros: i64 = parts.next()?.parse().ok()?;
        let id = Uuid::parse_str(parts.next()?).ok()?;
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros)?,
            id,
        })
    }

    /// Cut a page from `rows` fetched with `limit + 1` (newest first): the first `limit`, and
    /// the cursor after the last of them when there was more.
    pub fn page<T>(
        mut rows: Vec<T>,
        limit: i64,
        key: impl Fn(&T) -> Cursor,
    ) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next = more.then(|| rows.last().map(|r| key(r).encode())).flatten();
        (rows, next)
    }

    /// The `cursor` parameter, if given.
    pub fn from_query(q: &QueryParams) -> ApiResult<Option<Cursor>> {
        q.get("cursor")
            .map(|s| {
                Cursor::decode(s).ok_or_else(|| {
                    ApiError::malformed_field(
                        "cursor",
                        "Not a cursor this API gave out: pass `next_cursor` from a list as it is.",
                    )
                })
            })
            .transpose()
    }
}

/// `value` as JSON, written into a buffer sized for a page of resources at once (growing it
/// from serde_json's 128 bytes copied a 30 KB page eight times).
fn to_json(value: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(16 * 1024);
    serde_json::to_writer(&mut body, value)?;
    Ok(body)
}

fn json_answer(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A JSON answer.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match to_json(value) {
        Ok(body) => json_answer(status, body),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// The strong ETag of a JSON representation: a hash of its bytes.
fn etag_of_bytes(json: &[u8]) -> String {
    let digest = Sha256::digest(json);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// The strong ETag of a representation: a hash of its JSON.
pub fn etag_of<T: Serialize>(value: &T) -> String {
    etag_of_bytes(&to_json(value).unwrap_or_default())
}

/// A single resource's JSON answer with its `ETag` (of the very bytes sent).
pub fn json_with_etag<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = match to_json(value) {
        Ok(body) => body,
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let etag = HeaderValue::from_str(&etag_of_bytes(&body));
    let mut r = json_answer(status, body);
    if let Ok(v) = etag {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// `If-Match`: `Ok` when absent, `*`, or naming `current`; 412 when it names another version.
pub fn check_if_match(headers: &HeaderMap, current: &str) -> ApiResult<()> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let Ok(text) = value.to_str() else {
        return Err(ApiError::malformed_field(
            "If-Match",
            "Expected an ETag this API gave out.",
        ));
    };
    let matches = text
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current);
    if matches {
        Ok(())
    } else {
        Err(ApiError::new(
            ProblemType::PreconditionFailed,
            "The resource changed since the ETag in If-Match: get it again, and apply your change to what it is now.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "x", "djE6", "%%%", "djI6MTox", &"A".repeat(5000)] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        // a timestamp beyond chrono's range is refused, not a panic
        let far = URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", i64::MAX, Uuid::nil()));
        assert_eq!(Cursor::decode(&far), None);
    }

    #[test]
    fn if_match_accepts_the_current_tag_or_a_star() {
        let mut h = HeaderMap::new();
        assert!(check_if_match(&h, "\"a\"").is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"b\", \"a\""));
        assert!(check_if_match(&h, "\"a\"").is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(check_if_match(&h, "\"a\"").is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"b\""));
        let e = check_if_match(&h, "\"a\"").unwrap_err();
        assert_eq!(e.kind, ProblemType::PreconditionFailed);
    }
}
