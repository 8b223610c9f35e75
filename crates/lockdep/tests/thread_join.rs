//! Joining threads that need a held lock: `lockdep::thread::{spawn, scope, Builder}` (the
//! kernel's `flush_work` model).

#![cfg(not(feature = "disabled"))]

use std::sync::Arc;
use std::time::Duration;

use lockdep::{LockClassKey, Mutex, Report, ReportCollector, ReportKind};

fn mutex(name: &str) -> Arc<Mutex<u32>> {
    Arc::new(Mutex::with_key(0, LockClassKey::new_dynamic(name)))
}

fn about(c: &ReportCollector, name: &str) -> Vec<Report> {
    c.matching(|r| r.involves(name))
}

fn kinds(reports: &[Report]) -> Vec<ReportKind> {
    reports.iter().map(|r| r.kind).collect()
}

#[test]
fn joining_a_finished_thread_that_took_a_held_lock_is_reported() {
    let c = ReportCollector::new();
    let m = mutex("join.m");
    let m2 = m.clone();
    let t = lockdep::thread::spawn(move || *m2.lock() += 1);
    while !t.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let g = m.lock();
    t.join().unwrap(); // finished: cannot hang on this run, and on another run it would
    drop(g);
    let found = about(&c, &m.class_name());
    assert_eq!(kinds(&found), [ReportKind::Circular]);
    assert!(
        found[0]
            .chain_names()
            .iter()
            .any(|n| n.starts_with("spawned@") && n.contains("thread_join.rs")),
        "{:?}",
        found[0].chain_names()
    );
}

#[test]
fn joining_while_holding_a_lock_the_thread_does_not_take_is_fine() {
    let c = ReportCollector::new();
    let (mine, theirs) = (mutex("join.mine"), mutex("join.theirs"));
    let t2 = theirs.clone();
    let g = mine.lock();
    let t = lockdep::thread::Builder::new()
        .name("worker".into())
        .spawn(move || {
            assert_eq!(std::thread::current().name(), Some("worker"));
            *t2.lock() += 1
        })
        .unwrap();
    t.join().unwrap();
    drop(g);
    assert!(about(&c, &mine.class_name()).is_empty());
    assert!(about(&c, &theirs.class_name()).is_empty());
}

#[test]
fn scoped_threads_borrow_and_a_scope_holding_nothing_they_need_is_fine() {
    let c = ReportCollector::new();
    let (m, other) = (mutex("join.scoped"), mutex("join.other"));
    let mut value = 0;
    let g = other.lock();
    lockdep::thread::scope(|s| {
        let h = s.spawn(|| *m.lock() += 1);
        s.spawn(|| value += 1);
        h.join().unwrap();
    });
    drop(g);
    assert_eq!((value, *m.lock()), (1, 1));
    assert!(about(&c, &m.class_name()).is_empty());
    assert!(about(&c, &other.class_name()).is_empty());
}

#[test]
fn a_scope_ending_while_holding_a_lock_its_thread_takes_is_reported() {
    fn run(m: &Mutex<u32>, hold: bool) {
        let g = hold.then(|| m.lock());
        lockdep::thread::scope(|s| {
            s.spawn(|| {
                // Blocks only when `hold` (and then gives up: the test must not hang).
                if let Some(mut v) = m.try_lock_for(Duration::from_millis(1)) {
                    *v += 1;
                }
                if !hold {
                    *m.lock() += 1;
                }
            });
        });
        drop(g);
    }
    let c = ReportCollector::new();
    let m = mutex("join.scope_end");
    run(&m, false); // the thread's work class -> m
    run(&m, true); // m held while the scope waits for that work
    assert_eq!(kinds(&about(&c, &m.class_name())), [ReportKind::Circular]);
}

#[test]
fn a_thread_joining_threads_of_its_own_spawn_site_is_not_reported() {
    fn tree(depth: u32, m: Arc<Mutex<u32>>) {
        if depth == 0 {
            *m.lock() += 1;
            return;
        }
        let m2 = m.clone();
        let child = lockdep::thread::spawn(move || tree(depth - 1, m2)); // TREE_SPAWN_LINE
        tree(depth - 1, m);
        child.join().unwrap();
    }
    let c = ReportCollector::new();
    let m = mutex("join.tree");
    tree(3, m.clone());
    assert_eq!(*m.lock(), 8);
    // This test's own spawn site (other tests here report through theirs).
    let line = include_str!("thread_join.rs")
        .lines()
        .position(|l| l.ends_with("// TREE_SPAWN_LINE"))
        .unwrap()
        + 1;
    let work = format!("spawned@crates/lockdep/tests/thread_join.rs:{line}:");
    let found = c.matching(|r| {
        r.involves(&m.class_name()) || r.chain_names().iter().any(|n| n.starts_with(&work))
    });
    assert!(found.is_empty(), "{found:#?}");
}
