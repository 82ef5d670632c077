//! `autosocial-bench cards`: how long one image card takes to render (the part of a `generate`
//! job that burns CPU), and to encode. Included by `bin/autosocial-bench.rs`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use autosocial_core::content::cards::image::{self, DynamicImage, Rgba, RgbaImage};
use autosocial_core::content::cards::{self, CardSize, CardSpec, Fonts, Palette};
use serde_json::json;

pub struct Args {
    pub iterations: usize,
    pub fonts: PathBuf,
    pub samples: Option<PathBuf>,
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

    println!("warm-up: 10 renders");
    time_ms(|| cards::render(&fonts, &spec).map(drop), 10)?;

    let n = args.iterations.max(1);
    let mut render = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(50) {
        let k = 50.min(n - chunk * 50);
        render.extend(time_ms(|| cards::render(&fonts, &spec).map(drop), k)?);
        println!("rendered {} of {n}", render.len());
    }
    render.sort_by(f64::total_cmp);
    let (median, p99) = (
        crate::percentile(&render, 0.5),
        crate::percentile(&render, 0.99),
    );

    let png = time_ms(|| cards::encode_png(&first.image).map(drop), 20)?;
    let jpeg = time_ms(|| cards::encode_jpeg(&first.image, 90).map(drop), 20)?;
    let png_bytes = cards::encode_png(&first.image)?.len();
    let jpeg_bytes = cards::encode_jpeg(&first.image, 90)?.len();
    println!(
        "render ms: median {median:.2}, p99 {p99:.2}, min {:.2}, max {:.2} ({n} renders)",
        render[0],
        render[render.len() - 1]
    );
    println!(
        "encode ms (median of 20): PNG {:.2} ({} KiB), JPEG q90 {:.2} ({} KiB)",
        crate::percentile(&png, 0.5),
        png_bytes / 1024,
        crate::percentile(&jpeg, 0.5),
        jpeg_bytes / 1024
    );

    if let Some(dir) = &args.samples {
        write_samples(&fonts, &spec, dir)?;
    }

    println!(
        "{}",
        json!({
            "bench": "cards", "size": "1080x1080",
            "median_ms": (median * 100.0).round() / 100.0,
            "p99_ms": (p99 * 100.0).round() / 100.0,
        })
    );
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
