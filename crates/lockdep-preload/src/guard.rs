//! The per-thread state of the interposer: the re-entry guard, the driver's hooks for the
//! thread, and a memo of call sites.
//!
//! While the interposer works on a thread (looking an object up, naming a class, validating,
//! printing a report, and the real call itself), every pthread call made on the same thread
//! (by the allocator, `dlsym`, the symbolizer, a signal handler) must go straight to the real
//! function: [`enter`] says whether a call may use the validator, and the [`Inside`] it returns
//! is the only way to the thread's state. In a shared library a Rust thread-local is reached
//! with a call into the dynamic linker (`__tls_get_addr`), so each interposed call reads one
//! thread-local only: this one, which also keeps the driver's [`ThreadHooks`] (the address of
//! the driver's own per-thread word, which its hooks would otherwise look up on every call) and
//! the call sites, interned (a held lock records one with a single store). On x86-64 even that
//! one is no call: the state is an initial-exec thread-local of the library's own (see
//! `local`), two instructions. It is all zeros at first and has no destructor, so it exists
//! from the thread's first instruction to its last: before `main` and in thread-local
//! destructors.
//!
//! A panic in the validator (the `panic` action's, after its report was printed) cannot unwind
//! into C: the entry points are `extern "C"`, so it aborts the process, as `LOCKDEP=panic`
//! promises. (The condvar waits are `extern "C-unwind"`, since a thread cancelled while it waits
//! unwinds through them; they catch a panic of their own and abort.)

use std::cell::{Cell, UnsafeCell};

use lockdep::rt::ThreadHooks;
use lockdep::{InternedText, Site};

const SITE_CACHE: usize = 64;

pub(crate) struct Local {
    inside: Cell<bool>,
    /// The driver's hooks for this thread (`None` until the first validated call): through
    /// them a hook reads no thread-local of the driver's, so a call reads this one only.
    hooks: Cell<Option<ThreadHooks>>,
    /// A direct-mapped cache of sites by return address, interned (recorded with one store):
    /// the lock calls of a loop hit it every time.
    sites: UnsafeCell<[(usize, Option<InternedText>); SITE_CACHE]>,
}

// The state is all zeros at first (`false`, `None`, `(0, None)`), as a `.tbss` block is.
#[cfg(not(target_arch = "x86_64"))]
thread_local! {
    static LOCAL: Local = const {
        Local {
            inside: Cell::new(false),
            hooks: Cell::new(None),
            sites: UnsafeCell::new([(0, None); SITE_CACHE]),
        }
    };
}

/// This thread's state.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn local() -> *const Local {
    LOCAL.with(|l| l as *const Local)
}

// On x86-64 the state is a thread-local of the initial-exec model, which Rust's thread-locals
// cannot be on stable: a `.tbss` symbol of this library's own, hidden (never exported), reached
// at a fixed offset from the thread pointer that the dynamic linker writes into the GOT once.
// Each access is two instructions instead of a call to `__tls_get_addr`. The library is then
// marked `DF_STATIC_TLS`: its thread-locals live in the static TLS block, which a library
// loaded at start-up (`LD_PRELOAD`, how `lockdep run` loads it) always has room in.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align {align}",
    ".globl lockdep_preload_local",
    ".hidden lockdep_preload_local",
    ".type lockdep_preload_local,@object",
    ".size lockdep_preload_local,{size}",
    "lockdep_preload_local:",
    ".zero {size}",
    ".popsection",
    align = const std::mem::align_of::<Local>().trailing_zeros(),
    size = const std::mem::size_of::<Local>(),
);

/// This thread's state.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn local() -> *const Local {
    let p: usize;
    // SAFETY: the GOT entry holds the offset of this thread's copy of `lockdep_preload_local`
    // from the thread pointer (`%fs:0` holds the thread pointer itself): the two instructions
    // read memory only, and give the same address every time on a thread.
    unsafe {
        core::arch::asm!(
            "mov {p}, qword ptr [rip + lockdep_preload_local@GOTTPOFF]",
            "add {p}, qword ptr fs:[0]",
            p = out(reg) p,
            options(pure, readonly, nostack),
        );
    }
    p as *const Local
}

/// Proof that this thread is inside the interposer, until dropped; it derefs to the thread's
/// state (the only way to it).
pub(crate) struct Inside {
    local: *const Local,
}

impl Drop for Inside {
    #[inline]
    fn drop(&mut self) {
        self.inside.set(false);
    }
}

impl std::ops::Deref for Inside {
    type Target = Local;

    #[inline(always)]
    fn deref(&self) -> &Local {
        // SAFETY: the thread's state, which has no destructor: it lives as long as the thread,
        // and an `Inside` never leaves the thread (it is neither `Send` nor `Sync`).
        unsafe { &*self.local }
    }
}

/// The memo slot of the call that returns to `ret`: its low bits (the call sites of one
/// function, near each other, do not collide).
#[inline(always)]
fn site_slot(ret: usize) -> usize {
    ret & (SITE_CACHE - 1)
}

// The methods take the state by reference, which is its address in a register: the slow paths
// they call are handed that, not an `Inside` kept in memory for them.
impl Local {
    /// A word unique to the calling thread while it lives (a recursive mutex's owner): the
    /// address of its state.
    #[inline]
    pub(crate) fn token(&self) -> usize {
        self as *const Local as usize
    }

    /// The driver's hooks for this thread.
    #[inline]
    pub(crate) fn hooks(&self) -> ThreadHooks {
        match self.hooks.get() {
            Some(h) => h,
            None => self.first_hooks(),
        }
    }

    #[cold]
    #[inline(never)]
    fn first_hooks(&self) -> ThreadHooks {
        let h = ThreadHooks::current();
        self.hooks.set(Some(h));
        h
    }

    /// The site of the lock call that returns to `ret`: `function (file:line)`.
    #[inline(always)]
    pub(crate) fn site(&self, ret: usize) -> Site {
        Site::Interned(self.site_text(ret))
    }

    #[inline(always)]
    fn site_text(&self, ret: usize) -> InternedText {
        // SAFETY: the memo is this thread's, and no reference to it outlives this statement.
        let (k, v) = unsafe { (*self.sites.get())[site_slot(ret)] };
        if k == ret {
            // SAFETY: a slot with a key (a return address is never 0) has its site
            // (`site_miss` writes both).
            return unsafe { v.unwrap_unchecked() };
        }
        self.site_miss(ret)
    }

    #[cold]
    #[inline(never)]
    fn site_miss(&self, ret: usize) -> InternedText {
        let t = InternedText::new(crate::class::site_text(ret));
        // SAFETY: as in `site_text`.
        unsafe { (*self.sites.get())[site_slot(ret)] = (ret, Some(t)) };
        t
    }
}

/// `Some` if the thread was not inside the interposer already (it now is, until the value is
/// dropped); `None` for a nested call, which must only call the real function.
#[inline]
pub(crate) fn enter() -> Option<Inside> {
    let local = local();
    // SAFETY: as in `Inside::local`.
    let inside = unsafe { &(*local).inside };
    // Not `then_some`: its argument is made either way, and a nested call's `Inside`, dropped
    // at once, would clear the guard of the call it is nested in.
    if inside.replace(true) {
        None
    } else {
        Some(Inside { local })
    }
}

/// Runs validator work where a panic must not unwind (a `C-unwind` entry point): it aborts.
pub(crate) fn no_unwind<R>(f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => std::process::abort(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_call_is_refused_and_leaves_the_guard_up() {
        let outer = enter().expect("not inside yet");
        assert!(enter().is_none());
        assert!(enter().is_none(), "the nested call took the guard down");
        drop(outer);
        assert!(enter().is_some());
    }
}
