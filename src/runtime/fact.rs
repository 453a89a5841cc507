//! What tasks tell the loop: plain facts, one closed enum, over the loop's one channel.
//!
//! Work that cannot run on the loop's turn (reading notify sockets, tcp and http
//! probes, the memory guard's /proc scans, waiting for a ready-fd newline) runs in tasks
//! and threads that own what they use and share nothing with the loop. They report what
//! they saw, not what it means: which process is current, and so whether a fact still
//! matters, only the loop knows (its `Incarnations`). The loop turns each fact into
//! events for the core, or drops it when the process it is about has ended. Control
//! requests come this way too, each with the one-shot reply its connection awaits, and
//! so do the metrics endpoint's snapshot requests, answered with plain data that
//! change nothing.

use crate::control::server::ControlRequest;
use crate::metrics::SnapshotRequest;
use crate::notify;
use crate::supervisor::{ChildRef, ProbeKind, ProbeOutcome, ServiceId};
use std::collections::HashMap;
use std::sync::Arc;

/// One thing a task observed. Sent over the loop's unbounded channel; a send fails only
/// once the loop is gone (minder exiting), and then there is no one left to tell.
#[derive(Debug, PartialEq)]
pub enum Fact {
    /// A datagram on the notify socket of `service`, read by its reader task, with its
    /// sender as the kernel and /proc described it at read time; its fds are closed.
    Notify {
        service: ServiceId,
        message: notify::Message,
    },
    /// Run `run` of `child`'s tcp or http probe of `kind` ended with `outcome`.
    ProbeResult {
        child: ChildRef,
        kind: ProbeKind,
        run: u64,
        outcome: ProbeOutcome,
    },
    /// A scan of /proc by the memory guard: resident bytes by process group (immutable
    /// once sent), answering the memory probes of `asked`: each incarnation with the run
    /// of its check it asked for.
    MemoryScan {
        groups: Arc<HashMap<i32, u64>>,
        asked: Vec<(ChildRef, u64)>,
    },
    /// `child` wrote a newline to its ready fd.
    ReadyLine { child: ChildRef },
    /// A request on the control socket, checked against the peer's role, to be
    /// answered on its `reply` (see `control.rs`).
    Control(ControlRequest),
    /// The metrics endpoint asks for the tree's state; the loop answers at once with
    /// a snapshot it fills without a syscall (`stats.rs`).
    Snapshot(SnapshotRequest),
}
