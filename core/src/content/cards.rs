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

// ---------------------------------------------------------------------------------------------
// Text layout

struct Line {
    glyphs: Vec<Glyph>,
    ink: Rect,
}

struct TextBlock<'f> {
    font: &'f FontArc,
    px: f32,
    lines: Vec<Line>,
    ink: Rect,
}

/// Width of `text` set in one line (advances plus kerning).
fn measure(font: &FontArc, px: f32, text: &str) -> f32 {
    let sf = font.as_scaled(PxScale::from(px));
    let mut w = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            w += sf.kern(p, id);
        }
        w += sf.h_advance(id);
        prev = Some(id);
    }
    w
}

/// Greedy word wrap to `max_w`, at most `max_lines` lines (`overflow` says there was more).
/// `None` when a word does not fit a line and `hard_break` is off; with it on, such a word is
/// split between grapheme clusters. Widths add up word by word (kerning across a space is
/// ignored; [`place`] checks the real ink afterwards).
fn wrap(
    font: &FontArc,
    px: f32,
    text: &str,
    max_w: f32,
    hard_break: bool,
    max_lines: usize,
) -> Option<Wrapped> {
    let space = measure(font, px, " ");
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        let mut line_w = 0.0;
        for word in paragraph.split_whitespace() {
            if lines.len() > max_lines {
                break;
            }
            let word_w = measure(font, px, word);
            if !line.is_empty() && line_w + space + word_w <= max_w {
                line.push(' ');
                line.push_str(word);
                line_w += space + word_w;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if word_w <= max_w {
                line = word.to_owned();
                line_w = word_w;
                continue;
            }
            if !hard_break {
                return None;
            }
            line_w = 0.0;
            for g in word.graphemes(true) {
                let g_w = measure(font, px, g);
                if line.is_empty() || line_w + g_w <= max_w {
                    line.push_str(g);
                    line_w += g_w;
                } else {
                    lines.push(std::mem::replace(&mut line, g.to_owned()));
                    line_w = g_w;
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        if lines.len() > max_lines {
            break;
        }
    }
    let overflow = lines.len() > max_lines;
    lines.truncate(max_lines + usize::from(overflow));
    Some(Wrapped { lines, overflow })
}

struct Wrapped {
    /// With `overflow`, one line more than asked for.
    lines: Vec<String>,
    overflow: bool,
}

/// Line advance as a multiple of the font size: tight, as headlines are set.
const LINE_SPACING: f32 = 1.12;

/// How many lines of `px` text fit `height`.
fn lines_that_fit(font: &FontArc, px: f32, height: f32) -> usize {
    let sf = font.as_scaled(PxScale::from(px));
    let first = sf.ascent() - sf.descent();
    if height < first {
        0
    } else {
        ((height - first) / (px * LINE_SPACING)).floor() as usize + 1
    }
}

/// Positions the glyphs of `text` with its baseline at `baseline`, starting at `x`; returns
/// them with their ink bounds (`None` for a line with no ink).
fn set_line(
    font: &FontArc,
    px: f32,
    text: &str,
    x: f32,
    baseline: f32,
) -> (Vec<Glyph>, Option<[f32; 4]>) {
    let scale = PxScale::from(px);
    let sf = font.as_scaled(scale);
    let mut glyphs = Vec::with_capacity(text.len());
    let mut caret = x;
    let mut prev = None;
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, point(caret.round(), baseline.round()));
        caret += sf.h_advance(id);
        prev = Some(id);
        if let Some(outline) = font.outline_glyph(glyph.clone()) {
            let b = outline.px_bounds();
            x0 = x0.min(b.min.x);
            y0 = y0.min(b.min.y);
            x1 = x1.max(b.max.x);
            y1 = y1.max(b.max.y);
        }
        glyphs.push(glyph);
    }
    (glyphs, (x0 < x1 && y0 < y1).then_some([x0, y0, x1, y1]))
}

/// Ink bounds `[x0, y0, x1, y1]` as a pixel rectangle, if they lie inside `area`.
fn ink_inside(ink: [f32; 4], area: Rect) -> Option<Rect> {
    let [x0, y0, x1, y1] = ink;
    let inside = x0 >= area.x as f32
        && y0 >= area.y as f32
        && x1 <= area.right() as f32
        && y1 <= area.bottom() as f32;
    inside.then(|| Rect {
        x: x0 as u32,
        y: y0 as u32,
        width: (x1 - x0).ceil() as u32,
        height: (y1 - y0).ceil() as u32,
    })
}

/// Lays out `lines` at `px`, the block vertically centred in `area`; `None` unless every
/// glyph's ink lies inside `area`.
fn place<'f>(font: &'f FontArc, px: f32, lines: &[String], area: Rect) -> Option<TextBlock<'f>> {
    let sf = font.as_scaled(PxScale::from(px));
    let line_h = px * LINE_SPACING;
    let block_h = sf.ascent() - sf.descent() + line_h * (lines.len() as f32 - 1.0);
    if block_h > area.height as f32 {
        return None;
    }
    let top = area.y as f32 + (area.height as f32 - block_h) / 2.0;
    let mut out = Vec::with_capacity(lines.len());
    let mut ink: Option<Rect> = None;
    for (i, text) in lines.iter().enumerate() {
        let baseline = top + sf.ascent() + line_h * i as f32;
        let (glyphs, line_ink) = set_line(font, px, text, area.x as f32, baseline);
        let Some(line_ink) = line_ink else { continue };
        let line_ink = ink_inside(line_ink, area)?;
        ink = Some(ink.map_or(line_ink, |b| b.union(&line_ink)));
        out.push(Line {
            glyphs,
            ink: line_ink,
        });
    }
    Some(TextBlock {
        font,
        px,
        lines: out,
        ink: ink?,
    })
}

/// The headline at the largest whole pixel size from `max_px` down to `min_px` that fits
/// `area` without breaking words; failing that, with words broken; failing that (a text far too
/// long for the card), at `min_px` with the lines that fit and an ellipsis.
fn fit_headline<'f>(
    font: &'f FontArc,
    text: &str,
    area: Rect,
    max_px: f32,
    min_px: f32,
) -> TextBlock<'f> {
    let max_w = area.width as f32;
    for hard_break in [false, true] {
        let mut px = max_px;
        while px >= min_px {
            let max_lines = lines_that_fit(font, px, area.height as f32);
            if max_lines > 0
                && let Some(w) = wrap(font, px, text, max_w, hard_break, max_lines)
                && !w.overflow
                && let Some(block) = place(font, px, &w.lines, area)
            {
                return block;
            }
            px -= 1.0;
        }
    }
    let max_lines = lines_that_fit(font, min_px, area.height as f32);
    let Some(Wrapped { lines, overflow }) = wrap(font, min_px, text, max_w, true, max_lines) else {
        return empty_block(font, min_px, area);
    };
    let mut keep = lines.len().min(max_lines);
    while keep > 0 {
        let mut shown: Vec<String> = lines[..keep].to_vec();
        if overflow || keep < lines.len() {
            let last = shown.pop().unwrap_or_default();
            shown.push(ellipsize(font, min_px, &last, max_w));
        }
        if let Some(block) = place(font, min_px, &shown, area) {
            return block;
        }
        keep -= 1;
    }
    empty_block(font, min_px, area)
}

/// One line (the footer): the largest size down to `min_px` that fits the width, then
/// shortened with an ellipsis. Sits on the bottom of `safe`.
fn fit_single_line<'f>(
    font: &'f FontArc,
    text: &str,
    safe: Rect,
    max_px: f32,
    min_px: f32,
) -> TextBlock<'f> {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut px = max_px;
    let mut shown = one_line.clone();
    while px > min_px && measure(font, px, &one_line) > safe.width as f32 {
        px -= 1.0;
    }
    if measure(font, px, &one_line) > safe.width as f32 {
        shown = ellipsize(font, px, &one_line, safe.width as f32);
    }
    let sf = font.as_scaled(PxScale::from(px));
    let line_h = (sf.ascent() - sf.descent()).ceil() as u32;
    let area = Rect {
        x: safe.x,
        y: safe.bottom() - line_h.min(safe.height),
        width: safe.width,
        height: line_h.min(safe.height),
    };
    // Ink can leave the font's nominal ascent/descent box (a tall accent): nudge it inside.
    let mut block = place(font, px, std::slice::from_ref(&shown), area);
    let mut shrink = px;
    while block.is_none() && shrink > 1.0 {
        shrink -= 1.0;
        block = place(font, shrink, std::slice::from_ref(&shown), area);
    }
    block.unwrap_or_else(|| empty_block(font, px, area))
}

fn ellipsize(font: &FontArc, px: f32, text: &str, max_w: f32) -> String {
    let graphemes: Vec<&str> = text.graphemes(true).collect();
    let mut n = graphemes.len();
    loop {
        let candidate = format!("{}…", graphemes[..n].concat().trim_end());
        if n == 0 || measure(font, px, &candidate) <= max_w {
            return candidate;
        }
        n -= 1;
    }
}

fn empty_block(font: &FontArc, px: f32, area: Rect) -> TextBlock<'_> {
    TextBlock {
        font,
        px,
        lines: Vec::new(),
        ink: Rect {
            x: area.x,
            y: area.y,
            width: 0,
            height: 0,
        },
    }
}

/// Rasterises glyphs where the layout put them and blends them over the image in `color` by
/// coverage (imageproc's `interpolate`).
///
/// Not imageproc's `draw_text_mut`: it lays a string out itself, kerning each pair in reverse
/// order, skipping the kerning around glyphs without an outline (spaces) and placing the
/// baseline at the unrounded ascent, so its ink would not be where [`place`] measured it and
/// checked it against the safe area. Per glyph it is the same ab_glyph rasteriser.
fn draw_glyphs(image: &mut RgbaImage, font: &FontArc, glyphs: &[Glyph], color: Rgb) {
    let (w, h) = image.dimensions();
    for glyph in glyphs {
        let Some(outline) = font.outline_glyph(glyph.clone()) else {
            continue;
        };
        let b = outline.px_bounds();
        let (ox, oy) = (b.min.x as i64, b.min.y as i64);
        outline.draw(|gx, gy, coverage| {
            let (x, y) = (ox + gx as i64, oy + gy as i64);
            if coverage <= 0.0 || x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                return;
            }
            let (x, y) = (x as u32, y as u32);
            let p = image.get_pixel(x, y);
            let under = image::Rgb([p[0], p[1], p[2]]);
            let [r, g, b] = imageproc::pixelops::interpolate(color, under, coverage.min(1.0)).0;
            image.put_pixel(x, y, Rgba([r, g, b, 255]));
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding and storage

fn to_rgb_bytes(img: &RgbaImage) -> Vec<u8> {
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
