//! Randomized bad input against a real server: thousands of argument vectors for every
//! command. The server must stay up and reply to every one, each failure must be an error reply,
//! and a failed command must leave its key as it was.

mod common;

use std::time::Duration;

use common::{call, decide, Random, Server};
use valkey_ratelimit::encoding;
use valkey_ratelimit::limiter::{apply, Policy};

const COMMANDS: [&str; 9] = [
    "RL.FIXED",
    "RL.SLIDING",
    "RL.TOKENBUCKET",
    "RL.GCRA",
    "RL.THROTTLE",
    "RL.DEBOUNCE",
    "RL.INFO",
    "RL.APPLY",
    "RL.LOAD",
];

/// Keys the fuzzer aims at: one limiter of each algorithm, a string and a missing key.
const KEYS: [&str; 8] = [
    "fixed", "sliding", "bucket", "gcra", "throttle", "debounce", "text", "missing",
];

fn random_bytes(random: &mut Random, len: usize) -> Vec<u8> {
    (0..len).map(|_| random.below(256) as u8).collect()
}

/// Generates one argument, mostly near what the commands accept, sometimes far from it.
fn random_argument(random: &mut Random) -> Vec<u8> {
    let text: &[&str] = &[
        "1",
        "5",
        "100",
        "0",
        "-1",
        "+1",
        "1.5",
        ".5",
        "5.",
        "1e3",
        "0x10",
        "1_000",
        " 1",
        "1 ",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "99999999999999999999999999999999999999",
        "-9223372036854775808",
        "60",
        "500ms",
        "1.5m",
        "2h",
        "1d",
        "36500d",
        "36501d",
        "0.5ms",
        "0.0001s",
        "1ms5",
        "1.5.5s",
        "1S",
        "1Ms",
        "ms",
        "s",
        "1us",
        "1y",
        "3153600000000ms",
        "3153600000001ms",
        "COST",
        "PEEK",
        "PRECISION",
        "cost",
        "Peek",
        "precision",
        "FIXED",
        "SLIDING",
        "TOKENBUCKET",
        "GCRA",
        "THROTTLE",
        "DEBOUNCE",
        "ALL",
        "",
        "4102444800000",
    ];
    match random.below(10) {
        0 => {
            let len = random.below(40) as usize;
            random_bytes(random, len)
        }
        1 if random.chance(20) => vec![b'9'; 1 + random.below(20_000) as usize],
        1 => format!("{}.{}", random.next(), random.next()).into_bytes(),
        2 => random.pick(&KEYS).as_bytes().to_vec(),
        _ => random.pick(text).as_bytes().to_vec(),
    }
}

/// Valid commands that the fuzzer mutates one or two arguments of.
const TEMPLATES: [&[&str]; 8] = [
    &["RL.FIXED", "fixed", "10", "1h", "COST", "1"],
    &[
        "RL.SLIDING",
        "sliding",
        "10",
        "1h",
        "PRECISION",
        "1s",
        "PEEK",
    ],
    &["RL.TOKENBUCKET", "bucket", "10", "1", "1h"],
    &["RL.GCRA", "gcra", "10", "1", "1h", "COST", "2"],
    &["RL.THROTTLE", "throttle", "1h", "PEEK"],
    &["RL.DEBOUNCE", "debounce", "1h"],
    &[
        "RL.APPLY",
        "fixed",
        "4102444800000",
        "1",
        "FIXED",
        "10",
        "3600000",
    ],
    &[
        "RL.APPLY",
        "sliding",
        "4102444800000",
        "0",
        "SLIDING",
        "10",
        "3600000",
        "1",
    ],
];

/// Generates an argument vector. Half the time it is a valid command with one or two arguments
/// replaced or one added, otherwise a command, usually a known key, and 0 to 11 arguments.
fn random_vector(random: &mut Random) -> Vec<Vec<u8>> {
    if random.chance(50) {
        let mut words: Vec<Vec<u8>> = random
            .pick(&TEMPLATES)
            .iter()
            .map(|word| word.as_bytes().to_vec())
            .collect();
        for _ in 0..1 + random.below(2) {
            let argument = random_argument(random);
            if random.chance(20) {
                words.push(argument);
            } else {
                let index = 2 + random.below(words.len() as u64 - 2) as usize;
                words[index] = argument;
            }
        }
        return words;
    }

    let mut words = vec![random.pick(&COMMANDS).as_bytes().to_vec()];
    if random.chance(95) {
        let key = if random.chance(3) {
            vec![b'k'; 1 + random.below(100_000) as usize]
        } else {
            random.pick(&KEYS).as_bytes().to_vec()
        };
        words.push(key);
    }
    for _ in 0..random.below(12) {
        words.push(random_argument(random));
    }
    words
}

/// Reads a key's DUMP payload and expiry at one instant. Returns `None` if the key may expire
/// within seconds, because a comparison would then race with its expiry.
fn lasting_snapshot(con: &mut redis::Connection, key: &str) -> Option<(Option<Vec<u8>>, i64)> {
    let (dump, expiry, ttl): (Option<Vec<u8>>, i64, i64) = redis::pipe()
        .atomic()
        .cmd("DUMP")
        .arg(key)
        .cmd("PEXPIRETIME")
        .arg(key)
        .cmd("PTTL")
        .arg(key)
        .query(con)
        .unwrap();
    (!(0..=10_000).contains(&ttl)).then_some((dump, expiry))
}

fn create_keys(con: &mut redis::Connection) {
    for words in [
        ["RL.FIXED", "fixed", "10", "1h", "COST", "3"].as_slice(),
        &["RL.SLIDING", "sliding", "10", "1h", "COST", "3"],
        &["RL.TOKENBUCKET", "bucket", "10", "1", "1h", "COST", "3"],
        &["RL.GCRA", "gcra", "10", "1", "1h", "COST", "3"],
        &["RL.THROTTLE", "throttle", "1h"],
        &["RL.DEBOUNCE", "debounce", "1h"],
    ] {
        decide(con, words);
    }
    let _: () = call(con, &["SET", "text", "value"]);
}

/// Opens a connection whose reads time out, so that a hang fails the test.
fn connect_with_timeout(server: &Server) -> redis::Connection {
    let con = server.connect();
    con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    con
}

#[test]
fn random_arguments_never_break_the_server() {
    let server = Server::start();
    let mut con = connect_with_timeout(&server);
    create_keys(&mut con);
    let mut random = Random::new(0xf022_0001);
    let (mut errors, mut replies) = (0, 0);

    for round in 0..10_000 {
        let words = random_vector(&mut random);
        let key = words
            .get(1)
            .map(|key| String::from_utf8_lossy(key).into_owned());
        let before = key.as_ref().and_then(|key| lasting_snapshot(&mut con, key));

        let mut command = redis::cmd(std::str::from_utf8(&words[0]).unwrap());
        for word in &words[1..] {
            command.arg(word.as_slice());
        }
        match command.query::<redis::Value>(&mut con) {
            Ok(_) => replies += 1,
            Err(error) => {
                assert!(!error.is_timeout(), "round {round}: the server hung");
                assert!(
                    error.code().is_some(),
                    "round {round}: {error} is not an error reply"
                );
                if let (Some(key), Some(before)) = (&key, before) {
                    let after = lasting_snapshot(&mut con, key);
                    assert_eq!(after, Some(before), "round {round}: {words:?}");
                }
                errors += 1;
            }
        }
    }
    let pong: String = call(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
    assert!(errors > 5000, "only {errors} vectors were rejected");
    assert!(replies > 200, "only {replies} vectors were accepted");
    assert!(
        !server.log().contains("internal error"),
        "a command panicked:\n{}",
        server.log()
    );
}

#[test]
fn mutated_state_never_breaks_the_server() {
    let server = Server::start();
    let mut con = connect_with_timeout(&server);
    let mut random = Random::new(0xf022_0002);
    let policies: Vec<Policy> = [
        ["RL.FIXED", "5", "1h"].as_slice(),
        &["RL.SLIDING", "50", "1h"],
        &["RL.TOKENBUCKET", "5", "3", "1h"],
        &["RL.GCRA", "5", "3", "1h"],
        &["RL.THROTTLE", "1h"],
        &["RL.DEBOUNCE", "1h"],
    ]
    .iter()
    .map(|words| parse_policy(words))
    .collect();

    let mut loaded = 0;
    for round in 0..3000 {
        let policy = random.pick(&policies);
        let mut limiter = policy.fresh();
        for step in 0..random.below(20) {
            apply(
                &mut limiter,
                policy,
                1_796_000_000_000 + step * 7,
                1 + random.below(3),
                false,
            );
        }
        let mut bytes = encoding::encode(&limiter);
        for _ in 0..1 + random.below(3) {
            let index = random.below(bytes.len() as u64) as usize;
            bytes[index] = random.below(256) as u8;
        }
        if random.chance(10) {
            bytes.truncate(random.below(bytes.len() as u64) as usize);
        }

        let result: redis::RedisResult<String> = redis::cmd("RL.LOAD")
            .arg("state")
            .arg(bytes.as_slice())
            .query(&mut con);
        if result.is_ok() {
            loaded += 1;
            // Whatever state loaded must go on working with every command.
            let _: redis::Value = call(&mut con, &["RL.INFO", "state"]);
            for command in COMMANDS.iter().take(6) {
                let words: &[&str] = match *command {
                    "RL.FIXED" => &["RL.FIXED", "state", "5", "1h"],
                    "RL.SLIDING" => &["RL.SLIDING", "state", "50", "1h", "COST", "2"],
                    "RL.TOKENBUCKET" => &["RL.TOKENBUCKET", "state", "5", "3", "1h"],
                    "RL.GCRA" => &["RL.GCRA", "state", "9", "3", "1m"],
                    "RL.THROTTLE" => &["RL.THROTTLE", "state", "1m"],
                    _ => &["RL.DEBOUNCE", "state", "1m"],
                };
                let _: redis::RedisResult<redis::Value> = common::try_call(&mut con, words);
            }
            let _: () = call(&mut con, &["DEL", "state"]);
        }
        assert!(round % 500 != 0 || call::<String>(&mut con, &["PING"]) == "PONG");
    }
    assert!(loaded > 100, "only {loaded} mutated states loaded");
    assert!(
        !server.log().contains("internal error"),
        "a command panicked:\n{}",
        server.log()
    );
}

fn parse_policy(words: &[&str]) -> Policy {
    let algorithm = valkey_ratelimit::limiter::Algorithm::from_name(&words[0].as_bytes()[3..])
        .expect("the command names an algorithm");
    let args: Vec<&[u8]> = words[1..].iter().map(|word| word.as_bytes()).collect();
    valkey_ratelimit::args::parse_policy(words[0], algorithm, args.as_slice()).unwrap()
}
