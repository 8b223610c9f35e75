//! [`RwLock`]: std's reader-writer lock, validated.

use ::std::cell::UnsafeCell;
use ::std::fmt;
use ::std::marker::PhantomData;
use ::std::mem::ManuallyDrop;
use ::std::ops::{Deref, DerefMut};
use ::std::panic::{Location, RefUnwindSafe, UnwindSafe};
use ::std::ptr::NonNull;
use ::std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

use lock_api::RawRwLock as _;

use super::poison;
use crate::lock::class::LockClassKey;
use crate::lock::map::{Acquire, LockMap, Site};
use crate::sync::raw::Lockdep;

type Raw = Lockdep<parking_lot::RawRwLock>;

/// A reader-writer lock with `std::sync::RwLock`'s API and poisoning, validated by lockdep.
///
/// [`read`](RwLock::read) is a *non-recursive* reader (the kernel's `down_read`): std's read
/// lock may block behind a waiting writer, so a second `read` of one lock on one thread can
/// deadlock and is reported as recursive locking, and readers take part in cycles. A panic while
/// a *write* guard is alive poisons the lock.
///
/// ```
/// use lockdep::std::sync::RwLock;
///
/// let l = RwLock::new(5);
/// assert_eq!(*l.read().unwrap(), 5);
/// *l.write().unwrap() += 1;
/// assert_eq!(l.into_inner().unwrap(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    raw: Raw,
    poison: poison::Flag,
    data: UnsafeCell<T>,
}

// SAFETY: writers need `T: Send` (the value may be replaced from another thread), readers share
// `&T` across threads (`T: Sync`), exactly as for std's.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
impl<T: ?Sized> UnwindSafe for RwLock<T> {}
impl<T: ?Sized> RefUnwindSafe for RwLock<T> {}

/// A shared hold of an [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    data: NonNull<T>,
    raw: &'a Raw,
    _variance: PhantomData<&'a T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

/// An exclusive hold of an [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    poison: poison::Guard,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

/// A shared hold of a part of an [`RwLock`]'s data (std's unstable `MappedRwLockReadGuard`).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct MappedRwLockReadGuard<'a, T: ?Sized> {
    data: NonNull<T>,
    raw: &'a Raw,
    _variance: PhantomData<&'a T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MappedRwLockReadGuard<'_, T> {}

/// An exclusive hold of a part of an [`RwLock`]'s data (std's unstable
/// `MappedRwLockWriteGuard`).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct MappedRwLockWriteGuard<'a, T: ?Sized> {
    data: NonNull<T>,
    raw: &'a Raw,
    poison_flag: &'a poison::Flag,
    poison: poison::Guard,
    _variance: PhantomData<&'a mut T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MappedRwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock whose class is this call site.
    #[track_caller]
    pub const fn new(t: T) -> RwLock<T> {
        RwLock::with_map(t, super::map_of(LockMap::from_site(Location::caller())))
    }

    /// A new unlocked lock in the class of `key` (not in std).
    pub const fn with_key(t: T, key: &'static LockClassKey) -> RwLock<T> {
        RwLock::with_map(t, super::map_of(LockMap::named(key)))
    }

    const fn with_map(t: T, map: LockMap) -> RwLock<T> {
        RwLock {
            raw: Lockdep::new(<parking_lot::RawRwLock as lock_api::RawRwLock>::INIT, map),
            poison: poison::Flag::new(),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the lock and returns its data (in an `Err` if poisoned).
    pub fn into_inner(self) -> LockResult<T>
    where
        T: Sized,
    {
        let poisoned = self.poison.borrow();
        let data = self.data.into_inner();
        poison::map_result(poisoned, |()| data)
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes a shared hold, blocking while a writer holds (or, std permitting, waits for) the
    /// lock; validated before blocking as a non-recursive read. `Err` if poisoned.
    #[track_caller]
    #[inline]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let raw = self.raw.inner();
        self.raw.lock_map().acquire_lock(
            Acquire::shared(),
            Site::caller(),
            || raw.try_lock_shared(),
            || raw.lock_shared(),
        );
        // SAFETY: a shared hold was just taken.
        unsafe { RwLockReadGuard::new(self) }
    }

    /// Tries a shared hold without blocking.
    #[track_caller]
    #[inline]
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.raw.inner().try_lock_shared() {
            // SAFETY (of the unlock): the hold was just taken, and no guard exists yet.
            crate::sync::raw::record_taken(
                self.raw.lock_map(),
                Acquire::shared().trylock(true),
                Site::caller(),
                || unsafe { self.raw.inner().unlock_shared() },
            );
            // SAFETY: a shared hold was just taken.
            Ok(unsafe { RwLockReadGuard::new(self) }?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Takes an exclusive hold, blocking until it is available; validated before blocking.
    #[track_caller]
    #[inline]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let raw = self.raw.inner();
        self.raw.lock_map().acquire_lock(
            Acquire::exclusive(),
            Site::caller(),
            || raw.try_lock_exclusive(),
            || raw.lock_exclusive(),
        );
        // SAFETY: the exclusive hold was just taken.
        unsafe { RwLockWriteGuard::new(self) }
    }

    /// Tries an exclusive hold without blocking.
    #[track_caller]
    #[inline]
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if self.raw.inner().try_lock_exclusive() {
            // SAFETY (of the unlock): the hold was just taken, and no guard exists yet.
            crate::sync::raw::record_taken(
                self.raw.lock_map(),
                Acquire::exclusive().trylock(true),
                Site::caller(),
                || unsafe { self.raw.inner().unlock_exclusive() },
            );
            // SAFETY: the exclusive hold was just taken.
            Ok(unsafe { RwLockWriteGuard::new(self) }?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether the lock is poisoned.
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

    /// The lock map of this lock (not in std).
    pub fn lock_map(&self) -> &LockMap {
        self.raw.lock_map()
    }

    /// The name of this lock's class as reports print it (not in std).
    pub fn class_name(&self) -> String {
        crate::rt::class_name(self.lock_map())
    }
}

impl<T: Default> Default for RwLock<T> {
    /// A lock of `T::default()`; its class is the construction site refined at its
    /// first acquisition (by the field it is reached through) (see `docs/SEMANTICS.md`).
    #[track_caller]
    fn default() -> RwLock<T> {
        RwLock::with_map(
            T::default(),
            super::map_of(LockMap::from_default_site(Location::caller())),
        )
    }
}

impl<T> From<T> for RwLock<T> {
    #[track_caller]
    fn from(t: T) -> Self {
        RwLock::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
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

/// Releases a shared hold, in the validator then for real.
///
/// # Safety
/// The current thread must hold `raw` shared.
unsafe fn unlock_shared(raw: &Raw) {
    raw.lock_map().release_at(Site::Unknown);
    // SAFETY: the caller holds the lock shared.
    unsafe { raw.inner().unlock_shared() }
}

/// Releases an exclusive hold.
///
/// # Safety
/// The current thread must hold `raw` exclusively.
unsafe fn unlock_exclusive(raw: &Raw) {
    raw.lock_map().release_at(Site::Unknown);
    // SAFETY: the caller holds the lock exclusively.
    unsafe { raw.inner().unlock_exclusive() }
}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// # Safety
    /// The current thread must hold `lock` shared.
    unsafe fn new(lock: &'a RwLock<T>) -> LockResult<RwLockReadGuard<'a, T>> {
        poison::map_result(lock.poison.borrow(), |()| RwLockReadGuard {
            // SAFETY: `UnsafeCell::get` is never null.
            data: unsafe { NonNull::new_unchecked(lock.data.get()) },
            raw: &lock.raw,
            _variance: PhantomData,
            _not_send: PhantomData,
        })
    }

    /// Makes a guard of a part of the data (std's unstable `RwLockReadGuard::map`).
    pub fn map<U: ?Sized, F>(orig: Self, f: F) -> MappedRwLockReadGuard<'a, U>
    where
        F: FnOnce(&T) -> &U,
    {
        // SAFETY: the guard holds the lock shared for `'a`.
        let data = NonNull::from(f(unsafe { orig.data.as_ref() }));
        let orig = ManuallyDrop::new(orig);
        MappedRwLockReadGuard {
            data,
            raw: orig.raw,
            _variance: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// [`map`](Self::map) where `f` may decline.
    pub fn filter_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        // SAFETY: as in `map`.
        match f(unsafe { orig.data.as_ref() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let orig = ManuallyDrop::new(orig);
                Ok(MappedRwLockReadGuard {
                    data,
                    raw: orig.raw,
                    _variance: PhantomData,
                    _not_send: PhantomData,
                })
            }
            None => Err(orig),
        }
    }

    /// [`filter_map`](Self::filter_map) under std's newer name.
    pub fn try_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        Self::filter_map(orig, f)
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// # Safety
    /// The current thread must hold `lock` exclusively.
    unsafe fn new(lock: &'a RwLock<T>) -> LockResult<RwLockWriteGuard<'a, T>> {
        poison::map_result(lock.poison.guard(), |poison| RwLockWriteGuard {
            lock,
            poison,
            _not_send: PhantomData,
        })
    }

    /// Turns the exclusive hold into a shared one without letting a writer in between; in the
    /// validator the hold becomes a read.
    #[track_caller]
    pub fn downgrade(s: Self) -> RwLockReadGuard<'a, T> {
        let lock = s.lock;
        let _s = ManuallyDrop::new(s);
        crate::rt::downgrade(lock.raw.lock_map(), Site::caller());
        // SAFETY: the guard held the lock exclusively, and is not dropped.
        unsafe { lock_api::RawRwLockDowngrade::downgrade(lock.raw.inner()) };
        // SAFETY: the lock is now held shared.
        unsafe { RwLockReadGuard::new(lock) }.unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a guard of a part of the data (std's unstable `RwLockWriteGuard::map`). A panic in
    /// `f` poisons the lock.
    pub fn map<U: ?Sized, F>(orig: Self, f: F) -> MappedRwLockWriteGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        // SAFETY: the guard holds the lock exclusively for `'a`.
        let data = NonNull::from(f(unsafe { &mut *orig.lock.data.get() }));
        let orig = ManuallyDrop::new(orig);
        MappedRwLockWriteGuard {
            data,
            raw: &orig.lock.raw,
            poison_flag: &orig.lock.poison,
            poison: poison::Guard::copy(&orig.poison),
            _variance: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// [`map`](Self::map) where `f` may decline.
    #[allow(clippy::result_large_err)]
    pub fn filter_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        // SAFETY: as in `map`.
        match f(unsafe { &mut *orig.lock.data.get() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let orig = ManuallyDrop::new(orig);
                Ok(MappedRwLockWriteGuard {
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
    pub fn try_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        Self::filter_map(orig, f)
    }
}

impl<'a, T: ?Sized> MappedRwLockReadGuard<'a, T> {
    /// Maps further.
    pub fn map<U: ?Sized, F>(orig: Self, f: F) -> MappedRwLockReadGuard<'a, U>
    where
        F: FnOnce(&T) -> &U,
    {
        // SAFETY: the guard holds the lock shared for `'a`.
        let data = NonNull::from(f(unsafe { orig.data.as_ref() }));
        let orig = ManuallyDrop::new(orig);
        MappedRwLockReadGuard {
            data,
            raw: orig.raw,
            _variance: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// Maps further where `f` may decline.
    pub fn filter_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        // SAFETY: as in `map`.
        match f(unsafe { orig.data.as_ref() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let orig = ManuallyDrop::new(orig);
                Ok(MappedRwLockReadGuard {
                    data,
                    raw: orig.raw,
                    _variance: PhantomData,
                    _not_send: PhantomData,
                })
            }
            None => Err(orig),
        }
    }

    /// [`filter_map`](Self::filter_map) under std's newer name.
    pub fn try_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockReadGuard<'a, U>, Self>
    where
        F: FnOnce(&T) -> Option<&U>,
    {
        Self::filter_map(orig, f)
    }
}

impl<'a, T: ?Sized> MappedRwLockWriteGuard<'a, T> {
    /// Maps further.
    pub fn map<U: ?Sized, F>(orig: Self, f: F) -> MappedRwLockWriteGuard<'a, U>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        let mut orig = ManuallyDrop::new(orig);
        // SAFETY: the guard holds the lock exclusively; the new guard takes over from `orig`.
        let data = NonNull::from(f(unsafe { orig.data.as_mut() }));
        MappedRwLockWriteGuard {
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
    pub fn filter_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        let mut orig = ManuallyDrop::new(orig);
        // SAFETY: as in `map`.
        match f(unsafe { orig.data.as_mut() }) {
            Some(data) => Ok(MappedRwLockWriteGuard {
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
    pub fn try_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedRwLockWriteGuard<'a, U>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        Self::filter_map(orig, f)
    }
}

macro_rules! guard_impls {
    ($guard:ident, $data:ident => $get:expr, $drop:expr) => {
        impl<T: ?Sized> Deref for $guard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                let $data = self;
                // SAFETY: the guard holds the lock.
                unsafe { $get }
            }
        }
        impl<T: ?Sized + fmt::Debug> fmt::Debug for $guard<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }
        impl<T: ?Sized + fmt::Display> fmt::Display for $guard<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                (**self).fmt(f)
            }
        }
        impl<T: ?Sized> Drop for $guard<'_, T> {
            #[inline]
            fn drop(&mut self) {
                let $data = self;
                // SAFETY: the guard holds the lock (shared for read guards, exclusively for
                // write guards).
                unsafe { $drop }
            }
        }
    };
}

guard_impls!(RwLockReadGuard, g => g.data.as_ref(), unlock_shared(g.raw));
guard_impls!(MappedRwLockReadGuard, g => g.data.as_ref(), unlock_shared(g.raw));
guard_impls!(RwLockWriteGuard, g => &*g.lock.data.get(), {
    g.lock.poison.done(&g.poison);
    unlock_exclusive(&g.lock.raw)
});
guard_impls!(MappedRwLockWriteGuard, g => g.data.as_ref(), {
    g.poison_flag.done(&g.poison);
    unlock_exclusive(g.raw)
});

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MappedRwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { self.data.as_mut() }
    }
}
