//! The lifecycle's table, walked: every item state through every item move and every
//! publication state through every publication move, each on a fresh row, compared with
//! `ItemMove::from/to` and `PublicationMove::from/to` (the table in `items`' module docs).

use std::time::Duration;

use autosocial_core::audit::Actor;
use autosocial_core::domain::{ItemState, PublicationState};
use autosocial_core::items::{
    self, Failure, ItemMove, PublicationMove, Refusal, publications as pubs,
};
use autosocial_core::publishing;
use autosocial_core::queue;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

struct World {
    agency: Uuid,
    client: Uuid,
    account: Uuid,
    rule: Uuid,
    /// Distinct slots: one rule plans one item per instant.
    next_slot: i64,
}

async fn account(pool: &PgPool, agency: Uuid, client: Uuid) -> Uuid {
    let account = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, access_token_ct, key_id)
         VALUES ($1, $2, $3, 'sandbox', $4, '\\x00', 'k')",
    )
    .bind(account)
    .bind(agency)
    .bind(client)
    .bind(account.to_string())
    .execute(pool)
    .await
    .unwrap();
    account
}

async fn world(pool: &PgPool) -> World {
    let (agency, client) = autosocial_core::testing::tenant(pool).await;
    let account = account(pool, agency, client).await;
    let rule = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO content_rules (id, agency_id, client_id, name, frequency, posts_per_period, days_of_week, local_times)
         VALUES ($1, $2, $3, 'Rule', 'per_day', 1, ARRAY[1]::smallint[], ARRAY['10:00']::time[])",
    )
    .bind(rule)
    .bind(agency)
    .bind(client)
    .execute(pool)
    .await
    .unwrap();
    World {
        agency,
        client,
        account,
        rule,
        next_slot: 0,
    }
}

impl World {
    fn slot(&mut self) -> DateTime<Utc> {
        self.next_slot += 1;
        Utc::now() + TimeDelta::days(2) + TimeDelta::minutes(self.next_slot)
    }

    /// An item of the rule in `state`, targeting the account, approved once (so every state
    /// that needs it has `approved_at`), with a reason when rejected.
    async fn item(&mut self, pool: &PgPool, state: ItemState) -> Uuid {
        let id = Uuid::now_v7();
        let slot = self.slot();
        sqlx::query(
            "INSERT INTO content_items (id, agency_id, client_id, rule_id, source, state, slot_at, planned_for, content_type,
                                        caption, moderation_status, approved_at, rejection_reason)
             VALUES ($1, $2, $3, $4, 'generated', $5, $6, $6, 'text', 'A caption', 'pass', now(),
                     CASE WHEN $5 = 'rejected' THEN 'no' END)",
        )
        .bind(id)
        .bind(self.agency)
        .bind(self.client)
        .bind(self.rule)
        .bind(state.as_str())
        .bind(slot)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO content_item_targets (item_id, account_id, agency_id) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(self.account)
        .bind(self.agency)
        .execute(pool)
        .await
        .unwrap();
        id
    }

    /// An approved item with one publication in `state` (with an attempt, and what each state
    /// needs: a post id when published, a reason when held).
    async fn publication(&mut self, pool: &PgPool, state: PublicationState) -> (Uuid, Uuid, Uuid) {
        // an account of its own: the account-wide moves see this publication alone
        self.account = account(pool, self.agency, self.client).await;
        let item = self.item(pool, ItemState::Approved).await;
        let (id, attempt) = (Uuid::now_v7(), Uuid::now_v7());
        sqlx::query(
            "INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, state, scheduled_at, snapshot,
                                       attempt_id, marker, platform_post_id, published_at, held_reason)
             VALUES ($1, $2, $3, $4, $5, 'sandbox', $6, now() + interval '1 day', '{\"caption\": \"A caption\"}', $7, $8,
                     CASE WHEN $6 = 'published' THEN 'p1' END, CASE WHEN $6 = 'published' THEN now() END,
                     CASE WHEN $6 = 'held' THEN 'paused' END)",
        )
        .bind(id)
        .bind(self.agency)
        .bind(self.client)
        .bind(item)
        .bind(self.account)
        .bind(state.as_str())
        .bind(attempt)
        .bind(format!("as{}", id.simple()))
        .execute(pool)
        .await
        .unwrap();
        (item, id, attempt)
    }
}

async fn item_state(pool: &PgPool, id: Uuid) -> ItemState {
    let s: String = sqlx::query_scalar("SELECT state FROM content_items WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    s.parse().unwrap()
}

async fn publication_state(pool: &PgPool, id: Uuid) -> PublicationState {
    let s: String = sqlx::query_scalar("SELECT state FROM publications WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    s.parse().unwrap()
}

/// A refusal of `wanted` that names the state the row was in.
fn refused_item(r: Result<(), Failure>, state: ItemState, wanted: ItemMove) {
    match r {
        Err(Failure::Refused(Refusal::ItemState {
            state: s,
            wanted: w,
        })) => {
            assert_eq!((s, w), (state, wanted));
        }
        other => panic!("{wanted:?} from {state:?}: expected a refusal, got {other:?}"),
    }
}

/// Make `m` on a fresh item in `from`; `Some(refused)` for moves that answer with a refusal.
async fn item_move(
    pool: &PgPool,
    w: &mut World,
    m: ItemMove,
    from: ItemState,
) -> (Uuid, Option<bool>) {
    let id = w.item(pool, from).await;
    let actor = Actor::system("lifecycle test");
    let mut tx = pool.begin().await.unwrap();
    let refused = match m {
        ItemMove::Plan | ItemMove::Create => unreachable!("row creators are walked apart"),
        ItemMove::Claim => Some(
            items::claim(&mut *tx, w.agency, id)
                .await
                .unwrap()
                .is_none(),
        ),
        ItemMove::Release => {
            items::release(&mut *tx, w.agency, id, "later")
                .await
                .unwrap();
            None
        }
        ItemMove::ToReview | ItemMove::AutoApprove => {
            let r = items::generated(
                &mut tx,
                w.agency,
                id,
                &items::Generated {
                    pillar: "Pillar",
                    chosen_variant: "balanced",
                    caption: "Generated",
                    hashtags: &[],
                    cta: None,
                    passed: true,
                    moderation: serde_json::json!({}),
                    generator: "test",
                    auto_approve: m == ItemMove::AutoApprove,
                },
            )
            .await;
            match r {
                Ok(s) => {
                    assert!(m.to().contains(&s));
                    Some(false)
                }
                Err(e) => {
                    refused_item(Err(e), from, m);
                    Some(true)
                }
            }
        }
        ItemMove::Approve => match items::approve(&mut tx, &actor, w.agency, id, None).await {
            Ok(n) => {
                assert_eq!(n, 1);
                Some(false)
            }
            Err(items::ApproveFailure::Refused(items::ApproveError::WrongState(s))) => {
                assert_eq!(s, from.as_str());
                Some(true)
            }
            Err(e) => panic!("approve from {from:?}: {e}"),
        },
        ItemMove::Reject => {
            let r = items::reject(&mut tx, &actor, w.agency, id, "off brand").await;
            walk_result(r, from, m)
        }
        ItemMove::Edit => {
            let e = items::Edit {
                caption: "Edited",
                hashtags: &[],
                cta: None,
                link: None,
                moderation_status: "pass",
                moderation: serde_json::json!({}),
            };
            let r = items::edit(&mut tx, &actor, w.agency, id, &e)
                .await
                .map(|_| ());
            walk_result(r, from, m)
        }
        ItemMove::Regenerate => {
            let r = items::regenerate(&mut tx, &actor, w.agency, id).await;
            walk_result(r, from, m)
        }
        ItemMove::Cancel => {
            let r = items::cancel(&mut tx, &actor, w.agency, id)
                .await
                .map(|_| ());
            walk_result(r, from, m)
        }
        ItemMove::DropPlanned => {
            items::drop_planned(&mut *tx, w.agency, w.rule, &[])
                .await
                .unwrap();
            None
        }
        ItemMove::Reschedule => {
            let at = Utc::now() + TimeDelta::hours(5);
            let r = items::reschedule(&mut tx, &actor, w.agency, id, at)
                .await
                .map(|_| ());
            walk_result(r, from, m)
        }
        ItemMove::Reopen => {
            items::reopen(&mut *tx, id).await.unwrap();
            None
        }
        ItemMove::RollUp => {
            items::roll_up(&mut *tx, id).await.unwrap();
            None
        }
    };
    tx.commit().await.unwrap();
    (id, refused)
}

fn walk_result(r: Result<(), Failure>, from: ItemState, m: ItemMove) -> Option<bool> {
    if m.allows(from) {
        r.unwrap_or_else(|e| panic!("{m:?} from {from:?}: {e}"));
        Some(false)
    } else {
        refused_item(r, from, m);
        Some(true)
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_item_state_makes_exactly_the_moves_of_the_table(pool: PgPool) {
    let mut w = world(&pool).await;
    for &m in ItemMove::ALL {
        if m.from().is_empty() {
            continue;
        }
        for &from in ItemState::ALL {
            let (id, refused) = item_move(&pool, &mut w, m, from).await;
            let now = item_state(&pool, id).await;
            if m.allows(from) {
                assert!(m.to().contains(&now), "{m:?} from {from:?} ended {now:?}");
                assert_ne!(refused, Some(true), "{m:?} from {from:?} was refused");
            } else {
                assert_eq!(now, from, "{m:?} from {from:?} moved the item");
                assert_ne!(refused, Some(false), "{m:?} from {from:?} said it moved");
            }
        }
    }
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn rows_are_created_in_the_states_of_the_table(pool: PgPool) {
    let mut w = world(&pool).await;
    let slot = w.slot();
    let mut conn = pool.acquire().await.unwrap();
    let planned = items::plan(
        &mut conn,
        w.agency,
        w.client,
        &[items::PlannedSlot {
            id: Uuid::now_v7(),
            rule_id: w.rule,
            slot_at: slot,
            planned_for: slot,
            content_type: "text".into(),
            accounts: vec![w.account],
        }],
    )
    .await
    .unwrap();
    assert_eq!(planned.len(), 1);
    assert_eq!(item_state(&pool, planned[0]).await, ItemMove::Plan.to()[0]);
    let id = Uuid::now_v7();
    items::create(
        &mut conn,
        &Actor::system("lifecycle test"),
        w.agency,
        &items::Composed {
            id,
            client: w.client,
            slot_at: w.slot(),
            content_type: "text",
            caption: "By hand",
            hashtags: &[],
            cta: None,
            link: None,
            moderation_status: "pass",
            moderation: serde_json::json!({}),
            accounts: &[w.account],
            approve: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(item_state(&pool, id).await, ItemMove::Create.to()[0]);
}

/// Make `m` on a fresh publication in `from`; `Some(refused)` for moves that say whether they
/// moved.
async fn publication_move(
    pool: &PgPool,
    w: &mut World,
    m: PublicationMove,
    from: PublicationState,
) -> (Uuid, Option<bool>) {
    let (item, id, attempt) = w.publication(pool, from).await;
    sqlx::query("DELETE FROM jobs").execute(pool).await.unwrap();
    // the publication's job, claimed, for the moves a run makes under its lease
    let mut conn = pool.acquire().await.unwrap();
    queue::enqueue(
        &mut conn,
        &publishing::publish_job(
            w.agency,
            w.client,
            w.account,
            autosocial_core::domain::Platform::Sandbox,
            id,
            Utc::now() - TimeDelta::seconds(1),
        ),
    )
    .await
    .unwrap();
    drop(conn);
    let claimed = queue::claim(
        pool,
        "lifecycle",
        &[(publishing::KIND, 1)],
        1,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let run = (claimed[0].id, claimed[0].lease_token);
    let actor = Actor::system("lifecycle test");
    let mut tx = pool.begin().await.unwrap();
    let moved = match m {
        PublicationMove::Schedule => {
            pubs::schedule(&mut tx, w.agency, item).await.unwrap();
            None
        }
        PublicationMove::Hold => Some(
            pubs::hold(&mut *tx, run, id, "paused")
                .await
                .unwrap()
                .is_some(),
        ),
        PublicationMove::HoldAccount => Some(
            !pubs::hold_account(&mut tx, w.agency, w.account, "gone")
                .await
                .unwrap()
                .is_empty(),
        ),
        PublicationMove::Release => Some(
            pubs::release_held(&mut tx, w.agency, None, Some(w.account))
                .await
                .unwrap()
                > 0,
        ),
        PublicationMove::Start => {
            let start = pubs::Start {
                run,
                publication: id,
                account: w.account,
                attempt: Uuid::now_v7(),
                marker: "asmarker1".into(),
                margin: 0,
            };
            let f = pubs::start(&mut *tx, &[start])
                .await
                .unwrap()
                .remove(0)
                .expect("the publication exists");
            assert_eq!(f.state, from);
            Some(f.moved)
        }
        PublicationMove::Published => {
            tx.commit().await.unwrap();
            let post = pubs::Post {
                publication: id,
                attempt,
                agency: w.agency,
                post_id: "p2".into(),
                url: None,
                request_id: None,
                action: "publish".into(),
                latency_ms: 1,
            };
            let moved = pubs::published(pool, &[post]).await.unwrap()[0];
            return (id, Some(moved));
        }
        PublicationMove::Fail => Some(pubs::fail(&mut tx, id, attempt, "refused").await.unwrap()),
        PublicationMove::NeedsAttention => {
            pubs::needs_attention(&mut tx, id, attempt, "unknowable")
                .await
                .unwrap();
            None
        }
        PublicationMove::BackToScheduled => Some(
            pubs::back_to_scheduled(&mut *tx, id, attempt, None)
                .await
                .unwrap(),
        ),
        PublicationMove::Cancel => Some(
            pubs::cancel_for_item(&mut tx, w.agency, item)
                .await
                .unwrap()
                > 0,
        ),
        PublicationMove::Orphaned => {
            // its job ends for good (attempts ran out while its workers died), its time passed
            sqlx::query("UPDATE jobs SET state = 'failed', finished_at = now(), locked_by = NULL, locked_until = NULL")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE publications SET scheduled_at = now() - interval '1 minute' WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
            let swept = pubs::orphaned(&mut tx, Duration::ZERO, 100).await.unwrap();
            Some(swept.iter().any(|o| o.publication == id))
        }
        PublicationMove::Reschedule => {
            let at = Utc::now() + TimeDelta::hours(3);
            match pubs::reschedule(&mut tx, &actor, w.agency, id, at).await {
                Ok(()) => Some(true),
                Err(Failure::Refused(Refusal::PublicationState { state, wanted })) => {
                    assert_eq!((state, wanted), (from, m));
                    Some(false)
                }
                Err(e) => panic!("reschedule from {from:?}: {e}"),
            }
        }
    };
    tx.commit().await.unwrap();
    (id, moved)
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_publication_state_makes_exactly_the_moves_of_the_table(pool: PgPool) {
    let mut w = world(&pool).await;
    for &m in PublicationMove::ALL {
        for &from in PublicationState::ALL {
            let (id, moved) = publication_move(&pool, &mut w, m, from).await;
            let now = publication_state(&pool, id).await;
            if m.allows(from) {
                assert!(m.to().contains(&now), "{m:?} from {from:?} ended {now:?}");
                assert_ne!(moved, Some(false), "{m:?} from {from:?} did not move");
            } else {
                assert_eq!(now, from, "{m:?} from {from:?} moved the publication");
                assert_ne!(moved, Some(true), "{m:?} from {from:?} said it moved");
            }
        }
    }
}

/// A publication whose publish job ended without finishing it is handed to a person by the
/// sweep, with a message that says whether anything may have been sent; one with a live job,
/// or touched too recently, is left alone.
#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_publication_whose_job_ended_unfinished_goes_to_a_person(pool: PgPool) {
    let mut w = world(&pool).await;
    let mut publication = async |state: PublicationState| {
        let (_, id, _) = w.publication(&pool, state).await;
        sqlx::query("UPDATE publications SET scheduled_at = now() - interval '10 minutes', updated_at = now() - interval '10 minutes' WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let job = queue::enqueue(
            &mut conn,
            &publishing::publish_job(
                w.agency,
                w.client,
                w.account,
                autosocial_core::domain::Platform::Sandbox,
                id,
                Utc::now() - TimeDelta::minutes(10),
            ),
        )
        .await
        .unwrap()
        .id();
        (id, job)
    };
    let (going_out, going_out_job) = publication(PublicationState::Publishing).await;
    let (waiting, waiting_job) = publication(PublicationState::Scheduled).await;
    let (alive, _) = publication(PublicationState::Publishing).await;
    let (recent, recent_job) = publication(PublicationState::Scheduled).await;
    sqlx::query("UPDATE publications SET updated_at = now() WHERE id = $1")
        .bind(recent)
        .execute(&pool)
        .await
        .unwrap();

    let quiet = publishing::ORPHAN_QUIET;
    assert!(
        pubs::orphaned(&mut pool.acquire().await.unwrap(), quiet, 100)
            .await
            .unwrap()
            .is_empty(),
        "every publication still has a live job"
    );

    // the waiting post's job is cancelled in the queue; the job of the post going out is
    // claimed, its worker dies on its last attempt, the rescuer fails it for good
    for job in [waiting_job, recent_job] {
        assert_eq!(
            queue::cancel(&pool, job).await.unwrap(),
            queue::Cancelled::Cancelled
        );
    }
    sqlx::query("UPDATE jobs SET max_attempts = 1 WHERE id = $1")
        .bind(going_out_job)
        .execute(&pool)
        .await
        .unwrap();
    let claimed = queue::claim(
        &pool,
        "doomed",
        &[(publishing::KIND, 10)],
        10,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(claimed.iter().any(|c| c.id == going_out_job));
    sqlx::query("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1")
        .bind(going_out_job)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(queue::rescue_expired(&pool, 100).await.unwrap(), 1);

    let mut swept = pubs::orphaned(&mut pool.acquire().await.unwrap(), quiet, 100)
        .await
        .unwrap();
    swept.sort_by_key(|o| o.publication);
    let mut want = vec![
        pubs::Orphan {
            publication: going_out,
            agency: w.agency,
            was: PublicationState::Publishing,
        },
        pubs::Orphan {
            publication: waiting,
            agency: w.agency,
            was: PublicationState::Scheduled,
        },
    ];
    want.sort_by_key(|o| o.publication);
    assert_eq!(swept, want);
    for (id, says) in [
        (going_out, "may or may not have it"),
        (waiting, "nothing was sent"),
    ] {
        assert_eq!(
            publication_state(&pool, id).await,
            PublicationState::NeedsAttention
        );
        let error: String = sqlx::query_scalar("SELECT last_error FROM publications WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(error.contains(says), "{error}");
    }
    assert_eq!(
        publication_state(&pool, alive).await,
        PublicationState::Publishing
    );
    assert_eq!(
        publication_state(&pool, recent).await,
        PublicationState::Scheduled
    );
    // a second sweep finds nothing more; once quiet, the recent one goes too
    assert!(
        pubs::orphaned(&mut pool.acquire().await.unwrap(), quiet, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let swept = pubs::orphaned(&mut pool.acquire().await.unwrap(), Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!(
        swept.iter().map(|o| o.publication).collect::<Vec<_>>(),
        vec![recent]
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn auto_approval_is_audited_like_a_reviewers(pool: PgPool) {
    let mut w = world(&pool).await;
    let id = w.item(&pool, ItemState::Generating).await;
    let mut tx = pool.begin().await.unwrap();
    let state = items::generated(
        &mut tx,
        w.agency,
        id,
        &items::Generated {
            pillar: "Pillar",
            chosen_variant: "balanced",
            caption: "Generated",
            hashtags: &[],
            cta: None,
            passed: true,
            moderation: serde_json::json!({}),
            generator: "test",
            auto_approve: true,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(state, ItemState::Approved);
    let (actor, user): (String, Option<Uuid>) = sqlx::query_as(
        "SELECT actor_label, actor_user_id FROM audit_log WHERE action = 'item.approve' AND target_id = $1::text",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((actor.as_str(), user), ("auto-approve", None));
    let scheduled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM publications WHERE item_id = $1 AND state = 'scheduled'",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(scheduled, 1);
}

/// Runs that start at the same moment share one statement: each gets its own answer in its
/// place, a missing publication is `None`, and of two runs of one job (a stale one that lost
/// its lease, and the one that holds it now) only the lease holder moves the publication, with
/// its own attempt id.
#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn runs_started_in_one_statement_each_get_their_own_answer(pool: PgPool) {
    let mut w = world(&pool).await;
    let (_, first, _) = w.publication(&pool, PublicationState::Scheduled).await;
    let first_account = w.account;
    let (_, second, _) = w.publication(&pool, PublicationState::Scheduled).await;
    let second_account = w.account;
    let (_, done, _) = w.publication(&pool, PublicationState::Published).await;
    let done_account = w.account;
    let mut conn = pool.acquire().await.unwrap();
    for (account, publication) in [
        (first_account, first),
        (second_account, second),
        (done_account, done),
    ] {
        queue::enqueue(
            &mut conn,
            &publishing::publish_job(
                w.agency,
                w.client,
                account,
                autosocial_core::domain::Platform::Sandbox,
                publication,
                Utc::now() - TimeDelta::seconds(1),
            ),
        )
        .await
        .unwrap();
    }
    drop(conn);
    let lease = Duration::from_secs(60);
    let claimed = queue::claim(&pool, "w1", &[(publishing::KIND, 3)], 3, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let run_of = |p: Uuid| {
        let c = claimed
            .iter()
            .find(|c| c.payload["publication_id"] == p.to_string())
            .expect("claimed");
        (c.id, c.lease_token)
    };
    // the first job's run went stale: rescued and claimed again (a new token)
    let stale = run_of(first);
    sqlx::query("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1")
        .bind(stale.0)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(queue::rescue_expired(&pool, 10).await.unwrap(), 1);
    let again = queue::claim(&pool, "w2", &[(publishing::KIND, 1)], 1, lease)
        .await
        .unwrap();
    let current = (again[0].id, again[0].lease_token);
    assert_eq!(current.0, stale.0);
    let start = |run, publication, account| pubs::Start {
        run,
        publication,
        account,
        attempt: Uuid::now_v7(),
        marker: format!("as{}", publication.simple()),
        margin: 0,
    };
    let starts = vec![
        start(stale, first, first_account),
        start(run_of(second), second, second_account),
        start(run_of(done), Uuid::now_v7(), done_account),
        start(current, first, first_account),
        start(run_of(done), done, done_account),
    ];
    let found = pubs::start(&pool, &starts).await.unwrap();
    assert_eq!(found.len(), 5);
    let stale_answer = found[0].as_ref().expect("the publication exists");
    assert!(!stale_answer.lease_held && !stale_answer.moved);
    let second_answer = found[1].as_ref().expect("the publication exists");
    assert!(second_answer.lease_held && second_answer.moved);
    assert_eq!(second_answer.account_id, second_account);
    assert!(found[2].is_none(), "no such publication");
    let current_answer = found[3].as_ref().expect("the publication exists");
    assert!(current_answer.lease_held && current_answer.moved);
    assert_eq!(current_answer.state, PublicationState::Scheduled);
    let done_answer = found[4].as_ref().expect("the publication exists");
    assert!(done_answer.lease_held && !done_answer.moved);
    assert_eq!(done_answer.state, PublicationState::Published);
    // each moved publication carries its own run's attempt
    for (i, p) in [(1, second), (3, first)] {
        let attempt: Option<Uuid> =
            sqlx::query_scalar("SELECT attempt_id FROM publications WHERE id = $1")
                .bind(p)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(attempt, Some(starts[i].attempt));
        assert_eq!(
            publication_state(&pool, p).await,
            PublicationState::Publishing
        );
    }
    assert_eq!(
        publication_state(&pool, done).await,
        PublicationState::Published
    );
}
