//! `autosocial-bench cards`: how long an image card takes until it is usable — rendered and
//! encoded — per format and per platform size (the part of a `generate` job that burns CPU),
//! with the render alone and the encode alone beside it. `--encoders` also compares encoder
//! settings on the 1080×1080 card (time and size), the measurement behind `cards::PNG` and
//! `cards::encode_jpeg`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use autosocial_core::content::cards::image::codecs::jpeg::JpegEncoder;
use autosocial_core::content::cards::image::codecs::png::{CompressionType, FilterType};
use autosocial_core::content::cards::image::{
    self, DynamicImage, ExtendedColorType, ImageEncoder, Rgba, RgbaImage,
};
use autosocial_core::content::cards::{self, CardSize, CardSpec, Fonts, Palette, PngSettings};
use serde_json::{Map, Value, json};

use crate::harness::percentile;

pub struct Args {
    pub iterations: usize,
    pub fonts: PathBuf,
    pub samples: Option<PathBuf>,
    pub encoders: bool,
}

/// A 512×512 logo with transparency, so scaling and alpha compositing are measured too.
fn logo() -> DynamicImage {
    let mut img = RgbaImage::new(512, 512);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let d = ((x as f32 - 256.0).powi(2) + (y as f32 - 256.0).powi(2)).sqrt();
        if d <= 240.0 {
            *p = Rgba([230, 57, 70, if d > 236.0 { 128 } else { 255 }]);
        }
    }
    DynamicImage::ImageRgba8(img)
}

fn time_ms(mut f: impl FnMut() -> anyhow::Result<()>, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Png,
    Jpeg,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
        }
    }

    fn encode(self, img: &RgbaImage) -> anyhow::Result<Vec<u8>> {
        match self {
            Format::Png => cards::encode_png(img),
            Format::Jpeg => cards::encode_jpeg(img, 90),
        }
    }
}

/// One size in one format, rendered and encoded `n` times.
struct EndToEnd {
    label: String,
    format: Format,
    median: f64,
    p99: f64,
    /// The fastest run: on a shared machine, the one least disturbed by neighbours.
    min: f64,
    render: f64,
    encode: f64,
    bytes: usize,
}

fn end_to_end(
    fonts: &Fonts,
    spec: &CardSpec<'_>,
    format: Format,
    n: usize,
) -> anyhow::Result<EndToEnd> {
    let (mut total, mut render, mut encode) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = cards::render(fonts, spec)?;
        let rendered = t.elapsed();
        let out = format.encode(&r.image)?;
        let done = t.elapsed();
        bytes = out.len();
        total.push(done.as_secs_f64() * 1000.0);
        render.push(rendered.as_secs_f64() * 1000.0);
        encode.push((done - rendered).as_secs_f64() * 1000.0);
    }
    for v in [&mut total, &mut render, &mut encode] {
        v.sort_by(f64::total_cmp);
    }
    let (w, h) = spec.size.dimensions();
    Ok(EndToEnd {
        label: format!("{} {w}x{h}", spec.size.label()),
        format,
        median: percentile(&total, 0.5),
        p99: percentile(&total, 0.99),
        min: total[0],
        render: percentile(&render, 0.5),
        encode: percentile(&encode, 0.5),
        bytes,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let fonts = Fonts::load(&args.fonts)
        .with_context(|| format!("loading fonts from {}", args.fonts.display()))?;
    let logo = logo();
    let palette = Palette::from_hex("#1d3557", "#457b9d", "#1d3557", "#f1faee")
        .map_err(anyhow::Error::msg)?;
    let spec = CardSpec {
        size: CardSize::Square,
        headline: "Our Saturday sourdough sells out by ten",
        footer: "@northwind_bakery · Order ahead online",
        palette,
        gradient: true,
        logo: Some(&logo),
        font: None,
    };
    let first = cards::render(&fonts, &spec)?;
    let lines = first.text_bounds.len() - 1;
    println!(
        "card: 1080x1080, logo 512x512 with alpha, gradient, {lines}-line headline at {} px",
        first.headline_px
    );
    anyhow::ensure!(
        lines == 3,
        "the benchmark headline should take three lines, took {lines}"
    );
    println!(
        "machine: {} cores, load average {}",
        cards::parallel_renders(),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    );

    println!("warm-up: 10 renders");
    time_ms(|| cards::render(&fonts, &spec).map(drop), 10)?;

    // the headline: render + encode, the 1080×1080 card in both formats, then every platform
    // size in the format it is stored in
    let n = args.iterations.max(1);
    let per_size = (n / 4).max(20);
    println!("end to end (render + encode), median of {n} (1080x1080) or {per_size} (sizes):");
    let mut rows = vec![
        end_to_end(&fonts, &spec, Format::Png, n)?,
        end_to_end(&fonts, &spec, Format::Jpeg, n)?,
    ];
    for size in CardSize::ALL {
        let format = if size.prefers_jpeg() {
            Format::Jpeg
        } else {
            Format::Png
        };
        rows.push(end_to_end(
            &fonts,
            &CardSpec { size, ..spec },
            format,
            per_size,
        )?);
    }
    for r in &rows {
        println!(
            "  {:<28} {:<4}  {:>6.2} ms (p99 {:>6.2}, min {:>5.2}; render {:>5.2} + encode {:>5.2})  {:>4} KiB",
            r.label,
            r.format.name(),
            r.median,
            r.p99,
            r.min,
            r.render,
            r.encode,
            r.bytes / 1024
        );
    }

    // the render alone (the benchmark's original figure, kept comparable)
    let mut render = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(50) {
        let k = 50.min(n - chunk * 50);
        render.extend(time_ms(|| cards::render(&fonts, &spec).map(drop), k)?);
    }
    render.sort_by(f64::total_cmp);
    let (median, p99) = (percentile(&render, 0.5), percentile(&render, 0.99));
    let png = time_ms(|| cards::encode_png(&first.image).map(drop), 20)?;
    let jpeg = time_ms(|| cards::encode_jpeg(&first.image, 90).map(drop), 20)?;
    let png_bytes = cards::encode_png(&first.image)?.len();
    let jpeg_bytes = cards::encode_jpeg(&first.image, 90)?.len();
    println!(
        "render only ms: median {median:.2}, p99 {p99:.2}, min {:.2}, max {:.2} ({n} renders)",
        render[0],
        render[render.len() - 1]
    );
    println!(
        "encode only ms (median of 20): PNG {:.2} ({} KiB), JPEG q90 {:.2} ({} KiB)",
        percentile(&png, 0.5),
        png_bytes / 1024,
        percentile(&jpeg, 0.5),
        jpeg_bytes / 1024
    );

    if args.encoders {
        compare_encoders(&first.image)?;
    }
    if let Some(dir) = &args.samples {
        write_samples(&fonts, &spec, dir)?;
    }

    let mut sizes = Map::new();
    for r in &rows[2..] {
        sizes.insert(
            r.label.split(' ').next().unwrap_or_default().to_owned(),
            json!({ "format": r.format.name(), "median_ms": round2(r.median), "min_ms": round2(r.min), "bytes": r.bytes }),
        );
    }
    println!(
        "{}",
        json!({
            "bench": "cards", "size": "1080x1080",
            "median_ms": round2(median),
            "p99_ms": round2(p99),
            "e2e_png_median_ms": round2(rows[0].median),
            "e2e_png_p99_ms": round2(rows[0].p99),
            "e2e_png_min_ms": round2(rows[0].min),
            "e2e_jpeg_median_ms": round2(rows[1].median),
            "e2e_jpeg_p99_ms": round2(rows[1].p99),
            "e2e_jpeg_min_ms": round2(rows[1].min),
            "load_average": std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().and_then(|x| x.parse::<f64>().ok())),
            "png_bytes": png_bytes,
            "jpeg_bytes": jpeg_bytes,
            "e2e_by_size": Value::Object(sizes),
        })
    );
    Ok(())
}

/// Encoder settings side by side on the benchmark card: median of 7 encodes, and the size.
fn compare_encoders(img: &RgbaImage) -> anyhow::Result<()> {
    let rgb: Vec<u8> = img
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut rows: Vec<(String, f64, usize)> = Vec::new();
    let compressions = [
        ("Fast", CompressionType::Fast),
        ("Default", CompressionType::Default),
        ("Best", CompressionType::Best),
        ("Level(1)", CompressionType::Level(1)),
        ("Level(2)", CompressionType::Level(2)),
        ("Level(3)", CompressionType::Level(3)),
        ("Level(4)", CompressionType::Level(4)),
        ("Level(5)", CompressionType::Level(5)),
        ("Level(6)", CompressionType::Level(6)),
    ];
    let filters = [
        ("NoFilter", FilterType::NoFilter),
        ("Sub", FilterType::Sub),
        ("Up", FilterType::Up),
        ("Avg", FilterType::Avg),
        ("Paeth", FilterType::Paeth),
        ("Adaptive", FilterType::Adaptive),
    ];
    for (cn, compression) in compressions {
        for (fname, filter) in filters {
            let settings = PngSettings {
                compression,
                filter,
            };
            let t = time_ms(|| cards::encode_png_with(img, settings).map(drop), 7)?;
            let bytes = cards::encode_png_with(img, settings)?.len();
            rows.push((format!("PNG {cn} {fname}"), percentile(&t, 0.5), bytes));
        }
    }
    let image_jpeg = |out: &mut Vec<u8>| {
        JpegEncoder::new_with_quality(out, 90)
            .write_image(&rgb, img.width(), img.height(), ExtendedColorType::Rgb8)
            .context("image's JPEG encoder")
    };
    let t = time_ms(|| image_jpeg(&mut Vec::new()), 7)?;
    let mut out = Vec::new();
    image_jpeg(&mut out)?;
    rows.push((
        "JPEG q90 image crate (4:2:2)".into(),
        percentile(&t, 0.5),
        out.len(),
    ));
    let t = time_ms(|| cards::encode_jpeg(img, 90).map(drop), 7)?;
    rows.push((
        "JPEG q90 jpeg-encoder (4:2:0, as shipped)".into(),
        percentile(&t, 0.5),
        cards::encode_jpeg(img, 90)?.len(),
    ));
    println!("encoders on the 1080x1080 card (median of 7):");
    for (name, ms, bytes) in rows {
        println!("  {name:<44} {ms:>7.2} ms  {:>7} bytes", bytes);
    }
    Ok(())
}

/// The benchmark card in every size, 540 px wide, for a quick look.
fn write_samples(fonts: &Fonts, spec: &CardSpec<'_>, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for size in CardSize::ALL {
        let r = cards::render(fonts, &CardSpec { size, ..*spec })?;
        let (w, h) = r.image.dimensions();
        let small = image::imageops::resize(
            &r.image,
            540,
            h * 540 / w,
            image::imageops::FilterType::Lanczos3,
        );
        let path = dir.join(format!("bench-{}.png", size.label()));
        std::fs::write(&path, cards::encode_png(&small)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
