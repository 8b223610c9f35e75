//! Tasks and their held-lock stacks.
//!
//! A [`Task`] is the per-task half of the engine: the locks it holds, in acquisition order, the
//! running chain key of that stack, its interrupt-like context, and a private cache of lock
//! chains it has already validated. Nothing in a `Task` is shared, which is what makes the
//! already-seen path free of global locks: a real thread keeps its `Task` in a thread-local, the
//! replay tool keeps one per simulated task, and both hand it to the [`Engine`](crate::Engine)
//! explicitly.
//!
//! The kernel's rules for the stack live here and in the engine: a lock is pushed *before* the
//! real lock is taken; releases may come in any order (the locks above the released one are
//! popped and acquired again, which re-validates them); a release of something not held is a
//! "bad unlock balance".

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::engine::chain::{ChainId, TaskChains, ROOT};
use crate::lock::class::{ClassId, ClassMemo};
use crate::lock::map::{ReadKind, Site, SiteRef, ASYNC, CLASS_ID_MASK, CLASS_WORD_BITS, MOVABLE};
#[cfg(test)]
use crate::lock::wait::WaitType;
use crate::report::stack::StackTrace;

/// Bits of [`HeldLock::irq_context`]: the context the lock was taken in.
pub(crate) const IRQ_CONTEXT_SOFT: u8 = 1;
pub(crate) const IRQ_CONTEXT_HARD: u8 = 2;

/// One entry of a task's held-lock stack (the kernel's `held_lock`).
///
/// `repr(C)`, in this order, so that the fast path's push is few stores: the fields it writes
/// from run-time values first, then the ones that are zero for every fast acquisition
/// (adjacent, so they merge into wide stores), then the one-byte flags.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct HeldLock {
    pub(crate) instance: usize,
    pub(crate) site: SiteRef,
    /// The fast path's key for this acquisition ([`repeat_key`]), [`Repeat::NONE`] if it has
    /// none. Only the fast path's push of a chain listed as seen gives an entry a key, and
    /// entries above the top keep theirs. The stack keeps one invariant for them: *an entry
    /// with a key was pushed on the entry now below it* (any other write of an entry takes the
    /// key of the entry above it away: see [`HeldStack::push`], [`HeldStack::get_mut`]). So
    /// an acquisition whose key and instance equal those of the entry just above the top is
    /// that entry again, on the very stack it was pushed on (the key names the class and flags
    /// of the map, the read kind and trylock: everything the entry records but its site and
    /// what lies below), and its push is just making it the top.
    pub(crate) repeat: Repeat,
    /// The map's key word ([`LockMap::key_word`](crate::LockMap), 0 for none) where `repeat`
    /// is a key: with it, a lock made anew at the address of this one (lock churn), whose
    /// class cache is still empty, is known to be of this entry's class (a key's class never
    /// changes while the task's chains are kept: only self-keyed classes are ever zapped).
    pub(crate) key: usize,
    pub(crate) class: ClassId,
    /// The task's chain with this lock on top: the task's chain while this is its top entry
    /// ([`Task::chain`]; the stack's bottom sentinel holds [`ROOT`]).
    pub(crate) chain: ChainId,
    /// Instance of the nest lock, 0 if none.
    pub(crate) nest: usize,
    /// How many nest-lock acquisitions of this class were merged into this entry (0: none).
    pub(crate) references: u32,
    pub(crate) pin_count: u32,
    pub(crate) read: ReadKind,
    pub(crate) trylock: bool,
    pub(crate) check: bool,
    pub(crate) irq_context: u8,
    pub(crate) hardirqs_off: bool,
    /// Set by [`HeldStack::push`]: this entry keeps its task off the fast path.
    pub(crate) blocks_fast: bool,
    /// The map's flags: [`MOVABLE`] (the hold may be released by another thread, see
    /// [`crate::rt`]) and [`ASYNC`] (an async lock).
    pub(crate) map_flags: u8,
    /// The class's inner wait type, copied at acquisition (the sleep and wait-context checks
    /// read it for every held lock).
    pub(crate) wait_inner: crate::lock::wait::WaitType,
}

/// The fast path's key of an acquisition (see [`HeldLock::repeat`]), as two words: `classed`
/// for a map with its class cached, `unclassed` (the same without the class bits) for a map
/// made anew whose cache is still empty. Two words rather than one masked on demand, so that
/// the common comparison is one instruction against memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Repeat {
    pub(crate) classed: u32,
    pub(crate) unclassed: u32,
}

impl Repeat {
    /// An entry without a key: a bit no key has (the class word's 27 bits, two of read kind,
    /// one of trylock lie below it).
    pub(crate) const NONE: Repeat = Repeat {
        classed: 1 << 31,
        unclassed: 1 << 31,
    };

    /// The key of an entry for a plain acquisition (`read`, `trylock`) of a map whose class
    /// word is the nonzero `class_word`.
    #[inline(always)]
    pub(crate) fn of(class_word: u32, read: ReadKind, trylock: bool) -> Repeat {
        let classed = repeat_key(class_word, read, trylock);
        Repeat {
            classed,
            unclassed: classed & !CLASS_ID_MASK,
        }
    }
}

/// The [`Repeat::classed`] key of a plain acquisition (`read`, `trylock`) of a map whose class
/// word is `class_word` ([`LockMap::class_word`](crate::LockMap)). The class word holds the
/// class and the map's flags; read kind and trylock go above them. An entry is only ever given
/// the key of a nonzero class word, so the key of an empty cache matches no entry.
#[inline(always)]
pub(crate) fn repeat_key(class_word: u32, read: ReadKind, trylock: bool) -> u32 {
    const READ_SHIFT: u32 = CLASS_WORD_BITS + 3;
    const TRYLOCK: u32 = 1 << (READ_SHIFT + 2);
    class_word | ((read as u32) << READ_SHIFT) | (u32::from(trylock) * TRYLOCK)
}
const _: () = assert!(CLASS_WORD_BITS + 3 + 3 < 31);

// `HeldStack::discard_top` relies on it.
const _: () = assert!(!std::mem::needs_drop::<HeldLock>());

impl HeldLock {
    /// Whether the hold may be released by another thread than the one that took it.
    #[inline]
    pub(crate) fn movable(&self) -> bool {
        self.map_flags & MOVABLE != 0
    }

    /// Whether this is a hold of an async lock (see [`LockMap::async_lock`](crate::LockMap)).
    #[inline]
    pub fn is_async(&self) -> bool {
        self.map_flags & ASYNC != 0
    }

    /// Neither merged (nest-lock references) nor pinned: one test of the two adjacent words.
    #[inline(always)]
    pub(crate) fn plain(&self) -> bool {
        (self.references | self.pin_count) == 0
    }

    /// The lock's class.
    pub fn class(&self) -> ClassId {
        self.class
    }

    /// The instance (the lock map's address, or the replay's instance id).
    pub fn instance(&self) -> usize {
        self.instance
    }

    /// How it is held.
    pub fn read(&self) -> ReadKind {
        self.read
    }

    /// Whether it was taken by a trylock.
    pub fn trylock(&self) -> bool {
        self.trylock
    }

    /// Where it was taken.
    pub fn site(&self) -> Site {
        self.site.get()
    }
}

/// A task's held-lock stack, which also counts what keeps the task off the
/// [fast path](crate::Engine::acquire): held locks taken in an interrupt-like context, held
/// spinning locks (with one held, neither the wait-context nor the sleep check is vacuous), and
/// one more while the task's context is not plain (see [`Task::update_context`]). The count is
/// kept on every change, so the fast path reads one word instead of scanning anything.
///
/// Below the first held lock lies a sentinel entry, which no release matches (its instance is
/// no lock's) and whose chain is [`ROOT`]: so the top entry always exists, the task's chain is
/// the top entry's, and the fast path's push and pop need no test for an empty stack.
///
/// The entries live in one buffer that is initialised in full and only ever replaced by a
/// larger one: above the top lie the entries popped before (left as they were) and, at the
/// end, a filler that no push overwrites. So the entry just above the top can always be read:
/// the fast path compares it with the acquisition it is making, and when it is that very
/// acquisition again (see [`HeldLock::repeat`]) the push is one pointer store. The stack is
/// kept as a pointer to its top entry, which is what both fast paths read.
#[derive(Debug)]
pub(crate) struct HeldStack {
    /// The sentinel, the held locks oldest first, the entries above the top, the filler.
    buf: Box<[HeldLock]>,
    /// The top entry (the sentinel while nothing is held): an element of `buf`, below its last.
    top: *mut HeldLock,
    blockers: u32,
    context_blocks: bool,
}

// SAFETY: `top` points into `buf`, which the stack owns (a `Box` does not move its elements
// when the stack moves); it is only dereferenced through `&self`/`&mut self`, exactly as the
// buffer would be. So the stack is as `Send` and `Sync` as a `Box<[HeldLock]>` of plain data.
unsafe impl Send for HeldStack {}
// SAFETY: as for `Send`.
unsafe impl Sync for HeldStack {}

impl std::ops::Deref for HeldStack {
    type Target = [HeldLock];

    #[inline]
    fn deref(&self) -> &[HeldLock] {
        // SAFETY: the entries from index 1 to the top are initialised elements of `buf` (the
        // top is in `buf`, at index `depth`).
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().add(1), self.depth()) }
    }
}

impl<'a> IntoIterator for &'a HeldStack {
    type Item = &'a HeldLock;
    type IntoIter = std::slice::Iter<'a, HeldLock>;

    fn into_iter(self) -> Self::IntoIter {
        self[..].iter()
    }
}

/// The depth up to which the fast path pushes (a chain any deeper is never listed for it), and
/// the held stack's capacity from the start: so the fast path's push never needs room it has
/// to ask for.
pub(crate) const MAX_FAST_DEPTH: usize = 48;

// A clone keeps the capacity the fast path relies on.
impl Clone for HeldStack {
    fn clone(&self) -> HeldStack {
        let mut buf = self.buf.clone();
        let top = buf[self.depth()..].as_mut_ptr();
        HeldStack {
            buf,
            top,
            blockers: self.blockers,
            context_blocks: self.context_blocks,
        }
    }
}

impl Default for HeldStack {
    fn default() -> HeldStack {
        HeldStack::with_capacity(MAX_FAST_DEPTH)
    }
}

/// The instance of the stack's sentinel and filler: no lock map's address, and no replay's
/// instance id.
const SENTINEL_INSTANCE: usize = usize::MAX;

/// The sentinel, and what fills the buffer above the top until an entry is pushed there: no
/// release matches it, and it has no `repeat` key, so it matches no acquisition.
fn filler() -> HeldLock {
    HeldLock {
        instance: SENTINEL_INSTANCE,
        site: SiteRef::direct(Site::Unknown).expect("not a text"),
        repeat: Repeat::NONE,
        key: 0,
        class: ClassId(0),
        chain: ROOT,
        nest: 0,
        references: 0,
        pin_count: 0,
        read: ReadKind::Exclusive,
        trylock: false,
        check: false,
        irq_context: 0,
        hardirqs_off: false,
        blocks_fast: false,
        map_flags: 0,
        wait_inner: crate::lock::wait::WaitType::Inv,
    }
}

impl HeldStack {
    /// A stack with room for `n` locks above its sentinel.
    fn with_capacity(n: usize) -> HeldStack {
        let mut buf = vec![filler(); n + 2].into_boxed_slice();
        let top = buf.as_mut_ptr();
        HeldStack {
            buf,
            top,
            blockers: 0,
            context_blocks: false,
        }
    }

    /// Whether nothing is held (the top is the sentinel): one comparison.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        std::ptr::eq(self.top, self.buf.as_ptr())
    }

    /// How many locks are held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.depth()
    }

    /// How many locks are held (the top entry's index: the sentinel is at 0).
    #[inline]
    fn depth(&self) -> usize {
        // SAFETY: `top` points into `buf` (see the field), so both pointers are into one
        // allocation and the distance is a whole number of elements, and not negative.
        unsafe { self.top.offset_from(self.buf.as_ptr()) as usize }
    }

    /// Makes entry `i` of the buffer the top (`i` below the filler's index).
    #[inline]
    fn set_depth(&mut self, i: usize) {
        debug_assert!(i + 1 < self.buf.len());
        self.top = self.buf[i..].as_mut_ptr();
    }

    /// How many more locks fit before the buffer must grow.
    #[inline]
    fn room(&self) -> usize {
        self.buf.len() - 2 - self.depth()
    }

    /// The top entry: the most recent held lock, or the sentinel.
    #[inline(always)]
    pub(crate) fn top(&self) -> &HeldLock {
        // SAFETY: `top` always points to an initialised element of `buf` (see the field).
        unsafe { &*self.top }
    }

    /// The entry just above the top: one popped before, or the filler (never past the buffer:
    /// the top is below the filler).
    #[inline(always)]
    pub(crate) fn above_top(&self) -> &HeldLock {
        // SAFETY: the top is below the buffer's last element, and every element is initialised.
        unsafe { &*self.top.add(1) }
    }

    /// How many things keep the task off the fast path (0: none).
    #[inline]
    pub(crate) fn blockers(&self) -> u32 {
        self.blockers
    }

    fn set_context_blocks(&mut self, blocks: bool) {
        self.blockers = self.blockers - u32::from(self.context_blocks) + u32::from(blocks);
        self.context_blocks = blocks;
    }

    fn recount(&mut self) {
        self.blockers = self.iter().map(|h| u32::from(h.blocks_fast)).sum::<u32>()
            + u32::from(self.context_blocks);
    }

    /// A push by anything but the fast path: the entry carries no `repeat` key (only the fast
    /// path's push makes one, for what it knows to be listed as seen). Like every push, it
    /// takes the key of the entry above away: that entry was pushed on another one.
    #[inline(always)]
    pub(crate) fn push(&mut self, mut h: HeldLock) {
        h.blocks_fast = h.irq_context != 0 || h.wait_inner.spins();
        h.repeat = Repeat::NONE;
        if h.blocks_fast {
            self.blockers += 1;
        }
        if self.room() == 0 {
            self.grow();
        }
        let i = self.depth() + 1;
        self.buf[i] = h;
        // `i` is below the filler (there was room), so `i + 1` is in the buffer.
        self.buf[i + 1].repeat = Repeat::NONE;
        self.set_depth(i);
    }

    /// Doubles the buffer (a stack deeper than [`MAX_FAST_DEPTH`]: only ever with the depth
    /// limit raised, or by a simulated task), keeping every element initialised.
    #[cold]
    fn grow(&mut self) {
        let depth = self.depth();
        let mut buf = vec![filler(); 2 * self.buf.len()].into_boxed_slice();
        buf[..=depth].clone_from_slice(&self.buf[..=depth]);
        self.buf = buf;
        self.set_depth(depth);
    }

    /// The fast path's push: of an entry that keeps nothing off the fast path (its caller
    /// vouches: no irq context, not a spinning lock), so the count stays as it is. Its
    /// `repeat` key is the caller's; the entry above loses its key (see [`HeldLock::repeat`]).
    #[inline(always)]
    pub(crate) fn push_open(&mut self, h: HeldLock) {
        debug_assert!(h.irq_context == 0 && !h.wait_inner.spins() && !h.blocks_fast);
        // The chain being pushed is at most `MAX_FAST_DEPTH` deep, and so is the stack after
        // the push; its capacity is at least that from the start and never shrinks.
        debug_assert!(self.has_room());
        if self.has_room() {
            // SAFETY: there is room for one more entry below the filler (just checked), so
            // the entry above it is in the buffer too (at most the filler).
            unsafe {
                let next = self.top.add(1);
                *next = h;
                (*next.add(1)).repeat = Repeat::NONE;
                self.top = next;
            }
        }
    }

    /// The fast path's push of the acquisition the entry above the top already records (its
    /// caller compared the entry's `repeat` key and instance): it only needs the new site.
    #[inline(always)]
    pub(crate) fn push_repeat(&mut self, site: SiteRef) {
        // SAFETY: the entry above the top is in the buffer and below the filler (the filler has
        // no key, so the caller's comparison never matched it), so it may become the top. The
        // entry keeps its key and the one above keeps its own: the entry is the same
        // acquisition on the same stack as before, so the invariant of `HeldLock::repeat`
        // holds for both.
        unsafe {
            let next = self.top.add(1);
            self.top = next;
            (*next).site = site;
        }
    }

    /// Whether a push needs no allocation (the fast path calls out to nothing, the allocator
    /// included, so that nothing can re-enter the validator while it runs).
    #[inline(always)]
    pub(crate) fn has_room(&self) -> bool {
        // The entry above the top is below the filler: two entries below the buffer's end.
        (self.top as usize) + 2 * std::mem::size_of::<HeldLock>()
            < (self.buf.as_ptr() as usize) + std::mem::size_of_val(&*self.buf)
    }

    /// Forgets every entry's `repeat` key: the task's chains were forgotten, and a key stands
    /// for a chain listed as seen (see [`HeldLock::repeat`]).
    pub(crate) fn forget_repeats(&mut self) {
        self.forget_repeats_from(0);
    }

    /// Forgets the `repeat` keys of the entries from index `i` of the buffer up.
    fn forget_repeats_from(&mut self, i: usize) {
        self.buf[i..]
            .iter_mut()
            .for_each(|h| h.repeat = Repeat::NONE);
    }

    /// Drops the top entry, known not to keep anything off the fast path (the open slot's
    /// release: see [`Task::fast_open`]).
    #[inline(always)]
    pub(crate) fn discard_open_top(&mut self) {
        debug_assert!(self.depth() > 0 && !self.top().blocks_fast);
        // SAFETY: the caller found its lock on top, so the top is not the sentinel and the
        // entry below it is in the buffer. The entry stays as it was (see `above_top`).
        unsafe { self.top = self.top.sub(1) };
    }

    /// Drops the top entry (the fast path's release).
    #[inline(always)]
    pub(crate) fn discard_top(&mut self) {
        if self.depth() > 0 {
            if self.top().blocks_fast {
                self.blockers -= 1;
            }
            // SAFETY: the top is not the sentinel, so the entry below it is in the buffer.
            unsafe { self.top = self.top.sub(1) };
        }
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<HeldLock> {
        let depth = self.depth();
        if depth == 0 {
            return None;
        }
        let h = self.buf[depth].clone();
        self.set_depth(depth - 1);
        if h.blocks_fast {
            self.blockers -= 1;
        }
        Some(h)
    }

    /// Removes and returns the entries from `i` up, oldest first.
    pub(crate) fn split_off(&mut self, i: usize) -> Vec<HeldLock> {
        let upper = self.buf[i + 1..=self.depth()].to_vec();
        self.set_depth(i);
        self.blockers -= upper.iter().map(|h| u32::from(h.blocks_fast)).sum::<u32>();
        upper
    }

    pub(crate) fn clear(&mut self) {
        self.set_depth(0);
        self.recount();
    }

    pub(crate) fn retain(&mut self, mut f: impl FnMut(&HeldLock) -> bool) {
        let depth = self.depth();
        let mut kept = 0;
        let mut first_removed = None;
        for i in 1..=depth {
            if f(&self.buf[i]) {
                kept += 1;
                if kept != i {
                    self.buf[kept] = self.buf[i].clone();
                }
            } else {
                first_removed.get_or_insert(i);
            }
        }
        if let Some(i) = first_removed {
            // From the first entry removed up, entries were moved onto others, or lost the
            // entry they were pushed on: their keys no longer hold (see `HeldLock::repeat`).
            self.forget_repeats_from(i);
        }
        self.set_depth(kept);
        self.recount();
    }

    /// An entry, to change its reference or pin count. (What decides `blocks_fast` — the irq
    /// context, the wait type — is fixed once pushed.) A changed entry no longer records a
    /// plain acquisition, so its `repeat` key is forgotten, and so is that of the entry above
    /// (pushed on what this entry was).
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut HeldLock {
        assert!(i < self.depth(), "held entry {i} out of range");
        // The entry is below the top, so the one above it is in the buffer.
        self.buf[i + 2].repeat = Repeat::NONE;
        let h = &mut self.buf[i + 1];
        h.repeat = Repeat::NONE;
        h
    }

    pub(crate) fn last_mut(&mut self) -> Option<&mut HeldLock> {
        let depth = self.depth();
        (depth > 0).then(|| self.get_mut(depth - 1))
    }
}

/// The interrupt-like context of a task: the kernel's hardirq/softirq context and enable state.
/// A new task runs in process context with both enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqState {
    /// Nesting depth of hardirq context.
    pub hardirq_context: u32,
    /// Nesting depth of softirq context.
    pub softirq_context: u32,
    /// Whether hard interrupts are enabled.
    pub hardirqs_enabled: bool,
    /// Whether soft interrupts are enabled.
    pub softirqs_enabled: bool,
    /// Whether the current hardirq runs threaded.
    pub hardirq_threaded: bool,
}

impl Default for IrqState {
    fn default() -> Self {
        IrqState {
            hardirq_context: 0,
            softirq_context: 0,
            hardirqs_enabled: true,
            softirqs_enabled: true,
            hardirq_threaded: false,
        }
    }
}

impl IrqState {
    pub(crate) fn context_bits(&self) -> u8 {
        let mut c = 0;
        if self.softirq_context > 0 {
            c |= IRQ_CONTEXT_SOFT;
        }
        if self.hardirq_context > 0 {
            c |= IRQ_CONTEXT_HARD;
        }
        c
    }
}

/// Where a task's stack traces come from.
#[derive(Clone, Debug, Default)]
pub enum StackSource {
    /// The real call stack of the current thread (captured only on the slow path).
    #[default]
    Native,
    /// A simulated call stack, innermost frame last (the replay's `call` / `ret`): each frame a
    /// function's name ([`Site::Text`]) or a statement's line ([`Site::Line`]).
    Simulated(Vec<Site>),
}

/// The per-task state of the validator.
///
/// ```
/// use lockdep::{Acquire, Engine, LockMap, Task};
///
/// let engine = Engine::new();
/// let mut task = Task::new("worker", 7);
/// let (a, b) = (LockMap::new(), LockMap::new());
/// assert!(engine.acquire(&mut task, &a, Acquire::exclusive(), lockdep::Site::Unknown).is_none());
/// assert!(engine.acquire(&mut task, &b, Acquire::exclusive(), lockdep::Site::Unknown).is_none());
/// assert_eq!(task.depth(), 2);
/// ```
#[derive(Debug)]
pub struct Task {
    pub(crate) name: Arc<str>,
    pub(crate) pid: u32,
    pub(crate) held: HeldStack,
    /// Changed only through [`Task::update_context`].
    pub(crate) irq: IrqState,
    /// `irq.context_bits()`, kept by [`Task::update_context`].
    pub(crate) context_bits: u8,
    pub(crate) stack: StackSource,
    pub(crate) chains: TaskChains,
    /// Class lookups this task has made: (key identity word, subclass) → class.
    pub(crate) classes: FxHashMap<(usize, u8), ClassId>,
    /// The most recent of them for subclass 0, direct-mapped (the fast path's lookup).
    pub(crate) class_memo: ClassMemo,
    /// Changed only through [`Task::update_context`].
    pub(crate) non_block_count: u32,
    /// The text sites this task has used, interned (so that the fast path finds them without
    /// the interner's lock).
    texts: FxHashMap<(usize, usize), SiteRef>,
    /// The most recent of them, direct-mapped by address (the fast path's lookup: a driver
    /// whose sites are texts, as the pthread interposer's are, finds a loop's sites here).
    text_memo: [((usize, usize), SiteRef); TEXT_MEMO_SLOTS],
    pub(crate) memalloc_flags: u32,
    /// The engine the caches above belong to (0: none yet).
    pub(crate) engine: u64,
    /// Where the task runs (process, test), shown in merged reports.
    pub(crate) origin: Option<Arc<str>>,
    /// Makes pin cookies differ from one pin to the next.
    pub(crate) pin_serial: u32,
    /// Acquisitions past [`MAX_LOCK_DEPTH`] that were counted instead of pushed (not
    /// validated); their releases, which find nothing on the stack, count it down.
    pub(crate) overflow: u32,
    /// Whether the depth limit was reported for this task (it is reported once per task).
    pub(crate) overflow_reported: bool,
    /// The engine's zap count when the task's chains were last known current.
    pub(crate) zaps_seen: u64,
}

/// The most locks a task holds that the validator tracks (the kernel's `MAX_LOCK_DEPTH`). A
/// deeper acquisition is reported once per task ("BUG: MAX_LOCK_DEPTH too low!") and not
/// validated: the lock itself works, the validator only stops following that task's locks
/// past this depth until it is back under it. Without a limit every level of nesting stores a
/// chain as long as the level, so memory grows with the square of the depth.
pub const MAX_LOCK_DEPTH: usize = 48;

const TEXT_MEMO_SLOTS: usize = 8;

impl Task {
    /// A task with a name and an id, as reports print it: `name/pid`.
    pub fn new(name: impl Into<Arc<str>>, pid: u32) -> Task {
        Task {
            name: name.into(),
            pid,
            held: HeldStack::with_capacity(MAX_FAST_DEPTH),
            irq: IrqState::default(),
            context_bits: 0,
            stack: StackSource::Native,
            chains: TaskChains::default(),
            classes: FxHashMap::default(),
            class_memo: ClassMemo::default(),
            non_block_count: 0,
            texts: FxHashMap::default(),
            text_memo: [((0, 0), SiteRef::direct(Site::Unknown).expect("not a text"));
                TEXT_MEMO_SLOTS],
            memalloc_flags: 0,
            engine: 0,
            origin: None,
            pin_serial: 0,
            overflow: 0,
            overflow_reported: false,
            zaps_seen: 0,
        }
    }

    /// A task whose stacks are simulated (see [`Task::push_frame`]).
    pub fn simulated(name: impl Into<Arc<str>>, pid: u32) -> Task {
        let mut t = Task::new(name, pid);
        t.stack = StackSource::Simulated(Vec::new());
        t
    }

    /// Sets where the task runs (a process and test label), shown with its dependencies when
    /// recordings of several processes are merged.
    pub fn set_origin(&mut self, origin: Option<Arc<str>>) {
        self.origin = origin;
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The task's id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sets the id reports print (`name/pid`): a reproduction can give a thread the pid of the
    /// kernel task it stands for.
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    /// How many locks the task holds (`lockdep_depth`).
    pub fn depth(&self) -> usize {
        self.held.len()
    }

    /// The held-lock stack, oldest first.
    pub fn held_locks(&self) -> &[HeldLock] {
        &self.held
    }

    /// The interrupt-like context state.
    pub fn irq_state(&self) -> IrqState {
        self.irq
    }

    /// Pushes a frame on a simulated call stack (innermost frames are pushed last). Does nothing
    /// for a native task.
    pub fn push_frame(&mut self, frame: &'static str) {
        self.push_frame_site(Site::Text(frame));
    }

    /// Pushes a frame that is a site (as printed: a [`Site::Line`] prints `FILE:LINE`) on a
    /// simulated call stack. Does nothing for a native task.
    pub fn push_frame_site(&mut self, frame: Site) {
        if let StackSource::Simulated(frames) = &mut self.stack {
            frames.push(frame);
        }
    }

    /// Pops the innermost frame of a simulated call stack; `false` if there was none.
    pub fn pop_frame(&mut self) -> bool {
        match &mut self.stack {
            StackSource::Simulated(frames) => frames.pop().is_some(),
            StackSource::Native => false,
        }
    }

    /// The innermost simulated frame, if any.
    pub fn current_frame(&self) -> Option<Site> {
        match &self.stack {
            StackSource::Simulated(frames) => frames.last().copied(),
            StackSource::Native => None,
        }
    }

    /// Sets a memory-allocation scope flag (`memalloc_nofs_save` and friends) and returns its
    /// previous state, to be given back to [`Task::memalloc_restore`]. Scopes nest because each
    /// save returns the state it found.
    pub fn memalloc_save(&mut self, flag: u32) -> bool {
        let was = self.memalloc_flags & flag != 0;
        self.memalloc_flags |= flag;
        was
    }

    /// Restores a flag to the state a matching [`Task::memalloc_save`] returned.
    pub fn memalloc_restore(&mut self, flag: u32, was: bool) {
        if was {
            self.memalloc_flags |= flag;
        } else {
            self.memalloc_flags &= !flag;
        }
    }

    /// The memory-allocation scope flags (`PF_MEMALLOC*` bits) in force.
    pub fn memalloc_flags(&self) -> u32 {
        self.memalloc_flags
    }

    /// The non-blocking section depth (`non_block_count`).
    pub fn non_block_count(&self) -> u32 {
        self.non_block_count
    }

    /// Captures the task's current stack (slow path only).
    pub(crate) fn capture_stack(&self) -> StackTrace {
        match &self.stack {
            StackSource::Native => StackTrace::capture(),
            StackSource::Simulated(frames) => {
                StackTrace::simulated(frames.iter().rev().copied().collect())
            }
        }
    }

    /// Whether the task is in the state in which the fast path's acquisitions need no check:
    /// process context, interrupts enabled, outside any non-blocking section, holding no lock
    /// of an interrupt-like context and no spinning lock.
    #[inline]
    pub(crate) fn fast_ready(&self) -> bool {
        debug_assert_eq!(
            !self.held.context_blocks,
            self.irq == IrqState::default() && self.non_block_count == 0,
            "the context changed behind update_context's back"
        );
        self.held.blockers() == 0
    }

    /// Whether the process-wide driver may open this task to its fast path (see `rt`'s `FAST`):
    /// its caches are `engine`'s, it is in the fast state ([`Task::fast_ready`]), and every
    /// held lock is plain, so that the release of the top one needs no other question.
    pub(crate) fn fast_open(&self, engine: u64) -> bool {
        self.engine == engine && self.fast_ready() && self.held.iter().all(HeldLock::plain)
    }

    /// The task's chain: that of its top entry (the chain the next acquisition extends, unless
    /// it starts a new irq context's chain), [`ROOT`] when nothing is held.
    #[inline(always)]
    pub(crate) fn chain(&self) -> ChainId {
        self.held.top().chain
    }

    /// Changes the interrupt-like state or the non-blocking depth: everything
    /// [`Task::fast_ready`] reads besides the held stack, which is why it goes through here.
    pub(crate) fn update_context(&mut self, f: impl FnOnce(&mut IrqState, &mut u32)) {
        f(&mut self.irq, &mut self.non_block_count);
        let plain = self.irq == IrqState::default() && self.non_block_count == 0;
        self.held.set_context_blocks(!plain);
        self.context_bits = self.irq.context_bits();
    }

    /// `site` as a held entry keeps it, if that needs no interning or the task has interned it
    /// before (no lock, no allocation: the fast path's lookup).
    #[inline(always)]
    pub(crate) fn site_ref(&mut self, site: Site) -> Option<SiteRef> {
        match site {
            Site::Text(t) => {
                let key = (t.as_ptr() as usize, t.len());
                let (k, r) = self.text_memo[Self::text_slot(key.0)];
                if k == key {
                    return Some(r);
                }
                self.known_text(key)
            }
            other => SiteRef::direct(other),
        }
    }

    #[inline]
    fn text_slot(addr: usize) -> usize {
        (addr >> 3 ^ addr >> 9) & (TEXT_MEMO_SLOTS - 1)
    }

    #[inline(never)]
    fn known_text(&mut self, key: (usize, usize)) -> Option<SiteRef> {
        let r = self.texts.get(&key).copied()?;
        self.text_memo[Self::text_slot(key.0)] = (key, r);
        Some(r)
    }

    /// `site` as a held entry keeps it, interning a text (slow path).
    pub(crate) fn intern_site(&mut self, site: Site) -> SiteRef {
        match site {
            Site::Text(t) => *self
                .texts
                .entry((t.as_ptr() as usize, t.len()))
                .or_insert_with(|| SiteRef::new(site)),
            other => SiteRef::new(other),
        }
    }

    /// Index of the first held lock of the current irq context (the chain starts there).
    pub(crate) fn first_in_context(&self) -> usize {
        let ctx = self.context_bits;
        let mut i = self.held.len();
        while i > 0 && self.held[i - 1].irq_context == ctx {
            i -= 1;
        }
        i
    }

    /// Finds the held entry for `instance`, searching from the top down, not crossing into
    /// another irq context.
    pub(crate) fn find_held(
        &self,
        instance: usize,
        class_of_instance: Option<ClassId>,
    ) -> Option<usize> {
        let ctx = self.context_bits;
        for (i, h) in self.held.iter().enumerate().rev() {
            if h.irq_context != ctx {
                break;
            }
            if h.instance == instance {
                return Some(i);
            }
            // A merged (nest-lock) entry stands for any instance of its class.
            if h.references > 0 && Some(h.class) == class_of_instance {
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path writes a whole entry per new acquisition: keep it small (a one-word site,
    /// a one-word repeat key and the map's key word), and a power of two, so that a stack
    /// depth is a shift of a pointer difference.
    #[test]
    fn a_held_entry_is_64_bytes() {
        assert_eq!(std::mem::size_of::<HeldLock>(), 64);
    }

    #[test]
    fn the_blocker_count_follows_pushes_pops_and_the_context() {
        let mut t = Task::new("t", 1);
        let entry = |irq_context: u8, wait_inner: WaitType| HeldLock {
            instance: 1,
            check: true,
            irq_context,
            wait_inner,
            ..filler()
        };
        assert!(t.fast_ready());
        t.held.push(entry(0, WaitType::Sleep));
        assert!(t.fast_ready());
        t.held.push(entry(0, WaitType::Spin));
        t.held.push(entry(IRQ_CONTEXT_HARD, WaitType::Sleep));
        assert_eq!(t.held.blockers(), 2);
        t.update_context(|irq, _| irq.hardirqs_enabled = false);
        assert_eq!(t.held.blockers(), 3);
        t.held.discard_top();
        assert_eq!(t.held.blockers(), 2);
        let upper = t.held.split_off(1);
        assert_eq!((upper.len(), t.held.blockers()), (1, 1));
        t.update_context(|irq, non_block| {
            irq.hardirqs_enabled = true;
            *non_block += 1;
        });
        assert_eq!(t.held.blockers(), 1);
        t.update_context(|_, non_block| *non_block -= 1);
        assert!(t.fast_ready());
        t.held.push(entry(0, WaitType::Free));
        t.held.retain(|h| h.wait_inner != WaitType::Free);
        assert!(t.fast_ready());
        t.held.push(entry(0, WaitType::Config));
        t.held.clear();
        assert!(t.fast_ready());
    }
}
