//! Two threads take two locks in opposite orders, one after the other: no thread ever blocks,
//! and lockdep still reports the potential deadlock, with the stack that created each edge.
//!
//! Run: `cargo run --example abba`

use std::sync::Arc;
use std::thread;

use lockdep::Mutex;

struct Accounts {
    checking: Mutex<u64>,
    savings: Mutex<u64>,
}

fn transfer_to_savings(acc: &Accounts, amount: u64) {
    let mut from = acc.checking.lock();
    let mut to = acc.savings.lock();
    *from -= amount;
    *to += amount;
}

fn transfer_to_checking(acc: &Accounts, amount: u64) {
    let mut from = acc.savings.lock();
    let mut to = acc.checking.lock(); // lockdep: possible circular locking dependency
    *from -= amount;
    *to += amount;
}

fn main() {
    let acc = Arc::new(Accounts {
        checking: Mutex::new(100),
        savings: Mutex::new(100),
    });
    let a = acc.clone();
    thread::Builder::new()
        .name("payroll".into())
        .spawn(move || transfer_to_savings(&a, 10))
        .unwrap()
        .join()
        .unwrap();
    let b = acc.clone();
    thread::Builder::new()
        .name("refunds".into())
        .spawn(move || transfer_to_checking(&b, 5))
        .unwrap()
        .join()
        .unwrap();
    println!(
        "checking = {}, savings = {}",
        acc.checking.lock(),
        acc.savings.lock()
    );
}
