//! The `custody` binary's allocator: mimalloc, tuned for an audit.
//!
//! An audit decodes, checks and frees a statement per entry on several
//! threads, millions per run, and frees each chunk's buffers moments before
//! the next chunk allocates as many again. With glibc's allocator that
//! churn cost about a tenth of the audit's CPU. mimalloc is built without
//! transparent huge pages (the `no_thp` feature: a 2 MiB page zeroed on
//! first touch for every region it hands back and takes again cost more
//! than the allocator saved), and returns freed memory to the system only
//! after it has been unused for [`PURGE_DELAY_MS`] instead of mimalloc's
//! default of one second, which a replay reuses memory faster than; a
//! long-running `custody monitor` still gives memory back after a burst.
//! docs/performance.md ("Second round, continued") has the figures.

use libmimalloc_sys::mi_option_t;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc 3's `mimalloc.h` (the 16th entry of
/// `mi_option_e`), which libmimalloc-sys does not name; the versions are
/// pinned in the workspace manifest and `the_purge_delay_option_is_the_one_meant`
/// reads the option's documented default through this index.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// How long freed memory stays with the process before it is returned.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// Applies the tuning; call first thing in `main`.
pub fn tune() {
    // SAFETY: sets one of mimalloc's process-wide options, which it reads
    // when it next purges; any value is valid for this option.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as std::ffi::c_long) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mimalloc 3 defaults the purge delay to 1,000 ms (`options.c`); no
    /// neighbouring option has that default, so reading 1,000 through the
    /// index before tuning shows the index names the purge delay.
    #[test]
    fn the_purge_delay_option_is_the_one_meant() {
        // SAFETY: reads a process-wide option.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(before, 1_000);
        tune();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after as i64, PURGE_DELAY_MS);
    }
}
