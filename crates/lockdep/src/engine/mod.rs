//! The engine: validator state plus explicit per-task state.
//!
//! [`Engine`] owns everything shared: the classes (in an append-only arena that the fast path
//! reads without locking), and behind one internal mutex the dependency graph, the table of
//! validated chains, the stack store and the set of problems already reported. A [`Task`] owns
//! everything private to one task. Every operation takes both: `engine.acquire(&mut task, ...)`.
//! The process-wide validator ([`crate::rt`]) and the replay tool ([`crate::scenario`]) are two
//! drivers of this one engine; neither implements a rule of its own.
//!
//! The life of an acquisition (the kernel's `__lock_acquire`):
//!
//! 1. look up the class (cached in the lock map, then in the task, then the registry);
//! 2. merge into the top entry if it is the same class taken under a nest lock;
//! 3. mark the class's usage bits (a no-op once they are set);
//! 4. extend the chain key; check that a nest lock is held;
//! 5. unless it is a trylock or unchecked: if the chain was validated before (task cache, then
//!    engine table) stop here — the fast path. Otherwise, under the engine lock, check for
//!    recursive locking of the class, then add a dependency from the nearest held locks to the
//!    new one, searching for a strong cycle first;
//! 6. push the lock.
//!
//! A problem produces a [`Report`] value, returned to the driver, which decides what to do with
//! it (print, panic, call back). The engine never calls out while holding its lock, so a report
//! handler may use instrumented locks. After a report the engine goes on: the acquisition still
//! takes place, a dependency that would close a cycle is not added, and the same problem (kind
//! and classes) is reported once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::lock::class::{self, Class, ClassId, ClassInfo, Key, KeyIdentity, MAX_SUBCLASSES};
use crate::lock::dep::{self, dep_type};
use crate::lock::map::{Acquire, LockMap, ReadKind, Site, SiteRef};
use crate::lock::wait::WaitType;
use crate::report::stack::{StackStore, StackTrace};
use crate::report::TaskRef;
use crate::report::{ChainLink, LockInfo, Report, ReportKind};
use chain::{ChainInfo, EngineChains, ROOT};
use graph::{Direction, Graph};
use held::{HeldLock, Task, MAX_LOCK_DEPTH};

pub mod chain;
pub mod graph;
pub mod held;
pub mod reclaim;
pub mod usage;
pub mod ww;

mod acquire;
mod context;
mod import;
mod introspect;
mod pin;
mod register;
mod release;
mod reports;
mod suspend;

#[cfg(all(test, lockdep_loom))]
mod loom_model;

/// Options of an engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Prove raw-lock nesting: `config` wait types count as their own level (the kernel's
    /// `CONFIG_PROVE_RAW_LOCK_NESTING`).
    pub raw_lock_nesting: bool,
    /// Use the 2018–5.10 `fs_reclaim` rules instead of the current ones.
    pub legacy_fs_reclaim: bool,
}

/// A dependency between two classes, as introspection gives it.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// The class held.
    pub from: ClassId,
    /// The class acquired while `from` was held.
    pub to: ClassId,
    /// The dependency types seen (see [`crate::dep`]).
    pub dep: u8,
    /// 1 if the two were ever adjacent on a held stack.
    pub distance: u16,
    /// Where the dependency was first seen.
    pub stack: Arc<StackTrace>,
    /// The task that first created it.
    pub task: TaskRef,
    /// Where the held lock and the acquired lock were taken, in the acquisition this record was
    /// made from (given to observers of live acquisitions; `None` in introspection, which keeps
    /// no sites per edge).
    pub sites: Option<(Site, Site)>,
}

impl Dependency {
    /// The public view of a graph edge.
    pub(super) fn of(e: &graph::Edge) -> Dependency {
        Dependency {
            from: e.from,
            to: e.to,
            dep: e.dep,
            distance: e.distance,
            stack: e.stack.clone(),
            task: e.task.clone(),
            sites: None,
        }
    }
}

/// Something that wants to know about every new class and dependency as the engine finds them
/// (the recorder of cross-process graphs). Called with the engine's internal lock held: an
/// observer must not call back into the engine, and should be quick.
pub trait Observer: Send + Sync {
    /// A class was registered.
    fn class_registered(&self, class: &ClassInfo) {
        let _ = class;
    }
    /// A dependency was added, or gained a dependency type (`dep.dep` is the merged set).
    fn dependency_recorded(&self, dep: &Dependency, from: &ClassInfo, to: &ClassInfo) {
        let _ = (dep, from, to);
    }
    /// The program created a dependency that the engine reported and left out of its graph
    /// (it closed a cycle, or ordered an irq-safe lock before an irq-unsafe one). `dep.dep` is
    /// the type of this acquisition only. By default it is recorded like any other: merged
    /// with other processes' graphs, it still closes its cycle.
    fn dependency_rejected(&self, dep: &Dependency, from: &ClassInfo, to: &ClassInfo) {
        self.dependency_recorded(dep, from, to);
    }
    /// A class gained usage bits (`class.usage` is the new set).
    fn usage_changed(&self, class: &ClassInfo) {
        let _ = class;
    }
    /// A chain of held locks was validated (for the `/proc/lockdep_chains` view).
    fn chain_validated(&self, chain: &ChainInfo) {
        let _ = chain;
    }
    /// The process forked and this is the child (only the forking thread exists). Called by the
    /// process-wide driver, with no engine lock held; a recorder starts the child's own file.
    fn forked(&self) {}
    /// A class was zapped ([`Engine::unregister_instance`]): its dependencies are gone, and if
    /// it is used again it is a new lock — `class` is its snapshot under its new identity (new
    /// name and stable id). A recorder stops writing the old class and writes this one.
    fn class_unregistered(&self, class: &ClassInfo) {
        let _ = class;
    }
}

/// What [`Engine::pin`] returns, to give back to [`Engine::unpin`] (the kernel's
/// `pin_cookie`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinCookie(u32);

/// Counters for the `/proc/lockdep_stats` view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Classes registered.
    pub classes: usize,
    /// Direct dependencies.
    pub dependencies: usize,
    /// Validated chains in the engine table.
    pub chains: usize,
    /// Distinct stack traces stored.
    pub stack_traces: usize,
    /// Acquisitions validated on the slow path.
    pub chain_misses: u64,
    /// Task-level misses answered by the engine table.
    pub chain_table_hits: u64,
    /// Cycle searches run.
    pub cyclic_checks: u64,
    /// The deepest held stack seen.
    pub max_depth: usize,
    /// The longest search queue.
    pub max_bfs_queue: usize,
    /// Classes zapped so far: their key was unregistered (a self-keyed lock freed), and what
    /// they had learnt forgotten (see [`Engine::unregister_instance`]).
    pub zapped_classes: u64,
}

pub(crate) struct State {
    registry: FxHashMap<(KeyIdentity, u8), ClassId>,
    name_versions: FxHashMap<Arc<str>, Vec<KeyIdentity>>,
    pub(crate) graph: Graph,
    chains: EngineChains,
    pub(crate) stacks: StackStore,
    /// Problems reported: kind, classes, and the message of kinds that have one.
    reported: FxHashSet<(ReportKind, Vec<ClassId>, Option<String>)>,
    /// Sleeps in an invalid context reported: site and the context line.
    sleep_sites: FxHashSet<(Site, String)>,
    /// Where each class first got each usage bit: (class, bit index) -> stack.
    pub(crate) usage_traces: FxHashMap<(ClassId, u8), Arc<StackTrace>>,
    stats: Stats,
    /// Zapped class slots free for reuse, by subclass and wait types.
    zapped: FxHashMap<(u8, WaitType, WaitType), Vec<ClassId>>,
}

/// The validator: classes, dependency graph, chain table. Share it between tasks by reference;
/// its methods take `&self`.
pub struct Engine {
    /// Unique per engine in this process: tasks remember which engine their caches are for.
    id: u64,
    /// Whether lock maps cache their class (only one engine may use a map's one-slot cache: the
    /// process-wide one).
    cache_in_maps: bool,
    observer: Option<Box<dyn Observer>>,
    classes: boxcar::Vec<Class>,
    /// The union of every class's usage bits: when no class was ever used in an interrupt,
    /// no dependency can order an irq-safe lock before an irq-unsafe one.
    pub(crate) all_usage: std::sync::atomic::AtomicU16,
    pub(crate) state: Mutex<State>,
    raw_lock_nesting: AtomicBool,
    legacy_fs_reclaim: AtomicBool,
    /// Bumped by every [`Engine::unregister_instance`] that zapped a class: a task whose
    /// cached chains predate it drops them at its next slow-path operation.
    zaps: std::sync::atomic::AtomicU64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("classes", &self.classes.count())
            .field("options", &self.options())
            .finish()
    }
}

/// What `check_deadlock` found.
enum SameClass {
    /// No held lock of the class, or only allowed read recursion.
    None,
    /// The same class is held, but the acquisition is serialised by a held nest lock: no report
    /// and no dependencies.
    Nested,
    /// Recursive locking of the held entry at this index.
    Recursive(usize),
}

/// The id of the process-wide engine (there is one); other engines count up from 1. The
/// process-wide driver's fast path checks a task's caches against it without loading anything.
pub(crate) const PROCESS_WIDE_ID: u64 = u64::MAX;

impl Engine {
    /// An engine with default options.
    pub fn new() -> Engine {
        Engine::with_options(Options::default())
    }

    /// An engine with the given options.
    pub fn with_options(options: Options) -> Engine {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Engine {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cache_in_maps: false,
            observer: None,
            classes: boxcar::Vec::new(),
            all_usage: Default::default(),
            state: Mutex::new(State {
                registry: FxHashMap::default(),
                name_versions: FxHashMap::default(),
                graph: Graph::default(),
                chains: EngineChains::default(),
                stacks: StackStore::default(),
                reported: FxHashSet::default(),
                sleep_sites: FxHashSet::default(),
                usage_traces: FxHashMap::default(),
                stats: Stats::default(),
                zapped: FxHashMap::default(),
            }),
            raw_lock_nesting: AtomicBool::new(options.raw_lock_nesting),
            legacy_fs_reclaim: AtomicBool::new(options.legacy_fs_reclaim),
            zaps: Default::default(),
        }
    }

    /// An engine that tells `observer` about every new class and dependency (to record them).
    pub fn with_observer(options: Options, observer: Box<dyn Observer>) -> Engine {
        Engine {
            observer: Some(observer),
            ..Engine::with_options(options)
        }
    }

    pub(crate) fn observer(&self) -> Option<&dyn Observer> {
        self.observer.as_deref()
    }

    /// The process-wide engine: the only one whose classes are cached in the lock maps,
    /// recording to `observer` if given.
    pub(crate) fn process_wide(observer: Option<Box<dyn Observer>>) -> Engine {
        Engine {
            id: PROCESS_WIDE_ID,
            cache_in_maps: true,
            observer,
            ..Engine::new()
        }
    }

    /// Makes `task`'s private caches this engine's (a task handed to another engine starts
    /// afresh rather than use another engine's class ids).
    #[inline]
    pub(super) fn adopt(&self, task: &mut Task) {
        if task.engine != self.id {
            task.forget_cache();
            task.engine = self.id;
        }
        // Classes were zapped since the task's chains were validated: those chains may contain
        // them (and the fast path would take them without validating them again).
        let zaps = self.zaps.load(ZAPS_LOAD);
        if task.zaps_seen != zaps {
            task.forget_chains();
            task.zaps_seen = zaps;
        }
    }

    /// The current options.
    pub fn options(&self) -> Options {
        Options {
            raw_lock_nesting: self.raw_lock_nesting.load(Ordering::Relaxed),
            legacy_fs_reclaim: self.legacy_fs_reclaim.load(Ordering::Relaxed),
        }
    }

    /// Changes the options (takes effect for later events).
    pub fn set_options(&self, o: Options) {
        self.raw_lock_nesting
            .store(o.raw_lock_nesting, Ordering::Relaxed);
        self.legacy_fs_reclaim
            .store(o.legacy_fs_reclaim, Ordering::Relaxed);
    }
}

/// The ordering of the zap count's increment, after a class left the shared tables (see
/// `Engine::unregister_instance`); public for the loom model.
#[doc(hidden)]
pub const ZAPS_STORE: Ordering = Ordering::Release;
/// The ordering of a task's read of the zap count (`adopt`); public for the loom model.
#[doc(hidden)]
pub const ZAPS_LOAD: Ordering = Ordering::Acquire;

/// The kernel's message for a subclass out of range.
fn invalid_subclass(subclass: u8) -> String {
    format!("BUG: looking up invalid subclass: {subclass}")
}

pub(crate) fn task_ref(task: &Task) -> TaskRef {
    TaskRef {
        name: task.name.clone(),
        pid: task.pid,
        origin: task.origin.clone(),
    }
}

impl Task {
    /// Forgets the task's chains, and with them the fast path's keys, which name chains (see
    /// `HeldLock::repeat`): chain numbers are given out again from the root.
    pub(crate) fn forget_chains(&mut self) {
        self.chains.clear();
        self.held.forget_repeats();
    }

    /// Forgets the task's cached chains and classes (when the engine it was used with is
    /// replaced).
    pub fn forget_cache(&mut self) {
        self.forget_chains();
        self.classes.clear();
        self.class_memo.clear();
    }
}
