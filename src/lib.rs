//! minder: a self-healing process supervisor for Linux.
//!
//! The crate is split so that decisions and effects never mix: `config` turns a file
//! into a `spec::Spec`; `supervisor` is the pure state machine that decides, in its own
//! crate (`minder-core`, re-exported here with its `exit` table), working on the
//! reduced spec `spec::lower` makes; `runtime` owns the event loop and performs what
//! the supervisor decides through `process` (spawn, reap, signal) and `logs` (output
//! capture). See ARCHITECTURE.md.

pub mod config;
pub mod control;
pub mod health;
pub mod logs;
pub mod notify;
#[cfg(test)]
mod own_process;
pub mod process;
pub mod procfs;
pub mod runtime;
pub mod signals;
pub mod spec;
pub mod state_file;

pub use minder_core::{exit, supervisor};
