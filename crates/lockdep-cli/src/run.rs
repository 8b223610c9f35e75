//! `lockdep run [--preload PATH] [--] PROG ARGS...`: runs an unmodified program with the pthread
//! interposer (`liblockdep_preload.so`, the `lockdep-preload` crate) preloaded, so its mutexes,
//! rwlocks, spinlocks and condvar waits are validated by the same engine as a Rust program's.
//!
//! The library is found where `--preload` says, else where `LOCKDEP_PRELOAD` says, else next to
//! the `lockdep` executable (where cargo builds both), else in `../lib/` from it (an installed
//! layout). `LOCKDEP=warn|panic|off` and `LOCKDEP_RECORD=DIR` pass through to the program. The
//! program replaces this process (`exec`), so its exit status, or the signal that ended it (an
//! abort after a report under `LOCKDEP=panic`), is the command's.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The library's file name.
pub const LIBRARY: &str = "liblockdep_preload.so";

/// Where the library is looked for, in order, when neither `--preload` nor `LOCKDEP_PRELOAD`
/// names it.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(dir.join(LIBRARY));
        if let Some(up) = dir.parent() {
            out.push(up.join("lib").join(LIBRARY));
        }
    }
    out
}

/// The library to preload, or a message naming every place that was looked at.
pub fn find_library(preload: Option<&Path>) -> Result<PathBuf, String> {
    let named = preload.map(|p| (p.to_path_buf(), "--preload")).or_else(|| {
        std::env::var_os("LOCKDEP_PRELOAD")
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), "LOCKDEP_PRELOAD"))
    });
    if let Some((path, from)) = named {
        return if path.is_file() {
            Ok(absolute(path))
        } else {
            Err(format!(
                "lockdep run: {} (from {from}) is not a file",
                path.display()
            ))
        };
    }
    let looked = candidates();
    if let Some(found) = looked.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "lockdep run: cannot find {LIBRARY}; looked at {}. Build it with \
         `cargo build -p lockdep-preload` (it lands next to the lockdep binary), or name it with \
         --preload PATH or LOCKDEP_PRELOAD=PATH",
        if list.is_empty() {
            "nothing (the lockdep executable's directory is unknown)".to_string()
        } else {
            list.join(", ")
        }
    ))
}

fn absolute(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// `LD_PRELOAD` with the library first, keeping what was there.
fn ld_preload(lib: &Path) -> OsString {
    let mut v = lib.as_os_str().to_os_string();
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|o| !o.is_empty()) {
        v.push(" ");
        v.push(old);
    }
    v
}

/// Runs `command` with the library preloaded. Returns only on failure: 2 when the library is
/// missing, 127 when the program cannot be run.
pub fn run(preload: Option<&Path>, command: &[OsString]) -> ExitCode {
    let Some((prog, args)) = command.split_first() else {
        eprintln!("lockdep run: no program given (usage: lockdep run [--] PROG ARGS...)");
        return ExitCode::from(2);
    };
    let lib = match find_library(preload) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args).env("LD_PRELOAD", ld_preload(&lib));
    exec(cmd, prog)
}

#[cfg(unix)]
fn exec(mut cmd: std::process::Command, prog: &OsStr) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    eprintln!(
        "lockdep run: cannot run {}: {err}",
        Path::new(prog).display()
    );
    ExitCode::from(127)
}

#[cfg(not(unix))]
fn exec(_cmd: std::process::Command, _prog: &OsStr) -> ExitCode {
    eprintln!("lockdep run: preloading is only available on Linux");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_names_where_it_was_looked_for() {
        let err = find_library(Some(Path::new("/nonexistent/liblockdep_preload.so"))).unwrap_err();
        assert!(err.contains("/nonexistent/liblockdep_preload.so"), "{err}");
        assert!(err.contains("--preload"), "{err}");
    }

    #[test]
    fn the_library_goes_first_in_ld_preload() {
        let v = ld_preload(Path::new("/x/liblockdep_preload.so"));
        assert!(v.to_string_lossy().starts_with("/x/liblockdep_preload.so"));
    }
}
