//! An async Rust client of valkey-ratelimit with the `redis` crate: one request checked
//! against a per-user and a per-service limit in one round trip, and a worker that waits for
//! its token inside the server instead of sleeping and retrying.
//!
//! ```text
//! VALKEY_URL=redis://127.0.0.1:6379/ cargo run --example rust_client
//! ```

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult};

/// The longest RL.WAIT of this example. The redis crate's own response timeout is 500 ms, too
/// short for a wait, so the workers' connections read for this plus a margin.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The reply of every limiting command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decision {
    allowed: bool,
    limit: i64,
    remaining: i64,
    /// 0 if allowed, -1 if the request can never be allowed, else milliseconds to wait.
    retry_after_ms: i64,
    reset_after_ms: i64,
}

impl Decision {
    fn from_reply(reply: &[i64]) -> Decision {
        Decision {
            allowed: reply[0] == 1,
            limit: reply[1],
            remaining: reply[2],
            retry_after_ms: reply[3],
            reset_after_ms: reply[4],
        }
    }
}

/// Checks one request against the user's and the service's limits; it is charged to both or,
/// if either denies it, to neither. Returns the combined decision.
async fn check_request(
    con: &mut MultiplexedConnection,
    user: &str,
    service: &str,
) -> RedisResult<Decision> {
    // The hash tag keeps both keys in one slot, which a cluster requires of RL.ALL.
    let user_key = format!("rate:{{{service}}}:user:{user}");
    let service_key = format!("rate:{{{service}}}:service");
    let replies: Vec<Vec<i64>> = redis::cmd("RL.ALL")
        .arg(2)
        .arg(&user_key)
        .arg(&service_key)
        .arg(&["SLIDING", "5", "1m"])
        .arg(&["TOKENBUCKET", "100", "50", "1s"])
        .query_async(con)
        .await?;
    Ok(Decision::from_reply(&replies[0]))
}

/// Takes one token for a job, waiting inside the server for up to [`WAIT_TIMEOUT`].
async fn acquire_job_token(con: &mut MultiplexedConnection) -> RedisResult<Decision> {
    let reply: Vec<i64> = redis::cmd("RL.WAIT")
        .arg(format!("{}ms", WAIT_TIMEOUT.as_millis()))
        .arg(&["TOKENBUCKET", "jobs:mailer", "2", "4", "1s"])
        .query_async(con)
        .await?;
    Ok(Decision::from_reply(&reply))
}

#[tokio::main]
async fn main() -> RedisResult<()> {
    let url = std::env::var("VALKEY_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;

    for attempt in 1..=6 {
        let decision = check_request(&mut con, "42", "search").await?;
        println!("request {attempt}: {decision:?}");
    }

    // A blocked RL.WAIT holds its connection, so each worker takes its own.
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(Some(WAIT_TIMEOUT + Duration::from_secs(1)));
    let mut workers = Vec::new();
    for worker in 1..=4 {
        let mut con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        workers.push(tokio::spawn(async move {
            let decision = acquire_job_token(&mut con).await?;
            println!("worker {worker}: {decision:?}");
            RedisResult::Ok(decision)
        }));
    }
    for worker in workers {
        worker.await.expect("the worker task finishes")?;
    }
    Ok(())
}
