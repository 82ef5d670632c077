//! The audit log: append-only (a trigger refuses updates) and hash-chained per agency, so a row
//! removed or altered by hand breaks the chain and `verify` says where.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::net::IpAddr;
use uuid::Uuid;

/// Who did it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    /// Email of a user, `system`, `worker`, `client:<name>` for onboarding.
    pub label: String,
    pub ip: Option<IpAddr>,
}

impl Actor {
    pub fn system(label: &str) -> Actor {
        Actor {
            user_id: None,
            label: label.to_owned(),
            ip: None,
        }
    }
}

/// An entry to append: `action` is `noun.verb` (`client.create`, `auth.login_failed`).
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub agency_id: Option<Uuid>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
    pub details: Value,
}

impl<'a> Entry<'a> {
    /// An entry for `action` in the chain of `agency_id` (`None`: the system chain).
    pub fn new(agency_id: Option<Uuid>, action: &'a str) -> Entry<'a> {
        Entry {
            agency_id,
            action,
            target_type: None,
            target_id: None,
            details: serde_json::json!({}),
        }
    }

    /// What the action was done to.
    pub fn target(mut self, target_type: &'a str, id: impl ToString) -> Entry<'a> {
        self.target_type = Some(target_type);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn details(mut self, details: Value) -> Entry<'a> {
        self.details = details;
        self
    }
}

/// A field of the hashed text: its length (8 bytes, big-endian), then its bytes.
fn field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_be_bytes());
    out.extend_from_slice(b);
}

/// The fields of an entry between the previous hash and the time, as hashed.
fn entry_fields(
    agency: Option<Uuid>,
    actor_user: Option<Uuid>,
    actor_label: &str,
    action: &str,
    target_type: Option<&str>,
    target_id: Option<&str>,
    details: &Value,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    field(
        &mut out,
        agency.map(|a| a.to_string()).unwrap_or_default().as_bytes(),
    );
    field(
        &mut out,
        actor_user
            .map(|a| a.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    field(&mut out, actor_label.as_bytes());
    field(&mut out, action.as_bytes());
    field(&mut out, target_type.unwrap_or_default().as_bytes());
    field(&mut out, target_id.unwrap_or_default().as_bytes());
    field(&mut out, details.to_string().as_bytes());
    out
}

/// SHA-256 of the previous hash (empty for the first entry), the entry's [`entry_fields`] and
/// its time in microseconds, the first and last as a [`field`]. `audit_append` (the migration's
/// function [`append`] calls) computes the same in SQL.
fn chain_hash(prev: Option<&[u8]>, fields: &[u8], created_at_micros: i64) -> Vec<u8> {
    let mut text = Vec::with_capacity(fields.len() + 64);
    field(&mut text, prev.unwrap_or(&[]));
    text.extend_from_slice(fields);
    field(&mut text, &created_at_micros.to_be_bytes());
    Sha256::digest(&text).to_vec()
}

/// Append an entry inside the caller's transaction (so the entry exists iff the change committed).
/// Appends to one chain are serialised by a transaction-scoped advisory lock, held until the
/// caller commits: every other writer of the agency waits from here to the commit, so this is
/// best called last. It is one call (`audit_append`, a migration's function: the lock, the
/// chain's last hash, the time and the entry with its hash, computed there over the fields
/// hashed here beforehand).
pub async fn append(conn: &mut PgConnection, actor: &Actor, entry: Entry<'_>) -> sqlx::Result<()> {
    let fields = entry_fields(
        entry.agency_id,
        actor.user_id,
        &actor.label,
        entry.action,
        entry.target_type,
        entry.target_id.as_deref(),
        &entry.details,
    );
    let ip = actor.ip.map(sqlx::types::ipnetwork::IpNetwork::from);
    sqlx::query_scalar!(
        "SELECT audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        entry.agency_id,
        actor.user_id,
        actor.label,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.details,
        ip,
        fields,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// Result of walking an agency's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    Intact { entries: u64 },
    Broken { at_id: i64, entries_checked: u64 },
}

/// Recompute the chain of an agency (or the system chain for `None`).
pub async fn verify(pool: &PgPool, agency_id: Option<Uuid>) -> sqlx::Result<ChainStatus> {
    let rows = sqlx::query!(
        "SELECT id, agency_id, actor_user_id, actor_label, action, target_type, target_id, details, created_at, prev_hash, hash
         FROM audit_log WHERE agency_id IS NOT DISTINCT FROM $1 ORDER BY id",
        agency_id
    )
    .fetch_all(pool)
    .await?;
    let mut prev: Option<Vec<u8>> = None;
    let mut n = 0u64;
    for r in rows {
        let fields = entry_fields(
            r.agency_id,
            r.actor_user_id,
            &r.actor_label,
            &r.action,
            r.target_type.as_deref(),
            r.target_id.as_deref(),
            &r.details,
        );
        let expect = chain_hash(prev.as_deref(), &fields, r.created_at.timestamp_micros());
        if r.prev_hash != prev || r.hash != expect {
            return Ok(ChainStatus::Broken {
                at_id: r.id,
                entries_checked: n,
            });
        }
        prev = Some(r.hash);
        n += 1;
    }
    Ok(ChainStatus::Intact { entries: n })
}
