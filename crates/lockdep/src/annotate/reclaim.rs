//! Reclaim for the current thread: the `fs_reclaim` and mmu-notifier maps, `might_alloc`, and
//! the allocation scopes (`memalloc_nofs` and friends).

use super::run_here;
use crate::engine::reclaim::{ReclaimMaps, FS_RECLAIM};

use std::fmt;
use std::marker::PhantomData;

use crate::lock::gfp::{self, PF_MEMALLOC, PF_MEMALLOC_NOFS, PF_MEMALLOC_NOIO};
use crate::lock::map::Site;
use crate::rt::{self};

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
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::{annotate, gfp};
/// let _nofs = annotate::memalloc_nofs();
/// assert_eq!(annotate::current_gfp_context(gfp::GFP_KERNEL), gfp::GFP_NOFS);
/// # }
/// ```
pub fn memalloc_nofs() -> MemallocGuard {
    memalloc_scope(PF_MEMALLOC_NOFS)
}

/// `memalloc_noio_save()` as a scope: allocations inside it behave as if `__GFP_IO` and
/// `__GFP_FS` were cleared.
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::{annotate, gfp};
/// let _noio = annotate::memalloc_noio();
/// assert_eq!(annotate::current_gfp_context(gfp::GFP_KERNEL), gfp::GFP_NOIO);
/// # }
/// ```
pub fn memalloc_noio() -> MemallocGuard {
    memalloc_scope(PF_MEMALLOC_NOIO)
}

/// `memalloc_noreclaim_save()` as a scope (`PF_MEMALLOC`): the thread is reclaiming and will not
/// recurse into reclaim, so its allocations get no reclaim annotation at all.
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::annotate;
/// let _noreclaim = annotate::memalloc_noreclaim();
/// assert_ne!(annotate::memalloc_flags() & lockdep::gfp::PF_MEMALLOC, 0);
/// # }
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
