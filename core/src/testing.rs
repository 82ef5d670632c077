//! Helpers for tests in every crate (enabled with the `testing` feature).

use std::sync::Arc;

use crate::vault::Vault;

/// A vault with a fresh random key, for tests.
pub fn vault() -> Arc<Vault> {
    Arc::new(Vault::from_spec(&Vault::generate_entry("test")).expect("generated keys parse"))
}

/// The Redis URL the test run was given (deploy/dev test sets REDIS_URL).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}
