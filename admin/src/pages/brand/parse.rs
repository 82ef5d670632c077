//! Brand: parsing and validating the brand form.

use super::*;

// ---------------------------------------------------------------------------------------------
// Parsing and validation (public: the tests exercise them directly too)
// ---------------------------------------------------------------------------------------------

pub(super) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Non-empty trimmed lines, duplicates (ignoring case) dropped, each at most `max_len`
/// characters, at most `max_items` of them.
pub fn parse_lines(text: &str, max_items: usize, max_len: usize) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if has_control(line) {
            return Err(format!("Line {} contains a control character.", n + 1));
        }
        if line.chars().count() > max_len {
            return Err(format!(
                "Line {} is longer than {max_len} characters.",
                n + 1
            ));
        }
        if !out.iter().any(|o| o.to_lowercase() == line.to_lowercase()) {
            out.push(line.to_owned());
        }
    }
    if out.len() > max_items {
        return Err(format!("At most {max_items} lines ({} given).", out.len()));
    }
    Ok(out)
}

/// Banned terms, one word or phrase per line: inner whitespace collapsed to one space,
/// duplicates (ignoring case) dropped. Moderation matches them as whole words or phrases,
/// ignoring case, so a term must hold a letter or digit.
pub fn parse_banned_terms(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let term = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if term.is_empty() {
            continue;
        }
        if has_control(&term) {
            return Err(format!("Line {} contains a control character.", n + 1));
        }
        if !term.chars().any(char::is_alphanumeric) {
            return Err(format!(
                "Line {} (“{term}”) has no letter or digit to match.",
                n + 1
            ));
        }
        if term.chars().count() > 100 {
            return Err(format!("Line {} is longer than 100 characters.", n + 1));
        }
        if !out.iter().any(|o| o.to_lowercase() == term.to_lowercase()) {
            out.push(term);
        }
    }
    if out.len() > MAX_BANNED_TERMS {
        return Err(format!(
            "At most {MAX_BANNED_TERMS} terms ({} given).",
            out.len()
        ));
    }
    Ok(out)
}

/// Hashtag sets, one per line: `name: #tag #other, third`. Tags get their `#`; a tag is letters,
/// digits and underscores (what every platform links).
pub fn parse_hashtag_sets(text: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let n = n + 1;
        let Some((name, tags)) = line.split_once(':') else {
            return Err(format!(
                "Line {n}: write the set's name, a colon, then its tags (food: #bread #bakery)."
            ));
        };
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() || name.chars().count() > 50 || has_control(&name) {
            return Err(format!(
                "Line {n}: the set needs a name of 1–50 characters."
            ));
        }
        if sets.keys().any(|k| k.to_lowercase() == name.to_lowercase()) {
            return Err(format!("Line {n}: there is already a set named “{name}”."));
        }
        let mut list: Vec<String> = Vec::new();
        for raw in tags.split(|c: char| c.is_whitespace() || c == ',') {
            if raw.is_empty() {
                continue;
            }
            let bare = raw.strip_prefix('#').unwrap_or(raw);
            let ok = !bare.is_empty()
                && bare.chars().count() <= 100
                && bare.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !ok {
                return Err(format!(
                    "Line {n}: “{raw}” is not a hashtag (letters, digits and _ only)."
                ));
            }
            let tag = format!("#{bare}");
            if !list.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
                list.push(tag);
            }
        }
        if list.is_empty() {
            return Err(format!("Line {n}: the set “{name}” has no tags."));
        }
        if list.len() > MAX_TAGS_PER_SET {
            return Err(format!(
                "Line {n}: at most {MAX_TAGS_PER_SET} tags per set."
            ));
        }
        sets.insert(name, list);
    }
    if sets.len() > MAX_HASHTAG_SETS {
        return Err(format!("At most {MAX_HASHTAG_SETS} sets."));
    }
    Ok(sets)
}

/// One colour from its picker, its text field and the value the page was drawn with: the text
/// field wins when it was edited (it is what the person typed), else the picker. Without
/// JavaScript the two inputs cannot follow each other, so "which one changed" decides.
pub fn pick_color(picker: &str, typed: &str, was: &str) -> Result<String, String> {
    let (picker, typed, was) = (picker.trim(), typed.trim(), was.trim());
    let chosen = if !typed.is_empty() && !typed.eq_ignore_ascii_case(was) {
        typed
    } else if !picker.is_empty() {
        picker
    } else {
        typed
    };
    if chosen.is_empty() {
        return Err("Choose a colour.".into());
    }
    cards::parse_hex(chosen)
        .map(cards::to_hex)
        .map_err(|_| format!("“{chosen}” is not a colour: write it as #rrggbb, like #1d4ed8."))
}

/// What a logo upload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoInfo {
    pub mime: &'static str,
    pub ext: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Check an uploaded logo: PNG, JPEG or WebP by its content (not its name), at most 2 MB and
/// 4096 px a side, and decodable to the end.
pub fn check_logo(bytes: &[u8]) -> Result<LogoInfo, String> {
    use image::{ImageFormat, ImageReader};
    if bytes.is_empty() {
        return Err("Choose an image file to upload.".into());
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(format!(
            "The file is {:.1} MB; logos can be at most 2 MB.",
            bytes.len() as f64 / (1024.0 * 1024.0)
        ));
    }
    let (format, mime, ext) = match image::guess_format(bytes) {
        Ok(ImageFormat::Png) => (ImageFormat::Png, "image/png", "png"),
        Ok(ImageFormat::Jpeg) => (ImageFormat::Jpeg, "image/jpeg", "jpg"),
        Ok(ImageFormat::WebP) => (ImageFormat::WebP, "image/webp", "webp"),
        _ => return Err("Upload a PNG, JPEG or WebP image.".into()),
    };
    let unreadable = || format!("The file is not a readable {} image.", ext.to_uppercase());
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| unreadable())?;
    if width > MAX_LOGO_SIDE || height > MAX_LOGO_SIDE {
        return Err(format!(
            "The image is {width}×{height} pixels; logos can be at most {MAX_LOGO_SIDE} pixels a side."
        ));
    }
    ImageReader::with_format(Cursor::new(bytes), format)
        .decode()
        .map_err(|_| unreadable())?;
    Ok(LogoInfo {
        mime,
        ext,
        width,
        height,
    })
}
