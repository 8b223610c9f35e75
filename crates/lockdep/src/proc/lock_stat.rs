//! The `/proc/lock_stat` view: per-class contention and hold statistics as values, merged and
//! printed in the kernel's format (`kernel/locking/lockdep_proc.c`, `lock_stat version 0.4`).
//!
//! A [`LockStats`] is what [`lockdep::stat::snapshot`](crate::stat::snapshot) returns for the
//! running process, and what `lockdep stat` reads back from recordings of many processes and
//! [merges](LockStats::merge) by class identity
//! ([`stable_id`](crate::ClassInfo::stable_id)). Its `Display` is the kernel's table: one line per
//! class and kind (a class taken both ways gets a `-W` and a `-R` line), times in microseconds
//! with two decimals, then the class's top four *contention points* (the call sites that waited)
//! and top four *contending points* (where the lock was taken by the holder that was waited for).
//!
//! The kernel prints a code address in the third column of a point line (`[<ffff...>]`); there
//! is no code address here, so that column says which list the line belongs to
//! (`[<contention>]` or `[<contending>]`), and the last column is the call site.

use std::fmt;

/// How many contention and contending points a class line shows (the kernel's
/// `LOCKSTAT_POINTS`).
pub const POINTS_SHOWN: usize = 4;

/// How many points per list a class keeps (the shown ones are the most frequent of these).
pub const POINTS_KEPT: usize = 16;

/// A series of durations: how many, and their minimum, maximum and total, in nanoseconds (the
/// kernel's `struct lock_time`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockTime {
    /// How many durations were measured.
    pub nr: u64,
    /// The shortest (0 when `nr` is 0).
    pub min_ns: u64,
    /// The longest.
    pub max_ns: u64,
    /// The sum.
    pub total_ns: u64,
}

impl LockTime {
    /// Adds one duration.
    pub fn add(&mut self, ns: u64) {
        self.merge(&LockTime {
            nr: 1,
            min_ns: ns,
            max_ns: ns,
            total_ns: ns,
        });
    }

    /// Adds another series.
    pub fn merge(&mut self, o: &LockTime) {
        if o.nr == 0 {
            return;
        }
        self.min_ns = if self.nr == 0 {
            o.min_ns
        } else {
            self.min_ns.min(o.min_ns)
        };
        self.max_ns = self.max_ns.max(o.max_ns);
        self.total_ns = self.total_ns.saturating_add(o.total_ns);
        self.nr += o.nr;
    }

    /// The mean (0 when empty).
    pub fn avg_ns(&self) -> u64 {
        self.total_ns.checked_div(self.nr).unwrap_or(0)
    }
}

/// The statistics of one kind of acquisition (write or read) of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindStats {
    /// Contentions on a lock last taken by another thread (`con-bounces`).
    pub con_bounces: u64,
    /// The waits: a contention is an acquisition whose first try failed, timed until the lock
    /// was obtained (`contentions`, `waittime-*`).
    pub wait: LockTime,
    /// Acquisitions of a lock last taken by another thread (`acq-bounces`).
    pub acq_bounces: u64,
    /// Every acquisition, trylocks included (`acquisitions`).
    pub acquisitions: u64,
    /// The hold times: from the acquisition (or the end of its wait) to the release
    /// (`holdtime-*`).
    pub hold: LockTime,
}

impl KindStats {
    /// The number of contentions.
    pub fn contentions(&self) -> u64 {
        self.wait.nr
    }

    fn merge(&mut self, o: &KindStats) {
        self.con_bounces += o.con_bounces;
        self.wait.merge(&o.wait);
        self.acq_bounces += o.acq_bounces;
        self.acquisitions += o.acquisitions;
        self.hold.merge(&o.hold);
    }

    fn is_empty(&self) -> bool {
        self.acquisitions == 0 && self.hold.nr == 0 && self.wait.nr == 0
    }
}

/// A call site and how often it was a contention (or contending) point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// `file:line:col`, or the text of a symbolic site.
    pub site: String,
    /// How many contentions it took part in.
    pub count: u64,
}

/// The statistics of one lock class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// The class's printed name.
    pub name: String,
    /// The class's identity across processes ([`ClassInfo::stable_id`](crate::ClassInfo)).
    pub stable_id: u64,
    /// Exclusive acquisitions.
    pub write: KindStats,
    /// Shared acquisitions (either kind of read).
    pub read: KindStats,
    /// Where waiters waited, most frequent first (at most [`POINTS_KEPT`]).
    pub contention_points: Vec<Point>,
    /// Where the holders that were waited for had taken the lock, most frequent first.
    pub contending_points: Vec<Point>,
}

impl ClassStats {
    /// Contentions of both kinds.
    pub fn contentions(&self) -> u64 {
        self.write.wait.nr + self.read.wait.nr
    }

    /// Acquisitions of both kinds.
    pub fn acquisitions(&self) -> u64 {
        self.write.acquisitions + self.read.acquisitions
    }

    /// Total wait time of both kinds, in nanoseconds.
    pub fn wait_total_ns(&self) -> u64 {
        self.write.wait.total_ns + self.read.wait.total_ns
    }

    /// Total hold time of both kinds, in nanoseconds.
    pub fn hold_total_ns(&self) -> u64 {
        self.write.hold.total_ns + self.read.hold.total_ns
    }

    /// Adds another set of statistics of the same class.
    pub fn merge(&mut self, o: &ClassStats) {
        self.write.merge(&o.write);
        self.read.merge(&o.read);
        merge_points(&mut self.contention_points, &o.contention_points);
        merge_points(&mut self.contending_points, &o.contending_points);
    }
}

/// Adds `more` into `points`, then keeps the [`POINTS_KEPT`] most frequent, most frequent first
/// (ties by site, so the order is deterministic).
pub fn merge_points(points: &mut Vec<Point>, more: &[Point]) {
    for p in more {
        match points.iter_mut().find(|q| q.site == p.site) {
            Some(q) => q.count += p.count,
            None => points.push(p.clone()),
        }
    }
    points.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.site.cmp(&b.site)));
    points.truncate(POINTS_KEPT);
}

/// What to sort classes by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Contentions, both kinds (the kernel's order).
    #[default]
    Contentions,
    /// Total wait time.
    Wait,
    /// Total hold time.
    Hold,
    /// Acquisitions.
    Acquisitions,
}

/// Per-class lock statistics: a snapshot of a process, or a merge of many.
///
/// ```
/// use lockdep::proc::lock_stat::{ClassStats, LockStats};
///
/// let mut a = ClassStats { name: "m".into(), stable_id: 7, ..Default::default() };
/// a.write.acquisitions = 3;
/// a.write.hold.add(1_500);
/// let stats = LockStats { classes: vec![a] };
/// let text = stats.to_string();
/// assert!(text.starts_with("lock_stat version 0.4\n"));
/// assert!(text.contains("                                       m:"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStats {
    /// One entry per class that was acquired while statistics were on.
    pub classes: Vec<ClassStats>,
}

impl LockStats {
    /// Adds the classes of `other`, merging those with the same stable id (or, for an id of 0,
    /// the same name).
    pub fn merge(&mut self, other: &LockStats) {
        for c in &other.classes {
            let same = |x: &&mut ClassStats| {
                if c.stable_id != 0 {
                    x.stable_id == c.stable_id
                } else {
                    x.stable_id == 0 && x.name == c.name
                }
            };
            match self.classes.iter_mut().find(same) {
                Some(x) => x.merge(c),
                None => self.classes.push(c.clone()),
            }
        }
    }

    /// Sorts the classes, largest first (ties by name).
    pub fn sort_by(&mut self, key: SortKey) {
        let k = |c: &ClassStats| match key {
            SortKey::Contentions => c.contentions(),
            SortKey::Wait => c.wait_total_ns(),
            SortKey::Hold => c.hold_total_ns(),
            SortKey::Acquisitions => c.acquisitions(),
        };
        self.classes
            .sort_by(|a, b| k(b).cmp(&k(a)).then_with(|| a.name.cmp(&b.name)));
    }

    /// The class with this name.
    pub fn class(&self, name: &str) -> Option<&ClassStats> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// The kernel's table, in the current order of [`classes`](Self::classes) (`Display` sorts
    /// by contentions first, as the kernel does).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.write_table(&mut out);
        out
    }

    fn write_table(&self, f: &mut impl fmt::Write) -> fmt::Result {
        const WIDTH: usize = 40 + 1 + 12 * (14 + 1);
        writeln!(f, "lock_stat version 0.4")?;
        writeln!(f, "{}", "-".repeat(WIDTH))?;
        writeln!(
            f,
            "{:>40} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
            "class name",
            "con-bounces",
            "contentions",
            "waittime-min",
            "waittime-max",
            "waittime-total",
            "waittime-avg",
            "acq-bounces",
            "acquisitions",
            "holdtime-min",
            "holdtime-max",
            "holdtime-total",
            "holdtime-avg"
        )?;
        writeln!(f, "{}", "-".repeat(WIDTH))?;
        writeln!(f)?;
        for c in &self.classes {
            let both = !c.write.is_empty() && !c.read.is_empty();
            if !c.write.is_empty() {
                if both {
                    write!(f, "{:>38}-W:", c.name)?;
                } else {
                    write!(f, "{:>40}:", c.name)?;
                }
                kind_line(f, &c.write)?;
            }
            if !c.read.is_empty() {
                write!(f, "{:>38}-R:", c.name)?;
                kind_line(f, &c.read)?;
            }
            if c.contentions() == 0 {
                continue;
            }
            let namelen = c.name.chars().count() + if both { 2 } else { 0 };
            for (label, points) in [
                ("[<contention>]", &c.contention_points),
                ("[<contending>]", &c.contending_points),
            ] {
                for (i, p) in points.iter().take(POINTS_SHOWN).enumerate() {
                    if i == 0 {
                        let pad = 40usize.saturating_sub(namelen);
                        writeln!(f, "{}{}", " ".repeat(pad), "-".repeat(namelen))?;
                    }
                    writeln!(f, "{:>40} {:>14} {:>29} {}", c.name, p.count, label, p.site)?;
                }
            }
            writeln!(f)?;
            writeln!(f, "{}", ".".repeat(WIDTH))?;
            writeln!(f)?;
        }
        Ok(())
    }
}

fn kind_line(f: &mut impl fmt::Write, k: &KindStats) -> fmt::Result {
    write!(f, "{:>14} ", k.con_bounces)?;
    lock_time(f, &k.wait, k.wait.nr)?;
    write!(f, " {:>14} ", k.acq_bounces)?;
    lock_time(f, &k.hold, k.acquisitions)?;
    writeln!(f)
}

fn lock_time(f: &mut impl fmt::Write, t: &LockTime, count: u64) -> fmt::Result {
    write!(f, "{:>14}", count)?;
    for ns in [t.min_ns, t.max_ns, t.total_ns, t.avg_ns()] {
        write!(f, " {:>14}", micros(ns))?;
    }
    Ok(())
}

/// Nanoseconds as the kernel prints them: microseconds with two decimals, rounded.
pub fn micros(ns: u64) -> String {
    let r = ns.saturating_add(5);
    format!("{}.{:02}", r / 1000, (r % 1000) / 10)
}

/// The kernel's table, classes sorted by contentions (then by name).
impl fmt::Display for LockStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted = self.clone();
        sorted.sort_by(SortKey::Contentions);
        sorted.write_table(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_the_kernels_microseconds() {
        assert_eq!(micros(0), "0.00");
        assert_eq!(micros(1_234), "1.23");
        assert_eq!(micros(1_235), "1.24");
        assert_eq!(micros(999_999), "1000.00");
        assert_eq!(micros(u64::MAX), format!("{}.{:02}", u64::MAX / 1000, 61));
    }

    #[test]
    fn lock_times_merge_min_max_total() {
        let mut t = LockTime::default();
        t.add(30);
        t.add(10);
        let mut u = LockTime::default();
        u.add(50);
        t.merge(&u);
        t.merge(&LockTime::default());
        assert_eq!(
            t,
            LockTime {
                nr: 3,
                min_ns: 10,
                max_ns: 50,
                total_ns: 90
            }
        );
        assert_eq!(t.avg_ns(), 30);
    }

    fn class(name: &str, id: u64, waits: &[u64]) -> ClassStats {
        let mut c = ClassStats {
            name: name.into(),
            stable_id: id,
            ..Default::default()
        };
        for &w in waits {
            c.write.wait.add(w);
        }
        c.write.acquisitions = 10;
        c.write.hold.add(100);
        if !waits.is_empty() {
            c.contention_points = vec![Point {
                site: "a.rs:1:1".into(),
                count: waits.len() as u64,
            }];
            c.contending_points = vec![Point {
                site: "b.rs:2:2".into(),
                count: waits.len() as u64,
            }];
        }
        c
    }

    #[test]
    fn merging_adds_classes_of_the_same_identity_and_their_points() {
        let mut a = LockStats {
            classes: vec![class("x", 1, &[5]), class("y", 2, &[])],
        };
        let b = LockStats {
            classes: vec![class("x", 1, &[7, 9]), class("z", 3, &[1])],
        };
        a.merge(&b);
        assert_eq!(a.classes.len(), 3);
        let x = a.class("x").unwrap();
        assert_eq!(x.contentions(), 3);
        assert_eq!(x.write.acquisitions, 20);
        assert_eq!(x.contention_points[0].count, 3);
        a.sort_by(SortKey::Wait);
        assert_eq!(a.classes[0].name, "x");
        a.sort_by(SortKey::Acquisitions);
        assert_eq!(a.classes[0].name, "x"); // 20 against 10 and 10
    }

    #[test]
    fn the_table_has_the_kernels_header_lines_and_points() {
        let mut rw = class("rw", 4, &[2_000]);
        rw.read.acquisitions = 1;
        rw.read.hold.add(10);
        let s = LockStats {
            classes: vec![class("quiet", 5, &[]), rw],
        };
        let text = s.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "lock_stat version 0.4");
        assert_eq!(lines[1].len(), 221);
        assert!(lines[2].starts_with("                              class name    con-bounces"));
        assert!(lines[2].ends_with("holdtime-avg"));
        // The contended class first; both kinds, so -W and -R lines.
        assert!(lines[5].starts_with(&format!("{:>38}-W:", "rw")), "{text}");
        assert!(lines[6].starts_with(&format!("{:>38}-R:", "rw")));
        assert_eq!(lines[7], format!("{}{}", " ".repeat(36), "-".repeat(4)));
        assert!(
            lines[8].ends_with("[<contention>] a.rs:1:1"),
            "{}",
            lines[8]
        );
        assert!(
            lines[10].ends_with("[<contending>] b.rs:2:2"),
            "{}",
            lines[10]
        );
        assert!(text.contains(&format!("{:>40}:", "quiet")));
        // Columns: count 1, min/max/total/avg 2.00 µs.
        let w: Vec<&str> = lines[5].split_whitespace().collect();
        assert_eq!(&w[1..7], ["0", "1", "2.00", "2.00", "2.00", "2.00"]);
        assert_eq!(w.len(), 13);
    }
}
