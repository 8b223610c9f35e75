//! What a report does: the action (`LOCKDEP=off|warn|panic`), the report handler, the
//! collectors tests use, and delivery.
//!
//! The action shares one global word, [`GATE`], with the statistics switch: every hook reads it
//! first, and the fast path runs only when it says "on, no statistics".

use std::io::Write as _;
use std::sync::OnceLock;

use super::*;
use crate::report::suppress::Suppressions;

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

// The action's codes, as `action_code` returns them.
pub(super) const UNSET: usize = 0;
pub(super) const OFF: usize = 1;
pub(super) const WARN: usize = 2;
pub(super) const PANIC: usize = 3;

// [`GATE`]'s bits. The two the fast paths test come first, so that each test is one `test` of
// the word in memory: an acquisition's fast path needs both clear, a release's only `STAT`.
/// The fast path may not acquire: the action is off, or not yet read from the environment.
pub(super) const CLOSED: usize = 1;
/// Lock statistics are on (`rt/stat.rs`): acquisitions and releases take the slow path's entry,
/// which records them.
pub(super) const STAT: usize = 2;
/// The action is `panic` (with `KNOWN`).
const PANIC_BIT: usize = 4;
/// The action has been read from the environment or set.
const KNOWN: usize = 8;

/// The one global word every hook reads: the action ([`CLOSED`], `PANIC_BIT`, `KNOWN`) and the
/// [`STAT`] switch. An acquisition's fast path runs only when neither `CLOSED` nor `STAT` is set
/// (so statistics cost the fast path nothing when they are off: with them on, hooks take the
/// slow path's entry, which has a fast path of its own); a release's fast path only when `STAT`
/// is clear (a lock released with the action off is popped as it was pushed). It is written
/// only when the action or the statistics switch changes.
pub(super) static GATE: AtomicUsize = AtomicUsize::new(CLOSED);

/// The gate's bits of an action code.
const fn gate_bits(code: usize) -> usize {
    match code {
        OFF => KNOWN | CLOSED,
        WARN => KNOWN,
        PANIC => KNOWN | PANIC_BIT,
        _ => CLOSED,
    }
}

/// The action code of a gate word.
#[inline]
const fn code_of(g: usize) -> usize {
    if g & KNOWN == 0 {
        UNSET
    } else if g & CLOSED != 0 {
        OFF
    } else if g & PANIC_BIT != 0 {
        PANIC
    } else {
        WARN
    }
}

const ACTION_BITS: usize = CLOSED | PANIC_BIT | KNOWN;

pub(super) fn action_from_env() -> usize {
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
pub(super) fn action_code() -> usize {
    match code_of(GATE.load(Ordering::Relaxed)) {
        UNSET => {
            let a = gate_bits(action_from_env()) | super::stat::from_env(STAT);
            let _ = GATE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                (code_of(g) == UNSET).then_some(g & !ACTION_BITS | a)
            });
            code_of(GATE.load(Ordering::Relaxed))
        }
        a => a,
    }
}

/// The number of queued remote releases (see *Movable holds* in `rt`). Only the slow path
/// looks: a holder claims its releases at its next slow-path hook. Until then a fast-path push
/// on top of a hold that another thread has released changes nothing the validator knows (the
/// chain was validated when that hold was real), and every acquisition that could teach a
/// dependency takes the slow path, which claims first.
pub(super) static PENDING: AtomicUsize = AtomicUsize::new(0);

#[inline]
pub(super) fn pending() -> usize {
    PENDING.load(Ordering::Relaxed)
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
        Some(g & !ACTION_BITS | gate_bits(code))
    });
}

pub(super) type Handler = Arc<dyn Fn(&Report) + Send + Sync>;
pub(super) static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

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

pub(super) type Sink = Mutex<Vec<Report>>;
pub(super) static COLLECTORS: Mutex<Vec<Weak<Sink>>> = Mutex::new(Vec::new());

/// Collects every report the process-wide validator makes while it is alive (in addition to
/// what the action does with them). The way for tests to assert on reports.
///
/// The validator is process-wide and tests run in parallel threads, so a test should pick out
/// the reports about its own locks, e.g. by class name:
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::{Mutex, ReportCollector, ReportKind};
///
/// let reports = ReportCollector::new();
/// let (a, b) = (Mutex::new(0), Mutex::new(0));
/// { let _a = a.lock(); let _b = b.lock(); }
/// { let _b = b.lock(); let _a = a.lock(); }
/// let mine = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(a.class_name().as_str()));
/// assert_eq!(mine.len(), 1);
/// # }
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

/// The suppressions of the process (see [`crate::suppress`]): the file named by
/// `LOCKDEP_SUPPRESS`, or `lockdep.toml` at the root of the workspace the program runs in, read
/// at the first report. A file that cannot be used is reported once on stderr and ignored.
pub fn suppressions() -> Option<&'static Suppressions> {
    static SUPPRESSIONS: OnceLock<Option<Suppressions>> = OnceLock::new();
    SUPPRESSIONS
        .get_or_init(|| match Suppressions::from_env() {
            Ok(s) => s,
            Err(e) => {
                write_stderr(&format!("lockdep: {e}; no report is suppressed\n"));
                None
            }
        })
        .as_ref()
}

/// The number of reports suppressed so far in this process (counted, never printed).
pub fn suppressed() -> u64 {
    suppressions().map_or(0, Suppressions::suppressed)
}

/// Writes to the process's standard error directly, in one piece: not through `eprint!`, which
/// the test harness captures (a test's captured output is only shown if the test fails, so a
/// report made in a passing test would never be seen). On Unix it is one `write(2)` to fd 2,
/// without `std::io::stderr`'s lock either: a thread that was printing a report when another
/// forked must not leave that lock held in the child (`rt::fork`).
pub(super) fn write_stderr(text: &str) {
    #[cfg(unix)]
    {
        use std::os::fd::FromRawFd;
        // SAFETY: fd 2 is the process's stderr, which it owns for its whole life; the `File` is
        // never dropped (so never closes it).
        let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(2) });
        let _ = f.write_all(text.as_bytes());
    }
    #[cfg(not(unix))]
    {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
}

/// Prints or hands over a report, with further hooks on this thread ignored meanwhile; `false`
/// if a suppression silenced it (it then goes nowhere, collectors included).
pub(super) fn deliver(r: &Report) -> bool {
    if suppressions().is_some_and(|s| s.check(r)) {
        return false;
    }
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
        None => write_stderr(&r.render()),
    }
    true
}
