//! Async tasks: a lockdep task per future, whatever thread polls it.
//!
//! The process-wide validator keeps a held-lock stack per thread, which is wrong for async
//! code: an executor runs many tasks on one thread, interleaved at their `.await`s, and moves a
//! task between worker threads. [`tracked`] wraps a future so that it is its own lockdep
//! [`Task`]: its held locks, chain, interrupt-like context and caches live in the wrapper, and
//! each `poll` makes that task the thread's *current* task for the duration of the call (the
//! way `tracing::Instrument` enters a span), then gives the thread its own back. Nothing is
//! borrowed across an `.await`, so a tracked future is `Send` when the future is, and it works
//! on any executor.
//!
//! Inside a tracked poll every hook — the primitives', a [`LockMap`]'s, the annotations' — sees
//! the tracked task, on the same fast path as a thread's own task (the thread-local that the
//! fast path reads points at the current task; switching is two stores). Two things happen at
//! the edges of a poll:
//!
//! - **Suspension.** A poll that returns `Pending` is a suspension: the task asks the engine
//!   whether it holds a blocking lock ([`Engine::suspend`]: reported once per class and site as
//!   `WARNING: lock held across an await point!`). Async locks (maps marked
//!   [`async_lock`](LockMap::async_lock), e.g. `lockdep::tokio`'s) are what may be held there.
//! - **The end.** When the wrapper is dropped (the future finished or was cancelled), the inner
//!   future is dropped *inside* the task, so the guards it owned are released by their holder;
//!   holds of movable maps that are still out (a guard the future returned or sent away) are left
//!   for whoever releases them, and any other lock still held is reported as a task exiting
//!   with locks held.
//!
//! Async locks use the current task too ([`LockMap::acquire_async`]): inside a tracked task an async
//! lock is held from the moment its guard exists. Outside any tracked task (a future polled
//! without the wrapper) an async lock's acquisition is validated against the thread's held
//! locks when it is requested and is not held at all, because a thread's stack cannot tell the
//! tasks it interleaves apart or follow one to another thread: that rule can miss an order, but
//! never makes a false report or a bad unlock.

use std::cell::Cell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use super::{
    acquire_fast, acquire_recorded, current_slot, deliver, dispatch, release, retire, set_fast,
    with_task, Claim, Slot, CUR, CURRENT, FAST, SLOT,
};
use crate::engine::held::Task;
use crate::engine::Engine;
use crate::lock::map::{Acquire, LockMap, ReadKind, Site};
use crate::report::Report;

/// A future that is its own lockdep task. Made by [`tracked`].
#[must_use = "futures do nothing unless polled"]
pub struct Tracked<F> {
    /// Boxed: the thread-local points at it during a poll, and the future may move between polls.
    slot: Box<Slot>,
    /// Dropped in place, inside the task, by `Drop` (structurally pinned).
    fut: ManuallyDrop<F>,
}

// SAFETY: a shared `&Tracked` gives access to nothing (the slot and the future are only used
// through `Pin<&mut Self>` and `Drop`), so sharing it between threads is as safe as sharing `F`.
unsafe impl<F: Sync> Sync for Tracked<F> {}

static NEXT_TASK_ID: AtomicU32 = AtomicU32::new(1);

/// Makes `fut` its own lockdep task: its held locks travel with it across polls and worker
/// threads, and a poll that suspends while it holds a blocking lock is reported. Works with any
/// executor; `Send` when `fut` is. Reports name the task `async@FILE:LINE/N`: where it was
/// wrapped, and a serial number.
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::future::tracked;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(tracked(async {
///     let m = lockdep::Mutex::new(0);
///     *m.lock() += 1; // dropped before any await: fine
///     tokio::task::yield_now().await;
///     assert!(lockdep::future::is_tracked());
/// }));
/// # }
/// ```
#[track_caller]
pub fn tracked<F: Future>(fut: F) -> Tracked<F> {
    tracked_at(fut, Location::caller())
}

/// [`tracked`], naming the task after `site` (the spawn wrappers pass their caller).
pub(crate) fn tracked_at<F: Future>(fut: F, site: &'static Location<'static>) -> Tracked<F> {
    let name = format!("async@{}:{}", site.file(), site.line());
    let task = Task::new(name, NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed));
    Tracked {
        slot: Box::new(Slot::new(task)),
        fut: ManuallyDrop::new(fut),
    }
}

/// Whether the code calling it runs inside a tracked future's poll (see [`tracked`]).
///
/// ```
/// assert!(!lockdep::future::is_tracked());
/// ```
#[inline]
pub fn is_tracked() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of, and `Drop` drops it in
        // place. `slot` is not pinned (it is boxed, and only its address is used).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above; `this` is not moved from here on.
        let fut = unsafe { Pin::new_unchecked(&mut *this.fut) };
        let Some(entered) = enter(&this.slot) else {
            return fut.poll(cx);
        };
        let r = fut.poll(cx);
        if r.is_pending() {
            suspended(&this.slot);
        }
        drop(entered);
        r
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        let entered = enter(&self.slot);
        // SAFETY: `fut` is dropped exactly once, here, in place; it is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.fut) };
        if entered.is_some() {
            let reports = with_task(|_, t| retire(t)).unwrap_or_default();
            deliver_quietly(reports);
        }
        drop(entered);
    }
}

impl<F> std::fmt::Debug for Tracked<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked").finish_non_exhaustive()
    }
}

/// A tracked poll in progress: puts the thread's previous current task back when dropped
/// (unwinding included).
struct Entered {
    prev_current: *const Slot,
    prev_cur: *const Slot,
    prev_fast: *const Slot,
}

/// Makes `slot` the thread's current task; `None` (poll untracked) if the validator is compiled
/// out or the thread's own slot is being destroyed.
#[inline]
fn enter(slot: &Slot) -> Option<Entered> {
    if cfg!(feature = "disabled") {
        return None;
    }
    let mut prev_cur = CUR.with(Cell::get);
    if prev_cur.is_null() {
        // No hook has run on this thread yet (or the thread is exiting): find its own slot.
        prev_cur = SLOT
            .try_with(|ts| {
                let own = current_slot(ts) as *const Slot;
                CUR.with(|f| f.set(own));
                own
            })
            .ok()?;
    }
    // SAFETY: `CUR` is non-null, so it is the thread's current slot, alive while this poll
    // lasts (see `fast_slot`).
    let outer_busy = unsafe { &*prev_cur }.busy.get();
    // A poll inside a hook or a report handler stays outside the validator, as everything the
    // handler does.
    slot.busy.set(outer_busy);
    let prev_current = CURRENT.with(|c| c.replace(slot));
    CUR.with(|f| f.set(slot));
    let fast = if outer_busy {
        std::ptr::null()
    } else {
        slot.fast_value()
    };
    let prev_fast = FAST.with(|f| f.acquire.get());
    set_fast(fast);
    Some(Entered {
        prev_current,
        prev_cur,
        prev_fast,
    })
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev_current));
        CUR.with(|f| f.set(self.prev_cur));
        set_fast(self.prev_fast);
    }
}

/// The current task (`slot`'s) suspends: the await rule.
#[inline]
fn suspended(slot: &Slot) {
    // The cheap question first, on the fast route: `busy` is clear and the scan calls out to
    // nothing (see `Slot`).
    // SAFETY: as said; the reference ends before anything else runs.
    let blocking = !slot.busy.get() && Engine::holds_blocking(unsafe { &*slot.task.get() });
    if blocking {
        suspended_slow();
    }
}

#[cold]
#[inline(never)]
fn suspended_slow() {
    if let Some(Some(r)) = with_task(|e, t| e.suspend(t).map(Box::new)) {
        dispatch(*r, || {});
    }
}

/// Delivers reports made at a task's end, with the thread's hooks off meanwhile; never panics
/// (it runs in a destructor).
fn deliver_quietly(reports: Vec<Report>) {
    for r in reports {
        let delivered = SLOT.try_with(|ts| {
            let slot = current_slot(ts);
            let _claim = Claim::new(slot);
            deliver(&r);
        });
        if delivered.is_err() {
            deliver(&r);
        }
    }
}

// ===== the hooks of async locks =====

/// The hooks of an async lock (one whose waiters suspend: tokio's), for instrumenting a lock of
/// your own as `lockdep::tokio`'s are: mark its map [`async_lock`](LockMap::async_lock) (and
/// [`movable`](LockMap::movable) if its guards are `Send`), call [`LockMap::validate`] when the
/// lock is requested and must wait, [`LockMap::acquire_async`] when the guard exists, and
/// [`LockMap::release`] when a guard for which that returned `true` is dropped.
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::{Acquire, LockMap};
///
/// let map = LockMap::new().async_lock().movable();
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(lockdep::future::tracked(async {
///     map.validate(Acquire::exclusive()); // before waiting: an inversion is reported now
///     // ... the lock is obtained ...
///     let held = map.acquire_async(Acquire::exclusive());
///     assert!(held && map.is_held());
///     map.release();
/// }));
/// // Outside a tracked task nothing is held (only the order is validated).
/// assert!(!map.acquire_async(Acquire::exclusive()));
/// # }
/// ```
impl LockMap {
    /// An async lock's guard now exists. Inside a tracked task the acquisition is recorded and
    /// the lock held by the task: `true`, and the guard must [`release`](LockMap::release) it.
    /// Outside any tracked task it is only validated against the thread's held locks (a
    /// trylock not even that), and nothing is held: `false`. (Also `false` when the validator
    /// is off or the thread is inside a report handler.)
    #[track_caller]
    #[inline]
    pub fn acquire_async(&self, how: Acquire<'_>) -> bool {
        acquire_async(self, how, Site::caller())
    }

    /// [`LockMap::acquire_async`] with an explicit call site.
    #[inline]
    pub fn acquire_async_at(&self, how: Acquire<'_>, site: Site) -> bool {
        acquire_async(self, how, site)
    }

    /// Validates an acquisition of kind `how` against the current task's held locks, without
    /// holding anything (`might_lock` of any kind): for a lock about to wait, so that an
    /// inversion is reported before the task can hang.
    #[track_caller]
    #[inline]
    pub fn validate(&self, how: Acquire<'_>) {
        validate(self, how, Site::caller());
    }

    /// [`LockMap::validate`] with an explicit call site.
    #[inline]
    pub fn validate_at(&self, how: Acquire<'_>, site: Site) {
        validate(self, how, site);
    }
}

#[inline]
fn acquire_async(map: &LockMap, how: Acquire<'_>, site: Site) -> bool {
    if cfg!(feature = "disabled") {
        return false;
    }
    if is_tracked() {
        return acquire_fast(map, &how, site) || acquire_async_slow(map, how, site);
    }
    if !how.trylock {
        validate(map, how, site);
    }
    false
}

/// [`acquire_async`] in a tracked task, past the fast path: recorded, and with
/// [lock statistics](crate::stat) on, the hold begins in this thread's statistics and the lock
/// is [acquired](LockMap::acquired) (which counts a wait the lock reported with
/// [`contended`](LockMap::contended) before it). A hold released on another thread than this
/// one is not timed.
#[inline(never)]
#[track_caller]
fn acquire_async_slow(map: &LockMap, how: Acquire<'_>, site: Site) -> bool {
    let held = acquire_recorded(map, how, site);
    if held && super::GATE.load(Ordering::Relaxed) & super::STAT != 0 {
        let top = with_task(|_, t| {
            t.held
                .last()
                .filter(|h| h.instance == map.instance())
                .map(|h| (h.class, h.read))
        })
        .flatten();
        if let Some((class, read)) = top {
            if super::stat::hold_begins(map.instance(), class, read, site) {
                super::stat::acquired(map.instance());
            }
        }
    }
    held
}

/// Validates without holding: the acquisition is recorded and released at once, and lock
/// statistics forget it (it is not an acquisition of the lock).
#[inline]
fn validate(map: &LockMap, how: Acquire<'_>, site: Site) {
    if super::acquire(map, how, site) {
        super::stat::forget(map.instance());
    }
    release(map, site);
}

/// The hook of `lockdep::tokio`'s locks, [`acquire_async`] (or, with `blocking`, a recorded
/// acquisition on the current task, tracked or the thread's own: the `blocking_*` forms) with
/// everything but the map and the site passed as plain values: callers pass constants, so the
/// fast path's checks of the acquisition fold away, and the `Acquire` value is only made on the
/// slow path. Whether the acquisition is held.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
#[inline(always)]
pub(crate) fn acquire_lock(
    map: &LockMap,
    read: ReadKind,
    trylock: bool,
    blocking: bool,
    site: &'static Location<'static>,
) -> bool {
    if cfg!(feature = "disabled") {
        return false;
    }
    let record = blocking || is_tracked();
    if record {
        let how = Acquire::exclusive().with_read(read).trylock(trylock);
        if acquire_fast(map, &how, Site::Code(site)) {
            return true;
        }
    }
    acquire_lock_slow(map, read, trylock, record, site)
}

#[inline(never)]
fn acquire_lock_slow(
    map: &LockMap,
    read: ReadKind,
    trylock: bool,
    record: bool,
    site: &'static Location<'static>,
) -> bool {
    let (how, site) = (
        Acquire::exclusive().with_read(read).trylock(trylock),
        Site::Code(site),
    );
    if record {
        return acquire_recorded(map, how, site);
    }
    if !trylock {
        validate(map, how, site);
    }
    false
}

/// With [lock statistics](crate::stat) on, the statistics of an async lock's acquisition of
/// kind `read` at `site`, obtained after a wait that began at `waited_since` (a
/// [`wait_begins`] stamp) if it had to wait. Whether they counted it: then the guard calls
/// [`guard_released`] when it is dropped (before it releases the map). Counted for every
/// acquisition, inside a tracked task or not: the statistics need the lock's class, not the
/// task's held locks. A constant `false` with statistics off (the guard stays 16 bytes, returned
/// in registers).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
#[inline(always)]
pub(crate) fn lock_stat(
    map: &LockMap,
    read: ReadKind,
    site: &'static Location<'static>,
    waited_since: Option<u64>,
) -> bool {
    if cfg!(feature = "disabled") || super::GATE.load(Ordering::Relaxed) & super::STAT == 0 {
        return false;
    }
    lock_stat_slow(map, read, site, waited_since)
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
#[inline(never)]
fn lock_stat_slow(
    map: &LockMap,
    read: ReadKind,
    site: &'static Location<'static>,
    waited_since: Option<u64>,
) -> bool {
    let Some(class) = class_for_stat(map) else {
        return false;
    };
    super::stat::async_hold_begins(map.instance(), class, read, Site::Code(site), waited_since)
}

/// The class of subclass 0 (what an async lock's acquisitions use): cached in the map once the
/// process-wide engine has seen it, else looked up (and registered) now.
fn class_for_stat(map: &LockMap) -> Option<crate::lock::class::ClassId> {
    match map.cached_class() {
        Some(c) => Some(c),
        None => with_task(|e, t| e.class_of(t, map, 0)),
    }
}

/// Now, in the statistics' clock, if [lock statistics](crate::stat) are on: the start of an
/// async lock's wait, for [`lock_stat`].
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
#[inline]
pub(crate) fn wait_begins() -> Option<u64> {
    (!cfg!(feature = "disabled") && super::GATE.load(Ordering::Relaxed) & super::STAT != 0)
        .then(super::stat::wait_begins)
}

/// The guard of an async lock's hold that [`lock_stat`] counted (kind `read`) is dropped: the
/// hold ends (timed if this is the thread that took it).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
#[cold]
#[inline(never)]
pub(crate) fn guard_released(map: &LockMap, read: bool) {
    if let Some(class) = class_for_stat(map) {
        super::stat::async_hold_ends(map.instance(), class, read);
    }
}

/// Whether a join of work of `work`'s class could wait for a lock the current task holds: it
/// holds a lock that is not a work map, and none of that class (see `crate::task` for the two
/// exceptions).
pub(crate) fn join_may_wait_for_held(work: &LockMap) -> bool {
    with_task(|e, t| {
        let class = e.class_of(t, work, 0);
        !t.held.iter().any(|h| h.class == class)
            && t.held
                .iter()
                .any(|h| h.map_flags & crate::lock::map::WORK == 0)
    })
    .unwrap_or(false)
}
