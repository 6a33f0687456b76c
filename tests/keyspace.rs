//! Limiter keys as Valkey keys: TYPE, OBJECT ENCODING, digests, MEMORY USAGE, COPY, RENAME,
//! MOVE, SWAPDB, an RDB file written by an earlier build, memory under hammering and OOM.

mod common;

use common::{call, decide, decide_at_once, error_of, info, info_number, snapshot, Server};

/// One limiter of each algorithm with windows that outlast any test.
const LIMITERS: [&[&str]; 6] = [
    &["RL.FIXED", "fixed", "10", "1h", "COST", "3"],
    &["RL.SLIDING", "sliding", "10", "1h", "COST", "3"],
    &["RL.TOKENBUCKET", "bucket", "10", "1", "1h", "COST", "3"],
    &["RL.GCRA", "gcra", "10", "1", "1h", "COST", "3"],
    &["RL.THROTTLE", "throttle", "1h"],
    &["RL.DEBOUNCE", "debounce", "1h"],
];

fn create_limiters(con: &mut redis::Connection) {
    for words in LIMITERS {
        decide(con, words);
    }
}

#[test]
fn type_and_encoding_name_the_module_type() {
    let server = Server::start();
    let mut con = server.connect();
    create_limiters(&mut con);
    for words in LIMITERS {
        let kind: String = call(&mut con, &["TYPE", words[1]]);
        assert_eq!(kind, "ratelimit");
        let encoding: String = call(&mut con, &["OBJECT", "ENCODING", words[1]]);
        assert_eq!(encoding, "raw");
    }
}

#[test]
fn equal_state_has_equal_digest() {
    let server = Server::start();
    let mut con = server.connect();
    decide_at_once(
        &mut con,
        &[
            &["RL.SLIDING", "a", "5", "1h", "COST", "2"],
            &["RL.SLIDING", "b", "5", "1h", "COST", "2"],
        ],
    );
    let digest = |con: &mut redis::Connection, key: &str| -> Vec<String> {
        call(con, &["DEBUG", "DIGEST-VALUE", key])
    };
    assert_eq!(digest(&mut con, "a"), digest(&mut con, "b"));
    decide(&mut con, &["RL.SLIDING", "b", "5", "1h"]);
    assert_ne!(digest(&mut con, "a"), digest(&mut con, "b"));
}

#[test]
fn memory_usage_reports_packed_size() {
    let server = Server::start();
    let mut con = server.connect();
    let _: () = call(&mut con, &["SET", "rate:user:12345", "1"]);
    let _: () = call(&mut con, &["PEXPIRE", "rate:user:12345", "3600000"]);
    let counter: i64 = call(&mut con, &["MEMORY", "USAGE", "rate:user:12345"]);

    for command in [
        "RL.FIXED",
        "RL.TOKENBUCKET",
        "RL.GCRA",
        "RL.THROTTLE",
        "RL.DEBOUNCE",
    ] {
        let _: () = call(&mut con, &["DEL", "rate:user:12345"]);
        let words: &[&str] = match command {
            "RL.FIXED" => &["RL.FIXED", "rate:user:12345", "100", "1m"],
            "RL.TOKENBUCKET" => &["RL.TOKENBUCKET", "rate:user:12345", "100", "10", "1s"],
            "RL.GCRA" => &["RL.GCRA", "rate:user:12345", "100", "10", "1s"],
            "RL.THROTTLE" => &["RL.THROTTLE", "rate:user:12345", "1s"],
            _ => &["RL.DEBOUNCE", "rate:user:12345", "1s"],
        };
        decide(&mut con, words);
        let usage: i64 = call(&mut con, &["MEMORY", "USAGE", "rate:user:12345"]);
        assert!(
            usage <= counter + 32,
            "{command} uses {usage} bytes, a counter {counter}"
        );
    }

    let _: () = call(&mut con, &["DEL", "log"]);
    for _ in 0..100 {
        decide(&mut con, &["RL.SLIDING", "log", "100", "1m"]);
        common::sleep_ms(1);
    }
    assert_eq!(info_number(&mut con, "log", "entries"), 100);
    let usage: i64 = call(&mut con, &["MEMORY", "USAGE", "log"]);
    // Three bytes an entry for a one-minute window and a limit of 100, plus the header.
    assert!(
        usage <= counter + 100 + 300,
        "a 100-entry log uses {usage} bytes"
    );
}

#[test]
fn copy_rename_and_move_keep_state_and_ttl() {
    let server = Server::start();
    let mut con = server.connect();
    create_limiters(&mut con);
    for words in LIMITERS {
        let key = words[1];
        let original = snapshot(&mut con, key);
        let copy = format!("{key}:copy");
        let copied: i64 = call(&mut con, &["COPY", key, &copy]);
        assert_eq!(copied, 1);
        assert_eq!(snapshot(&mut con, &copy), original);

        // The copy is independent of the original.
        decide(&mut con, words);
        assert_eq!(snapshot(&mut con, &copy), original);

        let renamed = format!("{key}:renamed");
        let _: () = call(&mut con, &["RENAME", &copy, &renamed]);
        assert_eq!(snapshot(&mut con, &renamed), original);

        let moved: i64 = call(&mut con, &["MOVE", &renamed, "1"]);
        assert_eq!(moved, 1);
        let _: () = call(&mut con, &["SELECT", "1"]);
        assert_eq!(snapshot(&mut con, &renamed), original);
        let _: () = call(&mut con, &["SELECT", "0"]);
    }
}

#[test]
fn swapdb_keeps_state() {
    let server = Server::start();
    let mut con = server.connect();
    create_limiters(&mut con);
    let before: Vec<_> = LIMITERS
        .iter()
        .map(|words| snapshot(&mut con, words[1]))
        .collect();
    let _: () = call(&mut con, &["SWAPDB", "0", "1"]);
    let _: () = call(&mut con, &["SELECT", "1"]);
    let after: Vec<_> = LIMITERS
        .iter()
        .map(|words| snapshot(&mut con, words[1]))
        .collect();
    assert_eq!(after, before);
    assert_eq!(decide(&mut con, &["RL.FIXED", "fixed", "10", "1h"])[2], 6);
}

/// An RDB file written by the first release of the module, encoding version 1, with windows of
/// 100 years so that nothing in it expires. `write_rdb_fixture` made it.
const RDB_FIXTURE: &[u8] = include_bytes!("fixtures/ratelimit-encoding-1.rdb");

/// The commands that made the fixture's keys, each at one instant.
const FIXTURE_COMMANDS: [&[&str]; 8] = [
    &["RL.FIXED", "fixed", "10", "36500d", "COST", "3"],
    &["RL.SLIDING", "sliding", "100", "36500d", "COST", "7"],
    &[
        "RL.SLIDING",
        "sliding:wide",
        "9223372036854775807",
        "36500d",
        "PRECISION",
        "1d",
        "COST",
        "70000",
    ],
    &["RL.TOKENBUCKET", "bucket", "10", "1", "36500d", "COST", "4"],
    &[
        "RL.GCRA",
        "gcra",
        "9223372036854775807",
        "3",
        "36500d",
        "COST",
        "5",
    ],
    &["RL.THROTTLE", "throttle", "36500d"],
    &["RL.DEBOUNCE", "debounce", "36500d"],
    &["RL.DEBOUNCE", "debounce", "36500d"],
];

#[test]
#[ignore = "writes tests/fixtures/ratelimit-encoding-N.rdb; run by hand for a new encoding"]
fn write_rdb_fixture() {
    let version = valkey_ratelimit::encoding::FORMAT_VERSION;
    let path = common::root().join(format!("tests/fixtures/ratelimit-encoding-{version}.rdb"));
    // A fixture of a released encoding must never change, or the test of it proves nothing.
    assert!(!path.exists(), "{} exists already", path.display());

    let server = Server::start();
    let mut con = server.connect();
    decide_at_once(&mut con, &FIXTURE_COMMANDS);
    let _: () = call(&mut con, &["SAVE"]);
    let rdb = std::fs::read(server.dir().join("dump.rdb")).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, rdb).unwrap();
}

#[test]
fn rdb_of_encoding_1_loads() {
    let server = Server::start_with_rdb(RDB_FIXTURE, &[]);
    let mut con = server.connect();
    let keys: i64 = call(&mut con, &["DBSIZE"]);
    assert_eq!(keys, 7);

    assert_eq!(info_number(&mut con, "fixed", "used"), 3);
    assert_eq!(
        info_number(&mut con, "fixed", "window_ms"),
        3_153_600_000_000
    );
    assert_eq!(info_number(&mut con, "sliding", "used"), 7);
    assert_eq!(info_number(&mut con, "sliding", "entries"), 1);
    assert_eq!(info_number(&mut con, "sliding:wide", "used"), 70_000);
    assert_eq!(
        info_number(&mut con, "sliding:wide", "precision_ms"),
        86_400_000
    );
    assert_eq!(info_number(&mut con, "bucket", "remaining"), 6);
    assert_eq!(info_number(&mut con, "gcra", "burst"), i64::MAX);
    assert!(info_number(&mut con, "throttle", "last_allowed_ms") > 1_700_000_000_000);
    assert!(info_number(&mut con, "debounce", "last_request_ms") > 1_700_000_000_000);

    // The loaded state goes on deciding.
    assert_eq!(
        decide(&mut con, &["RL.FIXED", "fixed", "10", "36500d"])[2],
        6
    );
    assert_eq!(
        decide(&mut con, &["RL.THROTTLE", "throttle", "36500d"])[0],
        0
    );
    let fields = info(&mut con, "gcra");
    assert!(fields.contains_key("tat_ms"));
}

#[test]
fn ignored_denials_leave_memory_bounded() {
    let server = Server::start();
    let mut con = server.connect();
    for _ in 0..100 {
        let mut pipe = redis::pipe();
        for _ in 0..1000 {
            pipe.cmd("RL.SLIDING")
                .arg("k")
                .arg("100")
                .arg("1h")
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    assert_eq!(info_number(&mut con, "k", "used"), 100);
    assert!(info_number(&mut con, "k", "entries") <= 100);
    let usage: i64 = call(&mut con, &["MEMORY", "USAGE", "k"]);
    assert!(usage < 1000, "{usage} bytes after 100000 requests");
}

#[test]
fn out_of_memory_fails_and_keeps_state() {
    let server = Server::start_with(&["--maxmemory-policy", "noeviction"]);
    let mut con = server.connect();
    create_limiters(&mut con);
    let before: Vec<_> = LIMITERS
        .iter()
        .map(|words| snapshot(&mut con, words[1]))
        .collect();

    let _: () = call(&mut con, &["CONFIG", "SET", "maxmemory", "1"]);
    for words in LIMITERS {
        let error = error_of(&mut con, words);
        assert!(error.starts_with("OOM"), "{words:?}: {error}");
        let mut peek: Vec<&str> = words.to_vec();
        peek.push("PEEK");
        assert!(error_of(&mut con, &peek).starts_with("OOM"));
        let fields = info(&mut con, words[1]);
        assert!(!fields.is_empty());
    }
    let _: () = call(&mut con, &["CONFIG", "SET", "maxmemory", "0"]);
    let after: Vec<_> = LIMITERS
        .iter()
        .map(|words| snapshot(&mut con, words[1]))
        .collect();
    assert_eq!(after, before);
}
