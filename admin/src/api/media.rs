//! `POST /api/v1/clients/{id}/media`: upload an image for a client's posts (multipart, field
//! `file`). It is checked by decoding it whole and stored by the composer's own upload
//! (`pages::composer::store_upload`: PNG or JPEG, at most 5 MB, the same bytes are the same
//! asset), audited with the key as actor; the answer's id goes in `media_id` when creating an
//! item.

use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Caller, ReviewerKey};
use super::doc::WriteErrors;
use super::input::{IdPath, json};
use super::problem::{ApiError, ApiResult, FieldError, Problem, ProblemType};
use crate::app::AppState;
use crate::pages::composer::{MAX_UPLOAD_BYTES, store_upload};

/// An uploaded image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Media {
    /// Pass as `media_id` when creating an item for this client.
    pub id: Uuid,
    pub client_id: Uuid,
    /// `image/png` or `image/jpeg`, from the image's content (not its name).
    pub mime: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
}

/// The multipart form of an upload (for the document).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MediaUpload {
    /// A PNG or JPEG image of at most 5 MB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new("file", message)])
}

async fn reachable_client(state: &AppState, caller: &Caller, client: Uuid) -> ApiResult<()> {
    let found = sqlx::query_scalar!(
        r#"SELECT true AS "x!" FROM clients WHERE id = $1 AND agency_id = $2"#,
        client,
        caller.key.agency_id
    )
    .fetch_optional(&state.pool)
    .await?;
    if found.is_some() && caller.key.reaches(client) {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// Upload an image for a client's posts.
#[utoipa::path(post, path = "/api/v1/clients/{id}/media", operation_id = "upload_media", tag = "media",
    request_body(content = MediaUpload, content_type = "multipart/form-data"),
    params(("id" = Uuid, Path, description = "The client"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 201, description = "Stored (or the same image was stored before)", body = Media),
        (status = 404, description = "No such client for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(client): IdPath,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Response> {
    reachable_client(&state, &key, client).await?;
    let mut multipart = multipart.map_err(|_| {
        ApiError::new(
            ProblemType::UnsupportedMediaType,
            "Send the image as multipart/form-data, in a field named `file`.",
        )
    })?;
    let too_large = || {
        ApiError::new(
            ProblemType::PayloadTooLarge,
            format!("Send an image of at most {MAX_UPLOAD_BYTES} bytes (5 MB)."),
        )
    };
    let mut file: Option<Bytes> = None;
    let mut unknown: Vec<String> = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                if name == "file" && file.is_none() {
                    file = Some(field.bytes().await.map_err(|_| too_large())?);
                } else {
                    unknown.push(name.chars().take(100).collect());
                }
            }
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => {
                return Err(ApiError::malformed(
                    "The multipart body cannot be read (or the upload broke off).",
                ));
            }
        }
    }
    let mut errors: Vec<FieldError> = unknown
        .into_iter()
        .map(|n| FieldError::new(n, "Unknown field: send the image alone, as `file`."))
        .collect();
    let Some(bytes) = file else {
        errors.push(FieldError::new(
            "file",
            "Send the image in a field named `file`.",
        ));
        return Err(ApiError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(too_large());
    }
    let u = match store_upload(&state, &key.actor(), key.key.agency_id, client, bytes).await? {
        Ok(u) => u,
        Err(m) => return Err(refused(m)),
    };
    let mime = if u.path.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok(json(
        StatusCode::CREATED,
        &Media {
            id: u.id,
            client_id: client,
            mime: mime.to_owned(),
            width: u.width,
            height: u.height,
            bytes: u.bytes,
        },
    ))
}
