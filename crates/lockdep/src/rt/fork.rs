//! Fork safety of the process-wide validator.
//!
//! `fork` copies the whole address space but only the calling thread. A lock that another
//! thread held at that moment stays held in the child forever, and the child's next use of the
//! validator would hang on it. So the validator registers `pthread_atfork` handlers when the
//! global engine is first used:
//!
//! - **prepare** takes every internal lock a thread may hold inside the validator, in the one
//!   order in which the validator nests them: the lock statistics' last record (held while
//!   they are written into the recording) and registry, the queue of remote releases, the
//!   engine's state, the process recording's writer, then the leaf locks (interned site texts
//!   and strings, the default keys, the source and field caches, the report handler and
//!   collectors, each collector's reports), and it waits for the
//!   one-time initialisations a thread may be inside (the suppressions, the stack setting, the
//!   statistics' clock). The unwinder's lock (`report::stack::UNWIND`) comes last, from
//!   handlers of its own, registered before these so that their prepare runs after this one:
//!   a stack can be walked before the process-wide validator exists.
//!   Threads inside the validator finish what they are doing first; new ones wait.
//! - **parent** releases them again.
//! - **child** releases them too (their waiters were other threads, which do not exist in the
//!   child), then forgets what belonged to the other threads: releases
//!   queued for them, which nobody would claim, and their lock statistics. The forking thread
//!   keeps its own held locks, as the child's only thread. A recording process starts a new
//!   recording file for the child (see [`Observer::forked`](crate::Observer::forked)).
//!
//! The spawn wrappers' own tables (`task/`, a layer above this one) have handlers of their own.
//!
//! A process that forks while one of its own threads is inside a report handler of its own
//! making is not covered beyond this: the handler's locks are the program's.

use std::cell::RefCell;
use std::sync::MutexGuard;

use super::{lock_remote, Remote, COLLECTORS, ENGINE, HANDLER, PENDING, SLOT};
use crate::engine::State;

/// The locks taken by `prepare`, held until `parent` or `child`. All three handlers run on the
/// forking thread, so a thread-local keeps them.
struct Held {
    remote: MutexGuard<'static, Remote>,
    state: parking_lot::MutexGuard<'static, State>,
    /// The process recording's writer, if the process records.
    recording: Option<Box<dyn std::any::Any>>,
    texts: MutexGuard<'static, Option<TextTable>>,
    interned: MutexGuard<'static, Option<std::collections::HashSet<&'static str>>>,
    /// The default keys, source and field caches (guards behind `Any`: their types are their
    /// modules' own).
    leaves: [Box<dyn std::any::Any>; 3],
    handler: std::sync::RwLockWriteGuard<'static, Option<super::action::Handler>>,
    collectors: MutexGuard<'static, Vec<std::sync::Weak<super::action::Sink>>>,
    /// Each live collector's reports, with the collector (dropped after its guard).
    sinks: Vec<SinkHeld>,
    stat: super::stat::ForkLocks,
}

/// A collector's reports locked, and the collector, which the guard borrows: a tuple drops its
/// fields in order, so the guard goes first.
type SinkHeld = (
    MutexGuard<'static, Vec<crate::report::Report>>,
    std::sync::Arc<super::action::Sink>,
);

type TextTable = std::collections::HashMap<&'static str, &'static &'static str>;

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Registers the handlers (once, from the global engine's initialisation).
pub(super) fn install() {
    // First, so that the unwinder's prepare handler runs after this module's.
    crate::report::stack::install_fork_handlers();
    // SAFETY: the three handlers are `extern "C"` functions that live as long as the process,
    // which is what `pthread_atfork` requires.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if rc != 0 {
        eprintln!(
            "lockdep: pthread_atfork failed ({rc}): a forked child may hang in the validator"
        );
    }
}

fn relock<T>(m: &'static std::sync::Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" fn prepare() {
    // Nothing here may unwind into `fork`.
    let _ = std::panic::catch_unwind(|| {
        // One-time initialisations another thread may be inside: a child would wait for them
        // forever. Each waits for one in progress (or does it now).
        let _ = super::suppressions();
        crate::report::stack::wait_for_settings();
        super::stat::wait_for_clock();
        // The statistics first: their writer thread holds the last record while it writes
        // into the recording (and the registry only briefly, nothing inside it).
        let stat = super::stat::fork_prepare();
        let remote = lock_remote();
        let state = ENGINE.state.lock();
        let recording = crate::record::lock_for_fork();
        let texts = relock(&crate::lock::map::TEXTS);
        let interned = relock(&crate::report::stack::INTERNED);
        let leaves = [
            crate::lock::class::lock_for_fork(),
            crate::lock::source::lock_for_fork(),
            crate::lock::field::lock_for_fork(),
        ];
        let handler = HANDLER.write().unwrap_or_else(|e| e.into_inner());
        let collectors = relock(&COLLECTORS);
        let sinks = collectors
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|sink| {
                // SAFETY: the guard borrows the sink, which the `Arc` next to it keeps alive
                // and in place for as long as the guard lives (see `SinkHeld`: the guard is
                // dropped first).
                let s: &'static super::action::Sink = unsafe { &*std::sync::Arc::as_ptr(&sink) };
                (relock(s), sink)
            })
            .collect();
        let held = Held {
            remote,
            state,
            recording,
            texts,
            interned,
            leaves,
            handler,
            collectors,
            sinks,
            stat,
        };
        let _ = HELD.try_with(|h| *h.borrow_mut() = Some(held));
    });
}

extern "C" fn parent() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(held) = HELD.try_with(|h| h.borrow_mut().take()).ok().flatten() {
            release(held);
        }
    });
}

/// Drops what `prepare` took, the innermost first.
fn release(held: Held) {
    let Held {
        remote,
        state,
        recording,
        texts,
        interned,
        leaves,
        handler,
        collectors,
        sinks,
        stat,
    } = held;
    drop(sinks);
    drop((
        collectors, handler, leaves, interned, texts, recording, state, remote, stat,
    ));
}

extern "C" fn child() {
    let _ = std::panic::catch_unwind(|| {
        let held = HELD.try_with(|h| h.borrow_mut().take()).ok().flatten();
        let Some(held) = held else { return };
        let Held {
            mut remote,
            state,
            recording,
            texts,
            interned,
            leaves,
            handler,
            collectors,
            sinks,
            stat,
        } = held;
        super::stat::fork_child(stat);
        // Releases queued for another thread's holds will never be claimed: drop them, so the
        // child's slow path stops looking at the queue on every hook.
        let mine: Vec<usize> = SLOT
            .try_with(|ts| {
                // The current task: a fork from inside a tracked poll keeps that task's holds.
                let slot = super::current_slot(ts);
                // SAFETY: the child has one thread, and this handler runs outside every hook
                // (`fork` is not called from inside the validator), so nothing else refers to
                // the task.
                let task = unsafe { &*slot.task.get() };
                task.held.iter().map(|h| h.instance).collect()
            })
            .unwrap_or_default();
        let before = remote.pending.len();
        remote.pending.retain(|i| mine.contains(i));
        let dropped = before - remote.pending.len();
        if dropped > 0 {
            PENDING.fetch_sub(dropped, std::sync::atomic::Ordering::Relaxed);
        }
        // The engine's lock. Threads that waited for it in the parent are still queued in the
        // parking lot's table, and an unlock could hand the lock to one of them (a fair
        // hand-off keeps it locked, for a thread that does not exist here): empty the queue
        // first, then unlock with nobody to wake.
        std::mem::forget(state);
        // SAFETY: the key is the raw lock's address, which is what the mutex parks its waiters
        // under; waking them (none runs in the child) changes nothing but the queue. Then this
        // thread holds the lock: it took it in `prepare` and forgot the guard.
        unsafe {
            let key = ENGINE.state.raw() as *const parking_lot::RawMutex as usize;
            parking_lot_core::unpark_all(key, parking_lot_core::DEFAULT_UNPARK_TOKEN);
            ENGINE.state.force_unlock();
        }
        // The std locks unlock with at most a futex wake that finds nobody.
        drop(sinks);
        drop((
            collectors, handler, leaves, interned, texts, recording, remote,
        ));
        if let Some(o) = ENGINE.observer() {
            o.forked();
            // The child's recording names every class it inherited, so it reads on its own.
            for c in ENGINE.classes() {
                o.class_registered(&c);
            }
        }
    });
}
