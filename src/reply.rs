//! Replies: the five-integer decision array and the `RL.INFO` map.

use crate::all::AllOutcome;
use crate::decision::Decision;
use crate::ffi::Ctx;
use crate::limiter::{InfoValue, Limiter};

/// Replies `[allowed, limit, remaining, retry_after_ms, reset_after_ms]`.
pub fn decision(ctx: &Ctx, decision: &Decision) {
    ctx.reply_array(5);
    ctx.reply_i64(i64::from(decision.allowed));
    ctx.reply_u64(decision.limit);
    ctx.reply_u64(decision.remaining);
    ctx.reply_i64(decision.retry_after_ms);
    ctx.reply_u64(decision.reset_after_ms);
}

/// Replies the `RL.ALL` arrays: the combined decision, then each limiter's own, in key order.
pub fn all(ctx: &Ctx, outcome: &AllOutcome) {
    ctx.reply_array(1 + outcome.decisions.len());
    decision(ctx, &outcome.combined);
    for limiter_decision in &outcome.decisions {
        decision(ctx, limiter_decision);
    }
}

/// Replies the `RL.INFO` fields as a map (RESP3) or a flat array of names and values (RESP2).
pub fn info(ctx: &Ctx, limiter: &Limiter, now_ms: u64) {
    let fields = limiter.info(now_ms);
    ctx.reply_map(fields.len());
    for (name, value) in fields {
        ctx.reply_bulk(name.as_bytes());
        match value {
            InfoValue::Text(text) => ctx.reply_bulk(text.as_bytes()),
            InfoValue::Number(number) => ctx.reply_u64(u64::try_from(number).unwrap_or(u64::MAX)),
        }
    }
}
