//! The tree as the core sees it: what supervision needs to decide, and nothing about
//! how a process is started.
//!
//! Owns no behaviour. Names and the tree's shape, strategy
//! and budget, restart type, success codes, significance, backoff, how to stop a service
//! and when to check it are here; argv, identity, environment, limits and probe targets
//! are not. minder's binary crate lowers its full, validated spec into this one
//! (`minder::spec::lower`) and keeps the rest itself, by `ServiceId` and `ProbeId`.
//! Every value has already been validated there, so the core never re-checks it.

use alloc::{string::String, vec::Vec};
use core::time::Duration;

// Signal numbers on Linux (the numbering of x86, arm, aarch64, riscv, powerpc and
// s390x). The core has no libc to ask; minder's binary crate checks at compile time
// that each equals libc's on the target it is built for.

/// SIGHUP: forwarded in container mode.
pub const SIGHUP: i32 = 1;
/// SIGINT: a shutdown request, or forwarded (and then ending) in container mode.
pub const SIGINT: i32 = 2;
/// SIGQUIT: like SIGINT.
pub const SIGQUIT: i32 = 3;
/// SIGKILL: what `Effect::Kill` sends, and the status it leaves.
pub const SIGKILL: i32 = 9;
/// SIGUSR1: forwarded in container mode.
pub const SIGUSR1: i32 = 10;
/// SIGUSR2: forwarded in container mode.
pub const SIGUSR2: i32 = 12;
/// SIGTERM: the usual stop signal, and like SIGINT.
pub const SIGTERM: i32 = 15;
/// SIGWINCH: forwarded in container mode.
pub const SIGWINCH: i32 = 28;

/// The signals that end a service cleanly unless its config says otherwise: SIGHUP,
/// SIGINT, SIGTERM and SIGPIPE, the four systemd's `Restart=on-failure` does not
/// restart after (Linux numbers).
pub const DEFAULT_SUCCESS_SIGNALS: [i32; 4] = [1, 2, 15, 13];

/// A whole tree to supervise.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Bound on the whole orderly shutdown, counted from the request (a drain
    /// included); past it every group left is killed.
    pub shutdown_timeout: Duration,
    /// On a shutdown request, how long the tree keeps running, supervised as usual,
    /// before the orderly shutdown begins (`daemon.drain_delay`): time for a load
    /// balancer to notice the failing readiness endpoint. Never more than
    /// `shutdown_timeout`; zero shuts down at once.
    pub drain_delay: Duration,
    /// The root group. Its `name` is `"root"`.
    pub root: GroupSpec,
    /// What a signal to minder itself (`Event::Signal`) means.
    pub signals: SignalMode,
}

/// What the signals minder listens to (TERM, INT, QUIT, HUP, USR1, USR2, WINCH) mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignalMode {
    /// minder supervises a tree (`minder run`): TERM, INT and QUIT shut it down; every
    /// signal is reported (`Report::Signal`) for the runtime to log and act on (the
    /// SIGUSR2 dump of the tree).
    #[default]
    Supervise,
    /// Container mode (`minder -- cmd`): every one of them is passed on to the process
    /// group of each live service (`Effect::Forward`). TERM, INT and QUIT ask the
    /// command to end: a service still running its `stop_timeout` after the first of
    /// them is killed.
    Forward,
}

/// A group (or the root): an ordered list of children under one strategy and budget.
///
/// Generic over the service type so that the binary crate's full spec (services with
/// their argv, identity, environment and probes) has the same groups: the core
/// supervises `GroupSpec<ServiceSpec>`, the default, lowered from that.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec<S = ServiceSpec> {
    pub name: String,
    pub strategy: Strategy,
    /// At most `intensity` restart decisions in any window of `period`; one more and
    /// the group fails.
    pub intensity: u32,
    pub period: Duration,
    /// When the group shuts itself down after its significant children end: on the
    /// root that is the whole tree (minder exits); elsewhere the group ends normally
    /// and its parent decides by the group's `restart`.
    pub auto_shutdown: AutoShutdown,
    /// What its parent does when the group ends: after an escalation (an abnormal end)
    /// or after it shut itself down (a normal end). Ignored on the root.
    pub restart: RestartType,
    /// Its end can shut its parent down (the parent's `auto_shutdown`). Never on the
    /// root.
    pub significant: bool,
    /// In start order. Instances of a service appear as consecutive `Service` nodes.
    pub children: Vec<NodeSpec<S>>,
}

impl<S> GroupSpec<S> {
    /// A group with the documented defaults and no children.
    pub fn new(name: &str) -> Self {
        GroupSpec {
            name: name.into(),
            strategy: Strategy::OneForOne,
            intensity: 5,
            period: Duration::from_secs(30),
            auto_shutdown: AutoShutdown::Never,
            restart: RestartType::Permanent,
            significant: false,
            children: Vec::new(),
        }
    }

    /// The same tree, groups and order kept, with each service turned into `f`'s
    /// answer for it (in start order): how minder lowers its full tree into this one,
    /// and how it keeps a tree's bare shape.
    pub fn map_services<T>(&self, f: &mut impl FnMut(&S) -> T) -> GroupSpec<T> {
        GroupSpec {
            name: self.name.clone(),
            strategy: self.strategy,
            intensity: self.intensity,
            period: self.period,
            auto_shutdown: self.auto_shutdown,
            restart: self.restart,
            significant: self.significant,
            children: self
                .children
                .iter()
                .map(|child| match child {
                    NodeSpec::Service(service) => NodeSpec::Service(f(service)),
                    NodeSpec::Group(inner) => NodeSpec::Group(inner.map_services(f)),
                })
                .collect(),
        }
    }
}

// Services outnumber groups, so boxing the larger variant would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum NodeSpec<S = ServiceSpec> {
    Service(S),
    Group(GroupSpec<S>),
}

/// What a tree needs of its service type beyond supervision: a name to show.
pub trait ServiceName {
    fn name(&self) -> &str;
}

impl ServiceName for ServiceSpec {
    fn name(&self) -> &str {
        &self.name
    }
}

impl<S: ServiceName> NodeSpec<S> {
    /// The service's or the group's name.
    pub fn name(&self) -> &str {
        match self {
            NodeSpec::Service(service) => service.name(),
            NodeSpec::Group(group) => &group.name,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    OneForOne,
    OneForAll,
    RestForOne,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoShutdown {
    Never,
    AnySignificant,
    AllSignificant,
}

/// When a service that ended on its own is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartType {
    /// Always (alias `always`).
    Permanent,
    /// Only after an abnormal end (alias `on-failure`).
    Transient,
    /// Never (alias `never`).
    Temporary,
}

/// What kind of program a service is: one that should keep running, or a task that
/// runs to completion. A oneshot has no restart type: it is retried after a failure,
/// never restarted after success, and ready once it has exited with a success code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    Longrun(RestartType),
    Oneshot,
}

/// One service instance, as the core supervises it. A service with `instances = N` is
/// N of these, named `NAME.0` .. `NAME.N-1`, consecutive in their group.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSpec {
    /// The instance's full name (`web` or `web.3`); unique in the tree.
    pub name: String,
    /// The name as written in the file (`web`); equal to `name` without instances.
    /// Operators address all instances together by it.
    pub base_name: String,
    /// `Some(i)` for instance `i`: consecutive instances of one service form a batch,
    /// started and stopped together.
    pub instance: Option<u32>,
    pub kind: ServiceKind,
    /// Exit codes that count as a normal end.
    pub success_codes: Vec<i32>,
    /// Signals that, when they kill the service and minder did not send them, count as
    /// a normal end (as systemd's `Restart=on-failure` treats SIGHUP, SIGINT, SIGTERM
    /// and SIGPIPE). Empty: every death by a signal is abnormal.
    pub success_signals: Vec<i32>,
    /// Its end can shut the tree down (the root's `auto_shutdown`).
    pub significant: bool,
    pub backoff: BackoffSpec,
    /// Signal number sent to the whole process group on stop.
    pub stop_signal: i32,
    /// After the stop signal, how long before SIGKILL.
    pub stop_timeout: Duration,
    /// Without it, a long-running service is ready once exec'd.
    pub ready: Option<ReadySpec>,
    /// Liveness checks and the memory guard.
    pub health: Option<HealthSpec>,
    /// With a reported readiness, `WATCHDOG=1` must arrive at least this often once
    /// the service is ready, or it is restarted with reason `watchdog`.
    pub watchdog: Option<Duration>,
}

/// Which probe the runtime is to run: an index into the runtime's own table of probe
/// targets (tcp address, http url, exec command). The core never looks inside; it
/// hands the id back in `Effect::Probe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeId(pub usize);

/// A probe the core schedules: which one, and the bound on one run of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    pub id: ProbeId,
    /// The configured bound on one run.
    pub timeout: Duration,
    /// How long past `timeout` the core waits for the runner's own answer before it
    /// counts the run as timed out and cancels it. Zero for an exec probe, which
    /// nothing but the core bounds. A network probe bounds itself by `timeout` too and
    /// then says where it was stuck (a name lookup, a connect); a short grace lets
    /// that answer, whose timer starts a moment after the core's, come first, while
    /// the core's deadline still ends a probe that does not answer at all.
    pub grace: Duration,
}

/// How the core learns that a service is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyCheck {
    /// The core asks for this probe every `interval` until it passes once.
    Probe {
        probe: ProbeSpec,
        interval: Duration,
    },
    /// The service says so itself (sd_notify `READY=1`, or a newline on its ready fd):
    /// the runtime sends `Event::Ready`.
    Reported,
}

/// `[service.X.ready]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadySpec {
    pub check: ReadyCheck,
    /// Not ready this long after exec: a failed start (reason `ready_deadline`).
    pub deadline: Duration,
}

/// `[service.X.health]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthSpec {
    /// `None` when only `max_memory` is set.
    pub probe: Option<ProbeSpec>,
    /// Between two checks (probe and memory).
    pub interval: Duration,
    /// Failures within this time after exec do not count.
    pub start_period: Duration,
    /// Consecutive failures that restart the service.
    pub failures: u32,
    /// Resident memory of the service's whole process group above which it is
    /// restarted (reason `memory`).
    pub max_memory: Option<u64>,
}

/// Restart delay: `min(max, initial * multiplier^(n-1))`, then ±`jitter` fraction, and
/// never more than `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffSpec {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// In [0, 1].
    pub jitter: f64,
    /// A run at least this long resets the consecutive-failure count.
    pub reset_after: Duration,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        BackoffSpec {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(30),
        }
    }
}
