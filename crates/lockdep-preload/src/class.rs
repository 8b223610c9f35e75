//! Classes and sites, named after the C code.
//!
//! - A dynamically initialised lock's class key is its **init call site**: one key per return
//!   address of `pthread_*_init`, named `function@file:line` of the call (so an init helper
//!   makes one class for every object it initialises, as `mutex_init` does in the kernel). The
//!   key lives as long as the process, so a class keeps its history across destroy and
//!   re-init.
//! - A statically initialised lock (`PTHREAD_MUTEX_INITIALIZER`, a constant-initialised C++
//!   `std::mutex`), first seen at its first use, is keyed by its **address**, named after the
//!   symbol of the object it is (or is inside of), else after the address.
//! - The **site** of each lock call (what a held lock prints after `at:`) is its return
//!   address, symbolized once per address: `function (file:line)`.
//!
//! Keys are named by content only (no creation order), so one init site or one static object
//! is the same class in every process of a program: recordings of a C test suite merge.
//! Symbolization happens outside the tables' leaf locks.

use std::collections::HashMap;

use lockdep::Frame;
use lockdep::LockClassKey;

use crate::leaf::Leaf;

static INIT_KEYS: Leaf<Option<HashMap<usize, &'static LockClassKey>>> = Leaf::new(None);
static STATIC_KEYS: Leaf<Option<HashMap<usize, &'static LockClassKey>>> = Leaf::new(None);
static SITES: Leaf<Option<HashMap<usize, &'static str>>> = Leaf::new(None);

pub(crate) fn fork_acquire() {
    OBJECTS.fork_acquire();
    INIT_KEYS.fork_acquire();
    STATIC_KEYS.fork_acquire();
    SITES.fork_acquire();
}

pub(crate) fn fork_release() {
    SITES.fork_release();
    STATIC_KEYS.fork_release();
    INIT_KEYS.fork_release();
    OBJECTS.fork_release();
}

fn cached<V: Copy>(table: &Leaf<Option<HashMap<usize, V>>>, k: usize) -> Option<V> {
    table.lock().as_ref().and_then(|m| m.get(&k).copied())
}

fn put<V: Copy>(table: &Leaf<Option<HashMap<usize, V>>>, k: usize, v: V) -> V {
    *table
        .lock()
        .get_or_insert_with(HashMap::new)
        .entry(k)
        .or_insert(v)
}

fn key_named(name: String) -> &'static LockClassKey {
    let name: &'static str = Box::leak(name.into_boxed_str());
    Box::leak(Box::new(LockClassKey::new(name)))
}

/// The innermost frame at a code address (a return address: the call is the byte before it).
fn code_frame(ret: usize) -> Option<Frame> {
    Frame::at(ret.wrapping_sub(1)).into_iter().next()
}

fn file_name(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}

/// The key of locks initialised by the call that returns to `ret`.
pub(crate) fn init_site_key(ret: usize) -> &'static LockClassKey {
    if let Some(k) = cached(&INIT_KEYS, ret) {
        return k;
    }
    let name = match code_frame(ret) {
        Some(Frame {
            function,
            location: Some(loc),
            ..
        }) if function != "???" => format!("{function}@{}", file_name(&loc)),
        Some(Frame { function, .. }) if function != "???" => format!("{function}@{ret:#x}"),
        _ => format!("{ret:#x}"),
    };
    put(&INIT_KEYS, ret, key_named(name))
}

/// The key of the statically initialised lock at `addr`.
pub(crate) fn static_key(addr: usize) -> &'static LockClassKey {
    if let Some(k) = cached(&STATIC_KEYS, addr) {
        return k;
    }
    put(&STATIC_KEYS, addr, key_named(static_name(addr)))
}

/// The symbol of the static object at `addr` (`lock_a`, or `locks+0x28` inside an array or
/// struct), else the address.
fn static_name(addr: usize) -> String {
    data_symbol(addr).unwrap_or_else(|| format!("{addr:#x}"))
}

/// A loaded object's data symbols: (address as linked, size, name), sorted.
type Symbols = Vec<(u64, u64, String)>;

static OBJECTS: Leaf<Option<HashMap<String, &'static Symbols>>> = Leaf::new(None);

fn data_symbol(addr: usize) -> Option<String> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: `dladdr` fills `info` and reads nothing else; any address may be asked about.
    if unsafe { libc::dladdr(addr as *const libc::c_void, info.as_mut_ptr()) } == 0 {
        return None; // the heap or a stack
    }
    // SAFETY: filled by `dladdr`.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() || info.dli_fbase.is_null() {
        return None;
    }
    // SAFETY: `dladdr` gives a NUL-terminated path (empty for the main program).
    let mut path = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned();
    if path.is_empty() {
        path = "/proc/self/exe".to_string();
    }
    let (exec, symbols) = object_symbols(&path)?;
    // Symbols of a position-dependent executable are absolute; others are relative to the
    // object's load address.
    let at = if exec {
        addr as u64
    } else {
        (addr - info.dli_fbase as usize) as u64
    };
    let i = symbols.partition_point(|s| s.0 <= at).checked_sub(1)?;
    let (start, size, name) = &symbols[i];
    if at >= start + (*size).max(1) {
        return None;
    }
    Some(match at - start {
        0 => name.clone(),
        off => format!("{name}+{off:#x}"),
    })
}

/// The data symbols of the object file at `path`, read once (outside the lock), and whether it
/// is a position-dependent executable.
fn object_symbols(path: &str) -> Option<(bool, &'static Symbols)> {
    use object::{Object, ObjectKind, ObjectSymbol, SymbolKind};
    let exec_key = format!("exec:{path}");
    if let Some(m) = OBJECTS.lock().as_ref() {
        if let Some(s) = m.get(path) {
            return Some((m.contains_key(&exec_key), s));
        }
    }
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let exec = file.kind() == ObjectKind::Executable;
    let mut syms: Symbols = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Data && s.is_definition())
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect();
    syms.sort();
    let syms: &'static Symbols = Box::leak(Box::new(syms));
    let mut m = OBJECTS.lock();
    let m = m.get_or_insert_with(HashMap::new);
    if exec {
        m.insert(exec_key, syms);
    }
    Some((exec, *m.entry(path.to_string()).or_insert(syms)))
}

/// The text of the lock call that returns to `ret`: `function (file:line)`, symbolized once
/// per address (the per-thread memo in `guard` is asked first).
#[cold]
#[inline(never)]
pub(crate) fn site_text(ret: usize) -> &'static str {
    if let Some(t) = cached(&SITES, ret) {
        return t;
    }
    let text = match code_frame(ret) {
        Some(f) if f.function != "???" => f.to_string(),
        _ => format!("{ret:#x}"),
    };
    put(&SITES, ret, Box::leak(text.into_boxed_str()))
}
