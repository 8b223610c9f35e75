//! The seeds' annotations: allocation and reclaim contexts, the mmu-notifier map, non-blocking
//! sections, `might_sleep`, and priming.
//!
//! **Reclaim as a lock.** Memory reclaim may run filesystem code, I/O, shrinkers and mmu-notifier
//! callbacks on behalf of whatever task allocates. The kernel makes that visible to lockdep with
//! two fake locks — lock maps that stand for a context, not a lock: `fs_reclaim` is *held* while
//! reclaim runs (so every lock a shrinker takes is ordered after it) and *touched* by every
//! allocation that may enter reclaim (so every lock held across such an allocation is ordered
//! before it). A lock taken in reclaim and held across an allocation closes a cycle, and is
//! reported the first time both halves are seen, even if reclaim never actually ran during the
//! allocation. The second map, `mmu_notifier_invalidate_range_start`, is held around every
//! invalidation of page-table entries (and so around every mmu-notifier callback); since any
//! allocation that may wait on reclaim may invalidate ptes, the current rules (5.11+) also do a
//! `might_lock` of it for every such allocation.
//!
//! **Which allocation does what** is decided by the allocation's `gfp` mask, narrowed by the
//! task's allocation scopes ([`crate::gfp::current_gfp_context`]), and by the rule set of the engine
//! ([`Options::legacy_fs_reclaim`](crate::Options)); [`reclaim_effect`] is that decision, the truth
//! table of the kernel's `__need_reclaim`. Under the current rules an allocation needs reclaim when
//! it may wait for it (`__GFP_DIRECT_RECLAIM`), the task is not itself reclaiming (`PF_MEMALLOC`)
//! and the mask does not opt out (`__GFP_NOLOCKDEP`); it then takes `fs_reclaim` only if it may
//! call into the filesystem (`__GFP_FS`), and always touches the mmu-notifier map. The legacy
//! rules (2018–5.10) require `__GFP_FS` for the whole annotation and never touch the notifier map.
//!
//! **Sleeping.** [`Engine::might_sleep`] reports a task that may sleep where it must not: in a
//! non-blocking section ([`non_block`]), with interrupts disabled, in interrupt context, or holding
//! a spinning lock. Acquiring a sleeping lock performs it (the engine does so), and so does a
//! blocking allocation ([`might_alloc`]). Being inside `fs_reclaim` is *not* a non-blocking
//! section: reclaim sleeps.
//!
//! **Priming** ([`Priming`], [`prime`]) teaches the validator an order once, at start-up, by
//! acquiring the lock maps in that order and releasing them, without taking any real lock — as the
//! kernel's `dma_resv_lockdep()` does for `mmap_lock → dma_resv → fs_reclaim → i_mmap_rwsem`. Any
//! later code that takes the same classes the other way round is reported at once.
//!
//! Every rule lives in the engine-level operations of this module ([`Engine::fs_reclaim_acquire`],
//! [`Engine::fs_reclaim_release`], [`Engine::might_alloc`], [`Engine::prime`]), which take the
//! engine, the task and the two maps explicitly. The process-wide functions here ([`might_alloc`],
//! [`fs_reclaim`], [`memalloc_nofs`], ...) run them for the current thread with the built-in maps
//! [`FS_RECLAIM`] and [`MMU_NOTIFIER_INVALIDATE_RANGE_START`]; the scenario replay runs them with
//! the case's predeclared maps.
//!
//! ```
//! # #[cfg(not(feature = "disabled"))] {
//! use lockdep::annotate::{self, FS_RECLAIM};
//! use lockdep::gfp::{GFP_KERNEL, GFP_NOFS};
//! use lockdep::{Acquire, Mutex, ReportCollector, ReportKind};
//!
//! let reports = ReportCollector::new();
//! let cache = Mutex::new(Vec::<u8>::new());
//!
//! // A shrinker: reclaim takes the cache lock.
//! {
//!     let _reclaim = FS_RECLAIM.hold(Acquire::exclusive());
//!     cache.lock().clear();
//! }
//! // Refilling the cache with GFP_NOFS under a nofs scope: fine.
//! {
//!     let mut c = cache.lock();
//!     annotate::might_alloc(GFP_NOFS);
//!     c.push(1);
//! }
//! assert!(reports.matching(|r| r.involves(&cache.class_name())).is_empty());
//! // With GFP_KERNEL, reclaim could recurse into the shrinker, which takes the cache lock.
//! {
//!     let _c = cache.lock();
//!     annotate::might_alloc(GFP_KERNEL);
//! }
//! let found = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&cache.class_name()));
//! assert_eq!(found.len(), 1);
//! # }
//! ```

pub mod irq;
mod prime;
mod reclaim;
mod sleep;

pub use crate::engine::reclaim::{
    gfp_allows_blocking, reclaim_effect, PrimeStep, ReclaimEffect, ReclaimMaps, FS_RECLAIM,
    MMU_NOTIFIER_INVALIDATE_RANGE_START,
};
pub use prime::{prime, AsLockMap, Priming};
pub use reclaim::*;
pub use sleep::*;

use crate::engine::held::Task;
use crate::engine::Engine;
use crate::report::Report;
use crate::rt::{self, Action};

/// Runs an engine-level operation for the current thread; in panic mode, `undo` first takes
/// back what the caller will not hold (the report panics before the caller gets its guard).
pub(crate) fn run_here(
    op: impl FnOnce(&Engine, &mut Task) -> Option<Report>,
    undo: impl FnOnce(&Engine, &mut Task),
) {
    rt::with_current_task(|e, t| {
        let r = op(e, t);
        if r.is_some() && rt::action() == Action::Panic {
            undo(e, t);
        }
        r
    });
}
