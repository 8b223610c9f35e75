//! [`WwMutex`]: a wound/wait mutex, the kernel's `struct ww_mutex`.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::ctx::{AcquireCtx, CtxShared};
use super::{WwClass, WwError};
use crate::engine::ww::{verdict, Verdict, WwKind, WwLockMode};
use crate::lock::map::{Acquire, LockMap, Site};
use crate::lock::wait::WaitType;
use crate::rt::with_current_task;

/// Who holds a [`WwMutex`]: guarded by the mutex's small internal lock.
struct Owner {
    locked: bool,
    /// The holding context (`ww->ctx`); `None` for a lock taken without one.
    ctx: Option<Arc<CtxShared>>,
    /// The contexts waiting for the mutex, woken by the next unlock.
    sleepers: Vec<Arc<CtxShared>>,
}

/// A wound/wait mutex: a mutex of a [`WwClass`], to be locked under an [`AcquireCtx`] together
/// with others of its class in any order, or alone without one.
///
/// Waiting threads park (parking_lot_core) on the mutex and are woken by every unlock and by a
/// wound; a waiter checks the wound/wait rule against the current holder each time it wakes, so
/// a context only ever waits for a younger one (wait-die) or for one it has wounded or that is
/// older (wound-wait): the waits cannot form a cycle, and every conflict ends.
///
/// ```
/// use lockdep::ww::{AcquireCtx, WwMutex};
///
/// let class = lockdep::ww_class!(wound_wait, "objects");
/// let obj = WwMutex::new(class, String::from("buffer"));
/// obj.lock().push('!'); // alone, without a context (ww_mutex_lock(lock, NULL))
/// let ctx = AcquireCtx::new(class);
/// assert_eq!(&*ctx.lock(&obj).unwrap(), "buffer!");
/// ```
pub struct WwMutex<T: ?Sized> {
    class: &'static WwClass,
    map: LockMap,
    owner: parking_lot::Mutex<Owner>,
    /// Bumped (under `owner`) by every unlock: a waiter parks only if it has not changed since
    /// it looked at the holder.
    seq: AtomicU32,
    /// Threads without a context parked or about to park on this mutex; an unlock wakes them
    /// only if there are.
    waiters: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, made only by the thread that took the lock,
// so `T: Send` is what sharing the mutex requires (as for `std::sync::Mutex`); the other fields
// are `Sync`.
unsafe impl<T: ?Sized + Send> Send for WwMutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for WwMutex<T> {}

impl<T> WwMutex<T> {
    /// A ww mutex of `class` (`ww_mutex_init`); its lock class is the class's `NAME_mutex`.
    pub const fn new(class: &'static WwClass, value: T) -> WwMutex<T> {
        WwMutex {
            class,
            map: LockMap::named(class.mutex_key()).with_wait(WaitType::Sleep, WaitType::Inv),
            owner: parking_lot::const_mutex(Owner {
                locked: false,
                ctx: None,
                sleepers: Vec::new(),
            }),
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> WwMutex<T> {
    /// The mutex's ww class.
    pub fn class(&self) -> &'static WwClass {
        self.class
    }

    /// The mutex's lock map.
    pub fn lock_map(&self) -> &LockMap {
        &self.map
    }

    /// The name of the mutex's lock class as reports print it.
    pub fn class_name(&self) -> String {
        crate::rt::class_name(&self.map)
    }

    /// Whether the mutex is locked (by anyone).
    pub fn is_locked(&self) -> bool {
        self.owner.lock().locked
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Locks the mutex without a context (`ww_mutex_lock(lock, NULL)`), waiting as long as it
    /// takes: a single-lock use, validated as a plain mutex.
    #[track_caller]
    pub fn lock(&self) -> WwMutexGuard<'_, T> {
        // Without a context a ww lock is a plain mutex acquisition (`Engine::ww_lock` with no
        // context): the map's own hook, with its already-seen fast path.
        self.map.acquire_at(Acquire::exclusive(), Site::caller());
        let took = self.take(None, WwLockMode::Lock);
        debug_assert!(took, "a lock without a context never backs off");
        WwMutexGuard::new(self, None)
    }

    /// Locks the mutex without a context if it is free (`ww_mutex_trylock(lock, NULL)`).
    #[track_caller]
    pub fn try_lock(&self) -> Option<WwMutexGuard<'_, T>> {
        self.try_lock_in(None, Site::caller())
    }

    fn key(&self) -> usize {
        &self.seq as *const AtomicU32 as usize
    }

    /// Whether `ctx` holds the mutex.
    fn held_by(&self, ctx: &AcquireCtx) -> bool {
        let o = self.owner.lock();
        o.locked && o.ctx.as_ref().is_some_and(|h| Arc::ptr_eq(h, &ctx.shared))
    }

    pub(crate) fn lock_in<'a>(
        &'a self,
        ctx: &'a AcquireCtx,
        mode: WwLockMode,
        site: Site,
    ) -> Result<WwMutexGuard<'a, T>, WwError> {
        if self.held_by(ctx) {
            return Err(WwError::Already);
        }
        if ctx.acquired.get() == 0 {
            // Holding nothing, the context cannot be part of a deadlock: a wound is moot.
            ctx.shared.wounded.store(false, Ordering::SeqCst);
        }
        let undo = UndoOnPanic(&self.map);
        with_current_task(|e, t| {
            let mut st = ctx.check.borrow_mut();
            e.ww_lock(t, &self.map, Some((&ctx.shared.map, &mut st)), mode, site)
        });
        std::mem::forget(undo);
        if !self.take(Some(ctx), mode) {
            with_current_task(|e, t| {
                let mut st = ctx.check.borrow_mut();
                e.ww_back_off(t, &self.map, &mut st, true, site)
            });
            return Err(WwError::Deadlock);
        }
        self.acquired(ctx, site)
    }

    /// The mutex was taken under `ctx`: count it, check it, and maybe inject a back-off.
    fn acquired<'a>(
        &'a self,
        ctx: &'a AcquireCtx,
        site: Site,
    ) -> Result<WwMutexGuard<'a, T>, WwError> {
        ctx.acquired.set(ctx.acquired.get() + 1);
        // The guard exists before the check, so that a report in panic mode unlocks the mutex.
        let guard = WwMutexGuard::new(self, Some(ctx));
        with_current_task(|e, t| {
            let mut st = ctx.check.borrow_mut();
            e.ww_acquired(t, &self.map, self.class.id(), &mut st, false, site)
        });
        if ctx.acquired.get() > 1 && ctx.inject_now() {
            drop(guard);
            with_current_task(|e, t| {
                let mut st = ctx.check.borrow_mut();
                e.ww_back_off(t, &self.map, &mut st, false, site)
            });
            return Err(WwError::Deadlock);
        }
        Ok(guard)
    }

    pub(crate) fn try_lock_in<'a>(
        &'a self,
        ctx: Option<&'a AcquireCtx>,
        site: Site,
    ) -> Option<WwMutexGuard<'a, T>> {
        {
            let mut o = self.owner.lock();
            if o.locked {
                return None;
            }
            o.locked = true;
            o.ctx = ctx.map(|c| c.shared.clone());
        }
        // The mutex is taken: if recording it unwinds (a report in panic mode, a report
        // handler that panics), no guard will ever give it back, so this does.
        let taken = UnlockOnUnwind(self);
        match ctx {
            Some(c) => {
                let undo = UndoOnPanic(&self.map);
                with_current_task(|e, t| {
                    let mut st = c.check.borrow_mut();
                    e.ww_lock(
                        t,
                        &self.map,
                        Some((&c.shared.map, &mut st)),
                        WwLockMode::Try,
                        site,
                    )
                });
                std::mem::forget(undo);
            }
            None => self
                .map
                .acquire_at(Acquire::exclusive().trylock(true), site),
        }
        std::mem::forget(taken);
        match ctx {
            Some(c) => {
                c.acquired.set(c.acquired.get() + 1);
                let guard = WwMutexGuard::new(self, Some(c));
                with_current_task(|e, t| {
                    let mut st = c.check.borrow_mut();
                    e.ww_acquired(t, &self.map, self.class.id(), &mut st, false, site)
                });
                Some(guard)
            }
            None => Some(WwMutexGuard::new(self, None)),
        }
    }

    /// Takes the real lock for `ctx` (or for no context), waiting while the wound/wait rule says
    /// wait; `false` when the context must back off.
    fn take(&self, ctx: Option<&AcquireCtx>, mode: WwLockMode) -> bool {
        let kind = self.class.kind();
        loop {
            let mut o = self.owner.lock();
            if let Some(c) = ctx {
                o.sleepers.retain(|s| !Arc::ptr_eq(s, &c.shared));
            }
            if !o.locked {
                o.locked = true;
                o.ctx = ctx.map(|c| c.shared.clone());
                return true;
            }
            let v = match ctx {
                None => Verdict::Wait { wound: false },
                Some(c) => verdict(
                    kind,
                    c.stamp(),
                    c.acquired.get(),
                    c.shared.wounded.load(Ordering::SeqCst),
                    o.ctx.as_ref().map(|h| h.stamp),
                ),
            };
            let wound = match v {
                // `lock_slow` waits whatever the rule says (it is only right with nothing held,
                // when the rule always says wait).
                Verdict::BackOff if mode != WwLockMode::Slow => return false,
                Verdict::BackOff => false,
                Verdict::Wait { wound } => wound,
            };
            let wounded = if wound { o.ctx.clone() } else { None };
            if let Some(h) = &wounded {
                h.wounded.store(true, Ordering::SeqCst);
            }
            if let Some(c) = ctx {
                o.sleepers.push(c.shared.clone());
            }
            let seen = self.seq.load(Ordering::SeqCst);
            drop(o);
            if let Some(h) = wounded {
                // The holder may be asleep waiting for another mutex: wake it to back off.
                // SAFETY: the key is the address of the holder's context, which `h` keeps
                // alive; only contexts of this module park on it.
                unsafe {
                    parking_lot_core::unpark_all(h.key(), parking_lot_core::DEFAULT_UNPARK_TOKEN);
                }
            }
            self.park(ctx, seen, kind);
        }
    }

    /// Sleeps until the mutex is unlocked (or, for a context that may be wounded, a wound),
    /// unless that already happened since `seen`. A context sleeps on its own key (the unlock
    /// wakes the contexts listed in `sleepers`, a wound wakes the one it wounds); a lock without
    /// a context sleeps on the mutex.
    fn park(&self, ctx: Option<&AcquireCtx>, seen: u32, kind: WwKind) {
        let key = match ctx {
            Some(c) => c.shared.key(),
            None => {
                self.waiters.fetch_add(1, Ordering::SeqCst);
                self.key()
            }
        };
        let validate = || {
            let wounded = ctx.is_some_and(|c| {
                kind == WwKind::WoundWait
                    && c.acquired.get() > 0
                    && c.shared.wounded.load(Ordering::SeqCst)
            });
            self.seq.load(Ordering::SeqCst) == seen && !wounded
        };
        // SAFETY: `validate` and the callbacks neither panic nor call into parking_lot, and the
        // key is the address of this mutex or of the waiting context, both alive for the call.
        unsafe {
            parking_lot_core::park(
                key,
                validate,
                || {},
                |_, _| {},
                parking_lot_core::DEFAULT_PARK_TOKEN,
                None,
            );
        }
        if ctx.is_none() {
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Unlocks (`ww_mutex_unlock`), for the guard.
    fn unlock(&self, ctx: Option<&AcquireCtx>) {
        match ctx {
            Some(c) => {
                with_current_task(|e, t| {
                    let mut st = c.check.borrow_mut();
                    e.ww_unlock(t, &self.map, Some(&mut st), Site::Unknown)
                });
                c.acquired.set(c.acquired.get().saturating_sub(1));
            }
            // `Engine::ww_unlock` without a context is a plain release: the map's hook.
            None => self.map.release_at(Site::Unknown),
        }
        self.unlock_raw();
    }

    /// Gives the mutex back (its owner, and wakes its waiters) without telling the validator:
    /// the second half of [`unlock`](Self::unlock), and what a trylock whose record unwound
    /// does (the validator took that acquisition back already).
    fn unlock_raw(&self) {
        let (holder, sleepers) = {
            let mut o = self.owner.lock();
            o.locked = false;
            self.seq.fetch_add(1, Ordering::SeqCst);
            (o.ctx.take(), std::mem::take(&mut o.sleepers))
        };
        drop(holder);
        for s in &sleepers {
            // SAFETY: the key is the address of a waiting context, kept alive by `sleepers`;
            // only contexts of this module park on it.
            unsafe {
                parking_lot_core::unpark_all(s.key(), parking_lot_core::DEFAULT_UNPARK_TOKEN);
            }
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            // SAFETY: the key is this mutex's address; only its own waiters park on it.
            unsafe {
                parking_lot_core::unpark_all(self.key(), parking_lot_core::DEFAULT_UNPARK_TOKEN);
            }
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for WwMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WwMutex")
            .field("class", self.class)
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

/// Takes back an acquisition the validator recorded if a report panics (`LOCKDEP=panic`) before
/// the real lock is taken.
struct UndoOnPanic<'a>(&'a LockMap);

impl Drop for UndoOnPanic<'_> {
    fn drop(&mut self) {
        let instance = self.0.instance();
        with_current_task(|e, t| {
            e.undo_acquire(t, instance);
            None
        });
    }
}

/// Unlocks a mutex just taken by a trylock if recording the acquisition unwinds.
struct UnlockOnUnwind<'a, T: ?Sized>(&'a WwMutex<T>);

impl<T: ?Sized> Drop for UnlockOnUnwind<'_, T> {
    fn drop(&mut self) {
        self.0.unlock_raw();
    }
}

/// The guard of a locked [`WwMutex`]: gives access to the value and unlocks when dropped
/// (`ww_mutex_unlock`). Not `Send`: a mutex is unlocked by the thread that locked it.
#[must_use = "the mutex is unlocked when the guard is dropped"]
pub struct WwMutexGuard<'a, T: ?Sized> {
    mutex: &'a WwMutex<T>,
    ctx: Option<&'a AcquireCtx>,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T: ?Sized> WwMutexGuard<'a, T> {
    fn new(mutex: &'a WwMutex<T>, ctx: Option<&'a AcquireCtx>) -> Self {
        WwMutexGuard {
            mutex,
            ctx,
            _not_send: PhantomData,
        }
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &'a WwMutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Deref for WwMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other reference to the data exists.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for WwMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock and is borrowed uniquely.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for WwMutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock(self.ctx);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for WwMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
