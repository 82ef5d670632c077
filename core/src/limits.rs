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
    /// The bucket to grant from so that requests arriving up to `jitter` after their grants
    /// still keep to `self` as the receiver counts them: the interval grows by the jitter, the
    /// burst stays. (Arrivals in any stretch `T` come from grants in a stretch `T + jitter`;
    /// with the interval `i + jitter` those number at most `burst + ⌊(T + jitter)/(i + jitter)⌋
    /// ≤ burst + ⌊T/i⌋`.)
    pub fn for_arrivals_within(self, jitter: Duration) -> Rate {
        Rate {
            interval: self.interval + jitter,
            burst: self.burst,
        }
    }
    /// How far ahead of its theoretical arrival a request may come (GCRA's tau).
    fn tolerance(&self) -> Duration {
        self.interval * (self.burst - 1)
    }
    /// How far ahead a slot may be held for a request ([`Smoother::reserve`]): a whole burst's
    /// worth, and at least half a minute. Farther than that it is asked to come back later, so
    /// a flood of requests (that may yet be cancelled) does not book the bucket for hours.
    pub fn horizon(&self) -> Duration {
        (self.interval * self.burst).max(Duration::from_secs(30))
    }
}

/// How long a grant stays good: a request that has not left within this time after the bucket
/// charged it asks again (its slot is spent; the bucket never gives it back). With
/// [`ARRIVAL_JITTER`], what a receiver sees of requests spaced by grants.
pub const GRANT_VALIDITY: Duration = Duration::from_millis(200);

/// The most a granted request may arrive after the bucket charged it: [`GRANT_VALIDITY`] until it
/// leaves, and the way from leaving to the receiver's clock. Smoothing for a receiver that counts
/// arrivals grants from [`Rate::for_arrivals_within`] this.
///
/// The way is given 100 ms. `deploy/dev bench fence --cpu-hog` measures its first part (from a
/// passed fence check to the request's first byte at a server): 0.9 ms at the median, 12 ms at
/// p99.9, 29 ms at most. The rest is the receiver being scheduled to read it: with the burst
/// benchmark's three workers, Postgres, Redis and the sandbox beside a busy loop per core, 50 ms
/// for both together let through 5 violations in one run of four under SIGKILL every 2 s.
pub const ARRIVAL_JITTER: Duration = Duration::from_millis(300);

/// What a bucket answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Go now. `age`: how long before this answer the bucket charged the request (a held slot
    /// is charged at its time); the grant is good for [`GRANT_VALIDITY`] from then.
    Now { age: Duration },
    /// The next free slot is held for the holder: ask again after this long and it is granted.
    Reserved(Duration),
    /// Nothing is held: ask again after this long.
    Wait(Duration),
}

/// How long a reserved slot stays claimable after its time. The slot was charged at its time, so
/// a holder that comes later than [`GRANT_VALIDITY`] after it finds it void and asks anew.
const RESERVATION_GRACE: Duration = GRANT_VALIDITY;
/// How long a void reservation's key lingers (so a late holder is told, not granted).
const RESERVATION_TTL: Duration = Duration::from_secs(600);

/// How long a switch between Redis and Postgres pauses this process's grants: longer than the
/// time the other processes need to notice the same change (their probes run every
/// [`PROBE_EVERY`]), so two processes never grant from different buckets at once.
const SWITCH_PAUSE: Duration = Duration::from_millis(600);
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Redis must answer this long before the fleet trusts it again.
const PROBATION: Duration = Duration::from_secs(3);

/// GCRA in Redis, by Redis's clock. KEYS[1] is the bucket, KEYS[2] its generation; with
/// KEYS[3] (a holder's reservation) a request that must wait takes the next free slot for itself
/// when it lies within the horizon, and that holder's next call at or after the slot is granted
/// without charging the bucket again (the reservation is single-use) — if it comes within the
/// grace after the slot; a later call finds the slot spent and asks the bucket anew. Returns
/// `{0, age}` (granted; the bucket charged it `age` ms ago), `{1, wait}` (a slot is held: come
/// back then) or `{2, wait}` (nothing held: ask again then); a third element 1 says the holder
/// came too late for its slot. With a lead (ARGV[7], ms) a holder is never granted at once: it
/// gets a slot held at least the lead ahead, charged at the slot's time, so that work it does
/// before sending (moving its post to `publishing`) does not age its grant. A call right after a
/// backend switch (`start_full`) fills the bucket and starts a new generation: every reservation made before it
/// is void, since the other backend granted meanwhile without knowing of them.
const GCRA_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local start_full = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
local grace = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
if start_full > 0 then
  gen = gen + 1
  redis.call('SET', KEYS[2], gen, 'PX', horizon + ttl)
end
local late = 0
local held = KEYS[3] and redis.call('GET', KEYS[3])
if held then
  local at, made_in = string.match(held, '^(%d+):(%d+)$')
  if at and tonumber(made_in) == gen then
    at = tonumber(at)
    if now < at then
      return {1, at - now}
    end
    redis.call('DEL', KEYS[3])
    if now - at <= grace then
      return {0, now - at}
    end
    late = 1
  else
    redis.call('DEL', KEYS[3])
  end
end
local lead = tonumber(ARGV[7] or '0')
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if start_full > 0 then tat = math.max(tat, now + start_full) end
tat = math.max(tat, now)
local allow_at = tat - tolerance
if KEYS[3] and lead > 0 and allow_at < now + lead then
  allow_at = now + lead
end
if now < allow_at then
  local wait = allow_at - now
  if KEYS[3] and wait <= horizon then
    local next_tat = math.max(tat, allow_at) + interval
    redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil(next_tat - now + interval + 1000))
    redis.call('SET', KEYS[3], allow_at .. ':' .. gen, 'PX', wait + ttl)
    redis.call('SET', KEYS[2], gen, 'PX', horizon + ttl)
    return {1, wait, late}
  end
  redis.call('SET', KEYS[1], tat, 'PX', math.ceil(tat - now + interval + 1000))
  return {2, wait, late}
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat - now + interval + 1000))
return {0, 0, late}
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
    late: prometheus_client::metrics::counter::Counter,
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
            late: Default::default(),
            mode: Arc::new(Mutex::new(Mode {
                backend,
                quiet_until: Instant::now(),
                seen: HashSet::new(),
                switched: false,
                redis_ok_since: None,
            })),
        }
    }

    /// Held slots whose holders came back too late for them (the slot is spent; they asked
    /// anew). Many of them mean the queue starts posts late: a busy fleet or database.
    pub fn late_slots(&self) -> prometheus_client::metrics::counter::Counter {
        self.late.clone()
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
        match self.acquire(key, rate, None, Duration::ZERO).await {
            Grant::Now { .. } => Ok(()),
            Grant::Reserved(wait) | Grant::Wait(wait) => Err(wait),
        }
    }

    /// Like [`Smoother::try_acquire`], but a `holder` that must wait gets the next free slot held
    /// for it (when it lies within [`Rate::horizon`]): asking again after the wait, it is granted
    /// without queueing behind the others that were turned away meanwhile. Many requests turned
    /// away at once thus come back once each, at their own slot, instead of all together again
    /// and again. A holder that comes back later than [`GRANT_VALIDITY`] after its slot finds it
    /// spent and asks anew. Reservations live in Redis; on the Postgres fallback every request is
    /// a plain [`Smoother::try_acquire`].
    pub async fn reserve(&self, key: &str, rate: Rate, holder: &str) -> Grant {
        self.acquire(key, rate, Some(holder), Duration::ZERO).await
    }

    /// Like [`Smoother::reserve`], but a slot is held at least `lead` from now even when the
    /// bucket would grant at once: for a holder with work to do before it sends (its grant is
    /// charged at the slot's time, not before that work). A slot already held for the holder is
    /// answered as [`Smoother::reserve`] would. On the Postgres fallback, where nothing is held,
    /// it is [`Smoother::try_acquire`]: a grant charged now, which the holder's fence asks again
    /// for if its work outlasted [`GRANT_VALIDITY`].
    pub async fn reserve_ahead(
        &self,
        key: &str,
        rate: Rate,
        holder: &str,
        lead: Duration,
    ) -> Grant {
        self.acquire(key, rate, Some(holder), lead).await
    }

    async fn acquire(&self, key: &str, rate: Rate, holder: Option<&str>, lead: Duration) -> Grant {
        use governor::clock::{Clock, DefaultClock};
        let backend = {
            let m = self.mode.lock().expect("mode lock");
            let now = Instant::now();
            if now < m.quiet_until {
                return Grant::Wait(m.quiet_until - now);
            }
            m.backend
        };
        // This process first: cheap, and it keeps a burst inside one process from reaching the
        // shared bucket. Not for reservations in Redis: a request turned away here would never
        // get its slot there.
        if (holder.is_none() || backend == Backend::Postgres)
            && let Err(not_until) = self.local_limiter(key, rate).check()
        {
            return Grant::Wait(not_until.wait_time_from(DefaultClock::default().now()));
        }
        let start_full = {
            let mut m = self.mode.lock().expect("mode lock");
            m.switched && m.seen.insert(key.to_owned())
        };
        let full = if start_full {
            rate.interval * rate.burst
        } else {
            Duration::ZERO
        };
        match backend {
            Backend::Redis => {
                let redis = self.redis.as_ref().expect("Redis backend has a client");
                // one hash slot for a bucket and its reservations (Redis Cluster)
                let bucket = format!("autosocial:rl:{{{key}}}");
                let mut keys = vec![bucket.clone(), format!("{bucket}:gen")];
                if let Some(h) = holder {
                    keys.push(format!("{bucket}:held:{h}"));
                }
                let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
                let args = vec![
                    ms(rate.interval),
                    ms(rate.tolerance()),
                    ms(full),
                    ms(rate.horizon()),
                    ms(RESERVATION_GRACE),
                    ms(RESERVATION_TTL),
                    ms(lead),
                ];
                let answer = self
                    .script
                    .evalsha_with_reload::<Vec<i64>, _, _>(redis, keys, args)
                    .await;
                let ms_of = |v: i64| Duration::from_millis(v.max(0) as u64);
                if let Ok([_, _, 1]) = answer.as_deref() {
                    self.late.inc();
                }
                match answer.as_deref() {
                    Ok([0, age, ..]) => Grant::Now { age: ms_of(*age) },
                    Ok([1, wait, ..]) => {
                        Grant::Reserved(ms_of(*wait).max(Duration::from_millis(1)))
                    }
                    Ok([2, wait, ..]) => {
                        let wait = ms_of(*wait).max(Duration::from_millis(1));
                        // beyond the horizon: come back when a slot can be held
                        Grant::Wait(match holder {
                            Some(_) => wait.saturating_sub(rate.horizon()).max(rate.interval),
                            None => wait,
                        })
                    }
                    Ok(other) => {
                        tracing::warn!(answer = ?other, "unexpected answer from the Redis rate bucket; waiting");
                        Grant::Wait(Duration::from_secs(1))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis rate bucket unavailable; using Postgres");
                        self.switch(Backend::Postgres);
                        Grant::Wait(SWITCH_PAUSE)
                    }
                }
            }
            Backend::Postgres => match pg_gcra(&self.pool, key, rate, full).await {
                Ok(Ok(())) => Grant::Now {
                    age: Duration::ZERO,
                },
                Ok(Err(wait)) => Grant::Wait(wait),
                Err(e) => {
                    tracing::warn!(error = %e, "Postgres rate bucket unavailable; waiting");
                    Grant::Wait(Duration::from_secs(1))
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

/// How long until one more post on `account` stays within every quota of its platform (the
/// agency's overrides first), counting what is published in each window and what is being
/// published right now — other than `publication` itself (an earlier attempt of it may have
/// left it `publishing`; it is the post being counted, not another one). `None` = it may go now.
/// Call it inside the transaction that marks the publication `publishing`, after locking the
/// account, so the fleet never overshoots.
pub async fn quota_wait(
    conn: &mut PgConnection,
    agency: Uuid,
    account: Uuid,
    platform: &str,
    publication: Uuid,
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
                 (SELECT count(*) FROM publications WHERE account_id = $1 AND state = 'publishing' AND id <> $3) AS "in_flight!",
                 (SELECT count(*) FROM publications WHERE account_id = $1 AND published_at > now() - make_interval(secs => $2)) AS "published!""#,
            account,
            f64::from(w.window_seconds),
            publication
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
