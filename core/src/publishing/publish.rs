//! The publish handler: one `publish` job posts one publication exactly once as the platform
//! sees it (see [`super`] for how), through the run's fence, within the account's smoothing and
//! its platform's quotas. Every state change of the publication is a call of
//! [`crate::items::publications`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use url::Url;
use uuid::Uuid;

use super::record::{self, Records};
use super::{
    HELD_SLOT_LEAD, HELD_SLOT_PRIORITY, START_LEAD, Snapshot, bucket, next_free_slot, smoothing_key,
};
use crate::audit::Actor;
use crate::batch::Batcher;
use crate::domain::{Platform, PublicationState};
use crate::fence::{JobFence, Smoothing};
use crate::items::publications::{self as items, Found, Start};
use crate::items::{Failure, PublicationMove};
use crate::jobs::PublishPost;
use crate::limits::{self, Grant, Smoother};
use crate::platforms::{
    self, AccountRef, Lookup, MediaRef, NotSent, PlatformError, PlatformsConfig, PostRequest,
    Published,
};
use crate::queue::job::Job;
use crate::queue::runner::{Backoff, JobContext, Outcome};
use crate::queue::{self, RunAt};
use crate::vault::{Aad, Vault};

const BACKOFF: Backoff = <PublishPost as Job>::BACKOFF;

/// How far before an earlier attempt's start reconciliation looks for its post (clock skew
/// between us and the platform).
const RECONCILE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Runs of the process that start at the same moment share one statement (and one durable
/// commit, which is most of a start's cost): up to [`START_BATCH`] each, [`START_PARALLEL`]
/// statements at a time, each starting [`START_LINGER`] after its first run.
const START_BATCH: usize = 100;
const START_PARALLEL: usize = 2;
const START_LINGER: Duration = Duration::from_millis(3);

/// Everything the publish handler needs.
#[derive(Clone)]
pub struct Publisher {
    pub pool: PgPool,
    pub vault: Arc<Vault>,
    pub platforms: Arc<PlatformsConfig>,
    pub smoother: Arc<Smoother>,
    /// The admin's public URL, for signed media URLs; without it image posts fail permanently.
    pub public_url: Option<Url>,
    pub media_ttl: Duration,
    records: Records,
    starts: Arc<Batcher<Start, Option<Found>>>,
}

/// A publication as [`items::start`] found it, and whether it moved it to `publishing`.
struct Started {
    moved: bool,
    /// Whether the job's lease was still this run's when the statement ran.
    lease_held: bool,
    headroom: Option<i64>,
    loaded: Loaded,
}

pub(super) struct Loaded {
    pub(super) state: PublicationState,
    pub(super) agency: Uuid,
    pub(super) client: Uuid,
    pub(super) account: Uuid,
    pub(super) item: Uuid,
    pub(super) platform: Platform,
    pub(super) snapshot: Snapshot,
    pub(super) marker: Option<String>,
    pub(super) earlier_attempt: Option<DateTime<Utc>>,
    pub(super) account_status: String,
    pub(super) account_ref: AccountRef,
    pub(super) access_ct: Vec<u8>,
    pub(super) client_status: String,
}

/// One post log row.
struct LogRow<'a> {
    action: &'a str,
    outcome: &'a str,
    request_id: Option<&'a str>,
    status_code: Option<i32>,
    latency: Option<Duration>,
    error: Option<&'a str>,
}

async fn log(
    conn: &mut PgConnection,
    agency: Uuid,
    publication: Uuid,
    attempt: Uuid,
    row: LogRow<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO post_logs (agency_id, publication_id, attempt_id, action, outcome, request_id, status_code, latency_ms, error)
         VALUES ($1, $2, $3, $4, $5, left($6, 300), $7, $8, left($9, 4000))",
        agency,
        publication,
        attempt,
        row.action,
        row.outcome,
        row.request_id,
        row.status_code,
        row.latency.map(|d| d.as_millis().min(i32::MAX as u128) as i32),
        row.error
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn status_of(e: &PlatformError) -> (&'static str, Option<i32>) {
    match e {
        PlatformError::Transient(_) => ("transient", None),
        PlatformError::RateLimited { .. } => ("rate_limited", Some(429)),
        PlatformError::Auth(_) | PlatformError::GrantRevoked(_) => ("auth", Some(401)),
        // the two below come from token endpoints, not from posting; refused all the same
        PlatformError::Permanent(_)
        | PlatformError::CodeRejected(_)
        | PlatformError::AppCredentials(_) => ("permanent", None),
        PlatformError::NotSent(_) => ("held", None),
    }
}

impl Publisher {
    pub fn new(
        pool: PgPool,
        vault: Arc<Vault>,
        platforms: Arc<PlatformsConfig>,
        smoother: Arc<Smoother>,
        public_url: Option<Url>,
        media_ttl: Duration,
    ) -> Publisher {
        let records = record::records(pool.clone());
        let starting = pool.clone();
        let starts = Arc::new(
            Batcher::new(START_BATCH, START_PARALLEL, move |batch: Vec<Start>| {
                let pool = starting.clone();
                async move { Ok(items::start(&pool, &batch).await?) }
            })
            .linger(START_LINGER),
        );
        Publisher {
            pool,
            vault,
            platforms,
            smoother,
            public_url,
            media_ttl,
            records,
            starts,
        }
    }

    /// [`items::start`], in one statement with the other runs of the process starting now,
    /// with what it found made ready for posting.
    async fn start(&self, start: Start) -> anyhow::Result<Option<Started>> {
        let Some(f) = self.starts.call(start).await? else {
            return Ok(None);
        };
        Ok(Some(Started {
            moved: f.moved,
            lease_held: f.lease_held,
            headroom: f.headroom,
            loaded: Loaded {
                state: f.state,
                agency: f.agency_id,
                client: f.client_id,
                account: f.account_id,
                item: f.item_id,
                platform: f.platform,
                snapshot: serde_json::from_value(f.snapshot)?,
                marker: f.marker,
                earlier_attempt: f.earlier_attempt,
                account_status: f.account_status,
                account_ref: AccountRef {
                    platform_account_id: f.platform_account_id,
                    kind: f.account_kind,
                },
                access_ct: f.access_token_ct,
                client_status: f.client_status,
            },
        }))
    }

    /// Near a quota: serialise on the account's row across the fleet, check the quotas exactly
    /// and move the publication to `publishing` in that transaction. `Err` is how long to wait.
    async fn start_near_quota(
        &self,
        run: queue::Run,
        publication: Uuid,
        l: &Loaded,
        attempt: Uuid,
        marker: &str,
    ) -> anyhow::Result<Result<bool, Duration>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "SELECT id FROM social_accounts WHERE id = $1 FOR UPDATE",
            l.account
        )
        .fetch_one(&mut *tx)
        .await?;
        if let Some(wait) = limits::quota_wait(
            &mut tx,
            l.agency,
            l.account,
            l.platform.as_str(),
            publication,
        )
        .await?
        {
            return Ok(Err(wait));
        }
        let moved = items::start_locked(&mut *tx, run, publication, attempt, marker).await?;
        tx.commit().await?;
        Ok(Ok(moved))
    }

    /// Park a publication until its account or client can post again.
    async fn hold(
        &self,
        run: queue::Run,
        publication: Uuid,
        l: &Loaded,
        reason: &str,
    ) -> anyhow::Result<Outcome> {
        let mut tx = self.pool.begin().await?;
        let held = items::hold(&mut *tx, run, publication, reason).await?;
        if let Some(earlier) = held {
            let attempt = earlier.unwrap_or_else(Uuid::now_v7);
            log(
                &mut tx,
                l.agency,
                publication,
                attempt,
                LogRow {
                    action: "hold",
                    outcome: "held",
                    request_id: None,
                    status_code: None,
                    latency: None,
                    error: Some(reason),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Outcome::Done)
    }

    fn request(&self, l: &Loaded, marker: &str) -> Result<PostRequest, PlatformError> {
        let media = l
            .snapshot
            .media
            .iter()
            .map(|m| {
                let Some(public) = &self.public_url else {
                    return Err(PlatformError::Permanent(
                        "images need AUTOSOCIAL_PUBLIC_URL so the platform can fetch them".into(),
                    ));
                };
                Ok(MediaRef {
                    url: crate::media::sign(
                        &self.vault,
                        public,
                        &m.path,
                        Utc::now().timestamp(),
                        self.media_ttl,
                    ),
                    content_type: m.mime.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let link_url = match &l.snapshot.link_url {
            Some(u) => Some(
                Url::parse(u)
                    .map_err(|e| PlatformError::Permanent(format!("the link is not a URL: {e}")))?,
            ),
            None => None,
        };
        Ok(PostRequest {
            account: l.account_ref.clone(),
            text: l.snapshot.text.clone(),
            link_url,
            media,
            marker: marker.to_owned(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_published(
        &self,
        publication: Uuid,
        l: &Loaded,
        attempt: Uuid,
        p: &Published,
        action: &str,
        latency: Duration,
    ) -> anyhow::Result<()> {
        record::record_published(&self.records, publication, l, attempt, p, action, latency).await
    }

    /// Run one publish job.
    pub async fn run(&self, job: &JobContext) -> anyhow::Result<Outcome> {
        let publication: Uuid =
            serde_json::from_value(job.job.payload["publication_id"].clone())
                .map_err(|e| anyhow::anyhow!("payload without publication_id: {e}"))?;
        // Everything before the database from the job's scope: a post that must wait reads
        // nothing there.
        let (Some(account), Some(platform)) = (job.job.scope.account_id, job.job.scope.platform)
        else {
            return Ok(Outcome::Fail(
                "publish job without an account scope (kill switches could not cover it)".into(),
            ));
        };
        let Some(connector) = platforms::connector(platform, &self.platforms) else {
            return Ok(Outcome::RetryIn {
                delay: Duration::from_secs(60),
                reason: format!("no connector configured for {platform}"),
            });
        };
        // a kill switch over this scope: park the job, nothing leaves
        let permit = match job.permit().await {
            Ok(p) => p,
            Err(b) => return Ok(b.into()),
        };
        // The account's posting rate. The platform sees the post when it arrives, so its grant is
        // charged as late as possible: the first answer holds a slot at least START_LEAD ahead
        // (charged at the slot's time), the post moves to `publishing` meanwhile, and the fence
        // takes the slot right before the request leaves (waiting for it if the move was quick).
        // A slot further off than HELD_SLOT_LEAD: the job comes back at it, ahead of the posts
        // due. A slot of an earlier run whose time has come is granted at once; the fence asks
        // again if the move outlasts its validity.
        let smoothing = Smoothing {
            smoother: &self.smoother,
            key: smoothing_key(account),
            rate: bucket(platform),
            holder: job.job.id.to_string(),
        };
        let asked = Instant::now();
        let answer = smoothing
            .smoother
            .reserve_ahead(
                &smoothing.key,
                smoothing.rate,
                &smoothing.holder,
                START_LEAD,
            )
            .await;
        let granted = match answer {
            Grant::Now { age } => Some((asked, age)),
            Grant::Reserved(delay) if delay <= HELD_SLOT_LEAD => None,
            Grant::Reserved(delay) => {
                return Ok(Outcome::ComeBack {
                    delay: delay.saturating_sub(HELD_SLOT_LEAD),
                    priority: HELD_SLOT_PRIORITY,
                    reason: "waiting for the account's next posting slot (held for this post)"
                        .into(),
                });
            }
            Grant::Wait(delay) => {
                return Ok(Outcome::Postpone {
                    delay,
                    reason: "smoothing the account's posting rate".into(),
                });
            }
        };
        let fence = JobFence::new(Some(&job.lease), &job.gate, job.job.scope, Some(permit))
            .smoothed(smoothing, granted);

        // move to publishing with a fresh attempt id and the marker, within the quotas, if the
        // job is still this run's
        let run = job.run();
        let attempt = Uuid::now_v7();
        let fresh_marker = format!("as{}", publication.simple());
        let margin = 2 * i64::from(bucket(platform).burst) + 2;
        let Some(Started {
            moved,
            lease_held,
            headroom,
            loaded: l,
        }) = self
            .start(Start {
                run,
                publication,
                account,
                attempt,
                marker: fresh_marker.clone(),
                margin,
            })
            .await?
        else {
            return Ok(Outcome::Done);
        };
        if !lease_held {
            return Ok(Outcome::LeaseLost(
                "the job was taken over before its post started".into(),
            ));
        }
        let marker = l.marker.clone().unwrap_or(fresh_marker);
        if !moved {
            if !PublicationMove::Start.allows(l.state) {
                return Ok(Outcome::Done);
            }
            if l.account != account {
                return Ok(Outcome::Fail(format!(
                    "publish job scoped to account {account} but its publication belongs to {}",
                    l.account
                )));
            }
            if l.client_status != "active" {
                drop(fence);
                let reason = format!("the client is {}", l.client_status);
                return self.hold(run, publication, &l, &reason).await;
            }
            if l.account_status != "active" {
                drop(fence);
                let reason = if l.account_status == "needs_reconnect" {
                    "the account needs reconnecting".to_owned()
                } else {
                    format!("the account is {}", l.account_status)
                };
                return self.hold(run, publication, &l, &reason).await;
            }
            if headroom.is_none_or(|h| h > margin) {
                // nothing stood in the way but the row changed meanwhile: another run has it
                return Ok(Outcome::Done);
            }
            match self
                .start_near_quota(run, publication, &l, attempt, &marker)
                .await?
            {
                Ok(true) => {}
                Ok(false) => return Ok(Outcome::Done),
                Err(wait) => {
                    return Ok(Outcome::Postpone {
                        delay: wait,
                        reason: format!("the account's {} quota is used up", l.platform),
                    });
                }
            }
        }

        let row = l.account.to_string();
        let token = self.vault.decrypt_string(
            &l.access_ct,
            &Aad {
                table: "social_accounts",
                column: "access_token_ct",
                agency: Some(l.agency),
                row: &row,
            },
        )?;
        let request = match self.request(&l, &marker) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .failed(publication, &l, attempt, "publish", e, None, job)
                    .await;
            }
        };

        // an earlier attempt may have reached the platform: ask before posting again
        if let Some(started) = l.earlier_attempt {
            let t0 = Instant::now();
            let found = connector
                .find_by_marker(&token, &request, started - RECONCILE_MARGIN)
                .await;
            let latency = t0.elapsed();
            match found {
                Ok(Lookup::Found(p)) => {
                    drop(fence);
                    self.record_published(publication, &l, attempt, &p, "reconcile", latency)
                        .await?;
                    return Ok(Outcome::Done);
                }
                Ok(Lookup::NotFound) => {
                    let mut conn = self.pool.acquire().await?;
                    log(
                        &mut conn,
                        l.agency,
                        publication,
                        attempt,
                        LogRow {
                            action: "reconcile",
                            outcome: "not_found",
                            request_id: None,
                            status_code: Some(200),
                            latency: Some(latency),
                            error: None,
                        },
                    )
                    .await?;
                }
                Ok(Lookup::Unknowable(reason)) => {
                    drop(fence);
                    return self
                        .needs_attention(publication, &l, attempt, &format!("an earlier attempt may have posted it, and the platform cannot tell: {reason}"), latency)
                        .await;
                }
                Err(e) => {
                    drop(fence);
                    return self
                        .failed(publication, &l, attempt, "reconcile", e, Some(latency), job)
                        .await;
                }
            }
        }

        let t0 = Instant::now();
        let result = connector.publish(&token, &request, &fence).await;
        let latency = t0.elapsed();
        drop(fence);
        match result {
            Ok(p) => {
                self.record_published(publication, &l, attempt, &p, "publish", latency)
                    .await?;
                Ok(Outcome::Done)
            }
            Err(e) => {
                self.failed(publication, &l, attempt, "publish", e, Some(latency), job)
                    .await
            }
        }
    }

    async fn needs_attention(
        &self,
        publication: Uuid,
        l: &Loaded,
        attempt: Uuid,
        why: &str,
        latency: Duration,
    ) -> anyhow::Result<Outcome> {
        let mut tx = self.pool.begin().await?;
        items::needs_attention(&mut tx, publication, attempt, why).await?;
        log(
            &mut tx,
            l.agency,
            publication,
            attempt,
            LogRow {
                action: "reconcile",
                outcome: "unknown",
                request_id: None,
                status_code: None,
                latency: Some(latency),
                error: Some(why),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome::Done)
    }

    /// The fence kept the post (or a step of it) from leaving. Lost lease: the job is someone
    /// else's, so nothing is written. A switch or a limit: back to `scheduled` if this attempt
    /// still holds the publication (anything of it that did reach the platform, such as an
    /// unpublished container, is not a post; the next run reconciles first anyway, the attempt
    /// id being set), then held or postponed.
    async fn not_sent(
        &self,
        publication: Uuid,
        l: &Loaded,
        attempt: Uuid,
        why: NotSent,
    ) -> anyhow::Result<Outcome> {
        let (outcome, reason) = match why {
            NotSent::LeaseLost(reason) => return Ok(Outcome::LeaseLost(reason)),
            NotSent::Switched(reason) => (Outcome::Hold(reason.clone()), reason),
            NotSent::Later { after, reason } => (
                Outcome::Postpone {
                    delay: after,
                    reason: reason.clone(),
                },
                reason,
            ),
        };
        let mut tx = self.pool.begin().await?;
        if items::back_to_scheduled(&mut *tx, publication, attempt, Some(&reason)).await? {
            log(
                &mut tx,
                l.agency,
                publication,
                attempt,
                LogRow {
                    action: "publish",
                    outcome: if matches!(outcome, Outcome::Hold(_)) {
                        "held"
                    } else {
                        "rate_limited"
                    },
                    request_id: None,
                    status_code: None,
                    latency: None,
                    error: Some(&reason),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// A platform call that did not succeed.
    #[allow(clippy::too_many_arguments)]
    async fn failed(
        &self,
        publication: Uuid,
        l: &Loaded,
        attempt: Uuid,
        action: &str,
        e: PlatformError,
        latency: Option<Duration>,
        job: &JobContext,
    ) -> anyhow::Result<Outcome> {
        if let PlatformError::NotSent(why) = e {
            return self.not_sent(publication, l, attempt, why).await;
        }
        let (outcome, status_code) = status_of(&e);
        let message = e.to_string();
        let mut tx = self.pool.begin().await?;
        log(
            &mut tx,
            l.agency,
            publication,
            attempt,
            LogRow {
                action,
                outcome,
                request_id: None,
                status_code,
                latency,
                error: Some(&message),
            },
        )
        .await?;
        let result = match e {
            // the request may have reached the platform (lost answer, timeout): stay
            // `publishing`, so the next run asks first
            PlatformError::Transient(_) => {
                if job.job.attempt >= job.job.max_attempts {
                    let why = format!(
                        "gave up after {} attempts; the platform may or may not have the post: {message}",
                        job.job.attempt
                    );
                    items::needs_attention(&mut tx, publication, attempt, &why).await?;
                    Outcome::Done
                } else {
                    items::note_error(&mut *tx, publication, attempt, &message).await?;
                    Outcome::RetryIn {
                        delay: BACKOFF.delay(job.job.attempt),
                        reason: message,
                    }
                }
            }
            // refused before anything was posted: back to scheduled, not before the platform says
            PlatformError::RateLimited { retry_after, .. } => {
                items::back_to_scheduled(&mut *tx, publication, attempt, Some(&message)).await?;
                Outcome::Postpone {
                    delay: retry_after,
                    reason: message,
                }
            }
            PlatformError::Auth(_) | PlatformError::GrantRevoked(_) => {
                self.auth_failed(&mut tx, publication, l, attempt, &e)
                    .await?
            }
            PlatformError::NotSent(_) => unreachable!("handled before the transaction"),
            PlatformError::Permanent(_)
            | PlatformError::CodeRejected(_)
            | PlatformError::AppCredentials(_) => {
                let failed = items::fail(&mut tx, publication, attempt, &message).await?;
                if !failed {
                    // another attempt holds it now: what it does decides
                    tx.commit().await?;
                    return Ok(Outcome::Fail(message));
                }
                let policy = sqlx::query_scalar!(
                    "SELECT reschedule_policy FROM clients WHERE id = $1",
                    l.client
                )
                .fetch_one(&mut *tx)
                .await?;
                let refusals = sqlx::query_scalar!(
                    r#"SELECT count(*) AS "n!" FROM post_logs WHERE publication_id = $1 AND outcome = 'permanent'"#,
                    publication
                )
                .fetch_one(&mut *tx)
                .await?;
                // the client's policy moves a refused post to the next free slot, once
                if policy == "next_free_slot" && refusals <= 1 {
                    let at = next_free_slot(&mut tx, l.account).await?;
                    let by_policy = Actor::system("reschedule policy: next free slot");
                    match items::reschedule(&mut tx, &by_policy, l.agency, publication, at).await {
                        Ok(()) | Err(Failure::Refused(_)) => {}
                        Err(Failure::Database(e)) => return Err(e.into()),
                    }
                } else {
                    crate::items::roll_up(&mut *tx, l.item).await?;
                }
                Outcome::Fail(message)
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    /// The token was refused. The first time, refresh it (through the account's single-flight
    /// refresh job, pulled forward to now) and retry; when it is refused again after a refresh
    /// (or the grant is gone), the account needs reconnecting and its pending publications are
    /// held until it is.
    async fn auth_failed(
        &self,
        tx: &mut PgConnection,
        publication: Uuid,
        l: &Loaded,
        attempt: Uuid,
        e: &PlatformError,
    ) -> anyhow::Result<Outcome> {
        let refreshed_since_first_refusal = sqlx::query_scalar!(
            r#"SELECT EXISTS (
                   SELECT 1 FROM post_logs g JOIN social_accounts a ON a.id = $2
                   WHERE g.publication_id = $1 AND g.outcome = 'auth' AND a.last_refreshed_at > g.created_at
               ) AS "x!""#,
            publication,
            l.account
        )
        .fetch_one(&mut *tx)
        .await?;
        let has_refresh = sqlx::query_scalar!(
            r#"SELECT refresh_token_ct IS NOT NULL AS "x!" FROM social_accounts WHERE id = $1"#,
            l.account
        )
        .fetch_one(&mut *tx)
        .await?;
        if matches!(e, PlatformError::GrantRevoked(_))
            || refreshed_since_first_refusal
            || !has_refresh
        {
            let reason = format!("The platform refused the account's token: {e}");
            let marked = sqlx::query!(
                "UPDATE social_accounts SET status = 'needs_reconnect', status_reason = left($2, 2000), updated_at = now()
                 WHERE id = $1 AND status = 'active'",
                l.account,
                reason
            )
            .execute(&mut *tx)
            .await?;
            if marked.rows_affected() > 0 {
                crate::accounts::tell_needs_reconnecting(
                    tx, l.agency, l.client, l.account, l.platform, &reason,
                )
                .await?;
            }
            items::hold_for_reconnect(&mut *tx, l.account, publication, attempt).await?;
            return Ok(Outcome::Done);
        }
        // not posted: back to scheduled, and the refresh job runs now (single flight)
        items::back_to_scheduled(&mut *tx, publication, attempt, None).await?;
        let job =
            crate::tokens::refresh_job(l.agency, l.client, l.account, l.platform, Duration::ZERO);
        if let queue::Enqueued::AlreadyThere(id) = queue::enqueue(tx, &job).await? {
            queue::set_run_at(&mut *tx, id, RunAt::Now).await?;
        }
        Ok(Outcome::RetryIn {
            delay: Duration::from_secs(3),
            reason: format!("token refused, refreshing it first: {e}"),
        })
    }
}
