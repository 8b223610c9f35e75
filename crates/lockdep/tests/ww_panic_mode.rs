//! `LOCKDEP=panic` with wound/wait mutexes: a ww misuse panics in the offending thread and
//! leaves the mutexes, the context and the held-lock stack consistent. (Its own test binary: the
//! action is process-wide.)

#![cfg(not(feature = "disabled"))]

use std::panic::{catch_unwind, AssertUnwindSafe};

use lockdep::ww::{AcquireCtx, WwMutex};

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("must panic");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn ww_misuses_panic_and_leave_everything_consistent() {
    lockdep::set_action(lockdep::Action::Panic);
    let class = lockdep::ww_class!(wait_die, "panic_mode_ww");
    let (a, b) = (WwMutex::new(class, 0), WwMutex::new(class, 0));

    // Reported after the mutex was taken: the panic unwinds through a guard, which unlocks it.
    let ctx = AcquireCtx::new(class);
    ctx.done();
    let msg = panic_message(|| {
        let _g = ctx.lock(&a).unwrap();
        unreachable!();
    });
    assert!(msg.contains("wound/wait mutex misuse"), "{msg}");
    assert!(!a.is_locked());
    assert_eq!(ctx.acquired(), 0);
    assert_eq!(lockdep::rt::depth(), 1, "only the context's map is held");
    drop(ctx);
    assert_eq!(lockdep::rt::depth(), 0);

    // Reported before the mutex is taken: the acquisition is taken back, nothing is locked.
    let ctx = AcquireCtx::new(class);
    let msg = panic_message(|| {
        let _g = ctx.lock_slow(&b);
        unreachable!();
    });
    assert!(msg.contains("wound/wait mutex misuse"), "{msg}");
    assert!(!b.is_locked());
    assert_eq!(lockdep::rt::depth(), 1);

    // A second context of the class, reported at its init: unwinding finishes it.
    let msg = panic_message(|| {
        let _second = AcquireCtx::new(class);
        unreachable!();
    });
    assert!(msg.contains("possible recursive locking"), "{msg}");
    assert_eq!(lockdep::rt::depth(), 1);

    // The validator and the mutexes still work.
    {
        let mut g = ctx.lock_all(&[&a, &b]);
        *g[0] += 1;
        *g[1] += 1;
    }
    ctx.fini();
    assert_eq!(lockdep::rt::depth(), 0);
    // One at a time: two ww mutexes of one class without a context are recursive locking.
    assert_eq!(*a.lock(), 1);
    assert_eq!(*b.lock(), 1);
}
