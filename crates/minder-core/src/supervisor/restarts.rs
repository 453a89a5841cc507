//! What follows a service's end: restart or not, backoff, the group's budget,
//! escalation, the restart set of each strategy, and `auto_shutdown`.
//!
//! One restart decision (one failed child, whatever its strategy restarts) adds one
//! entry to the group's budget window, at the moment of the failure; the restart set
//! waits for the failed child's backoff delay, and only that child's backoff count
//! grows. A group whose budget is exceeded goes down and fails upwards; the root's
//! failing shuts the tree down with exit code 3.
//!
//! Groups are children like services, as OTP's supervisors are: a group ends
//! abnormally when it gives up (its budget is spent) and normally when its
//! `auto_shutdown` fires, and its parent then decides by the group's restart type.
//! `significant` acts on the direct parent only: a significant child that ends for
//! good fires its parent's `auto_shutdown`, which on the root shuts the whole tree
//! down.

use super::tree::{GroupMode, Intent, NodeKind, ROOT, Readiness, Run, StartGate};
use super::{
    EXIT_ROOT_FAILED, Effect, EndKind, NodeId, Phase, Report, ServiceId, ShutdownCause,
    ShutdownExit, Supervisor, Time,
};
use crate::spec::{AutoShutdown, BackoffSpec, RestartType, ServiceKind, Strategy};
use alloc::{vec, vec::Vec};
use core::time::Duration;

impl Supervisor {
    /// A service's process is gone (or never started). Decide what follows.
    /// `readiness` is what the incarnation had reached when it ended.
    pub(super) fn service_ended(
        &mut self,
        id: ServiceId,
        end: EndKind,
        code: i32,
        readiness: Readiness,
    ) {
        let now = self.now;
        self.note_significant_end(id, code);
        let node_id = self.services[id].node;
        let service = &mut self.services[id];
        service.run = Run::Idle;
        if end == EndKind::Stopped {
            if core::mem::take(&mut service.retire_after_stop) {
                service.run = Run::Done { code };
            }
            return;
        }
        // Ends while the tree, its group or its restart set is going down anyway are
        // absorbed: the plan already in motion decides what happens next.
        if self.shutting_down()
            || self.nodes[node_id].intent == Intent::Restart
            || !self.parent_up(node_id)
        {
            let service = &mut self.services[id];
            if core::mem::take(&mut service.retire_after_stop) {
                service.run = Run::Done { code };
                // It ended by itself and for good (a temporary member of a sibling's
                // restart set: ends reaped in one sweep come in pid order, not in the
                // order they happened). As a significant child that is still its
                // parent's `auto_shutdown` to judge, unless the parent or the tree is
                // going down anyway.
                if !self.shutting_down() && self.parent_up(node_id) {
                    self.check_auto_shutdown(node_id, code);
                }
            }
            return;
        }
        let service = &mut self.services[id];
        let restart = match service.spec.kind {
            ServiceKind::Oneshot => end != EndKind::Normal,
            ServiceKind::Longrun(RestartType::Permanent) => true,
            ServiceKind::Longrun(RestartType::Transient) => end != EndKind::Normal,
            ServiceKind::Longrun(RestartType::Temporary) => false,
        };
        if !restart {
            service.run = Run::Done { code };
            self.check_auto_shutdown(node_id, code);
            return;
        }
        // Backoff: a run that stayed up and healthy for `reset_after` resets the count
        // of consecutive failures. A failed start never ran; an end minder forced for
        // a failed check (health, memory, watchdog, deadline) was not healthy at the
        // end; a service that never became ready never counts as up.
        let stable = !matches!(end, EndKind::StartFailure | EndKind::Failure(_))
            && matches!(readiness, Readiness::Ready { healthy_since }
                if now.saturating_sub(healthy_since) >= service.spec.backoff.reset_after);
        if stable {
            service.backoff_count = 0;
        }
        service.backoff_count = service.backoff_count.saturating_add(1);
        service.last_restart_reason = Some(end);
        let delay = backoff_delay(&service.spec.backoff, service.backoff_count, &mut self.rng);
        self.child_failed(node_id, delay);
    }

    /// `child` (a service or a group) failed and must be restarted after `delay`:
    /// count the decision against its parent's budget, then schedule the restart set.
    pub(super) fn child_failed(&mut self, child: NodeId, delay: Duration) {
        let now = self.now;
        let Some(parent) = self.nodes[child].parent else {
            // The root itself failed: stop everything and exit 3.
            self.out.push(Effect::Report(Report::ShuttingDown {
                cause: ShutdownCause::RootFailed,
            }));
            self.begin_shutdown(ShutdownExit::Fixed(EXIT_ROOT_FAILED));
            return;
        };
        let NodeKind::Group(group) = &mut self.nodes[parent].kind else {
            return;
        };
        // Sliding window as in OTP: a restart exactly `period` ago still counts, one
        // further back does not.
        while group
            .restarts
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > group.period)
        {
            group.restarts.pop_front();
        }
        group.restarts.push_back(now);
        if group.restarts.len() > group.intensity as usize {
            self.out.push(Effect::Report(Report::Escalated {
                group: parent,
                restarts: group.restarts.len(),
                intensity: group.intensity,
                period: group.period,
            }));
            if parent == ROOT {
                // The root has no parent to fail to: stop everything and exit 3,
                // bounded by shutdown_timeout like any shutdown.
                self.out.push(Effect::Report(Report::ShuttingDown {
                    cause: ShutdownCause::RootFailed,
                }));
                self.begin_shutdown(ShutdownExit::Fixed(EXIT_ROOT_FAILED));
            } else {
                group.mode = GroupMode::Failing;
                self.dirty = true;
            }
            return;
        }
        let members: Vec<NodeId> = {
            let position = group.children.iter().position(|c| *c == child).unwrap_or(0);
            match group.strategy {
                Strategy::OneForOne => vec![child],
                Strategy::OneForAll => group.children.clone(),
                Strategy::RestForOne => group.children[position..].to_vec(),
            }
        };
        match self.nodes[child].kind {
            NodeKind::Service(service) => {
                self.out.push(Effect::Report(Report::RestartScheduled {
                    id: service,
                    delay,
                }));
            }
            NodeKind::Group(_) => {
                self.out.push(Effect::Report(Report::GroupRestarting {
                    group: child,
                    parent,
                }));
            }
        }
        self.schedule_restart_set(&members, now + delay);
    }

    /// Every member of a restart set starts again at `restart_at`, as one wave; the
    /// active ones first go down. A held member stays held.
    fn schedule_restart_set(&mut self, members: &[NodeId], restart_at: Time) {
        let wave = self.new_wave();
        for member in members.iter().copied() {
            if self.nodes[member].intent == Intent::Held {
                continue;
            }
            // A group that ended for good comes back with its set, unless it is
            // temporary: like a temporary service, it never comes back (OTP).
            if let NodeKind::Group(group) = &mut self.nodes[member].kind
                && group.mode == GroupMode::Done
            {
                if group.restart == RestartType::Temporary {
                    continue;
                }
                group.mode = GroupMode::Down;
            }
            self.nodes[member].not_before = restart_at;
            self.nodes[member].gate = StartGate {
                wave,
                ..self.nodes[member].gate
            };
            let active = self.active(member);
            if let NodeKind::Service(service) = self.nodes[member].kind {
                let service = &mut self.services[service];
                let temporary = service.spec.kind == ServiceKind::Longrun(RestartType::Temporary);
                match service.run {
                    // A finished oneshot runs again in its place; a transient service
                    // that ended normally comes back with its set. A temporary one
                    // never comes back (OTP).
                    Run::Done { .. } if !temporary => service.run = Run::Idle,
                    _ if active && temporary => service.retire_after_stop = true,
                    _ => {}
                }
            }
            if active {
                self.nodes[member].intent = Intent::Restart;
            }
        }
    }

    /// The group `id` has gone down on its own: `Abnormal` after it gave up (its
    /// budget was spent), `Normal` after its `auto_shutdown` fired. Its parent decides
    /// by the group's restart type, as for a service; `code` is what the group hands
    /// on should its end shut its parent down in turn.
    pub(super) fn group_ended(&mut self, id: NodeId, end: EndKind, code: i32) {
        let NodeKind::Group(group) = &mut self.nodes[id].kind else {
            return;
        };
        let restart = match group.restart {
            RestartType::Permanent => true,
            RestartType::Transient => end != EndKind::Normal,
            RestartType::Temporary => false,
        };
        if restart || id == ROOT {
            self.child_failed(id, Duration::ZERO);
            return;
        }
        group.mode = GroupMode::Done;
        self.dirty = true;
        self.out.push(Effect::Report(Report::GroupDone {
            group: id,
            end,
            restart: group.restart,
        }));
        self.check_auto_shutdown(id, code);
    }

    /// An operator starts (or restarts) a group that had ended for good: it is down
    /// again, so reconciliation starts it fresh.
    pub(super) fn revive_group(&mut self, id: NodeId) {
        if let NodeKind::Group(group) = &mut self.nodes[id].kind
            && group.mode == GroupMode::Done
        {
            group.mode = GroupMode::Down;
            self.dirty = true;
        }
    }

    /// Whether a node's end for good can shut its parent down.
    fn significant(&self, id: NodeId) -> bool {
        match &self.nodes[id].kind {
            NodeKind::Service(service) => self.services[*service].spec.significant,
            NodeKind::Group(group) => group.significant,
        }
    }

    /// Whether a node has ended for good (and is not to be started again).
    fn ended_for_good(&self, id: NodeId) -> bool {
        match &self.nodes[id].kind {
            NodeKind::Service(service) => matches!(self.services[*service].run, Run::Done { .. }),
            NodeKind::Group(group) => group.mode == GroupMode::Done,
        }
    }

    /// `id` has just ended for good: if it is significant, its parent's
    /// `auto_shutdown` decides whether the parent shuts itself down. On the root that
    /// shuts the tree down and minder exits with `code`; any other group stops its
    /// children and then ends normally (see `group_ended`).
    fn check_auto_shutdown(&mut self, id: NodeId, code: i32) {
        if !self.significant(id) {
            return;
        }
        let Some(parent) = self.nodes[id].parent else {
            return;
        };
        let NodeKind::Group(group) = &self.nodes[parent].kind else {
            return;
        };
        let trigger = match group.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => group
                .children
                .iter()
                .filter(|child| self.significant(**child))
                .all(|child| self.ended_for_good(*child)),
        };
        if !trigger {
            return;
        }
        if parent == ROOT {
            let cause = match self.nodes[id].kind {
                NodeKind::Service(service) => ShutdownCause::Significant { id: service, code },
                NodeKind::Group(_) => ShutdownCause::SignificantGroup { group: id, code },
            };
            self.out
                .push(Effect::Report(Report::ShuttingDown { cause }));
            self.begin_shutdown(ShutdownExit::Fixed(code));
            return;
        }
        // A parent already going down (failing, or stopped from above) keeps its plan.
        if let NodeKind::Group(group) = &mut self.nodes[parent].kind
            && group.mode == GroupMode::Up
        {
            group.mode = GroupMode::Ending { code };
            self.dirty = true;
            self.out.push(Effect::Report(Report::GroupShuttingDown {
                group: parent,
                trigger: id,
            }));
        }
    }
}

impl Supervisor {
    /// A significant service ended (or was killed) during a requested shutdown: under
    /// `auto_shutdown` its code becomes minder's, as a container runtime reports the
    /// main process's code as the container's. With several, the one whose end would
    /// have triggered the shutdown decides: the first to end under `any_significant`,
    /// the last under `all_significant`. A shutdown that something else began (a
    /// spent root budget, a significant end) keeps its code.
    pub(super) fn note_significant_end(&mut self, id: ServiceId, code: i32) {
        // Significance acts on the direct parent: only the root's own children decide
        // minder's code.
        if !self.services[id].spec.significant
            || self.nodes[self.services[id].node].parent != Some(ROOT)
        {
            return;
        }
        let Phase::ShuttingDown {
            exit: ShutdownExit::Requested(recorded),
            ..
        } = &mut self.phase
        else {
            return;
        };
        match self.auto_shutdown {
            AutoShutdown::Never => {}
            AutoShutdown::AnySignificant => {
                recorded.get_or_insert(code);
            }
            AutoShutdown::AllSignificant => *recorded = Some(code),
        }
    }
}

/// `min(max, initial * multiplier^(n-1))`, then ±`jitter` of it, drawn from `rng`, and
/// never more than `max`.
pub fn backoff_delay(backoff: &BackoffSpec, n: u32, rng: &mut fastrand::Rng) -> Duration {
    let initial = backoff.initial.as_secs_f64();
    let max = backoff.max.as_secs_f64();
    // Past about a thousand doublings `multiplier^(n-1)` is infinite, and a zero
    // `initial` times infinity is NaN: a zero initial delay stays zero, and anything
    // that stops being finite is at the cap.
    let base = if initial == 0.0 {
        0.0
    } else {
        initial * powi(backoff.multiplier, n.saturating_sub(1))
    };
    let capped = if base.is_finite() { base.min(max) } else { max };
    let factor = 1.0 + backoff.jitter * (rng.f64() * 2.0 - 1.0);
    // Jitter spreads restarts apart; it must not push one past `max`.
    let seconds = (capped * factor).clamp(0.0, max);
    Duration::try_from_secs_f64(seconds).unwrap_or(backoff.max)
}

/// `base^exponent` by repeated squaring, the way compiler-rt's `__powidf2` (what
/// `f64::powi` compiles to) computes it, so delays are the same to the bit; `core`,
/// unlike `std`, has no `powi`.
fn powi(mut base: f64, mut exponent: u32) -> f64 {
    let mut result = 1.0;
    loop {
        if exponent & 1 == 1 {
            result *= base;
        }
        exponent /= 2;
        if exponent == 0 {
            return result;
        }
        base *= base;
    }
}

#[cfg(test)]
mod tests {
    /// The core's `powi` gives exactly what `std`'s does, so no backoff delay changed
    /// when the core became `no_std`.
    #[test]
    fn powi_matches_std_to_the_bit() {
        for base in [1.0, 1.0001, 1.5, 2.0, 2.5, 3.0, 7.25, 10.0] {
            for exponent in (0..2_000).chain([i32::MAX as u32 - 1, i32::MAX as u32]) {
                let expected = f64::powi(base, exponent as i32);
                assert_eq!(
                    super::powi(base, exponent).to_bits(),
                    expected.to_bits(),
                    "{base}^{exponent}"
                );
            }
        }
    }
}
