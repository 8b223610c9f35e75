//! Holds released on another thread than the one that took them (`Send` guards).

#![cfg(not(feature = "disabled"))]

use std::sync::mpsc;
use std::thread;

use lockdep::{Acquire, LockClassKey, LockMap, ReportCollector, ReportKind};

static MOVED: LockMap = LockMap::named(&MOVED_KEY).movable();
static MOVED_KEY: LockClassKey = LockClassKey::new("send.moved");
static ORPHAN: LockMap = LockMap::named(&ORPHAN_KEY).movable();
static ORPHAN_KEY: LockClassKey = LockClassKey::new("send.orphan");
static FIXED: LockMap = LockMap::named(&FIXED_KEY);
static FIXED_KEY: LockClassKey = LockClassKey::new("send.fixed");

fn about(c: &ReportCollector, name: &str) -> Vec<ReportKind> {
    c.matching(|r| r.involves(name))
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

#[test]
fn a_movable_hold_released_elsewhere_is_handed_to_its_holder() {
    let c = ReportCollector::new();
    let (to_holder, from_releaser) = mpsc::channel::<()>();
    let (to_releaser, from_holder) = mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        MOVED.acquire(Acquire::exclusive());
        assert_eq!(lockdep::rt::depth(), 1);
        to_releaser.send(()).unwrap();
        from_releaser.recv().unwrap(); // released on the other thread meanwhile
                                       // The next hook on this thread claims the release.
        assert_eq!(lockdep::rt::depth(), 0);
    });
    let releaser = thread::spawn(move || {
        from_holder.recv().unwrap();
        MOVED.release();
        to_holder.send(()).unwrap();
    });
    releaser.join().unwrap();
    holder.join().unwrap();
    assert!(
        about(&c, "send.moved").is_empty(),
        "no bad unlock, no locks held at exit"
    );
}

#[test]
fn a_thread_may_exit_before_its_movable_hold_is_released() {
    let c = ReportCollector::new();
    thread::spawn(|| ORPHAN.acquire(Acquire::exclusive()))
        .join()
        .unwrap();
    thread::spawn(|| ORPHAN.release()).join().unwrap();
    assert!(about(&c, "send.orphan").is_empty());
}

#[test]
fn a_fixed_hold_released_elsewhere_is_still_a_bad_unlock() {
    let c = ReportCollector::new();
    // This thread exits still holding the (not movable) map.
    thread::spawn(|| FIXED.acquire(Acquire::exclusive()))
        .join()
        .unwrap();
    thread::spawn(|| FIXED.release()).join().unwrap();
    assert_eq!(
        about(&c, "send.fixed"),
        vec![ReportKind::LocksHeldAtExit, ReportKind::BadUnlock]
    );
}

#[cfg(feature = "send_guard")]
#[test]
fn a_mutex_guard_can_be_sent_to_another_thread() {
    static KEY: LockClassKey = LockClassKey::new("send.guard");
    static M: lockdep::Mutex<u32> = lockdep::Mutex::with_key(0, &KEY);
    let c = ReportCollector::new();
    let mut g = M.lock();
    *g += 1;
    thread::spawn(move || {
        *g += 1;
        drop(g);
    })
    .join()
    .unwrap();
    assert_eq!(*M.lock(), 2);
    assert_eq!(lockdep::rt::depth(), 0);
    assert!(about(&c, "send.guard").is_empty());
}
