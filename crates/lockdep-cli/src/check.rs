//! `lockdep check`: merge recordings (and scenario files) and report every cycle.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::inputs;

/// Exit status when no cycle was found.
const EXIT_OK: u8 = 0;
/// Exit status when a cycle was found.
const EXIT_CYCLE: u8 = 1;
/// Exit status on bad input.
const EXIT_BAD_INPUT: u8 = 2;

/// Merges every input, runs the merged graph through the engine's cycle rules and prints one
/// kernel-format circular report per distinct cycle, then a summary line.
pub fn run(paths: &[PathBuf]) -> ExitCode {
    let Ok(merged) = inputs::load(paths) else {
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let checked = merged.check();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for r in &checked.reports {
        if out.write_all(r.render().as_bytes()).is_err() {
            return ExitCode::from(EXIT_CYCLE);
        }
    }
    let n = checked.reports.len();
    let _ = writeln!(
        out,
        "{n} cycle{} in {} classes and {} dependencies from {} process{}",
        if n == 1 { "" } else { "s" },
        merged.classes.len(),
        merged.dependencies.len(),
        merged.processes.len(),
        if merged.processes.len() == 1 {
            ""
        } else {
            "es"
        },
    );
    let _ = out.flush();
    ExitCode::from(if n > 0 { EXIT_CYCLE } else { EXIT_OK })
}
