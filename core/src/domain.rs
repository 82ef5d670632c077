//! Domain enums stored as text columns (each with a CHECK constraint in the schema), typed end to
//! end: `status AS "status: ClientStatus"` in a `query!` decodes straight into the enum.

use std::fmt;
use std::str::FromStr;

/// Defines a string-backed enum with `as_str`, `ALL`, `FromStr`, `Display`, serde and sqlx
/// (Postgres `text`) support. The strings must match the CHECK constraint of the column.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl sqlx::Decode<'_, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                Ok(s.parse()?)
            }
        }

        impl sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }
    };
}

/// A string that names no variant of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

text_enum! {
    /// A member's role in an agency. Ordered: each role can do everything the ones before it can.
    Role { Viewer => "viewer", Reviewer => "reviewer", Admin => "admin", Owner => "owner" }
}

text_enum! {
    ClientStatus { Active => "active", Paused => "paused", Archived => "archived" }
}

text_enum! {
    Platform {
        Facebook => "facebook",
        Instagram => "instagram",
        Tiktok => "tiktok",
        Linkedin => "linkedin",
        X => "x",
        Sandbox => "sandbox",
    }
}

text_enum! {
    AccountStatus {
        Active => "active",
        NeedsReconnect => "needs_reconnect",
        Paused => "paused",
        Disconnected => "disconnected",
    }
}

text_enum! {
    ItemState {
        Planned => "planned",
        Generating => "generating",
        PendingReview => "pending_review",
        Approved => "approved",
        Rejected => "rejected",
        Published => "published",
        PartiallyPublished => "partially_published",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

text_enum! {
    PublicationState {
        Scheduled => "scheduled",
        Held => "held",
        Publishing => "publishing",
        Published => "published",
        Failed => "failed",
        Cancelled => "cancelled",
        NeedsAttention => "needs_attention",
    }
}

text_enum! {
    /// A job's state (`jobs.state`). `held`: parked by a kill switch until it is disengaged.
    JobState {
        Available => "available",
        Running => "running",
        Held => "held",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
        Discarded => "discarded",
    }
}

text_enum! {
    KillSwitchScope {
        Global => "global",
        Agency => "agency",
        Client => "client",
        Platform => "platform",
        Account => "account",
    }
}

impl JobState {
    /// Unfinished jobs: the ones a unique key counts and the queue's depth shows.
    pub const UNFINISHED: &'static [JobState] =
        &[JobState::Available, JobState::Running, JobState::Held];

    /// Completed, failed, cancelled or discarded: it will not run again.
    pub fn is_finished(self) -> bool {
        !JobState::UNFINISHED.contains(&self)
    }
}

impl Role {
    /// Whether this role includes everything `required` may do.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl Platform {
    pub fn label(self) -> &'static str {
        match self {
            Platform::Facebook => "Facebook",
            Platform::Instagram => "Instagram",
            Platform::Tiktok => "TikTok",
            Platform::Linkedin => "LinkedIn",
            Platform::X => "X",
            Platform::Sandbox => "Sandbox",
        }
    }
}

impl AccountStatus {
    pub fn label(self) -> &'static str {
        match self {
            AccountStatus::Active => "Connected",
            AccountStatus::NeedsReconnect => "Needs reconnecting",
            AccountStatus::Paused => "Paused",
            AccountStatus::Disconnected => "Disconnected",
        }
    }
}

impl ClientStatus {
    pub fn label(self) -> &'static str {
        match self {
            ClientStatus::Active => "Active",
            ClientStatus::Paused => "Paused",
            ClientStatus::Archived => "Archived",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Owner.allows(Role::Admin));
        assert!(Role::Admin.allows(Role::Reviewer));
        assert!(Role::Reviewer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Reviewer));
        assert!(!Role::Admin.allows(Role::Owner));
    }

    #[test]
    fn text_round_trips_and_unknown_values_are_named() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), *p);
        }
        let err = "myspace".parse::<Platform>().unwrap_err();
        assert_eq!(err.to_string(), "`myspace` is not a valid Platform");
    }
}
