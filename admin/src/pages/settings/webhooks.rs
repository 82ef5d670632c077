//! Settings → Webhooks: the agency's signed webhook endpoints. Owners and admins add one (its
//! URL checked by the address guard, the events chosen), see its signing secret once, rotate
//! it, disable, enable and delete it, send a test event, and read each endpoint's delivery log
//! with every attempt, redelivering a delivery by hand. Every change is audited
//! (`autosocial_core::webhooks::endpoints`). An endpoint the system disabled after a day of
//! failures says so at the top of the page.

use super::*;

use autosocial_core::webhooks::EventType;
use autosocial_core::webhooks::endpoints::{self, Change, NewEndpoint, RedeliverError};

use crate::extract::RawForm;

/// Deliveries shown per page of an endpoint's log.
const LOG_PAGE: i64 = 50;

fn pairs(form: &RawForm) -> Vec<(String, String)> {
    form_urlencoded::parse(&form.0)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

fn secret_notice(what: &str, secret: &str) -> Markup {
    html! {
        div.notice role="status" {
            p { (what) " Copy the signing secret now: it is shown only this once." }
            label for="new-secret" { "Signing secret" }
            input #new-secret type="text" readonly value=(secret);
            p.hint { "Verify each delivery's " code { "webhook-signature" } " with it, using any Standard Webhooks library." }
        }
    }
}

fn state_label(e: &endpoints::Endpoint) -> Markup {
    html! {
        @if e.enabled {
            @if let Some(since) = e.failing_since {
                "Enabled; failing since " (when(since))
            } @else { "Enabled" }
        } @else {
            "Disabled"
            @if let Some(r) = &e.disabled_reason { br; span.hint { (r) } }
        }
    }
}

fn hidden_csrf(user: &CurrentUser) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(user.csrf_token); }
}

async fn render_list(state: &AppState, user: &CurrentUser, flash: &Flash) -> AppResult<Markup> {
    let list = endpoints::list(&state.pool, user.agency_id).await?;
    let v = |field: &str| flash.values.get(field).cloned().unwrap_or_default();
    let chosen: Vec<String> = flash
        .values
        .get("wh-events")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let auto_disabled: Vec<&endpoints::Endpoint> = list
        .iter()
        .filter(|e| {
            e.disabled_reason
                .as_deref()
                .is_some_and(|r| r.starts_with("Disabled automatically"))
        })
        .collect();
    Ok(html! {
        h1 { "Webhooks" }
        p { a href="/settings" { "← Settings" } }
        p { "Your agency's own tools hear about posts, accounts and kill switches as they happen: each event is POSTed as JSON "
            code { "{\"type\", \"timestamp\", \"data\"}" } " to the endpoints that want it, signed per the Standard Webhooks specification ("
            code { "webhook-id" } ", " code { "webhook-timestamp" } ", " code { "webhook-signature" } "). Failed deliveries are retried for about a day; an endpoint that fails every attempt for a day is disabled." }
        @for e in &auto_disabled {
            div.alert role="alert" {
                p { "The endpoint " code { (e.url) } " was disabled: " (e.disabled_reason.as_deref().unwrap_or_default())
                    " Fix the receiver, enable it below, and redeliver what it missed from its delivery log." }
            }
        }
        @if let Some(n) = &flash.notice { (n) }
        @if !flash.errors.is_empty() {
            p.alert role="alert" { "No endpoint was added: please correct the fields marked below." }
        }
        form.card method="post" action="/settings/webhooks" novalidate {
            h2 { "Add an endpoint" }
            (hidden_csrf(user))
            label for="wh-url" { "URL" }
            input #wh-url type="url" name="url" value=(v("wh-url")) required maxlength="2000" autocomplete="off"
                aria-invalid=[flash.invalid("wh-url")] aria-describedby=[flash.described("wh-url")];
            p.hint { "An https:// address of your receiver on the public internet." }
            (flash.message("wh-url"))
            label for="wh-description" { "Description (optional)" }
            input #wh-description type="text" name="description" value=(v("wh-description")) maxlength="300" autocomplete="off"
                aria-invalid=[flash.invalid("wh-description")] aria-describedby=[flash.described("wh-description")];
            (flash.message("wh-description"))
            fieldset aria-describedby=[flash.described("wh-events")] {
                legend { "Events" }
                @for t in EventType::ALL {
                    @let id = format!("wh-event-{}", t.as_str().replace('.', "-"));
                    div {
                        input id=(id) type="checkbox" name="events" value=(t.as_str()) checked[chosen.iter().any(|c| c == t.as_str())];
                        " "
                        label for=(id) { code { (t.as_str()) } ": " (t.label()) }
                    }
                }
                (flash.message("wh-events"))
            }
            div.actions { button type="submit" { "Add endpoint" } }
        }
        h2 #endpoints { "Endpoints" }
        @if list.is_empty() {
            p { "No endpoints yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "State" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for e in &list {
                        tr {
                            td {
                                a href={ "/settings/webhooks/" (e.id) } { code { (e.url) } }
                                @if !e.description.is_empty() { br; span.hint { (e.description) } }
                            }
                            td { (e.event_types.join(", ")) }
                            td { (state_label(e)) }
                            td { (actions(user, e)) }
                        }
                    }
                }
            }
        }
    })
}

fn actions(user: &CurrentUser, e: &endpoints::Endpoint) -> Markup {
    let base = format!("/settings/webhooks/{}", e.id);
    html! {
        div.actions {
            a href=(base) { "Delivery log" span.visually-hidden { " of " (e.url) } }
            @if e.enabled {
                form method="post" action={ (base) "/test" } {
                    (hidden_csrf(user))
                    button.secondary type="submit" { "Send test event" span.visually-hidden { " to " (e.url) } }
                }
            }
            form method="post" action={ (base) "/rotate" } {
                (hidden_csrf(user))
                button.secondary type="submit" { "Rotate secret" span.visually-hidden { " of " (e.url) } }
            }
            @if e.enabled {
                form method="post" action={ (base) "/disable" } {
                    (hidden_csrf(user))
                    button.secondary type="submit" { "Disable" span.visually-hidden { " " (e.url) } }
                }
            } @else {
                form method="post" action={ (base) "/enable" } {
                    (hidden_csrf(user))
                    button.secondary type="submit" { "Enable" span.visually-hidden { " " (e.url) } }
                }
            }
            form method="post" action={ (base) "/delete" } {
                (hidden_csrf(user))
                button.danger type="submit" { "Delete" span.visually-hidden { " " (e.url) } }
            }
        }
    }
}

async fn list_page(
    state: &AppState,
    htmx: Htmx,
    user: &CurrentUser,
    status: StatusCode,
    flash: Flash,
) -> AppResult<Response> {
    let body = render_list(state, user, &flash).await?;
    Ok(no_store(
        (status, respond(htmx, user, "Webhooks", Nav::Settings, body)).into_response(),
    ))
}

/// `GET /settings/webhooks`.
pub async fn webhooks_page(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
) -> AppResult<Response> {
    list_page(&state, htmx, &user, StatusCode::OK, Flash::default()).await
}

/// `POST /settings/webhooks`: add an endpoint and show its secret once.
pub async fn create_webhook(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    form: RawForm,
) -> AppResult<Response> {
    let mut url = String::new();
    let mut description = String::new();
    let mut events: Vec<String> = Vec::new();
    for (k, v) in pairs(&form) {
        match k.as_str() {
            "url" => url = v,
            "description" => description = v,
            "events" => events.push(v),
            _ => {}
        }
    }
    let mut flash = Flash::default()
        .value("wh-url", url.trim())
        .value("wh-description", description.trim())
        .value("wh-events", &events.join(","));
    let url = endpoints::check_url(&url, state.web.outbound.into())
        .map_err(|m| flash.errors.insert("wh-url".into(), m))
        .ok();
    let description = endpoints::check_description(&description)
        .map_err(|m| flash.errors.insert("wh-description".into(), m))
        .ok();
    let events = endpoints::check_events(&events)
        .map_err(|m| flash.errors.insert("wh-events".into(), m))
        .ok();
    let (Some(url), Some(description), Some(events), true) =
        (url, description, events, flash.errors.is_empty())
    else {
        return list_page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    let mut tx = state.pool.begin().await?;
    let created = endpoints::create(
        &mut tx,
        &state.vault,
        &user.actor(),
        user.agency_id,
        &NewEndpoint {
            url: &url,
            description: &description,
            events: &events,
        },
    )
    .await?;
    tx.commit().await?;
    let flash = Flash {
        notice: Some(secret_notice(
            &format!("Added the endpoint {url}."),
            &created.secret,
        )),
        ..Flash::default()
    };
    list_page(&state, htmx, &user, StatusCode::CREATED, flash).await
}

/// `POST /settings/webhooks/{id}/rotate`: a new secret, shown once; the old one signs 24 h more.
pub async fn rotate_webhook(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let Some(secret) =
        endpoints::rotate(&mut tx, &state.vault, &user.actor(), user.agency_id, id).await?
    else {
        return Err(AppError::NotFound);
    };
    tx.commit().await?;
    let flash = Flash {
        notice: Some(secret_notice(
            "Rotated the secret. Deliveries carry a signature by the previous secret too for the next 24 hours.",
            &secret,
        )),
        ..Flash::default()
    };
    list_page(&state, htmx, &user, StatusCode::OK, flash).await
}

async fn set_enabled(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    enabled: bool,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let change = Change {
        enabled: Some(enabled),
        ..Change::default()
    };
    if !endpoints::update(&mut tx, &user.actor(), user.agency_id, id, &change).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    Ok(Redirect::to("/settings/webhooks#endpoints").into_response())
}

/// `POST /settings/webhooks/{id}/enable`.
pub async fn enable_webhook(
    State(state): State<AppState>,
    user: AdminRole,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    set_enabled(&state, &user, id, true).await
}

/// `POST /settings/webhooks/{id}/disable`.
pub async fn disable_webhook(
    State(state): State<AppState>,
    user: AdminRole,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    set_enabled(&state, &user, id, false).await
}

/// `POST /settings/webhooks/{id}/delete`.
pub async fn delete_webhook(
    State(state): State<AppState>,
    user: AdminRole,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if !endpoints::delete(&mut tx, &user.actor(), user.agency_id, id).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    Ok(Redirect::to("/settings/webhooks#endpoints").into_response())
}

/// `POST /settings/webhooks/{id}/test`: queue a `webhook.test` event to the endpoint.
pub async fn test_webhook(
    State(state): State<AppState>,
    user: AdminRole,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    if endpoints::get(&state.pool, user.agency_id, id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound);
    }
    let mut tx = state.pool.begin().await?;
    if endpoints::send_test(&mut tx, &user.actor(), user.agency_id, id)
        .await?
        .is_none()
    {
        return Err(AppError::BadRequest(
            "The endpoint is disabled: enable it before sending a test event.".into(),
        ));
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!("/settings/webhooks/{id}#deliveries")).into_response())
}

/// `POST /settings/webhook-deliveries/{id}/redeliver`.
pub async fn redeliver_webhook(
    State(state): State<AppState>,
    user: AdminRole,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let Some(d) = endpoints::delivery(&state.pool, user.agency_id, id).await? else {
        return Err(AppError::NotFound);
    };
    let mut tx = state.pool.begin().await?;
    match endpoints::redeliver(&mut tx, &user.actor(), user.agency_id, id).await {
        Ok(()) => {}
        Err(RedeliverError::NotFound) => return Err(AppError::NotFound),
        Err(RedeliverError::Disabled) => {
            return Err(AppError::BadRequest(
                "The endpoint is disabled: enable it before redelivering.".into(),
            ));
        }
        Err(RedeliverError::Database(e)) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!("/settings/webhooks/{}#deliveries", d.endpoint_id)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    before: Option<String>,
}

/// `GET /settings/webhooks/{id}`: an endpoint and its delivery log, each attempt listed.
pub async fn webhook_log(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    crate::extract::Query(q): crate::extract::Query<LogQuery>,
) -> AppResult<Response> {
    let Some(e) = endpoints::get(&state.pool, user.agency_id, id).await? else {
        return Err(AppError::NotFound);
    };
    // `before` is `<micros>_<uuid>` of the last delivery of the previous page
    let before = q.before.as_deref().and_then(|b| {
        let (t, i) = b.split_once('_')?;
        Some((
            DateTime::from_timestamp_micros(t.parse().ok()?)?,
            Uuid::parse_str(i).ok()?,
        ))
    });
    if q.before.is_some() && before.is_none() {
        return Err(AppError::BadRequest(
            "The page position in the address is not valid.".into(),
        ));
    }
    let mut rows =
        endpoints::deliveries(&state.pool, user.agency_id, id, before, LOG_PAGE + 1).await?;
    let more = rows.len() as i64 > LOG_PAGE;
    rows.truncate(LOG_PAGE as usize);
    let mut attempts = Vec::with_capacity(rows.len());
    for d in &rows {
        attempts.push(endpoints::attempts(&state.pool, user.agency_id, d.id).await?);
    }
    let next = more
        .then(|| {
            rows.last()
                .map(|d| format!("{}_{}", d.created_at.timestamp_micros(), d.id))
        })
        .flatten();
    let body = html! {
        h1 { "Webhook endpoint" }
        p { a href="/settings/webhooks" { "← Webhooks" } }
        dl.facts {
            dt { "URL" } dd { code { (e.url) } }
            @if !e.description.is_empty() { dt { "Description" } dd { (e.description) } }
            dt { "Events" } dd { (e.event_types.join(", ")) }
            dt { "State" } dd { (state_label(&e)) }
            @if let Some(t) = e.previous_secret_expires_at {
                dt { "Previous secret" } dd { "still signs until " (when(t)) }
            }
            dt { "Added" } dd { (when(e.created_at)) }
        }
        (actions(&user, &e))
        h2 #deliveries { "Deliveries" }
        @if rows.is_empty() {
            p { "Nothing was sent to this endpoint yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Event" } th scope="col" { "State" } th scope="col" { "Attempts" } th scope="col" { "Redeliver" }
                } }
                tbody {
                    @for (d, tries) in rows.iter().zip(&attempts) {
                        tr {
                            td { code { (d.event_type) } br; span.hint { "webhook-id " (d.event_id) } br; span.hint { (when(d.created_at)) } }
                            td { (d.state) @if let Some(err) = &d.last_error { br; span.hint { (err) } } }
                            td {
                                @if tries.is_empty() { "none yet" } @else {
                                    ol {
                                        @for a in tries {
                                            li {
                                                (when(a.attempted_at)) ": "
                                                @match a.status_code { Some(s) => { "HTTP " (s) }, None => "no answer" }
                                                ", " (a.duration_ms) " ms"
                                                @if let Some(err) = &a.error { br; span.hint { (err) } }
                                                @if let Some(x) = &a.response_excerpt { br; code.hint { (x) } }
                                            }
                                        }
                                    }
                                }
                            }
                            td {
                                form method="post" action={ "/settings/webhook-deliveries/" (d.id) "/redeliver" } {
                                    (hidden_csrf(&user))
                                    button.secondary type="submit" disabled[!e.enabled] { "Redeliver" span.visually-hidden { " " (d.event_type) " " (d.event_id) } }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(n) = next {
                p { a href={ "/settings/webhooks/" (e.id) "?before=" (n) "#deliveries" } { "Older deliveries" } }
            }
        }
    };
    Ok(no_store(
        respond(htmx, &user, "Webhook endpoint", Nav::Settings, body).into_response(),
    ))
}
