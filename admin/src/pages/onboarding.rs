//! Onboarding: the console's links (create, list, revoke) and the client's public pages (open a
//! link, connect accounts through OAuth with PKCE, confirm the timezone, finish).

use std::str::FromStr;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use chrono::Utc;
use chrono_tz::Tz;
use maud::{Markup, html};
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::audit::{self, Actor, Entry};
use autosocial_core::domain::Platform;
use autosocial_core::onboarding::{self, LinkState, OpenLink};
use autosocial_core::platform_apps;
use autosocial_core::platforms::{self, PlatformError};
use autosocial_core::secret::{constant_time_eq, random_token, token_hash};
use autosocial_core::vault::Aad;

use crate::app::AppState;
use crate::auth::{AdminRole, Viewer, client_ip, cookie};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path, Query};
use crate::pages::layout::{Htmx, Nav, bare_page, respond};
use crate::pages::{format_in_zone, relative};

const ONBOARD_COOKIE: &str = "autosocial_onboard";
const ONBOARD_CSRF_COOKIE: &str = "autosocial_onboard_csrf";
/// A pending OAuth authorization is good for this long.
const OAUTH_TTL_MINUTES: i32 = 15;

// ---------------------------------------------------------------------------------------------
// Console: the client's links

async fn client_name(state: &AppState, agency: Uuid, client: Uuid) -> AppResult<(String, Tz)> {
    let row = sqlx::query!(
        "SELECT name, timezone FROM clients WHERE id = $1 AND agency_id = $2",
        client,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok((
        row.name,
        Tz::from_str(&row.timezone).unwrap_or(chrono_tz::UTC),
    ))
}

async fn links_page(
    state: &AppState,
    user: &crate::auth::CurrentUser,
    client: Uuid,
    fresh: Option<(String, chrono::DateTime<Utc>)>,
) -> AppResult<Markup> {
    let (name, tz) = client_name(state, user.agency_id, client).await?;
    let links = onboarding::list(&state.pool, user.agency_id, client).await?;
    let now = Utc::now();
    let can_manage = user.role.allows(autosocial_core::domain::Role::Admin);
    let base = state.web.public_url.as_str().trim_end_matches('/');
    Ok(html! {
        h1 { "Onboarding links · " (name) }
        p { a href={ "/clients/" (client) } { "Back to the client" } }
        @if let Some((token, expires)) = &fresh {
            div.notice role="status" {
                p { strong { "Send this link to the client. " } "It is shown only now; it expires " (format_in_zone(*expires, tz)) "." }
                label for="new-link" { "Onboarding link" }
                input #new-link type="text" readonly value={ (base) "/onboard/" (token) };
            }
        }
        @if can_manage {
            form method="post" action={ "/clients/" (client) "/onboarding" } {
                input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                button type="submit" { "Create a new link" }
            }
        }
        @if links.is_empty() {
            p.empty { "No links yet." }
        } @else {
            table {
                thead { tr { th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "State" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for l in &links {
                        tr {
                            td { (format_in_zone(l.created_at, tz)) }
                            td { (format_in_zone(l.expires_at, tz)) " · " (relative(l.expires_at, now)) }
                            td { (l.state.label()) @if let Some(t) = l.finished_at { " " (relative(t, now)) } }
                            td {
                                @if can_manage && l.state == LinkState::Active {
                                    form method="post" action={ "/clients/" (client) "/onboarding/" (l.id) "/revoke" } {
                                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                        button.secondary type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

pub async fn list(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(client): Path<Uuid>,
) -> AppResult<Response> {
    let body = links_page(&state, &user, client, None).await?;
    Ok(respond(htmx, &user, "Onboarding links", Nav::Clients, body))
}

pub async fn create(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(client): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let link = onboarding::create_audited(&mut tx, &user.actor(), user.agency_id, client)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    let body = links_page(&state, &user, client, Some((link.token, link.expires_at))).await?;
    let mut r = respond(htmx, &user, "Onboarding links", Nav::Clients, body);
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

pub async fn revoke(
    State(state): State<AppState>,
    user: AdminRole,
    Path((client, link)): Path<(Uuid, Uuid)>,
) -> AppResult<Response> {
    client_name(&state, user.agency_id, client).await?;
    let mut tx = state.pool.begin().await?;
    if onboarding::revoke_audited(&mut tx, &user.actor(), user.agency_id, link)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{client}/onboarding")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Public: the client's pages

/// One page for every link that cannot be used: it says nothing about any client.
fn neutral() -> Response {
    (
        StatusCode::NOT_FOUND,
        bare_page(
            "Link not valid",
            html! {
                h1 { "This link cannot be used" }
                p { "It may have expired, been revoked or already been used. Ask your agency for a new onboarding link." }
            },
        ),
    )
        .into_response()
}

fn refused(title: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, bare_page(title, html! { h1 { (title) } p { (message) } p { "Nothing was saved. Open your onboarding link again to retry." } })).into_response()
}

async fn connected_accounts(
    state: &AppState,
    link: &OpenLink,
) -> AppResult<Vec<(Platform, String)>> {
    let rows = sqlx::query!(
        r#"SELECT platform AS "platform: Platform", display_name FROM social_accounts
           WHERE client_id = $1 AND agency_id = $2 AND status <> 'disconnected' ORDER BY platform, display_name"#,
        link.client_id,
        link.agency_id
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.platform, r.display_name))
        .collect())
}

pub async fn open(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let Some(link) = onboarding::open(&state.pool, &token).await? else {
        return Ok(neutral());
    };
    let accounts = connected_accounts(&state, &link).await?;
    let form_token = random_token(32);
    let jar = jar
        .add(cookie(&state.web, ONBOARD_CSRF_COOKIE, form_token.clone()))
        .add(cookie(&state.web, ONBOARD_COOKIE, token.clone()));
    let platforms: Vec<Platform> = link
        .platforms_enabled
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let available =
        platform_apps::connectable(&state.pool, &state.platforms, link.agency_id).await?;
    let body = html! {
        h1 { "Connect your accounts" }
        p { strong { (link.agency_name) } " manages social media for " strong { (link.client_name) } ". Connect the accounts it should post to." }
        @if !accounts.is_empty() {
            h2 { "Connected" }
            ul { @for (p, name) in &accounts { li { (p.label()) ": " (name) } } }
        }
        h2 { "Platforms" }
        ul.platforms {
            @for p in &platforms {
                li {
                    @if available.contains(p) {
                        form method="post" action={ "/onboard/" (token) "/connect/" (p.as_str()) } {
                            input type="hidden" name=(csrf::FIELD) value=(form_token);
                            button type="submit" { "Connect " (p.label()) }
                        }
                    } @else {
                        (p.label()) " — not available yet"
                    }
                }
            }
        }
        h2 { "Finish" }
        form.card method="post" action={ "/onboard/" (token) "/finish" } {
            input type="hidden" name=(csrf::FIELD) value=(form_token);
            label for="timezone" { "Your timezone" }
            input #timezone type="text" name="timezone" value=(link.timezone) required;
            p.hint { "Posts are scheduled in this zone (e.g. Europe/Berlin)." }
            div.actions { button type="submit" { "Finish" } }
        }
    };
    Ok((jar, bare_page("Connect your accounts", body)).into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    timezone: Option<String>,
}

/// Read a public onboarding form: Origin / Sec-Fetch-Site check, then the double-submit token.
async fn read_form(
    state: &AppState,
    jar: &CookieJar,
    req: Request,
) -> AppResult<(Option<std::net::IpAddr>, CsrfForm)> {
    use axum::extract::FromRequest;
    let (parts, body) = req.into_parts();
    csrf::check_origin_headers(&parts.headers, &state.web)?;
    let ip = client_ip(&parts, &state.web);
    let Form(f) = Form::<CsrfForm>::from_request(Request::from_parts(parts, body), &())
        .await
        .map_err(|_| AppError::Csrf("malformed form"))?;
    match jar.get(ONBOARD_CSRF_COOKIE) {
        Some(c) if constant_time_eq(c.value().as_bytes(), f.csrf.as_bytes()) => Ok((ip, f)),
        _ => Err(AppError::Csrf("missing or wrong onboarding form token")),
    }
}

fn redirect_uri(state: &AppState, platform: Platform) -> url::Url {
    state
        .web
        .public_url
        .join(&format!("/oauth/callback/{}", platform.as_str()))
        .expect("static path joins")
}

/// Who started a connection: the client through their link, or a logged-in member.
enum Starter {
    Link(Uuid),
    Member(Uuid),
}

/// Record a pending authorization — one-time state (hash only), a fresh PKCE verifier
/// (encrypted), the provider and the exact redirect URI — and return where to send the person.
async fn begin_authorization(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    platform: Platform,
    starter: Starter,
) -> AppResult<url::Url> {
    let (Some(connector), Some(app)) = (
        platforms::connector(platform, &state.platforms),
        platform_apps::resolve(
            &state.pool,
            &state.vault,
            &state.platforms,
            agency,
            platform,
        )
        .await?,
    ) else {
        return Err(AppError::NotFound);
    };
    let oauth_state = random_token(32);
    let verifier = random_token(48);
    let id = Uuid::now_v7();
    let row = id.to_string();
    let ct = state.vault.encrypt_str(
        &verifier,
        &Aad {
            table: "oauth_transactions",
            column: "pkce_verifier_ct",
            agency: Some(agency),
            row: &row,
        },
    );
    let redirect = redirect_uri(state, platform);
    let (link, member) = match starter {
        Starter::Link(l) => (Some(l), None),
        Starter::Member(m) => (None, Some(m)),
    };
    sqlx::query!(
        "INSERT INTO oauth_transactions (id, agency_id, client_id, platform, state_hash, pkce_verifier_ct, key_id, redirect_uri,
                                         onboarding_link_id, started_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(mins => $11))",
        id,
        agency,
        client,
        platform.as_str(),
        token_hash(&oauth_state),
        ct,
        state.vault.current_key_id(),
        redirect.as_str(),
        link,
        member,
        OAUTH_TTL_MINUTES
    )
    .execute(&state.pool)
    .await?;
    Ok(connector.authorization_url(&app, &redirect, &oauth_state, &verifier))
}

pub async fn connect(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((token, platform)): Path<(String, String)>,
    req: Request,
) -> AppResult<Response> {
    read_form(&state, &jar, req).await?;
    let Some(link) = onboarding::open(&state.pool, &token).await? else {
        return Ok(neutral());
    };
    let Ok(platform) = Platform::from_str(&platform) else {
        return Err(AppError::NotFound);
    };
    if !link
        .platforms_enabled
        .iter()
        .any(|p| p == platform.as_str())
    {
        return Err(AppError::NotFound);
    }
    let url = begin_authorization(
        &state,
        link.agency_id,
        link.client_id,
        platform,
        Starter::Link(link.link_id),
    )
    .await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

/// An admin connects an account for a client from the console (same flow, logged in).
pub async fn console_connect(
    State(state): State<AppState>,
    user: AdminRole,
    Path((client, platform)): Path<(Uuid, String)>,
) -> AppResult<Response> {
    client_name(&state, user.agency_id, client).await?;
    let Ok(platform) = Platform::from_str(&platform) else {
        return Err(AppError::NotFound);
    };
    let url = begin_authorization(
        &state,
        user.agency_id,
        client,
        platform,
        Starter::Member(user.user_id),
    )
    .await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    Query(q): Query<CallbackQuery>,
    req: Request,
) -> AppResult<Response> {
    let ip = client_ip(&req.into_parts().0, &state.web);
    let Ok(platform) = Platform::from_str(&platform) else {
        return Err(AppError::NotFound);
    };
    let Some(oauth_state) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(refused(
            "Connection refused",
            "The answer from the platform carried no state.",
        ));
    };
    // consume the pending authorization first: a state works once, whatever happens next
    let tx_row = sqlx::query!(
        r#"UPDATE oauth_transactions SET consumed_at = now()
           WHERE state_hash = $1 AND consumed_at IS NULL
           RETURNING id, agency_id, client_id, platform AS "platform: Platform", pkce_verifier_ct, redirect_uri,
                     onboarding_link_id, started_by, (expires_at > now()) AS "fresh!""#,
        token_hash(oauth_state)
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(t) = tx_row else {
        return Ok(refused(
            "Connection refused",
            "This authorization is unknown or was already used.",
        ));
    };
    if !t.fresh {
        return Ok(refused(
            "Connection refused",
            "This authorization took too long and expired.",
        ));
    }
    if t.platform != platform {
        tracing::warn!(expected = %t.platform, got = %platform, "OAuth callback for another provider refused (mix-up defence)");
        return Ok(refused(
            "Connection refused",
            "The answer came from another platform than the one you started with.",
        ));
    }
    let facts = Facts {
        agency: t.agency_id,
        client: t.client_id,
        link: t.onboarding_link_id,
        member: t.started_by,
        platform,
    };
    let (Some(connector), Some(app)) = (
        platforms::connector(platform, &state.platforms),
        platform_apps::resolve(
            &state.pool,
            &state.vault,
            &state.platforms,
            t.agency_id,
            platform,
        )
        .await?,
    ) else {
        return Err(AppError::NotFound);
    };
    if let (Some(iss), Some(expected)) = (q.iss.as_deref(), connector.issuer())
        && iss.trim_end_matches('/') != expected.trim_end_matches('/')
    {
        return Ok(refused(
            "Connection refused",
            "The answer names another issuer than the platform's.",
        ));
    }
    if let Some(err) = q.error.as_deref() {
        let why = q.error_description.as_deref().unwrap_or(err);
        return Ok(refused(
            "Connection not completed",
            &format!("{} said: {why}", platform.label()),
        ));
    }
    let Some(code) = q.code.as_deref() else {
        return Ok(refused(
            "Connection refused",
            "The answer from the platform carried no code.",
        ));
    };
    // revoked, finished, archived or demoted since it started: stop before asking the platform
    {
        let mut check = state.pool.begin().await?;
        let now = onboarding::recheck_for_connection(
            &mut check,
            t.agency_id,
            t.client_id,
            t.onboarding_link_id,
            t.started_by,
        )
        .await?;
        check.rollback().await?;
        if let Err(why) = now {
            return connection_stopped(&state, &facts, why, ip).await;
        }
    }
    let row = t.id.to_string();
    let verifier = state
        .vault
        .decrypt_string(
            &t.pkce_verifier_ct,
            &Aad {
                table: "oauth_transactions",
                column: "pkce_verifier_ct",
                agency: Some(t.agency_id),
                row: &row,
            },
        )
        .map_err(|e| anyhow::anyhow!("pkce verifier: {e}"))?;
    let redirect = url::Url::parse(&t.redirect_uri).map_err(anyhow::Error::from)?;
    let exchanged = connector
        .exchange_code(&app, &redirect, code, &verifier)
        .await;
    // a refusal of the app's credentials is shown to the agency (Settings, the accounts)
    platform_apps::record_outcome(
        &state.pool,
        t.agency_id,
        platform,
        &app,
        exchanged.as_ref().err(),
    )
    .await?;
    let tokens = match exchanged {
        Ok(t) => t,
        Err(e) => return Ok(platform_refused(platform, &e)),
    };
    let account = match connector
        .account_info(tokens.access_token.expose_secret())
        .await
    {
        Ok(a) => a,
        Err(e) => return Ok(platform_refused(platform, &e)),
    };
    // store: encrypted, one row per platform account (a reconnect updates it) — but only if the
    // link (or the member) and the client still allow it now, at the moment of storing; the rows
    // stay locked until the account is committed, so a revoke either waits or is seen here
    let mut tx = state.pool.begin().await?;
    if let Err(why) = onboarding::recheck_for_connection(
        &mut tx,
        t.agency_id,
        t.client_id,
        t.onboarding_link_id,
        t.started_by,
    )
    .await?
    {
        tx.rollback().await?;
        return connection_stopped(&state, &facts, why, ip).await;
    }
    let account_id = autosocial_core::accounts::store_connection(
        &mut tx,
        &state.vault,
        t.agency_id,
        t.client_id,
        platform,
        &account,
        &tokens,
        connector.scopes(),
    )
    .await?;
    audit::append(
        &mut tx,
        &Actor {
            user_id: t.started_by,
            label: if t.started_by.is_some() { "agency member (console)".into() } else { "client (onboarding link)".into() },
            ip,
        },
        Entry::new(Some(t.agency_id), "account.connect")
            .target("social_account", account_id)
            .details(serde_json::json!({ "platform": platform, "account": account.name, "client_id": t.client_id, "link_id": t.onboarding_link_id })),
    )
    .await?;
    tx.commit().await?;
    match t.started_by {
        Some(_) => Ok(Redirect::to(&format!("/clients/{}", t.client_id)).into_response()),
        None => Ok(Redirect::to("/onboard/continue").into_response()),
    }
}

/// What a refused connection is about, for its audit entry.
struct Facts {
    agency: Uuid,
    client: Uuid,
    link: Option<Uuid>,
    member: Option<Uuid>,
    platform: Platform,
}

/// A connection whose link, client or member no longer allows it: nothing is stored, the
/// refusal is audited in the agency's chain, and the person is told plainly.
async fn connection_stopped(
    state: &AppState,
    f: &Facts,
    why: onboarding::ConnectRefused,
    ip: Option<std::net::IpAddr>,
) -> AppResult<Response> {
    tracing::warn!(platform = %f.platform, reason = why.as_str(), "a connection in flight was stopped");
    let mut tx = state.pool.begin().await?;
    audit::append(
        &mut tx,
        &Actor {
            user_id: f.member,
            label: if f.member.is_some() { "agency member (console)".into() } else { "client (onboarding link)".into() },
            ip,
        },
        Entry::new(Some(f.agency), "account.connect_refused")
            .target("client", f.client)
            .details(serde_json::json!({ "platform": f.platform, "link_id": f.link, "reason": why.as_str() })),
    )
    .await?;
    tx.commit().await?;
    let message = match (why, f.member.is_some()) {
        (onboarding::ConnectRefused::MemberGone, _) => {
            "You are no longer an admin of this agency, so the account was not connected."
        }
        (_, true) => "This client was archived meanwhile, so the account was not connected.",
        (_, false) => {
            "This onboarding link was revoked, used up or expired while you were connecting, so the account was not connected. Ask your agency for a new link."
        }
    };
    Ok((
        StatusCode::GONE,
        bare_page(
            "Connection not completed",
            html! { h1 { "Connection not completed" } p { (message) } p { "Nothing was saved." } },
        ),
    )
        .into_response())
}

fn platform_refused(platform: Platform, e: &PlatformError) -> Response {
    tracing::warn!(platform = %platform, error = %e, "connecting an account failed");
    let message = match e {
        PlatformError::Transient(_) | PlatformError::RateLimited { .. } => format!(
            "{} is not answering right now. Please try again in a few minutes.",
            platform.label()
        ),
        // nothing was revoked: the code was wrong, expired (they live minutes) or used
        PlatformError::CodeRejected(why) => format!(
            "{} did not accept the authorization it sent back: it was wrong, had expired or was \
             already used ({why}). Please start connecting again.",
            platform.label()
        ),
        PlatformError::AppCredentials(_) => format!(
            "{} refused the app this agency connects accounts with, so no account can be \
             connected right now. The agency sees this in its settings; please try again once \
             they have fixed it.",
            platform.label()
        ),
        _ => format!("{} refused the connection: {e}", platform.label()),
    };
    refused("Connection not completed", &message)
}

/// After a callback: back to the onboarding page held in the cookie.
pub async fn resume(jar: CookieJar) -> Response {
    match jar.get(ONBOARD_COOKIE) {
        Some(c) => Redirect::to(&format!("/onboard/{}", c.value())).into_response(),
        None => bare_page("Connected", html! { h1 { "Account connected" } p { "Open your onboarding link again to connect more or to finish." } }).into_response(),
    }
}

pub async fn finish(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(token): Path<String>,
    req: Request,
) -> AppResult<Response> {
    let (ip, form) = read_form(&state, &jar, req).await?;
    let Some(link) = onboarding::open(&state.pool, &token).await? else {
        return Ok(neutral());
    };
    let tz_text = form.timezone.unwrap_or_default();
    let Ok(tz) = Tz::from_str(tz_text.trim()) else {
        return Ok(refused(
            "Timezone not recognised",
            &format!(
                "“{}” is not a timezone name like Europe/Berlin.",
                tz_text.trim()
            ),
        ));
    };
    let mut tx = state.pool.begin().await?;
    if !onboarding::finish(&mut tx, link.link_id, tz.name()).await? {
        return Ok(neutral());
    }
    audit::append(
        &mut tx,
        &Actor {
            user_id: None,
            label: "client (onboarding link)".into(),
            ip,
        },
        Entry::new(Some(link.agency_id), "onboarding_link.finish")
            .target("onboarding_link", link.link_id)
            .details(serde_json::json!({ "client_id": link.client_id, "timezone": tz.name() })),
    )
    .await?;
    tx.commit().await?;
    let jar = jar.remove(axum_extra::extract::cookie::Cookie::build(ONBOARD_COOKIE).path("/"));
    Ok((jar, bare_page("All set", html! { h1 { "All set" } p { "Thank you. " (link.agency_name) " takes it from here." } })).into_response())
}
