//! The reclaim rules: which maps an allocation touches (the kernel's `__need_reclaim` truth
//! table), whether it may block, and the engine operations the annotations and the replay
//! drive: `might_alloc`, the `fs_reclaim` hold, priming steps.

use crate::engine::held::Task;
use crate::engine::Engine;
use crate::lock::gfp::{self, PF_MEMALLOC};
use crate::lock::map::{Acquire, LockMap, Site};
use crate::lock::wait::WaitType;
use crate::report::Report;

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
