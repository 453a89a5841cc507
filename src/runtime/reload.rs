//! Reloading the config file while the tree runs (`minderctl reload`, SIGHUP), and
//! keeping the operator's stops in `state_file`.
//!
//! A reload re-reads the file minder was started with through `config::load`; a file
//! with any error changes nothing and is answered with every error and its position.
//! A valid one is compared with the running tree (`spec::diff`): `--dry-run` answers
//! that plan. A real reload tells systemd `RELOADING=1`, logs the plan, hands the
//! core the lowered new tree and the services whose spec changed in ways only the
//! runtime sees (`Supervisor::reload`), rebuilds the process table by the ids the
//! core hands out, and then waits: the answer goes out once every service the reload
//! starts or restarts is ready, or as soon as one of them has failed, each change
//! with its outcome; then `READY=1` to systemd. The waiting is a reading of the
//! core's reports and views after each turn: no timer, nothing decided here. One
//! reload runs at a time: a control request meanwhile is refused, a SIGHUP is
//! queued (one at most) and runs when the current one has answered.
//!
//! The held set (the nodes an operator stopped) is read from `state_file` before the
//! tree boots, and written again whenever it changes, which only an operator command
//! or a reload can do; the writing happens on `state_file::Writer`'s thread.

use super::{Loop, services};
use crate::config::{self, ConfigErrors};
use crate::control::protocol::{ConfigProblem, Error, ErrorKind, ReloadChange, ReloadResult};
use crate::spec::{self, Applies, DaemonSpec, Plan, ProcessTable, ReadyCheck, ServiceAction, Spec};
use crate::state_file::{self, Stored};
use crate::supervisor::{EndKind, Event, ExitStatus, Report, ServiceId};
use minder_core::spec::{GroupSpec, NodeSpec, SignalMode};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

/// Where the tree came from: what a reload reads again.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    /// The config file as given on the command line.
    pub path: PathBuf,
    /// The main process of `minder run CONFIG -- cmd`, added to every reloaded tree
    /// as it was to the first; empty without one.
    pub main: Vec<String>,
}

/// Called once with a reload's answer (for a control client).
pub(super) type ReloadAnswer = Box<dyn FnOnce(Result<ReloadResult, Error>)>;

/// Where a reload's answer goes.
pub(super) enum ReloadReply {
    /// SIGHUP: to minder's log.
    Log,
    /// A control client.
    Client(ReloadAnswer),
}

/// The loop's reload state. Created with the loop; `running` is set while a reload
/// waits for its services and cleared when it answers.
pub(super) struct Reloads {
    /// `None` in container mode, which has no file to read again.
    source: Option<ConfigSource>,
    /// The shape of the running tree, its services by name (their specs are in the
    /// process table): with it the running `Spec` is rebuilt to compare with a new
    /// one, without keeping every service's spec twice.
    shape: Shape,
    running: Option<Running>,
    /// A SIGHUP came while a reload was running: reload again once it has answered.
    sighup_queued: bool,
}

struct Shape {
    daemon: DaemonSpec,
    root: GroupSpec<String>,
}

/// A reload applied and waiting for its services to come up.
struct Running {
    started: Instant,
    changes: Vec<ReloadChange>,
    awaited: Vec<Awaited>,
    /// Services the reload removed, by name, for the outcome of their stop.
    removed: Vec<(String, ServiceId)>,
    reply: ReloadReply,
}

/// A service a reload started or restarted, and what became of it.
struct Awaited {
    /// Index into `Running::changes`.
    change: usize,
    id: ServiceId,
    /// Its generation when the reload began: reports about this one or an older one
    /// are about the process being replaced.
    after: u64,
    oneshot: bool,
    /// Why it is stopping for a failure, before its exit is reported.
    condemned: Option<String>,
    outcome: Option<Outcome>,
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Ready,
    Failed(String),
    /// Held by an operator meanwhile: it is not coming up, by request.
    Held,
    /// Not started: it waits for an earlier service (named) that is in backoff.
    Blocked(String),
}

/// The operator's stops and where they are kept (`state_file`). Created with the
/// loop and dropped with it; dropping the writer lets its thread finish the last
/// write on its own, and `finish_state_writes` waits for that (bounded) at exit.
pub(super) struct Holds {
    path: Option<PathBuf>,
    /// Started with the first write.
    writer: Option<state_file::Writer>,
    /// The set last handed to the writer (or read at start), sorted.
    written: Vec<String>,
    /// An operator command or a reload may have changed the set since.
    dirty: bool,
}

impl Reloads {
    pub(super) fn new(source: Option<ConfigSource>, spec: &Spec) -> Reloads {
        Reloads {
            source,
            shape: Shape::of(spec),
            running: None,
            sighup_queued: false,
        }
    }
}

impl Holds {
    pub(super) fn new(spec: &Spec) -> Holds {
        Holds {
            path: spec.daemon.state_file.clone(),
            writer: None,
            written: Vec::new(),
            dirty: false,
        }
    }
}

impl Shape {
    fn of(spec: &Spec) -> Shape {
        Shape {
            daemon: spec.daemon.clone(),
            root: spec.root.map_services(&mut |service| service.name.clone()),
        }
    }
}

impl Loop {
    /// Reload the config file: answer the plan (`dry_run`) or apply it and answer
    /// once its services are up. Never blocks: reading the file is bounded (see
    /// `config::file`), and the waiting happens across later turns.
    pub(super) fn reload(&mut self, dry_run: bool, reply: ReloadReply) {
        let Some(source) = self.reloads.source.clone() else {
            answer(
                reply,
                Err(Error::new(
                    ErrorKind::Unsupported,
                    "minder runs a single command (container mode): there is no config file to reload",
                )),
            );
            return;
        };
        if self.shutdown_started.is_some() {
            answer(
                reply,
                Err(Error::new(
                    ErrorKind::ShuttingDown,
                    "minder is shutting down: nothing reloaded",
                )),
            );
            return;
        }
        if !dry_run && let Some(running) = &self.reloads.running {
            answer(
                reply,
                Err(Error::new(
                    ErrorKind::ReloadFailed,
                    format!(
                        "another reload is in progress (for {:.1} s, waiting for its services to be ready); nothing changed: try again once it has answered",
                        running.started.elapsed().as_secs_f64()
                    ),
                )),
            );
            return;
        }
        let new = match load(&source) {
            Ok(new) => new,
            Err(errors) => {
                for error in &errors.0 {
                    tracing::error!("reload: {error}");
                }
                let message = format!(
                    "{}: {} error(s); nothing changed",
                    config::printable(&source.path.display().to_string()),
                    errors.0.len()
                );
                tracing::error!("reload failed: {message}");
                let mut error = Error::new(ErrorKind::ReloadFailed, message);
                error.errors = errors
                    .0
                    .iter()
                    .map(|error| ConfigProblem {
                        file: error.file.clone(),
                        line: error.line as u64,
                        column: error.column as u64,
                        message: error.message.clone(),
                    })
                    .collect();
                answer(reply, Err(error));
                return;
            }
        };
        for warning in config::warnings(&new) {
            tracing::warn!(
                "reload: {}: {warning}",
                config::printable(&source.path.display().to_string())
            );
        }
        let plan = spec::diff(&self.running_spec(), &new);
        if dry_run {
            let changes = planned_changes(&plan, "planned");
            answer(
                reply,
                Ok(ReloadResult {
                    dry_run: true,
                    changes,
                }),
            );
            return;
        }
        if plan.is_empty() {
            tracing::info!("reload: the file describes the running tree; nothing to change");
            answer(
                reply,
                Ok(ReloadResult {
                    dry_run: false,
                    changes: Vec::new(),
                }),
            );
            return;
        }
        self.apply(new, plan, reply);
    }

    /// The running tree as a `Spec`: its shape with each service's spec from the
    /// process table.
    fn running_spec(&self) -> Spec {
        // One pass for the ids: looking each name up on its own would cost a pass
        // over every service per service.
        let ids: HashMap<&str, ServiceId> = self
            .supervisor
            .services()
            .map(|(id, name)| (name, id))
            .collect();
        fn fill(
            table: &ProcessTable,
            ids: &HashMap<&str, ServiceId>,
            group: &GroupSpec<String>,
        ) -> spec::GroupSpec {
            let mut children = Vec::with_capacity(group.children.len());
            for child in &group.children {
                match child {
                    NodeSpec::Service(name) => {
                        // Every name of the shape is in the table; should one not be,
                        // the plan shows it as added, which the core then agrees with.
                        if let Some(service) =
                            ids.get(name.as_str()).and_then(|id| table.service(*id))
                        {
                            children.push(NodeSpec::Service(service.clone()));
                        }
                    }
                    NodeSpec::Group(inner) => {
                        children.push(NodeSpec::Group(fill(table, ids, inner)));
                    }
                }
            }
            spec::GroupSpec {
                name: group.name.clone(),
                strategy: group.strategy,
                intensity: group.intensity,
                period: group.period,
                auto_shutdown: group.auto_shutdown,
                restart: group.restart,
                significant: group.significant,
                children,
            }
        }
        Spec {
            daemon: self.reloads.shape.daemon.clone(),
            root: fill(&self.processes, &ids, &self.reloads.shape.root),
        }
    }

    /// Apply a valid, non-empty plan: the core takes the new tree, the runtime its
    /// new process table, and the answer waits for the services that start.
    fn apply(&mut self, new: Spec, plan: Plan, reply: ReloadReply) {
        if let Some(systemd) = &mut self.systemd {
            systemd.reloading();
        }
        // Keys can hold what a user wrote (an environment variable's name): escaped,
        // like every config text in minder's log.
        for change in &plan.services {
            tracing::info!("reload: {}", config::printable(&change.to_string()));
        }
        for change in &plan.groups {
            tracing::info!("reload: {}", config::printable(&change.to_string()));
        }
        for change in &plan.daemon {
            match change.applies {
                Applies::Now => tracing::info!("reload: {change}"),
                Applies::AfterRestart => tracing::warn!("reload: {change}"),
            }
        }
        let restart = plan.restart_names();
        // The generation each service had before: what it reports after that is
        // about the process the reload starts.
        let generations: HashMap<String, u64> = restart
            .iter()
            .filter_map(|name| {
                let id = self.supervisor.service_by_name(name)?;
                Some((name.to_string(), self.supervisor.view(id)?.generation))
            })
            .collect();
        let (mut core_spec, probes) = spec::lower(&new);
        // Only a config-mode minder has a file to reload.
        core_spec.signals = SignalMode::Supervise;
        let effects = self.supervisor.reload(&core_spec, &restart, self.now());
        let Some((added, removed, restarted)) = effects.iter().find_map(|effect| match effect {
            crate::supervisor::Effect::Report(Report::Reloaded {
                added,
                removed,
                restarted,
                ..
            }) => Some((added.clone(), removed.clone(), restarted.clone())),
            _ => None,
        }) else {
            // The core refused (a shutdown began): nothing changed.
            self.perform(effects);
            answer(
                reply,
                Err(Error::new(
                    ErrorKind::ShuttingDown,
                    "minder is shutting down: nothing reloaded",
                )),
            );
            return;
        };

        let new_names: HashSet<String> = services(&new.root)
            .map(|service| service.name.clone())
            .collect();
        let needs_notify = services(&new.root).any(|service| {
            matches!(
                service.ready.as_ref().map(|ready| &ready.check),
                Some(ReadyCheck::Notify)
            )
        });
        self.shutdown_timeout = new.daemon.shutdown_timeout;
        if self.holds.path != new.daemon.state_file {
            self.holds.path = new.daemon.state_file.clone();
            // The new file gets the current set at once (if anything is held).
            self.holds.written.clear();
        }
        self.holds.dirty = true;
        self.reloads.shape = Shape::of(&new);
        self.control.retree(&new);
        self.stats.retree(&new, &self.supervisor);
        // Removed services still stopping keep their spec in the table: their last
        // log lines need a name.
        let mut keep: Vec<ServiceId> = removed.clone();
        keep.extend(
            self.children
                .iter()
                .map(|incarnation| incarnation.child.id)
                .filter(|id| self.supervisor.is_retired(*id)),
        );
        let fresh = ProcessTable::new(new, probes, &self.supervisor);
        let old = std::mem::replace(&mut self.processes, fresh);
        self.processes.carry_over(old, &keep);

        // Notify sockets: a removed service's goes; a restarted one gets a new one at
        // its next spawn (its user or its `ready` may have changed); the first notify
        // service of the tree needs the socket directory.
        if let Some(notify) = &mut self.notify {
            for id in removed.iter().chain(&restarted) {
                notify.remove(*id);
            }
        } else if needs_notify {
            match crate::notify::NotifyServer::new(self.fact_sender.clone()) {
                Ok(server) => self.notify = Some(server),
                Err(error) => {
                    tracing::error!("create the notify sockets' directory: {error}");
                }
            }
        }
        if let Some(outputs) = &self.outputs {
            for id in &removed {
                if let Some(name) = self.supervisor.service_name(*id)
                    && !new_names.contains(name)
                {
                    outputs.forget(name);
                }
            }
        }

        let mut changes = planned_changes(&plan, "applied");
        let mut awaited = Vec::new();
        let held_groups = self.held_groups_above();
        for id in added.iter().chain(&restarted) {
            let Some(name) = self.supervisor.service_name(*id) else {
                continue;
            };
            let Some(change) = changes
                .iter()
                .position(|change| change.kind == "service" && change.name == name)
            else {
                continue;
            };
            if let Some(group) = held_groups.get(name) {
                changes[change].outcome =
                    format!("not started: its group {group} is stopped by an operator");
                continue;
            }
            awaited.push(Awaited {
                change,
                id: *id,
                after: generations.get(name).copied().unwrap_or(0),
                oneshot: self.processes.service(*id).is_some_and(|spec| spec.oneshot),
                condemned: None,
                outcome: None,
            });
        }
        // Restarts the core did not make: the service was not running (held, in
        // backoff, finished). It starts with the new spec whenever it starts next.
        let waited_for: HashSet<usize> = awaited.iter().map(|wait| wait.change).collect();
        for (index, change) in changes.iter_mut().enumerate() {
            if change.kind == "service"
                && change.action == ServiceAction::Restart.as_str()
                && !waited_for.contains(&index)
            {
                change.outcome =
                    "updated: not running now; starts with the new settings when it starts"
                        .to_string();
            }
        }
        let removed = removed
            .iter()
            .filter_map(|id| Some((self.supervisor.service_name(*id)?.to_string(), *id)))
            .collect();
        self.reloads.running = Some(Running {
            started: Instant::now(),
            changes,
            awaited,
            removed,
            reply,
        });
        self.perform(effects);
    }

    /// For each service under a group an operator holds (in the running tree), the
    /// highest such group: the service does not start while it is held. Empty, and
    /// no walk at all, when nothing is held.
    fn held_groups_above(&self) -> HashMap<String, String> {
        fn walk(
            group: &GroupSpec<String>,
            held: &HashSet<&str>,
            above: Option<&str>,
            into: &mut HashMap<String, String>,
        ) {
            for child in &group.children {
                match child {
                    NodeSpec::Service(name) => {
                        if let Some(group) = above {
                            into.insert(name.clone(), group.to_string());
                        }
                    }
                    NodeSpec::Group(inner) => {
                        let above = above.or_else(|| {
                            held.contains(inner.name.as_str())
                                .then_some(inner.name.as_str())
                        });
                        walk(inner, held, above, into);
                    }
                }
            }
        }
        let held: HashSet<&str> = self.supervisor.held_names().into_iter().collect();
        let mut found = HashMap::new();
        if !held.is_empty() {
            walk(&self.reloads.shape.root, &held, None, &mut found);
        }
        found
    }

    /// What a reload waits for, from the core's reports (called for each, before it
    /// is logged), and SIGHUP.
    pub(super) fn observe_for_reload(&mut self, report: &Report) {
        if let Report::Signal { signal } = report
            && *signal == libc::SIGHUP
        {
            if self.reloads.running.is_some() {
                tracing::info!(
                    "SIGHUP during a reload: the file is read again once this one has answered"
                );
            }
            self.reloads.sighup_queued = true;
            return;
        }
        let Some(running) = &mut self.reloads.running else {
            return;
        };
        let child = match report {
            Report::Ready { child }
            | Report::StartFailed { child, .. }
            | Report::Condemned { child, .. }
            | Report::Exited { child, .. } => *child,
            _ => return,
        };
        let Some(wait) = running
            .awaited
            .iter_mut()
            .find(|wait| wait.id == child.id && child.generation > wait.after)
        else {
            return;
        };
        if wait.outcome.is_some() {
            return;
        }
        match report {
            Report::Ready { .. } => wait.outcome = Some(Outcome::Ready),
            Report::StartFailed { reason, .. } => {
                wait.outcome = Some(Outcome::Failed(reason.clone()));
            }
            Report::Condemned { reason, .. } => wait.condemned = Some(reason.to_string()),
            Report::Exited { status, end, .. } => {
                wait.outcome = Some(if wait.oneshot && *end == EndKind::Normal {
                    Outcome::Ready
                } else {
                    let how = match status {
                        ExitStatus::Exited(code) => format!("exited with code {code}"),
                        ExitStatus::Signaled(number) => {
                            format!("killed by {}", crate::signals::signal_name(*number))
                        }
                    };
                    match wait.condemned.take() {
                        Some(reason) => Outcome::Failed(format!("{reason} ({how})")),
                        None => Outcome::Failed(format!("{how} before it was ready")),
                    }
                });
            }
            _ => {}
        }
    }

    /// After each turn: answer a reload whose services are up (or one failed), run a
    /// queued SIGHUP reload, and write the held set if it changed.
    pub(super) fn after_turn(&mut self) {
        if self.reloads.running.is_some() {
            self.settle_reload();
        }
        if self.reloads.running.is_none() && std::mem::take(&mut self.reloads.sighup_queued) {
            self.reload(false, ReloadReply::Log);
            // What the reload started is acted on in this same turn.
            self.settle();
            if self.reloads.running.is_some() {
                self.settle_reload();
            }
        }
        if self.holds.dirty {
            self.save_holds();
        }
    }

    fn settle_reload(&mut self) {
        let shutting_down = self.shutdown_started.is_some();
        // Held groups above services; empty, and cheap, when nothing is held.
        let held_above = self.held_groups_above();
        let Some(running) = &mut self.reloads.running else {
            return;
        };
        // A service an operator stopped meanwhile, itself or a group above it, is not
        // coming up: by request.
        for wait in running.awaited.iter_mut().filter(|w| w.outcome.is_none()) {
            if self
                .supervisor
                .view(wait.id)
                .is_some_and(|view| view.state == "stopped" || held_above.contains_key(view.name))
            {
                wait.outcome = Some(Outcome::Held);
            }
        }
        // A service starts only once every service before it in the tree is ready. One
        // still waiting while an earlier one is in backoff may wait for as long as that
        // one crash-loops: the answer says so rather than never coming, which would
        // also refuse every later reload, even the one fixing that service.
        let order = self.control.services_in_order();
        let state_of = |name: &str| {
            self.supervisor
                .service_by_name(name)
                .and_then(|id| self.supervisor.view(id))
                .map(|view| view.state)
        };
        for wait in running.awaited.iter_mut().filter(|w| w.outcome.is_none()) {
            let Some(view) = self.supervisor.view(wait.id) else {
                continue;
            };
            if view.state != "waiting" {
                continue;
            }
            let name = view.name;
            let blocker = order
                .iter()
                .take_while(|earlier| earlier.as_str() != name)
                .find(|earlier| state_of(earlier) == Some("backoff"));
            if let Some(blocker) = blocker {
                wait.outcome = Some(Outcome::Blocked(blocker.clone()));
            }
        }
        let failed = running
            .awaited
            .iter()
            .any(|wait| matches!(wait.outcome, Some(Outcome::Failed(_))));
        let all_settled = running.awaited.iter().all(|wait| wait.outcome.is_some());
        if !(failed || all_settled || shutting_down) {
            return;
        }
        let Some(mut running) = self.reloads.running.take() else {
            return;
        };
        for wait in &running.awaited {
            running.changes[wait.change].outcome = match &wait.outcome {
                Some(Outcome::Ready) => "ready".to_string(),
                Some(Outcome::Failed(reason)) => format!("failed: {reason}"),
                Some(Outcome::Held) => "stopped by an operator".to_string(),
                Some(Outcome::Blocked(earlier)) => format!(
                    "waiting: starts once {earlier}, before it in the tree, is up (it is in backoff)"
                ),
                None if shutting_down => "interrupted: minder is shutting down".to_string(),
                None => "starting (not waited for: another service failed)".to_string(),
            };
        }
        for change in running.changes.iter_mut() {
            if change.kind == "service" && change.action == ServiceAction::Stop.as_str() {
                let stopped = running
                    .removed
                    .iter()
                    .find(|(name, _)| *name == change.name)
                    .and_then(|(_, id)| self.supervisor.view(*id))
                    .is_none_or(|view| view.state == "removed");
                change.outcome = if stopped { "stopped" } else { "stopping" }.to_string();
            }
        }
        if let Some(systemd) = &mut self.systemd {
            systemd.reloaded();
        }
        let elapsed = running.started.elapsed().as_secs_f64();
        let failures = running
            .changes
            .iter()
            .filter(|change| change.outcome.starts_with("failed"))
            .count();
        answer(
            running.reply,
            Ok(ReloadResult {
                dry_run: false,
                changes: running.changes,
            }),
        );
        if failures > 0 {
            tracing::warn!(
                "reload applied in {elapsed:.1} s; {failures} service(s) failed to start"
            );
        } else {
            tracing::info!("reload applied in {elapsed:.1} s");
        }
    }

    /// Before the tree boots: the nodes `state_file` lists that still exist start
    /// held, as if an operator had stopped them (`Event::Stop` before boot holds
    /// without stopping anything, since nothing runs yet).
    pub(super) fn restore_holds(&mut self) {
        let Some(path) = self.holds.path.clone() else {
            return;
        };
        let names = match state_file::read(&path) {
            Ok(Stored::Missing) => return,
            Ok(Stored::Held(names)) => names,
            Err(problem) => {
                tracing::warn!("{problem}; starting with no service held");
                return;
            }
        };
        // What the file says, so that names which are gone get written out of it.
        let mut written = names.clone();
        for name in names {
            let nodes: Vec<_> = self
                .supervisor
                .lookup(&name)
                .into_iter()
                .filter(|node| self.supervisor.node_name(*node) == name)
                .collect();
            if nodes.is_empty() {
                tracing::info!(
                    "state file: {} was stopped by hand but is no longer in the config; forgotten",
                    config::printable(&name)
                );
                continue;
            }
            tracing::info!(
                service = name.as_str(),
                "held stopped: it was stopped by hand before minder restarted (state file)"
            );
            for node in nodes {
                let effects = self.supervisor.handle(Event::Stop(node), self.now());
                self.perform(effects);
            }
        }
        written.sort();
        self.holds.written = written;
        self.holds.dirty = true;
    }

    /// Marks the held set as possibly changed when the core is handed an operator
    /// command (the only events that hold or release a node).
    pub(super) fn note_operator_event(&mut self, event: &Event) {
        if matches!(event, Event::Start(_) | Event::Stop(_) | Event::Restart(_)) {
            self.holds.dirty = true;
        }
    }

    fn save_holds(&mut self) {
        self.holds.dirty = false;
        let Some(path) = self.holds.path.clone() else {
            return;
        };
        let mut held: Vec<String> = self
            .supervisor
            .held_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        held.sort();
        held.dedup();
        // Unchanged: nothing to write (and no file is created for an empty set).
        if held == self.holds.written {
            return;
        }
        if self.holds.writer.is_none() {
            match state_file::Writer::start() {
                Ok(writer) => self.holds.writer = Some(writer),
                Err(error) => {
                    tracing::warn!("state file: cannot start its writer thread: {error}");
                    return;
                }
            }
        }
        if let Some(writer) = &self.holds.writer {
            writer.save(&path, held.clone());
        }
        self.holds.written = held;
    }

    /// At exit: the last write of the held set finishes (bounded).
    pub(super) fn finish_state_writes(&mut self) {
        if let Some(writer) = &mut self.holds.writer {
            writer.finish();
        }
    }
}

/// Load the file again as it was loaded at start (with the main process of
/// `run CONFIG -- cmd`).
fn load(source: &ConfigSource) -> Result<Spec, ConfigErrors> {
    let mut new = config::load(&source.path)?;
    if !source.main.is_empty()
        && let Err(message) = super::add_main_service(&mut new, source.main.clone())
    {
        return Err(ConfigErrors(vec![config::ConfigError {
            file: config::printable(&source.path.display().to_string()).into_owned(),
            line: 0,
            column: 0,
            message,
        }]));
    }
    Ok(new)
}

/// The plan as protocol changes, each with `outcome`; `[daemon]` keys that need a
/// restart of minder say so in theirs.
fn planned_changes(plan: &Plan, outcome: &str) -> Vec<ReloadChange> {
    let mut changes: Vec<ReloadChange> = plan
        .services
        .iter()
        .map(|change| ReloadChange {
            name: change.name.clone(),
            kind: "service".to_string(),
            action: change.action.as_str().to_string(),
            keys: change.keys.clone(),
            outcome: outcome.to_string(),
        })
        .collect();
    changes.extend(plan.groups.iter().map(|change| ReloadChange {
        name: change.name.clone(),
        kind: "group".to_string(),
        action: change.action.as_str().to_string(),
        keys: change.keys.clone(),
        outcome: outcome.to_string(),
    }));
    changes.extend(plan.daemon.iter().map(|change| ReloadChange {
        name: change.key.clone(),
        kind: "daemon".to_string(),
        action: "update".to_string(),
        keys: vec![change.key.clone()],
        outcome: match change.applies {
            Applies::Now => outcome.to_string(),
            Applies::AfterRestart => format!("{outcome}: needs a restart of minder"),
        },
    }));
    changes
}

/// Send a reload's answer where it goes. For SIGHUP, the log: each change and its
/// outcome, or the error.
fn answer(reply: ReloadReply, result: Result<ReloadResult, Error>) {
    match reply {
        ReloadReply::Client(answer) => answer(result),
        ReloadReply::Log => match result {
            Ok(result) => {
                for change in &result.changes {
                    let line = format!(
                        "reload: {} {} {}: {}",
                        change.action, change.kind, change.name, change.outcome
                    );
                    let line = config::printable(&line);
                    if change.outcome.starts_with("failed") {
                        tracing::warn!("{line}");
                    } else {
                        tracing::info!("{line}");
                    }
                }
            }
            // Errors of an invalid file were logged one by one already.
            Err(error) if error.kind == ErrorKind::ReloadFailed && !error.errors.is_empty() => {}
            Err(error) => tracing::warn!("reload: {}", error.message),
        },
    }
}
