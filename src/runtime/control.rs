//! The loop's side of the control socket: answering each request in the turn it
//! arrives, and keeping what `status` and `events` read that the core does not.
//!
//! Requests arrive as `Fact::Control` (see `control/server.rs`). Reads (status, logs,
//! events) are answered from the core's views, the output hub's tails and the event
//! ring; operator commands become core events (`Event::Start`, `Stop`, `Restart`,
//! `Shutdown`) queued for this same turn, so the core decides what they mean (a stop
//! holds the node down until a start; an operator restart is not counted against the
//! budget). Nothing here waits: every answer is sent on a oneshot the connection task
//! awaits, and streams are broadcast receivers handed to that task.
//!
//! `ControlState` is the loop's record of what only the runtime sees: when each
//! service's current process started (for uptime), when a stop signal was sent (for
//! "stopping since, killed in"), the tree's shape by name (groups and their services),
//! and the last supervision events, built from the core's `Report`s.

use super::Loop;
use crate::control::protocol::{
    Command, DoneResult, Error, ErrorKind, EventItem, EventsArgs, GroupStatus, LastCheck, LastExit,
    LogItem, LogsArgs, MinderStatus, Response, ServiceStatus, StatusResult, StoppingStatus,
};
use crate::control::server::{self, Answer, ControlRequest, Follow, Listener, Reply, Server};
use crate::process;
use crate::signals::signal_name;
use crate::spec::{GroupSpec, NodeSpec, Spec, Strategy};
use crate::supervisor::{Effect, PhaseView, ProbeKind};
use crate::supervisor::{EndKind, Event, ExitStatus, Report, ServiceId, ShutdownCause, Time};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, mpsc};

/// How many past events `events` can replay.
const EVENT_RING: usize = 1000;

/// How many events a follower may fall behind before it is told `too_slow`.
const EVENT_TAP: usize = 1024;

/// Lines `logs` replays when the request does not say.
const DEFAULT_LOG_LINES: u64 = 100;

/// What the loop keeps for the control socket. Made with the loop, dropped with it.
pub(super) struct ControlState {
    /// The socket server; `None` without a control socket. Dropping it removes the
    /// socket file.
    server: Option<Server>,
    /// The tree by name, from the spec the loop was built with.
    tree: TreeIndex,
    /// The last `EVENT_RING` events, oldest first.
    events: VecDeque<Arc<EventItem>>,
    /// Every new event, for followers; sending never waits.
    event_tap: broadcast::Sender<Arc<EventItem>>,
    /// Set once the core reports the tree shutting down.
    shutting_down: bool,
}

/// Services and groups by name, in tree order.
#[derive(Default)]
struct TreeIndex {
    /// Full service name -> (its base name, its group).
    services: HashMap<String, (String, String)>,
    groups: Vec<GroupInfo>,
}

struct GroupInfo {
    name: String,
    parent: Option<String>,
    strategy: Strategy,
    period: Duration,
    /// Every service under it, at any depth.
    services: Vec<String>,
}

impl ControlState {
    /// A reload changed the tree: names, groups and shape are read from `spec` now.
    pub(super) fn retree(&mut self, spec: &Spec) {
        self.tree = TreeIndex::new(spec);
    }

    /// Every service in tree order (the order they start in).
    pub(super) fn services_in_order(&self) -> &[String] {
        self.tree
            .groups
            .first()
            .map_or(&[], |root| root.services.as_slice())
    }
}

impl TreeIndex {
    fn new(spec: &Spec) -> TreeIndex {
        let mut index = TreeIndex::default();
        index.add_group(&spec.root, None);
        index
    }

    /// Adds `group` and everything under it; returns its services.
    fn add_group(&mut self, group: &GroupSpec, parent: Option<&str>) -> Vec<String> {
        let position = self.groups.len();
        self.groups.push(GroupInfo {
            name: group.name.clone(),
            parent: parent.map(str::to_string),
            strategy: group.strategy,
            period: group.period,
            services: Vec::new(),
        });
        let mut services = Vec::new();
        for child in &group.children {
            match child {
                NodeSpec::Service(service) => {
                    self.services.insert(
                        service.name.clone(),
                        (service.base_name.clone(), group.name.clone()),
                    );
                    services.push(service.name.clone());
                }
                NodeSpec::Group(inner) => services.extend(self.add_group(inner, Some(&group.name))),
            }
        }
        self.groups[position].services = services.clone();
        services
    }

    /// The services a name stands for: a service or instance, every instance of a
    /// service, or everything under a group. `None` if it names nothing.
    fn resolve(&self, name: &str) -> Option<Vec<String>> {
        if self.services.contains_key(name) {
            return Some(vec![name.to_string()]);
        }
        if let Some(group) = self.groups.iter().find(|group| group.name == name) {
            return Some(group.services.clone());
        }
        let instances: Vec<String> = self
            .services
            .iter()
            .filter(|(_, (base, _))| base == name)
            .map(|(full, _)| full.clone())
            .collect();
        (!instances.is_empty()).then_some(instances)
    }

    /// Every name a request may use.
    fn names(&self) -> impl Iterator<Item = &str> {
        self.services
            .iter()
            .flat_map(|(full, (base, _))| [full.as_str(), base.as_str()])
            .chain(self.groups.iter().map(|group| group.name.as_str()))
    }

    fn unknown(&self, name: &str) -> Error {
        let suggestion = closest(name, self.names())
            .map(|known| format!("; did you mean {known:?}?"))
            .unwrap_or_default();
        Error::new(
            ErrorKind::UnknownName,
            format!("no service or group named {name:?}{suggestion}"),
        )
    }
}

impl ControlState {
    /// Starts serving `listener` (if any), with requests sent to the loop on `facts`.
    pub(super) fn new(
        spec: &Spec,
        listener: Option<Listener>,
        facts: mpsc::UnboundedSender<super::Fact>,
    ) -> ControlState {
        let server = listener.and_then(|listener| match Server::start(listener, facts) {
            Ok(server) => Some(server),
            Err(error) => {
                tracing::error!("control socket: serve: {error}; running without it");
                None
            }
        });
        ControlState {
            server,
            tree: TreeIndex::new(spec),
            events: VecDeque::new(),
            event_tap: broadcast::Sender::new(EVENT_TAP),
            shutting_down: false,
        }
    }

    /// minder is exiting: streams end with `shutdown` (sent before this returns).
    pub(super) async fn close(&self) {
        if let Some(server) = &self.server {
            server.close().await;
        }
    }

    fn push_event(&mut self, event: EventItem) {
        let event = Arc::new(event);
        if self.events.len() == EVENT_RING {
            self.events.pop_front();
        }
        self.events.push_back(Arc::clone(&event));
        // An error only means nobody follows.
        let _ = self.event_tap.send(event);
    }
}

impl Loop {
    /// Answers one request, in this turn. Operator commands queue core events that
    /// `settle` handles right after.
    pub(super) fn on_control(&mut self, request: ControlRequest) {
        let ControlRequest { request, reply, .. } = request;
        let id = request.id;
        let done = |affected: Vec<String>| {
            Answer::Done(Response::ok(
                id,
                DoneResult {
                    done: true,
                    affected,
                },
            ))
        };
        let failed = |error: Error| Answer::Done(Response::error(Some(id), error));
        let answer = match request.command {
            Command::Status(args) => match self.status(&args.names) {
                Ok(result) => Answer::Done(Response::ok(id, result)),
                Err(error) => failed(error),
            },
            Command::Start(args) | Command::Stop(args) | Command::Restart(args)
                if self.control.shutting_down =>
            {
                failed(Error::new(
                    ErrorKind::ShuttingDown,
                    format!(
                        "minder is shutting down; {} is not started or stopped by hand any more",
                        args.name
                    ),
                ))
            }
            Command::Start(args) => match self.operator(&args.name, Event::Start) {
                Ok(affected) => done(affected),
                Err(error) => failed(error),
            },
            Command::Stop(args) => match self.operator(&args.name, Event::Stop) {
                Ok(affected) => done(affected),
                Err(error) => failed(error),
            },
            Command::Restart(args) => match self.operator(&args.name, Event::Restart) {
                Ok(affected) => done(affected),
                Err(error) => failed(error),
            },
            Command::Signal(args) => match self.signal_services(&args.name, &args.signal) {
                Ok(affected) => done(affected),
                Err(error) => failed(error),
            },
            Command::Logs(args) => match self.logs(id, &args) {
                Ok(answer) => answer,
                Err(error) => failed(error),
            },
            Command::Events(args) => self.events(id, &args),
            Command::Reload(args) => {
                self.control_reload(args.dry_run, reply);
                return;
            }
            Command::Shutdown => {
                self.pending.push_back(Event::Shutdown);
                done(Vec::new())
            }
        };
        reply.send(answer);
    }

    /// `reload`: see `reload.rs`. The reply is kept until the reload has answered:
    /// at once for a dry run or an invalid file, else once its services are up.
    pub(super) fn control_reload(&mut self, dry_run: bool, reply: Reply) {
        let answer: super::reload::ReloadAnswer = Box::new(move |result| match result {
            Ok(result) => reply.ok(result),
            Err(error) => reply.error(error),
        });
        self.reload(dry_run, super::reload::ReloadReply::Client(answer));
    }

    /// Sends `make(node)` to the core for every node `name` stands for; the names of
    /// those nodes.
    fn operator(
        &mut self,
        name: &str,
        make: impl Fn(crate::supervisor::NodeId) -> Event,
    ) -> Result<Vec<String>, Error> {
        let nodes = self.supervisor.lookup(name);
        if nodes.is_empty() {
            // The root is a group `status` shows, but not one the core holds or
            // restarts: without this, the suggestion would be its own name.
            if self
                .control
                .tree
                .groups
                .first()
                .is_some_and(|root| root.name == name)
            {
                return Err(Error::new(
                    ErrorKind::BadRequest,
                    format!(
                        "{name:?} is the root group, the whole tree: it is not started, stopped or restarted by hand; name its services or groups, or use shutdown"
                    ),
                ));
            }
            return Err(self.control.tree.unknown(name));
        }
        let affected = nodes
            .iter()
            .map(|node| self.supervisor.node_name(*node).to_string())
            .collect();
        self.pending.extend(nodes.into_iter().map(make));
        Ok(affected)
    }

    /// Sends a signal to the process group of every running service `name` stands for.
    fn signal_services(
        &mut self,
        name: &str,
        signal: &crate::control::protocol::SignalArg,
    ) -> Result<Vec<String>, Error> {
        let number = signal
            .number()
            .map_err(|message| Error::new(ErrorKind::BadRequest, message))?;
        let services = self
            .control
            .tree
            .resolve(name)
            .ok_or_else(|| self.control.tree.unknown(name))?;
        let wanted: HashSet<&str> = services.iter().map(String::as_str).collect();
        let mut affected = Vec::new();
        for (id, service) in self.supervisor.services() {
            if !wanted.contains(service) {
                continue;
            }
            let Some(pid) = self.supervisor.view(id).and_then(|view| view.pid) else {
                continue;
            };
            match process::signal_group(pid, number) {
                Ok(()) => affected.push(service.to_string()),
                Err(errno) => {
                    tracing::debug!(service, pid, %errno, "signal {}", signal_name(number))
                }
            }
        }
        if !affected.is_empty() {
            tracing::info!(
                services = affected.join(", "),
                "sent {} by request",
                signal_name(number)
            );
        }
        Ok(affected)
    }

    fn status(&self, names: &[String]) -> Result<StatusResult, Error> {
        let now = self.now();
        let tree = &self.control.tree;
        let mut wanted: Option<HashSet<String>> = None;
        let mut wanted_groups: Option<HashSet<&str>> = None;
        for name in names {
            let services = tree.resolve(name).ok_or_else(|| tree.unknown(name))?;
            wanted.get_or_insert_with(HashSet::new).extend(services);
            let groups = wanted_groups.get_or_insert_with(HashSet::new);
            if tree.groups.iter().any(|group| group.name == *name) {
                groups.insert(name.as_str());
            }
        }
        let services = self
            .supervisor
            .services()
            .filter(|(_, name)| wanted.as_ref().is_none_or(|wanted| wanted.contains(*name)))
            .filter_map(|(id, _)| self.service_status(id, now))
            .collect();
        let groups = self
            .supervisor
            .groups()
            .into_iter()
            .filter(|(_, name, _)| {
                wanted_groups
                    .as_ref()
                    .is_none_or(|wanted| wanted.contains(name.as_str()))
            })
            .map(|(node, name, intensity)| {
                let info = tree.groups.iter().find(|group| group.name == name);
                // The core's own word for the group's mode, except that a held group
                // is `stopped` like a held service: "not up" alone would call a group
                // an operator stopped, or one waiting for its turn, `failing`.
                let view = self.supervisor.group_view(node);
                let state = if self.control.shutting_down {
                    "stopping"
                } else if view.as_ref().is_some_and(|view| view.held) {
                    "stopped"
                } else {
                    view.as_ref().map_or("up", |view| view.state)
                };
                GroupStatus {
                    parent: info.and_then(|info| info.parent.clone()),
                    strategy: info
                        .map(|info| strategy_name(info.strategy))
                        .unwrap_or("?")
                        .to_string(),
                    restarts_in_period: self.supervisor.restarts_in_period(node).unwrap_or(0)
                        as u64,
                    intensity,
                    period_seconds: info.map_or(0.0, |info| info.period.as_secs_f64()),
                    state: state.to_string(),
                    name,
                }
            })
            .collect();
        Ok(StatusResult {
            services,
            groups,
            minder: MinderStatus {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                uptime_seconds: self.origin.elapsed().as_secs_f64(),
                phase: match self.supervisor.phase_view() {
                    PhaseView::Running => "running",
                    PhaseView::Draining { .. } => "draining",
                    PhaseView::Stopping { .. } | PhaseView::Exited => "stopping",
                }
                .to_string(),
            },
        })
    }

    fn service_status(&self, id: ServiceId, now: Time) -> Option<ServiceStatus> {
        let view = self.supervisor.view(id)?;
        let group = self
            .control
            .tree
            .services
            .get(view.name)
            .map_or_else(|| "root".to_string(), |(_, group)| group.clone());
        let uptime_seconds = view
            .since
            .map(|since| now.saturating_sub(since).as_secs_f64());
        let last_exit = view.last_status.map(|status| match status {
            ExitStatus::Exited(code) => LastExit {
                code: Some(code),
                signal: None,
            },
            ExitStatus::Signaled(number) => LastExit {
                code: None,
                signal: Some(bare_signal_name(number)),
            },
        });
        let last_check = [
            ("ready", view.last_ready_probe),
            ("health", view.last_health_probe),
        ]
        .into_iter()
        .filter_map(|(kind, record)| Some((kind, record?)))
        .max_by_key(|(_, record)| record.at)
        .map(|(kind, record)| LastCheck {
            kind: kind.to_string(),
            passed: record.passed,
            detail: record.detail.clone(),
            seconds_ago: now.0.saturating_sub(record.at.0).as_secs_f64(),
        });
        let reason = if view.state == "stopped" {
            Some("stopped by request".to_string())
        } else {
            view.last_restart_reason.and_then(|end| match end {
                EndKind::Stopped => None,
                end => Some(super::report::end_name(end)),
            })
        };
        // The core's own kill time: its stop_timeout, or the end of shutdown_timeout if
        // that comes first; none once SIGKILL has been sent.
        let stopping = view.stopping.map(|stopping| StoppingStatus {
            since_seconds: now.saturating_sub(stopping.since).as_secs_f64(),
            kill_in_seconds: stopping
                .kill_at
                .map(|at| at.saturating_sub(now).as_secs_f64()),
        });
        Some(ServiceStatus {
            name: view.name.to_string(),
            group,
            kind: "service".to_string(),
            state: view.state.to_string(),
            pid: view.pid,
            uptime_seconds,
            restarts: view.restarts,
            last_exit,
            last_check,
            reason,
            stopping,
        })
    }

    fn logs(&self, id: u64, args: &LogsArgs) -> Result<Answer, Error> {
        let Some(outputs) = &self.outputs else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "no logs: in container mode the service writes to minder's own stdout and stderr",
            ));
        };
        let tree = &self.control.tree;
        let mut services: Vec<String> = Vec::new();
        if args.names.is_empty() {
            services.extend(self.supervisor.services().map(|(_, name)| name.to_string()));
        }
        for name in &args.names {
            for service in tree.resolve(name).ok_or_else(|| tree.unknown(name))? {
                if !services.contains(&service) {
                    services.push(service);
                }
            }
        }
        let lines = usize::try_from(args.lines.unwrap_or(DEFAULT_LOG_LINES)).unwrap_or(usize::MAX);
        let (tails, receiver) = outputs.follow(&services, Some(lines));
        let mut items = Vec::new();
        for (service, bytes) in tails {
            for line in bytes
                .split(|byte| *byte == b'\n')
                .filter(|line| !line.is_empty())
            {
                items.push(Response::item(
                    id,
                    LogItem {
                        service: service.clone(),
                        stream: None,
                        line: String::from_utf8_lossy(line).into_owned(),
                        time: None,
                    },
                ));
            }
        }
        let follow = args.follow.then(|| Follow::Logs {
            services: services.into_iter().collect(),
            lines: receiver,
        });
        Ok(Answer::Stream { items, follow })
    }

    fn events(&self, id: u64, args: &EventsArgs) -> Answer {
        let kept = self.control.events.len();
        let last = usize::try_from(args.last.unwrap_or(kept as u64)).unwrap_or(usize::MAX);
        let items = self
            .control
            .events
            .iter()
            .skip(kept.saturating_sub(last))
            .map(|event| Response::item(id, &**event))
            .collect();
        let follow = args
            .follow
            .then(|| Follow::Events(self.control.event_tap.subscribe()));
        Answer::Stream { items, follow }
    }

    /// Notes what `status` and `events` need from an effect about to be performed:
    /// every `Report` becomes an event.
    pub(super) fn observe_for_control(&mut self, effect: &Effect) {
        if let Effect::Report(report) = effect
            && let Some(event) = self.event_of(report)
        {
            self.control.push_event(event);
        }
    }

    fn event_of(&mut self, report: &Report) -> Option<EventItem> {
        let service = |loop_: &Loop, id: ServiceId| Some(loop_.processes.name(id).to_string());
        let group_of = |loop_: &Loop, id: ServiceId| {
            loop_
                .control
                .tree
                .services
                .get(loop_.processes.name(id))
                .map(|(_, group)| group.clone())
        };
        let mut event = EventItem {
            time: server::rfc3339(SystemTime::now()),
            ..EventItem::default()
        };
        match report {
            Report::Started { child, pid } => {
                event.event = "started".into();
                event.service = service(self, child.id);
                event.group = group_of(self, child.id);
                event.pid = Some(*pid);
            }
            Report::StartFailed { child, reason } => {
                event.event = "start_failed".into();
                event.service = service(self, child.id);
                event.group = group_of(self, child.id);
                event.reason = Some(reason.clone());
            }
            Report::Ready { child } => {
                event.event = "ready".into();
                event.service = service(self, child.id);
                event.group = group_of(self, child.id);
            }
            Report::Exited { child, status, end } => {
                event.event = if *end == EndKind::Stopped {
                    "stopped"
                } else {
                    "exited"
                }
                .into();
                event.service = service(self, child.id);
                event.group = group_of(self, child.id);
                match status {
                    ExitStatus::Exited(code) => event.code = Some(*code),
                    ExitStatus::Signaled(number) => event.signal = Some(bare_signal_name(*number)),
                }
                event.reason = Some(super::report::end_name(*end));
            }
            Report::RestartScheduled { id, delay } => {
                event.event = "restart_scheduled".into();
                event.service = service(self, *id);
                event.group = group_of(self, *id);
                event.delay_seconds = Some(delay.as_secs_f64());
            }
            Report::Escalated {
                group,
                restarts,
                intensity,
                period,
            } => {
                event.event = "escalated".into();
                event.group = Some(self.supervisor.group_name(*group).to_string());
                event.reason = Some(format!(
                    "{restarts} restarts in {} > intensity {intensity}",
                    humantime::format_duration(*period)
                ));
            }
            Report::GroupRestarting { group, parent } => {
                event.event = "group_restarting".into();
                event.group = Some(self.supervisor.group_name(*group).to_string());
                event.reason = Some(format!(
                    "restarted by {}",
                    self.supervisor.group_name(*parent)
                ));
            }
            Report::GroupShuttingDown { group, trigger } => {
                event.event = "group_shutting_down".into();
                event.group = Some(self.supervisor.group_name(*group).to_string());
                event.reason = Some(format!(
                    "its significant child {} ended",
                    self.supervisor.node_name(*trigger)
                ));
            }
            Report::GroupDone { group, end, .. } => {
                event.event = "group_done".into();
                event.group = Some(self.supervisor.group_name(*group).to_string());
                event.reason = Some(super::report::end_name(*end));
            }
            Report::StopTimedOut { child } | Report::ForwardTimedOut { child } => {
                event.event = "killed".into();
                event.service = service(self, child.id);
                event.group = group_of(self, child.id);
                event.reason = Some("did not stop within its stop_timeout".into());
            }
            Report::Signal { signal } => {
                event.event = "signal".into();
                event.signal = Some(bare_signal_name(*signal));
            }
            Report::ShuttingDown { cause } => {
                self.control.shutting_down = true;
                event.event = "shutdown".into();
                event.reason = Some(
                    match cause {
                        ShutdownCause::Requested => "requested",
                        ShutdownCause::Forced => "forced: second request",
                        ShutdownCause::RootFailed => "the root's restart budget is exhausted",
                        ShutdownCause::Significant { .. } => "a significant service ended",
                        ShutdownCause::SignificantGroup { .. } => "a significant group ended",
                        ShutdownCause::TimedOut => "shutdown_timeout passed",
                    }
                    .into(),
                );
            }
            Report::HealthFailed {
                child,
                kind,
                reason,
                consecutive,
            } => {
                event.event = "check_failed".into();
                event.service = service(self, child.id);
                event.group = group_of(self, child.id);
                let kind = match kind {
                    ProbeKind::Ready => "ready",
                    ProbeKind::Health => "health",
                    ProbeKind::Memory => "memory",
                };
                event.reason = Some(format!("{kind} check ({consecutive} in a row): {reason}"));
            }
            Report::Condemned { child, reason } => {
                event.event = "failed".into();
                event.service = service(self, child.id);
                event.group = group_of(self, child.id);
                event.reason = Some(reason.to_string());
            }
            Report::Draining { until } => {
                event.event = "draining".into();
                event.delay_seconds =
                    Some(until.saturating_sub(self.supervisor.now()).as_secs_f64());
                event.reason = Some("shutdown requested; services run until the drain ends".into());
            }
            Report::Reloaded {
                added,
                removed,
                restarted,
                updated_groups,
            } => {
                event.event = "reload".into();
                event.reason = Some(format!(
                    "{} added, {} removed, {} restarted, {} group(s) updated",
                    added.len(),
                    removed.len(),
                    restarted.len(),
                    updated_groups.len()
                ));
            }
            // Progress of a shutdown already announced: the log has it, and `status`
            // shows each stopping service with its kill time. A refused reload is
            // answered to whoever asked.
            Report::StillStopping { .. } | Report::SlowStops { .. } | Report::ReloadRefused => {
                return None;
            }
            Report::Unsettled { .. } => return None,
        }
        Some(event)
    }
}

/// `TERM` for 15 (the protocol writes signal names without `SIG`); the number for one
/// without a name.
fn bare_signal_name(number: i32) -> String {
    crate::signals::SIGNALS
        .iter()
        .find(|(_, n)| *n == number)
        .map_or_else(|| number.to_string(), |(name, _)| (*name).to_string())
}

fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::OneForOne => "one_for_one",
        Strategy::OneForAll => "one_for_all",
        Strategy::RestForOne => "rest_for_one",
    }
}

/// The known name closest to `name` by edit distance, if close enough to be a typo.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_a_close_name_only() {
        let names = ["api", "web", "backend"];
        assert_eq!(closest("apx", names.into_iter()), Some("api"));
        assert_eq!(closest("bakend", names.into_iter()), Some("backend"));
        assert_eq!(closest("zzzzzz", names.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
