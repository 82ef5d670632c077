//! Accepting an invitation (`/invite/{token}`, no login): the invited person sees which agency
//! invites them, as what and under which address, and joins by giving the password of their
//! account with that address — or, if they have none, by choosing one (at least 12 characters).
//! Nobody becomes a member without this step.
//!
//! An unknown, expired, revoked or used invitation shows one neutral page. The form has its own
//! double-submit CSRF token (a cookie and a field) and an Origin / Sec-Fetch-Site check; the
//! password attempts count against the login throttle of the address. On success the person is
//! logged in to the agency they joined (a fresh session).

use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use maud::{Markup, html};
use serde::Deserialize;

use autosocial_core::invitations::{self, Accepted, Joiner, OpenInvitation};
use autosocial_core::secret::{constant_time_eq, random_token};

use crate::app::AppState;
use crate::auth::{client_ip, cookie, session_cookie_name};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path};
use crate::pages::format_in_zone;
use crate::pages::layout::bare_page;

fn form_cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies() {
        "__Host-autosocial_invite"
    } else {
        "autosocial_invite"
    }
}

/// One page for every invitation that cannot be used: it says nothing about the agency.
fn neutral() -> Response {
    (
        StatusCode::NOT_FOUND,
        bare_page(
            "Invitation not valid",
            html! {
                h1 { "This invitation cannot be used" }
                p { "It may have expired, been revoked or already been accepted. Ask the agency for a new invitation." }
            },
        ),
    )
        .into_response()
}

fn accept_form(token: &str, form_token: &str, inv: &OpenInvitation, error: Option<&str>) -> Markup {
    html! {
        h1 { "Join " (inv.agency_name) }
        p {
            strong { (inv.agency_name) } " invites " strong { (inv.email) } " to work in its AutoSocial console as "
            strong { (inv.role.as_str()) } ". The invitation expires " (format_in_zone(inv.expires_at, chrono_tz::UTC)) "."
        }
        @if let Some(e) = error {
            p.alert role="alert" { (e) }
        }
        form.card method="post" action={ "/invite/" (token) } novalidate {
            input type="hidden" name=(csrf::FIELD) value=(form_token);
            label for="invite-password" { "Password" }
            input #invite-password type="password" name="password" autocomplete="current-password" required
                aria-invalid=[error.map(|_| "true")] aria-describedby="invite-password-hint";
            p.hint #invite-password-hint {
                "If you already have an AutoSocial account with this address, enter its password. "
                "If not, choose a password of at least 12 characters: your account is created with it."
            }
            div.actions { button type="submit" { "Accept and join" } }
        }
        p.hint { "Not for you, or not wanted? Close this page: nothing happens unless you accept." }
    }
}

fn page_with_form(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    token: &str,
    inv: &OpenInvitation,
    error: Option<&str>,
) -> Response {
    let form_token = random_token(32);
    let jar = jar.add(cookie(
        &state.web,
        form_cookie_name(state),
        form_token.clone(),
    ));
    let mut r = (
        status,
        jar,
        bare_page(
            "Join an agency",
            accept_form(token, &form_token, inv, error),
        ),
    )
        .into_response();
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `GET /invite/{token}`
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let Some(inv) = invitations::open(&state.pool, &token).await? else {
        return Ok(neutral());
    };
    Ok(page_with_form(
        &state,
        jar,
        StatusCode::OK,
        &token,
        &inv,
        None,
    ))
}

/// The accept form. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// A wrong password on an invitation is audited in the inviting agency's chain, like a failed
/// login (and counted by the same throttle).
async fn refused_attempt(
    state: &AppState,
    inv: &OpenInvitation,
    ip: Option<std::net::IpAddr>,
) -> AppResult<()> {
    let mut tx = state.pool.begin().await?;
    autosocial_core::audit::append(
        &mut tx,
        &autosocial_core::audit::Actor {
            user_id: None,
            label: format!("invitation:{}", inv.email),
            ip,
        },
        autosocial_core::audit::Entry::new(Some(inv.agency_id), "member.join_refused")
            .target("invitation", inv.id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

const WRONG: &str = "This password does not open the account with this address. If you have no AutoSocial account yet, choose a password of at least 12 characters.";

/// `POST /invite/{token}`: join with the account's password, or create the account.
pub async fn accept(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(token): Path<String>,
    req: Request,
) -> AppResult<Response> {
    csrf::check_origin(&req, &state.web)?;
    let (parts, body) = req.into_parts();
    let ip = client_ip(&parts, &state.web);
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Form(f) = Form::<AcceptForm>::from_request(Request::from_parts(parts, body), &()).await?;
    match jar.get(form_cookie_name(&state)) {
        Some(c)
            if !f.csrf.is_empty() && constant_time_eq(c.value().as_bytes(), f.csrf.as_bytes()) => {}
        _ => return Err(AppError::Csrf("missing or wrong invitation form token")),
    }
    let Some(inv) = invitations::open(&state.pool, &token).await? else {
        return Ok(neutral());
    };
    if let Err(wait) = state.throttle.check(&inv.email, ip) {
        tracing::warn!(ip = ?ip, "invitation acceptance throttled");
        return Err(AppError::TooManyRequests {
            retry_after_secs: wait,
        });
    }
    // the same rule for everyone first, so a short password says nothing about the address
    if let Err(why) = autosocial_core::password::check_strength(&f.password) {
        let message = format!(
            "A password {why}: enter your account's password, or choose one of at least 12 characters."
        );
        return Ok(page_with_form(
            &state,
            jar,
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            &inv,
            Some(&message),
        ));
    }
    let existing = sqlx::query!(
        r#"SELECT id, password_hash, disabled_at IS NOT NULL AS "disabled!" FROM users WHERE email = $1::text::citext"#,
        inv.email
    )
    .fetch_optional(&state.pool)
    .await?;
    let password = f.password;
    let joiner_hash;
    let joiner = match existing {
        Some(u) => {
            let hash = u.password_hash;
            let ok = tokio::task::spawn_blocking(move || {
                autosocial_core::password::verify(&password, &hash)
            })
            .await
            .map_err(anyhow::Error::from)?;
            if !ok || u.disabled {
                refused_attempt(&state, &inv, ip).await?;
                return Ok(page_with_form(
                    &state,
                    jar,
                    StatusCode::UNAUTHORIZED,
                    &token,
                    &inv,
                    Some(WRONG),
                ));
            }
            Joiner::Existing(u.id)
        }
        None => {
            joiner_hash =
                tokio::task::spawn_blocking(move || autosocial_core::password::hash(&password))
                    .await
                    .map_err(anyhow::Error::from)??;
            Joiner::New {
                password_hash: &joiner_hash,
            }
        }
    };
    let mut tx = state.pool.begin().await?;
    match invitations::accept(&mut tx, inv.id, joiner, ip).await? {
        Accepted::Joined {
            user_id,
            agency_id,
            role,
        } => {
            let session = crate::auth::open_session(
                &state,
                &mut tx,
                user_id,
                &inv.email,
                agency_id,
                ip,
                user_agent.as_deref(),
            )
            .await?;
            tx.commit().await?;
            tracing::info!(role = %role, "an invitation was accepted");
            let jar = jar
                .remove(
                    axum_extra::extract::cookie::Cookie::build(form_cookie_name(&state)).path("/"),
                )
                .add(cookie(&state.web, session_cookie_name(&state.web), session));
            Ok((jar, Redirect::to("/")).into_response())
        }
        Accepted::Gone => Ok(neutral()),
        Accepted::AccountExists => {
            drop(tx);
            Ok(page_with_form(
                &state,
                jar,
                StatusCode::CONFLICT,
                &token,
                &inv,
                Some("An account with this address was created a moment ago: enter its password."),
            ))
        }
    }
}
