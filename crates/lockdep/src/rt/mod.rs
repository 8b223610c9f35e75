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
//! What a report does is set by [`set_action`] or the `LOCKDEP` environment variable
//! (`off`, `warn` — the default — or `panic`), and by [`set_report_handler`]. Tests collect
//! reports with a [`ReportCollector`].

mod action;
#[cfg(target_os = "linux")]
mod fork;
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

/// A thread's task, and the re-entrancy guard: while `busy` is set (a hook is running, or a report
/// is being delivered) a hook on the same thread does nothing. Every access to `task` either
/// holds `busy` for as long as it holds the reference ([`with_task`]), or finds `busy` clear and
/// runs code that calls out to nothing — no allocation, no user code, no report — so nothing
/// can reach the slot while its reference lives ([`fast`], [`check_freed`]).
struct Slot {
    busy: Cell<bool>,
    task: UnsafeCell<Task>,
}

/// Clears (or restores) `busy` when dropped, unwinding included.
struct Busy<'a>(&'a Cell<bool>, bool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(self.1);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // From here on `SLOT` is being destroyed: the fast path must not reach it.
        FAST.with(|f| f.set(std::ptr::null()));
        if action_code() == OFF {
            return;
        }
        let task = self.task.get_mut();
        self.busy.set(true);
        for r in claim_remote(&ENGINE, task) {
            deliver(&r);
        }
        // Movable holds may be released by another thread later: leave them as orphans.
        {
            let mut remote = lock_remote();
            task.held.retain(|h| {
                let keep = !h.movable;
                if h.movable {
                    remote.orphans.push(h.instance);
                }
                keep
            });
        }
        // The thread is exiting: other locks it still holds are a bug.
        if let Some(r) = ENGINE.exit(task) {
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

fn new_slot() -> Slot {
    let t = std::thread::current();
    let name = t.name().map(str::to_string).unwrap_or_else(program_name);
    let _ = &NEXT_TID;
    Slot {
        busy: Cell::new(false),
        task: UnsafeCell::new(Task::new(name, thread_id())),
    }
}

thread_local! {
    static SLOT: Slot = new_slot();
    /// `SLOT`'s address, from the first slow-path hook on this thread until `SLOT`'s destructor
    /// starts; null otherwise. A constant-initialised thread-local without a destructor is one
    /// `%fs`-relative load with no lazy-initialisation check, so the fast path inlines into
    /// every lock call.
    static FAST: Cell<*const Slot> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with the engine and this thread's task, unless the validator is off, this thread is
/// already inside the validator, or the thread-local is gone.
#[inline]
pub(crate) fn with_task<R>(f: impl FnOnce(&'static Engine, &mut Task) -> R) -> Option<R> {
    if cfg!(feature = "disabled") || action_code() == OFF {
        return None;
    }
    SLOT.try_with(|slot| {
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
#[track_caller]
fn dispatch(r: Report, undo: impl FnOnce()) {
    let delivered = match SLOT.try_with(|slot| {
        // Busy makes this thread's hooks no-ops while the handler runs (it may well lock
        // instrumented mutexes).
        let _busy = Busy(&slot.busy, slot.busy.replace(true));
        deliver(&r)
    }) {
        Ok(d) => d,
        Err(_) => deliver(&r),
    };
    if delivered && action_code() == PANIC {
        undo();
        match r.lock.as_ref().map_or(Site::Unknown, |l| l.site) {
            Site::Unknown => panic!("lockdep: {}", r.title()),
            site => panic!("lockdep: {} at {site}", r.title()),
        }
    }
}
