//! Suppression files in `lockdep check` and `cargo lockdep`: the library's
//! [`lockdep::suppress`] applied to the findings of a check.
//!
//! The file is the one the run time uses (`LOCKDEP_SUPPRESS`, else `lockdep.toml` at the
//! workspace root), or the one named by `--suppress FILE`. A report an entry matches is counted
//! in the summary and not printed; an entry that matched no report is *stale*, and `cargo
//! lockdep` lists it so that a suppression no longer needed does not linger. A file that cannot
//! be read or parsed is an error naming the file and line (exit status 2).

use std::path::Path;

use lockdep::suppress::{Entry, SuppressError, Suppressions};
use serde_json::{json, Value};

use crate::findings::Finding;

/// Loads `explicit` if given, else the file [`Suppressions::locate`] finds from `dir`; `None`
/// when there is none.
pub fn load(explicit: Option<&Path>, dir: &Path) -> Result<Option<Suppressions>, SuppressError> {
    match explicit {
        Some(p) => Suppressions::load(p).map(Some),
        None => Suppressions::locate(dir)
            .map(Suppressions::load)
            .transpose(),
    }
}

/// The findings split by the suppressions.
#[derive(Debug, Default)]
pub struct Sorted<'a> {
    /// The findings to print.
    pub shown: Vec<&'a Finding>,
    /// The findings silenced, each with the entry that matched it.
    pub suppressed: Vec<(&'a Finding, &'a Entry)>,
    /// The entries that matched nothing.
    pub stale: Vec<&'a Entry>,
}

/// Splits `findings` into the shown and the suppressed, and finds the stale entries.
pub fn apply<'a>(findings: &'a [Finding], s: Option<&'a Suppressions>) -> Sorted<'a> {
    let mut out = Sorted::default();
    for f in findings {
        match s.filter(|s| s.check(&f.report)) {
            Some(s) => {
                let i = s.find(&f.report).expect("check matched an entry");
                out.suppressed.push((f, &s.entries()[i]));
            }
            None => out.shown.push(f),
        }
    }
    if let Some(s) = s {
        out.stale = s.stale();
    }
    out
}

fn file_of(s: Option<&Suppressions>) -> String {
    s.and_then(Suppressions::file)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `FILE:LINE: stale suppression (matched nothing): KIND [CLASSES] — REASON`.
pub fn stale_line(s: Option<&Suppressions>, e: &Entry) -> String {
    format!(
        "{}:{}: stale suppression (matched nothing): {} [{}] — {}",
        file_of(s),
        e.line,
        e.kind.name(),
        e.classes.join(", "),
        e.reason
    )
}

/// An entry as JSON (docs/json-schema.md, ENTRY).
pub fn entry_json(s: Option<&Suppressions>, e: &Entry) -> Value {
    json!({
        "file": file_of(s),
        "line": e.line,
        "kind": e.kind.name(),
        "classes": e.classes,
        "reason": e.reason,
    })
}

/// The `suppressed` and `stale_suppressions` arrays of the JSON document.
pub fn json_lists(sorted: &Sorted<'_>, s: Option<&Suppressions>) -> (Vec<Value>, Vec<Value>) {
    let suppressed = sorted
        .suppressed
        .iter()
        .map(|(f, e)| {
            let mut v = crate::json::finding(f);
            if let Value::Object(m) = &mut v {
                m.insert("entry".into(), entry_json(s, e));
            }
            v
        })
        .collect();
    let stale = sorted.stale.iter().map(|e| entry_json(s, e)).collect();
    (suppressed, stale)
}
