//! Wound/wait mutexes (`lockdep::ww`): many locks of one class, in any order, without deadlock.
//!
//! Some programs must lock several objects chosen at run time: the rows of a transaction, the
//! buffers of a GPU job, two accounts of a transfer. No global order exists, so two threads can
//! lock the same pair in opposite orders. The kernel's answer is the wound/wait mutex
//! (`Documentation/locking/ww-mutex-design.rst`), and this module is that design, validated:
//!
//! - a [`WwClass`] groups the mutexes that may be locked together and picks the resolution:
//!   [`WwKind::WoundWait`] or [`WwKind::WaitDie`];
//! - an [`AcquireCtx`] is one transaction; it takes a *stamp* (its age) when it starts;
//! - [`AcquireCtx::lock`] locks a [`WwMutex`] or says [`WwError::Deadlock`]: this (younger)
//!   context must *back off*: release everything it holds, wait for the contended mutex with
//!   [`AcquireCtx::lock_slow`], and lock the rest again. [`AcquireCtx::lock_all`] does all that.
//!
//! Under wait-die a younger context that finds an older one holding the mutex backs off at once;
//! under wound-wait the older one *wounds* the younger holder, which backs off at its next lock
//! (or at once if it is waiting). Either way every wait is for a context with a stamp on the right
//! side, so waits cannot form a cycle, and a context that backs off keeps its stamp and so wins
//! eventually.
//!
//! ```
//! use lockdep::ww::{AcquireCtx, WwMutex};
//! use std::sync::Arc;
//!
//! let class = lockdep::ww_class!(wound_wait, "accounts");
//! let accounts: Arc<Vec<WwMutex<i64>>> =
//!     Arc::new((0..4).map(|_| WwMutex::new(class, 100)).collect());
//! let threads: Vec<_> = (0..4)
//!     .map(|t| {
//!         let accounts = accounts.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..100 {
//!                 let (from, to) = ((t + i) % 4, (t + 3 * i + 1) % 4);
//!                 let ctx = AcquireCtx::new(class);
//!                 let mut g = ctx.lock_all(&[&accounts[from], &accounts[to]]);
//!                 if g.len() == 2 {
//!                     *g[0] -= 1;
//!                     *g[1] += 1;
//!                 }
//!             }
//!         })
//!     })
//!     .collect();
//! threads.into_iter().for_each(|t| t.join().unwrap());
//! let total: i64 = accounts.iter().map(|a| *a.lock()).sum();
//! assert_eq!(total, 400);
//! ```
//!
//! ## What the validator sees
//!
//! As in the kernel: the context's own lock map (class `NAME_acquire`) is held from
//! [`AcquireCtx::new`] to [`AcquireCtx::fini`], and each mutex (class `NAME_mutex`) is acquired
//! with the context as nest lock, so mutexes of the class under one context are never recursive
//! locking, while everything else is checked as usual: a context's class is ordered after the
//! locks held when it starts, two contexts of one class in one thread are recursive locking,
//! contexts of two classes in both orders are a circular dependency, and a ww mutex (a sleeping
//! lock) under a spinning lock is an invalid wait context. The kernel's ww misuse warnings are
//! reported as [`ReportKind::WwMisuse`](crate::ReportKind::WwMisuse): locking after
//! [`AcquireCtx::done`], a mutex of another class than the context's, `lock_slow` without a
//! back-off, locking another mutex than the contended one (or before releasing everything)
//! after a back-off, a second back-off before the first was handled, and finishing a context
//! whose guards were leaked. The rules are the engine's (`Engine::ww_*`), so `lockdep replay`
//! checks scenarios with the very same ones.
//!
//! ## Exercising the back-off path
//!
//! [`set_backoff_injection`] (or `LOCKDEP_WW_SLOWPATH=1`) makes contexts back off now and then
//! on a schedule derived from their stamp, as the kernel's `CONFIG_DEBUG_WW_MUTEX_SLOWPATH`
//! does, so that tests run the code that real contention rarely reaches.

mod class;
mod ctx;
mod inject;
mod mutex;

use std::fmt;

pub use self::class::WwClass;
pub use self::ctx::AcquireCtx;
pub use self::inject::{backoff_injection, set_backoff_injection};
pub use self::mutex::{WwMutex, WwMutexGuard};
pub use crate::engine::ww::{verdict, Verdict, WwCtxState, WwKind, WwLockMode};

/// Why a lock under a context did not give a guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WwError {
    /// Back off (`-EDEADLK`): an older context holds the mutex (wait-die) or has wounded this
    /// one (wound-wait). Release every mutex held under the context, then take this one with
    /// [`AcquireCtx::lock_slow`].
    Deadlock,
    /// The context already holds this mutex (`-EALREADY`).
    Already,
}

impl fmt::Display for WwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WwError::Deadlock => "back off: an older acquire context holds or wants the mutex",
            WwError::Already => "the acquire context already holds the mutex",
        })
    }
}

impl std::error::Error for WwError {}
