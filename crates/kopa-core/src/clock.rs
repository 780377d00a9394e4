//! The node's clock: the one place that reads the time of day.
//!
//! Everything that stamps or compares times — the store (`date_added`, audit entries, peers'
//! sync times), the server (status resources, enrolment codes, request signatures), the sync loop
//! and, soon, the legal deadlines of incident reports and cooperation requests — is given a
//! [`Clock`] and asks it. Production uses [`SystemClock`]; tests use a [`TestClock`] they set and
//! advance, so that a deadline "72 hours after awareness" is tested without waiting 72 hours. A test
//! of the workspace fails when any other code reads the system time.
//!
//! Measuring durations (`std::time::Instant`: timeouts, throttling windows, benchmarks) is not
//! reading the time of day and stays where it is.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kopa_stix::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, to the microsecond.
    fn now(&self) -> Timestamp;

    /// The current time in whole seconds since the Unix epoch (request signatures).
    fn unix_seconds(&self) -> i64 {
        self.now().micros().div_euclid(1_000_000)
    }
}

/// A clock shared by the parts of a node.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // The one read of the system time in Kopa.
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_micros(i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until it is set or advanced. Clones share one time.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<Timestamp>>);

impl TestClock {
    /// A clock showing `at`.
    pub fn at(at: Timestamp) -> TestClock {
        TestClock(Arc::new(Mutex::new(at)))
    }

    /// Show `at` from now on (it may go back: a test of a clock set wrong).
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Move the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        *t = Timestamp::from_micros(t.micros().saturating_add(micros));
    }

    /// This clock, shared.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_stands_still_until_moved_and_its_clones_follow() {
        let start = Timestamp::parse("2026-12-08T00:00:00Z").unwrap();
        let clock = TestClock::at(start);
        let shared = clock.shared();
        assert_eq!(shared.now(), start);
        clock.advance(Duration::from_secs(72 * 3600));
        assert_eq!(
            shared.now(),
            Timestamp::parse("2026-12-11T00:00:00Z").unwrap()
        );
        assert_eq!(
            shared.unix_seconds(),
            start.micros() / 1_000_000 + 72 * 3600
        );
        clock.set(start);
        assert_eq!(shared.now(), start, "a clock can be set back");
    }

    #[test]
    fn the_system_clock_is_after_this_code_was_written() {
        let written = Timestamp::parse("2026-12-08T00:00:00Z").unwrap();
        assert!(SystemClock.now() > written);
    }
}
