//! [`Mutex`]: tokio's mutex, instrumented.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{MakeGuard, Raw, RawGuard, TryLockError, WRITE};
use crate::lock::class::LockClassKey;
use crate::lock::map::LockMap;

/// An async mutex with `tokio::sync::Mutex`'s API, validated by lockdep.
///
/// Its class is its construction site. Holding its guard across an `.await` is fine (it is an
/// async lock); inside a tracked task it is held by the task, wherever the task runs; see
/// [the module](crate::tokio) for what is validated outside one.
///
/// ```
/// use lockdep::tokio::Mutex;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(lockdep::future::tracked(async {
///     let m = Mutex::new(1);
///     let mut g = m.lock().await;
///     tokio::task::yield_now().await; // an async lock may be held across an await
///     *g += 1;
///     drop(g);
///     assert_eq!(*m.try_lock().unwrap(), 2);
/// }));
/// ```
pub struct Mutex<T: ?Sized> {
    raw: Raw,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out at most one guard at a time (one permit), so `T` is only ever
// reached from one thread at a time: `Send` is enough, as for tokio's mutex.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A mutex whose class is this call site.
    #[track_caller]
    pub fn new(t: T) -> Mutex<T> {
        Mutex::const_new(t)
    }

    /// A mutex whose class is this call site, in a `const` context (a `static`).
    #[track_caller]
    pub const fn const_new(t: T) -> Mutex<T> {
        Mutex {
            raw: Raw::at(Location::caller(), 1),
            data: UnsafeCell::new(t),
        }
    }

    /// A mutex in the class of `key`.
    pub const fn with_key(t: T, key: &'static LockClassKey) -> Mutex<T> {
        Mutex {
            raw: Raw::new(LockMap::named(key), 1),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting (asynchronously) while another holds it. The acquisition is
    /// validated before the wait; the lock is held once the guard exists. Cancel-safe, and
    /// fair (first come, first served), as tokio's.
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = MutexGuard<'_, T>> {
        let acquire = self.raw.acquire::<WRITE>(1, Location::caller());
        MakeGuard::new(acquire, self, MutexGuard::new)
    }

    /// Locks the mutex from synchronous code, blocking the thread (held by the calling thread).
    ///
    /// # Panics
    /// Inside an asynchronous execution context, as tokio's.
    #[track_caller]
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        let hold = self.raw.blocking_acquire::<WRITE>(1, Location::caller());
        MutexGuard::new(hold, self)
    }

    /// Locks the mutex if it is free.
    #[track_caller]
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        let hold = self
            .raw
            .try_acquire::<WRITE>(1, Location::caller())
            .ok_or(TryLockError(()))?;
        Ok(MutexGuard::new(hold, self))
    }

    /// Locks the mutex through an `Arc`, for a guard that is `'static`.
    #[track_caller]
    pub fn lock_owned(self: Arc<Self>) -> impl Future<Output = OwnedMutexGuard<T>> {
        let site = Location::caller();
        async move {
            let hold = self.raw.acquire::<WRITE>(1, site).await;
            // SAFETY: the guard keeps `self` alive, and drops its hold first.
            let hold = unsafe { hold.detach() };
            OwnedMutexGuard::new(hold, self)
        }
    }

    /// [`Mutex::blocking_lock`], for a guard that is `'static`.
    ///
    /// # Panics
    /// Inside an asynchronous execution context, as tokio's.
    #[track_caller]
    pub fn blocking_lock_owned(self: Arc<Self>) -> OwnedMutexGuard<T> {
        let hold = self.raw.blocking_acquire::<WRITE>(1, Location::caller());
        // SAFETY: as in `lock_owned`.
        let hold = unsafe { hold.detach() };
        OwnedMutexGuard::new(hold, self)
    }

    /// [`Mutex::try_lock`], for a guard that is `'static`.
    #[track_caller]
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        let hold = self
            .raw
            .try_acquire::<WRITE>(1, Location::caller())
            .ok_or(TryLockError(()))?;
        // SAFETY: as in `lock_owned`.
        let hold = unsafe { hold.detach() };
        Ok(OwnedMutexGuard::new(hold, self))
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The lock map (to name the class in a test, or nest under it).
    pub fn lock_map(&self) -> &LockMap {
        &self.raw.map
    }

    /// The printed name of this mutex's class.
    pub fn class_name(&self) -> String {
        crate::rt::class_name(&self.raw.map)
    }
}

impl<T: Default> Default for Mutex<T> {
    #[track_caller]
    fn default() -> Self {
        Mutex::new(T::default())
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
        match self.raw.sem.try_acquire() {
            Ok(_permit) => {
                // SAFETY: the permit excludes every guard while it lives.
                d.field("data", &unsafe { &*self.data.get() })
            }
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// `!Sync` marker; guards are `Sync` only as their `impl`s below say.
type NotSync = PhantomData<Cell<()>>;

/// The guard of [`Mutex::lock`].
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    hold: RawGuard<'a>,
    lock: &'a Mutex<T>,
    _not_sync: NotSync,
}

// SAFETY: a shared guard gives `&T` only.
unsafe impl<T: ?Sized + Send + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    fn new(hold: RawGuard<'a>, lock: &'a Mutex<T>) -> Self {
        MutexGuard {
            hold,
            lock,
            _not_sync: PhantomData,
        }
    }

    /// A guard for a part of the value (`MutexGuard::map`).
    pub fn map<U: ?Sized, F: FnOnce(&mut T) -> &mut U>(
        mut this: Self,
        f: F,
    ) -> MappedMutexGuard<'a, U> {
        let value = NonNull::from(f(&mut *this));
        MappedMutexGuard {
            hold: this.hold,
            value,
            _lock: PhantomData,
        }
    }

    /// A guard for a part of the value, or the guard back if `f` gives none.
    pub fn try_map<U: ?Sized, F: FnOnce(&mut T) -> Option<&mut U>>(
        mut this: Self,
        f: F,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => Ok(MappedMutexGuard {
                hold: this.hold,
                value,
                _lock: PhantomData,
            }),
            None => Err(this),
        }
    }

    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.lock
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex's one permit.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the mutex's one permit, and is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A guard for a part of a [`Mutex`]'s value, from [`MutexGuard::map`].
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MappedMutexGuard<'a, T: ?Sized> {
    hold: RawGuard<'a>,
    value: NonNull<T>,
    _lock: PhantomData<&'a mut T>,
}

// SAFETY: the guard is a unique borrow of a `T` inside a locked mutex.
unsafe impl<T: ?Sized + Send> Send for MappedMutexGuard<'_, T> {}
// SAFETY: a shared guard gives `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MappedMutexGuard<'_, T> {}

impl<'a, T: ?Sized> MappedMutexGuard<'a, T> {
    /// A guard for a part of this part.
    pub fn map<U: ?Sized, F: FnOnce(&mut T) -> &mut U>(
        mut this: Self,
        f: F,
    ) -> MappedMutexGuard<'a, U> {
        let value = NonNull::from(f(&mut *this));
        MappedMutexGuard {
            hold: this.hold,
            value,
            _lock: PhantomData,
        }
    }

    /// A guard for a part of this part, or the guard back if `f` gives none.
    pub fn try_map<U: ?Sized, F: FnOnce(&mut T) -> Option<&mut U>>(
        mut this: Self,
        f: F,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => Ok(MappedMutexGuard {
                hold: this.hold,
                value,
                _lock: PhantomData,
            }),
            None => Err(this),
        }
    }
}

impl<T: ?Sized> Deref for MappedMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `value` points into the locked mutex's value, which the hold keeps locked.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for MappedMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, borrowed uniquely.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MappedMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The guard of [`Mutex::lock_owned`]: keeps the mutex alive through its `Arc`.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct OwnedMutexGuard<T: ?Sized> {
    // Dropped first: the hold, while `lock` keeps the mutex alive.
    hold: RawGuard<'static>,
    lock: Arc<Mutex<T>>,
    _not_sync: NotSync,
}

// SAFETY: a shared guard gives `&T` only.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnedMutexGuard<T> {}

impl<T: ?Sized> OwnedMutexGuard<T> {
    fn new(hold: RawGuard<'static>, lock: Arc<Mutex<T>>) -> Self {
        OwnedMutexGuard {
            hold,
            lock,
            _not_sync: PhantomData,
        }
    }

    /// A guard for a part of the value.
    pub fn map<U: ?Sized, F: FnOnce(&mut T) -> &mut U>(
        mut this: Self,
        f: F,
    ) -> OwnedMappedMutexGuard<T, U> {
        let value = NonNull::from(f(&mut *this));
        OwnedMappedMutexGuard {
            hold: this.hold,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }

    /// A guard for a part of the value, or the guard back if `f` gives none.
    pub fn try_map<U: ?Sized, F: FnOnce(&mut T) -> Option<&mut U>>(
        mut this: Self,
        f: F,
    ) -> Result<OwnedMappedMutexGuard<T, U>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => Ok(OwnedMappedMutexGuard {
                hold: this.hold,
                value,
                lock: this.lock,
                _marker: PhantomData,
            }),
            None => Err(this),
        }
    }

    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        &this.lock
    }
}

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex's one permit.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the mutex's one permit, and is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A guard for a part of a [`Mutex`]'s value, from [`OwnedMutexGuard::map`].
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct OwnedMappedMutexGuard<T: ?Sized, U: ?Sized = T> {
    hold: RawGuard<'static>,
    value: NonNull<U>,
    lock: Arc<Mutex<T>>,
    _marker: PhantomData<U>,
}

// SAFETY: the guard owns the lock (`T: Send` for the mutex to be shared) and uniquely borrows
// a `U` inside it.
unsafe impl<T: ?Sized + Send, U: ?Sized + Send> Send for OwnedMappedMutexGuard<T, U> {}
// SAFETY: a shared guard gives `&U` only.
unsafe impl<T: ?Sized + Send, U: ?Sized + Sync> Sync for OwnedMappedMutexGuard<T, U> {}

impl<T: ?Sized, U: ?Sized> OwnedMappedMutexGuard<T, U> {
    /// A guard for a part of this part.
    pub fn map<S: ?Sized, F: FnOnce(&mut U) -> &mut S>(
        mut this: Self,
        f: F,
    ) -> OwnedMappedMutexGuard<T, S> {
        let value = NonNull::from(f(&mut *this));
        OwnedMappedMutexGuard {
            hold: this.hold,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }

    /// A guard for a part of this part, or the guard back if `f` gives none.
    pub fn try_map<S: ?Sized, F: FnOnce(&mut U) -> Option<&mut S>>(
        mut this: Self,
        f: F,
    ) -> Result<OwnedMappedMutexGuard<T, S>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => Ok(OwnedMappedMutexGuard {
                hold: this.hold,
                value,
                lock: this.lock,
                _marker: PhantomData,
            }),
            None => Err(this),
        }
    }

    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        &this.lock
    }
}

impl<T: ?Sized, U: ?Sized> Deref for OwnedMappedMutexGuard<T, U> {
    type Target = U;
    fn deref(&self) -> &U {
        // SAFETY: `value` points into the locked mutex's value, kept alive and locked.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized, U: ?Sized> DerefMut for OwnedMappedMutexGuard<T, U> {
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: as above, borrowed uniquely.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized, U: ?Sized + fmt::Debug> fmt::Debug for OwnedMappedMutexGuard<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
