//! The publication's moves (the table is in the module docs of [`crate::items`]).

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::{Failure, PublicationMove, Refusal, item};
use crate::audit::{self, Actor, Entry};
use crate::domain::{Platform, PublicationState};
use crate::publishing::{self, Snapshot, SnapshotMedia, compose_text, publish_job, unique_key};
use crate::queue::{self, NewJob, RunAt};
use crate::webhooks::{self, EventType};

/// A publication as its webhook events describe it.
fn event_data(
    publication: Uuid,
    item: Uuid,
    client: Uuid,
    account: Uuid,
    platform: &str,
    message: &str,
) -> serde_json::Value {
    json!({
        "publication_id": publication,
        "item_id": item,
        "client_id": client,
        "account_id": account,
        "platform": platform,
        "error": message.chars().take(1000).collect::<String>(),
    })
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

/// `schedule`: (re)build the publications of an approved item from its current content and
/// schedule their jobs: new targets get a publication, scheduled or held ones get the new
/// snapshot and time (an edit before the post's time), cancelled ones are scheduled again,
/// anything already publishing or done is left alone. Returns how many were (re)scheduled.
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
    let from = PublicationMove::Schedule.allowed();
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
               WHERE publications.state = ANY($9)
               RETURNING id, scheduled_at, state AS "state: PublicationState""#,
            Uuid::now_v7(),
            agency,
            it.client_id,
            item,
            t.id,
            t.platform.as_str(),
            it.slot_at,
            snapshot,
            &from as &[&str]
        )
        .fetch_optional(&mut *conn)
        .await?;
        let Some(p) = row else { continue };
        scheduled += 1;
        if p.state == PublicationState::Held {
            continue;
        }
        let job = publish_job(agency, it.client_id, t.id, t.platform, p.id, p.scheduled_at);
        if let queue::Enqueued::AlreadyThere(id) = queue::enqueue(conn, &job).await? {
            queue::set_run_at(&mut *conn, id, RunAt::At(p.scheduled_at)).await?;
        }
    }
    Ok(scheduled)
}

/// `cancel`: an item's publications that have not started are cancelled with their jobs.
/// Returns how many.
pub async fn cancel_for_item(
    conn: &mut PgConnection,
    agency: Uuid,
    item: Uuid,
) -> sqlx::Result<u64> {
    let cancelled = sqlx::query_scalar!(
        "UPDATE publications SET state = 'cancelled', updated_at = now()
         WHERE item_id = $1 AND agency_id = $2 AND state = ANY($3) RETURNING id",
        item,
        agency,
        &PublicationMove::Cancel.allowed() as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    let keys: Vec<String> = cancelled.iter().map(|id| unique_key(*id)).collect();
    queue::cancel_by_keys(&mut *conn, publishing::KIND, &keys).await?;
    Ok(cancelled.len() as u64)
}

/// `hold_account`: every post of an account that waits to go out is held with `reason` and its
/// job cancelled (releasing it enqueues a new one). Returns the publications held.
pub async fn hold_account(
    conn: &mut PgConnection,
    agency: Uuid,
    account: Uuid,
    reason: &str,
) -> sqlx::Result<Vec<Uuid>> {
    let held = sqlx::query_scalar!(
        "UPDATE publications SET state = 'held', held_reason = $3, updated_at = now()
         WHERE account_id = $1 AND agency_id = $2 AND state = ANY($4) RETURNING id",
        account,
        agency,
        reason,
        &PublicationMove::HoldAccount.allowed() as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    let keys: Vec<String> = held.iter().map(|id| unique_key(*id)).collect();
    queue::cancel_by_keys(&mut *conn, publishing::KIND, &keys).await?;
    Ok(held)
}

/// `hold` and `hold_account` when the platform refused an account's token for good: the
/// publication this attempt holds and every other post of the account that waits are held
/// until it is reconnected (their jobs, when they run, find them held and leave them).
pub async fn hold_for_reconnect(
    conn: impl PgExecutor<'_>,
    account: Uuid,
    publication: Uuid,
    attempt: Uuid,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE publications SET state = 'held', held_reason = 'the account needs reconnecting', updated_at = now()
         WHERE account_id = $1 AND state = ANY($4)
           AND ((id = $2 AND attempt_id = $3) OR (id <> $2 AND state = ANY($5)))",
        account,
        publication,
        attempt,
        &PublicationMove::Hold.allowed() as &[&str],
        &PublicationMove::HoldAccount.allowed() as &[&str]
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// `hold`: the publish handler parks a publication until its account or client can post
/// again, while the job's lease is the run's. `None`: not held (moved on, or the lease is
/// gone); otherwise the attempt id it had, if any.
pub async fn hold(
    conn: impl PgExecutor<'_>,
    run: queue::Run,
    publication: Uuid,
    reason: &str,
) -> sqlx::Result<Option<Option<Uuid>>> {
    sqlx::query_scalar!(
        "UPDATE publications SET state = 'held', held_reason = $2, updated_at = now()
         WHERE id = $1 AND state = ANY($5) AND job_lease_held($3, $4)
         RETURNING attempt_id",
        publication,
        reason,
        run.0,
        run.1,
        &PublicationMove::Hold.allowed() as &[&str]
    )
    .fetch_optional(conn)
    .await
}

/// `release`: an account's (or a client's) held publications back on schedule, after a
/// reconnect or when a paused client or account resumes; past-due ones go now. Returns how
/// many.
pub async fn release_held(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Option<Uuid>,
    account: Option<Uuid>,
) -> sqlx::Result<u64> {
    let released = sqlx::query!(
        r#"UPDATE publications SET state = 'scheduled', held_reason = NULL, updated_at = now()
           WHERE agency_id = $1 AND state = ANY($4)
             AND ($2::uuid IS NULL OR client_id = $2) AND ($3::uuid IS NULL OR account_id = $3)
           RETURNING id, client_id, account_id, platform AS "platform: Platform", greatest(scheduled_at, now()) AS "at!""#,
        agency,
        client,
        account,
        &PublicationMove::Release.allowed() as &[&str]
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

/// A publication as [`start`] found it (before its move), with its account and client.
#[derive(Debug, Clone)]
pub struct Found {
    /// Whether the statement moved it to `publishing`.
    pub moved: bool,
    /// Whether the job's lease was still the run's when the statement ran.
    pub lease_held: bool,
    /// The fewest posts the account may still make in any quota window (`None`: no quota).
    pub headroom: Option<i64>,
    pub state: PublicationState,
    pub agency_id: Uuid,
    pub client_id: Uuid,
    pub account_id: Uuid,
    pub item_id: Uuid,
    pub platform: Platform,
    pub snapshot: serde_json::Value,
    pub marker: Option<String>,
    /// When an earlier attempt started, if one did.
    pub earlier_attempt: Option<DateTime<Utc>>,
    pub account_status: String,
    pub platform_account_id: String,
    pub account_kind: String,
    pub access_token_ct: Vec<u8>,
    pub client_status: String,
}

/// One run's request to [`start`] its publication.
#[derive(Debug, Clone)]
pub struct Start {
    pub run: queue::Run,
    pub publication: Uuid,
    /// The account the job is scoped to (the publication must be this account's).
    pub account: Uuid,
    /// The fresh attempt id to write.
    pub attempt: Uuid,
    /// The marker to write if the publication has none yet.
    pub marker: String,
    /// Move only with more quota headroom than this.
    pub margin: i64,
}

/// `start`, for many runs in one statement (and one durable commit): read each publication with
/// its account and client and, in the same statement, move it to `publishing` with its fresh
/// attempt id and its marker when nothing stands in the way: the run still holds its job's
/// lease, the account is the job's, client and account are active, and the account is far from
/// every quota of its platform (more headroom than `margin`). Far from every quota, concurrent
/// posts of the account cannot overshoot, so no lock is needed; near one, the caller serialises
/// on the account and uses [`start_locked`]. Answers each request in its place: `None` when
/// there is no such publication. Two runs of one job in a batch (a stale one and the one
/// holding the lease) each get their own answer; only the lease holder moves.
pub async fn start(
    conn: impl PgExecutor<'_>,
    starts: &[Start],
) -> sqlx::Result<Vec<Option<Found>>> {
    let publications: Vec<Uuid> = starts.iter().map(|s| s.publication).collect();
    let accounts: Vec<Uuid> = starts.iter().map(|s| s.account).collect();
    let attempts: Vec<Uuid> = starts.iter().map(|s| s.attempt).collect();
    let markers: Vec<&str> = starts.iter().map(|s| s.marker.as_str()).collect();
    let margins: Vec<i64> = starts.iter().map(|s| s.margin).collect();
    let jobs: Vec<i64> = starts.iter().map(|s| s.run.0).collect();
    let tokens: Vec<i64> = starts.iter().map(|s| s.run.1).collect();
    let rows = sqlx::query!(
        r#"WITH s AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int8[], $6::int8[], $7::int8[])
                   WITH ORDINALITY AS s(publication, account, attempt, marker, margin, job, token, n)),
           cur AS MATERIALIZED (
               SELECT s.n, s.publication, s.account AS wanted_account, s.attempt AS new_attempt, s.marker AS new_marker,
                      s.margin, p.state, p.agency_id, p.client_id, p.account_id, p.item_id, p.platform, p.snapshot,
                      p.marker, p.attempt_id, p.updated_at,
                      -- by the primary key alone (OFFSET 0), the lease checked on the row
                      EXISTS (SELECT 1 FROM (SELECT lease_token, state, locked_until FROM jobs WHERE id = s.job OFFSET 0) j
                              WHERE j.lease_token = s.token AND j.state = 'running' AND j.locked_until > now()) AS lease_held,
                      a.status AS account_status, a.platform_account_id, a.account_kind, a.access_token_ct,
                      c.status AS client_status,
                      -- the fewest posts the account may still make in any quota window of its
                      -- platform (the agency's overrides first), counting what is going out now;
                      -- NULL when the platform has no quota
                      (SELECT min(coalesce(o.max_posts, l.max_posts) - (
                                  ((SELECT count(*) FROM publications WHERE account_id = p.account_id AND state = 'publishing')
                                   - (p.state = 'publishing')::int)
                                + (SELECT count(*) FROM publications WHERE account_id = p.account_id
                                     AND published_at > now() - make_interval(secs => l.window_seconds::float8))))
                       FROM platform_limits l
                       LEFT JOIN platform_limit_overrides o
                         ON o.agency_id = p.agency_id AND o.platform = l.platform AND o.window_seconds = l.window_seconds
                       WHERE l.platform = p.platform) AS headroom
               FROM s
               JOIN publications p ON p.id = s.publication
               JOIN social_accounts a ON a.id = p.account_id
               JOIN clients c ON c.id = p.client_id),
           go AS MATERIALIZED (
               -- locked in id order, its state read again once locked
               SELECT x.id, cur.new_attempt, cur.new_marker
               FROM (SELECT * FROM cur
                     WHERE lease_held AND account_id = wanted_account AND client_status = 'active'
                       AND account_status = 'active' AND (headroom IS NULL OR headroom > margin)
                     ORDER BY publication) cur
               CROSS JOIN LATERAL (SELECT id, state FROM publications WHERE id = cur.publication OFFSET 0 FOR UPDATE) x
               WHERE x.state = ANY($8)),
           moved AS (
               UPDATE publications p SET state = 'publishing', attempt_id = go.new_attempt, attempts = p.attempts + 1,
                      marker = coalesce(p.marker, go.new_marker), held_reason = NULL, updated_at = now()
               FROM go
               WHERE p.id = go.id
               RETURNING p.id, p.attempt_id)
           SELECT cur.n AS "n!", cur.state AS "state!: PublicationState", cur.agency_id AS "agency_id!",
                  cur.client_id AS "client_id!", cur.account_id AS "account_id!", cur.item_id AS "item_id!",
                  cur.platform AS "platform!: Platform", cur.snapshot AS "snapshot!", cur.marker, cur.attempt_id,
                  cur.updated_at AS "updated_at!", cur.account_status AS "account_status!",
                  cur.platform_account_id AS "platform_account_id!", cur.account_kind AS "account_kind!",
                  cur.access_token_ct AS "access_token_ct!", cur.client_status AS "client_status!", cur.headroom,
                  cur.lease_held AS "lease_held!",
                  EXISTS (SELECT 1 FROM moved m WHERE m.id = cur.publication AND m.attempt_id = cur.new_attempt) AS "moved!"
           FROM cur"#,
        &publications,
        &accounts,
        &attempts,
        &markers as &[&str],
        &margins,
        &jobs,
        &tokens,
        &PublicationMove::Start.allowed() as &[&str]
    )
    .fetch_all(conn)
    .await?;
    let mut found: Vec<Option<Found>> = vec![None; starts.len()];
    for r in rows {
        let Some(slot) = usize::try_from(r.n - 1).ok().and_then(|i| found.get_mut(i)) else {
            continue;
        };
        *slot = Some(Found {
            moved: r.moved,
            lease_held: r.lease_held,
            headroom: r.headroom,
            state: r.state,
            agency_id: r.agency_id,
            client_id: r.client_id,
            account_id: r.account_id,
            item_id: r.item_id,
            platform: r.platform,
            snapshot: r.snapshot,
            marker: r.marker,
            earlier_attempt: r.attempt_id.map(|_| r.updated_at),
            account_status: r.account_status,
            platform_account_id: r.platform_account_id,
            account_kind: r.account_kind,
            access_token_ct: r.access_token_ct,
            client_status: r.client_status,
        });
    }
    Ok(found)
}

/// `start` near a quota, inside the caller's transaction that holds the account's row and has
/// checked the quotas exactly. Returns whether it moved.
pub async fn start_locked(
    conn: impl PgExecutor<'_>,
    run: queue::Run,
    publication: Uuid,
    attempt: Uuid,
    marker: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE publications SET state = 'publishing', attempt_id = $2, attempts = attempts + 1,
                marker = coalesce(marker, $3), held_reason = NULL, updated_at = now()
         WHERE id = $1 AND state = ANY($6) AND job_lease_held($4, $5)",
        publication,
        attempt,
        marker,
        run.0,
        run.1,
        &PublicationMove::Start.allowed() as &[&str]
    )
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// A post the platform has, to be recorded by [`published`].
#[derive(Debug, Clone)]
pub struct Post {
    pub publication: Uuid,
    pub attempt: Uuid,
    pub agency: Uuid,
    pub post_id: String,
    pub url: Option<String>,
    pub request_id: Option<String>,
    /// `publish`, or `reconcile` when an earlier attempt's post was found.
    pub action: String,
    pub latency_ms: i32,
}

/// `published`, for many posts in one statement: each publication published (if its attempt
/// still holds it), its post log row, and its item's `roll_up` (counting the publications of
/// this statement as published: a CTE's sibling sees the old rows). Committed without waiting
/// for the disk: should the database lose it in a crash, each publication is still
/// `publishing` with its attempt, and its job runs again and finds the post by its marker.
/// Answers, for each post, whether its attempt still held the publication.
pub async fn published(pool: &PgPool, posts: &[Post]) -> sqlx::Result<Vec<bool>> {
    let col = |f: fn(&Post) -> Uuid| posts.iter().map(f).collect::<Vec<_>>();
    let (publications, attempts, agencies) = (
        col(|r| r.publication),
        col(|r| r.attempt),
        col(|r| r.agency),
    );
    let post_ids: Vec<&str> = posts.iter().map(|r| r.post_id.as_str()).collect();
    let urls: Vec<Option<&str>> = posts.iter().map(|r| r.url.as_deref()).collect();
    let request_ids: Vec<Option<&str>> = posts.iter().map(|r| r.request_id.as_deref()).collect();
    let actions: Vec<&str> = posts.iter().map(|r| r.action.as_str()).collect();
    let latencies: Vec<i32> = posts.iter().map(|r| r.latency_ms).collect();
    let (hook_kind, hook_priority, hook_attempts) = webhooks::outbox::job_settings();
    let updated = sqlx::query_scalar!(
        r#"WITH r AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int4[])
                   AS r(publication, attempt, agency, post_id, url, request_id, action, latency_ms)),
           -- each by its primary key alone (OFFSET 0; not the partial index of posts going
           -- out, which a burst fills), locked in id order, its attempt and state checked on
           -- the locked row
           held AS MATERIALIZED (
               SELECT x.id FROM (SELECT * FROM r ORDER BY publication) r
               CROSS JOIN LATERAL (SELECT id, attempt_id, state FROM publications WHERE id = r.publication OFFSET 0 FOR UPDATE) x
               WHERE x.attempt_id = r.attempt AND x.state = ANY($9)),
           p AS (
               UPDATE publications pub SET state = 'published', platform_post_id = left(r.post_id, 300),
                      platform_post_url = left(r.url, 2000), published_at = now(), last_error = NULL,
                      held_reason = NULL, updated_at = now()
               FROM r
               WHERE pub.id = ANY(ARRAY(SELECT id FROM held)) AND pub.id = r.publication AND pub.attempt_id = r.attempt
               RETURNING pub.id, pub.item_id, pub.agency_id, pub.client_id, pub.account_id, pub.platform,
                         pub.platform_post_id, pub.platform_post_url, pub.published_at),
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
               WHERE i.id = s.item_id AND i.state = ANY($10)),
           -- the webhook outbox (see webhooks::outbox): for the posts of agencies with an
           -- endpoint that wants `publication.published` only, so one probe of the endpoints'
           -- index per agency of the batch and nothing written otherwise
           wh_e AS MATERIALIZED (
               SELECT e.id, e.agency_id FROM webhook_endpoints e
               WHERE e.agency_id IN (SELECT DISTINCT agency_id FROM p) AND e.disabled_at IS NULL
                 AND $11 = ANY(e.event_types)),
           wh_ev AS (
               INSERT INTO webhook_events (id, agency_id, event_type, data)
               SELECT gen_random_uuid(), p.agency_id, $11, jsonb_build_object(
                          'publication_id', p.id, 'item_id', p.item_id, 'client_id', p.client_id,
                          'account_id', p.account_id, 'platform', p.platform,
                          'platform_post_id', p.platform_post_id, 'platform_post_url', p.platform_post_url,
                          'published_at', p.published_at)
               FROM p WHERE p.agency_id IN (SELECT agency_id FROM wh_e)
               RETURNING id, agency_id),
           wh_d AS (
               INSERT INTO webhook_deliveries (id, agency_id, endpoint_id, event_id)
               SELECT gen_random_uuid(), wh_e.agency_id, wh_e.id, wh_ev.id FROM wh_e JOIN wh_ev ON wh_ev.agency_id = wh_e.agency_id
               RETURNING id, agency_id),
           wh_j AS (
               INSERT INTO jobs (kind, payload, priority, max_attempts, unique_key, agency_id)
               SELECT $12, jsonb_build_object('delivery_id', wh_d.id), $13, $14, 'webhook:' || wh_d.id, wh_d.agency_id FROM wh_d)
           SELECT id AS "id!" FROM p WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL"#,
        &publications,
        &attempts,
        &agencies,
        &post_ids as &[&str],
        &urls as &[Option<&str>],
        &request_ids as &[Option<&str>],
        &actions as &[&str],
        &latencies,
        &PublicationMove::Published.allowed() as &[&str],
        &super::ItemMove::RollUp.allowed() as &[&str],
        EventType::PublicationPublished.as_str(),
        hook_kind,
        hook_priority,
        hook_attempts,
    )
    .fetch_all(pool)
    .await?;
    let updated: std::collections::HashSet<Uuid> = updated.into_iter().collect();
    Ok(publications.iter().map(|p| updated.contains(p)).collect())
}

/// `needs_attention`: nobody can know whether the platform has the post, so a person decides.
/// Only the attempt that holds the publication moves it.
pub async fn needs_attention(
    conn: &mut PgConnection,
    publication: Uuid,
    attempt: Uuid,
    why: &str,
) -> sqlx::Result<()> {
    let moved = sqlx::query!(
        "UPDATE publications SET state = 'needs_attention', last_error = left($2, 4000), updated_at = now()
         WHERE id = $1 AND state = ANY($4) AND attempt_id = $3
         RETURNING agency_id, client_id, item_id, account_id, platform",
        publication,
        why,
        attempt,
        &PublicationMove::NeedsAttention.allowed() as &[&str]
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(m) = moved {
        let data = event_data(
            publication,
            m.item_id,
            m.client_id,
            m.account_id,
            &m.platform,
            why,
        );
        webhooks::emit(
            conn,
            Some(m.agency_id),
            EventType::PublicationNeedsAttention,
            data,
        )
        .await?;
    }
    Ok(())
}

/// `back_to_scheduled`: a publication this attempt holds goes back to `scheduled` (nothing of
/// this attempt reached the platform as a post), keeping `why` as its last error. Returns
/// whether the attempt still held it.
pub async fn back_to_scheduled(
    conn: impl PgExecutor<'_>,
    publication: Uuid,
    attempt: Uuid,
    why: Option<&str>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE publications SET state = 'scheduled', last_error = coalesce(left($3, 4000), last_error), updated_at = now()
         WHERE id = $1 AND state = ANY($4) AND attempt_id = $2",
        publication,
        attempt,
        why,
        &PublicationMove::BackToScheduled.allowed() as &[&str]
    )
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// Keep an attempt's error on its publication without moving it (a transient failure that
/// will be retried).
pub async fn note_error(
    conn: impl PgExecutor<'_>,
    publication: Uuid,
    attempt: Uuid,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE publications SET last_error = left($2, 4000), updated_at = updated_at
         WHERE id = $1 AND attempt_id = $3",
        publication,
        message,
        attempt
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// `fail`: the platform refused the post for good. Returns whether this attempt still held it.
pub async fn fail(
    conn: &mut PgConnection,
    publication: Uuid,
    attempt: Uuid,
    message: &str,
) -> sqlx::Result<bool> {
    let moved = sqlx::query!(
        "UPDATE publications SET state = 'failed', last_error = left($2, 4000), updated_at = now()
         WHERE id = $1 AND state = ANY($4) AND attempt_id = $3
         RETURNING agency_id, client_id, item_id, account_id, platform",
        publication,
        message,
        attempt,
        &PublicationMove::Fail.allowed() as &[&str]
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(m) = moved else {
        return Ok(false);
    };
    let data = event_data(
        publication,
        m.item_id,
        m.client_id,
        m.account_id,
        &m.platform,
        message,
    );
    webhooks::emit(conn, Some(m.agency_id), EventType::PublicationFailed, data).await?;
    Ok(true)
}

/// `reschedule`: a failed or needs-attention publication back on schedule at `at` (the rule in
/// the module docs), by a person or by the client's policy, with its item reopened, its job
/// enqueued and the audit entry. Every earlier attempt stays in the post log.
pub async fn reschedule(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    publication: Uuid,
    at: DateTime<Utc>,
) -> Result<(), Failure> {
    let p = sqlx::query!(
        r#"SELECT state AS "state: PublicationState", scheduled_at FROM publications
           WHERE id = $1 AND agency_id = $2 FOR UPDATE"#,
        publication,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Refusal::NotFound)?;
    super::check_reschedule(p.state, at, Utc::now())?;
    let moved = sqlx::query!(
        r#"UPDATE publications SET state = 'scheduled', scheduled_at = $3, last_error = NULL, updated_at = now()
           WHERE id = $1 AND agency_id = $2 AND state = ANY($4)
           RETURNING client_id, account_id, item_id, platform AS "platform: Platform""#,
        publication,
        agency,
        at,
        &PublicationMove::Reschedule.allowed() as &[&str]
    )
    .fetch_one(&mut *conn)
    .await?;
    item::reopen(&mut *conn, moved.item_id).await?;
    queue::enqueue(
        conn,
        &publish_job(
            agency,
            moved.client_id,
            moved.account_id,
            moved.platform,
            publication,
            at,
        ),
    )
    .await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "publication.reschedule")
            .target("publication", publication)
            .details(json!({ "item": moved.item_id, "from": p.scheduled_at, "to": at })),
    )
    .await?;
    Ok(())
}

/// A publication [`orphaned`] handed to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub publication: Uuid,
    pub agency: Uuid,
    pub was: PublicationState,
}

/// `orphaned`: scheduled or publishing publications whose publish job has ended without
/// finishing them (its attempts ran out while workers died holding it, or someone discarded or
/// cancelled it in the queue) go to `needs_attention`, at most `limit` of them. Nothing would
/// ever move them otherwise: the post would silently never go out, or sit in `publishing` with
/// nobody asking the platform. Only rows untouched for `quiet_for` are considered, so a move
/// being committed together with its new job is never mistaken for one. A publication that was
/// `publishing` may or may not be on the platform; one that was `scheduled` was not sent by its
/// last attempt, and its message says so.
pub async fn orphaned(
    conn: &mut PgConnection,
    quiet_for: std::time::Duration,
    limit: i64,
) -> sqlx::Result<Vec<Orphan>> {
    // `'publish:' || id` is `publishing::unique_key`; the lifecycle tests hold the two together
    let rows = sqlx::query!(
        r#"WITH stranded AS MATERIALIZED (
               SELECT p.id, p.state FROM publications p
               WHERE p.state = ANY($3) AND p.scheduled_at < now()
                 AND p.updated_at < now() - make_interval(secs => $1)
                 AND NOT EXISTS (
                     SELECT 1 FROM jobs j
                     WHERE j.kind = $4 AND j.unique_key = 'publish:' || p.id::text
                       AND j.state IN ('available', 'running', 'held'))
               ORDER BY p.scheduled_at
               LIMIT $2
               FOR UPDATE OF p SKIP LOCKED
           )
           UPDATE publications p SET
               state = 'needs_attention',
               last_error = left(CASE b.state
                   WHEN 'publishing' THEN 'its publish job ended while the post was going out (attempts ran out or the job was removed from the queue); the platform may or may not have it: check the account before rescheduling it'
                   ELSE 'its publish job ended before the post went out (attempts ran out or the job was removed from the queue); nothing was sent: reschedule it'
               END || coalesce(' (last error: ' || p.last_error || ')', ''), 4000),
               updated_at = now()
           FROM stranded b
           WHERE p.id = b.id
           RETURNING p.id, p.agency_id, p.client_id, p.item_id, p.account_id, p.platform, p.last_error AS "why!",
                     b.state AS "was!: PublicationState""#,
        quiet_for.as_secs_f64(),
        limit,
        &PublicationMove::Orphaned.allowed() as &[&str],
        publishing::KIND,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut orphans = Vec::with_capacity(rows.len());
    for r in rows {
        let data = event_data(
            r.id,
            r.item_id,
            r.client_id,
            r.account_id,
            &r.platform,
            &r.why,
        );
        webhooks::emit(
            &mut *conn,
            Some(r.agency_id),
            EventType::PublicationNeedsAttention,
            data,
        )
        .await?;
        orphans.push(Orphan {
            publication: r.id,
            agency: r.agency_id,
            was: r.was,
        });
    }
    Ok(orphans)
}
