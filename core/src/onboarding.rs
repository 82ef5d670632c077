//! Onboarding links: a random 256-bit token shown once, stored only as its SHA-256, expiring,
//! revocable, single-use on completion. Looked up by hash (an index probe on the digest; the
//! token itself is never compared).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::secret::{random_token, token_hash};

/// A link just made: the token exists only here, to be shown once.
pub struct NewLink {
    pub id: Uuid,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Active,
    Expired,
    Revoked,
    Used,
}

impl LinkState {
    pub fn label(self) -> &'static str {
        match self {
            LinkState::Active => "Active",
            LinkState::Expired => "Expired",
            LinkState::Revoked => "Revoked",
            LinkState::Used => "Used",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LinkView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: LinkState,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Make a link for a client of `agency` (None if the client is not the agency's).
pub async fn create(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Uuid,
    created_by: Option<Uuid>,
) -> sqlx::Result<Option<NewLink>> {
    let token = random_token(32);
    let id = Uuid::now_v7();
    let expires = sqlx::query_scalar!(
        r#"INSERT INTO onboarding_links (id, agency_id, client_id, token_hash, created_by, expires_at)
           SELECT $1, c.agency_id, c.id, $4, $5,
                  now() + make_interval(days => coalesce((SELECT onboarding_link_days FROM agency_settings WHERE agency_id = c.agency_id), 7))
           FROM clients c WHERE c.id = $3 AND c.agency_id = $2
           RETURNING expires_at"#,
        id,
        agency,
        client,
        token_hash(&token),
        created_by
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(expires.map(|expires_at| NewLink {
        id,
        token,
        expires_at,
    }))
}

pub async fn list(pool: &PgPool, agency: Uuid, client: Uuid) -> sqlx::Result<Vec<LinkView>> {
    let rows = sqlx::query!(
        r#"SELECT id, created_at, expires_at, revoked_at, used_at, (expires_at <= now()) AS "expired!"
           FROM onboarding_links WHERE agency_id = $1 AND client_id = $2 ORDER BY created_at DESC LIMIT 100"#,
        agency,
        client
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LinkView {
            id: r.id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            state: if r.used_at.is_some() {
                LinkState::Used
            } else if r.revoked_at.is_some() {
                LinkState::Revoked
            } else if r.expired {
                LinkState::Expired
            } else {
                LinkState::Active
            },
            finished_at: r.used_at.or(r.revoked_at),
        })
        .collect())
}

/// Revoke an active link of the agency. Returns whether one was revoked.
pub async fn revoke(conn: &mut PgConnection, agency: Uuid, link: Uuid) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE onboarding_links SET revoked_at = now() WHERE id = $1 AND agency_id = $2 AND revoked_at IS NULL AND used_at IS NULL",
        link,
        agency
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// [`create`] with its audit entry, in the caller's transaction: what the console and the API
/// call when an agency makes a link.
pub async fn create_audited(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    client: Uuid,
) -> sqlx::Result<Option<NewLink>> {
    let Some(link) = create(conn, agency, client, actor.user_id).await? else {
        return Ok(None);
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "onboarding_link.create")
            .target("client", client)
            .details(serde_json::json!({ "link_id": link.id, "expires_at": link.expires_at })),
    )
    .await?;
    Ok(Some(link))
}

/// [`revoke`] with its audit entry, in the caller's transaction. Returns the link's client when
/// an active link was revoked.
pub async fn revoke_audited(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    link: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    let Some(client) = sqlx::query_scalar!(
        "UPDATE onboarding_links SET revoked_at = now()
         WHERE id = $1 AND agency_id = $2 AND revoked_at IS NULL AND used_at IS NULL
         RETURNING client_id",
        link,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "onboarding_link.revoke")
            .target("onboarding_link", link)
            .details(serde_json::json!({ "client_id": client })),
    )
    .await?;
    Ok(Some(client))
}

/// An active link, opened by its token.
#[derive(Debug, Clone)]
pub struct OpenLink {
    pub link_id: Uuid,
    pub agency_id: Uuid,
    pub agency_name: String,
    pub client_id: Uuid,
    pub client_name: String,
    pub timezone: String,
    pub platforms_enabled: Vec<String>,
}

/// The link behind `token` if it is active; unknown, expired, revoked and used all give `None`.
pub async fn open(pool: &PgPool, token: &str) -> sqlx::Result<Option<OpenLink>> {
    if token.len() != 43 {
        return Ok(None);
    }
    sqlx::query_as!(
        OpenLink,
        r#"SELECT l.id AS link_id, l.agency_id, a.name AS agency_name, c.id AS client_id, c.name AS client_name, c.timezone,
                  coalesce(s.platforms_enabled, ARRAY['facebook','instagram','tiktok','linkedin','x']::text[]) AS "platforms_enabled!"
           FROM onboarding_links l
           JOIN clients c ON c.id = l.client_id AND c.agency_id = l.agency_id
           JOIN agencies a ON a.id = l.agency_id
           LEFT JOIN agency_settings s ON s.agency_id = l.agency_id
           WHERE l.token_hash = $1 AND l.revoked_at IS NULL AND l.used_at IS NULL AND l.expires_at > now()
             AND c.status <> 'archived'"#,
        token_hash(token)
    )
    .fetch_optional(pool)
    .await
}

/// Finish onboarding: confirm the timezone and use the link up. False if it is no longer active.
pub async fn finish(conn: &mut PgConnection, link: Uuid, timezone: &str) -> sqlx::Result<bool> {
    let client = sqlx::query_scalar!(
        "UPDATE onboarding_links SET used_at = now()
         WHERE id = $1 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now() RETURNING client_id",
        link
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(client) = client else {
        return Ok(false);
    };
    sqlx::query!(
        "UPDATE clients SET timezone = $2, updated_at = now() WHERE id = $1",
        client,
        timezone
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Why a connection that was started may not be stored any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefused {
    /// The onboarding link it was started from was revoked, used up or expired meanwhile.
    LinkGone,
    /// The client was archived (or removed) meanwhile.
    ClientGone,
    /// The member who started it from the console is no longer an admin of the agency.
    MemberGone,
}

impl ConnectRefused {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectRefused::LinkGone => "link_no_longer_active",
            ConnectRefused::ClientGone => "client_archived",
            ConnectRefused::MemberGone => "member_no_longer_admin",
        }
    }
}

/// Re-check, in the transaction that stores a connection, that what allowed it to start still
/// holds: the onboarding link is still active (or the member who started it from the console
/// is still an admin of the agency) and the client is not archived. The rows read are locked
/// (`FOR SHARE`) until the caller commits, so a revoke, a finish, an archive or a role change
/// either waits for the connection to be stored or is seen here: nothing is connected through a
/// link after its revocation returned. Locks are taken in the order revoke and finish take them
/// (link, then client).
pub async fn recheck_for_connection(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Uuid,
    link: Option<Uuid>,
    member: Option<Uuid>,
) -> sqlx::Result<Result<(), ConnectRefused>> {
    if let Some(link) = link {
        let active = sqlx::query_scalar!(
            r#"SELECT true AS "active!" FROM onboarding_links
               WHERE id = $1 AND agency_id = $2 AND client_id = $3
                 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now()
               FOR SHARE"#,
            link,
            agency,
            client
        )
        .fetch_optional(&mut *conn)
        .await?;
        if active.is_none() {
            return Ok(Err(ConnectRefused::LinkGone));
        }
    }
    let live = sqlx::query_scalar!(
        r#"SELECT true AS "live!" FROM clients WHERE id = $1 AND agency_id = $2 AND status <> 'archived' FOR SHARE"#,
        client,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?;
    if live.is_none() {
        return Ok(Err(ConnectRefused::ClientGone));
    }
    if let Some(member) = member {
        let admin = sqlx::query_scalar!(
            r#"SELECT true AS "admin!" FROM memberships
               WHERE agency_id = $1 AND user_id = $2 AND role IN ('admin', 'owner')
               FOR SHARE"#,
            agency,
            member
        )
        .fetch_optional(&mut *conn)
        .await?;
        if admin.is_none() {
            return Ok(Err(ConnectRefused::MemberGone));
        }
    }
    Ok(Ok(()))
}
