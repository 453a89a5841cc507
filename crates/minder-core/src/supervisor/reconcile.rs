//! Reconciliation: after each event, the tree is walked until nothing more changes,
//! and every start and stop minder decides is made here.
//!
//! It is declarative. A group that is up first stops, last batch first, the members of
//! a pending restart set, then starts its idle children in order: a batch (the
//! instances of one service) only once the earlier siblings it waits for are ready (see
//! `StartGate`). A group that is down, or failing, stops its active children last batch
//! first; a failing group then fails upwards once it is empty.
//!
//! The walk is bounded per call. Every real tree settles in a few passes; should a bug
//! ever keep it from settling, the call stops after `MAX_PASSES`, says so with
//! `Report::Unsettled`, and asks to be called again at once (`next_deadline` is then
//! now), so nothing is dropped and the loop is never stuck inside one call.

use super::checks::Checks;
use super::tree::{
    AfterSpawn, GroupMode, Intent, KillTimer, NodeKind, ROOT, Readiness, Run, StartOrder,
    StopCause, Wave,
};
use super::{Effect, EndKind, NodeId, Phase, Report, ServiceId, Supervisor};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// Passes one call of `reconcile` may take (see the module's doc).
pub(super) const MAX_PASSES: usize = 1000;

/// How a call of `reconcile` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Settled {
    /// Nothing more changes until the next event or deadline.
    Yes,
    /// The pass limit was reached with changes still coming: call again at once.
    NotYet,
}

impl Supervisor {
    pub(super) fn reconcile(&mut self) {
        for _ in 0..self.pass_limit {
            self.dirty = false;
            self.reconcile_node(ROOT);
            self.reconcile_retiring();
            if self.shutting_down() && !self.active(ROOT) && self.retiring.is_empty() {
                if let Phase::ShuttingDown { exit, .. } = self.phase {
                    self.report_slow_stops();
                    self.phase = Phase::Exited;
                    self.out.push(Effect::Exit { code: exit.code() });
                }
                self.settled = Settled::Yes;
                return;
            }
            if !self.dirty {
                self.settled = Settled::Yes;
                return;
            }
        }
        self.settled = Settled::NotYet;
        self.out.push(Effect::Report(Report::Unsettled {
            passes: self.pass_limit,
        }));
    }

    pub(super) fn reconcile_node(&mut self, id: NodeId) {
        let NodeKind::Group(group) = &self.nodes[id].kind else {
            return;
        };
        let children = group.children.clone();
        for child in &children {
            self.reconcile_node(*child);
        }
        // Read the mode only now: a child failing upwards may just have changed it.
        let NodeKind::Group(group) = &self.nodes[id].kind else {
            return;
        };
        match group.mode {
            GroupMode::Down | GroupMode::Failing | GroupMode::Ending { .. } | GroupMode::Done => {
                self.reconcile_down(id, &children)
            }
            GroupMode::Up => self.reconcile_up(id, &children),
        }
    }

    /// Stop active children last batch first; once all are down, a failing group
    /// fails upwards and a group that shut itself down ends normally.
    fn reconcile_down(&mut self, id: NodeId, children: &[NodeId]) {
        if let Some(batch) = children
            .iter()
            .rev()
            .find(|c| self.active(**c))
            .map(|c| self.nodes[*c].batch)
        {
            let members: Vec<NodeId> = children
                .iter()
                .copied()
                .filter(|c| self.nodes[*c].batch == batch)
                .collect();
            for child in members {
                self.stop_node(child);
            }
            return;
        }
        let NodeKind::Group(group) = &mut self.nodes[id].kind else {
            return;
        };
        let end = match group.mode {
            GroupMode::Failing => EndKind::Abnormal,
            GroupMode::Ending { .. } => EndKind::Normal,
            GroupMode::Down | GroupMode::Done | GroupMode::Up => return,
        };
        let code = match group.mode {
            GroupMode::Ending { code } => code,
            _ => crate::exit::ROOT_FAILED,
        };
        group.mode = GroupMode::Down;
        self.dirty = true;
        if self.shutting_down() {
            return;
        }
        // Only a group that its parent still wants up ends on its own; otherwise the
        // parent's own plan (shutdown, a restart set) already covers it.
        let parent_wants = self.nodes[id].parent.is_none_or(|_| self.parent_up(id));
        if parent_wants && self.nodes[id].intent != Intent::Restart {
            self.group_ended(id, end, code);
        }
    }

    fn reconcile_up(&mut self, id: NodeId, children: &[NodeId]) {
        // First the pending restart set goes down, last batch first.
        let pending_batch = children
            .iter()
            .rev()
            .find(|c| self.nodes[**c].intent == Intent::Restart && self.active(**c))
            .map(|c| self.nodes[*c].batch);
        if let Some(batch) = pending_batch {
            let members: Vec<NodeId> = children
                .iter()
                .copied()
                .filter(|c| {
                    self.nodes[*c].batch == batch && self.nodes[*c].intent == Intent::Restart
                })
                .collect();
            for child in members {
                self.stop_node(child);
            }
            return;
        }
        for child in children {
            if self.nodes[*child].intent == Intent::Restart {
                self.nodes[*child].intent = Intent::Run;
                self.dirty = true;
            }
        }
        // A group its parent is taking down (shutdown, its parent failing or stopping
        // it for a restart set) starts nothing, even before its own turn to stop comes.
        if !self.wanted_up(id) || self.nodes[id].intent == Intent::Restart {
            return;
        }
        // Then start in order. A batch member starts once the earlier siblings its
        // gate names are ready; members of one batch do not wait for each other.
        let mut any_not_ready = false;
        let mut waves_not_ready: BTreeSet<Wave> = BTreeSet::new();
        let mut index = 0;
        while index < children.len() {
            let batch = self.nodes[children[index]].batch;
            let end = children[index..]
                .iter()
                .position(|c| self.nodes[*c].batch != batch)
                .map_or(children.len(), |offset| index + offset);
            for child in &children[index..end] {
                let node = &self.nodes[*child];
                let allowed = match node.gate.order {
                    StartOrder::AfterEveryEarlier => !any_not_ready,
                    StartOrder::AfterEarlierInWave => !waves_not_ready.contains(&node.gate.wave),
                };
                if allowed
                    && self.needs_start(*child)
                    && node.not_before <= self.now
                    && !self.replaces_retiring(*child)
                {
                    self.start_node(*child);
                }
            }
            for child in &children[index..end] {
                if !self.ready(*child) {
                    any_not_ready = true;
                    waves_not_ready.insert(self.nodes[*child].gate.wave);
                }
            }
            index = end;
        }
    }

    pub(super) fn new_wave(&mut self) -> Wave {
        self.last_wave.0 += 1;
        self.last_wave
    }

    fn needs_start(&self, id: NodeId) -> bool {
        let node = &self.nodes[id];
        if node.intent == Intent::Held {
            return false;
        }
        match &node.kind {
            NodeKind::Service(service) => self.services[*service].run == Run::Idle,
            NodeKind::Group(group) => group.mode == GroupMode::Down && !self.active(id),
        }
    }

    fn start_node(&mut self, id: NodeId) {
        self.dirty = true;
        self.nodes[id].gate.order = StartOrder::AfterEarlierInWave;
        match self.nodes[id].kind {
            NodeKind::Service(service_id) => {
                let service = &mut self.services[service_id];
                service.generation += 1;
                service.run = Run::Starting {
                    then: AfterSpawn::Run,
                };
                let child = service.child(service_id);
                self.out.push(Effect::Spawn { child });
            }
            NodeKind::Group(_) => self.start_group_fresh(id),
        }
    }

    /// A (re)started group begins as a new supervisor would: empty budgets, zero
    /// backoff counts, every child to be started again, finished ones included.
    pub(super) fn start_group_fresh(&mut self, id: NodeId) {
        self.dirty = true;
        let now = self.now;
        let NodeKind::Group(group) = &mut self.nodes[id].kind else {
            return;
        };
        group.mode = GroupMode::Up;
        group.restarts.clear();
        let children = group.children.clone();
        let wave = self.new_wave();
        for child in children {
            let node = &mut self.nodes[child];
            node.not_before = now;
            if node.intent == Intent::Restart {
                node.intent = Intent::Run;
            }
            node.gate.wave = wave;
            node.gate.order = StartOrder::AfterEveryEarlier;
            match &mut node.kind {
                NodeKind::Service(service) => {
                    let service = &mut self.services[*service];
                    service.backoff_count = 0;
                    service.retire_after_stop = false;
                    if matches!(service.run, Run::Done { .. }) {
                        service.run = Run::Idle;
                    }
                }
                // A group that ended for good is started again, as a new supervisor
                // starts every child.
                NodeKind::Group(group) => {
                    if group.mode == GroupMode::Done {
                        group.mode = GroupMode::Down;
                    }
                }
            }
        }
    }

    /// An up group goes down (a failing one stays failing).
    pub(super) fn set_group_down(&mut self, id: NodeId) {
        if let NodeKind::Group(group) = &mut self.nodes[id].kind
            && group.mode == GroupMode::Up
        {
            group.mode = GroupMode::Down;
            self.dirty = true;
        }
    }

    /// Begin stopping `id` (planned): a service gets its stop signal, a group goes down.
    pub(super) fn stop_node(&mut self, id: NodeId) {
        match self.nodes[id].kind {
            NodeKind::Group(_) => self.set_group_down(id),
            NodeKind::Service(service) => self.begin_stop(service, StopCause::Planned),
        }
    }

    /// The one way a service is stopped. A running one gets its stop signal now and
    /// SIGKILL after its stop_timeout; a stop for a failure is reported as such, and
    /// its end will be a failure with that reason whatever the exit status. A planned
    /// stop of a service still starting is remembered and carried out once it has
    /// started; anything else is already stopping or stopped.
    pub(super) fn begin_stop(&mut self, id: ServiceId, cause: StopCause) {
        let now = self.now;
        let service = &mut self.services[id];
        let child = service.child(id);
        match (&mut service.run, cause) {
            (Run::Running { pid, .. }, _) => {
                let pid = *pid;
                if let StopCause::Failure(reason) = cause {
                    self.out
                        .push(Effect::Report(Report::Condemned { child, reason }));
                }
                service.run = Run::Stopping {
                    pid,
                    since: now,
                    cause,
                    kill: KillTimer::At(now + service.spec.stop_timeout),
                };
                let signal = service.spec.stop_signal;
                self.out.push(Effect::Signal { child, pid, signal });
                self.dirty = true;
            }
            (
                Run::Starting {
                    then: then @ AfterSpawn::Run,
                },
                StopCause::Planned,
            ) => {
                *then = AfterSpawn::Stop;
                self.dirty = true;
            }
            (Run::Starting { .. }, _)
            | (Run::Stopping { .. } | Run::Idle | Run::Done { .. }, _) => {}
        }
    }

    /// A process has just been started for a stop asked for while it was starting:
    /// it is reported started and gets its stop signal at once, no checks.
    pub(super) fn stop_at_start(&mut self, id: ServiceId, pid: i32) {
        let now = self.now;
        let service = &mut self.services[id];
        let child = service.child(id);
        service.run = Run::Running {
            pid,
            since: now,
            readiness: Readiness::Waiting,
            checks: Checks::none(),
            forward_kill: None,
        };
        self.out
            .push(Effect::Report(Report::Started { child, pid }));
        self.begin_stop(id, StopCause::Planned);
    }

    // ----- predicates ---------------------------------------------------------------

    /// Whether anything of `id` is still (or about to be) a live process.
    pub(super) fn active(&self, id: NodeId) -> bool {
        match &self.nodes[id].kind {
            NodeKind::Service(service) => matches!(
                self.services[*service].run,
                Run::Starting { .. } | Run::Running { .. } | Run::Stopping { .. }
            ),
            NodeKind::Group(group) => group.children.iter().any(|c| self.active(*c)),
        }
    }

    /// Ready for ordering: ready, ended for good, or held stopped.
    pub(super) fn ready(&self, id: NodeId) -> bool {
        let node = &self.nodes[id];
        if node.intent == Intent::Held && !self.active(id) {
            return true;
        }
        match &node.kind {
            NodeKind::Service(service) => matches!(
                self.services[*service].run,
                Run::Running {
                    readiness: Readiness::Ready { .. },
                    ..
                } | Run::Done { .. }
            ),
            NodeKind::Group(group) => match group.mode {
                GroupMode::Up => group.children.iter().all(|c| self.ready(*c)),
                // Ended for good: like a finished service, it holds nobody up.
                GroupMode::Done => true,
                GroupMode::Down | GroupMode::Failing | GroupMode::Ending { .. } => false,
            },
        }
    }

    /// Whether every group above `id` is up (so `id` is wanted, unless held). Never
    /// for a node a reload removed: nothing wants it any more.
    pub(super) fn parent_up(&self, id: NodeId) -> bool {
        if self.nodes[id].retired {
            return false;
        }
        let mut current = self.nodes[id].parent;
        while let Some(parent) = current {
            if let NodeKind::Group(group) = &self.nodes[parent].kind
                && group.mode != GroupMode::Up
            {
                return false;
            }
            current = self.nodes[parent].parent;
        }
        true
    }

    pub(super) fn wanted_up(&self, id: NodeId) -> bool {
        !self.shutting_down() && self.nodes[id].intent != Intent::Held && self.parent_up(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Effect, Event, Report, Supervisor, Time};
    use crate::spec::{
        BackoffSpec, GroupSpec, NodeSpec, RestartType, SIGTERM, ServiceKind, ServiceSpec, Spec,
    };
    use core::time::Duration;

    fn group(name: &str, children: Vec<NodeSpec>) -> GroupSpec {
        GroupSpec {
            children,
            ..GroupSpec::new(name)
        }
    }

    fn service(name: &str) -> NodeSpec {
        NodeSpec::Service(ServiceSpec {
            name: name.into(),
            base_name: name.into(),
            instance: None,
            kind: ServiceKind::Longrun(RestartType::Permanent),
            success_codes: vec![0],
            success_signals: vec![],
            significant: false,
            backoff: BackoffSpec::default(),
            stop_signal: SIGTERM,
            stop_timeout: Duration::from_secs(10),
            ready: None,
            health: None,
            watchdog: None,
        })
    }

    fn spawns(effects: &[Effect]) -> usize {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Spawn { .. }))
            .count()
    }

    fn unsettled(effects: &[Effect]) -> bool {
        effects
            .iter()
            .any(|e| matches!(e, Effect::Report(Report::Unsettled { .. })))
    }

    /// A group inside the root: bringing the root up starts the group, and only the
    /// next pass starts the group's child.
    fn nested() -> Spec {
        Spec {
            shutdown_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            signals: crate::spec::SignalMode::Supervise,
            root: group(
                "root",
                vec![NodeSpec::Group(group("g", vec![service("b")]))],
            ),
        }
    }

    /// With one pass per call, the nested tree cannot come up in one call: each call
    /// says so, asks to be called again at once, and the next goes on where it stopped.
    #[test]
    fn an_unsettled_reconciliation_is_reported_and_resumed_at_once() {
        let mut supervisor = Supervisor::new(&nested(), 1);
        supervisor.pass_limit = 1;
        let now = Time::ZERO;
        let effects = supervisor.boot(now);
        assert_eq!(spawns(&effects), 0, "{effects:?}");
        assert!(unsettled(&effects), "{effects:?}");
        assert_eq!(supervisor.next_deadline(), Some(now));
        // The timer call goes on: `b` starts; one more pass would be needed to see that
        // nothing changes any more, so this call is not settled either.
        let effects = supervisor.handle(Event::Timer, now);
        assert_eq!(spawns(&effects), 1, "{effects:?}");
        assert!(unsettled(&effects), "{effects:?}");
        let effects = supervisor.handle(Event::Timer, now);
        assert_eq!(effects, []);
        assert_eq!(supervisor.next_deadline(), None);
    }

    /// With the real bound the same tree settles in one call, with no report.
    #[test]
    fn a_nested_tree_settles_in_one_call() {
        let mut supervisor = Supervisor::new(&nested(), 1);
        let effects = supervisor.boot(Time::ZERO);
        assert_eq!(spawns(&effects), 1, "{effects:?}");
        assert!(!unsettled(&effects), "{effects:?}");
        assert_eq!(supervisor.next_deadline(), None);
    }
}
