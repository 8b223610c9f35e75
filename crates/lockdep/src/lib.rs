//! # lockdep: the Linux kernel's lock dependency validator, for Rust programs
//!
//! Deadlocks that need two threads to meet at the wrong moment are rarely hit in testing. The
//! kernel's lockdep finds them anyway: it maps every lock to a *class*, records which classes were
//! ever held while another was taken, and reports the moment that graph closes a cycle — a
//! *potential* deadlock, with the stack traces that created each edge, even if no thread ever
//! blocked. This crate is that validator, rebuilt for userspace.
//!
//! ```
//! # #[cfg(not(feature = "disabled"))] {
//! use lockdep::{Mutex, ReportCollector, ReportKind};
//!
//! let reports = ReportCollector::new();
//! let a = Mutex::new(());
//! let b = Mutex::new(());
//! {
//!     let _a = a.lock();
//!     let _b = b.lock(); // records a -> b
//! }
//! {
//!     let _b = b.lock();
//!     let _a = a.lock(); // b -> a closes the cycle: reported, although nothing blocked
//! }
//! let found = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&a.class_name()));
//! assert_eq!(found.len(), 1);
//! # }
//! ```
//!
//! ## The model
//!
//! - A **class** ([`ClassId`], [`LockClassKey`]) is a key plus a subclass. By default the key is the construction site
//!   of a lock, so ten thousand mutexes made by one `Mutex::new` call are one class.
//! - A **lock map** ([`LockMap`]) is what the validator sees of a lock: its key and wait types. It
//!   offers the raw hooks (`acquire`, `release`, `might_lock`), so a map can stand for a lock of
//!   your own, or for something that is not a lock at all (memory reclaim, a callback context).
//! - Each task has a **held-lock stack** ([`Task`]); acquiring a lock adds a dependency
//!   ([`Dependency`], typed by [`dep`]) from the held locks to it in the class **graph**, and a dependency that would close a
//!   *strong* cycle (the kernel's read/recursive-read rules) is reported.
//! - A **chain cache** ([`ChainInfo`]) remembers held-lock sequences already validated: an acquisition
//!   whose chain was seen before does no graph work and takes no global lock.
//! - A **report** ([`Report`]) is a structured value and renders in the kernel's own format.
//!
//! The [`Engine`] holds the shared state and takes each [`Task`] explicitly; the process-wide
//! validator ([`rt`]: a global engine and a thread-local task per thread) and the scenario replay
//! ([`scenario`]) are two drivers of the same engine.
//!
//! ## What happens on a report
//!
//! By default a report is written to the process's standard error (directly, so that a test
//! harness's output capture does not hide it) and the program goes on. `LOCKDEP=panic` (or
//! [`set_action`]) panics in the offending thread, at the user's lock call, `LOCKDEP=off` turns
//! validation off, and [`set_report_handler`] sends reports to your code. Each distinct problem
//! (kind and classes) is reported once. A report accepted in a suppression file (`lockdep.toml`,
//! see [`suppress`]) is counted and not printed.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(rust_2018_idioms, unsafe_op_in_unsafe_fn, unnameable_types)]

// The layers, lowest first (ARCHITECTURE.md; `tests/layers.rs` checks that no module imports
// from a layer above its own).
pub mod annotate;
mod engine;
mod lock;
pub mod proc;
pub mod record;
mod report;
pub mod rt;
pub mod scenario;
pub mod sync;
pub mod task;

/// std's API, validated: [`lockdep::std::sync`](crate::std::sync) is a drop-in for `std::sync`.
pub mod std {
    /// `lockdep::std::sync`: std's `sync` API, validated — a drop-in for `std::sync`.
    ///
    /// Replace `std::sync` by `lockdep::std::sync` in a program's imports and it compiles and
    /// behaves the same: `Mutex`, `RwLock` and `Condvar` have std's signatures, return
    /// `LockResult`s and poison on a panic while held exactly as std's do (the result and error
    /// types *are* std's). Everything of `std::sync` that is not a lock (`Arc`, `Weak`, `mpsc`,
    /// `atomic`, `BarrierWaitResult`, `OnceState`) is std's own, re-exported.
    ///
    /// What the validator sees:
    ///
    /// - Each lock is a raw lock (parking_lot's) plus a [`LockMap`](crate::LockMap), calling the
    ///   same hooks as every other primitive of this crate; its class is its construction site,
    ///   as for [`crate::Mutex`]. `RwLock::read` is a *non-recursive* reader: std's read lock may
    ///   block behind a waiting writer (it does on Linux), so two reads of one lock on one thread
    ///   are reported as recursive locking.
    /// - One-time initialisation is a lock: `Once::call_once`, `OnceLock::get_or_init` and
    ///   `LazyLock`'s first dereference run the initialiser *holding* the cell's lock map (one
    ///   class per construction site), and a later access of an initialised cell is a
    ///   `might_lock` of it. So "the initialiser takes `L`" together with "`L` is held while the
    ///   cell is forced" is a reported cycle, which is exactly how such a program deadlocks when
    ///   the two happen at once.
    /// - A `Condvar` wait releases the mutex in the validator while the thread sleeps, and
    ///   re-acquires it validated; a `Barrier` wait is a sleep (`might_sleep`).
    ///
    /// ```
    /// use lockdep::std::sync::{Arc, Condvar, Mutex};
    /// use std::thread;
    ///
    /// let pair = Arc::new((Mutex::new(false), Condvar::new()));
    /// let pair2 = Arc::clone(&pair);
    /// thread::spawn(move || {
    ///     let (lock, cvar) = &*pair2;
    ///     *lock.lock().unwrap() = true;
    ///     cvar.notify_one();
    /// });
    /// let (lock, cvar) = &*pair;
    /// let started = cvar.wait_while(lock.lock().unwrap(), |started| !*started).unwrap();
    /// assert!(*started);
    /// ```
    ///
    /// With the `disabled` cargo feature this module *is* `std::sync` (a re-export): the same
    /// types, sizes and code as std's.
    pub mod sync {
        pub use crate::sync::std::*;
    }
}

pub use ::lock_api;
pub use rt::stat;

pub use annotate::irq;
pub use engine::chain::ChainInfo;
pub use rt::future;
pub use task::thread;

/// tokio, validated (the `tokio` cargo feature): tokio's locks instrumented
/// ([`Mutex`](tokio::Mutex), [`RwLock`](tokio::RwLock), with `tokio::sync`'s API) and its
/// spawns tracked ([`spawn`](tokio::spawn), [`spawn_local`](tokio::spawn_local),
/// [`spawn_blocking`](tokio::spawn_blocking)), with joins validated. See
/// [`sync::tokio`] for when an async acquisition counts, [`future`] for
/// tracked tasks and the await rule, and [`task`] for the join model.
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use crate::sync::tokio::*;
    pub use crate::task::tokio::*;
}
pub use engine::held::{HeldLock, IrqState, Task, MAX_LOCK_DEPTH};
pub use engine::{Dependency, Engine, Observer, Options, PinCookie, Stats};
pub use lock::class::{ClassId, ClassInfo, LockClassKey};
pub use lock::dep;
pub use lock::gfp;
pub use lock::map::{Acquire, FileLine, InternedText, LockMap, MapGuard, ReadKind, Site};
pub use lock::wait::WaitType;
#[cfg(feature = "arc_lock")]
pub use lock_api::{
    ArcMutexGuard, ArcReentrantMutexGuard, ArcRwLockReadGuard, ArcRwLockUpgradableReadGuard,
    ArcRwLockWriteGuard,
};
pub use report::stack::{Frame, StackTrace};
pub use report::suppress;
pub use report::{ChainLink, IrqDetail, LockInfo, Report, ReportKind, TaskRef};
pub use rt::{
    action, check_no_locks_held, clear_report_handler, interrupted_hooks, set_action,
    set_report_handler, Action, ReportCollector,
};
pub use sync::ww;
pub use sync::{
    const_fair_mutex, const_mutex, const_reentrant_mutex, const_rwlock, Condvar, FairMutex,
    FairMutexGuard, MappedFairMutexGuard, MappedMutexGuard, MappedReentrantMutexGuard,
    MappedRwLockReadGuard, MappedRwLockWriteGuard, Mutex, MutexGuard, Once, OnceState,
    RawFairMutex, RawMutex, RawRwLock, RawThreadId, ReentrantMutex, ReentrantMutexGuard, RwLock,
    RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard, WaitTimeoutResult,
};
