//! What the code calls a lock: the construction expression read back from the source file.
//!
//! A class keyed by its construction site is, to the validator, `src/bank.rs:14:23`. A reader
//! wants `accounts`. When a report (or introspection) first needs a site-keyed class's name, the
//! source file named by the site is read and the text before the constructor call tells what
//! the new lock is stored into:
//!
//! | source | name |
//! |---|---|
//! | `accounts: Mutex::new(..)` (a struct field) | `accounts` |
//! | `let balance = Mutex::new(..)`, `let mut balance: Mutex<u64> = ...` | `balance` |
//! | `static STATS: Mutex<Stats> = Mutex::new(..)` | `STATS` |
//! | `self.accounts = Mutex::new(..)` | `self.accounts` |
//! | `let shared = Arc::new(Mutex::new(..))` | `shared` |
//! | `static STATE: LazyLock<Mutex<S>> = LazyLock::new(\|\| Mutex::new(..))` | `STATE` |
//!
//! This runs once per class, on the slow path, and never in the seen path. When the file cannot
//! be found (a binary run away from its sources) or the text is not one of these forms, the
//! class keeps its plain site. The name never changes a class's identity, which stays its key
//! (name and site) as before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The expression a lock built at `file:line:col` is stored into, if the source can be read and
/// says so.
pub(crate) fn expression_at(file: &str, line: u32, col: u32) -> Option<String> {
    let text = cached_source(file)?;
    expression_in(&text, line, col)
}

/// The source files read so far (a leaf lock; `rt::fork` takes it around `fork`).
static CACHE: Mutex<Option<HashMap<String, Option<Arc<str>>>>> = Mutex::new(None);

/// Takes the source cache's lock, for `rt::fork` to hold across a `fork` (dropping the value
/// unlocks it).
pub(crate) fn lock_for_fork() -> Box<dyn std::any::Any> {
    Box::new(CACHE.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The files read so far (or found missing): most classes of a program are made in a few files,
/// and a name may be looked up with the engine's lock held (a recorder is told of each class as
/// it registers), so each file is read once. A leaf lock: nothing is locked under it.
pub(crate) fn cached_source(file: &str) -> Option<Arc<str>> {
    const MAX_FILES: usize = 256;
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(text) = cache.get(file) {
        return text.clone();
    }
    let text: Option<Arc<str>> = read_source(file).map(Into::into);
    if cache.len() < MAX_FILES {
        cache.insert(file.to_string(), text.clone());
    }
    text
}

/// Candidate paths for a `Location` file: as given (absolute, or relative to the current
/// directory), then relative to each ancestor of the current directory and of the package
/// directory cargo reports (`file!()` paths are relative to the workspace root, while `cargo
/// test` runs a test in its package's directory).
fn read_source(file: &str) -> Option<String> {
    let path = Path::new(file);
    if path.is_absolute() {
        return std::fs::read_to_string(path).ok();
    }
    let mut bases: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        bases.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        bases.extend(Path::new(&dir).ancestors().map(Path::to_path_buf));
    }
    bases
        .iter()
        .take(64)
        .find_map(|b| std::fs::read_to_string(b.join(path)).ok())
}

/// [`expression_at`] on a source text.
pub(crate) fn expression_in(text: &str, line: u32, col: u32) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut li = (line as usize).checked_sub(1)?;
    let this = lines.get(li)?;
    // Columns count characters, from 1.
    let cut = this
        .char_indices()
        .nth((col as usize).checked_sub(1)?)
        .map(|(i, _)| i)
        .unwrap_or(this.len());
    let mut before = this[..cut].trim_end().to_string();
    // The constructor alone on its line: what precedes it ends the line(s) above.
    let mut back = 0;
    while before.is_empty() || before.ends_with("//") {
        if li == 0 || back == 3 {
            return None;
        }
        li -= 1;
        back += 1;
        before = strip_comment(lines[li]).trim_end().to_string();
    }
    name_before(&before, 0)
}

fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The trailing identifier of `s` (possibly a raw identifier).
fn trailing_ident(s: &str) -> Option<&str> {
    let s = s.trim_end();
    let start = s
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident_char(*c))
        .last()
        .map(|(i, _)| i)?;
    let id = &s[start..];
    let id = id.strip_prefix("r#").unwrap_or(id);
    (!id.chars().next()?.is_ascii_digit()).then_some(id)
}

/// The name that the text `before` (everything up to the constructor call) gives the value.
fn name_before(before: &str, depth: u32) -> Option<String> {
    if depth > 4 {
        return None;
    }
    let b = before.trim_end();
    if let Some(rest) = b.strip_suffix('=') {
        if rest.ends_with(['=', '!', '<', '>', '+', '-', '*', '/', '%', '^', '|', '&']) {
            return None;
        }
        return assigned_name(rest);
    }
    if let Some(rest) = b.strip_suffix(':') {
        if rest.ends_with(':') {
            return None;
        }
        // A struct field (`accounts: Mutex::new(..)`), not a type ascription.
        return trailing_ident(rest).map(str::to_string);
    }
    if let Some(rest) = b.strip_suffix('|') {
        // The body of a closure, `LazyLock::new(|| Mutex::new(..))`: name what the closure is
        // passed to.
        let open = rest.rfind('|')?;
        let before = rest[..open].trim_end();
        let before = before.strip_suffix("move").unwrap_or(before);
        return name_before(before, depth + 1);
    }
    if let Some(rest) = b.strip_suffix('(') {
        // An argument of a wrapper: `Arc::new(Mutex::new(..))`: name what the wrapper is
        // stored into. Only the first argument, and only of a path call (not a macro).
        let call = rest.trim_end();
        let path_start = call
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_ident_char(*c) || *c == ':')
            .last()
            .map(|(i, _)| i)?;
        if call[path_start..].is_empty() {
            return None;
        }
        return name_before(&call[..path_start], depth + 1);
    }
    None
}

/// The left side of an assignment or binding, `rest` being everything before the `=`.
fn assigned_name(rest: &str) -> Option<String> {
    let rest = rest.trim_end();
    // `let x`, `let mut x: T`, `static X: T`, `static mut X: T`, `const X: T`.
    for kw in ["let ", "static ", "const "] {
        if let Some(i) = find_keyword(rest, kw) {
            let mut decl = rest[i + kw.len()..].trim_start();
            for prefix in ["mut ", "ref "] {
                decl = decl.strip_prefix(prefix).unwrap_or(decl).trim_start();
            }
            let end = decl.find(|c: char| !is_ident_char(c)).unwrap_or(decl.len());
            let name = decl[..end].strip_prefix("r#").unwrap_or(&decl[..end]);
            let after = decl[end..].trim_start();
            if name.is_empty() || !(after.is_empty() || after.starts_with(':')) {
                return None;
            }
            return Some(name.to_string());
        }
    }
    // A place expression: `self.accounts`, `bank.audit`, `STATE`.
    let start = rest
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident_char(*c) || *c == '.')
        .last()
        .map(|(i, _)| i)?;
    let place = rest[start..].trim_start_matches('.');
    (!place.is_empty() && !place.starts_with(|c: char| c.is_ascii_digit()))
        .then(|| place.to_string())
}

/// The byte index of keyword `kw` (ending in a space) in `s` at a word boundary, last one.
fn find_keyword(s: &str, kw: &str) -> Option<usize> {
    s.match_indices(kw)
        .filter(|(i, _)| {
            s[..*i]
                .chars()
                .next_back()
                .map_or(true, |c| !is_ident_char(c))
        })
        .map(|(i, _)| i)
        .last()
}

#[cfg(test)]
mod tests {
    use super::expression_in;

    /// The name for a constructor at the first occurrence of `needle`.
    fn at(src: &str, needle: &str) -> Option<String> {
        let i = src.find(needle).expect("needle in source");
        let line = src[..i].matches('\n').count() + 1;
        let line_start = src[..i].rfind('\n').map_or(0, |n| n + 1);
        let col = src[line_start..i].chars().count() + 1;
        expression_in(src, line as u32, col as u32)
    }

    #[test]
    fn fields_bindings_statics_and_places() {
        let src = "\
struct Bank { accounts: Mutex<u32>, audit: Mutex<u32> }
impl Bank {
    fn new() -> Bank {
        Bank { accounts: lockdep::Mutex::new(0), audit: Mutex::new(1) }
    }
    fn reset(&mut self) {
        self.accounts = Mutex::new(0);
    }
}
static STATS: lockdep::Mutex<u32> = lockdep::Mutex::new(0);
fn f() {
    let balance = Mutex::new(0);
    let mut total: Mutex<u64> = Mutex::new(0);
    let shared = Arc::new(Mutex::new(0));
    let split =
        Mutex::new(0);
    assert!(x == Mutex::new(0));
    make(Mutex::new(0), 1);
}
static STATE: LazyLock<Mutex<u8>> = LazyLock::new(|| Mutex::new(7));
fn h() { let lazy = Lazy::new(move |_x| Mutex::new(8)); }
";
        assert_eq!(
            at(src, "lockdep::Mutex::new(0), audit").as_deref(),
            Some("accounts")
        );
        assert_eq!(at(src, "Mutex::new(1)").as_deref(), Some("audit"));
        assert_eq!(
            at(src, "Mutex::new(0);\n    }").as_deref(),
            Some("self.accounts")
        );
        assert_eq!(at(src, "lockdep::Mutex::new(0);").as_deref(), Some("STATS"));
        assert_eq!(
            at(src, "Mutex::new(0);\n    let mut").as_deref(),
            Some("balance")
        );
        assert_eq!(
            at(src, "Mutex::new(0);\n    let shared").as_deref(),
            Some("total")
        );
        assert_eq!(at(src, "Mutex::new(0));").as_deref(), Some("shared"));
        assert_eq!(
            at(src, "Mutex::new(0);\n    assert").as_deref(),
            Some("split")
        );
        assert_eq!(at(src, "Mutex::new(0));\n    make").as_deref(), None);
        assert_eq!(at(src, "Mutex::new(0), 1").as_deref(), None);
        assert_eq!(at(src, "Mutex::new(7)").as_deref(), Some("STATE"));
        assert_eq!(at(src, "Mutex::new(8)").as_deref(), Some("lazy"));
    }

    #[test]
    fn assignments_to_places() {
        let src = "fn g(&mut self) {\n    self.accounts = Mutex::new(0);\n}\n";
        assert_eq!(expression_in(src, 2, 21).as_deref(), Some("self.accounts"));
    }

    #[test]
    fn out_of_range_is_none() {
        assert_eq!(expression_in("let a = 1;", 5, 1), None);
        assert_eq!(expression_in("let a = 1;", 1, 0), None);
    }
}
