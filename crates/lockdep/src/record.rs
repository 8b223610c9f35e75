//! Recording dependency graphs to disk as the engine finds them, and reading them back.
