//! Reports: a structured value, and its rendering in the kernel's own format.
//!
//! Every problem the validator finds becomes a [`Report`]: its [`ReportKind`], the task, the lock
//! being acquired or released, the held lock it conflicts with, for a circular dependency the
//! existing chain with the stack that created each edge, the task's held locks and its current
//! stack. Tests and tools use the value; people read [`Report::render`], which prints what the
//! kernel prints for the same problem, so that a kernel developer recognises it at a glance:
//!
//! ```text
//! ======================================================
//! WARNING: possible circular locking dependency detected
//! lockdep 0.1.0 Not tainted
//! ------------------------------------------------------
//! worker/4242 is trying to acquire lock:
//! 000055d0c8a1e2a0 (src/main.rs:7:13){+.+.}-{3:3}, at: src/main.rs:21:11
//! ...
//! ```
//!
//! Stacks are symbolized only here, when a report is rendered.

mod render;
pub mod stack;
pub mod suppress;

use std::fmt;
use std::sync::Arc;

use crate::lock::class::{usage, ClassId, ClassInfo};
use crate::lock::map::{ReadKind, Site};
use crate::report::stack::StackTrace;

/// Who created an edge first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskRef {
    /// The task's name.
    pub name: Arc<str>,
    /// The task's id.
    pub pid: u32,
    /// Where the task ran, for dependencies merged from several processes (process, test).
    pub origin: Option<Arc<str>>,
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.pid)
    }
}

/// What a report is about. The names are the scenario format's `expect` kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ReportKind {
    /// `WARNING: possible circular locking dependency detected`
    Circular,
    /// `WARNING: possible recursive locking detected`
    Recursive,
    /// `WARNING: inconsistent lock state`
    Inconsistent,
    /// `WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected` (or SOFTIRQ, -READ)
    IrqSafeUnsafe,
    /// `WARNING: possible irq lock inversion dependency detected`
    IrqInversion,
    /// `WARNING: bad unlock balance detected!`
    BadUnlock,
    /// `WARNING: held lock freed!`
    HeldLockFreed,
    /// `WARNING: NAME/PID still has locks held!`
    LocksHeldAtExit,
    /// `WARNING: Nested lock was not taken`
    NestedLockNotTaken,
    /// `[ BUG: Invalid wait context ]`
    InvalidWaitContext,
    /// `BUG: sleeping function called from invalid context`
    SleepInvalidContext,
    /// A failed `assert_held` / `assert_not_held` ... assertion.
    Assertion,
    /// `non_block_end` without a matching `non_block_start`.
    NonBlockImbalance,
    /// A misuse of the API: a subclass out of range, releasing a pinned lock, ...
    Misuse,
    /// A misuse of a wound/wait mutex or acquire context (the kernel's `DEBUG_WW_MUTEXES`
    /// warnings): locking after `done`, mixing ww classes, `lock_slow` without a back-off, ...
    WwMisuse,
    /// `WARNING: lock held across an await point!` (a tracked async task suspended holding a
    /// blocking lock).
    HeldAcrossAwait,
    /// `BUG: MAX_LOCK_DEPTH too low!`: a task nested more locks than the validator tracks; the
    /// deeper ones are not validated.
    MaxLockDepth,
}

impl ReportKind {
    /// Every kind, in declaration order.
    pub const ALL: [ReportKind; 17] = [
        ReportKind::Circular,
        ReportKind::Recursive,
        ReportKind::Inconsistent,
        ReportKind::IrqSafeUnsafe,
        ReportKind::IrqInversion,
        ReportKind::BadUnlock,
        ReportKind::HeldLockFreed,
        ReportKind::LocksHeldAtExit,
        ReportKind::NestedLockNotTaken,
        ReportKind::InvalidWaitContext,
        ReportKind::SleepInvalidContext,
        ReportKind::Assertion,
        ReportKind::NonBlockImbalance,
        ReportKind::Misuse,
        ReportKind::WwMisuse,
        ReportKind::HeldAcrossAwait,
        ReportKind::MaxLockDepth,
    ];

    /// The scenario format's name for the kind (`circular`, `recursive`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Circular => "circular",
            ReportKind::Recursive => "recursive",
            ReportKind::Inconsistent => "inconsistent",
            ReportKind::IrqSafeUnsafe => "irq_safe_unsafe",
            ReportKind::IrqInversion => "irq_inversion",
            ReportKind::BadUnlock => "bad_unlock",
            ReportKind::HeldLockFreed => "held_lock_freed",
            ReportKind::LocksHeldAtExit => "locks_held_at_exit",
            ReportKind::NestedLockNotTaken => "nested_lock_not_taken",
            ReportKind::InvalidWaitContext => "invalid_wait_context",
            ReportKind::SleepInvalidContext => "sleep_invalid_context",
            ReportKind::Assertion => "assertion",
            ReportKind::NonBlockImbalance => "non_block_imbalance",
            ReportKind::Misuse => "misuse",
            ReportKind::WwMisuse => "ww_misuse",
            ReportKind::HeldAcrossAwait => "held_across_await",
            ReportKind::MaxLockDepth => "max_lock_depth",
        }
    }

    /// The kind with the given scenario name.
    pub fn from_name(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.iter().copied().find(|k| k.name() == s)
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A lock as a report shows it: class, instance, where it was taken, how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// The lock's class.
    pub class: ClassInfo,
    /// The instance (the lock map's address, or a replay instance's id).
    pub instance: usize,
    /// Where it was acquired (or is being acquired / released).
    pub site: Site,
    /// How it is held.
    pub read: ReadKind,
}

/// One entry of a circular report's dependency chain: the class, and the stack and task where
/// the dependency leading to it was first seen.
#[derive(Clone, Debug)]
pub struct ChainLink {
    /// The class of this entry.
    pub class: ClassInfo,
    /// The stack of the dependency into this class (for `#0`, the current stack).
    pub stack: Arc<StackTrace>,
    /// The task that created the dependency.
    pub task: TaskRef,
}

/// A problem the validator found.
#[derive(Clone, Debug)]
pub struct Report {
    /// What kind of problem.
    pub kind: ReportKind,
    /// The task it happened in.
    pub task: TaskRef,
    /// The lock being acquired, released or checked.
    pub lock: Option<LockInfo>,
    /// The held lock it conflicts with (`but task is already holding lock:`).
    pub holding: Option<LockInfo>,
    /// For a circular dependency: the existing chain, in the kernel's reverse order (`#N` first,
    /// the lock being acquired last as `#0`).
    pub chain: Vec<ChainLink>,
    /// The locks the task held at the time.
    pub held: Vec<LockInfo>,
    /// The task's stack at the time.
    pub stack: Option<Arc<StackTrace>>,
    /// Extra text: the assertion or misuse that failed.
    pub message: Option<String>,
    /// Whether wait-type numbers are printed with raw-lock nesting.
    pub raw_lock_nesting: bool,
    /// For the interrupt-state kinds: what made the locks irq-safe and irq-unsafe.
    pub irq: Option<IrqDetail>,
}

/// Classes along a dependency path, each with the stack of the dependency that reaches it.
pub type DependencyPath = Vec<(ClassInfo, Arc<StackTrace>)>;

/// The interrupt-state part of an `inconsistent`, `irq_safe_unsafe` or `irq_inversion` report.
#[derive(Clone, Debug)]
pub struct IrqDetail {
    /// The task's interrupt state, `[HC0[0]:SC0[0]:HE1:SE1]`.
    pub task_state: String,
    /// The interrupt state named: `HARDIRQ`, `SOFTIRQ`, `HARDIRQ-READ` or `SOFTIRQ-READ`.
    pub state: &'static str,
    /// For an inconsistent state: the usage registered before (e.g. `IN-HARDIRQ-W`) and where.
    pub usage_change: Option<(&'static str, Arc<StackTrace>)>,
    /// The irq-safe lock, and where it became safe.
    pub safe: Option<(ClassInfo, Option<Arc<StackTrace>>)>,
    /// The irq-unsafe lock, and where it became unsafe.
    pub unsafe_lock: Option<(ClassInfo, Option<Arc<StackTrace>>)>,
    /// The lock between them in the scenario (the kernel's `middle_class`).
    pub middle: Option<ClassInfo>,
    /// Dependency paths printed at the end: a title, then each class with the stack of the
    /// dependency that reaches it.
    pub paths: Vec<(String, DependencyPath)>,
    /// For an inversion: whether the other lock was found forward (this lock took it).
    pub forwards: bool,
}

/// The identification line under every report title (the kernel's `print_kernel_ident`).
pub const IDENT: &str = concat!("lockdep ", env!("CARGO_PKG_VERSION"), " Not tainted");

impl Report {
    /// The report's header line, e.g. `WARNING: possible circular locking dependency detected`.
    pub fn title(&self) -> String {
        match self.kind {
            ReportKind::Circular => "WARNING: possible circular locking dependency detected".into(),
            ReportKind::Recursive => "WARNING: possible recursive locking detected".into(),
            ReportKind::Inconsistent => "WARNING: inconsistent lock state".into(),
            ReportKind::IrqSafeUnsafe => self.message.clone().unwrap_or_else(|| {
                "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected".into()
            }),
            ReportKind::IrqInversion => {
                "WARNING: possible irq lock inversion dependency detected".into()
            }
            ReportKind::BadUnlock => "WARNING: bad unlock balance detected!".into(),
            ReportKind::HeldLockFreed => "WARNING: held lock freed!".into(),
            ReportKind::LocksHeldAtExit => format!("WARNING: {} still has locks held!", self.task),
            ReportKind::NestedLockNotTaken => "WARNING: Nested lock was not taken".into(),
            ReportKind::InvalidWaitContext => "[ BUG: Invalid wait context ]".into(),
            ReportKind::SleepInvalidContext => {
                "BUG: sleeping function called from invalid context".into()
            }
            ReportKind::Assertion => "WARNING: lockdep assertion failed".into(),
            ReportKind::NonBlockImbalance => {
                "WARNING: non_block_end() without non_block_start()".into()
            }
            ReportKind::Misuse => "WARNING: lockdep API misuse".into(),
            ReportKind::WwMisuse => "WARNING: wound/wait mutex misuse".into(),
            ReportKind::HeldAcrossAwait => "WARNING: lock held across an await point!".into(),
            ReportKind::MaxLockDepth => "BUG: MAX_LOCK_DEPTH too low!".into(),
        }
    }

    /// The classes the report is about, for de-duplication: the same kind over the same classes
    /// is reported once.
    pub fn classes(&self) -> Vec<ClassId> {
        let mut v: Vec<ClassId> = Vec::new();
        if let Some(l) = &self.lock {
            v.push(l.class.id);
        }
        if let Some(l) = &self.holding {
            v.push(l.class.id);
        }
        v.extend(self.chain.iter().map(|c| c.class.id));
        if self.kind == ReportKind::LocksHeldAtExit {
            v.extend(self.held.iter().map(|h| h.class.id));
        }
        v.sort();
        v.dedup();
        v
    }

    /// The names of the classes in the report's chain, `#N` first (empty unless circular).
    pub fn chain_names(&self) -> Vec<String> {
        self.chain
            .iter()
            .map(|c| c.class.name.to_string())
            .collect()
    }
}

/// The `{....}` characters of a usage mask (re-exported for tools).
pub fn usage_chars(bits: u16) -> String {
    usage::chars(bits).iter().collect()
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
