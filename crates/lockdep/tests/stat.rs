//! Lock statistics (`lockdep::stat`): contentions, waits, holds, bounces and points, counted by
//! the instrumented primitives and by a lock of one's own through the `LockMap` hooks.
//!
//! The statistics are process-wide and the switch is too, so the tests here run one at a time
//! (`SERIAL`), each on locks of its own classes.

#![cfg(not(feature = "disabled"))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lock_api::RawMutex as _;
use lockdep::stat::{self, ClassStats};
use lockdep::{Acquire, Condvar, LockMap, Mutex, RwLock, Site};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    stat::enable();
    g
}

fn class_of(name: &str) -> ClassStats {
    stat::snapshot()
        .class(name)
        .cloned()
        .unwrap_or_else(|| panic!("no statistics for {name}"))
}

#[test]
fn two_threads_contend_on_one_mutex_and_not_on_another() {
    let _s = serial();
    const ROUNDS: u64 = 2_000;
    let started = Instant::now();
    let contended = Arc::new(Mutex::new(0u64));
    let quiet = Mutex::new(0u64);
    let (cname, qname) = (contended.class_name(), quiet.class_name());
    let barrier = Arc::new(Barrier::new(2));
    let holding = Arc::new(AtomicBool::new(false));

    // The first round of the other thread is sure to contend: it starts while this thread
    // holds the lock and sleeps.
    let other = {
        let (m, barrier, holding) = (contended.clone(), barrier.clone(), holding.clone());
        std::thread::spawn(move || {
            barrier.wait();
            while !holding.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mut line = 0;
            for _ in 0..ROUNDS / 2 {
                line = line!() + 1;
                let mut g = m.lock();
                *g += 1;
            }
            line
        })
    };
    barrier.wait();
    {
        let mut g = contended.lock();
        holding.store(true, Ordering::Release);
        // Held until the other thread waits (its contention point is counted before it
        // waits), however loaded the machine, then a while longer.
        while !stat::snapshot()
            .class(&cname)
            .is_some_and(|c| !c.contention_points.is_empty())
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        *g += 1;
    }
    for _ in 1..ROUNDS / 2 {
        *contended.lock() += 1;
    }
    let line = other.join().unwrap();
    for _ in 0..ROUNDS {
        *quiet.lock() += 1;
    }
    let wall = started.elapsed();
    assert_eq!(*contended.lock(), ROUNDS);
    // That last lock is an acquisition too.
    let c = class_of(&cname);
    let q = class_of(&qname);
    assert!(c.contentions() > 0, "{c:?}");
    assert_eq!(q.contentions(), 0, "{q:?}");
    assert_eq!(c.write.acquisitions, ROUNDS + 1);
    assert_eq!(q.write.acquisitions, ROUNDS);
    assert_eq!(c.read.acquisitions + q.read.acquisitions, 0);
    assert_eq!(c.write.hold.nr, ROUNDS + 1);
    // The sure wait lasted about as long as the sleep; all of them at most the test's time.
    assert!(
        c.write.wait.total_ns <= wall.as_nanos() as u64,
        "{c:?} {wall:?}"
    );
    assert!(c.write.wait.max_ns >= 5_000_000, "{c:?}");
    assert!(c.write.wait.min_ns <= c.write.wait.max_ns);
    assert!(
        c.write.hold.max_ns >= 15_000_000,
        "the sleeping hold: {c:?}"
    );
    assert!(q.write.hold.total_ns <= wall.as_nanos() as u64);
    // The contention point of the other thread's waits is its own lock line; the contending
    // point of its first wait is this thread's first lock call, in this file.
    let here = format!("{}:{}:", file!(), line);
    assert!(
        c.contention_points
            .iter()
            .any(|p| p.site.starts_with(&here)),
        "{here} not in {:?}",
        c.contention_points
    );
    assert!(c.contending_points.iter().all(|p| p.site.contains(file!())));
    assert!(c.write.con_bounces > 0 && c.write.acq_bounces > 0, "{c:?}");
    assert_eq!(q.write.acq_bounces, 0);
    // The kernel's table: header, columns, the contended class before the quiet one.
    let text = stat::snapshot().to_string();
    assert!(text.starts_with("lock_stat version 0.4\n"));
    for col in [
        "class name",
        "con-bounces",
        "waittime-total",
        "holdtime-avg",
    ] {
        assert!(text.contains(col));
    }
    let (ci, qi) = (
        text.find(&format!("{cname}:")).unwrap(),
        text.find(&format!("{qname}:")).unwrap(),
    );
    assert!(ci < qi);
}

/// Locks made anew at one address, of one key, nested under another (lock churn, which the
/// fast path takes as a repeat of the entry just popped, without the new map's class cache):
/// every hold is counted, under the right class, and nothing is reported.
#[test]
fn lock_churn_is_counted_and_not_reported() {
    static OUTER: lockdep::LockClassKey = lockdep::LockClassKey::new("stat.churn.outer");
    static INNER: lockdep::LockClassKey = lockdep::LockClassKey::new("stat.churn.inner");
    let _s = serial();
    let reports = lockdep::ReportCollector::new();
    let outer = Mutex::with_key((), &OUTER);
    let mut place = Box::new(std::mem::MaybeUninit::<Mutex<()>>::uninit());
    for _ in 0..50 {
        let inner = place.write(Mutex::with_key((), &INNER));
        {
            let _o = outer.lock();
            let _i = inner.lock();
        }
        // SAFETY: `place` holds an initialised mutex, not borrowed any more.
        unsafe { place.assume_init_drop() };
    }
    let mine = reports.matching(|r| r.involves("stat.churn.inner"));
    assert!(mine.is_empty(), "{mine:?}");
    assert_eq!(class_of("stat.churn.inner").write.acquisitions, 50);
    assert_eq!(class_of("stat.churn.outer").write.acquisitions, 50);
}

#[test]
fn reads_and_writes_are_counted_apart() {
    let _s = serial();
    let l = RwLock::new(0);
    for _ in 0..3 {
        let _r = l.read();
    }
    for _ in 0..2 {
        let _r = l.read_recursive();
    }
    *l.write() += 1;
    {
        let _u = l.upgradable_read();
    }
    let name = {
        // The class name is the construction site's.
        let map = l.lock_map();
        let s = stat::snapshot();
        let c = s
            .classes
            .iter()
            .find(|c| c.read.acquisitions == 5 && c.write.acquisitions == 2)
            .cloned();
        let _ = map;
        c.expect("the rwlock's class").name
    };
    let text = stat::snapshot().to_string();
    assert!(text.contains(&format!("{name}-W:")), "{text}");
    assert!(text.contains(&format!("{name}-R:")));
}

#[test]
fn a_condvar_wait_ends_one_hold_and_begins_another() {
    let _s = serial();
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let name = pair.0.class_name();
    let p = pair.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        *p.0.lock() = true;
        p.1.notify_one();
    });
    {
        let mut ready = pair.0.lock();
        while !*ready {
            pair.1.wait(&mut ready);
        }
    }
    t.join().unwrap();
    let c = class_of(&name);
    // The waiter's hold before the wait, each hold after a wake, the notifier's hold.
    assert!(c.write.acquisitions >= 3, "{c:?}");
    // No hold spans the wait.
    assert!(c.write.hold.max_ns < 25_000_000, "{c:?}");
}

#[test]
fn trylocks_count_as_acquisitions_and_never_as_contentions() {
    let _s = serial();
    let m = Mutex::new(());
    let name = m.class_name();
    let g = m.try_lock().unwrap();
    assert!(m.try_lock().is_none());
    drop(g);
    let c = class_of(&name);
    assert_eq!((c.write.acquisitions, c.contentions()), (1, 0));
}

/// A lock of one's own: a raw lock plus a map, with the hooks a user calls.
struct MyLock {
    raw: parking_lot::RawMutex,
    map: LockMap,
}

impl MyLock {
    #[track_caller]
    fn lock(&self) {
        self.map.acquire_lock(
            Acquire::exclusive(),
            Site::caller(),
            || self.raw.try_lock(),
            || self.raw.lock(),
        );
    }
    fn unlock(&self) {
        self.map.release();
        // SAFETY: locked by `lock`.
        unsafe { self.raw.unlock() }
    }
}

#[test]
fn a_users_own_lock_reports_through_the_map_hooks() {
    let _s = serial();
    static KEY: lockdep::LockClassKey = lockdep::LockClassKey::new("stat_test_my_lock");
    let l = Arc::new(MyLock {
        raw: parking_lot::RawMutex::INIT,
        map: LockMap::named(&KEY),
    });
    l.lock();
    let l2 = l.clone();
    let t = std::thread::spawn(move || {
        l2.lock();
        l2.unlock();
    });
    std::thread::sleep(Duration::from_millis(20));
    l.unlock();
    t.join().unwrap();

    // The hooks by hand: a wait that an async lock would make.
    let m = LockMap::named(&KEY);
    m.acquire(Acquire::exclusive());
    m.contended();
    std::thread::sleep(Duration::from_millis(1));
    m.acquired();
    m.release();

    let c = class_of("stat_test_my_lock");
    assert_eq!(c.write.acquisitions, 3);
    assert_eq!(c.contentions(), 2, "{c:?}");
    assert!(c.write.wait.max_ns >= 10_000_000, "{c:?}");
    // might_lock is an annotation, not an acquisition.
    m.might_lock();
    assert_eq!(class_of("stat_test_my_lock").write.acquisitions, 3);
}

#[test]
fn off_counts_nothing_and_reset_zeroes() {
    let _s = serial();
    let m = Mutex::new(());
    let name = m.class_name();
    drop(m.lock());
    assert_eq!(class_of(&name).write.acquisitions, 1);
    stat::disable();
    assert!(!stat::is_enabled());
    drop(m.lock());
    stat::enable();
    assert_eq!(class_of(&name).write.acquisitions, 1);
    // Counts of an exited thread are kept.
    let m = Arc::new(m);
    let m2 = m.clone();
    std::thread::spawn(move || drop(m2.lock())).join().unwrap();
    assert_eq!(class_of(&name).write.acquisitions, 2);
    stat::reset();
    assert!(stat::snapshot().class(&name).is_none());
    drop(m.lock());
    assert_eq!(class_of(&name).write.acquisitions, 1);
    // A hold open across a reset counts after it.
    let g = m.lock();
    stat::reset();
    drop(g);
    assert_eq!(class_of(&name).write.acquisitions, 1);
}

#[test]
fn the_table_prints_both_kinds_and_the_points_of_a_contended_class() {
    let _s = serial();
    let m = Arc::new(Mutex::new(()));
    let name = m.class_name();
    let g = m.lock();
    let m2 = m.clone();
    let t = std::thread::spawn(move || drop(m2.lock()));
    std::thread::sleep(Duration::from_millis(20));
    drop(g);
    t.join().unwrap();
    let text = stat::snapshot().to_string();
    let at = text.find(&format!("{name}:")).expect("the class line");
    let block: Vec<&str> = text[at..].lines().take(5).collect();
    assert!(
        block[1]
            .trim_end()
            .ends_with(&"-".repeat(name.chars().count())),
        "{text}"
    );
    assert!(block[2].contains("[<contention>]"), "{text}");
    assert!(block[2].contains(&format!("{}:", file!())), "{text}");
    assert!(block.iter().any(|l| l.contains("[<contending>]")), "{text}");
}

/// A child forked while other threads count and snapshot must not hang on the statistics'
/// locks, and counts on its own.
#[cfg(target_os = "linux")]
#[test]
fn a_child_forked_while_threads_count_and_snapshot_does_not_hang() {
    let _s = serial();
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let m = Mutex::new(0u64);
                while !stop.load(Ordering::Relaxed) {
                    *m.lock() += 1;
                    if i == 1 {
                        std::hint::black_box(stat::snapshot());
                    }
                }
            })
        })
        .collect();
    let m = Mutex::new(());
    let name = m.class_name();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(3));
        // SAFETY: the child takes an instrumented lock and a snapshot (which the atfork
        // handlers make safe: what is tested) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(m.lock());
            let ok = stat::snapshot()
                .class(&name)
                .is_some_and(|c| c.write.acquisitions >= 1);
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert!(pid > 0, "fork failed");
        let start = Instant::now();
        let status = loop {
            let mut status = 0;
            // SAFETY: waiting for our own child, with a valid status pointer.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                break Some(status);
            }
            if start.elapsed() > Duration::from_secs(30) {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match status {
            Some(s) if libc::WIFEXITED(s) && libc::WEXITSTATUS(s) == 0 => {}
            Some(s) => panic!("the child failed: status {s:#x}"),
            None => panic!("the child hung"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
}

// ===== contention on each lock type =====

/// How a test takes its lock: takes `l` (with the lock call on the line it returns), runs
/// `while_held`, releases.
type Take<L> = fn(&L, &mut dyn FnMut()) -> u32;

/// What [`contend`] counted.
struct Contended {
    contended: ClassStats,
    quiet: ClassStats,
    /// The line of the other thread's lock call (its contention point).
    line: u32,
}

/// Two threads on `contended`, `ROUNDS` acquisitions each: this thread with `mine` and another
/// with `theirs`, whose first acquisition is sure to contend (this thread holds the lock until
/// the other's contention is counted, then a while longer); then this thread alone on `quiet`,
/// `ROUNDS` acquisitions with `theirs`.
fn contend<L: Send + Sync + 'static>(
    contended: L,
    quiet: L,
    name: fn(&L) -> String,
    mine: Take<L>,
    theirs: Take<L>,
) -> Contended {
    let contended = Arc::new(contended);
    let (cname, qname) = (name(&contended), name(&quiet));
    let holding = Arc::new(AtomicBool::new(false));
    let other = {
        let (l, holding) = (contended.clone(), holding.clone());
        std::thread::spawn(move || {
            while !holding.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mut line = 0;
            for _ in 0..ROUNDS {
                line = theirs(&l, &mut || {});
            }
            line
        })
    };
    mine(&contended, &mut || {
        holding.store(true, Ordering::Release);
        // At most 10 s: a lock that counts no contention fails the checks instead of hanging.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stat::snapshot()
            .class(&cname)
            .is_some_and(|c| !c.contention_points.is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(10));
    });
    for _ in 1..ROUNDS {
        mine(&contended, &mut || {});
    }
    let line = other.join().unwrap();
    for _ in 0..ROUNDS {
        theirs(&quiet, &mut || {});
    }
    Contended {
        contended: class_of(&cname),
        quiet: class_of(&qname),
        line,
    }
}

const ROUNDS: u64 = 1_000;

impl Contended {
    /// The checks every lock type passes: contended only on the contended lock, the waits
    /// timed, the other thread's contention point at its own lock call.
    fn check(&self) {
        let (c, q) = (&self.contended, &self.quiet);
        assert!(c.contentions() > 0, "{c:?}");
        assert_eq!(q.contentions(), 0, "{q:?}");
        assert!(
            c.write.wait.max_ns + c.read.wait.max_ns >= 5_000_000,
            "{c:?}"
        );
        let here = format!("{}:{}:", file!(), self.line);
        assert!(
            c.contention_points
                .iter()
                .any(|p| p.site.starts_with(&here)),
            "{here} not in {:?}",
            c.contention_points
        );
        assert!(c.contending_points.iter().all(|p| p.site.contains(file!())));
    }
}

#[test]
fn the_std_mutex_counts_contentions_on_the_contended_lock_only() {
    let _s = serial();
    use lockdep::std::sync::Mutex;
    fn take(m: &Mutex<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let mut g = m.lock().unwrap();
        *g += 1;
        f();
        line
    }
    let r = contend(Mutex::new(0), Mutex::new(0), Mutex::class_name, take, take);
    r.check();
    assert_eq!(r.contended.write.acquisitions, 2 * ROUNDS);
    assert_eq!(r.quiet.write.acquisitions, ROUNDS);
    assert_eq!(r.contended.write.hold.nr, 2 * ROUNDS);
    assert!(
        r.contended.write.hold.max_ns >= 10_000_000,
        "{:?}",
        r.contended
    );
    assert_eq!(r.contended.read.acquisitions + r.quiet.read.acquisitions, 0);
}

#[test]
fn the_std_rwlock_counts_contended_writes() {
    let _s = serial();
    use lockdep::std::sync::RwLock;
    fn write(l: &RwLock<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let mut g = l.write().unwrap();
        *g += 1;
        f();
        line
    }
    let r = contend(
        RwLock::new(0),
        RwLock::new(0),
        RwLock::class_name,
        write,
        write,
    );
    r.check();
    assert_eq!(r.contended.write.acquisitions, 2 * ROUNDS);
    assert_eq!(r.quiet.write.acquisitions, ROUNDS);
    assert!(r.contended.write.wait.nr > 0);
    assert_eq!(r.contended.read.acquisitions, 0);
}

#[test]
fn the_std_rwlock_counts_reads_contended_by_a_writer() {
    let _s = serial();
    use lockdep::std::sync::RwLock;
    fn write(l: &RwLock<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let mut g = l.write().unwrap();
        *g += 1;
        f();
        line
    }
    fn read(l: &RwLock<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let g = l.read().unwrap();
        std::hint::black_box(*g);
        f();
        line
    }
    let r = contend(
        RwLock::new(0),
        RwLock::new(0),
        RwLock::class_name,
        write,
        read,
    );
    r.check();
    let (c, q) = (&r.contended, &r.quiet);
    assert_eq!(
        (c.write.acquisitions, c.read.acquisitions),
        (ROUNDS, ROUNDS)
    );
    assert!(c.read.wait.nr > 0, "the reads waited for the writer: {c:?}");
    assert_eq!((q.write.acquisitions, q.read.acquisitions), (0, ROUNDS));
    assert_eq!(c.read.hold.nr, ROUNDS);
}

#[test]
fn a_std_condvar_wait_ends_one_hold_and_begins_another() {
    let _s = serial();
    use lockdep::std::sync::{Condvar, Mutex};
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let name = pair.0.class_name();
    let p = pair.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        *p.0.lock().unwrap() = true;
        p.1.notify_one();
    });
    {
        let mut ready = pair.0.lock().unwrap();
        while !*ready {
            ready = pair.1.wait(ready).unwrap();
        }
    }
    t.join().unwrap();
    let c = class_of(&name);
    // The waiter's hold before the wait, each hold after a wake, the notifier's hold.
    assert!(c.write.acquisitions >= 3, "{c:?}");
    // No hold spans the wait.
    assert!(c.write.hold.max_ns < 25_000_000, "{c:?}");
}

#[test]
fn the_rwlock_counts_contended_writes_and_reads() {
    let _s = serial();
    fn write(l: &RwLock<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let mut g = l.write();
        *g += 1;
        f();
        line
    }
    fn read(l: &RwLock<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let g = l.read();
        std::hint::black_box(*g);
        f();
        line
    }
    fn read_recursive(l: &RwLock<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let g = l.read_recursive();
        std::hint::black_box(*g);
        f();
        line
    }
    fn upgradable(l: &RwLock<u64>, f: &mut dyn FnMut()) -> u32 {
        let line = line!() + 1;
        let g = l.upgradable_read();
        std::hint::black_box(*g);
        f();
        line
    }
    let r = contend(
        RwLock::new(0),
        RwLock::new(0),
        RwLock::class_name,
        write,
        write,
    );
    r.check();
    assert_eq!(r.contended.write.acquisitions, 2 * ROUNDS);
    assert_eq!(r.quiet.write.acquisitions, ROUNDS);
    // Each pair of locks made at its own line: a class of its own.
    let reads = [
        contend(
            RwLock::new(0),
            RwLock::new(0),
            RwLock::class_name,
            write,
            read,
        ),
        contend(
            RwLock::new(0),
            RwLock::new(0),
            RwLock::class_name,
            write,
            read_recursive,
        ),
    ];
    for r in reads {
        r.check();
        let (c, q) = (&r.contended, &r.quiet);
        assert_eq!(
            (c.write.acquisitions, c.read.acquisitions),
            (ROUNDS, ROUNDS)
        );
        assert!(c.read.wait.nr > 0, "the reads waited for the writer: {c:?}");
        assert_eq!((q.write.acquisitions, q.read.acquisitions), (0, ROUNDS));
    }
    let r = contend(
        RwLock::new(0),
        RwLock::new(0),
        RwLock::class_name,
        write,
        upgradable,
    );
    r.check();
    assert_eq!(r.contended.write.acquisitions, 2 * ROUNDS);
}
