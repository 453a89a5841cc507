//! minder's supervision core: the decisions, none of the effects.
//!
//! `supervisor` is a deterministic state machine over a tree of groups and services:
//! it takes events with the time they happened and returns effects for a runtime to
//! carry out. `spec` is the typed tree it is built from, `exit` the exit-code table
//! it decides with, and `sim` a simulated world (virtual clock, make-believe processes)
//! for driving it in tests. This crate depends on nothing that performs I/O, reads
//! a clock or awaits, and is `no_std` (with `alloc`): there is no `std::fs`, `net`,
//! `process`, `thread` or `time::Instant` to call, so none of that can creep in.
//! minder's binary crate owns the event loop and every syscall.

// Unit tests run under the std test harness; the library itself never sees std.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod exit;
pub mod sim;
pub mod spec;
pub mod supervisor;
