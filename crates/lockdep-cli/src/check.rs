//! `lockdep check`: merge recordings (and scenario files) and report every cycle.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::findings::{Analysis, Finding};
use crate::{inputs, json, suppressions};

/// Exit status when no cycle was found.
pub const EXIT_OK: u8 = 0;
/// Exit status when a cycle was found.
pub const EXIT_CYCLE: u8 = 1;
/// Exit status on bad input.
pub const EXIT_BAD_INPUT: u8 = 2;

/// How reports are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The kernel's report format, each followed by the tests that found it, then a summary.
    #[default]
    Text,
    /// One JSON document (see docs/json-schema.md).
    Json,
}

/// Merges every input, runs the merged graph through the engine's cycle rules and prints one
/// report per distinct cycle, then a summary line (or one JSON document).
///
/// With an input that could not be read (reported on stderr), what could be read is still
/// checked and printed, and the exit status is [`EXIT_BAD_INPUT`].
///
/// Reports matched by the suppression file (`suppress`, else the one the run time would use:
/// `LOCKDEP_SUPPRESS` or `lockdep.toml` at the workspace root) are counted, not printed.
pub fn run(paths: &[PathBuf], format: Format, suppress: Option<&Path>) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_default();
    let sup = match suppressions::load(suppress, &cwd) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    // What could be read is checked even when an input could not be (a damaged recording's
    // other records, the other files): the exit status is still that of bad input.
    let (recordings, bad) = inputs::load_readable(paths);
    if bad && recordings.is_empty() {
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let analysis = Analysis::of(&recordings);
    let sorted = suppressions::apply(&analysis.findings, sup.as_ref());
    let n = sorted.shown.len();
    let text = match format {
        Format::Text => {
            let mut s = reports_text(&sorted.shown);
            let suppressed = match &sup {
                Some(_) => format!(" ({} suppressed)", sorted.suppressed.len()),
                None => String::new(),
            };
            s.push_str(&format!(
                "{n} cycle{}{suppressed} {}\n",
                if n == 1 { "" } else { "s" },
                analysis.scope()
            ));
            s
        }
        Format::Json => {
            let (suppressed, stale) = suppressions::json_lists(&sorted, sup.as_ref());
            document_text(&json::document(
                &analysis,
                &sorted.shown,
                suppressed,
                stale,
                &[],
            ))
        }
    };
    let mut out = io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        return ExitCode::from(EXIT_CYCLE);
    }
    ExitCode::from(if bad {
        EXIT_BAD_INPUT
    } else if n > 0 {
        EXIT_CYCLE
    } else {
        EXIT_OK
    })
}

/// Every report in the kernel's format, each followed by the line naming who found it.
pub fn reports_text(shown: &[&Finding]) -> String {
    let mut s = String::new();
    for f in shown {
        s.push_str(&f.report.render());
        s.push_str(&f.found_by());
        s.push('\n');
    }
    s
}

/// A JSON document, pretty-printed, with a final newline.
pub fn document_text(doc: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(doc).unwrap_or_default();
    s.push('\n');
    s
}
