//! Cards for a composed post: fonts, the headline, rendering and storing each platform's size.

use super::*;

/// A card rendered and stored.
pub(super) struct StoredCard {
    pub(super) label: &'static str,
    pub(super) path: String,
    pub(super) sha256: [u8; 32],
    pub(super) mime: &'static str,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) bytes: usize,
}

/// Fonts are loaded once per process (and again only if the directory setting differs).
static FONTS: Mutex<Option<(PathBuf, Arc<Fonts>)>> = Mutex::new(None);

pub(super) fn fonts(dir: &FsPath) -> anyhow::Result<Arc<Fonts>> {
    let mut cached = FONTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((d, f)) = cached.as_ref()
        && d == dir
    {
        return Ok(Arc::clone(f));
    }
    let loaded = Arc::new(Fonts::load(dir)?);
    *cached = Some((dir.to_owned(), Arc::clone(&loaded)));
    Ok(loaded)
}

/// The card's headline: the caption's first line, cut at a word to about 90 characters.
pub(super) fn headline(caption: &str) -> String {
    let first = caption
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if first.chars().count() <= 90 {
        return first.to_owned();
    }
    let cut: String = first.chars().take(90).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a);
    format!("{}…", cut.trim_end())
}

pub(super) async fn render_cards(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    v: &Valid,
) -> AppResult<Vec<StoredCard>> {
    let Some(bc) = brand::client(&state.pool, agency, client).await? else {
        return Err(AppError::NotFound);
    };
    let brand = brand::brand(&state.pool, &bc).await?;
    let palette = cards::Palette::from_hex(
        &brand.palette.primary,
        &brand.palette.secondary,
        &brand.palette.background,
        &brand.palette.text,
    )
    .map_err(|e| anyhow::anyhow!("brand palette: {e}"))?;
    let logo = match brand.logo_media_id {
        Some(logo) => sqlx::query_scalar!(
            "SELECT path FROM media_assets WHERE id = $1 AND agency_id = $2",
            logo,
            agency
        )
        .fetch_optional(&state.pool)
        .await?
        .filter(|p| autosocial_core::media::valid_path(p))
        .map(|p| state.web.media_dir.join(p)),
        None => None,
    };
    let mut sizes: Vec<CardSize> = Vec::new();
    for s in v.platforms.iter().map(|p| CardSize::for_platform(*p)) {
        if !sizes.contains(&s) {
            sizes.push(s);
        }
    }
    let headline = headline(&v.caption);
    let footer = brand
        .handle
        .clone()
        .or_else(|| v.cta.clone())
        .unwrap_or_default();
    let font = brand.font.clone();
    let media_dir = state.web.media_dir.clone();
    let fonts_dir = state.web.templates_dir.join("fonts");
    let stored = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<StoredCard>> {
        let fonts = fonts(&fonts_dir)?;
        let logo = logo.and_then(|p| image::open(&p).ok());
        let font = font
            .as_deref()
            .filter(|f| fonts.names().iter().any(|n| n == f));
        let mut out = Vec::new();
        for size in sizes {
            let spec = CardSpec {
                size,
                headline: &headline,
                footer: &footer,
                palette,
                gradient: false,
                logo: logo.as_ref(),
                font,
            };
            let rendered = cards::render(&fonts, &spec)?;
            let (bytes, ext, mime) = if size.prefers_jpeg() {
                (
                    cards::encode_jpeg(&rendered.image, 90)?,
                    "jpg",
                    "image/jpeg",
                )
            } else {
                (cards::encode_png(&rendered.image)?, "png", "image/png")
            };
            let (path, sha256) = cards::store(&media_dir, &bytes, ext)?;
            let (width, height) = size.dimensions();
            out.push(StoredCard {
                label: size.label(),
                path,
                sha256,
                mime,
                width,
                height,
                bytes: bytes.len(),
            });
        }
        Ok(out)
    })
    .await
    .map_err(anyhow::Error::from)??;
    Ok(stored)
}
