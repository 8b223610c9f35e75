//! Wait types: what kind of waiting a lock does, and what kind of context it may be taken in.
//!
//! Every class has an *inner* wait type (what the lock presents to whatever nests inside it: a
//! mutex may sleep, a raw spinlock spins) and an *outer* one (the context the lock itself may be
//! taken in; by default the same as the inner one). Taking a lock whose outer type is "more
//! sleepy" than the innermost type of the context is an invalid wait context (the kernel's
//! `-{o:i}` suffix and `[ BUG: Invalid wait context ]`). Lock maps that stand for something other
//! than a lock (`fs_reclaim`, callback contexts) have the type `Inv`: they are never checked.

use std::fmt;

/// A wait type, ordered from "never waits" to "may sleep".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum WaitType {
    /// Not checked (lock maps for fake locks).
    #[default]
    Inv,
    /// Never waits (RCU read side).
    Free,
    /// Spins with interrupts possibly disabled (a raw spinlock).
    Spin,
    /// Spins, but may sleep on PREEMPT_RT (a normal spinlock); the same as `Spin` unless raw
    /// lock nesting is being proven.
    Config,
    /// May sleep (a mutex, an rwsem). Acquiring such a lock (not by trylock) performs
    /// `might_sleep` first.
    Sleep,
}

impl WaitType {
    /// The number the kernel prints in `-{outer:inner}`. Without raw-lock nesting `Config` is an
    /// alias of `Spin` and `Sleep` is 3; with it `Config` is 3 and `Sleep` 4.
    pub fn number(self, raw_lock_nesting: bool) -> u8 {
        match (self, raw_lock_nesting) {
            (WaitType::Inv, _) => 0,
            (WaitType::Free, _) => 1,
            (WaitType::Spin, _) => 2,
            (WaitType::Config, false) => 2,
            (WaitType::Config, true) => 3,
            (WaitType::Sleep, false) => 3,
            (WaitType::Sleep, true) => 4,
        }
    }

    /// Whether a lock of this inner type spins (the task may not sleep while holding it).
    #[inline]
    pub fn spins(self) -> bool {
        matches!(self, WaitType::Free | WaitType::Spin | WaitType::Config)
    }

    /// Parses the scenario-file spelling: `inv`, `free`, `spin`, `config`, `sleep`.
    pub fn parse(s: &str) -> Option<WaitType> {
        Some(match s {
            "inv" => WaitType::Inv,
            "free" => WaitType::Free,
            "spin" => WaitType::Spin,
            "config" => WaitType::Config,
            "sleep" => WaitType::Sleep,
            _ => return None,
        })
    }

    pub(crate) fn from_u8(v: u8) -> WaitType {
        match v {
            1 => WaitType::Free,
            2 => WaitType::Spin,
            3 => WaitType::Config,
            4 => WaitType::Sleep,
            _ => WaitType::Inv,
        }
    }
}

impl fmt::Display for WaitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitType::Inv => "inv",
            WaitType::Free => "free",
            WaitType::Spin => "spin",
            WaitType::Config => "config",
            WaitType::Sleep => "sleep",
        })
    }
}
