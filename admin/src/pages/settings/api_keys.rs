//! Settings: API keys for the JSON API (`/api/v1`). Owners and admins create and revoke them;
//! a key is shown once, when it is created (only its hash is stored), and named, with a role and
//! optionally a list of the clients it may reach. Creating and revoking are audited
//! (`autosocial_core::api_keys`).

use super::*;

use autosocial_core::api_keys::{self, NewKey};

/// The most clients a key may be limited to by name in one form.
const MAX_CLIENTS: usize = 500;

fn role_label(r: Role) -> &'static str {
    match r {
        Role::Viewer => "viewer: reads clients and items",
        Role::Reviewer => "reviewer: also approves and rejects items",
        Role::Admin => "admin: also creates and changes clients",
        Role::Owner => "owner",
    }
}

async fn render_keys(state: &AppState, user: &CurrentUser, flash: &Flash) -> AppResult<Markup> {
    let keys = api_keys::list(&state.pool, user.agency_id).await?;
    let v = |field: &str| flash.values.get(field).cloned().unwrap_or_default();
    let chosen = flash
        .values
        .get("key-role")
        .cloned()
        .unwrap_or_else(|| "viewer".into());
    Ok(html! {
        h1 { "API keys" }
        p { a href="/settings" { "← Settings" } }
        p { "Your agency's own tools reach its clients and posts through the JSON API at " code { "/api/v1" } " with one of these keys, sent as "
            code { "Authorization: Bearer as_live_…" } ". Every operation is described in the "
            a href=(crate::api::reference::PATH) { "API reference" } ", from the OpenAPI document at "
            a href="/api/v1/openapi.json" { "/api/v1/openapi.json" } "." }
        @if let Some(n) = &flash.notice { (n) }
        @if !flash.errors.is_empty() {
            p.alert role="alert" { "No key was created: please correct the fields marked below." }
        }
        form.card method="post" action="/settings/api-keys" novalidate {
            h2 { "Create a key" }
            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
            label for="key-name" { "Name" }
            input #key-name type="text" name="name" value=(v("key-name")) required maxlength="100" autocomplete="off"
                aria-invalid=[flash.invalid("key-name")] aria-describedby=[flash.described("key-name")];
            p.hint { "What the key is for, e.g. “CRM sync”: the audit log names the key by it." }
            (flash.message("key-name"))
            label for="key-role" { "Role" }
            select #key-role name="role" aria-invalid=[flash.invalid("key-role")] aria-describedby=[flash.described("key-role")] {
                @for r in api_keys::ROLES {
                    option value=(r.as_str()) selected[chosen == r.as_str()] { (role_label(*r)) }
                }
            }
            (flash.message("key-role"))
            label for="key-clients" { "Limit to clients (optional)" }
            textarea #key-clients name="clients" rows="3"
                aria-invalid=[flash.invalid("key-clients")] aria-describedby=[flash.described("key-clients")] { (v("key-clients")) }
            p.hint { "One client's name per line. Empty: the key reaches every client, including new ones." }
            (flash.message("key-clients"))
            div.actions { button type="submit" { "Create key" } }
        }
        h2 #keys { "Keys" }
        @if keys.is_empty() {
            p { "No keys yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "Role" } th scope="col" { "Clients" }
                    th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "State" }
                } }
                tbody {
                    @for k in &keys {
                        tr {
                            td { (k.name) }
                            td { code { (k.display_prefix) "…" } }
                            td { (k.role.as_str()) }
                            td {
                                @match &k.clients {
                                    None => "All",
                                    Some(c) if c.is_empty() => "None (its clients were deleted)",
                                    Some(c) => (c.join(", ")),
                                }
                            }
                            td { (when(k.created_at)) @if let Some(by) = &k.created_by { br; span.hint { "by " (by) } } }
                            td { @match k.last_used_at { Some(t) => (when(t)), None => "never" } }
                            td {
                                @if let Some(t) = k.revoked_at {
                                    "Revoked " (when(t))
                                } @else {
                                    form method="post" action={ "/settings/api-keys/" (k.id) "/revoke" } {
                                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                                        button.danger type="submit" { "Revoke" span.visually-hidden { " the key " (k.name) } }
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

async fn keys_page(
    state: &AppState,
    htmx: Htmx,
    user: &CurrentUser,
    status: StatusCode,
    flash: Flash,
) -> AppResult<Response> {
    let body = render_keys(state, user, &flash).await?;
    let mut r = (status, respond(htmx, user, "API keys", Nav::Settings, body)).into_response();
    // the page may show a key: never kept by a cache
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `GET /settings/api-keys`.
pub async fn api_keys_page(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
) -> AppResult<Response> {
    keys_page(&state, htmx, &user, StatusCode::OK, Flash::default()).await
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    clients: String,
}

/// `POST /settings/api-keys`: create a key and show it once.
pub async fn create_api_key(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Form(f): Form<KeyForm>,
) -> AppResult<Response> {
    let name = f.name.trim();
    let mut flash = Flash::default()
        .value("key-name", name)
        .value("key-role", &f.role)
        .value("key-clients", &f.clients);
    if name.is_empty() {
        flash
            .errors
            .insert("key-name".into(), "Name the key.".into());
    } else if name.chars().count() > 100 {
        flash
            .errors
            .insert("key-name".into(), "Use at most 100 characters.".into());
    } else if name.chars().any(char::is_control) {
        flash.errors.insert(
            "key-name".into(),
            "The name cannot contain control characters.".into(),
        );
    }
    let role = Role::from_str(&f.role)
        .ok()
        .filter(|r| api_keys::ROLES.contains(r));
    if role.is_none() {
        flash.errors.insert(
            "key-role".into(),
            "Choose viewer, reviewer or admin.".into(),
        );
    }
    let names: Vec<String> = f
        .clients
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut clients: Option<Vec<Uuid>> = None;
    if names.len() > MAX_CLIENTS {
        flash.errors.insert(
            "key-clients".into(),
            format!("Name at most {MAX_CLIENTS} clients; for more, leave it empty (every client)."),
        );
    } else if !names.is_empty() {
        let lowered: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        let found = sqlx::query!(
            "SELECT id, lower(name) AS \"lower!\" FROM clients WHERE agency_id = $1 AND lower(name) = ANY($2)",
            user.agency_id,
            &lowered
        )
        .fetch_all(&state.pool)
        .await?;
        let missing: Vec<&str> = names
            .iter()
            .zip(&lowered)
            .filter(|(_, l)| !found.iter().any(|r| &r.lower == *l))
            .map(|(n, _)| n.as_str())
            .collect();
        if missing.is_empty() {
            clients = Some(found.iter().map(|r| r.id).collect());
        } else {
            let shown: Vec<String> = missing
                .iter()
                .take(5)
                .map(|n| format!("“{}”", n.chars().take(100).collect::<String>()))
                .collect();
            flash.errors.insert(
                "key-clients".into(),
                format!(
                    "Your agency has no client named {}. Check the spelling, one name per line.",
                    shown.join(", ")
                ),
            );
        }
    }
    let (Some(role), true) = (role, flash.errors.is_empty()) else {
        return keys_page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    let mut tx = state.pool.begin().await?;
    let created = api_keys::create(
        &mut tx,
        &user.actor(),
        user.agency_id,
        &NewKey {
            name,
            role,
            clients: clients.as_deref(),
        },
    )
    .await;
    let created = match created {
        Ok(c) => c,
        Err(api_keys::CreateError::Database(e)) => return Err(e.into()),
        Err(e) => {
            // a client deleted since the names were looked up, or a role the form cannot send
            tx.rollback().await?;
            let flash = Flash::error("key-clients", e.to_string())
                .value("key-name", name)
                .value("key-clients", &f.clients);
            return keys_page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
        }
    };
    tx.commit().await?;
    let notice = html! {
        div.notice role="status" {
            p { "Created the key " strong { (name) } " (" (role.as_str()) "). Copy it now: it is shown only this once, and only its hash is kept." }
            label for="new-key" { "API key" }
            input #new-key type="text" readonly value=(created.secret);
            p.hint { "Send it as " code { "Authorization: Bearer …" } ". Revoke it below when it is no longer needed or may have leaked." }
        }
    };
    let flash = Flash {
        notice: Some(notice),
        ..Flash::default()
    };
    keys_page(&state, htmx, &user, StatusCode::CREATED, flash).await
}

/// `POST /settings/api-keys/{id}/revoke`: the key stops working at once.
pub async fn revoke_api_key(
    State(state): State<AppState>,
    user: AdminRole,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if !api_keys::revoke(&mut tx, &user.actor(), user.agency_id, id).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    state.api.keys.forget_all();
    Ok(Redirect::to("/settings/api-keys#keys").into_response())
}
