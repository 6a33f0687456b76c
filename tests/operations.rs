//! The operator's surface: ACL categories, COMMAND DOCS and INFO, `INFO ratelimit`, and the
//! notice the module logs at load.

mod common;

use std::collections::HashMap;

use common::{call, decide, error_of, info_field, Server};

/// Every command a client may call, named as COMMAND reports it.
const PUBLIC_COMMANDS: [&str; 10] = [
    "RL.FIXED",
    "RL.SLIDING",
    "RL.TOKENBUCKET",
    "RL.GCRA",
    "RL.THROTTLE",
    "RL.DEBOUNCE",
    "RL.ALL",
    "RL.WAIT",
    "RL.INFO",
    "CL.THROTTLE",
];

/// The commands replication and AOF use.
const INTERNAL_COMMANDS: [&str; 2] = ["RL.APPLY", "RL.LOAD"];

fn strings(value: &redis::Value) -> Vec<String> {
    match value {
        redis::Value::Array(items) | redis::Value::Set(items) => items
            .iter()
            .filter_map(|item| redis::from_redis_value::<String>(item.clone()).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Converts a flat name-value array into a map.
fn pairs(value: &redis::Value) -> HashMap<String, redis::Value> {
    let redis::Value::Array(items) = value else {
        panic!("{value:?} is not an array");
    };
    items
        .chunks(2)
        .map(|pair| {
            (
                redis::from_redis_value(pair[0].clone()).unwrap(),
                pair[1].clone(),
            )
        })
        .collect()
}

#[test]
fn acl_category_covers_public_commands() {
    let server = Server::start();
    let mut con = server.connect();
    let mut listed: Vec<String> = call(&mut con, &["ACL", "CAT", "ratelimit"]);
    listed.sort();
    let mut expected: Vec<String> = PUBLIC_COMMANDS
        .iter()
        .map(|name| name.to_string())
        .collect();
    expected.sort();
    assert_eq!(listed, expected);

    let fast: Vec<String> = call(&mut con, &["ACL", "CAT", "fast"]);
    for name in ["RL.FIXED", "RL.SLIDING", "RL.INFO", "CL.THROTTLE"] {
        assert!(fast.contains(&name.to_string()), "{name} is not in @fast");
    }
    let categories = [
        ("write", "RL.FIXED"),
        ("write", "RL.ALL"),
        ("read", "RL.INFO"),
        ("blocking", "RL.WAIT"),
    ];
    for (category, name) in categories {
        let listed: Vec<String> = call(&mut con, &["ACL", "CAT", category]);
        assert!(
            listed.contains(&name.to_string()),
            "{name} is not in @{category}"
        );
    }
    let dangerous: Vec<String> = call(&mut con, &["ACL", "CAT", "dangerous"]);
    for name in INTERNAL_COMMANDS {
        assert!(
            dangerous.contains(&name.to_string()),
            "{name} is not in @dangerous"
        );
    }
}

#[test]
fn acl_user_limited_to_ratelimit_and_rate_keys() {
    let server = Server::start();
    let mut admin = server.connect();
    let _: () = call(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "limiter",
            "on",
            ">secret",
            "+@ratelimit",
            "~rate:*",
        ],
    );
    let mut con = server.connect();
    let _: () = call(&mut con, &["AUTH", "limiter", "secret"]);

    assert_eq!(decide(&mut con, &["RL.FIXED", "rate:1", "5", "1m"])[0], 1);
    // The first field of a CL.THROTTLE reply is `limited`, so 0 means allowed.
    assert_eq!(
        decide(&mut con, &["CL.THROTTLE", "rate:2", "5", "10", "60"])[0],
        0
    );
    let all: Vec<Vec<i64>> = call(
        &mut con,
        &[
            "RL.ALL", "2", "rate:a", "rate:b", "FIXED", "1", "1m", "SLIDING", "1", "1m",
        ],
    );
    assert_eq!(all[0][0], 1);
    let fields: Vec<redis::Value> = call(&mut con, &["RL.INFO", "rate:1"]);
    assert!(!fields.is_empty());

    let denied: [&[&str]; 6] = [
        &["RL.FIXED", "other", "5", "1m"],
        &[
            "RL.ALL", "2", "rate:a", "other", "FIXED", "1", "1m", "FIXED", "1", "1m",
        ],
        &["RL.WAIT", "1s", "FIXED", "other", "1", "1m"],
        &["GET", "rate:1"],
        &[
            "RL.APPLY",
            "rate:1",
            "1796000000000",
            "1",
            "FIXED",
            "5",
            "60000",
        ],
        &["RL.LOAD", "rate:3", "x"],
    ];
    for words in denied {
        let error = error_of(&mut con, words);
        assert!(error.starts_with("NOPERM"), "{words:?}: {error}");
    }
}

#[test]
fn command_docs_describe_every_command() {
    let server = Server::start();
    let mut con = server.connect();
    for name in PUBLIC_COMMANDS.iter().chain(&INTERNAL_COMMANDS) {
        let docs: redis::Value = call(&mut con, &["COMMAND", "DOCS", name]);
        let docs = pairs(&docs);
        let fields = pairs(
            docs.get(*name)
                .unwrap_or_else(|| panic!("no docs for {name}")),
        );
        let summary: String = redis::from_redis_value(fields["summary"].clone()).unwrap();
        assert!(summary.len() > 20, "{name}: {summary}");
        let since: String = redis::from_redis_value(fields["since"].clone()).unwrap();
        assert_eq!(since, "0.1.0", "{name}");
        let redis::Value::Array(arguments) = &fields["arguments"] else {
            panic!("{name} documents no arguments");
        };
        assert!(!arguments.is_empty(), "{name}");
    }
}

#[test]
fn command_info_has_flags_and_key_specs() {
    let server = Server::start();
    let mut con = server.connect();
    let info: Vec<redis::Value> = call(
        &mut con,
        &["COMMAND", "INFO", "RL.SLIDING", "RL.INFO", "RL.ALL"],
    );
    let flags = |index: usize| -> Vec<String> {
        let redis::Value::Array(fields) = &info[index] else {
            panic!()
        };
        strings(&fields[2])
    };
    assert_eq!(flags(0), ["write", "denyoom", "module", "fast"]);
    assert_eq!(flags(1), ["readonly", "module", "fast"]);

    let redis::Value::Array(all) = &info[2] else {
        panic!()
    };
    let arity: i64 = redis::from_redis_value(all[1].clone()).unwrap();
    assert_eq!(arity, -5);
    let key_specs = format!("{:?}", all[8]);
    assert!(key_specs.contains("keynum"), "{key_specs}");
}

#[test]
fn info_section_counts_every_command() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.GCRA", "g", "1", "1", "1h"]);
    decide(&mut con, &["RL.GCRA", "g", "1", "1", "1h"]);
    let _: Vec<i64> = call(&mut con, &["CL.THROTTLE", "c", "0", "1", "60"]);
    let _: Vec<Vec<i64>> = call(&mut con, &["RL.ALL", "1", "a", "FIXED", "1", "1h"]);
    let _ = error_of(&mut con, &["RL.ALL", "1", "a", "FIXED", "0", "1h"]);

    let field = |con: &mut redis::Connection, name: &str| -> u64 {
        info_field(con, "ratelimit", name)
            .unwrap_or_else(|| panic!("INFO ratelimit has no {name}"))
            .parse()
            .unwrap()
    };
    assert_eq!(field(&mut con, "ratelimit_rl_gcra_calls"), 2);
    assert_eq!(field(&mut con, "ratelimit_rl_gcra_allowed"), 1);
    assert_eq!(field(&mut con, "ratelimit_rl_gcra_denied"), 1);
    assert_eq!(field(&mut con, "ratelimit_cl_throttle_allowed"), 1);
    assert_eq!(field(&mut con, "ratelimit_rl_all_calls"), 2);
    assert_eq!(field(&mut con, "ratelimit_rl_all_errors"), 1);
    assert_eq!(field(&mut con, "ratelimit_keys_created"), 3);
    assert_eq!(field(&mut con, "ratelimit_blocked_waiters"), 0);
    for command in [
        "rl_fixed",
        "rl_sliding",
        "rl_tokenbucket",
        "rl_throttle",
        "rl_debounce",
        "rl_wait",
    ] {
        for counter in ["calls", "allowed", "denied", "errors"] {
            assert_eq!(
                field(&mut con, &format!("ratelimit_{command}_{counter}")),
                0
            );
        }
    }

    let everything: String = call(&mut con, &["INFO", "everything"]);
    assert!(everything.contains("# ratelimit"));
}

#[test]
fn load_notice_names_version_and_config() {
    let server = Server::start_with(&["--loglevel", "notice"]);
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("valkey-ratelimit"))
        .unwrap_or_else(|| panic!("no load notice in:\n{log}"));
    assert!(line.contains(env!("CARGO_PKG_VERSION")), "{line}");
    assert!(
        line.contains("ratelimit.sliding-max-entries 65536"),
        "{line}"
    );
}
