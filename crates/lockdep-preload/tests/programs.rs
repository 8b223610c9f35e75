//! The C and C++ programs of `tests/c/`, compiled here with the system compiler (`cc`, `c++`,
//! with `-g`) and run as `lockdep run -- PROG`, each with the kernel's verdict: the reports it
//! must print (in order, by title), how it must end, and the C code its reports must name.
//!
//! The interposer and the `lockdep` binary are built first, with the cargo that runs the tests,
//! into this test's own target directory and profile, so a clean `cargo test --workspace`
//! tests what it just built.

#![cfg(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CIRCULAR: &str = "WARNING: possible circular locking dependency detected";
const RECURSIVE: &str = "WARNING: possible recursive locking detected";
const BAD_UNLOCK: &str = "WARNING: bad unlock balance detected!";
const WAIT_CONTEXT: &str = "BUG: Invalid wait context";

struct Tools {
    lockdep: PathBuf,
    bin_dir: PathBuf,
}

fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        // target/<profile>/deps/programs-HASH
        let exe = std::env::current_exe().expect("the test's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("target");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "lockdep-preload", "-p", "lockdep-cli"])
            .arg("--profile")
            .arg(profile)
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the interposer and lockdep failed"
        );
        let lockdep = profile_dir.join("lockdep");
        assert!(lockdep.is_file(), "{} was not built", lockdep.display());
        assert!(
            profile_dir.join("liblockdep_preload.so").is_file(),
            "liblockdep_preload.so was not built next to lockdep"
        );
        let bin_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("preload-programs");
        std::fs::create_dir_all(&bin_dir).expect("a directory for the programs");
        Tools { lockdep, bin_dir }
    })
}

/// Compiles `tests/c/NAME` (with `defines`) into an executable named `out`.
fn compile(name: &str, out: &str, defines: &[&str]) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(name);
    let exe = tools().bin_dir.join(out);
    let cxx = name.ends_with(".cpp");
    let compiler = if cxx { "c++" } else { "cc" };
    if cxx && Command::new(compiler).arg("--version").output().is_err() {
        eprintln!("no C++ compiler (`c++`): {name} not run");
        return None;
    }
    let mut cmd = Command::new(compiler);
    cmd.args(["-g", "-O0", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src);
    if cxx {
        cmd.arg("-std=c++17");
    }
    cmd.args(defines);
    let out = cmd.output().expect("the C compiler runs");
    assert!(
        out.status.success(),
        "{compiler} {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(exe)
}

struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The titles of the reports printed, in order.
    fn reports(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .map(|l| l.trim_start_matches("[ ").trim_end_matches(" ]"))
            .filter(|l| l.starts_with("WARNING: ") || l.starts_with("BUG: "))
            .collect()
    }
}

/// Runs `exe ARGS` under `lockdep run`, killing it after `limit`.
fn run(exe: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut cmd = Command::new(&tools().lockdep);
    cmd.arg("run").arg("--").arg(exe).args(args);
    cmd.env_remove("LOCKDEP").env_remove("LOCKDEP_RECORD");
    cmd.env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lockdep run starts");
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let readers = (
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = readers.1.join().unwrap_or_default();
            panic!(
                "{} did not finish within {limit:?} (hung); stderr:\n{stderr}",
                exe.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: readers.0.join().unwrap_or_default(),
        stderr: readers.1.join().unwrap_or_default(),
    }
}

/// Compiles and runs `name`, which must exit with 0 and print exactly the reports `expected`;
/// every report must name the program's source file (its frames symbolized, the validator's and
/// libc's trimmed).
fn verdict(name: &str, defines: &[&str], expected: &[&str]) -> Option<Run> {
    let out = name.replace('.', "_") + &defines.concat().replace(['-', '='], "_");
    let exe = compile(name, &out, defines)?;
    let r = run(&exe, &[], &[], Duration::from_secs(120));
    assert_eq!(r.reports(), expected, "{name}: reports\n{}", r.stderr);
    assert!(
        r.status.success(),
        "{name}: {:?}\nstdout:\n{}\nstderr:\n{}",
        r.status,
        r.stdout,
        r.stderr
    );
    if !expected.is_empty() {
        let stem = name.split('.').next().unwrap_or(name);
        assert!(
            r.stderr.contains(&format!("/tests/c/{stem}.")),
            "{name}: the report names no line of the program:\n{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("lockdep_preload::") && !r.stderr.contains("__libc_start"),
            "{name}: validator or libc frames were not trimmed:\n{}",
            r.stderr
        );
    }
    Some(r)
}

// ===== the shapes of liblockdep's tests =====

#[test]
fn aa_errorcheck_is_recursive_and_returns_edeadlk() {
    verdict("aa.c", &[], &[RECURSIVE]);
}

#[test]
fn abba_is_circular() {
    let r = verdict("abba.c", &[], &[CIRCULAR]).unwrap();
    // Statically initialised locks are named after their symbols.
    assert!(
        r.stderr.contains("(a){+.+.}") && r.stderr.contains("(b){+.+.}"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("at: lock_unlock_2 ("), "{}", r.stderr);
}

#[test]
fn abba_in_two_threads_is_circular() {
    verdict("abba_2threads.c", &[], &[CIRCULAR]);
}

#[test]
fn abbcca_is_circular() {
    verdict("abbcca.c", &[], &[CIRCULAR]);
}

#[test]
fn abbccdda_is_circular() {
    verdict("abbccdda.c", &[], &[CIRCULAR]);
}

#[test]
fn abcabc_is_circular() {
    verdict("abcabc.c", &[], &[CIRCULAR]);
}

#[test]
fn abcdbcda_is_circular() {
    verdict("abcdbcda.c", &[], &[CIRCULAR]);
}

#[test]
fn abcdbdda_is_circular() {
    verdict("abcdbdda.c", &[], &[CIRCULAR]);
}

#[test]
fn rwlock_write_read_write_is_recursive() {
    verdict("ww.c", &[], &[RECURSIVE]);
}

#[test]
fn unlock_balance_is_reported() {
    verdict("unlock_balance.c", &[], &[BAD_UNLOCK]);
}

// ===== classes, types, condvars, spinlocks =====

#[test]
fn objects_of_one_init_helper_are_one_class() {
    let r = verdict("init_site.c", &[], &[RECURSIVE]).unwrap();
    // The class is named after the init call site.
    assert!(
        r.stderr.contains("(account_new@init_site.c:"),
        "{}",
        r.stderr
    );
}

#[test]
fn static_initialisers_in_two_threads_are_circular() {
    let r = verdict("static_threads.c", &[], &[CIRCULAR]).unwrap();
    assert!(r.stderr.contains("(config_lock)") || r.stderr.contains("(config_lock){"));
    assert!(r.stderr.contains("(log_lock){"), "{}", r.stderr);
}

#[test]
fn cxx_std_mutex_inversion_is_circular() {
    if let Some(r) = verdict("cxx_mutex.cpp", &[], &[CIRCULAR]) {
        assert!(r.stderr.contains("(accounts){"), "{}", r.stderr);
    }
}

#[test]
fn recursive_mutex_relock_is_legal_but_orders_are_checked() {
    verdict("recursive.c", &[], &[CIRCULAR]);
}

#[test]
fn recursive_mutex_nesting_in_one_order_is_fine() {
    verdict("recursive_ok.c", &[], &[]);
}

#[test]
fn errorcheck_relock_and_foreign_unlock_are_reported_with_the_real_errors() {
    verdict("errorcheck.c", &[], &[RECURSIVE, BAD_UNLOCK]);
}

#[test]
fn reader_preferring_rwlock_reads_are_recursive() {
    verdict("rwlock_kind.c", &[], &[]);
}

#[test]
fn writer_preferring_rwlock_reads_are_not() {
    verdict(
        "rwlock_kind.c",
        &["-DWRITER_PREFERRING"],
        &[CIRCULAR, RECURSIVE],
    );
}

#[test]
fn condvar_wait_retaking_its_mutex_under_another_lock_is_circular() {
    verdict("cond_retake.c", &[], &[CIRCULAR]);
}

#[test]
fn condvar_producer_consumer_is_fine() {
    verdict("cond_ok.c", &[], &[]);
}

#[test]
fn mutex_under_spinlock_is_an_invalid_wait_context() {
    verdict("spin_mutex.c", &[], &[WAIT_CONTEXT]);
}

#[test]
fn destroy_and_reinit_at_the_same_sites_is_circular() {
    verdict("destroy_reinit.c", &[], &[CIRCULAR]);
}

#[test]
fn trylock_inversion_is_fine_and_a_failed_trylock_holds_nothing() {
    verdict("trylock_inversion.c", &[], &[]);
}

#[test]
fn eight_threads_churning_two_init_sites_is_fine() {
    verdict("churn.c", &[], &[]);
}

// ===== robustness =====

#[test]
fn fifty_forks_while_another_thread_is_inside_the_validator() {
    let r = verdict("fork.c", &[], &[]).unwrap();
    assert!(r.stdout.contains("50 children exited"), "{}", r.stdout);
}

/// A thread's first lock (before the validator was made at load time, its one-time start)
/// made while another thread is inside `fork` (the program's own prepare handler lets it go):
/// the child locks and exits. The hang this guards against was a child inheriting a one-time
/// initialisation begun by a thread that the copy does not have; its window (the thread inside
/// the initialisation at the instant of the copy) is too short for a test to hit every time, so
/// this one passes without the fix too: it holds the shape, `fork.c`'s fifty forks the load.
#[test]
fn a_fork_during_the_first_lock_of_another_thread_does_not_hang_the_child() {
    let r = verdict("fork_first_use.c", &[], &[]).unwrap();
    assert!(r.stdout.contains("child exited"), "{}", r.stdout);
}

#[test]
fn forked_children_record_into_files_of_their_own() {
    let exe = compile("fork.c", "fork_rec", &[]).unwrap();
    let dir = tools().bin_dir.join("fork-recording");
    let _ = std::fs::remove_dir_all(&dir);
    let r = run(
        &exe,
        &[],
        &[("LOCKDEP_RECORD", dir.to_str().unwrap())],
        Duration::from_secs(120),
    );
    assert!(r.status.success(), "{}", r.stderr);
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 51, "the parent's recording and one per child");
    let check = Command::new(&tools().lockdep)
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn locks_before_main_in_tls_destructors_and_at_exit() {
    verdict("early_late.c", &[], &[CIRCULAR]);
}

#[test]
fn panic_aborts_a_self_deadlock_after_the_report() {
    let exe = compile("aa_normal.c", "aa_normal", &[]).unwrap();
    let r = run(&exe, &[], &[("LOCKDEP", "panic")], Duration::from_secs(60));
    assert_eq!(r.reports(), [RECURSIVE], "{}", r.stderr);
    assert_eq!(r.status.signal(), Some(libc::SIGABRT), "{:?}", r.status);
}

#[test]
fn off_validates_nothing() {
    let exe = compile("abba.c", "abba_off", &[]).unwrap();
    let r = run(&exe, &[], &[("LOCKDEP", "off")], Duration::from_secs(60));
    assert!(r.reports().is_empty(), "{}", r.stderr);
    assert!(r.status.success());
    // Off, nothing is recorded either: the validator the library makes when it loads is made
    // only when it is on.
    let dir = tools().bin_dir.join("off-recording");
    let _ = std::fs::remove_dir_all(&dir);
    let r = run(
        &exe,
        &[],
        &[
            ("LOCKDEP", "off"),
            ("LOCKDEP_RECORD", dir.to_str().unwrap()),
        ],
        Duration::from_secs(60),
    );
    assert!(r.status.success(), "{}", r.stderr);
    let files = std::fs::read_dir(&dir).map_or(0, |d| d.count());
    assert_eq!(files, 0, "a recording was written with LOCKDEP=off");
}

#[test]
fn recordings_of_two_processes_merge_into_one_cycle() {
    let exe = compile("half.c", "half", &[]).unwrap();
    let dir = tools().bin_dir.join("half-recording");
    let _ = std::fs::remove_dir_all(&dir);
    for half in ["ab", "ba"] {
        let r = run(
            &exe,
            &[half],
            &[("LOCKDEP_RECORD", dir.to_str().unwrap())],
            Duration::from_secs(60),
        );
        assert!(r.reports().is_empty(), "{}", r.stderr);
        assert!(r.status.success());
    }
    let check = Command::new(&tools().lockdep)
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert!(
        out.contains(CIRCULAR) && out.contains("inode_lock") && out.contains("journal_lock"),
        "{out}"
    );
}

#[test]
fn a_missing_interposer_is_a_clear_error() {
    let out = Command::new(&tools().lockdep)
        .args(["run", "--preload", "/nonexistent/lib.so", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/lib.so"), "{err}");
}

#[test]
fn the_exit_status_is_the_programs() {
    let out = Command::new(&tools().lockdep)
        .args(["run", "--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
}
