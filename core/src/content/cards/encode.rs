//! Cards out of the renderer: PNG and JPEG encoding, the blocking pool, storage.

use super::*;

pub(super) fn to_rgb_bytes(img: &RgbaImage) -> Vec<u8> {
    img.as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// PNG encoder settings: a zlib level (or `image`'s presets) and the row filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PngSettings {
    pub compression: CompressionType,
    pub filter: PngFilter,
}

/// The settings [`encode_png`] uses: zlib level 2 (through zlib-rs, flate2's port of zlib-ng)
/// on unfiltered rows. Cards are flat colour, smooth gradients and text: unfiltered rows are
/// runs of a few repeated pixels that LZ77 matches cheaply, while every filter turns them into
/// noise-like differences; a low level keeps the encode quick for a file a little larger than
/// the slowest levels make. `autosocial-bench cards --encoders` compares every zlib level and
/// row filter on the 1080×1080 benchmark card (time and size).
pub const PNG: PngSettings = PngSettings {
    compression: CompressionType::Level(2),
    filter: PngFilter::NoFilter,
};

/// PNG (RGB, cards are opaque) with [`PNG`]. Deterministic: the same image gives the same bytes.
pub fn encode_png(img: &RgbaImage) -> anyhow::Result<Vec<u8>> {
    encode_png_with(img, PNG)
}

/// PNG (RGB) with the given settings.
pub fn encode_png_with(img: &RgbaImage, settings: PngSettings) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, settings.compression, settings.filter)
        .write_image(
            &to_rgb_bytes(img),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .context("encoding PNG")?;
    Ok(out)
}

/// Baseline JPEG at `quality` (1–100) by `jpeg-encoder` (its AVX2 code where the CPU has it;
/// `autosocial-bench cards --encoders` compares it with the `image` crate's encoder). Chroma is
/// subsampled 4:2:0, as Instagram and TikTok store the images they are given anyway: a quarter
/// fewer blocks to encode than 4:2:2, and smaller files. Deterministic, like [`encode_png`].
pub fn encode_jpeg(img: &RgbaImage, quality: u8) -> anyhow::Result<Vec<u8>> {
    let (w, h) = img.dimensions();
    let (w16, h16) = (u16::try_from(w), u16::try_from(h));
    let (Ok(w16), Ok(h16)) = (w16, h16) else {
        anyhow::bail!("a JPEG is at most 65535 pixels on a side, this image is {w}×{h}");
    };
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(img.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgba)
        .context("encoding JPEG")?;
    Ok(out)
}

/// Cards rendered at once in this process: one per core.
static SLOTS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(parallel_renders())));

/// How many cards this process renders at once ([`on_blocking_pool`]): one per core.
pub fn parallel_renders() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs card work (render, encode, store) on tokio's blocking pool, at most one card per core at
/// a time across the process; the rest wait without holding a thread.
///
/// A week of items means dozens of `generate` jobs at once (a worker runs up to ¾ of its
/// concurrency of one kind). A blocking thread per card would leave the runtime's own threads
/// (claims, lease renewals, publishing) and Postgres a sliver of the cores each; one render per
/// core keeps every core busy while cards wait their turn, and a thread that wakes for a due job
/// competes with as many runnable threads as there are cores, not with dozens.
pub async fn on_blocking_pool<T, F>(work: F) -> anyhow::Result<T>
where
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let permit = SLOTS
        .clone()
        .acquire_owned()
        .await
        .context("the card renderer is shut down")?;
    // the permit moves into the closure: a cancelled caller does not free its slot before the
    // thread has finished
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .context("rendering a card panicked")?
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Content-addressed storage: writes `<dir>/<aa>/<sha256hex>.<ext>` atomically (temp + rename)
/// if absent; returns (relative path, sha256 bytes).
///
/// Idempotent and safe to race: two workers storing the same card write the same bytes under
/// the same name, and a reader never sees a partial file. `ext` must be 1–8 lowercase ASCII
/// letters or digits.
pub fn store(media_dir: &Path, bytes: &[u8], ext: &str) -> std::io::Result<(String, [u8; 32])> {
    if ext.is_empty()
        || ext.len() > 8
        || !ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("“{ext}” is not a file extension (1–8 lowercase letters or digits)"),
        ));
    }
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    let hex = hex::encode(digest);
    let relative = format!("{}/{hex}.{ext}", &hex[..2]);
    let path = media_dir.join(&relative);
    if path.exists() {
        return Ok((relative, digest));
    }
    let dir = media_dir.join(&hex[..2]);
    std::fs::create_dir_all(&dir)?;
    let temp = dir.join(format!(
        ".{hex}.{}.{}.tmp",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    Ok((relative, digest))
}
