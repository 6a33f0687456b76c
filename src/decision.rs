//! The outcome of one request against one limiter, and the time arithmetic every algorithm
//! shares. Nothing here touches the server.

/// `retry_after_ms` of a request that no amount of waiting can allow (its cost is above the
/// limit).
pub const NEVER: i64 = -1;

/// The decision on one request, field for field the five-integer reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed (and, unless it is a PEEK, charged).
    pub allowed: bool,
    /// The maximum units the limiter can allow at once: limit, capacity or burst.
    pub limit: u64,
    /// Units a further request could take right now, after this decision.
    pub remaining: u64,
    /// 0 if allowed; otherwise milliseconds until the same request would be allowed, at least
    /// 1, or [`NEVER`].
    pub retry_after_ms: i64,
    /// Milliseconds until the limiter is back to its fresh state; 0 if it already is.
    pub reset_after_ms: u64,
}

impl Decision {
    /// Builds an allowed decision.
    pub fn allow(limit: u64, remaining: u64, reset_after_ms: u64) -> Decision {
        Decision {
            allowed: true,
            limit,
            remaining,
            retry_after_ms: 0,
            reset_after_ms,
        }
    }

    /// Builds a denied decision. A `retry_after_ms` of `None` means the request can never be
    /// allowed. A wait is raised to at least 1 ms, so that clients never retry at once.
    pub fn deny(
        limit: u64,
        remaining: u64,
        retry_after_ms: Option<u128>,
        reset_after_ms: u64,
    ) -> Decision {
        let retry_after_ms = match retry_after_ms {
            None => NEVER,
            Some(ms) => saturate_i64(ms).max(1),
        };
        Decision {
            allowed: false,
            limit,
            remaining,
            retry_after_ms,
            reset_after_ms,
        }
    }
}

/// Converts a wide intermediate to `u64`, saturating.
pub fn saturate_u64(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Converts a wide intermediate to the `i64` range of a reply integer, saturating.
pub fn saturate_i64(value: u128) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Divides and rounds up; `divisor` must not be 0.
pub fn div_ceil(dividend: u128, divisor: u128) -> u128 {
    dividend.div_ceil(divisor)
}

/// Milliseconds from `now_ms` until `deadline_ms`, or 0 once it has passed.
pub fn until(deadline_ms: u128, now_ms: u64) -> u64 {
    saturate_u64(deadline_ms.saturating_sub(u128::from(now_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_raises_zero_wait_to_one() {
        let decision = Decision::deny(10, 0, Some(0), 5);
        assert_eq!(decision.retry_after_ms, 1);
    }

    #[test]
    fn deny_without_wait_is_never() {
        let decision = Decision::deny(10, 3, None, 5);
        assert_eq!(decision.retry_after_ms, NEVER);
    }

    #[test]
    fn deny_saturates_huge_wait() {
        let decision = Decision::deny(10, 0, Some(u128::MAX), 5);
        assert_eq!(decision.retry_after_ms, i64::MAX);
    }

    #[test]
    fn until_is_zero_after_deadline() {
        assert_eq!(until(100, 150), 0);
        assert_eq!(until(150, 100), 50);
    }
}
