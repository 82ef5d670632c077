//! AutoSocial's benchmarks and the seeding helpers they share with the worker's tests. Not part
//! of a deployment: the `autosocial-bench` binary (`deploy/dev bench NAME`) runs one benchmark,
//! which prints its figures and, as its last line, one JSON object.
//!
//! - [`api`]: the JSON API's item list and item creation under load on the console's data;
//! - [`queue`]: queue throughput, start lag and worker memory;
//! - [`burst`]: publications due at one instant against the sandbox, drained by worker processes;
//! - [`cards`]: image cards rendered and encoded per format and platform size;
//! - [`console`]: the console's busiest pages under load on a large agency;
//! - [`fence`]: the window a job's fence leaves open;
//! - [`seeding`]: accounts connected through the sandbox, due publications, the exactly-once
//!   audit, and the faults (a CPU hog, signals) the benchmarks and tests apply.

pub mod api;
pub mod burst;
pub mod cards;
pub mod console;
pub mod cpu;
pub mod fence;
pub mod queue;
pub mod seeding;

mod harness;
