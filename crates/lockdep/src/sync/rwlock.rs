//! [`RwLock`]: parking_lot's reader-writer lock, instrumented.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

use lock_api::{RawRwLock, RawRwLockRecursive, RawRwLockUpgrade};

use crate::class::LockClassKey;
use crate::map::{Acquire, LockMap, Site};
use crate::sync::raw::Lockdep;
use crate::wait::WaitType;

/// A reader-writer lock with parking_lot's API, validated by lockdep with the kernel's read
/// rules.
///
/// The three ways in map to the kernel's three acquire kinds, matching parking_lot's own
/// semantics:
///
/// - [`write`](RwLock::write): exclusive;
/// - [`read`](RwLock::read): a *non-recursive* reader. parking_lot lets a waiting writer block new
///   readers, so taking `read` twice on one thread can deadlock, and is reported as recursive
///   locking; and a reader in a cycle of readers can deadlock;
/// - [`read_recursive`](RwLock::read_recursive): a *recursive* reader, never blocked by other
///   readers: nesting it is fine, and a cycle made only of recursive reads is not a deadlock.
///
/// ```
/// use lockdep::RwLock;
///
/// let l = RwLock::new(5);
/// {
///     let a = l.read_recursive();
///     let b = l.read_recursive(); // allowed: recursive readers do not block each other
///     assert_eq!(*a + *b, 10);
/// }
/// *l.write() += 1;
/// assert_eq!(*l.read(), 6);
/// ```
pub struct RwLock<T: ?Sized, R = parking_lot::RawRwLock> {
    inner: lock_api::RwLock<Lockdep<R>, T>,
}

/// A read guard of an [`RwLock`].
pub type RwLockReadGuard<'a, T, R = parking_lot::RawRwLock> =
    lock_api::RwLockReadGuard<'a, Lockdep<R>, T>;
/// A write guard of an [`RwLock`].
pub type RwLockWriteGuard<'a, T, R = parking_lot::RawRwLock> =
    lock_api::RwLockWriteGuard<'a, Lockdep<R>, T>;
/// An upgradable read guard of an [`RwLock`].
pub type RwLockUpgradableReadGuard<'a, T, R = parking_lot::RawRwLock> =
    lock_api::RwLockUpgradableReadGuard<'a, Lockdep<R>, T>;
/// A mapped read guard.
pub type MappedRwLockReadGuard<'a, T, R = parking_lot::RawRwLock> =
    lock_api::MappedRwLockReadGuard<'a, Lockdep<R>, T>;
/// A mapped write guard.
pub type MappedRwLockWriteGuard<'a, T, R = parking_lot::RawRwLock> =
    lock_api::MappedRwLockWriteGuard<'a, Lockdep<R>, T>;

impl<T, R: RawRwLock> RwLock<T, R> {
    /// A lock whose class is this call site.
    #[track_caller]
    pub const fn new(value: T) -> Self {
        RwLock::with_map(
            value,
            LockMap::from_site(Location::caller()).with_wait(WaitType::Sleep, WaitType::Inv),
        )
    }

    /// A lock in the class of `key`.
    pub const fn with_key(value: T, key: &'static LockClassKey) -> Self {
        RwLock::with_map(
            value,
            LockMap::named(key).with_wait(WaitType::Sleep, WaitType::Inv),
        )
    }

    /// A lock with a lock map of your own.
    pub const fn with_map(value: T, map: LockMap) -> Self {
        RwLock {
            inner: lock_api::RwLock::from_raw(Lockdep::new(R::INIT, map), value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized, R: RawRwLock> RwLock<T, R> {
    fn raw(&self) -> &Lockdep<R> {
        // SAFETY: the raw lock is only used through the validated paths of this type.
        unsafe { self.inner.raw() }
    }

    /// Takes an exclusive (write) hold.
    #[track_caller]
    pub fn write(&self) -> RwLockWriteGuard<'_, T, R> {
        self.write_with(Acquire::exclusive())
    }

    /// Takes an exclusive hold with explicit acquisition arguments (subclass, nest lock).
    #[track_caller]
    pub fn write_with(&self, how: Acquire<'_>) -> RwLockWriteGuard<'_, T, R> {
        self.lock_map().acquire_at(how, Site::caller());
        self.raw().inner().lock_exclusive();
        // SAFETY: the exclusive lock was just acquired.
        unsafe { self.inner.make_write_guard_unchecked() }
    }

    /// Takes a non-recursive shared (read) hold: `down_read`.
    #[track_caller]
    pub fn read(&self) -> RwLockReadGuard<'_, T, R> {
        self.read_with(Acquire::shared())
    }

    /// Takes a non-recursive shared hold with explicit acquisition arguments (subclass, nest
    /// lock); the read kind of `how` is ignored.
    #[track_caller]
    pub fn read_with(&self, how: Acquire<'_>) -> RwLockReadGuard<'_, T, R> {
        let how = how.with_read(crate::ReadKind::Shared);
        self.lock_map().acquire_at(how, Site::caller());
        self.raw().inner().lock_shared();
        // SAFETY: a shared lock was just acquired.
        unsafe { self.inner.make_read_guard_unchecked() }
    }

    /// Tries an exclusive hold without blocking (validated as a trylock).
    #[track_caller]
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T, R>> {
        if self.raw().inner().try_lock_exclusive() {
            self.lock_map()
                .acquire_at(Acquire::exclusive().trylock(true), Site::caller());
            // SAFETY: the exclusive lock was just acquired.
            Some(unsafe { self.inner.make_write_guard_unchecked() })
        } else {
            None
        }
    }

    /// Tries a shared hold without blocking (validated as a trylock).
    #[track_caller]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T, R>> {
        if self.raw().inner().try_lock_shared() {
            self.lock_map()
                .acquire_at(Acquire::shared().trylock(true), Site::caller());
            // SAFETY: a shared lock was just acquired.
            Some(unsafe { self.inner.make_read_guard_unchecked() })
        } else {
            None
        }
    }

    /// The lock map of this lock.
    pub fn lock_map(&self) -> &LockMap {
        self.raw().lock_map()
    }

    /// The name of this lock's class as reports print it.
    pub fn class_name(&self) -> String {
        crate::rt::class_name(self.lock_map())
    }
}

impl<T: ?Sized, R: RawRwLockRecursive> RwLock<T, R> {
    /// Takes a recursive shared hold: never blocked by other readers, even with a writer
    /// waiting (the kernel's `read_lock`).
    #[track_caller]
    pub fn read_recursive(&self) -> RwLockReadGuard<'_, T, R> {
        self.lock_map()
            .acquire_at(Acquire::shared_recursive(), Site::caller());
        self.raw().inner().lock_shared_recursive();
        // SAFETY: a shared lock was just acquired.
        unsafe { self.inner.make_read_guard_unchecked() }
    }

    /// Tries a recursive shared hold without blocking.
    #[track_caller]
    pub fn try_read_recursive(&self) -> Option<RwLockReadGuard<'_, T, R>> {
        if self.raw().inner().try_lock_shared_recursive() {
            self.lock_map()
                .acquire_at(Acquire::shared_recursive().trylock(true), Site::caller());
            // SAFETY: a shared lock was just acquired.
            Some(unsafe { self.inner.make_read_guard_unchecked() })
        } else {
            None
        }
    }
}

impl<T: ?Sized, R: RawRwLockUpgrade> RwLock<T, R> {
    /// Takes an upgradable read hold (modelled as exclusive; see [`crate::sync::raw`]).
    #[track_caller]
    pub fn upgradable_read(&self) -> RwLockUpgradableReadGuard<'_, T, R> {
        self.lock_map()
            .acquire_at(Acquire::exclusive(), Site::caller());
        self.raw().inner().lock_upgradable();
        // SAFETY: an upgradable lock was just acquired.
        unsafe { self.inner.make_upgradable_guard_unchecked() }
    }
}

impl<T: ?Sized, R> Deref for RwLock<T, R> {
    type Target = lock_api::RwLock<Lockdep<R>, T>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<T: ?Sized, R> DerefMut for RwLock<T, R> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<T: Default, R: RawRwLock> Default for RwLock<T, R> {
    #[track_caller]
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T, R: RawRwLock> From<T> for RwLock<T, R> {
    #[track_caller]
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug, R: RawRwLock> fmt::Debug for RwLock<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
