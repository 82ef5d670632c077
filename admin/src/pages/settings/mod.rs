//! Agency settings: members and roles, the agency's own platform apps, the AI provider,
//! per-platform limit overrides, and keys for the JSON API. Admins may look; only owners change
//! anything, except API keys, which admins create and revoke too. Every change is audited.
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

        h2 #api { "API keys" }
        p { "Your agency's own tools reach its clients and posts through the JSON API with a key. "
            a href="/settings/api-keys" { "Manage API keys" } }

        h2 #webhooks { "Webhooks" }
        p { "Signed notifications to your own tools when posts, accounts and kill switches change. "
            a href="/settings/webhooks" { "Manage webhooks" } }

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

mod ai;
mod api_keys;
mod apps;
mod limits;
mod members;
mod webhooks;

pub use ai::*;
pub use api_keys::*;
pub use apps::*;
pub use limits::*;
pub use members::*;
pub use webhooks::*;

#[cfg(test)]
mod tests {
    use super::members::valid_email;
    use super::window_label;

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
