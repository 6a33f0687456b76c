//! One type over every algorithm: the parameters a command names ([`Policy`]), the state a key
//! stores ([`Limiter`]) and the one rule for what a request does to that state ([`apply`]).

use crate::debounce::Debounce;
use crate::decision::Decision;
use crate::fixed::{Fixed, FixedParams};
use crate::gcra::{Rate, RateParams};
use crate::sliding::{Sliding, SlidingParams};
use crate::throttle::Throttle;

/// The maximum count a command accepts (limit, capacity, burst, tokens, cost): 2^63 - 1.
pub const MAX_COUNT: u64 = i64::MAX as u64;

/// The maximum duration a command accepts: 100 years of 365 days, in milliseconds.
pub const MAX_DURATION_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// The algorithm of a limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Fixed,
    Sliding,
    TokenBucket,
    Gcra,
    Throttle,
    Debounce,
}

impl Algorithm {
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Fixed,
        Algorithm::Sliding,
        Algorithm::TokenBucket,
        Algorithm::Gcra,
        Algorithm::Throttle,
        Algorithm::Debounce,
    ];

    /// Returns the word that names the algorithm in commands, `RL.INFO` and `RL.ALL` policies.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Fixed => "FIXED",
            Algorithm::Sliding => "SLIDING",
            Algorithm::TokenBucket => "TOKENBUCKET",
            Algorithm::Gcra => "GCRA",
            Algorithm::Throttle => "THROTTLE",
            Algorithm::Debounce => "DEBOUNCE",
        }
    }

    /// Returns [`Algorithm::name`] as a C string, for propagated commands.
    pub fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            Algorithm::Fixed => c"FIXED",
            Algorithm::Sliding => c"SLIDING",
            Algorithm::TokenBucket => c"TOKENBUCKET",
            Algorithm::Gcra => c"GCRA",
            Algorithm::Throttle => c"THROTTLE",
            Algorithm::Debounce => c"DEBOUNCE",
        }
    }

    /// Finds an algorithm by its name, in any case.
    pub fn from_name(name: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| name.eq_ignore_ascii_case(algorithm.name().as_bytes()))
    }

    /// Returns the byte that marks the algorithm in stored and encoded state. These values are part
    /// of the RDB format: never renumber them.
    pub fn tag(self) -> u8 {
        match self {
            Algorithm::Fixed => 1,
            Algorithm::Sliding => 2,
            Algorithm::TokenBucket => 3,
            Algorithm::Gcra => 4,
            Algorithm::Throttle => 5,
            Algorithm::Debounce => 6,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.tag() == tag)
    }
}

/// The parameters a command gives: the algorithm and its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Fixed(FixedParams),
    Sliding(SlidingParams),
    TokenBucket(RateParams),
    Gcra(RateParams),
    Throttle { interval_ms: u64 },
    Debounce { interval_ms: u64 },
}

impl Policy {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Policy::Fixed(_) => Algorithm::Fixed,
            Policy::Sliding(_) => Algorithm::Sliding,
            Policy::TokenBucket(_) => Algorithm::TokenBucket,
            Policy::Gcra(_) => Algorithm::Gcra,
            Policy::Throttle { .. } => Algorithm::Throttle,
            Policy::Debounce { .. } => Algorithm::Debounce,
        }
    }

    /// Returns a limiter in the fresh state.
    pub fn fresh(&self) -> Limiter {
        match *self {
            Policy::Fixed(params) => Limiter::Fixed(Fixed::new(params)),
            Policy::Sliding(params) => Limiter::Sliding(Box::new(Sliding::new(params))),
            Policy::TokenBucket(params) => Limiter::TokenBucket(Rate::new(params)),
            Policy::Gcra(params) => Limiter::Gcra(Rate::new(params)),
            Policy::Throttle { interval_ms } => Limiter::Throttle(Throttle::new(interval_ms)),
            Policy::Debounce { interval_ms } => Limiter::Debounce(Debounce::new(interval_ms)),
        }
    }
}

/// The state of one limiter with its current parameters.
#[derive(Clone, Debug)]
pub enum Limiter {
    Fixed(Fixed),
    Sliding(Box<Sliding>),
    TokenBucket(Rate),
    Gcra(Rate),
    Throttle(Throttle),
    Debounce(Debounce),
}

impl Limiter {
    pub fn algorithm(&self) -> Algorithm {
        self.policy().algorithm()
    }

    /// Returns the parameters the limiter runs with.
    pub fn policy(&self) -> Policy {
        match self {
            Limiter::Fixed(fixed) => Policy::Fixed(fixed.params),
            Limiter::Sliding(sliding) => Policy::Sliding(sliding.params),
            Limiter::TokenBucket(rate) => Policy::TokenBucket(rate.params),
            Limiter::Gcra(rate) => Policy::Gcra(rate.params),
            Limiter::Throttle(throttle) => Policy::Throttle {
                interval_ms: throttle.interval_ms,
            },
            Limiter::Debounce(debounce) => Policy::Debounce {
                interval_ms: debounce.interval_ms,
            },
        }
    }

    /// Applies new parameters of the same algorithm at `now_ms`, keeping the units used.
    /// Parameters of another algorithm are ignored; callers check the algorithm first.
    pub fn set_policy(&mut self, policy: &Policy, now_ms: u64) {
        match (self, *policy) {
            (Limiter::Fixed(fixed), Policy::Fixed(params)) => fixed.set_params(params, now_ms),
            (Limiter::Sliding(sliding), Policy::Sliding(params)) => {
                sliding.set_params(params, now_ms)
            }
            (Limiter::TokenBucket(rate), Policy::TokenBucket(params))
            | (Limiter::Gcra(rate), Policy::Gcra(params)) => rate.set_params(params, now_ms),
            (Limiter::Throttle(throttle), Policy::Throttle { interval_ms }) => {
                throttle.set_interval(interval_ms, now_ms)
            }
            (Limiter::Debounce(debounce), Policy::Debounce { interval_ms }) => {
                debounce.set_interval(interval_ms, now_ms)
            }
            _ => {}
        }
    }

    /// Decides a request of `cost` units at `now_ms` without changing anything.
    pub fn decide(&self, now_ms: u64, cost: u64, peek: bool) -> Decision {
        match self {
            Limiter::Fixed(fixed) => fixed.decide(now_ms, cost),
            Limiter::Sliding(sliding) => sliding.decide(now_ms, cost),
            Limiter::TokenBucket(rate) | Limiter::Gcra(rate) => rate.decide(now_ms, cost),
            Limiter::Throttle(throttle) => throttle.decide(now_ms, cost),
            Limiter::Debounce(debounce) if peek => debounce.peek(now_ms),
            Limiter::Debounce(debounce) => debounce.decide(now_ms),
        }
    }

    /// Charges `cost` units at `now_ms` without deciding; a debounce records the request.
    pub fn charge(&mut self, now_ms: u64, cost: u64) {
        match self {
            Limiter::Fixed(fixed) => fixed.charge(now_ms, cost),
            Limiter::Sliding(sliding) => sliding.charge(now_ms, cost),
            Limiter::TokenBucket(rate) | Limiter::Gcra(rate) => rate.charge(now_ms, cost),
            Limiter::Throttle(throttle) => throttle.charge(now_ms),
            Limiter::Debounce(debounce) => debounce.record(now_ms),
        }
    }

    /// Returns the milliseconds until the limiter is fresh again, or 0 if it is fresh at
    /// `now_ms`.
    pub fn reset_after_ms(&self, now_ms: u64) -> u64 {
        match self {
            Limiter::Fixed(fixed) => fixed.reset_after_ms(now_ms),
            Limiter::Sliding(sliding) => sliding.reset_after_ms(now_ms),
            Limiter::TokenBucket(rate) | Limiter::Gcra(rate) => rate.reset_after_ms(now_ms),
            Limiter::Throttle(throttle) => throttle.reset_after_ms(now_ms),
            Limiter::Debounce(debounce) => debounce.reset_after_ms(now_ms),
        }
    }
}

/// A value in the `RL.INFO` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoValue {
    Text(&'static str),
    Number(u128),
}

impl Limiter {
    /// Returns the units a request could take at `now_ms`, without deciding one.
    pub fn available(&self, now_ms: u64) -> u64 {
        match self {
            Limiter::Fixed(fixed) => {
                let used = fixed.used_at(now_ms.max(fixed.window_start_ms));
                fixed.params.limit.saturating_sub(used)
            }
            Limiter::Sliding(sliding) => {
                sliding.params.limit.saturating_sub(sliding.used_at(now_ms))
            }
            Limiter::TokenBucket(rate) | Limiter::Gcra(rate) => {
                let now_ms = now_ms.max(rate.at_ms);
                let period = u128::from(rate.params.period_ms);
                let full = u128::from(rate.params.capacity) * period;
                let available = full.saturating_sub(rate.used_scaled_at(now_ms)) / period;
                u64::try_from(available).unwrap_or(u64::MAX)
            }
            Limiter::Throttle(throttle) => u64::from(throttle.reset_after_ms(now_ms) == 0),
            Limiter::Debounce(debounce) => u64::from(debounce.is_quiet(now_ms)),
        }
    }

    /// Lists the fields of `RL.INFO` at `now_ms`: the algorithm, its parameters, its state, and the
    /// units available now with the time until it is fresh.
    pub fn info(&self, now_ms: u64) -> Vec<(&'static str, InfoValue)> {
        use InfoValue::{Number, Text};

        let mut fields = vec![("algorithm", Text(self.algorithm().name()))];
        match self {
            Limiter::Fixed(fixed) => fields.extend([
                ("limit", Number(fixed.params.limit.into())),
                ("window_ms", Number(fixed.params.window_ms.into())),
                ("window_start_ms", Number(fixed.window_start_ms.into())),
                (
                    "used",
                    Number(fixed.used_at(now_ms.max(fixed.window_start_ms)).into()),
                ),
            ]),
            Limiter::Sliding(sliding) => fields.extend([
                ("limit", Number(sliding.params.limit.into())),
                ("window_ms", Number(sliding.params.window_ms.into())),
                ("precision_ms", Number(sliding.params.precision_ms.into())),
                ("used", Number(sliding.used_at(now_ms).into())),
                ("entries", Number(sliding.entry_count() as u128)),
            ]),
            Limiter::TokenBucket(rate) | Limiter::Gcra(rate) => {
                let capacity_name = match self {
                    Limiter::Gcra(_) => "burst",
                    _ => "capacity",
                };
                fields.extend([
                    (capacity_name, Number(rate.params.capacity.into())),
                    ("tokens", Number(rate.params.tokens.into())),
                    ("period_ms", Number(rate.params.period_ms.into())),
                ]);
                if let Limiter::Gcra(_) = self {
                    let now_ms = now_ms.max(rate.at_ms);
                    let tat_ms = u128::from(now_ms) + u128::from(rate.reset_after_ms(now_ms));
                    fields.push(("tat_ms", Number(tat_ms)));
                }
            }
            Limiter::Throttle(throttle) => fields.extend([
                ("interval_ms", Number(throttle.interval_ms.into())),
                (
                    "last_allowed_ms",
                    Number(throttle.last_allowed_ms.map_or(0, u128::from)),
                ),
            ]),
            Limiter::Debounce(debounce) => fields.extend([
                ("interval_ms", Number(debounce.interval_ms.into())),
                (
                    "last_request_ms",
                    Number(debounce.last_request_ms.map_or(0, u128::from)),
                ),
            ]),
        }
        let remaining = self.available(now_ms);
        fields.extend([
            ("remaining", Number(remaining.into())),
            ("reset_after_ms", Number(self.reset_after_ms(now_ms).into())),
        ]);
        fields
    }
}

/// The effect of one request on a limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    /// Units charged: the cost if allowed, else 0; a debounce's request always counts as 1.
    pub charged: u64,
    /// Whether the state changed, so that it must be stored and propagated.
    pub changed: bool,
}

/// Runs one request of `cost` units at `now_ms` against `limiter` under `policy`, which must
/// be of the limiter's algorithm.
///
/// New parameters are applied first, and stored even if the request is denied. A denied
/// request charges nothing, except that a debounce records every request. A PEEK gets the
/// same decision and changes nothing.
pub fn apply(
    limiter: &mut Limiter,
    policy: &Policy,
    now_ms: u64,
    cost: u64,
    peek: bool,
) -> Outcome {
    let new_policy = limiter.policy() != *policy;

    if peek {
        let decision = if new_policy {
            let mut preview = limiter.clone();
            preview.set_policy(policy, now_ms);
            preview.decide(now_ms, cost, true)
        } else {
            limiter.decide(now_ms, cost, true)
        };
        return Outcome {
            decision,
            charged: 0,
            changed: false,
        };
    }

    if new_policy {
        limiter.set_policy(policy, now_ms);
    }
    let decision = limiter.decide(now_ms, cost, false);
    let charged = match limiter {
        Limiter::Debounce(_) => 1,
        _ if decision.allowed => cost,
        _ => 0,
    };
    if charged > 0 {
        limiter.charge(now_ms, charged);
    }
    Outcome {
        decision,
        charged,
        changed: new_policy || charged > 0,
    }
}

/// Repeats on a replica, or on AOF replay, what [`apply`] did on the primary: the same
/// parameters and charge at the primary's time, without deciding again.
///
/// A charge the limiter could not have allowed at `at_ms` is rejected and changes nothing: it
/// means the propagated state was not the primary's, or a client sent it.
pub fn replay(
    limiter: &mut Limiter,
    policy: &Policy,
    at_ms: u64,
    charged: u64,
) -> Result<(), &'static str> {
    let fits = |limiter: &Limiter| {
        charged == 0
            || matches!(limiter, Limiter::Debounce(_))
            || limiter.decide(at_ms, charged, false).allowed
    };

    if limiter.policy() != *policy {
        if charged > 0 {
            let mut preview = limiter.clone();
            preview.set_policy(policy, at_ms);
            if !fits(&preview) {
                return Err(REPLAY_DOES_NOT_FIT);
            }
        }
        limiter.set_policy(policy, at_ms);
    } else if !fits(limiter) {
        return Err(REPLAY_DOES_NOT_FIT);
    }

    if charged > 0 {
        limiter.charge(at_ms, charged);
    }
    Ok(())
}

/// The reason [`replay`] rejects a charge.
pub const REPLAY_DOES_NOT_FIT: &str = "the charge does not fit the limiter at that time";

impl Policy {
    /// Returns the numbers of the policy in `RL.APPLY` order, durations in milliseconds: the first
    /// `len` entries of the array.
    pub fn numbers(&self) -> ([u64; 3], usize) {
        match *self {
            Policy::Fixed(params) => ([params.limit, params.window_ms, 0], 2),
            Policy::Sliding(params) => ([params.limit, params.window_ms, params.precision_ms], 3),
            Policy::TokenBucket(params) | Policy::Gcra(params) => {
                ([params.capacity, params.tokens, params.period_ms], 3)
            }
            Policy::Throttle { interval_ms } | Policy::Debounce { interval_ms } => {
                ([interval_ms, 0, 0], 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(limit: u64) -> Policy {
        Policy::Fixed(FixedParams {
            limit,
            window_ms: 1000,
        })
    }

    #[test]
    fn names_and_tags_round_trip() {
        for algorithm in Algorithm::ALL {
            assert_eq!(
                Algorithm::from_name(algorithm.name().as_bytes()),
                Some(algorithm)
            );
            assert_eq!(Algorithm::from_tag(algorithm.tag()), Some(algorithm));
            assert_eq!(algorithm.c_name().to_str(), Ok(algorithm.name()));
        }
        assert_eq!(
            Algorithm::from_name(b"tokenBucket"),
            Some(Algorithm::TokenBucket)
        );
    }

    #[test]
    fn peek_changes_nothing() {
        let policy = fixed(2);
        let mut limiter = policy.fresh();
        let outcome = apply(&mut limiter, &policy, 0, 1, true);
        assert!(outcome.decision.allowed);
        assert_eq!(outcome.decision.remaining, 1);
        assert!(!outcome.changed);
        assert_eq!(limiter.reset_after_ms(0), 0);
    }

    #[test]
    fn peek_previews_new_parameters() {
        let mut limiter = fixed(2).fresh();
        apply(&mut limiter, &fixed(2), 0, 2, false);
        let outcome = apply(&mut limiter, &fixed(3), 1, 1, true);
        assert!(outcome.decision.allowed);
        assert_eq!(limiter.policy(), fixed(2));
    }

    #[test]
    fn denied_request_with_new_parameters_stores_them() {
        let mut limiter = fixed(2).fresh();
        apply(&mut limiter, &fixed(2), 0, 2, false);
        let outcome = apply(&mut limiter, &fixed(1), 1, 1, false);
        assert!(!outcome.decision.allowed);
        assert_eq!(outcome.charged, 0);
        assert!(outcome.changed);
        assert_eq!(limiter.policy(), fixed(1));
    }

    #[test]
    fn denied_request_changes_nothing() {
        let mut limiter = fixed(1).fresh();
        apply(&mut limiter, &fixed(1), 0, 1, false);
        let outcome = apply(&mut limiter, &fixed(1), 1, 1, false);
        assert!(!outcome.decision.allowed);
        assert!(!outcome.changed);
    }

    #[test]
    fn denied_debounce_still_records() {
        let policy = Policy::Debounce { interval_ms: 100 };
        let mut limiter = policy.fresh();
        apply(&mut limiter, &policy, 0, 1, false);
        let outcome = apply(&mut limiter, &policy, 50, 1, false);
        assert!(!outcome.decision.allowed);
        assert_eq!(outcome.charged, 1);
        assert_eq!(limiter.reset_after_ms(50), 100);
    }

    #[test]
    fn replay_rejects_charge_that_does_not_fit() {
        let mut limiter = fixed(2).fresh();
        replay(&mut limiter, &fixed(2), 0, 2).unwrap();
        assert_eq!(
            replay(&mut limiter, &fixed(2), 1, 1),
            Err(REPLAY_DOES_NOT_FIT)
        );
        assert_eq!(
            replay(&mut limiter, &fixed(3), 1, 2),
            Err(REPLAY_DOES_NOT_FIT)
        );
        assert_eq!(limiter.policy(), fixed(2));
    }

    #[test]
    fn info_reports_state_at_now() {
        let policy = fixed(5);
        let mut limiter = policy.fresh();
        apply(&mut limiter, &policy, 1000, 2, false);
        let fields = limiter.info(1400);
        let expected = vec![
            ("algorithm", InfoValue::Text("FIXED")),
            ("limit", InfoValue::Number(5)),
            ("window_ms", InfoValue::Number(1000)),
            ("window_start_ms", InfoValue::Number(1000)),
            ("used", InfoValue::Number(2)),
            ("remaining", InfoValue::Number(3)),
            ("reset_after_ms", InfoValue::Number(600)),
        ];
        assert_eq!(fields, expected);
    }

    #[test]
    fn replay_reaches_the_same_state() {
        let policy = Policy::Sliding(SlidingParams {
            limit: 3,
            window_ms: 100,
            precision_ms: 1,
        });
        let mut primary = policy.fresh();
        let mut replica = policy.fresh();
        for now_ms in [0, 10, 10, 20, 150, 151] {
            let outcome = apply(&mut primary, &policy, now_ms, 1, false);
            if outcome.changed {
                replay(&mut replica, &policy, now_ms, outcome.charged).unwrap();
            }
        }
        let (Limiter::Sliding(primary), Limiter::Sliding(replica)) = (primary, replica) else {
            panic!("both limiters are sliding logs");
        };
        assert_eq!(primary.entries(), replica.entries());
    }
}
