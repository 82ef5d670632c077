//! Kill switches: every member sees what is engaged for their agency (and a banner on every page
//! says so); admins and owners engage and disengage switches for their agency, a client, a
//! platform for the agency or an account. Switches that reach beyond one agency — global, or a
//! platform for every agency — belong to the deployment's operator (granted by the CLI only,
//! `autosocial-admin operator grant`), whatever their role in an agency; the CLI's
//! `autosocial-admin switch` does the same without the console. Members of an agency see that a
//! deployment-wide switch is engaged and why, never who engaged it, and never another agency's
//! switches.
//!
//! Engaging takes a reason and an explicit confirmation checked by the server (no JavaScript
//! needed), then goes through `core::killswitch::engage`, which returns once no worker will start
//! a new platform request for the scope.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::authority::{self, Authority};
use autosocial_core::domain::{KillSwitchScope, Platform, Role};
use autosocial_core::killswitch::{self, SwitchError, Target};

use crate::app::AppState;
use crate::auth::{CurrentUser, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path};
use crate::pages::layout::{Htmx, Nav, respond};
use crate::pages::{format_in_zone, relative};

/// How long workers trust their switch snapshot: the same setting (and default) as the worker's
/// `--switch-validity-ms`, read from the shared environment file, so `engage` waits long enough
/// when a worker does not acknowledge.
pub static SWITCH_VALIDITY: LazyLock<Duration> = LazyLock::new(|| {
    let ms = std::env::var("AUTOSOCIAL_SWITCH_VALIDITY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(2000)
        .clamp(200, 60_000);
    Duration::from_millis(ms)
});

/// An engaged switch as the console shows it.
#[derive(Debug, Clone)]
pub struct Engaged {
    pub id: Uuid,
    pub scope: KillSwitchScope,
    /// `None`: deployment-wide (global, or a platform for every agency).
    pub agency_id: Option<Uuid>,
    pub target: String,
    pub reason: String,
    pub engaged_at: DateTime<Utc>,
    /// Who engaged it (an email), or `None` when unknown or not to be shown: a deployment-wide
    /// switch's author is shown to operators only.
    pub engaged_by: Option<String>,
}

impl Engaged {
    /// Whether this switch reaches beyond one agency.
    pub fn deployment_wide(&self) -> bool {
        self.agency_id.is_none()
    }
}

/// Who engaged or disengaged a switch, as `viewer` may see it: an agency's own switches name
/// the member; a deployment-wide one names the operator's email to operators only.
fn author(
    viewer_is_operator: bool,
    deployment_wide: bool,
    email: Option<String>,
) -> Option<String> {
    if deployment_wide && !viewer_is_operator {
        Some("the deployment's operator".to_owned())
    } else {
        email
    }
}

/// The switches engaged now that concern an agency: its own and the deployment-wide ones (whose
/// author only an operator sees). One small query (engaged switches are few and indexed); the
/// layout runs it for every page that has one engaged.
pub async fn engaged_for(
    pool: &PgPool,
    agency: Uuid,
    operator: bool,
) -> sqlx::Result<Vec<Engaged>> {
    let rows = sqlx::query!(
        r#"SELECT k.id, k.scope AS "scope: KillSwitchScope", k.agency_id, k.platform AS "platform: Platform",
                  c.name AS "client_name?", a.display_name AS "account_name?", a.platform AS "account_platform?: Platform",
                  k.reason, k.engaged_at, u.email::text AS engaged_by
           FROM kill_switches k
           LEFT JOIN clients c ON c.id = k.client_id AND c.agency_id = k.agency_id
           LEFT JOIN social_accounts a ON a.id = k.account_id AND a.agency_id = k.agency_id
           LEFT JOIN users u ON u.id = k.engaged_by
           WHERE k.disengaged_at IS NULL AND (k.agency_id = $1 OR k.agency_id IS NULL)
           ORDER BY k.engaged_at"#,
        agency
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Engaged {
            id: r.id,
            scope: r.scope,
            agency_id: r.agency_id,
            target: describe(
                r.scope,
                r.agency_id.is_none(),
                r.platform,
                r.client_name.as_deref(),
                r.account_name.as_deref(),
                r.account_platform,
            ),
            reason: r.reason,
            engaged_at: r.engaged_at,
            engaged_by: author(operator, r.agency_id.is_none(), r.engaged_by),
        })
        .collect())
}

fn describe(
    scope: KillSwitchScope,
    deployment_wide: bool,
    platform: Option<Platform>,
    client: Option<&str>,
    account: Option<&str>,
    account_platform: Option<Platform>,
) -> String {
    match scope {
        KillSwitchScope::Global => "Everything (all agencies)".into(),
        KillSwitchScope::Agency => "The whole agency".into(),
        KillSwitchScope::Client => format!("Client {}", client.unwrap_or("(removed)")),
        KillSwitchScope::Platform => {
            let p = platform.map_or("?", |p| p.label());
            if deployment_wide {
                format!("{p} (all agencies)")
            } else {
                format!("{p} for the agency")
            }
        }
        KillSwitchScope::Account => match (account, account_platform) {
            (Some(a), Some(p)) => format!("Account {a} on {}", p.label()),
            _ => "An account (removed)".into(),
        },
    }
}

/// The banner the layout puts on every page while something is engaged.
pub fn banner(engaged: &[Engaged]) -> Markup {
    html! {
        @if !engaged.is_empty() {
            div.alert.banner role="alert" {
                strong { "Publishing is stopped: " (engaged.len()) " kill switch" @if engaged.len() > 1 { "es" } " engaged." }
                ul {
                    @for s in engaged {
                        li { (s.target) " — " (s.reason) }
                    }
                }
                a href="/switches" { "See the kill switches" }
            }
        }
    }
}

type FieldErrors = BTreeMap<&'static str, String>;

/// The engage form as typed.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct EngageForm {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: Option<String>,
}

struct Choices {
    clients: Vec<(Uuid, String)>,
    accounts: Vec<(Uuid, String)>,
}

async fn choices(state: &AppState, agency: Uuid) -> AppResult<Choices> {
    let clients = sqlx::query!(
        "SELECT id, name FROM clients WHERE agency_id = $1 AND status <> 'archived' ORDER BY lower(name), id",
        agency
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.name))
    .collect();
    let accounts = sqlx::query!(
        r#"SELECT a.id, a.display_name, a.platform AS "platform: Platform", c.name AS client_name
           FROM social_accounts a JOIN clients c ON c.id = a.client_id AND c.agency_id = a.agency_id
           WHERE a.agency_id = $1 ORDER BY lower(c.name), a.platform, a.display_name"#,
        agency
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.id,
            format!(
                "{} — {} ({})",
                r.client_name,
                r.display_name,
                r.platform.label()
            ),
        )
    })
    .collect();
    Ok(Choices { clients, accounts })
}

struct History {
    target: String,
    reason: String,
    engaged_at: DateTime<Utc>,
    engaged_by: Option<String>,
    disengaged_at: DateTime<Utc>,
    disengaged_by: Option<String>,
}

/// Recently disengaged switches: the agency's own, and for an operator also the deployment-wide
/// ones.
async fn history(state: &AppState, agency: Uuid, operator: bool) -> AppResult<Vec<History>> {
    let rows = sqlx::query!(
        r#"SELECT k.scope AS "scope: KillSwitchScope", k.agency_id, k.platform AS "platform: Platform",
                  c.name AS "client_name?", a.display_name AS "account_name?", a.platform AS "account_platform?: Platform",
                  k.reason, k.engaged_at, e.email::text AS engaged_by, k.disengaged_at AS "disengaged_at!", d.email::text AS disengaged_by
           FROM kill_switches k
           LEFT JOIN clients c ON c.id = k.client_id AND c.agency_id = k.agency_id
           LEFT JOIN social_accounts a ON a.id = k.account_id AND a.agency_id = k.agency_id
           LEFT JOIN users e ON e.id = k.engaged_by
           LEFT JOIN users d ON d.id = k.disengaged_by
           WHERE k.disengaged_at IS NOT NULL AND (k.agency_id = $1 OR (k.agency_id IS NULL AND $2))
           ORDER BY k.disengaged_at DESC LIMIT 20"#,
        agency,
        operator
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| History {
            target: describe(
                r.scope,
                r.agency_id.is_none(),
                r.platform,
                r.client_name.as_deref(),
                r.account_name.as_deref(),
                r.account_platform,
            ),
            reason: r.reason,
            engaged_at: r.engaged_at,
            engaged_by: author(operator, r.agency_id.is_none(), r.engaged_by),
            disengaged_at: r.disengaged_at,
            disengaged_by: author(operator, r.agency_id.is_none(), r.disengaged_by),
        })
        .collect())
}

fn field_error(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(e) = errors.get(field) {
            p.field-error id={ (field) "-error" } { (e) }
        }
    }
}

fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        "{} · {}",
        format_in_zone(at, chrono_tz::UTC),
        relative(at, now)
    )
}

/// Who may disengage: admins and owners their agency's switches, the operator the
/// deployment-wide ones.
fn may_disengage(user: &CurrentUser, s: &Engaged) -> bool {
    match s.agency_id {
        Some(_) => user.role.allows(Role::Admin),
        None => user.operator,
    }
}

/// Whether the person may engage anything: their agency's scopes (admin and up) or, as the
/// operator, the deployment-wide ones.
fn may_engage(user: &CurrentUser) -> bool {
    user.role.allows(Role::Admin) || user.operator
}

fn engage_form(user: &CurrentUser, c: &Choices, f: &EngageForm, errors: &FieldErrors) -> Markup {
    let invalid = |field: &str| errors.contains_key(field).then_some("true");
    let described = |field: &str| errors.contains_key(field).then(|| format!("{field}-error"));
    let admin = user.role.allows(Role::Admin);
    let operator = user.operator;
    let scope = if f.scope.is_empty() {
        if admin { "agency" } else { "global" }
    } else {
        f.scope.as_str()
    };
    html! {
        @if !errors.is_empty() {
            p.alert role="alert" { "Nothing was engaged: please correct the fields marked below." }
        }
        form.card method="post" action="/switches" novalidate {
            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
            label for="scope" { "What to stop" }
            select #scope name="scope" aria-invalid=[invalid("scope")] aria-describedby=[described("scope")] {
                @if operator {
                    option value="global" selected[scope == "global"] { "Everything, for every agency of this deployment (operator)" }
                    option value="platform_all" selected[scope == "platform_all"] { "One platform for every agency (operator; choose below)" }
                }
                @if admin {
                    option value="agency" selected[scope == "agency"] { "The whole agency" }
                    option value="client" selected[scope == "client"] { "One client (choose below)" }
                    option value="platform" selected[scope == "platform"] { "One platform for the agency (choose below)" }
                    option value="account" selected[scope == "account"] { "One account (choose below)" }
                }
            }
            (field_error(errors, "scope"))
            label for="client_id" { "Client (for a client switch)" }
            select #client_id name="client_id" aria-invalid=[invalid("client_id")] aria-describedby=[described("client_id")] {
                option value="" { "—" }
                @for (id, name) in &c.clients {
                    option value=(id) selected[f.client_id == id.to_string()] { (name) }
                }
            }
            (field_error(errors, "client_id"))
            label for="platform" { "Platform (for a platform switch)" }
            select #platform name="platform" aria-invalid=[invalid("platform")] aria-describedby=[described("platform")] {
                option value="" { "—" }
                @for p in Platform::ALL {
                    option value=(p.as_str()) selected[f.platform == p.as_str()] { (p.label()) }
                }
            }
            (field_error(errors, "platform"))
            label for="account_id" { "Account (for an account switch)" }
            select #account_id name="account_id" aria-invalid=[invalid("account_id")] aria-describedby=[described("account_id")] {
                option value="" { "—" }
                @for (id, label) in &c.accounts {
                    option value=(id) selected[f.account_id == id.to_string()] { (label) }
                }
            }
            (field_error(errors, "account_id"))
            label for="reason" { "Reason" }
            textarea #reason name="reason" rows="3" maxlength="2000" required
                aria-invalid=[invalid("reason")] aria-describedby=[described("reason")] { (f.reason) }
            p.hint { "Shown to everyone in the banner and kept in the audit log." }
            (field_error(errors, "reason"))
            div.checkbox {
                input #confirm type="checkbox" name="confirm" value="yes"
                    aria-invalid=[invalid("confirm")] aria-describedby=[described("confirm")];
                label for="confirm" { "I understand that no new post goes out for this scope until the switch is disengaged. Held posts are kept and resume afterwards." }
            }
            (field_error(errors, "confirm"))
            div.actions { button.danger type="submit" { "Engage kill switch" } }
        }
    }
}

async fn page_body(
    state: &AppState,
    user: &CurrentUser,
    form: &EngageForm,
    errors: &FieldErrors,
) -> AppResult<Markup> {
    let engaged = engaged_for(&state.pool, user.agency_id, user.operator).await?;
    let past = history(state, user.agency_id, user.operator).await?;
    let now = Utc::now();
    let choices = if may_engage(user) {
        Some(choices(state, user.agency_id).await?)
    } else {
        None
    };
    Ok(html! {
        h1 { "Kill switches" }
        p { "A kill switch stops every new platform request in its scope at once. Nothing is lost: covered posts wait and resume when it is disengaged." }
        h2 { "Engaged now" }
        @if engaged.is_empty() {
            p.empty { "No kill switch is engaged." }
        } @else {
            table {
                thead { tr { th scope="col" { "Scope" } th scope="col" { "Reason" } th scope="col" { "Engaged" } th scope="col" { "By" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for s in &engaged {
                        tr {
                            td { (s.target) }
                            td { (s.reason) }
                            td { (when(s.engaged_at, now)) }
                            td { (s.engaged_by.as_deref().unwrap_or("—")) }
                            td {
                                @if may_disengage(user, s) {
                                    form method="post" action={ "/switches/" (s.id) "/disengage" } {
                                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                        button.secondary type="submit" { "Disengage" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &choices {
            h2 { "Engage a switch" }
            (engage_form(user, c, form, errors))
        }
        h2 { "Recently disengaged" }
        @if past.is_empty() {
            p.empty { "None yet." }
        } @else {
            table {
                thead { tr { th scope="col" { "Scope" } th scope="col" { "Reason" } th scope="col" { "Engaged" } th scope="col" { "Disengaged" } } }
                tbody {
                    @for h in &past {
                        tr {
                            td { (h.target) }
                            td { (h.reason) }
                            td { (when(h.engaged_at, now)) " by " (h.engaged_by.as_deref().unwrap_or("—")) }
                            td { (when(h.disengaged_at, now)) " by " (h.disengaged_by.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    })
}

pub async fn list(State(state): State<AppState>, user: Viewer, htmx: Htmx) -> AppResult<Response> {
    let body = page_body(&state, &user, &EngageForm::default(), &FieldErrors::new()).await?;
    Ok(respond(htmx, &user, "Kill switches", Nav::Switches, body))
}

fn parse_id(s: &str) -> Option<Uuid> {
    Uuid::from_str(s.trim()).ok()
}

/// Validate the form into a target. A client or account id that is not this agency's is a 404,
/// like every other foreign id.
async fn target(
    state: &AppState,
    user: &CurrentUser,
    f: &EngageForm,
) -> AppResult<Result<(Target, String), FieldErrors>> {
    let mut errors = FieldErrors::new();
    let reason = f.reason.trim().to_owned();
    if reason.is_empty() {
        errors.insert("reason", "Give a reason: it is shown to everyone.".into());
    } else if reason.chars().count() > 2000 {
        errors.insert("reason", "Use at most 2000 characters.".into());
    }
    if f.confirm.as_deref() != Some("yes") {
        errors.insert(
            "confirm",
            "Tick the box to confirm you mean to stop publishing.".into(),
        );
    }
    let agency = user.agency_id;
    // deployment-wide scopes are the operator's; the agency's scopes need an admin of it
    let deployment_wide = matches!(f.scope.as_str(), "global" | "platform_all");
    let allowed = if deployment_wide {
        user.operator
    } else {
        user.role.allows(Role::Admin)
    };
    if !allowed {
        return Err(AppError::Forbidden);
    }
    let target = match f.scope.as_str() {
        "global" => Some(Target::Global),
        "platform_all" => match Platform::from_str(&f.platform) {
            Ok(platform) => Some(Target::Platform {
                agency: None,
                platform,
            }),
            Err(_) => {
                errors.insert("platform", "Choose the platform to stop.".into());
                None
            }
        },
        "agency" => Some(Target::Agency(agency)),
        "client" => match parse_id(&f.client_id) {
            Some(client) => {
                let ours = sqlx::query_scalar!(
                    r#"SELECT true AS "ours!" FROM clients WHERE id = $1 AND agency_id = $2"#,
                    client,
                    agency
                )
                .fetch_optional(&state.pool)
                .await?;
                if ours.is_none() {
                    return Err(AppError::NotFound);
                }
                Some(Target::Client { agency, client })
            }
            None => {
                errors.insert("client_id", "Choose the client to stop.".into());
                None
            }
        },
        "platform" => match Platform::from_str(&f.platform) {
            Ok(platform) => Some(Target::Platform {
                agency: Some(agency),
                platform,
            }),
            Err(_) => {
                errors.insert("platform", "Choose the platform to stop.".into());
                None
            }
        },
        "account" => match parse_id(&f.account_id) {
            Some(account) => {
                let ours = sqlx::query_scalar!(
                    r#"SELECT true AS "ours!" FROM social_accounts WHERE id = $1 AND agency_id = $2"#,
                    account,
                    agency
                )
                .fetch_optional(&state.pool)
                .await?;
                if ours.is_none() {
                    return Err(AppError::NotFound);
                }
                Some(Target::Account { agency, account })
            }
            None => {
                errors.insert("account_id", "Choose the account to stop.".into());
                None
            }
        },
        _ => {
            errors.insert(
                "scope",
                "Choose what to stop: the agency, a client, a platform or an account.".into(),
            );
            None
        }
    };
    let authority = if user.operator {
        Authority::Operator
    } else {
        Authority::Agency(agency)
    };
    if let Some(t) = &target
        && !authority.may_switch(t)
    {
        return Err(AppError::Forbidden);
    }
    Ok(match target {
        Some(t) if errors.is_empty() => Ok((t, reason)),
        _ => Err(errors),
    })
}

async fn refused(
    state: &AppState,
    htmx: Htmx,
    user: &CurrentUser,
    f: &EngageForm,
    errors: &FieldErrors,
) -> AppResult<Response> {
    let body = page_body(state, user, f, errors).await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        respond(htmx, user, "Kill switches", Nav::Switches, body),
    )
        .into_response())
}

pub async fn engage(
    State(state): State<AppState>,
    user: CurrentUser,
    htmx: Htmx,
    Form(f): Form<EngageForm>,
) -> AppResult<Response> {
    let (target, reason) = match target(&state, &user, &f).await? {
        Ok(t) => t,
        Err(errors) => return refused(&state, htmx, &user, &f, &errors).await,
    };
    let engaged = killswitch::engage(
        &state.pool,
        Some(&state.redis),
        *SWITCH_VALIDITY,
        &user.actor(),
        target,
        &reason,
    )
    .await;
    match engaged {
        Ok(id) => {
            tracing::info!(switch = %id, scope = ?target, deployment_wide = authority::deployment_wide(&target), "kill switch engaged from the console");
            // the dashboard counts engaged switches (a global one counts for every agency)
            state.live.touch(None);
            Ok(Redirect::to("/switches").into_response())
        }
        Err(SwitchError::AlreadyEngaged) => {
            let errors = FieldErrors::from([(
                "scope",
                "A switch is already engaged for exactly this target.".to_owned(),
            )]);
            refused(&state, htmx, &user, &f, &errors).await
        }
        Err(SwitchError::NoReason) => {
            let errors = FieldErrors::from([("reason", "Give a reason.".to_owned())]);
            refused(&state, htmx, &user, &f, &errors).await
        }
        Err(SwitchError::NotEngaged) => Err(AppError::NotFound),
        Err(SwitchError::Database(e)) => Err(e.into()),
    }
}

pub async fn disengage(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    // Only this agency's switches and the deployment-wide ones exist for this user.
    let s = sqlx::query!(
        "SELECT agency_id FROM kill_switches WHERE id = $1 AND disengaged_at IS NULL AND (agency_id = $2 OR agency_id IS NULL)",
        id,
        user.agency_id
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let allowed = match s.agency_id {
        Some(a) => {
            user.role.allows(Role::Admin)
                && Authority::Agency(user.agency_id).may_disengage(Some(a))
        }
        None => user.operator && Authority::Operator.may_disengage(None),
    };
    if !allowed {
        return Err(AppError::Forbidden);
    }
    match killswitch::disengage(&state.pool, Some(&state.redis), &user.actor(), id).await {
        Ok(released) => {
            tracing::info!(switch = %id, released, "kill switch disengaged from the console");
            state.live.touch(None);
            Ok(Redirect::to("/switches").into_response())
        }
        // disengaged by someone else a moment ago: the list shows it
        Err(SwitchError::NotEngaged) => Ok(Redirect::to("/switches").into_response()),
        Err(SwitchError::Database(e)) => Err(e.into()),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_described_for_people() {
        assert_eq!(
            describe(KillSwitchScope::Global, true, None, None, None, None),
            "Everything (all agencies)"
        );
        assert_eq!(
            describe(
                KillSwitchScope::Platform,
                false,
                Some(Platform::X),
                None,
                None,
                None
            ),
            "X for the agency"
        );
        assert_eq!(
            describe(
                KillSwitchScope::Client,
                false,
                None,
                Some("Bakery"),
                None,
                None
            ),
            "Client Bakery"
        );
        assert_eq!(
            describe(
                KillSwitchScope::Account,
                false,
                None,
                None,
                Some("@bakery"),
                Some(Platform::Instagram)
            ),
            "Account @bakery on Instagram"
        );
    }
}
