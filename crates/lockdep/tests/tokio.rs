//! Async code on real tokio runtimes: tracked tasks, tokio's locks, the await rule, joins.
//!
//! Every scenario runs on a current-thread and on a multi-thread runtime, with fresh classes
//! each time (dynamic keys), so that a report of the first run does not hide the second's.

// Clippy's lexical lint flags four guards here: one held across a suspension on purpose (the
// report under test), and three held across awaits that never suspend — its false positives,
// which the run-time rule does not report.
#![allow(clippy::await_holding_lock)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lockdep::future::tracked;
use lockdep::tokio::{Mutex, RwLock};
use lockdep::{LockClassKey, Report, ReportCollector, ReportKind};
use tokio::runtime::{Builder, Runtime};

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// Both runtimes, named.
fn runtimes() -> [(&'static str, Runtime); 2] {
    [
        ("current-thread", current_thread()),
        ("multi-thread", multi_thread()),
    ]
}

fn key(name: &str) -> &'static LockClassKey {
    LockClassKey::new_dynamic(name)
}

fn mutex<T>(name: &str, v: T) -> Arc<Mutex<T>> {
    Arc::new(Mutex::with_key(v, key(name)))
}

/// The reports that involve any of these classes.
fn about(c: &ReportCollector, names: &[String]) -> Vec<Report> {
    c.matching(|r| names.iter().any(|n| r.involves(n)))
}

fn kinds(reports: &[Report]) -> Vec<ReportKind> {
    reports.iter().map(|r| r.kind).collect()
}

/// Lets other tasks run (and, on the multi-thread runtime, the task move between workers).
async fn hop() {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn on<F: Future>(rt: &Runtime, f: F) -> F::Output {
    rt.block_on(tracked(f))
}

#[test]
fn two_tasks_taking_two_mutexes_in_opposite_orders_one_after_the_other_are_reported() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let (a, b) = (mutex("t1.a", ()), mutex("t1.b", ()));
        let names = [a.class_name(), b.class_name()];
        on(&rt, async {
            let (a1, b1) = (a.clone(), b.clone());
            lockdep::tokio::spawn(async move {
                let _a = a1.lock().await;
                let _b = b1.lock().await;
            })
            .await
            .unwrap();
            let (a2, b2) = (a.clone(), b.clone());
            lockdep::tokio::spawn(async move {
                let _b = b2.lock().await;
                let _a = a2.lock().await;
            })
            .await
            .unwrap();
        });
        assert_eq!(kinds(&about(&c, &names)), [ReportKind::Circular], "{name}");
    }
}

#[test]
fn guards_held_across_awaits_that_move_tasks_between_workers_report_the_inversion_only() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let (a, b) = (mutex("t2.a", 0), mutex("t2.b", 0));
        let names = [a.class_name(), b.class_name()];
        on(&rt, async {
            let (a1, b1) = (a.clone(), b.clone());
            let first = lockdep::tokio::spawn(async move {
                for _ in 0..20 {
                    let mut ga = a1.lock().await;
                    hop().await;
                    let mut gb = b1.lock().await;
                    hop().await;
                    *ga += 1;
                    *gb += 1;
                }
            });
            first.await.unwrap();
            let (a2, b2) = (a.clone(), b.clone());
            lockdep::tokio::spawn(async move {
                let gb = b2.lock().await;
                hop().await;
                let ga = a2.lock().await;
                hop().await;
                drop(gb);
                hop().await;
                drop(ga);
            })
            .await
            .unwrap();
        });
        let found = about(&c, &names);
        assert_eq!(kinds(&found), [ReportKind::Circular], "{name}: {found:#?}");
        assert!(c
            .matching(|r| r.kind == ReportKind::BadUnlock || r.kind == ReportKind::HeldAcrossAwait)
            .iter()
            .all(|r| !names.iter().any(|n| r.involves(n))));
    }
}

#[test]
fn a_lock_held_across_an_await_is_not_nested_under_by_another_task_on_the_thread() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let l1 = mutex("t3.l1", ());
        let l2 = Arc::new(lockdep::Mutex::with_key((), key("t3.l2")));
        let l3 = mutex("t3.l3", ());
        let names = [l1.class_name(), l2.class_name(), l3.class_name()];
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let l1a = l1.clone();
            // Task A holds l1 across an await, until B has run on the same thread.
            let a = lockdep::tokio::spawn_local(async move {
                let _g = l1a.lock().await;
                tx.send(()).unwrap();
                done_rx.await.unwrap();
            });
            let (l2b, l3b) = (l2.clone(), l3.clone());
            let b = lockdep::tokio::spawn_local(async move {
                rx.await.unwrap();
                // l1 is held by A on this very thread: a thread's stack would nest these.
                drop(l2b.lock());
                drop(l3b.lock().await);
                done_tx.send(()).unwrap();
            });
            a.await.unwrap();
            b.await.unwrap();
            // Now the orders that would close a cycle with a false l1 -> l2 or l1 -> l3.
            let (l1c, l2c, l3c) = (l1.clone(), l2.clone(), l3.clone());
            lockdep::tokio::spawn_local(async move {
                {
                    let _g2 = l2c.lock();
                    // Free: ready at once, so the blocking l2 is not held across a suspension.
                    let _g1 = l1c.lock().await;
                }
                let _g3 = l3c.lock().await;
                let _g1 = l1c.lock().await;
            })
            .await
            .unwrap();
        });
        let found = about(&c, &names);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn a_blocking_guard_held_across_an_await_is_reported_once_per_class_and_site() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let m = lockdep::Mutex::with_key(0, key("t4.blocking"));
        let names = [m.class_name()];
        on(&rt, async {
            for _ in 0..3 {
                let mut g = m.lock();
                tokio::task::yield_now().await; // suspends holding a blocking lock
                *g += 1;
            }
        });
        let found = about(&c, &names);
        assert_eq!(kinds(&found), [ReportKind::HeldAcrossAwait], "{name}");
        let text = found[0].render();
        assert!(
            text.contains("WARNING: lock held across an await point!"),
            "{text}"
        );
        assert!(
            text.contains("tests/tokio.rs"),
            "where it was taken: {text}"
        );
        assert!(
            found[0].task.name.starts_with("async@"),
            "{:?}",
            found[0].task
        );
    }
}

#[test]
fn a_blocking_guard_dropped_before_the_await_is_not_reported() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let m = lockdep::Mutex::with_key(0, key("t5.blocking"));
        let t = mutex("t5.async", 0);
        let names = [m.class_name(), t.class_name()];
        on(&rt, async {
            for _ in 0..3 {
                {
                    let mut g = m.lock();
                    *g += 1;
                }
                tokio::task::yield_now().await;
                // An async lock held across an await is fine.
                let mut g = t.lock().await;
                tokio::task::yield_now().await;
                *g += 1;
            }
            // A guard held across an await that did not suspend is not a suspension.
            let _g = m.lock();
            std::future::ready(()).await;
        });
        assert!(about(&c, &names).is_empty(), "{name}");
    }
}

#[test]
fn two_reads_of_one_tokio_rwlock_in_one_task_are_recursive_locking() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let l = Arc::new(RwLock::with_key(0, key("t6.rw")));
        let names = [l.class_name()];
        on(&rt, async {
            let r1 = l.read().await;
            let r2 = l.read().await; // a writer queued between them deadlocks the task
            assert_eq!(*r1 + *r2, 0);
        });
        assert_eq!(kinds(&about(&c, &names)), [ReportKind::Recursive], "{name}");
    }
}

#[test]
fn a_lock_future_dropped_by_a_timeout_leaves_nothing_held() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let m = mutex("t7.m", 0);
        let names = [m.class_name()];
        on(&rt, async {
            let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
            let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
            let m2 = m.clone();
            let holder = lockdep::tokio::spawn(async move {
                let _g = m2.lock().await;
                locked_tx.send(()).unwrap();
                release_rx.await.unwrap();
            });
            locked_rx.await.unwrap();
            let r = tokio::time::timeout(Duration::from_millis(5), m.lock()).await;
            assert!(r.is_err(), "the lock is held elsewhere");
            assert_eq!(lockdep::rt::depth(), 0, "nothing left held");
            let r = tokio::select! {
                g = m.lock() => Some(g),
                _ = tokio::time::sleep(Duration::from_millis(5)) => None,
            };
            assert!(r.is_none());
            assert_eq!(lockdep::rt::depth(), 0);
            release_tx.send(()).unwrap();
            holder.await.unwrap();
            *m.lock().await += 1;
            assert_eq!(lockdep::rt::depth(), 0);
        });
        assert!(about(&c, &names).is_empty(), "{name}");
    }
}

#[test]
fn awaiting_a_join_handle_while_holding_a_lock_the_task_took_is_reported() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let m = mutex("t8.m", 0);
        let names = [m.class_name()];
        on(&rt, async {
            let m2 = m.clone();
            let task = lockdep::tokio::spawn(async move { *m2.lock().await += 1 });
            // Let the task finish first: the join cannot hang on this run, and still it is
            // reported, because on another run it would.
            while !task.is_finished() {
                hop().await;
            }
            let g = m.lock().await;
            task.await.unwrap();
            drop(g);
        });
        let found = about(&c, &names);
        assert_eq!(kinds(&found), [ReportKind::Circular], "{name}");
        assert!(
            found[0].involves_prefix("spawned@"),
            "the cycle goes through the task's work class: {:#?}",
            found[0].chain_names()
        );
    }
}

trait InvolvesPrefix {
    fn involves_prefix(&self, prefix: &str) -> bool;
}

impl InvolvesPrefix for Report {
    fn involves_prefix(&self, prefix: &str) -> bool {
        self.lock
            .iter()
            .chain(&self.holding)
            .any(|l| l.class.name.starts_with(prefix))
            || self.chain_names().iter().any(|n| n.starts_with(prefix))
    }
}

#[test]
fn joining_a_task_while_holding_nothing_it_needs_is_fine_and_recursive_spawns_are_not_reported() {
    fn fan(depth: u32, m: Arc<Mutex<u32>>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            if depth == 0 {
                *m.lock().await += 1;
                return;
            }
            // Two spawn sites, each awaited from tasks of both: recursive spawning.
            let a = lockdep::tokio::spawn(fan(depth - 1, m.clone())); // FAN_SPAWN
            let b = lockdep::tokio::spawn(fan(depth - 1, m.clone())); // FAN_SPAWN
            a.await.unwrap();
            b.await.unwrap();
        })
    }
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let m = mutex("t9.m", 0);
        let names = [m.class_name()];
        on(&rt, fan(4, m.clone()));
        assert_eq!(*m.try_lock().unwrap(), 16);
        // This test's own spawn sites (other tests here report through theirs).
        let works: Vec<String> = include_str!("tokio.rs")
            .lines()
            .enumerate()
            .filter(|(_, l)| l.ends_with("// FAN_SPAWN"))
            .map(|(i, _)| format!("spawned@crates/lockdep/tests/tokio.rs:{}:", i + 1))
            .collect();
        assert_eq!(works.len(), 2);
        let found = c.matching(|r| {
            names.iter().any(|n| r.involves(n)) || works.iter().any(|w| r.involves_prefix(w))
        });
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn sixty_four_tasks_in_a_consistent_order_with_much_migration_report_nothing() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let (a, b) = (
            mutex("t10.a", 0u64),
            Arc::new(RwLock::with_key(0u64, key("t10.b"))),
        );
        let d = mutex("t10.d", 0u64);
        let names = [a.class_name(), b.class_name(), d.class_name()];
        on(&rt, async {
            let tasks: Vec<_> = (0..64)
                .map(|i| {
                    let (a, b, d) = (a.clone(), b.clone(), d.clone());
                    lockdep::tokio::spawn(async move {
                        for j in 0..10 {
                            let mut ga = a.lock().await;
                            hop().await;
                            if (i + j) % 2 == 0 {
                                let gb = b.read().await;
                                hop().await;
                                *ga += *gb;
                            } else {
                                *b.write().await += 1;
                            }
                            let mut gd = d.clone().lock_owned().await;
                            drop(ga); // out of order
                            tokio::task::yield_now().await;
                            *gd += 1;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(*d.try_lock().unwrap(), 640);
        let found = about(&c, &names);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn an_owned_guard_released_in_another_task_is_handed_off() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let (m, after) = (mutex("t11.m", 0), mutex("t11.after", 0));
        let names = [m.class_name(), after.class_name()];
        on(&rt, async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (m1, after1) = (m.clone(), after.clone());
            let holder = lockdep::tokio::spawn(async move {
                let g = m1.lock_owned().await;
                assert_eq!(lockdep::rt::depth(), 2, "the work map and m");
                tx.send(g).unwrap();
                hop().await;
                *after1.lock().await += 1;
                // The release made by the other task has been handed to this one.
                assert_eq!(lockdep::rt::depth(), 1);
            });
            let releaser = lockdep::tokio::spawn(async move {
                let mut g = rx.await.unwrap();
                *g += 1;
                drop(g); // released by a task that does not hold it
            });
            releaser.await.unwrap();
            holder.await.unwrap();
            // A guard that outlives its task is released later, by anyone.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let m2 = m.clone();
            lockdep::tokio::spawn(async move { tx.send(m2.lock_owned().await).unwrap() })
                .await
                .unwrap();
            drop(rx.await.unwrap());
        });
        let found = about(&c, &names);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn outside_a_tracked_task_async_locks_are_validated_and_never_held() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let t = mutex("t12.async", 0);
        let m = Arc::new(lockdep::Mutex::with_key(0, key("t12.blocking")));
        let names = [t.class_name(), m.class_name()];
        // Untracked: guards move between workers and tasks interleave on one thread.
        rt.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let t = t.clone();
                    tokio::spawn(async move {
                        for _ in 0..5 {
                            let mut g = t.lock().await;
                            assert!(!lockdep::future::is_tracked());
                            hop().await;
                            *g += 1;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert!(
            about(&c, &names).is_empty(),
            "{name}: no false report, no bad unlock"
        );
        // What is validated: the order against the thread's held (blocking) locks.
        rt.block_on(async {
            let _m = m.lock();
            drop(t.lock().await); // blocking m -> async t, recorded
        });
        on(&rt, async {
            let _t = t.lock().await;
            let _m = m.lock(); // t -> m closes the cycle
        });
        assert_eq!(kinds(&about(&c, &names)), [ReportKind::Circular], "{name}");
    }
}

#[test]
fn a_cancelled_task_releases_what_it_held() {
    for (name, rt) in runtimes() {
        let c = ReportCollector::new();
        let m = mutex("t13.m", 0);
        let names = [m.class_name()];
        on(&rt, async {
            let m1 = m.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let task = lockdep::tokio::spawn(async move {
                let _g = m1.lock().await;
                tx.send(()).unwrap();
                std::future::pending::<()>().await;
            });
            rx.await.unwrap();
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            *m.lock().await += 1;
        });
        let found = about(&c, &names);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn a_tracked_future_is_send_and_runs_on_any_executor() {
    fn assert_send<T: Send>(_: &T) {}
    let m = mutex("t14.m", 0);
    let fut = tracked({
        let m = m.clone();
        async move { *m.lock().await += 1 }
    });
    assert_send(&fut);
    // A hand-rolled executor: no tokio runtime at all.
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = std::task::Waker::from(Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    assert!(fut.as_mut().poll(&mut cx).is_ready());
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn the_blocking_forms_are_held_by_the_thread() {
    let c = ReportCollector::new();
    let t = Mutex::with_key(0, key("t15.async"));
    let rw = RwLock::with_key(0, key("t15.rw"));
    let m = lockdep::Mutex::with_key(0, key("t15.blocking"));
    let names = [t.class_name(), m.class_name(), rw.class_name()];
    std::thread::scope(|s| {
        s.spawn(|| {
            let _t = t.blocking_lock();
            assert!(t.lock_map().is_held());
            let _m = m.lock(); // t -> m
        });
    });
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = rw.blocking_read();
            drop(r);
            let _w = rw.blocking_write();
            let _m = m.lock();
            let _t = t.blocking_lock(); // m -> t closes the cycle
        });
    });
    assert_eq!(kinds(&about(&c, &names)), [ReportKind::Circular]);
}

#[test]
#[should_panic(expected = "Cannot block the current thread from within a runtime")]
fn a_blocking_lock_inside_a_runtime_panics_as_tokios() {
    let m = Mutex::new(0);
    current_thread().block_on(async {
        let _g = m.blocking_lock();
    });
}

#[test]
fn the_api_is_tokios() {
    let rt = current_thread();
    on(&rt, async {
        // Mutex: guards, mapped guards, owned guards, try_lock, get_mut, into_inner.
        let m = Arc::new(Mutex::new((1, String::from("a"))));
        {
            let g = m.lock().await;
            assert!(m.try_lock().is_err());
            assert_eq!(
                m.try_lock().unwrap_err().to_string(),
                "operation would block"
            );
            let mut s = lockdep::tokio::MutexGuard::map(g, |v| &mut v.1);
            s.push('b');
            let s = lockdep::tokio::MappedMutexGuard::try_map(s, |_| None::<&mut u8>).unwrap_err();
            assert_eq!(&*s, "ab");
        }
        {
            let g = m.clone().lock_owned().await;
            assert!(Arc::ptr_eq(lockdep::tokio::OwnedMutexGuard::mutex(&g), &m));
            let mut n = lockdep::tokio::OwnedMutexGuard::map(g, |v| &mut v.0);
            *n += 1;
            assert!(m.clone().try_lock_owned().is_err());
        }
        assert_eq!(format!("{:?}", m.try_lock().unwrap()), "(2, \"ab\")");
        let mut m = Arc::try_unwrap(m).unwrap();
        m.get_mut().0 = 7;
        assert_eq!(m.into_inner().0, 7);

        // RwLock: readers share, writers exclude, downgrade, mapped guards, owned guards.
        let l = Arc::new(RwLock::new(vec![1, 2, 3]));
        {
            let r = l.read().await;
            assert!(l.try_write().is_err());
            let first = lockdep::tokio::RwLockReadGuard::map(r, |v| &v[0]);
            assert_eq!(*first, 1);
        }
        {
            let w = l.write().await;
            assert!(l.try_read().is_err());
            let r = lockdep::tokio::RwLockWriteGuard::downgrade(w);
            assert!(l.try_write().is_err());
            assert_eq!(r.len(), 3);
        }
        {
            let w = l.clone().write_owned().await;
            let mut last = lockdep::tokio::OwnedRwLockWriteGuard::map(w, |v| &mut v[2]);
            *last = 30;
        }
        {
            let w = l.clone().try_write_owned().unwrap();
            let r = lockdep::tokio::OwnedRwLockWriteGuard::downgrade(w);
            let r2 = l.clone().try_read_owned().unwrap();
            assert_eq!(r[2] + r2[2], 60);
        }
        let w = l.write().await;
        let mut mapped = lockdep::tokio::RwLockWriteGuard::map(w, |v| &mut v[1]);
        *mapped = 20;
        drop(mapped);
        assert_eq!(*l.read_owned().await, [1, 20, 30]);
        let limited = RwLock::with_max_readers(0, 2);
        let (_a, _b) = (limited.read().await, limited.read().await);
        assert!(limited.try_read().is_err(), "two readers at most");
    });
}

#[test]
fn a_queued_writer_blocks_new_readers_as_in_tokio() {
    let rt = multi_thread();
    on(&rt, async {
        let l = Arc::new(RwLock::new(0));
        let r = l.read().await;
        let l2 = l.clone();
        let writer = lockdep::tokio::spawn(async move { *l2.write().await += 1 });
        while l.try_read().is_ok() {
            tokio::task::yield_now().await; // until the writer queues
        }
        drop(r);
        writer.await.unwrap();
        assert_eq!(*l.read().await, 1);
    });
}
