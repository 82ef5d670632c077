//! The sandbox's OAuth server behaves like a strict provider.

use autosocial_sandbox::{Client, Knobs, default_client};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn serve(knobs: Knobs) -> String {
    autosocial_sandbox::spawn(knobs)
        .await
        .unwrap()
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback/sandbox";

/// Authorize (auto-approved) and return the code from the redirect.
async fn code_for(base: &str, verifier: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let r = http()
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", &default_client().id),
            ("redirect_uri", REDIRECT),
            ("state", "st-1"),
            ("scope", "publish metrics"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "acct-42"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(REDIRECT));
    let q: std::collections::HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], base);
    q["code"].clone()
}

async fn exchange(base: &str, code: &str, verifier: &str) -> (u16, Value) {
    let c: Client = default_client();
    let r = http()
        .post(format!("{base}/oauth/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn refresh(base: &str, rt: &str) -> (u16, Value) {
    let c = default_client();
    let r = http()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &c.id),
            ("client_secret", &c.secret),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_pkce_verifier_is_checked_and_codes_are_single_use() {
    let base = serve(Knobs {
        auto_approve: true,
        ..Knobs::default()
    })
    .await;
    let code = code_for(&base, "the-right-verifier-0123456789-abcdefghijklmnop").await;
    let (status, body) = exchange(
        &base,
        &code,
        "a-wrong-verifier-0123456789-abcdefghijklmnopq",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // the code was consumed by the failed attempt too
    let (status, _) = exchange(
        &base,
        &code,
        "the-right-verifier-0123456789-abcdefghijklmnop",
    )
    .await;
    assert_eq!(status, 400);
    let code = code_for(&base, "the-right-verifier-0123456789-abcdefghijklmnop").await;
    let (status, body) = exchange(
        &base,
        &code,
        "the-right-verifier-0123456789-abcdefghijklmnop",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().unwrap().starts_with("at_"));
    let me: Value = http()
        .get(format!("{base}/v1/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], "acct-42");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant() {
    let base = serve(Knobs {
        auto_approve: true,
        ..Knobs::default()
    })
    .await;
    let v = "verifier-verifier-verifier-verifier-verifier-1";
    let code = code_for(&base, v).await;
    let (_, first) = exchange(&base, &code, v).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = refresh(&base, &rt1).await;
    assert_eq!(status, 200);
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated");
    // reuse of the old one: the whole grant goes
    let (status, body) = refresh(&base, &rt1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&base, &rt2).await;
    assert_eq!(status, 400, "the new refresh token died with the grant");
}

#[tokio::test]
async fn the_consent_page_asks_and_a_denial_comes_back_as_access_denied() {
    let base = serve(Knobs::default()).await;
    let page = http()
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", &default_client().id),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
            ("code_challenge", "abc"),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Approve") && html.contains("Deny"));
    let r = http()
        .post(format!("{base}/oauth/authorize"))
        .form(&[
            ("decision", "deny"),
            ("client_id", &default_client().id),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=access_denied")
    );
    // an unknown client is refused on the spot, not redirected
    let r = http()
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "evil"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let ledger: Vec<Value> = http()
        .get(format!("{base}/_sandbox/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ledger.iter().any(|e| e["outcome"] == "denied"));
}
