//! Moderation: checks a generated post against the agency's banned terms and each target
//! platform's rules (text length as the platform counts it, hashtag caps, links) before it
//! reaches a reviewer or a platform.
//!
//! Every reason names the platform it applies to, so the console can show "too long for X"
//! next to a caption that is fine on LinkedIn; platform-independent reasons (banned terms, an
//! empty text, a malformed link) carry no platform.
//!
//! The text measured is the text as it will be posted, built by [`compose`]: the caption, then
//! (on X only, where a link can travel nowhere else) the link, then the hashtags, each block
//! separated by a blank line.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_properties::emoji::{EmojiStatus, UnicodeEmoji};
use unicode_segmentation::UnicodeSegmentation;

use crate::domain::Platform;

/// One reason a post may not go out as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The platform the rule belongs to; `None` for rules that hold everywhere.
    pub platform: Option<Platform>,
    /// `banned_term`, `length`, `hashtags`, `link` or `empty`.
    pub rule: String,
    /// A sentence for the reviewer.
    pub message: String,
}

/// The outcome of [`check`]: no reasons means the post passed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub reasons: Vec<Reason>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.reasons.is_empty()
    }

    /// `{"reasons":[{"platform":"x"|null,"rule":"length","message":"…"}]}`, the shape stored
    /// with a content item and shown in the console.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a verdict always serializes")
    }

    /// The reasons that apply to `platform` (its own and the platform-independent ones).
    pub fn reasons_for(&self, platform: Platform) -> impl Iterator<Item = &Reason> {
        self.reasons
            .iter()
            .filter(move |r| r.platform.is_none() || r.platform == Some(platform))
    }
}

/// What is checked.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The caption, without hashtags.
    pub text: &'a str,
    /// Hashtags with or without their leading `#`.
    pub hashtags: &'a [String],
    /// The link the post should carry, if any.
    pub link_url: Option<&'a str>,
    /// Words and phrases the agency never wants published.
    pub banned_terms: &'a [String],
}

fn reason(platform: Option<Platform>, rule: &str, message: String) -> Reason {
    Reason {
        platform,
        rule: rule.to_owned(),
        message,
    }
}

/// Checks `input` for every platform in `platforms`. Platform-independent reasons appear once.
pub fn check(platforms: &[Platform], input: &Input<'_>) -> Verdict {
    let mut reasons = Vec::new();

    if input.text.trim().is_empty() {
        reasons.push(reason(None, "empty", "the post has no text".to_owned()));
    }

    for tag in input.hashtags {
        let bare = tag.trim().trim_start_matches('#');
        if bare.is_empty() || bare.contains(|c: char| c.is_whitespace() || c == '#') {
            reasons.push(reason(
                None,
                "hashtags",
                format!(
                    "the hashtag “{tag}” is not one word; platforms end a hashtag at the first space or #"
                ),
            ));
        }
    }

    let searched = format!("{}\n{}", input.text, hashtag_line(input.hashtags));
    for term in find_banned_terms(&searched, input.banned_terms) {
        reasons.push(reason(
            None,
            "banned_term",
            format!("contains the banned term “{term}”"),
        ));
    }

    let link_ok = match input.link_url {
        Some(link) if !is_http_url(link) => {
            reasons.push(reason(
                None,
                "link",
                format!("the link “{link}” is not a valid http or https URL"),
            ));
            false
        }
        _ => true,
    };

    let mut seen = Vec::new();
    for &platform in platforms {
        if seen.contains(&platform) {
            continue;
        }
        seen.push(platform);

        let full = compose(platform, input);
        let (length, unit) = match platform {
            Platform::X => (x_weighted_length(&full), "characters as X counts them"),
            _ => (full.nfc().count(), "characters"),
        };
        let max = max_length(platform);
        if length > max {
            reasons.push(reason(
                Some(platform),
                "length",
                format!(
                    "{} allows {max} {unit}; this post has {length}",
                    platform.label()
                ),
            ));
        }

        if let Some(cap) = max_hashtags(platform) {
            let count = count_hashtags(&full);
            if count > cap {
                reasons.push(reason(
                    Some(platform),
                    "hashtags",
                    format!(
                        "{} allows at most {cap} hashtags; this post has {count}",
                        platform.label()
                    ),
                ));
            }
        }

        if link_ok
            && input.link_url.is_some()
            && matches!(platform, Platform::Instagram | Platform::Tiktok)
        {
            reasons.push(reason(
                Some(platform),
                "link",
                format!(
                    "links are not clickable on {}; put it in the bio",
                    platform.label()
                ),
            ));
        }
    }

    Verdict { reasons }
}

/// The text as it will be posted on `platform`: the caption (whitespace trimmed),
/// then on X the link (X has no separate link field), then the hashtags on one line, `#`
/// added where missing; blocks are separated by a blank line. Generation publishes exactly
/// this string, so what moderation measured is what the platform receives.
pub fn compose(platform: Platform, input: &Input<'_>) -> String {
    let mut out = input.text.trim().to_owned();
    let mut push_block = |block: &str| {
        if block.is_empty() {
            return;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(block);
    };
    if platform == Platform::X
        && let Some(link) = input.link_url
    {
        push_block(link.trim());
    }
    push_block(&hashtag_line(input.hashtags));
    out
}

/// `#a #b #c` from tags given with or without their `#`.
pub fn hashtag_line(hashtags: &[String]) -> String {
    hashtags
        .iter()
        .map(|t| t.trim().trim_start_matches('#'))
        .filter(|t| !t.is_empty())
        .map(|t| format!("#{t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The longest text each platform accepts, in its own counting (see [`x_weighted_length`] for
/// X; Unicode characters after NFC elsewhere). The sandbox takes what Facebook takes.
pub fn max_length(platform: Platform) -> usize {
    match platform {
        Platform::X => 280,
        Platform::Instagram | Platform::Tiktok => 2_200,
        Platform::Linkedin => 3_000,
        Platform::Facebook | Platform::Sandbox => 63_206,
    }
}

/// The documented hashtag cap: Instagram allows 30 per post. The other platforms document
/// none, so none is enforced (length still bounds them).
pub fn max_hashtags(platform: Platform) -> Option<usize> {
    match platform {
        Platform::Instagram => Some(30),
        _ => None,
    }
}

/// Hashtags in posted text: `#` at the start or after whitespace, followed by a letter,
/// digit or `_`.
fn count_hashtags(text: &str) -> usize {
    let mut count = 0;
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '#'
            && prev.is_none_or(char::is_whitespace)
            && chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
        {
            count += 1;
        }
        prev = Some(c);
    }
    count
}

fn is_http_url(link: &str) -> bool {
    url::Url::parse(link.trim()).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

// ---------------------------------------------------------------------------------------------
// Banned terms

/// Folds text for matching: compatibility decomposition (NFKD), combining marks removed,
/// lowercased. "Café", "CAFÉ" and "cafe" fold alike; so do "ｆｕｌｌ" (full-width) and "full",
/// and "İstanbul" and "istanbul". Dotless ı stays its own letter, as it is in Turkish.
fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .filter(|c| !is_combining_mark(*c))
        .collect()
}

/// The banned terms (as given) that occur in `text` as whole words or phrases: the term's
/// words, by Unicode word boundaries (UAX #29), appear consecutively among the text's words,
/// so "ass" does not match "class" and "free money" matches "FREE   Money!".
fn find_banned_terms<'t>(text: &str, terms: &'t [String]) -> Vec<&'t str> {
    let folded = fold(text);
    let words: Vec<&str> = folded.unicode_words().collect();
    let mut found: Vec<&str> = Vec::new();
    for term in terms {
        let folded_term = fold(term);
        let needle: Vec<&str> = folded_term.unicode_words().collect();
        if needle.is_empty() || found.contains(&term.as_str()) {
            continue;
        }
        if words.windows(needle.len()).any(|w| w == needle.as_slice()) {
            found.push(term);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// X's counting (twitter-text, configuration v3)

/// twitter-text v3: `scale` 100, `defaultWeight` 200, these ranges weigh 100 (so count 1 after
/// scaling), `transformedURLLength` 23, `emojiParsingEnabled` true.
const X_WEIGHT_ONE: [(u32, u32); 4] = [(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];
const X_URL_LENGTH: usize = 23;

/// A post's length as X counts it (twitter-text, config v3): the text is NFC-normalised;
/// every URL counts 23; an emoji (including a whole ZWJ, skin-tone, keycap or flag sequence)
/// counts 2; every other code point counts 1 in the ranges U+0000–U+10FF, U+2000–U+200D,
/// U+2010–U+201F, U+2032–U+2037 (Latin, Greek, Cyrillic, Hebrew, Arabic, general
/// punctuation…) and 2 elsewhere (CJK, for instance).
pub fn x_weighted_length(text: &str) -> usize {
    let text: String = text.nfc().collect();
    let mut total = 0;
    let mut at = 0;
    for url in find_urls(&text) {
        total += weigh(&text[at..url.start]) + X_URL_LENGTH;
        at = url.end;
    }
    total + weigh(&text[at..])
}

fn weigh(segment: &str) -> usize {
    segment
        .graphemes(true)
        .map(|g| {
            if is_emoji_sequence(g) {
                2
            } else {
                g.chars().map(char_weight).sum()
            }
        })
        .sum()
}

fn char_weight(c: char) -> usize {
    let cp = c as u32;
    if X_WEIGHT_ONE.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp)) {
        1
    } else {
        2
    }
}

/// Whether a grapheme cluster is one emoji as twitter-text's emoji parser sees it: a
/// character shown as emoji by default, a flag, a keycap, or an emoji-capable character
/// turned into emoji by VS16, a skin-tone modifier, a ZWJ sequence or tag characters.
/// Text-style characters such as a bare © stay text.
fn is_emoji_sequence(g: &str) -> bool {
    use unicode_properties::emoji::{
        is_emoji_presentation_selector, is_regional_indicator, is_tag_character, is_zwj,
    };
    let Some(first) = g.chars().next() else {
        return false;
    };
    if g.chars()
        .any(|c| is_regional_indicator(c) || c == '\u{20E3}')
    {
        return true;
    }
    let status = first.emoji_status();
    if matches!(
        status,
        EmojiStatus::EmojiPresentation | EmojiStatus::EmojiPresentationAndModifierBase
    ) {
        return true;
    }
    first.is_emoji_char()
        && g.chars().skip(1).any(|c| {
            is_emoji_presentation_selector(c)
                || is_zwj(c)
                || is_tag_character(c)
                || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
        })
}

/// Top-level domains recognised in links written without a scheme ("example.com"), which X
/// also shortens. A deliberately short list of common ones: a rarer TLD is counted as text.
const BARE_TLDS: &[&str] = &[
    "com", "net", "org", "io", "co", "ai", "app", "dev", "info", "biz", "me", "tv", "shop",
    "store", "online", "site", "xyz", "news", "blog", "edu", "gov", "uk", "us", "ca", "au", "de",
    "fr", "es", "it", "nl", "be", "ch", "at", "se", "no", "dk", "fi", "ie", "pt", "pl", "cz", "br",
    "mx", "ar", "in", "jp", "cn", "kr", "ru", "eu", "nz", "za", "ly", "gl", "gg", "to",
];

/// Byte ranges of the URLs X would shorten: `http(s)://host…`, `www.host…`, and bare
/// `name.tld[/…]` with a common TLD. Trailing punctuation is not part of a URL; an address
/// with `@` (an e-mail) is not one.
fn find_urls(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                if let Some(r) = url_in_token(&text[s..i]) {
                    out.push(s + r.start..s + r.end);
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn url_in_token(token: &str) -> Option<Range<usize>> {
    let lower = token.to_ascii_lowercase();
    let trim_end = |s: usize| {
        let t = token[s..].trim_end_matches(|c: char| ".,;:!?)]}'\"…".contains(c));
        s..s + t.len()
    };
    if let Some(s) = lower.find("https://").or_else(|| lower.find("http://")) {
        let r = trim_end(s);
        let rest = &token[r.clone()];
        let host = rest.split_once("://").map(|(_, h)| h).unwrap_or("");
        let host = host.split(['/', '?', '#']).next().unwrap_or("");
        return (host.contains('.') && !host.starts_with('.')).then_some(r);
    }
    if token.contains('@') {
        return None;
    }
    let s = token.len()
        - token
            .trim_start_matches(|c: char| "([{'\"".contains(c))
            .len();
    let r = trim_end(s);
    let candidate = &lower[r.clone()];
    if candidate.starts_with("www.") && candidate.len() > 4 {
        return Some(r);
    }
    let host = candidate.split(['/', '?', '#']).next().unwrap_or("");
    let labels: Vec<&str> = host.split('.').collect();
    let valid_labels = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    (valid_labels && BARE_TLDS.contains(labels.last()?)).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn input<'a>(text: &'a str, hashtags: &'a [String], banned: &'a [String]) -> Input<'a> {
        Input {
            text,
            hashtags,
            link_url: None,
            banned_terms: banned,
        }
    }

    fn rules(v: &Verdict) -> Vec<(Option<Platform>, &str)> {
        v.reasons
            .iter()
            .map(|r| (r.platform, r.rule.as_str()))
            .collect()
    }

    #[test]
    fn banned_terms_match_whole_words_only() {
        let banned = strings(&["ass"]);
        let v = check(
            &[Platform::X],
            &input("A first-class product", &[], &banned),
        );
        assert!(v.passed(), "{v:?}");
        let v = check(&[Platform::X], &input("What an ass.", &[], &banned));
        assert_eq!(rules(&v), vec![(None, "banned_term")]);
        assert!(v.reasons[0].message.contains("“ass”"));
    }

    #[test]
    fn banned_phrases_match_across_case_spacing_and_punctuation() {
        let banned = strings(&["free money"]);
        let v = check(&[Platform::X], &input("Get FREE   Money!", &[], &banned));
        assert_eq!(rules(&v), vec![(None, "banned_term")]);
        let v = check(&[Platform::X], &input("free, money", &[], &banned));
        assert_eq!(rules(&v), vec![(None, "banned_term")]);
        // the words must be consecutive
        let v = check(
            &[Platform::X],
            &input("free shipping, money back", &[], &banned),
        );
        assert!(v.passed(), "{v:?}");
        // a phrase inside a longer word is not the phrase
        let v = check(&[Platform::X], &input("carefree moneyless", &[], &banned));
        assert!(v.passed(), "{v:?}");
    }

    #[test]
    fn banned_terms_ignore_diacritics_and_width() {
        let banned = strings(&["cafe"]);
        for text in [
            "Meet us at the Café",
            "CAFÉ opening",
            "cafe\u{301} (decomposed)",
            "ｃａｆｅ",
        ] {
            let v = check(&[Platform::Facebook], &input(text, &[], &banned));
            assert_eq!(rules(&v), vec![(None, "banned_term")], "{text}");
        }
        // and the other way round: an accented term matches plain text
        let banned = strings(&["Café"]);
        let v = check(
            &[Platform::Facebook],
            &input("best cafe in town", &[], &banned),
        );
        assert_eq!(rules(&v), vec![(None, "banned_term")]);
        let v = check(&[Platform::Facebook], &input("cafeteria", &[], &banned));
        assert!(v.passed());
    }

    #[test]
    fn turkish_dotted_and_dotless_i() {
        let banned = strings(&["istanbul"]);
        // capital dotted İ folds to i
        for text in ["İstanbul", "İSTANBUL", "Istanbul"] {
            let v = check(&[Platform::X], &input(text, &[], &banned));
            assert_eq!(rules(&v), vec![(None, "banned_term")], "{text}");
        }
        // dotless ı is a different letter and is not silently turned into i
        let v = check(&[Platform::X], &input("ıstanbul", &[], &banned));
        assert!(v.passed(), "{v:?}");
        assert_eq!(fold("İ"), "i");
    }

    #[test]
    fn unicode_word_boundaries_not_ascii() {
        // "ass" inside a word made of non-ASCII letters is still inside a word
        let banned = strings(&["ass"]);
        let v = check(&[Platform::X], &input("éassé", &[], &banned));
        assert!(v.passed(), "{v:?}");
        // CJK text around a Latin term: the boundary is between scripts
        let banned = strings(&["sale"]);
        let v = check(&[Platform::X], &input("今日はsaleです", &[], &banned));
        assert_eq!(rules(&v), vec![(None, "banned_term")]);
    }

    #[test]
    fn banned_terms_in_hashtags_are_found() {
        let banned = strings(&["crypto"]);
        let tags = strings(&["#Crypto", "news"]);
        let v = check(
            &[Platform::Linkedin],
            &input("Weekly update", &tags, &banned),
        );
        assert_eq!(rules(&v), vec![(None, "banned_term")]);
    }

    #[test]
    fn each_banned_term_is_reported_once() {
        let banned = strings(&["spam", "spam", "  "]);
        let v = check(
            &[Platform::X, Platform::Facebook],
            &input("spam spam spam", &[], &banned),
        );
        assert_eq!(rules(&v), vec![(None, "banned_term")]);
    }

    #[test]
    fn x_counts_latin_as_one_and_cjk_as_two() {
        assert_eq!(x_weighted_length("hello"), 5);
        assert_eq!(x_weighted_length("Café"), 4);
        // decomposed é is normalised first and counts once
        assert_eq!(x_weighted_length("Cafe\u{301}"), 4);
        assert_eq!(x_weighted_length("Привет"), 6);
        assert_eq!(x_weighted_length("日本語"), 6);
        assert_eq!(x_weighted_length("한국어"), 6);
        // curly quotes and the en dash are in the weight-one ranges, the ellipsis (U+2026) not
        assert_eq!(x_weighted_length("“a”–"), 4);
        assert_eq!(x_weighted_length("…"), 2);
        // U+2122 (™) lies outside them
        assert_eq!(x_weighted_length("™"), 2);
    }

    #[test]
    fn x_counts_each_emoji_sequence_as_two() {
        assert_eq!(x_weighted_length("😀"), 2);
        assert_eq!(x_weighted_length("👍🏽"), 2); // skin tone
        assert_eq!(x_weighted_length("👨‍👩‍👧‍👦"), 2); // ZWJ family
        assert_eq!(x_weighted_length("🇫🇷"), 2); // flag
        assert_eq!(x_weighted_length("1️⃣"), 2); // keycap
        assert_eq!(x_weighted_length("❤️"), 2); // VS16
        assert_eq!(x_weighted_length("Hi 😀!"), 6);
        assert_eq!(x_weighted_length("日本😀"), 6);
        // digits and a bare © are text
        assert_eq!(x_weighted_length("1©"), 2);
    }

    #[test]
    fn x_counts_every_url_as_23() {
        assert_eq!(x_weighted_length("https://example.com"), 23);
        let long = format!("https://example.com/{}", "a".repeat(200));
        assert_eq!(x_weighted_length(&long), 23);
        assert_eq!(x_weighted_length("see http://a.co."), 4 + 23 + 1);
        assert_eq!(x_weighted_length("(https://example.com/x)"), 1 + 23 + 1);
        assert_eq!(x_weighted_length("www.example.org/page"), 23);
        assert_eq!(x_weighted_length("visit example.com today"), 6 + 23 + 6);
        // not URLs: an e-mail, a sentence ending with a dot, a scheme without a host
        assert_eq!(x_weighted_length("me@example.com"), 14);
        assert_eq!(x_weighted_length("the end.Next"), 12);
        assert_eq!(x_weighted_length("https://"), 8);
    }

    #[test]
    fn exactly_280_passes_and_281_fails_on_x() {
        let ok = "a".repeat(280);
        assert!(check(&[Platform::X], &input(&ok, &[], &[])).passed());
        let long = "a".repeat(281);
        let v = check(&[Platform::X], &input(&long, &[], &[]));
        assert_eq!(rules(&v), vec![(Some(Platform::X), "length")]);
        assert!(v.reasons[0].message.contains("280"));
        assert!(v.reasons[0].message.contains("281"));
        // 140 CJK characters are 280; one more is too many
        let cjk = "字".repeat(140);
        assert!(check(&[Platform::X], &input(&cjk, &[], &[])).passed());
        let cjk = "字".repeat(141);
        assert!(!check(&[Platform::X], &input(&cjk, &[], &[])).passed());
        // a 257-character text plus one URL is exactly 280
        let with_url = format!("{} https://example.com/{}", "a".repeat(256), "b".repeat(90));
        assert_eq!(x_weighted_length(&with_url), 280);
        assert!(check(&[Platform::X], &input(&with_url, &[], &[])).passed());
    }

    #[test]
    fn length_counts_the_composed_text_with_hashtags() {
        let tags = strings(&["one", "#two"]);
        let i = input("caption", &tags, &[]);
        assert_eq!(compose(Platform::Instagram, &i), "caption\n\n#one #two");
        let odd = strings(&[" ##one ", ""]);
        let i = input("  caption \n", &odd, &[]);
        assert_eq!(compose(Platform::Instagram, &i), "caption\n\n#one");
        // 280 - "\n\n#one #two".len() = 269 characters of caption fit exactly
        let text = "a".repeat(269);
        assert!(check(&[Platform::X], &input(&text, &tags, &[])).passed());
        let text = "a".repeat(270);
        let v = check(&[Platform::X], &input(&text, &tags, &[]));
        assert_eq!(rules(&v), vec![(Some(Platform::X), "length")]);
    }

    #[test]
    fn x_carries_the_link_in_the_text() {
        let i = Input {
            text: "News",
            hashtags: &[],
            link_url: Some("https://example.com/a"),
            banned_terms: &[],
        };
        assert_eq!(compose(Platform::X, &i), "News\n\nhttps://example.com/a");
        assert_eq!(compose(Platform::Facebook, &i), "News");
        assert_eq!(x_weighted_length(&compose(Platform::X, &i)), 4 + 2 + 23);
    }

    #[test]
    fn platform_limits_apply_per_platform() {
        let text = "a".repeat(2_201);
        let v = check(
            &[
                Platform::Instagram,
                Platform::Tiktok,
                Platform::Linkedin,
                Platform::Facebook,
            ],
            &input(&text, &[], &[]),
        );
        assert_eq!(
            rules(&v),
            vec![
                (Some(Platform::Instagram), "length"),
                (Some(Platform::Tiktok), "length")
            ]
        );
        assert!(v.reasons[0].message.starts_with("Instagram allows 2200"));
        let v = check(&[Platform::Linkedin], &input(&"a".repeat(3_001), &[], &[]));
        assert_eq!(rules(&v), vec![(Some(Platform::Linkedin), "length")]);
        assert!(check(&[Platform::Linkedin], &input(&"a".repeat(3_000), &[], &[])).passed());
        assert!(check(&[Platform::Facebook], &input(&"a".repeat(63_206), &[], &[])).passed());
        assert!(!check(&[Platform::Facebook], &input(&"a".repeat(63_207), &[], &[])).passed());
        // outside X, an emoji is counted by its code points
        let emoji = "😀".repeat(2_200);
        assert!(check(&[Platform::Instagram], &input(&emoji, &[], &[])).passed());
    }

    #[test]
    fn instagram_caps_hashtags_at_30() {
        let tags: Vec<String> = (0..30).map(|i| format!("tag{i}")).collect();
        assert!(check(&[Platform::Instagram], &input("hi", &tags, &[])).passed());
        // hashtags written into the caption count too
        let v = check(&[Platform::Instagram], &input("hi #extra", &tags, &[]));
        assert_eq!(rules(&v), vec![(Some(Platform::Instagram), "hashtags")]);
        assert!(v.reasons[0].message.contains("31"));
        // other platforms document no cap
        let many: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        assert!(check(&[Platform::Facebook], &input("hi", &many, &[])).passed());
        assert_eq!(max_hashtags(Platform::X), None);
        // "#1" after a word or "C#" are not hashtags
        assert_eq!(count_hashtags("C# is #fun and a#b #_x # y"), 2);
    }

    #[test]
    fn malformed_hashtags_are_reported() {
        let tags = strings(&["summer sale", "#", "ok", "##fine"]);
        let v = check(&[Platform::X], &input("hi", &tags, &[]));
        assert_eq!(rules(&v), vec![(None, "hashtags"), (None, "hashtags")]);
    }

    #[test]
    fn links_are_refused_where_they_do_not_click() {
        let base = Input {
            text: "See our offer",
            hashtags: &[],
            link_url: Some("https://example.com/offer"),
            banned_terms: &[],
        };
        let v = check(
            &[
                Platform::Instagram,
                Platform::Tiktok,
                Platform::X,
                Platform::Facebook,
                Platform::Linkedin,
            ],
            &base,
        );
        assert_eq!(
            rules(&v),
            vec![
                (Some(Platform::Instagram), "link"),
                (Some(Platform::Tiktok), "link")
            ]
        );
        assert_eq!(
            v.reasons[0].message,
            "links are not clickable on Instagram; put it in the bio"
        );
        assert_eq!(v.reasons_for(Platform::X).count(), 0);
        assert_eq!(v.reasons_for(Platform::Tiktok).count(), 1);
    }

    #[test]
    fn invalid_links_are_refused_everywhere() {
        for link in [
            "ftp://example.com/x",
            "javascript:alert(1)",
            "example.com",
            "https://",
        ] {
            let i = Input {
                text: "See",
                hashtags: &[],
                link_url: Some(link),
                banned_terms: &[],
            };
            let v = check(&[Platform::Facebook, Platform::Instagram], &i);
            assert_eq!(rules(&v), vec![(None, "link")], "{link}");
        }
    }

    #[test]
    fn empty_text_is_a_reason() {
        for text in ["", "   \n\t"] {
            let v = check(&[Platform::X, Platform::Facebook], &input(text, &[], &[]));
            assert_eq!(rules(&v), vec![(None, "empty")]);
        }
    }

    #[test]
    fn a_platform_listed_twice_is_checked_once() {
        let v = check(
            &[Platform::X, Platform::X],
            &input(&"a".repeat(300), &[], &[]),
        );
        assert_eq!(v.reasons.len(), 1);
    }

    #[test]
    fn verdict_json_shape() {
        let banned = strings(&["spam"]);
        let v = check(&[Platform::X], &input(&"spam ".repeat(60), &[], &banned));
        let json = v.to_json();
        assert_eq!(
            json["reasons"][0],
            serde_json::json!({"platform": null, "rule": "banned_term", "message": "contains the banned term “spam”"})
        );
        assert_eq!(json["reasons"][1]["platform"], "x");
        assert_eq!(json["reasons"][1]["rule"], "length");
        let back: Verdict = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
        assert_eq!(
            Verdict::default().to_json(),
            serde_json::json!({"reasons": []})
        );
    }
}
