//! The real pthread functions: the next definition after this library (`dlsym(RTLD_NEXT)`),
//! and for the condvar waits the current symbol version (`dlvsym`, `GLIBC_2.3.2`: the
//! unversioned lookup could return the 2.2.5 compatibility version for old condvars).
//!
//! Each address is looked up once, at load time ([`resolve_all`]) or on the first call if that
//! comes earlier (another library's constructor), and kept in an atomic word.

use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};

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
fn lookup(slot: &AtomicUsize, name: &CStr, version: Option<&CStr>) -> usize {
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
    slot.store(f, Ordering::Relaxed);
    f
}

macro_rules! real {
    ($($name:ident = $sym:literal $(@ $ver:literal)? : fn($($a:ident: $t:ty),*);)*) => {
        /// The cached addresses, one static per function (0 until looked up).
        mod slot {
            use std::sync::atomic::AtomicUsize;
            $(#[allow(non_upper_case_globals)] pub(super) static $name: AtomicUsize = AtomicUsize::new(0);)*
        }
        $(
            /// The real function.
            ///
            /// # Safety
            /// As for the C function.
            #[inline]
            pub(crate) unsafe fn $name($($a: $t),*) -> c_int {
                let mut f = slot::$name.load(Ordering::Relaxed);
                if f == 0 {
                    f = lookup(&slot::$name, $sym, real!(@ver $($ver)?));
                }
                // SAFETY: `f` is the address of the C library's function of this name, whose
                // type is this one.
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
                    slot::$name.store(f, Ordering::Relaxed);
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
