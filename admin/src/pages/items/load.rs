//! Reading items: an item with its variants, target accounts and images, as the console shows
//! it, in one query however many are asked for.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use sqlx::types::Json;
use uuid::Uuid;

use autosocial_core::content::moderation::{self, Reason};
use autosocial_core::domain::Platform;
use autosocial_core::publishing;

use crate::app::AppState;
use crate::error::{AppError, AppResult};

use super::preview::platform_length;

/// An item with what the console shows about it.
pub struct Item {
    pub id: Uuid,
    pub client_id: Uuid,
    pub client_name: String,
    pub tz: Tz,
    pub state: String,
    pub source: String,
    pub slot_at: DateTime<Utc>,
    pub chosen_variant: Option<String>,
    pub caption: String,
    pub hashtags: Vec<String>,
    pub cta: Option<String>,
    pub link_url: Option<String>,
    pub moderation_status: String,
    pub reasons: Vec<Reason>,
    pub rejection_reason: Option<String>,
    pub pillar: Option<String>,
    pub generation_error: Option<String>,
    pub variants: Vec<Variant>,
    pub targets: Vec<Target>,
    pub images: Vec<Image>,
    /// The text as each target platform gets it, with its length as the platform counts it:
    /// worked out on the first preview (an item in [`ItemCache`] is shown many times).
    platform_texts: std::sync::OnceLock<Vec<(Platform, String, usize)>>,
}

impl Item {
    /// The platforms of its targets, each once (targets are loaded ordered by platform).
    pub(super) fn platforms(&self) -> Vec<Platform> {
        let mut platforms: Vec<Platform> = self.targets.iter().map(|t| t.platform).collect();
        platforms.dedup();
        platforms
    }

    /// The text `platform` gets and its length as that platform counts it.
    pub(super) fn platform_text(&self, platform: Platform) -> (&str, usize) {
        let texts = self.platform_texts.get_or_init(|| {
            let body = publishing::compose_text(&self.caption, self.cta.as_deref(), &[]);
            self.platforms()
                .into_iter()
                .map(|p| {
                    let text = moderation::compose(
                        p,
                        &moderation::Input {
                            text: &body,
                            hashtags: &self.hashtags,
                            link_url: self.link_url.as_deref(),
                            banned_terms: &[],
                        },
                    );
                    let length = platform_length(&text, p);
                    (p, text, length)
                })
                .collect()
        });
        texts
            .iter()
            .find(|t| t.0 == platform)
            .map(|t| (t.1.as_str(), t.2))
            .unwrap_or(("", 0))
    }
}

pub struct Variant {
    pub kind: String,
    pub caption: String,
    pub moderation_status: String,
    pub reasons: Vec<Reason>,
}

pub struct Target {
    pub account_id: Uuid,
    pub platform: Platform,
    pub display_name: String,
}

pub struct Image {
    pub label: String,
    pub path: String,
    pub width: i32,
    pub height: i32,
}

fn reasons_of(moderation: &serde_json::Value) -> Vec<Reason> {
    match moderation.get("reasons") {
        Some(r) if !r.is_null() => serde_json::from_value(r.clone()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The client's zone; a stored zone that does not parse (it cannot: onboarding validates it)
/// falls back to UTC, which the page then names.
pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::UTC)
}

/// A variant, target or image as the item query aggregates it (JSON).
#[derive(Debug, Deserialize)]
struct VariantRow {
    kind: String,
    caption: String,
    moderation_status: String,
    moderation: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct TargetRow {
    id: Uuid,
    platform: Platform,
    display_name: String,
}

#[derive(Debug, Deserialize)]
struct ImageRow {
    size_label: String,
    path: String,
    width: i32,
    height: i32,
}

/// The agency's items with these ids (in the order given; unknown or foreign ids are left out),
/// with their variants, target accounts and images: one query, so a page of the review queue
/// costs one round trip for its items however many it shows.
pub async fn load(state: &AppState, agency: Uuid, ids: &[Uuid]) -> AppResult<Vec<Item>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"SELECT i.id, i.client_id, c.name AS client_name, c.timezone, i.state, i.source, i.slot_at,
                  i.chosen_variant, i.caption, i.hashtags, i.cta, i.link_url, i.moderation_status,
                  i.moderation, i.rejection_reason, i.pillar, i.generation_error,
                  coalesce((SELECT json_agg(json_build_object('kind', v.kind, 'caption', v.caption,
                                       'moderation_status', v.moderation_status, 'moderation', v.moderation)
                                   ORDER BY array_position(ARRAY['conservative', 'balanced', 'bold'], v.kind))
                            FROM content_variants v WHERE v.item_id = i.id AND v.agency_id = i.agency_id),
                           '[]'::json) AS "variants!: Json<Vec<VariantRow>>",
                  coalesce((SELECT json_agg(json_build_object('id', a.id, 'platform', a.platform,
                                       'display_name', a.display_name)
                                   ORDER BY a.platform, a.display_name, a.id)
                            FROM content_item_targets t
                            JOIN social_accounts a ON a.id = t.account_id AND a.agency_id = t.agency_id
                            WHERE t.item_id = i.id AND t.agency_id = i.agency_id),
                           '[]'::json) AS "targets!: Json<Vec<TargetRow>>",
                  coalesce((SELECT json_agg(json_build_object('size_label', m.size_label, 'path', a.path,
                                       'width', a.width, 'height', a.height)
                                   ORDER BY m.size_label)
                            FROM content_item_media m
                            JOIN media_assets a ON a.id = m.media_id AND a.agency_id = m.agency_id
                            WHERE m.item_id = i.id AND m.agency_id = i.agency_id),
                           '[]'::json) AS "images!: Json<Vec<ImageRow>>"
           FROM content_items i JOIN clients c ON c.id = i.client_id AND c.agency_id = i.agency_id
           WHERE i.agency_id = $1 AND i.id = ANY($2)"#,
        agency,
        ids
    )
    .fetch_all(&state.pool)
    .await?;
    let mut by_id: HashMap<Uuid, Item> = rows
        .into_iter()
        .map(|r| {
            let item = Item {
                id: r.id,
                client_id: r.client_id,
                client_name: r.client_name,
                tz: zone(&r.timezone),
                state: r.state,
                source: r.source,
                slot_at: r.slot_at,
                chosen_variant: r.chosen_variant,
                caption: r.caption,
                hashtags: r.hashtags,
                cta: r.cta,
                link_url: r.link_url,
                moderation_status: r.moderation_status,
                reasons: reasons_of(&r.moderation),
                rejection_reason: r.rejection_reason,
                pillar: r.pillar,
                generation_error: r.generation_error,
                variants: r
                    .variants
                    .0
                    .into_iter()
                    .map(|v| Variant {
                        reasons: reasons_of(&v.moderation),
                        kind: v.kind,
                        caption: v.caption,
                        moderation_status: v.moderation_status,
                    })
                    .collect(),
                targets: r
                    .targets
                    .0
                    .into_iter()
                    .map(|t| Target {
                        account_id: t.id,
                        platform: t.platform,
                        display_name: t.display_name,
                    })
                    .collect(),
                images: r
                    .images
                    .0
                    .into_iter()
                    .map(|m| Image {
                        label: m.size_label,
                        path: m.path,
                        width: m.width,
                        height: m.height,
                    })
                    .collect(),
                platform_texts: Default::default(),
            };
            (r.id, item)
        })
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// One item of the agency, or 404.
pub async fn load_one(state: &AppState, agency: Uuid, id: Uuid) -> AppResult<Item> {
    load(state, agency, &[id])
        .await?
        .pop()
        .ok_or(AppError::NotFound)
}
