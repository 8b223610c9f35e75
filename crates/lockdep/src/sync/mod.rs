//! Instrumented locks: thin wrappers that are a raw lock plus a [`LockMap`](crate::LockMap).
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

pub mod condvar;
pub mod mutex;
pub mod raw;
pub mod rwlock;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{GenericMutex, GenericMutexGuard, MappedMutexGuard, Mutex, MutexGuard};
pub use raw::Lockdep;
pub use rwlock::{
    MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard,
    RwLockUpgradableReadGuard, RwLockWriteGuard,
};

use crate::map::LockMap;
use crate::wait::WaitType;

/// The lock map every primitive here starts from: a sleeping lock, movable under `send_guard`.
pub(crate) const fn primitive_map(map: LockMap) -> LockMap {
    let map = map.with_wait(WaitType::Sleep, WaitType::Inv);
    if cfg!(feature = "send_guard") {
        map.movable()
    } else {
        map
    }
}
