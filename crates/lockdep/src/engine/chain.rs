//! Lock chains: the cache that makes an already-seen acquisition cheap.
//!
//! A *chain* is the sequence of held locks of the current irq context plus the lock being
//! acquired. If exactly this chain was validated before, the acquisition can add no new
//! dependency and can close no new cycle, so it skips all graph work: the kernel's
//! `lookup_chain_cache`. We differ from the kernel in two ways (see `decisions.md`):
//!
//! - a chain element is the class *and* everything else that decides which dependencies the
//!   acquisition adds: the read kind, the trylock flag (the walk over the held locks stops at the
//!   first one that was not a trylock), whether the lock was taken under a nest lock (a nested
//!   re-acquisition of a class adds no dependency) and whether it is validated at all
//!   (`check = 0` locks get none). The kernel's key leaves the last three out, and so can skip a
//!   dependency or a recursion report;
//! - chain identity is exact: no hash stands for a chain, so no collision can hide anything.
//!
//! **Identity without hashing.** Each [`Task`](crate::Task) numbers the chains it meets as the
//! nodes of a trie: node 0 is the empty chain ([`ROOT`]), and the node for `parent + elem` is
//! found from the pair `(parent, elem)`. Each held lock remembers the node of the chain below
//! it, so a release restores the task's node in one store, and an acquisition looks up one pair.
//! Two different chains can never share a node, because a node *is* its path from the root.
//!
//! **Three levels.** A task's trie carries per node whether the chain was validated. Its
//! [`recent`](TaskChains::recent) table, a small direct-mapped cache of `(parent, elem) → child`,
//! holds only the chains that the *fast path* may take: validated (or trylocks), with every
//! usage bit the acquisition would set already set, acquired in process context with interrupts
//! enabled. A hit there touches no shared memory at all, so threads with private locks scale. A
//! task-level miss consults the engine's table of all validated chains (under the engine's
//! lock), keyed by their exact elements, and only a miss there runs the validation proper.

use rustc_hash::FxHashMap;

use crate::engine::held::HeldLock;
use crate::lock::class::ClassId;
use crate::lock::map::ReadKind;
use crate::lock::wait::WaitType;

/// A chain as a task numbers it: a node of the task's trie.
pub(crate) type ChainId = u32;

/// The empty chain (the first lock of an irq context starts from here).
pub(crate) const ROOT: ChainId = 0;

/// One element of a chain: class index, read kind and three flags packed in 32 bits.
pub(crate) type ChainElem = u32;

const READ_SHIFT: u32 = 27;
const TRYLOCK_BIT: u32 = 1 << 29;
const NEST_BIT: u32 = 1 << 30;
const NOCHECK_BIT: u32 = 1 << 31;
/// The largest class index a chain element can hold.
pub(crate) const MAX_CLASSES: u32 = 1 << READ_SHIFT;
/// An element no acquisition makes (read kind 3 does not exist): marks an empty `recent` slot.
const NO_ELEM: ChainElem = 3 << READ_SHIFT;

/// The element of a plain checked acquisition (no nest lock).
#[inline]
pub(crate) fn elem(class: ClassId, read: ReadKind, trylock: bool) -> ChainElem {
    class.0 | ((read as u32) << READ_SHIFT) | if trylock { TRYLOCK_BIT } else { 0 }
}

/// The element a held lock contributes to the chains above it.
pub(crate) fn elem_of(h: &HeldLock) -> ChainElem {
    elem(h.class, h.read, h.trylock)
        | if h.nest != 0 { NEST_BIT } else { 0 }
        | if h.check { 0 } else { NOCHECK_BIT }
}

pub(crate) fn elem_class(e: ChainElem) -> ClassId {
    ClassId(e & (MAX_CLASSES - 1))
}

/// The elements of the chain that acquiring `new` on top of `held[first..]` makes.
pub(crate) fn chain_elems(held: &[HeldLock], first: usize, new: ChainElem) -> Vec<ChainElem> {
    let mut v = Vec::with_capacity(held.len() - first + 1);
    v.extend(held[first..].iter().map(elem_of));
    v.push(new);
    v
}

/// What the fast path needs of a chain it may take: the node, and the new lock's inner wait type
/// (copied into the held entry).
#[derive(Clone, Copy, Debug)]
struct Recent {
    parent: ChainId,
    elem: ChainElem,
    child: ChainId,
    wait_inner: WaitType,
}

const EMPTY: Recent = Recent {
    parent: ROOT,
    elem: NO_ELEM,
    child: ROOT,
    wait_inner: WaitType::Inv,
};

/// Slots of the direct-mapped `recent` table (a power of two).
const RECENT_SLOTS: usize = 64;

/// The slot of `(parent, e)`: cheap (it is on the fast path's critical path), and class ids and
/// chain numbers are small dense integers, so the low bits spread well.
#[inline]
fn recent_slot(parent: ChainId, e: ChainElem) -> usize {
    ((parent << 3 ^ e) as usize) & (RECENT_SLOTS - 1)
}

/// A task's private trie of chains.
#[derive(Debug)]
pub(crate) struct TaskChains {
    /// Per node: whether the chain was validated (for this task's engine).
    validated: Vec<bool>,
    /// `(parent, elem) → child`.
    children: FxHashMap<(ChainId, ChainElem), ChainId>,
    /// The chains the fast path may take, direct-mapped by `(parent, elem)`.
    recent: [Recent; RECENT_SLOTS],
    /// Every chain ever put in `recent` (a slot holds one of them; the rest refill it).
    fast: FxHashMap<(ChainId, ChainElem), (ChainId, WaitType)>,
}

impl Default for TaskChains {
    fn default() -> Self {
        TaskChains {
            validated: vec![true],
            children: FxHashMap::default(),
            recent: [EMPTY; RECENT_SLOTS],
            fast: FxHashMap::default(),
        }
    }
}

impl TaskChains {
    /// The fast path's lookup: the chain `parent + e` and its lock's inner wait type, if the
    /// fast path may take it. Exact: a hit compares the whole `(parent, elem)` key.
    #[inline]
    pub(crate) fn recent(&self, parent: ChainId, e: ChainElem) -> Option<(ChainId, WaitType)> {
        let r = &self.recent[recent_slot(parent, e)];
        (r.parent == parent && r.elem == e).then_some((r.child, r.wait_inner))
    }

    /// The fast path's second chance, after a `recent` miss: the same answer from the full set,
    /// refilling the slot.
    #[inline(never)]
    pub(crate) fn refill(&mut self, parent: ChainId, e: ChainElem) -> Option<(ChainId, WaitType)> {
        let (child, wait_inner) = *self.fast.get(&(parent, e))?;
        self.put_recent(parent, e, child, wait_inner);
        Some((child, wait_inner))
    }

    fn put_recent(&mut self, parent: ChainId, e: ChainElem, child: ChainId, wait_inner: WaitType) {
        self.recent[recent_slot(parent, e)] = Recent {
            parent,
            elem: e,
            child,
            wait_inner,
        };
    }

    /// The node of `parent + e`, numbered now if the task has not met it.
    pub(crate) fn child(&mut self, parent: ChainId, e: ChainElem) -> ChainId {
        let next = self.validated.len() as ChainId;
        let id = *self.children.entry((parent, e)).or_insert(next);
        if id == next {
            self.validated.push(false);
        }
        id
    }

    /// Whether the chain `id` is known validated.
    pub(crate) fn is_validated(&self, id: ChainId) -> bool {
        self.validated[id as usize]
    }

    pub(crate) fn set_validated(&mut self, id: ChainId) {
        self.validated[id as usize] = true;
    }

    /// Lets the fast path take `parent + e` (node `child`) from now on. The caller vouches that
    /// the state the fast path checks for makes every rule vacuous for this acquisition.
    pub(crate) fn allow_fast(
        &mut self,
        parent: ChainId,
        e: ChainElem,
        child: ChainId,
        wait_inner: WaitType,
    ) {
        self.fast.insert((parent, e), (child, wait_inner));
        self.put_recent(parent, e, child, wait_inner);
    }

    /// Forgets what was learnt from an engine (validations, fast chains). The numbering stays:
    /// held locks keep their nodes, and a node still means the same sequence of elements.
    pub(crate) fn clear(&mut self) {
        self.validated.iter_mut().for_each(|v| *v = false);
        self.validated[ROOT as usize] = true;
        self.fast.clear();
        self.recent = [EMPTY; RECENT_SLOTS];
    }
}

/// A validated chain as the engine stores it (for `/proc/lockdep_chains`).
#[derive(Clone, Debug)]
pub struct ChainInfo {
    /// The irq context bits of the chain (1 softirq, 2 hardirq).
    pub irq_context: u8,
    /// The classes of the chain, oldest first.
    pub classes: Vec<ClassId>,
}

/// The engine's table of all validated chains, keyed by their exact elements.
#[derive(Debug, Default)]
pub(crate) struct EngineChains {
    pub(crate) set: FxHashMap<Box<[ChainElem]>, u8>,
}

impl EngineChains {
    pub(crate) fn contains(&self, elems: &[ChainElem]) -> bool {
        self.set.contains_key(elems)
    }

    pub(crate) fn insert(&mut self, elems: Box<[ChainElem]>, irq_context: u8) {
        self.set.insert(elems, irq_context);
    }

    /// Drops every chain that contains `class` (a zapped class).
    pub(crate) fn remove_class(&mut self, class: ClassId) {
        self.set
            .retain(|k, _| !k.iter().any(|e| elem_class(*e) == class));
    }

    pub(crate) fn infos(&self) -> Vec<ChainInfo> {
        self.set
            .iter()
            .map(|(e, ctx)| ChainInfo {
                irq_context: *ctx,
                classes: e.iter().map(|e| elem_class(*e)).collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_class_read_and_trylock_apart() {
        let a = elem(ClassId(5), ReadKind::Exclusive, false);
        let b = elem(ClassId(5), ReadKind::SharedRecursive, false);
        let c = elem(ClassId(5), ReadKind::Exclusive, true);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
        assert_eq!(elem_class(b), ClassId(5));
        assert_eq!(elem_class(c), ClassId(5));
        for e in [a, b, c] {
            assert_ne!(e, NO_ELEM);
        }
        let biggest = elem(ClassId(MAX_CLASSES - 1), ReadKind::SharedRecursive, true);
        assert_ne!(biggest | NEST_BIT | NOCHECK_BIT, NO_ELEM);
        assert_eq!(elem_class(biggest | NEST_BIT), ClassId(MAX_CLASSES - 1));
    }

    #[test]
    fn nodes_are_paths_so_order_and_parents_matter() {
        let mut t = TaskChains::default();
        let (a, b) = (
            elem(ClassId(1), ReadKind::Exclusive, false),
            elem(ClassId(2), ReadKind::Exclusive, false),
        );
        let na = t.child(ROOT, a);
        let ab = t.child(na, b);
        let nb = t.child(ROOT, b);
        let ba = t.child(nb, a);
        assert_eq!(
            [na, ab, nb, ba]
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            4
        );
        assert_eq!(t.child(na, b), ab, "the same path is the same node");
        assert!(t.is_validated(ROOT));
        assert!(!t.is_validated(ab));
    }

    #[test]
    fn recent_is_exact_even_when_slots_collide() {
        let mut t = TaskChains::default();
        // Far more chains than slots: every slot is shared by many keys.
        let mut expect = Vec::new();
        for class in 0..1000u32 {
            let e = elem(ClassId(class), ReadKind::Exclusive, false);
            let parent = class % 7;
            let child = t.child(parent, e);
            t.allow_fast(parent, e, child, WaitType::Sleep);
            expect.push((parent, e, child));
        }
        for &(parent, e, child) in &expect {
            match t.recent(parent, e) {
                Some((c, _)) => assert_eq!(c, child),
                None => assert_eq!(t.refill(parent, e).map(|r| r.0), Some(child)),
            }
            assert_eq!(t.recent(parent, e).map(|r| r.0), Some(child));
        }
        // A key never allowed is never found, whatever shares its slot.
        let stranger = elem(ClassId(5000), ReadKind::Shared, false);
        assert!(t.recent(3, stranger).is_none());
        assert!(t.refill(3, stranger).is_none());
        t.clear();
        assert!(expect.iter().all(|&(p, e, _)| t.recent(p, e).is_none()));
        assert!(expect.iter().all(|&(_, _, c)| !t.is_validated(c)));
    }
}
