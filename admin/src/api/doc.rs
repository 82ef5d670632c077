//! What the OpenAPI document says beyond the types the handlers answer with: the errors every
//! operation may answer, and the closed sets of values the handlers accept (a client's status,
//! an item's state, timezone names), so the document refuses what the server refuses.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use super::problem::Problem;

/// The errors of every reading operation.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// A parameter, header or id that does not parse (each is named in `errors`).
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(#[to_schema] Problem),
    /// No key, or a key that is unknown or revoked.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(#[to_schema] Problem),
    /// The key's rate limit is spent; `Retry-After` says when to come back.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(#[to_schema] Problem),
}

/// The errors of every writing operation (POST, PATCH).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// JSON that does not parse, or a parameter, header or id that does not.
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(#[to_schema] Problem),
    /// No key, or a key that is unknown or revoked.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(#[to_schema] Problem),
    /// The key's role (or its client limit) does not allow this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(#[to_schema] Problem),
    /// A request with this Idempotency-Key is still running, or the resource's state does not
    /// allow the action.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(#[to_schema] Problem),
    /// The body is larger than 1 MiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(#[to_schema] Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    MediaType(#[to_schema] Problem),
    /// Fields that are wrong (each named in `errors`), or an Idempotency-Key used for another
    /// request.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(#[to_schema] Problem),
    /// The key's rate limit is spent; `Retry-After` says when to come back.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(#[to_schema] Problem),
}

/// A client's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ClientStatusValue {
    Active,
    Paused,
    Archived,
}

/// What happens to a post a platform refused for good.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ReschedulePolicy {
    Manual,
    NextFreeSlot,
}

/// An item's state.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ItemStateValue {
    Planned,
    Generating,
    PendingReview,
    Approved,
    Rejected,
    Published,
    PartiallyPublished,
    Failed,
    Cancelled,
}

/// How often a content rule posts.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RuleFrequencyValue {
    PerDay,
    PerWeek,
}

/// What a content rule's posts are.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ContentTypeValue {
    Text,
    Image,
    Link,
}

/// An ISO weekday: 1 is Monday, 7 is Sunday.
pub struct IsoWeekday;

impl PartialSchema for IsoWeekday {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some("An ISO weekday: 1 is Monday, 7 is Sunday."))
            .minimum(Some(1))
            .maximum(Some(7))
            .into()
    }
}

impl ToSchema for IsoWeekday {}

/// A local time of day, 24-hour `HH:MM`.
pub struct LocalTime;

impl PartialSchema for LocalTime {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A local time of day, 24-hour HH:MM."))
            .pattern(Some("^([01][0-9]|2[0-3]):[0-5][0-9]$"))
            .into()
    }
}

impl ToSchema for LocalTime {}

/// A caption variant of a generated item.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum VariantValue {
    Conservative,
    Balanced,
    Bold,
}

/// A social platform.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PlatformValue {
    Facebook,
    Instagram,
    Tiktok,
    Linkedin,
    X,
    Sandbox,
}

/// An account's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AccountStatusValue {
    Active,
    NeedsReconnect,
    Paused,
    Disconnected,
}

/// A publication's state.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PublicationStateValue {
    Scheduled,
    Held,
    Publishing,
    Published,
    Failed,
    Cancelled,
    NeedsAttention,
}

/// A kill switch's scope.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum KillSwitchScopeValue {
    Global,
    Agency,
    Client,
    Platform,
    Account,
}

/// The scopes a key may engage (the deployment-wide ones are its operator's).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SwitchScopeValue {
    Agency,
    Client,
    Platform,
    Account,
}

/// An onboarding link's state.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum LinkStateValue {
    Active,
    Expired,
    Revoked,
    Used,
}

/// An IANA timezone name, e.g. `Europe/Berlin`.
pub struct Timezone;

impl PartialSchema for Timezone {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("An IANA timezone name, e.g. Europe/Berlin."))
            .enum_values(Some(names))
            .into()
    }
}

impl ToSchema for Timezone {}

/// A hashtag, with or without `#`: at most 100 characters, no NUL.
pub struct Hashtag;

impl PartialSchema for Hashtag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A hashtag, with or without #."))
            .max_length(Some(100))
            .pattern(Some(r"^[^\u0000]*$"))
            .into()
    }
}

impl ToSchema for Hashtag {}

#[cfg(test)]
mod tests {
    use super::*;
    use autosocial_core::domain::{
        AccountStatus, ClientStatus, ItemState, KillSwitchScope, Platform, PublicationState,
    };

    /// The documented values are the domain's, spelled the same.
    #[test]
    fn documented_values_are_the_domains() {
        let values = |schema: RefOr<Schema>| -> Vec<String> {
            let json = serde_json::to_value(schema).unwrap();
            json["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let statuses: Vec<String> = ClientStatus::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(values(ClientStatusValue::schema()), statuses);
        let states: Vec<String> = ItemState::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(values(ItemStateValue::schema()), states);
        assert_eq!(
            values(VariantValue::schema()),
            ["conservative", "balanced", "bold"]
        );
        assert_eq!(
            values(ReschedulePolicy::schema()),
            ["manual", "next_free_slot"]
        );
        assert!(values(Timezone::schema()).contains(&"Europe/Berlin".to_owned()));
        let content_types: Vec<&str> = crate::pages::rules::CONTENT_TYPES
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(values(ContentTypeValue::schema()), content_types);
        for f in values(RuleFrequencyValue::schema()) {
            f.parse::<autosocial_core::content::schedule::Frequency>()
                .expect("a documented frequency parses");
        }
        let platforms: Vec<String> = Platform::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(values(PlatformValue::schema()), platforms);
        let accounts: Vec<String> = AccountStatus::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(values(AccountStatusValue::schema()), accounts);
        let pubs: Vec<String> = PublicationState::ALL
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(values(PublicationStateValue::schema()), pubs);
        let scopes: Vec<String> = KillSwitchScope::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(values(KillSwitchScopeValue::schema()), scopes);
    }
}
