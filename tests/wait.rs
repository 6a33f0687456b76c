//! `RL.WAIT`: blocked clients are released when the limiter allows, in arrival order, or at
//! their timeout. A client that disconnects is dropped, and waiting clients cost no CPU.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    blocked_waiters, call, command, decide, error_of, info_field, info_number, send_blocking,
    wait_until, Server,
};

/// How much later than its retry time a waiter may be released on a loaded machine.
const LATE_MS: u128 = 60;

fn wait_calls(con: &mut redis::Connection) -> u64 {
    info_field(con, "ratelimit", "ratelimit_rl_wait_calls")
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn waiter_is_released_at_retry_after() {
    let server = Server::start();
    let mut con = server.connect();
    let bucket = ["RL.TOKENBUCKET", "k", "1", "1", "300ms"];
    // Timed from before the charge, so that a pause of this thread cannot shorten the wait.
    let started = Instant::now();
    decide(&mut con, &bucket);
    let retry_after_ms = decide(
        &mut con,
        &["RL.TOKENBUCKET", "k", "1", "1", "300ms", "PEEK"],
    )[3];

    let reply = decide(
        &mut con,
        &["RL.WAIT", "5s", "TOKENBUCKET", "k", "1", "1", "300ms"],
    );
    let waited_ms = started.elapsed().as_millis();
    assert_eq!(reply, [1, 1, 0, 0, 300]);
    assert!(waited_ms + 5 >= 300, "released after {waited_ms} ms");
    assert!(
        waited_ms <= retry_after_ms as u128 + LATE_MS,
        "released after {waited_ms} ms"
    );
}

#[test]
fn allowed_request_does_not_block() {
    let server = Server::start();
    let mut con = server.connect();
    let started = Instant::now();
    let reply = decide(&mut con, &["RL.WAIT", "5s", "FIXED", "k", "2", "1h"]);
    assert_eq!(reply, [1, 2, 1, 0, 3_600_000]);
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let server = Server::start();
    let mut con = server.connect();
    let started = Instant::now();
    decide(&mut con, &["RL.GCRA", "k", "1", "1", "150ms"]);

    let handles: Vec<_> = (0..5)
        .map(|index| {
            let mut waiter = server.connect();
            // Each waiter arrives after the one before it: the server counts a call on arrival.
            wait_until(Duration::from_secs(5), "the previous waiter", || {
                wait_calls(&mut con) == index as u64
            });
            std::thread::spawn(move || {
                let reply = decide(
                    &mut waiter,
                    &["RL.WAIT", "5s", "GCRA", "k", "1", "1", "150ms"],
                );
                (index, reply[0], started.elapsed().as_millis())
            })
        })
        .collect();
    let mut released: Vec<(usize, i64, u128)> = handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    released.sort_by_key(|(_, _, at_ms)| *at_ms);

    let order: Vec<usize> = released.iter().map(|(index, _, _)| *index).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
    assert!(released.iter().all(|(_, allowed, _)| *allowed == 1));
    // One token comes back every 150 ms, so the fifth waiter is released after about 750 ms.
    let last_ms = released[4].2;
    assert!(
        last_ms >= 740,
        "the fifth waiter was released after {last_ms} ms"
    );
    assert!(
        last_ms <= 750 + LATE_MS * 2,
        "the fifth waiter was released after {last_ms} ms"
    );
}

#[test]
fn timeout_replies_denied() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "k", "1", "1h"]);
    let started = Instant::now();
    let reply = decide(&mut con, &["RL.WAIT", "200ms", "FIXED", "k", "1", "1h"]);
    let waited_ms = started.elapsed().as_millis();
    assert_eq!(reply[0], 0);
    assert!(reply[3] > 3_500_000, "{reply:?}");
    assert!(waited_ms >= 195, "timed out after {waited_ms} ms");
    assert!(waited_ms <= 200 + LATE_MS, "timed out after {waited_ms} ms");
    assert_eq!(info_number(&mut con, "k", "used"), 1);
    assert_eq!(blocked_waiters(&mut con), 0);
}

#[test]
fn zero_timeout_waits_until_allowed() {
    let server = Server::start();
    let mut con = server.connect();
    for zero in ["0", "0s", "0.0ms"] {
        let started = Instant::now();
        decide(&mut con, &["RL.THROTTLE", "k", "200ms"]);
        let reply = decide(&mut con, &["RL.WAIT", zero, "THROTTLE", "k", "200ms"]);
        assert_eq!(reply, [1, 1, 0, 0, 200], "{zero}");
        assert!(started.elapsed() >= Duration::from_millis(190), "{zero}");
        let _: () = call(&mut con, &["DEL", "k"]);
    }
}

#[test]
fn request_that_can_never_pass_replies_at_once() {
    let server = Server::start();
    let mut con = server.connect();
    let started = Instant::now();
    let reply = decide(
        &mut con,
        &["RL.WAIT", "5s", "SLIDING", "k", "5", "1h", "COST", "6"],
    );
    assert_eq!(reply, [0, 5, 5, -1, 0]);
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn disconnected_waiter_is_dropped_and_charged_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.TOKENBUCKET", "k", "1", "1", "400ms"]);

    let disconnecting = send_blocking(
        &server,
        &["RL.WAIT", "5s", "TOKENBUCKET", "k", "1", "1", "400ms"],
    );
    wait_until(Duration::from_secs(5), "the first waiter", || {
        blocked_waiters(&mut con) == 1
    });
    let second = {
        let mut waiter = server.connect();
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = decide(
                &mut waiter,
                &["RL.WAIT", "5s", "TOKENBUCKET", "k", "1", "1", "400ms"],
            );
            (reply, started.elapsed())
        })
    };
    wait_until(Duration::from_secs(5), "the second waiter", || {
        blocked_waiters(&mut con) == 2
    });
    drop(disconnecting);
    wait_until(Duration::from_secs(5), "the dropped waiter", || {
        blocked_waiters(&mut con) == 1
    });

    let (reply, waited) = second.join().unwrap();
    assert_eq!(reply[0], 1);
    // Both waits are calls; only the one that got its reply has an outcome.
    let counter = |con: &mut redis::Connection, name: &str| -> String {
        info_field(con, "ratelimit", &format!("ratelimit_rl_wait_{name}")).unwrap()
    };
    assert_eq!(counter(&mut con, "calls"), "2");
    assert_eq!(counter(&mut con, "allowed"), "1");
    assert_eq!(counter(&mut con, "denied"), "0");
    assert!(
        waited < Duration::from_millis(400 + LATE_MS as u64),
        "{waited:?}"
    );
    assert_eq!(info_number(&mut con, "k", "remaining"), 0);
    assert_eq!(blocked_waiters(&mut con), 0);
}

#[test]
fn transaction_and_script_do_not_block() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "k", "1", "1h"]);
    let started = Instant::now();
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("RL.WAIT")
        .arg("5s")
        .arg("FIXED")
        .arg("k")
        .arg("1")
        .arg("1h");
    let replies: Vec<Vec<i64>> = pipe.query(&mut con).unwrap();
    assert_eq!(replies[0][0], 0);
    let script = "return server.call('RL.WAIT', '5s', 'FIXED', KEYS[1], 1, '1h')";
    let reply: Vec<i64> = call(&mut con, &["EVAL", script, "1", "k"]);
    assert_eq!(reply[0], 0);
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[test]
fn all_waits_for_every_limiter() {
    let server = Server::start();
    let mut con = server.connect();
    let words = [
        "RL.WAIT", "5s", "ALL", "2", "{u}:a", "{u}:b", "FIXED", "10", "1h", "THROTTLE", "250ms",
    ];
    let started = Instant::now();
    let first: Vec<Vec<i64>> = call(&mut con, &words);
    assert_eq!(first[0][0], 1);
    let second: Vec<Vec<i64>> = call(&mut con, &words);
    assert_eq!(second.len(), 3);
    assert_eq!(second[0][0], 1);
    assert!(started.elapsed() >= Duration::from_millis(240));
    assert_eq!(info_number(&mut con, "{u}:a", "used"), 2);
}

#[test]
fn getkeys_finds_the_waited_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let keys: Vec<String> = call(
        &mut con,
        &[
            "COMMAND", "GETKEYS", "RL.WAIT", "5s", "FIXED", "k", "1", "1s",
        ],
    );
    assert_eq!(keys, ["k"]);
    let keys: Vec<String> = call(
        &mut con,
        &[
            "COMMAND", "GETKEYS", "RL.WAIT", "5s", "ALL", "2", "a", "b", "FIXED", "1", "1s",
            "FIXED", "1", "1s",
        ],
    );
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn bad_arguments_get_precise_errors() {
    let server = Server::start();
    let mut con = server.connect();
    let cases: [(&[&str], &str); 4] = [
        (
            &["RL.WAIT", "5s", "DEBOUNCE", "k", "1s"],
            "ERR RL.WAIT algorithm must be FIXED, SLIDING, TOKENBUCKET, GCRA, THROTTLE or ALL; a \
             debounce cannot be waited on, since each request restarts its quiet period; got \
             'DEBOUNCE'",
        ),
        (
            &["RL.WAIT", "-1", "FIXED", "k", "1", "1s"],
            "ERR RL.WAIT timeout must be 0 (wait forever) or a positive duration such as 60, \
             500ms or 1.5m; got '-1'",
        ),
        (
            &["RL.WAIT", "5s", "FIXED", "k", "1", "1s", "PEEK"],
            "ERR RL.WAIT cannot wait on a PEEK; call the command itself with PEEK",
        ),
        (
            &["RL.WAIT", "5s", "FIXED", "k", "0", "1s"],
            "ERR RL.WAIT limit must be an integer from 1 to 9223372036854775807; got '0'",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(error_of(&mut con, words), expected);
    }
}

/// CPU time the process has used, in clock ticks of 1/100 s.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name is in parentheses and may contain spaces; fields follow it.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let user: u64 = fields[11].parse().unwrap();
    let system: u64 = fields[12].parse().unwrap();
    user + system
}

#[test]
fn thousand_waiters_cost_no_cpu() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.TOKENBUCKET", "k", "1", "1", "1h"]);

    let wait = command(&["RL.WAIT", "2s", "TOKENBUCKET", "k", "1", "1", "1h"]);
    let mut waiters: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            stream.write_all(&wait).unwrap();
            stream
        })
        .collect();
    wait_until(Duration::from_secs(10), "1000 waiters", || {
        blocked_waiters(&mut con) == 1000
    });

    let before = cpu_ticks(server.pid());
    common::sleep_ms(1000);
    let spent = cpu_ticks(server.pid()) - before;
    assert!(
        spent <= 5,
        "the server spent {spent} ticks of CPU while 1000 clients waited"
    );

    for stream in &mut waiters {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reply = [0u8; 64];
        let len = stream.read(&mut reply).unwrap();
        assert!(
            reply[..len].starts_with(b"*5\r\n:0\r\n"),
            "{:?}",
            String::from_utf8_lossy(&reply[..len])
        );
    }
    assert_eq!(blocked_waiters(&mut con), 0);
}

/// Returns the id of the connection's client, for `CLIENT UNBLOCK`.
fn client_id(con: &mut redis::Connection) -> i64 {
    call(con, &["CLIENT", "ID"])
}

#[test]
fn client_unblock_ends_a_wait() {
    let server = Server::start();
    let mut con = server.connect();
    decide(&mut con, &["RL.FIXED", "k", "1", "1h"]);

    for mode in ["TIMEOUT", "ERROR"] {
        let mut waiter = server.connect();
        let id = client_id(&mut waiter);
        let handle = std::thread::spawn(move || {
            common::try_call::<Vec<i64>>(&mut waiter, &["RL.WAIT", "0", "FIXED", "k", "1", "1h"])
        });
        wait_until(Duration::from_secs(5), "the waiter", || {
            blocked_waiters(&mut con) == 1
        });
        let unblocked: i64 = call(&mut con, &["CLIENT", "UNBLOCK", &id.to_string(), mode]);
        assert_eq!(unblocked, 1, "{mode}");

        let reply = handle.join().unwrap();
        match mode {
            "TIMEOUT" => assert_eq!(reply.unwrap()[0], 0),
            _ => assert!(common::error_text(&reply.unwrap_err()).starts_with("UNBLOCKED")),
        }
        assert_eq!(blocked_waiters(&mut con), 0, "{mode}");
        assert_eq!(info_number(&mut con, "k", "used"), 1, "{mode}");
    }
}

#[test]
fn waiter_is_not_granted_over_maxmemory() {
    let server = Server::start_with(&["--maxmemory-policy", "noeviction"]);
    let mut con = server.connect();
    // The interval outlasts the setup below, so the waiter is still blocked when memory runs
    // out, and the sleep outlasts the interval, so the grant would be due.
    decide(&mut con, &["RL.THROTTLE", "k", "1s"]);
    let words = [
        "RL.WAIT", "5s", "ALL", "2", "k", "new", "THROTTLE", "1s", "THROTTLE", "1s",
    ];
    let waiter = {
        let mut waiter = server.connect();
        std::thread::spawn(move || call::<Vec<Vec<i64>>>(&mut waiter, &words))
    };
    wait_until(Duration::from_secs(5), "the waiter", || {
        blocked_waiters(&mut con) == 1
    });
    let _: () = call(&mut con, &["CONFIG", "SET", "maxmemory", "1"]);

    common::sleep_ms(1200);
    let exists: i64 = call(&mut con, &["EXISTS", "new"]);
    assert_eq!(exists, 0, "granted over maxmemory");
    assert_eq!(blocked_waiters(&mut con), 1);

    let _: () = call(&mut con, &["CONFIG", "SET", "maxmemory", "0"]);
    let replies = waiter.join().unwrap();
    assert_eq!(replies[0][0], 1);
}
