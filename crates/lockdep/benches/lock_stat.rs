//! What lock statistics cost (`lockdep::stat`): the same workloads with statistics off and on,
//! in one run, so that the ratios compare like with like.
//!
//! - `stat_uncontended/{parking_lot,off,on}`: lock and unlock one `lockdep::Mutex` on the
//!   already-seen path (and the raw parking_lot mutex for reference);
//! - `stat_contended/{off,on}`: 4 threads on one mutex, each taking it `iters` times around a
//!   short critical section; the time is the wall time for all of them, so throughput is
//!   `4 * iters / time`.
//!
//! `cargo bench -p lockdep --bench lock_stat -- --warm-up-time 1 --measurement-time 2`. See
//! `docs/PERFORMANCE.md` for a run.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

const THREADS: usize = 4;

fn set(on: bool) {
    if on {
        lockdep::stat::enable();
    } else {
        lockdep::stat::disable();
    }
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("stat_uncontended");
    let raw = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot", |b| b.iter(|| *raw.lock() += 1));
    let m = lockdep::Mutex::new(0u64);
    for (name, on) in [("off", false), ("on", true)] {
        set(on);
        *m.lock() += 1;
        g.bench_function(name, |b| b.iter(|| *m.lock() += 1));
    }
    set(false);
    black_box(lockdep::stat::snapshot());
}

fn contended_run(m: &Arc<lockdep::Mutex<u64>>, iters: u64) -> Duration {
    let start = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (m, start) = (m.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..iters {
                    let mut g = m.lock();
                    *g = black_box(g.wrapping_mul(31).wrapping_add(1));
                }
            })
        })
        .collect();
    let t = Instant::now();
    start.wait();
    for h in handles {
        h.join().unwrap();
    }
    t.elapsed()
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("stat_contended");
    let m = Arc::new(lockdep::Mutex::new(0u64));
    for (name, on) in [("off", false), ("on", true)] {
        set(on);
        g.bench_function(name, |b| b.iter_custom(|iters| contended_run(&m, iters)));
    }
    set(false);
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
