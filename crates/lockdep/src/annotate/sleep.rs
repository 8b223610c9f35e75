//! Sections that must not sleep for the current thread: `might_sleep` and `non_block`.

use super::run_here;

use std::fmt;
use std::marker::PhantomData;

use crate::lock::map::Site;
use crate::rt::{self};

/// `might_sleep()` for the current thread: reported if the thread is in a non-blocking section,
/// has interrupts disabled, runs in interrupt context, or holds a spinning lock.
///
/// ```
/// lockdep::annotate::might_sleep(); // fine here
/// ```
#[track_caller]
pub fn might_sleep() {
    let site = Site::caller();
    run_here(|e, t| e.might_sleep(t, site), |_, _| {});
}

/// `non_block_start()` for the current thread: sleeping is a bug until the matching
/// [`non_block_end`]. Sections nest. Prefer the scope [`non_block`].
pub fn non_block_start() {
    rt::with_current_task(|e, t| {
        e.non_block_start(t);
        None
    });
}

/// `non_block_end()` for the current thread; an end without a start is reported.
#[track_caller]
pub fn non_block_end() {
    let site = Site::caller();
    run_here(|e, t| e.non_block_end(t, site), |_, _| {});
}

/// A non-blocking section for the guard's lifetime (`non_block_start` ... `non_block_end`), as
/// the kernel wraps an mmu-notifier callback called in non-blocking mode (the oom reaper).
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::{annotate, Mutex, ReportCollector, ReportKind};
///
/// let reports = ReportCollector::new();
/// let m = Mutex::new(());
/// {
///     let _nb = annotate::non_block();
///     let _g = m.lock(); // a sleeping lock: "sleeping function called from invalid context"
/// }
/// let found = reports.matching(|r| r.kind == ReportKind::SleepInvalidContext);
/// assert_eq!(found.len(), 1);
/// assert!(found[0].render().contains("non_block: 1"));
/// # }
/// ```
pub fn non_block() -> NonBlockGuard {
    non_block_start();
    NonBlockGuard {
        _not_send: PhantomData,
    }
}

/// Ends a non-blocking section when dropped. Made by [`non_block`].
#[must_use = "the non-blocking section ends when the guard is dropped"]
pub struct NonBlockGuard {
    _not_send: PhantomData<*const ()>,
}

impl Drop for NonBlockGuard {
    fn drop(&mut self) {
        run_here(|e, t| e.non_block_end(t, Site::Unknown), |_, _| {});
    }
}

impl fmt::Debug for NonBlockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlockGuard").finish()
    }
}
