//! [`WwClass`]: a wound/wait class, the kernel's `struct ww_class`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::ww::WwKind;
use crate::lock::class::LockClassKey;

/// A class of wound/wait mutexes (`DEFINE_WW_CLASS` / `DEFINE_WD_CLASS`): the mutexes that may be
/// locked in any order under one [`AcquireCtx`](super::AcquireCtx), the kind of deadlock
/// resolution they use, and the counter that stamps contexts (a lower stamp is an older context,
/// which wins conflicts).
///
/// To the validator a ww class is two lock classes: `NAME_acquire` for the contexts and
/// `NAME_mutex` for the mutexes, as the kernel names them. Make one with [`ww_class!`] or, as a
/// `static`, with [`WwClass::new`]:
///
/// ```
/// use lockdep::ww::{WwClass, WwKind};
///
/// static RESERVATION: WwClass = WwClass::new(
///     WwKind::WoundWait,
///     "reservation_ww_class_acquire",
///     "reservation_ww_class_mutex",
/// );
/// assert_eq!(RESERVATION.kind(), WwKind::WoundWait);
/// let buffers = lockdep::ww_class!(wait_die, "buffers");
/// assert_eq!(buffers.kind(), WwKind::WaitDie);
/// ```
///
/// [`ww_class!`]: crate::ww_class
pub struct WwClass {
    kind: WwKind,
    acquire_key: LockClassKey,
    mutex_key: LockClassKey,
    stamp: AtomicU64,
}

impl WwClass {
    /// A ww class of `kind` whose contexts are in the lock class `acquire_name` and whose
    /// mutexes are in `mutex_name`.
    #[track_caller]
    pub const fn new(
        kind: WwKind,
        acquire_name: &'static str,
        mutex_name: &'static str,
    ) -> WwClass {
        WwClass {
            kind,
            acquire_key: LockClassKey::new(acquire_name),
            mutex_key: LockClassKey::new(mutex_name),
            stamp: AtomicU64::new(0),
        }
    }

    /// Wound-wait or wait-die.
    pub fn kind(&self) -> WwKind {
        self.kind
    }

    /// The lock class key of the contexts (`NAME_acquire`).
    pub const fn acquire_key(&self) -> &LockClassKey {
        &self.acquire_key
    }

    /// The lock class key of the mutexes (`NAME_mutex`).
    pub const fn mutex_key(&self) -> &LockClassKey {
        &self.mutex_key
    }

    /// The next stamp (`atomic_long_inc_return(&ww_class->stamp)`).
    pub(crate) fn next_stamp(&self) -> u64 {
        self.stamp.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The word that identifies this class to the validator's ww rules.
    pub(crate) fn id(&self) -> usize {
        self as *const WwClass as usize
    }
}

impl fmt::Debug for WwClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WwClass")
            .field("kind", &self.kind)
            .field("acquire", &self.acquire_key.name())
            .field("mutex", &self.mutex_key.name())
            .finish()
    }
}

/// A `&'static` [`WwClass`] named as the kernel's `DEFINE_WW_CLASS(NAME)` names it: contexts in
/// `NAME_acquire`, mutexes in `NAME_mutex`. The kind is `wound_wait` or `wait_die`.
///
/// ```
/// let class = lockdep::ww_class!(wound_wait, "reservation_ww_class");
/// assert_eq!(class.mutex_key().name(), "reservation_ww_class_mutex");
/// ```
#[macro_export]
macro_rules! ww_class {
    (wound_wait, $name:literal) => {
        $crate::ww_class!(@ WoundWait, $name)
    };
    (wait_die, $name:literal) => {
        $crate::ww_class!(@ WaitDie, $name)
    };
    (@ $kind:ident, $name:literal) => {{
        static CLASS: $crate::ww::WwClass = $crate::ww::WwClass::new(
            $crate::ww::WwKind::$kind,
            concat!($name, "_acquire"),
            concat!($name, "_mutex"),
        );
        &CLASS
    }};
}
