//! The composer: a post written by hand for one client — caption, hashtags, call to action,
//! link, the client's active accounts to post to, an image (uploaded, or a card rendered from
//! the client's brand in each chosen platform's size), and when: into the review queue, or
//! approved straight away for a local time of the client or for now.
//!
//! Moderation runs as the user types (htmx posts the form to `/compose/check` and swaps in each
//! platform's length counter and reasons) and again on the server when the post is saved; a
//! post moderation blocks is never saved as approved.
//!
//! Uploads are decoded with the `image` crate before anything is stored, so only real PNG and
//! JPEG files of at most 5 MB get in; they are stored content-addressed in the media directory.

use std::path::{Path as FsPath, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use uuid::Uuid;

use autosocial_core::audit::{self, Entry};
use autosocial_core::content::brand;
use autosocial_core::content::cards::{self, CardSize, CardSpec, Fonts, image};
use autosocial_core::content::moderation::{self, Verdict};
use autosocial_core::domain::Platform;
use autosocial_core::items as lifecycle;
use autosocial_core::publishing;

use crate::app::AppState;
use crate::auth::{CurrentUser, Reviewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Path, RawForm};
use crate::pages::items::{self, Draft, FieldErrors};
use crate::pages::layout::{Htmx, Nav, respond};

mod upload;
pub use upload::*;

mod card_render;
use card_render::*;

/// The largest image accepted.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// The upload route's body limit: the image plus the multipart framing and the CSRF field.
pub const UPLOAD_BODY_LIMIT: usize = MAX_UPLOAD_BYTES + 64 * 1024;
/// Pixels per side an upload may have (a decompression bomb stops here, not in memory).
const MAX_UPLOAD_SIDE: u32 = 12_000;

/// The client the composer writes for.
struct ClientInfo {
    id: Uuid,
    name: String,
    tz: Tz,
}

struct Account {
    id: Uuid,
    platform: Platform,
    display_name: String,
}

async fn client(state: &AppState, agency: Uuid, id: Uuid) -> AppResult<ClientInfo> {
    let c = sqlx::query!(
        "SELECT id, name, timezone FROM clients WHERE id = $1 AND agency_id = $2",
        id,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(ClientInfo {
        id: c.id,
        name: c.name,
        tz: items::zone(&c.timezone),
    })
}

async fn active_accounts(state: &AppState, agency: Uuid, client: Uuid) -> AppResult<Vec<Account>> {
    Ok(sqlx::query!(
        r#"SELECT id, platform AS "platform: Platform", display_name FROM social_accounts
           WHERE agency_id = $1 AND client_id = $2 AND status = 'active'
           ORDER BY platform, display_name, id"#,
        agency,
        client
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| Account {
        id: r.id,
        platform: r.platform,
        display_name: r.display_name,
    })
    .collect())
}

/// The composer's fields as typed.
#[derive(Debug, Default, Clone)]
pub struct ComposeForm {
    caption: String,
    hashtags: String,
    cta: String,
    link_url: String,
    accounts: Vec<String>,
    /// `none`, `upload` or `card`.
    image: String,
    media_id: String,
    /// `review`, `schedule` or `now`.
    when: String,
    at: String,
}

impl ComposeForm {
    /// From a urlencoded body (account checkboxes repeat their field).
    fn parse(raw: &[u8]) -> ComposeForm {
        let mut f = ComposeForm::default();
        for (k, v) in url::form_urlencoded::parse(raw) {
            let v = v.into_owned();
            match k.as_ref() {
                "caption" => f.caption = v,
                "hashtags" => f.hashtags = v,
                "cta" => f.cta = v,
                "link_url" => f.link_url = v,
                "account" if f.accounts.len() < 100 => f.accounts.push(v),
                "image" => f.image = v,
                "media_id" => f.media_id = v,
                "when" => f.when = v,
                "at" => f.at = v,
                _ => {}
            }
        }
        f
    }

    fn hashtags(&self) -> Vec<String> {
        items::parse_hashtags(&self.hashtags)
    }

    fn cta(&self) -> Option<String> {
        Some(self.cta.trim().to_owned()).filter(|c| !c.is_empty())
    }
}

/// The platforms of the ticked accounts (only the client's active ones count).
fn chosen_platforms(f: &ComposeForm, accounts: &[Account]) -> Vec<Platform> {
    let mut p: Vec<Platform> = accounts
        .iter()
        .filter(|a| f.accounts.iter().any(|s| s.trim() == a.id.to_string()))
        .map(|a| a.platform)
        .collect();
    p.sort();
    p.dedup();
    p
}

fn field_error(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(e) = errors.get(field) {
            p.field-error id={ "c-" (field) "-error" } { (e) }
        }
    }
}

/// Per-platform counters and moderation reasons (the `/compose/check` partial).
fn check_panel(f: &ComposeForm, platforms: &[Platform], verdict: &Verdict) -> Markup {
    let hashtags = f.hashtags();
    let cta = f.cta();
    let link = items::parse_link(&f.link_url).ok().flatten();
    let text = publishing::compose_text(&f.caption, cta.as_deref(), &[]);
    let general: Vec<_> = verdict
        .reasons
        .iter()
        .filter(|r| r.platform.is_none())
        .collect();
    html! {
        h2 { "Checks" }
        @if platforms.is_empty() {
            p.hint { "Tick the accounts to post to, to see each platform's limits." }
        }
        @if verdict.passed() && !platforms.is_empty() {
            p.notice { "Moderation passes for every chosen platform." }
        }
        @if !general.is_empty() {
            ul.reasons { @for r in &general { li { (r.message) } } }
        }
        @if !platforms.is_empty() {
            table.counters {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Length" } th scope="col" { "Problems" } } }
                tbody {
                    @for p in platforms {
                        @let full = moderation::compose(*p, &moderation::Input {
                            text: &text, hashtags: &hashtags, link_url: link.as_deref(), banned_terms: &[],
                        });
                        @let len = items::platform_length(&full, *p);
                        @let max = moderation::max_length(*p);
                        tr {
                            th scope="row" { (p.label()) }
                            td.counter.over[len > max] {
                                (len) " / " (max)
                                @if *p == Platform::X { " (as X counts)" }
                                @if let Some(n) = items::fold_at(*p) && len > n { br; span.hint { "“more” after " (n) } }
                            }
                            td {
                                @let own: Vec<_> = verdict.reasons.iter().filter(|r| r.platform == Some(*p)).collect();
                                @if own.is_empty() { "—" } @else { ul.reasons { @for r in own { li { (r.message) } } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The image block inside the composer (also the upload's answer).
fn image_block(
    state: &AppState,
    f: &ComposeForm,
    upload: Option<&UploadedImage>,
    errors: &FieldErrors,
) -> Markup {
    let choice = match f.image.as_str() {
        "upload" | "card" => f.image.as_str(),
        _ => "none",
    };
    html! {
        div #compose-image {
            fieldset {
                legend { "Image" }
                span.radio {
                    input #c-image-none type="radio" name="image" value="none" checked[choice == "none"];
                    label for="c-image-none" { "No image" }
                }
                span.radio {
                    input #c-image-card type="radio" name="image" value="card" checked[choice == "card"];
                    label for="c-image-card" { "A card from the client's brand (one per chosen platform's size)" }
                }
                span.radio {
                    input #c-image-upload type="radio" name="image" value="upload" checked[choice == "upload"]
                        disabled[upload.is_none() && f.media_id.trim().is_empty()];
                    label for="c-image-upload" { "The uploaded image" }
                }
                (field_error(errors, "image"))
            }
            @if let Some(u) = upload {
                input type="hidden" name="media_id" value=(u.id);
                figure.upload-preview {
                    @if let Some(src) = items::media_url(state, &u.path) {
                        img src=(src) alt={ "The uploaded image (" (u.width) "×" (u.height) ")" };
                    }
                    figcaption { "Uploaded: " (u.width) "×" (u.height) ", " (u.bytes / 1024) " KB" }
                }
            } @else if !f.media_id.trim().is_empty() {
                input type="hidden" name="media_id" value=(f.media_id.trim());
            }
            label for="c-upload" { "Upload an image (PNG or JPEG, at most 5 MB)" }
            input #c-upload type="file" name="image_file" accept="image/png,image/jpeg" form="upload-form"
                aria-invalid=[errors.get("upload").map(|_| "true")] aria-describedby=[errors.get("upload").map(|_| "c-upload-error")];
            (field_error(errors, "upload"))
            button.secondary type="submit" form="upload-form" { "Upload" }
        }
    }
}

struct Composer<'a> {
    client: &'a ClientInfo,
    accounts: &'a [Account],
    form: &'a ComposeForm,
    errors: &'a FieldErrors,
    upload: Option<&'a UploadedImage>,
    verdict: &'a Verdict,
}

fn composer(state: &AppState, user: &CurrentUser, c: &Composer<'_>) -> Markup {
    let f = c.form;
    let errors = c.errors;
    let id = c.client.id;
    let invalid = |field: &str| errors.contains_key(field).then_some("true");
    let described = |field: &str| {
        errors
            .contains_key(field)
            .then(|| format!("c-{field}-error"))
    };
    let when = match f.when.as_str() {
        "schedule" | "now" => f.when.as_str(),
        _ => "review",
    };
    let platforms = chosen_platforms(f, c.accounts);
    html! {
        p { a href={ "/clients/" (id) } { "← " (c.client.name) } }
        h1 { "Write a post for " (c.client.name) }
        @if !errors.is_empty() {
            p.alert role="alert" { "Nothing was saved: please correct what is marked below." }
        }
        // the upload's own form: the file input and its button sit in the composer and point here
        form #upload-form method="post" action={ "/clients/" (id) "/compose/upload" } enctype="multipart/form-data"
            data-hx-post={ "/clients/" (id) "/compose/upload" } data-hx-encoding="multipart/form-data"
            data-hx-target="#compose-image" data-hx-swap="outerHTML" {}
        div.compose {
            form.card.compose-form method="post" action={ "/clients/" (id) "/compose" } novalidate {
                input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                div data-hx-post={ "/clients/" (id) "/compose/check" } data-hx-trigger="input changed delay:400ms"
                    data-hx-target="#compose-check" data-hx-swap="innerHTML" {
                    label for="c-caption" { "Caption" }
                    textarea #c-caption name="caption" rows="8" maxlength="63206"
                        aria-invalid=[invalid("caption")] aria-describedby=[described("caption")] { (f.caption) }
                    (field_error(errors, "caption"))
                    label for="c-hashtags" { "Hashtags" }
                    input #c-hashtags type="text" name="hashtags" value=(f.hashtags)
                        aria-invalid=[invalid("hashtags")] aria-describedby=[described("hashtags")];
                    p.hint { "Separated by spaces or commas; the # is added where missing." }
                    (field_error(errors, "hashtags"))
                    label for="c-cta" { "Call to action" }
                    input #c-cta type="text" name="cta" maxlength="500" value=(f.cta)
                        aria-invalid=[invalid("cta")] aria-describedby=[described("cta")];
                    (field_error(errors, "cta"))
                    label for="c-link" { "Link" }
                    input #c-link type="url" name="link_url" value=(f.link_url)
                        aria-invalid=[invalid("link_url")] aria-describedby=[described("link_url")];
                    (field_error(errors, "link_url"))
                    fieldset aria-describedby=[described("accounts")] {
                        legend { "Post to" }
                        @if c.accounts.is_empty() {
                            p.empty { "This client has no connected account. Connect one from the client's page first." }
                        }
                        @for a in c.accounts {
                            @let aid = format!("c-account-{}", a.id);
                            div.checkbox {
                                input id=(aid) type="checkbox" name="account" value=(a.id)
                                    checked[f.accounts.iter().any(|s| s.trim() == a.id.to_string())];
                                label for=(aid) { (a.display_name) " (" (a.platform.label()) ")" }
                            }
                        }
                        (field_error(errors, "accounts"))
                    }
                }
                (image_block(state, f, c.upload, errors))
                fieldset {
                    legend { "When" }
                    span.radio {
                        input #c-when-review type="radio" name="when" value="review" checked[when == "review"];
                        label for="c-when-review" { "Send to the review queue for this time" }
                    }
                    span.radio {
                        input #c-when-schedule type="radio" name="when" value="schedule" checked[when == "schedule"];
                        label for="c-when-schedule" { "Approve and schedule for this time" }
                    }
                    span.radio {
                        input #c-when-now type="radio" name="when" value="now" checked[when == "now"];
                        label for="c-when-now" { "Approve and publish now" }
                    }
                    (field_error(errors, "when"))
                    label for="c-at" { "Date and time (" (c.client.tz.name()) ")" }
                    input #c-at type="datetime-local" name="at" value=(f.at)
                        aria-invalid=[invalid("at")] aria-describedby=[described("at")];
                    p.hint { "In the client's time zone. A time the clocks skip moves to the next valid minute; a repeated one takes the first." }
                    (field_error(errors, "at"))
                }
                @if let Some(m) = errors.get("moderation") {
                    div.alert role="alert" { p { (m) } }
                }
                div.actions { button type="submit" { "Save post" } }
            }
            section #compose-check.card aria-live="polite" {
                (check_panel(f, &platforms, c.verdict))
            }
        }
    }
}

/// `GET /clients/{id}/compose`.
pub async fn form(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let c = client(&state, user.agency_id, id).await?;
    let accounts = active_accounts(&state, user.agency_id, id).await?;
    let at = (Utc::now() + TimeDelta::hours(1)).with_timezone(&c.tz);
    let f = ComposeForm {
        when: "review".into(),
        image: "none".into(),
        at: at.format("%Y-%m-%dT%H:00").to_string(),
        ..ComposeForm::default()
    };
    let body = composer(
        &state,
        &user,
        &Composer {
            client: &c,
            accounts: &accounts,
            form: &f,
            errors: &FieldErrors::new(),
            upload: None,
            verdict: &Verdict::default(),
        },
    );
    Ok(respond(htmx, &user, "Write a post", Nav::Clients, body))
}

/// `POST /clients/{id}/compose/check`: the checks panel for the form as typed (htmx).
pub async fn check(
    State(state): State<AppState>,
    user: Reviewer,
    Path(id): Path<Uuid>,
    RawForm(raw): RawForm,
) -> AppResult<Response> {
    let c = client(&state, user.agency_id, id).await?;
    let accounts = active_accounts(&state, user.agency_id, id).await?;
    let f = ComposeForm::parse(&raw);
    let platforms = chosen_platforms(&f, &accounts);
    let verdict = verdict_of(&state, user.agency_id, c.id, &f, &platforms).await?;
    let mut r = check_panel(&f, &platforms, &verdict).into_response();
    r.headers_mut().insert(
        axum::http::header::VARY,
        axum::http::HeaderValue::from_static("HX-Request"),
    );
    Ok(r)
}

async fn verdict_of(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    f: &ComposeForm,
    platforms: &[Platform],
) -> AppResult<Verdict> {
    let hashtags = f.hashtags();
    let cta = f.cta();
    let link = items::parse_link(&f.link_url).ok().flatten();
    items::moderate(
        state,
        agency,
        client,
        platforms,
        &Draft {
            caption: &f.caption,
            cta: cta.as_deref(),
            hashtags: &hashtags,
            link: link.as_deref(),
        },
    )
    .await
}

/// An uploaded image of the client.
pub(crate) struct UploadedImage {
    pub(crate) id: Uuid,
    pub(crate) path: String,
    pub(crate) width: i32,
    pub(crate) height: i32,
    pub(crate) bytes: i64,
}

/// An image the client's composer (or API key) uploaded, by id.
pub(crate) async fn uploaded(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    id: Uuid,
) -> AppResult<Option<UploadedImage>> {
    Ok(sqlx::query!(
        "SELECT id, path, width, height, bytes FROM media_assets
         WHERE id = $1 AND agency_id = $2 AND client_id = $3 AND purpose = 'upload'",
        id,
        agency,
        client
    )
    .fetch_optional(&state.pool)
    .await?
    .map(|r| UploadedImage {
        id: r.id,
        path: r.path,
        width: r.width,
        height: r.height,
        bytes: r.bytes,
    }))
}

/// What the server accepts of a composer form.
struct Valid {
    caption: String,
    hashtags: Vec<String>,
    cta: Option<String>,
    link: Option<String>,
    accounts: Vec<Uuid>,
    platforms: Vec<Platform>,
    upload: Option<UploadedImage>,
    card: bool,
    approve: bool,
    at: DateTime<Utc>,
    verdict: Verdict,
}

async fn validate(
    state: &AppState,
    agency: Uuid,
    c: &ClientInfo,
    accounts: &[Account],
    f: &ComposeForm,
) -> AppResult<Result<Valid, (FieldErrors, Option<UploadedImage>)>> {
    let mut errors = FieldErrors::new();
    let caption = f.caption.trim_end().to_owned();
    if caption.trim().is_empty() {
        errors.insert("caption", "Write the caption.".into());
    } else if caption.chars().count() > 63_206 {
        errors.insert("caption", "Use at most 63,206 characters.".into());
    }
    let hashtags = f.hashtags();
    let cta = f.cta();
    if cta.as_ref().is_some_and(|c| c.chars().count() > 500) {
        errors.insert("cta", "Use at most 500 characters.".into());
    }
    let link = match items::parse_link(&f.link_url) {
        Ok(l) => l,
        Err(m) => {
            errors.insert("link_url", m);
            None
        }
    };
    // accounts: ids of another agency are 404 like everywhere; others must be the client's
    let mut chosen = Vec::new();
    for s in &f.accounts {
        let Ok(aid) = Uuid::from_str(s.trim()) else {
            errors.insert("accounts", "Pick accounts from the list.".into());
            continue;
        };
        if let Some(a) = accounts.iter().find(|a| a.id == aid) {
            if !chosen.contains(&a.id) {
                chosen.push(a.id);
            }
            continue;
        }
        let ours = sqlx::query_scalar!(
            r#"SELECT true AS "x!" FROM social_accounts WHERE id = $1 AND agency_id = $2"#,
            aid,
            agency
        )
        .fetch_optional(&state.pool)
        .await?;
        if ours.is_none() {
            return Err(AppError::NotFound);
        }
        errors.insert(
            "accounts",
            "One of the accounts is not a connected account of this client.".into(),
        );
    }
    if chosen.is_empty() && !errors.contains_key("accounts") {
        errors.insert("accounts", "Pick at least one account to post to.".into());
    }
    let platforms = chosen_platforms(f, accounts);
    let upload = match Uuid::from_str(f.media_id.trim()) {
        Ok(mid) => uploaded(state, agency, c.id, mid).await?,
        Err(_) => None,
    };
    let card = f.image == "card";
    if f.image == "upload" && upload.is_none() {
        errors.insert(
            "image",
            "Upload the image first (or choose no image).".into(),
        );
    }
    let approve = matches!(f.when.as_str(), "schedule" | "now");
    let now = Utc::now();
    let at = match f.when.as_str() {
        "now" => Some(now),
        "review" | "schedule" => match items::parse_local(&f.at, c.tz) {
            Ok(at) if at < now - TimeDelta::minutes(1) => {
                errors.insert(
                    "at",
                    format!(
                        "That time has passed (it is now {} there).",
                        crate::pages::format_in_zone(now, c.tz)
                    ),
                );
                None
            }
            Ok(at) => Some(at),
            Err(m) => {
                errors.insert("at", m);
                None
            }
        },
        _ => {
            errors.insert("when", "Choose when the post goes out.".into());
            None
        }
    };
    let verdict = verdict_of(state, agency, c.id, f, &platforms).await?;
    if approve && !verdict.passed() {
        errors.insert(
            "moderation",
            "Moderation blocks this post (see the checks), so it cannot be approved. Fix it, or send it to the review queue.".into(),
        );
    }
    match at {
        Some(at) if errors.is_empty() => Ok(Ok(Valid {
            caption,
            hashtags,
            cta,
            link,
            accounts: chosen,
            platforms,
            upload: if f.image == "upload" { upload } else { None },
            card,
            approve,
            at,
            verdict,
        })),
        _ => Ok(Err((errors, upload))),
    }
}

/// `POST /clients/{id}/compose`: save the post (and approve it when asked and moderation passes).
pub async fn save(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    RawForm(raw): RawForm,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let c = client(&state, agency, id).await?;
    let accounts = active_accounts(&state, agency, id).await?;
    let f = ComposeForm::parse(&raw);
    let v = match validate(&state, agency, &c, &accounts, &f).await? {
        Ok(v) => v,
        Err((errors, upload)) => {
            let platforms = chosen_platforms(&f, &accounts);
            let verdict = verdict_of(&state, agency, c.id, &f, &platforms).await?;
            let body = composer(
                &state,
                &user,
                &Composer {
                    client: &c,
                    accounts: &accounts,
                    form: &f,
                    errors: &errors,
                    upload: upload.as_ref(),
                    verdict: &verdict,
                },
            );
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                respond(htmx, &user, "Write a post", Nav::Clients, body),
            )
                .into_response());
        }
    };
    // cards are rendered (and stored, content-addressed) before the transaction
    let cards = if v.card {
        render_cards(&state, agency, c.id, &v).await?
    } else {
        Vec::new()
    };
    let item = Uuid::now_v7();
    let content_type = if v.upload.is_some() || !cards.is_empty() {
        "image"
    } else if v.link.is_some() {
        "link"
    } else {
        "text"
    };
    let status = if v.verdict.passed() {
        "pass"
    } else {
        "blocked"
    };
    let mut tx = state.pool.begin().await?;
    let actor = user.actor();
    lifecycle::create(
        &mut tx,
        &actor,
        agency,
        &lifecycle::Composed {
            id: item,
            client: c.id,
            slot_at: v.at,
            content_type,
            caption: &v.caption,
            hashtags: &v.hashtags,
            cta: v.cta.as_deref(),
            link: v.link.as_deref(),
            moderation_status: status,
            moderation: v.verdict.to_json(),
            accounts: &v.accounts,
            approve: v.approve,
        },
    )
    .await?;
    if let Some(u) = &v.upload {
        sqlx::query!(
            "INSERT INTO content_item_media (item_id, media_id, agency_id, size_label) VALUES ($1, $2, $3, 'upload')",
            item,
            u.id,
            agency
        )
        .execute(&mut *tx)
        .await?;
    }
    for card in &cards {
        let media_id = sqlx::query_scalar!(
            r#"WITH ins AS (
                   INSERT INTO media_assets (id, agency_id, client_id, sha256, path, mime, width, height, bytes, purpose)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'card')
                   ON CONFLICT (agency_id, sha256, mime) DO NOTHING
                   RETURNING id)
               SELECT id AS "id!" FROM ins
               UNION ALL
               SELECT id FROM media_assets WHERE agency_id = $2 AND sha256 = $4 AND mime = $6
               LIMIT 1"#,
            Uuid::now_v7(),
            agency,
            c.id,
            &card.sha256[..],
            card.path,
            card.mime,
            card.width as i32,
            card.height as i32,
            card.bytes as i64
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO content_item_media (item_id, media_id, agency_id, size_label) VALUES ($1, $2, $3, $4)",
            item,
            media_id,
            agency,
            card.label
        )
        .execute(&mut *tx)
        .await?;
    }
    if v.approve {
        match lifecycle::approve(&mut tx, &actor, agency, item, None).await {
            Ok(_) => {}
            Err(lifecycle::ApproveFailure::Database(e)) => return Err(e.into()),
            Err(lifecycle::ApproveFailure::Refused(e)) => {
                // validated above; a refusal here means the data changed meanwhile
                return Err(anyhow::anyhow!("approving a composed item was refused: {e}").into());
            }
        }
    }
    tx.commit().await?;
    tracing::info!(%item, client = %c.id, approve = v.approve, "post composed");
    Ok(Redirect::to(&format!("/items/{item}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_keeps_every_ticked_account() {
        let f = ComposeForm::parse(b"caption=Hi&account=a&account=b&when=now&at=");
        assert_eq!(f.accounts, vec!["a", "b"]);
        assert_eq!(f.when, "now");
    }

    #[test]
    fn headlines_are_the_first_line_cut_at_a_word() {
        assert_eq!(headline("\nFresh bread today\nmore"), "Fresh bread today");
        let long = "word ".repeat(40);
        let h = headline(&long);
        assert!(h.ends_with('…') && h.chars().count() <= 91, "{h}");
    }

    #[test]
    fn only_real_png_and_jpeg_pass() {
        assert!(check_image(b"").is_err());
        assert_eq!(
            check_image(b"GIF89a....").unwrap_err(),
            "Only PNG and JPEG images are accepted."
        );
        // a PNG signature with nothing behind it is not an image
        assert!(check_image(b"\x89PNG\r\n\x1a\n\0\0\0\0").is_err());
        let mut png = Vec::new();
        image::DynamicImage::new_rgb8(3, 2)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(check_image(&png).unwrap(), (image::ImageFormat::Png, 3, 2));
    }
}
