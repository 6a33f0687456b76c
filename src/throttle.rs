//! Throttle: at most one allowed event per `interval_ms`. A request is allowed if no request
//! was allowed in the last interval; denied requests do not move the window.

use crate::decision::{until, Decision};

/// The limit of a throttle: one event at a time.
pub const THROTTLE_LIMIT: u64 = 1;

/// A throttle, remembering when it last allowed an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttle {
    pub interval_ms: u64,
    /// `None` in the fresh state.
    pub last_allowed_ms: Option<u64>,
}

impl Throttle {
    pub fn new(interval_ms: u64) -> Throttle {
        Throttle {
            interval_ms,
            last_allowed_ms: None,
        }
    }

    /// Decides a request of `cost` units; a cost above 1 can never be allowed.
    pub fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let now_ms = self.clamp(now_ms);
        let next_ms = self.next_allowed_ms();
        let open = next_ms <= u128::from(now_ms);

        if open && cost <= THROTTLE_LIMIT {
            return Decision::allow(THROTTLE_LIMIT, 0, self.interval_ms);
        }

        let retry_after_ms = (cost <= THROTTLE_LIMIT).then(|| next_ms - u128::from(now_ms));
        Decision::deny(
            THROTTLE_LIMIT,
            u64::from(open),
            retry_after_ms,
            until(next_ms, now_ms),
        )
    }

    pub fn charge(&mut self, now_ms: u64) {
        self.last_allowed_ms = Some(self.clamp(now_ms));
    }

    /// Applies a new interval at `now_ms`. An event whose interval has passed stays passed: a
    /// longer interval must not bring it back.
    pub fn set_interval(&mut self, interval_ms: u64, now_ms: u64) {
        if self.reset_after_ms(now_ms) == 0 {
            self.last_allowed_ms = None;
        }
        self.interval_ms = interval_ms;
    }

    pub fn reset_after_ms(&self, now_ms: u64) -> u64 {
        until(self.next_allowed_ms(), self.clamp(now_ms))
    }

    /// When the next event may be allowed; 0 for a fresh throttle.
    pub fn next_allowed_ms(&self) -> u128 {
        match self.last_allowed_ms {
            None => 0,
            Some(last_ms) => u128::from(last_ms) + u128::from(self.interval_ms),
        }
    }

    fn clamp(&self, now_ms: u64) -> u64 {
        now_ms.max(self.last_allowed_ms.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_one_event_per_interval() {
        let mut throttle = Throttle::new(100);
        assert_eq!(throttle.decide(0, 1), Decision::allow(1, 0, 100));
        throttle.charge(0);
        assert_eq!(throttle.decide(40, 1), Decision::deny(1, 0, Some(60), 60));
        assert_eq!(throttle.decide(100, 1), Decision::allow(1, 0, 100));
    }

    #[test]
    fn denied_request_does_not_move_window() {
        let mut throttle = Throttle::new(100);
        throttle.charge(0);
        let _ = throttle.decide(99, 1);
        assert!(throttle.decide(100, 1).allowed);
    }

    #[test]
    fn cost_above_one_is_never_allowed() {
        let throttle = Throttle::new(100);
        assert_eq!(throttle.decide(0, 2), Decision::deny(1, 1, None, 0));
    }

    #[test]
    fn backwards_clock_grants_nothing() {
        let mut throttle = Throttle::new(100);
        throttle.charge(1000);
        assert_eq!(throttle.decide(10, 1), Decision::deny(1, 0, Some(100), 100));
    }
}
