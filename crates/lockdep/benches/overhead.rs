//! The cost of validation on the already-seen path, against the raw locks and the peers.
//!
//! Every workload runs on five implementations, in the same run so that ratios compare like with
//! like: `lockdep` (this crate's `Mutex`), `parking_lot` (the raw lock lockdep wraps), `std`,
//! and tracing-mutex 0.3 over parking_lot and over std (its `tracing` modules, traced in every
//! build profile). Workloads:
//!
//! - `uncontended`: lock and unlock one mutex;
//! - `nested_pair`: lock A, lock B, unlock B, unlock A, the chain already validated;
//! - `nested_pair_threads/N`: the same on N threads at once, each with private locks of the same
//!   two classes; the time reported is wall time per iteration of *each* thread, so perfect
//!   scaling keeps it flat as N grows;
//! - `churn`: create two locks, nest them, drop them.
//!
//! `cargo bench -p lockdep --bench overhead -- --warm-up-time 1 --measurement-time 2`. The
//! sizes of the lock types are printed first. See `docs/PERFORMANCE.md` for a run's ratios.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// One lock implementation under test.
trait Lock: Send + Sync + 'static {
    const NAME: &'static str;
    fn make() -> Self;
    fn with<R>(&self, f: impl FnOnce() -> R) -> R;
}

macro_rules! lock_impl {
    ($ty:ident, $name:literal, $inner:ty, $new:expr) => {
        struct $ty($inner);
        impl Lock for $ty {
            const NAME: &'static str = $name;
            // `#[track_caller]`: a lockdep lock's class is the site that called `make`.
            #[track_caller]
            #[inline(always)]
            fn make() -> Self {
                $ty($new)
            }
            #[inline(always)]
            fn with<R>(&self, f: impl FnOnce() -> R) -> R {
                let _g = self.0.lock();
                f()
            }
        }
    };
}

lock_impl!(
    Lockdep,
    "lockdep",
    lockdep::Mutex<u64>,
    lockdep::Mutex::new(0)
);
lock_impl!(
    ParkingLot,
    "parking_lot",
    parking_lot::Mutex<u64>,
    parking_lot::Mutex::new(0)
);
lock_impl!(
    TracingPl,
    "tracing-mutex-pl",
    tracing_mutex::parkinglot::tracing::Mutex<u64>,
    tracing_mutex::parkinglot::tracing::Mutex::new(0)
);

struct Std(std::sync::Mutex<u64>);
impl Lock for Std {
    const NAME: &'static str = "std";
    #[inline(always)]
    fn make() -> Self {
        Std(std::sync::Mutex::new(0))
    }
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.0.lock().unwrap();
        f()
    }
}

struct TracingStd(tracing_mutex::stdsync::tracing::Mutex<u64>);
impl Lock for TracingStd {
    const NAME: &'static str = "tracing-mutex-std";
    #[inline(always)]
    fn make() -> Self {
        TracingStd(tracing_mutex::stdsync::tracing::Mutex::new(0))
    }
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.0.lock().unwrap();
        f()
    }
}

/// Two locks of two classes: for lockdep, the class is the site that calls `make`, so the outer
/// and the inner lock come from two call sites (and every call of one is the same class).
#[inline(never)]
fn make_outer<L: Lock>() -> L {
    L::make()
}
#[inline(never)]
fn make_inner<L: Lock>() -> L {
    L::make()
}

#[inline(always)]
fn nested<L: Lock>(a: &L, b: &L) {
    a.with(|| b.with(|| black_box(())));
}

fn uncontended<L: Lock>(c: &mut Criterion) {
    let a: L = make_outer();
    c.benchmark_group("uncontended")
        .bench_function(L::NAME, |bch| bch.iter(|| a.with(|| black_box(()))));
}

fn nested_pair<L: Lock>(c: &mut Criterion) {
    let (a, b): (L, L) = (make_outer(), make_inner());
    nested(&a, &b); // the chain is validated once, outside the measurement
    c.benchmark_group("nested_pair")
        .bench_function(L::NAME, |bch| bch.iter(|| nested(&a, &b)));
}

fn churn<L: Lock>(c: &mut Criterion) {
    c.benchmark_group("churn").bench_function(L::NAME, |bch| {
        bch.iter(|| {
            let (a, b): (L, L) = (make_outer(), make_inner());
            nested(&a, &b);
            black_box((a, b));
        })
    });
}

/// Wall time for `iters` iterations of the nested pair on each of `threads` threads (private
/// locks, same classes), divided by nothing: the per-thread iteration time is `result / iters`.
fn nested_on_threads<L: Lock>(threads: usize, iters: u64) -> Duration {
    let start = Arc::new(Barrier::new(threads + 1));
    let done = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (start, done) = (start.clone(), done.clone());
            std::thread::spawn(move || {
                let (a, b): (L, L) = (make_outer(), make_inner());
                nested(&a, &b);
                start.wait();
                for _ in 0..iters {
                    nested(&a, &b);
                }
                done.wait();
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    done.wait();
    let elapsed = t.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    elapsed
}

fn thread_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut v = vec![1, 2];
    if cores > 2 {
        v.push(cores);
    }
    v
}

fn nested_pair_threads<L: Lock>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("nested_pair_threads/{}", L::NAME));
    for n in thread_counts() {
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bch, &n| {
            bch.iter_custom(|iters| nested_on_threads::<L>(n, iters))
        });
    }
}

fn all<L: Lock>(c: &mut Criterion) {
    uncontended::<L>(c);
    nested_pair::<L>(c);
    nested_pair_threads::<L>(c);
    churn::<L>(c);
}

fn sizes(_: &mut Criterion) {
    use std::mem::size_of;
    eprintln!(
        "size_of: lockdep::Mutex<u64> {} (parking_lot {}, std {}, tracing-mutex {}); \
         lockdep::RwLock<u64> {} (parking_lot {}); lockdep::LockMap {}; \
         per held lock {}; per thread (lockdep::Task) {}",
        size_of::<lockdep::Mutex<u64>>(),
        size_of::<parking_lot::Mutex<u64>>(),
        size_of::<std::sync::Mutex<u64>>(),
        size_of::<tracing_mutex::parkinglot::tracing::Mutex<u64>>(),
        size_of::<lockdep::RwLock<u64>>(),
        size_of::<parking_lot::RwLock<u64>>(),
        size_of::<lockdep::LockMap>(),
        size_of::<lockdep::HeldLock>(),
        size_of::<lockdep::Task>(),
    );
}

criterion_group!(
    benches,
    sizes,
    all::<ParkingLot>,
    all::<Lockdep>,
    all::<Std>,
    all::<TracingPl>,
    all::<TracingStd>
);
criterion_main!(benches);
