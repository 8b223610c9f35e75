//! `lockdep::tokio::spawn` and friends: tokio's spawns, tracked, with joins validated.
//!
//! A task spawned here is a tracked task ([`tracked`](crate::future::tracked)) whose body runs
//! holding the work map of its spawn site; awaiting its [`JoinHandle`] validates an acquisition
//! of that map before it waits (see [the model](crate::task)). For a `JoinSet`, spawn
//! `lockdep::future::tracked(fut)`: its tasks are tracked, and its joins are not modelled (a
//! `join_next` waits for *some* task, whose identity is not known in advance).

use std::future::Future;
use std::marker::PhantomPinned;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::task::{AbortHandle, JoinError};

use super::{join, work_map};
use crate::lock::map::ReadKind;
use crate::lock::map::{Acquire, LockMap, Site};
use crate::rt::future::{acquire_lock, tracked_at};

/// A future run as the work of its spawn site: holding the site's work map from its first poll
/// until it completes or is dropped.
struct Work<F> {
    map: LockMap,
    site: &'static Location<'static>,
    held: bool,
    fut: ManuallyDrop<F>,
    /// The map must not move while it is held.
    _pinned: PhantomPinned,
}

impl<F> Work<F> {
    fn new(fut: F, site: &'static Location<'static>) -> Work<F> {
        Work {
            map: work_map(site),
            site,
            held: false,
            fut: ManuallyDrop::new(fut),
            _pinned: PhantomPinned,
        }
    }
}

impl<F: Future> Future for Work<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned (never moved out of; dropped in place), and the
        // map is not moved either (`Work` is `!Unpin`).
        let this = unsafe { self.get_unchecked_mut() };
        if !this.held {
            this.held = acquire_lock(&this.map, ReadKind::Exclusive, false, true, this.site);
        }
        // SAFETY: as above.
        let r = unsafe { Pin::new_unchecked(&mut *this.fut) }.poll(cx);
        if r.is_ready() && this.held {
            this.held = false;
            this.map.release_at(Site::Unknown);
        }
        r
    }
}

impl<F> Drop for Work<F> {
    fn drop(&mut self) {
        // SAFETY: dropped once, in place, and not used afterwards. First, so that its guards are
        // released inside the work.
        unsafe { ManuallyDrop::drop(&mut self.fut) };
        if self.held {
            self.map.release_at(Site::Unknown);
        }
    }
}

/// Spawns a tracked task on the current tokio runtime (`tokio::spawn`). Its body runs inside
/// the work map of this call site, and awaiting the handle is validated as a join.
///
/// # Panics
/// Outside a tokio runtime, as tokio's.
///
/// ```
/// # let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// rt.block_on(async {
///     let m = std::sync::Arc::new(lockdep::tokio::Mutex::new(0));
///     let m2 = m.clone();
///     let task = lockdep::tokio::spawn(async move { *m2.lock().await += 1 });
///     task.await.unwrap(); // holding nothing: fine
///     assert_eq!(*m.lock().await, 1);
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let site = Location::caller();
    let inner = ::tokio::task::spawn(tracked_at(Work::new(future, site), site));
    JoinHandle::new(inner, site)
}

/// Spawns a tracked `!Send` task on the current `LocalSet` (`tokio::task::spawn_local`).
///
/// # Panics
/// Outside a `LocalSet`, as tokio's.
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let site = Location::caller();
    let inner = ::tokio::task::spawn_local(tracked_at(Work::new(future, site), site));
    JoinHandle::new(inner, site)
}

/// Runs a blocking closure on tokio's blocking pool (`tokio::task::spawn_blocking`), inside the
/// work map of this call site (on the thread that runs it); awaiting the handle is a join.
///
/// # Panics
/// Outside a tokio runtime, as tokio's.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let site = Location::caller();
    let inner = ::tokio::task::spawn_blocking(move || {
        let map = work_map(site);
        let _work = map.hold(Acquire::exclusive());
        f()
    });
    JoinHandle::new(inner, site)
}

/// The handle of a task spawned by [`spawn`] (`tokio::task::JoinHandle`): awaiting it first
/// validates an acquisition of the task's work class, then waits for the task.
#[derive(Debug)]
#[must_use = "dropping a JoinHandle detaches the task"]
pub struct JoinHandle<T> {
    inner: ::tokio::task::JoinHandle<T>,
    work: LockMap,
    validated: bool,
}

impl<T> JoinHandle<T> {
    fn new(inner: ::tokio::task::JoinHandle<T>, site: &'static Location<'static>) -> Self {
        JoinHandle {
            inner,
            work: work_map(site),
            validated: false,
        }
    }

    /// Cancels the task.
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// A handle that can cancel the task.
    pub fn abort_handle(&self) -> AbortHandle {
        self.inner.abort_handle()
    }

    /// tokio's handle (awaiting it is not validated).
    pub fn into_inner(self) -> ::tokio::task::JoinHandle<T> {
        self.inner
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.validated {
            self.validated = true;
            join(&self.work);
        }
        Pin::new(&mut self.inner).poll(cx)
    }
}
