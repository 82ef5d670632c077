//! The composer: roles, tenant isolation, server-side validation (targets, times, platform
//! lengths, uploads), the live checks partial, and a composed post that is approved straight
//! into publications and publish jobs.

mod common;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use common::{Browser, account, client, logged_in, user};
use sqlx::PgPool;
use uuid::Uuid;

use autosocial_core::content::cards::image;
use autosocial_core::domain::Role;

async fn items(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM content_items")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Acme with a member of each role, a client in Europe/Berlin with an X and an Instagram account.
async fn acme(pool: &PgPool) -> (Uuid, Uuid, Uuid) {
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        user(pool, "Acme", email, role).await;
    }
    let c = client(pool, "Acme", "Bakery").await;
    let x = account(pool, c, "x", "@bakery").await;
    let ig = account(pool, c, "instagram", "bakery.ig").await;
    (c, x, ig)
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::new_rgb8(w, h)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// POST a file as htmx does (multipart, CSRF token in the header).
async fn upload(
    b: &mut Browser,
    csrf: &str,
    client: Uuid,
    name: &str,
    bytes: &[u8],
) -> (StatusCode, String) {
    let r = b
        .upload(
            &format!("/clients/{client}/compose/upload"),
            &[],
            ("image_file", name, bytes),
            &[("hx-request", "true"), ("x-csrf-token", csrf)],
        )
        .await;
    (r.status, r.body)
}

fn compose<'a>(
    csrf: &'a str,
    caption: &'a str,
    accounts: &[&'a str],
    when: &'a str,
    at: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("_csrf", csrf),
        ("caption", caption),
        ("hashtags", "bread sourdough"),
        ("cta", ""),
        ("link_url", ""),
        ("image", "none"),
        ("when", when),
        ("at", at),
    ];
    for a in accounts {
        f.push(("account", a));
    }
    f
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn only_reviewers_and_up_compose(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    let xs = x.to_string();
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        let (mut b, csrf) = logged_in(&pool, email).await;
        let may = role.allows(Role::Reviewer);
        let want = |ok: StatusCode| if may { ok } else { StatusCode::FORBIDDEN };
        let page = b.get(&format!("/clients/{c}/compose")).await;
        assert_eq!(page.status, want(StatusCode::OK), "{role} GET");
        let r = b
            .post(
                &format!("/clients/{c}/compose/check"),
                &compose(&csrf, "Hello", &[&xs], "review", ""),
            )
            .await;
        assert_eq!(r.status, want(StatusCode::OK), "{role} check");
        let (status, _) = upload(&mut b, &csrf, c, "a.png", &png(4, 4)).await;
        assert_eq!(status, want(StatusCode::OK), "{role} upload");
        let r = b
            .post(
                &format!("/clients/{c}/compose"),
                &compose(&csrf, "Hello", &[&xs], "review", "2099-05-01T09:00"),
            )
            .await;
        assert_eq!(
            r.status,
            want(StatusCode::SEE_OTHER),
            "{role} save: {}",
            r.body
        );
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn another_agencys_client_and_accounts_are_not_found(pool: PgPool) {
    let (c, x, _) = acme(&pool).await;
    user(&pool, "Other", "owner@other.test", Role::Owner).await;
    let theirs = client(&pool, "Other", "Florist").await;
    let their_account = account(&pool, theirs, "x", "@florist").await;
    let (mut b, csrf) = logged_in(&pool, "owner@other.test").await;
    assert_eq!(
        b.get(&format!("/clients/{c}/compose")).await.status,
        StatusCode::NOT_FOUND
    );
    let xs = x.to_string();
    let r = b
        .post(
            &format!("/clients/{c}/compose"),
            &compose(&csrf, "Hi", &[&xs], "review", "2099-05-01T09:00"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = b
        .post(
            &format!("/clients/{c}/compose/check"),
            &compose(&csrf, "Hi", &[&xs], "review", ""),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (status, _) = upload(&mut b, &csrf, c, "a.png", &png(2, 2)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Acme's account sent to Acme's... no: Acme's account in the other agency's own composer
    let r = b
        .post(
            &format!("/clients/{theirs}/compose"),
            &compose(&csrf, "Hi", &[&xs], "review", "2099-05-01T09:00"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(items(&pool).await, 0);
    let _ = their_account;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_server_validates_targets_times_lengths_and_uploads(pool: PgPool) {
    let (c, x, ig) = acme(&pool).await;
    let (xs, igs) = (x.to_string(), ig.to_string());
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let uri = format!("/clients/{c}/compose");
    // no target
    let r = b
        .post(
            &uri,
            &compose(&csrf, "Fresh bread", &[], "schedule", "2099-05-01T09:00"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Pick at least one account"));
    // a time that is not one, and one in the past
    let r = b
        .post(
            &uri,
            &compose(&csrf, "Fresh bread", &[&xs], "schedule", "soon"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("is not a date and time"));
    let r = b
        .post(
            &uri,
            &compose(&csrf, "Fresh bread", &[&xs], "schedule", "2001-05-01T09:00"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("That time has passed"));
    // too long for X (fine for Instagram): not saved as approved, the reason is shown
    let long = "a".repeat(290);
    let r = b
        .post(
            &uri,
            &compose(&csrf, &long, &[&xs, &igs], "schedule", "2099-05-01T09:00"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Moderation blocks this post"));
    assert!(r.body.contains("X allows 280"), "{}", r.body);
    // what was typed is kept
    assert!(r.body.contains(&long) && r.body.contains("checked"));
    assert_eq!(items(&pool).await, 0);
    // uploads: only real PNG/JPEG, at most 5 MB
    let (status, body) = upload(
        &mut b,
        &csrf,
        c,
        "a.gif",
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("Only PNG and JPEG images are accepted"),
        "{body}"
    );
    let (status, body) = upload(&mut b, &csrf, c, "fake.png", b"\x89PNG\r\n\x1a\nnot really").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("not a readable PNG or JPEG"), "{body}");
    let mut big = png(2, 2);
    big.resize(5 * 1024 * 1024 + 10, 0);
    let (status, body) = upload(&mut b, &csrf, c, "big.png", &big).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("at most 5 MB"), "{body}");
    let assets: i64 = sqlx::query_scalar("SELECT count(*) FROM media_assets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(assets, 0);
    // "use the upload" without one
    let mut f = compose(&csrf, "Fresh bread", &[&xs], "review", "2099-05-01T09:00");
    f[5] = ("image", "upload");
    let r = b.post(&uri, &f).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Upload the image first"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_checks_partial_counts_per_platform(pool: PgPool) {
    let (c, x, ig) = acme(&pool).await;
    let (xs, igs) = (x.to_string(), ig.to_string());
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let caption = "字".repeat(150);
    let r = b
        .request(
            Method::POST,
            &format!("/clients/{c}/compose/check"),
            Some(&compose(&csrf, &caption, &[&xs, &igs], "review", "")),
            &[("sec-fetch-site", "same-origin"), ("hx-request", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("<html"));
    // X weighs CJK double: 300 + the hashtag line
    let tags = "\n\n#bread #sourdough".chars().count();
    assert!(
        r.body.contains(&format!("{} / 280", 300 + tags)),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("{} / 2200", 150 + tags)));
    assert!(r.body.contains("X allows 280"));
    let page = b.get(&format!("/clients/{c}/compose")).await;
    assert!(
        page.body
            .contains("data-hx-trigger=\"input changed delay:400ms\"")
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_composed_post_with_an_upload_is_approved_into_publications(pool: PgPool) {
    let (c, x, ig) = acme(&pool).await;
    let (xs, igs) = (x.to_string(), ig.to_string());
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let (status, body) = upload(&mut b, &csrf, c, "photo.png", &png(40, 30)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let media_id: Uuid = sqlx::query_scalar("SELECT id FROM media_assets WHERE purpose = 'upload'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(body.contains(&format!("name=\"media_id\" value=\"{media_id}\"")));
    let mid = media_id.to_string();
    let mut f = compose(
        &csrf,
        "Fresh sourdough, out of the oven at nine.",
        &[&xs, &igs],
        "schedule",
        "2099-07-01T09:00",
    );
    f[5] = ("image", "upload");
    f.push(("media_id", &mid));
    let r = b.post(&format!("/clients/{c}/compose"), &f).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let item: Uuid = sqlx::query_scalar("SELECT id FROM content_items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(r.location(), Some(format!("/items/{item}").as_str()));
    let (state, source, status): (String, String, String) =
        sqlx::query_as("SELECT state, source, moderation_status FROM content_items WHERE id = $1")
            .bind(item)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), source.as_str(), status.as_str()),
        ("approved", "manual", "pass")
    );
    // 09:00 in Berlin in July is 07:00 UTC
    let want: DateTime<Utc> = "2099-07-01T07:00:00Z".parse().unwrap();
    let pubs: Vec<(String, DateTime<Utc>, serde_json::Value)> =
        sqlx::query_as("SELECT platform, scheduled_at, snapshot FROM publications WHERE item_id = $1 ORDER BY platform")
            .bind(item)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(pubs.len(), 2);
    for (_, at, snap) in &pubs {
        assert_eq!(*at, want);
        assert_eq!(snap["media"].as_array().unwrap().len(), 1);
        assert_eq!(
            snap["hashtags"],
            serde_json::json!(["#bread", "#sourdough"])
        );
    }
    let jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'publish' AND run_at = $1 AND state = 'available'",
    )
    .bind(want)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(jobs, 2);
    let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE action IN ('media.upload', 'item.create', 'item.approve') ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(audit, vec!["media.upload", "item.create", "item.approve"]);
    // the item page shows it, with the image through a signed link
    let page = b.get(&format!("/items/{item}")).await;
    assert!(page.body.contains("/media/") && page.body.contains("sig="));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_brand_card_is_rendered_per_platform_size_and_review_keeps_it_pending(pool: PgPool) {
    let (c, x, ig) = acme(&pool).await;
    let (xs, igs) = (x.to_string(), ig.to_string());
    let (mut b, csrf) = logged_in(&pool, "reviewer@acme.test").await;
    let mut f = compose(
        &csrf,
        "Fresh sourdough every morning",
        &[&xs, &igs],
        "review",
        "2099-07-01T09:00",
    );
    f[5] = ("image", "card");
    let r = b.post(&format!("/clients/{c}/compose"), &f).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (state, kind): (String, String) =
        sqlx::query_as("SELECT state, content_type FROM content_items")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), kind.as_str()), ("pending_review", "image"));
    let labels: Vec<(String, i32, i32)> = sqlx::query_as(
        "SELECT m.size_label, a.width, a.height FROM content_item_media m JOIN media_assets a ON a.id = m.media_id ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        labels,
        vec![
            ("instagram_square".to_owned(), 1080, 1080),
            ("x".to_owned(), 1600, 900)
        ]
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM publications")
            .fetch_one(&pool)
            .await
            .unwrap(),
        0
    );
    // "publish now" approves for now
    let f = compose(&csrf, "Open today until six", &[&xs], "now", "");
    let r = b.post(&format!("/clients/{c}/compose"), &f).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let due: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM publications WHERE scheduled_at <= now() AND state = 'scheduled'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(due, 1);
}
