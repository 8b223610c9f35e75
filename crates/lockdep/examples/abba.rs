//! Two threads take two locks in opposite orders, one after the other: no thread ever blocks,
//! and lockdep still reports the potential deadlock, with the stack that created each edge.
//!
//! Run: `cargo run -p lockdep --example abba`

use std::thread;

use lockdep::Mutex;

static CHECKING: Mutex<u64> = Mutex::new(100);
static SAVINGS: Mutex<u64> = Mutex::new(100);

fn to_savings(n: u64) {
    let mut from = CHECKING.lock();
    let mut to = SAVINGS.lock();
    *from -= n;
    *to += n;
}

fn to_checking(n: u64) {
    let mut from = SAVINGS.lock();
    let mut to = CHECKING.lock(); // the opposite order
    *from -= n;
    *to += n;
}

fn main() {
    thread::spawn(|| to_savings(10)).join().unwrap();
    thread::spawn(|| to_checking(5)).join().unwrap(); // never blocks, still reported
    println!(
        "checking = {}, savings = {}",
        CHECKING.lock(),
        SAVINGS.lock()
    );
}
