//! Every connector's publish, find-by-marker, metrics and quota against the sandbox, which
//! answers in each platform's own shapes and keeps a ledger of what it received.

mod common;

use common::{ledger, set_knobs, world};

use autosocial_core::domain::Platform;
use autosocial_core::platforms::Unfenced;
use autosocial_core::platforms::{self, AccountRef, Lookup, PlatformError, PostRequest};
use autosocial_sandbox::Knobs;
use secrecy::ExposeSecret;

fn post(account: &str, text: &str, marker: &str) -> PostRequest {
    PostRequest {
        account: AccountRef {
            platform_account_id: account.into(),
            kind: "user".into(),
        },
        text: text.into(),
        link_url: None,
        media: vec![],
        marker: marker.into(),
    }
}

#[tokio::test]
async fn sandbox_publishes_finds_by_marker_and_reads_metrics_and_quota() {
    let (base, config) = world().await;
    let c = platforms::connector(Platform::Sandbox, &config).unwrap();
    let app = config.app(Platform::Sandbox).unwrap();
    let (tokens, info) = platforms::connect_headless(c.as_ref(), &app, &config.http, "acme")
        .await
        .unwrap();
    let token = tokens.access_token.expose_secret();
    let req = post(&info.id, "Hello from the test", "mk-0000000001");
    let since = chrono::Utc::now();
    assert_eq!(
        c.find_by_marker(token, &req, since).await.unwrap(),
        Lookup::NotFound
    );
    let published = c.publish(token, &req, &Unfenced).await.unwrap();
    assert!(
        published
            .url
            .as_deref()
            .unwrap()
            .ends_with(&published.post_id)
    );
    match c.find_by_marker(token, &req, since).await.unwrap() {
        Lookup::Found(p) => assert_eq!(p.post_id, published.post_id),
        other => panic!("expected the post, got {other:?}"),
    }
    let m = c
        .metrics(token, &req.account, &published.post_id)
        .await
        .unwrap();
    assert!(m.likes.is_some() && m.impressions.unwrap() >= 100);
    set_knobs(
        &base,
        &Knobs {
            auto_approve: true,
            quota_per_day: Some(2),
            ..Knobs::default()
        },
    )
    .await;
    let q = c.quota(token, &req.account).await.unwrap().unwrap();
    assert_eq!((q.used, q.limit), (1, 2));
    c.publish(token, &post(&info.id, "second", "mk-0000000002"), &Unfenced)
        .await
        .unwrap();
    match c
        .publish(token, &post(&info.id, "third", "mk-0000000003"), &Unfenced)
        .await
    {
        Err(PlatformError::RateLimited { retry_after, .. }) => assert!(retry_after.as_secs() >= 60),
        other => panic!("the quota should refuse the third post: {other:?}"),
    }
    let created = ledger(&base, "sandbox")
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "created")
        .count();
    assert_eq!(created, 2, "the refused post never reached the platform");
}

#[tokio::test]
async fn sandbox_faults_are_classified() {
    let (base, config) = world().await;
    let c = platforms::connector(Platform::Sandbox, &config).unwrap();
    let app = config.app(Platform::Sandbox).unwrap();
    let (tokens, info) = platforms::connect_headless(c.as_ref(), &app, &config.http, "acme")
        .await
        .unwrap();
    let token = tokens.access_token.expose_secret();
    set_knobs(
        &base,
        &Knobs {
            auto_approve: true,
            rate_limit_rate: 1.0,
            retry_after_secs: 7,
            ..Knobs::default()
        },
    )
    .await;
    match c
        .publish(token, &post(&info.id, "a", "mk-1000000001"), &Unfenced)
        .await
    {
        Err(PlatformError::RateLimited { retry_after, .. }) => assert_eq!(retry_after.as_secs(), 7),
        other => panic!("{other:?}"),
    }
    set_knobs(
        &base,
        &Knobs {
            auto_approve: true,
            error_rate: 1.0,
            ..Knobs::default()
        },
    )
    .await;
    assert!(matches!(
        c.publish(token, &post(&info.id, "a", "mk-1000000001"), &Unfenced)
            .await,
        Err(PlatformError::Transient(_))
    ));
    assert!(matches!(
        c.publish(
            "not-a-token",
            &post(&info.id, "a", "mk-1000000001"),
            &Unfenced
        )
        .await,
        Err(PlatformError::Auth(_))
    ));
    // accepted, then the answer is lost: transient for us, but the post exists and is found
    for mode in ["500", "drop"] {
        set_knobs(
            &base,
            &Knobs {
                auto_approve: true,
                accept_then_fail: Some(mode.into()),
                ..Knobs::default()
            },
        )
        .await;
        let req = post(&info.id, mode, &format!("mk-lost-{mode}"));
        assert!(
            matches!(
                c.publish(token, &req, &Unfenced).await,
                Err(PlatformError::Transient(_))
            ),
            "{mode}"
        );
        set_knobs(
            &base,
            &Knobs {
                auto_approve: true,
                ..Knobs::default()
            },
        )
        .await;
        assert!(
            matches!(
                c.find_by_marker(token, &req, chrono::Utc::now())
                    .await
                    .unwrap(),
                Lookup::Found(_)
            ),
            "{mode}"
        );
    }
    set_knobs(
        &base,
        &Knobs {
            auto_approve: true,
            ..Knobs::default()
        },
    )
    .await;
    let mut with_media = post(&info.id, "img", "mk-media-0001");
    with_media.media.push(platforms::MediaRef {
        url: base.join("/nowhere.png").unwrap(),
        content_type: "image/png".into(),
    });
    match c.publish(token, &with_media, &Unfenced).await {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("404"), "{m}"),
        other => panic!("media that is not served is refused: {other:?}"),
    }
}
