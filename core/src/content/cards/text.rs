//! Text layout on a card: measuring, wrapping, fitting the headline, drawing the glyphs.

use super::*;

pub(super) struct Line {
    pub(super) glyphs: Vec<Glyph>,
    pub(super) ink: Rect,
}

pub(super) struct TextBlock<'f> {
    pub(super) font: &'f FontArc,
    pub(super) px: f32,
    pub(super) lines: Vec<Line>,
    pub(super) ink: Rect,
}

/// Width of `text` set in one line (advances plus kerning).
pub(super) fn measure(font: &FontArc, px: f32, text: &str) -> f32 {
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
pub(super) fn wrap(
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

pub(super) struct Wrapped {
    /// With `overflow`, one line more than asked for.
    pub(super) lines: Vec<String>,
    pub(super) overflow: bool,
}

/// Line advance as a multiple of the font size: tight, as headlines are set.
pub(super) const LINE_SPACING: f32 = 1.12;

/// How many lines of `px` text fit `height`.
pub(super) fn lines_that_fit(font: &FontArc, px: f32, height: f32) -> usize {
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
pub(super) fn set_line(
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
pub(super) fn ink_inside(ink: [f32; 4], area: Rect) -> Option<Rect> {
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
pub(super) fn place<'f>(
    font: &'f FontArc,
    px: f32,
    lines: &[String],
    area: Rect,
) -> Option<TextBlock<'f>> {
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
pub(super) fn fit_headline<'f>(
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
pub(super) fn fit_single_line<'f>(
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

pub(super) fn ellipsize(font: &FontArc, px: f32, text: &str, max_w: f32) -> String {
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

pub(super) fn empty_block(font: &FontArc, px: f32, area: Rect) -> TextBlock<'_> {
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
pub(super) fn draw_glyphs(image: &mut RgbaImage, font: &FontArc, glyphs: &[Glyph], color: Rgb) {
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
