//! Content rules through the API: a client's rules (`GET /clients/{id}/rules`), one rule
//! (`GET /rules/{id}`) and changes to it (`PATCH /rules/{id}`), checked by the console's rule
//! form (`pages::rules::RuleForm::validate`: the fields sent are put into the form over the
//! saved values) and saved by its `save_rule` (future planned items the rule no longer wants
//! are cancelled, the client's plan job enqueued, the change audited with the key as actor).
//! `ETag` + `If-Match` guard changes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::content::brand as core_brand;

use super::auth::{AdminKey, Caller, ViewerKey};
use super::doc::{
    ContentTypeValue, IsoWeekday, LocalTime, ReadErrors, RuleFrequencyValue, WriteErrors,
};
use super::input::{IdPath, JsonBody, QueryParams, check_if_match, etag_of, json, json_with_etag};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;
use crate::pages::rules::{RuleForm, RuleRow, accounts_of, rules_of, save_rule};

/// A posting rule: on which days, at which local times (the client's timezone) and how often
/// posts are planned, for which of the client's accounts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rule {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub enabled: bool,
    /// `per_day` or `per_week`.
    pub frequency: String,
    pub posts_per_period: i32,
    /// ISO weekdays, 1 (Monday) to 7 (Sunday).
    pub days_of_week: Vec<i16>,
    /// `HH:MM` in the client's timezone.
    pub local_times: Vec<String>,
    /// Of `text`, `image`, `link`.
    pub content_types: Vec<String>,
    /// The least time between two posts on one account.
    pub min_gap_minutes: i32,
    /// The accounts posts are planned for.
    pub accounts: Vec<Uuid>,
}

/// A client's rules, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub data: Vec<Rule>,
}

/// The rule fields to change; the others keep their values. Lists replace the whole list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// `per_day` or `per_week`.
    #[schema(value_type = Option<RuleFrequencyValue>)]
    pub frequency: Option<String>,
    #[schema(minimum = 1, maximum = 50)]
    pub posts_per_period: Option<u32>,
    /// ISO weekdays: 1 is Monday, 7 is Sunday.
    #[schema(min_items = 1, max_items = 7, value_type = Option<Vec<IsoWeekday>>)]
    pub days_of_week: Option<Vec<u8>>,
    /// `HH:MM` (24-hour), at most 24.
    #[schema(min_items = 1, max_items = 24, value_type = Option<Vec<LocalTime>>)]
    pub local_times: Option<Vec<String>>,
    #[schema(min_items = 1, max_items = 3, value_type = Option<Vec<ContentTypeValue>>)]
    pub content_types: Option<Vec<String>>,
    #[schema(minimum = 0, maximum = 10080)]
    pub min_gap_minutes: Option<u32>,
    /// Accounts of this client.
    pub accounts: Option<Vec<Uuid>>,
}

fn view(client: Uuid, r: RuleRow) -> Rule {
    Rule {
        id: r.id,
        client_id: client,
        name: r.name,
        enabled: r.enabled,
        frequency: r.frequency,
        posts_per_period: r.posts_per_period,
        days_of_week: r.days_of_week,
        local_times: r
            .local_times
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect(),
        content_types: r.content_types,
        min_gap_minutes: r.min_gap_minutes,
        accounts: r.account_ids,
    }
}

/// The console form's field names, as the API names them.
fn api_field(form_field: &str) -> &str {
    match form_field {
        "posts" => "posts_per_period",
        "days" => "days_of_week",
        "times" => "local_times",
        "min_gap" => "min_gap_minutes",
        other => other,
    }
}

/// The client of a rule of the agency that the key reaches.
async fn client_of_rule(state: &AppState, caller: &Caller, rule: Uuid) -> ApiResult<Uuid> {
    let client = sqlx::query_scalar!(
        "SELECT client_id FROM content_rules WHERE id = $1 AND agency_id = $2",
        rule,
        caller.key.agency_id
    )
    .fetch_optional(&state.pool)
    .await?;
    match client {
        Some(c) if caller.key.reaches(c) => Ok(c),
        _ => Err(ApiError::not_found()),
    }
}

async fn client(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<core_brand::Client> {
    if !caller.key.reaches(id) {
        return Err(ApiError::not_found());
    }
    core_brand::client(&state.pool, caller.key.agency_id, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// A client's posting rules.
#[utoipa::path(get, path = "/api/v1/clients/{id}/rules", operation_id = "list_rules", tag = "rules",
    params(("id" = Uuid, Path, description = "The client")),
    responses(
        (status = 200, description = "The client's rules", body = RuleList),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&[])?;
    let c = client(&state, &key, id).await?;
    let data = rules_of(&state, c.agency_id, c.id, None)
        .await?
        .into_iter()
        .map(|r| view(c.id, r))
        .collect();
    Ok(json(StatusCode::OK, &RuleList { data }))
}

/// One rule, with its `ETag`.
#[utoipa::path(get, path = "/api/v1/rules/{id}", operation_id = "get_rule", tag = "rules",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The rule", body = Rule, headers(("ETag" = String))),
        (status = 404, description = "No such rule for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let c = client_of_rule(&state, &key, id).await?;
    let rule = rules_of(&state, key.key.agency_id, c, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &view(c, rule)))
}

/// Change some of a rule's fields. With `If-Match`, only while the rule is still the version
/// named (412 otherwise).
#[utoipa::path(patch, path = "/api/v1/rules/{id}", operation_id = "update_rule", tag = "rules",
    request_body(content = Option<RulePatch>, description = "The fields to change; an empty body changes nothing"),
    params(("id" = Uuid, Path),
           ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "The rule as changed", body = Rule, headers(("ETag" = String))),
        (status = 404, description = "No such rule for this key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The rule changed since the ETag", body = Problem, content_type = "application/problem+json"),
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
    let client_id = client_of_rule(&state, &key, id).await?;
    let c = client(&state, &key, client_id).await?;
    let agency = c.agency_id;
    let mut tx = state.pool.begin().await?;
    // the rule is locked until the change commits, so If-Match compares with what is changed
    sqlx::query!(
        "SELECT id FROM content_rules WHERE id = $1 AND agency_id = $2 FOR UPDATE",
        id,
        agency
    )
    .fetch_optional(&mut *tx)
    .await?;
    let current = rules_of(&state, agency, c.id, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(ApiError::not_found)?;
    let mut form = RuleForm::from_rule(&current);
    if let Some(v) = body.take::<String>("name", "a string") {
        form.name = v;
    }
    if let Some(v) = body.take::<bool>("enabled", "true or false") {
        form.enabled = v;
    }
    if let Some(v) = body.take::<String>("frequency", "per_day or per_week") {
        form.frequency = v;
    }
    if let Some(v) = body.take::<u32>("posts_per_period", "a whole number from 1 to 50") {
        form.posts = v.to_string();
    }
    if let Some(v) = body.take::<Vec<u8>>("days_of_week", "an array of weekdays from 1 to 7") {
        if v.len() > 7 {
            body.error("days_of_week", "At most 7 days, each once.");
        }
        form.days = v.iter().map(u8::to_string).collect();
    }
    if let Some(v) = body.take::<Vec<String>>("local_times", "an array of times like 09:30") {
        if v.iter().any(|t| t.contains([',', ' ', '\n', '\t'])) {
            body.error("local_times", "Give one time like 09:30 per array element.");
        } else if v.len() > 24 {
            body.error("local_times", "At most 24 times a day.");
        }
        form.times = v.join(", ");
    }
    if let Some(v) = body.take::<Vec<String>>("content_types", "an array of text, image, link") {
        if v.len() > 3 {
            body.error("content_types", "At most the 3 content types, each once.");
        }
        form.content_types = v;
    }
    if let Some(v) = body.take::<u32>("min_gap_minutes", "a whole number from 0 to 10080") {
        form.min_gap = v.to_string();
    }
    if let Some(v) = body.take::<Vec<Uuid>>("accounts", "an array of account ids (UUIDs)") {
        form.accounts = v.iter().map(Uuid::to_string).collect();
    }
    let accounts: Vec<Uuid> = accounts_of(&state, agency, c.id)
        .await?
        .iter()
        .map(|a| a.id)
        .collect();
    let valid = form.validate(&accounts);
    if let Err(errors) = &valid {
        for (field, message) in errors {
            body.error(api_field(field), message.clone());
        }
    }
    body.finish()?;
    let Ok(valid) = valid else {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "Some fields are not valid.",
        )]));
    };
    // a request that is wrong in itself says so whatever its precondition (RFC 9110 13.2.1)
    check_if_match(&headers, &etag_of(&view(c.id, current)))?;
    save_rule(&mut tx, &key.actor(), &c, Some(id), &valid).await?;
    tx.commit().await?;
    let rule = rules_of(&state, agency, c.id, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &view(c.id, rule)))
}
