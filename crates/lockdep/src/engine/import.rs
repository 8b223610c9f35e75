//! Import: adding the classes and dependencies of other processes' recordings to this engine.

use super::*;

impl Engine {
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
        // A class the recording process could only name by its site may be named from the
        // source here.
        let named_by_site = site.is_some_and(|s| s == name);
        let c = self.push_class(
            &mut st,
            identity,
            name.into(),
            stable_id,
            0,
            (wait_inner, wait_outer),
            site.map(Into::into),
            named_by_site,
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
        self.import_dependency_at(from, to, dep, stack, task, None)
    }

    /// [`import_dependency`](Engine::import_dependency), with where the recording process took
    /// the held lock and the acquired one (`(held, acquired)`): a report it makes shows them on
    /// its lock lines.
    pub fn import_dependency_at(
        &self,
        from: ClassId,
        to: ClassId,
        dep: u8,
        stack: Arc<StackTrace>,
        task: TaskRef,
        sites: Option<(Site, Site)>,
    ) -> Vec<Report> {
        let (from_site, to_site) = sites.unwrap_or((Site::Unknown, Site::Unknown));
        let mut reports = Vec::new();
        let mut st = self.state.lock();
        for bit in [dep::DEP_EN, dep::DEP_ER, dep::DEP_SN, dep::DEP_SR] {
            if dep & bit == 0 {
                continue;
            }
            let prev_read = if bit & (dep::DEP_EN | dep::DEP_ER) != 0 {
                ReadKind::Exclusive
            } else {
                ReadKind::Shared
            };
            let next_read = if bit & (dep::DEP_ER | dep::DEP_SR) != 0 {
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
                self.insert_dependency(&mut st, p, n, 1, sites, move |st| {
                    (st.stacks.intern((*s2).clone()), t2)
                });
            }
            if let Some(path) = closing {
                let chain = self.circular_chain(&st, &path, to, stack.clone(), task.clone());
                // No instance: the locks lived in another process.
                let info = |c: ClassId, read, site| LockInfo {
                    class: self.class(c).info(),
                    instance: 0,
                    site,
                    read,
                };
                let report = Report {
                    kind: ReportKind::Circular,
                    task: task.clone(),
                    lock: Some(info(to, next_read, to_site)),
                    holding: Some(info(from, prev_read, from_site)),
                    chain,
                    held: vec![info(from, prev_read, from_site)],
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

    pub(super) fn capture(&self, st: &mut State, task: &Task) -> (Arc<StackTrace>, TaskRef) {
        let s = st.stacks.intern(task.capture_stack());
        (s, task_ref(task))
    }
}
