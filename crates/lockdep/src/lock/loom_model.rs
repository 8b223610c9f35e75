//! Loom models of the lock-free protocols the already-seen path reads: a lock map's class cache
//! against the class arena, and a class's usage bits (`--cfg lockdep_loom`; see
//! `tests/loom_fast_path.rs` for the stress test of the real structures).

use loom::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;

/// One arena slot (as `boxcar` publishes it) and a lock map's class cache.
struct Shared {
    slot_ready: AtomicBool,
    cache: AtomicU32,
}

#[test]
fn a_cached_class_id_is_never_ahead_of_its_class() {
    loom::model(|| {
        let s = Arc::new(Shared {
            slot_ready: AtomicBool::new(false),
            cache: AtomicU32::new(0),
        });
        let w = s.clone();
        let registrar = thread::spawn(move || {
            // Engine::register: push the class (the arena's Release), then cache its id.
            w.slot_ready.store(true, Ordering::Release);
            w.cache.store(1, crate::lock::map::CACHE_STORE);
        });
        // Another thread's hook: a cached id must index a published slot (the arena's
        // Acquire read of the slot), or `classes[id]` panics.
        if s.cache.load(crate::lock::map::CACHE_LOAD) != 0 {
            assert!(
                s.slot_ready.load(Ordering::Acquire),
                "class id seen before the class"
            );
        }
        registrar.join().unwrap();
    });
}

#[test]
fn usage_bits_written_only_when_new_are_never_lost() {
    loom::model(|| {
        let usage = Arc::new(AtomicU16::new(0));
        let mark = |usage: &AtomicU16, bits: u16| {
            // Engine::mark_usage: a load, and a fetch_or only if a bit is missing.
            if usage.load(Ordering::Relaxed) & bits != bits {
                usage.fetch_or(bits, Ordering::Relaxed);
            }
        };
        let u = usage.clone();
        let t = thread::spawn(move || {
            mark(&u, 0b01);
            mark(&u, 0b01);
        });
        mark(&usage, 0b10);
        t.join().unwrap();
        assert_eq!(usage.load(Ordering::Relaxed), 0b11);
    });
}
