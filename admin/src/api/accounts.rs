//! `/api/v1/accounts`: the clients' connected social accounts with their status and token
//! health (when the token expires, whether the account needs reconnecting, the scopes granted),
//! and `disconnect` (admin keys), which runs `autosocial_core::accounts::disconnect` like the
//! console's button. No token, encrypted or not, is ever part of an answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::domain::{AccountStatus, Platform};

use super::auth::{AdminKey, ViewerKey};
use super::doc::{AccountStatusValue, PlatformValue, ReadErrors, WriteErrors};
use super::input::{Cursor, IdPath, JsonBody, QueryParams, json, json_with_etag};
use super::problem::{ApiError, ApiResult, Problem};
use crate::app::AppState;

/// The health of an account's access token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenHealth {
    /// When the access token expires (absent: it does not expire). It is renewed ahead of time.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, if the platform says.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// The access token's expiry has passed.
    pub expired: bool,
    /// The platform refused the account's grant: the client must connect it again (an
    /// onboarding link lets them).
    pub needs_reconnect: bool,
    /// The permissions the platform granted.
    pub scopes: Vec<String>,
}

/// A connected social account of a client.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Account {
    pub id: Uuid,
    pub client_id: Uuid,
    #[schema(value_type = PlatformValue)]
    pub platform: Platform,
    pub display_name: String,
    /// `user`, `page`, `organization` or `business`.
    pub account_kind: String,
    /// `active`, `needs_reconnect`, `paused` or `disconnected`.
    #[schema(value_type = AccountStatusValue)]
    pub status: AccountStatus,
    /// Why the account is not active, for people.
    pub status_reason: Option<String>,
    pub token: TokenHealth,
    /// Publications waiting to go out on this account.
    pub scheduled_posts: i64,
    /// Publications held (the client paused, the account disconnected or needing a reconnect).
    pub held_posts: i64,
    pub connected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of accounts, in a stable order (by id).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub data: Vec<Account>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

struct Row {
    id: Uuid,
    client_id: Uuid,
    platform: Platform,
    display_name: String,
    account_kind: String,
    status: AccountStatus,
    status_reason: Option<String>,
    token_expires_at: Option<DateTime<Utc>>,
    refresh_expires_at: Option<DateTime<Utc>>,
    last_refreshed_at: Option<DateTime<Utc>>,
    expired: bool,
    scopes: Vec<String>,
    scheduled_posts: i64,
    held_posts: i64,
    connected_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Account {
    fn from(r: Row) -> Account {
        Account {
            id: r.id,
            client_id: r.client_id,
            platform: r.platform,
            display_name: r.display_name,
            account_kind: r.account_kind,
            status: r.status,
            status_reason: r.status_reason,
            token: TokenHealth {
                expires_at: r.token_expires_at,
                refresh_expires_at: r.refresh_expires_at,
                last_refreshed_at: r.last_refreshed_at,
                expired: r.expired,
                needs_reconnect: r.status == AccountStatus::NeedsReconnect,
                scopes: r.scopes,
            },
            scheduled_posts: r.scheduled_posts,
            held_posts: r.held_posts,
            connected_at: r.connected_at,
            updated_at: r.updated_at,
        }
    }
}

/// One account of the key's agency, of a client the key reaches.
pub(super) async fn load(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    scope: Option<&[Uuid]>,
    id: Uuid,
) -> sqlx::Result<Option<Account>> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT a.id, a.client_id, a.platform AS "platform: Platform", a.display_name, a.account_kind,
                  a.status AS "status: AccountStatus", a.status_reason, a.token_expires_at, a.refresh_expires_at,
                  a.last_refreshed_at, coalesce(a.token_expires_at <= now(), false) AS "expired!", a.scopes,
                  (SELECT count(*) FROM publications p WHERE p.account_id = a.id AND p.agency_id = a.agency_id AND p.state = 'scheduled') AS "scheduled_posts!",
                  (SELECT count(*) FROM publications p WHERE p.account_id = a.id AND p.agency_id = a.agency_id AND p.state = 'held') AS "held_posts!",
                  a.connected_at, a.updated_at
           FROM social_accounts a
           WHERE a.id = $1 AND a.agency_id = $2 AND ($3::uuid[] IS NULL OR a.client_id = ANY($3))"#,
        id,
        agency,
        scope
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Account::from))
}

/// List the accounts of the clients the key reaches.
#[utoipa::path(get, path = "/api/v1/accounts", operation_id = "list_accounts", tag = "accounts",
    params(
        ("client" = Option<Uuid>, Query, description = "Only this client's accounts"),
        ("status" = Option<AccountStatusValue>, Query, description = "Only accounts in this status, e.g. needs_reconnect"),
        ("platform" = Option<PlatformValue>, Query, description = "Only accounts on this platform"),
        ("limit" = Option<i64>, Query, description = "1 to 100 (default 50)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page", min_length = 1),
    ),
    responses(
        (status = 200, description = "A page of accounts", body = AccountList),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&["client", "status", "platform", "limit", "cursor"])?;
    let limit = q.limit(50, 100)?;
    let cursor = Cursor::from_query(&q)?;
    let client = q.uuid("client")?;
    let statuses: Vec<&str> = AccountStatus::ALL.iter().map(|s| s.as_str()).collect();
    let status = q.one_of::<AccountStatus>("status", &statuses)?;
    let platforms: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
    let platform = q.one_of::<Platform>("platform", &platforms)?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT a.id, a.client_id, a.platform AS "platform: Platform", a.display_name, a.account_kind,
                  a.status AS "status: AccountStatus", a.status_reason, a.token_expires_at, a.refresh_expires_at,
                  a.last_refreshed_at, coalesce(a.token_expires_at <= now(), false) AS "expired!", a.scopes,
                  (SELECT count(*) FROM publications p WHERE p.account_id = a.id AND p.agency_id = a.agency_id AND p.state = 'scheduled') AS "scheduled_posts!",
                  (SELECT count(*) FROM publications p WHERE p.account_id = a.id AND p.agency_id = a.agency_id AND p.state = 'held') AS "held_posts!",
                  a.connected_at, a.updated_at
           FROM social_accounts a
           WHERE a.agency_id = $1 AND ($2::uuid[] IS NULL OR a.client_id = ANY($2))
             AND ($3::uuid IS NULL OR a.client_id = $3)
             AND ($4::text IS NULL OR a.status = $4)
             AND ($5::text IS NULL OR a.platform = $5)
             AND ($6::uuid IS NULL OR a.id < $6)
           ORDER BY a.id DESC
           LIMIT $7"#,
        key.key.agency_id,
        key.key.clients.as_deref(),
        client,
        status.map(AccountStatus::as_str),
        platform.map(Platform::as_str),
        cursor.map(|c| c.id),
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let data: Vec<Account> = rows.into_iter().map(Account::from).collect();
    // ordered by id alone: the cursor's time is not used
    let (data, next_cursor) = Cursor::page(data, limit, |a| Cursor {
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        id: a.id,
    });
    Ok(json(StatusCode::OK, &AccountList { data, next_cursor }))
}

/// One account, with its token health.
#[utoipa::path(get, path = "/api/v1/accounts/{id}", operation_id = "get_account", tag = "accounts",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The account", body = Account, headers(("ETag" = String))),
        (status = 404, description = "No such account for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let account = load(
        &state.pool,
        key.key.agency_id,
        key.key.clients.as_deref(),
        id,
    )
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &account))
}

/// Disconnect an account: nothing is posted to it any more; its scheduled posts are held (not
/// lost) until the client connects it again. Disconnecting a disconnected account changes
/// nothing.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/disconnect", operation_id = "disconnect_account", tag = "accounts",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Disconnected; the account as it is now", body = Account, headers(("ETag" = String))),
        (status = 404, description = "No such account for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn disconnect(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    let agency = key.key.agency_id;
    let scope = key.key.clients.as_deref();
    // an account the key does not reach is not found, before any field message
    load(&state.pool, agency, scope, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    body.finish()?;
    let mut tx = state.pool.begin().await?;
    let actor = key.actor();
    autosocial_core::accounts::disconnect(
        &mut tx,
        &actor,
        agency,
        None,
        id,
        &format!("through the API by {}", actor.label),
    )
    .await?
    .ok_or_else(ApiError::not_found)?;
    let account = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &account))
}
