//! `autosocial-sandbox --port P`: serve the platform stand-in on 127.0.0.1.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "autosocial-sandbox",
    version,
    about = "Local stand-in for the social platforms' APIs"
)]
struct Cli {
    /// Port to listen on (127.0.0.1).
    #[arg(long, env = "SANDBOX_PORT", default_value_t = 8090)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "sandbox listening");
    axum::serve(listener, autosocial_sandbox::router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
