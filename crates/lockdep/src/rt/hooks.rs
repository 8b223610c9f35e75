//! The hooks: what a lock calls when it is acquired, released, downgraded or freed, and the
//! operations on the current thread's task that drivers and annotations use.
//!
//! Each hook first tries the engine's fast path on the thread's task, inlined into the lock call;
//! otherwise it marks the thread busy and hands the task with the global engine to the engine's
//! method of the same name, and passes any report to `dispatch`.

use super::*;
use crate::engine::PinCookie;
use crate::lock::class::LockClassKey;
use crate::lock::map::MapGuard;
use std::marker::PhantomData;

/// The hooks a lock map offers: the kernel's `lock_acquire`, `lock_release`, `might_lock`, the
/// assertions and the class changes, all on the current thread's task of the process-wide
/// validator. They live here, with the driver, so that the map itself stays a plain value.
impl LockMap {
    /// Records an acquisition of this map by the current thread (the kernel's `lock_acquire`).
    /// Call it *before* blocking on the real lock, so that a deadlock is reported before it
    /// happens.
    #[track_caller]
    #[inline]
    pub fn acquire(&self, how: Acquire<'_>) {
        acquire(self, how, Site::caller());
    }

    /// Records an acquisition with an explicit call site.
    #[inline]
    #[track_caller]
    pub fn acquire_at(&self, how: Acquire<'_>, site: Site) {
        acquire(self, how, site);
    }

    /// Records an acquisition and takes the real lock, the way the kernel's `LOCK_CONTENDED`
    /// does: the acquisition is validated first; then, with [lock statistics](crate::stat) on,
    /// `try_lock` is tried once, and only if it fails is the lock [contended](Self::contended)
    /// and `lock` called (and that wait timed), then the lock is [acquired](Self::acquired).
    /// With statistics off this is `acquire_at` then `lock`, at the same cost.
    ///
    /// ```
    /// use lockdep::{Acquire, LockMap, Site};
    /// use lock_api::RawMutex as _;
    ///
    /// // A lock of your own: a raw lock plus a map.
    /// struct MyLock { raw: parking_lot::RawMutex, map: LockMap }
    /// impl MyLock {
    ///     #[track_caller]
    ///     fn lock(&self) {
    ///         self.map.acquire_lock(Acquire::exclusive(), Site::caller(),
    ///             || self.raw.try_lock(), || self.raw.lock());
    ///     }
    ///     fn unlock(&self) {
    ///         self.map.release();
    ///         // SAFETY: locked by `lock` above.
    ///         unsafe { self.raw.unlock() }
    ///     }
    /// }
    /// let l = MyLock { raw: parking_lot::RawMutex::INIT, map: LockMap::new() };
    /// l.lock();
    /// l.unlock();
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn acquire_lock(
        &self,
        how: Acquire<'_>,
        site: Site,
        try_lock: impl FnOnce() -> bool,
        lock: impl FnOnce(),
    ) {
        if acquire(self, how, site) {
            self.lock_counted(try_lock, lock);
        } else {
            lock();
        }
    }

    /// The rest of [`acquire_lock`](Self::acquire_lock) with statistics on, out of line so that
    /// the lock call with them off stays as it was. The statistics were just told about the
    /// acquisition, so their hooks are called without asking the gate again.
    #[inline(never)]
    fn lock_counted(&self, try_lock: impl FnOnce() -> bool, lock: impl FnOnce()) {
        if !try_lock() {
            stat::contended(self.instance());
            lock();
        }
        stat::acquired(self.instance());
    }

    /// Records that the lock is contended (the kernel's `lock_contended`): this thread has
    /// [acquired](Self::acquire) the map, its first try to take the real lock failed, and it is
    /// about to wait. The wait is timed until [`acquired`](Self::acquired); the site the map was
    /// acquired at is the contention point, and the site where the current holder took the lock
    /// (if it was taken with `acquired`) the contending point. Does nothing unless
    /// [lock statistics](crate::stat) are on; for a lock type of your own (an async lock's wait
    /// is a contention too). [`acquire_lock`](Self::acquire_lock) makes both calls for you.
    #[inline]
    pub fn contended(&self) {
        contended(self);
    }

    /// Records that the real lock was obtained (the kernel's `lock_acquired`), after
    /// [`acquire`](Self::acquire) (and [`contended`](Self::contended) if it waited): ends the
    /// wait, starts the hold time, and notes this thread as the lock's last holder (for
    /// bounces and contending points). Does nothing unless [lock statistics](crate::stat) are
    /// on.
    #[inline]
    pub fn acquired(&self) {
        acquired(self);
    }

    /// Records the release of this map by the current thread (the kernel's `lock_release`).
    /// Releases may come in any order.
    #[track_caller]
    #[inline]
    pub fn release(&self) {
        release(self, Site::caller());
    }

    /// Records a release with an explicit call site.
    #[inline]
    pub fn release_at(&self, site: Site) {
        release(self, site);
    }

    /// Acquires the map and returns a guard that releases it when dropped
    /// (`lock_map_acquire` ... `lock_map_release` as a scope).
    #[track_caller]
    pub fn hold(&self, how: Acquire<'_>) -> MapGuard<'_> {
        self.acquire(how);
        MapGuard {
            map: self,
            _not_send: PhantomData,
        }
    }

    /// "This code path may take the lock": an exclusive acquire and release at once
    /// (`might_lock`). Records the dependencies without holding anything.
    #[track_caller]
    pub fn might_lock(&self) {
        let site = Site::caller();
        if acquire(self, Acquire::exclusive(), site) {
            stat::forget(self.instance());
        }
        release(self, site);
    }

    /// The same for a shared (non-recursive) acquisition (`might_lock_read`).
    #[track_caller]
    pub fn might_lock_shared(&self) {
        let site = Site::caller();
        if acquire(self, Acquire::shared(), site) {
            stat::forget(self.instance());
        }
        release(self, site);
    }

    /// Whether the current thread holds this map (any kind).
    pub fn is_held(&self) -> bool {
        is_held(self, None)
    }

    /// Whether the current thread holds this map with the given kind.
    pub fn is_held_as(&self, read: ReadKind) -> bool {
        is_held(self, Some(read))
    }

    /// Pins this held map (`lockdep_pin_lock`): releasing it before [`LockMap::unpin`] is
    /// reported. `None` (and a report) if the current thread does not hold it.
    #[track_caller]
    pub fn pin(&self) -> Option<PinCookie> {
        pin(self, Site::caller())
    }

    /// Unpins a map pinned with `cookie` (`lockdep_unpin_lock`).
    #[track_caller]
    pub fn unpin(&self, cookie: PinCookie) {
        let site = Site::caller();
        with_current_task(|e, t| e.unpin(t, self, cookie, site));
    }

    /// Moves this held map to the class of `key` and `subclass` (`lock_set_class`): it and the
    /// locks taken after it are validated again under the new class.
    #[track_caller]
    pub fn set_class(&self, key: &'static LockClassKey, subclass: u8) {
        let site = Site::caller();
        with_current_task(|e, t| e.set_class(t, self, key, subclass, site));
    }

    /// Changes the subclass of this held map (`lock_set_subclass`).
    #[track_caller]
    pub fn set_subclass(&self, subclass: u8) {
        let site = Site::caller();
        with_current_task(|e, t| e.set_subclass(t, self, subclass, site));
    }

    /// Reports (`lockdep_assert_held`) unless the current thread holds this map.
    #[track_caller]
    pub fn assert_held(&self) {
        let site = Site::caller();
        with_current_task(|e, t| e.assert_held(t, self, true, None, site));
    }

    /// Reports (`lockdep_assert_not_held`) if the current thread holds this map.
    #[track_caller]
    pub fn assert_not_held(&self) {
        let site = Site::caller();
        with_current_task(|e, t| e.assert_held(t, self, false, None, site));
    }
}

/// Dropping a map that the current thread holds is a bug (the kernel's "held lock freed!"): the
/// report is made and the hold forgotten, so the thread's stack stays consistent.
impl Drop for LockMap {
    #[inline]
    fn drop(&mut self) {
        crate::rt::check_freed(self.instance());
        // A self-keyed map is classed by its address, which a new lock may get next: its class
        // forgets what it learnt (the kernel unregisters a dynamic key when it is freed). Only
        // a map whose class was looked up has one (cached, or kept apart if recycled).
        if self.is_self_keyed() {
            if let Some(c) = self.cached_class().or_else(|| self.recycled_class()) {
                unregister_class(c);
            }
        }
    }
}

/// Unregisters the key of a freed self-keyed map whose class is `c` (by the address it was
/// registered at: the map may have moved since) in the process-wide engine, unless this
/// thread is inside the validator (then the class keeps what it learnt).
#[cold]
#[inline(never)]
fn unregister_class(c: crate::lock::class::ClassId) {
    with_task(|e, _| e.unregister_class(c));
}

// Each hook boxes a report inside the task closure: the engine's `Option<Report>` is hundreds
// of bytes, and moving it through `try_with`, `Option` and `Result` on every call was most of the
// cost of the already-seen path. A `None` box is one word.

/// The way into a release's fast path: this thread's task, if `open` (the hook has read the
/// gate and may take its fast path) and the thread's current slot is open (see [`FAST`]). A
/// release may pop what the fast path pushed whatever the action is now: only statistics send
/// it elsewhere (to end the hold's timing). `None` sends the hook to its slow path, which
/// decides everything again.
///
/// # Safety
/// The caller must give up the reference before it calls out to anything that could reach the
/// validator (allocation, user code, a report): it may only run one of the engine's fast paths,
/// which never do.
#[inline(always)]
unsafe fn fast_task_if(open: bool) -> Option<&'static mut Task> {
    if cfg!(feature = "disabled") || !open {
        return None;
    }
    let slot = FAST.with(|f| f.acquire.get());
    // SAFETY: `FAST` is non-null only while it is this thread's current slot, alive, not busy
    // (every `busy` setter closes it first: `Claim`, `future::enter`, `SLOT`'s destructor), so
    // no other reference to the task exists; and the caller promises to run only code that
    // calls out to nothing while it holds this one, so none can be made (see `Slot`).
    // (`'static` stands for "until this hook returns".)
    unsafe { slot.as_ref().map(|s| &mut *s.task.get()) }
}

/// The gate word, with the action (and the statistics switch) read from the environment if this
/// is the first hook of the process.
#[inline]
pub(super) fn gate() -> usize {
    action_code();
    GATE.load(Ordering::Relaxed)
}

/// Whether the gate, with the statistics bit taken out, would let a hook take its fast path.
#[inline(always)]
fn open_but_for_stat(gate: usize) -> bool {
    gate & CLOSED == 0
}

/// This thread's slot, if a hook has run on this thread and the slot is not being destroyed.
///
/// # Safety
/// The reference must not outlive the hook that asked for it (`'static` stands for "until this
/// thread's `SLOT` is destroyed", which no hook outlives).
#[inline(always)]
pub(super) unsafe fn fast_slot() -> Option<&'static Slot> {
    let slot = CUR.with(Cell::get);
    // SAFETY: `CUR` holds the address of this thread's `SLOT` only while `SLOT` is alive: it is
    // set from inside `SLOT.try_with` (so after `SLOT` was initialised) and cleared first thing
    // in `SLOT`'s destructor, and both thread-locals belong to this thread. (`'static` stands
    // for "until this thread's `SLOT` is destroyed"; the reference never leaves this thread's
    // hook.)
    unsafe { slot.as_ref() }
}

/// Returns whether lock statistics recorded the acquisition, so that the caller should report
/// how it takes the real lock ([`contended`], [`acquired`]). The fast path returns `false`
/// without looking: it runs only when statistics are off, so a caller's branch on the result
/// folds away there.
#[inline(always)]
#[track_caller]
pub(crate) fn acquire(map: &LockMap, how: Acquire<'_>, site: Site) -> bool {
    acquire_in(fast_cell(), map, how, site)
}

/// This thread's [`FAST`] word. (`'static` stands for "while this thread runs": `FAST` has no
/// destructor; the reference never leaves the thread.)
#[inline(always)]
fn fast_cell() -> &'static FastWords {
    // SAFETY: see above; `FAST` is constant-initialised, so it is never uninitialised either.
    FAST.with(|f| unsafe { &*(f as *const FastWords) })
}

/// [`acquire`] with this thread's [`FAST`] word in hand.
#[inline(always)]
#[track_caller]
fn acquire_in(fast: &FastWords, map: &LockMap, how: Acquire<'_>, site: Site) -> bool {
    if cfg!(feature = "disabled") {
        return false;
    }
    if push_seen_in(
        fast,
        map,
        &how,
        site,
        GATE.load(Ordering::Relaxed) & (CLOSED | STAT) == 0,
    ) {
        return false;
    }
    acquire_slow(map, how, site.words())
}

/// The current thread's way into the lock hooks, for a driver that keeps per-thread state of
/// its own (the `LD_PRELOAD` interposer): it holds the address of the thread's fast-path word,
/// so a hook through it reads no thread-local. In a shared library every thread-local access
/// is a call into the dynamic linker (`__tls_get_addr`); a driver that already reads its own
/// thread-local on each call keeps one of these there and saves one such call per hook.
///
/// Its hooks are [`LockMap::acquire_at`] and [`LockMap::release_at`], taking the same paths
/// with the same effects. It is neither `Send` nor `Sync`: made on a thread, it is valid there
/// for the thread's whole life (the word has no destructor).
#[derive(Clone, Copy, Debug)]
pub struct ThreadHooks {
    fast: std::ptr::NonNull<FastWords>,
}

impl ThreadHooks {
    /// The current thread's hooks.
    #[inline]
    pub fn current() -> ThreadHooks {
        ThreadHooks {
            fast: std::ptr::NonNull::from(fast_cell()),
        }
    }

    #[inline(always)]
    fn fast(self) -> &'static FastWords {
        // SAFETY: the current thread's `FAST` (a `ThreadHooks` never leaves the thread it was
        // made on), which lives as long as the thread.
        unsafe { self.fast.as_ref() }
    }

    /// [`LockMap::acquire_at`]: records an acquisition of `map` by this thread. Only the
    /// shortest case (the entry just popped, acquired again: a lock taken in a loop) is
    /// inlined; the rest of the seen path and the slow path are one call away, so that the
    /// caller's own fast path stays small.
    #[inline(always)]
    #[track_caller]
    pub fn acquire(self, map: &LockMap, how: Acquire<'_>, site: Site) {
        if cfg!(feature = "disabled") {
            return;
        }
        let fast = self.fast();
        let open = GATE.load(Ordering::Relaxed) & (CLOSED | STAT) == 0;
        if let Some((slot, task)) = close_fast(fast, open) {
            let pushed = Engine::acquire_repeat(task, map, &how, site);
            fast.acquire.set(slot);
            if pushed {
                return;
            }
        }
        acquire_in_outlined(fast, map, how, site.words());
    }

    /// [`LockMap::release_at`]: records a release of `map` by this thread, at the site `site`
    /// gives, which is asked only if the release leaves the fast path (where a site can be
    /// reported: a bad unlock) — the fast path never reads it.
    #[inline(always)]
    pub fn release(self, map: &LockMap, site: impl FnOnce() -> Site) {
        release_in(self.fast(), map, site);
    }
}

/// An acquisition with statistics on: the same fast path, then the hold is recorded; out of
/// line (so that the lock call with them off stays as it was) but not the slow path's entry.
#[inline(never)]
#[track_caller]
fn acquire_counted(map: &LockMap, how: Acquire<'_>, site: SiteWords) -> bool {
    let s = Site::from_words(site);
    if push_seen(map, &how, s, true) {
        return pushed_class().is_some_and(|c| stat::hold_begins(map.instance(), c, how.read, s));
    }
    acquire_uncounted(map, how, site)
}

/// The already-seen path of an acquisition, if `open` (the gate lets this hook take it): pushes
/// `map` onto the thread's open task if its chain is listed for the fast path, and says whether
/// it did ([`pushed_class`] is then the class it pushed: the map's class cache need not hold
/// it, as a lock made anew where one of its key was is pushed as a repeat without a lookup).
/// The thread's task is only ever used with the process-wide engine, and the map's class cache
/// is only filled by it, so this needs neither the engine nor the check that the task's caches
/// belong to it.
#[inline(always)]
fn push_seen(map: &LockMap, how: &Acquire<'_>, site: Site, open: bool) -> bool {
    push_seen_in(fast_cell(), map, how, site, open)
}

/// [`push_seen`] with this thread's [`FAST`] word in hand.
#[inline(always)]
fn push_seen_in(
    fast: &FastWords,
    map: &LockMap,
    how: &Acquire<'_>,
    site: Site,
    open: bool,
) -> bool {
    let Some((slot, task)) = close_fast(fast, open) else {
        return false;
    };
    if Engine::acquire_repeat(task, map, how, site) {
        fast.acquire.set(slot);
        return true;
    }
    let class = match map.cached_class() {
        Some(c) => Some(c),
        None => Engine::memoised_class(task, map, true),
    };
    let pushed = match class {
        Some(c) => Engine::acquire_open(task, map, c, how, site),
        None => false,
    };
    fast.acquire.set(slot);
    pushed
}

/// The class of the lock [`push_seen`] just pushed (the top entry of the thread's open task).
/// `push_seen` reopened the slot after its push, so the task is always there; if it were not,
/// the hold goes uncounted (never counted under a wrong class, never pushed again).
#[inline]
fn pushed_class() -> Option<ClassId> {
    // SAFETY: only the top entry is read, before anything calls out.
    let task = unsafe { fast_task_if(true) };
    debug_assert!(task.is_some());
    task.map(|t| t.held.top().class)
}

/// This thread's open task, for one of the engine's fast paths (which call out to nothing), if
/// `open` (the gate lets the hook take its fast path) and the thread's slot is open (`fast`,
/// its [`FAST`] word, is non-null); `fast` is closed until the caller sets it back to the slot
/// given with the task, which it must do before anything else can reach the validator.
#[inline(always)]
fn close_fast(fast: &FastWords, open: bool) -> Option<(*const Slot, &'static mut Task)> {
    let slot = fast.acquire.get();
    if cfg!(feature = "disabled") || !open || slot.is_null() {
        return None;
    }
    // The push is several stores: a signal handler that interrupts it must not see (or use)
    // the task half-way. Closing `FAST` sends the handler's hooks to the slow path, which sees
    // the slot open, not busy and yet closed, and refuses them (`with_task`). A release's fast
    // path is one decisive store and needs no such care.
    fast.acquire.set(std::ptr::null());
    // SAFETY: `FAST` was non-null, so the slot is alive, current and not busy: no other
    // reference to its task exists (see `FAST`), and only the engine's fast path runs with this
    // one, which calls out to nothing, until `FAST` is open again. (`'static` stands for "until
    // the caller opens `FAST` again".)
    Some((slot, unsafe { &mut *(*slot).task.get() }))
}

/// [`ThreadHooks::acquire`] past its inlined case: the whole acquisition again (the repeat
/// test, which just failed, is a few instructions).
#[inline(never)]
#[track_caller]
fn acquire_in_outlined(fast: &FastWords, map: &LockMap, how: Acquire<'_>, site: SiteWords) {
    acquire_in(fast, map, how, Site::from_words(site));
}

/// Everything else, with the thread marked busy: [`Engine::acquire`] tries its own fast path
/// first (which looks the class up for a map whose cache is empty: a lock just made).
#[cold]
#[inline(never)]
#[track_caller]
pub(super) fn acquire_slow(map: &LockMap, how: Acquire<'_>, site: SiteWords) -> bool {
    if GATE.load(Ordering::Relaxed) & (CLOSED | STAT) == STAT {
        return acquire_counted(map, how, site);
    }
    acquire_uncounted(map, how, site)
}

/// [`acquire_slow`] without the statistics' own entry.
#[cold]
#[inline(never)]
#[track_caller]
fn acquire_uncounted(map: &LockMap, how: Acquire<'_>, site: SiteWords) -> bool {
    let site = Site::from_words(site);
    if signal::active() {
        signal::log_acquire(map, &how, site);
        return false;
    }
    let gate = gate();
    if gate & STAT != 0 {
        return acquire_stat(map, how, site, gate);
    }
    if let Some(Some(r)) = with_task(|e, t| e.acquire(t, map, how, site).map(Box::new)) {
        acquire_report(r, map);
    }
    false
}

/// An acquisition with statistics on: the same fast path (the gate's statistics bit kept it out
/// of the inlined one), then the hold is recorded with the class and kind it was pushed with.
#[inline]
#[track_caller]
fn acquire_stat(map: &LockMap, how: Acquire<'_>, site: Site, gate: usize) -> bool {
    if push_seen(map, &how, site, open_but_for_stat(gate)) {
        return pushed_class()
            .is_some_and(|c| stat::hold_begins(map.instance(), c, how.read, site));
    }
    let done = with_task(|e, t| {
        let r = e.acquire(t, map, how, site).map(Box::new);
        let top = t
            .held
            .last()
            .filter(|h| h.instance == map.instance())
            .map(|h| (h.class, h.read));
        (r, top)
    });
    let Some((r, top)) = done else {
        return false;
    };
    if let Some(r) = r {
        acquire_report(r, map);
    }
    top.is_some_and(|(class, read)| stat::hold_begins(map.instance(), class, read, site))
}

/// The lock's first try failed and the thread will wait for it (statistics only).
#[inline]
pub(crate) fn contended(map: &LockMap) {
    if !cfg!(feature = "disabled") && GATE.load(Ordering::Relaxed) & STAT != 0 && !signal::active()
    {
        stat::contended(map.instance());
    }
}

/// The lock was obtained (statistics only).
#[inline]
pub(crate) fn acquired(map: &LockMap) {
    if !cfg!(feature = "disabled") && GATE.load(Ordering::Relaxed) & STAT != 0 && !signal::active()
    {
        stat::acquired(map.instance());
    }
}

#[cold]
#[inline(never)]
#[track_caller]
pub(super) fn acquire_report(r: Box<Report>, map: &LockMap) {
    dispatch(*r, || {
        with_task(|e, t| e.undo_acquire(t, map.instance()));
    });
}

// The release hooks are not `#[track_caller]`: a guard is released from `lock_api`'s `Drop`,
// which has no caller location to pass on, and the hidden argument kept the guard's drop glue
// from being inlined (10 more instructions per lock and unlock, measured with callgrind). A
// release report's panic message names the release site instead.
#[inline(always)]
pub(crate) fn release(map: &LockMap, site: Site) {
    release_in(fast_cell(), map, || site);
}

/// [`release`] with this thread's [`FAST`] word in hand, and the site asked for only on the
/// slow path.
#[inline(always)]
fn release_in(fast: &FastWords, map: &LockMap, site: impl FnOnce() -> Site) {
    if cfg!(feature = "disabled") {
        return;
    }
    // Whatever the action is now, a release may pop what the fast path pushed; only a hold the
    // statistics are timing must go to them (`FAST`'s release word is closed for that, and is
    // the only word this reads).
    let slot = fast.release.get();
    // SAFETY: the release word is non-null only while it is this thread's current slot, alive
    // and not busy (as `FAST`, see `fast_task_if`); the reference is given up before this hook
    // calls out.
    if let Some(slot) = unsafe { slot.as_ref() } {
        // SAFETY: as in `fast_task_if`: no other reference to the task exists, and only the
        // engine's fast path runs with this one.
        let task = unsafe { &mut *slot.task.get() };
        if Engine::release_top(task, map) {
            return;
        }
    }
    release_slow(map, site().words(), false);
}

/// A release with statistics on: the hold's end is recorded, then the same fast path; out of
/// line, but not the slow path's entry.
#[inline(never)]
fn release_counted(map: &LockMap, site: SiteWords) {
    // An open slot means this thread is neither inside the validator nor in a declared signal
    // handler: the statistics may run (before the task is taken: they may allocate).
    if FAST.with(|f| f.acquire.get()).is_null() {
        return release_uncounted(map, site, false);
    }
    stat::hold_ends(map.instance());
    // SAFETY: only the engine's fast path runs with the task.
    if let Some(task) = unsafe { fast_task_if(true) } {
        if Engine::release_top(task, map) {
            return;
        }
    }
    release_uncounted(map, site, true);
}

/// Everything else; `counted` if the statistics have ended the hold already.
#[cold]
#[inline(never)]
pub(super) fn release_slow(map: &LockMap, site: SiteWords, counted: bool) {
    if !counted && GATE.load(Ordering::Relaxed) & STAT != 0 {
        return release_counted(map, site);
    }
    release_uncounted(map, site, counted)
}

/// [`release_slow`] without the statistics' own entry.
#[cold]
#[inline(never)]
fn release_uncounted(map: &LockMap, site: SiteWords, counted: bool) {
    let site = Site::from_words(site);
    if signal::active() {
        signal::log_release(map, site);
        return;
    }
    let gate = gate();
    if gate & STAT != 0 {
        if !counted {
            stat::hold_ends(map.instance());
        }
        // SAFETY: only the engine's fast path runs with the task.
        if let Some(task) = unsafe { fast_task_if(open_but_for_stat(gate)) } {
            if Engine::release_top(task, map) {
                return;
            }
        }
    }
    let r = with_task(|e, t| {
        if map.is_movable() && !e.is_held(t, map, None) {
            forward_release(map.instance());
            return None;
        }
        e.release(t, map, site).map(Box::new)
    });
    if let Some(Some(r)) = r {
        report(r);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
pub(super) fn report(r: Box<Report>) {
    dispatch(*r, || {});
}

#[inline]
#[track_caller]
pub(crate) fn downgrade(map: &LockMap, site: Site) {
    if let Some(Some(r)) = with_task(|e, t| e.downgrade(t, map, site).map(Box::new)) {
        report(r);
    }
}

/// The printed name of `map`'s class in the process-wide engine.
pub(crate) fn class_name(map: &LockMap) -> String {
    let mut task = Task::new("class-lookup", 0);
    let c = ENGINE.class_of(&mut task, map, 0);
    ENGINE
        .class_info(c)
        .map(|i| i.name.to_string())
        .unwrap_or_default()
}

pub(crate) fn is_held(map: &LockMap, read: Option<ReadKind>) -> bool {
    with_task(|e, t| e.is_held(t, map, read)).unwrap_or(false)
}

/// Runs `f` on the current thread's task of the process-wide validator; `None` if the validator
/// is off or this thread is already inside it. For drivers and instrumentation that need an
/// engine operation without a hook of its own.
#[track_caller]
pub fn with_current_task(f: impl FnOnce(&Engine, &mut Task) -> Option<Report>) -> bool {
    match with_task(|e, t| f(e, t)) {
        Some(Some(r)) => {
            dispatch(r, || {});
            true
        }
        Some(None) => true,
        None => false,
    }
}

/// Reports a held lock whose map is being freed (`debug_check_no_locks_freed`). Inlined into
/// every lock's drop: most locks are dropped by a thread that holds nothing, which one look at
/// the current task's stack tells.
#[inline]
pub(crate) fn check_freed(instance: usize) {
    if cfg!(feature = "disabled") {
        return;
    }
    // SAFETY: the slot is used by this hook only.
    let Some(slot) = (unsafe { fast_slot() }) else {
        return;
    };
    // SAFETY: as in `fast_task_if`: `busy` is clear (checked first), and the look calls out to
    // nothing.
    if slot.busy.get() || unsafe { &*slot.task.get() }.held.is_empty() {
        return;
    }
    check_freed_held(slot, instance);
}

/// [`check_freed`] on a thread that holds locks: a read-only scan, then the engine if the map
/// is among them.
#[inline(never)]
fn check_freed_held(slot: &Slot, instance: usize) {
    // SAFETY: as in `check_freed`.
    let holds = unsafe { &*slot.task.get() }
        .held
        .iter()
        .any(|h| h.instance == instance);
    if !holds {
        return;
    }
    if let Some(Some(r)) = with_task(|e, t| e.check_freed(t, instance)) {
        dispatch(r, || {});
    }
}

#[track_caller]
pub(crate) fn pin(map: &LockMap, site: Site) -> Option<crate::engine::PinCookie> {
    match with_task(|e, t| e.pin(t, map, site))? {
        Ok(c) => Some(c),
        Err(r) => {
            dispatch(*r, || {});
            None
        }
    }
}

/// Reports (`lockdep_assert_none_held_once`) if the current thread holds any lock.
#[track_caller]
pub fn assert_none_held() {
    let site = Site::caller();
    with_current_task(|e, t| e.assert_none_held(t, site));
}

/// Reports that the current thread still holds locks if it does (for a thread about to exit or
/// a test about to end), and forgets them.
#[track_caller]
pub fn check_no_locks_held() {
    if let Some(Some(r)) = with_task(|e, t| e.exit(t)) {
        dispatch(r, || {});
    }
}

/// The number of locks the current thread holds (`lockdep_depth`).
pub fn depth() -> usize {
    with_task(|_, t| t.depth()).unwrap_or(0)
}

/// The already-seen path of [`acquire`] as a question, for the hooks of async locks
/// (`future.rs`), which must know whether the acquisition was recorded: whether it was taken.
#[inline(always)]
pub(super) fn acquire_fast(map: &LockMap, how: &Acquire<'_>, site: Site) -> bool {
    push_seen(
        map,
        how,
        site,
        GATE.load(Ordering::Relaxed) & (CLOSED | STAT) == 0,
    )
}

/// The slow path of an acquisition, saying whether it was recorded (not if the validator is off
/// or the thread inside it). Lock statistics are the caller's (`future.rs`: an async lock's
/// guard ends its own hold, as its task may release it on another thread).
#[inline(never)]
#[track_caller]
pub(super) fn acquire_recorded(map: &LockMap, how: Acquire<'_>, site: Site) -> bool {
    match with_task(|e, t| e.acquire(t, map, how, site).map(Box::new)) {
        None => false,
        Some(None) => true,
        Some(Some(r)) => {
            acquire_report(r, map);
            true
        }
    }
}
