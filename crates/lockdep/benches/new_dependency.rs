//! The new-dependency path (the slow path) and memory, at 10^3, 10^4 and 10^5 classes.
//!
//! A new dependency is a one-shot event (an edge is new once), so this is a plain timing
//! harness, not criterion: for each size it builds a hierarchy of N classes (a chain
//! c0 -> c1 -> ... -> cN-1, the deep case where a search from the new lock walks everything after
//! it), then times 1000 new dependencies `ca -> cb` (a < b, both random) that agree with the
//! hierarchy: the common case of a new, consistent edge. It prints microseconds per new edge,
//! with stack capture (a native task) and without (a simulated task), and with stack capture
//! while recording (an engine whose observer writes a recording into a temporary file, as
//! `LOCKDEP_RECORD` makes the process-wide one do), and the heap bytes per class and per
//! dependency (a counting allocator; a dependency's bytes include its chain-cache entries, and
//! with recording the recorder's own tables).
//!
//! `cargo bench -p lockdep --bench new_dependency` (or `-- 1000 10000` for chosen sizes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use lockdep::record::Recorder;
use lockdep::{Acquire, Engine, LockClassKey, LockMap, Options, Site, Task};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn pair(e: &Engine, t: &mut Task, a: &LockMap, b: &LockMap) {
    let site = Site::Unknown;
    let r1 = e.acquire(t, a, Acquire::exclusive(), site);
    let r2 = e.acquire(t, b, Acquire::exclusive(), site);
    assert!(
        r1.is_none() && r2.is_none(),
        "a consistent order was reported"
    );
    e.release(t, b, site);
    e.release(t, a, site);
}

/// How a run validates: without stacks, with them, or with them while recording.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    NoStack,
    Native,
    Recording,
}

fn run(n: usize, mode: Mode) {
    let native = mode != Mode::NoStack;
    let maps: Vec<LockMap> = (0..n)
        .map(|i| {
            let name: &'static str = Box::leak(format!("c{i}").into_boxed_str());
            LockMap::named(Box::leak(Box::new(LockClassKey::new(name))))
        })
        .collect();
    let file = std::env::temp_dir().join(format!(
        "lockdep-new-dependency-{}.ldrec",
        std::process::id()
    ));
    let engine = if mode == Mode::Recording {
        let _ = std::fs::remove_file(&file);
        let rec = Recorder::create(&file).expect("a recording in the temporary directory");
        Engine::with_observer(Options::default(), Box::new(rec))
    } else {
        Engine::new()
    };
    let mut task = if native {
        Task::new("bench", 1)
    } else {
        Task::simulated("bench", 1)
    };
    let site = Site::Unknown;

    let before = live();
    for m in &maps {
        engine.acquire(&mut task, m, Acquire::exclusive(), site);
        engine.release(&mut task, m, site);
    }
    let per_class = (live() - before) as f64 / n as f64;

    let before = live();
    let t = Instant::now();
    for w in maps.windows(2) {
        pair(&engine, &mut task, &w[0], &w[1]);
    }
    let chain_us = t.elapsed().as_secs_f64() * 1e6 / (n - 1) as f64;
    let per_dep = (live() - before) as f64 / (n - 1) as f64;

    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Pairs at least two apart are not chain edges; the set keeps them distinct: all new.
    let mut seen = std::collections::HashSet::new();
    let mut edges = Vec::new();
    while edges.len() < 1000 {
        let a = (next() % (n as u64 - 2)) as usize;
        let b = a + 2 + (next() % (n - a - 2) as u64) as usize;
        if seen.insert((a, b)) {
            edges.push((a, b));
        }
    }
    let t = Instant::now();
    for &(a, b) in &edges {
        pair(&engine, &mut task, &maps[a], &maps[b]);
    }
    let new_us = t.elapsed().as_secs_f64() * 1e6 / edges.len() as f64;
    let s = engine.stats();
    println!(
        "{n:>7} classes, {:<17}: chain edge {chain_us:8.2} us, new consistent edge {new_us:8.2} us \
         | {per_class:6.0} B/class, {per_dep:6.0} B/dependency, {} distinct stacks for {} edges",
        match mode {
            Mode::NoStack => "no stack",
            Mode::Native => "native",
            Mode::Recording => "native, recording",
        },
        s.stack_traces,
        s.dependencies
    );
    assert_eq!(
        s.dependencies,
        n - 1 + edges.len(),
        "every timed edge was new"
    );
    drop(engine);
    if mode == Mode::Recording {
        let _ = std::fs::remove_file(&file);
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    for &n in &sizes {
        run(n, Mode::NoStack);
        run(n, Mode::Native);
        run(n, Mode::Recording);
    }
}
