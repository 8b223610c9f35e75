//! `cargo lockdep`: run a workspace's tests with recording on, then check every recording as one.
//!
//! `cargo lockdep test [CARGO TEST ARGS]` runs `cargo test` (and `cargo lockdep nextest [ARGS]`
//! runs `cargo nextest run`) with `LOCKDEP_RECORD` set to `TARGET/lockdep/`, the workspace's
//! target directory (from `cargo metadata`, so `CARGO_TARGET_DIR`, `--target-dir` and
//! `--manifest-path` are honoured), cleared first. Every test process then records its class
//! graph there; when the run is over they are merged and checked by the library, exactly as
//! `lockdep check TARGET/lockdep` would, and each distinct report is printed once with the tests
//! that found its edges, then a one-line summary.
//!
//! The suppression file (`--suppress FILE`, else `LOCKDEP_SUPPRESS`, else `lockdep.toml` at the
//! workspace root) is handed to the test processes (`LOCKDEP_SUPPRESS`) and applied to the
//! merged reports: a suppressed report is counted in the summary and not printed, and an entry
//! that matched nothing is listed as stale.
//!
//! Exit status: 0 when the tests passed and nothing was reported; 1 when a report was found;
//! 2 when the run could not be set up or a recording could not be read; otherwise, when the
//! tests failed to build or run, cargo's own status (101).

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::check::{self, Format, EXIT_BAD_INPUT, EXIT_CYCLE};
use lockdep::suppress::ENV_VAR;

use crate::findings::Analysis;
use crate::{inputs, json, suppressions};

/// Which test runner to drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// `cargo test`.
    Test,
    /// `cargo nextest run`.
    Nextest,
}

impl Runner {
    /// The cargo subcommand words, e.g. `["nextest", "run"]`.
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Runner::Test => &["test"],
            Runner::Nextest => &["nextest", "run"],
        }
    }

    fn display(self) -> String {
        format!("cargo {}", self.words().join(" "))
    }
}

/// A parsed `cargo lockdep` command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The runner.
    pub runner: Runner,
    /// The arguments passed on to it, verbatim.
    pub args: Vec<OsString>,
    /// How to print the reports.
    pub format: Format,
    /// The suppression file named on the command line.
    pub suppress: Option<PathBuf>,
}

/// The usage text.
pub const USAGE: &str = "\
Run a workspace's tests with lockdep recording on, then check every recording as one.

Usage: cargo lockdep [OPTIONS] test [CARGO TEST ARGS]...
       cargo lockdep [OPTIONS] nextest [CARGO NEXTEST RUN ARGS]...

Each test process records its lock class graph into TARGET/lockdep/ (cleared first); the
recordings are then merged and checked as `lockdep check TARGET/lockdep` does, each distinct
report is printed once with the tests that found it, and a one-line summary follows.

Options (before the subcommand):
      --format <text|json>  text: the kernel's reports; json: one document on stdout, the
                            tests' own output going to stderr (docs/json-schema.md)
      --suppress <FILE>     the suppression file (default: $LOCKDEP_SUPPRESS, else
                            lockdep.toml at the workspace root, if there is one)
  -h, --help                Print help
  -V, --version             Print version

Exit status: 0 when the tests passed and nothing was reported, 1 when a report was found,
2 when the run could not be set up or a recording could not be read, cargo's own status
(101) when the tests failed to build or run.
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run the tests.
    Run(Invocation),
    /// Print the usage.
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments after the program name. Cargo runs `cargo-lockdep lockdep ARGS` for
/// `cargo lockdep ARGS`; the leading `lockdep` is skipped, so running the binary directly works
/// too. Everything after the subcommand is passed on untouched (including `--`).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|a| a == "lockdep") {
        args.next();
    }
    let mut format = Format::Text;
    let mut suppress = None;
    while let Some(a) = args.next() {
        let s = a.to_string_lossy().into_owned();
        let value = |v: Option<OsString>, name: &str| {
            v.map(|v| v.to_string_lossy().into_owned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match s.as_str() {
            "test" | "nextest" => {
                let runner = if s == "test" {
                    Runner::Test
                } else {
                    Runner::Nextest
                };
                let mut rest: Vec<OsString> = args.collect();
                if runner == Runner::Nextest && rest.first().is_some_and(|a| a == "run") {
                    rest.remove(0);
                }
                return Ok(Parsed::Run(Invocation {
                    runner,
                    args: rest,
                    format,
                    suppress,
                }));
            }
            "-h" | "--help" | "help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--format" => format = parse_format(&value(args.next(), "--format")?)?,
            _ if s.starts_with("--format=") => format = parse_format(&s["--format=".len()..])?,
            "--suppress" => suppress = Some(PathBuf::from(value(args.next(), "--suppress")?)),
            _ if s.starts_with("--suppress=") => {
                suppress = Some(PathBuf::from(&s["--suppress=".len()..]))
            }
            _ => {
                return Err(format!(
                    "unexpected argument `{s}`: expected `test` or `nextest` (options go before it)"
                ))
            }
        }
    }
    Err("missing subcommand: `test` or `nextest`".into())
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        _ => Err(format!("--format: `{s}` is not `text` or `json`")),
    }
}

/// The cargo to run: `$CARGO` (set by cargo for its subcommands), else `cargo`.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The value of `--NAME VALUE` or `--NAME=VALUE` among cargo's arguments (before any `--`).
fn cargo_option(args: &[OsString], name: &str) -> Option<OsString> {
    let long = format!("--{name}");
    let eq = format!("--{name}=");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            break;
        }
        if s == long {
            return it.next().cloned();
        }
        if let Some(v) = s.strip_prefix(&eq) {
            return Some(v.into());
        }
    }
    None
}

/// The workspace's root and target directories, as `cargo metadata` says (absolute).
pub fn workspace_dirs(args: &[OsString]) -> Result<(PathBuf, PathBuf), String> {
    let mut cmd = Command::new(cargo());
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(m) = cargo_option(args, "manifest-path") {
        cmd.arg("--manifest-path").arg(m);
    }
    for flag in ["--offline", "--frozen", "--locked"] {
        if args.iter().any(|a| a == flag) {
            cmd.arg(flag);
        }
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `cargo metadata`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`cargo metadata` failed ({})", out.status));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`cargo metadata` printed something that is not JSON: {e}"))?;
    let dir = |key: &str| {
        v.get(key)
            .and_then(|d| d.as_str())
            .map(PathBuf::from)
            .ok_or(format!("`cargo metadata` names no {key}"))
    };
    let target = match cargo_option(args, "target-dir") {
        Some(t) => {
            std::path::absolute(PathBuf::from(t)).map_err(|e| format!("--target-dir: {e}"))?
        }
        None => dir("target_directory")?,
    };
    Ok((dir("workspace_root")?, target))
}

/// Removes and re-creates the recording directory.
fn clear(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: cannot clear it: {e}", dir.display())),
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Runs the tests, checks the recordings, prints the reports; the exit status as documented in
/// the module docs.
pub fn run(inv: &Invocation) -> ExitCode {
    match run_inner(inv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: cargo lockdep: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run_inner(inv: &Invocation) -> Result<ExitCode, String> {
    let (root, target) = workspace_dirs(&inv.args)?;
    let dir = target.join("lockdep");
    let explicit = match &inv.suppress {
        Some(p) => Some(std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let sup = suppressions::load(explicit.as_deref(), &root).map_err(|e| e.to_string())?;
    clear(&dir)?;

    let mut cmd = Command::new(cargo());
    cmd.args(inv.runner.words())
        .args(&inv.args)
        .env("LOCKDEP_RECORD", &dir);
    if let Some(file) = sup.as_ref().and_then(|s| s.file()) {
        // The test processes silence the same reports at run time.
        cmd.env(ENV_VAR, file);
    }
    if inv.format == Format::Json {
        // stdout is for the document: the tests' own output goes to stderr.
        use std::os::fd::AsFd;
        let err = io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("stderr: {e}"))?;
        cmd.stdout(Stdio::from(err));
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", inv.runner.display()))?;

    let Ok(recordings) = inputs::load_recorded(std::slice::from_ref(&dir)) else {
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    };
    let analysis = Analysis::of(&recordings);
    let sorted = suppressions::apply(&analysis.findings, sup.as_ref());
    let n = sorted.shown.len();

    let tests_failed = (!status.success()).then(|| {
        let how = match status.code() {
            Some(c) => format!("exit status {c}"),
            None => status.to_string(),
        };
        let hint = if inv.runner == Runner::Nextest {
            " (is cargo-nextest installed? `cargo install cargo-nextest`)"
        } else {
            ""
        };
        format!(
            "`{}` failed ({how}){hint}: the tests did not all build and pass; {} recording{} \
             made before that {} checked",
            inv.runner.display(),
            recordings.len(),
            if recordings.len() == 1 { "" } else { "s" },
            if recordings.len() == 1 { "was" } else { "were" },
        )
    });

    let text = match inv.format {
        Format::Text => {
            let mut s = check::reports_text(&sorted.shown);
            for e in &sorted.stale {
                s.push_str(&suppressions::stale_line(sup.as_ref(), e));
                s.push('\n');
            }
            s.push_str(&format!(
                "cargo lockdep: {n} report{} ({} suppressed{}) {} ({} recording{} in {}); tests {}\n",
                if n == 1 { "" } else { "s" },
                sorted.suppressed.len(),
                match sorted.stale.len() {
                    0 => String::new(),
                    k => format!(", {k} stale suppression{}", if k == 1 { "" } else { "s" }),
                },
                analysis.scope(),
                recordings.len(),
                if recordings.len() == 1 { "" } else { "s" },
                dir.display(),
                if tests_failed.is_some() {
                    "FAILED"
                } else {
                    "passed"
                },
            ));
            s
        }
        Format::Json => {
            let extra = [
                (
                    "tests",
                    serde_json::json!({
                        "command": inv.runner.display(),
                        "passed": tests_failed.is_none(),
                        "exit_status": status.code(),
                    }),
                ),
                ("recordings", serde_json::json!(dir.display().to_string())),
            ];
            let (suppressed, stale) = suppressions::json_lists(&sorted, sup.as_ref());
            check::document_text(&json::document(
                &analysis,
                &sorted.shown,
                suppressed,
                stale,
                &extra,
            ))
        }
    };
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    if recordings.is_empty() && tests_failed.is_none() {
        eprintln!(
            "warning: no test process recorded anything in {}: do the tests take lockdep's \
             locks (lockdep::Mutex, ...), and is LOCKDEP=off set?",
            dir.display()
        );
    }
    if let Some(msg) = &tests_failed {
        eprintln!("error: {msg}");
    }
    Ok(if n > 0 {
        ExitCode::from(EXIT_CYCLE)
    } else if tests_failed.is_some() {
        let code = status.code().unwrap_or(101);
        ExitCode::from(u8::try_from(code).ok().filter(|&c| c > 2).unwrap_or(101))
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn the_subcommand_and_everything_after_it_pass_through() {
        let Ok(Parsed::Run(inv)) = p(&[
            "lockdep",
            "--format",
            "json",
            "test",
            "-p",
            "x",
            "--",
            "--nocapture",
        ]) else {
            panic!()
        };
        assert_eq!(inv.runner, Runner::Test);
        assert_eq!(inv.format, Format::Json);
        assert_eq!(
            inv.args,
            ["-p", "x", "--", "--nocapture"].map(OsString::from)
        );
        let Ok(Parsed::Run(inv)) = p(&["nextest", "run", "--format", "json"]) else {
            panic!()
        };
        assert_eq!(inv.runner, Runner::Nextest);
        assert_eq!(
            inv.format,
            Format::Text,
            "after the subcommand it is nextest's"
        );
        assert_eq!(inv.args, ["--format", "json"].map(OsString::from));
        let Ok(Parsed::Run(inv)) = p(&["--suppress", "s.toml", "test"]) else {
            panic!()
        };
        assert_eq!(inv.suppress, Some(PathBuf::from("s.toml")));
        assert_eq!(p(&["lockdep", "--help"]), Ok(Parsed::Help));
        assert_eq!(p(&["-V"]), Ok(Parsed::Version));
        assert!(p(&["lockdep"]).unwrap_err().contains("missing subcommand"));
        assert!(p(&["build"]).unwrap_err().contains("`build`"));
        assert!(p(&["--format", "xml", "test"]).unwrap_err().contains("xml"));
        assert!(p(&["--format"]).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn cargo_options_are_found_before_the_separator_only() {
        let args = [
            "--manifest-path=a/Cargo.toml",
            "--target-dir",
            "t",
            "--",
            "--target-dir=u",
        ]
        .map(OsString::from);
        assert_eq!(
            cargo_option(&args, "manifest-path"),
            Some("a/Cargo.toml".into())
        );
        assert_eq!(cargo_option(&args, "target-dir"), Some("t".into()));
        let args = ["--", "--target-dir=u"].map(OsString::from);
        assert_eq!(cargo_option(&args, "target-dir"), None);
    }
}
