//! [`Mutex`]: parking_lot's mutex, instrumented.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

use lock_api::RawMutex;

use crate::class::LockClassKey;
use crate::map::{Acquire, LockMap, Site};
use crate::sync::raw::Lockdep;
use crate::wait::WaitType;

/// A mutual exclusion lock with parking_lot's API, validated by lockdep.
///
/// Its class is its construction site: every `Mutex::new` call site is one class, however many
/// mutexes it makes, as every `mutex_init()` site is in the kernel. [`Mutex::with_key`] puts a
/// mutex in a named class instead. `R` is the raw lock (parking_lot's by default; any
/// `lock_api::RawMutex` works).
///
/// Everything `lock_api::Mutex` offers is reachable through `Deref` (`try_lock_for`,
/// `get_mut`, `is_locked`, `data_ptr`, ...), and the guards are `lock_api`'s, so
/// `MutexGuard::map` and friends work.
///
/// ```
/// use lockdep::Mutex;
///
/// let m = Mutex::new(vec![1, 2]);
/// m.lock().push(3);
/// assert_eq!(m.lock().len(), 3);
/// ```
pub struct Mutex<T: ?Sized, R = parking_lot::RawMutex> {
    inner: lock_api::Mutex<Lockdep<R>, T>,
}

/// The guard of a [`Mutex`].
pub type MutexGuard<'a, T, R = parking_lot::RawMutex> = lock_api::MutexGuard<'a, Lockdep<R>, T>;
/// A mapped guard of a [`Mutex`].
pub type MappedMutexGuard<'a, T, R = parking_lot::RawMutex> =
    lock_api::MappedMutexGuard<'a, Lockdep<R>, T>;

impl<T, R: RawMutex> Mutex<T, R> {
    /// A mutex whose class is this call site.
    #[track_caller]
    pub const fn new(value: T) -> Self {
        Mutex::with_map(
            value,
            LockMap::from_site(Location::caller()).with_wait(WaitType::Sleep, WaitType::Inv),
        )
    }

    /// A mutex in the class of `key`.
    pub const fn with_key(value: T, key: &'static LockClassKey) -> Self {
        Mutex::with_map(
            value,
            LockMap::named(key).with_wait(WaitType::Sleep, WaitType::Inv),
        )
    }

    /// A mutex with a lock map of your own (a key and wait types).
    pub const fn with_map(value: T, map: LockMap) -> Self {
        Mutex {
            inner: lock_api::Mutex::from_raw(Lockdep::new(R::INIT, map), value),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized, R: RawMutex> Mutex<T, R> {
    fn raw(&self) -> &Lockdep<R> {
        // SAFETY: the raw lock is only used through its safe, validated methods here; nothing
        // unlocks it behind a guard's back.
        unsafe { self.inner.raw() }
    }

    /// Acquires the mutex, blocking until it is available. The acquisition is validated before
    /// blocking.
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T, R> {
        self.lock_with(Acquire::exclusive())
    }

    /// Acquires the mutex as subclass `subclass` of its class (`mutex_lock_nested`): the way to
    /// hold two mutexes of one class on purpose, e.g. parent then child.
    ///
    /// ```
    /// use lockdep::{LockClassKey, Mutex};
    /// static NODE: LockClassKey = LockClassKey::new("&node->lock");
    ///
    /// let (parent, child) = (Mutex::with_key((), &NODE), Mutex::with_key((), &NODE));
    /// let _p = parent.lock();
    /// let _c = child.lock_nested(1); // `lock()` here would be reported as recursive locking
    /// ```
    #[track_caller]
    pub fn lock_nested(&self, subclass: u8) -> MutexGuard<'_, T, R> {
        self.lock_with(Acquire::exclusive().subclass(subclass))
    }

    /// Acquires the mutex under a nest lock (`mutex_lock_nest_lock`): many mutexes of one class
    /// may be held at once when `nest` is held and serialises them.
    #[track_caller]
    pub fn lock_nest_lock(&self, nest: &LockMap) -> MutexGuard<'_, T, R> {
        self.lock_with(Acquire::exclusive().nest_lock(nest))
    }

    /// Acquires the mutex with explicit acquisition arguments.
    #[track_caller]
    pub fn lock_with(&self, how: Acquire<'_>) -> MutexGuard<'_, T, R> {
        self.raw().lock_with(how, Site::caller());
        // SAFETY: the raw lock was just acquired.
        unsafe { self.inner.make_guard_unchecked() }
    }

    /// Attempts to acquire the mutex without blocking. A trylock is never validated and never
    /// the target of a dependency, but locks taken while holding it depend on it.
    #[track_caller]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T, R>> {
        if self
            .raw()
            .try_lock_with(Acquire::exclusive(), Site::caller())
        {
            // SAFETY: the raw lock was just acquired.
            Some(unsafe { self.inner.make_guard_unchecked() })
        } else {
            None
        }
    }

    /// The lock map of this mutex (for `might_lock`, asserts, or instrumentation).
    pub fn lock_map(&self) -> &LockMap {
        self.raw().lock_map()
    }

    /// The name of this mutex's class as reports print it.
    pub fn class_name(&self) -> String {
        crate::rt::class_name(self.lock_map())
    }

    /// Whether the current thread holds this mutex (`lockdep_is_held`).
    pub fn is_held(&self) -> bool {
        self.lock_map().is_held()
    }
}

impl<T: ?Sized, R> Deref for Mutex<T, R> {
    type Target = lock_api::Mutex<Lockdep<R>, T>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<T: ?Sized, R> DerefMut for Mutex<T, R> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<T: Default, R: RawMutex> Default for Mutex<T, R> {
    #[track_caller]
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T, R: RawMutex> From<T> for Mutex<T, R> {
    #[track_caller]
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug, R: RawMutex> fmt::Debug for Mutex<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
