//! autosocial-admin: the agency console (axum + maud + htmx), the public onboarding pages, OAuth
//! callbacks, and the operator CLI.

pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod media;
pub mod pages;
pub mod seed;
pub mod statics;
