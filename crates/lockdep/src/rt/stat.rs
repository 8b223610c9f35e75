//! Lock statistics (the kernel's `CONFIG_LOCK_STAT`): which lock classes are contended, for how
//! long, and by whom.
//!
//! Off by default; on with `LOCKDEP_STAT=1` in the environment or [`enable`]. Per class, and
//! separately for exclusive (write) and shared (read) acquisitions, the validator then counts:
//!
//! - **contentions** and their **wait times** (min/max/total/avg): an acquisition is contended
//!   only when the raw lock's first try fails, and only that wait is timed, from the failed try
//!   to the moment the lock is obtained. A wait that spins and one that parks are the same
//!   contention;
//! - **acquisitions** (trylocks included) and **hold times**, from the moment the lock is
//!   obtained to its release. A [`Condvar`](crate::Condvar) wait releases the mutex, so it ends
//!   one hold and the re-acquisition begins the next (and is a contention if the mutex is busy);
//! - **con-bounces** and **acq-bounces**: contentions on, and acquisitions of, a lock instance
//!   whose last holder was another thread (the kernel counts another CPU);
//! - the top **contention points** (the call sites that waited) and **contending points** (the
//!   sites where the holders that were waited for had taken the lock).
//!
//! [`snapshot`] gives the counts as [`LockStats`], whose `Display` is the kernel's
//! `/proc/lock_stat`; [`reset`] zeroes them. With `LOCKDEP_RECORD` set, the statistics are also
//! written into the process's recording, and `lockdep stat DIR` merges and prints those of many
//! processes.
//!
//! ```
//! # #[cfg(not(feature = "disabled"))] {
//! use lockdep::Mutex;
//!
//! lockdep::stat::enable();
//! let m = Mutex::new(0);
//! for _ in 0..3 {
//!     *m.lock() += 1;
//! }
//! let stats = lockdep::stat::snapshot();
//! let mine = stats.class(&m.class_name()).unwrap();
//! assert_eq!(mine.write.acquisitions, 3);
//! assert_eq!(mine.contentions(), 0);
//! println!("{stats}"); // lock_stat version 0.4 ...
//! # }
//! ```
//!
//! ## Where it is measured
//!
//! Every instrumented lock takes its raw lock through
//! [`LockMap::acquire_lock`](crate::LockMap::acquire_lock) (the kernel's `LOCK_CONTENDED`), which
//! with statistics on tries the lock first and calls the
//! [`contended`](crate::LockMap::contended) and [`acquired`](crate::LockMap::acquired) hooks; a
//! lock type of your own calls the same hooks (an async lock calls `contended` before it awaits).
//! A lock that only calls `acquire` and `release` gets acquisitions and hold times, never
//! contentions. Holds made with statistics off, and holds released by another thread than the
//! one that took them (`send_guard`), are not timed. Statistics, like validation, are gathered
//! only while the validator is on.
//!
//! ## Cost
//!
//! Off, nothing: the hooks' fast path runs only when the one word it already reads says
//! statistics are off, and leaves the lock call exactly as it was. On, the counters are per
//! thread (threads with private locks share no cache line; a snapshot merges them), a hold's
//! start time is kept in a per-thread stack beside the held-lock stack (so the held-lock entry
//! stays the size it is), and the clock is the CPU's invariant time-stamp counter where there is
//! one (`Instant` elsewhere). The one shared table written is that of the last holder of each
//! lock instance, and only when the holder changes. `docs/PERFORMANCE.md` has the measurements.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::lock::class::ClassId;
use crate::lock::map::{ReadKind, Site, SiteRef};
pub use crate::proc::lock_stat::{ClassStats, KindStats, LockStats, LockTime, Point, SortKey};

use super::{GATE, STAT};

/// Turns lock statistics on (as `LOCKDEP_STAT=1` does). Counting starts with the next
/// acquisition; what was counted before a [`disable`] is kept.
pub fn enable() {
    clock();
    super::action_code();
    GATE.fetch_or(STAT, Ordering::Relaxed);
}

/// Turns lock statistics off. What was counted is kept for [`snapshot`]; holds still open are
/// not timed.
pub fn disable() {
    GATE.fetch_and(!STAT, Ordering::Relaxed);
}

/// Whether lock statistics are on.
pub fn is_enabled() -> bool {
    super::gate() & STAT != 0
}

/// `STAT` if `LOCKDEP_STAT` asks for statistics (`1`, `on`, `yes`, `true`), else 0.
pub(crate) fn from_env(bit: usize) -> usize {
    match std::env::var("LOCKDEP_STAT") {
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "on" | "yes" | "true" => {
                clock();
                bit
            }
            "0" | "off" | "no" | "false" | "" => 0,
            other => {
                eprintln!("lockdep: LOCKDEP_STAT={other:?} is not 1 or 0; statistics stay off");
                0
            }
        },
        Err(_) => 0,
    }
}

// ===== the clock =====

/// Ticks of the time-stamp counter, or nanoseconds since [`Clock::start`].
struct Clock {
    tsc: bool,
    start: Instant,
    start_ticks: u64,
    /// Ticks per nanosecond, measured at start over a short interval.
    ticks_per_ns: f64,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();
static USE_TSC: AtomicBool = AtomicBool::new(false);

/// With statistics on, waits for the clock's one-time calibration if another thread is inside it
/// (`rt::fork`: a child would wait for it forever).
pub(super) fn wait_for_clock() {
    if GATE.load(Ordering::Relaxed) & STAT != 0 {
        clock();
    }
}

fn clock() -> &'static Clock {
    CLOCK.get_or_init(|| {
        let tsc = invariant_tsc();
        USE_TSC.store(tsc, Ordering::Relaxed);
        let start = Instant::now();
        let start_ticks = raw_ticks(tsc, start);
        let mut ticks_per_ns = 1.0;
        if tsc {
            // A millisecond against the monotonic clock; `to_ns` refines it over longer runs.
            while start.elapsed().as_micros() < 1000 {
                std::hint::spin_loop();
            }
            let ns = start.elapsed().as_nanos() as f64;
            ticks_per_ns = (raw_ticks(true, start) - start_ticks) as f64 / ns;
        }
        Clock {
            tsc,
            start,
            start_ticks,
            ticks_per_ns,
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    use std::arch::x86_64::__cpuid;
    #[allow(unused_unsafe)]
    // SAFETY: `cpuid` is available on every x86_64 CPU; leaf 0x8000_0000 gives the highest
    // extended leaf, and 0x8000_0007 (EDX bit 8) says whether the TSC is invariant: constant
    // rate, counting in every power state, so its differences measure time.
    unsafe {
        __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn invariant_tsc() -> bool {
    false
}

/// The clock's reading: the time-stamp counter if `tsc`, else nanoseconds since `start`.
#[inline(always)]
fn raw_ticks(tsc: bool, start: Instant) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if tsc {
        // SAFETY: `rdtsc` is available on every x86_64 CPU and has no preconditions.
        return unsafe { std::arch::x86_64::_rdtsc() };
    }
    let _ = tsc;
    start.elapsed().as_nanos() as u64
}

/// Now, in the clock's ticks.
#[inline(always)]
fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if USE_TSC.load(Ordering::Relaxed) {
        // SAFETY: as in `raw_ticks`.
        return unsafe { std::arch::x86_64::_rdtsc() };
    }
    clock().start.elapsed().as_nanos() as u64
}

/// Converts a duration in ticks to nanoseconds: over the whole time since the clock started
/// when that is long enough to be exact, otherwise with the start's calibration.
struct ToNs(f64);

impl ToNs {
    fn now() -> ToNs {
        let c = clock();
        if !c.tsc {
            return ToNs(1.0);
        }
        // Measured over the whole run so far, and fixed once that is 10 seconds (so that
        // snapshots of unchanged counters are equal).
        static FIXED: OnceLock<f64> = OnceLock::new();
        if let Some(f) = FIXED.get() {
            return ToNs(*f);
        }
        let ns = c.start.elapsed().as_nanos() as f64;
        let ticks = raw_ticks(true, c.start).saturating_sub(c.start_ticks) as f64;
        let per_ns = if ns > 50e6 && ticks > 0.0 {
            ticks / ns
        } else {
            c.ticks_per_ns
        }
        .max(1e-6);
        if ns > 10e9 {
            return ToNs(*FIXED.get_or_init(|| per_ns));
        }
        ToNs(per_ns)
    }

    fn ns(&self, ticks: u64) -> u64 {
        (ticks as f64 / self.0) as u64
    }

    fn time(&self, t: &LockTime) -> LockTime {
        LockTime {
            nr: t.nr,
            min_ns: self.ns(t.min_ns),
            max_ns: self.ns(t.max_ns),
            total_ns: self.ns(t.total_ns),
        }
    }
}

// ===== per-thread counters =====

/// One kind's counters of one class on one thread. Written by that thread only (a load and a
/// store, no read-modify-write), read by [`snapshot`].
#[derive(Default)]
struct Cells {
    con_bounces: AtomicU64,
    contentions: AtomicU64,
    wait_min: AtomicU64,
    wait_max: AtomicU64,
    wait_total: AtomicU64,
    acq_bounces: AtomicU64,
    acquisitions: AtomicU64,
    hold_nr: AtomicU64,
    hold_min: AtomicU64,
    hold_max: AtomicU64,
    hold_total: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

fn time_add(nr: &AtomicU64, min: &AtomicU64, max: &AtomicU64, total: &AtomicU64, d: u64) {
    let n = nr.load(Ordering::Relaxed);
    if n == 0 || d < min.load(Ordering::Relaxed) {
        min.store(d, Ordering::Relaxed);
    }
    if d > max.load(Ordering::Relaxed) {
        max.store(d, Ordering::Relaxed);
    }
    bump(total, d);
    nr.store(n + 1, Ordering::Relaxed);
}

impl Cells {
    /// The counters as values. They are read while their thread may be writing them, one
    /// field at a time, so a read can mix old and new fields: the times are made consistent
    /// (`min <= max <= total`), which at worst counts one duration a snapshot early.
    fn read(&self) -> KindStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let time = |mut t: LockTime| {
            if t.nr == 0 {
                return LockTime::default();
            }
            t.total_ns = t.total_ns.max(t.max_ns);
            t.min_ns = t.min_ns.min(t.max_ns);
            t
        };
        let k = KindStats {
            con_bounces: l(&self.con_bounces),
            wait: LockTime {
                nr: l(&self.contentions),
                min_ns: l(&self.wait_min),
                max_ns: l(&self.wait_max),
                total_ns: l(&self.wait_total),
            },
            acq_bounces: l(&self.acq_bounces),
            acquisitions: l(&self.acquisitions),
            hold: LockTime {
                nr: l(&self.hold_nr),
                min_ns: l(&self.hold_min),
                max_ns: l(&self.hold_max),
                total_ns: l(&self.hold_total),
            },
        };
        KindStats {
            wait: time(k.wait),
            hold: time(k.hold),
            ..k
        }
    }

    fn clear(&self) {
        for c in [
            &self.con_bounces,
            &self.contentions,
            &self.wait_min,
            &self.wait_max,
            &self.wait_total,
            &self.acq_bounces,
            &self.acquisitions,
            &self.hold_nr,
            &self.hold_min,
            &self.hold_max,
            &self.hold_total,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum PointKind {
    Contention,
    Contending,
}

type Points = FxHashMap<(u32, PointKind, SiteRef), u64>;

/// A thread's counters, shared with [`snapshot`]: per class (indexed by class id), write and
/// read. Only the owning thread grows the vector or writes a cell.
struct Shared {
    id: u32,
    /// The [`EPOCH`] the counters belong to: a thread that finds it stale zeroes them first,
    /// and a snapshot skips a thread whose counters predate the last reset.
    epoch: AtomicU64,
    classes: boxcar::Vec<[Cells; 2]>,
    /// Contention and contending points, taken only when a lock is contended.
    points: Mutex<Points>,
}

/// Bumped by [`reset`].
static EPOCH: AtomicU64 = AtomicU64::new(0);
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// The live threads' counters, and what exited threads counted.
struct Registry {
    threads: Vec<Arc<Shared>>,
    retired: Accum,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    threads: Vec::new(),
    retired: Accum {
        classes: None,
        epoch: 0,
    },
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counters merged per class, in ticks.
struct Accum {
    classes: Option<FxHashMap<u32, AccumClass>>,
    epoch: u64,
}

#[derive(Default)]
struct AccumClass {
    kinds: [KindStats; 2],
    points: [FxHashMap<SiteRef, u64>; 2],
}

impl Accum {
    fn add_thread(&mut self, s: &Shared) {
        let classes = self.classes.get_or_insert_with(FxHashMap::default);
        for (i, cells) in s.classes.iter() {
            let w = cells[0].read();
            let r = cells[1].read();
            if w.acquisitions + r.acquisitions + w.wait.nr + r.wait.nr == 0 {
                continue;
            }
            let a = classes.entry(i as u32).or_default();
            merge_kind(&mut a.kinds[0], &w);
            merge_kind(&mut a.kinds[1], &r);
        }
        let points = s.points.lock().unwrap_or_else(|e| e.into_inner());
        for (&(class, kind, site), &n) in points.iter() {
            let a = classes.entry(class).or_default();
            *a.points[kind as usize].entry(site).or_default() += n;
        }
    }

    fn merge(&mut self, o: &Accum) {
        let Some(theirs) = &o.classes else { return };
        let classes = self.classes.get_or_insert_with(FxHashMap::default);
        for (&id, c) in theirs {
            let a = classes.entry(id).or_default();
            for k in 0..2 {
                merge_kind(&mut a.kinds[k], &c.kinds[k]);
                for (&site, &n) in &c.points[k] {
                    *a.points[k].entry(site).or_default() += n;
                }
            }
        }
    }
}

fn merge_kind(a: &mut KindStats, o: &KindStats) {
    a.con_bounces += o.con_bounces;
    a.wait.merge(&o.wait);
    a.acq_bounces += o.acq_bounces;
    a.acquisitions += o.acquisitions;
    a.hold.merge(&o.hold);
}

/// An open hold: a lock this thread acquired with statistics on and has not released.
struct Hold {
    instance: usize,
    /// The counters of the hold's class and kind: an element of `Local::shared.classes`, which
    /// never moves and lives as long as the `Local` that holds this entry.
    cells: *const Cells,
    class: u32,
    kind: u8,
    site: SiteRef,
    /// When the lock was obtained (ticks).
    since: u64,
}

impl Hold {
    #[inline(always)]
    fn cells(&self) -> &Cells {
        // SAFETY: see `cells`: the element lives in the `Local` this entry is in, and is only
        // reached through it.
        unsafe { &*self.cells }
    }
}

/// What only the owning thread touches.
struct Local {
    shared: Arc<Shared>,
    /// `shared.epoch`, as this thread last set it.
    epoch: u64,
    /// `shared.classes` by class id: the vector's elements never move.
    index: Vec<*const [Cells; 2]>,
    /// Open holds, most recent last (a lock is released from the top almost always).
    holds: Vec<Hold>,
    /// The lock this thread is waiting for, and since when.
    wait: Option<(usize, u64)>,
    /// A hook is using this `Local` (see [`with_local`]).
    busy: bool,
}

/// More open holds than this on one thread is a hold that will never be released here (a
/// guard sent to another thread): the oldest is forgotten.
const MAX_HOLDS: usize = 256;

impl Local {
    fn new() -> Local {
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            epoch: AtomicU64::new(EPOCH.load(Ordering::Acquire)),
            classes: boxcar::Vec::new(),
            points: Mutex::new(FxHashMap::default()),
        });
        let epoch = shared.epoch.load(Ordering::Relaxed);
        registry().threads.push(shared.clone());
        start_recording();
        Local {
            shared,
            epoch,
            index: Vec::new(),
            holds: Vec::with_capacity(8),
            wait: None,
            busy: false,
        }
    }

    /// The counters of `class`, zeroed first if a reset happened since this thread last
    /// counted.
    #[inline(always)]
    fn cells(&mut self, class: u32) -> &[Cells; 2] {
        let epoch = EPOCH.load(Ordering::Acquire);
        if self.epoch != epoch {
            self.renew(epoch);
        }
        let p = match self.index.get(class as usize) {
            Some(p) => *p,
            None => self.grow(class),
        };
        // SAFETY: `index` points into `shared.classes`, whose elements never move and live as
        // long as `shared`, which `self` owns.
        unsafe { &*p }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, class: u32) -> *const [Cells; 2] {
        let s = &self.shared;
        while s.classes.count() <= class as usize {
            s.classes.push(Default::default());
        }
        while self.index.len() <= class as usize {
            self.index.push(&s.classes[self.index.len()]);
        }
        self.index[class as usize]
    }

    #[cold]
    #[inline(never)]
    fn renew(&mut self, epoch: u64) {
        self.epoch = epoch;
        for (_, c) in self.shared.classes.iter() {
            c[0].clear();
            c[1].clear();
        }
        self.shared
            .points
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.shared.epoch.store(epoch, Ordering::Release);
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // From here on the hooks must not reach this `Local`.
        let _ = LOCAL.try_with(|p| p.set(std::ptr::null_mut()));
        let mut reg = registry();
        reg.threads.retain(|s| !Arc::ptr_eq(s, &self.shared));
        let epoch = EPOCH.load(Ordering::Acquire);
        if reg.retired.epoch != epoch {
            reg.retired = Accum {
                classes: None,
                epoch,
            };
        }
        if self.shared.epoch.load(Ordering::Acquire) == epoch {
            reg.retired.add_thread(&self.shared);
        }
    }
}

thread_local! {
    /// This thread's statistics; its destructor retires them (see `Drop for Local`).
    static OWNER: RefCell<Option<Box<Local>>> = const { RefCell::new(None) };
    /// `OWNER`'s box, from its creation until its destructor starts; null otherwise. Constant
    /// and without a destructor, so reading it is one thread-local load (as `rt`'s `FAST`).
    static LOCAL: Cell<*mut Local> = const { Cell::new(std::ptr::null_mut()) };
}

/// Clears `Local::busy` when dropped.
struct NotBusy(*mut Local);

impl Drop for NotBusy {
    fn drop(&mut self) {
        // SAFETY: the pointer is this thread's `Local`, alive for the whole hook.
        unsafe { (*self.0).busy = false };
    }
}

/// Runs `f` on this thread's statistics, unless they are in use already (a hook called from
/// inside one, e.g. by an instrumented allocator) or the thread is exiting.
#[inline(always)]
fn with_local(f: impl FnOnce(&mut Local)) {
    let p = LOCAL.with(Cell::get);
    if p.is_null() {
        return first_use(f);
    }
    // SAFETY: `LOCAL` is non-null only while `OWNER` owns the box it points to, on this
    // thread; `busy` makes the reference unique (a nested hook finds it set and does nothing).
    let l = unsafe { &mut *p };
    if l.busy {
        return;
    }
    l.busy = true;
    let _not_busy = NotBusy(p);
    f(l);
}

/// The first statistics hook on this thread: makes its `Local`.
#[cold]
#[inline(never)]
fn first_use(f: impl FnOnce(&mut Local)) {
    let made = OWNER.try_with(|o| {
        let Ok(mut o) = o.try_borrow_mut() else {
            return;
        };
        if o.is_none() {
            let mut l = Box::new(Local::new());
            LOCAL.with(|p| p.set(&mut *l));
            *o = Some(l);
        }
    });
    if made.is_ok() && !LOCAL.with(Cell::get).is_null() {
        with_local(f);
    }
}

// ===== the last holder of each lock instance =====

/// The last thread to obtain a lock instance, and where it took it: a direct-mapped table by
/// instance address (a collision only costs the two locks their bounce counts and contending
/// points while they alternate). Written only when the holder changes, so a thread that keeps
/// taking its own lock only reads its slot.
#[repr(align(32))]
struct Holder {
    instance: AtomicUsize,
    site: AtomicUsize,
    thread: AtomicU32,
}

const HOLDERS: usize = 4096;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_HOLDER: Holder = Holder {
    instance: AtomicUsize::new(0),
    site: AtomicUsize::new(0),
    thread: AtomicU32::new(0),
};
static HOLDER: [Holder; HOLDERS] = [EMPTY_HOLDER; HOLDERS];

#[inline]
fn holder(instance: usize) -> &'static Holder {
    let h = (instance >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 12);
    &HOLDER[h % HOLDERS]
}

// ===== the hooks =====

/// A hold begins: `instance` was pushed as `class`, `read`. Returns `true` (the caller reports
/// how it takes the lock) unless this thread's statistics are busy.
pub(crate) fn hold_begins(instance: usize, class: ClassId, read: ReadKind, site: Site) -> bool {
    let mut recorded = false;
    with_local(|l| {
        if l.holds.len() >= MAX_HOLDS {
            l.holds.remove(0);
        }
        let site = SiteRef::direct(site).unwrap_or_else(|| SiteRef::new(site));
        let kind = u8::from(read.is_read());
        let cells: *const Cells = &l.cells(class.0)[usize::from(kind)];
        l.holds.push(Hold {
            instance,
            cells,
            class: class.0,
            kind,
            site,
            since: now(),
        });
        recorded = true;
    });
    recorded
}

/// A hold ends: counts the acquisition and its hold time.
pub(crate) fn hold_ends(instance: usize) {
    with_local(|l| {
        let h = match l.holds.last() {
            Some(top) if top.instance == instance => l.holds.pop().expect("not empty"),
            _ => match l.holds.iter().rposition(|h| h.instance == instance) {
                Some(i) => l.holds.remove(i),
                None => return,
            },
        };
        let d = now().saturating_sub(h.since);
        if l.wait.is_some_and(|(w, _)| w == instance) {
            l.wait = None;
        }
        // A reset since the hold began applies first, so the hold counts after it.
        let epoch = EPOCH.load(Ordering::Acquire);
        if l.epoch != epoch {
            l.renew(epoch);
        }
        let c = h.cells();
        bump(&c.acquisitions, 1);
        time_add(&c.hold_nr, &c.hold_min, &c.hold_max, &c.hold_total, d);
    });
}

/// The hold of an annotation (`might_lock`) that is not a real acquisition: forgotten.
pub(crate) fn forget(instance: usize) {
    with_local(|l| {
        if let Some(i) = l.holds.iter().rposition(|h| h.instance == instance) {
            l.holds.remove(i);
        }
    });
}

pub(crate) fn contended(instance: usize) {
    with_local(|l| {
        let Some(h) = l.holds.iter().rev().find(|h| h.instance == instance) else {
            return;
        };
        let (class, kind, site) = (h.class, h.kind, h.site);
        let slot = holder(instance);
        let known = slot.instance.load(Ordering::Relaxed) == instance;
        // SAFETY: the slot's site word was stored from `SiteRef::word`.
        let holder_site =
            known.then(|| unsafe { SiteRef::from_word(slot.site.load(Ordering::Relaxed)) });
        let bounced = known && slot.thread.load(Ordering::Relaxed) != l.shared.id;
        // A reset must apply before the points are counted.
        let c: *const Cells = &l.cells(class)[usize::from(kind)];
        if bounced {
            // SAFETY: as for `Hold::cells`.
            bump(unsafe { &(*c).con_bounces }, 1);
        }
        {
            let mut points = l.shared.points.lock().unwrap_or_else(|e| e.into_inner());
            *points
                .entry((class, PointKind::Contention, site))
                .or_default() += 1;
            if let Some(hs) = holder_site {
                *points
                    .entry((class, PointKind::Contending, hs))
                    .or_default() += 1;
            }
        }
        l.wait = Some((instance, now()));
    });
}

pub(crate) fn acquired(instance: usize) {
    with_local(|l| {
        let me = l.shared.id;
        let i = match l.holds.last() {
            Some(top) if top.instance == instance => l.holds.len() - 1,
            _ => match l.holds.iter().rposition(|h| h.instance == instance) {
                Some(i) => i,
                None => return,
            },
        };
        let site = l.holds[i].site;
        let slot = holder(instance);
        let same_instance = slot.instance.load(Ordering::Relaxed) == instance;
        let last = slot.thread.load(Ordering::Relaxed);
        if same_instance && last != me {
            bump(&l.holds[i].cells().acq_bounces, 1);
        }
        if !same_instance || last != me || slot.site.load(Ordering::Relaxed) != site.word() {
            slot.instance.store(instance, Ordering::Relaxed);
            slot.site.store(site.word(), Ordering::Relaxed);
            slot.thread.store(me, Ordering::Relaxed);
        }
        if let Some((w, since)) = l.wait {
            if w == instance {
                l.wait = None;
                let t = now();
                l.holds[i].since = t;
                let c = l.holds[i].cells();
                time_add(
                    &c.contentions,
                    &c.wait_min,
                    &c.wait_max,
                    &c.wait_total,
                    t.saturating_sub(since),
                );
            }
        }
    });
}

// ===== into the recording =====

/// How often the statistics are written into the process's recording.
const RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// With `LOCKDEP_RECORD` on, starts (once) the thread that writes the statistics into the
/// recording every [`RECORD_EVERY`] when they changed, and registers the write at exit.
fn start_recording() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The recorder is made with the process-wide engine.
        let _ = super::global();
        if crate::record::process_recorder().is_none() {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            extern "C" fn at_exit() {
                write_recording();
            }
            // SAFETY: `at_exit` is a plain function that stays valid for the life of the
            // process; `atexit` has no other precondition.
            unsafe { libc::atexit(at_exit) };
        }
        let _ = std::thread::Builder::new()
            .name("lockdep-stat".into())
            .spawn(|| loop {
                std::thread::sleep(RECORD_EVERY);
                write_recording();
            });
    });
}

/// What was written into the recording last.
static LAST: Mutex<Option<LockStats>> = Mutex::new(None);

/// Writes the statistics into the recording unless they are what was written last.
fn write_recording() {
    let Some(rec) = crate::record::process_recorder() else {
        return;
    };
    let now = snapshot();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.as_ref() != Some(&now) && !(last.is_none() && now.classes.is_empty()) {
        rec.record_lock_stats(&now);
        *last = Some(now);
    }
}

// ===== fork =====

/// The statistics' locks, held by `fork`'s prepare handler (`fork.rs`) in their nesting order:
/// the last written record (held while a snapshot is taken), then the registry.
pub(super) struct ForkLocks {
    _last: MutexGuard<'static, Option<LockStats>>,
    registry: MutexGuard<'static, Registry>,
}

pub(super) fn fork_prepare() -> ForkLocks {
    let last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    ForkLocks {
        _last: last,
        registry: registry(),
    }
}

/// In the child: the other threads are gone, and so are their counters (the parent keeps
/// them); only the forking thread's are left, and the locks are released.
pub(super) fn fork_child(mut locks: ForkLocks) {
    let mine = LOCAL.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    // SAFETY: the child has one thread, and this runs outside every hook, so this thread's
    // `Local` (if any) is not in use; it is only read.
    let mine = unsafe { mine.as_ref() }.map(|l| l.shared.clone());
    locks
        .registry
        .threads
        .retain(|s| mine.as_ref().is_some_and(|m| Arc::ptr_eq(s, m)));
}

// ===== the views =====

/// Zeroes every counter (the kernel's `echo 0 > /proc/lock_stat`). Holds still open are still
/// timed when released.
pub fn reset() {
    let mut reg = registry();
    let epoch = EPOCH.fetch_add(1, Ordering::AcqRel) + 1;
    reg.retired = Accum {
        classes: None,
        epoch,
    };
}

/// The statistics counted so far (since the last [`reset`]), merged over every thread, live and
/// exited, with the classes' names from the process-wide validator, sorted by contentions.
pub fn snapshot() -> LockStats {
    let epoch = EPOCH.load(Ordering::Acquire);
    let mut acc = Accum {
        classes: None,
        epoch,
    };
    {
        let reg = registry();
        if reg.retired.epoch == epoch {
            acc.merge(&reg.retired);
        }
        for s in &reg.threads {
            if s.epoch.load(Ordering::Acquire) == epoch {
                acc.add_thread(s);
            }
        }
    }
    let to_ns = ToNs::now();
    let engine = super::global();
    let mut out = LockStats::default();
    for (id, c) in acc.classes.unwrap_or_default() {
        let Some(info) = engine.class_info(ClassId(id)) else {
            continue;
        };
        let kind = |k: &KindStats| KindStats {
            wait: to_ns.time(&k.wait),
            hold: to_ns.time(&k.hold),
            ..*k
        };
        let points = |m: &FxHashMap<SiteRef, u64>| {
            let mut v: Vec<Point> = Vec::new();
            let more: Vec<Point> = m
                .iter()
                .map(|(s, &count)| Point {
                    site: s.get().to_string(),
                    count,
                })
                .collect();
            crate::proc::lock_stat::merge_points(&mut v, &more);
            v
        };
        out.classes.push(ClassStats {
            name: info.name.to_string(),
            stable_id: info.stable_id,
            write: kind(&c.kinds[0]),
            read: kind(&c.kinds[1]),
            contention_points: points(&c.points[PointKind::Contention as usize]),
            contending_points: points(&c.points[PointKind::Contending as usize]),
        });
    }
    out.sort_by(SortKey::Contentions);
    out
}
