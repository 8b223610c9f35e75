//! The internals of the `lockdep` and `cargo-lockdep` commands, shared by both binaries.
//!
//! This library exists so that the two commands run the same code: `lockdep check` and
//! `cargo lockdep test` load recordings with [`inputs`], check them as one with the library's
//! [`Merged::check`](lockdep::record::Merged::check) and describe what was found with
//! [`findings`]. It is not a stable API: depend on the `lockdep` crate instead.

pub mod cargo;
pub mod check;
pub mod files;
pub mod findings;
pub mod graph;
pub mod html;
pub mod inputs;
pub mod json;
pub mod replay;
pub mod run;
pub mod selftest;
pub mod stat;
pub mod suppressions;
pub mod svg;
pub mod views;
