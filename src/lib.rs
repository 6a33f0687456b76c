//! valkey-ratelimit: a Valkey module with one native command per rate-limit algorithm.
//!
//! Layout:
//! - this file: the module definition, the command table and one wrapper per command;
//! - `commands`: the flow every command shares (parse, open the key, decide, store,
//!   propagate, reply); `args` parses arguments and `reply` writes replies;
//! - `limiter`: one type over all algorithms and the rule for what a request does. The pure
//!   algorithms, which take the time as a parameter, are `fixed`, `sliding` (with `ring`),
//!   `gcra` (token bucket and GCRA), `throttle` and `debounce`;
//! - `datatype`: the `ratelimit` data type and its persistence, with `encoding` for the byte
//!   form;
//! - `ffi`: the module API calls; `docs`, `config` and `stats` for COMMAND DOCS, configs and
//!   INFO.

pub mod all;
pub mod args;
pub mod cell;
pub mod commands;
pub mod config;
pub mod datatype;
pub mod debounce;
pub mod decision;
pub mod docs;
pub mod encoding;
pub mod ffi;
pub mod fixed;
pub mod gcra;
pub mod limiter;
pub mod reply;
pub mod ring;
pub mod sliding;
pub mod stats;
pub mod throttle;
pub mod wait;

use std::ffi::{c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use valkey_module::configuration::ConfigurationFlags;
use valkey_module::{raw, valkey_module, Context, InfoContext, Status, ValkeyResult, ValkeyString};

use crate::datatype::RATELIMIT_TYPE;
use crate::ffi::{Args, CommandSpec, Ctx};
use crate::limiter::Algorithm;

/// The module name in `MODULE LIST` and the prefix of its configs and INFO fields.
pub const MODULE_NAME: &str = "ratelimit";

/// The version `MODULE LIST` shows: major * 10000 + minor * 100 + patch.
pub const MODULE_VERSION: i32 = 100;

/// Flags of every command that decides a request.
const LIMIT_FLAGS: &CStr = c"write deny-oom fast";

/// The module's own ACL category, created at load.
const ACL_CATEGORY: &CStr = c"ratelimit";

// Setting a command's ACL categories replaces those its flags imply, so each list names them
// again: @write and @fast for `write` and `fast`, and so on.
const LIMIT_CATEGORIES: &CStr = c"ratelimit write fast";
const READ_CATEGORIES: &CStr = c"ratelimit read fast";
const WAIT_CATEGORIES: &CStr = c"ratelimit write slow blocking";
const INTERNAL_CATEGORIES: &CStr = c"dangerous write slow";

/// `RL.FIXED key limit window [COST n] [PEEK]`
extern "C" fn rl_fixed(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, |ctx, args| {
        commands::limit(ctx, args, Algorithm::Fixed)
    })
}

/// `RL.SLIDING key limit window [COST n] [PEEK] [PRECISION duration]`
extern "C" fn rl_sliding(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, |ctx, args| {
        commands::limit(ctx, args, Algorithm::Sliding)
    })
}

/// `RL.TOKENBUCKET key capacity tokens period [COST n] [PEEK]`
extern "C" fn rl_tokenbucket(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, |ctx, args| {
        commands::limit(ctx, args, Algorithm::TokenBucket)
    })
}

/// `RL.GCRA key burst tokens period [COST n] [PEEK]`
extern "C" fn rl_gcra(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, |ctx, args| {
        commands::limit(ctx, args, Algorithm::Gcra)
    })
}

/// `RL.THROTTLE key interval [PEEK]`
extern "C" fn rl_throttle(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, |ctx, args| {
        commands::limit(ctx, args, Algorithm::Throttle)
    })
}

/// `RL.DEBOUNCE key interval [PEEK]`
extern "C" fn rl_debounce(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, |ctx, args| {
        commands::limit(ctx, args, Algorithm::Debounce)
    })
}

/// `RL.ALL numkeys key [key ...] policy [policy ...] [COST n] [PEEK]`
extern "C" fn rl_all(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, commands::all_command)
}

/// `RL.WAIT timeout algorithm key args...` and `RL.WAIT timeout ALL numkeys key ... policies`
extern "C" fn rl_wait(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, wait::wait_command)
}

/// `CL.THROTTLE key max_burst count_per_period period [quantity]`
extern "C" fn cl_throttle(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, commands::cell_command)
}

/// `RL.INFO key`
extern "C" fn rl_info(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, commands::info_command)
}

/// `RL.APPLY key at_ms charged algorithm parameter [parameter ...]`
extern "C" fn rl_apply(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, commands::apply_command)
}

/// `RL.LOAD key state`
extern "C" fn rl_load(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    run(ctx, argv, argc, commands::load_command)
}

/// Runs a command body. A panic is a defect: it is caught, so that the server lives on, and
/// turned into an error reply and a warning in the server log.
fn run(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    body: impl FnOnce(Ctx, &Args),
) -> c_int {
    // The server passes a live context and argument vector to every command call.
    let (ctx, args) = unsafe { (Ctx::new(ctx), Args::new(argv, argc)) };
    if catch_unwind(AssertUnwindSafe(|| body(ctx, &args))).is_err() {
        let name = if args.is_empty() {
            String::new()
        } else {
            String::from_utf8_lossy(args.arg(0).bytes()).into_owned()
        };
        ffi::log(
            Some(ctx),
            c"warning",
            &format!("internal error in {name}; please report it"),
        );
        ctx.reply_error(&format!("ERR internal error in {name}; please report it"));
    }
    raw::REDISMODULE_OK as c_int
}

#[rustfmt::skip]
static COMMANDS: [CommandSpec; 12] = [
    CommandSpec { name: c"RL.FIXED", handler: rl_fixed, flags: LIMIT_FLAGS, acl_categories: LIMIT_CATEGORIES, docs: &docs::FIXED },
    CommandSpec { name: c"RL.SLIDING", handler: rl_sliding, flags: LIMIT_FLAGS, acl_categories: LIMIT_CATEGORIES, docs: &docs::SLIDING },
    CommandSpec { name: c"RL.TOKENBUCKET", handler: rl_tokenbucket, flags: LIMIT_FLAGS, acl_categories: LIMIT_CATEGORIES, docs: &docs::TOKENBUCKET },
    CommandSpec { name: c"RL.GCRA", handler: rl_gcra, flags: LIMIT_FLAGS, acl_categories: LIMIT_CATEGORIES, docs: &docs::GCRA },
    CommandSpec { name: c"RL.THROTTLE", handler: rl_throttle, flags: LIMIT_FLAGS, acl_categories: LIMIT_CATEGORIES, docs: &docs::THROTTLE },
    CommandSpec { name: c"RL.DEBOUNCE", handler: rl_debounce, flags: LIMIT_FLAGS, acl_categories: LIMIT_CATEGORIES, docs: &docs::DEBOUNCE },
    CommandSpec { name: c"RL.ALL", handler: rl_all, flags: c"write deny-oom fast getkeys-api", acl_categories: LIMIT_CATEGORIES, docs: &docs::ALL },
    CommandSpec { name: c"RL.WAIT", handler: rl_wait, flags: c"write deny-oom blocking getkeys-api", acl_categories: WAIT_CATEGORIES, docs: &docs::WAIT },
    CommandSpec { name: c"CL.THROTTLE", handler: cl_throttle, flags: LIMIT_FLAGS, acl_categories: LIMIT_CATEGORIES, docs: &docs::CELL },
    CommandSpec { name: c"RL.INFO", handler: rl_info, flags: c"readonly fast", acl_categories: READ_CATEGORIES, docs: &docs::INFO },
    // Replicas and AOF replay run these two; a client that may call them can set any state.
    CommandSpec { name: c"RL.APPLY", handler: rl_apply, flags: c"write deny-oom", acl_categories: INTERNAL_CATEGORIES, docs: &docs::APPLY },
    CommandSpec { name: c"RL.LOAD", handler: rl_load, flags: c"write deny-oom", acl_categories: INTERNAL_CATEGORIES, docs: &docs::LOAD },
];

/// Registers the commands once the data type and configs are in place.
fn init(ctx: &Context, _args: &[ValkeyString]) -> Status {
    // The server passes a live context to the load callback.
    let module_ctx = unsafe { Ctx::new(ctx.ctx) };
    ffi::set_module_options(module_ctx);
    let with_acl_category = ffi::add_acl_category(module_ctx, ACL_CATEGORY);
    for spec in &COMMANDS {
        if let Err(message) = ffi::register_command(module_ctx, spec, with_acl_category) {
            ctx.log_warning(&message);
            return Status::Err;
        }
    }
    ctx.log_notice(&format!(
        "valkey-ratelimit {} loaded: {}.{} {}{}",
        env!("CARGO_PKG_VERSION"),
        MODULE_NAME,
        config::SLIDING_MAX_ENTRIES_NAME,
        config::sliding_max_entries(),
        if with_acl_category {
            ", ACL category @ratelimit"
        } else {
            ", no ACL category (the server has no module ACL categories)"
        }
    ));
    Status::Ok
}

fn info(ctx: &InfoContext, for_crash_report: bool) {
    stats::add_info(ctx, for_crash_report);
}

/// The entry point Valkey looks for first. `valkey_module!` defines only `RedisModule_OnLoad`,
/// which Valkey also loads, but as a "legacy Redis module" with a notice in its log.
///
/// # Safety
/// The server calls this once, with its load context and the `loadmodule` arguments.
#[no_mangle]
pub unsafe extern "C" fn ValkeyModule_OnLoad(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    RedisModule_OnLoad(ctx, argv, argc)
}

valkey_module! {
    name: MODULE_NAME,
    version: MODULE_VERSION,
    allocator: (ffi::ModuleAllocator, ffi::ModuleAllocator),
    data_types: [RATELIMIT_TYPE],
    init: init,
    info: info,
    commands: [],
    configurations: [
        i64: [
            [
                config::SLIDING_MAX_ENTRIES_NAME,
                &config::SLIDING_MAX_ENTRIES,
                config::SLIDING_MAX_ENTRIES_DEFAULT,
                config::SLIDING_MAX_ENTRIES_MIN,
                config::SLIDING_MAX_ENTRIES_MAX,
                ConfigurationFlags::DEFAULT,
                None
            ],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
