//! `lockdep::ww` at run time: the API, the validator's view and its misuse reports, and the
//! kernel's kernel/locking/test-ww_mutex.c (mutex flag combinations, AA, ABBA, a cycle of N
//! contexts, stress in order, re-ordered and over 2046 locks, for both kinds), with real threads.
//!
//! The stress runs here are sized for a debug build in CI; `LOCKDEP_WW_STRESS=heavy` (the
//! `--release` step of `.ci/run`) makes them longer.

#![cfg(not(feature = "disabled"))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use lockdep::ww::{AcquireCtx, WwClass, WwError, WwKind, WwMutex};
use lockdep::{Acquire, LockMap, Report, ReportCollector, ReportKind, WaitType};

const KINDS: [WwKind; 2] = [WwKind::WoundWait, WwKind::WaitDie];

/// A fresh ww class (own lock classes, own stamps) per test and kind.
fn class(name: &str, kind: WwKind) -> &'static WwClass {
    let acquire: &'static str = Box::leak(format!("{name}_acquire").into_boxed_str());
    let mutex: &'static str = Box::leak(format!("{name}_mutex").into_boxed_str());
    Box::leak(Box::new(WwClass::new(kind, acquire, mutex)))
}

/// The reports about `class`'s mutexes or contexts.
fn about(reports: &ReportCollector, class: &WwClass) -> Vec<Report> {
    let (a, m) = (class.acquire_key().name(), class.mutex_key().name());
    reports.matching(|r| r.involves(a) || r.involves(m))
}

fn ww_messages(reports: &ReportCollector, class: &WwClass) -> Vec<String> {
    about(reports, class)
        .into_iter()
        .filter(|r| r.kind == ReportKind::WwMisuse)
        .filter_map(|r| r.message)
        .collect()
}

/// Runs `f` on a thread and fails the test if it does not finish within `secs`.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) => panic!("{what}: no progress after {secs}s (deadlock or livelock)"),
    }
}

/// A small xorshift generator: the tests need reproducible shuffles, not a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

fn heavy() -> bool {
    std::env::var("LOCKDEP_WW_STRESS").is_ok_and(|v| v == "heavy")
}

// ===== the API =====

#[test]
fn a_context_locks_its_class_in_any_order_and_nothing_is_reported() {
    let reports = ReportCollector::new();
    for kind in KINDS {
        let c = class(&format!("api_any_order_{kind:?}"), kind);
        let locks: Vec<WwMutex<u32>> = (0..5).map(|i| WwMutex::new(c, i)).collect();
        for order in [[0, 1, 2, 3, 4], [4, 2, 0, 3, 1]] {
            let ctx = AcquireCtx::new(c);
            let guards: Vec<_> = order
                .iter()
                .map(|&i| ctx.lock(&locks[i]).expect("uncontended"))
                .collect();
            assert_eq!(ctx.acquired(), 5);
            ctx.done();
            assert_eq!(guards.iter().map(|g| **g).sum::<u32>(), 10);
            drop(guards);
            assert_eq!(ctx.acquired(), 0);
            ctx.fini();
        }
        assert!(about(&reports, c).is_empty(), "{:?}", about(&reports, c));
    }
}

#[test]
fn already_held_try_lock_and_the_context_free_lock() {
    let reports = ReportCollector::new();
    let c = class("api_already", WwKind::WaitDie);
    let (a, b) = (WwMutex::new(c, 1), WwMutex::new(c, 2));
    let ctx = AcquireCtx::new(c);
    let ga = ctx.lock(&a).unwrap();
    assert_eq!(ctx.lock(&a).err(), Some(WwError::Already));
    assert!(a.try_lock().is_none());
    assert!(ctx.try_lock(&a).is_none());
    let gb = ctx.try_lock(&b).expect("free");
    assert_eq!(ctx.acquired(), 2);
    drop((ga, gb));
    ctx.fini();
    {
        let g = a.lock();
        assert!(a.is_locked());
        assert_eq!(*g, 1);
    }
    assert!(!a.is_locked());
    assert_eq!(*b.try_lock().unwrap(), 2);
    assert!(about(&reports, c).is_empty(), "{:?}", about(&reports, c));
}

#[test]
fn lock_all_returns_the_guards_in_order_once_each() {
    let c = class("api_lock_all", WwKind::WoundWait);
    let locks: Vec<WwMutex<usize>> = (0..4).map(|i| WwMutex::new(c, i)).collect();
    let ctx = AcquireCtx::new(c);
    let g = ctx.lock_all(&[&locks[2], &locks[0], &locks[2], &locks[3]]);
    assert_eq!(g.iter().map(|g| **g).collect::<Vec<_>>(), vec![2, 0, 3]);
}

#[test]
fn injected_back_offs_follow_the_stamp_schedule_and_lock_all_still_completes() {
    let reports = ReportCollector::new();
    let c = class("inject", WwKind::WoundWait);
    let locks: Vec<WwMutex<u32>> = (0..8).map(|_| WwMutex::new(c, 0)).collect();
    // The class's first context has stamp 1: countdown 1, so the third lock (the second one
    // that finds another held) is answered with a back-off.
    let ctx = AcquireCtx::new(c);
    assert_eq!(ctx.stamp(), 1);
    ctx.inject_backoff(true);
    let g0 = ctx.lock(&locks[0]).unwrap();
    let g1 = ctx.lock(&locks[1]).unwrap();
    assert_eq!(ctx.lock(&locks[2]).err(), Some(WwError::Deadlock));
    assert!(!locks[2].is_locked(), "an injected back-off unlocks");
    drop((g0, g1));
    let g2 = ctx.lock_slow(&locks[2]);
    drop(g2);
    // The whole protocol copes with any number of injected back-offs.
    let all: Vec<&WwMutex<u32>> = locks.iter().collect();
    for _ in 0..5 {
        let mut g = ctx.lock_all(&all);
        assert_eq!(g.len(), 8);
        g.iter_mut().for_each(|g| **g += 1);
    }
    drop(ctx);
    assert!(locks.iter().all(|l| *l.lock() == 5));
    assert!(about(&reports, c).is_empty(), "{:?}", about(&reports, c));
}

// ===== the validator's view and the kernel's misuse warnings =====

#[test]
fn locking_after_done_is_reported() {
    let reports = ReportCollector::new();
    let c = class("misuse_after_done", WwKind::WaitDie);
    let (a, b) = (WwMutex::new(c, ()), WwMutex::new(c, ()));
    let ctx = AcquireCtx::new(c);
    let _ga = ctx.lock(&a).unwrap();
    ctx.done();
    let _gb = ctx.lock(&b).unwrap();
    let m = ww_messages(&reports, c);
    assert!(
        m.iter()
            .any(|m| m.contains("DEBUG_LOCKS_WARN_ON(ww_ctx->done_acquire)")),
        "{m:?}"
    );
    drop(_gb);
    ctx.done();
    assert!(ww_messages(&reports, c)
        .iter()
        .any(|m| m.contains("ww_acquire_done() called twice")));
}

#[test]
fn a_mutex_of_another_class_is_reported() {
    let reports = ReportCollector::new();
    let (c1, c2) = (
        class("misuse_mix_a", WwKind::WaitDie),
        class("misuse_mix_b", WwKind::WaitDie),
    );
    let foreign = WwMutex::new(c2, ());
    let ctx = AcquireCtx::new(c1);
    drop(ctx.lock(&foreign).unwrap());
    assert!(ww_messages(&reports, c2)
        .iter()
        .any(|m| m.contains("ww_ctx->ww_class != ww->ww_class")));
}

#[test]
fn lock_slow_without_a_back_off_is_reported() {
    let reports = ReportCollector::new();
    let c = class("misuse_unneeded_slow", WwKind::WoundWait);
    let a = WwMutex::new(c, ());
    let ctx = AcquireCtx::new(c);
    drop(ctx.lock_slow(&a));
    assert!(ww_messages(&reports, c)
        .iter()
        .any(|m| m.contains("DEBUG_LOCKS_WARN_ON(!ctx->contending_lock)")));
}

#[test]
fn after_a_back_off_locking_another_mutex_or_keeping_locks_is_reported() {
    let reports = ReportCollector::new();
    let c = class("misuse_after_backoff", WwKind::WoundWait);
    let locks: Vec<WwMutex<()>> = (0..4).map(|_| WwMutex::new(c, ())).collect();
    let ctx = AcquireCtx::new(c);
    ctx.inject_backoff(true);
    let g0 = ctx.lock(&locks[0]).unwrap();
    let g1 = ctx.lock(&locks[1]).unwrap();
    assert_eq!(ctx.lock(&locks[2]).err(), Some(WwError::Deadlock));
    // Neither releasing g0 and g1 nor taking the contended lock.
    let g3 = ctx.lock(&locks[3]).unwrap();
    let m = ww_messages(&reports, c);
    assert!(
        m.iter()
            .any(|m| m.contains("ww_ctx->contending_lock != ww")),
        "{m:?}"
    );
    drop((g0, g1, g3));
}

#[test]
fn fini_with_a_leaked_guard_is_reported() {
    let reports = ReportCollector::new();
    let c = class("misuse_fini_early", WwKind::WaitDie);
    let a = WwMutex::new(c, ());
    let ctx = AcquireCtx::new(c);
    std::mem::forget(ctx.lock(&a).unwrap());
    ctx.fini();
    assert!(ww_messages(&reports, c)
        .iter()
        .any(|m| m.contains("DEBUG_LOCKS_WARN_ON(ctx->acquired)")));
}

#[test]
fn two_contexts_of_one_class_are_recursive_and_of_two_classes_can_be_circular() {
    let reports = ReportCollector::new();
    let c = class("two_contexts", WwKind::WoundWait);
    let first = AcquireCtx::new(c);
    let second = AcquireCtx::new(c);
    drop(second);
    drop(first);
    let recursive = about(&reports, c)
        .into_iter()
        .filter(|r| r.kind == ReportKind::Recursive)
        .count();
    assert_eq!(recursive, 1);

    let (x, y) = (
        class("ctx_abba_x", WwKind::WaitDie),
        class("ctx_abba_y", WwKind::WaitDie),
    );
    {
        let _cx = AcquireCtx::new(x);
        let _cy = AcquireCtx::new(y);
    }
    {
        let _cy = AcquireCtx::new(y);
        let _cx = AcquireCtx::new(x);
    }
    assert!(about(&reports, x)
        .iter()
        .any(|r| r.kind == ReportKind::Circular));
}

#[test]
fn a_ww_mutex_under_a_spinlock_is_an_invalid_wait_context() {
    let reports = ReportCollector::new();
    let c = class("under_spin", WwKind::WaitDie);
    let a = WwMutex::new(c, ());
    let spin = Box::new(LockMap::new().with_wait(WaitType::Spin, WaitType::Inv));
    let ctx = AcquireCtx::new(c);
    spin.acquire(Acquire::exclusive());
    drop(ctx.lock(&a).unwrap());
    spin.release();
    assert!(about(&reports, c)
        .iter()
        .any(|r| r.kind == ReportKind::InvalidWaitContext));
}

#[test]
fn two_ww_mutexes_without_a_context_are_recursive_locking() {
    let reports = ReportCollector::new();
    let c = class("block_block", WwKind::WaitDie);
    let (a, b) = (WwMutex::new(c, ()), WwMutex::new(c, ()));
    let _ga = a.lock();
    let _gb = b.lock();
    assert!(about(&reports, c)
        .iter()
        .any(|r| r.kind == ReportKind::Recursive));
}

#[test]
fn a_context_is_ordered_after_what_was_held_when_it_began() {
    let reports = ReportCollector::new();
    let c = class("ctx_order", WwKind::WoundWait);
    let mmap = lockdep::RwLock::new(());
    let obj = WwMutex::new(c, ());
    {
        let _mm = mmap.read();
        let ctx = AcquireCtx::new(c);
        drop(ctx.lock(&obj).unwrap());
    }
    {
        let _g = obj.lock();
        let _mm = mmap.write(); // mutex class -> mmap closes mmap -> ctx -> mutex
    }
    assert!(about(&reports, c)
        .iter()
        .any(|r| r.kind == ReportKind::Circular));
}

// ===== test-ww_mutex.c =====

/// test_mutex: one thread holds the mutex, the other locks it (blocking or trying, with or
/// without a context) and must see the holder's write only after the holder unlocked.
#[test]
fn mutex_flag_combinations() {
    for kind in KINDS {
        for (with_ctx, try_only) in [(false, false), (false, true), (true, false), (true, true)] {
            let c = class(&format!("flags_{kind:?}_{with_ctx}_{try_only}"), kind);
            let m = Arc::new(WwMutex::new(c, 0u32));
            let ready = Arc::new(Barrier::new(2));
            let (m2, r2) = (m.clone(), ready.clone());
            let holder = thread::spawn(move || {
                let ctx = AcquireCtx::new(c);
                let mut g = ctx.lock(&m2).unwrap();
                r2.wait();
                thread::sleep(Duration::from_millis(20));
                *g = 1;
            });
            ready.wait();
            let seen = if try_only {
                loop {
                    let g = if with_ctx {
                        let ctx = AcquireCtx::new(c);
                        let v = ctx.try_lock(&m).map(|g| *g);
                        v
                    } else {
                        m.try_lock().map(|g| *g)
                    };
                    if let Some(v) = g {
                        break v;
                    }
                    thread::yield_now();
                }
            } else if with_ctx {
                let ctx = AcquireCtx::new(c);
                let v = *ctx.lock(&m).expect("holds nothing: waits");
                v
            } else {
                *m.lock()
            };
            assert_eq!(seen, 1, "{kind:?} ctx={with_ctx} try={try_only}");
            holder.join().unwrap();
        }
    }
}

/// test_aa: a context locking a mutex it holds gets `Already`; trylocks fail.
#[test]
fn aa() {
    for kind in KINDS {
        let c = class(&format!("aa_{kind:?}"), kind);
        let m = WwMutex::new(c, ());
        let ctx = AcquireCtx::new(c);
        let _g = ctx.lock(&m).unwrap();
        assert!(m.try_lock().is_none());
        assert!(ctx.try_lock(&m).is_none());
        assert_eq!(ctx.lock(&m).err(), Some(WwError::Already));
    }
}

/// test_abba: two contexts lock A, B and B, A. Resolved, both finish; unresolved, one of them is
/// told to back off.
#[test]
fn abba() {
    for kind in KINDS {
        for resolve in [false, true] {
            let c = class(&format!("abba_{kind:?}_{resolve}"), kind);
            let locks = Arc::new([WwMutex::new(c, ()), WwMutex::new(c, ())]);
            let both = Arc::new(Barrier::new(2));
            let run = move |first: usize| {
                let locks = locks.clone();
                let both = both.clone();
                move || {
                    let ctx = AcquireCtx::new(c);
                    let g1 = ctx.lock(&locks[first]).unwrap();
                    both.wait();
                    let backed = match ctx.lock(&locks[1 - first]) {
                        Ok(g2) => {
                            // As the kernel's test: the second lock first, so that the
                            // context that backed off finds both free once it has the first.
                            drop(g2);
                            drop(g1);
                            false
                        }
                        Err(WwError::Deadlock) if resolve => {
                            drop(g1);
                            let g2 = ctx.lock_slow(&locks[1 - first]);
                            let g1 = ctx.lock(&locks[first]).expect("the other is done");
                            drop(g1);
                            drop(g2);
                            true
                        }
                        Err(WwError::Deadlock) => true,
                        Err(WwError::Already) => unreachable!(),
                    };
                    backed
                }
            };
            let (ab, ba) = (run(0), run(1));
            let backed = within(30, "abba", move || {
                let t = thread::spawn(ba);
                let a = ab();
                a as u32 + t.join().unwrap() as u32
            });
            assert!(backed >= 1, "{kind:?} resolve={resolve}: nobody backed off");
        }
    }
}

/// test_cycle: N contexts, each holding its own mutex and wanting its neighbour's.
#[test]
fn cycle_of_n_contexts() {
    for kind in KINDS {
        for n in [2usize, 3, 8] {
            let c = class(&format!("cycle_{kind:?}_{n}"), kind);
            let locks: Arc<Vec<WwMutex<usize>>> =
                Arc::new((0..n).map(|_| WwMutex::new(c, 0)).collect());
            let all = Arc::new(Barrier::new(n));
            let backoffs = within(30, "cycle", move || {
                let threads: Vec<_> = (0..n)
                    .map(|i| {
                        let (locks, all) = (locks.clone(), all.clone());
                        thread::spawn(move || {
                            let ctx = AcquireCtx::new(c);
                            let mut own = ctx.lock(&locks[i]).unwrap();
                            all.wait();
                            let next = &locks[(i + 1) % n];
                            let backed = match ctx.lock(next) {
                                Ok(mut g) => {
                                    *g += 1;
                                    *own += 1;
                                    0
                                }
                                Err(WwError::Deadlock) => {
                                    drop(own);
                                    // Holding nothing, the contended lock first; then the
                                    // rest, backing off again if need be.
                                    let mut g = ctx.lock_all(&[next, &locks[i]]);
                                    *g[0] += 1;
                                    *g[1] += 1;
                                    1
                                }
                                Err(WwError::Already) => unreachable!(),
                            };
                            backed
                        })
                    })
                    .collect();
                let backoffs: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
                let total: usize = locks.iter().map(|l| *l.lock()).sum();
                assert_eq!(total, 2 * n);
                backoffs
            });
            assert!(backoffs >= 1, "{kind:?} n={n}: a cycle needs a back-off");
        }
    }
}

/// One transaction of the stress runs: lock `order` (with back-off and retry), check that no
/// other transaction is inside any of its mutexes, unlock. Returns the number of back-offs.
fn transaction(ctx: &AcquireCtx, locks: &[WwMutex<AtomicBool>], order: &[usize]) -> usize {
    let mut backoffs = 0;
    let mut contended: Option<usize> = None;
    'retry: loop {
        let mut held = Vec::with_capacity(order.len());
        if let Some(i) = contended {
            held.push(ctx.lock_slow(&locks[i]));
        }
        for &i in order {
            if contended == Some(i) {
                continue;
            }
            match ctx.lock(&locks[i]) {
                Ok(g) => held.push(g),
                Err(WwError::Deadlock) => {
                    drop(held);
                    contended = Some(i);
                    backoffs += 1;
                    continue 'retry;
                }
                Err(WwError::Already) => {}
            }
        }
        for g in &held {
            assert!(
                !g.swap(true, Ordering::SeqCst),
                "two holders of one ww mutex"
            );
        }
        for g in &held {
            g.store(false, Ordering::SeqCst);
        }
        return backoffs;
    }
}

#[derive(Clone, Copy, Debug)]
enum Stress {
    /// Every thread locks every mutex, each in its own random order (stress_inorder_work).
    InOrder,
    /// Random subsets in random orders, a new order per transaction (stress_reorder_work).
    Reorder,
}

fn stress(kind: WwKind, nlocks: usize, threads: usize, rounds: usize, how: Stress) -> usize {
    let c = class(&format!("stress_{kind:?}_{nlocks}_{how:?}"), kind);
    let reports = ReportCollector::new();
    let locks: Arc<Vec<WwMutex<AtomicBool>>> = Arc::new(
        (0..nlocks)
            .map(|_| WwMutex::new(c, AtomicBool::new(false)))
            .collect(),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let what = format!("stress {kind:?} {nlocks} locks {threads} threads {how:?}");
    let d = done.clone();
    let backoffs = within(if heavy() { 600 } else { 120 }, &what, move || {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (locks, done) = (locks.clone(), d.clone());
                thread::spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 0x1234_5678));
                    let mut order: Vec<usize> = (0..nlocks).collect();
                    rng.shuffle(&mut order);
                    let mut backoffs = 0;
                    for _ in 0..rounds {
                        let ctx = AcquireCtx::new(c);
                        match how {
                            Stress::InOrder => backoffs += transaction(&ctx, &locks, &order),
                            Stress::Reorder => {
                                rng.shuffle(&mut order);
                                let n = 1 + rng.below(nlocks.min(16));
                                backoffs += transaction(&ctx, &locks, &order[..n]);
                            }
                        }
                        ctx.fini();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    backoffs
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .sum::<usize>()
    });
    assert_eq!(done.load(Ordering::Relaxed), threads * rounds);
    assert!(about(&reports, c).is_empty(), "{:?}", about(&reports, c));
    backoffs
}

#[test]
fn stress_in_order() {
    let rounds = if heavy() { 4000 } else { 25 };
    for kind in KINDS {
        stress(kind, 16, 8, rounds, Stress::InOrder);
    }
}

#[test]
fn stress_reorder_random_subsets_eight_threads() {
    let rounds = if heavy() { 40_000 } else { 200 };
    for kind in KINDS {
        let backoffs = stress(kind, 32, 8, rounds, Stress::Reorder);
        eprintln!("reorder {kind:?}: {backoffs} back-offs");
    }
}

#[test]
fn stress_over_2046_locks() {
    let (threads, rounds) = if heavy() { (8, 40) } else { (8, 1) };
    for kind in KINDS {
        stress(kind, 2046, threads, rounds, Stress::InOrder);
    }
}
