//! Signal handlers declared with [`irq::signal`](crate::irq::signal): validated in a context of
//! their own, later, without allocating or locking inside the handler.
//!
//! A signal handler can interrupt its thread anywhere: inside the allocator, inside the
//! validator, half-way through a lock call. Nothing it calls may allocate or take a lock the
//! interrupted code could hold, and it must not touch the interrupted thread's task. So inside a
//! declared handler the hooks do only this: read the lock's cached class (one atomic load) and
//! write the acquisition or release into a fixed log in a constant-initialised thread-local (no
//! lazy initialisation, no destructor). The thread replays the log at its next slow-path hook
//! outside the handler (at the latest when it exits): on a task of its own, in hardirq context
//! with hard interrupts off, as the kernel validates an interrupt — its chains start empty, its
//! locks become hardirq-safe, and the usage rules report a lock the rest of the program takes
//! with the signal unblocked (`inconsistent lock state`), or one taken under a lock that is not
//! hardirq-safe.
//!
//! A handler that does again exactly what an earlier run still in the log did is not logged
//! again (it would teach nothing new), so a signal that fires in a loop keeps one run. What
//! cannot be logged is counted, not validated ([`unvalidated`]): an acquisition of a lock whose
//! class is not yet known (a lock never taken outside a handler has no cached class, and looking
//! it up allocates), one with a subclass or a nest lock, and anything past the log's 64 entries
//! before the thread drains it.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;

use super::*;
use crate::lock::class::ClassId;
use crate::lock::wait::WaitType;

/// The log's size: a handler's acquisitions and releases until the thread drains them.
const LOG_SLOTS: usize = 64;

/// One logged hook.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Op {
    release: bool,
    class: ClassId,
    instance: usize,
    read: ReadKind,
    trylock: bool,
    wait_inner: WaitType,
    wait_outer: WaitType,
    site: SiteWords,
}

/// The thread's signal state: how deep in declared handlers it is, and the log.
struct Signal {
    depth: Cell<u32>,
    len: Cell<usize>,
    ops: UnsafeCell<[MaybeUninit<Op>; LOG_SLOTS]>,
    /// Where each logged run (one outermost handler's hooks) starts, and how many there are.
    starts: UnsafeCell<[u8; LOG_SLOTS]>,
    runs: Cell<usize>,
}

thread_local! {
    static SIGNAL: Signal = const {
        Signal {
            depth: Cell::new(0),
            len: Cell::new(0),
            ops: UnsafeCell::new([const { MaybeUninit::uninit() }; LOG_SLOTS]),
            starts: UnsafeCell::new([0; LOG_SLOTS]),
            runs: Cell::new(0),
        }
    };
}

/// Hooks of declared handlers that could not be logged (see the module's docs).
static UNVALIDATED: AtomicUsize = AtomicUsize::new(0);

/// How many lock hooks run in declared signal handlers were not validated: a lock whose class
/// was not yet known (never taken outside a handler), a subclass or nest-lock acquisition, or
/// a log overflow.
pub fn unvalidated() -> usize {
    UNVALIDATED.load(Ordering::Relaxed)
}

/// Whether this thread is inside a declared signal handler.
#[inline]
pub(super) fn active() -> bool {
    SIGNAL.with(|s| s.depth.get() != 0)
}

/// Whether a handler left hooks for this thread to validate.
#[inline]
pub(super) fn pending() -> bool {
    SIGNAL.with(|s| s.len.get() != 0)
}

/// Enters a declared handler: the fast path closes (so every hook comes here, not to the
/// interrupted thread's task) until [`exit`] is given what this returned.
pub(crate) fn enter() -> *const Slot {
    SIGNAL.with(|s| {
        if s.depth.get() == 0 {
            let r = s.runs.get();
            if r < LOG_SLOTS {
                // SAFETY: this thread's state; `r` is in bounds (just checked).
                unsafe { (*s.starts.get())[r] = s.len.get() as u8 };
                s.runs.set(r + 1);
            }
        }
        s.depth.set(s.depth.get() + 1);
    });
    let fast = FAST.with(|f| f.acquire.get());
    super::set_fast(std::ptr::null());
    fast
}

/// Leaves a declared handler, putting back the fast path as the handler found it (the
/// interrupted code, if it was inside the validator, closed it itself and will reopen it).
pub(crate) fn exit(fast: *const Slot) {
    SIGNAL.with(|s| {
        s.depth.set(s.depth.get().saturating_sub(1));
        if s.depth.get() == 0 {
            forget_repeated_run(s);
        }
    });
    super::set_fast(fast);
}

/// Takes the run that just ended out of the log if an earlier run there is the same.
fn forget_repeated_run(s: &Signal) {
    let runs = s.runs.get();
    if !(2..=LOG_SLOTS).contains(&runs) {
        return;
    }
    let (len, starts, ops) = (s.len.get(), s.starts.get(), s.ops.get());
    // SAFETY: this thread's state, read between its own writes (a nested handler ends before
    // this one goes on); the first `len` entries are written (see `log`).
    unsafe {
        let last = (*starts)[runs - 1] as usize;
        let n = len - last;
        let same = |start: usize| {
            start + n <= last
                && (0..n).all(|i| (*ops)[start + i].assume_init() == (*ops)[last + i].assume_init())
        };
        if (0..runs - 1).any(|r| same((*starts)[r] as usize)) {
            s.len.set(last);
            s.runs.set(runs - 1);
        }
    }
}

fn log(op: Op) {
    SIGNAL.with(|s| {
        let n = s.len.get();
        if n == LOG_SLOTS {
            UNVALIDATED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // SAFETY: this thread's log; slot `n` is past the logged entries, and the length covers
        // it only once it is written. (A nested handler interrupting between the two writes
        // the same slot and moves the length on: one of the two entries is lost, never read
        // half-written.)
        unsafe { (*s.ops.get())[n] = MaybeUninit::new(op) };
        s.len.set(n + 1);
    });
}

/// Logs an acquisition made in a declared handler.
pub(super) fn log_acquire(map: &LockMap, how: &Acquire<'_>, site: Site) {
    match map.cached_class() {
        Some(class) if how.subclass == 0 && how.nest_lock.is_none() => log(Op {
            release: false,
            class,
            instance: map.instance(),
            read: how.read,
            trylock: how.trylock,
            wait_inner: map.wait_inner(),
            wait_outer: map.wait_outer(),
            site: site.words(),
        }),
        _ => {
            UNVALIDATED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Logs a release made in a declared handler.
pub(super) fn log_release(map: &LockMap, site: Site) {
    match map.cached_class() {
        Some(class) => log(Op {
            release: true,
            class,
            instance: map.instance(),
            read: ReadKind::Exclusive,
            trylock: false,
            wait_inner: map.wait_inner(),
            wait_outer: map.wait_outer(),
            site: site.words(),
        }),
        None => {
            UNVALIDATED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Validates what handlers logged on this thread, on a task of their own in hardirq context,
/// and returns the reports (the caller delivers them). Runs outside every handler, from the
/// slow path, where allocating is allowed.
pub(super) fn drain(engine: &Engine, thread: &Task) -> Vec<Report> {
    let ops: Vec<Op> = SIGNAL.with(|s| {
        let n = s.len.get();
        // SAFETY: the first `n` entries are written (see `log`).
        let ops = (0..n)
            .map(|i| unsafe { (*s.ops.get())[i].assume_init() })
            .collect();
        s.len.set(0);
        s.runs.set(0);
        ops
    });
    let mut reports = Vec::new();
    if ops.is_empty() {
        return reports;
    }
    let mut task = Task::new(format!("{} (signal handler)", thread.name()), thread.pid());
    engine.irq_disable(&mut task);
    engine.hardirq_enter(&mut task);
    // One stand-in map per logged lock, carrying its class: the handler's own map may be gone.
    let mut maps: Vec<(usize, Box<LockMap>)> = Vec::new();
    for op in ops {
        let i = match maps.iter().position(|(inst, _)| *inst == op.instance) {
            Some(i) => i,
            None => {
                let map = Box::new(LockMap::new().with_wait(op.wait_inner, op.wait_outer));
                map.cache_class(op.class);
                maps.push((op.instance, map));
                maps.len() - 1
            }
        };
        let map = &maps[i].1;
        let site = Site::from_words(op.site);
        let r = if op.release {
            engine.release(&mut task, map, site)
        } else {
            let how = Acquire {
                read: op.read,
                trylock: op.trylock,
                ..Acquire::exclusive()
            };
            engine.acquire(&mut task, map, how, site)
        };
        reports.extend(r);
    }
    // A handler that returned holding a lock: its holds end with it.
    task.held.clear();
    engine.hardirq_exit(&mut task);
    reports
}
