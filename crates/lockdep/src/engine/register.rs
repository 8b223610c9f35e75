//! Classes: registering a lock map's key and subclass as a class, and looking classes up.

use super::*;

impl Engine {
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
        if subclass == 0 && self.cache_in_maps {
            // A recycled class, kept by its map apart from the cache (see below): looked up
            // here, after `adopt`, every time.
            if let Some(c) = map.recycled_class() {
                return c;
            }
        }
        if map.is_unresolved() {
            // A `Default`-made lock not yet acquired: its construction site's class for now,
            // remembered nowhere (the first acquisition fixes the real one).
            return self.register(
                map.key(),
                map.instance(),
                subclass,
                map.wait_inner(),
                map.wait_outer(),
            );
        }
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
        // A recycled class slot (a zapped self-keyed class given to a new lock) is not cached
        // in the map: another thread may still list chains it validated with the slot's old
        // lock, and only its slow path (`adopt`, at the zap count) forgets them. Uncached, every
        // acquisition of the new lock comes here, through `adopt`, so no thread takes the new
        // lock's chains as seen on the strength of the old one's. The map keeps the class
        // apart, for its unregistering when it is freed.
        if subclass == 0 && self.cache_in_maps {
            if self.class(c).lifetime.load(Ordering::Relaxed) == 0 {
                map.cache_class(c);
            } else {
                map.note_recycled_class(c);
            }
        }
        c
    }

    pub(super) fn register(
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
            if self.cache_in_maps && subclass == 0 && matches!(key, Key::Instance) {
                // The caller's map has no cached class (else it would not be here), yet its
                // address has one: either a racing first lookup of this map, or another map
                // that was classed here and moved, keeping the id in its cache.
                self.class(c).shared.store(true, Ordering::Relaxed);
            }
            return c;
        }
        if matches!(key, Key::Instance) {
            if let Some(c) =
                self.reuse_zapped(&mut st, identity.clone(), instance, subclass, inner, outer)
            {
                return c;
            }
        }
        let base: Arc<str> = class::default_name(key, instance).into();
        let stable_id = class::stable_id(&base, key, subclass);
        let site = class::key_site(key).map(Into::into);
        let named_by_site = matches!(key, Key::Site(_));
        let c = self.push_class(
            &mut st,
            identity,
            base,
            stable_id,
            subclass,
            (inner, outer),
            site,
            named_by_site,
        );
        if matches!(key, Key::Instance) {
            self.class(c).instance.store(instance, Ordering::Relaxed);
        }
        c
    }

    /// [`unregister_instance`](Self::unregister_instance) for the lock whose class (of any
    /// subclass) is `c`, wherever the lock is now: a self-keyed class is registered under the
    /// address its lock had then, and a lock may have moved since. Nothing for another class.
    ///
    /// Only while `c` is still the class registered at that address: a map whose class was
    /// shared with another one (see `Class::shared`) may find it unregistered, and the address
    /// now another lock's, whose class must not be zapped while that lock lives.
    pub(crate) fn unregister_class(&self, c: ClassId) {
        let Some(class) = self.classes.get(c.index()) else {
            return;
        };
        let instance = class.instance.load(Ordering::Relaxed);
        if instance == 0 {
            return;
        }
        let identity = KeyIdentity::Instance(instance);
        let mut st = self.state.lock();
        if st.registry.get(&(identity, class.subclass)) == Some(&c) {
            self.unregister_locked(&mut st, instance);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_class(
        &self,
        st: &mut State,
        identity: KeyIdentity,
        base: Arc<str>,
        stable_id: u64,
        subclass: u8,
        (inner, outer): (WaitType, WaitType),
        site: Option<Arc<str>>,
        named_by_site: bool,
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
            named_by_site,
            source_name: Default::default(),
            lifetime: Default::default(),
            instance: Default::default(),
            shared: Default::default(),
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

    /// Forgets what the engine learnt about the lock that was its own key at `instance` (a
    /// self-keyed map, being freed): the kernel's `lockdep_unregister_key` and `zap_class`. The
    /// dependencies from and to its classes leave the graph, the chains that contain them leave
    /// the chain table, their usage bits and reported problems are forgotten, and the key is
    /// unregistered: a new lock made later at the same address is a new class instead of
    /// inheriting the old lock's orders. The zapped slot is given to the next self-keyed lock
    /// of the same kind, under a new name (`ADDRESS~N`) and stable id (told to the observer,
    /// so a recording never mixes two locks), so short-lived locks do not pile up classes.
    /// Tasks drop their cached chains at their next slow-path operation (a generation count),
    /// which keeps them from taking a zapped chain without validating it again.
    ///
    /// ```
    /// use lockdep::{Acquire, Engine, LockMap, Site, Task};
    ///
    /// let engine = Engine::new();
    /// let mut task = Task::new("t", 1);
    /// let (a, b) = (LockMap::self_keyed(), LockMap::new());
    /// engine.acquire(&mut task, &a, Acquire::exclusive(), Site::Unknown);
    /// engine.acquire(&mut task, &b, Acquire::exclusive(), Site::Unknown);
    /// engine.release(&mut task, &b, Site::Unknown);
    /// engine.release(&mut task, &a, Site::Unknown);
    /// assert_eq!(engine.dependencies().len(), 1);
    /// engine.unregister_instance(a.instance());
    /// assert!(engine.dependencies().is_empty());
    /// ```
    ///
    /// A class that two lock maps may share (one classed at `instance` moved away, keeping its
    /// cached class, and another was made there) keeps what it learnt and its slot, as the
    /// other map may still use it; only the address is unregistered.
    pub fn unregister_instance(&self, instance: usize) {
        let mut st = self.state.lock();
        self.unregister_locked(&mut st, instance);
    }

    /// [`unregister_instance`](Self::unregister_instance) with the state lock held.
    fn unregister_locked(&self, st: &mut State, instance: usize) {
        let identity = KeyIdentity::Instance(instance);
        let classes: Vec<ClassId> = (0..MAX_SUBCLASSES)
            .filter_map(|s| st.registry.get(&(identity.clone(), s)).copied())
            .collect();
        if classes.is_empty() {
            return;
        }
        let shared = classes
            .iter()
            .any(|&c| self.class(c).shared.load(Ordering::Relaxed));
        if shared {
            for &c in &classes {
                st.registry
                    .remove(&(identity.clone(), self.class(c).subclass));
            }
            return;
        }
        for &c in &classes {
            st.registry
                .remove(&(identity.clone(), self.class(c).subclass));
            st.graph.remove_class(c);
            st.chains.remove_class(c);
            st.reported.retain(|(_, cs, _)| !cs.contains(&c));
            st.usage_traces.retain(|(k, _), _| *k != c);
            let class = self.class(c);
            class.usage.store(0, Ordering::Relaxed);
            st.stats.zapped_classes += 1;
            if let Some(obs) = &self.observer {
                obs.class_unregistered(&class.info());
            }
            st.zapped
                .entry((class.subclass, class.wait_inner, class.wait_outer))
                .or_default()
                .push(c);
        }
        st.stats.dependencies = st.graph.edges.len();
        self.zaps.fetch_add(1, ZAPS_STORE);
    }

    /// A zapped class slot for a new self-keyed lock at `instance`, if one with the same
    /// subclass and wait types is free: its fields are then the new lock's (the name and stable
    /// id come from the address and the lifetime, the rest is equal), so that the classes of
    /// short-lived locks do not pile up.
    fn reuse_zapped(
        &self,
        st: &mut State,
        identity: KeyIdentity,
        instance: usize,
        subclass: u8,
        inner: WaitType,
        outer: WaitType,
    ) -> Option<ClassId> {
        let c = st.zapped.get_mut(&(subclass, inner, outer))?.pop()?;
        let class = self.class(c);
        class.instance.store(instance, Ordering::Relaxed);
        class.lifetime.fetch_add(1, Ordering::Relaxed);
        st.registry.insert((identity, subclass), c);
        if let Some(obs) = &self.observer {
            obs.class_registered(&class.info());
        }
        Some(c)
    }
}
