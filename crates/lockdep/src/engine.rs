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

use crate::chain::{self, ChainInfo, EngineChains, ROOT};
use crate::class::{self, Class, ClassId, ClassInfo, Key, KeyIdentity, MAX_SUBCLASSES};
use crate::graph::{self, dep_type, Direction, Graph, TaskRef};
use crate::held::{HeldLock, Task};
use crate::map::{Acquire, LockMap, ReadKind, Site, SiteRef};
use crate::report::{ChainLink, LockInfo, Report, ReportKind};
use crate::stack::{StackStore, StackTrace};
use crate::wait::WaitType;

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
    /// The dependency types seen (see [`crate::graph`]).
    pub dep: u8,
    /// 1 if the two were ever adjacent on a held stack.
    pub distance: u16,
    /// Where the dependency was first seen.
    pub stack: Arc<StackTrace>,
    /// The task that first created it.
    pub task: TaskRef,
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
            }),
            raw_lock_nesting: AtomicBool::new(options.raw_lock_nesting),
            legacy_fs_reclaim: AtomicBool::new(options.legacy_fs_reclaim),
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
    fn adopt(&self, task: &mut Task) {
        if task.engine != self.id {
            task.forget_cache();
            task.engine = self.id;
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

    // ===== classes =====

    pub(crate) fn class(&self, id: ClassId) -> &Class {
        &self.classes[id.index()]
    }

    /// A snapshot of a class.
    pub fn class_info(&self, id: ClassId) -> Option<ClassInfo> {
        self.classes.get(id.index()).map(Class::info)
    }

    /// Snapshots of every class, in registration order.
    pub fn classes(&self) -> Vec<ClassInfo> {
        let n = self.classes.count();
        (0..n)
            .filter_map(|i| self.classes.get(i).map(Class::info))
            .collect()
    }

    /// The class `map` has for `subclass`, registering it if needed.
    #[inline(never)]
    pub fn class_of(&self, task: &mut Task, map: &LockMap, subclass: u8) -> ClassId {
        if subclass == 0 && self.cache_in_maps {
            if let Some(c) = map.cached_class() {
                return c;
            }
        }
        self.adopt(task);
        let word = map.key_word();
        if let Some(w) = word {
            if let Some(&c) = task.classes.get(&(w, subclass)) {
                if subclass == 0 {
                    task.class_memo.put(w, c);
                    if self.cache_in_maps {
                        map.cache_class(c);
                    }
                }
                return c;
            }
        }
        let c = self.register(
            map.key(),
            map.instance(),
            subclass,
            map.wait_inner(),
            map.wait_outer(),
        );
        if let Some(w) = word {
            task.classes.insert((w, subclass), c);
            if subclass == 0 {
                task.class_memo.put(w, c);
            }
        }
        if subclass == 0 && self.cache_in_maps {
            map.cache_class(c);
        }
        c
    }

    fn register(
        &self,
        key: Key,
        instance: usize,
        subclass: u8,
        inner: WaitType,
        outer: WaitType,
    ) -> ClassId {
        let identity = key.identity(instance);
        let mut st = self.state.lock();
        if let Some(&c) = st.registry.get(&(identity.clone(), subclass)) {
            return c;
        }
        let base: Arc<str> = class::default_name(key, instance).into();
        let stable_id = class::stable_id(&base, key, subclass);
        let site = class::key_site(key).map(Into::into);
        self.push_class(
            &mut st, identity, base, stable_id, subclass, inner, outer, site,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn push_class(
        &self,
        st: &mut State,
        identity: KeyIdentity,
        base: Arc<str>,
        stable_id: u64,
        subclass: u8,
        inner: WaitType,
        outer: WaitType,
        site: Option<Arc<str>>,
    ) -> ClassId {
        let versions = st.name_versions.entry(base.clone()).or_default();
        let name_version = match versions.iter().position(|k| *k == identity) {
            Some(i) => i + 1,
            None => {
                versions.push(identity.clone());
                versions.len()
            }
        } as u32;
        let index = self.classes.count();
        assert!(
            (index as u32) < chain::MAX_CLASSES,
            "lockdep: too many lock classes ({index})"
        );
        let id = ClassId(index as u32);
        let pushed = self.classes.push(Class {
            id,
            stable_id,
            base_name: base,
            subclass,
            name_version,
            wait_inner: inner,
            wait_outer: outer,
            usage: Default::default(),
            site,
        });
        debug_assert_eq!(
            pushed, index,
            "classes are only pushed under the state lock"
        );
        st.registry.insert((identity, subclass), id);
        st.graph.ensure_class(id);
        st.stats.classes += 1;
        if let Some(obs) = &self.observer {
            obs.class_registered(&self.class(id).info());
        }
        id
    }

    // ===== acquire =====

    /// Records an acquisition of `map` by `task` (the kernel's `lock_acquire`) and validates it.
    /// Returns the problem found, if any.
    #[inline]
    pub fn acquire(
        &self,
        task: &mut Task,
        map: &LockMap,
        how: Acquire<'_>,
        site: Site,
    ) -> Option<Report> {
        if self.acquire_fast(task, map, &how, site) {
            return None;
        }
        self.acquire_slow(task, map, how, site)
    }

    /// The already-seen path, for any task: checks that the task's caches belong to this engine
    /// and finds the class, then [`Engine::acquire_seen`].
    #[inline]
    pub(crate) fn acquire_fast(
        &self,
        task: &mut Task,
        map: &LockMap,
        how: &Acquire<'_>,
        site: Site,
    ) -> bool {
        if task.engine != self.id || !Self::plain(task, how) {
            return false;
        }
        let class = match map.cached_class() {
            Some(c) if self.cache_in_maps => c,
            // A new lock of a known class (lock churn): the task's own lookup tables.
            _ => match Self::memoised_class(task, map, self.cache_in_maps) {
                Some(c) => c,
                None => self.class_of(task, map, 0),
            },
        };
        Self::acquire_seen(task, map, class, how, site)
    }

    /// The class of subclass 0 of a map whose own class cache is empty (a lock just made), from
    /// the task's memo, without a lock or an allocation. With `fill` (only for the engine that
    /// owns the maps' caches: the process-wide one) the map caches it from now on.
    #[inline(never)]
    pub(crate) fn memoised_class(task: &Task, map: &LockMap, fill: bool) -> Option<ClassId> {
        let c = task.class_memo.get(map.key_word()?)?;
        if fill {
            map.cache_class(c);
        }
        Some(c)
    }

    /// Whether the fast path may consider this acquisition at all: a plain checked one
    /// (subclass 0, no nest lock) by a task in the state of [`Task::fast_ready`].
    #[inline(always)]
    fn plain(task: &Task, how: &Acquire<'_>) -> bool {
        how.check && how.subclass == 0 && how.nest_lock.is_none() && task.fast_ready()
    }

    /// The already-seen path proper. It applies no rule of its own: it only recognises a state
    /// in which every check of the slow path is vacuous, and then pushes the lock. That is: a
    /// [`plain`](Self::plain) acquisition (so neither the wait-context nor the sleep check can
    /// fail: no interrupt context, interrupts on, no spinning lock held, no non-blocking
    /// section) of a chain the task's `recent` table lists. A chain is listed there only after
    /// the slow path took it in that same state and found nothing, which also set every usage
    /// bit such an acquisition sets (usage bits are never cleared). `class` is the map's class
    /// of subclass 0, and the task's caches must belong to the engine that gave it (the
    /// process-wide driver's tasks only ever see one engine). It reads the task and the map and
    /// writes only the task.
    #[inline(always)]
    pub(crate) fn acquire_seen(
        task: &mut Task,
        map: &LockMap,
        class: ClassId,
        how: &Acquire<'_>,
        site: Site,
    ) -> bool {
        if !Self::plain(task, how) {
            return false;
        }
        let e = chain::elem(class, how.read, how.trylock);
        // In this state every held lock is of the current (process) context, so the chain
        // starts at the bottom of the stack, and with nothing held the task's chain is the root.
        debug_assert!(!task.held.is_empty() || task.chain == ROOT);
        let parent = task.chain;
        let Some((child, wait_inner)) = task
            .chains
            .recent(parent, e)
            .or_else(|| task.chains.refill(parent, e))
        else {
            return false;
        };
        let Some(site) = task.site_ref(site) else {
            return false;
        };
        if !task.held.has_room() {
            return false;
        }
        task.held.push(HeldLock {
            instance: map.instance(),
            movable: map.is_movable(),
            wait_inner,
            class,
            read: how.read,
            trylock: how.trylock,
            check: true,
            nest: 0,
            references: 0,
            pin_count: 0,
            prev_chain: parent,
            site,
            irq_context: 0,
            hardirqs_off: false,
            blocks_fast: false,
        });
        task.chain = child;
        true
    }

    #[inline(never)]
    pub(crate) fn acquire_slow(
        &self,
        task: &mut Task,
        map: &LockMap,
        how: Acquire<'_>,
        site: Site,
    ) -> Option<Report> {
        self.adopt(task);
        // A sleeping lock (inner wait type `Sleep`: a mutex, an rwsem) may sleep before it is
        // taken, so its acquisition performs `might_sleep`, as `mutex_lock` and `down_read` do.
        // It is judged on the state before the push, and reported only if the acquisition
        // itself found nothing (it comes last in the order of checks).
        // The report is made now, so that it shows the held locks without the new one.
        let sleep = if map.wait_inner() == WaitType::Sleep && !how.trylock {
            self.sleep_context(task)
                .map(|ctx| self.sleep_report(task, site, ctx))
        } else {
            None
        };
        let mut found = self.acquire_map(task, map, how, site);
        if found.is_empty() {
            if let Some(r) = sleep {
                return self.sleep_once(r, site);
            }
        }
        self.first_new(&mut found)
    }

    /// Every problem an acquisition finds, in the order of the checks; the caller reports the
    /// first one not reported before.
    fn acquire_map(
        &self,
        task: &mut Task,
        map: &LockMap,
        how: Acquire<'_>,
        site: Site,
    ) -> Vec<Report> {
        let mut check = how.check;
        let mut subclass = how.subclass;
        let mut found = Vec::new();
        if subclass >= MAX_SUBCLASSES {
            let c = self.class_of(task, map, 0);
            found.push(self.make_report(
                task,
                ReportKind::Misuse,
                Some(self.lock_info_of(c, map.instance(), site, how.read)),
                Some(invalid_subclass(subclass)),
            ));
            subclass = 0;
            check = false;
        }
        let class = self.class_of(task, map, subclass);
        let (nest, nest_class) = match how.nest_lock {
            Some(n) => (n.instance(), Some(self.class_of(task, n, 0))),
            None => (0, None),
        };
        let h = HeldLock {
            instance: map.instance(),
            movable: map.is_movable(),
            wait_inner: WaitType::Inv,
            class,
            read: how.read,
            trylock: how.trylock,
            check,
            nest,
            references: 0,
            pin_count: 0,
            prev_chain: ROOT,
            site: task.intern_site(site),
            irq_context: task.context_bits,
            hardirqs_off: !task.irq.hardirqs_enabled,
            blocks_fast: false,
        };
        found.extend(self.acquire_held(task, h, nest_class));
        found
    }

    fn acquire_held(
        &self,
        task: &mut Task,
        mut h: HeldLock,
        nest_class: Option<ClassId>,
    ) -> Vec<Report> {
        // Nest-lock merging: the same class directly on top, under a nest lock, becomes a
        // reference on the top entry (no new entry, no checks).
        if h.nest != 0 {
            if let Some(top) = task.held.last_mut() {
                if top.class == h.class && top.irq_context == h.irq_context {
                    top.references = top.references.max(1) + h.references.max(1);
                    return Vec::new();
                }
            }
        }

        let fast_before = task.fast_ready();
        let class = self.class(h.class);
        h.wait_inner = class.wait_inner;
        let mut found = Vec::new();
        // The order of the checks is the order of the reports: wait context, usage state, nest
        // lock, then (on the slow path) recursion and the new dependencies.
        found.extend(self.check_wait_context(task, &h, class));
        found.extend(self.mark_usage(task, &h, class));

        let first = task.first_in_context();
        let chain_head = first == task.held.len();
        let e = chain::elem_of(&h);
        let parent = if chain_head { ROOT } else { task.chain };
        let child = task.chains.child(parent, e);
        h.prev_chain = task.chain;

        if h.nest != 0 && !task.held.iter().any(|x| x.instance == h.nest) {
            found.push(self.nested_not_taken(task, &h, nest_class));
        }
        // The fast path: a chain validated before adds nothing. A chain is cached only when its
        // validation found no problem, so a problem is found again (and reported once).
        if !h.trylock && h.check && !task.chains.is_validated(child) {
            found.extend(self.validate_chain(task, &h, first, chain_head, child, e));
        }

        // From now on the fast path may take this chain in the state it was taken in now, if
        // that is the fast path's state and the acquisition is one the fast path makes: then
        // every check above was vacuous or has set what it needed (usage bits), and the chain
        // is validated (or is a trylock, which validates nothing).
        if fast_before
            && found.is_empty()
            && h.check
            && h.nest == 0
            && (h.trylock || task.chains.is_validated(child))
        {
            task.chains.allow_fast(parent, e, child, h.wait_inner);
        }
        task.held.push(h);
        task.chain = child;
        found
    }

    /// The slow path: the chain is not in the task's cache.
    fn validate_chain(
        &self,
        task: &mut Task,
        h: &HeldLock,
        first: usize,
        chain_head: bool,
        child: chain::ChainId,
        e: chain::ChainElem,
    ) -> Option<Report> {
        let elems = chain::chain_elems(&task.held, first, e).into_boxed_slice();
        let mut st = self.state.lock();
        if st.chains.contains(&elems) {
            st.stats.chain_table_hits += 1;
            drop(st);
            task.chains.set_validated(child);
            return None;
        }
        st.stats.chain_misses += 1;
        st.stats.max_depth = st.stats.max_depth.max(task.held.len() + 1);

        let same = self.check_deadlock(task, h);
        if let SameClass::Recursive(i) = same {
            return Some(self.recursive_report(task, i, h));
        }
        if !chain_head && !matches!(same, SameClass::Nested) {
            if let Err(r) = self.check_prevs_add(&mut st, task, h, first) {
                return Some(*r);
            }
        }
        st.stats.max_bfs_queue = st.graph.max_bfs_queue;
        if let Some(obs) = &self.observer {
            obs.chain_validated(&ChainInfo {
                irq_context: h.irq_context,
                classes: elems.iter().map(|e| chain::elem_class(*e)).collect(),
            });
        }
        st.chains.insert(elems, h.irq_context);
        drop(st);
        task.chains.set_validated(child);
        None
    }

    /// Same-class recursion (the kernel's `check_deadlock`). Scans the whole held stack.
    fn check_deadlock(&self, task: &Task, next: &HeldLock) -> SameClass {
        let mut nest = false;
        for (i, prev) in task.held.iter().enumerate() {
            if next.nest != 0 && prev.instance == next.nest {
                nest = true;
            }
            if prev.class != next.class {
                continue;
            }
            // A recursive read after any read of the class is allowed.
            if next.read == ReadKind::SharedRecursive && prev.read.is_read() {
                continue;
            }
            if nest {
                return SameClass::Nested;
            }
            return SameClass::Recursive(i);
        }
        SameClass::None
    }

    /// Adds dependencies from the held locks to `next`: from the top down, within the current irq
    /// context, stopping after the first lock that was not a trylock (older locks are connected
    /// through it). Trylocked held locks do get dependencies.
    fn check_prevs_add(
        &self,
        st: &mut State,
        task: &Task,
        next: &HeldLock,
        first: usize,
    ) -> Result<(), Box<Report>> {
        let mut trace: Option<(Arc<StackTrace>, TaskRef)> = None;
        let mut distance = 1u16;
        for i in (first..task.held.len()).rev() {
            let prev = &task.held[i];
            if prev.check {
                self.check_prev_add(st, task, i, next, distance, &mut trace)?;
            }
            if !prev.trylock {
                break;
            }
            distance = distance.saturating_add(1);
        }
        Ok(())
    }

    fn check_prev_add(
        &self,
        st: &mut State,
        task: &Task,
        prev_index: usize,
        next: &HeldLock,
        distance: u16,
        trace: &mut Option<(Arc<StackTrace>, TaskRef)>,
    ) -> Result<(), Box<Report>> {
        let prev = &task.held[prev_index];
        let (p, n) = ((prev.class, prev.read), (next.class, next.read));
        if !self.knows_dependency(st, p, n) {
            if let Some(path) = self.closes_cycle(st, p, n) {
                let (stack, tref) = trace.get_or_insert_with(|| self.capture(st, task)).clone();
                self.tell_rejected(p, n, distance, &stack, &tref);
                let chain = self.circular_chain(st, &path, next.class, stack.clone(), tref);
                let mut r =
                    self.make_report(task, ReportKind::Circular, Some(self.lock_info(next)), None);
                r.holding = Some(self.lock_info(prev));
                r.chain = chain;
                r.stack = Some(stack);
                return Err(Box::new(r));
            }
            if let Some(r) = self.check_irq_usage(st, task, prev, next) {
                let (stack, tref) = trace.get_or_insert_with(|| self.capture(st, task)).clone();
                self.tell_rejected(p, n, distance, &stack, &tref);
                return Err(Box::new(r));
            }
        }
        self.insert_dependency(st, p, n, distance, |st| {
            trace.get_or_insert_with(|| self.capture(st, task)).clone()
        });
        Ok(())
    }

    fn tell_rejected(
        &self,
        (prev, prev_read): (ClassId, ReadKind),
        (next, next_read): (ClassId, ReadKind),
        distance: u16,
        stack: &Arc<StackTrace>,
        task: &TaskRef,
    ) {
        if let Some(obs) = &self.observer {
            let d = Dependency {
                from: prev,
                to: next,
                dep: dep_type(prev_read, next_read),
                distance,
                stack: stack.clone(),
                task: task.clone(),
            };
            obs.dependency_rejected(&d, &self.class(prev).info(), &self.class(next).info());
        }
    }

    /// Whether `prev -> next` is recorded with this dependency type already. Such an edge can
    /// close no new cycle and make no new irq conflict: every cycle through it was searched for
    /// when the type was added, and a usage bit set since was checked against the graph.
    fn knows_dependency(
        &self,
        st: &State,
        (prev, prev_read): (ClassId, ReadKind),
        (next, next_read): (ClassId, ReadKind),
    ) -> bool {
        let dep = dep_type(prev_read, next_read);
        st.graph
            .find(prev, next)
            .is_some_and(|e| st.graph.edge(e).dep & dep == dep)
    }

    /// Would `prev -> next` close a strong cycle? Search forward from `next` for `prev`:
    /// entering `next` by a recursive read means only an exclusive edge may leave it, and
    /// arriving at `prev` by an `-(xR)->` edge closes a strong cycle only if `prev` is held
    /// exclusively. Returns the closing path (edges from `next` to `prev`).
    fn closes_cycle(
        &self,
        st: &mut State,
        (prev, prev_read): (ClassId, ReadKind),
        (next, next_read): (ClassId, ReadKind),
    ) -> Option<graph::Path> {
        st.stats.cyclic_checks += 1;
        let prev_exclusive = prev_read == ReadKind::Exclusive;
        // The graph's topological order answers most "no path" cases without a search.
        st.graph.search_to(
            next,
            next_read == ReadKind::SharedRecursive,
            prev,
            |only_xr| prev_exclusive || !only_xr,
        )
    }

    /// The one place a dependency enters the graph: adds `prev -> next`, or merges its
    /// dependency type into the existing edge, and tells the observer of any change. `trace`
    /// gives the stack and task of a new edge.
    fn insert_dependency(
        &self,
        st: &mut State,
        (prev, prev_read): (ClassId, ReadKind),
        (next, next_read): (ClassId, ReadKind),
        distance: u16,
        trace: impl FnOnce(&mut State) -> (Arc<StackTrace>, TaskRef),
    ) {
        let dep = dep_type(prev_read, next_read);
        let existing = st.graph.find(prev, next).map(|e| st.graph.edge(e).dep);
        let made = if existing.is_none() {
            Some(trace(st))
        } else {
            None
        };
        let new = st.graph.add(prev, next, dep, distance, || {
            made.expect("made above for a new edge")
        });
        if new {
            st.stats.dependencies += 1;
        }
        let changed = existing.map_or(true, |old| old & dep != dep);
        if let (Some(obs), true) = (&self.observer, changed) {
            let e = st
                .graph
                .edge(st.graph.find(prev, next).expect("just added"));
            let d = Dependency {
                from: e.from,
                to: e.to,
                dep: e.dep,
                distance: e.distance,
                stack: e.stack.clone(),
                task: e.task.clone(),
            };
            obs.dependency_recorded(&d, &self.class(prev).info(), &self.class(next).info());
        }
    }

    /// The chain of a circular report from the closing path: `#N` (the held lock) first, the
    /// lock being acquired last as `#0` with the current stack.
    fn circular_chain(
        &self,
        st: &State,
        path: &graph::Path,
        next: ClassId,
        stack: Arc<StackTrace>,
        task: TaskRef,
    ) -> Vec<ChainLink> {
        let mut chain = Vec::with_capacity(path.edges.len() + 1);
        for eid in path.edges.iter().rev() {
            let e = st.graph.edge(*eid);
            chain.push(ChainLink {
                class: self.class(e.to).info(),
                stack: e.stack.clone(),
                task: e.task.clone(),
            });
        }
        chain.push(ChainLink {
            class: self.class(next).info(),
            stack,
            task,
        });
        chain
    }

    // ===== import (recordings of other processes) =====

    /// Registers a class recorded by another process: identified by its stable id, named as it
    /// was printed there. Importing the same stable id again returns the same class.
    /// `usage` bits recorded for it are added to the class's.
    pub fn import_class(
        &self,
        name: &str,
        stable_id: u64,
        wait_inner: WaitType,
        wait_outer: WaitType,
        site: Option<&str>,
        usage: u16,
    ) -> ClassId {
        let identity = KeyIdentity::Imported(stable_id);
        let mut st = self.state.lock();
        if let Some(&c) = st.registry.get(&(identity.clone(), 0)) {
            self.class(c).usage.fetch_or(usage, Ordering::Relaxed);
            self.all_usage.fetch_or(usage, Ordering::Relaxed);
            return c;
        }
        let c = self.push_class(
            &mut st,
            identity,
            name.into(),
            stable_id,
            0,
            wait_inner,
            wait_outer,
            site.map(Into::into),
        );
        self.class(c).usage.fetch_or(usage, Ordering::Relaxed);
        self.all_usage.fetch_or(usage, Ordering::Relaxed);
        c
    }

    /// Adds a dependency recorded elsewhere, through the same cycle check as a live acquisition:
    /// each dependency type in `dep` is added unless it closes a strong cycle, which is reported
    /// (with `stack` and `task` as the closing acquisition's).
    pub fn import_dependency(
        &self,
        from: ClassId,
        to: ClassId,
        dep: u8,
        stack: Arc<StackTrace>,
        task: TaskRef,
    ) -> Vec<Report> {
        let mut reports = Vec::new();
        let mut st = self.state.lock();
        for bit in [graph::DEP_EN, graph::DEP_ER, graph::DEP_SN, graph::DEP_SR] {
            if dep & bit == 0 {
                continue;
            }
            let prev_read = if bit & (graph::DEP_EN | graph::DEP_ER) != 0 {
                ReadKind::Exclusive
            } else {
                ReadKind::Shared
            };
            let next_read = if bit & (graph::DEP_ER | graph::DEP_SR) != 0 {
                ReadKind::SharedRecursive
            } else {
                ReadKind::Exclusive
            };
            let (p, n) = ((from, prev_read), (to, next_read));
            let closing = if self.knows_dependency(&st, p, n) {
                None
            } else {
                self.closes_cycle(&mut st, p, n)
            };
            if closing.is_none() {
                let (s2, t2) = (stack.clone(), task.clone());
                self.insert_dependency(&mut st, p, n, 1, move |st| {
                    (st.stacks.intern((*s2).clone()), t2)
                });
            }
            if let Some(path) = closing {
                let chain = self.circular_chain(&st, &path, to, stack.clone(), task.clone());
                let info = |c: ClassId, read| LockInfo {
                    class: self.class(c).info(),
                    instance: 0,
                    site: Site::Unknown,
                    read,
                };
                let report = Report {
                    kind: ReportKind::Circular,
                    task: task.clone(),
                    lock: Some(info(to, next_read)),
                    holding: Some(info(from, prev_read)),
                    chain,
                    held: vec![info(from, prev_read)],
                    stack: Some(stack.clone()),
                    message: None,
                    raw_lock_nesting: self.options().raw_lock_nesting,
                    irq: None,
                };
                if let Some(r) = self.once(&mut st, report) {
                    reports.push(r);
                }
            }
        }
        reports
    }

    fn capture(&self, st: &mut State, task: &Task) -> (Arc<StackTrace>, TaskRef) {
        let s = st.stacks.intern(task.capture_stack());
        (s, task_ref(task))
    }

    // ===== release =====

    /// Records the release of `map` by `task` (the kernel's `lock_release`). Releases may come in
    /// any order: the locks above the released one are acquired again, which re-validates them.
    #[inline]
    pub fn release(&self, task: &mut Task, map: &LockMap, site: Site) -> Option<Report> {
        if Self::release_fast(task, map) {
            return None;
        }
        self.release_slow(task, map, site)
    }

    /// The common case: the most recent lock, neither pinned nor merged. Nothing above it to
    /// acquire again, and the task's chain goes back to what it was.
    #[inline(always)]
    pub(crate) fn release_fast(task: &mut Task, map: &LockMap) -> bool {
        match task.held.last() {
            Some(top)
                if top.instance == map.instance()
                    && top.plain()
                    && top.irq_context == task.context_bits =>
            {
                task.chain = top.prev_chain;
                task.held.discard_top();
                true
            }
            _ => false,
        }
    }

    #[inline(never)]
    fn release_slow(&self, task: &mut Task, map: &LockMap, site: Site) -> Option<Report> {
        let class = self.class_of(task, map, 0);
        self.release_instance(task, map.instance(), class, site)
    }

    pub(crate) fn release_instance(
        &self,
        task: &mut Task,
        instance: usize,
        class: ClassId,
        site: Site,
    ) -> Option<Report> {
        let Some(i) = task.find_held(instance, Some(class)) else {
            return self.not_held(task, class, instance, site);
        };
        let mut report = None;
        if task.held[i].pin_count > 0 {
            let info = self.lock_info(&task.held[i]);
            report = self.misuse(task, Some(info), "WARNING: releasing a pinned lock".into());
        }
        if task.held[i].references > 0 {
            let h = task.held.get_mut(i);
            h.references -= 1;
            if h.references > 0 {
                return report;
            }
        }
        let upper = task.held.split_off(i + 1);
        let me = task.held.pop().expect("index found above");
        task.chain = me.prev_chain;
        for h in upper {
            let mut found = self.acquire_held(task, h, None);
            if report.is_none() {
                report = self.first_new(&mut found);
            }
        }
        report
    }

    /// Takes back the most recent acquisition of `instance`, without validation: the driver
    /// decided the real lock will not be taken (a report in panic mode).
    pub fn undo_acquire(&self, task: &mut Task, instance: usize) {
        let Some(top) = task.held.last_mut() else {
            return;
        };
        if top.references > 1 {
            top.references -= 1;
        } else if top.instance == instance {
            let h = task.held.pop().expect("non-empty");
            task.chain = h.prev_chain;
        }
    }

    /// Pops the stack down to entry `i` (inclusive), lets `change` edit that entry, and acquires
    /// it and everything above it again (`lock_set_class`, `lock_downgrade`).
    fn rebuild_from(
        &self,
        task: &mut Task,
        i: usize,
        change: impl FnOnce(&mut HeldLock),
    ) -> Option<Report> {
        let mut upper = task.held.split_off(i);
        task.chain = upper[0].prev_chain;
        change(&mut upper[0]);
        let mut report = None;
        for h in upper {
            let mut found = self.acquire_held(task, h, None);
            if report.is_none() {
                report = self.first_new(&mut found);
            }
        }
        report
    }

    fn held_index(&self, task: &mut Task, map: &LockMap) -> Result<usize, ClassId> {
        let class = self.class_of(task, map, 0);
        task.find_held(map.instance(), Some(class)).ok_or(class)
    }

    /// "bad unlock balance": releasing (or changing) a lock the task does not hold.
    fn not_held(&self, task: &Task, class: ClassId, instance: usize, site: Site) -> Option<Report> {
        let lock = self.lock_info_of(class, instance, site, ReadKind::Exclusive);
        let r = self.make_report(task, ReportKind::BadUnlock, Some(lock), None);
        self.once_unlocked(r)
    }

    /// Changes the subclass of a held lock (`lock_set_subclass`); the locks from it up are
    /// re-validated under the new class.
    pub fn set_subclass(
        &self,
        task: &mut Task,
        map: &LockMap,
        subclass: u8,
        site: Site,
    ) -> Option<Report> {
        self.move_to_class(task, map, map, subclass, site)
    }

    /// Turns a held write lock into a read hold (`lock_downgrade`), re-validating the stack.
    pub fn downgrade(&self, task: &mut Task, map: &LockMap, site: Site) -> Option<Report> {
        let i = match self.held_index(task, map) {
            Ok(i) => i,
            Err(c) => return self.not_held(task, c, map.instance(), site),
        };
        if task.held[i].read.is_read() {
            let info = self.lock_info(&task.held[i]);
            return self.misuse(task, Some(info), "WARNING: downgrading a read lock".into());
        }
        self.rebuild_from(task, i, |h| {
            h.read = ReadKind::Shared;
            h.site = SiteRef::new(site);
        })
    }

    /// Whether `task` holds `map`, optionally with the given read kind.
    pub fn is_held(&self, task: &Task, map: &LockMap, read: Option<ReadKind>) -> bool {
        let class = if self.cache_in_maps {
            map.cached_class()
        } else {
            None
        };
        task.held.iter().any(|h| {
            (h.instance == map.instance() || (h.references > 0 && Some(h.class) == class))
                && read.map_or(true, |r| h.read == r)
        })
    }

    /// Reports a held lock inside memory being freed or re-initialised (the kernel's
    /// `debug_check_no_locks_freed`). The entry is dropped from the stack so that the task's
    /// state stays consistent.
    pub fn check_freed(&self, task: &mut Task, instance: usize) -> Option<Report> {
        let i = task.held.iter().position(|h| h.instance == instance)?;
        let info = self.lock_info(&task.held[i]);
        let r = self.make_report(task, ReportKind::HeldLockFreed, Some(info), None);
        let class = task.held[i].class;
        let r2 = self.release_instance(task, instance, class, Site::Unknown);
        self.once_unlocked(r).or(r2)
    }

    /// The task is exiting: reports the locks it still holds, and forgets them.
    pub fn exit(&self, task: &mut Task) -> Option<Report> {
        if task.held.is_empty() {
            return None;
        }
        let r = self.make_report(task, ReportKind::LocksHeldAtExit, None, None);
        task.held.clear();
        task.chain = ROOT;
        self.once_unlocked(r)
    }

    /// Checks an assertion about `map` (`lockdep_assert_held` and friends): `want` is `Some(kind)`
    /// for "held as kind", `None` for "held at all"; `held == false` asserts it is not held.
    pub fn assert_held(
        &self,
        task: &mut Task,
        map: &LockMap,
        held: bool,
        want: Option<ReadKind>,
        site: Site,
    ) -> Option<Report> {
        let is = match want {
            Some(ReadKind::Exclusive) => self.is_held(task, map, Some(ReadKind::Exclusive)),
            Some(_) => {
                self.is_held(task, map, Some(ReadKind::Shared))
                    || self.is_held(task, map, Some(ReadKind::SharedRecursive))
            }
            None => self.is_held(task, map, None),
        };
        if is == held {
            return None;
        }
        let class = self.class_of(task, map, 0);
        let what = match (held, want) {
            (false, _) => "lockdep_assert_not_held",
            (true, None) => "lockdep_assert_held",
            (true, Some(ReadKind::Exclusive)) => "lockdep_assert_held_write",
            (true, Some(_)) => "lockdep_assert_held_read",
        };
        let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
        let msg = format!("{what}({}) failed at {site}", info.class.name);
        self.misuse_kind(task, ReportKind::Assertion, Some(info), msg)
    }

    /// Whether `next` may be taken in the task's context (the kernel's `check_wait_context`): its
    /// outer wait type must not exceed the innermost wait type of the context (the interrupt
    /// context, then every lock held in it). Trylocks and unchecked (`Inv`) maps are exempt.
    fn check_wait_context(&self, task: &Task, next: &HeldLock, class: &Class) -> Option<Report> {
        if class.wait_inner == WaitType::Inv || next.trylock {
            return None;
        }
        let nesting = self.options().raw_lock_nesting;
        let outer = if class.wait_outer == WaitType::Inv {
            class.wait_inner
        } else {
            class.wait_outer
        };
        let max = WaitType::Sleep.number(nesting) + 1;
        let context = if task.irq.hardirq_context > 0 {
            if task.irq.hardirq_threaded {
                WaitType::Config.number(nesting)
            } else {
                WaitType::Spin.number(nesting)
            }
        } else if task.irq.softirq_context > 0 {
            WaitType::Config.number(nesting)
        } else {
            max
        };
        let mut inner = context;
        for h in &task.held[task.first_in_context()..] {
            if h.wait_inner != WaitType::Inv {
                inner = inner.min(h.wait_inner.number(nesting));
            }
        }
        if outer.number(nesting) <= inner {
            return None;
        }
        Some(self.make_report(
            task,
            ReportKind::InvalidWaitContext,
            Some(self.lock_info(next)),
            Some(format!("context-{{{context}:{context}}}")),
        ))
    }

    // ===== pinning, class changes, assertions =====

    /// Pins a held lock (`lock_pin_lock`): releasing it before [`Engine::unpin`] is reported.
    /// Returns the cookie to unpin with, or a report if the lock is not held.
    pub fn pin(
        &self,
        task: &mut Task,
        map: &LockMap,
        site: Site,
    ) -> Result<PinCookie, Box<Report>> {
        let class = self.class_of(task, map, 0);
        match task.find_held(map.instance(), Some(class)) {
            Some(i) => {
                task.pin_serial = task.pin_serial.wrapping_add(1) % 0xffff;
                let cookie = PinCookie(1 + task.pin_serial);
                task.held.get_mut(i).pin_count += cookie.0;
                Ok(cookie)
            }
            None => {
                let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
                let r = self.make_report(
                    task,
                    ReportKind::Misuse,
                    Some(info),
                    Some("WARNING: pinning an unheld lock".into()),
                );
                Err(Box::new(r))
            }
        }
    }

    /// Pins a held lock again with a cookie from [`Engine::pin`] (`lock_repin_lock`).
    pub fn repin(
        &self,
        task: &mut Task,
        map: &LockMap,
        cookie: PinCookie,
        site: Site,
    ) -> Option<Report> {
        let class = self.class_of(task, map, 0);
        match task.find_held(map.instance(), Some(class)) {
            Some(i) => {
                task.held.get_mut(i).pin_count += cookie.0;
                None
            }
            None => {
                let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
                self.misuse(task, Some(info), "WARNING: pinning an unheld lock".into())
            }
        }
    }

    /// Unpins a lock pinned with `cookie` (`lock_unpin_lock`).
    pub fn unpin(
        &self,
        task: &mut Task,
        map: &LockMap,
        cookie: PinCookie,
        site: Site,
    ) -> Option<Report> {
        let class = self.class_of(task, map, 0);
        let problem = match task.find_held(map.instance(), Some(class)) {
            None => "WARNING: unpinning an unheld lock",
            Some(i) if task.held[i].pin_count == 0 => "WARNING: unpinning an unpinned lock",
            Some(i) if task.held[i].pin_count < cookie.0 => {
                task.held.get_mut(i).pin_count = 0;
                "WARNING: pin count corrupted"
            }
            Some(i) => {
                task.held.get_mut(i).pin_count -= cookie.0;
                return None;
            }
        };
        let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
        self.misuse(task, Some(info), problem.into())
    }

    /// Moves a held lock to the class of `key` and `subclass` (`lock_set_class`): it and the
    /// locks above it are acquired again, which re-validates them under the new class. The map's
    /// own key is unchanged for later acquisitions (use [`LockMap::set_key`] while it is not
    /// held for that).
    pub fn set_class(
        &self,
        task: &mut Task,
        map: &LockMap,
        key: &'static crate::LockClassKey,
        subclass: u8,
        site: Site,
    ) -> Option<Report> {
        let keyed = LockMap::named(key).with_wait(map.wait_inner(), map.wait_outer());
        self.move_to_class(task, map, &keyed, subclass, site)
    }

    /// Moves the held `map` to the class `class_map` has for `subclass`, and acquires it and the
    /// locks above it again (`lock_set_class` and `lock_set_subclass`).
    fn move_to_class(
        &self,
        task: &mut Task,
        map: &LockMap,
        class_map: &LockMap,
        subclass: u8,
        site: Site,
    ) -> Option<Report> {
        let i = match self.held_index(task, map) {
            Ok(i) => i,
            Err(c) => return self.not_held(task, c, map.instance(), site),
        };
        if subclass >= MAX_SUBCLASSES {
            let info = self.lock_info(&task.held[i]);
            return self.misuse(task, Some(info), invalid_subclass(subclass));
        }
        let class = self.class_of(task, class_map, subclass);
        self.rebuild_from(task, i, |h| {
            h.class = class;
            h.site = SiteRef::new(site);
        })
    }

    /// Asserts that the task holds no lock (`lockdep_assert_none_held_once`).
    pub fn assert_none_held(&self, task: &Task, site: Site) -> Option<Report> {
        if task.held.is_empty() {
            return None;
        }
        let msg = format!("lockdep_assert_none_held() failed at {site}");
        self.misuse_kind(task, ReportKind::Assertion, None, msg)
    }

    // ===== contexts =====

    /// Disables hard interrupts in `task` (`local_irq_disable`).
    pub fn irq_disable(&self, task: &mut Task) -> Option<Report> {
        task.update_context(|irq, _| irq.hardirqs_enabled = false);
        None
    }

    /// Enables hard interrupts in `task` (`local_irq_enable`).
    pub fn irq_enable(&self, task: &mut Task) -> Option<Report> {
        if task.irq.hardirqs_enabled {
            return None; // redundant: nothing changes
        }
        task.update_context(|irq, _| irq.hardirqs_enabled = true);
        // Every held lock is now held with interrupts enabled.
        let mut found: Vec<Report> = self.mark_held_locks(task, 2).into_iter().collect();
        if found.is_empty() && task.irq.softirqs_enabled {
            found.extend(self.mark_held_locks(task, 6));
        }
        self.first_new(&mut found)
    }

    /// Disables soft interrupts in `task` (`local_bh_disable`).
    pub fn bh_disable(&self, task: &mut Task) -> Option<Report> {
        task.update_context(|irq, _| irq.softirqs_enabled = false);
        None
    }

    /// Enables soft interrupts in `task` (`local_bh_enable`).
    pub fn bh_enable(&self, task: &mut Task) -> Option<Report> {
        if task.irq.softirqs_enabled {
            return None;
        }
        task.update_context(|irq, _| irq.softirqs_enabled = true);
        if !task.irq.hardirqs_enabled {
            return None; // marked when hard interrupts come back on
        }
        let mut found: Vec<Report> = self.mark_held_locks(task, 6).into_iter().collect();
        self.first_new(&mut found)
    }

    /// Enters hardirq context (a marker only: it changes no enable flag).
    pub fn hardirq_enter(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.hardirq_context += 1);
    }

    /// Leaves hardirq context.
    pub fn hardirq_exit(&self, task: &mut Task) {
        task.update_context(|irq, _| {
            irq.hardirq_context = irq.hardirq_context.saturating_sub(1);
            if irq.hardirq_context == 0 {
                irq.hardirq_threaded = false;
            }
        });
    }

    /// Marks the current hardirq as threaded.
    pub fn hardirq_threaded(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.hardirq_threaded = true);
    }

    /// Enters softirq context (a marker only).
    pub fn softirq_enter(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.softirq_context += 1);
    }

    /// Leaves softirq context.
    pub fn softirq_exit(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.softirq_context = irq.softirq_context.saturating_sub(1));
    }

    /// Starts a section in which the task must not sleep (`non_block_start`); sections nest.
    pub fn non_block_start(&self, task: &mut Task) {
        task.update_context(|_, non_block| *non_block += 1);
    }

    /// Ends a non-blocking section; an end without a start is reported.
    pub fn non_block_end(&self, task: &mut Task, site: Site) -> Option<Report> {
        if task.non_block_count == 0 {
            let msg = format!("non_block_end() at {site} without a matching non_block_start()");
            return self.misuse_kind(task, ReportKind::NonBlockImbalance, None, msg);
        }
        task.update_context(|_, non_block| *non_block -= 1);
        None
    }

    /// "This code may sleep" (`might_sleep`): reported when the task is in a non-blocking
    /// section, has interrupts disabled, runs in interrupt context, or holds a spinning lock.
    pub fn might_sleep(&self, task: &mut Task, site: Site) -> Option<Report> {
        let ctx = self.sleep_context(task)?;
        let r = self.sleep_report(task, site, ctx);
        self.sleep_once(r, site)
    }

    /// Why the task may not sleep now, if it may not: `(in_atomic, irqs_disabled)`. In atomic
    /// context means in an interrupt, with soft interrupts disabled, or holding a spinning lock.
    fn sleep_context(&self, task: &Task) -> Option<(bool, bool)> {
        let irqs_disabled = !task.irq.hardirqs_enabled;
        let in_irq = task.irq.hardirq_context > 0 || task.irq.softirq_context > 0;
        let spinning = task.held.iter().any(|h| {
            matches!(
                h.wait_inner,
                WaitType::Spin | WaitType::Config | WaitType::Free
            )
        });
        let in_atomic = in_irq || spinning || !task.irq.softirqs_enabled;
        (in_atomic || irqs_disabled || task.non_block_count > 0)
            .then_some((in_atomic, irqs_disabled))
    }

    fn sleep_report(
        &self,
        task: &Task,
        site: Site,
        (in_atomic, irqs_disabled): (bool, bool),
    ) -> Report {
        let msg = format!(
            "BUG: sleeping function called from invalid context at {site}\n\
             in_atomic(): {}, irqs_disabled(): {}, non_block: {}, pid: {}, name: {}",
            in_atomic as u8, irqs_disabled as u8, task.non_block_count, task.pid, task.name
        );
        self.make_report(task, ReportKind::SleepInvalidContext, None, Some(msg))
    }

    /// Reports a sleep in an invalid context once per site and context (not per class: there
    /// may be no lock at all).
    fn sleep_once(&self, r: Report, site: Site) -> Option<Report> {
        let msg = r.message.as_deref().unwrap_or_default();
        let context = msg.lines().nth(1).unwrap_or_default();
        // The context line without pid and name.
        let context = context
            .split(", pid:")
            .next()
            .unwrap_or_default()
            .to_string();
        let mut st = self.state.lock();
        st.sleep_sites.insert((site, context)).then_some(r)
    }

    // ===== report helpers =====

    fn nested_not_taken(&self, task: &Task, h: &HeldLock, nest_class: Option<ClassId>) -> Report {
        let mut r = self.make_report(
            task,
            ReportKind::NestedLockNotTaken,
            Some(self.lock_info(h)),
            None,
        );
        r.holding =
            nest_class.map(|c| self.lock_info_of(c, h.nest, Site::Unknown, ReadKind::Exclusive));
        r
    }

    fn recursive_report(&self, task: &Task, i: usize, next: &HeldLock) -> Report {
        let mut r = self.make_report(
            task,
            ReportKind::Recursive,
            Some(self.lock_info(next)),
            None,
        );
        r.holding = Some(self.lock_info(&task.held[i]));
        r
    }

    fn misuse(&self, task: &Task, lock: Option<LockInfo>, message: String) -> Option<Report> {
        self.misuse_kind(task, ReportKind::Misuse, lock, message)
    }

    /// A report of `kind` with a message, de-duplicated like every other report.
    pub(crate) fn misuse_kind(
        &self,
        task: &Task,
        kind: ReportKind,
        lock: Option<LockInfo>,
        message: String,
    ) -> Option<Report> {
        let r = self.make_report(task, kind, lock, Some(message));
        self.once_unlocked(r)
    }

    /// A report with the task's held locks and current stack.
    pub(crate) fn make_report(
        &self,
        task: &Task,
        kind: ReportKind,
        lock: Option<LockInfo>,
        message: Option<String>,
    ) -> Report {
        Report {
            kind,
            task: task_ref(task),
            lock,
            holding: None,
            chain: Vec::new(),
            held: self.held_infos(task),
            stack: Some(Arc::new(task.capture_stack())),
            message,
            raw_lock_nesting: self.options().raw_lock_nesting,
            irq: None,
        }
    }

    /// The first of `found` that was not reported before (it is then marked reported).
    pub(crate) fn first_new(&self, found: &mut Vec<Report>) -> Option<Report> {
        if found.is_empty() {
            return None;
        }
        let mut st = self.state.lock();
        for r in found.drain(..) {
            if let Some(r) = self.once(&mut st, r) {
                return Some(r);
            }
        }
        None
    }

    fn once(&self, st: &mut State, r: Report) -> Option<Report> {
        st.reported
            .insert((r.kind, r.classes(), r.message.clone()))
            .then_some(r)
    }

    fn once_unlocked(&self, r: Report) -> Option<Report> {
        let mut st = self.state.lock();
        self.once(&mut st, r)
    }

    pub(crate) fn lock_info(&self, h: &HeldLock) -> LockInfo {
        self.lock_info_of(h.class, h.instance, h.site.get(), h.read)
    }

    fn lock_info_of(
        &self,
        class: ClassId,
        instance: usize,
        site: Site,
        read: ReadKind,
    ) -> LockInfo {
        LockInfo {
            class: self.class(class).info(),
            instance,
            site,
            read,
        }
    }

    pub(crate) fn held_infos(&self, task: &Task) -> Vec<LockInfo> {
        task.held.iter().map(|h| self.lock_info(h)).collect()
    }

    // ===== introspection =====

    /// Every dependency, in the order they were found.
    pub fn dependencies(&self) -> Vec<Dependency> {
        let st = self.state.lock();
        st.graph
            .edges
            .iter()
            .map(|e| Dependency {
                from: e.from,
                to: e.to,
                dep: e.dep,
                distance: e.distance,
                stack: e.stack.clone(),
                task: e.task.clone(),
            })
            .collect()
    }

    /// The direct dependency `from -> to`, if recorded.
    pub fn dependency(&self, from: ClassId, to: ClassId) -> Option<Dependency> {
        let st = self.state.lock();
        let e = st.graph.edge(st.graph.find(from, to)?);
        Some(Dependency {
            from: e.from,
            to: e.to,
            dep: e.dep,
            distance: e.distance,
            stack: e.stack.clone(),
            task: e.task.clone(),
        })
    }

    /// The number of classes reachable from `c` (forward) and reaching it (backward).
    pub fn reachable_counts(&self, c: ClassId) -> (usize, usize) {
        let mut st = self.state.lock();
        (
            st.graph.count_reachable(c, Direction::Forward),
            st.graph.count_reachable(c, Direction::Backward),
        )
    }

    /// Every validated chain.
    pub fn chains(&self) -> Vec<ChainInfo> {
        self.state.lock().chains.infos()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let st = self.state.lock();
        let mut s = st.stats.clone();
        s.chains = st.chains.set.len();
        s.stack_traces = st.stacks.len();
        s.classes = self.classes.count();
        s
    }
}

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
    /// Forgets the task's cached chains and classes (when the engine it was used with is
    /// replaced).
    pub fn forget_cache(&mut self) {
        self.chains.clear();
        self.classes.clear();
        self.class_memo.clear();
    }
}
