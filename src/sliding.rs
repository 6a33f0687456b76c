//! Sliding window log: a request is allowed if the units allowed in the last `window_ms`
//! (ending now) plus its cost stay within `limit`.
//!
//! Time is cut into buckets of `precision_ms`, aligned to multiples of the precision, and the
//! window spans `ceil(window_ms / precision_ms)` buckets, the current one included. Requests
//! in one bucket share one log entry, so the log never contains more than min(limit, window
//! buckets) entries. With the default precision of 1 ms the window is exact; a coarser
//! precision lets an entry leave the window up to one bucket early.
//!
//! Each entry stores the running total of units allowed up to and including it. The units in
//! the window are then one subtraction, and the time a denied request must wait is a binary
//! search, so a decision costs O(log n) in the number of entries, never O(n).

use crate::decision::{saturate_u64, until, Decision};
use crate::ring::{field_mask, width_for, Ring};

/// The maximum entries of one log, whatever `ratelimit.sliding-max-entries` is set to.
pub const MAX_LOG_ENTRIES: u64 = 1 << 24;

/// Parameters of `RL.SLIDING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingParams {
    pub limit: u64,
    pub window_ms: u64,
    pub precision_ms: u64,
}

impl SlidingParams {
    /// Returns the window measured in buckets.
    pub fn window_buckets(&self) -> u64 {
        self.window_ms.div_ceil(self.precision_ms)
    }

    /// Returns the maximum number of entries a log with these parameters can contain.
    pub fn max_entries(&self) -> u64 {
        self.limit.min(self.window_buckets())
    }
}

/// A sliding window log.
#[derive(Clone, Debug)]
pub struct Sliding {
    pub params: SlidingParams,
    ring: Ring,
    /// Bucket of the newest entry, in full.
    newest_bucket: u64,
    /// Running total at the newest entry, in full, modulo 2^64.
    newest_total: u64,
    /// Running total just before the oldest entry, modulo 2^64.
    base_total: u64,
}

/// An entry with its fields in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub bucket: u64,
    /// Units allowed in this bucket.
    pub units: u64,
}

impl Sliding {
    pub fn new(params: SlidingParams) -> Sliding {
        let (time_width, count_width) = widths_for(&params, 0);
        Sliding {
            params,
            ring: Ring::new(time_width, count_width),
            newest_bucket: 0,
            newest_total: 0,
            base_total: 0,
        }
    }

    /// Builds a log from entries in increasing bucket order, each with at least one unit, whose
    /// units add up to at most 2^63 - 1. The caller validates this.
    pub fn from_entries(params: SlidingParams, entries: &[Entry]) -> Sliding {
        let mut sliding = Sliding::new(params);
        let used: u64 = entries.iter().map(|entry| entry.units).sum();
        let (time_width, count_width) = widths_for(&params, used);
        let span = match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => last.bucket - first.bucket,
            _ => 0,
        };
        sliding.ring = Ring::new(time_width.max(width_for(span)), count_width);
        for entry in entries {
            sliding.push(entry.bucket, entry.units);
        }
        sliding
    }

    /// Entries oldest first, with fields in full.
    pub fn entries(&self) -> Vec<Entry> {
        let mut previous_total = self.base_total;
        (0..self.ring.len())
            .map(|index| {
                let total = self.total_at(index);
                let entry = Entry {
                    bucket: self.bucket_at(index),
                    units: total.wrapping_sub(previous_total),
                };
                previous_total = total;
                entry
            })
            .collect()
    }

    pub fn entry_count(&self) -> usize {
        self.ring.len()
    }

    /// Heap bytes of the entries, for `MEMORY USAGE`.
    pub fn allocated_bytes(&self) -> usize {
        self.ring.allocated_bytes()
    }

    /// Decides a request of `cost` units at `now_ms` without changing anything.
    pub fn decide(&self, now_ms: u64, cost: u64) -> Decision {
        let (now_ms, now_bucket) = self.clamp(now_ms);
        let first_live = self.first_live(now_bucket);
        let before_live = self.total_before(first_live);
        let used = self.newest_total.wrapping_sub(before_live);
        let limit = self.params.limit;

        if used <= limit && cost <= limit - used {
            let reset_after_ms = self.expiry_ms(now_bucket);
            return Decision::allow(limit, limit - used - cost, until(reset_after_ms, now_ms));
        }

        let reset_after_ms = if used == 0 {
            0
        } else {
            until(self.expiry_ms(self.newest_bucket), now_ms)
        };
        let retry_after_ms = (cost <= limit).then(|| {
            // The request fits once enough of the oldest units leave the window. `need` is at
            // most `used`, so some live entry frees it.
            let need = used - (limit - cost);
            let index = self.first_reaching(first_live, before_live, need);
            self.expiry_ms(self.bucket_at(index)) - u128::from(now_ms)
        });
        Decision::deny(
            limit,
            limit.saturating_sub(used),
            retry_after_ms,
            reset_after_ms,
        )
    }

    /// Charges `cost` units at `now_ms`; the caller has checked that [`Sliding::decide`] allows
    /// it.
    pub fn charge(&mut self, now_ms: u64, cost: u64) {
        let (_, now_bucket) = self.clamp(now_ms);
        self.drop_expired(now_bucket);
        self.push(now_bucket, cost);
    }

    /// Applies new parameters at `now_ms`: entries the new window no longer covers are dropped
    /// and a new precision moves every entry into the bucket that contains its start.
    pub fn set_params(&mut self, params: SlidingParams, now_ms: u64) {
        let (now_ms, now_bucket) = self.clamp(now_ms);
        self.drop_expired(now_bucket);
        let mut entries = self.entries();
        if params.precision_ms != self.params.precision_ms {
            entries = rebucket(&entries, self.params.precision_ms, params.precision_ms);
        }

        // Every moved entry starts at or before `now_ms`, so no bucket is after this one.
        let now_bucket = now_ms / params.precision_ms;
        let window_buckets = params.window_buckets();
        entries.retain(|entry| now_bucket - entry.bucket < window_buckets);
        *self = Sliding::from_entries(params, &entries);
    }

    pub fn reset_after_ms(&self, now_ms: u64) -> u64 {
        let (now_ms, now_bucket) = self.clamp(now_ms);
        if self.first_live(now_bucket) == self.ring.len() {
            0
        } else {
            until(self.expiry_ms(self.newest_bucket), now_ms)
        }
    }

    /// Units allowed in the window that ends at `now_ms`.
    pub fn used_at(&self, now_ms: u64) -> u64 {
        let (_, now_bucket) = self.clamp(now_ms);
        let first_live = self.first_live(now_bucket);
        self.newest_total
            .wrapping_sub(self.total_before(first_live))
    }

    /// Time and bucket of `now_ms`, moved forward to the newest entry if the clock went back.
    fn clamp(&self, now_ms: u64) -> (u64, u64) {
        let precision = self.params.precision_ms;
        let now_bucket = now_ms / precision;
        if !self.ring.is_empty() && now_bucket < self.newest_bucket {
            (
                self.newest_bucket.saturating_mul(precision),
                self.newest_bucket,
            )
        } else {
            (now_ms, now_bucket)
        }
    }

    /// When an entry in `bucket` leaves the window.
    fn expiry_ms(&self, bucket: u64) -> u128 {
        let window_buckets = u128::from(self.params.window_buckets());
        (u128::from(bucket) + window_buckets) * u128::from(self.params.precision_ms)
    }

    /// Index of the oldest entry still in the window at `now_bucket`, or `len` if none is.
    fn first_live(&self, now_bucket: u64) -> usize {
        let window_buckets = self.params.window_buckets();
        let expired =
            |sliding: &Sliding, index| now_bucket - sliding.bucket_at(index) >= window_buckets;
        // Most decisions find the oldest entry still live, so check it before searching.
        if self.ring.is_empty() || !expired(self, 0) {
            return 0;
        }
        self.partition_point(expired)
    }

    /// Index of the oldest entry from `start` on whose running total, counted from
    /// `before_start`, reaches `need`.
    fn first_reaching(&self, start: usize, before_start: u64, need: u64) -> usize {
        let short = |sliding: &Sliding, index| {
            index < start || sliding.total_at(index).wrapping_sub(before_start) < need
        };
        // A request of one unit at the limit needs only the oldest entry to leave.
        if !short(self, start) {
            return start;
        }
        self.partition_point(short).min(self.ring.len() - 1)
    }

    /// Returns the first index for which `is_before` is false, where it is true for a prefix.
    fn partition_point(&self, is_before: impl Fn(&Sliding, usize) -> bool) -> usize {
        let (mut low, mut high) = (0, self.ring.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if is_before(self, middle) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    // The ring keeps the low bytes of each field, and the newest entry's full values are known,
    // so a field in full is the newest value minus the wrapped difference of the low bytes.
    fn bucket_at(&self, index: usize) -> u64 {
        let (time_width, _) = self.ring.widths();
        let mask = field_mask(time_width);
        let age = (self.newest_bucket & mask).wrapping_sub(self.ring.get(index).bucket) & mask;
        self.newest_bucket - age
    }

    fn total_at(&self, index: usize) -> u64 {
        let (_, count_width) = self.ring.widths();
        let mask = field_mask(count_width);
        let behind = (self.newest_total & mask).wrapping_sub(self.ring.get(index).count) & mask;
        self.newest_total.wrapping_sub(behind)
    }

    /// Returns the running total just before entry `index`.
    fn total_before(&self, index: usize) -> u64 {
        match index.checked_sub(1) {
            None => self.base_total,
            Some(previous) => self.total_at(previous),
        }
    }

    fn drop_expired(&mut self, now_bucket: u64) {
        let first_live = self.first_live(now_bucket);
        if first_live == self.ring.len() {
            self.base_total = self.newest_total;
            self.ring.clear();
        } else if first_live > 0 {
            self.base_total = self.total_at(first_live - 1);
            self.ring.drop_oldest(first_live);
        }
    }

    /// Adds `units` in `bucket`, which is not older than the newest entry.
    fn push(&mut self, bucket: u64, units: u64) {
        let used = self.newest_total.wrapping_sub(self.base_total) + units;
        let (time_width, count_width) = self.ring.widths();
        let needed_count_width = width_for(used);
        if needed_count_width > count_width {
            self.ring.set_widths(time_width, needed_count_width);
        }

        self.newest_total = self.newest_total.wrapping_add(units);
        let (_, count_width) = self.ring.widths();
        let low_total = self.newest_total & field_mask(count_width);
        if !self.ring.is_empty() && bucket == self.newest_bucket {
            self.ring.set_last_count(low_total);
        } else {
            let capacity_hint = usize::try_from(self.params.max_entries()).unwrap_or(usize::MAX);
            self.ring.push(bucket, low_total, capacity_hint);
            self.newest_bucket = bucket;
        }
    }
}

/// Field widths that hold every bucket age inside the window and every running-total
/// difference up to the larger of the limit and `used`.
fn widths_for(params: &SlidingParams, used: u64) -> (u8, u8) {
    let time_width = width_for(params.window_buckets().saturating_sub(1));
    let count_width = width_for(params.limit.max(used));
    (time_width, count_width)
}

/// Moves entries from buckets of `from_ms` to buckets of `to_ms`, merging entries that land in
/// one bucket.
fn rebucket(entries: &[Entry], from_ms: u64, to_ms: u64) -> Vec<Entry> {
    let mut moved: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        let start_ms = u128::from(entry.bucket) * u128::from(from_ms);
        let bucket = saturate_u64(start_ms / u128::from(to_ms));
        match moved.last_mut() {
            Some(last) if last.bucket == bucket => last.units += entry.units,
            _ => moved.push(Entry {
                bucket,
                units: entry.units,
            }),
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(limit: u64, window_ms: u64, precision_ms: u64) -> Sliding {
        Sliding::new(SlidingParams {
            limit,
            window_ms,
            precision_ms,
        })
    }

    fn request(sliding: &mut Sliding, now_ms: u64, cost: u64) -> Decision {
        let decision = sliding.decide(now_ms, cost);
        if decision.allowed {
            sliding.charge(now_ms, cost);
        }
        decision
    }

    #[test]
    fn allows_limit_in_any_window() {
        let mut sliding = log(2, 100, 1);
        assert_eq!(request(&mut sliding, 0, 1), Decision::allow(2, 1, 100));
        assert_eq!(request(&mut sliding, 50, 1), Decision::allow(2, 0, 100));
        assert_eq!(
            request(&mut sliding, 99, 1),
            Decision::deny(2, 0, Some(1), 51)
        );
        assert_eq!(request(&mut sliding, 100, 1), Decision::allow(2, 0, 100));
        assert_eq!(
            request(&mut sliding, 149, 1),
            Decision::deny(2, 0, Some(1), 51)
        );
    }

    #[test]
    fn same_millisecond_shares_one_entry() {
        let mut sliding = log(10, 1000, 1);
        request(&mut sliding, 5, 1);
        request(&mut sliding, 5, 2);
        assert_eq!(
            sliding.entries(),
            vec![Entry {
                bucket: 5,
                units: 3
            }]
        );
    }

    #[test]
    fn retry_waits_for_enough_units_to_leave() {
        let mut sliding = log(5, 1000, 1);
        request(&mut sliding, 0, 2);
        request(&mut sliding, 100, 2);
        request(&mut sliding, 200, 1);
        // Four units must leave for a cost of 4: both entries at 0 and at 100.
        assert_eq!(sliding.decide(300, 4), Decision::deny(5, 0, Some(800), 900));
        assert!(!sliding.decide(1099, 4).allowed);
        assert!(sliding.decide(1100, 4).allowed);
    }

    #[test]
    fn cost_above_limit_is_never_allowed() {
        let sliding = log(5, 1000, 1);
        assert_eq!(sliding.decide(0, 6), Decision::deny(5, 5, None, 0));
    }

    #[test]
    fn precision_groups_requests_into_buckets() {
        let mut sliding = log(1000, 1000, 100);
        for now_ms in 0..250 {
            request(&mut sliding, now_ms, 1);
        }
        assert_eq!(sliding.entry_count(), 3);
        // The bucket starting at 0 leaves when the window has moved on by ten buckets.
        assert_eq!(sliding.used_at(999), 250);
        assert_eq!(sliding.used_at(1000), 150);
    }

    #[test]
    fn log_stays_within_the_limit_under_hammering() {
        let mut sliding = log(100, 60_000, 1);
        for now_ms in 0..100_000 {
            request(&mut sliding, now_ms, 1);
        }
        assert!(sliding.entry_count() <= 100);
        assert_eq!(sliding.allocated_bytes(), 300);
    }

    #[test]
    fn new_precision_keeps_units() {
        let mut sliding = log(10, 1000, 1);
        request(&mut sliding, 10, 1);
        request(&mut sliding, 20, 2);
        request(&mut sliding, 150, 3);
        let params = SlidingParams {
            limit: 10,
            window_ms: 1000,
            precision_ms: 100,
        };
        sliding.set_params(params, 200);
        assert_eq!(
            sliding.entries(),
            vec![
                Entry {
                    bucket: 0,
                    units: 3
                },
                Entry {
                    bucket: 1,
                    units: 3
                }
            ]
        );
        assert_eq!(sliding.used_at(200), 6);
    }

    #[test]
    fn shorter_window_drops_old_entries() {
        let mut sliding = log(10, 1000, 1);
        request(&mut sliding, 0, 1);
        request(&mut sliding, 500, 1);
        let params = SlidingParams {
            limit: 10,
            window_ms: 400,
            precision_ms: 1,
        };
        sliding.set_params(params, 600);
        assert_eq!(
            sliding.entries(),
            vec![Entry {
                bucket: 500,
                units: 1
            }]
        );
    }

    #[test]
    fn higher_limit_widens_counts() {
        let mut sliding = log(200, 1000, 1);
        request(&mut sliding, 0, 200);
        let params = SlidingParams {
            limit: 100_000,
            window_ms: 1000,
            precision_ms: 1,
        };
        sliding.set_params(params, 1);
        request(&mut sliding, 2, 70_000);
        assert_eq!(sliding.used_at(3), 70_200);
        assert_eq!(
            sliding.entries(),
            vec![
                Entry {
                    bucket: 0,
                    units: 200
                },
                Entry {
                    bucket: 2,
                    units: 70_000
                }
            ]
        );
    }

    #[test]
    fn running_totals_wrap_without_error() {
        let mut sliding = log(200, 10, 1);
        for now_ms in 0..10_000 {
            request(&mut sliding, now_ms, 150);
        }
        assert_eq!(sliding.used_at(9_999), 150);
    }

    #[test]
    fn backwards_clock_grants_nothing() {
        let mut sliding = log(1, 1000, 1);
        request(&mut sliding, 5000, 1);
        assert_eq!(
            sliding.decide(10, 1),
            Decision::deny(1, 0, Some(1000), 1000)
        );
    }

    #[test]
    fn largest_arguments_do_not_overflow() {
        let max = i64::MAX as u64;
        let mut sliding = log(max, 3_153_600_000_000, 1);
        assert!(request(&mut sliding, u64::MAX - 1, max).allowed);
        let denied = sliding.decide(u64::MAX, 1);
        assert!(!denied.allowed);
        assert!(denied.retry_after_ms > 0);
    }
}
