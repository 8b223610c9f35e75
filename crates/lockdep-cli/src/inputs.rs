//! Loading the inputs of `check`, `graph` and the /proc views: recordings (`*.ldrec`) and
//! scenario files (`*.lockdep`), each replayed case of which counts as one recorded process.
//!
//! A scenario's classes are identified by their names (a stable id made from `scenario:` and the
//! name), so classes named alike in two scenario files, or two cases, are one class: that is what
//! lets a scenario be checked together with others. A case's own cycles are kept too: the
//! dependency that closed one is added back from its report, so the merged check finds it again.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use lockdep::dep::dep_type;
use lockdep::record::{self, Merged, ProcessInfo, RecordedDependency, Recorder, Recording};
use lockdep::{scenario, Engine, Options, ReportKind};

/// Reads every input named by `paths` (directories are searched, recursively and in sorted
/// order, for `*.ldrec` and `*.lockdep` files). Warnings (torn last records) go to stderr; a bad
/// input is reported on stderr as `FILE: byte N: message` (or `FILE:LINE: message`), and makes
/// the result `Err` once every input has been tried.
pub fn load(paths: &[PathBuf]) -> Result<Merged, BadInput> {
    load_recordings(paths).map(|r| Merged::new(&r))
}

/// [`load`], unmerged: every recording (and every replayed scenario case) in order.
pub fn load_recordings(paths: &[PathBuf]) -> Result<Vec<Recording>, BadInput> {
    let mut files = Vec::new();
    let mut bad = false;
    for p in paths {
        if let Err(e) = collect(p, true, &mut files) {
            eprintln!("{}: {e}", p.display());
            bad = true;
        }
    }
    let mut recordings = Vec::new();
    for f in &files {
        match load_file(f) {
            Ok(mut v) => recordings.append(&mut v),
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    for r in &recordings {
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
    }
    if bad {
        return Err(BadInput);
    }
    Ok(recordings)
}

/// An input could not be read: what was wrong with it has been printed on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadInput;

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an input could not be read (see the messages above)")
    }
}

impl std::error::Error for BadInput {}

fn load_file(path: &Path) -> Result<Vec<Recording>, String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let is_scenario = path.extension().is_some_and(|e| e == "lockdep");
    if !is_scenario || record::looks_like_recording(&bytes) {
        return record::read_bytes(&name, &bytes)
            .map(|r| vec![r])
            .map_err(|e| e.to_string());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "{name}: byte {}: not UTF-8 text",
            e.utf8_error().valid_up_to()
        )
    })?;
    let s = scenario::parse(&name, &text).map_err(|e| e.to_string())?;
    s.cases.iter().map(|c| record_case(&name, c)).collect()
}

/// Replays a case into an in-memory recording.
fn record_case(file: &str, case: &scenario::Case) -> Result<Recording, String> {
    let rec = Recorder::in_memory();
    let engine = Engine::with_observer(Options::default(), Box::new(rec.clone()));
    let result = scenario::replay_case_in(case, &engine);
    rec.record_chains(&engine);
    let mut r = record::read_bytes(file, &rec.bytes()).map_err(|e| e.to_string())?;
    r.process = ProcessInfo {
        pid: 0,
        exe: format!("scenario {file} case {}", case.name),
        start_ms: 0,
        lockdep_version: r.process.lockdep_version,
    };
    // The dependencies that closed a cycle in the case were not added to its graph: add them.
    for rep in result
        .reports
        .iter()
        .filter(|r| r.kind == ReportKind::Circular)
    {
        let (Some(held), Some(new)) = (&rep.holding, &rep.lock) else {
            continue;
        };
        r.dependencies.push(RecordedDependency {
            from: held.class.stable_id,
            to: new.class.stable_id,
            dep: dep_type(held.read, new.read),
            distance: 1,
            task: rep.task.name.to_string(),
            tid: rep.task.pid,
            test: None,
            frames: rep.stack.as_ref().map(|s| s.frames()).unwrap_or_default(),
            has_stack: true,
            held_site: known_site(held.site),
            site: known_site(new.site),
            offset: 0,
        });
    }
    // Scenario classes are known by name.
    let ids: HashMap<u64, u64> = r
        .classes
        .iter()
        .map(|c| (c.stable_id, by_name(&c.name)))
        .collect();
    let map = |id: u64| ids.get(&id).copied().unwrap_or(id);
    for c in &mut r.classes {
        c.stable_id = map(c.stable_id);
    }
    for d in &mut r.dependencies {
        d.from = map(d.from);
        d.to = map(d.to);
    }
    for c in &mut r.chains {
        for id in &mut c.classes {
            *id = map(*id);
        }
    }
    Ok(r)
}

/// The stable id of a scenario class: FNV-1a of `scenario:NAME`.
fn by_name(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "scenario:".bytes().chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Adds `path` to `files`: a file as it is (when named on the command line) or if it ends in
/// `.ldrec` or `.lockdep` (when found in a directory); a directory by its contents, in order.
fn collect(path: &Path, named: bool, files: &mut Vec<PathBuf>) -> io::Result<()> {
    let wanted = |p: &Path| {
        p.extension()
            .is_some_and(|e| e == record::EXTENSION || e == "lockdep")
    };
    crate::files::collect(path, named, &wanted, files)
}

/// A site as a recording stores it: `None` when unknown.
fn known_site(site: lockdep::Site) -> Option<String> {
    (site != lockdep::Site::Unknown).then(|| site.to_string())
}
