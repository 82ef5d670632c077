//! `autosocial-admin`: the console server and the operator's commands.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Parser, Subcommand};

use autosocial_admin::app::{self, AppState};
use autosocial_admin::config::ServeArgs;
use autosocial_admin::seed;
use autosocial_core::config::{DatabaseArgs, KeyArgs, LogArgs, exit_config_error};
use autosocial_core::domain::Role;
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
    /// Demo data for `deploy/dev demo`.
    #[command(subcommand)]
    Demo(DemoCommand),
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
    match db::connect(&db.database_url, db.max_connections).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot connect to the database at DATABASE_URL: {e}");
            std::process::exit(1)
        }
    }
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
