//! The agency's clients: list (search, status filter, keyset pagination), create, edit, pause,
//! resume, archive. Every query is scoped by the session's agency; another agency's id is a 404.

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::clients::{self, ClientError, ClientFields, NAME_TAKEN, RawClient};
use autosocial_core::domain::ClientStatus;

use crate::app::AppState;
use crate::auth::{AdminRole, CurrentUser, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path, Query};
use crate::pages::layout::{Htmx, Nav, respond};
use crate::pages::{format_in_zone, relative};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    /// Keyset cursor: the last row of the previous page, `lower(name)` and id.
    after_name: Option<String>,
    after_id: Option<Uuid>,
}

struct ClientRow {
    id: Uuid,
    name: String,
    status: ClientStatus,
    timezone: String,
    auto_approve: bool,
    lower_name: String,
}

pub async fn list(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let search = q.q.trim();
    // "" = everything but archived; "all" = everything; else one status
    let status_filter = ClientStatus::from_str(&q.status).ok();
    let include_archived = q.status == "all" || status_filter == Some(ClientStatus::Archived);
    let pattern = format!(
        "%{}%",
        search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = sqlx::query_as!(
        ClientRow,
        r#"SELECT id, name, status AS "status: ClientStatus", timezone, auto_approve, lower(name) AS "lower_name!"
           FROM clients
           WHERE agency_id = $1
             AND ($2 = '' OR name ILIKE $3)
             AND ($4::text IS NULL OR status = $4)
             AND ($5 OR status <> 'archived')
             AND ($6::text IS NULL OR (lower(name), id) > ($6, $7))
           ORDER BY lower(name), id
           LIMIT $8"#,
        user.agency_id,
        search,
        pattern,
        status_filter.map(|s| s.as_str()),
        include_archived,
        q.after_name,
        q.after_id.unwrap_or_else(Uuid::nil),
        PAGE_SIZE + 1,
    )
    .fetch_all(&state.pool)
    .await?;
    let has_more = rows.len() as i64 > PAGE_SIZE;
    let rows = &rows[..rows.len().min(PAGE_SIZE as usize)];
    let next_link = if has_more {
        rows.last().map(|last| {
            let params = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", search)
                .append_pair("status", &q.status)
                .append_pair("after_name", &last.lower_name)
                .append_pair("after_id", &last.id.to_string())
                .finish();
            format!("/clients?{params}")
        })
    } else {
        None
    };
    let can_manage = user.role.allows(autosocial_core::domain::Role::Admin);
    let body = html! {
        h1 { "Clients" }
        form.toolbar method="get" action="/clients" role="search" {
            div.grow {
                label for="q" { "Search by name" }
                input #q type="search" name="q" value=(search);
            }
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" selected[q.status.is_empty()] { "Active and paused" }
                    @for s in ClientStatus::ALL {
                        option value=(s.as_str()) selected[status_filter == Some(*s)] { (s.label()) }
                    }
                    option value="all" selected[q.status == "all"] { "All" }
                }
            }
            button.secondary type="submit" { "Filter" }
            @if can_manage {
                a.button href="/clients/new" { "New client" }
            }
        }
        @if rows.is_empty() {
            p.empty { "No clients match." }
        } @else {
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Timezone" } th scope="col" { "Review" } } }
                tbody {
                    @for c in rows {
                        tr {
                            td { a href={ "/clients/" (c.id) } { (c.name) } }
                            td { (status_badge(c.status)) }
                            td { (c.timezone) }
                            td { @if c.auto_approve { "Auto-approve" } @else { "Manual review" } }
                        }
                    }
                }
            }
        }
        @if let Some(link) = next_link {
            div.actions { a.button.secondary href=(link) rel="next" { "Next page" } }
        }
    };
    Ok(respond(htmx, &user, "Clients", Nav::Clients, body))
}

fn status_badge(s: ClientStatus) -> Markup {
    html! { span class={ "badge " (s.as_str()) } { (s.label()) } }
}

/// The client form's fields, as typed (kept to re-render after a refusal).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct ClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    auto_approve: Option<String>,
    #[serde(default)]
    reschedule_policy: Option<String>,
}

type FieldErrors = autosocial_core::clients::FieldErrors;

impl ClientForm {
    /// The form's fields checked by the one rule for clients (`autosocial_core::clients`).
    fn validate(&self) -> Result<ClientFields, FieldErrors> {
        RawClient {
            name: &self.name,
            timezone: &self.timezone,
            status: self.status.as_deref(),
            auto_approve: self.auto_approve.is_some(),
            reschedule_policy: self.reschedule_policy.as_deref(),
        }
        .validate()
    }
}

fn field_error(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(e) = errors.get(field) {
            p.field-error id={ (field) "-error" } { (e) }
        }
    }
}

fn client_form(
    user: &CurrentUser,
    action: &str,
    f: &ClientForm,
    errors: &FieldErrors,
    editing: bool,
) -> Markup {
    let invalid = |field: &str| {
        if errors.contains_key(field) {
            Some("true")
        } else {
            None
        }
    };
    let described = |field: &str| {
        if errors.contains_key(field) {
            Some(format!("{field}-error"))
        } else {
            None
        }
    };
    let status = f.status.as_deref().unwrap_or("active");
    let policy = f.reschedule_policy.as_deref().unwrap_or("manual");
    html! {
        @if !errors.is_empty() {
            p.alert role="alert" { "Nothing was saved: please correct the fields marked below." }
        }
        form.card method="post" action=(action) novalidate {
            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
            label for="name" { "Name" }
            input #name type="text" name="name" value=(f.name) maxlength="200" required
                aria-invalid=[invalid("name")] aria-describedby=[described("name")];
            (field_error(errors, "name"))
            label for="timezone" { "Timezone" }
            input #timezone type="text" name="timezone" value=(f.timezone) list="timezones" required autocomplete="off"
                aria-invalid=[invalid("timezone")] aria-describedby=[described("timezone")];
            datalist #timezones {
                @for tz in chrono_tz::TZ_VARIANTS.iter() { option value=(tz.name()) {} }
            }
            p.hint { "Schedules run in this zone (IANA name, e.g. Europe/Berlin)." }
            (field_error(errors, "timezone"))
            @if editing {
                label for="status" { "Status" }
                select #status name="status" aria-invalid=[invalid("status")] aria-describedby=[described("status")] {
                    @for s in ClientStatus::ALL {
                        option value=(s.as_str()) selected[status == s.as_str()] { (s.label()) }
                    }
                }
                (field_error(errors, "status"))
            }
            label for="reschedule_policy" { "When a post fails" }
            select #reschedule_policy name="reschedule_policy" {
                option value="manual" selected[policy == "manual"] { "Wait for someone to reschedule it" }
                option value="next_free_slot" selected[policy == "next_free_slot"] { "Move it to the next free slot" }
            }
            (field_error(errors, "reschedule_policy"))
            div.checkbox {
                input #auto_approve type="checkbox" name="auto_approve" value="on" checked[f.auto_approve.is_some()];
                label for="auto_approve" { "Auto-approve generated posts (skip review)" }
            }
            div.actions {
                button type="submit" { @if editing { "Save changes" } @else { "Create client" } }
                a href="/clients" { "Cancel" }
            }
        }
    }
}

pub async fn new_form(user: AdminRole, htmx: Htmx) -> Response {
    let f = ClientForm {
        timezone: "UTC".into(),
        ..Default::default()
    };
    let body = html! { h1 { "New client" } (client_form(&user, "/clients", &f, &FieldErrors::new(), false)) };
    respond(htmx, &user, "New client", Nav::Clients, body)
}

fn refused(
    htmx: Htmx,
    user: &CurrentUser,
    title: &str,
    action: &str,
    f: &ClientForm,
    errors: &FieldErrors,
    editing: bool,
) -> Response {
    let body = html! { h1 { (title) } (client_form(user, action, f, errors, editing)) };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        respond(htmx, user, title, Nav::Clients, body),
    )
        .into_response()
}

pub async fn create(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Form(f): Form<ClientForm>,
) -> AppResult<Response> {
    let v = match f.validate() {
        Ok(v) => v,
        Err(errors) => {
            return Ok(refused(
                htmx,
                &user,
                "New client",
                "/clients",
                &f,
                &errors,
                false,
            ));
        }
    };
    let mut tx = state.pool.begin().await?;
    let id = match clients::create(&mut tx, &user.actor(), user.agency_id, &v).await {
        Ok(id) => id,
        Err(ClientError::NameTaken) => {
            let errors = FieldErrors::from([("name", NAME_TAKEN.to_owned())]);
            return Ok(refused(
                htmx,
                &user,
                "New client",
                "/clients",
                &f,
                &errors,
                false,
            ));
        }
        Err(ClientError::NotFound) => return Err(AppError::NotFound),
        Err(ClientError::Database(e)) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{id}")).into_response())
}

struct ClientDetail {
    name: String,
    status: ClientStatus,
    timezone: String,
    auto_approve: bool,
    reschedule_policy: String,
    created_at: chrono::DateTime<Utc>,
    updated_at: chrono::DateTime<Utc>,
}

async fn load(state: &AppState, agency_id: Uuid, id: Uuid) -> AppResult<ClientDetail> {
    sqlx::query_as!(
        ClientDetail,
        r#"SELECT name, status AS "status: ClientStatus", timezone, auto_approve, reschedule_policy, created_at, updated_at
           FROM clients WHERE id = $1 AND agency_id = $2"#,
        id,
        agency_id
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let c = load(&state, user.agency_id, id).await?;
    let tz = Tz::from_str(&c.timezone).unwrap_or(chrono_tz::UTC);
    let now = Utc::now();
    let can_manage = user.role.allows(autosocial_core::domain::Role::Admin);
    let accounts = sqlx::query!(
        r#"SELECT platform AS "platform: autosocial_core::domain::Platform", display_name,
                  status AS "status: autosocial_core::domain::AccountStatus", status_reason, token_expires_at
           FROM social_accounts WHERE client_id = $1 AND agency_id = $2 ORDER BY platform, display_name"#,
        id,
        user.agency_id
    )
    .fetch_all(&state.pool)
    .await?;
    let needs_reconnect = accounts
        .iter()
        .any(|a| a.status == autosocial_core::domain::AccountStatus::NeedsReconnect);
    // an app whose credentials the platform refused affects every account on that platform
    let refusals = autosocial_core::platform_apps::refusals(&state.pool, user.agency_id).await?;
    let connectable =
        autosocial_core::platform_apps::connectable(&state.pool, &state.platforms, user.agency_id)
            .await?;
    let body = html! {
        (crate::pages::client_tabs::nav(id, crate::pages::client_tabs::Tab::Overview))
        h1 { (c.name) " " (status_badge(c.status)) }
        div.card {
            dl.facts {
                dt { "Timezone" } dd { (c.timezone) }
                dt { "Review" } dd { @if c.auto_approve { "Generated posts are approved automatically" } @else { "Every post waits for review" } }
                dt { "When a post fails" } dd { @if c.reschedule_policy == "next_free_slot" { "Moved to the next free slot" } @else { "Waits for someone to reschedule it" } }
                dt { "Created" } dd { (format_in_zone(c.created_at, tz)) " · " (relative(c.created_at, now)) }
                dt { "Last changed" } dd { (format_in_zone(c.updated_at, tz)) " · " (relative(c.updated_at, now)) }
            }
        }
        h2 { "Accounts" }
        @if accounts.is_empty() {
            p.empty { "No account connected yet. Send the client an onboarding link." }
        } @else {
            table {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Account" } th scope="col" { "Status" } th scope="col" { "Token expires" } } }
                tbody {
                    @for a in &accounts {
                        tr {
                            td { (a.platform.label()) }
                            td { (a.display_name) }
                            td {
                                @if let Some(r) = refusals.iter().find(|r| r.platform == a.platform) {
                                    strong { "App credentials refused" }
                                    p.hint {
                                        (a.platform.label()) " refused the app's credentials, so this account's connection cannot be refreshed: " (r.message) " "
                                        @if can_manage { a href="/settings#apps" { "Platform apps in Settings" } }
                                    }
                                } @else {
                                    (a.status.label())
                                }
                                @if let Some(r) = &a.status_reason { p.hint { (r) } }
                            }
                            td { @if let Some(t) = a.token_expires_at { (format_in_zone(t, tz)) " · " (relative(t, now)) } @else { "—" } }
                        }
                    }
                }
            }
        }
        @if needs_reconnect && can_manage {
            div.alert role="alert" {
                p { "An account needs reconnecting: the platform no longer accepts its connection." }
                form method="post" action={ "/clients/" (id) "/onboarding" } {
                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                    button type="submit" { "Create a reconnect link" }
                }
            }
        }
        @if can_manage {
            div.actions {
                @for p in &connectable {
                    form method="post" action={ "/clients/" (id) "/accounts/connect/" (p.as_str()) } {
                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                        button.secondary type="submit" { "Connect " (p.label()) " yourself" }
                    }
                }
            }
        }
        p { a href={ "/clients/" (id) "/onboarding" } { "Onboarding links" } }
        @if can_manage {
            div.actions {
                a.button href={ "/clients/" (id) "/edit" } { "Edit" }
                @for (action, label, shown) in [
                    ("pause", "Pause", c.status == ClientStatus::Active),
                    ("resume", "Resume", c.status != ClientStatus::Active),
                    ("archive", "Archive", c.status != ClientStatus::Archived),
                ] {
                    @if shown {
                        form method="post" action={ "/clients/" (id) "/status" } {
                            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                            input type="hidden" name="action" value=(action);
                            button.secondary type="submit" { (label) }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(htmx, &user, &c.name, Nav::Clients, body))
}

pub async fn edit_form(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let c = load(&state, user.agency_id, id).await?;
    let f = ClientForm {
        name: c.name,
        timezone: c.timezone,
        status: Some(c.status.as_str().to_owned()),
        auto_approve: c.auto_approve.then(|| "on".to_owned()),
        reschedule_policy: Some(c.reschedule_policy),
    };
    let action = format!("/clients/{id}");
    let body =
        html! { h1 { "Edit client" } (client_form(&user, &action, &f, &FieldErrors::new(), true)) };
    Ok(respond(htmx, &user, "Edit client", Nav::Clients, body))
}

pub async fn update(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<ClientForm>,
) -> AppResult<Response> {
    // A foreign or unknown id is a 404 before any validation message could reveal anything.
    load(&state, user.agency_id, id).await?;
    let action = format!("/clients/{id}");
    let v = match f.validate() {
        Ok(v) => v,
        Err(errors) => {
            return Ok(refused(
                htmx,
                &user,
                "Edit client",
                &action,
                &f,
                &errors,
                true,
            ));
        }
    };
    let mut tx = state.pool.begin().await?;
    match clients::update(&mut tx, &user.actor(), user.agency_id, id, &v).await {
        Ok(()) => {}
        Err(ClientError::NameTaken) => {
            let errors = FieldErrors::from([("name", NAME_TAKEN.to_owned())]);
            return Ok(refused(
                htmx,
                &user,
                "Edit client",
                &action,
                &f,
                &errors,
                true,
            ));
        }
        Err(ClientError::NotFound) => return Err(AppError::NotFound),
        Err(ClientError::Database(e)) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{id}")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    action: String,
}

pub async fn set_status(
    State(state): State<AppState>,
    user: AdminRole,
    Path(id): Path<Uuid>,
    Form(f): Form<StatusForm>,
) -> AppResult<Response> {
    let status = match f.action.as_str() {
        "pause" => ClientStatus::Paused,
        "resume" => ClientStatus::Active,
        "archive" => ClientStatus::Archived,
        _ => {
            load(&state, user.agency_id, id).await?;
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                "action must be pause, resume or archive",
            )
                .into_response());
        }
    };
    let mut tx = state.pool.begin().await?;
    clients::set_status(&mut tx, &user.actor(), user.agency_id, id, status).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_each_bad_field() {
        let f = ClientForm {
            name: "  ".into(),
            timezone: "Mars/Olympus".into(),
            status: Some("gone".into()),
            ..Default::default()
        };
        let errors = f.validate().err().unwrap();
        assert!(errors["name"].contains("name"));
        assert!(errors["timezone"].contains("Mars/Olympus"));
        assert!(errors.contains_key("status"));
        let ok = ClientForm {
            name: " Acme ".into(),
            timezone: "Europe/Berlin".into(),
            ..Default::default()
        }
        .validate()
        .ok()
        .unwrap();
        assert_eq!(ok.name, "Acme");
        assert_eq!(ok.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(ok.status, ClientStatus::Active);
    }
}
