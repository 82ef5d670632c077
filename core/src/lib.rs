//! AutoSocial core: the library the worker, the console and the tests share. It owns the data
//! model's rules (every write to a table goes through the module that owns it), the job queue,
//! the platforms, content and publishing.
//!
//! - [`accounts`]: storing a connected account, its tokens encrypted, its next refresh scheduled;
//! - [`api_keys`]: the agency's keys for the JSON API;
//! - [`audit`]: the append-only, hash-chained audit log;
//! - [`authority`]: who may reach beyond one agency (deployment-wide powers);
//! - [`batch`]: many tasks' requests of one kind folded into one database statement;
//! - [`clients`]: an agency's clients: their fields' rules and every write to them;
//! - [`config`]: settings from flags and the environment, validated at start;
//! - [`content`]: rules and their slots, planning and generating items, moderation, image cards;
//! - [`db`]: the migrator and pool construction;
//! - [`domain`]: the enums stored as text columns, typed end to end;
//! - [`fence`]: the fence in front of every platform request that creates or changes something;
//! - [`fleet`]: worker presence and kill-switch broadcast in Redis;
//! - [`invitations`]: invitations to join an agency;
//! - [`items`]: the lifecycle of content items and their publications: every state change;
//! - [`jobs`]: the job kinds, one payload struct each with its settings;
//! - [`killswitch`]: kill switches per scope and the guarantee they give;
//! - [`limits`]: platform quotas per account and smoothing;
//! - [`media`]: signed, expiring media URLs;
//! - [`onboarding`]: onboarding links for clients;
//! - [`password`]: password hashing;
//! - [`platform_apps`]: an agency's own OAuth app per platform;
//! - [`platforms`]: the platform connectors, one file per platform;
//! - [`publishing`]: approval into publications, publishing exactly once, post records, metrics;
//! - [`queue`]: the Postgres job queue and its runner;
//! - [`redis`]: the Redis connection for the fleet's shared fast state;
//! - [`secret`]: random tokens and their hashes;
//! - [`telemetry`]: tracing setup;
//! - [`tokens`]: the token lifecycle (refresh, rotation, reconnect);
//! - [`vault`]: AES-256-GCM envelopes for every secret stored;
//! - `settings_doc` (feature `testing`): the documented settings checked against the binaries;
//! - `testing` (feature `testing`): helpers for tests in every crate.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod authority;
pub mod batch;
pub mod clients;
pub mod config;
pub mod content;
pub mod db;
pub mod domain;
pub mod fence;
pub mod fleet;
pub mod invitations;
pub mod items;
pub mod jobs;
pub mod killswitch;
pub mod limits;
pub mod media;
pub mod net_guard;
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
pub mod webhooks;

#[cfg(feature = "testing")]
pub mod settings_doc;
#[cfg(feature = "testing")]
pub mod testing;
