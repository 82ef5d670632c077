//! Caption providers: one trait, the offline `template` provider (the default: deterministic,
//! no network) and the OpenAI-compatible one in [`super::openai`]. A provider writes three
//! variants of a caption (conservative, balanced, bold) and a short headline for the image
//! card; hashtags, the CTA choice and moderation stay with the generate job, the same for every
//! provider.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Weekday};
use futures::future::BoxFuture;
use uuid::Uuid;

use super::templates::{Library, LoadError, Values};
use crate::domain::Platform;

macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::domain::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(crate::domain::UnknownVariant { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum! {
    /// The three captions every generation writes (column `content_variants.kind`).
    VariantKind { Conservative => "conservative", Balanced => "balanced", Bold => "bold" }
}

str_enum! {
    /// What an item posts (column `content_items.content_type`).
    ContentType { Text => "text", Image => "image", Link => "link" }
}

/// One caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub kind: VariantKind,
    pub caption: String,
}

/// What a provider wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Conservative, balanced, bold, in that order.
    pub variants: [Variant; 3],
    /// A short line for the image card.
    pub headline: String,
}

/// A target platform's limits, for the prompt and the template choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformLimits {
    pub platform: Platform,
    /// Room for the caption in characters: the platform's limit less the share of the
    /// hashtags (and, on X, the link) that the post will carry after it.
    pub max_chars: usize,
    pub max_hashtags: usize,
}

/// Everything a provider may use to write one item's captions.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub brand_name: String,
    pub voice: String,
    pub tone: String,
    pub handle: Option<String>,
    pub pillar: String,
    /// What the post is about: the pillar, named as a topic.
    pub topic: String,
    pub content_type: ContentType,
    pub platforms: Vec<PlatformLimits>,
    pub banned_terms: Vec<String>,
    pub cta: Option<String>,
    /// Ranked hashtag candidates (the job appends the final ones itself).
    pub hashtags: Vec<String>,
    /// The slot's date in the client's time zone.
    pub slot_date: NaiveDate,
    /// The item's position among the client's posts of its local ISO week (0-based): the
    /// template provider rotates by it so a week does not repeat itself.
    pub sequence: u32,
    /// The client's template overrides, by name (`captions/text.txt`).
    pub template_overrides: BTreeMap<String, String>,
}

impl GenerationRequest {
    /// The tightest caption length among the targets (captions are shared by all targets).
    pub fn max_chars(&self) -> Option<usize> {
        self.platforms.iter().map(|p| p.max_chars).min()
    }
}

/// Why a provider wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying with backoff (timeouts, 5xx, connection failures).
    #[error("transient provider failure: {0}")]
    Transient(String),
    #[error("provider rate limit: retry in {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// The model declined to write it.
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The answer was not the shape we asked for.
    #[error("malformed provider answer: {0}")]
    Malformed(String),
    /// The agency's AI token budget is spent.
    #[error("the agency's AI token budget is exhausted: {0}")]
    Budget(String),
    /// Misconfiguration (bad template, bad key): no retry helps.
    #[error("provider misconfigured: {0}")]
    Config(String),
}

impl ProviderError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Transient(_) | ProviderError::RateLimited { .. }
        )
    }
}

/// A caption writer.
pub trait Provider: Send + Sync {
    /// Recorded on the item (`content_items.generator`).
    fn name(&self) -> &str;
    fn generate<'a>(
        &'a self,
        req: &'a GenerationRequest,
    ) -> BoxFuture<'a, Result<Generated, ProviderError>>;
}

/// Weeks since 1970-01-05 (a Monday): rotations start each week at a different template.
pub fn week_index(date: NaiveDate) -> u32 {
    let epoch_monday = NaiveDate::from_ymd_opt(1970, 1, 5).expect("valid date");
    let monday = date.week(Weekday::Mon).first_day();
    ((monday - epoch_monday).num_days().max(0) / 7) as u32
}

/// Offline, deterministic captions from `templates/captions/`.
#[derive(Debug, Clone)]
pub struct TemplateProvider {
    library: Library,
}

impl TemplateProvider {
    pub fn new(library: Library) -> TemplateProvider {
        TemplateProvider { library }
    }

    /// The files to try, most specific first: the template of the target with the tightest
    /// length limit (captions written for it fit every other target), then the generic one.
    fn file_names(req: &GenerationRequest) -> Vec<String> {
        let ct = req.content_type.as_str();
        let mut names = Vec::new();
        if let Some(tightest) = req.platforms.iter().min_by_key(|p| p.max_chars) {
            names.push(format!("captions/{ct}.{}.txt", tightest.platform.as_str()));
        }
        names.push(format!("captions/{ct}.txt"));
        names
    }

    fn write(&self, req: &GenerationRequest) -> Result<Generated, ProviderError> {
        let names = Self::file_names(req);
        let file = self
            .library
            .load_first(&names, &req.template_overrides)
            .map_err(|e| match e {
                LoadError::Parse(e) => ProviderError::Config(e.to_string()),
                LoadError::Io { .. } => ProviderError::Transient(e.to_string()),
            })?
            .ok_or_else(|| {
                ProviderError::Config(format!(
                    "no caption template: none of {} in {}",
                    names.join(", "),
                    self.library.dir().display()
                ))
            })?;
        let values = Values {
            brand: req.brand_name.clone(),
            pillar: req.pillar.clone(),
            topic: req.topic.clone(),
            cta: req.cta.clone().unwrap_or_default(),
            tone: req.tone.clone(),
            handle: req.handle.clone().unwrap_or_default(),
            weekday: weekday_name(req.slot_date.weekday()).to_owned(),
        };
        let turn = (week_index(req.slot_date) + req.sequence) as usize;
        let limit = req.max_chars();
        let write = |kind: VariantKind| {
            let pool = file.for_variant(kind);
            // rotate; prefer the first template from the turn on whose caption fits the limit
            let rendered: Vec<String> = (0..pool.len())
                .map(|i| pool[(turn + i) % pool.len()].render(&values))
                .collect();
            let pick = rendered
                .iter()
                .find(|c| limit.is_none_or(|l| c.chars().count() <= l))
                .unwrap_or(&rendered[0]);
            Variant {
                kind,
                caption: pick.clone(),
            }
        };
        let variants = [
            write(VariantKind::Conservative),
            write(VariantKind::Balanced),
            write(VariantKind::Bold),
        ];
        let headline = headline_from(&req.pillar, &variants[1].caption);
        Ok(Generated { variants, headline })
    }
}

impl Provider for TemplateProvider {
    fn name(&self) -> &str {
        "template"
    }
    fn generate<'a>(
        &'a self,
        req: &'a GenerationRequest,
    ) -> BoxFuture<'a, Result<Generated, ProviderError>> {
        Box::pin(async move { self.write(req) })
    }
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// The card's headline: the caption's first sentence when short enough, else the pillar.
pub fn headline_from(pillar: &str, caption: &str) -> String {
    const MAX: usize = 90;
    let first_line = caption.lines().next().unwrap_or("").trim();
    let sentence = first_line
        .split_inclusive(['.', '!', '?'])
        .next()
        .unwrap_or(first_line)
        .trim();
    if !sentence.is_empty() && sentence.chars().count() <= MAX {
        return sentence.to_owned();
    }
    let mut out = String::new();
    for word in pillar.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > MAX {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}
