//! A client's detail tabs: the navigation shared by every tab, and the Accounts, Pipeline and Logs
//! tabs (Overview is `clients::show`; Calendar, Brand, Rules and Onboarding have their own
//! pages). Every query is scoped by the session's agency and the client; another agency's client
//! or account is a 404.

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::content::moderation;
use autosocial_core::domain::{AccountStatus, ItemState, Platform, Role};
use autosocial_core::publishing;

use crate::app::AppState;
use crate::auth::{AdminRole, CurrentUser, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Path, Query};
use crate::pages::layout::{Htmx, Nav, respond};
use crate::pages::{format_in_zone, live, relative};

/// Log rows per page.
const LOG_PAGE: i64 = 50;
/// Latest items shown per state in the pipeline.
const LATEST_PER_STATE: i64 = 5;
/// Characters of a post shown in a preview snippet.
const SNIPPET_CHARS: usize = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Accounts,
    Pipeline,
    Calendar,
    Logs,
    Brand,
    Rules,
    Onboarding,
}

impl Tab {
    const ALL: [Tab; 8] = [
        Tab::Overview,
        Tab::Accounts,
        Tab::Pipeline,
        Tab::Calendar,
        Tab::Logs,
        Tab::Brand,
        Tab::Rules,
        Tab::Onboarding,
    ];

    fn label(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Accounts => "Accounts",
            Tab::Pipeline => "Pipeline",
            Tab::Calendar => "Calendar",
            Tab::Logs => "Logs",
            Tab::Brand => "Brand",
            Tab::Rules => "Rules",
            Tab::Onboarding => "Onboarding",
        }
    }

    fn path(self, client: Uuid) -> String {
        match self {
            Tab::Overview => format!("/clients/{client}"),
            Tab::Accounts => format!("/clients/{client}/accounts"),
            Tab::Pipeline => format!("/clients/{client}/pipeline"),
            Tab::Calendar => format!("/clients/{client}/calendar"),
            Tab::Logs => format!("/clients/{client}/logs"),
            Tab::Brand => format!("/clients/{client}/brand"),
            Tab::Rules => format!("/clients/{client}/rules"),
            Tab::Onboarding => format!("/clients/{client}/onboarding"),
        }
    }
}

/// The tab bar of a client's pages (plain links: every tab is its own page and URL).
pub fn nav(client: Uuid, current: Tab) -> Markup {
    html! {
        nav.tabs aria-label="Client sections" {
            a href="/clients" { "← Clients" }
            @for t in Tab::ALL {
                a href=(t.path(client)) aria-current=[(t == current).then_some("page")] { (t.label()) }
            }
        }
    }
}

struct ClientHead {
    name: String,
    tz: Tz,
}

async fn client_head(state: &AppState, agency: Uuid, client: Uuid) -> AppResult<ClientHead> {
    let row = sqlx::query!(
        "SELECT name, timezone FROM clients WHERE id = $1 AND agency_id = $2",
        client,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(ClientHead {
        name: row.name,
        tz: Tz::from_str(&row.timezone).unwrap_or(chrono_tz::UTC),
    })
}

// ---------------------------------------------------------------------------------------------
// Accounts

struct AccountRow {
    id: Uuid,
    platform: Platform,
    display_name: String,
    account_kind: String,
    status: AccountStatus,
    status_reason: Option<String>,
    token_expires_at: Option<DateTime<Utc>>,
    connected_at: DateTime<Utc>,
    pending: i64,
    held: i64,
}

/// `GET /clients/{id}/accounts`
pub async fn accounts(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let c = client_head(&state, user.agency_id, id).await?;
    let rows = sqlx::query_as!(
        AccountRow,
        r#"SELECT a.id, a.platform AS "platform: Platform", a.display_name, a.account_kind,
                  a.status AS "status: AccountStatus", a.status_reason, a.token_expires_at, a.connected_at,
                  (SELECT count(*) FROM publications p WHERE p.account_id = a.id AND p.state = 'scheduled') AS "pending!",
                  (SELECT count(*) FROM publications p WHERE p.account_id = a.id AND p.state = 'held') AS "held!"
           FROM social_accounts a WHERE a.client_id = $1 AND a.agency_id = $2
           ORDER BY a.platform, a.display_name, a.id"#,
        id,
        user.agency_id
    )
    .fetch_all(&state.pool)
    .await?;
    let can_manage = user.role.allows(Role::Admin);
    let connectable = if can_manage {
        autosocial_core::platform_apps::connectable(&state.pool, &state.platforms, user.agency_id)
            .await?
    } else {
        Vec::new()
    };
    let now = Utc::now();
    let tz = c.tz;
    let body = html! {
        (nav(id, Tab::Accounts))
        h1 { "Accounts · " (c.name) }
        @if rows.is_empty() {
            p.empty { "No account connected yet. Send the client an onboarding link." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Platform" } th scope="col" { "Account" } th scope="col" { "Status" }
                    th scope="col" { "Token expires" } th scope="col" { "Posts waiting" } th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for a in &rows {
                        tr {
                            td { (a.platform.label()) }
                            td { (a.display_name) p.hint { (a.account_kind) " · connected " (relative(a.connected_at, now)) } }
                            td {
                                span class={ "badge account-" (a.status.as_str()) } { (a.status.label()) }
                                @if let Some(r) = &a.status_reason { p.hint { (r) } }
                            }
                            td {
                                @match a.token_expires_at {
                                    Some(t) => { (relative(t, now)) p.hint { (format_in_zone(t, tz)) } }
                                    None => "does not expire",
                                }
                            }
                            td { (a.pending) " scheduled" @if a.held > 0 { ", " (a.held) " held" } }
                            td {
                                @if can_manage {
                                    div.actions {
                                        @if a.status != AccountStatus::Active && connectable.contains(&a.platform) {
                                            form method="post" action={ "/clients/" (id) "/accounts/connect/" (a.platform.as_str()) } {
                                                input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                                button.secondary type="submit" { "Reconnect yourself" span.visually-hidden { " " (a.platform.label()) " " (a.display_name) } }
                                            }
                                        }
                                        @if a.status != AccountStatus::Disconnected {
                                            details.confirm {
                                                summary { "Disconnect…" span.visually-hidden { " " (a.platform.label()) " " (a.display_name) } }
                                                form method="post" action={ "/clients/" (id) "/accounts/" (a.id) "/disconnect" } {
                                                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                                    p { "Nothing is posted to this account any more. Its " (a.pending) " scheduled post(s) are held until it is reconnected." }
                                                    button.danger type="submit" { "Disconnect " (a.platform.label()) " " (a.display_name) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if can_manage {
            h2 { "Reconnect or add accounts" }
            p { "A fresh onboarding link lets the client connect (or reconnect) accounts themselves." }
            div.actions {
                form method="post" action={ "/clients/" (id) "/onboarding" } {
                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                    button type="submit" { "Create a fresh onboarding link" }
                }
                @for p in &connectable {
                    form method="post" action={ "/clients/" (id) "/accounts/connect/" (p.as_str()) } {
                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                        button.secondary type="submit" { "Connect " (p.label()) " yourself" }
                    }
                }
            }
        }
    };
    Ok(respond(
        htmx,
        &user,
        &format!("Accounts · {}", c.name),
        Nav::Clients,
        body,
    ))
}

/// `POST /clients/{id}/accounts/{account}/disconnect` (admin): the account stops posting; its
/// scheduled publications are held (not lost) with their jobs cancelled, and a reconnect
/// (onboarding or the console's connect flow) releases them. The encrypted tokens stay, so the
/// row keeps its history; nothing decrypts them while it is disconnected.
pub async fn disconnect(
    State(state): State<AppState>,
    user: AdminRole,
    Path((client, account)): Path<(Uuid, Uuid)>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    autosocial_core::accounts::disconnect(
        &mut tx,
        &user.actor(),
        user.agency_id,
        Some(client),
        account,
        &format!("in the console by {}", user.email),
    )
    .await?
    .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{client}/accounts")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Pipeline

struct Latest {
    id: Uuid,
    state: ItemState,
    slot_at: DateTime<Utc>,
    caption: String,
    hashtags: Vec<String>,
    cta: Option<String>,
    platforms: Vec<Platform>,
}

/// A platform's preview: the start of the text as it will be posted, and its length against
/// the platform's limit (X counts its own way).
pub fn preview(
    platform: Platform,
    caption: &str,
    cta: Option<&str>,
    tags: &[String],
) -> (String, usize, usize) {
    let text = publishing::compose_text(caption, cta, tags);
    let length = if platform == Platform::X {
        moderation::x_weighted_length(&text)
    } else {
        text.chars().count()
    };
    let mut snippet: String = text.chars().take(SNIPPET_CHARS).collect();
    if text.chars().count() > SNIPPET_CHARS {
        snippet.push('…');
    }
    (snippet, length, moderation::max_length(platform))
}

fn state_label(s: ItemState) -> &'static str {
    match s {
        ItemState::Planned => "Planned",
        ItemState::Generating => "Generating",
        ItemState::PendingReview => "Waiting for review",
        ItemState::Approved => "Approved, scheduled",
        ItemState::Rejected => "Rejected",
        ItemState::Published => "Published",
        ItemState::PartiallyPublished => "Partially published",
        ItemState::Failed => "Failed",
        ItemState::Cancelled => "Cancelled",
    }
}

async fn pipeline_fragment(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    tz: Tz,
) -> AppResult<Markup> {
    let counts: HashMap<ItemState, i64> = sqlx::query!(
        r#"SELECT state AS "state: ItemState", count(*) AS "n!" FROM content_items
           WHERE client_id = $1 AND agency_id = $2 GROUP BY state"#,
        id,
        user.agency_id
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.state, r.n))
    .collect();
    let states: Vec<&str> = ItemState::ALL.iter().map(|s| s.as_str()).collect();
    let latest = sqlx::query!(
        r#"SELECT i.id, i.state AS "state: ItemState", i.slot_at, i.caption, i.hashtags, i.cta,
                  coalesce((SELECT array_agg(DISTINCT a.platform ORDER BY a.platform) FROM content_item_targets t
                            JOIN social_accounts a ON a.id = t.account_id AND a.agency_id = t.agency_id
                            WHERE t.item_id = i.id), '{}') AS "platforms!: Vec<String>"
           FROM unnest($3::text[]) s(state)
           CROSS JOIN LATERAL (SELECT * FROM content_items c
                               WHERE c.client_id = $1 AND c.agency_id = $2 AND c.state = s.state
                               ORDER BY c.slot_at DESC LIMIT $4) i"#,
        id,
        user.agency_id,
        &states as &[&str],
        LATEST_PER_STATE
    )
    .fetch_all(&state.pool)
    .await?;
    let latest: Vec<Latest> = latest
        .into_iter()
        .map(|r| Latest {
            id: r.id,
            state: r.state,
            slot_at: r.slot_at,
            caption: r.caption,
            hashtags: r.hashtags,
            cta: r.cta,
            platforms: r
                .platforms
                .iter()
                .filter_map(|p| Platform::from_str(p).ok())
                .collect(),
        })
        .collect();
    let now = Utc::now();
    let total: i64 = counts.values().sum();
    Ok(html! {
        table.counts {
            caption { (total) " item(s) by state" }
            thead { tr { @for s in ItemState::ALL { th scope="col" { (state_label(*s)) } } } }
            tbody { tr { @for s in ItemState::ALL { td data-state=(s.as_str()) { (counts.get(s).copied().unwrap_or(0)) } } } }
        }
        @for s in ItemState::ALL {
            @let items: Vec<&Latest> = latest.iter().filter(|l| l.state == *s).collect();
            @if !items.is_empty() {
                section.pipeline-state {
                    h2 { (state_label(*s)) " " span.count { "(" (counts.get(s).copied().unwrap_or(0)) ")" } }
                    ul.items {
                        @for it in items {
                            li.card {
                                p {
                                    a href={ "/items/" (it.id) } { "Post for " (format_in_zone(it.slot_at, tz)) }
                                    " · " (relative(it.slot_at, now))
                                }
                                @if it.platforms.is_empty() {
                                    p.hint { "No target account." }
                                } @else {
                                    dl.previews {
                                        @for p in &it.platforms {
                                            @let (snippet, len, max) = preview(*p, &it.caption, it.cta.as_deref(), &it.hashtags);
                                            dt { (p.label()) " " span class={ "hint" @if len > max { " over" } } { (len) "/" (max) } }
                                            dd { @if snippet.is_empty() { span.hint { "(no text yet)" } } @else { (snippet) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if total == 0 { p.empty { "No content yet. Content rules plan posts for the next 7 days." } }
        p.hint { "Updated " (format_in_zone(now, tz)) "." }
    })
}

/// `GET /clients/{id}/pipeline`
pub async fn pipeline(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let c = client_head(&state, user.agency_id, id).await?;
    let fragment = pipeline_fragment(&state, &user, id, c.tz).await?;
    let body = html! {
        (nav(id, Tab::Pipeline))
        h1 { "Pipeline · " (c.name) }
        (live::connector(Some(id)))
        div #pipeline-live data-hx-get={ "/clients/" (id) "/pipeline/live" } data-hx-trigger=(live::TRIGGER) data-hx-swap="innerHTML" aria-live="polite" {
            (fragment)
        }
    };
    Ok(respond(
        htmx,
        &user,
        &format!("Pipeline · {}", c.name),
        Nav::Clients,
        body,
    ))
}

/// `GET /clients/{id}/pipeline/live`: the pipeline alone, re-fetched on live events.
pub async fn pipeline_live(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let c = client_head(&state, user.agency_id, id).await?;
    let fragment = pipeline_fragment(&state, &user, id, c.tz).await?;
    Ok(respond(
        htmx,
        &user,
        &format!("Pipeline · {}", c.name),
        Nav::Clients,
        fragment,
    ))
}

// ---------------------------------------------------------------------------------------------
// Logs

#[derive(Debug, Deserialize, Default)]
pub struct LogsQuery {
    /// Keyset cursor: rows older than this log id.
    before: Option<i64>,
}

struct LogRow {
    id: i64,
    created_at: DateTime<Utc>,
    action: String,
    outcome: String,
    status_code: Option<i32>,
    latency_ms: Option<i32>,
    request_id: Option<String>,
    error: Option<String>,
    response: Option<String>,
    publication_id: Uuid,
    item_id: Uuid,
    platform: Platform,
    publication_state: String,
}

/// `GET /clients/{id}/logs`: every attempt to talk to a platform about this client's posts,
/// newest first. Platform answers and errors are shown as text (escaped), never as markup.
pub async fn logs(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Query(q): Query<LogsQuery>,
) -> AppResult<Response> {
    let c = client_head(&state, user.agency_id, id).await?;
    let rows = sqlx::query_as!(
        LogRow,
        r#"SELECT l.id, l.created_at, l.action, l.outcome, l.status_code, l.latency_ms, l.request_id, l.error, l.response,
                  p.id AS publication_id, p.item_id, p.platform AS "platform: Platform", p.state AS publication_state
           FROM post_logs l
           JOIN publications p ON p.id = l.publication_id AND p.agency_id = l.agency_id
           WHERE p.client_id = $1 AND l.agency_id = $2 AND ($3::bigint IS NULL OR l.id < $3)
           ORDER BY l.id DESC LIMIT $4"#,
        id,
        user.agency_id,
        q.before,
        LOG_PAGE + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let has_more = rows.len() as i64 > LOG_PAGE;
    let rows = &rows[..rows.len().min(LOG_PAGE as usize)];
    let now = Utc::now();
    let tz = c.tz;
    let body = html! {
        (nav(id, Tab::Logs))
        h1 { "Post logs · " (c.name) }
        @if rows.is_empty() {
            p.empty { @if q.before.is_some() { "No older entries." } @else { "Nothing has been sent to a platform for this client yet." } }
        } @else {
            table.logs {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Platform" } th scope="col" { "Action" }
                    th scope="col" { "Outcome" } th scope="col" { "HTTP" } th scope="col" { "Details" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (format_in_zone(r.created_at, tz)) p.hint { (relative(r.created_at, now)) } }
                            td { (r.platform.label()) p.hint { a href={ "/items/" (r.item_id) } { "post" } " · now " (r.publication_state.replace('_', " ")) } }
                            td { (r.action) }
                            td { span class={ "outcome " (r.outcome) } { (r.outcome.replace('_', " ")) } }
                            td {
                                @if let Some(s) = r.status_code { (s) }
                                @if let Some(ms) = r.latency_ms { p.hint { (ms) " ms" } }
                            }
                            td {
                                @if let Some(e) = &r.error { p.log-error { (e) } }
                                @if let Some(resp) = &r.response {
                                    details { summary { "Platform response" } pre { code { (resp) } } }
                                }
                                @if let Some(rid) = &r.request_id { p.hint { "request " code { (rid) } } }
                                p.hint { "publication " code { (r.publication_id) } }
                            }
                        }
                    }
                }
            }
        }
        div.actions {
            @if q.before.is_some() { a.button.secondary href={ "/clients/" (id) "/logs" } { "Newest" } }
            @if has_more {
                @if let Some(last) = rows.last() {
                    a.button.secondary rel="next" href={ "/clients/" (id) "/logs?before=" (last.id) } { "Older entries" }
                }
            }
        }
    };
    Ok(respond(
        htmx,
        &user,
        &format!("Post logs · {}", c.name),
        Nav::Clients,
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_count_each_platform_its_own_way() {
        let tags = vec!["spring".to_owned()];
        let (snippet, len, max) = preview(
            Platform::X,
            "Hello https://example.com/a/very/long/path",
            None,
            &tags,
        );
        assert!(snippet.starts_with("Hello"));
        // X counts a link as 23
        assert_eq!(len, "Hello ".len() + 23 + "\n\n#spring".len());
        assert_eq!(max, 280);
        let long = "x".repeat(500);
        let (snippet, len, _) = preview(Platform::Linkedin, &long, None, &[]);
        assert_eq!(len, 500);
        assert_eq!(snippet.chars().count(), SNIPPET_CHARS + 1);
        assert!(snippet.ends_with('…'));
    }

    #[test]
    fn tabs_mark_the_current_one() {
        let id = Uuid::now_v7();
        let html = nav(id, Tab::Logs).into_string();
        assert!(html.contains(&format!(
            "href=\"/clients/{id}/logs\" aria-current=\"page\""
        )));
        assert!(html.contains(&format!("href=\"/clients/{id}/brand\"")));
        assert_eq!(html.matches("aria-current").count(), 1);
    }
}
