//! What lock statistics cost, measured so that a loaded machine does not decide the ratio: the
//! workloads of `benches/lock_stat.rs` with statistics off and on, alternated in short rounds,
//! and the *fastest* round of each kept (interference only ever adds time). Prints ns per
//! acquisition and the ratios.
//!
//! - uncontended: lock and unlock one `lockdep::Mutex` on the already-seen path (and a raw
//!   parking_lot mutex for reference), 40 rounds of 300 000;
//! - contended: 4 threads on one mutex, 100 000 acquisitions each around a short critical
//!   section, 12 rounds; the median round is printed too.
//!
//! `cargo bench -p lockdep --bench lock_stat_min`. See `docs/PERFORMANCE.md` for a run.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

const THREADS: u64 = 4;

fn set(on: bool) {
    if on {
        lockdep::stat::enable();
    } else {
        lockdep::stat::disable();
    }
}

fn uncontended() {
    const N: u64 = 300_000;
    let m = lockdep::Mutex::new(0u64);
    let raw = parking_lot::Mutex::new(0u64);
    let mut best = [f64::MAX; 3];
    for _ in 0..40 {
        let t = Instant::now();
        for _ in 0..N {
            *black_box(&raw).lock() += 1;
        }
        best[0] = best[0].min(t.elapsed().as_nanos() as f64 / N as f64);
        for (i, on) in [(1, false), (2, true)] {
            set(on);
            *m.lock() += 1;
            let t = Instant::now();
            for _ in 0..N {
                *black_box(&m).lock() += 1;
            }
            best[i] = best[i].min(t.elapsed().as_nanos() as f64 / N as f64);
        }
    }
    println!(
        "uncontended lock+unlock (fastest round, ns): parking_lot {:.2}, off {:.2}, on {:.2}: on/off {:.2}x",
        best[0],
        best[1],
        best[2],
        best[2] / best[1]
    );
}

/// One round: wall time per acquisition of `THREADS` threads taking `m` `iters` times each.
fn contended_round(m: &Arc<lockdep::Mutex<u64>>, iters: u64) -> f64 {
    let start = Arc::new(Barrier::new(THREADS as usize + 1));
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
    t.elapsed().as_nanos() as f64 / (THREADS * iters) as f64
}

fn contended() {
    let m = Arc::new(lockdep::Mutex::new(0u64));
    let mut rounds = [Vec::new(), Vec::new()];
    for _ in 0..12 {
        for (i, on) in [(0, false), (1, true)] {
            set(on);
            rounds[i].push(contended_round(&m, 100_000));
        }
    }
    for r in &mut rounds {
        r.sort_by(f64::total_cmp);
    }
    let (off, on) = (&rounds[0], &rounds[1]);
    let mid = off.len() / 2;
    println!(
        "{THREADS} threads on one mutex (ns per acquisition): fastest off {:.1}, on {:.1}: throughput {:.0}%; median off {:.1}, on {:.1}: {:.0}%",
        off[0],
        on[0],
        100.0 * off[0] / on[0],
        off[mid],
        on[mid],
        100.0 * off[mid] / on[mid]
    );
    set(true);
    let s = lockdep::stat::snapshot();
    if let Some(c) = s.classes.first() {
        println!(
            "  (with statistics on: {} acquisitions, {} contended, {} acq-bounces)",
            c.write.acquisitions, c.write.wait.nr, c.write.acq_bounces
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument selects a workload by name.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    if run("uncontended") {
        uncontended();
    }
    if run("contended") {
        contended();
    }
    set(false);
}
