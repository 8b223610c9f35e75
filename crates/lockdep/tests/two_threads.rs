//! The founding bar: thread 1 takes A then B and finishes; then thread 2 takes B then A. No
//! thread ever blocks, and the circular report appears with the stack of the A -> B edge from
//! thread 1 and the current stack of thread 2, both naming the user's functions.

#![cfg(not(feature = "disabled"))]

use std::sync::Arc;
use std::thread;

use lockdep::{Mutex, ReportCollector, ReportKind};

struct Shared {
    a: Mutex<u32>,
    b: Mutex<u32>,
}

#[inline(never)]
fn take_a_then_b(s: &Shared) {
    let _a = s.a.lock();
    let _b = s.b.lock();
}

#[inline(never)]
fn take_b_then_a(s: &Shared) {
    let _b = s.b.lock();
    let _a = s.a.lock();
}

fn functions(stack: &lockdep::StackTrace) -> Vec<String> {
    stack.frames().into_iter().map(|f| f.function).collect()
}

#[test]
fn two_threads_that_never_meet_still_get_a_circular_report() {
    let reports = ReportCollector::new();
    let s = Arc::new(Shared {
        a: Mutex::new(0),
        b: Mutex::new(0),
    });
    let a_name = s.a.class_name();

    let s1 = s.clone();
    let t1 = thread::Builder::new()
        .name("first".into())
        .spawn(move || take_a_then_b(&s1))
        .unwrap();
    t1.join().unwrap();

    let s2 = s.clone();
    let t2 = thread::Builder::new()
        .name("second".into())
        .spawn(move || take_b_then_a(&s2))
        .unwrap();
    t2.join().unwrap();

    let found = reports.matching(|r| r.involves(&a_name));
    assert_eq!(found.len(), 1, "{found:#?}");
    let r = &found[0];
    assert_eq!(r.kind, ReportKind::Circular);
    assert_eq!(&*r.task.name, "second");

    // #1: the A -> B edge, recorded by thread 1.
    assert_eq!(r.chain.len(), 2);
    assert_eq!(&*r.chain[0].task.name, "first");
    let edge = functions(&r.chain[0].stack);
    assert!(edge[0].ends_with("take_a_then_b"), "edge stack: {edge:?}");
    assert!(!edge.iter().any(|f| f.contains("take_b_then_a")));

    // #0 and the backtrace: thread 2's current stack.
    let now = functions(r.stack.as_ref().unwrap());
    assert!(now[0].ends_with("take_b_then_a"), "current stack: {now:?}");
    assert!(std::sync::Arc::ptr_eq(
        r.stack.as_ref().unwrap(),
        &r.chain[1].stack
    ));

    let text = r.render();
    assert!(text.contains("second/"), "{text}");
    assert!(text.contains("take_a_then_b+0x"), "{text}");
    assert!(text.contains("take_b_then_a+0x"), "{text}");
    // The held lock and the acquisition site are the user's lines.
    assert!(text.contains("1 lock held by second/"), "{text}");
    assert!(text.contains("two_threads.rs"), "{text}");
}
