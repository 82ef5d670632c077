//! The OpenAI-compatible provider against the sandbox's chat completions stub: structured
//! answers, timeouts, malformed JSON, refusals, 429s, retries on 5xx, token budgets and the
//! per-agency request limit.

use std::collections::BTreeMap;
use std::time::Duration;

use autosocial_core::content::openai::{OpenAiConfig, OpenAiProvider};
use autosocial_core::content::provider::{
    ContentType, GenerationRequest, PlatformLimits, Provider, ProviderError, VariantKind,
};
use autosocial_core::domain::Platform;
use autosocial_core::limits::{Rate, Smoother};
use autosocial_sandbox::openai::{OpenAiKnobs, Received};
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
        self.base.join("openai/v1").unwrap()
    }
    async fn knobs(&self, k: OpenAiKnobs) {
        let r = self
            .http
            .post(self.base.join("openai/_sandbox/knobs").unwrap())
            .json(&k)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    async fn received(&self) -> Vec<Received> {
        self.http
            .get(self.base.join("openai/_sandbox/requests").unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn config(api: Url) -> OpenAiConfig {
    OpenAiConfig {
        base_url: api,
        model: "gpt-4o-mini".into(),
        key: Some(SecretString::from("sk-sandbox".to_owned())),
        timeout: Duration::from_secs(5),
        retries: 0,
        retry_base: Duration::from_millis(20),
        rate: None,
        monthly_token_budget: None,
        daily_token_budget: None,
    }
}

fn provider(pool: &PgPool, config: OpenAiConfig) -> OpenAiProvider {
    OpenAiProvider::new(config, pool.clone(), Smoother::new(pool.clone(), None))
}

fn request(agency: Uuid, client: Uuid) -> GenerationRequest {
    GenerationRequest {
        agency_id: agency,
        client_id: client,
        brand_name: "Acme Solar".into(),
        voice: "Warm and practical".into(),
        tone: "friendly".into(),
        handle: Some("@acme".into()),
        pillar: "Home energy savings".into(),
        topic: "Home energy savings".into(),
        content_type: ContentType::Text,
        platforms: vec![PlatformLimits {
            platform: Platform::X,
            max_chars: 250,
            max_hashtags: 5,
        }],
        banned_terms: vec!["guarantee".into()],
        cta: Some("Book a free survey today.".into()),
        hashtags: vec!["#Energy".into()],
        slot_date: chrono::NaiveDate::from_ymd_opt(2030, 1, 7).unwrap(),
        sequence: 0,
        template_overrides: BTreeMap::new(),
    }
}

async fn tokens_used(pool: &PgPool, agency: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(total_tokens), 0)::int8 FROM ai_usage WHERE agency_id = $1",
    )
    .bind(agency)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_structured_answer_becomes_three_variants_and_its_tokens_are_counted(pool: PgPool) {
    let stub = Stub::start().await;
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let p = provider(&pool, config(stub.api()));
    assert_eq!(p.name(), "openai:gpt-4o-mini");
    let g = p.generate(&request(agency, client)).await.unwrap();
    let kinds: Vec<VariantKind> = g.variants.iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        [
            VariantKind::Conservative,
            VariantKind::Balanced,
            VariantKind::Bold
        ]
    );
    // the stub writes from the prompt's topic, brand and CTA lines
    assert!(
        g.variants[1].caption.contains("Home energy savings"),
        "{g:?}"
    );
    assert!(g.variants[1].caption.contains("Acme Solar"), "{g:?}");
    assert!(
        g.variants[0].caption.ends_with("Book a free survey today."),
        "{g:?}"
    );
    assert_eq!(g.headline, "Home energy savings, made simple");
    assert_eq!(tokens_used(&pool, agency).await, 150);
    let received = stub.received().await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(received[0].status, 200);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_slow_endpoint_times_out_as_a_transient_failure_after_the_retries(pool: PgPool) {
    let stub = Stub::start().await;
    stub.knobs(OpenAiKnobs {
        delay_ms: 2_000,
        ..Default::default()
    })
    .await;
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let p = provider(
        &pool,
        OpenAiConfig {
            timeout: Duration::from_millis(300),
            retries: 1,
            ..config(stub.api())
        },
    );
    let started = std::time::Instant::now();
    let e = p.generate(&request(agency, client)).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Transient(ref m) if m.contains("timed out")),
        "{e}"
    );
    assert!(e.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up by its own timeout"
    );
    assert_eq!(stub.received().await.len(), 2, "one retry");
    assert_eq!(tokens_used(&pool, agency).await, 0);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn malformed_answers_are_refused_whatever_is_wrong_with_them(pool: PgPool) {
    let stub = Stub::start().await;
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let p = provider(&pool, config(stub.api()));
    for (how, expect) in [
        ("not_json", "not the asked JSON"),
        ("extra_field", "unknown field `mood`"),
        ("missing_field", "missing field `headline`"),
        ("truncated", "cut off"),
    ] {
        stub.knobs(OpenAiKnobs {
            malformed: Some(how.into()),
            ..Default::default()
        })
        .await;
        let e = p.generate(&request(agency, client)).await.unwrap_err();
        assert!(
            matches!(e, ProviderError::Malformed(ref m) if m.contains(expect)),
            "{how}: {e}"
        );
        assert!(!e.is_transient());
    }
    // the tokens were spent all the same
    assert_eq!(tokens_used(&pool, agency).await, 600);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_refusal_is_reported_as_such(pool: PgPool) {
    let stub = Stub::start().await;
    stub.knobs(OpenAiKnobs {
        refuse: true,
        ..Default::default()
    })
    .await;
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let e = provider(&pool, config(stub.api()))
        .generate(&request(agency, client))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Refused(ref m) if m.contains("can't help")),
        "{e}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_429_returns_the_endpoints_retry_after_and_5xx_is_retried(pool: PgPool) {
    let stub = Stub::start().await;
    stub.knobs(OpenAiKnobs {
        rate_limit_next: 1,
        retry_after_secs: 7,
        ..Default::default()
    })
    .await;
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let p = provider(
        &pool,
        OpenAiConfig {
            retries: 2,
            ..config(stub.api())
        },
    );
    let e = p.generate(&request(agency, client)).await.unwrap_err();
    assert_eq!(
        e,
        ProviderError::RateLimited {
            retry_after: Duration::from_secs(7)
        }
    );
    assert_eq!(
        stub.received().await.len(),
        1,
        "a 429 is not retried at once"
    );

    stub.knobs(OpenAiKnobs {
        fail_next: 2,
        ..Default::default()
    })
    .await;
    let g = p.generate(&request(agency, client)).await.unwrap();
    assert!(!g.headline.is_empty());
    let statuses: Vec<u16> = stub.received().await.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 500, 500, 200]);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_exhausted_token_budget_stops_requests_before_they_are_sent(pool: PgPool) {
    let stub = Stub::start().await;
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    // the agency's own monthly budget wins over the deployment's (none here)
    sqlx::query(
        "INSERT INTO agency_settings (agency_id, ai_monthly_token_budget) VALUES ($1, 300)",
    )
    .bind(agency)
    .execute(&pool)
    .await
    .unwrap();
    let p = provider(&pool, config(stub.api()));
    p.generate(&request(agency, client)).await.unwrap();
    p.generate(&request(agency, client)).await.unwrap();
    let e = p.generate(&request(agency, client)).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Budget(ref m) if m.contains("300 of 300")),
        "{e}"
    );
    assert_eq!(
        stub.received().await.len(),
        2,
        "the third request never left"
    );

    // a deployment-wide daily budget applies to agencies without their own
    let (other, other_client) = autosocial_core::testing::tenant(&pool).await;
    let daily = provider(
        &pool,
        OpenAiConfig {
            daily_token_budget: Some(100),
            ..config(stub.api())
        },
    );
    daily.generate(&request(other, other_client)).await.unwrap();
    let e = daily
        .generate(&request(other, other_client))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Budget(ref m) if m.contains("today")),
        "{e}"
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn requests_are_smoothed_per_agency_and_a_bad_key_is_a_configuration_error(pool: PgPool) {
    let stub = Stub::start().await;
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let (other, other_client) = autosocial_core::testing::tenant(&pool).await;
    // ten requests a second per agency, shared through the (here Postgres) GCRA bucket
    let p = provider(
        &pool,
        OpenAiConfig {
            rate: Some(Rate::per(10, Duration::from_secs(1))),
            ..config(stub.api())
        },
    );
    let mut waited = 0;
    let mut until_sent = async |agency: Uuid, client: Uuid| loop {
        match p.generate(&request(agency, client)).await {
            Ok(_) => return,
            Err(ProviderError::RateLimited { retry_after }) => {
                assert!(retry_after <= Duration::from_millis(700), "{retry_after:?}");
                waited += 1;
                assert!(waited < 20, "the limit lets requests through in time");
                tokio::time::sleep(retry_after).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    until_sent(agency, client).await;
    // right after a request, the same agency must wait about one interval
    let e = p.generate(&request(agency, client)).await.unwrap_err();
    let ProviderError::RateLimited { retry_after } = e else {
        panic!("expected a rate limit, got {e}")
    };
    assert!(
        retry_after > Duration::ZERO && retry_after <= Duration::from_millis(100),
        "{retry_after:?}"
    );
    // another agency has its own bucket
    until_sent(other, other_client).await;
    assert_eq!(
        stub.received().await.len(),
        2,
        "a limited request never leaves"
    );

    let bad = provider(
        &pool,
        OpenAiConfig {
            key: Some(SecretString::from("sk-wrong".to_owned())),
            ..config(stub.api())
        },
    );
    let e = bad.generate(&request(agency, client)).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Config(ref m) if m.contains("401")),
        "{e}"
    );
    assert!(
        !e.to_string().contains("sk-wrong"),
        "the key never shows in errors"
    );
}
