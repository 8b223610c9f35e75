//! Fork safety under stress (`rt::fork`): 50 forks while four threads are continuously inside
//! the validator — registering classes (new keys, new sites), recording new dependencies into a
//! recording, capturing stacks for reports that a handler renders (symbolization), spawning
//! tracked threads and counting lock statistics, reading a report collector. Every child must take locks, make a new class
//! and a new dependency, render a report of its own, and exit, each within a bounded time: a
//! child that inherited one of the validator's locks held would hang (it is killed after 10 s,
//! which fails the test), and one that inherited the unwinder's lock would wait the unwinder's
//! 3 s before walking on without it (also a failure). Its own test binary: recording, the
//! handler and statistics are process-wide.

#![cfg(not(feature = "disabled"))]
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockdep::{LockClassKey, Mutex};

static RENDERED: AtomicUsize = AtomicUsize::new(0);

/// Collects every report of the test (made before the threads start).
static COLLECTOR: std::sync::LazyLock<lockdep::ReportCollector> =
    std::sync::LazyLock::new(lockdep::ReportCollector::new);

#[path = "support/child.rs"]
mod child;
use child::wait_for;

/// What a child does: a new class and a new dependency (a new pair of keys), an inversion of
/// them (a report, rendered by the handler: stack capture and symbolization), all checked.
/// Returns the exit code.
fn child(i: usize) -> i32 {
    let ka = LockClassKey::new_dynamic(format!("child-{i}-a"));
    let kb = LockClassKey::new_dynamic(format!("child-{i}-b"));
    let (a, b) = (Mutex::with_key(0, ka), Mutex::with_key(0, kb));
    let before = RENDERED.load(Ordering::SeqCst);
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    {
        let _b = b.lock();
        let _a = a.lock();
    }
    let engine = lockdep::rt::global();
    let id = |name: &str| engine.classes().into_iter().find(|c| &*c.name == name);
    let (Some(ca), Some(cb)) = (id(&a.class_name()), id(&b.class_name())) else {
        return 2;
    };
    if engine.dependency(ca.id, cb.id).is_none() {
        return 3;
    }
    if RENDERED.load(Ordering::SeqCst) != before + 1 {
        return 4;
    }
    if lockdep::rt::depth() != 0 {
        return 5;
    }
    0
}

/// One of the busy threads: `kind` picks what it keeps doing.
fn busy(kind: usize, stop: Arc<AtomicBool>) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        match kind {
            // New classes and new dependencies (each recorded, with its stack symbolized).
            0 => {
                let ka = LockClassKey::new_dynamic(format!("busy-{round}-a"));
                let kb = LockClassKey::new_dynamic(format!("busy-{round}-b"));
                let (a, b) = (Mutex::with_key((), ka), Mutex::with_key((), kb));
                let _a = a.lock();
                let _b = b.lock();
            }
            // Reports: an inversion of two new classes each round (stack capture, the
            // handler's rendering).
            1 => {
                let ka = LockClassKey::new_dynamic(format!("inv-{round}-a"));
                let kb = LockClassKey::new_dynamic(format!("inv-{round}-b"));
                let (a, b) = (Mutex::with_key((), ka), Mutex::with_key((), kb));
                {
                    let _a = a.lock();
                    let _b = b.lock();
                }
                let _b = b.lock();
                let _a = a.lock();
            }
            // A collector of every report, read over and over: its lock is held most of the
            // time (a child that inherited it held would hang delivering its own report).
            3 => {
                let n = COLLECTOR.reports().len();
                std::hint::black_box(n);
                if round % 64 == 0 {
                    // Keep the copies short (and the fork's prepare from starving behind them).
                    drop(COLLECTOR.take());
                }
                std::thread::sleep(Duration::from_micros(20));
            }
            // Site-classed locks, a collector, a tracked spawn, contended statistics.
            _ => {
                let collector = lockdep::ReportCollector::new();
                let m = Arc::new(Mutex::new(round));
                let m2 = m.clone();
                let g = m.lock();
                let t = lockdep::thread::spawn(move || *m2.lock() += 1);
                std::thread::sleep(Duration::from_micros(200));
                drop(g);
                t.join().unwrap();
                drop(collector);
                let _ = lockdep::stat::snapshot();
            }
        }
    }
}

#[test]
fn fifty_forks_while_four_threads_are_inside_the_validator() {
    let dir = std::env::temp_dir().join(format!("lockdep-fork-stress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    lockdep::record::record_to(&dir).expect("set before the first lock");
    lockdep::stat::enable();
    lockdep::set_report_handler(|r| {
        let text = r.render();
        assert!(!text.is_empty());
        RENDERED.fetch_add(1, Ordering::SeqCst);
    });

    let stop = Arc::new(AtomicBool::new(false));
    std::sync::LazyLock::force(&COLLECTOR);
    let threads: Vec<_> = (0..4)
        .map(|kind| {
            let stop = stop.clone();
            std::thread::spawn(move || busy(kind, stop))
        })
        .collect();
    // Let every thread get going (the first reports symbolize the binary).
    std::thread::sleep(Duration::from_millis(200));

    let mut slowest = Duration::ZERO;
    let mut slowest_fork = Duration::ZERO;
    let mut total = Duration::ZERO;
    for i in 0..50 {
        std::thread::sleep(Duration::from_micros(500 + 137 * (i as u64 % 11)));
        // The child writes how long it ran (in microseconds) into a pipe.
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let start = Instant::now();
        // SAFETY: the child only uses the validator (whose atfork handlers make that safe,
        // which is what is tested) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let began = Instant::now();
            let code = child(i);
            let us = began.elapsed().as_micros() as u64;
            // SAFETY: writes 8 bytes from a local to the pipe's write end, then ends the child
            // without running the parent's exit handlers.
            unsafe {
                libc::write(fds[1], (&us as *const u64).cast(), 8);
                libc::_exit(code)
            };
        }
        assert!(pid > 0, "fork failed");
        // The fork's own time: the prepare handler waits for the busy threads' locks.
        slowest_fork = slowest_fork.max(start.elapsed());
        let status = wait_for(pid, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("child {i} hung in the validator (killed after 10 s)"));
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child {i} failed: status {status:#x}"
        );
        let mut us = 0u64;
        // SAFETY: reads at most 8 bytes into a local, then closes both ends.
        unsafe {
            libc::read(fds[0], (&mut us as *mut u64).cast(), 8);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let took = Duration::from_micros(us);
        slowest = slowest.max(took);
        total += took;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    println!(
        "50 children: slowest {slowest:?}, mean {:?} (slowest fork call {slowest_fork:?}); {} \
         reports rendered in the parent",
        total / 50,
        RENDERED.load(Ordering::SeqCst)
    );
    // A child that found the unwinder's lock held waits 3 s for it.
    assert!(
        slowest < Duration::from_millis(2500),
        "a child took {slowest:?}"
    );
    // Each child recorded into a file of its own, next to the parent's.
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert!(files >= 51, "{files} recordings");
    let _ = std::fs::remove_dir_all(&dir);
}
