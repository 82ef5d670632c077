//! `autosocial-bench`: the benchmarks `deploy/dev bench NAME` runs (queue, burst, fence, cards,
//! console, api; see each module of the library). Each prints its figures and, as its last line, one
//! JSON object.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use autosocial_bench::{api, burst, cards, console, fence, queue};

#[derive(Debug, Parser)]
#[command(name = "autosocial-bench", about = "AutoSocial benchmarks")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Publications due at one instant against the sandbox: drain time, lag, exactly-once,
    /// limits, worker memory.
    Burst {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 10_000)]
        publications: usize,
        /// The sandbox's latency per platform request.
        #[arg(long, default_value_t = 150)]
        latency_ms: u64,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Publish jobs in flight per worker process.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        #[arg(long)]
        worker_bin: Option<String>,
        /// The workers' job lease.
        #[arg(long, default_value_t = 30)]
        lease_secs: u64,
        /// Freeze one worker at a time (SIGSTOP) this often while the burst drains...
        #[arg(long)]
        freeze_every_secs: Option<f64>,
        /// ...for this long, then thaw it (SIGCONT).
        #[arg(long, default_value_t = 5.0)]
        freeze_secs: f64,
        /// Kill one worker at a time (SIGKILL) this often and start a new one.
        #[arg(long)]
        kill_every_secs: Option<f64>,
        /// Run a busy loop per core beside the benchmark.
        #[arg(long)]
        cpu_hog: bool,
    },
    /// The window a job's fence leaves open: from a passed fence check to the request's first
    /// byte at a local server, through the connector a worker uses.
    Fence {
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Requests in flight at once (a busy worker has many).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Run a busy loop per core beside the benchmark.
        #[arg(long)]
        cpu_hog: bool,
    },
    /// Image cards end to end (render + encode) per format and platform size, and the render
    /// and encode alone (1080×1080, logo, three-line headline).
    Cards {
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Also compare PNG levels and filters and the JPEG encoders (time and size).
        #[arg(long)]
        encoders: bool,
        /// The shipped fonts.
        #[arg(long, default_value = "templates/fonts")]
        fonts: std::path::PathBuf,
        /// Also write the benchmark card in every size (PNG, 540 px wide) into this directory.
        #[arg(long)]
        samples: Option<std::path::PathBuf>,
    },
    /// The console's pages under load on a large agency (10,000 clients, 1,000,000 items):
    /// requests/s and p99 of the dashboard, client list, review queue and calendar.
    Console {
        /// Postgres server URL; the benchmark keeps its own database on it.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value_t = 10_000)]
        clients: i64,
        #[arg(long, default_value_t = 1_000_000)]
        items: i64,
        /// Concurrent connections per page.
        #[arg(long, default_value_t = 50)]
        connections: u32,
        /// Seconds per page.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Seed a new database even when the kept one has the same counts.
        #[arg(long)]
        reseed: bool,
        /// The console binary (default: next to this one).
        #[arg(long)]
        admin_bin: Option<String>,
    },
    /// The JSON API on the console benchmark's data (10,000 clients, 1,000,000 items): list
    /// items p99 and create item requests/s at 50 connections.
    Api {
        /// Postgres server URL; the benchmark keeps its own database on it (the console's).
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value_t = 10_000)]
        clients: i64,
        #[arg(long, default_value_t = 1_000_000)]
        items: i64,
        /// Concurrent connections per measurement.
        #[arg(long, default_value_t = 50)]
        connections: u32,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Seed a new database even when the kept one has the same counts.
        #[arg(long)]
        reseed: bool,
        /// The console binary (default: next to this one).
        #[arg(long)]
        admin_bin: Option<String>,
    },
    /// Queue throughput, start lag and worker memory.
    Queue {
        /// Postgres server URL; the benchmark creates (and drops) its own database on it.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, env = "REDIS_URL")]
        redis_url: String,
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Jobs in flight per worker process.
        #[arg(long, default_value_t = 1000)]
        concurrency: usize,
        /// Jobs scheduled at future instants for the lag measurement.
        #[arg(long, default_value_t = 2000)]
        timed_jobs: usize,
        /// The worker binary (default: next to this one).
        #[arg(long)]
        worker_bin: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Cards {
            iterations,
            encoders,
            fonts,
            samples,
        } => cards::run(cards::Args {
            iterations,
            fonts,
            samples,
            encoders,
        }),
        Bench::Fence {
            requests,
            concurrency,
            cpu_hog,
        } => {
            fence::run(fence::Args {
                requests,
                concurrency,
                cpu_hog,
            })
            .await
        }
        Bench::Burst {
            database_url,
            redis_url,
            clients,
            publications,
            latency_ms,
            workers,
            concurrency,
            worker_bin,
            lease_secs,
            freeze_every_secs,
            freeze_secs,
            kill_every_secs,
            cpu_hog,
        } => {
            let secs = |s: f64| Duration::try_from_secs_f64(s).context("a duration in seconds");
            burst::run(burst::Args {
                database_url,
                redis_url,
                clients,
                publications,
                latency_ms,
                workers,
                concurrency,
                worker_bin,
                lease_secs,
                faults: burst::Faults {
                    freeze_every: freeze_every_secs.map(secs).transpose()?,
                    freeze_for: secs(freeze_secs)?,
                    kill_every: kill_every_secs.map(secs).transpose()?,
                },
                cpu_hog,
            })
            .await
        }
        Bench::Console {
            database_url,
            redis_url,
            clients,
            items,
            connections,
            seconds,
            reseed,
            admin_bin,
        } => {
            console::run(console::Args {
                database_url,
                redis_url,
                clients,
                items,
                connections,
                seconds,
                reseed,
                admin_bin,
            })
            .await
        }
        Bench::Api {
            database_url,
            redis_url,
            clients,
            items,
            connections,
            seconds,
            reseed,
            admin_bin,
        } => {
            api::run(api::Args {
                database_url,
                redis_url,
                clients,
                items,
                connections,
                seconds,
                reseed,
                admin_bin,
            })
            .await
        }
        Bench::Queue {
            database_url,
            redis_url,
            jobs,
            workers,
            concurrency,
            timed_jobs,
            worker_bin,
        } => {
            queue::run(queue::Args {
                database_url,
                redis_url,
                jobs,
                workers,
                concurrency,
                timed_jobs,
                worker_bin,
            })
            .await
        }
    }
}
