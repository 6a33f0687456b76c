//! Fixed window: the window opens with the first allowed request and lasts `window_ms`; at most
//! `limit` units are allowed in it. Denied requests are not counted.

use crate::decision::{until, Decision};

/// Parameters of `RL.FIXED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedParams {
    pub limit: u64,
    pub window_ms: u64,
}

/// A fixed-window counter. `used == 0` is the fresh state, whatever `window_start_ms` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub params: FixedParams,
    pub window_start_ms: u64,
    pub used: u64,
}

impl Fixed {
    pub fn new(params: FixedParams) -> Fixed {
        Fixed {
            params,
            window_start_ms: 0,
            used: 0,
        }
    }

    /// Decides a request of `cost` units at `now_ms` without changing anything.
    pub fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let now_ms = self.clamp(now_ms);
        let used = self.used_at(now_ms);
        let limit = self.params.limit;
        let window_end = self.window_end_ms();

        if used <= limit && cost <= limit - used {
            let reset_after_ms = if used == 0 {
                self.params.window_ms
            } else {
                until(window_end, now_ms)
            };
            return Decision::allow(limit, limit - used - cost, reset_after_ms);
        }

        let reset_after_ms = if used == 0 {
            0
        } else {
            until(window_end, now_ms)
        };
        // A cost within the limit fits once this window closes, and the window is open here
        // because a closed one has nothing used.
        let retry_after_ms = (cost <= limit).then(|| window_end - u128::from(now_ms));
        Decision::deny(
            limit,
            limit.saturating_sub(used),
            retry_after_ms,
            reset_after_ms,
        )
    }

    /// Charges `cost` units at `now_ms`; the caller has checked that [`Fixed::decide`] allows it.
    pub fn charge(&mut self, now_ms: u64, cost: u64) {
        let now_ms = self.clamp(now_ms);
        if self.used_at(now_ms) == 0 {
            self.window_start_ms = now_ms;
            self.used = cost;
        } else {
            self.used += cost;
        }
    }

    /// Applies new parameters at `now_ms`. A window that has closed stays closed, so a longer
    /// window does not bring back the units of a window that ended.
    pub fn set_params(&mut self, params: FixedParams, now_ms: u64) {
        if self.used_at(self.clamp(now_ms)) == 0 {
            self.used = 0;
        }
        self.params = params;
    }

    pub fn reset_after_ms(&self, now_ms: u64) -> u64 {
        let now_ms = self.clamp(now_ms);
        if self.used_at(now_ms) == 0 {
            0
        } else {
            until(self.window_end_ms(), now_ms)
        }
    }

    /// Units used in the window that is open at `now_ms`.
    pub fn used_at(&self, now_ms: u64) -> u64 {
        if u128::from(now_ms) >= self.window_end_ms() {
            0
        } else {
            self.used
        }
    }

    fn window_end_ms(&self) -> u128 {
        u128::from(self.window_start_ms) + u128::from(self.params.window_ms)
    }

    /// Moves a clock that went back before the window opened to the window's start, as if no
    /// time passed.
    fn clamp(&self, now_ms: u64) -> u64 {
        if self.used > 0 {
            now_ms.max(self.window_start_ms)
        } else {
            now_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: u64, window_ms: u64) -> Fixed {
        Fixed::new(FixedParams { limit, window_ms })
    }

    fn request(fixed: &mut Fixed, now_ms: u64, cost: u64) -> Decision {
        let decision = fixed.decide(now_ms, cost);
        if decision.allowed {
            fixed.charge(now_ms, cost);
        }
        decision
    }

    #[test]
    fn allows_up_to_limit_then_denies() {
        let mut fixed = limiter(3, 1000);
        assert_eq!(request(&mut fixed, 0, 1), Decision::allow(3, 2, 1000));
        assert_eq!(request(&mut fixed, 10, 1), Decision::allow(3, 1, 990));
        assert_eq!(request(&mut fixed, 20, 1), Decision::allow(3, 0, 980));
        assert_eq!(
            request(&mut fixed, 30, 1),
            Decision::deny(3, 0, Some(970), 970)
        );
    }

    #[test]
    fn window_opens_with_first_allowed_request() {
        let mut fixed = limiter(1, 1000);
        request(&mut fixed, 5000, 1);
        assert_eq!(fixed.window_start_ms, 5000);
        assert!(!request(&mut fixed, 5999, 1).allowed);
        assert!(request(&mut fixed, 6000, 1).allowed);
        assert_eq!(fixed.window_start_ms, 6000);
    }

    #[test]
    fn cost_above_limit_is_never_allowed() {
        let fixed = limiter(5, 1000);
        assert_eq!(fixed.decide(0, 6), Decision::deny(5, 5, None, 0));
    }

    #[test]
    fn denied_request_is_not_counted() {
        let mut fixed = limiter(5, 1000);
        request(&mut fixed, 0, 4);
        assert!(!request(&mut fixed, 1, 2).allowed);
        assert_eq!(fixed.used, 4);
        assert!(request(&mut fixed, 2, 1).allowed);
    }

    #[test]
    fn stricter_limit_binds_at_once() {
        let mut fixed = limiter(10, 1000);
        request(&mut fixed, 0, 6);
        fixed.params.limit = 4;
        assert_eq!(fixed.decide(1, 1), Decision::deny(4, 0, Some(999), 999));
    }

    #[test]
    fn shorter_window_can_close_the_current_one() {
        let mut fixed = limiter(1, 1000);
        request(&mut fixed, 0, 1);
        fixed.params.window_ms = 100;
        assert_eq!(fixed.reset_after_ms(100), 0);
        assert!(fixed.decide(100, 1).allowed);
    }

    #[test]
    fn backwards_clock_grants_nothing() {
        let mut fixed = limiter(1, 1000);
        request(&mut fixed, 5000, 1);
        assert_eq!(
            fixed.decide(4000, 1),
            Decision::deny(1, 0, Some(1000), 1000)
        );
    }

    #[test]
    fn largest_arguments_do_not_overflow() {
        let mut fixed = limiter(i64::MAX as u64, u64::MAX);
        let decision = request(&mut fixed, u64::MAX - 1, i64::MAX as u64);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 0);
        let denied = fixed.decide(u64::MAX, 1);
        assert!(!denied.allowed);
        assert!(denied.retry_after_ms > 0);
    }
}
