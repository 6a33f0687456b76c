//! Regression tests for attacks that once broke the server through the module. They cover a
//! blocked `RL.WAIT` whose next check was too far off for the server's timer arithmetic,
//! waiters released while `CLIENT PAUSE WRITE` held writes, an `RL.ALL` with tens of thousands
//! of keys, and bad `RL.WAIT` timeouts.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    blocked_waiters, call, command, decide, error_of, info_field, read_reply, send_blocking,
    sleep_ms, wait_until, Server,
};

/// Sends PING on a new connection and returns an error unless PONG arrives within `timeout`.
fn ping_within(server: &Server, timeout: Duration) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", server.port)).map_err(|error| error.to_string())?;
    stream
        .write_all(&command(&["PING"]))
        .map_err(|error| error.to_string())?;
    let reply = read_reply(&mut stream, timeout);
    if reply.starts_with("+PONG") {
        Ok(())
    } else {
        Err(reply)
    }
}

#[test]
fn huge_wait_retry_keeps_server_responsive() {
    let server = Server::start();
    let mut connection = server.connect();
    // An empty bucket of 5849 tokens refilled at 1 per 100 years takes about 1.8445e16 ms to
    // refill. The server's module timer multiplies that by 1000 into microseconds, which wraps
    // past 2^64 to a time in the past.
    let bucket = [
        "RL.TOKENBUCKET",
        "far",
        "5849",
        "1",
        "36500d",
        "COST",
        "5849",
    ];
    assert_eq!(decide(&mut connection, &bucket)[0], 1);
    decide(&mut connection, &["RL.THROTTLE", "near", "1s"]);

    let mut near = send_blocking(&server, &["RL.WAIT", "5s", "THROTTLE", "near", "1s"]);
    wait_until(Duration::from_secs(5), "the first waiter", || {
        blocked_waiters(&mut connection) == 1
    });
    let mut wait_far = vec!["RL.WAIT", "0"];
    wait_far.extend(&["TOKENBUCKET", "far", "5849", "1", "36500d", "COST", "5849"]);
    let _far = send_blocking(&server, &wait_far);
    wait_until(Duration::from_secs(5), "the second waiter", || {
        blocked_waiters(&mut connection) == 2
    });

    // The near waiter is released after 1 s, and then the only check left is the far one.
    sleep_ms(1500);
    assert_eq!(ping_within(&server, Duration::from_secs(3)), Ok(()));
    let near_reply = read_reply(&mut near, Duration::from_secs(3));
    assert!(
        near_reply.starts_with("*5\r\n:1\r\n"),
        "near waiter got {near_reply:?}"
    );
}

#[test]
fn pause_release_keeps_aof_server_up() {
    let server = Server::start_with(&["--appendonly", "yes"]);
    let mut connection = server.connect();
    decide(&mut connection, &["RL.THROTTLE", "k", "2s"]);
    let _waiter = send_blocking(&server, &["RL.WAIT", "10s", "THROTTLE", "k", "2s"]);
    wait_until(Duration::from_secs(5), "the waiter", || {
        blocked_waiters(&mut connection) == 1
    });

    let _: String = call(&mut connection, &["CLIENT", "PAUSE", "4000", "WRITE"]);
    assert_eq!(
        blocked_waiters(&mut connection),
        1,
        "released before the pause"
    );
    // The waiter's retry time passes while writes are paused, and it stays blocked.
    sleep_ms(2500);
    assert_eq!(
        blocked_waiters(&mut connection),
        1,
        "released during the pause"
    );
    let alive = ping_within(&server, Duration::from_secs(3));
    assert_eq!(alive, Ok(()), "server log:\n{}", server.log());
    assert!(
        !server.log().contains("ASSERTION FAILED"),
        "server log:\n{}",
        server.log()
    );
}

#[test]
fn pause_release_charges_waiter() {
    let server = Server::start();
    let mut connection = server.connect();
    let throttle = ["RL.THROTTLE", "k", "2s"];
    decide(&mut connection, &throttle);
    let started = Instant::now();
    let mut waiter = send_blocking(&server, &["RL.WAIT", "10s", "THROTTLE", "k", "2s"]);
    wait_until(Duration::from_secs(5), "the waiter", || {
        blocked_waiters(&mut connection) == 1
    });

    let _: String = call(&mut connection, &["CLIENT", "PAUSE", "3000", "WRITE"]);
    let reply = read_reply(&mut waiter, Duration::from_secs(6));
    assert!(reply.starts_with("*5\r\n:1\r\n"), "waiter got {reply:?}");
    let granted = started.elapsed();
    // The next call comes after the pause, less than 2 s after the waiter was allowed.
    wait_until(Duration::from_secs(5), "the end of the pause", || {
        info_field(&mut connection, "clients", "paused_actions").as_deref() == Some("none")
    });
    let since_grant = started.elapsed() - granted;
    assert!(since_grant < Duration::from_millis(1800), "{since_grant:?}");
    let next = decide(&mut connection, &throttle);
    assert_eq!(
        next[0], 0,
        "a second event within the interval was allowed: {next:?}"
    );
}

/// Tens of thousands of keys are parsed and rejected whole. The duplicate check once compared
/// every pair of keys, which stalled the server for seconds at this size. This test checks
/// that the rejection changes nothing, and tests/all.rs bounds the time of that check.
#[test]
fn all_with_many_keys_changes_nothing() {
    let server = Server::start();
    let mut connection = server.connect();
    let numkeys = 60_000;
    let mut all = redis::cmd("RL.ALL");
    all.arg(numkeys);
    for index in 0..numkeys {
        all.arg(format!("key:{index}"));
    }
    for _ in 1..numkeys {
        all.arg("THROTTLE").arg("1s");
    }
    // The last policy is invalid, so the command fails after parsing and changes nothing.
    all.arg("THROTTLE").arg("0");

    let reply: redis::RedisResult<redis::Value> = all.query(&mut connection);
    let error = reply.expect_err("the last policy is invalid");
    assert!(
        common::error_text(&error).contains("interval must be a positive duration"),
        "{error}"
    );
    let keys: i64 = call(&mut connection, &["DBSIZE"]);
    assert_eq!(keys, 0);
}

#[test]
fn wait_timeout_errors_name_rule() {
    let server = Server::start();
    let mut connection = server.connect();
    let too_long = error_of(
        &mut connection,
        &["RL.WAIT", "36501d", "THROTTLE", "k", "1s"],
    );
    assert!(too_long.contains("at most 100 years"), "{too_long}");
    let too_short = error_of(
        &mut connection,
        &["RL.WAIT", "0.5ms", "THROTTLE", "k", "1s"],
    );
    assert!(too_short.contains("at least 1ms"), "{too_short}");
}
