//! State across SAVE and restart, and loading the module at run time.

mod common;

use common::{call, decide, error_of, module_path, snapshot, Server};

/// One limiter of each algorithm, with some state.
const LIMITERS: [&[&str]; 6] = [
    &["RL.FIXED", "fixed", "10", "1h", "COST", "3"],
    &["RL.SLIDING", "sliding", "10", "1h", "COST", "3"],
    &["RL.TOKENBUCKET", "bucket", "10", "1", "1h", "COST", "3"],
    &["RL.GCRA", "gcra", "10", "1", "1h", "COST", "3"],
    &["RL.THROTTLE", "throttle", "1h"],
    &["RL.DEBOUNCE", "debounce", "1h"],
];

#[test]
fn save_and_restart_keep_state() {
    let mut server = Server::start();
    let mut con = server.connect();
    for words in LIMITERS {
        decide(&mut con, words);
    }
    decide(
        &mut con,
        &["RL.SLIDING", "sliding", "10", "1h", "COST", "2"],
    );
    let before: Vec<_> = LIMITERS
        .iter()
        .map(|words| snapshot(&mut con, words[1]))
        .collect();
    let _: () = call(&mut con, &["SAVE"]);

    server.restart();
    let mut con = server.connect();
    let after: Vec<_> = LIMITERS
        .iter()
        .map(|words| snapshot(&mut con, words[1]))
        .collect();
    assert_eq!(after, before);
    let denied = decide(&mut con, &["RL.FIXED", "fixed", "10", "1h", "COST", "8"]);
    assert_eq!(denied[0], 0);
    assert_eq!(denied[2], 7);
}

#[test]
fn module_loads_at_run_time() {
    let server = Server::start_without_module(&["--enable-module-command", "yes"]);
    let mut con = server.connect();
    let path = module_path().display().to_string();
    let _: () = call(&mut con, &["MODULE", "LOAD", &path]);
    assert_eq!(
        decide(&mut con, &["RL.FIXED", "k", "2", "1m"]),
        [1, 2, 1, 0, 60_000]
    );

    let modules: Vec<Vec<redis::Value>> = call(&mut con, &["MODULE", "LIST"]);
    let ratelimit = modules
        .iter()
        .find(|fields| fields.get(1) == Some(&redis::Value::BulkString(b"ratelimit".to_vec())))
        .expect("MODULE LIST shows ratelimit");
    assert_eq!(ratelimit[3], redis::Value::Int(100));
}

#[test]
fn module_unload_is_refused() {
    let server = Server::start_with(&["--enable-module-command", "yes"]);
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "k", "2", "1m"]);
    let error = error_of(&mut con, &["MODULE", "UNLOAD", "ratelimit"]);
    assert!(error.contains("data types"), "{error}");
    assert_eq!(decide(&mut con, &["RL.FIXED", "k", "2", "1m"])[0], 1);
}

#[test]
fn module_arguments_set_configs() {
    let path = module_path().display().to_string();
    let server =
        Server::start_without_module(&["--loadmodule", &path, "sliding-max-entries", "10"]);
    let mut con = server.connect();
    let config: Vec<String> = call(
        &mut con,
        &["CONFIG", "GET", "ratelimit.sliding-max-entries"],
    );
    assert_eq!(config, ["ratelimit.sliding-max-entries", "10"]);
    let error = error_of(&mut con, &["RL.SLIDING", "k", "11", "1s"]);
    assert!(error.contains("use PRECISION 100ms or coarser"), "{error}");
}

#[test]
fn config_set_is_validated() {
    let server = Server::start();
    let mut con = server.connect();
    let _: () = call(
        &mut con,
        &["CONFIG", "SET", "ratelimit.sliding-max-entries", "100"],
    );
    assert!(error_of(&mut con, &["RL.SLIDING", "k", "101", "1s"]).contains("(100)"));
    for bad in ["0", "16777217", "-1", "many"] {
        let error = error_of(
            &mut con,
            &["CONFIG", "SET", "ratelimit.sliding-max-entries", bad],
        );
        assert!(error.starts_with("ERR CONFIG SET failed"), "{bad}: {error}");
    }
    let config: Vec<String> = call(
        &mut con,
        &["CONFIG", "GET", "ratelimit.sliding-max-entries"],
    );
    assert_eq!(config[1], "100");
}

#[test]
fn dump_restores_into_a_fresh_server() {
    let source = Server::start();
    let target = Server::start();
    let mut from = source.connect();
    let mut to = target.connect();
    for words in LIMITERS {
        decide(&mut from, words);
        let dump: Vec<u8> = call(&mut from, &["DUMP", words[1]]);
        let ttl: i64 = call(&mut from, &["PTTL", words[1]]);
        let _: () = redis::cmd("RESTORE")
            .arg(words[1])
            .arg(ttl)
            .arg(dump.clone())
            .query(&mut to)
            .expect("RESTORE accepts the dump");
        let restored: Vec<u8> = call(&mut to, &["DUMP", words[1]]);
        assert_eq!(restored, dump, "{}", words[0]);
    }
    assert_eq!(decide(&mut to, &["RL.FIXED", "fixed", "10", "1h"])[2], 6);
}
