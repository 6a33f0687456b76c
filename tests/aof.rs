//! AOF persistence: replaying the append-only file, plain or rewritten, restores exactly the
//! state the server had, not one recomputed at replay time.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{call, info_field, snapshot, traffic, wait_until, Random, Server};

/// DUMP payload and expiry of every key.
fn state(con: &mut redis::Connection) -> BTreeMap<String, (Option<Vec<u8>>, i64)> {
    let keys: Vec<String> = call(con, &["KEYS", "*"]);
    keys.into_iter()
        .map(|key| {
            let value = snapshot(con, &key);
            (key, value)
        })
        .collect()
}

fn rewrite(con: &mut redis::Connection) {
    let _: String = call(con, &["BGREWRITEAOF"]);
    wait_until(Duration::from_secs(20), "the AOF rewrite", || {
        info_field(con, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(con, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
            && info_field(con, "persistence", "aof_last_bgrewrite_status").as_deref() == Some("ok")
    });
}

/// Reads the base file of the AOF, which a rewrite replaces.
fn base_file(server: &Server) -> Vec<u8> {
    let dir = server.dir().join("appendonlydir");
    let base = std::fs::read_dir(&dir)
        .expect("the AOF directory exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().contains(".base."))
        .expect("the AOF has a base file");
    std::fs::read(base).expect("the base file is readable")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn aof_replay_restores_exact_state() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.connect();
    let mut random = Random::new(0xa0f_0001);
    traffic::send(&mut con, &mut random, 2000, 40);
    let before = state(&mut con);
    assert!(before.len() >= 30);

    // Replay a second later: a replay that read the clock would open other windows.
    common::sleep_ms(1100);
    server.restart();
    let mut con = server.connect();
    assert_eq!(state(&mut con), before);
}

#[test]
fn aof_propagates_apply_not_the_command() {
    let server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.connect();
    common::decide(&mut con, &["RL.SLIDING", "k", "5", "1h"]);
    let dir = server.dir().join("appendonlydir");
    let incremental: Vec<u8> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().to_string_lossy().ends_with(".incr.aof"))
        .flat_map(|entry| std::fs::read(entry.path()).unwrap())
        .collect();
    assert!(contains(&incremental, b"RL.APPLY"));
    assert!(!contains(&incremental, b"RL.SLIDING"));
}

#[test]
fn rewritten_aof_without_rdb_preamble_restores_state() {
    let mut server = Server::start_with(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        "no",
    ]);
    let mut con = server.connect();
    let mut random = Random::new(0xa0f_0002);
    traffic::send(&mut con, &mut random, 1500, 40);
    rewrite(&mut con);
    assert!(contains(&base_file(&server), b"RL.LOAD"));
    traffic::send(&mut con, &mut random, 500, 40);
    let before = state(&mut con);

    common::sleep_ms(1100);
    server.restart();
    let mut con = server.connect();
    assert_eq!(state(&mut con), before);
}

#[test]
fn rewritten_aof_with_rdb_preamble_restores_state() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.connect();
    let mut random = Random::new(0xa0f_0003);
    traffic::send(&mut con, &mut random, 1500, 40);
    rewrite(&mut con);
    traffic::send(&mut con, &mut random, 500, 40);
    let before = state(&mut con);

    server.restart();
    let mut con = server.connect();
    assert_eq!(state(&mut con), before);
}
