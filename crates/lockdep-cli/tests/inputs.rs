//! How `lockdep check`, `replay` and the other readers treat their inputs: directories with bad
//! entries, links, FIFOs and devices, inputs too large, text that is not UTF-8, inputs that are
//! not there at all, and scenarios whose recordings would not fit a frame.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lockdep-inputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `lockdep ARGS`, killing it (and failing) after 60 s: nothing here may hang.
fn lockdep(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lockdep"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lockdep {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const ABBA: &str = "mutex A\nmutex B\nlock A\nlock B\nunlock B\nunlock A\n\
                    lock B\nlock A\nunlock A\nunlock B\nexpect circular\n";

#[test]
fn check_of_a_scenario_with_200k_nested_calls_reads_its_own_recording() {
    let d = scratch("deep");
    let f = d.join("deep.lockdep");
    let mut t = String::from("mutex A\nmutex B\n");
    for i in 0..200_000 {
        t.push_str(&format!("call drivers::gpu::drm::scheduler::run_job_{i}\n"));
    }
    t.push_str("lock A\nlock B\nunlock B\nunlock A\n");
    std::fs::write(&f, t).unwrap();
    let out = lockdep(&["check", s(&f)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("byte"), "{err}");
    assert!(
        text(&out.stdout).contains("0 cycles"),
        "{}",
        text(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_bad_directory_entry_is_warned_about_and_the_rest_is_read() {
    let d = scratch("bad-entry");
    std::fs::write(d.join("a.lockdep"), "mutex A\nlock A\nunlock A\n").unwrap();
    // An editor's lock file: a dangling link. And a loop of links.
    std::os::unix::fs::symlink("user@host.1234", d.join(".#b.lockdep")).unwrap();
    std::os::unix::fs::symlink("loop.lockdep", d.join("loop.lockdep")).unwrap();
    std::fs::write(d.join("z.lockdep"), ABBA).unwrap();
    for follow in [false, true] {
        let mut args = vec!["check", s(&d)];
        if follow {
            args.push("--follow-links");
        }
        let out = lockdep(&args);
        let err = text(&out.stderr);
        // z.lockdep, after the bad entries, is read: its cycle is found.
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            text(&out.stdout).contains("1 cycle"),
            "{}",
            text(&out.stdout)
        );
        for bad in [".#b.lockdep", "loop.lockdep"] {
            assert!(
                err.contains(&format!("warning: {}: ", d.join(bad).display())),
                "{bad}: {err}"
            );
        }
    }
    let out = lockdep(&["replay", s(&d)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("2 passed, 0 failed\n"));
    let _ = std::fs::remove_dir_all(&d);
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

#[test]
fn fifos_and_devices_are_not_read() {
    let d = scratch("fifo");
    mkfifo(&d.join("a-pipe.ldrec"));
    mkfifo(&d.join("b-pipe.lockdep"));
    std::fs::write(d.join("c.lockdep"), ABBA).unwrap();
    // In a directory: skipped with a warning, the rest is read.
    let out = lockdep(&["check", s(&d)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "warning: {}: not a regular file (a FIFO)",
            d.join("a-pipe.ldrec").display()
        )),
        "{err}"
    );
    let out = lockdep(&["replay", s(&d)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Named: refused, without opening it.
    for cmd in ["check", "replay", "stat"] {
        let fifo = d.join("b-pipe.lockdep");
        let out = lockdep(&[cmd, s(&fifo)]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains(&format!("{}: not a regular file (a FIFO)", fifo.display())),
            "{cmd}: {err}"
        );
    }
    let t = Instant::now();
    let out = lockdep(&["check", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/dev/zero: not a regular file (a character device)"),
        "{}",
        text(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn inputs_over_the_size_limit_are_refused_by_name() {
    let d = scratch("limit");
    for name in ["huge.ldrec", "huge.lockdep"] {
        let f = d.join(name);
        // Sparse: nothing is written.
        std::fs::File::create(&f)
            .unwrap()
            .set_len((1 << 30) + 1)
            .unwrap();
        for cmd in ["check", "replay"] {
            let out = lockdep(&[cmd, s(&f)]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(
                err.contains(&format!(
                    "{}: larger than the input limit of 1073741824 bytes",
                    f.display()
                )),
                "{cmd} {name}: {err}"
            );
        }
        std::fs::remove_file(&f).unwrap();
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn replay_of_text_that_is_not_utf8_names_file_line_and_byte() {
    let d = scratch("utf8");
    let f = d.join("latin1.lockdep");
    std::fs::write(&f, b"mutex A\n# caf\xe9\nlock A\n").unwrap();
    for cmd in ["replay", "check"] {
        let out = lockdep(&[cmd, s(&f)]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "{}:2: not UTF-8 text (byte 13 of the file)",
                f.display()
            )),
            "{cmd}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn nothing_to_read_is_an_error() {
    let d = scratch("empty");
    let out = lockdep(&["check", s(&d)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("warning: {}: no recordings", d.display())),
        "{err}"
    );
    assert!(err.contains("nothing to read"), "{err}");
    // A directory of other files (a mistyped LOCKDEP_RECORD).
    std::fs::write(d.join("notes.txt"), "hello").unwrap();
    for cmd in ["check", "graph", "classes", "stat", "replay"] {
        let out = lockdep(&[cmd, s(&d)]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out.stderr));
    }
    // One good input is enough; the empty directory is still warned about.
    let good = d.join("sub");
    std::fs::create_dir(&good).unwrap();
    std::fs::write(good.join("ok.lockdep"), "mutex A\nlock A\n").unwrap();
    let empty = scratch("empty-too");
    let out = lockdep(&["check", s(&good), s(&empty)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no recordings"));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn links_in_a_directory_are_not_followed_and_foreign_content_is_not_echoed() {
    let outside = scratch("outside");
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "root:x:0:0:TOPSECRET:/root:/bin/bash\nline two\n").unwrap();
    let d = scratch("links");
    std::fs::write(d.join("a.lockdep"), ABBA).unwrap();
    std::os::unix::fs::symlink(&secret, d.join("passwd.lockdep")).unwrap();
    std::os::unix::fs::symlink(&secret, d.join("passwd.ldrec")).unwrap();
    std::os::unix::fs::symlink(&outside, d.join("out")).unwrap();
    let out = lockdep(&["check", s(&d)]);
    let (o, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("TOPSECRET") && !o.contains("TOPSECRET"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "warning: {}: a symbolic link, not followed",
            d.join("passwd.lockdep").display()
        )),
        "{err}"
    );
    // Followed when asked: then it is read, and found not to be a scenario, without echoing it.
    let out = lockdep(&["check", "--follow-links", s(&d)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("TOPSECRET"), "{err}");
    assert!(
        err.contains("passwd.lockdep:1: not a scenario file"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn a_damaged_recording_is_named_and_what_can_be_read_is_still_checked() {
    let d = scratch("damaged");
    let abba = d.join("abba.lockdep");
    std::fs::write(&abba, ABBA).unwrap();
    // A recording of A -> B, whose last record (a chain) is then damaged.
    let rec = d.join("one.ldrec");
    let r = lockdep::record::Recorder::create(&rec).unwrap();
    let engine = lockdep::Engine::with_observer(Default::default(), Box::new(r.clone()));
    let (a, b) = (lockdep::LockMap::new(), lockdep::LockMap::new());
    let mut t = lockdep::Task::new("t", 1);
    engine.acquire(
        &mut t,
        &a,
        lockdep::Acquire::exclusive(),
        lockdep::Site::Unknown,
    );
    engine.acquire(
        &mut t,
        &b,
        lockdep::Acquire::exclusive(),
        lockdep::Site::Unknown,
    );
    drop(engine);
    let mut bytes = std::fs::read(&rec).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x20; // inside the last record
    std::fs::write(&rec, &bytes).unwrap();
    let out = lockdep(&["check", s(&d)]);
    let (o, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}: byte ", rec.display())), "{err}");
    assert!(err.contains("record skipped"), "{err}");
    // The scenario's cycle is still found, and the recording's good records still count.
    assert!(o.contains("1 cycle"), "{o}");
    assert!(o.contains("2 processes"), "{o}");
    let _ = std::fs::remove_dir_all(&d);
}
