//! The lock-depth limit (the kernel's `MAX_LOCK_DEPTH`): a task nesting more locks than the
//! validator tracks gets one clear report, the locks keep working, and memory stays bounded
//! (without a limit every level stores a chain as long as itself: 3·10^4 nested locks took
//! 1.8 GB).

#![cfg(not(feature = "disabled"))]

use std::time::{Duration, Instant};

use lockdep::sync::Lockdep;
use lockdep::{Mutex, ReportCollector, ReportKind, MAX_LOCK_DEPTH};

/// A `lock_api` mutex made with `INIT`: each instance is a class of its own.
type Own = lock_api::Mutex<Lockdep<parking_lot::RawMutex>, u32>;

/// The resident set size, in bytes (Linux), or 0.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn mine(reports: &ReportCollector, thread: &str) -> Vec<lockdep::Report> {
    reports.matching(|r| &*r.task.name == thread)
}

#[test]
fn thirty_thousand_nested_locks_make_one_report_and_bounded_memory() {
    let reports = ReportCollector::new();
    let n = 30_000;
    let locks: Vec<Own> = (0..n).map(Own::new).collect();
    let before = rss();
    let start = Instant::now();
    let t = std::thread::Builder::new()
        .name("deep".into())
        .spawn(move || {
            {
                let guards: Vec<_> = locks.iter().map(|l| l.lock()).collect();
                assert_eq!(lockdep::rt::depth(), MAX_LOCK_DEPTH);
                assert_eq!(guards.iter().map(|g| **g as u64).sum::<u64>(), 449_985_000);
                for g in guards.into_iter().rev() {
                    drop(g);
                }
            }
            assert_eq!(lockdep::rt::depth(), 0);
            // Every lock works, and is free.
            assert!(locks.iter().all(|l| !l.is_locked()));
            // The thread is validated again below the limit: an inversion is found.
            let (a, b) = (Mutex::new(()), Mutex::new(()));
            {
                let _a = a.lock();
                let _b = b.lock();
            }
            {
                let _b = b.lock();
                let _a = a.lock();
            }
        })
        .unwrap();
    t.join().unwrap();
    let took = start.elapsed();
    let grown = rss().saturating_sub(before);
    let kinds: Vec<ReportKind> = mine(&reports, "deep").iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [ReportKind::MaxLockDepth, ReportKind::Circular],
        "one depth report, no bad unlock, and validation goes on"
    );
    let r = &mine(&reports, "deep")[0];
    let text = r.render();
    assert!(text.contains("BUG: MAX_LOCK_DEPTH too low!"), "{text}");
    assert!(text.contains(&format!("max: {MAX_LOCK_DEPTH}!")), "{text}");
    assert_eq!(r.held.len(), MAX_LOCK_DEPTH);
    println!(
        "30000 nested locks: {took:?}, resident set grew {} KiB",
        grown / 1024
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        grown < 256 << 20,
        "the resident set grew {} MiB",
        grown >> 20
    );
}

#[test]
fn releases_past_the_limit_may_come_in_any_order() {
    let reports = ReportCollector::new();
    let locks: Vec<Own> = (0..200).map(Own::new).collect();
    let t = std::thread::Builder::new()
        .name("any-order".into())
        .spawn(move || {
            let mut guards: Vec<_> = locks.iter().map(|l| l.lock()).collect();
            // Oldest first: the tracked ones go while untracked ones are still held.
            while !guards.is_empty() {
                drop(guards.remove(0));
            }
            assert_eq!(lockdep::rt::depth(), 0);
            // A try past the limit is counted too.
            let guards: Vec<_> = locks.iter().map(|l| l.try_lock().unwrap()).collect();
            assert_eq!(lockdep::rt::depth(), MAX_LOCK_DEPTH);
            drop(guards);
            assert_eq!(lockdep::rt::depth(), 0);
            lockdep::check_no_locks_held();
        })
        .unwrap();
    t.join().unwrap();
    let kinds: Vec<ReportKind> = mine(&reports, "any-order").iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [ReportKind::MaxLockDepth]);
}
