//! `/api/v1/kill-switches`: the switches that concern the key's agency (its own and the
//! deployment-wide ones), and engage / disengage for the scopes an agency's admin has in the
//! console: the agency, a client, a platform for the agency, an account. Both go through
//! `autosocial_core::killswitch` (engaging returns once no worker will start a new platform
//! request for the scope). Deployment-wide switches (global, a platform for every agency) belong
//! to the deployment's operator, which no key is: a key may see that one is engaged and why,
//! never engage or disengage one (403, as in the console). A key limited to some clients sees
//! and switches only those clients and their accounts.

use std::str::FromStr;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::authority::Authority;
use autosocial_core::domain::{KillSwitchScope, Platform};
use autosocial_core::killswitch::{self, SwitchError, Target};

use super::auth::{AdminKey, Caller, ViewerKey};
use super::doc::{KillSwitchScopeValue, PlatformValue, ReadErrors, SwitchScopeValue, WriteErrors};
use super::input::{IdPath, JsonBody, json, json_with_etag};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;
use crate::pages::switches::SWITCH_VALIDITY;

/// A kill switch: while engaged, nothing it covers is published (posts are held, not lost).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KillSwitch {
    pub id: Uuid,
    /// `global`, `agency`, `client`, `platform` or `account`.
    #[schema(value_type = KillSwitchScopeValue)]
    pub scope: KillSwitchScope,
    /// Reaches beyond the agency (global, or a platform for every agency): the deployment's
    /// operator's, shown so the agency knows why nothing goes out.
    pub deployment_wide: bool,
    pub client_id: Option<Uuid>,
    #[schema(value_type = Option<PlatformValue>)]
    pub platform: Option<Platform>,
    pub account_id: Option<Uuid>,
    pub reason: String,
    pub engaged_at: DateTime<Utc>,
    /// Absent while engaged.
    pub disengaged_at: Option<DateTime<Utc>>,
}

/// The switches engaged now.
#[derive(Debug, Serialize, ToSchema)]
pub struct KillSwitchList {
    pub data: Vec<KillSwitch>,
}

/// What to stop, and why.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Engage {
    /// `agency`, `client` (with `client_id`), `platform` (with `platform`: that platform for
    /// the agency) or `account` (with `account_id`).
    #[schema(value_type = SwitchScopeValue)]
    pub scope: String,
    pub client_id: Option<Uuid>,
    #[schema(value_type = Option<PlatformValue>)]
    pub platform: Option<String>,
    pub account_id: Option<Uuid>,
    /// Shown to everyone in the agency.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub reason: String,
}

struct Row {
    id: Uuid,
    scope: KillSwitchScope,
    agency_id: Option<Uuid>,
    client_id: Option<Uuid>,
    platform: Option<Platform>,
    account_id: Option<Uuid>,
    reason: String,
    engaged_at: DateTime<Utc>,
    disengaged_at: Option<DateTime<Utc>>,
}

impl From<Row> for KillSwitch {
    fn from(r: Row) -> KillSwitch {
        KillSwitch {
            id: r.id,
            scope: r.scope,
            deployment_wide: r.agency_id.is_none(),
            client_id: r.client_id,
            platform: r.platform,
            account_id: r.account_id,
            reason: r.reason,
            engaged_at: r.engaged_at,
            disengaged_at: r.disengaged_at,
        }
    }
}

/// One switch the key may see: its agency's (of clients it reaches) or a deployment-wide one.
async fn load(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    scope: Option<&[Uuid]>,
    id: Uuid,
) -> sqlx::Result<Option<Row>> {
    sqlx::query_as!(
        Row,
        r#"SELECT k.id, k.scope AS "scope: KillSwitchScope", k.agency_id, k.client_id,
                  k.platform AS "platform: Platform", k.account_id, k.reason, k.engaged_at, k.disengaged_at
           FROM kill_switches k
           LEFT JOIN social_accounts a ON a.id = k.account_id AND a.agency_id = k.agency_id
           WHERE k.id = $1 AND (k.agency_id = $2 OR (k.agency_id IS NULL AND k.disengaged_at IS NULL))
             AND ($3::uuid[] IS NULL OR ((k.client_id IS NULL OR k.client_id = ANY($3))
                                         AND (k.account_id IS NULL OR a.client_id = ANY($3))))"#,
        id,
        agency,
        scope
    )
    .fetch_optional(conn)
    .await
}

/// The switches engaged now that concern the key's agency, oldest first.
#[utoipa::path(get, path = "/api/v1/kill-switches", operation_id = "list_kill_switches", tag = "kill-switches",
    responses(
        (status = 200, description = "The engaged switches", body = KillSwitchList),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    q: super::input::QueryParams,
) -> ApiResult<Response> {
    q.check(&[])?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT k.id, k.scope AS "scope: KillSwitchScope", k.agency_id, k.client_id,
                  k.platform AS "platform: Platform", k.account_id, k.reason, k.engaged_at, k.disengaged_at
           FROM kill_switches k
           LEFT JOIN social_accounts a ON a.id = k.account_id AND a.agency_id = k.agency_id
           WHERE k.disengaged_at IS NULL AND (k.agency_id = $1 OR k.agency_id IS NULL)
             AND ($2::uuid[] IS NULL OR ((k.client_id IS NULL OR k.client_id = ANY($2))
                                         AND (k.account_id IS NULL OR a.client_id = ANY($2))))
           ORDER BY k.engaged_at, k.id"#,
        key.key.agency_id,
        key.key.clients.as_deref()
    )
    .fetch_all(&state.pool)
    .await?;
    let data = rows.into_iter().map(KillSwitch::from).collect();
    Ok(json(StatusCode::OK, &KillSwitchList { data }))
}

fn limited() -> ApiError {
    ApiError::forbidden(
        "This key is limited to some clients, so it may stop only those clients or their accounts.",
    )
}

/// The target the body names, checked as the console's form checks it. A client or account
/// the key does not reach is a 404. `None`: the fields' errors are noted in `body`.
async fn target(
    state: &AppState,
    caller: &Caller,
    body: &mut JsonBody,
) -> ApiResult<Option<Target>> {
    let scope: Option<String> = body.take("scope", "a string");
    let client: Option<Uuid> = body.take("client_id", "a UUID");
    let platform: Option<String> = body.take("platform", "a string");
    let account: Option<Uuid> = body.take("account_id", "a UUID");
    let agency = caller.key.agency_id;
    // deployment-wide scopes are the operator's, and no key is the operator
    if matches!(scope.as_deref(), Some("global" | "platform_all")) {
        return Err(ApiError::forbidden(
            "Switches for the whole deployment belong to its operator; a key may stop its agency, a client, a platform for the agency or an account.",
        ));
    }
    let platforms: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
    let target = match scope.as_deref() {
        Some("agency") => {
            if caller.key.clients.is_some() {
                return Err(limited());
            }
            Some(Target::Agency(agency))
        }
        Some("client") => match client {
            Some(client) => {
                let ours = sqlx::query_scalar!(
                    r#"SELECT true AS "ours!" FROM clients WHERE id = $1 AND agency_id = $2"#,
                    client,
                    agency
                )
                .fetch_optional(&state.pool)
                .await?;
                if ours.is_none() || !caller.key.reaches(client) {
                    return Err(ApiError::not_found());
                }
                Some(Target::Client { agency, client })
            }
            None => {
                body.error("client_id", "Name the client to stop.");
                None
            }
        },
        Some("platform") => {
            if caller.key.clients.is_some() {
                return Err(limited());
            }
            match platform.as_deref().map(Platform::from_str) {
                Some(Ok(platform)) => Some(Target::Platform {
                    agency: Some(agency),
                    platform,
                }),
                _ => {
                    body.error(
                        "platform",
                        format!("Name the platform to stop: {}.", platforms.join(", ")),
                    );
                    None
                }
            }
        }
        Some("account") => match account {
            Some(account) => {
                let client = sqlx::query_scalar!(
                    "SELECT client_id FROM social_accounts WHERE id = $1 AND agency_id = $2",
                    account,
                    agency
                )
                .fetch_optional(&state.pool)
                .await?;
                if !client.is_some_and(|c| caller.key.reaches(c)) {
                    return Err(ApiError::not_found());
                }
                Some(Target::Account { agency, account })
            }
            None => {
                body.error("account_id", "Name the account to stop.");
                None
            }
        },
        _ => {
            body.error(
                "scope",
                "Choose what to stop: agency, client, platform or account.",
            );
            None
        }
    };
    // fields that do not belong to the scope are refused rather than ignored
    let scope = scope.unwrap_or_default();
    if client.is_some() && scope != "client" {
        body.error("client_id", "Only a client switch names a client.");
    }
    if platform.is_some() && scope != "platform" {
        body.error("platform", "Only a platform switch names a platform.");
    }
    if account.is_some() && scope != "account" {
        body.error("account_id", "Only an account switch names an account.");
    }
    match target {
        Some(t) if !Authority::Agency(agency).may_switch(&t) => {
            Err(ApiError::forbidden("Not allowed for this key."))
        }
        t => Ok(t),
    }
}

/// One switch: the agency's (engaged or not), or a deployment-wide one while engaged.
#[utoipa::path(get, path = "/api/v1/kill-switches/{id}", operation_id = "get_kill_switch", tag = "kill-switches",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The switch", body = KillSwitch, headers(("ETag" = String))),
        (status = 404, description = "No such switch for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let row = load(
        &state.pool,
        key.key.agency_id,
        key.key.clients.as_deref(),
        id,
    )
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &KillSwitch::from(row)))
}

/// Engage a kill switch: once this returns, no new publish request for the scope leaves any
/// worker; what it covers is held until it is disengaged.
#[utoipa::path(post, path = "/api/v1/kill-switches", operation_id = "engage_kill_switch", tag = "kill-switches",
    request_body = Engage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 201, description = "Engaged", body = KillSwitch, headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such client or account for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn engage(
    State(state): State<AppState>,
    key: AdminKey,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let reason: Option<String> = body.take("reason", "a string");
    let reason = reason.unwrap_or_default().trim().to_owned();
    if reason.is_empty() {
        body.error("reason", "Give a reason: it is shown to everyone.");
    } else if reason.chars().count() > 2000 {
        body.error("reason", "Use at most 2000 characters.");
    } else if reason.contains('\0') {
        body.error("reason", "The reason cannot contain a NUL character.");
    }
    let target = target(&state, &key, &mut body).await?;
    body.finish()?;
    let Some(target) = target else {
        return Err(ApiError::validation(vec![FieldError::new(
            "scope",
            "Choose what to stop: agency, client, platform or account.",
        )]));
    };
    let engaged = killswitch::engage(
        &state.pool,
        Some(&state.redis),
        *SWITCH_VALIDITY,
        &key.actor(),
        target,
        &reason,
    )
    .await;
    let id = match engaged {
        Ok(id) => id,
        Err(SwitchError::AlreadyEngaged) => {
            return Err(ApiError::invalid_state(
                "A switch is already engaged for exactly this target.",
            ));
        }
        Err(SwitchError::NoReason) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "reason",
                "Give a reason.",
            )]));
        }
        Err(SwitchError::NotEngaged) => return Err(ApiError::not_found()),
        Err(SwitchError::Database(e)) => return Err(e.into()),
    };
    tracing::info!(switch = %id, scope = ?target, key = %key.key.id, "kill switch engaged through the API");
    // the dashboard counts engaged switches
    state.live.touch(None);
    let row = load(&state.pool, key.key.agency_id, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut r = json_with_etag(StatusCode::CREATED, &KillSwitch::from(row));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/kill-switches/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// Disengage a switch of the agency: what it held goes out again (past-due posts now).
/// Disengaging a switch that was disengaged meanwhile answers it as it is.
#[utoipa::path(post, path = "/api/v1/kill-switches/{id}/disengage", operation_id = "disengage_kill_switch", tag = "kill-switches",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Disengaged; the switch as it is now", body = KillSwitch, headers(("ETag" = String))),
        (status = 404, description = "No such switch for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn disengage(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    body: JsonBody,
) -> ApiResult<Response> {
    let agency = key.key.agency_id;
    let scope = key.key.clients.as_deref();
    let row = load(&state.pool, agency, scope, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    body.finish()?;
    if !Authority::Agency(agency).may_disengage(row.agency_id) {
        return Err(ApiError::forbidden(
            "This switch is the deployment operator's: only they may disengage it.",
        ));
    }
    if scope.is_some() && row.client_id.is_none() && row.account_id.is_none() {
        return Err(limited());
    }
    if row.disengaged_at.is_none() {
        match killswitch::disengage(&state.pool, Some(&state.redis), &key.actor(), id).await {
            Ok(released) => {
                tracing::info!(switch = %id, released, key = %key.key.id, "kill switch disengaged through the API");
                state.live.touch(None);
            }
            // disengaged by someone else a moment ago
            Err(SwitchError::NotEngaged) => {}
            Err(SwitchError::Database(e)) => return Err(e.into()),
            Err(e) => return Err(anyhow::Error::from(e).into()),
        }
    }
    let row = load(&state.pool, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &KillSwitch::from(row)))
}
