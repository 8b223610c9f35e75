//! The process-wide validator: one [`Engine`] for the process, one [`Task`] per thread.
//!
//! This is a thin driver. Each hook first tries the engine's fast path on the calling thread's
//! task, inlined into the lock call (an already-seen acquisition, or the release of the most
//! recent lock: see `docs/PERFORMANCE.md`); otherwise it marks the thread busy, hands the task
//! with the global engine to the engine's method of the same name, and passes any report to
//! [`dispatch`]. Three rules keep it safe:
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

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};

use crate::engine::{Engine, PROCESS_WIDE_ID};
use crate::held::Task;
use crate::map::{Acquire, LockMap, ReadKind, Site};
use crate::report::Report;

/// What the process-wide validator does with a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Validate nothing.
    Off,
    /// Print the report to stderr (or give it to the handler) and go on. The default.
    Warn,
    /// Print the report, then panic in the thread that caused it (a test fails).
    Panic,
}

const UNSET: usize = 0;
const OFF: usize = 1;
const WARN: usize = 2;
const PANIC: usize = 3;
const ACTION_MASK: usize = 3;
/// One queued remote release, in [`GATE`]'s count.
const ONE_PENDING: usize = 4;

/// The one global word every hook reads: the action in the low two bits, the number of queued
/// remote releases (see *Movable holds* above) above them. The fast path runs only when it reads
/// exactly `WARN` or `PANIC`: the action is known and on, and nothing is queued. It is written
/// only when the action changes or a release is queued or claimed.
static GATE: AtomicUsize = AtomicUsize::new(UNSET);

fn action_from_env() -> usize {
    match std::env::var("LOCKDEP") {
        Err(_) => WARN,
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "off" | "0" => OFF,
            "warn" | "on" | "1" | "" => WARN,
            "panic" => PANIC,
            other => {
                eprintln!("lockdep: LOCKDEP={other:?} is not one of off, warn, panic; using warn");
                WARN
            }
        },
    }
}

#[inline]
fn action_code() -> usize {
    match GATE.load(Ordering::Relaxed) & ACTION_MASK {
        UNSET => {
            let a = action_from_env();
            let _ = GATE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                (g & ACTION_MASK == UNSET).then_some(g | a)
            });
            GATE.load(Ordering::Relaxed) & ACTION_MASK
        }
        a => a,
    }
}

fn pending() -> usize {
    GATE.load(Ordering::Relaxed) / ONE_PENDING
}

/// The current action.
pub fn action() -> Action {
    match action_code() {
        OFF => Action::Off,
        PANIC => Action::Panic,
        _ => Action::Warn,
    }
}

/// Sets the action, overriding `LOCKDEP`.
///
/// ```
/// lockdep::set_action(lockdep::Action::Warn);
/// assert_eq!(lockdep::action(), lockdep::Action::Warn);
/// ```
pub fn set_action(a: Action) {
    let code = match a {
        Action::Off => OFF,
        Action::Warn => WARN,
        Action::Panic => PANIC,
    };
    let _ = GATE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
        Some(g & !ACTION_MASK | code)
    });
}

type Handler = Arc<dyn Fn(&Report) + Send + Sync>;
static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

/// Sends every report to `f` instead of printing it. The handler runs on the thread that found
/// the problem, with no validator lock held; locks it takes are not validated.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static SEEN: AtomicUsize = AtomicUsize::new(0);
/// lockdep::set_report_handler(|_r| { SEEN.fetch_add(1, Ordering::Relaxed); });
/// lockdep::clear_report_handler();
/// ```
pub fn set_report_handler(f: impl Fn(&Report) + Send + Sync + 'static) {
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(f));
}

/// Goes back to printing reports.
pub fn clear_report_handler() {
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

type Sink = Mutex<Vec<Report>>;
static COLLECTORS: Mutex<Vec<Weak<Sink>>> = Mutex::new(Vec::new());

/// Collects every report the process-wide validator makes while it is alive (in addition to
/// what the action does with them). The way for tests to assert on reports.
///
/// The validator is process-wide and tests run in parallel threads, so a test should pick out
/// the reports about its own locks, e.g. by class name:
///
/// ```
/// use lockdep::{Mutex, ReportCollector, ReportKind};
///
/// let reports = ReportCollector::new();
/// let (a, b) = (Mutex::new(0), Mutex::new(0));
/// { let _a = a.lock(); let _b = b.lock(); }
/// { let _b = b.lock(); let _a = a.lock(); }
/// let mine = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(a.class_name().as_str()));
/// assert_eq!(mine.len(), 1);
/// ```
pub struct ReportCollector {
    sink: Arc<Sink>,
}

impl ReportCollector {
    /// Starts collecting.
    pub fn new() -> ReportCollector {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let mut c = COLLECTORS.lock().unwrap_or_else(|e| e.into_inner());
        c.retain(|w| w.strong_count() > 0);
        c.push(Arc::downgrade(&sink));
        ReportCollector { sink }
    }

    /// The reports collected so far.
    pub fn reports(&self) -> Vec<Report> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The reports collected so far that satisfy `f`.
    pub fn matching(&self, f: impl Fn(&Report) -> bool) -> Vec<Report> {
        self.reports().into_iter().filter(|r| f(r)).collect()
    }

    /// Takes the reports collected so far.
    pub fn take(&self) -> Vec<Report> {
        std::mem::take(&mut *self.sink.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Default for ReportCollector {
    fn default() -> Self {
        ReportCollector::new()
    }
}

impl std::fmt::Debug for ReportCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportCollector").finish_non_exhaustive()
    }
}

impl Report {
    /// Whether any lock or class in the report has this name.
    pub fn involves(&self, class_name: &str) -> bool {
        self.lock
            .iter()
            .chain(self.holding.iter())
            .chain(self.held.iter())
            .any(|l| &*l.class.name == class_name)
            || self.chain.iter().any(|c| &*c.class.name == class_name)
    }
}

static ENGINE: LazyLock<Engine> =
    LazyLock::new(|| Engine::process_wide(crate::record::observer_from_env()));

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

/// Releases of movable holds waiting for their holder, and holds left by exited threads.
struct Remote {
    pending: Vec<usize>,
    orphans: Vec<usize>,
}

static REMOTE: Mutex<Remote> = Mutex::new(Remote {
    pending: Vec::new(),
    orphans: Vec::new(),
});
fn lock_remote() -> std::sync::MutexGuard<'static, Remote> {
    REMOTE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A movable hold released by a thread that does not hold it: settle an orphan, or queue the
/// release for the holder.
fn forward_release(instance: usize) {
    let mut remote = lock_remote();
    if let Some(i) = remote.orphans.iter().position(|x| *x == instance) {
        remote.orphans.swap_remove(i);
        return;
    }
    remote.pending.push(instance);
    GATE.fetch_add(ONE_PENDING, Ordering::Relaxed);
}

/// Applies the queued releases of locks this task holds.
fn claim_remote(engine: &Engine, task: &mut Task) -> Vec<Report> {
    let mut reports = Vec::new();
    if pending() == 0 {
        return reports;
    }
    let mut remote = lock_remote();
    let mut i = 0;
    while i < remote.pending.len() {
        let instance = remote.pending[i];
        match task
            .held
            .iter()
            .rposition(|h| h.instance == instance && h.movable)
        {
            Some(pos) => {
                remote.pending.swap_remove(i);
                GATE.fetch_sub(ONE_PENDING, Ordering::Relaxed);
                let class = task.held[pos].class;
                if let Some(r) = engine.release_instance(task, instance, class, Site::Unknown) {
                    reports.push(r);
                }
            }
            None => i += 1,
        }
    }
    reports
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

/// Prints or hands over a report, with further hooks on this thread ignored meanwhile.
fn deliver(r: &Report) {
    let sinks: Vec<Arc<Sink>> = {
        let c = COLLECTORS.lock().unwrap_or_else(|e| e.into_inner());
        c.iter().filter_map(Weak::upgrade).collect()
    };
    for s in sinks {
        s.lock().unwrap_or_else(|e| e.into_inner()).push(r.clone());
    }
    let handler = HANDLER.read().unwrap_or_else(|e| e.into_inner()).clone();
    match handler {
        Some(h) => h(r),
        None => eprint!("{}", r.render()),
    }
}

/// Delivers a report made by a hook; in panic mode, runs `undo` (to take back an acquisition
/// that will not happen) and panics.
fn dispatch(r: Report, undo: impl FnOnce()) {
    let delivered = SLOT.try_with(|slot| {
        // Busy makes this thread's hooks no-ops while the handler runs (it may well lock
        // instrumented mutexes).
        let _busy = Busy(&slot.busy, slot.busy.replace(true));
        deliver(&r);
    });
    if delivered.is_err() {
        deliver(&r);
    }
    if action_code() == PANIC {
        undo();
        panic!("lockdep: {}", r.title());
    }
}

// ===== hooks =====

// Each hook boxes a report inside the task closure: the engine's `Option<Report>` is hundreds
// of bytes, and moving it through `try_with`, `Option` and `Result` on every call was most of the
// cost of the already-seen path. A `None` box is one word.

/// The way into the already-seen path of a hook: this thread's task, if the hook may take its
/// fast path at all (the validator is on, no remote release is queued, a slow-path hook has run
/// on this thread before, and the thread is not inside a hook or a report already). `None`
/// sends the hook to its slow path, which decides everything again.
///
/// # Safety
/// The caller must give up the reference before it calls out to anything that could reach the
/// validator (allocation, user code, a report): it may only run one of the engine's fast paths,
/// which never do.
#[inline(always)]
unsafe fn fast_task() -> Option<&'static mut Task> {
    if cfg!(feature = "disabled") || !matches!(GATE.load(Ordering::Relaxed), WARN | PANIC) {
        return None;
    }
    // SAFETY: the slot is used by this hook only.
    let slot = unsafe { fast_slot() }?;
    if slot.busy.get() {
        return None;
    }
    // SAFETY: `busy` is clear, so no other reference to the task exists, and the caller
    // promises to run only code that calls out to nothing while it holds this one, so none can
    // be made (see `Slot`).
    Some(unsafe { &mut *slot.task.get() })
}

/// [`fast_task`], for a hook that uses the task's caches: only if they are the process-wide
/// engine's (not another engine's that a driver handed the task to through
/// [`with_current_task`]).
///
/// # Safety
/// As for [`fast_task`].
#[inline(always)]
unsafe fn fast_task_with_caches() -> Option<&'static mut Task> {
    // SAFETY: passed on to the caller.
    unsafe { fast_task() }.filter(|t| t.engine == PROCESS_WIDE_ID)
}

/// This thread's slot, if a hook has run on this thread and the slot is not being destroyed.
///
/// # Safety
/// The reference must not outlive the hook that asked for it (`'static` stands for "until this
/// thread's `SLOT` is destroyed", which no hook outlives).
#[inline(always)]
unsafe fn fast_slot() -> Option<&'static Slot> {
    let slot = FAST.with(Cell::get);
    // SAFETY: `FAST` holds the address of this thread's `SLOT` only while `SLOT` is alive: it is
    // set from inside `SLOT.try_with` (so after `SLOT` was initialised) and cleared first thing
    // in `SLOT`'s destructor, and both thread-locals belong to this thread. (`'static` stands
    // for "until this thread's `SLOT` is destroyed"; the reference never leaves this thread's
    // hook.)
    unsafe { slot.as_ref() }
}

#[inline(always)]
pub(crate) fn acquire(map: &LockMap, how: Acquire<'_>, site: Site) {
    if cfg!(feature = "disabled") {
        return;
    }
    // The thread's task is only ever used with the process-wide engine, and the map's class
    // cache is only filled by it, so the fast path needs neither the engine nor the check that
    // the task's caches belong to it.
    // SAFETY: only the engine's fast path runs with the task.
    if let Some(task) = unsafe { fast_task_with_caches() } {
        let class = match map.cached_class() {
            Some(c) => Some(c),
            None => Engine::memoised_class(task, map, true),
        };
        if let Some(class) = class {
            if Engine::acquire_seen(task, map, class, &how, site) {
                return;
            }
        }
    }
    acquire_slow(map, how, site);
}

/// Everything else, with the thread marked busy: [`Engine::acquire`] tries its own fast path
/// first (which looks the class up for a map whose cache is empty: a lock just made).
#[inline(never)]
fn acquire_slow(map: &LockMap, how: Acquire<'_>, site: Site) {
    if let Some(Some(r)) = with_task(|e, t| e.acquire(t, map, how, site).map(Box::new)) {
        acquire_report(r, map);
    }
}

#[cold]
#[inline(never)]
fn acquire_report(r: Box<Report>, map: &LockMap) {
    dispatch(*r, || {
        with_task(|e, t| e.undo_acquire(t, map.instance()));
    });
}

#[inline(always)]
pub(crate) fn release(map: &LockMap, site: Site) {
    if cfg!(feature = "disabled") {
        return;
    }
    // SAFETY: only the engine's fast path runs with the task.
    if let Some(task) = unsafe { fast_task() } {
        if Engine::release_fast(task, map) {
            return;
        }
    }
    release_slow(map, site);
}

#[inline(never)]
fn release_slow(map: &LockMap, site: Site) {
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
fn report(r: Box<Report>) {
    dispatch(*r, || {});
}

#[inline]
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

/// Reports a held lock whose map is being freed (`debug_check_no_locks_freed`).
pub(crate) fn check_freed(instance: usize) {
    if cfg!(feature = "disabled") {
        return;
    }
    // Most locks are dropped by a thread that holds nothing: a read-only look first.
    // SAFETY: the slot is used by this hook only.
    let holds = unsafe { fast_slot() }.is_some_and(|slot| {
        // SAFETY: as in `fast`: `busy` is clear and the scan calls out to nothing.
        !slot.busy.get()
            && unsafe { &*slot.task.get() }
                .held
                .iter()
                .any(|h| h.instance == instance)
    });
    if !holds {
        return;
    }
    if let Some(Some(r)) = with_task(|e, t| e.check_freed(t, instance)) {
        dispatch(r, || {});
    }
}

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
pub fn check_no_locks_held() {
    if let Some(Some(r)) = with_task(|e, t| e.exit(t)) {
        dispatch(r, || {});
    }
}

/// The number of locks the current thread holds (`lockdep_depth`).
pub fn depth() -> usize {
    with_task(|_, t| t.depth()).unwrap_or(0)
}
