//! An agency's clients: the rules for their fields and every write to `clients` made by a person
//! or an API key (create, update, pause/resume/archive), each audited in the caller's
//! transaction. The console's client pages and the JSON API both call these, so a client changed
//! through either door is checked and recorded the same way.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono_tz::Tz;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Actor, Entry};
use crate::domain::ClientStatus;

/// A field's message, keyed by the field's name.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// The most characters in a client's name.
pub const NAME_MAX: usize = 200;

pub const NAME_TAKEN: &str = "Your agency already has a client with this name.";

/// A client's fields as given (a form or a JSON body), before validation.
#[derive(Debug, Clone, Default)]
pub struct RawClient<'a> {
    pub name: &'a str,
    pub timezone: &'a str,
    /// `None` or empty: active.
    pub status: Option<&'a str>,
    pub auto_approve: bool,
    /// `None` or empty: manual.
    pub reschedule_policy: Option<&'a str>,
}

/// A client's fields that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFields {
    pub name: String,
    pub timezone: Tz,
    pub status: ClientStatus,
    pub auto_approve: bool,
    pub reschedule_policy: &'static str,
}

impl RawClient<'_> {
    /// Check every field; the errors name each field that is wrong.
    pub fn validate(&self) -> Result<ClientFields, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            errors.insert("name", "Enter the client's name.".into());
        } else if name.chars().count() > NAME_MAX {
            errors.insert("name", "Use at most 200 characters.".into());
        } else if name.chars().any(char::is_control) {
            errors.insert("name", "The name cannot contain control characters.".into());
        }
        let tz = self.timezone.trim();
        let timezone = match Tz::from_str(tz) {
            Ok(tz) => Some(tz),
            Err(_) => {
                errors.insert(
                    "timezone",
                    if tz.is_empty() {
                        "Choose the client's timezone, e.g. Europe/Berlin.".into()
                    } else {
                        let shown: String = tz.chars().take(64).collect();
                        format!("“{shown}” is not an IANA timezone name, e.g. America/New_York.")
                    },
                );
                None
            }
        };
        let status = match self.status {
            None | Some("") => Some(ClientStatus::Active),
            Some(s) => match ClientStatus::from_str(s) {
                Ok(s) => Some(s),
                Err(_) => {
                    errors.insert("status", "Choose active, paused or archived.".into());
                    None
                }
            },
        };
        let reschedule_policy = match self.reschedule_policy {
            None | Some("") | Some("manual") => Some("manual"),
            Some("next_free_slot") => Some("next_free_slot"),
            Some(_) => {
                errors.insert(
                    "reschedule_policy",
                    "Choose manual or next free slot.".into(),
                );
                None
            }
        };
        match (timezone, status, reschedule_policy) {
            (Some(timezone), Some(status), Some(reschedule_policy)) if errors.is_empty() => {
                Ok(ClientFields {
                    name,
                    timezone,
                    status,
                    auto_approve: self.auto_approve,
                    reschedule_policy,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Why a write to a client was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no such client")]
    NotFound,
    #[error("{NAME_TAKEN}")]
    NameTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn name_taken(e: sqlx::Error) -> ClientError {
    match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("clients_agency_id_name_key") => {
            ClientError::NameTaken
        }
        _ => ClientError::Database(e),
    }
}

/// Create a client (with its empty brand) and audit it, in the caller's transaction.
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    v: &ClientFields,
) -> Result<Uuid, ClientError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO clients (id, agency_id, name, timezone, status, auto_approve, reschedule_policy)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        agency,
        v.name,
        v.timezone.name(),
        v.status.as_str(),
        v.auto_approve,
        v.reschedule_policy,
    )
    .execute(&mut *conn)
    .await
    .map_err(name_taken)?;
    sqlx::query!(
        "INSERT INTO brand_settings (client_id, agency_id) VALUES ($1, $2)",
        id,
        agency
    )
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "client.create")
            .target("client", id)
            .details(serde_json::json!({ "name": v.name, "timezone": v.timezone.name() })),
    )
    .await?;
    Ok(id)
}

/// Posts held while a client was paused go out again when it becomes active (past-due ones now).
async fn status_changed(
    conn: &mut PgConnection,
    agency: Uuid,
    id: Uuid,
    from: ClientStatus,
    to: ClientStatus,
) -> sqlx::Result<()> {
    if from != to && to == ClientStatus::Active {
        crate::items::publications::release_held(conn, agency, Some(id), None).await?;
    }
    Ok(())
}

/// Replace a client's fields and audit it, in the caller's transaction. A change of status has
/// the same effect as [`set_status`] (held posts go out again on resume).
pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    id: Uuid,
    v: &ClientFields,
) -> Result<(), ClientError> {
    let before = sqlx::query_scalar!(
        r#"SELECT status AS "status: ClientStatus" FROM clients WHERE id = $1 AND agency_id = $2 FOR UPDATE"#,
        id,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ClientError::NotFound)?;
    sqlx::query!(
        "UPDATE clients SET name = $3, timezone = $4, status = $5, auto_approve = $6, reschedule_policy = $7, updated_at = now()
         WHERE id = $1 AND agency_id = $2",
        id,
        agency,
        v.name,
        v.timezone.name(),
        v.status.as_str(),
        v.auto_approve,
        v.reschedule_policy,
    )
    .execute(&mut *conn)
    .await
    .map_err(name_taken)?;
    status_changed(conn, agency, id, before, v.status).await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "client.update")
            .target("client", id)
            .details(serde_json::json!({ "name": v.name, "timezone": v.timezone.name(), "status": v.status,
                                         "auto_approve": v.auto_approve, "reschedule_policy": v.reschedule_policy })),
    )
    .await?;
    Ok(())
}

/// Pause, resume or archive a client and audit it, in the caller's transaction.
pub async fn set_status(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    id: Uuid,
    status: ClientStatus,
) -> Result<(), ClientError> {
    let updated = sqlx::query!(
        "UPDATE clients SET status = $3, updated_at = now() WHERE id = $1 AND agency_id = $2",
        id,
        agency,
        status.as_str()
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ClientError::NotFound);
    }
    // posts held while the client was paused go out again (past-due ones now)
    if status == ClientStatus::Active {
        crate::items::publications::release_held(conn, agency, Some(id), None).await?;
    }
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "client.status")
            .target("client", id)
            .details(serde_json::json!({ "status": status })),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_each_bad_field() {
        let errors = RawClient {
            name: "  ",
            timezone: "Mars/Olympus",
            status: Some("gone"),
            reschedule_policy: Some("whenever"),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(errors["name"].contains("name"));
        assert!(errors["timezone"].contains("Mars/Olympus"));
        assert!(errors.contains_key("status"));
        assert!(errors.contains_key("reschedule_policy"));
        let ok = RawClient {
            name: " Acme ",
            timezone: "Europe/Berlin",
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.name, "Acme");
        assert_eq!(ok.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(ok.status, ClientStatus::Active);
        assert_eq!(ok.reschedule_policy, "manual");
    }
}
