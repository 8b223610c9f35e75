//! A report handler that itself locks a `lockdep::Mutex` neither deadlocks nor recurses.
//! (Its own test binary: the handler is process-wide.)

#![cfg(not(feature = "disabled"))]

use std::sync::atomic::{AtomicUsize, Ordering};

use lockdep::{LockClassKey, Mutex, ReportKind};

static LOG: Mutex<Vec<ReportKind>> = Mutex::new(Vec::new());
static CALLS: AtomicUsize = AtomicUsize::new(0);
static SAME: LockClassKey = LockClassKey::new("handler.same");

#[test]
fn a_handler_that_locks_instrumented_mutexes_neither_deadlocks_nor_recurses() {
    lockdep::set_report_handler(|r| {
        CALLS.fetch_add(1, Ordering::SeqCst);
        let mut log = LOG.lock();
        // Two mutexes of one class, nested: recursive locking if the validator looked at the
        // handler's locks, which would call this handler again from inside itself.
        let x = Mutex::with_key((), &SAME);
        let y = Mutex::with_key((), &SAME);
        let _x = x.lock();
        let _y = y.lock();
        log.push(r.kind);
    });

    let a = Mutex::new(());
    let b = Mutex::new(());
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    {
        let _b = b.lock();
        let _a = a.lock(); // report -> handler, on this thread, while it holds `b`
    }

    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(*LOG.lock(), vec![ReportKind::Circular]);
    // Nothing the handler locked is left on this thread's held stack.
    assert_eq!(lockdep::rt::depth(), 0);

    // The validator is still on for this thread after the handler ran: a new problem is found.
    let c = Mutex::with_key((), &SAME);
    let d = Mutex::with_key((), &SAME);
    {
        let _c = c.lock();
        let _d = d.lock();
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(
        *LOG.lock(),
        vec![ReportKind::Circular, ReportKind::Recursive]
    );
    lockdep::clear_report_handler();
}
