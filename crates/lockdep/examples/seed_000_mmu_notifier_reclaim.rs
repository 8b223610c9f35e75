//! Seed 000, "mm: track mmu notifiers in fs_reclaim_acquire/release" (5.11): any allocation that
//! may wait on reclaim may invalidate ptes and so recurse into mmu-notifier callbacks, so the
//! current rules do a `might_lock` of the invalidation map for it; GFP_NOIO is not enough, only
//! GFP_ATOMIC / GFP_NOWAIT are safe. The legacy rules (2018–5.10) miss it. The v3 fix honours
//! the `memalloc_nofs` scope, and the 2019 priming in notifier registration becomes redundant.
//!
//! Every case runs in a child process of its own (a fresh validator, as a scenario case gets),
//! with real threads: an `munmap` thread whose notifier callback takes the driver's lock, and a
//! `submit` thread that holds that lock across an allocation.
//!
//! Run: `cargo run -p lockdep --example seed_000_mmu_notifier_reclaim` (or with a case name).

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
    use lockdep::gfp::{GFP_ATOMIC, GFP_KERNEL, GFP_NOIO, GFP_NOWAIT};
    use lockdep::{lock_class, Acquire, Mutex, Options};

    use super::seeds;
    use seeds::*;

    const CASES: &[Case] = &[
        ("noio-current", || notifier_vs_alloc(GFP_NOIO), CIRCULAR),
        (
            "noio-legacy",
            || (legacy(), notifier_vs_alloc(GFP_NOIO)).1,
            NONE,
        ),
        ("noio-scope-current", noio_scope, CIRCULAR),
        ("atomic-and-nowait-current", atomic_and_nowait, NONE),
        (
            "atomic-and-nowait-legacy",
            || (legacy(), atomic_and_nowait()).1,
            NONE,
        ),
        ("nofs-scope-honoured", || xfs(true), NONE),
        ("nofs-scope-absent", || xfs(false), CIRCULAR),
        (
            "kernel-current-unprimed",
            || notifier_vs_alloc(GFP_KERNEL),
            CIRCULAR,
        ),
        (
            "kernel-current-primed",
            || (register(), notifier_vs_alloc(GFP_KERNEL)).1,
            CIRCULAR,
        ),
        (
            "kernel-legacy-unprimed",
            || (legacy(), notifier_vs_alloc(GFP_KERNEL)).1,
            NONE,
        ),
        (
            "kernel-legacy-primed",
            || (legacy(), register(), notifier_vs_alloc(GFP_KERNEL)).2,
            CIRCULAR,
        ),
    ];

    /// A driver with an mmu notifier: its callback and its submit path share `notifier_lock`.
    struct Driver {
        notifier_lock: Mutex<Vec<u64>>,
    }

    static DRV: Driver = Driver {
        notifier_lock: Mutex::with_key(Vec::new(), lock_class!("&drv->notifier_lock")),
    };

    /// `mmu_notifier_invalidate_range_start`: the map is held around the callbacks.
    #[inline(never)]
    fn invalidate_range_start(start: u64, end: u64) {
        let _map = MMU.hold(Acquire::exclusive());
        drv_invalidate_range_start(start, end);
    }

    #[inline(never)]
    fn drv_invalidate_range_start(start: u64, end: u64) {
        DRV.notifier_lock
            .lock()
            .retain(|a| !(start..end).contains(a));
    }

    #[inline(never)]
    fn drv_submit(gfp: u32) {
        let mut userptrs = DRV.notifier_lock.lock();
        annotate::might_alloc(gfp);
        let mut fresh = Vec::with_capacity(4);
        fresh.push(0x1000);
        userptrs.extend(fresh);
    }

    fn legacy() {
        let engine = lockdep::rt::global();
        engine.set_options(Options {
            legacy_fs_reclaim: true,
            ..engine.options()
        });
    }

    /// The 2019 priming in `__mmu_notifier_register`: fs_reclaim -> map.
    fn register() {
        on_thread("register", || {
            Priming::new().fs_reclaim(GFP_KERNEL).touch(&MMU).run();
        });
    }

    fn notifier_vs_alloc(gfp: u32) {
        on_thread("munmap", || invalidate_range_start(0, 0x2000));
        on_thread("submit", move || drv_submit(gfp));
    }

    fn noio_scope() {
        on_thread("munmap", || invalidate_range_start(0, 0x2000));
        on_thread("submit", || {
            let _noio = annotate::memalloc_noio();
            drv_submit(GFP_KERNEL); // GFP_NOIO in scope: still may invalidate ptes
        });
    }

    fn atomic_and_nowait() {
        on_thread("munmap", || invalidate_range_start(0, 0x2000));
        on_thread("submit", || {
            drv_submit(GFP_ATOMIC);
            drv_submit(GFP_NOWAIT);
        });
    }

    /// The xfs false positive fixed in v3: a transaction under memalloc_nofs allocates GFP_KERNEL
    /// while holding the inode lock that the xfs shrinker takes in reclaim.
    fn xfs(scope: bool) {
        static I_LOCK: Mutex<u32> = Mutex::with_key(0, lock_class!("&xfs_inode->i_lock"));
        on_thread("kswapd0", || {
            let _reclaim = FS_RECLAIM.hold(Acquire::exclusive());
            *I_LOCK.lock() += 1; // xfs_reclaim_inodes_nr
        });
        on_thread("xfs_trans", move || {
            let _nofs = scope.then(annotate::memalloc_nofs);
            let _inode = I_LOCK.lock();
            annotate::might_alloc(GFP_KERNEL);
        });
    }

    pub(super) fn main() {
        harness(CASES);
    }
}
