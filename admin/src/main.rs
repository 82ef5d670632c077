//! `autosocial-admin`: the console server and the operator's commands.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Parser, Subcommand};

use autosocial_admin::app::{self, AppState};
use autosocial_admin::config::ServeArgs;
use autosocial_admin::seed;
use autosocial_core::config::{DatabaseArgs, KeyArgs, LogArgs, exit_config_error};
use autosocial_core::domain::{Platform, Role};
use autosocial_core::{db, telemetry, vault};

#[derive(Debug, Parser)]
#[command(
    name = "autosocial-admin",
    version,
    about = "AutoSocial console and operator commands"
)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the database migrations.
    Migrate(DatabaseArgs),
    /// Serve the console, onboarding pages and OAuth callbacks.
    Serve(Box<ServeArgs>),
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the token vault's keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The deployment's operators: the only people whose console may engage global and
    /// platform-wide kill switches and act on system jobs. Only this command grants it.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Kill switches for the whole deployment, from the command line (works without the
    /// console).
    #[command(subcommand)]
    Switch(SwitchCommand),
    /// API keys of an agency, from the command line (the console's Settings → API keys does the
    /// same): for provisioning tools and `deploy/dev fuzz-api`.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Demo data for `deploy/dev demo`.
    #[command(subcommand)]
    Demo(DemoCommand),
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print its secret, once, alone on standard output (only its hash is
    /// stored). Audited as the operator's command line.
    Create(ApiKeyCreateArgs),
}

#[derive(Debug, Args)]
struct ApiKeyCreateArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// The agency's name.
    #[arg(long)]
    agency: String,
    /// What the key is for: the audit log names the key by it.
    #[arg(long)]
    name: String,
    /// viewer, reviewer or admin.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// Limit the key to this client of the agency (by name); repeat for more. Without it the key
    /// reaches every client.
    #[arg(long = "client", value_name = "NAME")]
    clients: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (and the agency, if new). The password is read from a prompt, or from
    /// standard input when it is not a terminal; never from a flag.
    Create(UserCreateArgs),
}

#[derive(Debug, Args)]
struct UserCreateArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Agency name (created if it does not exist).
    #[arg(long)]
    agency: String,
    #[arg(long)]
    email: String,
    /// owner, admin, reviewer or viewer.
    #[arg(long, value_parser = parse_role)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Make the person with this email (an existing account) an operator of the deployment.
    Grant(OperatorArgs),
    /// Take the operator's powers from the person with this email.
    Revoke(OperatorArgs),
    /// List the deployment's operators.
    List(DatabaseArgs),
}

#[derive(Debug, Args)]
struct OperatorArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[arg(long)]
    email: String,
}

#[derive(Debug, Subcommand)]
enum SwitchCommand {
    /// List every engaged kill switch of the deployment (every agency's and the deployment-wide
    /// ones).
    List(DatabaseArgs),
    /// Engage a deployment-wide switch: everything (`--global`) or one platform for every agency
    /// (`--platform x`). Returns once no worker starts a new platform request for it.
    Engage(SwitchEngageArgs),
    /// Disengage an engaged switch by its id (from `switch list`); held work resumes.
    Disengage(SwitchDisengageArgs),
}

#[derive(Debug, Args)]
struct SwitchEngageArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Redis, to tell the workers at once; without it, engaging waits out their snapshot validity.
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Stop everything, for every agency.
    #[arg(
        long,
        conflicts_with = "platform",
        required_unless_present = "platform"
    )]
    global: bool,
    /// Stop one platform for every agency.
    #[arg(long, value_parser = parse_platform)]
    platform: Option<Platform>,
    /// Why (shown to every member of every agency affected, and kept in the audit log).
    #[arg(long)]
    reason: String,
}

#[derive(Debug, Args)]
struct SwitchDisengageArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// The switch's id.
    id: uuid::Uuid,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse()
        .map_err(|_| "expected facebook, instagram, tiktok, linkedin, x or sandbox".to_string())
}

/// Redis for a switch command, if given and reachable (else the fallback wait applies).
async fn optional_redis(url: Option<&str>) -> Option<fred::clients::Client> {
    let url = url?;
    match autosocial_core::redis::connect(&secrecy::SecretString::from(url.to_owned())).await {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!(
                "Redis unreachable ({e}); waiting out the workers' snapshot validity instead"
            );
            None
        }
    }
}

/// The audit actor of the operator's command line.
fn cli_actor() -> autosocial_core::audit::Actor {
    autosocial_core::audit::Actor::system("operator (CLI)")
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|_| "expected owner, admin, reviewer or viewer".to_string())
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new random key entry (`id:BASE64`) to put first in the key file.
    Generate {
        /// The new key's id.
        #[arg(long, default_value_t = default_key_id())]
        id: String,
    },
    /// Re-encrypt every stored secret under the current (first) key, in batches, while the
    /// fleet runs.
    Rotate {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        keys: KeyArgs,
        /// Rows per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch: i64,
    },
}

fn default_key_id() -> String {
    format!("k{}", chrono::Utc::now().format("%Y%m%d%H%M%S"))
}

#[derive(Debug, Subcommand)]
enum DemoCommand {
    /// Seed the demo agency, its owner (a fresh password, printed once) and sample clients; with
    /// AUTOSOCIAL_SANDBOX_URL, connect a sandbox account for each client.
    Seed(Box<DemoSeedArgs>),
    /// Print the demo's publications as they change state (until interrupted).
    Watch(DatabaseArgs),
}

#[derive(Debug, Args)]
struct DemoSeedArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    platforms: autosocial_core::config::PlatformArgs,
}

async fn connect(db: &DatabaseArgs) -> sqlx::PgPool {
    match db::connect(&db.database_url, db.console_pool()).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot connect to the database at DATABASE_URL: {e}");
            std::process::exit(1)
        }
    }
}

/// `api-key create`: the key's secret.
async fn create_api_key(pool: &sqlx::PgPool, a: &ApiKeyCreateArgs) -> anyhow::Result<String> {
    use autosocial_core::api_keys::{self, NewKey};
    let name = a.name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 100,
        "--name must have 1 to 100 characters"
    );
    anyhow::ensure!(
        api_keys::ROLES.contains(&a.role),
        "--role must be viewer, reviewer or admin"
    );
    let agency = sqlx::query_scalar!("SELECT id FROM agencies WHERE name = $1", a.agency.trim())
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no agency is named `{}`", a.agency.trim()))?;
    let mut clients = Vec::with_capacity(a.clients.len());
    for c in &a.clients {
        let id = sqlx::query_scalar!(
            "SELECT id FROM clients WHERE agency_id = $1 AND name = $2",
            agency,
            c.trim()
        )
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the agency has no client named `{}`", c.trim()))?;
        clients.push(id);
    }
    let mut tx = pool.begin().await?;
    let created = api_keys::create(
        &mut tx,
        &cli_actor(),
        agency,
        &NewKey {
            name,
            role: a.role,
            clients: (!clients.is_empty()).then_some(clients.as_slice()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created.secret)
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == second, "the passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// Pages are built from many small strings: mimalloc serves those allocations (and the console's
/// many threads) with far less time in the allocator than the system's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log.log_format);
    match cli.command {
        Command::Migrate(dbargs) => {
            let pool = connect(&dbargs).await;
            db::MIGRATOR.run(&pool).await?;
            println!("migrations applied");
        }
        Command::Serve(args) => {
            let vault = args.keys.load_or_exit();
            let pool = connect(&args.db).await;
            db::ensure_migrated(&pool).await?;
            let redis = match autosocial_core::redis::connect(&args.redis.redis_url).await {
                Ok(r) => r,
                Err(e) => exit_config_error("REDIS_URL", format!("cannot connect: {e}")),
            };
            let listener = match tokio::net::TcpListener::bind(args.web.listen).await {
                Ok(l) => l,
                Err(e) => exit_config_error(
                    "AUTOSOCIAL_ADMIN_LISTEN",
                    format!("cannot listen on {}: {e}", args.web.listen),
                ),
            };
            tracing::info!(listen = %listener.local_addr()?, public_url = %args.web.public_url, "console listening");
            let state = AppState::new(pool, redis, vault, args.web.clone());
            app::serve(listener, state, shutdown_signal()).await?;
        }
        Command::User(UserCommand::Create(a)) => {
            let password = read_password()?;
            let pool = connect(&a.db).await;
            match seed::create_user(&pool, &a.agency, &a.email, a.role, &password).await {
                Ok(id) => println!(
                    "created {} ({}) in agency `{}` as {}",
                    a.email.trim(),
                    id,
                    a.agency.trim(),
                    a.role
                ),
                Err(e) => {
                    eprintln!("user not created: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Operator(OperatorCommand::Grant(a)) => {
            let pool = connect(&a.db).await;
            let mut tx = pool.begin().await?;
            match autosocial_core::authority::grant(&mut tx, &cli_actor(), &a.email).await {
                Ok((id, already)) => {
                    tx.commit().await?;
                    if already {
                        println!("{} ({id}) was already an operator", a.email.trim());
                    } else {
                        println!(
                            "{} ({id}) is now an operator of this deployment",
                            a.email.trim()
                        );
                    }
                }
                Err(e) => {
                    eprintln!("not granted: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Operator(OperatorCommand::Revoke(a)) => {
            let pool = connect(&a.db).await;
            let mut tx = pool.begin().await?;
            match autosocial_core::authority::revoke(&mut tx, &cli_actor(), &a.email).await {
                Ok(true) => {
                    tx.commit().await?;
                    println!("{} is no longer an operator", a.email.trim());
                }
                Ok(false) => println!("{} was not an operator", a.email.trim()),
                Err(e) => {
                    eprintln!("not revoked: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Operator(OperatorCommand::List(db)) => {
            let pool = connect(&db).await;
            let operators = autosocial_core::authority::list(&pool).await?;
            if operators.is_empty() {
                println!(
                    "no operators (grant one with `autosocial-admin operator grant --email …`)"
                );
            }
            for (email, since) in operators {
                println!("{email}\tsince {}", since.format("%Y-%m-%d %H:%M UTC"));
            }
        }
        Command::Switch(SwitchCommand::List(db)) => {
            let pool = connect(&db).await;
            let rows = sqlx::query!(
                r#"SELECT k.id, k.scope, k.platform, k.reason, k.engaged_at, a.name AS "agency?"
                   FROM kill_switches k LEFT JOIN agencies a ON a.id = k.agency_id
                   WHERE k.disengaged_at IS NULL ORDER BY k.engaged_at"#
            )
            .fetch_all(&pool)
            .await?;
            if rows.is_empty() {
                println!("no kill switch is engaged");
            }
            for r in rows {
                println!(
                    "{}\t{}{}\t{}\tsince {}\t{}",
                    r.id,
                    r.scope,
                    r.platform.map(|p| format!(" {p}")).unwrap_or_default(),
                    r.agency.unwrap_or_else(|| "(every agency)".into()),
                    r.engaged_at.format("%Y-%m-%d %H:%M UTC"),
                    r.reason
                );
            }
        }
        Command::Switch(SwitchCommand::Engage(a)) => {
            let pool = connect(&a.db).await;
            let redis = optional_redis(a.redis_url.as_deref()).await;
            let target = match a.platform {
                Some(platform) => autosocial_core::killswitch::Target::Platform {
                    agency: None,
                    platform,
                },
                None => autosocial_core::killswitch::Target::Global,
            };
            match autosocial_core::killswitch::engage(
                &pool,
                redis.as_ref(),
                *autosocial_admin::pages::switches::SWITCH_VALIDITY,
                &cli_actor(),
                target,
                &a.reason,
            )
            .await
            {
                Ok(id) => println!("engaged {id}: no new platform request for it starts anywhere"),
                Err(e) => {
                    eprintln!("not engaged: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Switch(SwitchCommand::Disengage(a)) => {
            let pool = connect(&a.db).await;
            let redis = optional_redis(a.redis_url.as_deref()).await;
            match autosocial_core::killswitch::disengage(&pool, redis.as_ref(), &cli_actor(), a.id)
                .await
            {
                Ok(released) => println!("disengaged {}; {released} held job(s) released", a.id),
                Err(e) => {
                    eprintln!("not disengaged: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Keys(KeysCommand::Generate { id }) => {
            println!("{}", vault::Vault::generate_entry(&id));
        }
        Command::Keys(KeysCommand::Rotate {
            db: dbargs,
            keys,
            batch,
        }) => {
            let v = keys.load_or_exit();
            let pool = connect(&dbargs).await;
            let report = vault::rotate(&pool, &v, batch).await?;
            println!(
                "re-encrypted {} secret(s) in {} row(s) under key `{}`; old keys can be removed from the key file once every process runs with it",
                report.ciphertexts,
                report.rows,
                v.current_key_id()
            );
        }
        Command::ApiKey(ApiKeyCommand::Create(a)) => {
            let pool = connect(&a.db).await;
            match create_api_key(&pool, &a).await {
                Ok(secret) => println!("{secret}"),
                Err(e) => {
                    eprintln!("key not created: {e}");
                    std::process::exit(1)
                }
            }
        }
        Command::Demo(DemoCommand::Seed(a)) => {
            let vault = a.keys.load_or_exit();
            let pool = connect(&a.db).await;
            let password = seed::demo(&pool).await?;
            let connected =
                seed::connect_demo_accounts(&pool, &vault, &a.platforms.config()).await?;
            if connected > 0 {
                println!("connected {connected} demo client account(s) on the sandbox platform");
                let posts = seed::schedule_demo_posts(&pool).await?;
                println!("scheduled {posts} approved demo post(s) over the next minutes");
            }
            seed::seed_demo_content(&pool).await?;
            println!("demo login: {}  password: {}", seed::DEMO_EMAIL, password);
        }
        Command::Demo(DemoCommand::Watch(db)) => {
            let pool = connect(&db).await;
            seed::watch_demo(&pool).await?;
        }
    }
    Ok(())
}
