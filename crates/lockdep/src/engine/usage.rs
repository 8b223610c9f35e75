//! Interrupt-like usage states: which contexts each class was used in, and the deadlocks an
//! interrupt can cause.
//!
//! Every class collects *usage bits* (see [`crate::lock::class::usage`]): used in hardirq (or softirq)
//! context, and taken with hardirqs (or softirqs) enabled, each for write and for read. A lock
//! used in an interrupt is *irq-safe* (it must only be taken with that interrupt disabled); a
//! lock taken with the interrupt enabled is *irq-unsafe*. Three rules follow, each checked the
//! moment the information that breaks it arrives:
//!
//! - **inconsistent lock state**: one class both irq-safe and irq-unsafe for the same interrupt
//!   (a read-only use on both sides is fine: readers do not exclude readers). The interrupt can
//!   arrive while the lock is held and take it again.
//! - **safe → unsafe** (on a new dependency `prev -> next`): some lock that reaches `prev` is
//!   irq-safe, and some lock `next` reaches is irq-unsafe. CPU1 holds the unsafe lock with the
//!   interrupt on; CPU0 disables it, takes the safe lock and waits for the unsafe one; the
//!   interrupt arrives on CPU1 and waits for the safe one.
//! - **irq inversion** (on a new usage bit): the same, found from the other side — a lock just
//!   became irq-safe and reaches an irq-unsafe lock, or just became irq-unsafe and is reached
//!   from an irq-safe one.
//!
//! Searches follow strong paths only: a lock reached only through recursive-read edges
//! contributes only its write usage (the kernel's `only_xr` masking of read bits).
//!
//! Taking interrupts out of the kernel: in a userspace program, a signal handler is a hardirq
//! (it interrupts the thread anywhere; blocking signals is disabling it), and an event-loop
//! callback run from inside another callback can play the role of a softirq. See [`crate::annotate::irq`].

use std::sync::Arc;

use crate::engine::graph::Direction;
use crate::engine::held::{HeldLock, Task};
use crate::engine::{Engine, State};
use crate::lock::class::{usage, Class, ClassId, ClassInfo};
use crate::lock::map::ReadKind;
use crate::report::stack::StackTrace;
use crate::report::{IrqDetail, Report, ReportKind};

/// `usage_str`: how the kernel names each usage bit.
pub const USAGE_STR: [&str; 10] = [
    "IN-HARDIRQ-W",
    "IN-HARDIRQ-R",
    "HARDIRQ-ON-W",
    "HARDIRQ-ON-R",
    "IN-SOFTIRQ-W",
    "IN-SOFTIRQ-R",
    "SOFTIRQ-ON-W",
    "SOFTIRQ-ON-R",
    "INITIAL USE",
    "INITIAL READ USE",
];

const READ: u8 = 1;
const DIR: u8 = 2;
/// The used-in-irq bits (safe).
const USED_IN_IRQ_ALL: u16 = 0b0011_0011;
/// The enabled bits (unsafe).
const ENABLED_IRQ_ALL: u16 = 0b1100_1100;
/// The write (non-read) irq bits.
const IRQ_WRITE: u16 = 0b0101_0101;

/// The bit that conflicts with `bit`: same interrupt, other direction, write.
fn exclusive_bit(bit: u8) -> u8 {
    (bit & !3) | ((bit & DIR) ^ DIR)
}

/// Every bit that conflicts with a bit of `mask`, write and read.
fn exclusive_mask(mask: u16) -> u16 {
    let mut out = 0;
    for b in 0..8u8 {
        if mask & (1 << b) != 0 {
            let e = exclusive_bit(b);
            out |= (1 << e) | (1 << (e | READ));
        }
    }
    out
}

/// The bits a lock must have for `mask` to be exclusive to it (both read and write).
fn original_mask(mask: u16) -> u16 {
    exclusive_mask(mask)
}

/// `HARDIRQ`, `HARDIRQ-READ`, `SOFTIRQ`, `SOFTIRQ-READ`.
pub fn state_name(bit: u8) -> &'static str {
    match (bit >> 2, bit & READ) {
        (0, 0) => "HARDIRQ",
        (0, _) => "HARDIRQ-READ",
        (_, 0) => "SOFTIRQ",
        _ => "SOFTIRQ-READ",
    }
}

/// Whether a class reached in state `only_xr` has a usage in `mask` (only its write usage counts
/// when it was reached only through recursive-read edges).
fn usage_match(usage: u16, only_xr: bool, mask: u16) -> bool {
    let u = if only_xr { usage & IRQ_WRITE } else { usage };
    u & mask != 0
}

/// The first pair (safe bit of `safe`, conflicting bit of `unsafe_`) — write conflicts first.
fn find_exclusive_match(safe: u16, unsafe_: u16) -> Option<(u8, u8)> {
    for b in 0..8u8 {
        if safe & USED_IN_IRQ_ALL & (1 << b) == 0 {
            continue;
        }
        let e = exclusive_bit(b);
        if unsafe_ & (1 << e) != 0 {
            return Some((b, e));
        }
        if unsafe_ & (1 << (e | READ)) != 0 {
            return Some((b, e | READ));
        }
    }
    None
}

impl Engine {
    /// The usage bits an acquisition marks (the kernel's `mark_usage`).
    pub(crate) fn usage_bits(task: &Task, h: &HeldLock) -> u16 {
        let mut irq = task.irq;
        irq.hardirqs_enabled = !h.hardirqs_off;
        if h.check {
            Self::usage_bits_of(h.read, h.trylock, true, &irq)
        } else {
            Self::usage_bits_of(h.read, h.trylock, false, &irq)
        }
    }

    /// The usage bits of an acquisition of kind `read` (a trylock or not, validated or not) in
    /// the interrupt state `irq` (its `hardirqs_enabled` as at the acquisition).
    #[inline]
    pub(crate) fn usage_bits_of(
        read: ReadKind,
        trylock: bool,
        check: bool,
        irq: &crate::engine::held::IrqState,
    ) -> u16 {
        let read = read.is_read();
        let pick = |w: u16, r: u16| if read { r } else { w };
        let mut bits = usage::USED | if read { usage::USED_READ } else { 0 };
        if check {
            // A trylock cannot deadlock against an interrupt taking it: no USED_IN bit.
            if !trylock {
                if irq.hardirq_context > 0 {
                    bits |= pick(usage::USED_IN_HARDIRQ, usage::USED_IN_HARDIRQ_READ);
                }
                if irq.softirq_context > 0 {
                    bits |= pick(usage::USED_IN_SOFTIRQ, usage::USED_IN_SOFTIRQ_READ);
                }
            }
            if irq.hardirqs_enabled {
                bits |= pick(usage::ENABLED_HARDIRQ, usage::ENABLED_HARDIRQ_READ);
                if irq.softirqs_enabled {
                    bits |= pick(usage::ENABLED_SOFTIRQ, usage::ENABLED_SOFTIRQ_READ);
                }
            }
        }
        bits
    }

    /// Marks the usage of an acquisition. Free when every bit is already set (the fast path
    /// writes no shared memory); otherwise sets the new bits one by one under the engine's lock,
    /// each checked as it is set, stopping at the first problem (the bits after it stay unset
    /// and are checked again next time).
    pub(crate) fn mark_usage(&self, task: &Task, h: &HeldLock, class: &Class) -> Option<Report> {
        let bits = Self::usage_bits(task, h);
        if class.usage() & bits == bits {
            return None;
        }
        self.mark_bits(task, h, bits)
    }

    fn mark_bits(&self, task: &Task, h: &HeldLock, bits: u16) -> Option<Report> {
        let mut st = self.state.lock();
        // The kernel's order: used-in (hard, soft), then enabled, then used.
        for b in [0u8, 1, 4, 5, 2, 3, 6, 7, 8, 9] {
            let flag = 1u16 << b;
            let class = self.class(h.class);
            if bits & flag == 0 || class.usage() & flag != 0 {
                continue;
            }
            class
                .usage
                .fetch_or(flag, std::sync::atomic::Ordering::Relaxed);
            self.all_usage
                .fetch_or(flag, std::sync::atomic::Ordering::Relaxed);
            if let Some(obs) = self.observer() {
                obs.usage_changed(&class.info());
            }
            let stack = st.stacks.intern(task.capture_stack());
            st.usage_traces.insert((h.class, b), stack);
            if b < 8 {
                if let Some(r) = self.mark_lock_irq(&mut st, task, h, b) {
                    return Some(r);
                }
            }
        }
        None
    }

    /// Marks `bit` (with its read variant for read holds) on every held lock, as enabling
    /// interrupts does (`mark_held_locks`).
    pub(crate) fn mark_held_locks(&self, task: &Task, base_bit: u8) -> Option<Report> {
        for h in &task.held {
            if !h.check {
                continue;
            }
            let bit = base_bit | if h.read.is_read() { READ } else { 0 };
            if self.class(h.class).usage() & (1 << bit) != 0 {
                continue;
            }
            if let Some(r) = self.mark_bits(task, h, 1 << bit) {
                return Some(r);
            }
        }
        None
    }

    /// The checks of a new irq usage bit (the kernel's `mark_lock_irq`).
    fn mark_lock_irq(
        &self,
        st: &mut State,
        task: &Task,
        h: &HeldLock,
        new_bit: u8,
    ) -> Option<Report> {
        let excl = exclusive_bit(new_bit);
        let class = self.class(h.class);
        // This class against itself: safe and unsafe for the same interrupt, a write involved.
        for bad in [excl, excl | READ] {
            if bad == excl | READ && new_bit & READ != 0 {
                continue; // read against read is consistent
            }
            if class.usage() & (1 << bad) != 0 {
                return Some(self.inconsistent(st, task, h, bad, new_bit));
            }
        }
        // Against the graph: a new enabled (unsafe) bit looks backward for a safe lock that
        // reaches this one; a new used-in (safe) bit looks forward for an unsafe one.
        let mask = (1u16 << excl) | (1u16 << (excl | READ));
        let forwards = new_bit & DIR == 0;
        let (dir, root_xr) = if forwards {
            (Direction::Forward, h.read == ReadKind::SharedRecursive)
        } else {
            (Direction::Backward, h.read.is_read())
        };
        let usage_of = |c: ClassId| self.class(c).usage();
        let path = st.graph.search(h.class, root_xr, dir, |c, only_xr| {
            usage_match(usage_of(c), only_xr, mask)
        })?;
        let other = match path.edges.last() {
            Some(e) => {
                let e = st.graph.edge(*e);
                if forwards {
                    e.to
                } else {
                    e.from
                }
            }
            None => h.class,
        };
        let state_bit = if usage_of(other) & (1 << excl) != 0 {
            excl
        } else {
            excl | READ
        };
        Some(self.irq_inversion(st, task, h, other, &path, forwards, state_name(state_bit)))
    }

    /// The safe → unsafe check of a new dependency `prev -> next` (the kernel's
    /// `check_irq_usage`). On a problem the dependency is not added.
    pub(crate) fn check_irq_usage(
        &self,
        st: &mut State,
        task: &Task,
        prev: &HeldLock,
        next: &HeldLock,
    ) -> Option<Report> {
        // No class was ever used in an interrupt: nothing is irq-safe.
        if self.all_usage.load(std::sync::atomic::Ordering::Relaxed) & USED_IN_IRQ_ALL == 0 {
            return None;
        }
        // 1. Every irq-safe usage of the locks that reach prev (prev included).
        let mut accumulated = 0u16;
        let prev_xr = prev.read.is_read();
        st.graph
            .search(prev.class, prev_xr, Direction::Backward, |c, only_xr| {
                let u = self.class(c).usage();
                accumulated |= if only_xr { u & IRQ_WRITE } else { u };
                false
            });
        accumulated &= USED_IN_IRQ_ALL;
        if accumulated == 0 {
            return None;
        }
        // 2. A lock next reaches (next included) that is unsafe for one of those interrupts.
        let forward_mask = exclusive_mask(accumulated);
        let next_xr = next.read == ReadKind::SharedRecursive;
        let fwd = st
            .graph
            .search(next.class, next_xr, Direction::Forward, |c, only_xr| {
                usage_match(self.class(c).usage(), only_xr, forward_mask)
            })?;
        let unsafe_class = fwd
            .edges
            .last()
            .map_or(next.class, |e| st.graph.edge(*e).to);
        // 3. The safe lock on the backward side that conflicts with it.
        let unsafe_usage = self.class(unsafe_class).usage();
        let backward_mask = original_mask(unsafe_usage & ENABLED_IRQ_ALL);
        let bwd = st
            .graph
            .search(prev.class, prev_xr, Direction::Backward, |c, only_xr| {
                usage_match(self.class(c).usage(), only_xr, backward_mask)
            })?;
        let safe_class = bwd
            .edges
            .last()
            .map_or(prev.class, |e| st.graph.edge(*e).from);
        // 4. The pair of bits to name.
        let (safe_bit, unsafe_bit) =
            find_exclusive_match(self.class(safe_class).usage(), unsafe_usage)?;
        let trace = |st: &State, c: ClassId, b: u8| st.usage_traces.get(&(c, b)).cloned();
        let state = state_name(safe_bit);
        let mut paths = Vec::new();
        paths.push((
            format!("the dependencies between {state}-irq-safe lock and the holding lock:"),
            self.path_links(st, &bwd.edges, Direction::Backward),
        ));
        paths.push((
            format!(
                "the dependencies between the lock to be acquired\n and {state}-irq-unsafe lock:"
            ),
            self.path_links(st, &fwd.edges, Direction::Forward),
        ));
        let middle = if prev.class == safe_class {
            next.class
        } else {
            prev.class
        };
        let detail = IrqDetail {
            task_state: task_state(task),
            state,
            usage_change: None,
            safe: Some((
                self.class(safe_class).info(),
                trace(st, safe_class, safe_bit),
            )),
            unsafe_lock: Some((
                self.class(unsafe_class).info(),
                trace(st, unsafe_class, unsafe_bit),
            )),
            middle: Some(self.class(middle).info()),
            paths,
            forwards: true,
        };
        let mut r = self.make_report(
            task,
            ReportKind::IrqSafeUnsafe,
            Some(self.lock_info(next)),
            None,
        );
        r.holding = Some(self.lock_info(prev));
        r.message = Some(format!(
            "WARNING: {state}-safe -> {state}-unsafe lock order detected"
        ));
        r.irq = Some(detail);
        Some(r)
    }

    fn path_links(
        &self,
        st: &State,
        edges: &[crate::engine::graph::EdgeId],
        dir: Direction,
    ) -> Vec<(ClassInfo, Arc<StackTrace>)> {
        edges
            .iter()
            .map(|e| {
                let e = st.graph.edge(*e);
                let c = match dir {
                    Direction::Forward => e.to,
                    Direction::Backward => e.from,
                };
                (self.class(c).info(), e.stack.clone())
            })
            .collect()
    }

    fn inconsistent(
        &self,
        st: &State,
        task: &Task,
        h: &HeldLock,
        prev_bit: u8,
        new_bit: u8,
    ) -> Report {
        let trace = st
            .usage_traces
            .get(&(h.class, prev_bit))
            .cloned()
            .unwrap_or_else(|| Arc::new(StackTrace::symbolic(Vec::new())));
        let mut r = self.make_report(
            task,
            ReportKind::Inconsistent,
            Some(self.lock_info(h)),
            None,
        );
        r.message = Some(format!(
            "inconsistent {{{}}} -> {{{}}} usage.",
            USAGE_STR[prev_bit as usize], USAGE_STR[new_bit as usize]
        ));
        r.irq = Some(IrqDetail {
            task_state: task_state(task),
            state: state_name(new_bit),
            usage_change: Some((USAGE_STR[prev_bit as usize], trace)),
            safe: None,
            unsafe_lock: None,
            middle: None,
            paths: Vec::new(),
            forwards: false,
        });
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn irq_inversion(
        &self,
        st: &State,
        task: &Task,
        h: &HeldLock,
        other: ClassId,
        path: &crate::engine::graph::Path,
        forwards: bool,
        state: &'static str,
    ) -> Report {
        let dir = if forwards {
            Direction::Forward
        } else {
            Direction::Backward
        };
        let links = self.path_links(st, &path.edges, dir);
        // The class next to this one on the path.
        let middle = links.first().map(|(c, _)| c.id).unwrap_or(other);
        let (safe, unsafe_lock, middle) = if forwards {
            (h.class, other, middle)
        } else {
            (other, h.class, middle)
        };
        let mut r = self.make_report(
            task,
            ReportKind::IrqInversion,
            Some(self.lock_info(h)),
            None,
        );
        r.holding = Some(crate::report::LockInfo {
            class: self.class(other).info(),
            instance: 0,
            site: crate::lock::map::Site::Unknown,
            read: ReadKind::Exclusive,
        });
        r.irq = Some(IrqDetail {
            task_state: task_state(task),
            state,
            usage_change: None,
            safe: Some((self.class(safe).info(), None)),
            unsafe_lock: Some((self.class(unsafe_lock).info(), None)),
            middle: Some(self.class(middle).info()),
            paths: vec![(
                "the shortest dependencies between 2nd lock and 1st lock:".to_string(),
                links,
            )],
            forwards,
        });
        r
    }
}

/// `[HC%u[%lu]:SC%u[%lu]:HE%u:SE%u]`
fn task_state(task: &Task) -> String {
    let i = task.irq;
    format!(
        "[HC{}[{}]:SC{}[{}]:HE{}:SE{}]",
        (i.hardirq_context > 0) as u8,
        i.hardirq_context,
        (i.softirq_context > 0) as u8,
        i.softirq_context,
        i.hardirqs_enabled as u8,
        i.softirqs_enabled as u8
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_bits_flip_the_direction_and_strip_read() {
        assert_eq!(exclusive_bit(0), 2); // IN-HARDIRQ-W -> HARDIRQ-ON-W
        assert_eq!(exclusive_bit(1), 2); // IN-HARDIRQ-R -> HARDIRQ-ON-W
        assert_eq!(exclusive_bit(3), 0); // HARDIRQ-ON-R -> IN-HARDIRQ-W
        assert_eq!(exclusive_bit(6), 4); // SOFTIRQ-ON-W -> IN-SOFTIRQ-W
        assert_eq!(exclusive_mask(1), 0b1100);
    }

    #[test]
    fn state_names() {
        assert_eq!(state_name(0), "HARDIRQ");
        assert_eq!(state_name(1), "HARDIRQ-READ");
        assert_eq!(state_name(4), "SOFTIRQ");
        assert_eq!(state_name(7), "SOFTIRQ-READ");
    }

    #[test]
    fn a_match_prefers_a_write_conflict() {
        assert_eq!(find_exclusive_match(1, 0b1100), Some((0, 2)));
        assert_eq!(find_exclusive_match(1, 0b1000), Some((0, 3)));
        assert_eq!(find_exclusive_match(1 << 4, 0b1100), None);
    }
}
