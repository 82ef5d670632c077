//! What the Facebook Pages and Instagram connectors share: Meta's Graph API (one versioned base,
//! `https://graph.facebook.com/v21.0/…`), Facebook Login and its token handling.
//!
//! Facebook Login is the authorization code flow with PKCE S256 at
//! `https://www.facebook.com/v21.0/dialog/oauth`; the code is exchanged with a GET on
//! `/oauth/access_token` (Meta's token endpoint is not RFC 6749's POST, so the requests are built
//! here rather than with the `oauth2` crate). Facebook Login issues no refresh tokens: the
//! short-lived user token (hours) is exchanged at once for a long-lived one (about 60 days) with
//! `grant_type=fb_exchange_token`. So that the refresh job keeps working, the connectors store
//! that long-lived user token as the account's *refresh token*, and `refresh()` re-exchanges it
//! for a fresh long-lived token before it expires. If the person has not used the app for
//! 60 days or revoked it, the exchange fails and the account needs reconnecting.
//!
//! Tokens go in the `Authorization: Bearer` header, never in a URL — except on the token
//! endpoint itself, which Meta only offers as a GET with query parameters. Errors come back as
//! `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}` and are classified by
//! [`super::errors`].

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::{OAuthApp, PlatformError, send_json};
use crate::domain::Platform;

/// The Graph API version every request names.
pub const GRAPH_VERSION: &str = "v21.0";

const FACEBOOK_WWW: &str = "https://www.facebook.com/";
const GRAPH_HOST: &str = "https://graph.facebook.com/";

/// A user access token from Facebook Login.
pub struct UserToken {
    pub token: SecretString,
    pub expires_in: Option<Duration>,
}

/// Meta's Graph API for one platform (the platform picks the error classification and names the
/// requests in errors).
#[derive(Clone)]
pub struct Graph {
    platform: Platform,
    base: Option<Url>,
    http: reqwest::Client,
}

impl Graph {
    /// `base == None`: Meta's real hosts; `Some(b)`: every path (dialog and Graph alike) under `b`.
    pub fn new(platform: Platform, base: Option<Url>, http: reqwest::Client) -> Graph {
        Graph {
            platform,
            base,
            http,
        }
    }

    fn on(&self, host: &str, segments: &[&str]) -> Url {
        let mut url = match &self.base {
            Some(b) => b.clone(),
            None => Url::parse(host).expect("static host parses"),
        };
        {
            let mut path = url
                .path_segments_mut()
                .expect("an http(s) base URL has path segments");
            path.pop_if_empty().push(GRAPH_VERSION);
            // each id is one escaped segment: an id can never walk to another path
            path.extend(segments);
        }
        url
    }

    /// A Graph API URL, e.g. `["me", "accounts"]` → `…/v21.0/me/accounts`.
    pub fn url(&self, segments: &[&str]) -> Url {
        self.on(GRAPH_HOST, segments)
    }

    /// The Facebook Login dialog.
    pub fn dialog(&self) -> Url {
        self.on(FACEBOOK_WWW, &["dialog", "oauth"])
    }

    /// The Facebook Login dialog with our state, scopes and the S256 challenge of `pkce_verifier`.
    pub fn authorization_url(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        state: &str,
        pkce_verifier: &str,
        scopes: &[String],
    ) -> Url {
        let challenge = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
            &oauth2::PkceCodeVerifier::new(pkce_verifier.to_owned()),
        );
        let mut url = self.dialog();
        url.query_pairs_mut()
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("scope", &scopes.join(","))
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// `GET /oauth/access_token` with the given parameters plus the app's credentials.
    async fn token_request(
        &self,
        app: &OAuthApp,
        params: &[(&str, &str)],
    ) -> Result<UserToken, PlatformError> {
        let mut url = self.url(&["oauth", "access_token"]);
        url.query_pairs_mut()
            .append_pair("client_id", &app.client_id)
            .append_pair("client_secret", app.client_secret.expose_secret())
            .extend_pairs(params);
        let (_, v) = send_json(self.platform, self.http.get(url)).await?;
        token_answer(&v)
    }

    /// Exchange the authorization code (with the PKCE verifier) for a short-lived user token.
    pub async fn exchange_code(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<UserToken, PlatformError> {
        self.token_request(
            app,
            &[
                ("redirect_uri", redirect_uri.as_str()),
                ("code", code),
                ("code_verifier", pkce_verifier),
            ],
        )
        .await
        .map_err(PlatformError::at_code_exchange)
    }

    /// Exchange a user token (short- or long-lived, still valid) for a fresh long-lived one.
    /// A token Meta no longer accepts means the person must log in again: `GrantRevoked`.
    pub async fn long_lived(
        &self,
        app: &OAuthApp,
        user_token: &str,
    ) -> Result<UserToken, PlatformError> {
        self.token_request(
            app,
            &[
                ("grant_type", "fb_exchange_token"),
                ("fb_exchange_token", user_token),
            ],
        )
        .await
        .map_err(|e| match e {
            PlatformError::Auth(m) => PlatformError::GrantRevoked(m),
            other => other,
        })
    }

    /// The full login: code → short-lived token → long-lived token.
    pub async fn login(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<UserToken, PlatformError> {
        let short = self
            .exchange_code(app, redirect_uri, code, pkce_verifier)
            .await?;
        self.long_lived(app, short.token.expose_secret()).await
    }

    /// A Graph GET with the token in the Authorization header.
    pub async fn get(
        &self,
        token: &str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<(reqwest::header::HeaderMap, Value), PlatformError> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        send_json(self.platform, self.http.get(url).bearer_auth(token)).await
    }

    /// A Graph POST with form parameters and the token in the Authorization header.
    pub async fn post(
        &self,
        token: &str,
        segments: &[&str],
        form: &[(&str, &str)],
    ) -> Result<(reqwest::header::HeaderMap, Value), PlatformError> {
        send_json(
            self.platform,
            self.http
                .post(self.url(segments))
                .bearer_auth(token)
                .form(form),
        )
        .await
    }
}

fn token_answer(v: &Value) -> Result<UserToken, PlatformError> {
    let Some(token) = v["access_token"].as_str().filter(|t| !t.is_empty()) else {
        return Err(PlatformError::Transient(
            "token answer without an access_token".into(),
        ));
    };
    Ok(UserToken {
        token: SecretString::from(token.to_owned()),
        expires_in: v["expires_in"].as_u64().map(Duration::from_secs),
    })
}

/// Meta's trace id of an answer, for the post log.
pub fn trace_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    ["x-fb-trace-id", "x-fb-request-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::to_owned)
}

/// A string id field of a Graph answer, or a transient error naming what was missing.
pub fn id_of(v: &Value, field: &str, what: &str) -> Result<String, PlatformError> {
    match &v[field] {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(PlatformError::Transient(format!(
            "{what} answer without `{field}`"
        ))),
    }
}

/// One lifetime value of an insights answer:
/// `{"data": [{"name", "period", "values": [{"value": n}]}]}`.
pub fn insight(v: &Value, name: &str) -> Option<i64> {
    v["data"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| {
            m["values"]
                .as_array()
                .and_then(|vals| vals.last())
                .map(|x| &x["value"])
                .or(Some(&m["total_value"]["value"]))
        })
        .and_then(Value::as_i64)
}

/// Insights are extras: a metric the object does not offer (too new, too small an audience, a
/// metric Meta retired) answers a Graph error that must not fail the whole read. Throttling, token
/// and server errors still count.
pub fn optional_insights(r: Result<Value, PlatformError>) -> Result<Option<Value>, PlatformError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(PlatformError::Permanent(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> OAuthApp {
        OAuthApp {
            client_id: "1234".into(),
            client_secret: SecretString::from("s3cret".to_owned()),
        }
    }

    #[test]
    fn real_hosts_and_sandbox_bases() {
        let g = Graph::new(Platform::Facebook, None, reqwest::Client::new());
        assert_eq!(
            g.url(&["me", "accounts"]).as_str(),
            "https://graph.facebook.com/v21.0/me/accounts"
        );
        let b = Url::parse("http://127.0.0.1:9/facebook/").unwrap();
        let g = Graph::new(Platform::Facebook, Some(b), reqwest::Client::new());
        assert_eq!(
            g.url(&["123_456", "insights"]).as_str(),
            "http://127.0.0.1:9/facebook/v21.0/123_456/insights"
        );
        // an id is one segment, never a path
        assert_eq!(
            g.url(&["../x"]).as_str(),
            "http://127.0.0.1:9/facebook/v21.0/..%2Fx"
        );
    }

    #[test]
    fn the_login_dialog_asks_for_pkce_s256_and_comma_separated_scopes() {
        let g = Graph::new(Platform::Instagram, None, reqwest::Client::new());
        let redirect = Url::parse("https://app.example/oauth/callback/instagram").unwrap();
        let url = g.authorization_url(
            &app(),
            &redirect,
            "st4te",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            &["instagram_basic".into(), "pages_show_list".into()],
        );
        assert_eq!(url.host_str(), Some("www.facebook.com"));
        assert_eq!(url.path(), "/v21.0/dialog/oauth");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "1234");
        assert_eq!(q["redirect_uri"], redirect.as_str());
        assert_eq!(q["state"], "st4te");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "instagram_basic,pages_show_list");
        // RFC 7636 appendix B
        assert_eq!(
            q["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(q["code_challenge_method"], "S256");
    }

    #[test]
    fn insights_values_are_read_by_name() {
        let v: Value = serde_json::from_str(
            r#"{"data":[{"name":"reach","period":"lifetime","values":[{"value":12}],"id":"1/insights/reach/lifetime"},
                        {"name":"views","period":"lifetime","values":[{"value":40}]}]}"#,
        )
        .unwrap();
        assert_eq!(insight(&v, "reach"), Some(12));
        assert_eq!(insight(&v, "views"), Some(40));
        assert_eq!(insight(&v, "shares"), None);
    }
}
