//! The counters behind the metrics, kept by the runtime from the core's reports, and
//! the snapshot the loop hands the metrics endpoint.
//!
//! The core keeps no counter for metrics: it reports what happens (`Report`), and the
//! loop, in the same path that logs each report, counts it here: ends by reason,
//! failed health checks, start times, the pending backoff, escalations, and the
//! recovery times (from an unplanned end to the next ready process). What the core
//! already knows as state (restarts, readiness, restart windows) is read from its view
//! when a snapshot is taken. Taking one is O(services), with no syscall and no lock,
//! so the loop can answer every request in the turn it arrives.

use super::Loop;
use crate::metrics::{
    ExitReason, GroupState, Phase, ServiceCounters, ServiceInfo, ServiceState, Snapshot,
};
use crate::spec::{GroupSpec, NodeSpec, Spec};
use crate::supervisor::{NodeId, PhaseView, ProbeKind, Report, Supervisor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The runtime's counters, by service id.
pub(super) struct Stats {
    info: Arc<[ServiceInfo]>,
    /// Indexed by `ServiceId.0`, as `info`.
    counters: Vec<ServiceCounters>,
    /// When the service's last unplanned end happened, while it has not been ready
    /// since: the start of the recovery being timed.
    down_since: Vec<Option<Instant>>,
    /// Whether the service is a oneshot, whose successful end is its purpose, not
    /// something to recover from.
    oneshot: Vec<bool>,
    escalations: HashMap<NodeId, u64>,
}

impl Stats {
    /// Labels for every service of `supervisor` (built from `spec`), in id order.
    pub(super) fn new(spec: &Spec, supervisor: &Supervisor) -> Stats {
        let mut stats = Stats {
            info: Arc::from(Vec::new()),
            counters: Vec::new(),
            down_since: Vec::new(),
            oneshot: Vec::new(),
            escalations: HashMap::new(),
        };
        stats.retree(spec, supervisor);
        stats
    }

    /// After a reload (and at start): labels for the services the tree has now, in the
    /// order of `supervisor.services()`, which is what a snapshot lists. Counters stay
    /// by id, so a kept service keeps its counts and a new id gets fresh ones; a
    /// removed service's counters stay behind, unlisted.
    pub(super) fn retree(&mut self, spec: &Spec, supervisor: &Supervisor) {
        let mut by_name = HashMap::new();
        placements(&spec.root, &mut by_name);
        let slots = supervisor
            .services()
            .map(|(id, _)| id.0 + 1)
            .max()
            .unwrap_or(0)
            .max(self.counters.len());
        self.counters.resize(slots, ServiceCounters::default());
        self.down_since.resize(slots, None);
        self.oneshot.resize(slots, false);
        let info: Vec<ServiceInfo> = supervisor
            .services()
            .map(|(id, name)| {
                let (group, ready_check, oneshot) = by_name
                    .get(name)
                    .map_or(("root", false, false), |placed| *placed);
                self.oneshot[id.0] = oneshot;
                ServiceInfo {
                    name: name.to_string(),
                    group: group.to_string(),
                    ready_check,
                }
            })
            .collect();
        self.info = info.into();
    }

    /// Counts what `report` says happened at `now`.
    pub(super) fn note(&mut self, report: &Report, now: Instant) {
        match report {
            Report::Started { child, .. } => {
                if let Some(counters) = self.counters.get_mut(child.id.0) {
                    counters.start_time = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |since| since.as_secs_f64());
                    counters.backoff = 0.0;
                }
            }
            Report::StartFailed { child, .. } => {
                self.ended(child.id.0, ExitReason::StartFailure, now);
            }
            Report::Exited { child, status, end } => {
                self.ended(child.id.0, ExitReason::of(*end, *status), now);
            }
            Report::Ready { child } => {
                let index = child.id.0;
                if let Some(since) = self.down_since.get_mut(index).and_then(Option::take)
                    && let Some(counters) = self.counters.get_mut(index)
                {
                    counters
                        .recovery
                        .observe(now.saturating_duration_since(since));
                }
            }
            Report::RestartScheduled { id, delay } => {
                if let Some(counters) = self.counters.get_mut(id.0) {
                    counters.backoff = delay.as_secs_f64();
                }
            }
            Report::HealthFailed { child, kind, .. } => {
                if matches!(kind, ProbeKind::Health | ProbeKind::Memory)
                    && let Some(counters) = self.counters.get_mut(child.id.0)
                {
                    counters.health_failures += 1;
                }
            }
            Report::Escalated { group, .. } => {
                *self.escalations.entry(*group).or_default() += 1;
            }
            _ => {}
        }
    }

    /// After an operator's stop: a service it holds down is no longer recovering from
    /// whatever ended it before. How long it stays held is the operator's choice, not
    /// minder's time to heal it, so its next ready process (once started again) is not
    /// observed as a recovery. Called only for operator stops: O(services) is fine.
    pub(super) fn forget_held(&mut self, supervisor: &Supervisor) {
        for (id, _) in supervisor.services() {
            if supervisor.view(id).is_some_and(|view| view.held)
                && let Some(since) = self.down_since.get_mut(id.0)
            {
                *since = None;
            }
        }
    }

    /// An end of service `index`: counted by reason, and, unless minder stopped it or
    /// a oneshot finished its job, the start of a recovery (the first such end since
    /// it was last ready: a crash loop is one long recovery). A oneshot's success ends
    /// its recovery, as a ready process does for the others.
    fn ended(&mut self, index: usize, reason: ExitReason, now: Instant) {
        if let Some(counters) = self.counters.get_mut(index) {
            counters.exits[reason.index()] += 1;
        }
        let oneshot = self.oneshot.get(index) == Some(&true);
        if reason == ExitReason::Normal && oneshot {
            // A oneshot has no ready process: its success is what lets the tree go on,
            // so it is what ends the recovery from an earlier failure.
            if let Some(since) = self.down_since.get_mut(index).and_then(Option::take)
                && let Some(counters) = self.counters.get_mut(index)
            {
                counters
                    .recovery
                    .observe(now.saturating_duration_since(since));
            }
            return;
        }
        if reason != ExitReason::Stopped
            && let Some(since) = self.down_since.get_mut(index)
        {
            since.get_or_insert(now);
        }
    }
}

/// Each service of the tree under `group`, by name: the group it is a child of, whether
/// it has a ready check, whether it is a oneshot.
fn placements<'a>(group: &'a GroupSpec, into: &mut HashMap<&'a str, (&'a str, bool, bool)>) {
    for child in &group.children {
        match child {
            NodeSpec::Service(service) => {
                into.insert(
                    &service.name,
                    (&group.name, service.ready.is_some(), service.oneshot),
                );
            }
            NodeSpec::Group(inner) => placements(inner, into),
        }
    }
}

impl Loop {
    /// The tree's state now, for the metrics endpoint: the core's view of each
    /// service and group with the runtime's counters. No syscall.
    pub(super) fn snapshot(&self) -> Snapshot {
        let stats = &self.stats;
        let services = self
            .supervisor
            .services()
            .map(|(id, _)| {
                let view = self.supervisor.view(id);
                let state = view.as_ref().map_or("waiting", |view| view.state);
                ServiceState {
                    pid: view.as_ref().and_then(|view| view.pid),
                    up: matches!(state, "started" | "running" | "stopping"),
                    ready: state == "running",
                    settled: matches!(state, "running" | "done" | "stopped"),
                    restarts: view.as_ref().map_or(0, |view| view.restarts),
                    counters: stats.counters.get(id.0).cloned().unwrap_or_default(),
                }
            })
            .collect();
        let groups = self
            .supervisor
            .groups()
            .into_iter()
            .map(|(node, name, _)| GroupState {
                restarts_in_period: self
                    .supervisor
                    .restarts_in_period(node)
                    .map_or(0, |count| count as u64),
                escalations: stats.escalations.get(&node).copied().unwrap_or(0),
                name,
            })
            .collect();
        Snapshot {
            phase: match self.supervisor.phase_view() {
                PhaseView::Running => Phase::Running,
                PhaseView::Draining { .. } => Phase::Draining,
                PhaseView::Stopping { .. } | PhaseView::Exited => Phase::ShuttingDown,
            },
            info: Arc::clone(&stats.info),
            services,
            groups,
            orphans_reaped: self.orphans_reaped,
            log_lines_dropped: self.outputs.as_ref().map_or(0, |outputs| {
                outputs.lines_dropped() + outputs.own_lines_dropped()
            }),
        }
    }
}
