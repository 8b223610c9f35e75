//! `lockdep selftest`: the kernel's boot-time locking selftest (lib/locking-selftest.c),
//! replayed from scenario files and printed as the kernel prints its table.
//!
//! The matrix lives in `crates/lockdep-cli/selftest/`, one scenario case per cell. A case is named after
//! the kernel's test function and the column it fills: `AA/spin`, `ABBA1/rsem`,
//! `irqsafe1-hard-12/wlock`, `W1R2_W2R3_W3R1-123/rlock`, `wait-hardirq/mutex`,
//! `fs_reclaim_wrong_nesting`. [`layout`] rebuilds the kernel's rows from those names, in the
//! kernel's order; a cell is `  ok  |` when its case passed its expectations (which are the
//! kernel's), `FAILED|` otherwise.
//!
//! Without a directory the files embedded in the binary at build time are replayed, so the
//! command works from anywhere; with one, the `*.lockdep` and `*.lockdep.pending` files found
//! in it (recursively). `*.lockdep.pending` files hold families whose engine support is still
//! being written: `lockdep replay DIR` skips them, so that the bundled scenarios keep passing,
//! but the selftest table shows them.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lockdep::scenario::{self, Case};

/// Exit status when every cell is ok.
const EXIT_OK: u8 = 0;
/// Exit status when a cell failed (or is missing).
const EXIT_FAILED: u8 = 1;
/// Exit status on malformed input: a file that does not parse, a directory that cannot be
/// read, a case name given twice, or no selftest case at all.
const EXIT_MALFORMED: u8 = 2;

/// Declares the embedded matrix files: their paths (as reports name them) and contents.
macro_rules! embedded {
    ($($file:literal),* $(,)?) => {
        &[$((
            concat!("crates/lockdep-cli/selftest/", $file),
            include_str!(concat!("../selftest/", $file)),
        )),*]
    };
}

/// The matrix, embedded at build time: (path, text) of every file of `crates/lockdep-cli/selftest/`.
pub const EMBEDDED: &[(&str, &str)] = embedded![
    "01-deadlock.lockdep",
    "02-unlock-init.lockdep",
    "03-read-lock.lockdep",
    "04-rlock-cycles.lockdep",
    "05-irqsafe1.lockdep",
    "06-irqsafe2A.lockdep",
    "07-irqsafe2B.lockdep",
    "08-irqsafe3.lockdep",
    "09-irqsafe4.lockdep",
    "10-irq-inversion.lockdep",
    "11-irq-read-recursion.lockdep",
    "12-fs-reclaim.lockdep",
    "13-wait-context.lockdep",
    "14-hardirq-unsafe-softirq-safe.lockdep",
    "15-ww.lockdep",
];

/// The columns of the main table, as case-name suffixes.
const MAIN_COLUMNS: [&str; 6] = ["spin", "wlock", "rlock", "mutex", "wsem", "rsem"];
/// The columns of the wait-context table, as case-name suffixes.
const WAIT_COLUMNS: [&str; 4] = ["rcu", "raw", "spin", "mutex"];
/// The kernel's header of the main table (5.13: no rtmutex column).
const MAIN_HEADER: &str =
    "                                 | spin |wlock |rlock |mutex | wsem | rsem |";
/// The kernel's header of the wait-context table.
const WAIT_HEADER: &str = "                                 | rcu  | raw  | spin |mutex |";
/// The kernel's header of the wound/wait block/try/context table.
const WW_HEADER: &str = "                                 |block | try  |context|";
/// The kernel's rule around that header.
const WW_SEPARATOR: &str = "  -----------------------------------------------------";
/// The kernel's separator between groups of rows.
const SEPARATOR: &str =
    "  --------------------------------------------------------------------------";
/// The event orders of a three-event family, as the kernel generates them.
const PERMS3: [&str; 6] = ["123", "132", "213", "231", "312", "321"];
/// The event orders of a two-event family.
const PERMS2: [&str; 2] = ["12", "21"];

/// One row of the table: the kernel's test name and, per column, the case that fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The name printed with `%33s:`.
    pub title: String,
    /// Per column of the table: the case name, or `None` for a column the row leaves blank.
    /// A row with one unnamed column (`fs_reclaim` tests) has one entry.
    pub cells: Vec<Option<String>>,
}

/// A group of rows with the lines the kernel prints before it (banners, headers, separators).
/// A block is printed only if some case of its rows exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Lines printed before the rows.
    pub lines: Vec<&'static str>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// A row with a case in each of `columns`, named `{prefix}/{column}`, blank elsewhere.
fn row(title: impl Into<String>, prefix: &str, all: &[&str], columns: &[&str]) -> Row {
    Row {
        title: title.into(),
        cells: all
            .iter()
            .map(|c| columns.contains(c).then(|| format!("{prefix}/{c}")))
            .collect(),
    }
}

/// A row with one unnamed cell.
fn single(title: &str, case: &str) -> Row {
    Row {
        title: title.to_string(),
        cells: vec![Some(case.to_string())],
    }
}

/// The rows of an irq family as the kernel's `DO_TESTCASE_6I` and friends print them: per event
/// order, a `hard-` row then a `soft-` row, with a case in each of `columns`.
fn hard_soft_rows(out: &mut Vec<Row>, title: &str, family: &str, perms: &[&str], columns: &[&str]) {
    for nr in perms {
        for v in ["hard", "soft"] {
            out.push(row(
                format!("{v}-{title}/{nr}"),
                &format!("{family}-{v}-{nr}"),
                &MAIN_COLUMNS,
                columns,
            ));
        }
    }
}

/// The kernel's table, in its order: which case fills which cell.
pub fn layout() -> Vec<Block> {
    let all = &MAIN_COLUMNS[..];
    let irq3 = &["spin", "wlock", "rlock"][..];
    let rw2 = &["wlock", "rlock"][..];
    let rr = &["rlock", "rsem"][..];

    // DO_TESTCASE_6R / DO_TESTCASE_6.
    let mut main = Vec::new();
    for (title, family) in [
        ("A-A deadlock", "AA"),
        ("A-B-B-A deadlock", "ABBA"),
        ("A-B-B-C-C-A deadlock", "ABBCCA"),
        ("A-B-C-A-B-C deadlock", "ABCABC"),
        ("A-B-B-C-C-D-D-A deadlock", "ABBCCDDA"),
        ("A-B-C-D-B-D-D-A deadlock", "ABCDBDDA"),
        ("A-B-C-D-B-C-D-A deadlock", "ABCDBCDA"),
        ("double unlock", "double_unlock"),
        ("initialize held", "init_held"),
    ] {
        main.push(row(title, family, all, all));
    }

    // The read-lock rows, then DO_TESTCASE_6x1RR(B).
    let mut read = Vec::new();
    for (title, family) in [
        ("recursive read-lock", "AA1"),
        ("recursive read-lock #2", "AA1B"),
        ("mixed read-write-lock", "AA2"),
        ("mixed write-read-lock", "AA3"),
        ("mixed read-lock/lock-write ABBA", "ABBA1"),
        ("mixed read-lock/lock-read ABBA", "ABBA2"),
        ("mixed write-lock/lock-write ABBA", "ABBA3"),
    ] {
        read.push(row(title, family, all, rr));
    }
    read.push(row(
        "chain cached mixed R-L/L-W ABBA",
        "chaincache_ABBA1",
        all,
        &["rlock"],
    ));
    for (title, family) in [
        ("rlock W1R2/W2R3/W3R1", "W1R2_W2R3_W3R1"),
        ("rlock W1W2/R2R3/W3R1", "W1W2_R2R3_W3R1"),
        ("rlock W1W2/R2R3/R3W1", "W1W2_R2R3_R3W1"),
        ("rlock W1R2/R2R3/W3W1", "W1R2_R2R3_W3W1"),
    ] {
        for nr in PERMS3 {
            read.push(row(
                format!("{title}/{nr}"),
                &format!("{family}-{nr}"),
                all,
                &["rlock"],
            ));
        }
    }

    // The irq-context rows: DO_TESTCASE_2x6, 2x3, 6x6, 6x6RW, 6x2x2RW.
    let mut irq = Vec::new();
    hard_soft_rows(&mut irq, "irqs-on + irq-safe-A", "irqsafe1", &PERMS2, irq3);
    for nr in PERMS2 {
        irq.push(row(
            format!("sirq-safe-A => hirqs-on/{nr}"),
            &format!("irqsafe2A-{nr}"),
            all,
            irq3,
        ));
    }
    hard_soft_rows(&mut irq, "safe-A + irqs-on", "irqsafe2B", &PERMS2, irq3);
    hard_soft_rows(&mut irq, "safe-A + unsafe-B #1", "irqsafe3", &PERMS3, irq3);
    hard_soft_rows(&mut irq, "safe-A + unsafe-B #2", "irqsafe4", &PERMS3, irq3);
    hard_soft_rows(
        &mut irq,
        "irq lock-inversion",
        "irq_inversion",
        &PERMS3,
        irq3,
    );
    hard_soft_rows(
        &mut irq,
        "irq read-recursion",
        "irq_read_recursion",
        &PERMS3,
        rw2,
    );
    hard_soft_rows(
        &mut irq,
        "irq read-recursion #2",
        "irq_read_recursion2",
        &PERMS3,
        rw2,
    );
    hard_soft_rows(
        &mut irq,
        "irq read-recursion #3",
        "irq_read_recursion3",
        &PERMS3,
        rw2,
    );

    // ww_tests(): one row per print_testname, one cell per dotest.
    let cells = |title: &str, names: &[&str]| Row {
        title: title.to_string(),
        cells: names.iter().map(|n| Some(format!("ww_test_{n}"))).collect(),
    };
    let ww = vec![
        cells(
            "ww api failures",
            &["fail_acquire", "normal", "unneeded_slow"],
        ),
        cells("ww contexts mixing", &["two_contexts", "diff_class"]),
        cells(
            "finishing ww context",
            &[
                "context_done_twice",
                "context_unlock_twice",
                "context_fini_early",
                "context_lock_after_done",
            ],
        ),
        cells(
            "locking mismatches",
            &[
                "object_unlock_twice",
                "object_lock_unbalanced",
                "object_lock_stale_context",
            ],
        ),
        cells(
            "EDEADLK handling",
            &[
                "edeadlk_normal",
                "edeadlk_normal_slow",
                "edeadlk_no_unlock",
                "edeadlk_no_unlock_slow",
                "edeadlk_acquire_more",
                "edeadlk_acquire_more_slow",
                "edeadlk_acquire_more_edeadlk",
                "edeadlk_acquire_more_edeadlk_slow",
                "edeadlk_acquire_wrong",
                "edeadlk_acquire_wrong_slow",
            ],
        ),
        cells("spinlock nest unlocked", &["spin_nest_unlocked"]),
        cells("spinlock nest test", &["spin_nest_lock"]),
    ];
    let ww_table = ["context", "try", "block", "spinlock"]
        .iter()
        .map(|row| {
            let prefix = if *row == "spinlock" { "spin" } else { row };
            let names: Vec<String> = ["block", "try", "context"]
                .iter()
                .map(|col| format!("{prefix}_{col}"))
                .collect();
            cells(row, &names.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();

    let fs_reclaim = vec![
        single("correct nesting", "fs_reclaim_correct_nesting"),
        single("wrong nesting", "fs_reclaim_wrong_nesting"),
        single("protected nesting", "fs_reclaim_protected_nesting"),
    ];

    let wait_all = &WAIT_COLUMNS[..];
    let mut wait = Vec::new();
    for (title, outer) in [
        ("in hardirq context", "hardirq"),
        ("in hardirq context (not threaded)", "notthreaded_hardirq"),
        ("in softirq context", "softirq"),
        ("in RCU context", "rcu"),
        ("in RCU-bh context", "rcu_bh"),
        ("in RCU-sched context", "rcu_sched"),
        ("in RAW_SPINLOCK context", "raw_spinlock"),
        ("in SPINLOCK context", "spinlock"),
        ("in MUTEX context", "mutex"),
    ] {
        wait.push(row(title, &format!("wait-{outer}"), wait_all, wait_all));
    }

    vec![
        Block {
            lines: vec![
                "------------------------",
                "| Locking API testsuite:",
                "----------------------------------------------------------------------------",
                MAIN_HEADER,
                SEPARATOR,
            ],
            rows: main,
        },
        Block {
            lines: vec![SEPARATOR],
            rows: read,
        },
        Block {
            lines: vec![SEPARATOR],
            rows: irq,
        },
        Block {
            lines: vec![
                SEPARATOR,
                "  | Wound/wait tests |",
                "  ---------------------",
            ],
            rows: ww,
        },
        Block {
            lines: vec![WW_SEPARATOR, WW_HEADER, WW_SEPARATOR],
            rows: ww_table,
        },
        Block {
            lines: vec![
                "  --------------------",
                "  | fs_reclaim tests |",
                "  --------------------",
            ],
            rows: fs_reclaim,
        },
        Block {
            lines: vec![
                SEPARATOR,
                "  | wait context tests |",
                SEPARATOR,
                WAIT_HEADER,
                SEPARATOR,
            ],
            rows: wait,
        },
        Block {
            lines: vec![],
            rows: vec![single(
                "hardirq_unsafe_softirq_safe",
                "hardirq_unsafe_softirq_safe",
            )],
        },
    ]
}

/// A parsed case and where it came from.
struct Found {
    file: String,
    case: Case,
}

/// Runs `lockdep selftest [DIR]`: replays the matrix and prints the kernel's table on stdout
/// (with `verbose`, every case's reports and verdict first). Exit status 0 when every cell is
/// ok, 1 when one failed or is missing, 2 on malformed input.
pub fn run(dir: Option<&Path>, verbose: bool) -> ExitCode {
    let mut malformed = false;
    let mut sources: Vec<(String, String)> = Vec::new();
    match dir {
        None => {
            sources.extend(
                EMBEDDED
                    .iter()
                    .map(|(name, text)| (name.to_string(), text.to_string())),
            );
        }
        Some(dir) => {
            let mut files = Vec::new();
            if let Err(e) = collect(dir, true, &mut files) {
                eprintln!("{}: {e}", dir.display());
                malformed = true;
            }
            for file in files {
                let name = file.display().to_string();
                let text = crate::files::read(&file, crate::files::MAX_INPUT_BYTES).and_then(|b| {
                    String::from_utf8(b).map_err(|e| {
                        let at = e.utf8_error().valid_up_to();
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("byte {at}: not UTF-8 text"),
                        )
                    })
                });
                match text {
                    Ok(text) => sources.push((name, text)),
                    Err(e) => {
                        eprintln!("{name}: {e}");
                        malformed = true;
                    }
                }
            }
        }
    }

    let mut cases: HashMap<String, Found> = HashMap::new();
    for (name, text) in &sources {
        let parsed = match scenario::parse(name, text) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                malformed = true;
                continue;
            }
        };
        for case in parsed.cases {
            if let Some(first) = cases.get(&case.name) {
                eprintln!(
                    "{name}:{}: case `{}` is already defined in {}:{}",
                    case.line, case.name, first.file, first.case.line
                );
                malformed = true;
                continue;
            }
            cases.insert(
                case.name.clone(),
                Found {
                    file: name.clone(),
                    case,
                },
            );
        }
    }

    let blocks = layout();
    let mut known: Vec<&str> = Vec::new();
    for block in &blocks {
        for row in &block.rows {
            known.extend(row.cells.iter().flatten().map(String::as_str));
        }
    }
    let mut unknown: Vec<&Found> = cases
        .values()
        .filter(|f| !known.contains(&f.case.name.as_str()))
        .collect();
    unknown.sort_by(|a, b| (&a.file, a.case.line).cmp(&(&b.file, b.case.line)));
    for f in unknown {
        eprintln!(
            "{}:{}: case `{}` is not a cell of the selftest matrix (ignored)",
            f.file, f.case.line, f.case.name
        );
    }

    // Replay every case that fills a cell, in table order.
    let mut table = String::new();
    let mut verbose_out = String::new();
    let (mut total, mut failures) = (0usize, 0usize);
    for block in &blocks {
        let present = |row: &Row| {
            row.cells
                .iter()
                .flatten()
                .any(|c| cases.contains_key(c.as_str()))
        };
        if !block.rows.iter().any(present) {
            continue;
        }
        for line in &block.lines {
            table.push_str(line);
            table.push('\n');
        }
        for row in block.rows.iter().filter(|r| present(r)) {
            let mut cells = Vec::with_capacity(row.cells.len());
            for cell in &row.cells {
                let Some(name) = cell else {
                    cells.push(None);
                    continue;
                };
                total += 1;
                let ok = match cases.get(name.as_str()) {
                    Some(found) => {
                        let result = scenario::replay_case(&found.case);
                        if verbose {
                            verbose_out.push_str(&scenario::render_case(&result));
                        }
                        result.passed
                    }
                    None => {
                        eprintln!("selftest: no case `{name}` for \"{}\"", row.title);
                        false
                    }
                };
                if !ok {
                    failures += 1;
                }
                cells.push(Some(ok));
            }
            table.push_str(&render_row(&row.title, &cells));
            table.push('\n');
        }
    }

    if total == 0 {
        let from = dir.map_or("the embedded matrix".to_string(), |d| {
            d.display().to_string()
        });
        eprintln!("selftest: no selftest case in {from}");
        malformed = true;
    }
    table.push_str(&summary(failures, total));

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if out.write_all(verbose_out.as_bytes()).is_err()
        || out.write_all(table.as_bytes()).is_err()
        || out.flush().is_err()
    {
        // stdout is gone (a closed pipe): nobody is listening.
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::from(if malformed {
        EXIT_MALFORMED
    } else if failures > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// One row as the kernel prints it: the name with `%33s:`, then the cells up to the last one
/// the row has. A run of `k` blank columns before a cell prints as `7k - 1` spaces and `|`, as
/// the kernel's `pr_cont("      |")` and `pr_cont("             |")` do.
pub fn render_row(title: &str, cells: &[Option<bool>]) -> String {
    let mut line = format!("{title:>33}:");
    let mut blank = 0usize;
    for cell in cells {
        match cell {
            None => blank += 1,
            Some(ok) => {
                if blank > 0 {
                    line.push_str(&" ".repeat(7 * blank - 1));
                    line.push('|');
                    blank = 0;
                }
                line.push_str(if *ok { "  ok  |" } else { "FAILED|" });
            }
        }
    }
    line
}

/// The kernel's closing lines: `Good, all %3d testcases passed! |` or
/// `BUG: %3d unexpected failures (out of %3d) - debugging disabled! |`, between its dashes.
pub fn summary(failures: usize, total: usize) -> String {
    if failures > 0 {
        let dashes = "-----------------------------------------------------------------";
        format!(
            "{dashes}\nBUG: {failures:3} unexpected failures (out of {total:3}) - debugging \
             disabled! |\n{dashes}\n"
        )
    } else {
        format!(
            "-------------------------------------------------------\n\
             Good, all {total:3} testcases passed! |\n\
             ---------------------------------\n"
        )
    }
}

/// Whether `path` names a matrix file: `*.lockdep`, or `*.lockdep.pending`.
fn is_matrix_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".lockdep") || n.ends_with(".lockdep.pending"))
}

/// Adds `path` to `files`: a file named on the command line as it is; in a directory, the
/// matrix files, recursively, in sorted order (links to directories are not followed).
fn collect(path: &Path, named: bool, files: &mut Vec<PathBuf>) -> io::Result<()> {
    crate::files::collect(path, named, &is_matrix_file, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded_cases() -> Vec<Case> {
        EMBEDDED
            .iter()
            .flat_map(|(name, text)| {
                scenario::parse(name, text)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .cases
            })
            .collect()
    }

    #[test]
    fn every_cell_has_exactly_one_embedded_case_and_every_case_a_cell() {
        let cases = embedded_cases();
        let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a case name is used twice");
        let mut cells: Vec<String> = layout()
            .into_iter()
            .flat_map(|b| b.rows)
            .flat_map(|r| r.cells.into_iter().flatten())
            .collect();
        cells.sort_unstable();
        assert_eq!(cells, names);
    }

    #[test]
    fn the_embedded_list_is_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("selftest");
        let mut on_disk = Vec::new();
        collect(&dir, true, &mut on_disk).expect("crates/lockdep-cli/selftest is readable");
        let mut on_disk: Vec<String> = on_disk
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = EMBEDDED
            .iter()
            .map(|(name, _)| {
                name.trim_start_matches("crates/lockdep-cli/selftest/")
                    .to_string()
            })
            .collect();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn the_kernel_s_counts() {
        let count = |prefix: &str| {
            layout()
                .into_iter()
                .flat_map(|b| b.rows)
                .flat_map(|r| r.cells.into_iter().flatten())
                .filter(|c| c.starts_with(prefix))
                .count()
        };
        // "Generate 24 testcases", "12", "24", "36", ... in lib/locking-selftest.c.
        assert_eq!(count("irqsafe1-"), 12);
        assert_eq!(count("irqsafe2A-"), 6);
        assert_eq!(count("irqsafe2B-"), 12);
        assert_eq!(count("irqsafe3-"), 36);
        assert_eq!(count("irqsafe4-"), 36);
        assert_eq!(count("irq_inversion-"), 36);
        assert_eq!(count("irq_read_recursion-"), 24);
        assert_eq!(count("irq_read_recursion2-"), 24);
        assert_eq!(count("irq_read_recursion3-"), 24);
        assert_eq!(count("W1"), 24);
        assert_eq!(count("wait-"), 36);
        // ww_tests(): 3 + 2 + 4 + 3 + 10 + 1 + 1 rows of dotest, and the 4 x 3 table.
        assert_eq!(count("ww_test_"), 36);
    }

    #[test]
    fn rows_print_like_the_kernel() {
        assert_eq!(
            render_row("A-A deadlock", &[Some(false), Some(true)]),
            "                     A-A deadlock:FAILED|  ok  |"
        );
        // pr_cont("             |") for two blank columns, then the cells.
        assert_eq!(
            render_row(
                "recursive read-lock",
                &[None, None, Some(true), None, None, Some(true)]
            ),
            "              recursive read-lock:             |  ok  |             |  ok  |"
        );
        // DO_TESTCASE_2RW: pr_cont("      |") for the spin column.
        assert_eq!(
            render_row("x", &[None, Some(true), Some(true)]),
            format!("{:>33}:      |  ok  |  ok  |", "x")
        );
        // Trailing blank columns print nothing.
        assert_eq!(
            render_row("y", &[None, None, Some(true), None, None, None]),
            format!("{:>33}:             |  ok  |", "y")
        );
    }

    #[test]
    fn summaries() {
        assert_eq!(
            summary(0, 7).lines().nth(1),
            Some("Good, all   7 testcases passed! |")
        );
        assert_eq!(
            summary(3, 343).lines().nth(1),
            Some("BUG:   3 unexpected failures (out of 343) - debugging disabled! |")
        );
    }
}
