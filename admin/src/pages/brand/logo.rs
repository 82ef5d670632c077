//! The brand's logo: upload, removal, and where each answer goes.

use super::*;

/// Where to go after a logo change: a redirect, or for htmx a full-page redirect header (the
/// preview and the logo facts both change).
pub(super) fn after_logo(htmx: Htmx, id: Uuid, what: &str) -> Response {
    let to = format!("/clients/{id}/brand?saved={what}");
    if htmx.0 {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    } else {
        Redirect::to(&to).into_response()
    }
}

pub(super) async fn logo_refused(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    client: &core_brand::Client,
    message: &str,
) -> AppResult<Response> {
    let brand = core_brand::brand(&state.pool, client).await?;
    let body = if htmx.0 {
        let logo = logo_row(state, user.agency_id, brand.logo_media_id).await?;
        logo_section(user, client.id, logo.as_ref(), Some(message), true)
    } else {
        let form = BrandForm::from_brand(&brand);
        page_body(
            state,
            user,
            PageParts {
                client,
                brand: &brand,
                form: &form,
                errors: &FieldErrors::new(),
                logo_error: Some(message),
                notice: None,
            },
        )
        .await?
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        respond(
            htmx,
            user,
            &format!("{}: brand", client.name),
            Nav::Clients,
            body,
        ),
    )
        .into_response())
}

/// Read the `logo` field, stopping as soon as it passes the size limit.
pub(super) async fn read_logo(multipart: &mut Multipart) -> Result<Vec<u8>, String> {
    let unreadable = |_| "The upload could not be read; try again.".to_owned();
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        if field.name() != Some("logo") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_LOGO_BYTES {
                return Err("The file is larger than 2 MB; logos can be at most 2 MB.".into());
            }
        }
        return Ok(bytes);
    }
    Err("Choose an image file to upload.".into())
}

pub async fn upload_logo(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    let client = client_of(&state, user.agency_id, id).await?;
    let Ok(mut multipart) = multipart else {
        let message = "Send the logo as a file upload (multipart/form-data).";
        return logo_refused(&state, &user, htmx, &client, message).await;
    };
    let bytes = match read_logo(&mut multipart).await {
        Ok(b) => b,
        Err(e) => return logo_refused(&state, &user, htmx, &client, &e).await,
    };
    let media_dir = state.web.media_dir.clone();
    let checked = tokio::task::spawn_blocking(move || {
        check_logo(&bytes).map(|info| {
            let stored = cards::store(&media_dir, &bytes, info.ext);
            (info, stored, bytes.len())
        })
    })
    .await
    .map_err(anyhow::Error::from)?;
    let (info, stored, len) = match checked {
        Ok(x) => x,
        Err(e) => return logo_refused(&state, &user, htmx, &client, &e).await,
    };
    let (path, sha256) = stored.map_err(|e| anyhow::anyhow!("storing a logo: {e}"))?;
    let mut tx = state.pool.begin().await?;
    // the same picture uploaded before (for any of the agency's clients) is the same asset
    let media_id = sqlx::query_scalar!(
        "INSERT INTO media_assets (id, agency_id, client_id, sha256, path, mime, width, height, bytes, purpose)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'logo')
         ON CONFLICT (agency_id, sha256, mime) DO UPDATE SET path = EXCLUDED.path
         RETURNING id",
        Uuid::now_v7(),
        user.agency_id,
        id,
        &sha256[..],
        path,
        info.mime,
        info.width as i32,
        info.height as i32,
        len as i64,
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO brand_settings (client_id, agency_id, logo_media_id) VALUES ($1, $2, $3)
         ON CONFLICT (client_id) DO UPDATE SET logo_media_id = EXCLUDED.logo_media_id, updated_at = now()
         WHERE brand_settings.agency_id = EXCLUDED.agency_id",
        id,
        user.agency_id,
        media_id
    )
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "brand.logo")
            .target("client", id)
            .details(serde_json::json!({
                "media_id": media_id, "sha256": hex::encode(sha256), "mime": info.mime,
                "width": info.width, "height": info.height, "bytes": len,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(after_logo(htmx, id, "logo"))
}

pub async fn remove_logo(
    State(state): State<AppState>,
    user: AdminRole,
    htmx: Htmx,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    client_of(&state, user.agency_id, id).await?;
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "UPDATE brand_settings SET logo_media_id = NULL, updated_at = now() WHERE client_id = $1 AND agency_id = $2",
        id,
        user.agency_id
    )
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "brand.logo_remove").target("client", id),
    )
    .await?;
    tx.commit().await?;
    Ok(after_logo(htmx, id, "logo_removed"))
}
