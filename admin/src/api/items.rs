//! `/api/v1/items`: list (by client and state, newest first, cursor pages), read, approve and
//! reject. Approving and rejecting run the lifecycle's moves (`autosocial_core::items`), the
//! same the console's review queue runs, so the table of allowed moves, moderation's verdict and
//! the audit entry are identical; the key is the audited actor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::domain::{ItemState, Platform};
use autosocial_core::items::{self as lifecycle, ApproveError, ApproveFailure, Failure, Refusal};

use super::auth::{Caller, ReviewerKey, ViewerKey};
use super::input::{Cursor, IdPath, JsonBody, QueryParams, json, json_with_etag};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;

/// The caption variants a generated item offers.
const VARIANTS: [&str; 3] = ["conservative", "balanced", "bold"];

/// An account an item is to be published on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Target {
    pub account_id: Uuid,
    #[schema(value_type = String, example = "instagram")]
    pub platform: Platform,
}

/// A content item: a post for one slot, on one or more of the client's accounts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Item {
    pub id: Uuid,
    pub client_id: Uuid,
    /// planned, generating, pending_review, approved, rejected, published,
    /// partially_published, failed or cancelled.
    #[schema(value_type = String, example = "pending_review")]
    pub state: ItemState,
    /// `generated` or `manual`.
    pub source: String,
    /// `text`, `image` or `link`.
    pub content_type: String,
    pub slot_at: DateTime<Utc>,
    pub caption: String,
    pub hashtags: Vec<String>,
    pub cta: Option<String>,
    pub link_url: Option<String>,
    pub chosen_variant: Option<String>,
    /// `pending`, `pass` or `blocked` (a blocked item cannot be approved).
    pub moderation_status: String,
    pub rejection_reason: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub targets: Vec<Target>,
}

/// A page of items, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    pub data: Vec<Item>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Approve an item waiting for review, optionally choosing one of its caption variants.
#[derive(Debug, Serialize, ToSchema)]
pub struct Approval {
    /// `conservative`, `balanced` or `bold`.
    pub variant: Option<String>,
}

/// Reject an item waiting for review; the reason is kept with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rejection {
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

struct Row {
    id: Uuid,
    client_id: Uuid,
    state: ItemState,
    source: String,
    content_type: String,
    slot_at: DateTime<Utc>,
    caption: String,
    hashtags: Vec<String>,
    cta: Option<String>,
    link_url: Option<String>,
    chosen_variant: Option<String>,
    moderation_status: String,
    rejection_reason: Option<String>,
    approved_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    target_accounts: Vec<Uuid>,
    target_platforms: Vec<Platform>,
}

impl From<Row> for Item {
    fn from(r: Row) -> Item {
        Item {
            targets: r
                .target_accounts
                .into_iter()
                .zip(r.target_platforms)
                .map(|(account_id, platform)| Target {
                    account_id,
                    platform,
                })
                .collect(),
            id: r.id,
            client_id: r.client_id,
            state: r.state,
            source: r.source,
            content_type: r.content_type,
            slot_at: r.slot_at,
            caption: r.caption,
            hashtags: r.hashtags,
            cta: r.cta,
            link_url: r.link_url,
            chosen_variant: r.chosen_variant,
            moderation_status: r.moderation_status,
            rejection_reason: r.rejection_reason,
            approved_at: r.approved_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// One item of the key's agency, of a client the key reaches.
async fn load(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    scope: Option<&[Uuid]>,
    id: Uuid,
) -> sqlx::Result<Option<Item>> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT i.id, i.client_id, i.state AS "state: ItemState", i.source, i.content_type, i.slot_at, i.caption,
                  i.hashtags, i.cta, i.link_url, i.chosen_variant, i.moderation_status, i.rejection_reason,
                  i.approved_at, i.created_at, i.updated_at,
                  t.accounts AS "target_accounts!: Vec<Uuid>", t.platforms AS "target_platforms!: Vec<Platform>"
           FROM content_items i
           CROSS JOIN LATERAL (
               SELECT coalesce(array_agg(a.id ORDER BY a.platform, a.id), '{}') AS accounts,
                      coalesce(array_agg(a.platform ORDER BY a.platform, a.id), '{}') AS platforms
               FROM content_item_targets ct JOIN social_accounts a ON a.id = ct.account_id AND a.agency_id = ct.agency_id
               WHERE ct.item_id = i.id AND ct.agency_id = i.agency_id) t
           WHERE i.id = $1 AND i.agency_id = $2 AND ($3::uuid[] IS NULL OR i.client_id = ANY($3))"#,
        id,
        agency,
        scope
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Item::from))
}

/// List the items of the clients the key reaches, newest first.
#[utoipa::path(get, path = "/api/v1/items", tag = "items",
    params(
        ("client" = Option<Uuid>, Query, description = "Only this client's items"),
        ("state" = Option<String>, Query, description = "Only items in this state, e.g. pending_review"),
        ("limit" = Option<i64>, Query, description = "1 to 100 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of items", body = ItemList),
        (status = 400, description = "A parameter does not parse", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&["client", "state", "limit", "cursor"])?;
    let limit = q.limit(50, 100)?;
    let cursor = Cursor::from_query(&q)?;
    let client = q.uuid("client")?;
    let item_state = q
        .get("state")
        .map(|s| {
            s.parse::<ItemState>().map_err(|_| {
                let all: Vec<&str> = ItemState::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::malformed_field("state", format!("Expected one of {}.", all.join(", ")))
            })
        })
        .transpose()?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT i.id, i.client_id, i.state AS "state: ItemState", i.source, i.content_type, i.slot_at, i.caption,
                  i.hashtags, i.cta, i.link_url, i.chosen_variant, i.moderation_status, i.rejection_reason,
                  i.approved_at, i.created_at, i.updated_at,
                  t.accounts AS "target_accounts!: Vec<Uuid>", t.platforms AS "target_platforms!: Vec<Platform>"
           FROM (SELECT * FROM content_items
                 WHERE agency_id = $1 AND ($2::uuid[] IS NULL OR client_id = ANY($2))
                   AND ($3::uuid IS NULL OR client_id = $3)
                   AND ($4::text IS NULL OR state = $4)
                   AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
                 ORDER BY created_at DESC, id DESC
                 LIMIT $7) i
           CROSS JOIN LATERAL (
               SELECT coalesce(array_agg(a.id ORDER BY a.platform, a.id), '{}') AS accounts,
                      coalesce(array_agg(a.platform ORDER BY a.platform, a.id), '{}') AS platforms
               FROM content_item_targets ct JOIN social_accounts a ON a.id = ct.account_id AND a.agency_id = ct.agency_id
               WHERE ct.item_id = i.id AND ct.agency_id = i.agency_id) t
           ORDER BY i.created_at DESC, i.id DESC"#,
        key.key.agency_id,
        key.key.clients.as_deref(),
        client,
        item_state.map(ItemState::as_str),
        cursor.map(|c| c.created_at),
        cursor.map(|c| c.id).unwrap_or_default(),
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let mut data: Vec<Item> = rows.into_iter().map(Item::from).collect();
    let more = data.len() as i64 > limit;
    data.truncate(limit as usize);
    let next_cursor = more.then(|| data.last()).flatten().map(|i| {
        Cursor {
            created_at: i.created_at,
            id: i.id,
        }
        .encode()
    });
    Ok(json(StatusCode::OK, &ItemList { data, next_cursor }))
}

/// One item, with its `ETag`.
#[utoipa::path(get, path = "/api/v1/items/{id}", tag = "items",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The item", body = Item, headers(("ETag" = String))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let item = load(
        &state.pool,
        key.key.agency_id,
        key.key.clients.as_deref(),
        id,
    )
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

/// 404 unless the item is the agency's and of a client the key reaches.
async fn reachable(conn: impl PgExecutor<'_>, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let found = sqlx::query_scalar!(
        "SELECT client_id FROM content_items WHERE id = $1 AND agency_id = $2",
        id,
        caller.key.agency_id
    )
    .fetch_optional(conn)
    .await?;
    match found {
        Some(client) if caller.key.reaches(client) => Ok(()),
        _ => Err(ApiError::not_found()),
    }
}

/// The lifecycle's refusal of an approval, as a problem.
fn approve_refused(e: ApproveFailure) -> ApiError {
    match e {
        ApproveFailure::Refused(ApproveError::NotFound) => ApiError::not_found(),
        ApproveFailure::Refused(ApproveError::NoVariant(v)) => {
            ApiError::validation(vec![FieldError::new(
                "variant",
                format!("This item has no variant “{v}”."),
            )])
        }
        ApproveFailure::Refused(e @ ApproveError::WrongState(_)) => {
            ApiError::invalid_state(crate::pages::items::approve_message(&e))
        }
        ApproveFailure::Refused(e) => {
            ApiError::invalid_state(crate::pages::items::approve_message(&e))
        }
        ApproveFailure::Database(e) => e.into(),
    }
}

fn move_refused(e: Failure) -> ApiError {
    match e {
        Failure::Refused(Refusal::NotFound) => ApiError::not_found(),
        Failure::Refused(r) => ApiError::invalid_state(r.to_string()),
        Failure::Database(e) => e.into(),
    }
}

/// Approve an item waiting for review: its posts are scheduled, one per target account.
#[utoipa::path(post, path = "/api/v1/items/{id}/approve", tag = "items",
    request_body(content = Approval, description = "Optional: the body may be empty"),
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    responses(
        (status = 200, description = "Approved; the item as it is now", body = Item, headers(("ETag" = String))),
        (status = 403, description = "The key's role is below reviewer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The item's state (or moderation) does not allow it, or the Idempotency-Key is in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let variant: Option<String> = body.take("variant", "a string");
    if variant.as_deref().is_some_and(|v| !VARIANTS.contains(&v)) {
        body.error("variant", "Expected conservative, balanced or bold.");
    }
    body.finish()?;
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    reachable(&mut *tx, &key, id).await?;
    lifecycle::approve(&mut tx, &key.actor(), agency, id, variant.as_deref())
        .await
        .map_err(approve_refused)?;
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

/// Reject an item waiting for review, with the reason.
#[utoipa::path(post, path = "/api/v1/items/{id}/reject", tag = "items",
    request_body = Rejection,
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    responses(
        (status = 200, description = "Rejected; the item as it is now", body = Item, headers(("ETag" = String))),
        (status = 403, description = "The key's role is below reviewer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The item's state does not allow it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let reason: Option<String> = body.take("reason", "a string");
    let reason = reason
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if reason.is_empty() {
        body.error(
            "reason",
            "Say why it is rejected: the reason is kept with the item.",
        );
    } else if reason.chars().count() > 2000 {
        body.error("reason", "Use at most 2000 characters.");
    } else if reason.contains('\0') {
        body.error("reason", "The reason cannot contain a NUL character.");
    }
    body.finish()?;
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    reachable(&mut *tx, &key, id).await?;
    lifecycle::reject(&mut tx, &key.actor(), agency, id, &reason)
        .await
        .map_err(move_refused)?;
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}
