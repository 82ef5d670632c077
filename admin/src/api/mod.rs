//! The public JSON API, `/api/v1`, served by the admin process for agencies' own tools.
//!
//! - `auth`: API keys as `Authorization: Bearer`, roles as extractors, per-key rate limits;
//! - `idempotency`: `Idempotency-Key` on POST and PATCH (Stripe's semantics);
//! - `input`: JSON bodies read field by field, query parameters, ids, cursors, ETags;
//! - `problem`: every error as Problem Details (RFC 9457);
//! - `clients`, `items` (and `item_actions`), `accounts`, `links` (onboarding links),
//!   `publications`, `switches` (kill switches), `brand` (brand and content rules), `media`:
//!   the resources.
//!
//! Handlers call the same `autosocial_core` functions as the console (client writes, the item
//! lifecycle), scoped by the key's agency and client limit: another agency's ids are 404. The
//! OpenAPI 3.1 document is generated from the handlers and types ([`ApiDoc`]) and served at
//! `/api/v1/openapi.json` without a key, with a reference page over it at `/api/v1/docs`
//! (`reference`).

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::app::AppState;

pub mod accounts;
pub mod auth;
pub mod brand;
pub mod clients;
pub mod doc;
pub mod idempotency;
pub mod input;
pub mod item_actions;
pub mod items;
pub mod links;
pub mod media;
pub mod problem;
pub mod publications;
pub mod reference;
pub mod rules;
pub mod switches;
pub mod webhooks;

use problem::{ApiError, ProblemType};

/// The API's own state in [`AppState`].
pub struct ApiState {
    pub limits: auth::RateLimits,
    pub keys: auth::KeyCache,
}

impl ApiState {
    pub fn new(requests_per_minute: u32) -> ApiState {
        ApiState {
            limits: auth::RateLimits::new(requests_per_minute),
            keys: auth::KeyCache::default(),
        }
    }
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("as_live_…")
                    .description(Some(
                        "An API key of the agency, created in the console's Settings → API keys.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, generated from the handlers' annotations and the types they answer with.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "AutoSocial API",
        version = "1",
        description = "The agency's clients, their accounts, onboarding links, content items, publications and kill switches. Authenticate with `Authorization: Bearer as_live_…` \
(Settings → API keys). Every error is Problem Details (RFC 9457) with a `type` under https://autosocial.dev/problems/. \
POST and PATCH take an `Idempotency-Key`: the first response is replayed for 24 hours. Lists are newest first, \
paged with opaque cursors. Each key has a rate limit, announced in `RateLimit` and `RateLimit-Policy`."
    ),
    paths(
        clients::list, clients::create, clients::show, clients::update, clients::pause, clients::resume,
        accounts::list, accounts::show, accounts::disconnect,
        brand::show, brand::update, rules::list, rules::show, rules::update,
        links::create, links::list, links::show, links::revoke, media::upload,
        items::list, items::create, items::show, items::approve, items::reject,
        item_actions::update, item_actions::regenerate, item_actions::cancel, item_actions::reschedule,
        publications::list, publications::show,
        switches::list, switches::show, switches::engage, switches::disengage,
        webhooks::list, webhooks::create, webhooks::show, webhooks::update, webhooks::delete,
        webhooks::rotate, webhooks::test, webhooks::deliveries, webhooks::attempts, webhooks::redeliver,
    ),
    components(schemas(
        problem::Problem, problem::FieldError,
        clients::Client, clients::ClientList, clients::NewClient, clients::ClientPatch,
        items::Item, items::ItemList, items::Target, items::NewItem, doc::Hashtag, items::Approval, items::Rejection,
        doc::ClientStatusValue, doc::RuleFrequencyValue, doc::ContentTypeValue, doc::IsoWeekday, doc::LocalTime, doc::ReschedulePolicy, doc::ItemStateValue, doc::VariantValue, doc::Timezone,
        accounts::Account, accounts::AccountList, accounts::TokenHealth,
        brand::Brand, brand::BrandPatch, rules::Rule, rules::RuleList, rules::RulePatch,
        links::OnboardingLink, links::NewOnboardingLink, links::OnboardingLinkList, media::Media, media::MediaUpload,
        item_actions::ItemPatch, item_actions::Reschedule,
        publications::Publication, publications::PublicationList,
        switches::KillSwitch, switches::KillSwitchList, switches::Engage,
        doc::PlatformValue, doc::AccountStatusValue, doc::PublicationStateValue, doc::KillSwitchScopeValue,
        doc::SwitchScopeValue, doc::LinkStateValue,
        webhooks::WebhookEndpoint, webhooks::WebhookEndpointList, webhooks::NewWebhookEndpoint, webhooks::WebhookEndpointPatch,
        webhooks::CreatedWebhookEndpoint, webhooks::RotatedSecret, webhooks::TestEvent, webhooks::WebhookDelivery,
        webhooks::WebhookDeliveryList, webhooks::WebhookAttempt, webhooks::WebhookAttemptList, webhooks::EventTypeValue,
    )),
    modifiers(&BearerKey),
    tags(
        (name = "clients", description = "The agency's clients"),
        (name = "items", description = "Content items and their review"),
        (name = "brand", description = "A client's brand: voice, themes, banned terms, hashtags, card look"),
        (name = "rules", description = "A client's posting rules: days, local times, frequency, accounts"),
        (name = "media", description = "Images for posts"),
        (name = "accounts", description = "The clients' connected social accounts"),
        (name = "onboarding-links", description = "Links that let a client connect their accounts"),
        (name = "publications", description = "The posts of approved items, one per account"),
        (name = "kill-switches", description = "Stopping publishing for the agency, a client, a platform or an account"),
        (name = "webhooks", description = "Signed webhook endpoints and their deliveries"),
    )
)]
pub struct ApiDoc;

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// A handler panicked: a problem with an id, like any internal error.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::internal(&format!("API handler panicked: {what}")).into_response()
}

/// Answers the router makes itself (a method the path does not have) as problems too.
async fn problems_only(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let r = next.run(req).await;
    if r.status() == StatusCode::METHOD_NOT_ALLOWED && method != Method::OPTIONS {
        let allow = r.headers().get(header::ALLOW).cloned();
        let mut p = ApiError::new(
            ProblemType::MethodNotAllowed,
            "This path does not take this method; `Allow` lists the ones it takes.",
        )
        .into_response();
        if let Some(a) = allow {
            p.headers_mut().insert(header::ALLOW, a);
        }
        return p;
    }
    r
}

/// A resource's handlers behind the key (outer) and the Idempotency-Key (inner, it needs the
/// key's agency), for the methods the path has only: another method is a 405 before either.
fn guarded(state: &AppState, methods: MethodRouter<AppState>) -> MethodRouter<AppState> {
    methods
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
}

/// The API's routes, merged into the app's router (`crate::app::router`).
pub fn router(state: AppState) -> Router<AppState> {
    let s = &state;
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/docs", get(reference::page))
        .route(
            "/api/v1/clients",
            guarded(s, get(clients::list).post(clients::create)),
        )
        .route(
            "/api/v1/clients/{id}",
            guarded(s, get(clients::show).patch(clients::update)),
        )
        .route(
            "/api/v1/clients/{id}/pause",
            guarded(s, post(clients::pause)),
        )
        .route(
            "/api/v1/clients/{id}/resume",
            guarded(s, post(clients::resume)),
        )
        .route(
            "/api/v1/clients/{id}/brand",
            guarded(s, get(brand::show).patch(brand::update)),
        )
        .route(
            "/api/v1/clients/{id}/media",
            guarded(
                s,
                post(media::upload).layer(axum::extract::DefaultBodyLimit::max(
                    crate::pages::composer::UPLOAD_BODY_LIMIT,
                )),
            ),
        )
        .route("/api/v1/clients/{id}/rules", guarded(s, get(rules::list)))
        .route(
            "/api/v1/rules/{id}",
            guarded(s, get(rules::show).patch(rules::update)),
        )
        .route(
            "/api/v1/clients/{id}/onboarding-links",
            guarded(s, get(links::list).post(links::create)),
        )
        .route(
            "/api/v1/onboarding-links/{id}",
            guarded(s, get(links::show)),
        )
        .route(
            "/api/v1/onboarding-links/{id}/revoke",
            guarded(s, post(links::revoke)),
        )
        .route("/api/v1/accounts", guarded(s, get(accounts::list)))
        .route("/api/v1/accounts/{id}", guarded(s, get(accounts::show)))
        .route(
            "/api/v1/accounts/{id}/disconnect",
            guarded(s, post(accounts::disconnect)),
        )
        .route(
            "/api/v1/items",
            guarded(s, get(items::list).post(items::create)),
        )
        .route(
            "/api/v1/items/{id}",
            guarded(s, get(items::show).patch(item_actions::update)),
        )
        .route(
            "/api/v1/items/{id}/regenerate",
            guarded(s, post(item_actions::regenerate)),
        )
        .route(
            "/api/v1/items/{id}/cancel",
            guarded(s, post(item_actions::cancel)),
        )
        .route(
            "/api/v1/items/{id}/reschedule",
            guarded(s, post(item_actions::reschedule)),
        )
        .route("/api/v1/publications", guarded(s, get(publications::list)))
        .route(
            "/api/v1/publications/{id}",
            guarded(s, get(publications::show)),
        )
        .route(
            "/api/v1/kill-switches",
            guarded(s, get(switches::list).post(switches::engage)),
        )
        .route(
            "/api/v1/kill-switches/{id}",
            guarded(s, get(switches::show)),
        )
        .route(
            "/api/v1/kill-switches/{id}/disengage",
            guarded(s, post(switches::disengage)),
        )
        .route(
            "/api/v1/items/{id}/approve",
            guarded(s, post(items::approve)),
        )
        .route("/api/v1/items/{id}/reject", guarded(s, post(items::reject)))
        .merge(webhooks::routes(s))
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .layer(middleware::from_fn(problems_only))
        .layer(CatchPanicLayer::custom(panicked))
}
