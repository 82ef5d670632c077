//! The database itself refuses bad data.

use sqlx::PgPool;
use uuid::Uuid;

/// Run `sql` and expect Postgres to refuse it, naming a constraint (or raising) as given.
async fn refused(pool: &PgPool, sql: &str, expect: &str) {
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => panic!("accepted bad data: {sql}"),
        Err(sqlx::Error::Database(e)) => {
            let text = format!("{} {}", e.message(), e.constraint().unwrap_or_default());
            assert!(
                text.contains(expect),
                "refused for another reason than `{expect}`: {text}\n{sql}"
            );
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

async fn ok(pool: &PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

const A: &str = "00000000-0000-7000-8000-00000000000a";
const B: &str = "00000000-0000-7000-8000-00000000000b";
const CA: &str = "00000000-0000-7000-8000-0000000000ca";
const CB: &str = "00000000-0000-7000-8000-0000000000cb";
const ACC: &str = "00000000-0000-7000-8000-0000000000ac";
const ITEM: &str = "00000000-0000-7000-8000-0000000000e1";

async fn base(pool: &PgPool) {
    ok(
        pool,
        &format!("INSERT INTO agencies (id, name) VALUES ('{A}', 'A'), ('{B}', 'B')"),
    )
    .await;
    ok(pool, &format!("INSERT INTO clients (id, agency_id, name, timezone) VALUES ('{CA}', '{A}', 'Client A', 'UTC'), ('{CB}', '{B}', 'Client B', 'UTC')")).await;
    ok(
        pool,
        &format!(
            "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, access_token_ct, key_id)
             VALUES ('{ACC}', '{A}', '{CA}', 'x', 'x-1', '\\x01', 'k1')"
        ),
    )
    .await;
    ok(
        pool,
        &format!(
            "INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type)
             VALUES ('{ITEM}', '{A}', '{CA}', 'manual', 'pending_review', now(), 'text')"
        ),
    )
    .await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn enums_and_states_are_checked(pool: PgPool) {
    base(&pool).await;
    refused(&pool, &format!("INSERT INTO clients (id, agency_id, name, timezone, status) VALUES (gen_random_uuid(), '{A}', 'x', 'UTC', 'deleted')"), "clients_status_check").await;
    refused(&pool, &format!("INSERT INTO memberships (agency_id, user_id, role) VALUES ('{A}', gen_random_uuid(), 'superuser')"), "memberships_role_check").await;
    refused(
        &pool,
        "INSERT INTO jobs (kind, state) VALUES ('publish', 'sleeping')",
        "jobs_state_check",
    )
    .await;
    refused(
        &pool,
        "INSERT INTO jobs (kind) VALUES ('Bad Kind!')",
        "jobs_kind_check",
    )
    .await;
    refused(
        &pool,
        &format!("UPDATE content_items SET state = 'maybe' WHERE id = '{ITEM}'"),
        "content_items_state_check",
    )
    .await;
    refused(
        &pool,
        &format!("UPDATE social_accounts SET platform = 'myspace' WHERE id = '{ACC}'"),
        "social_accounts_platform_check",
    )
    .await;
    refused(&pool, &format!("INSERT INTO brand_settings (client_id, agency_id, color_primary) VALUES ('{CA}', '{A}', 'blue')"), "brand_settings_color_primary_check").await;
    refused(&pool, &format!("INSERT INTO clients (id, agency_id, name, timezone) VALUES (gen_random_uuid(), '{A}', '   ', 'UTC')"), "clients_name_check").await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn children_cannot_cross_tenants(pool: PgPool) {
    base(&pool).await;
    // an account of agency B attached to agency A's client
    refused(
        &pool,
        &format!(
            "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, access_token_ct, key_id)
             VALUES (gen_random_uuid(), '{B}', '{CA}', 'x', 'x-2', '\\x01', 'k1')"
        ),
        "foreign key",
    )
    .await;
    // a publication of agency B for agency A's item and account
    refused(
        &pool,
        &format!(
            "INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, scheduled_at, snapshot)
             VALUES (gen_random_uuid(), '{B}', '{CB}', '{ITEM}', '{ACC}', 'x', now(), '{{}}')"
        ),
        "foreign key",
    )
    .await;
    refused(&pool, &format!("INSERT INTO clients (id, agency_id, name, timezone) VALUES (gen_random_uuid(), '{A}', 'Client A', 'UTC')"), "clients_agency_id_name_key").await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn publication_states_carry_what_they_promise(pool: PgPool) {
    base(&pool).await;
    let p = Uuid::now_v7();
    ok(
        &pool,
        &format!(
            "INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, scheduled_at, snapshot)
             VALUES ('{p}', '{A}', '{CA}', '{ITEM}', '{ACC}', 'x', now(), '{{}}')"
        ),
    )
    .await;
    refused(
        &pool,
        &format!("UPDATE publications SET state = 'published' WHERE id = '{p}'"),
        "publications_check",
    )
    .await;
    refused(
        &pool,
        &format!("UPDATE publications SET state = 'publishing' WHERE id = '{p}'"),
        "publications_check",
    )
    .await;
    ok(&pool, &format!("UPDATE publications SET state = 'publishing', attempt_id = gen_random_uuid(), marker = 'as-12345678' WHERE id = '{p}'")).await;
    ok(&pool, &format!("UPDATE publications SET state = 'published', platform_post_id = '123', published_at = now() WHERE id = '{p}'")).await;
    // one publication per item and account
    refused(
        &pool,
        &format!(
            "INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, scheduled_at, snapshot)
             VALUES (gen_random_uuid(), '{A}', '{CA}', '{ITEM}', '{ACC}', 'x', now(), '{{}}')"
        ),
        "publications_item_account_key",
    )
    .await;
    // a blocked item cannot be approved
    ok(
        &pool,
        &format!("UPDATE content_items SET moderation_status = 'blocked' WHERE id = '{ITEM}'"),
    )
    .await;
    refused(
        &pool,
        &format!(
            "UPDATE content_items SET state = 'approved', approved_at = now() WHERE id = '{ITEM}'"
        ),
        "content_items_check",
    )
    .await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn jobs_leases_and_unique_keys_are_enforced(pool: PgPool) {
    refused(
        &pool,
        "INSERT INTO jobs (kind, state) VALUES ('noop', 'running')",
        "jobs_check",
    )
    .await;
    ok(
        &pool,
        "INSERT INTO jobs (kind, unique_key) VALUES ('plan', 'plan:c1:2026-11-23')",
    )
    .await;
    refused(
        &pool,
        "INSERT INTO jobs (kind, unique_key) VALUES ('plan', 'plan:c1:2026-11-23')",
        "jobs_unique_key",
    )
    .await;
    // once finished, the same key may be enqueued again
    ok(&pool, "UPDATE jobs SET state = 'completed', finished_at = now() WHERE unique_key = 'plan:c1:2026-11-23'").await;
    ok(
        &pool,
        "INSERT INTO jobs (kind, unique_key) VALUES ('plan', 'plan:c1:2026-11-23')",
    )
    .await;
    refused(
        &pool,
        "UPDATE jobs SET state = 'completed' WHERE kind = 'plan' AND state = 'available'",
        "jobs_check",
    )
    .await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn kill_switches_name_exactly_their_target(pool: PgPool) {
    base(&pool).await;
    refused(&pool, &format!("INSERT INTO kill_switches (id, scope, agency_id, reason) VALUES (gen_random_uuid(), 'global', '{A}', 'r')"), "kill_switches_check").await;
    refused(
        &pool,
        "INSERT INTO kill_switches (id, scope, reason) VALUES (gen_random_uuid(), 'client', 'r')",
        "kill_switches_check",
    )
    .await;
    refused(
        &pool,
        "INSERT INTO kill_switches (id, scope, reason) VALUES (gen_random_uuid(), 'global', '  ')",
        "kill_switches_reason_check",
    )
    .await;
    ok(&pool, "INSERT INTO kill_switches (id, scope, reason) VALUES (gen_random_uuid(), 'global', 'incident')").await;
    refused(&pool, "INSERT INTO kill_switches (id, scope, reason) VALUES (gen_random_uuid(), 'global', 'again')", "kill_switches_engaged_key").await;
    ok(&pool, &format!("INSERT INTO kill_switches (id, scope, agency_id, platform, reason) VALUES (gen_random_uuid(), 'platform', '{A}', 'x', 'x is down')")).await;
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_audit_log_is_append_only_and_its_chain_detects_tampering(pool: PgPool) {
    use autosocial_core::audit::{self, Actor, ChainStatus, Entry};
    base(&pool).await;
    let agency: Uuid = A.parse().unwrap();
    for n in 0..5 {
        let mut tx = pool.begin().await.unwrap();
        audit::append(
            &mut tx,
            &Actor::system("test"),
            Entry::new(Some(agency), "client.update").target("client", CA).details(serde_json::json!({ "n": n, "name": "Client A", "nested": { "b": 1, "a": [1, 2] } })),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(
        audit::verify(&pool, Some(agency)).await.unwrap(),
        ChainStatus::Intact { entries: 5 }
    );
    // the system chain (no agency) is its own
    let before = match audit::verify(&pool, None).await.unwrap() {
        ChainStatus::Intact { entries } => entries,
        other => panic!("the system chain is broken before the test: {other:?}"),
    };
    for n in 0..2 {
        let mut tx = pool.begin().await.unwrap();
        audit::append(
            &mut tx,
            &Actor::system("test"),
            Entry::new(None, "operator.grant").details(serde_json::json!({ "n": n })),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(
        audit::verify(&pool, None).await.unwrap(),
        ChainStatus::Intact {
            entries: before + 2
        }
    );
    refused(
        &pool,
        "UPDATE audit_log SET action = 'client.delete'",
        "append-only",
    )
    .await;
    let third: i64 = sqlx::query_scalar("SELECT id FROM audit_log ORDER BY id OFFSET 2 LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    ok(&pool, &format!("DELETE FROM audit_log WHERE id = {third}")).await;
    match audit::verify(&pool, Some(agency)).await.unwrap() {
        ChainStatus::Broken {
            entries_checked, ..
        } => assert_eq!(entries_checked, 2),
        other => panic!("tampering went unnoticed: {other:?}"),
    }
}
