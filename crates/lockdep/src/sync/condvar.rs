//! [`Condvar`]: a condition variable for [`Mutex`](crate::Mutex) (and any [`GenericMutex`](crate::sync::GenericMutex)) that the validator understands.
//!
//! A wait releases the mutex and re-acquires it, in the validator as in reality: while the thread
//! sleeps it holds nothing, and the re-acquisition is validated like any `lock()` against the
//! locks still held. It is built on `parking_lot_core`'s parking lot, the machinery under
//! parking_lot's own condvar.

use std::fmt;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use lock_api::RawMutex;
use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};

use crate::lock::map::{Acquire, Site};
use crate::sync::mutex::GenericMutexGuard;
use crate::sync::raw::Lockdep;

/// Whether a timed wait returned because its time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    #[cfg_attr(feature = "disabled", allow(dead_code))]
    pub(crate) fn new(timed_out: bool) -> WaitTimeoutResult {
        WaitTimeoutResult(timed_out)
    }

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
///
/// As parking_lot's, a condvar serves one mutex at a time: waiting on it with a second mutex
/// while threads wait with the first panics (`attempted to use a condition variable with more
/// than one mutex`) instead of losing wake-ups.
#[derive(Default)]
pub struct Condvar {
    /// The raw mutex the current waiters use (null when nobody waits). Its address is also the
    /// parking-lot key of the condvar.
    mutex: AtomicPtr<()>,
}

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Condvar {
        Condvar {
            mutex: AtomicPtr::new(ptr::null_mut()),
        }
    }

    fn key(&self) -> usize {
        self as *const Condvar as usize
    }

    /// Wakes one waiter; returns whether one was woken.
    pub fn notify_one(&self) -> bool {
        if self.mutex.load(Ordering::Relaxed).is_null() {
            return false;
        }
        // SAFETY: the key is this condvar's address; the callback only resets the waiters'
        // mutex, under the parking lot's queue lock.
        let r = unsafe {
            parking_lot_core::unpark_one(self.key(), |r| {
                if !r.have_more_threads {
                    self.mutex.store(ptr::null_mut(), Ordering::Relaxed);
                }
                DEFAULT_UNPARK_TOKEN
            })
        };
        r.unparked_threads > 0
    }

    /// Wakes every waiter; returns how many were woken.
    pub fn notify_all(&self) -> usize {
        if self.mutex.load(Ordering::Relaxed).is_null() {
            return 0;
        }
        // SAFETY: the key is this condvar's address; the callback runs under the queue lock
        // after every waiter was taken off, and only resets the waiters' mutex.
        let r = unsafe {
            parking_lot_core::unpark_filter(
                self.key(),
                |_| parking_lot_core::FilterOp::Unpark,
                |_| {
                    self.mutex.store(ptr::null_mut(), Ordering::Relaxed);
                    DEFAULT_UNPARK_TOKEN
                },
            )
        };
        r.unparked_threads
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

    /// Waits while `condition` holds, until `deadline`; the result says whether time ran out
    /// (with `condition` still true).
    #[track_caller]
    pub fn wait_while_until<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        condition: impl FnMut(&mut T) -> bool,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        self.wait_while_at(guard, condition, Some(deadline), Site::caller())
    }

    /// Waits while `condition` holds, for at most `timeout`.
    #[track_caller]
    pub fn wait_while_for<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        condition: impl FnMut(&mut T) -> bool,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        let deadline = Instant::now().checked_add(timeout);
        self.wait_while_at(guard, condition, deadline, Site::caller())
    }

    /// parking_lot's internal form of the `wait_while` family (`None`: no deadline), public
    /// here only so that code written against parking_lot's internals (its own tests) ports.
    #[doc(hidden)]
    #[track_caller]
    pub fn wait_while_until_internal<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        condition: impl FnMut(&mut T) -> bool,
        deadline: Option<Instant>,
    ) -> WaitTimeoutResult {
        self.wait_while_at(guard, condition, deadline, Site::caller())
    }

    fn wait_while_at<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        mut condition: impl FnMut(&mut T) -> bool,
        deadline: Option<Instant>,
        site: Site,
    ) -> WaitTimeoutResult {
        let mut result = WaitTimeoutResult(false);
        while !result.timed_out() && condition(&mut **guard) {
            result = self.wait_until_internal(guard, deadline, site);
        }
        result
    }

    #[track_caller]
    fn wait_until_internal<T: ?Sized, R: RawMutex>(
        &self,
        guard: &mut GenericMutexGuard<'_, R, T>,
        deadline: Option<Instant>,
        site: Site,
    ) -> WaitTimeoutResult {
        let mutex = lock_api::MutexGuard::mutex(guard);
        // SAFETY: we hold the mutex through `guard`, and `wait_raw` re-acquires it before
        // returning, so the guard is valid again when the caller sees it.
        let raw = unsafe { mutex.raw() };
        // SAFETY: `raw` is held by this thread (through `guard`).
        unsafe { self.wait_raw(raw, deadline, site) }
    }

    /// The wait itself, for any instrumented raw mutex: checks that it may sleep, releases the
    /// mutex in the validator and for real, parks, then re-acquires it (validated before
    /// blocking). Panics, with the mutex still held, if other threads wait on this condvar with
    /// another mutex.
    ///
    /// # Safety
    /// `raw` must be locked by the current thread; it is locked again when this returns or
    /// unwinds.
    #[track_caller]
    pub(crate) unsafe fn wait_raw<R: RawMutex>(
        &self,
        raw: &Lockdep<R>,
        deadline: Option<Instant>,
        site: Site,
    ) -> WaitTimeoutResult {
        let map = raw.lock_map();
        let mutex_addr = raw as *const Lockdep<R> as *mut ();
        // A wait sleeps: checked before parking, with the mutex still held (`wait_event`).
        crate::rt::with_current_task(|e, t| e.might_sleep(t, site));
        map.release_at(site);
        let mut bad_mutex = false;
        let validate = || {
            // Under the parking lot's queue lock: the waiters' mutex is ours, or nobody waits.
            let current = self.mutex.load(Ordering::Relaxed);
            if current.is_null() {
                self.mutex.store(mutex_addr, Ordering::Relaxed);
            } else if current != mutex_addr {
                bad_mutex = true;
                return false;
            }
            true
        };
        let before_sleep = || {
            // SAFETY: the caller guarantees the mutex is held; we are queued on the condvar, so
            // a notify after this unlock wakes us.
            unsafe { raw.inner().unlock() };
        };
        let timed_out = |_, was_last_thread: bool| {
            if was_last_thread {
                self.mutex.store(ptr::null_mut(), Ordering::Relaxed);
            }
        };
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
        if bad_mutex {
            // Not parked, so never unlocked: the hold is only given back to the validator.
            map.acquire_at(Acquire::exclusive(), site);
            panic!("attempted to use a condition variable with more than one mutex");
        }
        raw.lock_with(Acquire::exclusive(), site);
        WaitTimeoutResult(matches!(result, parking_lot_core::ParkResult::TimedOut))
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
