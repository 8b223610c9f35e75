//! The /proc views: `/proc/lockdep`, `/proc/lockdep_chains` and `/proc/lockdep_stats`, as text
//! and as values.
