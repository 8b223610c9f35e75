//! The instrumented primitives: parking_lot's API works, and the validator sees what happens.

#![cfg(not(feature = "disabled"))]

use std::sync::Arc;
use std::time::Duration;

use lockdep::sync::{GenericMutex, MappedMutexGuard, MutexGuard};
use lockdep::{Condvar, LockClassKey, Mutex, ReportCollector, ReportKind, RwLock};

fn reports_about(c: &ReportCollector, name: &str) -> Vec<ReportKind> {
    c.matching(|r| r.involves(name))
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

#[test]
fn rwlock_read_is_non_recursive_and_read_recursive_is_recursive() {
    static K1: LockClassKey = LockClassKey::new("prim.rw1");
    static K2: LockClassKey = LockClassKey::new("prim.rw2");
    let c = ReportCollector::new();
    let l = RwLock::with_key(0, &K1);
    {
        let _a = l.read_recursive();
        let _b = l.read_recursive();
    }
    assert!(reports_about(&c, "prim.rw1").is_empty());
    // Two non-recursive reads on one thread deadlock behind a queued writer: reported.
    let m = RwLock::with_key(0, &K2);
    {
        let _a = m.read();
        let _b = m.try_read(); // a trylock is fine
    }
    {
        let _a = m.read();
        let _b = m.read();
    }
    assert_eq!(reports_about(&c, "prim.rw2"), vec![ReportKind::Recursive]);
}

#[test]
fn rwlock_write_then_read_is_recursive() {
    static K: LockClassKey = LockClassKey::new("prim.rw3");
    let c = ReportCollector::new();
    let (a, b) = (RwLock::with_key((), &K), RwLock::with_key((), &K));
    {
        let _w = a.write();
        let _r = b.read_recursive();
    }
    assert_eq!(reports_about(&c, "prim.rw3"), vec![ReportKind::Recursive]);
}

#[test]
fn lock_api_features_work_through_the_wrapper() {
    let m = Mutex::new((1, 2));
    {
        let g: MutexGuard<'_, (i32, i32)> = m.lock();
        let mut second: MappedMutexGuard<'_, i32> = MutexGuard::map(g, |p| &mut p.1);
        *second += 40;
    }
    assert_eq!(m.lock().1, 42);
    assert!(m.try_lock_for(Duration::from_millis(10)).is_some());
    assert!(!m.is_locked());
    let held = m.lock();
    assert!(m.is_held());
    assert!(m.try_lock().is_none());
    drop(held);
    assert!(!m.is_held());

    let l = RwLock::new(5);
    {
        let u = l.upgradable_read();
        let mut w = lock_api::RwLockUpgradableReadGuard::upgrade(u);
        *w += 1;
        let r = lock_api::RwLockWriteGuard::downgrade(w);
        assert_eq!(*r, 6);
    }
    assert_eq!(*l.read(), 6);
    assert_eq!(lockdep::rt::depth(), 0);
    let mut owned = Mutex::new(String::from("x"));
    owned.get_mut().push('y');
    assert_eq!(owned.into_inner(), "xy");
}

#[test]
fn a_downgraded_write_lock_is_a_read_hold() {
    static K: LockClassKey = LockClassKey::new("prim.down");
    let l = RwLock::with_key(0, &K);
    let w = l.write();
    let r = lock_api::RwLockWriteGuard::downgrade(w);
    assert!(l.lock_map().is_held_as(lockdep::ReadKind::Shared));
    drop(r);
    assert!(!l.lock_map().is_held());
}

#[test]
fn a_condvar_wait_releases_the_mutex_in_the_validator() {
    static K: LockClassKey = LockClassKey::new("prim.cv");
    let c = ReportCollector::new();
    let pair = Arc::new((Mutex::with_key(false, &K), Condvar::new()));
    let p = pair.clone();
    let waiter = std::thread::spawn(move || {
        let mut ready = p.0.lock();
        while !*ready {
            assert!(p.0.is_held());
            p.1.wait(&mut ready);
        }
        assert!(p.0.is_held());
        assert_eq!(lockdep::rt::depth(), 1);
    });
    loop {
        std::thread::sleep(Duration::from_millis(5));
        let mut r = pair.0.lock();
        *r = true;
        drop(r);
        if pair.1.notify_all() > 0 || waiter.is_finished() {
            break;
        }
    }
    waiter.join().unwrap();
    let timed = {
        let mut g = pair.0.lock();
        pair.1.wait_for(&mut g, Duration::from_millis(1))
    };
    assert!(timed.timed_out());
    assert!(reports_about(&c, "prim.cv").is_empty());
}

#[test]
fn a_condvar_wait_reacquisition_is_validated() {
    // Waiting on M while holding X re-acquires M under X: X -> M. Elsewhere M -> X. Reported.
    static KM: LockClassKey = LockClassKey::new("prim.cv_m");
    static KX: LockClassKey = LockClassKey::new("prim.cv_x");
    let c = ReportCollector::new();
    let m = Mutex::with_key((), &KM);
    let x = Mutex::with_key((), &KX);
    let cv = Condvar::new();
    {
        let _m = m.lock();
        let _x = x.lock(); // M -> X
    }
    {
        let mut g = m.lock();
        let _x = x.lock();
        cv.wait_for(&mut g, Duration::from_millis(1)); // releases M, takes it again under X
    }
    assert_eq!(reports_about(&c, "prim.cv_m"), vec![ReportKind::Circular]);
}

// With `send_guard` the primitives' holds are movable: a thread may exit after sending its guard
// away, so its remaining holds wait for their release instead (tests/send_guard.rs).
#[cfg(not(feature = "send_guard"))]
#[test]
fn a_thread_that_exits_holding_a_lock_is_reported() {
    static K: LockClassKey = LockClassKey::new("prim.exit");
    static M: Mutex<()> = Mutex::with_key((), &K);
    let c = ReportCollector::new();
    std::thread::Builder::new()
        .name("leaker".into())
        .spawn(|| std::mem::forget(M.lock()))
        .unwrap()
        .join()
        .unwrap();
    let r = c.matching(|r| r.involves("prim.exit"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::LocksHeldAtExit);
    assert!(r[0].render().contains("WARNING: leaker/"));
    // SAFETY: the guard was forgotten on a thread that is gone; nothing else holds the lock.
    unsafe { M.force_unlock() };
}

#[test]
fn any_lock_api_raw_mutex_can_be_instrumented() {
    let c = ReportCollector::new();
    let a: GenericMutex<parking_lot::RawFairMutex, i32> = GenericMutex::new(1);
    let b: GenericMutex<parking_lot::RawFairMutex, i32> = GenericMutex::new(2);
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    {
        let _b = b.lock();
        let _a = a.lock();
    }
    assert_eq!(
        reports_about(&c, &a.class_name()),
        vec![ReportKind::Circular]
    );
}

#[test]
fn a_raw_lock_api_mutex_made_with_const_init_is_its_own_class() {
    type Plain<T> = lock_api::Mutex<lockdep::sync::Lockdep<parking_lot::RawMutex>, T>;
    let (a, b) = (Plain::new(0), Plain::new(0));
    let c = ReportCollector::new();
    {
        let _a = a.lock();
        let _b = b.lock(); // two instances, two classes: no recursion report
    }
    assert!(c
        .matching(|r| r.kind == ReportKind::Recursive && r.involves(&format!("{:#x}", a.raw_ptr())))
        .is_empty());
}

trait RawPtr {
    fn raw_ptr(&self) -> usize;
}
impl<T> RawPtr for lock_api::Mutex<lockdep::sync::Lockdep<parking_lot::RawMutex>, T> {
    fn raw_ptr(&self) -> usize {
        // SAFETY: only the map's address is read.
        unsafe { self.raw() }.lock_map().instance()
    }
}

#[test]
fn class_identity_is_stable_across_engines() {
    // What a second process of the same build computes: same key name and site, same stable id.
    static K: LockClassKey = LockClassKey::new("prim.stable");
    let m = lockdep::LockMap::named(&K);
    let ids: Vec<u64> = (0..2)
        .map(|_| {
            let e = lockdep::Engine::new();
            let mut t = lockdep::Task::new("t", 1);
            let c = e.class_of(&mut t, &m, 0);
            e.class_info(c).unwrap().stable_id
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    let other = lockdep::LockMap::new();
    let e = lockdep::Engine::new();
    let mut t = lockdep::Task::new("t", 1);
    let (c1, c2) = (e.class_of(&mut t, &m, 0), e.class_of(&mut t, &other, 0));
    let c3 = e.class_of(&mut t, &m, 1);
    let s = |c| e.class_info(c).unwrap().stable_id;
    assert_ne!(s(c1), s(c2));
    assert_ne!(s(c1), s(c3));
}

#[test]
fn dropping_a_held_lock_map_is_reported_and_forgotten() {
    static K: LockClassKey = LockClassKey::new("prim.freed");
    let c = ReportCollector::new();
    let m = Box::new(lockdep::LockMap::named(&K));
    m.acquire(lockdep::Acquire::exclusive());
    let before = lockdep::rt::depth();
    drop(m);
    assert_eq!(lockdep::rt::depth(), before - 1);
    let r = c.matching(|r| r.involves("prim.freed"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::HeldLockFreed);
    assert!(r[0].render().contains("with a lock still held there!"));
}

#[test]
fn pins_and_assertions_through_the_lock_map() {
    static K: LockClassKey = LockClassKey::new("prim.pin");
    let c = ReportCollector::new();
    let m = lockdep::LockMap::named(&K);
    assert!(m.pin().is_none(), "pinning an unheld lock");
    m.acquire(lockdep::Acquire::exclusive());
    m.assert_held();
    let cookie = m.pin().expect("held");
    m.unpin(cookie);
    let cookie = m.pin().expect("held");
    m.release(); // released while pinned
    let _ = cookie;
    m.assert_not_held();
    lockdep::rt::assert_none_held();
    let kinds: Vec<String> = c
        .matching(|r| r.involves("prim.pin"))
        .iter()
        .map(|r| r.message.clone().unwrap_or_default())
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds[0].contains("pinning an unheld lock"));
    assert!(kinds[1].contains("releasing a pinned lock"));
}

/// Locks made in a loop at one site are one class; the new locks take the seen path (their
/// class comes from the thread's memo), and an inverted order among them is still found.
#[test]
fn new_locks_of_a_known_class_are_still_validated() {
    static OUTER: LockClassKey = LockClassKey::new("prim.churn.outer");
    static INNER: LockClassKey = LockClassKey::new("prim.churn.inner");
    let c = ReportCollector::new();
    for _ in 0..100 {
        let (a, b) = (Mutex::with_key(0, &OUTER), Mutex::with_key(0, &INNER));
        let _a = a.lock();
        let _b = b.lock();
    }
    assert!(reports_about(&c, "prim.churn.outer").is_empty());
    let (a, b) = (Mutex::with_key(0, &OUTER), Mutex::with_key(0, &INNER));
    {
        let _b = b.lock();
        let _a = a.lock();
    }
    assert_eq!(
        reports_about(&c, "prim.churn.outer"),
        vec![ReportKind::Circular]
    );
}

/// More locks held than the held stack had room for: the fast path never allocates, so the
/// push that needs room goes the slow way, and validation is unchanged.
#[test]
fn deep_nesting_past_the_stack_capacity_is_validated() {
    static KEYS: [LockClassKey; 20] = {
        const K: LockClassKey = LockClassKey::new("prim.deep");
        [K; 20]
    };
    let c = ReportCollector::new();
    let locks: Vec<Mutex<u32>> = KEYS.iter().map(|k| Mutex::with_key(0, k)).collect();
    for _ in 0..3 {
        let guards: Vec<_> = locks.iter().map(|m| m.lock()).collect();
        assert_eq!(lockdep::rt::depth(), 20);
        drop(guards);
    }
    assert_eq!(lockdep::rt::depth(), 0);
    assert!(reports_about(&c, "prim.deep").is_empty());
    {
        let _last = locks[19].lock();
        let _first = locks[0].lock();
    }
    assert_eq!(reports_about(&c, "prim.deep"), vec![ReportKind::Circular]);
}

/// A thread-local whose destructor locks instrumented mutexes, on a thread that used the
/// validator: whichever of it and the validator's own thread-local goes first, nothing breaks
/// (the fast path never reaches a destroyed task).
#[test]
fn locks_taken_during_thread_teardown_are_harmless() {
    struct LocksOnDrop(Arc<Mutex<u32>>, Arc<Mutex<u32>>);
    impl Drop for LocksOnDrop {
        fn drop(&mut self) {
            let _a = self.0.lock();
            let _b = self.1.lock();
        }
    }
    thread_local! {
        static EARLY: std::cell::RefCell<Option<LocksOnDrop>> = const { std::cell::RefCell::new(None) };
        static LATE: std::cell::RefCell<Option<LocksOnDrop>> = const { std::cell::RefCell::new(None) };
    }
    let (a, b) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
    let (a2, b2) = (a.clone(), b.clone());
    std::thread::spawn(move || {
        EARLY.with(|e| *e.borrow_mut() = Some(LocksOnDrop(a2.clone(), b2.clone())));
        for _ in 0..3 {
            let _a = a2.lock();
            let _b = b2.lock();
        }
        LATE.with(|l| *l.borrow_mut() = Some(LocksOnDrop(a2, b2)));
    })
    .join()
    .unwrap();
    // Both destructors ran and released their locks.
    assert!(a.try_lock().is_some() && b.try_lock().is_some());
}

/// The thread's task handed to another engine (through `with_current_task`) comes back to the
/// process-wide one without that engine's cached chains: the order is validated again.
#[test]
fn a_thread_task_lent_to_another_engine_is_validated_afresh() {
    static KA: LockClassKey = LockClassKey::new("prim.lent.a");
    static KB: LockClassKey = LockClassKey::new("prim.lent.b");
    let c = ReportCollector::new();
    std::thread::spawn(move || {
        let (a, b) = (Mutex::with_key(0, &KA), Mutex::with_key(0, &KB));
        for _ in 0..3 {
            let _a = a.lock();
            let _b = b.lock();
        }
        let other = lockdep::Engine::new();
        let (x, y) = (lockdep::LockMap::named(&KB), lockdep::LockMap::named(&KA));
        assert!(lockdep::rt::with_current_task(|_, t| {
            let how = lockdep::Acquire::exclusive();
            let site = lockdep::Site::Unknown;
            other.acquire(t, &x, how, site);
            other.acquire(t, &y, how, site);
            other.release(t, &y, site);
            other.release(t, &x, site)
        }));
        let _b = b.lock();
        let _a = a.lock();
    })
    .join()
    .unwrap();
    assert_eq!(reports_about(&c, "prim.lent.a"), vec![ReportKind::Circular]);
}
