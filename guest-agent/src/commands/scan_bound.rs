//! How many helper calls one pass over a map may take. The kernel's sweep
//! reads the clock after every HTAB_SWEEP_CLOCK_BATCH buckets or elements and
//! after every bucket it locked to evict (at most one per stale entry), so
//! even a call whose budget is already spent moves the cursor that far. The
//! selftests and the scan bench bound their loops by it: a pass that needs
//! more calls is a bug (a cursor that restarts or starves part of the map).

/// HTAB_SWEEP_CLOCK_BATCH in the hashtab patch.
pub const CLOCK_BATCH: u64 = 16;

/// Calls a pass over `buckets` buckets holding at most `entries` entries may
/// take when every call stops at its first look at the clock.
pub fn pass_bound(buckets: u64, entries: u64) -> u64 {
    (buckets + entries) / CLOCK_BATCH + entries + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_per_batch_and_per_entry() {
        // an empty 256k-bucket map: one call per 16 buckets, plus the end
        assert_eq!(pass_bound(262_144, 0), 16_386);
        // 16k entries in 16k buckets: the batches plus a locked bucket each
        assert_eq!(pass_bound(16_384, 16_384), 2_048 + 16_384 + 2);
    }
}
