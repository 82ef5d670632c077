//! The binaries' configuration handling: bad settings exit 2 naming the variable.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sqlx::PgPool;

const ADMIN: &str = env!("CARGO_BIN_EXE_autosocial-admin");
const KEY: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_config_error(out: &Output, variable: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit status for {variable}; stderr: {stderr}"
    );
    assert!(
        stderr.contains(variable),
        "stderr names {variable}: {stderr}"
    );
}

#[test]
fn bad_or_missing_settings_exit_2_naming_the_variable() {
    let db = ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none");
    let redis = ("REDIS_URL", "redis://127.0.0.1:1/");
    let keys = ("AUTOSOCIAL_KEYS", KEY);
    assert_config_error(&run(ADMIN, &["migrate"], &[]), "DATABASE_URL");
    assert_config_error(
        &run(ADMIN, &["migrate"], &[("DATABASE_URL", "mysql://h/db")]),
        "DATABASE_URL",
    );
    assert_config_error(
        &run(ADMIN, &["migrate"], &[("DATABASE_URL", "not a url")]),
        "DATABASE_URL",
    );
    assert_config_error(&run(ADMIN, &["serve"], &[db, keys]), "REDIS_URL");
    assert_config_error(
        &run(ADMIN, &["serve"], &[db, ("REDIS_URL", "http://h/"), keys]),
        "REDIS_URL",
    );
    assert_config_error(&run(ADMIN, &["serve"], &[db, redis]), "AUTOSOCIAL_KEY_FILE");
    assert_config_error(
        &run(
            ADMIN,
            &["serve"],
            &[db, redis, ("AUTOSOCIAL_KEYS", "k1:tooshort")],
        ),
        "AUTOSOCIAL_KEYS",
    );
    assert_config_error(
        &run(
            ADMIN,
            &["serve"],
            &[db, redis, ("AUTOSOCIAL_KEY_FILE", "/nonexistent/keys")],
        ),
        "AUTOSOCIAL_KEY_FILE",
    );
    assert_config_error(
        &run(
            ADMIN,
            &["serve"],
            &[db, redis, keys, ("AUTOSOCIAL_ADMIN_LISTEN", "everywhere")],
        ),
        "AUTOSOCIAL_ADMIN_LISTEN",
    );
    assert_config_error(
        &run(
            ADMIN,
            &["serve"],
            &[db, redis, keys, ("AUTOSOCIAL_PUBLIC_URL", "ftp://h")],
        ),
        "AUTOSOCIAL_PUBLIC_URL",
    );
    assert_config_error(
        &run(
            ADMIN,
            &["serve"],
            &[db, redis, keys, ("AUTOSOCIAL_SESSION_IDLE_MINUTES", "0")],
        ),
        "AUTOSOCIAL_SESSION_IDLE_MINUTES",
    );
    assert_config_error(
        &run(ADMIN, &["serve"], &[db, redis, keys, ("LOG_FORMAT", "xml")]),
        "LOG_FORMAT",
    );
    // a secret given in a bad setting is not echoed back
    let out = run(
        ADMIN,
        &["serve"],
        &[("DATABASE_URL", "mysql://user:hunter2@h/db"), redis, keys],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(KEY));
}

#[test]
fn generated_keys_load() {
    let out = run(ADMIN, &["keys", "generate", "--id", "k9"], &[]);
    assert!(out.status.success());
    let entry = String::from_utf8(out.stdout).unwrap();
    assert!(entry.starts_with("k9:"));
    autosocial_core::vault::Vault::from_spec(entry.trim()).unwrap();
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn user_create_reads_the_password_from_stdin(pool: PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&db);
    let create = |password: &str, email: &str| {
        let mut child = Command::new(ADMIN)
            .args([
                "user", "create", "--agency", "Acme", "--email", email, "--role", "owner",
            ])
            .env("DATABASE_URL", url.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let weak = create("short", "a@acme.test");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 12 characters"));
    let ok = create("a long enough passphrase", "a@acme.test");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'a@acme.test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(autosocial_core::password::verify(
        "a long enough passphrase",
        &hash
    ));
    let again = create("a long enough passphrase", "A@acme.test");
    assert!(
        !again.status.success(),
        "emails are case-insensitive: already a member"
    );
    let role: String = sqlx::query_scalar("SELECT role FROM memberships")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(role, "owner");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn the_operator_is_made_and_switches_the_deployment_from_the_cli(pool: PgPool) {
    let db = autosocial_core::testing::database_url(&pool).await;
    autosocial_admin::seed::create_user(
        &pool,
        "Acme",
        "ops@acme.test",
        autosocial_core::domain::Role::Viewer,
        "a long enough passphrase",
    )
    .await
    .unwrap();
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("AUTOSOCIAL_SWITCH_VALIDITY_MS", "200"),
    ];
    let out = run(
        ADMIN,
        &["operator", "grant", "--email", "nobody@acme.test"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody@acme.test"));
    let out = run(
        ADMIN,
        &["operator", "grant", "--email", "ops@acme.test"],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(ADMIN, &["operator", "list"], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ops@acme.test"));

    let out = run(
        ADMIN,
        &[
            "switch",
            "engage",
            "--global",
            "--reason",
            "datacentre move",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        ADMIN,
        &[
            "switch",
            "engage",
            "--platform",
            "x",
            "--reason",
            "X is down",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // one of the two is required, not both
    assert!(
        !run(ADMIN, &["switch", "engage", "--reason", "r"], &env)
            .status
            .success()
    );
    let listed = String::from_utf8(run(ADMIN, &["switch", "list"], &env).stdout).unwrap();
    assert!(
        listed.contains("global") && listed.contains("datacentre move"),
        "{listed}"
    );
    assert!(
        listed.contains("platform x") && listed.contains("(every agency)"),
        "{listed}"
    );
    let ids: Vec<(uuid::Uuid, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT id, agency_id FROM kill_switches WHERE disengaged_at IS NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|(_, agency)| agency.is_none()));
    for (id, _) in ids {
        let out = run(ADMIN, &["switch", "disengage", &id.to_string()], &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run(
        ADMIN,
        &["operator", "revoke", "--email", "ops@acme.test"],
        &env,
    );
    assert!(out.status.success());
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE agency_id IS NULL AND actor_label = 'operator (CLI)' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "operator.grant",
            "kill_switch.engage",
            "kill_switch.engage",
            "kill_switch.disengage",
            "kill_switch.disengage",
            "operator.revoke"
        ]
    );
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_api_key_is_created_from_the_cli_printed_once_and_limited_to_named_clients(
    pool: PgPool,
) {
    let db = autosocial_core::testing::database_url(&pool).await;
    let owner = autosocial_admin::seed::create_user(
        &pool,
        "Acme",
        "owner@acme.test",
        autosocial_core::domain::Role::Owner,
        "a long enough passphrase",
    )
    .await
    .unwrap();
    let agency: uuid::Uuid =
        sqlx::query_scalar("SELECT agency_id FROM memberships WHERE user_id = $1")
            .bind(owner)
            .fetch_one(&pool)
            .await
            .unwrap();
    let bakery = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO clients (id, agency_id, name, timezone) VALUES ($1, $2, 'Bakery', 'UTC'), ($3, $2, 'Gym', 'UTC')",
    )
    .bind(bakery)
    .bind(agency)
    .bind(uuid::Uuid::now_v7())
    .execute(&pool)
    .await
    .unwrap();
    let env = [("DATABASE_URL", db.as_str())];
    let create = |extra: &[&str]| {
        let mut args = vec![
            "api-key", "create", "--agency", "Acme", "--name", "CRM sync",
        ];
        args.extend_from_slice(extra);
        run(ADMIN, &args, &env)
    };

    // refused: no such agency, client or role; nothing is created
    let out = run(
        ADMIN,
        &[
            "api-key", "create", "--agency", "Nobody", "--name", "x", "--role", "viewer",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Nobody"));
    let out = create(&["--role", "reviewer", "--client", "Florist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Florist"));
    let out = create(&["--role", "owner"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--role"));
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(none, 0);

    let out = create(&["--role", "reviewer", "--client", "Bakery"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "only the secret: {stdout}");
    assert!(
        secret.starts_with(autosocial_core::api_keys::PREFIX),
        "{secret}"
    );
    // stored hashed, with its role and client limit, audited as the operator's command line
    let (role, all_clients, hash): (String, bool, Vec<u8>) = sqlx::query_as(
        "SELECT role, all_clients, secret_hash FROM api_keys WHERE name = 'CRM sync'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((role.as_str(), all_clients), ("reviewer", false));
    assert_ne!(hash, secret.as_bytes());
    let reached: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT client_id FROM api_key_clients")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(reached, [bakery]);
    let mut conn = pool.acquire().await.unwrap();
    let key = autosocial_core::api_keys::authenticate(&mut conn, secret)
        .await
        .unwrap()
        .expect("the printed secret is a live key");
    assert_eq!(key.agency_id, agency);
    let actor: String = sqlx::query_scalar(
        "SELECT actor_label FROM audit_log WHERE action = 'api_key.create' AND agency_id = $1",
    )
    .bind(agency)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(actor.contains("CLI"), "{actor}");
}
