//! The real pthread functions: the next definition after this library (`dlsym(RTLD_NEXT)`),
//! and for the condvar waits the current symbol version (`dlvsym`, `GLIBC_2.3.2`: the
//! unversioned lookup could return the 2.2.5 compatibility version for old condvars).
//!
//! Each address is looked up once, at load time ([`resolve_all`]) or on the first call if that
//! comes earlier (another library's constructor), and kept in an atomic word, which starts out
//! as a function that looks the real one up: a call is one load and an indirect call, with no
//! test of whether the lookup was made.

use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{c_int, c_void, clockid_t, pthread_cond_t, pthread_mutex_t, pthread_mutexattr_t};
use libc::{pthread_rwlock_t, pthread_rwlockattr_t, pthread_spinlock_t, timespec};

/// The address of `name`, or 0.
fn find(name: &CStr, version: Option<&CStr>) -> usize {
    let mut f = std::ptr::null_mut::<c_void>();
    if let Some(v) = version {
        // SAFETY: `dlvsym` with `RTLD_NEXT` and NUL-terminated names has no other precondition.
        f = unsafe { libc::dlvsym(libc::RTLD_NEXT, name.as_ptr(), v.as_ptr()) };
    }
    if f.is_null() {
        // SAFETY: as above.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    }
    f as usize
}

/// The address of `name`, cached in `slot`; a function that does not exist is fatal (the
/// program called it, and there is nothing to pass the call to).
#[cold]
fn lookup(slot: &AtomicPtr<()>, name: &CStr, version: Option<&CStr>) -> usize {
    let f = find(name, version);
    if f == 0 {
        let msg = format!(
            "lockdep-preload: cannot find the real {} (dlsym(RTLD_NEXT) found nothing)\n",
            name.to_string_lossy()
        );
        // SAFETY: writing a buffer of this length to stderr.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        std::process::abort();
    }
    slot.store(f as *mut (), Ordering::Relaxed);
    f
}

macro_rules! real {
    ($($name:ident = $sym:literal $(@ $ver:literal)? : fn($($a:ident: $t:ty),*);)*) => {
        /// The functions each slot starts with: they look the real one up, keep it in the
        /// slot, and call it.
        mod lazy {
            use super::*;
            $(
                pub(super) unsafe extern "C" fn $name($($a: $t),*) -> c_int {
                    let f = lookup(&slot::$name, $sym, real!(@ver $($ver)?));
                    // SAFETY: `f` is the address of the C library's function of this name,
                    // whose type is this one.
                    let f: unsafe extern "C" fn($($t),*) -> c_int = unsafe { std::mem::transmute(f) };
                    // SAFETY: the caller passes what the C function expects.
                    unsafe { f($($a),*) }
                }
            )*
        }
        /// The function each call goes to: the real one once looked up, until then its `lazy`
        /// one.
        mod slot {
            use std::sync::atomic::AtomicPtr;
            $(#[allow(non_upper_case_globals)] pub(super) static $name: AtomicPtr<()> = AtomicPtr::new(super::lazy::$name as *mut ());)*
        }
        $(
            /// The real function.
            ///
            /// # Safety
            /// As for the C function.
            #[inline]
            pub(crate) unsafe fn $name($($a: $t),*) -> c_int {
                let f = slot::$name.load(Ordering::Relaxed);
                // SAFETY: `f` is the real function's address or its `lazy` one's, both of this
                // type.
                let f: unsafe extern "C" fn($($t),*) -> c_int = unsafe { std::mem::transmute(f) };
                // SAFETY: the caller passes what the C function expects.
                unsafe { f($($a),*) }
            }
        )*
        /// Looks every real function up now (one missing from this C library is only fatal if
        /// the program calls it).
        pub(crate) fn resolve_all() {
            $(
                let f = find($sym, real!(@ver $($ver)?));
                if f != 0 {
                    slot::$name.store(f as *mut (), Ordering::Relaxed);
                }
            )*
        }
    };
    (@ver $ver:literal) => { Some($ver) };
    (@ver) => { None };
}

real! {
    mutex_init = c"pthread_mutex_init": fn(m: *mut pthread_mutex_t, a: *const pthread_mutexattr_t);
    mutex_destroy = c"pthread_mutex_destroy": fn(m: *mut pthread_mutex_t);
    mutex_lock = c"pthread_mutex_lock": fn(m: *mut pthread_mutex_t);
    mutex_trylock = c"pthread_mutex_trylock": fn(m: *mut pthread_mutex_t);
    mutex_timedlock = c"pthread_mutex_timedlock": fn(m: *mut pthread_mutex_t, t: *const timespec);
    mutex_clocklock = c"pthread_mutex_clocklock": fn(m: *mut pthread_mutex_t, c: clockid_t, t: *const timespec);
    mutex_unlock = c"pthread_mutex_unlock": fn(m: *mut pthread_mutex_t);

    rwlock_init = c"pthread_rwlock_init": fn(l: *mut pthread_rwlock_t, a: *const pthread_rwlockattr_t);
    rwlock_destroy = c"pthread_rwlock_destroy": fn(l: *mut pthread_rwlock_t);
    rwlock_rdlock = c"pthread_rwlock_rdlock": fn(l: *mut pthread_rwlock_t);
    rwlock_tryrdlock = c"pthread_rwlock_tryrdlock": fn(l: *mut pthread_rwlock_t);
    rwlock_timedrdlock = c"pthread_rwlock_timedrdlock": fn(l: *mut pthread_rwlock_t, t: *const timespec);
    rwlock_clockrdlock = c"pthread_rwlock_clockrdlock": fn(l: *mut pthread_rwlock_t, c: clockid_t, t: *const timespec);
    rwlock_wrlock = c"pthread_rwlock_wrlock": fn(l: *mut pthread_rwlock_t);
    rwlock_trywrlock = c"pthread_rwlock_trywrlock": fn(l: *mut pthread_rwlock_t);
    rwlock_timedwrlock = c"pthread_rwlock_timedwrlock": fn(l: *mut pthread_rwlock_t, t: *const timespec);
    rwlock_clockwrlock = c"pthread_rwlock_clockwrlock": fn(l: *mut pthread_rwlock_t, c: clockid_t, t: *const timespec);
    rwlock_unlock = c"pthread_rwlock_unlock": fn(l: *mut pthread_rwlock_t);

    spin_init = c"pthread_spin_init": fn(s: *mut pthread_spinlock_t, pshared: c_int);
    spin_destroy = c"pthread_spin_destroy": fn(s: *mut pthread_spinlock_t);
    spin_lock = c"pthread_spin_lock": fn(s: *mut pthread_spinlock_t);
    spin_trylock = c"pthread_spin_trylock": fn(s: *mut pthread_spinlock_t);
    spin_unlock = c"pthread_spin_unlock": fn(s: *mut pthread_spinlock_t);

    cond_wait = c"pthread_cond_wait" @ c"GLIBC_2.3.2": fn(c: *mut pthread_cond_t, m: *mut pthread_mutex_t);
    cond_timedwait = c"pthread_cond_timedwait" @ c"GLIBC_2.3.2": fn(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, t: *const timespec);
    cond_clockwait = c"pthread_cond_clockwait": fn(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, k: clockid_t, t: *const timespec);
}
