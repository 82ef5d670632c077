//! `/api/v1/items`: list (by client and state, newest first, cursor pages), create by hand,
//! read, approve and reject. Creating, approving and rejecting run the lifecycle's moves
//! (`autosocial_core::items`), the same the console's composer and review queue run, with the
//! console's moderation of a draft, so the table of allowed moves, moderation's verdict and the
//! audit entry are identical; the key is the audited actor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use autosocial_core::domain::{ItemState, Platform};
use autosocial_core::items::{self as lifecycle, ApproveError, ApproveFailure, Failure, Refusal};

use super::auth::{Caller, ReviewerKey, ViewerKey};
use super::doc::{Hashtag, ItemStateValue, ReadErrors, VariantValue, WriteErrors};
use super::input::{Cursor, IdPath, JsonBody, QueryParams, json, json_with_etag};
use super::problem::{ApiError, ApiResult, FieldError, Problem};
use crate::app::AppState;

/// The caption variants a generated item offers.
const VARIANTS: [&str; 3] = ["conservative", "balanced", "bold"];

/// An account an item is to be published on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Target {
    pub account_id: Uuid,
    #[schema(value_type = String, example = "instagram")]
    pub platform: Platform,
}

/// A content item: a post for one slot, on one or more of the client's accounts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Item {
    pub id: Uuid,
    pub client_id: Uuid,
    /// planned, generating, pending_review, approved, rejected, published,
    /// partially_published, failed or cancelled.
    #[schema(value_type = ItemStateValue)]
    pub state: ItemState,
    /// `generated` or `manual`.
    pub source: String,
    /// `text`, `image` or `link`.
    pub content_type: String,
    pub slot_at: DateTime<Utc>,
    pub caption: String,
    pub hashtags: Vec<String>,
    pub cta: Option<String>,
    pub link_url: Option<String>,
    pub chosen_variant: Option<String>,
    /// `pending`, `pass` or `blocked` (a blocked item cannot be approved).
    pub moderation_status: String,
    pub rejection_reason: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub targets: Vec<Target>,
}

/// A page of items, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    pub data: Vec<Item>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Approve an item waiting for review, optionally choosing one of its caption variants.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    #[schema(value_type = Option<VariantValue>)]
    pub variant: Option<String>,
}

/// A post written by hand: it waits for review like one written in the console's composer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub client_id: Uuid,
    /// The client's connected accounts to post to.
    #[schema(min_items = 1, max_items = 50)]
    pub accounts: Vec<Uuid>,
    /// When it goes out once approved (at most a minute in the past, before 2200).
    pub slot_at: DateTime<Utc>,
    #[schema(
        min_length = 1,
        max_length = 63206,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub caption: String,
    /// With or without `#`; at most 100, of at most 100 characters.
    #[schema(max_items = 100, value_type = Option<Vec<Hashtag>>)]
    pub hashtags: Option<Vec<String>>,
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    pub cta: Option<String>,
    /// An http(s) link: the item is then a link post.
    #[schema(max_length = 2000, pattern = r"^https?://[^\s/?#\u0000]+")]
    pub link_url: Option<String>,
    /// An image uploaded for this client (`POST /api/v1/clients/{id}/media`): the item is then
    /// an image post.
    pub media_id: Option<Uuid>,
}

/// Reject an item waiting for review; the reason is kept with it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub reason: String,
}

/// The start of the statement [`load`] and [`list`] share: an item's columns and its targets,
/// a row each (read by [`items_of_rows`]), from the items of an agency (bound next) that the
/// caller's further conditions on `content_items` select; [`ITEMS_TARGETS`] closes it.
const ITEMS_SELECT: &str = "SELECT i.id, i.client_id, i.state, i.source, i.content_type, i.slot_at, i.caption,
        i.hashtags, i.cta, i.link_url, i.chosen_variant, i.moderation_status, i.rejection_reason,
        i.approved_at, i.created_at, i.updated_at, a.id AS target_account, a.platform AS target_platform
    FROM (SELECT * FROM content_items WHERE agency_id = ";

/// The end of [`ITEMS_SELECT`]: the targets joined to the items selected.
const ITEMS_TARGETS: &str = ") i
    LEFT JOIN content_item_targets ct ON ct.item_id = i.id AND ct.agency_id = i.agency_id
    LEFT JOIN social_accounts a ON a.id = ct.account_id AND a.agency_id = ct.agency_id";

/// [`ITEMS_SELECT`] for `agency`, limited to the clients of `scope` when given.
fn items_query(
    agency: Uuid,
    scope: Option<&[Uuid]>,
) -> sqlx::QueryBuilder<'static, sqlx::Postgres> {
    let mut q = sqlx::QueryBuilder::new(ITEMS_SELECT);
    q.push_bind(agency);
    if let Some(scope) = scope {
        q.push(" AND client_id = ANY(")
            .push_bind(scope.to_vec())
            .push(")");
    }
    q
}

/// One item of the key's agency, of a client the key reaches.
pub(super) async fn load(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    scope: Option<&[Uuid]>,
    id: Uuid,
) -> sqlx::Result<Option<Item>> {
    let mut q = items_query(agency, scope);
    q.push(" AND id = ").push_bind(id).push(ITEMS_TARGETS);
    let rows = q.build().fetch_all(conn).await?;
    Ok(items_of_rows(&rows)?.into_iter().next())
}

/// Items from rows of the list's statement: an item's rows are adjacent, one per target (a
/// row with no target when it has none); targets in the order of [`load`].
fn items_of_rows(rows: &[sqlx::postgres::PgRow]) -> sqlx::Result<Vec<Item>> {
    use sqlx::Row as _;
    let mut items: Vec<Item> = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.try_get("id")?;
        let target = match r.try_get::<Option<Uuid>, _>("target_account")? {
            Some(account_id) => Some(Target {
                account_id,
                platform: r.try_get("target_platform")?,
            }),
            None => None,
        };
        if let Some(last) = items.last_mut().filter(|i| i.id == id) {
            last.targets.extend(target);
            continue;
        }
        items.push(Item {
            id,
            client_id: r.try_get("client_id")?,
            state: r.try_get("state")?,
            source: r.try_get("source")?,
            content_type: r.try_get("content_type")?,
            slot_at: r.try_get("slot_at")?,
            caption: r.try_get("caption")?,
            hashtags: r.try_get("hashtags")?,
            cta: r.try_get("cta")?,
            link_url: r.try_get("link_url")?,
            chosen_variant: r.try_get("chosen_variant")?,
            moderation_status: r.try_get("moderation_status")?,
            rejection_reason: r.try_get("rejection_reason")?,
            approved_at: r.try_get("approved_at")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            targets: target.into_iter().collect(),
        });
    }
    for i in &mut items {
        sort_targets(&mut i.targets);
    }
    Ok(items)
}

/// An account named in a new item.
struct FoundAccount {
    id: Uuid,
    client_id: Uuid,
    status: String,
    platform: Platform,
}

/// Targets in the order [`load`] gives them: by platform name, then account.
fn sort_targets(targets: &mut [Target]) {
    targets.sort_by(|a, b| {
        (a.platform.as_str(), a.account_id).cmp(&(b.platform.as_str(), b.account_id))
    });
}

/// List the items of the clients the key reaches, newest first.
#[utoipa::path(get, path = "/api/v1/items", operation_id = "list_items", tag = "items",
    params(
        ("client" = Option<Uuid>, Query, description = "Only this client's items"),
        ("state" = Option<ItemStateValue>, Query, description = "Only items in this state, e.g. pending_review"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Only items whose slot is at or after this RFC 3339 date-time"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Only items whose slot is before this RFC 3339 date-time"),
        ("limit" = Option<i64>, Query, description = "1 to 100 (default 50)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page", min_length = 1),
    ),
    responses(
        (status = 200, description = "A page of items", body = ItemList),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    key: ViewerKey,
    q: QueryParams,
) -> ApiResult<Response> {
    q.check(&["client", "state", "from", "to", "limit", "cursor"])?;
    let from = q.time("from")?;
    let to = q.time("to")?;
    let limit = q.limit(50, 100)?;
    let cursor = Cursor::from_query(&q)?;
    let client = q.uuid("client")?;
    let item_state = q
        .get("state")
        .map(|s| {
            s.parse::<ItemState>().map_err(|_| {
                let all: Vec<&str> = ItemState::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::malformed_field("state", format!("Expected one of {}.", all.join(", ")))
            })
        })
        .transpose()?;
    // Only the filters given are in the statement, and the limit is written into it: each
    // combination is its own prepared statement whose generic plan walks the newest-first
    // index (a `$n IS NULL OR …` filter or a `LIMIT $n` would be planned afresh each time, and
    // a generic plan of either reads the whole table). The targets are one row each, joined,
    // rather than aggregated per item: a sort per row cost more than everything else.
    let mut q = items_query(key.key.agency_id, key.key.clients.as_deref());
    if let Some(client) = client {
        q.push(" AND client_id = ").push_bind(client);
    }
    if let Some(s) = item_state {
        q.push(" AND state = ").push_bind(s.as_str());
    }
    if let Some(c) = cursor {
        q.push(" AND (created_at, id) < (")
            .push_bind(c.created_at)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    if let Some(from) = from {
        q.push(" AND slot_at >= ").push_bind(from);
    }
    if let Some(to) = to {
        q.push(" AND slot_at < ").push_bind(to);
    }
    // `limit` was checked to be 1 to 100
    q.push(format_args!(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        limit + 1
    ))
    .push(ITEMS_TARGETS)
    .push(" ORDER BY i.created_at DESC, i.id DESC");
    let rows = q.build().fetch_all(&state.pool).await?;
    let data = items_of_rows(&rows)?;
    let (data, next_cursor) = Cursor::page(data, limit, |i| Cursor {
        created_at: i.created_at,
        id: i.id,
    });
    Ok(json(StatusCode::OK, &ItemList { data, next_cursor }))
}

/// One item, with its `ETag`.
#[utoipa::path(get, path = "/api/v1/items/{id}", operation_id = "get_item", tag = "items",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The item", body = Item, headers(("ETag" = String))),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
    ),
    security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    key: ViewerKey,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let item = load(
        &state.pool,
        key.key.agency_id,
        key.key.clients.as_deref(),
        id,
    )
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

/// Create a post by hand for review (text, link or an uploaded image; moderation as in the
/// composer).
#[utoipa::path(post, path = "/api/v1/items", operation_id = "create_item", tag = "items",
    request_body = NewItem,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 201, description = "Created, waiting for review", body = Item, headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such client or account for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    key: ReviewerKey,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let client: Option<Uuid> = body.take("client_id", "a UUID");
    let accounts: Option<Vec<Uuid>> = body.take("accounts", "an array of account ids (UUIDs)");
    let slot_at: Option<DateTime<Utc>> = body.take("slot_at", "an RFC 3339 date-time");
    let caption: Option<String> = body.take("caption", "a string");
    let hashtags: Option<Vec<String>> = body.take("hashtags", "an array of strings");
    let cta: Option<String> = body.take("cta", "a string");
    let link: Option<String> = body.take("link_url", "a string");
    let media: Option<Uuid> = body.take("media_id", "a UUID");
    let nul = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains('\0'));
    if client.is_none() {
        body.error("client_id", "Name the client the post is for.");
    }
    let caption = caption.map(|c| c.trim_end().to_owned()).unwrap_or_default();
    if caption.trim().is_empty() {
        body.error("caption", "Write the caption.");
    } else if caption.chars().count() > 63_206 {
        body.error("caption", "Use at most 63,206 characters.");
    } else if caption.contains('\0') {
        body.error("caption", "The caption cannot contain a NUL character.");
    }
    let hashtags = hashtags.unwrap_or_default();
    if hashtags
        .iter()
        .any(|h| h.contains('\0') || h.chars().count() > 100)
        || hashtags.len() > 100
    {
        body.error(
            "hashtags",
            "Use at most 100 hashtags of at most 100 characters.",
        );
    }
    let hashtags = crate::pages::items::parse_hashtags(&hashtags.join(" "));
    let cta = cta.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
    if cta.as_ref().is_some_and(|c| c.chars().count() > 500) || nul(&cta) {
        body.error(
            "cta",
            "Use at most 500 characters, without a NUL character.",
        );
    }
    let link = match link.as_deref().map(crate::pages::items::parse_link) {
        None => None,
        Some(Ok(l)) if !nul(&l) => l,
        Some(Ok(_)) => {
            body.error("link_url", "The link cannot contain a NUL character.");
            None
        }
        Some(Err(m)) => {
            body.error("link_url", m);
            None
        }
    };
    let now = Utc::now();
    match slot_at {
        None => body.error("slot_at", "Say when the post goes out (RFC 3339)."),
        Some(at) if at < now - lifecycle::RESCHEDULE_GRACE => body.error(
            "slot_at",
            "That time has passed. Choose a time in the future.",
        ),
        Some(at) if at.timestamp() > 7_258_118_399 => {
            body.error("slot_at", "Choose a time before 2200.")
        }
        Some(_) => {}
    }
    let accounts = accounts.unwrap_or_default();
    if accounts.is_empty() {
        body.error("accounts", "Pick at least one account to post to.");
    } else if accounts.len() > 50 {
        body.error("accounts", "Pick at most 50 accounts.");
    }
    let agency = key.key.agency_id;
    // a client or account the key does not reach is not found, before any field message
    let Some(client) = client else {
        return Err(body.finish().err().unwrap_or_else(ApiError::not_found));
    };
    if !key.key.reaches(client) {
        return Err(ApiError::not_found());
    }
    // one statement: the client's banned terms (the row with no account; none: not the
    // agency's client), and the accounts
    let rows = sqlx::query!(
        r#"SELECT NULL::uuid AS "id?", NULL::uuid AS "client_id?", NULL::text AS "status?",
                  NULL::text AS "platform?: Platform", coalesce(b.banned_terms, '{}') AS "banned_terms?"
           FROM clients c LEFT JOIN brand_settings b ON b.client_id = c.id AND b.agency_id = c.agency_id
           WHERE c.id = $3 AND c.agency_id = $1
           UNION ALL
           SELECT a.id, a.client_id, a.status, a.platform, NULL::text[]
           FROM social_accounts a WHERE a.agency_id = $1 AND a.id = ANY($2)"#,
        agency,
        &accounts,
        client
    )
    .fetch_all(&state.pool)
    .await?;
    let banned_terms: Option<Vec<String>> = rows
        .iter()
        .find(|r| r.id.is_none())
        .map(|r| r.banned_terms.clone().unwrap_or_default());
    let client_exists = banned_terms.is_some();
    let found: Vec<FoundAccount> = rows
        .into_iter()
        .filter_map(|r| {
            Some(FoundAccount {
                id: r.id?,
                client_id: r.client_id?,
                status: r.status?,
                platform: r.platform?,
            })
        })
        .collect();
    if !client_exists || found.iter().any(|a| !key.key.reaches(a.client_id)) {
        return Err(ApiError::not_found());
    }
    let mut distinct = accounts.clone();
    distinct.sort();
    distinct.dedup();
    if found.len() != distinct.len() {
        return Err(ApiError::not_found());
    }
    if found
        .iter()
        .any(|a| a.client_id != client || a.status != "active")
    {
        body.error(
            "accounts",
            "Every account must be a connected (active) account of this client.",
        );
    }
    let upload = match media {
        Some(m) => {
            let u = crate::pages::composer::uploaded(&state, agency, client, m).await?;
            if u.is_none() {
                body.error(
                    "media_id",
                    "No image of this client has this id: upload it with POST /api/v1/clients/{id}/media.",
                );
            }
            u
        }
        None => None,
    };
    body.finish()?;
    let Some(slot_at) = slot_at else {
        return Err(ApiError::validation(vec![FieldError::new(
            "slot_at",
            "Say when the post goes out.",
        )]));
    };
    let mut platforms: Vec<Platform> = found.iter().map(|a| a.platform).collect();
    platforms.sort();
    platforms.dedup();
    let verdict = crate::pages::items::moderate_with(
        &platforms,
        &crate::pages::items::Draft {
            caption: &caption,
            cta: cta.as_deref(),
            hashtags: &hashtags,
            link: link.as_deref(),
        },
        banned_terms.as_deref().unwrap_or_default(),
    );
    let id = Uuid::now_v7();
    let content_type = if upload.is_some() {
        "image"
    } else if link.is_some() {
        "link"
    } else {
        "text"
    };
    let moderation_status = if verdict.passed() { "pass" } else { "blocked" };
    let mut tx = state.pool.begin().await?;
    let stored = lifecycle::create(
        &mut tx,
        &key.actor(),
        agency,
        &lifecycle::Composed {
            id,
            client,
            slot_at,
            content_type,
            caption: &caption,
            hashtags: &hashtags,
            cta: cta.as_deref(),
            link: link.as_deref(),
            moderation_status,
            moderation: verdict.to_json(),
            accounts: &distinct,
            approve: false,
        },
    )
    .await?;
    if let Some(u) = &upload {
        // as the composer attaches an uploaded image
        sqlx::query!(
            "INSERT INTO content_item_media (item_id, media_id, agency_id, size_label) VALUES ($1, $2, $3, 'upload')",
            id,
            u.id,
            agency
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // the item as `load` would read it (the slot as stored, to the microsecond), without
    // reading it: the audit entry's lock is held until the commit, and every statement before
    // the commit keeps the agency's other writers waiting
    let mut targets: Vec<Target> = found
        .iter()
        .map(|a| Target {
            account_id: a.id,
            platform: a.platform,
        })
        .collect();
    sort_targets(&mut targets);
    let item = Item {
        id,
        client_id: client,
        state: lifecycle::ItemMove::Create.to()[0],
        source: "manual".into(),
        content_type: content_type.into(),
        slot_at: stored.slot_at,
        caption,
        hashtags,
        cta,
        link_url: link,
        chosen_variant: None,
        moderation_status: moderation_status.into(),
        rejection_reason: None,
        approved_at: None,
        created_at: stored.created_at,
        updated_at: stored.created_at,
        targets,
    };
    let mut r = json_with_etag(StatusCode::CREATED, &item);
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("/api/v1/items/{id}")) {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(r)
}

/// 404 unless the item is the agency's and of a client the key reaches.
pub(super) async fn reachable(
    conn: impl PgExecutor<'_>,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<()> {
    let found = sqlx::query_scalar!(
        "SELECT client_id FROM content_items WHERE id = $1 AND agency_id = $2",
        id,
        caller.key.agency_id
    )
    .fetch_optional(conn)
    .await?;
    match found {
        Some(client) if caller.key.reaches(client) => Ok(()),
        _ => Err(ApiError::not_found()),
    }
}

/// The lifecycle's refusal of an approval, as a problem.
fn approve_refused(e: ApproveFailure) -> ApiError {
    match e {
        ApproveFailure::Refused(ApproveError::NotFound) => ApiError::not_found(),
        ApproveFailure::Refused(ApproveError::NoVariant(v)) => {
            ApiError::validation(vec![FieldError::new(
                "variant",
                format!("This item has no variant “{v}”."),
            )])
        }
        ApproveFailure::Refused(e @ ApproveError::WrongState(_)) => {
            ApiError::invalid_state(crate::pages::items::approve_message(&e))
        }
        ApproveFailure::Refused(e) => {
            ApiError::invalid_state(crate::pages::items::approve_message(&e))
        }
        ApproveFailure::Database(e) => e.into(),
    }
}

pub(super) fn move_refused(e: Failure) -> ApiError {
    match e {
        Failure::Refused(Refusal::NotFound) => ApiError::not_found(),
        Failure::Refused(r) => ApiError::invalid_state(r.to_string()),
        Failure::Database(e) => e.into(),
    }
}

/// Approve an item waiting for review: its posts are scheduled, one per target account.
#[utoipa::path(post, path = "/api/v1/items/{id}/approve", operation_id = "approve_item", tag = "items",
    request_body(content = Option<Approval>, description = "Optional: the body may be empty"),
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Approved; the item as it is now", body = Item, headers(("ETag" = String))),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let variant: Option<String> = body.take("variant", "a string");
    if variant.as_deref().is_some_and(|v| !VARIANTS.contains(&v)) {
        body.error("variant", "Expected conservative, balanced or bold.");
    }
    // an item the key does not reach is not found, before any field message
    reachable(&state.pool, &key, id).await?;
    body.finish()?;
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    lifecycle::approve(&mut tx, &key.actor(), agency, id, variant.as_deref())
        .await
        .map_err(approve_refused)?;
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}

/// Reject an item waiting for review, with the reason.
#[utoipa::path(post, path = "/api/v1/items/{id}/reject", operation_id = "reject_item", tag = "items",
    request_body = Rejection,
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h", min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 200, description = "Rejected; the item as it is now", body = Item, headers(("ETag" = String))),
        (status = 404, description = "No such item for this key", body = Problem, content_type = "application/problem+json"),
        WriteErrors,
    ),
    security(("api_key" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    key: ReviewerKey,
    IdPath(id): IdPath,
    mut body: JsonBody,
) -> ApiResult<Response> {
    let reason: Option<String> = body.take("reason", "a string");
    let reason = reason
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if reason.is_empty() {
        body.error(
            "reason",
            "Say why it is rejected: the reason is kept with the item.",
        );
    } else if reason.chars().count() > 2000 {
        body.error("reason", "Use at most 2000 characters.");
    } else if reason.contains('\0') {
        body.error("reason", "The reason cannot contain a NUL character.");
    }
    // an item the key does not reach is not found, before any field message
    reachable(&state.pool, &key, id).await?;
    body.finish()?;
    let agency = key.key.agency_id;
    let mut tx = state.pool.begin().await?;
    lifecycle::reject(&mut tx, &key.actor(), agency, id, &reason)
        .await
        .map_err(move_refused)?;
    let item = load(&mut *tx, agency, None, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(json_with_etag(StatusCode::OK, &item))
}
