//! Introspection: the classes, dependencies, chains and counters of an engine.

use super::*;

impl Engine {
    /// Every dependency, in the order they were found.
    pub fn dependencies(&self) -> Vec<Dependency> {
        let st = self.state.lock();
        st.graph.edges.iter().map(Dependency::of).collect()
    }

    /// The direct dependency `from -> to`, if recorded.
    pub fn dependency(&self, from: ClassId, to: ClassId) -> Option<Dependency> {
        let st = self.state.lock();
        let e = st.graph.edge(st.graph.find(from, to)?);
        Some(Dependency::of(e))
    }

    /// The number of classes reachable from `c` (forward) and reaching it (backward).
    pub fn reachable_counts(&self, c: ClassId) -> (usize, usize) {
        let mut st = self.state.lock();
        (
            st.graph.count_reachable(c, Direction::Forward),
            st.graph.count_reachable(c, Direction::Backward),
        )
    }

    /// Every validated chain.
    pub fn chains(&self) -> Vec<ChainInfo> {
        self.state.lock().chains.infos()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let st = self.state.lock();
        let mut s = st.stats.clone();
        s.chains = st.chains.set.len();
        s.stack_traces = st.stacks.len();
        s.classes = self.classes.count();
        s
    }
}
