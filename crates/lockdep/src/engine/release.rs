//! Release: popping held locks, the unlock-balance rules, and re-acquiring the locks above a released one.

use super::*;

impl Engine {
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
    /// acquire again, and the task's chain goes back to what it was (the next entry's).
    #[inline(always)]
    pub(crate) fn release_fast(task: &mut Task, map: &LockMap) -> bool {
        match task.held.last() {
            Some(top)
                if top.instance == map.instance()
                    && top.plain()
                    && top.irq_context == task.context_bits =>
            {
                task.held.discard_top();
                true
            }
            _ => false,
        }
    }

    /// [`release_fast`](Self::release_fast) for a task its caller knows to be open
    /// ([`Task::fast_open`]): every held lock is plain and of the current context, so the top
    /// one being `map` is the whole question.
    #[inline(always)]
    pub(crate) fn release_top(task: &mut Task, map: &LockMap) -> bool {
        // The stack's sentinel is never any map.
        let top = task.held.top();
        if top.instance != map.instance() {
            return false;
        }
        debug_assert!(top.plain() && top.irq_context == task.context_bits);
        task.held.discard_open_top();
        true
    }

    #[inline(never)]
    pub(super) fn release_slow(
        &self,
        task: &mut Task,
        map: &LockMap,
        site: Site,
    ) -> Option<Report> {
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
            if task.overflow > 0 {
                // The release of a lock taken past the depth limit, which was not pushed.
                task.overflow -= 1;
                return None;
            }
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
        task.held.pop().expect("index found above");
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
        if task.overflow > 0
            && task.held.len() >= MAX_LOCK_DEPTH
            && task.held.last().is_some_and(|t| t.instance != instance)
        {
            // An acquisition past the depth limit: counted, not pushed.
            task.overflow -= 1;
            return;
        }
        let Some(top) = task.held.last_mut() else {
            return;
        };
        if top.references > 1 {
            top.references -= 1;
        } else if top.instance == instance {
            task.held.pop().expect("non-empty");
        }
    }

    /// Pops the stack down to entry `i` (inclusive), lets `change` edit that entry, and acquires
    /// it and everything above it again (`lock_set_class`, `lock_downgrade`).
    pub(super) fn rebuild_from(
        &self,
        task: &mut Task,
        i: usize,
        change: impl FnOnce(&mut HeldLock),
    ) -> Option<Report> {
        let mut upper = task.held.split_off(i);
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

    pub(super) fn held_index(&self, task: &mut Task, map: &LockMap) -> Result<usize, ClassId> {
        let class = self.class_of(task, map, 0);
        task.find_held(map.instance(), Some(class)).ok_or(class)
    }

    /// "bad unlock balance": releasing (or changing) a lock the task does not hold.
    pub(super) fn not_held(
        &self,
        task: &Task,
        class: ClassId,
        instance: usize,
        site: Site,
    ) -> Option<Report> {
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
        task.overflow = 0;
        if task.held.is_empty() {
            return None;
        }
        let r = self.make_report(task, ReportKind::LocksHeldAtExit, None, None);
        task.held.clear();
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
    pub(super) fn check_wait_context(
        &self,
        task: &Task,
        next: &HeldLock,
        class: &Class,
    ) -> Option<Report> {
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
}
