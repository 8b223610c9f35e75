//! Loading the inputs of `check`, `graph` and the /proc views: recordings (`*.ldrec`) and
//! scenario files (`*.lockdep`), each replayed case of which counts as one recorded process.
//!
//! A scenario's classes are identified by their names (a stable id made from `scenario:` and the
//! name), so classes named alike in two scenario files, or two cases, are one class: that is what
//! lets a scenario be checked together with others. A case's own cycles are kept too: the
//! dependency that closed one is added back from its report, so the merged check finds it again.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::files;

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

/// [`load`], unmerged: every recording (and every replayed scenario case) in order. Finding no
/// input file at all is bad input too (a directory without any is warned about).
pub fn load_recordings(paths: &[PathBuf]) -> Result<Vec<Recording>, BadInput> {
    match load_inner(paths, true) {
        (r, false) => Ok(r),
        (_, true) => Err(BadInput),
    }
}

/// [`load_recordings`], keeping what could be read when an input could not: every recording
/// read (the good records of a damaged one included), and whether any input was bad (what was
/// wrong has been printed on stderr).
pub fn load_readable(paths: &[PathBuf]) -> (Vec<Recording>, bool) {
    load_inner(paths, true)
}

/// [`load_recordings`] of the directory a test suite recorded into: finding nothing there is
/// no error (the tests may have taken no lock, or not run).
pub fn load_recorded(paths: &[PathBuf]) -> Result<Vec<Recording>, BadInput> {
    match load_inner(paths, false) {
        (r, false) => Ok(r),
        (_, true) => Err(BadInput),
    }
}

fn load_inner(paths: &[PathBuf], require: bool) -> (Vec<Recording>, bool) {
    let mut files = Vec::new();
    let mut bad = false;
    for p in paths {
        let before = files.len();
        match collect(p, true, &mut files) {
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                bad = true;
            }
            Ok(()) if require && files.len() == before => eprintln!(
                "warning: {}: no recordings (*.{}) or scenario files (*.lockdep) in it",
                p.display(),
                record::EXTENSION
            ),
            Ok(()) => {}
        }
    }
    if require && files.is_empty() && !bad {
        // A mistyped `LOCKDEP_RECORD`, or tests that never ran: passing would hide it.
        eprintln!("error: nothing to read: no recording or scenario file was found");
        bad = true;
    }
    let mut recordings = Vec::new();
    for f in &files {
        if files::vanished(f, paths) {
            continue;
        }
        match load_file(f) {
            Ok(mut v) => {
                // Damaged records were skipped, the others read: each is named, and the input
                // is bad all the same.
                for e in v.iter().flat_map(|r| &r.errors) {
                    eprintln!("{e}");
                    bad = true;
                }
                recordings.append(&mut v)
            }
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
    (recordings, bad)
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
    let is_scenario = path.extension().is_some_and(|e| e == "lockdep");
    let mut f = files::open(path, files::MAX_INPUT_BYTES).map_err(|e| format!("{name}: {e}"))?;
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
    if !is_scenario || record::looks_like_recording(&head[..n]) {
        let mut bytes = head[..n].to_vec();
        f.read_to_end(&mut bytes)
            .map_err(|e| format!("{name}: {e}"))?;
        return record::read_bytes(&name, &bytes)
            .map(|r| vec![r])
            .map_err(|e| e.to_string());
    }
    // A scenario: checked whole first (nothing of a malformed file is used), then replayed
    // statement by statement as it is read again.
    let first = io::BufReader::with_capacity(1 << 16, (&head[..n]).chain(f));
    scenario::validate(&name, first).map_err(|e| e.to_string())?;
    let f = files::open(path, files::MAX_INPUT_BYTES).map_err(|e| format!("{name}: {e}"))?;
    let mut rec = RecordCases {
        file: &name,
        recorder: None,
        out: Vec::new(),
    };
    scenario::replay_stream(&name, io::BufReader::with_capacity(1 << 16, f), &mut rec)
        .map_err(|e| e.to_string())?;
    rec.out.into_iter().collect()
}

/// Records each case of a scenario as it is replayed.
struct RecordCases<'a> {
    file: &'a str,
    recorder: Option<Recorder>,
    out: Vec<Result<Recording, String>>,
}

impl scenario::CaseDriver for RecordCases<'_> {
    fn engine(&mut self, _: &scenario::Case) -> Engine {
        let rec = Recorder::in_memory();
        let engine = Engine::with_observer(Options::default(), Box::new(rec.clone()));
        self.recorder = Some(rec);
        engine
    }

    fn done(&mut self, case: &scenario::Case, result: scenario::CaseResult, engine: Engine) {
        let Some(rec) = self.recorder.take() else {
            return;
        };
        self.out
            .push(record_case(self.file, case, &result, &rec, &engine));
    }
}

/// The in-memory recording of a replayed case.
fn record_case(
    file: &str,
    case: &scenario::Case,
    result: &scenario::CaseResult,
    rec: &Recorder,
    engine: &Engine,
) -> Result<Recording, String> {
    rec.record_chains(engine);
    // The recording is this process's own, in memory: a byte offset in it is not one of the
    // scenario file, so an error says what it is.
    let in_memory = |e: &record::RecordError| {
        format!(
            "{file}: case {}: its recording (in memory) cannot be read back at byte {}: {}",
            case.name, e.offset, e.message
        )
    };
    let mut r = record::read_bytes(file, &rec.bytes()).map_err(|e| in_memory(&e))?;
    if let Some(e) = r.errors.first() {
        return Err(in_memory(e));
    }
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
