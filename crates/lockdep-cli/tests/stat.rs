//! `lockdep stat` over the recordings of processes run with `LOCKDEP_STAT=1 LOCKDEP_RECORD=DIR`.
//!
//! The children are this test binary itself, run with `--exact child_*` and `LOCKDEP_TEST_ROLE`
//! set: the `child_*` tests do nothing without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockdep::{LockClassKey, Mutex};

static HOT: LockClassKey = LockClassKey::new("stat_hot");
static QUIET: LockClassKey = LockClassKey::new("stat_quiet");
static READ_MOSTLY: LockClassKey = LockClassKey::new("stat_read_mostly");

/// Two threads fight over `stat_hot`; `stat_quiet` is taken often by one; `stat_read_mostly`
/// is an rwlock read by both.
#[test]
fn child_stat() {
    if std::env::var("LOCKDEP_TEST_ROLE").as_deref() != Ok("stat") {
        return;
    }
    let hot = Arc::new(Mutex::with_key(0u64, &HOT));
    let rw = Arc::new(lockdep::RwLock::with_key(0u64, &READ_MOSTLY));
    let quiet = Mutex::with_key(0u64, &QUIET);
    let go = Arc::new(AtomicBool::new(false));
    let other = {
        let (hot, rw, go) = (hot.clone(), rw.clone(), go.clone());
        std::thread::spawn(move || {
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            for _ in 0..200 {
                let mut g = hot.lock();
                *g += 1;
                std::hint::black_box(*rw.read());
            }
        })
    };
    {
        let mut g = hot.lock();
        go.store(true, Ordering::Release);
        // Held until the other thread is waiting for it (its contention point is counted
        // before it waits), however loaded the machine.
        while !lockdep::stat::snapshot()
            .class("stat_hot")
            .is_some_and(|c| !c.contention_points.is_empty())
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        *g += 1;
    }
    for _ in 0..200 {
        *hot.lock() += 1;
        std::hint::black_box(*rw.read());
    }
    other.join().unwrap();
    for _ in 0..5_000 {
        *quiet.lock() += 1;
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lockdep-stat-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn record(dir: &Path) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_stat", "--nocapture", "--test-threads=1"])
        .env("LOCKDEP_TEST_ROLE", "stat")
        .env("LOCKDEP_RECORD", dir)
        .env("LOCKDEP_STAT", "1")
        .env_remove("LOCKDEP")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn lockdep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockdep"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn stat_prints_the_kernels_table_with_the_contended_class_first() {
    let dir = scratch("table");
    record(&dir);
    let out = lockdep(&["stat", dir.to_str().unwrap()]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "lock_stat version 0.4");
    for col in [
        "class name",
        "con-bounces",
        "contentions",
        "waittime-min",
        "waittime-max",
        "waittime-total",
        "waittime-avg",
        "acq-bounces",
        "acquisitions",
        "holdtime-min",
        "holdtime-max",
        "holdtime-total",
        "holdtime-avg",
    ] {
        assert!(lines[2].contains(col), "{col} in {}", lines[2]);
    }
    // Sorted by total wait time: the contended class is the first class line.
    let first = lines[5];
    assert!(first.trim_start().starts_with("stat_hot:"), "{s}");
    let cols: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(cols[8], "401", "acquisitions of stat_hot: {first}");
    assert!(cols[2].parse::<u64>().unwrap() > 0, "contentions: {first}");
    // Its contention points are in the child, in this file.
    assert!(
        s.contains("[<contention>] crates/lockdep-cli/tests/stat.rs:"),
        "{s}"
    );
    // The quiet class: no contentions, all its acquisitions; the rwlock on -R only.
    let quiet = lines.iter().find(|l| l.contains("stat_quiet:")).unwrap();
    let q: Vec<&str> = quiet.split_whitespace().collect();
    assert_eq!((q[2], q[8]), ("0", "5000"), "{quiet}");
    assert!(s.contains("stat_read_mostly:") || s.contains("stat_read_mostly-R:"));

    // Another order, and two recordings merged.
    record(&dir);
    let out = lockdep(&["stat", "--sort", "acquisitions", dir.to_str().unwrap()]);
    let s = text(&out.stdout);
    let first = s.lines().nth(5).unwrap();
    assert!(first.trim_start().starts_with("stat_quiet:"), "{s}");
    assert_eq!(first.split_whitespace().nth(8), Some("10000"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stat_json_and_svg() {
    let dir = scratch("formats");
    record(&dir);
    let d = dir.to_str().unwrap();
    let out = lockdep(&["stat", "--format", "json", d]);
    let json = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(json.starts_with("{\"classes\":["));
    assert!(json.contains("\"name\":\"stat_hot\""));
    assert!(json.contains("\"acquisitions\":5000"));

    let svg_path = dir.join("stat.svg");
    let out = lockdep(&[
        "stat",
        "--format",
        "svg",
        "-o",
        svg_path.to_str().unwrap(),
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    // Every class drawn is named, and the recorded classes are all drawn (there are few).
    let groups: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("lock-class"))
        .collect();
    assert!(groups.len() >= 3, "{svg}");
    let mut names = Vec::new();
    for g in &groups {
        let label = g
            .children()
            .find(|n| n.tag_name().name() == "text")
            .and_then(|n| n.text())
            .expect("a class label");
        assert!(json.contains(&format!("\"name\":\"{label}\"")), "{label}");
        assert!(
            g.children()
                .filter(|n| n.tag_name().name() == "rect")
                .count()
                == 2
        );
        names.push(label.to_string());
    }
    for n in ["stat_hot", "stat_quiet", "stat_read_mostly"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
    // The contended class is the first drawn (sorted by wait).
    assert_eq!(names[0], "stat_hot");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stat_on_bad_input_names_the_file() {
    let dir = scratch("bad");
    let f = dir.join("x.ldrec");
    std::fs::write(
        &f,
        b"LOCKDEPR\x01\x00\x00\x00\x00\x00\x00\x00\xA5\x09garbage",
    )
    .unwrap();
    let out = lockdep(&["stat", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("x.ldrec"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
