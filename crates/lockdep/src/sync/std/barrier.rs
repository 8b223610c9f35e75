//! [`Barrier`]: std's barrier; a wait is a sleep the validator checks.

use ::std::fmt;
use ::std::sync::BarrierWaitResult;

use crate::lock::map::Site;

/// A barrier with `std::sync::Barrier`'s API: [`wait`](Barrier::wait) blocks until `n` threads
/// wait. A wait is a sleep, so waiting where sleeping is not allowed (a spinning lock held, an
/// interrupt context, a non-blocking section) is reported, as for `might_sleep`.
///
/// ```
/// use lockdep::std::sync::{Arc, Barrier};
///
/// let b = Arc::new(Barrier::new(2));
/// let b2 = Arc::clone(&b);
/// let t = std::thread::spawn(move || b2.wait().is_leader());
/// let leader = b.wait().is_leader();
/// assert!(leader ^ t.join().unwrap());
/// ```
pub struct Barrier {
    inner: ::std::sync::Barrier,
}

impl Barrier {
    /// A barrier for `n` threads.
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            inner: ::std::sync::Barrier::new(n),
        }
    }

    /// Blocks until `n` threads have called `wait`; exactly one of them is the leader.
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        let site = Site::caller();
        crate::rt::with_current_task(|e, t| e.might_sleep(t, site));
        self.inner.wait()
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}
