//! Onboarding links through the API: create one for a client (the answer carries its URL, the
//! only time it is ever shown: only its hash is stored), list a client's links, revoke one.
//! Creating and revoking run `autosocial_core::onboarding::{create_audited, revoke_audited}`,
//! as the console's buttons do, with the key as the audited actor.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::onboarding::{self, LinkState};

use super::auth::{AdminKey, Caller, ViewerKey};
use super::doc::{LinkStateValue, ReadErrors, WriteErrors};
use super::input::{IdPath, JsonBody, QueryParams, json, json_with_etag};
use super::problem::{ApiError, ApiResult, Problem};
use crate::app::AppState;

/// An onboarding link (without its URL, which is shown once, when it is created).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnboardingLink {
    pub id: Uuid,
    pub client_id: Uuid,
    /// `active`, `expired`, `revoked` or `used`.
    #[schema(value_type = LinkStateValue)]
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was used or revoked.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A link just created, with the URL to send to the client: shown only in this answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewOnboardingLink {
    #[serde(flatten)]
    pub link: OnboardingLink,
    /// The link to send to the client. It cannot be shown again: only its hash is kept.
    pub url: String,
}

/// A client's links, newest first (the 100 newest).
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingLinkList {
    pub data: Vec<OnboardingLink>,
}

fn state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::Active => "active",
        LinkState::Expired => "expired",
        LinkState::Revoked => "revoked",
        LinkState::Used => "used",
    }
}

/// 404 unless the client is the agency's and the key reaches it.
async fn reachable_client(
    conn: impl PgExecutor<'_>,
    caller: &Caller,
    client: Uuid,
) -> ApiResult<()> {
    let found = sqlx::query_scalar!(
        r#"SELECT true AS "x!" FROM clients WHERE id = $1 AND agency_id = $2"#,
        client,
        caller.key.agency_id
    )
    .fetch_optional(conn)
    .await?;
    if found.is_some() && caller.key.reaches(client) {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// One link of the agency, of a client the key reaches.
async fn load(
    conn: impl PgExecutor<'_>,
    caller: &Caller,
    id: Uuid,
) -> sqlx::Result<Option<OnboardingLink>> {
    let row = sqlx::query!(
        r#"SELECT id, client_id, created_at, expires_at, revoked_at, used_at, (expires_at <= now()) AS "expired!"
           FROM onboarding_links
           WHERE id = $1 AND agency_id = $2 AND ($3::uuid[] IS NULL OR client_id = ANY($3))"#,
        id,
        caller.key.agency_id,
        caller.key.clients.as_deref()
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| OnboardingLink {
        id: r.id,
        client_id: r.client_id,
        state: state_name(if r.used_at.is_some() {
            LinkState::Used
        } else if r.revoked_at.is_some() {
            LinkState::Revoked
        } else if r.expired {
            LinkState::Expired
        } else {
            LinkState::Active
        }),
        created_at: r.created_at,
        expires_at: r.expires_at,
        finished_at: r.used_at.or(r.revoked_at),
    }))
}

/// Create an onboarding link for a client: the client opens it to confirm their timezone and
/// connect their accounts. It expires after the agency's link lifetime (7 days by default).
#[utoipa::path(post, path = "/api/v1/clients/{id}/onboarding-links", operation_id = "create_onboarding_link", tag = "onboarding-links",
    params(("id" = Uuid, Path, description = "The client"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 201, description = "Created; `url` is shown only now", body = NewOnboardingLink, headers(("Location" = String))),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(client): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    reachable_client(&state.pool, &key, client).await?;
    body.finish()?;
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    let link = onboarding::create_audited(&mut tx, &key.actor(), agency, client)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let view = load(&mut *tx, &key, link.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    let base = state.web.public_url.as_str().trim_end_matches('/');
    let created = NewOnboardingLink {
        link: view,
        url: format!("{base}/onboard/{}", link.token),
    };
    // no ETag: the answer holds a secret that no later representation has
    let mut r = json(StatusCode::CREATED, &created);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/onboarding-links/{}", link.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// A client's onboarding links, newest first (their URLs are never shown again).
#[utoipa::path(get, path = "/api/v1/clients/{id}/onboarding-links", operation_id = "list_onboarding_links", tag = "onboarding-links",
    params(("id" = Uuid, Path, description = "The client")),
    responses(
        (status = 200, description = "The client's links", body = OnboardingLinkList),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(client): IdPath,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&[])?;
    reachable_client(&state.pool, &key, client).await?;
    let data = onboarding::list(&state.pool, key.key.agency_id, client)
        .await?
        .into_iter()
        .map(|l| OnboardingLink {
            id: l.id,
            client_id: client,
            state: state_name(l.state),
            created_at: l.created_at,
            expires_at: l.expires_at,
            finished_at: l.finished_at,
        })
        .collect();
    Ok(json(StatusCode::OK, &OnboardingLinkList { data }))
}

/// One onboarding link (without its URL).
#[utoipa::path(get, path = "/api/v1/onboarding-links/{id}", operation_id = "get_onboarding_link", tag = "onboarding-links",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The link", body = OnboardingLink, headers(("ETag" = String))),
        (status = 404, description = "No such link for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let link = load(&state.pool, &key, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &link))
}

/// Revoke an active onboarding link: it opens nothing any more.
#[utoipa::path(post, path = "/api/v1/onboarding-links/{id}/revoke", operation_id = "revoke_onboarding_link", tag = "onboarding-links",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Revoked; the link as it is now", body = OnboardingLink, headers(("ETag" = String))),
        (status = 404, description = "No such link for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    let current = load(&state.pool, &key, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    body.finish()?;
    if current.state != "active" {
        return Err(ApiError::invalid_state(format!(
            "This link is {}; only active links can be revoked.",
            current.state
        )));
    }
    let mut tx = state.pool.begin().await?;
    if onboarding::revoke_audited(&mut tx, &key.actor(), key.key.agency_id, id)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid_state(
            "This link was used or revoked meanwhile.",
        ));
    }
    let link = load(&mut *tx, &key, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &link))
}
