//! `/api/v1/publications`: the posts an approved item makes, one per target account, with their
//! state, the platform's post id and URL once out, the last error and the attempts. Read only:
//! their moves belong to the lifecycle and the publish jobs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::domain::{Platform, PublicationState};

use super::auth::ViewerKey;
use super::doc::{PlatformValue, PublicationStateValue, ReadErrors};
use super::input::{Cursor, IdPath, QueryParams, json, json_with_etag};
use super::problem::{ApiError, ApiResult, Problem};
use crate::app::AppState;

/// One post of an item on one account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Publication {
    pub id: Uuid,
    pub item_id: Uuid,
    pub client_id: Uuid,
    pub account_id: Uuid,
    #[schema(value_type = PlatformValue)]
    pub platform: Platform,
    /// scheduled, held, publishing, published, failed, cancelled or needs_attention.
    #[schema(value_type = PublicationStateValue)]
    pub state: PublicationState,
    pub scheduled_at: DateTime<Utc>,
    /// The platform's id of the post, once published.
    pub platform_post_id: Option<String>,
    /// Where the post can be seen, when the platform says.
    pub platform_post_url: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    /// Why it is held (the client paused, the account disconnected, a kill switch).
    pub held_reason: Option<String>,
    /// The last error the platform (or the way there) gave.
    pub last_error: Option<String>,
    /// Attempts to publish so far.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of publications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicationList {
    pub data: Vec<Publication>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// List the publications of the clients the key reaches, newest first.
#[utoipa::path(get, path = "/api/v1/publications", operation_id = "list_publications", tag = "publications",
    params(
        ("client" = Option<Uuid>, Query, description = "Only this client's publications"),
        ("account" = Option<Uuid>, Query, description = "Only this account's publications"),
        ("item" = Option<Uuid>, Query, description = "Only this item's publications"),
        ("state" = Option<PublicationStateValue>, Query, description = "Only publications in this state, e.g. failed"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Only publications scheduled at or after this RFC 3339 date-time"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Only publications scheduled before this RFC 3339 date-time"),
        ("limit" = Option<i64>, Query, description = "1 to 100 (default 50)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page", min_length = 1),
    ),
    responses(
        (status = 200, description = "A page of publications", body = PublicationList),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&[
        "client", "account", "item", "state", "from", "to", "limit", "cursor",
    ])?;
    let limit = q.limit(50, 100)?;
    let cursor = Cursor::from_query(&q)?;
    let client = q.uuid("client")?;
    let account = q.uuid("account")?;
    let item = q.uuid("item")?;
    let states: Vec<&str> = PublicationState::ALL.iter().map(|s| s.as_str()).collect();
    let pub_state = q.one_of::<PublicationState>("state", &states)?;
    let from = q.time("from")?;
    let to = q.time("to")?;
    let rows = sqlx::query_as!(
        Publication,
        r#"SELECT id, item_id, client_id, account_id, platform AS "platform: Platform", state AS "state: PublicationState",
                  scheduled_at, platform_post_id, platform_post_url, published_at, held_reason, last_error, attempts,
                  created_at, updated_at
           FROM publications
           WHERE agency_id = $1 AND ($2::uuid[] IS NULL OR client_id = ANY($2))
             AND ($3::uuid IS NULL OR client_id = $3)
             AND ($4::uuid IS NULL OR account_id = $4)
             AND ($5::uuid IS NULL OR item_id = $5)
             AND ($6::text IS NULL OR state = $6)
             AND ($7::timestamptz IS NULL OR scheduled_at >= $7)
             AND ($8::timestamptz IS NULL OR scheduled_at < $8)
             AND ($9::timestamptz IS NULL OR (created_at, id) < ($9, $10))
           ORDER BY created_at DESC, id DESC
           LIMIT $11"#,
        key.key.agency_id,
        key.key.clients.as_deref(),
        client,
        account,
        item,
        pub_state.map(PublicationState::as_str),
        from,
        to,
        cursor.map(|c| c.created_at),
        cursor.map(|c| c.id).unwrap_or_default(),
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let (data, next_cursor) = Cursor::page(rows, limit, |p| Cursor {
        created_at: p.created_at,
        id: p.id,
    });
    Ok(json(StatusCode::OK, &PublicationList { data, next_cursor }))
}

/// One publication.
#[utoipa::path(get, path = "/api/v1/publications/{id}", operation_id = "get_publication", tag = "publications",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The publication", body = Publication, headers(("ETag" = String))),
        (status = 404, description = "No such publication for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let p = sqlx::query_as!(
        Publication,
        r#"SELECT id, item_id, client_id, account_id, platform AS "platform: Platform", state AS "state: PublicationState",
                  scheduled_at, platform_post_id, platform_post_url, published_at, held_reason, last_error, attempts,
                  created_at, updated_at
           FROM publications
           WHERE id = $1 AND agency_id = $2 AND ($3::uuid[] IS NULL OR client_id = ANY($3))"#,
        id,
        key.key.agency_id,
        key.key.clients.as_deref()
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &p))
}
