//! The documentation `COMMAND DOCS` and `COMMAND INFO` show for each command: summary,
//! complexity, the version that added it, arity, key specs and arguments.

use crate::ffi::{ArgDoc, ArgType, CommandDocs, KeySpecDoc};
use valkey_module::raw;

/// The module version that added the first commands.
const SINCE: &std::ffi::CStr = c"0.1.0";

/// The key of a limiting command: read, then updated.
const LIMITED_KEY: &[KeySpecDoc] = &[KeySpecDoc::Single {
    index: 1,
    flags: raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE,
}];

/// The key of `RL.LOAD`, overwritten.
const OVERWRITTEN_KEY: &[KeySpecDoc] = &[KeySpecDoc::Single {
    index: 1,
    flags: raw::REDISMODULE_CMD_KEY_OW | raw::REDISMODULE_CMD_KEY_UPDATE,
}];

/// The key of `RL.INFO`, only read.
const READ_KEY: &[KeySpecDoc] = &[KeySpecDoc::Single {
    index: 1,
    flags: raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
}];

const KEY: ArgDoc = ArgDoc::new(c"key", ArgType::Key);

const COST: ArgDoc = ArgDoc {
    token: Some(c"COST"),
    optional: true,
    summary: Some(c"units the request takes; 1 if not given"),
    ..ArgDoc::new(c"cost", ArgType::Integer)
};

const PEEK: ArgDoc = ArgDoc {
    token: Some(c"PEEK"),
    optional: true,
    summary: Some(c"reply as the request would, but consume and write nothing"),
    ..ArgDoc::new(c"peek", ArgType::Token)
};

const PRECISION: ArgDoc = ArgDoc {
    token: Some(c"PRECISION"),
    optional: true,
    summary: Some(c"bucket width, such as 100ms: the log keeps one entry per bucket"),
    ..ArgDoc::new(c"precision", ArgType::Text)
};

const fn duration(name: &'static std::ffi::CStr, summary: &'static std::ffi::CStr) -> ArgDoc {
    ArgDoc {
        summary: Some(summary),
        ..ArgDoc::new(name, ArgType::Text)
    }
}

const fn count(name: &'static std::ffi::CStr, summary: &'static std::ffi::CStr) -> ArgDoc {
    ArgDoc {
        summary: Some(summary),
        ..ArgDoc::new(name, ArgType::Integer)
    }
}

/// The complexity of every single-key decision but the sliding log's.
const CONSTANT: &std::ffi::CStr = c"O(1)";

pub static FIXED: CommandDocs = CommandDocs {
    summary:
        c"Allows at most limit units per window, the window opening with the first allowed request.",
    complexity: CONSTANT,
    since: SINCE,
    arity: -4,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        count(c"limit", c"units allowed per window"),
        duration(c"window", c"window length, such as 60, 500ms or 1.5m"),
        COST,
        PEEK,
    ],
};

pub static SLIDING: CommandDocs = CommandDocs {
    summary:
        c"Allows a request if the units allowed in the last window plus its cost stay within limit.",
    complexity:
        c"O(log N) where N is the number of log entries, at most min(limit, window / precision)",
    since: SINCE,
    arity: -4,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        count(c"limit", c"units allowed in any window"),
        duration(c"window", c"window length, such as 60, 500ms or 1.5m"),
        COST,
        PEEK,
        PRECISION,
    ],
};

pub static TOKENBUCKET: CommandDocs = CommandDocs {
    summary: c"Takes units from a bucket of capacity tokens that refills continuously at tokens per period.",
    complexity: CONSTANT,
    since: SINCE,
    arity: -5,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        count(c"capacity", c"the most tokens the bucket holds; a new bucket is full"),
        count(c"tokens", c"tokens added per period"),
        duration(c"period", c"refill period, such as 1s"),
        COST,
        PEEK,
    ],
};

pub static GCRA: CommandDocs = CommandDocs {
    summary: c"Generic cell rate algorithm: a steady tokens per period with up to burst requests at once.",
    complexity: CONSTANT,
    since: SINCE,
    arity: -5,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        count(c"burst", c"requests allowed back to back on a fresh key"),
        count(c"tokens", c"requests allowed per period at the steady rate"),
        duration(c"period", c"rate period, such as 1s"),
        COST,
        PEEK,
    ],
};

pub static THROTTLE: CommandDocs = CommandDocs {
    summary: c"Allows at most one event per interval.",
    complexity: CONSTANT,
    since: SINCE,
    arity: -3,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        duration(c"interval", c"least time between allowed events"),
        PEEK,
    ],
};

pub static DEBOUNCE: CommandDocs = CommandDocs {
    summary:
        c"Allows an event only after a quiet period; every request starts the quiet period again.",
    complexity: CONSTANT,
    since: SINCE,
    arity: -3,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        duration(c"interval", c"quiet period without any request"),
        PEEK,
    ],
};

/// The keys of `RL.ALL`: a count at argument 1, then that many keys. Valkey 9.1.2 does not route
/// the command in a cluster by this spec alone, so it also reports its keys on request.
const COUNTED_KEYS: &[KeySpecDoc] = &[KeySpecDoc::Counted {
    index: 1,
    flags: raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE,
}];

pub static ALL: CommandDocs = CommandDocs {
    summary: c"Decides one request against several limiters as one: allowed and charged only if every limiter allows it.",
    complexity: c"O(N) in the number of keys, O(N log M) with sliding logs of M entries",
    since: SINCE,
    arity: -5,
    key_specs: COUNTED_KEYS,
    args: &[
        count(c"numkeys", c"number of keys, each with one policy"),
        ArgDoc {
            multiple: true,
            ..KEY
        },
        ArgDoc {
            multiple: true,
            summary: Some(c"FIXED limit window, SLIDING limit window [PRECISION d], TOKENBUCKET capacity tokens period, GCRA burst tokens period or THROTTLE interval, in key order"),
            ..ArgDoc::new(c"policy", ArgType::Text)
        },
        COST,
        PEEK,
    ],
};

pub static CELL: CommandDocs = CommandDocs {
    summary: c"Drop-in for redis-cell's CL.THROTTLE: GCRA with a burst of max_burst + 1 and a period in seconds.",
    complexity: CONSTANT,
    since: SINCE,
    arity: -5,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        count(c"max_burst", c"requests allowed at once beyond the first"),
        count(c"count_per_period", c"requests allowed per period at the steady rate"),
        count(c"period", c"rate period in whole seconds"),
        ArgDoc {
            optional: true,
            summary: Some(c"units the request takes; 0 only reads; 1 if not given"),
            ..ArgDoc::new(c"quantity", ArgType::Integer)
        },
    ],
};

/// The key of a plain `RL.WAIT`. With `ALL` the keys follow a count instead, so the spec is
/// marked incomplete and the server requests the keys from the command.
const WAITED_KEY: &[KeySpecDoc] = &[KeySpecDoc::Single {
    index: 3,
    flags: raw::REDISMODULE_CMD_KEY_RW
        | raw::REDISMODULE_CMD_KEY_ACCESS
        | raw::REDISMODULE_CMD_KEY_UPDATE
        | raw::REDISMODULE_CMD_KEY_INCOMPLETE,
}];

pub static WAIT: CommandDocs = CommandDocs {
    summary: c"Blocks until the wrapped limiter allows the request, or until timeout, then replies as the wrapped command.",
    complexity: c"As the wrapped command, each time the waiter is checked",
    since: SINCE,
    arity: -5,
    key_specs: WAITED_KEY,
    args: &[
        duration(c"timeout", c"the longest wait, such as 5s; 0 waits forever"),
        ArgDoc {
            summary: Some(c"FIXED, SLIDING, TOKENBUCKET, GCRA, THROTTLE or ALL"),
            ..ArgDoc::new(c"algorithm", ArgType::Text)
        },
        KEY,
        ArgDoc {
            multiple: true,
            summary: Some(c"the wrapped command's arguments after its key, or ALL's after numkeys"),
            ..ArgDoc::new(c"argument", ArgType::Text)
        },
    ],
};

pub static INFO: CommandDocs = CommandDocs {
    summary: c"Returns a limiter's algorithm, parameters and state, or null for a missing key.",
    complexity: CONSTANT,
    since: SINCE,
    arity: 2,
    key_specs: READ_KEY,
    args: &[KEY],
};

pub static APPLY: CommandDocs = CommandDocs {
    summary: c"Applies a charge that a primary allowed at a given time; the module propagates limiter changes to replicas and the AOF in this form.",
    complexity: c"O(log N) for a sliding log, else O(1)",
    since: SINCE,
    arity: -6,
    key_specs: LIMITED_KEY,
    args: &[
        KEY,
        ArgDoc {
            summary: Some(c"the primary's command time in milliseconds since the epoch"),
            ..ArgDoc::new(c"at_ms", ArgType::UnixTime)
        },
        count(c"charged", c"units charged; 0 applies only the parameters"),
        ArgDoc {
            summary: Some(c"FIXED, SLIDING, TOKENBUCKET, GCRA, THROTTLE or DEBOUNCE"),
            ..ArgDoc::new(c"algorithm", ArgType::Text)
        },
        ArgDoc {
            multiple: true,
            summary: Some(c"the policy parameters, durations in milliseconds"),
            ..ArgDoc::new(c"parameter", ArgType::Integer)
        },
    ],
};

pub static LOAD: CommandDocs = CommandDocs {
    summary: c"Sets a key to a limiter state in the module's byte form; AOF rewrites write limiters in this form.",
    complexity: c"O(N) in the size of the state",
    since: SINCE,
    arity: 3,
    key_specs: OVERWRITTEN_KEY,
    args: &[KEY, ArgDoc::new(c"state", ArgType::Text)],
};
