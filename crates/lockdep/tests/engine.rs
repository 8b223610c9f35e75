//! The engine driven directly, with simulated tasks: every rule of the core, one test each.

use lockdep::{
    Acquire, Engine, LockClassKey, LockMap, ReadKind, Report, ReportKind, Site, Task, WaitType,
};

struct World {
    engine: Engine,
    task: Task,
}

fn key(name: &str) -> &'static LockClassKey {
    LockClassKey::new_dynamic(name.to_string())
}

impl World {
    fn new() -> World {
        World {
            engine: Engine::new(),
            task: Task::simulated("t", 1),
        }
    }
    fn lock(&mut self, m: &LockMap) -> Option<Report> {
        self.engine
            .acquire(&mut self.task, m, Acquire::exclusive(), Site::Unknown)
    }
    fn with(&mut self, m: &LockMap, how: Acquire<'_>) -> Option<Report> {
        self.engine.acquire(&mut self.task, m, how, Site::Unknown)
    }
    fn unlock(&mut self, m: &LockMap) -> Option<Report> {
        self.engine.release(&mut self.task, m, Site::Unknown)
    }
    fn class(&mut self, m: &LockMap) -> lockdep::ClassId {
        self.engine.class_of(&mut self.task, m, 0)
    }
}

fn kind(r: Option<Report>) -> Option<ReportKind> {
    r.map(|r| r.kind)
}

#[test]
fn a_nest_lock_serialises_nested_locks_of_one_class() {
    let mut w = World::new();
    let ctx = LockMap::named(key("ctx"));
    let k = key("obj");
    let (o1, o2, o3) = (LockMap::named(k), LockMap::named(k), LockMap::named(k));
    assert_eq!(kind(w.lock(&ctx)), None);
    assert_eq!(
        kind(w.with(&o1, Acquire::exclusive().nest_lock(&ctx))),
        None
    );
    assert_eq!(
        kind(w.with(&o2, Acquire::exclusive().nest_lock(&ctx))),
        None
    );
    assert_eq!(
        kind(w.with(&o3, Acquire::exclusive().nest_lock(&ctx))),
        None
    );
    // The three are merged into one held entry with references.
    assert_eq!(w.task.depth(), 2);
    for m in [&o2, &o1, &o3] {
        assert_eq!(kind(w.unlock(m)), None);
    }
    assert_eq!(w.task.depth(), 1);
    assert_eq!(kind(w.unlock(&ctx)), None);
    assert_eq!(w.task.depth(), 0);
}

#[test]
fn a_nest_lock_that_is_not_held_is_reported() {
    let mut w = World::new();
    let ctx = LockMap::named(key("ctx2"));
    let o = LockMap::named(key("obj2"));
    assert_eq!(
        kind(w.with(&o, Acquire::exclusive().nest_lock(&ctx))),
        Some(ReportKind::NestedLockNotTaken)
    );
    // The acquisition still took place, so the unlock matches.
    assert_eq!(kind(w.unlock(&o)), None);
}

#[test]
fn same_class_under_a_held_nest_lock_is_not_recursive() {
    let mut w = World::new();
    let ctx = LockMap::named(key("ctx3"));
    let k = key("obj3");
    let (a, x, b) = (
        LockMap::named(k),
        LockMap::named(key("other3")),
        LockMap::named(k),
    );
    w.lock(&ctx);
    w.with(&a, Acquire::exclusive().nest_lock(&ctx));
    w.lock(&x); // not the same class on top: no merging, check_deadlock's nest rule applies
    assert_eq!(kind(w.with(&b, Acquire::exclusive().nest_lock(&ctx))), None);
    // Without the nest lock it is recursive locking.
    let c = LockMap::named(k);
    assert_eq!(kind(w.lock(&c)), Some(ReportKind::Recursive));
}

#[test]
fn recursive_reads_after_reads_are_allowed_and_others_are_not() {
    use ReadKind::*;
    for (first, second, bad) in [
        (SharedRecursive, SharedRecursive, false),
        (Shared, SharedRecursive, false),
        (Shared, Shared, true),
        (Exclusive, SharedRecursive, true),
        (SharedRecursive, Exclusive, true),
        (SharedRecursive, Shared, true),
    ] {
        let mut w = World::new();
        let k = key("rw");
        let (x1, x2) = (LockMap::named(k), LockMap::named(k));
        w.with(&x1, Acquire::exclusive().with_read(first));
        let r = w.with(&x2, Acquire::exclusive().with_read(second));
        assert_eq!(kind(r).is_some(), bad, "{first:?} then {second:?}");
    }
}

#[test]
fn a_subclass_out_of_range_is_a_misuse_and_the_stack_stays_balanced() {
    let mut w = World::new();
    let m = LockMap::named(key("sub8"));
    let r = w
        .with(&m, Acquire::exclusive().subclass(8))
        .expect("misuse report");
    assert_eq!(r.kind, ReportKind::Misuse);
    assert!(r.render().contains("BUG: looking up invalid subclass: 8"));
    assert_eq!(w.task.depth(), 1);
    assert_eq!(kind(w.unlock(&m)), None);
    assert_eq!(w.task.depth(), 0);
}

#[test]
fn set_subclass_revalidates_under_the_new_class() {
    let mut w = World::new();
    let k = key("setsub");
    let (x1, x2) = (LockMap::named(k), LockMap::named(k));
    w.lock(&x1);
    assert_eq!(
        kind(w.engine.set_subclass(&mut w.task, &x1, 1, Site::Unknown)),
        None
    );
    // x1 is now subclass 1: taking x2 (subclass 0) is not recursive.
    assert_eq!(kind(w.lock(&x2)), None);
    let names: Vec<String> = w
        .engine
        .classes()
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert!(names.contains(&"setsub/1".to_string()), "{names:?}");
    // And the dependency setsub/1 -> setsub was recorded.
    assert_eq!(w.engine.dependencies().len(), 1);
}

#[test]
fn downgrade_turns_a_write_hold_into_a_read_hold() {
    let mut w = World::new();
    let m = LockMap::named(key("down"));
    w.lock(&m);
    assert_eq!(
        kind(w.engine.downgrade(&mut w.task, &m, Site::Unknown)),
        None
    );
    assert_eq!(w.task.held_locks()[0].read(), ReadKind::Shared);
    let r = w
        .engine
        .downgrade(&mut w.task, &m, Site::Unknown)
        .expect("misuse");
    assert!(r.render().contains("downgrading a read lock"));
}

#[test]
fn re_initialising_a_held_lock_is_reported() {
    let mut w = World::new();
    let m = LockMap::named(key("freed"));
    w.lock(&m);
    let r = w
        .engine
        .check_freed(&mut w.task, m.instance())
        .expect("report");
    assert_eq!(r.kind, ReportKind::HeldLockFreed);
    assert!(r.render().contains("with a lock still held there!"));
    assert_eq!(w.task.depth(), 0);
    assert_eq!(kind(w.engine.check_freed(&mut w.task, m.instance())), None);
}

#[test]
fn exiting_with_locks_held_is_reported() {
    let mut w = World::new();
    let m = LockMap::named(key("exit"));
    w.lock(&m);
    let r = w.engine.exit(&mut w.task).expect("report");
    assert_eq!(r.kind, ReportKind::LocksHeldAtExit);
    assert!(r.render().contains("WARNING: t/1 still has locks held!"));
    assert!(r.render().contains("1 lock held by t/1:"));
    assert_eq!(kind(w.engine.exit(&mut w.task)), None);
}

#[test]
fn assertions_check_how_a_lock_is_held() {
    let mut w = World::new();
    let m = LockMap::named(key("assert"));
    let e = &w.engine;
    assert_eq!(
        kind(e.assert_held(&mut w.task, &m, false, None, Site::Unknown)),
        None
    );
    assert_eq!(
        kind(e.assert_held(&mut w.task, &m, true, None, Site::Unknown)),
        Some(ReportKind::Assertion)
    );
    e.acquire(&mut w.task, &m, Acquire::shared(), Site::Unknown);
    assert_eq!(
        kind(e.assert_held(&mut w.task, &m, true, Some(ReadKind::Shared), Site::Unknown)),
        None
    );
    assert_eq!(
        kind(e.assert_held(
            &mut w.task,
            &m,
            true,
            Some(ReadKind::Exclusive),
            Site::Unknown
        )),
        Some(ReportKind::Assertion)
    );
}

#[test]
fn a_seen_chain_does_no_graph_work() {
    let mut w = World::new();
    let (a, b) = (LockMap::named(key("fa")), LockMap::named(key("fb")));
    w.lock(&a);
    w.lock(&b);
    w.unlock(&b);
    w.unlock(&a);
    let misses = w.engine.stats().chain_misses;
    for _ in 0..100 {
        w.lock(&a);
        w.lock(&b);
        w.unlock(&b);
        w.unlock(&a);
    }
    assert_eq!(w.engine.stats().chain_misses, misses);
    // A second task answers its first miss from the engine's table, without validating again.
    let mut t2 = Task::simulated("t2", 2);
    w.engine
        .acquire(&mut t2, &a, Acquire::exclusive(), Site::Unknown);
    w.engine
        .acquire(&mut t2, &b, Acquire::exclusive(), Site::Unknown);
    let s = w.engine.stats();
    assert_eq!(s.chain_misses, misses);
    assert!(s.chain_table_hits >= 1);
}

/// decisions.md 2: the kernel's chain key leaves out the trylock flag, so after `[A, try B] + C`
/// the chain `[try A... ]` variant hides a dependency. Ours does not.
#[test]
fn the_trylock_flag_is_part_of_the_chain() {
    let mut w = World::new();
    let (a, b, c) = (
        LockMap::named(key("ta")),
        LockMap::named(key("tb")),
        LockMap::named(key("tc")),
    );
    // [A, B(try)] + C : B is a trylock, so the walk goes on to A: B -> C and A -> C.
    // First [A(try), B] + C : only B -> C.
    w.with(&a, Acquire::exclusive().trylock(true));
    w.lock(&b);
    w.lock(&c);
    w.unlock(&c);
    w.unlock(&b);
    w.unlock(&a);
    let (ca, cc) = (w.class(&a), w.class(&c));
    assert!(w.engine.dependency(ca, cc).is_none());
    w.lock(&a);
    w.with(&b, Acquire::exclusive().trylock(true));
    w.lock(&c);
    assert!(
        w.engine.dependency(ca, cc).is_some(),
        "A -> C must not be hidden by the cache"
    );
}

#[test]
fn a_dependency_records_where_and_by_whom_it_was_first_seen() {
    let mut w = World::new();
    let (a, b) = (LockMap::named(key("wa")), LockMap::named(key("wb")));
    w.task.push_frame("outer_fn");
    w.task.push_frame("inner_fn");
    w.lock(&a);
    w.lock(&b);
    let d = w.engine.dependencies();
    assert_eq!(d.len(), 1);
    assert_eq!(&*d[0].task.name, "t");
    let frames: Vec<String> = d[0]
        .stack
        .frames()
        .into_iter()
        .map(|f| f.function)
        .collect();
    assert_eq!(frames, vec!["inner_fn", "outer_fn"]);
    assert_eq!(d[0].dep, lockdep::dep::DEP_EN);
}

#[test]
fn a_cycle_closing_dependency_is_not_added_and_is_reported_once() {
    let mut w = World::new();
    let (a, b) = (LockMap::named(key("ca")), LockMap::named(key("cb")));
    w.lock(&a);
    w.lock(&b);
    w.unlock(&b);
    w.unlock(&a);
    w.lock(&b);
    assert_eq!(kind(w.lock(&a)), Some(ReportKind::Circular));
    w.unlock(&a);
    assert_eq!(kind(w.lock(&a)), None, "reported once");
    w.unlock(&a);
    w.unlock(&b);
    let (ca, cb) = (w.class(&a), w.class(&b));
    assert!(w.engine.dependency(cb, ca).is_none());
    assert_eq!(w.engine.dependencies().len(), 1);
}

#[test]
fn unlocking_a_lock_never_taken_is_a_bad_unlock() {
    let mut w = World::new();
    let m = LockMap::named(key("never"));
    let r = w.unlock(&m).expect("report");
    assert_eq!(r.kind, ReportKind::BadUnlock);
    let text = r.render();
    assert!(
        text.contains("t/1 is trying to release lock (never) at:"),
        "{text}"
    );
    assert!(text.contains("no locks held by t/1."), "{text}");
}

#[test]
fn observers_see_new_classes_and_dependencies_and_imports_use_the_cycle_rules() {
    use std::sync::{Arc, Mutex};
    #[derive(Default, Clone)]
    struct Log(Arc<Mutex<Vec<String>>>);
    impl lockdep::Observer for Log {
        fn class_registered(&self, c: &lockdep::ClassInfo) {
            self.0.lock().unwrap().push(format!("class {}", c.name));
        }
        fn dependency_recorded(
            &self,
            d: &lockdep::Dependency,
            f: &lockdep::ClassInfo,
            t: &lockdep::ClassInfo,
        ) {
            self.0
                .lock()
                .unwrap()
                .push(format!("dep {} -> {} {}", f.name, t.name, d.dep));
        }
    }
    // "Process 1" records A -> B.
    let log = Log::default();
    let e1 = Engine::with_observer(Default::default(), Box::new(log.clone()));
    let (a, b) = (LockMap::named(key("imp.A")), LockMap::named(key("imp.B")));
    let mut t = Task::simulated("p1", 1);
    e1.acquire(&mut t, &a, Acquire::exclusive(), Site::Unknown);
    e1.acquire(&mut t, &b, Acquire::exclusive(), Site::Unknown);
    let seen = log.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec!["class imp.A", "class imp.B", "dep imp.A -> imp.B 8"]
    );

    // A checker imports it, then "process 2"'s B -> A: the engine's own cycle rules report it.
    let checker = Engine::new();
    let info = |e: &Engine, m: &LockMap, t: &mut Task| e.class_info(e.class_of(t, m, 0)).unwrap();
    let (ia, ib) = (info(&e1, &a, &mut t), info(&e1, &b, &mut t));
    let ca = checker.import_class(
        &ia.name,
        ia.stable_id,
        ia.wait_inner,
        ia.wait_outer,
        ia.site.as_deref(),
        ia.usage,
    );
    let cb = checker.import_class(
        &ib.name,
        ib.stable_id,
        ib.wait_inner,
        ib.wait_outer,
        None,
        0,
    );
    assert_eq!(
        ca,
        checker.import_class("imp.A", ia.stable_id, ia.wait_inner, ia.wait_outer, None, 0)
    );
    let d = e1.dependencies().remove(0);
    let mut task = d.task.clone();
    task.origin = Some("proc-1 test_a".into());
    assert!(checker
        .import_dependency(ca, cb, d.dep, d.stack.clone(), task)
        .is_empty());
    let p2 = lockdep::TaskRef {
        name: "p2".into(),
        pid: 2,
        origin: Some("proc-2 test_b".into()),
    };
    let stack = Arc::new(lockdep::StackTrace::symbolic(vec!["test_b"]));
    let r = checker.import_dependency(cb, ca, lockdep::dep::DEP_EN, stack, p2);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::Circular);
    let text = r[0].render();
    assert!(
        text.contains("(first seen in p1/1 of proc-1 test_a)"),
        "{text}"
    );
    assert!(
        text.contains("(first seen in p2/2 of proc-2 test_b)"),
        "{text}"
    );
    // A recursive-read cycle is not strong: not reported.
    let c = Engine::new();
    let (x, y) = (
        c.import_class("x", 1, Default::default(), Default::default(), None, 0),
        c.import_class("y", 2, Default::default(), Default::default(), None, 0),
    );
    let s = Arc::new(lockdep::StackTrace::symbolic(vec![]));
    let tr = lockdep::TaskRef {
        name: "t".into(),
        pid: 1,
        origin: None,
    };
    assert!(c
        .import_dependency(x, y, lockdep::dep::DEP_SR, s.clone(), tr.clone())
        .is_empty());
    assert!(c
        .import_dependency(y, x, lockdep::dep::DEP_SR, s, tr)
        .is_empty());
}

#[test]
fn a_sleeping_lock_in_an_invalid_context_is_judged_before_it_is_pushed() {
    let mut w = World::new();
    let m =
        LockMap::named(key("sleepy")).with_wait(lockdep::WaitType::Sleep, lockdep::WaitType::Inv);
    w.engine.non_block_start(&mut w.task);
    let r = w.lock(&m).expect("a sleep report");
    assert_eq!(r.kind, ReportKind::SleepInvalidContext);
    // The held list is the stack as it was before the lock: nothing.
    assert!(r.held.is_empty(), "{}", r.render());
    let text = r.render();
    assert!(
        text.contains("in_atomic(): 0, irqs_disabled(): 0, non_block: 1, pid: 1, name: t"),
        "{text}"
    );
    assert!(
        !text.contains("====="),
        "no box around a might_sleep report:\n{text}"
    );
    // Reported once per site and context; a trylock never sleeps.
    w.unlock(&m);
    assert_eq!(kind(w.lock(&m)), None);
    w.unlock(&m);
    assert_eq!(kind(w.with(&m, Acquire::exclusive().trylock(true))), None);
}

#[test]
fn a_recording_keeps_in_process_cycles_usage_and_chains() {
    use lockdep::record::{read_bytes, Merged, Recorder};
    let rec = Recorder::in_memory();
    let e = Engine::with_observer(Default::default(), Box::new(rec.clone()));
    let (a, b) = (LockMap::named(key("rec.A")), LockMap::named(key("rec.B")));
    let mut t = Task::simulated("t", 1);
    for (x, y) in [(&a, &b), (&b, &a)] {
        e.acquire(&mut t, x, Acquire::exclusive(), Site::Unknown);
        let r = e.acquire(&mut t, y, Acquire::exclusive(), Site::Unknown);
        e.release(&mut t, y, Site::Unknown);
        e.release(&mut t, x, Site::Unknown);
        if std::ptr::eq(x, &b) {
            assert_eq!(kind(r), Some(ReportKind::Circular));
        }
    }
    // The engine left B -> A out of its graph, but the recording has it: checked, it is a cycle.
    assert_eq!(e.dependencies().len(), 1);
    let recording = read_bytes("mem", &rec.bytes()).unwrap();
    let merged = Merged::new([&recording]);
    assert_eq!(merged.check().reports.len(), 1);
    // Usage bits came after registration and are recorded; so are the validated chains.
    assert!(recording.classes.iter().any(|c| c.usage != 0));
    assert!(!recording.chains.is_empty());
}

#[test]
fn set_class_moves_a_held_lock_to_another_key() {
    let mut w = World::new();
    let (a, b) = (LockMap::named(key("sc.A")), LockMap::named(key("sc.B")));
    let other = key("sc.other");
    w.lock(&a);
    assert_eq!(
        kind(w.engine.set_class(&mut w.task, &a, other, 0, Site::Unknown)),
        None
    );
    w.lock(&b);
    // The dependency is recorded from the new class, not from sc.A.
    let names: Vec<String> = w
        .engine
        .dependencies()
        .iter()
        .map(|d| w.engine.class_info(d.from).unwrap().name.to_string())
        .collect();
    assert_eq!(names, ["sc.other"]);
    // Bad input: a lock not held, and a subclass out of range.
    let c = LockMap::named(key("sc.C"));
    assert_eq!(
        kind(w.engine.set_class(&mut w.task, &c, other, 0, Site::Unknown)),
        Some(ReportKind::BadUnlock)
    );
    let r = w
        .engine
        .set_class(&mut w.task, &a, other, 9, Site::Unknown)
        .expect("misuse");
    assert!(r.render().contains("BUG: looking up invalid subclass: 9"));
}

/// decisions.md 2: a held lock taken with `check = 0` gets no dependency, so a chain seen with it
/// unchecked must not stand for the same chain with it checked.
#[test]
fn the_check_flag_is_part_of_the_chain() {
    let mut w = World::new();
    let (a, b) = (LockMap::named(key("ua")), LockMap::named(key("ub")));
    w.with(&a, Acquire::exclusive().unchecked());
    w.lock(&b);
    w.unlock(&b);
    w.unlock(&a);
    let (ca, cb) = (w.class(&a), w.class(&b));
    assert!(w.engine.dependency(ca, cb).is_none());
    w.lock(&a);
    w.lock(&b);
    assert!(
        w.engine.dependency(ca, cb).is_some(),
        "A -> B must not be hidden by the cache"
    );
}

/// decisions.md 2: a same-class acquisition under a held nest lock adds no dependency and is not
/// recursive; the same chain without the nest lock is recursive locking, and must be found even
/// though the classes and read kinds match a chain seen before.
#[test]
fn a_chain_seen_under_a_nest_lock_does_not_hide_recursion() {
    let mut w = World::new();
    let ctx = LockMap::named(key("nctx"));
    let k = key("nobj");
    let (a, x, b) = (
        LockMap::named(k),
        LockMap::named(key("nother")),
        LockMap::named(k),
    );
    w.lock(&ctx);
    w.with(&a, Acquire::exclusive().nest_lock(&ctx));
    w.lock(&x);
    assert_eq!(kind(w.with(&b, Acquire::exclusive().nest_lock(&ctx))), None);
    assert_eq!(kind(w.unlock(&b)), None);
    assert_eq!(kind(w.lock(&b)), Some(ReportKind::Recursive));
}

/// The fast path takes a chain only in the state it was validated in: the same chain in a
/// non-blocking section, with interrupts disabled, or in an interrupt is checked again.
#[test]
fn a_chain_taken_fast_is_checked_again_in_another_context() {
    let mut w = World::new();
    let sleeping = |name: &str| LockMap::named(key(name)).with_wait(WaitType::Sleep, WaitType::Inv);
    let (a, b) = (sleeping("fsa"), sleeping("fsb"));
    let take = |w: &mut World| {
        let r = (kind(w.lock(&a)), kind(w.lock(&b)));
        w.unlock(&b);
        w.unlock(&a);
        r
    };
    for _ in 0..3 {
        assert_eq!(take(&mut w), (None, None));
    }
    w.engine.non_block_start(&mut w.task);
    assert_eq!(take(&mut w).0, Some(ReportKind::SleepInvalidContext));
    assert_eq!(
        kind(w.engine.non_block_end(&mut w.task, Site::Unknown)),
        None
    );
    assert_eq!(take(&mut w), (None, None));
    w.engine.irq_disable(&mut w.task);
    assert_eq!(take(&mut w).0, Some(ReportKind::SleepInvalidContext));
    assert_eq!(kind(w.engine.irq_enable(&mut w.task)), None);
    assert_eq!(take(&mut w), (None, None));
    // In a hardirq, a sleeping lock is an invalid wait context.
    w.engine.hardirq_enter(&mut w.task);
    assert_eq!(take(&mut w).0, Some(ReportKind::InvalidWaitContext));
    w.engine.hardirq_exit(&mut w.task);
}

/// A task's cached chains belong to the engine that validated them: with another engine the
/// same acquisitions are validated again, and that engine records the dependency.
#[test]
fn a_task_moved_to_another_engine_validates_again() {
    let (a, b) = (LockMap::named(key("ea")), LockMap::named(key("eb")));
    let mut task = Task::simulated("t", 1);
    let first = Engine::new();
    for _ in 0..2 {
        first.acquire(&mut task, &a, Acquire::exclusive(), Site::Unknown);
        first.acquire(&mut task, &b, Acquire::exclusive(), Site::Unknown);
        first.release(&mut task, &b, Site::Unknown);
        first.release(&mut task, &a, Site::Unknown);
    }
    let second = Engine::new();
    second.acquire(&mut task, &a, Acquire::exclusive(), Site::Unknown);
    second.acquire(&mut task, &b, Acquire::exclusive(), Site::Unknown);
    let (ca, cb) = (
        second.class_of(&mut task, &a, 0),
        second.class_of(&mut task, &b, 0),
    );
    assert!(second.dependency(ca, cb).is_some());
    assert_eq!(second.stats().chain_misses, 2);
}

/// A held lock keeps the site of its own acquisition, also when the fast path takes it: a text
/// site (the replay's) is interned once per task, a new text goes the slow way once.
#[test]
fn held_locks_keep_their_sites_on_the_seen_path() {
    let mut w = World::new();
    let (a, b) = (LockMap::named(key("sa")), LockMap::named(key("sb")));
    let sites = |w: &World| -> Vec<Site> { w.task.held_locks().iter().map(|h| h.site()).collect() };
    for round in 0..3 {
        let (sa, sb) = if round < 2 {
            (Site::Text("a.c:1"), Site::Text("b.c:2"))
        } else {
            (
                Site::Unknown,
                Site::Text(Box::leak(format!("b.c:{round}").into_boxed_str())),
            )
        };
        w.engine.acquire(&mut w.task, &a, Acquire::exclusive(), sa);
        w.engine.acquire(&mut w.task, &b, Acquire::exclusive(), sb);
        assert_eq!(sites(&w), vec![sa, sb]);
        w.unlock(&b);
        w.unlock(&a);
    }
    let here = Site::caller();
    w.engine
        .acquire(&mut w.task, &a, Acquire::exclusive(), here);
    assert_eq!(sites(&w), vec![here]);
}
