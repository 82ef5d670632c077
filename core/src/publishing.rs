//! Publishing: approval turns a content item into one publication per target account (with a
//! frozen snapshot of what will be posted) and one `publish` job at the scheduled instant; the
//! publish handler posts it exactly once as the platform sees it.
//!
//! Exactly once: a publication moves `scheduled → publishing → published | failed | cancelled`
//! (or `held` while its account or client cannot post, `needs_attention` when nobody can know).
//! The attempt id and the marker are written in the transaction that moves it to `publishing`,
//! before the platform is called. A run that finds an earlier attempt (`attempt_id` set: a
//! crash, a lost answer, an expired lease, a transient failure) first asks the platform whether
//! the post exists ([`Connector::find_by_marker`]): found → record it; not found → publish;
//! unknowable → `needs_attention` for a person, never a guess.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use url::Url;
use uuid::Uuid;

use crate::batch::Batcher;
use crate::domain::Platform;
use crate::fence::{JobFence, Smoothing};
use crate::limits::{self, Grant, Rate, Smoother};
use crate::platforms::{
    self, AccountRef, Lookup, MediaRef, NotSent, PlatformError, PlatformsConfig, PostRequest,
    Published,
};
use crate::queue::runner::{Backoff, JobContext, Outcome};
use crate::queue::{self, NewJob, RunAt, Scope};
use crate::vault::{Aad, Vault};

pub const KIND: &str = "publish";

/// How many times a publication's job runs before a person has to look at it.
pub const MAX_ATTEMPTS: i32 = 8;

const BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(2),
    cap: Duration::from_secs(300),
};

/// How far before an earlier attempt's start reconciliation looks for its post (clock skew
/// between us and the platform).
const RECONCILE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

pub fn unique_key(publication: Uuid) -> String {
    format!("publish:{publication}")
}

/// Short-window smoothing per account as the platform counts it, by the posts' arrival (the
/// platforms' daily and hourly quotas are enforced exactly from Postgres by
/// [`limits::quota_wait`]; this keeps bursts polite). Grants come from [`bucket`].
pub fn smoothing(platform: Platform) -> Rate {
    match platform {
        Platform::Sandbox => Rate::per(1, Duration::from_secs(1)).with_burst(5),
        Platform::X => Rate::per(1, Duration::from_secs(20)).with_burst(3),
        Platform::Instagram => Rate::per(1, Duration::from_secs(60)).with_burst(2),
        Platform::Tiktok => Rate::per(1, Duration::from_secs(60)).with_burst(1),
        Platform::Linkedin => Rate::per(1, Duration::from_secs(30)).with_burst(3),
        Platform::Facebook => Rate::per(1, Duration::from_secs(10)).with_burst(5),
    }
}

/// The bucket posts are granted from: [`smoothing`] with room for a post to arrive up to
/// [`limits::ARRIVAL_JITTER`] after its grant (the fence makes a post whose grant is older than
/// [`limits::GRANT_VALIDITY`] ask again).
pub fn bucket(platform: Platform) -> Rate {
    smoothing(platform).for_arrivals_within(limits::ARRIVAL_JITTER)
}

/// A post turned away by the smoothing with a slot held for it comes back at this priority,
/// ahead of the publish jobs due (50), and [`HELD_SLOT_LEAD`] early: its slot is charged at its
/// time and spent if it comes later than [`limits::GRANT_VALIDITY`] after it, so it waits for
/// the slot in the process rather than trust the queue's start lag.
pub const HELD_SLOT_PRIORITY: i16 = 40;
pub const HELD_SLOT_LEAD: Duration = Duration::from_millis(500);
/// A post waiting in the process for its slot takes its database connection this long before.
const HELD_SLOT_REACQUIRE: Duration = Duration::from_millis(50);

/// The smoothing bucket of an account.
pub fn smoothing_key(account: Uuid) -> String {
    format!("publish:acct:{account}")
}

/// A stored image in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMedia {
    /// Relative to the media directory (content-addressed).
    pub path: String,
    pub mime: String,
}

/// What will be posted, frozen at approval (and refreshed by edits before the post's time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub caption: String,
    pub hashtags: Vec<String>,
    pub cta: Option<String>,
    pub link_url: Option<String>,
    pub media: Vec<SnapshotMedia>,
    /// The full text as posted.
    pub text: String,
}

/// The text as it appears on the platform: the caption, the call to action unless the caption
/// already carries it, then the hashtags (each with one `#`).
pub fn compose_text(caption: &str, cta: Option<&str>, hashtags: &[String]) -> String {
    let mut text = caption.trim().to_owned();
    let mut push_block = |block: &str| {
        if block.is_empty() {
            return;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(block);
    };
    if let Some(cta) = cta.map(str::trim)
        && !caption.contains(cta)
    {
        push_block(cta);
    }
    push_block(&crate::content::moderation::hashtag_line(hashtags));
    text
}

/// The card size label a platform prefers among an item's images.
fn preferred_media_label(platform: Platform) -> &'static str {
    match platform {
        Platform::Instagram | Platform::Sandbox => "instagram_square",
        Platform::Tiktok => "story",
        Platform::X => "x",
        Platform::Linkedin => "linkedin",
        Platform::Facebook => "facebook",
    }
}

/// Why an item cannot be approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    #[error("no such item")]
    NotFound,
    #[error("the item is {0}; only items pending review can be approved")]
    WrongState(String),
    #[error("moderation blocked this item; edit it first")]
    Blocked,
    #[error("the item has no target accounts")]
    NoTargets,
    #[error("no such variant: {0}")]
    NoVariant(String),
}

/// Approve an item (optionally choosing a variant) and schedule its publications, in the
/// caller's transaction. Returns how many publications were scheduled.
pub async fn approve(
    conn: &mut PgConnection,
    agency: Uuid,
    item: Uuid,
    by: Option<Uuid>,
    variant: Option<&str>,
) -> Result<usize, ApproveFailure> {
    let Some(row) = sqlx::query!(
        "SELECT state, moderation_status FROM content_items WHERE id = $1 AND agency_id = $2 FOR UPDATE",
        item,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Err(ApproveError::NotFound.into());
    };
    if row.state != "pending_review" {
        return Err(ApproveError::WrongState(row.state).into());
    }
    if let Some(kind) = variant {
        let chosen = sqlx::query!(
            "UPDATE content_items i SET chosen_variant = v.kind, caption = v.caption, hashtags = v.hashtags, cta = v.cta,
                    moderation_status = v.moderation_status, moderation = v.moderation, updated_at = now()
             FROM content_variants v
             WHERE i.id = $1 AND v.item_id = i.id AND v.kind = $2
             RETURNING i.moderation_status",
            item,
            kind
        )
        .fetch_optional(&mut *conn)
        .await?;
        match chosen {
            None => return Err(ApproveError::NoVariant(kind.to_owned()).into()),
            Some(c) if c.moderation_status == "blocked" => {
                return Err(ApproveError::Blocked.into());
            }
            Some(_) => {}
        }
    } else if row.moderation_status == "blocked" {
        return Err(ApproveError::Blocked.into());
    }
    sqlx::query!(
        "UPDATE content_items SET state = 'approved', approved_by = $2, approved_at = now(), updated_at = now() WHERE id = $1",
        item,
        by
    )
    .execute(&mut *conn)
    .await?;
    let n = schedule(conn, agency, item).await?;
    if n == 0 {
        return Err(ApproveError::NoTargets.into());
    }
    Ok(n)
}

/// An approval refused for a reason a person can act on, or a database failure.
#[derive(Debug, thiserror::Error)]
pub enum ApproveFailure {
    #[error(transparent)]
    Refused(#[from] ApproveError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// (Re)build the publications of an approved item from its current content and schedule their
/// jobs: new targets get a publication, scheduled or held ones get the new snapshot and time
/// (an edit before the post's time), anything already publishing or done is left alone.
pub async fn schedule(conn: &mut PgConnection, agency: Uuid, item: Uuid) -> sqlx::Result<usize> {
    let Some(it) = sqlx::query!(
        "SELECT client_id, caption, hashtags, cta, link_url, slot_at FROM content_items WHERE id = $1 AND agency_id = $2",
        item,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(0);
    };
    let targets = sqlx::query!(
        r#"SELECT a.id, a.platform AS "platform: Platform" FROM content_item_targets t
           JOIN social_accounts a ON a.id = t.account_id
           WHERE t.item_id = $1 AND t.agency_id = $2 ORDER BY a.id"#,
        item,
        agency
    )
    .fetch_all(&mut *conn)
    .await?;
    let media = sqlx::query!(
        "SELECT m.size_label, a.path, a.mime FROM content_item_media m JOIN media_assets a ON a.id = m.media_id
         WHERE m.item_id = $1 AND m.agency_id = $2 ORDER BY m.size_label",
        item,
        agency
    )
    .fetch_all(&mut *conn)
    .await?;
    let text = compose_text(&it.caption, it.cta.as_deref(), &it.hashtags);
    let mut scheduled = 0;
    for t in &targets {
        let image = media
            .iter()
            .find(|m| m.size_label == preferred_media_label(t.platform))
            .or(media.first());
        let snapshot = Snapshot {
            caption: it.caption.clone(),
            hashtags: it.hashtags.clone(),
            cta: it.cta.clone(),
            link_url: it.link_url.clone(),
            media: image
                .map(|m| SnapshotMedia {
                    path: m.path.clone(),
                    mime: m.mime.clone(),
                })
                .into_iter()
                .collect(),
            text: text.clone(),
        };
        let snapshot = serde_json::to_value(&snapshot).expect("a snapshot serializes");
        let row = sqlx::query!(
            r#"INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, scheduled_at, snapshot)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (item_id, account_id) DO UPDATE SET snapshot = EXCLUDED.snapshot, scheduled_at = EXCLUDED.scheduled_at,
                   state = CASE WHEN publications.state = 'cancelled' THEN 'scheduled' ELSE publications.state END,
                   updated_at = now()
               WHERE publications.state IN ('scheduled', 'held', 'cancelled')
               RETURNING id, scheduled_at, state"#,
            Uuid::now_v7(),
            agency,
            it.client_id,
            item,
            t.id,
            t.platform.as_str(),
            it.slot_at,
            snapshot
        )
        .fetch_optional(&mut *conn)
        .await?;
        let Some(p) = row else { continue };
        scheduled += 1;
        if p.state == "held" {
            continue;
        }
        let job = publish_job(agency, it.client_id, t.id, t.platform, p.id, p.scheduled_at);
        if let queue::Enqueued::AlreadyThere(id) = queue::enqueue(conn, &job).await? {
            sqlx::query!(
                "UPDATE jobs SET run_at = $2 WHERE id = $1 AND state = 'available'",
                id,
                p.scheduled_at
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(scheduled)
}

/// The publish job of a publication.
pub fn publish_job(
    agency: Uuid,
    client: Uuid,
    account: Uuid,
    platform: Platform,
    publication: Uuid,
    at: DateTime<Utc>,
) -> NewJob {
    NewJob::new(KIND, json!({ "publication_id": publication }))
        .unique(unique_key(publication))
        .run_at(RunAt::At(at))
        .max_attempts(MAX_ATTEMPTS)
        .priority(50)
        .scope(Scope {
            agency_id: Some(agency),
            client_id: Some(client),
            account_id: Some(account),
            platform: Some(platform),
        })
}

/// Cancel an item: its publications that have not started are cancelled with their jobs.
/// Returns how many publications were cancelled.
pub async fn cancel_item(conn: &mut PgConnection, agency: Uuid, item: Uuid) -> sqlx::Result<u64> {
    let cancelled = sqlx::query_scalar!(
        "UPDATE publications SET state = 'cancelled', updated_at = now()
         WHERE item_id = $1 AND agency_id = $2 AND state IN ('scheduled', 'held') RETURNING id",
        item,
        agency
    )
    .fetch_all(&mut *conn)
    .await?;
    let keys: Vec<String> = cancelled.iter().map(|id| unique_key(*id)).collect();
    sqlx::query!(
        "UPDATE jobs SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
                finished_at = CASE WHEN state = 'running' THEN finished_at ELSE now() END,
                cancel_requested = (state = 'running')
         WHERE kind = $1 AND unique_key = ANY($2) AND state IN ('available', 'held', 'running')",
        KIND,
        &keys
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE content_items SET state = 'cancelled', updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND NOT EXISTS (
             SELECT 1 FROM publications WHERE item_id = $1 AND state IN ('publishing', 'published'))",
        item,
        agency
    )
    .execute(&mut *conn)
    .await?;
    Ok(cancelled.len() as u64)
}

/// Put an account's (or a client's) held publications back on schedule: after a reconnect,
/// or when a paused client or account resumes. Past-due ones go now.
pub async fn release_held(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Option<Uuid>,
    account: Option<Uuid>,
) -> sqlx::Result<u64> {
    let released = sqlx::query!(
        r#"UPDATE publications SET state = 'scheduled', held_reason = NULL, updated_at = now()
           WHERE agency_id = $1 AND state = 'held'
             AND ($2::uuid IS NULL OR client_id = $2) AND ($3::uuid IS NULL OR account_id = $3)
           RETURNING id, client_id, account_id, platform AS "platform: Platform", greatest(scheduled_at, now()) AS "at!""#,
        agency,
        client,
        account
    )
    .fetch_all(&mut *conn)
    .await?;
    let jobs: Vec<NewJob> = released
        .iter()
        .map(|p| publish_job(agency, p.client_id, p.account_id, p.platform, p.id, p.at))
        .collect();
    if !jobs.is_empty() {
        queue::enqueue_many(conn, &jobs).await?;
    }
    Ok(released.len() as u64)
}

/// Put a failed (or needs-attention, or cancelled) publication back on schedule at `at`, by
/// hand from the console or by the client's policy. Every earlier attempt stays in the post log.
pub async fn reschedule(
    conn: &mut PgConnection,
    agency: Uuid,
    publication: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let Some(p) = sqlx::query!(
        r#"UPDATE publications SET state = 'scheduled', scheduled_at = $3, last_error = NULL, updated_at = now()
           WHERE id = $1 AND agency_id = $2 AND state IN ('failed', 'needs_attention', 'cancelled')
           RETURNING client_id, account_id, item_id, platform AS "platform: Platform""#,
        publication,
        agency,
        at
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(false);
    };
    sqlx::query!(
        "UPDATE content_items SET state = 'approved', updated_at = now() WHERE id = $1 AND state IN ('failed', 'partially_published', 'cancelled')",
        p.item_id
    )
    .execute(&mut *conn)
    .await?;
    queue::enqueue(
        conn,
        &publish_job(
            agency,
            p.client_id,
            p.account_id,
            p.platform,
            publication,
            at,
        ),
    )
    .await?;
    Ok(true)
}

/// The next free slot for an account: on the hour, at least an hour from now, with no other
/// publication of the account within an hour of it (looks two days ahead).
pub async fn next_free_slot(conn: &mut PgConnection, account: Uuid) -> sqlx::Result<DateTime<Utc>> {
    let at = sqlx::query_scalar!(
        r#"SELECT s AS "s!" FROM generate_series(date_trunc('hour', now()) + interval '1 hour', now() + interval '2 days', interval '1 hour') s
           WHERE s >= now() + interval '1 hour' AND NOT EXISTS (
               SELECT 1 FROM publications p WHERE p.account_id = $1
                 AND p.state IN ('scheduled', 'held', 'publishing', 'published')
                 AND coalesce(p.published_at, p.scheduled_at) BETWEEN s - interval '59 minutes' AND s + interval '59 minutes')
           ORDER BY s LIMIT 1"#,
        account
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(at.unwrap_or_else(|| Utc::now() + chrono::TimeDelta::days(2)))
}

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
    records: Arc<Batcher<Record, bool>>,
}

/// A publication as [`Publisher::start`] found it, and whether it moved it to `publishing`.
struct Started {
    moved: bool,
    /// Whether the job's lease was still this run's when the statement ran.
    lease_held: bool,
    headroom: Option<i64>,
    loaded: Loaded,
}

struct Loaded {
    state: String,
    agency: Uuid,
    client: Uuid,
    account: Uuid,
    item: Uuid,
    platform: Platform,
    snapshot: Snapshot,
    marker: Option<String>,
    earlier_attempt: Option<DateTime<Utc>>,
    account_status: String,
    account_ref: AccountRef,
    access_ct: Vec<u8>,
    client_status: String,
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

/// Nobody can know whether the platform has the post: a person decides. Only the attempt that
/// holds the publication moves it (every write of a run names its attempt).
async fn to_needs_attention(
    conn: &mut PgConnection,
    publication: Uuid,
    attempt: Uuid,
    why: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE publications SET state = 'needs_attention', last_error = left($2, 4000), updated_at = now()
         WHERE id = $1 AND state = 'publishing' AND attempt_id = $3",
        publication,
        why,
        attempt
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A publication this attempt holds goes back to `scheduled` (nothing of this attempt reached
/// the platform as a post); returns whether it still held it.
async fn back_to_scheduled(
    conn: &mut PgConnection,
    publication: Uuid,
    attempt: Uuid,
    why: Option<&str>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE publications SET state = 'scheduled', last_error = coalesce(left($3, 4000), last_error), updated_at = now()
         WHERE id = $1 AND state = 'publishing' AND attempt_id = $2",
        publication,
        attempt,
        why
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// The roll-up of an item's state from its publications (`record_batch` repeats this rule
/// inside its one statement, counting the publication it records as published).
async fn roll_up(conn: &mut PgConnection, item: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE content_items i SET state = CASE
               WHEN s.open > 0 THEN i.state
               WHEN s.published = s.total AND s.total > 0 THEN 'published'
               WHEN s.published > 0 THEN 'partially_published'
               WHEN s.failed > 0 THEN 'failed'
               ELSE i.state END,
             updated_at = now()
           FROM (SELECT count(*) AS total,
                        count(*) FILTER (WHERE state = 'published') AS published,
                        count(*) FILTER (WHERE state = 'failed') AS failed,
                        count(*) FILTER (WHERE state IN ('scheduled', 'held', 'publishing', 'needs_attention')) AS open
                 FROM publications WHERE item_id = $1 AND state <> 'cancelled') s
           WHERE i.id = $1 AND i.state IN ('approved', 'partially_published', 'failed', 'published')"#,
        item
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

/// A post the platform has, to be recorded.
struct Record {
    publication: Uuid,
    attempt: Uuid,
    agency: Uuid,
    post_id: String,
    url: Option<String>,
    request_id: Option<String>,
    /// `publish`, or `reconcile` when an earlier attempt's post was found.
    action: String,
    latency_ms: i32,
}

/// How many posts one recording statement takes at most, and how many such statements a
/// process runs at once.
const RECORD_BATCH: usize = 200;
const RECORD_PARALLEL: usize = 4;

/// Record posts the platform has, in one statement: each publication published (if its attempt
/// still holds it), its post log row, and its item's roll-up (counting the publications of this
/// statement as published: a CTE's sibling sees the old rows). Committed without waiting for
/// the disk: it notifies the console (which serialises commits), and should the database lose
/// it in a crash, each publication is still `publishing` with its attempt, and its job (whose
/// completion is flushed later, in log order) runs again and finds the post by its marker.
/// Answers, for each record, whether its attempt still held the publication.
async fn record_batch(pool: PgPool, records: Vec<Record>) -> anyhow::Result<Vec<bool>> {
    let col = |f: fn(&Record) -> Uuid| records.iter().map(f).collect::<Vec<_>>();
    let (publications, attempts, agencies) = (
        col(|r| r.publication),
        col(|r| r.attempt),
        col(|r| r.agency),
    );
    let post_ids: Vec<&str> = records.iter().map(|r| r.post_id.as_str()).collect();
    let urls: Vec<Option<&str>> = records.iter().map(|r| r.url.as_deref()).collect();
    let request_ids: Vec<Option<&str>> = records.iter().map(|r| r.request_id.as_deref()).collect();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    let latencies: Vec<i32> = records.iter().map(|r| r.latency_ms).collect();
    let updated = sqlx::query_scalar!(
        r#"WITH r AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int4[])
                   AS r(publication, attempt, agency, post_id, url, request_id, action, latency_ms)),
           p AS (
               UPDATE publications pub SET state = 'published', platform_post_id = left(r.post_id, 300),
                      platform_post_url = left(r.url, 2000), published_at = now(), last_error = NULL,
                      held_reason = NULL, updated_at = now()
               FROM r
               WHERE pub.id = r.publication AND pub.attempt_id = r.attempt AND pub.state = 'publishing'
               RETURNING pub.id, pub.item_id),
           g AS (
               INSERT INTO post_logs (agency_id, publication_id, attempt_id, action, outcome, request_id, status_code, latency_ms)
               SELECT r.agency, r.publication, r.attempt, r.action,
                      CASE WHEN r.action = 'reconcile' THEN 'found' ELSE 'published' END,
                      left(r.request_id, 300), 200, r.latency_ms
               FROM r),
           s AS (
               SELECT pub.item_id, count(*) AS total,
                      count(*) FILTER (WHERE pub.state = 'published' OR pub.id IN (SELECT id FROM p)) AS published,
                      count(*) FILTER (WHERE pub.state IN ('scheduled', 'held', 'publishing', 'needs_attention')
                                         AND pub.id NOT IN (SELECT id FROM p)) AS open
               FROM publications pub
               WHERE pub.item_id IN (SELECT item_id FROM p) AND pub.state <> 'cancelled'
               GROUP BY pub.item_id),
           i AS (
               UPDATE content_items i SET state = CASE
                      WHEN s.open > 0 THEN i.state
                      WHEN s.published = s.total THEN 'published'
                      WHEN s.published > 0 THEN 'partially_published'
                      ELSE i.state END,
                    updated_at = now()
               FROM s
               WHERE i.id = s.item_id AND i.state IN ('approved', 'partially_published', 'failed', 'published'))
           SELECT id AS "id!" FROM p WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL"#,
        &publications,
        &attempts,
        &agencies,
        &post_ids as &[&str],
        &urls as &[Option<&str>],
        &request_ids as &[Option<&str>],
        &actions as &[&str],
        &latencies,
    )
    .fetch_all(&pool)
    .await?;
    let updated: std::collections::HashSet<Uuid> = updated.into_iter().collect();
    Ok(publications.iter().map(|p| updated.contains(p)).collect())
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
        let records = {
            let pool = pool.clone();
            Batcher::new(RECORD_BATCH, RECORD_PARALLEL, move |batch| {
                record_batch(pool.clone(), batch)
            })
        };
        Publisher {
            pool,
            vault,
            platforms,
            smoother,
            public_url,
            media_ttl,
            records: Arc::new(records),
        }
    }

    /// Read the publication with its account and client and, in the same statement, move it to
    /// `publishing` with a fresh attempt id and its marker when nothing stands in the way: the
    /// account is the job's, client and account are active, and the account is far from every
    /// quota of its platform (more headroom than `margin`). Far from every quota, concurrent
    /// posts of the account cannot overshoot, so no lock is needed; near one, the caller
    /// serialises on the account (see [`Publisher::run`]).
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        conn: &mut PgConnection,
        run: queue::Run,
        publication: Uuid,
        account: Uuid,
        attempt: Uuid,
        marker: &str,
        margin: i64,
    ) -> anyhow::Result<Option<Started>> {
        let Some(r) = sqlx::query!(
            r#"WITH cur AS (
                   SELECT p.state, p.agency_id, p.client_id, p.account_id, p.item_id, p.platform, p.snapshot,
                          p.marker, p.attempt_id, p.updated_at, job_lease_held($6, $7) AS lease_held,
                          a.status AS account_status, a.platform_account_id, a.account_kind, a.access_token_ct,
                          c.status AS client_status,
                          -- the fewest posts the account may still make in any quota window of its
                          -- platform (the agency's overrides first), counting what is going out now;
                          -- NULL when the platform has no quota
                          (SELECT min(coalesce(o.max_posts, l.max_posts) - (
                                      (SELECT count(*) FROM publications WHERE account_id = p.account_id AND state = 'publishing' AND id <> p.id)
                                    + (SELECT count(*) FROM publications WHERE account_id = p.account_id
                                         AND published_at > now() - make_interval(secs => l.window_seconds::float8))))
                           FROM platform_limits l
                           LEFT JOIN platform_limit_overrides o
                             ON o.agency_id = p.agency_id AND o.platform = l.platform AND o.window_seconds = l.window_seconds
                           WHERE l.platform = p.platform) AS headroom
                   FROM publications p
                   JOIN social_accounts a ON a.id = p.account_id
                   JOIN clients c ON c.id = p.client_id
                   WHERE p.id = $1),
               moved AS (
                   UPDATE publications p SET state = 'publishing', attempt_id = $3, attempts = p.attempts + 1,
                          marker = coalesce(p.marker, $4), held_reason = NULL, updated_at = now()
                   FROM cur
                   WHERE p.id = $1 AND p.state IN ('scheduled', 'publishing', 'held') AND cur.lease_held
                     AND cur.account_id = $2 AND cur.client_status = 'active' AND cur.account_status = 'active'
                     AND (cur.headroom IS NULL OR cur.headroom > $5)
                   RETURNING p.id)
               SELECT cur.state AS "state!", cur.agency_id AS "agency_id!", cur.client_id AS "client_id!",
                      cur.account_id AS "account_id!", cur.item_id AS "item_id!", cur.platform AS "platform!: Platform",
                      cur.snapshot AS "snapshot!", cur.marker, cur.attempt_id, cur.updated_at AS "updated_at!",
                      cur.account_status AS "account_status!", cur.platform_account_id AS "platform_account_id!",
                      cur.account_kind AS "account_kind!", cur.access_token_ct AS "access_token_ct!",
                      cur.client_status AS "client_status!", cur.headroom, cur.lease_held AS "lease_held!",
                      EXISTS (SELECT 1 FROM moved) AS "moved!"
               FROM cur"#,
            publication,
            account,
            attempt,
            marker,
            margin,
            run.0,
            run.1
        )
        .fetch_optional(conn)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(Started {
            moved: r.moved,
            lease_held: r.lease_held,
            headroom: r.headroom,
            loaded: Loaded {
                state: r.state,
                agency: r.agency_id,
                client: r.client_id,
                account: r.account_id,
                item: r.item_id,
                platform: r.platform,
                snapshot: serde_json::from_value(r.snapshot)?,
                marker: r.marker,
                earlier_attempt: r.attempt_id.map(|_| r.updated_at),
                account_status: r.account_status,
                account_ref: AccountRef {
                    platform_account_id: r.platform_account_id,
                    kind: r.account_kind,
                },
                access_ct: r.access_token_ct,
                client_status: r.client_status,
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
        let moved = sqlx::query!(
            "UPDATE publications SET state = 'publishing', attempt_id = $2, attempts = attempts + 1,
                    marker = coalesce(marker, $3), held_reason = NULL, updated_at = now()
             WHERE id = $1 AND state IN ('scheduled', 'publishing', 'held') AND job_lease_held($4, $5)",
            publication,
            attempt,
            marker,
            run.0,
            run.1
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(moved.rows_affected() > 0))
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
        let held = sqlx::query!(
            "UPDATE publications SET state = 'held', held_reason = $2, updated_at = now()
             WHERE id = $1 AND state IN ('scheduled', 'publishing') AND job_lease_held($3, $4)
             RETURNING attempt_id",
            publication,
            reason,
            run.0,
            run.1
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(h) = held {
            let attempt = h.attempt_id.unwrap_or_else(Uuid::now_v7);
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

    /// Record a post the platform has: published, with its log row, and the item's roll-up
    /// (in one statement with the other posts this process is recording right now).
    async fn record_published(
        &self,
        publication: Uuid,
        l: &Loaded,
        attempt: Uuid,
        p: &Published,
        action: &str,
        latency: Duration,
    ) -> anyhow::Result<()> {
        let updated = self
            .records
            .call(Record {
                publication,
                attempt,
                agency: l.agency,
                post_id: p.post_id.clone(),
                url: p.url.clone(),
                request_id: p.request_id.clone(),
                action: action.to_owned(),
                latency_ms: latency.as_millis().min(i32::MAX as u128) as i32,
            })
            .await?;
        if !updated {
            tracing::warn!(%publication, "published, but another attempt took the publication over meanwhile");
        }
        Ok(())
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
        // The account's posting rate. The platform sees the post when it arrives, so as little
        // as possible lies between the grant and the request: the connection for the move to
        // `publishing` is taken first (a busy pool is waited for before the grant, not after),
        // and the fence asks again if the grant is older than its validity when the post leaves.
        // One turned away holds the next free slot (its job id is the holder) and comes back
        // once, at that slot, ahead of the posts due.
        let mut conn = self.pool.acquire().await?;
        let smoothing = Smoothing {
            smoother: &self.smoother,
            key: smoothing_key(account),
            rate: bucket(platform),
            holder: job.job.id.to_string(),
        };
        let mut asked = Instant::now();
        let mut answer = smoothing
            .smoother
            .reserve(&smoothing.key, smoothing.rate, &smoothing.holder)
            .await;
        // a slot held for this post and due soon: wait for it here (the connection let go
        // until just before), so the queue's start lag cannot make the post late for it
        for _ in 0..3 {
            let Grant::Reserved(delay) = answer else {
                break;
            };
            if delay > HELD_SLOT_LEAD {
                break;
            }
            if delay > HELD_SLOT_REACQUIRE {
                drop(conn);
                tokio::time::sleep(delay - HELD_SLOT_REACQUIRE).await;
                conn = self.pool.acquire().await?;
            } else {
                tokio::time::sleep(delay).await;
            }
            asked = Instant::now();
            answer = smoothing
                .smoother
                .reserve(&smoothing.key, smoothing.rate, &smoothing.holder)
                .await;
        }
        let age = match answer {
            Grant::Now { age } => age,
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
            .smoothed(smoothing, Some((asked, age)));

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
            .start(
                &mut conn,
                run,
                publication,
                account,
                attempt,
                &fresh_marker,
                margin,
            )
            .await?
        else {
            return Ok(Outcome::Done);
        };
        drop(conn);
        if !lease_held {
            return Ok(Outcome::LeaseLost(
                "the job was taken over before its post started".into(),
            ));
        }
        let marker = l.marker.clone().unwrap_or(fresh_marker);
        if !moved {
            if !matches!(l.state.as_str(), "scheduled" | "publishing" | "held") {
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
        to_needs_attention(&mut tx, publication, attempt, why).await?;
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
        if back_to_scheduled(&mut tx, publication, attempt, Some(&reason)).await? {
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
                    to_needs_attention(&mut tx, publication, attempt, &why).await?;
                    Outcome::Done
                } else {
                    sqlx::query!(
                        "UPDATE publications SET last_error = left($2, 4000), updated_at = updated_at
                         WHERE id = $1 AND attempt_id = $3",
                        publication,
                        message,
                        attempt
                    )
                    .execute(&mut *tx)
                    .await?;
                    Outcome::RetryIn {
                        delay: BACKOFF.delay(job.job.attempt),
                        reason: message,
                    }
                }
            }
            // refused before anything was posted: back to scheduled, not before the platform says
            PlatformError::RateLimited { retry_after, .. } => {
                back_to_scheduled(&mut tx, publication, attempt, Some(&message)).await?;
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
                let failed = sqlx::query!(
                    "UPDATE publications SET state = 'failed', last_error = left($2, 4000), updated_at = now()
                     WHERE id = $1 AND state = 'publishing' AND attempt_id = $3",
                    publication,
                    message,
                    attempt
                )
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
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
                    reschedule(&mut tx, l.agency, publication, at).await?;
                } else {
                    roll_up(&mut tx, l.item).await?;
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
            sqlx::query!(
                "UPDATE social_accounts SET status = 'needs_reconnect', status_reason = left($2, 2000), updated_at = now()
                 WHERE id = $1 AND status = 'active'",
                l.account,
                reason
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "UPDATE publications SET state = 'held', held_reason = 'the account needs reconnecting', updated_at = now()
                 WHERE account_id = $1 AND state IN ('scheduled', 'publishing')
                   AND ((id = $2 AND attempt_id = $3) OR (id <> $2 AND state = 'scheduled'))",
                l.account,
                publication,
                attempt
            )
            .execute(&mut *tx)
            .await?;
            return Ok(Outcome::Done);
        }
        // not posted: back to scheduled, and the refresh job runs now (single flight)
        back_to_scheduled(tx, publication, attempt, None).await?;
        let job =
            crate::tokens::refresh_job(l.agency, l.client, l.account, l.platform, Duration::ZERO);
        if let queue::Enqueued::AlreadyThere(id) = queue::enqueue(tx, &job).await? {
            sqlx::query!(
                "UPDATE jobs SET run_at = now() WHERE id = $1 AND state = 'available'",
                id
            )
            .execute(&mut *tx)
            .await?;
        }
        Ok(Outcome::RetryIn {
            delay: Duration::from_secs(3),
            reason: format!("token refused, refreshing it first: {e}"),
        })
    }
}

/// How often published posts are measured, and for how long after publishing.
pub const METRICS_EVERY: Duration = Duration::from_secs(1800);
const METRICS_WINDOW_DAYS: i32 = 14;
const METRICS_BATCH: i64 = 200;

/// Measure recently published posts: one `metrics` row per post and run, oldest measurement
/// first, a batch per run. Platform errors skip the post until the next run (rate limits and
/// expired tokens are the refresh job's and the next run's business); a kill switch over a
/// post's scope skips it too. Each read goes through the run's fence (`lease`: `None` outside a
/// job): a run that lost its lease stops. Returns how many posts were measured.
pub async fn sync_metrics(
    p: &Publisher,
    gate: &crate::killswitch::Gate,
    lease: Option<&crate::queue::lease::Lease>,
) -> anyhow::Result<usize> {
    let due = sqlx::query!(
        r#"SELECT p.id, p.agency_id, p.client_id, p.account_id, p.platform AS "platform: Platform", p.platform_post_id AS "post_id!",
                  a.platform_account_id, a.account_kind, a.access_token_ct
           FROM publications p JOIN social_accounts a ON a.id = p.account_id
           WHERE p.state = 'published' AND p.published_at > now() - make_interval(days => $1)
             AND a.status = 'active'
           ORDER BY (SELECT max(m.collected_at) FROM metrics m WHERE m.publication_id = p.id) NULLS FIRST
           LIMIT $2"#,
        METRICS_WINDOW_DAYS,
        METRICS_BATCH
    )
    .fetch_all(&p.pool)
    .await?;
    let mut measured = 0;
    for d in due {
        let Some(connector) = platforms::connector(d.platform, &p.platforms) else {
            continue;
        };
        let scope = Scope {
            agency_id: Some(d.agency_id),
            client_id: Some(d.client_id),
            account_id: Some(d.account_id),
            platform: Some(d.platform),
        };
        let fence = JobFence::new(lease, gate, scope, None);
        match platforms::Fence::check(&fence).await {
            Ok(()) => {}
            Err(PlatformError::NotSent(NotSent::LeaseLost(why))) => {
                tracing::warn!(reason = %why, measured, "metrics run stopped: lease lost");
                return Ok(measured);
            }
            Err(_) => continue,
        }
        let row = d.account_id.to_string();
        let token = p.vault.decrypt_string(
            &d.access_token_ct,
            &Aad {
                table: "social_accounts",
                column: "access_token_ct",
                agency: Some(d.agency_id),
                row: &row,
            },
        )?;
        let account = AccountRef {
            platform_account_id: d.platform_account_id,
            kind: d.account_kind,
        };
        let result = connector.metrics(&token, &account, &d.post_id).await;
        drop(fence);
        match result {
            Ok(m) => {
                let nonneg = |v: Option<i64>| v.map(|x| x.max(0));
                sqlx::query!(
                    "INSERT INTO metrics (publication_id, agency_id, likes, comments, shares, views, reach, impressions, raw)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    d.id,
                    d.agency_id,
                    nonneg(m.likes),
                    nonneg(m.comments),
                    nonneg(m.shares),
                    nonneg(m.views),
                    nonneg(m.reach),
                    nonneg(m.impressions),
                    json!({ "clicks": m.clicks })
                )
                .execute(&p.pool)
                .await?;
                measured += 1;
            }
            Err(e) => {
                tracing::info!(publication = %d.id, error = %e, "metrics not read this time");
            }
        }
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_joins_caption_cta_and_hashtags_once() {
        let tags = vec!["#spring".to_owned(), "sale".to_owned(), " ".to_owned()];
        assert_eq!(
            compose_text("New in store.", Some("Shop now"), &tags),
            "New in store.\n\nShop now\n\n#spring #sale"
        );
        assert_eq!(
            compose_text("Shop now: new in store.", Some("Shop now"), &[]),
            "Shop now: new in store."
        );
        assert_eq!(compose_text("", None, &tags), "#spring #sale");
    }
}
