//! The router (split from serving, so tests drive it in process) and the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fred::prelude::ClientLike;
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use autosocial_core::vault::Vault;

use crate::auth::{self, LoginThrottle};
use crate::config::WebArgs;
use crate::error::AppError;
use crate::pages::{
    account, audit, calendar, client_filter, client_tabs, clients, composer, dashboard, fleet,
    invitations, items, layout, live, login, onboarding, review, settings, switches,
};
use crate::{csrf, extract, statics};

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: fred::clients::Client,
    pub vault: Arc<Vault>,
    pub web: Arc<WebArgs>,
    pub throttle: Arc<LoginThrottle>,
    pub platforms: Arc<autosocial_core::platforms::PlatformsConfig>,
    /// Live updates: the process's one LISTEN, fanned out to open pages.
    pub live: Arc<crate::pages::live::Hub>,
    /// The Content-Security-Policy header, built once from the platforms configured.
    pub csp: HeaderValue,
    /// The dashboard's figures per agency, counted at most every few seconds.
    pub dashboard: Arc<dashboard::FiguresCache>,
    /// The agency-wide calendar's per-day counts, likewise.
    pub calendar_counts: Arc<calendar::CountsCache>,
    /// Items as the review queue last read them, by version.
    pub items: Arc<crate::pages::items::ItemCache>,
    /// The JSON API's per-key rate limits.
    pub api: Arc<crate::api::ApiState>,
}

impl AppState {
    pub fn new(
        pool: PgPool,
        redis: fred::clients::Client,
        vault: Arc<Vault>,
        web: WebArgs,
    ) -> AppState {
        let throttle = Arc::new(LoginThrottle::new(&web));
        let platforms = Arc::new(web.platforms.config());
        let api = Arc::new(crate::api::ApiState::new(web.api_requests_per_minute));
        AppState {
            pool,
            redis,
            vault,
            web: Arc::new(web),
            throttle,
            csp: csp(&platforms),
            platforms,
            live: Arc::default(),
            dashboard: dashboard::figures_cache(),
            calendar_counts: calendar::counts_cache(),
            items: crate::pages::items::item_cache(),
            api,
        }
    }
}

/// The Content-Security-Policy of every response. `form-action` also governs where a form's
/// redirect may lead, so it names the authorization origins of the platforms this deployment
/// can connect: the Connect forms answer with a redirect to the platform.
fn csp(platforms: &autosocial_core::platforms::PlatformsConfig) -> HeaderValue {
    let origins: std::collections::BTreeSet<String> = autosocial_core::domain::Platform::ALL
        .iter()
        .filter_map(|p| autosocial_core::platforms::connector(*p, platforms))
        .map(|c| c.authorization_endpoint().origin().ascii_serialization())
        .collect();
    let extra: String = origins.iter().map(|o| format!(" {o}")).collect();
    HeaderValue::from_str(&format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'{extra}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ))
    .expect("origins are header-safe")
}

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, state.csp.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show tenant data: never store them in shared caches or the back/forward cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when Postgres and Redis both answer.
async fn readyz(State(state): State<AppState>) -> Response {
    let db = sqlx::query_scalar!("SELECT 1 AS \"one!\"")
        .fetch_one(&state.pool)
        .await
        .is_ok();
    let redis = tokio::time::timeout(Duration::from_secs(2), state.redis.ping::<String>(None))
        .await
        .is_ok_and(|r| r.is_ok());
    let body = serde_json::json!({ "database": db, "redis": redis }).to_string();
    let status = if db && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// A handler panicked: log it with an id and answer like any internal error.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    AppError::Other(anyhow::anyhow!("handler panicked: {what}")).into_response()
}

pub fn router(state: AppState) -> Router {
    let console = Router::new()
        .route("/", get(dashboard::show))
        .route("/dashboard/live", get(dashboard::live_figures))
        .route("/calendar", get(calendar::agency))
        .route(
            "/calendar/items/{id}/reschedule",
            post(calendar::reschedule_item),
        )
        .route(
            "/calendar/publications/{id}/reschedule",
            post(calendar::reschedule_publication),
        )
        .route("/clients/{id}/calendar", get(calendar::client))
        .route("/clients/{id}/accounts", get(client_tabs::accounts))
        .route(
            "/clients/{id}/accounts/{account}/disconnect",
            post(client_tabs::disconnect),
        )
        .route("/clients/{id}/pipeline", get(client_tabs::pipeline))
        .route(
            "/clients/{id}/pipeline/live",
            get(client_tabs::pipeline_live),
        )
        .route("/clients/{id}/logs", get(client_tabs::logs))
        .route("/live/events", get(live::events))
        .route("/clients", get(clients::list).post(clients::create))
        .route("/clients/new", get(clients::new_form))
        .route("/clients/suggest", get(client_filter::suggest))
        .route("/clients/{id}", get(clients::show).post(clients::update))
        .route("/clients/{id}/edit", get(clients::edit_form))
        .route("/clients/{id}/status", post(clients::set_status))
        .route(
            "/clients/{id}/brand",
            get(crate::pages::brand::show).post(crate::pages::brand::save),
        )
        .route(
            "/clients/{id}/brand/preview",
            post(crate::pages::brand::preview_fragment),
        )
        .route(
            "/clients/{id}/brand/preview.png",
            get(crate::pages::brand::preview_png),
        )
        .route(
            "/clients/{id}/brand/logo",
            post(crate::pages::brand::upload_logo).layer(axum::extract::DefaultBodyLimit::max(
                crate::pages::brand::LOGO_BODY_LIMIT,
            )),
        )
        .route(
            "/clients/{id}/brand/logo/remove",
            post(crate::pages::brand::remove_logo),
        )
        .route(
            "/clients/{id}/rules",
            get(crate::pages::rules::list).post(crate::pages::rules::create),
        )
        .route(
            "/clients/{id}/rules/new",
            get(crate::pages::rules::new_form),
        )
        .route(
            "/clients/{id}/rules/preview",
            post(crate::pages::rules::preview_fragment),
        )
        .route(
            "/clients/{id}/rules/{rule}",
            post(crate::pages::rules::update),
        )
        .route(
            "/clients/{id}/rules/{rule}/edit",
            get(crate::pages::rules::edit_form),
        )
        .route(
            "/clients/{id}/rules/{rule}/delete",
            post(crate::pages::rules::delete),
        )
        .route(
            "/clients/{id}/onboarding",
            get(onboarding::list).post(onboarding::create),
        )
        .route(
            "/clients/{id}/onboarding/{link}/revoke",
            post(onboarding::revoke),
        )
        .route(
            "/clients/{id}/accounts/connect/{platform}",
            post(onboarding::console_connect),
        )
        .route("/review", get(review::list))
        .route("/review/approve", post(review::bulk_approve))
        .route("/items/{id}", get(items::show))
        .route("/items/{id}/approve", post(items::approve))
        .route("/items/{id}/edit", post(items::edit))
        .route("/items/{id}/edit-form", get(items::edit_form_fragment))
        .route("/items/{id}/reject", post(items::reject))
        .route("/items/{id}/regenerate", post(items::regenerate))
        .route("/items/{id}/cancel", post(items::cancel))
        .route(
            "/items/{id}/publications/{publication}/reschedule",
            post(items::reschedule),
        )
        .route(
            "/clients/{id}/compose",
            get(composer::form).post(composer::save),
        )
        .route("/clients/{id}/compose/check", post(composer::check))
        .route(
            "/clients/{id}/compose/upload",
            post(composer::upload).layer(axum::extract::DefaultBodyLimit::max(
                composer::UPLOAD_BODY_LIMIT,
            )),
        )
        .route("/settings", get(settings::show))
        .route("/settings/members", post(settings::invite))
        .route("/settings/members/{user}/role", post(settings::change_role))
        .route(
            "/settings/members/{user}/remove",
            post(settings::remove_member),
        )
        .route(
            "/settings/invitations/{id}/revoke",
            post(settings::revoke_invitation),
        )
        .route("/settings/apps/{platform}", post(settings::save_app))
        .route(
            "/settings/apps/{platform}/remove",
            post(settings::remove_app),
        )
        .route("/settings/ai", post(settings::save_ai))
        .route(
            "/settings/api-keys",
            get(settings::api_keys_page).post(settings::create_api_key),
        )
        .route(
            "/settings/api-keys/{id}/revoke",
            post(settings::revoke_api_key),
        )
        .route(
            "/settings/webhooks",
            get(settings::webhooks_page).post(settings::create_webhook),
        )
        .route("/settings/webhooks/{id}", get(settings::webhook_log))
        .route(
            "/settings/webhooks/{id}/rotate",
            post(settings::rotate_webhook),
        )
        .route(
            "/settings/webhooks/{id}/enable",
            post(settings::enable_webhook),
        )
        .route(
            "/settings/webhooks/{id}/disable",
            post(settings::disable_webhook),
        )
        .route(
            "/settings/webhooks/{id}/delete",
            post(settings::delete_webhook),
        )
        .route("/settings/webhooks/{id}/test", post(settings::test_webhook))
        .route(
            "/settings/webhook-deliveries/{id}/redeliver",
            post(settings::redeliver_webhook),
        )
        .route("/settings/limits", post(settings::save_limit))
        .route("/switches", get(switches::list).post(switches::engage))
        .route("/switches/{id}/disengage", post(switches::disengage))
        .route("/fleet", get(fleet::show))
        .route("/fleet/live", get(fleet::live))
        .route("/fleet/jobs/{id}/retry", post(fleet::retry))
        .route("/fleet/jobs/{id}/discard", post(fleet::discard))
        .route("/audit", get(audit::list))
        .route("/logout", post(login::logout))
        .route("/account/agency", post(account::switch_agency))
        .route(
            "/account/password",
            get(account::password_page).post(account::change_password),
        )
        // the kill-switch banner of every page (needs the session's agency)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layout::switch_banner,
        ))
        // inner: CSRF (needs the session's token); outer: the session itself
        .layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_session,
        ));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        // the client's onboarding pages and OAuth callbacks: no login, their own CSRF defence
        .route("/onboard/continue", get(onboarding::resume))
        .route("/onboard/{token}", get(onboarding::open))
        .route(
            "/onboard/{token}/connect/{platform}",
            post(onboarding::connect),
        )
        .route("/onboard/{token}/finish", post(onboarding::finish))
        .route("/oauth/callback/{platform}", get(onboarding::callback))
        // accepting an invitation to an agency: no login, its own CSRF defence
        .route(
            "/invite/{token}",
            get(invitations::show).post(invitations::accept),
        )
        .route("/media/{*path}", get(crate::media::serve))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/static/{name}", get(statics::serve))
        .route("/favicon.ico", get(statics::favicon))
        .merge(console)
        // the JSON API: its own keys, errors as Problem Details, no session or CSRF
        .merge(crate::api::router(state.clone()))
        .fallback(not_found)
        // input that is not text is refused before any handler reads it
        .layer(middleware::from_fn(extract::reject_invalid_text))
        // a panic is a bug: the person gets the error page with an id, the connection survives
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve until `shutdown` resolves; housekeeping (expired sessions, throttle memory) runs alongside.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                match auth::prune_sessions(&state).await {
                    Ok(n) if n > 0 => tracing::info!(sessions = n, "pruned expired sessions"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning sessions failed"),
                }
                state.throttle.retain_recent();
                state.api.limits.retain_recent();
                state.api.keys.retain_recent();
                match crate::api::idempotency::prune(&state.pool).await {
                    Ok(n) if n > 0 => tracing::info!(responses = n, "pruned idempotent responses"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning idempotent responses failed"),
                }
            }
        })
    };
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    housekeeping.abort();
    result
}
