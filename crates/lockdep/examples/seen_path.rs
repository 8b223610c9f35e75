//! A loop of uncontended `lockdep::Mutex` lock/unlock on the already-seen path, for instruction
//! counts: `valgrind --tool=callgrind target/release/examples/seen_path N` for two values of `N`;
//! the difference divided by the difference in `N` is the cost of one lock and unlock.
//! `LOCKDEP_STAT=1` measures the same loop with lock statistics on.

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let m = lockdep::Mutex::new(0u64);
    for _ in 0..n {
        *m.lock() += 1;
    }
    assert_eq!(*m.lock(), n);
}
