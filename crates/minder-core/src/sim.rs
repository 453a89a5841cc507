//! A simulated world for the core: a virtual clock and make-believe processes that
//! obey (or ignore) signals, driven by a small script, producing a transcript of
//! everything the supervisor asked for. For tests (the transcripts and the property
//! test in `tests/`); like the rest of the crate, nothing here touches the OS.
//!
//! Script lines (one per line, `#` starts a comment):
//! `exit NAME CODE` · `crash NAME SIGNAL` (killed from outside; both take more
//! `NAME CODE` pairs for processes that ended at the same instant, reaped in one sweep
//! and fed together) · `ready NAME` ·
//! `fail NAME health|watchdog|memory` · `advance DURATION` · `shutdown` ·
//! `stop NAME` · `start NAME` · `restart NAME` · `spawnfail NAME on|off` ·
//! `stubborn NAME` (ignores its stop signal) · `stale NAME CODE` (an exit report for
//! the previous generation) · `probe NAME ready|health pass|fail` and `memory NAME BYTES`
//! (answer the pending probe of that kind) · `ping NAME` (WATCHDOG=1) ·
//! `watchdog NAME DURATION` (WATCHDOG_USEC=) · `receive SIGNAL` (a signal to minder
//! itself) · `late NAME ready|health pass|fail` (a result of the probe of that kind
//! the core has cancelled) · `reload LABEL [NAME...]` (a reload to the tree given to
//! `Sim::define` under `LABEL`, restarting the services NAME... as the runtime would
//! for a change the core cannot see). A make-believe process ends on its stop signal
//! and on a forwarded TERM, INT or QUIT (unless stubborn), and ignores other
//! forwarded signals.

use crate::spec::Spec;
use crate::supervisor::{
    Check, ChildRef, Effect, EndKind, Event, ExitStatus, FailureReason, ProbeKind, ProbeOutcome,
    Report, ServiceId, Supervisor, Time,
};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::{format, string::String, string::ToString, vec::Vec};
use core::fmt::Write;
use core::time::Duration;

pub struct Sim {
    pub supervisor: Supervisor,
    pub now: Time,
    next_pid: i32,
    /// The live process of each service, if any: at most one, or it is a violation.
    live: BTreeMap<usize, (ChildRef, i32)>,
    spawn_fails: BTreeSet<String>,
    stubborn: BTreeSet<String>,
    pub transcript: String,
    pub exit_code: Option<i32>,
    /// Broken invariants seen so far; tests assert it stays empty.
    pub violations: Vec<String>,
    queue: VecDeque<Event>,
    /// Probes asked for and not answered yet, by service slot and kind.
    probes: BTreeMap<(usize, u8), (ChildRef, u64)>,
    /// When each ready or health probe in `probes` must have been answered or
    /// cancelled at the latest (its timeout plus grace from when it was asked for).
    probe_bounds: BTreeMap<(usize, u8), Time>,
    /// Probes the core has cancelled, by service slot and kind: `late` answers them.
    cancelled: BTreeMap<(usize, u8), (ChildRef, u64)>,
    /// Trees a script can `reload` to, by label.
    specs: BTreeMap<String, Spec>,
}

fn kind_key(kind: ProbeKind) -> u8 {
    match kind {
        ProbeKind::Ready => 0,
        ProbeKind::Health => 1,
        ProbeKind::Memory => 2,
    }
}

impl Sim {
    pub fn new(spec: &Spec) -> Sim {
        let mut sim = Sim {
            supervisor: Supervisor::new(spec, 7),
            now: Time::ZERO,
            next_pid: 100,
            live: BTreeMap::new(),
            spawn_fails: BTreeSet::new(),
            stubborn: BTreeSet::new(),
            transcript: String::new(),
            exit_code: None,
            violations: Vec::new(),
            queue: VecDeque::new(),
            probes: BTreeMap::new(),
            cancelled: BTreeMap::new(),
            probe_bounds: BTreeMap::new(),
            specs: BTreeMap::new(),
        };
        let effects = sim.supervisor.boot(sim.now);
        sim.apply(effects);
        sim.drain();
        sim
    }

    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.supervisor.service_by_name(name)
    }

    /// A tree that `reload LABEL` switches to.
    pub fn define(&mut self, label: &str, spec: Spec) {
        self.specs.insert(label.to_string(), spec);
    }

    fn name(&self, id: ServiceId) -> String {
        self.supervisor
            .service_name(id)
            .map_or_else(|| format!("#{}", id.0), str::to_string)
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The live process of the service called `name`, one a reload removed (and
    /// that is still stopping) included: it can end on its own meanwhile. A moved
    /// service's new process only starts once the old one is gone, so there is never
    /// more than one.
    fn live_of(&self, name: &str) -> Result<(ChildRef, i32), String> {
        self.live
            .values()
            .find(|(child, _)| self.supervisor.service_name(child.id) == Some(name))
            .copied()
            .ok_or_else(|| format!("{name} has no live process"))
    }

    /// Run one script line.
    pub fn step(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| {
            words
                .get(i)
                .copied()
                .ok_or_else(|| format!("`{line}`: missing argument"))
        };
        let number = |i: usize| -> Result<i32, String> {
            arg(i)?
                .parse()
                .map_err(|_| format!("`{line}`: not a number"))
        };
        match words.first().copied() {
            None => Ok(()),
            Some(kind @ ("exit" | "crash")) => {
                if words.len() < 3 || words.len().is_multiple_of(2) {
                    return Err(format!("`{line}`: expected NAME CODE pairs"));
                }
                // Look every process up first: all of them have ended before the
                // supervisor hears of any.
                let mut events = Vec::new();
                for pair in words[1..].chunks(2) {
                    let (child, _) = self.live_of(pair[0])?;
                    let value: i32 = pair[1]
                        .parse()
                        .map_err(|_| format!("`{line}`: not a number"))?;
                    let status = if kind == "exit" {
                        ExitStatus::Exited(value)
                    } else {
                        ExitStatus::Signaled(value)
                    };
                    events.push(Event::Exited { child, status });
                }
                for event in &events {
                    if let Event::Exited { child, .. } = event {
                        self.live.remove(&child.id.0);
                    }
                }
                let effects = self.supervisor.handle_all(events, self.now);
                self.apply(effects);
                self.drain();
                Ok(())
            }
            Some("stale") => {
                let id = self.service_id(arg(1)?).ok_or("no such service")?;
                let generation = self.supervisor.view(id).map_or(0, |v| v.generation);
                let child = ChildRef {
                    id,
                    generation: generation.saturating_sub(1),
                };
                let _ = writeln!(
                    self.transcript,
                    "{} (stale exit of {}#{})",
                    stamp(self.now),
                    self.name(id),
                    child.generation
                );
                self.feed(Event::Exited {
                    child,
                    status: ExitStatus::Exited(number(2)?),
                });
                Ok(())
            }
            Some("ready") => {
                let (child, _) = self.live_of(arg(1)?)?;
                self.feed(Event::Ready { child });
                Ok(())
            }
            Some("fail") => {
                let (child, _) = self.live_of(arg(1)?)?;
                let reason = match arg(2)? {
                    "health" => FailureReason::Health,
                    "watchdog" => FailureReason::Watchdog,
                    "memory" => FailureReason::Memory,
                    other => return Err(format!("unknown failure {other}")),
                };
                self.feed(Event::Failed { child, reason });
                Ok(())
            }
            Some("probe") => {
                let id = self.service_id(arg(1)?).ok_or("no such service")?;
                let (kind, outcome) = probe_answer(arg(2)?, arg(3)?)?;
                let (child, run) =
                    self.probes.remove(&(id.0, kind_key(kind))).ok_or_else(|| {
                        format!("no {kind:?} probe of {} pending", arg(1).unwrap_or(""))
                    })?;
                self.feed(Event::ProbeResult {
                    child,
                    kind,
                    run,
                    outcome,
                });
                Ok(())
            }
            Some("late") => {
                let id = self.service_id(arg(1)?).ok_or("no such service")?;
                let (kind, outcome) = probe_answer(arg(2)?, arg(3)?)?;
                let (child, run) = self
                    .cancelled
                    .remove(&(id.0, kind_key(kind)))
                    .ok_or("no cancelled probe of that kind")?;
                self.feed(Event::ProbeResult {
                    child,
                    kind,
                    run,
                    outcome,
                });
                Ok(())
            }
            Some("receive") => {
                self.feed(Event::Signal(number(1)?));
                Ok(())
            }
            Some("memory") => {
                let id = self.service_id(arg(1)?).ok_or("no such service")?;
                let bytes: u64 = arg(2)?.parse().map_err(|_| "not a number")?;
                let (child, run) = self
                    .probes
                    .remove(&(id.0, kind_key(ProbeKind::Memory)))
                    .ok_or("no memory probe pending")?;
                self.feed(Event::ProbeResult {
                    child,
                    kind: ProbeKind::Memory,
                    run,
                    outcome: ProbeOutcome::Memory(bytes),
                });
                Ok(())
            }
            Some("ping") => {
                let (child, _) = self.live_of(arg(1)?)?;
                self.feed(Event::WatchdogPing { child });
                Ok(())
            }
            Some("watchdog") => {
                let (child, _) = self.live_of(arg(1)?)?;
                let timeout = parse_duration(arg(2)?)?;
                self.feed(Event::WatchdogTimeout { child, timeout });
                Ok(())
            }
            Some("advance") => {
                let by = parse_duration(arg(1)?)?;
                self.advance(by);
                Ok(())
            }
            Some("shutdown") => {
                let _ = writeln!(self.transcript, "{} > shutdown", stamp(self.now));
                self.feed(Event::Shutdown);
                Ok(())
            }
            Some(verb @ ("stop" | "start" | "restart")) => {
                let nodes = self.supervisor.lookup(arg(1)?);
                if nodes.is_empty() {
                    return Err(format!("no node {}", arg(1)?));
                }
                let _ = writeln!(self.transcript, "{} > {verb} {}", stamp(self.now), arg(1)?);
                for node in nodes {
                    self.feed(match verb {
                        "stop" => Event::Stop(node),
                        "start" => Event::Start(node),
                        _ => Event::Restart(node),
                    });
                }
                Ok(())
            }
            Some("spawnfail") => {
                let name = arg(1)?.to_string();
                if arg(2)? == "on" {
                    self.spawn_fails.insert(name);
                } else {
                    self.spawn_fails.remove(&name);
                }
                Ok(())
            }
            Some("reload") => {
                let label = arg(1)?;
                let spec = self
                    .specs
                    .get(label)
                    .cloned()
                    .ok_or_else(|| format!("no tree defined as {label}"))?;
                let restart = &words[2..];
                let _ = writeln!(
                    self.transcript,
                    "{} > reload {}",
                    stamp(self.now),
                    words[1..].join(" ")
                );
                let effects = self.supervisor.reload(&spec, restart, self.now);
                self.apply(effects);
                self.drain();
                Ok(())
            }
            Some("stubborn") => {
                self.stubborn.insert(arg(1)?.to_string());
                Ok(())
            }
            Some(other) => Err(format!("unknown script command `{other}`")),
        }
    }

    /// Move the clock forward by `by`, stopping at every deadline on the way.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.supervisor.next_deadline() {
            if deadline > target || self.exit_code.is_some() {
                break;
            }
            if deadline < self.now {
                self.violations.push(format!(
                    "deadline {deadline:?} in the past at {:?}",
                    self.now
                ));
                break;
            }
            self.now = deadline;
            self.feed(Event::Timer);
        }
        self.now = target;
        self.check_probe_bounds();
    }

    /// Hand an event to the supervisor, then carry out effects until quiet.
    pub fn feed(&mut self, event: Event) {
        self.queue.push_back(event);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(event) = self.queue.pop_front() {
            let effects = self.supervisor.handle(event, self.now);
            self.apply(effects);
        }
        self.check_budgets();
        self.check_names();
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        let now = stamp(self.now);
        for effect in effects {
            match effect {
                Effect::Spawn { child } => {
                    let name = self.name(child.id);
                    if self.exit_code.is_some() {
                        self.violations.push(format!("spawn of {name} after exit"));
                    }
                    if self.supervisor.is_retired(child.id) {
                        self.violations
                            .push(format!("spawn of {name}, which a reload removed"));
                    }
                    if !self.supervisor.service_wanted(child.id) {
                        self.violations.push(format!(
                            "spawn of {name} while shutting down, held, or under a group going down"
                        ));
                    }
                    if let Some((old, _)) = self.live.get(&child.id.0) {
                        self.violations.push(format!(
                            "{name}#{} spawned while #{} is alive",
                            child.generation, old.generation
                        ));
                    }
                    if self.spawn_fails.contains(&name) {
                        let _ = writeln!(
                            self.transcript,
                            "{now} spawn {name}#{} failed",
                            child.generation
                        );
                        self.queue.push_back(Event::SpawnFailed {
                            child,
                            code: 127,
                            reason: "no such file".into(),
                        });
                    } else {
                        let pid = self.next_pid;
                        self.next_pid += 1;
                        let _ = writeln!(
                            self.transcript,
                            "{now} spawn {name}#{} pid {pid}",
                            child.generation
                        );
                        self.live.insert(child.id.0, (child, pid));
                        self.queue.push_back(Event::Spawned { child, pid });
                    }
                }
                Effect::Signal { child, pid, signal } => {
                    let name = self.name(child.id);
                    let _ = writeln!(
                        self.transcript,
                        "{now} signal {name}#{} pid {pid} sig {signal}",
                        child.generation
                    );
                    self.check_pid(child, pid);
                    if !self.stubborn.contains(&name)
                        && self.live.get(&child.id.0).is_some_and(|(c, _)| *c == child)
                    {
                        self.live.remove(&child.id.0);
                        self.queue.push_back(Event::Exited {
                            child,
                            status: ExitStatus::Signaled(signal),
                        });
                    }
                }
                Effect::Forward {
                    child,
                    pid,
                    signal,
                    and_continue,
                } => {
                    let name = self.name(child.id);
                    let _ = writeln!(
                        self.transcript,
                        "{now} forward {name}#{} pid {pid} sig {signal}{}",
                        child.generation,
                        if and_continue { " +cont" } else { "" }
                    );
                    self.check_pid(child, pid);
                    if and_continue
                        && !self.stubborn.contains(&name)
                        && self.live.get(&child.id.0).is_some_and(|(c, _)| *c == child)
                    {
                        self.live.remove(&child.id.0);
                        self.queue.push_back(Event::Exited {
                            child,
                            status: ExitStatus::Signaled(signal),
                        });
                    }
                }
                Effect::CancelProbe { child, kind, run } => {
                    let name = self.name(child.id);
                    let _ = writeln!(
                        self.transcript,
                        "{now} cancel {name}#{} {}",
                        child.generation,
                        format!("{kind:?}").to_lowercase()
                    );
                    let key = (child.id.0, kind_key(kind));
                    if self.probes.get(&key) == Some(&(child, run)) {
                        self.probes.remove(&key);
                        self.cancelled.insert(key, (child, run));
                    } else {
                        self.violations.push(format!(
                            "cancel of a {kind:?} probe of {name} not in flight"
                        ));
                    }
                }
                Effect::Announce(announcement) => {
                    let _ = writeln!(self.transcript, "{now} announce {announcement:?}");
                }
                Effect::Kill { child, pid } => {
                    let name = self.name(child.id);
                    let _ = writeln!(
                        self.transcript,
                        "{now} kill {name}#{} pid {pid}",
                        child.generation
                    );
                    self.check_pid(child, pid);
                    if self.live.get(&child.id.0).is_some_and(|(c, _)| *c == child) {
                        self.live.remove(&child.id.0);
                        self.queue.push_back(Event::Exited {
                            child,
                            status: ExitStatus::Signaled(9),
                        });
                    }
                }
                Effect::Probe {
                    child, check, run, ..
                } => {
                    let kind = check.kind();
                    if let Check::Ready(probe) | Check::Health(probe) = check {
                        self.probe_bounds.insert(
                            (child.id.0, kind_key(kind)),
                            self.now + probe.timeout + probe.grace,
                        );
                    }
                    let name = self.name(child.id);
                    let _ = writeln!(
                        self.transcript,
                        "{now} probe {name}#{} {}",
                        child.generation,
                        format!("{kind:?}").to_lowercase()
                    );
                    // A probe of an older generation may still be out; it is stale.
                    let previous = self
                        .probes
                        .insert((child.id.0, kind_key(kind)), (child, run));
                    if previous.is_some_and(|(old, _)| old.generation == child.generation) {
                        self.violations
                            .push(format!("two {kind:?} probes of {name} in flight"));
                    }
                }
                Effect::Exit { code } => {
                    let _ = writeln!(self.transcript, "{now} exit {code}");
                    if self.exit_code.is_some() {
                        self.violations.push("exit emitted twice".into());
                    }
                    self.exit_code = Some(code);
                    // The core exits once everything it started has ended, or after
                    // killing what was left: a process still alive here is one it lost
                    // track of (say, one a reload removed).
                    if !self.live.is_empty() {
                        let names: Vec<String> = self
                            .live
                            .keys()
                            .map(|id| self.name(ServiceId(*id)))
                            .collect();
                        self.violations
                            .push(format!("exit with live processes: {}", names.join(" ")));
                    }
                    // What the runtime does on exit: kill whatever is left.
                    self.live.clear();
                }
                Effect::Report(report) => self.report(report),
            }
        }
    }

    fn check_pid(&mut self, child: ChildRef, pid: i32) {
        if !self
            .live
            .get(&child.id.0)
            .is_some_and(|(c, p)| *c == child && *p == pid)
        {
            self.violations.push(format!(
                "signal for {}#{} pid {pid}, which is not alive",
                self.name(child.id),
                child.generation
            ));
        }
    }

    fn report(&mut self, report: Report) {
        let now = stamp(self.now);
        let line = match report {
            Report::Started { .. } | Report::Ready { .. } => return,
            Report::StartFailed { .. } => return,
            Report::Exited { child, status, end } => {
                let how = match status {
                    ExitStatus::Exited(code) => format!("exit {code}"),
                    ExitStatus::Signaled(signal) => format!("signal {signal}"),
                };
                let end = match end {
                    EndKind::Stopped => "stopped".to_string(),
                    EndKind::Normal => "normal".to_string(),
                    EndKind::Abnormal => "abnormal".to_string(),
                    EndKind::Failure(reason) => format!("failure ({reason})"),
                    EndKind::StartFailure => "start failure".to_string(),
                };
                format!(
                    "{}#{} ended: {how}, {end}",
                    self.name(child.id),
                    child.generation
                )
            }
            Report::RestartScheduled { id, delay } => {
                if self.supervisor.is_retired(id) {
                    self.violations.push(format!(
                        "restart of {}, which a reload removed",
                        self.name(id)
                    ));
                }
                format!("restart {} after {}ms", self.name(id), delay.as_millis())
            }
            Report::Escalated {
                group,
                restarts,
                intensity,
                period,
            } => {
                format!(
                    "group {} gave up: {restarts} restarts in {}ms > intensity {intensity}",
                    self.supervisor.group_name(group),
                    period.as_millis()
                )
            }
            Report::GroupRestarting { group, parent } => format!(
                "{} restarts group {}",
                self.supervisor.group_name(parent),
                self.supervisor.group_name(group)
            ),
            Report::GroupShuttingDown { group, trigger } => format!(
                "group {} shuts itself down: significant {} ended",
                self.supervisor.group_name(group),
                self.supervisor.node_name(trigger)
            ),
            Report::GroupDone {
                group,
                end,
                restart,
            } => format!(
                "group {} ended ({end:?}), stays down ({restart:?})",
                self.supervisor.group_name(group)
            ),
            Report::StopTimedOut { child } => {
                format!(
                    "{}#{} did not stop in time",
                    self.name(child.id),
                    child.generation
                )
            }
            Report::ShuttingDown { cause } => format!("shutting down: {cause:?}"),
            Report::ForwardTimedOut { child } => format!(
                "{}#{} did not end after the forwarded signal",
                self.name(child.id),
                child.generation
            ),
            Report::Signal { signal } => format!("received signal {signal}"),
            Report::Draining { until } => format!("draining until {}ms", until.0.as_millis()),
            Report::StillStopping { waiting } => {
                let list: Vec<String> = waiting
                    .iter()
                    .map(|service| {
                        let kill = service.kill_at.map_or_else(
                            || "killed".to_string(),
                            |at| format!("kill at {}ms", at.0.as_millis()),
                        );
                        format!(
                            "{} {}ms, {kill}",
                            self.name(service.id),
                            service.stopping_for.as_millis()
                        )
                    })
                    .collect();
                format!("still stopping: {}", list.join("; "))
            }
            Report::SlowStops { stops } => {
                let list: Vec<String> = stops
                    .iter()
                    .map(|stop| {
                        format!(
                            "{} {}ms{}",
                            self.name(stop.id),
                            stop.took.as_millis(),
                            if stop.killed { " killed" } else { "" }
                        )
                    })
                    .collect();
                format!("slow stops: {}", list.join("; "))
            }
            Report::HealthFailed {
                child,
                kind,
                reason,
                consecutive,
            } => format!(
                "{}#{} {} check failed ({reason}), {consecutive} counted",
                self.name(child.id),
                child.generation,
                format!("{kind:?}").to_lowercase()
            ),
            Report::Condemned { child, reason } => format!(
                "{}#{} condemned: {}",
                self.name(child.id),
                child.generation,
                reason
            ),
            Report::Reloaded {
                added,
                removed,
                restarted,
                updated_groups,
            } => {
                let names = |ids: &[ServiceId]| {
                    ids.iter()
                        .map(|id| format!("{}(#{})", self.name(*id), id.0))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let groups = updated_groups
                    .iter()
                    .map(|group| self.supervisor.group_name(*group))
                    .collect::<Vec<_>>()
                    .join(" ");
                format!(
                    "reloaded: added [{}] removed [{}] restarted [{}] groups updated [{groups}]",
                    names(&added),
                    names(&removed),
                    names(&restarted)
                )
            }
            Report::ReloadRefused => "reload refused: shutting down".to_string(),
            // Only a bug in the core leaves a reconciliation unsettled.
            Report::Unsettled { passes } => {
                self.violations
                    .push(format!("reconciliation unsettled after {passes} passes"));
                format!("unsettled after {passes} passes")
            }
        };
        let _ = writeln!(self.transcript, "{now} {line}");
    }

    /// One deadline is enough: a ready or health probe of a running incarnation that
    /// never answers is cancelled by its timeout (plus grace), with no timer but
    /// `next_deadline`.
    fn check_probe_bounds(&mut self) {
        let mut late = Vec::new();
        for (key, (child, _)) in &self.probes {
            let Some(bound) = self.probe_bounds.get(key) else {
                continue;
            };
            let current = self.supervisor.view(child.id).is_some_and(|view| {
                view.generation == child.generation && matches!(view.state, "started" | "running")
            });
            if current && *bound < self.now {
                late.push(format!(
                    "a probe of {}#{} outlived its timeout",
                    self.name(child.id),
                    child.generation
                ));
            }
        }
        self.violations.extend(late);
    }

    /// The budget never holds more than `intensity` decisions unless the group is
    /// failing (it escalated) or the tree is shutting down.
    fn check_budgets(&mut self) {
        for (node, name, intensity) in self.supervisor.groups() {
            let count = self.supervisor.restarts_in_period(node).unwrap_or(0);
            if count > intensity as usize && !self.supervisor.group_escalated(node) {
                self.violations.push(format!(
                    "group {name} holds {count} restarts > {intensity} without escalating"
                ));
            }
        }
    }

    /// Every service of the tree is found by its name, and nothing else is: a reload
    /// keeps the supervisor's name index in step with the tree.
    fn check_names(&mut self) {
        let tree: Vec<(ServiceId, String)> = self
            .supervisor
            .services()
            .map(|(id, name)| (id, name.to_string()))
            .collect();
        for (id, name) in &tree {
            if self.supervisor.service_by_name(name) != Some(*id) {
                self.violations
                    .push(format!("{name} (#{}) is not found by its name", id.0));
            }
        }
        if self.supervisor.service_count() != tree.len() {
            self.violations.push(format!(
                "{} services by name, {} in the tree",
                self.supervisor.service_count(),
                tree.len()
            ));
        }
    }

    /// Run a whole script; the first bad line is an error naming it.
    pub fn run_script(&mut self, script: &str) -> Result<(), String> {
        for line in script.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            self.step(line)
                .map_err(|e| format!("script line `{line}`: {e}"))?;
        }
        Ok(())
    }
}

/// A script's duration: a whole number and one unit, `ms`, `s`, `m` or `h` (`250ms`,
/// `2s`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}`: a duration needs a unit"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: not a duration"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("`{text}`: unknown unit `{unit}`")),
    };
    Ok(Duration::from_millis(number.saturating_mul(unit_ms)))
}

fn stamp(time: Time) -> String {
    format!("[{:>6}ms]", time.0.as_millis())
}

/// The kind and outcome of a scripted probe answer: `ready|health` and `pass` (anything
/// else fails, as "refused").
fn probe_answer(kind: &str, outcome: &str) -> Result<(ProbeKind, ProbeOutcome), String> {
    let kind = match kind {
        "ready" => ProbeKind::Ready,
        "health" => ProbeKind::Health,
        other => return Err(format!("unknown probe kind {other}")),
    };
    let outcome = match outcome {
        "pass" => ProbeOutcome::Passed,
        _ => ProbeOutcome::Failed("refused".into()),
    };
    Ok((kind, outcome))
}
