//! Every platform answer that is not a success, classified into [`PlatformError`] from the
//! platforms' own documented error formats:
//!
//! * Meta Graph API (Facebook Pages, Instagram): `{"error": {"message", "type", "code",
//!   "error_subcode", "fbtrace_id"}}`; throttling codes 4, 17, 32, 613 and the Business Use Case
//!   usage headers; token codes 190 and 102; Instagram's publishing limit (code 9 / subcode
//!   2207042).
//! * X API v2: RFC 7807 problems `{"title", "detail", "type", "status"}` and the
//!   `x-rate-limit-reset` / `x-user-limit-24hour-reset` headers (epoch seconds).
//! * TikTok Content Posting API: `{"data": {...}, "error": {"code", "message", "log_id"}}`, where
//!   `code` is `ok` on success, even with HTTP 200.
//! * LinkedIn: `{"message", "serviceErrorCode", "status"}`; daily limits answer 429 and reset at
//!   midnight UTC.
//!
//! Reset instants given as absolute times are turned into waits with the response's own `Date`
//! header when it has one, so a skewed local clock does not matter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::PlatformError;
use crate::domain::Platform;

const DEFAULT_WAIT: Duration = Duration::from_secs(60);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The platform's idea of now: its `Date` header, else ours.
fn platform_now(headers: &HeaderMap, ours: DateTime<Utc>) -> DateTime<Utc> {
    header(headers, "date")
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(ours)
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = header(headers, "retry-after")?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some(
        (at - platform_now(headers, now))
            .to_std()
            .unwrap_or_default(),
    )
}

/// An epoch-seconds reset header as a wait.
fn reset_in(headers: &HeaderMap, name: &str, now: DateTime<Utc>) -> Option<Duration> {
    let epoch: i64 = header(headers, name)?.trim().parse().ok()?;
    let at = DateTime::<Utc>::from_timestamp(epoch, 0)?;
    Some(
        (at - platform_now(headers, now))
            .to_std()
            .unwrap_or_default()
            + Duration::from_secs(1),
    )
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

/// Classify a non-success answer (or, for TikTok, any answer whose `error.code` is not `ok`).
pub fn classify(
    platform: Platform,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    now: DateTime<Utc>,
) -> PlatformError {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match platform {
        Platform::Facebook | Platform::Instagram => meta(status, headers, &json, body, now),
        Platform::X => x(status, headers, &json, body, now),
        Platform::Tiktok => tiktok(status, headers, &json, body, now),
        Platform::Linkedin => linkedin(status, headers, &json, body, now),
        Platform::Sandbox => generic(status, headers, body, now),
    }
}

fn excerpt(body: &str) -> String {
    body.chars().take(500).collect()
}

fn generic(status: u16, headers: &HeaderMap, body: &str, now: DateTime<Utc>) -> PlatformError {
    let message = excerpt(body);
    match status {
        401 => PlatformError::Auth(message),
        408 => PlatformError::Transient(message),
        429 => PlatformError::RateLimited {
            retry_after: retry_after(headers, now).unwrap_or(DEFAULT_WAIT),
            message,
        },
        500..=599 => PlatformError::Transient(message),
        _ => PlatformError::Permanent(message),
    }
}

/// Meta's Business Use Case usage header: `{"<id>": [{"type", "call_count", ..., "estimated_time_to_regain_access": minutes}]}`.
fn meta_regain(headers: &HeaderMap) -> Option<Duration> {
    let v: Value = serde_json::from_str(header(headers, "x-business-use-case-usage")?).ok()?;
    let minutes = v
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|u| u["estimated_time_to_regain_access"].as_u64())
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes * 60))
}

fn meta(
    status: u16,
    headers: &HeaderMap,
    json: &Value,
    body: &str,
    now: DateTime<Utc>,
) -> PlatformError {
    let err = &json["error"];
    if err.is_null() {
        return generic(status, headers, body, now);
    }
    let code = err["code"].as_i64().unwrap_or(0);
    let subcode = err["error_subcode"].as_i64().unwrap_or(0);
    let mut message = text(&err["message"]);
    if let Some(user_msg) = err["error_user_msg"].as_str() {
        message = format!("{message} ({user_msg})");
    }
    let throttled = |fallback: Duration| PlatformError::RateLimited {
        retry_after: meta_regain(headers)
            .or_else(|| retry_after(headers, now))
            .unwrap_or(fallback),
        message: message.clone(),
    };
    match (code, subcode) {
        // Instagram: the account's content publishing limit (posts per 24 h) is reached
        (9, 2207042) | (4, 2207042) => throttled(Duration::from_secs(3600)),
        // application, user, page and "calls within one hour" throttling; BUC limits
        (4 | 17 | 32 | 613, _) | (80001..=80014, _) => throttled(Duration::from_secs(300)),
        // the access token expired, was invalidated, or the session is gone
        (190 | 102, _) | (10, 458..=467) => PlatformError::Auth(message),
        // the app itself: "Invalid application ID" (101), "Error validating client secret"
        // (Meta answers a wrong secret with the generic code 1)
        (101, _) => PlatformError::AppCredentials(message),
        (1, _) if message.to_ascii_lowercase().contains("client secret") => {
            PlatformError::AppCredentials(message)
        }
        // the authorization code: expired (36007), another redirect URI (36008), used (36009)
        (100, 36007..=36009) => PlatformError::CodeRejected(message),
        // temporary: unknown error, service unavailable, "please retry"
        (1 | 2, _) => PlatformError::Transient(message),
        _ if err["is_transient"].as_bool() == Some(true) => PlatformError::Transient(message),
        _ if status >= 500 => PlatformError::Transient(message),
        _ => PlatformError::Permanent(message),
    }
}

fn x(
    status: u16,
    headers: &HeaderMap,
    json: &Value,
    body: &str,
    now: DateTime<Utc>,
) -> PlatformError {
    let message = match (json["title"].as_str(), json["detail"].as_str()) {
        (Some(t), Some(d)) if t != d => format!("{t}: {d}"),
        (_, Some(d)) => d.to_owned(),
        (Some(t), None) => t.to_owned(),
        _ => excerpt(body),
    };
    match status {
        429 => {
            // the 24-hour user cap resets later than the 15-minute window: wait for the later one
            let wait = [
                reset_in(headers, "x-rate-limit-reset", now),
                reset_in(headers, "x-user-limit-24hour-reset", now),
            ]
            .into_iter()
            .flatten()
            .max()
            .or_else(|| retry_after(headers, now))
            .unwrap_or(Duration::from_secs(900));
            PlatformError::RateLimited {
                retry_after: wait,
                message,
            }
        }
        401 => PlatformError::Auth(message),
        500..=599 => PlatformError::Transient(message),
        _ => PlatformError::Permanent(message),
    }
}

fn tiktok(
    status: u16,
    headers: &HeaderMap,
    json: &Value,
    body: &str,
    now: DateTime<Utc>,
) -> PlatformError {
    let code = json["error"]["code"].as_str().unwrap_or_default();
    let message = match json["error"]["message"].as_str() {
        Some(m) if !m.is_empty() => format!("{code}: {m}"),
        _ if !code.is_empty() => code.to_owned(),
        _ => excerpt(body),
    };
    match code {
        "access_token_invalid" | "token_expired" => PlatformError::Auth(message),
        "rate_limit_exceeded" => PlatformError::RateLimited {
            retry_after: retry_after(headers, now).unwrap_or(DEFAULT_WAIT),
            message,
        },
        // the creator's daily posting cap: try again after a while, not at once
        "spam_risk_too_many_posts" | "spam_risk_too_many_pending_share" => {
            PlatformError::RateLimited {
                retry_after: Duration::from_secs(3600),
                message,
            }
        }
        "internal_error" => PlatformError::Transient(message),
        "" => generic(status, headers, body, now),
        _ if status >= 500 => PlatformError::Transient(message),
        _ => PlatformError::Permanent(message),
    }
}

fn next_utc_midnight(now: DateTime<Utc>) -> Duration {
    let tomorrow = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    (tomorrow - now).to_std().unwrap_or_default() + Duration::from_secs(60)
}

fn linkedin(
    status: u16,
    headers: &HeaderMap,
    json: &Value,
    body: &str,
    now: DateTime<Utc>,
) -> PlatformError {
    let message = match (json["message"].as_str(), json["serviceErrorCode"].as_i64()) {
        (Some(m), Some(c)) => format!("{m} (serviceErrorCode {c})"),
        (Some(m), None) => m.to_owned(),
        _ => excerpt(body),
    };
    match status {
        // daily application and member limits reset at midnight UTC
        429 => PlatformError::RateLimited {
            retry_after: retry_after(headers, now)
                .unwrap_or_else(|| next_utc_midnight(platform_now(headers, now))),
            message,
        },
        401 => PlatformError::Auth(message),
        500..=599 => PlatformError::Transient(message),
        _ => PlatformError::Permanent(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::{HeaderName, HeaderValue};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 18, 0, 0).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn meta_expired_token_is_an_auth_error() {
        let body = r#"{"error":{"message":"Error validating access token: Session has expired on Sunday, 22-Nov-26 10:00:00 PST.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"AbCdEf"}}"#;
        match classify(Platform::Facebook, 400, &HeaderMap::new(), body, now()) {
            PlatformError::Auth(m) => assert!(m.contains("Session has expired")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn meta_app_and_code_refusals_say_what_was_refused() {
        let secret = r#"{"error":{"message":"Error validating client secret.","type":"OAuthException","code":1,"fbtrace_id":"x"}}"#;
        assert_eq!(
            classify(Platform::Facebook, 400, &HeaderMap::new(), secret, now()),
            PlatformError::AppCredentials("Error validating client secret.".into())
        );
        let app_id = r#"{"error":{"message":"Error validating application. Invalid application ID.","type":"OAuthException","code":101,"fbtrace_id":"x"}}"#;
        assert!(matches!(
            classify(Platform::Instagram, 400, &HeaderMap::new(), app_id, now()),
            PlatformError::AppCredentials(_)
        ));
        let used = r#"{"error":{"message":"This authorization code has been used.","type":"OAuthException","code":100,"error_subcode":36009,"fbtrace_id":"x"}}"#;
        assert_eq!(
            classify(Platform::Facebook, 400, &HeaderMap::new(), used, now()),
            PlatformError::CodeRejected("This authorization code has been used.".into())
        );
        // code 1 without a word about the secret stays Meta's "unknown error, retry"
        let unknown = r#"{"error":{"message":"An unknown error occurred","type":"OAuthException","code":1,"fbtrace_id":"x"}}"#;
        assert!(matches!(
            classify(Platform::Facebook, 500, &HeaderMap::new(), unknown, now()),
            PlatformError::Transient(_)
        ));
    }

    #[test]
    fn meta_throttling_codes_wait_for_the_usage_header() {
        let body = r#"{"error":{"message":"(#32) Page request limit reached","type":"OAuthException","code":32,"fbtrace_id":"x"}}"#;
        let h = headers(&[(
            "x-business-use-case-usage",
            r#"{"112233":[{"type":"pages","call_count":100,"total_cputime":12,"total_time":30,"estimated_time_to_regain_access":7}]}"#,
        )]);
        assert_eq!(
            classify(Platform::Facebook, 400, &h, body, now()),
            PlatformError::RateLimited {
                retry_after: Duration::from_secs(420),
                message: "(#32) Page request limit reached".into()
            }
        );
        for code in [4, 17, 613] {
            let body = format!(
                r#"{{"error":{{"message":"limit","type":"OAuthException","code":{code}}}}}"#
            );
            assert!(
                matches!(
                    classify(Platform::Instagram, 400, &HeaderMap::new(), &body, now()),
                    PlatformError::RateLimited { .. }
                ),
                "code {code}"
            );
        }
    }

    #[test]
    fn instagram_publishing_limit_is_a_rate_limit() {
        let body = r#"{"error":{"message":"Application request limit reached","type":"OAuthException","code":9,"error_subcode":2207042,"is_transient":false,"error_user_title":"Max posts reached","error_user_msg":"The account has reached its publishing limit for the day.","fbtrace_id":"A1"}}"#;
        match classify(Platform::Instagram, 400, &HeaderMap::new(), body, now()) {
            PlatformError::RateLimited {
                retry_after,
                message,
            } => {
                assert_eq!(retry_after, Duration::from_secs(3600));
                assert!(message.contains("publishing limit"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn meta_validation_errors_keep_the_platforms_message() {
        let body = r#"{"error":{"message":"(#100) The image URL must be a publicly accessible URL","type":"OAuthException","code":100,"error_subcode":2207052,"fbtrace_id":"B2"}}"#;
        assert_eq!(
            classify(Platform::Instagram, 400, &HeaderMap::new(), body, now()),
            PlatformError::Permanent(
                "(#100) The image URL must be a publicly accessible URL".into()
            )
        );
        let body = r#"{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","is_transient":true,"code":2,"fbtrace_id":"C3"}}"#;
        assert!(matches!(
            classify(Platform::Facebook, 500, &HeaderMap::new(), body, now()),
            PlatformError::Transient(_)
        ));
    }

    #[test]
    fn x_rate_limits_wait_for_the_later_reset() {
        let body = r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#;
        let reset_15m = (now().timestamp() + 300).to_string();
        let reset_24h = (now().timestamp() + 7200).to_string();
        let h = headers(&[
            ("x-rate-limit-reset", &reset_15m),
            ("x-user-limit-24hour-reset", &reset_24h),
            ("date", "Mon, 23 Nov 2026 18:00:00 GMT"),
        ]);
        assert_eq!(
            classify(Platform::X, 429, &h, body, now()),
            PlatformError::RateLimited {
                retry_after: Duration::from_secs(7201),
                message: "Too Many Requests".into()
            }
        );
        // a local clock an hour off changes nothing: the Date header is the reference
        let skewed = now() + chrono::Duration::hours(1);
        assert_eq!(
            classify(Platform::X, 429, &h, body, skewed),
            classify(Platform::X, 429, &h, body, now())
        );
    }

    #[test]
    fn x_duplicate_posts_and_bad_tokens() {
        let body = r#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#;
        assert_eq!(
            classify(Platform::X, 403, &HeaderMap::new(), body, now()),
            PlatformError::Permanent(
                "Forbidden: You are not allowed to create a Tweet with duplicate content.".into()
            )
        );
        let body =
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#;
        assert_eq!(
            classify(Platform::X, 401, &HeaderMap::new(), body, now()),
            PlatformError::Auth("Unauthorized".into())
        );
        assert!(matches!(
            classify(
                Platform::X,
                503,
                &HeaderMap::new(),
                "Service Unavailable",
                now()
            ),
            PlatformError::Transient(_)
        ));
    }

    #[test]
    fn tiktok_error_codes() {
        let body = r#"{"data":{},"error":{"code":"spam_risk_too_many_posts","message":"The user has reached the daily post cap","log_id":"202611231800"}}"#;
        assert!(matches!(
            classify(Platform::Tiktok, 403, &HeaderMap::new(), body, now()),
            PlatformError::RateLimited { .. }
        ));
        let body = r#"{"error":{"code":"access_token_invalid","message":"The access token is invalid or not found in the request.","log_id":"x"}}"#;
        assert!(matches!(
            classify(Platform::Tiktok, 401, &HeaderMap::new(), body, now()),
            PlatformError::Auth(_)
        ));
        let body = r#"{"error":{"code":"rate_limit_exceeded","message":"API rate limit was exceeded","log_id":"x"}}"#;
        let h = headers(&[("retry-after", "30")]);
        assert_eq!(
            classify(Platform::Tiktok, 429, &h, body, now()),
            PlatformError::RateLimited {
                retry_after: Duration::from_secs(30),
                message: "rate_limit_exceeded: API rate limit was exceeded".into()
            }
        );
        let body = r#"{"error":{"code":"invalid_params","message":"video_cover_timestamp_ms is out of range","log_id":"x"}}"#;
        assert_eq!(
            classify(Platform::Tiktok, 400, &HeaderMap::new(), body, now()),
            PlatformError::Permanent(
                "invalid_params: video_cover_timestamp_ms is out of range".into()
            )
        );
        let body =
            r#"{"error":{"code":"internal_error","message":"Something went wrong","log_id":"x"}}"#;
        assert!(matches!(
            classify(Platform::Tiktok, 500, &HeaderMap::new(), body, now()),
            PlatformError::Transient(_)
        ));
    }

    #[test]
    fn linkedin_daily_limits_wait_until_midnight_utc() {
        let body = r#"{"message":"Resource level throttle APPLICATION DAY limit for calls to this resource is reached.","status":429}"#;
        match classify(Platform::Linkedin, 429, &HeaderMap::new(), body, now()) {
            PlatformError::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_secs(6 * 3600 + 60))
            }
            other => panic!("{other:?}"),
        }
        let body = r#"{"serviceErrorCode":65600,"message":"Invalid access token","status":401}"#;
        assert_eq!(
            classify(Platform::Linkedin, 401, &HeaderMap::new(), body, now()),
            PlatformError::Auth("Invalid access token (serviceErrorCode 65600)".into())
        );
        let body = r#"{"message":"ERROR :: /commentary :: length 3500 exceeds maximum allowed length 3000","status":422}"#;
        assert!(matches!(
            classify(Platform::Linkedin, 422, &HeaderMap::new(), body, now()),
            PlatformError::Permanent(_)
        ));
    }

    #[test]
    fn retry_after_may_be_an_http_date() {
        let h = headers(&[
            ("retry-after", "Mon, 23 Nov 2026 18:02:00 GMT"),
            ("date", "Mon, 23 Nov 2026 18:00:00 GMT"),
        ]);
        assert_eq!(
            classify(Platform::Sandbox, 429, &h, "slow down", now()),
            PlatformError::RateLimited {
                retry_after: Duration::from_secs(120),
                message: "slow down".into()
            }
        );
    }
}
