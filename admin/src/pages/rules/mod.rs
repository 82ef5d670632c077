//! A client's content rules: when and where posts are planned. Viewers see the rules and the
//! coming week's slots; admins create, edit and delete them.
//!
//! The slot preview is the planner's own computation: the rule's candidate slots come from
//! `core::content::slots` (its wall-clock times in the client's zone on its weekdays, through
//! daylight-saving changes), then `core::content::schedule::place` places them against the
//! client's other enabled rules so that no account gets two posts closer than the gap. Each slot
//! is shown in the client's zone, named, with UTC beside it.
//!
//! Saving a rule enqueues the client's plan job, so new slots are planned (and generated) now
//! rather than at the next nightly run; future items the rule no longer wants that were not
//! generated yet are cancelled.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::audit::{self, Entry};
use autosocial_core::content::brand::{self as core_brand, Client};
use autosocial_core::content::generate::{PLAN_DAYS, plan_job};
use autosocial_core::content::schedule::{self, Frequency, RuleSpec};
use autosocial_core::content::slots;
use autosocial_core::domain::{AccountStatus, Platform, Role};
use autosocial_core::queue;

use crate::app::AppState;
use crate::auth::{AdminRole, CurrentUser, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path, Query};
use crate::pages::brand::client_of;
use crate::pages::client_tabs;
use crate::pages::layout::{Htmx, Nav, respond};
use crate::pages::relative;

pub type FieldErrors = BTreeMap<&'static str, String>;

const WEEKDAYS: [(u8, &str); 7] = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (7, "Sunday"),
];
pub(crate) const CONTENT_TYPES: [(&str, &str); 3] =
    [("text", "Text"), ("image", "Image card"), ("link", "Link")];
/// More times than this in a day is not a posting plan.
const MAX_TIMES: usize = 24;

mod form;
mod load;
mod preview;

pub use form::*;
use load::*;
pub(crate) use load::{AccountRow, RuleRow, accounts_of, rules_of};
pub use preview::*;

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

fn rule_summary(r: &RuleRow) -> String {
    let per = if r.frequency == "per_week" {
        "week"
    } else {
        "day"
    };
    let days: Vec<&str> = WEEKDAYS
        .iter()
        .filter(|(n, _)| r.days_of_week.contains(&i16::from(*n)))
        .map(|(_, name)| &name[..3])
        .collect();
    let times: Vec<String> = r
        .local_times
        .iter()
        .map(|t| t.format("%H:%M").to_string())
        .collect();
    format!(
        "{} post{} a {per} · {} · {} · {} min apart at least",
        r.posts_per_period,
        if r.posts_per_period == 1 { "" } else { "s" },
        days.join(" "),
        times.join(", "),
        r.min_gap_minutes
    )
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    saved: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let tz = client.timezone;
    let now = Utc::now();
    let (from, from_error) = match preview_from(tz, &q.from, now) {
        Ok(f) => (f, None),
        Err(e) => (now, Some(e)),
    };
    let rules = rules_of(&state, user.agency_id, id, None).await?;
    let enabled = core_brand::rules(&state.pool, &client).await?;
    let accounts = accounts_of(&state, user.agency_id, id).await?;
    let can_manage = user.role.allows(Role::Admin);
    let account_name = |a: &Uuid| {
        accounts
            .iter()
            .find(|x| x.id == *a)
            .map(|x| format!("{} · {}", x.platform.label(), x.display_name))
            .unwrap_or_else(|| "removed account".into())
    };
    let next_week = (schedule::local_date(tz, from) + chrono::Days::new(7)).format("%Y-%m-%d");
    let notice = match q.saved.as_deref() {
        Some("saved") => Some("Rule saved. The client's coming week is being planned."),
        Some("deleted") => Some("Rule deleted."),
        _ => None,
    };
    let body = html! {
        h1 { (client.name) ": content rules" }
        (client_tabs::nav(id, client_tabs::Tab::Rules))
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        p {
            "Times are wall-clock times in the client's timezone, " strong { (tz.name()) } "."
            @if can_manage { " " a href={ "/clients/" (id) "/edit" } { "Change the timezone" } }
        }
        form.toolbar method="get" action={ "/clients/" (id) "/rules" } {
            div {
                label for="from" { "Preview the week from" }
                input #from type="date" name="from" value=(schedule::local_date(tz, from).format("%Y-%m-%d"))
                    aria-invalid=[from_error.as_ref().map(|_| "true")] aria-describedby=[from_error.as_ref().map(|_| "from-error")];
                @if let Some(e) = &from_error { p.field-error #from-error { (e) } }
            }
            button.secondary type="submit" { "Show" }
            a.button.secondary href={ "/clients/" (id) "/rules?from=" (next_week) } { "Next week" }
            @if can_manage { a.button href={ "/clients/" (id) "/rules/new" } { "New rule" } }
        }
        @if rules.is_empty() {
            p.empty { "No rules yet: nothing is planned for this client." }
        }
        @for r in &rules {
            section.card.rule aria-labelledby={ "rule-" (r.id) } {
                h2 id={ "rule-" (r.id) } {
                    (r.name) " "
                    @if r.enabled { span.badge.active { "Enabled" } } @else { span.badge.paused { "Disabled" } }
                }
                p { (rule_summary(r)) }
                p.hint {
                    "Content: " (r.content_types.join(", ")) " · Accounts: "
                    @if r.account_ids.is_empty() { "none" } @else {
                        (r.account_ids.iter().map(account_name).collect::<Vec<_>>().join(", "))
                    }
                }
                @if let Some(spec) = r.spec() {
                    @if r.enabled {
                        @let others: Vec<core_brand::Rule> = enabled.iter().filter(|o| o.id != r.id).cloned().collect();
                        @let active: Vec<Uuid> = enabled.iter().find(|o| o.id == r.id).map(|o| o.accounts.iter().map(|a| a.id).collect()).unwrap_or_default();
                        details open {
                            summary { "Slots" }
                            (preview_section(&client, preview_list(&preview(tz, &spec, &active, &others, from), tz, now, active.is_empty()), from))
                        }
                    }
                }
                @if can_manage {
                    div.actions {
                        a.button.secondary href={ "/clients/" (id) "/rules/" (r.id) "/edit" } { "Edit" }
                        form method="post" action={ "/clients/" (id) "/rules/" (r.id) "/delete" } {
                            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                            button.danger type="submit" { "Delete" }
                        }
                    }
                }
            }
        }
    };
    let mut r = respond(
        htmx,
        &user,
        &format!("{}: rules", client.name),
        Nav::Clients,
        body,
    );
    // a preview date that cannot be used is refused with its field's message
    if from_error.is_some() {
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

fn field_error(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(e) = errors.get(field) {
            p.field-error id={ (field) "-error" } { (e) }
        }
    }
}

fn invalid(errors: &FieldErrors, field: &str) -> Option<&'static str> {
    errors.contains_key(field).then_some("true")
}

fn described(errors: &FieldErrors, field: &str) -> Option<String> {
    errors.contains_key(field).then(|| format!("{field}-error"))
}

struct FormPage<'a> {
    client: &'a Client,
    /// `None` for a new rule.
    rule: Option<Uuid>,
    form: &'a RuleForm,
    errors: &'a FieldErrors,
    accounts: &'a [AccountRow],
    preview: Markup,
}

fn rule_form(user: &CurrentUser, p: &FormPage<'_>) -> Markup {
    let id = p.client.id;
    let (errors, f) = (p.errors, p.form);
    let action = match p.rule {
        Some(r) => format!("/clients/{id}/rules/{r}"),
        None => format!("/clients/{id}/rules"),
    };
    html! {
        @if !errors.is_empty() {
            p.alert role="alert" { "Nothing was saved: please correct the fields marked below." }
        }
        form.card method="post" action=(action) novalidate
            data-hx-post={ "/clients/" (id) "/rules/preview" } data-hx-trigger="input changed delay:500ms"
            data-hx-target="#rule-preview" data-hx-swap="innerHTML" {
            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
            @if let Some(r) = p.rule { input type="hidden" name="rule" value=(r); }
            label for="name" { "Name" }
            input #name type="text" name="name" value=(f.name) maxlength="200" required
                aria-invalid=[invalid(errors, "name")] aria-describedby=[described(errors, "name")];
            (field_error(errors, "name"))
            div.checkbox {
                input #enabled type="checkbox" name="enabled" value="on" checked[f.enabled];
                label for="enabled" { "Enabled (plan posts from this rule)" }
            }
            fieldset aria-describedby=[described(errors, "accounts")] {
                legend { "Accounts" }
                @if p.accounts.is_empty() {
                    p.hint { "The client has no connected account yet; choose them once onboarding is done." }
                }
                @for a in p.accounts {
                    div.checkbox {
                        input id={ "account-" (a.id) } type="checkbox" name="accounts" value=(a.id)
                            checked[f.accounts.contains(&a.id.to_string())];
                        label for={ "account-" (a.id) } {
                            (a.platform.label()) " · " (a.display_name)
                            @if a.status != AccountStatus::Active { " (" (a.status.label()) ": gets no posts until active)" }
                        }
                    }
                }
                (field_error(errors, "accounts"))
            }
            fieldset aria-describedby=[described(errors, "frequency")] {
                legend { "Frequency" }
                @for (value, label) in [("per_day", "Per day"), ("per_week", "Per week")] {
                    div.checkbox {
                        input id={ "frequency-" (value) } type="radio" name="frequency" value=(value) checked[f.frequency == value];
                        label for={ "frequency-" (value) } { (label) }
                    }
                }
                (field_error(errors, "frequency"))
            }
            label for="posts" { "Posts per period" }
            input #posts type="number" name="posts" value=(f.posts) min="1" max="50" step="1" inputmode="numeric"
                aria-invalid=[invalid(errors, "posts")] aria-describedby=[described(errors, "posts")];
            (field_error(errors, "posts"))
            fieldset aria-describedby=[described(errors, "days")] {
                legend { "Days of the week" }
                div.days {
                    @for (n, name) in WEEKDAYS {
                        div.checkbox {
                            input id={ "day-" (n) } type="checkbox" name="days" value=(n) checked[f.days.contains(&n.to_string())];
                            label for={ "day-" (n) } { (name) }
                        }
                    }
                }
                (field_error(errors, "days"))
            }
            label for="times" { "Times (" (p.client.timezone.name()) ")" }
            input #times type="text" name="times" value=(f.times) autocomplete="off"
                aria-invalid=[invalid(errors, "times")] aria-describedby={ "times-hint" @if errors.contains_key("times") { " times-error" } };
            p.hint #times-hint { "One or more 24-hour times separated by commas, like 09:00, 17:30 — wall-clock times in " (p.client.timezone.name()) ", kept across daylight-saving changes." }
            (field_error(errors, "times"))
            fieldset aria-describedby=[described(errors, "content_types")] {
                legend { "Content types" }
                @for (value, label) in CONTENT_TYPES {
                    div.checkbox {
                        input id={ "ct-" (value) } type="checkbox" name="content_types" value=(value)
                            checked[f.content_types.iter().any(|c| c == value)];
                        label for={ "ct-" (value) } { (label) }
                    }
                }
                (field_error(errors, "content_types"))
            }
            label for="min_gap" { "Minimum gap between posts on one account (minutes)" }
            input #min_gap type="number" name="min_gap" value=(f.min_gap) min="0" max="10080" step="1" inputmode="numeric"
                aria-invalid=[invalid(errors, "min_gap")] aria-describedby=[described(errors, "min_gap")];
            (field_error(errors, "min_gap"))
            div.actions {
                button type="submit" { @if p.rule.is_some() { "Save rule" } @else { "Create rule" } }
                a href={ "/clients/" (id) "/rules" } { "Cancel" }
            }
        }
        section.card aria-labelledby="rule-preview-heading" {
            h2 #rule-preview-heading { "The next seven days" }
            div #rule-preview aria-live="polite" { (p.preview) }
        }
    }
}

/// The preview of a form's values (or why there is none).
async fn form_preview(
    state: &AppState,
    client: &Client,
    rule: Option<Uuid>,
    f: &RuleForm,
    accounts: &[AccountRow],
) -> AppResult<Markup> {
    let now = Utc::now();
    let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
    let from = match preview_from(client.timezone, &f.from, now) {
        Ok(from) => from,
        Err(e) => return Ok(html! { p.field-error { (e) } }),
    };
    match f.validate(&ids) {
        Ok(v) => {
            let others: Vec<core_brand::Rule> = core_brand::rules(&state.pool, client)
                .await?
                .into_iter()
                .filter(|o| Some(o.id) != rule)
                .collect();
            // only active accounts get posts (like the planner)
            let active: Vec<Uuid> = v
                .accounts
                .iter()
                .copied()
                .filter(|a| {
                    accounts
                        .iter()
                        .any(|x| x.id == *a && x.status == AccountStatus::Active)
                })
                .collect();
            let slots = preview(client.timezone, &v.spec, &active, &others, from);
            Ok(preview_section(
                client,
                html! {
                    @if !v.enabled { p.hint { "The rule is disabled: nothing is planned until it is enabled." } }
                    (preview_list(&slots, client.timezone, now, active.is_empty()))
                },
                from,
            ))
        }
        Err(errors) => Ok(html! {
            p.hint { "Correct the form to see its slots:" }
            ul { @for e in errors.values() { li { (e) } } }
        }),
    }
}

async fn form_page(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    client: &Client,
    rule: Option<Uuid>,
    f: &RuleForm,
    errors: &FieldErrors,
) -> AppResult<Response> {
    let accounts = accounts_of(state, user.agency_id, client.id).await?;
    let preview = form_preview(state, client, rule, f, &accounts).await?;
    let title = if rule.is_some() {
        "Edit rule"
    } else {
        "New rule"
    };
    let body = html! {
        h1 { (client.name) ": " (title.to_lowercase()) }
        (client_tabs::nav(client.id, client_tabs::Tab::Rules))
        (rule_form(user, &FormPage { client, rule, form: f, errors, accounts: &accounts, preview }))
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, respond(htmx, user, title, Nav::Clients, body)).into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let mut f = RuleForm::blank();
    // a new rule posts to the client's connected accounts unless told otherwise
    f.accounts = accounts_of(&state, user.agency_id, id)
        .await?
        .iter()
        .filter(|a| a.status == AccountStatus::Active)
        .map(|a| a.id.to_string())
        .collect();
    form_page(&state, &user, htmx, &client, None, &f, &FieldErrors::new()).await
}

pub async fn edit_form(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path((id, rule)): Path<(Uuid, Uuid)>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let r = rule_of(&state, user.agency_id, id, rule).await?;
    form_page(
        &state,
        &user,
        htmx,
        &client,
        Some(rule),
        &RuleForm::from_rule(&r),
        &FieldErrors::new(),
    )
    .await
}

/// The live preview of the form (htmx, on input).
pub async fn preview_fragment(
    State(state): State<AppState>,
    user: Viewer,
    Path(id): Path<Uuid>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let rule = pairs
        .iter()
        .find(|(k, _)| k == "rule")
        .and_then(|(_, v)| v.parse::<Uuid>().ok());
    let f = RuleForm::from_pairs(&pairs);
    let accounts = accounts_of(&state, user.agency_id, id).await?;
    Ok(form_preview(&state, &client, rule, &f, &accounts)
        .await?
        .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    save(
        &state,
        &user,
        htmx,
        &client,
        None,
        &RuleForm::from_pairs(&pairs),
    )
    .await
}

pub async fn update(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path((id, rule)): Path<(Uuid, Uuid)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    rule_of(&state, user.agency_id, id, rule).await?;
    save(
        &state,
        &user,
        htmx,
        &client,
        Some(rule),
        &RuleForm::from_pairs(&pairs),
    )
    .await
}

async fn save(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    client: &Client,
    rule: Option<Uuid>,
    f: &RuleForm,
) -> AppResult<Response> {
    let accounts: Vec<Uuid> = accounts_of(state, user.agency_id, client.id)
        .await?
        .iter()
        .map(|a| a.id)
        .collect();
    let v = match f.validate(&accounts) {
        Ok(v) => v,
        Err(errors) => return form_page(state, user, htmx, client, rule, f, &errors).await,
    };
    let mut tx = state.pool.begin().await?;
    save_rule(&mut tx, &user.actor(), client, rule, &v).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{}/rules?saved=saved", client.id)).into_response())
}

/// Save a checked rule of `client` (a new one when `rule` is `None`) and audit it, in the
/// caller's transaction: future items the rule no longer wants that were not generated yet are
/// cancelled, and the client's plan job is enqueued. The console's form and the API's PATCH both
/// end here. Returns the rule's id.
pub(crate) async fn save_rule(
    conn: &mut sqlx::PgConnection,
    actor: &autosocial_core::audit::Actor,
    client: &Client,
    rule: Option<Uuid>,
    v: &ValidRule,
) -> AppResult<Uuid> {
    let days: Vec<i16> = v.spec.days_of_week.iter().map(|d| i16::from(*d)).collect();
    let frequency = match v.spec.frequency {
        Frequency::PerDay => "per_day",
        Frequency::PerWeek => "per_week",
    };
    let id = match rule {
        Some(rule) => {
            let r = sqlx::query!(
                "UPDATE content_rules SET name = $3, enabled = $4, frequency = $5, posts_per_period = $6, days_of_week = $7,
                        local_times = $8, content_types = $9, min_gap_minutes = $10, updated_at = now()
                 WHERE id = $1 AND agency_id = $2 AND client_id = $11",
                rule,
                client.agency_id,
                v.name,
                v.enabled,
                frequency,
                v.spec.posts_per_period as i32,
                &days,
                &v.spec.local_times,
                &v.content_types,
                v.spec.min_gap_minutes as i32,
                client.id,
            )
            .execute(&mut *conn)
            .await?;
            if r.rows_affected() == 0 {
                return Err(AppError::NotFound);
            }
            sqlx::query!(
                "DELETE FROM content_rule_accounts WHERE rule_id = $1 AND agency_id = $2",
                rule,
                client.agency_id
            )
            .execute(&mut *conn)
            .await?;
            rule
        }
        None => {
            let rule = Uuid::now_v7();
            sqlx::query!(
                "INSERT INTO content_rules (id, agency_id, client_id, name, enabled, frequency, posts_per_period, days_of_week,
                                            local_times, content_types, min_gap_minutes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                rule,
                client.agency_id,
                client.id,
                v.name,
                v.enabled,
                frequency,
                v.spec.posts_per_period as i32,
                &days,
                &v.spec.local_times,
                &v.content_types,
                v.spec.min_gap_minutes as i32,
            )
            .execute(&mut *conn)
            .await?;
            rule
        }
    };
    sqlx::query!(
        "INSERT INTO content_rule_accounts (rule_id, account_id, agency_id)
         SELECT $1, a.id, $2 FROM social_accounts a WHERE a.id = ANY($3) AND a.agency_id = $2 AND a.client_id = $4",
        id,
        client.agency_id,
        &v.accounts,
        client.id
    )
    .execute(&mut *conn)
    .await?;
    let now = Utc::now();
    let wanted = if v.enabled {
        // the planner's window, with a day's margin for the zone
        schedule::slots(&v.spec, client.timezone, now, PLAN_DAYS + 1)
    } else {
        Vec::new()
    };
    let cancelled = if rule.is_some() {
        autosocial_core::items::drop_planned(&mut *conn, client.agency_id, id, &wanted).await?
    } else {
        0
    };
    let job = queue::enqueue(
        &mut *conn,
        &plan_job(client.agency_id, client.id, client.timezone, now),
    )
    .await?;
    audit::append(
        &mut *conn,
        actor,
        Entry::new(Some(client.agency_id), if rule.is_some() { "rule.update" } else { "rule.create" })
            .target("content_rule", id)
            .details(serde_json::json!({
                "client_id": client.id, "name": v.name, "enabled": v.enabled, "frequency": frequency,
                "posts_per_period": v.spec.posts_per_period, "days_of_week": v.spec.days_of_week,
                "local_times": v.spec.local_times.iter().map(|t| t.format("%H:%M").to_string()).collect::<Vec<_>>(),
                "content_types": v.content_types, "min_gap_minutes": v.spec.min_gap_minutes,
                "accounts": v.accounts, "cancelled_items": cancelled, "plan_job": job.id(),
            })),
    )
    .await?;
    Ok(id)
}

pub async fn delete(
    State(state): State<AppState>,
    user: AdminRole,
    Path((id, rule)): Path<(Uuid, Uuid)>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let r = rule_of(&state, user.agency_id, id, rule).await?;
    let mut tx = state.pool.begin().await?;
    let cancelled =
        autosocial_core::items::drop_planned(&mut *tx, user.agency_id, rule, &[]).await?;
    let deleted = sqlx::query!(
        "DELETE FROM content_rules WHERE id = $1 AND agency_id = $2 AND client_id = $3",
        rule,
        user.agency_id,
        client.id
    )
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(AppError::NotFound);
    }
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "rule.delete")
            .target("content_rule", rule)
            .details(serde_json::json!({ "client_id": client.id, "name": r.name, "cancelled_items": cancelled })),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{id}/rules?saved=deleted")).into_response())
}
