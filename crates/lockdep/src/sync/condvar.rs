//! [`Condvar`]: a condition variable for [`Mutex`](crate::Mutex) (and any [`GenericMutex`](crate::sync::GenericMutex)) that the validator understands.
//!
//! A wait releases the mutex and re-acquires it, in the validator as in reality: while the thread
//! sleeps it holds nothing, and the re-acquisition is validated like any `lock()` against the
//! locks still held. It is built on `parking_lot_core`'s parking lot, the machinery under
//! parking_lot's own condvar.

use std::fmt;
use std::time::{Duration, Instant};

use lock_api::RawMutex;
use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};

use crate::lock::map::{Acquire, Site};
use crate::sync::mutex::GenericMutexGuard;

/// Whether a timed wait returned because its time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait timed out.
    pub fn timed_out(self) -> bool {
        self.0
    }
}

/// A condition variable.
///
/// ```
/// use std::sync::Arc;
/// use lockdep::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p = pair.clone();
/// let t = std::thread::spawn(move || {
///     *p.0.lock() = true;
///     p.1.notify_one();
/// });
/// let mut ready = pair.0.lock();
/// while !*ready {
///     pair.1.wait(&mut ready);
/// }
/// drop(ready);
/// t.join().unwrap();
/// ```
#[derive(Default)]
pub struct Condvar {
    // The parking-lot key is this field's address; the byte gives the condvar a size, so two
    // condvars never share an address.
    _key: u8,
}

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Condvar {
        Condvar { _key: 0 }
    }

    fn key(&self) -> usize {
        self as *const Condvar as usize
    }

    /// Wakes one waiter; returns whether one was woken.
    pub fn notify_one(&self) -> bool {
        // SAFETY: the key is this condvar's address; the callback does nothing unsafe.
        let r = unsafe { parking_lot_core::unpark_one(self.key(), |_| DEFAULT_UNPARK_TOKEN) };
        r.unparked_threads > 0
    }

    /// Wakes every waiter; returns how many were woken.
    pub fn notify_all(&self) -> usize {
        // SAFETY: the key is this condvar's address.
        unsafe { parking_lot_core::unpark_all(self.key(), DEFAULT_UNPARK_TOKEN) }
    }

    /// Releases the guard's mutex, sleeps until notified (or spuriously woken), and re-acquires
    /// the mutex.
    #[track_caller]
    pub fn wait<T: ?Sized, R: RawMutex>(&self, guard: &mut GenericMutexGuard<'_, R, T>) {
        self.wait_until_internal(guard, None, Site::caller());
    }

    /// [`wait`](Condvar::wait) with a deadline.
    #[track_caller]
    pub fn wait_until<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        self.wait_until_internal(guard, Some(deadline), Site::caller())
    }

    /// [`wait`](Condvar::wait) for at most `timeout`.
    #[track_caller]
    pub fn wait_for<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        let deadline = Instant::now().checked_add(timeout);
        self.wait_until_internal(guard, deadline, Site::caller())
    }

    /// Waits while `condition` holds.
    #[track_caller]
    pub fn wait_while<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) {
        let site = Site::caller();
        while condition(&mut **guard) {
            self.wait_until_internal(guard, None, site);
        }
    }

    #[track_caller]
    fn wait_until_internal<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        deadline: Option<Instant>,
        site: Site,
    ) -> WaitTimeoutResult {
        let mutex = lock_api::MutexGuard::mutex(guard);
        // SAFETY: we hold the mutex through `guard`, and re-acquire it before returning, so the
        // guard is valid again when the caller sees it.
        let raw = unsafe { mutex.raw() };
        let map = raw.lock_map();
        // A wait sleeps: checked before parking, with the mutex still held (`wait_event`).
        crate::rt::with_current_task(|e, t| e.might_sleep(t, site));
        map.release_at(site);
        let validate = || true;
        let before_sleep = || {
            // SAFETY: the mutex is held (by `guard`); we are queued on the condvar, so a notify
            // after this unlock wakes us.
            unsafe { raw.inner().unlock() };
        };
        let timed_out = |_, _| {};
        // SAFETY: the key is this condvar's address, and the callbacks do not panic or park.
        let result = unsafe {
            parking_lot_core::park(
                self.key(),
                validate,
                before_sleep,
                timed_out,
                DEFAULT_PARK_TOKEN,
                deadline,
            )
        };
        raw.lock_with(Acquire::exclusive(), site);
        WaitTimeoutResult(matches!(result, parking_lot_core::ParkResult::TimedOut))
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
