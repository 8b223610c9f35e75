//! The rest of parking_lot's API at the crate root: FairMutex, ReentrantMutex, Once, the
//! `const_*` constructors, the guard types, and the Condvar additions.

#![cfg(not(feature = "disabled"))]

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use lockdep::{
    const_fair_mutex, const_mutex, const_reentrant_mutex, const_rwlock, Condvar, FairMutex,
    FairMutexGuard, LockClassKey, MappedFairMutexGuard, MappedMutexGuard,
    MappedReentrantMutexGuard, MappedRwLockReadGuard, MappedRwLockWriteGuard, Mutex, MutexGuard,
    Once, OnceState, ReentrantMutex, ReentrantMutexGuard, ReportCollector, ReportKind, RwLock,
    RwLockReadGuard, RwLockUpgradableReadGuard, RwLockWriteGuard, WaitTimeoutResult,
};

fn kinds_about(c: &ReportCollector, name: &str) -> Vec<ReportKind> {
    c.matching(|r| r.involves(name))
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

#[test]
fn a_fair_mutex_is_a_validated_mutex() {
    let c = ReportCollector::new();
    let (a, b) = (FairMutex::new(1), FairMutex::new(2));
    {
        let g: FairMutexGuard<'_, i32> = a.lock();
        let _b = b.lock();
        FairMutexGuard::unlock_fair(g);
    }
    {
        let _b = b.lock();
        let g = a.lock();
        let m: MappedFairMutexGuard<'_, i32> = FairMutexGuard::map(g, |v| v);
        assert_eq!(*m, 1);
    }
    assert_eq!(kinds_about(&c, &a.class_name()), vec![ReportKind::Circular]);
    static F: FairMutex<u8> = const_fair_mutex(0);
    *F.lock() += 1;
    assert_eq!(*F.lock(), 1);
}

#[test]
fn reentry_by_the_owner_is_allowed_and_orders_are_still_checked() {
    static R: LockClassKey = LockClassKey::new("pl.remutex");
    let c = ReportCollector::new();
    let r = ReentrantMutex::with_key(std::cell::Cell::new(0), &R);
    let m = Mutex::new(());
    {
        let a: ReentrantMutexGuard<'_, _> = r.lock();
        let b = r.lock(); // re-entry: no report
        let _m = m.lock(); // r -> m
        a.set(b.get() + 1);
        assert_eq!(
            lockdep::rt::depth(),
            2,
            "only the first entry is an acquisition"
        );
    }
    assert!(kinds_about(&c, "pl.remutex").is_empty());
    {
        let _m = m.lock();
        let _r = r.lock(); // m -> r closes the cycle
    }
    assert_eq!(kinds_about(&c, "pl.remutex"), vec![ReportKind::Circular]);
    let other = thread::scope(|s| s.spawn(|| r.try_lock().is_some()).join().unwrap());
    assert!(other);
    let g = r.lock();
    let mapped: MappedReentrantMutexGuard<'_, i32> =
        ReentrantMutexGuard::map(g, |c| unsafe { &*c.as_ptr() });
    assert_eq!(*mapped, 1);
    drop(mapped);
    static CR: ReentrantMutex<u8> = const_reentrant_mutex(3);
    assert_eq!(*CR.lock(), 3);
}

#[test]
fn once_runs_its_closure_holding_its_lock_map() {
    static K: LockClassKey = LockClassKey::new("pl.once.K");
    let c = ReportCollector::new();
    let k = Mutex::with_key((), &K);
    let once = Once::new();
    assert_eq!(once.state(), OnceState::New);
    once.call_once(|| drop(k.lock())); // once -> K
    assert!(once.state().done());
    {
        let _k = k.lock();
        once.call_once(|| unreachable!()); // K -> once: cycle
    }
    assert_eq!(kinds_about(&c, "pl.once.K"), vec![ReportKind::Circular]);
    let poisoned = Once::new();
    let _ = std::panic::catch_unwind(|| poisoned.call_once(|| panic!()));
    assert!(poisoned.state().poisoned());
    poisoned.call_once_force(|s| assert!(s.poisoned()));
    assert!(poisoned.state().done());
    assert_eq!(lockdep::rt::depth(), 0);
}

#[test]
fn const_constructors_and_guard_types_are_at_the_root() {
    static M: Mutex<u32> = const_mutex(1);
    static L: RwLock<u32> = const_rwlock(2);
    let g: MutexGuard<'_, u32> = M.lock();
    let g: MappedMutexGuard<'_, u32> = MutexGuard::map(g, |v| v);
    assert_eq!(*g, 1);
    drop(g);
    let u: RwLockUpgradableReadGuard<'_, u32> = L.upgradable_read();
    let w: RwLockWriteGuard<'_, u32> = RwLockUpgradableReadGuard::upgrade(u);
    let w: MappedRwLockWriteGuard<'_, u32> = RwLockWriteGuard::map(w, |v| v);
    drop(w);
    let r: RwLockReadGuard<'_, u32> = L.read();
    let r: MappedRwLockReadGuard<'_, u32> = RwLockReadGuard::map(r, |v| v);
    assert_eq!(*r, 2);
    drop(r);
    assert_ne!(M.class_name(), L.class_name());
    let _: Option<WaitTimeoutResult> = None;
}

#[test]
fn wait_while_for_and_wait_while_until() {
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let mut g = pair.0.lock();
    let r = pair
        .1
        .wait_while_for(&mut g, |n| *n == 0, Duration::from_millis(5));
    assert!(r.timed_out());
    let p2 = Arc::clone(&pair);
    let t = thread::spawn(move || {
        *p2.0.lock() = 1;
        p2.1.notify_one();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = pair.1.wait_while_until(&mut g, |n| *n == 0, deadline);
    assert!(!r.timed_out());
    assert_eq!(*g, 1);
    drop(g);
    t.join().unwrap();
}

#[test]
fn one_condvar_with_two_mutexes_panics_as_parking_lots_does() {
    let shared = Arc::new((Mutex::new(()), Mutex::new(()), Condvar::new()));
    let s2 = Arc::clone(&shared);
    let waiter = thread::spawn(move || {
        let mut g = s2.0.lock();
        s2.2.wait_for(&mut g, Duration::from_secs(10));
    });
    thread::sleep(Duration::from_millis(100));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut g = shared.1.lock();
        shared.2.wait_for(&mut g, Duration::from_secs(10));
    }));
    assert!(r.is_err());
    assert!(!shared.1.is_locked());
    assert_eq!(lockdep::rt::depth(), 0);
    shared.2.notify_all();
    waiter.join().unwrap();
    // Once nobody waits, another mutex may use the condvar.
    let mut g = shared.1.lock();
    assert!(shared
        .2
        .wait_for(&mut g, Duration::from_millis(1))
        .timed_out());
}

#[cfg(feature = "arc_lock")]
#[test]
fn arc_guards_are_validated() {
    use lockdep::{ArcMutexGuard, ArcRwLockReadGuard, RawMutex, RawRwLock};
    let c = ReportCollector::new();
    let a = Arc::new(Mutex::new(1));
    let b = Arc::new(RwLock::new(2));
    {
        let ga: ArcMutexGuard<RawMutex, i32> = a.lock_arc();
        let gb: ArcRwLockReadGuard<RawRwLock, i32> = b.read_arc();
        assert_eq!(*ga + *gb, 3);
        assert!(a.try_lock_arc().is_none());
    }
    {
        let _w = b.write_arc();
        let _a = a.lock_arc();
    }
    assert_eq!(kinds_about(&c, &a.class_name()), vec![ReportKind::Circular]);
    let u = b.upgradable_read_arc();
    drop(u);
    assert!(b.try_upgradable_read_arc().is_some());
    let r = Arc::new(ReentrantMutex::new(()));
    let _g1 = r.lock_arc();
    let _g2 = r.lock_arc();
    assert_eq!(lockdep::rt::depth(), 1);
}

#[cfg(feature = "serde")]
#[test]
fn locks_serialise_as_their_data() {
    let m: Mutex<Vec<u32>> = serde_json::from_str("[1,2]").unwrap();
    assert_eq!(*m.lock(), vec![1, 2]);
    assert_eq!(serde_json::to_string(&m).unwrap(), "[1,2]");
    let l: RwLock<u32> = serde_json::from_str("8").unwrap();
    assert_eq!(serde_json::to_string(&l).unwrap(), "8");
    let r: ReentrantMutex<u32> = serde_json::from_str("9").unwrap();
    assert_eq!(serde_json::to_string(&r).unwrap(), "9");
    let f: FairMutex<u32> = serde_json::from_str("10").unwrap();
    assert_eq!(*f.lock(), 10);
    // Deserialised locks are classed like Default-made ones: by their first acquisition.
    assert_ne!(m.class_name(), f.class_name());
}
