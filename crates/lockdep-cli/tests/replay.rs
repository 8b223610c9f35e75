//! Integration tests of `lockdep replay`: the built binary on the bundled scenarios and on the
//! fixtures in `tests/fixtures/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root: paths are given relative to it, so the output is the same everywhere.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const FIXTURES: &str = "crates/lockdep-cli/tests/fixtures";

fn lockdep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockdep"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the lockdep binary runs")
}

fn replay(paths: &[&str]) -> (i32, String, String) {
    let mut args = vec!["replay"];
    args.extend_from_slice(paths);
    let out = lockdep(&args);
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn the_bundled_scenarios_all_pass() {
    let (code, out, err) = replay(&["scenarios"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.is_empty(), "{err}");
    let last = last_line(&out);
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(passed >= 12, "{last}");
    for case in [
        "ABBA",
        "ABBCCA",
        "ABCABC",
        "ABBCCDDA",
        "ABCDBDDA",
        "ABCDBCDA",
        "AA",
        "AA-nested",
        "trylock-inversion",
        "out-of-order-unlock",
        "double-unlock",
        "abba-two-tasks",
    ] {
        assert!(
            out.lines().any(|l| l == format!("case {case}: ok")),
            "no `case {case}: ok` in\n{out}"
        );
    }
}

#[test]
fn a_circular_report_reads_like_the_kernels() {
    let (code, out, _) = replay(&["scenarios/selftest-circular.lockdep"]);
    assert_eq!(code, 0);
    let abba = out
        .split("case ABBA: ok")
        .next()
        .expect("the ABBA report comes first");
    for line in [
        "======================================================",
        "WARNING: possible circular locking dependency detected",
        "main/1 is trying to acquire lock:",
        "ffff888010000080 (A){+.+.}-{3:3}, at: scenarios/selftest-circular.lockdep:15",
        "but task is already holding lock:",
        "ffff8880100000c0 (B){+.+.}-{3:3}, at: scenarios/selftest-circular.lockdep:14",
        "which lock already depends on the new lock.",
        "the existing dependency chain (in reverse order) is:",
        "-> #1 (B){+.+.}-{3:3}:",
        "-> #0 (A){+.+.}-{3:3}:",
        " Possible unsafe locking scenario:",
        " *** DEADLOCK ***",
        "1 lock held by main/1:",
        "stack backtrace:",
    ] {
        assert!(
            abba.lines().any(|l| l == line),
            "missing {line:?} in\n{abba}"
        );
    }
}

#[test]
fn reports_show_simulated_stacks() {
    let (code, out, _) = replay(&["scenarios/abba-two-tasks.lockdep"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("reader/200 is trying to acquire lock:"),
        "{out}"
    );
    assert!(out.contains("(&dir->lock){+.+.}-{3:3}, at: lookup_parent\n"));
    // The existing dependency was made by the writer; the new one by the reader.
    assert!(out.contains("-> #1 (&inode->lock){+.+.}-{3:3}:\n"));
    let writer = out.find("lock_inode").expect("writer's stack");
    let reader = out.find("lookup_parent").expect("reader's stack");
    assert!(out[writer..].contains("vfs_rename") && out[reader..].contains("sys_stat"));
    assert!(out.contains("Call Trace:\n lookup_parent\n vfs_getattr\n sys_stat\n"));
}

#[test]
fn replay_is_reproducible() {
    let one = replay(&["scenarios"]);
    let two = replay(&["scenarios"]);
    assert_eq!(one, two);
}

#[test]
fn failing_cases_exit_one_and_say_why() {
    let file = format!("{FIXTURES}/failing.lockdep");
    let (code, out, err) = replay(&[&file]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.is_empty(), "{err}");
    let verdicts: Vec<&str> = out.lines().filter(|l| l.starts_with("case ")).collect();
    assert_eq!(
        verdicts,
        [
            "case passes: ok",
            "case expects-a-cycle-that-is-not-there: FAILED (expected [circular], got [])",
            "case expects-nothing-but-unlocks-twice: FAILED (expected [], got [bad_unlock])",
        ]
    );
    assert!(out.contains("WARNING: bad unlock balance detected!"));
    assert_eq!(last_line(&out), "1 passed, 2 failed");
}

/// Each malformed fixture: the line of its error and a part of the message.
const MALFORMED: [(&str, usize, &str); 14] = [
    ("unknown-statement", 9, "unknown statement `frobnicate`"),
    ("argument-count", 9, "wrong number of arguments to `unlock`"),
    ("bad-name", 8, "bad instance `B$`"),
    ("undeclared", 9, "undeclared instance `C`"),
    ("declared-twice", 9, "instance `B` is already declared"),
    (
        "class-type",
        9,
        "class `cls` is a mutex (line 8), not a spin",
    ),
    ("bad-subclass", 9, "bad subclass `8`"),
    ("wait-type", 8, "unknown wait type `sleepy`"),
    ("option", 8, "unknown option `turbo`"),
    ("pid", 8, "bad pid `abc`"),
    ("expect-kind", 8, "unknown report kind `deadlock`"),
    ("gfp-flag", 8, "unknown allocation flag `GFP_BOGUS`"),
    ("ret-empty", 10, "`ret` with an empty call stack"),
    (
        "restore-without-save",
        10,
        "`memalloc_nofs_restore` without a matching `memalloc_nofs_save` in task `other`",
    ),
];

#[test]
fn malformed_files_exit_two_and_replay_nothing() {
    for (name, line, message) in MALFORMED {
        let file = format!("{FIXTURES}/malformed/{name}.lockdep");
        let (code, out, err) = replay(&[&file]);
        assert_eq!(code, 2, "{name}: stdout:\n{out}\nstderr:\n{err}");
        let prefix = format!("{file}:{line}: ");
        assert!(
            err.starts_with(&prefix),
            "{name}: {err:?} should start with {prefix:?}"
        );
        assert!(
            err.contains(message),
            "{name}: {err:?} should contain {message:?}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: one error line: {err:?}");
        // The file's first case is fine, but nothing of a malformed file runs.
        assert_eq!(out, "0 passed, 0 failed\n", "{name}");
    }
}

#[test]
fn a_malformed_file_does_not_stop_the_others() {
    let bad = format!("{FIXTURES}/malformed/undeclared.lockdep");
    let good = format!("{FIXTURES}/failing.lockdep");
    let (code, out, err) = replay(&[&bad, "scenarios/selftest-recursive.lockdep", &good]);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{bad}:9: ")), "{err}");
    assert!(out.contains("case AA: ok\n"));
    assert!(!out.contains("case good"));
    assert_eq!(last_line(&out), "3 passed, 2 failed");
}

#[test]
fn directories_are_searched_recursively_in_sorted_order() {
    let (code, out, err) = replay(&[&format!("{FIXTURES}/tree")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "case tree-a: ok\ncase tree-b: ok\ncase tree-sub-c: ok\n3 passed, 0 failed\n"
    );
}

#[test]
fn unreadable_paths_and_bad_usage_are_errors() {
    let (code, out, err) = replay(&["no/such/file.lockdep"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("no/such/file.lockdep: "), "{err}");
    assert_eq!(out, "0 passed, 0 failed\n");

    let out = lockdep(&["replay"]);
    assert_eq!(out.status.code(), Some(2), "a file is required");
    let out = lockdep(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}
