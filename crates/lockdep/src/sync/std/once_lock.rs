//! [`OnceLock`]: std's write-once cell, as a lock the validator sees.

use ::std::fmt;
use ::std::panic::Location;

use super::{initialised, map_of, Initialising};
use crate::lock::map::{LockMap, Site};

/// A cell written once, with `std::sync::OnceLock`'s API.
///
/// [`get_or_init`](OnceLock::get_or_init) runs the initialiser holding the cell's lock map (its
/// class is the construction site), threads that wait for it hold it too, and a call on an
/// initialised cell is a `might_lock` (see [`Once`](super::Once)).
///
/// ```
/// use lockdep::std::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// assert_eq!(CONFIG.get(), None);
/// assert_eq!(CONFIG.get_or_init(|| "ready".to_string()), "ready");
/// assert_eq!(CONFIG.set("again".to_string()), Err("again".to_string()));
/// ```
pub struct OnceLock<T> {
    inner: ::std::sync::OnceLock<T>,
    map: LockMap,
}

impl<T> OnceLock<T> {
    /// A new empty cell whose class is this call site.
    #[track_caller]
    #[allow(clippy::new_without_default)]
    pub const fn new() -> OnceLock<T> {
        OnceLock::with_map(map_of(LockMap::from_site(Location::caller())))
    }

    const fn with_map(map: LockMap) -> OnceLock<T> {
        OnceLock {
            inner: ::std::sync::OnceLock::new(),
            map,
        }
    }

    /// The value, if initialised (never blocks).
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.inner.get()
    }

    /// The value, mutably, if initialised.
    #[inline]
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.inner.get_mut()
    }

    /// Blocks until the cell is initialised.
    #[cfg(lockdep_std_wait)]
    #[allow(clippy::incompatible_msrv)]
    #[track_caller]
    pub fn wait(&self) -> &T {
        let site = Site::caller();
        if let Some(v) = self.inner.get() {
            initialised(&self.map, site);
            return v;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.wait()
    }

    /// Initialises the cell with `value`; `Err(value)` if it already was.
    #[track_caller]
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init_at(|| value.take().expect("taken only once"), Site::caller());
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value, initialised with `f` if the cell is empty. Runs holding the cell's lock map.
    #[track_caller]
    pub fn get_or_init<F>(&self, f: F) -> &T
    where
        F: FnOnce() -> T,
    {
        self.get_or_init_at(f, Site::caller())
    }

    fn get_or_init_at<F>(&self, f: F, site: Site) -> &T
    where
        F: FnOnce() -> T,
    {
        if let Some(v) = self.inner.get() {
            initialised(&self.map, site);
            return v;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.get_or_init(f)
    }

    /// Consumes the cell, returning its value if initialised.
    #[inline]
    pub fn into_inner(self) -> Option<T> {
        let OnceLock { inner, map: _map } = self;
        inner.into_inner()
    }

    /// Takes the value out, leaving the cell empty.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        self.inner.take()
    }

    /// The lock map of this cell (not in std).
    pub fn lock_map(&self) -> &LockMap {
        &self.map
    }
}

impl<T> Default for OnceLock<T> {
    /// An empty cell; its class is the construction site refined at its first access (by the
    /// field it is reached through; see `docs/SEMANTICS.md` §10).
    #[track_caller]
    fn default() -> OnceLock<T> {
        OnceLock::with_map(map_of(LockMap::from_default_site(Location::caller())))
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    /// A new cell (whose class is this call site) with a clone of the value, if any.
    #[track_caller]
    fn clone(&self) -> OnceLock<T> {
        let cell = OnceLock::with_map(map_of(LockMap::from_site(Location::caller())));
        if let Some(value) = self.get() {
            let _ = cell.inner.set(value.clone());
        }
        cell
    }
}

impl<T> From<T> for OnceLock<T> {
    /// An initialised cell, whose class is this call site.
    #[track_caller]
    fn from(value: T) -> Self {
        let cell = OnceLock::with_map(map_of(LockMap::from_site(Location::caller())));
        let _ = cell.inner.set(value);
        cell
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}
