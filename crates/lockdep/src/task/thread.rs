//! `lockdep::thread`: std's threads, with joins validated (see [the model](crate::task)).
//!
//! [`spawn`], [`Builder`] and [`scope`] mirror `std::thread`'s. The spawned closure runs
//! holding the lock map of its spawn site; [`JoinHandle::join`] (and
//! [`ScopedJoinHandle::join`], and the end of a [`scope`] for the threads it waits for)
//! validates an acquisition of that map before it waits. So holding a lock while joining a
//! thread that takes it is reported as a circular dependency, even if the thread had finished.
//!
//! ```
//! # #[cfg(not(feature = "disabled"))] {
//! use lockdep::{Mutex, ReportCollector, ReportKind};
//! use std::sync::Arc;
//!
//! let reports = ReportCollector::new();
//! let config = Arc::new(Mutex::new(0));
//! let c = config.clone();
//! let worker = lockdep::thread::spawn(move || *c.lock() += 1);
//! std::thread::sleep(std::time::Duration::from_millis(10)); // it may well be done
//! let guard = config.lock();
//! worker.join().unwrap(); // waits for a thread that takes `config` while holding it
//! drop(guard);
//! let found = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&config.class_name()));
//! assert_eq!(found.len(), 1);
//! # }
//! ```

use std::io;
use std::panic::Location;
use std::thread::{Result, Thread};

use super::{join, work_map};
use crate::lock::map::{Acquire, LockMap};

/// Runs `f` as the work of `site`: holding its map.
fn run_as_work<T>(site: &'static Location<'static>, f: impl FnOnce() -> T) -> T {
    let map = work_map(site);
    let _work = map.hold(Acquire::exclusive());
    f()
}

/// Spawns a thread (`std::thread::spawn`), whose joins are validated.
///
/// # Panics
/// If the thread cannot be created, as std's.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn thread")
}

/// An owned permission to join a thread (`std::thread::JoinHandle`).
#[derive(Debug)]
pub struct JoinHandle<T> {
    inner: std::thread::JoinHandle<T>,
    work: LockMap,
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish; validated first, as an acquisition of the thread's work
    /// class.
    pub fn join(self) -> Result<T> {
        join(&self.work);
        self.inner.join()
    }

    /// The thread's handle.
    pub fn thread(&self) -> &Thread {
        self.inner.thread()
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// std's handle (joining it is not validated).
    pub fn into_inner(self) -> std::thread::JoinHandle<T> {
        self.inner
    }
}

/// Thread configuration (`std::thread::Builder`).
#[derive(Debug)]
pub struct Builder {
    inner: std::thread::Builder,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with std's defaults.
    pub fn new() -> Builder {
        Builder {
            inner: std::thread::Builder::new(),
        }
    }

    /// Names the thread (reports print it).
    pub fn name(self, name: String) -> Builder {
        Builder {
            inner: self.inner.name(name),
        }
    }

    /// Sets the stack size.
    pub fn stack_size(self, size: usize) -> Builder {
        Builder {
            inner: self.inner.stack_size(size),
        }
    }

    /// Spawns the thread; its work class is this call site.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let site = Location::caller();
        let inner = self.inner.spawn(move || run_as_work(site, f))?;
        Ok(JoinHandle {
            inner,
            work: work_map(site),
        })
    }

    /// Spawns a scoped thread; its work class is this call site.
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let site = Location::caller();
        scope.note(site);
        let inner = self
            .inner
            .spawn_scoped(&scope.inner, move || run_as_work(site, f))?;
        Ok(ScopedJoinHandle {
            inner,
            work: work_map(site),
        })
    }
}

/// A scope for spawning threads that borrow (`std::thread::scope`); its end waits for every
/// thread spawned in it, validated as a join of each.
///
/// ```
/// let mut n = 0;
/// lockdep::thread::scope(|s| {
///     s.spawn(|| n += 1);
/// });
/// assert_eq!(n, 1);
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    std::thread::scope(|inner| {
        let scope = Scope::wrap(inner);
        // Forgets the scope's sites even if `f` panics (another scope may reuse the address).
        struct Forget(usize);
        impl Drop for Forget {
            fn drop(&mut self) {
                SCOPE_SITES.lock().retain(|e| e.0 != self.0);
            }
        }
        let _forget = Forget(scope.id());
        let r = f(scope);
        // The implicit join of every thread of the scope, which follows.
        for site in scope.take_sites() {
            join(&work_map(site));
        }
        r
    })
}

/// A scope to spawn scoped threads in (`std::thread::Scope`).
#[derive(Debug)]
#[repr(transparent)]
pub struct Scope<'scope, 'env> {
    inner: std::thread::Scope<'scope, 'env>,
}

/// The spawn sites of the threads of each live scope (by the scope's address), joined at its
/// end.
pub(super) static SCOPE_SITES: parking_lot::Mutex<Vec<(usize, &'static Location<'static>)>> =
    parking_lot::Mutex::new(Vec::new());

impl<'scope, 'env> Scope<'scope, 'env> {
    fn wrap(inner: &'scope std::thread::Scope<'scope, 'env>) -> &'scope Scope<'scope, 'env> {
        // SAFETY: `Scope` is a `repr(transparent)` wrapper of std's.
        unsafe {
            &*(inner as *const std::thread::Scope<'scope, 'env> as *const Scope<'scope, 'env>)
        }
    }

    /// Spawns a scoped thread; its work class is this call site.
    ///
    /// # Panics
    /// If the thread cannot be created, as std's.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        Builder::new()
            .spawn_scoped(self, f)
            .expect("failed to spawn thread")
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    fn note(&self, site: &'static Location<'static>) {
        super::install_fork_handlers();
        let mut sites = SCOPE_SITES.lock();
        let entry = (self.id(), site);
        if !sites
            .iter()
            .any(|e| e.0 == entry.0 && std::ptr::eq(e.1, site))
        {
            sites.push(entry);
        }
    }

    fn take_sites(&self) -> Vec<&'static Location<'static>> {
        let mut sites = SCOPE_SITES.lock();
        let mine = sites
            .iter()
            .filter(|e| e.0 == self.id())
            .map(|e| e.1)
            .collect();
        sites.retain(|e| e.0 != self.id());
        mine
    }
}

/// An owned permission to join a scoped thread (`std::thread::ScopedJoinHandle`).
#[derive(Debug)]
pub struct ScopedJoinHandle<'scope, T> {
    inner: std::thread::ScopedJoinHandle<'scope, T>,
    work: LockMap,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the thread to finish; validated first, as an acquisition of its work class.
    pub fn join(self) -> Result<T> {
        join(&self.work);
        self.inner.join()
    }

    /// The thread's handle.
    pub fn thread(&self) -> &Thread {
        self.inner.thread()
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}
