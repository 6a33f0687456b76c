//! `RL.ALL`: several limiters decided as one, charged all or none.

mod common;

use common::{call, decide, error_of, info_number, snapshot, Server};

/// Runs `RL.ALL` and returns the combined decision followed by each limiter's.
fn all(con: &mut redis::Connection, words: &[&str]) -> Vec<[i64; 5]> {
    let mut command = vec!["RL.ALL"];
    command.extend_from_slice(words);
    let replies: Vec<Vec<i64>> = call(con, &command);
    replies
        .into_iter()
        .map(|reply| reply.try_into().unwrap())
        .collect()
}

const USER_AND_SERVICE: [&str; 9] = [
    "2",
    "rate:user:{42}",
    "rate:service:{42}",
    "FIXED",
    "2",
    "1h",
    "SLIDING",
    "5",
    "1h",
];

#[test]
fn allowed_request_charges_every_limiter() {
    let server = Server::start();
    let mut con = server.connect();
    let replies = all(&mut con, &USER_AND_SERVICE);
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0], [1, 2, 1, 0, 3_600_000]);
    assert_eq!(replies[1], [1, 2, 1, 0, 3_600_000]);
    assert_eq!(replies[2], [1, 5, 4, 0, 3_600_000]);
    assert_eq!(info_number(&mut con, "rate:user:{42}", "used"), 1);
    assert_eq!(info_number(&mut con, "rate:service:{42}", "used"), 1);
}

#[test]
fn denied_request_charges_no_limiter() {
    let server = Server::start();
    let mut con = server.connect();
    all(&mut con, &USER_AND_SERVICE);
    all(&mut con, &USER_AND_SERVICE);
    let service_before = snapshot(&mut con, "rate:service:{42}");

    let replies = all(&mut con, &USER_AND_SERVICE);
    assert_eq!(replies[0][0], 0);
    assert_eq!(replies[0][1], 2);
    assert_eq!(replies[0][2], 0);
    assert!(replies[0][3] > 3_590_000, "{:?}", replies[0]);
    assert_eq!(replies[1][0], 0);
    // The service limiter would allow the request alone, but is not charged: it reports the
    // three units it still has.
    assert_eq!(replies[2][0], 1);
    assert_eq!(replies[2][2], 3);
    assert_eq!(snapshot(&mut con, "rate:service:{42}"), service_before);
    assert_eq!(info_number(&mut con, "rate:service:{42}", "used"), 2);
}

#[test]
fn mixed_algorithms_and_cost() {
    let server = Server::start();
    let mut con = server.connect();
    let words = [
        "3",
        "a",
        "b",
        "c",
        "TOKENBUCKET",
        "10",
        "1",
        "1h",
        "GCRA",
        "4",
        "1",
        "1h",
        "THROTTLE",
        "1h",
        "COST",
        "1",
    ];
    let replies = all(&mut con, &words);
    assert_eq!(replies[0], [1, 1, 0, 0, 3_600_000]);
    // The throttle allows one event per hour, so the next request is denied by it alone.
    let replies = all(&mut con, &words);
    assert_eq!(replies[0][0], 0);
    assert_eq!(replies[1][0], 1);
    assert_eq!(replies[2][0], 1);
    assert_eq!(replies[3][0], 0);
    assert_eq!(info_number(&mut con, "a", "remaining"), 9);

    let never = all(
        &mut con,
        &["1", "a", "TOKENBUCKET", "10", "1", "1h", "COST", "11"],
    );
    assert_eq!(never[0][3], -1);
}

#[test]
fn peek_charges_nothing_and_creates_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let mut words = USER_AND_SERVICE.to_vec();
    words.push("PEEK");
    let replies = all(&mut con, &words);
    assert_eq!(replies[0], [1, 2, 1, 0, 3_600_000]);
    let exists: i64 = call(&mut con, &["EXISTS", "rate:user:{42}", "rate:service:{42}"]);
    assert_eq!(exists, 0);
}

#[test]
fn new_parameters_are_stored_when_denied() {
    let server = Server::start();
    let mut con = server.connect();
    all(
        &mut con,
        &["2", "u", "s", "FIXED", "1", "1h", "FIXED", "5", "1h"],
    );
    let replies = all(
        &mut con,
        &["2", "u", "s", "FIXED", "1", "1h", "FIXED", "7", "1h"],
    );
    assert_eq!(replies[0][0], 0);
    assert_eq!(info_number(&mut con, "s", "limit"), 7);
    assert_eq!(info_number(&mut con, "s", "used"), 1);
}

#[test]
fn bad_key_changes_no_key() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "u", "5", "1h"]);
    let _: () = call(&mut con, &["SET", "text", "value"]);
    let before = snapshot(&mut con, "u");
    assert_eq!(
        error_of(
            &mut con,
            &["RL.ALL", "2", "u", "text", "FIXED", "5", "1h", "FIXED", "5", "1h"]
        ),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(
        error_of(
            &mut con,
            &["RL.ALL", "2", "new", "u", "FIXED", "5", "1h", "SLIDING", "5", "1h"]
        ),
        "ERR RL.ALL cannot use key 'u': it holds a FIXED limiter, not a SLIDING one; call \
         RL.FIXED on it or delete the key"
    );
    assert_eq!(snapshot(&mut con, "u"), before);
    let exists: i64 = call(&mut con, &["EXISTS", "new"]);
    assert_eq!(exists, 0);
}

#[test]
fn getkeys_lists_exactly_the_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let mut command = vec!["COMMAND", "GETKEYS", "RL.ALL"];
    command.extend_from_slice(&USER_AND_SERVICE);
    let keys: Vec<String> = call(&mut con, &command);
    assert_eq!(keys, ["rate:user:{42}", "rate:service:{42}"]);
}

#[test]
fn getkeys_rejects_a_numkeys_the_arguments_cannot_have() {
    let server = Server::start();
    let mut con = server.connect();
    let words = [
        "COMMAND", "GETKEYS", "RL.ALL", "99", "a", "b", "THROTTLE", "1s", "THROTTLE", "1s",
    ];
    let error = error_of(&mut con, &words);
    assert!(error.starts_with("ERR"), "{error}");
}

#[test]
fn repeated_key_among_many_is_found() {
    let server = Server::start();
    let mut con = server.connect();
    let keys: Vec<String> = (0..20_000).map(|index| format!("{{t}}:{index}")).collect();
    let mut command = redis::cmd("RL.ALL");
    command.arg(keys.len() + 1).arg(&keys).arg(&keys[0]);
    for _ in 0..=keys.len() {
        command.arg("THROTTLE").arg("1h");
    }
    let started = std::time::Instant::now();
    let error = command.query::<redis::Value>(&mut con).unwrap_err();
    assert!(
        common::error_text(&error).contains("is given twice"),
        "{error}"
    );
    // A pairwise check took over a second for this many keys.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_arguments_get_precise_errors() {
    let server = Server::start();
    let mut con = server.connect();
    let cases: [(&[&str], &str); 4] = [
        (
            &["RL.ALL", "1", "k", "DEBOUNCE", "1s"],
            "ERR RL.ALL policy 1 algorithm must be FIXED, SLIDING, TOKENBUCKET, GCRA or THROTTLE; \
             got 'DEBOUNCE'",
        ),
        (
            &[
                "RL.ALL", "2", "k", "k", "FIXED", "1", "1s", "FIXED", "1", "1s",
            ],
            "ERR RL.ALL key 'k' is given twice; each key may have one policy",
        ),
        (
            &["RL.ALL", "1", "k", "SLIDING", "5", "1s", "PRECISION"],
            "ERR RL.ALL policy 1 PRECISION must be followed by a positive duration such as 60, \
             500ms or 1.5m",
        ),
        (
            &["RL.ALL", "1", "k", "FIXED", "5", "1s", "COST", "0"],
            "ERR RL.ALL COST must be an integer from 1 to 9223372036854775807; got '0'",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(error_of(&mut con, words), expected);
    }
}
