//! The shortest seen path (an acquisition that repeats the entry just popped, see
//! `HeldLock::repeat`) never hides a new dependency: it is taken only for the very acquisition
//! the entry records, on the very stack it was pushed on.

#![cfg(not(feature = "disabled"))]

use std::mem::MaybeUninit;

use lockdep::{LockClassKey, Mutex, ReportCollector, ReportKind};

fn circular_about(c: &ReportCollector, name: &str) -> usize {
    c.matching(|r| r.kind == ReportKind::Circular && r.involves(name))
        .len()
}

/// B's entry, pushed on A and popped, lies just above the top when B is taken again under C
/// (which took A's place): the entry was pushed on another stack, so C -> B is learnt, and
/// the inversion B -> C is reported.
#[test]
fn a_lock_taken_again_under_another_lock_is_validated_again() {
    static A: LockClassKey = LockClassKey::new("repeat.a");
    static B: LockClassKey = LockClassKey::new("repeat.b");
    static C: LockClassKey = LockClassKey::new("repeat.c");
    let c = ReportCollector::new();
    let (a, b, cc) = (
        Mutex::with_key((), &A),
        Mutex::with_key((), &B),
        Mutex::with_key((), &C),
    );
    for _ in 0..4 {
        let _a = a.lock();
        let _b = b.lock();
    }
    {
        let _c = cc.lock();
        let _b = b.lock();
    }
    assert_eq!(circular_about(&c, "repeat.c"), 0);
    {
        let _b = b.lock();
        let _c = cc.lock();
    }
    assert_eq!(
        circular_about(&c, "repeat.c"),
        1,
        "C -> B was learnt under the repeated entry: {:?}",
        c.reports()
    );
}

/// The same, one level up: the entry above the top was pushed on a parent that was itself
/// replaced lower down (A by C at the bottom), though the entry right below it (B) is the same.
#[test]
fn a_repeat_needs_the_whole_stack_below_unchanged() {
    static A: LockClassKey = LockClassKey::new("repeat2.a");
    static B: LockClassKey = LockClassKey::new("repeat2.b");
    static C: LockClassKey = LockClassKey::new("repeat2.c");
    static D: LockClassKey = LockClassKey::new("repeat2.d");
    let c = ReportCollector::new();
    let (a, b, cc, d) = (
        Mutex::with_key((), &A),
        Mutex::with_key((), &B),
        Mutex::with_key((), &C),
        Mutex::with_key((), &D),
    );
    for _ in 0..4 {
        let _a = a.lock();
        let _b = b.lock();
        let _d = d.lock();
    }
    {
        let _c = cc.lock();
        let _b = b.lock();
        let _d = d.lock();
    }
    {
        let _d = d.lock();
        let _c = cc.lock();
    }
    assert_eq!(
        circular_about(&c, "repeat2.d"),
        1,
        "C -> D was learnt: {:?}",
        c.reports()
    );
}

/// A lock made anew at the address of the one the entry records, but of another class: the
/// entry is not that acquisition (its key differs), so the new lock's order is learnt.
#[test]
fn a_new_lock_of_another_class_at_the_same_address_is_validated() {
    static OUTER: LockClassKey = LockClassKey::new("repeat3.outer");
    static FIRST: LockClassKey = LockClassKey::new("repeat3.first");
    static SECOND: LockClassKey = LockClassKey::new("repeat3.second");
    let c = ReportCollector::new();
    let outer = Mutex::with_key((), &OUTER);
    let mut place = Box::new(MaybeUninit::<Mutex<()>>::uninit());
    let inner = place.write(Mutex::with_key((), &FIRST));
    for _ in 0..4 {
        let _o = outer.lock();
        let _i = inner.lock();
    }
    // SAFETY: `place` holds an initialised mutex, not borrowed any more; it is dropped once.
    unsafe { place.assume_init_drop() };
    let inner = place.write(Mutex::with_key((), &SECOND));
    {
        let _o = outer.lock();
        let _i = inner.lock();
    }
    {
        let _i = inner.lock();
        let _o = outer.lock();
    }
    assert_eq!(
        circular_about(&c, "repeat3.second"),
        1,
        "OUTER -> SECOND was learnt: {:?}",
        c.reports()
    );
    // SAFETY: as above.
    unsafe { place.assume_init_drop() };
}

/// A lock made anew at the same address with the same key (lock churn) is the same class: the
/// repeat is right, and the orders it stands for still close cycles.
#[test]
fn a_lock_made_anew_with_the_same_key_keeps_the_class_orders() {
    static OUTER: LockClassKey = LockClassKey::new("repeat4.outer");
    static INNER: LockClassKey = LockClassKey::new("repeat4.inner");
    let c = ReportCollector::new();
    let outer = Mutex::with_key((), &OUTER);
    let mut place = Box::new(MaybeUninit::<Mutex<()>>::uninit());
    for _ in 0..8 {
        let inner = place.write(Mutex::with_key((), &INNER));
        {
            let _o = outer.lock();
            let _i = inner.lock();
        }
        // SAFETY: `place` holds an initialised mutex, not borrowed any more.
        unsafe { place.assume_init_drop() };
    }
    // (Other tests of this binary report cycles of their own, at the same time.)
    let mine = || c.matching(|r| r.involves("repeat4.inner") || r.involves("repeat4.outer"));
    assert!(mine().is_empty(), "{:?}", mine());
    let inner = place.write(Mutex::with_key((), &INNER));
    {
        let _i = inner.lock();
        let _o = outer.lock();
    }
    assert_eq!(circular_about(&c, "repeat4.inner"), 1, "{:?}", mine());
    // SAFETY: as above.
    unsafe { place.assume_init_drop() };
}
