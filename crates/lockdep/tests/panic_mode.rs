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

/// A panic's message, whichever way it was raised.
fn message(err: &Box<dyn std::any::Any + Send>) -> String {
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Whether another thread can take the lock within a second (it would never be free if the
/// panic had left it locked with no guard).
fn free_elsewhere(f: impl FnOnce() -> bool + Send) -> bool {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

#[test]
fn a_trylock_whose_report_panics_leaves_the_lock_free() {
    use lock_api::{RawMutex as _, RawMutexTimed as _, RawRwLock as _, RawRwLockTimed as _};
    use lockdep::sync::Lockdep;
    use lockdep::{LockClassKey, LockMap, WaitType};
    use parking_lot::{RawMutex as RawMutexT, RawRwLock as RawRwLockT};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::Duration;
    lockdep::set_action(lockdep::Action::Panic);

    // A trylock validates no chain and no wait context (so it makes no circular, recursive or
    // wait-context report), and it is never "used in" an interrupt, but it marks the lock as
    // taken with interrupts enabled: a spinning lock taken in hardirq context, then tried with
    // interrupts on, is an inconsistent lock state. That report comes after the raw lock was
    // taken.
    type SpinMutex = lock_api::Mutex<Lockdep<parking_lot::RawMutex>, u32>;
    type SpinRwLock = lock_api::RwLock<Lockdep<parking_lot::RawRwLock>, u32>;
    // A class each: a report is made once per class.
    let spin = |name: String| {
        LockMap::named(LockClassKey::new_dynamic(name)).with_wait(WaitType::Spin, WaitType::Inv)
    };
    let locks: Vec<(SpinMutex, SpinRwLock)> = (0..4)
        .map(|i| {
            (
                SpinMutex::from_raw(Lockdep::new(RawMutexT::INIT, spin(format!("m{i}"))), 0),
                SpinRwLock::from_raw(Lockdep::new(RawRwLockT::INIT, spin(format!("rw{i}"))), 0),
            )
        })
        .collect();
    for (m, rw) in &locks {
        let _irq = lockdep::irq::hardirq();
        drop(m.lock());
        drop(rw.write());
    }
    let tries: [(&str, &dyn Fn() -> bool); 4] = [
        ("try_lock", &|| locks[0].0.try_lock().is_some()),
        ("try_lock_for", &|| {
            locks[1].0.try_lock_for(Duration::from_millis(1)).is_some()
        }),
        ("try_read", &|| locks[2].1.try_read().is_some()),
        ("try_upgradable_read", &|| {
            locks[3].1.try_upgradable_read().is_some()
        }),
    ];
    for (what, try_it) in tries {
        let err = catch_unwind(AssertUnwindSafe(try_it)).expect_err(what);
        assert!(
            message(&err).contains("inconsistent lock state"),
            "{what}: {}",
            message(&err)
        );
        assert_eq!(lockdep::rt::depth(), 0, "{what}");
    }
    // Free for another thread: tried on the raw locks (the validator would report the same
    // inconsistency for the untried ones).
    for (m, rw) in &locks {
        assert!(!m.is_locked() && !rw.is_locked());
        // SAFETY: the raw locks are taken and given back right away, by the same thread.
        assert!(free_elsewhere(|| unsafe {
            m.raw().inner().try_lock_for(Duration::from_secs(1)) && {
                m.raw().inner().unlock();
                true
            }
        }));
        // SAFETY: as above.
        assert!(free_elsewhere(|| unsafe {
            rw.raw()
                .inner()
                .try_lock_exclusive_for(Duration::from_secs(1))
                && {
                    rw.raw().inner().unlock_exclusive();
                    true
                }
        }));
    }
}

#[test]
fn a_trylock_past_the_depth_limit_panics_and_leaves_the_lock_free() {
    lockdep::set_action(lockdep::Action::Panic);
    // Sleeping locks too: the depth limit is reported for a trylock as for a lock.
    type Own = lock_api::Mutex<lockdep::sync::Lockdep<parking_lot::RawMutex>, ()>;
    let held: Vec<Own> = (0..lockdep::MAX_LOCK_DEPTH).map(|_| Own::new(())).collect();
    let m = Mutex::new(0);
    let guards: Vec<_> = held.iter().map(|l| l.lock()).collect();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.try_lock().is_some()))
        .expect_err("the depth report panics");
    assert!(
        message(&err).contains("MAX_LOCK_DEPTH too low"),
        "{}",
        message(&err)
    );
    assert_eq!(lockdep::rt::depth(), lockdep::MAX_LOCK_DEPTH);
    drop(guards);
    assert_eq!(lockdep::rt::depth(), 0);
    assert!(!m.is_locked());
    assert!(free_elsewhere(|| m
        .try_lock_for(std::time::Duration::from_secs(1))
        .is_some()));
}

/// Run as its own process by the test below (a panic inside a panic aborts the process).
const CHILD: &str = "LOCKDEP_PANIC_MODE_CHILD";

struct InvertsOnDrop<'a>(&'a Mutex<u32>, &'a Mutex<u32>);

impl Drop for InvertsOnDrop<'_> {
    fn drop(&mut self) {
        let _b = self.1.lock();
        let _a = self.0.lock(); // a circular report, while the thread unwinds
    }
}

#[test]
fn a_report_from_a_destructor_during_unwinding_does_not_abort() {
    if std::env::var_os(CHILD).is_some() {
        lockdep::set_action(lockdep::Action::Panic);
        let a = Mutex::new(1);
        let b = Mutex::new(2);
        {
            let _a = a.lock();
            let _b = b.lock();
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _d = InvertsOnDrop(&a, &b);
            panic!("the first panic");
        }));
        assert_eq!(message(&r.expect_err("panicked")), "the first panic");
        // The report did not panic, so the destructor took both locks and gave them back.
        assert!(!a.is_locked() && !b.is_locked());
        assert_eq!(lockdep::rt::depth(), 0);
        println!("child survived");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_report_from_a_destructor_during_unwinding_does_not_abort",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("child survived"),
        "the child died ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The report was still printed, and said why it did not panic.
    assert!(
        stderr.contains("possible circular locking dependency"),
        "{stderr}"
    );
    assert!(stderr.contains("already panicking"), "{stderr}");
}
