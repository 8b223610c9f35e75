//! [`Once`]: std's one-time initialisation, as a lock the validator sees.

use ::std::fmt;
use ::std::panic::Location;
use ::std::sync::OnceState;

use super::{initialised, map_of, Initialising};
use crate::lock::map::{LockMap, Site};

/// A one-time global initialisation with `std::sync::Once`'s API.
///
/// The closure of [`call_once`](Once::call_once) runs *holding* the `Once`'s lock map (its class
/// is the construction site), and threads that wait for it hold it too; a call on a completed
/// `Once` is a `might_lock`. So an initialiser that takes a lock `L`, together with a path that
/// calls the `Once` while holding `L`, is reported as a circular dependency: the deadlock std
/// gives such a program when the two meet.
///
/// ```
/// use lockdep::std::sync::Once;
///
/// static INIT: Once = Once::new();
/// let mut ran = 0;
/// INIT.call_once(|| ran += 1);
/// INIT.call_once(|| ran += 1);
/// assert_eq!(ran, 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    inner: ::std::sync::Once,
    map: LockMap,
}

/// Initialisation value for static [`Once`] values (deprecated in std).
#[deprecated(since = "1.38.0", note = "the `Once::new()` function is now preferred")]
#[allow(clippy::declare_interior_mutable_const)]
pub const ONCE_INIT: Once = Once::new();

impl Once {
    /// A new `Once` whose class is this call site.
    #[track_caller]
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Once {
        Once {
            inner: ::std::sync::Once::new(),
            map: map_of(LockMap::from_site(Location::caller())),
        }
    }

    /// Runs `f` if this is the first call; otherwise waits for the first call's `f` to finish.
    /// A panic in `f` poisons the `Once` (later calls panic), as std's.
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        let site = Site::caller();
        if self.inner.is_completed() {
            initialised(&self.map, site);
            return;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.call_once(f);
    }

    /// [`call_once`](Self::call_once), also run if an earlier call panicked; `f` learns whether
    /// it did from the [`OnceState`].
    #[track_caller]
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        let site = Site::caller();
        if self.inner.is_completed() {
            initialised(&self.map, site);
            return;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.call_once_force(f);
    }

    /// Whether some `call_once` completed successfully.
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.inner.is_completed()
    }

    /// Blocks until initialisation completes; panics if it was poisoned.
    #[cfg(lockdep_std_wait)]
    #[allow(clippy::incompatible_msrv)]
    #[track_caller]
    pub fn wait(&self) {
        let site = Site::caller();
        if self.inner.is_completed() {
            initialised(&self.map, site);
            return;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.wait();
    }

    /// Blocks until initialisation completes, even if it was poisoned.
    #[cfg(lockdep_std_wait)]
    #[allow(clippy::incompatible_msrv)]
    #[track_caller]
    pub fn wait_force(&self) {
        let site = Site::caller();
        if self.inner.is_completed() {
            initialised(&self.map, site);
            return;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.wait_force();
    }

    /// The lock map of this `Once` (not in std).
    pub fn lock_map(&self) -> &LockMap {
        &self.map
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
