//! `pthread_cond_wait`, `pthread_cond_timedwait`, `pthread_cond_clockwait`.
//!
//! A wait unlocks its mutex, sleeps, and locks the mutex again before it returns (also after a
//! timeout). The interposer shows exactly that to the validator: a release before the real
//! wait, and an acquisition after it, validated against the locks the thread holds then. So a
//! wait that retakes its mutex under another lock records that order, as any lock call would.

use libc::{c_int, clockid_t, pthread_cond_t, pthread_mutex_t, timespec};

use crate::guard::{enter, no_unwind};
use crate::mutex::{entry_of, wait_release, wait_retake, Released};
use crate::real;
use crate::table::Entry;

/// A wait (`real`). Whatever its result (0, `ETIMEDOUT`; or `EPERM`/`EINVAL`, when the wait did
/// not happen and the mutex is as it was), a mutex the thread held is held again, and so it is
/// when the wait ends in a forced unwind (the thread was cancelled: glibc locks the mutex again
/// before the cancellation handlers run, which usually unlock it).
#[inline]
fn waiting(m: *mut pthread_mutex_t, ret: usize, real: impl FnOnce() -> c_int) -> c_int {
    let Some(g) = enter() else { return real() };
    let (e, released) = no_unwind(|| {
        let e = entry_of(m);
        (e, wait_release(&g, e, ret))
    });
    drop(g);
    let _retake = Retake {
        e,
        released: Some(released),
        ret,
    };
    real()
}

/// Retakes the mutex when the wait returns or unwinds.
struct Retake {
    e: &'static Entry,
    released: Option<Released>,
    ret: usize,
}

impl Drop for Retake {
    fn drop(&mut self) {
        if let (Some(r), Some(g)) = (self.released.take(), enter()) {
            wait_retake(&g, self.e, r, self.ret);
        }
    }
}

pub(crate) unsafe extern "C-unwind" fn wait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    waiting(m, ret, move || unsafe { real::cond_wait(c, m) })
}

pub(crate) unsafe extern "C-unwind" fn timedwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    t: *const timespec,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    waiting(m, ret, move || unsafe { real::cond_timedwait(c, m, t) })
}

pub(crate) unsafe extern "C-unwind" fn clockwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    k: clockid_t,
    t: *const timespec,
    ret: usize,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    waiting(m, ret, move || unsafe { real::cond_clockwait(c, m, k, t) })
}
