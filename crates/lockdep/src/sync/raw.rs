//! [`Lockdep<R>`]: any `lock_api` raw lock, instrumented.
//!
//! The wrapper is a raw lock plus a [`LockMap`], and each raw operation calls the map's hooks
//! around the real one: acquisitions are recorded *before* blocking (so a deadlock is reported
//! before it happens), successful trylocks after the fact, releases before the real unlock.
//! Because it implements the `lock_api` raw traits, `lock_api::Mutex<Lockdep<R>, T>` and
//! `lock_api::RwLock<Lockdep<R>, T>` work with every `lock_api` feature: mapped guards, timeouts,
//! upgradable reads, `Arc` guards.
//!
//! How `lock_api` operations map to validator acquisitions:
//!
//! | operation | validator |
//! |---|---|
//! | `lock`, `lock_exclusive`, `lock_upgradable` | exclusive acquire (with [lock statistics](crate::stat) on: the raw lock is tried first, and only a failed try is a contention) |
//! | `lock_shared` | non-recursive shared acquire (parking_lot's `read` can block behind a waiting writer) |
//! | `lock_shared_recursive` | recursive shared acquire |
//! | `try_*`, and the timed `try_*_for` / `try_*_until` | trylock, on success (a timed wait cannot deadlock forever) |
//! | `unlock*` | release |
//! | `downgrade`, `downgrade_upgradable` | downgrade to a shared hold |
//! | `bump*` | release and acquire again |
//! | `upgrade`, `downgrade_to_upgradable` | nothing: an upgradable hold is already modelled as exclusive |
//!
//! An upgradable read excludes writers and other upgradable readers, so it is modelled as an
//! exclusive hold: conservative, it can report an order that only deadlocks once a writer queues.
//!
//! ```
//! use lockdep::sync::Lockdep;
//!
//! // Instrument a lock_api lock of your own choosing (here parking_lot's).
//! type MyMutex<T> = lock_api::Mutex<Lockdep<parking_lot::RawMutex>, T>;
//! let m: MyMutex<u32> = MyMutex::new(5); // `const INIT`: the lock is its own class
//! *m.lock() += 1;
//! assert_eq!(*m.lock(), 6);
//! ```

use lock_api::{
    RawMutex, RawMutexFair, RawMutexTimed, RawRwLock, RawRwLockDowngrade, RawRwLockFair,
    RawRwLockRecursive, RawRwLockRecursiveTimed, RawRwLockTimed, RawRwLockUpgrade,
    RawRwLockUpgradeDowngrade, RawRwLockUpgradeFair, RawRwLockUpgradeTimed,
};

use crate::lock::map::{Acquire, LockMap, Site};

/// Guards are `!Send` unless the `send_guard` feature is on (see [`crate::rt`] for how a release
/// on another thread is handled then).
#[cfg(not(feature = "send_guard"))]
type Marker = lock_api::GuardNoSend;
#[cfg(feature = "send_guard")]
type Marker = lock_api::GuardSend;

/// Records the acquisition of a lock that is already taken (a successful trylock). The record
/// can unwind: a report in panic mode, or a report handler that panics. The raw lock is then
/// held with no guard to release it, so `unlock` gives it back first (the validator has taken
/// the acquisition back by then). Costs nothing unless it unwinds.
#[track_caller]
#[inline]
pub(crate) fn record_taken(map: &LockMap, how: Acquire<'_>, site: Site, unlock: impl FnOnce()) {
    struct UnlockOnUnwind<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for UnlockOnUnwind<F> {
        fn drop(&mut self) {
            if let Some(unlock) = self.0.take() {
                unlock();
            }
        }
    }
    let mut guard = UnlockOnUnwind(Some(unlock));
    map.acquire_at(how, site);
    guard.0 = None;
}

/// A raw lock `R` and the [`LockMap`] that tells the validator about it.
#[derive(Debug)]
pub struct Lockdep<R> {
    raw: R,
    map: LockMap,
}

impl<R> Lockdep<R> {
    /// Wraps `raw` with `map`.
    pub const fn new(raw: R, map: LockMap) -> Lockdep<R> {
        Lockdep { raw, map }
    }

    /// The lock map.
    pub fn lock_map(&self) -> &LockMap {
        &self.map
    }

    /// The lock map, mutably (to change its key while the lock is not held).
    pub fn lock_map_mut(&mut self) -> &mut LockMap {
        &mut self.map
    }

    /// The wrapped raw lock. Operating it directly bypasses the validator.
    pub fn inner(&self) -> &R {
        &self.raw
    }
}

impl<R: RawMutex> Lockdep<R> {
    /// Validates then takes the lock, recording `how` (subclass, nest lock) and `site`.
    #[track_caller]
    #[inline]
    pub fn lock_with(&self, how: Acquire<'_>, site: Site) {
        self.map
            .acquire_lock(how, site, || self.raw.try_lock(), || self.raw.lock());
    }

    /// Tries the lock; on success records a trylock acquisition.
    #[track_caller]
    #[inline]
    pub fn try_lock_with(&self, how: Acquire<'_>, site: Site) -> bool {
        let ok = self.raw.try_lock();
        if ok {
            // SAFETY (of the unlock): the lock was just taken, and no guard exists yet.
            record_taken(&self.map, how.trylock(true), site, || unsafe {
                self.raw.unlock()
            });
        }
        ok
    }

    /// Releases the lock in the validator and unlocks it.
    ///
    /// # Safety
    /// The lock must be held by the current context, as for [`RawMutex::unlock`].
    #[inline]
    pub unsafe fn unlock_at(&self, site: Site) {
        self.map.release_at(site);
        // SAFETY: the caller guarantees the lock is held.
        unsafe { self.raw.unlock() }
    }
}

// SAFETY: every operation forwards to `R`, which upholds the `RawMutex` contract; the validator
// hooks only record what happens. Guards are `!Send` by default: the held-lock stack is per
// thread. With `send_guard` they are `Send` when `R`'s are not restricted further by `R` itself
// (the forwarded operations are the same), and a release on another thread is forwarded to the
// holder by the runtime.
unsafe impl<R: RawMutex> RawMutex for Lockdep<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Lockdep {
        raw: R::INIT,
        map: crate::sync::primitive_map(LockMap::self_keyed()),
    };
    type GuardMarker = Marker;

    #[track_caller]
    #[inline]
    fn lock(&self) {
        self.lock_with(Acquire::exclusive(), Site::caller());
    }

    #[track_caller]
    #[inline]
    fn try_lock(&self) -> bool {
        self.try_lock_with(Acquire::exclusive(), Site::caller())
    }

    #[track_caller]
    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.unlock_at(Site::caller()) }
    }

    fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawMutexFair> RawMutexFair for Lockdep<R> {
    #[track_caller]
    #[inline]
    unsafe fn unlock_fair(&self) {
        self.map.release_at(Site::caller());
        // SAFETY: forwarded contract: the lock is held.
        unsafe { self.raw.unlock_fair() }
    }

    #[track_caller]
    #[inline]
    unsafe fn bump(&self) {
        let site = Site::caller();
        self.map.release_at(site);
        // SAFETY: forwarded contract: the lock is held.
        unsafe { self.raw.bump() }
        self.map.acquire_at(Acquire::exclusive(), site);
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawMutexTimed> RawMutexTimed for Lockdep<R> {
    type Duration = R::Duration;
    type Instant = R::Instant;

    #[track_caller]
    #[inline]
    fn try_lock_for(&self, timeout: Self::Duration) -> bool {
        let ok = self.raw.try_lock_for(timeout);
        if ok {
            // SAFETY (of the unlock): the lock was just taken, and no guard exists yet.
            record_taken(
                &self.map,
                Acquire::exclusive().trylock(true),
                Site::caller(),
                || unsafe { self.raw.unlock() },
            );
        }
        ok
    }

    #[track_caller]
    #[inline]
    fn try_lock_until(&self, timeout: Self::Instant) -> bool {
        let ok = self.raw.try_lock_until(timeout);
        if ok {
            // SAFETY (of the unlock): the lock was just taken, and no guard exists yet.
            record_taken(
                &self.map,
                Acquire::exclusive().trylock(true),
                Site::caller(),
                || unsafe { self.raw.unlock() },
            );
        }
        ok
    }
}

impl<R: RawRwLock> Lockdep<R> {
    /// Records a successful try of the raw lock, which `unlock` releases again if the record
    /// unwinds (see [`record_taken`]).
    #[track_caller]
    #[inline]
    fn shared_then(&self, ok: bool, how: Acquire<'_>, site: Site, unlock: impl FnOnce()) -> bool {
        if ok {
            record_taken(&self.map, how.trylock(true), site, unlock);
        }
        ok
    }
}

// SAFETY: forwards to `R`; guards are `!Send` as for the mutex.
unsafe impl<R: RawRwLock> RawRwLock for Lockdep<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Lockdep {
        raw: R::INIT,
        map: crate::sync::primitive_map(LockMap::self_keyed()),
    };
    type GuardMarker = Marker;

    #[track_caller]
    #[inline]
    fn lock_shared(&self) {
        self.map.acquire_lock(
            Acquire::shared(),
            Site::caller(),
            || self.raw.try_lock_shared(),
            || self.raw.lock_shared(),
        );
    }

    #[track_caller]
    #[inline]
    fn try_lock_shared(&self) -> bool {
        self.shared_then(
            self.raw.try_lock_shared(),
            Acquire::shared(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_shared() },
        )
    }

    #[track_caller]
    #[inline]
    unsafe fn unlock_shared(&self) {
        self.map.release();
        // SAFETY: forwarded contract: a shared lock is held.
        unsafe { self.raw.unlock_shared() }
    }

    #[track_caller]
    #[inline]
    fn lock_exclusive(&self) {
        self.map.acquire_lock(
            Acquire::exclusive(),
            Site::caller(),
            || self.raw.try_lock_exclusive(),
            || self.raw.lock_exclusive(),
        );
    }

    #[track_caller]
    #[inline]
    fn try_lock_exclusive(&self) -> bool {
        self.shared_then(
            self.raw.try_lock_exclusive(),
            Acquire::exclusive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_exclusive() },
        )
    }

    #[track_caller]
    #[inline]
    unsafe fn unlock_exclusive(&self) {
        self.map.release();
        // SAFETY: forwarded contract: the exclusive lock is held.
        unsafe { self.raw.unlock_exclusive() }
    }

    fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    fn is_locked_exclusive(&self) -> bool {
        self.raw.is_locked_exclusive()
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockRecursive> RawRwLockRecursive for Lockdep<R> {
    #[track_caller]
    #[inline]
    fn lock_shared_recursive(&self) {
        self.map.acquire_lock(
            Acquire::shared_recursive(),
            Site::caller(),
            || self.raw.try_lock_shared_recursive(),
            || self.raw.lock_shared_recursive(),
        );
    }

    #[track_caller]
    #[inline]
    fn try_lock_shared_recursive(&self) -> bool {
        self.shared_then(
            self.raw.try_lock_shared_recursive(),
            Acquire::shared_recursive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_shared() },
        )
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockRecursiveTimed> RawRwLockRecursiveTimed for Lockdep<R> {
    #[track_caller]
    #[inline]
    fn try_lock_shared_recursive_for(&self, timeout: Self::Duration) -> bool {
        self.shared_then(
            self.raw.try_lock_shared_recursive_for(timeout),
            Acquire::shared_recursive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_shared() },
        )
    }

    #[track_caller]
    #[inline]
    fn try_lock_shared_recursive_until(&self, timeout: Self::Instant) -> bool {
        self.shared_then(
            self.raw.try_lock_shared_recursive_until(timeout),
            Acquire::shared_recursive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_shared() },
        )
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockTimed> RawRwLockTimed for Lockdep<R> {
    type Duration = R::Duration;
    type Instant = R::Instant;

    #[track_caller]
    #[inline]
    fn try_lock_shared_for(&self, timeout: Self::Duration) -> bool {
        self.shared_then(
            self.raw.try_lock_shared_for(timeout),
            Acquire::shared(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_shared() },
        )
    }

    #[track_caller]
    #[inline]
    fn try_lock_shared_until(&self, timeout: Self::Instant) -> bool {
        self.shared_then(
            self.raw.try_lock_shared_until(timeout),
            Acquire::shared(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_shared() },
        )
    }

    #[track_caller]
    #[inline]
    fn try_lock_exclusive_for(&self, timeout: Self::Duration) -> bool {
        self.shared_then(
            self.raw.try_lock_exclusive_for(timeout),
            Acquire::exclusive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_exclusive() },
        )
    }

    #[track_caller]
    #[inline]
    fn try_lock_exclusive_until(&self, timeout: Self::Instant) -> bool {
        self.shared_then(
            self.raw.try_lock_exclusive_until(timeout),
            Acquire::exclusive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_exclusive() },
        )
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockFair> RawRwLockFair for Lockdep<R> {
    #[track_caller]
    #[inline]
    unsafe fn unlock_shared_fair(&self) {
        self.map.release();
        // SAFETY: forwarded contract.
        unsafe { self.raw.unlock_shared_fair() }
    }

    #[track_caller]
    #[inline]
    unsafe fn unlock_exclusive_fair(&self) {
        self.map.release();
        // SAFETY: forwarded contract.
        unsafe { self.raw.unlock_exclusive_fair() }
    }

    #[track_caller]
    #[inline]
    unsafe fn bump_shared(&self) {
        let site = Site::caller();
        let read = if self.map.is_held_as(crate::ReadKind::SharedRecursive) {
            Acquire::shared_recursive()
        } else {
            Acquire::shared()
        };
        self.map.release_at(site);
        // SAFETY: forwarded contract.
        unsafe { self.raw.bump_shared() }
        self.map.acquire_at(read, site);
    }

    #[track_caller]
    #[inline]
    unsafe fn bump_exclusive(&self) {
        let site = Site::caller();
        self.map.release_at(site);
        // SAFETY: forwarded contract.
        unsafe { self.raw.bump_exclusive() }
        self.map.acquire_at(Acquire::exclusive(), site);
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockDowngrade> RawRwLockDowngrade for Lockdep<R> {
    #[track_caller]
    #[inline]
    unsafe fn downgrade(&self) {
        crate::rt::downgrade(&self.map, Site::caller());
        // SAFETY: forwarded contract: the exclusive lock is held.
        unsafe { self.raw.downgrade() }
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockUpgrade> RawRwLockUpgrade for Lockdep<R> {
    #[track_caller]
    #[inline]
    fn lock_upgradable(&self) {
        self.map.acquire_lock(
            Acquire::exclusive(),
            Site::caller(),
            || self.raw.try_lock_upgradable(),
            || self.raw.lock_upgradable(),
        );
    }

    #[track_caller]
    #[inline]
    fn try_lock_upgradable(&self) -> bool {
        self.shared_then(
            self.raw.try_lock_upgradable(),
            Acquire::exclusive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_upgradable() },
        )
    }

    #[track_caller]
    #[inline]
    unsafe fn unlock_upgradable(&self) {
        self.map.release();
        // SAFETY: forwarded contract: an upgradable lock is held.
        unsafe { self.raw.unlock_upgradable() }
    }

    unsafe fn upgrade(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.raw.upgrade() }
    }

    unsafe fn try_upgrade(&self) -> bool {
        // SAFETY: forwarded contract.
        unsafe { self.raw.try_upgrade() }
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockUpgradeFair> RawRwLockUpgradeFair for Lockdep<R> {
    #[track_caller]
    #[inline]
    unsafe fn unlock_upgradable_fair(&self) {
        self.map.release();
        // SAFETY: forwarded contract.
        unsafe { self.raw.unlock_upgradable_fair() }
    }

    #[track_caller]
    #[inline]
    unsafe fn bump_upgradable(&self) {
        let site = Site::caller();
        self.map.release_at(site);
        // SAFETY: forwarded contract.
        unsafe { self.raw.bump_upgradable() }
        self.map.acquire_at(Acquire::exclusive(), site);
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockUpgradeDowngrade> RawRwLockUpgradeDowngrade for Lockdep<R> {
    #[track_caller]
    #[inline]
    unsafe fn downgrade_upgradable(&self) {
        crate::rt::downgrade(&self.map, Site::caller());
        // SAFETY: forwarded contract.
        unsafe { self.raw.downgrade_upgradable() }
    }

    unsafe fn downgrade_to_upgradable(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.raw.downgrade_to_upgradable() }
    }
}

// SAFETY: forwards to `R`.
unsafe impl<R: RawRwLockUpgradeTimed> RawRwLockUpgradeTimed for Lockdep<R> {
    #[track_caller]
    #[inline]
    fn try_lock_upgradable_for(&self, timeout: Self::Duration) -> bool {
        self.shared_then(
            self.raw.try_lock_upgradable_for(timeout),
            Acquire::exclusive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_upgradable() },
        )
    }

    #[track_caller]
    #[inline]
    fn try_lock_upgradable_until(&self, timeout: Self::Instant) -> bool {
        self.shared_then(
            self.raw.try_lock_upgradable_until(timeout),
            Acquire::exclusive(),
            Site::caller(),
            // SAFETY: called only if the try above took the lock, before any guard exists.
            || unsafe { self.raw.unlock_upgradable() },
        )
    }

    #[track_caller]
    #[inline]
    unsafe fn try_upgrade_for(&self, timeout: Self::Duration) -> bool {
        // SAFETY: forwarded contract.
        unsafe { self.raw.try_upgrade_for(timeout) }
    }

    #[track_caller]
    #[inline]
    unsafe fn try_upgrade_until(&self, timeout: Self::Instant) -> bool {
        // SAFETY: forwarded contract.
        unsafe { self.raw.try_upgrade_until(timeout) }
    }
}
