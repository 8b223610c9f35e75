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

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use lockdep::{irq, Mutex, ReportCollector};

/// Counts allocations made inside a declared handler: there must be none.
struct Counting;

thread_local! {
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATED_IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_HANDLER.try_with(Cell::get).unwrap_or(false) {
            ALLOCATED_IN_HANDLER.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as the caller promised.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests of this file install handlers for the same signal: one at a time.
static SERIAL: StdMutex<()> = StdMutex::new(());

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

fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction with a plain handler and an empty mask is valid; the handlers
    // only touch atomics, thread-locals without destructors and a try_lock.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

#[test]
fn a_handler_interrupting_lock_calls_leaves_the_task_consistent() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let heavy = !cfg!(debug_assertions);
    let signals = if heavy { 20_000 } else { 2_000 };
    let collector = ReportCollector::new();
    install(libc::SIGUSR1, on_signal);

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
    // SAFETY: restoring the default disposition.
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_DFL) };
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

static DECLARED_LOCK: Mutex<u64> = lockdep::const_mutex(0);
static DECLARED_HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal_declared(_: libc::c_int) {
    IN_HANDLER.with(|h| h.set(true));
    {
        let _ctx = irq::signal();
        // A blocking lock (a trylock would make no usage: it cannot deadlock against an
        // interrupt). The interrupted thread never holds it, so it never waits here.
        *DECLARED_LOCK.lock() += 1;
    }
    DECLARED_HANDLED.fetch_add(1, Ordering::Relaxed);
    IN_HANDLER.with(|h| h.set(false));
}

/// A handler declared with `irq::signal()` allocates nothing and touches nothing of the thread
/// it interrupts, however often it interrupts its lock calls; what it did is validated
/// afterwards, on a task of its own, as a hardirq: a blocking mutex taken there is reported.
#[test]
fn a_declared_handler_is_validated_afterwards_as_a_hardirq_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let signals = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    let collector = ReportCollector::new();
    install(libc::SIGUSR2, on_signal_declared);
    let a = Mutex::new(0u64);
    let b = Mutex::new(0u64);
    {
        let _x = a.lock();
        let _y = b.lock();
    }
    // The lock's class is known (the program took it before), with the signal unblocked.
    drop(DECLARED_LOCK.lock());

    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            for sent in 0..signals {
                if start.elapsed() > Duration::from_secs(60) {
                    break;
                }
                // SAFETY: the target thread is alive until `stop` is set (it waits for us).
                unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR2) };
                if sent % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            stop.store(true, Ordering::Release);
        });
        while !stop.load(Ordering::Acquire) {
            let mut x = a.lock();
            let mut y = b.lock();
            *y += 1;
            *x += 1;
        }
    });
    // SAFETY: restoring the default disposition.
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
    assert!(
        DECLARED_HANDLED.load(Ordering::Relaxed) > 0,
        "no signal was handled"
    );
    assert_eq!(
        ALLOCATED_IN_HANDLER.load(Ordering::Relaxed),
        0,
        "the declared handler allocated"
    );
    // The next slow-path hook validates what the handlers logged.
    assert_eq!(lockdep::rt::depth(), 0, "a phantom held lock is left");
    let reports = collector.take();
    let titles: Vec<String> = reports.iter().map(|r| r.title()).collect();
    // The kernel's verdict for a sleeping lock taken in a (non-threaded) hardirq, the first
    // check an acquisition makes: reported once, for the handler's own task.
    assert_eq!(titles, ["[ BUG: Invalid wait context ]"]);
    let text = reports[0].to_string();
    assert!(text.contains("(signal handler)"), "{text}");
    assert!(text.contains("signal.rs"), "{text}");
    assert_eq!(irq::signal_unvalidated(), 0);
}
