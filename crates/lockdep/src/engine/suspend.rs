//! The await rule: a blocking lock held while an async task is suspended.
//!
//! An async task gives its worker thread back at every `.await` that is not ready. If it still
//! holds a *blocking* lock (a `lockdep::Mutex`, a std lock, any [`LockMap`](crate::LockMap) not
//! marked [`async_lock`](crate::LockMap::async_lock)), every other task that wants the lock
//! blocks a whole worker thread until the holder is polled again — and a task on the holder's
//! own thread (a single-threaded executor) deadlocks it. Clippy's `await_holding_lock` guesses
//! this from the source; the driver of tracked futures (`lockdep::future`) knows it: a poll that
//! returns `Pending` is a suspension, and the task's held stack at that moment is exactly the set
//! of guards that live across it. So a guard dropped before the `.await` is never reported, and
//! one held across an await that happened to be ready is not either (the task did not suspend).
//!
//! The rule is the engine's, like every other: [`Engine::suspend`] is given the task at its
//! suspension and reports the first blocking hold not reported before, once per class and
//! acquisition site (the same lock taken in another place is another report).

use crate::engine::held::Task;
use crate::engine::Engine;
use crate::report::{Report, ReportKind};

impl Engine {
    /// Whether `task` holds a blocking lock (one whose map is not an async lock): the cheap
    /// question a driver asks at every suspension, with no lock and no allocation.
    #[inline]
    pub fn holds_blocking(task: &Task) -> bool {
        task.held.iter().any(|h| !h.is_async())
    }

    /// `task` suspends at an await point (its poll returned `Pending`): reports a blocking lock
    /// it holds (`WARNING: lock held across an await point!`), the first one not reported before
    /// for its class and the site where it was taken. The report shows the lock, where it was
    /// taken, the task's held locks and its stack at the suspension.
    ///
    /// ```
    /// use lockdep::{Acquire, Engine, LockMap, ReportKind, Site, Task};
    ///
    /// let engine = Engine::new();
    /// let mut task = Task::new("task", 1);
    /// let (blocking, tokio_like) = (LockMap::new(), LockMap::new().async_lock());
    /// engine.acquire(&mut task, &tokio_like, Acquire::exclusive(), Site::Unknown);
    /// assert!(engine.suspend(&task).is_none(), "an async lock may be held across an await");
    /// engine.acquire(&mut task, &blocking, Acquire::exclusive(), Site::Unknown);
    /// let r = engine.suspend(&task).expect("a blocking lock across an await");
    /// assert_eq!(r.kind, ReportKind::HeldAcrossAwait);
    /// assert!(engine.suspend(&task).is_none(), "once per class and site");
    /// ```
    pub fn suspend(&self, task: &Task) -> Option<Report> {
        if !Self::holds_blocking(task) {
            return None;
        }
        let mut found: Vec<Report> = task
            .held
            .iter()
            .filter(|h| !h.is_async())
            .map(|h| {
                let info = self.lock_info(h);
                // The de-duplication key: kind, class, and the site the lock was taken at.
                let key = format!("taken at {}", info.site);
                self.make_report(task, ReportKind::HeldAcrossAwait, Some(info), Some(key))
            })
            .collect();
        self.first_new(&mut found)
    }
}

#[cfg(test)]
mod tests {
    use crate::lock::map::{Acquire, LockMap, Site};
    use crate::{Engine, ReportKind, Task};

    #[test]
    fn each_blocking_hold_is_reported_once_per_class_and_site() {
        let engine = Engine::new();
        let mut task = Task::new("t", 1);
        let (a, b) = (LockMap::new(), LockMap::new());
        let here = Site::caller();
        let there = Site::Text("elsewhere.rs:1:1");
        engine.acquire(&mut task, &a, Acquire::exclusive(), here);
        engine.acquire(&mut task, &b, Acquire::exclusive(), here);
        let first = engine.suspend(&task).expect("a");
        let second = engine.suspend(&task).expect("b");
        assert_ne!(first.classes(), second.classes());
        assert!(engine.suspend(&task).is_none());
        engine.release(&mut task, &b, here);
        engine.release(&mut task, &a, here);
        assert!(!Engine::holds_blocking(&task));
        // The same class taken at another site is another report.
        engine.acquire(&mut task, &a, Acquire::exclusive(), there);
        let r = engine.suspend(&task).expect("a at another site");
        assert_eq!(r.kind, ReportKind::HeldAcrossAwait);
        assert_eq!(r.lock.as_ref().map(|l| l.site), Some(there));
        assert!(r
            .render()
            .contains("WARNING: lock held across an await point!"));
    }

    #[test]
    fn async_holds_and_an_empty_stack_are_not_reported() {
        let engine = Engine::new();
        let mut task = Task::new("t", 1);
        assert!(engine.suspend(&task).is_none());
        let a = LockMap::new().async_lock();
        engine.acquire(&mut task, &a, Acquire::exclusive(), Site::Unknown);
        assert!(!Engine::holds_blocking(&task));
        assert!(engine.suspend(&task).is_none());
    }
}
