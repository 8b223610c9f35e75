//! Allocation flags and per-task allocation scopes, with the kernel's values.
//!
//! These are the inputs of the kernel's memory-reclaim annotations: a `gfp` mask says what an
//! allocation may do (wait for reclaim, recurse into the filesystem or the I/O layer), and the
//! task's scope flags (`memalloc_nofs_save` and friends) narrow every allocation made inside the
//! scope.

/// `___GFP_HIGH`
pub const __GFP_HIGH: u32 = 0x20;
/// `___GFP_IO`: may start physical I/O.
pub const __GFP_IO: u32 = 0x40;
/// `___GFP_FS`: may call into the filesystem.
pub const __GFP_FS: u32 = 0x80;
/// `___GFP_ATOMIC`
pub const __GFP_ATOMIC: u32 = 0x200;
/// `___GFP_DIRECT_RECLAIM`: may enter direct reclaim (and so may sleep).
pub const __GFP_DIRECT_RECLAIM: u32 = 0x400;
/// `___GFP_KSWAPD_RECLAIM`: may wake kswapd.
pub const __GFP_KSWAPD_RECLAIM: u32 = 0x800;
/// `___GFP_HARDWALL`
pub const __GFP_HARDWALL: u32 = 0x100000;
/// `___GFP_NOLOCKDEP`: exempt from the reclaim annotations.
pub const __GFP_NOLOCKDEP: u32 = 0x800000;

/// `__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM`
pub const __GFP_RECLAIM: u32 = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
/// `GFP_ATOMIC = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM`
pub const GFP_ATOMIC: u32 = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM;
/// `GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS`
pub const GFP_KERNEL: u32 = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
/// `GFP_NOWAIT = __GFP_KSWAPD_RECLAIM`
pub const GFP_NOWAIT: u32 = __GFP_KSWAPD_RECLAIM;
/// `GFP_NOIO = __GFP_RECLAIM`
pub const GFP_NOIO: u32 = __GFP_RECLAIM;
/// `GFP_NOFS = __GFP_RECLAIM | __GFP_IO`
pub const GFP_NOFS: u32 = __GFP_RECLAIM | __GFP_IO;
/// `GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL`
pub const GFP_USER: u32 = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;

/// `PF_MEMALLOC`: the task is reclaiming memory and will not recurse into reclaim.
pub const PF_MEMALLOC: u32 = 0x800;
/// `PF_MEMALLOC_NOFS`: every allocation in scope behaves as `GFP_NOFS`.
pub const PF_MEMALLOC_NOFS: u32 = 0x40000;
/// `PF_MEMALLOC_NOIO`: every allocation in scope behaves as `GFP_NOIO`.
pub const PF_MEMALLOC_NOIO: u32 = 0x80000;

/// The flag names the scenario format accepts, with their values.
pub const NAMES: [(&str, u32); 14] = [
    ("GFP_KERNEL", GFP_KERNEL),
    ("GFP_NOFS", GFP_NOFS),
    ("GFP_NOIO", GFP_NOIO),
    ("GFP_ATOMIC", GFP_ATOMIC),
    ("GFP_NOWAIT", GFP_NOWAIT),
    ("GFP_USER", GFP_USER),
    ("__GFP_IO", __GFP_IO),
    ("__GFP_FS", __GFP_FS),
    ("__GFP_DIRECT_RECLAIM", __GFP_DIRECT_RECLAIM),
    ("__GFP_KSWAPD_RECLAIM", __GFP_KSWAPD_RECLAIM),
    ("__GFP_RECLAIM", __GFP_RECLAIM),
    ("__GFP_HIGH", __GFP_HIGH),
    ("__GFP_ATOMIC", __GFP_ATOMIC),
    ("__GFP_NOLOCKDEP", __GFP_NOLOCKDEP),
];

/// Parses `NAME|NAME|...` (no spaces) into a mask.
///
/// ```
/// use lockdep::gfp;
/// assert_eq!(gfp::parse("GFP_NOFS|__GFP_NOLOCKDEP"), Ok(gfp::GFP_NOFS | gfp::__GFP_NOLOCKDEP));
/// assert!(gfp::parse("GFP_BOGUS").is_err());
/// ```
pub fn parse(s: &str) -> Result<u32, String> {
    let mut mask = 0;
    for part in s.split('|') {
        match NAMES.iter().find(|(n, _)| *n == part) {
            Some((_, v)) => mask |= v,
            None if part.is_empty() => return Err(format!("empty flag in `{s}`")),
            None => return Err(format!("unknown allocation flag `{part}`")),
        }
    }
    Ok(mask)
}

/// The mask an allocation really uses inside the task's scopes (`current_gfp_context`):
/// `PF_MEMALLOC_NOIO` clears `__GFP_IO | __GFP_FS`, else `PF_MEMALLOC_NOFS` clears `__GFP_FS`.
pub fn current_gfp_context(task_flags: u32, mask: u32) -> u32 {
    if task_flags & PF_MEMALLOC_NOIO != 0 {
        mask & !(__GFP_IO | __GFP_FS)
    } else if task_flags & PF_MEMALLOC_NOFS != 0 {
        mask & !__GFP_FS
    } else {
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compositions_match_the_kernel() {
        assert_eq!(GFP_KERNEL, 0xcc0);
        assert_eq!(GFP_NOFS, 0xc40);
        assert_eq!(GFP_NOIO, 0xc00);
        assert_eq!(GFP_ATOMIC, 0xa20);
        assert_eq!(GFP_NOWAIT, 0x800);
    }

    #[test]
    fn scopes_narrow_the_mask() {
        assert_eq!(current_gfp_context(PF_MEMALLOC_NOFS, GFP_KERNEL), GFP_NOFS);
        assert_eq!(current_gfp_context(PF_MEMALLOC_NOIO, GFP_KERNEL), GFP_NOIO);
        assert_eq!(
            current_gfp_context(PF_MEMALLOC_NOIO | PF_MEMALLOC_NOFS, GFP_KERNEL),
            GFP_NOIO
        );
        assert_eq!(current_gfp_context(0, GFP_KERNEL), GFP_KERNEL);
    }

    #[test]
    fn parse_rejects_what_it_does_not_know() {
        assert_eq!(parse("GFP_KERNEL"), Ok(GFP_KERNEL));
        assert!(parse("GFP_KERNEL|").is_err());
        assert!(parse("gfp_kernel").is_err());
    }
}
