//! The content item's moves (the table is in the module docs of [`crate::items`]).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Failure, ItemMove, Refusal, publications};
use crate::audit::{self, Actor, Entry};
use crate::domain::ItemState;
use crate::queue;
use crate::webhooks::{self, EventType};

/// Tell the agency's webhook endpoints about an item, in the change's transaction.
async fn tell(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Uuid,
    item: Uuid,
    event: EventType,
    mut data: Value,
) -> sqlx::Result<()> {
    if let Value::Object(m) = &mut data {
        m.insert("item_id".into(), json!(item));
        m.insert("client_id".into(), json!(client));
    }
    webhooks::emit(conn, Some(agency), event, data).await?;
    Ok(())
}

/// The current state of an item of `agency`, if it exists.
pub async fn state_of(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    item: Uuid,
) -> sqlx::Result<Option<ItemState>> {
    sqlx::query_scalar!(
        r#"SELECT state AS "state: ItemState" FROM content_items WHERE id = $1 AND agency_id = $2"#,
        item,
        agency
    )
    .fetch_optional(conn)
    .await
}

/// The refusal for an item that did not make `wanted`: gone, or in a state the table refuses.
/// (`None` when the row allows the move now: it changed between the write and this read.)
async fn refusal(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    item: Uuid,
    wanted: ItemMove,
) -> sqlx::Result<Refusal> {
    Ok(match state_of(conn, agency, item).await? {
        None => Refusal::NotFound,
        Some(state) => Refusal::ItemState { state, wanted },
    })
}

/// A slot the planner fills: one item per slot and rule, with its target accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSlot {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub slot_at: DateTime<Utc>,
    /// The rule's nominal time for the slot (unique per rule).
    pub planned_for: DateTime<Utc>,
    pub content_type: String,
    pub accounts: Vec<Uuid>,
}

/// `plan`: insert planned items (a slot a rule already planned is skipped) with their targets.
/// Returns the ids created.
pub async fn plan(
    conn: &mut PgConnection,
    agency: Uuid,
    client: Uuid,
    slots: &[PlannedSlot],
) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = slots.iter().map(|s| s.id).collect();
    let rules: Vec<Uuid> = slots.iter().map(|s| s.rule_id).collect();
    let at: Vec<DateTime<Utc>> = slots.iter().map(|s| s.slot_at).collect();
    let nominal: Vec<DateTime<Utc>> = slots.iter().map(|s| s.planned_for).collect();
    let types: Vec<&str> = slots.iter().map(|s| s.content_type.as_str()).collect();
    let (mut target_items, mut target_accounts) = (Vec::new(), Vec::new());
    for s in slots {
        for a in &s.accounts {
            target_items.push(s.id);
            target_accounts.push(*a);
        }
    }
    let created: Vec<Uuid> = sqlx::query_scalar!(
        r#"INSERT INTO content_items (id, agency_id, client_id, rule_id, source, state, slot_at, planned_for, content_type)
           SELECT id, $1, $2, rule_id, 'generated', $8, slot_at, planned_for, content_type
           FROM unnest($3::uuid[], $4::uuid[], $5::timestamptz[], $6::timestamptz[], $7::text[])
                AS t(id, rule_id, slot_at, planned_for, content_type)
           ON CONFLICT DO NOTHING
           RETURNING id"#,
        agency,
        client,
        &ids,
        &rules,
        &at,
        &nominal,
        &types as &[&str],
        ItemMove::Plan.to()[0].as_str()
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO content_item_targets (item_id, account_id, agency_id)
         SELECT item_id, account_id, $3 FROM unnest($1::uuid[], $2::uuid[]) AS t(item_id, account_id)
         WHERE item_id = ANY($4)",
        &target_items,
        &target_accounts,
        agency,
        &created
    )
    .execute(&mut *conn)
    .await?;
    Ok(created)
}

/// A post written by a person in the composer.
#[derive(Debug, Clone)]
pub struct Composed<'a> {
    pub id: Uuid,
    pub client: Uuid,
    pub slot_at: DateTime<Utc>,
    pub content_type: &'a str,
    pub caption: &'a str,
    pub hashtags: &'a [String],
    pub cta: Option<&'a str>,
    pub link: Option<&'a str>,
    /// `pass` or `blocked`.
    pub moderation_status: &'a str,
    pub moderation: Value,
    pub accounts: &'a [Uuid],
    /// Whether the author approves it at once (recorded with the entry; the caller approves).
    pub approve: bool,
}

/// What Postgres stored of a [`Composed`] post that it did not get as given.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    /// Also its `updated_at`.
    pub created_at: DateTime<Utc>,
    /// The slot as stored: to the microsecond.
    pub slot_at: DateTime<Utc>,
}

/// `create`: a composed post waits for review, with its targets and its audit entry.
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    c: &Composed<'_>,
) -> sqlx::Result<Stored> {
    // the item and its targets in one statement (the targets' foreign key is checked at its end)
    let stored = sqlx::query_as!(
        Stored,
        r#"WITH item AS (
               INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, caption,
                                          hashtags, cta, link_url, moderation_status, moderation, created_by,
                                          created_at, updated_at)
               VALUES ($1, $2, $3, 'manual', $13, $4, $5, $6, $7, $8, $9, $10, $11, $12, now(), now())
               RETURNING created_at, slot_at),
           targets AS (
               INSERT INTO content_item_targets (item_id, account_id, agency_id)
               SELECT $1, a, $2 FROM unnest($14::uuid[]) a)
           SELECT created_at AS "created_at!", slot_at AS "slot_at!" FROM item"#,
        c.id,
        agency,
        c.client,
        c.slot_at,
        c.content_type,
        c.caption,
        c.hashtags,
        c.cta,
        c.link,
        c.moderation_status,
        c.moderation,
        actor.user_id,
        ItemMove::Create.to()[0].as_str(),
        c.accounts
    )
    .fetch_one(&mut *conn)
    .await?;
    tell(
        &mut *conn,
        agency,
        c.client,
        c.id,
        EventType::ItemCreated,
        json!({ "source": "manual", "state": ItemMove::Create.to()[0].as_str(), "account_ids": c.accounts }),
    )
    .await?;
    // last: the audit chain's lock is held from here to the commit
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "item.create")
            .target("content_item", c.id)
            .details(json!({
                "client": c.client,
                "source": "manual",
                "accounts": c.accounts,
                "moderation": c.moderation_status,
                "approve": c.approve,
            })),
    )
    .await?;
    Ok(stored)
}

/// An item claimed for generation.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub client_id: Uuid,
    pub rule_id: Option<Uuid>,
    pub slot_at: DateTime<Utc>,
    pub content_type: String,
    pub link_url: Option<String>,
}

/// `claim`: take a planned item (or one an interrupted run left generating) for generation.
/// `None`: already generated, cancelled or gone.
pub async fn claim(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    item: Uuid,
) -> sqlx::Result<Option<Claimed>> {
    let row = sqlx::query!(
        "UPDATE content_items SET state = 'generating', updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = ANY($3)
         RETURNING client_id, rule_id, slot_at, content_type, link_url",
        item,
        agency,
        &ItemMove::Claim.allowed() as &[&str]
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Claimed {
        client_id: r.client_id,
        rule_id: r.rule_id,
        slot_at: r.slot_at,
        content_type: r.content_type,
        link_url: r.link_url,
    }))
}

/// `release`: generation gave up for now; the item is `planned` again with the reason (only
/// while a run still holds it).
pub async fn release(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    item: Uuid,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE content_items SET state = 'planned', generation_error = left($3, 2000), updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = ANY($4)",
        item,
        agency,
        reason,
        &ItemMove::Release.allowed() as &[&str]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Lock an item a generation run holds, for writing its result. `false`: it changed meanwhile.
pub async fn lock_generating(
    conn: &mut PgConnection,
    agency: Uuid,
    item: Uuid,
) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM content_items WHERE id = $1 AND agency_id = $2 AND state = ANY($3) FOR UPDATE",
        item,
        agency,
        &ItemMove::ToReview.allowed() as &[&str]
    )
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// What generation produced for an item.
#[derive(Debug, Clone)]
pub struct Generated<'a> {
    pub pillar: &'a str,
    pub chosen_variant: &'a str,
    pub caption: &'a str,
    pub hashtags: &'a [String],
    pub cta: Option<&'a str>,
    /// Whether moderation passed the chosen variant.
    pub passed: bool,
    pub moderation: Value,
    pub generator: &'a str,
    /// The client approves automatically what passes moderation.
    pub auto_approve: bool,
}

/// `to_review` or `auto_approve`: the generated item waits for review, or, when its client
/// approves automatically and moderation passed, is approved by the system (with an audit entry,
/// as a reviewer's approval has) and its publications are scheduled. Returns the new state.
pub async fn generated(
    conn: &mut PgConnection,
    agency: Uuid,
    item: Uuid,
    g: &Generated<'_>,
) -> Result<ItemState, Failure> {
    let approve = g.auto_approve && g.passed;
    let wanted = if approve {
        ItemMove::AutoApprove
    } else {
        ItemMove::ToReview
    };
    let state = wanted.to()[0];
    let done = sqlx::query_scalar!(
        "UPDATE content_items SET state = $3, pillar = $4, chosen_variant = $5, caption = $6, hashtags = $7, cta = $8,
                moderation_status = $9, moderation = $10, generator = $11, generation_error = NULL,
                approved_at = CASE WHEN $3 = 'approved' THEN now() END, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = ANY($12)
         RETURNING client_id",
        item,
        agency,
        state.as_str(),
        g.pillar,
        g.chosen_variant,
        g.caption,
        g.hashtags,
        g.cta,
        if g.passed { "pass" } else { "blocked" },
        g.moderation,
        g.generator,
        &wanted.allowed() as &[&str]
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(client) = done else {
        return Err(refusal(&mut *conn, agency, item, wanted).await?.into());
    };
    tell(
        conn,
        agency,
        client,
        item,
        EventType::ItemCreated,
        json!({ "source": "generated", "state": state.as_str(), "moderation": if g.passed { "pass" } else { "blocked" } }),
    )
    .await?;
    if approve {
        let n = publications::schedule(conn, agency, item).await?;
        audit::append(
            conn,
            &Actor::system("auto-approve"),
            Entry::new(Some(agency), "item.approve")
                .target("content_item", item)
                .details(json!({ "auto": true, "publications": n })),
        )
        .await?;
        tell(
            conn,
            agency,
            client,
            item,
            EventType::ItemApproved,
            json!({ "auto": true, "publications": n }),
        )
        .await?;
    }
    Ok(state)
}

/// Why an item cannot be approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    #[error("no such item")]
    NotFound,
    #[error("the item is {0}; only items pending review can be approved")]
    WrongState(String),
    #[error("moderation blocked this item; edit it first")]
    Blocked,
    #[error("the item has no target accounts")]
    NoTargets,
    #[error("no such variant: {0}")]
    NoVariant(String),
}

/// An approval refused for a reason a person can act on, or a database failure.
#[derive(Debug, thiserror::Error)]
pub enum ApproveFailure {
    #[error(transparent)]
    Refused(#[from] ApproveError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// `approve`: approve an item waiting for review (optionally choosing a variant), schedule its
/// publications and write the audit entry, in the caller's transaction. Returns how many
/// publications were scheduled.
pub async fn approve(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    item: Uuid,
    variant: Option<&str>,
) -> Result<usize, ApproveFailure> {
    let Some(row) = sqlx::query!(
        r#"SELECT state AS "state: ItemState", moderation_status, client_id FROM content_items WHERE id = $1 AND agency_id = $2 FOR UPDATE"#,
        item,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Err(ApproveError::NotFound.into());
    };
    if !ItemMove::Approve.allows(row.state) {
        return Err(ApproveError::WrongState(row.state.as_str().to_owned()).into());
    }
    if let Some(kind) = variant {
        let chosen = sqlx::query!(
            "UPDATE content_items i SET chosen_variant = v.kind, caption = v.caption, hashtags = v.hashtags, cta = v.cta,
                    moderation_status = v.moderation_status, moderation = v.moderation, updated_at = now()
             FROM content_variants v
             WHERE i.id = $1 AND v.item_id = i.id AND v.kind = $2
             RETURNING i.moderation_status",
            item,
            kind
        )
        .fetch_optional(&mut *conn)
        .await?;
        match chosen {
            None => return Err(ApproveError::NoVariant(kind.to_owned()).into()),
            Some(c) if c.moderation_status == "blocked" => {
                return Err(ApproveError::Blocked.into());
            }
            Some(_) => {}
        }
    } else if row.moderation_status == "blocked" {
        return Err(ApproveError::Blocked.into());
    }
    sqlx::query!(
        "UPDATE content_items SET state = $3, approved_by = $2, approved_at = now(), updated_at = now() WHERE id = $1",
        item,
        actor.user_id,
        ItemMove::Approve.to()[0].as_str()
    )
    .execute(&mut *conn)
    .await?;
    let n = publications::schedule(conn, agency, item).await?;
    if n == 0 {
        return Err(ApproveError::NoTargets.into());
    }
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "item.approve")
            .target("content_item", item)
            .details(json!({ "variant": variant, "publications": n })),
    )
    .await?;
    tell(
        conn,
        agency,
        row.client_id,
        item,
        EventType::ItemApproved,
        json!({ "auto": false, "variant": variant, "publications": n }),
    )
    .await?;
    Ok(n)
}

/// `reject`: an item waiting for review is rejected with the reason kept.
pub async fn reject(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    item: Uuid,
    reason: &str,
) -> Result<(), Failure> {
    let done = sqlx::query_scalar!(
        "UPDATE content_items SET state = 'rejected', rejection_reason = $3, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = ANY($4)
         RETURNING client_id",
        item,
        agency,
        reason,
        &ItemMove::Reject.allowed() as &[&str]
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(client) = done else {
        return Err(refusal(&mut *conn, agency, item, ItemMove::Reject)
            .await?
            .into());
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "item.reject")
            .target("content_item", item)
            .details(json!({ "reason": reason })),
    )
    .await?;
    tell(
        conn,
        agency,
        client,
        item,
        EventType::ItemRejected,
        json!({ "reason": reason }),
    )
    .await?;
    Ok(())
}

/// New text for an item, already moderated.
#[derive(Debug, Clone)]
pub struct Edit<'a> {
    pub caption: &'a str,
    pub hashtags: &'a [String],
    pub cta: Option<&'a str>,
    pub link: Option<&'a str>,
    /// `pass` or `blocked`.
    pub moderation_status: &'a str,
    pub moderation: Value,
}

/// `edit`: save an item's text; an approved item's publications that have not gone out get the
/// new snapshot. Returns how many publications were updated.
pub async fn edit(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    item: Uuid,
    e: &Edit<'_>,
) -> Result<usize, Failure> {
    let updated = sqlx::query_scalar!(
        r#"UPDATE content_items SET caption = $3, hashtags = $4, cta = $5, link_url = $6, chosen_variant = NULL,
                  moderation_status = $7, moderation = $8, updated_at = now()
           WHERE id = $1 AND agency_id = $2 AND state = ANY($9) RETURNING state AS "state: ItemState""#,
        item,
        agency,
        e.caption,
        e.hashtags,
        e.cta,
        e.link,
        e.moderation_status,
        e.moderation,
        &ItemMove::Edit.allowed() as &[&str]
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(state) = updated else {
        return Err(refusal(&mut *conn, agency, item, ItemMove::Edit)
            .await?
            .into());
    };
    let resnapshot = if state == ItemState::Approved {
        publications::schedule(conn, agency, item).await?
    } else {
        0
    };
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "item.edit")
            .target("content_item", item)
            .details(
                json!({ "moderation": e.moderation_status, "publications_updated": resnapshot }),
            ),
    )
    .await?;
    Ok(resnapshot)
}

/// `regenerate`: back to `planned` without its variants, with its `generate` job enqueued in
/// the same transaction (generation claims only planned items).
pub async fn regenerate(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    item: Uuid,
) -> Result<(), Failure> {
    let reset = sqlx::query_scalar!(
        "UPDATE content_items SET state = 'planned', chosen_variant = NULL, moderation_status = 'pending',
                moderation = '{}', rejection_reason = NULL, generation_error = NULL, approved_by = NULL,
                approved_at = NULL, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = ANY($3)
         RETURNING client_id",
        item,
        agency,
        &ItemMove::Regenerate.allowed() as &[&str]
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(client) = reset else {
        return Err(refusal(&mut *conn, agency, item, ItemMove::Regenerate)
            .await?
            .into());
    };
    sqlx::query!(
        "DELETE FROM content_variants WHERE item_id = $1 AND agency_id = $2",
        item,
        agency
    )
    .execute(&mut *conn)
    .await?;
    queue::enqueue(
        conn,
        &crate::content::generate::generate_job(agency, client, item),
    )
    .await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "item.regenerate").target("content_item", item),
    )
    .await?;
    Ok(())
}

/// `cancel`: an approved item's publications that have not started are cancelled with their
/// jobs; the item is cancelled unless one of its posts is going out or has gone out. Returns how
/// many publications were cancelled.
pub async fn cancel(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    item: Uuid,
) -> Result<u64, Failure> {
    let state = sqlx::query_scalar!(
        r#"SELECT state AS "state: ItemState" FROM content_items WHERE id = $1 AND agency_id = $2 FOR UPDATE"#,
        item,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Refusal::NotFound)?;
    if !ItemMove::Cancel.allows(state) {
        return Err(Refusal::ItemState {
            state,
            wanted: ItemMove::Cancel,
        }
        .into());
    }
    let cancelled = publications::cancel_for_item(conn, agency, item).await?;
    sqlx::query!(
        "UPDATE content_items SET state = 'cancelled', updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = ANY($3) AND NOT EXISTS (
             SELECT 1 FROM publications WHERE item_id = $1 AND state IN ('publishing', 'published'))",
        item,
        agency,
        &ItemMove::Cancel.allowed() as &[&str]
    )
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "item.cancel")
            .target("content_item", item)
            .details(json!({ "publications": cancelled })),
    )
    .await?;
    Ok(cancelled)
}

/// `drop_planned`: cancel a rule's future items that were planned but not generated yet and
/// that the rule no longer wants (its nominal time not in `wanted`). Returns the count.
pub async fn drop_planned(
    conn: impl PgExecutor<'_>,
    agency: Uuid,
    rule: Uuid,
    wanted: &[DateTime<Utc>],
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE content_items SET state = 'cancelled', updated_at = now()
         WHERE agency_id = $1 AND rule_id = $2 AND state = ANY($4) AND slot_at > now()
           AND (planned_for IS NULL OR NOT (planned_for = ANY($3)))",
        agency,
        rule,
        wanted,
        &ItemMove::DropPlanned.allowed() as &[&str]
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// `reschedule`: move an approved item (every post of it not yet out) to `at`, by the rule in
/// the module docs. Returns how many publications moved.
pub async fn reschedule(
    conn: &mut PgConnection,
    actor: &Actor,
    agency: Uuid,
    item: Uuid,
    at: DateTime<Utc>,
) -> Result<usize, Failure> {
    let row = sqlx::query!(
        r#"SELECT state AS "state: ItemState", slot_at FROM content_items WHERE id = $1 AND agency_id = $2 FOR UPDATE"#,
        item,
        agency
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Refusal::NotFound)?;
    super::check_item_reschedule(row.state, at, Utc::now())?;
    sqlx::query!(
        "UPDATE content_items SET slot_at = $3, updated_at = now() WHERE id = $1 AND agency_id = $2",
        item,
        agency,
        at
    )
    .execute(&mut *conn)
    .await?;
    let moved = publications::schedule(conn, agency, item).await?;
    audit::append(
        conn,
        actor,
        Entry::new(Some(agency), "item.reschedule")
            .target("content_item", item)
            .details(json!({ "from": row.slot_at, "to": at, "publications": moved })),
    )
    .await?;
    Ok(moved)
}

/// `reopen`: one of the item's publications is back on schedule, so a failed, partly published
/// or cancelled item is approved again (an approved one stays so).
pub async fn reopen(conn: impl PgExecutor<'_>, item: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE content_items SET state = 'approved', updated_at = now() WHERE id = $1 AND state = ANY($2)",
        item,
        &ItemMove::Reopen.allowed() as &[&str]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// `roll_up`: the item's state from its publications once none is open: all published →
/// published; some → partially published; none but some failed → failed. (The recording of
/// posts in [`publications::published`] repeats this rule inside its one statement, counting
/// the publications it records as published.)
pub async fn roll_up(conn: impl PgExecutor<'_>, item: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE content_items i SET state = CASE
               WHEN s.open > 0 THEN i.state
               WHEN s.published = s.total AND s.total > 0 THEN 'published'
               WHEN s.published > 0 THEN 'partially_published'
               WHEN s.failed > 0 THEN 'failed'
               ELSE i.state END,
             updated_at = now()
           FROM (SELECT count(*) AS total,
                        count(*) FILTER (WHERE state = 'published') AS published,
                        count(*) FILTER (WHERE state = 'failed') AS failed,
                        count(*) FILTER (WHERE state IN ('scheduled', 'held', 'publishing', 'needs_attention')) AS open
                 FROM publications WHERE item_id = $1 AND state <> 'cancelled') s
           WHERE i.id = $1 AND i.state = ANY($2)"#,
        item,
        &ItemMove::RollUp.allowed() as &[&str]
    )
    .execute(conn)
    .await?;
    Ok(())
}
