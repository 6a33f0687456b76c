//! `RL.WAIT`: blocking acquire.
//!
//! ```text
//! RL.WAIT timeout FIXED|SLIDING|TOKENBUCKET|GCRA|THROTTLE key params... [COST n]
//! RL.WAIT timeout ALL numkeys key [key ...] policy [policy ...] [COST n]
//! ```
//! The client blocks inside the server until the wrapped request is allowed (and charged), or
//! until `timeout` passes (0 waits forever), then gets the wrapped command's reply. Waiters on
//! one key are served first come, first served: only the first waiter of every key it names is
//! checked, and a new waiter queues behind the ones already there. A waiter is checked when its
//! last `retry_after_ms` has passed, by one module timer for the earliest check, so waiting
//! costs no CPU. Inside MULTI/EXEC or a script the command does not block; it replies at once.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use valkey_module::raw;

use crate::all::{parse_all, AllOutcome, AllRequest};
use crate::args::{
    is_zero_duration, parse_duration, parse_request, policy_arity, ArgError, ArgList, Request,
    Tail, DURATION_RULE,
};
use crate::commands::{decide_all, decide_key};
use crate::config;
use crate::decision::{Decision, NEVER};
use crate::ffi::{self, api, Arg, Args, Ctx, OwnedString};
use crate::limiter::Algorithm;
use crate::reply;
use crate::stats;

pub const COMMAND: &str = "RL.WAIT";

/// Clients blocked in `RL.WAIT` now, for `INFO ratelimit`.
pub static WAITERS: AtomicU64 = AtomicU64::new(0);

/// The request a waiter wraps.
#[derive(Clone)]
enum Wrapped {
    Single(Request),
    All(AllRequest),
}

/// The reply a waiter gets when it is released.
enum Released {
    Single(Decision),
    All(AllOutcome),
}

impl Released {
    fn allowed(&self) -> bool {
        match self {
            Released::Single(decision) => decision.allowed,
            Released::All(outcome) => outcome.combined.allowed,
        }
    }

    fn retry_after_ms(&self) -> i64 {
        match self {
            Released::Single(decision) => decision.retry_after_ms,
            Released::All(outcome) => outcome.combined.retry_after_ms,
        }
    }
}

/// A parsed `RL.WAIT`: the wait and the wrapped request with its keys.
struct WaitRequest {
    timeout_ms: u64,
    wrapped: Wrapped,
    /// Argument indices of the keys.
    key_indices: Vec<usize>,
}

/// A blocked client.
struct Waiter {
    client: *mut raw::RedisModuleBlockedClient,
    db: c_int,
    keys: Vec<Vec<u8>>,
    wrapped: Wrapped,
    /// When the wait ends without a grant; `None` waits forever.
    deadline_ms: Option<u64>,
}

// The blocked-client handle is only used on the main thread, where every callback runs.
unsafe impl Send for Waiter {}

/// Every waiter, the queue of each key, and the times at which waiters are checked.
#[derive(Default)]
struct Waiting {
    next_id: u64,
    waiters: HashMap<u64, Waiter>,
    queues: HashMap<(c_int, Vec<u8>), VecDeque<u64>>,
    /// Pending checks, earliest first: (due time, waiter id).
    checks: BTreeSet<(u64, u64)>,
    check_of: HashMap<u64, u64>,
    /// The armed module timer and the time it fires.
    timer: Option<(raw::RedisModuleTimerID, u64)>,
}

static WAITING: Mutex<Option<Waiting>> = Mutex::new(None);

/// Runs `f` on the waiting state. No server call made with the lock held calls back into this
/// module, so the lock is never taken twice.
fn with_waiting<R>(f: impl FnOnce(&mut Waiting) -> R) -> R {
    let mut guard = WAITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(Waiting::default))
}

impl Waiting {
    fn is_first(&self, id: u64) -> bool {
        let Some(waiter) = self.waiters.get(&id) else {
            return false;
        };
        waiter.keys.iter().all(|key| {
            let queue = self.queues.get(&(waiter.db, key.clone()));
            queue.and_then(VecDeque::front) == Some(&id)
        })
    }

    fn has_waiters(&self, db: c_int, keys: &[Vec<u8>]) -> bool {
        keys.iter().any(|key| {
            self.queues
                .get(&(db, key.clone()))
                .is_some_and(|queue| !queue.is_empty())
        })
    }

    fn schedule(&mut self, id: u64, due_ms: u64) {
        if let Some(previous) = self.check_of.insert(id, due_ms) {
            self.checks.remove(&(previous, id));
        }
        self.checks.insert((due_ms, id));
    }

    /// Removes a waiter and schedules, at `now_ms`, the waiters that become first in line.
    fn remove(&mut self, id: u64, now_ms: u64) -> Option<Waiter> {
        let waiter = self.waiters.remove(&id)?;
        if let Some(due_ms) = self.check_of.remove(&id) {
            self.checks.remove(&(due_ms, id));
        }
        let mut next = Vec::new();
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(queue) = self.queues.get_mut(&slot) {
                queue.retain(|queued| *queued != id);
                if let Some(&first) = queue.front() {
                    next.push(first);
                }
                if queue.is_empty() {
                    self.queues.remove(&slot);
                }
            }
        }
        for first in next {
            if self.is_first(first) {
                self.schedule(first, now_ms);
            }
        }
        WAITERS.store(self.waiters.len() as u64, Ordering::Relaxed);
        Some(waiter)
    }

    /// Removes the waiter of a blocked client, as [`Waiting::remove`] does.
    fn remove_client(
        &mut self,
        client: *mut raw::RedisModuleBlockedClient,
        now_ms: u64,
    ) -> Option<Waiter> {
        let id = self
            .waiters
            .iter()
            .find(|(_, waiter)| waiter.client == client)
            .map(|(id, _)| *id)?;
        self.remove(id, now_ms)
    }
}

/// Reports the key positions for `COMMAND GETKEYS` and cluster routing.
fn report_keys(ctx: Ctx, args: &Args) {
    for index in key_positions(args) {
        ctx.key_at(index);
    }
}

/// Returns the argument indices of the keys: `RL.WAIT timeout ALGORITHM key ...` has its key at 3,
/// `RL.WAIT timeout ALL numkeys key ...` has numkeys keys from 4.
fn key_positions(args: &Args) -> Vec<usize> {
    if args.len() < 4 {
        return Vec::new();
    }
    if !args.get(2).eq_ignore_ascii_case(b"ALL") {
        return vec![3];
    }
    let numkeys = crate::all::key_count(&Tail {
        list: args,
        start: 3,
    });
    (4..4 + numkeys.unwrap_or(0)).collect()
}

fn parse_wait(args: &Args) -> Result<WaitRequest, ArgError> {
    if args.len() < 4 {
        return Err(ArgError(format!(
            "ERR wrong number of arguments for '{COMMAND}' command"
        )));
    }
    let timeout_ms = parse_timeout(args.get(1))?;

    let word = args.get(2);
    let wrapped = if word.eq_ignore_ascii_case(b"ALL") {
        let tail = Tail {
            list: args,
            start: 3,
        };
        let request = parse_all(COMMAND, &tail, 3, config::sliding_max_entries())?;
        Wrapped::All(request)
    } else {
        let algorithm = Algorithm::from_name(word)
            .filter(|algorithm| *algorithm != Algorithm::Debounce)
            .ok_or_else(|| {
                let rule = "FIXED, SLIDING, TOKENBUCKET, GCRA, THROTTLE or ALL; a debounce \
                            cannot be waited on, since each request restarts its quiet period";
                ArgError::rule(COMMAND, "algorithm", rule, word)
            })?;
        if args.len() < 4 + policy_arity(algorithm) {
            return Err(ArgError(format!(
                "ERR wrong number of arguments for '{COMMAND}' command"
            )));
        }
        let tail = Tail {
            list: args,
            start: 4,
        };
        let request = parse_request(COMMAND, algorithm, &tail, config::sliding_max_entries())?;
        Wrapped::Single(request)
    };

    let peek = match &wrapped {
        Wrapped::Single(request) => request.peek,
        Wrapped::All(request) => request.peek,
    };
    if peek {
        return Err(ArgError(format!(
            "ERR {COMMAND} cannot wait on a PEEK; call the command itself with PEEK"
        )));
    }
    Ok(WaitRequest {
        timeout_ms,
        wrapped,
        key_indices: key_positions(args),
    })
}

/// Parses the timeout: a duration, or zero in any unit (`0`, `0s`, `0.0ms`) to wait forever.
fn parse_timeout(value: &[u8]) -> Result<u64, ArgError> {
    if is_zero_duration(value) {
        return Ok(0);
    }
    // A timeout that is no duration at all gets a rule that names 0; one under 1 ms or over
    // 100 years keeps the rule it broke.
    parse_duration(COMMAND, "timeout", value).map_err(|error| {
        if error.message().contains(DURATION_RULE) {
            let rule = "0 (wait forever) or a positive duration such as 60, 500ms or 1.5m";
            ArgError::rule(COMMAND, "timeout", rule, value)
        } else {
            error
        }
    })
}

/// Decides the wrapped request at `now_ms`, charging it if allowed.
fn decide(ctx: Ctx, names: &[Arg], wrapped: &Wrapped, now_ms: u64) -> Result<Released, ArgError> {
    match wrapped {
        Wrapped::Single(request) => {
            decide_key(ctx, COMMAND, names[0], request, now_ms).map(Released::Single)
        }
        Wrapped::All(request) => {
            decide_all(ctx, COMMAND, names, request, now_ms).map(Released::All)
        }
    }
}

/// Decides a waiter's request at `now_ms` in the database the waiter blocked in.
fn decide_waiter(
    ctx: Ctx,
    db: c_int,
    keys: &[Vec<u8>],
    wrapped: &Wrapped,
    now_ms: u64,
) -> Result<Released, ArgError> {
    ctx.select_db(db);
    let strings: Vec<OwnedString> = keys.iter().map(|key| OwnedString::new(ctx, key)).collect();
    let names: Vec<Arg> = strings.iter().map(OwnedString::arg).collect();
    decide(ctx, &names, wrapped, now_ms)
}

fn reply_released(ctx: &Ctx, released: &Released) {
    match released {
        Released::Single(decision) => reply::decision(ctx, decision),
        Released::All(outcome) => reply::all(ctx, outcome),
    }
}

/// Runs `RL.WAIT`.
pub fn wait_command(ctx: Ctx, args: &Args) {
    if ctx.is_keys_position_request() {
        report_keys(ctx, args);
        return;
    }
    stats::WAIT.count_call();
    if let Err(error) = run_wait(ctx, args) {
        ctx.reply_error(error.message());
        stats::WAIT.count_reply(None);
    }
}

fn run_wait(ctx: Ctx, args: &Args) -> Result<(), ArgError> {
    let request = parse_wait(args)?;
    let names: Vec<Arg> = request
        .key_indices
        .iter()
        .map(|&index| args.arg(index))
        .collect();
    let keys: Vec<Vec<u8>> = names.iter().map(|name| name.bytes().to_vec()).collect();
    let db = ctx.selected_db();
    let now_ms = ffi::now_ms();

    // A new waiter queues behind the waiters already there, so it tries at once only if
    // none is.
    let queued_behind = with_waiting(|waiting| waiting.has_waiters(db, &keys));
    let cannot_block =
        ctx.flags() & (ffi::FLAG_MULTI | ffi::FLAG_LUA | ffi::FLAG_DENY_BLOCKING) != 0;
    let mut retry_after_ms = 0;
    if !queued_behind || cannot_block {
        let released = decide(ctx, &names, &request.wrapped, now_ms)?;
        if released.allowed() || released.retry_after_ms() == NEVER || cannot_block {
            reply_released(&ctx, &released);
            stats::WAIT.count_reply(Some(released.allowed()));
            return Ok(());
        }
        retry_after_ms = released.retry_after_ms() as u64;
    }

    let client = ctx.block_client(Some(reply_callback), Some(unblocked), Some(free_released));
    unsafe { api!(RedisModule_SetDisconnectCallback)(client, Some(disconnected)) };
    let deadline_ms = (request.timeout_ms > 0).then(|| now_ms.saturating_add(request.timeout_ms));
    let waiter = Waiter {
        client,
        db,
        keys,
        wrapped: request.wrapped,
        deadline_ms,
    };
    with_waiting(|waiting| {
        let id = waiting.next_id;
        waiting.next_id += 1;
        for key in &waiter.keys {
            waiting
                .queues
                .entry((db, key.clone()))
                .or_default()
                .push_back(id);
        }
        let first_check = now_ms.saturating_add(retry_after_ms);
        let due_ms = match deadline_ms {
            Some(deadline_ms) => deadline_ms.min(first_check),
            None => first_check,
        };
        waiting.waiters.insert(id, waiter);
        WAITERS.store(waiting.waiters.len() as u64, Ordering::Relaxed);
        if waiting.is_first(id) {
            waiting.schedule(id, due_ms);
        } else if let Some(deadline_ms) = deadline_ms {
            waiting.schedule(id, deadline_ms);
        }
    });
    arm_timer(ctx, 0);
    Ok(())
}

/// The longest a timer is armed for. The server converts the delay to microseconds, which
/// overflows for delays near 2^64 ms; a far waiter's timer fires after this and is armed again.
const MAX_TIMER_DELAY_MS: u64 = 24 * 3600 * 1000;

/// Arms the module timer for the earliest pending check, but not before `not_before_ms`, if
/// it is not armed for that time already.
fn arm_timer(ctx: Ctx, not_before_ms: u64) {
    let now_ms = live_now_ms();
    let stale = with_waiting(|waiting| {
        let earliest = waiting
            .checks
            .first()
            .map(|(due_ms, _)| (*due_ms).max(not_before_ms));
        match (earliest, waiting.timer) {
            (None, timer) => {
                waiting.timer = None;
                timer.map(|(id, _)| id)
            }
            (Some(due_ms), Some((_, armed_ms))) if armed_ms <= due_ms => None,
            (Some(due_ms), timer) => {
                let delay_ms = due_ms.saturating_sub(now_ms).min(MAX_TIMER_DELAY_MS);
                let id = unsafe {
                    api!(RedisModule_CreateTimer)(
                        ctx.raw(),
                        delay_ms as raw::mstime_t,
                        Some(timer_fired),
                        std::ptr::null_mut(),
                    )
                };
                waiting.timer = Some((id, now_ms + delay_ms));
                timer.map(|(id, _)| id)
            }
        }
    });
    if let Some(id) = stale {
        unsafe { api!(RedisModule_StopTimer)(ctx.raw(), id, std::ptr::null_mut()) };
    }
}

/// The clock in a timer callback, where no command time is cached: the later of the cached
/// time and the live clock, so that time never goes back.
fn live_now_ms() -> u64 {
    let live = unsafe { api!(RedisModule_Milliseconds)() };
    ffi::now_ms().max(u64::try_from(live).unwrap_or(0))
}

/// Checks every waiter that is due, granting or timing out each, then arms the timer again.
///
/// # Safety
/// The server calls this on the main thread with a timer context.
unsafe extern "C" fn timer_fired(ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    let ctx = Ctx::new(ctx);
    with_waiting(|waiting| waiting.timer = None);
    let now_ms = live_now_ms();

    // A grant writes the key and propagates the write. While writes are held, neither may
    // happen: the server aborts on a propagation during CLIENT PAUSE WRITE, and keys do not
    // expire then, so a write could land on a key that is about to go. The checks wait.
    if let Some(held_ms) = writes_held_ms(ctx) {
        arm_timer(ctx, now_ms.saturating_add(held_ms));
        return;
    }

    // Each pass takes one due waiter; releasing one can make the next one due at once.
    while let Some(id) = with_waiting(|waiting| {
        let &(due_ms, id) = waiting.checks.first()?;
        (due_ms <= now_ms).then(|| {
            waiting.checks.remove(&(due_ms, id));
            waiting.check_of.remove(&id);
            id
        })
    }) {
        check_waiter(ctx, id, now_ms);
    }
    arm_timer(ctx, 0);
}

/// Returns how long to hold grants. While a CLIENT PAUSE or a failover pauses writes, that is
/// until it ends. While the server is over maxmemory, where a command would fail with OOM, it
/// is a short while, after which the check runs again.
fn writes_held_ms(ctx: Ctx) -> Option<u64> {
    const RECHECK_MS: u64 = 10;
    if ctx.flags() & ffi::FLAG_OOM != 0 {
        return Some(RECHECK_MS);
    }
    ffi::writes_paused_for_ms().map(|paused_ms| paused_ms.max(RECHECK_MS))
}

/// Decides a due waiter: grants it if it is first in line and allowed, ends it at its
/// deadline, or schedules its next check.
fn check_waiter(ctx: Ctx, id: u64, now_ms: u64) {
    let Some((db, keys, wrapped, deadline_ms, first)) = with_waiting(|waiting| {
        let first = waiting.is_first(id);
        waiting.waiters.get(&id).map(|waiter| {
            (
                waiter.db,
                waiter.keys.clone(),
                waiter.wrapped.clone(),
                waiter.deadline_ms,
                first,
            )
        })
    }) else {
        return;
    };
    let timed_out = deadline_ms.is_some_and(|deadline_ms| now_ms >= deadline_ms);
    if !first && !timed_out {
        if let Some(deadline_ms) = deadline_ms {
            with_waiting(|waiting| waiting.schedule(id, deadline_ms));
        }
        return;
    }

    // Only the first waiter may take units; one that is not first gets the reply of a PEEK.
    let result = if first {
        decide_waiter(ctx, db, &keys, &wrapped, now_ms)
    } else {
        decide_waiter(ctx, db, &keys, &peeked(&wrapped), now_ms).map(deny)
    };

    let released = match result {
        Ok(released) if released.allowed() || released.retry_after_ms() == NEVER || timed_out => {
            released
        }
        Ok(released) => {
            let retry_ms = now_ms.saturating_add(released.retry_after_ms() as u64);
            let due_ms = deadline_ms.map_or(retry_ms, |deadline_ms| deadline_ms.min(retry_ms));
            with_waiting(|waiting| waiting.schedule(id, due_ms));
            return;
        }
        Err(error) => {
            // The key changed type or algorithm while the client waited.
            release(id, now_ms, Err(error));
            return;
        }
    };
    release(id, now_ms, Ok(released));
}

/// Returns the wrapped request as a PEEK.
fn peeked(wrapped: &Wrapped) -> Wrapped {
    match wrapped {
        Wrapped::Single(request) => Wrapped::Single(Request {
            peek: true,
            ..*request
        }),
        Wrapped::All(request) => Wrapped::All(AllRequest {
            peek: true,
            ..request.clone()
        }),
    }
}

/// Turns a PEEK that a waiter gets at its deadline into the denied reply it gets.
fn deny(released: Released) -> Released {
    let deny_one = |decision: Decision| {
        if decision.allowed {
            Decision::deny(
                decision.limit,
                decision.remaining,
                Some(1),
                decision.reset_after_ms,
            )
        } else {
            decision
        }
    };
    match released {
        Released::Single(decision) => Released::Single(deny_one(decision)),
        Released::All(mut outcome) => {
            outcome.combined = deny_one(outcome.combined);
            Released::All(outcome)
        }
    }
}

/// Ends a wait: removes the waiter and unblocks its client with the reply.
fn release(id: u64, now_ms: u64, result: Result<Released, ArgError>) {
    let Some(waiter) = with_waiting(|waiting| waiting.remove(id, now_ms)) else {
        return;
    };
    match &result {
        Ok(released) => stats::WAIT.count_reply(Some(released.allowed())),
        Err(_) => stats::WAIT.count_reply(None),
    }
    let reply = Box::into_raw(Box::new(result));
    unsafe { api!(RedisModule_UnblockClient)(waiter.client, reply.cast()) };
}

/// Writes the reply of a released waiter.
///
/// # Safety
/// The server calls this on the main thread for a client this module unblocked with a reply.
unsafe extern "C" fn reply_callback(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let ctx = Ctx::new(ctx);
    let reply = api!(RedisModule_GetBlockedClientPrivateData)(ctx.raw());
    if let Some(result) = reply.cast::<Result<Released, ArgError>>().as_ref() {
        match result {
            Ok(released) => reply_released(&ctx, released),
            Err(error) => ctx.reply_error(error.message()),
        }
    }
    raw::REDISMODULE_OK as c_int
}

/// Frees the reply of a released waiter, after it was written or its client went away.
///
/// # Safety
/// `reply` is null or came from `Box::into_raw` in [`release`].
unsafe extern "C" fn free_released(_ctx: *mut raw::RedisModuleCtx, reply: *mut c_void) {
    if !reply.is_null() {
        drop(Box::from_raw(reply.cast::<Result<Released, ArgError>>()));
    }
}

/// Drops the waiter of a client that disconnected while it waited; it was charged nothing.
///
/// # Safety
/// The server calls this on the main thread for a client this module blocked.
unsafe extern "C" fn disconnected(
    ctx: *mut raw::RedisModuleCtx,
    client: *mut raw::RedisModuleBlockedClient,
) {
    let ctx = Ctx::new(ctx);
    let now_ms = live_now_ms();
    let removed = with_waiting(|waiting| waiting.remove_client(client, now_ms));
    if removed.is_some() {
        api!(RedisModule_UnblockClient)(client, std::ptr::null_mut());
    }
    arm_timer(ctx, 0);
}

/// Ends a wait that `CLIENT UNBLOCK <id>` interrupts, with the reply a wait that timed out
/// gets: the wrapped request's decision, denied, charging nothing. No timeout of the server
/// calls this: waiters are blocked without one, and the module keeps their deadlines.
///
/// # Safety
/// The server calls this on the main thread for a client this module blocked.
unsafe extern "C" fn unblocked(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let ctx = Ctx::new(ctx);
    let client = api!(RedisModule_GetBlockedClientHandle)(ctx.raw());
    let now_ms = live_now_ms();
    let removed = with_waiting(|waiting| waiting.remove_client(client, now_ms));
    if let Some(waiter) = removed {
        let peek = peeked(&waiter.wrapped);
        match decide_waiter(ctx, waiter.db, &waiter.keys, &peek, now_ms).map(deny) {
            Ok(released) => {
                reply_released(&ctx, &released);
                stats::WAIT.count_reply(Some(false));
            }
            Err(error) => {
                ctx.reply_error(error.message());
                stats::WAIT.count_reply(None);
            }
        }
    }
    arm_timer(ctx, 0);
    raw::REDISMODULE_OK as c_int
}
