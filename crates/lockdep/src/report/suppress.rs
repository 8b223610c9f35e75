//! Suppressions: accepting a known report, the last resort.
//!
//! A report that is understood and judged harmless can be silenced by an entry in a suppression
//! file, so that a project with one benign report does not have to turn checking off. **An
//! annotation is almost always the better fix**: a subclass (`lock_nested`) for two locks of one
//! class nested on purpose, a nest lock (`lock_nest_lock`) for many locks of one class taken
//! under an outer lock, or separate classes (`lock_class!`, `Mutex::with_key`) for locks that only
//! share a constructor. Those tell the validator the truth and keep it checking everything else;
//! a suppression only hides one report and must say why.
//!
//! ## The file
//!
//! `lockdep.toml` at the workspace root (found by walking up from the current directory to the
//! directory whose `Cargo.toml` has a `[workspace]` table, or else the nearest `Cargo.toml`), or
//! the file named by `LOCKDEP_SUPPRESS`. Each `[[suppress]]` entry names a report kind, the
//! classes of the report, and the reason, which is mandatory:
//!
//! ```toml
//! [[suppress]]
//! kind = "circular"                       # a ReportKind name: circular, recursive, ...
//! classes = ["accounts", "src/audit.rs:*"] # class names or key sites; `*` and `?` globs
//! reason = "audit is only taken under accounts at start-up, before any other thread exists"
//! ```
//!
//! A class pattern matches a class when it matches, as a whole, the class's printed name
//! (`accounts@src/bank.rs:14:23`), the name without its site (`accounts`), or its key site
//! (`src/bank.rs:14:23`; a pattern that does not start with `*` or `/` may also match the site's
//! tail after a `/`, so `src/bank.rs:*` matches `crates/bank/src/bank.rs:14:23`). An entry
//! matches a report of its kind when every pattern matches one of the report's classes and every
//! class of the report is matched by a pattern: it silences exactly that report, not one that
//! involves a further class.
//!
//! A suppressed report is counted ([`Suppressions::suppressed`]) and never printed, handed to a
//! handler or turned into a panic. [`Suppressions::stale`] lists the entries that matched
//! nothing, so that `cargo lockdep` can point out suppressions that are no longer needed.
//!
//! ```
//! use lockdep::suppress::Suppressions;
//!
//! let s = Suppressions::parse(
//!     "lockdep.toml",
//!     "[[suppress]]\nkind = \"circular\"\nclasses = [\"a\", \"b\"]\nreason = \"start-up only\"\n",
//! )
//! .unwrap();
//! assert_eq!(s.entries()[0].line, 1);
//!
//! let err = Suppressions::parse("lockdep.toml", "[[suppress]]\nkind = \"circular\"\nclasses = [\"a\"]\n")
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "lockdep.toml:1: suppression entry has no `reason` (every suppression must say why)");
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::lock::class::ClassInfo;
use crate::report::{Report, ReportKind};

/// The file name looked for at the workspace root.
pub const FILE_NAME: &str = "lockdep.toml";

/// The environment variable naming a suppression file (overrides the search).
pub const ENV_VAR: &str = "LOCKDEP_SUPPRESS";

/// One suppression entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The kind of report it silences.
    pub kind: ReportKind,
    /// The class patterns (names or sites, `*` and `?` globs).
    pub classes: Vec<String>,
    /// Why the report is accepted.
    pub reason: String,
    /// The line of the entry's `[[suppress]]` header (1-based).
    pub line: usize,
}

impl Entry {
    /// Whether the entry silences `report` (see the module docs for the rule).
    pub fn matches(&self, report: &Report) -> bool {
        if report.kind != self.kind {
            return false;
        }
        let classes = report_classes(report);
        !classes.is_empty()
            && self
                .classes
                .iter()
                .all(|p| classes.iter().any(|c| class_matches(p, c)))
            && classes
                .iter()
                .all(|c| self.classes.iter().any(|p| class_matches(p, c)))
    }
}

/// A suppression file that could not be used: the file, the line and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based), when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SuppressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for SuppressError {}

/// A parsed suppression file, with a count of the reports each entry silenced.
#[derive(Debug, Default)]
pub struct Suppressions {
    file: Option<PathBuf>,
    entries: Vec<Entry>,
    hits: Vec<AtomicU64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    suppress: Vec<toml::Spanned<EntrySpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    kind: Option<toml::Spanned<String>>,
    classes: Option<toml::Spanned<Vec<String>>>,
    reason: Option<toml::Spanned<String>>,
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line of the `[[suppress]]` header an entry's span lies under.
fn header_line(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    let before = &text[..at];
    // The span of an array-of-tables element starts at its first key; the header is the last
    // `[[` before that.
    match before.rfind("[[") {
        Some(h) => line_of(text, h),
        None => line_of(text, at),
    }
}

impl Suppressions {
    /// No entries.
    pub fn empty() -> Suppressions {
        Suppressions::default()
    }

    /// Parses the text of a suppression file; `file` names it in errors.
    pub fn parse(file: impl AsRef<Path>, text: &str) -> Result<Suppressions, SuppressError> {
        let file = file.as_ref().to_path_buf();
        let err = |line: Option<usize>, message: String| SuppressError {
            file: file.clone(),
            line,
            message,
        };
        let spec: FileSpec = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            err(line, e.message().trim().to_string())
        })?;
        let mut entries = Vec::with_capacity(spec.suppress.len());
        for item in spec.suppress {
            let item_start = item.span().start;
            let e = item.into_inner();
            // The header is the last `[[` before the entry's first field (the span of the
            // element itself may cover the whole array).
            let first_field = [
                e.kind.as_ref().map(|k| k.span().start),
                e.classes.as_ref().map(|k| k.span().start),
                e.reason.as_ref().map(|k| k.span().start),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(item_start);
            let line = header_line(text, first_field);
            let reason = match e.reason {
                Some(r) if !r.get_ref().trim().is_empty() => r.into_inner(),
                Some(r) => {
                    return Err(err(
                        Some(line_of(text, r.span().start)),
                        "suppression entry has an empty `reason` (every suppression must say why)"
                            .into(),
                    ))
                }
                None => {
                    return Err(err(
                        Some(line),
                        "suppression entry has no `reason` (every suppression must say why)".into(),
                    ))
                }
            };
            let kind = match e.kind {
                None => return Err(err(Some(line), "suppression entry has no `kind`".into())),
                Some(k) => match ReportKind::from_name(k.get_ref().trim()) {
                    Some(kind) => kind,
                    None => {
                        let names: Vec<&str> = ReportKind::ALL.iter().map(|k| k.name()).collect();
                        return Err(err(
                            Some(line_of(text, k.span().start)),
                            format!(
                                "unknown report kind {:?} (one of {})",
                                k.get_ref(),
                                names.join(", ")
                            ),
                        ));
                    }
                },
            };
            let classes = match e.classes {
                None => {
                    return Err(err(
                        Some(line),
                        "suppression entry has no `classes` (the report's classes, by name or \
                         site; `[\"*\"]` for any)"
                            .into(),
                    ))
                }
                Some(c) if c.get_ref().is_empty() || c.get_ref().iter().any(|p| p.is_empty()) => {
                    return Err(err(
                        Some(line_of(text, c.span().start)),
                        "`classes` must list at least one non-empty pattern".into(),
                    ))
                }
                Some(c) => c.into_inner(),
            };
            entries.push(Entry {
                kind,
                classes,
                reason,
                line,
            });
        }
        let hits = entries.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Suppressions {
            file: Some(file),
            entries,
            hits,
        })
    }

    /// Reads and parses a suppression file.
    pub fn load(path: impl AsRef<Path>) -> Result<Suppressions, SuppressError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| SuppressError {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot read the suppression file: {e}"),
        })?;
        Suppressions::parse(path, &text)
    }

    /// The suppression file that applies to a program started in `dir`: `LOCKDEP_SUPPRESS` if set
    /// (even to a file that does not exist: loading it then fails), else `lockdep.toml` in the
    /// workspace root above `dir` (see the module docs), if there is one.
    pub fn locate(dir: &Path) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(ENV_VAR).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let root = workspace_root(dir)?;
        let file = root.join(FILE_NAME);
        file.is_file().then_some(file)
    }

    /// [`locate`](Suppressions::locate) from the current directory, then
    /// [`load`](Suppressions::load): `Ok(None)` when no file applies.
    pub fn from_env() -> Result<Option<Suppressions>, SuppressError> {
        let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        match Suppressions::locate(&dir) {
            None => Ok(None),
            Some(p) => Suppressions::load(p).map(Some),
        }
    }

    /// The file the entries came from (`None` for [`empty`](Suppressions::empty)).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The index of the first entry that silences `report`, without counting it.
    pub fn find(&self, report: &Report) -> Option<usize> {
        self.entries.iter().position(|e| e.matches(report))
    }

    /// Whether `report` is suppressed; if so, counts it for the entry that matched.
    pub fn check(&self, report: &Report) -> bool {
        match self.find(report) {
            Some(i) => {
                self.hits[i].fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// How many reports each entry silenced so far, in entry order.
    pub fn hits(&self) -> Vec<u64> {
        self.hits
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect()
    }

    /// The number of reports silenced so far.
    pub fn suppressed(&self) -> u64 {
        self.hits().iter().sum()
    }

    /// The entries that have silenced nothing so far.
    pub fn stale(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .zip(self.hits())
            .filter(|(_, h)| *h == 0)
            .map(|(e, _)| e)
            .collect()
    }
}

/// The workspace root above `dir`: the nearest ancestor whose `Cargo.toml` has a `[workspace]`
/// table, else the nearest ancestor with a `Cargo.toml`.
pub fn workspace_root(dir: &Path) -> Option<PathBuf> {
    let mut nearest = None;
    for d in dir.ancestors() {
        let manifest = d.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if nearest.is_none() {
            nearest = Some(d.to_path_buf());
        }
        if text.lines().any(|l| l.trim() == "[workspace]") {
            return Some(d.to_path_buf());
        }
    }
    nearest
}

/// The classes a report is about (those [`Report::classes`] lists), as snapshots.
fn report_classes(report: &Report) -> Vec<&ClassInfo> {
    let ids = report.classes();
    let mut out: Vec<&ClassInfo> = Vec::new();
    let all = report
        .lock
        .iter()
        .chain(report.holding.iter())
        .chain(report.held.iter())
        .map(|l| &l.class)
        .chain(report.chain.iter().map(|c| &c.class));
    for c in all {
        if ids.contains(&c.id) && !out.iter().any(|o| o.id == c.id) {
            out.push(c);
        }
    }
    out
}

/// Whether a class pattern matches a class (see the module docs).
pub fn class_matches(pattern: &str, class: &ClassInfo) -> bool {
    if glob(pattern, &class.name) || glob(pattern, class.short_name()) {
        return true;
    }
    let Some(site) = class.site.as_deref() else {
        return false;
    };
    if glob(pattern, site) {
        return true;
    }
    if pattern.starts_with('*') || pattern.starts_with('/') {
        return false;
    }
    site.match_indices('/')
        .any(|(i, _)| glob(pattern, &site[i + 1..]))
}

/// A whole-string glob match: `*` any run of characters, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(glob("*", ""));
        assert!(glob("src/*.rs:*", "src/bank.rs:1:2"));
        assert!(!glob("bank", "bank2"));
    }

    #[test]
    fn an_entry_without_a_reason_names_its_line() {
        let text = "# accepted reports\n\n[[suppress]]\nkind = \"circular\"\nclasses = [\"a\", \"b\"]\nreason = \"x\"\n\n[[suppress]]\nkind = \"recursive\"\nclasses = [\"c\"]\n";
        let e = Suppressions::parse("ws/lockdep.toml", text).unwrap_err();
        assert_eq!(e.line, Some(8), "{e}");
        assert!(e.to_string().starts_with("ws/lockdep.toml:8: "), "{e}");
        assert!(e.message.contains("reason"), "{e}");
    }

    #[test]
    fn bad_kinds_fields_and_syntax_name_their_line() {
        let e = Suppressions::parse(
            "f.toml",
            "[[suppress]]\nkind = \"circularr\"\nclasses = [\"a\"]\nreason = \"r\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("unknown report kind"), "{e}");
        let e = Suppressions::parse(
            "f.toml",
            "[[suppress]]\nkind = \"circular\"\nclasses = [\"a\"]\nreason = \"r\"\nreasno = 1\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        let e = Suppressions::parse("f.toml", "[[suppress]\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        let e = Suppressions::parse(
            "f.toml",
            "[[suppress]]\nkind = \"circular\"\nclasses = []\nreason = \"r\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = Suppressions::parse(
            "f.toml",
            "[[suppress]]\nkind = \"circular\"\nclasses = [\"a\"]\nreason = \"  \"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
    }

    #[test]
    fn entries_keep_their_lines() {
        let text = "[[suppress]]\nkind = \"circular\"\nclasses = [\"a\", \"b\"]\nreason = \"x\"\n\n[[suppress]]\nkind = \"recursive\"\nclasses = [\"c\"]\nreason = \"y\"\n";
        let s = Suppressions::parse("f", text).unwrap();
        let lines: Vec<usize> = s.entries().iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 6]);
        assert_eq!(s.entries()[1].kind, ReportKind::Recursive);
        assert_eq!(s.stale().len(), 2);
        assert!(Suppressions::parse("f", "").unwrap().entries().is_empty());
    }

    #[test]
    fn the_workspace_root_is_found_by_walking_up() {
        let base = std::env::temp_dir().join(format!("lockdep-suppress-{}", std::process::id()));
        let member = base.join("crates/m/src");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(base.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::write(
            base.join("crates/m/Cargo.toml"),
            "[package]\nname = \"m\"\n",
        )
        .unwrap();
        assert_eq!(workspace_root(&member).as_deref(), Some(base.as_path()));
        std::fs::remove_file(base.join("Cargo.toml")).unwrap();
        assert_eq!(
            workspace_root(&member).as_deref(),
            Some(base.join("crates/m").as_path())
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
