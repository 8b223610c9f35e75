//! A fork while another thread walks or symbolizes a stack *before the process-wide validator
//! exists* (the pthread interposer names a lock by symbolizing its address; `Frame::at` is the
//! public way in): the unwinder's lock has fork handlers of its own, registered at the first
//! walk, so the child finds it free. Before, the child inherited it held and waited the
//! unwinder's 3 s before walking on without it. Its own test binary: nothing here may start
//! the process-wide validator before the forks.

#![cfg(not(feature = "disabled"))]
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/child.rs"]
mod child;
use child::wait_for;

#[test]
fn a_child_forked_during_a_symbolization_finds_the_unwinder_free() {
    let stop = Arc::new(AtomicBool::new(false));
    let walker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let f = lockdep::Frame::at(wait_for as *const () as usize);
                assert!(!f.is_empty());
                let s = lockdep::StackTrace::capture();
                std::hint::black_box(s);
            }
        })
    };
    // The walker's first symbolization reads the binary's debug information.
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        std::thread::sleep(Duration::from_micros(300 + 97 * i));
        let start = Instant::now();
        // SAFETY: the child walks a stack, takes two locks and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let f = lockdep::Frame::at(wait_for as *const () as usize);
            let (a, b) = (lockdep::Mutex::new(()), lockdep::Mutex::new(()));
            {
                let _a = a.lock();
                let _b = b.lock();
            }
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(if f.is_empty() { 1 } else { 0 }) };
        }
        assert!(pid > 0, "fork failed");
        let status = wait_for(pid, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("child {i} hung (killed after 10 s)"));
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        slowest = slowest.max(start.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    walker.join().unwrap();
    println!("20 children: slowest {slowest:?}");
    assert!(
        slowest < Duration::from_millis(2500),
        "a child took {slowest:?}"
    );
}
