//! [`LazyLock`]: std's lazily initialised value, as a lock the validator sees.

use ::std::cell::UnsafeCell;
use ::std::fmt;
use ::std::ops::{Deref, DerefMut};
use ::std::panic::{Location, RefUnwindSafe, UnwindSafe};

use super::{initialised, map_of, Initialising};
use crate::lock::map::{LockMap, Site};

/// A value initialised on first access, with `std::sync::LazyLock`'s API.
///
/// The first access runs the initialiser holding the cell's lock map (its class is the
/// construction site, so a `static` is its own class), and later accesses are a `might_lock`
/// of it. An initialiser that takes a lock `L`, together with an access made while holding `L`,
/// is a reported circular dependency: std's `LazyLock` deadlocks exactly so when the two meet.
///
/// ```
/// use lockdep::std::sync::LazyLock;
///
/// static SQUARES: LazyLock<Vec<u32>> = LazyLock::new(|| (0..4).map(|i| i * i).collect());
/// assert_eq!(SQUARES[3], 9);
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    once: ::std::sync::OnceLock<T>,
    /// The initialiser, until it runs; only touched inside `once`'s initialisation (one at a
    /// time) or through `&mut self`.
    init: UnsafeCell<Option<F>>,
    map: LockMap,
}

// SAFETY: `init` is only reached by the one thread running `once`'s initialiser (OnceLock
// serialises them) or through `&mut self`; the value is shared as `&T`. These are std's bounds.
unsafe impl<T: Sync + Send, F: Send> Sync for LazyLock<T, F> {}
impl<T: RefUnwindSafe + UnwindSafe, F: UnwindSafe> RefUnwindSafe for LazyLock<T, F> {}
impl<T: UnwindSafe, F: UnwindSafe> UnwindSafe for LazyLock<T, F> {}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// A new lazy value, initialised by `f` on first access; its class is this call site.
    #[track_caller]
    pub const fn new(f: F) -> LazyLock<T, F> {
        LazyLock::with_map(f, map_of(LockMap::from_site(Location::caller())))
    }

    const fn with_map(f: F, map: LockMap) -> LazyLock<T, F> {
        LazyLock {
            once: ::std::sync::OnceLock::new(),
            init: UnsafeCell::new(Some(f)),
            map,
        }
    }

    /// Forces the evaluation and returns the value. Panics if an earlier initialiser panicked
    /// ("poisoned"), as std's.
    #[track_caller]
    pub fn force(this: &LazyLock<T, F>) -> &T {
        let site = Site::caller();
        if let Some(v) = this.once.get() {
            initialised(&this.map, site);
            return v;
        }
        let _held = Initialising::hold(&this.map, site);
        this.once.get_or_init(|| {
            // SAFETY: `OnceLock` runs one initialiser at a time, and only initialisers (or
            // `&mut self`) touch `init`.
            let f = unsafe { (*this.init.get()).take() };
            match f {
                Some(f) => f(),
                None => panic!("LazyLock instance has previously been poisoned"),
            }
        })
    }

    /// Forces the evaluation and returns the value mutably.
    pub fn force_mut(this: &mut LazyLock<T, F>) -> &mut T {
        if this.once.get().is_none() {
            let f = this.init.get_mut().take();
            let value = match f {
                Some(f) => f(),
                None => panic!("LazyLock instance has previously been poisoned"),
            };
            let _ = this.once.set(value);
        }
        this.once.get_mut().expect("initialised above")
    }

    /// The lock map of this cell (not in std).
    pub fn lock_map(this: &LazyLock<T, F>) -> &LockMap {
        &this.map
    }
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;
    #[track_caller]
    #[inline]
    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T, F: FnOnce() -> T> DerefMut for LazyLock<T, F> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        LazyLock::force_mut(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    /// A lazy `T::default()`; its class is the construction site refined at its
    /// first access (by the field it is reached through) (see `docs/SEMANTICS.md`).
    #[track_caller]
    fn default() -> LazyLock<T> {
        LazyLock::with_map(
            T::default,
            map_of(LockMap::from_default_site(Location::caller())),
        )
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        match self.once.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
