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
//! task's allocation scopes ([`gfp::current_gfp_context`]), and by the rule set of the engine
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
//! ```

use std::fmt;
use std::marker::PhantomData;

use crate::engine::Engine;
use crate::gfp::{self, PF_MEMALLOC, PF_MEMALLOC_NOFS, PF_MEMALLOC_NOIO};
use crate::held::Task;
use crate::map::{Acquire, LockMap, ReadKind, Site};
use crate::report::Report;
use crate::rt::{self, Action};
use crate::sync::raw::Lockdep;
use crate::sync::rwlock::GenericRwLock;
use crate::sync::GenericMutex;
use crate::wait::WaitType;

// ===== the rules =====

/// What an allocation's reclaim annotation does (a row of the kernel's truth table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReclaimEffect {
    /// The `fs_reclaim` map is acquired by `fs_reclaim_acquire` (and released by
    /// `fs_reclaim_release`).
    pub fs_reclaim: bool,
    /// The `mmu_notifier_invalidate_range_start` map is touched (acquired and released at once).
    pub mmu_notifier: bool,
}

/// The reclaim annotation of an allocation with mask `gfp` by a task whose scope flags are
/// `task_flags` (`PF_MEMALLOC*` bits), under the legacy (2018–5.10) or the current rules.
///
/// The mask is first narrowed by the scopes ([`gfp::current_gfp_context`]). Current rules
/// (`__need_reclaim`): nothing without `__GFP_DIRECT_RECLAIM`, with `PF_MEMALLOC`, or with
/// `__GFP_NOLOCKDEP`; otherwise the mmu-notifier map is touched, and `fs_reclaim` acquired if the
/// mask has `__GFP_FS`. Legacy rules (`__need_fs_reclaim`): the same conditions plus `__GFP_FS`, and
/// only `fs_reclaim`.
///
/// ```
/// use lockdep::annotate::{reclaim_effect, ReclaimEffect};
/// use lockdep::gfp::*;
///
/// let both = ReclaimEffect { fs_reclaim: true, mmu_notifier: true };
/// assert_eq!(reclaim_effect(GFP_KERNEL, 0, false), both);
/// // GFP_NOIO may still invalidate ptes: the notifier map, but not fs_reclaim.
/// assert_eq!(reclaim_effect(GFP_NOIO, 0, false), ReclaimEffect { fs_reclaim: false, mmu_notifier: true });
/// assert_eq!(reclaim_effect(GFP_NOIO, 0, true), ReclaimEffect::default());
/// // A nofs scope turns GFP_KERNEL into GFP_NOFS.
/// assert!(!reclaim_effect(GFP_KERNEL, PF_MEMALLOC_NOFS, false).fs_reclaim);
/// assert_eq!(reclaim_effect(GFP_ATOMIC, 0, false), ReclaimEffect::default());
/// ```
pub fn reclaim_effect(gfp_mask: u32, task_flags: u32, legacy: bool) -> ReclaimEffect {
    let mask = gfp::current_gfp_context(task_flags, gfp_mask);
    let need = mask & gfp::__GFP_DIRECT_RECLAIM != 0
        && task_flags & PF_MEMALLOC == 0
        && mask & gfp::__GFP_NOLOCKDEP == 0;
    let fs = mask & gfp::__GFP_FS != 0;
    if legacy {
        ReclaimEffect {
            fs_reclaim: need && fs,
            mmu_notifier: false,
        }
    } else {
        ReclaimEffect {
            fs_reclaim: need && fs,
            mmu_notifier: need,
        }
    }
}

/// Whether an allocation with this mask may block (`gfpflags_allow_blocking`): it may wait for
/// direct reclaim.
///
/// ```
/// use lockdep::{annotate::gfp_allows_blocking, gfp};
/// assert!(gfp_allows_blocking(gfp::GFP_NOIO));
/// assert!(!gfp_allows_blocking(gfp::GFP_NOWAIT));
/// ```
pub fn gfp_allows_blocking(gfp_mask: u32) -> bool {
    gfp_mask & gfp::__GFP_DIRECT_RECLAIM != 0
}

/// The two maps of the reclaim annotations, as an engine-level operation needs them: the
/// process-wide ones ([`ReclaimMaps::builtin`]) or a scenario case's predeclared ones.
#[derive(Clone, Copy, Debug)]
pub struct ReclaimMaps<'a> {
    /// The `fs_reclaim` map.
    pub fs_reclaim: &'a LockMap,
    /// The `mmu_notifier_invalidate_range_start` map.
    pub mmu_notifier: &'a LockMap,
}

impl ReclaimMaps<'static> {
    /// The process-wide maps, [`FS_RECLAIM`] and [`MMU_NOTIFIER_INVALIDATE_RANGE_START`].
    pub fn builtin() -> ReclaimMaps<'static> {
        ReclaimMaps {
            fs_reclaim: &FS_RECLAIM,
            mmu_notifier: &MMU_NOTIFIER_INVALIDATE_RANGE_START,
        }
    }
}

/// One step of a priming sequence ([`Engine::prime`]).
#[derive(Clone, Copy, Debug)]
pub enum PrimeStep<'a> {
    /// Acquire the map as described, and hold it until the end of the priming.
    Hold(&'a LockMap, Acquire<'a>),
    /// Acquire the map and release it at once (`might_lock`): ordered after what is held, but
    /// nothing is ordered after it.
    Touch(&'a LockMap, Acquire<'a>),
    /// `fs_reclaim_acquire(gfp)`, released (`fs_reclaim_release(gfp)`) at the end.
    FsReclaim(u32),
}

impl Engine {
    /// The reclaim annotation an allocation with `gfp_mask` by `task` gets now, under this
    /// engine's rule set ([`reclaim_effect`] with the task's scopes and the engine's options).
    pub fn reclaim_effect(&self, task: &Task, gfp_mask: u32) -> ReclaimEffect {
        reclaim_effect(
            gfp_mask,
            task.memalloc_flags(),
            self.options().legacy_fs_reclaim,
        )
    }

    /// `fs_reclaim_acquire(gfp)`: enters the reclaim context an allocation with `gfp_mask` may
    /// enter. Acquires `maps.fs_reclaim` if the rules say so, then (current rules) touches
    /// `maps.mmu_notifier`. Returns the first problem found.
    ///
    /// ```
    /// use lockdep::{annotate::ReclaimMaps, gfp, Engine, LockMap, Site, Task};
    ///
    /// let (fs, mn) = (LockMap::new(), LockMap::new());
    /// let maps = ReclaimMaps { fs_reclaim: &fs, mmu_notifier: &mn };
    /// let engine = Engine::new();
    /// let mut task = Task::new("t", 1);
    /// assert!(engine.fs_reclaim_acquire(&mut task, &maps, gfp::GFP_KERNEL, Site::Unknown).is_none());
    /// assert_eq!(task.depth(), 1); // fs_reclaim is held; the notifier map was only touched
    /// assert!(engine.fs_reclaim_release(&mut task, &maps, gfp::GFP_KERNEL, Site::Unknown).is_none());
    /// assert_eq!(task.depth(), 0);
    /// ```
    pub fn fs_reclaim_acquire(
        &self,
        task: &mut Task,
        maps: &ReclaimMaps<'_>,
        gfp_mask: u32,
        site: Site,
    ) -> Option<Report> {
        let effect = self.reclaim_effect(task, gfp_mask);
        let mut report = None;
        if effect.fs_reclaim {
            report = self.acquire(task, maps.fs_reclaim, Acquire::exclusive(), site);
        }
        if effect.mmu_notifier {
            // Not held across reclaim: it nests with the acquisitions in pte invalidation, so
            // only the equivalent of might_lock, on the raw map.
            let a = self.acquire(task, maps.mmu_notifier, Acquire::exclusive(), site);
            let r = self.release(task, maps.mmu_notifier, site);
            report = report.or(a).or(r);
        }
        report
    }

    /// `fs_reclaim_release(gfp)`: leaves the reclaim context; releases `maps.fs_reclaim` if the
    /// rules (evaluated again, with the task's current scopes) say it was acquired.
    pub fn fs_reclaim_release(
        &self,
        task: &mut Task,
        maps: &ReclaimMaps<'_>,
        gfp_mask: u32,
        site: Site,
    ) -> Option<Report> {
        if self.reclaim_effect(task, gfp_mask).fs_reclaim {
            self.release(task, maps.fs_reclaim, site)
        } else {
            None
        }
    }

    /// `might_alloc(gfp)`: "this code allocates with `gfp_mask`". `fs_reclaim_acquire`, then
    /// `fs_reclaim_release`, then `might_sleep` if the mask allows blocking. Returns the first
    /// problem found (every step is performed).
    ///
    /// ```
    /// use lockdep::{annotate::ReclaimMaps, gfp, Engine, LockMap, ReportKind, Site, Task};
    ///
    /// let (fs, mn) = (LockMap::new(), LockMap::new());
    /// let maps = ReclaimMaps { fs_reclaim: &fs, mmu_notifier: &mn };
    /// let engine = Engine::new();
    /// let mut task = Task::new("t", 1);
    /// engine.non_block_start(&mut task);
    /// let r = engine.might_alloc(&mut task, &maps, gfp::GFP_KERNEL, Site::Unknown);
    /// assert_eq!(r.map(|r| r.kind), Some(ReportKind::SleepInvalidContext));
    /// assert!(engine.might_alloc(&mut task, &maps, gfp::GFP_NOWAIT, Site::Unknown).is_none());
    /// ```
    pub fn might_alloc(
        &self,
        task: &mut Task,
        maps: &ReclaimMaps<'_>,
        gfp_mask: u32,
        site: Site,
    ) -> Option<Report> {
        let a = self.fs_reclaim_acquire(task, maps, gfp_mask, site);
        let r = self.fs_reclaim_release(task, maps, gfp_mask, site);
        let s = if gfp_allows_blocking(gfp_mask) {
            self.might_sleep(task, site)
        } else {
            None
        };
        a.or(r).or(s)
    }

    /// Primes an order: performs `steps` in order (holding, touching, entering reclaim), then
    /// releases what was held, newest first. Every dependency between the steps is recorded as if
    /// the locks had really been taken. Returns the first problem found.
    ///
    /// ```
    /// use lockdep::annotate::{PrimeStep, ReclaimMaps};
    /// use lockdep::{gfp, Acquire, Engine, LockMap, ReportKind, Site, Task};
    ///
    /// let (fs, mn, a, b) = (LockMap::new(), LockMap::new(), LockMap::new(), LockMap::new());
    /// let maps = ReclaimMaps { fs_reclaim: &fs, mmu_notifier: &mn };
    /// let engine = Engine::new();
    /// let mut task = Task::new("t", 1);
    /// let steps = [
    ///     PrimeStep::Hold(&a, Acquire::shared()),
    ///     PrimeStep::FsReclaim(gfp::GFP_KERNEL),
    ///     PrimeStep::Touch(&b, Acquire::exclusive()),
    /// ];
    /// assert!(engine.prime(&mut task, &maps, &steps, Site::Unknown).is_none());
    /// assert_eq!(task.depth(), 0);
    /// // b -> fs_reclaim is now the wrong order.
    /// engine.acquire(&mut task, &b, Acquire::exclusive(), Site::Unknown);
    /// let r = engine.might_alloc(&mut task, &maps, gfp::GFP_KERNEL, Site::Unknown);
    /// assert_eq!(r.map(|r| r.kind), Some(ReportKind::Circular));
    /// ```
    pub fn prime(
        &self,
        task: &mut Task,
        maps: &ReclaimMaps<'_>,
        steps: &[PrimeStep<'_>],
        site: Site,
    ) -> Option<Report> {
        let mut report = None;
        let mut held: Vec<&PrimeStep<'_>> = Vec::with_capacity(steps.len());
        for step in steps {
            let r = match step {
                PrimeStep::Hold(map, how) => {
                    held.push(step);
                    self.acquire(task, map, *how, site)
                }
                PrimeStep::Touch(map, how) => {
                    let a = self.acquire(task, map, *how, site);
                    let r = self.release(task, map, site);
                    a.or(r)
                }
                PrimeStep::FsReclaim(g) => {
                    held.push(step);
                    self.fs_reclaim_acquire(task, maps, *g, site)
                }
            };
            report = report.or(r);
        }
        for step in held.into_iter().rev() {
            let r = match step {
                PrimeStep::Hold(map, _) => self.release(task, map, site),
                PrimeStep::FsReclaim(g) => self.fs_reclaim_release(task, maps, *g, site),
                PrimeStep::Touch(..) => None,
            };
            report = report.or(r);
        }
        report
    }
}

// ===== the process-wide annotations =====

/// The process-wide `fs_reclaim` map: held while reclaim runs, acquired and released by
/// allocations that may recurse into the filesystem. Prints as `(fs_reclaim){+.+.}-{0:0}`.
///
/// Hold it where your code *is* reclaim (a shrinker, a cache trimmer called under memory
/// pressure), as the kernel's kswapd does with `__fs_reclaim_acquire()`:
///
/// ```
/// use lockdep::{annotate::FS_RECLAIM, Acquire};
/// let _in_reclaim = FS_RECLAIM.hold(Acquire::exclusive());
/// ```
pub static FS_RECLAIM: LockMap =
    LockMap::named(&FS_RECLAIM_KEY).with_wait(WaitType::Inv, WaitType::Inv);
static FS_RECLAIM_KEY: crate::LockClassKey = crate::LockClassKey::new("fs_reclaim");

/// The process-wide `mmu_notifier_invalidate_range_start` map: held around every invalidation
/// (and so around every notifier callback), `invalidate_range_start` and `_end` alike; touched by
/// every allocation that may wait on reclaim (current rules). Prints as
/// `(mmu_notifier_invalidate_range_start){+.+.}-{0:0}`.
///
/// ```
/// use lockdep::{annotate::MMU_NOTIFIER_INVALIDATE_RANGE_START as MMU_NOTIFIER, Acquire};
/// {
///     let _invalidating = MMU_NOTIFIER.hold(Acquire::exclusive());
///     // ... call the notifier callbacks ...
/// }
/// ```
pub static MMU_NOTIFIER_INVALIDATE_RANGE_START: LockMap =
    LockMap::named(&MMU_NOTIFIER_KEY).with_wait(WaitType::Inv, WaitType::Inv);
static MMU_NOTIFIER_KEY: crate::LockClassKey =
    crate::LockClassKey::new("mmu_notifier_invalidate_range_start");

/// Runs an engine-level operation for the current thread; in panic mode, `undo` first takes
/// back what the caller will not hold (the report panics before the caller gets its guard).
fn run_here(
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

/// `might_alloc(gfp)` for the current thread: "this code allocates memory with `gfp_mask`".
/// Orders every held lock before reclaim (when the mask may recurse into it), and reports a
/// blocking allocation where sleeping is not allowed.
///
/// ```
/// use lockdep::{annotate, gfp};
/// annotate::might_alloc(gfp::GFP_KERNEL);
/// ```
#[track_caller]
pub fn might_alloc(gfp_mask: u32) {
    let site = Site::caller();
    let maps = ReclaimMaps::builtin();
    run_here(|e, t| e.might_alloc(t, &maps, gfp_mask, site), |_, _| {});
}

/// `fs_reclaim_acquire(gfp)` for the current thread; pair it with [`fs_reclaim_release`] with
/// the same mask, or use the scope [`fs_reclaim`].
#[track_caller]
pub fn fs_reclaim_acquire(gfp_mask: u32) {
    let site = Site::caller();
    let maps = ReclaimMaps::builtin();
    run_here(
        |e, t| e.fs_reclaim_acquire(t, &maps, gfp_mask, site),
        |e, t| {
            if e.reclaim_effect(t, gfp_mask).fs_reclaim {
                e.undo_acquire(t, FS_RECLAIM.instance());
            }
        },
    );
}

/// `fs_reclaim_release(gfp)` for the current thread.
#[track_caller]
pub fn fs_reclaim_release(gfp_mask: u32) {
    let site = Site::caller();
    let maps = ReclaimMaps::builtin();
    run_here(
        |e, t| e.fs_reclaim_release(t, &maps, gfp_mask, site),
        |_, _| {},
    );
}

/// Enters the reclaim context of an allocation with `gfp_mask` for the guard's lifetime
/// (`fs_reclaim_acquire` ... `fs_reclaim_release`), as the page allocator does around direct
/// reclaim.
///
/// ```
/// use lockdep::{annotate, gfp};
/// {
///     let _reclaim = annotate::fs_reclaim(gfp::GFP_KERNEL);
///     // A GFP_NOFS allocation here is fine; a GFP_KERNEL one would recurse into reclaim.
///     annotate::might_alloc(gfp::GFP_NOFS);
/// }
/// ```
#[track_caller]
pub fn fs_reclaim(gfp_mask: u32) -> FsReclaimGuard {
    fs_reclaim_acquire(gfp_mask);
    FsReclaimGuard {
        gfp_mask,
        _not_send: PhantomData,
    }
}

/// Leaves the reclaim context when dropped. Made by [`fs_reclaim`].
#[must_use = "the reclaim context ends when the guard is dropped"]
pub struct FsReclaimGuard {
    gfp_mask: u32,
    _not_send: PhantomData<*const ()>,
}

impl Drop for FsReclaimGuard {
    fn drop(&mut self) {
        let maps = ReclaimMaps::builtin();
        let g = self.gfp_mask;
        run_here(
            |e, t| e.fs_reclaim_release(t, &maps, g, Site::Unknown),
            |_, _| {},
        );
    }
}

impl fmt::Debug for FsReclaimGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsReclaimGuard")
            .field("gfp_mask", &format_args!("{:#x}", self.gfp_mask))
            .finish()
    }
}

/// `might_sleep()` for the current thread: reported if the thread is in a non-blocking section,
/// has interrupts disabled, runs in interrupt context, or holds a spinning lock.
///
/// ```
/// lockdep::annotate::might_sleep(); // fine here
/// ```
#[track_caller]
pub fn might_sleep() {
    let site = Site::caller();
    run_here(|e, t| e.might_sleep(t, site), |_, _| {});
}

/// `non_block_start()` for the current thread: sleeping is a bug until the matching
/// [`non_block_end`]. Sections nest. Prefer the scope [`non_block`].
pub fn non_block_start() {
    rt::with_current_task(|e, t| {
        e.non_block_start(t);
        None
    });
}

/// `non_block_end()` for the current thread; an end without a start is reported.
#[track_caller]
pub fn non_block_end() {
    let site = Site::caller();
    run_here(|e, t| e.non_block_end(t, site), |_, _| {});
}

/// A non-blocking section for the guard's lifetime (`non_block_start` ... `non_block_end`), as
/// the kernel wraps an mmu-notifier callback called in non-blocking mode (the oom reaper).
///
/// ```
/// use lockdep::{annotate, Mutex, ReportCollector, ReportKind};
///
/// let reports = ReportCollector::new();
/// let m = Mutex::new(());
/// {
///     let _nb = annotate::non_block();
///     let _g = m.lock(); // a sleeping lock: "sleeping function called from invalid context"
/// }
/// let found = reports.matching(|r| r.kind == ReportKind::SleepInvalidContext);
/// assert_eq!(found.len(), 1);
/// assert!(found[0].render().contains("non_block: 1"));
/// ```
pub fn non_block() -> NonBlockGuard {
    non_block_start();
    NonBlockGuard {
        _not_send: PhantomData,
    }
}

/// Ends a non-blocking section when dropped. Made by [`non_block`].
#[must_use = "the non-blocking section ends when the guard is dropped"]
pub struct NonBlockGuard {
    _not_send: PhantomData<*const ()>,
}

impl Drop for NonBlockGuard {
    fn drop(&mut self) {
        run_here(|e, t| e.non_block_end(t, Site::Unknown), |_, _| {});
    }
}

impl fmt::Debug for NonBlockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlockGuard").finish()
    }
}

/// An allocation scope of the current thread (`memalloc_nofs_save` ... `_restore` and friends).
/// Scopes nest: each guard restores the flag to the state it found. Made by [`memalloc_nofs`],
/// [`memalloc_noio`], [`memalloc_noreclaim`].
#[must_use = "the scope ends when the guard is dropped"]
pub struct MemallocGuard {
    flag: u32,
    /// The flag's state before the scope; `None` if the validator did not run (off, or busy).
    was: Option<bool>,
    _not_send: PhantomData<*const ()>,
}

fn memalloc_scope(flag: u32) -> MemallocGuard {
    let mut was = None;
    rt::with_current_task(|_, t| {
        was = Some(t.memalloc_save(flag));
        None
    });
    MemallocGuard {
        flag,
        was,
        _not_send: PhantomData,
    }
}

impl Drop for MemallocGuard {
    fn drop(&mut self) {
        if let Some(was) = self.was {
            let flag = self.flag;
            rt::with_current_task(|_, t| {
                t.memalloc_restore(flag, was);
                None
            });
        }
    }
}

impl fmt::Debug for MemallocGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemallocGuard")
            .field("flag", &format_args!("{:#x}", self.flag))
            .field("was", &self.was)
            .finish()
    }
}

/// `memalloc_nofs_save()` as a scope: every allocation of the current thread inside it behaves as
/// if `__GFP_FS` were cleared (it cannot recurse into the filesystem, so it does not enter
/// `fs_reclaim`).
///
/// ```
/// use lockdep::{annotate, gfp};
/// let _nofs = annotate::memalloc_nofs();
/// assert_eq!(annotate::current_gfp_context(gfp::GFP_KERNEL), gfp::GFP_NOFS);
/// ```
pub fn memalloc_nofs() -> MemallocGuard {
    memalloc_scope(PF_MEMALLOC_NOFS)
}

/// `memalloc_noio_save()` as a scope: allocations inside it behave as if `__GFP_IO` and
/// `__GFP_FS` were cleared.
///
/// ```
/// use lockdep::{annotate, gfp};
/// let _noio = annotate::memalloc_noio();
/// assert_eq!(annotate::current_gfp_context(gfp::GFP_KERNEL), gfp::GFP_NOIO);
/// ```
pub fn memalloc_noio() -> MemallocGuard {
    memalloc_scope(PF_MEMALLOC_NOIO)
}

/// `memalloc_noreclaim_save()` as a scope (`PF_MEMALLOC`): the thread is reclaiming and will not
/// recurse into reclaim, so its allocations get no reclaim annotation at all.
///
/// ```
/// use lockdep::annotate;
/// let _noreclaim = annotate::memalloc_noreclaim();
/// assert_ne!(annotate::memalloc_flags() & lockdep::gfp::PF_MEMALLOC, 0);
/// ```
pub fn memalloc_noreclaim() -> MemallocGuard {
    memalloc_scope(PF_MEMALLOC)
}

/// The current thread's allocation scope flags (`PF_MEMALLOC*` bits); 0 if the validator is off.
pub fn memalloc_flags() -> u32 {
    let mut flags = 0;
    rt::with_current_task(|_, t| {
        flags = t.memalloc_flags();
        None
    });
    flags
}

/// `current_gfp_context(gfp)` for the current thread: the mask an allocation really uses inside
/// the thread's scopes.
pub fn current_gfp_context(gfp_mask: u32) -> u32 {
    gfp::current_gfp_context(memalloc_flags(), gfp_mask)
}

// ===== priming =====

/// Anything with a lock map: the instrumented primitives and [`LockMap`] itself. What
/// [`prime`] and [`Priming`] take.
pub trait AsLockMap {
    /// The lock map the validator sees.
    fn as_lock_map(&self) -> &LockMap;
}

impl AsLockMap for LockMap {
    fn as_lock_map(&self) -> &LockMap {
        self
    }
}

impl<R: lock_api::RawMutex, T: ?Sized> AsLockMap for GenericMutex<R, T> {
    fn as_lock_map(&self) -> &LockMap {
        self.lock_map()
    }
}

impl<R: lock_api::RawRwLock, T: ?Sized> AsLockMap for GenericRwLock<R, T> {
    fn as_lock_map(&self) -> &LockMap {
        self.lock_map()
    }
}

impl<R> AsLockMap for Lockdep<R> {
    fn as_lock_map(&self) -> &LockMap {
        self.lock_map()
    }
}

/// Teaches the validator that `locks` are taken in this order (each exclusively, each held while
/// the next is taken), without taking any of them. Call it once at start-up; any later code that
/// takes two of them the other way round is reported at once.
///
/// ```
/// use lockdep::{annotate, Mutex, RwLock, ReportCollector, ReportKind};
///
/// let reports = ReportCollector::new();
/// let (a, b, c) = (Mutex::new(()), RwLock::new(()), Mutex::new(()));
/// annotate::prime(&[&a, &b, &c]);
/// {
///     let _c = c.lock();
///     let _a = a.lock(); // c -> a against the primed a -> b -> c
/// }
/// assert_eq!(reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&a.class_name())).len(), 1);
/// ```
#[track_caller]
pub fn prime(locks: &[&dyn AsLockMap]) {
    let site = Site::caller();
    let steps: Vec<PrimeStep<'_>> = locks
        .iter()
        .map(|l| PrimeStep::Hold(l.as_lock_map(), Acquire::exclusive()))
        .collect();
    let maps = ReclaimMaps::builtin();
    run_here(|e, t| e.prime(t, &maps, &steps, site), |_, _| {});
}

/// A priming sequence with read holds, nest locks, reclaim and touches (as the kernel's
/// `dma_resv_lockdep()`), run by [`Priming::run`]. Every step but a touch is held until the end.
///
/// ```
/// use lockdep::annotate::{Priming, FS_RECLAIM};
/// use lockdep::{gfp, LockMap, Mutex, RwLock};
///
/// let mmap_lock = RwLock::new(());
/// let ctx = LockMap::new(); // a ww acquire context
/// let resv = Mutex::new(());
/// let i_mmap = RwLock::new(());
/// Priming::new()
///     .read(&mmap_lock)
///     .lock(&ctx)
///     .nested(&resv, &ctx)
///     .fs_reclaim(gfp::GFP_KERNEL)
///     .touch(&i_mmap)
///     .run();
/// ```
#[derive(Clone, Default)]
pub struct Priming<'a> {
    steps: Vec<PrimeStep<'a>>,
}

impl<'a> Priming<'a> {
    /// An empty sequence.
    pub fn new() -> Priming<'a> {
        Priming { steps: Vec::new() }
    }

    /// Holds `lock` exclusively.
    pub fn lock(self, lock: &'a (impl AsLockMap + ?Sized)) -> Priming<'a> {
        self.with(lock, Acquire::exclusive())
    }

    /// Holds `lock` as a non-recursive reader (`down_read`).
    pub fn read(self, lock: &'a (impl AsLockMap + ?Sized)) -> Priming<'a> {
        self.with(lock, Acquire::shared())
    }

    /// Holds `lock` as a recursive reader (`read_lock`).
    pub fn read_recursive(self, lock: &'a (impl AsLockMap + ?Sized)) -> Priming<'a> {
        self.with(lock, Acquire::shared_recursive())
    }

    /// Holds `lock` exclusively under the nest lock `nest` (`mutex_lock_nest_lock`, a ww mutex
    /// under its acquire context).
    pub fn nested(
        self,
        lock: &'a (impl AsLockMap + ?Sized),
        nest: &'a (impl AsLockMap + ?Sized),
    ) -> Priming<'a> {
        self.with(lock, Acquire::exclusive().nest_lock(nest.as_lock_map()))
    }

    /// Holds `lock` acquired as `how`.
    pub fn with(mut self, lock: &'a (impl AsLockMap + ?Sized), how: Acquire<'a>) -> Priming<'a> {
        self.steps.push(PrimeStep::Hold(lock.as_lock_map(), how));
        self
    }

    /// Takes `lock` exclusively and releases it at once (a lock taken and dropped inside the
    /// sequence, as `i_mmap_lock_write(); i_mmap_unlock_write();`).
    pub fn touch(mut self, lock: &'a (impl AsLockMap + ?Sized)) -> Priming<'a> {
        self.steps
            .push(PrimeStep::Touch(lock.as_lock_map(), Acquire::exclusive()));
        self
    }

    /// The same with a read acquisition of the given kind.
    pub fn touch_read(
        mut self,
        lock: &'a (impl AsLockMap + ?Sized),
        read: ReadKind,
    ) -> Priming<'a> {
        self.steps.push(PrimeStep::Touch(
            lock.as_lock_map(),
            Acquire::exclusive().with_read(read),
        ));
        self
    }

    /// Enters the reclaim context of an allocation with `gfp_mask` (`fs_reclaim_acquire`).
    pub fn fs_reclaim(mut self, gfp_mask: u32) -> Priming<'a> {
        self.steps.push(PrimeStep::FsReclaim(gfp_mask));
        self
    }

    /// The steps so far.
    pub fn steps(&self) -> &[PrimeStep<'a>] {
        &self.steps
    }

    /// Runs the sequence on the current thread, with the built-in reclaim maps.
    #[track_caller]
    pub fn run(self) {
        let site = Site::caller();
        let maps = ReclaimMaps::builtin();
        run_here(|e, t| e.prime(t, &maps, &self.steps, site), |_, _| {});
    }

    /// Runs the sequence on an engine of your own (a test's, a replay's).
    pub fn run_on(
        &self,
        engine: &Engine,
        task: &mut Task,
        maps: &ReclaimMaps<'_>,
        site: Site,
    ) -> Option<Report> {
        engine.prime(task, maps, &self.steps, site)
    }
}

impl fmt::Debug for Priming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Priming")
            .field("steps", &self.steps)
            .finish()
    }
}
