//! The vault against a real Postgres: rotation while readers run, and no plaintext in a dump.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use autosocial_core::vault::{self, Aad, ENCRYPTED, Vault};
use sqlx::PgPool;
use uuid::Uuid;

fn aad<'a>(column: &'a str, agency: Uuid, row: &'a str) -> Aad<'a> {
    Aad {
        table: "social_accounts",
        column,
        agency: Some(agency),
        row,
    }
}

/// Store an account with both tokens encrypted the way connectors do.
async fn store_account(
    pool: &PgPool,
    v: &Vault,
    agency: Uuid,
    client: Uuid,
    n: usize,
) -> (Uuid, String, String) {
    let id = Uuid::now_v7();
    let row = id.to_string();
    let access = format!("plain-access-token-{n}-{}", Uuid::new_v4().simple());
    let refresh = format!("plain-refresh-token-{n}-{}", Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO social_accounts (id, agency_id, client_id, platform, platform_account_id, access_token_ct, refresh_token_ct, key_id)
         VALUES ($1, $2, $3, 'x', $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(agency)
    .bind(client)
    .bind(format!("acct-{n}"))
    .bind(v.encrypt_str(&access, &aad("access_token_ct", agency, &row)))
    .bind(v.encrypt_str(&refresh, &aad("refresh_token_ct", agency, &row)))
    .bind(v.current_key_id())
    .execute(pool)
    .await
    .unwrap();
    (id, access, refresh)
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn rotation_re_encrypts_everything_while_readers_keep_reading(pool: PgPool) {
    let k1 = Vault::generate_entry("k1");
    let old = Vault::from_spec(&k1).unwrap();
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let mut expected = Vec::new();
    for n in 0..300 {
        expected.push(store_account(&pool, &old, agency, client, n).await);
    }
    // Every process now runs with k2 first and k1 kept for reading.
    let k2 = Vault::generate_entry("k2");
    let new = Arc::new(Vault::from_spec(&format!("{k2}\n{k1}")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (pool, v, stop, reads, expected) = (
            pool.clone(),
            new.clone(),
            stop.clone(),
            reads.clone(),
            expected.clone(),
        );
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let rows: Vec<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
                    "SELECT id, access_token_ct, refresh_token_ct FROM social_accounts",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                for (id, a, r) in rows {
                    let row = id.to_string();
                    let want = expected.iter().find(|e| e.0 == id).unwrap();
                    assert_eq!(
                        *v.decrypt_string(&a, &aad("access_token_ct", agency, &row))
                            .unwrap(),
                        want.1
                    );
                    assert_eq!(
                        *v.decrypt_string(&r, &aad("refresh_token_ct", agency, &row))
                            .unwrap(),
                        want.2
                    );
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let report = vault::rotate(&pool, &new, 25).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("a reader failed to decrypt during rotation");
    }
    assert_eq!(report.rows, 300);
    assert_eq!(report.ciphertexts, 600);
    assert!(reads.load(Ordering::Relaxed) > 0);
    let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key_id FROM social_accounts")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(keys, vec!["k2".to_string()]);
    // Every ciphertext is now under k2, readable without k1.
    let only_k2 = Vault::from_spec(&k2).unwrap();
    let rows: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT id, access_token_ct FROM social_accounts")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (id, a) in rows {
        assert_eq!(Vault::key_id_of(&a).unwrap(), "k2");
        let want = expected.iter().find(|e| e.0 == id).unwrap();
        assert_eq!(
            *only_k2
                .decrypt_string(&a, &aad("access_token_ct", agency, &id.to_string()))
                .unwrap(),
            want.1
        );
    }
    // A second run has nothing left to do.
    assert_eq!(
        vault::rotate(&pool, &new, 25).await.unwrap(),
        vault::RotationReport::default()
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_ciphertext_moved_to_another_row_does_not_decrypt(pool: PgPool) {
    let v = Vault::from_spec(&Vault::generate_entry("k1")).unwrap();
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let (a, _, _) = store_account(&pool, &v, agency, client, 1).await;
    let (b, _, _) = store_account(&pool, &v, agency, client, 2).await;
    sqlx::query("UPDATE social_accounts SET access_token_ct = (SELECT access_token_ct FROM social_accounts WHERE id = $1) WHERE id = $2")
        .bind(a)
        .bind(b)
        .execute(&pool)
        .await
        .unwrap();
    let moved: Vec<u8> =
        sqlx::query_scalar("SELECT access_token_ct FROM social_accounts WHERE id = $1")
            .bind(b)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        v.decrypt(&moved, &aad("access_token_ct", agency, &b.to_string()))
            .is_err()
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn a_full_pg_dump_contains_no_plaintext_token(pool: PgPool) {
    let v = Vault::from_spec(&Vault::generate_entry("k1")).unwrap();
    let (agency, client) = autosocial_core::testing::tenant(&pool).await;
    let mut plaintexts = Vec::new();
    for n in 0..5 {
        let (_, a, r) = store_account(&pool, &v, agency, client, n).await;
        plaintexts.push(a);
        plaintexts.push(r);
    }
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(
        &std::env::var("DATABASE_URL").expect("DATABASE_URL is set by deploy/dev test"),
    )
    .unwrap();
    url.set_path(&db);
    let out = std::process::Command::new("pg_dump")
        .arg("--no-owner")
        .arg("--inserts")
        .arg(url.as_str())
        .output()
        .expect("pg_dump on PATH (deploy/dev test puts it there)");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.contains("INSERT INTO public.social_accounts"),
        "the dump holds the accounts"
    );
    for p in &plaintexts {
        assert!(
            !dump.contains(p.as_str()),
            "plaintext token found in pg_dump"
        );
        // nor hex-encoded (bytea output)
        assert!(
            !dump.contains(&hex::encode(p.as_bytes())),
            "hex of a plaintext token found in pg_dump"
        );
    }
}

/// Every `*_ct` column in the schema is known to `keys rotate`.
#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn every_encrypted_column_is_rotated(pool: PgPool) {
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND column_name LIKE '%\\_ct' ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(cols.len() >= 5);
    for (table, column) in cols {
        assert!(
            ENCRYPTED
                .iter()
                .any(|g| g.table == table && g.columns.contains(&column.as_str())),
            "{table}.{column} is not listed in vault::ENCRYPTED"
        );
    }
}
