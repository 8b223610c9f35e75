//! A report handler that panics: the panic reaches the lock call, the raw lock is not taken,
//! and the acquisition is taken back, so no phantom hold is left on the thread's stack (it
//! would make bogus dependencies and a "locks held at exit" report). (Its own test binary: the
//! handler is process-wide.)

#![cfg(not(feature = "disabled"))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use lockdep::sync::Lockdep;
use lockdep::{LockMap, Mutex, ReportCollector, ReportKind, WaitType};

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_panicking_handler_leaves_no_phantom_hold() {
    lockdep::set_report_handler(|_r| {
        CALLS.fetch_add(1, Ordering::SeqCst);
        panic!("the handler panics");
    });
    let reports = ReportCollector::new();

    let a = Mutex::new(1);
    let b = Mutex::new(2);
    // A spinning lock, which may be taken in hardirq context.
    let c: lock_api::Mutex<Lockdep<parking_lot::RawMutex>, u32> = lock_api::Mutex::from_raw(
        Lockdep::new(
            <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
            LockMap::new().with_wait(WaitType::Spin, WaitType::Inv),
        ),
        3,
    );
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _b = b.lock();
        let _a = a.lock(); // circular: the handler panics
        unreachable!();
    }));
    assert!(r.is_err());
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    // `a` was never taken, and the validator does not think it is held.
    assert!(!a.is_locked() && !b.is_locked());
    assert_eq!(lockdep::rt::depth(), 0);

    // A trylock's report (here an inconsistent lock state: `c` taken in hardirq context, then
    // tried with interrupts enabled) comes after the raw lock was taken: the handler's panic
    // gives it back too.
    {
        let _irq = lockdep::irq::hardirq();
        drop(c.lock());
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _c = c.try_lock();
        unreachable!();
    }));
    assert!(r.is_err());
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    assert!(!c.is_locked());
    assert_eq!(lockdep::rt::depth(), 0);

    // No phantom hold of `a`: taking `c` makes no dependency from it (nor any report), and
    // nothing is held at the end.
    lockdep::clear_report_handler();
    {
        let _c = c.lock();
    }
    lockdep::check_no_locks_held();
    let later: Vec<ReportKind> = reports.reports()[2..].iter().map(|r| r.kind).collect();
    assert!(later.is_empty(), "{later:?}");
}
