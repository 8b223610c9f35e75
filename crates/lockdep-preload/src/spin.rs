//! `pthread_spin_*`: spinning locks (wait type `Spin`): a sleeping lock (a mutex, an rwlock)
//! taken while one is held is an invalid wait context.

use libc::{c_int, pthread_spinlock_t};
use lockdep::{Acquire, LockClassKey, LockMap, WaitType};

use crate::call::{self, blocking, trying};
use crate::class;
use crate::guard::enter;
use crate::real;
use crate::table::{Entry, Kind};

fn map(key: &'static LockClassKey) -> LockMap {
    LockMap::named(key).with_wait(WaitType::Spin, WaitType::Inv)
}

#[inline]
fn entry(s: *mut pthread_spinlock_t) -> &'static Entry {
    call::tracked(s as usize, |a| (map(class::static_key(a)), Kind::Spin))
}

pub(crate) unsafe extern "C" fn init(
    s: *mut pthread_spinlock_t,
    pshared: c_int,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let rc = unsafe { real::spin_init(s, pshared) };
    if rc == 0 {
        if let Some(_inside) = enter() {
            crate::table::init(s as usize, map(class::init_site_key(ret)), Kind::Spin);
        }
    }
    rc
}

pub(crate) unsafe fn destroy(s: *mut pthread_spinlock_t) -> c_int {
    if let Some(_inside) = enter() {
        call::forget(s as usize);
    }
    // SAFETY: passed on.
    unsafe { real::spin_destroy(s) }
}

pub(crate) unsafe extern "C" fn lock(s: *mut pthread_spinlock_t, ret: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let real = move || unsafe { real::spin_lock(s) };
    let Some(g) = enter() else { return real() };
    let e = entry(s);
    blocking(&g, e, Acquire::exclusive(), ret, real)
}

pub(crate) unsafe extern "C" fn trylock(s: *mut pthread_spinlock_t, ret: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let real = move || unsafe { real::spin_trylock(s) };
    let Some(g) = enter() else { return real() };
    let e = entry(s);
    trying(&g, e, Acquire::exclusive(), ret, real)
}

pub(crate) unsafe extern "C" fn unlock(s: *mut pthread_spinlock_t, ret: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let real = move || unsafe { real::spin_unlock(s) };
    let Some(g) = enter() else { return real() };
    let e = entry(s);
    call::release(&g, e, ret);
    real()
}
