//! Spawning and joining: the kernel's `flush_work` model for threads and async tasks.
//!
//! Waiting for work to finish while holding a lock that the work needs is a deadlock, whether
//! or not the work happens to have finished already on this run. The kernel catches it with a
//! lock map per work item: the worker runs the work *inside* the work's map, and `flush_work`
//! acquires and releases the same map, so "L held while flushing" and "the work takes L" close
//! a cycle in the class graph. The same holds here:
//!
//! - a thread started with [`thread::spawn`] (or a [`Builder`], or a
//!   [`Scope`](crate::thread::Scope)) runs its closure holding a lock map whose class is its
//!   spawn site; [`JoinHandle::join`](crate::thread::JoinHandle::join), and the end of a scope,
//!   validate an acquisition of that class (`might_lock`) before waiting;
//! - a task spawned with `lockdep::tokio::spawn` is a tracked task whose body holds the map of
//!   its spawn site; awaiting its `JoinHandle` validates it the same way.
//!
//! The work map is an async lock map (holding it across `.await`s is what a task body does).
//! Its class is named `spawned@FILE:LINE:COL`.
//!
//! **Not modelled.** A join by a task that holds nothing but work maps is not validated: a
//! dependency from one work class to another only says that tasks wait for tasks, and the
//! cycles such dependencies make (`a` spawns and awaits `b`, `b` spawns and awaits `a`:
//! recursive spawning) are not deadlocks on an executor, where awaiting a handle blocks no
//! thread and a task never waits for itself. The price is a wait that only deadlocks through
//! such a chain (holding L, await `a`, which awaits `b`, which takes L) going unreported. A
//! join of work of the joiner's own class is not validated either (the kernel, whose workers
//! are a bounded pool, reports it as recursive locking). Waits whose completer is not known —
//! channels, condition variables, `Notify` — are not modelled at all.
//!
//! [`Builder`]: crate::thread::Builder

pub mod thread;
#[cfg(feature = "tokio")]
pub mod tokio;

use std::panic::Location;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::lock::class::LockClassKey;
use crate::lock::map::{Acquire, LockMap, Site};

type Keys = FxHashMap<(&'static str, u32, u32), &'static LockClassKey>;

/// The work keys made so far, by spawn site (a leaf lock, held across `fork`).
static KEYS: RwLock<Option<Keys>> = RwLock::new(None);

/// Registers (once) `pthread_atfork` handlers that hold this layer's tables ([`KEYS`] and the
/// scoped threads' sites) across `fork`: a thread updating one when another forks would leave
/// it locked in the child. Both are leaf locks (nothing is locked under them), so their
/// handlers' order among the validator's does not matter.
pub(crate) fn install_fork_handlers() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handlers are `extern "C"` functions that live as long as the
            // process, which is what `pthread_atfork` requires.
            let rc = unsafe {
                libc::pthread_atfork(Some(fork_prepare), Some(fork_release), Some(fork_release))
            };
            if rc != 0 {
                eprintln!("lockdep: pthread_atfork failed ({rc}): a forked child may hang spawning a thread");
            }
        });
    }
}

#[cfg(target_os = "linux")]
extern "C" fn fork_prepare() {
    // The guards are forgotten: `fork_release` unlocks, on the same (forking) thread.
    std::mem::forget(KEYS.write());
    std::mem::forget(thread::SCOPE_SITES.lock());
}

#[cfg(target_os = "linux")]
extern "C" fn fork_release() {
    // SAFETY: `fork_prepare` locked both on this thread and forgot the guards; in the child
    // this thread is the only one, and still holds them.
    unsafe {
        thread::SCOPE_SITES.force_unlock();
        KEYS.force_unlock_write();
    }
}

/// The class key of the work spawned at `site`: one per site, named after it.
fn work_key(site: &'static Location<'static>) -> &'static LockClassKey {
    install_fork_handlers();
    let id = (site.file(), site.line(), site.column());
    if let Some(k) = KEYS.read().as_ref().and_then(|m| m.get(&id)) {
        return k;
    }
    let mut keys = KEYS.write();
    keys.get_or_insert_with(FxHashMap::default)
        .entry(id)
        .or_insert_with(|| {
            LockClassKey::new_dynamic(format!(
                "spawned@{}:{}:{}",
                site.file(),
                site.line(),
                site.column()
            ))
        })
}

/// The lock map of the work spawned at `site`.
pub(crate) fn work_map(site: &'static Location<'static>) -> LockMap {
    LockMap::named(work_key(site)).async_lock().work()
}

/// What a join does before it waits: validates an acquisition of the work's class, if the
/// current task holds a lock besides work maps, and none of the work's class.
pub(crate) fn join(work: &LockMap) {
    if crate::rt::future::join_may_wait_for_held(work) {
        work.validate_at(Acquire::exclusive(), Site::Text("join"));
    }
}
