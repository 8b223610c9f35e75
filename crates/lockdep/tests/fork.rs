//! Fork safety of the process-wide validator (`rt::fork`): a child forked while another thread
//! is inside the validator (making new dependencies: the engine's lock, stack capture) must not
//! hang on a lock that thread held, and validates on its own.

#![cfg(not(feature = "disabled"))]
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockdep::{LockClassKey, Mutex};

#[path = "support/child.rs"]
mod child;
use child::wait_for;

#[test]
fn children_forked_while_another_thread_is_inside_the_validator_do_not_hang() {
    // Keys made at run time: every pair of them is a new dependency, so the busy thread keeps
    // taking the validator's slow path.
    let keys: Vec<&'static LockClassKey> = (0..64)
        .map(|i| LockClassKey::new_dynamic(format!("fork-busy-{i}")))
        .collect();
    let locks: Arc<Vec<Mutex<()>>> =
        Arc::new(keys.iter().map(|k| Mutex::with_key((), k)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (locks, stop) = (locks.clone(), stop.clone());
        std::thread::spawn(move || {
            let n = locks.len();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let x = i % (n - 1);
                let y = x + 1 + (i / (n - 1)) % (n - 1 - x);
                let _a = locks[x].lock();
                let _b = locks[y].lock();
                i += 1;
            }
        })
    };
    let a = Mutex::new(());
    let b = Mutex::new(());
    let mut exited = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(2));
        // SAFETY: the child only takes instrumented locks (the validator's atfork handlers make
        // that safe, which is what is tested) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            {
                let _a = a.lock();
                let _b = b.lock();
            }
            let ok = lockdep::rt::depth() == 0;
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert!(pid > 0, "fork failed");
        match wait_for(pid, Duration::from_secs(30)) {
            Some(status) if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 => {
                exited += 1
            }
            Some(status) => panic!("the child failed: status {status:#x}"),
            None => panic!("the child hung in the validator"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    assert_eq!(exited, 20);
}
