//! # lockdep-preload: the lockdep validator for any pthread program
//!
//! `liblockdep_preload.so` is loaded into an unmodified C or C++ program with `LD_PRELOAD`
//! (`lockdep run -- ./prog` does that) and interposes the pthread lock functions:
//! `pthread_mutex_*`, `pthread_rwlock_*`, `pthread_spin_*` and the `pthread_cond_*` waits. Each
//! call is shown to the validator of the `lockdep` crate, through its process-wide driver and
//! the same [`LockMap`](lockdep::LockMap) hooks a Rust lock calls, and then passed to the real
//! function, found with `dlsym(RTLD_NEXT)` (`dlvsym` for the versioned condvar waits). There
//! is no rule here: classes, dependencies, wait contexts and reports are the engine's.
//!
//! ## The model
//!
//! - **Instances.** A pthread object cannot grow a lock map, so a side table maps the object's
//!   address to its entry (a lock map and the lock's type), made by
//!   `pthread_*_init` or, for a statically initialised object, at its first use; `destroy`
//!   forgets it (a reused address never inherits a stale class), reporting a destroyed lock
//!   that the caller still holds.
//! - **Classes** are the kernel's: a dynamically initialised lock's class is its init call site
//!   (the return address of `pthread_*_init`: one class for all objects an init helper makes,
//!   kept across destroy and re-init), a statically initialised one is keyed by its address and
//!   named after its symbol.
//! - **Types.** Recursive mutexes may be re-locked by their owner (only the outermost lock is
//!   validated); error-checking ones report a re-lock or a foreign unlock and return the real
//!   `EDEADLK`/`EPERM`; a normal one's self-deadlock is reported before the real call hangs.
//!   glibc's default rwlock prefers readers, so its reads are recursive reads; a
//!   `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP` one's reads are not. Spinlocks spin (a
//!   sleeping lock under one is an invalid wait context). A failed trylock or a timed-out lock
//!   leaves nothing held; a condvar wait releases and retakes its mutex through the validator.
//! - **Robustness.** A per-thread guard makes every call made while the interposer itself runs
//!   (allocation, symbolization, `dlsym`) go straight to the real function; threads' validator
//!   state lives in thread-locals without destructors of ours, so locks taken before `main` or
//!   in thread-local destructors are handled (or, once the thread's state is gone, passed
//!   through). Fork safety is the driver's (`lockdep::rt`): the child of a fork never inherits
//!   a validator lock held by another thread. This library's own locks are leaf spinlocks,
//!   taken around `fork` as well.
//!
//! `LOCKDEP=off|warn|panic` and `LOCKDEP_RECORD=DIR` work as in a Rust program; with `panic`,
//! the process aborts after the report.

#![warn(missing_docs, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
#![deny(missing_debug_implementations)]
#![cfg(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod call;
mod class;
mod cond;
mod guard;
mod leaf;
mod mutex;
mod real;
mod rwlock;
mod spin;
mod table;

use libc::{c_int, clockid_t, pthread_cond_t, pthread_mutex_t, pthread_mutexattr_t};
use libc::{pthread_rwlock_t, pthread_rwlockattr_t, pthread_spinlock_t, timespec};

/// The instruction that moves the entry point's return address into the argument register after
/// the real arguments (`$n` is how many there are), then the jump to the implementation, which
/// takes that address as one more argument. The return address is where the program called the
/// pthread function: the class of an init call, the site of a lock call.
#[cfg(target_arch = "x86_64")]
macro_rules! trampoline {
    (1) => {
        "mov rsi, [rsp]\njmp {f}"
    };
    (2) => {
        "mov rdx, [rsp]\njmp {f}"
    };
    (3) => {
        "mov rcx, [rsp]\njmp {f}"
    };
    (4) => {
        "mov r8, [rsp]\njmp {f}"
    };
}

#[cfg(target_arch = "aarch64")]
macro_rules! trampoline {
    (1) => {
        "mov x1, x30\nb {f}"
    };
    (2) => {
        "mov x2, x30\nb {f}"
    };
    (3) => {
        "mov x3, x30\nb {f}"
    };
    (4) => {
        "mov x4, x30\nb {f}"
    };
}

/// Defines exported pthread entry points, each a two-instruction trampoline into its
/// implementation with the caller's return address appended to the arguments.
macro_rules! interpose {
    ($($(#[$doc:meta])* fn $name:ident($($a:ident: $t:ty),*) => $n:tt $imp:path;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// As for the C function: the arguments must be what it expects.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($a: $t),*) -> c_int {
            core::arch::naked_asm!(trampoline!($n), f = sym $imp)
        }
    )*};
    (unwind: $($(#[$doc:meta])* fn $name:ident($($a:ident: $t:ty),*) => $n:tt $imp:path;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// As for the C function: the arguments must be what it expects. A cancellation
        /// unwinds through it.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name($($a: $t),*) -> c_int {
            core::arch::naked_asm!(trampoline!($n), f = sym $imp)
        }
    )*};
}

interpose! {
    /// `pthread_mutex_init`: a new instance, in the class of this call site.
    fn pthread_mutex_init(m: *mut pthread_mutex_t, a: *const pthread_mutexattr_t) => 2 mutex::init;
    /// `pthread_mutex_lock`, validated before it can block.
    fn pthread_mutex_lock(m: *mut pthread_mutex_t) => 1 mutex::lock;
    /// `pthread_mutex_trylock`: held (never validated) only if it succeeded.
    fn pthread_mutex_trylock(m: *mut pthread_mutex_t) => 1 mutex::trylock;
    /// `pthread_mutex_timedlock`: validated before it can block, released again on a timeout.
    fn pthread_mutex_timedlock(m: *mut pthread_mutex_t, t: *const timespec) => 2 mutex::timedlock;
    /// `pthread_mutex_clocklock`: as `pthread_mutex_timedlock`.
    fn pthread_mutex_clocklock(m: *mut pthread_mutex_t, c: clockid_t, t: *const timespec) => 3 mutex::clocklock;
    /// `pthread_mutex_unlock`: a release (a bad unlock balance if not held).
    fn pthread_mutex_unlock(m: *mut pthread_mutex_t) => 1 mutex::unlock;

    /// `pthread_rwlock_init`: a new instance, in the class of this call site, with the read
    /// recursion of its kind.
    fn pthread_rwlock_init(l: *mut pthread_rwlock_t, a: *const pthread_rwlockattr_t) => 2 rwlock::init;
    /// `pthread_rwlock_rdlock`.
    fn pthread_rwlock_rdlock(l: *mut pthread_rwlock_t) => 1 rwlock::rdlock;
    /// `pthread_rwlock_tryrdlock`.
    fn pthread_rwlock_tryrdlock(l: *mut pthread_rwlock_t) => 1 rwlock::tryrdlock;
    /// `pthread_rwlock_timedrdlock`.
    fn pthread_rwlock_timedrdlock(l: *mut pthread_rwlock_t, t: *const timespec) => 2 rwlock::timedrdlock;
    /// `pthread_rwlock_clockrdlock`.
    fn pthread_rwlock_clockrdlock(l: *mut pthread_rwlock_t, c: clockid_t, t: *const timespec) => 3 rwlock::clockrdlock;
    /// `pthread_rwlock_wrlock`.
    fn pthread_rwlock_wrlock(l: *mut pthread_rwlock_t) => 1 rwlock::wrlock;
    /// `pthread_rwlock_trywrlock`.
    fn pthread_rwlock_trywrlock(l: *mut pthread_rwlock_t) => 1 rwlock::trywrlock;
    /// `pthread_rwlock_timedwrlock`.
    fn pthread_rwlock_timedwrlock(l: *mut pthread_rwlock_t, t: *const timespec) => 2 rwlock::timedwrlock;
    /// `pthread_rwlock_clockwrlock`.
    fn pthread_rwlock_clockwrlock(l: *mut pthread_rwlock_t, c: clockid_t, t: *const timespec) => 3 rwlock::clockwrlock;
    /// `pthread_rwlock_unlock`.
    fn pthread_rwlock_unlock(l: *mut pthread_rwlock_t) => 1 rwlock::unlock;

    /// `pthread_spin_init`: a new spinning instance, in the class of this call site.
    fn pthread_spin_init(s: *mut pthread_spinlock_t, pshared: c_int) => 2 spin::init;
    /// `pthread_spin_lock`.
    fn pthread_spin_lock(s: *mut pthread_spinlock_t) => 1 spin::lock;
    /// `pthread_spin_trylock`.
    fn pthread_spin_trylock(s: *mut pthread_spinlock_t) => 1 spin::trylock;
    /// `pthread_spin_unlock`.
    fn pthread_spin_unlock(s: *mut pthread_spinlock_t) => 1 spin::unlock;

}

interpose! {
    unwind:
    /// `pthread_cond_wait`: the mutex is released and retaken through the validator.
    fn pthread_cond_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) => 2 cond::wait;
    /// `pthread_cond_timedwait`.
    fn pthread_cond_timedwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, t: *const timespec) => 3 cond::timedwait;
    /// `pthread_cond_clockwait`.
    fn pthread_cond_clockwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, k: clockid_t, t: *const timespec) => 4 cond::clockwait;
}

/// `pthread_mutex_destroy`: the instance is forgotten.
///
/// # Safety
/// As for the C function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_mutex_destroy(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: passed on.
    unsafe { mutex::destroy(m) }
}

/// `pthread_rwlock_destroy`: the instance is forgotten.
///
/// # Safety
/// As for the C function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_rwlock_destroy(l: *mut pthread_rwlock_t) -> c_int {
    // SAFETY: passed on.
    unsafe { rwlock::destroy(l) }
}

/// `pthread_spin_destroy`: the instance is forgotten.
///
/// # Safety
/// As for the C function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_spin_destroy(s: *mut pthread_spinlock_t) -> c_int {
    // SAFETY: passed on.
    unsafe { spin::destroy(s) }
}

/// Resolves the real functions, registers the fork handlers of this library's own locks and
/// makes the process-wide validator (which registers the validator's fork handlers) as soon as
/// the library is loaded, before the program has threads (calls made before this, from other
/// libraries' constructors, resolve lazily).
///
/// The validator is made here rather than at the first lock: a thread that made it then, while
/// another thread forked, was inside its one-time initialisation (registering the fork
/// handlers waits for the fork's own lock), and the child, which inherits the initialisation
/// as begun but not its thread, waited for it forever at its first lock.
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = {
    extern "C" fn init() {
        real::resolve_all();
        table::install_fork_handlers();
        // Off (`LOCKDEP=off`), the validator is never made (nor a recording begun).
        let _ = std::panic::catch_unwind(|| {
            if lockdep::rt::action() != lockdep::rt::Action::Off {
                let _ = lockdep::rt::global();
            }
        });
    }
    init
};
