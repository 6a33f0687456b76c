//! Debounce: a request is allowed only after a quiet period of `interval_ms` with no request at
//! all. Every request that is not a PEEK, allowed or denied, starts the quiet period again.

use crate::decision::{until, Decision};

/// The limit of a debounce: one event at a time.
pub const DEBOUNCE_LIMIT: u64 = 1;

/// A debounce, remembering when the last request came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Debounce {
    pub interval_ms: u64,
    /// `None` in the fresh state.
    pub last_request_ms: Option<u64>,
}

impl Debounce {
    pub fn new(interval_ms: u64) -> Debounce {
        Debounce {
            interval_ms,
            last_request_ms: None,
        }
    }

    /// Decides a request that is recorded afterwards with [`Debounce::record`]: since it starts
    /// a new quiet period, a denied one waits the whole interval.
    pub fn decide(&self, now_ms: u64) -> Decision {
        if self.is_quiet(now_ms) {
            Decision::allow(DEBOUNCE_LIMIT, 0, self.interval_ms)
        } else {
            let interval_ms = u128::from(self.interval_ms);
            Decision::deny(DEBOUNCE_LIMIT, 0, Some(interval_ms), self.interval_ms)
        }
    }

    /// Decides a PEEK, which records nothing: it reports what is left of the current quiet
    /// period.
    pub fn peek(&self, now_ms: u64) -> Decision {
        let now_ms = self.clamp(now_ms);
        if self.is_quiet(now_ms) {
            return Decision::allow(DEBOUNCE_LIMIT, 0, self.interval_ms);
        }
        let quiet_at_ms = self.quiet_at_ms();
        Decision::deny(
            DEBOUNCE_LIMIT,
            0,
            Some(quiet_at_ms - u128::from(now_ms)),
            until(quiet_at_ms, now_ms),
        )
    }

    /// Records a request at `now_ms`, starting the quiet period again.
    pub fn record(&mut self, now_ms: u64) {
        self.last_request_ms = Some(self.clamp(now_ms));
    }

    /// Applies a new interval at `now_ms`. A quiet period that has passed stays passed: a
    /// longer interval must not bring back the request before it.
    pub fn set_interval(&mut self, interval_ms: u64, now_ms: u64) {
        if self.is_quiet(now_ms) {
            self.last_request_ms = None;
        }
        self.interval_ms = interval_ms;
    }

    pub fn reset_after_ms(&self, now_ms: u64) -> u64 {
        until(self.quiet_at_ms(), self.clamp(now_ms))
    }

    /// Checks whether the quiet period has passed at `now_ms`.
    pub fn is_quiet(&self, now_ms: u64) -> bool {
        self.quiet_at_ms() <= u128::from(self.clamp(now_ms))
    }

    /// When the current quiet period ends; 0 for a fresh debounce.
    pub fn quiet_at_ms(&self) -> u128 {
        match self.last_request_ms {
            None => 0,
            Some(last_ms) => u128::from(last_ms) + u128::from(self.interval_ms),
        }
    }

    fn clamp(&self, now_ms: u64) -> u64 {
        now_ms.max(self.last_request_ms.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_is_allowed() {
        assert_eq!(Debounce::new(100).decide(0), Decision::allow(1, 0, 100));
    }

    #[test]
    fn request_in_quiet_period_restarts_it() {
        let mut debounce = Debounce::new(100);
        debounce.record(0);
        assert_eq!(debounce.decide(60), Decision::deny(1, 0, Some(100), 100));
        debounce.record(60);
        assert!(!debounce.decide(150).allowed);
        assert!(debounce.decide(160).allowed);
    }

    #[test]
    fn peek_reports_rest_of_quiet_period() {
        let mut debounce = Debounce::new(100);
        debounce.record(0);
        assert_eq!(debounce.peek(60), Decision::deny(1, 0, Some(40), 40));
        assert_eq!(debounce.peek(100), Decision::allow(1, 0, 100));
    }

    #[test]
    fn backwards_clock_grants_nothing() {
        let mut debounce = Debounce::new(100);
        debounce.record(1000);
        assert!(!debounce.decide(10).allowed);
        assert_eq!(debounce.peek(10), Decision::deny(1, 0, Some(100), 100));
    }
}
