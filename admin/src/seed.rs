//! Creating agencies and users (the CLI's `user create`) and the demo's seed data.

use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::audit::{self, Actor, Entry};
use autosocial_core::domain::Role;
use autosocial_core::password;

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email `{0}` is not an email address")]
    BadEmail(String),
    #[error("agency name must be 1-200 characters")]
    BadAgency,
    #[error("password {0}")]
    WeakPassword(String),
    #[error("{0} is already a member of agency `{1}`")]
    AlreadyMember(String, String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CreateUserError {
    fn from(e: sqlx::Error) -> Self {
        CreateUserError::Other(e.into())
    }
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// Create (or reuse) the agency and (or reuse) the user, and make them a member with `role`.
/// An existing user keeps their password; a new one gets `password`.
pub async fn create_user(
    pool: &PgPool,
    agency_name: &str,
    email: &str,
    role: Role,
    password: &str,
) -> Result<Uuid, CreateUserError> {
    let email = email.trim();
    let agency_name = agency_name.trim();
    if !valid_email(email) {
        return Err(CreateUserError::BadEmail(email.to_owned()));
    }
    if agency_name.is_empty() || agency_name.chars().count() > 200 {
        return Err(CreateUserError::BadAgency);
    }
    password::check_strength(password).map_err(CreateUserError::WeakPassword)?;
    let hash = {
        let p = password.to_owned();
        tokio::task::spawn_blocking(move || password::hash(&p))
            .await
            .map_err(anyhow::Error::from)??
    };
    let mut tx = pool.begin().await?;
    let agency_id = sqlx::query_scalar!(
        "INSERT INTO agencies (id, name) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        Uuid::now_v7(),
        agency_name
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO agency_settings (agency_id) VALUES ($1) ON CONFLICT DO NOTHING",
        agency_id
    )
    .execute(&mut *tx)
    .await?;
    let user_id = sqlx::query_scalar!(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2::text::citext, $3)
         ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id",
        Uuid::now_v7(),
        email,
        hash
    )
    .fetch_one(&mut *tx)
    .await?;
    let inserted = sqlx::query!(
        "INSERT INTO memberships (agency_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        agency_id,
        user_id,
        role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(CreateUserError::AlreadyMember(
            email.to_owned(),
            agency_name.to_owned(),
        ));
    }
    audit::append(
        &mut tx,
        &Actor::system("cli"),
        Entry::new(Some(agency_id), "user.create")
            .target("user", user_id)
            .details(serde_json::json!({ "email": email, "role": role })),
    )
    .await?;
    tx.commit().await?;
    Ok(user_id)
}

pub const DEMO_AGENCY: &str = "Demo Agency";
pub const DEMO_EMAIL: &str = "owner@demo.autosocial.test";

/// Seed the demo agency, its owner (a fresh password every run, returned to be printed once)
/// and a few clients. Safe to run again.
pub async fn demo(pool: &PgPool) -> anyhow::Result<String> {
    let password = autosocial_core::secret::random_token(12);
    match create_user(pool, DEMO_AGENCY, DEMO_EMAIL, Role::Owner, &password).await {
        Ok(_) => {}
        Err(CreateUserError::AlreadyMember(..)) => {
            let hash = {
                let p = password.clone();
                tokio::task::spawn_blocking(move || password::hash(&p)).await??
            };
            sqlx::query!(
                "UPDATE users SET password_hash = $2 WHERE email = $1::text::citext",
                DEMO_EMAIL,
                hash
            )
            .execute(pool)
            .await?;
        }
        Err(e) => return Err(e.into()),
    }
    let agency_id = sqlx::query_scalar!("SELECT id FROM agencies WHERE name = $1", DEMO_AGENCY)
        .fetch_one(pool)
        .await?;
    // the demo connects accounts on the local sandbox platform
    sqlx::query!(
        "UPDATE agency_settings SET platforms_enabled = ARRAY['sandbox', 'facebook', 'instagram', 'tiktok', 'linkedin', 'x']
         WHERE agency_id = $1",
        agency_id
    )
    .execute(pool)
    .await?;
    for (name, tz) in [
        ("Bakery Bloom", "Europe/Berlin"),
        ("Harbor Fitness", "America/New_York"),
        ("Koala Coffee", "Australia/Sydney"),
    ] {
        let id = Uuid::now_v7();
        let mut tx = pool.begin().await?;
        let r = sqlx::query!(
            "INSERT INTO clients (id, agency_id, name, timezone) VALUES ($1, $2, $3, $4) ON CONFLICT (agency_id, name) DO NOTHING",
            id,
            agency_id,
            name,
            tz
        )
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 1 {
            sqlx::query!(
                "INSERT INTO brand_settings (client_id, agency_id) VALUES ($1, $2)",
                id,
                agency_id
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    Ok(password)
}

/// Connect a sandbox account for each demo client through the sandbox's real OAuth flow (consent
/// auto-approved for the moment), so the demo starts with connected accounts. Each run
/// reconnects them: the sandbox forgets its grants when it restarts.
pub async fn connect_demo_accounts(
    pool: &PgPool,
    vault: &autosocial_core::vault::Vault,
    platforms: &autosocial_core::platforms::PlatformsConfig,
) -> anyhow::Result<usize> {
    use autosocial_core::domain::Platform;
    use autosocial_core::platforms;
    let (Some(base), Some(connector), Some(app)) = (
        platforms.sandbox_url.clone(),
        platforms::connector(Platform::Sandbox, platforms),
        platforms.app(Platform::Sandbox),
    ) else {
        return Ok(0);
    };
    let http = platforms.http.clone();
    let knobs_url = base.join("/_sandbox/knobs")?;
    let knobs: serde_json::Value = http
        .get(knobs_url.clone())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut approving = knobs.clone();
    approving["auto_approve"] = serde_json::json!(true);
    http.post(knobs_url.clone())
        .json(&approving)
        .send()
        .await?
        .error_for_status()?;
    let result = async {
        let clients = sqlx::query!(
            "SELECT c.id, c.agency_id, c.name FROM clients c JOIN agencies a ON a.id = c.agency_id WHERE a.name = $1 ORDER BY c.name",
            DEMO_AGENCY
        )
        .fetch_all(pool)
        .await?;
        for c in &clients {
            let hint = c.name.to_lowercase().replace(' ', "-");
            let (tokens, info) =
                platforms::connect_headless(connector.as_ref(), &app, &http, &hint).await?;
            let mut tx = pool.begin().await?;
            autosocial_core::accounts::store_connection(&mut tx, vault, c.agency_id, c.id, Platform::Sandbox, &info, &tokens, connector.scopes()).await?;
            tx.commit().await?;
        }
        anyhow::Ok(clients.len())
    }
    .await;
    http.post(knobs_url)
        .json(&knobs)
        .send()
        .await?
        .error_for_status()?;
    result
}

/// Three approved posts per demo client with a sandbox account, due over the next minutes
/// (staggered), so the demo shows them being published live. Skipped for a client that already
/// has posts scheduled in the future. Returns how many publications were scheduled.
pub async fn schedule_demo_posts(pool: &PgPool) -> anyhow::Result<usize> {
    let accounts = sqlx::query!(
        "SELECT DISTINCT ON (c.id) c.id AS client_id, c.agency_id, c.name, s.id AS account_id
         FROM clients c JOIN agencies a ON a.id = c.agency_id
         JOIN social_accounts s ON s.client_id = c.id AND s.platform = 'sandbox' AND s.status = 'active'
         WHERE a.name = $1 AND NOT EXISTS (
             SELECT 1 FROM publications p WHERE p.client_id = c.id AND p.state = 'scheduled' AND p.scheduled_at > now())
         ORDER BY c.id, s.connected_at",
        DEMO_AGENCY
    )
    .fetch_all(pool)
    .await?;
    let mut scheduled = 0;
    for (n, a) in accounts.iter().enumerate() {
        for k in 0..3i32 {
            let mut tx = pool.begin().await?;
            let item = Uuid::now_v7();
            let caption = format!(
                "{}: demo post {} of 3, scheduled by the AutoSocial demo.",
                a.name,
                k + 1
            );
            sqlx::query!(
                "INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, caption, hashtags,
                                            moderation_status, generator)
                 VALUES ($1, $2, $3, 'manual', 'pending_review', now() + make_interval(secs => $4), 'text', $5,
                         ARRAY['autosocial', 'demo'], 'pass', 'demo')",
                item,
                a.agency_id,
                a.client_id,
                f64::from(40 + 60 * k + 15 * n as i32),
                caption
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
                item,
                a.account_id,
                a.agency_id
            )
            .execute(&mut *tx)
            .await?;
            scheduled +=
                autosocial_core::publishing::approve(&mut tx, a.agency_id, item, None, None)
                    .await
                    .map_err(|e| anyhow::anyhow!("approving a demo post: {e}"))?;
            tx.commit().await?;
        }
    }
    Ok(scheduled)
}

/// Print each demo publication's state changes until interrupted (the demo's live view until
/// the console shows it).
pub async fn watch_demo(pool: &PgPool) -> anyhow::Result<()> {
    let mut seen: std::collections::HashMap<Uuid, String> = std::collections::HashMap::new();
    loop {
        let rows = sqlx::query!(
            r#"SELECT p.id, p.state, p.platform, p.scheduled_at, p.platform_post_id, p.last_error, c.name AS client
               FROM publications p JOIN clients c ON c.id = p.client_id JOIN agencies a ON a.id = p.agency_id
               WHERE a.name = $1 ORDER BY p.scheduled_at"#,
            DEMO_AGENCY
        )
        .fetch_all(pool)
        .await?;
        for r in rows {
            if seen.get(&r.id) == Some(&r.state) {
                continue;
            }
            let when = r.scheduled_at.format("%H:%M:%S UTC");
            let detail = match r.state.as_str() {
                "published" => format!("post {}", r.platform_post_id.unwrap_or_default()),
                "scheduled" => format!("due {when}"),
                _ => r.last_error.unwrap_or_default(),
            };
            println!(
                "{}  {:<16} {:<9} {:<12} {detail}",
                chrono::Utc::now().format("%H:%M:%S"),
                r.client,
                r.platform,
                r.state
            );
            seen.insert(r.id, r.state);
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// A demo client's brand: voice, tone, pillars, CTAs, banned terms, hashtag sets, colours
/// (primary, secondary, background, text), handle.
struct DemoBrand {
    client: &'static str,
    voice: &'static str,
    tone: &'static str,
    pillars: &'static [&'static str],
    ctas: &'static [&'static str],
    banned: &'static [&'static str],
    hashtags: &'static [(&'static str, &'static [&'static str])],
    colors: [&'static str; 4],
    font: &'static str,
    handle: &'static str,
}

const DEMO_BRANDS: [DemoBrand; 3] = [
    DemoBrand {
        client: "Bakery Bloom",
        voice: "A neighbourhood bakery in Berlin that bakes everything by hand before sunrise. Friendly, sensory, proud of slow fermentation; speaks to locals who care where their bread comes from.",
        tone: "warm, cosy, a little playful",
        pillars: &[
            "Sourdough and slow baking",
            "Seasonal pastries",
            "Behind the counter at dawn",
            "Local farmers and flour",
        ],
        ctas: &[
            "Order ahead at bakerybloom.de",
            "Come by before the croissants are gone",
        ],
        banned: &["cheap", "factory-made", "diet"],
        hashtags: &[
            ("bread", &["#sourdough", "#realbread", "#bakery"]),
            ("berlin", &["#berlinfood", "#kiez"]),
        ],
        colors: ["#b45309", "#f59e0b", "#fff7ed", "#431407"],
        font: "DejaVuSerif-Bold",
        handle: "@bakerybloom",
    },
    DemoBrand {
        client: "Harbor Fitness",
        voice: "A community gym by the harbor in New York. Direct, encouraging coaching voice; celebrates effort over looks and never shames anyone.",
        tone: "energetic, motivating, no-nonsense",
        pillars: &[
            "Workout of the day",
            "Member wins",
            "Recovery and mobility",
            "Coach tips",
        ],
        ctas: &["Book a free trial class", "Join us at 6 am tomorrow"],
        banned: &["no pain no gain", "bikini body", "guaranteed results"],
        hashtags: &[
            ("training", &["#strengthtraining", "#workout", "#fitness"]),
            ("community", &["#harborfitness", "#nycfitness"]),
        ],
        colors: ["#0f766e", "#14b8a6", "#0f172a", "#f8fafc"],
        font: "DejaVuSans-Bold",
        handle: "@harborfitness",
    },
    DemoBrand {
        client: "Koala Coffee",
        voice: "A specialty coffee roaster in Sydney with a laid-back, curious voice; loves origin stories and brewing nerdery, explains without gatekeeping.",
        tone: "relaxed, curious, sunny",
        pillars: &[
            "Single-origin spotlights",
            "Brewing guides",
            "Cafe life in Sydney",
            "Sustainability at the roastery",
        ],
        ctas: &[
            "Grab a bag at koalacoffee.au",
            "Swing by the roastery this weekend",
        ],
        banned: &["instant coffee", "cheapest"],
        hashtags: &[
            (
                "coffee",
                &["#specialtycoffee", "#coffeeroaster", "#pourover"],
            ),
            ("sydney", &["#sydneycafe", "#sydneyeats"]),
        ],
        colors: ["#166534", "#84cc16", "#fefce8", "#1c1917"],
        font: "DejaVuSans-Bold",
        handle: "@koalacoffee",
    },
];

/// The demo's content: each demo client's brand, one rule posting twice a day (09:00 and 17:00
/// local, image cards and text) to its sandbox accounts, and a plan job, so the workers plan
/// and generate a week of posts as soon as they start. Safe to run again: brands are
/// overwritten, the rule is made once and gains newly connected accounts.
pub async fn seed_demo_content(pool: &PgPool) -> anyhow::Result<()> {
    use autosocial_core::content::{brand, generate};
    let agency_id = sqlx::query_scalar!("SELECT id FROM agencies WHERE name = $1", DEMO_AGENCY)
        .fetch_one(pool)
        .await?;
    let actor = Actor::system("demo-seed");
    for b in &DEMO_BRANDS {
        let Some(client_id) = sqlx::query_scalar!(
            "SELECT id FROM clients WHERE agency_id = $1 AND name = $2",
            agency_id,
            b.client
        )
        .fetch_optional(pool)
        .await?
        else {
            continue;
        };
        let client = brand::client(pool, agency_id, client_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("demo client {} vanished", b.client))?;
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        let hashtag_sets: serde_json::Map<String, serde_json::Value> = b
            .hashtags
            .iter()
            .map(|(name, tags)| ((*name).to_owned(), serde_json::json!(tags)))
            .collect();
        let mut tx = pool.begin().await?;
        sqlx::query!(
            "INSERT INTO brand_settings (client_id, agency_id, voice, tone, pillars, ctas, banned_terms, hashtag_sets,
                                         color_primary, color_secondary, color_background, color_text, font, handle)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (client_id) DO UPDATE SET
                 voice = EXCLUDED.voice, tone = EXCLUDED.tone, pillars = EXCLUDED.pillars, ctas = EXCLUDED.ctas,
                 banned_terms = EXCLUDED.banned_terms, hashtag_sets = EXCLUDED.hashtag_sets,
                 color_primary = EXCLUDED.color_primary, color_secondary = EXCLUDED.color_secondary,
                 color_background = EXCLUDED.color_background, color_text = EXCLUDED.color_text,
                 font = EXCLUDED.font, handle = EXCLUDED.handle, updated_at = now()
             WHERE brand_settings.agency_id = EXCLUDED.agency_id",
            client_id,
            agency_id,
            b.voice,
            b.tone,
            &strings(b.pillars),
            &strings(b.ctas),
            &strings(b.banned),
            serde_json::Value::Object(hashtag_sets),
            b.colors[0],
            b.colors[1],
            b.colors[2],
            b.colors[3],
            b.font,
            b.handle,
        )
        .execute(&mut *tx)
        .await?;
        let existing = sqlx::query_scalar!(
            "SELECT id FROM content_rules WHERE agency_id = $1 AND client_id = $2 AND name = 'Twice daily'",
            agency_id,
            client_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let rule_id = match existing {
            Some(id) => id,
            None => {
                let id = Uuid::now_v7();
                sqlx::query!(
                    "INSERT INTO content_rules (id, agency_id, client_id, name, enabled, frequency, posts_per_period,
                                                days_of_week, local_times, content_types, min_gap_minutes)
                     VALUES ($1, $2, $3, 'Twice daily', true, 'per_day', 2, ARRAY[1,2,3,4,5,6,7]::smallint[],
                             ARRAY['09:00', '17:00']::time[], ARRAY['image', 'text'], 60)",
                    id,
                    agency_id,
                    client_id
                )
                .execute(&mut *tx)
                .await?;
                audit::append(
                    &mut tx,
                    &actor,
                    Entry::new(Some(agency_id), "rule.create")
                        .target("content_rule", id)
                        .details(
                            serde_json::json!({ "client_id": client_id, "name": "Twice daily" }),
                        ),
                )
                .await?;
                id
            }
        };
        sqlx::query!(
            "INSERT INTO content_rule_accounts (rule_id, account_id, agency_id)
             SELECT $1, a.id, a.agency_id FROM social_accounts a
             WHERE a.client_id = $2 AND a.agency_id = $3 AND a.platform = 'sandbox' AND a.status = 'active'
             ON CONFLICT DO NOTHING",
            rule_id,
            client_id,
            agency_id
        )
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            &actor,
            Entry::new(Some(agency_id), "brand.update").target("client", client_id),
        )
        .await?;
        let now = chrono::Utc::now();
        autosocial_core::queue::enqueue(
            &mut tx,
            &generate::plan_job(agency_id, client_id, client.timezone, now),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn emails_are_checked() {
        assert!(valid_email("a@b.co"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("ab.co"));
        assert!(!valid_email("a b@c.co"));
        assert!(!valid_email("@c.co"));
    }
}
