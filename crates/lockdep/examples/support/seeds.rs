//! What every seed example shares: its cases, each run in a child process of its own (a fresh
//! process-wide validator per case), with the reports compared against the case's expectation.
//! Included by each `seed_*` example with `#[path = "support/seeds.rs"] mod seeds;`.

#![allow(dead_code)] // each example uses what it needs

use std::process::{exit, Command};
use std::thread;

use lockdep::{ReportCollector, ReportKind};

/// One report: a circular dependency.
pub const CIRCULAR: &[ReportKind] = &[ReportKind::Circular];
/// No report.
pub const NONE: &[ReportKind] = &[];

/// A case: its name, what it runs, and the reports it must produce, in order.
pub type Case = (&'static str, fn(), &'static [ReportKind]);

/// Runs `f` on a new thread called `name` and waits for it.
pub fn on_thread(name: &str, f: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("join");
}

/// Runs one case (`ARGS: NAME`) with the reports collected and compared with its expectation,
/// or every case, each in a child process of its own: a fresh validator per case.
pub fn harness(cases: &[Case]) {
    if let Some(name) = std::env::args().nth(1) {
        let Some((_, run, expected)) = cases.iter().find(|c| c.0 == name) else {
            eprintln!("unknown case {name}");
            exit(2);
        };
        let reports = ReportCollector::new();
        run();
        let got: Vec<&str> = reports.reports().iter().map(|r| r.kind.name()).collect();
        let want: Vec<&str> = expected.iter().map(|k| k.name()).collect();
        if got == want {
            println!("case {name}: ok");
            exit(0);
        }
        println!("case {name}: FAILED (expected {want:?}, got {got:?})");
        exit(1);
    }
    let exe = std::env::current_exe().expect("own path");
    let failed = cases
        .iter()
        .filter(|(name, _, _)| {
            !Command::new(&exe)
                .arg(name)
                .status()
                .is_ok_and(|s| s.success())
        })
        .count();
    println!("{} passed, {} failed", cases.len() - failed, failed);
    exit(i32::from(failed > 0));
}
