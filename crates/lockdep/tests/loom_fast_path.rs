//! The shared lock-free state of the already-seen path, model-checked and stressed.
//!
//! The fast path writes no shared memory, and reads three kinds of it: the one-slot class cache
//! of a lock map, the class arena (`boxcar`, published with Release/Acquire per slot), and a
//! class's usage bits (written only when a bit is new). The loom models check the protocols
//! with the orderings the crate really uses, in `src/lock/loom_model.rs`:
//!
//! `RUSTFLAGS="--cfg lockdep_loom" cargo test -p lockdep --release --lib loom_model`
//!
//! (`src/engine/loom_model.rs` and `src/rt/loom_model.rs` model the zap count and the queue
//! of remote releases the same way.)
//!
//! (a cfg of its own: `--cfg loom` would switch boxcar to its own loom build). This file is the stress test of the real thing: threads racing to
//! register the same classes through the same maps and to validate the same chains.

#![cfg(not(feature = "disabled"))]

#[cfg(not(lockdep_loom))]
mod stress {
    use std::sync::{Arc, Barrier};

    use lockdep::{Acquire, LockClassKey, LockMap, ReportCollector};

    #[test]
    fn threads_racing_on_new_classes_and_chains_agree() {
        const CLASSES: usize = 48;
        const THREADS: usize = 4;
        let reports = ReportCollector::new();
        let maps: Arc<Vec<LockMap>> = Arc::new(
            (0..CLASSES)
                .map(|i| {
                    let name: &'static str = Box::leak(format!("stress_fast_path_{i}").into());
                    let key: &'static LockClassKey = Box::leak(Box::new(LockClassKey::new(name)));
                    LockMap::named(key)
                })
                .collect(),
        );
        let start = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (maps, start) = (maps.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ t as u64;
                    start.wait();
                    for _ in 0..4000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Always in index order: a consistent order, no report expected.
                        let i = (x % CLASSES as u64) as usize;
                        let j = i + 1 + ((x >> 20) % (CLASSES - i) as u64) as usize;
                        maps[i].acquire(Acquire::exclusive());
                        if j < CLASSES {
                            maps[j].acquire(Acquire::exclusive());
                            maps[j].release();
                        }
                        maps[i].release();
                    }
                    assert_eq!(lockdep::rt::depth(), 0);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mine = reports
            .matching(|r| (0..CLASSES).any(|i| r.involves(&format!("stress_fast_path_{i}"))));
        assert!(mine.is_empty(), "{}", mine[0].render());
        // One class per key, whatever thread registered it first.
        let classes = lockdep::rt::global().classes();
        for i in 0..CLASSES {
            let name = format!("stress_fast_path_{i}");
            assert_eq!(classes.iter().filter(|c| *c.name == name).count(), 1);
        }
    }
}
