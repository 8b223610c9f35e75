//! [`Mutex`]: parking_lot's mutex, instrumented.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

use lock_api::RawMutex;

use crate::lock::class::LockClassKey;
use crate::lock::map::{Acquire, LockMap, Site};
use crate::sync::raw::Lockdep;

/// A mutual exclusion lock with parking_lot's API, validated by lockdep.
///
/// Its class is its construction site: every `Mutex::new` call site is one class, however many
/// mutexes it makes, as every `mutex_init()` site is in the kernel. [`Mutex::with_key`] puts a
/// mutex in a named class instead. `R` is the raw lock: any `lock_api::RawMutex` works;
/// [`Mutex<T>`] is this type over parking_lot's.
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
#[repr(transparent)]
pub struct GenericMutex<R, T: ?Sized> {
    inner: lock_api::Mutex<Lockdep<R>, T>,
}

/// parking_lot's mutex, instrumented: the [`GenericMutex`] most programs use.
#[cfg(not(feature = "disabled"))]
pub type Mutex<T> = GenericMutex<parking_lot::RawMutex, T>;
/// The guard of a [`Mutex`].
#[cfg(not(feature = "disabled"))]
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, Lockdep<parking_lot::RawMutex>, T>;
/// A mapped guard of a [`Mutex`].
#[cfg(not(feature = "disabled"))]
pub type MappedMutexGuard<'a, T> =
    lock_api::MappedMutexGuard<'a, Lockdep<parking_lot::RawMutex>, T>;

/// With the `disabled` feature: parking_lot's own mutex, not validated.
#[cfg(feature = "disabled")]
pub type Mutex<T> = parking_lot::Mutex<T>;
/// With the `disabled` feature: parking_lot's own guard.
#[cfg(feature = "disabled")]
pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
/// With the `disabled` feature: parking_lot's own mapped guard.
#[cfg(feature = "disabled")]
pub type MappedMutexGuard<'a, T> = parking_lot::MappedMutexGuard<'a, T>;
/// A mutex whose class is this call site, in a `const` context (parking_lot's `const_mutex`).
#[cfg(not(feature = "disabled"))]
#[track_caller]
pub const fn const_mutex<T>(val: T) -> Mutex<T> {
    Mutex::new(val)
}
/// With the `disabled` feature: parking_lot's own `const_mutex`.
#[cfg(feature = "disabled")]
pub use parking_lot::const_mutex;

/// The guard of a [`GenericMutex`].
pub type GenericMutexGuard<'a, R, T> = lock_api::MutexGuard<'a, Lockdep<R>, T>;

impl<R: RawMutex, T> GenericMutex<R, T> {
    /// A mutex whose class is this call site.
    #[track_caller]
    pub const fn new(value: T) -> Self {
        GenericMutex::with_map(
            value,
            crate::sync::primitive_map(LockMap::from_site(Location::caller())),
        )
    }

    /// A mutex in the class of `key`.
    pub const fn with_key(value: T, key: &'static LockClassKey) -> Self {
        GenericMutex::with_map(value, crate::sync::primitive_map(LockMap::named(key)))
    }

    /// A mutex with a lock map of your own (a key and wait types).
    pub const fn with_map(value: T, map: LockMap) -> Self {
        GenericMutex {
            inner: lock_api::Mutex::from_raw(Lockdep::new(R::INIT, map), value),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<R: RawMutex, T: ?Sized> GenericMutex<R, T> {
    fn raw(&self) -> &Lockdep<R> {
        // SAFETY: the raw lock is only used through its safe, validated methods here; nothing
        // unlocks it behind a guard's back.
        unsafe { self.inner.raw() }
    }

    /// Acquires the mutex, blocking until it is available. The acquisition is validated before
    /// blocking.
    #[track_caller]
    #[inline]
    pub fn lock(&self) -> GenericMutexGuard<'_, R, T> {
        self.lock_with(Acquire::exclusive())
    }

    /// Acquires the mutex as subclass `subclass` of its class (`mutex_lock_nested`): the way to
    /// hold two mutexes of one class on purpose, e.g. parent then child.
    ///
    /// ```
    /// # #[cfg(not(feature = "disabled"))] {
    /// use lockdep::{LockClassKey, Mutex};
    /// static NODE: LockClassKey = LockClassKey::new("&node->lock");
    ///
    /// let (parent, child) = (Mutex::with_key((), &NODE), Mutex::with_key((), &NODE));
    /// let _p = parent.lock();
    /// let _c = child.lock_nested(1); // `lock()` here would be reported as recursive locking
    /// # }
    /// ```
    #[track_caller]
    pub fn lock_nested(&self, subclass: u8) -> GenericMutexGuard<'_, R, T> {
        self.lock_with(Acquire::exclusive().subclass(subclass))
    }

    /// Acquires the mutex under a nest lock (`mutex_lock_nest_lock`): many mutexes of one class
    /// may be held at once when `nest` is held and serialises them.
    #[track_caller]
    pub fn lock_nest_lock(&self, nest: &LockMap) -> GenericMutexGuard<'_, R, T> {
        self.lock_with(Acquire::exclusive().nest_lock(nest))
    }

    /// Acquires the mutex with explicit acquisition arguments.
    #[track_caller]
    #[inline]
    pub fn lock_with(&self, how: Acquire<'_>) -> GenericMutexGuard<'_, R, T> {
        self.raw().lock_with(how, Site::caller());
        // SAFETY: the raw lock was just acquired.
        unsafe { self.inner.make_guard_unchecked() }
    }

    /// Attempts to acquire the mutex without blocking. A trylock is never validated and never
    /// the target of a dependency, but locks taken while holding it depend on it.
    #[track_caller]
    #[inline]
    pub fn try_lock(&self) -> Option<GenericMutexGuard<'_, R, T>> {
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
    /// The `lock_api` mutex inside, behind an `Arc` (for the `arc_lock` guards).
    #[cfg(feature = "arc_lock")]
    fn arc_inner(self: &std::sync::Arc<Self>) -> std::sync::Arc<lock_api::Mutex<Lockdep<R>, T>> {
        let raw = std::sync::Arc::into_raw(std::sync::Arc::clone(self));
        // SAFETY: `GenericMutex` is `repr(transparent)` over the `lock_api` mutex, so the
        // pointer is one to that type, from an `Arc` of the same size and alignment.
        unsafe { std::sync::Arc::from_raw(raw as *const lock_api::Mutex<Lockdep<R>, T>) }
    }

    /// Locks through an `Arc`, with a guard that owns a reference instead of borrowing
    /// (`arc_lock`).
    #[cfg(feature = "arc_lock")]
    pub fn lock_arc(self: &std::sync::Arc<Self>) -> lock_api::ArcMutexGuard<Lockdep<R>, T> {
        self.arc_inner().lock_arc()
    }

    /// Tries to lock through an `Arc` (`arc_lock`).
    #[cfg(feature = "arc_lock")]
    pub fn try_lock_arc(
        self: &std::sync::Arc<Self>,
    ) -> Option<lock_api::ArcMutexGuard<Lockdep<R>, T>> {
        self.arc_inner().try_lock_arc()
    }
}

#[cfg(feature = "arc_lock")]
impl<R: lock_api::RawMutexTimed, T: ?Sized> GenericMutex<R, T> {
    /// Tries to lock through an `Arc` for at most `timeout` (`arc_lock`).
    pub fn try_lock_arc_for(
        self: &std::sync::Arc<Self>,
        timeout: R::Duration,
    ) -> Option<lock_api::ArcMutexGuard<Lockdep<R>, T>> {
        self.arc_inner().try_lock_arc_for(timeout)
    }

    /// Tries to lock through an `Arc` until `timeout` (`arc_lock`).
    pub fn try_lock_arc_until(
        self: &std::sync::Arc<Self>,
        timeout: R::Instant,
    ) -> Option<lock_api::ArcMutexGuard<Lockdep<R>, T>> {
        self.arc_inner().try_lock_arc_until(timeout)
    }
}

impl<R, T: ?Sized> Deref for GenericMutex<R, T> {
    type Target = lock_api::Mutex<Lockdep<R>, T>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<R, T: ?Sized> DerefMut for GenericMutex<R, T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<R: RawMutex, T: Default> Default for GenericMutex<R, T> {
    /// Its class is the construction site refined at its first acquisition (by the field it is
    /// reached through), so the
    /// lock fields of a `#[derive(Default)]` struct are distinct classes (`docs/SEMANTICS.md`).
    #[track_caller]
    fn default() -> Self {
        GenericMutex::with_map(
            T::default(),
            crate::sync::primitive_map(LockMap::from_default_site(Location::caller())),
        )
    }
}

impl<R: RawMutex, T> From<T> for GenericMutex<R, T> {
    #[track_caller]
    fn from(value: T) -> Self {
        GenericMutex::new(value)
    }
}

impl<R: RawMutex, T: ?Sized + fmt::Debug> fmt::Debug for GenericMutex<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
