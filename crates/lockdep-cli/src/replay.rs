//! `lockdep replay`: run scenario files and report the verdicts.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lockdep::scenario;

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
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                let _ = out.flush();
                eprintln!("{name}: {e}");
                malformed = true;
                continue;
            }
        };
        let scenario = match scenario::parse(&name, &text) {
            Ok(s) => s,
            Err(e) => {
                let _ = out.flush();
                eprintln!("{e}");
                malformed = true;
                continue;
            }
        };
        for case in &scenario.cases {
            let engine = lockdep::Engine::new();
            let result = scenario::replay_case_in(case, &engine);
            if result.passed {
                passed += 1;
            } else {
                failed += 1;
            }
            let mut text = scenario::render_case(&result);
            if dump {
                text.push_str(&proc_views(&engine));
            }
            if out.write_all(text.as_bytes()).is_err() {
                // stdout is gone (a closed pipe): nobody is listening to the rest.
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    if writeln!(out, "{passed} passed, {failed} failed").is_err() || out.flush().is_err() {
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
