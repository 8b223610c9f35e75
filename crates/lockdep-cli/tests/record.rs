//! Recording across processes and `lockdep check`/`graph`/views over the recordings.
//!
//! The children are this test binary itself, run with `--exact child_*` and
//! `LOCKDEP_TEST_ROLE` set: the `child_*` tests do nothing without it. Each child records into
//! its own file through `LOCKDEP_RECORD`, as any test process under `cargo nextest` would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lockdep::record;
use lockdep::{LockClassKey, Mutex};

static A: Mutex<u32> = Mutex::new(0);
static B: Mutex<u32> = Mutex::new(0);

fn role() -> Option<String> {
    std::env::var("LOCKDEP_TEST_ROLE").ok()
}

// ===== the children =====

#[test]
fn child_ab() {
    if role().as_deref() != Some("ab") {
        return;
    }
    let reports = lockdep::ReportCollector::new();
    let _a = A.lock();
    let _b = B.lock();
    assert!(reports.reports().is_empty());
}

#[test]
fn child_ba() {
    if role().as_deref() != Some("ba") {
        return;
    }
    let reports = lockdep::ReportCollector::new();
    let _b = B.lock();
    let _a = A.lock();
    assert!(reports.reports().is_empty(), "B then A alone is no cycle");
}

/// Records a new dependency `A -> kill-N` per round and says so on stdout once the lock call
/// returned, until it is killed.
#[test]
fn child_kill() {
    if role().as_deref() != Some("kill") {
        return;
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for i in 0..100_000u32 {
        let m = Mutex::with_key(0u32, LockClassKey::new_dynamic(format!("kill-{i}")));
        {
            let _a = A.lock();
            let _m = m.lock();
        }
        let _ = writeln!(out, "{i}");
        let _ = out.flush();
    }
}

// ===== helpers =====

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lockdep-record-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn child(role: &str, test: &str, dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("LOCKDEP_TEST_ROLE", role)
        .env("LOCKDEP_RECORD", dir)
        .env_remove("LOCKDEP");
    c
}

fn run_child(role: &str, test: &str, dir: &Path) -> u32 {
    let mut c = child(role, test, dir);
    let ch = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = ch.id();
    let out = ch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child {role} failed: {err}");
    assert!(
        !err.contains("possible circular locking dependency"),
        "neither process reports alone: {err}"
    );
    pid
}

fn lockdep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockdep"))
        .args(args)
        .output()
        .unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ===== the bars =====

#[test]
fn an_inversion_split_over_two_processes_is_found() {
    if role().is_some() {
        return;
    }
    let dir = scratch("two");
    let pid_ab = run_child("ab", "child_ab", &dir);
    let pid_ba = run_child("ba", "child_ba", &dir);
    let recs = files(&dir);
    assert_eq!(recs.len(), 2, "one recording per process: {recs:?}");

    // Alone, each recording has no cycle.
    for f in &recs {
        let out = lockdep(&["check", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        assert!(text(&out.stdout).starts_with("0 cycles"));
    }

    // Together they do, and the report names both processes and tests.
    let out = lockdep(&["check", dir.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        stdout
            .matches("WARNING: possible circular locking dependency detected")
            .count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("[{pid_ab}], test child_ab)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("[{pid_ba}], test child_ba)")),
        "{stdout}"
    );
    assert!(stdout.contains("1 cycle in "), "{stdout}");
    assert!(
        stdout.contains("found by: child_") && stdout.contains(" (record)"),
        "{stdout}"
    );

    // The same as JSON (docs/json-schema.md).
    let out = lockdep(&["check", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &doc["reports"][0];
    assert_eq!(doc["reports"].as_array().unwrap().len(), 1);
    assert_eq!(r["kind"], "circular");
    let mut tests: Vec<&str> = r["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    tests.sort_unstable();
    assert_eq!(tests, ["child_ab", "child_ba"]);
    let mut pids: Vec<u64> = r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    let mut want = vec![u64::from(pid_ab), u64::from(pid_ba)];
    want.sort_unstable();
    assert_eq!(pids, want);
    let edges = r["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[0]["from"], r["classes"][0]["id"]);
    assert_eq!(edges[0]["to"], edges[1]["from"]);
    assert_eq!(edges[1]["to"], edges[0]["from"]);
    assert!(edges.iter().all(|e| e["stack"][0]["function"]
        .as_str()
        .unwrap()
        .contains("child_")));
    assert_eq!(doc["summary"]["processes"], 2);

    // A suppression of exactly this cycle (its two classes, by site) silences it; one naming a
    // third class too does not.
    let sites: Vec<String> = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["site"].as_str().unwrap().to_string())
        .collect();
    let entry = |classes: &[&str]| {
        format!("[[suppress]]\nkind = \"circular\"\nclasses = {classes:?}\nreason = \"test\"\n")
    };
    let sup = dir.join("lockdep-suppress.toml");
    std::fs::write(&sup, entry(&[&sites[0], &sites[1]])).unwrap();
    let out = lockdep(&[
        "check",
        "--suppress",
        sup.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    let silenced = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{silenced}");
    assert!(!silenced.contains("WARNING"), "{silenced}");
    assert!(
        silenced.starts_with("0 cycles (1 suppressed) in "),
        "{silenced}"
    );
    std::fs::write(&sup, entry(&[&sites[0], &sites[1], "third"])).unwrap();
    let out = lockdep(&[
        "check",
        "--suppress",
        sup.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("1 cycle (0 suppressed) in "));
    std::fs::write(
        &sup,
        "[[suppress]]\nkind = \"circular\"\nclasses = [\"*\"]\n",
    )
    .unwrap();
    let out = lockdep(&[
        "check",
        "--suppress",
        sup.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with(&format!("{}:1: ", sup.display())),
        "{}",
        text(&out.stderr)
    );
    let out = lockdep(&["check", "--format", "json", recs[0].to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["reports"], serde_json::json!([]));
    // The stacks of both edges were symbolized in the children.
    assert!(stdout.matches("record::child_").count() >= 2, "{stdout}");

    // The graph shows both classes, the cycle edges in red.
    let svg_path = dir.join("graph.svg");
    let out = lockdep(&[
        "graph",
        "--format",
        "svg",
        "-o",
        svg_path.to_str().unwrap(),
        recs[0].to_str().unwrap(),
        recs[1].to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    let merged = record::Merged::new(
        &recs
            .iter()
            .map(|f| record::read_file(f).unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(merged.classes.len(), 2);
    for c in &merged.classes {
        assert!(
            texts.contains(&c.name.as_str()),
            "{} missing from the SVG",
            c.name
        );
    }
    let cycle_edges = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("edge cycle"))
        .count();
    assert_eq!(cycle_edges, 2);

    let dot = text(&lockdep(&["graph", dir.to_str().unwrap()]).stdout);
    assert!(
        dot.starts_with("digraph lockdep {") && dot.matches("penwidth=2").count() == 2,
        "{dot}"
    );
    let json = text(&lockdep(&["graph", "--format", "json", dir.to_str().unwrap()]).stdout);
    assert!(
        json.contains("\"cycles\": 1") && json.matches("\"cycle\": true").count() == 2,
        "{json}"
    );

    // The /proc views of the merged recordings.
    let classes = text(&lockdep(&["classes", dir.to_str().unwrap()]).stdout);
    assert!(classes.starts_with("all lock classes:\n"), "{classes}");
    assert_eq!(classes.matches(" -> [").count(), 1, "{classes}");
    let stats = text(&lockdep(&["stats", dir.to_str().unwrap()]).stdout);
    assert!(
        stats.starts_with(" lock-classes:                            2 [max: "),
        "{stats}"
    );
    let chains = lockdep(&["chains", dir.to_str().unwrap()]);
    assert!(text(&chains.stdout).starts_with("all lock chains:\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_process_killed_mid_run_keeps_every_record_it_wrote() {
    if role().is_some() {
        return;
    }
    let dir = scratch("kill");
    let mut c = child("kill", "child_kill", &dir);
    let mut ch = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(ch.stdout.take().unwrap()).lines();
    let mut done = Vec::new();
    while done.len() < 200 {
        match lines.next() {
            // libtest's own lines ("running 1 test") are not numbers.
            Some(Ok(l)) => done.extend(l.parse::<u32>().ok()),
            _ => break,
        }
    }
    ch.kill().unwrap(); // SIGKILL
    let status = ch.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    assert_eq!(done.len(), 200, "the child stopped early");
    // Whatever it reported done after the kill was sent is still in the pipe: count it too.
    done.extend(
        lines
            .map_while(Result::ok)
            .filter_map(|l| l.parse::<u32>().ok()),
    );

    let recs = files(&dir);
    assert_eq!(recs.len(), 1);
    let r = record::read_file(&recs[0]).expect("a killed process's recording reads back");
    let name_of: std::collections::HashMap<u64, &str> = r
        .classes
        .iter()
        .map(|c| (c.stable_id, c.name.as_str()))
        .collect();
    let recorded: std::collections::HashSet<&str> = r
        .dependencies
        .iter()
        .filter_map(|d| name_of.get(&d.to).copied())
        .collect();
    for i in &done {
        assert!(
            recorded.contains(format!("kill-{i}").as_str()),
            "dependency {i} was done before the kill but is not in the recording"
        );
    }
    // And `check` accepts it (a torn last record is a warning, not an error).
    let out = lockdep(&["check", recs[0].to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_and_truncated_recordings_are_errors_or_warnings() {
    if role().is_some() {
        return;
    }
    let dir = scratch("corrupt");
    run_child("ab", "child_ab", &dir);
    let f = files(&dir).pop().unwrap();
    let bytes = std::fs::read(&f).unwrap();

    // A torn last record: a warning, and the rest is checked.
    let torn = dir.join("torn.ldrec");
    std::fs::write(&torn, &bytes[..bytes.len() - 3]).unwrap();
    let out = lockdep(&["check", torn.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("torn last record"),
        "{err}"
    );

    // A flipped byte inside: an error naming the file and the offset; exit status 2.
    let bad = dir.join("bad.ldrec");
    let mut b = bytes.clone();
    b[40] ^= 0x40;
    std::fs::write(&bad, &b).unwrap();
    let out = lockdep(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}: byte ", bad.display())), "{err}");

    // Not a recording at all.
    let junk = dir.join("junk.ldrec");
    std::fs::write(&junk, b"hello, world").unwrap();
    let out = lockdep(&["classes", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("byte 0: not a lockdep recording"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

#[test]
fn scenario_files_are_checked_and_dumped() {
    if role().is_some() {
        return;
    }
    let abba = scenarios().join("abba-two-tasks.lockdep");
    let out = lockdep(&["check", abba.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("(first seen in writer/100 of scenario "),
        "{stdout}"
    );
    assert!(
        stdout.contains("(first seen in reader/200 of scenario "),
        "{stdout}"
    );

    let chains = text(&lockdep(&["chains", abba.to_str().unwrap()]).stdout);
    assert!(chains.contains("irq_context: 0\n["), "{chains}");

    let out = lockdep(&["replay", "--dump", abba.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    for view in [
        "/proc/lockdep",
        "/proc/lockdep_chains",
        "/proc/lockdep_stats",
    ] {
        assert!(stdout.contains(&format!("==> {view} <==\n")), "{stdout}");
    }
    assert!(stdout.contains(" -> ["), "{stdout}");
    assert!(stdout.contains(" dependency chains:"), "{stdout}");
}
