//! `LOCKDEP=panic`: a report panics in the thread that caused it, before the offending lock is
//! taken, and leaves the validator and the program's data consistent. (Its own test binary: the
//! action is process-wide.)

#![cfg(not(feature = "disabled"))]

use lockdep::Mutex;

#[test]
fn panic_mode_panics_before_taking_the_lock_and_stays_consistent() {
    // SAFETY-free in edition 2021; the variable is read once, at first use, by this process.
    std::env::set_var("LOCKDEP", "panic");
    assert_eq!(lockdep::action(), lockdep::Action::Panic);

    let a = Mutex::new(1);
    let b = Mutex::new(2);
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _b = b.lock();
        let _a = a.lock(); // panics here, before locking `a`
        unreachable!();
    }));
    let err = result.expect_err("the inversion must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("possible circular locking dependency"),
        "{msg}"
    );

    // The panic unwound `_b`; `a` was never taken: both are free, nothing is held.
    assert!(!a.is_locked());
    assert!(!b.is_locked());
    assert_eq!(lockdep::rt::depth(), 0);

    // The validator still works and does not report the same problem again.
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    assert_eq!(*a.lock() + *b.lock(), 3);
}
