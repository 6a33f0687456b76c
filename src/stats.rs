//! Counters for `INFO ratelimit`, kept since the module loaded.

use std::sync::atomic::{AtomicU64, Ordering};

use valkey_module::InfoContext;

use crate::ffi::api;

/// Counters of one command.
pub struct CommandStats {
    /// The field prefix in `INFO ratelimit`, the command name in snake case.
    pub name: &'static str,
    calls: AtomicU64,
    allowed: AtomicU64,
    denied: AtomicU64,
    errors: AtomicU64,
}

impl CommandStats {
    const fn new(name: &'static str) -> CommandStats {
        CommandStats {
            name,
            calls: AtomicU64::new(0),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Counts one call that ended in a decision.
    pub fn count_decision(&self, allowed: bool) {
        self.count_call();
        self.count_reply(Some(allowed));
    }

    /// Counts one call that ended in an error reply.
    pub fn count_error(&self) {
        self.count_call();
        self.count_reply(None);
    }

    /// Counts one call whose reply may come later, or never: a blocking call. Its outcome is
    /// counted with [`CommandStats::count_reply`] when it replies.
    pub fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the reply of a call counted with [`CommandStats::count_call`]: `Some(allowed)`
    /// for a decision, `None` for an error.
    pub fn count_reply(&self, allowed: Option<bool>) {
        let outcome = match allowed {
            Some(true) => &self.allowed,
            Some(false) => &self.denied,
            None => &self.errors,
        };
        outcome.fetch_add(1, Ordering::Relaxed);
    }
}

pub static FIXED: CommandStats = CommandStats::new("rl_fixed");
pub static SLIDING: CommandStats = CommandStats::new("rl_sliding");
pub static TOKENBUCKET: CommandStats = CommandStats::new("rl_tokenbucket");
pub static GCRA: CommandStats = CommandStats::new("rl_gcra");
pub static THROTTLE: CommandStats = CommandStats::new("rl_throttle");
pub static DEBOUNCE: CommandStats = CommandStats::new("rl_debounce");
pub static ALL: CommandStats = CommandStats::new("rl_all");
pub static CELL: CommandStats = CommandStats::new("cl_throttle");
pub static WAIT: CommandStats = CommandStats::new("rl_wait");

/// Every command with counters, in the order `INFO ratelimit` lists them.
pub static COMMANDS: [&CommandStats; 9] = [
    &FIXED,
    &SLIDING,
    &TOKENBUCKET,
    &GCRA,
    &THROTTLE,
    &DEBOUNCE,
    &ALL,
    &WAIT,
    &CELL,
];

/// Limiter keys this server created since it started: created by a command, not loaded,
/// replicated or copied.
pub static KEYS_CREATED: AtomicU64 = AtomicU64::new(0);

/// Adds the `ratelimit` section to INFO: for each command `<command>_calls`, `_allowed`,
/// `_denied` and `_errors`, then `keys_created` and `blocked_waiters`, the clients in
/// `RL.WAIT` now. The server puts `ratelimit_` before each name. For `RL.WAIT`, `calls`
/// also counts waits that are still blocked or ended without a reply (a disconnect, or
/// `CLIENT UNBLOCK ... ERROR`).
pub fn add_info(ctx: &InfoContext, _for_crash_report: bool) {
    let add = |name: &str, value: u64| {
        let name = std::ffi::CString::new(name).unwrap_or_default();
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        unsafe { api!(RedisModule_InfoAddFieldLongLong)(ctx.ctx, name.as_ptr(), value) };
    };
    unsafe { api!(RedisModule_InfoAddSection)(ctx.ctx, std::ptr::null()) };
    for stats in COMMANDS {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        add(&format!("{}_calls", stats.name), load(&stats.calls));
        add(&format!("{}_allowed", stats.name), load(&stats.allowed));
        add(&format!("{}_denied", stats.name), load(&stats.denied));
        add(&format!("{}_errors", stats.name), load(&stats.errors));
    }
    add("keys_created", KEYS_CREATED.load(Ordering::Relaxed));
    add(
        "blocked_waiters",
        crate::wait::WAITERS.load(Ordering::Relaxed),
    );
}
