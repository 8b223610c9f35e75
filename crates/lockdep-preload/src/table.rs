//! The side table: a pthread object's address to its [`Entry`] (the lock map the validator
//! sees, and the lock's type).
//!
//! Every lock call looks its object up here, so a lookup takes no lock: an open-addressed table
//! with linear probing, whose slots' keys go from empty to an address once and never change
//! while the table is current, and whose entry pointers are set by init (or a first use) and
//! cleared by destroy. Writers (init, destroy, first use) serialise on one leaf lock. When more
//! than half the slots have keys, the writer builds a new table from the live entries (larger
//! if they need it; forgetting the addresses of destroyed locks) and publishes it; the old one
//! is kept, never freed, since a reader may still be probing it (the tables kept add up to less
//! than twice the largest one). Before the first object there is a table too, of one empty
//! slot, so a lookup never tests for a missing table.
//!
//! Entries are recycled: destroy takes its entry out of the table and keeps it for the next
//! init. A program that uses a lock while destroying it races in C already; here it could
//! briefly see the recycled entry, never freed memory.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use lockdep::{LockMap, ReadKind};

use crate::leaf::Leaf;

/// What kind of lock an entry stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `PTHREAD_MUTEX_NORMAL` / `DEFAULT`: a re-lock by the owner deadlocks.
    Normal,
    /// `PTHREAD_MUTEX_RECURSIVE`: the owner may re-lock it.
    Recursive,
    /// `PTHREAD_MUTEX_ERRORCHECK`: a re-lock fails with `EDEADLK`, a foreign unlock with `EPERM`.
    ErrorCheck,
    /// An rwlock whose reads have this kind (glibc's default kind prefers readers, so its reads
    /// are recursive; `PREFER_WRITER_NONRECURSIVE_NP` makes them non-recursive).
    RwLock(ReadKind),
    /// A `pthread_spinlock_t`.
    Spin,
}

/// One live pthread object.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) map: LockMap,
    pub(crate) kind: Kind,
    /// A recursive mutex's owner (a thread token, see `Local::token`), 0 when unowned.
    pub(crate) owner: AtomicUsize,
    /// How many times the owner holds it (only the owner reads or writes it).
    pub(crate) depth: AtomicU32,
}

impl Entry {
    fn new(map: LockMap, kind: Kind) -> Entry {
        Entry {
            map,
            kind,
            owner: AtomicUsize::new(0),
            depth: AtomicU32::new(0),
        }
    }
}

struct Slot {
    key: AtomicUsize,
    entry: AtomicPtr<Entry>,
}

/// A table: its slots are never freed (see the module docs), nor is a table once published.
struct Table {
    slots: &'static [Slot],
    /// The byte offsets of the slots from the first one are the multiples of the slot size up
    /// to this; the number of slots is a power of two, so it is a mask as well.
    offsets: usize,
}

const SLOT: usize = std::mem::size_of::<Slot>();
const _: () = assert!(SLOT.is_power_of_two());

impl Table {
    fn with_capacity(cap: usize) -> Table {
        debug_assert!(cap.is_power_of_two());
        let slots: Box<[Slot]> = (0..cap)
            .map(|_| Slot {
                key: AtomicUsize::new(0),
                entry: AtomicPtr::new(std::ptr::null_mut()),
            })
            .collect();
        Table {
            slots: Box::leak(slots),
            offsets: (cap - 1) * SLOT,
        }
    }

    /// The slot whose key is `addr`, or the empty slot where it would go. Probing goes by
    /// byte offset, masked, so that a lookup is an offset and a load.
    #[inline]
    fn probe(&self, addr: usize) -> &Slot {
        // Fibonacci hashing of the address: the high bits of the product (bit 20 up, at the
        // slot size's shift).
        let shift = 20 - SLOT.trailing_zeros();
        let mut off = (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) & self.offsets;
        let base = self.slots.as_ptr().cast::<u8>();
        loop {
            debug_assert!(off.is_multiple_of(SLOT) && off / SLOT < self.slots.len());
            // SAFETY: `off` is a multiple of the slot size, masked to the last slot's offset:
            // it is a slot of this table.
            let s = unsafe { &*base.add(off).cast::<Slot>() };
            let k = s.key.load(Ordering::Acquire);
            if k == addr || k == 0 {
                return s;
            }
            off = (off + SLOT) & self.offsets;
        }
    }
}

// The boxes are the point: readers hold the addresses of entries, which must not move when
// the vector grows.
#[allow(clippy::vec_box)]
struct Writer {
    /// Slots with a key in the current table (live or destroyed).
    used: usize,
    /// Live entries.
    live: usize,
    /// Entries of destroyed objects, for reuse.
    free: Vec<Box<Entry>>,
}

/// The table before the first object: one empty slot (full at once, so the first insert
/// replaces it).
static EMPTY: Table = Table {
    slots: &EMPTY_SLOT,
    offsets: 0,
};
/// [`EMPTY`]'s slot, which nothing writes (an insert replaces the table first).
static EMPTY_SLOT: [Slot; 1] = [Slot {
    key: AtomicUsize::new(0),
    entry: AtomicPtr::new(std::ptr::null_mut()),
}];

/// The current table: [`EMPTY`], or one leaked by [`rebuild`].
static TABLE: AtomicPtr<Table> = AtomicPtr::new(&EMPTY as *const Table as *mut Table);
static WRITER: Leaf<Writer> = Leaf::new(Writer {
    used: 0,
    live: 0,
    free: Vec::new(),
});

/// The current table.
#[inline(always)]
fn current() -> &'static Table {
    // SAFETY: `TABLE` always points to a table, and a published table is never freed.
    unsafe { &*TABLE.load(Ordering::Acquire) }
}

const MIN_CAPACITY: usize = 1024;

/// The live entry of the object at `addr`. Lock-free.
#[inline]
pub(crate) fn get(addr: usize) -> Option<&'static Entry> {
    let p = current().probe(addr).entry.load(Ordering::Acquire);
    // SAFETY: a published entry is never freed (destroy recycles it; see the module docs).
    unsafe { p.as_ref() }
}

/// The entry of the object at `addr`, made by `make` if it has none (a statically initialised
/// object's first use; two threads may race here, and one entry wins).
#[cold]
#[inline(never)]
pub(crate) fn get_or_insert(addr: usize, make: fn(usize) -> (LockMap, Kind)) -> &'static Entry {
    if let Some(e) = get(addr) {
        return e;
    }
    let (map, kind) = make(addr);
    insert(addr, map, kind, false)
}

/// Makes the entry of the object at `addr` (init): a previous entry there is replaced (an
/// object initialised twice without destroy is a new object, as far as the validator knows).
pub(crate) fn init(addr: usize, map: LockMap, kind: Kind) -> &'static Entry {
    insert(addr, map, kind, true)
}

fn insert(addr: usize, map: LockMap, kind: Kind, replace: bool) -> &'static Entry {
    let mut w = WRITER.lock();
    let mut entry = match w.free.pop() {
        Some(mut e) => {
            *e = Entry::new(map, kind);
            e
        }
        None => Box::new(Entry::new(map, kind)),
    };
    let mut t = current();
    if (w.used + 1) * 2 > t.slots.len() {
        rebuild(&mut w);
        t = current();
    }
    let slot = t.probe(addr);
    let old = slot.entry.load(Ordering::Acquire);
    if !old.is_null() {
        if !replace {
            // Another thread made it first.
            w.free.push(entry);
            // SAFETY: a published entry is never freed.
            return unsafe { &*old };
        }
        // SAFETY: `old` came from `Box::into_raw` below, and is taken out of the table here,
        // under the writer lock.
        w.free.push(unsafe { Box::from_raw(old) });
        w.live -= 1;
    }
    let e: *mut Entry = &mut *entry;
    std::mem::forget(entry);
    slot.entry.store(e, Ordering::Release);
    if slot.key.load(Ordering::Relaxed) != addr {
        slot.key.store(addr, Ordering::Release);
        w.used += 1;
    }
    w.live += 1;
    // SAFETY: just published; never freed.
    unsafe { &*e }
}

/// Replaces the current table by one holding the live entries only, with room for growth.
fn rebuild(w: &mut Writer) {
    let cap = ((w.live + 1) * 4).next_power_of_two().max(MIN_CAPACITY);
    let new = Table::with_capacity(cap);
    let mut used = 0;
    for s in current().slots.iter() {
        let e = s.entry.load(Ordering::Acquire);
        if !e.is_null() {
            let key = s.key.load(Ordering::Relaxed);
            let slot = new.probe(key);
            slot.entry.store(e, Ordering::Relaxed);
            slot.key.store(key, Ordering::Relaxed);
            used += 1;
        }
    }
    // The old table stays, leaked: a reader may still be probing it.
    TABLE.store(Box::leak(Box::new(new)), Ordering::Release);
    w.used = used;
}

/// Forgets the object at `addr` (destroy), giving back its entry for the caller to check and
/// then [`recycle`].
pub(crate) fn remove(addr: usize) -> Option<Box<Entry>> {
    let mut w = WRITER.lock();
    let slot = current().probe(addr);
    if slot.key.load(Ordering::Relaxed) != addr {
        return None;
    }
    let e = slot.entry.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if e.is_null() {
        return None;
    }
    w.live -= 1;
    // SAFETY: `e` came from `Box::into_raw` in `insert` and was just taken out of the table.
    Some(unsafe { Box::from_raw(e) })
}

/// Keeps a removed entry for reuse.
pub(crate) fn recycle(e: Box<Entry>) {
    WRITER.lock().free.push(e);
}

/// Around `fork`: the writer lock and the class tables' locks, so the child never inherits one
/// held by a thread that does not exist there.
pub(crate) fn install_fork_handlers() {
    extern "C" fn prepare() {
        WRITER.fork_acquire();
        crate::class::fork_acquire();
    }
    extern "C" fn release() {
        crate::class::fork_release();
        WRITER.fork_release();
    }
    // SAFETY: the handlers are functions that live as long as the process.
    unsafe { libc::pthread_atfork(Some(prepare), Some(release), Some(release)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_replaced_removed_and_survive_rebuilds() {
        let addrs: Vec<usize> = (1..5000).map(|i| 0x10_0000 + i * 40).collect();
        for &a in &addrs {
            init(a, LockMap::self_keyed(), Kind::Normal);
        }
        for &a in &addrs {
            assert_eq!(get(a).map(|e| e.kind), Some(Kind::Normal));
        }
        let first = get(addrs[0]).unwrap() as *const Entry;
        let again = init(addrs[0], LockMap::self_keyed(), Kind::Recursive);
        assert_eq!(again.kind, Kind::Recursive);
        assert_eq!(
            get_or_insert(addrs[0], |_| unreachable!()).kind,
            Kind::Recursive
        );
        let _ = first;
        for &a in &addrs[..2500] {
            recycle(remove(a).unwrap());
            assert!(get(a).is_none());
            assert!(remove(a).is_none());
        }
        for &a in &addrs[2500..] {
            assert!(get(a).is_some());
        }
        let made = get_or_insert(addrs[1], |_| (LockMap::self_keyed(), Kind::Spin));
        assert_eq!(made.kind, Kind::Spin);
        assert_eq!(get(addrs[1]).unwrap().kind, Kind::Spin);
    }
}
