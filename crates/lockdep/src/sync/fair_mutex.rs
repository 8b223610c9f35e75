//! [`FairMutex`]: parking_lot's fair mutex, instrumented.
//!
//! A fair mutex hands the lock to the next waiter on every unlock (no barging), at some cost in
//! throughput. For the validator it is a mutex like [`Mutex`](crate::Mutex): the same
//! [`GenericMutex`](crate::sync::GenericMutex) over parking_lot's `RawFairMutex`, with the same
//! classes (the construction site) and the same API.
//!
//! ```
//! use lockdep::FairMutex;
//!
//! let m = FairMutex::new(1);
//! *m.lock() += 1;
//! assert_eq!(m.into_inner(), 2);
//! ```

#[cfg(not(feature = "disabled"))]
mod aliases {
    use crate::sync::mutex::GenericMutex;
    use crate::sync::raw::Lockdep;

    /// parking_lot's fair mutex, instrumented.
    pub type FairMutex<T> = GenericMutex<parking_lot::RawFairMutex, T>;
    /// The guard of a [`FairMutex`]; dropping it unlocks fairly.
    pub type FairMutexGuard<'a, T> =
        lock_api::MutexGuard<'a, Lockdep<parking_lot::RawFairMutex>, T>;
    /// A mapped guard of a [`FairMutex`].
    pub type MappedFairMutexGuard<'a, T> =
        lock_api::MappedMutexGuard<'a, Lockdep<parking_lot::RawFairMutex>, T>;

    /// A fair mutex whose class is this call site, in a `const` context (parking_lot's
    /// `const_fair_mutex`).
    #[track_caller]
    pub const fn const_fair_mutex<T>(val: T) -> FairMutex<T> {
        FairMutex::new(val)
    }
}

/// With the `disabled` feature: parking_lot's own fair mutex.
#[cfg(feature = "disabled")]
mod aliases {
    pub use parking_lot::{const_fair_mutex, FairMutex, FairMutexGuard, MappedFairMutexGuard};
}

pub use aliases::*;
