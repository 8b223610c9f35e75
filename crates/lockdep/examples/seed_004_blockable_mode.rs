//! Seed 004, "mm, oom: distinguish blockable mode for mmu notifiers" (Aug 2018): several
//! invalidate_range_start/end pairs may be in flight for one mm at the same time and complete in
//! a different order (Jérôme Glisse). A lock held for read across each pair must therefore be a
//! recursive reader: taking a plain rw_semaphore's read side twice is illegal (Christian König),
//! and lockdep reports it as recursive locking.
//!
//! Every case runs in a child process of its own (a fresh validator), with real threads.
//!
//! Run: `cargo run -p lockdep --example seed_004_blockable_mode` (or with a case name).

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
    use std::sync::{Arc, Barrier};
    use std::thread;

    use lockdep::{lock_class, LockClassKey, Mutex, ReportKind, RwLock};

    use super::seeds;
    use seeds::*;

    const CASES: &[Case] = &[
        ("pairs-in-flight-recursive", pairs_in_flight, NONE),
        ("ranges-end-out-of-order", ranges_out_of_order, NONE),
        ("down-read-twice", down_read_twice, &[ReportKind::Recursive]),
    ];

    /// The notifier's per-mm lock (`amn->lock`): written by command submission, read across every
    /// invalidation.
    static AMN_LOCK: RwLock<u64> = RwLock::with_key(0, lock_class!("&amn->lock"));
    static NOTIFIER_LOCK: Mutex<u32> = Mutex::with_key(0, lock_class!("&adev->notifier_lock"));

    fn pairs_in_flight() {
        on_thread("cs", || {
            let mut gen = AMN_LOCK.write(); // amdgpu_cs_ioctl
            *gen += 1;
            *NOTIFIER_LOCK.lock() += 1;
        });
        // Two tasks with pairs in flight at the same moment, one of them with two nested pairs that
        // end in the order they started.
        let both = Arc::new(Barrier::new(2));
        let b = both.clone();
        let munmap = thread::Builder::new()
            .name("munmap".into())
            .spawn(move || {
                let ab = AMN_LOCK.read_recursive(); // invalidate_range_start(A,B)
                let cd = AMN_LOCK.read_recursive(); // invalidate_range_start(C,D)
                *NOTIFIER_LOCK.lock() += 1;
                b.wait();
                drop(ab); // invalidate_range_end(A,B) first
                drop(cd); // invalidate_range_end(C,D)
            })
            .expect("spawn");
        let reclaim = thread::Builder::new()
            .name("reclaim".into())
            .spawn(move || {
                let r = AMN_LOCK.read_recursive();
                both.wait();
                drop(r);
            })
            .expect("spawn");
        munmap.join().expect("join");
        reclaim.join().expect("join");
    }

    /// Per-range holds of one class, the older range ending first.
    fn ranges_out_of_order() {
        static RANGE: LockClassKey = LockClassKey::new("&mn->range");
        static RANGE_AB: RwLock<()> = RwLock::with_key((), &RANGE);
        static RANGE_CD: RwLock<()> = RwLock::with_key((), &RANGE);
        on_thread("munmap", || {
            let ab = RANGE_AB.read_recursive();
            let cd = RANGE_CD.read_recursive();
            drop(ab); // not the top of the held stack
            drop(cd);
        });
    }

    /// down_read for (A,B), then down_read again for (C,D): a waiting writer would deadlock it.
    fn down_read_twice() {
        on_thread("munmap", || {
            let ab = AMN_LOCK.read();
            let cd = AMN_LOCK.read();
            drop(ab);
            drop(cd);
        });
    }

    pub(super) fn main() {
        harness(CASES);
    }
}
