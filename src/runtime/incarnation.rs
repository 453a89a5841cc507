//! One record per running process: everything the loop holds for one incarnation of a
//! service, made at its spawn and gone at its reap, so that no teardown step can be
//! forgotten.
//!
//! A service's running process is its main pid (= its process group, and its session
//! in config mode), its `ChildRef`, the readers of its output pipes, the task watching
//! its ready fd, whom its notify messages are attributed to, and the probes in flight
//! for it: the pid of each exec probe, the task of each network probe, each with the
//! run of its check, so that `Effect::CancelProbe` finds what to kill or abort here. `Incarnations` holds these records by pid, with an index by service
//! (at most one process per service is alive, a property the core's tests check).
//! `insert` is called by the loop's spawn in the same turn as the `clone`, before the
//! next `reap` can return that pid; `end` is called by the loop's reaper with the
//! pid it collected. Ending a record drops it, and its `Drop` does the rest in that
//! same turn: SIGKILL to what is left of its process group (a forked worker must not
//! hold the next process's port), to the process group of every exec probe of it still
//! running (its result would be about a process that is gone; the one reaper collects
//! it later like any probe), the tasks of its network probes and the ready-fd watch
//! aborted. Its output readers are
//! not stopped: `end` hands them to the exit drain, so the last lines a dying process
//! wrote are still read and, at minder's exit, awaited (`logs::OutputHub::drain`).

use crate::logs::Attachment;
use crate::notify::NotifySlot;
use crate::process;
use crate::supervisor::{ChildRef, ProbeKind, ServiceId};
use std::collections::HashMap;
use tokio::task::AbortHandle;

/// The loop's record of one running process of a service. Made by the loop's spawn,
/// owned by `Incarnations`, dropped when the reaper collects its main process (or when
/// the loop itself goes).
#[derive(Debug)]
pub(super) struct Incarnation {
    /// Which generation of which service this is; set at spawn, never changes.
    pub child: ChildRef,
    /// The main process's pid, which is also its process group. Killed as a group on
    /// drop.
    pub pid: i32,
    /// The reader tasks of its stdout and stderr pipes (config mode), attached at
    /// spawn. Not stopped on drop: `Incarnations::end` moves them to the exit drain.
    output: Option<Attachment>,
    /// The task waiting for its ready-fd newline (`ready.fd`), started at spawn.
    /// Aborted on drop, which closes the pipe's read end.
    ready_fd: Option<AbortHandle>,
    /// For a service with a notify socket: its main pid and its last `STATUS=`, made at
    /// spawn. The loop judges every notify message of the service against it; once it
    /// is dropped, messages find no slot and are dropped too.
    pub notify: Option<NotifySlot>,
    /// The probes run for it and not known to be over. An exec probe is added when
    /// the loop spawns it and removed when the reaper collects it; every one left on
    /// drop is killed, and collected later by the reaper. A network probe's task is
    /// added when it starts and removed when its result arrives or it is cancelled;
    /// every one left on drop is aborted.
    probes: Vec<InFlight>,
}

/// One probe in flight for a process: which run of which check, and how to stop it.
#[derive(Debug)]
struct InFlight {
    kind: ProbeKind,
    run: u64,
    task: ProbeTask,
}

#[derive(Debug)]
enum ProbeTask {
    /// An exec probe's pid, which is also its process group.
    Exec(i32),
    /// A tcp or http probe's task on the loop's runtime.
    Network(AbortHandle),
}

impl Incarnation {
    /// The record of a process just spawned; the rest is added with the `with_*`
    /// methods in the same turn.
    pub fn new(child: ChildRef, pid: i32) -> Incarnation {
        Incarnation {
            child,
            pid,
            output: None,
            ready_fd: None,
            notify: None,
            probes: Vec::new(),
        }
    }

    pub fn with_output(mut self, output: Attachment) -> Incarnation {
        self.output = Some(output);
        self
    }

    pub fn with_ready_fd(mut self, watch: AbortHandle) -> Incarnation {
        self.ready_fd = Some(watch);
        self
    }

    pub fn with_notify(mut self, slot: NotifySlot) -> Incarnation {
        self.notify = Some(slot);
        self
    }

    /// The exec probe `pid` runs run `run` of this process's check of `kind` (spawned
    /// in this turn).
    pub fn add_exec_probe(&mut self, kind: ProbeKind, run: u64, pid: i32) {
        self.probes.push(InFlight {
            kind,
            run,
            task: ProbeTask::Exec(pid),
        });
    }

    /// The task `task` runs run `run` of this process's network check of `kind`.
    /// Handles of tasks that have ended are let go here, so the list stays as short as
    /// the probes really in flight even if a result never arrives.
    pub fn add_network_probe(&mut self, kind: ProbeKind, run: u64, task: AbortHandle) {
        self.probes.retain(|probe| match &probe.task {
            ProbeTask::Network(task) => !task.is_finished(),
            ProbeTask::Exec(_) => true,
        });
        self.probes.push(InFlight {
            kind,
            run,
            task: ProbeTask::Network(task),
        });
    }

    /// The result of run `run` of the network check of `kind` arrived: its task is
    /// over.
    pub fn network_probe_done(&mut self, kind: ProbeKind, run: u64) {
        self.probes.retain(|probe| {
            !(matches!(probe.task, ProbeTask::Network(_)) && (probe.kind, probe.run) == (kind, run))
        });
    }

    /// The core gave up on run `run` of the check of `kind` (`Effect::CancelProbe`):
    /// an exec probe's process group is killed, and its pid returned so the loop marks
    /// it as answering nothing; it stays listed until the reaper collects it. A network
    /// probe's task is aborted (it sends no result) and forgotten.
    pub fn cancel_probe(&mut self, kind: ProbeKind, run: u64) -> Vec<i32> {
        let mut killed = Vec::new();
        self.probes.retain(|probe| {
            if (probe.kind, probe.run) != (kind, run) {
                return true;
            }
            match &probe.task {
                ProbeTask::Exec(pid) => {
                    process::kill_group(*pid);
                    killed.push(*pid);
                    true
                }
                ProbeTask::Network(task) => {
                    task.abort();
                    false
                }
            }
        });
        killed
    }

    /// The exec probe `pid` has been reaped: it must not be killed any more (its pid
    /// may be reused).
    fn exec_probe_reaped(&mut self, pid: i32) -> bool {
        let before = self.probes.len();
        self.probes
            .retain(|probe| !matches!(probe.task, ProbeTask::Exec(probe) if probe == pid));
        self.probes.len() != before
    }
}

impl Drop for Incarnation {
    fn drop(&mut self) {
        // Whatever the main process left in its group goes with it, before any restart.
        process::kill_group(self.pid);
        for probe in &self.probes {
            match &probe.task {
                ProbeTask::Exec(pid) => process::kill_group(*pid),
                ProbeTask::Network(task) => task.abort(),
            }
        }
        if let Some(watch) = &self.ready_fd {
            watch.abort();
        }
    }
}

/// Every running process the loop started for a service, by pid, and the output
/// readers of ended ones still to be drained. Owned by the loop.
#[derive(Debug, Default)]
pub(super) struct Incarnations {
    by_pid: HashMap<i32, Incarnation>,
    /// The pid of each service's running process.
    by_service: HashMap<ServiceId, i32>,
    /// Output readers of ended incarnations, still reading what their pipes hold
    /// (grandchildren may keep them open); pruned as they finish, awaited at exit.
    retired: Vec<Attachment>,
}

impl Incarnations {
    /// Registers a process just spawned. Call it in the spawn's turn, before the next
    /// reap. A record already there for the same pid or service (only a bug could
    /// leave one) is ended first, so its cleanup still runs.
    pub fn insert(&mut self, incarnation: Incarnation) {
        self.retired.retain(|output| !output.is_finished());
        if let Some(old) = self.by_service.get(&incarnation.child.id).copied() {
            self.end(old);
        }
        self.end(incarnation.pid);
        self.by_service
            .insert(incarnation.child.id, incarnation.pid);
        self.by_pid.insert(incarnation.pid, incarnation);
    }

    /// The reaper collected `pid`. If it was a service's main process, its record goes
    /// (its `Drop` kills what is left of its group and of its exec probes' groups, and
    /// aborts its network probes and its ready-fd watch), its output readers go on to the exit drain, and its
    /// `ChildRef` is returned.
    pub fn end(&mut self, pid: i32) -> Option<ChildRef> {
        let mut incarnation = self.by_pid.remove(&pid)?;
        if self.by_service.get(&incarnation.child.id) == Some(&pid) {
            self.by_service.remove(&incarnation.child.id);
        }
        self.retired.extend(incarnation.output.take());
        Some(incarnation.child)
    }

    /// The reaper collected the exec probe `pid`, run for `child`: forget it. Whether
    /// `child` is still running (if not, the probe's result is stale).
    pub fn exec_probe_reaped(&mut self, child: ChildRef, pid: i32) -> bool {
        self.current_mut(child)
            .is_some_and(|incarnation| incarnation.exec_probe_reaped(pid))
    }

    /// The `ChildRef` whose main process is `pid`, if it runs.
    pub fn child(&self, pid: i32) -> Option<ChildRef> {
        self.by_pid.get(&pid).map(|incarnation| incarnation.child)
    }

    /// The record of `child`, if that very generation is the one running.
    pub fn current_mut(&mut self, child: ChildRef) -> Option<&mut Incarnation> {
        let pid = *self.by_service.get(&child.id)?;
        self.by_pid
            .get_mut(&pid)
            .filter(|incarnation| incarnation.child == child)
    }

    /// Whether `child` is the generation of its service that is running.
    pub fn is_current(&self, child: ChildRef) -> bool {
        self.by_service
            .get(&child.id)
            .and_then(|pid| self.by_pid.get(pid))
            .is_some_and(|incarnation| incarnation.child == child)
    }

    /// The running process of `service`, whatever its generation.
    pub fn of_service_mut(&mut self, service: ServiceId) -> Option<&mut Incarnation> {
        let pid = *self.by_service.get(&service)?;
        self.by_pid.get_mut(&pid)
    }

    /// The pids (= process groups) of every running main process.
    pub fn keys(&self) -> impl Iterator<Item = &i32> {
        self.by_pid.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Incarnation> {
        self.by_pid.values()
    }

    // Only the tests count records now (the status line reads the core's views).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    /// Ends every record (at the loop's end: each `Drop` kills its groups).
    pub fn clear(&mut self) {
        let pids: Vec<i32> = self.by_pid.keys().copied().collect();
        for pid in pids {
            self.end(pid);
        }
    }

    /// Every output reader still to be awaited at exit: those of ended processes and
    /// those of any process still registered (one the final cleanup could not reap).
    pub fn take_outputs(&mut self) -> Vec<Attachment> {
        let mut outputs = std::mem::take(&mut self.retired);
        for incarnation in self.by_pid.values_mut() {
            outputs.extend(incarnation.output.take());
        }
        outputs
    }
}

#[cfg(test)]
mod tests;
