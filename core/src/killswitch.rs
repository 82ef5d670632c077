//! Kill switches at scopes global, agency, client, platform and account.
//!
//! The guarantee: once [`engage`] has returned, no new platform request for that scope starts
//! anywhere in the fleet. Postgres is the truth; Redis only makes it fast:
//!
//! * Every worker keeps a snapshot of the engaged switches and trusts it for at most
//!   [`Gate::validity`], counted from *before* the query that read it. A platform request needs a
//!   [`Permit`] from the [`Gate`], which refreshes a stale snapshot from Postgres first.
//! * [`engage`] commits the switch, then publishes it on Redis; each worker reloads its snapshot,
//!   waits until no permit granted under the old snapshot is still held, and acknowledges.
//!   `engage` returns when every live worker has acknowledged — or, when Redis is slow, down or a
//!   worker silent, once `validity` (+ a margin) has passed since the commit, by which time every
//!   snapshot older than the switch has expired.
//! * Work covered by a switch is *held* (state `held`, out of the claim index), never dropped;
//!   [`disengage`] releases it. Holding and releasing are serialised by an advisory lock so a
//!   job can never be parked just after its switch went away.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use sqlx::PgPool;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::domain::{KillSwitchScope, Platform};
use crate::fleet;
use crate::queue::Scope;

/// Advisory lock key serialising "hold a job" against "disengage and release held jobs".
pub const HOLD_LOCK: i64 = 0x6b69_6c6c_7377; // "killsw"

/// How long after a commit the fallback waits beyond the snapshot validity.
const MARGIN: Duration = Duration::from_millis(250);

/// An engaged switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub id: Uuid,
    pub scope: KillSwitchScope,
    pub agency_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub platform: Option<Platform>,
    pub account_id: Option<Uuid>,
    pub reason: String,
}

impl Switch {
    /// Same rule as the SQL function `kill_switch_covers`.
    pub fn covers(&self, s: &Scope) -> bool {
        match self.scope {
            KillSwitchScope::Global => true,
            KillSwitchScope::Agency => self.agency_id.is_some() && self.agency_id == s.agency_id,
            KillSwitchScope::Client => self.client_id.is_some() && self.client_id == s.client_id,
            KillSwitchScope::Platform => {
                self.platform.is_some()
                    && self.platform == s.platform
                    && (self.agency_id.is_none() || self.agency_id == s.agency_id)
            }
            KillSwitchScope::Account => {
                self.account_id.is_some() && self.account_id == s.account_id
            }
        }
    }
}

/// What a switch targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Global,
    Agency(Uuid),
    Client {
        agency: Uuid,
        client: Uuid,
    },
    /// A platform for one agency, or for everyone (`agency: None`, operators only).
    Platform {
        agency: Option<Uuid>,
        platform: Platform,
    },
    Account {
        agency: Uuid,
        account: Uuid,
    },
}

impl Target {
    fn columns(
        self,
    ) -> (
        KillSwitchScope,
        Option<Uuid>,
        Option<Uuid>,
        Option<Platform>,
        Option<Uuid>,
    ) {
        match self {
            Target::Global => (KillSwitchScope::Global, None, None, None, None),
            Target::Agency(a) => (KillSwitchScope::Agency, Some(a), None, None, None),
            Target::Client { agency, client } => (
                KillSwitchScope::Client,
                Some(agency),
                Some(client),
                None,
                None,
            ),
            Target::Platform { agency, platform } => (
                KillSwitchScope::Platform,
                agency,
                None,
                Some(platform),
                None,
            ),
            Target::Account { agency, account } => (
                KillSwitchScope::Account,
                Some(agency),
                None,
                None,
                Some(account),
            ),
        }
    }
}

/// Why a platform request may not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    #[error("kill switch engaged ({scope}): {reason}")]
    Switch {
        scope: KillSwitchScope,
        reason: String,
    },
    /// The switches could not be read; nothing may start until they can.
    #[error("kill switches unknown: {0}")]
    Unknown(String),
}

/// Proof that no switch covered the scope when the request started. Hold it until the request
/// has been sent: a worker applying a new switch waits for outstanding permits before it
/// acknowledges. A permit is only as good as the snapshot it was granted under: a process that
/// froze past the snapshot's validity cannot have acknowledged a switch engaged meanwhile, and
/// [`engage`] stops waiting for it after that validity; so a request must not leave on a stale
/// permit ([`Permit::is_valid`]; a job's fence asks for a new one).
pub struct Permit {
    _guard: OwnedRwLockReadGuard<()>,
    valid_until: Instant,
}

impl Permit {
    /// Whether the snapshot this permit was granted under is still within its validity.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

struct Snapshot {
    switches: Vec<Switch>,
    /// When the query that read `switches` started.
    read_at: Option<Instant>,
}

/// A worker's view of the engaged switches.
pub struct Gate {
    pool: PgPool,
    validity: Duration,
    snapshot: Mutex<Snapshot>,
    permits: Arc<RwLock<()>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl Gate {
    pub fn new(pool: PgPool, validity: Duration) -> Arc<Gate> {
        Arc::new(Gate {
            pool,
            validity,
            snapshot: Mutex::new(Snapshot {
                switches: Vec::new(),
                read_at: None,
            }),
            permits: Arc::new(RwLock::new(())),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn validity(&self) -> Duration {
        self.validity
    }

    /// Read the engaged switches from Postgres.
    pub async fn refresh(&self) -> sqlx::Result<()> {
        let _one_at_a_time = self.refreshing.lock().await;
        let started = Instant::now();
        let switches = engaged(&self.pool).await?;
        let mut s = self.snapshot.lock().expect("snapshot lock");
        if s.read_at.is_none_or(|t| t < started) {
            *s = Snapshot {
                switches,
                read_at: Some(started),
            };
        }
        Ok(())
    }

    /// A switch changed somewhere: reload, then wait until no permit granted under the old
    /// snapshot is still held.
    pub async fn apply_change(&self) -> sqlx::Result<()> {
        self.refresh().await?;
        drop(self.permits.write().await);
        Ok(())
    }

    /// Whether a switch covers `scope`, and until when the snapshot that says so is valid;
    /// `None` when the snapshot is stale.
    fn check(&self, scope: &Scope) -> Option<Result<Instant, Blocked>> {
        let s = self.snapshot.lock().expect("snapshot lock");
        let valid_until = s.read_at.map(|t| t + self.validity)?;
        if Instant::now() >= valid_until {
            return None;
        }
        Some(match s.switches.iter().find(|sw| sw.covers(scope)) {
            Some(sw) => Err(Blocked::Switch {
                scope: sw.scope,
                reason: sw.reason.clone(),
            }),
            None => Ok(valid_until),
        })
    }

    /// Permission to start a platform request for `scope`.
    pub async fn permit(&self, scope: &Scope) -> Result<Permit, Blocked> {
        let mut refreshed = false;
        loop {
            let guard = self.permits.clone().read_owned().await;
            match self.check(scope) {
                Some(Ok(valid_until)) => {
                    return Ok(Permit {
                        _guard: guard,
                        valid_until,
                    });
                }
                // A switch may just have been disengaged: confirm from the database once.
                Some(Err(b)) if refreshed => return Err(b),
                Some(Err(_)) | None => {
                    drop(guard);
                    if refreshed {
                        return Err(Blocked::Unknown("snapshot expired while refreshing".into()));
                    }
                    self.refresh()
                        .await
                        .map_err(|e| Blocked::Unknown(e.to_string()))?;
                    refreshed = true;
                }
            }
        }
    }

    /// Keep the snapshot fresh so permits rarely wait for the database.
    pub async fn keep_fresh(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "reading kill switches failed; platform requests wait until it works");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.validity / 3) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Listen for switch changes on Redis, apply each and acknowledge it. Reconnects by itself.
    pub async fn follow_fleet(
        self: Arc<Self>,
        subscriber: fred::clients::SubscriberClient,
        ack: Client,
        worker_id: String,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut rx = subscriber.message_rx();
        let _resubscribe = subscriber.manage_subscriptions();
        if let Err(e) = subscriber.subscribe(fleet::SWITCH_CHANNEL).await {
            tracing::warn!(error = %e, "subscribing to kill-switch broadcasts failed; relying on the database");
        }
        loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = stop.cancelled() => return,
            };
            let Ok(msg) = msg else { continue };
            let Ok(id) = msg.value.convert::<String>() else {
                continue;
            };
            match self.apply_change().await {
                Ok(()) => {
                    if let Err(e) = fleet::ack_switch(&ack, &id, &worker_id).await {
                        tracing::warn!(error = %e, "acknowledging a kill switch failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reloading kill switches failed"),
            }
        }
    }
}

/// The switches engaged now.
pub async fn engaged(pool: &PgPool) -> sqlx::Result<Vec<Switch>> {
    let rows = sqlx::query!(
        r#"SELECT id, scope AS "scope: KillSwitchScope", agency_id, client_id, platform AS "platform: Platform", account_id, reason
           FROM kill_switches WHERE disengaged_at IS NULL"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Switch {
            id: r.id,
            scope: r.scope,
            agency_id: r.agency_id,
            client_id: r.client_id,
            platform: r.platform,
            account_id: r.account_id,
            reason: r.reason,
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("a switch is already engaged for this scope")]
    AlreadyEngaged,
    #[error("give a reason")]
    NoReason,
    #[error("no engaged switch with that id")]
    NotEngaged,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Engage a switch. Returns once no new platform request for the scope can start anywhere.
pub async fn engage(
    pool: &PgPool,
    redis: Option<&Client>,
    validity: Duration,
    actor: &Actor,
    target: Target,
    reason: &str,
) -> Result<Uuid, SwitchError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(SwitchError::NoReason);
    }
    let (scope, agency, client, platform, account) = target.columns();
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO kill_switches (id, scope, agency_id, client_id, platform, account_id, reason, engaged_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        scope.as_str(),
        agency,
        client,
        platform.map(|p| p.as_str()),
        account,
        reason,
        actor.user_id,
    )
    .execute(&mut *tx)
    .await;
    if let Err(sqlx::Error::Database(e)) = &inserted
        && e.constraint() == Some("kill_switches_engaged_key")
    {
        return Err(SwitchError::AlreadyEngaged);
    }
    inserted?;
    audit::append(
        &mut tx,
        actor,
        Entry::new(agency, "kill_switch.engage").target("kill_switch", id).details(serde_json::json!({ "scope": scope, "client_id": client, "platform": platform, "account_id": account, "reason": reason })),
    )
    .await?;
    // a switch over the whole deployment (global, a platform) is told to every agency
    crate::webhooks::emit(
        &mut *tx,
        agency,
        crate::webhooks::EventType::KillswitchEngaged,
        serde_json::json!({ "switch_id": id, "scope": scope, "client_id": client, "platform": platform,
                            "account_id": account, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    let deadline = Instant::now() + validity + MARGIN;
    wait_for_fleet(redis, &id.to_string(), deadline).await;
    Ok(id)
}

/// Publish a change and wait until every live worker acknowledged it, or until `deadline`.
async fn wait_for_fleet(redis: Option<&Client>, id: &str, deadline: Instant) {
    if let Some(r) = redis {
        match fleet::publish_switch(r, id).await {
            Ok(()) => loop {
                match (
                    fleet::live_workers(r).await,
                    fleet::switch_acks(r, id).await,
                ) {
                    (Ok(live), Ok(acked)) => {
                        let acked: HashSet<String> = acked.into_iter().collect();
                        if live.iter().all(|w| acked.contains(w)) {
                            return;
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::warn!(error = %e, "Redis unavailable while waiting for acknowledgements; waiting out snapshot validity");
                        break;
                    }
                }
                if Instant::now() >= deadline {
                    tracing::warn!(
                        switch = id,
                        "not every worker acknowledged in time; their snapshots have expired"
                    );
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            },
            Err(e) => {
                tracing::warn!(error = %e, "broadcasting a kill switch failed; waiting out snapshot validity")
            }
        }
    }
    tokio::time::sleep_until(deadline.into()).await;
}

/// Disengage a switch and release the work it held (unless another switch still covers it).
pub async fn disengage(
    pool: &PgPool,
    redis: Option<&Client>,
    actor: &Actor,
    id: Uuid,
) -> Result<u64, SwitchError> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", HOLD_LOCK)
        .execute(&mut *tx)
        .await?;
    let sw = sqlx::query!(
        "UPDATE kill_switches SET disengaged_at = now(), disengaged_by = $2 WHERE id = $1 AND disengaged_at IS NULL
         RETURNING agency_id, scope, client_id, platform, account_id",
        id,
        actor.user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(SwitchError::NotEngaged)?;
    let agency = sw.agency_id;
    let released = crate::queue::release_uncovered(&mut *tx).await?;
    audit::append(
        &mut tx,
        actor,
        Entry::new(agency, "kill_switch.disengage")
            .target("kill_switch", id)
            .details(serde_json::json!({ "released_jobs": released })),
    )
    .await?;
    crate::webhooks::emit(
        &mut *tx,
        agency,
        crate::webhooks::EventType::KillswitchReleased,
        serde_json::json!({ "switch_id": id, "scope": sw.scope, "client_id": sw.client_id,
                            "platform": sw.platform, "account_id": sw.account_id }),
    )
    .await?;
    tx.commit().await?;
    if let Some(r) = redis
        && let Err(e) = fleet::publish_switch(r, &id.to_string()).await
    {
        tracing::warn!(error = %e, "broadcasting a disengaged switch failed; workers notice within their snapshot validity");
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(scope: KillSwitchScope) -> Switch {
        Switch {
            id: Uuid::nil(),
            scope,
            agency_id: None,
            client_id: None,
            platform: None,
            account_id: None,
            reason: "r".into(),
        }
    }

    #[test]
    fn each_scope_covers_exactly_its_target() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let job = Scope {
            agency_id: Some(a),
            client_id: Some(a),
            account_id: Some(a),
            platform: Some(Platform::X),
        };
        assert!(sw(KillSwitchScope::Global).covers(&job));
        assert!(
            Switch {
                agency_id: Some(a),
                ..sw(KillSwitchScope::Agency)
            }
            .covers(&job)
        );
        assert!(
            !Switch {
                agency_id: Some(b),
                ..sw(KillSwitchScope::Agency)
            }
            .covers(&job)
        );
        assert!(
            Switch {
                client_id: Some(a),
                ..sw(KillSwitchScope::Client)
            }
            .covers(&job)
        );
        assert!(
            !Switch {
                client_id: Some(b),
                ..sw(KillSwitchScope::Client)
            }
            .covers(&job)
        );
        assert!(
            Switch {
                platform: Some(Platform::X),
                ..sw(KillSwitchScope::Platform)
            }
            .covers(&job)
        );
        assert!(
            Switch {
                platform: Some(Platform::X),
                agency_id: Some(a),
                ..sw(KillSwitchScope::Platform)
            }
            .covers(&job)
        );
        assert!(
            !Switch {
                platform: Some(Platform::X),
                agency_id: Some(b),
                ..sw(KillSwitchScope::Platform)
            }
            .covers(&job)
        );
        assert!(
            !Switch {
                platform: Some(Platform::Tiktok),
                ..sw(KillSwitchScope::Platform)
            }
            .covers(&job)
        );
        assert!(
            Switch {
                account_id: Some(a),
                ..sw(KillSwitchScope::Account)
            }
            .covers(&job)
        );
        assert!(
            !Switch {
                account_id: Some(b),
                ..sw(KillSwitchScope::Account)
            }
            .covers(&job)
        );
        assert!(
            !Switch {
                agency_id: Some(a),
                ..sw(KillSwitchScope::Agency)
            }
            .covers(&Scope::default())
        );
    }
}
