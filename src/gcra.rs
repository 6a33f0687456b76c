//! The continuous-rate core behind `RL.TOKENBUCKET`, `RL.GCRA` and `CL.THROTTLE`.
//!
//! A token bucket that contains up to `capacity` tokens and refills at `tokens` per `period_ms`
//! makes the same decisions as the generic cell rate algorithm (GCRA) with an emission interval
//! of `period_ms / tokens` and a burst of `capacity`. GCRA states the bucket as a theoretical
//! arrival time (TAT) instead of a token count. Both views are kept exact by measuring the
//! units used in *unit-milliseconds*, units multiplied by `period_ms`. In that scale a refill
//! drains exactly `tokens` per millisecond and a request of `cost` units adds
//! `cost * period_ms`, so every step is integer arithmetic with no rounding and no drift.
//! The TAT is `at_ms + used_scaled / tokens`.
//!
//! The scaled values reach `capacity * period_ms`, below 2^63 * 2^42, so they are `u128`.

use crate::decision::{div_ceil, saturate_u64, Decision};

/// Parameters of the continuous-rate algorithms: at most `capacity` units at once, refilled
/// at `tokens` units per `period_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateParams {
    pub capacity: u64,
    pub tokens: u64,
    pub period_ms: u64,
}

/// The state of a token bucket or GCRA limiter, kept in units used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    pub params: RateParams,
    /// Units used at `at_ms`, times `period_ms`; 0 in the fresh state.
    pub used_scaled: u128,
    /// When `used_scaled` was last brought up to date.
    pub at_ms: u64,
}

impl Rate {
    pub fn new(params: RateParams) -> Rate {
        Rate {
            params,
            used_scaled: 0,
            at_ms: 0,
        }
    }

    /// Decides a request of `cost` units at `now_ms` without changing anything.
    pub fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let now_ms = now_ms.max(self.at_ms);
        let used = self.used_scaled_at(now_ms);
        let period = u128::from(self.params.period_ms);
        let full = u128::from(self.params.capacity) * period;
        let charge = u128::from(cost) * period;

        if used + charge <= full {
            let after = used + charge;
            return Decision::allow(
                self.params.capacity,
                saturate_u64((full - after) / period),
                self.drain_ms(after),
            );
        }

        // The refill drains `tokens` per millisecond, so the excess is gone after this wait.
        let retry_after_ms = (cost <= self.params.capacity)
            .then(|| div_ceil(used + charge - full, u128::from(self.params.tokens)));
        Decision::deny(
            self.params.capacity,
            saturate_u64(full.saturating_sub(used) / period),
            retry_after_ms,
            self.drain_ms(used),
        )
    }

    /// Charges `cost` units at `now_ms`; the caller has checked that [`Rate::decide`] allows it.
    pub fn charge(&mut self, now_ms: u64, cost: u64) {
        let now_ms = now_ms.max(self.at_ms);
        let period = u128::from(self.params.period_ms);
        self.used_scaled = self.used_scaled_at(now_ms) + u128::from(cost) * period;
        self.at_ms = now_ms;
    }

    /// Applies new parameters at `now_ms`. The time up to `now_ms` refills at the old rate.
    /// A new period rescales the units used and rounds up by less than one unit-millisecond of
    /// the new period, so the change never grants more than the new policy allows.
    pub fn set_params(&mut self, params: RateParams, now_ms: u64) {
        let now_ms = now_ms.max(self.at_ms);
        let used = self.used_scaled_at(now_ms);
        self.used_scaled = if params.period_ms == self.params.period_ms {
            used
        } else {
            // used * new / old, split at whole units so that no product passes 2^106.
            let old = u128::from(self.params.period_ms);
            let new = u128::from(params.period_ms);
            (used / old) * new + div_ceil((used % old) * new, old)
        };
        self.at_ms = now_ms;
        self.params = params;
    }

    pub fn reset_after_ms(&self, now_ms: u64) -> u64 {
        let now_ms = now_ms.max(self.at_ms);
        self.drain_ms(self.used_scaled_at(now_ms))
    }

    /// Units used at `now_ms`, scaled; `now_ms` must not be before `at_ms`.
    pub fn used_scaled_at(&self, now_ms: u64) -> u128 {
        let elapsed_ms = u128::from(now_ms - self.at_ms);
        let drained = elapsed_ms * u128::from(self.params.tokens);
        self.used_scaled.saturating_sub(drained)
    }

    /// Returns the theoretical arrival time of GCRA: when the bucket is full again.
    pub fn tat_ms(&self) -> u128 {
        u128::from(self.at_ms) + div_ceil(self.used_scaled, u128::from(self.params.tokens))
    }

    /// Milliseconds the refill takes to drain `used_scaled`.
    fn drain_ms(&self, used_scaled: u128) -> u64 {
        saturate_u64(div_ceil(used_scaled, u128::from(self.params.tokens)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(capacity: u64, tokens: u64, period_ms: u64) -> Rate {
        Rate::new(RateParams {
            capacity,
            tokens,
            period_ms,
        })
    }

    fn request(rate: &mut Rate, now_ms: u64, cost: u64) -> Decision {
        let decision = rate.decide(now_ms, cost);
        if decision.allowed {
            rate.charge(now_ms, cost);
        }
        decision
    }

    #[test]
    fn new_bucket_is_full() {
        let mut rate = bucket(3, 1, 1000);
        assert_eq!(request(&mut rate, 0, 1), Decision::allow(3, 2, 1000));
        assert_eq!(request(&mut rate, 0, 1), Decision::allow(3, 1, 2000));
        assert_eq!(request(&mut rate, 0, 1), Decision::allow(3, 0, 3000));
        assert_eq!(
            request(&mut rate, 0, 1),
            Decision::deny(3, 0, Some(1000), 3000)
        );
    }

    #[test]
    fn refills_continuously() {
        let mut rate = bucket(1, 10, 1000);
        request(&mut rate, 0, 1);
        assert_eq!(rate.decide(99, 1), Decision::deny(1, 0, Some(1), 1));
        assert!(rate.decide(100, 1).allowed);
    }

    #[test]
    fn fractional_refill_rounds_waits_up() {
        let mut rate = bucket(1, 3, 1000);
        request(&mut rate, 0, 1);
        // One token takes 333.33 ms to come back.
        assert_eq!(rate.decide(0, 1), Decision::deny(1, 0, Some(334), 334));
        assert!(!rate.decide(333, 1).allowed);
        assert!(rate.decide(334, 1).allowed);
    }

    #[test]
    fn cost_above_capacity_is_never_allowed() {
        let rate = bucket(5, 1, 1000);
        assert_eq!(rate.decide(0, 6), Decision::deny(5, 5, None, 0));
    }

    #[test]
    fn one_token_per_seven_seconds_does_not_drift() {
        let mut rate = bucket(1, 1, 7000);
        let year_ms = 365 * 24 * 3600 * 1000;
        let mut allowed = 0u64;
        let mut now_ms = 0;
        while now_ms <= year_ms {
            if request(&mut rate, now_ms, 1).allowed {
                allowed += 1;
            }
            now_ms += 3000;
        }
        // Requests come every 3 s and one fits every 7 s, so each is allowed at the first
        // multiple of 3 s at or after the last grant plus 7 s: every 9 s.
        assert_eq!(allowed, year_ms / 9000 + 1);
    }

    #[test]
    fn new_period_rescales_used_units() {
        let mut rate = bucket(10, 1, 1000);
        request(&mut rate, 0, 4);
        rate.set_params(
            RateParams {
                capacity: 10,
                tokens: 1,
                period_ms: 2000,
            },
            0,
        );
        assert_eq!(rate.used_scaled, 8000);
        assert_eq!(rate.reset_after_ms(0), 8000);
    }

    #[test]
    fn new_period_on_huge_usage_does_not_overflow() {
        let max = i64::MAX as u64;
        let mut rate = bucket(max, 1, 31_536_000_000);
        request(&mut rate, 0, max);
        let doubled = RateParams {
            capacity: max,
            tokens: 1,
            period_ms: 63_072_000_000,
        };
        rate.set_params(doubled, 0);
        assert_eq!(rate.used_scaled, u128::from(max) * 63_072_000_000);
    }

    #[test]
    fn backwards_clock_grants_nothing() {
        let mut rate = bucket(1, 1, 1000);
        request(&mut rate, 5000, 1);
        assert_eq!(rate.decide(10, 1), Decision::deny(1, 0, Some(1000), 1000));
    }

    #[test]
    fn largest_arguments_do_not_overflow() {
        let max = i64::MAX as u64;
        let mut rate = bucket(max, 1, 3_153_600_000_000);
        assert!(request(&mut rate, 1, max).allowed);
        let denied = rate.decide(u64::MAX, max);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_ms, i64::MAX);
        assert_eq!(denied.reset_after_ms, u64::MAX);
    }
}
