//! `pthread_mutex_*`.
//!
//! A mutex is a sleeping lock (wait type `Sleep`). Its type decides what a re-lock by the owner
//! is: a deadlock that is reported (`NORMAL`, the default), a report and the real `EDEADLK`
//! (`ERRORCHECK`), or legal (`RECURSIVE`: the interposer counts the owner's nesting itself and
//! shows only the outermost lock and unlock to the validator, so lock orders are still checked).

use std::sync::atomic::Ordering;

use libc::{c_int, clockid_t, pthread_mutex_t, pthread_mutexattr_t, timespec};
use lockdep::{Acquire, LockClassKey, LockMap, WaitType};

use crate::call::{self, blocking, trying};
use crate::class;
use crate::guard::{enter, Local};
use crate::real;
use crate::table::{Entry, Kind};

extern "C" {
    fn pthread_mutexattr_gettype(attr: *const pthread_mutexattr_t, kind: *mut c_int) -> c_int;
}

fn map(key: &'static LockClassKey) -> LockMap {
    LockMap::named(key).with_wait(WaitType::Sleep, WaitType::Inv)
}

fn kind_from_type(t: c_int) -> Kind {
    match t & 3 {
        libc::PTHREAD_MUTEX_RECURSIVE => Kind::Recursive,
        libc::PTHREAD_MUTEX_ERRORCHECK => Kind::ErrorCheck,
        _ => Kind::Normal,
    }
}

/// The type of a mutex that was initialised without us: glibc keeps it in the object (the
/// `__kind` word, which locking never changes), so `PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP` and
/// its kin get their type.
fn static_kind(m: *mut pthread_mutex_t) -> Kind {
    // SAFETY: a `pthread_mutex_t` is 40 bytes on 64-bit glibc, with `__kind` the `int` at
    // offset 16; the object is live (the program is locking it).
    let kind = unsafe { std::ptr::read_volatile((m as *const u8).add(16) as *const c_int) };
    kind_from_type(kind)
}

#[inline]
fn entry(m: *mut pthread_mutex_t) -> &'static Entry {
    call::tracked(m as usize, |a| {
        (map(class::static_key(a)), static_kind(a as *mut _))
    })
}

/// Whether `e` is a recursive mutex that this thread owns (then a lock or unlock only counts).
#[inline]
fn owned_recursive(g: &Local, e: &Entry) -> bool {
    e.kind == Kind::Recursive && e.owner.load(Ordering::Relaxed) == g.token()
}

/// A lock call on a recursive mutex this thread owns: only counted (out of line, so that the
/// other lock calls' own path stays short).
#[inline(never)]
fn relock(e: &Entry, real: impl FnOnce() -> c_int) -> c_int {
    let rc = real();
    if rc == 0 {
        e.depth.fetch_add(1, Ordering::Relaxed);
    }
    rc
}

fn took(g: &Local, e: &Entry) {
    if e.kind == Kind::Recursive {
        e.owner.store(g.token(), Ordering::Relaxed);
        e.depth.store(1, Ordering::Relaxed);
    }
}

pub(crate) unsafe extern "C" fn init(
    m: *mut pthread_mutex_t,
    attr: *const pthread_mutexattr_t,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let rc = unsafe { real::mutex_init(m, attr) };
    if rc == 0 {
        if let Some(_inside) = enter() {
            let mut t = libc::PTHREAD_MUTEX_DEFAULT;
            if !attr.is_null() {
                // SAFETY: `attr` is an initialised attribute object (the real init accepted it).
                unsafe { pthread_mutexattr_gettype(attr, &mut t) };
            }
            crate::table::init(
                m as usize,
                map(class::init_site_key(ret)),
                kind_from_type(t),
            );
        }
    }
    rc
}

pub(crate) unsafe fn destroy(m: *mut pthread_mutex_t) -> c_int {
    if let Some(_inside) = enter() {
        call::forget(m as usize);
    }
    // SAFETY: passed on.
    unsafe { real::mutex_destroy(m) }
}

/// A blocking lock call (`real` is the real call).
#[inline(always)]
fn lock_with(m: *mut pthread_mutex_t, ret: usize, real: impl FnOnce() -> c_int) -> c_int {
    let Some(g) = enter() else { return real() };
    let e = entry(m);
    if owned_recursive(&g, e) {
        return relock(e, real);
    }
    let rc = blocking(&g, e, Acquire::exclusive(), ret, real);
    if rc == 0 {
        took(&g, e);
    }
    rc
}

pub(crate) unsafe extern "C" fn lock(m: *mut pthread_mutex_t, ret: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    lock_with(m, ret, move || unsafe { real::mutex_lock(m) })
}

pub(crate) unsafe extern "C" fn timedlock(
    m: *mut pthread_mutex_t,
    t: *const timespec,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    lock_with(m, ret, move || unsafe { real::mutex_timedlock(m, t) })
}

pub(crate) unsafe extern "C" fn clocklock(
    m: *mut pthread_mutex_t,
    c: clockid_t,
    t: *const timespec,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    lock_with(m, ret, move || unsafe { real::mutex_clocklock(m, c, t) })
}

pub(crate) unsafe extern "C" fn trylock(m: *mut pthread_mutex_t, ret: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let real = move || unsafe { real::mutex_trylock(m) };
    let Some(g) = enter() else { return real() };
    let e = entry(m);
    if owned_recursive(&g, e) {
        return relock(e, real);
    }
    let rc = trying(&g, e, Acquire::exclusive(), ret, real);
    if rc == 0 {
        took(&g, e);
    }
    rc
}

pub(crate) unsafe extern "C" fn unlock(m: *mut pthread_mutex_t, ret: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let real = move || unsafe { real::mutex_unlock(m) };
    let Some(g) = enter() else { return real() };
    let e = entry(m);
    if owned_recursive(&g, e) {
        if e.depth.load(Ordering::Relaxed) > 1 {
            e.depth.fetch_sub(1, Ordering::Relaxed);
            return real();
        }
        e.depth.store(0, Ordering::Relaxed);
        e.owner.store(0, Ordering::Relaxed);
    }
    call::release(&g, e, ret);
    real()
}

/// A condvar wait's release of its mutex: the recursive owner's count, to give back with
/// [`wait_retake`].
pub(crate) struct Released {
    depth: u32,
    held: bool,
}

/// Releases `e` for a condvar wait (the wait unlocks the mutex).
pub(crate) fn wait_release(g: &Local, e: &Entry, ret: usize) -> Released {
    let mut depth = 0;
    if owned_recursive(g, e) {
        depth = e.depth.swap(0, Ordering::Relaxed);
        e.owner.store(0, Ordering::Relaxed);
    }
    // A wait on a mutex this thread does not hold is reported (bad unlock balance) and not
    // retaken afterwards.
    let held = e.map.is_held();
    call::release(g, e, ret);
    Released { depth, held }
}

/// Retakes `e` after a condvar wait (the wait locked the mutex again): validated on the current
/// held stack, at the wait's call site.
pub(crate) fn wait_retake(g: &Local, e: &Entry, r: Released, ret: usize) {
    if r.held {
        call::acquire(g, e, Acquire::exclusive(), ret);
    }
    if r.depth > 0 {
        e.owner.store(g.token(), Ordering::Relaxed);
        e.depth.store(r.depth, Ordering::Relaxed);
    }
}

/// The entry of a condvar wait's mutex.
pub(crate) fn entry_of(m: *mut pthread_mutex_t) -> &'static Entry {
    entry(m)
}
