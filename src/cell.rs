//! `CL.THROTTLE`, redis-cell's command, on the GCRA core: existing clients move over unchanged.
//!
//! ```text
//! CL.THROTTLE key max_burst count_per_period period [quantity]
//! ```
//! It is `RL.GCRA key <max_burst + 1> count_per_period <period>s COST quantity` with redis-cell's
//! conventions. The period is whole seconds, a quantity of 0 only reads, and the reply is
//! `[limited, max_burst + 1, remaining, retry_after_s, reset_after_s]`. There `limited` is 1
//! for a denied request, `retry_after_s` is -1 unless the request is denied but can be allowed
//! later, and times are seconds rounded up. The key is a GCRA limiter, so `RL.GCRA` and
//! `RL.INFO` work on it too.
//!
//! Where redis-cell accepts nonsense (negative numbers, a zero rate or period), this command
//! returns an error instead.

use crate::args::{parse_digits, ArgError, ArgList, Request};
use crate::decision::{Decision, NEVER};
use crate::ffi::Ctx;
use crate::gcra::RateParams;
use crate::limiter::{Policy, MAX_COUNT, MAX_DURATION_MS};

pub const COMMAND: &str = "CL.THROTTLE";

/// The maximum period: 100 years, in seconds.
const MAX_PERIOD_S: u64 = MAX_DURATION_MS / 1000;

/// Parses the arguments after the key: `max_burst count_per_period period [quantity]`.
pub fn parse_cell<A: ArgList + ?Sized>(args: &A) -> Result<Request, ArgError> {
    if !(3..=4).contains(&args.count()) {
        return Err(ArgError(format!(
            "ERR wrong number of arguments for '{COMMAND}' command"
        )));
    }
    let number = |index: usize, name: &str, min: u64, max: u64| {
        parse_digits(args.get(index))
            .filter(|value| (min..=max).contains(value))
            .ok_or_else(|| {
                let rule = format!("an integer from {min} to {max}");
                ArgError::rule(COMMAND, name, &rule, args.get(index))
            })
    };
    let max_burst = number(0, "max_burst", 0, MAX_COUNT - 1)?;
    let tokens = number(1, "count_per_period", 1, MAX_COUNT)?;
    let period_s = number(2, "period", 1, MAX_PERIOD_S)?;
    let quantity = if args.count() == 4 {
        number(3, "quantity", 0, MAX_COUNT)?
    } else {
        1
    };
    Ok(Request {
        policy: Policy::Gcra(RateParams {
            capacity: max_burst + 1,
            tokens,
            period_ms: period_s * 1000,
        }),
        cost: quantity,
        peek: false,
    })
}

/// redis-cell's reply for a decision: `[limited, limit, remaining, retry_after_s,
/// reset_after_s]`.
pub fn cell_reply(decision: &Decision) -> [i64; 5] {
    // Times saturate at the largest reply integer in milliseconds, as the RL.* replies do.
    let seconds = |ms: u64| ms.min(i64::MAX as u64).div_ceil(1000) as i64;
    let retry_after_s = if decision.allowed || decision.retry_after_ms == NEVER {
        -1
    } else {
        seconds(decision.retry_after_ms as u64)
    };
    [
        i64::from(!decision.allowed),
        i64::try_from(decision.limit).unwrap_or(i64::MAX),
        i64::try_from(decision.remaining).unwrap_or(i64::MAX),
        retry_after_s,
        seconds(decision.reset_after_ms),
    ]
}

pub fn reply(ctx: &Ctx, decision: &Decision) {
    let fields = cell_reply(decision);
    ctx.reply_array(fields.len());
    for field in fields {
        ctx.reply_i64(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Request, ArgError> {
        let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
        parse_cell(args.as_slice())
    }

    #[test]
    fn arguments_map_to_a_gcra_policy() {
        let request = parse(&["15", "30", "60"]).unwrap();
        let expected = Policy::Gcra(RateParams {
            capacity: 16,
            tokens: 30,
            period_ms: 60_000,
        });
        assert_eq!(request.policy, expected);
        assert_eq!(request.cost, 1);
        assert_eq!(parse(&["0", "1", "1", "0"]).unwrap().cost, 0);
    }

    #[test]
    fn nonsense_is_an_error() {
        let cases = [
            (&["-1", "30", "60"][..], "ERR CL.THROTTLE max_burst must be an integer from 0 to 9223372036854775806; got '-1'"),
            (&["1", "0", "60"], "ERR CL.THROTTLE count_per_period must be an integer from 1 to 9223372036854775807; got '0'"),
            (&["1", "1", "0"], "ERR CL.THROTTLE period must be an integer from 1 to 3153600000; got '0'"),
            (&["1", "1", "1.5"], "ERR CL.THROTTLE period must be an integer from 1 to 3153600000; got '1.5'"),
            (&["1", "1", "1", "-3"], "ERR CL.THROTTLE quantity must be an integer from 0 to 9223372036854775807; got '-3'"),
            (&["1", "1"], "ERR wrong number of arguments for 'CL.THROTTLE' command"),
        ];
        for (words, expected) in cases {
            assert_eq!(parse(words).unwrap_err().message(), expected, "{words:?}");
        }
    }

    #[test]
    fn reply_rounds_up_to_seconds() {
        let denied = Decision::deny(16, 0, Some(1001), 30_001);
        assert_eq!(cell_reply(&denied), [1, 16, 0, 2, 31]);
        let allowed = Decision::allow(16, 15, 2000);
        assert_eq!(cell_reply(&allowed), [0, 16, 15, -1, 2]);
        let never = Decision::deny(6, 6, None, 0);
        assert_eq!(cell_reply(&never), [1, 6, 6, -1, 0]);
    }
}
