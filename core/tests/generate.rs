//! Planning and generation against the real database: a week of slots per rule for active
//! accounts only, nothing planned twice (even by concurrent planners), gaps between posts on
//! one account, and generated items with moderated variants, hashtags, CTAs and image cards.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use autosocial_core::content::generate::{self, Content, ContentArgs, Generation};
use autosocial_core::content::provider::{Generated, GenerationRequest, Provider, ProviderError};
use autosocial_core::content::templates;
use autosocial_core::domain::ItemState;
use autosocial_core::limits::Smoother;
use autosocial_core::testing::build;
use chrono::{TimeDelta, Utc};
use futures::future::BoxFuture;
use sqlx::PgPool;
use uuid::Uuid;

fn templates_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../templates"))
}

fn content(pool: &PgPool, media: &tempfile::TempDir) -> Content {
    ContentArgs::with_dirs(media.path().to_owned(), templates_dir())
        .build(pool.clone(), Smoother::new(pool.clone(), None), true)
        .expect("shipped templates and fonts load")
}

async fn account(pool: &PgPool, agency: Uuid, client: Uuid, platform: &str, status: &str) -> Uuid {
    build::account(agency, client)
        .platform(platform.parse().unwrap())
        .tokens(vec![0], None, "test")
        .status(status.parse().unwrap(), None)
        .insert(pool)
        .await
}

struct RuleDef<'a> {
    frequency: &'a str,
    per_period: i32,
    days: &'a [i16],
    times: &'a [&'a str],
    types: &'a [&'a str],
    gap: i32,
}

const DAILY_TEXT: RuleDef<'static> = RuleDef {
    frequency: "per_day",
    per_period: 1,
    days: &[1, 2, 3, 4, 5, 6, 7],
    times: &["09:00"],
    types: &["text"],
    gap: 60,
};

async fn rule(
    pool: &PgPool,
    agency: Uuid,
    client: Uuid,
    def: &RuleDef<'_>,
    accounts: &[Uuid],
) -> Uuid {
    let id = Uuid::now_v7();
    let times: Vec<chrono::NaiveTime> = def
        .times
        .iter()
        .map(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M").unwrap())
        .collect();
    sqlx::query(
        "INSERT INTO content_rules (id, agency_id, client_id, name, frequency, posts_per_period, days_of_week, local_times, content_types, min_gap_minutes)
         VALUES ($1, $2, $3, 'Weekly tips', $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(agency)
    .bind(client)
    .bind(def.frequency)
    .bind(def.per_period)
    .bind(def.days)
    .bind(&times)
    .bind(def.types)
    .bind(def.gap)
    .execute(pool)
    .await
    .unwrap();
    for a in accounts {
        sqlx::query("INSERT INTO content_rule_accounts (rule_id, account_id, agency_id) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(a)
            .bind(agency)
            .execute(pool)
            .await
            .unwrap();
    }
    id
}

async fn brand(pool: &PgPool, agency: Uuid, client: Uuid, banned: &[&str]) {
    sqlx::query(
        r##"INSERT INTO brand_settings (client_id, agency_id, voice, tone, pillars, ctas, banned_terms, hashtag_sets, handle)
           VALUES ($1, $2, 'Warm and practical', 'friendly', ARRAY['Home energy savings', 'Solar myths', 'Customer stories'],
                   ARRAY['Book a free survey today.', 'Ask us anything.'], $3,
                   '{"energy": ["#Energy", "#savings", "#SAVINGS", "#HomeEnergy"], "brand": ["#Acme", "#AcmeSolar", "#bad tag"]}'::jsonb,
                   '@acme')"##,
    )
    .bind(client)
    .bind(agency)
    .bind(banned)
    .execute(pool)
    .await
    .unwrap();
}

async fn setup(pool: &PgPool, tz: &str) -> (Uuid, Uuid) {
    let (agency, client) = autosocial_core::testing::tenant(pool).await;
    sqlx::query("UPDATE clients SET timezone = $2 WHERE id = $1")
        .bind(client)
        .bind(tz)
        .execute(pool)
        .await
        .unwrap();
    (agency, client)
}

async fn count(pool: &PgPool, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn plan_makes_a_week_of_items_for_active_accounts_only_and_never_twice(pool: PgPool) {
    let (agency, client) = setup(&pool, "Europe/Berlin").await;
    let active = account(&pool, agency, client, "x", "active").await;
    let paused = account(&pool, agency, client, "linkedin", "paused").await;
    let broken = account(&pool, agency, client, "facebook", "needs_reconnect").await;
    rule(
        &pool,
        agency,
        client,
        &DAILY_TEXT,
        &[active, paused, broken],
    )
    .await;

    let report = generate::plan(&pool, agency, client)
        .await
        .unwrap()
        .unwrap();
    // seven local days; today's 09:00 may already have passed
    assert!((6..=7).contains(&report.planned), "{report:?}");
    assert_eq!(report.generate_enqueued as usize, report.planned);
    let items = count(
        &pool,
        "SELECT count(*) FROM content_items WHERE client_id = $1 AND state = 'planned'",
        client,
    )
    .await;
    assert_eq!(items as usize, report.planned);
    let targets: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT t.account_id FROM content_item_targets t JOIN content_items i ON i.id = t.item_id WHERE i.client_id = $1",
    )
    .bind(client)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        targets,
        [active],
        "paused and disconnected accounts get nothing"
    );
    // every slot is 09:00 in Berlin
    let local: Vec<String> = sqlx::query_scalar(
        "SELECT to_char(slot_at AT TIME ZONE 'Europe/Berlin', 'HH24:MI') FROM content_items WHERE client_id = $1",
    )
    .bind(client)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(local.iter().all(|l| l == "09:00"), "{local:?}");
    let jobs = count(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'generate' AND client_id = $1",
        client,
    )
    .await;
    assert_eq!(jobs as usize, report.planned);

    let again = generate::plan(&pool, agency, client)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.planned, 0);
    assert_eq!(
        again.generate_enqueued, 0,
        "the waiting generate jobs are reused"
    );
    let items_after = count(
        &pool,
        "SELECT count(*) FROM content_items WHERE client_id = $1",
        client,
    )
    .await;
    assert_eq!(items_after, items);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn three_concurrent_planners_plan_each_slot_once(pool: PgPool) {
    let (agency, client) = setup(&pool, "America/New_York").await;
    let a = account(&pool, agency, client, "x", "active").await;
    let b = account(&pool, agency, client, "instagram", "active").await;
    let twice_daily = RuleDef {
        times: &["08:00", "18:00"],
        per_period: 2,
        ..DAILY_TEXT
    };
    rule(&pool, agency, client, &twice_daily, &[a, b]).await;
    rule(&pool, agency, client, &DAILY_TEXT, &[b]).await;

    let runs: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                generate::plan(&pool, agency, client)
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    let mut planned = 0;
    for r in runs {
        planned += tokio::time::timeout(std::time::Duration::from_secs(30), r)
            .await
            .expect("planners finish")
            .unwrap()
            .planned;
    }
    let items = count(
        &pool,
        "SELECT count(*) FROM content_items WHERE client_id = $1",
        client,
    )
    .await;
    assert_eq!(
        items as usize, planned,
        "what the three reported is what exists"
    );
    let distinct = count(
        &pool,
        "SELECT count(DISTINCT (rule_id, planned_for)) FROM content_items WHERE client_id = $1",
        client,
    )
    .await;
    assert_eq!(distinct, items, "no slot planned twice");
    assert!(
        items >= 18,
        "three posts a day for a week (today may be partly gone): {items}"
    );
    let jobs = count(
        &pool,
        "SELECT count(*) FROM jobs WHERE kind = 'generate' AND client_id = $1",
        client,
    )
    .await;
    assert_eq!(jobs, items, "one generate job per item");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn rules_sharing_an_account_are_kept_apart_by_the_gap(pool: PgPool) {
    let (agency, client) = setup(&pool, "Australia/Sydney").await;
    let a = account(&pool, agency, client, "linkedin", "active").await;
    let early = rule(&pool, agency, client, &DAILY_TEXT, &[a]).await;
    let late = rule(
        &pool,
        agency,
        client,
        &RuleDef {
            times: &["09:30"],
            gap: 45,
            ..DAILY_TEXT
        },
        &[a],
    )
    .await;
    generate::plan(&pool, agency, client)
        .await
        .unwrap()
        .unwrap();
    let rows: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT rule_id, to_char(slot_at AT TIME ZONE 'Australia/Sydney', 'HH24:MI'),
                to_char(planned_for AT TIME ZONE 'Australia/Sydney', 'HH24:MI'),
                to_char(planned_for AT TIME ZONE 'Australia/Sydney', 'YYYY-MM-DD')
         FROM content_items WHERE client_id = $1",
    )
    .bind(client)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    let early_days: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|r| r.0 == early)
        .map(|r| r.3.as_str())
        .collect();
    let mut pushed = 0;
    for (r, at, nominal, day) in &rows {
        if *r == early {
            assert_eq!((at.as_str(), nominal.as_str()), ("09:00", "09:00"));
        } else {
            assert_eq!(*r, late);
            if early_days.contains(day.as_str()) {
                // 30 min after the other rule's post; the larger gap (60) pushes it to 10:00
                assert_eq!((at.as_str(), nominal.as_str()), ("10:00", "09:30"), "{day}");
                pushed += 1;
            } else {
                // today, when 09:00 has passed already and only 09:30 is still ahead
                assert_eq!((at.as_str(), nominal.as_str()), ("09:30", "09:30"), "{day}");
            }
        }
    }
    assert!(pushed >= 6, "a week of days with both posts: {pushed}");
    let again = generate::plan(&pool, agency, client)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.planned, 0,
        "a moved slot is recognised by its nominal time"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn paused_clients_plan_nothing_and_the_sweep_plans_active_ones(pool: PgPool) {
    let (agency, client) = setup(&pool, "UTC").await;
    let a = account(&pool, agency, client, "x", "active").await;
    rule(&pool, agency, client, &DAILY_TEXT, &[a]).await;
    sqlx::query("UPDATE clients SET status = 'paused' WHERE id = $1")
        .bind(client)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        generate::plan(&pool, agency, client)
            .await
            .unwrap()
            .unwrap()
            .planned,
        0
    );
    assert_eq!(generate::sweep(&pool).await.unwrap(), 0);

    sqlx::query("UPDATE clients SET status = 'active' WHERE id = $1")
        .bind(client)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(generate::sweep(&pool).await.unwrap(), 1);
    assert_eq!(
        generate::sweep(&pool).await.unwrap(),
        0,
        "one plan job per client"
    );
    let key: String =
        sqlx::query_scalar("SELECT unique_key FROM jobs WHERE kind = 'plan' AND client_id = $1")
            .bind(client)
            .fetch_one(&pool)
            .await
            .unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(key, format!("plan:{client}:{today}"));
}

async fn planned_item(
    pool: &PgPool,
    agency: Uuid,
    client: Uuid,
    content_type: &str,
    accounts: &[Uuid],
) -> Uuid {
    build::item(agency, client)
        .generated()
        .state(ItemState::Planned)
        .slot_at(Utc::now() + TimeDelta::days(2))
        .content_type(content_type)
        .targets(accounts)
        .insert(pool)
        .await
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn generate_fills_an_image_item_with_moderated_variants_hashtags_cta_and_cards(pool: PgPool) {
    let media = tempfile::tempdir().unwrap();
    let content = content(&pool, &media);
    let (agency, client) = setup(&pool, "Europe/Berlin").await;
    brand(&pool, agency, client, &[]).await;
    let ig = account(&pool, agency, client, "instagram", "active").await;
    let x = account(&pool, agency, client, "x", "active").await;
    let item = planned_item(&pool, agency, client, "image", &[ig, x]).await;

    let g = generate::generate(&pool, &content, agency, item)
        .await
        .unwrap();
    assert_eq!(
        g,
        Generation::Generated {
            state: "pending_review".into(),
            blocked: false
        }
    );
    #[derive(sqlx::FromRow)]
    struct Filled {
        state: String,
        chosen_variant: String,
        caption: String,
        hashtags: Vec<String>,
        cta: Option<String>,
        moderation_status: String,
        pillar: String,
        generator: Option<String>,
    }
    let Filled {
        state,
        chosen_variant: chosen,
        caption,
        hashtags,
        cta,
        moderation_status: moderation,
        pillar,
        generator,
    } = sqlx::query_as(
        "SELECT state, chosen_variant, caption, hashtags, cta, moderation_status, pillar, generator
         FROM content_items WHERE id = $1",
    )
    .bind(item)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(state, "pending_review");
    assert_eq!(chosen, "balanced");
    assert_eq!(moderation, "pass");
    assert_eq!(generator.as_deref(), Some("template"));
    assert!(["Home energy savings", "Solar myths", "Customer stories"].contains(&pillar.as_str()));
    let cta = cta.expect("a CTA from the brand");
    assert!(["Book a free survey today.", "Ask us anything."].contains(&cta.as_str()));
    assert!(caption.contains(&cta), "{caption}");
    assert!(!caption.contains('{'), "placeholders filled: {caption}");
    // ranked, deduplicated without regard to case, no tag with a space, at most five
    assert!(hashtags.len() <= 5 && !hashtags.is_empty(), "{hashtags:?}");
    let lower: BTreeSet<String> = hashtags.iter().map(|h| h.to_lowercase()).collect();
    assert_eq!(lower.len(), hashtags.len(), "{hashtags:?}");
    assert!(
        hashtags
            .iter()
            .all(|h| h.starts_with('#') && !h.contains(' '))
    );
    let variants: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, moderation_status FROM content_variants WHERE item_id = $1 ORDER BY kind",
    )
    .bind(item)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        variants,
        [
            ("balanced".into(), "pass".into()),
            ("bold".into(), "pass".into()),
            ("conservative".into(), "pass".into())
        ]
    );
    // one card per target size, stored content-addressed in the media directory
    let cards: Vec<(String, String, String, i32, i32, String)> = sqlx::query_as(
        "SELECT m.size_label, a.path, a.mime, a.width, a.height, a.purpose FROM content_item_media m
         JOIN media_assets a ON a.id = m.media_id WHERE m.item_id = $1 ORDER BY m.size_label",
    )
    .bind(item)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(cards.len(), 2, "{cards:?}");
    assert_eq!(
        (
            cards[0].0.as_str(),
            cards[0].2.as_str(),
            cards[0].3,
            cards[0].4
        ),
        ("instagram_square", "image/jpeg", 1080, 1080)
    );
    assert_eq!(
        (
            cards[1].0.as_str(),
            cards[1].2.as_str(),
            cards[1].3,
            cards[1].4
        ),
        ("x", "image/png", 1600, 900)
    );
    for c in &cards {
        assert_eq!(c.5, "card");
        assert!(media.path().join(&c.1).is_file(), "{} stored", c.1);
    }

    // a second run changes nothing
    let again = generate::generate(&pool, &content, agency, item)
        .await
        .unwrap();
    assert!(matches!(again, Generation::Skipped(_)), "{again:?}");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM content_variants WHERE item_id = $1",
            item
        )
        .await,
        3
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn auto_approve_clients_get_approved_items_unless_moderation_blocks(pool: PgPool) {
    let media = tempfile::tempdir().unwrap();
    let content = content(&pool, &media);
    let (agency, client) = setup(&pool, "UTC").await;
    sqlx::query("UPDATE clients SET auto_approve = true WHERE id = $1")
        .bind(client)
        .execute(&pool)
        .await
        .unwrap();
    brand(&pool, agency, client, &[]).await;
    let li = account(&pool, agency, client, "linkedin", "active").await;
    let item = planned_item(&pool, agency, client, "text", &[li]).await;
    let g = generate::generate(&pool, &content, agency, item)
        .await
        .unwrap();
    assert_eq!(
        g,
        Generation::Generated {
            state: "approved".into(),
            blocked: false
        }
    );
    let approved: bool =
        sqlx::query_scalar("SELECT approved_at IS NOT NULL FROM content_items WHERE id = $1")
            .bind(item)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(approved);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM publications WHERE item_id = $1",
            item
        )
        .await,
        1,
        "approval scheduled the publication"
    );

    // the brand bans a word every caption carries (its own name): blocked, waits for a person
    sqlx::query("UPDATE brand_settings SET banned_terms = ARRAY['Client'] WHERE client_id = $1")
        .bind(client)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO template_overrides (client_id, agency_id, name, body) VALUES ($1, $2, 'captions/text.txt', 'News from {brand} about {topic}.')")
        .bind(client)
        .bind(agency)
        .execute(&pool)
        .await
        .unwrap();
    let blocked = planned_item(&pool, agency, client, "text", &[li]).await;
    let g = generate::generate(&pool, &content, agency, blocked)
        .await
        .unwrap();
    assert_eq!(
        g,
        Generation::Generated {
            state: "pending_review".into(),
            blocked: true
        }
    );
    let (status, reasons): (String, serde_json::Value) =
        sqlx::query_as("SELECT moderation_status, moderation FROM content_items WHERE id = $1")
            .bind(blocked)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "blocked");
    assert_eq!(reasons["reasons"][0]["rule"], "banned_term", "{reasons}");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_client_override_replaces_the_shipped_template_and_a_broken_one_is_named_by_line(
    pool: PgPool,
) {
    let media = tempfile::tempdir().unwrap();
    let content = content(&pool, &media);
    let (agency, client) = setup(&pool, "UTC").await;
    brand(&pool, agency, client, &[]).await;
    let fb = account(&pool, agency, client, "facebook", "active").await;
    sqlx::query("INSERT INTO template_overrides (client_id, agency_id, name, body) VALUES ($1, $2, 'captions/text.txt', $3)")
        .bind(client)
        .bind(agency)
        .bind("Only {brand}, on {topic}.\n---\nOnly {brand}, on {topic}.")
        .execute(&pool)
        .await
        .unwrap();
    let item = planned_item(&pool, agency, client, "text", &[fb]).await;
    generate::generate(&pool, &content, agency, item)
        .await
        .unwrap();
    let caption: String = sqlx::query_scalar("SELECT caption FROM content_items WHERE id = $1")
        .bind(item)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(caption.starts_with("Only Client, on "), "{caption}");

    sqlx::query("UPDATE template_overrides SET body = $2 WHERE client_id = $1")
        .bind(client)
        .bind("Fine {brand}.\n---\n\nAll about {pilar} today.")
        .execute(&pool)
        .await
        .unwrap();
    let broken = planned_item(&pool, agency, client, "text", &[fb]).await;
    let g = generate::generate(&pool, &content, agency, broken)
        .await
        .unwrap();
    let Generation::Failed(reason) = g else {
        panic!("expected a permanent failure, got {g:?}")
    };
    assert!(
        reason.contains("captions/text.txt (client override):4:11"),
        "{reason}"
    );
    assert!(reason.contains("unknown placeholder `{pilar}`"), "{reason}");
    let (state, error): (String, Option<String>) =
        sqlx::query_as("SELECT state, generation_error FROM content_items WHERE id = $1")
            .bind(broken)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, "planned");
    assert_eq!(error.as_deref(), Some(reason.as_str()));
}

#[test]
fn malformed_templates_are_refused_with_file_line_and_column() {
    let e = templates::parse(
        "captions/text.txt",
        "Hello {brand}\n---\nA {pillar and more",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string().split(": ").next().unwrap(),
        "captions/text.txt:3:3"
    );
    assert!(e.message.contains("unclosed `{`"), "{e}");
    let e = templates::parse("t.txt", "ok }").unwrap_err();
    assert_eq!((e.line, e.column), (1, 4));
    let e = templates::parse("t.txt", "@variant wild\nx").unwrap_err();
    assert!(e.message.contains("unknown variant `wild`"), "{e}");
    let f = templates::parse("t.txt", "{{literal}} {brand}\n---\n@variant bold\n{cta}!").unwrap();
    assert_eq!(f.templates.len(), 2);
    let v = templates::Values {
        brand: "Acme".into(),
        cta: "Go".into(),
        ..Default::default()
    };
    assert_eq!(f.templates[0].render(&v), "{literal} Acme");
    assert_eq!(f.templates[1].render(&v), "Go!");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn pillars_and_captions_rotate_through_a_week(pool: PgPool) {
    let media = tempfile::tempdir().unwrap();
    let content = content(&pool, &media);
    let (agency, client) = setup(&pool, "UTC").await;
    brand(&pool, agency, client, &[]).await;
    let li = account(&pool, agency, client, "linkedin", "active").await;
    // Monday, Wednesday and Friday of one ISO week, well in the future
    let mut items = Vec::new();
    for day in ["2030-01-07", "2030-01-09", "2030-01-11"] {
        let id = planned_item(&pool, agency, client, "text", &[li]).await;
        sqlx::query("UPDATE content_items SET slot_at = ($2::date + time '09:00') AT TIME ZONE 'UTC' WHERE id = $1")
            .bind(id)
            .bind(day)
            .execute(&pool)
            .await
            .unwrap();
        items.push(id);
    }
    for id in &items {
        generate::generate(&pool, &content, agency, *id)
            .await
            .unwrap();
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT pillar, caption FROM content_items WHERE client_id = $1 ORDER BY slot_at",
    )
    .bind(client)
    .fetch_all(&pool)
    .await
    .unwrap();
    let pillars: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(pillars.len(), 3, "three posts, three pillars: {rows:?}");
    let captions: BTreeSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(captions.len(), 3, "{rows:?}");
}

/// A provider that fails the way it is told to.
struct Failing(ProviderError);

impl Provider for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn generate<'a>(
        &'a self,
        _req: &'a GenerationRequest,
    ) -> BoxFuture<'a, Result<Generated, ProviderError>> {
        let e = self.0.clone();
        Box::pin(async move { Err(e) })
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn provider_failures_leave_the_item_planned_with_the_reason(pool: PgPool) {
    let media = tempfile::tempdir().unwrap();
    let (agency, client) = setup(&pool, "UTC").await;
    let x = account(&pool, agency, client, "x", "active").await;
    let item = planned_item(&pool, agency, client, "text", &[x]).await;
    let with = |e: ProviderError| Content {
        provider: Arc::new(Failing(e)),
        ..content(&pool, &media)
    };
    let g = generate::generate(
        &pool,
        &with(ProviderError::Transient("503".into())),
        agency,
        item,
    )
    .await
    .unwrap();
    assert!(matches!(g, Generation::Retry { after: None, .. }), "{g:?}");
    let g = generate::generate(
        &pool,
        &with(ProviderError::RateLimited {
            retry_after: std::time::Duration::from_secs(9),
        }),
        agency,
        item,
    )
    .await
    .unwrap();
    assert!(
        matches!(g, Generation::Postpone { after, .. } if after.as_secs() == 9),
        "{g:?}"
    );
    let g = generate::generate(
        &pool,
        &with(ProviderError::Refused("no".into())),
        agency,
        item,
    )
    .await
    .unwrap();
    assert!(
        matches!(g, Generation::Failed(ref r) if r.contains("refused")),
        "{g:?}"
    );
    let (state, error): (String, Option<String>) =
        sqlx::query_as("SELECT state, generation_error FROM content_items WHERE id = $1")
            .bind(item)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, "planned");
    assert_eq!(error.as_deref(), Some("the provider refused: no"));
    // a working provider later fills it and clears the error
    let g = generate::generate(&pool, &content(&pool, &media), agency, item)
        .await
        .unwrap();
    assert!(matches!(g, Generation::Generated { .. }), "{g:?}");
    let error: Option<String> =
        sqlx::query_scalar("SELECT generation_error FROM content_items WHERE id = $1")
            .bind(item)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(error, None);
}
