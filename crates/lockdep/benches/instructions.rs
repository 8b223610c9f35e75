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
use std::process::Command;

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

/// Instructions callgrind counts for one run of this binary with `args`.
fn count(args: &[String]) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .args(args)
        .output()
        .map_err(|e| {
            format!("cannot run valgrind ({e}): install valgrind to count instructions")
        })?;
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("Collected :")?;
            rest.trim().parse().ok()
        })
        .ok_or_else(|| format!("no instruction count in valgrind's output:\n{err}"))
}

fn per_iteration(name: &str, raw: bool) -> Result<f64, String> {
    let args = |n: u64| {
        let mut v = vec!["--loop".to_string(), name.to_string(), n.to_string()];
        if raw {
            v.push("raw".into());
        }
        v
    };
    let one = count(&args(N))?;
    let two = count(&args(2 * N))?;
    Ok(two.saturating_sub(one) as f64 / N as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--loop") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("single");
        let n = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(N);
        let raw = args.get(i + 3).is_some_and(|a| a == "raw");
        run_loop(name, n, raw);
        return;
    }
    // `cargo bench` passes `--bench`; a filter selects loops.
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    println!("instructions per iteration (callgrind, already-seen path)");
    println!(
        "{:<8} {:>12} {:>12} {:>8}",
        "loop", "parking_lot", "lockdep", "ratio"
    );
    for name in LOOPS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match (per_iteration(name, true), per_iteration(name, false)) {
            (Ok(raw), Ok(ours)) => {
                println!(
                    "{name:<8} {raw:>12.1} {ours:>12.1} {:>7.2}x",
                    ours / raw.max(1.0)
                )
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
}
