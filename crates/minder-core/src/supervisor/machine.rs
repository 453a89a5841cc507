//! The `Supervisor` itself: how it is driven (`boot`, `handle`, `next_deadline`), and
//! what each event does to a service's life cycle and to the shutdown sequence.
//!
//! Every transition happens inside `boot`/`handle`: the event updates states, then
//! `reconcile` walks the tree until nothing more changes, emitting effects as it goes.
//! Timers are not objects: every deadline is derived from current state (a stopping
//! service's kill time, a node's `not_before`, a check's slot, the shutdown deadline),
//! so a timer can never outlive the state it was meant for.

use super::Announcement;
use super::checks::Checks;
use super::reconcile::{MAX_PASSES, Settled};
use super::tree::{
    AfterSpawn, Arena, GroupMode, Intent, KillTimer, Node, NodeKind, ROOT, Readiness, Run, Service,
    StartGate, StopCause, Tree, Wave,
};
use super::{
    ChildRef, Effect, EndKind, Event, ExitStatus, NodeId, Report, ServiceId, ShutdownCause,
    SlowStop, StoppingService, Time,
};
use crate::spec::{AutoShutdown, SIGINT, SIGQUIT, SIGTERM, ServiceKind, SignalMode, Spec};
use alloc::collections::BTreeMap;
use alloc::{string::String, vec::Vec};
use core::time::Duration;

/// The decision-making half of minder. Created from a `Spec` by the runtime (or a
/// test's simulator), which owns it for minder's whole life and is its only caller.
pub struct Supervisor {
    /// Groups and services; the root is `ROOT`.
    pub(super) nodes: Arena<NodeId, Node>,
    /// One entry per service instance.
    pub(super) services: Arena<ServiceId, Service>,
    pub(super) auto_shutdown: AutoShutdown,
    pub(super) shutdown_timeout: Duration,
    /// How long a requested shutdown lets the tree run on first (`Phase::Draining`).
    drain_delay: Duration,
    /// What a signal to minder means: a shutdown request, or one to pass on.
    signals: SignalMode,
    pub(super) phase: Phase,
    /// Jitter source; seeded by the caller so runs are reproducible.
    pub(super) rng: fastrand::Rng,
    /// The `now` of the event being handled (or of the last one).
    pub(super) now: Time,
    /// Effects produced while handling the current event.
    pub(super) out: Vec<Effect>,
    /// Set by every state change during reconciliation; drives the fixpoint loop.
    pub(super) dirty: bool,
    /// The last start wave handed out.
    pub(super) last_wave: Wave,
    /// Passes one `reconcile` call may take; `MAX_PASSES` except in a unit test.
    pub(super) pass_limit: usize,
    /// Whether the last `reconcile` call finished its work.
    pub(super) settled: Settled,
    /// Nodes a reload removed that may still have live processes, in the order they
    /// started: stopped last first, then forgotten (see `reload`).
    pub(super) retiring: Vec<NodeId>,
    /// Services that were slow to stop (or were killed) during the shutdown, in the
    /// order they ended; reported once, just before the exit.
    slow_stops: Vec<SlowStop>,
    /// Every service of the tree by its full name (not the ones a reload removed):
    /// the runtime looks names up once per service when it diffs a reload.
    pub(super) by_name: BTreeMap<String, ServiceId>,
}

/// How often the core comes back while the tree drains or shuts down: the shutdown's
/// progress report, and the runtime's view of it (systemd's `STATUS=`), stay current
/// to the second.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// A service that takes longer than this to stop during a shutdown is named in the
/// closing report (`Report::SlowStops`).
const SLOW_STOP: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Phase {
    Running,
    /// A shutdown was requested at `requested` with a `drain_delay`: everything is
    /// supervised as while running (ends restart, checks run), but the tree is no
    /// longer ready for the outside world. At `until` the orderly shutdown begins.
    Draining {
        requested: Time,
        until: Time,
        /// The next progress tick (`PROGRESS_INTERVAL` after the last).
        next_tick: Time,
    },
    /// The orderly shutdown, begun at `began`. `deadline` is `shutdown_timeout` after
    /// the request (so a drain counts toward it).
    ShuttingDown {
        began: Time,
        deadline: Time,
        exit: ShutdownExit,
        /// When `Report::StillStopping` is next due.
        next_progress: Time,
    },
    Exited,
}

/// The code minder exits with once a shutdown completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ShutdownExit {
    /// Decided by what began the shutdown: 3 for a spent root budget, the triggering
    /// service's code under `auto_shutdown`.
    Fixed(i32),
    /// Asked for (a signal, an operator): 0, unless a significant service ends during
    /// the shutdown; then its code, as its shell would report it (see
    /// `note_significant_end`).
    Requested(Option<i32>),
}

impl ShutdownExit {
    pub(super) fn code(self) -> i32 {
        match self {
            ShutdownExit::Fixed(code) | ShutdownExit::Requested(Some(code)) => code,
            ShutdownExit::Requested(None) => crate::exit::SUCCESS,
        }
    }
}

impl Supervisor {
    /// Build the tree of `spec`. Nothing starts until `boot`.
    pub fn new(spec: &Spec, seed: u64) -> Supervisor {
        let Tree { nodes, services } = Tree::build(&spec.root);
        let by_name = services
            .iter()
            .map(|(id, service)| (service.spec.name.clone(), id))
            .collect();
        Supervisor {
            nodes,
            services,
            auto_shutdown: spec.root.auto_shutdown,
            shutdown_timeout: spec.shutdown_timeout,
            drain_delay: spec.drain_delay,
            signals: spec.signals,
            phase: Phase::Running,
            rng: fastrand::Rng::with_seed(seed),
            now: Time::ZERO,
            out: Vec::new(),
            dirty: false,
            last_wave: Wave(0),
            pass_limit: MAX_PASSES,
            settled: Settled::Yes,
            retiring: Vec::new(),
            slow_stops: Vec::new(),
            by_name,
        }
    }

    /// Start the tree: the root comes up and its first children are spawned.
    pub fn boot(&mut self, now: Time) -> Vec<Effect> {
        self.now = now;
        if self.phase == Phase::Running {
            self.start_group_fresh(ROOT);
            self.reconcile();
        }
        core::mem::take(&mut self.out)
    }

    /// Feed one event at time `now` (never earlier than the previous call's).
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Effect> {
        self.handle_all([event], now)
    }

    /// Feed events that happened together, such as the exits one reaper sweep
    /// collected: each is applied in turn, then the tree is reconciled once. So every
    /// end is classified by what its process did before anything decided about the
    /// others is carried out: a sibling reaped together with the child whose failure
    /// restarts the set ended on its own, not by the stop signal the set would send it
    /// (which the runtime cannot deliver to a reaped pid anyway).
    pub fn handle_all(
        &mut self,
        events: impl IntoIterator<Item = Event>,
        now: Time,
    ) -> Vec<Effect> {
        self.now = self.now.max(now);
        self.dirty = false;
        let mut walk = false;
        for event in events {
            if self.phase == Phase::Exited {
                break;
            }
            // A passing probe or a watchdog ping changes no child's state; only when
            // the handler marked something (ready, condemned) does the tree need a walk.
            walk |= !matches!(
                event,
                Event::ProbeResult { .. }
                    | Event::WatchdogPing { .. }
                    | Event::WatchdogTimeout { .. }
            );
            self.apply(event);
        }
        // Also walk when the last walk has not finished.
        if self.phase != Phase::Exited && (walk || self.dirty || self.settled == Settled::NotYet) {
            self.reconcile();
        }
        core::mem::take(&mut self.out)
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Spawned { child, pid } => self.on_spawned(child, pid),
            Event::SpawnFailed {
                child,
                code,
                reason,
            } => self.on_spawn_failed(child, code, reason),
            Event::Exited { child, status } => self.on_exited(child, status),
            Event::Ready { child } => {
                if let Some(id) = self.current(child) {
                    self.mark_ready(id);
                }
            }
            Event::Failed { child, reason } => self.on_failed(child, reason),
            Event::ProbeResult {
                child,
                kind,
                run,
                outcome,
            } => self.on_probe_result(child, kind, run, outcome),
            Event::WatchdogPing { child } => self.on_watchdog_ping(child),
            Event::WatchdogTimeout { child, timeout } => self.on_watchdog_timeout(child, timeout),
            Event::Timer => self.on_timer(),
            Event::Start(node) => self.on_operator_start(node),
            Event::Stop(node) => self.on_operator_stop(node),
            Event::Restart(node) => self.on_operator_restart(node),
            Event::Shutdown => self.on_shutdown_request(),
            Event::Signal(signal) => self.on_signal(signal),
        }
    }

    /// The earliest moment at which `handle(Event::Timer, ..)` has work to do, if any.
    pub fn next_deadline(&self) -> Option<Time> {
        let mut next: Option<Time> = None;
        let mut consider = |at: Time| {
            next = Some(next.map_or(at, |current: Time| current.min(at)));
        };
        match self.phase {
            Phase::Exited => return None,
            Phase::Draining {
                until, next_tick, ..
            } => {
                consider(until);
                consider(next_tick);
            }
            Phase::ShuttingDown {
                deadline,
                next_progress,
                ..
            } => {
                consider(deadline);
                consider(next_progress);
            }
            Phase::Running => {}
        }
        if self.settled == Settled::NotYet {
            consider(self.now);
        }
        for (_, service) in self.services.iter() {
            match &service.run {
                Run::Running {
                    checks,
                    forward_kill,
                    ..
                } => {
                    checks.deadlines().for_each(&mut consider);
                    forward_kill.iter().copied().for_each(&mut consider);
                }
                Run::Stopping {
                    kill: KillTimer::At(at),
                    ..
                } => consider(*at),
                Run::Idle => {
                    let node = &self.nodes[service.node];
                    if node.not_before > self.now && self.wanted_up(service.node) {
                        consider(node.not_before);
                    }
                }
                Run::Starting { .. } | Run::Stopping { .. } | Run::Done { .. } => {}
            }
        }
        for (id, node) in self.nodes.iter() {
            if let NodeKind::Group(group) = &node.kind
                && group.mode != GroupMode::Up
                && node.not_before > self.now
                && self.wanted_up(id)
            {
                consider(node.not_before);
            }
        }
        next
    }

    // ----- a service's life cycle ---------------------------------------------------

    fn on_spawned(&mut self, child: ChildRef, pid: i32) {
        let Some(id) = self.current(child) else {
            return;
        };
        let now = self.now;
        let service = &mut self.services[id];
        let Run::Starting { then } = service.run else {
            return;
        };
        if then == AfterSpawn::Stop {
            self.stop_at_start(id, pid);
            return;
        }
        // A oneshot is ready when it has finished, not when it has started; a service
        // with a ready check when the check passes.
        let ready = service.spec.kind != ServiceKind::Oneshot && service.spec.ready.is_none();
        service.run = Run::Running {
            pid,
            since: now,
            readiness: if ready {
                Readiness::Ready { healthy_since: now }
            } else {
                Readiness::Waiting
            },
            checks: Checks::at_spawn(&service.spec, now),
            forward_kill: None,
        };
        self.out
            .push(Effect::Report(Report::Started { child, pid }));
        if ready {
            self.out.push(Effect::Report(Report::Ready { child }));
        }
        // The first readiness probe runs right after exec, not a turn later.
        self.run_due_checks(id);
    }

    fn on_spawn_failed(&mut self, child: ChildRef, code: i32, reason: String) {
        let Some(id) = self.current(child) else {
            return;
        };
        let Run::Starting { then } = self.services[id].run else {
            return;
        };
        self.out
            .push(Effect::Report(Report::StartFailed { child, reason }));
        // A stop asked for meanwhile completes like any planned stop: a temporary
        // child retired by its restart set is done, not started again with the set.
        let end = match then {
            AfterSpawn::Stop => EndKind::Stopped,
            AfterSpawn::Run => EndKind::StartFailure,
        };
        self.service_ended(id, end, code, Readiness::Waiting);
    }

    fn on_exited(&mut self, child: ChildRef, status: ExitStatus) {
        let Some(id) = self.current(child) else {
            return;
        };
        let service = &mut self.services[id];
        let (end, readiness) = match &service.run {
            Run::Running { readiness, .. } => match status {
                ExitStatus::Exited(code) if service.spec.success_codes.contains(&code) => {
                    (EndKind::Normal, *readiness)
                }
                // A signal minder did not send (it is not stopping the service): one
                // of `success_signals` is a clean end, as `kill PID` is for systemd.
                ExitStatus::Signaled(signal) if service.spec.success_signals.contains(&signal) => {
                    (EndKind::Normal, *readiness)
                }
                _ => (EndKind::Abnormal, *readiness),
            },
            Run::Stopping {
                cause: StopCause::Planned,
                ..
            } => (EndKind::Stopped, Readiness::Waiting),
            Run::Stopping {
                cause: StopCause::Failure(reason),
                ..
            } => (EndKind::Failure(*reason), Readiness::Waiting),
            // The runtime reports `Spawned` before any exit of that pid; an exit here
            // can only be a stale or duplicated report.
            Run::Starting { .. } | Run::Idle | Run::Done { .. } => return,
        };
        service.last_status = Some(status);
        if let Run::Stopping { since, kill, .. } = service.run {
            self.note_stop_time(id, since, kill == KillTimer::Sent);
        }
        self.out
            .push(Effect::Report(Report::Exited { child, status, end }));
        self.service_ended(id, end, status.shell_code(), readiness);
    }

    fn on_timer(&mut self) {
        let now = self.now;
        for id in self.services.ids() {
            self.run_due_checks(id);
        }
        for id in self.services.ids() {
            let service = &mut self.services[id];
            let child = service.child(id);
            if let Run::Stopping {
                pid,
                kill: kill @ KillTimer::At(_),
                ..
            } = &mut service.run
                && matches!(kill, KillTimer::At(at) if *at <= now)
            {
                *kill = KillTimer::Sent;
                let pid = *pid;
                self.out
                    .push(Effect::Report(Report::StopTimedOut { child }));
                self.out.push(Effect::Kill { child, pid });
            }
            if let Run::Running {
                pid,
                forward_kill: forward_kill @ Some(_),
                ..
            } = &mut service.run
                && forward_kill.is_some_and(|at| at <= now)
            {
                // Killed once; the exit that follows ends it as SIGKILL leaves it.
                *forward_kill = None;
                let pid = *pid;
                self.out
                    .push(Effect::Report(Report::ForwardTimedOut { child }));
                self.out.push(Effect::Kill { child, pid });
            }
        }
        match self.phase {
            Phase::Draining { until, .. } if until <= now => {
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::Requested,
                }));
                self.begin_shutdown(ShutdownExit::Requested(None));
            }
            Phase::Draining {
                requested,
                ref mut next_tick,
                ..
            } if *next_tick <= now => {
                *next_tick = next_progress_tick(requested, now);
            }
            Phase::ShuttingDown { deadline, .. } if deadline <= now => {
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::TimedOut,
                }));
                self.kill_everything_and_exit();
            }
            Phase::ShuttingDown {
                began,
                ref mut next_progress,
                ..
            } if *next_progress <= now => {
                *next_progress = next_progress_tick(began, now);
                let waiting = self.still_stopping();
                if !waiting.is_empty() {
                    self.out
                        .push(Effect::Report(Report::StillStopping { waiting }));
                }
            }
            Phase::Running
            | Phase::Draining { .. }
            | Phase::ShuttingDown { .. }
            | Phase::Exited => {}
        }
    }

    // ----- operator requests ----------------------------------------------------------

    fn on_operator_start(&mut self, id: NodeId) {
        if !self.in_tree(id) || self.shutting_down() {
            return;
        }
        let wave = self.new_wave();
        let node = &mut self.nodes[id];
        if node.intent == Intent::Held {
            node.intent = Intent::Run;
        }
        node.not_before = self.now;
        node.gate = StartGate { wave, ..node.gate };
        match node.kind {
            NodeKind::Service(service) => {
                let service = &mut self.services[service];
                service.backoff_count = 0;
                if matches!(service.run, Run::Done { .. }) {
                    service.run = Run::Idle;
                }
            }
            // A held group is down; reconciliation starts it fresh once unheld (or
            // once revived, if it had ended for good).
            NodeKind::Group(_) => self.revive_group(id),
        }
    }

    fn on_operator_stop(&mut self, id: NodeId) {
        if !self.in_tree(id) || id == ROOT {
            return;
        }
        self.nodes[id].intent = Intent::Held;
        self.stop_node(id);
    }

    fn on_operator_restart(&mut self, id: NodeId) {
        if !self.in_tree(id) || id == ROOT || self.shutting_down() {
            return;
        }
        let now = self.now;
        let wave = self.new_wave();
        let node = &mut self.nodes[id];
        if node.intent == Intent::Held {
            node.intent = Intent::Run;
        }
        node.not_before = now;
        node.gate = StartGate { wave, ..node.gate };
        if let NodeKind::Service(service) = node.kind
            && matches!(self.services[service].run, Run::Done { .. })
        {
            self.services[service].run = Run::Idle;
        }
        self.revive_group(id);
        if self.active(id) {
            self.nodes[id].intent = Intent::Restart;
        }
    }

    // ----- signals to minder ---------------------------------------------------------

    fn on_signal(&mut self, signal: i32) {
        let ends = matches!(signal, SIGTERM | SIGINT | SIGQUIT);
        match self.signals {
            SignalMode::Supervise => {
                self.out.push(Effect::Report(Report::Signal { signal }));
                if ends {
                    self.on_shutdown_request();
                }
            }
            SignalMode::Forward => self.forward(signal, ends),
        }
    }

    /// Container mode: pass `signal` on to every live service's process group. One
    /// that `ends` gets a kill time: the command is killed if it still runs its
    /// `stop_timeout` after the first such signal (a second one does not postpone it),
    /// so minder still exits within the container runtime's grace period, with a line
    /// saying why. A service already stopping keeps its own kill time.
    fn forward(&mut self, signal: i32, ends: bool) {
        let now = self.now;
        for id in self.services.ids() {
            let service = &mut self.services[id];
            let child = service.child(id);
            let stop_timeout = service.spec.stop_timeout;
            let pid = match &mut service.run {
                Run::Running {
                    pid, forward_kill, ..
                } => {
                    if ends && forward_kill.is_none() {
                        *forward_kill = Some(now + stop_timeout);
                    }
                    *pid
                }
                Run::Stopping { pid, .. } => *pid,
                Run::Idle | Run::Starting { .. } | Run::Done { .. } => continue,
            };
            self.out.push(Effect::Forward {
                child,
                pid,
                signal,
                and_continue: ends,
            });
        }
    }

    // ----- shutdown -----------------------------------------------------------------

    /// A shutdown request (TERM, INT or QUIT in `Supervise` mode, or `Event::Shutdown`).
    /// With a `drain_delay` the first one only begins the drain: systemd hears
    /// `STOPPING=1` at once, the tree stops being ready (`phase_view`), and the orderly
    /// shutdown follows once the delay has passed. A request during the drain begins
    /// the orderly shutdown at once; one during the shutdown kills everything.
    fn on_shutdown_request(&mut self) {
        match self.phase {
            Phase::Running if !self.drain_delay.is_zero() => {
                let now = self.now;
                let until = now + self.drain_delay;
                self.out.push(Effect::Report(Report::Draining { until }));
                self.out.push(Effect::Announce(Announcement::Stopping));
                self.phase = Phase::Draining {
                    requested: now,
                    until,
                    next_tick: now + PROGRESS_INTERVAL,
                };
            }
            Phase::Running | Phase::Draining { .. } => {
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::Requested,
                }));
                self.begin_shutdown(ShutdownExit::Requested(None));
            }
            Phase::ShuttingDown { .. } => {
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::Forced,
                }));
                self.kill_everything_and_exit();
            }
            Phase::Exited => {}
        }
    }

    /// Whether the orderly shutdown has begun (a drain is not one yet: the tree is
    /// still supervised as while running).
    pub(super) fn shutting_down(&self) -> bool {
        matches!(self.phase, Phase::ShuttingDown { .. } | Phase::Exited)
    }

    /// The orderly shutdown begins: the root goes down. `shutdown_timeout` counts from
    /// the request, so a shutdown that ends a drain has what the drain left of it. A
    /// significant end or a spent root budget during the drain begins it too, with
    /// its own exit code.
    pub(super) fn begin_shutdown(&mut self, exit: ShutdownExit) {
        let now = self.now;
        let requested = match self.phase {
            Phase::Running => {
                self.out.push(Effect::Announce(Announcement::Stopping));
                now
            }
            Phase::Draining { requested, .. } => requested,
            Phase::ShuttingDown { deadline, .. } => deadline
                .0
                .checked_sub(self.shutdown_timeout)
                .map_or(now, Time),
            Phase::Exited => now,
        };
        self.phase = Phase::ShuttingDown {
            began: now,
            deadline: requested + self.shutdown_timeout,
            exit,
            next_progress: now + PROGRESS_INTERVAL,
        };
        self.set_group_down(ROOT);
    }

    /// The services the shutdown waits for: those stopping, in the order they were
    /// asked to stop, each with when it will be killed.
    fn still_stopping(&self) -> Vec<StoppingService> {
        let deadline = match self.phase {
            Phase::ShuttingDown { deadline, .. } => Some(deadline),
            Phase::Running | Phase::Draining { .. } | Phase::Exited => None,
        };
        let mut waiting: Vec<(Time, StoppingService)> = self
            .services
            .iter()
            .filter_map(|(id, service)| match service.run {
                Run::Stopping { since, kill, .. } => {
                    let kill_at = match kill {
                        KillTimer::At(at) => Some(deadline.map_or(at, |end| at.min(end))),
                        KillTimer::Sent => None,
                    };
                    let stopping_for = self.now.saturating_sub(since);
                    Some((
                        since,
                        StoppingService {
                            id,
                            stopping_for,
                            kill_at,
                        },
                    ))
                }
                Run::Idle | Run::Starting { .. } | Run::Running { .. } | Run::Done { .. } => None,
            })
            .collect();
        waiting.sort_by_key(|(since, service)| (*since, service.id));
        waiting.into_iter().map(|(_, service)| service).collect()
    }

    /// A service that was stopping has ended (or is being killed) during the
    /// shutdown: remembered for the closing report if it was slow or killed.
    fn note_stop_time(&mut self, id: ServiceId, since: Time, killed: bool) {
        if !matches!(self.phase, Phase::ShuttingDown { .. }) {
            return;
        }
        let took = self.now.saturating_sub(since);
        if killed || took > SLOW_STOP {
            self.slow_stops.push(SlowStop { id, took, killed });
        }
    }

    /// The closing report of a shutdown (`Report::SlowStops`), if anything was slow.
    pub(super) fn report_slow_stops(&mut self) {
        let stops = core::mem::take(&mut self.slow_stops);
        if !stops.is_empty() {
            self.out.push(Effect::Report(Report::SlowStops { stops }));
        }
    }

    /// The second request or the end of `shutdown_timeout`: no more waiting. The
    /// runtime kills and reaps whatever is left (orphans included) before exiting. A
    /// significant service killed here ends as SIGKILL leaves it.
    fn kill_everything_and_exit(&mut self) {
        for id in self.services.ids() {
            let service = &mut self.services[id];
            let child = service.child(id);
            let (pid, stopping_since) = match service.run {
                Run::Running { pid, .. } => (pid, None),
                Run::Stopping { pid, since, .. } => (pid, Some(since)),
                Run::Starting { .. } | Run::Idle | Run::Done { .. } => {
                    service.run = Run::Idle;
                    continue;
                }
            };
            service.run = Run::Idle;
            self.out.push(Effect::Kill { child, pid });
            let killed = ExitStatus::Signaled(crate::spec::SIGKILL);
            self.note_significant_end(id, killed.shell_code());
            // One never asked to stop (its turn had not come) is killed with no wait.
            self.note_stop_time(id, stopping_since.unwrap_or(self.now), true);
        }
        self.report_slow_stops();
        let code = match self.phase {
            Phase::ShuttingDown { exit, .. } => exit.code(),
            Phase::Running | Phase::Draining { .. } | Phase::Exited => crate::exit::SUCCESS,
        };
        self.phase = Phase::Exited;
        self.out.push(Effect::Exit { code });
    }
}

/// The first progress tick after `now` on the one-second grid that starts at `start`,
/// so ticks stay on the grid however late the loop comes back.
fn next_progress_tick(start: Time, now: Time) -> Time {
    let elapsed = now.saturating_sub(start).as_nanos();
    let ticks = elapsed / PROGRESS_INTERVAL.as_nanos().max(1) + 1;
    start + PROGRESS_INTERVAL.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
}
