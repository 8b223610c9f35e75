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
        if subclass == 0 && self.cache_in_maps {
            map.cache_class(c);
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
            return c;
        }
        let base: Arc<str> = class::default_name(key, instance).into();
        let stable_id = class::stable_id(&base, key, subclass);
        let site = class::key_site(key).map(Into::into);
        let named_by_site = matches!(key, Key::Site(_));
        self.push_class(
            &mut st,
            identity,
            base,
            stable_id,
            subclass,
            (inner, outer),
            site,
            named_by_site,
        )
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
}
