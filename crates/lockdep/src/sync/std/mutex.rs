//! [`Mutex`]: std's mutex, validated.

use ::std::cell::UnsafeCell;
use ::std::fmt;
use ::std::marker::PhantomData;
use ::std::mem::ManuallyDrop;
use ::std::ops::{Deref, DerefMut};
use ::std::panic::{Location, RefUnwindSafe, UnwindSafe};
use ::std::ptr::NonNull;
use ::std::sync::{LockResult, TryLockError, TryLockResult};

use super::poison;
use crate::lock::class::LockClassKey;
use crate::lock::map::{Acquire, LockMap, Site};
use crate::sync::raw::Lockdep;

type Raw = Lockdep<parking_lot::RawMutex>;

/// A mutual exclusion lock with `std::sync::Mutex`'s API and poisoning, validated by lockdep.
///
/// Its class is its construction site (one class for every mutex a `Mutex::new` call makes);
/// [`Mutex::with_key`] names a class instead. A panic while a guard is alive poisons the mutex:
/// later `lock`s return `Err(PoisonError)` holding the guard, as std's do.
///
/// ```
/// use lockdep::std::sync::{Arc, Mutex};
///
/// let m = Arc::new(Mutex::new(0));
/// let m2 = Arc::clone(&m);
/// let _ = std::thread::spawn(move || {
///     let _g = m2.lock().unwrap();
///     panic!("poisons the mutex");
/// })
/// .join();
/// assert!(m.is_poisoned());
/// *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
/// m.clear_poison();
/// assert_eq!(*m.lock().unwrap(), 1);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: Raw,
    poison: poison::Flag,
    data: UnsafeCell<T>,
}

// SAFETY: the data is only reached through a guard, which exists only while the raw lock is
// held, so `T: Send` is enough to share the mutex (as for std's).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
impl<T: ?Sized> UnwindSafe for Mutex<T> {}
impl<T: ?Sized> RefUnwindSafe for Mutex<T> {}

/// The guard of a [`Mutex`]: the lock is released when it is dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    poison: poison::Guard,
    /// `!Send`: a mutex is released by the thread that took it.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

/// A guard of a part of a [`Mutex`]'s data, made by [`MutexGuard::map`] (std's
/// `MappedMutexGuard`, unstable there).
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MappedMutexGuard<'a, T: ?Sized> {
    data: NonNull<T>,
    raw: &'a Raw,
    poison_flag: &'a poison::Flag,
    poison: poison::Guard,
    _variance: PhantomData<&'a mut T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MappedMutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex whose class is this call site.
    #[track_caller]
    pub const fn new(t: T) -> Mutex<T> {
        Mutex::with_map(t, super::map_of(LockMap::from_site(Location::caller())))
    }

    /// A new unlocked mutex in the class of `key` (not in std).
    pub const fn with_key(t: T, key: &'static LockClassKey) -> Mutex<T> {
        Mutex::with_map(t, super::map_of(LockMap::named(key)))
    }

    pub(crate) const fn with_map(t: T, map: LockMap) -> Mutex<T> {
        Mutex {
            raw: Lockdep::new(<parking_lot::RawMutex as lock_api::RawMutex>::INIT, map),
            poison: poison::Flag::new(),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex and returns its data (in an `Err` if poisoned).
    pub fn into_inner(self) -> LockResult<T>
    where
        T: Sized,
    {
        let poisoned = self.poison.borrow();
        let data = self.data.into_inner();
        poison::map_result(poisoned, |()| data)
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the mutex, blocking until it is available; validated before blocking. `Err` if
    /// the mutex is poisoned (the guard is inside).
    #[track_caller]
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.raw.lock_with(Acquire::exclusive(), Site::caller());
        // SAFETY: the raw lock was just acquired.
        unsafe { MutexGuard::new(self) }
    }

    /// Acquires the mutex as subclass `subclass` of its class (`mutex_lock_nested`; not in std).
    #[track_caller]
    pub fn lock_nested(&self, subclass: u8) -> LockResult<MutexGuard<'_, T>> {
        self.raw
            .lock_with(Acquire::exclusive().subclass(subclass), Site::caller());
        // SAFETY: the raw lock was just acquired.
        unsafe { MutexGuard::new(self) }
    }

    /// Attempts to acquire the mutex without blocking: `Err(WouldBlock)` if it is held,
    /// `Err(Poisoned)` (with the guard) if it is poisoned.
    #[track_caller]
    #[inline]
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self.raw.try_lock_with(Acquire::exclusive(), Site::caller()) {
            // SAFETY: the raw lock was just acquired.
            Ok(unsafe { MutexGuard::new(self) }?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether the mutex is poisoned.
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poisoned state.
    #[inline]
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// A mutable reference to the data: no locking needed (in an `Err` if poisoned).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.borrow();
        let data = self.data.get_mut();
        poison::map_result(poisoned, |()| data)
    }

    /// The lock map of this mutex (not in std).
    pub fn lock_map(&self) -> &LockMap {
        self.raw.lock_map()
    }

    /// The name of this mutex's class as reports print it (not in std).
    pub fn class_name(&self) -> String {
        crate::rt::class_name(self.lock_map())
    }
}

impl<T: Default> Default for Mutex<T> {
    /// A mutex of `T::default()`; its class is the construction site refined at its
    /// first acquisition (by the field it is reached through) (see `docs/SEMANTICS.md`: two fields of one `#[derive(Default)]` struct
    /// are two classes).
    #[track_caller]
    fn default() -> Mutex<T> {
        Mutex::with_map(
            T::default(),
            super::map_of(LockMap::from_default_site(Location::caller())),
        )
    }
}

impl<T> From<T> for Mutex<T> {
    #[track_caller]
    fn from(t: T) -> Self {
        Mutex::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => {
                d.field("data", &&*guard);
            }
            Err(TryLockError::Poisoned(err)) => {
                d.field("data", &&**err.get_ref());
            }
            Err(TryLockError::WouldBlock) => {
                d.field("data", &format_args!("<locked>"));
            }
        }
        d.field("poisoned", &self.poison.get());
        d.finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// # Safety
    /// The raw lock must be held by the current thread.
    unsafe fn new(lock: &'a Mutex<T>) -> LockResult<MutexGuard<'a, T>> {
        poison::map_result(lock.poison.guard(), |poison| MutexGuard {
            lock,
            poison,
            _not_send: PhantomData,
        })
    }

    /// The raw lock of the guard's mutex (for the condvar).
    pub(crate) fn raw(&self) -> &'a Raw {
        &self.lock.raw
    }

    /// The guard's mutex (for the condvar).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.lock
    }

    /// Makes a guard of a part of the data (std's unstable `MutexGuard::map`). A panic in `f`
    /// poisons the mutex.
    pub fn map<U: ?Sized, F>(orig: Self, f: F) -> MappedMutexGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        // SAFETY: the guard holds the lock, so the data is ours to borrow for its lifetime.
        let data = NonNull::from(f(unsafe { &mut *orig.lock.data.get() }));
        let orig = ManuallyDrop::new(orig);
        MappedMutexGuard {
            data,
            raw: &orig.lock.raw,
            poison_flag: &orig.lock.poison,
            poison: poison::Guard::copy(&orig.poison),
            _variance: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// [`map`](Self::map) where `f` may decline: `Err` gives the original guard back.
    #[allow(clippy::result_large_err)]
    pub fn filter_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        // SAFETY: as in `map`.
        match f(unsafe { &mut *orig.lock.data.get() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let orig = ManuallyDrop::new(orig);
                Ok(MappedMutexGuard {
                    data,
                    raw: &orig.lock.raw,
                    poison_flag: &orig.lock.poison,
                    poison: poison::Guard::copy(&orig.poison),
                    _variance: PhantomData,
                    _not_send: PhantomData,
                })
            }
            None => Err(orig),
        }
    }

    /// [`filter_map`](Self::filter_map) under std's newer name.
    #[allow(clippy::result_large_err)]
    pub fn try_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        Self::filter_map(orig, f)
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.poison.done(&self.poison);
        // SAFETY: the guard holds the lock.
        unsafe { self.lock.raw.unlock_at(Site::Unknown) }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<'a, T: ?Sized> MappedMutexGuard<'a, T> {
    /// Maps further.
    pub fn map<U: ?Sized, F>(orig: Self, f: F) -> MappedMutexGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let mut orig = ManuallyDrop::new(orig);
        // SAFETY: the guard holds the lock; `orig` is not dropped, the new guard takes over.
        let data = NonNull::from(f(unsafe { orig.data.as_mut() }));
        MappedMutexGuard {
            data,
            raw: orig.raw,
            poison_flag: orig.poison_flag,
            poison: poison::Guard::copy(&orig.poison),
            _variance: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// Maps further where `f` may decline.
    #[allow(clippy::result_large_err)]
    pub fn filter_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        let mut orig = ManuallyDrop::new(orig);
        // SAFETY: as in `map`.
        match f(unsafe { orig.data.as_mut() }) {
            Some(data) => Ok(MappedMutexGuard {
                data: NonNull::from(data),
                raw: orig.raw,
                poison_flag: orig.poison_flag,
                poison: poison::Guard::copy(&orig.poison),
                _variance: PhantomData,
                _not_send: PhantomData,
            }),
            None => Err(ManuallyDrop::into_inner(orig)),
        }
    }

    /// [`filter_map`](Self::filter_map) under std's newer name.
    #[allow(clippy::result_large_err)]
    pub fn try_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedMutexGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        Self::filter_map(orig, f)
    }
}

impl<T: ?Sized> Deref for MappedMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for MappedMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { self.data.as_mut() }
    }
}

impl<T: ?Sized> Drop for MappedMutexGuard<'_, T> {
    fn drop(&mut self) {
        self.poison_flag.done(&self.poison);
        // SAFETY: the guard holds the lock.
        unsafe { self.raw.unlock_at(Site::Unknown) }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MappedMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MappedMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
