//! minder: a self-healing process supervisor for Linux.
//!
//! The crate is split so that decisions and effects never mix: `config` turns a file
//! into a `spec::Spec`; `supervisor` is the pure state machine that decides; `runtime`
//! owns the event loop and performs what the supervisor decides through `process`
//! (spawn, reap, signal) and `logs` (output capture). See ARCHITECTURE.md.

pub mod config;
pub mod exit;
pub mod health;
pub mod logs;
pub mod notify;
pub mod process;
pub mod procfs;
pub mod runtime;
pub mod spec;
pub mod supervisor;
