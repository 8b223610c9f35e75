//! The cost of a wound/wait lock, uncontended, against a plain lockdep mutex and the raw lock.
//!
//! - `lockdep_mutex`: `lockdep::Mutex` lock and unlock (the already-seen fast path);
//! - `parking_lot`: the raw lock it wraps;
//! - `ww_no_ctx`: `WwMutex::lock` without a context (validated as a plain mutex, but through the
//!   ww mutex's own owner bookkeeping);
//! - `ww_ctx`: `AcquireCtx::lock` of one mutex and its unlock, under a context that stays open
//!   (the nest-lock acquisition, the context's checks and counts);
//! - `ww_transaction`: a whole transaction of one lock: `AcquireCtx::new`, lock, unlock, `fini`.
//!
//! `cargo bench -p lockdep --bench ww -- --warm-up-time 1 --measurement-time 2`; see
//! `docs/PERFORMANCE.md` for a run's ratios.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use lockdep::ww::{AcquireCtx, WwClass, WwKind, WwMutex};

static CLASS: WwClass = WwClass::new(WwKind::WoundWait, "bench_ww_acquire", "bench_ww_mutex");

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("ww_uncontended");
    let plain = lockdep::Mutex::new(0u64);
    g.bench_function("lockdep_mutex", |b| {
        b.iter(|| {
            *plain.lock() += 1;
        })
    });
    let raw = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot", |b| {
        b.iter(|| {
            *raw.lock() += 1;
        })
    });
    let ww = WwMutex::new(&CLASS, 0u64);
    g.bench_function("ww_no_ctx", |b| {
        b.iter(|| {
            *ww.lock() += 1;
        })
    });
    {
        let ctx = AcquireCtx::new(&CLASS);
        g.bench_function("ww_ctx", |b| {
            b.iter(|| {
                *ctx.lock(black_box(&ww)).expect("uncontended") += 1;
            })
        });
    }
    g.bench_function("ww_transaction", |b| {
        b.iter(|| {
            let ctx = AcquireCtx::new(&CLASS);
            *ctx.lock(black_box(&ww)).expect("uncontended") += 1;
            ctx.fini();
        })
    });
    g.finish();
}

criterion_group!(benches, uncontended);
criterion_main!(benches);
