//! Image cards: a headline on the client's brand colours, with their logo and a footer (handle
//! or call to action), rendered in each platform's own image size.
//!
//! Rendering is deterministic (same spec and fonts, same pixels, same PNG bytes), so a card can
//! be stored content-addressed ([`store`]) and regenerating an unchanged item writes nothing.
//! Text is laid out and rasterised with ab_glyph directly (kerning, real ink bounds), each
//! glyph's coverage blended with imageproc; imageproc draws the shapes, the `image` crate scales
//! and composites the logo and encodes PNG, `jpeg-encoder` encodes JPEG (see [`encode_png`] and
//! [`encode_jpeg`] for the settings and the measurements behind them).
//!
//! What a person waits for is a card rendered *and* encoded; `autosocial-bench cards` reports
//! that per format and platform size. [`on_blocking_pool`] runs that work off the async threads,
//! at most one card per core at a time across the process.
//!
//! Layout: safe margins of 8% of the shorter side on every edge; the logo top-left inside them;
//! the footer on the last line of the safe area; the headline in the space between, wrapped by
//! words at the largest size that fits (a word too long for a line even at the smallest size is
//! broken), vertically centred. Every glyph's ink stays inside the safe area. The text colour
//! is the palette's when it reaches WCAG AA (4.5:1) against the worst background under the
//! text, otherwise black or white, whichever contrasts more; where neither does (a gradient from
//! dark to light under the text) a translucent scrim goes behind the text until it does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ab_glyph::{Font, FontArc, Glyph, PxScale, ScaleFont, point};
use anyhow::Context;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ExtendedColorType, ImageEncoder, Rgba, RgbaImage};
use sha2::{Digest, Sha256};
use unicode_segmentation::UnicodeSegmentation;

use crate::domain::Platform;

/// The `image` crate this API speaks ([`DynamicImage`], [`RgbaImage`]), re-exported so callers
/// use the same version.
pub use image;

mod text;
use text::*;

mod encode;
pub use encode::*;

/// An sRGB colour.
pub type Rgb = image::Rgb<u8>;

/// The font used when a spec names none.
pub const DEFAULT_FONT: &str = "DejaVuSans-Bold";

/// WCAG 2.x AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

/// A pixel rectangle; `x + width` and `y + height` are exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }

    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && x < self.right() && y >= self.y && y < self.bottom()
    }

    pub fn contains_rect(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }

    fn union(&self, other: &Rect) -> Rect {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        Rect {
            x,
            y,
            width: self.right().max(other.right()) - x,
            height: self.bottom().max(other.bottom()) - y,
        }
    }
}

/// The image sizes a card is rendered in, one per platform format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardSize {
    Square,
    Portrait,
    Story,
    X,
    Linkedin,
    Facebook,
    Pinterest,
}

impl CardSize {
    pub const ALL: [CardSize; 7] = [
        CardSize::Square,
        CardSize::Portrait,
        CardSize::Story,
        CardSize::X,
        CardSize::Linkedin,
        CardSize::Facebook,
        CardSize::Pinterest,
    ];

    /// (width, height) in pixels, each platform's recommended size for a single image.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            CardSize::Square => (1080, 1080),
            CardSize::Portrait => (1080, 1350),
            CardSize::Story => (1080, 1920),
            CardSize::X => (1600, 900),
            CardSize::Linkedin => (1200, 627),
            CardSize::Facebook => (1200, 630),
            CardSize::Pinterest => (1000, 1500),
        }
    }

    /// A stable name for file names, URLs and the database.
    pub fn label(self) -> &'static str {
        match self {
            CardSize::Square => "instagram_square",
            CardSize::Portrait => "instagram_portrait",
            CardSize::Story => "story",
            CardSize::X => "x",
            CardSize::Linkedin => "linkedin",
            CardSize::Facebook => "facebook",
            CardSize::Pinterest => "pinterest",
        }
    }

    pub fn from_label(label: &str) -> Option<CardSize> {
        CardSize::ALL.into_iter().find(|s| s.label() == label)
    }

    /// The size a post to `platform` uses by default.
    pub fn for_platform(platform: Platform) -> CardSize {
        match platform {
            Platform::Instagram | Platform::Sandbox => CardSize::Square,
            Platform::Tiktok => CardSize::Story,
            Platform::X => CardSize::X,
            Platform::Linkedin => CardSize::Linkedin,
            Platform::Facebook => CardSize::Facebook,
        }
    }

    /// Instagram's publishing API takes only JPEG, and TikTok photo posts JPEG or WebP, so
    /// their sizes are encoded as JPEG; elsewhere PNG keeps the text crisp.
    pub fn prefers_jpeg(self) -> bool {
        matches!(
            self,
            CardSize::Square | CardSize::Portrait | CardSize::Story
        )
    }
}

/// A client's brand colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Palette {
    pub primary: Rgb,
    pub secondary: Rgb,
    pub background: Rgb,
    pub text: Rgb,
}

impl Palette {
    /// Parses four `#rrggbb` colours.
    pub fn from_hex(
        primary: &str,
        secondary: &str,
        background: &str,
        text: &str,
    ) -> Result<Palette, String> {
        Ok(Palette {
            primary: parse_hex(primary)?,
            secondary: parse_hex(secondary)?,
            background: parse_hex(background)?,
            text: parse_hex(text)?,
        })
    }
}

/// Parses `#rrggbb` (either case).
pub fn parse_hex(s: &str) -> Result<Rgb, String> {
    let err = || format!("“{s}” is not a colour in the form #rrggbb");
    let hex = s.trim().strip_prefix('#').ok_or_else(err)?;
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err());
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| err());
    Ok(image::Rgb([channel(0)?, channel(2)?, channel(4)?]))
}

/// `#rrggbb`.
pub fn to_hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// What to draw.
#[derive(Clone, Copy)]
pub struct CardSpec<'a> {
    pub size: CardSize,
    pub headline: &'a str,
    /// The handle or call to action on the last line; empty for none.
    pub footer: &'a str,
    pub palette: Palette,
    /// A diagonal gradient from `primary` (top left) to `secondary` (bottom right) instead of
    /// the solid `background`.
    pub gradient: bool,
    pub logo: Option<&'a DynamicImage>,
    /// A font shipped in `templates/fonts` (see [`Fonts::names`]); `None` for [`DEFAULT_FONT`].
    pub font: Option<&'a str>,
}

/// The fonts shipped in `templates/fonts`, by file stem ("DejaVuSans-Bold").
pub struct Fonts {
    fonts: BTreeMap<String, FontArc>,
}

impl Fonts {
    /// Loads every `.ttf` and `.otf` file in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Fonts> {
        let mut fonts = BTreeMap::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading fonts from {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let is_font = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("ttf") || e.eq_ignore_ascii_case("otf"));
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !is_font {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let font = FontArc::try_from_vec(bytes)
                .with_context(|| format!("{} is not a usable font", path.display()))?;
            fonts.insert(stem.to_owned(), font);
        }
        anyhow::ensure!(
            !fonts.is_empty(),
            "no .ttf or .otf font in {}",
            dir.display()
        );
        Ok(Fonts { fonts })
    }

    pub fn names(&self) -> Vec<String> {
        self.fonts.keys().cloned().collect()
    }

    /// The headline font and the footer font: `Name-Bold` gets its regular `Name` sibling for
    /// the footer when there is one, any other font is used for both.
    fn pick(&self, name: Option<&str>) -> anyhow::Result<(&FontArc, &FontArc)> {
        let name = match name {
            Some(n) => n,
            None if self.fonts.contains_key(DEFAULT_FONT) => DEFAULT_FONT,
            None => self.fonts.keys().next().map(String::as_str).unwrap_or(""),
        };
        let headline = self.fonts.get(name).with_context(|| {
            format!(
                "unknown font “{name}”; available: {}",
                self.names().join(", ")
            )
        })?;
        let footer = name
            .strip_suffix("-Bold")
            .and_then(|regular| self.fonts.get(regular))
            .unwrap_or(headline);
        Ok((headline, footer))
    }
}

/// A rendered card and what tests and the console want to know about it.
pub struct Rendered {
    pub image: RgbaImage,
    /// The ink bounds of each line of text (headline lines, then the footer).
    pub text_bounds: Vec<Rect>,
    pub text_color: Rgb,
    /// The background colour under the text that contrasts least with `text_color`.
    pub background_sample: Rgb,
    /// The WCAG contrast ratio between `text_color` and `background_sample`.
    pub contrast: f64,
    /// The area inside the safe margins; all text and the logo lie inside it.
    pub safe_area: Rect,
    pub logo_bounds: Option<Rect>,
    /// The brand-colour rule above the footer, when drawn.
    pub accent_bounds: Option<Rect>,
    /// The headline's font size in pixels (0 without a headline).
    pub headline_px: f32,
}

/// Renders a card.
pub fn render(fonts: &Fonts, spec: &CardSpec<'_>) -> anyhow::Result<Rendered> {
    let (width, height) = spec.size.dimensions();
    let (headline_font, footer_font) = fonts.pick(spec.font)?;
    let short = width.min(height) as f32;
    let margin = (short * 0.08).round() as u32;
    let gap = (short * 0.04).round() as u32;
    let safe = Rect {
        x: margin,
        y: margin,
        width: width - 2 * margin,
        height: height - 2 * margin,
    };

    let mut background = Background::new(spec, width, height);
    let logo = spec.logo.map(|logo| scale_logo(logo, safe, short));
    let logo_bounds = logo.as_ref().map(|l| Rect {
        x: safe.x,
        y: safe.y,
        width: l.width(),
        height: l.height(),
    });

    // Footer on the last line of the safe area.
    let mut blocks: Vec<TextBlock<'_>> = Vec::new();
    let mut headline_bottom = safe.bottom();
    let footer = spec.footer.trim();
    if !footer.is_empty() {
        let max_px = (short * 0.042).round();
        let min_px = (short * 0.025).round().max(12.0);
        let block = fit_single_line(footer_font, footer, safe, max_px, min_px);
        headline_bottom = block.ink.y.saturating_sub(gap).max(safe.y);
        blocks.push(block);
    }
    // A short rule in the brand colour above the footer, on solid backgrounds (a gradient
    // already shows both brand colours).
    let accent = (!spec.gradient && !footer.is_empty()).then(|| {
        let h = (short * 0.008).round().max(2.0) as u32;
        let rect = Rect {
            x: safe.x,
            y: headline_bottom.saturating_sub(h).max(safe.y),
            width: (safe.width as f32 * 0.12).round() as u32,
            height: h,
        };
        headline_bottom = rect.y.saturating_sub(gap / 2).max(safe.y);
        rect
    });

    let headline_top = logo_bounds.map_or(safe.y, |b| (b.bottom() + gap).min(headline_bottom));
    let area = Rect {
        x: safe.x,
        y: headline_top,
        width: safe.width,
        height: headline_bottom - headline_top,
    };
    let headline = spec.headline.trim();
    let mut headline_px = 0.0;
    if !headline.is_empty() && area.height > 0 {
        let max_px = (short * 0.11).round();
        let min_px = (short * 0.025).round().max(12.0);
        let block = fit_headline(headline_font, headline, area, max_px, min_px);
        headline_px = block.px;
        blocks.insert(0, block);
    }

    // Colour: decided once for all text, on the worst background under any of it.
    let under_text = blocks
        .iter()
        .map(|b| b.ink)
        .reduce(|a, b| a.union(&b))
        .unwrap_or(safe);
    let samples = background.samples(under_text);
    let (mut text_color, mut sample, mut contrast) = choose_text_color(spec.palette.text, &samples);
    if contrast < MIN_CONTRAST {
        // Neither black nor white reaches AA everywhere under the text (a gradient from dark
        // to light): keep whichever of them is nearer the brand's text colour and tint the
        // whole background towards the other, as little as needed.
        let color = if relative_luminance(spec.palette.text) > 0.18 {
            WHITE
        } else {
            BLACK
        };
        let alpha = scrim_alpha(color, &samples);
        background = background.tinted(scrim_color(color), alpha);
        text_color = color;
        (contrast, sample) = worst_contrast(color, &background.samples(under_text));
    }

    let mut image = RgbaImage::new(width, height);
    background.fill(&mut image);
    if let Some(logo) = &logo {
        imageops::overlay(&mut image, logo, safe.x as i64, safe.y as i64);
    }
    if let Some(rect) = accent {
        fill_rect(&mut image, rect, spec.palette.primary);
    }

    let mut text_bounds = Vec::new();
    for block in &blocks {
        for line in &block.lines {
            draw_glyphs(&mut image, block.font, &line.glyphs, text_color);
            text_bounds.push(line.ink);
        }
    }

    Ok(Rendered {
        image,
        text_bounds,
        text_color,
        background_sample: sample,
        contrast,
        safe_area: safe,
        logo_bounds,
        accent_bounds: accent,
        headline_px,
    })
}

// ---------------------------------------------------------------------------------------------
// Background

enum Background {
    Solid(Rgb),
    /// Diagonal: colour index `(x·(h−1) + y·(w−1)) · (N−1) / (2·(w−1)·(h−1))` into a ramp.
    Gradient {
        ramp: Vec<[u8; 3]>,
        width: u32,
        height: u32,
    },
}

const RAMP: usize = 1024;

impl Background {
    fn new(spec: &CardSpec<'_>, width: u32, height: u32) -> Background {
        if !spec.gradient {
            return Background::Solid(spec.palette.background);
        }
        let (a, b) = (spec.palette.primary, spec.palette.secondary);
        let ramp = (0..RAMP)
            .map(|i| {
                let t = i as f32 / (RAMP - 1) as f32;
                std::array::from_fn(|c| {
                    (a[c] as f32 + (b[c] as f32 - a[c] as f32) * t).round() as u8
                })
            })
            .collect();
        Background::Gradient {
            ramp,
            width,
            height,
        }
    }

    /// The same background with `over` mixed in at `alpha`.
    fn tinted(self, over: Rgb, alpha: f32) -> Background {
        match self {
            Background::Solid(c) => Background::Solid(mix(c, over, alpha)),
            Background::Gradient {
                ramp,
                width,
                height,
            } => Background::Gradient {
                ramp: ramp
                    .into_iter()
                    .map(|c| mix(image::Rgb(c), over, alpha).0)
                    .collect(),
                width,
                height,
            },
        }
    }

    fn index(x: u32, y: u32, width: u32, height: u32) -> usize {
        let (w1, h1) = ((width - 1).max(1) as u64, (height - 1).max(1) as u64);
        let num = x as u64 * h1 + y as u64 * w1;
        (num * (RAMP as u64 - 1) / (2 * w1 * h1)) as usize
    }

    fn fill(&self, image: &mut RgbaImage) {
        match self {
            Background::Solid(c) => {
                let px = [c[0], c[1], c[2], 255];
                for chunk in image.as_mut().chunks_exact_mut(4) {
                    chunk.copy_from_slice(&px);
                }
            }
            Background::Gradient {
                ramp,
                width,
                height,
            } => {
                // The same index as `Self::index`, stepped along each row as a quotient and a
                // remainder: a 1080×1080 card is 1.2 million pixels, and a 64-bit division for
                // each was most of the render.
                let (w1, h1) = ((*width - 1).max(1) as u64, (*height - 1).max(1) as u64);
                let den = 2 * w1 * h1;
                let step = h1 * (RAMP as u64 - 1);
                let (step_q, step_r) = ((step / den) as usize, step % den);
                let w = *width as usize;
                for (y, row) in image.as_mut().chunks_exact_mut(w * 4).enumerate() {
                    let start = y as u64 * w1 * (RAMP as u64 - 1);
                    let (mut q, mut r) = ((start / den) as usize, start % den);
                    for px in row.chunks_exact_mut(4) {
                        let c = ramp[q];
                        px.copy_from_slice(&[c[0], c[1], c[2], 255]);
                        q += step_q;
                        r += step_r;
                        if r >= den {
                            r -= den;
                            q += 1;
                        }
                    }
                }
            }
        }
    }

    /// Every distinct background colour inside `rect`. The gradient index is linear in x and
    /// y, so the colours in a rectangle are the ramp between its corners' indices.
    fn samples(&self, rect: Rect) -> Vec<Rgb> {
        match self {
            Background::Solid(c) => vec![*c],
            Background::Gradient {
                ramp,
                width,
                height,
            } => {
                let right = rect.right().saturating_sub(1).max(rect.x);
                let bottom = rect.bottom().saturating_sub(1).max(rect.y);
                let lo = Self::index(rect.x, rect.y, *width, *height);
                let hi = Self::index(right, bottom, *width, *height);
                ramp[lo..=hi].iter().map(|c| image::Rgb(*c)).collect()
            }
        }
    }
}

fn fill_rect(image: &mut RgbaImage, rect: Rect, color: Rgb) {
    if rect.width == 0 || rect.height == 0 {
        return;
    }
    imageproc::drawing::draw_filled_rect_mut(
        image,
        imageproc::rect::Rect::at(rect.x as i32, rect.y as i32).of_size(rect.width, rect.height),
        Rgba([color[0], color[1], color[2], 255]),
    );
}

// ---------------------------------------------------------------------------------------------
// Contrast

/// WCAG 2.x relative luminance of an sRGB colour.
pub fn relative_luminance(c: Rgb) -> f64 {
    let lin = |v: u8| {
        let s = v as f64 / 255.0;
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
}

/// WCAG 2.x contrast ratio, 1 (none) to 21 (black on white).
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (relative_luminance(a), relative_luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// The lowest contrast of `text` against any of `backgrounds`, and that background.
fn worst_contrast(text: Rgb, backgrounds: &[Rgb]) -> (f64, Rgb) {
    backgrounds
        .iter()
        .map(|&bg| (contrast_ratio(text, bg), bg))
        .fold((f64::INFINITY, text), |w, c| if c.0 < w.0 { c } else { w })
}

const BLACK: Rgb = image::Rgb([0, 0, 0]);
const WHITE: Rgb = image::Rgb([255, 255, 255]);

/// The brand's text colour if it reaches [`MIN_CONTRAST`] everywhere under the text, else
/// black or white, whichever does better. Returns (colour, worst background, its contrast).
fn choose_text_color(preferred: Rgb, backgrounds: &[Rgb]) -> (Rgb, Rgb, f64) {
    let (c, bg) = worst_contrast(preferred, backgrounds);
    if c >= MIN_CONTRAST {
        return (preferred, bg, c);
    }
    let (cb, bgb) = worst_contrast(BLACK, backgrounds);
    let (cw, bgw) = worst_contrast(WHITE, backgrounds);
    if cb >= cw {
        (BLACK, bgb, cb)
    } else {
        (WHITE, bgw, cw)
    }
}

/// How much of the colour opposite to `text` (in steps of 5%) must be mixed into the
/// background for `text` to reach AA on all of `backgrounds`.
fn scrim_alpha(text: Rgb, backgrounds: &[Rgb]) -> f32 {
    let scrim = scrim_color(text);
    (0..=20)
        .map(|step| step as f32 / 20.0)
        .find(|&alpha| {
            let blended: Vec<Rgb> = backgrounds.iter().map(|&b| mix(b, scrim, alpha)).collect();
            worst_contrast(text, &blended).0 >= MIN_CONTRAST
        })
        .unwrap_or(1.0)
}

fn scrim_color(text: Rgb) -> Rgb {
    if relative_luminance(text) > 0.5 {
        BLACK
    } else {
        WHITE
    }
}

fn mix(under: Rgb, over: Rgb, alpha: f32) -> Rgb {
    image::Rgb(std::array::from_fn(|c| {
        (under[c] as f32 + (over[c] as f32 - under[c] as f32) * alpha).round() as u8
    }))
}

// ---------------------------------------------------------------------------------------------
// Logo

/// The logo scaled to fit a box in the top-left corner of the safe area (at most 35% of its
/// width and 14% of the card's shorter side high), aspect ratio kept.
fn scale_logo(logo: &DynamicImage, safe: Rect, short: f32) -> RgbaImage {
    let box_w = (safe.width as f32 * 0.35).floor().max(1.0);
    let box_h = (short * 0.14).floor().max(1.0);
    let (lw, lh) = (logo.width().max(1) as f32, logo.height().max(1) as f32);
    let scale = (box_w / lw).min(box_h / lh);
    let w = ((lw * scale).floor() as u32).clamp(1, box_w as u32);
    let h = ((lh * scale).floor() as u32).clamp(1, box_h as u32);
    let rgba = logo.to_rgba8();
    if (w, h) == rgba.dimensions() {
        rgba
    } else if w * 2 <= rgba.width() && h * 2 <= rgba.height() {
        // shrinking by half or more (a logo is usually uploaded far larger than its box): an
        // area average, each source pixel counted once, costs far less than the Catmull-Rom
        // filter and looks no different at that scale.
        imageops::thumbnail(&rgba, w, h)
    } else {
        imageops::resize(&rgba, w, h, FilterType::CatmullRom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_wcag_reference_values() {
        assert!((contrast_ratio(BLACK, WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(WHITE, WHITE) - 1.0).abs() < 1e-9);
        // #777777 on white is the well-known 4.48:1 (just below AA)
        let grey = parse_hex("#777777").unwrap();
        assert!((contrast_ratio(grey, WHITE) - 4.48).abs() < 0.01);
        // symmetric
        let blue = parse_hex("#1a73e8").unwrap();
        assert_eq!(contrast_ratio(blue, WHITE), contrast_ratio(WHITE, blue));
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("#FFa500").unwrap(), image::Rgb([255, 165, 0]));
        assert_eq!(to_hex(parse_hex("#0a0B0c").unwrap()), "#0a0b0c");
        for bad in ["ffa500", "#ffa50", "#ffa5000", "#ggaa00", "", "#ffé500"] {
            assert!(parse_hex(bad).is_err(), "{bad}");
        }
        let err = Palette::from_hex("#000000", "#000000", "red", "#ffffff").unwrap_err();
        assert!(err.contains("“red”"), "{err}");
    }

    #[test]
    fn labels_are_unique_and_safe() {
        let mut seen = std::collections::HashSet::new();
        for size in CardSize::ALL {
            let l = size.label();
            assert!(
                !l.is_empty()
                    && l.len() <= 40
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
            assert!(seen.insert(l));
            assert_eq!(CardSize::from_label(l), Some(size));
        }
    }

    #[test]
    fn gradient_samples_cover_the_region() {
        let bg = Background::Gradient {
            ramp: (0..RAMP)
                .map(|i| {
                    let v = (i * 255 / (RAMP - 1)) as u8;
                    [v, v, v]
                })
                .collect(),
            width: 100,
            height: 100,
        };
        let all = bg.samples(Rect {
            x: 0,
            y: 0,
            width: 100,
            height: 100,
        });
        assert_eq!(all.first(), Some(&BLACK));
        assert_eq!(all.last(), Some(&WHITE));
        let pixel = |x, y| {
            bg.samples(Rect {
                x,
                y,
                width: 1,
                height: 1,
            })
        };
        assert_eq!(pixel(0, 0), vec![BLACK]);
        assert_eq!(pixel(99, 99), vec![WHITE]);
        let (color, _, c) = choose_text_color(image::Rgb([128, 128, 128]), &all);
        assert!(c < MIN_CONTRAST);
        let alpha = scrim_alpha(color, &all);
        assert!(alpha > 0.0 && alpha <= 1.0);
        let tinted: Vec<Rgb> = all
            .iter()
            .map(|&b| mix(b, scrim_color(color), alpha))
            .collect();
        assert!(worst_contrast(color, &tinted).0 >= MIN_CONTRAST);
        // one step less is not enough
        let less: Vec<Rgb> = all
            .iter()
            .map(|&b| mix(b, scrim_color(color), alpha - 0.05))
            .collect();
        assert!(worst_contrast(color, &less).0 < MIN_CONTRAST);
    }

    #[test]
    fn wrap_breaks_only_overlong_words() {
        let fonts =
            Fonts::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/fonts")).unwrap();
        let (font, _) = fonts.pick(None).unwrap();
        let lines = wrap(font, 40.0, "one two three four", 200.0, false, 100)
            .unwrap()
            .lines;
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), "one two three four");
        assert!(wrap(font, 40.0, "Supercalifragilistic", 200.0, false, 100).is_none());
        let lines = wrap(font, 40.0, "Supercalifragilistic", 200.0, true, 100)
            .unwrap()
            .lines;
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), "Supercalifragilistic");
        for l in &lines {
            assert!(measure(font, 40.0, l) <= 200.0);
        }
    }
}
