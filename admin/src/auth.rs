//! Login, server-side sessions, throttling and role checks.
//!
//! * Passwords: argon2id (core::password).
//! * Sessions: a random 256-bit token in the cookie; Postgres keeps only its SHA-256, with idle and
//!   absolute expiry. A new session id at every login; logout deletes the row.
//! * The console router sits behind [`require_session`], so a route without a role extractor is
//!   still never public; the role extractors ([`Viewer`], [`Reviewer`], [`AdminRole`], [`Owner`])
//!   state what each handler needs. Roles are the agency's; the deployment's operator
//!   ([`CurrentUser::operator`], granted by the CLI only) is checked where deployment-wide
//!   powers are used, never instead of a role for the agency's own data.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use autosocial_core::domain::Role;
use autosocial_core::secret::{random_token, token_hash};

use crate::app::AppState;
use crate::config::WebArgs;
use crate::error::{AppError, AppResult};

/// The logged-in person, for the agency the session is in (the oldest membership at login;
/// another one after switching, see `pages::account`).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user_id: Uuid,
    pub agency_id: Uuid,
    pub agency_name: String,
    pub email: String,
    pub role: Role,
    pub csrf_token: String,
    pub ip: Option<IpAddr>,
    /// Every agency the person belongs to (the current one included), by name.
    pub agencies: Vec<AgencyChoice>,
    /// Whether any kill switch covering the agency (its own or a global one) is engaged: the
    /// layout reads them for its banner only then (read with the session, one round trip).
    pub switches_engaged: bool,
    /// Whether the person is an operator of the deployment (granted by the CLI only): global and
    /// platform-wide kill switches, system jobs. Independent of the role in the agency.
    pub operator: bool,
}

/// One of the person's agencies, for the header's switcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyChoice {
    pub id: Uuid,
    pub name: String,
}

impl CurrentUser {
    pub fn actor(&self) -> autosocial_core::audit::Actor {
        autosocial_core::audit::Actor {
            user_id: Some(self.user_id),
            label: self.email.clone(),
            ip: self.ip,
        }
    }
}

pub fn session_cookie_name(web: &WebArgs) -> &'static str {
    if web.secure_cookies() {
        "__Host-autosocial_session"
    } else {
        "autosocial_session"
    }
}

pub fn login_cookie_name(web: &WebArgs) -> &'static str {
    if web.secure_cookies() {
        "__Host-autosocial_login"
    } else {
        "autosocial_login"
    }
}

/// A cookie with the console's attributes: HttpOnly, SameSite=Lax (OAuth redirects still carry
/// it), Path=/, Secure (and `__Host-` named) when served over TLS.
pub fn cookie(web: &WebArgs, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(web.secure_cookies())
        .build()
}

/// Per-account and per-address login throttles (in process: there is one admin process).
pub struct LoginThrottle {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginThrottle {
    pub fn new(web: &WebArgs) -> LoginThrottle {
        let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        LoginThrottle {
            per_account: RateLimiter::keyed(Quota::per_minute(
                nz(web.login_per_account_per_minute),
            )),
            per_ip: RateLimiter::keyed(Quota::per_minute(nz(web.login_per_ip_per_minute))),
        }
    }

    /// Count one attempt; Err with the seconds to wait when either limit is exhausted.
    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        let now = DefaultClock::default().now();
        let wait = |e: governor::NotUntil<_>| e.wait_time_from(now).as_secs().max(1);
        if let Some(ip) = ip {
            self.per_ip.check_key(&ip).map_err(wait)?;
        }
        self.per_account
            .check_key(&email.to_lowercase())
            .map_err(wait)?;
        Ok(())
    }

    pub fn retain_recent(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}

/// Outcome of a login attempt.
pub enum LoginOutcome {
    Ok { token: String },
    Refused,
}

/// Check the credentials and open a fresh session (a new id every time).
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> AppResult<LoginOutcome> {
    let user = sqlx::query!(
        r#"SELECT u.id, u.email::text AS "email!", u.password_hash, m.agency_id AS "agency_id?"
           FROM users u
           LEFT JOIN LATERAL (SELECT agency_id FROM memberships WHERE user_id = u.id ORDER BY created_at, agency_id LIMIT 1) m ON true
           WHERE u.email = $1::text::citext AND u.disabled_at IS NULL"#,
        email
    )
    .fetch_optional(&state.pool)
    .await?;
    let password = password.to_owned();
    let (user, verified) = match user {
        Some(u) => {
            let hash = u.password_hash.clone();
            let ok = tokio::task::spawn_blocking(move || {
                autosocial_core::password::verify(&password, &hash)
            })
            .await
            .map_err(anyhow::Error::from)?;
            (Some(u), ok)
        }
        None => {
            // Same work for a missing account as for a wrong password.
            tokio::task::spawn_blocking(move || {
                autosocial_core::password::verify(
                    &password,
                    autosocial_core::password::dummy_hash(),
                )
            })
            .await
            .map_err(anyhow::Error::from)?;
            (None, false)
        }
    };
    let mut tx = state.pool.begin().await?;
    let outcome = match user {
        Some(u) if verified && u.agency_id.is_some() => {
            let agency_id = u.agency_id.expect("checked");
            let token =
                open_session(state, &mut tx, u.id, &u.email, agency_id, ip, user_agent).await?;
            LoginOutcome::Ok { token }
        }
        _ => {
            let actor = autosocial_core::audit::Actor {
                user_id: None,
                label: format!("login:{}", truncate(email, 200)),
                ip,
            };
            autosocial_core::audit::append(
                &mut tx,
                &actor,
                autosocial_core::audit::Entry::new(None, "auth.login_failed"),
            )
            .await?;
            LoginOutcome::Refused
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Open a fresh session (a new random id) for a member of `agency`, in the caller's
/// transaction, and audit the login in the agency's chain. Returns the cookie's token.
pub async fn open_session(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    email: &str,
    agency_id: Uuid,
    ip: Option<IpAddr>,
    user_agent: Option<&str>,
) -> AppResult<String> {
    let token = random_token(32);
    let csrf = random_token(32);
    let absolute = i32::try_from(state.web.session_absolute_hours).unwrap_or(12);
    sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, agency_id, csrf_token, expires_at, ip, user_agent)
         VALUES ($1, $2, $3, $4, now() + make_interval(hours => $5), $6, left($7, 512))",
        token_hash(&token),
        user_id,
        agency_id,
        csrf,
        absolute,
        ip.map(sqlx::types::ipnetwork::IpNetwork::from),
        user_agent,
    )
    .execute(&mut *tx)
    .await?;
    let actor = autosocial_core::audit::Actor {
        user_id: Some(user_id),
        label: email.to_owned(),
        ip,
    };
    autosocial_core::audit::append(
        tx,
        &actor,
        autosocial_core::audit::Entry::new(Some(agency_id), "auth.login").target("user", user_id),
    )
    .await?;
    Ok(token)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// End the session behind this cookie value.
pub async fn logout(state: &AppState, user: &CurrentUser, token: &str) -> AppResult<()> {
    let mut tx = state.pool.begin().await?;
    sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", token_hash(token))
        .execute(&mut *tx)
        .await?;
    autosocial_core::audit::append(
        &mut tx,
        &user.actor(),
        autosocial_core::audit::Entry::new(Some(user.agency_id), "auth.logout")
            .target("user", user.user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Look a session token up, enforcing the idle and absolute timeouts, and touch it.
pub async fn session_user(
    state: &AppState,
    token: &str,
    ip: Option<IpAddr>,
) -> AppResult<Option<CurrentUser>> {
    let idle = i32::try_from(state.web.session_idle_minutes).unwrap_or(60);
    let row = sqlx::query!(
        r#"SELECT s.user_id, s.agency_id, a.name AS agency_name, u.email::text AS "email!", m.role AS "role: Role",
                  s.csrf_token, (s.last_seen_at < now() - interval '60 seconds') AS "stale!",
                  ms.ids AS "agency_ids!: Vec<Uuid>", ms.names AS "agency_names!: Vec<String>",
                  EXISTS (SELECT 1 FROM kill_switches k
                          WHERE k.disengaged_at IS NULL AND (k.agency_id = s.agency_id OR k.agency_id IS NULL))
                      AS "switches_engaged!",
                  EXISTS (SELECT 1 FROM operators o WHERE o.user_id = s.user_id) AS "operator!"
           FROM sessions s
           JOIN memberships m ON m.agency_id = s.agency_id AND m.user_id = s.user_id
           JOIN users u ON u.id = s.user_id
           JOIN agencies a ON a.id = s.agency_id
           CROSS JOIN LATERAL (
               SELECT array_agg(a2.id ORDER BY a2.name, a2.id) AS ids, array_agg(a2.name ORDER BY a2.name, a2.id) AS names
               FROM memberships m2 JOIN agencies a2 ON a2.id = m2.agency_id
               WHERE m2.user_id = s.user_id) ms
           WHERE s.id_hash = $1 AND s.expires_at > now()
             AND s.last_seen_at > now() - make_interval(mins => $2)
             AND u.disabled_at IS NULL"#,
        token_hash(token),
        idle
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    if row.stale {
        sqlx::query!(
            "UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1",
            token_hash(token)
        )
        .execute(&state.pool)
        .await?;
    }
    Ok(Some(CurrentUser {
        user_id: row.user_id,
        agency_id: row.agency_id,
        agency_name: row.agency_name,
        email: row.email,
        role: row.role,
        csrf_token: row.csrf_token,
        ip,
        agencies: row
            .agency_ids
            .into_iter()
            .zip(row.agency_names)
            .map(|(id, name)| AgencyChoice { id, name })
            .collect(),
        switches_engaged: row.switches_engaged,
        operator: row.operator,
    }))
}

/// Delete sessions past their absolute or idle expiry.
pub async fn prune_sessions(state: &AppState) -> sqlx::Result<u64> {
    let idle = i32::try_from(state.web.session_idle_minutes).unwrap_or(60);
    Ok(sqlx::query!(
        "DELETE FROM sessions WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(mins => $1)",
        idle
    )
    .execute(&state.pool)
    .await?
    .rows_affected())
}

/// The client's address: X-Real-IP from the trusted proxy, else the socket's peer.
pub fn client_ip(parts: &Parts, web: &WebArgs) -> Option<IpAddr> {
    if web.trust_proxy
        && let Some(ip) = parts
            .headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse().ok())
    {
        return Some(ip);
    }
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Middleware for every console route: no valid session → the login page (or, for htmx, a
/// redirect header). Puts the [`CurrentUser`] in the request extensions.
pub async fn require_session(
    State(state): State<AppState>,
    jar: CookieJar,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let ip = client_ip(&parts, &state.web);
    let token = jar
        .get(session_cookie_name(&state.web))
        .map(|c| c.value().to_owned());
    let user = match token {
        Some(t) => match session_user(&state, &t, ip).await {
            Ok(u) => u,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    match user {
        Some(user) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, body)).await
        }
        None => {
            if parts.headers.contains_key("hx-request") {
                let mut r = axum::http::StatusCode::UNAUTHORIZED.into_response();
                r.headers_mut().insert(
                    "hx-redirect",
                    axum::http::HeaderValue::from_static("/login"),
                );
                r
            } else {
                let next_path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next_path.as_bytes()).collect::<String>()
                );
                axum::response::Redirect::to(&target).into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(AppError::Unauthorized)
    }
}

/// A role requirement, as a type.
pub trait RoleRequirement {
    const ROLE: Role;
}

/// The current user, proven to hold at least `R`'s role: handlers name what they need.
pub struct Authorized<R: RoleRequirement>(pub CurrentUser, PhantomData<R>);

impl<R: RoleRequirement> std::ops::Deref for Authorized<R> {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

impl<S: Send + Sync, R: RoleRequirement> FromRequestParts<S> for Authorized<R> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.role.allows(R::ROLE) {
            Ok(Authorized(user, PhantomData))
        } else {
            Err(AppError::Forbidden)
        }
    }
}

macro_rules! role_requirement {
    ($name:ident, $req:ident, $role:expr) => {
        pub struct $req;
        impl RoleRequirement for $req {
            const ROLE: Role = $role;
        }
        pub type $name = Authorized<$req>;
    };
}

role_requirement!(Viewer, ViewerRole, Role::Viewer);
role_requirement!(Reviewer, ReviewerRole, Role::Reviewer);
role_requirement!(AdminRole, AdminRequirement, Role::Admin);
role_requirement!(Owner, OwnerRole, Role::Owner);
