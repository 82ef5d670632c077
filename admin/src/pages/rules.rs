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
const CONTENT_TYPES: [(&str, &str); 3] =
    [("text", "Text"), ("image", "Image card"), ("link", "Link")];
/// More times than this in a day is not a posting plan.
const MAX_TIMES: usize = 24;

// ---------------------------------------------------------------------------------------------
// The form
// ---------------------------------------------------------------------------------------------

/// The rule form as typed. Checkbox groups repeat their name, so the body is read as pairs.
#[derive(Debug, Clone, Default)]
pub struct RuleForm {
    pub name: String,
    pub enabled: bool,
    pub accounts: Vec<String>,
    pub frequency: String,
    pub posts: String,
    pub days: Vec<String>,
    pub times: String,
    pub content_types: Vec<String>,
    pub min_gap: String,
    /// The local date the preview starts on (not saved).
    pub from: String,
}

impl RuleForm {
    pub fn from_pairs(pairs: &[(String, String)]) -> RuleForm {
        let mut f = RuleForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "name" => f.name = v.clone(),
                "enabled" => f.enabled = true,
                "accounts" => f.accounts.push(v.clone()),
                "frequency" => f.frequency = v.clone(),
                "posts" => f.posts = v.clone(),
                "days" => f.days.push(v.clone()),
                "times" => f.times = v.clone(),
                "content_types" => f.content_types.push(v.clone()),
                "min_gap" => f.min_gap = v.clone(),
                "from" => f.from = v.clone(),
                _ => {}
            }
        }
        f
    }

    fn from_rule(r: &RuleRow) -> RuleForm {
        RuleForm {
            name: r.name.clone(),
            enabled: r.enabled,
            accounts: r.account_ids.iter().map(Uuid::to_string).collect(),
            frequency: r.frequency.clone(),
            posts: r.posts_per_period.to_string(),
            days: r.days_of_week.iter().map(i16::to_string).collect(),
            times: r
                .local_times
                .iter()
                .map(|t| t.format("%H:%M").to_string())
                .collect::<Vec<_>>()
                .join(", "),
            content_types: r.content_types.clone(),
            min_gap: r.min_gap_minutes.to_string(),
            from: String::new(),
        }
    }

    fn blank() -> RuleForm {
        RuleForm {
            enabled: true,
            frequency: "per_day".into(),
            posts: "1".into(),
            days: (1..=5).map(|d: u8| d.to_string()).collect(),
            times: "09:00".into(),
            content_types: vec!["text".into(), "image".into()],
            min_gap: "60".into(),
            ..RuleForm::default()
        }
    }

    /// Check every field; `accounts` are the client's accounts (a checked id that is not one of
    /// them is refused).
    pub fn validate(&self, accounts: &[Uuid]) -> Result<ValidRule, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            errors.insert(
                "name",
                "Give the rule a name, like “Weekday mornings”.".into(),
            );
        } else if name.chars().count() > 200 {
            errors.insert("name", "Use at most 200 characters.".into());
        } else if name.chars().any(char::is_control) {
            errors.insert("name", "Keep the name on one line.".into());
        }
        let frequency = match self.frequency.parse::<Frequency>() {
            Ok(f) => Some(f),
            Err(_) => {
                errors.insert("frequency", "Choose per day or per week.".into());
                None
            }
        };
        let posts = match self.posts.trim().parse::<u32>() {
            Ok(n) if (1..=50).contains(&n) => Some(n),
            Ok(0) => {
                errors.insert("posts", "Post at least once per period.".into());
                None
            }
            _ => {
                errors.insert("posts", "Enter a whole number from 1 to 50.".into());
                None
            }
        };
        let mut days: Vec<u8> = Vec::new();
        for d in &self.days {
            match d.parse::<u8>() {
                Ok(d) if (1..=7).contains(&d) => {
                    if !days.contains(&d) {
                        days.push(d);
                    }
                }
                _ => {
                    errors.insert("days", "Choose days from the list.".into());
                }
            }
        }
        days.sort_unstable();
        if days.is_empty() && !errors.contains_key("days") {
            errors.insert("days", "Choose at least one day of the week.".into());
        }
        let times = match parse_times(&self.times) {
            Ok(t) => t,
            Err(e) => {
                errors.insert("times", e);
                Vec::new()
            }
        };
        let mut content_types: Vec<String> = Vec::new();
        for c in &self.content_types {
            if CONTENT_TYPES.iter().any(|(k, _)| k == c) {
                if !content_types.contains(c) {
                    content_types.push(c.clone());
                }
            } else {
                errors.insert(
                    "content_types",
                    "Choose content types from the list.".into(),
                );
            }
        }
        if content_types.is_empty() && !errors.contains_key("content_types") {
            errors.insert("content_types", "Choose at least one content type.".into());
        }
        let min_gap = match self.min_gap.trim().parse::<u32>() {
            Ok(n) if n <= 10_080 => Some(n),
            _ => {
                errors.insert(
                    "min_gap",
                    "Enter minutes from 0 to 10080 (one week).".into(),
                );
                None
            }
        };
        let mut chosen: Vec<Uuid> = Vec::new();
        for a in &self.accounts {
            match a.parse::<Uuid>() {
                Ok(id) if accounts.contains(&id) => {
                    if !chosen.contains(&id) {
                        chosen.push(id);
                    }
                }
                _ => {
                    errors.insert(
                        "accounts",
                        "Choose accounts of this client from the list.".into(),
                    );
                }
            }
        }
        // asking for more posts than there are times to put them at would silently post less
        if let (Some(f), Some(n)) = (frequency, posts)
            && !times.is_empty()
            && !days.is_empty()
        {
            let capacity = match f {
                Frequency::PerDay => times.len(),
                Frequency::PerWeek => times.len() * days.len(),
            };
            if n as usize > capacity {
                errors.insert(
                    "posts",
                    match f {
                        Frequency::PerDay => format!(
                            "{n} posts a day need at least {n} times; {} given.",
                            times.len()
                        ),
                        Frequency::PerWeek => format!(
                            "{n} posts a week need {n} day-and-time pairs; these days and times give {capacity}."
                        ),
                    },
                );
            }
        }
        match (frequency, posts, min_gap) {
            (Some(frequency), Some(posts_per_period), Some(min_gap_minutes))
                if errors.is_empty() =>
            {
                Ok(ValidRule {
                    name,
                    enabled: self.enabled,
                    accounts: chosen,
                    spec: RuleSpec {
                        frequency,
                        posts_per_period,
                        days_of_week: days,
                        local_times: times,
                        min_gap_minutes,
                    },
                    content_types,
                })
            }
            _ => Err(errors),
        }
    }
}

/// One or more `HH:MM` times (24-hour), separated by commas or spaces; sorted, duplicates
/// dropped.
pub fn parse_times(text: &str) -> Result<Vec<NaiveTime>, String> {
    let mut out = Vec::new();
    for part in text.split(|c: char| c == ',' || c.is_whitespace()) {
        if part.is_empty() {
            continue;
        }
        let t = NaiveTime::parse_from_str(part, "%H:%M").map_err(|_| {
            format!("“{part}” is not a time: write 24-hour HH:MM, like 09:00 or 17:30.")
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err("Give at least one time, like 09:00.".into());
    }
    if out.len() > MAX_TIMES {
        return Err(format!("At most {MAX_TIMES} times a day."));
    }
    out.sort();
    Ok(out)
}

/// A rule form that passed validation.
#[derive(Debug, Clone)]
pub struct ValidRule {
    pub name: String,
    pub enabled: bool,
    pub accounts: Vec<Uuid>,
    pub spec: RuleSpec,
    pub content_types: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

struct RuleRow {
    id: Uuid,
    name: String,
    enabled: bool,
    frequency: String,
    posts_per_period: i32,
    days_of_week: Vec<i16>,
    local_times: Vec<NaiveTime>,
    content_types: Vec<String>,
    min_gap_minutes: i32,
    account_ids: Vec<Uuid>,
}

impl RuleRow {
    fn spec(&self) -> Option<RuleSpec> {
        Some(RuleSpec {
            frequency: self.frequency.parse().ok()?,
            posts_per_period: u32::try_from(self.posts_per_period).ok()?,
            days_of_week: self.days_of_week.iter().map(|d| *d as u8).collect(),
            local_times: self.local_times.clone(),
            min_gap_minutes: u32::try_from(self.min_gap_minutes).ok()?,
        })
    }
}

async fn rules_of(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    only: Option<Uuid>,
) -> AppResult<Vec<RuleRow>> {
    Ok(sqlx::query_as!(
        RuleRow,
        r#"SELECT r.id, r.name, r.enabled, r.frequency, r.posts_per_period, r.days_of_week, r.local_times,
                  r.content_types, r.min_gap_minutes,
                  coalesce(array_agg(ra.account_id ORDER BY ra.account_id) FILTER (WHERE ra.account_id IS NOT NULL), '{}')
                      AS "account_ids!: Vec<Uuid>"
           FROM content_rules r
           LEFT JOIN content_rule_accounts ra ON ra.rule_id = r.id AND ra.agency_id = r.agency_id
           WHERE r.client_id = $1 AND r.agency_id = $2 AND ($3::uuid IS NULL OR r.id = $3)
           GROUP BY r.id
           ORDER BY lower(r.name), r.id"#,
        client,
        agency,
        only
    )
    .fetch_all(&state.pool)
    .await?)
}

async fn rule_of(state: &AppState, agency: Uuid, client: Uuid, rule: Uuid) -> AppResult<RuleRow> {
    rules_of(state, agency, client, Some(rule))
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)
}

struct AccountRow {
    id: Uuid,
    platform: Platform,
    display_name: String,
    status: AccountStatus,
}

async fn accounts_of(state: &AppState, agency: Uuid, client: Uuid) -> AppResult<Vec<AccountRow>> {
    Ok(sqlx::query_as!(
        AccountRow,
        r#"SELECT id, platform AS "platform: Platform", display_name, status AS "status: AccountStatus"
           FROM social_accounts WHERE client_id = $1 AND agency_id = $2
           ORDER BY platform, display_name, id"#,
        client,
        agency
    )
    .fetch_all(&state.pool)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// The slot preview
// ---------------------------------------------------------------------------------------------

/// One previewed slot.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewSlot {
    /// The rule's own instant.
    pub nominal: DateTime<Utc>,
    /// Where it lands after keeping the gaps (`None`: dropped, with the reason).
    pub at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// The rule's slots over [`PLAN_DAYS`] local days from `from`, placed like the planner places
/// them: together with the client's other enabled rules (`others`), keeping every shared
/// account's gap.
pub fn preview(
    tz: Tz,
    rule: &RuleSpec,
    accounts: &[Uuid],
    others: &[core_brand::Rule],
    from: DateTime<Utc>,
) -> Vec<PreviewSlot> {
    // a placeholder id for the previewed rule (it may not exist yet)
    let me = Uuid::nil();
    // without accounts the rule's own gap still shows (as if it had one account)
    let accounts = if accounts.is_empty() {
        vec![Uuid::from_u128(u128::MAX)]
    } else {
        accounts.to_vec()
    };
    let mut candidates = slots::candidates(me, rule, &accounts, tz, from, PLAN_DAYS);
    for o in others {
        candidates.extend(
            slots::rule_slots(o, tz, from, PLAN_DAYS)
                .into_iter()
                .map(|s| s.candidate),
        );
    }
    let (placed, dropped) = schedule::place(tz, candidates, &[]);
    let mut out: Vec<PreviewSlot> = placed
        .into_iter()
        .filter(|p| p.rule_id == me)
        .map(|p| PreviewSlot {
            nominal: p.nominal,
            at: Some(p.at),
            reason: None,
        })
        .chain(
            dropped
                .into_iter()
                .filter(|d| d.rule_id == me)
                .map(|d| PreviewSlot {
                    nominal: d.nominal,
                    at: None,
                    reason: Some(d.reason),
                }),
        )
        .collect();
    out.sort_by_key(|s| s.nominal);
    out
}

/// "Sun 29 Mar 09:00 CEST".
fn local_label(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %d %b %H:%M %Z")
        .to_string()
}

fn utc_label(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn slot_time(at: DateTime<Utc>, tz: Tz) -> Markup {
    html! {
        time datetime=(crate::pages::html_datetime(&at)) title=(utc_label(at)) { (local_label(at, tz)) }
        " " span.utc { "(" (utc_label(at)) ")" }
    }
}

fn preview_list(slots: &[PreviewSlot], tz: Tz, now: DateTime<Utc>, idle: bool) -> Markup {
    html! {
        @if idle {
            p.hint { "No connected account is chosen: these slots are planned only once one is." }
        }
        @if slots.is_empty() {
            p.empty { "No slot in these seven days." }
        } @else {
            ol.slots {
                @for s in slots {
                    li {
                        @match s.at {
                            Some(at) => {
                                (slot_time(at, tz))
                                @if at >= now { " " span.hint { (relative(at, now)) } }
                                @if at != s.nominal {
                                    " " span.moved { "moved from " (local_label(s.nominal, tz)) " to keep the gap" }
                                }
                            }
                            None => {
                                del { (slot_time(s.nominal, tz)) }
                                " " span.moved { "dropped: " (s.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The preview's first instant: the start of a chosen local date, else now.
fn preview_from(tz: Tz, from: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let from = from.trim();
    if from.is_empty() {
        return Ok(now);
    }
    let date = NaiveDate::parse_from_str(from, "%Y-%m-%d").map_err(|_| {
        let shown: String = from.chars().take(40).collect();
        format!("“{shown}” is not a date (YYYY-MM-DD).")
    })?;
    let today = schedule::local_date(tz, now);
    if (date - today).num_days().abs() > 366 * 2 {
        return Err("Preview a week within two years of today.".into());
    }
    Ok(schedule::resolve_local(tz, date, NaiveTime::MIN))
}

fn preview_section(client: &Client, body: Markup, from: DateTime<Utc>) -> Markup {
    let tz = client.timezone;
    let start = schedule::local_date(tz, from);
    html! {
        p.hint {
            "Seven days from " (start.format("%a %d %b %Y")) ", in " strong { (tz.name()) }
            " (the client's timezone); UTC in brackets."
        }
        (body)
    }
}

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
    let days: Vec<i16> = v.spec.days_of_week.iter().map(|d| i16::from(*d)).collect();
    let frequency = match v.spec.frequency {
        Frequency::PerDay => "per_day",
        Frequency::PerWeek => "per_week",
    };
    let mut tx = state.pool.begin().await?;
    let id = match rule {
        Some(rule) => {
            let r = sqlx::query!(
                "UPDATE content_rules SET name = $3, enabled = $4, frequency = $5, posts_per_period = $6, days_of_week = $7,
                        local_times = $8, content_types = $9, min_gap_minutes = $10, updated_at = now()
                 WHERE id = $1 AND agency_id = $2 AND client_id = $11",
                rule,
                user.agency_id,
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
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Err(AppError::NotFound);
            }
            sqlx::query!(
                "DELETE FROM content_rule_accounts WHERE rule_id = $1 AND agency_id = $2",
                rule,
                user.agency_id
            )
            .execute(&mut *tx)
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
                user.agency_id,
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
            .execute(&mut *tx)
            .await?;
            rule
        }
    };
    sqlx::query!(
        "INSERT INTO content_rule_accounts (rule_id, account_id, agency_id)
         SELECT $1, a.id, $2 FROM social_accounts a WHERE a.id = ANY($3) AND a.agency_id = $2 AND a.client_id = $4",
        id,
        user.agency_id,
        &v.accounts,
        client.id
    )
    .execute(&mut *tx)
    .await?;
    let now = Utc::now();
    let wanted = if v.enabled {
        // the planner's window, with a day's margin for the zone
        schedule::slots(&v.spec, client.timezone, now, PLAN_DAYS + 1)
    } else {
        Vec::new()
    };
    let cancelled = if rule.is_some() {
        autosocial_core::items::drop_planned(&mut *tx, user.agency_id, id, &wanted).await?
    } else {
        0
    };
    let job = queue::enqueue(
        &mut tx,
        &plan_job(user.agency_id, client.id, client.timezone, now),
    )
    .await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), if rule.is_some() { "rule.update" } else { "rule.create" })
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
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{}/rules?saved=saved", client.id)).into_response())
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
