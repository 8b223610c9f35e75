//! The kernel's rendering of a report: the title and ident, the lock lines with their usage
//! and wait types, the existing dependency chain with the stack of each edge, the scenario
//! table, the held locks and the backtrace.

use std::fmt::{self, Write as _};

use super::*;

impl Report {
    /// Renders the report as the kernel prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.render_into(&mut out);
        out
    }

    /// A lock line. A lock of another process (a report made from recordings) has no
    /// instance here: the line starts at its class.
    fn lock_line(&self, l: &LockInfo) -> String {
        let class = l.class.lock_name(self.raw_lock_nesting);
        if l.instance == 0 {
            format!("{class}, at: {}", l.site)
        } else {
            format!("{:016x} {class}, at: {}", l.instance, l.site)
        }
    }

    /// A class as the scenario lines print it: its short name (`accounts`) when no other class
    /// of the report has the same one, the full name otherwise.
    fn bare(&self, c: &ClassInfo) -> String {
        let short = c.short_name();
        let clash = self
            .lock
            .iter()
            .chain(self.holding.iter())
            .chain(self.held.iter())
            .map(|l| &l.class)
            .chain(self.chain.iter().map(|l| &l.class))
            .any(|o| o.id != c.id && o.short_name() == short);
        if clash {
            c.name.to_string()
        } else {
            short.to_string()
        }
    }

    fn header(&self, out: &mut String) -> fmt::Result {
        let title = self.title();
        // The safe -> unsafe report's rules are a fixed 53 columns in the kernel.
        let rule = if self.kind == ReportKind::IrqSafeUnsafe {
            53
        } else {
            title.chars().count()
        };
        writeln!(out)?;
        writeln!(out, "{}", "=".repeat(rule))?;
        writeln!(out, "{title}")?;
        writeln!(out, "{IDENT}")?;
        writeln!(out, "{}", "-".repeat(rule))
    }

    fn held_list(&self, out: &mut String) -> fmt::Result {
        match self.held.len() {
            0 => writeln!(out, "no locks held by {}.", self.task),
            n => {
                writeln!(
                    out,
                    "{} lock{} held by {}:",
                    n,
                    if n > 1 { "s" } else { "" },
                    self.task
                )?;
                for (i, h) in self.held.iter().enumerate() {
                    writeln!(out, " #{}: {}", i, self.lock_line(h))?;
                }
                Ok(())
            }
        }
    }

    fn backtrace(&self, out: &mut String) -> fmt::Result {
        writeln!(out, "stack backtrace:")?;
        self.call_trace(out)
    }

    fn call_trace(&self, out: &mut String) -> fmt::Result {
        writeln!(
            out,
            "CPU: 0 PID: {} Comm: {} {}",
            self.task.pid, self.task.name, IDENT
        )?;
        writeln!(out, "Call Trace:")?;
        if let Some(s) = &self.stack {
            s.write_indented(out, 1);
        }
        Ok(())
    }

    fn render_into(&self, out: &mut String) -> fmt::Result {
        if self.kind == ReportKind::SleepInvalidContext {
            // `__might_sleep` prints no box: its message, the held locks, the stack.
            writeln!(out)?;
            if let Some(m) = &self.message {
                writeln!(out, "{m}")?;
            }
            self.held_list(out)?;
            return self.call_trace(out);
        }
        self.header(out)?;
        let task = &self.task;
        match self.kind {
            ReportKind::Circular => {
                let (next, prev) = (self.lock.as_ref(), self.holding.as_ref());
                match &task.origin {
                    // Made from recordings: say which process and test took the locks.
                    Some(origin) => writeln!(out, "{task} ({origin}) is trying to acquire lock:")?,
                    None => writeln!(out, "{task} is trying to acquire lock:")?,
                }
                if let Some(n) = next {
                    writeln!(out, "{}", self.lock_line(n))?;
                }
                writeln!(out, "\nbut task is already holding lock:")?;
                if let Some(p) = prev {
                    writeln!(out, "{}", self.lock_line(p))?;
                }
                writeln!(out, "\nwhich lock already depends on the new lock.\n")?;
                writeln!(
                    out,
                    "\nthe existing dependency chain (in reverse order) is:"
                )?;
                let depth = self.chain.len();
                for (i, link) in self.chain.iter().enumerate() {
                    writeln!(
                        out,
                        "\n-> #{} {}:",
                        depth - 1 - i,
                        link.class.lock_name(self.raw_lock_nesting)
                    )?;
                    // The kernel's `stack_trace_print(.., 6)`: `%*c` of width 1 + 6.
                    link.stack.write_indented(out, 7);
                    // Dependencies merged from several processes say where they were seen.
                    if let Some(origin) = &link.task.origin {
                        writeln!(out, "       (first seen in {} of {origin})", link.task)?;
                    }
                }
                writeln!(out, "\nother info that might help us debug this:\n")?;
                if let (Some(n), Some(p)) = (next, prev) {
                    let source = self.bare(&n.class);
                    let target = self.bare(&p.class);
                    // The class the held lock was reached from: the entry after `#N`.
                    let parent = if self.chain.len() >= 3 {
                        self.bare(&self.chain[1].class)
                    } else {
                        source.clone()
                    };
                    if self.chain.len() >= 3 {
                        writeln!(
                            out,
                            "Chain exists of:\n  {source} --> {parent} --> {target}\n"
                        )?;
                    }
                    writeln!(out, " Possible unsafe locking scenario:\n")?;
                    writeln!(out, "       CPU0                    CPU1")?;
                    writeln!(out, "       ----                    ----")?;
                    writeln!(out, "  lock({target});")?;
                    writeln!(out, "                               lock({parent});")?;
                    writeln!(out, "                               lock({target});")?;
                    writeln!(out, "  lock({source});")?;
                    writeln!(out, "\n *** DEADLOCK ***\n")?;
                }
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::Recursive => {
                writeln!(out, "{task} is trying to acquire lock:")?;
                if let Some(n) = &self.lock {
                    writeln!(out, "{}", self.lock_line(n))?;
                }
                writeln!(out, "\nbut task is already holding lock:")?;
                if let Some(p) = &self.holding {
                    writeln!(out, "{}", self.lock_line(p))?;
                }
                writeln!(out, "\nother info that might help us debug this:")?;
                if let (Some(n), Some(p)) = (&self.lock, &self.holding) {
                    writeln!(out, " Possible unsafe locking scenario:\n")?;
                    writeln!(out, "       CPU0")?;
                    writeln!(out, "       ----")?;
                    writeln!(out, "  lock({});", self.bare(&p.class))?;
                    writeln!(out, "  lock({});", self.bare(&n.class))?;
                    writeln!(out, "\n *** DEADLOCK ***\n")?;
                    writeln!(out, " May be due to missing lock nesting notation\n")?;
                }
                if let Some(fix) = &self.message {
                    writeln!(out, " Hint: {fix}\n")?;
                }
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::BadUnlock => {
                let (name, site) = match &self.lock {
                    Some(l) => (self.bare(&l.class), l.site),
                    None => ("<unknown>".into(), Site::Unknown),
                };
                writeln!(out, "{task} is trying to release lock ({name}) at:")?;
                writeln!(out, "{site}")?;
                writeln!(out, "but there are no more locks to release!")?;
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::HeldLockFreed => {
                let l = self.lock.as_ref();
                let inst = l.map(|l| l.instance).unwrap_or(0);
                writeln!(
                    out,
                    "{task} is freeing memory {inst:016x}-{:016x}, with a lock still held there!",
                    inst + 15
                )?;
                if let Some(l) = l {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::LocksHeldAtExit => {
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::Inconsistent => self.render_inconsistent(out),
            ReportKind::IrqSafeUnsafe => self.render_safe_unsafe(out),
            ReportKind::IrqInversion => self.render_inversion(out),
            ReportKind::InvalidWaitContext => {
                writeln!(out, "{task} is trying to lock:")?;
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(out, "other info that might help us debug this:")?;
                if let Some(m) = &self.message {
                    writeln!(out, "{m}")?;
                }
                self.held_list(out)?;
                self.backtrace(out)
            }
            ReportKind::HeldAcrossAwait => {
                writeln!(out, "{task} is suspending at an await point, holding lock:")?;
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(
                    out,
                    "\nwhich is a blocking lock: while the task is suspended, every other task \
                     that takes it\nblocks its worker thread, and one on this thread deadlocks."
                )?;
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::MaxLockDepth => {
                if let Some(m) = &self.message {
                    writeln!(out, "{m}")?;
                }
                writeln!(out, "{task} is trying to acquire lock:")?;
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            ReportKind::NestedLockNotTaken => {
                writeln!(out, "{task} is trying to lock:")?;
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(out, "\nbut this task is not holding:")?;
                writeln!(
                    out,
                    "{}",
                    self.holding
                        .as_ref()
                        .map(|h| self.bare(&h.class))
                        .unwrap_or_default()
                )?;
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
            _ => {
                if let Some(m) = &self.message {
                    writeln!(out, "{m}")?;
                }
                if let Some(l) = &self.lock {
                    writeln!(out, "{}", self.lock_line(l))?;
                }
                writeln!(out, "\nother info that might help us debug this:")?;
                self.held_list(out)?;
                writeln!(out)?;
                self.backtrace(out)
            }
        }
    }
}

impl Report {
    fn class_line(&self, c: &ClassInfo) -> String {
        format!(" {}", c.lock_name(self.raw_lock_nesting))
    }

    fn irq_scenario(&self, out: &mut String, d: &IrqDetail) -> fmt::Result {
        let (Some((safe, _)), Some((unsafe_, _))) = (&d.safe, &d.unsafe_lock) else {
            return Ok(());
        };
        let middle = d.middle.as_ref().unwrap_or(unsafe_);
        let (s, u, m) = (self.bare(safe), self.bare(unsafe_), self.bare(middle));
        if middle.id != unsafe_.id {
            writeln!(out, "Chain exists of:\n  {s} --> {m} --> {u}\n")?;
        }
        writeln!(out, " Possible interrupt unsafe locking scenario:\n")?;
        writeln!(out, "       CPU0                    CPU1")?;
        writeln!(out, "       ----                    ----")?;
        writeln!(out, "  lock({u});")?;
        writeln!(out, "                               local_irq_disable();")?;
        writeln!(out, "                               lock({s});")?;
        writeln!(out, "                               lock({m});")?;
        writeln!(out, "  <Interrupt>")?;
        writeln!(out, "    lock({s});")?;
        writeln!(out, "\n *** DEADLOCK ***\n")
    }

    fn paths(&self, out: &mut String, d: &IrqDetail) -> fmt::Result {
        for (title, links) in &d.paths {
            writeln!(out, "\n{title}")?;
            for (class, stack) in links {
                writeln!(out, "-> {}", class.lock_name(self.raw_lock_nesting))?;
                writeln!(out, "   ... acquired at:")?;
                stack.write_indented(out, 4);
            }
        }
        Ok(())
    }

    fn render_inconsistent(&self, out: &mut String) -> fmt::Result {
        let Some(d) = &self.irq else { return Ok(()) };
        if let Some(m) = &self.message {
            writeln!(out, "{m}")?;
        }
        writeln!(out, "{} {} takes:", self.task, d.task_state)?;
        if let Some(l) = &self.lock {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        if let Some((usage, stack)) = &d.usage_change {
            writeln!(out, "{{{usage}}} state was registered at:")?;
            stack.write_indented(out, 2);
        }
        writeln!(out, "\nother info that might help us debug this:")?;
        if let Some(l) = &self.lock {
            let name = self.bare(&l.class);
            writeln!(out, " Possible unsafe locking scenario:\n")?;
            writeln!(out, "       CPU0")?;
            writeln!(out, "       ----")?;
            writeln!(out, "  lock({name});")?;
            writeln!(out, "  <Interrupt>")?;
            writeln!(out, "    lock({name});")?;
            writeln!(out, "\n *** DEADLOCK ***\n")?;
        }
        self.held_list(out)?;
        writeln!(out)?;
        self.backtrace(out)
    }

    fn render_safe_unsafe(&self, out: &mut String) -> fmt::Result {
        let Some(d) = &self.irq else { return Ok(()) };
        let st = d.state;
        writeln!(out, "{} {} is trying to acquire:", self.task, d.task_state)?;
        if let Some(l) = &self.lock {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        writeln!(out, "\nand this task is already holding:")?;
        if let Some(l) = &self.holding {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        writeln!(out, "which would create a new lock dependency:")?;
        if let (Some(p), Some(n)) = (&self.holding, &self.lock) {
            writeln!(
                out,
                "{} ->{}",
                self.class_line(&p.class),
                self.class_line(&n.class)
            )?;
        }
        if let Some((safe, stack)) = &d.safe {
            writeln!(
                out,
                "\nbut this new dependency connects a {st}-irq-safe lock:"
            )?;
            writeln!(out, "{}", self.class_line(safe))?;
            writeln!(out, "\n... which became {st}-irq-safe at:")?;
            if let Some(s) = stack {
                s.write_indented(out, 2);
            }
        }
        if let Some((unsafe_, stack)) = &d.unsafe_lock {
            writeln!(out, "\nto a {st}-irq-unsafe lock:")?;
            writeln!(out, "{}", self.class_line(unsafe_))?;
            writeln!(out, "\n... which became {st}-irq-unsafe at:")?;
            writeln!(out, "...")?;
            if let Some(s) = stack {
                s.write_indented(out, 2);
            }
        }
        writeln!(out, "\nother info that might help us debug this:\n")?;
        self.irq_scenario(out, d)?;
        self.held_list(out)?;
        self.paths(out, d)?;
        writeln!(out)?;
        self.backtrace(out)
    }

    fn render_inversion(&self, out: &mut String) -> fmt::Result {
        let Some(d) = &self.irq else { return Ok(()) };
        let st = d.state;
        writeln!(out, "{} just changed the state of lock:", self.task)?;
        if let Some(l) = &self.lock {
            writeln!(out, "{}", self.lock_line(l))?;
        }
        if d.forwards {
            writeln!(
                out,
                "but this lock took another, {st}-unsafe lock in the past:"
            )?;
        } else {
            writeln!(
                out,
                "but this lock was taken by another, {st}-safe lock in the past:"
            )?;
        }
        if let Some(other) = &self.holding {
            writeln!(out, "{}", self.class_line(&other.class))?;
        }
        writeln!(
            out,
            "\n\nand interrupts could create inverse lock ordering between them.\n"
        )?;
        writeln!(out, "\nother info that might help us debug this:")?;
        self.irq_scenario(out, d)?;
        self.held_list(out)?;
        self.paths(out, d)?;
        writeln!(out)?;
        self.backtrace(out)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}
