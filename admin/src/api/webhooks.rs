//! `/api/v1/webhooks`: the agency's webhook endpoints (list, create, read, update, delete,
//! rotate the secret, send a test event), their delivery logs and redelivery. Admin keys that
//! reach every client only: an endpoint hears about every client of the agency. Writes go
//! through `autosocial_core::webhooks::endpoints`, the same functions as the console's
//! Settings → Webhooks, with the key as the audited actor; everything is scoped by the key's
//! agency, so another agency's ids are 404.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::webhooks::endpoints::{self, Change, NewEndpoint, RedeliverError};
use autosocial_core::webhooks::{EventType, TEST_EVENT};

use super::auth::AdminKey;
use super::doc::{ReadErrors, WriteErrors};
use super::input::{
    Cursor, IdPath, JsonBody, QueryParams, check_if_match, etag_of, json, json_with_etag,
};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;

/// An event type an endpoint may subscribe to.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum EventTypeValue {
    #[schema(rename = "item.created")]
    ItemCreated,
    #[schema(rename = "item.approved")]
    ItemApproved,
    #[schema(rename = "item.rejected")]
    ItemRejected,
    #[schema(rename = "publication.published")]
    PublicationPublished,
    #[schema(rename = "publication.failed")]
    PublicationFailed,
    #[schema(rename = "publication.needs_attention")]
    PublicationNeedsAttention,
    #[schema(rename = "account.connected")]
    AccountConnected,
    #[schema(rename = "account.needs_reconnecting")]
    AccountNeedsReconnecting,
    #[schema(rename = "killswitch.engaged")]
    KillswitchEngaged,
    #[schema(rename = "killswitch.released")]
    KillswitchReleased,
}

/// A webhook endpoint of the agency. Deliveries are signed per Standard Webhooks
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    #[schema(value_type = Vec<EventTypeValue>)]
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it is disabled: by a person, or automatically after a day of failed attempts.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when every attempt failed (cleared by a success).
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs, after a rotation.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<endpoints::Endpoint> for WebhookEndpoint {
    fn from(e: endpoints::Endpoint) -> WebhookEndpoint {
        WebhookEndpoint {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            disabled_at: e.disabled_at,
            failing_since: e.failing_since,
            previous_secret_expires_at: e.previous_secret_expires_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// The agency's endpoints, newest first (an agency has few; no paging).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpoint>,
}

/// A new endpoint: `url` and `event_types` are required.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    /// `https://` (plain http and private addresses only where the deployment allows them).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[hH][tT][tT][pP][sS]?://[^\\s/?#]+([/?#][^\\s]*)?$",
        example = "https://hooks.example.com/autosocial"
    )]
    pub url: String,
    #[schema(max_length = 300)]
    pub description: Option<String>,
    #[schema(value_type = Vec<EventTypeValue>, min_items = 1)]
    pub event_types: Vec<String>,
}

/// The fields to change; the others keep their values. `enabled: true` also clears an
/// automatic disabling and its failure streak.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[hH][tT][tT][pP][sS]?://[^\\s/?#]+([/?#][^\\s]*)?$"
    )]
    pub url: Option<String>,
    #[schema(max_length = 300)]
    pub description: Option<String>,
    #[schema(value_type = Option<Vec<EventTypeValue>>, min_items = 1)]
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint just created, with its signing secret: shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookEndpoint {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks library). Not shown again.
    pub secret: String,
}

/// A new signing secret, shown only this once; the previous one signs too until
/// `previous_secret_expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// A test event queued for the endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestEvent {
    /// The `webhook-id` the delivery carries.
    pub event_id: Uuid,
    #[schema(example = "webhook.test")]
    pub event_type: String,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The `webhook-id` every attempt carries: receivers dedupe by it.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i16>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i32>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<endpoints::Delivery> for WebhookDelivery {
    fn from(d: endpoints::Delivery) -> WebhookDelivery {
        WebhookDelivery {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at,
            last_duration_ms: d.last_duration_ms,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

/// A page of an endpoint's deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub data: Vec<WebhookDelivery>,
    pub next_cursor: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttempt {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i16>,
    pub duration_ms: i32,
    pub error: Option<String>,
    /// The first KiB of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// The attempts of a delivery, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptList {
    pub data: Vec<WebhookAttempt>,
}

/// Webhooks hear about every client: keys limited to some clients may not manage them.
fn agency_wide(key: &AdminKey) -> ApiResult<Uuid> {
    if key.key.clients.is_some() {
        return Err(ApiError::forbidden(
            "This key is limited to some clients; webhooks tell about every client, so they need a key that reaches all of them.",
        ));
    }
    Ok(key.key.agency_id)
}

fn policy(state: &AppState) -> autosocial_core::net_guard::Policy {
    state.web.outbound.into()
}

/// Read `url`, `description` and `event_types` from a body; every error is noted in the body.
struct Fields {
    url: Option<url::Url>,
    description: Option<String>,
    events: Option<Vec<EventType>>,
}

fn read_fields(state: &AppState, body: &mut JsonBody, required: bool) -> Fields {
    let url: Option<String> = body.take("url", "a string");
    let description: Option<String> = body.take("description", "a string");
    let events: Option<Vec<String>> = body.take("event_types", "an array of event type names");
    let mut out = Fields {
        url: None,
        description: None,
        events: None,
    };
    match url {
        Some(u) => match endpoints::check_url(&u, policy(state)) {
            Ok(u) => out.url = Some(u),
            Err(m) => body.error("url", m),
        },
        None if required => body.error("url", "Give the endpoint's URL."),
        None => {}
    }
    if let Some(d) = description {
        match endpoints::check_description(&d) {
            Ok(d) => out.description = Some(d),
            Err(m) => body.error("description", m),
        }
    }
    match events {
        Some(e) => match endpoints::check_events(&e) {
            Ok(e) => out.events = Some(e),
            Err(m) => body.error("event_types", m),
        },
        None if required => body.error("event_types", "Choose at least one event type."),
        None => {}
    }
    out
}

async fn load(state: &AppState, agency: Uuid, id: Uuid) -> ApiResult<WebhookEndpoint> {
    endpoints::get(&state.pool, agency, id)
        .await?
        .map(WebhookEndpoint::from)
        .ok_or_else(ApiError::not_found)
}

/// List the agency's webhook endpoints.
#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = WebhookEndpointList),
        (status = 403, description = "Not an admin key reaching every client", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: AdminKey,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&[])?;
    let agency = agency_wide(&key)?;
    let data = endpoints::list(&state.pool, agency)
        .await?
        .into_iter()
        .map(WebhookEndpoint::from)
        .collect();
    Ok(json(StatusCode::OK, &WebhookEndpointList { data }))
}

/// Create an endpoint; the answer carries its signing secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    request_body = NewWebhookEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 201, description = "Created", body = CreatedWebhookEndpoint, headers(("Location" = String))),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    key: AdminKey,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let agency = agency_wide(&key)?;
    let f = read_fields(&state, &mut body, true);
    body.finish()?;
    let (Some(url), Some(events)) = (f.url, f.events) else {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "Give `url` and `event_types`.",
        )]));
    };
    let mut tx = state.pool.begin().await?;
    let created = endpoints::create(
        &mut tx,
        &state.vault,
        &key.actor(),
        agency,
        &NewEndpoint {
            url: &url,
            description: f.description.as_deref().unwrap_or_default(),
            events: &events,
        },
    )
    .await?;
    let endpoint = endpoints::get(&mut *tx, agency, created.id)
        .await?
        .map(WebhookEndpoint::from)
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    let mut r = json(
        StatusCode::CREATED,
        &CreatedWebhookEndpoint {
            endpoint,
            secret: created.secret,
        },
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/webhooks/{}", created.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// One endpoint, with its `ETag`.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpoint, headers(("ETag" = String))),
        (status = 403, description = "Not an admin key reaching every client", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let agency = agency_wide(&key)?;
    Ok(json_with_etag(
        StatusCode::OK,
        &load(&state, agency, id).await?,
    ))
}

/// Change an endpoint. With `If-Match`, only while it is still the version named (412
/// otherwise).
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    request_body(content = Option<WebhookEndpointPatch>, description = "The fields to change; an empty body changes nothing"),
    params(("id" = Uuid, Path),
           ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookEndpoint, headers(("ETag" = String))),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The endpoint changed since the ETag", body = Problem, content_type = "application/problem+json"),
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
    let agency = agency_wide(&key)?;
    let f = read_fields(&state, &mut body, false);
    let enabled: Option<bool> = body.take("enabled", "true or false");
    body.finish()?;
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "SELECT id FROM webhook_endpoints WHERE id = $1 AND agency_id = $2 FOR UPDATE",
        id,
        agency
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(ApiError::not_found)?;
    let current = endpoints::get(&mut *tx, agency, id)
        .await?
        .map(WebhookEndpoint::from)
        .ok_or_else(ApiError::not_found)?;
    check_if_match(&headers, &etag_of(&current))?;
    let change = Change {
        url: f.url.as_ref(),
        description: f.description.as_deref(),
        events: f.events.as_deref(),
        enabled,
    };
    endpoints::update(&mut tx, &key.actor(), agency, id, &change).await?;
    let endpoint = endpoints::get(&mut *tx, agency, id)
        .await?
        .map(WebhookEndpoint::from)
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &endpoint))
}

/// Delete an endpoint with its secrets and delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin key reaching every client", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let agency = agency_wide(&key)?;
    let mut tx = state.pool.begin().await?;
    if !endpoints::delete(&mut tx, &key.actor(), agency, id).await? {
        return Err(ApiError::not_found());
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Rotate the signing secret: the new one is shown only this once; the previous one keeps
/// signing (a second signature) for 24 hours.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "The new secret", body = RotatedSecret),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    let agency = agency_wide(&key)?;
    body.finish()?;
    let mut tx = state.pool.begin().await?;
    let secret = endpoints::rotate(&mut tx, &state.vault, &key.actor(), agency, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let endpoint = endpoints::get(&mut *tx, agency, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    let mut r = json(
        StatusCode::OK,
        &RotatedSecret {
            secret,
            previous_secret_expires_at: endpoint.previous_secret_expires_at,
        },
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Queue a `webhook.test` event to the endpoint, whatever it subscribes to.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "webhooks",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 202, description = "Queued", body = TestEvent),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn test(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    let agency = agency_wide(&key)?;
    body.finish()?;
    let current = load(&state, agency, id).await?;
    if !current.enabled {
        return Err(ApiError::invalid_state(
            "The endpoint is disabled: enable it before sending a test event.",
        ));
    }
    let mut tx = state.pool.begin().await?;
    let event = endpoints::send_test(&mut tx, &key.actor(), agency, id)
        .await?
        .ok_or_else(|| ApiError::invalid_state("The endpoint is disabled."))?;
    tx.commit().await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &TestEvent {
            event_id: event,
            event_type: TEST_EVENT.into(),
        },
    ))
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    params(("id" = Uuid, Path),
        ("limit" = Option<i64>, Query, description = "1 to 100 (default 50)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page", min_length = 1),
    ),
    responses(
        (status = 200, description = "A page of deliveries", body = WebhookDeliveryList),
        (status = 403, description = "Not an admin key reaching every client", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&["limit", "cursor"])?;
    let agency = agency_wide(&key)?;
    let limit = q.limit(50, 100)?;
    let cursor = Cursor::from_query(&q)?;
    load(&state, agency, id).await?;
    let rows = endpoints::deliveries(
        &state.pool,
        agency,
        id,
        cursor.map(|c| (c.created_at, c.id)),
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = Cursor::page(rows, limit, |d| Cursor {
        created_at: d.created_at,
        id: d.id,
    });
    let data = rows.into_iter().map(WebhookDelivery::from).collect();
    Ok(json(
        StatusCode::OK,
        &WebhookDeliveryList { data, next_cursor },
    ))
}

/// The attempts of a delivery: status, duration, error, the first KiB of each answer.
#[utoipa::path(get, path = "/api/v1/webhook-deliveries/{id}/attempts", operation_id = "list_webhook_attempts", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The attempts", body = WebhookAttemptList),
        (status = 403, description = "Not an admin key reaching every client", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn attempts(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let agency = agency_wide(&key)?;
    if endpoints::delivery(&state.pool, agency, id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found());
    }
    let data = endpoints::attempts(&state.pool, agency, id)
        .await?
        .into_iter()
        .map(|a| WebhookAttempt {
            attempt: a.attempt,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            error: a.error,
            response_excerpt: a.response_excerpt,
        })
        .collect();
    Ok(json(StatusCode::OK, &WebhookAttemptList { data }))
}

/// Send a delivery again: the same event and `webhook-id`, through the queue.
#[utoipa::path(post, path = "/api/v1/webhook-deliveries/{id}/redeliver", operation_id = "redeliver_webhook", tag = "webhooks",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 202, description = "Queued again", body = WebhookDelivery),
        (status = 404, description = "No such delivery for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    let agency = agency_wide(&key)?;
    body.finish()?;
    let mut tx = state.pool.begin().await?;
    match endpoints::redeliver(&mut tx, &key.actor(), agency, id).await {
        Ok(()) => {}
        Err(RedeliverError::NotFound) => return Err(ApiError::not_found()),
        Err(RedeliverError::Disabled) => {
            return Err(ApiError::invalid_state(
                "The endpoint is disabled: enable it before redelivering.",
            ));
        }
        Err(RedeliverError::Database(e)) => return Err(e.into()),
    }
    let delivery = endpoints::delivery(&mut *tx, agency, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json(StatusCode::ACCEPTED, &WebhookDelivery::from(delivery)))
}

/// This resource's routes, merged into [`super::router`].
pub fn routes(s: &AppState) -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/api/v1/webhooks",
            super::guarded(s, get(list).post(create)),
        )
        .route(
            "/api/v1/webhooks/{id}",
            super::guarded(s, get(show).patch(update).delete(delete)),
        )
        .route(
            "/api/v1/webhooks/{id}/rotate-secret",
            super::guarded(s, post(rotate)),
        )
        .route("/api/v1/webhooks/{id}/test", super::guarded(s, post(test)))
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            super::guarded(s, get(deliveries)),
        )
        .route(
            "/api/v1/webhook-deliveries/{id}/attempts",
            super::guarded(s, get(attempts)),
        )
        .route(
            "/api/v1/webhook-deliveries/{id}/redeliver",
            super::guarded(s, post(redeliver)),
        )
}
