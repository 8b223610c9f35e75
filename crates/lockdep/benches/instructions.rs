//! Instructions per iteration of the already-seen path, counted by callgrind (which does not
//! depend on machine load), for `lockdep::Mutex` against raw `parking_lot::Mutex` in one binary.
//!
//! `cargo bench -p lockdep --bench instructions` runs this binary under
//! `valgrind --tool=callgrind` twice per loop (N and 2N iterations) and prints the difference
//! per iteration, so start-up, the first (slow-path) acquisitions and exit cancel out. With
//! arguments `LOOP N` it just runs the loop (what valgrind runs). Loops:
//!
//! - `single`: lock and unlock one mutex;
//! - `nested`: lock A, lock B, unlock B, unlock A, the chain already validated;
//! - `churn`: make two mutexes, nest them, drop them.
//!
//! The environment is passed through, so `LOCKDEP_RECORD=DIR` or `LOCKDEP_STAT=1` measure
//! those configurations of the same loops.

use std::hint::black_box;

#[path = "support/callgrind.rs"]
mod callgrind;

const LOOPS: [&str; 3] = ["single", "nested", "churn"];
const N: u64 = 100_000;

fn run_loop(name: &str, n: u64, raw: bool) {
    if raw {
        let (a, b) = (parking_lot::Mutex::new(0u64), parking_lot::Mutex::new(0u64));
        match name {
            "single" => (0..n).for_each(|_| *black_box(&a).lock() += 1),
            "nested" => (0..n).for_each(|_| {
                let mut x = black_box(&a).lock();
                let mut y = black_box(&b).lock();
                *x += 1;
                *y += 1;
            }),
            _ => (0..n).for_each(|_| {
                let c = black_box(parking_lot::Mutex::new(0u64));
                let d = black_box(parking_lot::Mutex::new(0u64));
                let _x = c.lock();
                let _y = d.lock();
            }),
        }
        return;
    }
    let (a, b) = (lockdep::Mutex::new(0u64), lockdep::Mutex::new(0u64));
    // The first acquisitions take the slow path and teach the chains; what is counted is the
    // already-seen path.
    for _ in 0..4 {
        let _x = a.lock();
        let _y = b.lock();
    }
    drop(a.lock());
    let churn = |n: u64| {
        (0..n).for_each(|_| {
            let c = black_box(lockdep::Mutex::new(0u64));
            let d = black_box(lockdep::Mutex::new(0u64));
            let _x = c.lock();
            let _y = d.lock();
        })
    };
    churn(4);
    match name {
        "single" => (0..n).for_each(|_| *black_box(&a).lock() += 1),
        "nested" => (0..n).for_each(|_| {
            let mut x = black_box(&a).lock();
            let mut y = black_box(&b).lock();
            *x += 1;
            *y += 1;
        }),
        _ => churn(n),
    }
}

fn main() {
    callgrind::main("already-seen path", "parking_lot", &LOOPS, N, run_loop);
}
