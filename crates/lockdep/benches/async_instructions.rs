//! Instructions per iteration of async code, counted by callgrind (independent of machine load):
//! the `async_overhead` workloads, raw against lockdep, in one binary.
//!
//! `cargo bench -p lockdep --features tokio --bench async_instructions` runs this binary under
//! `valgrind --tool=callgrind` twice per loop (N and 2N iterations) and prints the difference per
//! iteration, so start-up, the first (slow-path) acquisitions and exit cancel out. Loops:
//!
//! - `mutex`: lock and unlock an uncontended tokio mutex, awaited in a tracked task on a
//!   current-thread runtime: `tokio::sync::Mutex` (raw) against `lockdep::tokio::Mutex`;
//! - `poll`: one poll of a future that is always `Pending`, plain (raw) against tracked.

use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use lockdep::future::tracked;

#[path = "support/callgrind.rs"]
mod callgrind;

const LOOPS: [&str; 2] = ["mutex", "poll"];
const N: u64 = 100_000;

struct Pending;

impl Future for Pending {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn polls<F: Future>(fut: F, n: u64) {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    for _ in 0..n {
        let _ = black_box(fut.as_mut().poll(&mut cx));
    }
}

fn run_loop(name: &str, n: u64, raw: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    match (name, raw) {
        ("mutex", true) => {
            let m = tokio::sync::Mutex::new(0u64);
            rt.block_on(tracked(async {
                for _ in 0..n {
                    *black_box(&m).lock().await += 1;
                }
            }));
        }
        ("mutex", false) => {
            let m = lockdep::tokio::Mutex::new(0u64);
            rt.block_on(tracked(async {
                for _ in 0..n + 4 {
                    *black_box(&m).lock().await += 1;
                }
            }));
        }
        (_, true) => polls(Pending, n),
        (_, false) => polls(tracked(Pending), n + 4),
    }
}

fn main() {
    callgrind::main(
        "tokio mutex in a tracked task, tracked poll",
        "raw",
        &LOOPS,
        N,
        run_loop,
    );
}
