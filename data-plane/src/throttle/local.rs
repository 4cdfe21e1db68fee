//! In-process buckets and counters with the Redis script's semantics
//! (GCRA per level, all-or-nothing, quota before throttles): standalone's
//! only state, and a node's fallback while Redis is unreachable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::{Check, MAX_LEVELS, Outcome};

/// Keys are ours (bucket names), not attacker-chosen: a fast hash will do.
type Hasher = foldhash::fast::RandomState;

#[derive(Debug, Default)]
struct State {
    /// Theoretical arrival time (µs since `origin`) per bucket key.
    tat: HashMap<String, u64, Hasher>,
    /// Counter values (quota and daily usage) per key.
    counters: HashMap<String, i64, Hasher>,
}

#[derive(Debug)]
pub struct LocalBuckets {
    origin: Instant,
    state: Mutex<State>,
}

impl Default for LocalBuckets {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }
}

impl LocalBuckets {
    /// `at` in the buckets' time: microseconds since they were made.
    pub fn micros_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_micros()).unwrap_or(u64::MAX)
    }

    /// Decides `check` at `now_us`, with every rate split by `share`.
    pub fn decide(&self, check: &Check<'_>, now_us: u64, share: u32) -> Outcome {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(quota) = &check.quota {
            let limit = if share > 1 {
                quota.limit / i64::from(share)
            } else {
                quota.limit
            };
            if state.counters.get(&quota.key).copied().unwrap_or(0) >= limit {
                return Outcome::QuotaExceeded;
            }
        }
        let mut next = [0u64; MAX_LEVELS];
        for (level, next) in check.levels.iter().zip(&mut next) {
            let rate = level.rate.share(share);
            if rate.interval_us == 0 {
                return Outcome::Throttled;
            }
            let tat = state.tat.get(&*level.key).copied().unwrap_or(0).max(now_us);
            let new_tat = tat + rate.interval_us;
            if new_tat - now_us > rate.burst * rate.interval_us {
                return Outcome::Throttled;
            }
            *next = new_tat;
        }
        for (level, tat) in check.levels.iter().zip(next) {
            // In place when the bucket exists: no key copy on the hot path.
            match state.tat.get_mut(&*level.key) {
                Some(slot) => *slot = tat,
                None => {
                    state.tat.insert(level.key.to_string(), tat);
                }
            }
        }
        if let Some(quota) = &check.quota {
            *state.counters.entry(quota.key.clone()).or_insert(0) += 1;
        }
        if let Some(daily) = &check.daily {
            *state.counters.entry(daily.clone()).or_insert(0) += 1;
        }
        // Buckets idle for a minute are full again: forget them so the map stays small.
        if state.tat.len() > 100_000 {
            state.tat.retain(|_, tat| *tat + 60_000_000 > now_us);
        }
        Outcome::Admitted
    }

    pub fn counter(&self, key: &str) -> Option<i64> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.counters.get(key).copied()
    }

    pub fn set_counter(&self, key: &str, value: i64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.counters.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::Rate;
    use super::super::{Level, Levels, QuotaCheck};
    use super::*;

    fn check(levels: &[(&'static str, Rate)], quota: Option<i64>) -> Check<'static> {
        let mut check = Check {
            levels: Levels::default(),
            quota: quota.map(|limit| QuotaCheck {
                key: "q".into(),
                limit,
                ttl_seconds: 86_400,
            }),
            daily: Some("d".into()),
            unused_key: "-".into(),
        };
        for (k, r) in levels {
            check.levels.push(Level {
                key: (*k).into(),
                rate: *r,
            });
        }
        check
    }

    #[test]
    fn burst_then_steady_rate() {
        let b = LocalBuckets::default();
        let c = check(&[("a", Rate::new(10.0, 5))], None);
        let t0 = 1_000_000;
        let admitted = (0..20)
            .filter(|_| b.decide(&c, t0, 1) == Outcome::Admitted)
            .count();
        assert_eq!(admitted, 5);
        // 100 ms later exactly one more token has accrued.
        assert_eq!(b.decide(&c, t0 + 100_000, 1), Outcome::Admitted);
        assert_eq!(b.decide(&c, t0 + 100_000, 1), Outcome::Throttled);
        assert_eq!(b.counter("d"), Some(6));
    }

    #[test]
    fn all_levels_or_nothing() {
        let b = LocalBuckets::default();
        let wide = check(
            &[("plan", Rate::new(1.0, 100)), ("stage", Rate::new(1.0, 2))],
            None,
        );
        assert_eq!(b.decide(&wide, 0, 1), Outcome::Admitted);
        assert_eq!(b.decide(&wide, 0, 1), Outcome::Admitted);
        assert_eq!(b.decide(&wide, 0, 1), Outcome::Throttled);
        // The refused request took nothing from the plan bucket: 98 remain.
        let plan_only = check(&[("plan", Rate::new(1.0, 100))], None);
        let admitted = (0..200)
            .filter(|_| b.decide(&plan_only, 0, 1) == Outcome::Admitted)
            .count();
        assert_eq!(admitted, 98);
    }

    #[test]
    fn quota_counts_admitted_requests_only() {
        let b = LocalBuckets::default();
        let c = check(&[("a", Rate::new(1000.0, 1000))], Some(3));
        for _ in 0..3 {
            assert_eq!(b.decide(&c, 0, 1), Outcome::Admitted);
        }
        assert_eq!(b.decide(&c, 0, 1), Outcome::QuotaExceeded);
        assert_eq!(b.counter("q"), Some(3));
        let blocked = check(&[("z", Rate::new(0.0, 10))], None);
        assert_eq!(b.decide(&blocked, 0, 1), Outcome::Throttled);
    }

    #[test]
    fn shares_split_rate_and_burst() {
        let b = LocalBuckets::default();
        let c = check(&[("a", Rate::new(30.0, 30))], None);
        let admitted = (0..100)
            .filter(|_| b.decide(&c, 0, 3) == Outcome::Admitted)
            .count();
        assert_eq!(admitted, 10);
    }
}
