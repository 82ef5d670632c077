//! What the connector tests share: a sandbox in auto-approve mode with every platform pointed at
//! it, its knobs and ledger, and a small media host standing in for the console's signed links.

#![allow(dead_code)]

use std::io::Cursor;

use autosocial_core::platforms::{self, PlatformsConfig};
use autosocial_sandbox::Knobs;
use serde_json::Value;
use url::Url;

/// The knobs the tests start from: the sandbox approves consent at once.
pub fn auto_approve() -> Knobs {
    Knobs {
        auto_approve: true,
        ..Knobs::default()
    }
}

/// A sandbox in auto-approve mode with every platform pointed at it.
pub async fn world() -> (Url, PlatformsConfig) {
    let base = autosocial_sandbox::spawn(auto_approve()).await.unwrap();
    let config = PlatformsConfig::all_in_sandbox(&base, platforms::http_client());
    (base, config)
}

pub async fn set_knobs(base: &Url, k: &Knobs) {
    reqwest::Client::new()
        .post(base.join("/_sandbox/knobs").unwrap())
        .json(k)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

pub async fn get_json(url: Url) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Every ledger entry of one platform, in arrival order (the `arrived` stamps included).
pub async fn ledger(base: &Url, platform: &str) -> Vec<Value> {
    get_json(
        base.join(&format!("/_sandbox/ledger?platform={platform}"))
            .unwrap(),
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

/// `(endpoint, outcome)` of the requests the sandbox handled, without its `arrived` stamps.
pub fn handled(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .filter(|e| e["outcome"] != "arrived")
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn encode(img: image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), format)
        .unwrap();
    out
}

/// A real PNG of one colour.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(
        image::RgbImage::from_pixel(w, h, image::Rgb([200, 40, 40])),
        image::ImageFormat::Png,
    )
}

/// A real JPEG with a gradient.
pub fn jpeg() -> Vec<u8> {
    encode(
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 120])),
        image::ImageFormat::Jpeg,
    )
}

/// Serve `(path, content type, bytes)` on 127.0.0.1 (a stand-in for the console's signed media
/// links); returns the server's base URL.
pub async fn media_server(files: Vec<(&'static str, &'static str, Vec<u8>)>) -> Url {
    let mut app = axum::Router::new();
    for (path, content_type, bytes) in files {
        app = app.route(
            path,
            axum::routing::get(move || {
                let bytes = bytes.clone();
                async move { ([("content-type", content_type)], bytes) }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Url::parse(&format!("http://{addr}/")).unwrap()
}
