//! The TikTok connector against the sandbox's TikTok shapes (`/tiktok/v2/...`): Login Kit with
//! `client_key`, photo Direct Post (creator info, content init, status polling), reconciliation
//! through the video list, metrics through the video query, and every fault classified.

mod common;

use common::{jpeg, world};

use autosocial_core::domain::Platform;
use autosocial_core::platforms::Unfenced;
use autosocial_core::platforms::{
    self, AccountRef, Connector, Lookup, MediaRef, OAuthApp, PlatformError, PlatformsConfig,
    PostRequest, errors,
};
use autosocial_sandbox::Knobs;
use autosocial_sandbox::posts::Post;
use axum::routing::get;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use url::Url;

/// Knobs as given, consent approved at once.
async fn set_knobs(base: &Url, k: Knobs) {
    common::set_knobs(
        base,
        &Knobs {
            auto_approve: true,
            ..k
        },
    )
    .await
}

/// The TikTok ledger entries since `since_us`, arrival stamps included.
async fn ledger_since(base: &Url, since_us: u128) -> Vec<Value> {
    common::ledger(base, "tiktok")
        .await
        .into_iter()
        .filter(|e| u128::from(e["at_us"].as_u64().unwrap()) >= since_us)
        .collect()
}

async fn tiktok_posts(base: &Url) -> Vec<Post> {
    serde_json::from_value::<Vec<Post>>(
        common::get_json(base.join("/_sandbox/posts").unwrap()).await,
    )
    .unwrap()
    .into_iter()
    .filter(|p| p.platform == "tiktok")
    .collect()
}

/// `(endpoint, outcome)` of every TikTok request handled since `since_us`.
async fn sequence(base: &Url, since_us: u128) -> Vec<(String, String)> {
    common::handled(&ledger_since(base, since_us).await)
}

/// A media host standing in for the admin's signed media URLs: a real JPEG, a PNG, and a PNG
/// that claims to be a JPEG.
async fn media_server() -> Url {
    let png = common::png(16, 16);
    common::media_server(vec![
        ("/card.jpg", "image/jpeg", jpeg()),
        ("/card.png", "image/png", png.clone()),
        ("/disguised.jpg", "image/jpeg", png),
    ])
    .await
}

fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn post(account: &str, text: &str, media: Option<(Url, &str)>) -> PostRequest {
    PostRequest {
        account: AccountRef {
            platform_account_id: account.into(),
            kind: "user".into(),
        },
        text: text.into(),
        link_url: None,
        media: media
            .into_iter()
            .map(|(url, ct)| MediaRef {
                url,
                content_type: ct.into(),
            })
            .collect(),
        marker: format!("mk-{text}"),
    }
}

struct Connected {
    base: Url,
    config: PlatformsConfig,
    c: Box<dyn Connector>,
    app: OAuthApp,
    token: String,
    refresh: String,
    account: String,
    media: Url,
}

async fn connected() -> Connected {
    let (base, config) = world().await;
    let c = platforms::connector(Platform::Tiktok, &config).unwrap();
    let app = config.app(Platform::Tiktok).unwrap();
    let (tokens, info) = platforms::connect_headless(c.as_ref(), &app, &config.http, "acme")
        .await
        .unwrap();
    assert_eq!(info.id, "acme", "the open_id is the consenting account");
    assert_eq!(
        tokens.scopes,
        vec!["user.info.basic", "video.publish", "video.list"]
    );
    assert!(tokens.expires_in.is_some());
    Connected {
        base,
        c,
        app,
        token: tokens.access_token.expose_secret().to_owned(),
        refresh: tokens.refresh_token.unwrap().expose_secret().to_owned(),
        account: info.id,
        config,
        media: media_server().await,
    }
}

#[tokio::test]
async fn photo_posts_go_through_creator_info_init_and_status_polling() {
    let w = connected().await;
    let mut req = post(
        &w.account,
        "Spring menu is here\nTry the rhubarb tart #spring",
        Some((w.media.join("card.jpg").unwrap(), "image/jpeg")),
    );
    req.link_url = Some(Url::parse("https://shop.example/menu").unwrap());
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    assert_eq!(
        w.c.find_by_marker(&w.token, &req, since).await.unwrap(),
        Lookup::NotFound
    );

    let start = now_us();
    let published = w.c.publish(&w.token, &req, &Unfenced).await.unwrap();
    assert_eq!(
        sequence(&w.base, start).await,
        [
            ("creator_info.query", "ok"),
            ("content.init", "created"),
            ("status.fetch", "processing"),
            ("status.fetch", "complete"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let posts = tiktok_posts(&w.base).await;
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    assert_eq!(p.id, published.post_id);
    assert_eq!(p.account, "acme");
    assert_eq!(
        p.text, "Spring menu is here\nTry the rhubarb tart #spring\n\nhttps://shop.example/menu",
        "the link ends the description"
    );
    assert_eq!(p.media, vec![req.media[0].url.to_string()]);
    assert!(
        published
            .url
            .as_deref()
            .unwrap()
            .ends_with(&format!("/@acme/photo/{}", p.id))
    );
    assert!(published.request_id.is_some(), "TikTok's log_id is kept");

    match w.c.find_by_marker(&w.token, &req, since).await.unwrap() {
        Lookup::Found(f) => assert_eq!(f.post_id, published.post_id),
        other => panic!("expected the post, got {other:?}"),
    }
    let m =
        w.c.metrics(&w.token, &req.account, &published.post_id)
            .await
            .unwrap();
    let (likes, comments, shares, views) = autosocial_sandbox::Sandbox::engagement(p);
    assert_eq!(
        (m.likes, m.comments, m.shares, m.views),
        (Some(likes), Some(comments), Some(shares), Some(views))
    );
    assert_eq!(w.c.quota(&w.token, &req.account).await.unwrap(), None);

    // a publish_id (a post still private or in moderation) resolves to the post's id
    let m2 =
        w.c.metrics(
            &w.token,
            &req.account,
            &format!("p_pub_url~v2.{}", published.post_id),
        )
        .await
        .unwrap();
    assert_eq!(m2, m);
}

#[tokio::test]
async fn what_tiktok_cannot_post_is_refused_before_any_request() {
    let w = connected().await;
    let start = now_us();
    match w
        .c
        .publish(&w.token, &post(&w.account, "just words", None), &Unfenced)
        .await
    {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("no text-only posts"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut link = post(&w.account, "read this", None);
    link.link_url = Some(Url::parse("https://blog.example/post").unwrap());
    match w.c.publish(&w.token, &link, &Unfenced).await {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("no link posts"), "{m}"),
        other => panic!("{other:?}"),
    }
    let png = post(
        &w.account,
        "png card",
        Some((w.media.join("card.png").unwrap(), "image/png")),
    );
    match w.c.publish(&w.token, &png, &Unfenced).await {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("JPEG or WebP"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        ledger_since(&w.base, start).await.is_empty(),
        "nothing reached TikTok"
    );
}

#[tokio::test]
async fn photos_tiktok_cannot_pull_fail_after_init() {
    let w = connected().await;
    for (path, reason) in [
        ("disguised.jpg", "file_format_check_failed"),
        ("missing.jpg", "photo_pull_failed"),
    ] {
        let start = now_us();
        let req = post(
            &w.account,
            path,
            Some((w.media.join(path).unwrap(), "image/jpeg")),
        );
        match w.c.publish(&w.token, &req, &Unfenced).await {
            Err(PlatformError::Permanent(m)) => assert!(m.contains(reason), "{m}"),
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(
            sequence(&w.base, start).await,
            [
                ("creator_info.query", "ok"),
                ("content.init", reason),
                ("status.fetch", "failed"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }
    assert!(tiktok_posts(&w.base).await.is_empty());
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_the_grant() {
    let w = connected().await;
    let t = w.c.refresh(&w.app, &w.refresh).await.unwrap();
    let fresh = t.access_token.expose_secret().to_owned();
    assert_ne!(fresh, w.token);
    assert_eq!(w.c.account_info(&fresh).await.unwrap().id, "acme");
    assert!(matches!(
        w.c.refresh(&w.app, &w.refresh).await,
        Err(PlatformError::GrantRevoked(_))
    ));
    let wrong = OAuthApp {
        client_id: "someone-else".into(),
        client_secret: secrecy::SecretString::from("nope".to_owned()),
    };
    assert!(matches!(
        w.c.refresh(&wrong, "rt_whatever").await,
        Err(PlatformError::AppCredentials(_))
    ));
}

#[tokio::test]
async fn faults_are_classified() {
    let w = connected().await;
    let jpeg = || Some((w.media.join("card.jpg").unwrap(), "image/jpeg"));

    set_knobs(
        &w.base,
        Knobs {
            rate_limit_rate: 1.0,
            retry_after_secs: 7,
            ..Knobs::default()
        },
    )
    .await;
    match w
        .c
        .publish(&w.token, &post(&w.account, "a", jpeg()), &Unfenced)
        .await
    {
        Err(PlatformError::RateLimited { retry_after, .. }) => assert_eq!(retry_after.as_secs(), 7),
        other => panic!("{other:?}"),
    }
    set_knobs(
        &w.base,
        Knobs {
            error_rate: 1.0,
            ..Knobs::default()
        },
    )
    .await;
    assert!(matches!(
        w.c.publish(&w.token, &post(&w.account, "a", jpeg()), &Unfenced)
            .await,
        Err(PlatformError::Transient(_))
    ));
    set_knobs(&w.base, Knobs::default()).await;
    assert!(matches!(
        w.c.publish("not-a-token", &post(&w.account, "a", jpeg()), &Unfenced)
            .await,
        Err(PlatformError::Auth(_))
    ));
    assert!(matches!(
        w.c.account_info("not-a-token").await,
        Err(PlatformError::Auth(_))
    ));

    // the daily cap: TikTok's spam_risk_too_many_posts, a rate limit, nothing created
    w.c.publish(&w.token, &post(&w.account, "first", jpeg()), &Unfenced)
        .await
        .unwrap();
    set_knobs(
        &w.base,
        Knobs {
            quota_per_day: Some(1),
            ..Knobs::default()
        },
    )
    .await;
    match w
        .c
        .publish(&w.token, &post(&w.account, "second", jpeg()), &Unfenced)
        .await
    {
        Err(PlatformError::RateLimited {
            retry_after,
            message,
        }) => {
            assert!(retry_after.as_secs() >= 3600);
            assert!(message.contains("spam_risk_too_many_posts"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(tiktok_posts(&w.base).await.len(), 1);

    // accepted, then the answer is lost: transient for us, and reconciliation finds the post
    for mode in ["500", "drop"] {
        set_knobs(
            &w.base,
            Knobs {
                accept_then_fail: Some(mode.into()),
                ..Knobs::default()
            },
        )
        .await;
        let req = post(&w.account, &format!("lost answer {mode}"), jpeg());
        let since = chrono::Utc::now() - chrono::Duration::seconds(5);
        assert!(
            matches!(
                w.c.publish(&w.token, &req, &Unfenced).await,
                Err(PlatformError::Transient(_))
            ),
            "{mode}"
        );
        set_knobs(&w.base, Knobs::default()).await;
        match w.c.find_by_marker(&w.token, &req, since).await.unwrap() {
            Lookup::Found(f) => {
                let posts = tiktok_posts(&w.base).await;
                let p = posts.iter().find(|p| p.text == req.text).unwrap();
                assert_eq!(f.post_id, p.id, "{mode}");
            }
            other => panic!("{mode}: {other:?}"),
        }
    }
}

/// A request the sandbox refuses as TikTok would keeps TikTok's code and message.
#[tokio::test]
async fn validation_errors_keep_tiktoks_message() {
    let w = connected().await;
    let url = w
        .base
        .join("/tiktok/v2/post/publish/content/init/")
        .unwrap();
    let r = w
        .config
        .http
        .post(url)
        .bearer_auth(&w.token)
        .json(&json!({
            "post_info": {"description": "x", "privacy_level": "PUBLIC_TO_EVERYONE"},
            "source_info": {"source": "PULL_FROM_URL", "photo_images": [w.media.join("card.jpg").unwrap()]},
            "post_mode": "DIRECT_POST",
            "media_type": "PHOTO",
        }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        errors::classify(
            Platform::Tiktok,
            status,
            &headers,
            &body,
            chrono::Utc::now()
        ),
        PlatformError::Permanent(
            "invalid_params: source_info.photo_cover_index is required".into()
        )
    );
    assert!(tiktok_posts(&w.base).await.is_empty());
}

/// TikTok answers many failures with HTTP 200 and an `error.code`: those are failures too.
#[tokio::test]
async fn http_200_with_an_error_code_is_a_failure() {
    let app = axum::Router::new()
        .route(
            "/v2/post/publish/creator_info/query/",
            axum::routing::post(|| async {
                axum::Json(json!({"data": {}, "error": {"code": "access_token_invalid", "message": "The access token is invalid or not found in the request.", "log_id": "L1"}}))
            }),
        )
        .route(
            "/v2/user/info/",
            get(|| async {
                axum::Json(json!({"data": {}, "error": {"code": "spam_risk_too_many_posts", "message": "cap", "log_id": "L2"}}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = platforms::tiktok::TiktokConnector::new(
        Some(Url::parse(&format!("http://{addr}/")).unwrap()),
        platforms::http_client(),
    );
    let req = post(
        "acme",
        "x",
        Some((
            Url::parse("http://127.0.0.1:9/a.jpg").unwrap(),
            "image/jpeg",
        )),
    );
    assert!(matches!(
        c.publish("t", &req, &Unfenced).await,
        Err(PlatformError::Auth(m)) if m.contains("access_token_invalid")
    ));
    assert!(matches!(
        c.account_info("t").await,
        Err(PlatformError::RateLimited { .. })
    ));
}
