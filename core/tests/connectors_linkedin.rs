//! The LinkedIn connector against the sandbox's LinkedIn shapes (`/linkedin/…`): members and
//! organizations, text, image (initializeUpload, PUT, status) and article posts, reconciliation
//! through the author finder, metrics from socialActions and share statistics, and the faults
//! as LinkedIn answers them.

mod common;

use common::{auto_approve, get_json, set_knobs, world};

use std::time::Duration;

use autosocial_core::domain::Platform;
use autosocial_core::platforms::Unfenced;
use autosocial_core::platforms::linkedin::LinkedinConnector;
use autosocial_core::platforms::{
    self, AccountRef, Connector, Lookup, MediaRef, PlatformError, PlatformsConfig, PostRequest,
};
use autosocial_sandbox::Knobs;
use secrecy::ExposeSecret;
use serde_json::Value;

async fn linkedin_ledger(base: &url::Url) -> Vec<String> {
    get_json(base.join("/_sandbox/ledger?platform=linkedin").unwrap())
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

async fn linkedin_posts(base: &url::Url) -> Vec<Value> {
    get_json(base.join("/_sandbox/posts").unwrap())
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["platform"] == "linkedin")
        .cloned()
        .collect()
}

/// Serve a PNG at `/card.png` (the console's media link stand-in).
async fn media_server() -> url::Url {
    common::media_server(vec![("/card.png", "image/png", common::png(1, 1))])
        .await
        .join("card.png")
        .unwrap()
}

fn post(id: &str, kind: &str, text: &str) -> PostRequest {
    PostRequest {
        account: AccountRef {
            platform_account_id: id.into(),
            kind: kind.into(),
        },
        text: text.into(),
        link_url: None,
        media: vec![],
        marker: "mk".into(),
    }
}

/// Connect `who` with `c`; returns an access token and the member id.
async fn connect(c: &dyn Connector, config: &PlatformsConfig, who: &str) -> (String, String) {
    let app = config.app(Platform::Linkedin).unwrap();
    let (tokens, info) = platforms::connect_headless(c, &app, &config.http, who)
        .await
        .unwrap();
    assert_eq!(info.id, who, "the member that consented");
    (tokens.access_token.expose_secret().to_owned(), info.id)
}

#[tokio::test]
async fn linkedin_member_posts_text_image_and_link() {
    let (base, config) = world().await;
    let c = platforms::connector(Platform::Linkedin, &config).unwrap();
    assert_eq!(c.scopes(), ["openid", "profile", "w_member_social"]);
    let (token, me) = connect(c.as_ref(), &config, "acme").await;
    assert_eq!(
        c.account_info(&token).await.unwrap().name,
        "Sandbox LinkedIn member acme"
    );

    // reserved characters survive only when escaped for little text
    let text = post(&me, "user", "Launch (today) #news @team: 50% off_now!");
    let published = c.publish(&token, &text, &Unfenced).await.unwrap();
    assert!(published.post_id.starts_with("urn:li:share:"));
    assert_eq!(
        published.url.as_deref(),
        Some(
            format!(
                "https://www.linkedin.com/feed/update/{}/",
                published.post_id
            )
            .as_str()
        )
    );
    let mut image = post(&me, "user", "Today's card");
    image.media.push(MediaRef {
        url: media_server().await,
        content_type: "image/png".into(),
    });
    c.publish(&token, &image, &Unfenced).await.unwrap();
    let mut link = post(&me, "user", "Read the story");
    link.link_url = Some(url::Url::parse("https://example.com/story").unwrap());
    c.publish(&token, &link, &Unfenced).await.unwrap();

    let posts = linkedin_posts(&base).await;
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[0]["text"], text.text.as_str());
    assert_eq!(posts[0]["account"], "urn:li:person:acme");
    assert!(
        posts[1]["media"][0]
            .as_str()
            .unwrap()
            .starts_with("urn:li:image:")
    );
    assert_eq!(posts[2]["link_url"], "https://example.com/story");
    let creating: Vec<String> = linkedin_ledger(&base)
        .await
        .into_iter()
        .filter(|e| e.starts_with("posts.") || e.starts_with("images."))
        .collect();
    assert_eq!(
        creating,
        [
            "posts.create:created",
            "images.initializeUpload:ok",
            "images.upload:uploaded",
            "posts.create:created",
            "posts.create:created"
        ]
    );

    // without r_member_social LinkedIn lists no member posts and gives no social actions
    let since = chrono::Utc::now() - chrono::Duration::seconds(10);
    match c.find_by_marker(&token, &text, since).await.unwrap() {
        Lookup::Unknowable(why) => assert!(why.contains("r_member_social"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.metrics(&token, &text.account, &published.post_id).await,
        Err(PlatformError::Permanent(m)) if m.starts_with("ACCESS_DENIED")
    ));
    assert_eq!(c.quota(&token, &text.account).await.unwrap(), None);
}

#[tokio::test]
async fn linkedin_member_with_read_permission_reconciles_and_measures() {
    let (base, config) = world().await;
    let c = LinkedinConnector::new(config.base(Platform::Linkedin), config.http.clone())
        .with_member_read_scope();
    let (token, me) = connect(&c, &config, "bea").await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(10);
    let req = post(&me, "user", "Quarterly update [draft] *final*");
    assert_eq!(
        c.find_by_marker(&token, &req, since).await.unwrap(),
        Lookup::NotFound
    );
    let published = c.publish(&token, &req, &Unfenced).await.unwrap();
    match c.find_by_marker(&token, &req, since).await.unwrap() {
        Lookup::Found(p) => assert_eq!(p.post_id, published.post_id),
        other => panic!("{other:?}"),
    }
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        c.find_by_marker(&token, &req, later).await.unwrap(),
        Lookup::NotFound
    );
    let m = c
        .metrics(&token, &req.account, &published.post_id)
        .await
        .unwrap();
    assert!(m.likes.is_some() && m.comments.is_some());
    assert_eq!((m.impressions, m.reach), (None, None));

    // accepted, then the answer is lost: transient, and the finder has it
    for mode in ["500", "drop"] {
        set_knobs(
            &base,
            &Knobs {
                accept_then_fail: Some(mode.into()),
                ..auto_approve()
            },
        )
        .await;
        let lost = post(&me, "user", &format!("lost answer {mode}"));
        assert!(
            matches!(
                c.publish(&token, &lost, &Unfenced).await,
                Err(PlatformError::Transient(_))
            ),
            "{mode}"
        );
        set_knobs(&base, &auto_approve()).await;
        assert!(
            matches!(
                c.find_by_marker(&token, &lost, since).await.unwrap(),
                Lookup::Found(_)
            ),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn linkedin_organization_posts_reconciles_and_reads_share_statistics() {
    let (base, config) = world().await;
    let c = LinkedinConnector::new(config.base(Platform::Linkedin), config.http.clone())
        .with_organization_scopes();
    let (token, _) = connect(&c, &config, "page-admin").await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(10);
    let mut req = post("777", "organization", "We are hiring!");
    req.media.push(MediaRef {
        url: media_server().await,
        content_type: "image/png".into(),
    });
    let published = c.publish(&token, &req, &Unfenced).await.unwrap();
    let posts = linkedin_posts(&base).await;
    assert_eq!(posts[0]["account"], "urn:li:organization:777");
    assert_eq!(posts[0]["text"], "We are hiring!");
    match c.find_by_marker(&token, &req, since).await.unwrap() {
        Lookup::Found(p) => assert_eq!(p.post_id, published.post_id),
        other => panic!("{other:?}"),
    }
    let m = c
        .metrics(&token, &req.account, &published.post_id)
        .await
        .unwrap();
    assert!(m.impressions.unwrap() >= 100);
    assert!(m.reach.is_some() && m.clicks.is_some() && m.shares.is_some() && m.likes.is_some());

    // a member connector cannot post as the organization
    let member = platforms::connector(Platform::Linkedin, &config).unwrap();
    let (member_token, _) = connect(member.as_ref(), &config, "someone").await;
    assert!(matches!(
        member.publish(&member_token, &post("777", "organization", "not mine"), &Unfenced).await,
        Err(PlatformError::Permanent(m)) if m.starts_with("ACCESS_DENIED")
    ));
}

#[tokio::test]
async fn linkedin_faults_are_classified() {
    let (base, config) = world().await;
    let c = platforms::connector(Platform::Linkedin, &config).unwrap();
    let (token, me) = connect(c.as_ref(), &config, "acme").await;

    for k in [
        Knobs {
            rate_limit_rate: 1.0,
            ..auto_approve()
        },
        Knobs {
            quota_per_day: Some(0),
            ..auto_approve()
        },
    ] {
        set_knobs(&base, &k).await;
        match c
            .publish(&token, &post(&me, "user", "limited"), &Unfenced)
            .await
        {
            // LinkedIn's daily limits reset at midnight UTC
            Err(PlatformError::RateLimited {
                retry_after,
                message,
            }) => {
                assert!(
                    retry_after <= Duration::from_secs(24 * 3600 + 120),
                    "{retry_after:?}"
                );
                assert!(message.contains("DAY limit"), "{message}");
            }
            other => panic!("{other:?}"),
        }
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
        c.publish(&token, &post(&me, "user", "down"), &Unfenced)
            .await,
        Err(PlatformError::Transient(_))
    ));
    set_knobs(&base, &auto_approve()).await;
    assert!(matches!(
        c.publish("nope", &post(&me, "user", "who"), &Unfenced).await,
        Err(PlatformError::Auth(m)) if m.contains("Invalid access token")
    ));
    match c
        .publish(&token, &post(&me, "user", &"a".repeat(3001)), &Unfenced)
        .await
    {
        Err(PlatformError::Permanent(m)) => {
            assert!(m.contains("exceeds maximum allowed length 3000"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // another member's URN as author
    assert!(matches!(
        c.publish(&token, &post("someone-else", "user", "hi"), &Unfenced).await,
        Err(PlatformError::Permanent(m)) if m.starts_with("ACCESS_DENIED")
    ));
    // a retired API version
    let old = LinkedinConnector::new(config.base(Platform::Linkedin), config.http.clone())
        .with_version("202301");
    match old
        .publish(&token, &post(&me, "user", "old"), &Unfenced)
        .await
    {
        Err(PlatformError::Permanent(m)) => assert!(m.contains("not active"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(linkedin_posts(&base).await.is_empty(), "nothing was posted");
}

#[tokio::test]
async fn linkedin_sandbox_refuses_what_linkedin_refuses() {
    let (base, config) = world().await;
    let c = platforms::connector(Platform::Linkedin, &config).unwrap();
    let (token, me) = connect(c.as_ref(), &config, "acme").await;
    let http = reqwest::Client::new();
    let body = serde_json::json!({
        "author": format!("urn:li:person:{me}"),
        "commentary": "hi",
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED"},
        "lifecycleState": "PUBLISHED"
    });
    let r = http
        .post(base.join("/linkedin/rest/posts").unwrap())
        .bearer_auth(&token)
        .header("X-Restli-Protocol-Version", "2.0.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "VERSION_MISSING");

    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("distribution");
    missing["text"] = serde_json::json!("old field");
    let r = http
        .post(base.join("/linkedin/rest/posts").unwrap())
        .bearer_auth(&token)
        .header(
            "LinkedIn-Version",
            autosocial_core::platforms::linkedin::LINKEDIN_VERSION,
        )
        .header("X-Restli-Protocol-Version", "2.0.0")
        .json(&missing)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("/text"), "{v}");

    // the token endpoint wants the client credentials in the body
    let r = http
        .post(base.join("/linkedin/oauth/v2/accessToken").unwrap())
        .basic_auth(
            "autosocial-sandbox-client",
            Some("autosocial-sandbox-secret"),
        )
        .form(&[("grant_type", "authorization_code"), ("code", "c")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
