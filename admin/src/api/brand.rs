//! `/api/v1/clients/{id}/brand`: a client's brand (voice, tone, pillars, calls to action, banned
//! terms, hashtag sets, card colours, font, handle), read and changed with the console's brand
//! form's checks and save (`pages::brand::{BrandForm::validate, save_brand}`): the fields sent
//! are put into the form as it would have been typed, over the saved values, so a value the
//! console refuses is refused here with the same message. `ETag` + `If-Match` guard changes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::content::brand::{self as core_brand, Brand as CoreBrand};

use super::auth::{AdminKey, Caller, ViewerKey};
use super::doc::{ReadErrors, WriteErrors};
use super::input::{IdPath, JsonBody, check_if_match, etag_of, json_with_etag};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;
use crate::pages::brand::{BrandForm, font_names, save_brand};

/// A client's brand: what generated posts sound like and how their image cards look.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Brand {
    pub client_id: Uuid,
    /// How the brand speaks, in a few sentences.
    pub voice: String,
    pub tone: String,
    /// The themes posts are about.
    pub pillars: Vec<String>,
    /// Calls to action posts end with.
    pub ctas: Vec<String>,
    /// Words or phrases moderation blocks (whole words, ignoring case).
    pub banned_terms: Vec<String>,
    /// Set name → hashtags.
    pub hashtag_sets: BTreeMap<String, Vec<String>>,
    /// Card colours as `#rrggbb`.
    pub color_primary: String,
    pub color_secondary: String,
    pub color_background: String,
    pub color_text: String,
    /// One of the card fonts installed (absent: the default).
    pub font: Option<String>,
    /// The handle printed on cards.
    pub handle: Option<String>,
    /// The logo's media id (upload it in the console).
    pub logo_media_id: Option<Uuid>,
}

/// The brand fields to change; the others keep their values. Lists replace the whole list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandPatch {
    #[schema(max_length = 4000)]
    pub voice: Option<String>,
    #[schema(max_length = 200)]
    pub tone: Option<String>,
    /// At most 50, of at most 300 characters each.
    #[schema(max_items = 50)]
    pub pillars: Option<Vec<String>>,
    /// At most 50, of at most 500 characters each.
    #[schema(max_items = 50)]
    pub ctas: Option<Vec<String>>,
    /// At most 500 words or phrases of at most 100 characters, each with a letter or digit.
    #[schema(max_items = 500)]
    pub banned_terms: Option<Vec<String>>,
    /// At most 30 sets (names of 1 to 50 characters) of at most 30 tags (letters, digits, `_`).
    pub hashtag_sets: Option<BTreeMap<String, Vec<String>>>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#1d4ed8")]
    pub color_primary: Option<String>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub color_secondary: Option<String>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub color_background: Option<String>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub color_text: Option<String>,
    /// One of the installed card fonts; `null` or empty for the default.
    pub font: Option<String>,
    #[schema(max_length = 100)]
    pub handle: Option<String>,
}

fn view(client: Uuid, b: CoreBrand) -> Brand {
    Brand {
        client_id: client,
        voice: b.voice,
        tone: b.tone,
        pillars: b.pillars,
        ctas: b.ctas,
        banned_terms: b.banned_terms,
        hashtag_sets: b.hashtag_sets,
        color_primary: b.palette.primary,
        color_secondary: b.palette.secondary,
        color_background: b.palette.background,
        color_text: b.palette.text,
        font: b.font,
        handle: b.handle,
        logo_media_id: b.logo_media_id,
    }
}

/// The client (404 unless the agency's and reached by the key).
async fn client_of(
    conn: impl sqlx::PgExecutor<'_>,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<core_brand::Client> {
    if !caller.key.reaches(id) {
        return Err(ApiError::not_found());
    }
    core_brand::client(conn, caller.key.agency_id, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// A client's brand, with its `ETag`.
#[utoipa::path(get, path = "/api/v1/clients/{id}/brand", operation_id = "get_brand", tag = "brand",
    params(("id" = Uuid, Path, description = "The client")),
    responses(
        (status = 200, description = "The brand", body = Brand, headers(("ETag" = String))),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let client = client_of(&state.pool, &key, id).await?;
    let brand = core_brand::brand(&state.pool, &client).await?;
    Ok(json_with_etag(StatusCode::OK, &view(id, brand)))
}

/// A list field as the form's text: one entry a line. An entry with a line break of its own
/// would read as two, so it is refused.
fn lines(body: &mut JsonBody, field: &'static str, v: Vec<String>) -> String {
    if v.iter().any(|l| l.contains(['\n', '\r'])) {
        body.error(
            field,
            "Put each entry in its own array element, without line breaks.",
        );
    }
    v.join("\n")
}

/// Change some of a client's brand fields. With `If-Match`, only while the brand is still the
/// version named (412 otherwise).
#[utoipa::path(patch, path = "/api/v1/clients/{id}/brand", operation_id = "update_brand", tag = "brand",
    request_body(content = Option<BrandPatch>, description = "The fields to change; an empty body changes nothing"),
    params(("id" = Uuid, Path, description = "The client"),
           ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "The brand as changed", body = Brand, headers(("ETag" = String))),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The brand changed since the ETag", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    key: AdminKey,
    IdPath(id): IdPath,
    headers: HeaderMap,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    // the client is locked until the change commits, so If-Match compares with what is changed
    sqlx::query!(
        "SELECT id FROM clients WHERE id = $1 AND agency_id = $2 FOR UPDATE",
        id,
        agency
    )
    .fetch_optional(&mut *tx)
    .await?;
    let client = client_of(&mut *tx, &key, id).await?;
    let current = core_brand::brand(&mut *tx, &client).await?;
    let mut form = BrandForm::from_brand(&current);
    let text = |body: &mut JsonBody, field: &'static str| -> Option<String> {
        body.take::<String>(field, "a string")
    };
    if let Some(v) = text(&mut body, "voice") {
        // the form's own checks take any other character; the database takes no NUL
        if v.contains('\0') {
            body.error("voice", "The voice cannot contain a NUL character.");
        }
        form.voice = v;
    }
    if let Some(v) = text(&mut body, "tone") {
        form.tone = v;
    }
    for field in ["pillars", "ctas", "banned_terms"] {
        if let Some(v) = body.take::<Vec<String>>(field, "an array of strings") {
            let joined = lines(&mut body, field, v);
            match field {
                "pillars" => form.pillars = joined,
                "ctas" => form.ctas = joined,
                _ => form.banned_terms = joined,
            }
        }
    }
    if let Some(sets) = body.take::<BTreeMap<String, Vec<String>>>(
        "hashtag_sets",
        "an object of set names to arrays of hashtags",
    ) {
        let bad = sets.iter().any(|(name, tags)| {
            name.contains([':', '\n', '\r']) || tags.iter().any(|t| t.contains(['\n', '\r']))
        });
        if bad {
            body.error(
                "hashtag_sets",
                "A set's name cannot contain a colon or a line break, nor a tag a line break.",
            );
        }
        form.hashtag_sets = sets
            .iter()
            .map(|(name, tags)| format!("{name}: {}", tags.join(" ")))
            .collect::<Vec<_>>()
            .join("\n");
    }
    for field in [
        "color_primary",
        "color_secondary",
        "color_background",
        "color_text",
    ] {
        if let Some(v) = text(&mut body, field) {
            // typed into the text field: it wins over the picker, as in the console
            let (picker, typed, was) = match field {
                "color_primary" => (
                    &mut form.color_primary,
                    &mut form.color_primary_hex,
                    &mut form.color_primary_was,
                ),
                "color_secondary" => (
                    &mut form.color_secondary,
                    &mut form.color_secondary_hex,
                    &mut form.color_secondary_was,
                ),
                "color_background" => (
                    &mut form.color_background,
                    &mut form.color_background_hex,
                    &mut form.color_background_was,
                ),
                _ => (
                    &mut form.color_text,
                    &mut form.color_text_hex,
                    &mut form.color_text_was,
                ),
            };
            if v.trim().is_empty() {
                body.error(field, "Choose a colour.");
            }
            *picker = v.clone();
            *typed = v;
            was.clear();
        }
    }
    if body.has("font") {
        form.font = text(&mut body, "font").unwrap_or_default();
    }
    if body.has("handle") {
        form.handle = text(&mut body, "handle").unwrap_or_default();
    }
    let fonts = font_names(&state).await.unwrap_or_default();
    let valid = form.validate(&fonts);
    if let Err(errors) = &valid {
        for (field, message) in errors {
            body.error(field, message.clone());
        }
    }
    body.finish()?;
    let Ok(valid) = valid else {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "Some fields are not valid.",
        )]));
    };
    // a request that is wrong in itself says so whatever its precondition (RFC 9110 13.2.1)
    check_if_match(&headers, &etag_of(&view(id, current)))?;
    save_brand(&mut tx, &key.actor(), agency, id, &valid).await?;
    let brand = core_brand::brand(&mut *tx, &client).await?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &view(id, brand)))
}
