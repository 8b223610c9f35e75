//! Movable holds (`send_guard`): a release on a thread that does not hold the lock is queued for
//! the holder, which claims it at its next hook; a thread that exits holding movable locks leaves
//! them as orphans for the release to come.

use super::*;

/// Releases of movable holds waiting for their holder, and holds left by exited threads.
pub(super) struct Remote {
    pub(super) pending: Vec<usize>,
    pub(super) orphans: Vec<usize>,
}

pub(super) static REMOTE: Mutex<Remote> = Mutex::new(Remote {
    pending: Vec::new(),
    orphans: Vec::new(),
});
pub(super) fn lock_remote() -> std::sync::MutexGuard<'static, Remote> {
    REMOTE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A movable hold released by a thread that does not hold it: settle an orphan, or queue the
/// release for the holder.
pub(super) fn forward_release(instance: usize) {
    let mut remote = lock_remote();
    if let Some(i) = remote.orphans.iter().position(|x| *x == instance) {
        remote.orphans.swap_remove(i);
        return;
    }
    remote.pending.push(instance);
    PENDING.fetch_add(1, Ordering::Relaxed);
}

/// Applies the queued releases of locks this task holds.
pub(super) fn claim_remote(engine: &Engine, task: &mut Task) -> Vec<Report> {
    let mut reports = Vec::new();
    if pending() == 0 {
        return reports;
    }
    let mut remote = lock_remote();
    let mut i = 0;
    while i < remote.pending.len() {
        let instance = remote.pending[i];
        match task
            .held
            .iter()
            .rposition(|h| h.instance == instance && h.movable())
        {
            Some(pos) => {
                remote.pending.swap_remove(i);
                PENDING.fetch_sub(1, Ordering::Relaxed);
                let class = task.held[pos].class;
                if let Some(r) = engine.release_instance(task, instance, class, Site::Unknown) {
                    reports.push(r);
                }
            }
            None => i += 1,
        }
    }
    reports
}

/// The end of a task (a thread exiting, a tracked future dropped): claims the releases queued
/// for it, leaves its movable holds as orphans (another thread or task may release them later),
/// and reports the other locks it still holds. The caller delivers the reports.
pub(super) fn retire(task: &mut Task) -> Vec<Report> {
    let mut reports = claim_remote(&ENGINE, task);
    {
        let mut remote = lock_remote();
        task.held.retain(|h| {
            let keep = !h.movable();
            if h.movable() {
                remote.orphans.push(h.instance);
            }
            keep
        });
    }
    reports.extend(ENGINE.exit(task));
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11, defect 5: a release queued for a holder that is idle (here: for nobody) used to
    /// close every thread's fast path until it was claimed, so that each lock call of every
    /// thread took the slow path and the queue's mutex.
    #[test]
    fn a_queued_release_keeps_other_threads_on_the_fast_path() {
        std::thread::spawn(|| {
            let m = LockMap::new();
            let lock = || {
                m.acquire(Acquire::exclusive());
                m.release();
            };
            for _ in 0..3 {
                lock();
            }
            // A release queued for a holder that is not this thread.
            let ghost = Box::into_raw(Box::new(0u64)) as usize;
            forward_release(ghost);
            // The first hook after it claims (nothing of this thread's) on the slow path.
            lock();
            let before = slow_entries();
            for _ in 0..1000 {
                lock();
            }
            let slow = slow_entries() - before;
            {
                let mut remote = lock_remote();
                remote.pending.retain(|&i| i != ghost);
                PENDING.fetch_sub(1, Ordering::Relaxed);
            }
            // SAFETY: made by `Box::into_raw` above, used only as a number since.
            drop(unsafe { Box::from_raw(ghost as *mut u64) });
            assert_eq!(
                slow, 0,
                "lock calls took the slow path while a release was queued"
            );
        })
        .join()
        .unwrap();
    }
}
