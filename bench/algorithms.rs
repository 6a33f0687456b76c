//! Micro benchmarks of the pure code: one decision of each algorithm on the allowed and on
//! the denied path, argument parsing, and packing a limiter the way a key stores it.
//!
//! `cargo bench --bench algorithms` (or `make bench`). Times are per call, on whatever machine
//! runs them; compare them with each other, not across machines.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use valkey_ratelimit::args::{parse_duration, parse_request};
use valkey_ratelimit::encoding;
use valkey_ratelimit::fixed::FixedParams;
use valkey_ratelimit::gcra::RateParams;
use valkey_ratelimit::limiter::{apply, Algorithm, Limiter, Policy};
use valkey_ratelimit::sliding::SlidingParams;

const START_MS: u64 = 1_796_000_000_000;

fn policies() -> Vec<(&'static str, Policy)> {
    vec![
        (
            "fixed",
            Policy::Fixed(FixedParams {
                limit: 100,
                window_ms: 60_000,
            }),
        ),
        (
            "sliding",
            Policy::Sliding(SlidingParams {
                limit: 100,
                window_ms: 60_000,
                precision_ms: 1,
            }),
        ),
        (
            "tokenbucket",
            Policy::TokenBucket(RateParams {
                capacity: 100,
                tokens: 10,
                period_ms: 1000,
            }),
        ),
        (
            "gcra",
            Policy::Gcra(RateParams {
                capacity: 100,
                tokens: 10,
                period_ms: 1000,
            }),
        ),
        ("throttle", Policy::Throttle { interval_ms: 1000 }),
        ("debounce", Policy::Debounce { interval_ms: 1000 }),
    ]
}

/// Builds a limiter that allows the next request: a fresh one.
fn fresh(policy: &Policy) -> Limiter {
    policy.fresh()
}

/// Builds a limiter that denies the next request, charged up to its limit at one unit a
/// millisecond.
fn full(policy: &Policy) -> (Limiter, u64) {
    let mut limiter = policy.fresh();
    let mut now_ms = START_MS;
    while apply(&mut limiter, policy, now_ms, 1, false)
        .decision
        .allowed
    {
        now_ms += 1;
    }
    (limiter, now_ms)
}

fn decisions(c: &mut Criterion) {
    for (name, policy) in policies() {
        c.bench_function(&format!("{name}/allowed"), |b| {
            b.iter_batched_ref(
                || fresh(&policy),
                |limiter| apply(limiter, black_box(&policy), black_box(START_MS), 1, false),
                BatchSize::SmallInput,
            )
        });
        let (limiter, now_ms) = full(&policy);
        c.bench_function(&format!("{name}/denied"), |b| {
            b.iter(|| black_box(&limiter).decide(black_box(now_ms), 1, false))
        });
    }
}

fn sliding_growth(c: &mut Criterion) {
    for limit in [10u64, 1_000, 65_536] {
        let policy = Policy::Sliding(SlidingParams {
            limit,
            window_ms: 3_600_000,
            precision_ms: 1,
        });
        let (limiter, now_ms) = full(&policy);
        c.bench_function(&format!("sliding/denied/full_log_{limit}"), |b| {
            b.iter(|| black_box(&limiter).decide(black_box(now_ms), black_box(limit / 2), false))
        });
    }
}

fn parsing(c: &mut Criterion) {
    let args: Vec<&[u8]> = vec![b"100", b"1.5m", b"COST", b"3", b"PEEK"];
    c.bench_function("parse/sliding_request", |b| {
        b.iter(|| {
            parse_request(
                "RL.SLIDING",
                Algorithm::Sliding,
                black_box(args.as_slice()),
                65_536,
            )
        })
    });
    c.bench_function("parse/duration", |b| {
        b.iter(|| parse_duration("RL.FIXED", "window", black_box(b"1500ms")))
    });
}

fn packing(c: &mut Criterion) {
    let policy = Policy::TokenBucket(RateParams {
        capacity: 100,
        tokens: 10,
        period_ms: 1000,
    });
    let (limiter, _) = full(&policy);
    c.bench_function("encoding/tokenbucket_round_trip", |b| {
        b.iter(|| encoding::decode(&encoding::encode(black_box(&limiter))))
    });
}

criterion_group!(benches, decisions, sliding_growth, parsing, packing);
criterion_main!(benches);
