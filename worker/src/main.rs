//! `autosocial-worker`: the fleet process. Claims due jobs from Postgres and runs them, renews
//! leases, rescues other workers' expired leases, follows kill switches, reports presence in
//! Redis, serves `/metrics` and `/healthz`, and shuts down gracefully.

mod kinds;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use clap::{Args, Parser, Subcommand};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use autosocial_core::config::{DatabaseArgs, KeyArgs, LogArgs, RedisArgs, exit_config_error};
use autosocial_core::killswitch::Gate;
use autosocial_core::queue::runner::{Metrics, Runner, RunnerConfig};
use autosocial_core::{db, fleet, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "autosocial-worker",
    version,
    about = "AutoSocial worker process"
)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run jobs until SIGTERM or SIGINT (a second signal exits at once).
    Run(Box<RunArgs>),
}

/// A comma-separated list of job kinds (one clap value).
#[derive(Debug, Clone)]
struct KindList(Vec<String>);

fn parse_kinds(s: &str) -> Result<KindList, String> {
    let kinds: Vec<String> = s
        .split(',')
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if kinds.is_empty() {
        return Err("expected a comma-separated list of job kinds".into());
    }
    for k in &kinds {
        if kinds::find(k).is_none() {
            return Err(format!("unknown job kind `{k}`; known: {}", known_kinds()));
        }
    }
    Ok(KindList(kinds))
}

fn known_kinds() -> String {
    kinds::names().collect::<Vec<_>>().join(", ")
}

fn parse_kind_limit(s: &str) -> Result<(String, usize), String> {
    let (k, n) = s.split_once('=').ok_or("expected KIND=N")?;
    let n: usize = n
        .parse()
        .map_err(|_| "expected KIND=N with N a positive number")?;
    if n == 0 || kinds::find(k).is_none() {
        return Err(format!(
            "expected KIND=N with a known kind ({}) and N >= 1",
            known_kinds()
        ));
    }
    Ok((k.to_owned(), n))
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    platforms: autosocial_core::config::PlatformArgs,
    #[command(flatten)]
    content: autosocial_core::content::generate::ContentArgs,
    #[command(flatten)]
    outbound: autosocial_core::net_guard::OutboundArgs,

    /// Local address for /healthz and /metrics.
    #[arg(
        long = "metrics-listen",
        env = "AUTOSOCIAL_WORKER_METRICS_LISTEN",
        value_name = "AUTOSOCIAL_WORKER_METRICS_LISTEN",
        default_value = "127.0.0.1:9101"
    )]
    metrics_listen: SocketAddr,

    /// Jobs in flight in this process, all kinds together.
    #[arg(long, env = "AUTOSOCIAL_WORKER_CONCURRENCY", value_name = "AUTOSOCIAL_WORKER_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,

    /// Job kinds this process runs: every production kind by default (`noop` and `diag_sleep`
    /// are diagnostics, run only when named).
    #[arg(long, env = "AUTOSOCIAL_WORKER_KINDS", value_name = "AUTOSOCIAL_WORKER_KINDS", value_parser = parse_kinds,
          default_value = kinds::DEFAULT_LIST)]
    kinds: Option<KindList>,

    /// Per-kind limit `KIND=N` (repeatable). Default: three quarters of --concurrency when
    /// several kinds run, so one slow kind cannot take every slot.
    #[arg(long = "kind-limit", value_name = "KIND=N", value_parser = parse_kind_limit)]
    kind_limits: Vec<(String, usize)>,

    /// Lease length; leases are renewed every third of it while a job runs.
    #[arg(long = "lease-secs", env = "AUTOSOCIAL_WORKER_LEASE_SECS", value_name = "AUTOSOCIAL_WORKER_LEASE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    lease_secs: u64,

    /// How long shutdown waits for running jobs.
    #[arg(long = "shutdown-secs", env = "AUTOSOCIAL_WORKER_SHUTDOWN_SECS", value_name = "AUTOSOCIAL_WORKER_SHUTDOWN_SECS",
          default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=3600))]
    shutdown_secs: u64,

    /// Safety-net poll interval (wake-ups normally come from LISTEN/NOTIFY and due times).
    #[arg(long = "poll-secs", env = "AUTOSOCIAL_WORKER_POLL_SECS", value_name = "AUTOSOCIAL_WORKER_POLL_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    poll_secs: u64,

    /// How long finished jobs are kept before pruning.
    #[arg(long = "job-retention-hours", env = "AUTOSOCIAL_JOB_RETENTION_HOURS", value_name = "AUTOSOCIAL_JOB_RETENTION_HOURS",
          default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=87_600))]
    job_retention_hours: u64,

    /// How long a worker trusts its snapshot of the kill switches (bounds how long engaging one
    /// can take when Redis is down).
    #[arg(long = "switch-validity-ms", env = "AUTOSOCIAL_SWITCH_VALIDITY_MS", value_name = "AUTOSOCIAL_SWITCH_VALIDITY_MS",
          default_value_t = 2000, value_parser = clap::value_parser!(u64).range(200..=60_000))]
    switch_validity_ms: u64,

    /// The admin's public URL: images are given to platforms as signed links under it.
    #[arg(
        long = "public-url",
        env = "AUTOSOCIAL_PUBLIC_URL",
        value_name = "AUTOSOCIAL_PUBLIC_URL"
    )]
    public_url: Option<url::Url>,

    /// How long a signed media link stays valid.
    #[arg(long = "media-url-ttl-secs", env = "AUTOSOCIAL_MEDIA_URL_TTL_SECS", value_name = "AUTOSOCIAL_MEDIA_URL_TTL_SECS",
          default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..=7 * 86400))]
    media_url_ttl_secs: u64,

    /// Test hook: pretend the wall clock is off by this many seconds (scheduling must not care).
    #[arg(
        long = "test-clock-offset-secs",
        env = "AUTOSOCIAL_TEST_CLOCK_OFFSET_SECS",
        hide = true,
        default_value_t = 0,
        allow_hyphen_values = true
    )]
    test_clock_offset_secs: i64,
}

#[derive(Clone)]
struct HttpState {
    registry: Arc<Registry>,
    pool: sqlx::PgPool,
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    // queue depth by kind and state, read at scrape time
    if let Ok(rows) = autosocial_core::queue::depth(&s.pool).await {
        body = body.trim_end_matches("# EOF\n").to_owned();
        body.push_str("# HELP autosocial_queue_depth Unfinished jobs by kind and state.\n# TYPE autosocial_queue_depth gauge\n");
        for (kind, state, n) in rows {
            body.push_str(&format!(
                "autosocial_queue_depth{{kind=\"{kind}\",state=\"{state}\"}} {n}\n"
            ));
        }
        body.push_str("# EOF\n");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

fn wall_clock_ms(offset_secs: i64) -> i64 {
    chrono::Utc::now().timestamp_millis() + offset_secs * 1000
}

async fn presence(
    redis: fred::clients::Client,
    id: String,
    started_ms: i64,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let host = hostname();
    loop {
        let fields = [
            ("host", host.clone()),
            ("pid", std::process::id().to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("started_ms", started_ms.to_string()),
            ("in_flight", metrics.in_flight.get().to_string()),
        ];
        if let Err(e) = fleet::beat(&redis, &id, &fields).await {
            tracing::debug!(error = %e, "presence beat failed");
        }
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(3)) => {}, _ = stop.cancelled() => break }
    }
    let _ = fleet::leave(&redis, &id).await;
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// First signal: graceful shutdown. Second: exit at once (leases make that safe).
fn on_signals(shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("signal received: finishing jobs in flight (signal again to exit at once)");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        shutdown.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!(
            "second signal: exiting now; unfinished jobs return after their leases expire"
        );
        std::process::exit(130);
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log.log_format);
    let Command::Run(args) = cli.command;
    let vault = args.keys.load_or_exit();
    let pool = match db::connect_worker(&args.db.database_url, args.db.worker_pool()).await {
        Ok(p) => p,
        Err(e) => exit_config_error("DATABASE_URL", format!("cannot connect: {e}")),
    };
    db::ensure_migrated(&pool).await?;
    let redis = match autosocial_core::redis::connect(&args.redis.redis_url).await {
        Ok(r) => r,
        Err(e) => exit_config_error("REDIS_URL", format!("cannot connect: {e}")),
    };
    let listener = match tokio::net::TcpListener::bind(args.metrics_listen).await {
        Ok(l) => l,
        Err(e) => exit_config_error(
            "AUTOSOCIAL_WORKER_METRICS_LISTEN",
            format!("cannot listen on {}: {e}", args.metrics_listen),
        ),
    };

    let worker_id = format!(
        "{}-{}-{}",
        hostname(),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let started_ms = wall_clock_ms(args.test_clock_offset_secs);
    let shutdown = CancellationToken::new();
    let background = CancellationToken::new();
    on_signals(shutdown.clone());

    let gate = Gate::new(pool.clone(), Duration::from_millis(args.switch_validity_ms));
    gate.refresh().await?;
    tokio::spawn(gate.clone().keep_fresh(background.clone()));
    match autosocial_core::redis::subscriber(&args.redis.redis_url).await {
        Ok(sub) => {
            tokio::spawn(gate.clone().follow_fleet(
                sub,
                redis.clone(),
                worker_id.clone(),
                background.clone(),
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "no kill-switch subscription; switches apply within their validity")
        }
    }

    let metrics = Arc::new(Metrics::new());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let smoother = autosocial_core::limits::Smoother::new(pool.clone(), Some(redis.clone()));
    registry.register(
        "autosocial_rate_slots_spent_late",
        "Held rate-limit slots whose posts came back too late for them and asked anew",
        smoother.late_slots(),
    );
    let http = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_handler))
        .with_state(HttpState {
            registry: Arc::new(registry),
            pool: pool.clone(),
        });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, http).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    tokio::spawn(presence(
        redis.clone(),
        worker_id.clone(),
        started_ms,
        metrics.clone(),
        background.clone(),
    ));

    tokio::spawn(smoother.clone().probe(background.clone()));
    let platforms = Arc::new(args.platforms.config());
    // templates and fonts are checked only where `generate` runs
    let generates = args
        .kinds
        .as_ref()
        .is_none_or(|k| k.0.iter().any(|n| n == "generate"));
    let content = match args
        .content
        .build(pool.clone(), smoother.clone(), generates)
    {
        Ok(c) => Arc::new(c),
        Err(e) => exit_config_error(e.variable, e.message),
    };
    let ctx = kinds::Context {
        content,
        webhooks: autosocial_core::webhooks::Sender::new(vault.clone(), args.outbound.into()),
        publisher: autosocial_core::publishing::Publisher::new(
            pool.clone(),
            vault.clone(),
            platforms.clone(),
            Arc::new(smoother),
            args.public_url.clone(),
            Duration::from_secs(args.media_url_ttl_secs),
        ),
        pool: pool.clone(),
        redis: redis.clone(),
        vault,
        platforms,
        retention: Duration::from_secs(args.job_retention_hours * 3600),
    };
    let concurrency = args.concurrency as usize;
    let names: Vec<String> = args.kinds.clone().map(|k| k.0).unwrap_or_else(|| {
        kinds::KINDS
            .iter()
            .filter(|k| !k.diagnostic)
            .map(|k| k.name.to_owned())
            .collect()
    });
    let specs = names
        .iter()
        .map(|name| {
            let limit = args
                .kind_limits
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, n)| *n)
                .unwrap_or(if names.len() == 1 {
                    concurrency
                } else {
                    (concurrency * 3 / 4).max(1)
                });
            kinds::find(name)
                .expect("--kinds names only known kinds")
                .spec(limit, &ctx)
        })
        .collect();
    let mut cfg = RunnerConfig::new(worker_id.clone());
    cfg.concurrency = concurrency;
    cfg.lease = Duration::from_secs(args.lease_secs);
    cfg.shutdown_deadline = Duration::from_secs(args.shutdown_secs);
    cfg.poll_interval = Duration::from_secs(args.poll_secs);
    let runner = Runner::new(cfg, pool.clone(), specs, gate, metrics.clone());

    tracing::info!(worker = %worker_id, kinds = ?names, concurrency, "worker started");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    if let Some(every) = watchdog_interval() {
        let stop = background.clone();
        tokio::spawn(async move {
            loop {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                tokio::select! { _ = tokio::time::sleep(every) => {}, _ = stop.cancelled() => return }
            }
        });
    }
    let begun = Instant::now();
    runner.run(shutdown).await?;
    background.cancel();
    let _ = fleet::leave(&redis, &worker_id).await;
    tracing::info!(uptime_s = begun.elapsed().as_secs(), "worker stopped");
    Ok(())
}

async fn metrics_handler(state: State<HttpState>) -> impl IntoResponse {
    metrics(state).await
}

/// Half the systemd watchdog interval, when systemd asks for one.
fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}
