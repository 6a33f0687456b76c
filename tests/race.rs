//! Concurrent clients on one key: the decision is atomic, so no request slips through.

mod common;

use common::{call, Server};

#[test]
fn twenty_clients_get_exactly_the_limit() {
    let server = Server::start();
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let mut con = server.connect();
            std::thread::spawn(move || {
                let mut allowed = 0;
                for _ in 0..50 {
                    let reply: Vec<i64> = call(&mut con, &["RL.SLIDING", "k", "100", "10s"]);
                    allowed += reply[0];
                }
                allowed
            })
        })
        .collect();
    let allowed: i64 = handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .sum();
    assert_eq!(allowed, 100);
}

#[test]
fn concurrent_token_bucket_never_exceeds_capacity() {
    let server = Server::start();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let mut con = server.connect();
            std::thread::spawn(move || {
                (0..100)
                    .map(|_| {
                        let reply: Vec<i64> =
                            call(&mut con, &["RL.TOKENBUCKET", "k", "50", "1", "1h"]);
                        reply[0]
                    })
                    .sum::<i64>()
            })
        })
        .collect();
    let allowed: i64 = handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .sum();
    assert_eq!(allowed, 50);
}
