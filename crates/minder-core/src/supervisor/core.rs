//! The supervisor state machine: the tree, each child's state, budgets, backoff and the
//! shutdown sequence.
//!
//! Every transition happens in `handle`/`boot`: the event updates child states, then
//! `reconcile` walks the tree until nothing more changes, emitting effects as it goes.
//! Reconciliation is declarative: a group in `Up` mode starts its idle children in
//! order (each batch only after every earlier child is ready) and first stops, in
//! reverse order, the members of a pending restart set; a group in `Down` mode stops
//! its active children in reverse order. Timers are not objects: every deadline is
//! derived from current state (`Stopping::kill_at`, `Node::not_before`, the shutdown
//! deadline), so a timer can never outlive the state it was meant for.

use super::{
    Check, ChildRef, EXIT_ROOT_FAILED, Effect, EndKind, Event, ExitStatus, FailureReason, NodeId,
    ProbeKind, ProbeOutcome, Report, ServiceId, ShutdownCause, Time,
};
use crate::spec::{
    AutoShutdown, BackoffSpec, GroupSpec, NodeSpec, ReadyCheck, RestartType, ServiceKind,
    ServiceSpec, Spec, Strategy,
};
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

/// The root group is always node 0.
const ROOT: NodeId = NodeId(0);

/// Reconciliation reaches a fixpoint in a few passes; this bound only guards against a
/// bug turning into a hang of the whole supervisor.
const MAX_RECONCILE_PASSES: usize = 10_000;

/// The decision-making half of minder. Created from a `Spec` by the runtime (or a
/// test's simulator), which owns it for minder's whole life and is its only caller.
pub struct Supervisor {
    /// Arena of groups and services; `NodeId` indexes it, the root is `ROOT`.
    nodes: Vec<Node>,
    /// One entry per service instance; `ServiceId` indexes it.
    services: Vec<ServiceState>,
    auto_shutdown: AutoShutdown,
    shutdown_timeout: Duration,
    phase: Phase,
    /// Jitter source; seeded by the caller so runs are reproducible.
    rng: fastrand::Rng,
    /// The `now` of the event being handled (or of the last one).
    now: Time,
    /// Effects produced while handling the current event.
    out: Vec<Effect>,
    /// Set by every state change during reconciliation; drives the fixpoint loop.
    dirty: bool,
    /// The last start wave handed out (see `Node::start_set`).
    last_set: u64,
}

struct Node {
    name: String,
    parent: Option<NodeId>,
    kind: NodeKind,
    /// An operator stopped it: it stays down, and counts as ready for ordering.
    held: bool,
    /// Member of a restart set that must go down before the set starts again.
    pending_restart: bool,
    /// Not to be started before this time (the failed child's backoff delay).
    not_before: Time,
    /// Instances of one service share a batch: started together, stopped together.
    batch: usize,
    /// The start wave it belongs to: every child of a group starting fresh shares one,
    /// and each restart decision gives its whole restart set a new one. A child waits
    /// for earlier siblings of its own wave, so a restart set comes up in order while
    /// an unrelated sibling's crash loop holds nobody up.
    start_set: u64,
    /// Not started yet since its group (re)started: it waits for every earlier sibling
    /// to be ready, whatever their wave (the initial ordered start).
    fresh: bool,
}

impl Node {
    /// The supervision fields of a node not started yet; name, parent and kind are
    /// placeholders for the caller to fill in.
    fn unstarted() -> Node {
        Node {
            name: String::new(),
            parent: None,
            kind: NodeKind::Service(ServiceId(usize::MAX)),
            held: false,
            pending_restart: false,
            not_before: Time::ZERO,
            batch: 0,
            start_set: 0,
            fresh: true,
        }
    }
}

enum NodeKind {
    Service(ServiceId),
    Group(Group),
}

struct Group {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    children: Vec<NodeId>,
    mode: GroupMode,
    /// Its budget was exceeded: once every child is down it fails upwards.
    failing: bool,
    /// Times of the restart decisions inside the current window.
    restarts: VecDeque<Time>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GroupMode {
    Up,
    Down,
}

struct ServiceState {
    spec: ServiceSpec,
    node: NodeId,
    /// Grows on every spawn; names the current incarnation.
    generation: u64,
    run: Run,
    /// Consecutive unplanned ends that led to a restart (backoff's `n`).
    failures: u32,
    /// Every start after the first.
    restarts: u64,
    started_once: bool,
    /// Becomes `Done` instead of idle when its current stop completes (a temporary
    /// service stopped by a sibling's restart is not restarted, as in OTP).
    retire_after_stop: bool,
    last_status: Option<ExitStatus>,
    /// Schedules and counters of the current incarnation's checks; reset at each spawn.
    checks: Checks,
    last_ready_probe: Option<ProbeRecord>,
    last_health_probe: Option<ProbeRecord>,
    /// Why the service was last restarted after an unplanned end.
    last_restart_reason: Option<EndKind>,
    /// Since when the current incarnation has been ready and passing its checks:
    /// set at ready, moved forward by every failed health check. A run counts as
    /// stable for backoff (`reset_after`) from here, never from the spawn.
    healthy_since: Option<Time>,
}

/// When the next check of each kind is due. `None` means not scheduled: no such check,
/// a probe of that kind in flight, or (for readiness) already ready.
#[derive(Clone, Debug, Default, PartialEq)]
struct Checks {
    ready_probe_at: Option<Time>,
    /// Not ready by then: a failed start.
    ready_deadline: Option<Time>,
    health_probe_at: Option<Time>,
    memory_at: Option<Time>,
    /// Consecutive health failures that counted (outside `start_period`).
    health_failures: u32,
    /// The watchdog timeout in force (the spec's, or the service's `WATCHDOG_USEC`).
    watchdog: Option<Duration>,
    /// Armed at ready: no `WATCHDOG=1` by then is a failure.
    watchdog_at: Option<Time>,
    /// When the probe of each kind now in flight was due. The next one is due an
    /// interval after that, not after its result: results that arrive together (one
    /// reap collects many exec probes) must not pull their next probes together.
    ready_due: Time,
    health_due: Time,
    memory_due: Time,
}

/// An interval after `due`, or now if that has already passed (a slow probe).
fn next_due(due: Time, interval: Duration, now: Time) -> Time {
    (due + interval).max(now)
}

/// The last result of one kind of probe, for status output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRecord {
    pub at: Time,
    pub passed: bool,
    /// Why it failed; empty when it passed.
    pub detail: String,
}

/// A service's life cycle. The data each state needs travels with it.
#[derive(Clone, Debug, PartialEq)]
enum Run {
    /// Not running; started by reconciliation once wanted and allowed.
    Idle,
    /// `Effect::Spawn` was emitted; waiting for `Spawned`/`SpawnFailed`.
    Starting {
        stop_requested: bool,
    },
    Running {
        pid: i32,
        since: Time,
        ready: bool,
    },
    Stopping {
        pid: i32,
        cause: StopCause,
        kill_at: Time,
        killed: bool,
    },
    /// Ended for good: a temporary service that ended, a finished oneshot, a transient
    /// service that exited normally. Counts as ready; started again only by an
    /// operator, a restart set holding a oneshot, or a fresh start of its group.
    Done {
        code: i32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum StopCause {
    /// minder stopped it: never a failure.
    Planned,
    /// minder ended it for a failure.
    Failure(FailureReason),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Running,
    ShuttingDown { deadline: Time, code: i32 },
    Exited,
}

/// A read-only view of one service, for status output and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView<'a> {
    pub name: &'a str,
    pub state: &'static str,
    pub pid: Option<i32>,
    pub generation: u64,
    pub restarts: u64,
    pub backoff_count: u32,
    pub last_status: Option<ExitStatus>,
    /// Why it was last restarted after an unplanned end (exit, signal, failed check).
    pub last_restart_reason: Option<EndKind>,
    pub last_ready_probe: Option<&'a ProbeRecord>,
    pub last_health_probe: Option<&'a ProbeRecord>,
}

impl Supervisor {
    /// Build the tree of `spec`. Nothing starts until `boot`.
    pub fn new(spec: &Spec, seed: u64) -> Supervisor {
        let mut supervisor = Supervisor {
            nodes: Vec::new(),
            services: Vec::new(),
            auto_shutdown: spec.root.auto_shutdown,
            shutdown_timeout: spec.shutdown_timeout,
            phase: Phase::Running,
            rng: fastrand::Rng::with_seed(seed),
            now: Time::ZERO,
            out: Vec::new(),
            dirty: false,
            last_set: 0,
        };
        supervisor.add_group(&spec.root, None);
        supervisor
    }

    fn add_group(&mut self, spec: &GroupSpec, parent: Option<NodeId>) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            name: spec.name.clone(),
            parent,
            kind: NodeKind::Group(Group {
                strategy: spec.strategy,
                intensity: spec.intensity,
                period: spec.period,
                children: Vec::new(),
                mode: GroupMode::Down,
                failing: false,
                restarts: VecDeque::new(),
            }),
            ..Node::unstarted()
        });
        let mut children = Vec::with_capacity(spec.children.len());
        let mut batch = 0;
        let mut previous_base: Option<&str> = None;
        for child in &spec.children {
            let child_id = match child {
                NodeSpec::Service(service) => self.add_service(service, id),
                NodeSpec::Group(group) => self.add_group(group, Some(id)),
            };
            // Instances of one service are consecutive siblings sharing a batch.
            let base = match child {
                NodeSpec::Service(service) if service.instance.is_some() => {
                    Some(service.base_name.as_str())
                }
                _ => None,
            };
            if base.is_none() || base != previous_base {
                batch += 1;
            }
            previous_base = base;
            self.nodes[child_id.0].batch = batch;
            children.push(child_id);
        }
        if let NodeKind::Group(group) = &mut self.nodes[id.0].kind {
            group.children = children;
        }
        id
    }

    fn add_service(&mut self, spec: &ServiceSpec, parent: NodeId) -> NodeId {
        let node = NodeId(self.nodes.len());
        let sid = ServiceId(self.services.len());
        self.nodes.push(Node {
            name: spec.name.clone(),
            parent: Some(parent),
            kind: NodeKind::Service(sid),
            ..Node::unstarted()
        });
        self.services.push(ServiceState {
            spec: spec.clone(),
            node,
            generation: 0,
            run: Run::Idle,
            failures: 0,
            restarts: 0,
            started_once: false,
            retire_after_stop: false,
            last_status: None,
            checks: Checks::default(),
            last_ready_probe: None,
            last_health_probe: None,
            last_restart_reason: None,
            healthy_since: None,
        });
        node
    }

    // ----- public interface ---------------------------------------------------------

    /// Start the tree: the root comes up and its first children are spawned.
    pub fn boot(&mut self, now: Time) -> Vec<Effect> {
        self.now = now;
        if self.phase == Phase::Running {
            self.start_group_fresh(ROOT);
            self.reconcile();
        }
        std::mem::take(&mut self.out)
    }

    /// Feed one event at time `now` (never earlier than the previous call's).
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Effect> {
        self.now = self.now.max(now);
        if self.phase == Phase::Exited {
            return Vec::new();
        }
        let check_only = matches!(
            event,
            Event::ProbeResult { .. } | Event::WatchdogPing { .. } | Event::WatchdogTimeout { .. }
        );
        self.dirty = false;
        match event {
            Event::Spawned { child, pid } => self.on_spawned(child, pid),
            Event::SpawnFailed {
                child,
                code,
                reason,
            } => self.on_spawn_failed(child, code, reason),
            Event::Exited { child, status } => self.on_exited(child, status),
            Event::Ready { child } => self.on_ready(child),
            Event::Failed { child, reason } => self.on_failed(child, reason),
            Event::ProbeResult {
                child,
                kind,
                outcome,
            } => self.on_probe_result(child, kind, outcome),
            Event::WatchdogPing { child } => self.on_watchdog_ping(child),
            Event::WatchdogTimeout { child, timeout } => self.on_watchdog_timeout(child, timeout),
            Event::Timer => self.on_timer(),
            Event::Start(node) => self.on_operator_start(node),
            Event::Stop(node) => self.on_operator_stop(node),
            Event::Restart(node) => self.on_operator_restart(node),
            Event::Shutdown => self.on_shutdown_request(),
        }
        // A passing probe or a watchdog ping changes no child's state; only when the
        // handler marked something (ready, condemned) does the tree need a walk.
        if self.phase != Phase::Exited && (!check_only || self.dirty) {
            self.reconcile();
        }
        std::mem::take(&mut self.out)
    }

    /// The earliest moment at which `handle(Event::Timer, ..)` has work to do, if any.
    pub fn next_deadline(&self) -> Option<Time> {
        let mut next: Option<Time> = None;
        let mut consider = |at: Time| {
            next = Some(next.map_or(at, |current: Time| current.min(at)));
        };
        match self.phase {
            Phase::Exited => return None,
            Phase::ShuttingDown { deadline, .. } => consider(deadline),
            Phase::Running => {}
        }
        for service in &self.services {
            match service.run {
                Run::Running { .. } => {
                    let checks = &service.checks;
                    for at in [
                        checks.ready_deadline,
                        checks.ready_probe_at,
                        checks.health_probe_at,
                        checks.memory_at,
                        checks.watchdog_at,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        consider(at);
                    }
                }
                Run::Stopping {
                    kill_at,
                    killed: false,
                    ..
                } => consider(kill_at),
                Run::Idle => {
                    let node = &self.nodes[service.node.0];
                    if node.not_before > self.now && self.wanted_up(service.node) {
                        consider(node.not_before);
                    }
                }
                _ => {}
            }
        }
        for (index, node) in self.nodes.iter().enumerate() {
            if let NodeKind::Group(group) = &node.kind
                && group.mode == GroupMode::Down
                && node.not_before > self.now
                && self.wanted_up(NodeId(index))
            {
                consider(node.not_before);
            }
        }
        next
    }

    /// Every node with this name: a service, a group, or all instances of a service.
    pub fn lookup(&self, name: &str) -> Vec<NodeId> {
        let mut found = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let matches = node.name == name
                || matches!(node.kind, NodeKind::Service(sid)
                    if self.services[sid.0].spec.base_name == name);
            if matches && index != ROOT.0 {
                found.push(NodeId(index));
            }
        }
        found
    }

    /// Every service with its name, in start order (depth first). Ids are handed out
    /// in this order, starting at 0.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &str)> {
        self.services
            .iter()
            .enumerate()
            .map(|(index, service)| (ServiceId(index), service.spec.name.as_str()))
    }

    pub fn service_name(&self, id: ServiceId) -> Option<&str> {
        self.services
            .get(id.0)
            .map(|service| service.spec.name.as_str())
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Whether the whole tree is up and ready (the root counts as ready, design.md §4),
    /// and no shutdown has begun: the moment to tell systemd `READY=1`.
    pub fn tree_ready(&self) -> bool {
        self.phase == Phase::Running && self.ready(ROOT)
    }

    /// Whether this incarnation is the current one (its exit would be acted on).
    pub fn is_current(&self, child: ChildRef) -> bool {
        self.services
            .get(child.id.0)
            .is_some_and(|service| service.generation == child.generation)
    }

    pub fn view(&self, id: ServiceId) -> Option<ServiceView<'_>> {
        let service = self.services.get(id.0)?;
        let node = &self.nodes[service.node.0];
        let (state, pid) = match &service.run {
            Run::Idle if node.held => ("stopped", None),
            Run::Idle if !service.started_once => ("waiting", None),
            Run::Idle if node.not_before > self.now => ("backoff", None),
            Run::Idle => ("waiting", None),
            Run::Starting { .. } => ("starting", None),
            Run::Running {
                pid, ready: true, ..
            } => ("running", Some(*pid)),
            Run::Running {
                pid, ready: false, ..
            } => ("started", Some(*pid)),
            Run::Stopping { pid, .. } => ("stopping", Some(*pid)),
            Run::Done { .. } => ("done", None),
        };
        Some(ServiceView {
            name: &service.spec.name,
            state,
            pid,
            generation: service.generation,
            restarts: service.restarts,
            backoff_count: service.failures,
            last_status: service.last_status,
            last_restart_reason: service.last_restart_reason,
            last_ready_probe: service.last_ready_probe.as_ref(),
            last_health_probe: service.last_health_probe.as_ref(),
        })
    }

    /// Restart decisions currently inside the window of the group `node`.
    pub fn restarts_in_period(&self, node: NodeId) -> Option<usize> {
        match &self.nodes.get(node.0)?.kind {
            NodeKind::Group(group) => Some(group.restarts.len()),
            NodeKind::Service(_) => None,
        }
    }

    /// Whether the group at `node` has given up: failing, down, or the tree is
    /// shutting down. Only then may its window hold more than `intensity` entries.
    pub fn group_escalated(&self, node: NodeId) -> bool {
        match self.nodes.get(node.0).map(|n| &n.kind) {
            Some(NodeKind::Group(group)) => {
                group.failing || group.mode == GroupMode::Down || self.shutting_down()
            }
            _ => false,
        }
    }

    /// The name of the group at `node` (empty if it is not a group).
    pub fn group_name(&self, node: NodeId) -> &str {
        match self.nodes.get(node.0) {
            Some(Node {
                name,
                kind: NodeKind::Group(_),
                ..
            }) => name,
            _ => "",
        }
    }

    /// Every group's node id with its intensity (for invariant checks and metrics).
    pub fn groups(&self) -> Vec<(NodeId, String, u32)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| match &node.kind {
                NodeKind::Group(group) => Some((NodeId(index), node.name.clone(), group.intensity)),
                NodeKind::Service(_) => None,
            })
            .collect()
    }

    /// The tree's state as indented text (SIGUSR2 writes it to the log).
    pub fn describe(&self) -> String {
        let mut text = String::new();
        self.describe_node(ROOT, 0, &mut text);
        text
    }

    fn describe_node(&self, id: NodeId, depth: usize, text: &mut String) {
        let node = &self.nodes[id.0];
        let indent = "  ".repeat(depth);
        match &node.kind {
            NodeKind::Group(group) => {
                let mode = match (group.mode, group.failing) {
                    (_, true) => "failing",
                    (GroupMode::Up, false) => "up",
                    (GroupMode::Down, false) => "down",
                };
                text.push_str(&format!(
                    "{indent}{} group {mode}{} restarts {}/{} per {:?}\n",
                    node.name,
                    if node.held { " (held)" } else { "" },
                    group.restarts.len(),
                    group.intensity,
                    group.period
                ));
                for child in &group.children {
                    self.describe_node(*child, depth + 1, text);
                }
            }
            NodeKind::Service(sid) => {
                if let Some(view) = self.view(*sid) {
                    let pid = view.pid.map_or(String::new(), |pid| format!(" pid {pid}"));
                    let reason = match view.last_restart_reason {
                        Some(EndKind::Failure(reason)) => format!(" (last: {reason})"),
                        Some(EndKind::Abnormal) => " (last: abnormal exit)".to_string(),
                        Some(EndKind::Normal) => " (last: normal exit)".to_string(),
                        Some(EndKind::StartFailure) => " (last: start failure)".to_string(),
                        Some(EndKind::Stopped) | None => String::new(),
                    };
                    let health = match view.last_health_probe {
                        Some(record) if !record.passed => {
                            format!(", health failing: {}", record.detail)
                        }
                        Some(_) => ", healthy".to_string(),
                        None => String::new(),
                    };
                    text.push_str(&format!(
                        "{indent}{} {}{pid} restarts {}{reason}{health}\n",
                        view.name, view.state, view.restarts
                    ));
                }
            }
        }
    }

    // ----- events -------------------------------------------------------------------

    fn current(&self, child: ChildRef) -> Option<ServiceId> {
        self.is_current(child).then_some(child.id)
    }

    fn on_spawned(&mut self, child: ChildRef, pid: i32) {
        let Some(sid) = self.current(child) else {
            return;
        };
        let now = self.now;
        let service = &mut self.services[sid.0];
        let Run::Starting { stop_requested } = service.run else {
            return;
        };
        // A oneshot is ready when it has finished, not when it has started; a service
        // with a ready check when the check passes.
        let oneshot = service.spec.kind == ServiceKind::Oneshot;
        let ready = !oneshot && service.spec.ready.is_none();
        service.checks = Checks::default();
        service.healthy_since = ready.then_some(now);
        if stop_requested {
            let (signal, timeout) = (service.spec.stop_signal, service.spec.stop_timeout);
            service.run = Run::Stopping {
                pid,
                cause: StopCause::Planned,
                kill_at: now + timeout,
                killed: false,
            };
            self.out
                .push(Effect::Report(Report::Started { child, pid }));
            self.out.push(Effect::Signal { child, pid, signal });
            return;
        }
        service.run = Run::Running {
            pid,
            since: now,
            ready,
        };
        let checks = &mut service.checks;
        if let (Some(spec), false) = (&service.spec.ready, oneshot) {
            checks.ready_deadline = Some(now + spec.deadline);
            if matches!(spec.check, ReadyCheck::Probe { .. }) {
                checks.ready_probe_at = Some(now);
            }
        }
        // `start_period` runs from exec, so liveness checks do too.
        if let Some(health) = &service.spec.health {
            if health.probe.is_some() {
                checks.health_probe_at = Some(now + health.interval);
            }
            if health.max_memory.is_some() {
                checks.memory_at = Some(now + health.interval);
            }
        }
        checks.watchdog = service.spec.watchdog;
        self.out
            .push(Effect::Report(Report::Started { child, pid }));
        if ready {
            self.out.push(Effect::Report(Report::Ready { child }));
        }
        // The first readiness probe runs right after exec, not a turn later.
        self.run_due_checks(sid);
    }

    fn on_spawn_failed(&mut self, child: ChildRef, code: i32, reason: String) {
        let Some(sid) = self.current(child) else {
            return;
        };
        let Run::Starting { stop_requested } = self.services[sid.0].run else {
            return;
        };
        self.out
            .push(Effect::Report(Report::StartFailed { child, reason }));
        if stop_requested {
            // Like any planned stop: a temporary child retired by its restart set is
            // done, not started again with the set.
            let service = &mut self.services[sid.0];
            service.run = if std::mem::take(&mut service.retire_after_stop) {
                Run::Done { code }
            } else {
                Run::Idle
            };
            return;
        }
        self.service_ended(sid, EndKind::StartFailure, code);
    }

    fn on_exited(&mut self, child: ChildRef, status: ExitStatus) {
        let Some(sid) = self.current(child) else {
            return;
        };
        let service = &mut self.services[sid.0];
        let end = match service.run {
            Run::Running { .. } => match status {
                ExitStatus::Exited(code) if service.spec.success_codes.contains(&code) => {
                    EndKind::Normal
                }
                _ => EndKind::Abnormal,
            },
            Run::Stopping {
                cause: StopCause::Planned,
                ..
            } => EndKind::Stopped,
            Run::Stopping {
                cause: StopCause::Failure(reason),
                ..
            } => EndKind::Failure(reason),
            // The runtime reports `Spawned` before any exit of that pid; an exit here
            // can only be a stale or duplicated report.
            Run::Starting { .. } | Run::Idle | Run::Done { .. } => return,
        };
        service.last_status = Some(status);
        self.out
            .push(Effect::Report(Report::Exited { child, status, end }));
        self.service_ended(sid, end, status.shell_code());
    }

    fn on_ready(&mut self, child: ChildRef) {
        let Some(sid) = self.current(child) else {
            return;
        };
        self.mark_ready(sid, child);
    }

    /// The readiness check passed: later siblings may start, the watchdog is armed.
    fn mark_ready(&mut self, sid: ServiceId, child: ChildRef) {
        let now = self.now;
        let service = &mut self.services[sid.0];
        if let Run::Running {
            ready: ready @ false,
            ..
        } = &mut service.run
        {
            *ready = true;
            service.healthy_since = Some(now);
            service.checks.ready_deadline = None;
            service.checks.ready_probe_at = None;
            service.checks.watchdog_at = service.checks.watchdog.map(|timeout| now + timeout);
            self.dirty = true;
            self.out.push(Effect::Report(Report::Ready { child }));
        }
    }

    fn on_probe_result(&mut self, child: ChildRef, kind: ProbeKind, outcome: ProbeOutcome) {
        let Some(sid) = self.current(child) else {
            return;
        };
        let now = self.now;
        let service = &mut self.services[sid.0];
        let Run::Running { since, ready, .. } = service.run else {
            return;
        };
        let record = |outcome: &ProbeOutcome| ProbeRecord {
            at: now,
            passed: !matches!(outcome, ProbeOutcome::Failed(_)),
            detail: match outcome {
                ProbeOutcome::Failed(reason) => reason.clone(),
                ProbeOutcome::Passed | ProbeOutcome::Memory(_) => String::new(),
            },
        };
        match kind {
            ProbeKind::Ready => {
                let Some(ReadyCheck::Probe { interval, .. }) =
                    service.spec.ready.as_ref().map(|ready| ready.check)
                else {
                    return;
                };
                service.last_ready_probe = Some(record(&outcome));
                if ready {
                    return;
                }
                match outcome {
                    ProbeOutcome::Passed => self.mark_ready(sid, child),
                    ProbeOutcome::Failed(_) | ProbeOutcome::Memory(_) => {
                        service.checks.ready_probe_at =
                            Some(next_due(service.checks.ready_due, interval, now));
                    }
                }
            }
            ProbeKind::Health => {
                let Some(spec) = &service.spec.health else {
                    return;
                };
                let (interval, start_period, threshold) =
                    (spec.interval, spec.start_period, spec.failures);
                service.last_health_probe = Some(record(&outcome));
                service.checks.health_probe_at =
                    Some(next_due(service.checks.health_due, interval, now));
                let ProbeOutcome::Failed(reason) = outcome else {
                    service.checks.health_failures = 0;
                    return;
                };
                if service.healthy_since.is_some() {
                    service.healthy_since = Some(now);
                }
                // Failures during the grace period after exec do not count.
                let counts = now.saturating_sub(since) >= start_period;
                if counts {
                    service.checks.health_failures += 1;
                }
                let consecutive = if counts {
                    service.checks.health_failures
                } else {
                    0
                };
                self.out.push(Effect::Report(Report::HealthFailed {
                    child,
                    kind,
                    reason,
                    consecutive,
                }));
                if counts && consecutive >= threshold {
                    self.condemn(sid, FailureReason::Health);
                }
            }
            ProbeKind::Memory => {
                let (Some(spec), ProbeOutcome::Memory(bytes)) = (&service.spec.health, &outcome)
                else {
                    return;
                };
                let (interval, limit, bytes) =
                    (spec.interval, spec.max_memory.unwrap_or(u64::MAX), *bytes);
                service.checks.memory_at = Some(next_due(service.checks.memory_due, interval, now));
                if bytes > limit {
                    let reason =
                        format!("resident memory {bytes} bytes exceeds max_memory {limit}");
                    service.last_health_probe = Some(ProbeRecord {
                        at: now,
                        passed: false,
                        detail: reason.clone(),
                    });
                    self.out.push(Effect::Report(Report::HealthFailed {
                        child,
                        kind,
                        reason,
                        consecutive: 1,
                    }));
                    self.condemn(sid, FailureReason::Memory);
                }
            }
        }
    }

    fn on_watchdog_ping(&mut self, child: ChildRef) {
        let Some(sid) = self.current(child) else {
            return;
        };
        let now = self.now;
        let checks = &mut self.services[sid.0].checks;
        // Armed at ready: a ping before then has nothing to feed.
        if let (Some(timeout), Some(_)) = (checks.watchdog, checks.watchdog_at) {
            checks.watchdog_at = Some(now + timeout);
        }
    }

    fn on_watchdog_timeout(&mut self, child: ChildRef, timeout: Duration) {
        let Some(sid) = self.current(child) else {
            return;
        };
        if timeout.is_zero() {
            return;
        }
        let now = self.now;
        let checks = &mut self.services[sid.0].checks;
        checks.watchdog = Some(timeout);
        if checks.watchdog_at.is_some() {
            checks.watchdog_at = Some(now + timeout);
        }
    }

    /// minder ends a running child for a failure: stop signal now, SIGKILL after its
    /// stop_timeout; the end is then a failure with `reason`, whatever the status.
    fn condemn(&mut self, sid: ServiceId, reason: FailureReason) {
        let now = self.now;
        let service = &mut self.services[sid.0];
        let child = ChildRef {
            id: sid,
            generation: service.generation,
        };
        if let Run::Running { pid, .. } = service.run {
            service.run = Run::Stopping {
                pid,
                cause: StopCause::Failure(reason),
                kill_at: now + service.spec.stop_timeout,
                killed: false,
            };
            service.checks = Checks::default();
            let signal = service.spec.stop_signal;
            self.dirty = true;
            self.out
                .push(Effect::Report(Report::Condemned { child, reason }));
            self.out.push(Effect::Signal { child, pid, signal });
        }
    }

    fn on_failed(&mut self, child: ChildRef, reason: FailureReason) {
        let Some(sid) = self.current(child) else {
            return;
        };
        self.condemn(sid, reason);
    }

    fn on_timer(&mut self) {
        let now = self.now;
        for index in 0..self.services.len() {
            self.run_due_checks(ServiceId(index));
        }
        for index in 0..self.services.len() {
            let service = &mut self.services[index];
            if let Run::Stopping {
                pid,
                kill_at,
                killed: killed @ false,
                ..
            } = &mut service.run
                && *kill_at <= now
            {
                {
                    *killed = true;
                    let child = ChildRef {
                        id: ServiceId(index),
                        generation: service.generation,
                    };
                    let pid = *pid;
                    self.out
                        .push(Effect::Report(Report::StopTimedOut { child }));
                    self.out.push(Effect::Kill { child, pid });
                }
            }
        }
        if let Phase::ShuttingDown { deadline, code } = self.phase
            && deadline <= now
        {
            self.out.push(Effect::Report(Report::ShuttingDown {
                cause: ShutdownCause::TimedOut,
            }));
            self.kill_everything_and_exit(code);
        }
    }

    /// Ask for the probes that are due; condemn a child past its ready deadline or
    /// its watchdog.
    fn run_due_checks(&mut self, sid: ServiceId) {
        let now = self.now;
        let service = &mut self.services[sid.0];
        let Run::Running { pid, .. } = service.run else {
            return;
        };
        let child = ChildRef {
            id: sid,
            generation: service.generation,
        };
        let checks = &mut service.checks;
        if checks.ready_deadline.is_some_and(|at| at <= now) {
            self.condemn(sid, FailureReason::ReadyDeadline);
            return;
        }
        if checks.watchdog_at.is_some_and(|at| at <= now) {
            self.condemn(sid, FailureReason::Watchdog);
            return;
        }
        // A probe in flight leaves its slot empty until its result comes back.
        for (slot, due, kind) in [
            (
                &mut checks.ready_probe_at,
                &mut checks.ready_due,
                ProbeKind::Ready,
            ),
            (
                &mut checks.health_probe_at,
                &mut checks.health_due,
                ProbeKind::Health,
            ),
            (
                &mut checks.memory_at,
                &mut checks.memory_due,
                ProbeKind::Memory,
            ),
        ] {
            let Some(check) = check_of(&service.spec, kind) else {
                continue;
            };
            if let Some(at) = slot.take_if(|at| *at <= now) {
                *due = at;
                self.out.push(Effect::Probe { child, pid, check });
            }
        }
    }

    fn on_operator_start(&mut self, id: NodeId) {
        if id.0 >= self.nodes.len() || self.shutting_down() {
            return;
        }
        let wave = self.new_wave();
        let node = &mut self.nodes[id.0];
        node.held = false;
        node.not_before = self.now;
        node.start_set = wave;
        match node.kind {
            NodeKind::Service(sid) => {
                let service = &mut self.services[sid.0];
                service.failures = 0;
                if matches!(service.run, Run::Done { .. }) {
                    service.run = Run::Idle;
                }
            }
            // A held group is down; reconciliation starts it fresh once unheld.
            NodeKind::Group(_) => {}
        }
    }

    fn on_operator_stop(&mut self, id: NodeId) {
        if id.0 >= self.nodes.len() || id == ROOT {
            return;
        }
        self.nodes[id.0].held = true;
        self.nodes[id.0].pending_restart = false;
        self.ensure_stopping(id);
    }

    fn on_operator_restart(&mut self, id: NodeId) {
        if id.0 >= self.nodes.len() || id == ROOT || self.shutting_down() {
            return;
        }
        let now = self.now;
        let wave = self.new_wave();
        let node = &mut self.nodes[id.0];
        node.held = false;
        node.not_before = now;
        node.start_set = wave;
        if let NodeKind::Service(sid) = node.kind
            && matches!(self.services[sid.0].run, Run::Done { .. })
        {
            self.services[sid.0].run = Run::Idle;
        }
        if self.active(id) {
            self.nodes[id.0].pending_restart = true;
        }
    }

    fn on_shutdown_request(&mut self) {
        match self.phase {
            Phase::Running => {
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::Requested,
                }));
                self.begin_shutdown(0);
            }
            Phase::ShuttingDown { code, .. } => {
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::Forced,
                }));
                self.kill_everything_and_exit(code);
            }
            Phase::Exited => {}
        }
    }

    fn shutting_down(&self) -> bool {
        self.phase != Phase::Running
    }

    fn begin_shutdown(&mut self, code: i32) {
        self.phase = Phase::ShuttingDown {
            deadline: self.now + self.shutdown_timeout,
            code,
        };
        self.set_group_down(ROOT);
    }

    /// The second request or the end of `shutdown_timeout`: no more waiting. The
    /// runtime kills and reaps whatever is left (orphans included) before exiting.
    fn kill_everything_and_exit(&mut self, code: i32) {
        for index in 0..self.services.len() {
            let service = &mut self.services[index];
            let child = ChildRef {
                id: ServiceId(index),
                generation: service.generation,
            };
            match service.run {
                Run::Running { pid, .. } | Run::Stopping { pid, .. } => {
                    self.out.push(Effect::Kill { child, pid });
                }
                Run::Starting { .. } | Run::Idle | Run::Done { .. } => {}
            }
            service.run = Run::Idle;
        }
        self.phase = Phase::Exited;
        self.out.push(Effect::Exit { code });
    }

    // ----- ends, restart decisions, budgets -----------------------------------------

    /// A service's process is gone (or never started). Decide what follows.
    fn service_ended(&mut self, sid: ServiceId, end: EndKind, code: i32) {
        let now = self.now;
        let node_id = self.services[sid.0].node;
        let service = &mut self.services[sid.0];
        service.run = Run::Idle;
        if end == EndKind::Stopped {
            if std::mem::take(&mut service.retire_after_stop) {
                service.run = Run::Done { code };
            }
            return;
        }
        // Ends while the tree, its group or its restart set is going down anyway are
        // absorbed: the plan already in motion decides what happens next.
        if self.shutting_down() || self.nodes[node_id.0].pending_restart || !self.parent_up(node_id)
        {
            if self.services[sid.0].retire_after_stop {
                self.services[sid.0].retire_after_stop = false;
                self.services[sid.0].run = Run::Done { code };
            }
            return;
        }
        let service = &mut self.services[sid.0];
        let restart = match service.spec.kind {
            ServiceKind::Oneshot => end != EndKind::Normal,
            ServiceKind::Longrun(RestartType::Permanent) => true,
            ServiceKind::Longrun(RestartType::Transient) => end != EndKind::Normal,
            ServiceKind::Longrun(RestartType::Temporary) => false,
        };
        if !restart {
            service.run = Run::Done { code };
            self.check_auto_shutdown(sid, code);
            return;
        }
        // Backoff: a run that stayed up and healthy for `reset_after` resets the count
        // of consecutive failures. A failed start never ran; an end minder forced for
        // a failed check (health, memory, watchdog, deadline) was not healthy at the
        // end; a service that never became ready never counts as up.
        let stable = !matches!(end, EndKind::StartFailure | EndKind::Failure(_))
            && service
                .healthy_since
                .is_some_and(|t| now.saturating_sub(t) >= service.spec.backoff.reset_after);
        if stable {
            service.failures = 0;
        }
        service.failures = service.failures.saturating_add(1);
        service.last_restart_reason = Some(end);
        let delay = backoff_delay(&service.spec.backoff, service.failures, &mut self.rng);
        self.child_failed(node_id, delay);
    }

    /// `child` (a service or a group) failed and must be restarted after `delay`:
    /// count the decision against its parent's budget, then schedule the restart set.
    fn child_failed(&mut self, child: NodeId, delay: Duration) {
        let now = self.now;
        let Some(parent) = self.nodes[child.0].parent else {
            // The root itself failed: stop everything and exit 3.
            self.out.push(Effect::Report(Report::ShuttingDown {
                cause: ShutdownCause::RootFailed,
            }));
            self.begin_shutdown(EXIT_ROOT_FAILED);
            return;
        };
        let NodeKind::Group(group) = &mut self.nodes[parent.0].kind else {
            return;
        };
        // Sliding window as in OTP: a restart exactly `period` ago still counts, one
        // further back does not.
        while group
            .restarts
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > group.period)
        {
            group.restarts.pop_front();
        }
        group.restarts.push_back(now);
        if group.restarts.len() > group.intensity as usize {
            self.out
                .push(Effect::Report(Report::Escalated { group: parent }));
            if parent == ROOT {
                // The root has no parent to fail to: stop everything and exit 3,
                // bounded by shutdown_timeout like any shutdown.
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::RootFailed,
                }));
                self.begin_shutdown(EXIT_ROOT_FAILED);
            } else {
                group.failing = true;
                self.set_group_down(parent);
            }
            return;
        }
        let members: Vec<NodeId> = {
            let position = group.children.iter().position(|c| *c == child).unwrap_or(0);
            match group.strategy {
                Strategy::OneForOne => vec![child],
                Strategy::OneForAll => group.children.clone(),
                Strategy::RestForOne => group.children[position..].to_vec(),
            }
        };
        if let NodeKind::Service(sid) = self.nodes[child.0].kind {
            self.out
                .push(Effect::Report(Report::RestartScheduled { id: sid, delay }));
        }
        let restart_at = now + delay;
        let wave = self.new_wave();
        for member in members {
            if self.nodes[member.0].held {
                continue;
            }
            self.nodes[member.0].not_before = restart_at;
            self.nodes[member.0].start_set = wave;
            let active = self.active(member);
            if let NodeKind::Service(sid) = self.nodes[member.0].kind {
                let service = &mut self.services[sid.0];
                let temporary = service.spec.kind == ServiceKind::Longrun(RestartType::Temporary);
                match service.run {
                    // A finished oneshot runs again in its place; a transient service
                    // that ended normally comes back with its set. A temporary one
                    // never comes back (OTP).
                    Run::Done { .. } if !temporary => service.run = Run::Idle,
                    _ if active && temporary => service.retire_after_stop = true,
                    _ => {}
                }
            }
            if active {
                self.nodes[member.0].pending_restart = true;
            }
        }
    }

    fn check_auto_shutdown(&mut self, sid: ServiceId, code: i32) {
        if !self.services[sid.0].spec.significant {
            return;
        }
        let trigger = match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => self
                .services
                .iter()
                .filter(|service| service.spec.significant)
                .all(|service| matches!(service.run, Run::Done { .. })),
        };
        if trigger {
            self.out.push(Effect::Report(Report::ShuttingDown {
                cause: ShutdownCause::Significant { id: sid, code },
            }));
            self.begin_shutdown(code);
        }
    }

    // ----- reconciliation -----------------------------------------------------------

    fn reconcile(&mut self) {
        for _ in 0..MAX_RECONCILE_PASSES {
            self.dirty = false;
            self.reconcile_node(ROOT);
            if self.phase != Phase::Running && !self.active(ROOT) {
                if let Phase::ShuttingDown { code, .. } = self.phase {
                    self.phase = Phase::Exited;
                    self.out.push(Effect::Exit { code });
                }
                return;
            }
            if !self.dirty {
                return;
            }
        }
        debug_assert!(false, "reconciliation did not settle");
    }

    fn reconcile_node(&mut self, id: NodeId) {
        let NodeKind::Group(group) = &self.nodes[id.0].kind else {
            return;
        };
        let children = group.children.clone();
        for child in &children {
            self.reconcile_node(*child);
        }
        // Read the mode only now: a child failing upwards may just have changed it.
        let NodeKind::Group(group) = &self.nodes[id.0].kind else {
            return;
        };
        match group.mode {
            GroupMode::Down => self.reconcile_down(id, &children),
            GroupMode::Up => self.reconcile_up(id, &children),
        }
    }

    /// Stop active children last batch first; once all are down, a failing group
    /// fails upwards.
    fn reconcile_down(&mut self, id: NodeId, children: &[NodeId]) {
        if let Some(batch) = children
            .iter()
            .rev()
            .find(|c| self.active(**c))
            .map(|c| self.nodes[c.0].batch)
        {
            let members: Vec<NodeId> = children
                .iter()
                .copied()
                .filter(|c| self.nodes[c.0].batch == batch)
                .collect();
            for child in members {
                self.ensure_stopping(child);
            }
            return;
        }
        let NodeKind::Group(group) = &mut self.nodes[id.0].kind else {
            return;
        };
        if group.failing {
            group.failing = false;
            self.dirty = true;
            if self.shutting_down() {
                return;
            }
            // Only a group that its parent still wants up escalates; otherwise the
            // parent's own plan (shutdown, a restart set) already covers it.
            let parent_wants = self.nodes[id.0].parent.is_none_or(|_| self.parent_up(id));
            if parent_wants && !self.nodes[id.0].pending_restart {
                self.child_failed(id, Duration::ZERO);
            }
        }
    }

    fn reconcile_up(&mut self, id: NodeId, children: &[NodeId]) {
        // First the pending restart set goes down, last batch first.
        let pending_batch = children
            .iter()
            .rev()
            .find(|c| self.nodes[c.0].pending_restart && self.active(**c))
            .map(|c| self.nodes[c.0].batch);
        if let Some(batch) = pending_batch {
            let members: Vec<NodeId> = children
                .iter()
                .copied()
                .filter(|c| self.nodes[c.0].batch == batch && self.nodes[c.0].pending_restart)
                .collect();
            for child in members {
                self.ensure_stopping(child);
            }
            return;
        }
        for child in children {
            if self.nodes[child.0].pending_restart {
                self.nodes[child.0].pending_restart = false;
                self.dirty = true;
            }
        }
        // A group its parent is taking down (shutdown, its parent failing or stopping
        // it for a restart set) starts nothing, even before its own turn to stop comes.
        if !self.wanted_up(id) || self.nodes[id.0].pending_restart {
            return;
        }
        // Then start in order. A batch member starts once every earlier sibling of its
        // wave is ready; a fresh one (the group's initial start) waits for every
        // earlier sibling. Members of one batch do not wait for each other.
        let mut any_not_ready = false;
        let mut waves_not_ready: BTreeSet<u64> = BTreeSet::new();
        let mut index = 0;
        while index < children.len() {
            let batch = self.nodes[children[index].0].batch;
            let end = children[index..]
                .iter()
                .position(|c| self.nodes[c.0].batch != batch)
                .map_or(children.len(), |offset| index + offset);
            for child in &children[index..end] {
                let node = &self.nodes[child.0];
                let allowed = if node.fresh {
                    !any_not_ready
                } else {
                    !waves_not_ready.contains(&node.start_set)
                };
                if allowed && self.needs_start(*child) && node.not_before <= self.now {
                    self.start_node(*child);
                }
            }
            for child in &children[index..end] {
                if !self.ready(*child) {
                    any_not_ready = true;
                    waves_not_ready.insert(self.nodes[child.0].start_set);
                }
            }
            index = end;
        }
    }

    fn new_wave(&mut self) -> u64 {
        self.last_set += 1;
        self.last_set
    }

    fn needs_start(&self, id: NodeId) -> bool {
        let node = &self.nodes[id.0];
        if node.held {
            return false;
        }
        match &node.kind {
            NodeKind::Service(sid) => self.services[sid.0].run == Run::Idle,
            NodeKind::Group(group) => {
                group.mode == GroupMode::Down && !group.failing && !self.active(id)
            }
        }
    }

    fn start_node(&mut self, id: NodeId) {
        self.dirty = true;
        self.nodes[id.0].fresh = false;
        match self.nodes[id.0].kind {
            NodeKind::Service(sid) => {
                let service = &mut self.services[sid.0];
                service.generation += 1;
                if service.started_once {
                    service.restarts += 1;
                }
                service.started_once = true;
                service.run = Run::Starting {
                    stop_requested: false,
                };
                let child = ChildRef {
                    id: sid,
                    generation: service.generation,
                };
                self.out.push(Effect::Spawn { child });
            }
            NodeKind::Group(_) => self.start_group_fresh(id),
        }
    }

    /// A (re)started group begins as a new supervisor would: empty budgets, zero
    /// backoff counts, every child to be started again, finished ones included.
    fn start_group_fresh(&mut self, id: NodeId) {
        self.dirty = true;
        let now = self.now;
        let NodeKind::Group(group) = &mut self.nodes[id.0].kind else {
            return;
        };
        group.mode = GroupMode::Up;
        group.failing = false;
        group.restarts.clear();
        let children = group.children.clone();
        let wave = self.new_wave();
        for child in children {
            let node = &mut self.nodes[child.0];
            node.not_before = now;
            node.pending_restart = false;
            node.start_set = wave;
            node.fresh = true;
            if let NodeKind::Service(sid) = node.kind {
                let service = &mut self.services[sid.0];
                service.failures = 0;
                service.retire_after_stop = false;
                if matches!(service.run, Run::Done { .. }) {
                    service.run = Run::Idle;
                }
            }
        }
    }

    fn set_group_down(&mut self, id: NodeId) {
        if let NodeKind::Group(group) = &mut self.nodes[id.0].kind
            && group.mode != GroupMode::Down
        {
            group.mode = GroupMode::Down;
            self.dirty = true;
        }
    }

    /// Begin stopping `id` (planned): a service gets its stop signal, a group goes down.
    fn ensure_stopping(&mut self, id: NodeId) {
        let now = self.now;
        match self.nodes[id.0].kind {
            NodeKind::Group(_) => self.set_group_down(id),
            NodeKind::Service(sid) => {
                let service = &mut self.services[sid.0];
                let child = ChildRef {
                    id: sid,
                    generation: service.generation,
                };
                match service.run {
                    Run::Running { pid, .. } => {
                        service.run = Run::Stopping {
                            pid,
                            cause: StopCause::Planned,
                            kill_at: now + service.spec.stop_timeout,
                            killed: false,
                        };
                        let signal = service.spec.stop_signal;
                        self.out.push(Effect::Signal { child, pid, signal });
                        self.dirty = true;
                    }
                    Run::Starting {
                        stop_requested: false,
                    } => {
                        service.run = Run::Starting {
                            stop_requested: true,
                        };
                        self.dirty = true;
                    }
                    Run::Starting {
                        stop_requested: true,
                    }
                    | Run::Stopping { .. }
                    | Run::Idle
                    | Run::Done { .. } => {}
                }
            }
        }
    }

    // ----- predicates ---------------------------------------------------------------

    /// Whether anything of `id` is still (or about to be) a live process.
    fn active(&self, id: NodeId) -> bool {
        match &self.nodes[id.0].kind {
            NodeKind::Service(sid) => matches!(
                self.services[sid.0].run,
                Run::Starting { .. } | Run::Running { .. } | Run::Stopping { .. }
            ),
            NodeKind::Group(group) => group.children.iter().any(|c| self.active(*c)),
        }
    }

    /// Ready for ordering (design.md §4): ready, ended for good, or held stopped.
    fn ready(&self, id: NodeId) -> bool {
        let node = &self.nodes[id.0];
        if node.held && !self.active(id) {
            return true;
        }
        match &node.kind {
            NodeKind::Service(sid) => matches!(
                self.services[sid.0].run,
                Run::Running { ready: true, .. } | Run::Done { .. }
            ),
            NodeKind::Group(group) => {
                group.mode == GroupMode::Up && group.children.iter().all(|c| self.ready(*c))
            }
        }
    }

    /// Whether every group above `id` is up (so `id` is wanted, unless held).
    fn parent_up(&self, id: NodeId) -> bool {
        let mut current = self.nodes[id.0].parent;
        while let Some(parent) = current {
            if let NodeKind::Group(group) = &self.nodes[parent.0].kind
                && group.mode != GroupMode::Up
            {
                return false;
            }
            current = self.nodes[parent.0].parent;
        }
        true
    }

    fn wanted_up(&self, id: NodeId) -> bool {
        !self.shutting_down() && !self.nodes[id.0].held && self.parent_up(id)
    }

    /// Whether a start of this service is legitimate now: the tree is not shutting
    /// down, nothing holds it or an ancestor down, and no ancestor is on its way down
    /// for a restart set. (For the simulator's invariant checks.)
    pub fn service_wanted(&self, id: ServiceId) -> bool {
        let Some(service) = self.services.get(id.0) else {
            return false;
        };
        let mut current = Some(service.node);
        while let Some(node) = current {
            let node_ref = &self.nodes[node.0];
            if node_ref.held || (node != service.node && node_ref.pending_restart) {
                return false;
            }
            current = node_ref.parent;
        }
        self.wanted_up(service.node)
    }
}

/// The probe to run for a check of `kind`, if the service has such a check.
fn check_of(spec: &ServiceSpec, kind: ProbeKind) -> Option<Check> {
    match kind {
        ProbeKind::Ready => match spec.ready?.check {
            ReadyCheck::Probe { probe, .. } => Some(Check::Ready(probe)),
            ReadyCheck::Reported => None,
        },
        ProbeKind::Health => Some(Check::Health(spec.health?.probe?)),
        ProbeKind::Memory => spec.health?.max_memory.map(|_| Check::Memory),
    }
}

/// `min(max, initial * multiplier^(n-1))`, then ±`jitter` of it, drawn from `rng`.
pub fn backoff_delay(backoff: &BackoffSpec, n: u32, rng: &mut fastrand::Rng) -> Duration {
    let initial = backoff.initial.as_secs_f64();
    let max = backoff.max.as_secs_f64();
    // Past about a thousand doublings `multiplier^(n-1)` is infinite, and a zero
    // `initial` times infinity is NaN: a zero initial delay stays zero, and anything
    // that stops being finite is at the cap.
    let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    let base = if initial == 0.0 {
        0.0
    } else {
        initial * backoff.multiplier.powi(exponent)
    };
    let capped = if base.is_finite() { base.min(max) } else { max };
    let factor = 1.0 + backoff.jitter * (rng.f64() * 2.0 - 1.0);
    let seconds = (capped * factor).max(0.0);
    Duration::try_from_secs_f64(seconds).unwrap_or(backoff.max)
}
