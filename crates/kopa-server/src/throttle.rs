//! Throttling of failed authentication, per client address and per token id.
//!
//! Each key (a client address, or the id of an existing token) may fail `failures` times in a row;
//! the allowance then comes back at one failure per `window / failures` (a leaky bucket: the generic
//! cell rate algorithm). While a key is over its allowance every authentication for it is refused
//! with 429 before any credential is checked, so a guesser learns nothing and a password-hashed
//! token costs no hashing. Successes are never counted and cost one map lookup.
//!
//! IPv6 clients are keyed by their /64 network, which one host usually controls whole. Entries
//! whose allowance is full again are dropped as the map grows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A client address (IPv6: its /64).
    Client(IpAddr),
    /// The public id of an existing token.
    Token(String),
}

impl Key {
    pub fn client(ip: IpAddr) -> Key {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Key::Client(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Key::Client(IpAddr::V6(bits.into()))
                }
            },
            v4 => Key::Client(v4),
        }
    }
}

/// The failure allowances of all keys.
pub(crate) struct Throttle {
    failures: u32,
    /// The time one failure takes to be forgotten: `window / failures`.
    interval: Duration,
    /// Per key, the time at which its allowance is full again (the algorithm's "theoretical
    /// arrival time"); absent means full.
    state: Mutex<State>,
}

struct State {
    full_at: HashMap<Key, Instant>,
    /// Prune when the map reaches this size.
    prune_at: usize,
}

const MIN_PRUNE: usize = 1024;

impl Throttle {
    /// `failures` in a row allowed per key (at least 1), the allowance coming back over `window`.
    pub fn new(failures: u32, window: Duration) -> Throttle {
        let failures = failures.max(1);
        Throttle {
            failures,
            interval: (window / failures).max(Duration::from_millis(1)),
            state: Mutex::new(State {
                full_at: HashMap::new(),
                prune_at: MIN_PRUNE,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long until `key` may fail once more, when it has used up its allowance; `None` when it
    /// may authenticate now.
    pub fn blocked(&self, key: &Key, now: Instant) -> Option<Duration> {
        let state = self.lock();
        let full_at = *state.full_at.get(key)?;
        // Each failure in the bucket takes `interval` to drain; the bucket holds `failures`.
        let used = full_at.checked_duration_since(now)?;
        let room = self.interval * (self.failures - 1);
        used.checked_sub(room).filter(|wait| !wait.is_zero())
    }

    /// Count one failure of `key`.
    pub fn fail(&self, key: Key, now: Instant) {
        let mut state = self.lock();
        if state.full_at.len() >= state.prune_at {
            state.full_at.retain(|_, full_at| *full_at > now);
            state.prune_at = (state.full_at.len() * 2).max(MIN_PRUNE);
        }
        let entry = state.full_at.entry(key).or_insert(now);
        *entry = (*entry).max(now) + self.interval;
    }

    /// Number of keys tracked (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().full_at.len()
    }
}

/// Seconds for `Retry-After`: the wait rounded up, at least 1.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Key {
        Key::client(s.parse().unwrap())
    }

    #[test]
    fn allowance_then_blocked_then_back_one_at_a_time() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let now = Instant::now();
        let k = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(t.blocked(&k, now), None);
            t.fail(k.clone(), now);
        }
        let wait = t.blocked(&k, now).expect("blocked after three failures");
        assert_eq!(wait, Duration::from_secs(20));
        assert_eq!(retry_after_seconds(wait), 20);
        // Another key is not affected.
        assert_eq!(t.blocked(&ip("192.0.2.2"), now), None);
        assert_eq!(t.blocked(&Key::Token("abc".into()), now), None);
        // One interval later, one more failure is allowed, and then blocked again.
        let later = now + Duration::from_secs(20);
        assert_eq!(t.blocked(&k, later), None);
        t.fail(k.clone(), later);
        assert!(t.blocked(&k, later).is_some());
        // After the whole window, the full allowance again.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(t.blocked(&k, much_later), None);
            t.fail(k.clone(), much_later);
        }
        assert!(t.blocked(&k, much_later).is_some());
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:bbbb::2"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
    }

    #[test]
    fn full_allowances_are_forgotten_as_the_map_grows() {
        let t = Throttle::new(1, Duration::from_secs(1));
        let now = Instant::now();
        for i in 0..MIN_PRUNE {
            t.fail(Key::Token(i.to_string()), now);
        }
        assert_eq!(t.len(), MIN_PRUNE);
        t.fail(Key::Token("new".into()), now + Duration::from_secs(2));
        assert_eq!(t.len(), 1, "drained entries pruned");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
