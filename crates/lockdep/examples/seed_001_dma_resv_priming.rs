//! Seed 001, "dma-resv: prime lockdep annotations" with i_mmap_rwsem (July 2020): GPU shrinkers
//! unmap mmap'ed buffers, so `dma_resv_lockdep()` primes, once at boot,
//!
//! ```text
//! mmap_read_lock -> dma_resv (under its ww acquire context) -> fs_reclaim -> i_mmap_lock_write
//! ```
//!
//! Thomas Hellström inverted the annotation and ran a memory hog: kswapd, which holds
//! `fs_reclaim` and takes `i_mmap_rwsem` for read in its rmap walk, produced a circular splat,
//! so reclaim -> i_mmap_rwsem is an order the kernel already has. The `inverted-priming` case
//! prints that splat (`kswapd0/PID is trying to acquire lock`, `(&mapping->i_mmap_rwsem){++++}`,
//! `(fs_reclaim){+.+.}-{0:0}`, the two-entry chain with the priming stack, `1 lock held by
//! kswapd0/PID`).
//!
//! The priming is the kernel's sequence with real locks: `dma_resv` is a [`WwMutex`] of the
//! wound-wait `reservation_ww_class`, locked under an [`AcquireCtx`], so the validator sees what
//! the kernel's does: `&mm->mmap_lock` -> `reservation_ww_class_acquire` ->
//! `reservation_ww_class_mutex` (nested in the context) -> `fs_reclaim` ->
//! `&mapping->i_mmap_rwsem`.
//!
//! Every case runs in a child process of its own (a fresh validator), with real threads.
//!
//! Run: `cargo run -p lockdep --example seed_001_dma_resv_priming` (or with a case name).

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
    use lockdep::annotate::{self, FS_RECLAIM};
    use lockdep::gfp::{GFP_KERNEL, GFP_NOWAIT};
    use lockdep::ww::{AcquireCtx, WwClass, WwKind, WwMutex};
    use lockdep::{lock_class, Acquire, RwLock};

    use super::seeds;
    use seeds::*;

    const CASES: &[Case] = &[
        ("priming", || (boot(dma_resv_lockdep), kswapd()).1, NONE),
        (
            "priming-catches-gfp-kernel-under-i_mmap",
            || (boot(dma_resv_lockdep), uprobe()).1,
            CIRCULAR,
        ),
        (
            "inverted-priming",
            || (boot(dma_resv_lockdep_inverted), kswapd()).1,
            CIRCULAR,
        ),
    ];

    /// `mm->mmap_lock`.
    static MMAP_LOCK: RwLock<()> = RwLock::with_key((), lock_class!("&mm->mmap_lock"));
    /// `DEFINE_WW_CLASS(reservation_ww_class)`: contexts in `reservation_ww_class_acquire`, the
    /// `dma_resv` locks in `reservation_ww_class_mutex`.
    static RESERVATION_WW_CLASS: WwClass = WwClass::new(
        WwKind::WoundWait,
        "reservation_ww_class_acquire",
        "reservation_ww_class_mutex",
    );
    /// `mapping->i_mmap_rwsem`.
    static I_MMAP: RwLock<Vec<u64>> =
        RwLock::with_key(Vec::new(), lock_class!("&mapping->i_mmap_rwsem"));

    /// The priming as merged (a subsys initcall), with a real `dma_resv` object, a real acquire
    /// context and a real reservation lock.
    #[inline(never)]
    fn dma_resv_lockdep() {
        let obj = WwMutex::new(&RESERVATION_WW_CLASS, ()); // dma_resv_init(&obj)
        let mm = MMAP_LOCK.read(); // mmap_read_lock(mm)
        let ctx = AcquireCtx::new(&RESERVATION_WW_CLASS); // ww_acquire_init(&ctx, &reservation_ww_class)
        let resv = match ctx.lock(&obj) {
            // dma_resv_lock(&obj, &ctx)
            Ok(g) => g,
            Err(_) => ctx.lock_slow(&obj), // -EDEADLK: dma_resv_lock_slow(&obj, &ctx)
        };
        let reclaim = annotate::fs_reclaim(GFP_KERNEL); // fs_reclaim_acquire(GFP_KERNEL)
        drop(I_MMAP.write()); // i_mmap_lock_write(&mapping); i_mmap_unlock_write(&mapping);
        drop(reclaim); // fs_reclaim_release(GFP_KERNEL)
        drop(resv); // ww_mutex_unlock(&obj.lock)
        ctx.fini(); // ww_acquire_fini(&ctx)
        drop(mm); // mmap_read_unlock(mm)
    }

    /// Thomas's inverted annotation: i_mmap_rwsem before fs_reclaim.
    #[inline(never)]
    fn dma_resv_lockdep_inverted() {
        let obj = WwMutex::new(&RESERVATION_WW_CLASS, ());
        let mm = MMAP_LOCK.read();
        let ctx = AcquireCtx::new(&RESERVATION_WW_CLASS);
        let resv = match ctx.lock(&obj) {
            Ok(g) => g,
            Err(_) => ctx.lock_slow(&obj),
        };
        let mapping = I_MMAP.write();
        drop(annotate::fs_reclaim(GFP_KERNEL));
        drop(mapping);
        drop(resv);
        ctx.fini();
        drop(mm);
    }

    fn boot(initcall: fn()) {
        on_thread("swapper/0", initcall);
    }

    /// kswapd: reclaim itself (`__fs_reclaim_acquire()`), walking the rmap of a file page.
    fn kswapd() {
        on_thread("kswapd0", || {
            // The seed's kswapd0 is pid 98.
            lockdep::rt::with_current_task(|_, task| {
                task.set_pid(98);
                None
            });
            let _reclaim = FS_RECLAIM.hold(Acquire::exclusive());
            balance_pgdat();
        });
    }

    #[inline(never)]
    fn balance_pgdat() {
        shrink_active_list();
    }

    #[inline(never)]
    fn shrink_active_list() {
        page_referenced();
    }

    #[inline(never)]
    fn page_referenced() {
        rmap_walk_file();
    }

    #[inline(never)]
    fn rmap_walk_file() {
        let vmas = I_MMAP.read(); // down_read(&mapping->i_mmap_rwsem)
        let _referenced = vmas.len();
    }

    /// uprobes' build_map_info: "Needs GFP_NOWAIT to avoid i_mmap_rwsem recursion through reclaim".
    fn uprobe() {
        on_thread("uprobe", || {
            let _vmas = I_MMAP.read();
            annotate::might_alloc(GFP_NOWAIT); // what uprobes does: fine
            annotate::might_alloc(GFP_KERNEL); // would recurse into reclaim: reported
        });
    }

    pub(super) fn main() {
        harness(CASES);
    }
}
