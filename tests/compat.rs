//! `CL.THROTTLE` against replies recorded from redis-cell 0.5.0 loaded in Valkey 9.1.2.
//!
//! tests/fixtures/cl_throttle_redis_cell.tsv lists sequences of calls on a fresh key, each
//! with redis-cell's reply. Every sequence here runs back to back, as it was recorded.

mod common;

use common::{call, error_of, info_number, Server};

const RECORDED: &str = include_str!("fixtures/cl_throttle_redis_cell.tsv");

struct Call {
    sequence: u32,
    words: Vec<String>,
    reply: Vec<i64>,
}

fn recorded_calls() -> Vec<Call> {
    RECORDED
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                columns.len(),
                3,
                "a recorded line has three columns: {line}"
            );
            Call {
                sequence: columns[0].parse().expect("the sequence is a number"),
                words: columns[1].split(' ').map(str::to_string).collect(),
                reply: columns[2]
                    .split(' ')
                    .map(|n| n.parse().expect("a number"))
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn every_recorded_reply_matches() {
    let server = Server::start();
    let mut con = server.connect();
    let calls = recorded_calls();
    assert!(calls.len() >= 50, "only {} recorded calls", calls.len());
    let mut previous_sequence = None;
    for recorded in &calls {
        if previous_sequence != Some(recorded.sequence) {
            let _: () = call(&mut con, &["DEL", "k"]);
            previous_sequence = Some(recorded.sequence);
        }
        let words: Vec<&str> = recorded.words.iter().map(String::as_str).collect();
        let reply: Vec<i64> = call(&mut con, &words);
        assert_eq!(
            reply, recorded.reply,
            "sequence {}: {words:?}",
            recorded.sequence
        );
    }
}

#[test]
fn throttled_key_is_a_gcra_limiter() {
    let server = Server::start();
    let mut con = server.connect();
    let _: Vec<i64> = call(&mut con, &["CL.THROTTLE", "k", "15", "30", "60", "3"]);
    assert_eq!(info_number(&mut con, "k", "burst"), 16);
    assert_eq!(info_number(&mut con, "k", "period_ms"), 60_000);
    let reply: Vec<i64> = call(&mut con, &["RL.GCRA", "k", "16", "30", "60s"]);
    assert_eq!(reply[2], 12);
}

#[test]
fn nonsense_that_redis_cell_accepts_is_an_error() {
    let server = Server::start();
    let mut con = server.connect();
    let cases: [(&[&str], &str); 5] = [
        (
            &["CL.THROTTLE", "k", "-1", "30", "60"],
            "ERR CL.THROTTLE max_burst must be an integer from 0 to 9223372036854775806; got '-1'",
        ),
        (
            &["CL.THROTTLE", "k", "5", "-30", "60"],
            "ERR CL.THROTTLE count_per_period must be an integer from 1 to 9223372036854775807; got '-30'",
        ),
        (
            &["CL.THROTTLE", "k", "5", "30", "0"],
            "ERR CL.THROTTLE period must be an integer from 1 to 3153600000; got '0'",
        ),
        (
            &["CL.THROTTLE", "k", "5", "30", "60", "-1"],
            "ERR CL.THROTTLE quantity must be an integer from 0 to 9223372036854775807; got '-1'",
        ),
        (
            &["CL.THROTTLE", "k", "5", "30", "60", "1", "extra"],
            "ERR wrong number of arguments for 'CL.THROTTLE' command",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(error_of(&mut con, words), expected);
    }
    let exists: i64 = call(&mut con, &["EXISTS", "k"]);
    assert_eq!(exists, 0);
}
