//! Brand: fonts and rendering the preview card.

use super::*;

// ---------------------------------------------------------------------------------------------
// Fonts and rendering
// ---------------------------------------------------------------------------------------------

pub(super) static FONTS: LazyLock<Mutex<HashMap<PathBuf, Arc<Fonts>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Rendering is CPU work on a small machine: two previews at a time, the rest wait.
pub(super) static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The fonts shipped in `<templates>/fonts` (the worker's setting, `AUTOSOCIAL_TEMPLATES_DIR`),
/// loaded once per process.
pub(super) fn fonts_blocking(templates_dir: &FsPath) -> anyhow::Result<Arc<Fonts>> {
    let dir = templates_dir.join("fonts");
    if let Some(f) = FONTS
        .lock()
        .map_err(|_| anyhow::anyhow!("font cache poisoned"))?
        .get(&dir)
    {
        return Ok(f.clone());
    }
    let loaded = Arc::new(Fonts::load(&dir)?);
    FONTS
        .lock()
        .map_err(|_| anyhow::anyhow!("font cache poisoned"))?
        .insert(dir, loaded.clone());
    Ok(loaded)
}

pub(super) async fn fonts(state: &AppState) -> anyhow::Result<Arc<Fonts>> {
    let dir = state.web.templates_dir.clone();
    tokio::task::spawn_blocking(move || fonts_blocking(&dir)).await?
}

/// The font names offered, or why there are none.
pub(crate) async fn font_names(state: &AppState) -> Result<Vec<String>, String> {
    match fonts(state).await {
        Ok(f) => Ok(f.names()),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "loading the card fonts failed");
            Err("The card fonts could not be loaded (check AUTOSOCIAL_TEMPLATES_DIR).".into())
        }
    }
}

/// The stored logo's file, if the brand has one.
pub(super) async fn logo_file(
    state: &AppState,
    agency: Uuid,
    logo: Option<Uuid>,
) -> AppResult<Option<PathBuf>> {
    let Some(logo) = logo else { return Ok(None) };
    let path = sqlx::query_scalar!(
        "SELECT path FROM media_assets WHERE id = $1 AND agency_id = $2",
        logo,
        agency
    )
    .fetch_optional(&state.pool)
    .await?;
    Ok(path
        .filter(|p| autosocial_core::media::valid_path(p))
        .map(|p| state.web.media_dir.join(p)))
}
