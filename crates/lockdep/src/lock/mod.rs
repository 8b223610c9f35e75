//! The vocabulary a lock is described with: its class key ([`class`]), its wait types
//! ([`wait`]), the lock map a lock carries ([`map`]) and the allocation flags of the reclaim
//! annotations ([`gfp`]), and what the source calls a lock built at a site (`source`).
//!
//! Nothing here knows about the engine or a driver: these are the plain types every other layer
//! speaks in. The hooks a [`LockMap`](map::LockMap) offers (`acquire`, `release`, ...) are the
//! process-wide driver's and live in `rt/hooks.rs`.

pub mod class;
pub mod dep;
pub(crate) mod field;
pub mod gfp;
pub mod map;
pub(crate) mod source;
pub mod wait;

#[cfg(all(test, lockdep_loom))]
mod loom_model;
