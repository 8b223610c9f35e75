//! Signal handlers (issue: never take the program down). A handler that locks instrumented
//! mutexes while it interrupts the same thread's lock calls must never see or change that
//! thread's task half-way: no phantom held lock, no false report, no hang. A handler that
//! interrupts a push is refused (counted by `lockdep::interrupted_hooks`); one that interrupts
//! user code is validated as usual.
//!
//! Bounded: the interrupted loop runs for a fixed number of signals. `cargo test --release
//! --test signal` is the heavier run CI makes.

#![cfg(not(feature = "disabled"))]
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lockdep::{Mutex, ReportCollector};

static HANDLER_LOCK: Mutex<u64> = lockdep::const_mutex(0);
static HANDLED: AtomicUsize = AtomicUsize::new(0);
static TAKEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::Relaxed);
    // What a handler may do: a try_lock, which never blocks.
    if let Some(mut g) = HANDLER_LOCK.try_lock() {
        *g += 1;
        TAKEN.fetch_add(1, Ordering::Relaxed);
    }
}

fn install(sig: libc::c_int) {
    // SAFETY: a zeroed sigaction with a plain handler and an empty mask is valid; the handler
    // only touches atomics and a try_lock.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

#[test]
fn a_handler_interrupting_lock_calls_leaves_the_task_consistent() {
    let heavy = !cfg!(debug_assertions);
    let signals = if heavy { 20_000 } else { 2_000 };
    let collector = ReportCollector::new();
    install(libc::SIGUSR1);

    let a = Mutex::new(0u64);
    let b = Mutex::new(0u64);
    let c = Mutex::new(0u64);
    // Teach every chain first, the handler's included, so that the loop below runs on the fast
    // path (where an interrupted push would be corrupted) and so does the handler.
    {
        let _x = a.lock();
        let _y = b.lock();
        let _z = c.lock();
    }
    drop(HANDLER_LOCK.lock());

    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut sent = 0;
            let start = Instant::now();
            while sent < signals && start.elapsed() < Duration::from_secs(60) {
                // SAFETY: the target thread is alive until `stop` is set (it waits for us).
                unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR1) };
                sent += 1;
                if sent % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            stop.store(true, Ordering::Release);
        });
        let mut rounds = 0u64;
        while !stop.load(Ordering::Acquire) {
            let mut x = a.lock();
            let mut y = b.lock();
            *y += 1;
            drop(y);
            let mut z = c.lock();
            *z += 1;
            *x += 1;
            drop(z);
            drop(x);
            rounds += 1;
        }
        assert!(rounds > 0);
    });

    assert!(HANDLED.load(Ordering::Relaxed) > 0, "no signal was handled");
    assert_eq!(lockdep::rt::depth(), 0, "a phantom held lock is left");
    let reports = collector.take();
    assert!(
        reports.is_empty(),
        "false reports: {:?}",
        reports.iter().map(|r| r.title()).collect::<Vec<_>>()
    );
    // The loop and the handler still validate: an inversion after all this is caught.
    {
        let _y = b.lock();
        let _x = a.lock();
    }
    assert_eq!(
        collector.take().len(),
        1,
        "the validator stopped validating"
    );
    eprintln!(
        "{} signals handled, {} try_locks taken, {} hooks refused",
        HANDLED.load(Ordering::Relaxed),
        TAKEN.load(Ordering::Relaxed),
        lockdep::interrupted_hooks()
    );
}
