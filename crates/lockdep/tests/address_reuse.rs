//! Address reuse of self-keyed locks (`lock_api`'s `INIT`, `Lockdep<R>`'s const constructor):
//! such a lock is classed by its own address, so when it is freed its key is unregistered and
//! its class zapped (the kernel's `lockdep_unregister_key`): a new lock at the same address
//! does not inherit the old one's orders (before, 20 of 20 trials gave a false circular
//! report), short-lived locks do not pile up classes, and a recording keeps the two apart.

#![cfg(not(feature = "disabled"))]

use std::mem::MaybeUninit;

use lockdep::sync::Lockdep;
use lockdep::{Acquire, Engine, LockMap, Mutex, ReportCollector, ReportKind, Site, Task};

/// A `lock_api` mutex made with `INIT`: each instance is its own class, named by its address.
type Own = lock_api::Mutex<Lockdep<parking_lot::RawMutex>, u32>;

#[test]
fn a_new_lock_at_a_freed_address_does_not_inherit_its_orders() {
    let reports = ReportCollector::new();
    let b = Mutex::new(0);
    let b_name = b.class_name();
    // One storage slot: every lock below is made at the same address.
    let mut slot: Box<MaybeUninit<Own>> = Box::new(MaybeUninit::uninit());
    for trial in 0..20 {
        let a = slot.write(Own::new(trial));
        {
            let _a = a.lock();
            let _b = b.lock();
        }
        // SAFETY: `a` was written above and is not used after this.
        unsafe { slot.assume_init_drop() };
        let a2 = slot.write(Own::new(trial));
        {
            let _b = b.lock();
            let _a2 = a2.lock(); // b -> a2: no cycle, the a -> b of the old lock is gone
        }
        // SAFETY: as above.
        unsafe { slot.assume_init_drop() };
    }
    let circular = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&b_name));
    assert!(circular.is_empty(), "{}", circular[0].render());

    // Validation goes on for the new lock: its own inversion is found.
    let a3 = slot.write(Own::new(0));
    {
        let _b = b.lock();
        let _a3 = a3.lock();
    }
    {
        let _a3 = a3.lock();
        let _b = b.lock();
    }
    // SAFETY: as above.
    unsafe { slot.assume_init_drop() };
    let circular = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&b_name));
    assert_eq!(circular.len(), 1);
}

#[test]
fn a_hundred_thousand_short_lived_locks_leave_a_bounded_number_of_classes() {
    let engine = lockdep::rt::global();
    let held = Mutex::new(0);
    let n = 100_000;
    // Every lock at an address of its own (no two share one), each freed before the next is
    // made: only the zapped classes' reuse keeps their number down.
    let mut slots: Vec<MaybeUninit<Own>> = (0..n).map(|_| MaybeUninit::uninit()).collect();
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
            .map_or(0, |pages| pages * 4096)
    };
    let classes = engine.classes().len();
    let deps = engine.stats().dependencies;
    let before = rss();
    let start = std::time::Instant::now();
    for (i, slot) in slots.iter_mut().enumerate() {
        let m = slot.write(Own::new(i as u32));
        {
            let _h = held.lock();
            *m.lock() += 1; // a new dependency held -> m each time
        }
        // SAFETY: written just above, not used after this.
        unsafe { slot.assume_init_drop() };
    }
    let took = start.elapsed();
    let grown = engine.classes().len() - classes;
    let deps_grown = engine.stats().dependencies.saturating_sub(deps);
    println!(
        "{n} short-lived locks at distinct addresses: {took:?}, {grown} more classes, \
         {deps_grown} more dependencies, {} zapped, resident set {} KiB more",
        engine.stats().zapped_classes,
        rss().saturating_sub(before) / 1024
    );
    // Other tests of this binary run alongside; their locks are few.
    assert!(grown < 1_000, "{grown} classes");
    assert!(deps_grown < 1_000, "{deps_grown} dependencies");
}

#[test]
fn a_recording_keeps_the_old_and_the_new_lock_apart() {
    let rec = lockdep::record::Recorder::in_memory();
    let engine = Engine::with_observer(Default::default(), Box::new(rec.clone()));
    let mut t = Task::new("t", 1);
    let b = LockMap::new();
    let mut slot: Box<MaybeUninit<LockMap>> = Box::new(MaybeUninit::uninit());
    let take = |t: &mut Task, x: &LockMap, y: &LockMap| {
        assert!(engine
            .acquire(t, x, Acquire::exclusive(), Site::Unknown)
            .is_none());
        assert!(engine
            .acquire(t, y, Acquire::exclusive(), Site::Unknown)
            .is_none());
        engine.release(t, y, Site::Unknown);
        engine.release(t, x, Site::Unknown);
    };
    let a = slot.write(LockMap::self_keyed());
    take(&mut t, a, &b);
    let old = engine.classes().len();
    engine.unregister_instance(a.instance());
    // SAFETY: `a` was written above and is not used after this.
    unsafe { slot.assume_init_drop() };
    let a2 = slot.write(LockMap::self_keyed());
    take(&mut t, &b, a2); // no report: the a -> b edge is gone
                          // SAFETY: as above.
    unsafe { slot.assume_init_drop() };
    assert_eq!(engine.classes().len(), old, "the slot is reused");
    assert!(
        engine.classes()[0].name.ends_with("~2"),
        "{:?}",
        engine.classes()
    );
    assert_eq!(engine.stats().zapped_classes, 1);

    let recording = lockdep::record::read_bytes("memory", &rec.bytes()).unwrap();
    let merged = lockdep::record::Merged::new([&recording]);
    // The old lock, b, and the new lock under a new identity.
    assert_eq!(merged.classes.len(), 3, "{:?}", merged.classes);
    assert_eq!(merged.dependencies.len(), 2);
    let checked = merged.check();
    assert!(
        checked.reports.is_empty(),
        "{}",
        checked.reports[0].render()
    );
}

#[test]
fn a_lock_made_where_a_moved_lock_was_keeps_its_own_class_after_the_moved_one_is_freed() {
    // `old` is classed at address X, then moved out (its class cache goes with it); `here` is
    // made at X, so its first lookup finds the class registered at X: the same class as the
    // moved lock's. Freeing the moved lock zaps that class, and its slot goes to the next
    // self-keyed lock: `here` must not end up sharing a class with that unrelated lock.
    let reports = ReportCollector::new();
    let mut here = Box::new(LockMap::self_keyed());
    here.acquire(Acquire::exclusive());
    here.release();
    let old = std::mem::replace(&mut *here, LockMap::self_keyed());
    here.acquire(Acquire::exclusive());
    here.release();
    drop(old);
    let other = Box::new(LockMap::self_keyed());
    {
        let _h = here.hold(Acquire::exclusive());
        let _o = other.hold(Acquire::exclusive()); // two different locks: no report
    }
    let mine = reports.matching(|r| {
        r.lock
            .as_ref()
            .is_some_and(|l| l.instance == other.instance() || l.instance == here.instance())
    });
    assert!(mine.is_empty(), "{}", mine[0].render());
}

/// A class slot given to a new self-keyed lock is a new class to every thread, not only to the
/// one that looked it up: another thread that validated a chain with the old lock in that slot,
/// and has taken no slow path since, must not take the new lock's chain as seen.
#[test]
fn a_recycled_class_is_new_to_a_thread_that_knew_the_old_one() {
    use std::sync::mpsc;
    let reports = ReportCollector::new();
    let x = std::sync::Arc::new(Mutex::new(0));
    let x_name = x.class_name();
    // `old` lives on the other thread's side: it takes x -> old until told to stop, then the
    // main thread frees `old` and makes `new` (which may get old's class slot), takes
    // new -> x, and hands `new` over; the other thread then takes x -> new.
    let (to_main, from_other) = mpsc::channel::<()>();
    let (to_other, from_main) = mpsc::channel::<&'static Own>();
    let old: &'static mut MaybeUninit<Own> = Box::leak(Box::new(MaybeUninit::uninit()));
    let old_ptr = old.write(Own::new(0)) as *const Own as usize;
    let xo = x.clone();
    let other = std::thread::spawn(move || {
        // SAFETY: the main thread frees `old` only after this thread said it is done with it.
        let old = unsafe { &*(old_ptr as *const Own) };
        for _ in 0..4 {
            let _x = xo.lock();
            let _o = old.lock();
        }
        to_main.send(()).unwrap();
        let new = from_main.recv().unwrap();
        let _x = xo.lock();
        let _n = new.lock();
    });
    from_other.recv().unwrap();
    // SAFETY: written above; the other thread no longer uses it.
    unsafe { old.assume_init_drop() };
    let new: &'static Own = Box::leak(Box::new(Own::new(1)));
    {
        let _n = new.lock();
        let _x = x.lock();
    }
    to_other.send(new).unwrap();
    other.join().unwrap();
    let circular = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&x_name));
    assert_eq!(
        circular.len(),
        1,
        "x -> new closes new -> x: {:?}",
        reports.reports()
    );
}
