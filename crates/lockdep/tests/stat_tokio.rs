//! Lock statistics (`lockdep::stat`) of tokio's locks (`lockdep::tokio`): an async wait that
//! has to yield is a contention, timed; every acquisition is counted, with its hold time (but
//! for a guard dropped on another worker thread than the one that took it).
//!
//! Each scenario runs on a current-thread and on a multi-thread runtime, with fresh classes
//! each time. Statistics are switched on and never off here, and every test counts on classes
//! of its own, so the tests may run at once.

#![cfg(not(feature = "disabled"))]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockdep::future::tracked;
use lockdep::stat::{self, ClassStats};
use lockdep::tokio::{Mutex, RwLock};
use lockdep::LockClassKey;
use tokio::runtime::{Builder, Runtime};

const ROUNDS: u64 = 500;

fn runtimes() -> [(&'static str, Runtime); 2] {
    [
        (
            "current-thread",
            Builder::new_current_thread().enable_all().build().unwrap(),
        ),
        (
            "multi-thread",
            Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ]
}

fn key(name: String) -> &'static LockClassKey {
    LockClassKey::new_dynamic(&name)
}

fn class_of(name: &str) -> ClassStats {
    stat::snapshot()
        .class(name)
        .cloned()
        .unwrap_or_else(|| panic!("no statistics for {name}"))
}

/// A guard of any kind.
type Guard<'a> = Box<dyn Send + 'a>;
/// Takes the lock: the guard, and the line of the lock call.
type Take<L> = for<'a> fn(&'a L) -> Pin<Box<dyn Future<Output = (Guard<'a>, u32)> + Send + 'a>>;

/// Two tracked tasks on `contended`, `ROUNDS` acquisitions each: this one with `mine` and a
/// spawned one with `theirs`, whose first acquisition is sure to wait (this task holds the lock
/// across a sleep after the other has started, so the other's lock call yields); each task
/// yields between its acquisitions, so on the multi-thread runtime guards are taken and dropped
/// on several workers. Then this task alone on `quiet`, `ROUNDS` acquisitions with `theirs`.
/// The line of the other task's lock call.
async fn contend<L: Send + Sync + 'static>(
    contended: Arc<L>,
    quiet: &L,
    mine: Take<L>,
    theirs: Take<L>,
) -> u32 {
    let started = Arc::new(AtomicBool::new(false));
    let (first, _) = mine(&contended).await;
    let other = {
        let (l, started) = (contended.clone(), started.clone());
        lockdep::tokio::spawn(async move {
            started.store(true, Ordering::Release);
            let mut line = 0;
            for _ in 0..ROUNDS {
                let (g, at) = theirs(&l).await;
                line = at;
                drop(g);
                tokio::task::yield_now().await;
            }
            line
        })
    };
    while !started.load(Ordering::Acquire) {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(first);
    for _ in 1..ROUNDS {
        drop(mine(&contended).await);
        tokio::task::yield_now().await;
    }
    let line = other.await.unwrap();
    for _ in 0..ROUNDS {
        drop(theirs(quiet).await);
    }
    line
}

/// The checks every lock passes: contended only on the contended lock, the sure wait timed, the
/// other task's contention point at its own lock call.
fn check(c: &ClassStats, q: &ClassStats, line: u32) {
    assert!(c.contentions() > 0, "{c:?}");
    assert_eq!(q.contentions(), 0, "{q:?}");
    assert!(
        c.write.wait.max_ns + c.read.wait.max_ns >= 10_000_000,
        "{c:?}"
    );
    let here = format!("{}:{}:", file!(), line);
    assert!(
        c.contention_points
            .iter()
            .any(|p| p.site.starts_with(&here)),
        "{here} not in {:?}",
        c.contention_points
    );
    assert!(c.contending_points.iter().all(|p| p.site.contains(file!())));
}

fn lock(m: &Mutex<u64>) -> Pin<Box<dyn Future<Output = (Guard<'_>, u32)> + Send + '_>> {
    Box::pin(async move {
        let line = line!() + 1;
        let mut g = m.lock().await;
        *g += 1;
        (Box::new(g) as Guard<'_>, line)
    })
}

fn write(l: &RwLock<u64>) -> Pin<Box<dyn Future<Output = (Guard<'_>, u32)> + Send + '_>> {
    Box::pin(async move {
        let line = line!() + 1;
        let mut g = l.write().await;
        *g += 1;
        (Box::new(g) as Guard<'_>, line)
    })
}

fn read(l: &RwLock<u64>) -> Pin<Box<dyn Future<Output = (Guard<'_>, u32)> + Send + '_>> {
    Box::pin(async move {
        let line = line!() + 1;
        let g = l.read().await;
        std::hint::black_box(*g);
        (Box::new(g) as Guard<'_>, line)
    })
}

#[test]
fn the_tokio_mutex_counts_async_waits_as_contentions() {
    stat::enable();
    for (rt_name, rt) in runtimes() {
        let (cn, qn) = (
            format!("stat_tokio_mutex_c_{rt_name}"),
            format!("stat_tokio_mutex_q_{rt_name}"),
        );
        let c = Arc::new(Mutex::with_key(0, key(cn.clone())));
        let q = Mutex::with_key(0, key(qn.clone()));
        let line = rt.block_on(tracked(contend(c.clone(), &q, lock, lock)));
        let (cs, qs) = (class_of(&cn), class_of(&qn));
        check(&cs, &qs, line);
        assert_eq!(cs.write.acquisitions, 2 * ROUNDS, "{rt_name}: {cs:?}");
        // Every hold is timed but, on the multi-thread runtime, perhaps the one held across
        // the sleep: its task may wake on another worker, and a guard dropped on another
        // thread than the one that took it counts its acquisition without a hold time.
        if rt_name == "current-thread" || cs.write.hold.nr == 2 * ROUNDS {
            assert_eq!(cs.write.hold.nr, 2 * ROUNDS);
            assert!(
                cs.write.hold.max_ns >= 20_000_000,
                "the sleeping hold: {cs:?}"
            );
        } else {
            assert_eq!(cs.write.hold.nr, 2 * ROUNDS - 1, "{cs:?}");
        }
        assert_eq!(qs.write.acquisitions, ROUNDS, "{rt_name}: {qs:?}");
        assert_eq!(cs.read.acquisitions + qs.read.acquisitions, 0);
    }
}

#[test]
fn the_tokio_rwlock_counts_waiting_writes_and_reads() {
    stat::enable();
    for (rt_name, rt) in runtimes() {
        // Writers against a writer.
        let (cn, qn) = (
            format!("stat_tokio_rw_w_c_{rt_name}"),
            format!("stat_tokio_rw_w_q_{rt_name}"),
        );
        let c = Arc::new(RwLock::with_key(0, key(cn.clone())));
        let q = RwLock::with_key(0, key(qn.clone()));
        let line = rt.block_on(tracked(contend(c.clone(), &q, write, write)));
        let (cs, qs) = (class_of(&cn), class_of(&qn));
        check(&cs, &qs, line);
        assert!(cs.write.wait.nr > 0);
        assert_eq!(cs.write.acquisitions, 2 * ROUNDS, "{rt_name}: {cs:?}");
        assert_eq!(qs.write.acquisitions, ROUNDS, "{rt_name}: {qs:?}");
        assert_eq!(cs.read.acquisitions + qs.read.acquisitions, 0);

        // Readers against a writer.
        let (cn, qn) = (
            format!("stat_tokio_rw_r_c_{rt_name}"),
            format!("stat_tokio_rw_r_q_{rt_name}"),
        );
        let c = Arc::new(RwLock::with_key(0, key(cn.clone())));
        let q = RwLock::with_key(0, key(qn.clone()));
        let line = rt.block_on(tracked(contend(c.clone(), &q, write, read)));
        let (cs, qs) = (class_of(&cn), class_of(&qn));
        check(&cs, &qs, line);
        assert!(
            cs.read.wait.nr > 0,
            "the reads waited for the writer: {cs:?}"
        );
        assert_eq!(
            (cs.write.acquisitions, cs.read.acquisitions),
            (ROUNDS, ROUNDS),
            "{rt_name}: {cs:?}"
        );
        assert_eq!(
            (qs.write.acquisitions, qs.read.acquisitions),
            (0, ROUNDS),
            "{rt_name}: {qs:?}"
        );
        assert_eq!(cs.read.hold.nr, ROUNDS);
    }
}

#[test]
fn untracked_and_blocking_acquisitions_are_counted_too() {
    stat::enable();
    let name = "stat_tokio_untracked".to_string();
    let m = Arc::new(Mutex::with_key(0u64, key(name.clone())));
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    // Outside any tracked task: nothing is held, but the statistics still count.
    rt.block_on(async {
        for _ in 0..3 {
            *m.lock().await += 1;
        }
    });
    // A blocking lock that has to wait for a guard another thread holds.
    let g = m.try_lock().unwrap();
    let (m2, started) = (m.clone(), Arc::new(AtomicBool::new(false)));
    let t = {
        let started = started.clone();
        std::thread::spawn(move || {
            started.store(true, Ordering::Release);
            *m2.blocking_lock() += 1;
        })
    };
    // However late the thread starts, it waits about this long.
    while !started.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(30));
    drop(g);
    t.join().unwrap();
    let c = class_of(&name);
    assert_eq!(c.write.acquisitions, 5, "{c:?}");
    assert_eq!(c.write.wait.nr, 1, "{c:?}");
    assert!(c.write.wait.max_ns >= 10_000_000, "{c:?}");
}

#[test]
fn a_lock_validated_before_its_wait_is_counted_once() {
    stat::enable();
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let name = "stat_tokio_validated".to_string();
    let m = Arc::new(Mutex::with_key(0u64, key(name.clone())));
    rt.block_on(tracked(async {
        let g = m.lock().await;
        let m2 = m.clone();
        let t = lockdep::tokio::spawn(async move { *m2.lock().await += 1 });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(g);
        t.await.unwrap();
    }));
    let c = class_of(&name);
    // Two acquisitions; the validation before the wait is none.
    assert_eq!(c.write.acquisitions, 2, "{c:?}");
    assert_eq!(c.write.wait.nr, 1, "{c:?}");
}

#[test]
fn an_async_lock_of_ones_own_reports_its_wait_with_contended() {
    use lockdep::{Acquire, LockMap};
    stat::enable();
    static KEY: LockClassKey = LockClassKey::new("stat_tokio_my_async_lock");
    let map = LockMap::named(&KEY).async_lock();
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(tracked(async {
        // The lock is busy: validated, then the wait reported, then (later) obtained.
        map.validate(Acquire::exclusive());
        map.contended();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(map.acquire_async(Acquire::exclusive()));
        map.release();
        // And once without a wait.
        assert!(map.acquire_async(Acquire::exclusive()));
        map.release();
    }));
    let c = class_of("stat_tokio_my_async_lock");
    assert_eq!(c.write.acquisitions, 2, "{c:?}");
    assert_eq!(c.write.wait.nr, 1, "{c:?}");
    assert!(c.write.wait.max_ns >= 5_000_000, "{c:?}");
    assert!(
        c.contention_points.iter().all(|p| p.site.contains(file!())),
        "{c:?}"
    );
}
