//! The one layout: head (CSS, htmx, htmx config for our CSP), the top navigation, the CSRF token
//! for htmx once on `<body>`, and the main region.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::statics;

/// htmx settings that fit the Content-Security-Policy: same-origin requests only, no indicator
/// styles injected (they are in app.css).
/// htmx attributes are written `data-hx-*` (valid HTML), and `_` stands for htmx's `:`
/// (`data-hx-headers_inherited`): a colon is not allowed in a data attribute's name.
const HTMX_CONFIG: &str =
    r#"{"mode":"same-origin","includeIndicatorCSS":false,"metaCharacter":"_"}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Calendar,
    Clients,
    Review,
    Fleet,
    Switches,
    Audit,
    Settings,
    Account,
    None,
}

/// Whether the request came from htmx (and wants a partial).
#[derive(Debug, Clone, Copy)]
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let boosted = parts.headers.contains_key("hx-boosted");
        Ok(Htmx(parts.headers.contains_key("hx-request") && !boosted))
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(HTMX_CONFIG);
            title { (title) " · AutoSocial" }
            link rel="icon" href=(statics::favicon_path()) type="image/svg+xml";
            link rel="stylesheet" href=(statics::css_path());
            script src=(statics::htmx_path()) defer {}
        }
    }
}

/// A console page for a logged-in user.
pub fn page(user: &CurrentUser, title: &str, nav: Nav, content: Markup) -> Markup {
    let headers = serde_json::json!({ crate::csrf::HEADER: user.csrf_token }).to_string();
    let current = |n: Nav| if n == nav { Some("page") } else { None };
    let engaged = ENGAGED.try_with(Arc::clone).ok();
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body "data-hx-headers_inherited"=(headers) {
                a.visually-hidden href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "AutoSocial" }
                    nav aria-label="Main" {
                        a href="/" aria-current=[current(Nav::Dashboard)] { "Dashboard" }
                        a href="/calendar" aria-current=[current(Nav::Calendar)] { "Calendar" }
                        a href="/clients" aria-current=[current(Nav::Clients)] { "Clients" }
                        a href="/review" aria-current=[current(Nav::Review)] { "Review" }
                        a href="/fleet" aria-current=[current(Nav::Fleet)] { "Fleet" }
                        a href="/switches" aria-current=[current(Nav::Switches)] { "Kill switches" }
                        @if user.role.allows(autosocial_core::domain::Role::Admin) {
                            a href="/audit" aria-current=[current(Nav::Audit)] { "Audit log" }
                            a href="/settings" aria-current=[current(Nav::Settings)] { "Settings" }
                        }
                    }
                    span.who {
                        (user.email) " · " (user.agency_name) " · " (user.role.as_str())
                        @if user.operator { " · operator of this deployment" }
                    }
                    @if user.agencies.len() > 1 { (agency_switcher(user)) }
                    a href="/account/password" aria-current=[current(Nav::Account)] { "Password" }
                    form method="post" action="/logout" {
                        input type="hidden" name=(crate::csrf::FIELD) value=(user.csrf_token);
                        button.link type="submit" { "Log out" }
                    }
                }
                @if let Some(engaged) = &engaged {
                    (crate::pages::switches::banner(engaged))
                }
                main #main { (content) }
            }
        }
    }
}

/// The agency switcher of a person with several memberships: a plain form (works without
/// JavaScript), checked again on the server (`pages::account::switch_agency`).
fn agency_switcher(user: &CurrentUser) -> Markup {
    html! {
        form.switcher method="post" action="/account/agency" {
            input type="hidden" name=(crate::csrf::FIELD) value=(user.csrf_token);
            label.visually-hidden for="switch-agency" { "Agency" }
            select #switch-agency name="agency" {
                @for a in &user.agencies {
                    option value=(a.id) selected[a.id == user.agency_id] { (a.name) }
                }
            }
            button.link type="submit" { "Switch agency" }
        }
    }
}

tokio::task_local! {
    /// The kill switches engaged for the request's agency, read once per full-page request by
    /// [`switch_banner`] so every page's header can say publishing is stopped.
    static ENGAGED: Arc<Vec<crate::pages::switches::Engaged>>;
}

/// Middleware for the console (inside `require_session`): read the engaged switches for the
/// banner. Skipped for htmx partials, which carry no header, and when the session's lookup
/// found none engaged.
pub async fn switch_banner(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let partial =
        req.headers().contains_key("hx-request") && !req.headers().contains_key("hx-boosted");
    // the session's lookup said whether any switch is engaged: most pages need not ask again
    let agency = req
        .extensions()
        .get::<CurrentUser>()
        .filter(|u| u.switches_engaged)
        .map(|u| (u.agency_id, u.operator));
    match agency {
        Some((agency, operator)) if !partial => {
            let engaged =
                match crate::pages::switches::engaged_for(&state.pool, agency, operator).await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading kill switches for the banner failed");
                        Vec::new()
                    }
                };
            ENGAGED.scope(Arc::new(engaged), next.run(req)).await
        }
        _ => next.run(req).await,
    }
}

/// A page outside the console (login, errors): no navigation.
pub fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { main #main { (content) } }
        }
    }
}

/// The full page, or only the partial for htmx; either way `Vary: HX-Request`.
pub fn respond(htmx: Htmx, user: &CurrentUser, title: &str, nav: Nav, partial: Markup) -> Response {
    let body = if htmx.0 {
        partial
    } else {
        page(user, title, nav, partial)
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("HX-Request"));
    r
}
