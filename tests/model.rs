//! Property tests of the pure algorithms against reference models.
//!
//! Each model below restates one algorithm from the rules in the README, in the plainest form
//! that stays exact. The sliding log keeps every allowed request, the token bucket keeps the
//! units used as a fraction whose denominator is the period, and GCRA keeps a theoretical
//! arrival time. No model calls the crate's algorithm code, and they share only the parameter
//! and reply types. Random traces of requests drive the crate and a model side by side
//! through `limiter::apply`, and every reply must match field for field. Further properties
//! check the crate alone: window bounds, retry and reset times, backwards clocks, the byte
//! encoding and replay. No test needs a server or sleeps, because every function takes the
//! time.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use valkey_ratelimit::decision::{Decision, NEVER};
use valkey_ratelimit::encoding::{decode, encode};
use valkey_ratelimit::fixed::FixedParams;
use valkey_ratelimit::gcra::RateParams;
use valkey_ratelimit::limiter::{
    apply, replay, Algorithm, Limiter, Policy, MAX_COUNT, MAX_DURATION_MS,
};
use valkey_ratelimit::sliding::SlidingParams;

/// Cases per property. Each case is a trace of up to `MAX_STEPS` requests.
const CASES: u32 = 2048;

const MAX_STEPS: usize = 60;

/// 365 days in milliseconds.
const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // A failure is reported with its shrunk trace, because writing it to a file beside
        // this one would leave files in the checkout.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Replies as the models build them.

/// Builds an allowed reply. Waits beyond the reply's integer range saturate, as in the crate.
fn allow(limit: u64, remaining: u128, reset_after_ms: u128) -> Decision {
    Decision {
        allowed: true,
        limit,
        remaining: u64::try_from(remaining).expect("remaining is at most the limit"),
        retry_after_ms: 0,
        reset_after_ms: u64::try_from(reset_after_ms).unwrap_or(u64::MAX),
    }
}

/// Builds a denied reply. A `retry_after_ms` of `None` means no wait can allow the request.
fn deny(
    limit: u64,
    remaining: u128,
    retry_after_ms: Option<u128>,
    reset_after_ms: u128,
) -> Decision {
    let retry_after_ms = match retry_after_ms {
        None => NEVER,
        Some(wait_ms) => {
            // A model that computes no wait for a denied request is wrong, so nothing here
            // raises it to 1 ms.
            assert!(wait_ms >= 1, "the model computed a wait of {wait_ms} ms");
            i64::try_from(wait_ms).unwrap_or(i64::MAX)
        }
    };
    Decision {
        allowed: false,
        limit,
        remaining: u64::try_from(remaining).expect("remaining is at most the limit"),
        retry_after_ms,
        reset_after_ms: u64::try_from(reset_after_ms).unwrap_or(u64::MAX),
    }
}

/// Returns the least `x` in `low..=high` for which `holds(x)`, where `holds` is false below some
/// point and true from it on, and true at `high`.
fn least_such_that(mut low: u128, mut high: u128, holds: impl Fn(u128) -> bool) -> u128 {
    while low < high {
        let middle = low + (high - low) / 2;
        if holds(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

/// Returns `ceil(value * to / from)` for `value` below `2^63 * from` and `to` below `2^43`,
/// where the plain product could pass `2^128`.
fn rescale_up(value: u128, to: u64, from: u64) -> u128 {
    let (to, from) = (u128::from(to), u128::from(from));
    (value / from) * to + ((value % from) * to).div_ceil(from)
}

// ---------------------------------------------------------------------------------------------
// Fixed window: the window opens with the first allowed request and lasts `window_ms`.

#[derive(Clone, Debug)]
struct FixedModel {
    params: FixedParams,
    /// When the window opened and the units allowed in it, once a request was allowed.
    window: Option<(u64, u128)>,
}

impl FixedModel {
    /// Moves a clock from before the window opened to the opening time. The count cannot
    /// change inside a window, so any time in it is as if no time passed.
    fn clamp(&self, now_ms: u64) -> u64 {
        match self.window {
            Some((opened_ms, _)) => now_ms.max(opened_ms),
            None => now_ms,
        }
    }

    fn end_ms(&self) -> u128 {
        self.window.map_or(0, |(opened_ms, _)| {
            u128::from(opened_ms) + u128::from(self.params.window_ms)
        })
    }

    /// Units used at `now_ms`: those of a window still open.
    fn used(&self, now_ms: u64) -> u128 {
        match self.window {
            Some((_, used)) if u128::from(now_ms) < self.end_ms() => used,
            _ => 0,
        }
    }

    fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let now_ms = self.clamp(now_ms);
        let used = self.used(now_ms);
        let limit = u128::from(self.params.limit);
        let cost = u128::from(cost);
        let until_end_ms = self.end_ms().saturating_sub(u128::from(now_ms));

        if used + cost <= limit {
            // An allowed request into a closed window opens a new one.
            let reset_after_ms = if used == 0 {
                u128::from(self.params.window_ms)
            } else {
                until_end_ms
            };
            return allow(self.params.limit, limit - used - cost, reset_after_ms);
        }
        let reset_after_ms = if used == 0 { 0 } else { until_end_ms };
        let retry_after_ms = (cost <= limit).then_some(until_end_ms);
        deny(
            self.params.limit,
            limit.saturating_sub(used),
            retry_after_ms,
            reset_after_ms,
        )
    }

    fn charge(&mut self, now_ms: u64, cost: u64) {
        let now_ms = self.clamp(now_ms);
        self.window = match self.window {
            Some((opened_ms, used)) if self.used(now_ms) > 0 => {
                Some((opened_ms, used + u128::from(cost)))
            }
            _ => Some((now_ms, u128::from(cost))),
        };
    }

    /// Keeps the units used in the open window, which takes the new length from its opening.
    /// A window that had closed stays closed, whatever the new length.
    fn set_params(&mut self, params: FixedParams, now_ms: u64) {
        if self.used(self.clamp(now_ms)) == 0 {
            self.window = None;
        }
        self.params = params;
    }

    fn reset_after_ms(&self, now_ms: u64) -> u128 {
        let now_ms = self.clamp(now_ms);
        if self.used(now_ms) == 0 {
            0
        } else {
            self.end_ms() - u128::from(now_ms)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sliding window: allowed if the units allowed in the last `window_ms` plus the cost stay
// within the limit. With a precision `p`, a request at `t` is in bucket `floor(t / p)`, and it
// counts at `now` while `floor(now / p) - floor(t / p) < ceil(window_ms / p)`.

#[derive(Clone, Debug)]
struct SlidingModel {
    params: SlidingParams,
    /// Every allowed request that may still count, oldest first: its time and cost.
    requests: Vec<(u64, u64)>,
}

impl SlidingModel {
    fn window_buckets(&self) -> u128 {
        u128::from(self.params.window_ms.div_ceil(self.params.precision_ms))
    }

    fn counts(&self, request_ms: u64, now_ms: u128) -> bool {
        let precision = u128::from(self.params.precision_ms);
        now_ms / precision - u128::from(request_ms) / precision < self.window_buckets()
    }

    fn used(&self, now_ms: u128) -> u128 {
        self.requests
            .iter()
            .filter(|(request_ms, _)| self.counts(*request_ms, now_ms))
            .map(|(_, cost)| u128::from(*cost))
            .sum()
    }

    /// When a request at `request_ms` stops counting.
    fn expiry_ms(&self, request_ms: u64) -> u128 {
        let precision = u128::from(self.params.precision_ms);
        (u128::from(request_ms) / precision + self.window_buckets()) * precision
    }

    /// Expiry times of the requests that count at `now_ms`.
    fn live_expiries(&self, now_ms: u128) -> Vec<u128> {
        self.requests
            .iter()
            .filter(|(request_ms, _)| self.counts(*request_ms, now_ms))
            .map(|(request_ms, _)| self.expiry_ms(*request_ms))
            .collect()
    }

    /// Moves a clock from a bucket before the newest request's to the start of that bucket,
    /// because the log counts whole buckets.
    fn clamp(&self, now_ms: u64) -> u64 {
        let precision = self.params.precision_ms;
        match self.requests.last() {
            Some(&(newest_ms, _)) if now_ms / precision < newest_ms / precision => {
                newest_ms / precision * precision
            }
            _ => now_ms,
        }
    }

    fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let now_ms = self.clamp(now_ms);
        let now = u128::from(now_ms);
        let used = self.used(now);
        let limit = u128::from(self.params.limit);
        let cost = u128::from(cost);

        if used + cost <= limit {
            // The request itself is the last to leave.
            let reset_after_ms = self.expiry_ms(now_ms) - now;
            return allow(self.params.limit, limit - used - cost, reset_after_ms);
        }
        let mut expiries = self.live_expiries(now);
        expiries.sort_unstable();
        let reset_after_ms = expiries.last().map_or(0, |last_ms| last_ms - now);
        let retry_after_ms = (cost <= limit).then(|| {
            let fits_ms = expiries
                .iter()
                .find(|&&at_ms| self.used(at_ms) + cost <= limit)
                .expect("the request fits once every counted request has left");
            fits_ms - now
        });
        deny(
            self.params.limit,
            limit.saturating_sub(used),
            retry_after_ms,
            reset_after_ms,
        )
    }

    fn charge(&mut self, now_ms: u64, cost: u64) {
        let now_ms = self.clamp(now_ms);
        self.requests.push((now_ms, cost));
    }

    /// Drops the requests that no longer count, which never come back even if a later window
    /// is longer. A new precision moves each request to the start of its old bucket.
    fn set_params(&mut self, params: SlidingParams, now_ms: u64) {
        let now = u128::from(self.clamp(now_ms));
        let mut requests = std::mem::take(&mut self.requests);
        requests.retain(|(request_ms, _)| self.counts(*request_ms, now));
        let old_precision = self.params.precision_ms;
        if params.precision_ms != old_precision {
            for (request_ms, _) in &mut requests {
                *request_ms = *request_ms / old_precision * old_precision;
            }
        }
        self.params = params;
        requests.retain(|(request_ms, _)| self.counts(*request_ms, now));
        self.requests = requests;
    }

    fn reset_after_ms(&self, now_ms: u64) -> u128 {
        let now = u128::from(self.clamp(now_ms));
        self.live_expiries(now)
            .into_iter()
            .max()
            .map_or(0, |last_ms| last_ms - now)
    }
}

// ---------------------------------------------------------------------------------------------
// Token bucket: `capacity` tokens, full when new, refilled continuously at `tokens` per
// `period_ms`. The units used are the fraction `used_numerator / period_ms`, so a refill of
// `elapsed_ms * tokens / period_ms` units is exact.

#[derive(Clone, Debug)]
struct BucketModel {
    params: RateParams,
    used_numerator: u128,
    /// When `used_numerator` was last brought up to date.
    updated_ms: u64,
}

/// An upper bound of every wait a rate model searches for: the units used stay below `2^106`
/// unit-milliseconds and the refill is at least one of them per millisecond.
const MAX_SEARCH_MS: u128 = 1 << 110;

impl BucketModel {
    fn new(params: RateParams) -> BucketModel {
        BucketModel {
            params,
            used_numerator: 0,
            updated_ms: 0,
        }
    }

    /// Moves a clock before `updated_ms` to it, because the state is the units used then.
    fn clamp(&self, now_ms: u64) -> u64 {
        now_ms.max(self.updated_ms)
    }

    /// Units used at `now_ms`, which is not before `updated_ms`, as a numerator.
    fn used_at(&self, now_ms: u128) -> u128 {
        let elapsed_ms = now_ms - u128::from(self.updated_ms);
        let refill = elapsed_ms.saturating_mul(u128::from(self.params.tokens));
        self.used_numerator.saturating_sub(refill)
    }

    /// Milliseconds until `used` numerator units have refilled.
    fn refill_ms(&self, used: u128) -> u128 {
        let tokens = u128::from(self.params.tokens);
        least_such_that(0, MAX_SEARCH_MS, |wait_ms| {
            wait_ms.saturating_mul(tokens) >= used
        })
    }

    fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let now = u128::from(self.clamp(now_ms));
        let period = u128::from(self.params.period_ms);
        let full = u128::from(self.params.capacity) * period;
        let needed = u128::from(cost) * period;
        let used = self.used_at(now);

        if used + needed <= full {
            let after = used + needed;
            return allow(
                self.params.capacity,
                (full - after) / period,
                self.refill_ms(after),
            );
        }
        let retry_after_ms = (cost <= self.params.capacity).then(|| {
            least_such_that(1, MAX_SEARCH_MS, |wait_ms| {
                self.used_at(now + wait_ms) + needed <= full
            })
        });
        deny(
            self.params.capacity,
            full.saturating_sub(used) / period,
            retry_after_ms,
            self.refill_ms(used),
        )
    }

    fn charge(&mut self, now_ms: u64, cost: u64) {
        let now_ms = self.clamp(now_ms);
        let period = u128::from(self.params.period_ms);
        self.used_numerator = self.used_at(u128::from(now_ms)) + u128::from(cost) * period;
        self.updated_ms = now_ms;
    }

    /// Refills at the old rate up to `now_ms` and keeps the units used. In a new period the
    /// fraction is rounded up to the next `1 / period_ms` of a unit.
    fn set_params(&mut self, params: RateParams, now_ms: u64) {
        let now_ms = self.clamp(now_ms);
        let used = self.used_at(u128::from(now_ms));
        self.used_numerator = rescale_up(used, params.period_ms, self.params.period_ms);
        self.updated_ms = now_ms;
        self.params = params;
    }

    fn reset_after_ms(&self, now_ms: u64) -> u128 {
        self.refill_ms(self.used_at(u128::from(self.clamp(now_ms))))
    }
}

// ---------------------------------------------------------------------------------------------
// GCRA: a steady `tokens` per `period_ms`, so one unit per emission interval of
// `period_ms / tokens` ms, and `burst` units back to back. The theoretical arrival time (TAT)
// is kept times `tokens`, so that an emission interval is exactly `period_ms`.

#[derive(Clone, Debug)]
struct GcraModel {
    params: RateParams,
    /// The TAT in milliseconds, times `tokens`.
    tat_scaled: u128,
    /// When the TAT was last set.
    updated_ms: u64,
}

impl GcraModel {
    fn new(params: RateParams) -> GcraModel {
        GcraModel {
            params,
            tat_scaled: 0,
            updated_ms: 0,
        }
    }

    fn clamp(&self, now_ms: u64) -> u64 {
        now_ms.max(self.updated_ms)
    }

    fn scaled(&self, now_ms: u64) -> u128 {
        u128::from(now_ms) * u128::from(self.params.tokens)
    }

    fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let now_ms = self.clamp(now_ms);
        let now = self.scaled(now_ms);
        let period = u128::from(self.params.period_ms);
        let tokens = u128::from(self.params.tokens);
        // Arrivals may run up to `burst` emission intervals ahead of now.
        let tolerance = u128::from(self.params.capacity) * period;
        let start = self.tat_scaled.max(now);
        let arrival = start + u128::from(cost) * period;

        if arrival - now <= tolerance {
            return allow(
                self.params.capacity,
                (tolerance - (arrival - now)) / period,
                (arrival - now).div_ceil(tokens),
            );
        }
        let retry_after_ms =
            (cost <= self.params.capacity).then(|| (arrival - now - tolerance).div_ceil(tokens));
        deny(
            self.params.capacity,
            tolerance.saturating_sub(start - now) / period,
            retry_after_ms,
            (start - now).div_ceil(tokens),
        )
    }

    fn charge(&mut self, now_ms: u64, cost: u64) {
        let now_ms = self.clamp(now_ms);
        let start = self.tat_scaled.max(self.scaled(now_ms));
        self.tat_scaled = start + u128::from(cost) * u128::from(self.params.period_ms);
        self.updated_ms = now_ms;
    }

    /// Keeps the units used, which are the TAT's lead over now in emission intervals. A new
    /// period rounds them up to the next `1 / period_ms` of a unit.
    fn set_params(&mut self, params: RateParams, now_ms: u64) {
        let now_ms = self.clamp(now_ms);
        let lead = self.tat_scaled.saturating_sub(self.scaled(now_ms));
        let lead = rescale_up(lead, params.period_ms, self.params.period_ms);
        self.params = params;
        self.tat_scaled = self.scaled(now_ms) + lead;
        self.updated_ms = now_ms;
    }

    fn reset_after_ms(&self, now_ms: u64) -> u128 {
        let now = self.scaled(self.clamp(now_ms));
        let tokens = u128::from(self.params.tokens);
        self.tat_scaled.saturating_sub(now).div_ceil(tokens)
    }
}

// ---------------------------------------------------------------------------------------------
// Throttle: at most one allowed event per interval. Debounce: allowed only after an interval
// with no request at all, and every request that is not a PEEK starts the interval again.

/// Computes the milliseconds left of an interval that began at `start_ms`, or 0 with no start.
/// A clock behind the start counts as the start itself.
fn interval_left_ms(start_ms: Option<u64>, interval_ms: u64, now_ms: u64) -> u128 {
    start_ms.map_or(0, |start_ms| {
        (u128::from(start_ms) + u128::from(interval_ms))
            .saturating_sub(u128::from(now_ms.max(start_ms)))
    })
}

#[derive(Clone, Debug)]
struct ThrottleModel {
    interval_ms: u64,
    last_allowed_ms: Option<u64>,
}

impl ThrottleModel {
    fn clamp(&self, now_ms: u64) -> u64 {
        now_ms.max(self.last_allowed_ms.unwrap_or(0))
    }

    /// Computes the milliseconds until the next event may come, or 0 once it may.
    fn wait_ms(&self, now_ms: u64) -> u128 {
        interval_left_ms(self.last_allowed_ms, self.interval_ms, now_ms)
    }

    fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let wait_ms = self.wait_ms(now_ms);
        if wait_ms == 0 && cost <= 1 {
            return allow(1, 0, u128::from(self.interval_ms));
        }
        let retry_after_ms = (cost <= 1).then_some(wait_ms);
        deny(1, u128::from(wait_ms == 0), retry_after_ms, wait_ms)
    }
}

#[derive(Clone, Debug)]
struct DebounceModel {
    interval_ms: u64,
    last_request_ms: Option<u64>,
}

impl DebounceModel {
    fn clamp(&self, now_ms: u64) -> u64 {
        now_ms.max(self.last_request_ms.unwrap_or(0))
    }

    /// Computes the milliseconds left of the quiet period at `now_ms`.
    fn wait_ms(&self, now_ms: u64) -> u128 {
        interval_left_ms(self.last_request_ms, self.interval_ms, now_ms)
    }

    fn decide(&self, now_ms: u64, peek: bool) -> Decision {
        let interval_ms = u128::from(self.interval_ms);
        let wait_ms = self.wait_ms(now_ms);
        if wait_ms == 0 {
            allow(1, 0, interval_ms)
        } else if peek {
            deny(1, 0, Some(wait_ms), wait_ms)
        } else {
            // The request itself starts the quiet period again.
            deny(1, 0, Some(interval_ms), interval_ms)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One type over the models, and the rule for what a request does.

#[derive(Clone, Debug)]
enum Model {
    Fixed(FixedModel),
    Sliding(SlidingModel),
    Bucket(BucketModel),
    Gcra(GcraModel),
    Throttle(ThrottleModel),
    Debounce(DebounceModel),
}

impl Model {
    fn fresh(policy: &Policy) -> Model {
        match *policy {
            Policy::Fixed(params) => Model::Fixed(FixedModel {
                params,
                window: None,
            }),
            Policy::Sliding(params) => Model::Sliding(SlidingModel {
                params,
                requests: Vec::new(),
            }),
            Policy::TokenBucket(params) => Model::Bucket(BucketModel::new(params)),
            Policy::Gcra(params) => Model::Gcra(GcraModel::new(params)),
            Policy::Throttle { interval_ms } => Model::Throttle(ThrottleModel {
                interval_ms,
                last_allowed_ms: None,
            }),
            Policy::Debounce { interval_ms } => Model::Debounce(DebounceModel {
                interval_ms,
                last_request_ms: None,
            }),
        }
    }

    fn policy(&self) -> Policy {
        match self {
            Model::Fixed(model) => Policy::Fixed(model.params),
            Model::Sliding(model) => Policy::Sliding(model.params),
            Model::Bucket(model) => Policy::TokenBucket(model.params),
            Model::Gcra(model) => Policy::Gcra(model.params),
            Model::Throttle(model) => Policy::Throttle {
                interval_ms: model.interval_ms,
            },
            Model::Debounce(model) => Policy::Debounce {
                interval_ms: model.interval_ms,
            },
        }
    }

    /// Returns the time a request at `now_ms` is decided at: later than `now_ms` only if the
    /// clock went back behind the time of the state.
    fn clamp(&self, now_ms: u64) -> u64 {
        match self {
            Model::Fixed(model) => model.clamp(now_ms),
            Model::Sliding(model) => model.clamp(now_ms),
            Model::Bucket(model) => model.clamp(now_ms),
            Model::Gcra(model) => model.clamp(now_ms),
            Model::Throttle(model) => model.clamp(now_ms),
            Model::Debounce(model) => model.clamp(now_ms),
        }
    }

    fn set_policy(&mut self, policy: &Policy, now_ms: u64) {
        match (self, *policy) {
            (Model::Fixed(model), Policy::Fixed(params)) => model.set_params(params, now_ms),
            (Model::Sliding(model), Policy::Sliding(params)) => model.set_params(params, now_ms),
            (Model::Bucket(model), Policy::TokenBucket(params)) => model.set_params(params, now_ms),
            (Model::Gcra(model), Policy::Gcra(params)) => model.set_params(params, now_ms),
            // An interval that has passed stays passed, whatever the new length, as a
            // window that closed stays closed.
            (Model::Throttle(model), Policy::Throttle { interval_ms }) => {
                if model.wait_ms(now_ms) == 0 {
                    model.last_allowed_ms = None;
                }
                model.interval_ms = interval_ms;
            }
            (Model::Debounce(model), Policy::Debounce { interval_ms }) => {
                if model.wait_ms(now_ms) == 0 {
                    model.last_request_ms = None;
                }
                model.interval_ms = interval_ms;
            }
            (model, policy) => panic!("policy {policy:?} is not of the algorithm of {model:?}"),
        }
    }

    fn decide(&self, now_ms: u64, cost: u64, peek: bool) -> Decision {
        match self {
            Model::Fixed(model) => model.decide(now_ms, cost),
            Model::Sliding(model) => model.decide(now_ms, cost),
            Model::Bucket(model) => model.decide(now_ms, cost),
            Model::Gcra(model) => model.decide(now_ms, cost),
            Model::Throttle(model) => model.decide(now_ms, cost),
            Model::Debounce(model) => model.decide(now_ms, peek),
        }
    }

    fn charge(&mut self, now_ms: u64, cost: u64) {
        let now_ms = self.clamp(now_ms);
        match self {
            Model::Fixed(model) => model.charge(now_ms, cost),
            Model::Sliding(model) => model.charge(now_ms, cost),
            Model::Bucket(model) => model.charge(now_ms, cost),
            Model::Gcra(model) => model.charge(now_ms, cost),
            Model::Throttle(model) => model.last_allowed_ms = Some(now_ms),
            Model::Debounce(model) => model.last_request_ms = Some(now_ms),
        }
    }

    fn reset_after_ms(&self, now_ms: u64) -> u64 {
        let reset_after_ms = match self {
            Model::Fixed(model) => model.reset_after_ms(now_ms),
            Model::Sliding(model) => model.reset_after_ms(now_ms),
            Model::Bucket(model) => model.reset_after_ms(now_ms),
            Model::Gcra(model) => model.reset_after_ms(now_ms),
            Model::Throttle(model) => model.wait_ms(now_ms),
            Model::Debounce(model) => model.wait_ms(now_ms),
        };
        u64::try_from(reset_after_ms).unwrap_or(u64::MAX)
    }
}

/// The effect of one request on a model, as [`valkey_ratelimit::limiter::Outcome`] states it.
#[derive(Debug)]
struct ModelOutcome {
    decision: Decision,
    charged: u64,
    changed: bool,
}

/// Runs one request by the README's rules. New parameters apply first and are kept even if
/// the request is denied. A denied request charges nothing, but every debounce request is
/// recorded. A PEEK gets the same reply and changes nothing.
fn model_apply(
    model: &mut Model,
    policy: &Policy,
    now_ms: u64,
    cost: u64,
    peek: bool,
) -> ModelOutcome {
    let new_policy = model.policy() != *policy;

    if peek {
        let mut preview = model.clone();
        if new_policy {
            preview.set_policy(policy, now_ms);
        }
        return ModelOutcome {
            decision: preview.decide(now_ms, cost, true),
            charged: 0,
            changed: false,
        };
    }
    if new_policy {
        model.set_policy(policy, now_ms);
    }
    let decision = model.decide(now_ms, cost, false);
    let charged = match model {
        Model::Debounce(_) => 1,
        _ if decision.allowed => cost,
        _ => 0,
    };
    if charged > 0 {
        model.charge(now_ms, charged);
    }
    ModelOutcome {
        decision,
        charged,
        changed: new_policy || charged > 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Traces.

/// How large the generated parameters, costs and times are.
#[derive(Clone, Copy, Debug)]
enum Scale {
    /// Limits up to 10 and durations up to 2 s, so that requests interact.
    Small,
    /// Edge values up to 2^63 - 1 units, 100 years and `u64::MAX` ms.
    Huge,
}

#[derive(Clone, Copy, Debug)]
enum ClockStep {
    Forward(u64),
    Backward(u64),
}

impl ClockStep {
    fn next(self, now_ms: u64) -> u64 {
        match self {
            ClockStep::Forward(step_ms) => now_ms.saturating_add(step_ms),
            ClockStep::Backward(step_ms) => now_ms.saturating_sub(step_ms),
        }
    }
}

#[derive(Clone, Debug)]
struct Step {
    clock: ClockStep,
    cost: u64,
    peek: bool,
    /// Parameters this request and the later ones carry.
    new_policy: Option<Policy>,
}

#[derive(Clone, Debug)]
struct Trace {
    policy: Policy,
    start_ms: u64,
    steps: Vec<Step>,
}

fn count_strategy(scale: Scale) -> BoxedStrategy<u64> {
    match scale {
        Scale::Small => (1..=10u64).boxed(),
        Scale::Huge => prop_oneof![
            Just(1),
            Just(2),
            Just(MAX_COUNT - 1),
            Just(MAX_COUNT),
            1..=MAX_COUNT,
        ]
        .boxed(),
    }
}

fn duration_strategy(scale: Scale) -> BoxedStrategy<u64> {
    match scale {
        Scale::Small => prop_oneof![1..=20u64, 1..=2000u64].boxed(),
        Scale::Huge => prop_oneof![
            Just(1),
            Just(1000),
            Just(MAX_DURATION_MS - 1),
            Just(MAX_DURATION_MS),
            1..=MAX_DURATION_MS,
        ]
        .boxed(),
    }
}

fn policy_strategy(algorithm: Algorithm, scale: Scale) -> BoxedStrategy<Policy> {
    let rate = (
        count_strategy(scale),
        count_strategy(scale),
        duration_strategy(scale),
    )
        .prop_map(|(capacity, tokens, period_ms)| RateParams {
            capacity,
            tokens,
            period_ms,
        });
    match algorithm {
        Algorithm::Fixed => (count_strategy(scale), duration_strategy(scale))
            .prop_map(|(limit, window_ms)| Policy::Fixed(FixedParams { limit, window_ms }))
            .boxed(),
        Algorithm::Sliding => (
            count_strategy(scale),
            duration_strategy(scale),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(|(limit, window_ms, precision, exact)| {
                // The commands reject a precision longer than the window.
                let precision_ms = if exact { 1 } else { 1 + precision % window_ms };
                Policy::Sliding(SlidingParams {
                    limit,
                    window_ms,
                    precision_ms,
                })
            })
            .boxed(),
        Algorithm::TokenBucket => rate.prop_map(Policy::TokenBucket).boxed(),
        Algorithm::Gcra => rate.prop_map(Policy::Gcra).boxed(),
        Algorithm::Throttle => duration_strategy(scale)
            .prop_map(|interval_ms| Policy::Throttle { interval_ms })
            .boxed(),
        Algorithm::Debounce => duration_strategy(scale)
            .prop_map(|interval_ms| Policy::Debounce { interval_ms })
            .boxed(),
    }
}

fn cost_strategy(algorithm: Algorithm, scale: Scale) -> BoxedStrategy<u64> {
    match (algorithm, scale) {
        // The commands take no COST for these two. The crate never allows a throttle cost
        // above 1 and ignores a debounce's cost.
        (Algorithm::Debounce, _) => Just(1).boxed(),
        (Algorithm::Throttle, _) => {
            prop_oneof![8 => Just(1), 1 => 2..=3u64, 1 => Just(MAX_COUNT)].boxed()
        }
        (_, Scale::Small) => {
            prop_oneof![6 => 1..=3u64, 3 => 1..=12u64, 1 => Just(MAX_COUNT)].boxed()
        }
        (_, Scale::Huge) => prop_oneof![
            1..=3u64,
            Just(MAX_COUNT - 1),
            Just(MAX_COUNT),
            1..=MAX_COUNT,
        ]
        .boxed(),
    }
}

fn clock_strategy(scale: Scale, backwards: bool) -> BoxedStrategy<ClockStep> {
    let (forward, backward) = match scale {
        Scale::Small => (
            prop_oneof![
                4 => 0..=5u64,
                5 => 0..=2500u64,
                1 => 0..=10_000_000u64,
            ]
            .boxed(),
            (1..=3000u64).boxed(),
        ),
        Scale::Huge => (
            prop_oneof![3 => 0..=5u64, 2 => 0..=MAX_DURATION_MS, 1 => any::<u64>()].boxed(),
            prop_oneof![1..=MAX_DURATION_MS, any::<u64>()].boxed(),
        ),
    };
    let forward = forward.prop_map(ClockStep::Forward);
    if !backwards {
        return forward.boxed();
    }
    prop_oneof![9 => forward, 1 => backward.prop_map(ClockStep::Backward)].boxed()
}

fn start_strategy() -> BoxedStrategy<u64> {
    prop_oneof![
        Just(0),
        0..=2_000_000_000_000u64,
        (u64::MAX - 10_000)..=u64::MAX,
        any::<u64>(),
    ]
    .boxed()
}

/// What a generated trace may contain besides requests moving the clock forward.
#[derive(Clone, Copy)]
struct Shape {
    policy_changes: bool,
    backwards: bool,
}

fn step_strategy(algorithm: Algorithm, scale: Scale, shape: Shape) -> BoxedStrategy<Step> {
    let new_policy = if shape.policy_changes {
        proptest::option::weighted(0.12, policy_strategy(algorithm, scale)).boxed()
    } else {
        Just(None).boxed()
    };
    (
        clock_strategy(scale, shape.backwards),
        cost_strategy(algorithm, scale),
        proptest::bool::weighted(0.15),
        new_policy,
    )
        .prop_map(|(clock, cost, peek, new_policy)| Step {
            clock,
            cost,
            peek,
            new_policy,
        })
        .boxed()
}

fn trace_strategy(shape: Shape) -> impl Strategy<Value = Trace> {
    let algorithm = proptest::sample::select(Algorithm::ALL.to_vec());
    let scale = prop_oneof![3 => Just(Scale::Small), 1 => Just(Scale::Huge)];
    (algorithm, scale).prop_flat_map(move |(algorithm, scale)| {
        (
            policy_strategy(algorithm, scale),
            start_strategy(),
            proptest::collection::vec(step_strategy(algorithm, scale, shape), 1..=MAX_STEPS),
        )
            .prop_map(|(policy, start_ms, steps)| Trace {
                policy,
                start_ms,
                steps,
            })
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers that run the crate.

/// A limiter kept under a key, either as Valkey keeps it or with no expiry at all.
///
/// Valkey keeps the key until its expiry time has passed (`now > when`, in
/// `timestampIsExpired` of valkey-io/valkey src/db.c). The commands set that time to the
/// time of each change plus the limiter's `reset_after_ms`, and delete the key at once if a
/// change leaves the limiter fresh. So in the millisecond it expires, a request still finds
/// a limiter that behaves as fresh.
struct Key {
    limiter: Option<Limiter>,
    expire_at_ms: u128,
    expires: bool,
}

impl Key {
    fn new(expires: bool) -> Key {
        Key {
            limiter: None,
            expire_at_ms: 0,
            expires,
        }
    }

    /// Takes the limiter that a request at `now_ms` finds: the stored one, or a fresh one of
    /// `policy` if the key is missing. Returns whether the key existed.
    fn take(&mut self, policy: &Policy, now_ms: u64) -> (Limiter, bool) {
        if self.expires && u128::from(now_ms) > self.expire_at_ms {
            self.limiter = None;
        }
        match self.limiter.take() {
            Some(limiter) => (limiter, true),
            None => (policy.fresh(), false),
        }
    }

    /// Stores the limiter after a request at `now_ms` as the commands do. An unchanged
    /// limiter keeps its expiry, and a missing key stays missing.
    fn put(&mut self, limiter: Limiter, existed: bool, changed: bool, now_ms: u64) {
        if !changed {
            if existed {
                self.limiter = Some(limiter);
            }
            return;
        }
        let reset_after_ms = limiter.reset_after_ms(now_ms);
        if self.expires && reset_after_ms == 0 {
            return;
        }
        self.expire_at_ms = u128::from(now_ms) + u128::from(reset_after_ms);
        self.limiter = Some(limiter);
    }
}

/// Decides a request on a copy of `limiter` at `at_ms`.
fn probe(limiter: &Limiter, policy: &Policy, at_ms: u64, cost: u64) -> Decision {
    let mut copy = limiter.clone();
    apply(&mut copy, policy, at_ms, cost, true).decision
}

fn limit_of(policy: &Policy) -> u64 {
    match policy {
        Policy::Fixed(params) => params.limit,
        Policy::Sliding(params) => params.limit,
        Policy::TokenBucket(params) | Policy::Gcra(params) => params.capacity,
        Policy::Throttle { .. } | Policy::Debounce { .. } => 1,
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// Runs a trace on the crate and on the model and compares every reply and effect. With
/// `expires`, keys expire as in Valkey, and a missing key's request starts from a fresh
/// limiter and a fresh model.
fn check_against_model(trace: &Trace, expires: bool) -> Result<(), TestCaseError> {
    let mut policy = trace.policy;
    let mut key = Key::new(expires);
    let mut model = Model::fresh(&policy);
    let mut now_ms = trace.start_ms;

    for (index, step) in trace.steps.iter().enumerate() {
        now_ms = step.clock.next(now_ms);
        policy = step.new_policy.unwrap_or(policy);
        let context = format!("step {index} at {now_ms} ms with {policy:?}, {step:?}");

        let (mut limiter, existed) = key.take(&policy, now_ms);
        if !existed {
            model = Model::fresh(&policy);
        }
        prop_assert_eq!(
            limiter.reset_after_ms(now_ms),
            model.reset_after_ms(now_ms),
            "reset_after_ms before {}",
            context
        );

        let outcome = apply(&mut limiter, &policy, now_ms, step.cost, step.peek);
        let expected = model_apply(&mut model, &policy, now_ms, step.cost, step.peek);
        prop_assert_eq!(
            outcome.decision,
            expected.decision,
            "decision at {}",
            context
        );
        prop_assert_eq!(outcome.charged, expected.charged, "charged at {}", context);
        prop_assert_eq!(outcome.changed, expected.changed, "changed at {}", context);
        prop_assert_eq!(limiter.policy(), model.policy(), "policy after {}", context);
        prop_assert_eq!(
            limiter.reset_after_ms(now_ms),
            model.reset_after_ms(now_ms),
            "reset_after_ms after {}",
            context
        );
        key.put(limiter, existed, outcome.changed, now_ms);
    }
    Ok(())
}

/// Checks that a denied request is allowed exactly `retry_after_ms` later and not 1 ms
/// earlier, that the limiter is fresh exactly `reset_after_ms` later, and that a PEEK gets
/// the reply the request gets.
fn check_retry_and_reset(trace: &Trace) -> Result<(), TestCaseError> {
    let mut policy = trace.policy;
    let mut key = Key::new(true);
    let mut now_ms = trace.start_ms;
    // The latest time the state changed at, while the key exists. A clock behind it is
    // decided at a later time, so waits do not count from the request's own clock.
    let mut written_ms: Option<u64> = None;

    for (index, step) in trace.steps.iter().enumerate() {
        now_ms = step.clock.next(now_ms);
        policy = step.new_policy.unwrap_or(policy);
        let context = format!("step {index} at {now_ms} ms with {policy:?}, {step:?}");
        let (mut limiter, existed) = key.take(&policy, now_ms);
        if !existed {
            written_ms = None;
        }
        let behind = written_ms.is_some_and(|written_ms| now_ms < written_ms);

        let before = limiter.clone();
        let outcome = apply(&mut limiter, &policy, now_ms, step.cost, step.peek);
        let decision = outcome.decision;
        if outcome.changed {
            written_ms = Some(written_ms.map_or(now_ms, |written_ms| written_ms.max(now_ms)));
        }
        key.put(limiter.clone(), existed, outcome.changed, now_ms);

        if step.peek && !matches!(limiter, Limiter::Debounce(_)) {
            let mut copy = before.clone();
            let request = apply(&mut copy, &policy, now_ms, step.cost, false);
            prop_assert_eq!(decision, request.decision, "PEEK differs at {}", context);
        }
        let after = if step.peek {
            let mut copy = before.clone();
            apply(&mut copy, &policy, now_ms, step.cost, false);
            copy
        } else {
            limiter.clone()
        };
        if !matches!(after, Limiter::Debounce(_)) || !step.peek {
            prop_assert_eq!(
                after.reset_after_ms(now_ms),
                decision.reset_after_ms,
                "the state reached after {} resets at another time",
                context
            );
        }
        if behind {
            continue;
        }

        // A PEEK's wait is that of the request, so it counts from the state the request
        // reaches. A debounce PEEK reports the rest of the quiet period instead, so its wait
        // counts from the limiter with the new interval and no request recorded.
        let retried_state = if step.peek && matches!(limiter, Limiter::Debounce(_)) {
            let mut preview = before.clone();
            preview.set_policy(&policy, now_ms);
            preview
        } else {
            after.clone()
        };
        if decision.retry_after_ms == NEVER {
            prop_assert!(
                step.cost > limit_of(&policy),
                "never allowed at {}",
                context
            );
            let far_ms = now_ms.saturating_add(3 * MAX_DURATION_MS);
            let late = probe(&retried_state, &policy, far_ms, step.cost);
            prop_assert!(!late.allowed, "allowed later after NEVER at {}", context);
        } else if decision.retry_after_ms > 0 && decision.retry_after_ms < i64::MAX {
            prop_assert!(!decision.allowed, "allowed with a wait at {}", context);
            if let Some(retry_ms) = now_ms.checked_add(decision.retry_after_ms as u64) {
                let retried = probe(&retried_state, &policy, retry_ms, step.cost);
                prop_assert!(retried.allowed, "denied on retry after {}", context);
                let early = probe(&retried_state, &policy, retry_ms - 1, step.cost);
                prop_assert!(
                    !early.allowed,
                    "allowed 1 ms before retry after {}",
                    context
                );
            }
        }

        // A reset too far off for a u64 saturates to u64::MAX and is not exact.
        let reset_after_ms = after.reset_after_ms(now_ms);
        let reset_at_ms = now_ms.checked_add(reset_after_ms);
        if let Some(reset_ms) = reset_at_ms.filter(|_| reset_after_ms < u64::MAX) {
            prop_assert_eq!(
                after.reset_after_ms(reset_ms),
                0,
                "not fresh at {}",
                context
            );
            let fresh = policy.fresh();
            for cost in [1, step.cost, limit_of(&policy)] {
                let mut copy = after.clone();
                let mut fresh_copy = fresh.clone();
                prop_assert_eq!(
                    apply(&mut copy, &policy, reset_ms, cost, false),
                    apply(&mut fresh_copy, &policy, reset_ms, cost, false),
                    "a reset limiter differs from a fresh one after {}",
                    context
                );
            }
            if reset_after_ms > 0 {
                prop_assert!(
                    after.reset_after_ms(reset_ms - 1) > 0,
                    "fresh 1 ms early after {}",
                    context
                );
            }
        }
    }
    Ok(())
}

/// The time each request was in effect decided at: a clock behind the latest change counts
/// as that change's time.
struct EffectiveClock {
    written_ms: Option<u64>,
}

impl EffectiveClock {
    fn at(&self, now_ms: u64) -> u64 {
        self.written_ms
            .map_or(now_ms, |written_ms| now_ms.max(written_ms))
    }
}

/// Checks on the crate alone that the units allowed never exceed what the policy permits, in
/// effective time. The parameters stay the same and no key expires.
fn check_window_bounds(trace: &Trace) -> Result<(), TestCaseError> {
    let policy = trace.policy;
    let mut limiter = policy.fresh();
    let mut now_ms = trace.start_ms;
    let mut clock = EffectiveClock { written_ms: None };
    // Allowed requests: effective time and cost.
    let mut allowed: Vec<(u64, u64)> = Vec::new();
    let mut last_request_ms: Option<u64> = None;
    let mut fixed_window: Option<(u64, u128)> = None;

    for (index, step) in trace.steps.iter().enumerate() {
        now_ms = step.clock.next(now_ms);
        let effective_ms = clock.at(now_ms);
        let context = format!("step {index} at {now_ms} ms ({effective_ms} ms in effect)");

        let outcome = apply(&mut limiter, &policy, now_ms, step.cost, step.peek);
        if outcome.changed {
            clock.written_ms = Some(effective_ms);
        }
        if step.peek {
            continue;
        }
        if let Policy::Debounce { interval_ms } = policy {
            if outcome.decision.allowed {
                if let Some(last_ms) = last_request_ms {
                    prop_assert!(
                        effective_ms - last_ms >= interval_ms,
                        "allowed within the quiet period at {}",
                        context
                    );
                }
            }
            last_request_ms = Some(effective_ms);
            continue;
        }
        if !outcome.decision.allowed {
            continue;
        }
        allowed.push((effective_ms, step.cost));
        check_newest_allowed(&policy, &allowed, &mut fixed_window, &context)?;
    }
    Ok(())
}

/// Checks the bound of the policy on every window that ends at the newest allowed request.
fn check_newest_allowed(
    policy: &Policy,
    allowed: &[(u64, u64)],
    fixed_window: &mut Option<(u64, u128)>,
    context: &str,
) -> Result<(), TestCaseError> {
    let &(newest_ms, newest_cost) = allowed.last().expect("a request was allowed");
    match *policy {
        Policy::Fixed(params) => {
            let window = match *fixed_window {
                Some((opened_ms, used))
                    if u128::from(newest_ms)
                        < u128::from(opened_ms) + u128::from(params.window_ms) =>
                {
                    (opened_ms, used + u128::from(newest_cost))
                }
                _ => (newest_ms, u128::from(newest_cost)),
            };
            prop_assert!(
                window.1 <= u128::from(params.limit),
                "{} units in the window opened at {} ms, at {}",
                window.1,
                window.0,
                context
            );
            *fixed_window = Some(window);
        }
        Policy::Sliding(params) => {
            let precision = params.precision_ms;
            let buckets = params.window_ms.div_ceil(precision);
            let newest_bucket = newest_ms / precision;
            let used: u128 = allowed
                .iter()
                .filter(|(at_ms, _)| newest_bucket - at_ms / precision < buckets)
                .map(|(_, cost)| u128::from(*cost))
                .sum();
            prop_assert!(
                used <= u128::from(params.limit),
                "{} units in the window ending at {}",
                used,
                context
            );
        }
        Policy::TokenBucket(params) | Policy::Gcra(params) => {
            let period = u128::from(params.period_ms);
            let mut units = 0u128;
            for &(first_ms, cost) in allowed.iter().rev() {
                units += u128::from(cost);
                let span_ms = u128::from(newest_ms - first_ms);
                let permitted =
                    u128::from(params.capacity) * period + span_ms * u128::from(params.tokens);
                prop_assert!(
                    units * period <= permitted,
                    "{} units from {} ms to {}",
                    units,
                    first_ms,
                    context
                );
            }
        }
        Policy::Throttle { interval_ms } => {
            if let [.., (previous_ms, _), _] = allowed {
                prop_assert!(
                    newest_ms - previous_ms >= interval_ms,
                    "two events within an interval at {}",
                    context
                );
            }
        }
        Policy::Debounce { .. } => unreachable!("debounce bounds are checked per request"),
    }
    Ok(())
}

/// Checks that a request behind the latest change gets the units it would get at the time of
/// that change, and never a shorter wait. The parameters stay the same and no key expires.
fn check_backwards_clock(trace: &Trace) -> Result<(), TestCaseError> {
    let policy = trace.policy;
    let mut limiter = policy.fresh();
    let mut now_ms = trace.start_ms;
    let mut clock = EffectiveClock { written_ms: None };

    for (index, step) in trace.steps.iter().enumerate() {
        now_ms = step.clock.next(now_ms);
        let effective_ms = clock.at(now_ms);
        let context = format!("step {index} at {now_ms} ms, behind {effective_ms} ms");

        if now_ms < effective_ms {
            let behind = limiter.clone().decide(now_ms, step.cost, step.peek);
            let written = limiter.clone().decide(effective_ms, step.cost, step.peek);
            prop_assert_eq!(behind.allowed, written.allowed, "allowed at {}", context);
            prop_assert_eq!(
                behind.remaining,
                written.remaining,
                "remaining at {}",
                context
            );
            prop_assert_eq!(behind.limit, written.limit, "limit at {}", context);
            prop_assert!(
                behind.reset_after_ms >= written.reset_after_ms,
                "earlier reset at {}",
                context
            );
            if written.retry_after_ms == NEVER {
                prop_assert_eq!(behind.retry_after_ms, NEVER, "retry at {}", context);
            } else {
                prop_assert!(
                    behind.retry_after_ms >= written.retry_after_ms,
                    "shorter wait at {}",
                    context
                );
            }
        }

        let outcome = apply(&mut limiter, &policy, now_ms, step.cost, step.peek);
        if outcome.changed {
            clock.written_ms = Some(effective_ms);
        }
    }
    Ok(())
}

/// Checks that every state reached round-trips through the byte form, that a replica fed
/// each change as `(now_ms, charged)` reaches the same bytes, and that nothing panics with
/// any argument. Keys never expire here, so stale states are encoded too.
fn check_encoding_and_replay(trace: &Trace) -> Result<(), TestCaseError> {
    let mut policy = trace.policy;
    let mut primary = policy.fresh();
    let mut replica = policy.fresh();
    let mut now_ms = trace.start_ms;

    for (index, step) in trace.steps.iter().enumerate() {
        now_ms = step.clock.next(now_ms);
        policy = step.new_policy.unwrap_or(policy);
        let context = format!("step {index} at {now_ms} ms with {policy:?}, {step:?}");

        let outcome = apply(&mut primary, &policy, now_ms, step.cost, step.peek);
        if outcome.changed {
            let replayed = replay(&mut replica, &policy, now_ms, outcome.charged);
            prop_assert_eq!(replayed, Ok(()), "replay rejected {}", context);
        }

        let bytes = encode(&primary);
        let decoded = decode(&bytes);
        prop_assert!(
            decoded.is_ok(),
            "{:?} at {}",
            decoded.as_ref().err(),
            context
        );
        let decoded = decoded.expect("checked above");
        prop_assert_eq!(encode(&decoded), bytes.clone(), "round trip at {}", context);
        prop_assert_eq!(encode(&replica), bytes, "replica differs at {}", context);

        // The bytes must keep what the decisions depend on, not only encode the same again.
        let reset_ms = now_ms.saturating_add(primary.reset_after_ms(now_ms));
        for at_ms in [now_ms, now_ms.saturating_add(1), reset_ms] {
            for cost in [1, step.cost] {
                prop_assert_eq!(
                    decoded.decide(at_ms, cost, step.peek),
                    primary.decide(at_ms, cost, step.peek),
                    "decoded state decides otherwise at {} ms after {}",
                    at_ms,
                    context
                );
            }
        }

        // Every other entry point on the state reached, at the far ends of time.
        for at_ms in [now_ms, 0, u64::MAX] {
            let _ = primary.info(at_ms);
            let _ = primary.reset_after_ms(at_ms);
            let _ = primary.decide(at_ms, MAX_COUNT, false);
            let _ = decoded.decide(at_ms, 1, true);
        }
    }
    Ok(())
}

const ANY_TRACE: Shape = Shape {
    policy_changes: true,
    backwards: true,
};

const FIXED_POLICY: Shape = Shape {
    policy_changes: false,
    backwards: true,
};

proptest! {
    #![proptest_config(config())]

    #[test]
    fn crate_matches_model(trace in trace_strategy(ANY_TRACE)) {
        check_against_model(&trace, true)?;
        check_against_model(&trace, false)?;
    }

    #[test]
    fn retry_and_reset_times_are_exact(trace in trace_strategy(ANY_TRACE)) {
        check_retry_and_reset(&trace)?;
    }

    #[test]
    fn allowed_units_stay_within_policy(trace in trace_strategy(FIXED_POLICY)) {
        check_window_bounds(&trace)?;
    }

    #[test]
    fn backwards_clock_grants_nothing(trace in trace_strategy(FIXED_POLICY)) {
        check_backwards_clock(&trace)?;
    }

    #[test]
    fn encoding_and_replay_match_primary(trace in trace_strategy(ANY_TRACE)) {
        check_encoding_and_replay(&trace)?;
    }
}

// ---------------------------------------------------------------------------------------------
// A year of requests.

/// Sends a request every 3 s for 365 days, from 0 to `YEAR_MS` inclusive, and returns the
/// number allowed and the last reply.
fn request_every_3s_for_a_year(policy: Policy) -> (u64, Decision) {
    let mut limiter = policy.fresh();
    let mut allowed = 0;
    let mut last = None;
    for request in 0..=YEAR_MS / 3000 {
        let outcome = apply(&mut limiter, &policy, request * 3000, 1, false);
        allowed += u64::from(outcome.decision.allowed);
        last = Some(outcome.decision);
    }
    (allowed, last.expect("at least one request"))
}

fn one_token_per_7s(capacity: u64) -> RateParams {
    RateParams {
        capacity,
        tokens: 1,
        period_ms: 7000,
    }
}

/// With a capacity of 2 the bucket never fills up after the start: before each request it
/// contains less than 1 + 3/7 tokens, so no refill is lost. Requests every 3 s take a token as
/// soon as one is there, so by time `t` they have taken the 2 tokens of the new bucket plus
/// `floor(t / 7000)` refilled ones. `YEAR_MS` is 4_505_142 periods of 7 s and 6 s more.
#[test]
fn token_bucket_year_allows_accrued_tokens() {
    for policy in [
        Policy::TokenBucket(one_token_per_7s(2)),
        Policy::Gcra(one_token_per_7s(2)),
    ] {
        let (allowed, last) = request_every_3s_for_a_year(policy);

        assert_eq!(allowed, 2 + YEAR_MS / 7000, "{policy:?}");
        assert_eq!(allowed, 4_505_144, "{policy:?}");
        // The last grant took the token refilled at 4_505_142 * 7 s, 6 s before the end, so
        // 6/7 of a token is there: 1 s short of a token, 8 s short of a full bucket.
        assert_eq!(last, deny(2, 0, Some(1000), 8000), "{policy:?}");
    }
}

/// With a capacity of 1 the bucket is full 7 s after each grant, and the refill after that
/// is lost until the next request, which comes at the next multiple of 3 s: every 9 s.
#[test]
fn full_bucket_year_allows_every_9s() {
    for policy in [
        Policy::TokenBucket(one_token_per_7s(1)),
        Policy::Gcra(one_token_per_7s(1)),
    ] {
        let (allowed, _) = request_every_3s_for_a_year(policy);

        assert_eq!(allowed, YEAR_MS / 9000 + 1, "{policy:?}");
        assert_eq!(allowed, 3_504_001, "{policy:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal cases of defects the properties above found, kept as regression tests.

/// Runs `first` at 0 ms, which the limiter allows, then `second` at `at_ms` on that limiter
/// and on a fresh one, and returns both outcomes' decisions.
fn stale_and_fresh_decisions(first: Policy, second: Policy, at_ms: u64) -> (Decision, Decision) {
    let mut limiter = first.fresh();
    assert!(apply(&mut limiter, &first, 0, 1, false).decision.allowed);
    assert_eq!(limiter.reset_after_ms(at_ms), 0, "fresh at {at_ms} ms");

    let stale = apply(&mut limiter, &second, at_ms, 1, false).decision;
    let fresh = apply(&mut second.fresh(), &second, at_ms, 1, false).decision;
    (stale, fresh)
}

// New parameters must not bring back a window or interval that has passed. Valkey keeps a
// key in the millisecond it expires and deletes it 1 ms later (it expires a key once
// `now > when`, in `timestampIsExpired` of valkey-io/valkey src/db.c). So a limiter whose
// `reset_after_ms` is 0 must decide as a fresh one, or the same request would be denied in
// the expiry millisecond and allowed in any later one. Each case below used to be denied.

/// A 1 ms window opened at 0 ms has closed at 1 ms, and a 2 ms window at 1 ms must not
/// reopen it. Expected: allowed, limit 1, remaining 0, reset 2 ms, where it was denied with
/// a 1 ms wait.
#[test]
fn fixed_lengthened_at_expiry_is_fresh() {
    let short = Policy::Fixed(FixedParams {
        limit: 1,
        window_ms: 1,
    });
    let long = Policy::Fixed(FixedParams {
        limit: 1,
        window_ms: 2,
    });

    let (stale, fresh) = stale_and_fresh_decisions(short, long, 1);

    assert_eq!(fresh, allow(1, 0, 2));
    assert_eq!(stale, fresh);
}

/// The event allowed at 0 ms with a 1 ms interval has passed at 1 ms, and a 2 ms interval at
/// 1 ms must not bring it back. Expected: allowed, where it was denied with a 1 ms wait.
#[test]
fn throttle_lengthened_at_expiry_is_fresh() {
    let short = Policy::Throttle { interval_ms: 1 };
    let long = Policy::Throttle { interval_ms: 2 };

    let (stale, fresh) = stale_and_fresh_decisions(short, long, 1);

    assert_eq!(fresh, allow(1, 0, 2));
    assert_eq!(stale, fresh);
}

/// The quiet period after the request at 0 ms with a 1 ms interval has passed at 1 ms, and
/// a 2 ms interval at 1 ms must not bring the request back. Expected: allowed, where it was
/// denied with a 2 ms wait.
#[test]
fn debounce_lengthened_at_expiry_is_fresh() {
    let short = Policy::Debounce { interval_ms: 1 };
    let long = Policy::Debounce { interval_ms: 2 };

    let (stale, fresh) = stale_and_fresh_decisions(short, long, 1);

    assert_eq!(fresh, allow(1, 0, 2));
    assert_eq!(stale, fresh);
}

/// Builds the policies of a bucket of 2^63 - 1 units with a 365-day period, and of the same
/// bucket with a 730-day period.
fn huge_bucket_period_change(make: fn(RateParams) -> Policy) -> (Policy, Policy) {
    let day_ms = 24 * 3600 * 1000;
    let params = RateParams {
        capacity: MAX_COUNT,
        tokens: 1,
        period_ms: 365 * day_ms,
    };
    let doubled = RateParams {
        period_ms: 730 * day_ms,
        ..params
    };
    (make(params), make(doubled))
}

// A new token-bucket or GCRA period rescales the units used by new period / old period.
// The units used reach capacity * period_ms unit-milliseconds, so a plain product with the
// new period passes 2^128 once capacity * old period * new period does, here
// (2^63 - 1) * 365 days * 730 days. That overflow used to panic, in release builds too,
// whose profile sets `overflow-checks`.

/// Expected: the units used stay 2^63 - 1, now refilled over 730 days, so a request of 1 is
/// denied with the model's wait and reset.
#[test]
fn period_change_huge_usage_decides() {
    for make in [Policy::TokenBucket, Policy::Gcra] {
        let (before, after) = huge_bucket_period_change(make);
        let mut limiter = before.fresh();
        let mut model = Model::fresh(&before);
        assert!(
            apply(&mut limiter, &before, 0, MAX_COUNT, false)
                .decision
                .allowed
        );
        model_apply(&mut model, &before, 0, MAX_COUNT, false);

        let peek = model_apply(&mut model.clone(), &after, 1, 1, true).decision;
        let expected = model_apply(&mut model, &after, 1, 1, false).decision;

        assert!(!expected.allowed);
        assert_eq!(
            apply(&mut limiter.clone(), &after, 1, 1, true).decision,
            peek
        );
        assert_eq!(apply(&mut limiter, &after, 1, 1, false).decision, expected);
    }
}

/// The same change reaching a replica as `RL.APPLY` must be accepted, not panic.
#[test]
fn period_change_huge_usage_replays() {
    for make in [Policy::TokenBucket, Policy::Gcra] {
        let (before, after) = huge_bucket_period_change(make);
        let mut replica = before.fresh();
        assert_eq!(replay(&mut replica, &before, 0, MAX_COUNT), Ok(()));

        assert_eq!(replay(&mut replica, &after, 1, 0), Ok(()));
        assert_eq!(replica.policy(), after);
    }
}
