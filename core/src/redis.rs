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
            c.max_command_attempts = 2;
        })
        // a command never waits longer than this, even while reconnecting: callers fall back
        .with_performance_config(|p| p.default_command_timeout = std::time::Duration::from_secs(1))
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build()?;
    client.init().await?;
    Ok(client)
}

/// A subscriber connection (pub/sub needs its own), reconnecting and resubscribing by itself.
pub async fn subscriber(url: &SecretString) -> Result<fred::clients::SubscriberClient, Error> {
    let config = Config::from_url(url.expose_secret())?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = std::time::Duration::from_secs(2);
        })
        .with_performance_config(|p| p.default_command_timeout = std::time::Duration::from_secs(2))
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build_subscriber_client()?;
    client.init().await?;
    Ok(client)
}
