//! The harness the instruction-count benches share: run a loop when called with
//! `--loop NAME N [raw]`; otherwise run this very binary under callgrind at N and 2N iterations
//! of each loop, raw and instrumented, and print the difference per iteration.

use std::process::Command;

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

fn per_iteration(name: &str, n: u64, raw: bool) -> Result<f64, String> {
    let args = |n: u64| {
        let mut v = vec!["--loop".to_string(), name.to_string(), n.to_string()];
        if raw {
            v.push("raw".into());
        }
        v
    };
    let one = count(&args(n))?;
    let two = count(&args(2 * n))?;
    Ok(two.saturating_sub(one) as f64 / n as f64)
}

/// The bench's `main`: `run_loop(name, iterations, raw)` runs one loop.
pub fn main(title: &str, raw_name: &str, loops: &[&str], n: u64, run_loop: fn(&str, u64, bool)) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--loop") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or(loops[0]);
        let iterations = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(n);
        let raw = args.get(i + 3).is_some_and(|a| a == "raw");
        run_loop(name, iterations, raw);
        return;
    }
    // `cargo bench` passes `--bench`; other arguments select loops.
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    println!("instructions per iteration (callgrind, {title})");
    println!(
        "{:<8} {:>12} {:>12} {:>8}",
        "loop", raw_name, "lockdep", "ratio"
    );
    for name in loops {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match (per_iteration(name, n, true), per_iteration(name, n, false)) {
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
