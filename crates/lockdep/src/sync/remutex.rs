//! [`ReentrantMutex`]: parking_lot's reentrant mutex, instrumented.
//!
//! The owner may lock it again while holding it; only the *first* entry is an acquisition for
//! the validator (the inner raw mutex, which is instrumented, is only locked then), and only the
//! last exit a release. So re-entry is never recursive locking, while the order of the mutex
//! against every other lock is still checked:
//!
//! ```
//! use lockdep::{Mutex, ReentrantMutex};
//!
//! let r = ReentrantMutex::new(0);
//! let m = Mutex::new(());
//! let a = r.lock();
//! let b = r.lock(); // re-entry by the owner: fine
//! let _m = m.lock(); // r -> m, validated like any order
//! assert_eq!(*a + *b, 0);
//! ```

use std::fmt;
use std::ops::Deref;
use std::panic::Location;

use lock_api::{GetThreadId, RawMutex};

use crate::lock::class::LockClassKey;
use crate::lock::map::LockMap;
use crate::sync::raw::Lockdep;

/// A mutex its owner may lock again, over any `lock_api` raw mutex `R` (instrumented) and
/// thread-id source `G`. Its class is its construction site. Everything of
/// `lock_api::ReentrantMutex` is reachable through `Deref`.
#[repr(transparent)]
pub struct GenericReentrantMutex<R, G, T: ?Sized> {
    inner: lock_api::ReentrantMutex<Lockdep<R>, G, T>,
}

#[cfg(not(feature = "disabled"))]
mod aliases {
    use super::*;
    /// parking_lot's reentrant mutex, instrumented.
    pub type ReentrantMutex<T> =
        GenericReentrantMutex<parking_lot::RawMutex, parking_lot::RawThreadId, T>;
    /// The guard of a [`ReentrantMutex`].
    pub type ReentrantMutexGuard<'a, T> = lock_api::ReentrantMutexGuard<
        'a,
        Lockdep<parking_lot::RawMutex>,
        parking_lot::RawThreadId,
        T,
    >;
    /// A mapped guard of a [`ReentrantMutex`].
    pub type MappedReentrantMutexGuard<'a, T> = lock_api::MappedReentrantMutexGuard<
        'a,
        Lockdep<parking_lot::RawMutex>,
        parking_lot::RawThreadId,
        T,
    >;

    /// A reentrant mutex whose class is this call site, in a `const` context (parking_lot's
    /// `const_reentrant_mutex`).
    #[track_caller]
    pub const fn const_reentrant_mutex<T>(val: T) -> ReentrantMutex<T> {
        ReentrantMutex::new(val)
    }
}

/// With the `disabled` feature: parking_lot's own reentrant mutex.
#[cfg(feature = "disabled")]
mod aliases {
    pub use parking_lot::{
        const_reentrant_mutex, MappedReentrantMutexGuard, ReentrantMutex, ReentrantMutexGuard,
    };
}

pub use aliases::*;

impl<R: RawMutex, G: GetThreadId, T> GenericReentrantMutex<R, G, T> {
    /// A reentrant mutex whose class is this call site.
    #[track_caller]
    pub const fn new(val: T) -> Self {
        Self::with_map(
            val,
            crate::sync::primitive_map(LockMap::from_site(Location::caller())),
        )
    }

    /// A reentrant mutex in the class of `key`.
    pub const fn with_key(val: T, key: &'static LockClassKey) -> Self {
        Self::with_map(val, crate::sync::primitive_map(LockMap::named(key)))
    }

    /// A reentrant mutex with a lock map of your own.
    pub const fn with_map(val: T, map: LockMap) -> Self {
        GenericReentrantMutex {
            inner: lock_api::ReentrantMutex::from_raw(Lockdep::new(R::INIT, map), G::INIT, val),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<R: RawMutex, G: GetThreadId, T: ?Sized> GenericReentrantMutex<R, G, T> {
    /// The lock map of this mutex.
    pub fn lock_map(&self) -> &LockMap {
        // SAFETY: the raw mutex is only read here, never locked or unlocked.
        unsafe { self.inner.raw() }.lock_map()
    }

    /// The name of this mutex's class as reports print it.
    pub fn class_name(&self) -> String {
        crate::rt::class_name(self.lock_map())
    }

    /// The `lock_api` mutex inside, behind an `Arc` (for the `arc_lock` guards).
    #[cfg(feature = "arc_lock")]
    fn arc_inner(
        self: &std::sync::Arc<Self>,
    ) -> std::sync::Arc<lock_api::ReentrantMutex<Lockdep<R>, G, T>> {
        let raw = std::sync::Arc::into_raw(std::sync::Arc::clone(self));
        // SAFETY: `GenericReentrantMutex` is `repr(transparent)` over the `lock_api` mutex, so
        // the pointer is one to that type from an `Arc` of the same size and alignment.
        unsafe {
            std::sync::Arc::from_raw(raw as *const lock_api::ReentrantMutex<Lockdep<R>, G, T>)
        }
    }

    /// Locks through an `Arc`, with a guard that owns a reference (`arc_lock`).
    #[cfg(feature = "arc_lock")]
    pub fn lock_arc(
        self: &std::sync::Arc<Self>,
    ) -> lock_api::ArcReentrantMutexGuard<Lockdep<R>, G, T> {
        self.arc_inner().lock_arc()
    }

    /// Tries to lock through an `Arc` (`arc_lock`).
    #[cfg(feature = "arc_lock")]
    pub fn try_lock_arc(
        self: &std::sync::Arc<Self>,
    ) -> Option<lock_api::ArcReentrantMutexGuard<Lockdep<R>, G, T>> {
        self.arc_inner().try_lock_arc()
    }
}

impl<R, G, T: ?Sized> Deref for GenericReentrantMutex<R, G, T> {
    type Target = lock_api::ReentrantMutex<Lockdep<R>, G, T>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<R, G, T: ?Sized> std::ops::DerefMut for GenericReentrantMutex<R, G, T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<R: RawMutex, G: GetThreadId, T: Default> Default for GenericReentrantMutex<R, G, T> {
    /// Its class is the construction site refined at its first acquisition (by the field it is
    /// reached through)
    /// (`docs/SEMANTICS.md`).
    #[track_caller]
    fn default() -> Self {
        Self::with_map(
            T::default(),
            crate::sync::primitive_map(LockMap::from_default_site(Location::caller())),
        )
    }
}

impl<R: RawMutex, G: GetThreadId, T> From<T> for GenericReentrantMutex<R, G, T> {
    #[track_caller]
    fn from(val: T) -> Self {
        Self::new(val)
    }
}

impl<R: RawMutex, G: GetThreadId, T: ?Sized + fmt::Debug> fmt::Debug
    for GenericReentrantMutex<R, G, T>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
