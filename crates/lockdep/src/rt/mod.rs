//! The process-wide validator: one [`Engine`] for the process, one [`Task`] per thread.
//!
//! This is a thin driver. Each hook first tries the engine's fast path on the calling thread's
//! task, inlined into the lock call (an already-seen acquisition, or the release of the most
//! recent lock: see `docs/PERFORMANCE.md`); otherwise it marks the thread busy, hands the task
//! with the global engine to the engine's method of the same name, and passes any report to
//! `dispatch`. Three rules keep it safe:
//!
//! - **No recursion.** While a hook or a report handler runs on a thread, further hooks on that
//!   thread are ignored (the kernel's `lockdep_recursion`), so a handler may lock an instrumented
//!   mutex, and nothing the validator does internally can re-enter it.
//! - **No call-outs under the engine's lock.** The engine returns reports as values; they are
//!   printed or handed to the user only after every internal lock is released.
//! - **Thread teardown.** A hook called while the thread-local is being destroyed is ignored.
//!
//! **Movable holds.** A lock map marked [`movable`](LockMap::movable) (the primitives' maps with
//! the `send_guard` feature) may be released by another thread than the one that took it: the
//! guard was sent. Such a release is queued for the holder, which claims it at its next hook (so
//! the stack is never corrupted, and no bad unlock is reported); a thread that exits holding
//! movable locks leaves them as orphans for the release that will come. Between the move and the
//! release the hold is still counted on the thread that acquired it: dependencies are recorded
//! from the acquiring thread's point of view.
//!
//! **Async tasks** ([`future`]). A tracked future owns a task of its own, and a poll makes it
//! the thread's *current* task: every hook — fast path included, which reads the current slot's
//! address from one thread-local — then works on the future's task, wherever it is polled.
//!
//! What a report does is set by [`set_action`] or the `LOCKDEP` environment variable
//! (`off`, `warn` — the default — or `panic`), and by [`set_report_handler`]. Tests collect
//! reports with a [`ReportCollector`].

mod action;
#[cfg(target_os = "linux")]
mod fork;
pub mod future;
mod hooks;
mod remote;
pub(crate) mod signal;
pub mod stat;

#[cfg(all(test, lockdep_loom))]
mod loom_model;

use action::*;
pub use action::{
    action, clear_report_handler, set_action, set_report_handler, suppressed, suppressions, Action,
    ReportCollector,
};
pub(crate) use hooks::*;
pub use hooks::{assert_none_held, check_no_locks_held, depth, with_current_task, ThreadHooks};
use remote::*;

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};

use crate::engine::held::Task;
use crate::engine::{Engine, PROCESS_WIDE_ID};
use crate::lock::class::ClassId;
use crate::lock::map::{Acquire, LockMap, ReadKind, Site, SiteWords};
use crate::report::Report;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    #[cfg(target_os = "linux")]
    fork::install();
    Engine::process_wide(crate::record::observer_from_env())
});

/// The process-wide engine, for introspection (classes, dependencies, chains, statistics).
pub fn global() -> &'static Engine {
    &ENGINE
}

/// A task, and the re-entrancy guard: while `busy` is set (a hook is running, or a report is
/// being delivered) a hook on the same thread does nothing. Every access to `task` either holds
/// `busy` for as long as it holds the reference ([`with_task`]), or finds `busy` clear and runs
/// code that calls out to nothing — no allocation, no user code, no report — so nothing can reach
/// the slot while its reference lives (`hooks::push_seen`, `hooks::check_freed`).
///
/// Each thread has one (in [`ThreadSlot`]); a tracked future ([`future`]) owns another, which is
/// the thread's *current* slot while the future is polled.
pub(crate) struct Slot {
    busy: Cell<bool>,
    /// Whether the task was, when the last slow-path hook on it ended, in the state in which the
    /// fast path may take it ([`Task::fast_open`]): then the slot is [`FAST`] while it is the
    /// thread's current one and not busy.
    open: Cell<bool>,
    /// Whether a hold of this slot's task may have been begun by the lock statistics (see
    /// [`counting_begins`]): then a release leaves its fast path, for the statistics to end the
    /// hold's timing. Cleared when a slow-path hook leaves the task holding nothing.
    counting: Cell<bool>,
    task: UnsafeCell<Task>,
}

impl Slot {
    pub(crate) fn new(task: Task) -> Slot {
        Slot {
            busy: Cell::new(false),
            open: Cell::new(false),
            counting: Cell::new(false),
            task: UnsafeCell::new(task),
        }
    }

    /// What [`FAST`] should be while this slot is current and not busy.
    #[inline]
    fn fast_value(&self) -> *const Slot {
        if self.open.get() {
            self
        } else {
            std::ptr::null()
        }
    }
}

/// Marks a slot busy for a hook's slow path or a report's delivery, closing the fast path
/// ([`FAST`] is null meanwhile); when dropped (unwinding included), restores `busy` and `FAST`
/// as they were before, or as the slot's task now allows if the slot was not busy before.
struct Claim<'a> {
    slot: &'a Slot,
    was_busy: bool,
    fast: *const Slot,
}

impl<'a> Claim<'a> {
    #[inline]
    fn new(slot: &'a Slot) -> Claim<'a> {
        let was_busy = slot.busy.replace(true);
        let fast = FAST.with(|f| f.acquire.get());
        set_fast(std::ptr::null());
        Claim {
            slot,
            was_busy,
            fast,
        }
    }
}

impl Drop for Claim<'_> {
    #[inline]
    fn drop(&mut self) {
        self.slot.busy.set(self.was_busy);
        let fast = if self.was_busy {
            self.fast
        } else {
            self.slot.fast_value()
        };
        set_fast(fast);
    }
}

/// A thread's own slot. Its destructor is the thread's exit.
struct ThreadSlot {
    own: Slot,
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        // From here on `SLOT` is being destroyed: no hook may reach it.
        set_fast(std::ptr::null());
        CUR.with(|f| f.set(std::ptr::null()));
        if action_code() == OFF {
            return;
        }
        let task = self.own.task.get_mut();
        self.own.busy.set(true);
        if !signal::active() && signal::pending() {
            drain_and_deliver(task);
        }
        for r in retire(task) {
            deliver(&r);
        }
    }
}

static NEXT_TID: AtomicU32 = AtomicU32::new(1);

fn thread_id() -> u32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        unsafe { libc::gettid() as u32 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        NEXT_TID.fetch_add(1, Ordering::Relaxed)
    }
}

/// The name of an unnamed thread: the program's name, as a Linux thread's `comm` is.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "<unnamed>".to_string())
}

fn new_slot() -> ThreadSlot {
    let t = std::thread::current();
    let name = t.name().map(str::to_string).unwrap_or_else(program_name);
    let _ = &NEXT_TID;
    ThreadSlot {
        own: Slot::new(Task::new(name, thread_id())),
    }
}

thread_local! {
    static SLOT: ThreadSlot = new_slot();
    /// The current slot's address (the thread's own, or the tracked future being polled), from
    /// the first slow-path hook on this thread until `SLOT`'s destructor starts; null otherwise.
    static CUR: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
    /// The current slot's address while the fast path may take it (the `acquire` word; the
    /// `release` word is the same but for holds the statistics time): the slot is not busy and
    /// its task is [open](Task::fast_open); null otherwise. The fast path's only test of the
    /// thread's state is this one load: everything that keeps a task off it (a hook or a report
    /// in progress, a held lock in an irq context or a spinning one, a pinned or merged hold, an
    /// irq or non-blocking context, caches of another engine) closes it here. A
    /// constant-initialised thread-local without a destructor is one `%fs`-relative load with
    /// no lazy-initialisation check, so the fast path inlines into every lock call.
    static FAST: FastWords = const {
        FastWords {
            acquire: Cell::new(std::ptr::null()),
            release: Cell::new(std::ptr::null()),
        }
    };
    /// The slot of the tracked future being polled on this thread; null when none is.
    static CURRENT: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
}

#[cfg(test)]
thread_local! {
    /// How many hooks on this thread have entered the slow path (`with_task`), for tests that
    /// check which path a hook took.
    static SLOW_ENTRIES: Cell<usize> = const { Cell::new(0) };
}

/// See `SLOW_ENTRIES`.
#[cfg(test)]
fn slow_entries() -> usize {
    SLOW_ENTRIES.with(Cell::get)
}

/// [`FAST`]'s two words, in one thread-local so that both are at fixed offsets from one base
/// (the release's test is then one `%fs`-relative load, as the acquire's is).
struct FastWords {
    /// The slot while the acquire's fast path may take it (the text of `FAST`).
    acquire: Cell<*const Slot>,
    /// The same for a release's fast path: the same slot, or null while the slot's task has a
    /// hold the statistics are timing (its `counting`), whose release must go to them. Set
    /// with `acquire` ([`set_fast`]), except by the acquire's fast path, which closes only
    /// `acquire` while it pushes (a release's fast path is one decisive store and needs no such
    /// care).
    release: Cell<*const Slot>,
}

/// Sets [`FAST`]'s acquire word to `fast` (a slot, or null), and its release word to match.
#[inline]
pub(super) fn set_fast(fast: *const Slot) {
    FAST.with(|f| f.acquire.set(fast));
    // SAFETY: a non-null `fast` is this thread's current slot, alive (see `FAST`).
    let counting = unsafe { fast.as_ref() }.is_some_and(|s| s.counting.get());
    let release = if counting { std::ptr::null() } else { fast };
    FAST.with(|f| f.release.set(release));
}

/// The thread's current slot: the tracked future being polled, or the thread's own.
#[inline]
fn current_slot(ts: &ThreadSlot) -> &Slot {
    let cur = CURRENT.with(Cell::get);
    if cur.is_null() {
        &ts.own
    } else {
        // SAFETY: `CURRENT` is non-null only between a tracked poll's `future::enter` and the
        // drop of what it returned, on this thread, while the future (and so its boxed slot) is
        // borrowed by that poll.
        unsafe { &*cur }
    }
}

/// Runs `f` with the engine and this thread's task, unless the validator is off, this thread is
/// already inside the validator, or the thread-local is gone.
#[inline]
pub(crate) fn with_task<R>(f: impl FnOnce(&'static Engine, &mut Task) -> R) -> Option<R> {
    if cfg!(feature = "disabled") || action_code() == OFF {
        return None;
    }
    // Inside a declared signal handler nothing may allocate or lock: its hooks were logged
    // (`signal.rs`), and everything else is refused.
    if signal::active() {
        return None;
    }
    SLOT.try_with(|ts| {
        let slot = current_slot(ts);
        CUR.with(|f| f.set(slot));
        // Busy (a hook inside a hook, or inside a report's delivery): ignored.
        if slot.busy.get() {
            return None;
        }
        // Open and not busy, yet closed: a signal handler interrupted this thread inside an
        // acquisition's fast path (which closes `FAST` while it pushes). The task is half-way
        // through a change: refused, as every hook of the handler until it returns.
        if slot.open.get() && !std::ptr::eq(FAST.with(|f| f.acquire.get()), slot) {
            interrupted();
            return None;
        }
        #[cfg(test)]
        SLOW_ENTRIES.with(|n| n.set(n.get() + 1));
        // Closed until the task says again whether it is open (unwinding leaves it closed).
        slot.open.set(false);
        let _claim = Claim::new(slot);
        // SAFETY: `busy` was clear and is now held until `_claim` drops, after the last use of
        // `task`: no other reference to the task exists or can be made meanwhile (see `Slot`).
        let task = unsafe { &mut *slot.task.get() };
        if pending() != 0 {
            claim_and_deliver(task);
        }
        if signal::pending() {
            drain_and_deliver(task);
        }
        let r = f(&ENGINE, task);
        slot.open.set(task.fast_open(PROCESS_WIDE_ID));
        if task.held.is_empty() {
            slot.counting.set(false);
        }
        Some(r)
    })
    .ok()
    .flatten()
}

/// The lock statistics began timing a hold of the current slot's task: its releases leave the
/// fast path (which knows nothing of the statistics) until the task holds nothing again. The
/// release's fast path reads this flag of the slot it has in hand instead of the global gate.
pub(super) fn counting_begins() {
    // SAFETY: the reference is used for this one store.
    if let Some(slot) = unsafe { hooks::fast_slot() } {
        slot.counting.set(true);
        FAST.with(|f| f.release.set(std::ptr::null()));
    }
}

/// Hooks refused because a signal handler interrupted the thread inside the validator.
static INTERRUPTED: AtomicUsize = AtomicUsize::new(0);

/// How many hooks were refused because they ran in a signal handler that had interrupted the
/// same thread inside the validator (see `docs/SEMANTICS.md`, "Signal handlers").
pub fn interrupted_hooks() -> usize {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Counts a refused hook, and says so once, with nothing a signal handler may not call: no
/// allocation, no lock, one `write(2)`.
#[cold]
#[inline(never)]
fn interrupted() {
    if INTERRUPTED.fetch_add(1, Ordering::Relaxed) == 0 {
        let msg: &[u8] =
            b"lockdep: a signal handler interrupted this thread inside the validator; \
its lock hooks are not validated (see lockdep's docs/SEMANTICS.md, \"Signal handlers\")\n";
        #[cfg(target_os = "linux")]
        // SAFETY: writing a static buffer to stderr; `write` is async-signal-safe.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
        }
        #[cfg(not(target_os = "linux"))]
        let _ = msg;
    }
}

/// Validates what declared signal handlers logged on this thread and delivers the reports.
#[cold]
#[inline(never)]
fn drain_and_deliver(task: &Task) {
    for r in signal::drain(&ENGINE, task) {
        deliver(&r);
    }
}

/// Applies the queued releases of this thread's movable holds and delivers what they report.
#[cold]
#[inline(never)]
fn claim_and_deliver(task: &mut Task) {
    for r in claim_remote(&ENGINE, task) {
        deliver(&r);
    }
}

/// Delivers a report made by a hook; in panic mode, runs `undo` (to take back an acquisition
/// that will not happen) and panics, at the caller's location: the acquire hooks, from the
/// user's lock call down, are `#[track_caller]`, so the panic names the user's file and line.
/// The message names the site of the lock the report is about in every case.
///
/// Two exceptions keep the program and the held stack sound:
///
/// - A report made while the thread is already unwinding (a lock taken or released by a
///   destructor during a panic) is delivered but does not panic: a second panic would abort
///   the whole process. The acquisition goes on as in warn mode.
/// - A report handler that panics ([`set_report_handler`]) propagates its panic to the lock
///   call, but `undo` runs first: the raw lock is never taken, so the acquisition must not stay
///   on the held stack (it would be a phantom hold, a source of bogus dependencies and of a
///   "locks held at exit" report).
#[track_caller]
fn dispatch(r: Report, undo: impl FnOnce()) {
    let unwinding = std::thread::panicking();
    // Armed while the report is delivered: a handler's panic unwinds through it, which takes
    // the acquisition back (after `Busy` below has cleared the thread's busy flag again, so
    // `undo` reaches the task).
    let mut on_unwind = UndoOnUnwind(Some(undo));
    let delivered = match SLOT.try_with(|ts| {
        let slot = current_slot(ts);
        // Busy makes this thread's hooks no-ops while the handler runs (it may well lock
        // instrumented mutexes).
        let _claim = Claim::new(slot);
        deliver(&r)
    }) {
        Ok(d) => d,
        Err(_) => deliver(&r),
    };
    let undo = on_unwind.0.take();
    if delivered && action_code() == PANIC {
        if unwinding {
            write_stderr(
                "lockdep: not panicking for this report: the thread is already panicking \
                 (a panic inside a destructor during unwinding aborts the process)\n",
            );
            return;
        }
        if let Some(undo) = undo {
            undo();
        }
        match r.lock.as_ref().map_or(Site::Unknown, |l| l.site) {
            Site::Unknown => panic!("lockdep: {}", r.title()),
            site => panic!("lockdep: {} at {site}", r.title()),
        }
    }
}

/// Runs the closure it holds when dropped, unless it was taken out first: `dispatch`'s undo
/// of an acquisition whose report handler panicked.
struct UndoOnUnwind<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for UndoOnUnwind<F> {
    fn drop(&mut self) {
        if let Some(undo) = self.0.take() {
            undo();
        }
    }
}
