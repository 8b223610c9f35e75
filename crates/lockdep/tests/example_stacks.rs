//! The bundled examples' reports, as a user sees them by default: every stack trimmed to the
//! user's code (no frame of `core`, `std`, `alloc` or `hashbrown`), and with
//! `LOCKDEP_STACK=full` the whole stack.

use std::process::Command;

const EXAMPLES: [&str; 6] = [
    "abba",
    "seed_000_mmu_notifier_reclaim",
    "seed_001_dma_resv_priming",
    "seed_002_non_block",
    "seed_003_invalidate_range_map",
    "seed_004_blockable_mode",
];

/// `cargo run --example NAME` with reports printed; its stderr.
fn run_example(name: &str, full: bool) -> String {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "-p", "lockdep", "--example", name]);
    if cfg!(feature = "send_guard") {
        cmd.args(["--features", "send_guard"]);
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LOCKDEP", "warn")
        .env_remove("LOCKDEP_SUPPRESS");
    if full {
        cmd.env("LOCKDEP_STACK", "full");
    } else {
        cmd.env_remove("LOCKDEP_STACK");
    }
    let out = cmd.output().expect("cargo runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name} failed:\n{err}");
    err
}

/// The frame lines of the reports in `stderr`: the lines under a `Call Trace:`, an `-> #N`
/// entry or an `... at:` heading, up to the next blank line.
fn frames(stderr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_stack = false;
    for line in stderr.lines() {
        let t = line.trim();
        if t.is_empty() {
            in_stack = false;
        } else if t == "Call Trace:" || t.starts_with("-> #") || t.ends_with(" at:") {
            in_stack = true;
        } else if in_stack && line.starts_with(' ') {
            out.push(t);
        } else {
            in_stack = false;
        }
    }
    out
}

fn foreign(frame: &str) -> bool {
    let f = frame.trim_start_matches('<');
    ["core::", "std::", "alloc::", "hashbrown::"]
        .iter()
        .any(|p| f.starts_with(p))
}

#[test]
fn no_report_of_the_examples_shows_a_frame_of_the_standard_library() {
    let mut total = 0;
    for name in EXAMPLES {
        let err = run_example(name, false);
        let frames = frames(&err);
        let bad: Vec<&&str> = frames.iter().filter(|f| foreign(f)).collect();
        assert!(bad.is_empty(), "{name}: {bad:#?}\n{err}");
        total += frames.len();
    }
    // The reports do have stacks, and those are the examples' own functions.
    assert!(total > 20, "only {total} frames in the examples' reports");
}

#[test]
fn lockdep_stack_full_shows_every_frame() {
    let err = run_example("abba", true);
    let frames = frames(&err);
    assert!(frames.iter().any(|f| foreign(f)), "{err}");
    assert!(frames.iter().any(|f| f.starts_with("abba::")), "{err}");
}
