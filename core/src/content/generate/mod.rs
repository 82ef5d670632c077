//! The content jobs: `plan_sweep` (periodic) makes sure every active client has a `plan` job;
//! `plan` turns a client's rules into `planned` items for the next 7 days and enqueues one
//! `generate` per item; `generate` fills an item (pillar, captions, hashtags, CTA, moderation,
//! image cards) and hands it to review, or approves it when the client auto-approves.
//!
//! Idempotence: planning matches each rule's nominal slots against what is already planned
//! (`content_items.planned_for`, unique per rule) under a per-client lock, so any number of
//! workers planning one client plan each slot once. Generation claims an item by moving it
//! `planned → generating` and writes its result only while it is still `generating`; an item
//! already generated is left alone.
//!
//! - [`settings`]: the deployment's content settings (providers, image generation) and what a
//!   worker builds from them ([`Content`]);
//! - [`plan`]: the `plan_sweep` and `plan` jobs;
//! - [`generation`]: the `generate` job, as load → decide (pure) → produce → write.

mod generation;
mod plan;
mod settings;

pub use generation::{
    Generation, generate, image_aspect, image_prompt, rank_hashtags, run_generate,
};
pub use plan::{PlanReport, generate_job, plan, plan_job, plan_key, run_plan, run_sweep, sweep};
pub use settings::{ConfigError, Content, ContentArgs, ImageProviderKind, ProviderKind};

use std::time::Duration;

use uuid::Uuid;

use crate::queue::job::Job;
use crate::queue::runner::{Backoff, JobContext};

pub const PLAN: &str = crate::jobs::PlanWeek::KIND;
pub const PLAN_SWEEP: &str = crate::jobs::PlanSweep::KIND;
pub const GENERATE: &str = crate::jobs::GenerateItem::KIND;

/// Days ahead a plan covers (the local date of the run and the six after it).
pub const PLAN_DAYS: u32 = 7;
/// How often the sweep looks for clients without a plan job.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Hashtags per post at most, below any platform's own cap: more reads as spam everywhere.
pub const MAX_HASHTAGS: usize = 5;

/// Backoff of `generate` after a transient provider failure.
pub const GENERATE_BACKOFF: Backoff = crate::jobs::GenerateItem::BACKOFF;

fn payload_uuid(job: &JobContext, field: &str) -> anyhow::Result<Uuid> {
    serde_json::from_value(job.job.payload[field].clone())
        .map_err(|e| anyhow::anyhow!("payload without {field}: {e}"))
}
