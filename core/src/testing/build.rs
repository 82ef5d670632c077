//! Builders for the rows tests start from: agency, client, social account, content item and
//! publication. Each starts from defaults that satisfy the schema's constraints, takes chainable
//! overrides, and inserts one row (an item also its targets) with `insert`, on a pool, a
//! connection or inside a transaction; it panics with the database's message when the row is
//! refused.
//!
//! ```ignore
//! let agency = agency().insert(&pool).await;
//! let client = client(agency).timezone("Europe/Berlin").insert(&pool).await;
//! let acct = account(agency, client).platform(Platform::X).insert(&pool).await;
//! let it = item(agency, client).state(ItemState::Approved).targets(&[acct]).insert(&pool).await;
//! publication(agency, client, it, acct).state(PublicationState::Failed).insert(&pool).await;
//! ```

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Acquire, Postgres};
use uuid::Uuid;

use crate::domain::{AccountStatus, ClientStatus, ItemState, Platform, PublicationState};

/// An agency named after its id unless named.
pub fn agency() -> AgencyBuilder {
    let id = Uuid::now_v7();
    AgencyBuilder {
        id,
        name: format!("Agency {id}"),
    }
}

pub struct AgencyBuilder {
    id: Uuid,
    name: String,
}

impl AgencyBuilder {
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    pub async fn insert<'c>(self, db: impl Acquire<'c, Database = Postgres>) -> Uuid {
        let mut conn = db.acquire().await.expect("a database connection");
        sqlx::query("INSERT INTO agencies (id, name) VALUES ($1, $2)")
            .bind(self.id)
            .bind(&self.name)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("insert agency {}: {e}", self.name));
        self.id
    }
}

/// An active client of `agency` named "Client", in UTC.
pub fn client(agency: Uuid) -> ClientBuilder {
    ClientBuilder {
        id: Uuid::now_v7(),
        agency,
        name: "Client".into(),
        timezone: "UTC".into(),
        status: ClientStatus::Active,
        auto_approve: false,
    }
}

pub struct ClientBuilder {
    id: Uuid,
    agency: Uuid,
    name: String,
    timezone: String,
    status: ClientStatus,
    auto_approve: bool,
}

impl ClientBuilder {
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// An IANA name, e.g. `Europe/Berlin`.
    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }
    pub fn status(mut self, status: ClientStatus) -> Self {
        self.status = status;
        self
    }
    pub fn auto_approve(mut self, on: bool) -> Self {
        self.auto_approve = on;
        self
    }
    pub async fn insert<'c>(self, db: impl Acquire<'c, Database = Postgres>) -> Uuid {
        let mut conn = db.acquire().await.expect("a database connection");
        sqlx::query(
            "INSERT INTO clients (id, agency_id, name, timezone, status, auto_approve) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.id)
        .bind(self.agency)
        .bind(&self.name)
        .bind(&self.timezone)
        .bind(self.status)
        .bind(self.auto_approve)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("insert client {}: {e}", self.name));
        self.id
    }
}

/// An active sandbox account of `client` whose platform id is its own id, with a placeholder
/// (undecryptable) access token under key `k1`.
pub fn account(agency: Uuid, client: Uuid) -> AccountBuilder {
    let id = Uuid::now_v7();
    AccountBuilder {
        id,
        agency,
        client,
        platform: Platform::Sandbox,
        platform_account_id: id.to_string(),
        display_name: String::new(),
        access_token_ct: vec![0],
        refresh_token_ct: None,
        key_id: "k1".into(),
        token_expires_at: None,
        status: AccountStatus::Active,
        status_reason: None,
    }
}

pub struct AccountBuilder {
    id: Uuid,
    agency: Uuid,
    client: Uuid,
    platform: Platform,
    platform_account_id: String,
    display_name: String,
    access_token_ct: Vec<u8>,
    refresh_token_ct: Option<Vec<u8>>,
    key_id: String,
    token_expires_at: Option<DateTime<Utc>>,
    status: AccountStatus,
    status_reason: Option<String>,
}

impl AccountBuilder {
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }
    pub fn platform_account_id(mut self, id: impl Into<String>) -> Self {
        self.platform_account_id = id.into();
        self
    }
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }
    /// The stored ciphertexts and the key id they name (see `Vault`).
    pub fn tokens(mut self, access: Vec<u8>, refresh: Option<Vec<u8>>, key_id: &str) -> Self {
        self.access_token_ct = access;
        self.refresh_token_ct = refresh;
        self.key_id = key_id.into();
        self
    }
    pub fn token_expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.token_expires_at = Some(at);
        self
    }
    pub fn status(mut self, status: AccountStatus, reason: Option<&str>) -> Self {
        self.status = status;
        self.status_reason = reason.map(str::to_owned);
        self
    }
    pub async fn insert<'c>(self, db: impl Acquire<'c, Database = Postgres>) -> Uuid {
        let mut conn = db.acquire().await.expect("a database connection");
        sqlx::query(
            "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, display_name,
                                          access_token_ct, refresh_token_ct, key_id, token_expires_at, status, status_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(self.id)
        .bind(self.agency)
        .bind(self.client)
        .bind(self.platform)
        .bind(&self.platform_account_id)
        .bind(&self.display_name)
        .bind(&self.access_token_ct)
        .bind(&self.refresh_token_ct)
        .bind(&self.key_id)
        .bind(self.token_expires_at)
        .bind(self.status)
        .bind(&self.status_reason)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("insert account: {e}"));
        self.id
    }
}

/// A manual text item of `client`, pending review, due now, with an empty caption. An item in a
/// state that needs an approval time (approved, published, partially published) gets `now()`
/// unless [`ItemBuilder::approved_at`] says otherwise; a rejected one a reason.
pub fn item(agency: Uuid, client: Uuid) -> ItemBuilder {
    ItemBuilder {
        id: Uuid::now_v7(),
        agency,
        client,
        source: "manual",
        state: ItemState::PendingReview,
        slot_at: None,
        content_type: "text".into(),
        caption: String::new(),
        hashtags: Vec::new(),
        chosen_variant: None,
        cta: None,
        moderation_status: None,
        moderation: None,
        approved_at: None,
        rejection_reason: None,
        targets: Vec::new(),
    }
}

pub struct ItemBuilder {
    id: Uuid,
    agency: Uuid,
    client: Uuid,
    source: &'static str,
    state: ItemState,
    slot_at: Option<DateTime<Utc>>,
    content_type: String,
    caption: String,
    hashtags: Vec<String>,
    chosen_variant: Option<&'static str>,
    cta: Option<String>,
    moderation_status: Option<&'static str>,
    moderation: Option<Value>,
    approved_at: Option<DateTime<Utc>>,
    rejection_reason: Option<String>,
    targets: Vec<Uuid>,
}

impl ItemBuilder {
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }
    /// Made by the planner and generation rather than by a person.
    pub fn generated(mut self) -> Self {
        self.source = "generated";
        self
    }
    pub fn state(mut self, state: ItemState) -> Self {
        self.state = state;
        self
    }
    /// The slot it is planned for (default: the database's `now()`).
    pub fn slot_at(mut self, at: DateTime<Utc>) -> Self {
        self.slot_at = Some(at);
        self
    }
    /// `text`, `image` or `link`.
    pub fn content_type(mut self, kind: impl Into<String>) -> Self {
        self.content_type = kind.into();
        self
    }
    pub fn caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = caption.into();
        self
    }
    pub fn hashtags(mut self, tags: &[&str]) -> Self {
        self.hashtags = tags.iter().map(|t| (*t).to_owned()).collect();
        self
    }
    /// `conservative`, `balanced` or `bold`.
    pub fn chosen_variant(mut self, variant: &'static str) -> Self {
        self.chosen_variant = Some(variant);
        self
    }
    pub fn cta(mut self, cta: impl Into<String>) -> Self {
        self.cta = Some(cta.into());
        self
    }
    /// `pending`, `pass` or `blocked`, and the moderation document (`{"reasons": [...]}`).
    pub fn moderation(mut self, status: &'static str, moderation: Option<Value>) -> Self {
        self.moderation_status = Some(status);
        self.moderation = moderation;
        self
    }
    pub fn approved_at(mut self, at: DateTime<Utc>) -> Self {
        self.approved_at = Some(at);
        self
    }
    pub fn rejection_reason(mut self, reason: impl Into<String>) -> Self {
        self.rejection_reason = Some(reason.into());
        self
    }
    /// The accounts it is for (`content_item_targets`).
    pub fn targets(mut self, accounts: &[Uuid]) -> Self {
        self.targets = accounts.to_vec();
        self
    }
    pub async fn insert<'c>(self, db: impl Acquire<'c, Database = Postgres>) -> Uuid {
        let mut conn = db.acquire().await.expect("a database connection");
        let needs_approval = matches!(
            self.state,
            ItemState::Approved | ItemState::Published | ItemState::PartiallyPublished
        );
        let rejection = match (self.state, self.rejection_reason) {
            (ItemState::Rejected, None) => Some("rejected in a test".to_owned()),
            (_, reason) => reason,
        };
        sqlx::query(
            "INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, caption, hashtags,
                                        chosen_variant, cta, moderation_status, moderation, approved_at, rejection_reason)
             VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), $7, $8, $9, $10, $11, coalesce($12, 'pending'),
                     coalesce($13, '{}'::jsonb), coalesce($14, CASE WHEN $15 THEN now() END), $16)",
        )
        .bind(self.id)
        .bind(self.agency)
        .bind(self.client)
        .bind(self.source)
        .bind(self.state)
        .bind(self.slot_at)
        .bind(&self.content_type)
        .bind(&self.caption)
        .bind(&self.hashtags)
        .bind(self.chosen_variant)
        .bind(&self.cta)
        .bind(self.moderation_status)
        .bind(&self.moderation)
        .bind(self.approved_at)
        .bind(needs_approval)
        .bind(&rejection)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("insert content item: {e}"));
        for account in &self.targets {
            sqlx::query(
                "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
            )
            .bind(self.id)
            .bind(account)
            .bind(self.agency)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("insert content item target: {e}"));
        }
        self.id
    }
}

/// A scheduled sandbox publication of `item` on `account`, due now, with an empty snapshot.
/// The columns a state requires get defaults: published ones a post id and `published_at` (the
/// scheduled time), held ones a reason, publishing ones an attempt id and marker.
pub fn publication(agency: Uuid, client: Uuid, item: Uuid, account: Uuid) -> PublicationBuilder {
    PublicationBuilder {
        id: Uuid::now_v7(),
        agency,
        client,
        item,
        account,
        platform: Platform::Sandbox,
        state: PublicationState::Scheduled,
        scheduled_at: None,
        snapshot: Value::Object(Default::default()),
        attempt: None,
        platform_post_id: None,
        published_at: None,
        held_reason: None,
        last_error: None,
        updated_at: None,
    }
}

pub struct PublicationBuilder {
    id: Uuid,
    agency: Uuid,
    client: Uuid,
    item: Uuid,
    account: Uuid,
    platform: Platform,
    state: PublicationState,
    scheduled_at: Option<DateTime<Utc>>,
    snapshot: Value,
    attempt: Option<(Uuid, String)>,
    platform_post_id: Option<String>,
    published_at: Option<DateTime<Utc>>,
    held_reason: Option<String>,
    last_error: Option<String>,
    updated_at: Option<DateTime<Utc>>,
}

impl PublicationBuilder {
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }
    /// The account's platform.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }
    pub fn state(mut self, state: PublicationState) -> Self {
        self.state = state;
        self
    }
    /// Default: the database's `now()`.
    pub fn scheduled_at(mut self, at: DateTime<Utc>) -> Self {
        self.scheduled_at = Some(at);
        self
    }
    pub fn snapshot(mut self, snapshot: Value) -> Self {
        self.snapshot = snapshot;
        self
    }
    /// An attempt's id and the marker it put in the post.
    pub fn attempt(mut self, attempt_id: Uuid, marker: impl Into<String>) -> Self {
        self.attempt = Some((attempt_id, marker.into()));
        self
    }
    /// The platform's post id and when it was published (for the published state).
    pub fn published(mut self, post_id: impl Into<String>, at: DateTime<Utc>) -> Self {
        self.platform_post_id = Some(post_id.into());
        self.published_at = Some(at);
        self
    }
    pub fn held_reason(mut self, reason: impl Into<String>) -> Self {
        self.held_reason = Some(reason.into());
        self
    }
    pub fn last_error(mut self, error: impl Into<String>) -> Self {
        self.last_error = Some(error.into());
        self
    }
    /// When it last changed (default: `now()`).
    pub fn updated_at(mut self, at: DateTime<Utc>) -> Self {
        self.updated_at = Some(at);
        self
    }
    pub async fn insert<'c>(self, db: impl Acquire<'c, Database = Postgres>) -> Uuid {
        let mut conn = db.acquire().await.expect("a database connection");
        let published = self.state == PublicationState::Published;
        let post_id = match (published, self.platform_post_id) {
            (true, None) => Some(format!("post-{}", self.id)),
            (_, id) => id,
        };
        let held_reason = match (self.state, self.held_reason) {
            (PublicationState::Held, None) => Some("held in a test".to_owned()),
            (_, reason) => reason,
        };
        let (attempt_id, marker) = match (self.state, self.attempt) {
            (PublicationState::Publishing, None) => (
                Some(Uuid::new_v4()),
                Some(format!("test-{}", self.id.simple())),
            ),
            (_, Some((id, marker))) => (Some(id), Some(marker)),
            (_, None) => (None, None),
        };
        sqlx::query(
            "INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, state, scheduled_at, snapshot,
                                       attempt_id, marker, platform_post_id, published_at, held_reason, last_error, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9, $10, $11, $12,
                     CASE WHEN $12::text IS NOT NULL THEN coalesce($13, $8, now()) END, $14, $15, coalesce($16, now()))",
        )
        .bind(self.id)
        .bind(self.agency)
        .bind(self.client)
        .bind(self.item)
        .bind(self.account)
        .bind(self.platform)
        .bind(self.state)
        .bind(self.scheduled_at)
        .bind(&self.snapshot)
        .bind(attempt_id)
        .bind(&marker)
        .bind(&post_id)
        .bind(self.published_at)
        .bind(&held_reason)
        .bind(&self.last_error)
        .bind(self.updated_at)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("insert publication: {e}"));
        self.id
    }
}
