//! What every interposed lock call does around the real one: find the object's entry, show the
//! acquisition or release to the validator, and undo an acquisition the real call did not make.
//! Each takes the thread's state, which only the [`Inside`](crate::guard::Inside) proof that
//! the thread is inside the interposer gives (see `guard`).
//!
//! The order is the kernel's: a blocking acquisition is validated *before* the real call, so a
//! deadlock is reported before it can happen (a self-deadlock of a normal mutex is reported,
//! then the real call hangs as it would have); a trylock is shown only once it succeeded; a
//! release is shown before the real unlock.

use lockdep::{Acquire, LockMap};

use crate::guard::Local;
use crate::table::{self, Entry, Kind};

/// The entry of the object at `addr`; `first_use` makes the map and kind of an object that was
/// not initialised through us (a static initialiser).
#[inline]
pub(crate) fn tracked(addr: usize, first_use: fn(usize) -> (LockMap, Kind)) -> &'static Entry {
    match table::get(addr) {
        Some(e) => e,
        None => table::get_or_insert(addr, first_use),
    }
}

/// Shows an acquisition made by the lock call that returns to `ret`.
#[inline(always)]
pub(crate) fn acquire(g: &Local, e: &Entry, how: Acquire<'_>, ret: usize) {
    g.hooks().acquire(&e.map, how, g.site(ret));
}

/// Shows a release made by the unlock call that returns to `ret`.
#[inline(always)]
pub(crate) fn release(g: &Local, e: &Entry, ret: usize) {
    g.hooks().release(&e.map, || g.site(ret));
}

/// A lock call's validated acquisition: `real` is the blocking call, `how` the acquisition. A
/// call that failed (a timeout, `EDEADLK`) leaves nothing held.
#[inline]
pub(crate) fn blocking(
    g: &Local,
    e: &Entry,
    how: Acquire<'_>,
    ret: usize,
    real: impl FnOnce() -> i32,
) -> i32 {
    acquire(g, e, how, ret);
    let rc = real();
    if rc != 0 {
        failed(g, e, ret);
    }
    rc
}

/// Takes back the acquisition of a lock call that failed.
#[cold]
#[inline(never)]
fn failed(g: &Local, e: &Entry, ret: usize) {
    release(g, e, ret);
}

/// A trylock: shown (as a trylock, which validates nothing) only if it succeeded.
#[inline]
pub(crate) fn trying(
    g: &Local,
    e: &Entry,
    how: Acquire<'_>,
    ret: usize,
    real: impl FnOnce() -> i32,
) -> i32 {
    let rc = real();
    if rc == 0 {
        acquire(g, e, how.trylock(true), ret);
    }
    rc
}

/// Forgets a destroyed object: a lock still held by the destroying thread is reported as a
/// held lock freed (the map is dropped), and the entry is kept for reuse.
pub(crate) fn forget(addr: usize) {
    if let Some(mut e) = table::remove(addr) {
        e.map = LockMap::self_keyed();
        table::recycle(e);
    }
}
