//! The byte form of a limiter: used in RDB files, `DUMP` payloads, AOF rewrites (`RL.LOAD`),
//! `DEBUG DIGEST-VALUE` and, without the version byte, for small limiters in memory.
//!
//! ```text
//! state  = version:u8 tag:u8 fields
//! fields = FIXED:       limit window_ms window_start_ms used
//!          SLIDING:     limit window_ms precision_ms count (bucket_step units){count}
//!          TOKENBUCKET: capacity tokens period_ms used_scaled at_ms
//!          GCRA:        capacity tokens period_ms used_scaled at_ms
//!          THROTTLE:    interval_ms has_last:u8 [last_allowed_ms]
//!          DEBOUNCE:    interval_ms has_last:u8 [last_request_ms]
//! ```
//! Every number is an unsigned LEB128 varint. A sliding entry's `bucket_step` is its bucket
//! minus the previous entry's (the first entry's is its bucket). The form is canonical: equal
//! states encode to equal bytes, so digests match on a primary and its replicas.
//!
//! Decoding validates every field against the rules the commands enforce, so that state read
//! from a file or a client can never make later arithmetic overflow.

use crate::debounce::Debounce;
use crate::fixed::{Fixed, FixedParams};
use crate::gcra::{Rate, RateParams};
use crate::limiter::{Algorithm, Limiter, MAX_COUNT, MAX_DURATION_MS};
use crate::sliding::{Entry, Sliding, SlidingParams, MAX_LOG_ENTRIES};
use crate::throttle::Throttle;

/// The version of the byte form this module writes. Later versions must keep reading it.
pub const FORMAT_VERSION: u8 = 1;

/// The reason bytes are not a valid limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.0)
    }
}

/// A byte sink the fields are written to: a `Vec`, or a fixed buffer for packing.
pub trait Sink {
    fn push(&mut self, byte: u8);
}

impl Sink for Vec<u8> {
    fn push(&mut self, byte: u8) {
        Vec::push(self, byte);
    }
}

/// Encodes a limiter with the version byte.
pub fn encode(limiter: &Limiter) -> Vec<u8> {
    let mut bytes = vec![FORMAT_VERSION, limiter.algorithm().tag()];
    encode_fields(limiter, &mut bytes);
    bytes
}

/// Decodes bytes written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Limiter, DecodeError> {
    let mut reader = Reader::new(bytes);
    if reader.byte()? != FORMAT_VERSION {
        return Err(DecodeError("unknown format version"));
    }
    let algorithm =
        Algorithm::from_tag(reader.byte()?).ok_or(DecodeError("unknown algorithm tag"))?;
    let limiter = decode_fields(algorithm, &mut reader)?;
    reader.finish()?;
    Ok(limiter)
}

/// Appends the fields of a limiter, without version and tag.
pub fn encode_fields(limiter: &Limiter, bytes: &mut impl Sink) {
    match limiter {
        Limiter::Fixed(fixed) => {
            put_varint(bytes, fixed.params.limit.into());
            put_varint(bytes, fixed.params.window_ms.into());
            put_varint(bytes, fixed.window_start_ms.into());
            put_varint(bytes, fixed.used.into());
        }
        Limiter::Sliding(sliding) => {
            put_varint(bytes, sliding.params.limit.into());
            put_varint(bytes, sliding.params.window_ms.into());
            put_varint(bytes, sliding.params.precision_ms.into());
            let entries = sliding.entries();
            put_varint(bytes, entries.len() as u128);
            let mut previous_bucket = 0;
            for entry in entries {
                put_varint(bytes, (entry.bucket - previous_bucket).into());
                put_varint(bytes, entry.units.into());
                previous_bucket = entry.bucket;
            }
        }
        Limiter::TokenBucket(rate) | Limiter::Gcra(rate) => {
            put_varint(bytes, rate.params.capacity.into());
            put_varint(bytes, rate.params.tokens.into());
            put_varint(bytes, rate.params.period_ms.into());
            put_varint(bytes, rate.used_scaled);
            put_varint(bytes, rate.at_ms.into());
        }
        Limiter::Throttle(throttle) => {
            put_varint(bytes, throttle.interval_ms.into());
            put_optional(bytes, throttle.last_allowed_ms);
        }
        Limiter::Debounce(debounce) => {
            put_varint(bytes, debounce.interval_ms.into());
            put_optional(bytes, debounce.last_request_ms);
        }
    }
}

/// Reads the fields of a limiter of `algorithm`.
pub fn decode_fields(algorithm: Algorithm, reader: &mut Reader) -> Result<Limiter, DecodeError> {
    let limiter = match algorithm {
        Algorithm::Fixed => {
            let params = FixedParams {
                limit: reader.count()?,
                window_ms: reader.duration()?,
            };
            let window_start_ms = reader.u64()?;
            let used = reader.u64()?;
            if used > MAX_COUNT {
                return Err(DecodeError("units used above 2^63 - 1"));
            }
            Limiter::Fixed(Fixed {
                params,
                window_start_ms,
                used,
            })
        }
        Algorithm::Sliding => Limiter::Sliding(Box::new(decode_sliding(reader)?)),
        Algorithm::TokenBucket => Limiter::TokenBucket(decode_rate(reader)?),
        Algorithm::Gcra => Limiter::Gcra(decode_rate(reader)?),
        Algorithm::Throttle => Limiter::Throttle(Throttle {
            interval_ms: reader.duration()?,
            last_allowed_ms: reader.optional()?,
        }),
        Algorithm::Debounce => Limiter::Debounce(Debounce {
            interval_ms: reader.duration()?,
            last_request_ms: reader.optional()?,
        }),
    };
    Ok(limiter)
}

fn decode_sliding(reader: &mut Reader) -> Result<Sliding, DecodeError> {
    let params = SlidingParams {
        limit: reader.count()?,
        window_ms: reader.duration()?,
        precision_ms: reader.duration()?,
    };
    if params.precision_ms > params.window_ms {
        return Err(DecodeError("precision longer than the window"));
    }

    let count = reader.u64()?;
    // Each entry takes at least two bytes, which bounds the allocation by the input.
    if count > MAX_LOG_ENTRIES || count > (reader.remaining() / 2) as u64 {
        return Err(DecodeError("too many sliding log entries"));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut bucket = 0u64;
    let mut used = 0u64;
    for index in 0..count {
        let step = reader.u64()?;
        if index > 0 && step == 0 {
            return Err(DecodeError("sliding log entries out of order"));
        }
        bucket = bucket
            .checked_add(step)
            .ok_or(DecodeError("sliding log bucket overflows"))?;
        let units = reader.u64()?;
        used = used
            .checked_add(units)
            .filter(|used| *used <= MAX_COUNT)
            .ok_or(DecodeError("units used above 2^63 - 1"))?;
        if units == 0 {
            return Err(DecodeError("sliding log entry without units"));
        }
        entries.push(Entry { bucket, units });
    }
    // Bucket start times must fit in milliseconds since the epoch.
    if u128::from(bucket) * u128::from(params.precision_ms) > u128::from(u64::MAX) {
        return Err(DecodeError("sliding log bucket overflows"));
    }
    Ok(Sliding::from_entries(params, &entries))
}

fn decode_rate(reader: &mut Reader) -> Result<Rate, DecodeError> {
    let params = RateParams {
        capacity: reader.count()?,
        tokens: reader.count()?,
        period_ms: reader.duration()?,
    };
    let used_scaled = reader.u128()?;
    if used_scaled > u128::from(MAX_COUNT) * u128::from(params.period_ms) {
        return Err(DecodeError("units used above 2^63 - 1"));
    }
    Ok(Rate {
        params,
        used_scaled,
        at_ms: reader.u64()?,
    })
}

fn put_varint(bytes: &mut impl Sink, mut value: u128) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn put_optional(bytes: &mut impl Sink, value: Option<u64>) {
    match value {
        None => bytes.push(0),
        Some(value) => {
            bytes.push(1);
            put_varint(bytes, value.into());
        }
    }
}

/// A cursor over encoded bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self
            .bytes
            .split_first()
            .ok_or(DecodeError("truncated state"))?;
        self.bytes = rest;
        Ok(first)
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("bytes left after the state"))
        }
    }

    /// Reads an unsigned LEB128 varint of up to 19 bytes.
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        let mut value = 0u128;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            let bits = u128::from(byte & 0x7f);
            // The 19th byte carries the top 2 bits of 128.
            if shift == 126 && bits > 0b11 {
                return Err(DecodeError("number overflows"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 126 {
                return Err(DecodeError("number overflows"));
            }
        }
    }

    /// Reads an unsigned LEB128 varint of up to 10 bytes. Every field but one is a `u64`, so
    /// this path, the hot path of reading a packed limiter, avoids 128-bit arithmetic.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (index, &byte) in self.bytes.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            // The 10th byte carries the top bit of 64.
            if index == 9 && bits > 1 {
                break;
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[index + 1..];
                return Ok(value);
            }
        }
        if self.bytes.len() < 10 && self.bytes.iter().all(|byte| byte & 0x80 != 0) {
            return Err(DecodeError("truncated state"));
        }
        Err(DecodeError("number overflows"))
    }

    /// Reads a count of units: 1 to 2^63 - 1.
    fn count(&mut self) -> Result<u64, DecodeError> {
        let value = self.u64()?;
        if value == 0 || value > MAX_COUNT {
            return Err(DecodeError("count outside 1 to 2^63 - 1"));
        }
        Ok(value)
    }

    /// Reads a duration: 1 ms to 100 years.
    fn duration(&mut self) -> Result<u64, DecodeError> {
        let value = self.u64()?;
        if value == 0 || value > MAX_DURATION_MS {
            return Err(DecodeError("duration outside 1 ms to 100 years"));
        }
        Ok(value)
    }

    fn optional(&mut self) -> Result<Option<u64>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(DecodeError("invalid presence flag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::{apply, Policy};

    fn round_trip(limiter: &Limiter) -> Limiter {
        decode(&encode(limiter)).expect("encoded state decodes")
    }

    #[test]
    fn every_algorithm_round_trips() {
        let policies = [
            Policy::Fixed(FixedParams {
                limit: 10,
                window_ms: 60_000,
            }),
            Policy::Sliding(SlidingParams {
                limit: 1000,
                window_ms: 60_000,
                precision_ms: 7,
            }),
            Policy::TokenBucket(RateParams {
                capacity: 10,
                tokens: 3,
                period_ms: 1000,
            }),
            Policy::Gcra(RateParams {
                capacity: MAX_COUNT,
                tokens: MAX_COUNT,
                period_ms: MAX_DURATION_MS,
            }),
            Policy::Throttle { interval_ms: 500 },
            Policy::Debounce { interval_ms: 500 },
        ];
        for policy in policies {
            let mut limiter = policy.fresh();
            for now_ms in [1_796_000_000_000, 1_796_000_000_010, 1_796_000_000_500] {
                apply(&mut limiter, &policy, now_ms, 2, false);
            }
            let bytes = encode(&limiter);
            assert_eq!(encode(&round_trip(&limiter)), bytes);
        }
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [0, 1, 127, 128, u128::from(u64::MAX), u128::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.u128(), Ok(value));
            assert!(reader.finish().is_ok());
        }
    }

    #[test]
    fn u64_varints_match_u128_decoding() {
        for value in [0, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value.into());
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.u64(), Ok(value));
            assert!(reader.finish().is_ok());
        }
        let mut too_big = Vec::new();
        put_varint(&mut too_big, u128::from(u64::MAX) + 1);
        assert_eq!(
            Reader::new(&too_big).u64(),
            Err(DecodeError("number overflows"))
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80]).u64(),
            Err(DecodeError("truncated state"))
        );
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xff; 20];
        assert!(Reader::new(&bytes).u128().is_err());
    }

    #[test]
    fn invalid_state_is_rejected() {
        let cases: [&[u8]; 7] = [
            &[],
            &[2, 1, 1, 1, 0, 0],
            &[1, 9],
            &[1, 1, 0, 1, 0, 0],
            &[1, 1, 1, 1, 0, 0, 7],
            &[1, 2, 5, 10, 20, 0],
            &[1, 2, 5, 10, 5, 2, 1, 1, 0, 1],
        ];
        for bytes in cases {
            assert!(decode(bytes).is_err(), "{bytes:?} must be rejected");
        }
    }

    #[test]
    fn huge_entry_count_is_rejected_before_allocating() {
        let mut bytes = vec![FORMAT_VERSION, Algorithm::Sliding.tag(), 5, 10, 1];
        put_varint(&mut bytes, u128::from(u64::MAX));
        assert_eq!(
            decode(&bytes).err(),
            Some(DecodeError("too many sliding log entries"))
        );
    }
}
