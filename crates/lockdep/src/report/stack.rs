//! Stack traces: captured only on the slow path, symbolized only when printed.
//!
//! The validator records a stack for every new dependency (where it was first seen) and for the
//! acquisition that triggers a report. Capturing is a frame walk that stores instruction
//! pointers; symbolizing (the expensive part) happens when a report is formatted. Identical
//! stacks are stored once ([`StackStore`]).
//!
//! A printed stack is the user's code: the frames of the standard library (`std`, `core`,
//! `alloc`, `hashbrown`), of the validator, of `lock_api`/`parking_lot`, of the unwinder and the
//! test harness, and the runtime's start-up (`main`'s callers, thread entry) are dropped; the
//! user's own frames are kept whole, inlined frames included, and a `<T as Trait>::method`
//! frame is the user's if `T` or `Trait` is. `LOCKDEP_STACK=full` prints every frame.
//!
//! The replay tool's simulated tasks have symbolic stacks: their frames are names, and the
//! lines of the statements replayed outside any simulated function.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::lock::map::Site;

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
    /// Simulated frames: function names ([`Site::Text`]) or statements' lines ([`Site::Line`]),
    /// printed as sites are.
    Symbolic(Vec<Site>),
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
        let _unwinding = unwinding();
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
        StackTrace::simulated(frames.into_iter().map(Site::Text).collect())
    }

    /// A symbolic stack from frames that are sites, innermost first (a simulated task's).
    pub(crate) fn simulated(frames: Vec<Site>) -> StackTrace {
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
    let _unwinding = unwinding();
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

impl Frame {
    /// The frames at one address, as reports print them (inlined frames first, without
    /// offsets): the function or static object there, with its `file:line` when debug info has
    /// it. For a return address, pass the address minus one (the call instruction). How a
    /// driver names what it cannot capture as a stack: the code that initialised a lock, the
    /// static object a lock is.
    ///
    /// ```
    /// let here = lockdep::Frame::at(lockdep::Frame::at as usize);
    /// assert!(!here.is_empty());
    /// ```
    pub fn at(addr: usize) -> Vec<Frame> {
        resolve(&[(addr, 0)])
    }

    /// Whether the frame is the user's code: not the standard library's, the validator's, the
    /// lock crates' or the runtime's start-up (a C program's own `main`, which has a source
    /// location, is the user's; the `main` shim rustc makes is not).
    fn is_user(&self) -> bool {
        if self.function == "main" {
            return self.location.is_some();
        }
        // glibc's start-up code, when its debug info is installed (constructors run from there).
        if self
            .location
            .as_deref()
            .is_some_and(|l| l.contains("csu/libc-start.c"))
        {
            return false;
        }
        !is_foreign_function(&self.function)
    }
}

/// Crates whose frames are not the user's code: the standard library, the validator, the locks
/// it wraps, the unwinder, the test harness, and what their generic code instantiates.
const NOT_USER: [&str; 13] = [
    "std::",
    "core::",
    "alloc::",
    "hashbrown::",
    "lockdep::",
    "lockdep_preload::",
    "lock_api::",
    "parking_lot::",
    "parking_lot_core::",
    "backtrace::",
    "test::",
    "panic_unwind::",
    "std_detect::",
];

/// The runtime's start-up and thread entry frames, by exact name (C and compiler glue).
const START_UP: [&str; 13] = [
    "main",
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
    "__libc_start_main_impl",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "__rust_try",
    "__rust_begin_short_backtrace",
    "__rust_end_short_backtrace",
];

/// Whether a type or path (the start of a demangled name) belongs to a crate that is not the
/// user's: a path of one of [`NOT_USER`], or a type made only of such paths (`&T`, `fn(..)`,
/// tuples, slices).
fn is_foreign_path(p: &str) -> bool {
    let p = p.trim_start();
    let p = ["&mut ", "&", "*const ", "*mut ", "dyn ", "mut "]
        .iter()
        .fold(p, |p, pre| p.strip_prefix(pre).unwrap_or(p));
    if p.starts_with("fn(") || p.starts_with('(') || p.starts_with('[') {
        return true;
    }
    if let Some(inner) = p.strip_prefix('<') {
        return is_foreign_function(&format!("<{inner}"));
    }
    NOT_USER.iter().any(|c| p.starts_with(c))
}

/// Whether a demangled function name is outside the user's code. `<T as Trait>::method` is the
/// user's if either `T` or `Trait` is.
fn is_foreign_function(function: &str) -> bool {
    let f = function.trim();
    if f == "???" || f.starts_with("0x") || START_UP.contains(&f) {
        return true;
    }
    let Some(rest) = f.strip_prefix('<') else {
        return is_foreign_path(f);
    };
    // Split `<Self as Trait>::...` at the top-level ` as ` and the matching `>`.
    let mut depth = 0usize;
    let mut as_at = None;
    let mut close = None;
    for (i, c) in rest.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            // The arrow of `fn() -> T`.
            '>' if i > 0 && rest.as_bytes()[i - 1] == b'-' => {}
            '>' if depth == 0 => {
                close = Some(i);
                break;
            }
            '>' => depth -= 1,
            ' ' if depth == 0 && as_at.is_none() && rest[i..].starts_with(" as ") => {
                as_at = Some(i)
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return is_foreign_path(rest);
    };
    match as_at {
        Some(a) => is_foreign_path(&rest[..a]) && is_foreign_path(&rest[a + 4..close]),
        None => is_foreign_path(&rest[..close]),
    }
}

/// Waits for the stack setting's one-time read if another thread is inside it (`rt::fork`: a
/// child would wait for it forever).
pub(crate) fn wait_for_settings() {
    full_stacks();
}

/// Whether reports print whole stacks (`LOCKDEP_STACK=full`).
fn full_stacks() -> bool {
    static FULL: OnceLock<bool> = OnceLock::new();
    *FULL.get_or_init(|| {
        std::env::var("LOCKDEP_STACK").is_ok_and(|v| v.trim().eq_ignore_ascii_case("full"))
    })
}

/// The user's frames: every frame of the standard library, the validator, the lock crates and
/// the runtime's start-up dropped (the user's own frames kept whole, inlined ones included).
/// A stack with no user frame at all (the validator's own tests) keeps everything between the
/// validator's frames and the runtime's start-up.
/// The poll of a tracked async task (`lockdep::future::tracked`).
fn is_task_poll(function: &str) -> bool {
    function
        .trim_start_matches('<')
        .starts_with("lockdep::rt::future::Tracked<")
}

fn trim(mut frames: Vec<Frame>) -> Vec<Frame> {
    if full_stacks() {
        return frames;
    }
    // In a tracked async task, the executor's frames below the task's poll are noise: the stack
    // ends at the poll, if the user's code is above it (a stack captured by the poll itself, at
    // a suspension, keeps who polled it).
    if let Some(i) = frames.iter().position(|f| is_task_poll(&f.function)) {
        if frames[..i].iter().any(|f| f.is_user()) {
            frames.truncate(i);
        }
    }
    let user: Vec<Frame> = frames.iter().filter(|f| f.is_user()).cloned().collect();
    if !user.is_empty() {
        return user;
    }
    let start = frames
        .iter()
        .rposition(|f| {
            let g = f.function.trim_start_matches('<');
            ["lockdep::", "backtrace::", "lock_api::", "parking_lot"]
                .iter()
                .any(|p| g.starts_with(p))
        })
        .map_or(0, |i| i + 1);
    let end = frames
        .iter()
        .position(|f| f.function.contains("__rust_begin_short_backtrace"))
        .unwrap_or(frames.len());
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
    let mut t = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let t = t.get_or_insert_with(Default::default);
    if let Some(x) = t.get(s) {
        return x;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    t.insert(leaked);
    leaked
}

/// The strings of [`intern`] (a leaf lock; `rt::fork` takes it around `fork`).
pub(crate) static INTERNED: Mutex<Option<std::collections::HashSet<&'static str>>> =
    Mutex::new(None);

/// Held around every walk and symbolization of a native stack. The unwinder has a global lock
/// of its own that nobody can take from outside; taking this one around `fork` means no thread
/// of the validator is inside the unwinder when the child is made, so the child's unwinder lock
/// is free. The `pthread_atfork` handlers that do it are this module's own
/// ([`install_fork_handlers`]), registered before the first walk: a stack can be walked or
/// symbolized before the process-wide validator exists (the pthread interposer names a lock by
/// symbolizing its address), and a fork at that moment would leave the child with this lock
/// held: the likely cause of a child seen waiting for it in a stress run.
pub(crate) static UNWIND: Mutex<()> = Mutex::new(());

/// Registers (once) the `pthread_atfork` handlers that hold [`UNWIND`] across `fork`. The
/// process-wide validator calls it before it registers its own, so that its own prepare handler
/// runs first (prepare handlers run in the reverse order of registration): the validator takes
/// [`UNWIND`] with its engine's lock held (a stack is captured under it), so around `fork` the
/// engine's lock must be taken first too.
pub(crate) fn install_fork_handlers() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handlers are `extern "C"` functions that live as long as the
            // process, which is what `pthread_atfork` requires.
            let rc = unsafe {
                libc::pthread_atfork(Some(fork_prepare), Some(fork_release), Some(fork_release))
            };
            if rc != 0 {
                eprintln!("lockdep: pthread_atfork failed ({rc}): a forked child may wait to walk a stack");
            }
        });
    }
}

#[cfg(target_os = "linux")]
thread_local! {
    /// [`UNWIND`] from `fork_prepare` to `fork_release` (all run on the forking thread).
    static HELD_FOR_FORK: std::cell::RefCell<Option<std::sync::MutexGuard<'static, ()>>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(target_os = "linux")]
extern "C" fn fork_prepare() {
    // Nothing here may unwind into `fork`.
    let _ = std::panic::catch_unwind(|| {
        let g = UNWIND.lock().unwrap_or_else(|e| e.into_inner());
        let _ = HELD_FOR_FORK.try_with(|h| *h.borrow_mut() = Some(g));
    });
}

/// In the parent and in the child: the lock is given back (in the child nobody waits for it:
/// the threads that did are not there).
#[cfg(target_os = "linux")]
extern "C" fn fork_release() {
    let _ = std::panic::catch_unwind(|| {
        let _ = HELD_FOR_FORK.try_with(|h| drop(h.borrow_mut().take()));
    });
}

/// Takes [`UNWIND`] (registering the fork handlers first, once), waiting at most a few
/// seconds. The lock only keeps a `fork` from happening while a thread of the validator is
/// inside the unwinder; the unwinder itself is thread-safe. So if it cannot be had — which the
/// fork handlers prevent, and which a program that forks from a raw `clone` or a signal
/// handler could still see — walking without it is safe, and hanging the program is not.
fn unwinding() -> Option<std::sync::MutexGuard<'static, ()>> {
    install_fork_handlers();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match UNWIND.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {
                if std::time::Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
    }
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
    fn foreign_frames_are_told_from_the_users() {
        for f in [
            "core::ops::function::FnOnce::call_once",
            "<core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once",
            "<fn() -> core::result::Result<(), alloc::string::String> as core::ops::function::FnOnce<()>>::call_once",
            "<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once",
            "hashbrown::raw::RawTable<T,A>::find",
            "std::thread::Builder::spawn_unchecked_::{{closure}}::{{closure}}",
            "lockdep::rt::acquire_slow",
            "<lock_api::mutex::Mutex<R,T>>::lock",
            "parking_lot_core::parking_lot::park",
            "test::run_test::{{closure}}",
            "__rust_begin_short_backtrace",
            "main",
            "???",
            "0x7f00deadbeef",
            "start_thread",
        ] {
            assert!(is_foreign_function(f), "{f}");
        }
        for f in [
            "bank::Bank::transfer",
            "bank::main::{{closure}}",
            "<bank::Bank as core::fmt::Debug>::fmt",
            "<alloc::vec::Vec<u8> as bank::Ledger>::post",
            "<fn() -> bank::Bank as bank::Make>::make",
            "two_threads::inversion",
        ] {
            assert!(!is_foreign_function(f), "{f}");
        }
    }

    #[test]
    fn trimming_keeps_user_frames_inlined_ones_included() {
        let fr = |f: &str| Frame {
            function: f.into(),
            offset: None,
            location: None,
        };
        let frames = vec![
            fr("backtrace::capture"),
            fr("lockdep::rt::acquire_slow"),
            fr("bank::Bank::inner"),
            fr("core::iter::Iterator::for_each"),
            fr("bank::Bank::transfer"),
            fr("core::ops::function::FnOnce::call_once"),
            fr("std::sys::backtrace::__rust_begin_short_backtrace"),
            fr("main"),
        ];
        let kept: Vec<String> = trim(frames).into_iter().map(|f| f.function).collect();
        assert_eq!(kept, ["bank::Bank::inner", "bank::Bank::transfer"]);
        // The validator's own tests: nothing is the user's; the middle is kept.
        let frames = vec![
            fr("lockdep::rt::acquire_slow"),
            fr("lockdep::engine::tests::x"),
            fr("core::ops::function::FnOnce::call_once"),
            fr("std::sys::backtrace::__rust_begin_short_backtrace"),
        ];
        let kept: Vec<String> = trim(frames).into_iter().map(|f| f.function).collect();
        assert_eq!(kept, ["core::ops::function::FnOnce::call_once"]);
    }

    #[test]
    fn interned_strings_are_shared() {
        assert!(std::ptr::eq(intern("abc"), intern("abc")));
    }
}
