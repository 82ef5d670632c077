//! The Replicate image provider against the sandbox's predictions stub (sync answers, polling,
//! 429, 422, failed predictions, a refused token), its settings, and `generate` storing one
//! generated image cropped to each target size, or the brand card when Replicate refuses.

use std::path::PathBuf;
use std::time::Duration;

use autosocial_core::content::generate::{
    self, Content, ContentArgs, Generation, ImageProviderKind,
};
use autosocial_core::content::provider::ProviderError;
use autosocial_core::content::replicate::{ReplicateConfig, ReplicateProvider, aspect_ratio};
use autosocial_core::domain::ItemState;
use autosocial_core::limits::Smoother;
use autosocial_core::testing::build as make;
use autosocial_sandbox::replicate::ReplicateKnobs;
use chrono::{TimeDelta, Utc};
use secrecy::SecretString;
use sqlx::PgPool;
use url::Url;
use uuid::Uuid;

struct Stub {
    base: Url,
    http: reqwest::Client,
}

impl Stub {
    async fn start() -> Stub {
        let base = autosocial_sandbox::spawn(autosocial_sandbox::Knobs::default())
            .await
            .unwrap();
        Stub {
            base,
            http: reqwest::Client::new(),
        }
    }
    fn api(&self) -> Url {
        self.base.join("replicate").unwrap()
    }
    async fn knobs(&self, k: ReplicateKnobs) {
        let r = self
            .http
            .post(self.base.join("replicate/_sandbox/knobs").unwrap())
            .json(&k)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    fn provider(&self, token: &str) -> ReplicateProvider {
        ReplicateProvider::new(ReplicateConfig {
            base_url: self.api(),
            token: SecretString::from(token.to_owned()),
            model: "black-forest-labs/flux-schnell".into(),
            timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(10),
            poll_every: Duration::from_millis(20),
        })
    }
}

#[tokio::test]
async fn a_started_prediction_is_polled_until_it_succeeds_and_the_image_decodes() {
    let stub = Stub::start().await;
    let img = stub
        .provider("r8_sandbox")
        .generate("a lighthouse at dawn", "1:1")
        .await
        .unwrap();
    assert_eq!((img.width(), img.height()), (320, 200));
}

#[tokio::test]
async fn prefer_wait_answers_in_the_create_call() {
    let stub = Stub::start().await;
    stub.knobs(ReplicateKnobs {
        sync: true,
        width: 64,
        height: 96,
        ..ReplicateKnobs::default()
    })
    .await;
    // a poll would not come within the deadline: the create call's answer must carry the output
    let provider = ReplicateProvider::new(ReplicateConfig {
        base_url: stub.api(),
        token: SecretString::from("r8_sandbox".to_owned()),
        model: "black-forest-labs/flux-schnell".into(),
        timeout: Duration::from_secs(5),
        deadline: Duration::from_millis(1),
        poll_every: Duration::from_secs(5),
    });
    let img = provider.generate("a fox", "2:3").await.unwrap();
    assert_eq!((img.width(), img.height()), (64, 96));
}

#[tokio::test]
async fn a_throttled_create_is_rate_limited_with_retry_after() {
    let stub = Stub::start().await;
    stub.knobs(ReplicateKnobs {
        fail_mode: Some("429".into()),
        retry_after_secs: 7,
        ..ReplicateKnobs::default()
    })
    .await;
    let e = stub
        .provider("r8_sandbox")
        .generate("x", "1:1")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ProviderError::RateLimited {
            retry_after: Duration::from_secs(7)
        }
    );
    assert!(e.is_transient());
}

#[tokio::test]
async fn invalid_input_failed_predictions_and_bad_tokens_are_permanent_with_replicates_reason() {
    let stub = Stub::start().await;
    stub.knobs(ReplicateKnobs {
        fail_mode: Some("422".into()),
        ..ReplicateKnobs::default()
    })
    .await;
    let e = stub
        .provider("r8_sandbox")
        .generate("x", "1:1")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Refused(m) if m.contains("422") && m.contains("aspect_ratio must be one of")),
        "{e:?}"
    );

    stub.knobs(ReplicateKnobs {
        fail_mode: Some("failed".into()),
        ..ReplicateKnobs::default()
    })
    .await;
    let e = stub
        .provider("r8_sandbox")
        .generate("x", "1:1")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Refused(m) if m.contains("failed") && m.contains("NSFW content detected")),
        "{e:?}"
    );
    assert!(!e.is_transient());

    stub.knobs(ReplicateKnobs::default()).await;
    let e = stub
        .provider("r8_wrong")
        .generate("x", "1:1")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Config(m) if m.contains("401") && !m.contains("r8_wrong")),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_unreachable_replicate_is_transient() {
    let provider = ReplicateProvider::new(ReplicateConfig {
        base_url: Url::parse("http://127.0.0.1:9").unwrap(),
        token: SecretString::from("r8_sandbox".to_owned()),
        model: "black-forest-labs/flux-schnell".into(),
        timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(2),
        poll_every: Duration::from_millis(20),
    });
    let e = provider.generate("x", "1:1").await.unwrap_err();
    assert!(matches!(e, ProviderError::Transient(_)), "{e:?}");
}

#[test]
fn aspect_ratios_are_the_nearest_common_one() {
    assert_eq!(aspect_ratio(1080, 1080), "1:1");
    assert_eq!(aspect_ratio(1080, 1350), "4:5");
    assert_eq!(aspect_ratio(1200, 675), "16:9");
    assert_eq!(aspect_ratio(1080, 1920), "9:16");
}

fn templates_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../templates"))
}

fn replicate_args(media: &tempfile::TempDir, base: Url, token: Option<&str>) -> ContentArgs {
    let mut args = ContentArgs::with_dirs(media.path().to_owned(), templates_dir());
    args.image_provider = ImageProviderKind::Replicate;
    args.replicate_base_url = base;
    args.replicate_token = token.map(|t| SecretString::from(t.to_owned()));
    args
}

fn build(pool: &PgPool, args: &ContentArgs) -> Content {
    args.build(pool.clone(), Smoother::new(pool.clone(), None), true)
        .expect("valid settings")
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn replicate_without_a_token_is_a_config_error_naming_the_variable(pool: PgPool) {
    let media = tempfile::tempdir().unwrap();
    let args = replicate_args(
        &media,
        Url::parse("https://api.replicate.com").unwrap(),
        None,
    );
    let e = args
        .build(pool.clone(), Smoother::new(pool.clone(), None), true)
        .err()
        .expect("refused");
    assert_eq!(e.variable, "AUTOSOCIAL_REPLICATE_TOKEN");
    // the default stays the card renderer, which needs no token
    let card = ContentArgs::with_dirs(media.path().to_owned(), templates_dir());
    assert_eq!(card.image_provider, ImageProviderKind::Card);
    assert!(build(&pool, &card).images.is_none());
}

async fn account(pool: &PgPool, agency: Uuid, client: Uuid, platform: &str) -> Uuid {
    make::account(agency, client)
        .platform(platform.parse().unwrap())
        .tokens(vec![0], None, "test")
        .insert(pool)
        .await
}

/// An image item for Instagram and X, planned.
async fn image_item(pool: &PgPool) -> (Uuid, Uuid) {
    let (agency, client) = autosocial_core::testing::tenant(pool).await;
    let ig = account(pool, agency, client, "instagram").await;
    let x = account(pool, agency, client, "x").await;
    let id = make::item(agency, client)
        .generated()
        .state(ItemState::Planned)
        .slot_at(Utc::now() + TimeDelta::days(2))
        .content_type("image")
        .targets(&[ig, x])
        .insert(pool)
        .await;
    (agency, id)
}

async fn stored(pool: &PgPool, item: Uuid) -> Vec<(String, String, i32, i32, String)> {
    sqlx::query_as(
        "SELECT m.size_label, a.mime, a.width, a.height, a.purpose FROM content_item_media m
         JOIN media_assets a ON a.id = m.media_id WHERE m.item_id = $1 ORDER BY m.size_label",
    )
    .bind(item)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn generate_stores_one_generated_image_cropped_to_each_size(pool: PgPool) {
    let stub = Stub::start().await;
    let media = tempfile::tempdir().unwrap();
    let content = build(
        &pool,
        &replicate_args(&media, stub.api(), Some("r8_sandbox")),
    );
    let (agency, item) = image_item(&pool).await;
    let g = generate::generate(&pool, &content, agency, item)
        .await
        .unwrap();
    assert!(matches!(g, Generation::Generated { .. }), "{g:?}");
    let media_rows = stored(&pool, item).await;
    assert_eq!(media_rows.len(), 2, "{media_rows:?}");
    for (label, mime, w, h, purpose) in &media_rows {
        assert_eq!(purpose, "generated");
        let size = autosocial_core::content::cards::CardSize::from_label(label).unwrap();
        let (sw, sh) = size.dimensions();
        assert_eq!((*w as u32, *h as u32), (sw, sh), "{label}");
        assert!(mime == "image/jpeg" || mime == "image/png");
    }
    // the files are the cropped images
    let path: String = sqlx::query_scalar(
        "SELECT a.path FROM content_item_media m JOIN media_assets a ON a.id = m.media_id
         WHERE m.item_id = $1 AND m.size_label = 'instagram_square'",
    )
    .bind(item)
    .fetch_one(&pool)
    .await
    .unwrap();
    let img = image::open(media.path().join(path)).unwrap();
    assert_eq!((img.width(), img.height()), (1080, 1080));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_refused_image_falls_back_to_the_card_and_a_throttled_one_postpones(pool: PgPool) {
    let stub = Stub::start().await;
    let media = tempfile::tempdir().unwrap();
    let content = build(
        &pool,
        &replicate_args(&media, stub.api(), Some("r8_sandbox")),
    );

    stub.knobs(ReplicateKnobs {
        fail_mode: Some("429".into()),
        retry_after_secs: 9,
        ..ReplicateKnobs::default()
    })
    .await;
    let (agency, item) = image_item(&pool).await;
    let g = generate::generate(&pool, &content, agency, item)
        .await
        .unwrap();
    assert!(
        matches!(&g, Generation::Postpone { after, .. } if *after == Duration::from_secs(9)),
        "{g:?}"
    );
    let state: String = sqlx::query_scalar("SELECT state FROM content_items WHERE id = $1")
        .bind(item)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "planned");
    assert!(stored(&pool, item).await.is_empty());

    stub.knobs(ReplicateKnobs {
        fail_mode: Some("failed".into()),
        ..ReplicateKnobs::default()
    })
    .await;
    let g = generate::generate(&pool, &content, agency, item)
        .await
        .unwrap();
    assert!(matches!(g, Generation::Generated { .. }), "{g:?}");
    let media_rows = stored(&pool, item).await;
    assert_eq!(media_rows.len(), 2, "{media_rows:?}");
    assert!(media_rows.iter().all(|r| r.4 == "card"), "{media_rows:?}");
}
