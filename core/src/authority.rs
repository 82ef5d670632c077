//! Who may reach beyond one agency.
//!
//! Roles inside an agency (viewer < reviewer < admin < owner) never reach another agency. The
//! powers that concern the whole deployment — global and platform-wide kill switches, system
//! jobs (work that belongs to no agency) — belong to its operator: the CLI, or a person the CLI
//! made an operator (`autosocial-admin operator grant`). No console route grants or revokes it.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::killswitch::Target;

/// On whose behalf a kill switch is engaged or disengaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The deployment's operator: every target.
    Operator,
    /// An agency's admin or owner: that agency's own targets only.
    Agency(Uuid),
}

/// Whether a switch target reaches beyond one agency (global, or a platform for everyone).
pub fn deployment_wide(target: &Target) -> bool {
    matches!(
        target,
        Target::Global | Target::Platform { agency: None, .. }
    )
}

/// The agency a switch target belongs to (`None`: deployment-wide).
pub fn agency_of(target: &Target) -> Option<Uuid> {
    match *target {
        Target::Global => None,
        Target::Agency(a) => Some(a),
        Target::Client { agency, .. } | Target::Account { agency, .. } => Some(agency),
        Target::Platform { agency, .. } => agency,
    }
}

impl Authority {
    /// May this authority engage (or disengage) a switch on `target`? An agency only its own
    /// targets (the caller has checked that a client or account id is the agency's).
    pub fn may_switch(self, target: &Target) -> bool {
        match self {
            Authority::Operator => true,
            Authority::Agency(a) => agency_of(target) == Some(a),
        }
    }

    /// May this authority disengage the switch whose row says `agency_id`?
    pub fn may_disengage(self, switch_agency: Option<Uuid>) -> bool {
        match self {
            Authority::Operator => true,
            Authority::Agency(a) => switch_agency == Some(a),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no account has the email `{0}`")]
    NoSuchUser(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Make the person with `email` an operator (the CLI's `operator grant`). Returns their id and
/// whether they were one already. Audited in the system chain.
pub async fn grant(
    conn: &mut PgConnection,
    actor: &Actor,
    email: &str,
) -> Result<(Uuid, bool), OperatorError> {
    let user = sqlx::query_scalar!(
        "SELECT id FROM users WHERE email = $1::text::citext",
        email.trim()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| OperatorError::NoSuchUser(email.trim().to_owned()))?;
    let added = sqlx::query!(
        "INSERT INTO operators (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
        user
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if added {
        audit::append(
            conn,
            actor,
            Entry::new(None, "operator.grant")
                .target("user", user)
                .details(serde_json::json!({ "email": email.trim() })),
        )
        .await?;
    }
    Ok((user, !added))
}

/// Take the operator's powers from the person with `email` (the CLI's `operator revoke`).
/// Returns whether they had them. Audited in the system chain.
pub async fn revoke(
    conn: &mut PgConnection,
    actor: &Actor,
    email: &str,
) -> Result<bool, OperatorError> {
    let user = sqlx::query_scalar!(
        "SELECT id FROM users WHERE email = $1::text::citext",
        email.trim()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| OperatorError::NoSuchUser(email.trim().to_owned()))?;
    let removed = sqlx::query!("DELETE FROM operators WHERE user_id = $1", user)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if removed {
        audit::append(
            conn,
            actor,
            Entry::new(None, "operator.revoke")
                .target("user", user)
                .details(serde_json::json!({ "email": email.trim() })),
        )
        .await?;
    }
    Ok(removed)
}

/// The deployment's operators: email and since when.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
    Ok(sqlx::query!(
        r#"SELECT u.email::text AS "email!", o.granted_at FROM operators o JOIN users u ON u.id = o.user_id
           ORDER BY u.email"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.email, r.granted_at))
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Platform;

    #[test]
    fn an_agency_switches_only_its_own_targets_and_the_operator_everything() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let ours = [
            Target::Agency(a),
            Target::Client {
                agency: a,
                client: b,
            },
            Target::Platform {
                agency: Some(a),
                platform: Platform::X,
            },
            Target::Account {
                agency: a,
                account: b,
            },
        ];
        let beyond = [
            Target::Global,
            Target::Platform {
                agency: None,
                platform: Platform::X,
            },
        ];
        let theirs = [
            Target::Agency(b),
            Target::Platform {
                agency: Some(b),
                platform: Platform::Instagram,
            },
        ];
        for t in &ours {
            assert!(Authority::Agency(a).may_switch(t), "{t:?}");
            assert!(!deployment_wide(t));
        }
        for t in beyond.iter().chain(&theirs) {
            assert!(!Authority::Agency(a).may_switch(t), "{t:?}");
        }
        for t in ours.iter().chain(&beyond).chain(&theirs) {
            assert!(Authority::Operator.may_switch(t), "{t:?}");
        }
        assert!(beyond.iter().all(deployment_wide));
        assert!(Authority::Agency(a).may_disengage(Some(a)));
        assert!(!Authority::Agency(a).may_disengage(Some(b)));
        assert!(!Authority::Agency(a).may_disengage(None));
        assert!(Authority::Operator.may_disengage(None));
    }
}
