//! A client's brand tab: voice and tone, content pillars, calls to action, banned terms, hashtag
//! sets, colours, logo, font and handle — what generation writes with and cards are drawn in.
//! Viewers see it; admins change it. A live preview renders the card the generator would draw
//! (the same `cards::render`), from the saved brand or, while an admin types, from the unsaved
//! values (validated, never stored).
//!
//! Saving validates every field first and writes all of them in one statement, or nothing. The
//! logo is its own form (a file upload): decoded with the `image` crate before anything is
//! stored, kept content-addressed in the media directory and referenced by a `media_assets` row.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::audit::{self, Entry};
use autosocial_core::content::brand::{self as core_brand, Brand};
use autosocial_core::content::cards::{self, CardSize, CardSpec, Fonts, image};
use autosocial_core::domain::Role;

use crate::app::AppState;
use crate::auth::{AdminRole, CurrentUser, Viewer};
use crate::csrf;
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path, Query};
use crate::pages::client_tabs;
use crate::pages::layout::{Htmx, Nav, respond};

/// Largest logo file accepted.
pub const MAX_LOGO_BYTES: usize = 2 * 1024 * 1024;
/// Largest logo side in pixels (cards scale logos down; a bigger source only costs memory).
pub const MAX_LOGO_SIDE: u32 = 4096;
/// The logo form's body limit: the file plus the multipart framing, so a file just over the
/// limit still reaches the handler and gets a field message rather than a bare 413.
pub const LOGO_BODY_LIMIT: usize = MAX_LOGO_BYTES + 512 * 1024;
/// Limits of the list fields: enough for any real brand, small enough to keep prompts short.
const MAX_LINES: usize = 50;
const MAX_BANNED_TERMS: usize = 500;
const MAX_HASHTAG_SETS: usize = 30;
const MAX_TAGS_PER_SET: usize = 30;
/// The preview's headline when the brand has no pillar yet.
const SAMPLE_HEADLINE: &str = "Your next post, in your brand's colours";

pub type FieldErrors = BTreeMap<&'static str, String>;

// ---------------------------------------------------------------------------------------------
// The client (shared with the rules tab)
// ---------------------------------------------------------------------------------------------

/// The client (this agency's, else 404).
pub async fn client_of(state: &AppState, agency: Uuid, id: Uuid) -> AppResult<core_brand::Client> {
    core_brand::client(&state.pool, agency, id)
        .await?
        .ok_or(AppError::NotFound)
}

mod logo;
mod parse;
mod render;
mod save;

pub use logo::*;
pub use parse::*;
pub(crate) use render::font_names;
use render::*;
pub(crate) use save::save_brand;

// ---------------------------------------------------------------------------------------------
// The form
// ---------------------------------------------------------------------------------------------

/// The brand form as typed (kept to re-render after a refusal).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct BrandForm {
    #[serde(default)]
    pub(crate) voice: String,
    #[serde(default)]
    pub(crate) tone: String,
    #[serde(default)]
    pub(crate) pillars: String,
    #[serde(default)]
    pub(crate) ctas: String,
    #[serde(default)]
    pub(crate) banned_terms: String,
    #[serde(default)]
    pub(crate) hashtag_sets: String,
    #[serde(default)]
    pub(crate) color_primary: String,
    #[serde(default)]
    pub(crate) color_primary_hex: String,
    #[serde(default)]
    pub(crate) color_primary_was: String,
    #[serde(default)]
    pub(crate) color_secondary: String,
    #[serde(default)]
    pub(crate) color_secondary_hex: String,
    #[serde(default)]
    pub(crate) color_secondary_was: String,
    #[serde(default)]
    pub(crate) color_background: String,
    #[serde(default)]
    pub(crate) color_background_hex: String,
    #[serde(default)]
    pub(crate) color_background_was: String,
    #[serde(default)]
    pub(crate) color_text: String,
    #[serde(default)]
    pub(crate) color_text_hex: String,
    #[serde(default)]
    pub(crate) color_text_was: String,
    #[serde(default)]
    pub(crate) font: String,
    #[serde(default)]
    pub(crate) handle: String,
    /// The preview's card size (not saved).
    #[serde(default)]
    pub(crate) size: String,
}

/// The four colour fields: (field name, label).
const COLORS: [(&str, &str); 4] = [
    ("color_primary", "Primary"),
    ("color_secondary", "Secondary"),
    ("color_background", "Background"),
    ("color_text", "Text"),
];

impl BrandForm {
    pub(crate) fn from_brand(b: &Brand) -> BrandForm {
        let p = &b.palette;
        BrandForm {
            voice: b.voice.clone(),
            tone: b.tone.clone(),
            pillars: b.pillars.join("\n"),
            ctas: b.ctas.join("\n"),
            banned_terms: b.banned_terms.join("\n"),
            hashtag_sets: b
                .hashtag_sets
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.join(" ")))
                .collect::<Vec<_>>()
                .join("\n"),
            color_primary: p.primary.clone(),
            color_primary_hex: p.primary.clone(),
            color_primary_was: p.primary.clone(),
            color_secondary: p.secondary.clone(),
            color_secondary_hex: p.secondary.clone(),
            color_secondary_was: p.secondary.clone(),
            color_background: p.background.clone(),
            color_background_hex: p.background.clone(),
            color_background_was: p.background.clone(),
            color_text: p.text.clone(),
            color_text_hex: p.text.clone(),
            color_text_was: p.text.clone(),
            font: b.font.clone().unwrap_or_default(),
            handle: b.handle.clone().unwrap_or_default(),
            size: String::new(),
        }
    }

    /// (picker, typed, was) of a colour field.
    fn color(&self, field: &str) -> (&str, &str, &str) {
        match field {
            "color_primary" => (
                &self.color_primary,
                &self.color_primary_hex,
                &self.color_primary_was,
            ),
            "color_secondary" => (
                &self.color_secondary,
                &self.color_secondary_hex,
                &self.color_secondary_was,
            ),
            "color_background" => (
                &self.color_background,
                &self.color_background_hex,
                &self.color_background_was,
            ),
            _ => (&self.color_text, &self.color_text_hex, &self.color_text_was),
        }
    }

    fn resolved_color(&self, field: &str) -> Result<String, String> {
        let (picker, typed, was) = self.color(field);
        pick_color(picker, typed, was)
    }

    pub(crate) fn validate(&self, fonts: &[String]) -> Result<ValidBrand, FieldErrors> {
        let mut errors = FieldErrors::new();
        let voice = self.voice.trim().to_owned();
        if voice.chars().count() > 4000 {
            errors.insert("voice", "Use at most 4000 characters.".into());
        }
        let tone = self.tone.trim().to_owned();
        if tone.chars().count() > 200 {
            errors.insert("tone", "Use at most 200 characters.".into());
        } else if has_control(&tone) {
            errors.insert("tone", "Keep the tone on one line.".into());
        }
        let mut take = |field: &'static str, r: Result<Vec<String>, String>| match r {
            Ok(v) => v,
            Err(e) => {
                errors.insert(field, e);
                Vec::new()
            }
        };
        let pillars = take("pillars", parse_lines(&self.pillars, MAX_LINES, 300));
        let ctas = take("ctas", parse_lines(&self.ctas, MAX_LINES, 500));
        let banned_terms = take("banned_terms", parse_banned_terms(&self.banned_terms));
        let hashtag_sets = match parse_hashtag_sets(&self.hashtag_sets) {
            Ok(s) => s,
            Err(e) => {
                errors.insert("hashtag_sets", e);
                BTreeMap::new()
            }
        };
        let mut colors = Vec::new();
        for (field, _) in COLORS {
            match self.resolved_color(field) {
                Ok(c) => colors.push(c),
                Err(e) => {
                    errors.insert(field, e);
                }
            }
        }
        let font = self.font.trim();
        let font = if font.is_empty() {
            None
        } else if fonts.iter().any(|f| f == font) {
            Some(font.to_owned())
        } else {
            errors.insert("font", "Choose one of the fonts listed.".into());
            None
        };
        let handle = self.handle.trim();
        if handle.chars().count() > 100 {
            errors.insert("handle", "Use at most 100 characters.".into());
        } else if has_control(handle) {
            errors.insert("handle", "Keep the handle on one line.".into());
        }
        let handle = (!handle.is_empty()).then(|| handle.to_owned());
        match <[String; 4]>::try_from(colors) {
            Ok(colors) if errors.is_empty() => Ok(ValidBrand {
                voice,
                tone,
                pillars,
                ctas,
                banned_terms,
                hashtag_sets,
                colors,
                font,
                handle,
            }),
            _ => Err(errors),
        }
    }
}

/// A brand form that passed every check, ready to save with [`save_brand`].
pub(crate) struct ValidBrand {
    voice: String,
    tone: String,
    pillars: Vec<String>,
    ctas: Vec<String>,
    banned_terms: Vec<String>,
    hashtag_sets: BTreeMap<String, Vec<String>>,
    /// primary, secondary, background, text
    colors: [String; 4],
    font: Option<String>,
    handle: Option<String>,
}

fn field_error(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(e) = errors.get(field) {
            p.field-error id={ (field) "-error" } { (e) }
        }
    }
}

fn invalid(errors: &FieldErrors, field: &str) -> Option<&'static str> {
    errors.contains_key(field).then_some("true")
}

/// `aria-describedby`: the field's hint, and its error when it has one.
fn described(errors: &FieldErrors, field: &str, hint: bool) -> Option<String> {
    let mut ids = Vec::new();
    if hint {
        ids.push(format!("{field}-hint"));
    }
    if errors.contains_key(field) {
        ids.push(format!("{field}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

fn size_of(label: &str) -> CardSize {
    CardSize::from_label(label).unwrap_or(CardSize::Square)
}

fn size_name(s: CardSize) -> &'static str {
    match s {
        CardSize::Square => "Instagram square",
        CardSize::Portrait => "Instagram portrait",
        CardSize::Story => "Story / TikTok",
        CardSize::X => "X",
        CardSize::Linkedin => "LinkedIn",
        CardSize::Facebook => "Facebook",
        CardSize::Pinterest => "Pinterest",
    }
}

/// The preview image's URL: the saved brand, overridden by the valid unsaved values of `f`.
fn preview_url(client: Uuid, size: CardSize, f: Option<&BrandForm>, fonts: &[String]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("size", size.label());
    if let Some(f) = f {
        for (field, _) in COLORS {
            if let Ok(c) = f.resolved_color(field) {
                q.append_pair(field.trim_start_matches("color_"), &c);
            }
        }
        let font = f.font.trim();
        if font.is_empty() || fonts.iter().any(|n| n == font) {
            q.append_pair("font", font);
        }
        let handle = f.handle.trim();
        if handle.chars().count() <= 100 && !has_control(handle) {
            q.append_pair("handle", handle);
        }
        if let Ok(ctas) = parse_lines(&f.ctas, MAX_LINES, 500) {
            q.append_pair("cta", ctas.first().map(String::as_str).unwrap_or(""));
        }
        if let Ok(pillars) = parse_lines(&f.pillars, MAX_LINES, 300) {
            q.append_pair(
                "headline",
                pillars.first().map(String::as_str).unwrap_or(""),
            );
        }
    }
    format!("/clients/{client}/brand/preview.png?{}", q.finish())
}

fn preview_img(client: Uuid, size: CardSize, f: Option<&BrandForm>, fonts: &[String]) -> Markup {
    let (w, h) = size.dimensions();
    html! {
        img.card-preview src=(preview_url(client, size, f, fonts)) width=(w) height=(h)
            alt={ "Preview of a " (size_name(size)) " card in the brand's colours" };
    }
}

fn preview_panel(client: Uuid, size: CardSize, f: Option<&BrandForm>, fonts: &[String]) -> Markup {
    html! {
        section.brand-preview aria-labelledby="preview-heading" {
            h2 #preview-heading { "Card preview" }
            nav.sizes aria-label="Preview size" {
                @for s in CardSize::ALL {
                    a href={ "/clients/" (client) "/brand?size=" (s.label()) }
                        aria-current=[(s == size).then_some("true")] { (size_name(s)) }
                }
            }
            div #brand-preview aria-live="polite" { (preview_img(client, size, f, fonts)) }
            p.hint { "Drawn like a generated post: the first pillar as the headline, the handle (or the first call to action) as the footer." }
        }
    }
}

#[allow(clippy::too_many_lines)]
fn brand_form(
    user: &CurrentUser,
    client: Uuid,
    f: &BrandForm,
    errors: &FieldErrors,
    fonts: &Result<Vec<String>, String>,
) -> Markup {
    let font_list: &[String] = fonts.as_deref().unwrap_or(&[]);
    let action = format!("/clients/{client}/brand");
    html! {
        @if !errors.is_empty() {
            p.alert role="alert" { "Nothing was saved: please correct the fields marked below." }
        }
        form.card.brand-form method="post" action=(action) novalidate
            data-hx-post={ (action) "/preview" } data-hx-trigger="input changed delay:600ms"
            data-hx-target="#brand-preview" data-hx-swap="innerHTML" {
            input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
            input type="hidden" name="size" value=(f.size);
            fieldset {
                legend { "Voice" }
                label for="voice" { "Voice description" }
                textarea #voice name="voice" rows="4" maxlength="4000"
                    aria-invalid=[invalid(errors, "voice")] aria-describedby=[described(errors, "voice", true)] { (f.voice) }
                p.hint #voice-hint { "How the brand speaks, for the caption writer: who it talks to, what it never says." }
                (field_error(errors, "voice"))
                label for="tone" { "Tone" }
                input #tone type="text" name="tone" value=(f.tone) maxlength="200"
                    aria-invalid=[invalid(errors, "tone")] aria-describedby=[described(errors, "tone", true)];
                p.hint #tone-hint { "A few words, like “warm, playful, no jargon”." }
                (field_error(errors, "tone"))
            }
            fieldset {
                legend { "Content" }
                label for="pillars" { "Content pillars" }
                textarea #pillars name="pillars" rows="4"
                    aria-invalid=[invalid(errors, "pillars")] aria-describedby=[described(errors, "pillars", true)] { (f.pillars) }
                p.hint #pillars-hint { "One topic per line; posts rotate through them." }
                (field_error(errors, "pillars"))
                label for="ctas" { "Calls to action" }
                textarea #ctas name="ctas" rows="3"
                    aria-invalid=[invalid(errors, "ctas")] aria-describedby=[described(errors, "ctas", true)] { (f.ctas) }
                p.hint #ctas-hint { "One per line, like “Order online at bakerybloom.de”." }
                (field_error(errors, "ctas"))
                label for="banned_terms" { "Banned terms" }
                textarea #banned_terms name="banned_terms" rows="3"
                    aria-invalid=[invalid(errors, "banned_terms")] aria-describedby=[described(errors, "banned_terms", true)] { (f.banned_terms) }
                p.hint #banned_terms-hint { "One word or phrase per line. A post containing one (as a whole word, in any case) is blocked." }
                (field_error(errors, "banned_terms"))
                label for="hashtag_sets" { "Hashtag sets" }
                textarea #hashtag_sets name="hashtag_sets" rows="3"
                    aria-invalid=[invalid(errors, "hashtag_sets")] aria-describedby=[described(errors, "hashtag_sets", true)] { (f.hashtag_sets) }
                p.hint #hashtag_sets-hint { "One set per line: a name, a colon, then tags — “bread: #sourdough #bakery”." }
                (field_error(errors, "hashtag_sets"))
            }
            fieldset {
                legend { "Look" }
                div.colors {
                    @for (field, label) in COLORS {
                        @let (picker, typed, was) = f.color(field);
                        @let picker_value = cards::parse_hex(picker).map(cards::to_hex).unwrap_or_else(|_| was.to_owned());
                        div.color {
                            label for=(field) { (label) " colour" }
                            div.color-inputs {
                                input id=(field) type="color" name=(field) value=(picker_value)
                                    aria-invalid=[invalid(errors, field)] aria-describedby=[described(errors, field, false)];
                                label.visually-hidden for={ (field) "_hex" } { (label) " colour as #rrggbb" }
                                input id={ (field) "_hex" } type="text" name={ (field) "_hex" } value=(typed)
                                    maxlength="7" size="8" pattern="#[0-9a-fA-F]{6}" autocomplete="off" spellcheck="false"
                                    aria-invalid=[invalid(errors, field)] aria-describedby=[described(errors, field, false)];
                                input type="hidden" name={ (field) "_was" } value=(was);
                            }
                            (field_error(errors, field))
                        }
                    }
                }
                p.hint { "Pick a colour or type it as #rrggbb; what you typed wins. Text that would be hard to read on the background is drawn in black or white instead." }
                label for="font" { "Font" }
                select #font name="font" aria-invalid=[invalid(errors, "font")] aria-describedby=[described(errors, "font", false)] {
                    option value="" selected[f.font.is_empty()] { "Default (" (cards::DEFAULT_FONT) ")" }
                    @for name in font_list {
                        option value=(name) selected[&f.font == name] { (name) }
                    }
                }
                @if let Err(e) = fonts { p.field-error { (e) } }
                (field_error(errors, "font"))
                label for="handle" { "Handle" }
                input #handle type="text" name="handle" value=(f.handle) maxlength="100"
                    aria-invalid=[invalid(errors, "handle")] aria-describedby=[described(errors, "handle", true)];
                p.hint #handle-hint { "Shown at the foot of image cards, like “@bakerybloom”." }
                (field_error(errors, "handle"))
            }
            div.actions {
                button type="submit" { "Save brand" }
                a href={ "/clients/" (client) } { "Cancel" }
            }
        }
    }
}

fn logo_section(
    user: &CurrentUser,
    client: Uuid,
    logo: Option<&LogoRow>,
    error: Option<&str>,
    can_manage: bool,
) -> Markup {
    let action = format!("/clients/{client}/brand/logo");
    html! {
        section.card #logo-section aria-labelledby="logo-heading" {
            h2 #logo-heading { "Logo" }
            @match logo {
                Some(l) => p { "Current logo: " (l.width) "×" (l.height) " " (l.mime.trim_start_matches("image/").to_uppercase()) ", " (l.bytes / 1024) " KB. It appears top left on every card." },
                None => p.empty { "No logo yet: cards are drawn without one." },
            }
            @if can_manage {
                @if error.is_some() { p.alert role="alert" { "The logo was not changed." } }
                form method="post" action=(action) enctype="multipart/form-data"
                    data-hx-post=(action) data-hx-target="#logo-section" data-hx-swap="outerHTML" {
                    input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                    label for="logo" { "Upload a logo" }
                    input #logo type="file" name="logo" accept="image/png,image/jpeg,image/webp" required
                        aria-invalid=[error.map(|_| "true")] aria-describedby={ "logo-hint" @if error.is_some() { " logo-error" } };
                    p.hint #logo-hint { "PNG, JPEG or WebP, at most 2 MB and 4096 pixels a side. A transparent PNG looks best." }
                    @if let Some(e) = error { p.field-error #logo-error { (e) } }
                    div.actions {
                        button type="submit" { "Upload logo" }
                    }
                }
                @if logo.is_some() {
                    form method="post" action={ (action) "/remove" } {
                        input type="hidden" name=(csrf::FIELD) value=(user.csrf_token);
                        button.secondary type="submit" { "Remove logo" }
                    }
                }
            }
        }
    }
}

fn summary(b: &Brand) -> Markup {
    let list = |v: &[String]| {
        html! {
            @if v.is_empty() { "—" } @else { ul { @for x in v { li { (x) } } } }
        }
    };
    html! {
        div.card {
            dl.facts {
                dt { "Voice" } dd { @if b.voice.is_empty() { "—" } @else { (b.voice) } }
                dt { "Tone" } dd { @if b.tone.is_empty() { "—" } @else { (b.tone) } }
                dt { "Content pillars" } dd { (list(&b.pillars)) }
                dt { "Calls to action" } dd { (list(&b.ctas)) }
                dt { "Banned terms" } dd { (list(&b.banned_terms)) }
                dt { "Hashtag sets" } dd {
                    @if b.hashtag_sets.is_empty() { "—" } @else {
                        ul { @for (k, v) in &b.hashtag_sets { li { strong { (k) } ": " (v.join(" ")) } } }
                    }
                }
                dt { "Colours" } dd {
                    "primary " code { (b.palette.primary) } ", secondary " code { (b.palette.secondary) }
                    ", background " code { (b.palette.background) } ", text " code { (b.palette.text) }
                }
                dt { "Font" } dd { (b.font.as_deref().unwrap_or(cards::DEFAULT_FONT)) }
                dt { "Handle" } dd { (b.handle.as_deref().unwrap_or("—")) }
            }
        }
    }
}

struct LogoRow {
    mime: String,
    width: i32,
    height: i32,
    bytes: i64,
}

async fn logo_row(
    state: &AppState,
    agency: Uuid,
    logo: Option<Uuid>,
) -> AppResult<Option<LogoRow>> {
    let Some(logo) = logo else { return Ok(None) };
    Ok(sqlx::query_as!(
        LogoRow,
        "SELECT mime, width, height, bytes FROM media_assets WHERE id = $1 AND agency_id = $2",
        logo,
        agency
    )
    .fetch_optional(&state.pool)
    .await?)
}

/// What the page shows besides the form.
struct PageParts<'a> {
    client: &'a core_brand::Client,
    brand: &'a Brand,
    form: &'a BrandForm,
    errors: &'a FieldErrors,
    logo_error: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn page_body(state: &AppState, user: &CurrentUser, p: PageParts<'_>) -> AppResult<Markup> {
    let can_manage = user.role.allows(Role::Admin);
    let fonts = font_names(state).await;
    let font_list: Vec<String> = fonts.clone().unwrap_or_default();
    let logo = logo_row(state, user.agency_id, p.brand.logo_media_id).await?;
    let size = size_of(&p.form.size);
    let unsaved = (!p.errors.is_empty()).then_some(p.form);
    Ok(html! {
        h1 { (p.client.name) ": brand" }
        (client_tabs::nav(p.client.id, client_tabs::Tab::Brand))
        @if let Some(n) = p.notice { p.notice role="status" { (n) } }
        div.brand-layout {
            div.brand-main {
                @if can_manage {
                    (brand_form(user, p.client.id, p.form, p.errors, &fonts))
                } @else {
                    (summary(p.brand))
                }
                (logo_section(user, p.client.id, logo.as_ref(), p.logo_error, can_manage))
            }
            (preview_panel(p.client.id, size, unsaved, &font_list))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    size: String,
    #[serde(default)]
    saved: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: Viewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Query(q): Query<ShowQuery>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let brand = core_brand::brand(&state.pool, &client).await?;
    let mut form = BrandForm::from_brand(&brand);
    form.size = size_of(&q.size).label().to_owned();
    let notice = match q.saved.as_deref() {
        Some("brand") => Some("Brand saved."),
        Some("logo") => Some("Logo saved."),
        Some("logo_removed") => Some("Logo removed."),
        _ => None,
    };
    let body = page_body(
        &state,
        &user,
        PageParts {
            client: &client,
            brand: &brand,
            form: &form,
            errors: &FieldErrors::new(),
            logo_error: None,
            notice,
        },
    )
    .await?;
    Ok(respond(
        htmx,
        &user,
        &format!("{}: brand", client.name),
        Nav::Clients,
        body,
    ))
}

pub async fn save(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<BrandForm>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let fonts = font_names(&state).await.unwrap_or_default();
    let v = match f.validate(&fonts) {
        Ok(v) => v,
        Err(errors) => {
            let brand = core_brand::brand(&state.pool, &client).await?;
            let body = page_body(
                &state,
                &user,
                PageParts {
                    client: &client,
                    brand: &brand,
                    form: &f,
                    errors: &errors,
                    logo_error: None,
                    notice: None,
                },
            )
            .await?;
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                respond(
                    htmx,
                    &user,
                    &format!("{}: brand", client.name),
                    Nav::Clients,
                    body,
                ),
            )
                .into_response());
        }
    };
    let mut tx = state.pool.begin().await?;
    save_brand(&mut tx, &user.actor(), user.agency_id, id, &v).await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/clients/{id}/brand?saved=brand")).into_response())
}

/// The live preview (htmx, on input in the form): a new image URL carrying the unsaved values.
pub async fn preview_fragment(
    State(state): State<AppState>,
    user: Viewer,
    Path(id): Path<Uuid>,
    Form(f): Form<BrandForm>,
) -> AppResult<Response> {
    client_of(&state, user.agency_id, id).await?;
    let fonts = font_names(&state).await.unwrap_or_default();
    let mut r = preview_img(id, size_of(&f.size), Some(&f), &fonts).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The preview's parameters: a card size, and optionally unsaved values to draw instead of the
/// saved ones (each validated like the form's).
#[derive(Debug, Deserialize, Default)]
pub struct PreviewQuery {
    size: Option<String>,
    primary: Option<String>,
    secondary: Option<String>,
    background: Option<String>,
    text: Option<String>,
    font: Option<String>,
    handle: Option<String>,
    cta: Option<String>,
    headline: Option<String>,
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CACHE_CONTROL, "no-store")],
        message,
    )
        .into_response()
}

/// `preview.png`: the card `cards::render` draws for this brand, in one of the platform sizes
/// (nothing larger: the size is one of [`CardSize::ALL`]). Never cached: it changes as the brand
/// does.
pub async fn preview_png(
    State(state): State<AppState>,
    user: Viewer,
    Path(id): Path<Uuid>,
    Query(q): Query<PreviewQuery>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let brand = core_brand::brand(&state.pool, &client).await?;
    let size = match q.size.as_deref() {
        None | Some("") => CardSize::Square,
        Some(s) => match CardSize::from_label(s) {
            Some(size) => size,
            None => {
                let known: Vec<&str> = CardSize::ALL.iter().map(|s| s.label()).collect();
                return Ok(bad_request(format!(
                    "size must be one of {}",
                    known.join(", ")
                )));
            }
        },
    };
    let color = |v: &Option<String>, saved: &str, name: &str| -> Result<cards::Rgb, String> {
        let s = v.as_deref().filter(|s| !s.is_empty()).unwrap_or(saved);
        cards::parse_hex(s).map_err(|e| format!("{name}: {e}"))
    };
    let p = &brand.palette;
    let palette = match (
        color(&q.primary, &p.primary, "primary"),
        color(&q.secondary, &p.secondary, "secondary"),
        color(&q.background, &p.background, "background"),
        color(&q.text, &p.text, "text"),
    ) {
        (Ok(primary), Ok(secondary), Ok(background), Ok(text)) => cards::Palette {
            primary,
            secondary,
            background,
            text,
        },
        (a, b, c, d) => {
            let msg = [a.err(), b.err(), c.err(), d.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(bad_request(msg));
        }
    };
    let short = |v: Option<String>, max: usize, name: &str| -> Result<Option<String>, String> {
        match v {
            Some(s) if s.chars().count() > max || has_control(&s) => {
                Err(format!("{name}: at most {max} characters on one line"))
            }
            other => Ok(other.map(|s| s.trim().to_owned())),
        }
    };
    let (handle, cta, headline, font) = match (
        short(q.handle, 100, "handle"),
        short(q.cta, 500, "cta"),
        short(q.headline, 300, "headline"),
        short(q.font, 100, "font"),
    ) {
        (Ok(h), Ok(c), Ok(hl), Ok(f)) => (h, c, hl, f),
        (a, b, c, d) => {
            let msg = [a.err(), b.err(), c.err(), d.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(bad_request(msg));
        }
    };
    // like the generator: the handle, else the first call to action
    let handle = handle.unwrap_or_else(|| brand.handle.clone().unwrap_or_default());
    let cta = cta.unwrap_or_else(|| brand.ctas.first().cloned().unwrap_or_default());
    let footer = if handle.is_empty() { cta } else { handle };
    let headline = headline.unwrap_or_else(|| brand.pillars.first().cloned().unwrap_or_default());
    let headline = if headline.is_empty() {
        SAMPLE_HEADLINE.to_owned()
    } else {
        headline
    };
    let font = font.unwrap_or_else(|| brand.font.clone().unwrap_or_default());
    let logo = logo_file(&state, user.agency_id, brand.logo_media_id).await?;
    let fonts = fonts(&state).await?;
    if !font.is_empty() && !fonts.names().contains(&font) {
        return Ok(bad_request(format!(
            "font: “{font}” is not one of {}",
            fonts.names().join(", ")
        )));
    }
    let _permit = RENDERS
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("render semaphore: {e}"))?;
    let png = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let logo = match logo {
            Some(path) => match image::open(&path) {
                Ok(img) => Some(img),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "brand logo unreadable; preview without logo");
                    None
                }
            },
            None => None,
        };
        let spec = CardSpec {
            size,
            headline: &headline,
            footer: &footer,
            palette,
            gradient: false,
            logo: logo.as_ref(),
            font: (!font.is_empty()).then_some(font.as_str()),
        };
        let rendered = cards::render(&fonts, &spec)?;
        cards::encode_png(&rendered.image)
    })
    .await
    .map_err(anyhow::Error::from)??;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        png,
    )
        .into_response())
}
