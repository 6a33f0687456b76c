//! The module in a real cluster of three primaries and three replicas: routing by key,
//! `COMMAND GETKEYS`, hash tags, and limiter state across a manual failover and a slot migration.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use cluster::{Cluster, Node};
use common::{call, decide, error_of, error_text, snapshot};
use std::time::Instant;

/// One limiter of each algorithm, with some state. Each test replaces `{tag}` with its own hash
/// tag so that every key is in one slot. The windows are long so that nothing expires meanwhile.
const LIMITERS: [&[&str]; 6] = [
    &["RL.FIXED", "{tag}:fixed", "10", "1h", "COST", "3"],
    &["RL.SLIDING", "{tag}:sliding", "10", "1h", "COST", "3"],
    &[
        "RL.TOKENBUCKET",
        "{tag}:bucket",
        "10",
        "1",
        "1h",
        "COST",
        "3",
    ],
    &["RL.GCRA", "{tag}:gcra", "10", "1", "1h", "COST", "3"],
    &["RL.THROTTLE", "{tag}:throttle", "1h"],
    &["RL.DEBOUNCE", "{tag}:debounce", "1h"],
];

/// Returns `words` with the hash tag `{tag}` replaced by `{hash_tag}`.
fn tagged(words: &[&str], hash_tag: &str) -> Vec<String> {
    words
        .iter()
        .map(|word| word.replace("{tag}", &format!("{{{hash_tag}}}")))
        .collect()
}

fn as_strs(words: &[String]) -> Vec<&str> {
    words.iter().map(String::as_str).collect()
}

/// Creates every limiter of [`LIMITERS`] under `hash_tag` and returns their keys.
fn create_limiters(node: &Node, hash_tag: &str) -> Vec<String> {
    let mut con = node.connect();
    let mut keys = Vec::new();
    for words in LIMITERS {
        let words = tagged(words, hash_tag);
        let reply = decide(&mut con, &as_strs(&words));
        assert_eq!(reply[0], 1, "{words:?} replied {reply:?}");
        keys.push(words[1].clone());
    }
    keys
}

/// Returns the DUMP and PEXPIRETIME of each key.
fn snapshots(con: &mut redis::Connection, keys: &[String]) -> Vec<(Option<Vec<u8>>, i64)> {
    keys.iter().map(|key| snapshot(con, key)).collect()
}

/// Asserts that the next request to each limiter that [`create_limiters`] made continues from
/// its state, with 3 of 10 units used and the throttle and debounce still within their hour.
fn assert_limiters_continue(node: &Node, hash_tag: &str) {
    let mut con = node.connect();
    let key = |name: &str| format!("{{{hash_tag}}}:{name}");

    let fixed = decide(&mut con, &["RL.FIXED", &key("fixed"), "10", "1h"]);
    assert_eq!(fixed[..4], [1, 10, 6, 0], "RL.FIXED replied {fixed:?}");
    let sliding = decide(&mut con, &["RL.SLIDING", &key("sliding"), "10", "1h"]);
    assert_eq!(
        sliding[..4],
        [1, 10, 6, 0],
        "RL.SLIDING replied {sliding:?}"
    );

    // At one token per hour, no whole token refills during a test.
    let bucket = decide(
        &mut con,
        &["RL.TOKENBUCKET", &key("bucket"), "10", "1", "1h"],
    );
    assert_eq!(
        bucket[..4],
        [1, 10, 6, 0],
        "RL.TOKENBUCKET replied {bucket:?}"
    );
    let gcra = decide(&mut con, &["RL.GCRA", &key("gcra"), "10", "1", "1h"]);
    assert_eq!(gcra[..4], [1, 10, 6, 0], "RL.GCRA replied {gcra:?}");

    let throttle = decide(&mut con, &["RL.THROTTLE", &key("throttle"), "1h"]);
    assert_eq!(throttle[..3], [0, 1, 0], "RL.THROTTLE replied {throttle:?}");
    let debounce = decide(&mut con, &["RL.DEBOUNCE", &key("debounce"), "1h"]);
    assert_eq!(debounce[..3], [0, 1, 0], "RL.DEBOUNCE replied {debounce:?}");
}

#[test]
fn wrong_node_replies_moved() {
    let cluster = Cluster::start();
    let key = "user:7";
    let slot = cluster.slot_of(key);
    let index = Cluster::initial_owner_of(slot);
    let owner = cluster.primary(index);
    let other = cluster.primary((index + 1) % 3);
    let expected = format!("MOVED {slot} {}", owner.address());

    let commands: [&[&str]; 12] = [
        &["RL.FIXED", key, "10", "1m"],
        &["RL.SLIDING", key, "10", "1m"],
        &["RL.TOKENBUCKET", key, "10", "1", "1s"],
        &["RL.GCRA", key, "10", "1", "1s"],
        &["RL.THROTTLE", key, "1s"],
        &["RL.DEBOUNCE", key, "1s"],
        &["RL.INFO", key],
        &[
            "RL.APPLY",
            key,
            "1700000000000",
            "1",
            "FIXED",
            "10",
            "60000",
        ],
        &["RL.LOAD", key, "state"],
        &["CL.THROTTLE", key, "15", "30", "60"],
        &["RL.WAIT", "1s", "FIXED", key, "10", "1m"],
        &["RL.WAIT", "1s", "ALL", "1", key, "FIXED", "10", "1m"],
    ];
    let mut wrong = other.connect();
    for words in commands {
        assert_eq!(error_of(&mut wrong, words), expected, "{words:?}");
    }

    // A replica without READONLY redirects to its primary as well.
    let mut replica = cluster.replica_of(index).connect();
    assert_eq!(
        error_of(&mut replica, &["RL.FIXED", key, "10", "1m"]),
        expected
    );

    let mut right = owner.connect();
    assert_eq!(
        decide(&mut right, &["RL.FIXED", key, "10", "1m"]),
        [1, 10, 9, 0, 60_000]
    );

    // RL.ALL declares its keys in a key spec with a key count, and reports them again when the
    // server requests them, because Valkey 9.1.2 does not route by that spec alone.
    let all = ["RL.ALL", "1", key, "FIXED", "10", "1m"];
    assert_eq!(error_of(&mut wrong, &all), expected, "{all:?}");
}

#[test]
fn getkeys_finds_every_key() {
    let cluster = Cluster::start();
    let mut con = cluster.primary(0).connect();
    let key = "rate:{user42}:api";
    let other = "rate:{user42}:login";

    // Every single-limiter command, the internal ones included, has its key first.
    let first_key: [&[&str]; 13] = [
        &["RL.FIXED", key, "10", "1m"],
        &["RL.FIXED", key, "10", "1m", "COST", "3", "PEEK"],
        &["RL.SLIDING", key, "10", "1m", "PRECISION", "1s"],
        &["RL.TOKENBUCKET", key, "10", "1", "1s"],
        &["RL.GCRA", key, "10", "1", "1s", "COST", "2"],
        &["RL.THROTTLE", key, "1s"],
        &["RL.DEBOUNCE", key, "1s", "PEEK"],
        &["CL.THROTTLE", key, "15", "30", "60", "1"],
        &["RL.INFO", key],
        &[
            "RL.APPLY",
            key,
            "1700000000000",
            "1",
            "FIXED",
            "10",
            "60000",
        ],
        &["RL.APPLY", key, "1700000000000", "0", "THROTTLE", "1000"],
        &["RL.LOAD", key, "state"],
        // A key that reads like an option is still the key.
        &["RL.FIXED", "PEEK", "10", "1m", "COST", "3"],
    ];
    for words in first_key {
        let mut request = vec!["COMMAND", "GETKEYS"];
        request.extend_from_slice(words);
        let keys: Vec<String> = call(&mut con, &request);
        assert_eq!(keys, [words[1]], "{words:?}");
    }

    // RL.ALL counts its keys, and RL.WAIT has the wrapped command's keys after the algorithm.
    let elsewhere: [(&[&str], &[&str]); 4] = [
        (
            &[
                "RL.ALL", "2", key, other, "FIXED", "10", "1m", "THROTTLE", "1s",
            ],
            &[key, other],
        ),
        (&["RL.ALL", "1", key, "SLIDING", "10", "1m", "PEEK"], &[key]),
        (&["RL.WAIT", "5s", "FIXED", key, "10", "1m"], &[key]),
        (
            &[
                "RL.WAIT", "0", "ALL", "2", key, other, "GCRA", "5", "1", "1s", "THROTTLE", "1s",
            ],
            &[key, other],
        ),
    ];
    for (words, expected) in elsewhere {
        let mut request = vec!["COMMAND", "GETKEYS"];
        request.extend_from_slice(words);
        let keys: Vec<String> = call(&mut con, &request);
        assert_eq!(keys, expected, "{words:?}");
    }
}

#[test]
fn hash_tagged_keys_share_slot() {
    let cluster = Cluster::start();
    let api = "rate:{user42}:api";
    let login = "rate:{user42}:login";
    let slot = cluster.slot_of("user42");
    assert_eq!(cluster.slot_of(api), slot);
    assert_eq!(cluster.slot_of(login), slot);

    let owner = cluster.primary(Cluster::initial_owner_of(slot));
    let mut con = owner.connect();
    assert_eq!(
        decide(&mut con, &["RL.FIXED", api, "10", "1m"]),
        [1, 10, 9, 0, 60_000]
    );
    assert_eq!(
        decide(&mut con, &["RL.SLIDING", login, "5", "1m"]),
        [1, 5, 4, 0, 60_000]
    );

    let all = [
        "RL.ALL", "2", api, login, "FIXED", "10", "1m", "SLIDING", "5", "1m",
    ];
    let replies: Vec<Vec<i64>> = call(&mut con, &all);
    assert_eq!(replies.len(), 3, "RL.ALL replied {replies:?}");
    assert_eq!(replies[0][..4], [1, 5, 3, 0], "the combined verdict");
    assert_eq!(replies[1][..4], [1, 10, 8, 0], "the fixed window");
    assert_eq!(replies[2][..4], [1, 5, 3, 0], "the sliding window");

    let slot = slot.to_string();
    let count: i64 = call(&mut con, &["CLUSTER", "COUNTKEYSINSLOT", &slot]);
    assert_eq!(count, 2);
    let mut keys: Vec<String> = call(&mut con, &["CLUSTER", "GETKEYSINSLOT", &slot, "10"]);
    keys.sort();
    assert_eq!(keys, [api, login]);

    // Keys under different hash tags are in different slots, which one command cannot span.
    let elsewhere = "rate:{user7}:api";
    assert_ne!(cluster.slot_of(elsewhere), cluster.slot_of(api));
    let error = error_of(
        &mut con,
        &[
            "RL.ALL", "2", api, elsewhere, "FIXED", "10", "1m", "FIXED", "10", "1m",
        ],
    );
    assert!(error.starts_with("CROSSSLOT"), "{error}");
}

#[test]
fn failover_keeps_state_and_ttl() {
    let cluster = Cluster::start();
    let hash_tag = "failover";
    let index = Cluster::initial_owner_of(cluster.slot_of(hash_tag));
    let old_primary = cluster.primary(index);
    let new_primary = cluster.replica_of(index);
    let keys = create_limiters(old_primary, hash_tag);
    let mut con = old_primary.connect();
    let synced: i64 = call(&mut con, &["WAIT", "1", "2000"]);
    assert_eq!(synced, 1, "the replica did not acknowledge the writes");
    let before = snapshots(&mut con, &keys);

    let mut replica = new_primary.connect();
    let _: () = call(&mut replica, &["READONLY"]);
    assert_eq!(
        snapshots(&mut replica, &keys),
        before,
        "replica before failover"
    );

    let _: () = call(&mut replica, &["CLUSTER", "FAILOVER"]);
    cluster.wait_until("the replica reports role:master", || {
        new_primary.info_field("replication", "role").as_deref() == Some("master")
    });

    let mut con = new_primary.connect();
    assert_eq!(snapshots(&mut con, &keys), before, "new primary");
    assert_limiters_continue(new_primary, hash_tag);

    let slot = cluster.slot_of(hash_tag);
    let expected = format!("MOVED {slot} {}", new_primary.address());
    cluster.wait_until(
        "the old primary redirects to the new one",
        || match old_primary.try_query::<redis::Value>(&["RL.INFO", &keys[0]]) {
            Ok(_) => false,
            Err(error) => error_text(&error) == expected,
        },
    );
}

#[test]
fn migration_keeps_state_and_ttl() {
    let cluster = Cluster::start();
    let hash_tag = "migration";
    let slot = cluster.slot_of(hash_tag);
    let source_index = Cluster::initial_owner_of(slot);
    let target_index = (source_index + 1) % 3;
    let source = cluster.primary(source_index);
    let target = cluster.primary(target_index);
    let bystander = cluster.primary(3 - source_index - target_index);
    let keys = create_limiters(source, hash_tag);
    let mut from = source.connect();
    let mut to = target.connect();
    let before = snapshots(&mut from, &keys);

    let slot_text = slot.to_string();
    let _: () = call(
        &mut to,
        &["CLUSTER", "SETSLOT", &slot_text, "IMPORTING", &source.id],
    );
    let _: () = call(
        &mut from,
        &["CLUSTER", "SETSLOT", &slot_text, "MIGRATING", &target.id],
    );
    let mut in_slot: Vec<String> =
        call(&mut from, &["CLUSTER", "GETKEYSINSLOT", &slot_text, "100"]);
    in_slot.sort();
    let mut expected_keys = keys.clone();
    expected_keys.sort();
    assert_eq!(in_slot, expected_keys);

    let port = target.port().to_string();
    let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    migrate.extend(keys.iter().map(String::as_str));
    let started = Instant::now();
    let _: () = call(&mut from, &migrate);
    let migrate_ms = started.elapsed().as_millis() as i64;

    // The target takes the slot first, so a client that the source then redirects finds the
    // target already owning it.
    // Valkey 9.1 rejects SETSLOT on a replica ("Please use SETSLOT only with masters").
    for node in [target, source, bystander] {
        let _: () = node.query(&["CLUSTER", "SETSLOT", &slot_text, "NODE", &target.id]);
    }

    let after = snapshots(&mut to, &keys);
    for ((key, (dump_before, expiry_before)), (dump_after, expiry_after)) in
        keys.iter().zip(&before).zip(&after)
    {
        assert_eq!(dump_after, dump_before, "DUMP of {key}");
        // Valkey's MIGRATE sends the TTL relative to the source's clock and the target adds it
        // to its own, so the expiry moves later by at most the time MIGRATE took.
        let drift_ms = expiry_after - expiry_before;
        assert!(
            (0..=migrate_ms + 1).contains(&drift_ms),
            "PEXPIRETIME of {key} moved by {drift_ms} ms; MIGRATE took {migrate_ms} ms"
        );
    }
    assert_limiters_continue(target, hash_tag);
    let expiry: i64 = call(&mut to, &["PEXPIRETIME", &keys[0]]);
    assert_eq!(
        expiry, before[0].1,
        "an allowed request sets the fixed window's own expiry"
    );

    let expected = format!("MOVED {slot} {}", target.address());
    for key in &keys {
        assert_eq!(error_of(&mut from, &["RL.INFO", key]), expected, "{key}");
        assert_eq!(
            error_of(&mut from, &["RL.THROTTLE", key, "1h"]),
            expected,
            "{key}"
        );
    }
}
