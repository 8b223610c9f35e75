//! `lockdep classes`, `lockdep chains`, `lockdep stats`: the /proc views of merged recordings.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use lockdep::proc::Snapshot;
use lockdep::record::Checked;

use crate::inputs;

/// Which /proc file to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// `/proc/lockdep`.
    Classes,
    /// `/proc/lockdep_chains`.
    Chains,
    /// `/proc/lockdep_stats`.
    Stats,
}

/// The snapshot of merged recordings: the engine they were checked in, with the recorded chains
/// (the engine's own chain table is empty: imports validate no chain).
pub fn snapshot(checked: &Checked) -> Snapshot {
    let mut snap = Snapshot::of(&checked.engine);
    let mut chains = checked.chains.clone();
    chains.sort_by(|a, b| (a.irq_context, &a.classes).cmp(&(b.irq_context, &b.classes)));
    snap.chains = chains;
    snap
}

/// Prints `view` of the merged inputs. Exit status 0, or 2 on bad input.
pub fn run(paths: &[PathBuf], view: View) -> ExitCode {
    let Ok(merged) = inputs::load(paths) else {
        return ExitCode::from(2);
    };
    let snap = snapshot(&merged.check());
    let text = match view {
        View::Classes => snap.render_lockdep(),
        View::Chains => snap.render_chains(),
        View::Stats => snap.render_stats(),
    };
    let mut out = io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
