//! The supervisor's data: the arenas of nodes and services, and the states they move
//! through, each carrying the data that state needs.
//!
//! Types and their construction from a spec only; the transitions live in the sibling
//! modules (`machine`, `checks`, `restarts`, `reconcile`, `reload`). Ids index the
//! arenas and are never reused: a reload appends new entries and retires removed ones
//! in place, so an id held by a stale event (or by the runtime) can never name a
//! newcomer.
//! Ids from outside go through `Arena::get`; ids the core holds itself index directly.

use super::checks::Checks;
use super::view::ProbeRecord;
use super::{ChildRef, EndKind, ExitStatus, FailureReason, NodeId, ServiceId, Time};
use crate::spec::{AutoShutdown, GroupSpec, NodeSpec, RestartType, ServiceSpec, Strategy};
use alloc::collections::VecDeque;
use alloc::{string::String, string::ToString, vec::Vec};
use core::marker::PhantomData;
use core::time::Duration;

/// The root group is always node 0.
pub(super) const ROOT: NodeId = NodeId(0);

/// An id that indexes an `Arena`.
pub(super) trait ArenaId: Copy {
    fn index(self) -> usize;
    fn from_index(index: usize) -> Self;
}

impl ArenaId for NodeId {
    fn index(self) -> usize {
        self.0
    }
    fn from_index(index: usize) -> Self {
        NodeId(index)
    }
}

impl ArenaId for ServiceId {
    fn index(self) -> usize {
        self.0
    }
    fn from_index(index: usize) -> Self {
        ServiceId(index)
    }
}

/// Entries addressed by ids of one kind, handed out in insertion order.
pub(super) struct Arena<I, T> {
    entries: Vec<T>,
    id: PhantomData<I>,
}

impl<I: ArenaId, T> Arena<I, T> {
    pub(super) fn new() -> Self {
        Arena {
            entries: Vec::new(),
            id: PhantomData,
        }
    }

    pub(super) fn push(&mut self, entry: T) -> I {
        self.entries.push(entry);
        I::from_index(self.entries.len() - 1)
    }

    /// The next id `push` will hand out.
    fn next_id(&self) -> I {
        I::from_index(self.entries.len())
    }

    /// An id from outside the core: it may name nothing.
    pub(super) fn get(&self, id: I) -> Option<&T> {
        self.entries.get(id.index())
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = I> + use<I, T> {
        (0..self.entries.len()).map(I::from_index)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (I, &T)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(index, entry)| (I::from_index(index), entry))
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl<I: ArenaId, T> core::ops::Index<I> for Arena<I, T> {
    type Output = T;
    fn index(&self, id: I) -> &T {
        &self.entries[id.index()]
    }
}

impl<I: ArenaId, T> core::ops::IndexMut<I> for Arena<I, T> {
    fn index_mut(&mut self, id: I) -> &mut T {
        &mut self.entries[id.index()]
    }
}

pub(super) struct Node {
    pub(super) name: String,
    pub(super) parent: Option<NodeId>,
    pub(super) kind: NodeKind,
    pub(super) intent: Intent,
    /// Not to be started before this time (the failed child's backoff delay).
    pub(super) not_before: Time,
    /// Instances of one service share a batch: started together, stopped together.
    pub(super) batch: usize,
    pub(super) gate: StartGate,
    /// A reload removed it (or a group above it): it is stopped, never started
    /// again, and no longer part of the tree (see `reload`).
    pub(super) retired: bool,
}

pub(super) enum NodeKind {
    Service(ServiceId),
    Group(Group),
}

/// What minder wants of a node, beyond what its group's mode says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Intent {
    /// Keep it up while its group is up.
    Run,
    /// An operator stopped it: it stays down, and counts as ready for ordering.
    Held,
    /// A member of a restart set that must go down before the set starts again.
    Restart,
}

/// A start wave: every child of a group starting fresh shares one, and each restart
/// decision (or operator start) gives the nodes it starts a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Wave(pub(super) u64);

/// How a node waits for its earlier siblings before it may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StartGate {
    pub(super) wave: Wave,
    pub(super) order: StartOrder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StartOrder {
    /// Not started since its group (re)started: it waits until every earlier sibling
    /// is ready, whatever their wave (the group's ordered start).
    AfterEveryEarlier,
    /// It waits only for the earlier siblings of its own wave, so a restart set comes
    /// up in order while an unrelated sibling's crash loop holds nobody up.
    AfterEarlierInWave,
}

pub(super) struct Group {
    pub(super) strategy: Strategy,
    pub(super) intensity: u32,
    pub(super) period: Duration,
    pub(super) children: Vec<NodeId>,
    pub(super) mode: GroupMode,
    /// Times of the restart decisions inside the current window.
    pub(super) restarts: VecDeque<Time>,
    /// When it shuts itself down after its significant children end.
    pub(super) auto_shutdown: AutoShutdown,
    /// What its parent does once it has ended (as for a service).
    pub(super) restart: RestartType,
    /// Its end for good can shut its parent down.
    pub(super) significant: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum GroupMode {
    /// Its children are wanted up (unless held or being restarted).
    Up,
    /// Its children go down, last batch first.
    Down,
    /// Its budget was exceeded: its children go down, then it fails upwards.
    Failing,
    /// Its `auto_shutdown` fired: its children go down, then it ends normally and its
    /// parent decides by its restart type. `code` is the shell code of the end that
    /// fired it, handed on should the parent shut down in turn.
    Ending { code: i32 },
    /// Ended for good (its restart type does not restart it): not started again
    /// except by a fresh start of its parent, a restart set (unless temporary) or an
    /// operator; counts as ready for ordering.
    Done,
}

/// One service instance: its spec (the core's part of it) and its life so far.
pub(super) struct Service {
    pub(super) spec: ServiceSpec,
    pub(super) node: NodeId,
    /// Grows on every spawn; names the current incarnation. 0 before the first.
    pub(super) generation: u64,
    pub(super) run: Run,
    /// Consecutive unplanned ends that led to a restart: backoff's `n`.
    pub(super) backoff_count: u32,
    /// Becomes `Done` instead of idle when its current stop completes (a temporary
    /// service stopped by a sibling's restart is not restarted, as in OTP).
    pub(super) retire_after_stop: bool,
    pub(super) last_status: Option<ExitStatus>,
    pub(super) last_ready_probe: Option<ProbeRecord>,
    pub(super) last_health_probe: Option<ProbeRecord>,
    /// Why the service was last restarted after an unplanned end.
    pub(super) last_restart_reason: Option<EndKind>,
}

impl Service {
    /// The current incarnation.
    pub(super) fn child(&self, id: ServiceId) -> ChildRef {
        ChildRef {
            id,
            generation: self.generation,
        }
    }
}

/// A service's life cycle. The data each state needs travels with it.
// There is one `Run` per service, mostly `Running`: boxing the checks would only add
// an allocation per spawn.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Run {
    /// Not running; started by reconciliation once wanted and allowed.
    Idle,
    /// `Effect::Spawn` was emitted; waiting for `Spawned`/`SpawnFailed`.
    Starting { then: AfterSpawn },
    Running {
        pid: i32,
        since: Time,
        readiness: Readiness,
        /// The current incarnation's checks; they exist only while it runs.
        checks: Checks,
        /// Container mode: when it is killed for not ending after a forwarded TERM,
        /// INT or QUIT (the first one plus its `stop_timeout`).
        forward_kill: Option<Time>,
    },
    Stopping {
        pid: i32,
        /// When its stop signal was sent: how long a shutdown has waited for it.
        since: Time,
        cause: StopCause,
        kill: KillTimer,
    },
    /// Ended for good: a temporary service that ended, a finished oneshot, a transient
    /// service that exited normally. Counts as ready; started again only by an
    /// operator, a restart set holding a oneshot, or a fresh start of its group.
    Done { code: i32 },
}

/// What happens once a pending spawn is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AfterSpawn {
    Run,
    /// A stop was asked for meanwhile: the new process gets its stop signal at once.
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Readiness {
    Waiting,
    /// Ready, and passing its checks since `healthy_since`: set at ready, moved forward
    /// by every failed health check. A run counts as stable for backoff
    /// (`reset_after`) from there, never from the spawn.
    Ready {
        healthy_since: Time,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KillTimer {
    /// SIGKILL to the process group at this time if it has not ended by then.
    At(Time),
    /// SIGKILL was sent; only its exit is awaited now.
    Sent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StopCause {
    /// minder stopped it: never a failure.
    Planned,
    /// minder ended it for a failure.
    Failure(FailureReason),
}

/// The tree's nodes and services, built from a spec.
pub(super) struct Tree {
    pub(super) nodes: Arena<NodeId, Node>,
    pub(super) services: Arena<ServiceId, Service>,
}

impl Tree {
    /// The whole tree of `root`: node ids depth first from the root (0), service ids
    /// depth first from 0. Every group starts down and every service idle.
    pub(super) fn build(root: &GroupSpec) -> Tree {
        let mut tree = Tree {
            nodes: Arena::new(),
            services: Arena::new(),
        };
        tree.add_group(root, None);
        tree
    }

    fn add_node(&mut self, name: &str, parent: Option<NodeId>, kind: NodeKind) -> NodeId {
        self.nodes.push(Node {
            name: name.to_string(),
            parent,
            kind,
            intent: Intent::Run,
            not_before: Time::ZERO,
            batch: 0,
            gate: StartGate {
                wave: Wave(0),
                order: StartOrder::AfterEveryEarlier,
            },
            retired: false,
        })
    }

    /// A service or group of a reloaded spec, with everything under it, appended to
    /// the arenas under `parent`.
    pub(super) fn add_child(&mut self, spec: &NodeSpec, parent: NodeId) -> NodeId {
        match spec {
            NodeSpec::Service(service) => self.add_service(service, parent),
            NodeSpec::Group(group) => self.add_group(group, Some(parent)),
        }
    }

    fn add_group(&mut self, spec: &GroupSpec, parent: Option<NodeId>) -> NodeId {
        let id = self.add_node(
            &spec.name,
            parent,
            NodeKind::Group(Group {
                strategy: spec.strategy,
                intensity: spec.intensity,
                period: spec.period,
                children: Vec::new(),
                mode: GroupMode::Down,
                restarts: VecDeque::new(),
                auto_shutdown: spec.auto_shutdown,
                restart: spec.restart,
                significant: spec.significant,
            }),
        );
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
            self.nodes[child_id].batch = batch;
            children.push(child_id);
        }
        if let NodeKind::Group(group) = &mut self.nodes[id].kind {
            group.children = children;
        }
        id
    }

    fn add_service(&mut self, spec: &ServiceSpec, parent: NodeId) -> NodeId {
        let node = self.nodes.next_id();
        let service = self.services.push(Service {
            spec: spec.clone(),
            node,
            generation: 0,
            run: Run::Idle,
            backoff_count: 0,
            retire_after_stop: false,
            last_status: None,
            last_ready_probe: None,
            last_health_probe: None,
            last_restart_reason: None,
        });
        self.add_node(&spec.name, Some(parent), NodeKind::Service(service))
    }
}
