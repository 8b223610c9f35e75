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
//! Every instrumented blocking lock — [`Mutex`](crate::Mutex), [`RwLock`](crate::RwLock),
//! [`Condvar`](crate::Condvar)'s re-acquisitions, the `lock_api` wrappers, and the std mirror
//! `lockdep::std::sync` — takes its raw lock through
//! [`LockMap::acquire_lock`](crate::LockMap::acquire_lock) (the kernel's `LOCK_CONTENDED`), which
//! with statistics on tries the lock first and calls the
//! [`contended`](crate::LockMap::contended) and [`acquired`](crate::LockMap::acquired) hooks; a
//! lock type of your own calls the same hooks. A lock that only calls `acquire` and `release`
//! gets acquisitions and hold times, never contentions. Holds made with statistics off, and
//! holds released by another thread than the one that took them (`send_guard`), are not timed.
//! Statistics, like validation, are gathered only while the validator is on.
//!
//! Async locks: `lockdep::tokio`'s `Mutex` and `RwLock` (the `tokio` feature) count every
//! acquisition, inside a tracked task or not; a wait that has to yield (the lock is busy and
//! the task suspends) is a contention, timed from the failed try to the moment the lock is
//! obtained, and its contention point is the lock call. A guard dropped on another worker
//! thread than the one that took it counts its acquisition without a hold time (the hold's start
//! is kept by the thread that took it, so that the guard stays two words). An async lock of your
//! own calls
//! [`contended`](crate::LockMap::contended) before it waits and
//! [`acquire_async`](crate::LockMap::acquire_async) once it has the lock (counted in a tracked
//! task, when both run on one thread).

//! ## Cost
//!
//! Off, nothing: the hooks' fast path runs only when the one word it already reads says
//! statistics are off, and leaves the lock call exactly as it was. On, the counters are per
//! thread (threads with private locks share no cache line; a snapshot merges them), a hold's
//! start time is kept in a per-thread stack beside the held-lock stack (so the held-lock entry
//! stays the size it is), and the clock is the CPU's invariant time-stamp counter where there is
//! one (`Instant` elsewhere). The one shared table written is that of the last holder of each
//! lock instance, and only when the holder changes. Each statistics hook's common case is a
//! leaf that calls nothing; an uncontended lock and unlock costs about 1.6× what it costs with
//! statistics off. `docs/PERFORMANCE.md` has the measurements.

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
    now_slow()
}

/// The time-stamp counter, if it is the clock: for the hooks' fast paths, which leave the other
/// clock to their slow paths (so that they call nothing).
#[inline(always)]
fn tsc_now() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    if USE_TSC.load(Ordering::Relaxed) {
        // SAFETY: as in `raw_ticks`.
        return Some(unsafe { std::arch::x86_64::_rdtsc() });
    }
    None
}

/// [`now`] without a time-stamp counter: out of line, so that the hooks' fast paths stay
/// leaves.
#[inline(never)]
fn now_slow() -> u64 {
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
/// store, no read-modify-write), read by [`snapshot`]. Every counted hold is an acquisition:
/// the acquisitions are `hold_nr` and `untimed` (those of async locks whose guard was dropped
/// on another thread than the one that took it, whose hold is not timed). The minimums are kept inverted (`!min`): a zeroed cell's minimum is
/// then the longest duration, and the first one counted replaces it without a test of the count.
#[derive(Default)]
struct Cells {
    con_bounces: AtomicU64,
    contentions: AtomicU64,
    wait_min_inv: AtomicU64,
    wait_max: AtomicU64,
    wait_total: AtomicU64,
    acq_bounces: AtomicU64,
    hold_nr: AtomicU64,
    hold_min_inv: AtomicU64,
    hold_max: AtomicU64,
    hold_total: AtomicU64,
    untimed: AtomicU64,
}

#[inline(always)]
fn bump(c: &AtomicU64, by: u64) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Counts one duration `d` into a count, an inverted minimum, a maximum and a total.
#[inline(always)]
fn time_add(nr: &AtomicU64, min_inv: &AtomicU64, max: &AtomicU64, total: &AtomicU64, d: u64) {
    bump(nr, 1);
    if !d > min_inv.load(Ordering::Relaxed) {
        min_inv.store(!d, Ordering::Relaxed);
    }
    if d > max.load(Ordering::Relaxed) {
        max.store(d, Ordering::Relaxed);
    }
    bump(total, d);
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
        let hold = LockTime {
            nr: l(&self.hold_nr),
            min_ns: !l(&self.hold_min_inv),
            max_ns: l(&self.hold_max),
            total_ns: l(&self.hold_total),
        };
        KindStats {
            con_bounces: l(&self.con_bounces),
            wait: time(LockTime {
                nr: l(&self.contentions),
                min_ns: !l(&self.wait_min_inv),
                max_ns: l(&self.wait_max),
                total_ns: l(&self.wait_total),
            }),
            acq_bounces: l(&self.acq_bounces),
            acquisitions: hold.nr + l(&self.untimed),
            hold: time(hold),
        }
    }

    fn clear(&self) {
        for c in [
            &self.con_bounces,
            &self.contentions,
            &self.wait_min_inv,
            &self.wait_max,
            &self.wait_total,
            &self.acq_bounces,
            &self.hold_nr,
            &self.hold_min_inv,
            &self.hold_max,
            &self.hold_total,
            &self.untimed,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    fn add_hold(&self, d: u64) {
        time_add(
            &self.hold_nr,
            &self.hold_min_inv,
            &self.hold_max,
            &self.hold_total,
            d,
        );
    }

    #[inline(always)]
    fn add_wait(&self, d: u64) {
        time_add(
            &self.contentions,
            &self.wait_min_inv,
            &self.wait_max,
            &self.wait_total,
            d,
        );
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
    site: SiteRef,
    /// When the lock was obtained (ticks).
    since: u64,
    class: u32,
    kind: u8,
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
    /// `shared.id`.
    id: u32,
    /// `shared.epoch`, as this thread last set it.
    epoch: u64,
    /// `shared.classes` by class id: the vector's elements never move.
    index: Vec<*const [Cells; 2]>,
    /// Open holds, most recent last (a lock is released from the top almost always).
    holds: Vec<Hold>,
    /// The lock this thread is waiting for (0: none), since `wait_since`. `wait_early`: the
    /// wait began before its hold did (a lock of one's own that calls
    /// [`contended`](crate::LockMap::contended) before `acquire_async`), so it is counted when
    /// the lock is obtained.
    wait_instance: usize,
    wait_since: u64,
    wait_early: bool,
    /// A hook that calls out (allocates, takes a lock) is using this `Local` (see [`local`]).
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
            id: shared.id,
            shared,
            epoch,
            index: Vec::new(),
            holds: Vec::with_capacity(8),
            wait_instance: 0,
            wait_since: 0,
            wait_early: false,
            busy: false,
        }
    }

    /// The counters of `class` (not zeroed by a reset yet: see [`Local::fresh`]).
    #[inline(always)]
    fn cells(&mut self, class: u32, kind: u8) -> *const Cells {
        let p = match self.index.get(class as usize) {
            Some(p) => *p,
            None => self.grow(class),
        };
        // SAFETY: `index` points into `shared.classes`, whose elements never move and live as
        // long as `shared`, which `self` owns.
        unsafe { &(*p)[usize::from(kind)] }
    }

    /// Applies a reset made since this thread last counted: its counters are zeroed before it
    /// counts again.
    #[inline(always)]
    fn fresh(&mut self) {
        let epoch = EPOCH.load(Ordering::Acquire);
        if self.epoch != epoch {
            self.renew(epoch);
        }
    }

    /// Makes the counters of classes up to `class` (allocates: `busy` meanwhile).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, class: u32) -> *const [Cells; 2] {
        self.busy = true;
        let s = &self.shared;
        while s.classes.count() <= class as usize {
            s.classes.push(Default::default());
        }
        while self.index.len() <= class as usize {
            self.index.push(&s.classes[self.index.len()]);
        }
        self.busy = false;
        self.index[class as usize]
    }

    /// Room for one more hold (allocates: `busy` meanwhile), or the oldest forgotten.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self) {
        if self.holds.len() >= MAX_HOLDS {
            self.holds.remove(0);
        } else {
            self.busy = true;
            self.holds.reserve(self.holds.len().max(8));
            self.busy = false;
        }
    }

    /// A text site, interned (allocates: `busy` meanwhile).
    #[cold]
    #[inline(never)]
    fn intern(&mut self, site: Site) -> SiteRef {
        self.busy = true;
        let s = SiteRef::new(site);
        self.busy = false;
        s
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

    /// A contention on `instance` by a hold of `class`, `kind` taken at `site`: the bounce (if
    /// another thread had the lock last), the contention point, and the contending point (where
    /// the last holder took it).
    #[cold]
    #[inline(never)]
    fn contention(&mut self, instance: usize, class: u32, kind: u8, site: SiteRef) {
        self.fresh();
        let slot = holder(instance);
        let known = slot.instance.load(Ordering::Relaxed) == instance;
        // SAFETY: the slot's site word was stored from `SiteRef::word`.
        let holder_site =
            known.then(|| unsafe { SiteRef::from_word(slot.site.load(Ordering::Relaxed)) });
        let c = self.cells(class, kind);
        if known && slot.thread.load(Ordering::Relaxed) != self.id {
            // SAFETY: as for `Hold::cells`.
            bump(unsafe { &(*c).con_bounces }, 1);
        }
        self.busy = true;
        {
            let mut points = self.shared.points.lock().unwrap_or_else(|e| e.into_inner());
            *points
                .entry((class, PointKind::Contention, site))
                .or_default() += 1;
            if let Some(hs) = holder_site {
                *points
                    .entry((class, PointKind::Contending, hs))
                    .or_default() += 1;
            }
        }
        self.busy = false;
    }

    /// The wait for the hold `i` is over: counted, and the hold starts now.
    #[cold]
    #[inline(never)]
    fn wait_ends(&mut self, i: usize) {
        let (instance, class, kind, site) = {
            let h = &self.holds[i];
            (h.instance, h.class, h.kind, h.site)
        };
        if self.wait_early {
            self.contention(instance, class, kind, site);
        }
        self.wait_instance = 0;
        self.fresh();
        let t = now();
        let h = &mut self.holds[i];
        h.since = t;
        h.cells().add_wait(t.saturating_sub(self.wait_since));
    }

    /// A release of `instance` that is not the most recent hold (or of one not held here).
    #[cold]
    #[inline(never)]
    fn hold_ends_below(&mut self, instance: usize) {
        if let Some(i) = self.holds.iter().rposition(|h| h.instance == instance) {
            let h = self.holds.remove(i);
            self.count_hold(&h, now().saturating_sub(h.since));
        }
    }

    #[inline(always)]
    fn count_hold(&mut self, h: &Hold, d: u64) {
        if self.wait_instance == h.instance {
            self.wait_instance = 0;
        }
        // A reset since the hold began applies first, so the hold counts after it.
        self.fresh();
        h.cells().add_hold(d);
    }
}

/// Notes `me` as the last holder of `instance`, taken at `site`, counting an acquisition bounce
/// into `cells` if another thread had it last. The slot is written only when that changes.
#[inline(always)]
fn note_holder(me: u32, instance: usize, site: SiteRef, cells: &Cells) {
    let slot = holder(instance);
    let same_instance = slot.instance.load(Ordering::Relaxed) == instance;
    let last = slot.thread.load(Ordering::Relaxed);
    if same_instance && last != me {
        bump(&cells.acq_bounces, 1);
    }
    if !same_instance || last != me || slot.site.load(Ordering::Relaxed) != site.word() {
        slot.instance.store(instance, Ordering::Relaxed);
        slot.site.store(site.word(), Ordering::Relaxed);
        slot.thread.store(me, Ordering::Relaxed);
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

/// This thread's statistics, unless they do not exist (yet, or any more) or a hook further up
/// this thread's stack is using them (`busy`: a hook called from inside one, e.g. by an
/// instrumented allocator).
///
/// # Safety
/// The reference is unique only while nothing that could run a hook on this thread is called
/// (an allocation, a lock, user code): the caller may call out only with `busy` set (as the
/// `Local` methods that allocate do), and must give the reference up before it returns.
/// (`'static` stands for "until this thread's `OWNER` is destroyed", which no hook outlives.)
#[inline(always)]
unsafe fn local() -> Option<&'static mut Local> {
    let p = LOCAL.with(Cell::get);
    // SAFETY: `LOCAL` is non-null only while `OWNER` owns the box it points to, on this thread;
    // `busy` is clear, so no hook up the stack holds a reference it could use while this one
    // lives (the caller's promise covers the rest).
    let l = unsafe { p.as_mut() }?;
    (!l.busy).then_some(l)
}

/// [`local`], making this thread's statistics at its first hook.
///
/// # Safety
/// As for [`local`].
#[inline(always)]
unsafe fn local_or_make() -> Option<&'static mut Local> {
    // SAFETY: passed on to the caller.
    match unsafe { local() } {
        Some(l) => Some(l),
        // SAFETY: passed on to the caller.
        None => unsafe { make_local() },
    }
}

/// The first statistics hook on this thread: makes its `Local` (nothing if the thread is
/// exiting, or if this hook runs inside the making).
///
/// # Safety
/// As for [`local`].
#[cold]
#[inline(never)]
unsafe fn make_local() -> Option<&'static mut Local> {
    if LOCAL.with(Cell::get).is_null() {
        let _ = OWNER.try_with(|o| {
            let Ok(mut o) = o.try_borrow_mut() else {
                return;
            };
            if o.is_none() {
                let mut l = Box::new(Local::new());
                LOCAL.with(|p| p.set(&mut *l));
                *o = Some(l);
            }
        });
    }
    // SAFETY: passed on to the caller.
    unsafe { local() }
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

#[inline(always)]
fn holder(instance: usize) -> &'static Holder {
    let h = (instance >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 12);
    &HOLDER[h % HOLDERS]
}

// ===== the hooks =====

/// A hold begins: `instance` was pushed as `class`, `read`. Returns `true` (the caller reports
/// how it takes the lock) unless this thread's statistics are busy.
///
/// The fast path is a leaf (it calls nothing, so it saves no registers): this thread's
/// statistics exist, the class has counters, the site needs no interning and there is room
/// for the hold; anything else is [`hold_begins_slow`].
#[inline]
pub(crate) fn hold_begins(instance: usize, class: ClassId, read: ReadKind, site: Site) -> bool {
    // SAFETY: nothing on this path calls out.
    if let Some(l) = unsafe { local() } {
        if let (Some(site), Some(&cells)) = (SiteRef::direct(site), l.index.get(class.0 as usize)) {
            let len = l.holds.len();
            if len < l.holds.capacity() {
                if let Some(since) = tsc_now() {
                    let kind = u8::from(read.is_read());
                    // SAFETY: `index` points into `shared.classes`, whose elements never move
                    // and live as long as `shared`, which `l` owns.
                    let cells: *const Cells = unsafe { &(*cells)[usize::from(kind)] };
                    let hold = Hold {
                        instance,
                        cells,
                        site,
                        since,
                        class: class.0,
                        kind,
                    };
                    // SAFETY: `len` is below the capacity, so the element there is allocated
                    // (and unused); it is written before the length covers it.
                    unsafe {
                        l.holds.as_mut_ptr().add(len).write(hold);
                        l.holds.set_len(len + 1);
                    }
                    super::counting_begins();
                    return true;
                }
            }
        }
    }
    hold_begins_slow(instance, class, read, site)
}

/// [`hold_begins`] in every other case: makes this thread's statistics, the class's counters,
/// the interned site, or room.
#[cold]
#[inline(never)]
fn hold_begins_slow(instance: usize, class: ClassId, read: ReadKind, site: Site) -> bool {
    // SAFETY: only `Local`'s methods that set `busy` call out.
    let Some(l) = (unsafe { local_or_make() }) else {
        return false;
    };
    let site = match SiteRef::direct(site) {
        Some(s) => s,
        None => l.intern(site),
    };
    let kind = u8::from(read.is_read());
    let cells = l.cells(class.0, kind);
    if l.holds.len() == l.holds.capacity() {
        l.make_room();
    }
    l.holds.push(Hold {
        instance,
        cells,
        site,
        since: now(),
        class: class.0,
        kind,
    });
    super::counting_begins();
    true
}

/// A hold ends: counts the acquisition and its hold time. The fast path (a leaf) is the
/// release of the most recent hold, with no wait for it open and no reset to apply.
#[inline]
pub(crate) fn hold_ends(instance: usize) {
    // SAFETY: nothing on this path calls out.
    if let Some(l) = unsafe { local() } {
        if let Some(top) = l.holds.last() {
            if top.instance == instance
                && l.wait_instance != instance
                && l.epoch == EPOCH.load(Ordering::Acquire)
            {
                let Some(t) = tsc_now() else {
                    return hold_ends_slow(instance);
                };
                top.cells().add_hold(t.saturating_sub(top.since));
                // SAFETY: `holds` is not empty (`top`), and `Hold` has no destructor.
                unsafe { l.holds.set_len(l.holds.len() - 1) };
                return;
            }
        }
    }
    hold_ends_slow(instance);
}

#[cold]
#[inline(never)]
fn hold_ends_slow(instance: usize) {
    // SAFETY: only `Local`'s methods that set `busy` call out.
    let Some(l) = (unsafe { local() }) else {
        return;
    };
    match l.holds.last() {
        Some(top) if top.instance == instance => {
            let d = now().saturating_sub(top.since);
            let h = l.holds.pop().expect("not empty");
            l.count_hold(&h, d);
        }
        _ => l.hold_ends_below(instance),
    }
}

/// The hold of an annotation (`might_lock`) that is not a real acquisition: forgotten.
pub(crate) fn forget(instance: usize) {
    // SAFETY: nothing here calls out.
    if let Some(l) = unsafe { local() } {
        if let Some(i) = l.holds.iter().rposition(|h| h.instance == instance) {
            l.holds.remove(i);
        }
    }
}

/// The first try to take `instance` failed: the contention is counted and the wait timed. A
/// lock not held here yet (an async lock of one's own, which calls `contended` before
/// `acquire_async`) is counted when its hold begins and it is [`acquired`].
pub(crate) fn contended(instance: usize) {
    // SAFETY: only `Local`'s methods that set `busy` call out.
    let Some(l) = (unsafe { local_or_make() }) else {
        return;
    };
    match l.holds.iter().rev().find(|h| h.instance == instance) {
        Some(h) => {
            let (class, kind, site) = (h.class, h.kind, h.site);
            l.contention(instance, class, kind, site);
            l.wait_early = false;
        }
        None => l.wait_early = true,
    }
    l.wait_instance = instance;
    l.wait_since = now();
}

/// The lock was obtained: the acquisition bounce and the last holder, and the end of a wait.
/// The fast path (a leaf) is the most recent hold's, with no wait open for it, taken by the
/// thread that had the lock last at the same site: nothing to count or write.
#[inline]
pub(crate) fn acquired(instance: usize) {
    // SAFETY: nothing on this path calls out.
    if let Some(l) = unsafe { local() } {
        if let Some(top) = l.holds.last() {
            let slot = holder(instance);
            if top.instance == instance
                && l.wait_instance != instance
                && slot.instance.load(Ordering::Relaxed) == instance
                && slot.thread.load(Ordering::Relaxed) == l.id
                && slot.site.load(Ordering::Relaxed) == top.site.word()
            {
                return;
            }
        }
    }
    acquired_slow(instance);
}

#[cold]
#[inline(never)]
fn acquired_slow(instance: usize) {
    // SAFETY: only `Local`'s methods that set `busy` call out.
    let Some(l) = (unsafe { local() }) else {
        return;
    };
    let i = match l.holds.last() {
        Some(top) if top.instance == instance => l.holds.len() - 1,
        _ => match l.holds.iter().rposition(|h| h.instance == instance) {
            Some(i) => i,
            None => return,
        },
    };
    l.fresh();
    let h = &l.holds[i];
    note_holder(l.id, instance, h.site, h.cells());
    if l.wait_instance == instance {
        l.wait_ends(i);
    }
}

/// The tag of an async lock guard's hold in a thread's record of holds: its instance with the
/// low bit set (a lock map is at least 2-aligned), so that only [`async_hold_ends`] ends it —
/// a release of the map (the validator's, or the one that ends a validation before a wait) never
/// matches it.
const GUARD_HOLD: usize = 1;
const _: () = assert!(std::mem::align_of::<crate::LockMap>() >= 2);

/// Now, for the start of a wait: the stamp to pass to [`async_hold_begins`].
#[inline]
pub(crate) fn wait_begins() -> u64 {
    now()
}

/// An async lock `instance` of `class` was obtained by the current thread, for an acquisition
/// of kind `read` at `site`, after a wait that began at `waited_since` (a [`wait_begins`]
/// stamp) if it had to wait: counts the contention and its wait, the acquisition bounce, notes
/// the last holder, and begins the hold on this thread. `false` if this thread's statistics are
/// busy (nothing was counted; the guard must not call [`async_hold_ends`]).
pub(crate) fn async_hold_begins(
    instance: usize,
    class: ClassId,
    read: ReadKind,
    site: Site,
    waited_since: Option<u64>,
) -> bool {
    // SAFETY: only `Local`'s methods that set `busy` call out.
    let Some(l) = (unsafe { local_or_make() }) else {
        return false;
    };
    // A reset applies before anything is counted.
    l.fresh();
    let site = match SiteRef::direct(site) {
        Some(s) => s,
        None => l.intern(site),
    };
    let kind = u8::from(read.is_read());
    if waited_since.is_some() {
        l.contention(instance, class.0, kind, site);
    }
    let cells = l.cells(class.0, kind);
    if l.holds.len() == l.holds.capacity() {
        l.make_room();
    }
    let since = now();
    // SAFETY: as for `Hold::cells`.
    let c = unsafe { &*cells };
    if let Some(w) = waited_since {
        c.add_wait(since.saturating_sub(w));
    }
    note_holder(l.id, instance, site, c);
    l.holds.push(Hold {
        instance: instance | GUARD_HOLD,
        cells,
        site,
        since,
        class: class.0,
        kind,
    });
    true
}

/// The guard of an async lock's hold that [`async_hold_begins`] counted is dropped on the
/// current thread: the hold ends here if it began here; otherwise (the task moved to another
/// worker thread since) the acquisition is counted without a hold time, into this thread's
/// counters of `class` and `read` (the hold's record is left on the thread that took it, until
/// its oldest records are forgotten).
pub(crate) fn async_hold_ends(instance: usize, class: ClassId, read: bool) {
    // SAFETY: only `Local`'s methods that set `busy` call out.
    let Some(l) = (unsafe { local_or_make() }) else {
        return;
    };
    let tagged = instance | GUARD_HOLD;
    if let Some(i) = l.holds.iter().rposition(|h| h.instance == tagged) {
        let h = l.holds.remove(i);
        l.count_hold(&h, now().saturating_sub(h.since));
        return;
    }
    l.fresh();
    let cells = l.cells(class.0, u8::from(read));
    // SAFETY: as for `Hold::cells`.
    bump(unsafe { &(*cells).untimed }, 1);
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
