//! Every seed example, run as a program: each case's verdict line, and the reports it prints
//! (header, lock lines, task line).

use std::process::Command;

/// Runs `cargo run --example NAME` (cargo rebuilds it if stale) with reports printed as
/// warnings; returns (success, stdout, stderr).
fn run_example(name: &str) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "-p", "lockdep", "--example", name]);
    if cfg!(feature = "send_guard") {
        cmd.args(["--features", "send_guard"]);
    }
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LOCKDEP", "warn")
        .output()
        .expect("cargo runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks that every case passed, that `cases` are among them, and that each group of `needles`
/// appears in one report of stderr (reports are separated by a blank line and a rule or `BUG:`).
fn check(name: &str, cases: &[&str], reports: &[&[&str]]) {
    let (ok, out, err) = run_example(name);
    assert!(ok, "{name} failed:\n{out}\n{err}");
    let last = out.lines().last().unwrap_or("");
    assert!(last.ends_with(" passed, 0 failed"), "{out}");
    for case in cases {
        assert!(
            out.lines().any(|l| l == format!("case {case}: ok")),
            "no `case {case}: ok` in\n{out}"
        );
    }
    let chunks: Vec<&str> = err
        .split("\n\n======")
        .flat_map(|c| c.split("\nBUG: "))
        .collect();
    for needles in reports {
        assert!(
            chunks.iter().any(|c| needles.iter().all(|n| c.contains(n))),
            "no report with all of {needles:?} in\n{err}"
        );
    }
}

#[test]
fn seed_000_mmu_notifier_reclaim() {
    check(
        "seed_000_mmu_notifier_reclaim",
        &[
            "noio-current",
            "noio-legacy",
            "atomic-and-nowait-current",
            "nofs-scope-honoured",
            "kernel-current-unprimed",
            "kernel-current-primed",
            "kernel-legacy-unprimed",
            "kernel-legacy-primed",
        ],
        &[
            &[
                "WARNING: possible circular locking dependency detected",
                "submit/",
                " is trying to acquire lock:",
                "(mmu_notifier_invalidate_range_start){+.+.}-{0:0}, at: ",
                "but task is already holding lock:",
                "(&drv->notifier_lock){+.+.}-{3:3}, at: ",
                "1 lock held by submit/",
            ],
            &[
                "WARNING: possible circular locking dependency detected",
                "xfs_trans/",
                "(fs_reclaim){+.+.}-{0:0}, at: ",
                "(&xfs_inode->i_lock){+.+.}-{3:3}, at: ",
            ],
        ],
    );
}

#[test]
fn seed_001_dma_resv_priming() {
    check(
        "seed_001_dma_resv_priming",
        &[
            "priming",
            "priming-catches-gfp-kernel-under-i_mmap",
            "inverted-priming",
        ],
        &[&[
            "WARNING: possible circular locking dependency detected",
            "kswapd0/98 is trying to acquire lock:",
            "(&mapping->i_mmap_rwsem){++++}-{3:3}, at: ",
            "but task is already holding lock:",
            "(fs_reclaim){+.+.}-{0:0}, at: ",
            "-> #1 (fs_reclaim){+.+.}-{0:0}:",
            "dma_resv_lockdep_inverted",
            "-> #0 (&mapping->i_mmap_rwsem){++++}-{3:3}:",
            "rmap_walk_file",
            "       CPU0                    CPU1",
            "  lock(fs_reclaim);",
            "                               lock(&mapping->i_mmap_rwsem);",
            "1 lock held by kswapd0/98:",
        ]],
    );
}

#[test]
fn seed_002_non_block() {
    check(
        "seed_002_non_block",
        &[
            "nonblock-sleeping-lock",
            "nonblock-spinlock",
            "fs-reclaim-may-sleep",
            "unmatched-end",
        ],
        &[
            &[
                "sleeping function called from invalid context at ",
                "in_atomic(): 0, irqs_disabled(): 0, non_block: 1, pid: ",
                ", name: oom_reaper",
                "1 lock held by oom_reaper/",
                // might_sleep runs before the mutex is taken: the invalidation map is held,
                // the mutex is not (yet).
                "(mmu_notifier_invalidate_range_start){+.+.}-{0:0}, at: ",
                "Call Trace:",
            ],
            &["WARNING: non_block_end() without non_block_start()"],
        ],
    );
}

#[test]
fn seed_003_invalidate_range_map() {
    check(
        "seed_003_invalidate_range_map",
        &[
            "callback-allocates-across-chains",
            "callback-allocates-current",
            "range-end-shares-the-map",
            "take-all-locks-unprimed",
            "take-all-locks-primed",
            "injection-legacy",
        ],
        &[
            &[
                "WARNING: possible circular locking dependency detected",
                "munmap/",
                "(fs_reclaim){+.+.}-{0:0}, at: ",
                "(mmu_notifier_invalidate_range_start){+.+.}-{0:0}, at: ",
            ],
            &[
                "WARNING: possible recursive locking detected",
                "munmap/",
                "(mmu_notifier_invalidate_range_start){+.+.}-{0:0}, at: ",
            ],
            &[
                "WARNING: possible circular locking dependency detected",
                "(&mapping->i_mmap_rwsem){++++}-{3:3}, at: ",
            ],
        ],
    );
}

#[test]
fn seed_004_blockable_mode() {
    check(
        "seed_004_blockable_mode",
        &[
            "pairs-in-flight-recursive",
            "ranges-end-out-of-order",
            "down-read-twice",
        ],
        &[&[
            "WARNING: possible recursive locking detected",
            "munmap/",
            " is trying to acquire lock:",
            "(&amn->lock){.+.+}-{3:3}, at: ",
            "but task is already holding lock:",
            "1 lock held by munmap/",
        ]],
    );
}
