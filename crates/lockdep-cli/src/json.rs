//! `--format json` of `lockdep check` and `cargo lockdep`: one document, one object per report.
//!
//! The schema is documented in `docs/json-schema.md`; its `schema` field is bumped whenever a
//! field changes meaning or goes away (new fields may be added without a bump).

use serde_json::{json, Value};

use crate::findings::{Analysis, Class, Edge, Finding, Origin};

/// The schema version written in every document.
pub const SCHEMA: u32 = 1;

fn hex(id: u64) -> String {
    format!("{id:016x}")
}

fn class(c: &Class) -> Value {
    json!({
        "id": hex(c.stable_id),
        "name": c.name,
        "site": c.site,
    })
}

fn origin(o: &Origin) -> Value {
    json!({
        "pid": o.pid,
        "exe": o.exe,
        "binary": o.binary(),
        "recording": o.file,
        "task": o.task,
        "tid": o.tid,
        "test": o.test,
    })
}

fn edge(e: &Edge, classes: &[Class]) -> Value {
    let name = |id: u64| {
        classes
            .iter()
            .find(|c| c.stable_id == id)
            .map(|c| c.name.clone())
    };
    json!({
        "from": hex(e.from),
        "to": hex(e.to),
        "from_name": name(e.from),
        "to_name": name(e.to),
        "types": e.types,
        "first_seen": origin(&e.first),
        "stack": e.stack.iter().map(|f| json!({
            "function": f.function,
            "offset": f.offset,
            "location": f.location,
        })).collect::<Vec<_>>(),
        "seen_by": e.seen_by.iter().map(origin).collect::<Vec<_>>(),
    })
}

/// One report.
pub fn finding(f: &Finding) -> Value {
    json!({
        "kind": f.report.kind.name(),
        "title": f.report.title(),
        "classes": f.classes.iter().map(class).collect::<Vec<_>>(),
        "edges": f.edges.iter().map(|e| edge(e, &f.classes)).collect::<Vec<_>>(),
        "processes": f.processes().into_iter().map(|p| json!({
            "pid": p.pid,
            "exe": p.exe,
            "binary": p.binary(),
            "recording": p.file,
        })).collect::<Vec<_>>(),
        "tests": f.tests().into_iter().map(|(binary, name)| json!({
            "binary": binary,
            "name": name,
        })).collect::<Vec<_>>(),
        "text": f.report.render(),
    })
}

/// The whole document: the reports shown, how many were suppressed, the summary.
/// `extra` fields (e.g. `cargo lockdep`'s test outcome) are added at the top level.
pub fn document(
    analysis: &Analysis,
    shown: &[&Finding],
    suppressed: Vec<Value>,
    stale: Vec<Value>,
    extra: &[(&str, Value)],
) -> Value {
    let mut doc = json!({
        "schema": SCHEMA,
        "lockdep": env!("CARGO_PKG_VERSION"),
        "reports": shown.iter().map(|f| finding(f)).collect::<Vec<_>>(),
        "summary": {
            "reports": shown.len(),
            "suppressed": suppressed.len(),
            "classes": analysis.merged.classes.len(),
            "dependencies": analysis.merged.dependencies.len(),
            "processes": analysis.merged.processes.len(),
        },
        "suppressed": suppressed,
        "stale_suppressions": stale,
    });
    if let Value::Object(m) = &mut doc {
        for (k, v) in extra {
            m.insert((*k).to_string(), v.clone());
        }
    }
    doc
}
