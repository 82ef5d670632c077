//! Uploading an image in the composer: checked by decoding, stored, offered for the post.

use super::*;

/// Why an upload was refused, for the person.
pub(super) fn check_image(bytes: &[u8]) -> Result<(image::ImageFormat, u32, u32), String> {
    if bytes.is_empty() {
        return Err("Choose an image file to upload.".into());
    }
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(format!(
            "The image is {:.1} MB; at most 5 MB is accepted.",
            bytes.len() as f64 / 1_048_576.0
        ));
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (image::ImageFormat::Png | image::ImageFormat::Jpeg)) => f,
        _ => return Err("Only PNG and JPEG images are accepted.".into()),
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_UPLOAD_SIDE);
    limits.max_image_height = Some(MAX_UPLOAD_SIDE);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    // decode it whole: a truncated or corrupt file is refused here, not by a platform later
    let img = reader.decode().map_err(|_| {
        "The file is not a readable PNG or JPEG image (or it is too large in pixels).".to_owned()
    })?;
    Ok((format, img.width(), img.height()))
}

/// Check an uploaded image by decoding it (PNG or JPEG, at most 5 MB and 12,000 px a side), store
/// it content-addressed, record it as the client's upload and audit it: the composer's upload
/// and the API's `POST /clients/{id}/media` both end here. `Ok(Err(message))`: refused, with the
/// reason for the person; nothing was stored in the database.
pub(crate) async fn store_upload(
    state: &AppState,
    actor: &autosocial_core::audit::Actor,
    agency: Uuid,
    client: Uuid,
    bytes: Bytes,
) -> AppResult<Result<UploadedImage, String>> {
    let checked = {
        let b = bytes.clone();
        tokio::task::spawn_blocking(move || check_image(&b))
            .await
            .map_err(anyhow::Error::from)?
    };
    let (format, width, height) = match checked {
        Ok(x) => x,
        Err(m) => return Ok(Err(m)),
    };
    let (ext, mime) = match format {
        image::ImageFormat::Png => ("png", "image/png"),
        _ => ("jpg", "image/jpeg"),
    };
    let media_dir = state.web.media_dir.clone();
    let stored = {
        let b = bytes.clone();
        tokio::task::spawn_blocking(move || cards::store(&media_dir, &b, ext))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?
    };
    let (path, sha256) = stored;
    let mut tx = state.pool.begin().await?;
    // the same bytes uploaded again (for this agency) are the same asset
    let media_id = sqlx::query_scalar!(
        r#"WITH ins AS (
               INSERT INTO media_assets (id, agency_id, client_id, sha256, path, mime, width, height, bytes, purpose)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'upload')
               ON CONFLICT (agency_id, sha256, mime) DO NOTHING
               RETURNING id)
           SELECT id AS "id!" FROM ins
           UNION ALL
           SELECT id FROM media_assets WHERE agency_id = $2 AND sha256 = $4 AND mime = $6 AND client_id = $3 AND purpose = 'upload'
           LIMIT 1"#,
        Uuid::now_v7(),
        agency,
        client,
        &sha256[..],
        path,
        mime,
        width as i32,
        height as i32,
        bytes.len() as i64
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(media_id) = media_id else {
        // the same file exists as another client's image or as a card: keep assets per client
        tx.rollback().await?;
        return Ok(Err("This exact image is already stored for another purpose; change it slightly or use the card option.".into()));
    };
    audit::append(
        &mut tx,
        actor,
        Entry::new(Some(agency), "media.upload")
            .target("media_asset", media_id)
            .details(serde_json::json!({ "client": client, "mime": mime, "bytes": bytes.len() })),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(UploadedImage {
        id: media_id,
        path,
        width: width as i32,
        height: height as i32,
        bytes: bytes.len() as i64,
    }))
}

/// `POST /clients/{id}/compose/upload` (multipart, field `image_file`): validate and store the
/// image, and answer with the composer's image block holding its id.
pub async fn upload(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let c = client(&state, agency, id).await?;
    let refused = |m: String| {
        let errors = FieldErrors::from([("upload", m)]);
        let f = ComposeForm {
            image: "none".into(),
            ..ComposeForm::default()
        };
        let body = image_block(&state, &f, None, &errors);
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            respond(htmx, &user, "Upload an image", Nav::Clients, body),
        )
            .into_response()
    };
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(_) => return Ok(refused("Send the image as a file upload.".into())),
    };
    let mut file: Option<Bytes> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("image_file") => match field.bytes().await {
                Ok(b) => file = Some(b),
                Err(_) => {
                    return Ok(refused(
                        "The image is larger than 5 MB (or the upload broke off).".into(),
                    ));
                }
            },
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                return Ok(refused(
                    "The image is larger than 5 MB (or the upload broke off).".into(),
                ));
            }
        }
    }
    let bytes = file.unwrap_or_default();
    let u = match store_upload(&state, &user.actor(), agency, c.id, bytes).await? {
        Ok(u) => u,
        Err(m) => return Ok(refused(m)),
    };
    let media_id = u.id;
    let f = ComposeForm {
        image: "upload".into(),
        media_id: media_id.to_string(),
        ..ComposeForm::default()
    };
    let body = image_block(&state, &f, Some(&u), &FieldErrors::new());
    Ok(respond(htmx, &user, "Upload an image", Nav::Clients, body))
}
