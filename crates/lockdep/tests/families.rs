//! The kernel selftest's read/write, recursion and irq families, with the library's real types:
//! `RwLock::{read, read_recursive, write}` and `Mutex` for the rw families, and spinlock-like
//! lock maps driven through the `irq` context API for the irq families. Expectations are the
//! kernel's (lib/locking-selftest.c): `true` means lockdep must report.
//!
//! Every case makes its own classes, so the parallel tests never see each other's reports.

#![cfg(not(feature = "disabled"))]

use lockdep::{
    irq, Acquire, LockClassKey, LockMap, Mutex, ReportCollector, RwLock, RwLockReadGuard,
    RwLockWriteGuard, WaitType,
};

fn key(case: &str, name: &str) -> &'static LockClassKey {
    LockClassKey::new_dynamic(format!("{case}.{name}"))
}

/// Runs `body` and returns whether it produced a report about this case's classes.
fn reported(case: &str, body: impl FnOnce()) -> bool {
    let c = ReportCollector::new();
    body();
    let prefix = format!("{case}.");
    !c.matching(|r| {
        r.lock
            .iter()
            .chain(r.holding.iter())
            .chain(r.held.iter())
            .any(|l| l.class.name.starts_with(&prefix))
    })
    .is_empty()
}

// ===== read/write and recursion families: real RwLock and Mutex =====

/// How the selftest takes an rwlock: WL / WSL (write), RSL (non-recursive read), RL (recursive
/// read, the selftest's forced-recursive `read_lock`).
#[derive(Clone, Copy, Debug)]
enum How {
    W,
    Rs,
    R,
}

/// Holds the lock until dropped (the fields are never read: only their drop matters).
#[allow(dead_code)]
enum Guard<'a> {
    Read(RwLockReadGuard<'a, ()>),
    Write(RwLockWriteGuard<'a, ()>),
}

fn take(l: &RwLock<()>, how: How) -> Guard<'_> {
    match how {
        How::W => Guard::Write(l.write()),
        How::Rs => Guard::Read(l.read()),
        How::R => Guard::Read(l.read_recursive()),
    }
}

/// Two locks of one class X, nested: `first(X1); second(X2)` (or X1 twice when `same`).
fn aa(case: &str, first: How, second: How, same: bool) -> bool {
    let k = key(case, "X");
    let (x1, x2) = (RwLock::with_key((), k), RwLock::with_key((), k));
    reported(case, || {
        let _a = take(&x1, first);
        let _b = take(if same { &x1 } else { &x2 }, second);
        drop((_b, _a));
    })
}

#[test]
fn recursive_read_lock() {
    // rlock_AA1 / rsem_AA1: the same instance twice.
    assert!(!aa("aa1-rlock", How::R, How::R, true));
    assert!(aa("aa1-rsem", How::Rs, How::Rs, true));
    // #2, rlock_AA1B / rsem_AA1B: two instances of one class.
    assert!(!aa("aa1b-rlock", How::R, How::R, false));
    assert!(aa("aa1b-rsem", How::Rs, How::Rs, false));
}

#[test]
fn mixed_read_write_and_write_read() {
    assert!(aa("aa2-rlock", How::R, How::W, false));
    assert!(aa("aa2-rsem", How::Rs, How::W, false));
    assert!(aa("aa3-rlock", How::W, How::R, false));
    assert!(aa("aa3-rsem", How::W, How::Rs, false));
}

/// `X` an rwlock, `Y` a mutex: `first(X) L(Y)`, then `L(Y) second(X)`.
fn abba(case: &str, first: How, second: How) -> bool {
    let x = RwLock::with_key((), key(case, "X"));
    let y = Mutex::with_key((), key(case, "Y"));
    reported(case, || {
        {
            let _x = take(&x, first);
            let _y = y.lock();
        }
        let _y = y.lock();
        let _x = take(&x, second);
    })
}

#[test]
fn mixed_abba() {
    // "mixed read-lock/lock-write ABBA"
    assert!(abba("abba1-rlock", How::R, How::W));
    assert!(abba("abba1-rsem", How::Rs, How::W));
    // "mixed read-lock/lock-read ABBA": a cycle of recursive readers is not a deadlock, a cycle
    // of non-recursive readers is (a queued writer blocks the second reader).
    assert!(!abba("abba2-rlock", How::R, How::R));
    assert!(abba("abba2-rsem", How::Rs, How::Rs));
    // "mixed write-lock/lock-write ABBA"
    assert!(abba("abba3-rlock", How::W, How::W));
    assert!(abba("abba3-rsem", How::W, How::W));
}

#[test]
fn chain_cached_mixed_abba() {
    // RL(X) L(Y); L(Y) RL(X); L(Y) WL(X): the chain [Y, X] first seen with X read must not hide
    // the same chain with X written (the read kind is part of the chain).
    let case = "chaincache";
    let x = RwLock::with_key((), key(case, "X"));
    let y = Mutex::with_key((), key(case, "Y"));
    assert!(reported(case, || {
        {
            let _x = x.read_recursive();
            let _y = y.lock();
        }
        {
            let _y = y.lock();
            let _x = x.read_recursive();
        }
        let _y = y.lock();
        let _x = x.write();
    }));
}

/// Three events over X, Y, Z (one class each), each `a(P) b(Q)` nested, in every order.
fn three_events(case: &str, events: [(How, usize, How, usize); 3]) -> Vec<bool> {
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    ORDERS
        .iter()
        .map(|order| {
            let c = format!("{case}-{}{}{}", order[0] + 1, order[1] + 1, order[2] + 1);
            let l: Vec<RwLock<()>> = ["X", "Y", "Z"]
                .iter()
                .map(|n| RwLock::with_key((), key(&c, n)))
                .collect();
            reported(&c, || {
                for &e in order {
                    let (h1, p, h2, q) = events[e];
                    let _a = take(&l[p], h1);
                    let _b = take(&l[q], h2);
                }
            })
        })
        .collect()
}

#[test]
fn rlock_three_event_families() {
    use How::{R, W};
    let (x, y, z) = (0, 1, 2);
    // W1R2/W2R3/W3R1: fails in every order.
    assert_eq!(
        three_events("w1r2", [(W, x, R, y), (W, y, R, z), (W, z, R, x)]),
        [true; 6]
    );
    // W1W2/R2R3/W3R1: fails.
    assert_eq!(
        three_events("w1w2", [(W, x, W, y), (R, y, R, z), (W, z, R, x)]),
        [true; 6]
    );
    // The kernel's "W1W2/R2R3/R3W1" (body W1R2/R2R3/W3W1): an -(xR)-> followed by -(Sx)->.
    assert_eq!(
        three_events("w1w2r", [(W, x, R, y), (R, y, R, z), (W, z, W, x)]),
        [false; 6]
    );
    // The kernel's "W1R2/R2R3/W3W1" (body W1W2/R2R3/R3W1): succeeds.
    assert_eq!(
        three_events("w1r2w", [(W, x, W, y), (R, y, R, z), (R, z, W, x)]),
        [false; 6]
    );
}

// ===== irq families: spinlock-like maps and the irq context API =====

/// The kernel's lock types of the irq columns: spin, wlock (rwlock write), rlock (rwlock
/// recursive read).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Col {
    Spin,
    Wlock,
    Rlock,
}

struct Spinish {
    map: LockMap,
}

impl Spinish {
    fn new(case: &str, name: &str) -> Box<Spinish> {
        Box::new(Spinish {
            map: LockMap::named(key(case, name)).with_wait(WaitType::Config, WaitType::Inv),
        })
    }
    /// `LOCK()` of the column.
    fn lock(&self, col: Col) {
        let how = if col == Col::Rlock {
            Acquire::shared_recursive()
        } else {
            Acquire::exclusive()
        };
        self.map.acquire(how);
    }
    fn write(&self) {
        self.map.acquire(Acquire::exclusive());
    }
    fn read(&self) {
        self.map.acquire(Acquire::shared_recursive());
    }
    fn unlock(&self) {
        self.map.release();
    }
}

/// The selftest's context macros, for the hard and the soft variant.
#[derive(Clone, Copy, Debug)]
enum Irq {
    Hard,
    Soft,
}

impl Irq {
    fn enter(self) {
        match self {
            Irq::Hard => {
                irq::local_irq_disable();
                irq::hardirq_enter();
                irq::hardirq_threaded();
            }
            Irq::Soft => {
                irq::local_bh_disable();
                irq::local_irq_disable();
                irq::softirq_enter();
            }
        }
    }
    fn exit(self) {
        match self {
            Irq::Hard => {
                irq::hardirq_exit();
                irq::local_irq_enable();
            }
            Irq::Soft => {
                irq::softirq_exit();
                irq::local_irq_enable();
                irq::local_bh_enable();
            }
        }
    }
    fn disable(self) {
        match self {
            Irq::Hard => irq::local_irq_disable(),
            Irq::Soft => irq::local_bh_disable(),
        }
    }
    fn enable(self) {
        match self {
            Irq::Hard => irq::local_irq_enable(),
            Irq::Soft => irq::local_bh_enable(),
        }
    }
}

const COLS: [Col; 3] = [Col::Spin, Col::Wlock, Col::Rlock];
/// The kernel's expectation per column for these families: spin and wlock fail, rlock succeeds.
const EXPECT: [bool; 3] = [true, true, false];

#[test]
fn irqsafe1_irqs_on_plus_irq_safe_a() {
    for irq in [Irq::Hard, Irq::Soft] {
        for (col, want) in COLS.into_iter().zip(EXPECT) {
            for reverse in [false, true] {
                let case = format!("irqsafe1-{irq:?}-{col:?}-{reverse}");
                let a = Spinish::new(&case, "A");
                let e1 = || {
                    irq.enter();
                    a.lock(col);
                    a.unlock();
                    irq.exit();
                };
                let e2 = || {
                    a.lock(col);
                    a.unlock();
                };
                let got = reported(&case, || {
                    if reverse {
                        e2();
                        e1();
                    } else {
                        e1();
                        e2();
                    }
                });
                assert_eq!(got, want, "{case}");
            }
        }
    }
}

#[test]
fn irqsafe2b_safe_a_plus_irqs_on() {
    for irq in [Irq::Hard, Irq::Soft] {
        for (col, want) in COLS.into_iter().zip(EXPECT) {
            let case = format!("irqsafe2b-{irq:?}-{col:?}");
            let a = Spinish::new(&case, "A");
            let got = reported(&case, || {
                irq.enter();
                a.lock(col);
                a.unlock();
                irq.exit();
                // Taken with the interrupt disabled, which is enabled while it is held.
                irq.disable();
                a.lock(col);
                irq.enable();
                a.unlock();
            });
            assert_eq!(got, want, "{case}");
        }
    }
}

#[test]
fn irqsafe4_safe_a_plus_unsafe_b_in_every_order() {
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for irq in [Irq::Hard, Irq::Soft] {
        for (col, want) in COLS.into_iter().zip(EXPECT) {
            for order in ORDERS {
                let case = format!("irqsafe4-{irq:?}-{col:?}-{order:?}");
                let (a, b) = (Spinish::new(&case, "A"), Spinish::new(&case, "B"));
                let event = |e: usize| match e {
                    // A then B with the interrupt disabled.
                    0 => {
                        irq.disable();
                        a.lock(col);
                        b.lock(col);
                        b.unlock();
                        a.unlock();
                        irq.enable();
                    }
                    // B with the interrupt enabled: B is irq-unsafe.
                    1 => {
                        b.lock(col);
                        b.unlock();
                    }
                    // A in the interrupt: A is irq-safe.
                    _ => {
                        irq.enter();
                        a.lock(col);
                        a.unlock();
                        irq.exit();
                    }
                };
                let got = reported(&case, || order.into_iter().for_each(event));
                assert_eq!(got, want, "{case}");
            }
        }
    }
}

#[test]
fn irq_inversion_in_every_order() {
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for irq in [Irq::Hard, Irq::Soft] {
        for (col, want) in COLS.into_iter().zip(EXPECT) {
            for order in ORDERS {
                let case = format!("inversion-{irq:?}-{col:?}-{order:?}");
                // A is always an rwlock; B is of the column's type.
                let (a, b) = (Spinish::new(&case, "A"), Spinish::new(&case, "B"));
                let event = |e: usize| match e {
                    0 => {
                        irq.disable();
                        a.write();
                        b.lock(col);
                        b.unlock();
                        a.unlock();
                        irq.enable();
                    }
                    1 => {
                        b.lock(col);
                        b.unlock();
                    }
                    _ => {
                        irq.enter();
                        a.read();
                        a.unlock();
                        irq.exit();
                    }
                };
                let got = reported(&case, || order.into_iter().for_each(event));
                assert_eq!(got, want, "{case}");
            }
        }
    }
}

#[test]
fn irq_read_recursion_3() {
    // A is taken for read with the interrupt on and under B (write) with it off; B is taken for
    // read in the interrupt. Only a write acquisition of A under B can deadlock.
    for irq in [Irq::Hard, Irq::Soft] {
        for (col, want) in [(Col::Wlock, true), (Col::Rlock, false)] {
            let case = format!("irqrr3-{irq:?}-{col:?}");
            let (a, b) = (Spinish::new(&case, "A"), Spinish::new(&case, "B"));
            let got = reported(&case, || {
                irq.disable();
                b.write();
                a.lock(col);
                a.unlock();
                b.unlock();
                irq.enable();
                a.read();
                a.unlock();
                irq.enter();
                b.read();
                b.unlock();
                irq.exit();
            });
            assert_eq!(got, want, "{case}");
        }
    }
}
