//! `lockdep stat`: the lock statistics of recordings (`LOCKDEP_STAT=1 LOCKDEP_RECORD=DIR`),
//! merged by class over every process, as the kernel's `/proc/lock_stat` table, as JSON, or as
//! an SVG chart of the classes that cost the most wait and hold time.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lockdep::proc::lock_stat::{micros, ClassStats, KindStats, LockStats, LockTime, SortKey};
use lockdep::record;

use crate::files;

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The kernel's `/proc/lock_stat` table.
    Text,
    /// One JSON object: `{"classes": [...]}`, times in nanoseconds.
    Json,
    /// A bar chart of the top classes by wait and hold time.
    Svg,
}

/// What to sort by (largest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sort {
    /// Contentions (read and write).
    Contentions,
    /// Total wait time.
    Wait,
    /// Total hold time.
    Hold,
    /// Acquisitions.
    Acquisitions,
}

impl From<Sort> for SortKey {
    fn from(s: Sort) -> SortKey {
        match s {
            Sort::Contentions => SortKey::Contentions,
            Sort::Wait => SortKey::Wait,
            Sort::Hold => SortKey::Hold,
            Sort::Acquisitions => SortKey::Acquisitions,
        }
    }
}

/// How many classes the chart shows.
const CHART_CLASSES: usize = 20;

pub fn run(paths: &[PathBuf], sort: Sort, format: Format, output: Option<&Path>) -> ExitCode {
    let Ok(mut stats) = load(paths) else {
        return ExitCode::from(2);
    };
    stats.sort_by(sort.into());
    let text = match format {
        Format::Text => stats.render(),
        Format::Json => json(&stats),
        Format::Svg => svg(&stats, sort),
    };
    let written = match output {
        Some(p) => std::fs::write(p, &text),
        None => io::stdout().lock().write_all(text.as_bytes()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lockdep stat: cannot write the output: {e}");
            ExitCode::from(2)
        }
    }
}

/// Reads every recording under `paths` and merges their statistics. Errors name the file and
/// byte, on stderr; recordings without statistics add nothing.
fn load(paths: &[PathBuf]) -> Result<LockStats, ()> {
    let mut found = Vec::new();
    let mut bad = false;
    let wanted = |p: &Path| p.extension().is_some_and(|e| e == record::EXTENSION);
    for p in paths {
        if let Err(e) = files::collect(p, true, &wanted, &mut found) {
            eprintln!("{}: {e}", p.display());
            bad = true;
        }
    }
    if found.is_empty() && !bad {
        eprintln!(
            "error: nothing to read: no recording (*.{}) was found",
            record::EXTENSION
        );
        return Err(());
    }
    let mut merged = LockStats::default();
    let mut with_stats = 0;
    for f in &found {
        let read = files::read(f, files::MAX_INPUT_BYTES)
            .map_err(|e| format!("{}: {e}", f.display()))
            .and_then(|b| {
                record::read_bytes(&f.display().to_string(), &b).map_err(|e| e.to_string())
            });
        match read {
            Ok(r) => {
                for w in &r.warnings {
                    eprintln!("warning: {w}");
                }
                for e in &r.errors {
                    eprintln!("{e}");
                    bad = true;
                }
                if let Some(s) = &r.stats {
                    merged.merge(s);
                    with_stats += 1;
                }
            }
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        return Err(());
    }
    if with_stats == 0 {
        eprintln!(
            "lockdep stat: none of the {} recordings has lock statistics (record with LOCKDEP_STAT=1)",
            found.len()
        );
    }
    Ok(merged)
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_time(out: &mut String, t: &LockTime) {
    let _ = write!(
        out,
        "{{\"nr\":{},\"min_ns\":{},\"max_ns\":{},\"total_ns\":{},\"avg_ns\":{}}}",
        t.nr,
        t.min_ns,
        t.max_ns,
        t.total_ns,
        t.avg_ns()
    );
}

fn json_kind(out: &mut String, k: &KindStats) {
    let _ = write!(
        out,
        "{{\"con_bounces\":{},\"contentions\":{},\"wait\":",
        k.con_bounces,
        k.contentions()
    );
    json_time(out, &k.wait);
    let _ = write!(
        out,
        ",\"acq_bounces\":{},\"acquisitions\":{},\"hold\":",
        k.acq_bounces, k.acquisitions
    );
    json_time(out, &k.hold);
    out.push('}');
}

/// The statistics as JSON, classes in the chosen order.
pub fn json(stats: &LockStats) -> String {
    let mut out = String::from("{\"classes\":[");
    for (i, c) in stats.classes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n{\"name\":");
        json_str(&mut out, &c.name);
        let _ = write!(out, ",\"stable_id\":\"{:016x}\",\"write\":", c.stable_id);
        json_kind(&mut out, &c.write);
        out.push_str(",\"read\":");
        json_kind(&mut out, &c.read);
        for (key, points) in [
            ("contention_points", &c.contention_points),
            ("contending_points", &c.contending_points),
        ] {
            let _ = write!(out, ",\"{key}\":[");
            for (j, p) in points.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str("{\"site\":");
                json_str(&mut out, &p.site);
                let _ = write!(out, ",\"count\":{}}}", p.count);
            }
            out.push(']');
        }
        out.push('}');
    }
    out.push_str("\n]}\n");
    out
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A duration for a person: ns, µs, ms or s.
fn human(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", f / 1e6)
    } else {
        format!("{:.2} s", f / 1e9)
    }
}

/// A horizontal bar chart: per class (the top [`CHART_CLASSES`] in the chosen order) a red bar
/// of its total wait time and a blue bar of its total hold time, on one scale, with the numbers
/// and the contentions and acquisitions written beside them; hovering shows the kernel's line.
pub fn svg(stats: &LockStats, sort: Sort) -> String {
    const ROW: f64 = 40.0;
    const TOP: f64 = 70.0;
    const BAR_X: f64 = 20.0;
    const BAR_W: f64 = 560.0;
    let shown: Vec<&ClassStats> = stats.classes.iter().take(CHART_CLASSES).collect();
    let scale = shown
        .iter()
        .map(|c| c.wait_total_ns().max(c.hold_total_ns()))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let width = BAR_X + BAR_W + 320.0;
    let height = TOP + ROW * shown.len().max(1) as f64 + 50.0;
    let mut o = String::new();
    let _ = writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"12\">"
    );
    let _ = writeln!(o, "<title>lock_stat: top classes by {sort:?}</title>");
    let _ = writeln!(o, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let order = format!("{sort:?}").to_lowercase();
    let _ = writeln!(
        o,
        "<text x=\"{BAR_X}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">Lock classes by {} ({} of {} shown)</text>",
        esc(&order),
        shown.len(),
        stats.classes.len()
    );
    let _ = writeln!(
        o,
        "<rect x=\"{BAR_X}\" y=\"38\" width=\"12\" height=\"10\" fill=\"#d62728\"/><text x=\"{}\" y=\"47\">total wait time (contended)</text>",
        BAR_X + 18.0
    );
    let _ = writeln!(
        o,
        "<rect x=\"{}\" y=\"38\" width=\"12\" height=\"10\" fill=\"#1f77b4\"/><text x=\"{}\" y=\"47\">total hold time</text>",
        BAR_X + 240.0,
        BAR_X + 258.0
    );
    if shown.is_empty() {
        let _ = writeln!(
            o,
            "<text x=\"{BAR_X}\" y=\"{}\">no lock statistics recorded</text>",
            TOP + 14.0
        );
    }
    for (i, c) in shown.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let wait = c.wait_total_ns();
        let hold = c.hold_total_ns();
        let ww = BAR_W * wait as f64 / scale;
        let hw = BAR_W * hold as f64 / scale;
        let tip = format!(
            "{}: {} contentions, wait total {} µs, max {} µs; {} acquisitions, hold total {} µs, max {} µs",
            c.name,
            c.contentions(),
            micros(wait),
            micros(c.write.wait.max_ns.max(c.read.wait.max_ns)),
            c.acquisitions(),
            micros(hold),
            micros(c.write.hold.max_ns.max(c.read.hold.max_ns)),
        );
        let _ = writeln!(o, "<g class=\"lock-class\"><title>{}</title>", esc(&tip));
        let _ = writeln!(
            o,
            "<text x=\"{BAR_X}\" y=\"{}\" font-weight=\"bold\">{}</text>",
            y + 10.0,
            esc(&c.name)
        );
        let _ = writeln!(
            o,
            "<rect x=\"{BAR_X}\" y=\"{}\" width=\"{ww:.1}\" height=\"10\" fill=\"#d62728\"/>",
            y + 14.0
        );
        let _ = writeln!(
            o,
            "<rect x=\"{BAR_X}\" y=\"{}\" width=\"{hw:.1}\" height=\"10\" fill=\"#1f77b4\"/>",
            y + 25.0
        );
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{}\">{} in {} contentions</text>",
            BAR_X + ww + 6.0,
            y + 23.0,
            esc(&human(wait)),
            c.contentions()
        );
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{}\">{} over {} acquisitions</text>",
            BAR_X + hw + 6.0,
            y + 34.0,
            esc(&human(hold)),
            c.acquisitions()
        );
        let _ = writeln!(o, "</g>");
    }
    let _ = writeln!(o, "</svg>");
    o
}
