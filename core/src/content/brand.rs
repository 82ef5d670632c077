//! A client's brand (voice, pillars, CTAs, banned terms, hashtag sets, palette) and content
//! rules, read for planning and generation. A client without a `brand_settings` row gets the
//! schema's defaults and its own name as the brand.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use chrono_tz::Tz;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::provider::ContentType;
use super::schedule::{self, BadTimezone, Frequency, RuleSpec};
use crate::domain::{ClientStatus, Platform};

/// The client fields planning and generation need.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub name: String,
    pub status: ClientStatus,
    pub timezone: Tz,
    pub auto_approve: bool,
}

/// Load a client (`None` when it is not this agency's). A stored time zone that is not a valid
/// IANA name is an error naming `clients.timezone`.
pub async fn client(
    db: impl PgExecutor<'_>,
    agency: Uuid,
    client: Uuid,
) -> anyhow::Result<Option<Client>> {
    let Some(r) = sqlx::query!(
        r#"SELECT id, agency_id, name, status AS "status: ClientStatus", timezone, auto_approve
           FROM clients WHERE id = $1 AND agency_id = $2"#,
        client,
        agency
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let timezone = schedule::parse_timezone("clients.timezone", &r.timezone)
        .map_err(|e: BadTimezone| anyhow::anyhow!("client {}: {e}", r.id))?;
    Ok(Some(Client {
        id: r.id,
        agency_id: r.agency_id,
        name: r.name,
        status: r.status,
        timezone,
        auto_approve: r.auto_approve,
    }))
}

/// The terms a client's posts may not use (none without brand settings); `None`: no such
/// client of `agency`. What moderating a draft needs, in one statement.
pub async fn banned_terms(
    db: impl PgExecutor<'_>,
    agency: Uuid,
    client: Uuid,
) -> sqlx::Result<Option<Vec<String>>> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(b.banned_terms, '{}') AS "terms!"
           FROM clients c LEFT JOIN brand_settings b ON b.client_id = c.id AND b.agency_id = c.agency_id
           WHERE c.id = $1 AND c.agency_id = $2"#,
        client,
        agency
    )
    .fetch_optional(db)
    .await
}

/// Brand colours as `#rrggbb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    pub primary: String,
    pub secondary: String,
    pub background: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Brand {
    /// The client's name: what `{brand}` stands for.
    pub name: String,
    pub voice: String,
    pub tone: String,
    pub pillars: Vec<String>,
    pub ctas: Vec<String>,
    pub banned_terms: Vec<String>,
    /// Set name → hashtags, in the order the sets are named.
    pub hashtag_sets: BTreeMap<String, Vec<String>>,
    pub palette: Palette,
    pub logo_media_id: Option<Uuid>,
    pub font: Option<String>,
    pub handle: Option<String>,
}

/// The client's brand, with the schema's defaults when none was set.
pub async fn brand(db: impl PgExecutor<'_>, client: &Client) -> anyhow::Result<Brand> {
    let row = sqlx::query!(
        "SELECT voice, tone, pillars, ctas, banned_terms, hashtag_sets, color_primary, color_secondary,
                color_background, color_text, logo_media_id, font, handle
         FROM brand_settings WHERE client_id = $1 AND agency_id = $2",
        client.id,
        client.agency_id
    )
    .fetch_optional(db)
    .await?;
    let Some(r) = row else {
        return Ok(Brand {
            name: client.name.clone(),
            voice: String::new(),
            tone: String::new(),
            pillars: Vec::new(),
            ctas: Vec::new(),
            banned_terms: Vec::new(),
            hashtag_sets: BTreeMap::new(),
            palette: Palette {
                primary: "#1d4ed8".into(),
                secondary: "#9333ea".into(),
                background: "#ffffff".into(),
                text: "#111827".into(),
            },
            logo_media_id: None,
            font: None,
            handle: None,
        });
    };
    // the column is a JSON object by constraint; values that are not lists of strings are skipped
    let hashtag_sets = match r.hashtag_sets {
        serde_json::Value::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| {
                serde_json::from_value::<Vec<String>>(v)
                    .ok()
                    .map(|v| (k, v))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let clean = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    Ok(Brand {
        name: client.name.clone(),
        voice: r.voice,
        tone: r.tone,
        pillars: clean(r.pillars),
        ctas: clean(r.ctas),
        banned_terms: clean(r.banned_terms),
        hashtag_sets,
        palette: Palette {
            primary: r.color_primary,
            secondary: r.color_secondary,
            background: r.color_background,
            text: r.color_text,
        },
        logo_media_id: r.logo_media_id,
        font: r.font,
        handle: r.handle,
    })
}

/// An account a rule posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleAccount {
    pub id: Uuid,
    pub platform: Platform,
}

/// An enabled content rule with its active accounts.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    pub spec: RuleSpec,
    pub content_types: Vec<ContentType>,
    /// Only accounts that are `active`; paused or disconnected ones and those that need
    /// reconnecting get no new posts.
    pub accounts: Vec<RuleAccount>,
}

impl Rule {
    pub fn min_gap(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.spec.min_gap_minutes))
    }
}

/// The client's enabled rules, each with its active accounts (possibly none).
pub async fn rules(db: impl PgExecutor<'_>, client: &Client) -> anyhow::Result<Vec<Rule>> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.name, r.frequency, r.posts_per_period, r.days_of_week, r.local_times,
                  r.content_types, r.min_gap_minutes,
                  coalesce(array_agg(a.id ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL), '{}') AS "account_ids!: Vec<Uuid>",
                  coalesce(array_agg(a.platform ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL), '{}') AS "platforms!: Vec<String>"
           FROM content_rules r
           LEFT JOIN content_rule_accounts ra ON ra.rule_id = r.id AND ra.agency_id = r.agency_id
           LEFT JOIN social_accounts a ON a.id = ra.account_id AND a.agency_id = r.agency_id
                                      AND a.client_id = r.client_id AND a.status = 'active'
           WHERE r.client_id = $1 AND r.agency_id = $2 AND r.enabled
           GROUP BY r.id
           ORDER BY r.id"#,
        client.id,
        client.agency_id
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            let frequency: Frequency = r
                .frequency
                .parse()
                .map_err(|e: String| anyhow::anyhow!("rule {}: {e}", r.id))?;
            let content_types = r
                .content_types
                .iter()
                .map(|c| c.parse::<ContentType>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("rule {}: content_types: {e}", r.id))?;
            let accounts = r
                .account_ids
                .iter()
                .zip(&r.platforms)
                .map(|(id, p)| {
                    p.parse::<Platform>()
                        .map(|platform| RuleAccount { id: *id, platform })
                        .map_err(|e| anyhow::anyhow!("account {id}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Rule {
                id: r.id,
                name: r.name,
                spec: RuleSpec {
                    frequency,
                    posts_per_period: r.posts_per_period.max(0) as u32,
                    days_of_week: r.days_of_week.iter().map(|d| *d as u8).collect(),
                    local_times: r.local_times,
                    min_gap_minutes: r.min_gap_minutes.max(0) as u32,
                },
                content_types,
                accounts,
            })
        })
        .collect()
}
