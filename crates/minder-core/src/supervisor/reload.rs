//! Reload: the supervisor takes a new tree while it runs and touches only what changed.
//!
//! Nodes are matched by name within a matched parent, so a node keeps its ids exactly
//! when it keeps its name, its kind (service or group) and its parent group; one that
//! moved to another group is removed and added, and a group that moved takes its whole
//! subtree with it. Only in the new tree: appended to the arenas (ids after every
//! existing one), placed at its position among its group's children and started by
//! reconciliation in one wave with everything else this reload starts. Only in the old
//! tree: retired in place: detached from its group, marked `retired` (nothing wants it
//! up again, lookups skip it, its ids are never reused), and stopped, last first, as a
//! planned stop. In both: the node takes the new spec; a running service keeps its
//! process unless the caller names it (a change the core cannot see: argv,
//! environment, identity) or `needs_new_process` says its process cannot follow; then
//! it gets an operator-style restart, which spends no budget and keeps its backoff.
//! Groups take their new strategy and budget in place, their children in the new
//! order. Like the rest of the core, this decides and emits effects; it performs none.

use super::tree::{
    AfterSpawn, Arena, GroupMode, Intent, NodeKind, ROOT, Readiness, Run, StartGate, StartOrder,
    Tree, Wave,
};
use super::{Effect, NodeId, Phase, Report, ServiceId, Supervisor, Time};
use crate::spec::{GroupSpec, NodeSpec, ReadyCheck, ServiceKind, ServiceSpec, Spec};
use alloc::collections::BTreeMap;
use alloc::{string::String, vec, vec::Vec};

/// The key of a service's core spec whose change a running process cannot follow, so
/// a reload restarts the service: `oneshot` (a task became a long-running service or
/// the other way round), `ready` (readiness switched between reported by the process,
/// through `ready.notify` or `ready.fd`, and not: the process was started with or
/// without the means to report it) or `watchdog` (the process was told its interval
/// when it started). `None` when every change takes effect in place.
pub fn needs_new_process(old: &ServiceSpec, new: &ServiceSpec) -> Option<&'static str> {
    let oneshot = |spec: &ServiceSpec| spec.kind == ServiceKind::Oneshot;
    let reported = |spec: &ServiceSpec| {
        spec.ready
            .is_some_and(|ready| ready.check == ReadyCheck::Reported)
    };
    if oneshot(old) != oneshot(new) {
        Some("oneshot")
    } else if reported(old) != reported(new) {
        Some("ready")
    } else if old.watchdog != new.watchdog {
        Some("watchdog")
    } else {
        None
    }
}

/// What one reload has done so far; becomes `Report::Reloaded`.
struct Change<'a> {
    /// Services the caller names for a restart.
    restart: &'a [&'a str],
    /// Nodes removed from their group, still to be retired.
    removed_nodes: Vec<NodeId>,
    added: Vec<ServiceId>,
    restarted: Vec<ServiceId>,
    updated_groups: Vec<NodeId>,
}

impl Supervisor {
    /// Take `new` as the tree to supervise from `now` on. `restart` names the services
    /// (full instance names, as in the new tree) whose full spec changed in a way the
    /// core cannot see: each of them that is running, or starting, is restarted.
    /// Once a shutdown has been asked for nothing changes and the only effect is
    /// `Report::ReloadRefused`; otherwise the effects start with `Report::Reloaded`
    /// and go on with the stops and starts the change asks for.
    pub fn reload(&mut self, new: &Spec, restart: &[&str], now: Time) -> Vec<Effect> {
        self.now = self.now.max(now);
        self.dirty = false;
        // Refused from the moment a shutdown is asked for, whatever stage it is in:
        // the tree is on its way out, and a new one would only be stopped again.
        if self.phase != Phase::Running {
            self.out.push(Effect::Report(Report::ReloadRefused));
            return core::mem::take(&mut self.out);
        }
        // Where each node stood in the old start order, to stop removed nodes in
        // reverse of it whatever order the new file lists their groups in.
        let mut position = vec![usize::MAX; self.nodes.len()];
        for (index, node) in self.start_order().into_iter().enumerate() {
            position[node.0] = index;
        }
        let wave = self.new_wave();
        let mut change = Change {
            restart,
            removed_nodes: Vec::new(),
            added: Vec::new(),
            restarted: Vec::new(),
            updated_groups: Vec::new(),
        };
        // The signal mode is not the file's: the runtime set it, and it stays.
        self.shutdown_timeout = new.shutdown_timeout;
        self.auto_shutdown = new.root.auto_shutdown;
        self.reload_group(ROOT, &new.root, wave, &mut change);
        let mut removed_nodes = core::mem::take(&mut change.removed_nodes);
        removed_nodes.sort_by_key(|node| position[node.0]);
        let removed = self.retire(&removed_nodes);
        // The report comes first, so the runtime knows the new services (and the
        // retired ones) before any effect names them.
        self.out.insert(
            0,
            Effect::Report(Report::Reloaded {
                added: change.added,
                removed,
                restarted: change.restarted,
                updated_groups: change.updated_groups,
            }),
        );
        self.reconcile();
        core::mem::take(&mut self.out)
    }

    /// Every node of the tree, depth first from the root: the start order.
    fn start_order(&self) -> Vec<NodeId> {
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            order.push(id);
            if let NodeKind::Group(group) = &self.nodes[id].kind {
                stack.extend(group.children.iter().rev());
            }
        }
        order
    }

    /// The group `id` (matched with `spec`) takes its new values and children.
    fn reload_group(&mut self, id: NodeId, spec: &GroupSpec, wave: Wave, change: &mut Change) {
        let now = self.now;
        let NodeKind::Group(group) = &mut self.nodes[id].kind else {
            return;
        };
        let updated = group.strategy != spec.strategy
            || group.intensity != spec.intensity
            || group.period != spec.period
            || group.auto_shutdown != spec.auto_shutdown
            || group.restart != spec.restart
            || group.significant != spec.significant;
        group.strategy = spec.strategy;
        group.intensity = spec.intensity;
        group.period = spec.period;
        group.auto_shutdown = spec.auto_shutdown;
        group.restart = spec.restart;
        group.significant = spec.significant;
        // The window is kept, cut to what the new budget can hold: a reload never
        // makes a group give up; its next restart decision is judged by the new
        // intensity and period.
        while group
            .restarts
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > group.period)
            || group.restarts.len() > group.intensity as usize
        {
            group.restarts.pop_front();
        }
        if updated {
            change.updated_groups.push(id);
        }
        let old_children = group.children.clone();
        let by_name: BTreeMap<String, usize> = old_children
            .iter()
            .enumerate()
            .map(|(index, child)| (self.nodes[*child].name.clone(), index))
            .collect();
        let mut kept = vec![false; old_children.len()];
        let mut children = Vec::with_capacity(spec.children.len());
        for child_spec in &spec.children {
            let index = by_name.get(child_spec.name()).copied().filter(|index| {
                matches!(
                    (&self.nodes[old_children[*index]].kind, child_spec),
                    (NodeKind::Service(_), NodeSpec::Service(_))
                        | (NodeKind::Group(_), NodeSpec::Group(_))
                )
            });
            if let Some(index) = index {
                kept[index] = true;
            }
            let old = index.map(|index| old_children[index]);
            let child = match (old, child_spec) {
                (Some(old), NodeSpec::Service(service)) => {
                    self.reload_service(old, service, wave, change);
                    old
                }
                (Some(old), NodeSpec::Group(inner)) => {
                    self.reload_group(old, inner, wave, change);
                    old
                }
                (None, _) => self.add_node(child_spec, id, wave, change),
            };
            children.push(child);
        }
        change.removed_nodes.extend(
            old_children
                .iter()
                .zip(kept)
                .filter(|(_, kept)| !kept)
                .map(|(child, _)| *child),
        );
        self.renumber_batches(&children);
        if let NodeKind::Group(group) = &mut self.nodes[id].kind {
            group.children = children;
        }
    }

    /// Instances of one service are consecutive siblings sharing a batch; every other
    /// child has one of its own (as `Tree::build` numbers them).
    fn renumber_batches(&mut self, children: &[NodeId]) {
        let mut batch = 0;
        let mut previous: Option<&str> = None;
        for child in children {
            let base = match self.nodes[*child].kind {
                NodeKind::Service(service) if self.services[service].spec.instance.is_some() => {
                    Some(self.services[service].spec.base_name.as_str())
                }
                _ => None,
            };
            if base.is_none() || base != previous {
                batch += 1;
            }
            previous = base;
            self.nodes[*child].batch = batch;
        }
    }

    /// A node only in the new tree, with everything under it: appended, to start in
    /// this reload's wave once its group is up and every sibling before it is ready.
    fn add_node(
        &mut self,
        spec: &NodeSpec,
        parent: NodeId,
        wave: Wave,
        change: &mut Change,
    ) -> NodeId {
        let mut tree = Tree {
            nodes: core::mem::replace(&mut self.nodes, Arena::new()),
            services: core::mem::replace(&mut self.services, Arena::new()),
        };
        let first_service = tree.services.len();
        let id = tree.add_child(spec, parent);
        self.nodes = tree.nodes;
        self.services = tree.services;
        for index in first_service..self.services.len() {
            let service = ServiceId(index);
            let name = self.services[service].spec.name.clone();
            self.by_name.insert(name, service);
            change.added.push(service);
        }
        // Like any node not started since its group came up, it waits for every
        // earlier sibling to be ready (a dependency listed before it, a oneshot that
        // has not finished): it starts in its place, as the file says.
        let node = &mut self.nodes[id];
        node.not_before = self.now;
        node.gate = StartGate {
            wave,
            order: StartOrder::AfterEveryEarlier,
        };
        self.dirty = true;
        id
    }

    /// A service in both trees takes its new spec; its running process follows it in
    /// place or, when named or when it cannot, is restarted.
    fn reload_service(
        &mut self,
        node: NodeId,
        spec: &ServiceSpec,
        wave: Wave,
        change: &mut Change,
    ) {
        let NodeKind::Service(id) = self.nodes[node].kind else {
            return;
        };
        let now = self.now;
        let service = &mut self.services[id];
        let child = service.child(id);
        let new_process = change.restart.contains(&spec.name.as_str())
            || needs_new_process(&service.spec, spec).is_some();
        service.spec = spec.clone();
        // Even a process about to be restarted follows the new spec until it stops:
        // the runtime's probe table is the new one, so an old probe id names nothing.
        if let Run::Running {
            since,
            readiness,
            checks,
            ..
        } = &mut service.run
        {
            let ready = matches!(readiness, Readiness::Ready { .. });
            let respec = checks.respec(spec, *since, ready, now);
            for (kind, run) in respec.cancel {
                self.out.push(Effect::CancelProbe { child, kind, run });
            }
            // One about to be replaced is not ready: its successor will say.
            if respec.now_ready && !new_process {
                self.mark_ready(id);
            }
        }
        // Only a process the tree wants up is restarted here. One already on its way
        // down (its restart set, its group, a failure) comes back with the new spec
        // anyway; a held, waiting or finished service, or one in backoff, starts
        // with it whenever it starts next.
        let live = matches!(
            self.services[id].run,
            Run::Running { .. }
                | Run::Starting {
                    then: AfterSpawn::Run
                }
        );
        if new_process && live && self.nodes[node].intent == Intent::Run && self.service_wanted(id)
        {
            let node = &mut self.nodes[node];
            node.intent = Intent::Restart;
            node.not_before = now;
            node.gate = StartGate { wave, ..node.gate };
            change.restarted.push(id);
            self.dirty = true;
        }
    }

    /// The nodes a reload removed, in the old start order: retired with everything
    /// under them and queued to stop. Returns their services, in the same order.
    fn retire(&mut self, removed: &[NodeId]) -> Vec<ServiceId> {
        let mut services = Vec::new();
        let mut next_batch = self
            .retiring
            .iter()
            .map(|node| self.nodes[*node].batch)
            .max()
            .unwrap_or(0);
        let mut previous = None;
        for node in removed.iter().copied() {
            // Removed instances of one service stay one batch, stopped together.
            let key = (self.nodes[node].parent, self.nodes[node].batch);
            if previous != Some(key) {
                next_batch += 1;
            }
            previous = Some(key);
            self.retire_subtree(node, &mut services);
            let entry = &mut self.nodes[node];
            entry.parent = None;
            entry.batch = next_batch;
            self.retiring.push(node);
        }
        services
    }

    fn retire_subtree(&mut self, id: NodeId, services: &mut Vec<ServiceId>) {
        self.nodes[id].retired = true;
        match &self.nodes[id].kind {
            NodeKind::Group(group) => {
                for child in group.children.clone() {
                    self.retire_subtree(child, services);
                }
            }
            NodeKind::Service(service) => {
                let service_id = *service;
                services.push(service_id);
                // A moved service's new self may already hold the name.
                let name = &self.services[service_id].spec.name;
                if self.by_name.get(name) == Some(&service_id) {
                    self.by_name.remove(name);
                }
                let service = &mut self.services[service_id];
                let child = service.child(service_id);
                // A removed service is only stopped: it is checked no more, and its
                // probe ids do not name anything in the runtime's new table. One
                // being spawned is stopped as soon as it has started (it never ran,
                // so nothing can depend on it), rather than getting checks.
                match &mut service.run {
                    Run::Running { checks, .. } => {
                        for (kind, run) in checks.drop_all() {
                            self.out.push(Effect::CancelProbe { child, kind, run });
                        }
                    }
                    Run::Starting { then } => *then = AfterSpawn::Stop,
                    Run::Idle | Run::Stopping { .. } | Run::Done { .. } => {}
                }
            }
        }
    }

    /// Stop the retiring nodes last first, as a group stops its children: the last
    /// batch with anything active gets its stop, the earlier ones wait for it. A
    /// retiring group that is already going down carries on stopping its own
    /// children. Nodes with nothing active left are forgotten; they never start again.
    pub(super) fn reconcile_retiring(&mut self) {
        if self.retiring.is_empty() {
            return;
        }
        let retiring = self.retiring.clone();
        for node in &retiring {
            if let NodeKind::Group(group) = &self.nodes[*node].kind
                && group.mode != GroupMode::Up
            {
                self.reconcile_node(*node);
            }
        }
        if let Some(batch) = retiring
            .iter()
            .rev()
            .find(|node| self.active(**node))
            .map(|node| self.nodes[*node].batch)
        {
            for node in &retiring {
                if self.nodes[*node].batch == batch {
                    self.stop_node(*node);
                }
            }
        }
        let still: Vec<NodeId> = retiring
            .into_iter()
            .filter(|node| self.active(*node))
            .collect();
        self.retiring = still;
    }

    /// Whether a node about to start has the name of a removed node that is still
    /// stopping: a service or group that moved to another group. The new one waits
    /// until the old one is down, so the two never run at once (they would share a
    /// port, a pid file, a lock).
    pub(super) fn replaces_retiring(&self, id: NodeId) -> bool {
        let name = &self.nodes[id].name;
        self.retiring
            .iter()
            .any(|node| self.active_named(*node, name))
    }

    fn active_named(&self, id: NodeId, name: &str) -> bool {
        if !self.active(id) {
            return false;
        }
        match &self.nodes[id].kind {
            NodeKind::Service(_) => self.nodes[id].name == name,
            NodeKind::Group(group) => {
                self.nodes[id].name == name
                    || group.children.iter().any(|c| self.active_named(*c, name))
            }
        }
    }

    /// Whether `id` names a node of the tree as it is now (not one a reload removed).
    pub(super) fn in_tree(&self, id: NodeId) -> bool {
        self.nodes.get(id).is_some_and(|node| !node.retired)
    }
}
