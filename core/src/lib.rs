//! AutoSocial core: domain types, database access, the token vault, the audit log, config and
//! telemetry shared by the worker, the admin and the tests.

pub mod accounts;
pub mod audit;
pub mod authority;
pub mod batch;
pub mod config;
pub mod content;
pub mod db;
pub mod domain;
pub mod fence;
pub mod fleet;
pub mod invitations;
pub mod items;
pub mod killswitch;
pub mod limits;
pub mod media;
pub mod onboarding;
pub mod password;
pub mod platform_apps;
pub mod platforms;
pub mod publishing;
pub mod queue;
pub mod redis;
pub mod secret;
pub mod telemetry;
pub mod tokens;
pub mod vault;

#[cfg(feature = "testing")]
pub mod settings_doc;
#[cfg(feature = "testing")]
pub mod testing;
