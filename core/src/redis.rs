//! Redis (fred): shared fast state of the fleet. Never the source of truth.

use fred::prelude::*;
use secrecy::{ExposeSecret, SecretString};

/// Connect a client that reconnects by itself with backoff when Redis goes away.
pub async fn connect(url: &SecretString) -> Result<Client, Error> {
    let config = Config::from_url(url.expose_secret())?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = std::time::Duration::from_secs(2);
            c.internal_command_timeout = std::time::Duration::from_secs(2);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build()?;
    client.init().await?;
    Ok(client)
}
