//! Wound/wait rules: the kernel's `DEBUG_WW_MUTEXES` checks, as engine operations.
//!
//! A wound/wait acquire context is, to the validator, a lock map of its own (the class of the ww
//! class's *acquire* key) held from `init` to `fini`; each ww mutex locked under it is an
//! exclusive acquisition with the context as nest lock, so any number of mutexes of the ww class
//! may be held in any order under one context (they merge into one held entry), while two
//! contexts of one class held at once are recursive locking, and contexts of two classes taken in
//! both orders are a circular dependency. Those are the ordinary rules of the engine.
//!
//! What a context adds is bookkeeping that the kernel keeps in `struct ww_acquire_ctx` and checks
//! with `DEBUG_LOCKS_WARN_ON`: how many mutexes it holds, whether `done` was called, which mutex
//! made it back off. That state is a [`WwCtxState`], owned by the driver (the runtime's
//! `AcquireCtx`, the replay's context table) and passed to each operation here, as a
//! [`Task`] is. Every misuse becomes a [`ReportKind::WwMisuse`](crate::ReportKind::WwMisuse) report whose message is the
//! kernel's warning:
//!
//! | misuse | message |
//! |---|---|
//! | locking with a context after `done` | `DEBUG_LOCKS_WARN_ON(ww_ctx->done_acquire)` |
//! | a mutex of another ww class than the context's | `DEBUG_LOCKS_WARN_ON(ww_ctx->ww_class != ww->ww_class)` |
//! | `lock_slow` without a back-off before it | `DEBUG_LOCKS_WARN_ON(!ctx->contending_lock)` |
//! | after a back-off, locking another mutex than the contended one | `DEBUG_LOCKS_WARN_ON(ww_ctx->contending_lock != ww)` |
//! | after a back-off, locking before releasing everything | `DEBUG_LOCKS_WARN_ON(ww_ctx->acquired > 0)` |
//! | a second back-off before the first was handled | `DEBUG_LOCKS_WARN_ON(ww_ctx->contending_lock)` |
//! | a mutex still bound to a context it was not unlocked from | `DEBUG_LOCKS_WARN_ON(ww->ctx)` |
//! | unlocking a mutex its context does not count as held | `DEBUG_LOCKS_WARN_ON(!lock->ctx->acquired)` |
//! | `done` twice | `DEBUG_LOCKS_WARN_ON(ctx->done_acquire)` |
//! | `fini` with mutexes still held | `DEBUG_LOCKS_WARN_ON(ctx->acquired)` |
//!
//! The back-off decision itself ([`verdict`]) is here too, as one pure function, so that the
//! runtime mutex and the replay decide alike.

use crate::engine::held::Task;
use crate::lock::map::{Acquire, LockMap, Site};
use crate::report::Report;

use super::Engine;

/// Which side of a conflict backs off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WwKind {
    /// Wound-wait (`DEFINE_WW_CLASS`): an older context *wounds* a younger holder, which backs
    /// off at its next lock (or at once, if it is waiting); a younger requester waits.
    WoundWait,
    /// Wait-die (`DEFINE_WD_CLASS`): a younger requester *dies* (backs off) at once; an older one
    /// waits.
    WaitDie,
}

/// What a context must do about a mutex that is held ([`verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Release everything and take the contended mutex with `lock_slow` (`-EDEADLK`).
    BackOff,
    /// Wait for the holder; with `wound`, first wound it (wound-wait, younger holder).
    Wait {
        /// Mark the holder's context wounded (and wake it if it waits).
        wound: bool,
    },
}

/// The wound/wait decision for a context of `kind` with `stamp` (lower is older) that holds
/// `acquired` mutexes (and was `wounded`, for wound-wait), asking for a mutex held by a context
/// with `holder` stamp (`None`: held without a context). A context that holds nothing never backs
/// off and wounds nobody: it cannot be part of a deadlock.
pub fn verdict(
    kind: WwKind,
    stamp: u64,
    acquired: u32,
    wounded: bool,
    holder: Option<u64>,
) -> Verdict {
    if acquired == 0 {
        return Verdict::Wait { wound: false };
    }
    match kind {
        WwKind::WaitDie => match holder {
            Some(h) if stamp > h => Verdict::BackOff,
            _ => Verdict::Wait { wound: false },
        },
        WwKind::WoundWait if wounded => Verdict::BackOff,
        WwKind::WoundWait => Verdict::Wait {
            wound: holder.is_some_and(|h| h > stamp),
        },
    }
}

/// The validator's bookkeeping of one acquire context (the checked fields of the kernel's
/// `struct ww_acquire_ctx`). Made by the driver with the identity of the context's ww class and
/// passed to every ww operation of [`Engine`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WwCtxState {
    ww_class: usize,
    acquired: u32,
    done: bool,
    /// The instance of the mutex that made the context back off; 0 for none.
    contending: usize,
}

impl WwCtxState {
    /// The state of a fresh context of the ww class identified by `ww_class` (any word the
    /// driver uses consistently for the class: its address, an index).
    pub fn new(ww_class: usize) -> WwCtxState {
        WwCtxState {
            ww_class,
            ..WwCtxState::default()
        }
    }

    /// How many mutexes the context holds, as the validator counts them.
    pub fn acquired(&self) -> u32 {
        self.acquired
    }

    /// Whether `done` was called.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The instance of the mutex the context backed off on, until it is locked again.
    pub fn contending(&self) -> Option<usize> {
        (self.contending != 0).then_some(self.contending)
    }

    /// Overwrites the held count. Only the kernel's selftests do this (`t.acquired = 0`), to fake
    /// a bookkeeping bug; the scenario replay offers it for them.
    pub(crate) fn set_acquired(&mut self, n: u32) {
        self.acquired = n;
    }
}

/// How a ww mutex is being locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WwLockMode {
    /// `ww_mutex_lock` (may back off).
    Lock,
    /// `ww_mutex_lock_slow`, after a back-off (never backs off: the context holds nothing).
    Slow,
    /// A successful `ww_mutex_trylock` (recorded as a trylock: never validated).
    Try,
}

impl Engine {
    /// `ww_acquire_init`: the context's map is acquired (held until [`Engine::ww_acquire_fini`]),
    /// and `first`, a map of the ww class's *mutex* class, is acquired under it and released at
    /// once, so that "context, then its mutexes" is known from the start. `state` starts afresh.
    pub fn ww_acquire_init(
        &self,
        task: &mut Task,
        ctx: &LockMap,
        first: &LockMap,
        state: &mut WwCtxState,
        site: Site,
    ) -> Option<Report> {
        *state = WwCtxState::new(state.ww_class);
        let held = self.acquire(task, ctx, Acquire::exclusive(), site);
        let primed = self.acquire(task, first, Acquire::exclusive().nest_lock(ctx), site);
        let released = self.release(task, first, site);
        held.or(primed).or(released)
    }

    /// `ww_acquire_done`: no more mutexes will be locked under the context.
    pub fn ww_acquire_done(
        &self,
        task: &mut Task,
        ctx: &LockMap,
        state: &mut WwCtxState,
        site: Site,
    ) -> Option<Report> {
        let held = self.assert_held(task, ctx, true, None, site);
        let twice = std::mem::replace(&mut state.done, true);
        held.or_else(|| {
            twice
                .then(|| self.ww_misuse(task, ctx, site, "ctx->done_acquire", DONE_TWICE))
                .flatten()
        })
    }

    /// `ww_acquire_fini`: the context must hold no mutex; its map is released.
    pub fn ww_acquire_fini(
        &self,
        task: &mut Task,
        ctx: &LockMap,
        state: &mut WwCtxState,
        site: Site,
    ) -> Option<Report> {
        let held = (state.acquired > 0)
            .then(|| self.ww_misuse(task, ctx, site, "ctx->acquired", FINI_HELD))
            .flatten();
        state.done = true;
        let released = self.release(task, ctx, site);
        held.or(released)
    }

    /// A ww mutex is about to be locked (before blocking, or after a successful trylock): with a
    /// context, as an acquisition nested in the context's map (a `lock_slow` must follow a
    /// back-off); without one, as a plain mutex.
    pub fn ww_lock(
        &self,
        task: &mut Task,
        lock: &LockMap,
        ctx: Option<(&LockMap, &mut WwCtxState)>,
        mode: WwLockMode,
        site: Site,
    ) -> Option<Report> {
        let how = Acquire::exclusive().trylock(mode == WwLockMode::Try);
        let Some((ctx_map, state)) = ctx else {
            return self.acquire(task, lock, how, site);
        };
        let unneeded = (mode == WwLockMode::Slow && state.contending == 0)
            .then(|| self.ww_misuse(task, lock, site, "!ctx->contending_lock", UNNEEDED_SLOW))
            .flatten();
        let acquired = self.acquire(task, lock, how.nest_lock(ctx_map), site);
        unneeded.or(acquired)
    }

    /// A ww mutex was locked under a context (`ww_mutex_lock_acquired`): checks the context's
    /// state, then counts the mutex. `lock_class` identifies the mutex's ww class as
    /// [`WwCtxState::new`] does the context's; `stale` says the mutex was still bound to a
    /// context (it was unlocked without `ww_mutex_unlock`).
    pub fn ww_acquired(
        &self,
        task: &mut Task,
        lock: &LockMap,
        lock_class: usize,
        state: &mut WwCtxState,
        stale: bool,
        site: Site,
    ) -> Option<Report> {
        let mut problem: Option<(&str, &str)> = None;
        let mut note = |what, why| {
            problem.get_or_insert((what, why));
        };
        if stale {
            note("ww->ctx", STALE);
        }
        if state.done {
            note("ww_ctx->done_acquire", AFTER_DONE);
        }
        if state.contending != 0 {
            if state.contending != lock.instance() {
                note("ww_ctx->contending_lock != ww", WRONG_AFTER_BACKOFF);
            }
            if state.acquired > 0 {
                note("ww_ctx->acquired > 0", NOT_RELEASED);
            }
            state.contending = 0;
        }
        if state.ww_class != lock_class {
            note("ww_ctx->ww_class != ww->ww_class", CLASS_MIX);
        }
        state.acquired += 1;
        let (what, why) = problem?;
        self.ww_misuse(task, lock, site, what, why)
    }

    /// A lock under a context returned "back off" (`-EDEADLK`): the mutex becomes the context's
    /// contended one. With `held` the acquisition recorded by [`Engine::ww_lock`] is taken back;
    /// without it the mutex was already unlocked (an injected back-off after a success).
    pub fn ww_back_off(
        &self,
        task: &mut Task,
        lock: &LockMap,
        state: &mut WwCtxState,
        held: bool,
        site: Site,
    ) -> Option<Report> {
        let released = if held {
            self.release(task, lock, site)
        } else {
            None
        };
        let twice = state.contending != 0;
        state.contending = lock.instance();
        released.or_else(|| {
            twice
                .then(|| self.ww_misuse(task, lock, site, "ww_ctx->contending_lock", BACKOFF_TWICE))
                .flatten()
        })
    }

    /// `ww_mutex_unlock`: `owner` is the state of the context the mutex is bound to (`None` for a
    /// mutex locked without one), which must count it.
    pub fn ww_unlock(
        &self,
        task: &mut Task,
        lock: &LockMap,
        owner: Option<&mut WwCtxState>,
        site: Site,
    ) -> Option<Report> {
        let unbalanced = match owner {
            Some(state) if state.acquired == 0 => true,
            Some(state) => {
                state.acquired -= 1;
                false
            }
            None => false,
        };
        let misuse = unbalanced
            .then(|| self.ww_misuse(task, lock, site, "!lock->ctx->acquired", UNBALANCED))
            .flatten();
        let released = self.release(task, lock, site);
        misuse.or(released)
    }
}

const DONE_TWICE: &str = "ww_acquire_done() called twice on one acquire context";
const FINI_HELD: &str = "ww_acquire_fini() with ww mutexes still held under the context";
const UNNEEDED_SLOW: &str = "ww_mutex_lock_slow() without a back-off (-EDEADLK) before it";
const STALE: &str = "ww mutex still bound to a context: it was unlocked without ww_mutex_unlock()";
const AFTER_DONE: &str = "ww mutex locked with an acquire context after ww_acquire_done()";
const WRONG_AFTER_BACKOFF: &str =
    "after a back-off (-EDEADLK), a ww mutex other than the contended one was locked";
const NOT_RELEASED: &str =
    "after a back-off (-EDEADLK), a ww mutex was locked before every held one was released";
const CLASS_MIX: &str = "ww mutex locked with an acquire context of another ww class";
const BACKOFF_TWICE: &str =
    "a second back-off (-EDEADLK) before the contended ww mutex of the first was locked";
const UNBALANCED: &str = "ww_mutex_unlock() of a ww mutex its acquire context does not hold";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_die_kills_the_younger_requester_only() {
        let d = WwKind::WaitDie;
        assert_eq!(verdict(d, 5, 1, false, Some(3)), Verdict::BackOff);
        assert_eq!(
            verdict(d, 3, 1, false, Some(5)),
            Verdict::Wait { wound: false }
        );
        assert_eq!(
            verdict(d, 5, 0, false, Some(3)),
            Verdict::Wait { wound: false }
        );
        assert_eq!(
            verdict(d, 5, 2, false, None),
            Verdict::Wait { wound: false }
        );
    }

    #[test]
    fn wound_wait_wounds_a_younger_holder_and_backs_off_when_wounded() {
        let w = WwKind::WoundWait;
        assert_eq!(
            verdict(w, 3, 1, false, Some(5)),
            Verdict::Wait { wound: true }
        );
        assert_eq!(
            verdict(w, 5, 1, false, Some(3)),
            Verdict::Wait { wound: false }
        );
        assert_eq!(verdict(w, 5, 1, true, Some(3)), Verdict::BackOff);
        assert_eq!(
            verdict(w, 5, 0, true, Some(3)),
            Verdict::Wait { wound: false }
        );
        assert_eq!(
            verdict(w, 3, 1, false, None),
            Verdict::Wait { wound: false }
        );
    }
}
