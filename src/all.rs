//! `RL.ALL`: several limiters decided as one, all or nothing.
//!
//! ```text
//! RL.ALL numkeys key [key ...] policy [policy ...] [COST n] [PEEK]
//! policy = FIXED limit window | SLIDING limit window [PRECISION d]
//!        | TOKENBUCKET capacity tokens period | GCRA burst tokens period | THROTTLE interval
//! ```
//! One policy per key, in key order. The request is allowed only if every limiter allows it;
//! then each is charged, otherwise none is. New parameters are stored even when the request is
//! denied, as for the single-limiter commands.

use crate::args::{
    parse_count, parse_duration, parse_options, parse_policy, policy_arity, set_precision, shown,
    Accepted, ArgError, ArgList, Tail, DURATION_RULE,
};
use crate::decision::{Decision, NEVER};
use crate::limiter::{Algorithm, Limiter, Policy};

pub const COMMAND: &str = "RL.ALL";

/// A parsed `RL.ALL` request. Keys are argument indices, so they stay borrowed from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllRequest {
    pub key_indices: Vec<usize>,
    pub policies: Vec<Policy>,
    pub cost: u64,
    pub peek: bool,
}

/// Parses `numkeys key... policy... [COST n] [PEEK]`, starting at `args[0]`, the numkeys.
/// `first_index` is the position of `args[0]` in the whole command, for the key indices.
pub fn parse_all<A: ArgList + ?Sized>(
    command: &str,
    args: &A,
    first_index: usize,
    max_entries: u64,
) -> Result<AllRequest, ArgError> {
    if args.count() < 3 {
        return Err(ArgError(format!(
            "ERR wrong number of arguments for '{command}' command"
        )));
    }
    let numkeys = key_count(args).ok_or_else(|| {
        let max_keys = max_keys(args);
        let rule = format!("an integer from 1 to {max_keys} for this many arguments");
        ArgError::rule(command, "numkeys", &rule, args.get(0))
    })?;

    // Keys are args[1..=numkeys]. A key given twice would be charged twice in one decision.
    if let Some(key) = first_repeated(args, numkeys) {
        return Err(ArgError(format!(
            "ERR {command} key '{}' is given twice; each key may have one policy",
            shown(key)
        )));
    }
    let key_indices: Vec<usize> = (1..=numkeys).map(|index| first_index + index).collect();

    let mut policies = Vec::with_capacity(numkeys);
    let mut index = 1 + numkeys;
    for number in 1..=numkeys {
        let name = format!("{command} policy {number}");
        let word = if index < args.count() {
            args.get(index)
        } else {
            &b""[..]
        };
        let algorithm = Algorithm::from_name(word)
            .filter(|algorithm| *algorithm != Algorithm::Debounce)
            .ok_or_else(|| {
                ArgError::rule(
                    &name,
                    "algorithm",
                    "FIXED, SLIDING, TOKENBUCKET, GCRA or THROTTLE",
                    word,
                )
            })?;
        let arity = policy_arity(algorithm);
        if index + arity >= args.count() {
            return Err(ArgError(format!(
                "ERR {name} {} takes {arity} parameters",
                algorithm.name()
            )));
        }
        let params = Tail {
            list: args,
            start: index + 1,
        };
        let mut policy = parse_policy(&name, algorithm, &params)?;
        index += 1 + arity;

        let mut precision_ms = None;
        let has_precision = algorithm == Algorithm::Sliding
            && index < args.count()
            && args.get(index).eq_ignore_ascii_case(b"PRECISION");
        if has_precision {
            if index + 1 >= args.count() {
                return Err(ArgError(format!(
                    "ERR {name} PRECISION must be followed by {DURATION_RULE}"
                )));
            }
            precision_ms = Some(parse_duration(&name, "PRECISION", args.get(index + 1))?);
            index += 2;
        }
        set_precision(&name, &mut policy, precision_ms, max_entries)?;
        policies.push(policy);
    }

    let accepted = Accepted {
        cost: true,
        precision: false,
    };
    let options = parse_options(
        command,
        &Tail {
            list: args,
            start: index,
        },
        accepted,
    )?;
    Ok(AllRequest {
        key_indices,
        policies,
        cost: options.cost,
        peek: options.peek,
    })
}

/// Returns the maximum number of keys an `RL.ALL` with these arguments can have, since each key
/// takes itself and at least an algorithm word and one parameter.
fn max_keys<A: ArgList + ?Sized>(args: &A) -> usize {
    args.count().saturating_sub(1) / 3
}

/// Returns the number of keys of `numkeys key... policy...` (`args[0]` is numkeys), or `None`
/// if numkeys is not a count these arguments can have.
pub fn key_count<A: ArgList + ?Sized>(args: &A) -> Option<usize> {
    if args.count() == 0 {
        return None;
    }
    let numkeys = parse_count(COMMAND, "numkeys", args.get(0)).ok()?;
    usize::try_from(numkeys)
        .ok()
        .filter(|numkeys| *numkeys <= max_keys(args))
}

/// Returns the first key among `args[1..=numkeys]` that an earlier one repeats. A short list
/// is compared pair by pair; a long one goes through a set, so that tens of thousands of keys
/// take linear time.
fn first_repeated<A: ArgList + ?Sized>(args: &A, numkeys: usize) -> Option<&[u8]> {
    const PAIRWISE_MAX: usize = 16;
    if numkeys <= PAIRWISE_MAX {
        return (1..=numkeys)
            .find(|&index| (1..index).any(|earlier| args.get(earlier) == args.get(index)))
            .map(|index| args.get(index));
    }
    let mut seen = std::collections::HashSet::with_capacity(numkeys);
    (1..=numkeys)
        .map(|index| args.get(index))
        .find(|key| !seen.insert(*key))
}

/// The effect of one `RL.ALL` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllOutcome {
    /// The combined verdict.
    pub combined: Decision,
    /// Each limiter's own decision on the request. When the request is denied, a limiter that
    /// would have allowed it shows allowed, but with its remaining units and reset time as they
    /// are, since nothing was charged.
    pub decisions: Vec<Decision>,
    /// Units charged to each limiter: the cost if the request was allowed, else 0.
    pub charged: u64,
    /// Whether each limiter's state changed.
    pub changed: Vec<bool>,
}

/// Runs one request of `cost` units against every limiter at once: allowed only if each
/// allows it, then charged to all. `policies[i]` must be of `limiters[i]`'s algorithm.
pub fn apply_all(
    limiters: &mut [&mut Limiter],
    policies: &[Policy],
    now_ms: u64,
    cost: u64,
    peek: bool,
) -> AllOutcome {
    let new_policy: Vec<bool> = limiters
        .iter()
        .zip(policies)
        .map(|(limiter, policy)| limiter.policy() != *policy)
        .collect();

    // Each limiter's decision, with the units it has now and the time until it resets, for
    // a denied request that charges nothing.
    let looked: Vec<(Decision, u64, u64)> = limiters
        .iter_mut()
        .zip(policies)
        .zip(&new_policy)
        .map(|((limiter, policy), new_policy)| {
            let look = |limiter: &Limiter, decision| {
                (
                    decision,
                    limiter.available(now_ms),
                    limiter.reset_after_ms(now_ms),
                )
            };
            match (peek, new_policy) {
                (true, true) => {
                    let mut preview = (**limiter).clone();
                    preview.set_policy(policy, now_ms);
                    let decision = preview.decide(now_ms, cost, true);
                    look(&preview, decision)
                }
                (true, false) => look(limiter, limiter.decide(now_ms, cost, true)),
                (false, _) => {
                    limiter.set_policy(policy, now_ms);
                    let decision = limiter.decide(now_ms, cost, false);
                    look(limiter, decision)
                }
            }
        })
        .collect();

    // When one limiter denies, none is charged, so a limiter that would have allowed the
    // request reports its state as it is, not as a charge would have left it.
    let allowed = looked.iter().all(|(decision, _, _)| decision.allowed);
    let decisions: Vec<Decision> = looked
        .into_iter()
        .map(|(decision, available, reset_after_ms)| {
            if allowed || !decision.allowed {
                decision
            } else {
                Decision {
                    remaining: available,
                    reset_after_ms,
                    ..decision
                }
            }
        })
        .collect();

    let combined = combine(&decisions);
    let charged = if combined.allowed && !peek { cost } else { 0 };
    if charged > 0 {
        for limiter in limiters.iter_mut() {
            limiter.charge(now_ms, charged);
        }
    }
    let changed = new_policy
        .iter()
        .map(|new_policy| !peek && (*new_policy || charged > 0))
        .collect();
    AllOutcome {
        combined,
        decisions,
        charged,
        changed,
    }
}

/// Combines decisions into one, allowed only if all allow. The limit and remaining come from
/// the limiter with the fewest remaining, and the reset time is the largest. The wait is the
/// largest too, or never if any limiter can never allow.
pub fn combine(decisions: &[Decision]) -> Decision {
    let allowed = decisions.iter().all(|decision| decision.allowed);
    let tightest = decisions
        .iter()
        .min_by_key(|decision| decision.remaining)
        .expect("RL.ALL has at least one limiter");
    let retry_after_ms = if allowed {
        0
    } else if decisions
        .iter()
        .any(|decision| decision.retry_after_ms == NEVER)
    {
        NEVER
    } else {
        decisions
            .iter()
            .map(|decision| decision.retry_after_ms)
            .max()
            .unwrap_or(1)
    };
    Decision {
        allowed,
        limit: tightest.limit,
        remaining: tightest.remaining,
        retry_after_ms,
        reset_after_ms: decisions
            .iter()
            .map(|decision| decision.reset_after_ms)
            .max()
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::FixedParams;
    use crate::sliding::SlidingParams;

    fn parse(words: &[&str]) -> Result<AllRequest, ArgError> {
        let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
        parse_all(COMMAND, args.as_slice(), 1, 65_536)
    }

    #[test]
    fn parses_keys_policies_and_options() {
        let request = parse(&[
            "2",
            "user",
            "service",
            "FIXED",
            "10",
            "1m",
            "sliding",
            "100",
            "1h",
            "PRECISION",
            "1s",
            "COST",
            "2",
            "PEEK",
        ])
        .unwrap();
        assert_eq!(request.key_indices, vec![2, 3]);
        assert_eq!(
            request.policies,
            vec![
                Policy::Fixed(FixedParams {
                    limit: 10,
                    window_ms: 60_000
                }),
                Policy::Sliding(SlidingParams {
                    limit: 100,
                    window_ms: 3_600_000,
                    precision_ms: 1000
                }),
            ]
        );
        assert_eq!(request.cost, 2);
        assert!(request.peek);
    }

    #[test]
    fn bad_requests_are_errors() {
        let cases: [(&[&str], &str); 6] = [
            (&["0", "k", "FIXED", "1", "1s"], "ERR RL.ALL numkeys must be an integer from 1 to 1 for this many arguments; got '0'"),
            (&["2", "k", "FIXED", "1", "1s"], "ERR RL.ALL numkeys must be an integer from 1 to 1 for this many arguments; got '2'"),
            (&["2", "k", "k", "FIXED", "1", "1s", "FIXED", "1", "1s"], "ERR RL.ALL key 'k' is given twice; each key may have one policy"),
            (&["1", "k", "DEBOUNCE", "1s"], "ERR RL.ALL policy 1 algorithm must be FIXED, SLIDING, TOKENBUCKET, GCRA or THROTTLE; got 'DEBOUNCE'"),
            (&["1", "k", "GCRA", "1", "1s"], "ERR RL.ALL policy 1 GCRA takes 3 parameters"),
            (&["1", "k", "FIXED", "0", "1s"], "ERR RL.ALL policy 1 limit must be an integer from 1 to 9223372036854775807; got '0'"),
        ];
        for (words, expected) in cases {
            assert_eq!(parse(words).unwrap_err().message(), expected, "{words:?}");
        }
    }

    #[test]
    fn denied_by_one_charges_none() {
        let user = Policy::Fixed(FixedParams {
            limit: 1,
            window_ms: 1000,
        });
        let service = Policy::Fixed(FixedParams {
            limit: 5,
            window_ms: 1000,
        });
        let (mut first, mut second) = (user.fresh(), service.fresh());
        let policies = [user, service];

        let outcome = apply_all(&mut [&mut first, &mut second], &policies, 0, 1, false);
        assert!(outcome.combined.allowed);
        let outcome = apply_all(&mut [&mut first, &mut second], &policies, 1, 1, false);
        assert!(!outcome.combined.allowed);
        assert_eq!(outcome.charged, 0);
        // The service limiter would allow it, and shows its state uncharged.
        assert_eq!(outcome.decisions[1], Decision::allow(5, 4, 999));
        assert_eq!(second.reset_after_ms(1), 999);
        assert_eq!(outcome.combined, Decision::deny(1, 0, Some(999), 999));
    }

    #[test]
    fn combined_wait_is_never_if_one_is() {
        let decisions = [
            Decision::deny(5, 0, Some(10), 10),
            Decision::deny(2, 2, None, 0),
        ];
        assert_eq!(combine(&decisions).retry_after_ms, NEVER);
    }
}
