//! [`RwLock`]: parking_lot's reader-writer lock, instrumented.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

use lock_api::{RawRwLock, RawRwLockRecursive, RawRwLockUpgrade};

use crate::lock::class::LockClassKey;
use crate::lock::map::{Acquire, LockMap, Site};
use crate::sync::raw::Lockdep;

/// A reader-writer lock with parking_lot's API, validated by lockdep with the kernel's read
/// rules. `R` is the raw lock: any `lock_api::RawRwLock`; [`RwLock<T>`] is this type over
/// parking_lot's.
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
#[repr(transparent)]
pub struct GenericRwLock<R, T: ?Sized> {
    inner: lock_api::RwLock<Lockdep<R>, T>,
}

#[cfg(not(feature = "disabled"))]
mod aliases {
    use super::*;
    /// parking_lot's reader-writer lock, instrumented: the [`GenericRwLock`] most programs use.
    pub type RwLock<T> = GenericRwLock<parking_lot::RawRwLock, T>;
    /// A read guard of an [`RwLock`].
    pub type RwLockReadGuard<'a, T> =
        lock_api::RwLockReadGuard<'a, Lockdep<parking_lot::RawRwLock>, T>;
    /// A write guard of an [`RwLock`].
    pub type RwLockWriteGuard<'a, T> =
        lock_api::RwLockWriteGuard<'a, Lockdep<parking_lot::RawRwLock>, T>;
    /// An upgradable read guard of an [`RwLock`].
    pub type RwLockUpgradableReadGuard<'a, T> =
        lock_api::RwLockUpgradableReadGuard<'a, Lockdep<parking_lot::RawRwLock>, T>;
    /// A mapped read guard of an [`RwLock`].
    pub type MappedRwLockReadGuard<'a, T> =
        lock_api::MappedRwLockReadGuard<'a, Lockdep<parking_lot::RawRwLock>, T>;
    /// A mapped write guard of an [`RwLock`].
    pub type MappedRwLockWriteGuard<'a, T> =
        lock_api::MappedRwLockWriteGuard<'a, Lockdep<parking_lot::RawRwLock>, T>;
}

/// With the `disabled` feature: parking_lot's own types, not validated.
#[cfg(feature = "disabled")]
mod aliases {
    pub use parking_lot::{
        MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard,
        RwLockUpgradableReadGuard, RwLockWriteGuard,
    };
}

pub use aliases::*;

/// A reader-writer lock whose class is this call site, in a `const` context (parking_lot's
/// `const_rwlock`).
#[cfg(not(feature = "disabled"))]
#[track_caller]
pub const fn const_rwlock<T>(val: T) -> RwLock<T> {
    RwLock::new(val)
}
/// With the `disabled` feature: parking_lot's own `const_rwlock`.
#[cfg(feature = "disabled")]
pub use parking_lot::const_rwlock;
/// A read guard of a [`GenericRwLock`].
pub type GenericReadGuard<'a, R, T> = lock_api::RwLockReadGuard<'a, Lockdep<R>, T>;
/// A write guard of a [`GenericRwLock`].
pub type GenericWriteGuard<'a, R, T> = lock_api::RwLockWriteGuard<'a, Lockdep<R>, T>;
/// An upgradable read guard of a [`GenericRwLock`].
pub type GenericUpgradableReadGuard<'a, R, T> =
    lock_api::RwLockUpgradableReadGuard<'a, Lockdep<R>, T>;

impl<R: RawRwLock, T> GenericRwLock<R, T> {
    /// A lock whose class is this call site.
    #[track_caller]
    pub const fn new(value: T) -> Self {
        GenericRwLock::with_map(
            value,
            crate::sync::primitive_map(LockMap::from_site(Location::caller())),
        )
    }

    /// A lock in the class of `key`.
    pub const fn with_key(value: T, key: &'static LockClassKey) -> Self {
        GenericRwLock::with_map(value, crate::sync::primitive_map(LockMap::named(key)))
    }

    /// A lock with a lock map of your own.
    pub const fn with_map(value: T, map: LockMap) -> Self {
        GenericRwLock {
            inner: lock_api::RwLock::from_raw(Lockdep::new(R::INIT, map), value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<R: RawRwLock, T: ?Sized> GenericRwLock<R, T> {
    fn raw(&self) -> &Lockdep<R> {
        // SAFETY: the raw lock is only used through the validated paths of this type.
        unsafe { self.inner.raw() }
    }

    /// Takes an exclusive (write) hold.
    #[track_caller]
    #[inline]
    pub fn write(&self) -> GenericWriteGuard<'_, R, T> {
        self.write_with(Acquire::exclusive())
    }

    /// Takes an exclusive hold with explicit acquisition arguments (subclass, nest lock).
    #[track_caller]
    pub fn write_with(&self, how: Acquire<'_>) -> GenericWriteGuard<'_, R, T> {
        let raw = self.raw().inner();
        self.lock_map().acquire_lock(
            how,
            Site::caller(),
            || raw.try_lock_exclusive(),
            || raw.lock_exclusive(),
        );
        // SAFETY: the exclusive lock was just acquired.
        unsafe { self.inner.make_write_guard_unchecked() }
    }

    /// Takes a non-recursive shared (read) hold: `down_read`.
    #[track_caller]
    #[inline]
    pub fn read(&self) -> GenericReadGuard<'_, R, T> {
        self.read_with(Acquire::shared())
    }

    /// Takes a non-recursive shared hold with explicit acquisition arguments (subclass, nest
    /// lock); the read kind of `how` is ignored.
    #[track_caller]
    pub fn read_with(&self, how: Acquire<'_>) -> GenericReadGuard<'_, R, T> {
        let how = how.with_read(crate::ReadKind::Shared);
        let raw = self.raw().inner();
        self.lock_map().acquire_lock(
            how,
            Site::caller(),
            || raw.try_lock_shared(),
            || raw.lock_shared(),
        );
        // SAFETY: a shared lock was just acquired.
        unsafe { self.inner.make_read_guard_unchecked() }
    }

    /// Tries an exclusive hold without blocking (validated as a trylock).
    #[track_caller]
    #[inline]
    pub fn try_write(&self) -> Option<GenericWriteGuard<'_, R, T>> {
        if self.raw().inner().try_lock_exclusive() {
            // SAFETY (of the unlock): the hold was just taken, and no guard exists yet.
            crate::sync::raw::record_taken(
                self.lock_map(),
                Acquire::exclusive().trylock(true),
                Site::caller(),
                || unsafe { self.raw().inner().unlock_exclusive() },
            );
            // SAFETY: the exclusive lock was just acquired.
            Some(unsafe { self.inner.make_write_guard_unchecked() })
        } else {
            None
        }
    }

    /// Tries a shared hold without blocking (validated as a trylock).
    #[track_caller]
    #[inline]
    pub fn try_read(&self) -> Option<GenericReadGuard<'_, R, T>> {
        if self.raw().inner().try_lock_shared() {
            // SAFETY (of the unlock): the hold was just taken, and no guard exists yet.
            crate::sync::raw::record_taken(
                self.lock_map(),
                Acquire::shared().trylock(true),
                Site::caller(),
                || unsafe { self.raw().inner().unlock_shared() },
            );
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

impl<R: RawRwLockRecursive, T: ?Sized> GenericRwLock<R, T> {
    /// Takes a recursive shared hold: never blocked by other readers, even with a writer
    /// waiting (the kernel's `read_lock`).
    #[track_caller]
    #[inline]
    pub fn read_recursive(&self) -> GenericReadGuard<'_, R, T> {
        let raw = self.raw().inner();
        self.lock_map().acquire_lock(
            Acquire::shared_recursive(),
            Site::caller(),
            || raw.try_lock_shared_recursive(),
            || raw.lock_shared_recursive(),
        );
        // SAFETY: a shared lock was just acquired.
        unsafe { self.inner.make_read_guard_unchecked() }
    }

    /// Tries a recursive shared hold without blocking.
    #[track_caller]
    pub fn try_read_recursive(&self) -> Option<GenericReadGuard<'_, R, T>> {
        if self.raw().inner().try_lock_shared_recursive() {
            // SAFETY (of the unlock): the hold was just taken, and no guard exists yet.
            crate::sync::raw::record_taken(
                self.lock_map(),
                Acquire::shared_recursive().trylock(true),
                Site::caller(),
                || unsafe { self.raw().inner().unlock_shared() },
            );
            // SAFETY: a shared lock was just acquired.
            Some(unsafe { self.inner.make_read_guard_unchecked() })
        } else {
            None
        }
    }
}

impl<R: RawRwLockUpgrade, T: ?Sized> GenericRwLock<R, T> {
    /// Takes an upgradable read hold (modelled as exclusive; see [`Lockdep`](crate::sync::Lockdep)).
    #[track_caller]
    pub fn upgradable_read(&self) -> GenericUpgradableReadGuard<'_, R, T> {
        let raw = self.raw().inner();
        self.lock_map().acquire_lock(
            Acquire::exclusive(),
            Site::caller(),
            || raw.try_lock_upgradable(),
            || raw.lock_upgradable(),
        );
        // SAFETY: an upgradable lock was just acquired.
        unsafe { self.inner.make_upgradable_guard_unchecked() }
    }
}

impl<R, T: ?Sized> Deref for GenericRwLock<R, T> {
    type Target = lock_api::RwLock<Lockdep<R>, T>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<R, T: ?Sized> DerefMut for GenericRwLock<R, T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<R: RawRwLock, T: Default> Default for GenericRwLock<R, T> {
    /// Its class is the construction site refined at its first acquisition (by the field it is
    /// reached through), so the
    /// lock fields of a `#[derive(Default)]` struct are distinct classes (`docs/SEMANTICS.md`).
    #[track_caller]
    fn default() -> Self {
        GenericRwLock::with_map(
            T::default(),
            crate::sync::primitive_map(LockMap::from_default_site(Location::caller())),
        )
    }
}

impl<R: RawRwLock, T> From<T> for GenericRwLock<R, T> {
    #[track_caller]
    fn from(value: T) -> Self {
        GenericRwLock::new(value)
    }
}

impl<R: RawRwLock, T: ?Sized + fmt::Debug> fmt::Debug for GenericRwLock<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// The `arc_lock` guards: each forwards to `lock_api`'s method of the same name on the lock
/// inside (the hooks run in the raw lock's methods, as for every `lock_api` path).
#[cfg(feature = "arc_lock")]
mod arc {
    use std::sync::Arc;

    use lock_api::{
        ArcRwLockReadGuard, ArcRwLockUpgradableReadGuard, ArcRwLockWriteGuard, RawRwLock,
        RawRwLockRecursive, RawRwLockRecursiveTimed, RawRwLockTimed, RawRwLockUpgrade,
        RawRwLockUpgradeTimed,
    };

    use super::GenericRwLock;
    use crate::sync::raw::Lockdep;

    type Inner<R, T> = lock_api::RwLock<Lockdep<R>, T>;

    impl<R: RawRwLock, T: ?Sized> GenericRwLock<R, T> {
        fn arc_inner(self: &Arc<Self>) -> Arc<Inner<R, T>> {
            let raw = Arc::into_raw(Arc::clone(self));
            // SAFETY: `GenericRwLock` is `repr(transparent)` over the `lock_api` lock, so the
            // pointer is one to that type, from an `Arc` of the same size and alignment.
            unsafe { Arc::from_raw(raw as *const Inner<R, T>) }
        }

        /// A read (non-recursive) hold through an `Arc`.
        pub fn read_arc(self: &Arc<Self>) -> ArcRwLockReadGuard<Lockdep<R>, T> {
            self.arc_inner().read_arc()
        }

        /// Tries a read hold through an `Arc`.
        pub fn try_read_arc(self: &Arc<Self>) -> Option<ArcRwLockReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_read_arc()
        }

        /// A write hold through an `Arc`.
        pub fn write_arc(self: &Arc<Self>) -> ArcRwLockWriteGuard<Lockdep<R>, T> {
            self.arc_inner().write_arc()
        }

        /// Tries a write hold through an `Arc`.
        pub fn try_write_arc(self: &Arc<Self>) -> Option<ArcRwLockWriteGuard<Lockdep<R>, T>> {
            self.arc_inner().try_write_arc()
        }
    }

    impl<R: RawRwLockTimed, T: ?Sized> GenericRwLock<R, T> {
        /// Tries a read hold through an `Arc` for at most `timeout`.
        pub fn try_read_arc_for(
            self: &Arc<Self>,
            timeout: R::Duration,
        ) -> Option<ArcRwLockReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_read_arc_for(timeout)
        }

        /// Tries a read hold through an `Arc` until `timeout`.
        pub fn try_read_arc_until(
            self: &Arc<Self>,
            timeout: R::Instant,
        ) -> Option<ArcRwLockReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_read_arc_until(timeout)
        }

        /// Tries a write hold through an `Arc` for at most `timeout`.
        pub fn try_write_arc_for(
            self: &Arc<Self>,
            timeout: R::Duration,
        ) -> Option<ArcRwLockWriteGuard<Lockdep<R>, T>> {
            self.arc_inner().try_write_arc_for(timeout)
        }

        /// Tries a write hold through an `Arc` until `timeout`.
        pub fn try_write_arc_until(
            self: &Arc<Self>,
            timeout: R::Instant,
        ) -> Option<ArcRwLockWriteGuard<Lockdep<R>, T>> {
            self.arc_inner().try_write_arc_until(timeout)
        }
    }

    impl<R: RawRwLockRecursive, T: ?Sized> GenericRwLock<R, T> {
        /// A recursive read hold through an `Arc`.
        pub fn read_arc_recursive(self: &Arc<Self>) -> ArcRwLockReadGuard<Lockdep<R>, T> {
            self.arc_inner().read_arc_recursive()
        }

        /// Tries a recursive read hold through an `Arc`.
        pub fn try_read_recursive_arc(
            self: &Arc<Self>,
        ) -> Option<ArcRwLockReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_read_recursive_arc()
        }
    }

    impl<R: RawRwLockRecursiveTimed, T: ?Sized> GenericRwLock<R, T> {
        /// Tries a recursive read hold through an `Arc` for at most `timeout`.
        pub fn try_read_arc_recursive_for(
            self: &Arc<Self>,
            timeout: R::Duration,
        ) -> Option<ArcRwLockReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_read_arc_recursive_for(timeout)
        }

        /// Tries a recursive read hold through an `Arc` until `timeout`.
        pub fn try_read_arc_recursive_until(
            self: &Arc<Self>,
            timeout: R::Instant,
        ) -> Option<ArcRwLockReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_read_arc_recursive_until(timeout)
        }
    }

    impl<R: RawRwLockUpgrade, T: ?Sized> GenericRwLock<R, T> {
        /// An upgradable read hold through an `Arc`.
        pub fn upgradable_read_arc(
            self: &Arc<Self>,
        ) -> ArcRwLockUpgradableReadGuard<Lockdep<R>, T> {
            self.arc_inner().upgradable_read_arc()
        }

        /// Tries an upgradable read hold through an `Arc`.
        pub fn try_upgradable_read_arc(
            self: &Arc<Self>,
        ) -> Option<ArcRwLockUpgradableReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_upgradable_read_arc()
        }
    }

    impl<R: RawRwLockUpgradeTimed, T: ?Sized> GenericRwLock<R, T> {
        /// Tries an upgradable read hold through an `Arc` for at most `timeout`.
        pub fn try_upgradable_read_arc_for(
            self: &Arc<Self>,
            timeout: R::Duration,
        ) -> Option<ArcRwLockUpgradableReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_upgradable_read_arc_for(timeout)
        }

        /// Tries an upgradable read hold through an `Arc` until `timeout`.
        pub fn try_upgradable_read_arc_until(
            self: &Arc<Self>,
            timeout: R::Instant,
        ) -> Option<ArcRwLockUpgradableReadGuard<Lockdep<R>, T>> {
            self.arc_inner().try_upgradable_read_arc_until(timeout)
        }
    }
}
