//! Agency settings: members and roles, the agency's own platform apps, the AI provider and
//! per-platform limit overrides. Admins may look; only owners change anything. Every change is
//! audited.
//!
//! Secrets (app client secrets, the AI key) are write-only: the forms never echo them, the page
//! only says whether one is set, and removing one is its own explicit action.
//!
//! Inviting a member makes an invitation (`core::invitations`): a one-time link, shown once to
//! the inviting owner to pass on (until the console sends email), that the invited person opens
//! to join — with their password if they have an account, or by choosing one. The answer to the
//! owner is the same whether or not the address has an account anywhere on the deployment, and
//! nobody becomes a member of an agency without accepting.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::audit::{self, Entry};
use autosocial_core::domain::{Platform, Role};
use autosocial_core::invitations::{self, InvitationState, Invited};
use autosocial_core::platform_apps::{self, NewApp};
use autosocial_core::vault::Aad;

use crate::app::AppState;
use crate::auth::{AdminRole, CurrentUser, Owner};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path};
use crate::pages::format_in_zone;
use crate::pages::layout::{Htmx, Nav, respond};

/// Field messages and typed values, keyed by the field's id on the page (ids are unique across
/// the page's forms, so one re-render can mark the field of whichever form was refused).
#[derive(Default)]
struct Flash {
    errors: BTreeMap<String, String>,
    values: BTreeMap<String, String>,
    notice: Option<Markup>,
}

impl Flash {
    fn error(field: impl Into<String>, message: impl Into<String>) -> Flash {
        let mut f = Flash::default();
        f.errors.insert(field.into(), message.into());
        f
    }

    fn value(mut self, field: impl Into<String>, value: &str) -> Flash {
        self.values.insert(field.into(), value.to_owned());
        self
    }

    fn invalid(&self, field: &str) -> Option<&'static str> {
        self.errors.contains_key(field).then_some("true")
    }

    fn described(&self, field: &str) -> Option<String> {
        self.errors
            .contains_key(field)
            .then(|| format!("{field}-error"))
    }

    fn message(&self, field: &str) -> Markup {
        html! {
            @if let Some(e) = self.errors.get(field) {
                p.field-error id={ (field) "-error" } { (e) }
            }
        }
    }
}

fn when(at: DateTime<Utc>) -> String {
    format_in_zone(at, chrono_tz::UTC)
}

fn window_label(secs: i32) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} h", s / 3600),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

struct Member {
    user_id: Uuid,
    email: String,
    role: Role,
    since: DateTime<Utc>,
}

struct Limit {
    platform: Platform,
    window_seconds: i32,
    max_posts: i32,
    note: String,
    override_posts: Option<i32>,
}

struct AiSettings {
    ai_provider: String,
    ai_base_url: Option<String>,
    ai_model: Option<String>,
    key_set: bool,
    updated_at: Option<DateTime<Utc>>,
}

/// A platform refused the app's own credentials: what happened, and who can fix it.
fn app_refusal(r: &platform_apps::Refusal) -> Markup {
    html! {
        div.alert role="alert" {
            p {
                strong { (r.platform.label()) " refused the app's credentials" }
                " (client id " code { (r.client_id) } ") on " (when(r.refused_at)) ": " (r.message)
            }
            p {
                "Your clients' " (r.platform.label()) " accounts cannot be refreshed or connected until the app works. "
                @if r.own_app {
                    "Check the client id and secret of your agency's app below (saving them clears this message)."
                } @else {
                    "This is the deployment's app: ask whoever runs AutoSocial to check AUTOSOCIAL_"
                    (r.platform.as_str().to_uppercase()) "_CLIENT_ID and _CLIENT_SECRET, or set your agency's own app below."
                }
            }
        }
    }
}

async fn render(state: &AppState, user: &CurrentUser, flash: &Flash) -> AppResult<Markup> {
    let agency = user.agency_id;
    let members = sqlx::query_as!(
        Member,
        r#"SELECT m.user_id, u.email::text AS "email!", m.role AS "role: Role", m.created_at AS since
           FROM memberships m JOIN users u ON u.id = m.user_id
           WHERE m.agency_id = $1
           ORDER BY array_position(ARRAY['owner', 'admin', 'reviewer', 'viewer'], m.role), u.email"#,
        agency
    )
    .fetch_all(&state.pool)
    .await?;
    let apps = platform_apps::list(&state.pool, agency).await?;
    let invites = if user.role.allows(Role::Owner) {
        invitations::list(&state.pool, agency).await?
    } else {
        Vec::new()
    };
    let refusals = platform_apps::refusals(&state.pool, agency).await?;
    let ai = sqlx::query_as!(
        AiSettings,
        r#"SELECT ai_provider, ai_base_url, ai_model, ai_api_key_ct IS NOT NULL AS "key_set!", updated_at AS "updated_at?"
           FROM agency_settings WHERE agency_id = $1"#,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .unwrap_or(AiSettings {
        ai_provider: "template".into(),
        ai_base_url: None,
        ai_model: None,
        key_set: false,
        updated_at: None,
    });
    let limits = sqlx::query_as!(
        Limit,
        r#"SELECT l.platform AS "platform: Platform", l.window_seconds, l.max_posts, l.note, o.max_posts AS "override_posts?"
           FROM platform_limits l
           LEFT JOIN platform_limit_overrides o
                  ON o.agency_id = $1 AND o.platform = l.platform AND o.window_seconds = l.window_seconds
           ORDER BY l.platform, l.window_seconds"#,
        agency
    )
    .fetch_all(&state.pool)
    .await?;
    let owner = user.role.allows(Role::Owner);
    let v = |field: &str, current: &str| {
        flash
            .values
            .get(field)
            .cloned()
            .unwrap_or_else(|| current.to_owned())
    };
    Ok(html! {
        h1 { "Settings" }
        @if let Some(n) = &flash.notice { (n) }
        @if !flash.errors.is_empty() {
            p.alert role="alert" { "Nothing was saved: please correct the field marked below." }
        }
        @if !owner {
            p.hint { "Only an owner of the agency can change these settings." }
        }

        h2 #members { "Members" }
        table {
            thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Member since" } @if owner { th scope="col" { span.visually-hidden { "Actions" } } } } }
            tbody {
                @for m in &members {
                    @let field = format!("member-{}", m.user_id);
                    tr {
                        td { (m.email) @if m.user_id == user.user_id { " (you)" } }
                        td {
                            @if owner {
                                form.inline method="post" action={ "/settings/members/" (m.user_id) "/role" } {
                                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                    label.visually-hidden for={ (field) "-role" } { "Role of " (m.email) }
                                    select id={ (field) "-role" } name="role" aria-invalid=[flash.invalid(&field)] aria-describedby=[flash.described(&field)] {
                                        @for r in Role::ALL.iter().rev() {
                                            option value=(r.as_str()) selected[*r == m.role] { (r.as_str()) }
                                        }
                                    }
                                    button.secondary type="submit" { "Change role" }
                                }
                            } @else {
                                (m.role.as_str())
                            }
                            (flash.message(&field))
                        }
                        td { (when(m.since)) }
                        @if owner {
                            td {
                                form method="post" action={ "/settings/members/" (m.user_id) "/remove" } {
                                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                    button.secondary type="submit" { "Remove from agency" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if owner {
            form.card method="post" action="/settings/members" novalidate {
                h3 { "Invite a member" }
                input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                label for="invite-email" { "Email" }
                input #invite-email type="email" name="email" value=(v("invite-email", "")) required maxlength="254" autocomplete="off"
                    aria-invalid=[flash.invalid("invite-email")] aria-describedby=[flash.described("invite-email")];
                (flash.message("invite-email"))
                label for="invite-role" { "Role" }
                @let chosen = v("invite-role", "viewer");
                select #invite-role name="role" aria-invalid=[flash.invalid("invite-role")] aria-describedby=[flash.described("invite-role")] {
                    @for r in Role::ALL.iter().rev() {
                        option value=(r.as_str()) selected[chosen == r.as_str()] { (r.as_str()) }
                    }
                }
                (flash.message("invite-role"))
                p.hint { "You get a link to pass on: it works once and for " (invitations::LIFETIME_DAYS) " days. The person opens it to join, with their password or by choosing one; nobody joins without accepting." }
                div.actions { button type="submit" { "Invite" } }
            }
            @if !invites.is_empty() {
                h3 #invitations { "Invitations" }
                table {
                    thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Expires" } th scope="col" { "State" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for i in &invites {
                            tr {
                                td { (i.email) }
                                td { (i.role.as_str()) }
                                td { (when(i.expires_at)) }
                                td { (i.state.label()) }
                                td {
                                    @if i.state == InvitationState::Open {
                                        form method="post" action={ "/settings/invitations/" (i.id) "/revoke" } {
                                            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                            button.secondary type="submit" { "Revoke" span.visually-hidden { " the invitation for " (i.email) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        h2 #apps { "Platform apps" }
        p { "Your agency's own OAuth app for a platform replaces the deployment's app for your clients' new connections and refreshes. The client secret is stored encrypted and never shown again." }
        @for p in Platform::ALL {
            @let app = apps.iter().find(|a| a.platform == *p);
            @let id_field = format!("app-{p}-client_id");
            @let secret_field = format!("app-{p}-client_secret");
            @let refusal = refusals.iter().find(|r| r.platform == *p);
            div.card {
                h3 { (p.label()) }
                @if let Some(r) = refusal { (app_refusal(r)) }
                dl.facts {
                    dt { "App in use" }
                    dd {
                        @match app {
                            Some(_) => "Your agency's app",
                            None if state.platforms.app(*p).is_some() => "The deployment's app",
                            None => "None: accounts on this platform cannot be connected",
                        }
                    }
                    @if let Some(a) = app {
                        dt { "Client id" } dd { code { (a.client_id) } }
                        dt { "Client secret" } dd { @if a.secret_set { "set" } @else { "not set" } }
                        dt { "Last changed" } dd { (when(a.updated_at)) }
                    }
                }
                @if owner {
                    form method="post" action={ "/settings/apps/" (p.as_str()) } novalidate {
                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                        label for=(id_field) { "Client id" }
                        input id=(id_field) type="text" name="client_id" maxlength="500" autocomplete="off"
                            value=(v(&id_field, app.map_or("", |a| a.client_id.as_str())))
                            aria-invalid=[flash.invalid(&id_field)] aria-describedby=[flash.described(&id_field)];
                        (flash.message(&id_field))
                        label for=(secret_field) { "Client secret" }
                        input id=(secret_field) type="password" name="client_secret" autocomplete="new-password" value=""
                            aria-invalid=[flash.invalid(&secret_field)] aria-describedby=[flash.described(&secret_field)];
                        p.hint { @if app.is_some() { "A secret is set. Leave this empty to keep it." } @else { "Required for a new app." } }
                        (flash.message(&secret_field))
                        div.actions { button type="submit" { "Save " (p.label()) " app" } }
                    }
                    @if app.is_some() {
                        form method="post" action={ "/settings/apps/" (p.as_str()) "/remove" } {
                            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                            div.actions { button.danger type="submit" { "Remove the agency's " (p.label()) " app and its secret" } }
                        }
                    }
                }
            }
        }

        h2 #ai { "AI provider" }
        div.card {
            dl.facts {
                dt { "API key" } dd { @if ai.key_set { "set" } @else { "not set" } }
                @if let Some(t) = ai.updated_at { dt { "Last changed" } dd { (when(t)) } }
            }
            @if owner {
                form method="post" action="/settings/ai" novalidate {
                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                    label for="ai-provider" { "Provider" }
                    @let provider = v("ai-provider", &ai.ai_provider);
                    select #ai-provider name="ai_provider" aria-invalid=[flash.invalid("ai-provider")] aria-describedby=[flash.described("ai-provider")] {
                        option value="template" selected[provider == "template"] { "Built-in templates (offline)" }
                        option value="openai" selected[provider == "openai"] { "OpenAI-compatible endpoint" }
                    }
                    (flash.message("ai-provider"))
                    label for="ai-base-url" { "Base URL" }
                    input #ai-base-url type="text" name="ai_base_url" maxlength="500" placeholder="https://api.groq.com/openai/v1"
                        value=(v("ai-base-url", ai.ai_base_url.as_deref().unwrap_or("")))
                        aria-invalid=[flash.invalid("ai-base-url")] aria-describedby=[flash.described("ai-base-url")];
                    (flash.message("ai-base-url"))
                    label for="ai-model" { "Model" }
                    input #ai-model type="text" name="ai_model" maxlength="200"
                        value=(v("ai-model", ai.ai_model.as_deref().unwrap_or("")))
                        aria-invalid=[flash.invalid("ai-model")] aria-describedby=[flash.described("ai-model")];
                    (flash.message("ai-model"))
                    label for="ai-key" { "API key" }
                    input #ai-key type="password" name="ai_api_key" autocomplete="new-password" value=""
                        aria-invalid=[flash.invalid("ai-key")] aria-describedby=[flash.described("ai-key")];
                    p.hint { @if ai.key_set { "A key is set. Leave this empty to keep it." } @else { "Not needed for local endpoints such as Ollama." } }
                    (flash.message("ai-key"))
                    @if ai.key_set {
                        div.checkbox {
                            input #ai-clear-key type="checkbox" name="ai_clear_key" value="yes";
                            label for="ai-clear-key" { "Remove the stored API key" }
                        }
                    }
                    div.actions { button type="submit" { "Save AI settings" } }
                }
            }
        }

        h2 #limits { "Platform limits" }
        p { "Posts per account in each rolling window. An override replaces the default for your agency; leave it empty to use the default." }
        (flash.message("limit"))
        table {
            thead { tr { th scope="col" { "Platform" } th scope="col" { "Window" } th scope="col" { "Default" } th scope="col" { "Your override" } } }
            tbody {
                @for l in &limits {
                    @let field = format!("limit-{}-{}", l.platform, l.window_seconds);
                    tr {
                        td { (l.platform.label()) }
                        td { (window_label(l.window_seconds)) @if !l.note.is_empty() { p.hint { (l.note) } } }
                        td { (l.max_posts) }
                        td {
                            @if owner {
                                form.inline method="post" action="/settings/limits" novalidate {
                                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                    input type="hidden" name="platform" value=(l.platform.as_str());
                                    input type="hidden" name="window_seconds" value=(l.window_seconds);
                                    label.visually-hidden for=(field) { "Override for " (l.platform.label()) " per " (window_label(l.window_seconds)) }
                                    input id=(field) type="text" inputmode="numeric" name="max_posts" placeholder=(l.max_posts)
                                        value=(v(&field, &l.override_posts.map(|n| n.to_string()).unwrap_or_default()))
                                        aria-invalid=[flash.invalid(&field)] aria-describedby=[flash.described(&field)];
                                    button.secondary type="submit" { "Save" }
                                    (flash.message(&field))
                                }
                            } @else {
                                @match l.override_posts { Some(n) => (n), None => "—" }
                            }
                        }
                    }
                }
            }
        }
    })
}

async fn page(
    state: &AppState,
    htmx: Htmx,
    user: &CurrentUser,
    status: StatusCode,
    flash: Flash,
) -> AppResult<Response> {
    let body = render(state, user, &flash).await?;
    Ok((status, respond(htmx, user, "Settings", Nav::Settings, body)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
) -> AppResult<Response> {
    page(&state, htmx, &user, StatusCode::OK, Flash::default()).await
}

fn back(anchor: &str) -> Response {
    Redirect::to(&format!("/settings#{anchor}")).into_response()
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub async fn invite(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Form(f): Form<InviteForm>,
) -> AppResult<Response> {
    let email = f.email.trim();
    let refused = |field: &str, msg: &str| {
        Flash::error(field, msg)
            .value("invite-email", email)
            .value("invite-role", &f.role)
    };
    if !valid_email(email) {
        let flash = refused(
            "invite-email",
            "Enter an email address like name@example.com.",
        );
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    }
    let Ok(role) = Role::from_str(&f.role) else {
        let flash = refused("invite-role", "Choose owner, admin, reviewer or viewer.");
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    let mut tx = state.pool.begin().await?;
    let invited = invitations::create(&mut tx, &user.actor(), user.agency_id, email, role).await?;
    let invitation = match invited {
        Invited::Created(i) => i,
        Invited::AlreadyMember => {
            let flash = refused(
                "invite-email",
                "This person is already a member of your agency.",
            );
            return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
        }
    };
    tx.commit().await?;
    let link = format!(
        "{}/invite/{}",
        state.web.public_url.as_str().trim_end_matches('/'),
        invitation.token
    );
    // the same answer whether or not the address has an account anywhere
    let notice = html! {
        div.notice role="status" {
            p { "Invited " strong { (email) } " as " (role.as_str()) ". Send them this link over a channel you trust; it is shown only now, works once and expires " (when(invitation.expires_at)) "." }
            label for="invite-link" { "Invitation link" }
            input #invite-link type="text" readonly value=(link);
            p.hint { "They join when they open it and accept, with the password of their account or by choosing one." }
        }
    };
    let flash = Flash {
        notice: Some(notice),
        ..Flash::default()
    };
    let mut r = page(&state, htmx, &user, StatusCode::CREATED, flash).await?;
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `POST /settings/invitations/{id}/revoke`: the link stops working.
pub async fn revoke_invitation(
    State(state): State<AppState>,
    user: Owner,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if !invitations::revoke(&mut tx, &user.actor(), user.agency_id, id).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    Ok(back("invitations"))
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// Lock the agency's owners and the member (so two owners demoting each other cannot both
/// succeed) and return the member's role and the number of owners.
async fn lock_member(
    tx: &mut sqlx::PgConnection,
    agency: Uuid,
    member: Uuid,
) -> AppResult<(Role, usize)> {
    let rows = sqlx::query!(
        r#"SELECT user_id, role AS "role: Role" FROM memberships
           WHERE agency_id = $1 AND (role = 'owner' OR user_id = $2)
           ORDER BY user_id FOR UPDATE"#,
        agency,
        member
    )
    .fetch_all(&mut *tx)
    .await?;
    let role = rows
        .iter()
        .find(|r| r.user_id == member)
        .map(|r| r.role)
        .ok_or(AppError::NotFound)?;
    let owners = rows.iter().filter(|r| r.role == Role::Owner).count();
    Ok((role, owners))
}

const LAST_OWNER: &str = "The agency needs at least one owner: make someone else owner first.";

pub async fn change_role(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Path(member): Path<Uuid>,
    Form(f): Form<RoleForm>,
) -> AppResult<Response> {
    let field = format!("member-{member}");
    let mut tx = state.pool.begin().await?;
    let (current, owners) = lock_member(&mut tx, user.agency_id, member).await?;
    let Ok(role) = Role::from_str(&f.role) else {
        let flash = Flash::error(field, "Choose owner, admin, reviewer or viewer.");
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    if current == role {
        return Ok(back("members"));
    }
    if current == Role::Owner && owners <= 1 {
        return page(
            &state,
            htmx,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            Flash::error(field, LAST_OWNER),
        )
        .await;
    }
    sqlx::query!(
        "UPDATE memberships SET role = $3 WHERE agency_id = $1 AND user_id = $2",
        user.agency_id,
        member,
        role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "member.role")
            .target("user", member)
            .details(serde_json::json!({ "from": current, "to": role })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("members"))
}

pub async fn remove_member(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Path(member): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let (current, owners) = lock_member(&mut tx, user.agency_id, member).await?;
    if current == Role::Owner && owners <= 1 {
        let flash = Flash::error(format!("member-{member}"), LAST_OWNER);
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    }
    // their sessions in this agency go with the membership (foreign key cascade)
    sqlx::query!(
        "DELETE FROM memberships WHERE agency_id = $1 AND user_id = $2",
        user.agency_id,
        member
    )
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "member.remove")
            .target("user", member)
            .details(serde_json::json!({ "role": current })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("members"))
}

// ---------------------------------------------------------------------------------------------
// Platform apps
// ---------------------------------------------------------------------------------------------

/// The app form. No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct AppForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

fn platform_of(s: &str) -> AppResult<Platform> {
    Platform::from_str(s).map_err(|_| AppError::NotFound)
}

pub async fn save_app(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Path(platform): Path<String>,
    Form(f): Form<AppForm>,
) -> AppResult<Response> {
    let platform = platform_of(&platform)?;
    let secret = SecretString::from(f.client_secret);
    let saved = platform_apps::save(
        &state.pool,
        &state.vault,
        &user.actor(),
        user.agency_id,
        NewApp {
            platform,
            client_id: &f.client_id,
            client_secret: Some(&secret),
        },
    )
    .await;
    match saved {
        Ok(()) => Ok(back("apps")),
        Err(e) => match e.field() {
            Some(field) => {
                let id_field = format!("app-{platform}-client_id");
                let flash = Flash::error(format!("app-{platform}-{field}"), e.to_string())
                    .value(id_field, &f.client_id);
                page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await
            }
            None => Err(anyhow::Error::from(e).into()),
        },
    }
}

pub async fn remove_app(
    State(state): State<AppState>,
    user: Owner,
    Path(platform): Path<String>,
) -> AppResult<Response> {
    let platform = platform_of(&platform)?;
    platform_apps::remove(&state.pool, &user.actor(), user.agency_id, platform).await?;
    Ok(back("apps"))
}

// ---------------------------------------------------------------------------------------------
// AI provider
// ---------------------------------------------------------------------------------------------

/// The AI form. No `Debug`: it holds the API key.
#[derive(Deserialize)]
pub struct AiForm {
    #[serde(default)]
    ai_provider: String,
    #[serde(default)]
    ai_base_url: String,
    #[serde(default)]
    ai_model: String,
    #[serde(default)]
    ai_api_key: String,
    #[serde(default)]
    ai_clear_key: Option<String>,
}

struct ValidAi {
    provider: &'static str,
    base_url: Option<String>,
    model: Option<String>,
    key: KeyChange,
}

enum KeyChange {
    Keep,
    Set(String),
    Remove,
}

impl AiForm {
    fn validate(&self) -> Result<ValidAi, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let provider = match self.ai_provider.as_str() {
            "template" => "template",
            "openai" => "openai",
            _ => {
                errors.insert(
                    "ai-provider".into(),
                    "Choose the built-in templates or an OpenAI-compatible endpoint.".into(),
                );
                "template"
            }
        };
        let base_url = self.ai_base_url.trim();
        let base_url = if base_url.is_empty() {
            None
        } else {
            match url::Url::parse(base_url) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && base_url.len() <= 500 =>
                {
                    Some(base_url.trim_end_matches('/').to_owned())
                }
                _ => {
                    errors.insert(
                        "ai-base-url".into(),
                        "Enter an http:// or https:// URL with a host and no credentials, e.g. https://api.openai.com/v1.".into(),
                    );
                    None
                }
            }
        };
        let model = self.ai_model.trim();
        let model = if model.is_empty() {
            None
        } else if model.chars().count() > 200 || model.chars().any(char::is_control) {
            errors.insert(
                "ai-model".into(),
                "Use at most 200 characters without control characters.".into(),
            );
            None
        } else {
            Some(model.to_owned())
        };
        if provider == "openai" {
            if base_url.is_none() && !errors.contains_key("ai-base-url") {
                errors.insert(
                    "ai-base-url".into(),
                    "An OpenAI-compatible provider needs its base URL.".into(),
                );
            }
            if model.is_none() && !errors.contains_key("ai-model") {
                errors.insert(
                    "ai-model".into(),
                    "An OpenAI-compatible provider needs a model name.".into(),
                );
            }
        }
        let key = self.ai_api_key.trim();
        let key = match (key.is_empty(), self.ai_clear_key.is_some()) {
            (true, false) => KeyChange::Keep,
            (true, true) => KeyChange::Remove,
            (false, true) => {
                errors.insert(
                    "ai-key".into(),
                    "Either enter a new key or tick “remove”, not both.".into(),
                );
                KeyChange::Keep
            }
            (false, false)
                if key.len() > 500 || key.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                errors.insert(
                    "ai-key".into(),
                    "The key must be at most 500 characters without spaces.".into(),
                );
                KeyChange::Keep
            }
            (false, false) => KeyChange::Set(key.to_owned()),
        };
        if errors.is_empty() {
            Ok(ValidAi {
                provider,
                base_url,
                model,
                key,
            })
        } else {
            Err(errors)
        }
    }
}

pub async fn save_ai(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Form(f): Form<AiForm>,
) -> AppResult<Response> {
    let v = match f.validate() {
        Ok(v) => v,
        Err(errors) => {
            let flash = Flash {
                errors,
                ..Flash::default()
            }
            .value("ai-provider", &f.ai_provider)
            .value("ai-base-url", &f.ai_base_url)
            .value("ai-model", &f.ai_model);
            return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
        }
    };
    let agency = user.agency_id;
    let row = agency.to_string();
    // same place as `vault::ENCRYPTED` gives key rotation: row = the agency id
    let aad = Aad {
        table: "agency_settings",
        column: "ai_api_key_ct",
        agency: Some(agency),
        row: &row,
    };
    let (set_key, ct, key_id) = match &v.key {
        KeyChange::Keep => (false, None, None),
        KeyChange::Set(k) => (
            true,
            Some(state.vault.encrypt_str(k, &aad)),
            Some(state.vault.current_key_id().to_owned()),
        ),
        KeyChange::Remove => (true, None, None),
    };
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO agency_settings (agency_id) VALUES ($1) ON CONFLICT DO NOTHING",
        agency
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE agency_settings SET ai_provider = $2, ai_base_url = $3, ai_model = $4,
                ai_api_key_ct = CASE WHEN $5 THEN $6 ELSE ai_api_key_ct END,
                ai_key_id = CASE WHEN $5 THEN $7 ELSE ai_key_id END,
                updated_at = now()
         WHERE agency_id = $1",
        agency,
        v.provider,
        v.base_url,
        v.model,
        set_key,
        ct,
        key_id,
    )
    .execute(&mut *tx)
    .await?;
    let key = match v.key {
        KeyChange::Keep => "kept",
        KeyChange::Set(_) => "replaced",
        KeyChange::Remove => "removed",
    };
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "settings.ai")
            .target("agency", agency)
            .details(serde_json::json!({ "provider": v.provider, "base_url": v.base_url, "model": v.model, "api_key": key })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("ai"))
}

// ---------------------------------------------------------------------------------------------
// Limit overrides
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct LimitForm {
    #[serde(default)]
    platform: String,
    #[serde(default)]
    window_seconds: String,
    #[serde(default)]
    max_posts: String,
}

const MAX_OVERRIDE: i32 = 1_000_000;

pub async fn save_limit(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Form(f): Form<LimitForm>,
) -> AppResult<Response> {
    let platform = Platform::from_str(&f.platform).ok();
    let window = f.window_seconds.trim().parse::<i32>().ok();
    // only the windows the platform defaults define can be overridden
    let exists = match (platform, window) {
        (Some(p), Some(w)) => sqlx::query_scalar!(
            r#"SELECT true AS "exists!" FROM platform_limits WHERE platform = $1 AND window_seconds = $2"#,
            p.as_str(),
            w
        )
        .fetch_optional(&state.pool)
        .await?
        .is_some(),
        _ => false,
    };
    let (Some(platform), Some(window), true) = (platform, window, exists) else {
        let flash = Flash::error(
            "limit",
            "There is no such platform limit to override; reload the page.",
        );
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    let field = format!("limit-{platform}-{window}");
    let typed = f.max_posts.trim();
    let max_posts = if typed.is_empty() {
        None
    } else {
        match typed.parse::<i32>() {
            Ok(n) if (1..=MAX_OVERRIDE).contains(&n) => Some(n),
            _ => {
                let flash = Flash::error(
                    &field,
                    format!("Enter a whole number from 1 to {MAX_OVERRIDE}, or leave it empty for the default."),
                )
                .value(&field, typed);
                return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
            }
        }
    };
    let mut tx = state.pool.begin().await?;
    match max_posts {
        Some(n) => {
            sqlx::query!(
                "INSERT INTO platform_limit_overrides (agency_id, platform, window_seconds, max_posts) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (agency_id, platform, window_seconds) DO UPDATE SET max_posts = EXCLUDED.max_posts",
                user.agency_id,
                platform.as_str(),
                window,
                n
            )
            .execute(&mut *tx)
            .await?;
        }
        None => {
            sqlx::query!(
                "DELETE FROM platform_limit_overrides WHERE agency_id = $1 AND platform = $2 AND window_seconds = $3",
                user.agency_id,
                platform.as_str(),
                window
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "settings.limit")
            .target("platform_limit", format!("{platform}/{window}"))
            .details(serde_json::json!({ "platform": platform, "window_seconds": window, "max_posts": max_posts })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("limits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ai(provider: &str, url: &str, model: &str, key: &str, clear: bool) -> AiForm {
        AiForm {
            ai_provider: provider.into(),
            ai_base_url: url.into(),
            ai_model: model.into(),
            ai_api_key: key.into(),
            ai_clear_key: clear.then(|| "yes".into()),
        }
    }

    #[test]
    fn ai_settings_are_validated_per_field() {
        let e = ai("openai", "", "", "", false).validate().err().unwrap();
        assert!(e.contains_key("ai-base-url") && e.contains_key("ai-model"));
        let e = ai("openai", "https://u:p@x.test/v1", "m", "", false)
            .validate()
            .err()
            .unwrap();
        assert!(e["ai-base-url"].contains("no credentials"));
        let e = ai("template", "", "", "k", true).validate().err().unwrap();
        assert!(e.contains_key("ai-key"));
        let ok = ai(
            "openai",
            "https://api.groq.com/openai/v1/",
            "llama",
            "gsk_1",
            false,
        )
        .validate()
        .ok()
        .unwrap();
        assert_eq!(
            ok.base_url.as_deref(),
            Some("https://api.groq.com/openai/v1")
        );
        assert!(matches!(ok.key, KeyChange::Set(ref k) if k == "gsk_1"));
    }

    #[test]
    fn windows_and_emails_read_well() {
        assert_eq!(window_label(900), "15 min");
        assert_eq!(window_label(86_400), "24 h");
        assert_eq!(window_label(3600), "1 h");
        assert!(valid_email("a@b.test"));
        assert!(!valid_email("a b@c.test"));
        assert!(!valid_email("nobody"));
    }
}
