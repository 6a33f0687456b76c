//! Bad input against a real server: every error names the command, the argument and the rule,
//! and no failed command changes the key it names.

mod common;

use common::{call, decide, error_of, snapshot, Server};

const COUNT: &str = "must be an integer from 1 to 9223372036854775807";
const DURATION: &str = "must be a positive duration such as 60, 500ms or 1.5m";

/// Bad commands with the error each must get. Every one names key `k`.
fn bad_commands() -> Vec<(Vec<&'static str>, String)> {
    let mut cases: Vec<(Vec<&str>, String)> = Vec::new();
    let mut add = |words: &[&'static str], expected: String| cases.push((words.to_vec(), expected));

    for value in [
        "0",
        "-1",
        "+1",
        "1.5",
        "1e3",
        "0x10",
        "1_000",
        " 1",
        "1 ",
        "",
        "9223372036854775808",
        "abc",
    ] {
        add(
            &["RL.FIXED", "k", value, "1m"],
            format!("ERR RL.FIXED limit {COUNT}; got '{value}'"),
        );
    }
    for value in [
        "0", "-1s", ".5", "5.", "1.2.3", "1e3s", "0x10", "1_000ms", " 1s", "1 s", "", "1us", "ms",
    ] {
        add(
            &["RL.SLIDING", "k", "5", value],
            format!("ERR RL.SLIDING window {DURATION}; got '{value}'"),
        );
    }
    add(
        &["RL.SLIDING", "k", "5", "0.5ms"],
        "ERR RL.SLIDING window must be at least 1ms; got '0.5ms'".to_string(),
    );
    add(
        &["RL.SLIDING", "k", "5", "36501d"],
        "ERR RL.SLIDING window must be at most 100 years (3153600000000ms); got '36501d'"
            .to_string(),
    );
    add(
        &["RL.TOKENBUCKET", "k", "0", "1", "1s"],
        format!("ERR RL.TOKENBUCKET capacity {COUNT}; got '0'"),
    );
    add(
        &["RL.TOKENBUCKET", "k", "5", "0", "1s"],
        format!("ERR RL.TOKENBUCKET tokens {COUNT}; got '0'"),
    );
    add(
        &["RL.TOKENBUCKET", "k", "5", "1", "0"],
        format!("ERR RL.TOKENBUCKET period {DURATION}; got '0'"),
    );
    add(
        &["RL.GCRA", "k", "0", "1", "1s"],
        format!("ERR RL.GCRA burst {COUNT}; got '0'"),
    );
    add(
        &["RL.GCRA", "k", "5", "1", "1y"],
        format!("ERR RL.GCRA period {DURATION}; got '1y'"),
    );
    add(
        &["RL.THROTTLE", "k", "-5"],
        format!("ERR RL.THROTTLE interval {DURATION}; got '-5'"),
    );
    add(
        &["RL.DEBOUNCE", "k", "5x"],
        format!("ERR RL.DEBOUNCE interval {DURATION}; got '5x'"),
    );

    add(
        &["RL.FIXED", "k", "5", "1m", "COST"],
        "ERR RL.FIXED COST must be followed by an integer from 1 to 9223372036854775807"
            .to_string(),
    );
    add(
        &["RL.FIXED", "k", "5", "1m", "COST", "0"],
        format!("ERR RL.FIXED COST {COUNT}; got '0'"),
    );
    add(
        &["RL.FIXED", "k", "5", "1m", "COST", "-2"],
        format!("ERR RL.FIXED COST {COUNT}; got '-2'"),
    );
    add(
        &["RL.FIXED", "k", "5", "1m", "COST", "1", "COST", "2"],
        "ERR RL.FIXED option COST is given twice".to_string(),
    );
    add(
        &["RL.FIXED", "k", "5", "1m", "PEEK", "PEEK"],
        "ERR RL.FIXED option PEEK is given twice".to_string(),
    );
    add(
        &["RL.FIXED", "k", "5", "1m", "NOW"],
        "ERR RL.FIXED unknown option 'NOW'; expected COST n or PEEK".to_string(),
    );
    add(
        &["RL.FIXED", "k", "5", "1m", "PRECISION", "1s"],
        "ERR RL.FIXED unknown option 'PRECISION'; expected COST n or PEEK".to_string(),
    );
    add(
        &["RL.THROTTLE", "k", "1s", "COST", "2"],
        "ERR RL.THROTTLE unknown option 'COST'; expected PEEK".to_string(),
    );
    add(
        &["RL.SLIDING", "k", "5", "1s", "PRECISION", "2s"],
        "ERR RL.SLIDING PRECISION must not exceed the window (1000ms); got 2000ms".to_string(),
    );
    add(
        &["RL.SLIDING", "k", "5", "1s", "PRECISION", "0"],
        format!("ERR RL.SLIDING PRECISION {DURATION}; got '0'"),
    );
    add(
        &["RL.SLIDING", "k", "100000", "1h"],
        "ERR RL.SLIDING limit 100000 over a window of 3600000ms needs up to 100000 log entries, \
         above ratelimit.sliding-max-entries (65536); use PRECISION 55ms or coarser, or raise \
         the config"
            .to_string(),
    );
    add(
        &["RL.FIXED", "k", "\u{0}\r\n'", "1m"],
        format!("ERR RL.FIXED limit {COUNT}; got '\\x00\\x0d\\x0a\\x27'"),
    );
    add(
        &["RL.FIXED", "k", "5"],
        "ERR wrong number of arguments for 'RL.FIXED' command".to_string(),
    );
    add(
        &["RL.TOKENBUCKET", "k", "5", "1"],
        "ERR wrong number of arguments for 'RL.TOKENBUCKET' command".to_string(),
    );
    add(
        &["RL.INFO"],
        "ERR wrong number of arguments for 'RL.INFO' command".to_string(),
    );
    add(
        &["RL.INFO", "k", "extra"],
        "ERR wrong number of arguments for 'RL.INFO' command".to_string(),
    );
    cases
}

#[test]
fn bad_arguments_get_precise_errors() {
    let server = Server::start();
    let mut con = server.connect();
    for (words, expected) in bad_commands() {
        assert_eq!(error_of(&mut con, &words), expected, "{words:?}");
    }
}

#[test]
fn bad_arguments_change_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let setups: [&[&str]; 6] = [
        &["RL.FIXED", "k", "5", "1m", "COST", "2"],
        &["RL.SLIDING", "k", "5", "1m", "COST", "2"],
        &["RL.TOKENBUCKET", "k", "5", "1", "1s", "COST", "2"],
        &["RL.GCRA", "k", "5", "1", "1s", "COST", "2"],
        &["RL.THROTTLE", "k", "1m"],
        &["RL.DEBOUNCE", "k", "1m"],
    ];
    for setup in setups {
        let _: () = call(&mut con, &["DEL", "k"]);
        decide(&mut con, setup);
        let before = snapshot(&mut con, "k");
        for (words, _) in bad_commands() {
            let _ = error_of(&mut con, &words);
            assert_eq!(
                snapshot(&mut con, "k"),
                before,
                "{words:?} changed the {} key",
                setup[0]
            );
        }
    }
}

#[test]
fn bad_arguments_create_no_key() {
    let server = Server::start();
    let mut con = server.connect();
    for (words, _) in bad_commands() {
        let _ = error_of(&mut con, &words);
        let exists: i64 = call(&mut con, &["EXISTS", "k"]);
        assert_eq!(exists, 0, "{words:?}");
    }
}

#[test]
fn other_type_gets_wrongtype() {
    let server = Server::start();
    let mut con = server.connect();
    let _: () = call(&mut con, &["SET", "k", "text"]);
    let commands: [&[&str]; 8] = [
        &["RL.FIXED", "k", "5", "1m"],
        &["RL.SLIDING", "k", "5", "1m"],
        &["RL.TOKENBUCKET", "k", "5", "1", "1s"],
        &["RL.GCRA", "k", "5", "1", "1s"],
        &["RL.THROTTLE", "k", "1s"],
        &["RL.DEBOUNCE", "k", "1s"],
        &["RL.SLIDING", "k", "5", "1m", "PEEK"],
        &["RL.INFO", "k"],
    ];
    for words in commands {
        assert_eq!(
            error_of(&mut con, words),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "{words:?}"
        );
    }
    let value: String = call(&mut con, &["GET", "k"]);
    assert_eq!(value, "text");
}

#[test]
fn other_algorithm_is_named_in_the_error() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.SLIDING", "k", "5", "1m"]);
    let before = snapshot(&mut con, "k");
    assert_eq!(
        error_of(&mut con, &["RL.FIXED", "k", "5", "1m"]),
        "ERR RL.FIXED cannot use key 'k': it holds a SLIDING limiter, not a FIXED one; call \
         RL.SLIDING on it or delete the key"
    );
    assert_eq!(
        error_of(&mut con, &["RL.TOKENBUCKET", "k", "5", "1", "1s", "PEEK"]),
        "ERR RL.TOKENBUCKET cannot use key 'k': it holds a SLIDING limiter, not a TOKENBUCKET \
         one; call RL.SLIDING on it or delete the key"
    );
    assert_eq!(snapshot(&mut con, "k"), before);
}

#[test]
fn errors_are_counted_in_info() {
    let server = Server::start();
    let mut con = server.connect();
    let _ = error_of(&mut con, &["RL.FIXED", "k", "0", "1m"]);
    decide(&mut con, &["RL.FIXED", "k", "1", "1m"]);
    decide(&mut con, &["RL.FIXED", "k", "1", "1m"]);
    let section: String = call(&mut con, &["INFO", "ratelimit"]);
    for line in [
        "ratelimit_rl_fixed_calls:3",
        "ratelimit_rl_fixed_allowed:1",
        "ratelimit_rl_fixed_denied:1",
        "ratelimit_rl_fixed_errors:1",
        "ratelimit_keys_created:1",
    ] {
        assert!(
            section.contains(line),
            "INFO ratelimit lacks {line}:\n{section}"
        );
    }
}
