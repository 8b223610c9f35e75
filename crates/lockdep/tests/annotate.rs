//! The annotations: the fs_reclaim truth table under both rule sets (through the engine, as the
//! replay and the process-wide API use it), the scopes and guards, priming, might_sleep.

#![cfg(not(feature = "disabled"))]

use lockdep::annotate::{self, reclaim_effect, PrimeStep, Priming, ReclaimEffect, ReclaimMaps};
use lockdep::gfp::*;
use lockdep::{
    lock_class, Acquire, Condvar, Engine, LockClassKey, LockMap, Mutex, Options, ReportCollector,
    ReportKind, RwLock, Site, Task,
};

const BOTH: ReclaimEffect = ReclaimEffect {
    fs_reclaim: true,
    mmu_notifier: true,
};
const MN: ReclaimEffect = ReclaimEffect {
    fs_reclaim: false,
    mmu_notifier: true,
};
const FS: ReclaimEffect = ReclaimEffect {
    fs_reclaim: true,
    mmu_notifier: false,
};
const NOTHING: ReclaimEffect = ReclaimEffect {
    fs_reclaim: false,
    mmu_notifier: false,
};

/// The rows of the reference's table: (mask, task scope flags, current, legacy).
fn truth_table() -> Vec<(&'static str, u32, u32, ReclaimEffect, ReclaimEffect)> {
    vec![
        ("GFP_KERNEL", GFP_KERNEL, 0, BOTH, FS),
        ("GFP_USER", GFP_USER, 0, BOTH, FS),
        ("GFP_NOFS", GFP_NOFS, 0, MN, NOTHING),
        (
            "GFP_KERNEL in nofs",
            GFP_KERNEL,
            PF_MEMALLOC_NOFS,
            MN,
            NOTHING,
        ),
        ("GFP_NOIO", GFP_NOIO, 0, MN, NOTHING),
        (
            "GFP_KERNEL in noio",
            GFP_KERNEL,
            PF_MEMALLOC_NOIO,
            MN,
            NOTHING,
        ),
        ("GFP_NOFS in noio", GFP_NOFS, PF_MEMALLOC_NOIO, MN, NOTHING),
        ("GFP_ATOMIC", GFP_ATOMIC, 0, NOTHING, NOTHING),
        ("GFP_NOWAIT", GFP_NOWAIT, 0, NOTHING, NOTHING),
        (
            "GFP_KERNEL in noreclaim",
            GFP_KERNEL,
            PF_MEMALLOC,
            NOTHING,
            NOTHING,
        ),
        (
            "GFP_NOIO in noreclaim",
            GFP_NOIO,
            PF_MEMALLOC,
            NOTHING,
            NOTHING,
        ),
        (
            "GFP_KERNEL|__GFP_NOLOCKDEP",
            GFP_KERNEL | __GFP_NOLOCKDEP,
            0,
            NOTHING,
            NOTHING,
        ),
        (
            "GFP_NOIO|__GFP_NOLOCKDEP",
            GFP_NOIO | __GFP_NOLOCKDEP,
            0,
            NOTHING,
            NOTHING,
        ),
    ]
}

#[test]
fn the_truth_table_as_a_function() {
    for (row, mask, flags, current, legacy) in truth_table() {
        assert_eq!(
            reclaim_effect(mask, flags, false),
            current,
            "current: {row}"
        );
        assert_eq!(reclaim_effect(mask, flags, true), legacy, "legacy: {row}");
    }
}

/// What the engine really does for one allocation: which maps it touched, seen through the
/// dependencies a held lock gets.
fn observed(legacy: bool, mask: u32, flags: u32) -> ReclaimEffect {
    let engine = Engine::with_options(Options {
        legacy_fs_reclaim: legacy,
        ..Options::default()
    });
    let fs = LockMap::named(LockClassKey::new_dynamic("fs_reclaim"));
    let mn = LockMap::named(LockClassKey::new_dynamic("mmu_notifier"));
    let held = LockMap::named(LockClassKey::new_dynamic("held"));
    let maps = ReclaimMaps {
        fs_reclaim: &fs,
        mmu_notifier: &mn,
    };
    let mut task = Task::new("t", 1);
    for scope in [PF_MEMALLOC, PF_MEMALLOC_NOFS, PF_MEMALLOC_NOIO] {
        if flags & scope != 0 {
            task.memalloc_save(scope);
        }
    }
    let u = Site::Unknown;
    assert!(engine
        .acquire(&mut task, &held, Acquire::exclusive(), u)
        .is_none());
    assert!(engine.might_alloc(&mut task, &maps, mask, u).is_none());
    assert_eq!(task.depth(), 1, "might_alloc leaves nothing held");
    let h = engine.class_of(&mut task, &held, 0);
    let f = engine.class_of(&mut task, &fs, 0);
    let m = engine.class_of(&mut task, &mn, 0);
    ReclaimEffect {
        fs_reclaim: engine.dependency(h, f).is_some(),
        // With fs_reclaim held the notifier map is ordered after it; else after the held lock.
        mmu_notifier: engine.dependency(h, m).is_some() || engine.dependency(f, m).is_some(),
    }
}

#[test]
fn the_truth_table_through_the_engine_under_both_rule_sets() {
    for (row, mask, flags, current, legacy) in truth_table() {
        assert_eq!(observed(false, mask, flags), current, "current: {row}");
        assert_eq!(observed(true, mask, flags), legacy, "legacy: {row}");
    }
}

#[test]
fn fs_reclaim_acquire_holds_only_with_gfp_fs() {
    for legacy in [false, true] {
        let engine = Engine::with_options(Options {
            legacy_fs_reclaim: legacy,
            ..Options::default()
        });
        let (fs, mn) = (LockMap::new(), LockMap::new());
        let maps = ReclaimMaps {
            fs_reclaim: &fs,
            mmu_notifier: &mn,
        };
        let mut t = Task::new("t", 1);
        let u = Site::Unknown;
        assert!(engine
            .fs_reclaim_acquire(&mut t, &maps, GFP_KERNEL, u)
            .is_none());
        assert_eq!(t.depth(), 1);
        assert!(engine
            .fs_reclaim_acquire(&mut t, &maps, GFP_NOFS, u)
            .is_none());
        assert_eq!(t.depth(), 1, "GFP_NOFS holds nothing");
        assert!(engine
            .fs_reclaim_release(&mut t, &maps, GFP_NOFS, u)
            .is_none());
        assert!(engine
            .fs_reclaim_release(&mut t, &maps, GFP_KERNEL, u)
            .is_none());
        assert_eq!(t.depth(), 0);
    }
}

/// The kernel's fs_reclaim selftests (reference 4.7).
#[test]
fn fs_reclaim_selftests() {
    let run = |nofs: bool, inner: u32| {
        let engine = Engine::new();
        let (fs, mn) = (LockMap::new(), LockMap::new());
        let maps = ReclaimMaps {
            fs_reclaim: &fs,
            mmu_notifier: &mn,
        };
        let mut t = Task::new("t", 1);
        let u = Site::Unknown;
        assert!(engine
            .fs_reclaim_acquire(&mut t, &maps, GFP_KERNEL, u)
            .is_none());
        let was = nofs.then(|| t.memalloc_save(PF_MEMALLOC_NOFS));
        let r = engine.might_alloc(&mut t, &maps, inner, u).map(|r| r.kind);
        if let Some(was) = was {
            t.memalloc_restore(PF_MEMALLOC_NOFS, was);
        }
        assert!(engine
            .fs_reclaim_release(&mut t, &maps, GFP_KERNEL, u)
            .is_none());
        r
    };
    assert_eq!(run(false, GFP_NOFS), None, "correct nesting");
    assert_eq!(
        run(false, GFP_KERNEL),
        Some(ReportKind::Recursive),
        "wrong nesting"
    );
    assert_eq!(run(true, GFP_KERNEL), None, "protected nesting");
}

#[test]
fn scope_guards_nest_and_restore() {
    assert_eq!(annotate::memalloc_flags(), 0);
    {
        let _nofs = annotate::memalloc_nofs();
        assert_eq!(annotate::current_gfp_context(GFP_KERNEL), GFP_NOFS);
        {
            let _noio = annotate::memalloc_noio();
            assert_eq!(annotate::current_gfp_context(GFP_KERNEL), GFP_NOIO);
            {
                let _inner_nofs = annotate::memalloc_nofs();
                let _noreclaim = annotate::memalloc_noreclaim();
                assert_eq!(
                    annotate::memalloc_flags(),
                    PF_MEMALLOC | PF_MEMALLOC_NOFS | PF_MEMALLOC_NOIO
                );
            }
            // The inner nofs scope found nofs set: it leaves it set.
            assert_eq!(
                annotate::memalloc_flags(),
                PF_MEMALLOC_NOFS | PF_MEMALLOC_NOIO
            );
        }
        assert_eq!(annotate::memalloc_flags(), PF_MEMALLOC_NOFS);
    }
    assert_eq!(annotate::memalloc_flags(), 0);
    assert_eq!(annotate::current_gfp_context(GFP_KERNEL), GFP_KERNEL);
}

#[test]
fn a_nofs_scope_keeps_a_shrinker_lock_out_of_reclaim() {
    let reports = ReportCollector::new();
    let lock = Mutex::with_key((), lock_class!("annotate-test shrinker lock"));
    {
        let _reclaim = annotate::fs_reclaim(GFP_KERNEL);
        drop(lock.lock());
    }
    {
        let _nofs = annotate::memalloc_nofs();
        let _l = lock.lock();
        annotate::might_alloc(GFP_KERNEL);
    }
    assert!(reports
        .matching(|r| r.involves(&lock.class_name()))
        .is_empty());
    {
        let _l = lock.lock();
        annotate::might_alloc(GFP_KERNEL);
    }
    let found = reports.matching(|r| r.involves(&lock.class_name()));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ReportKind::Circular);
    assert!(found[0].render().contains("(fs_reclaim){+.+.}-{0:0}"));
}

#[test]
fn a_gfp_noio_allocation_under_a_notifier_lock_is_reported() {
    let reports = ReportCollector::new();
    let lock = Mutex::with_key((), lock_class!("annotate-test notifier lock"));
    {
        let _map = annotate::MMU_NOTIFIER_INVALIDATE_RANGE_START.hold(Acquire::exclusive());
        drop(lock.lock());
    }
    {
        let _l = lock.lock();
        annotate::might_alloc(GFP_ATOMIC);
        annotate::might_alloc(GFP_NOWAIT);
    }
    assert!(reports
        .matching(|r| r.involves(&lock.class_name()))
        .is_empty());
    {
        let _l = lock.lock();
        annotate::might_alloc(GFP_NOIO);
    }
    let found = reports.matching(|r| r.involves(&lock.class_name()));
    assert_eq!(found.len(), 1);
    assert!(found[0]
        .render()
        .contains("(mmu_notifier_invalidate_range_start){+.+.}-{0:0}"));
}

#[test]
fn non_block_sections_and_might_sleep() {
    let reports = ReportCollector::new();
    let sleeping = Mutex::with_key((), lock_class!("annotate-test sleeping"));
    let name = std::thread::current().name().unwrap_or("").to_string();
    let mine = |r: &lockdep::Report| r.task.name.as_ref() == name;
    annotate::might_sleep();
    assert!(reports.matching(mine).is_empty());
    {
        let _outer = annotate::non_block();
        {
            let _inner = annotate::non_block();
        }
        annotate::might_sleep();
        drop(sleeping.lock());
        annotate::might_alloc(GFP_NOWAIT); // does not block
        annotate::might_alloc(GFP_NOIO); // may block
    }
    annotate::might_sleep(); // fine again
    let found = reports.matching(mine);
    assert_eq!(found.len(), 3, "{found:#?}");
    for r in &found {
        assert_eq!(r.kind, ReportKind::SleepInvalidContext);
        let text = r.render();
        assert!(text.contains("BUG: sleeping function called from invalid context at "));
        assert!(text.contains("in_atomic(): 0, irqs_disabled(): 0, non_block: 1, pid: "));
    }
    // Inside fs_reclaim sleeping is allowed.
    {
        let _reclaim = annotate::fs_reclaim(GFP_KERNEL);
        annotate::might_sleep();
    }
    annotate::non_block_end();
    let found = reports.matching(mine);
    assert_eq!(found.len(), 4);
    assert_eq!(found[3].kind, ReportKind::NonBlockImbalance);
}

#[test]
fn a_condvar_wait_in_a_non_blocking_section_is_reported() {
    let reports = ReportCollector::new();
    let m = Mutex::with_key((), lock_class!("annotate-test condvar mutex"));
    let cv = Condvar::new();
    let mut g = m.lock();
    {
        let _nb = annotate::non_block();
        cv.wait_for(&mut g, std::time::Duration::from_millis(1));
    }
    drop(g);
    let found = reports.matching(|r| r.involves(&m.class_name()));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ReportKind::SleepInvalidContext);
}

#[test]
fn prime_teaches_an_order() {
    let reports = ReportCollector::new();
    let a = Mutex::with_key((), lock_class!("annotate-test prime a"));
    let b = RwLock::with_key((), lock_class!("annotate-test prime b"));
    let c = LockMap::named(lock_class!("annotate-test prime c"));
    annotate::prime(&[&a, &b, &c]);
    assert_eq!(lockdep::rt::depth(), 0);
    assert!(reports.matching(|r| r.involves(&a.class_name())).is_empty());
    {
        let _b = b.write();
        let _a = a.lock();
    }
    let found = reports.matching(|r| r.involves(&a.class_name()));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ReportKind::Circular);
}

#[test]
fn priming_with_read_holds_nest_locks_and_reclaim() {
    let engine = Engine::new();
    let (fs, mn) = (LockMap::new(), LockMap::new());
    let maps = ReclaimMaps {
        fs_reclaim: &fs,
        mmu_notifier: &mn,
    };
    let mmap = LockMap::new();
    let ctx = LockMap::new();
    let key = LockClassKey::new_dynamic("resv");
    let (obj1, obj2) = (LockMap::named(key), LockMap::named(key));
    let i_mmap = LockMap::new();
    let mut t = Task::new("boot", 1);
    let priming = Priming::new()
        .read(&mmap)
        .lock(&ctx)
        .nested(&obj1, &ctx)
        .nested(&obj2, &ctx) // same class under the nest lock: no recursion report
        .fs_reclaim(GFP_KERNEL)
        .touch(&i_mmap);
    assert_eq!(priming.steps().len(), 6);
    assert!(priming
        .run_on(&engine, &mut t, &maps, Site::Unknown)
        .is_none());
    assert_eq!(t.depth(), 0);
    let class = |t: &mut Task, m: &LockMap| engine.class_of(t, m, 0);
    let (cm, cc, co, cf, ci, cn) = (
        class(&mut t, &mmap),
        class(&mut t, &ctx),
        class(&mut t, &obj1),
        class(&mut t, &fs),
        class(&mut t, &i_mmap),
        class(&mut t, &mn),
    );
    for (from, to) in [(cm, cc), (cc, co), (co, cf), (cf, ci), (cf, cn)] {
        assert!(engine.dependency(from, to).is_some(), "{from:?} -> {to:?}");
    }
    // A GFP_KERNEL allocation under i_mmap_rwsem now closes a cycle.
    let u = Site::Unknown;
    engine.acquire(&mut t, &i_mmap, Acquire::shared(), u);
    let r = engine.might_alloc(&mut t, &maps, GFP_KERNEL, u);
    assert_eq!(r.map(|r| r.kind), Some(ReportKind::Circular));
    // The steps as data.
    let steps = [PrimeStep::Hold(&mmap, Acquire::shared())];
    let mut t2 = Task::new("t2", 2);
    assert!(engine.prime(&mut t2, &maps, &steps, u).is_none());
}

#[test]
fn the_builtin_maps_print_as_the_kernels() {
    let maps = ReclaimMaps::builtin();
    assert_eq!(maps.fs_reclaim.wait_inner(), lockdep::WaitType::Inv);
    assert_eq!(maps.mmu_notifier.wait_inner(), lockdep::WaitType::Inv);
    let mut t = Task::new("names", 1);
    let e = lockdep::rt::global();
    let f = e.class_of(&mut t, maps.fs_reclaim, 0);
    let m = e.class_of(&mut t, maps.mmu_notifier, 0);
    assert_eq!(&*e.class_info(f).unwrap().name, "fs_reclaim");
    assert_eq!(
        &*e.class_info(m).unwrap().name,
        "mmu_notifier_invalidate_range_start"
    );
}
