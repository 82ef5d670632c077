//! Image cards: sizes, safe margins (by the reported bounds and by scanning pixels), contrast
//! fallback, determinism, fitting of long headlines, and content-addressed storage.

use std::path::{Path, PathBuf};

use autosocial_core::content::cards::{
    self, CardSize, CardSpec, Fonts, MIN_CONTRAST, Palette, Rect, Rendered, Rgb,
};
use autosocial_core::domain::Platform;
use image::{DynamicImage, Rgba, RgbaImage};
use sha2::{Digest, Sha256};

fn fonts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/fonts")
}

fn fonts() -> Fonts {
    Fonts::load(&fonts_dir()).expect("shipped fonts load")
}

/// A 400×200 logo: an opaque rounded badge on a transparent background.
fn logo() -> DynamicImage {
    let mut img = RgbaImage::new(400, 200);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (dx, dy) = (x as f32 - 200.0, y as f32 - 100.0);
        if (dx / 190.0).powi(2) + (dy / 90.0).powi(2) <= 1.0 {
            *p = Rgba([230, 57, 70, 255]);
        }
    }
    DynamicImage::ImageRgba8(img)
}

fn palette(primary: &str, secondary: &str, background: &str, text: &str) -> Palette {
    Palette::from_hex(primary, secondary, background, text).unwrap()
}

fn navy() -> Palette {
    palette("#1d3557", "#457b9d", "#1d3557", "#f1faee")
}

fn spec<'a>(size: CardSize, headline: &'a str, logo: Option<&'a DynamicImage>) -> CardSpec<'a> {
    CardSpec {
        size,
        headline,
        footer: "@northwind · Book a table today",
        palette: navy(),
        gradient: false,
        logo,
        font: None,
    }
}

fn rgb(p: &Rgba<u8>) -> Rgb {
    image::Rgb([p[0], p[1], p[2]])
}

fn inside_any(x: u32, y: u32, rects: &[Rect]) -> bool {
    rects.iter().any(|r| r.contains(x, y))
}

/// On a solid background, every pixel that is not background lies inside a text line's
/// bounds, the logo or the accent rule, and all of those lie inside the safe area.
fn assert_ink_confined(r: &Rendered, background: Rgb) {
    let safe = r.safe_area;
    for b in &r.text_bounds {
        assert!(
            safe.contains_rect(b),
            "text {b:?} outside safe area {safe:?}"
        );
    }
    let mut allowed = r.text_bounds.clone();
    allowed.extend(r.logo_bounds);
    allowed.extend(r.accent_bounds);
    for a in &allowed {
        assert!(safe.contains_rect(a), "{a:?} outside safe area {safe:?}");
    }
    let mut text_pixels = 0;
    for (x, y, p) in r.image.enumerate_pixels() {
        if rgb(p) == background {
            continue;
        }
        assert!(
            inside_any(x, y, &allowed),
            "pixel ({x},{y}) = {p:?} is neither background nor inside text/logo/accent"
        );
        assert!(safe.contains(x, y), "pixel ({x},{y}) inked outside margins");
        if rgb(p) == r.text_color {
            text_pixels += 1;
        }
    }
    assert!(text_pixels > 0, "no pixel has the text colour");
}

#[test]
fn every_size_renders_at_its_exact_dimensions() {
    let fonts = fonts();
    let logo = logo();
    for size in CardSize::ALL {
        for gradient in [false, true] {
            let mut s = spec(size, "Spring menu is here", Some(&logo));
            s.gradient = gradient;
            let r = cards::render(&fonts, &s).unwrap();
            assert_eq!(r.image.dimensions(), size.dimensions(), "{size:?}");
            let margin = (size.dimensions().0.min(size.dimensions().1) as f32 * 0.08).round();
            assert_eq!(r.safe_area.x, margin as u32);
            assert!(r.text_bounds.len() >= 2, "headline and footer");
            // the footer is the last line, at the bottom of the safe area
            let footer = r.text_bounds.last().unwrap();
            assert!(r.text_bounds.iter().all(|b| b.y <= footer.y));
            assert!(r.safe_area.bottom() - footer.bottom() < r.safe_area.height / 20);
        }
    }
    assert_eq!(CardSize::Square.dimensions(), (1080, 1080));
    assert_eq!(CardSize::Story.dimensions(), (1080, 1920));
    assert_eq!(CardSize::for_platform(Platform::Tiktok), CardSize::Story);
    assert_eq!(CardSize::for_platform(Platform::Sandbox), CardSize::Square);
    assert!(CardSize::Square.prefers_jpeg() && !CardSize::Linkedin.prefers_jpeg());
}

#[test]
fn text_and_logo_stay_inside_the_safe_margins() {
    let fonts = fonts();
    let logo = logo();
    for size in CardSize::ALL {
        let r = cards::render(
            &fonts,
            &spec(
                size,
                "Fresh pasta, slow Sundays and jazz on the terrace",
                Some(&logo),
            ),
        )
        .unwrap();
        assert_ink_confined(&r, navy().background);
        let l = r.logo_bounds.unwrap();
        assert_eq!((l.x, l.y), (r.safe_area.x, r.safe_area.y), "logo top-left");
        // aspect ratio kept (2:1, within a pixel of rounding)
        assert!((l.width as i64 - 2 * l.height as i64).abs() <= 2, "{l:?}");
        // the headline starts below the logo
        assert!(r.text_bounds[0].y >= l.bottom());
    }
}

#[test]
fn contrast_reaches_aa_and_falls_back_when_the_brand_colour_does_not() {
    let fonts = fonts();
    let cases = [
        // (palette, gradient, text colour expected to be kept)
        (navy(), false, true),
        (
            palette("#000000", "#000000", "#ffffff", "#222222"),
            false,
            true,
        ),
        // white on orange is 2.1:1: black instead
        (
            palette("#ff8800", "#ff8800", "#ff8800", "#ffffff"),
            false,
            false,
        ),
        // deliberately bad: text colour almost the background
        (
            palette("#336699", "#336699", "#336699", "#34679a"),
            false,
            false,
        ),
        // mid grey where both black and white are close to the limit
        (
            palette("#777777", "#777777", "#777777", "#7a7a7a"),
            false,
            false,
        ),
        // a dark gradient keeps light text
        (
            palette("#0b132b", "#1c2541", "#000000", "#ffffff"),
            true,
            true,
        ),
        // a gradient from black to white under the text: no colour works everywhere, so the
        // brand's white text stays and the background is tinted darker
        (
            palette("#000000", "#ffffff", "#000000", "#ffffff"),
            true,
            true,
        ),
        // the same for dark text on a light-to-dark gradient
        (
            palette("#ffffff", "#000000", "#000000", "#101010"),
            true,
            false,
        ),
    ];
    for (p, gradient, kept) in cases {
        let s = CardSpec {
            palette: p,
            gradient,
            ..spec(CardSize::Square, "Contrast is not optional", None)
        };
        let r = cards::render(&fonts, &s).unwrap();
        assert!(
            r.contrast >= MIN_CONTRAST,
            "{p:?} gradient={gradient}: {:.2}",
            r.contrast
        );
        assert!(
            (cards::contrast_ratio(r.text_color, r.background_sample) - r.contrast).abs() < 1e-9
        );
        if kept {
            assert_eq!(r.text_color, p.text, "{p:?}");
        } else {
            assert_ne!(r.text_color, p.text, "{p:?}");
            assert!(
                r.text_color == image::Rgb([0, 0, 0])
                    || r.text_color == image::Rgb([255, 255, 255])
            );
        }
        if !gradient {
            assert_ink_confined(&r, p.background);
            assert!(cards::contrast_ratio(r.text_color, p.background) >= MIN_CONTRAST);
        }
    }
}

#[test]
fn a_gradient_from_dark_to_light_is_tinted_just_enough() {
    let fonts = fonts();
    let s = CardSpec {
        palette: palette("#3a0ca3", "#4cc9f0", "#000000", "#ffffff"),
        gradient: true,
        ..spec(CardSize::Square, "Tinted, not boxed", None)
    };
    let r = cards::render(&fonts, &s).unwrap();
    assert_eq!(r.text_color, image::Rgb([255, 255, 255]));
    assert!(
        r.contrast >= MIN_CONTRAST && r.contrast < MIN_CONTRAST + 1.0,
        "{}",
        r.contrast
    );
    // the light end of the gradient got darker, uniformly (still a gradient)
    let corner = rgb(r.image.get_pixel(1079, 1079));
    assert!(cards::relative_luminance(corner) < cards::relative_luminance(s.palette.secondary));
    assert_ne!(rgb(r.image.get_pixel(0, 0)), corner);
}

#[test]
fn output_is_deterministic() {
    let fonts = fonts();
    let logo = logo();
    for gradient in [false, true] {
        let mut s = spec(CardSize::Portrait, "Same input, same bytes", Some(&logo));
        s.gradient = gradient;
        let a = cards::render(&fonts, &s).unwrap();
        let b = cards::render(&fonts, &s).unwrap();
        let png_a = cards::encode_png(&a.image).unwrap();
        assert_eq!(png_a, cards::encode_png(&b.image).unwrap());
        assert_eq!(
            cards::encode_jpeg(&a.image, 90).unwrap(),
            cards::encode_jpeg(&b.image, 90).unwrap()
        );
        // and the bytes are a PNG of the right size
        let decoded = image::load_from_memory(&png_a).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            CardSize::Portrait.dimensions()
        );
    }
}

#[test]
fn a_long_headline_shrinks_but_stays_inside() {
    let fonts = fonts();
    let short = cards::render(&fonts, &spec(CardSize::Square, "Open today", None)).unwrap();
    let long_text = "Our autumn tasting menu pairs seven courses from local farms with wines \
                     chosen by our sommelier, and every Thursday the chef cooks at your table";
    let long = cards::render(&fonts, &spec(CardSize::Square, long_text, None)).unwrap();
    assert!(
        long.headline_px < short.headline_px,
        "{} !< {}",
        long.headline_px,
        short.headline_px
    );
    assert!(long.text_bounds.len() > 3, "wrapped onto several lines");
    assert_ink_confined(&long, navy().background);

    // a word wider than the card is broken, not spilled
    let word = "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(3);
    let r = cards::render(&fonts, &spec(CardSize::Facebook, &word, None)).unwrap();
    assert!(r.text_bounds.len() >= 3);
    assert_ink_confined(&r, navy().background);

    // far too much text: the smallest size, cut with an ellipsis, still inside
    let essay = "word ".repeat(3000);
    let r = cards::render(&fonts, &spec(CardSize::Linkedin, &essay, None)).unwrap();
    assert_ink_confined(&r, navy().background);

    // a very long footer is shortened to one line inside the margins
    let footer = "Call us ".repeat(40);
    let s = CardSpec {
        footer: &footer,
        ..spec(CardSize::Square, "Hello", None)
    };
    let r = cards::render(&fonts, &s).unwrap();
    assert_ink_confined(&r, navy().background);
}

#[test]
fn the_largest_size_that_fits_is_chosen() {
    let fonts = fonts();
    // A short headline is set at the maximum size (11% of the shorter side).
    let r = cards::render(&fonts, &spec(CardSize::Square, "Hi", None)).unwrap();
    assert_eq!(r.headline_px, (1080.0f32 * 0.11).round());
    // Without logo, footer or other text the headline fills more of the area than with them.
    let text = "Five things every small bakery should post this month, and three it should not";
    let plain = CardSpec {
        footer: "",
        ..spec(CardSize::Square, text, None)
    };
    let logo = logo();
    let crowded = spec(CardSize::Square, text, Some(&logo));
    let a = cards::render(&fonts, &plain).unwrap();
    let b = cards::render(&fonts, &crowded).unwrap();
    assert!(a.headline_px > b.headline_px);
    assert!(a.accent_bounds.is_none() && b.accent_bounds.is_some());
}

#[test]
fn fonts_are_listed_and_unknown_ones_refused() {
    let fonts = fonts();
    let names = fonts.names();
    for n in [
        "DejaVuSans",
        "DejaVuSans-Bold",
        "DejaVuSerif",
        "DejaVuSerif-Bold",
    ] {
        assert!(names.contains(&n.to_owned()), "{names:?}");
    }
    let s = CardSpec {
        font: Some("DejaVuSerif-Bold"),
        ..spec(CardSize::Square, "Serif works too", None)
    };
    let serif = cards::render(&fonts, &s).unwrap();
    let sans = cards::render(&fonts, &spec(CardSize::Square, "Serif works too", None)).unwrap();
    assert_ne!(serif.image, sans.image);
    let s = CardSpec {
        font: Some("Comic Sans"),
        ..spec(CardSize::Square, "x", None)
    };
    let err = cards::render(&fonts, &s)
        .err()
        .expect("unknown font")
        .to_string();
    assert!(
        err.contains("Comic Sans") && err.contains("DejaVuSans-Bold"),
        "{err}"
    );
    assert!(Fonts::load(Path::new("/nonexistent-fonts")).is_err());
}

#[test]
fn store_is_content_addressed_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = b"not really a png".to_vec();
    let (path, digest) = cards::store(dir.path(), &bytes, "png").unwrap();
    let expected: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(digest, expected);
    let hex = hex::encode(expected);
    assert_eq!(path, format!("{}/{hex}.png", &hex[..2]));
    assert_eq!(std::fs::read(dir.path().join(&path)).unwrap(), bytes);

    // again: same answer, the file untouched, no temp file left
    let mtime = std::fs::metadata(dir.path().join(&path))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        cards::store(dir.path(), &bytes, "png").unwrap(),
        (path.clone(), digest)
    );
    let after = std::fs::metadata(dir.path().join(&path))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, after);
    let files: Vec<_> = std::fs::read_dir(dir.path().join(&hex[..2]))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");

    // other bytes, other name; the extension is part of the name
    let (other, _) = cards::store(dir.path(), b"other", "jpg").unwrap();
    assert_ne!(other, path);
    assert!(other.ends_with(".jpg"));

    for bad in ["", "PNG", "../x", "p.ng", "averylongext"] {
        let err = cards::store(dir.path(), &bytes, bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
    }
}

#[test]
fn a_rendered_card_stores_as_a_servable_media_path() {
    let fonts = fonts();
    let r = cards::render(&fonts, &spec(CardSize::Square, "Stored", None)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jpeg = cards::encode_jpeg(&r.image, 90).unwrap();
    let (path, _) = cards::store(dir.path(), &jpeg, "jpg").unwrap();
    let back = image::open(dir.path().join(&path)).unwrap();
    assert_eq!((back.width(), back.height()), (1080, 1080));
}

/// Writes the sample cards shown in the README:
/// `cargo nextest run -p autosocial-core --test cards --run-ignored only write_sample_cards`
/// (`CARDS_SAMPLES_DIR` overrides the output directory, default `docs/cards`).
#[test]
#[ignore = "writes docs/cards/*.png"]
fn write_sample_cards() {
    let fonts = fonts();
    let out = std::env::var_os("CARDS_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cards"));
    std::fs::create_dir_all(&out).unwrap();
    let bakery_logo = logo();
    let studio_logo = {
        let mut img = RgbaImage::new(240, 240);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let ring = ((x as f32 - 120.0).powi(2) + (y as f32 - 120.0).powi(2)).sqrt();
            if (70.0..=110.0).contains(&ring) {
                *p = Rgba([255, 255, 255, 255]);
            }
        }
        DynamicImage::ImageRgba8(img)
    };
    let brands = [
        (
            "bakery",
            CardSpec {
                size: CardSize::Square,
                headline: "Sourdough Saturdays: fresh loaves from 7 am, while they last",
                footer: "@northwind_bakery · Order ahead online",
                palette: palette("#e63946", "#f4a261", "#fdf0d5", "#1d3557"),
                gradient: false,
                logo: Some(&bakery_logo),
                font: Some("DejaVuSerif-Bold"),
            },
        ),
        (
            "studio",
            CardSpec {
                size: CardSize::Square,
                headline: "Five habits of teams that ship every week",
                footer: "@brightline.studio",
                palette: palette("#3a0ca3", "#4cc9f0", "#10002b", "#ffffff"),
                gradient: true,
                logo: Some(&studio_logo),
                font: None,
            },
        ),
    ];
    for (brand, base) in brands {
        for size in [CardSize::Square, CardSize::Story, CardSize::Linkedin] {
            let r = cards::render(&fonts, &CardSpec { size, ..base }).unwrap();
            let (w, h) = r.image.dimensions();
            let small = image::imageops::resize(
                &r.image,
                540,
                h * 540 / w,
                image::imageops::FilterType::Lanczos3,
            );
            let png = cards::encode_png(&small).unwrap();
            assert!(png.len() < 150_000, "{brand} {size:?}: {} bytes", png.len());
            std::fs::write(out.join(format!("{brand}-{}.png", size.label())), png).unwrap();
        }
    }
}

/// Cards render off the async threads, in parallel up to one per core and never more, and a
/// cancelled caller does not free its slot while its render still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_render_in_parallel_one_per_core_at_most() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let fonts = Arc::new(fonts());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (running, peak, fonts) = (running.clone(), peak.clone(), fonts.clone());
        tasks.push(tokio::spawn(cards::on_blocking_pool(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let headline = format!("Card number {i} of a busy week");
            let r = cards::render(&fonts, &spec(CardSize::Square, &headline, None));
            let png = r.and_then(|r| cards::encode_png(&r.image));
            running.fetch_sub(1, Ordering::SeqCst);
            png.map(|b| b.len())
        })));
    }
    // one more, abandoned at once: its slot stays taken until its render ends
    let abandoned = {
        let (running, peak) = (running.clone(), peak.clone());
        tokio::spawn(cards::on_blocking_pool(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(200));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(0)
        }))
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    abandoned.abort();
    for t in tasks {
        assert!(t.await.unwrap().unwrap() > 1000, "a real PNG");
    }
    let peak = peak.load(Ordering::SeqCst);
    let cores = cards::parallel_renders();
    assert!(peak <= cores, "{peak} cards at once on {cores} cores");
    if cores > 1 {
        assert!(peak > 1, "cards rendered one at a time on {cores} cores");
    }
}
