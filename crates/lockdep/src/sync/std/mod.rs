//! The files of `lockdep::std::sync` (documented there, in lib.rs): std's `sync` API over this
//! crate's raw locks and lock maps.

#[cfg(not(feature = "disabled"))]
mod barrier;
#[cfg(not(feature = "disabled"))]
mod condvar;
#[cfg(not(feature = "disabled"))]
mod lazy_lock;
#[cfg(not(feature = "disabled"))]
mod mutex;
#[cfg(not(feature = "disabled"))]
mod once;
#[cfg(not(feature = "disabled"))]
mod once_lock;
#[cfg(not(feature = "disabled"))]
mod poison;
#[cfg(not(feature = "disabled"))]
mod rwlock;

#[cfg(not(feature = "disabled"))]
#[allow(deprecated)]
pub use self::once::ONCE_INIT;
#[cfg(not(feature = "disabled"))]
pub use self::{
    barrier::Barrier,
    condvar::{Condvar, WaitTimeoutResult},
    lazy_lock::LazyLock,
    mutex::{MappedMutexGuard, Mutex, MutexGuard},
    once::Once,
    once_lock::OnceLock,
    rwlock::{
        MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
};
#[cfg(not(feature = "disabled"))]
pub use ::std::sync::{
    atomic, mpsc, Arc, BarrierWaitResult, LockResult, OnceState, PoisonError, TryLockError,
    TryLockResult, Weak,
};

/// With the `disabled` feature: std's own `sync` module.
#[cfg(feature = "disabled")]
pub use ::std::sync::*;

#[cfg(not(feature = "disabled"))]
use crate::lock::map::LockMap;
#[cfg(not(feature = "disabled"))]
pub(crate) use crate::sync::init::{initialised, Initialising};

/// The lock map of every lock and cell here: a sleeping lock. (Never movable: std's guards are
/// not `Send`.)
#[cfg(not(feature = "disabled"))]
pub(crate) const fn map_of(map: LockMap) -> LockMap {
    map.with_wait(
        crate::lock::wait::WaitType::Sleep,
        crate::lock::wait::WaitType::Inv,
    )
}

#[cfg(all(test, feature = "disabled"))]
mod disabled_tests {
    use ::std::any::TypeId;
    use ::std::mem::size_of;

    #[test]
    fn the_std_mirror_is_stds_own_types() {
        macro_rules! same {
            ($($t:ty => $std:ty),* $(,)?) => {$(
                assert_eq!(TypeId::of::<$t>(), TypeId::of::<$std>());
                assert_eq!(size_of::<$t>(), size_of::<$std>());
            )*};
        }
        same!(
            super::Mutex<u64> => ::std::sync::Mutex<u64>,
            super::MutexGuard<'static, u64> => ::std::sync::MutexGuard<'static, u64>,
            super::RwLock<u64> => ::std::sync::RwLock<u64>,
            super::RwLockReadGuard<'static, u64> => ::std::sync::RwLockReadGuard<'static, u64>,
            super::RwLockWriteGuard<'static, u64> => ::std::sync::RwLockWriteGuard<'static, u64>,
            super::Condvar => ::std::sync::Condvar,
            super::WaitTimeoutResult => ::std::sync::WaitTimeoutResult,
            super::Once => ::std::sync::Once,
            super::OnceLock<u64> => ::std::sync::OnceLock<u64>,
            super::LazyLock<u64> => ::std::sync::LazyLock<u64>,
            super::Barrier => ::std::sync::Barrier,
            super::PoisonError<u8> => ::std::sync::PoisonError<u8>,
            super::TryLockError<u8> => ::std::sync::TryLockError<u8>,
        );
        let m = super::Mutex::new(1);
        assert_eq!(*m.lock().unwrap(), 1);
    }
}

#[cfg(all(test, not(feature = "disabled")))]
mod tests {
    #[test]
    fn the_mirror_adds_only_a_lock_map_to_a_raw_lock() {
        use ::std::mem::size_of;
        // std's lock, plus the 16-byte lock map and at most a word of padding.
        let map = size_of::<crate::LockMap>();
        assert!(size_of::<super::Mutex<u64>>() <= size_of::<::std::sync::Mutex<u64>>() + map + 8);
        assert!(size_of::<super::RwLock<u64>>() <= size_of::<::std::sync::RwLock<u64>>() + map + 8);
    }
}
