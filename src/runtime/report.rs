//! What the loop writes to minder's own log: one line per `Report` of the core, the
//! shutdown's cause and progress (the drain, the services it still waits for once a
//! second, the slow ones at the end), the signals minder only notes, and the SIGUSR2
//! dump of the tree.
//!
//! Reports change nothing in the tree: this module only reads the loop's state (names
//! from the process table, the running processes for the dump) and writes log lines.
//! Anything that acts on processes (a kill, a systemd message) is an `Effect`,
//! performed in `mod.rs`. The one exception is SIGUSR1, which asks for log files to be
//! reopened: that touches only output (`OutputHub::reopen`, in `mod.rs`), never the
//! supervision, so it is done where the core reports the signal.

use super::{Loop, RunMode};
use crate::process;
use crate::signals::signal_name;
use crate::spec::RestartType;
use crate::supervisor::{
    ChildRef, EXIT_ROOT_FAILED, EndKind, ExitStatus, Report, ShutdownCause, SlowStop,
    StoppingService,
};
use std::time::Duration;

impl Loop {
    /// The core's description of the tree (SIGUSR2), with each service whose main
    /// process is stopped (SIGSTOP, SIGTSTP, a debugger) marked: the core cannot know
    /// it, and such a service looks running while it does nothing at all. Only the
    /// main process is checked, from /proc, at the time of the dump.
    pub(super) fn describe_tree(&self) -> String {
        let mut stopped: Vec<(i32, &str, &str)> = self
            .children
            .iter()
            .filter_map(|incarnation| {
                let pid = incarnation.pid;
                let how = match process::process_state(pid)? {
                    'T' => "process stopped by a signal: it runs again only on SIGCONT",
                    't' => "process stopped by a tracer",
                    _ => return None,
                };
                Some((pid, self.name(incarnation.child), how))
            })
            .collect();
        stopped.sort_unstable();
        mark_stopped(&self.supervisor.describe(), &stopped)
    }

    pub(super) fn name(&self, child: ChildRef) -> &str {
        self.processes.name(child.id)
    }

    pub(super) fn log(&self, report: Report) {
        match report {
            Report::Started { child, pid } => {
                tracing::info!(service = self.name(child), pid, "started")
            }
            Report::StartFailed { child, reason } => {
                tracing::error!(service = self.name(child), "{reason}");
            }
            Report::Ready { child } => {
                // Worth a line only when a check decided it; otherwise it is the start.
                let checked = self
                    .processes
                    .service(child.id)
                    .is_some_and(|spec| spec.ready.is_some());
                if checked {
                    tracing::info!(service = self.name(child), "ready");
                }
            }
            Report::Exited { child, status, end } => {
                let how = match status {
                    ExitStatus::Exited(code) => format!("exited with code {code}"),
                    ExitStatus::Signaled(number) => format!("killed by {}", signal_name(number)),
                };
                let service = self.name(child);
                match end {
                    // In container mode the command's end is the expected end of minder.
                    _ if self.mode == RunMode::Container => {
                        tracing::info!(service, "{how} ({})", end_name(end))
                    }
                    EndKind::Stopped | EndKind::Normal => {
                        tracing::info!(service, "{how} ({})", end_name(end))
                    }
                    _ => tracing::warn!(service, "{how} ({})", end_name(end)),
                }
            }
            Report::RestartScheduled { id, delay } => {
                let service = self.processes.name(id);
                tracing::info!(
                    service,
                    "restart in {}",
                    humantime::format_duration(round_ms(delay))
                );
            }
            Report::Escalated {
                group,
                restarts,
                intensity,
                period,
            } => {
                let name = self.supervisor.group_name(group);
                // What follows comes as its own line once the group is down: its
                // parent restarting it, or it staying down, or (the root) the shutdown.
                let noun = if restarts == 1 { "restart" } else { "restarts" };
                tracing::error!(
                    group = name,
                    "{name} gave up: {restarts} {noun} in {} > intensity {intensity}; stopping its children",
                    humantime::format_duration(period)
                );
            }
            Report::GroupRestarting { group, parent } => {
                let name = self.supervisor.group_name(group);
                let parent = self.supervisor.group_name(parent);
                tracing::info!(group = name, "{parent} restarts {name}");
            }
            Report::GroupShuttingDown { group, trigger } => {
                let name = self.supervisor.group_name(group);
                let trigger = self.supervisor.node_name(trigger);
                tracing::info!(
                    group = name,
                    "{name} shuts itself down: its significant child {trigger} ended (auto_shutdown)"
                );
            }
            Report::GroupDone {
                group,
                end,
                restart,
            } => {
                let name = self.supervisor.group_name(group);
                let restart = match restart {
                    RestartType::Permanent => "permanent",
                    RestartType::Transient => "transient",
                    RestartType::Temporary => "temporary",
                };
                let how = match end {
                    EndKind::Normal => "ended normally",
                    _ => "gave up",
                };
                tracing::info!(
                    group = name,
                    "{name} {how} and stays down (restart = {restart})"
                );
            }
            Report::StopTimedOut { child } => {
                tracing::warn!(
                    service = self.name(child),
                    "did not stop within its stop_timeout; killing its process group"
                );
            }
            Report::ForwardTimedOut { child } => {
                tracing::warn!(
                    service = self.name(child),
                    "the service did not exit within its stop_timeout after the forwarded signal; killing its process group"
                );
            }
            Report::Signal { signal } => self.log_signal(signal),
            Report::HealthFailed {
                child,
                kind,
                reason,
                consecutive,
            } => {
                tracing::warn!(
                    service = self.name(child),
                    ?kind,
                    consecutive,
                    "check failed: {reason}"
                );
            }
            Report::Condemned { child, reason } => {
                tracing::warn!(
                    service = self.name(child),
                    %reason,
                    "stopping the service for a failure"
                );
            }
            Report::ShuttingDown { cause } => self.log_shutdown(cause),
            Report::Reloaded {
                added,
                removed,
                restarted,
                updated_groups,
            } => {
                let names = |ids: &[crate::supervisor::ServiceId]| {
                    ids.iter()
                        .map(|id| self.supervisor.service_name(*id).unwrap_or("?"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let groups = updated_groups
                    .iter()
                    .map(|group| self.supervisor.group_name(*group))
                    .collect::<Vec<_>>()
                    .join(", ");
                tracing::info!(
                    added = names(&added),
                    removed = names(&removed),
                    restarted = names(&restarted),
                    groups,
                    "reloaded"
                );
            }
            Report::ReloadRefused => {
                tracing::warn!("reload refused: minder is shutting down; nothing changed");
            }
            Report::Draining { until } => {
                let left = until.saturating_sub(self.supervisor.now());
                tracing::info!(
                    "draining for {}: services keep running, and minder reports itself not ready, before they are stopped in order",
                    seconds(left)
                );
            }
            Report::StillStopping { waiting } => {
                tracing::info!("waiting for {}", self.waiting_list(&waiting));
            }
            Report::SlowStops { stops } => self.log_slow_stops(&stops),
            Report::Unsettled { passes } => {
                tracing::error!(
                    "internal error: the supervisor did not settle in {passes} passes; it goes on at once"
                );
            }
        }
    }

    /// A signal to minder in config mode: the core has already acted on TERM, INT and
    /// QUIT (a shutdown); SIGUSR2 asks for the tree's state in the log.
    pub(super) fn log_signal(&self, signal: i32) {
        match signal {
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => {
                tracing::info!(signal = signal_name(signal), "shutdown requested");
            }
            libc::SIGHUP => {
                // The reload itself runs after this turn (see `reload.rs`).
                tracing::info!("SIGHUP: reloading the config file");
            }
            libc::SIGUSR1 => self.reopen_log_files(),
            libc::SIGUSR2 => {
                tracing::info!("state of the tree:\n{}", self.describe_tree());
            }
            _ => {}
        }
    }

    fn log_shutdown(&self, cause: ShutdownCause) {
        match cause {
            ShutdownCause::Requested => tracing::info!("orderly shutdown"),
            ShutdownCause::Forced => {
                tracing::warn!("second shutdown request: killing every process group")
            }
            ShutdownCause::RootFailed => tracing::error!(
                "the root's restart budget is exhausted: stopping everything, exit {EXIT_ROOT_FAILED}"
            ),
            ShutdownCause::Significant { id, code } => {
                let service = self.processes.name(id);
                tracing::info!(service, code, "significant service ended: shutting down");
            }
            ShutdownCause::SignificantGroup { group, code } => {
                let group = self.supervisor.group_name(group);
                tracing::info!(group, code, "significant group ended: shutting down");
            }
            ShutdownCause::TimedOut => {
                tracing::warn!("shutdown_timeout passed: killing every process group left")
            }
        }
    }
}

impl Loop {
    /// `db (4.1 s, killed in 5.9 s), api (12.0 s, SIGKILL sent)`: the first
    /// `WAITING_NAMED` in stop order, then how many more, so a batch of a thousand
    /// instances makes one readable line a second, not a page.
    fn waiting_list(&self, waiting: &[StoppingService]) -> String {
        let now = self.supervisor.now();
        let mut entries: Vec<String> = waiting
            .iter()
            .take(WAITING_NAMED)
            .map(|service| {
                let kill = match service.kill_at {
                    Some(at) => format!("killed in {}", seconds(at.saturating_sub(now))),
                    None => "SIGKILL sent".to_string(),
                };
                format!(
                    "{} ({}, {kill})",
                    self.processes.name(service.id),
                    seconds(service.stopping_for)
                )
            })
            .collect();
        if waiting.len() > WAITING_NAMED {
            entries.push(format!("and {} more", waiting.len() - WAITING_NAMED));
        }
        entries.join(", ")
    }

    /// The end of a shutdown: one line for each service that was slow to stop or had
    /// to be killed, so the next `stop_timeout` can be set from facts.
    fn log_slow_stops(&self, stops: &[SlowStop]) {
        for stop in stops {
            let service = self.processes.name(stop.id);
            if stop.killed {
                tracing::warn!(
                    service,
                    "needed SIGKILL to stop (killed after {})",
                    seconds(stop.took)
                );
            } else {
                tracing::info!(service, "took {} to stop", seconds(stop.took));
            }
        }
    }
}

/// How many services a progress line names; the rest are counted.
const WAITING_NAMED: usize = 10;

/// A duration as people read a wait: `4.1 s`.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// `description` (one line per node) with ` [how]` appended to the line of each
/// `(pid, name, how)` in `stopped`: the line that shows `pid <pid>`. A process whose
/// line cannot be found gets a line of its own at the end, so the mark is never lost.
fn mark_stopped(description: &str, stopped: &[(i32, &str, &str)]) -> String {
    let mut unmatched: Vec<&(i32, &str, &str)> = stopped.iter().collect();
    let mut text = String::with_capacity(description.len());
    for line in description.lines() {
        text.push_str(line);
        if let Some(index) = unmatched
            .iter()
            .position(|(pid, _, _)| shows_pid(line, *pid))
        {
            let (_, _, how) = unmatched.remove(index);
            text.push_str(&format!(" [{how}]"));
        }
        text.push('\n');
    }
    for (pid, name, how) in unmatched {
        text.push_str(&format!("{name} pid {pid} [{how}]\n"));
    }
    text
}

/// Whether `line` holds `pid <pid>` as whole words.
fn shows_pid(line: &str, pid: i32) -> bool {
    let needle = format!("pid {pid}");
    line.match_indices(&needle).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

fn round_ms(delay: Duration) -> Duration {
    Duration::from_millis(delay.as_millis().try_into().unwrap_or(u64::MAX))
}

pub(super) fn end_name(end: EndKind) -> String {
    match end {
        EndKind::Stopped => "stopped".into(),
        EndKind::Normal => "normal".into(),
        EndKind::Abnormal => "abnormal".into(),
        EndKind::Failure(reason) => format!("failure: {reason}"),
        EndKind::StartFailure => "start failure".into(),
    }
}
