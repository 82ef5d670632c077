//! Replicate's predictions API (`POST /replicate/v1/models/{owner}/{name}/predictions`,
//! `POST /replicate/v1/predictions`, `GET /replicate/v1/predictions/{id}`) in the real shapes: a
//! new prediction answers `starting` (or `succeeded` at once with `Prefer: wait` when the
//! `sync` knob is on), its `urls.get` answers `succeeded` with an output URL the stub serves
//! itself (a small PNG). Knobs to misbehave: 422 or 429 (with `Retry-After`) on create, or a
//! `failed` prediction. Knobs: `GET|POST /replicate/_sandbox/knobs`.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How the stub behaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicateKnobs {
    /// The bearer token it accepts.
    pub token: String,
    /// `422` (invalid input on create), `429` (throttled on create, with `Retry-After`) or
    /// `failed` (the prediction fails).
    pub fail_mode: Option<String>,
    pub retry_after_secs: u64,
    /// Honour `Prefer: wait`: answer `succeeded` from the create call.
    pub sync: bool,
    /// Size of the PNG the predictions output.
    pub width: u32,
    pub height: u32,
}

impl Default for ReplicateKnobs {
    fn default() -> Self {
        ReplicateKnobs {
            token: "r8_sandbox".into(),
            fail_mode: None,
            retry_after_secs: 7,
            sync: false,
            width: 320,
            height: 200,
        }
    }
}

struct Prediction {
    model: String,
    input: Value,
    polls: u32,
}

#[derive(Default)]
struct Stub {
    knobs: ReplicateKnobs,
    predictions: BTreeMap<String, Prediction>,
    next_id: u64,
}

type Shared = Arc<Mutex<Stub>>;

/// The routes, each sandbox with its own knobs.
pub fn routes() -> Router<crate::Sandbox> {
    Router::new()
        .route(
            "/v1/models/{owner}/{name}/predictions",
            post(create_for_model),
        )
        .route("/v1/predictions", post(create_with_version))
        .route("/v1/predictions/{id}", get(get_prediction))
        .route("/_sandbox/files/{file}", get(file))
        .route("/_sandbox/knobs", get(get_knobs).post(set_knobs))
        .with_state(Shared::default())
}

async fn get_knobs(State(s): State<Shared>) -> Json<ReplicateKnobs> {
    Json(s.lock().expect("stub").knobs.clone())
}

async fn set_knobs(State(s): State<Shared>, Json(k): Json<ReplicateKnobs>) -> Json<ReplicateKnobs> {
    s.lock().expect("stub").knobs = k.clone();
    Json(k)
}

/// Replicate's problem+json error body.
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        Json(json!({"title": title, "detail": detail, "status": status.as_u16()})),
    )
        .into_response()
}

fn authorized(s: &Stub, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == s.knobs.token)
}

/// Where this stub is reachable, as the client addressed it.
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/replicate")
}

fn prediction_json(base: &str, id: &str, p: &Prediction, status: &str, failed: bool) -> Value {
    let output =
        (status == "succeeded").then(|| json!([format!("{base}/_sandbox/files/{id}.png")]));
    json!({
        "id": id,
        "model": p.model,
        "version": "dp-sandbox",
        "input": p.input,
        "logs": "",
        "output": output,
        "data_removed": false,
        "error": if failed { json!("The model failed to generate an image: NSFW content detected") } else { Value::Null },
        "status": status,
        "created_at": chrono::Utc::now().to_rfc3339(),
        "urls": {
            "get": format!("{base}/v1/predictions/{id}"),
            "cancel": format!("{base}/v1/predictions/{id}/cancel"),
            "stream": null,
        }
    })
}

async fn create_for_model(
    State(s): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    create(&s, format!("{owner}/{name}"), &headers, &body)
}

async fn create_with_version(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let Some(version) = body["version"].as_str().map(str::to_owned) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid version or not permitted",
            "- version: Additional property version is required",
        );
    };
    create(&s, version, &headers, &body)
}

fn create(s: &Shared, model: String, headers: &HeaderMap, body: &Value) -> Response {
    let mut stub = s.lock().expect("stub");
    if !authorized(&stub, headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "You did not pass a valid authentication token",
        );
    }
    match stub.knobs.fail_mode.as_deref() {
        Some("429") => {
            let retry = stub.knobs.retry_after_secs.to_string();
            let mut r = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Request was throttled.",
                &format!("Request was throttled. Expected available in {retry} seconds."),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, retry.parse().expect("digits"));
            return r;
        }
        Some("422") => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Input validation failed",
                "- input.aspect_ratio: aspect_ratio must be one of the following: \"1:1\", \"16:9\"",
            );
        }
        _ => {}
    }
    let Some(input) = body.get("input").filter(|i| i.is_object()) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            "- input: Invalid type. Expected: object",
        );
    };
    if input["prompt"].as_str().is_none_or(|p| p.trim().is_empty()) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            "- input: prompt is required",
        );
    }
    stub.next_id += 1;
    let id = format!("sbx{:012}", stub.next_id);
    let p = Prediction {
        model,
        input: input.clone(),
        polls: 0,
    };
    let wait = headers
        .get("prefer")
        .is_some_and(|v| v.to_str().is_ok_and(|v| v.trim_start().starts_with("wait")));
    let failed = stub.knobs.fail_mode.as_deref() == Some("failed");
    let (status, code) = if wait && stub.knobs.sync {
        if failed {
            ("failed", StatusCode::CREATED)
        } else {
            ("succeeded", StatusCode::CREATED)
        }
    } else {
        ("starting", StatusCode::CREATED)
    };
    let out = prediction_json(&base(headers), &id, &p, status, status == "failed");
    stub.predictions.insert(id, p);
    (code, Json(out)).into_response()
}

async fn get_prediction(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut stub = s.lock().expect("stub");
    if !authorized(&stub, &headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "You did not pass a valid authentication token",
        );
    }
    let failed = stub.knobs.fail_mode.as_deref() == Some("failed");
    let Some(p) = stub.predictions.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "Not found", "Not found.");
    };
    p.polls += 1;
    // one poll sees it processing, the next one finished
    let status = match (p.polls, failed) {
        (1, _) => "processing",
        (_, true) => "failed",
        (_, false) => "succeeded",
    };
    Json(prediction_json(
        &base(&headers),
        &id,
        p,
        status,
        status == "failed",
    ))
    .into_response()
}

async fn file(State(s): State<Shared>, Path(file): Path<String>) -> Response {
    let (w, h) = {
        let stub = s.lock().expect("stub");
        let known = file
            .strip_suffix(".png")
            .is_some_and(|id| stub.predictions.contains_key(id));
        if !known {
            return StatusCode::NOT_FOUND.into_response();
        }
        (stub.knobs.width.max(1), stub.knobs.height.max(1))
    };
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 160])
    });
    let mut out = Cursor::new(Vec::new());
    if image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "image/png")], out.into_inner()).into_response()
}
