//! The kernel selftest's lock-order patterns, with real `lockdep::Mutex`es on real threads.
//!
//! The validator is process-wide and these tests run in parallel, so every test gives its locks
//! classes of its own (dynamic keys named after the test) and only looks at reports about them.

#![cfg(not(feature = "disabled"))]

use lockdep::{LockClassKey, LockMap, Mutex, Report, ReportCollector, ReportKind};

/// Four mutexes in four classes named `{test}.A` .. `{test}.D`.
fn locks(test: &str) -> Vec<Mutex<()>> {
    ["A", "B", "C", "D"]
        .iter()
        .map(|n| Mutex::with_key((), LockClassKey::new_dynamic(format!("{test}.{n}"))))
        .collect()
}

fn mine(reports: &ReportCollector, test: &str) -> Vec<Report> {
    let prefix = format!("{test}.");
    reports.matching(|r| {
        r.lock
            .iter()
            .chain(r.holding.iter())
            .any(|l| l.class.name.starts_with(&prefix))
    })
}

/// Takes each pair (outer, inner) in turn: lock outer, lock inner, unlock both.
fn run(test: &str, pairs: &[(usize, usize)]) -> Vec<Report> {
    let reports = ReportCollector::new();
    let l = locks(test);
    for &(x, y) in pairs {
        let _x = l[x].lock();
        let _y = l[y].lock();
    }
    mine(&reports, test)
}

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

fn assert_one_circular(test: &str, pairs: &[(usize, usize)], chain_len: usize) {
    let r = run(test, pairs);
    assert_eq!(r.len(), 1, "{test}: {r:#?}");
    assert_eq!(r[0].kind, ReportKind::Circular);
    // The chain lists the held lock first (#N) and the lock being taken last (#0).
    assert_eq!(
        r[0].chain.len(),
        chain_len,
        "{test}: {:?}",
        r[0].chain_names()
    );
    let last = pairs.last().unwrap();
    let names = ["A", "B", "C", "D"];
    assert_eq!(
        &*r[0].lock.as_ref().unwrap().class.name,
        format!("{test}.{}", names[last.1])
    );
    assert_eq!(
        &*r[0].holding.as_ref().unwrap().class.name,
        format!("{test}.{}", names[last.0])
    );
    assert_eq!(
        r[0].chain[0].class.name,
        r[0].holding.as_ref().unwrap().class.name
    );
    assert_eq!(
        r[0].chain[chain_len - 1].class.name,
        r[0].lock.as_ref().unwrap().class.name
    );
}

#[test]
fn abba() {
    assert_one_circular("abba", &[(A, B), (B, A)], 2);
}

#[test]
fn abbcca() {
    assert_one_circular("abbcca", &[(A, B), (B, C), (C, A)], 3);
}

#[test]
fn abcabc() {
    assert_one_circular("abcabc", &[(A, B), (C, A), (B, C)], 3);
}

#[test]
fn abbccdda() {
    assert_one_circular("abbccdda", &[(A, B), (B, C), (C, D), (D, A)], 4);
}

#[test]
fn abcdbdda() {
    assert_one_circular("abcdbdda", &[(A, B), (C, D), (B, D), (D, A)], 3);
}

#[test]
fn abcdbcda() {
    assert_one_circular("abcdbcda", &[(A, B), (C, D), (B, C), (D, A)], 4);
}

#[test]
fn a_consistent_order_is_not_reported() {
    assert!(run("consistent", &[(A, B), (B, C), (A, C), (A, B), (C, D)]).is_empty());
}

#[test]
fn the_same_problem_is_reported_once() {
    let r = run("once", &[(A, B), (B, A), (B, A), (A, B), (B, A)]);
    assert_eq!(r.len(), 1);
}

#[test]
fn aa_with_two_instances_of_one_class_is_recursive() {
    static KEY: LockClassKey = LockClassKey::new("patterns.aa");
    let reports = ReportCollector::new();
    let (x1, x2) = (Mutex::with_key((), &KEY), Mutex::with_key((), &KEY));
    {
        let _a = x1.lock();
        let _b = x2.lock();
    }
    let r = reports.matching(|r| r.involves("patterns.aa"));
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].kind, ReportKind::Recursive);
    assert_ne!(
        r[0].lock.as_ref().unwrap().instance,
        r[0].holding.as_ref().unwrap().instance
    );
}

#[test]
fn aa_with_a_subclass_is_not_reported() {
    static KEY: LockClassKey = LockClassKey::new("patterns.aa_sub");
    let reports = ReportCollector::new();
    let (x1, x2) = (Mutex::with_key((), &KEY), Mutex::with_key((), &KEY));
    {
        let _a = x1.lock();
        let _b = x2.lock_nested(1);
    }
    assert!(reports
        .matching(|r| r.involves("patterns.aa_sub") || r.involves("patterns.aa_sub/1"))
        .is_empty());
    // The subclass is its own class, printed `name/1`.
    let _a = x1.lock();
    let _b = x2.lock_nested(1);
    assert!(lockdep::rt::global()
        .classes()
        .iter()
        .any(|c| &*c.name == "patterns.aa_sub/1"));
}

#[test]
fn a_trylock_inversion_is_not_reported() {
    let reports = ReportCollector::new();
    let l = locks("trylock");
    {
        let _a = l[A].lock();
        let _b = l[B].try_lock().expect("uncontended");
    }
    {
        let _b = l[B].lock();
        let _a = l[A].lock();
    }
    assert!(mine(&reports, "trylock").is_empty());
}

#[test]
fn a_trylocked_lock_is_the_source_of_later_dependencies() {
    let reports = ReportCollector::new();
    let l = locks("trysource");
    {
        let _a = l[A].try_lock().expect("uncontended");
        let _b = l[B].lock(); // A -> B is recorded although A was trylocked
    }
    {
        let _b = l[B].lock();
        let _a = l[A].lock();
    }
    let r = mine(&reports, "trysource");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::Circular);
}

#[test]
fn out_of_order_unlock_is_not_reported() {
    let reports = ReportCollector::new();
    let l = locks("unlock_order");
    let a = l[A].lock();
    let b = l[B].lock();
    drop(a);
    drop(b);
    assert!(mine(&reports, "unlock_order").is_empty());
    assert_eq!(lockdep::rt::depth(), 0);
}

#[test]
fn out_of_order_unlock_revalidates_the_locks_above() {
    // Hold A, B, C; release B. C is acquired again on top of A, which records A -> C directly.
    let reports = ReportCollector::new();
    let l = locks("revalidate");
    let a = l[A].lock();
    let b = l[B].lock();
    let c = l[C].lock();
    drop(b);
    let g = lockdep::rt::global();
    let (ca, cc) = (class(&l[A]), class(&l[C]));
    assert!(g.dependency(ca, cc).is_some_and(|d| d.distance == 1));
    drop(c);
    drop(a);
    assert!(mine(&reports, "revalidate").is_empty());
}

fn class(m: &Mutex<()>) -> lockdep::ClassId {
    let name = m.class_name();
    lockdep::rt::global()
        .classes()
        .into_iter()
        .find(|c| *c.name == *name)
        .map(|c| c.id)
        .unwrap()
}

#[test]
fn double_unlock_is_a_bad_unlock_balance() {
    let reports = ReportCollector::new();
    static KEY: LockClassKey = LockClassKey::new("patterns.double_unlock");
    let map = LockMap::named(&KEY);
    map.acquire(lockdep::Acquire::exclusive());
    map.release();
    map.release();
    let r = reports.matching(|r| r.involves("patterns.double_unlock"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::BadUnlock);
    assert!(r[0]
        .render()
        .contains("but there are no more locks to release!"));
}

#[test]
fn ten_thousand_locks_from_one_site_are_one_class() {
    fn make() -> Mutex<u32> {
        Mutex::new(0)
    }
    let before = lockdep::rt::global().classes().len();
    let locks: Vec<Mutex<u32>> = (0..10_000).map(|_| make()).collect();
    for m in &locks {
        *m.lock() += 1;
    }
    let name = locks[0].class_name();
    assert!(locks.iter().all(|m| m.class_name() == name));
    let matching = lockdep::rt::global()
        .classes()
        .into_iter()
        .filter(|c| *c.name == *name)
        .count();
    assert_eq!(matching, 1);
    // Other tests register classes concurrently; ours added exactly one.
    assert!(lockdep::rt::global().classes().len() > before);
}

#[test]
fn the_circular_report_names_both_stacks() {
    let reports = ReportCollector::new();
    let l = locks("stacks");
    #[inline(never)]
    fn first_order(l: &[Mutex<()>]) {
        let _a = l[A].lock();
        let _b = l[B].lock();
    }
    #[inline(never)]
    fn second_order(l: &[Mutex<()>]) {
        let _b = l[B].lock();
        let _a = l[A].lock();
    }
    first_order(&l);
    second_order(&l);
    let r = mine(&reports, "stacks");
    assert_eq!(r.len(), 1);
    let text = r[0].render();
    for line in [
        "WARNING: possible circular locking dependency detected",
        "is trying to acquire lock:",
        "but task is already holding lock:",
        "which lock already depends on the new lock.",
        "the existing dependency chain (in reverse order) is:",
        "-> #1 (stacks.B){+.+.}-{3:3}:",
        "-> #0 (stacks.A){+.+.}-{3:3}:",
        " Possible unsafe locking scenario:",
        "       CPU0                    CPU1",
        "  lock(stacks.B);",
        "                               lock(stacks.A);",
        " *** DEADLOCK ***",
        "1 lock held by ",
        "stack backtrace:",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let edge_stack: Vec<String> = r[0].chain[0]
        .stack
        .frames()
        .iter()
        .map(|f| f.function.clone())
        .collect();
    assert!(edge_stack[0].ends_with("first_order"), "{edge_stack:?}");
    let now: Vec<String> = r[0]
        .stack
        .as_ref()
        .unwrap()
        .frames()
        .iter()
        .map(|f| f.function.clone())
        .collect();
    assert!(now[0].ends_with("second_order"), "{now:?}");
}
