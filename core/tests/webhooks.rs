//! Signed outbound webhooks against a real receiver on 127.0.0.1 that can fail on purpose:
//! events from the lifecycle functions, the outbox's transactionality, signatures checked by
//! the Standard Webhooks reference library (Python, installed by `deploy/dev test`), rotation,
//! retries, disabling, and the address guard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autosocial_core::audit::Actor;
use autosocial_core::domain::{ItemState, PublicationState};
use autosocial_core::items::{self, publications as pubs};
use autosocial_core::killswitch::{self, Target};
use autosocial_core::net_guard::Policy;
use autosocial_core::testing::{self, build};
use autosocial_core::webhooks::endpoints::{self, NewEndpoint};
use autosocial_core::webhooks::{self, Delivered, EventType, Sender, deliver::deliver};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// What the receiver got: the three Standard Webhooks headers and the body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A receiver on 127.0.0.1: answers the statuses queued in `fail` first, then 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    state.got.lock().unwrap().push(Received {
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        body,
                    });
                    let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
                    (StatusCode::from_u16(status).unwrap(), "receiver says hi")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, format!("http://{addr}/hook"))
    }

    fn fail_next(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

const OPEN: Policy = Policy {
    allow_private: true,
};

async fn endpoint(
    pool: &PgPool,
    sender_vault: &autosocial_core::vault::Vault,
    agency: Uuid,
    url: &str,
    events: &[EventType],
) -> (Uuid, String) {
    let url = url::Url::parse(url).unwrap();
    let mut tx = pool.begin().await.unwrap();
    let c = endpoints::create(
        &mut tx,
        sender_vault,
        &Actor::system("test"),
        agency,
        &NewEndpoint {
            url: &url,
            description: "test receiver",
            events,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (c.id, c.secret)
}

/// Pending deliveries of `agency` and the attempt their `webhook` job would run next.
async fn pending(pool: &PgPool, agency: Uuid) -> Vec<(Uuid, i32)> {
    sqlx::query_as(
        "SELECT d.id, d.attempts + 1 FROM webhook_deliveries d
         JOIN jobs j ON j.kind = 'webhook' AND j.unique_key = 'webhook:' || d.id AND j.state = 'available'
         WHERE d.agency_id = $1 AND d.state = 'pending' ORDER BY d.created_at, d.id",
    )
    .bind(agency)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Run every pending delivery's next attempt, as the worker's `webhook` job would.
async fn run_pending(pool: &PgPool, s: &Sender, agency: Uuid) -> Vec<Delivered> {
    let mut out = Vec::new();
    for (id, attempt) in pending(pool, agency).await {
        out.push(deliver(pool, s, id, attempt, 16).await.unwrap());
    }
    out
}

async fn count(pool: &PgPool, sql: &str, agency: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(agency)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Verify captured deliveries with the Standard Webhooks reference library (Python): each
/// must verify under `secret`. Panics with the library's words otherwise.
fn verify_with_reference_library(secret: &str, got: &[Received]) {
    let python = std::env::var("AUTOSOCIAL_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "AUTOSOCIAL_TEST_PYTHON is not set: run the tests with `deploy/dev test`, which installs the \
             Standard Webhooks reference library (PyPI `standardwebhooks`) into a venv and sets it"
        )
    });
    let messages: Vec<Value> = got
        .iter()
        .map(|r| {
            json!({ "id": r.id, "timestamp": r.timestamp, "signature": r.signature, "body": r.body })
        })
        .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
secret = sys.argv[1]
msgs = json.load(sys.stdin)
wh = Webhook(secret)
for m in msgs:
    headers = {"webhook-id": m["id"], "webhook-timestamp": m["timestamp"], "webhook-signature": m["signature"]}
    payload = wh.verify(m["body"], headers)
    assert payload["type"] and "data" in payload, payload
print("verified", len(msgs))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script, secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&messages).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the reference library refused a signature: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), format!("verified {}", got.len()));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_event_type_reaches_the_receiver_signed_as_the_reference_library_expects(
    pool: PgPool,
) {
    let (receiver, url) = Receiver::start().await;
    let vault = testing::vault();
    let s = Sender::new(vault.clone(), OPEN);
    let (agency, _) = testing::tenant(&pool).await;
    let (_, secret) = endpoint(&pool, &vault, agency, &url, EventType::ALL).await;
    for t in EventType::ALL {
        let mut tx = pool.begin().await.unwrap();
        let n = webhooks::emit(&mut *tx, Some(agency), *t, json!({ "n": t.as_str() }))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(n, 1, "{t}");
    }
    let results = run_pending(&pool, &s, agency).await;
    assert!(results.iter().all(|r| *r == Delivered::Done), "{results:?}");
    let got = receiver.received();
    let types: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let want: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, want);
    verify_with_reference_library(&secret, &got);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn during_a_rotation_deliveries_verify_under_the_old_and_the_new_secret(pool: PgPool) {
    let (receiver, url) = Receiver::start().await;
    let vault = testing::vault();
    let s = Sender::new(vault.clone(), OPEN);
    let (agency, _) = testing::tenant(&pool).await;
    let (id, old) = endpoint(&pool, &vault, agency, &url, &[EventType::ItemApproved]).await;
    let mut tx = pool.begin().await.unwrap();
    let new = endpoints::rotate(&mut tx, &vault, &Actor::system("test"), agency, id)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(old, new);
    webhooks::emit(&pool, Some(agency), EventType::ItemApproved, json!({}))
        .await
        .unwrap();
    run_pending(&pool, &s, agency).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].signature.split(' ').count(),
        2,
        "{}",
        got[0].signature
    );
    verify_with_reference_library(&old, &got);
    verify_with_reference_library(&new, &got);
    // once the overlap is over only the new secret signs
    sqlx::query("UPDATE webhook_secrets SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL")
        .execute(&pool)
        .await
        .unwrap();
    webhooks::emit(&pool, Some(agency), EventType::ItemApproved, json!({}))
        .await
        .unwrap();
    run_pending(&pool, &s, agency).await;
    let got = receiver.received();
    assert_eq!(got[1].signature.split(' ').count(), 1);
    verify_with_reference_library(&new, &got[1..]);
    // the secrets are stored encrypted, never as text
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT secret_ct FROM webhook_secrets")
        .fetch_all(&pool)
        .await
        .unwrap();
    for ct in stored {
        assert!(!ct.windows(6).any(|w| w == b"whsec_"));
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_500_is_retried_and_the_retry_carries_the_same_webhook_id(pool: PgPool) {
    let (receiver, url) = Receiver::start().await;
    let vault = testing::vault();
    let s = Sender::new(vault.clone(), OPEN);
    let (agency, _) = testing::tenant(&pool).await;
    endpoint(&pool, &vault, agency, &url, &[EventType::KillswitchEngaged]).await;
    receiver.fail_next(&[500]);
    webhooks::emit(&pool, Some(agency), EventType::KillswitchEngaged, json!({}))
        .await
        .unwrap();
    let first = run_pending(&pool, &s, agency).await;
    assert!(
        matches!(&first[..], [Delivered::Retry(r)] if r.contains("500")),
        "{first:?}"
    );
    // the queue would run the job again after its backoff: the next attempt
    let (id, attempt) = sqlx::query_as::<_, (Uuid, i32)>(
        "SELECT id, attempts + 1 FROM webhook_deliveries WHERE agency_id = $1",
    )
    .bind(agency)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(attempt, 2);
    assert_eq!(
        deliver(&pool, &s, id, 2, 16).await.unwrap(),
        Delivered::Done
    );
    // delivered once: a third run sends nothing
    assert!(matches!(
        deliver(&pool, &s, id, 3, 16).await.unwrap(),
        Delivered::Skipped(_)
    ));
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id);
    assert_eq!(got[0].body, got[1].body);
    let log: Vec<(i32, Option<i16>, Option<String>)> = sqlx::query_as(
        "SELECT attempt, status_code, response_excerpt FROM webhook_attempts WHERE agency_id = $1 ORDER BY attempt",
    )
    .bind(agency)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        log,
        vec![
            (1, Some(500), Some("receiver says hi".into())),
            (2, Some(200), Some("receiver says hi".into()))
        ]
    );
    let state: String = sqlx::query_scalar("SELECT state FROM webhook_deliveries WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "delivered");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_endpoint_failing_for_a_day_is_disabled_and_the_agency_told(pool: PgPool) {
    let (receiver, url) = Receiver::start().await;
    let vault = testing::vault();
    let s = Sender::new(vault.clone(), OPEN);
    let (agency, _) = testing::tenant(&pool).await;
    let (id, _) = endpoint(&pool, &vault, agency, &url, &[EventType::ItemRejected]).await;
    receiver.fail_next(&[503, 503]);
    webhooks::emit(&pool, Some(agency), EventType::ItemRejected, json!({}))
        .await
        .unwrap();
    let (delivery, _) = pending(&pool, agency).await[0];
    assert!(matches!(
        deliver(&pool, &s, delivery, 1, 16).await.unwrap(),
        Delivered::Retry(_)
    ));
    // a day of failures later (the streak started at the first failure)
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours' WHERE id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let last = deliver(&pool, &s, delivery, 2, 16).await.unwrap();
    assert!(
        matches!(&last, Delivered::Failed(r) if r.contains("Disabled automatically")),
        "{last:?}"
    );
    let e = endpoints::get(&pool, agency, id).await.unwrap().unwrap();
    assert!(!e.enabled);
    assert!(
        e.disabled_reason
            .unwrap()
            .contains("every delivery attempt failed")
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE agency_id = $1 AND action = 'webhook.disable'",
            agency
        )
        .await,
        1
    );
    // a disabled endpoint gets nothing more
    let queued = webhooks::emit(&pool, Some(agency), EventType::ItemRejected, json!({}))
        .await
        .unwrap();
    assert_eq!(queued, 0);
    assert_eq!(receiver.received().len(), 2);
    // enabling clears the streak; a redelivery then goes out with the same webhook-id
    let mut tx = pool.begin().await.unwrap();
    let change = endpoints::Change {
        enabled: Some(true),
        ..Default::default()
    };
    assert!(
        endpoints::update(&mut tx, &Actor::system("test"), agency, id, &change)
            .await
            .unwrap()
    );
    endpoints::redeliver(&mut tx, &Actor::system("test"), agency, delivery)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(run_pending(&pool, &s, agency).await, vec![Delivered::Done]);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].id, got[0].id);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn nothing_goes_to_loopback_without_the_setting(pool: PgPool) {
    let (receiver, url) = Receiver::start().await;
    let vault = testing::vault();
    let strict = Sender::new(vault.clone(), Policy::default());
    let (agency, _) = testing::tenant(&pool).await;
    // the form refuses it outright
    assert!(endpoints::check_url(&url, Policy::default()).is_err());
    assert!(
        endpoints::check_url(
            &url.replace("http://127.0.0.1", "https://127.0.0.1"),
            Policy::default()
        )
        .unwrap_err()
        .contains("loopback")
    );
    // an endpoint stored while the setting was on is still refused when it is off, by address
    // literal and by a name that resolves to loopback
    let by_name = url
        .replace("127.0.0.1", "localhost")
        .replace("http://", "https://");
    endpoint(&pool, &vault, agency, &url, &[EventType::ItemCreated]).await;
    endpoint(&pool, &vault, agency, &by_name, &[EventType::ItemCreated]).await;
    webhooks::emit(&pool, Some(agency), EventType::ItemCreated, json!({}))
        .await
        .unwrap();
    let results = run_pending(&pool, &strict, agency).await;
    assert_eq!(results.len(), 2);
    for r in &results {
        assert!(
            matches!(r, Delivered::Retry(why) if why.contains("loopback") || why.contains("https")),
            "{r:?}"
        );
    }
    assert!(receiver.received().is_empty());
    let errors: Vec<String> = sqlx::query_scalar(
        "SELECT error FROM webhook_attempts WHERE agency_id = $1 AND error IS NOT NULL",
    )
    .bind(agency)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
}

async fn pending_item(pool: &PgPool, agency: Uuid, client: Uuid) -> Uuid {
    let account = build::account(agency, client).insert(pool).await;
    build::item(agency, client)
        .state(ItemState::PendingReview)
        .targets(&[account])
        .insert(pool)
        .await
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_rolled_back_change_emits_nothing_and_a_committed_one_emits_once(pool: PgPool) {
    let vault = testing::vault();
    let (agency, client) = testing::tenant(&pool).await;
    endpoint(
        &pool,
        &vault,
        agency,
        "https://hooks.example.com/in",
        &[EventType::ItemApproved, EventType::ItemRejected],
    )
    .await;
    let item = pending_item(&pool, agency, client).await;
    let actor = Actor::system("test");
    let events = "SELECT count(*) FROM webhook_events WHERE agency_id = $1";
    let jobs = "SELECT count(*) FROM jobs j JOIN webhook_deliveries d ON j.unique_key = 'webhook:' || d.id WHERE d.agency_id = $1";

    let mut tx = pool.begin().await.unwrap();
    items::approve(&mut tx, &actor, agency, item, None)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&pool, events, agency).await, 0);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM webhook_deliveries WHERE agency_id = $1",
            agency
        )
        .await,
        0
    );

    let mut tx = pool.begin().await.unwrap();
    items::approve(&mut tx, &actor, agency, item, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&pool, events, agency).await, 1);
    assert_eq!(count(&pool, jobs, agency).await, 1);
    let data: Value = sqlx::query_scalar("SELECT data FROM webhook_events WHERE agency_id = $1")
        .bind(agency)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(data["item_id"], json!(item));
    assert_eq!(data["client_id"], json!(client));

    // another agency without endpoints: its changes write nothing to the outbox
    let (other, other_client) = testing::tenant(&pool).await;
    let other_item = pending_item(&pool, other, other_client).await;
    let mut tx = pool.begin().await.unwrap();
    items::reject(&mut tx, &actor, other, other_item, "off brand")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&pool, events, other).await, 0);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn lifecycle_functions_emit_their_events(pool: PgPool) {
    let vault = testing::vault();
    let (agency, client) = testing::tenant(&pool).await;
    endpoint(
        &pool,
        &vault,
        agency,
        "https://hooks.example.com/in",
        EventType::ALL,
    )
    .await;
    let actor = Actor::system("test");
    let account = build::account(agency, client).insert(&pool).await;

    // reject
    let item = pending_item(&pool, agency, client).await;
    let mut tx = pool.begin().await.unwrap();
    items::reject(&mut tx, &actor, agency, item, "no")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // the publish path's batch, a permanent failure, a post nobody can know about
    let item = build::item(agency, client)
        .state(ItemState::Approved)
        .targets(&[account])
        .insert(&pool)
        .await;
    let mut attempts = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let account = build::account(agency, client).insert(&pool).await;
        let attempt = Uuid::now_v7();
        let id = build::publication(agency, client, item, account)
            .state(PublicationState::Publishing)
            .attempt(attempt, format!("m{}", attempt.simple()))
            .insert(&pool)
            .await;
        attempts.push(attempt);
        ids.push(id);
    }
    let held = pubs::published(
        &pool,
        &[pubs::Post {
            publication: ids[0],
            attempt: attempts[0],
            agency,
            post_id: "p-1".into(),
            url: Some("https://sandbox.example/p-1".into()),
            request_id: None,
            action: "publish".into(),
            latency_ms: 5,
        }],
    )
    .await
    .unwrap();
    assert_eq!(held, vec![true]);
    let mut tx = pool.begin().await.unwrap();
    assert!(
        pubs::fail(&mut tx, ids[1], attempts[1], "refused")
            .await
            .unwrap()
    );
    pubs::needs_attention(&mut tx, ids[2], attempts[2], "unknowable")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // a kill switch engaged and released
    let id = killswitch::engage(
        &pool,
        None,
        Duration::from_millis(1),
        &actor,
        Target::Agency(agency),
        "stop",
    )
    .await
    .unwrap();
    killswitch::disengage(&pool, None, &actor, id)
        .await
        .unwrap();

    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM webhook_events WHERE agency_id = $1 ORDER BY created_at, event_type",
    )
    .bind(agency)
    .fetch_all(&pool)
    .await
    .unwrap();
    for want in [
        "item.rejected",
        "publication.published",
        "publication.failed",
        "publication.needs_attention",
        "killswitch.engaged",
        "killswitch.released",
    ] {
        assert!(
            types.iter().any(|t| t == want),
            "{want} missing from {types:?}"
        );
    }
    let published: Value = sqlx::query_scalar(
        "SELECT data FROM webhook_events WHERE agency_id = $1 AND event_type = 'publication.published'",
    )
    .bind(agency)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(published["platform_post_id"], json!("p-1"));
    assert_eq!(published["publication_id"], json!(ids[0]));
    // one delivery job per event to the one endpoint
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM webhook_deliveries WHERE agency_id = $1",
            agency
        )
        .await,
        types.len() as i64
    );
}
