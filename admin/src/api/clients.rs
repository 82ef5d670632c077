//! `/api/v1/clients`: list, create, read, update (pause and resume by `status`). Writes go
//! through `autosocial_core::clients`, the same functions as the console's client pages, with
//! the key as the audited actor. Every query is scoped by the key's agency and client limit:
//! anything else is a 404.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::clients::{self, ClientError, NAME_TAKEN, RawClient};
use autosocial_core::domain::ClientStatus;

use super::auth::{AdminKey, ViewerKey};
use super::doc::{ClientStatusValue, ReadErrors, ReschedulePolicy, Timezone, WriteErrors};
use super::input::{
    Cursor, IdPath, JsonBody, QueryParams, check_if_match, etag_of, json, json_with_etag,
};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;
use axum::extract::State;

/// A client of the agency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Client {
    pub id: Uuid,
    pub name: String,
    /// An IANA timezone name: the client's posting times are in it.
    pub timezone: String,
    /// `active`, `paused` (nothing is published; held posts go out on resume) or `archived`.
    #[schema(value_type = ClientStatusValue)]
    pub status: ClientStatus,
    /// Generated posts are approved without review.
    pub auto_approve: bool,
    /// `manual` or `next_free_slot`: what happens to a post a platform refused for good.
    #[schema(value_type = ReschedulePolicy)]
    pub reschedule_policy: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of clients, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub data: Vec<Client>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A new client. `name` and `timezone` are required.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Unique in the agency; no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        example = "Bakery Schmidt"
    )]
    pub name: String,
    #[schema(value_type = Timezone, example = "Europe/Berlin")]
    pub timezone: String,
    /// `active` (default), `paused` or `archived`.
    #[schema(value_type = Option<ClientStatusValue>)]
    pub status: Option<String>,
    pub auto_approve: Option<bool>,
    /// `manual` (default) or `next_free_slot`.
    #[schema(value_type = Option<ReschedulePolicy>)]
    pub reschedule_policy: Option<String>,
}

/// The fields to change; the others keep their values. `status` pauses (`paused`), resumes
/// (`active`) or archives (`archived`) the client.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    #[schema(value_type = Option<Timezone>)]
    pub timezone: Option<String>,
    #[schema(value_type = Option<ClientStatusValue>)]
    pub status: Option<String>,
    pub auto_approve: Option<bool>,
    #[schema(value_type = Option<ReschedulePolicy>)]
    pub reschedule_policy: Option<String>,
}

/// One client of the key's agency that the key reaches (`scope`: the key's client limit).
async fn load(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    scope: Option<&[Uuid]>,
    id: Uuid,
) -> sqlx::Result<Option<Client>> {
    sqlx::query_as!(
        Client,
        r#"SELECT id, name, timezone, status AS "status: ClientStatus", auto_approve, reschedule_policy, created_at, updated_at
           FROM clients WHERE id = $1 AND agency_id = $2 AND ($3::uuid[] IS NULL OR id = ANY($3))"#,
        id,
        agency,
        scope
    )
    .fetch_optional(conn)
    .await
}

fn name_taken() -> ApiError {
    ApiError::validation(vec![FieldError::new("name", NAME_TAKEN)])
}

fn refused(e: ClientError) -> ApiError {
    match e {
        ClientError::NotFound => ApiError::not_found(),
        ClientError::NameTaken => name_taken(),
        ClientError::Database(e) => e.into(),
    }
}

fn field_errors(errors: clients::FieldErrors) -> ApiError {
    ApiError::validation(
        errors
            .into_iter()
            .map(|(f, m)| FieldError::new(f, m))
            .collect(),
    )
}

/// List the clients the key reaches, newest first.
#[utoipa::path(get, path = "/api/v1/clients", operation_id = "list_clients", tag = "clients",
    params(
        ("status" = Option<ClientStatusValue>, Query, description = "Only clients in this status: active, paused or archived"),
        ("limit" = Option<i64>, Query, description = "1 to 100 (default 50)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page", min_length = 1),
    ),
    responses(
        (status = 200, description = "A page of clients", body = ClientList),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&["status", "limit", "cursor"])?;
    let limit = q.limit(50, 100)?;
    let cursor = Cursor::from_query(&q)?;
    let status = q
        .get("status")
        .map(|s| {
            s.parse::<ClientStatus>().map_err(|_| {
                ApiError::malformed_field("status", "Expected active, paused or archived.")
            })
        })
        .transpose()?;
    let rows = sqlx::query_as!(
        Client,
        r#"SELECT id, name, timezone, status AS "status: ClientStatus", auto_approve, reschedule_policy, created_at, updated_at
           FROM clients
           WHERE agency_id = $1 AND ($2::uuid[] IS NULL OR id = ANY($2))
             AND ($3::text IS NULL OR status = $3)
             AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
           ORDER BY created_at DESC, id DESC
           LIMIT $6"#,
        key.key.agency_id,
        key.key.clients.as_deref(),
        status.map(ClientStatus::as_str),
        cursor.map(|c| c.created_at),
        cursor.map(|c| c.id).unwrap_or_default(),
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let (data, next_cursor) = Cursor::page(rows, limit, |c| Cursor {
        created_at: c.created_at,
        id: c.id,
    });
    Ok(json(StatusCode::OK, &ClientList { data, next_cursor }))
}

/// Create a client (admin keys reaching every client).
#[utoipa::path(post, path = "/api/v1/clients", operation_id = "create_client", tag = "clients",
    request_body = NewClient,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 201, description = "Created", body = Client, headers(("Location" = String), ("ETag" = String))),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    key: AdminKey,
    mut body: JsonBody,
) -> ApiResult<Response> {
    if key.key.clients.is_some() {
        return Err(ApiError::forbidden(
            "This key is limited to some clients, so it cannot create clients.",
        ));
    }
    let name: Option<String> = body.take("name", "a string");
    let timezone: Option<String> = body.take("timezone", "a string");
    let status: Option<String> = body.take("status", "a string");
    let auto_approve: Option<bool> = body.take("auto_approve", "true or false");
    let policy: Option<String> = body.take("reschedule_policy", "a string");
    let mut errors = match body.finish() {
        Ok(()) => Vec::new(),
        Err(e) => e.errors,
    };
    let raw = RawClient {
        name: name.as_deref().unwrap_or_default(),
        timezone: timezone.as_deref().unwrap_or_default(),
        status: status.as_deref(),
        auto_approve: auto_approve.unwrap_or(false),
        reschedule_policy: policy.as_deref(),
    };
    let v = match raw.validate() {
        Ok(v) => Some(v),
        Err(fields) => {
            // a field of the wrong type has its message already
            for (f, m) in fields {
                if !errors.iter().any(|e| e.field == f) {
                    errors.push(FieldError::new(f, m));
                }
            }
            None
        }
    };
    let v = match v {
        Some(v) if errors.is_empty() => v,
        _ => return Err(ApiError::validation(errors)),
    };
    let mut tx = state.pool.begin().await?;
    let id = clients::create(&mut tx, &key.actor(), key.key.agency_id, &v)
        .await
        .map_err(refused)?;
    let client = load(&mut *tx, key.key.agency_id, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    let mut r = json_with_etag(StatusCode::CREATED, &client);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/clients/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// One client, with its `ETag`.
#[utoipa::path(get, path = "/api/v1/clients/{id}", operation_id = "get_client", tag = "clients",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The client", body = Client, headers(("ETag" = String))),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let client = load(
        &state.pool,
        key.key.agency_id,
        key.key.clients.as_deref(),
        id,
    )
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &client))
}

/// Change some of a client's fields. With `If-Match`, only while the client is still the
/// version named (412 otherwise).
#[utoipa::path(patch, path = "/api/v1/clients/{id}", operation_id = "update_client", tag = "clients",
    request_body(content = Option<ClientPatch>, description = "The fields to change; an empty body changes nothing"),
    params(("id" = Uuid, Path),
           ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "The client as changed", body = Client, headers(("ETag" = String))),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The client changed since the ETag", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    headers: HeaderMap,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    // the client is locked until the change commits, so If-Match compares with what is changed
    sqlx::query!(
        "SELECT id FROM clients WHERE id = $1 AND agency_id = $2 FOR UPDATE",
        id,
        agency
    )
    .fetch_optional(&mut *tx)
    .await?;
    let current = load(&mut *tx, agency, key.key.clients.as_deref(), id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let name: Option<String> = body.take("name", "a string");
    let timezone: Option<String> = body.take("timezone", "a string");
    let status: Option<String> = body.take("status", "a string");
    let auto_approve: Option<bool> = body.take("auto_approve", "true or false");
    let policy: Option<String> = body.take("reschedule_policy", "a string");
    let mut errors = match body.finish() {
        Ok(()) => Vec::new(),
        Err(e) => e.errors,
    };
    let raw = RawClient {
        name: name.as_deref().unwrap_or(&current.name),
        timezone: timezone.as_deref().unwrap_or(&current.timezone),
        status: Some(status.as_deref().unwrap_or(current.status.as_str())),
        auto_approve: auto_approve.unwrap_or(current.auto_approve),
        reschedule_policy: Some(policy.as_deref().unwrap_or(&current.reschedule_policy)),
    };
    let v = match raw.validate() {
        Ok(v) if errors.is_empty() => v,
        Ok(_) => return Err(ApiError::validation(errors)),
        Err(fields) => {
            if errors.is_empty() {
                return Err(field_errors(fields));
            }
            for (f, m) in fields {
                if !errors.iter().any(|e| e.field == f) {
                    errors.push(FieldError::new(f, m));
                }
            }
            return Err(ApiError::validation(errors));
        }
    };
    // a request that is wrong in itself says so whatever its precondition (RFC 9110 13.2.1)
    check_if_match(&headers, &etag_of(&current))?;
    let actor = key.actor();
    let others_changed = v.name != current.name
        || v.timezone.name() != current.timezone
        || v.auto_approve != current.auto_approve
        || v.reschedule_policy != current.reschedule_policy;
    if others_changed {
        // a change of status rides along, with the same effect as pausing or resuming
        clients::update(&mut tx, &actor, agency, id, &v)
            .await
            .map_err(refused)?;
    } else if v.status != current.status {
        // only the status: the console's pause / resume / archive
        clients::set_status(&mut tx, &actor, agency, id, v.status)
            .await
            .map_err(refused)?;
    }
    let client = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &client))
}

/// Pause or resume: the console's buttons, through `clients::set_status`.
async fn set_status(
    state: &AppState,
    key: &AdminKey,
    id: Uuid,
    body: JsonBody,
    status: ClientStatus,
) -> ApiResult<Response> {
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    load(&mut *tx, agency, key.key.clients.as_deref(), id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // actions take no fields: anything sent is named as unknown
    body.finish()?;
    // as the console's buttons do: the move and its audit entry every time
    clients::set_status(&mut tx, &key.actor(), agency, id, status)
        .await
        .map_err(refused)?;
    let client = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &client))
}

/// Pause a client: nothing of it is published until it is resumed (its posts are held, not
/// lost).
#[utoipa::path(post, path = "/api/v1/clients/{id}/pause", operation_id = "pause_client", tag = "clients",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Paused; the client as it is now", body = Client, headers(("ETag" = String))),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    set_status(&state, &key, id, body, ClientStatus::Paused).await
}

/// Resume a paused (or archived) client: posts held while it was paused go out again
/// (past-due ones now).
#[utoipa::path(post, path = "/api/v1/clients/{id}/resume", operation_id = "resume_client", tag = "clients",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Active; the client as it is now", body = Client, headers(("ETag" = String))),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    set_status(&state, &key, id, body, ClientStatus::Active).await
}
