//! An OpenAI-compatible chat completions endpoint (`POST /openai/v1/chat/completions`) in the
//! real request and response shapes, writing structured captions from the prompt, with knobs to
//! misbehave: latency, malformed answers, refusals, 429 with `Retry-After`, 5xx, and the token
//! usage it reports. Knobs: `GET|POST /openai/_sandbox/knobs`; the requests it received:
//! `GET /openai/_sandbox/requests`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How the stub behaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenAiKnobs {
    /// The bearer key it accepts.
    pub api_key: String,
    /// Added before every answer.
    pub delay_ms: u64,
    /// `not_json` (content is not JSON), `extra_field`, `missing_field` or `truncated`
    /// (`finish_reason: length`).
    pub malformed: Option<String>,
    /// Answer with `message.refusal` instead of content.
    pub refuse: bool,
    /// Answer this many next requests with 429 and `Retry-After: retry_after_secs`.
    pub rate_limit_next: u32,
    pub retry_after_secs: u64,
    /// Answer this many next requests with 500.
    pub fail_next: u32,
    /// `usage.total_tokens` of each answer (split into prompt and completion tokens).
    pub tokens_per_answer: u64,
}

impl Default for OpenAiKnobs {
    fn default() -> Self {
        OpenAiKnobs {
            api_key: "sk-sandbox".into(),
            delay_ms: 0,
            malformed: None,
            refuse: false,
            rate_limit_next: 0,
            retry_after_secs: 3,
            fail_next: 0,
            tokens_per_answer: 150,
        }
    }
}

/// One request the stub received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Received {
    pub model: Option<String>,
    /// The answer's status; 0 while none was sent (the client gave up during a delay).
    pub status: u16,
}

#[derive(Default)]
struct Stub {
    knobs: OpenAiKnobs,
    received: Vec<Received>,
    next_id: u64,
}

type Shared = Arc<Mutex<Stub>>;

/// The routes, each sandbox with its own knobs.
pub fn routes() -> Router<crate::Sandbox> {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/_sandbox/knobs", get(get_knobs).post(set_knobs))
        .route("/_sandbox/requests", get(requests))
        .with_state(Shared::default())
}

async fn get_knobs(State(s): State<Shared>) -> Json<OpenAiKnobs> {
    Json(s.lock().expect("stub").knobs.clone())
}

async fn set_knobs(State(s): State<Shared>, Json(k): Json<OpenAiKnobs>) -> Json<OpenAiKnobs> {
    s.lock().expect("stub").knobs = k.clone();
    Json(k)
}

async fn requests(State(s): State<Shared>) -> Json<Vec<Received>> {
    Json(s.lock().expect("stub").received.clone())
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

/// Checks the request as the real endpoint would; `Err` is the 400 to send.
fn validate(body: &Value) -> Result<(String, String), String> {
    let model = body["model"]
        .as_str()
        .filter(|m| !m.is_empty())
        .ok_or("you must provide a model parameter")?;
    let messages = body["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("'messages' must be a non-empty array")?;
    let mut prompt = String::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        if !matches!(role, "system" | "developer" | "user" | "assistant") {
            return Err(format!("Invalid value for 'messages[{i}].role': '{role}'"));
        }
        let content = m["content"]
            .as_str()
            .ok_or_else(|| format!("'messages[{i}].content' must be a string"))?;
        prompt.push_str(content);
        prompt.push('\n');
    }
    if let Some(rf) = body.get("response_format") {
        match rf["type"].as_str() {
            Some("text") | Some("json_object") => {}
            Some("json_schema") => {
                let js = &rf["json_schema"];
                if js["name"].as_str().is_none_or(str::is_empty) || !js["schema"].is_object() {
                    return Err(
                        "'response_format.json_schema' needs a 'name' and a 'schema' object".into(),
                    );
                }
                if js["strict"] == json!(true)
                    && js["schema"]["additionalProperties"] != json!(false)
                {
                    return Err("Invalid schema for response_format: In context=(), 'additionalProperties' is required to be supplied and to be false".into());
                }
            }
            _ => return Err("Invalid value for 'response_format.type'".into()),
        }
    }
    Ok((model.to_owned(), prompt))
}

/// The value of a `Name: value` line of the prompt.
fn line_value<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    prompt
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
}

fn captions(prompt: &str) -> Value {
    let brand = line_value(prompt, "Brand").unwrap_or("our brand");
    let topic = line_value(prompt, "Topic").unwrap_or("what we do");
    let cta = line_value(prompt, "End with this call to action")
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    json!({
        "conservative": format!("A few practical notes on {topic} from {brand}.{cta}"),
        "balanced": format!("{topic} made simple: one idea from {brand} you can use today.{cta}"),
        "bold": format!("Everyone gets {topic} wrong. {brand} does not.{cta}"),
        "headline": format!("{topic}, made simple"),
    })
}

async fn completions(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let knobs = s.lock().expect("stub").knobs.clone();
    let record = |status: StatusCode, model: Option<String>| {
        s.lock().expect("stub").received.push(Received {
            model,
            status: status.as_u16(),
        });
    };
    let key_ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| k == knobs.api_key);
    if !key_ok {
        record(StatusCode::UNAUTHORIZED, None);
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        );
    }
    let parsed: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            record(StatusCode::BAD_REQUEST, None);
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                &format!("We could not parse the JSON body of your request: {e}"),
            );
        }
    };
    let (model, prompt) = match validate(&parsed) {
        Ok(x) => x,
        Err(msg) => {
            record(StatusCode::BAD_REQUEST, None);
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", None, &msg);
        }
    };
    let index = {
        let mut st = s.lock().expect("stub");
        st.received.push(Received {
            model: Some(model.clone()),
            status: 0,
        });
        st.received.len() - 1
    };
    let answered = |status: u16| s.lock().expect("stub").received[index].status = status;
    {
        let mut st = s.lock().expect("stub");
        if st.knobs.rate_limit_next > 0 {
            st.knobs.rate_limit_next -= 1;
            st.received[index].status = 429;
            let retry = st.knobs.retry_after_secs.to_string();
            drop(st);
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests. Please try again later.",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                retry.parse().expect("digits are a header value"),
            );
            return r;
        }
        if st.knobs.fail_next > 0 {
            st.knobs.fail_next -= 1;
            st.received[index].status = 500;
            drop(st);
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                "The server had an error while processing your request. Sorry about that!",
            );
        }
    }
    if knobs.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(knobs.delay_ms)).await;
    }
    let mut content = Some(captions(&prompt));
    let mut finish = "stop";
    let mut refusal = Value::Null;
    if knobs.refuse {
        content = None;
        refusal = json!("I'm sorry, but I can't help with that request.");
    }
    let content_text = content.map(|mut c| match knobs.malformed.as_deref() {
        Some("not_json") => "Here are your captions: conservative, balanced, bold".to_owned(),
        Some("extra_field") => {
            c["mood"] = json!("upbeat");
            c.to_string()
        }
        Some("missing_field") => {
            c.as_object_mut().expect("object").remove("headline");
            c.to_string()
        }
        Some("truncated") => {
            finish = "length";
            c.to_string().chars().take(40).collect()
        }
        _ => c.to_string(),
    });
    answered(200);
    let id = {
        let mut st = s.lock().expect("stub");
        st.next_id += 1;
        st.next_id
    };
    let prompt_tokens = knobs.tokens_per_answer * 2 / 3;
    let completion_tokens = knobs.tokens_per_answer - prompt_tokens;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Json(json!({
        "id": format!("chatcmpl-sandbox{id:08}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content_text, "refusal": refusal, "annotations": []},
            "logprobs": null,
            "finish_reason": finish
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": knobs.tokens_per_answer,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_sandbox"
    }))
    .into_response()
}
