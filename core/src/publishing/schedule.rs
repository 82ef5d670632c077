//! Scheduling's side of publishing: the publish job of a publication, the next free slot of an
//! account, and approval on behalf of a user (the move itself is [`crate::items::approve`]).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::Actor;
use crate::domain::Platform;
use crate::items::{self, ApproveFailure};
use crate::jobs::PublishPost;
use crate::queue::job::AccountTarget;
use crate::queue::{NewJob, RunAt};

/// The publish job of a publication.
pub fn publish_job(
    agency: Uuid,
    client: Uuid,
    account: Uuid,
    platform: Platform,
    publication: Uuid,
    at: DateTime<Utc>,
) -> NewJob {
    NewJob::typed(
        &PublishPost {
            publication_id: publication,
        },
        AccountTarget {
            agency_id: agency,
            client_id: client,
            account_id: account,
            platform,
        },
    )
    .run_at(RunAt::At(at))
}

/// Approve an item waiting for review as the system, on behalf of `by` when a user asked
/// (seeding, scripts): [`items::approve`] with that actor. Returns how many publications were
/// scheduled.
pub async fn approve(
    conn: &mut PgConnection,
    agency: Uuid,
    item: Uuid,
    by: Option<Uuid>,
    variant: Option<&str>,
) -> Result<usize, ApproveFailure> {
    let actor = Actor {
        user_id: by,
        ..Actor::system("system")
    };
    items::approve(conn, &actor, agency, item, variant).await
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
