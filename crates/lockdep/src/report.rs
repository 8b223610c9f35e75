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

use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::class::{usage, ClassId, ClassInfo};
use crate::graph::TaskRef;
use crate::map::{ReadKind, Site};
use crate::stack::StackTrace;

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
}

impl ReportKind {
    /// Every kind, in declaration order.
    pub const ALL: [ReportKind; 14] = [
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

    /// Renders the report as the kernel prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.render_into(&mut out);
        out
    }

    fn lock_line(&self, l: &LockInfo) -> String {
        format!(
            "{:016x} {}, at: {}",
            l.instance,
            l.class.lock_name(self.raw_lock_nesting),
            l.site
        )
    }

    fn bare(&self, c: &ClassInfo) -> String {
        c.name.to_string()
    }

    fn header(&self, out: &mut String) -> fmt::Result {
        let title = self.title();
        // The safe -> unsafe report's rules are a fixed 53 columns in the kernel.
        let rule = if self.kind == ReportKind::IrqSafeUnsafe {
            53
        } else {
            title.chars().count()
        };
        writeln!(out)?;
        writeln!(out, "{}", "=".repeat(rule))?;
        writeln!(out, "{title}")?;
        writeln!(out, "{IDENT}")?;
        writeln!(out, "{}", "-".repeat(rule))
    }

    fn held_list(&self, out: &mut String) -> fmt::Result {
        match self.held.len() {
            0 => writeln!(out, "no locks held by {}.", self.task),
            n => {
                writeln!(
                    out,
                    "{} lock{} held by {}:",
                    n,
                    if n > 1 { "s" } else { "" },
                    self.task
                )?;
                for (i, h) in self.held.iter().enumerate() {
                    writeln!(out, " #{}: {}", i, self.lock_line(h))?;
                }
                Ok(())
            }
        }
    }

    fn backtrace(&self, out: &mut String) -> fmt::Result {
        writeln!(out, "stack backtrace:")?;
        self.call_trace(out)
    }

    fn call_trace(&self, out: &mut String) -> fmt::Result {
        writeln!(
            out,
            "CPU: 0 PID: {} Comm: {} {}",
            self.task.pid, self.task.name, IDENT
        )?;
        writeln!(out, "Call Trace:")?;
        if let Some(s) = &self.stack {
            s.write_indented(out, 1);
        }
        Ok(())
    }

    fn render_into(&self, out: &mut String) -> fmt::Result {
        if self.kind == ReportKind::SleepInvalidContext {
            // `__might_sleep` prints no box: its message, the held locks, the stack.
            writeln!(out)?;
            if let Some(m) = &self.message {
                writeln!(out, "{m}")?;
            }
            self.held_list(out)?;
            return self.call_trace(out);
        }
        self.header(out)?;
        let task = &self.task;
        match self.kind {
            ReportKind::Circular => {
                let (next, prev) = (self.lock.as_ref(), self.holding.as_ref());
                writeln!(out, "{task} is trying to acquire lock:")?;
                if let Some(n) = next {
                    writeln!(out, "{}", self.lock_line(n))?;
                }
                writeln!(out, "\nbut task is already holding lock:")?;
                if let Some(p) = prev {
                    writeln!(out, "{}", self.lock_line(p))?;
                }
                writeln!(out, "\nwhich lock already depends on the new lock.\n")?;
                writeln!(
                    out,
                    "\nthe existing dependency chain (in reverse order) is:"
                )?;
                let depth = self.chain.len();
                for (i, link) in self.chain.iter().enumerate() {
                    writeln!(
                        out,
                        "\n-> #{} {}:",
                        depth - 1 - i,
                        link.class.lock_name(self.raw_lock_nesting)
                    )?;
                    // The kernel's `stack_trace_print(.., 6)`: `%*c` of width 1 + 6.
                    link.stack.write_indented(out, 7);
                    // Dependencies merged from several processes say where they were seen.
                    if let Some(origin) = &link.task.origin {
                        writeln!(out, "       (first seen in {} of {origin})", link.task)?;
                    }
                }
                writeln!(out, "\nother info that might help us debug this:\n")?;
                if let (Some(n), Some(p)) = (next, prev) {
                    let source = self.bare(&n.class);
                    let target = self.bare(&p.class);
                    // The class the held lock was reached from: the entry after `#N`.
                    let parent = if self.chain.len() >= 3 {
                        self.bare(&self.chain[1].class)
                    } else {
                        source.clone()
                    };
                    if self.chain.len() >= 3 {
                        writeln!(
                            out,
                            "Chain exists of:\n  {source} --> {parent} --> {target}\n"
                        )?;
                    }
                    writeln!(out, " Possible unsafe locking scenario:\n")?;
                    writeln!(out, "       CPU0                    CPU1")?;
                    writeln!(out, "       ----                    ----")?;
                    writeln!(out, "  lock({target});")?;
                    writeln!(out, "                               lock({parent});")?;
                    writeln!(out, "                               lock({target});")?;
                    writeln!(out, "  lock({source});")?;
                    writeln!(out, "\n *** DEADLOCK ***\n")?;
                }
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::Recursive => {
                writeln!(out, "{task} is trying to acquire lock:")?;
                if let Some(n) = &self.lock {
                    writeln!(out, "{}", self.lock_line(n))?;
                }
                writeln!(out, "\nbut task is already holding lock:")?;
                if let Some(p) = &self.holding {
                    writeln!(out, "{}", self.lock_line(p))?;
                }
                writeln!(out, "\nother info that might help us debug this:")?;
                if let (Some(n), Some(p)) = (&self.lock, &self.holding) {
                    writeln!(out, " Possible unsafe locking scenario:\n")?;
                    writeln!(out, "       CPU0")?;
                    writeln!(out, "       ----")?;
                    writeln!(out, "  lock({});", self.bare(&p.class))?;
                    writeln!(out, "  lock({});", self.bare(&n.class))?;
                    writeln!(out, "\n *** DEADLOCK ***\n")?;
                    writeln!(out, " May be due to missing lock nesting notation\n")?;
                }
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::BadUnlock => {
                let (name, site) = match &self.lock {
                    Some(l) => (self.bare(&l.class), l.site),
                    None => ("<unknown>".into(), Site::Unknown),
                };
                writeln!(out, "{task} is trying to release lock ({name}) at:")?;
                writeln!(out, "{site}")?;
                writeln!(out, "but there are no more locks to release!")?;
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::HeldLockFreed => {
                let l = self.lock.as_ref();
                let inst = l.map(|l| l.instance).unwrap_or(0);
                writeln!(
                    out,
                    "{task} is freeing memory {inst:016x}-{:016x}, with a lock still held there!",
                    inst + 15
                )?;
                if let Some(l) = l {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::LocksHeldAtExit => {
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::Inconsistent => self.render_inconsistent(out),
            ReportKind::IrqSafeUnsafe => self.render_safe_unsafe(out),
            ReportKind::IrqInversion => self.render_inversion(out),
            ReportKind::InvalidWaitContext => {
                writeln!(out, "{task} is trying to lock:")?;
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(out, "other info that might help us debug this:")?;
                if let Some(m) = &self.message {
                    writeln!(out, "{m}")?;
                }
                self.held_list(out)?;
                self.backtrace(out)
            }
            ReportKind::NestedLockNotTaken => {
                writeln!(out, "{task} is trying to lock:")?;
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(out, "\nbut this task is not holding:")?;
                writeln!(
                    out,
                    "{}",
                    self.holding
                        .as_ref()
                        .map(|h| self.bare(&h.class))
                        .unwrap_or_default()
                )?;
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            _ => {
                if let Some(m) = &self.message {
                    writeln!(out, "{m}")?;
                }
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
        }
    }
}

impl Report {
    fn class_line(&self, c: &ClassInfo) -> String {
        format!(" {}", c.lock_name(self.raw_lock_nesting))
    }

    fn irq_scenario(&self, out: &mut String, d: &IrqDetail) -> fmt::Result {
        let (Some((safe, _)), Some((unsafe_, _))) = (&d.safe, &d.unsafe_lock) else {
            return Ok(());
        };
        let middle = d.middle.as_ref().unwrap_or(unsafe_);
        let (s, u, m) = (self.bare(safe), self.bare(unsafe_), self.bare(middle));
        if middle.id != unsafe_.id {
            writeln!(out, "Chain exists of:\n  {s} --> {m} --> {u}\n")?;
        }
        writeln!(out, " Possible interrupt unsafe locking scenario:\n")?;
        writeln!(out, "       CPU0                    CPU1")?;
        writeln!(out, "       ----                    ----")?;
        writeln!(out, "  lock({u});")?;
        writeln!(out, "                               local_irq_disable();")?;
        writeln!(out, "                               lock({s});")?;
        writeln!(out, "                               lock({m});")?;
        writeln!(out, "  <Interrupt>")?;
        writeln!(out, "    lock({s});")?;
        writeln!(out, "\n *** DEADLOCK ***\n")
    }

    fn paths(&self, out: &mut String, d: &IrqDetail) -> fmt::Result {
        for (title, links) in &d.paths {
            writeln!(out, "\n{title}")?;
            for (class, stack) in links {
                writeln!(out, "-> {}", class.lock_name(self.raw_lock_nesting))?;
                writeln!(out, "   ... acquired at:")?;
                stack.write_indented(out, 4);
            }
        }
        Ok(())
    }

    fn render_inconsistent(&self, out: &mut String) -> fmt::Result {
        let Some(d) = &self.irq else { return Ok(()) };
        if let Some(m) = &self.message {
            writeln!(out, "{m}")?;
        }
        writeln!(out, "{} {} takes:", self.task, d.task_state)?;
        if let Some(l) = &self.lock {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        if let Some((usage, stack)) = &d.usage_change {
            writeln!(out, "{{{usage}}} state was registered at:")?;
            stack.write_indented(out, 2);
        }
        writeln!(out, "\nother info that might help us debug this:")?;
        if let Some(l) = &self.lock {
            let name = self.bare(&l.class);
            writeln!(out, " Possible unsafe locking scenario:\n")?;
            writeln!(out, "       CPU0")?;
            writeln!(out, "       ----")?;
            writeln!(out, "  lock({name});")?;
            writeln!(out, "  <Interrupt>")?;
            writeln!(out, "    lock({name});")?;
            writeln!(out, "\n *** DEADLOCK ***\n")?;
        }
        self.held_list(out)?;
        writeln!(out)?;
        self.backtrace(out)
    }

    fn render_safe_unsafe(&self, out: &mut String) -> fmt::Result {
        let Some(d) = &self.irq else { return Ok(()) };
        let st = d.state;
        writeln!(out, "{} {} is trying to acquire:", self.task, d.task_state)?;
        if let Some(l) = &self.lock {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        writeln!(out, "\nand this task is already holding:")?;
        if let Some(l) = &self.holding {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        writeln!(out, "which would create a new lock dependency:")?;
        if let (Some(p), Some(n)) = (&self.holding, &self.lock) {
            writeln!(
                out,
                "{} ->{}",
                self.class_line(&p.class),
                self.class_line(&n.class)
            )?;
        }
        if let Some((safe, stack)) = &d.safe {
            writeln!(
                out,
                "\nbut this new dependency connects a {st}-irq-safe lock:"
            )?;
            writeln!(out, "{}", self.class_line(safe))?;
            writeln!(out, "\n... which became {st}-irq-safe at:")?;
            if let Some(s) = stack {
                s.write_indented(out, 2);
            }
        }
        if let Some((unsafe_, stack)) = &d.unsafe_lock {
            writeln!(out, "\nto a {st}-irq-unsafe lock:")?;
            writeln!(out, "{}", self.class_line(unsafe_))?;
            writeln!(out, "\n... which became {st}-irq-unsafe at:")?;
            writeln!(out, "...")?;
            if let Some(s) = stack {
                s.write_indented(out, 2);
            }
        }
        writeln!(out, "\nother info that might help us debug this:\n")?;
        self.irq_scenario(out, d)?;
        self.held_list(out)?;
        self.paths(out, d)?;
        writeln!(out)?;
        self.backtrace(out)
    }

    fn render_inversion(&self, out: &mut String) -> fmt::Result {
        let Some(d) = &self.irq else { return Ok(()) };
        let st = d.state;
        writeln!(out, "{} just changed the state of lock:", self.task)?;
        if let Some(l) = &self.lock {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        if d.forwards {
            writeln!(
                out,
                "but this lock took another, {st}-unsafe lock in the past:"
            )?;
        } else {
            writeln!(
                out,
                "but this lock was taken by another, {st}-safe lock in the past:"
            )?;
        }
        if let Some(other) = &self.holding {
            writeln!(out, "{}", self.class_line(&other.class))?;
        }
        writeln!(
            out,
            "\n\nand interrupts could create inverse lock ordering between them.\n"
        )?;
        writeln!(out, "\nother info that might help us debug this:")?;
        self.irq_scenario(out, d)?;
        self.held_list(out)?;
        self.paths(out, d)?;
        writeln!(out)?;
        self.backtrace(out)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// The `{....}` characters of a usage mask (re-exported for tools).
pub fn usage_chars(bits: u16) -> String {
    usage::chars(bits).iter().collect()
}
