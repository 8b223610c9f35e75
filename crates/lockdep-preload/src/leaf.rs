//! The interposer's own locks: spinlocks around short sections that call nothing that could
//! take another lock of the validator (a hash-map update, an allocation). Being leaves, they
//! can be taken around `fork` in any order relative to the driver's locks; being spinlocks,
//! they are released in the child by a plain store.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A leaf spinlock.
pub(crate) struct Leaf<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: the data is only reached through a `LeafGuard`, of which at most one exists at a time
// (`locked`), so `Leaf` is a mutex: `Sync` when the data may be sent between threads.
unsafe impl<T: Send> Sync for Leaf<T> {}

impl<T> Leaf<T> {
    pub(crate) const fn new(data: T) -> Leaf<T> {
        Leaf {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    pub(crate) fn lock(&self) -> LeafGuard<'_, T> {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // The holder is in a short section; a holder that was preempted gets the CPU back.
            std::thread::yield_now();
        }
        LeafGuard { lock: self }
    }

    /// Takes the lock for `fork` (released by [`Leaf::fork_release`]).
    pub(crate) fn fork_acquire(&self) {
        std::mem::forget(self.lock());
    }

    /// Releases the lock taken by [`Leaf::fork_acquire`], in the parent or in the child.
    pub(crate) fn fork_release(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

/// Access to a [`Leaf`]'s data; unlocks when dropped.
pub(crate) struct LeafGuard<'a, T> {
    lock: &'a Leaf<T>,
}

impl<T> Deref for LeafGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (the lock is held).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for LeafGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for LeafGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}
