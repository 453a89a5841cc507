//! The pure supervision core: a deterministic state machine that decides everything
//! minder does to its children and does none of it.
//!
//! It owns the tree of groups and services, each child's state, restart budgets,
//! backoff counts and the shutdown sequence. Input is `Supervisor::handle(event, now)`;
//! output is the list of `Effect`s that call returns, plus `next_deadline()`, the one
//! moment at which the caller must come back with `Event::Timer`. It must not read the
//! clock, perform I/O, spawn, block or await: `now` is always given, randomness comes
//! from a seed, and every effect is data for the runtime to carry out. The crate's
//! manifest enforces it: it depends on no crate that could do otherwise.
//!
//! Children are identified across restarts by `ChildRef { id, generation }`: `id` is a
//! service's fixed slot, `generation` grows on every spawn. An exit or timer meant for
//! an older generation can therefore never act on a newer process.
//!
//! This file holds the interface (events, effects, ids, reports). The state machine is
//! split along its seams: `tree` (the data and its states), `machine` (driving it, and
//! each event's effect on a service's life cycle and on shutdown), `checks` (probes,
//! ready deadline, watchdog, memory), `restarts` (ends, backoff, budgets, restart
//! sets, `auto_shutdown`), `reconcile` (the fixpoint walk that starts and stops),
//! `reload` (taking a new tree while running) and `view` (read-only queries and the
//! tree as text).

mod checks;
mod machine;
mod reconcile;
mod reload;
mod restarts;
mod tree;
mod view;

pub use self::machine::Supervisor;
pub use self::reload::needs_new_process;
pub use self::restarts::backoff_delay;
pub use self::view::{GroupView, PhaseView, ProbeRecord, ServiceView, StoppingView};

use self::machine::{Phase, ShutdownExit};
use alloc::{string::String, vec::Vec};

use crate::spec::{ProbeSpec, RestartType};
use core::time::Duration;

/// A point on the supervisor's monotonic clock, measured from an arbitrary origin the
/// caller picks (the runtime uses its start; tests use zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub Duration);

impl Time {
    pub const ZERO: Time = Time(Duration::ZERO);

    pub fn from_millis(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    pub fn saturating_sub(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl core::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(rhs))
    }
}

/// A service's fixed slot in the tree (its index in `Supervisor::services()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub usize);

/// One incarnation of a service: the slot plus the spawn counter at the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChildRef {
    pub id: ServiceId,
    pub generation: u64,
}

/// A node of the tree (service or group), for operator requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(pub usize);

/// How a process ended, as the reaper saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The shell's view of the status: the code, or 128+N for a death by signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => crate::exit::SIGNAL_BASE + signal,
        }
    }
}

/// Why minder itself ended a service for a failure (health, watchdog, memory, a
/// readiness deadline). Such an end is a failure whatever the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    Health,
    Watchdog,
    Memory,
    ReadyDeadline,
}

/// The names the logs, docs and metrics use: `health`, `watchdog`, `memory`,
/// `ready_deadline`.
impl core::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FailureReason::Health => "health",
            FailureReason::Watchdog => "watchdog",
            FailureReason::Memory => "memory",
            FailureReason::ReadyDeadline => "ready_deadline",
        })
    }
}

/// Everything that can happen to the supervisor.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The runtime performed `Effect::Spawn` and exec succeeded.
    Spawned {
        child: ChildRef,
        pid: i32,
    },
    /// The runtime performed `Effect::Spawn` and the process could not be started.
    /// `code` is what a shell would report (127 not found, 126 not executable, 1
    /// otherwise); `reason` is the human-readable error.
    SpawnFailed {
        child: ChildRef,
        code: i32,
        reason: String,
    },
    /// The reaper collected a child's main process.
    Exited {
        child: ChildRef,
        status: ExitStatus,
    },
    /// The service's readiness check passed.
    Ready {
        child: ChildRef,
    },
    /// A liveness check, the watchdog or the memory guard condemned the child.
    Failed {
        child: ChildRef,
        reason: FailureReason,
    },
    /// A probe asked for by `Effect::Probe` finished. `run` is the one that effect
    /// carried: a result of a run the core has already cancelled at its timeout
    /// (`Effect::CancelProbe`) is stale and ignored, even when a later run of the same
    /// check is in flight.
    ProbeResult {
        child: ChildRef,
        kind: ProbeKind,
        run: u64,
        outcome: ProbeOutcome,
    },
    /// `WATCHDOG=1` arrived from the service.
    WatchdogPing {
        child: ChildRef,
    },
    /// `WATCHDOG_USEC=` arrived: the service asks for another watchdog timeout.
    WatchdogTimeout {
        child: ChildRef,
        timeout: Duration,
    },
    /// `now` has reached `next_deadline()`.
    Timer,
    /// Operator requests (control socket): a service, an instance set or a group.
    Start(NodeId),
    Stop(NodeId),
    Restart(NodeId),
    /// `minderctl shutdown`. A second one kills at once.
    Shutdown,
    /// minder itself received this signal (TERM, INT, QUIT, HUP, USR1, USR2 or WINCH).
    /// What it means is the core's to decide (`spec::SignalMode`): a shutdown request
    /// like `Shutdown`, or a signal to pass on in container mode.
    Signal(i32),
}

/// What the runtime must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Start a new process for this incarnation; answer with `Spawned`/`SpawnFailed`.
    Spawn { child: ChildRef },
    /// Stop the child: send its stop signal `signal` to its process group, followed by
    /// SIGCONT (as systemd does), so that a process stopped by SIGSTOP runs its handler
    /// now rather than waiting for the kill.
    Signal {
        child: ChildRef,
        pid: i32,
        signal: i32,
    },
    /// Container mode: pass on a signal minder received to the child's process group.
    /// With `and_continue` (TERM, INT, QUIT: they ask the command to end) follow it
    /// with SIGCONT, as for a stop signal.
    Forward {
        child: ChildRef,
        pid: i32,
        signal: i32,
        and_continue: bool,
    },
    /// SIGKILL the child's process group.
    Kill { child: ChildRef, pid: i32 },
    /// Run one check for the child (process group `pid`) and answer with one
    /// `ProbeResult` of `check.kind()` carrying `run`. The core bounds a ready or
    /// health probe by its timeout itself: past it, it records the probe as failed and
    /// cancels it.
    Probe {
        child: ChildRef,
        pid: i32,
        check: Check,
        /// Numbers the runs of this check of this child; the result hands it back.
        run: u64,
    },
    /// Run `run` of the child's probe of this kind went past its timeout and has been
    /// counted as failed: stop it (kill an exec probe's process group, abort a
    /// network probe). Whatever it might still answer is ignored.
    CancelProbe {
        child: ChildRef,
        kind: ProbeKind,
        run: u64,
    },
    /// Tell minder's own service manager (systemd's `NOTIFY_SOCKET`, if any).
    Announce(Announcement),
    /// Everything is down: exit minder with this code.
    Exit { code: i32 },
    /// Something worth a log line, an event on the control socket and a metric.
    Report(Report),
}

/// A change of minder's own state that its service manager is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// The tree has begun to shut down (`STOPPING=1`); emitted once.
    Stopping,
}

/// One check to run, with everything the runtime needs to run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The `ready` probe: run probe `id` of the runtime's table, bounded by `timeout`.
    Ready(ProbeSpec),
    /// The `health` probe, likewise.
    Health(ProbeSpec),
    /// A sample of the resident memory of the child's process group (`max_memory`).
    Memory,
}

impl Check {
    /// The kind its `ProbeResult` must carry.
    pub fn kind(self) -> ProbeKind {
        match self {
            Check::Ready(_) => ProbeKind::Ready,
            Check::Health(_) => ProbeKind::Health,
            Check::Memory => ProbeKind::Memory,
        }
    }
}

/// Which check a probe is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// The `ready` probe (tcp/http/exec), until it passes once.
    Ready,
    /// The `health` probe (tcp/http/exec).
    Health,
    /// A sample of the resident memory of the child's process group (`max_memory`).
    Memory,
}

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Passed,
    /// Why it failed (refused, timed out, HTTP 503, exit 1...).
    Failed(String),
    /// Resident bytes of the process group (answer to `ProbeKind::Memory`).
    Memory(u64),
}

/// Supervision happenings the runtime logs; they change nothing by themselves.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    Started {
        child: ChildRef,
        pid: i32,
    },
    StartFailed {
        child: ChildRef,
        reason: String,
    },
    Ready {
        child: ChildRef,
    },
    Exited {
        child: ChildRef,
        status: ExitStatus,
        end: EndKind,
    },
    RestartScheduled {
        id: ServiceId,
        delay: Duration,
    },
    /// The group gave up: `restarts` restart decisions within `period` exceeded its
    /// `intensity`. It stops its children, then fails upwards (the root shuts the
    /// tree down instead).
    Escalated {
        group: NodeId,
        restarts: usize,
        intensity: u32,
        period: Duration,
    },
    /// `parent` restarts the child group `group` (after it gave up, or after it shut
    /// itself down while permanent).
    GroupRestarting {
        group: NodeId,
        parent: NodeId,
    },
    /// A significant child (`trigger`, a service or group node) ended for good and
    /// `group`'s `auto_shutdown` fired: it stops its children, then ends normally.
    GroupShuttingDown {
        group: NodeId,
        trigger: NodeId,
    },
    /// The group ended (`Normal` after its `auto_shutdown`, `Abnormal` after giving
    /// up) and its restart type keeps it down: its parent does not restart it.
    GroupDone {
        group: NodeId,
        end: EndKind,
        restart: RestartType,
    },
    StopTimedOut {
        child: ChildRef,
    },
    /// Container mode: the child still ran its `stop_timeout` after a forwarded TERM,
    /// INT or QUIT; its process group is killed.
    ForwardTimedOut {
        child: ChildRef,
    },
    /// minder received this signal (`SignalMode::Supervise`). For TERM, INT and QUIT a
    /// shutdown follows; for SIGUSR2 the runtime writes the tree's state to the log.
    Signal {
        signal: i32,
    },
    /// Why the tree is shutting down.
    ShuttingDown {
        cause: ShutdownCause,
    },
    /// A shutdown was requested and `drain_delay` is set: the tree keeps running,
    /// supervised as usual, until `until`; then the orderly shutdown begins (another
    /// request begins it at once).
    Draining {
        until: Time,
    },
    /// Once a second while the tree shuts down: the services it is still waiting for,
    /// in stop order, and when each will be killed.
    StillStopping {
        waiting: Vec<StoppingService>,
    },
    /// Just before `Effect::Exit` of a shutdown: each service that took over a second
    /// to stop, or had to be killed, in the order they ended. Not emitted when every
    /// service stopped promptly.
    SlowStops {
        stops: Vec<SlowStop>,
    },
    /// A health check failed; `consecutive` counts toward the `failures` threshold
    /// (0 during `start_period`, when failures do not count).
    HealthFailed {
        child: ChildRef,
        kind: ProbeKind,
        reason: String,
        consecutive: u32,
    },
    /// minder ends the child for a failure (health, watchdog, memory, ready deadline).
    Condemned {
        child: ChildRef,
        reason: FailureReason,
    },
    /// Reconciliation took `passes` passes without settling, which only a bug in the
    /// core can cause. The work is not dropped: `next_deadline` is now, and the next
    /// `Event::Timer` goes on with it.
    Unsettled {
        passes: usize,
    },
    /// A reload was applied (`Supervisor::reload`). `added` are the new services (new
    /// ids, to be started), `removed` the ones it retired (stopped, never started
    /// again), `restarted` the running ones it restarts with their new spec, all in
    /// start order; `updated_groups` the groups whose strategy, budget or
    /// `auto_shutdown` settings changed. Every other service kept its process.
    Reloaded {
        added: Vec<ServiceId>,
        removed: Vec<ServiceId>,
        restarted: Vec<ServiceId>,
        updated_groups: Vec<NodeId>,
    },
    /// A reload came while the tree is shutting down: nothing changed.
    ReloadRefused,
}

/// A service a shutdown is waiting for (`Report::StillStopping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoppingService {
    pub id: ServiceId,
    /// Since its stop signal was sent.
    pub stopping_for: Duration,
    /// When its process group gets SIGKILL: its own `stop_timeout` or the end of
    /// `shutdown_timeout`, whichever comes first. `None` once SIGKILL has been sent.
    pub kill_at: Option<Time>,
}

/// A service that was slow to stop during a shutdown (`Report::SlowStops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowStop {
    pub id: ServiceId,
    /// From its stop signal to its end (zero for one killed before it was asked to
    /// stop, when a second request or `shutdown_timeout` cut the shutdown short).
    pub took: Duration,
    /// It ended by SIGKILL from minder, not by its stop signal.
    pub killed: bool,
}

/// The classified end of a service: who ended it decides (see the module `restarts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    /// minder stopped it (operator, shutdown, strategy): never a failure.
    Stopped,
    /// Exit code in `success_codes`, or death by one of `success_signals` that
    /// minder did not send.
    Normal,
    /// Any other code, or any other signal minder did not send.
    Abnormal,
    /// minder ended it for a failure.
    Failure(FailureReason),
    /// It could not be started at all.
    StartFailure,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownCause {
    Requested,
    /// A second request: everything is killed.
    Forced,
    /// The root's budget is spent: exit 3.
    RootFailed,
    /// A significant service ended under `auto_shutdown`: exit with its code.
    Significant {
        id: ServiceId,
        code: i32,
    },
    /// A significant child group ended for good under the root's `auto_shutdown`:
    /// exit with the code of the end that shut that group down (3 if it gave up).
    SignificantGroup {
        group: NodeId,
        code: i32,
    },
    /// `shutdown_timeout` passed with children still up.
    TimedOut,
}

/// The exit code after the root's restart budget is spent.
pub const EXIT_ROOT_FAILED: i32 = crate::exit::ROOT_FAILED;
