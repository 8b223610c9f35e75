//! Acquire: the kernel's `__lock_acquire` — the fast path for seen chains, and the slow path's recursive-locking and dependency checks.

use super::*;
use crate::engine::chain::{ChainElem, ChainId};
use crate::engine::held::{repeat_key, Repeat, MAX_FAST_DEPTH};
use crate::lock::map::SiteWords;
use crate::lock::map::CLASS_WORD_BITS;

impl Engine {
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
        // A `Default`-made lock's class is fixed by its first acquisition (a no-op otherwise).
        map.resolve_default(site);
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
    #[inline]
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
    pub(super) fn plain(task: &Task, how: &Acquire<'_>) -> bool {
        Self::plain_how(how) && task.fast_ready()
    }

    /// The acquisition's half of [`plain`](Self::plain): checked, subclass 0, no nest lock.
    #[inline(always)]
    fn plain_how(how: &Acquire<'_>) -> bool {
        how.check && how.subclass == 0 && how.nest_lock.is_none()
    }

    /// [`plain`](Self::plain) for a task its caller knows to be in the fast state (the
    /// process-wide driver, holding an open slot): only the acquisition is tested.
    #[inline(always)]
    fn plain_open(task: &Task, how: &Acquire<'_>) -> bool {
        debug_assert!(task.fast_ready());
        Self::plain_how(how)
    }

    /// The already-seen path proper. It applies no rule of its own: it only recognises a state
    /// in which every check of the slow path is vacuous, and then pushes the lock. That is: a
    /// [`plain`](Self::plain) acquisition (so neither the wait-context nor the sleep check can
    /// fail: no interrupt context, interrupts on, no spinning lock held, no non-blocking
    /// section) of a chain the task's `recent` table lists. A chain is listed there only after
    /// the slow path took it in that same state and found nothing, which also set every usage
    /// bit such an acquisition sets (usage bits are never cleared); and never a chain that ends
    /// in a spinning lock, so that the push leaves the task in the fast state. `class` is the
    /// map's class of subclass 0, and the task's caches must belong to the engine that gave it
    /// (the process-wide driver's tasks only ever see one engine). It reads the task and the
    /// map and writes only the task.
    #[inline(always)]
    pub(crate) fn acquire_seen(
        task: &mut Task,
        map: &LockMap,
        class: ClassId,
        how: &Acquire<'_>,
        site: Site,
    ) -> bool {
        task.fast_ready() && Self::acquire_open(task, map, class, how, site)
    }

    /// The shortest already-seen path: the acquisition the entry just above the top of the
    /// task's stack records (it was pushed there by the fast path and popped since), made
    /// again on the same stack, as a lock taken in a loop is. Equal [`repeat`] keys and
    /// instances mean the same class and map flags, the same read kind and trylock; and an
    /// entry with a key was pushed on the entry below it (the stack's invariant, see
    /// [`repeat`]), so on the same parent chain: that entry is exactly the one
    /// [`acquire_open`](Self::acquire_open) would push (listed as seen, which a key implies),
    /// but for its site. A lock made anew at the same address, of the same key, is that
    /// acquisition too (lock churn). No rule is skipped that the longer path applies.
    ///
    /// Only for a task of the process-wide engine, whose keys and map caches it owns, in the
    /// fast state ([`Task::fast_ready`]), as the driver knows of an open slot.
    ///
    /// [`repeat`]: crate::engine::held::HeldLock
    #[inline(always)]
    pub(crate) fn acquire_repeat(
        task: &mut Task,
        map: &LockMap,
        how: &Acquire<'_>,
        site: Site,
    ) -> bool {
        if !Self::plain_open(task, how) {
            return false;
        }
        let next = task.held.above_top();
        if next.instance != map.instance() {
            return false;
        }
        let word = map.class_word_to_compare();
        let key = repeat_key(word, how.read, how.trylock);
        if next.repeat.classed != key {
            // A lock made anew where the entry's lock was (lock churn: its class cache is
            // still empty), with the same key, flags, read kind and trylock: of the same
            // class, so the same acquisition. `key | flags` is the key the entry has but for
            // its class bits; an entry's key word is nonzero (a real key) where it has a
            // repeat key at all, so a map with no key word (self-keyed, a recycled class, or a
            // `Default` one not yet acquired) never matches here.
            let flags = u32::from(map.flags()) << CLASS_WORD_BITS;
            if word != 0 || next.repeat.unclassed != key | flags || map.key_word() != Some(next.key)
            {
                return false;
            }
        }
        match task.site_ref(site) {
            Some(site) => {
                task.held.push_repeat(site);
                true
            }
            None => false,
        }
    }

    /// [`acquire_seen`](Self::acquire_seen) for a task its caller knows to be in the fast state
    /// ([`Task::fast_ready`]), as the process-wide driver knows of an open slot: the same push,
    /// without asking again.
    #[inline(always)]
    pub(crate) fn acquire_open(
        task: &mut Task,
        map: &LockMap,
        class: ClassId,
        how: &Acquire<'_>,
        site: Site,
    ) -> bool {
        if !Self::plain_open(task, how) {
            return false;
        }
        let e = chain::elem(class, how.read, how.trylock);
        // In this state every held lock is of the current (process) context, so the chain
        // starts at the bottom of the stack, and with nothing held the task's chain is the root.
        let parent = task.chain();
        let (read, trylock) = (how.read, how.trylock);
        match task.chains.recent(parent, e) {
            Some((child, wait_inner)) => {
                Self::push_seen(task, map, class, read, trylock, site, child, wait_inner)
            }
            None => {
                Self::acquire_refilled(task, map, class, read, trylock, site.words(), parent, e)
            }
        }
    }

    /// [`acquire_open`](Self::acquire_open) after a miss in the task's `recent` table: the same
    /// answer from the full set of the task's fast chains, out of line (its arguments are
    /// values, so that the inlined caller keeps the acquisition's constants in registers).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn acquire_refilled(
        task: &mut Task,
        map: &LockMap,
        class: ClassId,
        read: ReadKind,
        trylock: bool,
        site: SiteWords,
        parent: ChainId,
        e: ChainElem,
    ) -> bool {
        match task.chains.refill(parent, e) {
            Some((child, wait_inner)) => Self::push_seen(
                task,
                map,
                class,
                read,
                trylock,
                Site::from_words(site),
                child,
                wait_inner,
            ),
            None => false,
        }
    }

    /// The push of a seen chain's lock: the task's chain with `map` on top is `child`, whose
    /// lock's inner wait type is `wait_inner`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn push_seen(
        task: &mut Task,
        map: &LockMap,
        class: ClassId,
        read: ReadKind,
        trylock: bool,
        site: Site,
        child: ChainId,
        wait_inner: WaitType,
    ) -> bool {
        let Some(site) = task.site_ref(site) else {
            return false;
        };
        // The key is made from the class this engine found, so it means that class whatever
        // engine the map's cache belongs to (only the process-wide one compares keys).
        let word = map.class_word_of(class);
        let repeat = if word == 0 {
            Repeat::NONE
        } else {
            Repeat::of(word, read, trylock)
        };
        task.held.push_open(HeldLock {
            instance: map.instance(),
            repeat,
            key: map.key_word().unwrap_or(0),
            map_flags: map.flags(),
            wait_inner,
            class,
            read,
            trylock,
            check: true,
            nest: 0,
            references: 0,
            pin_count: 0,
            chain: child,
            site,
            irq_context: 0,
            hardirqs_off: false,
            blocks_fast: false,
        });
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
    pub(super) fn acquire_map(
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
            map_flags: map.flags(),
            wait_inner: WaitType::Inv,
            class,
            read: how.read,
            trylock: how.trylock,
            check,
            nest,
            references: 0,
            pin_count: 0,
            chain: ROOT,
            site: task.intern_site(site),
            repeat: Repeat::NONE,
            key: 0,
            irq_context: task.context_bits,
            hardirqs_off: !task.irq.hardirqs_enabled,
            blocks_fast: false,
        };
        found.extend(self.acquire_held(task, h, nest_class));
        found
    }

    pub(super) fn acquire_held(
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

        if task.held.len() >= MAX_LOCK_DEPTH {
            return self.too_deep(task, &h).into_iter().collect();
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
        let parent = if chain_head { ROOT } else { task.chain() };
        let child = task.chains.child(parent, e);
        h.chain = child;

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
            && !h.wait_inner.spins()
            && task.held.len() < MAX_FAST_DEPTH
            && (h.trylock || task.chains.is_validated(child))
        {
            task.chains.allow_fast(parent, e, child, h.wait_inner);
        }
        task.held.push(h);
        found
    }

    /// The slow path: the chain is not in the task's cache.
    pub(super) fn validate_chain(
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
    pub(super) fn check_deadlock(&self, task: &Task, next: &HeldLock) -> SameClass {
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
    pub(super) fn check_prevs_add(
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

    pub(super) fn check_prev_add(
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
        let sites = Some((prev.site.get(), next.site.get()));
        if !self.knows_dependency(st, p, n) {
            if let Some(path) = self.closes_cycle(st, p, n) {
                let (stack, tref) = trace.get_or_insert_with(|| self.capture(st, task)).clone();
                self.tell_rejected(p, n, distance, &stack, &tref, sites);
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
                self.tell_rejected(p, n, distance, &stack, &tref, sites);
                return Err(Box::new(r));
            }
        }
        self.insert_dependency(st, p, n, distance, sites, |st| {
            trace.get_or_insert_with(|| self.capture(st, task)).clone()
        });
        Ok(())
    }

    pub(super) fn tell_rejected(
        &self,
        (prev, prev_read): (ClassId, ReadKind),
        (next, next_read): (ClassId, ReadKind),
        distance: u16,
        stack: &Arc<StackTrace>,
        task: &TaskRef,
        sites: Option<(Site, Site)>,
    ) {
        if let Some(obs) = &self.observer {
            let d = Dependency {
                from: prev,
                to: next,
                dep: dep_type(prev_read, next_read),
                distance,
                stack: stack.clone(),
                task: task.clone(),
                sites,
            };
            obs.dependency_rejected(&d, &self.class(prev).info(), &self.class(next).info());
        }
    }

    /// Whether `prev -> next` is recorded with this dependency type already. Such an edge can
    /// close no new cycle and make no new irq conflict: every cycle through it was searched for
    /// when the type was added, and a usage bit set since was checked against the graph.
    pub(super) fn knows_dependency(
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
    pub(super) fn closes_cycle(
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
    pub(super) fn insert_dependency(
        &self,
        st: &mut State,
        (prev, prev_read): (ClassId, ReadKind),
        (next, next_read): (ClassId, ReadKind),
        distance: u16,
        sites: Option<(Site, Site)>,
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
                sites,
                ..Dependency::of(e)
            };
            obs.dependency_recorded(&d, &self.class(prev).info(), &self.class(next).info());
        }
    }

    /// The chain of a circular report from the closing path: `#N` (the held lock) first, the
    /// lock being acquired last as `#0` with the current stack.
    pub(super) fn circular_chain(
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
}
