//! Lock chains: the cache that makes an already-seen acquisition cheap.
//!
//! A *chain* is the sequence of held locks of the current irq context plus the lock being
//! acquired. If exactly this chain was validated before, the acquisition can add no new
//! dependency and can close no new cycle, so it skips all graph work: the kernel's
//! `lookup_chain_cache`. We differ from the kernel in two ways (see `decisions.md`):
//!
//! - a chain element is the class *and* the read kind *and* the trylock flag of each lock,
//!   because the trylock flags of the held locks decide which of them get a direct dependency on
//!   the new lock; the kernel leaves the trylock flag out and so can skip a new dependency;
//! - a hit is confirmed against the stored elements, not only their 64-bit hash, so a hash
//!   collision can never hide a dependency.
//!
//! The cache has two levels. Each [`Task`](crate::Task) keeps its own map of the chains it has
//! seen validated: a hit there touches no shared memory at all, so threads with private locks
//! scale. A task-level miss consults the engine's table of all validated chains (under the
//! engine's lock), and only a miss there runs the validation proper.

use rustc_hash::FxHashMap;

use crate::class::ClassId;
use crate::held::HeldLock;
use crate::map::ReadKind;

/// The chain key of an empty stack (the kernel's `INITIAL_CHAIN_KEY`).
pub(crate) const INITIAL_CHAIN_KEY: u64 = u64::MAX;

/// One element of a chain: class index, read kind and trylock flag packed in 32 bits.
pub(crate) type ChainElem = u32;

const READ_SHIFT: u32 = 28;
const TRYLOCK_BIT: u32 = 1 << 30;
/// The largest class index a chain element can hold.
pub(crate) const MAX_CLASSES: u32 = 1 << READ_SHIFT;

pub(crate) fn elem(class: ClassId, read: ReadKind, trylock: bool) -> ChainElem {
    class.0 | ((read as u32) << READ_SHIFT) | if trylock { TRYLOCK_BIT } else { 0 }
}

pub(crate) fn elem_of(h: &HeldLock) -> ChainElem {
    elem(h.class, h.read, h.trylock)
}

pub(crate) fn elem_class(e: ChainElem) -> ClassId {
    ClassId(e & (MAX_CLASSES - 1))
}

/// Folds one element into a chain key (a 64-bit mix; collisions only cost a lookup).
pub(crate) fn iterate_chain_key(key: u64, e: ChainElem) -> u64 {
    let x = (key ^ u64::from(e)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// The elements of the chain that acquiring `new` on top of `held[first..]` makes.
pub(crate) fn chain_elems(held: &[HeldLock], first: usize, new: ChainElem) -> Vec<ChainElem> {
    let mut v = Vec::with_capacity(held.len() - first + 1);
    v.extend(held[first..].iter().map(elem_of));
    v.push(new);
    v
}

fn same_chain(stored: &[ChainElem], held: &[HeldLock], first: usize, new: ChainElem) -> bool {
    let held = &held[first..];
    stored.len() == held.len() + 1
        && stored[..held.len()]
            .iter()
            .zip(held)
            .all(|(s, h)| *s == elem_of(h))
        && stored[held.len()] == new
}

/// A task's private set of chains known to be validated.
#[derive(Debug, Default)]
pub(crate) struct TaskChains {
    map: FxHashMap<u64, Box<[ChainElem]>>,
}

impl TaskChains {
    /// Whether the chain `held[first..] + new`, with hash `key`, is known validated.
    #[inline]
    pub(crate) fn contains(
        &self,
        key: u64,
        held: &[HeldLock],
        first: usize,
        new: ChainElem,
    ) -> bool {
        match self.map.get(&key) {
            Some(stored) => same_chain(stored, held, first, new),
            None => false,
        }
    }

    pub(crate) fn insert(&mut self, key: u64, elems: Box<[ChainElem]>) {
        // On a (rare) hash collision the newer chain replaces the older one: both stay correct,
        // the older one just goes back to the engine's table next time.
        self.map.insert(key, elems);
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
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
    }

    #[test]
    fn the_key_depends_on_order() {
        let (a, b) = (
            elem(ClassId(1), ReadKind::Exclusive, false),
            elem(ClassId(2), ReadKind::Exclusive, false),
        );
        let ab = iterate_chain_key(iterate_chain_key(INITIAL_CHAIN_KEY, a), b);
        let ba = iterate_chain_key(iterate_chain_key(INITIAL_CHAIN_KEY, b), a);
        assert_ne!(ab, ba);
    }
}
