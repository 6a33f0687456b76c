//! Module configs, readable and settable as `ratelimit.<name>` with CONFIG GET/SET, in
//! valkey.conf and as arguments after the module path in `loadmodule`.

use std::sync::atomic::{AtomicI64, Ordering};

/// Config `ratelimit.sliding-max-entries`: the most entries one sliding log may need, that is
/// min(limit, window / precision). A sliding command over it fails with an error that names a
/// PRECISION that fits. Each entry costs 2 to 14 bytes.
pub const SLIDING_MAX_ENTRIES_NAME: &str = "sliding-max-entries";
pub const SLIDING_MAX_ENTRIES_DEFAULT: i64 = 65_536;
pub const SLIDING_MAX_ENTRIES_MIN: i64 = 1;
/// The same bound as `sliding::MAX_LOG_ENTRIES`, which RDB loading checks.
pub const SLIDING_MAX_ENTRIES_MAX: i64 = 1 << 24;

pub static SLIDING_MAX_ENTRIES: AtomicI64 = AtomicI64::new(SLIDING_MAX_ENTRIES_DEFAULT);

/// Returns the current value of `ratelimit.sliding-max-entries`.
pub fn sliding_max_entries() -> u64 {
    SLIDING_MAX_ENTRIES
        .load(Ordering::Relaxed)
        .max(SLIDING_MAX_ENTRIES_MIN) as u64
}
