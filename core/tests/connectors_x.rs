//! The X connector against the sandbox's X shapes (`/x/…`): OAuth with Basic client auth and
//! rotating refresh tokens, text and image posts (one-shot media upload, then the post), the
//! timeline for reconciliation, metrics, and every fault as X answers it.

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

/// Serve a PNG at `/card.png` (the console's media link stand-in).
async fn media_server() -> url::Url {
    common::media_server(vec![("/card.png", "image/png", common::png(1, 1))])
        .await
        .join("card.png")
        .unwrap()
}

/// The X requests that reached the sandbox, as `endpoint:outcome`.
async fn x_ledger(base: &url::Url) -> Vec<String> {
    get_json(base.join("/_sandbox/ledger?platform=x").unwrap())
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["endpoint"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

fn post(account: &str, text: &str) -> PostRequest {
    PostRequest {
        account: AccountRef {
            platform_account_id: account.into(),
            kind: "user".into(),
        },
        text: text.into(),
        link_url: None,
        media: vec![],
        marker: format!("mk-{}", text.len()),
    }
}

/// Connect an account headless; returns the connector, an access token and the account id.
async fn connect(config: &PlatformsConfig, who: &str) -> (Box<dyn Connector>, String, String) {
    let c = platforms::connector(Platform::X, config).unwrap();
    let app = config.app(Platform::X).unwrap();
    let (tokens, info) = platforms::connect_headless(c.as_ref(), &app, &config.http, who)
        .await
        .unwrap();
    let token = tokens.access_token.expose_secret().to_owned();
    (c, token, info.id)
}

#[tokio::test]
async fn x_connects_publishes_text_and_images_finds_and_measures() {
    let (base, config) = world().await;
    let c = platforms::connector(Platform::X, &config).unwrap();
    let app = config.app(Platform::X).unwrap();
    let (tokens, info) = platforms::connect_headless(c.as_ref(), &app, &config.http, "acme")
        .await
        .unwrap();
    assert_eq!(info.id, "acme", "the account that consented");
    assert_eq!(info.name, "Sandbox X account acme (@acme)");
    assert!(tokens.scopes.contains(&"media.write".to_owned()));

    // refresh rotates: the new refresh token works, the old one is refused and revokes the grant
    let old_refresh = tokens.refresh_token.unwrap().expose_secret().to_owned();
    let renewed = c.refresh(&app, &old_refresh).await.unwrap();
    let new_refresh = renewed.refresh_token.unwrap().expose_secret().to_owned();
    assert_ne!(new_refresh, old_refresh);
    let token = renewed.access_token.expose_secret().to_owned();
    assert!(c.account_info(&token).await.is_ok());

    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let text = post(
        &info.id,
        "Tom & Jerry <3 our new menu https://example.com/menu?a=1&b=2",
    );
    assert_eq!(
        c.find_by_marker(&token, &text, since).await.unwrap(),
        Lookup::NotFound
    );
    let published = c.publish(&token, &text, &Unfenced).await.unwrap();
    assert_eq!(
        published.url.as_deref(),
        Some(format!("https://x.com/i/web/status/{}", published.post_id).as_str())
    );
    assert!(published.request_id.is_some(), "x-transaction-id is kept");

    let media_url = media_server().await;
    let mut image = post(&info.id, "Today's card");
    image.media.push(MediaRef {
        url: media_url,
        content_type: "image/png".into(),
    });
    let with_image = c.publish(&token, &image, &Unfenced).await.unwrap();

    // exactly: one text post, then one upload and the post that names it
    let ledger = x_ledger(&base).await;
    let creates: Vec<_> = ledger
        .iter()
        .filter(|e| e.starts_with("tweets.create") || e.starts_with("media.upload"))
        .cloned()
        .collect();
    assert_eq!(
        creates,
        [
            "tweets.create:created",
            "media.upload:uploaded",
            "tweets.create:created"
        ]
    );
    let posts = get_json(base.join("/_sandbox/posts").unwrap()).await;
    let x_posts: Vec<&Value> = posts
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["platform"] == "x")
        .collect();
    assert_eq!(x_posts.len(), 2);
    assert_eq!(x_posts[0]["text"], text.text.as_str());
    assert_eq!(x_posts[0]["account"], "acme");
    assert_eq!(x_posts[1]["text"], "Today's card");
    assert_eq!(x_posts[1]["media"].as_array().unwrap().len(), 1);
    assert_eq!(x_posts[1]["id"], with_image.post_id.as_str());

    // the timeline gives t.co links and escaped text back; the connector still recognises it
    match c.find_by_marker(&token, &text, since).await.unwrap() {
        Lookup::Found(p) => assert_eq!(p.post_id, published.post_id),
        other => panic!("expected the post, got {other:?}"),
    }
    assert_eq!(
        c.find_by_marker(&token, &post(&info.id, "never posted"), since)
            .await
            .unwrap(),
        Lookup::NotFound
    );
    // posts before `since` are not looked at
    let later = chrono::Utc::now() + chrono::Duration::seconds(2);
    assert_eq!(
        c.find_by_marker(&token, &text, later).await.unwrap(),
        Lookup::NotFound
    );

    let m = c
        .metrics(&token, &text.account, &published.post_id)
        .await
        .unwrap();
    assert!(m.likes.is_some() && m.comments.is_some() && m.shares.is_some());
    assert!(m.impressions.unwrap() >= 100);
    assert!(matches!(
        c.metrics(&token, &text.account, "x999").await,
        Err(PlatformError::Permanent(m)) if m.contains("Could not find tweet")
    ));
    assert_eq!(c.quota(&token, &text.account).await.unwrap(), None);

    // the old refresh token used again: the whole grant goes
    assert!(matches!(
        c.refresh(&app, &old_refresh).await,
        Err(PlatformError::GrantRevoked(_))
    ));
}

#[tokio::test]
async fn x_faults_are_classified_as_x_answers_them() {
    let (base, config) = world().await;
    let (c, token, _) = connect(&config, "acme").await;

    set_knobs(
        &base,
        &Knobs {
            rate_limit_rate: 1.0,
            retry_after_secs: 7,
            ..auto_approve()
        },
    )
    .await;
    match c.publish(&token, &post("acme", "limited"), &Unfenced).await {
        Err(PlatformError::RateLimited {
            retry_after,
            message,
        }) => {
            assert!((7..=9).contains(&retry_after.as_secs()), "{retry_after:?}");
            assert_eq!(message, "Too Many Requests");
        }
        other => panic!("{other:?}"),
    }
    set_knobs(
        &base,
        &Knobs {
            error_rate: 1.0,
            ..auto_approve()
        },
    )
    .await;
    assert!(matches!(
        c.publish(&token, &post("acme", "down"), &Unfenced).await,
        Err(PlatformError::Transient(_))
    ));
    set_knobs(&base, &auto_approve()).await;
    assert!(matches!(
        c.publish("not-a-token", &post("acme", "who"), &Unfenced).await,
        Err(PlatformError::Auth(m)) if m == "Unauthorized"
    ));

    // validation: X's own message is kept
    match c
        .publish(&token, &post("acme", &"日".repeat(200)), &Unfenced)
        .await
    {
        Err(PlatformError::Permanent(m)) => {
            assert!(m.contains("Your Tweet text is too long"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    c.publish(&token, &post("acme", "only once"), &Unfenced)
        .await
        .unwrap();
    match c
        .publish(&token, &post("acme", "only once"), &Unfenced)
        .await
    {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("duplicate content"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut gif = post("acme", "gif");
    gif.media.push(MediaRef {
        url: media_server().await,
        content_type: "image/gif".into(),
    });
    assert!(matches!(
        c.publish(&token, &gif, &Unfenced).await,
        Err(PlatformError::Permanent(_))
    ));

    // the daily cap: 429 with the 24-hour reset, later than the 15-minute one
    set_knobs(
        &base,
        &Knobs {
            quota_per_day: Some(1),
            ..auto_approve()
        },
    )
    .await;
    match c
        .publish(&token, &post("acme", "over the cap"), &Unfenced)
        .await
    {
        Err(PlatformError::RateLimited { retry_after, .. }) => {
            assert!(
                retry_after > Duration::from_secs(23 * 3600),
                "{retry_after:?}"
            )
        }
        other => panic!("{other:?}"),
    }

    // accepted, then the answer is lost: transient, and reconciliation finds the post
    for mode in ["500", "drop"] {
        set_knobs(
            &base,
            &Knobs {
                accept_then_fail: Some(mode.into()),
                ..auto_approve()
            },
        )
        .await;
        let since = chrono::Utc::now() - chrono::Duration::seconds(5);
        let req = post("acme", &format!("lost answer {mode}"));
        assert!(
            matches!(
                c.publish(&token, &req, &Unfenced).await,
                Err(PlatformError::Transient(_))
            ),
            "{mode}"
        );
        set_knobs(&base, &auto_approve()).await;
        match c.find_by_marker(&token, &req, since).await.unwrap() {
            Lookup::Found(p) => assert!(p.post_id.starts_with('x')),
            other => panic!("{mode}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn x_sandbox_refuses_what_x_refuses() {
    let (base, config) = world().await;
    let (_, token, _) = connect(&config, "acme").await;
    let http = reqwest::Client::new();

    // a post without text or media: 400 invalid-request problem
    let r = http
        .post(base.join("/x/2/tweets").unwrap())
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["type"],
        "https://api.twitter.com/2/problems/invalid-request"
    );
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("text or media")
    );

    // an unknown field and an unknown media id
    let r = http
        .post(base.join("/x/2/tweets").unwrap())
        .bearer_auth(&token)
        .json(&serde_json::json!({"text": "hi", "status": "hi", "media": {"media_ids": ["123"]}}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let messages = v["errors"].to_string();
    assert!(
        messages.contains("`status` field is not allowed")
            && messages.contains("media IDs are invalid")
    );

    // the token endpoint wants HTTP Basic from a confidential client
    let r = http
        .post(base.join("/x/2/oauth2/token").unwrap())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt"),
            ("client_id", "autosocial-sandbox-client"),
            ("client_secret", "autosocial-sandbox-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // max_results outside 5..=100
    let r = http
        .get(base.join("/x/2/users/acme/tweets?max_results=500").unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
