//! The read-only view of the supervisor: names and ids, the phase of the whole tree
//! (running, draining, stopping), each service's and group's state for status output,
//! systemd's `STATUS=` and metrics, the tree as text (SIGUSR2), and the facts the
//! simulator checks its invariants with. Nothing here changes state.

use super::tree::{GroupMode, Intent, KillTimer, Node, NodeKind, ROOT, Readiness, Run};
use super::{ChildRef, EndKind, ExitStatus, NodeId, Phase, ServiceId, Supervisor, Time};
use crate::spec::Strategy;
use alloc::{format, string::String, string::ToString, vec::Vec};
use core::time::Duration;

/// Where the whole tree is in its life (`Supervisor::phase_view`). Readiness
/// endpoints fail from the first moment of `Draining`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseView {
    /// Supervising; the tree may or may not be ready (`tree_ready`).
    Running,
    /// A shutdown was requested at `since`; services run on until `until`
    /// (`drain_delay`), then the orderly shutdown begins.
    Draining { since: Time, until: Time },
    /// The orderly shutdown, begun at `since`; everything left is killed at
    /// `deadline` (`shutdown_timeout` after the request).
    Stopping { since: Time, deadline: Time },
    /// Everything is down; minder is exiting.
    Exited,
}

/// A service on its way down (`ServiceView::stopping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoppingView {
    /// When its stop signal was sent.
    pub since: Time,
    /// When it gets SIGKILL (its `stop_timeout`, or the end of `shutdown_timeout` if
    /// that comes first); `None` once SIGKILL has been sent.
    pub kill_at: Option<Time>,
}

/// A read-only view of one group (the root included), for status output and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupView<'a> {
    pub id: NodeId,
    pub name: &'a str,
    /// `None` for the root.
    pub parent: Option<NodeId>,
    pub strategy: Strategy,
    /// Restart decisions inside the window that ends now.
    pub restarts_in_period: usize,
    pub intensity: u32,
    pub period: Duration,
    /// `up`, `down`, `failing` (gave up, stopping its children), `ending` (its
    /// `auto_shutdown` fired) or `done` (ended for good).
    pub state: &'static str,
    /// Stopped by an operator.
    pub held: bool,
}

/// The last result of one kind of probe, for status output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRecord {
    pub at: Time,
    pub passed: bool,
    /// Why it failed; empty when it passed.
    pub detail: String,
}

/// A read-only view of one service, for status output and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView<'a> {
    pub name: &'a str,
    pub state: &'static str,
    pub pid: Option<i32>,
    pub generation: u64,
    /// Every start after the first.
    pub restarts: u64,
    /// Consecutive unplanned ends that led to a restart: backoff's `n`.
    pub backoff_count: u32,
    pub last_status: Option<ExitStatus>,
    /// Why it was last restarted after an unplanned end (exit, signal, failed check).
    pub last_restart_reason: Option<EndKind>,
    pub last_ready_probe: Option<&'a ProbeRecord>,
    pub last_health_probe: Option<&'a ProbeRecord>,
    /// When the current process started (its uptime's origin); `None` when none runs.
    pub since: Option<Time>,
    /// Set while it is being stopped: since when, and when it will be killed.
    pub stopping: Option<StoppingView>,
    /// Running and ready (its ready check passed, or it has none).
    pub ready: bool,
    /// Stopped by an operator, and kept down until started again.
    pub held: bool,
    /// The group it belongs to (see `group_view`), and that group's name.
    pub group: NodeId,
    pub group_name: &'a str,
}

impl Supervisor {
    /// Every node of the tree with this name: a service, a group, or all instances of
    /// a service (never one a reload removed).
    pub fn lookup(&self, name: &str) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(id, node)| {
                *id != ROOT
                    && !node.retired
                    && (node.name == name
                        || matches!(node.kind, NodeKind::Service(service)
                            if self.services[service].spec.base_name == name))
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// Every service of the tree with its name, in start order (depth first); not the
    /// ones a reload removed. Before any reload ids follow this order from 0; a
    /// reload's new services get ids after every existing one, wherever they stand.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &str)> {
        let mut order = Vec::with_capacity(self.services.len());
        self.collect_services(ROOT, &mut order);
        order
            .into_iter()
            .map(|id| (id, self.services[id].spec.name.as_str()))
    }

    fn collect_services(&self, id: NodeId, into: &mut Vec<ServiceId>) {
        match &self.nodes[id].kind {
            NodeKind::Service(service) => into.push(*service),
            NodeKind::Group(group) => {
                for child in &group.children {
                    self.collect_services(*child, into);
                }
            }
        }
    }

    /// The service of the tree with this full (instance) name.
    pub fn service_by_name(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(name).copied()
    }

    /// Whether a reload removed this service: it is stopped (or being stopped) and
    /// never started again. Its name and view stay readable, for its last log lines.
    pub fn is_retired(&self, id: ServiceId) -> bool {
        self.services
            .get(id)
            .is_some_and(|service| self.nodes[service.node].retired)
    }

    /// The name of any service that ever was, removed ones included.
    pub fn service_name(&self, id: ServiceId) -> Option<&str> {
        self.services
            .get(id)
            .map(|service| service.spec.name.as_str())
    }

    /// How many services the tree has (not counting removed ones).
    pub fn service_count(&self) -> usize {
        self.by_name.len()
    }

    /// Whether the whole tree is up and ready (the root counts as ready), and no
    /// shutdown has begun: the moment to tell systemd `READY=1`.
    pub fn tree_ready(&self) -> bool {
        self.phase == Phase::Running && self.ready(ROOT)
    }

    /// Where the tree is: running, draining after a shutdown request, stopping, or
    /// exited. A readiness endpoint answers "not ready" for anything but `Running`.
    pub fn phase_view(&self) -> PhaseView {
        match self.phase {
            Phase::Running => PhaseView::Running,
            Phase::Draining {
                requested, until, ..
            } => PhaseView::Draining {
                since: requested,
                until,
            },
            Phase::ShuttingDown {
                began, deadline, ..
            } => PhaseView::Stopping {
                since: began,
                deadline,
            },
            Phase::Exited => PhaseView::Exited,
        }
    }

    /// The `now` of the last event the core handled: the clock its views are read at.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Whether this incarnation is the current one (its exit would be acted on).
    pub fn is_current(&self, child: ChildRef) -> bool {
        self.services
            .get(child.id)
            .is_some_and(|service| service.generation == child.generation)
    }

    /// The service of `child`, if `child` is its current incarnation.
    pub(super) fn current(&self, child: ChildRef) -> Option<ServiceId> {
        self.is_current(child).then_some(child.id)
    }

    pub fn view(&self, id: ServiceId) -> Option<ServiceView<'_>> {
        let service = self.services.get(id)?;
        let node = &self.nodes[service.node];
        let (state, pid) = match &service.run {
            Run::Idle | Run::Done { .. } if node.retired => ("removed", None),
            Run::Idle if node.intent == Intent::Held => ("stopped", None),
            Run::Idle if service.generation == 0 => ("waiting", None),
            Run::Idle if node.not_before > self.now => ("backoff", None),
            Run::Idle => ("waiting", None),
            Run::Starting { .. } => ("starting", None),
            Run::Running {
                pid,
                readiness: Readiness::Ready { .. },
                ..
            } => ("running", Some(*pid)),
            Run::Running {
                pid,
                readiness: Readiness::Waiting,
                ..
            } => ("started", Some(*pid)),
            Run::Stopping { pid, .. } => ("stopping", Some(*pid)),
            Run::Done { .. } => ("done", None),
        };
        let deadline = match self.phase {
            Phase::ShuttingDown { deadline, .. } => Some(deadline),
            Phase::Running | Phase::Draining { .. } | Phase::Exited => None,
        };
        let (since, ready, stopping) = match &service.run {
            Run::Running {
                since, readiness, ..
            } => (
                Some(*since),
                matches!(readiness, Readiness::Ready { .. }),
                None,
            ),
            Run::Stopping { since, kill, .. } => (
                None,
                false,
                Some(StoppingView {
                    since: *since,
                    kill_at: match kill {
                        KillTimer::At(at) => Some(deadline.map_or(*at, |end| (*at).min(end))),
                        KillTimer::Sent => None,
                    },
                }),
            ),
            Run::Idle | Run::Starting { .. } | Run::Done { .. } => (None, false, None),
        };
        let group = node.parent.unwrap_or(ROOT);
        Some(ServiceView {
            since,
            stopping,
            ready,
            held: node.intent == Intent::Held,
            group,
            group_name: &self.nodes[group].name,
            name: &service.spec.name,
            state,
            pid,
            generation: service.generation,
            restarts: service.generation.saturating_sub(1),
            backoff_count: service.backoff_count,
            last_status: service.last_status,
            last_restart_reason: service.last_restart_reason,
            last_ready_probe: service.last_ready_probe.as_ref(),
            last_health_probe: service.last_health_probe.as_ref(),
        })
    }

    /// Restart decisions currently inside the window of the group `node`.
    pub fn restarts_in_period(&self, node: NodeId) -> Option<usize> {
        match &self.nodes.get(node)?.kind {
            NodeKind::Group(group) => Some(group.restarts.len()),
            NodeKind::Service(_) => None,
        }
    }

    /// One group (the root is `NodeId(0)`); `None` if `node` is not a group.
    pub fn group_view(&self, id: NodeId) -> Option<GroupView<'_>> {
        let node = self.nodes.get(id)?;
        let NodeKind::Group(group) = &node.kind else {
            return None;
        };
        let now = self.now;
        Some(GroupView {
            id,
            name: &node.name,
            parent: node.parent,
            strategy: group.strategy,
            // The window is trimmed only at the next decision; what has slid out of
            // it since does not count.
            restarts_in_period: group
                .restarts
                .iter()
                .filter(|at| now.saturating_sub(**at) <= group.period)
                .count(),
            intensity: group.intensity,
            period: group.period,
            state: match group.mode {
                GroupMode::Up => "up",
                GroupMode::Down => "down",
                GroupMode::Failing => "failing",
                GroupMode::Ending { .. } => "ending",
                GroupMode::Done => "done",
            },
            held: node.intent == Intent::Held,
        })
    }

    /// Every group, the root first, depth first.
    pub fn group_views(&self) -> impl Iterator<Item = GroupView<'_>> {
        self.nodes.ids().filter_map(|id| self.group_view(id))
    }

    /// Whether the group at `node` has given up: failing, down, or the tree is
    /// shutting down. Only then may its window hold more than `intensity` entries.
    pub fn group_escalated(&self, node: NodeId) -> bool {
        match self.nodes.get(node).map(|n| &n.kind) {
            Some(NodeKind::Group(group)) => group.mode != GroupMode::Up || self.shutting_down(),
            _ => false,
        }
    }

    /// The name of the group at `node` (empty if it is not a group).
    pub fn group_name(&self, node: NodeId) -> &str {
        match self.nodes.get(node) {
            Some(Node {
                name,
                kind: NodeKind::Group(_),
                ..
            }) => name,
            _ => "",
        }
    }

    /// The name of any node, service instance or group (empty for an id that names
    /// nothing).
    pub fn node_name(&self, node: NodeId) -> &str {
        self.nodes.get(node).map_or("", |node| node.name.as_str())
    }

    /// Every group of the tree: node id, name and intensity (for invariant checks and
    /// metrics).
    pub fn groups(&self) -> Vec<(NodeId, String, u32)> {
        self.nodes
            .iter()
            .filter_map(|(id, node)| match &node.kind {
                NodeKind::Group(group) if !node.retired => {
                    Some((id, node.name.clone(), group.intensity))
                }
                NodeKind::Group(_) | NodeKind::Service(_) => None,
            })
            .collect()
    }

    /// Whether a start of this service is legitimate now: the tree is not shutting
    /// down, nothing holds it or an ancestor down, and no ancestor is on its way down
    /// for a restart set. (For the simulator's invariant checks.)
    pub fn service_wanted(&self, id: ServiceId) -> bool {
        let Some(service) = self.services.get(id) else {
            return false;
        };
        let mut current = Some(service.node);
        while let Some(node) = current {
            let node_ref = &self.nodes[node];
            if node_ref.intent == Intent::Held
                || (node != service.node && node_ref.intent == Intent::Restart)
            {
                return false;
            }
            current = node_ref.parent;
        }
        self.wanted_up(service.node)
    }

    /// The tree's state as indented text (SIGUSR2 writes it to the log).
    pub fn describe(&self) -> String {
        let mut text = String::new();
        self.describe_node(ROOT, 0, &mut text);
        // What a reload removed and is still stopping is no longer in the tree, but
        // "what is minder waiting for" must still find it.
        if !self.retiring.is_empty() {
            text.push_str("removed by a reload, stopping:\n");
            for node in &self.retiring {
                self.describe_node(*node, 1, &mut text);
            }
        }
        text
    }

    fn describe_node(&self, id: NodeId, depth: usize, text: &mut String) {
        let node = &self.nodes[id];
        let indent = "  ".repeat(depth);
        match &node.kind {
            NodeKind::Group(group) => {
                let mode = match group.mode {
                    GroupMode::Failing => "failing",
                    GroupMode::Up => "up",
                    GroupMode::Down => "down",
                    GroupMode::Ending { .. } => "shutting itself down",
                    GroupMode::Done => "done",
                };
                text.push_str(&format!(
                    "{indent}{} group {mode}{} restarts {}/{} per {:?}\n",
                    node.name,
                    if node.intent == Intent::Held {
                        " (held)"
                    } else {
                        ""
                    },
                    group.restarts.len(),
                    group.intensity,
                    group.period
                ));
                for child in &group.children {
                    self.describe_node(*child, depth + 1, text);
                }
            }
            NodeKind::Service(service) => {
                if let Some(view) = self.view(*service) {
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
}

impl Supervisor {
    /// The names of the nodes an operator holds stopped (a `Stop` not yet undone by a
    /// `Start` or `Restart`), in id order; never one a reload removed. What
    /// `state_file` remembers across restarts of minder.
    pub fn held_names(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(id, node)| *id != ROOT && !node.retired && node.intent == Intent::Held)
            .map(|(_, node)| node.name.as_str())
            .collect()
    }
}
