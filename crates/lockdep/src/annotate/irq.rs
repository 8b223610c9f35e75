//! Interrupt-like contexts for userspace: entering and leaving them, disabling and enabling them.
//!
//! The kernel's lockdep knows that an interrupt can arrive while a lock is held and take that
//! lock again on the same CPU. Userspace has the same shapes:
//!
//! - a **signal handler** is a hardirq: it interrupts the thread anywhere, and blocking the
//!   signal (`pthread_sigmask`) is disabling it;
//! - a callback that an event loop may run *inside* another callback (a completion run from a
//!   poll inside a handler) is a softirq, and a "don't dispatch from here" guard is
//!   `local_bh_disable`.
//!
//! Tell the validator about them with these functions or guards, on the thread where it
//! happens. A lock taken in such a context becomes *irq-safe*, a lock taken with the context
//! enabled *irq-unsafe*, and the usage rules (`engine/usage.rs`) report the combinations that can
//! deadlock. A new thread starts in process context with both enabled.
//!
//! ```
//! use lockdep::{irq, Mutex};
//!
//! static STATS: Mutex<u64> = Mutex::new(0);
//!
//! fn on_signal() {
//!     let _ctx = irq::hardirq(); // what a signal handler would declare
//!     *STATS.lock() += 1;        // STATS is now hardirq-safe
//! }
//!
//! fn report() {
//!     let _off = irq::disable(); // block the signal while holding the lock
//!     let _s = STATS.lock();
//! }
//! # on_signal(); report();
//! ```
//!
//! A real signal handler declares itself with [`signal`] instead: [`hardirq`] changes the
//! interrupted thread's own state and may allocate, which a handler must not do (see
//! `docs/SEMANTICS.md`, "Signal handlers").
//!
//! ```
//! # #[cfg(all(target_os = "linux", not(feature = "disabled")))] {
//! use lockdep::{irq, Mutex};
//!
//! static COUNT: Mutex<u64> = lockdep::const_mutex(0);
//!
//! extern "C" fn on_sigusr1(_: i32) {
//!     let _ctx = irq::signal(); // async-signal-safe: validated after the handler returns
//!     if let Some(mut c) = COUNT.try_lock() {
//!         *c += 1;
//!     }
//! }
//! # drop(COUNT.lock());
//! # on_sigusr1(10);
//! # }
//! ```

use std::marker::PhantomData;

use crate::engine::held::{IrqState, Task};
use crate::engine::Engine;
use crate::report::Report;

fn run(f: impl FnOnce(&Engine, &mut Task) -> Option<Report>) {
    crate::rt::with_current_task(f);
}

/// Disables hard interrupts on this thread (`local_irq_disable`).
pub fn local_irq_disable() {
    run(|e, t| e.irq_disable(t));
}

/// Enables hard interrupts on this thread (`local_irq_enable`): the locks held now become
/// hardirq-unsafe.
pub fn local_irq_enable() {
    run(|e, t| e.irq_enable(t));
}

/// Disables soft interrupts on this thread (`local_bh_disable`).
pub fn local_bh_disable() {
    run(|e, t| e.bh_disable(t));
}

/// Enables soft interrupts on this thread (`local_bh_enable`).
pub fn local_bh_enable() {
    run(|e, t| e.bh_enable(t));
}

/// Marks entry into hardirq context (a marker only: it changes no enable flag).
pub fn hardirq_enter() {
    run(|e, t| {
        e.hardirq_enter(t);
        None
    });
}

/// Marks exit from hardirq context.
pub fn hardirq_exit() {
    run(|e, t| {
        e.hardirq_exit(t);
        None
    });
}

/// Marks the current hardirq as running threaded (it may take `config` wait-type locks).
pub fn hardirq_threaded() {
    run(|e, t| {
        e.hardirq_threaded(t);
        None
    });
}

/// Marks entry into softirq context (a marker only).
pub fn softirq_enter() {
    run(|e, t| {
        e.softirq_enter(t);
        None
    });
}

/// Marks exit from softirq context.
pub fn softirq_exit() {
    run(|e, t| {
        e.softirq_exit(t);
        None
    });
}

/// This thread's interrupt-like state (`None` if the validator is off or busy on it).
pub fn state() -> Option<IrqState> {
    let mut out = None;
    run(|_, t| {
        out = Some(t.irq_state());
        None
    });
    out
}

/// Hard interrupts disabled until dropped, then restored to what they were
/// (`local_irq_save` / `local_irq_restore`).
#[must_use = "interrupts are restored when the guard is dropped"]
#[derive(Debug)]
pub struct IrqsDisabled {
    was_enabled: bool,
    _not_send: PhantomData<*const ()>,
}

/// Disables hard interrupts until the guard is dropped.
pub fn disable() -> IrqsDisabled {
    let was_enabled = state().is_some_and(|s| s.hardirqs_enabled);
    local_irq_disable();
    IrqsDisabled {
        was_enabled,
        _not_send: PhantomData,
    }
}

impl Drop for IrqsDisabled {
    fn drop(&mut self) {
        if self.was_enabled {
            local_irq_enable();
        }
    }
}

/// Soft interrupts disabled until dropped, then restored.
#[must_use = "soft interrupts are restored when the guard is dropped"]
#[derive(Debug)]
pub struct BhDisabled {
    was_enabled: bool,
    _not_send: PhantomData<*const ()>,
}

/// Disables soft interrupts until the guard is dropped (`local_bh_disable`).
pub fn disable_bh() -> BhDisabled {
    let was_enabled = state().is_some_and(|s| s.softirqs_enabled);
    local_bh_disable();
    BhDisabled {
        was_enabled,
        _not_send: PhantomData,
    }
}

impl Drop for BhDisabled {
    fn drop(&mut self) {
        if self.was_enabled {
            local_bh_enable();
        }
    }
}

/// Running in hardirq context, with hard interrupts disabled, until dropped: what a signal
/// handler (or an interrupt handler) declares.
#[must_use = "the context ends when the guard is dropped"]
#[derive(Debug)]
pub struct Hardirq {
    _irqs: IrqsDisabled,
}

/// Enters hardirq context (disabling hard interrupts) until the guard is dropped.
pub fn hardirq() -> Hardirq {
    let irqs = disable();
    hardirq_enter();
    Hardirq { _irqs: irqs }
}

impl Drop for Hardirq {
    fn drop(&mut self) {
        hardirq_exit();
    }
}

/// Inside a real signal handler, until dropped: see [`signal`].
#[must_use = "the handler's context ends when the guard is dropped"]
#[derive(Debug)]
pub struct Signal {
    fast: *const (),
    _not_send: PhantomData<*const ()>,
}

/// Declares that the code until the guard drops runs in a signal handler: a hardirq that may
/// have interrupted its thread anywhere, inside the allocator or the validator included.
///
/// Until then the thread's lock hooks are async-signal-safe: they neither allocate nor lock nor
/// touch the interrupted code's state, but log each acquisition and release (the lock's class,
/// read from its cache) in a fixed per-thread log. The thread validates the log at its next
/// slow-path hook outside the handler (at the latest when it exits), on a task of its own in
/// hardirq context with hard interrupts off, as the kernel validates an interrupt: the locks
/// become hardirq-safe, and taking one with the signal unblocked elsewhere is reported. A lock
/// the program has never taken outside a handler has no cached class yet and is not validated
/// (counted by [`signal_unvalidated`]), nor are subclass or nest-lock acquisitions.
pub fn signal() -> Signal {
    Signal {
        fast: crate::rt::signal::enter().cast(),
        _not_send: PhantomData,
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        crate::rt::signal::exit(self.fast.cast());
    }
}

/// How many lock hooks in declared signal handlers were not validated (see [`signal`]).
pub fn signal_unvalidated() -> usize {
    crate::rt::signal::unvalidated()
}

/// Running in softirq context, with soft interrupts disabled, until dropped.
#[must_use = "the context ends when the guard is dropped"]
#[derive(Debug)]
pub struct Softirq {
    _bh: BhDisabled,
}

/// Enters softirq context (disabling soft interrupts) until the guard is dropped.
pub fn softirq() -> Softirq {
    let bh = disable_bh();
    softirq_enter();
    Softirq { _bh: bh }
}

impl Drop for Softirq {
    fn drop(&mut self) {
        softirq_exit();
    }
}
