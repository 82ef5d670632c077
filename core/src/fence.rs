//! The fence a job puts in front of every platform request that creates or changes something.
//!
//! Exactly once and "never over a limit" are judged by what the platform saw, and a worker may
//! freeze at any point (a VM pause, memory pressure, SIGSTOP) and wake long after. Right before
//! such a request, [`JobFence::check`] makes sure that
//!
//! 1. the run still holds its job's lease, with a margin ([`Lease::check`]): otherwise the
//!    job may already be someone else's, who may find no post by our marker and publish;
//! 2. its kill-switch permit comes from a snapshot still within its validity ([`Permit::is_valid`]),
//!    asking the [`Gate`] for a new one otherwise: `engage` stops waiting for silent workers
//!    after that validity;
//! 3. its smoothing grant is younger than [`GRANT_VALIDITY`], taking a new one otherwise (and
//!    waiting for it when the wait is short): the bucket spaces grants by the platform's interval
//!    plus [`ARRIVAL_JITTER`], which only covers requests that leave within the validity. The
//!    grant is taken last, after the permit, so its age when the request leaves is what it took
//!    to answer it: under a loaded CPU, taking a permit after the grant aged it by as much again,
//!    leaving too little of [`ARRIVAL_JITTER`] for the way to the platform.
//!
//! The quota needs no grant of its own: a publication counts against its account's quotas
//! from the moment it is `publishing` until it is recorded, and only the run holding the lease
//! can send it.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::killswitch::{Blocked, Gate, Permit};
use crate::limits::{GRANT_VALIDITY, Grant, Rate, Smoother};
use crate::platforms::{Fence, NotSent, PlatformError};
use crate::queue::Scope;
use crate::queue::lease::Lease;

/// The longest a fence waits for a new smoothing grant before giving the job back to the queue.
/// A held slot lies at most [`Rate::horizon`] ahead; giving the job back would make its next run
/// reconcile again (the read that made the grant go stale in the first place), so the fence
/// waits for the slot, its lease renewed meanwhile and its kill-switch permit let go.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// The smoothing bucket a job's requests are spaced by.
pub struct Smoothing<'a> {
    pub smoother: &'a Smoother,
    pub key: String,
    pub rate: Rate,
    /// Who holds a reserved slot (the job).
    pub holder: String,
}

/// A grant from the bucket, good until `until`.
struct Granted {
    until: Instant,
}

/// The fence of one run of a job.
pub struct JobFence<'a> {
    /// `None` outside a job (a tool, a test): nothing to lose.
    lease: Option<&'a Lease>,
    gate: &'a Gate,
    scope: Scope,
    permit: tokio::sync::Mutex<Option<Permit>>,
    smoothing: Option<(Smoothing<'a>, std::sync::Mutex<Option<Granted>>)>,
}

impl<'a> JobFence<'a> {
    /// A fence for a run (with its lease, `None` outside a job) that may already hold `permit`
    /// (taken when the run started).
    pub fn new(
        lease: Option<&'a Lease>,
        gate: &'a Gate,
        scope: Scope,
        permit: Option<Permit>,
    ) -> Self {
        JobFence {
            lease,
            gate,
            scope,
            permit: tokio::sync::Mutex::new(permit),
            smoothing: None,
        }
    }

    /// Space the fenced requests by `smoothing`; `granted` is a grant the run already holds,
    /// asked for at the instant `asked` (before the call that answered it).
    pub fn smoothed(
        mut self,
        smoothing: Smoothing<'a>,
        granted: Option<(Instant, Duration)>,
    ) -> Self {
        let grant = granted.map(|(asked, age)| Granted {
            until: valid_until(asked, age),
        });
        self.smoothing = Some((smoothing, std::sync::Mutex::new(grant)));
        self
    }

    fn lease(&self) -> Result<(), PlatformError> {
        match self.lease {
            Some(l) => l
                .check()
                .map_err(|e| PlatformError::NotSent(NotSent::LeaseLost(e.to_string()))),
            None => Ok(()),
        }
    }

    async fn permit(&self) -> Result<(), PlatformError> {
        let mut slot = self.permit.lock().await;
        if slot.as_ref().is_some_and(Permit::is_valid) {
            return Ok(());
        }
        // a permit held while asking for the next would deadlock with a switch being applied
        *slot = None;
        match self.gate.permit(&self.scope).await {
            Ok(p) => {
                *slot = Some(p);
                Ok(())
            }
            Err(b @ Blocked::Switch { .. }) => {
                Err(PlatformError::NotSent(NotSent::Switched(b.to_string())))
            }
            Err(b @ Blocked::Unknown(_)) => Err(PlatformError::NotSent(NotSent::Later {
                after: Duration::from_secs(2),
                reason: b.to_string(),
            })),
        }
    }

    /// A smoothing grant younger than its validity, taken last: the permit is had first (and
    /// let go while waiting for a slot, so a switch being applied never waits for this run), so
    /// nothing but the lease check lies between the grant's answer and the request.
    async fn grant(&self) -> Result<(), PlatformError> {
        let Some((s, granted)) = &self.smoothing else {
            return Ok(());
        };
        let fresh = |g: &Option<Granted>| g.as_ref().is_some_and(|g| Instant::now() < g.until);
        if fresh(&granted.lock().expect("grant lock")) {
            return Ok(());
        }
        let give_up_at = Instant::now() + MAX_WAIT;
        loop {
            self.permit().await?;
            let asked = Instant::now();
            match s.smoother.reserve(&s.key, s.rate, &s.holder).await {
                Grant::Now { age } => {
                    *granted.lock().expect("grant lock") = Some(Granted {
                        until: valid_until(asked, age),
                    });
                    return Ok(());
                }
                Grant::Reserved(wait) | Grant::Wait(wait)
                    if Instant::now() + wait <= give_up_at =>
                {
                    // a switch applied meanwhile must not wait for this run's permit
                    *self.permit.lock().await = None;
                    tokio::time::sleep(wait).await;
                    self.lease()?;
                }
                Grant::Reserved(wait) | Grant::Wait(wait) => {
                    return Err(PlatformError::NotSent(NotSent::Later {
                        after: wait,
                        reason: "the post's smoothing grant expired before it left".into(),
                    }));
                }
            }
        }
    }
}

/// When a grant asked for at `asked` and charged `age` before its answer stops being good: the
/// charge was no earlier than `asked - age`.
fn valid_until(asked: Instant, age: Duration) -> Instant {
    asked.checked_sub(age).unwrap_or(asked) + GRANT_VALIDITY
}

impl JobFence<'_> {
    /// Whether the permit and the grant are both still good, without renewing either.
    fn all_fresh(&self) -> bool {
        let permit = self
            .permit
            .try_lock()
            .is_ok_and(|p| p.as_ref().is_some_and(Permit::is_valid));
        let grant = self.smoothing.as_ref().is_none_or(|(_, g)| {
            g.lock()
                .expect("grant lock")
                .as_ref()
                .is_some_and(|g| Instant::now() < g.until)
        });
        permit && grant
    }
}

impl Fence for JobFence<'_> {
    fn check(&self) -> BoxFuture<'_, Result<(), PlatformError>> {
        Box::pin(async move {
            // renewing one may take long enough for the other to go stale: until both hold
            for _ in 0..3 {
                self.lease()?;
                self.permit().await?;
                self.grant().await?;
                self.lease()?;
                if self.all_fresh() {
                    return Ok(());
                }
            }
            Err(PlatformError::NotSent(NotSent::Later {
                after: Duration::from_secs(1),
                reason: "the kill-switch permit and the smoothing grant could not be had together"
                    .into(),
            }))
        })
    }
}
