//! Images from Replicate's predictions API (optional; the brand card renderer stays the
//! default).
//!
//! * `POST {base}/v1/models/{owner}/{name}/predictions` (official models) or
//!   `POST {base}/v1/predictions` with `version` when the model is given as
//!   `owner/name:version`, with `Prefer: wait` so quick models answer in the create call;
//!   otherwise the prediction's `urls.get` is polled until it ends, bounded by `deadline`.
//! * The output (a URL or a list of URLs) is downloaded with a size cap and must decode.
//! * Errors: 429 → [`ProviderError::RateLimited`] with `Retry-After`; timeouts, connection
//!   errors and 5xx → [`ProviderError::Transient`]; 401/403 → [`ProviderError::Config`];
//!   422, other 4xx, `failed`/`canceled` predictions → [`ProviderError::Refused`] with
//!   Replicate's `detail` or `error`. The token is never logged.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::provider::ProviderError;

/// Largest image accepted from an output URL.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// How to reach Replicate and which model to run.
#[derive(Clone)]
pub struct ReplicateConfig {
    /// `https://api.replicate.com` (without `/v1`).
    pub base_url: Url,
    pub token: SecretString,
    /// `owner/name` (an official model) or `owner/name:version`.
    pub model: String,
    /// Each HTTP request (the create call holds up to 60 s with `Prefer: wait`).
    pub timeout: Duration,
    /// The whole generation, polling included.
    pub deadline: Duration,
    /// Pause between polls.
    pub poll_every: Duration,
}

impl std::fmt::Debug for ReplicateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicateConfig")
            .field("base_url", &self.base_url.as_str())
            .field("token", &"***")
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The Replicate image provider.
pub struct ReplicateProvider {
    config: ReplicateConfig,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct Prediction {
    #[serde(default)]
    id: String,
    status: String,
    #[serde(default)]
    output: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    urls: Option<PredictionUrls>,
}

#[derive(Debug, Deserialize)]
struct PredictionUrls {
    get: Option<String>,
}

impl ReplicateProvider {
    pub fn new(config: ReplicateConfig) -> ReplicateProvider {
        let http = reqwest::Client::builder()
            .user_agent(concat!("AutoSocial/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5).min(config.timeout))
            .timeout(config.timeout)
            .build()
            .expect("static HTTP client configuration is valid");
        ReplicateProvider { config, http }
    }

    /// `replicate:{model}`, for the item's `generator` and logs.
    pub fn name(&self) -> String {
        format!("replicate:{}", self.config.model)
    }

    fn api(&self, path: &str) -> Url {
        let mut base = self.config.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(path)
            .expect("a relative path joins onto an http(s) URL")
    }

    /// The create request: the model's endpoint, or the versioned one.
    fn create_request(
        &self,
        prompt: &str,
        aspect_ratio: &str,
    ) -> Result<(Url, serde_json::Value), ProviderError> {
        let input = json!({"prompt": prompt, "aspect_ratio": aspect_ratio});
        let (model, version) = match self.config.model.split_once(':') {
            Some((m, v)) => (m, Some(v)),
            None => (self.config.model.as_str(), None),
        };
        let Some((owner, name)) = model
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        else {
            return Err(ProviderError::Config(format!(
                "model “{}” is not owner/name or owner/name:version",
                self.config.model
            )));
        };
        Ok(match version {
            Some(v) => (
                self.api("v1/predictions"),
                json!({"version": v, "input": input}),
            ),
            None => (
                self.api(&format!("v1/models/{owner}/{name}/predictions")),
                json!({"input": input}),
            ),
        })
    }

    /// One image for `prompt` at about `aspect_ratio` (like `1:1`, `4:5`, `16:9`).
    pub async fn generate(
        &self,
        prompt: &str,
        aspect_ratio: &str,
    ) -> Result<image::DynamicImage, ProviderError> {
        let started = Instant::now();
        let (url, body) = self.create_request(prompt, aspect_ratio)?;
        let wait = self.config.timeout.as_secs().clamp(1, 60);
        let req = self
            .http
            .post(url)
            .bearer_auth(self.config.token.expose_secret())
            .header("Prefer", format!("wait={wait}"))
            .json(&body);
        let mut prediction = self.call(req).await?;
        loop {
            match prediction.status.as_str() {
                "succeeded" => break,
                "failed" | "canceled" => {
                    let why = prediction
                        .error
                        .as_ref()
                        .map(|e| {
                            e.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| e.to_string())
                        })
                        .unwrap_or_else(|| "no reason given".into());
                    return Err(ProviderError::Refused(format!(
                        "prediction {} {}: {why}",
                        prediction.id, prediction.status
                    )));
                }
                _ => {}
            }
            if started.elapsed() + self.config.poll_every > self.config.deadline {
                return Err(ProviderError::Transient(format!(
                    "prediction {} still {} after {}s",
                    prediction.id,
                    prediction.status,
                    self.config.deadline.as_secs()
                )));
            }
            let get = prediction
                .urls
                .as_ref()
                .and_then(|u| u.get.as_deref())
                .and_then(|u| Url::parse(u).ok())
                .ok_or_else(|| {
                    ProviderError::Malformed(format!(
                        "prediction {} is {} without urls.get",
                        prediction.id, prediction.status
                    ))
                })?;
            tokio::time::sleep(self.config.poll_every).await;
            prediction = self
                .call(
                    self.http
                        .get(get)
                        .bearer_auth(self.config.token.expose_secret()),
                )
                .await?;
        }
        let output = match prediction.output {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Array(a)) => {
                a.into_iter().find_map(|v| v.as_str().map(str::to_owned))
            }
            _ => None,
        }
        .and_then(|u| Url::parse(&u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            ProviderError::Malformed(format!(
                "prediction {} succeeded without an image URL",
                prediction.id
            ))
        })?;
        self.download(output).await
    }

    /// Send one API request and classify the answer.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Prediction, ProviderError> {
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.map_err(transport)?;
        if status.as_u16() == 429 {
            return Err(ProviderError::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(10)),
            });
        }
        if status.is_server_error() || status.as_u16() == 408 {
            return Err(ProviderError::Transient(format!(
                "HTTP {status}: {}",
                detail(&text)
            )));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(ProviderError::Config(format!(
                "Replicate refused the token (HTTP {status}): {}",
                detail(&text)
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Refused(format!(
                "Replicate refused the request (HTTP {status}): {}",
                detail(&text)
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| ProviderError::Malformed(format!("not a prediction: {e}")))
    }

    /// Fetch the output image (no token: output URLs are public and may be on another host).
    async fn download(&self, url: Url) -> Result<image::DynamicImage, ProviderError> {
        let mut resp = self.http.get(url).send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(ProviderError::Transient(format!(
                "image download: HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Malformed(format!(
                "image download: HTTP {status}"
            )));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_IMAGE_BYTES as u64)
        {
            return Err(ProviderError::Malformed(format!(
                "the image is larger than {MAX_IMAGE_BYTES} bytes"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Err(ProviderError::Malformed(format!(
                    "the image is larger than {MAX_IMAGE_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        image::load_from_memory(&bytes).map_err(|e| {
            ProviderError::Malformed(format!("the output is not a readable image: {e}"))
        })
    }
}

fn transport(e: reqwest::Error) -> ProviderError {
    let what = if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    ProviderError::Transient(format!("Replicate {what}: {}", e.without_url()))
}

/// Replicate's `detail` (problem+json), or a bounded prefix of the body.
fn detail(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// The aspect ratio closest to `width:height` among those image models commonly accept.
pub fn aspect_ratio(width: u32, height: u32) -> &'static str {
    const RATIOS: [(&str, f64); 7] = [
        ("1:1", 1.0),
        ("16:9", 16.0 / 9.0),
        ("9:16", 9.0 / 16.0),
        ("4:5", 0.8),
        ("5:4", 1.25),
        ("3:2", 1.5),
        ("2:3", 2.0 / 3.0),
    ];
    let r = f64::from(width.max(1)) / f64::from(height.max(1));
    RATIOS
        .iter()
        .min_by(|a, b| (a.1 - r).abs().total_cmp(&(b.1 - r).abs()))
        .map(|a| a.0)
        .unwrap_or("1:1")
}
