//! `pthread_rwlock_*`.
//!
//! An rwlock is a sleeping lock. Its kind decides what its reads are: glibc's default kind
//! (`PTHREAD_RWLOCK_PREFER_READER_NP`, and `PREFER_WRITER_NP`, which glibc treats alike) lets a
//! read through while another reader holds the lock even if a writer waits, so a read is a
//! *recursive* read (the kernel's `read_lock`); `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`
//! blocks new readers behind a waiting writer, so a read is a non-recursive read (`down_read`),
//! and a read under a read of the same class can deadlock.

use libc::{c_int, clockid_t, pthread_rwlock_t, pthread_rwlockattr_t, timespec};
use lockdep::{Acquire, LockClassKey, LockMap, ReadKind, WaitType};

use crate::call::{self, blocking, trying};
use crate::class;
use crate::guard::enter;
use crate::real;
use crate::table::{Entry, Kind};

const PREFER_WRITER_NONRECURSIVE: c_int = 2;

extern "C" {
    fn pthread_rwlockattr_getkind_np(attr: *const pthread_rwlockattr_t, pref: *mut c_int) -> c_int;
}

fn map(key: &'static LockClassKey) -> LockMap {
    LockMap::named(key).with_wait(WaitType::Sleep, WaitType::Inv)
}

fn kind_from_pref(pref: c_int) -> Kind {
    if pref == PREFER_WRITER_NONRECURSIVE {
        Kind::RwLock(ReadKind::Shared)
    } else {
        Kind::RwLock(ReadKind::SharedRecursive)
    }
}

/// The kind of an rwlock initialised without us: glibc keeps it in the object (`__flags`, the
/// `unsigned int` at offset 48 on 64-bit targets, never changed by locking), so
/// `PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP` gets its kind.
fn static_kind(l: *mut pthread_rwlock_t) -> Kind {
    // SAFETY: a `pthread_rwlock_t` is 56 bytes on 64-bit glibc; the object is live.
    let flags = unsafe { std::ptr::read_volatile((l as *const u8).add(48) as *const c_int) };
    kind_from_pref(flags)
}

#[inline]
fn entry(l: *mut pthread_rwlock_t) -> &'static Entry {
    call::tracked(l as usize, |a| {
        (map(class::static_key(a)), static_kind(a as *mut _))
    })
}

fn read(e: &Entry) -> Acquire<'static> {
    match e.kind {
        Kind::RwLock(r) => Acquire::exclusive().with_read(r),
        _ => Acquire::shared_recursive(),
    }
}

pub(crate) unsafe extern "C" fn init(
    l: *mut pthread_rwlock_t,
    attr: *const pthread_rwlockattr_t,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let rc = unsafe { real::rwlock_init(l, attr) };
    if rc == 0 {
        if let Some(_inside) = enter() {
            let mut pref = 0;
            if !attr.is_null() {
                // SAFETY: `attr` is an initialised attribute object (the real init accepted it).
                unsafe { pthread_rwlockattr_getkind_np(attr, &mut pref) };
            }
            crate::table::init(
                l as usize,
                map(class::init_site_key(ret)),
                kind_from_pref(pref),
            );
        }
    }
    rc
}

pub(crate) unsafe fn destroy(l: *mut pthread_rwlock_t) -> c_int {
    if let Some(_inside) = enter() {
        call::forget(l as usize);
    }
    // SAFETY: passed on.
    unsafe { real::rwlock_destroy(l) }
}

macro_rules! rw_entry {
    ($(fn $name:ident($($a:ident: $t:ty),*) => $how:ident $wrap:ident $real:ident;)*) => {$(
        pub(crate) unsafe extern "C" fn $name(l: *mut pthread_rwlock_t, $($a: $t,)* ret: usize) -> c_int {
            // SAFETY: the caller's arguments, passed on.
            let real = move || unsafe { real::$real(l $(, $a)*) };
            let Some(g) = enter() else { return real() };
            let e = entry(l);
            $wrap(&g, e, $how(e), ret, real)
        }
    )*};
}

fn write(_: &Entry) -> Acquire<'static> {
    Acquire::exclusive()
}

rw_entry! {
    fn rdlock() => read blocking rwlock_rdlock;
    fn tryrdlock() => read trying rwlock_tryrdlock;
    fn timedrdlock(t: *const timespec) => read blocking rwlock_timedrdlock;
    fn clockrdlock(c: clockid_t, t: *const timespec) => read blocking rwlock_clockrdlock;
    fn wrlock() => write blocking rwlock_wrlock;
    fn trywrlock() => write trying rwlock_trywrlock;
    fn timedwrlock(t: *const timespec) => write blocking rwlock_timedwrlock;
    fn clockwrlock(c: clockid_t, t: *const timespec) => write blocking rwlock_clockwrlock;
}

pub(crate) unsafe extern "C" fn unlock(l: *mut pthread_rwlock_t, ret: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let real = move || unsafe { real::rwlock_unlock(l) };
    let Some(g) = enter() else { return real() };
    let e = entry(l);
    call::release(&g, e, ret);
    real()
}
