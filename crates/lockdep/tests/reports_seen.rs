//! Reports people see and act on, checked the way a user meets them: a test binary run by the
//! libtest harness *with its output captured* (as `cargo test` runs it).
//!
//! The tests marked `#[ignore]` are the programs under test: each parent test runs this very
//! binary again as a child (`--exact NAME --ignored`, output captured as `cargo test` does) with
//! the environment the case needs, and checks what the child printed.

#![cfg(not(feature = "disabled"))]

use std::path::PathBuf;
use std::process::Command;

use lockdep::{Mutex, ReportCollector, ReportKind};

/// A bank, as a user writes one: two locks made by `Mutex::new` in a constructor.
struct Bank {
    accounts: lockdep::Mutex<Vec<u64>>,
    audit: lockdep::Mutex<Vec<String>>,
}

impl Bank {
    fn new() -> Bank {
        Bank {
            accounts: Mutex::new(vec![100, 100]),
            audit: Mutex::new(Vec::new()),
        }
    }

    fn transfer(&self, from: usize, to: usize, amount: u64) {
        let mut accounts = self.accounts.lock();
        accounts[from] -= amount;
        accounts[to] += amount;
        self.audit.lock().push(format!("{from}->{to}: {amount}"));
    }

    fn report(&self) -> usize {
        let audit = self.audit.lock();
        let accounts = self.accounts.lock(); // INVERSION: audit -> accounts
        audit.len() + accounts.len()
    }
}

/// Runs this test binary's test `name` as a child, as `cargo test` would (output captured),
/// with `env` set; returns (success, stdout + stderr).
fn run_child(name: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", name, "--ignored", "--test-threads", "1"]);
    for v in [
        "LOCKDEP",
        "LOCKDEP_SUPPRESS",
        "LOCKDEP_STACK",
        "LOCKDEP_RECORD",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The line of this file that carries `marker`.
fn line_of(marker: &str) -> usize {
    include_str!("reports_seen.rs")
        .lines()
        .position(|l| l.contains(marker) && !l.contains("line_of("))
        .expect("marker in this file")
        + 1
}

#[test]
#[ignore = "run as a child by reports_show_in_captured_test_output"]
fn child_inversion_in_a_test_thread() {
    let bank = Bank::new();
    bank.transfer(0, 1, 10);
    assert_eq!(bank.report(), 3);
}

#[test]
fn reports_show_in_captured_test_output() {
    let (ok, out) = run_child("child_inversion_in_a_test_thread", &[]);
    assert!(ok, "the default action warns and goes on:\n{out}");
    assert!(
        out.contains("WARNING: possible circular locking dependency detected"),
        "the report is not in the captured run's output:\n{out}"
    );
    // The task is the test's thread, named after the test by the harness.
    assert!(
        out.contains("child_inversion_in_a_test_thread/"),
        "no task line naming the test:\n{out}"
    );
    assert!(out.contains("test result: ok. 1 passed"), "{out}");
}

#[test]
fn lockdep_panic_names_the_tests_own_file_and_line() {
    let (ok, out) = run_child("child_inversion_in_a_test_thread", &[("LOCKDEP", "panic")]);
    assert!(!ok, "LOCKDEP=panic fails the test:\n{out}");
    let here = format!(
        "crates/lockdep/tests/reports_seen.rs:{}",
        line_of("// INVERSION")
    );
    // The panic's location (`panicked at FILE:LINE:COL:`) and its message both name the
    // user's lock call, not the validator.
    let panicked = out
        .lines()
        .find(|l| l.contains("panicked at"))
        .unwrap_or_else(|| panic!("no panic line in:\n{out}"));
    assert!(panicked.contains(&here), "{panicked}\n{out}");
    assert!(!panicked.contains("crates/lockdep/src/"), "{panicked}");
    assert!(
        out.contains(&format!(
            "lockdep: WARNING: possible circular locking dependency detected at {here}"
        )),
        "{out}"
    );
}

#[test]
fn class_names_say_what_the_code_calls_the_lock() {
    let reports = ReportCollector::new();
    let bank = Bank::new();
    bank.transfer(1, 0, 5);
    bank.report();
    let name_a = bank.accounts.class_name();
    let name_b = bank.audit.class_name();
    let mine = reports.matching(|r| r.kind == ReportKind::Circular && r.involves(&name_a));
    assert_eq!(mine.len(), 1, "{name_a}");
    let r = &mine[0];
    let lock = r.lock.as_ref().unwrap();
    let holding = r.holding.as_ref().unwrap();
    assert!(lock.class.name.contains("accounts"), "{}", lock.class.name);
    assert!(
        holding.class.name.contains("audit"),
        "{}",
        holding.class.name
    );
    assert_eq!(lock.class.short_name(), "accounts");
    assert_eq!(holding.class.short_name(), "audit");
    // The site is kept beside the name: `accounts@crates/lockdep/tests/reports_seen.rs:L:C`.
    let site = lock.class.site.as_deref().unwrap();
    assert_eq!(&*lock.class.name, format!("accounts@{site}"));
    assert!(site.starts_with(&format!(
        "crates/lockdep/tests/reports_seen.rs:{}:",
        line_of("accounts: Mutex::new")
    )));
    assert_eq!(name_b, &*holding.class.name);
    // The rendered report names them, and the scenario lines use the short names.
    let text = r.render();
    assert!(text.contains(&format!("({name_a})")), "{text}");
    assert!(text.contains("lock(audit);"), "{text}");
    assert!(text.contains("lock(accounts);"), "{text}");
}

#[test]
fn bindings_and_statics_are_named_too() {
    static STATS: Mutex<u32> = Mutex::new(0);
    static LAZY: std::sync::LazyLock<Mutex<u32>> = std::sync::LazyLock::new(|| Mutex::new(0));
    assert!(
        LAZY.class_name().starts_with("LAZY@"),
        "{}",
        LAZY.class_name()
    );
    let balance = Mutex::new(0u64);
    assert!(
        balance.class_name().starts_with("balance@"),
        "{}",
        balance.class_name()
    );
    assert!(
        STATS.class_name().starts_with("STATS@"),
        "{}",
        STATS.class_name()
    );
}

/// A suppression file for the child below: its first entry silences the bank's inversion,
/// the second matches nothing.
fn suppression_file(with_reason: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "lockdep-reports-seen-{}-{with_reason}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lockdep.toml");
    let reason = if with_reason {
        "reason = \"the bank's report runs before any transfer thread starts\"\n"
    } else {
        ""
    };
    std::fs::write(
        &path,
        format!(
            "# accepted reports\n[[suppress]]\nkind = \"circular\"\nclasses = [\"accounts\", \"*reports_seen.rs:{}:*\"]\n{reason}\n[[suppress]]\nkind = \"recursive\"\nclasses = [\"nothing\"]\nreason = \"stale\"\n",
            line_of("audit: Mutex::new")
        ),
    )
    .unwrap();
    path
}

#[test]
#[ignore = "run as a child by a_suppression_silences_exactly_its_report"]
fn child_suppressed_and_unsuppressed() {
    let reports = ReportCollector::new();
    let bank = Bank::new();
    bank.transfer(0, 1, 1);
    bank.report(); // suppressed
    let other = Mutex::new(0);
    {
        let _o = other.lock();
        let _a = bank.accounts.lock();
    }
    {
        let _a = bank.accounts.lock();
        let _o = other.lock(); // not suppressed: `other` is not in the entry
    }
    let got = reports.reports();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].involves(&other.class_name()));
    assert_eq!(lockdep::rt::suppressed(), 1);
    let s = lockdep::rt::suppressions().expect("the file was loaded");
    assert_eq!(s.hits(), [1, 0]);
    assert_eq!(s.stale().len(), 1);
    assert_eq!(s.stale()[0].kind, ReportKind::Recursive);
}

#[test]
fn a_suppression_silences_exactly_its_report() {
    let file = suppression_file(true);
    let (ok, out) = run_child(
        "child_suppressed_and_unsuppressed",
        &[("LOCKDEP_SUPPRESS", file.to_str().unwrap())],
    );
    assert!(ok, "{out}");
    // One report printed (the other's), not the suppressed one.
    assert_eq!(
        out.matches("WARNING: possible circular locking dependency detected")
            .count(),
        1,
        "{out}"
    );
    assert!(out.contains("lock(other);"), "{out}");
    std::fs::remove_dir_all(file.parent().unwrap()).ok();
}

#[test]
fn a_suppression_without_a_reason_is_an_error_naming_the_file_and_line() {
    let file = suppression_file(false);
    let (_, out) = run_child(
        "child_inversion_in_a_test_thread",
        &[("LOCKDEP_SUPPRESS", file.to_str().unwrap())],
    );
    let want = format!(
        "lockdep: {}:2: suppression entry has no `reason`",
        file.display()
    );
    assert!(out.contains(&want), "no `{want}` in:\n{out}");
    // The file is not used: the report is shown.
    assert!(
        out.contains("WARNING: possible circular locking dependency detected"),
        "{out}"
    );
    std::fs::remove_dir_all(file.parent().unwrap()).ok();
}
