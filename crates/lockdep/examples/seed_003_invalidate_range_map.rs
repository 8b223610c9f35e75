//! Seed 003, "mm, notifier: Add a lockdep map for invalidate_range_start" (Aug 2019): one lockdep
//! map held around every pte invalidation ties all the call chains that invalidate (direct
//! reclaim, compaction, munmap) to every notifier callback, so lockdep sees their dependencies
//! without ever hitting them in a single call chain. Jason Gunthorpe's review: range_end shares
//! the map; a dummy acquire/release under `mm_take_all_locks()` adds coverage; and
//! fs_reclaim -> map can be injected once. The reclaim-path cases use the 2019 (legacy)
//! fs_reclaim rules, where nothing but the map links notifiers to reclaim.
//!
//! Every case runs in a child process of its own (a fresh validator), with real threads.
//!
//! Run: `cargo run -p lockdep --example seed_003_invalidate_range_map` (or with a case name).

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
    use lockdep::annotate::{
        self, Priming, FS_RECLAIM, MMU_NOTIFIER_INVALIDATE_RANGE_START as MMU,
    };
    use lockdep::gfp::{GFP_KERNEL, GFP_NOIO};
    use lockdep::{lock_class, Acquire, Mutex, Options, ReportKind, RwLock};

    use super::seeds;
    use seeds::*;

    const CASES: &[Case] = &[
        (
            "callback-allocates-across-chains",
            || (legacy(), across_chains()).1,
            CIRCULAR,
        ),
        (
            "callback-allocates-current",
            callback_allocates,
            &[ReportKind::Recursive],
        ),
        (
            "range-end-shares-the-map",
            range_end_shares_the_map,
            CIRCULAR,
        ),
        ("take-all-locks-unprimed", || take_all_locks(false), NONE),
        ("take-all-locks-primed", || take_all_locks(true), CIRCULAR),
        (
            "injection-absent-legacy",
            || (legacy(), callback_lock_vs_alloc()).1,
            NONE,
        ),
        (
            "injection-legacy",
            || (legacy(), inject(), callback_lock_vs_alloc()).2,
            CIRCULAR,
        ),
        (
            "injection-implied-current",
            callback_lock_vs_alloc,
            CIRCULAR,
        ),
    ];

    static DRV_LOCK: Mutex<Vec<u64>> = Mutex::with_key(Vec::new(), lock_class!("&drv->lock"));
    static HMM_LOCK: Mutex<u32> = Mutex::with_key(0, lock_class!("&hmm->lock"));
    static I_MMAP: RwLock<()> = RwLock::with_key((), lock_class!("&mapping->i_mmap_rwsem"));

    fn legacy() {
        let engine = lockdep::rt::global();
        engine.set_options(Options {
            legacy_fs_reclaim: true,
            ..engine.options()
        });
    }

    /// `mmu_notifier_invalidate_range_start` with the given callback.
    #[inline(never)]
    fn invalidate_range_start(callback: impl FnOnce()) {
        let _map = MMU.hold(Acquire::exclusive());
        callback();
    }

    /// `__mmu_notifier_invalidate_range_end`: the same map.
    #[inline(never)]
    fn invalidate_range_end(callback: impl FnOnce()) {
        let _map = MMU.hold(Acquire::exclusive());
        callback();
    }

    /// kswapd invalidates ptes (try_to_unmap_one) in reclaim, with no notifier registered; munmap
    /// runs a callback that allocates with GFP_KERNEL, outside reclaim. Never one call chain.
    fn across_chains() {
        on_thread("kswapd0", || {
            let _reclaim = FS_RECLAIM.hold(Acquire::exclusive());
            invalidate_range_start(|| {});
        });
        on_thread("munmap", || {
            invalidate_range_start(|| annotate::might_alloc(GFP_KERNEL));
        });
    }

    /// The current rules catch it in one call chain: the allocation's might_lock of the held map.
    fn callback_allocates() {
        on_thread("munmap", || {
            invalidate_range_start(|| annotate::might_alloc(GFP_KERNEL));
        });
    }

    fn range_end_shares_the_map() {
        on_thread("munmap", || {
            invalidate_range_start(|| {});
            invalidate_range_end(|| *HMM_LOCK.lock() += 1);
        });
        on_thread("fault", || {
            let _hmm = HMM_LOCK.lock(); // hmm_range_fault
            annotate::might_alloc(GFP_NOIO);
        });
    }

    /// A callback that takes i_mmap_rwsem; the dummy acquire/release of the map under
    /// mm_take_all_locks() records i_mmap_rwsem -> map at registration.
    fn take_all_locks(dummy: bool) {
        on_thread("register", move || {
            let _all = I_MMAP.write(); // mm_take_all_locks
            if dummy {
                MMU.might_lock();
            }
        });
        on_thread("munmap", || {
            invalidate_range_start(|| drop(I_MMAP.read()));
        });
    }

    /// fs_reclaim_acquire(); lock_map_acquire(&map); lock_map_release(&map); fs_reclaim_release();
    fn inject() {
        on_thread("register", || {
            Priming::new().fs_reclaim(GFP_KERNEL).touch(&MMU).run();
        });
    }

    fn callback_lock_vs_alloc() {
        on_thread("munmap", || {
            invalidate_range_start(|| DRV_LOCK.lock().clear());
        });
        on_thread("submit", || {
            let mut l = DRV_LOCK.lock();
            annotate::might_alloc(GFP_KERNEL);
            l.push(1);
        });
    }

    pub(super) fn main() {
        harness(CASES);
    }
}
