//! `lockdep graph`: the merged class graph as DOT, SVG, JSON or an interactive HTML page, with
//! the edges of every cycle highlighted.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lockdep::dep::dep_names;
use lockdep::record::Merged;

use crate::{html, inputs, svg};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphviz DOT.
    Dot,
    /// A self-contained SVG image (laid out by lockdep itself: no graphviz needed).
    Svg,
    /// JSON: classes, dependencies with their first-seen origin, cycles.
    Json,
    /// One self-contained HTML page: search the classes, browse each one's dependencies in both
    /// directions with their first-seen stacks, the cycles listed first.
    Html,
}

/// A class of the graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// Stable id.
    pub id: u64,
    /// Printed name.
    pub name: String,
    /// Key site.
    pub site: Option<String>,
}

/// A dependency of the graph.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Index of the class held.
    pub from: usize,
    /// Index of the class acquired.
    pub to: usize,
    /// Dependency types, e.g. `EN|SR`.
    pub types: String,
    /// Whether it lies on a reported cycle.
    pub cycle: bool,
    /// Where it was first seen (`process EXE[PID], test NAME`).
    pub origin: String,
    /// The task that first created it, `name/tid`.
    pub task: String,
    /// The first-seen stack, innermost first.
    pub stack: Vec<String>,
}

/// The class graph of merged recordings.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Classes.
    pub nodes: Vec<Node>,
    /// Dependencies.
    pub edges: Vec<Edge>,
    /// Number of cycles reported.
    pub cycles: usize,
    /// The classes of each reported cycle (indices into `nodes`), in the order the cycle runs:
    /// the lock held, then the lock taken while holding it, and so on back to the first.
    pub cycle_paths: Vec<Vec<usize>>,
}

impl Model {
    /// Builds the model: every class and dependency merged, cycles from the engine's check.
    pub fn of(merged: &Merged) -> Model {
        let checked = merged.check();
        let cycle_edges = checked.cycle_edges();
        let index: HashMap<u64, usize> = merged
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.stable_id, i))
            .collect();
        let nodes = merged
            .classes
            .iter()
            .map(|c| Node {
                id: c.stable_id,
                name: c.name.clone(),
                site: c.site.clone(),
            })
            .collect();
        let edges = merged
            .dependencies
            .iter()
            .filter_map(|d| {
                Some(Edge {
                    from: *index.get(&d.from)?,
                    to: *index.get(&d.to)?,
                    types: dep_names(d.dep),
                    cycle: cycle_edges.contains(&(d.from, d.to)),
                    origin: d.origin(),
                    task: format!("{}/{}", d.first.task, d.first.tid),
                    stack: d.first.frames.iter().map(|f| f.to_string()).collect(),
                })
            })
            .collect();
        let cycle_paths = checked
            .reports
            .iter()
            .filter_map(|r| {
                // chain = [held, ..., acquired]: held -> acquired -> ... -> held.
                let mut ids: Vec<usize> = r
                    .chain
                    .iter()
                    .map(|l| index.get(&l.class.stable_id).copied())
                    .collect::<Option<_>>()?;
                if ids.len() > 1 {
                    ids[1..].reverse();
                }
                Some(ids)
            })
            .collect();
        Model {
            nodes,
            edges,
            cycles: checked.reports.len(),
            cycle_paths,
        }
    }

    /// Graphviz DOT.
    pub fn dot(&self) -> String {
        let mut out = String::from(
            "digraph lockdep {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for n in &self.nodes {
            let label = match &n.site {
                Some(s) if *s != n.name => format!("{}\\n{}", dot_escape(&n.name), dot_escape(s)),
                _ => dot_escape(&n.name),
            };
            let _ = writeln!(out, "  \"c{:016x}\" [label=\"{label}\"];", n.id);
        }
        for e in &self.edges {
            let style = if e.cycle {
                ", color=red, fontcolor=red, penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  \"c{:016x}\" -> \"c{:016x}\" [label=\"{}\", tooltip=\"{}\"{style}];",
                self.nodes[e.from].id,
                self.nodes[e.to].id,
                e.types,
                dot_escape(&format!("first seen in {} of {}", e.task, e.origin)),
            );
        }
        out.push_str("}\n");
        out
    }

    /// JSON.
    pub fn json(&self) -> String {
        let mut out = String::from("{\n  \"classes\": [");
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n    {{\"id\": \"{:016x}\", \"name\": {}, \"site\": {}}}",
                if i == 0 { "" } else { "," },
                n.id,
                json_str(&n.name),
                n.site.as_deref().map_or("null".to_string(), json_str),
            );
        }
        out.push_str("\n  ],\n  \"dependencies\": [");
        for (i, e) in self.edges.iter().enumerate() {
            let stack: Vec<String> = e.stack.iter().map(|f| json_str(f)).collect();
            let _ = write!(
                out,
                "{}\n    {{\"from\": \"{:016x}\", \"to\": \"{:016x}\", \"types\": {}, \"cycle\": {}, \
                 \"task\": {}, \"origin\": {}, \"stack\": [{}]}}",
                if i == 0 { "" } else { "," },
                self.nodes[e.from].id,
                self.nodes[e.to].id,
                json_str(&e.types),
                e.cycle,
                json_str(&e.task),
                json_str(&e.origin),
                stack.join(", "),
            );
        }
        let _ = write!(out, "\n  ],\n  \"cycles\": {}\n}}\n", self.cycles);
        out
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the graph of the merged inputs in `format` to `output` (stdout if `None`). Exit
/// status 0, or 2 on bad input or an output that cannot be written.
pub fn run(paths: &[PathBuf], format: Format, output: Option<&Path>) -> ExitCode {
    let Ok(merged) = inputs::load(paths) else {
        return ExitCode::from(2);
    };
    let model = Model::of(&merged);
    let text = match format {
        Format::Dot => model.dot(),
        Format::Json => model.json(),
        Format::Svg => svg::render(&model),
        Format::Html => html::render(&model),
    };
    let written = match output {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| format!("stdout: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
