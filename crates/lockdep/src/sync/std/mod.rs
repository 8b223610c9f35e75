//! The files of `lockdep::std::sync` (documented there, in lib.rs): std's `sync` API over this
//! crate's raw locks and lock maps.

#[cfg(not(feature = "disabled"))]
mod barrier;
#[cfg(not(feature = "disabled"))]
mod condvar;
#[cfg(not(feature = "disabled"))]
mod lazy_lock;
#[cfg(not(feature = "disabled"))]
mod mutex;
#[cfg(not(feature = "disabled"))]
mod once;
#[cfg(not(feature = "disabled"))]
mod once_lock;
#[cfg(not(feature = "disabled"))]
mod poison;
#[cfg(not(feature = "disabled"))]
mod rwlock;

#[cfg(not(feature = "disabled"))]
pub use self::{
    barrier::Barrier,
    condvar::{Condvar, WaitTimeoutResult},
    lazy_lock::LazyLock,
    mutex::{MappedMutexGuard, Mutex, MutexGuard},
    once::Once,
    once_lock::OnceLock,
    rwlock::{MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard},
};
#[cfg(not(feature = "disabled"))]
#[allow(deprecated)]
pub use self::once::ONCE_INIT;
#[cfg(not(feature = "disabled"))]
pub use ::std::sync::{
    atomic, mpsc, Arc, BarrierWaitResult, LockResult, OnceState, PoisonError, TryLockError,
    TryLockResult, Weak,
};

/// With the `disabled` feature: std's own `sync` module.
#[cfg(feature = "disabled")]
pub use ::std::sync::*;

#[cfg(not(feature = "disabled"))]
use crate::lock::map::{Acquire, LockMap, Site};

/// The lock map of every lock and cell here: a sleeping lock. (Never movable: std's guards are
/// not `Send`.)
#[cfg(not(feature = "disabled"))]
pub(crate) const fn map_of(map: LockMap) -> LockMap {
    map.with_wait(crate::lock::wait::WaitType::Sleep, crate::lock::wait::WaitType::Inv)
}

/// A one-time cell's lock map held while its initialiser runs (or while waiting for it);
/// released when dropped, unwinding included.
#[cfg(not(feature = "disabled"))]
pub(crate) struct Initialising<'a>(&'a LockMap);

#[cfg(not(feature = "disabled"))]
impl<'a> Initialising<'a> {
    pub(crate) fn hold(map: &'a LockMap, site: Site) -> Initialising<'a> {
        map.acquire_at(Acquire::exclusive(), site);
        Initialising(map)
    }
}

#[cfg(not(feature = "disabled"))]
impl Drop for Initialising<'_> {
    fn drop(&mut self) {
        self.0.release_at(Site::Unknown);
    }
}

/// An access to a cell that is already initialised: it cannot block now, but would have, had it
/// come first; so the order "held locks → cell" is validated (`might_lock`).
#[cfg(not(feature = "disabled"))]
#[inline]
pub(crate) fn initialised(map: &LockMap, site: Site) {
    map.acquire_at(Acquire::exclusive(), site);
    map.release_at(site);
}
