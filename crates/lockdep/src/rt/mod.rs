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
pub mod stat;

use action::*;
pub use action::{
    action, clear_report_handler, set_action, set_report_handler, suppressed, suppressions, Action,
    ReportCollector,
};
pub(crate) use hooks::*;
pub use hooks::{assert_none_held, check_no_locks_held, depth, with_current_task};
use remote::*;

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};

use crate::engine::held::Task;
use crate::engine::{Engine, PROCESS_WIDE_ID};
use crate::lock::map::{Acquire, LockMap, ReadKind, Site};
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
/// the slot while its reference lives ([`fast_task`], [`check_freed`]).
///
/// Each thread has one (in [`ThreadSlot`]); a tracked future ([`future`]) owns another, which is
/// the thread's *current* slot while the future is polled.
pub(crate) struct Slot {
    busy: Cell<bool>,
    task: UnsafeCell<Task>,
}

impl Slot {
    pub(crate) fn new(task: Task) -> Slot {
        Slot {
            busy: Cell::new(false),
            task: UnsafeCell::new(task),
        }
    }
}

/// A thread's own slot. Its destructor is the thread's exit.
struct ThreadSlot {
    own: Slot,
}

/// Clears (or restores) `busy` when dropped, unwinding included.
struct Busy<'a>(&'a Cell<bool>, bool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(self.1);
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        // From here on `SLOT` is being destroyed: the fast path must not reach it.
        FAST.with(|f| f.set(std::ptr::null()));
        if action_code() == OFF {
            return;
        }
        let task = self.own.task.get_mut();
        self.own.busy.set(true);
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
    /// A constant-initialised thread-local without a destructor is one `%fs`-relative load with
    /// no lazy-initialisation check, so the fast path inlines into every lock call.
    static FAST: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
    /// The slot of the tracked future being polled on this thread; null when none is.
    static CURRENT: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
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
    SLOT.try_with(|ts| {
        let slot = current_slot(ts);
        FAST.with(|f| f.set(slot));
        // Busy (a hook inside a hook, or inside a report's delivery): ignored.
        if slot.busy.replace(true) {
            return None;
        }
        let _busy = Busy(&slot.busy, false);
        // SAFETY: `busy` was clear and is now held until `_busy` drops, after the last use of
        // `task`: no other reference to the task exists or can be made meanwhile (see `Slot`).
        let task = unsafe { &mut *slot.task.get() };
        if pending() != 0 {
            claim_and_deliver(task);
        }
        Some(f(&ENGINE, task))
    })
    .ok()
    .flatten()
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
        let _busy = Busy(&slot.busy, slot.busy.replace(true));
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
