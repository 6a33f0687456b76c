//! Each limiting command against a real server: decisions, exact times, COST, PEEK,
//! parameter changes and key expiry. Sequences that need exact times run inside MULTI/EXEC,
//! where the server's clock does not move.

mod common;

use common::{
    assert_close_below, call, decide, decide_at_once, info, info_number, sleep_ms, Server,
};

/// How late a sleeping test may wake, and how long a command may take, on a loaded machine.
const SCHEDULING_MS: i64 = 80;

#[test]
fn fixed_allows_limit_then_denies() {
    let server = Server::start();
    let mut con = server.connect();
    let fixed: &[&str] = &["RL.FIXED", "k", "2", "200ms"];
    let replies = decide_at_once(&mut con, &[fixed, fixed, fixed]);
    assert_eq!(replies[0], [1, 2, 1, 0, 200]);
    assert_eq!(replies[1], [1, 2, 0, 0, 200]);
    assert_eq!(replies[2], [0, 2, 0, 200, 200]);
}

#[test]
fn fixed_window_reopens_after_retry_after() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "k", "1", "200ms"]);
    let denied = decide(&mut con, &["RL.FIXED", "k", "1", "200ms"]);
    assert_eq!(denied[0], 0);
    assert_close_below(denied[3], 200, SCHEDULING_MS);

    sleep_ms(denied[3] as u64);
    let allowed = decide(&mut con, &["RL.FIXED", "k", "1", "200ms"]);
    assert_eq!(allowed, [1, 1, 0, 0, 200]);
}

#[test]
fn sliding_allows_limit_then_denies() {
    let server = Server::start();
    let mut con = server.connect();
    let sliding: &[&str] = &["RL.SLIDING", "k", "2", "200ms"];
    let replies = decide_at_once(&mut con, &[sliding, sliding, sliding]);
    assert_eq!(replies[0], [1, 2, 1, 0, 200]);
    assert_eq!(replies[1], [1, 2, 0, 0, 200]);
    assert_eq!(replies[2], [0, 2, 0, 200, 200]);
}

#[test]
fn sliding_frees_units_as_they_leave_the_window() {
    let server = Server::start();
    let mut con = server.connect();
    let sliding = ["RL.SLIDING", "k", "2", "300ms"];
    decide(&mut con, &sliding);
    sleep_ms(150);
    decide(&mut con, &sliding);

    // The first unit leaves 300 ms after it came, about 150 ms from now.
    let denied = decide(&mut con, &sliding);
    assert_eq!(denied[0], 0);
    assert_close_below(denied[3], 150, SCHEDULING_MS);

    sleep_ms(denied[3] as u64);
    let allowed = decide(&mut con, &sliding);
    assert_eq!(allowed[0], 1);
    assert_eq!(allowed[2], 0);
    let again = decide(&mut con, &sliding);
    assert_eq!(again[0], 0);
}

#[test]
fn sliding_precision_groups_requests() {
    let server = Server::start();
    let mut con = server.connect();
    let sliding: &[&str] = &["RL.SLIDING", "k", "100", "10s", "PRECISION", "1s"];
    decide_at_once(&mut con, &[sliding, sliding, sliding]);
    assert_eq!(info_number(&mut con, "k", "entries"), 1);
    assert_eq!(info_number(&mut con, "k", "used"), 3);
    assert_eq!(info_number(&mut con, "k", "precision_ms"), 1000);
}

#[test]
fn token_bucket_starts_full_and_refills() {
    let server = Server::start();
    let mut con = server.connect();
    let bucket: &[&str] = &["RL.TOKENBUCKET", "k", "2", "1", "200ms"];
    let replies = decide_at_once(&mut con, &[bucket, bucket, bucket]);
    assert_eq!(replies[0], [1, 2, 1, 0, 200]);
    assert_eq!(replies[1], [1, 2, 0, 0, 400]);
    assert_eq!(replies[2], [0, 2, 0, 200, 400]);

    sleep_ms(replies[2][3] as u64);
    let refilled = decide(&mut con, bucket);
    assert_eq!(refilled[0], 1);
    assert_eq!(refilled[2], 0);
}

#[test]
fn gcra_allows_burst_then_steady_rate() {
    let server = Server::start();
    let mut con = server.connect();
    let gcra: &[&str] = &["RL.GCRA", "k", "3", "10", "1s"];
    let replies = decide_at_once(&mut con, &[gcra, gcra, gcra, gcra]);
    assert_eq!(replies[0], [1, 3, 2, 0, 100]);
    assert_eq!(replies[1], [1, 3, 1, 0, 200]);
    assert_eq!(replies[2], [1, 3, 0, 0, 300]);
    assert_eq!(replies[3], [0, 3, 0, 100, 300]);
    assert!(info_number(&mut con, "k", "tat_ms") > 0);
}

#[test]
fn throttle_allows_one_event_per_interval() {
    let server = Server::start();
    let mut con = server.connect();
    let throttle: &[&str] = &["RL.THROTTLE", "k", "200ms"];
    let replies = decide_at_once(&mut con, &[throttle, throttle]);
    assert_eq!(replies[0], [1, 1, 0, 0, 200]);
    assert_eq!(replies[1], [0, 1, 0, 200, 200]);

    sleep_ms(100);
    let denied = decide(&mut con, throttle);
    assert_close_below(denied[3], 100, SCHEDULING_MS);
    sleep_ms(denied[3] as u64);
    assert_eq!(decide(&mut con, throttle), [1, 1, 0, 0, 200]);
}

#[test]
fn debounce_restarts_quiet_period_on_every_request() {
    let server = Server::start();
    let mut con = server.connect();
    let debounce: &[&str] = &["RL.DEBOUNCE", "k", "200ms"];
    assert_eq!(decide(&mut con, debounce), [1, 1, 0, 0, 200]);

    sleep_ms(120);
    // Denied, and the quiet period starts again: the whole interval is left.
    assert_eq!(decide(&mut con, debounce), [0, 1, 0, 200, 200]);
    sleep_ms(120);
    assert_eq!(decide(&mut con, debounce)[0], 0);

    let peek = decide(&mut con, &["RL.DEBOUNCE", "k", "200ms", "PEEK"]);
    assert_eq!(peek[0], 0);
    assert_close_below(peek[3], 200, SCHEDULING_MS);

    sleep_ms(210);
    assert_eq!(decide(&mut con, debounce), [1, 1, 0, 0, 200]);
}

#[test]
fn cost_charges_several_units() {
    let server = Server::start();
    let mut con = server.connect();
    let replies = decide_at_once(
        &mut con,
        &[
            &["RL.FIXED", "k", "5", "1m", "COST", "3"],
            &["RL.FIXED", "k", "5", "1m", "cost", "3"],
            &["RL.FIXED", "k", "5", "1m", "COST", "2"],
            &["RL.FIXED", "k", "5", "1m", "COST", "6"],
        ],
    );
    assert_eq!(replies[0], [1, 5, 2, 0, 60_000]);
    assert_eq!(replies[1], [0, 5, 2, 60_000, 60_000]);
    assert_eq!(replies[2], [1, 5, 0, 0, 60_000]);
    assert_eq!(replies[3], [0, 5, 0, -1, 60_000]);
}

#[test]
fn cost_above_limit_on_fresh_key_creates_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        decide(&mut con, &["RL.SLIDING", "k", "5", "1m", "COST", "6"]),
        [0, 5, 5, -1, 0]
    );
    let exists: i64 = call(&mut con, &["EXISTS", "k"]);
    assert_eq!(exists, 0);
}

#[test]
fn peek_on_fresh_key_creates_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let commands: [&[&str]; 6] = [
        &["RL.FIXED", "k", "5", "1m", "PEEK"],
        &["RL.SLIDING", "k", "5", "1m", "PEEK"],
        &["RL.TOKENBUCKET", "k", "5", "1", "1s", "PEEK"],
        &["RL.GCRA", "k", "5", "1", "1s", "PEEK"],
        &["RL.THROTTLE", "k", "1s", "PEEK"],
        &["RL.DEBOUNCE", "k", "1s", "PEEK"],
    ];
    for words in commands {
        let reply = decide(&mut con, words);
        assert_eq!(reply[0], 1, "{words:?}");
        let exists: i64 = call(&mut con, &["EXISTS", "k"]);
        assert_eq!(exists, 0, "{words:?}");
    }
}

#[test]
fn peek_gets_the_reply_and_consumes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let replies = decide_at_once(
        &mut con,
        &[
            &["RL.SLIDING", "k", "3", "1m"],
            &["RL.SLIDING", "k", "3", "1m", "PEEK", "COST", "2"],
            &["RL.SLIDING", "k", "3", "1m", "PEEK"],
            &["RL.SLIDING", "k", "3", "1m", "COST", "2"],
            &["RL.SLIDING", "k", "3", "1m", "PEEK"],
        ],
    );
    assert_eq!(replies[1], [1, 3, 0, 0, 60_000]);
    assert_eq!(replies[2], [1, 3, 1, 0, 60_000]);
    assert_eq!(replies[3], [1, 3, 0, 0, 60_000]);
    assert_eq!(replies[4], [0, 3, 0, 60_000, 60_000]);
    assert_eq!(info_number(&mut con, "k", "used"), 3);
}

#[test]
fn new_parameters_apply_to_live_state() {
    let server = Server::start();
    let mut con = server.connect();
    let replies = decide_at_once(
        &mut con,
        &[
            &["RL.FIXED", "k", "5", "1m", "COST", "3"],
            // A looser limit keeps the units used.
            &["RL.FIXED", "k", "10", "1m"],
            // A stricter one binds at once, and is stored although the request is denied.
            &["RL.FIXED", "k", "2", "1m"],
        ],
    );
    assert_eq!(replies[1], [1, 10, 6, 0, 60_000]);
    assert_eq!(replies[2], [0, 2, 0, 60_000, 60_000]);
    assert_eq!(info_number(&mut con, "k", "limit"), 2);
    assert_eq!(info_number(&mut con, "k", "used"), 4);
}

#[test]
fn new_parameters_keep_units_for_every_algorithm() {
    let server = Server::start();
    let mut con = server.connect();
    let cases: [(&[&str], &[&str], i64); 3] = [
        (
            &["RL.SLIDING", "s", "5", "1m", "COST", "4"],
            &["RL.SLIDING", "s", "8", "1m"],
            3,
        ),
        (
            &["RL.TOKENBUCKET", "t", "5", "1", "1h", "COST", "4"],
            &["RL.TOKENBUCKET", "t", "8", "1", "1h"],
            3,
        ),
        (
            &["RL.GCRA", "g", "5", "1", "1h", "COST", "4"],
            &["RL.GCRA", "g", "8", "1", "1h"],
            3,
        ),
    ];
    // Four units were used under a limit of 5; under 8, one more leaves 8 - 4 - 1.
    for (first, second, remaining) in cases {
        let replies = decide_at_once(&mut con, &[first, second]);
        assert_eq!(replies[1][0], 1, "{second:?}");
        assert_eq!(replies[1][2], remaining, "{second:?}");
    }
}

#[test]
fn key_ttl_tracks_reset_after() {
    let server = Server::start();
    let mut con = server.connect();
    let reply = decide(&mut con, &["RL.SLIDING", "k", "5", "10s"]);
    assert_eq!(reply[4], 10_000);
    let ttl: i64 = call(&mut con, &["PTTL", "k"]);
    assert_close_below(ttl, 10_000, SCHEDULING_MS);

    let bucket = decide(
        &mut con,
        &["RL.TOKENBUCKET", "b", "10", "1", "1s", "COST", "4"],
    );
    assert_eq!(bucket[4], 4000);
    let ttl: i64 = call(&mut con, &["PTTL", "b"]);
    assert_close_below(ttl, 4000, SCHEDULING_MS);
}

#[test]
fn denied_request_keeps_ttl() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "k", "1", "10s"]);
    let before: i64 = call(&mut con, &["PEXPIRETIME", "k"]);
    sleep_ms(20);
    assert_eq!(decide(&mut con, &["RL.FIXED", "k", "1", "10s"])[0], 0);
    let after: i64 = call(&mut con, &["PEXPIRETIME", "k"]);
    assert_eq!(before, after);
}

#[test]
fn fresh_limiter_key_expires() {
    let server = Server::start();
    let mut con = server.connect();
    for words in [
        ["RL.FIXED", "a", "1", "100ms"].as_slice(),
        &["RL.SLIDING", "b", "1", "100ms"],
        &["RL.TOKENBUCKET", "c", "1", "1", "100ms"],
        &["RL.GCRA", "d", "1", "1", "100ms"],
        &["RL.THROTTLE", "e", "100ms"],
        &["RL.DEBOUNCE", "f", "100ms"],
    ] {
        decide(&mut con, words);
    }
    let keys = ["EXISTS", "a", "b", "c", "d", "e", "f"];
    let count: i64 = call(&mut con, &keys);
    assert_eq!(count, 6);
    sleep_ms(150);
    let count: i64 = call(&mut con, &keys);
    assert_eq!(count, 0);
}

#[test]
fn shrunk_window_deletes_fresh_key() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "k", "1", "1m"]);
    sleep_ms(30);
    // The window shrinks to 10 ms, which ended already: the limiter is fresh, so the key goes.
    let reply = decide(&mut con, &["RL.FIXED", "k", "1", "10ms", "COST", "2"]);
    assert_eq!(reply, [0, 1, 1, -1, 0]);
    let exists: i64 = call(&mut con, &["EXISTS", "k"]);
    assert_eq!(exists, 0);
}

#[test]
fn info_shows_algorithm_parameters_and_state() {
    let server = Server::start();
    let mut con = server.connect();
    decide(
        &mut con,
        &[
            "RL.SLIDING",
            "k",
            "10",
            "1m",
            "COST",
            "3",
            "PRECISION",
            "10ms",
        ],
    );
    let fields = info(&mut con, "k");
    let text = |name: &str| -> String { redis::from_redis_value(fields[name].clone()).unwrap() };
    let number = |name: &str| -> i64 { redis::from_redis_value(fields[name].clone()).unwrap() };
    assert_eq!(text("algorithm"), "SLIDING");
    assert_eq!(number("limit"), 10);
    assert_eq!(number("window_ms"), 60_000);
    assert_eq!(number("precision_ms"), 10);
    assert_eq!(number("used"), 3);
    assert_eq!(number("entries"), 1);
    assert_eq!(number("remaining"), 7);
    assert!(number("reset_after_ms") > 59_000);
}

#[test]
fn info_of_every_algorithm_names_it() {
    let server = Server::start();
    let mut con = server.connect();
    let cases: [(&[&str], &str, &str); 6] = [
        (&["RL.FIXED", "a", "5", "1m"], "FIXED", "window_start_ms"),
        (&["RL.SLIDING", "b", "5", "1m"], "SLIDING", "entries"),
        (
            &["RL.TOKENBUCKET", "c", "5", "1", "1s"],
            "TOKENBUCKET",
            "capacity",
        ),
        (&["RL.GCRA", "d", "5", "1", "1s"], "GCRA", "tat_ms"),
        (&["RL.THROTTLE", "e", "1s"], "THROTTLE", "last_allowed_ms"),
        (&["RL.DEBOUNCE", "f", "1s"], "DEBOUNCE", "last_request_ms"),
    ];
    for (words, algorithm, field) in cases {
        decide(&mut con, words);
        let fields = info(&mut con, words[1]);
        let name: String = redis::from_redis_value(fields["algorithm"].clone()).unwrap();
        assert_eq!(name, algorithm);
        assert!(
            fields.contains_key(field),
            "{algorithm} lacks {field}: {fields:?}"
        );
    }
}

#[test]
fn info_of_missing_key_is_null() {
    let server = Server::start();
    let mut con = server.connect();
    let value: redis::Value = call(&mut con, &["RL.INFO", "missing"]);
    assert_eq!(value, redis::Value::Nil);
}

#[test]
fn resp3_replies_have_the_same_shape() {
    let server = Server::start();
    let mut con = server.connect_resp3();
    let reply: Vec<i64> = call(&mut con, &["RL.FIXED", "k", "5", "1m"]);
    assert_eq!(reply, vec![1, 5, 4, 0, 60_000]);
    let value: redis::Value = call(&mut con, &["RL.INFO", "k"]);
    let redis::Value::Map(fields) = value else {
        panic!("RL.INFO in RESP3 is a map, got {value:?}");
    };
    assert_eq!(fields.len(), 7);
}

#[test]
fn scripts_call_limiters_at_one_time() {
    let server = Server::start();
    let mut con = server.connect();
    let script = "return {server.call('RL.SLIDING', KEYS[1], 2, '100ms'), \
                  server.call('RL.SLIDING', KEYS[1], 2, '100ms'), \
                  server.call('RL.SLIDING', KEYS[1], 2, '100ms')}";
    let replies: Vec<Vec<i64>> = call(&mut con, &["EVAL", script, "1", "k"]);
    assert_eq!(
        replies,
        vec![
            vec![1, 2, 1, 0, 100],
            vec![1, 2, 0, 0, 100],
            vec![0, 2, 0, 100, 100]
        ]
    );
}
