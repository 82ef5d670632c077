//! Platform previews: how each target platform shows the post (its text, the cut before "more",
//! the image's crop and the length as the platform counts it).

use autosocial_core::content::cards::CardSize;
use autosocial_core::content::moderation;
use autosocial_core::domain::Platform;
use maud::{Markup, html};

use crate::app::AppState;

use super::fields::media_url;
use super::load::Item;

/// Characters a platform shows before its "more" / "see more" cut (the feed view), if it cuts.
/// X shows everything up to its limit.
pub fn fold_at(platform: Platform) -> Option<usize> {
    match platform {
        Platform::Instagram => Some(125),
        Platform::Linkedin => Some(210),
        Platform::Facebook | Platform::Sandbox => Some(480),
        // about two lines under the video
        Platform::Tiktok => Some(100),
        Platform::X => None,
    }
}

/// What the feed shows before the cut, and whether there is more.
pub fn folded(text: &str, platform: Platform) -> (&str, bool) {
    match fold_at(platform).and_then(|n| text.char_indices().nth(n)) {
        Some((i, _)) => (text[..i].trim_end(), true),
        None => (text, false),
    }
}

/// The post's length as the platform counts it (X weighted, others by characters).
pub fn platform_length(text: &str, platform: Platform) -> usize {
    match platform {
        Platform::X => moderation::x_weighted_length(text),
        _ => text.chars().count(),
    }
}

pub(super) fn preview(state: &AppState, item: &Item, platform: Platform) -> Markup {
    let (text, length) = item.platform_text(platform);
    let size = CardSize::for_platform(platform);
    let image = item
        .images
        .iter()
        .find(|i| i.label == size.label())
        .or(item.images.first());
    let (shown, more) = folded(text, platform);
    let max = moderation::max_length(platform);
    html! {
        figure.preview {
            figcaption { strong { (platform.label()) } " preview" }
            @if let Some(img) = image
                && let Some(src) = media_url(state, &img.path) {
                div class={ "crop crop-" (size.label()) } {
                    img src=(src) alt={ "The post's image (" (img.width) "×" (img.height) "), cropped as " (platform.label()) " shows it" } loading="lazy";
                }
            }
            p.preview-text {
                (shown)
                @if more { span.more { "… more" } }
            }
            @if let (Some(link), true) = (&item.link_url, platform != Platform::X) {
                p.preview-link { (link) }
            }
            p.counter.over[length > max] { (length) " / " (max)
                @if platform == Platform::X { " (as X counts)" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_cut_where_each_platform_does() {
        let long = "a".repeat(600);
        assert_eq!(folded(&long, Platform::Instagram).0.len(), 125);
        assert_eq!(folded(&long, Platform::Linkedin).0.len(), 210);
        assert_eq!(folded(&long, Platform::Facebook).0.len(), 480);
        assert_eq!(folded(&long, Platform::X), (long.as_str(), false));
        assert_eq!(folded("short", Platform::Instagram), ("short", false));
        // characters, not bytes
        let umlauts = "ä".repeat(200);
        assert_eq!(folded(&umlauts, Platform::Instagram).0.chars().count(), 125);
    }
}
