//! [`RwLock`]: tokio's reader-writer lock, instrumented.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{MakeGuard, Raw, RawGuard, TryLockError, READ, WRITE};
use crate::lock::class::LockClassKey;
use crate::lock::map::LockMap;

/// The most readers a lock admits (tokio's).
const MAX_READS: u32 = u32::MAX >> 3;

/// An async reader-writer lock with `tokio::sync::RwLock`'s API, validated by lockdep.
///
/// Fair, as tokio's: a queued writer blocks new readers, so a read is a *non-recursive* reader
/// (two reads of one lock in one task are reported as recursive locking). Its class is its
/// construction site.
///
/// ```
/// use lockdep::tokio::RwLock;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(lockdep::future::tracked(async {
///     let l = RwLock::new(5);
///     assert_eq!(*l.read().await, 5);
///     *l.write().await += 1;
///     assert_eq!(*l.try_read().unwrap(), 6);
/// }));
/// ```
pub struct RwLock<T: ?Sized> {
    max_reads: u32,
    raw: Raw,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` across threads (`Sync`), a writer moves access between threads
// (`Send`): the bounds of tokio's and std's locks.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A lock whose class is this call site.
    #[track_caller]
    pub fn new(value: T) -> RwLock<T> {
        RwLock::const_with_max_readers(value, MAX_READS)
    }

    /// A lock admitting at most `max_reads` readers at once.
    ///
    /// # Panics
    /// If `max_reads` is more than `u32::MAX >> 3`, as tokio's.
    #[track_caller]
    pub fn with_max_readers(value: T, max_reads: u32) -> RwLock<T> {
        assert!(
            max_reads <= MAX_READS,
            "a lock may not be created with more than {MAX_READS} readers"
        );
        RwLock::const_with_max_readers(value, max_reads)
    }

    /// [`RwLock::new`] in a `const` context.
    #[track_caller]
    pub const fn const_new(value: T) -> RwLock<T> {
        RwLock::const_with_max_readers(value, MAX_READS)
    }

    /// [`RwLock::with_max_readers`] in a `const` context.
    #[track_caller]
    pub const fn const_with_max_readers(value: T, max_reads: u32) -> RwLock<T> {
        let max_reads = if max_reads > MAX_READS {
            MAX_READS
        } else {
            max_reads
        };
        RwLock {
            max_reads,
            raw: Raw::at(Location::caller(), max_reads as usize),
            data: UnsafeCell::new(value),
        }
    }

    /// A lock in the class of `key`.
    pub const fn with_key(value: T, key: &'static LockClassKey) -> RwLock<T> {
        RwLock {
            max_reads: MAX_READS,
            raw: Raw::new(LockMap::named(key), MAX_READS as usize),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    fn value(&self) -> NonNull<T> {
        // SAFETY: an `UnsafeCell`'s pointer is never null.
        unsafe { NonNull::new_unchecked(self.data.get()) }
    }

    /// Locks for reading (a non-recursive reader), waiting while a writer holds or waits for
    /// the lock. Validated before the wait; held once the guard exists.
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = RwLockReadGuard<'_, T>> {
        let acquire = self.raw.acquire::<READ>(1, Location::caller());
        MakeGuard::new(acquire, self, |hold, lock: &Self| {
            RwLockReadGuard::new(hold, lock.value())
        })
    }

    /// Locks for reading from synchronous code, blocking the thread.
    ///
    /// # Panics
    /// Inside an asynchronous execution context, as tokio's.
    #[track_caller]
    pub fn blocking_read(&self) -> RwLockReadGuard<'_, T> {
        let hold = self.raw.blocking_acquire::<READ>(1, Location::caller());
        RwLockReadGuard::new(hold, self.value())
    }

    /// Locks for reading if no writer holds or waits for the lock.
    #[track_caller]
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        let hold = self
            .raw
            .try_acquire::<READ>(1, Location::caller())
            .ok_or(TryLockError(()))?;
        Ok(RwLockReadGuard::new(hold, self.value()))
    }

    /// [`RwLock::read`] through an `Arc`, for a guard that is `'static`.
    #[track_caller]
    pub fn read_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockReadGuard<T>> {
        let site = Location::caller();
        async move {
            let hold = self.raw.acquire::<READ>(1, site).await;
            // SAFETY: the guard keeps `self` alive, and drops its hold first.
            let hold = unsafe { hold.detach() };
            OwnedRwLockReadGuard::new(hold, self)
        }
    }

    /// [`RwLock::try_read`] through an `Arc`.
    #[track_caller]
    pub fn try_read_owned(self: Arc<Self>) -> Result<OwnedRwLockReadGuard<T>, TryLockError> {
        let hold = self
            .raw
            .try_acquire::<READ>(1, Location::caller())
            .ok_or(TryLockError(()))?;
        // SAFETY: as in `read_owned`.
        let hold = unsafe { hold.detach() };
        Ok(OwnedRwLockReadGuard::new(hold, self))
    }

    /// Locks for writing, waiting while anyone holds the lock.
    #[track_caller]
    pub fn write(&self) -> impl Future<Output = RwLockWriteGuard<'_, T>> {
        let acquire = self
            .raw
            .acquire::<WRITE>(self.max_reads, Location::caller());
        MakeGuard::new(acquire, self, |hold, lock: &Self| {
            RwLockWriteGuard::new(hold, lock.value())
        })
    }

    /// Locks for writing from synchronous code, blocking the thread.
    ///
    /// # Panics
    /// Inside an asynchronous execution context, as tokio's.
    #[track_caller]
    pub fn blocking_write(&self) -> RwLockWriteGuard<'_, T> {
        let hold = self
            .raw
            .blocking_acquire::<WRITE>(self.max_reads, Location::caller());
        RwLockWriteGuard::new(hold, self.value())
    }

    /// Locks for writing if the lock is free.
    #[track_caller]
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        let hold = self
            .raw
            .try_acquire::<WRITE>(self.max_reads, Location::caller())
            .ok_or(TryLockError(()))?;
        Ok(RwLockWriteGuard::new(hold, self.value()))
    }

    /// [`RwLock::write`] through an `Arc`, for a guard that is `'static`.
    #[track_caller]
    pub fn write_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockWriteGuard<T>> {
        let site = Location::caller();
        async move {
            let hold = self.raw.acquire::<WRITE>(self.max_reads, site).await;
            // SAFETY: the guard keeps `self` alive, and drops its hold first.
            let hold = unsafe { hold.detach() };
            OwnedRwLockWriteGuard::new(hold, self)
        }
    }

    /// [`RwLock::try_write`] through an `Arc`.
    #[track_caller]
    pub fn try_write_owned(self: Arc<Self>) -> Result<OwnedRwLockWriteGuard<T>, TryLockError> {
        let hold = self
            .raw
            .try_acquire::<WRITE>(self.max_reads, Location::caller())
            .ok_or(TryLockError(()))?;
        // SAFETY: as in `write_owned`.
        let hold = unsafe { hold.detach() };
        Ok(OwnedRwLockWriteGuard::new(hold, self))
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The lock map.
    pub fn lock_map(&self) -> &LockMap {
        &self.raw.map
    }

    /// The printed name of this lock's class.
    pub fn class_name(&self) -> String {
        crate::rt::class_name(&self.raw.map)
    }
}

impl<T: Default> Default for RwLock<T> {
    #[track_caller]
    fn default() -> Self {
        RwLock::new(T::default())
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
        match self.raw.sem.try_acquire() {
            Ok(_permit) => {
                // SAFETY: the permit is a read hold: no writer while it lives.
                d.field("data", &unsafe { &*self.data.get() })
            }
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// The guard of [`RwLock::read`] (and of a mapped read).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    hold: RawGuard<'a>,
    value: NonNull<T>,
    _lock: PhantomData<&'a T>,
}

// SAFETY: a read guard is a shared borrow of a `T` under a read hold.
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    fn new(hold: RawGuard<'a>, value: NonNull<T>) -> Self {
        RwLockReadGuard {
            hold,
            value,
            _lock: PhantomData,
        }
    }

    /// A read guard for a part of the value.
    pub fn map<U: ?Sized, F: FnOnce(&T) -> &U>(this: Self, f: F) -> RwLockReadGuard<'a, U> {
        let value = NonNull::from(f(&*this));
        RwLockReadGuard::new(this.hold, value)
    }

    /// A read guard for a part of the value, or the guard back if `f` gives none.
    pub fn try_map<U: ?Sized, F: FnOnce(&T) -> Option<&U>>(
        this: Self,
        f: F,
    ) -> Result<RwLockReadGuard<'a, U>, Self> {
        match f(&*this).map(NonNull::from) {
            Some(value) => Ok(RwLockReadGuard::new(this.hold, value)),
            None => Err(this),
        }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the hold is a read hold: no writer while it lives.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The guard of [`RwLock::write`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    hold: RawGuard<'a>,
    value: NonNull<T>,
    _lock: PhantomData<&'a mut T>,
}

// SAFETY: a write guard is a unique borrow of a `T` in a lock shared between threads (so
// `Sync` too, as tokio's).
unsafe impl<T: ?Sized + Send + Sync> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    fn new(hold: RawGuard<'a>, value: NonNull<T>) -> Self {
        RwLockWriteGuard {
            hold,
            value,
            _lock: PhantomData,
        }
    }

    /// A write guard for a part of the value.
    pub fn map<U: ?Sized, F: FnOnce(&mut T) -> &mut U>(
        mut this: Self,
        f: F,
    ) -> RwLockMappedWriteGuard<'a, U> {
        let value = NonNull::from(f(&mut *this));
        RwLockMappedWriteGuard(RwLockWriteGuard::new(this.hold, value))
    }

    /// A write guard for a part of the value, or the guard back if `f` gives none.
    pub fn try_map<U: ?Sized, F: FnOnce(&mut T) -> Option<&mut U>>(
        mut this: Self,
        f: F,
    ) -> Result<RwLockMappedWriteGuard<'a, U>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => Ok(RwLockMappedWriteGuard(RwLockWriteGuard::new(
                this.hold, value,
            ))),
            None => Err(this),
        }
    }

    /// Turns the write hold into a read hold without letting a writer in between.
    pub fn downgrade(mut this: Self) -> RwLockReadGuard<'a, T> {
        this.hold.downgrade();
        RwLockReadGuard::new(this.hold, this.value)
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the hold is the write hold.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the hold is the write hold, and the guard is borrowed uniquely.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A write guard for a part of an [`RwLock`]'s value, from [`RwLockWriteGuard::map`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockMappedWriteGuard<'a, T: ?Sized>(RwLockWriteGuard<'a, T>);

impl<'a, T: ?Sized> RwLockMappedWriteGuard<'a, T> {
    /// A write guard for a part of this part.
    pub fn map<U: ?Sized, F: FnOnce(&mut T) -> &mut U>(
        this: Self,
        f: F,
    ) -> RwLockMappedWriteGuard<'a, U> {
        RwLockWriteGuard::map(this.0, f)
    }

    /// A write guard for a part of this part, or the guard back if `f` gives none.
    pub fn try_map<U: ?Sized, F: FnOnce(&mut T) -> Option<&mut U>>(
        this: Self,
        f: F,
    ) -> Result<RwLockMappedWriteGuard<'a, U>, Self> {
        RwLockWriteGuard::try_map(this.0, f).map_err(RwLockMappedWriteGuard)
    }
}

impl<T: ?Sized> Deref for RwLockMappedWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> DerefMut for RwLockMappedWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockMappedWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The guard of [`RwLock::read_owned`]: keeps the lock alive through its `Arc`; `U` is the part
/// of the value it reads (after [`OwnedRwLockReadGuard::map`]).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockReadGuard<T: ?Sized, U: ?Sized = T> {
    // Dropped first: the hold, while `lock` keeps the lock alive.
    hold: RawGuard<'static>,
    value: NonNull<U>,
    lock: Arc<RwLock<T>>,
    _marker: PhantomData<Cell<()>>,
}

// SAFETY: the guard owns a share of the lock (`Arc<RwLock<T>>` is `Send` for `T: Send + Sync`)
// and reads a `U` in it.
unsafe impl<T: ?Sized + Send + Sync, U: ?Sized + Sync> Send for OwnedRwLockReadGuard<T, U> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync, U: ?Sized + Sync> Sync for OwnedRwLockReadGuard<T, U> {}

impl<T: ?Sized> OwnedRwLockReadGuard<T> {
    fn new(hold: RawGuard<'static>, lock: Arc<RwLock<T>>) -> Self {
        OwnedRwLockReadGuard {
            hold,
            value: lock.value(),
            lock,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized, U: ?Sized> OwnedRwLockReadGuard<T, U> {
    /// A read guard for a part of the value.
    pub fn map<V: ?Sized, F: FnOnce(&U) -> &V>(this: Self, f: F) -> OwnedRwLockReadGuard<T, V> {
        let value = NonNull::from(f(&*this));
        OwnedRwLockReadGuard {
            hold: this.hold,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }

    /// A read guard for a part of the value, or the guard back if `f` gives none.
    pub fn try_map<V: ?Sized, F: FnOnce(&U) -> Option<&V>>(
        this: Self,
        f: F,
    ) -> Result<OwnedRwLockReadGuard<T, V>, Self> {
        match f(&*this).map(NonNull::from) {
            Some(value) => Ok(OwnedRwLockReadGuard {
                hold: this.hold,
                value,
                lock: this.lock,
                _marker: PhantomData,
            }),
            None => Err(this),
        }
    }

    /// The lock this guard reads.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized, U: ?Sized> Deref for OwnedRwLockReadGuard<T, U> {
    type Target = U;
    fn deref(&self) -> &U {
        // SAFETY: the hold is a read hold, and `lock` keeps the value alive.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized, U: ?Sized + fmt::Debug> fmt::Debug for OwnedRwLockReadGuard<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The guard of [`RwLock::write_owned`]: keeps the lock alive through its `Arc`.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockWriteGuard<T: ?Sized> {
    // Dropped first: the hold, while `lock` keeps the lock alive.
    hold: RawGuard<'static>,
    lock: Arc<RwLock<T>>,
    _marker: PhantomData<Cell<()>>,
}

// SAFETY: the guard owns the lock and writes its value: `T: Send + Sync`, as tokio's.
unsafe impl<T: ?Sized + Send + Sync> Send for OwnedRwLockWriteGuard<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnedRwLockWriteGuard<T> {}

impl<T: ?Sized> OwnedRwLockWriteGuard<T> {
    fn new(hold: RawGuard<'static>, lock: Arc<RwLock<T>>) -> Self {
        OwnedRwLockWriteGuard {
            hold,
            lock,
            _marker: PhantomData,
        }
    }

    /// A write guard for a part of the value.
    pub fn map<U: ?Sized, F: FnOnce(&mut T) -> &mut U>(
        mut this: Self,
        f: F,
    ) -> OwnedRwLockMappedWriteGuard<T, U> {
        let value = NonNull::from(f(&mut *this));
        OwnedRwLockMappedWriteGuard {
            hold: this.hold,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }

    /// A write guard for a part of the value, or the guard back if `f` gives none.
    pub fn try_map<U: ?Sized, F: FnOnce(&mut T) -> Option<&mut U>>(
        mut this: Self,
        f: F,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, U>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => Ok(OwnedRwLockMappedWriteGuard {
                hold: this.hold,
                value,
                lock: this.lock,
                _marker: PhantomData,
            }),
            None => Err(this),
        }
    }

    /// Turns the write hold into a read hold without letting a writer in between.
    pub fn downgrade(mut this: Self) -> OwnedRwLockReadGuard<T> {
        this.hold.downgrade();
        OwnedRwLockReadGuard::new(this.hold, this.lock)
    }

    /// The lock this guard writes.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized> Deref for OwnedRwLockWriteGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the hold is the write hold, and `lock` keeps the value alive.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedRwLockWriteGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A write guard for a part of an [`RwLock`]'s value, from [`OwnedRwLockWriteGuard::map`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct OwnedRwLockMappedWriteGuard<T: ?Sized, U: ?Sized = T> {
    hold: RawGuard<'static>,
    value: NonNull<U>,
    lock: Arc<RwLock<T>>,
    _marker: PhantomData<Cell<()>>,
}

// SAFETY: the guard owns the lock and writes a `U` in it.
unsafe impl<T: ?Sized + Send + Sync, U: ?Sized + Send + Sync> Send
    for OwnedRwLockMappedWriteGuard<T, U>
{
}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync, U: ?Sized + Send + Sync> Sync
    for OwnedRwLockMappedWriteGuard<T, U>
{
}

impl<T: ?Sized, U: ?Sized> OwnedRwLockMappedWriteGuard<T, U> {
    /// A write guard for a part of this part.
    pub fn map<V: ?Sized, F: FnOnce(&mut U) -> &mut V>(
        mut this: Self,
        f: F,
    ) -> OwnedRwLockMappedWriteGuard<T, V> {
        let value = NonNull::from(f(&mut *this));
        OwnedRwLockMappedWriteGuard {
            hold: this.hold,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }

    /// A write guard for a part of this part, or the guard back if `f` gives none.
    pub fn try_map<V: ?Sized, F: FnOnce(&mut U) -> Option<&mut V>>(
        mut this: Self,
        f: F,
    ) -> Result<OwnedRwLockMappedWriteGuard<T, V>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => Ok(OwnedRwLockMappedWriteGuard {
                hold: this.hold,
                value,
                lock: this.lock,
                _marker: PhantomData,
            }),
            None => Err(this),
        }
    }

    /// The lock this guard writes.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        &this.lock
    }
}

impl<T: ?Sized, U: ?Sized> Deref for OwnedRwLockMappedWriteGuard<T, U> {
    type Target = U;
    fn deref(&self) -> &U {
        // SAFETY: the hold is the write hold, and `lock` keeps the value alive.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized, U: ?Sized> DerefMut for OwnedRwLockMappedWriteGuard<T, U> {
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: as above, borrowed uniquely.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized, U: ?Sized + fmt::Debug> fmt::Debug for OwnedRwLockMappedWriteGuard<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
