//! tokio's locks, instrumented: [`Mutex`] and [`RwLock`] with `tokio::sync`'s API.
//!
//! Each is a raw lock — a `tokio::sync::Semaphore`, the FIFO semaphore tokio's own locks are
//! built on, so the fairness is tokio's — plus a [`LockMap`] marked
//! [`async_lock`](LockMap::async_lock) (holding one across an `.await` is what it is for) and
//! [`movable`](LockMap::movable) (its guards are `Send`). Classes are per construction site, as
//! for every other lock.
//!
//! **When an acquisition counts.** A lock that is free is taken at once and recorded then. A
//! lock that must be waited for is *validated when it is requested*, before the task waits, so
//! that an inversion is reported before the task can hang; it is *held from the moment its
//! guard exists*. A lock future dropped while it waits (a `select!`, a timeout) has recorded
//! nothing, so it leaves nothing behind.
//!
//! **Whose lock it is.** Inside a tracked task (`lockdep::future::tracked`,
//! `lockdep::tokio::spawn`) the lock is held by that task, wherever it is polled; a guard
//! released by another task or thread is handed to the holder. Outside any tracked task an
//! async acquisition is only validated against the thread's held locks when it is requested,
//! and nothing is held: the thread interleaves tasks, so its stack cannot say which task holds
//! what, and holding there could produce false cycles and bad unlocks. The `blocking_*`
//! methods, which block the thread as a std lock does, are held by the calling thread's task.
//!
//! tokio's `RwLock` is fair (a queued writer blocks new readers), so a read is a
//! *non-recursive* reader: two reads of one lock in one task are reported as recursive locking,
//! as a writer queued between them deadlocks the task.

mod mutex;
mod rwlock;

pub use mutex::{MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard};
pub use rwlock::{
    OwnedRwLockMappedWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
    RwLockMappedWriteGuard, RwLockReadGuard, RwLockWriteGuard,
};

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use ::tokio::sync::{AcquireError, Semaphore, SemaphorePermit};

use crate::lock::map::{Acquire, LockMap, ReadKind, Site};
use crate::lock::wait::WaitType;

/// The error of `try_lock`, `try_read` and `try_write`: the lock is held (tokio's
/// `TryLockError`, whose constructor is private to tokio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLockError(());

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation would block")
    }
}

impl std::error::Error for TryLockError {}

/// The lock map of a tokio lock constructed at `site`.
const fn async_map(map: LockMap) -> LockMap {
    map.with_wait(WaitType::Sleep, WaitType::Inv)
        .movable()
        .async_lock()
}

/// A raw async lock: a FIFO semaphore and the lock map.
pub(crate) struct Raw {
    map: LockMap,
    sem: Semaphore,
}

impl Raw {
    const fn new(map: LockMap, permits: usize) -> Raw {
        Raw {
            map: async_map(map),
            sem: Semaphore::const_new(permits),
        }
    }

    const fn at(site: &'static Location<'static>, permits: usize) -> Raw {
        Raw::new(LockMap::from_site(site), permits)
    }

    /// Takes `permits` (validating the acquisition first if it has to wait) and records it.
    /// `R` is the kind ([`WRITE`] or [`READ`]): a constant, so that the hooks fold it.
    #[inline]
    fn acquire<const R: u8>(
        &self,
        permits: u32,
        site: &'static Location<'static>,
    ) -> RawAcquire<'_, R> {
        RawAcquire {
            raw: self,
            permits,
            site,
            waiting: None,
            wait_since: None,
            yielded: false,
        }
    }

    #[inline]
    fn try_acquire<const R: u8>(
        &self,
        permits: u32,
        site: &'static Location<'static>,
    ) -> Option<RawGuard<'_>> {
        self.sem.try_acquire_many(permits).ok()?.forget();
        Some(self.taken::<R, true, false>(permits, site, None))
    }

    /// The `blocking_*` form: blocks the thread (tokio's check forbids it inside a runtime), and
    /// the lock is held by the calling thread's task or the current tracked task.
    fn blocking_acquire<const R: u8>(
        &self,
        permits: u32,
        site: &'static Location<'static>,
    ) -> RawGuard<'_> {
        forbid_blocking_in_runtime();
        let mut wait_since = None;
        match self.sem.try_acquire_many(permits) {
            Ok(p) => p.forget(),
            Err(_) => {
                self.map.validate_at(how(R, false), Site::Code(site));
                // A thread that blocks is contended, as for a blocking lock.
                wait_since = crate::rt::future::wait_begins();
                block_on(self.sem.acquire_many(permits))
                    .expect("the semaphore of a lock is never closed")
                    .forget();
            }
        }
        self.taken::<R, false, true>(permits, site, wait_since)
    }

    /// The guard of permits just taken; it gives them back if recording panics (panic mode).
    /// `wait_since`: the start of the wait for them, if the acquisition was contended (and
    /// [lock statistics](crate::stat) are on).
    #[inline(always)]
    fn taken<const R: u8, const TRY: bool, const BLOCKING: bool>(
        &self,
        permits: u32,
        site: &'static Location<'static>,
        wait_since: Option<u64>,
    ) -> RawGuard<'_> {
        let mut g = RawGuard {
            raw: NonNull::from(self),
            permits,
            held: false,
            stat: NOT_COUNTED,
            _lock: PhantomData,
        };
        let read = how(R, TRY).read;
        g.held = crate::rt::future::acquire_lock(&self.map, read, TRY, BLOCKING, site);
        if crate::rt::future::lock_stat(&self.map, read, site, wait_since) {
            g.stat = COUNTED | R;
        }
        g
    }
}

/// The kind of an exclusive acquisition, for [`Raw::acquire`].
pub(crate) const WRITE: u8 = 0;
/// [`RawGuard::stat`]: the statistics did not count the acquisition.
const NOT_COUNTED: u8 = 0;
/// [`RawGuard::stat`]: they did (or-ed with the kind).
const COUNTED: u8 = 2;
/// The kind of a shared (non-recursive) acquisition, for [`Raw::acquire`].
pub(crate) const READ: u8 = 1;

#[inline(always)]
const fn how(kind: u8, trylock: bool) -> Acquire<'static> {
    let read = if kind == READ {
        ReadKind::Shared
    } else {
        ReadKind::Exclusive
    };
    Acquire::exclusive().with_read(read).trylock(trylock)
}

/// The semaphore's own acquisition future, boxed: made only when the lock has to be waited for.
type Waiting<'a> =
    Pin<Box<dyn Future<Output = Result<SemaphorePermit<'a>, AcquireError>> + Send + 'a>>;

/// The future of [`Raw::acquire`]. Hand-written (not an `async fn`) so that the uncontended
/// acquisition is one `poll` with nothing moved around: try the semaphore, record, done. When
/// the lock is taken, the acquisition is validated and the semaphore's queue is joined.
/// Dropping it while it waits gives back what the queue assigned and records nothing.
///
/// With [lock statistics](crate::stat) on, a wait that has to yield (the queue's future is
/// pending at least once) is a contention, timed from the failed try to the moment the permits
/// are obtained; a wait that is granted at its first poll is not.
pub(crate) struct RawAcquire<'a, const R: u8> {
    raw: &'a Raw,
    permits: u32,
    site: &'static Location<'static>,
    waiting: Option<Waiting<'a>>,
    /// When the first try failed (statistics only).
    wait_since: Option<u64>,
    /// Whether the wait was pending at least once.
    yielded: bool,
}

impl<'a, const R: u8> Future for RawAcquire<'a, R> {
    type Output = RawGuard<'a>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RawGuard<'a>> {
        let this = &mut *self;
        let waiting = match &mut this.waiting {
            Some(w) => w,
            None => match this.raw.sem.try_acquire_many(this.permits) {
                Ok(p) => {
                    p.forget();
                    return Poll::Ready(this.raw.taken::<R, false, false>(
                        this.permits,
                        this.site,
                        None,
                    ));
                }
                Err(_) => {
                    this.raw
                        .map
                        .validate_at(how(R, false), Site::Code(this.site));
                    this.wait_since = crate::rt::future::wait_begins();
                    this.waiting
                        .insert(Box::pin(this.raw.sem.acquire_many(this.permits)))
                }
            },
        };
        match waiting.as_mut().poll(cx) {
            Poll::Ready(p) => {
                p.expect("the semaphore of a lock is never closed").forget();
                this.waiting = None;
                let waited = this.wait_since.filter(|_| this.yielded);
                Poll::Ready(
                    this.raw
                        .taken::<R, false, false>(this.permits, this.site, waited),
                )
            }
            Poll::Pending => {
                this.yielded = true;
                Poll::Pending
            }
        }
    }
}

/// [`RawAcquire`], then a guard made of the hold and `ctx`.
pub(crate) struct MakeGuard<'a, const R: u8, C, G> {
    acquire: RawAcquire<'a, R>,
    ctx: Option<C>,
    make: fn(RawGuard<'a>, C) -> G,
}

impl<'a, const R: u8, C, G> MakeGuard<'a, R, C, G> {
    fn new(acquire: RawAcquire<'a, R>, ctx: C, make: fn(RawGuard<'a>, C) -> G) -> Self {
        MakeGuard {
            acquire,
            ctx: Some(ctx),
            make,
        }
    }
}

impl<const R: u8, C: Unpin, G> Future for MakeGuard<'_, R, C, G> {
    type Output = G;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<G> {
        let this = &mut *self;
        match Pin::new(&mut this.acquire).poll(cx) {
            Poll::Ready(hold) => {
                let ctx = this.ctx.take().expect("polled after completion");
                Poll::Ready((this.make)(hold, ctx))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One hold of a [`Raw`]: releases the map (if the acquisition was recorded) and gives the
/// permits back when dropped. `'a` is the lock's lifetime; an owned guard detaches it
/// (`'static`) and keeps the `Arc` that owns the lock alive beside it, dropped after it.
pub(crate) struct RawGuard<'a> {
    raw: NonNull<Raw>,
    permits: u32,
    held: bool,
    /// [`COUNTED`] (with the kind, [`WRITE`] or [`READ`]) if [lock statistics](crate::stat)
    /// counted the acquisition: the guard ends the hold.
    stat: u8,
    _lock: PhantomData<&'a Raw>,
}

// SAFETY: a `RawGuard` is a shared reference to a `Raw` (which is `Sync`: a `LockMap` and a
// semaphore) plus plain data; the release it makes may happen on any thread (the map is
// movable).
unsafe impl Send for RawGuard<'_> {}
// SAFETY: as above; `&RawGuard` gives access to nothing.
unsafe impl Sync for RawGuard<'_> {}

impl<'a> RawGuard<'a> {
    fn raw(&self) -> &'a Raw {
        // SAFETY: the lock outlives `'a` (a borrow), or the `Arc` kept beside a detached guard.
        unsafe { self.raw.as_ref() }
    }

    /// The same guard with its lifetime erased, for an owned guard that keeps the lock's `Arc`
    /// alive beside it.
    ///
    /// # Safety
    /// The lock must outlive the returned guard.
    unsafe fn detach(self) -> RawGuard<'static> {
        let g = std::mem::ManuallyDrop::new(self);
        RawGuard {
            raw: g.raw,
            permits: g.permits,
            held: g.held,
            stat: g.stat,
            _lock: PhantomData,
        }
    }

    /// A write hold becomes a read hold of one permit (tokio's `downgrade`).
    fn downgrade(&mut self) {
        let raw = self.raw();
        // A guard moved to another task is downgraded without telling its holder: the hold
        // stays recorded as a write until it is released.
        if self.held && raw.map.is_held() {
            crate::rt::downgrade(&raw.map, Site::Unknown);
        }
        raw.sem.add_permits(self.permits as usize - 1);
        self.permits = 1;
    }
}

impl Drop for RawGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let raw = self.raw();
        if self.stat != NOT_COUNTED {
            crate::rt::future::guard_released(&raw.map, self.stat & READ != 0);
        }
        if self.held {
            raw.map.release_at(Site::Unknown);
        }
        raw.sem.add_permits(self.permits as usize);
    }
}

/// tokio's own check that a `blocking_*` call is not made inside a runtime (it panics there
/// with tokio's message): an uncontended `blocking_lock` of a local tokio mutex performs it.
fn forbid_blocking_in_runtime() {
    let probe = ::tokio::sync::Mutex::const_new(());
    drop(probe.blocking_lock());
}

/// Runs a future to completion on this thread, parking between polls.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
