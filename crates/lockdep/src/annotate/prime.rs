//! Priming: teaching the validator an order once, at start-up, as the kernel does for locks
//! whose real nesting is rare (e.g. `dma_resv` before `fs_reclaim`).

use super::run_here;
use crate::engine::reclaim::{PrimeStep, ReclaimMaps};

use std::fmt;

use crate::engine::held::Task;
use crate::engine::Engine;
use crate::lock::map::{Acquire, LockMap, ReadKind, Site};
use crate::report::Report;
use crate::sync::GenericMutex;
use crate::sync::GenericRwLock;
use crate::sync::Lockdep;

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
/// # #[cfg(not(feature = "disabled"))] {
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
/// # }
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
/// # #[cfg(not(feature = "disabled"))] {
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
/// # }
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
