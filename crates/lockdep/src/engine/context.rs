//! Contexts: irq state, softirq/hardirq entry and exit, non-block sections and sleeping.

use super::*;

impl Engine {
    /// Disables hard interrupts in `task` (`local_irq_disable`).
    pub fn irq_disable(&self, task: &mut Task) -> Option<Report> {
        task.update_context(|irq, _| irq.hardirqs_enabled = false);
        None
    }

    /// Enables hard interrupts in `task` (`local_irq_enable`).
    pub fn irq_enable(&self, task: &mut Task) -> Option<Report> {
        if task.irq.hardirqs_enabled {
            return None; // redundant: nothing changes
        }
        task.update_context(|irq, _| irq.hardirqs_enabled = true);
        // Every held lock is now held with interrupts enabled.
        let mut found: Vec<Report> = self.mark_held_locks(task, 2).into_iter().collect();
        if found.is_empty() && task.irq.softirqs_enabled {
            found.extend(self.mark_held_locks(task, 6));
        }
        self.first_new(&mut found)
    }

    /// Disables soft interrupts in `task` (`local_bh_disable`).
    pub fn bh_disable(&self, task: &mut Task) -> Option<Report> {
        task.update_context(|irq, _| irq.softirqs_enabled = false);
        None
    }

    /// Enables soft interrupts in `task` (`local_bh_enable`).
    pub fn bh_enable(&self, task: &mut Task) -> Option<Report> {
        if task.irq.softirqs_enabled {
            return None;
        }
        task.update_context(|irq, _| irq.softirqs_enabled = true);
        if !task.irq.hardirqs_enabled {
            return None; // marked when hard interrupts come back on
        }
        let mut found: Vec<Report> = self.mark_held_locks(task, 6).into_iter().collect();
        self.first_new(&mut found)
    }

    /// Enters hardirq context (a marker only: it changes no enable flag).
    pub fn hardirq_enter(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.hardirq_context += 1);
    }

    /// Leaves hardirq context.
    pub fn hardirq_exit(&self, task: &mut Task) {
        task.update_context(|irq, _| {
            irq.hardirq_context = irq.hardirq_context.saturating_sub(1);
            if irq.hardirq_context == 0 {
                irq.hardirq_threaded = false;
            }
        });
    }

    /// Marks the current hardirq as threaded.
    pub fn hardirq_threaded(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.hardirq_threaded = true);
    }

    /// Enters softirq context (a marker only).
    pub fn softirq_enter(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.softirq_context += 1);
    }

    /// Leaves softirq context.
    pub fn softirq_exit(&self, task: &mut Task) {
        task.update_context(|irq, _| irq.softirq_context = irq.softirq_context.saturating_sub(1));
    }

    /// Starts a section in which the task must not sleep (`non_block_start`); sections nest.
    pub fn non_block_start(&self, task: &mut Task) {
        task.update_context(|_, non_block| *non_block += 1);
    }

    /// Ends a non-blocking section; an end without a start is reported.
    pub fn non_block_end(&self, task: &mut Task, site: Site) -> Option<Report> {
        if task.non_block_count == 0 {
            let msg = format!("non_block_end() at {site} without a matching non_block_start()");
            return self.misuse_kind(task, ReportKind::NonBlockImbalance, None, msg);
        }
        task.update_context(|_, non_block| *non_block -= 1);
        None
    }

    /// "This code may sleep" (`might_sleep`): reported when the task is in a non-blocking
    /// section, has interrupts disabled, runs in interrupt context, or holds a spinning lock.
    pub fn might_sleep(&self, task: &mut Task, site: Site) -> Option<Report> {
        let ctx = self.sleep_context(task)?;
        let r = self.sleep_report(task, site, ctx);
        self.sleep_once(r, site)
    }

    /// Why the task may not sleep now, if it may not: `(in_atomic, irqs_disabled)`. In atomic
    /// context means in an interrupt, with soft interrupts disabled, or holding a spinning lock.
    pub(super) fn sleep_context(&self, task: &Task) -> Option<(bool, bool)> {
        let irqs_disabled = !task.irq.hardirqs_enabled;
        let in_irq = task.irq.hardirq_context > 0 || task.irq.softirq_context > 0;
        let spinning = task.held.iter().any(|h| {
            matches!(
                h.wait_inner,
                WaitType::Spin | WaitType::Config | WaitType::Free
            )
        });
        let in_atomic = in_irq || spinning || !task.irq.softirqs_enabled;
        (in_atomic || irqs_disabled || task.non_block_count > 0)
            .then_some((in_atomic, irqs_disabled))
    }

    pub(super) fn sleep_report(
        &self,
        task: &Task,
        site: Site,
        (in_atomic, irqs_disabled): (bool, bool),
    ) -> Report {
        let msg = format!(
            "BUG: sleeping function called from invalid context at {site}\n\
             in_atomic(): {}, irqs_disabled(): {}, non_block: {}, pid: {}, name: {}",
            in_atomic as u8, irqs_disabled as u8, task.non_block_count, task.pid, task.name
        );
        self.make_report(task, ReportKind::SleepInvalidContext, None, Some(msg))
    }

    /// Reports a sleep in an invalid context once per site and context (not per class: there
    /// may be no lock at all).
    pub(super) fn sleep_once(&self, r: Report, site: Site) -> Option<Report> {
        let msg = r.message.as_deref().unwrap_or_default();
        let context = msg.lines().nth(1).unwrap_or_default();
        // The context line without pid and name.
        let context = context
            .split(", pid:")
            .next()
            .unwrap_or_default()
            .to_string();
        let mut st = self.state.lock();
        st.sleep_sites.insert((site, context)).then_some(r)
    }
}
