//! The Facebook Pages and Instagram connectors against the sandbox's Graph API shapes: login
//! (code + PKCE, long-lived exchange, Page token), publishing (feed, photos, Instagram containers
//! with status polling), reconciliation, metrics, quota, refresh, and every fault classified.

mod common;

use common::{auto_approve, get_json, set_knobs, world};

use std::time::Duration;

use autosocial_core::domain::Platform;
use autosocial_core::platforms::Unfenced;
use autosocial_core::platforms::{
    self, AccountRef, Connector, Lookup, MediaRef, PlatformError, PlatformsConfig, PostRequest,
};
use autosocial_sandbox::Knobs;
use secrecy::ExposeSecret;
use serde_json::Value;

/// `(endpoint, outcome)` of every request the sandbox handled for a platform, in order.
async fn ledger(base: &url::Url, platform: &str) -> Vec<(String, String)> {
    common::handled(&common::ledger(base, platform).await)
}

/// A real PNG at `/card.png` and a text file at `/note.txt`.
async fn media_server() -> url::Url {
    common::media_server(vec![
        ("/card.png", "image/png", common::png(4, 4)),
        ("/note.txt", "text/plain", b"not an image".to_vec()),
    ])
    .await
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

async fn sandbox_posts(base: &url::Url, platform: &str) -> Vec<Value> {
    get_json(base.join("/_sandbox/posts").unwrap())
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["platform"] == platform)
        .cloned()
        .collect()
}

fn post(account: &str, kind: &str, text: &str) -> PostRequest {
    PostRequest {
        account: AccountRef {
            platform_account_id: account.into(),
            kind: kind.into(),
        },
        text: text.into(),
        link_url: None,
        media: vec![],
        marker: format!("mk-{text}"),
    }
}

fn with_image(mut p: PostRequest, url: url::Url) -> PostRequest {
    p.media.push(MediaRef {
        url,
        content_type: "image/png".into(),
    });
    p
}

struct Connected {
    base: url::Url,
    config: PlatformsConfig,
    c: Box<dyn Connector>,
    access: String,
    refresh: String,
    account: String,
}

async fn connect(platform: Platform, hint: &str) -> Connected {
    let (base, config) = world().await;
    let c = platforms::connector(platform, &config).unwrap();
    let app = config.app(platform).unwrap();
    let (tokens, info) = platforms::connect_headless(c.as_ref(), &app, &config.http, hint)
        .await
        .unwrap();
    assert_eq!(info.id, hint, "the login hint names the connected account");
    // a long-lived token (about 60 days), kept as the refresh token too
    assert!(tokens.expires_in.unwrap() > Duration::from_secs(59 * 86_400));
    Connected {
        base,
        c,
        access: tokens.access_token.expose_secret().to_owned(),
        refresh: tokens.refresh_token.unwrap().expose_secret().to_owned(),
        account: info.id,
        config,
    }
}

#[tokio::test]
async fn facebook_connects_a_page_publishes_reconciles_and_reads_metrics() {
    let w = connect(Platform::Facebook, "acme-page").await;
    let (c, token) = (w.c.as_ref(), w.access.as_str());
    assert_ne!(w.access, w.refresh, "publishing uses the Page token");
    assert_eq!(
        ledger(&w.base, "facebook").await,
        pairs(&[
            ("oauth.code", "issued"),
            ("oauth.exchange", "issued"),
            ("me.accounts", "ok"),
            ("me", "ok"),
        ])
    );
    let media = media_server().await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);

    let mut text = post(&w.account, "page", "Spring menu is here");
    text.link_url = Some("https://acme.example/menu".parse().unwrap());
    assert_eq!(
        c.find_by_marker(token, &text, since).await.unwrap(),
        Lookup::NotFound
    );
    let published = c.publish(token, &text, &Unfenced).await.unwrap();
    assert!(published.post_id.starts_with("acme-page_"));
    assert_eq!(
        published.url.as_deref(),
        Some(format!("https://www.facebook.com/{}", published.post_id).as_str())
    );
    assert!(
        published.request_id.is_some(),
        "Meta's x-fb-trace-id is kept"
    );

    let photo = with_image(
        post(&w.account, "page", "Our new terrace"),
        media.join("card.png").unwrap(),
    );
    let photo_published = c.publish(token, &photo, &Unfenced).await.unwrap();
    assert!(photo_published.post_id.starts_with("acme-page_"));

    let stored = sandbox_posts(&w.base, "facebook").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["account"], "acme-page");
    assert_eq!(stored[0]["text"], "Spring menu is here");
    assert_eq!(stored[0]["link_url"], "https://acme.example/menu");
    assert_eq!(stored[0]["media"], serde_json::json!([]));
    assert_eq!(stored[1]["text"], "Our new terrace");
    assert_eq!(
        stored[1]["media"],
        serde_json::json!([media.join("card.png").unwrap().as_str()])
    );

    for (req, p) in [(&text, &published), (&photo, &photo_published)] {
        match c.find_by_marker(token, req, since).await.unwrap() {
            Lookup::Found(found) => assert_eq!(found.post_id, p.post_id),
            other => panic!("expected the post, got {other:?}"),
        }
    }
    assert_eq!(
        c.find_by_marker(token, &post(&w.account, "page", "never posted"), since)
            .await
            .unwrap(),
        Lookup::NotFound
    );
    // posted before the attempt began: not ours
    assert_eq!(
        c.find_by_marker(
            token,
            &text,
            chrono::Utc::now() + chrono::Duration::seconds(5)
        )
        .await
        .unwrap(),
        Lookup::NotFound
    );
    c.publish(token, &text, &Unfenced).await.unwrap();
    assert!(matches!(
        c.find_by_marker(token, &text, since).await.unwrap(),
        Lookup::Unknowable(_)
    ));

    let m = c
        .metrics(token, &text.account, &published.post_id)
        .await
        .unwrap();
    let likes = m.likes.unwrap();
    assert_eq!(m.comments, Some(likes / 10));
    assert_eq!(m.shares, Some(likes / 20));
    assert_eq!(m.impressions, Some(likes * 12 + 100));
    assert!(m.reach.unwrap() > 0);
    assert_eq!(c.quota(token, &text.account).await.unwrap(), None);

    // the user token cannot post as the Page: Meta's permission error, kept for the console
    match c
        .publish(&w.refresh, &post(&w.account, "page", "x"), &Unfenced)
        .await
    {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("pages_manage_posts"), "{m}"),
        other => panic!("{other:?}"),
    }
    let from = ledger(&w.base, "facebook").await.len();
    match c
        .publish(token, &post(&w.account, "page", "  "), &Unfenced)
        .await
    {
        Err(PlatformError::Permanent(_)) => {}
        other => panic!("an empty post is refused: {other:?}"),
    }
    assert_eq!(
        ledger(&w.base, "facebook").await.len(),
        from,
        "before any request"
    );

    // refresh: a fresh long-lived user token and the Page token again
    let app = w.config.app(Platform::Facebook).unwrap();
    let renewed = c.refresh(&app, &w.refresh).await.unwrap();
    let new_refresh = renewed.refresh_token.unwrap();
    assert_ne!(new_refresh.expose_secret(), w.refresh);
    assert!(renewed.expires_in.unwrap() > Duration::from_secs(59 * 86_400));
    let info = c
        .account_info(renewed.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(info.id, "acme-page");
    c.publish(
        renewed.access_token.expose_secret(),
        &post(&w.account, "page", "after refresh"),
        &Unfenced,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn facebook_faults_are_classified() {
    let w = connect(Platform::Facebook, "acme-page").await;
    let (c, token, base) = (w.c.as_ref(), w.access.as_str(), &w.base);
    let req = post(&w.account, "page", "fault");
    set_knobs(
        base,
        &Knobs {
            rate_limit_rate: 1.0,
            retry_after_secs: 90,
            ..auto_approve()
        },
    )
    .await;
    match c.publish(token, &req, &Unfenced).await {
        // Meta's usage header gives whole minutes
        Err(PlatformError::RateLimited {
            retry_after,
            message,
        }) => {
            assert_eq!(retry_after, Duration::from_secs(120));
            assert!(message.contains("(#32)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    set_knobs(
        base,
        &Knobs {
            error_rate: 1.0,
            ..auto_approve()
        },
    )
    .await;
    assert!(matches!(
        c.publish(token, &req, &Unfenced).await,
        Err(PlatformError::Transient(_))
    ));
    set_knobs(base, &auto_approve()).await;
    assert!(matches!(
        c.publish("not-a-token", &req, &Unfenced).await,
        Err(PlatformError::Auth(_))
    ));
    let media = media_server().await;
    let bad = with_image(
        post(&w.account, "page", "bad image"),
        media.join("note.txt").unwrap(),
    );
    match c.publish(token, &bad, &Unfenced).await {
        Err(PlatformError::Permanent(m)) => {
            assert!(
                m.contains("invalid image file") && m.contains("not an image"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    for mode in ["500", "drop"] {
        set_knobs(
            base,
            &Knobs {
                accept_then_fail: Some(mode.into()),
                ..auto_approve()
            },
        )
        .await;
        let req = post(&w.account, "page", &format!("lost answer {mode}"));
        let since = chrono::Utc::now() - chrono::Duration::seconds(2);
        assert!(
            matches!(
                c.publish(token, &req, &Unfenced).await,
                Err(PlatformError::Transient(_))
            ),
            "{mode}"
        );
        set_knobs(base, &auto_approve()).await;
        assert!(
            matches!(
                c.find_by_marker(token, &req, since).await.unwrap(),
                Lookup::Found(_)
            ),
            "{mode}"
        );
    }
    let app = w.config.app(Platform::Facebook).unwrap();
    set_knobs(
        base,
        &Knobs {
            fail_refresh: Some("transient".into()),
            ..auto_approve()
        },
    )
    .await;
    assert!(matches!(
        c.refresh(&app, &w.refresh).await,
        Err(PlatformError::Transient(_))
    ));
    set_knobs(
        base,
        &Knobs {
            fail_refresh: Some("invalid_grant".into()),
            ..auto_approve()
        },
    )
    .await;
    match c.refresh(&app, &w.refresh).await {
        Err(PlatformError::GrantRevoked(m)) => assert!(m.contains("session has been invalidated")),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a revoked session cannot be refreshed"),
    }
    // the grant is gone: the Page token with it
    assert!(matches!(
        c.publish(token, &req, &Unfenced).await,
        Err(PlatformError::Auth(_))
    ));
}

#[tokio::test]
async fn instagram_publishes_through_a_polled_container_and_respects_the_quota() {
    let w = connect(Platform::Instagram, "acme-ig").await;
    let (c, token, base) = (w.c.as_ref(), w.access.as_str(), &w.base);
    assert_eq!(w.access, w.refresh, "the long-lived user token is both");
    let media = media_server().await;
    let image = media.join("card.png").unwrap();
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);

    let before = ledger(base, "instagram").await;
    match c
        .publish(
            token,
            &post(&w.account, "business", "words only"),
            &Unfenced,
        )
        .await
    {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("without an image"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ledger(base, "instagram").await,
        before,
        "refused before any request"
    );

    let req = with_image(
        post(&w.account, "business", "Fresh bread #bakery"),
        image.clone(),
    );
    assert_eq!(
        c.find_by_marker(token, &req, since).await.unwrap(),
        Lookup::NotFound
    );
    let start = ledger(base, "instagram").await.len();
    let published = c.publish(token, &req, &Unfenced).await.unwrap();
    assert_eq!(
        ledger(base, "instagram").await[start..],
        pairs(&[
            ("media.create", "ok"),
            ("container.status", "ok"), // IN_PROGRESS
            ("container.status", "ok"), // FINISHED
            ("media.publish", "created"),
            ("media.read", "ok"), // permalink
        ])
    );
    assert_eq!(
        published.url.as_deref(),
        Some(format!("https://www.instagram.com/p/{}/", published.post_id).as_str())
    );
    let stored = sandbox_posts(base, "instagram").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], published.post_id.as_str());
    assert_eq!(stored[0]["account"], "acme-ig");
    assert_eq!(stored[0]["text"], "Fresh bread #bakery");
    assert_eq!(stored[0]["media"], serde_json::json!([image.as_str()]));

    match c.find_by_marker(token, &req, since).await.unwrap() {
        Lookup::Found(p) => assert_eq!(p.post_id, published.post_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.find_by_marker(
            token,
            &with_image(post(&w.account, "business", "other"), image.clone()),
            since
        )
        .await
        .unwrap(),
        Lookup::NotFound
    );

    let m = c
        .metrics(token, &req.account, &published.post_id)
        .await
        .unwrap();
    let likes = m.likes.unwrap();
    assert_eq!(m.comments, Some(likes / 10));
    assert_eq!(m.shares, Some(likes / 20));
    assert_eq!(m.views, Some(likes * 12 + 100));
    assert!(m.reach.unwrap() > 0);

    let q = c.quota(token, &req.account).await.unwrap().unwrap();
    assert_eq!(
        (q.used, q.limit, q.window),
        (1, 100, Duration::from_secs(86_400))
    );
    set_knobs(
        base,
        &Knobs {
            quota_per_day: Some(2),
            ..auto_approve()
        },
    )
    .await;
    let q = c.quota(token, &req.account).await.unwrap().unwrap();
    assert_eq!((q.used, q.limit), (1, 2));
    c.publish(
        token,
        &with_image(post(&w.account, "business", "second"), image.clone()),
        &Unfenced,
    )
    .await
    .unwrap();
    match c
        .publish(
            token,
            &with_image(post(&w.account, "business", "third"), image.clone()),
            &Unfenced,
        )
        .await
    {
        Err(PlatformError::RateLimited {
            retry_after,
            message,
        }) => {
            assert_eq!(retry_after, Duration::from_secs(3600));
            assert!(message.contains("publishing limit"), "{message}");
        }
        other => panic!("the publishing limit refuses the third post: {other:?}"),
    }
    let log = ledger(base, "instagram").await;
    assert_eq!(log.iter().filter(|(_, o)| o == "created").count(), 2);
    assert_eq!(
        log.last().unwrap(),
        &("media.publish".to_owned(), "quota_exceeded".to_owned())
    );

    let app = w.config.app(Platform::Instagram).unwrap();
    let renewed = c.refresh(&app, &w.refresh).await.unwrap();
    assert_eq!(
        renewed.access_token.expose_secret(),
        renewed.refresh_token.unwrap().expose_secret()
    );
    assert_eq!(
        c.account_info(renewed.access_token.expose_secret())
            .await
            .unwrap()
            .id,
        "acme-ig"
    );
}

#[tokio::test]
async fn instagram_faults_are_classified() {
    let w = connect(Platform::Instagram, "acme-ig").await;
    let (c, token, base) = (w.c.as_ref(), w.access.as_str(), &w.base);
    let media = media_server().await;
    let req = with_image(
        post(&w.account, "business", "fault"),
        media.join("card.png").unwrap(),
    );

    // the platform pulls the image: one it cannot fetch is Meta's media error, kept
    for (path, why) in [("missing.png", "404"), ("note.txt", "not an image")] {
        let bad = with_image(
            post(&w.account, "business", "bad media"),
            media.join(path).unwrap(),
        );
        match c.publish(token, &bad, &Unfenced).await {
            Err(PlatformError::Permanent(m)) => {
                assert!(m.contains("could not be fetched") && m.contains(why), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
    set_knobs(
        base,
        &Knobs {
            rate_limit_rate: 1.0,
            retry_after_secs: 7,
            ..auto_approve()
        },
    )
    .await;
    match c.publish(token, &req, &Unfenced).await {
        Err(PlatformError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(60))
        }
        other => panic!("{other:?}"),
    }
    set_knobs(
        base,
        &Knobs {
            error_rate: 1.0,
            ..auto_approve()
        },
    )
    .await;
    assert!(matches!(
        c.publish(token, &req, &Unfenced).await,
        Err(PlatformError::Transient(_))
    ));
    set_knobs(base, &auto_approve()).await;
    assert!(matches!(
        c.publish("not-a-token", &req, &Unfenced).await,
        Err(PlatformError::Auth(_))
    ));
    assert!(matches!(
        c.metrics("not-a-token", &req.account, "i1").await,
        Err(PlatformError::Auth(_))
    ));
    for mode in ["500", "drop"] {
        set_knobs(
            base,
            &Knobs {
                accept_then_fail: Some(mode.into()),
                ..auto_approve()
            },
        )
        .await;
        let req = with_image(
            post(&w.account, "business", &format!("lost answer {mode}")),
            media.join("card.png").unwrap(),
        );
        let since = chrono::Utc::now() - chrono::Duration::seconds(2);
        assert!(
            matches!(
                c.publish(token, &req, &Unfenced).await,
                Err(PlatformError::Transient(_))
            ),
            "{mode}"
        );
        set_knobs(base, &auto_approve()).await;
        assert!(
            matches!(
                c.find_by_marker(token, &req, since).await.unwrap(),
                Lookup::Found(_)
            ),
            "{mode}"
        );
    }
    let app = w.config.app(Platform::Instagram).unwrap();
    set_knobs(
        base,
        &Knobs {
            fail_refresh: Some("invalid_grant".into()),
            ..auto_approve()
        },
    )
    .await;
    assert!(matches!(
        c.refresh(&app, &w.refresh).await,
        Err(PlatformError::GrantRevoked(_))
    ));
}

#[tokio::test]
async fn a_container_that_stays_in_progress_is_transient() {
    use autosocial_core::platforms::instagram::InstagramConnector;
    let w = connect(Platform::Instagram, "acme-ig").await;
    // a limit shorter than one poll interval: the first IN_PROGRESS read gives up
    let c = InstagramConnector::new(w.config.base(Platform::Instagram), w.config.http.clone())
        .with_polling(Duration::from_millis(200), Duration::from_millis(100));
    let media = media_server().await;
    let req = with_image(
        post(&w.account, "business", "slow"),
        media.join("card.png").unwrap(),
    );
    match c.publish(&w.access, &req, &Unfenced).await {
        Err(PlatformError::Transient(m)) => assert!(m.contains("still processing"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !ledger(&w.base, "instagram")
            .await
            .iter()
            .any(|(e, _)| e == "media.publish"),
        "nothing was published"
    );
}
