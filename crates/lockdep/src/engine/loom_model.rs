//! Loom model of the zap count (`--cfg lockdep_loom`): how a task learns that classes were
//! zapped (issue 11, address reuse). The zapping thread takes a class out of the shared tables
//! and may give its slot to a new lock, then increments the count ([`super::ZAPS_STORE`]); a
//! task's slow path reads the count ([`super::ZAPS_LOAD`], in `adopt`) and, if it moved, forgets
//! the chains it cached. The model checks the ordering pair: a task that sees the new count
//! sees the slot's new owner too, so it never validates against the old lock's state again.

use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// The shared tables (behind the engine's mutex), the zap count, and a recycled slot's owner.
struct Shared {
    chain_listed: Mutex<bool>,
    zaps: AtomicU64,
    slot_instance: AtomicUsize,
}

const OLD: usize = 1;
const NEW: usize = 2;

#[test]
fn a_task_that_sees_the_zap_count_sees_the_recycled_slot() {
    loom::model(|| {
        let s = Arc::new(Shared {
            chain_listed: Mutex::new(true),
            zaps: AtomicU64::new(0),
            slot_instance: AtomicUsize::new(OLD),
        });
        let z = s.clone();
        let zapper = thread::spawn(move || {
            // `unregister_locked` then `reuse_zapped`: the chain leaves the table, the slot
            // gets its new lock (Relaxed, as in `reuse_zapped`), then the count moves.
            *z.chain_listed.lock().unwrap() = false;
            z.slot_instance.store(NEW, Ordering::Relaxed);
            z.zaps.fetch_add(1, super::ZAPS_STORE);
        });
        // A task's `adopt`: the count it last saw was 0.
        let seen = 0;
        if s.zaps.load(super::ZAPS_LOAD) != seen {
            // It forgets its chains and looks the class up again: it must find the new owner.
            assert_eq!(
                s.slot_instance.load(Ordering::Relaxed),
                NEW,
                "the zap count seen before the slot's new owner"
            );
        }
        zapper.join().unwrap();
        assert!(!*s.chain_listed.lock().unwrap());
    });
}
