//! Rate limits.
//!
//! * Platform quotas per account (Instagram posts per rolling 24 h, X per 15 min and 24 h, ...),
//!   values in `platform_limits`, overridable per agency, enforced exactly from what Postgres
//!   records as published: [`quota_wait`].
//! * Short-window smoothing per account, client, agency or AI provider: [`Smoother`], a GCRA
//!   bucket shared by the fleet in Redis, in front of which each process keeps a governor
//!   limiter. When Redis is unreachable the shared bucket moves to Postgres (exact, by the
//!   database's clock); every switch between the two pauses this process's grants and starts the
//!   new bucket full, so no switch lets a burst through. The fleet returns to Redis by itself once
//!   it answers again.
//!
//! A job over a limit is rescheduled to the moment the limit allows — never dropped, never sent.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// `count` requests per `window`, spread evenly (GCRA with the given burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Emission interval: the spacing of requests at the sustained rate.
    pub interval: Duration,
    pub burst: u32,
}

impl Rate {
    pub fn per(count: u32, window: Duration) -> Rate {
        Rate {
            interval: window / count.max(1),
            burst: 1,
        }
    }
    pub fn with_burst(mut self, burst: u32) -> Rate {
        self.burst = burst.max(1);
        self
    }
    /// How far ahead of its theoretical arrival a request may come (GCRA's tau).
    fn tolerance(&self) -> Duration {
        self.interval * (self.burst - 1)
    }
}

/// How long a switch between Redis and Postgres pauses this process's grants: longer than the
/// time the other processes need to notice the same change (their probes run every
/// [`PROBE_EVERY`]), so two processes never grant from different buckets at once.
const SWITCH_PAUSE: Duration = Duration::from_millis(600);
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Redis must answer this long before the fleet trusts it again.
const PROBATION: Duration = Duration::from_secs(3);

const GCRA_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local start_full = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if start_full > 0 then tat = math.max(tat, now + start_full) end
tat = math.max(tat, now)
local allow_at = tat - tolerance
local ttl = math.ceil(tat - now + interval + 1000)
if now < allow_at then
  redis.call('SET', KEYS[1], tat, 'PX', ttl)
  return allow_at - now
end
redis.call('SET', KEYS[1], tat + interval, 'PX', ttl)
return 0
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Redis,
    Postgres,
}

struct Mode {
    backend: Backend,
    /// No grants before this instant (a backend switch just happened).
    quiet_until: Instant,
    /// Keys used since the last switch; after a switch the first use of a key starts its
    /// bucket full (the new backend never saw what the old one granted). Before any switch
    /// the backend's own state is the truth: nothing to make up for.
    seen: HashSet<String>,
    switched: bool,
    /// Since when Redis answers (while on Postgres).
    redis_ok_since: Option<Instant>,
}

/// Shared smoothing for one process. Cheap to clone.
#[derive(Clone)]
pub struct Smoother {
    redis: Option<Client>,
    pool: PgPool,
    script: Arc<fred::types::scripts::Script>,
    local: Arc<Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Smoother {
    pub fn new(pool: PgPool, redis: Option<Client>) -> Smoother {
        let backend = if redis.is_some() {
            Backend::Redis
        } else {
            Backend::Postgres
        };
        Smoother {
            redis,
            pool,
            script: Arc::new(fred::types::scripts::Script::from_lua(GCRA_LUA)),
            local: Arc::default(),
            mode: Arc::new(Mutex::new(Mode {
                backend,
                quiet_until: Instant::now(),
                seen: HashSet::new(),
                switched: false,
                redis_ok_since: None,
            })),
        }
    }

    /// Whether the shared bucket is in Redis right now (for metrics and tests).
    pub fn on_redis(&self) -> bool {
        self.mode.lock().expect("mode lock").backend == Backend::Redis
    }

    fn switch(&self, to: Backend) {
        let mut m = self.mode.lock().expect("mode lock");
        if m.backend != to {
            tracing::warn!(to = ?to, "rate-limit buckets switch backend");
            m.backend = to;
            m.quiet_until = Instant::now() + SWITCH_PAUSE;
            m.seen.clear();
            m.switched = true;
            m.redis_ok_since = None;
        }
    }

    /// Watch Redis: leave it at the first failure, return after it answered for a while.
    pub async fn probe(self, stop: tokio_util::sync::CancellationToken) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        loop {
            tokio::select! { _ = tokio::time::sleep(PROBE_EVERY) => {}, _ = stop.cancelled() => return }
            let ok = tokio::time::timeout(Duration::from_millis(250), redis.ping::<String>(None))
                .await
                .is_ok_and(|r| r.is_ok());
            let backend = self.mode.lock().expect("mode lock").backend;
            match (backend, ok) {
                (Backend::Redis, false) => self.switch(Backend::Postgres),
                (Backend::Postgres, true) => {
                    let trusted = {
                        let mut m = self.mode.lock().expect("mode lock");
                        let since = *m.redis_ok_since.get_or_insert_with(Instant::now);
                        since.elapsed() >= PROBATION
                    };
                    if trusted {
                        self.switch(Backend::Redis);
                    }
                }
                (Backend::Postgres, false) => {
                    self.mode.lock().expect("mode lock").redis_ok_since = None
                }
                (Backend::Redis, true) => {}
            }
        }
    }

    fn local_limiter(&self, key: &str, rate: Rate) -> Arc<DefaultDirectRateLimiter> {
        let mut local = self.local.lock().expect("local lock");
        local
            .entry(key.to_owned())
            .or_insert_with(|| {
                let quota = Quota::with_period(rate.interval.max(Duration::from_nanos(1)))
                    .expect("non-zero period")
                    .allow_burst(NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN));
                Arc::new(RateLimiter::direct(quota))
            })
            .clone()
    }

    /// Take one request's worth from `key`'s bucket, or learn how long to wait.
    pub async fn try_acquire(&self, key: &str, rate: Rate) -> Result<(), Duration> {
        use governor::clock::{Clock, DefaultClock};
        // this process first: cheap, and it keeps a burst inside one process from reaching Redis
        if let Err(not_until) = self.local_limiter(key, rate).check() {
            return Err(not_until.wait_time_from(DefaultClock::default().now()));
        }
        let (backend, start_full) = {
            let mut m = self.mode.lock().expect("mode lock");
            let now = Instant::now();
            if now < m.quiet_until {
                return Err(m.quiet_until - now);
            }
            let first = m.switched && m.seen.insert(key.to_owned());
            (m.backend, first)
        };
        let full = if start_full {
            rate.interval * rate.burst
        } else {
            Duration::ZERO
        };
        match backend {
            Backend::Redis => {
                let redis = self.redis.as_ref().expect("Redis backend has a client");
                let bucket = format!("autosocial:rl:{key}");
                let args = vec![
                    rate.interval.as_millis() as i64,
                    rate.tolerance().as_millis() as i64,
                    full.as_millis() as i64,
                ];
                match self
                    .script
                    .evalsha_with_reload::<i64, _, _>(redis, vec![bucket], args)
                    .await
                {
                    Ok(0) => Ok(()),
                    Ok(wait_ms) => Err(Duration::from_millis(wait_ms.max(1) as u64)),
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis rate bucket unavailable; using Postgres");
                        self.switch(Backend::Postgres);
                        Err(SWITCH_PAUSE)
                    }
                }
            }
            Backend::Postgres => match pg_gcra(&self.pool, key, rate, full).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "Postgres rate bucket unavailable; waiting");
                    Err(Duration::from_secs(1))
                }
            },
        }
    }
}

/// GCRA in Postgres, by the database's clock, one row per key (locked while deciding).
async fn pg_gcra(
    pool: &PgPool,
    key: &str,
    rate: Rate,
    start_full: Duration,
) -> sqlx::Result<Result<(), Duration>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query!(
        r#"INSERT INTO rate_buckets (key, tat) VALUES ($1, now() + make_interval(secs => $2))
           ON CONFLICT (key) DO UPDATE SET tat = greatest(rate_buckets.tat, now() + make_interval(secs => $2))
           RETURNING extract(epoch FROM greatest(tat, now()) - now())::float8 AS "ahead!""#,
        key,
        start_full.as_secs_f64()
    )
    .fetch_one(&mut *tx)
    .await?;
    // `ahead` = how far the bucket's theoretical arrival time is in the future
    let ahead = Duration::from_secs_f64(row.ahead.max(0.0));
    let tolerance = rate.tolerance();
    let result = if ahead > tolerance {
        Err(ahead - tolerance)
    } else {
        sqlx::query!(
            "UPDATE rate_buckets SET tat = greatest(tat, now()) + make_interval(secs => $2) WHERE key = $1",
            key,
            rate.interval.as_secs_f64()
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    };
    tx.commit().await?;
    Ok(result)
}

/// The fewest posts `account` may still make in any of its platform's quota windows (the
/// agency's overrides first), counting what is being published right now; `None` when the
/// platform has no quota. A cheap read without locks: callers that are far from every limit
/// need not serialise on the account (see `publishing`).
pub async fn quota_headroom(
    conn: &mut PgConnection,
    agency: Uuid,
    account: Uuid,
    platform: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        r#"SELECT min(coalesce(o.max_posts, l.max_posts) - (
                   (SELECT count(*) FROM publications WHERE account_id = $2 AND state = 'publishing')
                 + (SELECT count(*) FROM publications WHERE account_id = $2
                      AND published_at > now() - make_interval(secs => l.window_seconds::float8))))
           FROM platform_limits l
           LEFT JOIN platform_limit_overrides o
             ON o.agency_id = $1 AND o.platform = l.platform AND o.window_seconds = l.window_seconds
           WHERE l.platform = $3"#,
        agency,
        account,
        platform
    )
    .fetch_one(&mut *conn)
    .await
}

/// How long until one more post on `account` stays within every quota of its platform (the
/// agency's overrides first), counting what is published in each window and what is being
/// published right now. `None` = it may go now. Call it inside the transaction that marks the
/// publication `publishing`, after locking the account, so the fleet never overshoots.
pub async fn quota_wait(
    conn: &mut PgConnection,
    agency: Uuid,
    account: Uuid,
    platform: &str,
) -> sqlx::Result<Option<Duration>> {
    let windows = sqlx::query!(
        r#"SELECT l.window_seconds, coalesce(o.max_posts, l.max_posts) AS "max_posts!"
           FROM platform_limits l
           LEFT JOIN platform_limit_overrides o
             ON o.agency_id = $1 AND o.platform = l.platform AND o.window_seconds = l.window_seconds
           WHERE l.platform = $2"#,
        agency,
        platform
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut wait: Option<Duration> = None;
    for w in windows {
        let used = sqlx::query!(
            r#"SELECT
                 (SELECT count(*) FROM publications WHERE account_id = $1 AND state = 'publishing') AS "in_flight!",
                 (SELECT count(*) FROM publications WHERE account_id = $1 AND published_at > now() - make_interval(secs => $2)) AS "published!""#,
            account,
            f64::from(w.window_seconds)
        )
        .fetch_one(&mut *conn)
        .await?;
        let total = used.in_flight + used.published;
        if total < i64::from(w.max_posts) {
            continue;
        }
        // the post that must age out of the window before one more fits
        let excess = total - i64::from(w.max_posts); // 0-based among published, oldest first
        let until = sqlx::query_scalar!(
            r#"SELECT extract(epoch FROM published_at + make_interval(secs => $2) - now())::float8 AS "secs!"
               FROM publications WHERE account_id = $1 AND published_at > now() - make_interval(secs => $2)
               ORDER BY published_at OFFSET $3 LIMIT 1"#,
            account,
            f64::from(w.window_seconds),
            excess
        )
        .fetch_optional(&mut *conn)
        .await?;
        // only in-flight posts block: look again shortly, once they are recorded
        let this = until.map_or(Duration::from_secs(5), |s| {
            Duration::from_secs_f64(s.max(0.0)) + Duration::from_millis(10)
        });
        wait = Some(wait.map_or(this, |w| w.max(this)));
    }
    Ok(wait)
}
