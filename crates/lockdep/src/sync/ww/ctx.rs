//! [`AcquireCtx`]: a wound/wait acquire context, the kernel's `struct ww_acquire_ctx`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::inject::{self, Schedule};
use super::{WwClass, WwError, WwMutex, WwMutexGuard};
use crate::engine::ww::{WwCtxState, WwLockMode};
use crate::lock::map::{LockMap, Site};
use crate::lock::wait::WaitType;
use crate::rt::with_current_task;

/// What other threads see of a context: its stamp, and the flag an older context sets to wound
/// it. Mutexes held under the context keep a reference, so a conflicting thread can read them.
pub(crate) struct CtxShared {
    pub(crate) stamp: u64,
    pub(crate) wounded: AtomicBool,
    /// The context's own lock map (class `NAME_acquire`), held from init to fini.
    pub(crate) map: LockMap,
    /// A map of the mutex class, taken once under `map` at init (see
    /// [`Engine::ww_acquire_init`](crate::Engine::ww_acquire_init)).
    pub(crate) first: LockMap,
}

impl CtxShared {
    /// The key the context's thread parks on while it waits for a mutex.
    pub(crate) fn key(&self) -> usize {
        self as *const CtxShared as usize
    }
}

/// A wound/wait acquire context (`ww_acquire_init` ... `ww_acquire_fini`): one transaction that
/// locks any number of [`WwMutex`]es of one [`WwClass`], in any order.
///
/// Deadlocks between contexts are resolved, not avoided: when two contexts want each other's
/// mutexes, the younger one (the later stamp) is told to back off
/// ([`WwError::Deadlock`]). It must then release every mutex it holds under the context, wait
/// for the contended one with [`AcquireCtx::lock_slow`], and lock the rest again; its stamp
/// stays, so it ages and eventually wins. [`AcquireCtx::lock_all`] is that whole protocol.
///
/// ```
/// use lockdep::ww::{AcquireCtx, WwError, WwMutex};
///
/// let class = lockdep::ww_class!(wound_wait, "accounts");
/// let (a, b) = (WwMutex::new(class, 100), WwMutex::new(class, 5));
///
/// let ctx = AcquireCtx::new(class);
/// let mut ga = ctx.lock(&a).expect("holds nothing yet: never backs off");
/// let mut gb = match ctx.lock(&b) {
///     Ok(g) => g,
///     Err(WwError::Deadlock) => {
///         drop(ga); // release everything, then wait for the contended one
///         let gb = ctx.lock_slow(&b);
///         ga = ctx.lock(&a).expect("b is held, nothing else: a back-off is impossible");
///         gb
///     }
///     Err(WwError::Already) => unreachable!(),
/// };
/// ctx.done(); // no more locks in this transaction
/// *ga -= 10;
/// *gb += 10;
/// drop((ga, gb));
/// ctx.fini();
/// ```
///
/// The validator holds the context's map (class `NAME_acquire`) from [`AcquireCtx::new`] to
/// [`AcquireCtx::fini`] (or drop), and takes each mutex with it as nest lock; see
/// [`crate::ww`] for the rules and the misuses it reports. A context belongs to the thread that
/// made it (`!Send`).
pub struct AcquireCtx {
    class: &'static WwClass,
    pub(crate) shared: Arc<CtxShared>,
    /// Mutexes held under the context (the real count, for the wound/wait decision).
    pub(crate) acquired: Cell<u32>,
    /// The validator's bookkeeping.
    pub(crate) check: RefCell<WwCtxState>,
    inject: Cell<Option<Schedule>>,
    finished: Cell<bool>,
    _not_send: PhantomData<*const ()>,
}

impl AcquireCtx {
    /// Begins a transaction of `class` (`ww_acquire_init`): takes a stamp, and holds the
    /// context's map.
    #[track_caller]
    pub fn new(class: &'static WwClass) -> AcquireCtx {
        let site = Site::caller();
        let stamp = class.next_stamp();
        let shared = Arc::new(CtxShared {
            stamp,
            wounded: AtomicBool::new(false),
            map: LockMap::named(class.acquire_key()),
            first: LockMap::named(class.mutex_key()).with_wait(WaitType::Sleep, WaitType::Inv),
        });
        let ctx = AcquireCtx {
            class,
            shared,
            acquired: Cell::new(0),
            check: RefCell::new(WwCtxState::new(class.id())),
            inject: Cell::new(inject::backoff_injection().then(|| Schedule::new(stamp))),
            finished: Cell::new(false),
            _not_send: PhantomData,
        };
        with_current_task(|e, t| {
            let mut st = ctx.check.borrow_mut();
            e.ww_acquire_init(t, &ctx.shared.map, &ctx.shared.first, &mut st, site)
        });
        ctx
    }

    /// The context's stamp: lower is older, and the older context wins a conflict.
    pub fn stamp(&self) -> u64 {
        self.shared.stamp
    }

    /// The ww class of the context.
    pub fn class(&self) -> &'static WwClass {
        self.class
    }

    /// How many mutexes are held under the context.
    pub fn acquired(&self) -> u32 {
        self.acquired.get()
    }

    /// The context's lock map (for asserts, or as a nest lock of your own).
    pub fn lock_map(&self) -> &LockMap {
        &self.shared.map
    }

    /// Turns back-off injection on or off for this context (see [`super::set_backoff_injection`]
    /// for the schedule); a context starts with the process-wide setting.
    pub fn inject_backoff(&self, on: bool) {
        let now = self.inject.get();
        self.inject.set(match (on, now) {
            (true, Some(s)) => Some(s),
            (true, None) => Some(Schedule::new(self.stamp())),
            (false, _) => None,
        });
    }

    /// Whether this successful lock is to be answered with an injected back-off.
    pub(crate) fn inject_now(&self) -> bool {
        match self.inject.get() {
            Some(mut s) => {
                let hit = s.tick();
                self.inject.set(Some(s));
                hit
            }
            None => false,
        }
    }

    /// Locks `mutex` under the context (`ww_mutex_lock`). Blocks while the holder is younger
    /// (wait-die) or may be wounded (wound-wait); returns [`WwError::Deadlock`] when this context
    /// must back off, and [`WwError::Already`] when it already holds `mutex`. A context that
    /// holds nothing never backs off.
    #[track_caller]
    pub fn lock<'a, T: ?Sized>(
        &'a self,
        mutex: &'a WwMutex<T>,
    ) -> Result<WwMutexGuard<'a, T>, WwError> {
        mutex.lock_in(self, WwLockMode::Lock, Site::caller())
    }

    /// Locks the mutex a back-off was about, after releasing everything else
    /// (`ww_mutex_lock_slow`): waits until it is free. Used without a back-off before it, or
    /// with mutexes still held, it is reported (and, as in the kernel, it then waits like any
    /// lock, which only a misuse can turn into a real deadlock).
    #[track_caller]
    pub fn lock_slow<'a, T: ?Sized>(&'a self, mutex: &'a WwMutex<T>) -> WwMutexGuard<'a, T> {
        match mutex.lock_in(self, WwLockMode::Slow, Site::caller()) {
            Ok(g) => g,
            // The slow path never backs off, and a context that holds the mutex already was
            // reported by the validator; there is no guard to give, so this is the caller's bug.
            Err(e) => panic!("lock_slow: {e}"),
        }
    }

    /// Locks `mutex` under the context if it is free (`ww_mutex_trylock(lock, ctx)`).
    #[track_caller]
    pub fn try_lock<'a, T: ?Sized>(&'a self, mutex: &'a WwMutex<T>) -> Option<WwMutexGuard<'a, T>> {
        mutex.try_lock_in(Some(self), Site::caller())
    }

    /// Locks every mutex of `mutexes`, backing off and retrying as often as needed, and returns
    /// their guards in the order given (a mutex listed twice is locked once).
    ///
    /// ```
    /// use lockdep::ww::{AcquireCtx, WwMutex};
    /// let class = lockdep::ww_class!(wait_die, "rows");
    /// let rows: Vec<WwMutex<u32>> = (0..4).map(|i| WwMutex::new(class, i)).collect();
    /// let ctx = AcquireCtx::new(class);
    /// let guards = ctx.lock_all(&[&rows[3], &rows[1], &rows[2]]);
    /// assert_eq!(guards.iter().map(|g| **g).collect::<Vec<_>>(), vec![3, 1, 2]);
    /// ```
    #[track_caller]
    pub fn lock_all<'a, T: ?Sized>(
        &'a self,
        mutexes: &[&'a WwMutex<T>],
    ) -> Vec<WwMutexGuard<'a, T>> {
        let site = Site::caller();
        let mut slow: Option<usize> = None;
        'retry: loop {
            let mut guards: Vec<(usize, WwMutexGuard<'a, T>)> = Vec::with_capacity(mutexes.len());
            if let Some(i) = slow {
                match mutexes[i].lock_in(self, WwLockMode::Slow, site) {
                    Ok(g) => guards.push((i, g)),
                    Err(e) => panic!("lock_all: {e}"),
                }
            }
            for (i, m) in mutexes.iter().enumerate() {
                if slow == Some(i) {
                    continue;
                }
                match m.lock_in(self, WwLockMode::Lock, site) {
                    Ok(g) => guards.push((i, g)),
                    Err(WwError::Already) => {}
                    Err(WwError::Deadlock) => {
                        drop(guards);
                        slow = Some(i);
                        continue 'retry;
                    }
                }
            }
            guards.sort_by_key(|(i, _)| *i);
            return guards.into_iter().map(|(_, g)| g).collect();
        }
    }

    /// Marks the end of the locking phase (`ww_acquire_done`): locking under the context from
    /// now on is reported.
    #[track_caller]
    pub fn done(&self) {
        let site = Site::caller();
        with_current_task(|e, t| {
            let mut st = self.check.borrow_mut();
            e.ww_acquire_done(t, &self.shared.map, &mut st, site)
        });
    }

    /// Ends the transaction (`ww_acquire_fini`); dropping the context does the same. Every
    /// mutex must have been unlocked (a leaked guard is reported).
    #[track_caller]
    pub fn fini(self) {
        self.finish(Site::caller());
    }

    fn finish(&self, site: Site) {
        if self.finished.replace(true) {
            return;
        }
        with_current_task(|e, t| {
            let mut st = self.check.borrow_mut();
            e.ww_acquire_fini(t, &self.shared.map, &mut st, site)
        });
    }
}

impl Drop for AcquireCtx {
    fn drop(&mut self) {
        self.finish(Site::Unknown);
    }
}

impl fmt::Debug for AcquireCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireCtx")
            .field("class", self.class)
            .field("stamp", &self.stamp())
            .field("acquired", &self.acquired.get())
            .field("wounded", &self.shared.wounded.load(Ordering::Relaxed))
            .finish()
    }
}
