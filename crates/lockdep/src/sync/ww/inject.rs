//! Back-off fault injection: the kernel's `CONFIG_DEBUG_WW_MUTEX_SLOWPATH`.
//!
//! Real back-offs need real contention, so the back-off paths of a program are its least tested
//! code. With injection on, a lock under a context that succeeded while the context already held
//! another mutex is, now and then, undone and answered with a back-off instead, exactly as if an
//! older context had won. The schedule is the kernel's and is derived from the context's stamp:
//! the first injection comes after `stamp & 0xf` such locks, and each interval is then about
//! 3.5 times the one before (1, 3, 10, 35, ...), so every context eventually completes.
//!
//! Injection is off by default. Turn it on for the process with [`set_backoff_injection`] or the
//! environment variable `LOCKDEP_WW_SLOWPATH=1`, or for one context with
//! [`AcquireCtx::inject_backoff`](super::AcquireCtx::inject_backoff).

use std::sync::atomic::{AtomicU8, Ordering};

const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static SWITCH: AtomicU8 = AtomicU8::new(UNSET);

/// Turns back-off injection on or off for contexts initialised from now on.
///
/// ```
/// lockdep::ww::set_backoff_injection(true);
/// assert!(lockdep::ww::backoff_injection());
/// lockdep::ww::set_backoff_injection(false);
/// ```
pub fn set_backoff_injection(on: bool) {
    SWITCH.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether new contexts inject back-offs: the last [`set_backoff_injection`], else whether
/// `LOCKDEP_WW_SLOWPATH` is set to `1`.
pub fn backoff_injection() -> bool {
    match SWITCH.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var("LOCKDEP_WW_SLOWPATH").is_ok_and(|v| v == "1");
            // A racing `set_backoff_injection` wins.
            let _ = SWITCH.compare_exchange(
                UNSET,
                if on { ON } else { OFF },
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            SWITCH.load(Ordering::Relaxed) == ON
        }
    }
}

/// One context's injection schedule (`deadlock_inject_interval` and `_countdown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    interval: u32,
    countdown: u32,
}

impl Schedule {
    /// The schedule of a context with `stamp`.
    pub(crate) fn new(stamp: u64) -> Schedule {
        Schedule {
            interval: 1,
            countdown: (stamp & 0xf) as u32,
        }
    }

    /// Counts one eligible lock; `true` when this one is to be answered with a back-off.
    pub(crate) fn tick(&mut self) -> bool {
        if self.countdown > 0 {
            self.countdown -= 1;
            return false;
        }
        let i = self.interval;
        self.interval = if i > u32::MAX / 4 {
            u32::MAX
        } else {
            i * 2 + i + i / 2
        };
        self.countdown = self.interval;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_the_kernels() {
        // stamp & 0xf = 2: two locks pass, the third backs off; then intervals 3, 10, 35.
        let mut s = Schedule::new(0x12);
        let hits: Vec<usize> = (0..60).filter(|_| s.tick()).collect();
        assert_eq!(hits, vec![2, 6, 17, 53]);
        let mut big = Schedule {
            interval: u32::MAX / 4 + 1,
            countdown: 0,
        };
        assert!(big.tick());
        assert_eq!(big.interval, u32::MAX);
    }
}
