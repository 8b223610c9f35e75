//! `lockdep::std::sync`: std's API and behaviour (poisoning included), and what the validator
//! sees of it.

#![cfg(not(feature = "disabled"))]

use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use lockdep::std::sync::{
    Arc, Barrier, Condvar, LazyLock, MappedMutexGuard, Mutex, MutexGuard, Once, OnceLock,
    PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};
use lockdep::{LockClassKey, ReportCollector, ReportKind};

fn kinds_about(c: &ReportCollector, name: &str) -> Vec<ReportKind> {
    c.matching(|r| r.involves(name))
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

fn poisoned<T: Send + 'static>(value: T) -> Arc<Mutex<T>> {
    let m = Arc::new(Mutex::new(value));
    let m2 = Arc::clone(&m);
    let _ = thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("poison it");
    })
    .join();
    m
}

#[test]
fn a_panic_while_held_poisons_the_mutex_as_std_does() {
    let m = poisoned(5);
    assert!(m.is_poisoned());
    let err = m.lock().unwrap_err();
    assert_eq!(**err.get_ref(), 5);
    drop(err);
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    m.clear_poison();
    assert!(!m.is_poisoned());
    assert_eq!(*m.lock().unwrap(), 5);
    // A lock taken while already unwinding is not poisoned by that unwinding.
    let m2 = Arc::new(Mutex::new(1));
    let m3 = Arc::clone(&m2);
    let _ = thread::spawn(move || {
        struct Unwinder(Arc<Mutex<i32>>);
        impl Drop for Unwinder {
            fn drop(&mut self) {
                *self.0.lock().unwrap() += 1;
            }
        }
        let _u = Unwinder(m3);
        panic!();
    })
    .join();
    assert!(!m2.is_poisoned());
    assert_eq!(*m2.lock().unwrap(), 2);
}

#[test]
fn into_inner_get_mut_and_try_lock_have_stds_results() {
    let mut m = Mutex::new(vec![1]);
    m.get_mut().unwrap().push(2);
    {
        let _g = m.lock().unwrap();
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    }
    assert_eq!(m.into_inner().unwrap(), vec![1, 2]);
    let p = Arc::try_unwrap(poisoned(String::from("x"))).unwrap();
    assert_eq!(
        p.into_inner().map_err(PoisonError::into_inner),
        Err("x".into())
    );
    let unsized_: &Mutex<[i32]> = &Mutex::new([1, 2, 3]);
    unsized_.lock().unwrap()[0] = 4;
    assert_eq!(&*unsized_.lock().unwrap(), &[4, 2, 3][..]);
    assert_eq!(
        format!("{:?}", Mutex::new(3)),
        "Mutex { data: 3, poisoned: false, .. }"
    );
    static STATIC: Mutex<u8> = Mutex::new(0);
    *STATIC.lock().unwrap() += 1;
    let d: Mutex<u8> = Mutex::default();
    assert_eq!(*d.lock().unwrap(), 0);
}

#[test]
fn mapped_guards_poison_and_unlock() {
    let m = Mutex::new([0; 4]);
    {
        let g = MutexGuard::map(m.lock().unwrap(), |a| &mut a[..2]);
        let mut g = MappedMutexGuard::map(g, |s| &mut s[1..]);
        g[0] = 42;
    }
    assert_eq!(*m.lock().unwrap(), [0, 42, 0, 0]);
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        let _g = MutexGuard::map(m.lock().unwrap(), |_| -> &mut [i32] { panic!() });
    }));
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    assert_eq!(lockdep::rt::depth(), 0);
}

#[test]
fn rwlock_poisons_on_a_panicking_writer_only() {
    let l = Arc::new(RwLock::new(1));
    let l2 = Arc::clone(&l);
    let _ = thread::spawn(move || {
        let _r = l2.read().unwrap();
        panic!();
    })
    .join();
    assert!(!l.is_poisoned());
    let l2 = Arc::clone(&l);
    let _ = thread::spawn(move || {
        let _w = l2.write().unwrap();
        panic!();
    })
    .join();
    assert!(l.is_poisoned());
    assert!(l.read().is_err());
    assert!(matches!(l.try_write(), Err(TryLockError::Poisoned(_))));
    l.clear_poison();
    {
        let w = l.write().unwrap();
        assert!(matches!(l.try_read(), Err(TryLockError::WouldBlock)));
        let r = RwLockWriteGuard::downgrade(w);
        assert_eq!(*r, 1);
        let r2 = RwLockReadGuard::map(r, |v| v);
        assert_eq!(*r2, 1);
    }
    assert_eq!(lockdep::rt::depth(), 0);
    *l.write().unwrap() = 7;
    assert_eq!(Arc::try_unwrap(l).unwrap().into_inner().unwrap(), 7);
}

#[test]
fn two_reads_of_a_std_rwlock_on_one_thread_are_reported() {
    static K: LockClassKey = LockClassKey::new("std.rw.twice");
    let c = ReportCollector::new();
    let l = RwLock::with_key(0, &K);
    {
        let _a = l.read().unwrap();
        let _b = l.try_read().unwrap(); // a trylock cannot block: fine
    }
    assert!(kinds_about(&c, "std.rw.twice").is_empty());
    {
        let _a = l.read().unwrap();
        let _b = l.read().unwrap();
    }
    assert_eq!(kinds_about(&c, "std.rw.twice"), vec![ReportKind::Recursive]);
}

#[test]
fn an_abba_order_of_std_mutexes_is_reported() {
    let c = ReportCollector::new();
    let (a, b) = (Mutex::new(0), Mutex::new(0));
    {
        let _a = a.lock().unwrap();
        let _b = b.lock().unwrap();
    }
    {
        let _b = b.lock().unwrap();
        let _a = a.lock().unwrap();
    }
    assert_eq!(kinds_about(&c, &a.class_name()), vec![ReportKind::Circular]);
}

#[test]
fn condvar_waits_with_stds_signatures() {
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let p2 = Arc::clone(&pair);
    let t = thread::spawn(move || {
        for _ in 0..3 {
            *p2.0.lock().unwrap() += 1;
            p2.1.notify_all();
        }
    });
    let g = pair
        .1
        .wait_while(pair.0.lock().unwrap(), |n| *n < 3)
        .unwrap();
    assert_eq!(*g, 3);
    drop(g);
    t.join().unwrap();
    let (g, r) = pair
        .1
        .wait_timeout(pair.0.lock().unwrap(), Duration::from_millis(5))
        .unwrap();
    assert!(r.timed_out());
    let (g, r) = pair
        .1
        .wait_timeout_while(g, Duration::from_millis(5), |n| *n == 3)
        .unwrap();
    assert!(r.timed_out() && *g == 3);
    let (g, r) = pair
        .1
        .wait_timeout_while(g, Duration::from_secs(5), |n| *n != 3)
        .unwrap();
    assert!(!r.timed_out());
    #[allow(deprecated)]
    let (g, woke) = pair.1.wait_timeout_ms(g, 1).unwrap();
    assert!(!woke);
    drop(g);
    assert_eq!(lockdep::rt::depth(), 0);
}

#[test]
fn a_condvar_wait_returns_poison_when_the_mutex_was_poisoned_meanwhile() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = Arc::clone(&pair);
    let g = pair.0.lock().unwrap();
    let t = thread::spawn(move || {
        let mut g = p2.0.lock().unwrap();
        *g = true;
        p2.1.notify_one();
        panic!("poison while notifying");
    });
    let r = pair.1.wait_while(g, |ready| !*ready);
    assert!(r.is_err());
    drop(r);
    let _ = t.join();
}

#[test]
fn one_condvar_with_two_mutexes_panics() {
    let shared = Arc::new((Mutex::new(()), Mutex::new(()), Condvar::new()));
    let s2 = Arc::clone(&shared);
    let waiter = thread::spawn(move || {
        let g = s2.0.lock().unwrap();
        let _ = s2.2.wait_timeout(g, Duration::from_secs(10)).unwrap();
    });
    // Let the first waiter park.
    thread::sleep(Duration::from_millis(100));
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        let g = shared.1.lock().unwrap();
        let _ = shared.2.wait_timeout(g, Duration::from_secs(10));
    }));
    let msg = r.unwrap_err();
    assert!(msg
        .downcast_ref::<&str>()
        .is_some_and(|m| m.contains("more than one mutex")));
    // The panicking wait held its mutex throughout and gave it back when unwinding (poisoned,
    // since the panic happened while it was held).
    assert_eq!(lockdep::rt::depth(), 0);
    assert!(matches!(
        shared.1.try_lock(),
        Err(TryLockError::Poisoned(_))
    ));
    shared.2.notify_all();
    waiter.join().unwrap();
}

#[test]
fn a_cycle_through_a_lazy_lock_initialiser_is_reported() {
    static L: Mutex<u32> = Mutex::with_key(1, &L_KEY);
    static L_KEY: LockClassKey = LockClassKey::new("std.lazy.L");
    static CELL: LazyLock<u32> = LazyLock::new(|| *L.lock().unwrap() + 1);
    let c = ReportCollector::new();
    assert_eq!(*CELL, 2); // the initialiser takes L: CELL -> L
    assert!(kinds_about(&c, "std.lazy.L").is_empty());
    {
        let _l = L.lock().unwrap();
        assert_eq!(*CELL, 2); // L held while forcing CELL: L -> CELL closes the cycle
    }
    assert_eq!(kinds_about(&c, "std.lazy.L"), vec![ReportKind::Circular]);
}

#[test]
fn once_and_once_lock_initialisers_are_locks_too() {
    static K: LockClassKey = LockClassKey::new("std.once.K");
    let c = ReportCollector::new();
    let k = Mutex::with_key((), &K);
    let once = Once::new();
    once.call_once(|| drop(k.lock().unwrap()));
    assert!(once.is_completed());
    {
        let _k = k.lock().unwrap();
        once.call_once(|| unreachable!());
    }
    assert_eq!(kinds_about(&c, "std.once.K"), vec![ReportKind::Circular]);

    static K2: LockClassKey = LockClassKey::new("std.oncelock.K2");
    let k2 = Mutex::with_key((), &K2);
    let cell = OnceLock::new();
    {
        let _k = k2.lock().unwrap();
        assert_eq!(*cell.get_or_init(|| 3), 3); // K2 -> cell
    }
    assert_eq!(
        *cell.get_or_init(|| {
            let _k = k2.lock().unwrap();
            4
        }),
        3
    );
    // Initialised: no initialiser ran, and no new order was made.
    assert!(kinds_about(&c, "std.oncelock.K2").is_empty());
    let cell2: OnceLock<u8> = OnceLock::new();
    cell2.get_or_init(|| {
        let _k = k2.lock().unwrap(); // cell2 -> K2
        1
    });
    {
        let _k = k2.lock().unwrap();
        cell2.get_or_init(|| 9); // K2 -> cell2: cycle
    }
    assert_eq!(
        kinds_about(&c, "std.oncelock.K2"),
        vec![ReportKind::Circular]
    );
}

#[test]
fn once_cells_behave_as_stds() {
    let once = Once::new();
    let r = panic::catch_unwind(AssertUnwindSafe(|| once.call_once(|| panic!("first"))));
    assert!(r.is_err());
    let mut forced = false;
    once.call_once_force(|state| {
        assert!(state.is_poisoned());
        forced = true;
    });
    assert!(forced && once.is_completed());
    #[cfg(lockdep_std_wait)]
    once.wait();

    let mut cell = OnceLock::new();
    assert_eq!(cell.set(1), Ok(()));
    assert_eq!(cell.set(2), Err(2));
    assert_eq!(cell.get(), Some(&1));
    *cell.get_mut().unwrap() += 1;
    #[cfg(lockdep_std_wait)]
    assert_eq!(cell.wait(), &2);
    assert_eq!(cell.clone(), cell);
    assert_eq!(format!("{cell:?}"), "OnceLock(2)");
    assert_eq!(cell.take(), Some(2));
    assert_eq!(OnceLock::from(5).into_inner(), Some(5));

    let lazy: LazyLock<Vec<u8>> = LazyLock::new(|| vec![1]);
    assert_eq!(format!("{lazy:?}"), "LazyLock(<uninit>)");
    assert_eq!(LazyLock::force(&lazy), &vec![1]);
    let mut lazy = lazy;
    lazy.push(2);
    assert_eq!(*lazy, vec![1, 2]);
    let bad: LazyLock<u8> = LazyLock::new(|| panic!("init fails"));
    assert!(panic::catch_unwind(AssertUnwindSafe(|| *bad)).is_err());
    let again = panic::catch_unwind(AssertUnwindSafe(|| *bad)).unwrap_err();
    assert!(again
        .downcast_ref::<&str>()
        .is_some_and(|m| m.contains("poisoned")));
    assert_eq!(lockdep::rt::depth(), 0);
}

#[test]
fn a_barrier_releases_its_threads_with_one_leader() {
    let b = Arc::new(Barrier::new(3));
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let b = Arc::clone(&b);
            thread::spawn(move || b.wait().is_leader())
        })
        .collect();
    let mut leaders = usize::from(b.wait().is_leader());
    for t in ts {
        leaders += usize::from(t.join().unwrap());
    }
    assert_eq!(leaders, 1);
}
