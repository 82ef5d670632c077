//! A run's lease as the worker itself knows it, on the monotonic clock.
//!
//! The database decides who holds a job (`locked_until`, by its own clock, and the claim's
//! fencing token). A worker that froze (a VM pause, memory pressure, SIGSTOP) cannot ask the
//! database before every step, and when it thaws it cannot tell from its own state that time has
//! passed — except through the monotonic clock, which keeps counting while the process is
//! stopped. So each run keeps a deadline: the instant *before* the statement that granted or
//! last extended its lease was sent, plus the lease. The database's deadline is never earlier
//! (its `now()` was read after that instant), so while the local deadline lies ahead, no other
//! run can hold the job.
//!
//! [`Lease::check`] asks for a margin on top: the time a request needs from the check to the
//! platform having it. What remains unfenced is a freeze that starts after a passed check and
//! before the request's first byte is on the socket, and lasts longer than the margin: that
//! window is building the request and handing it to the HTTP client's pool — well under a
//! millisecond for a lone request, a few milliseconds with a worker's 64 requests in flight, and
//! up to tens of milliseconds on a machine whose cores are all busy (`deploy/dev bench fence`
//! measures it). The margin (a tenth of the lease, at least 100 ms) is far above it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why a run may no longer act for its job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLost {
    #[error("the job's lease was taken over (another run holds it now)")]
    TakenOver,
    #[error("the job's lease ends in {left:?}, within the {margin:?} safety margin")]
    Expiring { left: Duration, margin: Duration },
    #[error("the job's lease has ended")]
    Ended,
}

/// The lease of one run of a job.
#[derive(Debug)]
pub struct Lease {
    deadline: Mutex<Instant>,
    lost: AtomicBool,
    margin: Duration,
}

impl Lease {
    /// A lease granted by a statement sent at `sent`.
    pub fn new(sent: Instant, lease: Duration, margin: Duration) -> Lease {
        Lease {
            deadline: Mutex::new(sent + lease),
            lost: AtomicBool::new(false),
            margin,
        }
    }

    /// The database extended the lease by a statement sent at `sent`.
    pub fn extended(&self, sent: Instant, lease: Duration) {
        let mut d = self.deadline.lock().expect("lease lock");
        *d = (*d).max(sent + lease);
    }

    /// A renewal found the job no longer this run's.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// How long the lease certainly lasts from now.
    pub fn left(&self) -> Duration {
        self.deadline
            .lock()
            .expect("lease lock")
            .saturating_duration_since(Instant::now())
    }

    /// Whether this run may still send a request that creates or changes something: the job is
    /// still its own, for at least the margin.
    pub fn check(&self) -> Result<(), LeaseLost> {
        if self.is_lost() {
            return Err(LeaseLost::TakenOver);
        }
        let left = self.left();
        if left.is_zero() {
            return Err(LeaseLost::Ended);
        }
        if left <= self.margin {
            return Err(LeaseLost::Expiring {
                left,
                margin: self.margin,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_until_its_margin_and_only_while_not_taken_over() {
        let now = Instant::now();
        let l = Lease::new(now, Duration::from_secs(3), Duration::from_millis(300));
        assert_eq!(l.check(), Ok(()));
        // sent 2.8 s ago with a 3 s lease: 0.2 s left, inside the margin
        let old = Lease::new(
            now - Duration::from_millis(2800),
            Duration::from_secs(3),
            Duration::from_millis(300),
        );
        assert!(matches!(old.check(), Err(LeaseLost::Expiring { .. })));
        // a renewal sent now gives it back its whole lease
        old.extended(Instant::now(), Duration::from_secs(3));
        assert_eq!(old.check(), Ok(()));
        // an older renewal never shortens it
        old.extended(now - Duration::from_secs(10), Duration::from_secs(3));
        assert_eq!(old.check(), Ok(()));
        let gone = Lease::new(
            now - Duration::from_secs(4),
            Duration::from_secs(3),
            Duration::ZERO,
        );
        assert_eq!(gone.check(), Err(LeaseLost::Ended));
        l.lose();
        assert_eq!(l.check(), Err(LeaseLost::TakenOver));
    }
}
