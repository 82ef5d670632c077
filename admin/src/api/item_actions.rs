//! `/api/v1/items/{id}`: edit (PATCH), regenerate, cancel and reschedule. Each runs the
//! lifecycle's move (`autosocial_core::items`) the console's item page and calendar run, with the
//! console's checks (the edit form's fields and moderation, the reschedule form's time in the
//! client's zone), so the allowed moves, moderation's verdict and the audit entry are the same
//! whichever door was used; the key is the audited actor.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::domain::{ItemState, Platform};
use autosocial_core::items::{self as lifecycle, ItemMove, Refusal};

use super::auth::ReviewerKey;
use super::doc::{Hashtag, WriteErrors};
use super::input::{IdPath, JsonBody, check_if_match, etag_of, json_with_etag};
use super::items::{Item, load, move_refused, reachable};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;
use crate::pages::items::{Draft, moderate, parse_hashtags, parse_link, parse_local};

/// The text fields to change; the others keep their values. `null` clears `cta` and `link_url`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    #[schema(
        min_length = 1,
        max_length = 63206,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub caption: Option<String>,
    /// With or without `#`; at most 100, of at most 100 characters.
    #[schema(max_items = 100, value_type = Option<Vec<Hashtag>>)]
    pub hashtags: Option<Vec<String>>,
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    pub cta: Option<String>,
    #[schema(max_length = 2000, pattern = r"^https?://[^\s/?#\u0000]+")]
    pub link_url: Option<String>,
}

/// A new time for an approved item's posts that have not gone out.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reschedule {
    /// RFC 3339 with an offset (`2026-12-01T09:30:00+01:00`: that instant), or a local date
    /// and time without one (`2026-12-01T09:30`: read in the client's timezone, as the console
    /// reads it; a time the clocks skip moves to the next valid instant). At most a minute in
    /// the past.
    #[schema(min_length = 1, max_length = 40, example = "2026-12-01T09:30:00+01:00")]
    pub slot_at: String,
}

fn nul(s: &str) -> bool {
    s.contains('\0')
}

/// Edit an item's text as the console's edit form does: moderation runs again for its
/// platforms; an approved item's posts that have not gone out get the new text, and an approved
/// item may not be edited into one moderation blocks. With `If-Match`, only while the item is
/// still the version named (412 otherwise).
#[utoipa::path(patch, path = "/api/v1/items/{id}", operation_id = "update_item", tag = "items",
    request_body(content = Option<ItemPatch>, description = "The fields to change; an empty body changes nothing"),
    params(("id" = Uuid, Path),
           ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "The item as changed", body = Item, headers(("ETag" = String))),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The item changed since the ETag", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    headers: HeaderMap,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let agency = key.key.agency_id;
    let scope = key.key.clients.as_deref();
    // the item is locked until the change commits, so If-Match compares with what is changed
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "SELECT id FROM content_items WHERE id = $1 AND agency_id = $2 FOR UPDATE",
        id,
        agency
    )
    .fetch_optional(&mut *tx)
    .await?;
    let current = load(&mut *tx, agency, scope, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let caption: Option<String> = body.take("caption", "a string");
    let hashtags: Option<Vec<String>> = body.take("hashtags", "an array of strings");
    let cta_given = body.has("cta");
    let cta: Option<String> = body.take("cta", "a string");
    let link_given = body.has("link_url");
    let link: Option<String> = body.take("link_url", "a string");
    let caption = caption
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_else(|| current.caption.clone());
    if caption.trim().is_empty() {
        body.error("caption", "Write the caption.");
    } else if caption.chars().count() > 63_206 {
        body.error("caption", "Use at most 63,206 characters.");
    } else if nul(&caption) {
        body.error("caption", "The caption cannot contain a NUL character.");
    }
    let hashtags = match hashtags {
        Some(h) => {
            if h.len() > 100 || h.iter().any(|t| nul(t) || t.chars().count() > 100) {
                body.error(
                    "hashtags",
                    "Use at most 100 hashtags of at most 100 characters.",
                );
            }
            parse_hashtags(&h.join(" "))
        }
        None => current.hashtags.clone(),
    };
    let cta = if cta_given {
        cta.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty())
    } else {
        current.cta.clone()
    };
    if cta
        .as_deref()
        .is_some_and(|c| c.chars().count() > 500 || nul(c))
    {
        body.error(
            "cta",
            "Use at most 500 characters, without a NUL character.",
        );
    }
    let link = if link_given {
        match link.as_deref().map(parse_link) {
            None => None,
            Some(Ok(l)) if !l.as_deref().is_some_and(nul) => l,
            Some(Ok(_)) => {
                body.error("link_url", "The link cannot contain a NUL character.");
                None
            }
            Some(Err(m)) => {
                body.error("link_url", m);
                None
            }
        }
    } else {
        current.link_url.clone()
    };
    body.finish()?;
    // a request that is wrong in itself says so whatever its precondition (RFC 9110 13.2.1)
    check_if_match(&headers, &etag_of(&current))?;
    if !ItemMove::Edit.allows(current.state) {
        return Err(ApiError::invalid_state(
            Refusal::ItemState {
                state: current.state,
                wanted: ItemMove::Edit,
            }
            .to_string(),
        ));
    }
    let mut platforms: Vec<Platform> = current.targets.iter().map(|t| t.platform).collect();
    platforms.sort();
    platforms.dedup();
    let verdict = moderate(
        &state,
        agency,
        current.client_id,
        &platforms,
        &Draft {
            caption: &caption,
            cta: cta.as_deref(),
            hashtags: &hashtags,
            link: link.as_deref(),
        },
    )
    .await
    .map_err(ApiError::from)?;
    if current.state == ItemState::Approved && !verdict.passed() {
        // an approved post may not turn into a blocked one: keep what was approved
        let reasons: Vec<String> = verdict.reasons.iter().map(|r| r.message.clone()).collect();
        return Err(ApiError::validation(vec![FieldError::new(
            "caption",
            format!(
                "Moderation would block this approved post, so nothing was saved: {}",
                reasons.join(" ")
            ),
        )]));
    }
    let edit = lifecycle::Edit {
        caption: &caption,
        hashtags: &hashtags,
        cta: cta.as_deref(),
        link: link.as_deref(),
        moderation_status: if verdict.passed() { "pass" } else { "blocked" },
        moderation: verdict.to_json(),
    };
    lifecycle::edit(&mut tx, &key.actor(), agency, id, &edit)
        .await
        .map_err(move_refused)?;
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

/// Generate an item waiting for review (or rejected) again: it goes back to `planned` without
/// its variants, and its generation is queued.
#[utoipa::path(post, path = "/api/v1/items/{id}/regenerate", operation_id = "regenerate_item", tag = "items",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Regenerating; the item as it is now", body = Item, headers(("ETag" = String))),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn regenerate(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    reachable(&state.pool, &key, id).await?;
    body.finish()?;
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    lifecycle::regenerate(&mut tx, &key.actor(), agency, id)
        .await
        .map_err(move_refused)?;
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

/// Cancel an approved item: its posts that have not started are cancelled with their publish
/// jobs (what already went out stays).
#[utoipa::path(post, path = "/api/v1/items/{id}/cancel", operation_id = "cancel_item", tag = "items",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Cancelled; the item as it is now", body = Item, headers(("ETag" = String))),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    reachable(&state.pool, &key, id).await?;
    body.finish()?;
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    let cancelled = lifecycle::cancel(&mut tx, &key.actor(), agency, id)
        .await
        .map_err(move_refused)?;
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if cancelled == 0 && item.state != ItemState::Cancelled {
        // the console's refusal; nothing changed, so nothing is recorded either
        tx.rollback().await?;
        return Err(ApiError::invalid_state(
            "Nothing was left to cancel: the posts are going out or have gone out.",
        ));
    }
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

/// The client's zone of an item of the agency.
async fn zone_of(state: &AppState, agency: Uuid, item: Uuid) -> ApiResult<Tz> {
    let zone = sqlx::query_scalar!(
        "SELECT c.timezone FROM clients c JOIN content_items i ON i.client_id = c.id AND i.agency_id = c.agency_id
         WHERE i.id = $1 AND i.agency_id = $2",
        item,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(Tz::from_str(&zone).unwrap_or(chrono_tz::UTC))
}

/// `slot_at` as sent: an instant with its offset, or a local time in the client's zone.
pub(super) fn parse_slot(input: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    match DateTime::<FixedOffset>::parse_from_rfc3339(s) {
        Ok(at) if crate::pages::in_date_window(at.with_timezone(&tz).date_naive()) => {
            Ok(at.with_timezone(&Utc))
        }
        Ok(_) => Err(crate::pages::outside_window(
            &s.chars().take(40).collect::<String>(),
        )),
        Err(_) => parse_local(s, tz).map_err(|_| {
            let shown: String = s.chars().take(40).collect();
            format!(
                "“{shown}” is not an RFC 3339 date-time like 2026-12-01T09:30:00+01:00 (or a local 2026-12-01T09:30 in the client's timezone)."
            )
        }),
    }
}

/// Move an approved item (every post of it not yet out) to a new time.
#[utoipa::path(post, path = "/api/v1/items/{id}/reschedule", operation_id = "reschedule_item", tag = "items",
    request_body = Reschedule,
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Moved; the item as it is now", body = Item, headers(("ETag" = String))),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn reschedule(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let slot: Option<String> = body.take("slot_at", "a string (RFC 3339)");
    // an item the key does not reach is not found, before any field message
    reachable(&state.pool, &key, id).await?;
    let agency = key.key.agency_id;
    let tz = zone_of(&state, agency, id).await?;
    let at = match slot.as_deref().map(|s| parse_slot(s, tz)) {
        Some(Ok(at)) => Some(at),
        Some(Err(m)) => {
            body.error("slot_at", m);
            None
        }
        None => {
            body.error("slot_at", "Say when the post goes out (RFC 3339).");
            None
        }
    };
    body.finish()?;
    let Some(at) = at else {
        return Err(ApiError::validation(vec![FieldError::new(
            "slot_at",
            "Say when the post goes out (RFC 3339).",
        )]));
    };
    let mut tx = state.pool.begin().await?;
    match lifecycle::reschedule(&mut tx, &key.actor(), agency, id, at).await {
        Ok(_) => {}
        Err(lifecycle::Failure::Refused(r @ Refusal::TimePassed)) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "slot_at",
                r.to_string(),
            )]));
        }
        Err(e) => return Err(move_refused(e)),
    }
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_an_instant_or_a_local_time_in_the_clients_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        let year = Utc::now().format("%Y").to_string();
        let exact = parse_slot(&format!("{year}-07-01T14:00:00+02:00"), berlin).unwrap();
        assert_eq!(exact.to_rfc3339(), format!("{year}-07-01T12:00:00+00:00"));
        let utc = parse_slot(&format!("{year}-07-01T14:00:00Z"), chrono_tz::UTC).unwrap();
        assert_eq!(utc.to_rfc3339(), format!("{year}-07-01T14:00:00+00:00"));
        // no offset: the client's wall clock
        let local = parse_slot(&format!("{year}-07-01T14:00"), berlin).unwrap();
        assert_eq!(local.to_rfc3339(), format!("{year}-07-01T12:00:00+00:00"));
        for bad in [
            "",
            "tomorrow",
            "9999-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(parse_slot(bad, berlin).is_err(), "{bad}");
        }
    }
}
