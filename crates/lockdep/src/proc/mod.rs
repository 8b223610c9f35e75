//! The /proc views: `/proc/lockdep`, `/proc/lockdep_chains` and `/proc/lockdep_stats`, as text
//! and as values.
//!
//! A [`Snapshot`] is taken of an [`Engine`] (a live one, a replayed scenario's, or the engine a
//! merge of recordings was checked in) and holds the values; its `render_*` methods print them in
//! the kernel's formats (`kernel/locking/lockdep_proc.c`):
//!
//! - [`Snapshot::render_lockdep`]: `all lock classes:`, then per class its key, `FD:`/`BD:`
//!   (classes reachable forwards and backwards), usage characters and name, and its *direct*
//!   dependencies as ` -> [key] name` lines;
//! - [`Snapshot::render_chains`]: `all lock chains:`, then per chain `irq_context:` and its
//!   classes;
//! - [`Snapshot::render_stats`]: the `/proc/lockdep_stats` lines, labels as the kernel's
//!   ([`Snapshot::stats_lines`] gives them as values).
//!
//! The kernel prints a class's key address; we print the class's
//! [`stable_id`](crate::ClassInfo::stable_id), which identifies it across processes.
//!
//! ```
//! use lockdep::{proc::Snapshot, Acquire, Engine, LockMap, Site, Task};
//!
//! let engine = Engine::new();
//! let a = LockMap::new();
//! let b = LockMap::new();
//! let mut t = Task::new("main", 1);
//! engine.acquire(&mut t, &a, Acquire::exclusive(), Site::Unknown);
//! engine.acquire(&mut t, &b, Acquire::exclusive(), Site::Unknown);
//!
//! let snap = Snapshot::of(&engine);
//! assert_eq!(snap.classes.len(), 2);
//! assert_eq!((snap.classes[0].forward, snap.classes[0].backward), (2, 1)); // itself included
//! assert!(snap.render_lockdep().starts_with("all lock classes:\n"));
//! assert!(snap.render_stats().contains(" direct dependencies:"));
//! ```

use std::fmt::Write as _;

pub mod lock_stat;

use crate::engine::chain::ChainInfo;
use crate::engine::{Engine, Stats};
use crate::lock::class::{usage, ClassId, ClassInfo};
use crate::report::usage_chars;

/// The largest number of classes (the `[max: ]` of `lock-classes:`).
pub const MAX_LOCK_CLASSES: u64 = 1 << 28;

/// One class of the `/proc/lockdep` view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassEntry {
    /// The class.
    pub class: ClassInfo,
    /// Classes reachable from it (`FD:`), itself included, as the kernel counts them.
    pub forward: usize,
    /// Classes it is reachable from (`BD:`), itself included.
    pub backward: usize,
    /// Its direct dependencies (`distance == 1`): the classes taken right after it.
    pub after: Vec<ClassId>,
}

/// The /proc views of an engine at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every class, in registration order.
    pub classes: Vec<ClassEntry>,
    /// Every validated chain.
    pub chains: Vec<ChainInfo>,
    /// The engine's counters.
    pub stats: Stats,
    /// Number of direct dependencies.
    pub dependencies: usize,
}

impl Snapshot {
    /// Takes the views of `engine`.
    pub fn of(engine: &Engine) -> Snapshot {
        let classes = engine.classes();
        let deps = engine.dependencies();
        let mut after: Vec<Vec<ClassId>> = vec![Vec::new(); classes.len()];
        for d in &deps {
            if d.distance == 1 {
                if let Some(v) = after.get_mut(d.from.index()) {
                    v.push(d.to);
                }
            }
        }
        let classes = classes
            .into_iter()
            .zip(after)
            .map(|(class, after)| {
                let (forward, backward) = engine.reachable_counts(class.id);
                // The kernel's breadth-first count visits the class itself too.
                ClassEntry {
                    class,
                    forward: forward + 1,
                    backward: backward + 1,
                    after,
                }
            })
            .collect();
        let mut chains = engine.chains();
        chains.sort_by(|a, b| (a.irq_context, &a.classes).cmp(&(b.irq_context, &b.classes)));
        Snapshot {
            classes,
            chains,
            stats: engine.stats(),
            dependencies: deps.len(),
        }
    }

    fn class(&self, id: ClassId) -> Option<&ClassInfo> {
        self.classes.get(id.index()).map(|c| &c.class)
    }

    fn key_and_name(&self, id: ClassId) -> String {
        match self.class(id) {
            Some(c) => format!("[{:016x}] {}", c.stable_id, c.name),
            None => format!("[{:016x}] <class {id}>", 0),
        }
    }

    /// `/proc/lockdep`.
    pub fn render_lockdep(&self) -> String {
        let mut out = String::from("all lock classes:\n");
        for e in &self.classes {
            let _ = writeln!(
                out,
                "{:016x} FD:{:5} BD:{:5} {}: {}",
                e.class.stable_id,
                e.forward,
                e.backward,
                usage_chars(e.class.usage),
                e.class.name
            );
            for a in &e.after {
                let _ = writeln!(out, " -> {}", self.key_and_name(*a));
            }
            out.push('\n');
        }
        out
    }

    /// `/proc/lockdep_chains`.
    pub fn render_chains(&self) -> String {
        let mut out = String::from("all lock chains:\n");
        for c in &self.chains {
            let _ = writeln!(out, "irq_context: {}", irq_context_name(c.irq_context));
            for id in &c.classes {
                let _ = writeln!(out, "{}", self.key_and_name(*id));
            }
            out.push('\n');
        }
        out
    }

    /// The `/proc/lockdep_stats` values: label, value, and the `[max: ]` where the kernel
    /// prints one. Counters the kernel keeps and we do not (zapped classes, hash chains) are 0.
    pub fn stats_lines(&self) -> Vec<(&'static str, u64, Option<u64>)> {
        let count = |mask: u16| {
            self.classes
                .iter()
                .filter(|c| c.class.usage & mask != 0)
                .count() as u64
        };
        let hardirq_safe = count(usage::USED_IN_HARDIRQ);
        let hardirq_unsafe = count(usage::ENABLED_HARDIRQ);
        let softirq_safe = count(usage::USED_IN_SOFTIRQ);
        let softirq_unsafe = count(usage::ENABLED_SOFTIRQ);
        let irq_safe = count(usage::USED_IN_HARDIRQ | usage::USED_IN_SOFTIRQ);
        let irq_unsafe = count(usage::ENABLED_HARDIRQ | usage::ENABLED_SOFTIRQ);
        let used = usage::USED | usage::USED_READ;
        let uncategorized = self
            .classes
            .iter()
            .filter(|c| c.class.usage & used != 0 && c.class.usage & !used == 0)
            .count() as u64;
        let unused = self.classes.iter().filter(|c| c.class.usage == 0).count() as u64;
        let direct = self.dependencies as u64;
        let indirect: u64 = self.classes.iter().map(|c| c.forward as u64).sum();
        let hardirq_chains = self
            .chains
            .iter()
            .filter(|c| c.irq_context & 2 != 0)
            .count() as u64;
        let softirq_chains = self.chains.iter().filter(|c| c.irq_context == 1).count() as u64;
        let chains = self.chains.len() as u64;
        let process_chains = chains - hardirq_chains - softirq_chains;
        let hlocks: u64 = self.chains.iter().map(|c| c.classes.len() as u64).sum();
        let s = &self.stats;
        vec![
            (
                "lock-classes",
                self.classes.len() as u64,
                Some(MAX_LOCK_CLASSES),
            ),
            ("direct dependencies", direct, None),
            ("indirect dependencies", indirect, None),
            (
                "all direct dependencies",
                irq_unsafe * irq_safe + hardirq_unsafe * hardirq_safe + direct,
                None,
            ),
            ("dependency chains", chains, None),
            ("dependency chain hlocks used", hlocks, None),
            ("dependency chain hlocks lost", 0, None),
            ("in-hardirq chains", hardirq_chains, None),
            ("in-softirq chains", softirq_chains, None),
            ("in-process chains", process_chains, None),
            ("stack-trace entries", s.stack_traces as u64, None),
            ("number of stack traces", s.stack_traces as u64, None),
            ("number of stack hash chains", s.stack_traces as u64, None),
            (
                "combined max dependencies",
                (hardirq_chains + 1) * (softirq_chains + 1) * (process_chains + 1),
                None,
            ),
            ("hardirq-safe locks", hardirq_safe, None),
            ("hardirq-unsafe locks", hardirq_unsafe, None),
            ("softirq-safe locks", softirq_safe, None),
            ("softirq-unsafe locks", softirq_unsafe, None),
            ("irq-safe locks", irq_safe, None),
            ("irq-unsafe locks", irq_unsafe, None),
            (
                "hardirq-read-safe locks",
                count(usage::USED_IN_HARDIRQ_READ),
                None,
            ),
            (
                "hardirq-read-unsafe locks",
                count(usage::ENABLED_HARDIRQ_READ),
                None,
            ),
            (
                "softirq-read-safe locks",
                count(usage::USED_IN_SOFTIRQ_READ),
                None,
            ),
            (
                "softirq-read-unsafe locks",
                count(usage::ENABLED_SOFTIRQ_READ),
                None,
            ),
            (
                "irq-read-safe locks",
                count(usage::USED_IN_HARDIRQ_READ | usage::USED_IN_SOFTIRQ_READ),
                None,
            ),
            (
                "irq-read-unsafe locks",
                count(usage::ENABLED_HARDIRQ_READ | usage::ENABLED_SOFTIRQ_READ),
                None,
            ),
            ("uncategorized locks", uncategorized, None),
            ("unused locks", unused, None),
            ("max locking depth", s.max_depth as u64, None),
            ("max bfs queue depth", s.max_bfs_queue as u64, None),
            ("chain lookup misses", s.chain_misses, None),
            ("chain lookup hits", s.chain_table_hits, None),
            ("cyclic checks", s.cyclic_checks, None),
            ("debug_locks", 1, None),
            ("", 0, None),
            ("zapped classes", 0, None),
            ("zapped lock chains", 0, None),
            ("large chain blocks", 0, None),
        ]
    }

    /// `/proc/lockdep_stats`: ` label:` padded to column 32, the value in 11 columns.
    pub fn render_stats(&self) -> String {
        let mut out = String::new();
        for (label, value, max) in self.stats_lines() {
            if label.is_empty() {
                out.push('\n');
                continue;
            }
            let _ = write!(out, " {:<31}{value:>11}", format!("{label}:"));
            if let Some(m) = max {
                let _ = write!(out, " [max: {m}]");
            }
            out.push('\n');
        }
        out
    }
}

/// The kernel's name of a chain's irq context: `0`, `hardirq`, `softirq` or `hardirq|softirq`.
pub fn irq_context_name(bits: u8) -> &'static str {
    match bits & 3 {
        0 => "0",
        1 => "softirq",
        2 => "hardirq",
        _ => "hardirq|softirq",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::map::{Acquire, LockMap, Site};
    use crate::Task;

    #[test]
    fn views_of_a_chain_of_three() {
        let engine = Engine::new();
        let a = LockMap::new();
        let b = LockMap::new();
        let c = LockMap::new();
        let mut t = Task::new("main", 1);
        for m in [&a, &b, &c] {
            engine.acquire(&mut t, m, Acquire::exclusive(), Site::Unknown);
        }
        let s = Snapshot::of(&engine);
        let fd: Vec<_> = s.classes.iter().map(|c| (c.forward, c.backward)).collect();
        assert_eq!(fd, [(3, 1), (2, 2), (1, 3)]);
        // a -> b and b -> c are direct; a -> c is not (distance 2).
        assert_eq!(s.classes[0].after, [s.classes[1].class.id]);
        let text = s.render_lockdep();
        assert_eq!(text.matches(" -> [").count(), 2, "{text}");
        assert!(text.contains(" FD:    3 BD:    1 +.+.: "), "{text}");
        let chains = s.render_chains();
        assert!(
            chains.starts_with("all lock chains:\nirq_context: 0\n"),
            "{chains}"
        );
        let stats = s.render_stats();
        let line = stats.lines().next().unwrap();
        assert_eq!(
            line,
            format!(" lock-classes:{:>29} [max: {MAX_LOCK_CLASSES}]", 3)
        );
        assert_eq!(&line[..32], " lock-classes:                  ");
        assert!(
            stats.contains("\n direct dependencies:                     2\n"),
            "{stats}"
        );
        assert!(
            stats.contains("\n indirect dependencies:                   6\n"),
            "{stats}"
        );
    }
}
