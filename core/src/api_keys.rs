//! An agency's keys for the JSON API (`/api/v1`): the only code that writes `api_keys` and
//! `api_key_clients`.
//!
//! A key is `as_live_` followed by 256 random bits (URL-safe base64): shown once when it is
//! created, stored only as its SHA-256, looked up by that hash. It has a role below owner
//! (viewer, reviewer, admin) and reaches every client of the agency or only those it names.
//! Creating and revoking are audited in the agency's chain, naming the key; what a key does is
//! audited with the key as the actor ([`ApiKey::actor`]).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::domain::Role;
use crate::secret::{random_token, token_hash};

/// What every key starts with: recognisable in a leaked file or a secret scanner's rules.
pub const PREFIX: &str = "as_live_";

/// How many characters of a key are kept to tell keys apart (the prefix and 6 of the secret).
const SHOWN: usize = PREFIX.len() + 6;

/// The roles a key may have (an owner's powers stay with people).
pub const ROLES: &[Role] = &[Role::Viewer, Role::Reviewer, Role::Admin];

/// A key as the settings page lists it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub display_prefix: String,
    /// `None`: every client of the agency; else the names of the clients it reaches.
    pub clients: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key that authenticated a request.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub name: String,
    pub role: Role,
    pub display_prefix: String,
    /// `None`: every client of the agency; else only these.
    pub clients: Option<Vec<Uuid>>,
}

impl ApiKey {
    /// The key as the author of what it does (audit entries name it).
    pub fn actor(&self, ip: Option<IpAddr>) -> Actor {
        Actor {
            user_id: None,
            label: format!("api-key:{} ({}…)", self.name, self.display_prefix),
            ip,
        }
    }

    /// Whether the key reaches `client`.
    pub fn reaches(&self, client: Uuid) -> bool {
        self.clients.as_ref().is_none_or(|c| c.contains(&client))
    }
}

/// A key just created: the secret, shown once.
#[derive(Debug)]
pub struct Created {
    pub id: Uuid,
    pub secret: String,
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a key's role is viewer, reviewer or admin")]
    Role,
    /// One of the clients named is not the agency's.
    #[error("no such client")]
    UnknownClient,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The fields of a new key, already checked for form (name length and the like).
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub name: &'a str,
    pub role: Role,
    /// `None`: every client; else these (at least one).
    pub clients: Option<&'a [Uuid]>,
}

/// Create a key in the caller's transaction and audit it. The secret is returned once.
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    key: &NewKey<'_>,
) -> Result<Created, CreateError> {
    if !ROLES.contains(&key.role) {
        return Err(CreateError::Role);
    }
    let id = Uuid::now_v7();
    let secret = format!("{PREFIX}{}", random_token(32));
    let shown: String = secret.chars().take(SHOWN).collect();
    sqlx::query!(
        "INSERT INTO api_keys (id, agency_id, name, role, display_prefix, secret_hash, all_clients, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        agency,
        key.name,
        key.role.as_str(),
        shown,
        token_hash(&secret),
        key.clients.is_none(),
        actor.user_id,
    )
    .execute(&mut *conn)
    .await?;
    if let Some(clients) = key.clients {
        // only the agency's own clients: the count says whether every one was found
        let added = sqlx::query!(
            "INSERT INTO api_key_clients (key_id, client_id, agency_id)
             SELECT $1, c.id, c.agency_id FROM clients c WHERE c.agency_id = $2 AND c.id = ANY($3)",
            id,
            agency,
            clients
        )
        .execute(&mut *conn)
        .await?;
        let mut distinct = clients.to_vec();
        distinct.sort();
        distinct.dedup();
        if added.rows_affected() != distinct.len() as u64 || distinct.is_empty() {
            return Err(CreateError::UnknownClient);
        }
    }
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "api_key.create")
            .target("api_key", id)
            .details(serde_json::json!({
                "name": key.name, "key": shown, "role": key.role, "clients": key.clients,
            })),
    )
    .await?;
    Ok(Created { id, secret })
}

/// Revoke a key of `agency` in the caller's transaction and audit it. `false`: no such key (or
/// another agency's), or revoked already.
pub async fn revoke(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    let Some(key) = sqlx::query!(
        "UPDATE api_keys SET revoked_at = now(), revoked_by = $3
         WHERE id = $1 AND agency_id = $2 AND revoked_at IS NULL
         RETURNING name, display_prefix",
        id,
        agency,
        actor.user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(false);
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "api_key.revoke")
            .target("api_key", id)
            .details(serde_json::json!({ "name": key.name, "key": key.display_prefix })),
    )
    .await?;
    Ok(true)
}

/// Every key of `agency`, newest first, revoked ones included.
pub async fn list(conn: impl PgExecutor<'_>, agency: Uuid) -> sqlx::Result<Vec<KeyInfo>> {
    let rows = sqlx::query!(
        r#"SELECT k.id, k.name, k.role AS "role: Role", k.display_prefix, k.all_clients,
                  k.created_at, u.email::text AS "created_by?", k.last_used_at, k.revoked_at,
                  coalesce((SELECT array_agg(c.name ORDER BY c.name) FROM api_key_clients kc
                            JOIN clients c ON c.id = kc.client_id AND c.agency_id = kc.agency_id
                            WHERE kc.key_id = k.id), '{}') AS "clients!: Vec<String>"
           FROM api_keys k LEFT JOIN users u ON u.id = k.created_by
           WHERE k.agency_id = $1
           ORDER BY k.created_at DESC, k.id DESC"#,
        agency
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| KeyInfo {
            id: r.id,
            name: r.name,
            role: r.role,
            display_prefix: r.display_prefix,
            clients: (!r.all_clients).then_some(r.clients),
            created_at: r.created_at,
            created_by: r.created_by,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
        .collect())
}

/// The live key behind `secret` (not revoked, its agency's), marking it used (at most once a
/// minute, so a busy key does not write on every request).
pub async fn authenticate(conn: &mut PgConnection, secret: &str) -> sqlx::Result<Option<ApiKey>> {
    if !secret.starts_with(PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let hash = token_hash(secret);
    let Some(row) = sqlx::query!(
        r#"SELECT k.id, k.agency_id, k.name, k.role AS "role: Role", k.display_prefix, k.all_clients,
                  (k.last_used_at IS NULL OR k.last_used_at < now() - interval '60 seconds') AS "stale!",
                  coalesce((SELECT array_agg(kc.client_id ORDER BY kc.client_id) FROM api_key_clients kc
                            WHERE kc.key_id = k.id), '{}') AS "clients!: Vec<Uuid>"
           FROM api_keys k
           WHERE k.secret_hash = $1 AND k.revoked_at IS NULL"#,
        hash
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    if row.stale {
        sqlx::query!(
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1",
            row.id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(ApiKey {
        id: row.id,
        agency_id: row.agency_id,
        name: row.name,
        role: row.role,
        display_prefix: row.display_prefix,
        clients: (!row.all_clients).then_some(row.clients),
    }))
}
