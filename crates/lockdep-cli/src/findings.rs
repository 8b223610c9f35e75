//! What a check of merged recordings found, described for people and for programs.
//!
//! The check itself is the library's: the recordings are merged by [`Merged::new`] and run
//! through the engine by [`Merged::check`], which gives one report per distinct problem. This
//! module only *describes* each report: the classes it names, the edges of its cycle with the
//! stack, task, process and test where each was first seen, and every process and test that
//! recorded any of those edges (a dependency seen by ten tests is merged into one edge, but all
//! ten found it). `lockdep check` and `cargo lockdep` print these descriptions (as text, or as
//! JSON with [`crate::json`]).

use std::collections::{HashMap, HashSet};

use lockdep::dep::dep_names;
use lockdep::record::{Checked, Merged, Recording};
use lockdep::Frame;
use lockdep::{ClassInfo, Report, ReportKind};

/// A process (and test) that recorded an edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The process id (0 for a replayed scenario case).
    pub pid: u32,
    /// The executable's path (for a scenario case, `scenario FILE case NAME`).
    pub exe: String,
    /// The recording it came from.
    pub file: String,
    /// The test that created the edge, when the process was a test binary.
    pub test: Option<String>,
    /// The task (thread) name.
    pub task: String,
    /// The task's id.
    pub tid: u32,
}

impl Origin {
    /// The test binary: the executable's file name without the `-HASH` cargo appends
    /// (`target/debug/deps/bank-3f2a...` is `bank`).
    pub fn binary(&self) -> String {
        binary_name(&self.exe, self.pid)
    }

    /// The test, as `cargo lockdep` prints it: `TEST (BINARY)`, or `None` when not known.
    pub fn test_label(&self) -> Option<String> {
        self.test
            .as_ref()
            .map(|t| format!("{t} ({})", self.binary()))
    }

    /// The process, as reports print it: `process EXE[PID]`.
    pub fn process_label(&self) -> String {
        if self.pid == 0 {
            self.exe.clone()
        } else {
            format!("process {}[{}]", self.binary(), self.pid)
        }
    }
}

/// The binary name of an executable path, without cargo's `-HASH` suffix.
pub fn binary_name(exe: &str, pid: u32) -> String {
    if pid == 0 {
        return exe.to_string();
    }
    let name = exe.rsplit(['/', '\\']).next().unwrap_or(exe);
    match name.rsplit_once('-') {
        Some((base, hash))
            if !base.is_empty()
                && hash.len() == 16
                && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            base.to_string()
        }
        _ => name.to_string(),
    }
}

/// A class a report names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// The class's identity across processes.
    pub stable_id: u64,
    /// Its printed name.
    pub name: String,
    /// Where its key was declared (`file:line:col`), when known.
    pub site: Option<String>,
}

impl Class {
    fn of(c: &ClassInfo) -> Class {
        Class {
            stable_id: c.stable_id,
            name: c.name.to_string(),
            site: c.site.as_deref().map(str::to_string),
        }
    }
}

/// An edge of a reported cycle: the class held, the class taken while holding it.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Stable id of the class held.
    pub from: u64,
    /// Stable id of the class acquired.
    pub to: u64,
    /// The dependency types merged over every recording, e.g. `EN|SN`.
    pub types: String,
    /// Where it was first seen (the recording whose stack the report shows).
    pub first: Origin,
    /// The stack where it was first seen, innermost frame first.
    pub stack: Vec<Frame>,
    /// Every process and test that recorded it, in the order of the recordings.
    pub seen_by: Vec<Origin>,
}

/// One report, described.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The report, as the engine made it.
    pub report: Report,
    /// The classes it names; for a cycle, in the order of the cycle starting at the lock held.
    pub classes: Vec<Class>,
    /// For a cycle: its edges, starting with the one that closed it (held -> acquired).
    pub edges: Vec<Edge>,
}

impl Finding {
    /// Every process that recorded one of the edges, each once, in order.
    pub fn processes(&self) -> Vec<&Origin> {
        let mut seen = HashSet::new();
        self.edges
            .iter()
            .flat_map(|e| &e.seen_by)
            .filter(|o| seen.insert((o.pid, o.exe.as_str(), o.file.as_str())))
            .collect()
    }

    /// Every test that recorded one of the edges, as `(binary, test)`, each once, in order.
    pub fn tests(&self) -> Vec<(String, String)> {
        let mut seen = HashSet::new();
        self.edges
            .iter()
            .flat_map(|e| &e.seen_by)
            .filter_map(|o| Some((o.binary(), o.test.clone()?)))
            .filter(|t| seen.insert(t.clone()))
            .collect()
    }

    /// The line printed under the report: the tests (or, where no test is known, the
    /// processes) that found its edges.
    pub fn found_by(&self) -> String {
        let mut parts: Vec<String> = self
            .tests()
            .into_iter()
            .map(|(binary, test)| format!("{test} ({binary})"))
            .collect();
        let tested: HashSet<(u32, &str)> = self
            .edges
            .iter()
            .flat_map(|e| &e.seen_by)
            .filter(|o| o.test.is_some())
            .map(|o| (o.pid, o.exe.as_str()))
            .collect();
        for p in self.processes() {
            if !tested.contains(&(p.pid, p.exe.as_str())) {
                parts.push(p.process_label());
            }
        }
        if parts.is_empty() {
            return String::new();
        }
        format!("found by: {}\n", parts.join(", "))
    }
}

/// Recordings merged and checked, and every report described.
#[derive(Debug)]
pub struct Analysis {
    /// The merged recordings.
    pub merged: Merged,
    /// The library's check of them.
    pub checked: Checked,
    /// One finding per report of the check, in the check's order.
    pub findings: Vec<Finding>,
}

impl Analysis {
    /// Merges and checks `recordings` (with [`Merged::new`] and [`Merged::check`]) and describes
    /// every report.
    pub fn of(recordings: &[Recording]) -> Analysis {
        let merged = Merged::new(recordings);
        let checked = merged.check();
        // Who else took each edge of a reported cycle: only those edges are looked up (a
        // fleet's recordings hold millions of dependencies, and their reports a handful).
        let wanted: std::collections::HashSet<(u64, u64)> =
            checked.reports.iter().flat_map(edge_pairs).collect();
        let mut seen_by: HashMap<(u64, u64), Vec<Origin>> = HashMap::new();
        for r in recordings {
            for d in r
                .dependencies
                .iter()
                .filter(|d| wanted.contains(&(d.from, d.to)))
            {
                let o = Origin {
                    pid: r.process.pid,
                    exe: r.process.exe.clone(),
                    file: r.file.clone(),
                    test: d.test.clone(),
                    task: d.task.clone(),
                    tid: d.tid,
                };
                let list = seen_by.entry((d.from, d.to)).or_default();
                if !list
                    .iter()
                    .any(|x| (x.pid, &x.exe, &x.file, &x.test) == (o.pid, &o.exe, &o.file, &o.test))
                {
                    list.push(o);
                }
            }
        }
        let deps: HashMap<(u64, u64), usize> = merged
            .dependencies
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.from, d.to), i))
            .collect();
        let findings = checked
            .reports
            .iter()
            .map(|r| describe(r, &merged, &deps, &seen_by))
            .collect();
        Analysis {
            merged,
            checked,
            findings,
        }
    }

    /// The summary's tail: `in N classes and M dependencies from P processes`.
    pub fn scope(&self) -> String {
        let p = self.merged.processes.len();
        format!(
            "in {} classes and {} dependencies from {p} process{}",
            self.merged.classes.len(),
            self.merged.dependencies.len(),
            if p == 1 { "" } else { "es" },
        )
    }
}

/// The dependencies of a circular report, as `(from, to)` stable ids: chain = [held (#N), ...,
/// acquired (#0)], and the report's dependency held -> acquired closes the path acquired -> ...
/// -> held. None for other reports.
fn edge_pairs(r: &Report) -> Vec<(u64, u64)> {
    if r.kind != ReportKind::Circular || r.chain.is_empty() {
        return Vec::new();
    }
    let ids: Vec<u64> = r.chain.iter().map(|l| l.class.stable_id).collect();
    let mut pairs = vec![(ids[0], ids[ids.len() - 1])];
    for i in (1..ids.len()).rev() {
        pairs.push((ids[i], ids[i - 1]));
    }
    pairs
}

fn describe(
    r: &Report,
    merged: &Merged,
    deps: &HashMap<(u64, u64), usize>,
    seen_by: &HashMap<(u64, u64), Vec<Origin>>,
) -> Finding {
    let mut classes: Vec<Class> = Vec::new();
    let mut add = |c: &ClassInfo| {
        if !classes.iter().any(|x| x.stable_id == c.stable_id) {
            classes.push(Class::of(c));
        }
    };
    for l in &r.chain {
        add(&l.class);
    }
    for l in r.holding.iter().chain(&r.lock).chain(&r.held) {
        add(&l.class);
    }
    if let Some(irq) = &r.irq {
        for (c, _) in irq.safe.iter().chain(&irq.unsafe_lock) {
            add(c);
        }
    }
    let mut edges = Vec::new();
    for (from, to) in edge_pairs(r) {
        let Some(&i) = deps.get(&(from, to)) else {
            continue;
        };
        let d = &merged.dependencies[i];
        edges.push(Edge {
            from,
            to,
            types: dep_names(d.dep),
            first: Origin {
                pid: d.process.pid,
                exe: d.process.exe.clone(),
                file: d.file.clone(),
                test: d.first.test.clone(),
                task: d.first.task.clone(),
                tid: d.first.tid,
            },
            stack: d.first.frames.clone(),
            seen_by: seen_by.get(&(from, to)).cloned().unwrap_or_default(),
        });
    }
    Finding {
        report: r.clone(),
        classes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_names_lose_cargo_hashes_only() {
        assert_eq!(
            binary_name("/t/debug/deps/bank-0123456789abcdef", 7),
            "bank"
        );
        assert_eq!(
            binary_name("/t/debug/deps/two-words-0123456789abcdef", 7),
            "two-words"
        );
        assert_eq!(binary_name("/usr/bin/my-tool", 7), "my-tool");
        assert_eq!(binary_name("-0123456789abcdef", 7), "-0123456789abcdef");
        assert_eq!(
            binary_name("scenario a.lockdep case x", 0),
            "scenario a.lockdep case x"
        );
    }
}
