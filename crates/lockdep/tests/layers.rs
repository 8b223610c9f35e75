//! The layering of `src/`: no module imports from a layer above its own.
//!
//! The layers are the table in the repository's ARCHITECTURE.md (rank, folder). Every `crate::`
//! path in a source file (outside comments) names a top-level module; a path through one of the
//! crate root's re-exports counts as the module the name comes from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Folder (or root file) → rank, from ARCHITECTURE.md's table.
fn ranks() -> HashMap<String, u32> {
    let arch = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ARCHITECTURE.md");
    let text = std::fs::read_to_string(&arch).expect("ARCHITECTURE.md is readable");
    let mut ranks = HashMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Ok(rank) = cells[1].parse::<u32>() else {
            continue;
        };
        for folder in cells[2].split(',') {
            ranks.insert(folder.trim().trim_matches('`').to_string(), rank);
        }
    }
    assert!(ranks.len() >= 7, "no layer table in ARCHITECTURE.md");
    ranks
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Names the crate root re-exports, with the top-level module each comes from
/// (`pub use lock::map::{LockMap, Site};` → `LockMap` and `Site` from `lock`).
fn root_reexports() -> HashMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut map = HashMap::new();
    let mut stmt = String::new();
    for line in lib.lines().map(str::trim) {
        if stmt.is_empty() && !line.starts_with("pub use ") {
            continue;
        }
        stmt.push_str(line);
        stmt.push(' ');
        if !line.ends_with(';') {
            continue;
        }
        let body = stmt["pub use ".len()..].trim().trim_end_matches(';');
        let top = body.split("::").next().unwrap().to_string();
        let names = match body.find('{') {
            Some(i) => body[i + 1..body.rfind('}').unwrap()].to_string(),
            None => body.rsplit("::").next().unwrap().to_string(),
        };
        for n in names.split(',') {
            let n = n.split(" as ").last().unwrap().trim();
            if !n.is_empty() {
                map.insert(n.to_string(), top.clone());
            }
        }
        stmt.clear();
    }
    map
}

/// The code of a line, without a trailing `//` comment (good enough for this crate's sources:
/// no `//` inside the string literals of `use` lines).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("//") {
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let ranks = ranks();
    let reexports = root_reexports();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(src()).unwrap();
        let Some(top) = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy())
        else {
            continue;
        };
        if top == "lib.rs" {
            continue;
        }
        let top = top.trim_end_matches(".rs").to_string();
        let Some(&own) = ranks.get(&top) else {
            violations.push(format!(
                "{}: folder `{top}` has no layer in ARCHITECTURE.md",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                rest = after;
                let module = match ranks.contains_key(&name) {
                    true => name.clone(),
                    false => match reexports.get(&name) {
                        Some(m) => m.clone(),
                        None => continue,
                    },
                };
                checked += 1;
                let theirs = ranks[&module];
                if theirs > own {
                    violations.push(format!(
                        "{}:{}: `{top}` (rank {own}) uses `crate::{name}` from `{module}` (rank {theirs})",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} paths checked: is the scan broken?"
    );
    assert!(
        violations.is_empty(),
        "imports against the layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let ranks = ranks();
    for e in std::fs::read_dir(src()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name == "lib.rs" {
            continue;
        }
        let name = name.trim_end_matches(".rs");
        assert!(
            ranks.contains_key(name),
            "src/{name} is in no layer of ARCHITECTURE.md"
        );
    }
}
