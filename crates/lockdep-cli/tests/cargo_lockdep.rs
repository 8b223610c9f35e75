//! `cargo lockdep test` on real workspaces: two tiny fixture workspaces, written under
//! `CARGO_TARGET_TMPDIR`, depending on the `lockdep` crate by path. One has two test binaries
//! that take `A -> B` and `B -> A` (no process alone sees a cycle); the other takes `A -> B`
//! in both. They share one target directory, so the dependencies are built once (and kept
//! between runs); the build is offline, from the registry cache the workspace's own build filled.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LIB: &str = r#"//! A fixture for cargo lockdep's tests.
pub static A: lockdep::Mutex<u32> = lockdep::Mutex::new(0);
pub static B: lockdep::Mutex<u32> = lockdep::Mutex::new(0);

pub fn a_then_b() {
    let _a = A.lock();
    let _b = B.lock();
}

pub fn b_then_a() {
    let _b = B.lock();
    let _a = A.lock();
}
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-lockdep")
}

/// Writes `text` to `path` unless it already holds it (an unchanged file is not rebuilt).
fn put(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A workspace named `name` whose test binaries are `tests` (file stem, body).
fn workspace(name: &str, tests: &[(&str, &str)]) -> PathBuf {
    let dir = root().join(name);
    let lockdep = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lockdep")
        .canonicalize()
        .unwrap();
    put(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"fixture-{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nlockdep = {{ path = {:?} }}\n\n[workspace]\n",
            lockdep.display().to_string()
        ),
    );
    // The workspace's own lock file: the same versions, all in the registry cache (copied on
    // every run: cargo trims it to the fixture's dependencies).
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    put(&dir.join("src/lib.rs"), LIB);
    for (stem, body) in tests {
        put(&dir.join(format!("tests/{stem}.rs")), body);
    }
    dir
}

fn cargo_lockdep(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cargo-lockdep"));
    c.arg("lockdep")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", root().join("target"))
        .env_remove("LOCKDEP")
        .env_remove("LOCKDEP_RECORD")
        .env_remove("RUSTFLAGS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn nextest_installed() -> bool {
    Command::new(env!("CARGO"))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn an_inversion_between_two_test_binaries_fails_the_run_and_a_clean_suite_passes() {
    let cycle = workspace(
        "cycle",
        &[
            (
                "ab",
                "#[test]\nfn takes_a_then_b() {\n    fixture_cycle::a_then_b();\n}\n",
            ),
            (
                "ba",
                "#[test]\nfn takes_b_then_a() {\n    fixture_cycle::b_then_a();\n}\n",
            ),
        ],
    );
    let clean = workspace(
        "clean",
        &[
            (
                "ab",
                "#[test]\nfn takes_a_then_b() {\n    fixture_clean::a_then_b();\n}\n",
            ),
            (
                "ab_again",
                "#[test]\nfn takes_a_then_b_again() {\n    fixture_clean::a_then_b();\n}\n\n\
                 #[test]\nfn fails_when_asked() {\n    \
                 assert!(std::env::var_os(\"FIXTURE_FAIL\").is_none(), \"asked to fail\");\n}\n",
            ),
        ],
    );

    // The inversion: exit 1, the cycle printed once, with both tests.
    let out = cargo_lockdep(&cycle, &["test", "--offline"], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stdout
            .matches("WARNING: possible circular locking dependency detected")
            .count(),
        1,
        "{stdout}"
    );
    let found_by = stdout
        .lines()
        .find(|l| l.starts_with("found by: "))
        .unwrap_or_else(|| panic!("no `found by` line: {stdout}"));
    assert!(found_by.contains("takes_a_then_b (ab)"), "{found_by}");
    assert!(found_by.contains("takes_b_then_a (ba)"), "{found_by}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary
            .starts_with("cargo lockdep: 1 report (0 suppressed) in 2 classes and 2 dependencies")
            && summary.ends_with("; tests passed"),
        "{summary}"
    );
    let recordings = root().join("target/lockdep");
    assert_eq!(
        std::fs::read_dir(&recordings).unwrap().count(),
        2,
        "one recording per test binary in TARGET/lockdep"
    );

    // The same as JSON: the document alone on stdout.
    let out = cargo_lockdep(&cycle, &["--format", "json", "test", "--offline"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["tests"]["passed"], true);
    let reports = doc["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{doc:#}");
    let r = &reports[0];
    assert_eq!(r["kind"], "circular");
    let mut tests: Vec<&str> = r["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    tests.sort_unstable();
    assert_eq!(tests, ["takes_a_then_b", "takes_b_then_a"]);
    assert_eq!(r["classes"].as_array().unwrap().len(), 2);
    assert!(r["classes"][0]["site"]
        .as_str()
        .unwrap()
        .starts_with("src/lib.rs:"));
    let edges = r["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    for e in edges {
        let frames = e["stack"].as_array().unwrap();
        assert!(
            frames.iter().any(|f| f["function"]
                .as_str()
                .unwrap()
                .starts_with("fixture_cycle::")),
            "{e:#}"
        );
        assert_eq!(e["seen_by"].as_array().unwrap().len(), 1);
    }
    assert_eq!(r["processes"].as_array().unwrap().len(), 2);
    assert_eq!(doc["summary"]["reports"], 1);

    // Suppressed: counted, never printed; the entry that matched nothing is listed as stale.
    put(
        &cycle.join("accepted.toml"),
        "[[suppress]]\nkind = \"circular\"\nclasses = [\"src/lib.rs:2:*\", \"src/lib.rs:3:*\"]\n\
         reason = \"the fixture's inversion, accepted\"\n\n\
         [[suppress]]\nkind = \"circular\"\nclasses = [\"src/lib.rs:2:*\", \"elsewhere\"]\n\
         reason = \"matches nothing\"\n",
    );
    let out = cargo_lockdep(
        &cycle,
        &["--suppress", "accepted.toml", "test", "--offline"],
        &[],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("WARNING"), "{stdout}");
    assert!(
        stdout.contains(
            "accepted.toml:6: stale suppression (matched nothing): circular \
             [src/lib.rs:2:*, elsewhere] — matches nothing\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.lines().last().unwrap().starts_with(
            "cargo lockdep: 0 reports (1 suppressed, 1 stale suppression) in 2 classes"
        ),
        "{stdout}"
    );
    let out = cargo_lockdep(
        &cycle,
        &[
            "--format=json",
            "--suppress=accepted.toml",
            "test",
            "--offline",
        ],
        &[],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["reports"], serde_json::json!([]));
    assert_eq!(doc["summary"]["suppressed"], 1);
    assert_eq!(doc["suppressed"][0]["entry"]["line"], 1);
    assert_eq!(doc["stale_suppressions"][0]["line"], 6);
    // An entry without a reason: an error naming the file and line, and nothing is run.
    put(
        &cycle.join("no-reason.toml"),
        "[[suppress]]\nkind = \"circular\"\nclasses = [\"*\"]\n",
    );
    let out = cargo_lockdep(
        &cycle,
        &["--suppress", "no-reason.toml", "test", "--offline"],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no-reason.toml:1: ") && stderr.contains("reason"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Running"),
        "the tests were not run: {stderr}"
    );

    // The clean suite (run after the other, in the same target directory: the old recordings
    // must have been cleared) passes.
    let out = cargo_lockdep(&clean, &["test", "--offline"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("WARNING"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("cargo lockdep: 0 reports (0 suppressed) in 2 classes and 1 dependencies"),
        "{stdout}"
    );

    // A failing test: cargo's status, and a message that says so.
    let out = cargo_lockdep(&clean, &["test", "--offline"], &[("FIXTURE_FAIL", "1")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stderr}");
    assert!(
        stderr.contains("error: `cargo test` failed (exit status 101)"),
        "{stderr}"
    );
    assert!(text(&out.stdout).ends_with("; tests FAILED\n"));

    // Arguments cargo rejects: the tests never ran.
    let out = cargo_lockdep(&clean, &["test", "--offline", "--no-such-flag"], &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("error: `cargo test` failed"));

    // cargo nextest: one process per test, the same verdict.
    if nextest_installed() {
        let out = cargo_lockdep(&cycle, &["nextest", "--offline"], &[]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{stdout}\n{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("takes_a_then_b (ab)") && stdout.contains("takes_b_then_a (ba)"));
        let out = cargo_lockdep(&clean, &["nextest", "run", "--offline"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    } else {
        eprintln!("cargo nextest is not installed: `cargo lockdep nextest` not exercised");
    }
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-lockdep"))
        .args(["lockdep", "build"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument `build`"));
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-lockdep"))
        .args(["lockdep", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Usage: cargo lockdep [OPTIONS] test"));
}
