//! Scenario files (`*.lockdep`): parse them and replay them through the engine.
//!
//! A scenario describes a sequence of lock events in one or more simulated tasks. It is how
//! kernel-style selftests, bug reproductions and seed scenarios are written down, and what
//! `lockdep replay` runs. The format is specified in `spec/scenario-format.md`; in short:
//!
//! ```text
//! # two mutexes taken in both orders
//! case abba
//! mutex A
//! mutex B
//! lock A
//! lock B
//! unlock B
//! unlock A
//! lock B
//! lock A          # closes the cycle A -> B -> A
//! unlock A
//! unlock B
//! expect circular
//! ```
//!
//! The replay drives the same [`Engine`](crate::Engine) the library uses at run time; it
//! implements no rule of its own. Each [`Case`] gets a fresh engine, one
//! [`LockClassKey`](crate::LockClassKey) per class name, one [`LockMap`](crate::LockMap) per
//! declared instance and one simulated [`Task`](crate::Task) per `thread`. Every report the engine
//! returns is a report of the case; instance addresses in reports are rewritten to fixed
//! kernel-looking addresses (one per declaration) so that the output is reproducible.
//!
//! ```
//! use lockdep::scenario;
//!
//! let text = "mutex A\nmutex B\nlock A\nlock B\nunlock B\nunlock A\n\
//!             lock B\nlock A\nunlock A\nunlock B\nexpect circular\n";
//! let s = scenario::parse("abba.lockdep", text).expect("well-formed");
//! let result = scenario::replay_case(&s.cases[0]);
//! assert!(result.passed);
//! assert!(scenario::render_case(&result).ends_with("case abba: ok\n"));
//! ```
//!
//! Everything that can be wrong with a file (an unknown statement, an undeclared instance, a
//! `ret` or a `memalloc_*_restore` with nothing to pop, ...) is found by [`parse`], before any
//! of it is replayed: a [`Scenario`] always replays.

use std::fmt;

use crate::lock::wait::WaitType;
use crate::report::{Report, ReportKind};

mod parse;
mod replay;

pub use parse::{parse, parse_reader, validate, MAX_LINE};
pub use replay::{
    render_case, replay, replay_case, replay_case_in, replay_stream, CaseDriver, FAKE_ADDRESS_BASE,
    FAKE_ADDRESS_STRIDE,
};

/// A malformed scenario file: where and why. Displays as `FILE:LINE: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file, as it was named to [`parse`].
    pub file: String,
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A parsed and validated scenario file.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file, as it was named to [`parse`].
    pub file: String,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// The declared type of a lock instance (the first word of a declaration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockType {
    /// `mutex`: sleeping lock, exclusive.
    Mutex,
    /// `rwsem`: sleeping reader-writer lock.
    Rwsem,
    /// `spin`: spinning lock, exclusive.
    Spin,
    /// `rwlock`: spinning reader-writer lock.
    Rwlock,
    /// `raw_spin`: raw spinning lock.
    RawSpin,
    /// `map`: a lock map standing for something that is not a lock.
    Map,
}

impl LockType {
    /// Every type, in the order of the format's table.
    pub const ALL: [LockType; 6] = [
        LockType::Mutex,
        LockType::Rwsem,
        LockType::Spin,
        LockType::Rwlock,
        LockType::RawSpin,
        LockType::Map,
    ];

    /// The keyword that declares it.
    pub fn name(self) -> &'static str {
        match self {
            LockType::Mutex => "mutex",
            LockType::Rwsem => "rwsem",
            LockType::Spin => "spin",
            LockType::Rwlock => "rwlock",
            LockType::RawSpin => "raw_spin",
            LockType::Map => "map",
        }
    }

    /// The type declared by `keyword`, if it is one.
    pub fn from_name(keyword: &str) -> Option<LockType> {
        LockType::ALL.iter().copied().find(|t| t.name() == keyword)
    }

    /// The inner wait type of an instance declared without `wait=`.
    pub fn default_wait(self) -> WaitType {
        match self {
            LockType::Mutex | LockType::Rwsem => WaitType::Sleep,
            LockType::Spin | LockType::Rwlock => WaitType::Config,
            LockType::RawSpin => WaitType::Spin,
            LockType::Map => WaitType::Inv,
        }
    }
}

impl fmt::Display for LockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One independent case of a scenario: a fresh validator, its declarations, tasks and events.
///
/// Cases are made by [`parse`], which checks everything a replay relies on; replay one with
/// [`replay_case`].
#[derive(Clone, Debug)]
pub struct Case {
    /// The case's name (`case NAME`, or the file's stem for statements before the first `case`).
    pub name: String,
    /// The line of its `case` statement (of its first statement for the file-stem case).
    pub line: usize,
    /// The report kinds it expects, in order (empty: no report).
    pub expected: Vec<ReportKind>,
    /// The file, for `FILE:LINE` sites.
    pub(crate) file: String,
    /// Class names; index 0 and 1 are the predeclared maps.
    pub(crate) classes: Vec<String>,
    /// The line each class was first declared on (0 for the predeclared maps).
    pub(crate) class_lines: Vec<usize>,
    /// Declared instances, in declaration order (index 0 and 1 are the predeclared maps).
    pub(crate) instances: Vec<Instance>,
    /// Tasks in order of creation; index 0 is `main`.
    pub(crate) tasks: Vec<TaskDecl>,
    /// The events.
    pub(crate) steps: Vec<Step>,
}

/// A declared lock instance.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    pub(crate) name: String,
    /// Index into [`Case::classes`].
    pub(crate) class: usize,
    pub(crate) inner: WaitType,
    /// `Inv`: same as inner.
    pub(crate) outer: WaitType,
}

/// A simulated task.
#[derive(Clone, Debug)]
pub(crate) struct TaskDecl {
    pub(crate) name: String,
    pub(crate) pid: u32,
}

/// A statement to replay, with its line.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) line: usize,
    pub(crate) op: Op,
}

/// A memory-allocation scope (`memalloc_*_save` / `_restore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Nofs = 0,
    Noio = 1,
    Noreclaim = 2,
}

/// A replayable statement. Instance and task fields are indices into the case's tables.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Thread(usize),
    Call(String),
    Ret,
    Exit,
    Acquire {
        inst: usize,
        read: crate::lock::map::ReadKind,
        trylock: bool,
        subclass: u8,
        nest: Option<usize>,
        /// `might_lock*`: release at once.
        might: bool,
    },
    Unlock(usize),
    Downgrade(usize),
    SetSubclass(usize, u8),
    Init(usize),
    Assert {
        inst: usize,
        held: bool,
        want: Option<crate::lock::map::ReadKind>,
    },
    IrqDisable,
    IrqEnable,
    BhDisable,
    BhEnable,
    HardirqEnter,
    HardirqExit,
    SoftirqEnter,
    SoftirqExit,
    HardirqThreaded,
    NonBlockStart,
    NonBlockEnd,
    MightSleep,
    Alloc(u32),
    FsReclaimAcquire(u32),
    FsReclaimRelease(u32),
    MemallocSave(Scope),
    MemallocRestore(Scope),
    RawLockNesting,
    LegacyFsReclaim(bool),
    /// `ww_acquire_init`: the context's instance, its first-lock map's instance, and the
    /// context's ww class (an index from 1).
    WwInit {
        ctx: usize,
        first: usize,
        class: usize,
    },
    WwDone(usize),
    WwFini(usize),
    /// `ww_lock`, `ww_lock_slow`, `ww_trylock` (a successful one): the outcome is decided by
    /// the parser's simulation of the mutexes' owners.
    WwLock {
        inst: usize,
        /// The mutex's ww class (an index from 1).
        class: usize,
        ctx: Option<usize>,
        mode: crate::engine::ww::WwLockMode,
        outcome: WwOutcome,
    },
    /// `ww_unlock`: the context the mutex was bound to, if any.
    WwUnlock {
        inst: usize,
        owner: Option<usize>,
    },
    /// `ww_acquired CTX N`: overwrites the context's held count.
    WwSetAcquired(usize, u32),
}

/// What a `ww_lock` does, as the simulation of the mutexes decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WwOutcome {
    /// The mutex is taken; `stale`: it was still bound to a context.
    Acquired { stale: bool },
    /// The context must back off (`-EDEADLK`).
    BackOff,
    /// The context holds it already (`-EALREADY`): no event.
    Already,
}

/// What replaying a case gave.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The reports, in order, with instance addresses made reproducible.
    pub reports: Vec<Report>,
    /// The kinds the case expected.
    pub expected: Vec<ReportKind>,
    /// Whether the kinds of `reports` are exactly `expected`, in order.
    pub passed: bool,
}

impl CaseResult {
    /// The kinds of the reports, in order.
    pub fn got(&self) -> Vec<ReportKind> {
        self.reports.iter().map(|r| r.kind).collect()
    }
}
