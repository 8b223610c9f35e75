//! [`Once`]: parking_lot's one-time initialisation, as a lock the validator sees.

use std::fmt;
use std::panic::Location;

use crate::lock::map::{LockMap, Site};
use crate::sync::init::{initialised, Initialising};

pub use parking_lot::OnceState;

/// parking_lot's `Once`, validated: the closure of [`call_once`](Once::call_once) runs holding
/// the `Once`'s lock map (its class is the construction site), threads that wait for it hold it
/// too, and a call on a completed `Once` is a `might_lock`. So "the initialiser takes `L`" with
/// "`L` held while calling the `Once`" is a reported cycle (see
/// [`lockdep::std::sync::Once`](crate::std::sync::Once), which has std's API).
///
/// ```
/// use lockdep::Once;
///
/// static START: Once = Once::new();
/// START.call_once(|| println!("once"));
/// assert!(START.state().done());
/// ```
pub struct Once {
    inner: parking_lot::Once,
    /// Made by [`Once::new_completed`]: done from the start.
    born_done: bool,
    map: LockMap,
}

impl Once {
    /// A new `Once` whose class is this call site.
    #[track_caller]
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Once {
        Once {
            inner: parking_lot::Once::new(),
            born_done: false,
            map: LockMap::from_site(Location::caller())
                .with_wait(crate::WaitType::Sleep, crate::WaitType::Inv),
        }
    }

    /// A `Once` that is already done: its closures never run (parking_lot's `new_completed`).
    #[track_caller]
    pub const fn new_completed() -> Once {
        let mut once = Once::new();
        once.born_done = true;
        once
    }

    /// The state: new, poisoned, in progress, or done.
    #[inline]
    pub fn state(&self) -> OnceState {
        if self.born_done {
            OnceState::Done
        } else {
            self.inner.state()
        }
    }

    /// Runs `f` if this is the first call; otherwise waits for the first call to finish.
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        let site = Site::caller();
        if self.state().done() {
            initialised(&self.map, site);
            return;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.call_once(f);
    }

    /// [`call_once`](Self::call_once), run even if an earlier call panicked.
    #[track_caller]
    pub fn call_once_force<F: FnOnce(OnceState)>(&self, f: F) {
        let site = Site::caller();
        if self.state().done() {
            initialised(&self.map, site);
            return;
        }
        let _held = Initialising::hold(&self.map, site);
        self.inner.call_once_force(f);
    }

    /// The lock map of this `Once`.
    pub fn lock_map(&self) -> &LockMap {
        &self.map
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("state", &self.state())
            .finish()
    }
}
