//! The command flow: parse every argument, open the key, decide, store and propagate what
//! changed, reply. A command that fails before the decision changes nothing.

use std::ffi::CStr;

use crate::args::{self, parse_apply, parse_request, policy_arity, ArgError, Tail};
use crate::config;
use crate::datatype::{self, module_type, Stored};
use crate::decision::Decision;
use crate::encoding;
use crate::ffi::{self, Arg, Args, Ctx, Key, KeyValue};
use crate::limiter::{apply, replay, Algorithm, Limiter, Policy};
use crate::reply;
use crate::stats::{self, CommandStats};

/// Valkey's own reply for a key of another type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Returns the name of the single-limiter command for an algorithm.
pub fn command_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Fixed => "RL.FIXED",
        Algorithm::Sliding => "RL.SLIDING",
        Algorithm::TokenBucket => "RL.TOKENBUCKET",
        Algorithm::Gcra => "RL.GCRA",
        Algorithm::Throttle => "RL.THROTTLE",
        Algorithm::Debounce => "RL.DEBOUNCE",
    }
}

/// Returns the keyspace event fired when a limiter of an algorithm changes.
fn event(algorithm: Algorithm) -> &'static CStr {
    match algorithm {
        Algorithm::Fixed => c"rl.fixed",
        Algorithm::Sliding => c"rl.sliding",
        Algorithm::TokenBucket => c"rl.tokenbucket",
        Algorithm::Gcra => c"rl.gcra",
        Algorithm::Throttle => c"rl.throttle",
        Algorithm::Debounce => c"rl.debounce",
    }
}

fn command_stats(algorithm: Algorithm) -> &'static CommandStats {
    match algorithm {
        Algorithm::Fixed => &stats::FIXED,
        Algorithm::Sliding => &stats::SLIDING,
        Algorithm::TokenBucket => &stats::TOKENBUCKET,
        Algorithm::Gcra => &stats::GCRA,
        Algorithm::Throttle => &stats::THROTTLE,
        Algorithm::Debounce => &stats::DEBOUNCE,
    }
}

fn wrong_arity(command: &str) -> ArgError {
    ArgError(format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

fn wrong_algorithm(command: &str, key: &Arg, found: Algorithm, expected: Algorithm) -> ArgError {
    ArgError(format!(
        "ERR {command} cannot use key '{}': it holds a {} limiter, not a {} one; call RL.{} on \
         it or delete the key",
        args::shown(key.bytes()),
        found.name(),
        expected.name(),
        found.name(),
    ))
}

/// Runs `RL.FIXED`, `RL.SLIDING`, `RL.TOKENBUCKET`, `RL.GCRA`, `RL.THROTTLE` or
/// `RL.DEBOUNCE`: `<command> key <policy parameters> [options]`.
pub fn limit(ctx: Ctx, args: &Args, algorithm: Algorithm) {
    let stats = command_stats(algorithm);
    match run_limit(ctx, args, algorithm) {
        Ok(decision) => {
            reply::decision(&ctx, &decision);
            stats.count_decision(decision.allowed);
        }
        Err(error) => {
            ctx.reply_error(error.message());
            stats.count_error();
        }
    }
}

fn run_limit(ctx: Ctx, args: &Args, algorithm: Algorithm) -> Result<Decision, ArgError> {
    let command = command_name(algorithm);
    if args.len() < 2 + policy_arity(algorithm) {
        return Err(wrong_arity(command));
    }
    let key_name = args.arg(1);
    let tail = Tail {
        list: args,
        start: 2,
    };
    let request = parse_request(command, algorithm, &tail, config::sliding_max_entries())?;

    let now_ms = ffi::now_ms();
    let key = ctx.open_key(&key_name, !request.peek);
    let mut slot = open_slot(&key, command, &key_name, &request.policy)?;
    let outcome = apply(
        slot.limiter(),
        &request.policy,
        now_ms,
        request.cost,
        request.peek,
    );
    if outcome.changed {
        if save(&ctx, &key, &key_name, slot, now_ms) {
            stats::KEYS_CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        propagate(&ctx, &key_name, now_ms, outcome.charged, &request.policy);
    }
    Ok(outcome.decision)
}

/// A limiter as a command found it at a key.
enum Slot {
    /// The key was empty: a fresh limiter, stored only if the command changes it.
    New(Limiter),
    Existing(Stored),
}

impl Slot {
    fn limiter(&mut self) -> &mut Limiter {
        match self {
            Slot::New(limiter) => limiter,
            Slot::Existing(stored) => &mut stored.limiter,
        }
    }
}

/// Reads the limiter at a key, or makes a fresh one for an empty key. A key of another type
/// or another algorithm is an error.
fn open_slot(key: &Key, command: &str, key_name: &Arg, policy: &Policy) -> Result<Slot, ArgError> {
    match key.value(module_type()) {
        KeyValue::Empty => Ok(Slot::New(policy.fresh())),
        KeyValue::Other => Err(ArgError(WRONGTYPE.to_string())),
        KeyValue::Limiter(value) => {
            // The key contains this value and stays open until the command ends.
            let stored = unsafe { datatype::read(value) };
            let found = stored.limiter.algorithm();
            if found != policy.algorithm() {
                return Err(wrong_algorithm(
                    command,
                    key_name,
                    found,
                    policy.algorithm(),
                ));
            }
            Ok(Slot::Existing(stored))
        }
    }
}

/// Stores a changed limiter with its key expiring when the limiter is fresh again, or deletes
/// the key if it is fresh already. Returns whether a new key was created.
fn save(ctx: &Ctx, key: &Key, key_name: &Arg, mut slot: Slot, now_ms: u64) -> bool {
    let limiter = slot.limiter();
    let algorithm = limiter.algorithm();
    let reset_after_ms = limiter.reset_after_ms(now_ms);
    let mut created = false;

    match slot {
        Slot::New(_) if reset_after_ms == 0 => return false,
        Slot::New(limiter) => {
            // The key is empty and the new value is owned by nothing else.
            unsafe { key.set_value(module_type(), datatype::into_value(limiter)) };
            created = true;
        }
        Slot::Existing(_) if reset_after_ms == 0 => key.delete(),
        // The key contains the value `stored` was read from.
        Slot::Existing(stored) => unsafe { datatype::write_back(key, stored) },
    }
    if reset_after_ms > 0 {
        key.expire_at(expire_at_ms(now_ms, reset_after_ms));
    }
    ctx.signal_modified(key_name);
    ctx.notify(event(algorithm), key_name);
    created
}

/// Computes the key expiry for a limiter that resets `reset_after_ms` after `now_ms`,
/// saturated to what the server stores.
fn expire_at_ms(now_ms: u64, reset_after_ms: u64) -> i64 {
    let at_ms = u128::from(now_ms) + u128::from(reset_after_ms);
    i64::try_from(at_ms).unwrap_or(i64::MAX)
}

/// Propagates a change as `RL.APPLY`, so that replicas and AOF replay repeat it at this
/// server's time instead of reading their own clock.
fn propagate(ctx: &Ctx, key_name: &Arg, now_ms: u64, charged: u64, policy: &Policy) {
    let (numbers, len) = policy.numbers();
    let numbers = numbers.map(|number| number as i64);
    ctx.replicate_apply(
        key_name,
        now_ms as i64,
        charged as i64,
        policy.algorithm().c_name(),
        &numbers[..len],
    );
}

/// Runs `RL.APPLY key at_ms charged ALGORITHM numbers...`: applies a charge that a primary
/// allowed at `at_ms`, as replicas and AOF replay receive it.
pub fn apply_command(ctx: Ctx, args: &Args) {
    match run_apply(ctx, args) {
        Ok(()) => ctx.reply_ok(),
        Err(error) => ctx.reply_error(error.message()),
    }
}

fn run_apply(ctx: Ctx, args: &Args) -> Result<(), ArgError> {
    let command = args::APPLY_COMMAND;
    if args.len() < 2 {
        return Err(wrong_arity(command));
    }
    let key_name = args.arg(1);
    let apply = parse_apply(&Tail {
        list: args,
        start: 2,
    })?;

    let key = ctx.open_key(&key_name, true);
    let mut slot = open_slot(&key, command, &key_name, &apply.policy)?;
    replay(slot.limiter(), &apply.policy, apply.at_ms, apply.charged)
        .map_err(|reason| ArgError(format!("ERR {command} {reason}")))?;
    save(&ctx, &key, &key_name, slot, apply.at_ms);
    ctx.replicate_verbatim();
    Ok(())
}

/// Runs `RL.LOAD key state`: sets a key to a limiter encoded as the AOF rewrite writes it.
pub fn load_command(ctx: Ctx, args: &Args) {
    match run_load(ctx, args) {
        Ok(()) => ctx.reply_ok(),
        Err(error) => ctx.reply_error(error.message()),
    }
}

fn run_load(ctx: Ctx, args: &Args) -> Result<(), ArgError> {
    if args.len() != 3 {
        return Err(wrong_arity("RL.LOAD"));
    }
    let key_name = args.arg(1);
    let limiter = encoding::decode(args.arg(2).bytes())
        .map_err(|error| ArgError(format!("ERR RL.LOAD state is not a valid limiter: {error}")))?;

    let key = ctx.open_key(&key_name, true);
    if let KeyValue::Other = key.value(module_type()) {
        return Err(ArgError(WRONGTYPE.to_string()));
    }
    let algorithm = limiter.algorithm();
    // The key is empty or contains a value of this type, which the server frees.
    unsafe { key.set_value(module_type(), datatype::into_value(limiter)) };
    ctx.signal_modified(&key_name);
    ctx.notify(event(algorithm), &key_name);
    ctx.replicate_verbatim();
    Ok(())
}

/// Runs `RL.INFO key`: the limiter's algorithm, parameters and state, or null.
pub fn info_command(ctx: Ctx, args: &Args) {
    if args.len() != 2 {
        ctx.reply_error(wrong_arity("RL.INFO").message());
        return;
    }
    let key = ctx.open_key(&args.arg(1), false);
    match key.value(module_type()) {
        KeyValue::Empty => ctx.reply_null(),
        KeyValue::Other => ctx.reply_error(WRONGTYPE),
        KeyValue::Limiter(value) => {
            // The key contains this value and stays open while the reply is built.
            let stored = unsafe { datatype::read(value) };
            reply::info(&ctx, &stored.limiter, ffi::now_ms());
        }
    }
}
