//! The cost of validating async code (the `tokio` feature).
//!
//! - `tokio_mutex_uncontended`: lock and unlock one uncontended mutex, awaited inside one
//!   tracked task on a current-thread runtime: `lockdep::tokio::Mutex` against the raw
//!   `tokio::sync::Mutex`, both in the same tracked task (so the difference is the lock's);
//! - `poll`: one poll of a future that is always `Pending`, plain and wrapped in
//!   `lockdep::future::tracked` (the task switch in and out, and the await rule's check), also
//!   with one async lock held (the check scans the held stack).
//!
//! `cargo bench -p lockdep --features tokio --bench async_overhead -- --warm-up-time 1
//! --measurement-time 2`. See `docs/PERFORMANCE.md` for a run's numbers.

use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use lockdep::future::tracked;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn tokio_mutex(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("tokio_mutex_uncontended");
    g.bench_function("tokio", |b| {
        let m = tokio::sync::Mutex::new(0u64);
        b.iter_custom(|iters| {
            rt.block_on(tracked(async {
                let start = Instant::now();
                for _ in 0..iters {
                    *black_box(&m).lock().await += 1;
                }
                start.elapsed()
            }))
        });
    });
    g.bench_function("lockdep", |b| {
        let m = lockdep::tokio::Mutex::new(0u64);
        b.iter_custom(|iters| {
            rt.block_on(tracked(async {
                let start = Instant::now();
                for _ in 0..iters {
                    *black_box(&m).lock().await += 1;
                }
                start.elapsed()
            }))
        });
    });
    g.finish();
}

/// A future that is never ready.
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

fn polls<F: Future>(fut: F, iters: u64) -> Duration {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let start = Instant::now();
    for _ in 0..iters {
        let _ = black_box(fut.as_mut().poll(&mut cx));
    }
    start.elapsed()
}

fn poll(c: &mut Criterion) {
    let mut g = c.benchmark_group("poll");
    g.bench_function("plain", |b| b.iter_custom(|iters| polls(Pending, iters)));
    g.bench_function("tracked", |b| {
        b.iter_custom(|iters| polls(tracked(Pending), iters))
    });
    g.bench_function("tracked_holding_an_async_lock", |b| {
        let m = Arc::new(lockdep::tokio::Mutex::new(()));
        b.iter_custom(|iters| {
            let m = m.clone();
            polls(
                tracked(async move {
                    let _g = m.lock().await;
                    Pending.await;
                }),
                iters,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, tokio_mutex, poll);
criterion_main!(benches);
