//! Poisoning, as std does it: a lock is poisoned when a thread panics while holding it
//! exclusively, and every later acquisition says so (still giving the guard).

use ::std::sync::atomic::{AtomicBool, Ordering};
use ::std::sync::{LockResult, PoisonError};
use ::std::thread;

/// Whether a panic happened while the lock was held.
#[derive(Debug)]
pub(crate) struct Flag {
    failed: AtomicBool,
}

/// What a guard remembers: whether its thread was already panicking when it took the lock (a
/// lock taken during unwinding is not poisoned by that same unwinding).
#[derive(Debug)]
pub(crate) struct Guard {
    panicking: bool,
}

impl Guard {
    /// The same record, for a guard made from another (a mapped guard).
    pub(crate) fn copy(g: &Guard) -> Guard {
        Guard {
            panicking: g.panicking,
        }
    }
}

impl Flag {
    pub(crate) const fn new() -> Flag {
        Flag {
            failed: AtomicBool::new(false),
        }
    }

    /// `Ok(())`, or a `PoisonError` if poisoned.
    pub(crate) fn borrow(&self) -> LockResult<()> {
        if self.get() {
            Err(PoisonError::new(()))
        } else {
            Ok(())
        }
    }

    /// The guard of a new exclusive hold, in an `Err` if poisoned.
    pub(crate) fn guard(&self) -> LockResult<Guard> {
        let g = Guard {
            panicking: thread::panicking(),
        };
        if self.get() {
            Err(PoisonError::new(g))
        } else {
            Ok(g)
        }
    }

    /// The end of an exclusive hold: poisons if the thread started panicking meanwhile.
    pub(crate) fn done(&self, guard: &Guard) {
        if !guard.panicking && thread::panicking() {
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.failed.store(false, Ordering::Relaxed);
    }
}

/// Maps the value of a `LockResult`, keeping whether it is poisoned.
pub(crate) fn map_result<T, U>(result: LockResult<T>, f: impl FnOnce(T) -> U) -> LockResult<U> {
    match result {
        Ok(t) => Ok(f(t)),
        Err(e) => Err(PoisonError::new(f(e.into_inner()))),
    }
}
