//! The logged-in person's own account: switching between their agencies, changing their
//! password. Both are audited.
//!
//! * Switching: a person who belongs to several agencies picks one in the header. The server
//!   checks the membership (another agency is 404 and changes nothing), then replaces the
//!   session with a fresh one (new id, new CSRF token, same absolute expiry) in the chosen
//!   agency: every role check after that is the new agency's role, read from its membership.
//! * Password: the current password, the new one twice; argon2id like every password here, at
//!   least [`MIN_PASSWORD_LEN`] characters (as `user create`). Wrong attempts count against the
//!   login throttle. A change ends every other session of the person.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::audit::{self, Entry};
use autosocial_core::password::{self, MIN_PASSWORD_LEN};
use autosocial_core::secret::{random_token, token_hash};

use crate::app::AppState;
use crate::auth::{CurrentUser, cookie, session_cookie_name};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Query};
use crate::pages::layout::{Htmx, Nav, respond};

// ---------------------------------------------------------------------------------------------
// Switching agency
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    agency: String,
}

/// `POST /account/agency`: move the session to another agency of the person's.
pub async fn switch_agency(
    State(state): State<AppState>,
    user: CurrentUser,
    jar: CookieJar,
    Form(f): Form<SwitchForm>,
) -> AppResult<Response> {
    let target = Uuid::from_str(f.agency.trim()).map_err(|_| AppError::NotFound)?;
    let token = jar
        .get(session_cookie_name(&state.web))
        .map(|c| c.value().to_owned())
        .ok_or(AppError::Unauthorized)?;
    let mut tx = state.pool.begin().await?;
    // only an agency the person belongs to exists for them (locked: a removal waits)
    sqlx::query_scalar!(
        "SELECT agency_id FROM memberships WHERE user_id = $1 AND agency_id = $2 FOR SHARE",
        user.user_id,
        target
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AppError::NotFound)?;
    if target == user.agency_id {
        return Ok(Redirect::to("/").into_response());
    }
    // a new session (id and CSRF token) for the new agency; the absolute expiry stays
    let new_token = random_token(32);
    let moved = sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, agency_id, csrf_token, expires_at, ip, user_agent)
         SELECT $2, user_id, $3, $4, expires_at, ip, user_agent FROM sessions
         WHERE id_hash = $1 AND user_id = $5 AND agency_id = $6",
        token_hash(&token),
        token_hash(&new_token),
        target,
        random_token(32),
        user.user_id,
        user.agency_id
    )
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        // the session ended meanwhile (logged out elsewhere)
        return Err(AppError::Unauthorized);
    }
    sqlx::query!(
        "DELETE FROM sessions WHERE id_hash = $1",
        token_hash(&token)
    )
    .execute(&mut *tx)
    .await?;
    let details = serde_json::json!({ "from_agency": user.agency_id, "to_agency": target });
    for agency in [user.agency_id, target] {
        audit::append(
            &mut tx,
            &user.actor(),
            Entry::new(Some(agency), "auth.switch_agency")
                .target("user", user.user_id)
                .details(details.clone()),
        )
        .await?;
    }
    tx.commit().await?;
    let jar = jar.add(cookie(
        &state.web,
        session_cookie_name(&state.web),
        new_token,
    ));
    Ok((jar, Redirect::to("/")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Changing the password
// ---------------------------------------------------------------------------------------------

/// The form as sent. No `Debug`: it holds passwords.
#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

type FieldErrors = BTreeMap<&'static str, String>;

#[derive(Debug, Deserialize, Default)]
pub struct PasswordQuery {
    /// Set after a successful change: how many other sessions were ended.
    changed: Option<u64>,
}

/// The checks that need no database: the new password's strength and the repetition.
fn check_new(f: &PasswordForm) -> FieldErrors {
    let mut errors = FieldErrors::new();
    if f.new_password.is_empty() {
        errors.insert("new_password", "Enter a new password.".into());
    } else if let Err(why) = password::check_strength(&f.new_password) {
        errors.insert("new_password", format!("The new password {why}."));
    } else if f.new_password == f.current_password {
        errors.insert(
            "new_password",
            "Choose a password other than the current one.".into(),
        );
    }
    if f.new_password_confirm.is_empty() {
        errors.insert(
            "new_password_confirm",
            "Enter the new password again.".into(),
        );
    } else if f.new_password_confirm != f.new_password {
        errors.insert(
            "new_password_confirm",
            "This differs from the new password above.".into(),
        );
    }
    errors
}

fn password_form(user: &CurrentUser, errors: &FieldErrors, changed: Option<u64>) -> Markup {
    let invalid = |f: &str| errors.contains_key(f).then_some("true");
    let described = |f: &str, hint: Option<&str>| {
        let mut ids: Vec<String> = hint.map(str::to_owned).into_iter().collect();
        if errors.contains_key(f) {
            ids.push(format!("{f}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    };
    let message = |f: &str| {
        html! {
            @if let Some(e) = errors.get(f) { p.field-error id={ (f) "-error" } { (e) } }
        }
    };
    html! {
        h1 { "Change your password" }
        @if let Some(n) = changed {
            p.notice role="status" {
                "Your password was changed. "
                @match n {
                    0 => "You had no other sessions.",
                    1 => "Your one other session was ended.",
                    n => { "Your " (n) " other sessions were ended." }
                }
            }
        }
        @if !errors.is_empty() {
            p.alert role="alert" { "Your password was not changed: please correct the fields marked below." }
        }
        form.card method="post" action="/account/password" novalidate {
            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
            label for="current_password" { "Current password" }
            input #current_password type="password" name="current_password" autocomplete="current-password" required
                aria-invalid=[invalid("current_password")] aria-describedby=[described("current_password", None)];
            (message("current_password"))
            label for="new_password" { "New password" }
            input #new_password type="password" name="new_password" autocomplete="new-password" required
                minlength=(MIN_PASSWORD_LEN)
                aria-invalid=[invalid("new_password")] aria-describedby=[described("new_password", Some("new_password-hint"))];
            p.hint #new_password-hint { "At least " (MIN_PASSWORD_LEN) " characters. A few unrelated words make a good one." }
            (message("new_password"))
            label for="new_password_confirm" { "New password again" }
            input #new_password_confirm type="password" name="new_password_confirm" autocomplete="new-password" required
                aria-invalid=[invalid("new_password_confirm")] aria-describedby=[described("new_password_confirm", None)];
            (message("new_password_confirm"))
            p.hint { "Changing it logs you out everywhere else." }
            div.actions { button type="submit" { "Change password" } }
        }
    }
}

/// `GET /account/password`
pub async fn password_page(
    user: CurrentUser,
    htmx: Htmx,
    Query(q): Query<PasswordQuery>,
) -> Response {
    let body = password_form(&user, &FieldErrors::new(), q.changed);
    respond(htmx, &user, "Change your password", Nav::Account, body)
}

/// `POST /account/password`
pub async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    htmx: Htmx,
    jar: CookieJar,
    Form(f): Form<PasswordForm>,
) -> AppResult<Response> {
    let token = jar
        .get(session_cookie_name(&state.web))
        .map(|c| c.value().to_owned())
        .ok_or(AppError::Unauthorized)?;
    // guessing the current password here is as limited as at the login
    if let Err(wait) = state.throttle.check(&user.email, user.ip) {
        return Err(AppError::TooManyRequests {
            retry_after_secs: wait,
        });
    }
    let mut errors = check_new(&f);
    let stored = sqlx::query_scalar!(
        "SELECT password_hash FROM users WHERE id = $1 AND disabled_at IS NULL",
        user.user_id
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::Unauthorized)?;
    if f.current_password.is_empty() {
        errors.insert("current_password", "Enter your current password.".into());
    } else {
        let current = f.current_password.clone();
        let ok = tokio::task::spawn_blocking(move || password::verify(&current, &stored))
            .await
            .map_err(anyhow::Error::from)?;
        if !ok {
            errors.insert(
                "current_password",
                "This is not your current password.".into(),
            );
        }
    }
    if !errors.is_empty() {
        let body = password_form(&user, &errors, None);
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            respond(htmx, &user, "Change your password", Nav::Account, body),
        )
            .into_response());
    }
    let new = f.new_password.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&new))
        .await
        .map_err(anyhow::Error::from)??;
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        user.user_id,
        hash
    )
    .execute(&mut *tx)
    .await?;
    // every other session of the person ends, in every agency; this one stays
    let ended = sqlx::query!(
        "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
        user.user_id,
        token_hash(&token)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "auth.password_change")
            .target("user", user.user_id)
            .details(serde_json::json!({ "other_sessions_ended": ended })),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/account/password?changed={ended}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(current: &str, new: &str, again: &str) -> PasswordForm {
        PasswordForm {
            current_password: current.into(),
            new_password: new.into(),
            new_password_confirm: again.into(),
        }
    }

    #[test]
    fn new_passwords_are_checked_like_user_create() {
        let e = check_new(&form("old password 1", "short", "short"));
        assert!(
            e["new_password"].contains("at least 12 characters"),
            "{e:?}"
        );
        let e = check_new(&form(
            "old password 1",
            "a long new password",
            "a long new passwort",
        ));
        assert!(e["new_password_confirm"].contains("differs"));
        assert!(!e.contains_key("new_password"));
        let e = check_new(&form(
            "same old password",
            "same old password",
            "same old password",
        ));
        assert!(e["new_password"].contains("other than the current"));
        assert!(check_new(&form("", "", "")).len() == 2);
        assert!(
            check_new(&form(
                "old password 1",
                "a long new password",
                "a long new password"
            ))
            .is_empty()
        );
    }
}
