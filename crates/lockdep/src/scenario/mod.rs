//! Scenario files (`*.lockdep`): parse them and replay them through the engine.
