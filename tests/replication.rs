//! Primary and replica on loopback: after randomized traffic the replica holds exactly the
//! primary's state, whatever its own clock reads, because changes travel as `RL.APPLY` with the
//! primary's time.

mod common;

use std::time::Duration;

use common::{call, decide, error_of, info_field, traffic, wait_until, Random, Server};

/// Arguments that make full syncs start at once.
const FAST_SYNC: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

fn start_replica_of(primary: &Server) -> Server {
    let port = primary.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &port];
    args.extend_from_slice(&FAST_SYNC);
    let replica = Server::start_with(&args);
    wait_for_link(&replica);
    replica
}

fn wait_for_link(replica: &Server) {
    let mut con = replica.connect();
    wait_until(Duration::from_secs(20), "the replica link", || {
        info_field(&mut con, "replication", "master_link_status").as_deref() == Some("up")
    });
}

/// Waits until one replica has everything the primary propagated.
fn wait_for_replica(primary: &mut redis::Connection) {
    let acknowledged: i64 = call(primary, &["WAIT", "1", "5000"]);
    assert_eq!(
        acknowledged, 1,
        "the replica acknowledged the primary's writes"
    );
}

/// Asserts that every key has the same digest and expiry on both servers.
fn assert_same_state(primary: &mut redis::Connection, replica: &mut redis::Connection) -> usize {
    let mut keys: Vec<String> = call(primary, &["KEYS", "*"]);
    keys.sort();
    let mut replica_keys: Vec<String> = call(replica, &["KEYS", "*"]);
    replica_keys.sort();
    assert_eq!(replica_keys, keys);
    for key in &keys {
        let digest: Vec<String> = call(primary, &["DEBUG", "DIGEST-VALUE", key]);
        let replica_digest: Vec<String> = call(replica, &["DEBUG", "DIGEST-VALUE", key]);
        assert_eq!(replica_digest, digest, "digest of {key}");
        let expiry: i64 = call(primary, &["PEXPIRETIME", key]);
        let replica_expiry: i64 = call(replica, &["PEXPIRETIME", key]);
        assert_eq!(replica_expiry, expiry, "expiry of {key}");
    }
    let digest: String = call(primary, &["DEBUG", "DIGEST"]);
    let replica_digest: String = call(replica, &["DEBUG", "DIGEST"]);
    assert_eq!(replica_digest, digest, "dataset digest");
    keys.len()
}

#[test]
fn replica_matches_primary_after_random_traffic() {
    let primary = Server::start_with(&FAST_SYNC);
    let replica = start_replica_of(&primary);
    let mut con = primary.connect();
    let mut random = Random::new(0x5eed_0001);

    for _ in 0..4 {
        traffic::send(&mut con, &mut random, 1000, 40);
        // Time passes between rounds, so that refills and windows move on.
        common::sleep_ms(15);
    }
    wait_for_replica(&mut con);
    let keys = assert_same_state(&mut con, &mut replica.connect());
    assert!(keys >= 30, "traffic created only {keys} keys");

    // The traffic reached every outcome, so the comparison covers each kind of write.
    for stats in ["rl_sliding", "rl_tokenbucket", "rl_debounce"] {
        for outcome in ["allowed", "denied", "errors"] {
            let field = format!("ratelimit_{stats}_{outcome}");
            let count: u64 = info_field(&mut con, "ratelimit", &field)
                .unwrap()
                .parse()
                .unwrap();
            assert!(count > 0, "{field} is 0");
        }
    }
}

#[test]
fn paused_replica_applies_primary_time() {
    let primary = Server::start_with(&FAST_SYNC);
    let replica = start_replica_of(&primary);
    let mut con = primary.connect();
    let mut random = Random::new(0x5eed_0004);

    // The replica runs the stream a second late: a command that read its clock would reach
    // other windows, refills and expiries than the primary did.
    replica.signal("STOP");
    traffic::send(&mut con, &mut random, 1500, 40);
    common::sleep_ms(1000);
    replica.signal("CONT");
    wait_for_replica(&mut con);
    assert_same_state(&mut con, &mut replica.connect());
}

#[test]
fn late_replica_gets_state_by_full_sync() {
    let primary = Server::start_with(&FAST_SYNC);
    let mut con = primary.connect();
    let mut random = Random::new(0x5eed_0002);
    traffic::send(&mut con, &mut random, 2000, 40);

    let replica = start_replica_of(&primary);
    traffic::send(&mut con, &mut random, 500, 40);
    wait_for_replica(&mut con);
    assert_same_state(&mut con, &mut replica.connect());
}

#[test]
fn replica_restarted_from_its_rdb_keeps_state() {
    let primary = Server::start_with(&FAST_SYNC);
    let mut replica = start_replica_of(&primary);
    let mut con = primary.connect();
    let mut random = Random::new(0x5eed_0003);
    traffic::send(&mut con, &mut random, 1500, 40);
    wait_for_replica(&mut con);

    let _: () = call(&mut replica.connect(), &["SAVE"]);
    let partial_syncs = |con: &mut redis::Connection| info_field(con, "stats", "sync_partial_ok");
    let partial_before = partial_syncs(&mut con);
    replica.restart();
    wait_for_link(&replica);
    traffic::send(&mut con, &mut random, 500, 40);
    wait_for_replica(&mut con);

    // A partial resync means the replica went on from the state it loaded from its RDB file,
    // not from a full copy of the primary's.
    assert_ne!(partial_syncs(&mut con), partial_before);
    assert_same_state(&mut con, &mut replica.connect());
}

#[test]
fn denied_request_propagates_nothing() {
    // The primary pings its replicas every 10 s by default, which moves the offset too.
    let mut args = FAST_SYNC.to_vec();
    args.extend(["--repl-ping-replica-period", "3600"]);
    let primary = Server::start_with(&args);
    let _replica = start_replica_of(&primary);
    let mut con = primary.connect();
    decide(&mut con, &["RL.FIXED", "k", "1", "1h"]);
    decide(&mut con, &["RL.DEBOUNCE", "d", "1h"]);
    wait_for_replica(&mut con);

    let offset = |con: &mut redis::Connection| info_field(con, "replication", "master_repl_offset");
    let before = offset(&mut con);
    assert_eq!(decide(&mut con, &["RL.FIXED", "k", "1", "1h"])[0], 0);
    assert_eq!(
        decide(&mut con, &["RL.FIXED", "k", "1", "1h", "PEEK"])[0],
        0
    );
    assert_eq!(decide(&mut con, &["RL.DEBOUNCE", "d", "1h", "PEEK"])[0], 0);
    assert_eq!(
        decide(&mut con, &["RL.SLIDING", "new", "1", "1h", "PEEK"])[0],
        1
    );
    let _: redis::Value = call(&mut con, &["RL.INFO", "k"]);
    let _ = error_of(&mut con, &["RL.FIXED", "k", "0", "1h"]);
    assert_eq!(offset(&mut con), before);

    // A denied debounce request restarts the quiet period, so it does propagate.
    assert_eq!(decide(&mut con, &["RL.DEBOUNCE", "d", "1h"])[0], 0);
    assert_ne!(offset(&mut con), before);
}

#[test]
fn replica_rejects_writes_and_peek() {
    let primary = Server::start_with(&FAST_SYNC);
    let replica = start_replica_of(&primary);
    let mut con = primary.connect();
    decide(&mut con, &["RL.SLIDING", "k", "5", "1h"]);
    wait_for_replica(&mut con);

    let mut replica_con = replica.connect();
    for words in [
        ["RL.SLIDING", "k", "5", "1h"].as_slice(),
        &["RL.SLIDING", "k", "5", "1h", "PEEK"],
    ] {
        let error = error_of(&mut replica_con, words);
        assert!(error.starts_with("READONLY"), "{words:?}: {error}");
    }
    let fields: Vec<redis::Value> = call(&mut replica_con, &["RL.INFO", "k"]);
    assert_eq!(fields.len(), 16);
}

#[test]
fn transaction_and_script_calls_replicate_in_order() {
    let primary = Server::start_with(&FAST_SYNC);
    let replica = start_replica_of(&primary);
    let mut con = primary.connect();
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("RL.SLIDING")
        .arg("s")
        .arg("3")
        .arg("1h")
        .cmd("RL.SLIDING")
        .arg("s")
        .arg("3")
        .arg("1h")
        .arg("COST")
        .arg("2")
        .cmd("RL.SLIDING")
        .arg("s")
        .arg("3")
        .arg("1h");
    let replies: Vec<Vec<i64>> = pipe.query(&mut con).unwrap();
    assert_eq!(replies[2][0], 0);
    let script = "return {server.call('RL.FIXED', KEYS[1], 2, '1h'), \
                  server.call('RL.FIXED', KEYS[1], 2, '1h'), \
                  server.call('RL.FIXED', KEYS[1], 2, '1h')}";
    let replies: Vec<Vec<i64>> = call(&mut con, &["EVAL", script, "1", "f"]);
    assert_eq!(replies[2][0], 0);

    wait_for_replica(&mut con);
    let mut replica_con = replica.connect();
    assert_eq!(common::info_number(&mut replica_con, "s", "used"), 3);
    assert_eq!(common::info_number(&mut replica_con, "f", "used"), 2);
    assert_same_state(&mut con, &mut replica_con);
}

#[test]
fn granted_waiter_replicates() {
    let primary = Server::start_with(&FAST_SYNC);
    let replica = start_replica_of(&primary);
    let mut con = primary.connect();
    decide(&mut con, &["RL.TOKENBUCKET", "k", "1", "1", "200ms"]);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let mut waiter = primary.connect();
            std::thread::spawn(move || {
                decide(
                    &mut waiter,
                    &["RL.WAIT", "5s", "TOKENBUCKET", "k", "1", "1", "200ms"],
                )
            })
        })
        .collect();
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap()[0], 1);
    }
    wait_for_replica(&mut con);
    assert_same_state(&mut con, &mut replica.connect());
}
