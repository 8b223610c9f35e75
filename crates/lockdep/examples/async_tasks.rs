//! Async code: tracked tokio tasks, tokio's locks, and a blocking lock held across an await.
//!
//! `cargo run -p lockdep --features tokio --example async_tasks` prints two reports: the
//! inversion between two tokio mutexes taken in opposite orders by two tasks that never run at
//! the same time, and a `lockdep::Mutex` guard that lives across a suspension.

// The guard held across an await below is the point of the example (clippy's lint sees it too).
#![allow(clippy::await_holding_lock)]

use std::sync::Arc;
use std::time::Duration;

use lockdep::tokio::Mutex;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let accounts = Arc::new(Mutex::new(0u64));
    let audit = Arc::new(Mutex::new(Vec::<u64>::new()));

    // Task 1: accounts, then audit, across awaits (the task may move between workers).
    let (a, l) = (accounts.clone(), audit.clone());
    lockdep::tokio::spawn(async move {
        let mut balance = a.lock().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        l.lock().await.push(*balance);
        *balance += 1;
    })
    .await
    .unwrap();

    // Task 2, later: audit, then accounts. Never blocks in this run; reported anyway.
    let (a, l) = (accounts.clone(), audit.clone());
    lockdep::tokio::spawn(async move {
        let log = l.lock().await;
        let balance = a.lock().await;
        println!("{} entries, balance {}", log.len(), *balance);
    })
    .await
    .unwrap();

    // A blocking lock held across an await point (with `send_guard`, its guard could even be
    // spawned): every other task that takes it blocks its worker meanwhile.
    let stats = lockdep::Mutex::new(0u64);
    lockdep::future::tracked(async {
        let mut n = stats.lock();
        tokio::task::yield_now().await;
        *n += 1;
    })
    .await;
}
