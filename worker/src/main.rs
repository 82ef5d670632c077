//! `autosocial-worker`: the fleet process.
//!
//! This first version validates its configuration, checks that the database schema is current,
//! connects to Redis and serves `/healthz`; the job engine (claiming, leases, retries, periodic
//! jobs) is built on top of it by the engine issue.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncWriteExt;

use autosocial_core::config::{DatabaseArgs, KeyArgs, LogArgs, RedisArgs, exit_config_error};
use autosocial_core::{db, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "autosocial-worker",
    version,
    about = "AutoSocial worker process"
)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the worker until SIGTERM or SIGINT.
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    keys: KeyArgs,
    /// Local address for /healthz (and /metrics).
    #[arg(
        long = "metrics-listen",
        env = "AUTOSOCIAL_WORKER_METRICS_LISTEN",
        value_name = "AUTOSOCIAL_WORKER_METRICS_LISTEN",
        default_value = "127.0.0.1:9101"
    )]
    metrics_listen: SocketAddr,
}

async fn health_server(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
        });
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log.log_format);
    let Command::Run(args) = cli.command;
    let _vault = args.keys.load_or_exit();
    let pool = match db::connect(&args.db.database_url, args.db.max_connections).await {
        Ok(p) => p,
        Err(e) => exit_config_error("DATABASE_URL", format!("cannot connect: {e}")),
    };
    db::ensure_migrated(&pool).await?;
    let _redis = match autosocial_core::redis::connect(&args.redis.redis_url).await {
        Ok(r) => r,
        Err(e) => exit_config_error("REDIS_URL", format!("cannot connect: {e}")),
    };
    let listener = match tokio::net::TcpListener::bind(args.metrics_listen).await {
        Ok(l) => l,
        Err(e) => exit_config_error(
            "AUTOSOCIAL_WORKER_METRICS_LISTEN",
            format!("cannot listen on {}: {e}", args.metrics_listen),
        ),
    };
    tracing::info!(health = %listener.local_addr()?, "worker started");
    let health = tokio::spawn(health_server(listener));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    health.abort();
    tracing::info!("worker stopped");
    Ok(())
}
