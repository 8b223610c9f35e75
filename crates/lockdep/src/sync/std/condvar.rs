//! [`Condvar`]: std's condition variable, for this module's [`Mutex`](super::Mutex).

use ::std::fmt;
use ::std::sync::{LockResult, PoisonError};
use ::std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use crate::lock::map::Site;

pub use crate::sync::condvar::WaitTimeoutResult;

/// A condition variable with `std::sync::Condvar`'s API.
///
/// A wait releases the mutex, in the validator as for real, and re-acquires it validated
/// against the locks still held; it is a sleep, so waiting with a spinning lock held is
/// reported. As std allows, using one condvar with two mutexes at once panics.
///
/// ```
/// use lockdep::std::sync::{Condvar, Mutex};
/// use std::time::Duration;
///
/// let m = Mutex::new(0);
/// let c = Condvar::new();
/// let (g, r) = c.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
/// assert!(r.timed_out());
/// assert_eq!(*g, 0);
/// ```
#[derive(Default)]
pub struct Condvar {
    inner: crate::sync::condvar::Condvar,
}

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Condvar {
        Condvar {
            inner: crate::sync::condvar::Condvar::new(),
        }
    }

    #[inline]
    fn wait_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
        site: Site,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        // SAFETY: the guard holds its mutex's raw lock, and keeps holding it when this returns
        // (or unwinds: the guard is dropped then, releasing it).
        let result = unsafe { self.inner.wait_raw(guard.raw(), deadline, site) };
        if guard.mutex().is_poisoned() {
            Err(PoisonError::new((guard, result)))
        } else {
            Ok((guard, result))
        }
    }

    /// Blocks until notified (or woken spuriously), releasing the guard's mutex meanwhile. `Err`
    /// if the mutex is poisoned when re-acquired.
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        match self.wait_deadline(guard, None, Site::caller()) {
            Ok((g, _)) => Ok(g),
            Err(e) => Err(PoisonError::new(e.into_inner().0)),
        }
    }

    /// Blocks while `condition` returns `true` for the data.
    #[track_caller]
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        let site = Site::caller();
        while condition(&mut *guard) {
            guard = match self.wait_deadline(guard, None, site) {
                Ok((g, _)) => g,
                Err(e) => return Err(PoisonError::new(e.into_inner().0)),
            };
        }
        Ok(guard)
    }

    /// [`wait_timeout`](Self::wait_timeout) in milliseconds; `true` if it did *not* time out.
    #[deprecated(
        since = "1.6.0",
        note = "replaced by `lockdep::std::sync::Condvar::wait_timeout`"
    )]
    #[track_caller]
    pub fn wait_timeout_ms<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        ms: u32,
    ) -> LockResult<(MutexGuard<'a, T>, bool)> {
        let deadline = Instant::now().checked_add(Duration::from_millis(ms.into()));
        match self.wait_deadline(guard, deadline, Site::caller()) {
            Ok((g, r)) => Ok((g, !r.timed_out())),
            Err(e) => {
                let (g, r) = e.into_inner();
                Err(PoisonError::new((g, !r.timed_out())))
            }
        }
    }

    /// Blocks until notified or `dur` has passed.
    #[track_caller]
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        self.wait_deadline(guard, Instant::now().checked_add(dur), Site::caller())
    }

    /// Blocks while `condition` returns `true`, for at most `dur` in all. The result says
    /// whether time ran out with the condition still true.
    #[track_caller]
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let site = Site::caller();
        let start = Instant::now();
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult::new(false)));
            }
            let timeout = match dur.checked_sub(start.elapsed()) {
                Some(timeout) => timeout,
                None => return Ok((guard, WaitTimeoutResult::new(true))),
            };
            guard = self
                .wait_deadline(guard, Instant::now().checked_add(timeout), site)?
                .0;
        }
    }

    /// Wakes one waiting thread.
    #[inline]
    pub fn notify_one(&self) {
        self.inner.notify_one();
    }

    /// Wakes every waiting thread.
    #[inline]
    pub fn notify_all(&self) {
        self.inner.notify_all();
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
