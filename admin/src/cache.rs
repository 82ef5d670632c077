//! A small in-process cache for figures that are expensive to count and fine to show a few
//! seconds old (the dashboard's tiles, the agency-wide calendar's per-day counts). Pages that use
//! it say when their figures were counted ("as of 14:03:07 UTC").
//!
//! * Keyed by whatever the caller names (always including the agency: one agency never sees
//!   another's figures).
//! * One computation per key at a time: concurrent requests for a missing or invalidated entry
//!   wait for the one in flight instead of each running the same queries.
//! * Expired entries are served while one background task recounts them (stale while
//!   revalidate), for at most [`TtlCache::stale_max`]; older ones are recounted in the request.
//! * A `version` (from the live-update hub: it changes whenever a change of the agency's posts
//!   or items is heard) invalidates at once: a page refreshed by a live event never shows the
//!   figures from before that event.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A value with the instant it was computed.
#[derive(Debug)]
pub struct Cached<V> {
    pub value: Arc<V>,
    pub at: DateTime<Utc>,
}

struct Entry<V> {
    value: Arc<V>,
    at: DateTime<Utc>,
    computed: Instant,
    version: u64,
}

struct Slot<V> {
    current: Mutex<Option<Entry<V>>>,
    /// Held while the entry is being (re)computed: the single flight.
    fill: Arc<tokio::sync::Mutex<()>>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            current: Mutex::new(None),
            fill: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

enum Lookup<V> {
    Fresh(Cached<V>),
    /// Expired but still servable; recount in the background.
    Stale(Cached<V>),
    Missing,
}

pub struct TtlCache<K, V> {
    ttl: Duration,
    stale_max: Duration,
    max_keys: usize,
    slots: Mutex<HashMap<K, Arc<Slot<V>>>>,
}

impl<K, V> TtlCache<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Send + Sync + 'static,
{
    /// Entries are fresh for `ttl`, served stale (while recounted) up to `stale_max`; at most
    /// `max_keys` keys are kept (the oldest go first).
    pub fn new(ttl: Duration, stale_max: Duration, max_keys: usize) -> Self {
        TtlCache {
            ttl,
            stale_max: stale_max.max(ttl),
            max_keys: max_keys.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn stale_max(&self) -> Duration {
        self.stale_max
    }

    fn slot(&self, key: &K) -> Arc<Slot<V>> {
        let mut slots = self.slots.lock().expect("cache lock");
        if let Some(s) = slots.get(key) {
            return s.clone();
        }
        if slots.len() >= self.max_keys {
            // drop what is too old to be served, then (if still full) the oldest entries
            let stale_max = self.stale_max;
            slots.retain(|_, s| {
                s.current
                    .lock()
                    .expect("cache lock")
                    .as_ref()
                    .is_some_and(|e| e.computed.elapsed() < stale_max)
            });
            while slots.len() >= self.max_keys {
                let oldest = slots
                    .iter()
                    .min_by_key(|(_, s)| {
                        s.current
                            .lock()
                            .expect("cache lock")
                            .as_ref()
                            .map(|e| e.computed)
                    })
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => drop(slots.remove(&k)),
                    None => break,
                }
            }
        }
        slots.entry(key.clone()).or_default().clone()
    }

    fn lookup(&self, slot: &Slot<V>, version: u64) -> Lookup<V> {
        let current = slot.current.lock().expect("cache lock");
        match current.as_ref() {
            Some(e) if e.version == version => {
                let c = Cached {
                    value: e.value.clone(),
                    at: e.at,
                };
                let age = e.computed.elapsed();
                if age < self.ttl {
                    Lookup::Fresh(c)
                } else if age < self.stale_max {
                    Lookup::Stale(c)
                } else {
                    Lookup::Missing
                }
            }
            _ => Lookup::Missing,
        }
    }

    fn store(
        slot: &Slot<V>,
        value: V,
        version: u64,
        started: Instant,
        at: DateTime<Utc>,
    ) -> Cached<V> {
        let value = Arc::new(value);
        let mut current = slot.current.lock().expect("cache lock");
        // a slower, older computation never replaces a newer one
        if current.as_ref().is_none_or(|e| e.computed <= started) {
            *current = Some(Entry {
                value: value.clone(),
                at,
                computed: started,
                version,
            });
        }
        Cached { value, at }
    }

    /// The cached value of `key` at `version`, or `compute()`'s (stored for the next callers).
    /// An error is returned to the caller that computed and stores nothing.
    pub async fn get_or_compute<F, Fut, E>(
        self: &Arc<Self>,
        key: K,
        version: u64,
        compute: F,
    ) -> Result<Cached<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let slot = self.slot(&key);
        match self.lookup(&slot, version) {
            Lookup::Fresh(c) => return Ok(c),
            Lookup::Stale(c) => {
                // one recount in the background; everyone is served the stale value meanwhile
                if let Ok(guard) = slot.fill.clone().try_lock_owned() {
                    let fut = compute();
                    let slot = slot.clone();
                    tokio::spawn(async move {
                        let started = Instant::now();
                        let at = Utc::now();
                        match fut.await {
                            Ok(v) => drop(Self::store(&slot, v, version, started, at)),
                            Err(e) => {
                                tracing::warn!(error = %e, "recounting cached figures failed")
                            }
                        }
                        drop(guard);
                    });
                }
                return Ok(c);
            }
            Lookup::Missing => {}
        }
        let _guard = slot.fill.lock().await;
        // someone else may have filled it while we waited
        if let Lookup::Fresh(c) | Lookup::Stale(c) = self.lookup(&slot, version) {
            return Ok(c);
        }
        let started = Instant::now();
        let at = Utc::now();
        let v = compute().await?;
        Ok(Self::store(&slot, v, version, started, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    async fn get(
        cache: &Arc<TtlCache<u32, usize>>,
        key: u32,
        version: u64,
        calls: &Arc<AtomicUsize>,
    ) -> usize {
        let calls = calls.clone();
        *cache
            .get_or_compute(key, version, move || async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, String>(calls.fetch_add(1, Ordering::SeqCst) + 1)
            })
            .await
            .unwrap()
            .value
    }

    #[tokio::test]
    async fn concurrent_misses_compute_once_and_keys_are_separate() {
        let cache = Arc::new(TtlCache::new(
            Duration::from_secs(60),
            Duration::from_secs(60),
            10,
        ));
        let calls = counter();
        let all = futures::future::join_all((0..20).map(|_| get(&cache, 1, 0, &calls))).await;
        assert!(all.iter().all(|v| *v == 1), "{all:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(get(&cache, 2, 0, &calls).await, 2, "another key computes");
        assert_eq!(get(&cache, 1, 0, &calls).await, 1, "still cached");
    }

    #[tokio::test]
    async fn a_new_version_recomputes_at_once() {
        let cache = Arc::new(TtlCache::new(
            Duration::from_secs(60),
            Duration::from_secs(60),
            10,
        ));
        let calls = counter();
        assert_eq!(get(&cache, 1, 0, &calls).await, 1);
        assert_eq!(get(&cache, 1, 1, &calls).await, 2);
        assert_eq!(get(&cache, 1, 1, &calls).await, 2);
    }

    #[tokio::test]
    async fn expired_entries_are_served_stale_once_while_recounted() {
        let cache = Arc::new(TtlCache::new(
            Duration::from_millis(50),
            Duration::from_secs(60),
            10,
        ));
        let calls = counter();
        assert_eq!(get(&cache, 1, 0, &calls).await, 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        // expired: the old value now, the recount in the background
        assert_eq!(get(&cache, 1, 0, &calls).await, 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while calls.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(get(&cache, 1, 0, &calls).await, 2);
    }

    #[tokio::test]
    async fn too_old_entries_are_recomputed_in_the_request_and_keys_are_bounded() {
        let cache = Arc::new(TtlCache::new(
            Duration::from_millis(20),
            Duration::from_millis(40),
            2,
        ));
        let calls = counter();
        assert_eq!(get(&cache, 1, 0, &calls).await, 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(get(&cache, 1, 0, &calls).await, 2);
        get(&cache, 2, 0, &calls).await;
        get(&cache, 3, 0, &calls).await;
        assert!(cache.slots.lock().unwrap().len() <= 2);
    }
}
