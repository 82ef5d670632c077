//! Invitations to join an agency. Joining is the invited person's choice: an owner's invitation
//! is a random 256-bit token, stored only as its SHA-256, that expires after
//! [`LIFETIME_DAYS`], can be revoked, and works once. The person accepts it themselves, with the
//! password of their account or by choosing one for a new account.
//!
//! Inviting answers the same whether or not an account with the address exists anywhere on the
//! deployment: nothing about other agencies' people is learnt by inviting them.
//!
//! This module owns the table's moves (open → accepted | revoked; expiry is read, not written)
//! and writes their audit entries.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::domain::Role;
use crate::secret::{random_token, token_hash};

/// How long an invitation can be accepted.
pub const LIFETIME_DAYS: i32 = 7;

/// An invitation just made: the token exists only here, to be shown once.
pub struct NewInvitation {
    pub id: Uuid,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// What inviting did.
pub enum Invited {
    /// An invitation to pass on (any earlier open one for the address is revoked).
    Created(NewInvitation),
    /// The address belongs to a member of this agency already: nothing was made.
    AlreadyMember,
}

/// Invite `email` into `agency` as `role`. Says nothing about accounts outside the agency.
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    email: &str,
    role: Role,
) -> sqlx::Result<Invited> {
    let member = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
                          WHERE m.agency_id = $1 AND u.email = $2::text::citext) AS "member!""#,
        agency,
        email
    )
    .fetch_one(&mut *conn)
    .await?;
    if member {
        return Ok(Invited::AlreadyMember);
    }
    // inviting again replaces the open invitation (its link stops working)
    let replaced = sqlx::query!(
        "UPDATE invitations SET revoked_at = now()
         WHERE agency_id = $1 AND email = $2::text::citext AND accepted_at IS NULL AND revoked_at IS NULL",
        agency,
        email
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let token = random_token(32);
    let id = Uuid::now_v7();
    let expires_at = sqlx::query_scalar!(
        "INSERT INTO invitations (id, agency_id, email, role, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3::text::citext, $4, $5, $6, now() + make_interval(days => $7))
         RETURNING expires_at",
        id,
        agency,
        email,
        role.as_str(),
        token_hash(&token),
        actor.user_id,
        LIFETIME_DAYS
    )
    .fetch_one(&mut *conn)
    .await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "member.invite")
            .target("invitation", id)
            .details(serde_json::json!({ "email": email, "role": role, "expires_at": expires_at, "replaced": replaced })),
    )
    .await?;
    Ok(Invited::Created(NewInvitation {
        id,
        token,
        expires_at,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Open,
    Expired,
    Revoked,
    Accepted,
}

impl InvitationState {
    pub fn label(self) -> &'static str {
        match self {
            InvitationState::Open => "Open",
            InvitationState::Expired => "Expired",
            InvitationState::Revoked => "Revoked",
            InvitationState::Accepted => "Accepted",
        }
    }
}

/// An invitation as the agency's settings page lists it.
#[derive(Debug, Clone)]
pub struct InvitationView {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: InvitationState,
}

/// The agency's most recent invitations (open ones first).
pub async fn list(pool: &PgPool, agency: Uuid) -> sqlx::Result<Vec<InvitationView>> {
    let rows = sqlx::query!(
        r#"SELECT id, email::text AS "email!", role AS "role: Role", created_at, expires_at,
                  accepted_at IS NOT NULL AS "accepted!", revoked_at IS NOT NULL AS "revoked!",
                  expires_at <= now() AS "expired!"
           FROM invitations WHERE agency_id = $1
           ORDER BY (accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()) DESC, created_at DESC
           LIMIT 50"#,
        agency
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| InvitationView {
            id: r.id,
            email: r.email,
            role: r.role,
            created_at: r.created_at,
            expires_at: r.expires_at,
            state: if r.accepted {
                InvitationState::Accepted
            } else if r.revoked {
                InvitationState::Revoked
            } else if r.expired {
                InvitationState::Expired
            } else {
                InvitationState::Open
            },
        })
        .collect())
}

/// Revoke an open invitation of the agency. False when there is none by that id (another
/// agency's, accepted, revoked, or unknown).
pub async fn revoke(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    let email = sqlx::query_scalar!(
        r#"UPDATE invitations SET revoked_at = now()
           WHERE id = $1 AND agency_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL
           RETURNING email::text AS "email!""#,
        id,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(email) = email else {
        return Ok(false);
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "invitation.revoke")
            .target("invitation", id)
            .details(serde_json::json!({ "email": email })),
    )
    .await?;
    Ok(true)
}

/// An open invitation, opened by its token.
#[derive(Debug, Clone)]
pub struct OpenInvitation {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub agency_name: String,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// The invitation behind `token` if it is open; unknown, expired, revoked and accepted all give
/// `None`.
pub async fn open(pool: &PgPool, token: &str) -> sqlx::Result<Option<OpenInvitation>> {
    if token.len() != 43 {
        return Ok(None);
    }
    sqlx::query_as!(
        OpenInvitation,
        r#"SELECT i.id, i.agency_id, a.name AS agency_name, i.email::text AS "email!", i.role AS "role: Role", i.expires_at
           FROM invitations i JOIN agencies a ON a.id = i.agency_id
           WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()"#,
        token_hash(token)
    )
    .fetch_optional(pool)
    .await
}

/// Who accepts: the account with the invitation's address, or a new one.
pub enum Joiner<'a> {
    Existing(Uuid),
    /// A new account for the invitation's address, with this argon2id hash.
    New {
        password_hash: &'a str,
    },
}

/// What accepting did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// The person is a member of the agency now (`role` is theirs: an earlier membership keeps
    /// its role).
    Joined {
        user_id: Uuid,
        agency_id: Uuid,
        role: Role,
    },
    /// The invitation was revoked, used or expired meanwhile: nothing changed.
    Gone,
    /// A new account was asked for, but one with the address exists by now: nothing changed.
    AccountExists,
}

/// Accept an invitation (in the caller's transaction): lock it, check it is still open, create
/// the account if asked, add the membership, mark the invitation used and audit it in the
/// agency's chain.
pub async fn accept(
    conn: &mut PgConnection,
    invitation: Uuid,
    joiner: Joiner<'_>,
    ip: Option<std::net::IpAddr>,
) -> sqlx::Result<Accepted> {
    let inv = sqlx::query!(
        r#"SELECT agency_id, email::text AS "email!", role AS "role: Role" FROM invitations
           WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
           FOR UPDATE"#,
        invitation
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(inv) = inv else {
        return Ok(Accepted::Gone);
    };
    let (user_id, new_account) = match joiner {
        Joiner::Existing(id) => (id, false),
        Joiner::New { password_hash } => {
            let created = sqlx::query_scalar!(
                "INSERT INTO users (id, email, password_hash) VALUES ($1, $2::text::citext, $3)
                 ON CONFLICT (email) DO NOTHING RETURNING id",
                Uuid::now_v7(),
                inv.email,
                password_hash
            )
            .fetch_optional(&mut *conn)
            .await?;
            match created {
                Some(id) => (id, true),
                None => return Ok(Accepted::AccountExists),
            }
        }
    };
    let added = sqlx::query!(
        "INSERT INTO memberships (agency_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        inv.agency_id,
        user_id,
        inv.role.as_str()
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    let role = sqlx::query_scalar!(
        r#"SELECT role AS "role: Role" FROM memberships WHERE agency_id = $1 AND user_id = $2"#,
        inv.agency_id,
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1",
        invitation,
        user_id
    )
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        &Actor {
            user_id: Some(user_id),
            label: inv.email.clone(),
            ip,
        },
        Entry::new(Some(inv.agency_id), "member.join")
            .target("user", user_id)
            .details(serde_json::json!({
                "invitation_id": invitation,
                "role": role,
                "new_account": new_account,
                "already_member": !added,
            })),
    )
    .await?;
    Ok(Accepted::Joined {
        user_id,
        agency_id: inv.agency_id,
        role,
    })
}
