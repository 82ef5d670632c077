//! Live updates over server-sent events.
//!
//! A trigger on `publications` and `content_items` (migration `console_indexes`) NOTIFYs
//! `autosocial_live` with `{agency_id, client_id, kind, id, state}` on every state change, from
//! whichever process made it (a worker publishing, a reviewer approving). Each admin process
//! LISTENs once (started by the first page that subscribes) and fans events out through a tokio
//! broadcast channel; `/live/events` streams to each open page only its own agency's events (and,
//! with `?client=`, one client's). Pages connect with htmx's SSE extension (`hx-sse:connect`),
//! which dispatches each `live` event on the connecting element; their live fragments re-fetch
//! themselves on it (`hx-trigger="live from:#live"`). Without JavaScript nothing connects and a
//! reload shows the same.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{OnceCell, broadcast};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::extract::Query;
use crate::statics;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "autosocial_live";
/// Events buffered per subscriber before it is told to resynchronise.
const BUFFER: usize = 1024;
/// A stream ends after this long; the browser reconnects, which checks the session again.
const MAX_STREAM: Duration = Duration::from_secs(600);
/// How long the first subscriber waits for the LISTEN to be in place.
const READY_WAIT: Duration = Duration::from_secs(5);

/// One change, as the trigger sends it. `id`/`state` are `None` when one statement changed many
/// rows (refresh everything); `agency_id` is `None` for a resync after a lost LISTEN connection
/// (every agency refreshes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LiveEvent {
    pub agency_id: Option<Uuid>,
    #[serde(default)]
    pub client_id: Option<Uuid>,
    pub kind: String,
    pub id: Option<Uuid>,
    pub state: Option<String>,
}

impl LiveEvent {
    fn resync() -> LiveEvent {
        LiveEvent {
            agency_id: None,
            client_id: None,
            kind: "resync".into(),
            id: None,
            state: None,
        }
    }

    /// Whether a page of `agency` (optionally of one client) should hear of it.
    pub fn concerns(&self, agency: Uuid, client: Option<Uuid>) -> bool {
        match self.agency_id {
            None => true,
            Some(a) if a != agency => false,
            Some(_) => match (client, self.client_id) {
                (Some(want), Some(c)) => want == c,
                _ => true,
            },
        }
    }
}

/// The process's fan-out: one LISTEN connection, any number of subscribers.
#[derive(Default)]
pub struct Hub {
    tx: OnceCell<broadcast::Sender<LiveEvent>>,
    versions: Arc<Versions>,
}

/// How many changes have been heard, per agency and for everyone (a resync): cached figures
/// computed at another version are out of date.
#[derive(Default)]
struct Versions {
    all: AtomicU64,
    agencies: Mutex<HashMap<Uuid, u64>>,
}

impl Versions {
    fn heard(&self, ev: &LiveEvent) {
        match ev.agency_id {
            None => {
                self.all.fetch_add(1, Ordering::SeqCst);
            }
            Some(a) => {
                *self
                    .agencies
                    .lock()
                    .expect("versions lock")
                    .entry(a)
                    .or_default() += 1;
            }
        }
    }

    fn of(&self, agency: Uuid) -> u64 {
        let own = self
            .agencies
            .lock()
            .expect("versions lock")
            .get(&agency)
            .copied()
            .unwrap_or(0);
        // both only grow, so the sum changes whenever either does
        self.all.load(Ordering::SeqCst).wrapping_add(own)
    }
}

impl Hub {
    /// The version of `agency`'s posts and items as this process has heard of them: it changes
    /// (before the event reaches any page) whenever a change of them is notified. Stays 0 until
    /// a page subscribes to live updates, as nothing listens before.
    pub fn version(&self, agency: Uuid) -> u64 {
        self.versions.of(agency)
    }

    /// Count a change made by this process that sends no notification (a kill switch) for
    /// `agency`, or for every agency with `None`, so cached figures are recounted.
    pub fn touch(&self, agency: Option<Uuid>) {
        self.versions.heard(&LiveEvent {
            agency_id: agency,
            client_id: None,
            kind: "touch".into(),
            id: None,
            state: None,
        });
    }

    /// A receiver of every event; the first call starts the listener and waits (briefly) until
    /// it listens, so nothing committed after this returns is missed.
    pub async fn subscribe(&self, pool: &PgPool) -> broadcast::Receiver<LiveEvent> {
        let tx = self
            .tx
            .get_or_init(|| async {
                let (tx, _) = broadcast::channel(BUFFER);
                let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
                tokio::spawn(listen(
                    pool.clone(),
                    tx.downgrade(),
                    self.versions.clone(),
                    ready_tx,
                ));
                if tokio::time::timeout(READY_WAIT, ready_rx).await.is_err() {
                    tracing::warn!("live updates: LISTEN not ready yet; events follow when it is");
                }
                tx
            })
            .await;
        tx.subscribe()
    }
}

/// LISTEN until every sender is gone; reconnect on failure and tell pages to resynchronise.
async fn listen(
    pool: PgPool,
    tx: broadcast::WeakSender<LiveEvent>,
    versions: Arc<Versions>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "live updates: LISTEN connection failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                if tx.upgrade().is_none() {
                    return;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "live updates: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        if let Some(r) = ready.take() {
            let _ = r.send(());
        } else if let Some(tx) = tx.upgrade() {
            // changes while we were not listening are unknown: every page refreshes
            versions.heard(&LiveEvent::resync());
            let _ = tx.send(LiveEvent::resync());
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let Some(tx) = tx.upgrade() else { return };
                    match serde_json::from_str::<LiveEvent>(n.payload()) {
                        // no subscriber is not an error
                        Ok(ev) => {
                            versions.heard(&ev);
                            drop(tx.send(ev))
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "live updates: unreadable notification")
                        }
                    }
                }
                Ok(None) => {
                    let Some(tx) = tx.upgrade() else { return };
                    versions.heard(&LiveEvent::resync());
                    let _ = tx.send(LiveEvent::resync());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live updates: LISTEN connection lost; reconnecting");
                    break;
                }
            }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct EventsQuery {
    /// Only this client's events (plus agency-wide refreshes).
    client: Option<Uuid>,
}

/// The SSE payload a page receives: no agency id (it is always the page's own).
#[derive(Serialize)]
struct Payload<'a> {
    kind: &'a str,
    client_id: Option<Uuid>,
    id: Option<Uuid>,
    state: Option<&'a str>,
}

fn sse_event(ev: &LiveEvent) -> Event {
    let payload = Payload {
        kind: &ev.kind,
        client_id: ev.client_id,
        id: ev.id,
        state: ev.state.as_deref(),
    };
    Event::default()
        .event("live")
        .data(serde_json::to_string(&payload).unwrap_or_else(|_| "{}".into()))
}

/// `GET /live/events`: the session's agency's changes as `event: live` messages (`client`:
/// one of its clients only; another agency's client is not found, like everywhere else).
pub async fn events(
    State(state): State<AppState>,
    user: Viewer,
    Query(q): Query<EventsQuery>,
) -> AppResult<Response> {
    if let Some(client) = q.client {
        sqlx::query_scalar!(
            r#"SELECT true AS "ours!" FROM clients WHERE id = $1 AND agency_id = $2"#,
            client,
            user.agency_id
        )
        .fetch_optional(&state.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    }
    let rx = state.live.subscribe(&state.pool).await;
    let stream = filtered(rx, user.agency_id, q.client);
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // a proxy must pass each event on at once
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

fn filtered(
    rx: broadcast::Receiver<LiveEvent>,
    agency: Uuid,
    client: Option<Uuid>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let deadline = tokio::time::Instant::now() + MAX_STREAM;
    let hello = Event::default()
        .retry(Duration::from_secs(3))
        .comment("connected");
    let first = futures::stream::once(async move { Ok(hello) });
    let rest = futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    return Some((Ok(sse_event(&LiveEvent::resync())), rx));
                }
                Ok(Ok(ev)) if ev.concerns(agency, client) => {
                    return Some((Ok(sse_event(&ev)), rx));
                }
                Ok(Ok(_)) => continue,
            }
        }
    });
    futures::StreamExt::chain(first, rest)
}

/// What a live page includes once, outside the fragments it refreshes: the SSE extension and
/// the connecting element (`#live`) whose `live` events the fragments listen for.
pub fn connector(client: Option<Uuid>) -> Markup {
    let url = match client {
        Some(c) => format!("/live/events?client={c}"),
        None => "/live/events".to_owned(),
    };
    html! {
        script src=(statics::sse_path()) defer {}
        span #live hidden "data-hx-sse_connect"=(url) {}
    }
}

/// The `hx-trigger` of a fragment that refreshes on live events (throttled: a burst of changes
/// is one re-fetch).
pub const TRIGGER: &str = "live from:#live throttle:2s";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_only_their_agency_and_client() {
        let (a, b, c1, c2) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let ev = LiveEvent {
            agency_id: Some(a),
            client_id: Some(c1),
            kind: "publication".into(),
            id: Some(Uuid::now_v7()),
            state: Some("published".into()),
        };
        assert!(ev.concerns(a, None));
        assert!(ev.concerns(a, Some(c1)));
        assert!(!ev.concerns(a, Some(c2)));
        assert!(!ev.concerns(b, None));
        let bulk = LiveEvent {
            client_id: None,
            id: None,
            state: None,
            ..ev.clone()
        };
        assert!(bulk.concerns(a, Some(c2)));
        assert!(!bulk.concerns(b, None));
        assert!(LiveEvent::resync().concerns(b, Some(c2)));
        let parsed: LiveEvent = serde_json::from_str(&format!(
            r#"{{"agency_id":"{a}","client_id":null,"kind":"item","id":null,"state":null}}"#
        ))
        .unwrap();
        assert_eq!(parsed.agency_id, Some(a));
    }
}
