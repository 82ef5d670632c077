//! Login and logout.

use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use maud::{Markup, html};
use serde::Deserialize;

use autosocial_core::secret::{constant_time_eq, random_token};

use crate::app::AppState;
use crate::auth::{
    self, CurrentUser, LoginOutcome, client_ip, cookie, login_cookie_name, session_cookie_name,
};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Query};
use crate::pages::layout::bare_page;

#[derive(Debug, Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(rename = "_csrf")]
    csrf: String,
    next: Option<String>,
}

/// The longest `next` accepted (a console address is far shorter).
const MAX_NEXT: usize = 2048;

/// Where to go after login: a path on this console, nothing else (no open redirect). `next` must
/// be a relative reference with an absolute path — one leading `/`, so no scheme and no
/// `//host` — without control characters, whitespace or backslashes (browsers drop tabs and
/// newlines and read `\` as `/`, so `/\t/evil.example` would lead to `//evil.example`), and
/// resolved against this origin it must stay on it. The result is the parsed path and query
/// re-serialized by the `url` crate (percent-encoded, safe in a `Location` header); anything
/// else is `/`.
fn safe_next(next: Option<&str>) -> String {
    let Some(n) = next else {
        return "/".to_owned();
    };
    let plain = n.len() <= MAX_NEXT
        && n.starts_with('/')
        && !n.starts_with("//")
        && !n
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if !plain {
        return "/".to_owned();
    }
    let base = url::Url::parse("http://console.invalid/").expect("a valid base");
    match base.join(n) {
        Ok(u) if u.origin() == base.origin() && u.username().is_empty() => {
            let mut local = u.path().to_owned();
            if let Some(q) = u.query() {
                local.push('?');
                local.push_str(q);
            }
            local
        }
        _ => "/".to_owned(),
    }
}

fn login_form(csrf_token: &str, email: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Log in to AutoSocial" }
        @if let Some(e) = error {
            p.alert role="alert" { (e) }
        }
        form.card method="post" action="/login" {
            input type="hidden" name=(csrf::FIELD) value=(csrf_token);
            input type="hidden" name="next" value=(next);
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            div.actions { button type="submit" { "Log in" } }
        }
    }
}

pub async fn form(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<NextQuery>,
) -> Response {
    let token = random_token(32);
    let jar = jar.add(cookie(
        &state.web,
        login_cookie_name(&state.web),
        token.clone(),
    ));
    let next = safe_next(q.next.as_deref());
    (
        jar,
        bare_page("Log in", login_form(&token, "", &next, None)),
    )
        .into_response()
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
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
    let Form(f) = Form::<LoginForm>::from_request(Request::from_parts(parts, body), &())
        .await
        .map_err(|_| AppError::Csrf("malformed form"))?;
    let expected = jar
        .get(login_cookie_name(&state.web))
        .map(|c| c.value().to_owned());
    match expected {
        Some(e) if constant_time_eq(e.as_bytes(), f.csrf.as_bytes()) => {}
        _ => return Err(AppError::Csrf("missing or wrong login token")),
    }
    let next = safe_next(f.next.as_deref());
    let email = f.email.trim();
    if let Err(wait) = state.throttle.check(email, ip) {
        tracing::warn!(ip = ?ip, "login throttled");
        return Err(AppError::TooManyRequests {
            retry_after_secs: wait,
        });
    }
    match auth::login(&state, email, &f.password, ip, user_agent.as_deref()).await? {
        LoginOutcome::Ok { token } => {
            let jar = jar
                .remove(Cookie::build(login_cookie_name(&state.web)).path("/"))
                .add(cookie(&state.web, session_cookie_name(&state.web), token));
            Ok((jar, Redirect::to(&next)).into_response())
        }
        LoginOutcome::Refused => {
            let token = random_token(32);
            let jar = jar.add(cookie(
                &state.web,
                login_cookie_name(&state.web),
                token.clone(),
            ));
            let page = bare_page(
                "Log in",
                login_form(&token, email, &next, Some("Email or password is wrong.")),
            );
            Ok((StatusCode::UNAUTHORIZED, jar, page).into_response())
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    jar: CookieJar,
) -> AppResult<Response> {
    if let Some(c) = jar.get(session_cookie_name(&state.web)) {
        auth::logout(&state, &user, c.value()).await?;
    }
    let jar = jar.remove(Cookie::build(session_cookie_name(&state.web)).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_login_destinations() {
        assert_eq!(safe_next(Some("/clients?x=1")), "/clients?x=1");
        assert_eq!(
            safe_next(Some("/calendar?view=week&date=2026-11-23")),
            "/calendar?view=week&date=2026-11-23"
        );
        assert_eq!(safe_next(Some("/clients/%C3%A9")), "/clients/%C3%A9");
        assert_eq!(safe_next(Some("/a/../b")), "/b");
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/\u{85}/evil.example",
            "/\u{2028}/evil.example",
            "\t//evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(safe_next(None), "/");
    }
}
