//! The command flow: parse every argument, open the key, decide, store and propagate what
//! changed, reply. A command that fails before the decision changes nothing.

use std::ffi::CStr;

use crate::all::{self, apply_all, parse_all, AllOutcome, AllRequest};
use crate::args::{self, parse_apply, parse_request, policy_arity, ArgError, Request, Tail};
use crate::cell::{self, parse_cell};
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
    decide_key(ctx, command, key_name, &request, ffi::now_ms())
}

/// Decides one request against the limiter at a key at `now_ms`, then stores and propagates
/// what changed.
pub fn decide_key(
    ctx: Ctx,
    command: &str,
    key_name: Arg,
    request: &Request,
    now_ms: u64,
) -> Result<Decision, ArgError> {
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
        commit(
            &ctx,
            &key,
            &key_name,
            slot,
            now_ms,
            outcome.charged,
            &request.policy,
        );
    }
    Ok(outcome.decision)
}

/// Stores a changed limiter and propagates the change.
fn commit(
    ctx: &Ctx,
    key: &Key,
    key_name: &Arg,
    slot: Slot,
    now_ms: u64,
    charged: u64,
    policy: &Policy,
) {
    if save(ctx, key, key_name, slot, now_ms) {
        stats::KEYS_CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    propagate(ctx, key_name, now_ms, charged, policy);
}

/// Runs `CL.THROTTLE key max_burst count_per_period period [quantity]`.
pub fn cell_command(ctx: Ctx, args: &Args) {
    let result = if args.len() < 2 {
        Err(wrong_arity(cell::COMMAND))
    } else {
        parse_cell(&Tail {
            list: args,
            start: 2,
        })
        .and_then(|request| decide_key(ctx, cell::COMMAND, args.arg(1), &request, ffi::now_ms()))
    };
    match result {
        Ok(decision) => {
            cell::reply(&ctx, &decision);
            stats::CELL.count_decision(decision.allowed);
        }
        Err(error) => {
            ctx.reply_error(error.message());
            stats::CELL.count_error();
        }
    }
}

/// Runs `RL.ALL numkeys key [key ...] policy [policy ...] [COST n] [PEEK]`.
pub fn all_command(ctx: Ctx, args: &Args) {
    if ctx.is_keys_position_request() {
        let numkeys = all::key_count(&Tail {
            list: args,
            start: 1,
        });
        for index in 2..2 + numkeys.unwrap_or(0) {
            ctx.key_at(index);
        }
        return;
    }
    let tail = Tail {
        list: args,
        start: 1,
    };
    let result =
        parse_all(all::COMMAND, &tail, 1, config::sliding_max_entries()).and_then(|request| {
            let names: Vec<Arg> = request
                .key_indices
                .iter()
                .map(|&index| args.arg(index))
                .collect();
            decide_all(ctx, all::COMMAND, &names, &request, ffi::now_ms())
        });
    match result {
        Ok(outcome) => {
            reply::all(&ctx, &outcome);
            stats::ALL.count_decision(outcome.combined.allowed);
        }
        Err(error) => {
            ctx.reply_error(error.message());
            stats::ALL.count_error();
        }
    }
}

/// Decides one request against the limiters at several keys as one, then stores and
/// propagates what changed. Every key is checked before any is changed.
pub fn decide_all(
    ctx: Ctx,
    command: &str,
    names: &[Arg],
    request: &AllRequest,
    now_ms: u64,
) -> Result<AllOutcome, ArgError> {
    let keys: Vec<Key> = names
        .iter()
        .map(|name| ctx.open_key(name, !request.peek))
        .collect();
    let mut slots = Vec::with_capacity(keys.len());
    for ((key, name), policy) in keys.iter().zip(names).zip(&request.policies) {
        slots.push(open_slot(key, command, name, policy)?);
    }

    let mut limiters: Vec<&mut Limiter> = slots.iter_mut().map(Slot::limiter).collect();
    let outcome = apply_all(
        &mut limiters,
        &request.policies,
        now_ms,
        request.cost,
        request.peek,
    );
    let changed = keys
        .iter()
        .zip(names)
        .zip(slots)
        .zip(&request.policies)
        .zip(&outcome.changed);
    for ((((key, name), slot), policy), changed) in changed {
        if *changed {
            commit(&ctx, key, name, slot, now_ms, outcome.charged, policy);
        }
    }
    Ok(outcome)
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
