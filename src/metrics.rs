//! The HTTP endpoint of `daemon.metrics_listen`: `/metrics` (Prometheus text format),
//! `/healthz` and `/readyz`, served from a thread of its own.
//!
//! The supervision loop never waits for a scraper and a scrape never blocks the loop.
//! The server runs on its own thread with its own small tokio runtime (`http.rs`); for
//! each request that needs the tree's state it sends the loop a `Fact::Snapshot` with a
//! one-shot reply channel, and the loop answers in its next turn with a `Snapshot`:
//! plain data it fills in O(services) without a syscall (the core's view of each
//! service plus the counters the runtime keeps from the core's reports,
//! `runtime/stats.rs`). Everything that costs time happens here, on the server's
//! thread: reading CPU time and memory per service process group from /proc, minder's
//! own `process_*` metrics, and rendering the text (`render.rs`). Concurrent requests
//! share one snapshot request, so a flood of scrapers costs the loop at most one
//! snapshot at a time.
//!
//! The types here are the contract between the two sides: the loop fills them, the
//! server reads them. Exit reasons and the recovery histogram's buckets are fixed sets,
//! so no label value is ever free text.

mod http;
mod render;
#[cfg(test)]
mod tests;

pub use self::http::{Endpoint, HEALTH_BOUND, MAX_CONNECTIONS};
pub use self::render::render;

use crate::supervisor::{EndKind, ExitStatus, FailureReason};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Why a service's process ended, as `minder_service_exits_total{reason}` names it: a
/// fixed set, one value per end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// An exit code in `success_codes` (or one of `success_signals`, not sent by minder).
    Normal,
    /// Any other exit code.
    Abnormal,
    /// Killed by a signal minder did not send (an outside `kill`, a crash).
    Signal,
    /// minder ended it after failed health checks.
    Health,
    /// minder ended it for a missed watchdog.
    Watchdog,
    /// minder ended it for using more memory than `max_memory`.
    Memory,
    /// minder ended it because it was not ready by its ready `deadline`.
    ReadyDeadline,
    /// It could not be started at all (not found, not executable, a bad user).
    StartFailure,
    /// minder stopped it (operator, shutdown, a strategy stopping siblings).
    Stopped,
}

impl ExitReason {
    /// Every reason, in the order the metrics list them.
    pub const ALL: [ExitReason; 9] = [
        ExitReason::Normal,
        ExitReason::Abnormal,
        ExitReason::Signal,
        ExitReason::Health,
        ExitReason::Watchdog,
        ExitReason::Memory,
        ExitReason::ReadyDeadline,
        ExitReason::StartFailure,
        ExitReason::Stopped,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            ExitReason::Normal => "normal",
            ExitReason::Abnormal => "abnormal",
            ExitReason::Signal => "signal",
            ExitReason::Health => "health",
            ExitReason::Watchdog => "watchdog",
            ExitReason::Memory => "memory",
            ExitReason::ReadyDeadline => "ready_deadline",
            ExitReason::StartFailure => "start_failure",
            ExitReason::Stopped => "stopped",
        }
    }

    /// The reason of an end as the core classified it, with the status the reaper saw
    /// (which tells an abnormal exit code from a death by signal).
    pub fn of(end: EndKind, status: ExitStatus) -> ExitReason {
        match end {
            EndKind::Stopped => ExitReason::Stopped,
            EndKind::Normal => ExitReason::Normal,
            EndKind::Abnormal => match status {
                ExitStatus::Exited(_) => ExitReason::Abnormal,
                ExitStatus::Signaled(_) => ExitReason::Signal,
            },
            EndKind::Failure(FailureReason::Health) => ExitReason::Health,
            EndKind::Failure(FailureReason::Watchdog) => ExitReason::Watchdog,
            EndKind::Failure(FailureReason::Memory) => ExitReason::Memory,
            EndKind::Failure(FailureReason::ReadyDeadline) => ExitReason::ReadyDeadline,
            EndKind::StartFailure => ExitReason::StartFailure,
        }
    }

    /// Its index in `ALL` (and in `ServiceCounters::exits`).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds, in seconds, of the buckets of `minder_service_recovery_seconds`: from
/// 1 ms (a zero-backoff restart of a service without a ready check) to 5 min (a long
/// backoff, or a slow ready check); `+Inf` is implied.
pub const RECOVERY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0,
];

/// One service's recovery times: how long each unplanned end took to be followed by a
/// ready process again. Counts per bucket (not cumulative), plus the sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovery {
    /// Observations at or below `RECOVERY_BUCKETS[i]` and above the bucket before.
    pub buckets: [u64; RECOVERY_BUCKETS.len()],
    pub count: u64,
    /// Seconds, all observations added up.
    pub sum: f64,
}

impl Recovery {
    pub fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(bucket) = RECOVERY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// What the runtime counts for one service from the core's reports (the core keeps no
/// counters for metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceCounters {
    /// Ends by `ExitReason::index`.
    pub exits: [u64; ExitReason::ALL.len()],
    /// Failed health checks (probes and memory samples over `max_memory`), whether or
    /// not they counted toward `failures` (those during `start_period` do not).
    pub health_failures: u64,
    /// When its current or last process started, in seconds since the Unix epoch; 0
    /// before the first start.
    pub start_time: f64,
    /// The delay of the restart it waits for, in seconds (0 when none is pending).
    pub backoff: f64,
    pub recovery: Recovery,
}

/// What never changes while the tree runs: a service's labels and whether it has a
/// ready check. Shared by every snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceInfo {
    pub name: String,
    /// The name of the group it is a child of (`root` for the root's children).
    pub group: String,
    /// Whether `[service.X.ready]` is set: only those count for `/readyz`.
    pub ready_check: bool,
}

/// One service in a snapshot, in the order of `Snapshot::info`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceState {
    /// The process group of its running process (= its main pid), if it has one.
    pub pid: Option<i32>,
    /// Whether its process runs (starting to be ready, ready, or stopping).
    pub up: bool,
    /// Whether its process is ready.
    pub ready: bool,
    /// Whether it counts as ready for `/readyz`: ready, or ended for good, or held
    /// stopped by an operator (as for start ordering).
    pub settled: bool,
    /// Every start after the first.
    pub restarts: u64,
    pub counters: ServiceCounters,
}

/// One group in a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    pub name: String,
    /// Restart decisions inside its current window (`period`).
    pub restarts_in_period: u64,
    /// How many times it gave up (its budget spent).
    pub escalations: u64,
}

/// Where minder is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// A shutdown was requested and services run on for `drain_delay`.
    Draining,
    /// The shutdown proper (after a drain, or at once: `auto_shutdown`, a spent root
    /// budget, a request without `drain_delay`).
    ShuttingDown,
}

/// The tree's state at one turn of the loop, as the loop hands it to the server.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub phase: Phase,
    /// Labels of every service, in id order; `services` follows the same order.
    pub info: Arc<[ServiceInfo]>,
    pub services: Vec<ServiceState>,
    pub groups: Vec<GroupState>,
    /// Processes re-parented to minder and reaped by it.
    pub orphans_reaped: u64,
    /// Output lines that did not reach their sink (services' and minder's own).
    pub log_lines_dropped: u64,
}

/// A request for a snapshot, sent to the loop as `Fact::Snapshot`; the loop answers
/// through it. A request whose asker has given up is answered into the void.
#[derive(Debug)]
pub struct SnapshotRequest(pub oneshot::Sender<Snapshot>);

impl SnapshotRequest {
    pub fn answer(self, snapshot: Snapshot) {
        // The asker may have timed out and gone; that is its business.
        let _ = self.0.send(snapshot);
    }
}

/// Requests carry a channel, which has no meaningful equality: two requests are never
/// equal (facts are compared only in tests, never requests).
impl PartialEq for SnapshotRequest {
    fn eq(&self, _: &SnapshotRequest) -> bool {
        false
    }
}
