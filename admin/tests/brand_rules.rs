//! The client's brand and rules tabs: who may do what, tenant isolation, brand validation (colours,
//! lists, banned terms, hashtag sets), the logo upload (type, size, dimensions; stored
//! content-addressed and referenced), the card preview, rule validation, the slot preview across
//! a daylight-saving change, the plan job a saved rule enqueues, and the demo's content seed.

mod common;

use std::io::Cursor;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{Datelike, Days, NaiveDate, Utc};
use common::{Browser, account, agency_id, client, state_with, user};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

use autosocial_admin::config::WebArgs;
use autosocial_admin::pages::brand::{parse_banned_terms, parse_hashtag_sets, pick_color};
use autosocial_admin::pages::rules::parse_times;
use autosocial_core::content::cards::image;
use autosocial_core::domain::Role;

/// Test settings with a media directory of the test's own.
fn web() -> (WebArgs, std::path::PathBuf) {
    let mut web = WebArgs::for_tests();
    let dir = std::env::temp_dir().join(format!("autosocial-brand-test-{}", Uuid::new_v4()));
    web.media_dir = dir.clone();
    (web, dir)
}

async fn logged_in(pool: &PgPool, email: &str) -> (Browser, String) {
    let (web, _) = web();
    let mut b = Browser::new(state_with(pool.clone(), web).await);
    let csrf = b.logged_in(email).await;
    (b, csrf)
}

/// A full brand form (as the page would post it) with `overrides` replacing fields.
fn brand_form<'a>(csrf: &'a str, overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f: Vec<(&str, &str)> = vec![
        ("_csrf", csrf),
        ("voice", "Friendly and local."),
        ("tone", "warm"),
        ("pillars", "Sourdough\nSeasonal pastries"),
        ("ctas", "Order ahead online"),
        ("banned_terms", "cheap"),
        ("hashtag_sets", "bread: #sourdough #bakery"),
        ("color_primary", "#b45309"),
        ("color_primary_hex", "#b45309"),
        ("color_primary_was", "#1d4ed8"),
        ("color_secondary", "#9333ea"),
        ("color_secondary_hex", "#9333ea"),
        ("color_secondary_was", "#9333ea"),
        ("color_background", "#ffffff"),
        ("color_background_hex", "#ffffff"),
        ("color_background_was", "#ffffff"),
        ("color_text", "#111827"),
        ("color_text_hex", "#111827"),
        ("color_text_was", "#111827"),
        ("font", "DejaVuSerif-Bold"),
        ("handle", "@bloom"),
    ];
    for (k, v) in overrides {
        match f.iter_mut().find(|(fk, _)| fk == k) {
            Some(slot) => slot.1 = v,
            None => f.push((k, v)),
        }
    }
    f
}

fn rule_form<'a>(csrf: &'a str, overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f: Vec<(&str, &str)> = vec![
        ("_csrf", csrf),
        ("name", "Mornings"),
        ("enabled", "on"),
        ("frequency", "per_day"),
        ("posts", "1"),
        ("times", "09:00"),
        ("content_types", "text"),
        ("content_types", "image"),
        ("min_gap", "60"),
    ];
    for d in ["1", "2", "3", "4", "5", "6", "7"] {
        f.push(("days", d));
    }
    for (k, _) in overrides {
        f.retain(|(fk, _)| fk != k);
    }
    f.extend_from_slice(overrides);
    f
}

/// POST a logo as multipart (the CSRF token in the header, like htmx sends it).
async fn upload(
    b: &mut Browser,
    uri: &str,
    csrf: &str,
    bytes: &[u8],
    filename: &str,
) -> (StatusCode, String) {
    let r = b
        .upload(
            uri,
            &[],
            ("logo", filename, bytes),
            &[("x-csrf-token", csrf)],
        )
        .await;
    (r.status, r.body)
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

async fn get_bytes(b: &Browser, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let cookie = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let req = Request::builder()
        .uri(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let res = b.app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, bytes)
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn viewers_read_brand_and_rules_only_admins_change_them(pool: PgPool) {
    for (email, role) in [
        ("viewer@acme.test", Role::Viewer),
        ("reviewer@acme.test", Role::Reviewer),
        ("admin@acme.test", Role::Admin),
        ("owner@acme.test", Role::Owner),
    ] {
        user(&pool, "Acme", email, role).await;
    }
    let c = client(&pool, "Acme", "Bloom").await;
    for (email, may_edit) in [
        ("viewer@acme.test", false),
        ("reviewer@acme.test", false),
        ("admin@acme.test", true),
        ("owner@acme.test", true),
    ] {
        let (mut b, csrf) = logged_in(&pool, email).await;
        let page = b.get(&format!("/clients/{c}/brand")).await;
        assert_eq!(page.status, StatusCode::OK, "{email}");
        assert_eq!(
            page.body.contains("name=\"voice\""),
            may_edit,
            "{email} sees the form"
        );
        let rules = b.get(&format!("/clients/{c}/rules")).await;
        assert_eq!(rules.status, StatusCode::OK, "{email}");
        let (png_status, _, _) = get_bytes(&b, &format!("/clients/{c}/brand/preview.png")).await;
        assert_eq!(png_status, StatusCode::OK, "{email} sees the preview");

        let expected = if may_edit {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::FORBIDDEN
        };
        let saved = b
            .post(&format!("/clients/{c}/brand"), &brand_form(&csrf, &[]))
            .await;
        assert_eq!(saved.status, expected, "{email} saving the brand");
        let new = b.get(&format!("/clients/{c}/rules/new")).await;
        let expected_form = if may_edit {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(new.status, expected_form, "{email} opening a new rule");
        let name = format!("Rule of {email}");
        let created = b
            .post(
                &format!("/clients/{c}/rules"),
                &rule_form(&csrf, &[("name", &name)]),
            )
            .await;
        assert_eq!(created.status, expected, "{email} creating a rule");
        let (logo_status, _) = upload(
            &mut b,
            &format!("/clients/{c}/brand/logo"),
            &csrf,
            &png(8, 8),
            "l.png",
        )
        .await;
        assert_eq!(logo_status, expected, "{email} uploading a logo");
    }
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM content_rules WHERE client_id = $1")
        .bind(c)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rules, 2, "only the admin and the owner created rules");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn another_agencys_brand_and_rules_are_not_found(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    user(&pool, "Other", "admin@other.test", Role::Owner).await;
    let mine = client(&pool, "Acme", "Bloom").await;
    let theirs = client(&pool, "Other", "Rival").await;
    let (mut a, a_csrf) = logged_in(&pool, "admin@acme.test").await;
    let created = a
        .post(&format!("/clients/{mine}/rules"), &rule_form(&a_csrf, &[]))
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let rule: Uuid = sqlx::query_scalar("SELECT id FROM content_rules WHERE client_id = $1")
        .bind(mine)
        .fetch_one(&pool)
        .await
        .unwrap();

    let (mut b, csrf) = logged_in(&pool, "admin@other.test").await;
    for uri in [
        format!("/clients/{mine}/brand"),
        format!("/clients/{mine}/brand/preview.png?size=x"),
        format!("/clients/{mine}/rules"),
        format!("/clients/{mine}/rules/new"),
        format!("/clients/{mine}/rules/{rule}/edit"),
        // their own client, my rule
        format!("/clients/{theirs}/rules/{rule}/edit"),
    ] {
        assert_eq!(b.get(&uri).await.status, StatusCode::NOT_FOUND, "GET {uri}");
    }
    let brand = brand_form(&csrf, &[("voice", "stolen")]);
    let rule_f = rule_form(&csrf, &[("name", "Hijacked")]);
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/clients/{mine}/brand"), brand.clone()),
        (format!("/clients/{mine}/brand/preview"), brand),
        (
            format!("/clients/{mine}/brand/logo/remove"),
            vec![("_csrf", &csrf)],
        ),
        (format!("/clients/{mine}/rules"), rule_f.clone()),
        (format!("/clients/{mine}/rules/preview"), rule_f.clone()),
        (format!("/clients/{mine}/rules/{rule}"), rule_f.clone()),
        (format!("/clients/{theirs}/rules/{rule}"), rule_f),
        (
            format!("/clients/{mine}/rules/{rule}/delete"),
            vec![("_csrf", &csrf)],
        ),
        (
            format!("/clients/{theirs}/rules/{rule}/delete"),
            vec![("_csrf", &csrf)],
        ),
    ];
    for (uri, form) in &posts {
        assert_eq!(
            b.post(uri, form).await.status,
            StatusCode::NOT_FOUND,
            "POST {uri}"
        );
    }
    let (status, _) = upload(
        &mut b,
        &format!("/clients/{mine}/brand/logo"),
        &csrf,
        &png(8, 8),
        "l.png",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (voice, name): (String, String) = sqlx::query_as(
        "SELECT coalesce((SELECT voice FROM brand_settings WHERE client_id = $1), ''), (SELECT name FROM content_rules WHERE id = $2)",
    )
    .bind(mine)
    .bind(rule)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_ne!(voice, "stolen");
    assert_eq!(name, "Mornings");
    let theirs_rules: i64 =
        sqlx::query_scalar("SELECT count(*) FROM content_rules WHERE client_id = $1")
            .bind(theirs)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(theirs_rules, 0);
}

#[test]
fn brand_lists_are_parsed_and_checked() {
    // banned terms: one word or phrase per line, spacing collapsed, duplicates dropped
    assert_eq!(
        parse_banned_terms("  cheap \n\nfree   money\nCHEAP\n no pain no gain ").unwrap(),
        vec!["cheap", "free money", "no pain no gain"]
    );
    assert!(
        parse_banned_terms("ok\n!!!")
            .unwrap_err()
            .contains("Line 2")
    );
    assert!(
        parse_banned_terms(&"x".repeat(101))
            .unwrap_err()
            .contains("100")
    );
    // hashtag sets: name, colon, tags (with or without #, spaces or commas)
    let sets = parse_hashtag_sets("bread: #sourdough bakery,#RealBread\ncity : #berlin").unwrap();
    assert_eq!(sets["bread"], vec!["#sourdough", "#bakery", "#RealBread"]);
    assert_eq!(sets["city"], vec!["#berlin"]);
    assert!(
        parse_hashtag_sets("no colon here")
            .unwrap_err()
            .contains("colon")
    );
    assert!(
        parse_hashtag_sets("a: #good #not-good")
            .unwrap_err()
            .contains("#not-good")
    );
    assert!(
        parse_hashtag_sets("a: #x\nA: #y")
            .unwrap_err()
            .contains("already")
    );
    assert!(
        parse_hashtag_sets("empty:")
            .unwrap_err()
            .contains("no tags")
    );
    // colours: the typed value wins when it was changed, else the picker
    assert_eq!(
        pick_color("#112233", "#1D4ED8", "#1d4ed8").unwrap(),
        "#112233"
    );
    assert_eq!(
        pick_color("#1d4ed8", "#AABBCC", "#1d4ed8").unwrap(),
        "#aabbcc"
    );
    assert!(
        pick_color("#1d4ed8", "blue", "#1d4ed8")
            .unwrap_err()
            .contains("blue")
    );
    assert!(pick_color("", "", "").is_err());
    // times
    assert_eq!(
        parse_times("17:30, 09:00 09:00").unwrap(),
        vec![
            chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            chrono::NaiveTime::from_hms_opt(17, 30, 0).unwrap()
        ]
    );
    assert!(parse_times("9am").unwrap_err().contains("9am"));
    assert!(parse_times("25:00").is_err());
    assert!(parse_times(" , ").is_err());
}

#[derive(sqlx::FromRow)]
struct SavedBrand {
    voice: String,
    pillars: Vec<String>,
    banned_terms: Vec<String>,
    hashtag_sets: serde_json::Value,
    color_primary: String,
    color_text: String,
    font: Option<String>,
    handle: Option<String>,
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn brand_is_saved_whole_or_not_at_all(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let c = client(&pool, "Acme", "Bloom").await;
    let (mut b, csrf) = logged_in(&pool, "admin@acme.test").await;

    // a bad colour (typed) and a bad hashtag set: 422, both named, nothing saved
    let refused = b
        .post(
            &format!("/clients/{c}/brand"),
            &brand_form(
                &csrf,
                &[
                    ("color_secondary_hex", "purple"),
                    ("hashtag_sets", "just words"),
                    ("voice", "New voice"),
                ],
            ),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("id=\"color_secondary-error\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("“purple” is not a colour"));
    assert!(refused.body.contains("id=\"hashtag_sets-error\""));
    assert!(
        refused.body.contains("New voice"),
        "the typed values are kept"
    );
    let font = b
        .post(
            &format!("/clients/{c}/brand"),
            &brand_form(&csrf, &[("font", "Comic Sans")]),
        )
        .await;
    assert_eq!(font.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(font.body.contains("id=\"font-error\""));
    let (voice, primary): (String, String) =
        sqlx::query_as("SELECT voice, color_primary FROM brand_settings WHERE client_id = $1")
            .bind(c)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .unwrap_or_default();
    assert_ne!(voice, "New voice");
    assert_ne!(primary, "#b45309");

    // a good form: everything saved, lists parsed, audited
    let saved = b
        .post(
            &format!("/clients/{c}/brand"),
            &brand_form(
                &csrf,
                &[
                    ("banned_terms", "cheap\n  free   money \nCheap"),
                    ("color_text_hex", "#ABCDEF"),
                ],
            ),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let row: SavedBrand = sqlx::query_as(
        "SELECT voice, pillars, banned_terms, hashtag_sets, color_primary, color_text, font, handle
         FROM brand_settings WHERE client_id = $1",
    )
    .bind(c)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.voice, "Friendly and local.");
    assert_eq!(row.pillars, vec!["Sourdough", "Seasonal pastries"]);
    assert_eq!(row.banned_terms, vec!["cheap", "free money"]);
    assert_eq!(
        row.hashtag_sets,
        serde_json::json!({"bread": ["#sourdough", "#bakery"]})
    );
    assert_eq!(row.color_primary, "#b45309", "the picker's change is taken");
    assert_eq!(row.color_text, "#abcdef", "the typed change is taken");
    assert_eq!(row.font.as_deref(), Some("DejaVuSerif-Bold"));
    assert_eq!(row.handle.as_deref(), Some("@bloom"));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'brand.update' AND target_id = $1",
    )
    .bind(c.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let page = b.get(&format!("/clients/{c}/brand?saved=brand")).await;
    assert!(page.body.contains("Brand saved."));
    assert!(page.body.contains("free money"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn logos_are_checked_then_stored_content_addressed_and_referenced(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let c = client(&pool, "Acme", "Bloom").await;
    let (web, media_dir) = web();
    let mut b = Browser::new(state_with(pool.clone(), web).await);
    let csrf = b.logged_in("admin@acme.test").await;
    let uri = format!("/clients/{c}/brand/logo");

    // not an image of an accepted type (a GIF, a text file named .png), too big, too large
    let gif = {
        let mut out = Vec::new();
        let img = image::RgbaImage::from_pixel(4, 4, image::Rgba([1, 2, 3, 255]));
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        // the GIF signature in front of PNG data: sniffed as GIF, which is refused
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&out);
        gif
    };
    let (status, body) = upload(&mut b, &uri, &csrf, &gif, "logo.gif").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Upload a PNG, JPEG or WebP image."), "{body}");
    let (status, body) = upload(&mut b, &uri, &csrf, b"just some text", "logo.png").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Upload a PNG, JPEG or WebP image."), "{body}");
    let mut truncated = png(64, 64);
    truncated.truncate(truncated.len() / 2);
    let (status, body) = upload(&mut b, &uri, &csrf, &truncated, "logo.png").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("not a readable PNG"), "{body}");
    let mut oversized = png(8, 8);
    oversized.resize(2 * 1024 * 1024 + 10, 0);
    let (status, body) = upload(&mut b, &uri, &csrf, &oversized, "logo.png").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("at most 2 MB"), "{body}");
    let (status, body) = upload(&mut b, &uri, &csrf, &png(4097, 1), "wide.png").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("4097×1"), "{body}");
    let assets: i64 = sqlx::query_scalar("SELECT count(*) FROM media_assets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(assets, 0, "nothing stored for a refused upload");

    // a good one: stored under its hash, a media_assets row, the brand points at it
    let logo = png(120, 80);
    let (status, body) = upload(&mut b, &uri, &csrf, &logo, "logo.png").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let digest: [u8; 32] = Sha256::digest(&logo).into();
    let hexd = hex::encode(digest);
    let (id, path, sha, mime, w, h, bytes, purpose): (Uuid, String, Vec<u8>, String, i32, i32, i64, String) =
        sqlx::query_as("SELECT id, path, sha256, mime, width, height, bytes, purpose FROM media_assets WHERE client_id = $1")
            .bind(c)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(path, format!("{}/{hexd}.png", &hexd[..2]));
    assert_eq!(sha, digest.to_vec());
    assert_eq!(
        (mime.as_str(), w, h, bytes, purpose.as_str()),
        ("image/png", 120, 80, logo.len() as i64, "logo")
    );
    assert_eq!(std::fs::read(media_dir.join(&path)).unwrap(), logo);
    let referenced: Option<Uuid> =
        sqlx::query_scalar("SELECT logo_media_id FROM brand_settings WHERE client_id = $1")
            .bind(c)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(referenced, Some(id));
    // the same file again is the same asset
    let (status, _) = upload(&mut b, &uri, &csrf, &logo, "again.png").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let assets: i64 = sqlx::query_scalar("SELECT count(*) FROM media_assets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(assets, 1);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'brand.logo'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 2);
    let page = b.get(&format!("/clients/{c}/brand")).await;
    assert!(page.body.contains("120×80 PNG"), "{}", page.body);
    // removing it
    let removed = b
        .post(
            &format!("/clients/{c}/brand/logo/remove"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let referenced: Option<Uuid> =
        sqlx::query_scalar("SELECT logo_media_id FROM brand_settings WHERE client_id = $1")
            .bind(c)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(referenced, None);
    let _ = std::fs::remove_dir_all(media_dir);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_preview_is_a_png_of_the_requested_size_never_cached(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    let c = client(&pool, "Acme", "Bloom").await;
    let (b, _) = logged_in(&pool, "viewer@acme.test").await;
    for (size, dims) in [
        ("x", (1600, 900)),
        ("instagram_square", (1080, 1080)),
        ("linkedin", (1200, 627)),
    ] {
        let (status, headers, bytes) = get_bytes(
            &b,
            &format!("/clients/{c}/brand/preview.png?size={size}&primary=%23b45309&handle=%40bloom&headline=Fresh+bread"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{size}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(headers[header::CONTENT_TYPE], "image/png");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), dims, "{size}");
    }
    // unsaved values are validated; sizes are only the platform sizes
    for bad in [
        "size=giant",
        "primary=red",
        "background=%23abc",
        "font=Nope",
        &format!("headline={}", "a".repeat(400)),
    ] {
        let (status, headers, _) =
            get_bytes(&b, &format!("/clients/{c}/brand/preview.png?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_live_preview_carries_only_valid_unsaved_values(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let c = client(&pool, "Acme", "Bloom").await;
    let (mut b, csrf) = logged_in(&pool, "admin@acme.test").await;
    let r = b
        .request(
            Method::POST,
            &format!("/clients/{c}/brand/preview"),
            Some(brand_form(&csrf, &[("color_background_hex", "nope"), ("size", "x")]).as_slice()),
            &[("hx-request", "true"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("<img"), "{}", r.body);
    assert!(r.body.contains("size=x"));
    assert!(r.body.contains("primary=%23b45309"));
    assert!(
        !r.body.contains("background="),
        "an invalid value falls back to the saved one"
    );
    assert!(r.body.contains("headline=Sourdough"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn rules_are_validated_field_by_field(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let c = client(&pool, "Acme", "Bloom").await;
    let (mut b, csrf) = logged_in(&pool, "admin@acme.test").await;
    let uri = format!("/clients/{c}/rules");
    // no days at all
    let mut no_days = rule_form(&csrf, &[]);
    no_days.retain(|(k, _)| *k != "days");
    let r = b.post(&uri, &no_days).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"days-error\""));
    assert!(r.body.contains("Choose at least one day of the week."));
    // a bad time, zero posts, an empty name, no content type, a gap too long
    let mut bad = rule_form(
        &csrf,
        &[
            ("times", "09:00, 9am"),
            ("posts", "0"),
            ("name", " "),
            ("min_gap", "99999"),
        ],
    );
    bad.retain(|(k, _)| *k != "content_types");
    let r = b.post(&uri, &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["times", "posts", "name", "content_types", "min_gap"] {
        assert!(
            r.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            r.body
        );
    }
    assert!(r.body.contains("“9am” is not a time"));
    assert!(r.body.contains("Post at least once per period."));
    // more posts a day than times
    let r = b
        .post(
            &uri,
            &rule_form(&csrf, &[("posts", "3"), ("times", "09:00 12:00")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains("3 posts a day need at least 3 times; 2 given.")
    );
    // an account that is not this client's
    let other = client(&pool, "Acme", "Other").await;
    let foreign = account(&pool, other, "sandbox", "Other's")
        .await
        .to_string();
    let r = b
        .post(&uri, &rule_form(&csrf, &[("accounts", &foreign)]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"accounts-error\""));
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM content_rules")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rules, 0, "nothing saved");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'plan'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}

/// The next EU spring-forward after today: the last Sunday of March.
fn next_spring_forward() -> NaiveDate {
    let today = Utc::now().date_naive();
    let mut year = today.year();
    loop {
        let mut d = NaiveDate::from_ymd_opt(year, 3, 31).unwrap();
        while d.weekday() != chrono::Weekday::Sun {
            d = d.pred_opt().unwrap();
        }
        if d > today {
            return d;
        }
        year += 1;
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_slot_preview_keeps_nine_local_across_a_clock_change(pool: PgPool) {
    user(&pool, "Acme", "viewer@acme.test", Role::Viewer).await;
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let c = client(&pool, "Acme", "Bloom").await; // Europe/Berlin
    let (mut a, csrf) = logged_in(&pool, "admin@acme.test").await;
    let created = a
        .post(&format!("/clients/{c}/rules"), &rule_form(&csrf, &[]))
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let change = next_spring_forward();
    let before = change - Days::new(1);
    let from = change - Days::new(2);

    let (mut v, _) = logged_in(&pool, "viewer@acme.test").await;
    let page = v.get(&format!("/clients/{c}/rules?from={from}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("Europe/Berlin"), "the zone is named");
    let local = |d: NaiveDate, zone: &str| format!("{} 09:00 {zone}", d.format("%a %d %b"));
    assert!(body.contains(&local(before, "CET")), "{body}");
    assert!(body.contains(&local(change, "CEST")), "{body}");
    // and in UTC: 08:00 before, 07:00 after
    assert!(body.contains(&format!("{before} 08:00 UTC")), "{body}");
    assert!(body.contains(&format!("{change} 07:00 UTC")), "{body}");

    // the form's live preview says the same for unsaved values
    let preview = a
        .request(
            Method::POST,
            &format!("/clients/{c}/rules/preview"),
            Some(rule_form(&csrf, &[("from", &from.to_string())]).as_slice()),
            &[("hx-request", "true"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains(&local(before, "CET")),
        "{}",
        preview.body
    );
    assert!(preview.body.contains(&local(change, "CEST")));
    // and a bad form says why there is no preview
    let preview = a
        .request(
            Method::POST,
            &format!("/clients/{c}/rules/preview"),
            Some(rule_form(&csrf, &[("times", "nine")]).as_slice()),
            &[("hx-request", "true"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert!(preview.body.contains("“nine” is not a time"));
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn saving_a_rule_enqueues_a_plan_and_the_plan_follows_it(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let c = client(&pool, "Acme", "Bloom").await;
    let acct = account(&pool, c, "sandbox", "Bloom sandbox").await;
    let (mut b, csrf) = logged_in(&pool, "admin@acme.test").await;
    let acct_s = acct.to_string();
    let created = b
        .post(
            &format!("/clients/{c}/rules"),
            &rule_form(
                &csrf,
                &[
                    ("accounts", &acct_s),
                    ("posts", "2"),
                    ("times", "17:00, 09:00"),
                ],
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let (rule, times, accounts): (Uuid, Vec<chrono::NaiveTime>, Vec<Uuid>) = sqlx::query_as(
        "SELECT r.id, r.local_times, array_agg(ra.account_id) FROM content_rules r
         JOIN content_rule_accounts ra ON ra.rule_id = r.id WHERE r.client_id = $1 GROUP BY r.id",
    )
    .bind(c)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(times.len(), 2);
    assert_eq!(accounts, vec![acct]);
    let tz = chrono_tz::Europe::Berlin;
    let key = autosocial_core::content::generate::plan_key(
        c,
        autosocial_core::content::schedule::local_date(tz, Utc::now()),
    );
    let jobs: Vec<(String, String)> =
        sqlx::query_as("SELECT unique_key, state FROM jobs WHERE kind = 'plan' AND client_id = $1")
            .bind(c)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(jobs, vec![(key, "available".to_owned())]);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'rule.create' AND target_id = $1",
    )
    .bind(rule.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // what that job does: items at 09:00 and 17:00 Berlin time on the rule's account
    let agency = agency_id(&pool, "Acme").await;
    let report = autosocial_core::content::generate::plan(&pool, agency, c)
        .await
        .unwrap()
        .unwrap();
    assert!(report.planned >= 12, "a week of two a day: {report:?}");
    let slots: Vec<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "SELECT slot_at FROM content_items WHERE rule_id = $1 AND state = 'planned'",
    )
    .bind(rule)
    .fetch_all(&pool)
    .await
    .unwrap();
    for s in &slots {
        let local = s.with_timezone(&tz).format("%H:%M").to_string();
        assert!(local == "09:00" || local == "17:00", "{local}");
    }

    // editing it to 17:00 only: another plan is enqueued (the first is still waiting, so it is
    // the same job), the 09:00 items not generated yet are cancelled
    let rule_s = rule.to_string();
    let edit = b.get(&format!("/clients/{c}/rules/{rule_s}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("09:00, 17:00"));
    let updated = b
        .post(
            &format!("/clients/{c}/rules/{rule_s}"),
            &rule_form(
                &csrf,
                &[
                    ("accounts", &acct_s),
                    ("times", "17:00"),
                    ("name", "Evenings"),
                ],
            ),
        )
        .await;
    assert_eq!(updated.status, StatusCode::SEE_OTHER, "{}", updated.body);
    let left: Vec<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "SELECT slot_at FROM content_items WHERE rule_id = $1 AND state = 'planned'",
    )
    .bind(rule)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!left.is_empty());
    assert!(
        left.iter()
            .all(|s| s.with_timezone(&tz).format("%H:%M").to_string() == "17:00")
    );
    let plans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'plan' AND client_id = $1 AND state = 'available'",
    )
    .bind(c)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(plans, 1);

    // deleting it cancels what it planned and was not generated
    let deleted = b
        .post(
            &format!("/clients/{c}/rules/{rule_s}/delete"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    let planned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM content_items WHERE client_id = $1 AND state = 'planned'",
    )
    .bind(c)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(planned, 0);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('rule.update', 'rule.delete')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_demo_content_gives_each_client_a_brand_a_rule_and_a_plan(pool: PgPool) {
    autosocial_admin::seed::demo(&pool).await.unwrap();
    let bakery: Uuid = sqlx::query_scalar("SELECT id FROM clients WHERE name = 'Bakery Bloom'")
        .fetch_one(&pool)
        .await
        .unwrap();
    account(&pool, bakery, "sandbox", "Bakery sandbox").await;
    autosocial_admin::seed::seed_demo_content(&pool)
        .await
        .unwrap();
    // again: nothing doubles
    autosocial_admin::seed::seed_demo_content(&pool)
        .await
        .unwrap();
    let brands: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT c.name, b.color_primary, cardinality(b.pillars) FROM clients c JOIN brand_settings b ON b.client_id = c.id ORDER BY c.name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(brands.len(), 3);
    let mut colors: Vec<&str> = brands.iter().map(|b| b.1.as_str()).collect();
    colors.sort_unstable();
    colors.dedup();
    assert_eq!(colors.len(), 3, "each client has its own colours");
    assert!(brands.iter().all(|b| b.2 >= 3));
    let rules: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.name, count(ra.account_id) FROM content_rules r JOIN clients c ON c.id = r.client_id
         LEFT JOIN content_rule_accounts ra ON ra.rule_id = r.id GROUP BY c.name, r.id ORDER BY c.name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rules,
        vec![
            ("Bakery Bloom".into(), 1),
            ("Harbor Fitness".into(), 0),
            ("Koala Coffee".into(), 0)
        ]
    );
    let plans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'plan' AND state = 'available'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(plans, 3);
    // the bakery's plan makes a week of 09:00 and 17:00 items with image and text
    let agency = agency_id(&pool, "Demo Agency").await;
    let report = autosocial_core::content::generate::plan(&pool, agency, bakery)
        .await
        .unwrap()
        .unwrap();
    assert!(report.planned >= 12, "{report:?}");
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT content_type FROM content_items WHERE client_id = $1 ORDER BY 1",
    )
    .bind(bakery)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(types, vec!["image", "text"]);
}

/// Without JavaScript the form itself carries the CSRF token (multipart `_csrf` field, no
/// header): accepted; with no token anywhere: refused before anything is stored.
#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_logo_uploads_without_javascript_with_the_token_in_the_form(pool: PgPool) {
    user(&pool, "Acme", "admin@acme.test", Role::Admin).await;
    let c = client(&pool, "Acme", "Bloom").await;
    let (web, _media_dir) = web();
    let mut b = Browser::new(state_with(pool.clone(), web).await);
    let csrf = b.logged_in("admin@acme.test").await;
    let uri = format!("/clients/{c}/brand/logo");
    let logo = png(32, 32);
    let refused = b.upload(&uri, &[], ("logo", "logo.png", &logo), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let forged = b
        .upload(
            &uri,
            &[("_csrf", "not-the-token")],
            ("logo", "logo.png", &logo),
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM media_assets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let plain = b
        .upload(&uri, &[("_csrf", &csrf)], ("logo", "logo.png", &logo), &[])
        .await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER, "{}", plain.body);
    let logo_set: bool = sqlx::query_scalar(
        "SELECT logo_media_id IS NOT NULL FROM brand_settings WHERE client_id = $1",
    )
    .bind(c)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(logo_set);
}
