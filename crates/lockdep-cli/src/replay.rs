//! `lockdep replay`: run scenario files and report the verdicts.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lockdep::scenario;

use crate::files;

/// Exit status when every case passed.
const EXIT_OK: u8 = 0;
/// Exit status when a case failed.
const EXIT_FAILED: u8 = 1;
/// Exit status on malformed input (a file that does not parse, a path that cannot be read).
const EXIT_MALFORMED: u8 = 2;

/// Replays every file named by `paths` (directories are searched for `*.lockdep` files,
/// recursively, in sorted order) and prints the results on stdout. A malformed file is reported
/// on stderr as `FILE:LINE: message` and nothing of it is replayed; the other files still are.
///
/// With `dump`, each case is followed by its engine's /proc views (`/proc/lockdep`,
/// `/proc/lockdep_chains`, `/proc/lockdep_stats`), each after a `==> /proc/NAME <==` line.
pub fn run(paths: &[PathBuf], dump: bool) -> ExitCode {
    let mut malformed = false;
    let mut files = Vec::new();
    for p in paths {
        if let Err(e) = collect(p, true, &mut files) {
            eprintln!("{}: {e}", p.display());
            malformed = true;
        }
    }
    if files.is_empty() && !malformed {
        eprintln!("error: no scenario files (*.lockdep) found: nothing was replayed");
        malformed = true;
    }
    let stdout = io::stdout();
    let mut out = Out {
        w: io::BufWriter::new(stdout.lock()),
        dump,
        passed: 0,
        failed: 0,
        closed: false,
    };
    for file in &files {
        if files::vanished(file, paths) {
            continue;
        }
        let name = file.display().to_string();
        // Two passes over the file, each streamed: the first checks all of it (nothing of a
        // malformed file is replayed), the second replays it statement by statement.
        let checked =
            open(file).and_then(|r| scenario::validate(&name, r).map_err(|e| e.to_string()));
        let replayed = checked.and_then(|_| {
            open(file).and_then(|r| {
                scenario::replay_stream(&name, r, &mut out).map_err(|e| e.to_string())
            })
        });
        if out.closed {
            // stdout is gone (a closed pipe): nobody is listening to the rest.
            return ExitCode::from(EXIT_FAILED);
        }
        if let Err(e) = replayed {
            let _ = out.w.flush();
            eprintln!("{e}");
            malformed = true;
        }
    }
    let (passed, failed) = (out.passed, out.failed);
    if writeln!(out.w, "{passed} passed, {failed} failed").is_err() || out.w.flush().is_err() {
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::from(if malformed {
        EXIT_MALFORMED
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// Opens a scenario file for reading (a regular file of at most [`files::MAX_INPUT_BYTES`]);
/// the error names it.
fn open(file: &Path) -> Result<io::BufReader<files::Bounded>, String> {
    files::open(file, files::MAX_INPUT_BYTES)
        .map(|f| io::BufReader::with_capacity(1 << 16, f))
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Where replayed cases go: their text on stdout, their verdicts counted.
struct Out<W: Write> {
    w: W,
    dump: bool,
    passed: usize,
    failed: usize,
    /// stdout could not be written.
    closed: bool,
}

impl<W: Write> scenario::CaseDriver for Out<W> {
    fn engine(&mut self, _: &scenario::Case) -> lockdep::Engine {
        lockdep::Engine::new()
    }

    fn done(&mut self, _: &scenario::Case, result: scenario::CaseResult, engine: lockdep::Engine) {
        if result.passed {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        if self.closed {
            return;
        }
        let mut text = scenario::render_case(&result);
        if self.dump {
            text.push_str(&proc_views(&engine));
        }
        if self.w.write_all(text.as_bytes()).is_err() {
            self.closed = true;
        }
    }
}

/// Adds `path` to `files`: a file as it is (when named on the command line) or if it ends in
/// `.lockdep` (when found in a directory); a directory by its contents, in sorted order.
fn collect(path: &Path, named: bool, files: &mut Vec<PathBuf>) -> io::Result<()> {
    crate::files::collect(
        path,
        named,
        &|p: &Path| p.extension().is_some_and(|e| e == "lockdep"),
        files,
    )
}

/// The three /proc views of `engine`, each after a `==> /proc/NAME <==` line.
fn proc_views(engine: &lockdep::Engine) -> String {
    let snap = lockdep::proc::Snapshot::of(engine);
    format!(
        "==> /proc/lockdep <==\n{}==> /proc/lockdep_chains <==\n{}==> /proc/lockdep_stats <==\n{}\n",
        snap.render_lockdep(),
        snap.render_chains(),
        snap.render_stats()
    )
}
