//! Generation: the `generate` job fills one planned item — pillar, captions, hashtags, CTA,
//! moderation, images — and hands it to review or approves it when its client auto-approves.
//! One run is load (what the item, its client and brand need) → decide (pure: the pillar,
//! hashtags and room per platform; then which variant passes moderation) → produce (the
//! provider's captions, the images) → write (one transaction, only while the run still holds
//! the item).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Content, GENERATE_BACKOFF, MAX_HASHTAGS, payload_uuid};
use crate::content::brand::{self, Brand, Client};
use crate::content::cards::{self, CardSize, CardSpec, Fonts};
use crate::content::moderation::{self, Verdict};
use crate::content::provider::{
    ContentType, Generated, GenerationRequest, PlatformLimits, ProviderError, VariantKind,
    week_index,
};
use crate::content::schedule;
use crate::content::templates;
use crate::domain::{ClientStatus, Platform};
use crate::items;
use crate::queue::runner::{JobContext, Outcome};

/// What a generate run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Generation {
    /// The item was filled and is now in this state.
    Generated { state: String, blocked: bool },
    /// Nothing to do: already generated, cancelled, gone, or its client is not active.
    Skipped(String),
    /// Try again later; the item stays `planned` with the reason.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Postpone without counting an attempt (a rate limit said "not yet").
    Postpone { after: Duration, reason: String },
    /// A permanent failure; the item stays `planned` with the reason recorded.
    Failed(String),
}

/// Hashtags for a post: a tag made from the topic first, then the brand's tags from sets whose
/// name or tags match the topic's words, then the rest in set order; deduplicated without
/// regard to case, tags with spaces dropped, at most `cap`.
pub fn rank_hashtags(sets: &BTreeMap<String, Vec<String>>, topic: &str, cap: usize) -> Vec<String> {
    let words: Vec<String> = topic
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    let matches = |s: &str| {
        let s = s.to_lowercase();
        words.iter().any(|w| s.contains(w.as_str()))
    };
    let mut scored: Vec<(u8, usize, String)> = Vec::new();
    let topic_tag: String = topic
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    if !topic_tag.is_empty() && topic_tag.chars().count() <= 40 {
        scored.push((3, 0, format!("#{topic_tag}")));
    }
    let mut order = 1;
    for (name, tags) in sets {
        let set_match = matches(name);
        for tag in tags {
            let tag = tag.trim();
            let bare = tag.trim_start_matches('#');
            if bare.is_empty() || bare.contains(char::is_whitespace) {
                continue;
            }
            let score = u8::from(set_match) + u8::from(matches(bare));
            scored.push((score, order, format!("#{bare}")));
            order += 1;
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut seen = BTreeSet::new();
    scored
        .into_iter()
        .filter(|(_, _, t)| seen.insert(t.to_lowercase()))
        .map(|(_, _, t)| t)
        .take(cap)
        .collect()
}

/// The hashtag line's share of a post at most: a third of the tightest length.
fn fit_hashtags(mut tags: Vec<String>, platforms: &[Platform]) -> Vec<String> {
    let tightest = platforms
        .iter()
        .map(|p| moderation::max_length(*p))
        .min()
        .unwrap_or(usize::MAX);
    while !tags.is_empty() && tags.join(" ").chars().count() > tightest / 3 {
        tags.pop();
    }
    tags
}

/// The text moderation measures and publishing posts: the caption with the CTA appended when
/// the caption does not already carry it.
fn caption_with_cta(caption: &str, cta: Option<&str>) -> String {
    crate::publishing::compose_text(caption, cta, &[])
}

struct Item {
    client_id: Uuid,
    rule_id: Option<Uuid>,
    slot_at: DateTime<Utc>,
    content_type: ContentType,
    link_url: Option<String>,
}

/// Hand the item back as `planned` with the reason (only while this run holds it).
async fn release(pool: &PgPool, agency: Uuid, item: Uuid, reason: &str) -> sqlx::Result<()> {
    items::release(pool, agency, item, reason).await
}

/// A card rendered and stored in the media directory.
struct StoredCard {
    label: &'static str,
    /// `card` or `generated` (`media_assets.purpose`).
    purpose: &'static str,
    path: String,
    sha256: [u8; 32],
    mime: &'static str,
    width: u32,
    height: u32,
    bytes: usize,
}

struct CardJob {
    sizes: Vec<CardSize>,
    headline: String,
    footer: String,
    palette: cards::Palette,
    font: Option<String>,
    logo: Option<PathBuf>,
    media_dir: PathBuf,
    fonts: Arc<Fonts>,
}

fn render_cards(job: CardJob) -> anyhow::Result<Vec<StoredCard>> {
    let logo = match &job.logo {
        Some(path) => match image::open(path) {
            Ok(img) => Some(img),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "brand logo unreadable; card without logo");
                None
            }
        },
        None => None,
    };
    let font = job
        .font
        .as_deref()
        .filter(|f| job.fonts.names().iter().any(|n| n == f));
    let mut out = Vec::new();
    for size in job.sizes {
        let spec = CardSpec {
            size,
            headline: &job.headline,
            footer: &job.footer,
            palette: job.palette,
            gradient: false,
            logo: logo.as_ref(),
            font,
        };
        let rendered = cards::render(&job.fonts, &spec)?;
        let (bytes, ext, mime) = if size.prefers_jpeg() {
            (
                cards::encode_jpeg(&rendered.image, 90)?,
                "jpg",
                "image/jpeg",
            )
        } else {
            (cards::encode_png(&rendered.image)?, "png", "image/png")
        };
        let (path, sha256) = cards::store(&job.media_dir, &bytes, ext)?;
        let (width, height) = size.dimensions();
        out.push(StoredCard {
            label: size.label(),
            purpose: "card",
            path,
            sha256,
            mime,
            width,
            height,
            bytes: bytes.len(),
        });
    }
    Ok(out)
}

/// What the job does after a provider failure: wait out a rate limit, retry a transient
/// failure with backoff, give up on the rest.
fn after_provider_failure(e: ProviderError) -> Generation {
    let reason = e.to_string();
    match e {
        ProviderError::RateLimited { retry_after } => Generation::Postpone {
            after: retry_after,
            reason,
        },
        ProviderError::Transient(_) => Generation::Retry {
            after: None,
            reason,
        },
        ProviderError::Refused(_)
        | ProviderError::Malformed(_)
        | ProviderError::Budget(_)
        | ProviderError::Config(_) => Generation::Failed(reason),
    }
}

/// The image prompt: the headline, the pillar and the brand's voice; no lettering, since the
/// caption carries the words.
pub fn image_prompt(brand: &Brand, pillar: &str, headline: &str) -> String {
    let mut prompt = format!(
        "A social media image for the brand \"{}\" about {pillar}: {headline}.",
        brand.name
    );
    if !brand.voice.trim().is_empty() {
        prompt.push_str(&format!(" Brand voice: {}.", brand.voice.trim()));
    }
    prompt.push_str(" No text, letters or logos in the image.");
    prompt
}

/// The aspect ratio to ask for: the size's own when there is one, square when several sizes
/// share the image (a centre crop of a square loses least to each).
pub fn image_aspect(sizes: &[CardSize]) -> &'static str {
    match sizes {
        [one] => {
            let (w, h) = one.dimensions();
            crate::content::replicate::aspect_ratio(w, h)
        }
        _ => "1:1",
    }
}

/// Crop and scale one generated image to each size and store it like a card.
fn store_generated(
    picture: &image::DynamicImage,
    sizes: &[CardSize],
    media_dir: &std::path::Path,
) -> anyhow::Result<Vec<StoredCard>> {
    let mut out = Vec::new();
    for &size in sizes {
        let (width, height) = size.dimensions();
        let fitted = picture
            .resize_to_fill(width, height, image::imageops::FilterType::Lanczos3)
            .to_rgba8();
        let (bytes, ext, mime) = if size.prefers_jpeg() {
            (cards::encode_jpeg(&fitted, 90)?, "jpg", "image/jpeg")
        } else {
            (cards::encode_png(&fitted)?, "png", "image/png")
        };
        let (path, sha256) = cards::store(media_dir, &bytes, ext)?;
        out.push(StoredCard {
            label: size.label(),
            purpose: "generated",
            path,
            sha256,
            mime,
            width,
            height,
            bytes: bytes.len(),
        });
    }
    Ok(out)
}

/// Generate one item (see the module docs).
pub async fn generate(
    pool: &PgPool,
    content: &Content,
    agency: Uuid,
    item_id: Uuid,
) -> anyhow::Result<Generation> {
    let Some(row) = items::claim(pool, agency, item_id).await? else {
        return Ok(Generation::Skipped(
            "already generated, cancelled or gone".into(),
        ));
    };
    let item = Item {
        client_id: row.client_id,
        rule_id: row.rule_id,
        slot_at: row.slot_at,
        content_type: row
            .content_type
            .parse()
            .map_err(|e| anyhow::anyhow!("item {item_id}: {e}"))?,
        link_url: row.link_url,
    };
    match prepare_and_write(pool, content, agency, item_id, &item).await {
        Ok(g) => Ok(g),
        Err(e) => {
            // unexpected failure (database, disk): hand the item back, retry the job
            let _ = release(pool, agency, item_id, &format!("{e:#}")).await;
            Err(e)
        }
    }
}

/// What generation reads before it decides anything.
struct Loaded {
    client: Client,
    brand: Brand,
    /// The item's target platforms (at least one).
    platforms: Vec<Platform>,
    /// The slot's local date.
    slot_date: NaiveDate,
    /// The item's place among the client's posts of its local ISO week: drives every rotation.
    sequence: u32,
    rule_name: Option<String>,
    template_overrides: BTreeMap<String, String>,
    /// The brand's logo, for cards.
    logo: Option<PathBuf>,
}

/// Generation stops before it starts: the outcome, and the reason to hand the item back with
/// (`None`: leave it as it is).
struct Stop {
    release: Option<String>,
    outcome: Generation,
}

/// Load: the client, its brand, the item's platforms and its place in the week.
async fn load(
    pool: &PgPool,
    content: &Content,
    agency: Uuid,
    item_id: Uuid,
    item: &Item,
) -> anyhow::Result<Result<Loaded, Stop>> {
    let Some(client) = brand::client(pool, agency, item.client_id).await? else {
        return Ok(Err(Stop {
            release: None,
            outcome: Generation::Skipped("client gone".into()),
        }));
    };
    if client.status != ClientStatus::Active {
        return Ok(Err(Stop {
            release: Some("client is not active".into()),
            outcome: Generation::Skipped(format!("client is {}", client.status)),
        }));
    }
    let brand: Brand = brand::brand(pool, &client).await?;
    let platforms: Vec<Platform> = sqlx::query_scalar!(
        r#"SELECT DISTINCT a.platform AS "platform!: Platform" FROM content_item_targets t
           JOIN social_accounts a ON a.id = t.account_id AND a.agency_id = t.agency_id
           WHERE t.item_id = $1 AND t.agency_id = $2 ORDER BY 1"#,
        item_id,
        agency
    )
    .fetch_all(pool)
    .await?;
    if platforms.is_empty() {
        let why = "the item has no target accounts";
        return Ok(Err(Stop {
            release: Some(why.into()),
            outcome: Generation::Failed(why.into()),
        }));
    }
    let tz = client.timezone;
    let slot_date = schedule::local_date(tz, item.slot_at);
    let monday = slot_date - Days::new(u64::from(slot_date.weekday().num_days_from_monday()));
    let midnight = NaiveTime::MIN;
    let week_start = schedule::resolve_local(tz, monday, midnight);
    let week_end = schedule::resolve_local(tz, monday + Days::new(7), midnight);
    let sequence = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM content_items
           WHERE agency_id = $1 AND client_id = $2 AND slot_at >= $3 AND slot_at < $4
             AND (slot_at, id) < ($5, $6) AND state NOT IN ('cancelled', 'rejected')"#,
        agency,
        client.id,
        week_start,
        week_end,
        item.slot_at,
        item_id
    )
    .fetch_one(pool)
    .await? as u32;
    let rule_name = match item.rule_id {
        Some(rule) => {
            sqlx::query_scalar!(
                "SELECT name FROM content_rules WHERE id = $1 AND agency_id = $2",
                rule,
                agency
            )
            .fetch_optional(pool)
            .await?
        }
        None => None,
    };
    let logo = match brand.logo_media_id {
        Some(logo) if item.content_type == ContentType::Image => sqlx::query_scalar!(
            "SELECT path FROM media_assets WHERE id = $1 AND agency_id = $2",
            logo,
            agency
        )
        .fetch_optional(pool)
        .await?
        .filter(|p| crate::media::valid_path(p))
        .map(|p| content.media_dir.join(p)),
        _ => None,
    };
    let template_overrides = templates::overrides(pool, agency, client.id).await?;
    Ok(Ok(Loaded {
        client,
        brand,
        platforms,
        slot_date,
        sequence,
        rule_name,
        template_overrides,
        logo,
    }))
}

/// What to ask the provider for, decided from what was loaded.
struct Decision {
    pillar: String,
    cta: Option<String>,
    hashtags: Vec<String>,
    request: GenerationRequest,
}

/// Decide (pure): the pillar and CTA by the item's turn in the week, the hashtags within every
/// platform's caps, and each platform's room for the caption.
fn decide(agency: Uuid, item: &Item, l: &Loaded) -> Decision {
    let turn = (week_index(l.slot_date) + l.sequence) as usize;
    let brand = &l.brand;
    let pillar = if brand.pillars.is_empty() {
        l.rule_name.clone().unwrap_or_else(|| brand.name.clone())
    } else {
        brand.pillars[turn % brand.pillars.len()].clone()
    };
    let cta = (!brand.ctas.is_empty()).then(|| brand.ctas[turn % brand.ctas.len()].clone());
    let cap = l
        .platforms
        .iter()
        .filter_map(|p| moderation::max_hashtags(*p))
        .min()
        .unwrap_or(MAX_HASHTAGS)
        .min(MAX_HASHTAGS);
    let hashtags = fit_hashtags(
        rank_hashtags(&brand.hashtag_sets, &pillar, cap),
        &l.platforms,
    );
    let hashtag_room = if hashtags.is_empty() {
        0
    } else {
        hashtags.join(" ").chars().count() + 2
    };
    let limits: Vec<PlatformLimits> = l
        .platforms
        .iter()
        .map(|p| {
            let link_room = match (&item.link_url, p) {
                (Some(link), Platform::X) => link.chars().count() + 2,
                _ => 0,
            };
            PlatformLimits {
                platform: *p,
                max_chars: moderation::max_length(*p).saturating_sub(hashtag_room + link_room),
                max_hashtags: moderation::max_hashtags(*p).unwrap_or(cap),
            }
        })
        .collect();
    let request = GenerationRequest {
        agency_id: agency,
        client_id: l.client.id,
        brand_name: brand.name.clone(),
        voice: brand.voice.clone(),
        tone: brand.tone.clone(),
        handle: brand.handle.clone(),
        topic: pillar.clone(),
        pillar: pillar.clone(),
        content_type: item.content_type,
        platforms: limits,
        banned_terms: brand.banned_terms.clone(),
        cta: cta.clone(),
        hashtags: hashtags.clone(),
        slot_date: l.slot_date,
        sequence: l.sequence,
        template_overrides: l.template_overrides.clone(),
    };
    Decision {
        pillar,
        cta,
        hashtags,
        request,
    }
}

/// Every variant with its moderation verdict, and the one chosen.
struct Moderated {
    verdicts: Vec<(VariantKind, String, Verdict)>,
    chosen: usize,
}

impl Moderated {
    fn chosen(&self) -> &(VariantKind, String, Verdict) {
        &self.verdicts[self.chosen]
    }
}

/// Decide (pure): moderate every variant for every target platform and choose the balanced one
/// when it passes, else any that passes, else the balanced one (blocked).
fn moderate_variants(generated: &Generated, d: &Decision, item: &Item, l: &Loaded) -> Moderated {
    let verdicts: Vec<(VariantKind, String, Verdict)> = generated
        .variants
        .iter()
        .map(|v| {
            let text = caption_with_cta(&v.caption, d.cta.as_deref());
            let verdict = moderation::check(
                &l.platforms,
                &moderation::Input {
                    text: &text,
                    hashtags: &d.hashtags,
                    link_url: item.link_url.as_deref(),
                    banned_terms: &l.brand.banned_terms,
                },
            );
            (v.kind, v.caption.clone(), verdict)
        })
        .collect();
    let chosen = verdicts
        .iter()
        .position(|v| v.0 == VariantKind::Balanced && v.2.passed())
        .or_else(|| verdicts.iter().position(|v| v.2.passed()))
        .unwrap_or(1);
    Moderated { verdicts, chosen }
}

/// Produce the item's images: one generated image cropped to each size, or (for image items
/// without a generator, or when it refuses) brand cards rendered off the async threads.
/// `Err`: a transient refusal of the generator, to wait out.
async fn produce_media(
    content: &Content,
    item_id: Uuid,
    item: &Item,
    l: &Loaded,
    d: &Decision,
    headline: &str,
) -> anyhow::Result<Result<Vec<StoredCard>, ProviderError>> {
    if item.content_type != ContentType::Image {
        return Ok(Ok(Vec::new()));
    }
    let mut sizes: Vec<CardSize> = Vec::new();
    for size in l.platforms.iter().map(|p| CardSize::for_platform(*p)) {
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    if let Some(images) = &content.images {
        let prompt = image_prompt(&l.brand, &d.pillar, headline);
        match images.generate(&prompt, image_aspect(&sizes)).await {
            Ok(picture) => {
                let media_dir = content.media_dir.clone();
                let stored =
                    cards::on_blocking_pool(move || store_generated(&picture, &sizes, &media_dir))
                        .await?;
                return Ok(Ok(stored));
            }
            Err(e) if e.is_transient() => return Ok(Err(e)),
            Err(e) => {
                tracing::warn!(item = %item_id, provider = %images.name(), error = %e,
                    "image generation failed; falling back to the brand card");
            }
        }
    }
    let brand = &l.brand;
    let palette = cards::Palette::from_hex(
        &brand.palette.primary,
        &brand.palette.secondary,
        &brand.palette.background,
        &brand.palette.text,
    )
    .map_err(|e| anyhow::anyhow!("brand palette: {e}"))?;
    let job = CardJob {
        sizes,
        headline: headline.to_owned(),
        footer: brand
            .handle
            .clone()
            .or_else(|| d.cta.clone())
            .unwrap_or_default(),
        palette,
        font: brand.font.clone(),
        logo: l.logo.clone(),
        media_dir: content.media_dir.clone(),
        fonts: content
            .fonts
            .clone()
            .ok_or_else(|| anyhow::anyhow!("this process was not set up to render cards"))?,
    };
    Ok(Ok(cards::on_blocking_pool(move || render_cards(job)).await?))
}

/// Load → decide → produce → write.
async fn prepare_and_write(
    pool: &PgPool,
    content: &Content,
    agency: Uuid,
    item_id: Uuid,
    item: &Item,
) -> anyhow::Result<Generation> {
    let loaded = match load(pool, content, agency, item_id, item).await? {
        Ok(l) => l,
        Err(stop) => {
            if let Some(why) = &stop.release {
                release(pool, agency, item_id, why).await?;
            }
            return Ok(stop.outcome);
        }
    };
    let decision = decide(agency, item, &loaded);
    let generated = match content.provider.generate(&decision.request).await {
        Ok(g) => g,
        Err(e) => {
            release(pool, agency, item_id, &e.to_string()).await?;
            return Ok(after_provider_failure(e));
        }
    };
    let moderated = moderate_variants(&generated, &decision, item, &loaded);
    let stored = match produce_media(
        content,
        item_id,
        item,
        &loaded,
        &decision,
        &generated.headline,
    )
    .await?
    {
        Ok(stored) => stored,
        Err(e) => {
            release(pool, agency, item_id, &e.to_string()).await?;
            return Ok(after_provider_failure(e));
        }
    };
    write(
        pool,
        content,
        agency,
        item_id,
        &loaded.client,
        &decision,
        &moderated,
        &stored,
    )
    .await
}

/// Write: the variants, the images and the item's result in one transaction, only while this
/// run still holds the item; [`items::generated`] sends it to review or approves it.
#[allow(clippy::too_many_arguments)]
async fn write(
    pool: &PgPool,
    content: &Content,
    agency: Uuid,
    item_id: Uuid,
    client: &Client,
    d: &Decision,
    m: &Moderated,
    stored: &[StoredCard],
) -> anyhow::Result<Generation> {
    let mut tx = pool.begin().await?;
    if !items::lock_generating(&mut tx, agency, item_id).await? {
        return Ok(Generation::Skipped(
            "the item changed while it was generated".into(),
        ));
    }
    let chosen = m.chosen();
    let passed = chosen.2.passed();
    for (kind, caption, verdict) in &m.verdicts {
        sqlx::query!(
            "INSERT INTO content_variants (item_id, agency_id, kind, caption, hashtags, cta, moderation_status, moderation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (item_id, kind) DO UPDATE SET caption = EXCLUDED.caption, hashtags = EXCLUDED.hashtags,
                 cta = EXCLUDED.cta, moderation_status = EXCLUDED.moderation_status, moderation = EXCLUDED.moderation",
            item_id,
            agency,
            kind.as_str(),
            caption,
            &d.hashtags,
            d.cta,
            if verdict.passed() { "pass" } else { "blocked" },
            verdict.to_json()
        )
        .execute(&mut *tx)
        .await?;
    }
    for card in stored {
        let media_id = sqlx::query_scalar!(
            r#"WITH ins AS (
                   INSERT INTO media_assets (id, agency_id, client_id, sha256, path, mime, width, height, bytes, purpose)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT (agency_id, sha256, mime) DO NOTHING
                   RETURNING id)
               SELECT id AS "id!" FROM ins
               UNION ALL
               SELECT id FROM media_assets WHERE agency_id = $2 AND sha256 = $4 AND mime = $6
               LIMIT 1"#,
            Uuid::now_v7(),
            agency,
            client.id,
            &card.sha256[..],
            card.path,
            card.mime,
            card.width as i32,
            card.height as i32,
            card.bytes as i64,
            card.purpose
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO content_item_media (item_id, media_id, agency_id, size_label) VALUES ($1, $2, $3, $4)
             ON CONFLICT (item_id, size_label) DO UPDATE SET media_id = EXCLUDED.media_id",
            item_id,
            media_id,
            agency,
            card.label
        )
        .execute(&mut *tx)
        .await?;
    }
    let moderation = json!({
        "reasons": chosen.2.reasons,
        "variants": m.verdicts.iter().map(|(k, _, v)| (k.as_str(), v.to_json())).collect::<BTreeMap<_, _>>(),
    });
    let state = items::generated(
        &mut tx,
        agency,
        item_id,
        &items::Generated {
            pillar: &d.pillar,
            chosen_variant: chosen.0.as_str(),
            caption: &chosen.1,
            hashtags: &d.hashtags,
            cta: d.cta.as_deref(),
            passed,
            moderation,
            generator: content.provider.name(),
            auto_approve: client.auto_approve,
        },
    )
    .await;
    let state = match state {
        Ok(state) => state,
        Err(items::Failure::Refused(_)) => {
            return Ok(Generation::Skipped(
                "the item changed while it was generated".into(),
            ));
        }
        Err(items::Failure::Database(e)) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(Generation::Generated {
        state: state.as_str().to_owned(),
        blocked: !passed,
    })
}

/// The `generate` job.
pub async fn run_generate(job: &JobContext, content: &Content) -> anyhow::Result<Outcome> {
    let agency = payload_uuid(job, "agency_id")?;
    let item = payload_uuid(job, "item_id")?;
    Ok(match generate(&job.pool, content, agency, item).await? {
        Generation::Generated { state, blocked } => {
            tracing::info!(%item, %state, blocked, "item generated");
            Outcome::Done
        }
        Generation::Skipped(why) => {
            tracing::info!(%item, why, "generation skipped");
            Outcome::Done
        }
        Generation::Retry { after, reason } => Outcome::RetryIn {
            delay: after.unwrap_or_else(|| GENERATE_BACKOFF.delay(job.job.attempt)),
            reason,
        },
        Generation::Postpone { after, reason } => Outcome::Postpone {
            delay: after,
            reason,
        },
        Generation::Failed(reason) => Outcome::Fail(reason),
    })
}
