//! Checks of a running incarnation: when each probe is due, what its result means, the
//! ready deadline, the watchdog and the memory guard.
//!
//! The core owns every schedule and threshold here; the runtime only runs what
//! `Effect::Probe` asks for and answers with one `ProbeResult`. A failure condemns the
//! service through `begin_stop`, so it ends as a failure with a reason and strategies
//! and budgets apply as to any other failure.
//!
//! A probe's timeout is the core's too: a ready or health probe in flight carries its
//! deadline, which `next_deadline` includes. Past it the probe counts as failed ("timed
//! out after T") and `Effect::CancelProbe` tells the runtime to stop it; a result that
//! still comes finds no probe of its kind in flight and is ignored.

use super::tree::{Readiness, Run, StopCause};
use super::view::ProbeRecord;
use super::{
    Check, ChildRef, Effect, FailureReason, ProbeKind, ProbeOutcome, Report, ServiceId, Supervisor,
    Time,
};
use crate::spec::{ReadyCheck, ServiceKind, ServiceSpec};
use alloc::{format, string::String, vec::Vec};
use core::time::Duration;

/// When a periodic check next runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    /// Not scheduled (a ready probe once the service is ready).
    Off,
    /// Asked for at this time.
    Due(Time),
    /// Asked for; its result has not come back. `due` is when it was due: the next one
    /// is due an interval after that, not after the result, so results that arrive
    /// together (one reap collects many exec probes) do not pull their next probes
    /// together. `deadline` is when it times out (`None` for a memory sample, which
    /// has no timeout: the sampler always answers). `run` is the number its result
    /// must carry.
    InFlight {
        due: Time,
        deadline: Option<Time>,
        run: u64,
    },
}

/// A check that runs every `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Periodic {
    pub(super) check: Check,
    pub(super) interval: Duration,
    pub(super) slot: Slot,
    /// Runs asked for so far: the next run's number.
    runs: u64,
}

impl Periodic {
    fn new(check: Check, interval: Duration, first: Time) -> Periodic {
        Periodic {
            check,
            interval,
            slot: Slot::Due(first),
            runs: 0,
        }
    }

    /// When this check next has work to do: its next run, or the timeout of the run
    /// in flight.
    fn wakes_at(&self) -> Option<Time> {
        match self.slot {
            Slot::Due(at) => Some(at),
            Slot::InFlight { deadline, .. } => deadline,
            Slot::Off => None,
        }
    }

    fn in_flight(&self, run: u64) -> bool {
        matches!(self.slot, Slot::InFlight { run: current, .. } if current == run)
    }

    /// The number and timeout of the run in flight, if its deadline has passed by
    /// `now`.
    fn timed_out(&self, now: Time) -> Option<(u64, Duration)> {
        match (self.slot, self.check) {
            (
                Slot::InFlight {
                    deadline: Some(at),
                    run,
                    ..
                },
                Check::Ready(probe) | Check::Health(probe),
            ) if at <= now => Some((run, probe.timeout)),
            _ => None,
        }
    }

    /// A result came back: the next run is due an interval after the last was due,
    /// or now if that has already passed (a slow probe).
    fn answered(&mut self, now: Time) {
        if let Slot::InFlight { due, .. } = self.slot {
            self.slot = Slot::Due((due + self.interval).max(now));
        }
    }
}

/// The health probe with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HealthProbe {
    pub(super) periodic: Periodic,
    /// Failures within this time after exec do not count.
    start_period: Duration,
    /// Consecutive counted failures that condemn the service.
    threshold: u32,
    /// Consecutive failures that counted so far.
    failures: u32,
}

/// The resident-memory guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MemoryGuard {
    pub(super) periodic: Periodic,
    limit: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Watchdog {
    /// Armed when a check confirms readiness, with this timeout if any.
    Unarmed(Option<Duration>),
    /// `WATCHDOG=1` must arrive by `expires`.
    Armed { timeout: Duration, expires: Time },
    /// Ready without a watchdog: nothing arms it any more.
    Off,
}

/// The checks of one running incarnation, built at its spawn.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Checks {
    /// The ready probe, if the service has one; off once it is ready.
    pub(super) ready: Option<Periodic>,
    /// Not ready by then: a failed start.
    ready_deadline: Option<Time>,
    pub(super) health: Option<HealthProbe>,
    pub(super) memory: Option<MemoryGuard>,
    watchdog: Watchdog,
}

impl Checks {
    /// The checks of a process that is only to be stopped.
    pub(super) fn none() -> Checks {
        Checks {
            ready: None,
            ready_deadline: None,
            health: None,
            memory: None,
            watchdog: Watchdog::Unarmed(None),
        }
    }

    /// The checks of an incarnation exec'd at `now`. A oneshot has no readiness to
    /// check (it is ready when it has finished); `start_period` runs from exec, so
    /// liveness checks do too, and the first readiness probe runs at once.
    pub(super) fn at_spawn(spec: &ServiceSpec, now: Time) -> Checks {
        let mut checks = Checks::none();
        if let (Some(ready), ServiceKind::Longrun(_)) = (&spec.ready, spec.kind) {
            checks.ready_deadline = Some(now + ready.deadline);
            if let ReadyCheck::Probe { probe, interval } = ready.check {
                checks.ready = Some(Periodic::new(Check::Ready(probe), interval, now));
            }
        }
        if let Some(health) = &spec.health {
            let first = now + health.interval;
            checks.health = health.probe.map(|probe| HealthProbe {
                periodic: Periodic::new(Check::Health(probe), health.interval, first),
                start_period: health.start_period,
                threshold: health.failures,
                failures: 0,
            });
            checks.memory = health.max_memory.map(|limit| MemoryGuard {
                periodic: Periodic::new(Check::Memory, health.interval, first),
                limit,
            });
        }
        checks.watchdog = Watchdog::Unarmed(spec.watchdog);
        checks
    }

    /// Every moment at which one of these checks has work to do.
    pub(super) fn deadlines(&self) -> impl Iterator<Item = Time> + use<> {
        let watchdog = match self.watchdog {
            Watchdog::Armed { expires, .. } => Some(expires),
            Watchdog::Unarmed(_) | Watchdog::Off => None,
        };
        [
            self.ready_deadline,
            self.ready.and_then(|p| p.wakes_at()),
            self.health.and_then(|h| h.periodic.wakes_at()),
            self.memory.and_then(|m| m.periodic.wakes_at()),
            watchdog,
        ]
        .into_iter()
        .flatten()
    }

    /// Readiness is confirmed: no more ready probes or deadline; the watchdog is armed.
    fn on_ready(&mut self, now: Time) {
        self.ready_deadline = None;
        if let Some(ready) = &mut self.ready {
            ready.slot = Slot::Off;
        }
        self.watchdog = match self.watchdog {
            Watchdog::Unarmed(Some(timeout)) => Watchdog::Armed {
                timeout,
                expires: now + timeout,
            },
            Watchdog::Unarmed(None) | Watchdog::Off => Watchdog::Off,
            armed @ Watchdog::Armed { .. } => armed,
        };
    }

    /// The probes due by `now`, marked in flight, with their run numbers.
    fn take_due(&mut self, now: Time) -> Vec<(Check, u64)> {
        let mut due = Vec::new();
        let periodics = [
            self.ready.as_mut(),
            self.health.as_mut().map(|h| &mut h.periodic),
            self.memory.as_mut().map(|m| &mut m.periodic),
        ];
        for periodic in periodics.into_iter().flatten() {
            if let Slot::Due(at) = periodic.slot
                && at <= now
            {
                let deadline = match periodic.check {
                    Check::Ready(probe) | Check::Health(probe) => {
                        Some(now + probe.timeout + probe.grace)
                    }
                    Check::Memory => None,
                };
                periodic.runs += 1;
                let run = periodic.runs;
                periodic.slot = Slot::InFlight {
                    due: at,
                    deadline,
                    run,
                };
                due.push((periodic.check, run));
            }
        }
        due
    }

    /// The ready and health probes in flight past their timeout: kind, run, timeout.
    fn timed_out(&self, now: Time) -> Vec<(ProbeKind, u64, Duration)> {
        let probes = [
            (ProbeKind::Ready, self.ready.as_ref()),
            (ProbeKind::Health, self.health.as_ref().map(|h| &h.periodic)),
        ];
        probes
            .into_iter()
            .filter_map(|(kind, periodic)| {
                let (run, timeout) = periodic?.timed_out(now)?;
                Some((kind, run, timeout))
            })
            .collect()
    }

    /// Whether run `run` of the probe of `kind` is in flight, i.e. whether that result
    /// is awaited.
    fn awaits(&self, kind: ProbeKind, run: u64) -> bool {
        let periodic = match kind {
            ProbeKind::Ready => self.ready.as_ref(),
            ProbeKind::Health => self.health.as_ref().map(|h| &h.periodic),
            ProbeKind::Memory => self.memory.as_ref().map(|m| &m.periodic),
        };
        periodic.is_some_and(|periodic| periodic.in_flight(run))
    }
}

/// What a reload asks of a running incarnation's checks (`Checks::respec`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Respec {
    /// Runs in flight of checks the new spec no longer has: to be cancelled.
    pub(super) cancel: Vec<(ProbeKind, u64)>,
    /// The new spec has no readiness check: the incarnation, still waiting, is ready.
    pub(super) now_ready: bool,
}

impl Periodic {
    /// A reload gave this check a new probe (a new `ProbeId`, timeout) and interval.
    /// A run in flight keeps its run number and deadline; a shorter interval takes
    /// effect at once, a longer one from the next run.
    fn respec(&mut self, check: Check, interval: Duration, now: Time) {
        self.check = check;
        self.interval = interval;
        if let Slot::Due(at) = self.slot {
            self.slot = Slot::Due(at.min(now + interval));
        }
    }

    /// The run in flight, if any, for a check that is being dropped.
    fn in_flight_run(&self) -> Option<u64> {
        match self.slot {
            Slot::InFlight { run, .. } => Some(run),
            Slot::Due(_) | Slot::Off => None,
        }
    }
}

impl Checks {
    /// A reload replaced the spec of the service this incarnation (exec'd at `since`,
    /// `ready` or not yet) belongs to: its checks follow the new spec in place, so
    /// probe ids, timings, thresholds and limits take effect without a new process.
    /// Counts (failures in a row) and schedules are kept. How readiness is reported and
    /// the watchdog are not changed here: the process learnt them at its start, so a
    /// change of either restarts it (`reload::needs_new_process`).
    pub(super) fn respec(
        &mut self,
        spec: &ServiceSpec,
        since: Time,
        ready: bool,
        now: Time,
    ) -> Respec {
        let mut out = Respec::default();
        if !ready {
            match (&spec.ready, spec.kind) {
                (Some(new), ServiceKind::Longrun(_)) => {
                    self.ready_deadline = Some(since + new.deadline);
                    match (new.check, &mut self.ready) {
                        (ReadyCheck::Probe { probe, interval }, Some(periodic)) => {
                            periodic.respec(Check::Ready(probe), interval, now);
                        }
                        (ReadyCheck::Probe { probe, interval }, None) => {
                            self.ready = Some(Periodic::new(Check::Ready(probe), interval, now));
                        }
                        (ReadyCheck::Reported, periodic) => {
                            if let Some(run) = periodic.take().and_then(|p| p.in_flight_run()) {
                                out.cancel.push((ProbeKind::Ready, run));
                            }
                        }
                    }
                }
                // No readiness check any more (or a oneshot, which is ready when it
                // has finished: a change of kind restarts the process anyway).
                _ => {
                    if let Some(run) = self.ready.take().and_then(|p| p.in_flight_run()) {
                        out.cancel.push((ProbeKind::Ready, run));
                    }
                    self.ready_deadline = None;
                    out.now_ready = spec.kind != ServiceKind::Oneshot;
                }
            }
        }
        let health = spec.health.as_ref();
        match (
            health.and_then(|h| h.probe.map(|probe| (h, probe))),
            &mut self.health,
        ) {
            (Some((new, probe)), Some(current)) => {
                current
                    .periodic
                    .respec(Check::Health(probe), new.interval, now);
                current.start_period = new.start_period;
                current.threshold = new.failures;
            }
            (Some((new, probe)), None) => {
                self.health = Some(HealthProbe {
                    periodic: Periodic::new(Check::Health(probe), new.interval, now + new.interval),
                    start_period: new.start_period,
                    threshold: new.failures,
                    failures: 0,
                });
            }
            (None, current) => {
                if let Some(run) = current.take().and_then(|h| h.periodic.in_flight_run()) {
                    out.cancel.push((ProbeKind::Health, run));
                }
            }
        }
        // A memory sample always answers and needs no cancelling: an answer for a
        // guard that is gone is simply ignored.
        match (
            health.and_then(|h| h.max_memory.map(|limit| (h, limit))),
            &mut self.memory,
        ) {
            (Some((new, limit)), Some(current)) => {
                current.periodic.respec(Check::Memory, new.interval, now);
                current.limit = limit;
            }
            (Some((new, limit)), None) => {
                self.memory = Some(MemoryGuard {
                    periodic: Periodic::new(Check::Memory, new.interval, now + new.interval),
                    limit,
                });
            }
            (None, current) => *current = None,
        }
        out
    }

    /// Every check dropped (the service was removed by a reload and only awaits its
    /// stop): the runs in flight to cancel. Its probes' ids no longer name anything
    /// in the runtime's new table, so none may run again.
    pub(super) fn drop_all(&mut self) -> Vec<(ProbeKind, u64)> {
        let mut cancel = Vec::new();
        if let Some(run) = self.ready.and_then(|p| p.in_flight_run()) {
            cancel.push((ProbeKind::Ready, run));
        }
        if let Some(run) = self.health.and_then(|h| h.periodic.in_flight_run()) {
            cancel.push((ProbeKind::Health, run));
        }
        *self = Checks::none();
        cancel
    }
}

impl Supervisor {
    /// The running incarnation `child` (if it is current and running), with its checks.
    fn running_checks(&mut self, child: ChildRef) -> Option<&mut Checks> {
        let id = self.current(child)?;
        match &mut self.services[id].run {
            Run::Running { checks, .. } => Some(checks),
            _ => None,
        }
    }

    /// Count the probes past their timeout as failed and cancel them; ask for the
    /// probes that are due; condemn a child past its ready deadline or its watchdog.
    pub(super) fn run_due_checks(&mut self, id: ServiceId) {
        let now = self.now;
        let service = &mut self.services[id];
        let child = service.child(id);
        let Run::Running { pid, checks, .. } = &mut service.run else {
            return;
        };
        let pid = *pid;
        if checks.ready_deadline.is_some_and(|at| at <= now) {
            self.begin_stop(id, StopCause::Failure(FailureReason::ReadyDeadline));
            return;
        }
        if let Watchdog::Armed { expires, .. } = checks.watchdog
            && expires <= now
        {
            self.begin_stop(id, StopCause::Failure(FailureReason::Watchdog));
            return;
        }
        for (kind, run, timeout) in checks.timed_out(now) {
            self.out.push(Effect::CancelProbe { child, kind, run });
            let reason = format!("timed out after {}", DurationText(timeout));
            self.on_probe_result(child, kind, run, ProbeOutcome::Failed(reason));
        }
        // A timeout may have condemned the service; if not, a probe may be due again.
        let Run::Running { checks, .. } = &mut self.services[id].run else {
            return;
        };
        for (check, run) in checks.take_due(now) {
            self.out.push(Effect::Probe {
                child,
                pid,
                check,
                run,
            });
        }
    }

    /// The readiness check passed: later siblings may start, the watchdog is armed.
    pub(super) fn mark_ready(&mut self, id: ServiceId) {
        let now = self.now;
        let service = &mut self.services[id];
        let child = service.child(id);
        if let Run::Running {
            readiness: readiness @ Readiness::Waiting,
            checks,
            ..
        } = &mut service.run
        {
            *readiness = Readiness::Ready { healthy_since: now };
            checks.on_ready(now);
            self.dirty = true;
            self.out.push(Effect::Report(Report::Ready { child }));
        }
    }

    pub(super) fn on_probe_result(
        &mut self,
        child: ChildRef,
        kind: ProbeKind,
        run: u64,
        outcome: ProbeOutcome,
    ) {
        let Some(id) = self.current(child) else {
            return;
        };
        let now = self.now;
        let service = &mut self.services[id];
        let Run::Running {
            since,
            readiness,
            checks,
            ..
        } = &mut service.run
        else {
            return;
        };
        // Only the run in flight is answered: a result of a run the core has already
        // counted as timed out (and cancelled), or of a ready probe after readiness,
        // is stale.
        if !checks.awaits(kind, run) {
            return;
        }
        let record = ProbeRecord {
            at: now,
            passed: !matches!(outcome, ProbeOutcome::Failed(_)),
            detail: match &outcome {
                ProbeOutcome::Failed(reason) => reason.clone(),
                ProbeOutcome::Passed | ProbeOutcome::Memory(_) => String::new(),
            },
        };
        match kind {
            ProbeKind::Ready => {
                let Some(ready) = &mut checks.ready else {
                    return;
                };
                service.last_ready_probe = Some(record);
                if matches!(readiness, Readiness::Ready { .. }) {
                    return;
                }
                match outcome {
                    ProbeOutcome::Passed => self.mark_ready(id),
                    ProbeOutcome::Failed(_) | ProbeOutcome::Memory(_) => ready.answered(now),
                }
            }
            ProbeKind::Health => {
                let Some(health) = &mut checks.health else {
                    return;
                };
                service.last_health_probe = Some(record);
                health.periodic.answered(now);
                let ProbeOutcome::Failed(reason) = outcome else {
                    health.failures = 0;
                    return;
                };
                if let Readiness::Ready { healthy_since } = readiness {
                    *healthy_since = now;
                }
                // Failures during the grace period after exec do not count.
                let counts = now.saturating_sub(*since) >= health.start_period;
                if counts {
                    health.failures += 1;
                }
                let consecutive = if counts { health.failures } else { 0 };
                let condemned = counts && consecutive >= health.threshold;
                self.out.push(Effect::Report(Report::HealthFailed {
                    child,
                    kind,
                    reason,
                    consecutive,
                }));
                if condemned {
                    self.begin_stop(id, StopCause::Failure(FailureReason::Health));
                }
            }
            ProbeKind::Memory => {
                let (Some(memory), ProbeOutcome::Memory(bytes)) = (&mut checks.memory, outcome)
                else {
                    return;
                };
                memory.periodic.answered(now);
                let limit = memory.limit;
                if bytes > limit {
                    let reason =
                        format!("resident memory {bytes} bytes exceeds max_memory {limit}");
                    service.last_health_probe = Some(ProbeRecord {
                        at: now,
                        passed: false,
                        detail: reason.clone(),
                    });
                    self.out.push(Effect::Report(Report::HealthFailed {
                        child,
                        kind,
                        reason,
                        consecutive: 1,
                    }));
                    self.begin_stop(id, StopCause::Failure(FailureReason::Memory));
                }
            }
        }
    }

    pub(super) fn on_watchdog_ping(&mut self, child: ChildRef) {
        let now = self.now;
        if let Some(checks) = self.running_checks(child)
            && let Watchdog::Armed { timeout, expires } = &mut checks.watchdog
        {
            *expires = now + *timeout;
        }
    }

    /// `WATCHDOG_USEC=`: the service asks for another timeout, in force from now if
    /// the watchdog is armed, else from when it is.
    pub(super) fn on_watchdog_timeout(&mut self, child: ChildRef, timeout: Duration) {
        if timeout.is_zero() {
            return;
        }
        let now = self.now;
        if let Some(checks) = self.running_checks(child) {
            checks.watchdog = match checks.watchdog {
                Watchdog::Unarmed(_) => Watchdog::Unarmed(Some(timeout)),
                Watchdog::Armed { .. } => Watchdog::Armed {
                    timeout,
                    expires: now + timeout,
                },
                Watchdog::Off => Watchdog::Off,
            };
        }
    }

    pub(super) fn on_failed(&mut self, child: ChildRef, reason: FailureReason) {
        if let Some(id) = self.current(child) {
            self.begin_stop(id, StopCause::Failure(reason));
        }
    }
}

/// A duration as minder's messages write it: `200ms`, `1s`, `1m 30s`, `2h 5m` (the
/// units a config file uses, largest first, zero parts left out).
struct DurationText(Duration);

impl core::fmt::Display for DurationText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let total = self.0;
        if total.is_zero() {
            return f.write_str("0s");
        }
        let secs = total.as_secs();
        let nanos = total.subsec_nanos();
        let parts = [
            (secs / 3600, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (u64::from(nanos / 1_000_000), "ms"),
            (u64::from(nanos / 1_000 % 1_000), "us"),
            (u64::from(nanos % 1_000), "ns"),
        ];
        let mut first = true;
        for (value, unit) in parts {
            if value == 0 {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{value}{unit}")?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::DurationText;
    use alloc::string::ToString;
    use core::time::Duration;

    #[test]
    fn durations_are_written_as_a_config_file_writes_them() {
        let text = |d: Duration| DurationText(d).to_string();
        assert_eq!(text(Duration::from_millis(200)), "200ms");
        assert_eq!(text(Duration::from_secs(1)), "1s");
        assert_eq!(text(Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(text(Duration::from_secs(90)), "1m 30s");
        assert_eq!(text(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(text(Duration::from_nanos(1_000_001)), "1ms 1ns");
        assert_eq!(text(Duration::ZERO), "0s");
    }
}
