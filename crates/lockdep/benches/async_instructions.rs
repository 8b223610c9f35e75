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
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use lockdep::future::tracked;

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
        let name = args.get(i + 1).map(String::as_str).unwrap_or("mutex");
        let n = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(N);
        let raw = args.get(i + 3).is_some_and(|a| a == "raw");
        run_loop(name, n, raw);
        return;
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    println!("instructions per iteration (callgrind)");
    println!(
        "{:<8} {:>12} {:>12} {:>8}",
        "loop", "raw", "lockdep", "ratio"
    );
    for name in LOOPS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match (per_iteration(name, true), per_iteration(name, false)) {
            (Ok(raw), Ok(ours)) => println!(
                "{name:<8} {raw:>12.1} {ours:>12.1} {:>7.2}x",
                ours / raw.max(1.0)
            ),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
}
