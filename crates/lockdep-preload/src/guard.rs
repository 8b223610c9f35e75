//! The per-thread state of the interposer: the re-entry guard, and a memo of call-site texts.
//!
//! While the interposer works on a thread (looking an object up, naming a class, validating,
//! printing a report, and the real call itself), every pthread call made on the same thread
//! (by the allocator, `dlsym`, the symbolizer, a signal handler) must go straight to the real
//! function: [`enter`] says whether a call may use the validator, and the [`Inside`] it returns
//! is the only way to the thread's state, so each interposed call touches thread-local storage
//! once (in a shared library every access is a call into the dynamic linker). The state is a
//! constant-initialised thread-local without a destructor, so it exists from the thread's first
//! instruction to its last: before `main` and in thread-local destructors.
//!
//! A panic in the validator (the `panic` action's, after its report was printed) cannot unwind
//! into C: the entry points are `extern "C"`, so it aborts the process, as `LOCKDEP=panic`
//! promises. (The condvar waits are `extern "C-unwind"`, since a thread cancelled while it waits
//! unwinds through them; they catch a panic of their own and abort.)

use std::cell::{Cell, UnsafeCell};

const SITE_CACHE: usize = 64;

pub(crate) struct Local {
    inside: Cell<bool>,
    /// A direct-mapped cache of site texts by return address: the lock calls of a loop hit it
    /// every time.
    sites: UnsafeCell<[(usize, &'static str); SITE_CACHE]>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            inside: Cell::new(false),
            sites: UnsafeCell::new([(0, ""); SITE_CACHE]),
        }
    };
}

/// Proof that this thread is inside the interposer (and the way to its state), until dropped.
pub(crate) struct Inside {
    local: *const Local,
}

impl Drop for Inside {
    #[inline]
    fn drop(&mut self) {
        self.local().inside.set(false);
    }
}

impl Inside {
    #[inline]
    fn local(&self) -> &Local {
        // SAFETY: the thread's `LOCAL`, which has no destructor: it lives as long as the
        // thread, and an `Inside` never leaves the thread (it is neither `Send` nor `Sync`).
        unsafe { &*self.local }
    }

    /// The text of the lock call that returns to `ret`: `function (file:line)`.
    #[inline]
    pub(crate) fn site_text(&self, ret: usize) -> &'static str {
        let i = (ret >> 2 ^ ret >> 8) & (SITE_CACHE - 1);
        // SAFETY: the memo is this thread's, and no reference to it outlives this statement.
        let (k, v) = unsafe { (*self.local().sites.get())[i] };
        if k == ret {
            return v;
        }
        let text = crate::class::site_text(ret);
        // SAFETY: as above.
        unsafe { (*self.local().sites.get())[i] = (ret, text) };
        text
    }
}

/// `Some` if the thread was not inside the interposer already (it now is, until the value is
/// dropped); `None` for a nested call, which must only call the real function.
#[inline]
pub(crate) fn enter() -> Option<Inside> {
    let local = LOCAL.with(|l| l as *const Local);
    // SAFETY: as in `Inside::local`.
    let inside = unsafe { &(*local).inside };
    (!inside.replace(true)).then_some(Inside { local })
}

/// Runs validator work where a panic must not unwind (a `C-unwind` entry point): it aborts.
pub(crate) fn no_unwind<R>(f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => std::process::abort(),
    }
}
