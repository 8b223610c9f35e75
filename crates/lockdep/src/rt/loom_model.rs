//! Loom model of the queue of remote releases (`--cfg lockdep_loom`; issue 11, defect 5): a
//! release of a movable hold by a thread that does not hold it is queued under `REMOTE`'s
//! mutex and counted in `PENDING`, which only the slow path reads (so a queued release no
//! longer sends every thread's fast path to the mutex). The count is changed only while the
//! queue's mutex is held, so whoever holds the mutex sees the count equal to the queue's
//! length: a claim never takes the count below zero, and nothing queued is forgotten.

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

struct Remote {
    pending: Mutex<Vec<usize>>,
    count: AtomicUsize,
}

impl Remote {
    /// `forward_release`: push, and count, under the mutex.
    fn forward(&self, instance: usize) {
        let mut q = self.pending.lock().unwrap();
        assert_eq!(self.count.load(Ordering::Relaxed), q.len());
        q.push(instance);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// `claim_remote` for a task holding `held`: only if the count says something is queued.
    fn claim(&self, held: usize) -> bool {
        if self.count.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut q = self.pending.lock().unwrap();
        assert_eq!(self.count.load(Ordering::Relaxed), q.len());
        match q.iter().position(|&i| i == held) {
            Some(i) => {
                q.swap_remove(i);
                self.count.fetch_sub(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

#[test]
fn queued_releases_are_counted_exactly_and_claimed_once() {
    loom::model(|| {
        let r = Arc::new(Remote {
            pending: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
        });
        let (a, b) = (r.clone(), r.clone());
        // Two threads release the holder's two movable locks; the holder claims meanwhile.
        let t1 = thread::spawn(move || a.forward(10));
        let t2 = thread::spawn(move || b.forward(20));
        let early = usize::from(r.claim(10)) + usize::from(r.claim(20));
        t1.join().unwrap();
        t2.join().unwrap();
        // The holder's next slow-path hook after both: everything left is claimed.
        let late = usize::from(r.claim(10)) + usize::from(r.claim(20));
        assert_eq!(early + late, 2, "each release claimed exactly once");
        assert_eq!(r.count.load(Ordering::Relaxed), 0);
        assert!(r.pending.lock().unwrap().is_empty());
    });
}
