//! Argument parsing: numbers, durations, options and policies, each failure an error reply
//! that names the command, the argument and the rule, and shows the value given.
//!
//! Parsing touches no key, so a command that fails here changes nothing.

use std::fmt::Write;

use crate::fixed::FixedParams;
use crate::gcra::RateParams;
use crate::limiter::{Algorithm, Policy, MAX_COUNT, MAX_DURATION_MS};
use crate::sliding::{SlidingParams, MAX_LOG_ENTRIES};

/// The rule a count breaks.
pub const COUNT_RULE: &str = "an integer from 1 to 9223372036854775807";
/// The rule a duration breaks.
pub const DURATION_RULE: &str = "a positive duration such as 60, 500ms or 1.5m";
/// The rule a duration under the 1 ms resolution breaks.
pub const DURATION_MIN_RULE: &str = "at least 1ms";
/// The rule a duration above 100 years breaks.
pub const DURATION_MAX_RULE: &str = "at most 100 years (3153600000000ms)";

/// The maximum length of a client's value that an error message shows.
const SHOWN_VALUE_MAX: usize = 64;

/// An error reply, complete with its error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl ArgError {
    /// `ERR <command> <argument> must be <rule>; got '<value>'`.
    pub fn rule(command: &str, argument: &str, rule: &str, value: &[u8]) -> ArgError {
        ArgError(format!(
            "ERR {command} {argument} must be {rule}; got '{}'",
            shown(value)
        ))
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Formats a client value for an error message: printable ASCII as is, other bytes as
/// `\xNN`, cut after 64 characters.
pub fn shown(value: &[u8]) -> String {
    let mut text = String::new();
    for &byte in value {
        if text.len() >= SHOWN_VALUE_MAX {
            text.push_str("...");
            break;
        }
        if byte.is_ascii_graphic() && byte != b'\'' && byte != b'\\' || byte == b' ' {
            text.push(byte as char);
        } else {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    text
}

/// The arguments of a command, without copying them.
pub trait ArgList {
    fn count(&self) -> usize;
    fn get(&self, index: usize) -> &[u8];
}

impl ArgList for [&[u8]] {
    fn count(&self) -> usize {
        self.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        self[index]
    }
}

/// A window of another argument list, from `start` to its end.
pub struct Tail<'a, A: ArgList + ?Sized> {
    pub list: &'a A,
    pub start: usize,
}

impl<A: ArgList + ?Sized> ArgList for Tail<'_, A> {
    fn count(&self) -> usize {
        self.list.count().saturating_sub(self.start)
    }

    fn get(&self, index: usize) -> &[u8] {
        self.list.get(self.start + index)
    }
}

/// Parses a count: plain decimal digits from 1 to 2^63 - 1.
pub fn parse_count(command: &str, argument: &str, value: &[u8]) -> Result<u64, ArgError> {
    match parse_digits(value) {
        Some(count) if (1..=MAX_COUNT).contains(&count) => Ok(count),
        _ => Err(ArgError::rule(command, argument, COUNT_RULE, value)),
    }
}

/// Parses plain decimal digits into a `u64`; `None` for anything else or an overflow.
pub fn parse_digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut number: u64 = 0;
    for &byte in value {
        if !byte.is_ascii_digit() {
            return None;
        }
        number = number
            .checked_mul(10)?
            .checked_add(u64::from(byte - b'0'))?;
    }
    Some(number)
}

/// Parses a duration into milliseconds: digits with an optional fraction (`1.5`), then an
/// optional unit `ms`, `s`, `m`, `h` or `d` in any case. A bare number is seconds, and digits
/// finer than a millisecond are dropped.
pub fn parse_duration(command: &str, argument: &str, value: &[u8]) -> Result<u64, ArgError> {
    let invalid = || ArgError::rule(command, argument, DURATION_RULE, value);

    let digits_end = value
        .iter()
        .position(|byte| !byte.is_ascii_digit() && *byte != b'.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits_end);
    let unit_ms = match unit_ms(unit) {
        Some(unit_ms) => unit_ms,
        None => return Err(invalid()),
    };

    let (whole, fraction) = match number.iter().position(|byte| *byte == b'.') {
        None => (number, &b""[..]),
        Some(point) => {
            let fraction = &number[point + 1..];
            if fraction.is_empty() || fraction.contains(&b'.') {
                return Err(invalid());
            }
            (&number[..point], fraction)
        }
    };
    if whole.is_empty() {
        return Err(invalid());
    }

    let too_long = || ArgError::rule(command, argument, DURATION_MAX_RULE, value);
    let whole = parse_digits(whole).ok_or_else(too_long)?;
    let whole_ms = u128::from(whole) * u128::from(unit_ms);
    let milliseconds = whole_ms + u128::from(fraction_ms(fraction, unit_ms));

    if milliseconds > u128::from(MAX_DURATION_MS) {
        return Err(too_long());
    }
    if milliseconds == 0 {
        let rule = if whole == 0 && fraction.iter().any(|digit| *digit != b'0') {
            DURATION_MIN_RULE
        } else {
            DURATION_RULE
        };
        return Err(ArgError::rule(command, argument, rule, value));
    }
    Ok(milliseconds as u64)
}

/// Checks whether a value is a well-formed duration of zero, such as `0`, `0s` or `0.00ms`.
pub fn is_zero_duration(value: &[u8]) -> bool {
    let digits_end = value
        .iter()
        .position(|byte| !byte.is_ascii_digit() && *byte != b'.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits_end);
    let well_formed = match number.iter().position(|byte| *byte == b'.') {
        None => !number.is_empty(),
        Some(point) => {
            point > 0
                && point + 1 < number.len()
                && number.iter().filter(|byte| **byte == b'.').count() == 1
        }
    };
    well_formed && number.iter().all(|byte| matches!(byte, b'0' | b'.')) && unit_ms(unit).is_some()
}

/// Milliseconds in one unit of a duration; no unit means seconds.
fn unit_ms(unit: &[u8]) -> Option<u64> {
    const UNITS: [(&[u8], u64); 6] = [
        (b"", 1000),
        (b"ms", 1),
        (b"s", 1000),
        (b"m", 60_000),
        (b"h", 3_600_000),
        (b"d", 86_400_000),
    ];
    UNITS
        .iter()
        .find(|(name, _)| unit.eq_ignore_ascii_case(name))
        .map(|(_, unit_ms)| *unit_ms)
}

/// Whole milliseconds in `0.<fraction>` of a unit of `unit_ms`, rounded down exactly however
/// many digits there are: it carries from the last digit to the first, so every carry stays
/// below `unit_ms`.
fn fraction_ms(fraction: &[u8], unit_ms: u64) -> u64 {
    fraction.iter().rev().fold(0, |carry, digit| {
        (u64::from(digit - b'0') * unit_ms + carry) / 10
    })
}

/// Options after a command's positional arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub cost: u64,
    pub peek: bool,
    pub precision_ms: Option<u64>,
}

/// The options a command takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub cost: bool,
    pub precision: bool,
}

impl Accepted {
    /// Returns the options as a usage fragment for error messages.
    fn usage(&self) -> &'static str {
        match (self.cost, self.precision) {
            (true, true) => "COST n, PEEK or PRECISION duration",
            (true, false) => "COST n or PEEK",
            (false, _) => "PEEK",
        }
    }
}

/// Parses options in any order and case. Each may be given once.
pub fn parse_options<A: ArgList + ?Sized>(
    command: &str,
    args: &A,
    accepted: Accepted,
) -> Result<Options, ArgError> {
    let mut options = Options {
        cost: 1,
        peek: false,
        precision_ms: None,
    };
    let (mut seen_cost, mut seen_peek) = (false, false);
    let mut index = 0;
    while index < args.count() {
        let word = args.get(index);
        let twice = |name: &str| ArgError(format!("ERR {command} option {name} is given twice"));

        if word.eq_ignore_ascii_case(b"PEEK") {
            if seen_peek {
                return Err(twice("PEEK"));
            }
            seen_peek = true;
            options.peek = true;
            index += 1;
            continue;
        }

        let name = if accepted.cost && word.eq_ignore_ascii_case(b"COST") {
            "COST"
        } else if accepted.precision && word.eq_ignore_ascii_case(b"PRECISION") {
            "PRECISION"
        } else {
            return Err(ArgError(format!(
                "ERR {command} unknown option '{}'; expected {}",
                shown(word),
                accepted.usage()
            )));
        };
        if index + 1 >= args.count() {
            let expected = if name == "COST" {
                COUNT_RULE
            } else {
                DURATION_RULE
            };
            return Err(ArgError(format!(
                "ERR {command} {name} must be followed by {expected}"
            )));
        }
        let value = args.get(index + 1);
        if name == "COST" {
            if seen_cost {
                return Err(twice(name));
            }
            seen_cost = true;
            options.cost = parse_count(command, name, value)?;
        } else {
            if options.precision_ms.is_some() {
                return Err(twice(name));
            }
            options.precision_ms = Some(parse_duration(command, name, value)?);
        }
        index += 2;
    }
    Ok(options)
}

/// Returns the number of positional parameters the policy of `algorithm` takes.
pub fn policy_arity(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Fixed | Algorithm::Sliding => 2,
        Algorithm::TokenBucket | Algorithm::Gcra => 3,
        Algorithm::Throttle | Algorithm::Debounce => 1,
    }
}

/// Parses the positional parameters of a policy, `policy_arity(algorithm)` of them. A sliding
/// policy gets the default precision of 1 ms.
pub fn parse_policy<A: ArgList + ?Sized>(
    command: &str,
    algorithm: Algorithm,
    args: &A,
) -> Result<Policy, ArgError> {
    let arg = |index| args.get(index);
    let policy = match algorithm {
        Algorithm::Fixed => Policy::Fixed(FixedParams {
            limit: parse_count(command, "limit", arg(0))?,
            window_ms: parse_duration(command, "window", arg(1))?,
        }),
        Algorithm::Sliding => Policy::Sliding(SlidingParams {
            limit: parse_count(command, "limit", arg(0))?,
            window_ms: parse_duration(command, "window", arg(1))?,
            precision_ms: 1,
        }),
        Algorithm::TokenBucket => Policy::TokenBucket(RateParams {
            capacity: parse_count(command, "capacity", arg(0))?,
            tokens: parse_count(command, "tokens", arg(1))?,
            period_ms: parse_duration(command, "period", arg(2))?,
        }),
        Algorithm::Gcra => Policy::Gcra(RateParams {
            capacity: parse_count(command, "burst", arg(0))?,
            tokens: parse_count(command, "tokens", arg(1))?,
            period_ms: parse_duration(command, "period", arg(2))?,
        }),
        Algorithm::Throttle => Policy::Throttle {
            interval_ms: parse_duration(command, "interval", arg(0))?,
        },
        Algorithm::Debounce => Policy::Debounce {
            interval_ms: parse_duration(command, "interval", arg(0))?,
        },
    };
    Ok(policy)
}

/// Sets the precision of a sliding policy and checks that its log fits in `max_entries`.
pub fn set_precision(
    command: &str,
    policy: &mut Policy,
    precision_ms: Option<u64>,
    max_entries: u64,
) -> Result<(), ArgError> {
    let Policy::Sliding(params) = policy else {
        return Ok(());
    };
    if let Some(precision_ms) = precision_ms {
        if precision_ms > params.window_ms {
            return Err(ArgError(format!(
                "ERR {command} PRECISION must not exceed the window ({}ms); got {precision_ms}ms",
                params.window_ms
            )));
        }
        params.precision_ms = precision_ms;
    }

    let entries = params.max_entries();
    if entries > max_entries {
        let fitting_ms = params.window_ms.div_ceil(max_entries);
        return Err(ArgError(format!(
            "ERR {command} limit {} over a window of {}ms needs up to {entries} log entries, \
             above ratelimit.sliding-max-entries ({max_entries}); \
             use PRECISION {fitting_ms}ms or coarser, or raise the config",
            params.limit, params.window_ms
        )));
    }
    Ok(())
}

/// A parsed single-limiter request: the policy and the options, without the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub policy: Policy,
    pub cost: u64,
    pub peek: bool,
}

/// Parses the arguments after the key of the single-limiter command for `algorithm`. The
/// caller has checked that the positional parameters are present.
pub fn parse_request<A: ArgList + ?Sized>(
    command: &str,
    algorithm: Algorithm,
    args: &A,
    max_entries: u64,
) -> Result<Request, ArgError> {
    let arity = policy_arity(algorithm);
    let mut policy = parse_policy(command, algorithm, args)?;
    let accepted = Accepted {
        cost: !matches!(algorithm, Algorithm::Throttle | Algorithm::Debounce),
        precision: algorithm == Algorithm::Sliding,
    };
    let options = parse_options(
        command,
        &Tail {
            list: args,
            start: arity,
        },
        accepted,
    )?;
    set_precision(command, &mut policy, options.precision_ms, max_entries)?;
    Ok(Request {
        policy,
        cost: options.cost,
        peek: options.peek,
    })
}

/// Parses a duration given in plain milliseconds, as `RL.APPLY` carries it.
pub fn parse_duration_ms(command: &str, argument: &str, value: &[u8]) -> Result<u64, ArgError> {
    match parse_digits(value) {
        Some(ms) if (1..=MAX_DURATION_MS).contains(&ms) => Ok(ms),
        _ => Err(ArgError::rule(
            command,
            argument,
            "a number of milliseconds from 1 to 3153600000000",
            value,
        )),
    }
}

/// A charge propagated by `RL.APPLY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Apply {
    pub at_ms: u64,
    pub charged: u64,
    pub policy: Policy,
}

/// The command that carries a primary's charges to replicas and the AOF.
pub const APPLY_COMMAND: &str = "RL.APPLY";

/// Parses `at_ms charged ALGORITHM numbers...`, the arguments of `RL.APPLY` after the key.
pub fn parse_apply<A: ArgList + ?Sized>(args: &A) -> Result<Apply, ArgError> {
    let command = APPLY_COMMAND;
    if args.count() < 4 {
        return Err(ArgError(format!(
            "ERR wrong number of arguments for '{command}' command"
        )));
    }
    let at_ms = parse_digits(args.get(0))
        .ok_or_else(|| ArgError::rule(command, "at_ms", "a time in milliseconds", args.get(0)))?;
    let charged = parse_digits(args.get(1))
        .filter(|charged| *charged <= MAX_COUNT)
        .ok_or_else(|| {
            ArgError::rule(
                command,
                "charged",
                "an integer from 0 to 9223372036854775807",
                args.get(1),
            )
        })?;
    let algorithm = Algorithm::from_name(args.get(2)).ok_or_else(|| {
        ArgError::rule(
            command,
            "algorithm",
            "FIXED, SLIDING, TOKENBUCKET, GCRA, THROTTLE or DEBOUNCE",
            args.get(2),
        )
    })?;

    let numbers = Tail {
        list: args,
        start: 3,
    };
    let expected = policy_arity(algorithm) + usize::from(algorithm == Algorithm::Sliding);
    if numbers.count() != expected {
        return Err(ArgError(format!(
            "ERR {command} {} takes {expected} numbers; got {}",
            algorithm.name(),
            numbers.count()
        )));
    }
    let count = |index: usize, name: &str| parse_count(command, name, numbers.get(index));
    let duration = |index: usize, name: &str| parse_duration_ms(command, name, numbers.get(index));
    let policy = match algorithm {
        Algorithm::Fixed => Policy::Fixed(FixedParams {
            limit: count(0, "limit")?,
            window_ms: duration(1, "window_ms")?,
        }),
        Algorithm::Sliding => {
            let params = SlidingParams {
                limit: count(0, "limit")?,
                window_ms: duration(1, "window_ms")?,
                precision_ms: duration(2, "precision_ms")?,
            };
            if params.precision_ms > params.window_ms {
                return Err(ArgError(format!(
                    "ERR {command} precision_ms must not exceed window_ms"
                )));
            }
            // The primary checked its own ratelimit.sliding-max-entries, which a replica's may
            // not match, so only the hard bound of every configuration applies here.
            if params.max_entries() > MAX_LOG_ENTRIES {
                return Err(ArgError(format!(
                    "ERR {command} a sliding log of limit {} over {} buckets needs more than \
                     {MAX_LOG_ENTRIES} entries",
                    params.limit,
                    params.window_buckets()
                )));
            }
            Policy::Sliding(params)
        }
        Algorithm::TokenBucket | Algorithm::Gcra => {
            let params = RateParams {
                capacity: count(0, "capacity")?,
                tokens: count(1, "tokens")?,
                period_ms: duration(2, "period_ms")?,
            };
            if algorithm == Algorithm::Gcra {
                Policy::Gcra(params)
            } else {
                Policy::TokenBucket(params)
            }
        }
        Algorithm::Throttle => Policy::Throttle {
            interval_ms: duration(0, "interval_ms")?,
        },
        Algorithm::Debounce => Policy::Debounce {
            interval_ms: duration(0, "interval_ms")?,
        },
    };
    Ok(Apply {
        at_ms,
        charged,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(value: &str) -> Result<u64, ArgError> {
        parse_duration("RL.SLIDING", "window", value.as_bytes())
    }

    fn request(algorithm: Algorithm, args: &[&str]) -> Result<Request, ArgError> {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        parse_request("RL.TEST", algorithm, args.as_slice(), 65_536)
    }

    #[test]
    fn durations_accept_units_in_any_case() {
        let cases = [
            ("60", 60_000),
            ("500ms", 500),
            ("500MS", 500),
            ("1.5m", 90_000),
            ("1.5M", 90_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("0.5", 500),
            ("1.0005s", 1000),
            ("0.0015s", 1),
            ("3153600000000ms", MAX_DURATION_MS),
            ("36500d", MAX_DURATION_MS),
            ("007s", 7000),
        ];
        for (value, expected) in cases {
            assert_eq!(duration(value), Ok(expected), "{value}");
        }
    }

    #[test]
    fn fraction_rounds_down_exactly_at_any_length() {
        let digits = "9".repeat(500);
        assert_eq!(duration(&format!("0.{digits}s")), Ok(999));
        assert_eq!(duration(&format!("1.{digits}d")), Ok(2 * 86_400_000 - 1));
    }

    #[test]
    fn durations_reject_bad_forms() {
        for value in [
            "", "0", ".5", "5.", "1.2.3", "-1", "+1", "1e3", "1 s", "1us", "s", "0x10",
        ] {
            let error = duration(value).expect_err(value);
            let expected = format!(
                "ERR RL.SLIDING window must be a positive duration such as 60, 500ms or 1.5m; \
                 got '{value}'"
            );
            assert_eq!(error.message(), expected, "{value}");
        }
    }

    #[test]
    fn zero_durations_are_recognised() {
        for zero in ["0", "0s", "0.0ms", "00m", "0.000D"] {
            assert!(is_zero_duration(zero.as_bytes()), "{zero}");
        }
        for other in ["", "1", "0.5ms", ".0", "0.", "0.0.0", "0x", "-0", "s"] {
            assert!(!is_zero_duration(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn duration_under_a_millisecond_is_an_error() {
        let error = duration("0.5ms").unwrap_err();
        assert_eq!(
            error.message(),
            "ERR RL.SLIDING window must be at least 1ms; got '0.5ms'"
        );
    }

    #[test]
    fn duration_over_a_century_is_an_error() {
        for value in ["36501d", "3153600000001ms", "99999999999999999999999999s"] {
            let error = duration(value).unwrap_err();
            assert!(error.message().contains(DURATION_MAX_RULE), "{value}");
        }
    }

    #[test]
    fn counts_take_plain_digits_only() {
        assert_eq!(
            parse_count("C", "limit", b"9223372036854775807"),
            Ok(MAX_COUNT)
        );
        for value in [
            "0",
            "-1",
            "+1",
            "1.0",
            "1e3",
            " 1",
            "9223372036854775808",
            "",
            "١",
        ] {
            let error = parse_count("C", "limit", value.as_bytes()).unwrap_err();
            assert_eq!(
                error.message(),
                format!(
                    "ERR C limit must be an integer from 1 to 9223372036854775807; got '{}'",
                    shown(value.as_bytes())
                ),
            );
        }
    }

    #[test]
    fn error_shows_binary_safely_and_briefly() {
        assert_eq!(shown(b"a\r\n\x00'"), "a\\x0d\\x0a\\x00\\x27");
        let long = "x".repeat(100);
        assert_eq!(shown(long.as_bytes()), format!("{}...", "x".repeat(64)));
    }

    #[test]
    fn options_in_any_order_and_case() {
        let parsed = request(
            Algorithm::Sliding,
            &["10", "1m", "peek", "Precision", "1s", "cost", "3"],
        );
        let request = parsed.unwrap();
        assert_eq!(request.cost, 3);
        assert!(request.peek);
        assert_eq!(
            request.policy,
            Policy::Sliding(SlidingParams {
                limit: 10,
                window_ms: 60_000,
                precision_ms: 1000
            })
        );
    }

    #[test]
    fn options_are_checked() {
        let cases: [(Algorithm, &[&str], &str); 7] = [
            (
                Algorithm::Fixed,
                &["1", "1", "COST"],
                "ERR RL.TEST COST must be followed by an integer from 1 to 9223372036854775807",
            ),
            (
                Algorithm::Fixed,
                &["1", "1", "COST", "0"],
                "ERR RL.TEST COST must be an integer from 1 to 9223372036854775807; got '0'",
            ),
            (
                Algorithm::Fixed,
                &["1", "1", "PEEK", "peek"],
                "ERR RL.TEST option PEEK is given twice",
            ),
            (
                Algorithm::Fixed,
                &["1", "1", "COST", "1", "COST", "2"],
                "ERR RL.TEST option COST is given twice",
            ),
            (
                Algorithm::Fixed,
                &["1", "1", "PRECISION", "1s"],
                "ERR RL.TEST unknown option 'PRECISION'; expected COST n or PEEK",
            ),
            (
                Algorithm::Throttle,
                &["1", "COST", "2"],
                "ERR RL.TEST unknown option 'COST'; expected PEEK",
            ),
            (
                Algorithm::Sliding,
                &["1", "1s", "PRECISION", "2s"],
                "ERR RL.TEST PRECISION must not exceed the window (1000ms); got 2000ms",
            ),
        ];
        for (algorithm, args, expected) in cases {
            let error = request(algorithm, args).unwrap_err();
            assert_eq!(error.message(), expected, "{args:?}");
        }
    }

    #[test]
    fn apply_round_trips_every_policy() {
        let policies = [
            Policy::Fixed(FixedParams {
                limit: 3,
                window_ms: 60_000,
            }),
            Policy::Sliding(SlidingParams {
                limit: 3,
                window_ms: 60_000,
                precision_ms: 10,
            }),
            Policy::TokenBucket(RateParams {
                capacity: 3,
                tokens: 1,
                period_ms: 1000,
            }),
            Policy::Gcra(RateParams {
                capacity: 3,
                tokens: 1,
                period_ms: 1000,
            }),
            Policy::Throttle { interval_ms: 5 },
            Policy::Debounce { interval_ms: 5 },
        ];
        for policy in policies {
            let (numbers, len) = policy.numbers();
            let mut words = vec!["1796000000000".to_string(), "2".to_string()];
            words.push(policy.algorithm().name().to_string());
            words.extend(numbers[..len].iter().map(u64::to_string));
            let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
            let apply = parse_apply(args.as_slice()).unwrap();
            assert_eq!(
                apply,
                Apply {
                    at_ms: 1_796_000_000_000,
                    charged: 2,
                    policy
                }
            );
        }
    }

    #[test]
    fn oversized_sliding_log_suggests_a_precision() {
        let error = request(Algorithm::Sliding, &["100000", "1h"]).unwrap_err();
        assert_eq!(
            error.message(),
            "ERR RL.TEST limit 100000 over a window of 3600000ms needs up to 100000 log \
             entries, above ratelimit.sliding-max-entries (65536); use PRECISION 55ms or \
             coarser, or raise the config"
        );
        let fitting = request(Algorithm::Sliding, &["100000", "1h", "PRECISION", "55ms"]);
        assert!(fitting.is_ok());
    }
}
