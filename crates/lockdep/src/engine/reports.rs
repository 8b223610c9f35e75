//! Report helpers: every report the engine makes is built here.

use super::*;

impl Engine {
    pub(super) fn nested_not_taken(
        &self,
        task: &Task,
        h: &HeldLock,
        nest_class: Option<ClassId>,
    ) -> Report {
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

    pub(super) fn recursive_report(&self, task: &Task, i: usize, next: &HeldLock) -> Report {
        let mut r = self.make_report(
            task,
            ReportKind::Recursive,
            Some(self.lock_info(next)),
            None,
        );
        r.holding = Some(self.lock_info(&task.held[i]));
        let held = &task.held[i];
        r.message =
            Some(recursion_fix(held.instance == next.instance, held.read, next.read).into());
        r
    }

    /// An acquisition past [`MAX_LOCK_DEPTH`]: counted, not pushed or validated, and reported
    /// the first time for the task (the kernel's "BUG: MAX_LOCK_DEPTH too low!", which turns
    /// the whole validator off; here only that task's deeper locks go unvalidated).
    pub(super) fn too_deep(&self, task: &mut Task, h: &HeldLock) -> Option<Report> {
        task.overflow += 1;
        if task.overflow_reported {
            return None;
        }
        task.overflow_reported = true;
        let message = format!(
            "turning off the locking correctness validator for the locks {task} takes deeper \
             than this.\ndepth: {depth}  max: {MAX_LOCK_DEPTH}!",
            task = task_ref(task),
            depth = task.held.len(),
        );
        Some(self.make_report(
            task,
            ReportKind::MaxLockDepth,
            Some(self.lock_info(h)),
            Some(message),
        ))
    }

    pub(super) fn misuse(
        &self,
        task: &Task,
        lock: Option<LockInfo>,
        message: String,
    ) -> Option<Report> {
        self.misuse_kind(task, ReportKind::Misuse, lock, message)
    }

    /// A report of `kind` with a message, de-duplicated like every other report.
    /// A [`ReportKind::WwMisuse`] about `map`: the kernel's `DEBUG_LOCKS_WARN_ON(what)` and
    /// what it means (`why`).
    pub(super) fn ww_misuse(
        &self,
        task: &mut Task,
        map: &LockMap,
        site: Site,
        what: &str,
        why: &str,
    ) -> Option<Report> {
        let class = self.class_of(task, map, 0);
        let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
        let message = format!("DEBUG_LOCKS_WARN_ON({what})\n{why}");
        self.misuse_kind(task, ReportKind::WwMisuse, Some(info), message)
    }

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

    pub(super) fn once(&self, st: &mut State, r: Report) -> Option<Report> {
        st.reported
            .insert((r.kind, r.classes(), r.message.clone()))
            .then_some(r)
    }

    pub(super) fn once_unlocked(&self, r: Report) -> Option<Report> {
        let mut st = self.state.lock();
        self.once(&mut st, r)
    }

    pub(crate) fn lock_info(&self, h: &HeldLock) -> LockInfo {
        self.lock_info_of(h.class, h.instance, h.site.get(), h.read)
    }

    pub(super) fn lock_info_of(
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
}

/// What a recursive-locking report tells the user to do: which fix applies depends on whether
/// the same lock was taken again (and how) or two locks of one class were nested.
fn recursion_fix(same_instance: bool, held: ReadKind, next: ReadKind) -> &'static str {
    match (same_instance, held.is_read(), next.is_read()) {
        (true, true, true) => {
            "the same lock is read again by its reader: a non-recursive read can block \
             behind a waiting writer (a self-deadlock); take nested reads with read_recursive"
        }
        (true, false, false) => {
            "the same lock is taken again by its holder: a self-deadlock; if re-entry is \
             intended, use a ReentrantMutex"
        }
        (true, _, _) => {
            "the same lock is taken again by the thread that holds it, once for read and once \
             for write (or upgradable read): the second acquisition waits for the first \
             (a self-deadlock)"
        }
        (false, _, _) => {
            "two locks of one class are nested. If that is intended: lock the inner one with \
             lock_nested(n) when the order is fixed (parent then child); take them under a nest \
             lock (lock_nest_lock) when many are held at once and an outer lock serialises them; \
             or give them separate classes (with_key / lock_class!) when they are different locks \
             (a lock made by Default is classed by its construction site and the field it is \
             first locked through: see docs/SEMANTICS.md)"
        }
    }
}
