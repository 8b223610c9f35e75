//! A property test of the core rule: on random multi-task programs over 2 to 6 classes, with all
//! three acquire kinds, trylocks and out-of-order releases, the validator reports a circular
//! dependency exactly when a brute-force search over every dependency the program created (by
//! the kernel's rules) finds a strong cycle.
//!
//! The oracle shares no code with the engine: it rebuilds the dependencies from the program
//! (each non-trylock acquisition depends on the held locks from the top down to the first one
//! that was not a trylock; a release out of order re-acquires the locks above it) and tries
//! every simple cycle with every choice of dependency types.

use std::collections::BTreeMap;

use lockdep::{Acquire, Engine, LockClassKey, LockMap, ReadKind, ReportKind, Site, Task};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Acquire {
        task: usize,
        class: usize,
        read: ReadKind,
        trylock: bool,
    },
    /// Release the held lock at this position (modulo the depth) of the task's stack.
    Release { task: usize, pick: usize },
}

fn op(classes: usize) -> impl Strategy<Value = Op> {
    let read = prop_oneof![
        Just(ReadKind::Exclusive),
        Just(ReadKind::Shared),
        Just(ReadKind::SharedRecursive)
    ];
    prop_oneof![
        3 => (0..3usize, 0..classes, read, proptest::bool::weighted(0.2)).prop_map(
            |(task, class, read, trylock)| Op::Acquire { task, class, read, trylock }
        ),
        2 => (0..3usize, 0..8usize).prop_map(|(task, pick)| Op::Release { task, pick }),
    ]
}

fn program() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (2..=6usize).prop_flat_map(|n| (Just(n), proptest::collection::vec(op(n), 1..40)))
}

/// `dep` bit of `prev -> next`, as the kernel defines it (written out again on purpose).
fn dep_bit(prev: ReadKind, next: ReadKind) -> u8 {
    let prev_exclusive = prev == ReadKind::Exclusive;
    let next_recursive = next == ReadKind::SharedRecursive;
    match (prev_exclusive, next_recursive) {
        (false, true) => 1,  // SR
        (true, true) => 2,   // ER
        (false, false) => 4, // SN
        (true, false) => 8,  // EN
    }
}

#[derive(Clone, Copy, Debug)]
struct Held {
    class: usize,
    read: ReadKind,
    trylock: bool,
}

/// The dependencies one acquisition creates on top of `held`.
fn deps_of(held: &[Held], new: Held, out: &mut BTreeMap<(usize, usize), u8>) {
    if new.trylock {
        return;
    }
    for h in held.iter().rev() {
        *out.entry((h.class, new.class)).or_default() |= dep_bit(h.read, new.read);
        if !h.trylock {
            break;
        }
    }
}

/// Runs the program through a fresh engine; returns whether it reported a circular dependency,
/// and the oracle's dependency set.
fn run(classes: usize, ops: &[Op]) -> (bool, BTreeMap<(usize, usize), u8>) {
    let engine = Engine::new();
    let maps: Vec<LockMap> = (0..classes)
        .map(|i| LockMap::named(LockClassKey::new_dynamic(format!("c{i}"))))
        .collect();
    let mut tasks: Vec<Task> = (0..3)
        .map(|i| Task::simulated(format!("t{i}"), i as u32 + 1))
        .collect();
    let mut stacks: Vec<Vec<Held>> = vec![Vec::new(); 3];
    let mut deps = BTreeMap::new();
    let mut circular = false;
    for op in ops {
        match *op {
            Op::Acquire {
                task,
                class,
                read,
                trylock,
            } => {
                // Same-class nesting is the recursion rule's business, not this test's.
                if stacks[task].iter().any(|h| h.class == class) {
                    continue;
                }
                let new = Held {
                    class,
                    read,
                    trylock,
                };
                deps_of(&stacks[task], new, &mut deps);
                stacks[task].push(new);
                let how = Acquire::exclusive().with_read(read).trylock(trylock);
                let r = engine.acquire(&mut tasks[task], &maps[class], how, Site::Unknown);
                if let Some(r) = r {
                    assert_eq!(r.kind, ReportKind::Circular, "{}", r.render());
                    circular = true;
                }
            }
            Op::Release { task, pick } => {
                if stacks[task].is_empty() {
                    continue;
                }
                let i = pick % stacks[task].len();
                let h = stacks[task].remove(i);
                // The locks above are acquired again on top of what is left.
                let upper: Vec<Held> = stacks[task].drain(i..).collect();
                for u in upper {
                    deps_of(&stacks[task], u, &mut deps);
                    stacks[task].push(u);
                }
                let r = engine.release(&mut tasks[task], &maps[h.class], Site::Unknown);
                if let Some(r) = r {
                    assert_eq!(r.kind, ReportKind::Circular, "{}", r.render());
                    circular = true;
                }
            }
        }
    }
    (circular, deps)
}

/// Whether some simple cycle, with some choice of dependency types on its edges, is strong: no
/// `-(xR)->` edge followed by a `-(Sx)->` edge, around the whole cycle.
fn has_strong_cycle(n: usize, deps: &BTreeMap<(usize, usize), u8>) -> bool {
    fn types(bits: u8) -> impl Iterator<Item = u8> {
        [1u8, 2, 4, 8].into_iter().filter(move |b| bits & b != 0)
    }
    let ends_r = |t: u8| t == 1 || t == 2;
    let starts_s = |t: u8| t == 1 || t == 4;
    // Every cycle as a sequence of distinct nodes, starting at its smallest node.
    fn cycles(
        n: usize,
        deps: &BTreeMap<(usize, usize), u8>,
        path: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        let last = *path.last().unwrap();
        for next in 0..n {
            if !deps.contains_key(&(last, next)) {
                continue;
            }
            if next == path[0] {
                out.push(path.clone());
            } else if next > path[0] && !path.contains(&next) {
                path.push(next);
                cycles(n, deps, path, out);
                path.pop();
            }
        }
    }
    let mut all = Vec::new();
    for s in 0..n {
        cycles(n, deps, &mut vec![s], &mut all);
    }
    all.iter().any(|cycle| {
        let edges: Vec<u8> = (0..cycle.len())
            .map(|i| deps[&(cycle[i], cycle[(i + 1) % cycle.len()])])
            .collect();
        // Try every assignment of one type per edge.
        fn assign(edges: &[u8], chosen: &mut Vec<u8>, ok: &dyn Fn(&[u8]) -> bool) -> bool {
            if chosen.len() == edges.len() {
                return ok(chosen);
            }
            for t in types(edges[chosen.len()]) {
                chosen.push(t);
                if assign(edges, chosen, ok) {
                    return true;
                }
                chosen.pop();
            }
            false
        }
        let strong =
            |ts: &[u8]| (0..ts.len()).all(|i| !(ends_r(ts[i]) && starts_s(ts[(i + 1) % ts.len()])));
        assign(&edges, &mut Vec::new(), &strong)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_validator_reports_exactly_the_strong_cycles((classes, ops) in program()) {
        let (reported, deps) = run(classes, &ops);
        let oracle = has_strong_cycle(classes, &deps);
        prop_assert_eq!(reported, oracle, "deps: {:?}", deps);
    }
}

#[test]
fn the_oracle_knows_the_textbook_cases() {
    let m = |v: &[((usize, usize), u8)]| v.iter().copied().collect::<BTreeMap<_, _>>();
    // ABBA with writers: strong.
    assert!(has_strong_cycle(2, &m(&[((0, 1), 8), ((1, 0), 8)])));
    // All recursive reads: R(A) R(B) | R(B) R(A) is not.
    assert!(!has_strong_cycle(2, &m(&[((0, 1), 1), ((1, 0), 1)])));
    // -(ER)-> then -(SN)->: not strong; with -(EN)-> also on the second edge: strong.
    assert!(!has_strong_cycle(2, &m(&[((0, 1), 2), ((1, 0), 4)])));
    assert!(has_strong_cycle(2, &m(&[((0, 1), 2), ((1, 0), 4 | 8)])));
}

#[test]
fn the_generator_exercises_both_verdicts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut yes, mut no) = (0, 0);
    for _ in 0..500 {
        let (classes, ops) = program().new_tree(&mut runner).unwrap().current();
        let (reported, deps) = run(classes, &ops);
        assert_eq!(reported, has_strong_cycle(classes, &deps));
        if reported {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes >= 50 && no >= 50, "{yes} cycles, {no} without");
}
