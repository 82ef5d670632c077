//! `autosocial-sandbox --port P`: serve the platform stand-in on 127.0.0.1.

use clap::Parser;

use autosocial_sandbox::{Client, Knobs, Sandbox};

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
    /// The OAuth client id AutoSocial registers with.
    #[arg(
        long,
        env = "SANDBOX_CLIENT_ID",
        default_value = "autosocial-sandbox-client"
    )]
    client_id: String,
    #[arg(
        long,
        env = "SANDBOX_CLIENT_SECRET",
        default_value = "autosocial-sandbox-secret",
        hide_env_values = true
    )]
    client_secret: String,
    /// Approve authorization requests without showing the consent page.
    #[arg(long, env = "SANDBOX_AUTO_APPROVE")]
    auto_approve: bool,
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
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    tracing::info!(addr = %listener.local_addr()?, "sandbox listening");
    let knobs = Knobs {
        auto_approve: cli.auto_approve,
        ..Knobs::default()
    };
    let sandbox = Sandbox::new(
        Client {
            id: cli.client_id,
            secret: cli.client_secret,
        },
        issuer,
        knobs,
    );
    axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
