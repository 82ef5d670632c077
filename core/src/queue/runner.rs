//! Runs jobs in a worker process: claims batches sized to free capacity, runs handlers as async
//! tasks (bounded in total and per kind), records outcomes in batches, renews leases, rescues
//! other workers' expired leases, wakes on LISTEN/NOTIFY or exactly when the next job is due,
//! and shuts down gracefully.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::job::Job;
use super::lease::Lease;
use super::{CHANNEL, ClaimedJob, NewJob, Run, RunAt};
use crate::killswitch::{Blocked, Gate, Permit};

/// What a handler decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// Try again after `delay` (a platform's Retry-After, say); counts as an attempt.
    RetryIn {
        delay: Duration,
        reason: String,
    },
    /// Not yet (a rate limit): run again after `delay` without counting an attempt.
    Postpone {
        delay: Duration,
        reason: String,
    },
    /// Not yet, but something is held for the job at `delay` (a rate-limit slot): run again
    /// then at `priority` (ahead of its kind's other due jobs), without counting an attempt.
    ComeBack {
        delay: Duration,
        priority: i16,
        reason: String,
    },
    /// A permanent failure: stop now and keep the reason.
    Fail(String),
    /// A kill switch covers the job: park it until the switch is disengaged.
    Hold(String),
    /// The handler saw a cancellation request and stopped.
    Cancelled,
    /// Done, and this follow-up job is enqueued in the same transaction (it may carry the same
    /// unique key as the finished one: a self-renewing job).
    DoneThen(Box<NewJob>),
    /// The run lost its lease (see [`Lease`]) and stopped without acting: whoever holds the job
    /// now decides. Nothing is recorded.
    LeaseLost(String),
}

impl From<Blocked> for Outcome {
    fn from(b: Blocked) -> Outcome {
        match b {
            Blocked::Switch { .. } => Outcome::Hold(b.to_string()),
            // the switches could not be read: try again soon, without counting an attempt
            Blocked::Unknown(_) => Outcome::Postpone {
                delay: Duration::from_secs(2),
                reason: b.to_string(),
            },
        }
    }
}

/// Everything a handler gets.
pub struct JobContext {
    pub job: ClaimedJob,
    pub pool: PgPool,
    /// Cancelled when someone cancels the job, its lease is lost, or shutdown's deadline passes.
    pub cancel: CancellationToken,
    pub gate: Arc<Gate>,
    /// The run's lease on the monotonic clock: check it before every platform request that
    /// creates or changes something.
    pub lease: Arc<Lease>,
}

impl JobContext {
    /// This run: the job and its claim's fencing token.
    pub fn run(&self) -> Run {
        (self.job.id, self.job.lease_token)
    }

    /// Permission to start a platform request for this job's scope. Hold the permit until the
    /// request has been sent; `Err` means a kill switch covers the scope.
    pub async fn permit(&self) -> Result<Permit, Blocked> {
        self.gate.permit(&self.job.scope).await
    }
}

pub type Handler =
    Arc<dyn Fn(JobContext) -> BoxFuture<'static, anyhow::Result<Outcome>> + Send + Sync>;

/// Wrap an async fn as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Outcome>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// Exponential backoff with full jitter: a random delay in `[0, min(cap, base * 2^(attempt-1))]`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

impl Backoff {
    /// A kind's backoff unless it sets its own.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(600),
    };

    pub fn ceiling(&self, attempt: i32) -> Duration {
        let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
        self.base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.cap)
    }
    pub fn delay(&self, attempt: i32) -> Duration {
        let ceiling = self.ceiling(attempt);
        Duration::from_secs_f64(rand::rng().random_range(0.0..=ceiling.as_secs_f64()))
    }
}

/// A job kind this worker runs.
#[derive(Clone)]
pub struct KindSpec {
    pub kind: String,
    /// At most this many of the kind in flight in this process.
    pub concurrency: usize,
    pub handler: Handler,
    pub backoff: Backoff,
    /// Periodic work: the job re-enqueues itself this long after each run (unique key
    /// `periodic:<kind>`), so any worker may run it and none doubles it.
    pub every: Option<(Duration, Value)>,
}

impl KindSpec {
    pub fn new(kind: &str, concurrency: usize, handler: Handler) -> KindSpec {
        KindSpec {
            kind: kind.to_owned(),
            concurrency: concurrency.max(1),
            handler,
            backoff: Backoff::default(),
            every: None,
        }
    }
    pub fn backoff(mut self, b: Backoff) -> KindSpec {
        self.backoff = b;
        self
    }
    pub fn periodic(mut self, every: Duration, payload: Value) -> KindSpec {
        self.every = Some((every, payload));
        self
    }

    /// The kind `J`, run by `run` with its decoded payload, with the kind's backoff and period.
    /// A payload that does not decode fails the job for good, naming the kind and the field,
    /// without calling `run`. Periodic kinds run one at a time in a process whatever
    /// `concurrency` says.
    pub fn of<J, F, Fut>(concurrency: usize, run: F) -> KindSpec
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Outcome>> + Send + 'static,
    {
        let handler: Handler = Arc::new(
            move |ctx: JobContext| -> BoxFuture<'static, anyhow::Result<Outcome>> {
                match super::job::decode::<J>(&ctx.job.payload) {
                    Ok(payload) => Box::pin(run(payload, ctx)),
                    Err(reason) => Box::pin(std::future::ready(Ok(Outcome::Fail(reason)))),
                }
            },
        );
        let spec = KindSpec::new(J::KIND, concurrency, handler).backoff(J::BACKOFF);
        match J::EVERY {
            Some(every) => KindSpec {
                concurrency: 1,
                ..spec.periodic(every, Value::Object(Default::default()))
            },
            None => spec,
        }
    }
}

pub fn periodic_key(kind: &str) -> String {
    format!("periodic:{kind}")
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub worker_id: String,
    /// Jobs in flight in this process, all kinds together.
    pub concurrency: usize,
    pub lease: Duration,
    /// Safety-net wake-up when no notification arrives.
    pub poll_interval: Duration,
    pub rescue_interval: Duration,
    /// How long shutdown waits for running jobs.
    pub shutdown_deadline: Duration,
    /// Largest batch of completions written in one statement.
    pub complete_batch: usize,
}

impl RunnerConfig {
    pub fn new(worker_id: impl Into<String>) -> RunnerConfig {
        RunnerConfig {
            worker_id: worker_id.into(),
            concurrency: 64,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            rescue_interval: Duration::from_secs(5),
            shutdown_deadline: Duration::from_secs(25),
            complete_batch: 500,
        }
    }
}

/// The fence margin for a lease: a tenth of it, at least 100 ms. Heartbeats renew every third of
/// the lease, so a healthy run always has about two thirds left; the margin only trips when
/// renewals stopped (a freeze, a database that does not answer) for most of a lease.
pub fn fence_margin(lease: Duration) -> Duration {
    (lease / 10).max(Duration::from_millis(100))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// Prometheus metrics of the runner.
pub struct Metrics {
    pub claimed: Family<KindLabel, Counter>,
    pub completed: Family<KindLabel, Counter>,
    pub failed: Family<KindLabel, Counter>,
    pub retried: Family<KindLabel, Counter>,
    pub held: Family<KindLabel, Counter>,
    /// Runs that stopped because their lease was no longer theirs (a freeze, a lost database).
    pub lease_lost: Family<KindLabel, Counter>,
    pub in_flight: Gauge,
    pub start_lag: Family<KindLabel, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        fn lag_histogram() -> Histogram {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ])
        }
        Metrics {
            claimed: Family::default(),
            completed: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            held: Family::default(),
            lease_lost: Family::default(),
            in_flight: Gauge::default(),
            start_lag: Family::new_with_constructor(lag_histogram),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "autosocial_jobs_claimed",
            "Jobs claimed",
            self.claimed.clone(),
        );
        registry.register(
            "autosocial_jobs_completed",
            "Jobs completed",
            self.completed.clone(),
        );
        registry.register(
            "autosocial_jobs_failed",
            "Jobs failed for good",
            self.failed.clone(),
        );
        registry.register(
            "autosocial_jobs_retried",
            "Job attempts that will be retried",
            self.retried.clone(),
        );
        registry.register(
            "autosocial_jobs_held",
            "Jobs parked by a kill switch",
            self.held.clone(),
        );
        registry.register(
            "autosocial_jobs_lease_lost",
            "Runs stopped without acting because their lease was taken over or ran out",
            self.lease_lost.clone(),
        );
        registry.register(
            "autosocial_jobs_in_flight",
            "Jobs running in this process",
            self.in_flight.clone(),
        );
        registry.register(
            "autosocial_job_start_lag_seconds",
            "Claim time minus run_at",
            self.start_lag.clone(),
        );
    }
}

struct Finished {
    run: Run,
    kind: String,
    attempt: i32,
    outcome: anyhow::Result<Outcome>,
}

/// A run going on in this process.
struct Running {
    cancel: CancellationToken,
    lease: Arc<Lease>,
}

/// Runs in flight, by job and claim: after a freeze this process may claim a job again while
/// its earlier, stale run of it has not noticed yet; both are tracked until each ends.
#[derive(Default)]
struct InFlight {
    jobs: HashMap<Run, Running>,
    per_kind: HashMap<String, usize>,
}

pub struct Runner {
    cfg: RunnerConfig,
    pool: PgPool,
    kinds: Vec<KindSpec>,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
}

impl Runner {
    pub fn new(
        cfg: RunnerConfig,
        pool: PgPool,
        kinds: Vec<KindSpec>,
        gate: Arc<Gate>,
        metrics: Arc<Metrics>,
    ) -> Runner {
        Runner {
            cfg,
            pool,
            kinds,
            gate,
            metrics,
        }
    }

    /// Run until `shutdown` is cancelled, then finish in-flight work within the deadline.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Runner {
            cfg,
            pool,
            kinds,
            gate,
            metrics,
        } = self;
        let specs: Arc<HashMap<String, KindSpec>> =
            Arc::new(kinds.iter().map(|k| (k.kind.clone(), k.clone())).collect());
        let kind_names: Vec<String> = kinds.iter().map(|k| k.kind.clone()).collect();
        let wake = Arc::new(Notify::new());
        let inflight = Arc::new(Mutex::new(InFlight::default()));
        let background = CancellationToken::new();

        // Periodic kinds: make sure their job exists (the unique key keeps it single).
        for spec in kinds.iter().filter(|k| k.every.is_some()) {
            let payload = spec.every.as_ref().map(|e| e.1.clone()).unwrap_or_default();
            let mut conn = pool.acquire().await?;
            super::enqueue(
                &mut conn,
                &NewJob::new(&spec.kind, payload).unique(periodic_key(&spec.kind)),
            )
            .await?;
        }

        let listener = tokio::spawn(listen(pool.clone(), wake.clone(), background.clone()));
        let heartbeat = tokio::spawn(heartbeat(
            cfg.clone(),
            pool.clone(),
            inflight.clone(),
            background.clone(),
        ));
        let rescuer = tokio::spawn(rescuer(
            cfg.clone(),
            pool.clone(),
            wake.clone(),
            background.clone(),
        ));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finished>();
        let finisher = tokio::spawn(finisher(
            cfg.clone(),
            pool.clone(),
            specs.clone(),
            inflight.clone(),
            wake.clone(),
            metrics.clone(),
            done_rx,
        ));

        let min_batch = (cfg.concurrency / 4).clamp(1, 100);
        while !shutdown.is_cancelled() {
            // What may be claimed now: every kind with room under its own limit, and the
            // process's free capacity over all of them (the claim takes the most urgent first).
            let (wants, total_free): (Vec<(String, i64)>, usize) = {
                let f = inflight.lock().expect("inflight lock");
                let mut total_free = cfg.concurrency.saturating_sub(f.jobs.len());
                // Busy: wait until a worthwhile batch fits rather than claiming a few rows at a
                // time (each claim is a round trip); idle capacity is claimed at once.
                if !f.jobs.is_empty() && total_free < min_batch {
                    total_free = 0;
                }
                let wants = kind_names
                    .iter()
                    .filter_map(|name| {
                        let running = f.per_kind.get(name).copied().unwrap_or(0);
                        let free = specs[name]
                            .concurrency
                            .saturating_sub(running)
                            .min(total_free);
                        (free > 0).then(|| (name.clone(), free as i64))
                    })
                    .collect();
                (wants, total_free)
            };
            let mut full = false;
            if !wants.is_empty() {
                let want_refs: Vec<(&str, i64)> =
                    wants.iter().map(|(k, n)| (k.as_str(), *n)).collect();
                let total = total_free as i64;
                let sent = Instant::now();
                match super::claim(&pool, &cfg.worker_id, &want_refs, total, cfg.lease).await {
                    Ok(jobs) => {
                        // as many as fit: more may be due (claim again at once)
                        full = jobs.len() as i64 == total;
                        for job in jobs {
                            let lease =
                                Arc::new(Lease::new(sent, cfg.lease, fence_margin(cfg.lease)));
                            spawn_job(
                                job, lease, &pool, &specs, &inflight, &gate, &metrics, &done_tx,
                                &shutdown,
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming jobs failed; retrying shortly");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = shutdown.cancelled() => {}
                        }
                        continue;
                    }
                }
            }
            if full {
                continue;
            }
            // Sleep until woken (a notification, freed capacity), the next due job, or the poll.
            let wait = if wants.is_empty() {
                cfg.poll_interval
            } else {
                let free_kinds: Vec<&str> = wants.iter().map(|w| w.0.as_str()).collect();
                match super::next_due_in(&pool, &free_kinds).await {
                    Ok(Some(d)) => d.max(Duration::from_millis(2)).min(cfg.poll_interval),
                    Ok(None) => cfg.poll_interval,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the next due time failed");
                        Duration::from_millis(500)
                    }
                }
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => {}
            }
        }

        // Shutdown: no more claims. Wait for running jobs, then cancel what is left.
        tracing::info!(worker = %cfg.worker_id, "stopping: finishing jobs in flight");
        let deadline = Instant::now() + cfg.shutdown_deadline;
        while !inflight.lock().expect("inflight lock").jobs.is_empty() && Instant::now() < deadline
        {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let left: Vec<CancellationToken> = inflight
            .lock()
            .expect("inflight lock")
            .jobs
            .values()
            .map(|r| r.cancel.clone())
            .collect();
        if !left.is_empty() {
            tracing::warn!(
                jobs = left.len(),
                "deadline passed; cancelling jobs still running (their leases will expire)"
            );
            for t in left {
                t.cancel();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        drop(done_tx);
        let _ = finisher.await;
        background.cancel();
        let _ = tokio::join!(listener, heartbeat, rescuer);
        tracing::info!(worker = %cfg.worker_id, "stopped");
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_job(
    job: ClaimedJob,
    lease: Arc<Lease>,
    pool: &PgPool,
    specs: &Arc<HashMap<String, KindSpec>>,
    inflight: &Arc<Mutex<InFlight>>,
    gate: &Arc<Gate>,
    metrics: &Arc<Metrics>,
    done_tx: &mpsc::UnboundedSender<Finished>,
    shutdown: &CancellationToken,
) {
    let label = KindLabel {
        kind: job.kind.clone(),
    };
    metrics.claimed.get_or_create(&label).inc();
    metrics
        .start_lag
        .get_or_create(&label)
        .observe(job.lag.as_secs_f64());
    metrics.in_flight.inc();
    let cancel = CancellationToken::new();
    let run = (job.id, job.lease_token);
    {
        let mut f = inflight.lock().expect("inflight lock");
        f.jobs.insert(
            run,
            Running {
                cancel: cancel.clone(),
                lease: lease.clone(),
            },
        );
        *f.per_kind.entry(job.kind.clone()).or_default() += 1;
    }
    let Some(spec) = specs.get(&job.kind) else {
        // claim only asks for our kinds; keep the invariant visible
        let _ = done_tx.send(Finished {
            run,
            kind: job.kind.clone(),
            attempt: job.attempt,
            outcome: Err(anyhow::anyhow!("no handler")),
        });
        return;
    };
    let handler = spec.handler.clone();
    let (pool, gate, done_tx, shutdown) = (
        pool.clone(),
        gate.clone(),
        done_tx.clone(),
        shutdown.clone(),
    );
    tokio::spawn(async move {
        let (kind, attempt) = (job.kind.clone(), job.attempt);
        let outcome = if shutdown.is_cancelled() {
            // claimed but not started: give it back untouched
            Ok(Outcome::Postpone {
                delay: Duration::ZERO,
                reason: "released at shutdown".into(),
            })
        } else {
            let ctx = JobContext {
                job,
                pool,
                cancel,
                gate,
                lease,
            };
            // a panicking handler is a failed attempt, not a dead worker
            match tokio::spawn(handler(ctx)).await {
                Ok(r) => r,
                Err(e) => Err(anyhow::anyhow!("handler panicked: {e}")),
            }
        };
        let _ = done_tx.send(Finished {
            run,
            kind,
            attempt,
            outcome,
        });
    });
}

/// Records outcomes: completions and postponements in batches, the rest one by one; frees the
/// capacity.
#[allow(clippy::too_many_arguments)]
async fn finisher(
    cfg: RunnerConfig,
    pool: PgPool,
    specs: Arc<HashMap<String, KindSpec>>,
    inflight: Arc<Mutex<InFlight>>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Finished>,
) {
    let mut batch: Vec<Finished> = Vec::with_capacity(cfg.complete_batch);
    loop {
        let Some(first) = rx.recv().await else { break };
        batch.push(first);
        while batch.len() < cfg.complete_batch {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let mut done_ids = Vec::new();
        let mut postponed = Vec::new();
        for f in batch.drain(..) {
            let label = KindLabel {
                kind: f.kind.clone(),
            };
            let spec = specs.get(&f.kind);
            let w = cfg.worker_id.as_str();
            let result = match (&f.outcome, spec.and_then(|s| s.every.as_ref())) {
                // stopped without acting: the job is someone else's now
                (Ok(Outcome::LeaseLost(why)), _) => {
                    metrics.lease_lost.get_or_create(&label).inc();
                    tracing::warn!(job = f.run.0, kind = %f.kind, reason = %why, "run stopped: lease lost");
                    Ok(())
                }
                (Ok(Outcome::Done), None) => {
                    done_ids.push(f.run);
                    metrics.completed.get_or_create(&label).inc();
                    Ok(())
                }
                // periodic work: whatever the outcome, finish and schedule the next run together
                (outcome, Some((every, payload))) => {
                    if !matches!(outcome, Ok(Outcome::Done)) {
                        tracing::warn!(kind = %f.kind, outcome = ?outcome, "periodic job did not succeed; next run scheduled anyway");
                    }
                    metrics.completed.get_or_create(&label).inc();
                    let next = NewJob::new(&f.kind, payload.clone())
                        .unique(periodic_key(&f.kind))
                        .run_at(RunAt::In(*every));
                    super::complete_and_reschedule(&pool, w, f.run, &next).await
                }
                (Ok(Outcome::RetryIn { delay, reason }), None) => {
                    record_retry(&pool, w, &f, *delay, reason, &metrics, &label).await
                }
                (Err(e), None) => {
                    let delay = spec.map(|s| s.backoff).unwrap_or_default().delay(f.attempt);
                    record_retry(&pool, w, &f, delay, &format!("{e:#}"), &metrics, &label).await
                }
                (Ok(Outcome::Postpone { delay, reason }), None) => {
                    postponed.push(super::Postponed {
                        run: f.run,
                        delay: *delay,
                        priority: None,
                        reason: reason.clone(),
                    });
                    Ok(())
                }
                (
                    Ok(Outcome::ComeBack {
                        delay,
                        priority,
                        reason,
                    }),
                    None,
                ) => {
                    postponed.push(super::Postponed {
                        run: f.run,
                        delay: *delay,
                        priority: Some(*priority),
                        reason: reason.clone(),
                    });
                    Ok(())
                }
                (Ok(Outcome::Fail(reason)), None) => {
                    metrics.failed.get_or_create(&label).inc();
                    tracing::warn!(job = f.run.0, kind = %f.kind, reason = %reason, "job failed permanently");
                    super::fail(&pool, w, f.run, reason).await
                }
                (Ok(Outcome::Hold(reason)), None) => {
                    metrics.held.get_or_create(&label).inc();
                    super::hold(&pool, w, f.run, reason).await.map(|_| ())
                }
                (Ok(Outcome::Cancelled), None) => super::mark_cancelled(&pool, w, f.run).await,
                (Ok(Outcome::DoneThen(next)), None) => {
                    metrics.completed.get_or_create(&label).inc();
                    super::complete_and_reschedule(&pool, w, f.run, next).await
                }
            };
            if let Err(e) = result {
                // The lease will expire and the rescuer will return the job: at-least-once.
                tracing::error!(job = f.run.0, error = %e, "recording a job outcome failed");
            }
            forget(&inflight, &metrics, f.run, &f.kind);
        }
        if !postponed.is_empty() {
            persist("postponements", postponed.len(), || {
                super::postpone_many(&pool, &cfg.worker_id, &postponed)
            })
            .await;
        }
        if !done_ids.is_empty() {
            persist("completions", done_ids.len(), || {
                super::complete(&pool, &cfg.worker_id, &done_ids)
            })
            .await;
        }
        wake.notify_one();
    }
}

/// Write a batch of outcomes, retrying a few times (a lost connection, a deadlock); when it
/// cannot be written the leases expire and the rescuer returns the jobs: at-least-once.
async fn persist<F, Fut>(what: &str, jobs: usize, write: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<u64>>,
{
    for tries in 1..=6u64 {
        match write().await {
            Ok(_) => return,
            Err(e) if tries < 6 => {
                tracing::warn!(error = %e, jobs, "recording {what} failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, jobs, "could not record {what}; leases will expire")
            }
        }
    }
}

async fn record_retry(
    pool: &PgPool,
    worker: &str,
    f: &Finished,
    delay: Duration,
    reason: &str,
    metrics: &Metrics,
    label: &KindLabel,
) -> sqlx::Result<()> {
    let again = super::retry_or_fail(pool, worker, f.run, delay, reason).await?;
    if again {
        metrics.retried.get_or_create(label).inc();
        tracing::info!(job = f.run.0, kind = %f.kind, attempt = f.attempt, delay_ms = delay.as_millis() as u64, reason = %reason, "job will be retried");
    } else {
        metrics.failed.get_or_create(label).inc();
        tracing::warn!(job = f.run.0, kind = %f.kind, attempt = f.attempt, reason = %reason, "job failed: attempts exhausted");
    }
    Ok(())
}

fn forget(inflight: &Mutex<InFlight>, metrics: &Metrics, run: Run, kind: &str) {
    let mut f = inflight.lock().expect("inflight lock");
    if f.jobs.remove(&run).is_some() {
        metrics.in_flight.dec();
        if let Some(n) = f.per_kind.get_mut(kind) {
            *n = n.saturating_sub(1);
        }
    }
}

/// How long until the job a notification announces is due: `"<kind> <seconds>"` (seconds from
/// the database's `now()`); a bare kind (older senders) means now.
fn due_in(payload: &str) -> Duration {
    payload
        .split_once(' ')
        .and_then(|(_, secs)| secs.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// LISTEN for new work. A job due now wakes the claimer at once (a burst folds into one
/// wake-up); one due later wakes it when its time comes, unless an earlier wake-up is pending
/// anyway (the claimer reads the next due time itself after every claim).
async fn listen(pool: PgPool, wake: Arc<Notify>, stop: CancellationToken) {
    let mut pending: Option<tokio::time::Instant> = None;
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; polling until it is back");
                tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = stop.cancelled() => return }
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed");
            tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = stop.cancelled() => return }
        }
        // anything enqueued while we were not listening
        wake.notify_one();
        loop {
            let timer = async {
                match pending {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => {
                        let due = due_in(n.payload());
                        if due < Duration::from_millis(2) {
                            wake.notify_one();
                        } else {
                            let at = tokio::time::Instant::now() + due;
                            pending = Some(pending.map_or(at, |p| p.min(at)));
                        }
                    }
                    Ok(None) => { wake.notify_one(); } // reconnected: notifications may have been lost
                    Err(e) => { tracing::warn!(error = %e, "LISTEN connection lost"); break; }
                },
                _ = timer => {
                    pending = None;
                    wake.notify_one();
                }
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// Renew the leases of running jobs; pass on cancellation requests and lost leases. Each
/// renewal extends the runs' own deadlines from the instant before it was sent.
async fn heartbeat(
    cfg: RunnerConfig,
    pool: PgPool,
    inflight: Arc<Mutex<InFlight>>,
    stop: CancellationToken,
) {
    let every = cfg.lease / 3;
    loop {
        tokio::select! { _ = tokio::time::sleep(every) => {}, _ = stop.cancelled() => return }
        let runs: Vec<Run> = inflight
            .lock()
            .expect("inflight lock")
            .jobs
            .keys()
            .copied()
            .collect();
        if runs.is_empty() {
            continue;
        }
        let sent = Instant::now();
        match super::renew(&pool, &cfg.worker_id, &runs, cfg.lease).await {
            Ok(states) => {
                let f = inflight.lock().expect("inflight lock");
                let held: std::collections::HashSet<Run> = states.iter().map(|s| s.run).collect();
                for s in &states {
                    if let Some(r) = f.jobs.get(&s.run) {
                        r.lease.extended(sent, cfg.lease);
                        if s.cancel_requested {
                            r.cancel.cancel();
                        }
                    }
                }
                for run in runs.iter().filter(|r| !held.contains(r)) {
                    if let Some(r) = f.jobs.get(run) {
                        if !r.lease.is_lost() {
                            tracing::warn!(job = run.0, "lease lost; stopping the local run");
                        }
                        r.lease.lose();
                        r.cancel.cancel();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "renewing leases failed"),
        }
    }
}

/// Return expired leases of any worker to the queue. Jittered so a fleet does not pulse.
async fn rescuer(cfg: RunnerConfig, pool: PgPool, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let jitter = rand::rng().random_range(0.5..1.5);
        tokio::select! { _ = tokio::time::sleep(cfg.rescue_interval.mul_f64(jitter)) => {}, _ = stop.cancelled() => return }
        match super::rescue_expired(&pool, 1000).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(jobs = n, "rescued jobs with expired leases");
                wake.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "rescuing expired leases failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_says_when_its_job_is_due() {
        assert_eq!(due_in("publish 0"), Duration::ZERO);
        assert_eq!(due_in("publish 1.5"), Duration::from_millis(1500));
        // older senders name only the kind; garbage counts as now
        assert_eq!(due_in("publish"), Duration::ZERO);
        assert_eq!(due_in("publish soon"), Duration::ZERO);
        assert_eq!(due_in("publish -3"), Duration::ZERO);
        assert_eq!(due_in("publish NaN"), Duration::ZERO);
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_with_full_jitter() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(2), Duration::from_secs(2));
        assert_eq!(b.ceiling(5), Duration::from_secs(16));
        assert_eq!(b.ceiling(7), Duration::from_secs(60));
        assert_eq!(b.ceiling(1000), Duration::from_secs(60));
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(5)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(16)));
        assert!(
            delays.iter().any(|d| *d < Duration::from_secs(8)),
            "jitter spreads delays"
        );
        assert!(delays.iter().any(|d| *d > Duration::from_secs(8)));
    }
}
