//! Seed 002, "kernel.h: Add non_block_start/end()" (Aug 2019): the oom reaper calls mmu notifiers
//! in non-blocking mode, where a callback must not sleep, and no spinlock, preempt-off or irqs-off
//! section arms the `might_sleep()` checks: `non_block_start()` / `non_block_end()` do. A
//! sleeping lock, `might_sleep()`, a blocking allocation or a condvar wait inside is reported as
//! `BUG: sleeping function called from invalid context`; a spinning lock is not. Being inside
//! `fs_reclaim` is not a non-blocking section: reclaim sleeps.
//!
//! Every case runs in a child process of its own (a fresh validator), with real threads.
//!
//! Run: `cargo run -p lockdep --example seed_002_non_block` (or with a case name).

#[cfg(feature = "disabled")]
fn main() {
    eprintln!(
        "built with the `disabled` feature: lockdep validates nothing, so there is no report"
    );
}

#[cfg(not(feature = "disabled"))]
fn main() {
    validated::main()
}

#[cfg(not(feature = "disabled"))]
#[path = "support/seeds.rs"]
mod seeds;

#[cfg(not(feature = "disabled"))]
mod validated {
    use std::time::Duration;

    use lockdep::annotate::{self, FS_RECLAIM, MMU_NOTIFIER_INVALIDATE_RANGE_START as MMU};
    use lockdep::gfp::{GFP_KERNEL, GFP_NOIO, GFP_NOWAIT};
    use lockdep::sync::GenericMutex;

    use super::seeds;
    use lockdep::{lock_class, Acquire, Condvar, LockMap, Mutex, ReportKind, WaitType};
    use seeds::*;

    const SLEEP: &[ReportKind] = &[ReportKind::SleepInvalidContext];

    const CASES: &[Case] = &[
        (
            "nonblock-sleeping-lock",
            || oom_reap(|| drop(SVMM.lock())),
            SLEEP,
        ),
        ("nonblock-might-sleep", || oom_reap(drv_might_sleep), SLEEP),
        ("nonblock-spinlock", || oom_reap(spin_and_nowait), NONE),
        ("nonblock-blocking-alloc", nonblock_blocking_alloc, SLEEP),
        ("nonblock-condvar-wait", nonblock_condvar_wait, SLEEP),
        ("blockable-sleeping-lock", blockable, NONE),
        ("fs-reclaim-may-sleep", fs_reclaim_may_sleep, NONE),
        ("nested-sections", nested_sections, SLEEP),
        (
            "unmatched-end",
            || annotate::non_block_end(),
            &[ReportKind::NonBlockImbalance],
        ),
    ];

    /// The driver's sleeping lock (`svmm->mutex`).
    static SVMM: Mutex<u32> = Mutex::with_key(0, lock_class!("&svmm->mutex"));
    /// A spinning lock: a raw lock whose map says it spins.
    static RANGE_LOCK: GenericMutex<parking_lot::RawMutex, u32> = GenericMutex::with_map(
        0,
        LockMap::named(lock_class!("&range->lock")).with_wait(WaitType::Config, WaitType::Inv),
    );

    /// `__oom_reap_task_mm` -> `mmu_notifier_invalidate_range_start_nonblock`: the callbacks run
    /// under the invalidation map, each wrapped in a non-blocking section.
    fn oom_reap(callback: fn()) {
        on_thread("oom_reaper", move || {
            let _map = MMU.hold(Acquire::exclusive());
            let _nb = annotate::non_block();
            callback();
        });
    }

    fn drv_might_sleep() {
        annotate::might_sleep();
    }

    /// An allocation that may wait on reclaim, in a non-blocking section (outside the invalidation
    /// map, which would report the recursion into the map first).
    fn nonblock_blocking_alloc() {
        on_thread("oom_reaper", || {
            let _nb = annotate::non_block();
            annotate::might_alloc(GFP_NOIO);
        });
    }

    fn spin_and_nowait() {
        *RANGE_LOCK.lock() += 1;
        annotate::might_alloc(GFP_NOWAIT);
    }

    /// A condvar wait sleeps: the re-acquisition of its mutex performs might_sleep.
    fn nonblock_condvar_wait() {
        on_thread("oom_reaper", || {
            static CV: Condvar = Condvar::new();
            let mut g = SVMM.lock();
            let _nb = annotate::non_block();
            CV.wait_for(&mut g, Duration::from_millis(1));
        });
    }

    /// The blockable `mmu_notifier_invalidate_range_start`: the same callback may sleep.
    fn blockable() {
        on_thread("munmap", || {
            let _map = MMU.hold(Acquire::exclusive());
            let _g = SVMM.lock();
            annotate::might_sleep();
        });
    }

    /// Reclaim sleeps: kswapd and direct reclaim are not non-blocking sections.
    fn fs_reclaim_may_sleep() {
        on_thread("kswapd0", || {
            let _reclaim = FS_RECLAIM.hold(Acquire::exclusive());
            let _shrinker = SVMM.lock();
            annotate::might_sleep();
        });
        on_thread("direct", || {
            let _reclaim = annotate::fs_reclaim(GFP_KERNEL); // __perform_reclaim
            let _noreclaim = annotate::memalloc_noreclaim();
            annotate::might_sleep(); // try_to_free_pages
        });
    }

    fn nested_sections() {
        on_thread("nested", || {
            let _outer = annotate::non_block();
            drop(annotate::non_block());
            annotate::might_sleep(); // still non_block: 1
            drop(_outer);
            annotate::might_sleep(); // fine again
        });
    }

    pub(super) fn main() {
        harness(CASES);
    }
}
