//! Instrumented locks: thin wrappers that are a raw lock plus a [`LockMap`].
//!
//! - [`Lockdep<R>`](raw::Lockdep) instruments any `lock_api` raw lock; the layer every primitive
//!   here is built on, and the way to instrument a lock of your own.
//! - [`Mutex`], [`RwLock`] and [`Condvar`] are parking_lot's, validated, with parking_lot's API;
//!   [`GenericMutex`] and [`GenericRwLock`] are the same over any raw lock. Their constructors are `#[track_caller]`, so each construction site is one class.
//!
//! Guards are `!Send` by default: the held-lock stack is per thread, so a guard is released on
//! the thread that took it. With the `send_guard` cargo feature (as parking_lot's) guards are
//! `Send`: the lock maps of these primitives are then *movable*, and a release on another thread
//! is handed to the thread that holds the lock (see [`crate::rt`]).
//!
//! With the `disabled` cargo feature, [`Mutex`], [`RwLock`], [`Condvar`] and their guards are
//! parking_lot's own types (type aliases: same size, same code), and every hook of the
//! process-wide validator is a no-op. The generic types, [`Lockdep<R>`](raw::Lockdep), lock maps
//! and the [`Engine`](crate::Engine) (for the replay) are still there. The feature is for the
//! release build of a final binary: it is not additive, since code that calls lockdep-only
//! methods (`lock_nested`, `with_key`, `lock_map`) does not compile against parking_lot's types.

#[cfg(not(feature = "disabled"))]
mod condvar;
mod fair_mutex;
#[cfg(not(feature = "disabled"))]
mod init;
mod mutex;
#[cfg(not(feature = "disabled"))]
mod once;
mod raw;
mod remutex;
mod rwlock;
#[cfg(feature = "serde")]
mod serialize;
pub mod ww;
// Reached as `lockdep::std::sync` (lib.rs).
pub(crate) mod std;
#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(not(feature = "disabled"))]
pub use condvar::{Condvar, WaitTimeoutResult};
pub use fair_mutex::{const_fair_mutex, FairMutex, FairMutexGuard, MappedFairMutexGuard};
pub use mutex::const_mutex;
pub use mutex::{GenericMutex, GenericMutexGuard, MappedMutexGuard, Mutex, MutexGuard};
#[cfg(not(feature = "disabled"))]
pub use once::{Once, OnceState};
/// With the `disabled` feature: parking_lot's condition variable, for parking_lot's mutex.
#[cfg(feature = "disabled")]
pub use parking_lot::{Condvar, WaitTimeoutResult};
/// With the `disabled` feature: parking_lot's own `Once`.
#[cfg(feature = "disabled")]
pub use parking_lot::{Once, OnceState};
pub use raw::Lockdep;
pub use remutex::{
    const_reentrant_mutex, GenericReentrantMutex, MappedReentrantMutexGuard, ReentrantMutex,
    ReentrantMutexGuard,
};
pub use rwlock::const_rwlock;

/// parking_lot's raw mutex, instrumented: what the guards of [`Mutex`] are generic over (so
/// `lock_api::ArcMutexGuard<lockdep::RawMutex, T>` is the `arc_lock` guard of a [`Mutex`]).
#[cfg(not(feature = "disabled"))]
pub type RawMutex = Lockdep<parking_lot::RawMutex>;
/// parking_lot's raw fair mutex, instrumented.
#[cfg(not(feature = "disabled"))]
pub type RawFairMutex = Lockdep<parking_lot::RawFairMutex>;
/// parking_lot's raw reader-writer lock, instrumented.
#[cfg(not(feature = "disabled"))]
pub type RawRwLock = Lockdep<parking_lot::RawRwLock>;
pub use parking_lot::RawThreadId;
/// With the `disabled` feature: parking_lot's own raw locks.
#[cfg(feature = "disabled")]
pub use parking_lot::{RawFairMutex, RawMutex, RawRwLock};
pub use rwlock::{
    GenericReadGuard, GenericRwLock, GenericUpgradableReadGuard, GenericWriteGuard,
    MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard,
    RwLockUpgradableReadGuard, RwLockWriteGuard,
};

use crate::lock::map::LockMap;
use crate::lock::wait::WaitType;

/// The lock map every primitive here starts from: a sleeping lock, movable under `send_guard`.
pub(crate) const fn primitive_map(map: LockMap) -> LockMap {
    let map = map.with_wait(WaitType::Sleep, WaitType::Inv);
    if cfg!(feature = "send_guard") {
        map.movable()
    } else {
        map
    }
}

#[cfg(all(test, feature = "disabled"))]
mod disabled_tests {
    #[test]
    fn the_primitives_are_parking_lots_own() {
        use std::mem::size_of;
        let m: parking_lot::Mutex<u64> = super::Mutex::new(1);
        let r: parking_lot::RwLock<u64> = super::RwLock::new(1);
        let _c: parking_lot::Condvar = super::Condvar::new();
        assert_eq!(*m.lock() + *r.read(), 2);
        assert_eq!(
            size_of::<super::Mutex<u64>>(),
            size_of::<parking_lot::Mutex<u64>>()
        );
        assert_eq!(
            size_of::<super::RwLock<u64>>(),
            size_of::<parking_lot::RwLock<u64>>()
        );
        // The hooks are no-ops: nothing is held, nothing is validated.
        let map = crate::LockMap::new();
        map.acquire(crate::Acquire::exclusive());
        assert!(!map.is_held());
        map.release();
    }
}
