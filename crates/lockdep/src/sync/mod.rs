//! Instrumented locks: thin wrappers that are a raw lock plus a [`LockMap`](crate::LockMap).
//!
//! - [`Lockdep<R>`](raw::Lockdep) instruments any `lock_api` raw lock; the layer every primitive
//!   here is built on, and the way to instrument a lock of your own.
//! - [`Mutex`], [`RwLock`] and [`Condvar`] are parking_lot's, validated, with parking_lot's API;
//!   [`GenericMutex`] and [`GenericRwLock`] are the same over any raw lock. Their constructors are `#[track_caller]`, so each construction site is one class.
//!
//! Guards are `!Send`: the held-lock stack is per thread, so a guard must be released on the
//! thread that took it.

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
