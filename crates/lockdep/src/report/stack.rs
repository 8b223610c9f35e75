//! Stack traces: captured only on the slow path, symbolized only when printed.
//!
//! The validator records a stack for every new dependency (where it was first seen) and for the
//! acquisition that triggers a report. Capturing is a frame walk that stores instruction
//! pointers; symbolizing (the expensive part) happens when a report is formatted. Identical
//! stacks are stored once ([`StackStore`]). The validator's own frames (this crate, `lock_api`,
//! the unwinder) are trimmed from the top when printing, and the runtime's frames below
//! `__rust_begin_short_backtrace` from the bottom, so a trace starts and ends in user code.
//!
//! The replay tool's simulated tasks have symbolic stacks: their frames are names.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// A captured call stack, innermost frame first.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StackTrace {
    frames: Frames,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Frames {
    /// Instruction pointers of a real stack, each with the start address of its function
    /// (0 when unknown), taken at capture time when the unwinder knows it.
    Native(Vec<(usize, usize)>),
    /// Names of simulated frames.
    Symbolic(Vec<&'static str>),
}

/// One printable frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The function (demangled, without hash), or `???` when unknown.
    pub function: String,
    /// The offset of the instruction pointer in the function, for native frames.
    pub offset: Option<usize>,
    /// `file:line`, when debug info has it.
    pub location: Option<String>,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        if let Some(off) = self.offset {
            write!(f, "+{off:#x}")?;
        }
        if let Some(loc) = &self.location {
            write!(f, " ({loc})")?;
        }
        Ok(())
    }
}

impl StackTrace {
    /// Captures the current thread's stack (unsymbolized).
    #[inline(never)]
    pub fn capture() -> StackTrace {
        let mut ips = Vec::with_capacity(32);
        backtrace::trace(|frame| {
            ips.push((frame.ip() as usize, frame.symbol_address() as usize));
            ips.len() < 128
        });
        StackTrace {
            frames: Frames::Native(ips),
        }
    }

    /// A symbolic stack from frame names, innermost first.
    pub fn symbolic(frames: Vec<&'static str>) -> StackTrace {
        StackTrace {
            frames: Frames::Symbolic(frames),
        }
    }

    /// Whether the stack has no frames.
    pub fn is_empty(&self) -> bool {
        match &self.frames {
            Frames::Native(v) => v.is_empty(),
            Frames::Symbolic(v) => v.is_empty(),
        }
    }

    /// The frames as reports print them, innermost first, with the validator's own frames and
    /// the runtime's start-up frames trimmed.
    pub fn frames(&self) -> Vec<Frame> {
        match &self.frames {
            Frames::Symbolic(v) => v
                .iter()
                .map(|f| Frame {
                    function: f.to_string(),
                    offset: None,
                    location: None,
                })
                .collect(),
            Frames::Native(ips) => trim(resolve(ips)),
        }
    }

    /// Writes the frames, one a line, each preceded by `indent` spaces.
    pub fn write_indented(&self, out: &mut String, indent: usize) {
        for f in self.frames() {
            out.push_str(&" ".repeat(indent));
            out.push_str(&f.to_string());
            out.push('\n');
        }
    }
}

impl fmt::Debug for StackTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.frames().iter().map(|fr| fr.to_string()))
            .finish()
    }
}

fn resolve(ips: &[(usize, usize)]) -> Vec<Frame> {
    let mut out = Vec::with_capacity(ips.len());
    for &(ip, start) in ips {
        // One ip may resolve to several symbols: the inlined frames first, the real function
        // last. Only the real function has a start address to measure an offset from.
        let mut here: Vec<Frame> = Vec::new();
        // Return addresses point after the call; look up the call instruction itself.
        let lookup = if ip > start && start != 0 { ip - 1 } else { ip };
        backtrace::resolve(lookup as *mut std::ffi::c_void, |sym| {
            let function = sym
                .name()
                .map(|n| format!("{n:#}"))
                .unwrap_or_else(|| "???".to_string());
            let location = match (sym.filename(), sym.lineno()) {
                (Some(file), Some(line)) => Some(format!("{}:{}", file.display(), line)),
                _ => None,
            };
            here.push(Frame {
                function,
                offset: None,
                location,
            });
        });
        match here.last_mut() {
            Some(last) => {
                if start != 0 && start <= ip {
                    last.offset = Some(ip - start);
                }
            }
            None => here.push(Frame {
                function: format!("{ip:#x}"),
                offset: None,
                location: None,
            }),
        }
        out.extend(here);
    }
    out
}

/// Frames of the validator itself: everything above the first user frame that is one of these
/// (or runtime plumbing between them) is cut.
fn is_internal(function: &str) -> bool {
    const PREFIXES: [&str; 4] = ["lockdep::", "backtrace::", "lock_api::", "parking_lot"];
    let f = function.trim_start_matches('<');
    PREFIXES.iter().any(|p| f.starts_with(p))
}

fn is_plumbing(function: &str) -> bool {
    let f = function.trim_start_matches('<');
    f.starts_with("std::") || f.starts_with("core::") || f.starts_with("alloc::") || f == "???"
}

fn trim(frames: Vec<Frame>) -> Vec<Frame> {
    let mut start = 0;
    for (i, f) in frames.iter().enumerate() {
        if is_internal(&f.function) {
            start = i + 1;
        } else if !is_plumbing(&f.function) {
            break;
        }
    }
    let mut end = frames.len();
    if let Some(i) = frames
        .iter()
        .position(|f| f.function.contains("__rust_begin_short_backtrace"))
    {
        end = i;
    }
    if start >= end {
        return frames;
    }
    frames[start..end].to_vec()
}

/// Deduplicated storage of stacks: each distinct stack is kept once.
#[derive(Default)]
pub(crate) struct StackStore {
    stacks: HashMap<StackTrace, Arc<StackTrace>>,
}

impl StackStore {
    pub(crate) fn intern(&mut self, s: StackTrace) -> Arc<StackTrace> {
        if let Some(a) = self.stacks.get(&s) {
            return a.clone();
        }
        let a = Arc::new(s.clone());
        self.stacks.insert(s, a.clone());
        a
    }

    pub(crate) fn len(&self) -> usize {
        self.stacks.len()
    }
}

/// Interns a string for the lifetime of the process (simulated frame names, `FILE:LINE` sites).
/// Each distinct string is leaked once.
pub fn intern(s: &str) -> &'static str {
    static TABLE: OnceLock<Mutex<std::collections::HashSet<&'static str>>> = OnceLock::new();
    let mut t = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(x) = t.get(s) {
        return x;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    t.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_stacks_print_their_names() {
        let s = StackTrace::symbolic(vec!["inner", "outer"]);
        let mut out = String::new();
        s.write_indented(&mut out, 6);
        assert_eq!(out, "      inner\n      outer\n");
    }

    #[test]
    fn the_store_keeps_one_copy() {
        let mut st = StackStore::default();
        let a = st.intern(StackTrace::symbolic(vec!["x"]));
        let b = st.intern(StackTrace::symbolic(vec!["x"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn interned_strings_are_shared() {
        assert!(std::ptr::eq(intern("abc"), intern("abc")));
    }
}
