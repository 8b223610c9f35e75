//! The dependency graph over classes, and the strong-path search that finds deadlocks.
//!
//! An edge `A -> B` means "B was acquired while A was held". Each edge remembers where it was
//! first seen (stack and task) and which *dependency types* it has been seen with, named after
//! what the first lock blocks and what blocks the second (Boqun Feng's model, kernel 5.10+):
//!
//! | bit | type | prev held as | next taken as |
//! |---|---|---|---|
//! | [`DEP_SR`] | `-(SR)->` | shared | recursive read |
//! | [`DEP_ER`] | `-(ER)->` | exclusive | recursive read |
//! | [`DEP_SN`] | `-(SN)->` | shared | non-recursive (write or read) |
//! | [`DEP_EN`] | `-(EN)->` | exclusive | non-recursive |
//!
//! A cycle is a deadlock only if it is *strong*: no `-(xR)->` edge is followed by a `-(Sx)->`
//! edge (a recursive reader does not block a shared holder). The search is a breadth-first search
//! over states `(class, only_xr)`, where `only_xr` says the path so far ends in an `-(xR)->`
//! edge, so only an `-(Ex)->` edge may follow. Unlike the kernel, which marks a *class* visited
//! before applying the filter and can so miss a strong cycle, we keep both states per class and
//! let the stronger one (`only_xr == false`) dominate: the verdict is exactly the definition.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::class::ClassId;
use crate::map::ReadKind;
use crate::stack::StackTrace;

/// `-(SR)->`: prev shared, next recursive reader.
pub const DEP_SR: u8 = 1 << 0;
/// `-(ER)->`: prev exclusive, next recursive reader.
pub const DEP_ER: u8 = 1 << 1;
/// `-(SN)->`: prev shared, next non-recursive.
pub const DEP_SN: u8 = 1 << 2;
/// `-(EN)->`: prev exclusive, next non-recursive.
pub const DEP_EN: u8 = 1 << 3;

const DEP_S_FIRST: u8 = DEP_SR | DEP_SN;
const DEP_N_LAST: u8 = DEP_SN | DEP_EN;

/// The dependency type of `prev -> next` for the given read kinds.
pub fn dep_type(prev: ReadKind, next: ReadKind) -> u8 {
    let exclusive = (prev == ReadKind::Exclusive) as u8;
    let non_recursive = (next != ReadKind::SharedRecursive) as u8;
    1 << (exclusive + (non_recursive << 1))
}

/// The names of the dependency types in `dep`, e.g. `"EN|SR"`.
pub fn dep_names(dep: u8) -> String {
    let mut v = Vec::new();
    for (bit, name) in [
        (DEP_EN, "EN"),
        (DEP_ER, "ER"),
        (DEP_SN, "SN"),
        (DEP_SR, "SR"),
    ] {
        if dep & bit != 0 {
            v.push(name);
        }
    }
    v.join("|")
}

/// Who created an edge first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskRef {
    /// The task's name.
    pub name: Arc<str>,
    /// The task's id.
    pub pid: u32,
    /// Where the task ran, for dependencies merged from several processes (process, test).
    pub origin: Option<Arc<str>>,
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.pid)
    }
}

/// An index into the graph's edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct EdgeId(pub(crate) u32);

/// A dependency `from -> to`.
#[derive(Clone, Debug)]
pub(crate) struct Edge {
    pub(crate) from: ClassId,
    pub(crate) to: ClassId,
    /// Union of every dependency type seen.
    pub(crate) dep: u8,
    /// 1 if the two locks were ever adjacent on a held stack.
    pub(crate) distance: u16,
    /// Where `to` was acquired with `from` held, the first time.
    pub(crate) stack: Arc<StackTrace>,
    pub(crate) task: TaskRef,
}

#[derive(Default, Clone, Debug)]
struct Node {
    after: Vec<EdgeId>,
    before: Vec<EdgeId>,
}

/// Which way a search walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Along `after` lists: what is acquired after this class.
    Forward,
    /// Along `before` lists: what is held when this class is acquired.
    Backward,
}

/// The class graph.
#[derive(Default)]
pub(crate) struct Graph {
    nodes: Vec<Node>,
    pub(crate) edges: Vec<Edge>,
    index: FxHashMap<(ClassId, ClassId), EdgeId>,
    // Search scratch space, reused: generation stamps per (class, only_xr) state.
    seen: Vec<u32>,
    parent: Vec<u32>,
    generation: u32,
    pub(crate) max_bfs_queue: usize,
}

/// A search result: the edges from the root to the matched class, in path order.
pub(crate) struct Path {
    pub(crate) edges: Vec<EdgeId>,
}

impl Graph {
    pub(crate) fn ensure_class(&mut self, c: ClassId) {
        if self.nodes.len() <= c.index() {
            self.nodes.resize(c.index() + 1, Node::default());
            self.seen.resize(2 * self.nodes.len(), 0);
            self.parent.resize(2 * self.nodes.len(), u32::MAX);
        }
    }

    pub(crate) fn edge(&self, id: EdgeId) -> &Edge {
        &self.edges[id.0 as usize]
    }

    pub(crate) fn find(&self, from: ClassId, to: ClassId) -> Option<EdgeId> {
        self.index.get(&(from, to)).copied()
    }

    /// Adds `from -> to` with type `dep`, or merges `dep` into the existing edge. Returns whether
    /// the edge is new.
    pub(crate) fn add(
        &mut self,
        from: ClassId,
        to: ClassId,
        dep: u8,
        distance: u16,
        stack: impl FnOnce() -> (Arc<StackTrace>, TaskRef),
    ) -> bool {
        self.ensure_class(from);
        self.ensure_class(to);
        if let Some(id) = self.find(from, to) {
            let e = &mut self.edges[id.0 as usize];
            e.dep |= dep;
            e.distance = e.distance.min(distance);
            return false;
        }
        let (stack, task) = stack();
        let id = EdgeId(self.edges.len() as u32);
        self.edges.push(Edge {
            from,
            to,
            dep,
            distance,
            stack,
            task,
        });
        self.index.insert((from, to), id);
        self.nodes[from.index()].after.push(id);
        self.nodes[to.index()].before.push(id);
        true
    }

    /// Breadth-first search for a strong path from `root` (entered in state `root_only_xr`) to a
    /// class for which `is_target(class, only_xr)` holds. Returns the shortest such path.
    ///
    /// Walking backward, an edge `p -> n` is read as "n, then p": its type letters swap roles, so
    /// the filter applies to the mirrored bits.
    pub(crate) fn search(
        &mut self,
        root: ClassId,
        root_only_xr: bool,
        dir: Direction,
        mut is_target: impl FnMut(ClassId, bool) -> bool,
    ) -> Option<Path> {
        self.ensure_class(root);
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        let gen = self.generation;
        let state = |c: ClassId, only_xr: bool| 2 * c.index() + only_xr as usize;

        let mut queue = VecDeque::new();
        self.seen[state(root, root_only_xr)] = gen;
        self.parent[state(root, root_only_xr)] = u32::MAX;
        queue.push_back((root, root_only_xr));
        while let Some((c, only_xr)) = queue.pop_front() {
            if is_target(c, only_xr) {
                return Some(self.path_to(c, only_xr, dir));
            }
            let list = match dir {
                Direction::Forward => &self.nodes[c.index()].after,
                Direction::Backward => &self.nodes[c.index()].before,
            };
            for &eid in list {
                let e = &self.edges[eid.0 as usize];
                let mut dep = match dir {
                    Direction::Forward => e.dep,
                    Direction::Backward => mirror(e.dep),
                };
                if only_xr {
                    dep &= !DEP_S_FIRST;
                }
                if dep == 0 {
                    continue;
                }
                let next_xr = dep & DEP_N_LAST == 0;
                let next = match dir {
                    Direction::Forward => e.to,
                    Direction::Backward => e.from,
                };
                // (next, false) dominates (next, true).
                if self.seen[state(next, false)] == gen
                    || (next_xr && self.seen[state(next, true)] == gen)
                {
                    continue;
                }
                self.seen[state(next, next_xr)] = gen;
                self.parent[state(next, next_xr)] = (eid.0 << 1) | only_xr as u32;
                queue.push_back((next, next_xr));
            }
            self.max_bfs_queue = self.max_bfs_queue.max(queue.len());
        }
        None
    }

    fn path_to(&self, end: ClassId, only_xr: bool, dir: Direction) -> Path {
        let mut edges = Vec::new();
        let (mut c, mut xr) = (end, only_xr);
        loop {
            let p = self.parent[2 * c.index() + xr as usize];
            if p == u32::MAX {
                break;
            }
            let e = &self.edges[(p >> 1) as usize];
            edges.push(EdgeId(p >> 1));
            c = match dir {
                Direction::Forward => e.from,
                Direction::Backward => e.to,
            };
            xr = p & 1 == 1;
        }
        edges.reverse();
        Path { edges }
    }

    /// The number of classes reachable from `c` (forward) or reaching it (backward), for the
    /// `/proc/lockdep` FD/BD columns.
    pub(crate) fn count_reachable(&mut self, c: ClassId, dir: Direction) -> usize {
        let mut n = 0usize;
        self.search(c, false, dir, |x, _| {
            if x != c {
                n += 1;
            }
            false
        });
        n
    }
}

/// The dependency bits of an edge read backward: `SN` and `ER` swap places.
fn mirror(dep: u8) -> u8 {
    (dep & (DEP_SR | DEP_EN)) | ((dep & DEP_ER) << 1) | ((dep & DEP_SN) >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> (Arc<StackTrace>, TaskRef) {
        (
            Arc::new(StackTrace::symbolic(vec![])),
            TaskRef {
                name: "t".into(),
                pid: 1,
                origin: None,
            },
        )
    }

    const A: ClassId = ClassId(0);
    const B: ClassId = ClassId(1);
    const C: ClassId = ClassId(2);

    #[test]
    fn dep_types_follow_the_table() {
        use ReadKind::*;
        assert_eq!(dep_type(Shared, SharedRecursive), DEP_SR);
        assert_eq!(dep_type(SharedRecursive, SharedRecursive), DEP_SR);
        assert_eq!(dep_type(Exclusive, SharedRecursive), DEP_ER);
        assert_eq!(dep_type(Shared, Exclusive), DEP_SN);
        assert_eq!(dep_type(Shared, Shared), DEP_SN);
        assert_eq!(dep_type(Exclusive, Exclusive), DEP_EN);
        assert_eq!(dep_type(Exclusive, Shared), DEP_EN);
    }

    #[test]
    fn mirror_swaps_sn_and_er() {
        assert_eq!(mirror(DEP_SN), DEP_ER);
        assert_eq!(mirror(DEP_ER), DEP_SN);
        assert_eq!(mirror(DEP_SR), DEP_SR);
        assert_eq!(mirror(DEP_EN), DEP_EN);
    }

    #[test]
    fn finds_a_path_of_any_length() {
        let mut g = Graph::default();
        g.add(A, B, DEP_EN, 1, t);
        g.add(B, C, DEP_EN, 1, t);
        let p = g
            .search(A, false, Direction::Forward, |c, _| c == C)
            .unwrap();
        assert_eq!(p.edges.len(), 2);
        assert_eq!(g.edge(p.edges[0]).from, A);
        assert_eq!(g.edge(p.edges[1]).to, C);
        assert!(g
            .search(C, false, Direction::Forward, |c, _| c == A)
            .is_none());
        let b = g
            .search(C, false, Direction::Backward, |c, _| c == A)
            .unwrap();
        assert_eq!(b.edges.len(), 2);
    }

    #[test]
    fn a_recursive_read_edge_may_not_be_followed_by_a_shared_one() {
        let mut g = Graph::default();
        // A -(ER)-> B -(SN)-> C: not strong.
        g.add(A, B, DEP_ER, 1, t);
        g.add(B, C, DEP_SN, 1, t);
        assert!(g
            .search(A, false, Direction::Forward, |c, _| c == C)
            .is_none());
        // Adding -(EN)-> to the second edge makes it strong.
        g.add(B, C, DEP_EN, 1, t);
        assert!(g
            .search(A, false, Direction::Forward, |c, _| c == C)
            .is_some());
    }

    #[test]
    fn the_strong_state_is_explored_even_after_the_weak_one() {
        // A -(ER)-> B, A -(EN)-> X -(EN)-> B, B -(SN)-> C. The path through X reaches B later but
        // in the strong state; the kernel's per-class visit would miss A ~> C.
        let x = ClassId(3);
        let mut g = Graph::default();
        g.add(A, B, DEP_ER, 1, t);
        g.add(A, x, DEP_EN, 1, t);
        g.add(x, B, DEP_EN, 1, t);
        g.add(B, C, DEP_SN, 1, t);
        let p = g
            .search(A, false, Direction::Forward, |c, _| c == C)
            .unwrap();
        assert_eq!(p.edges.len(), 3);
    }
}
