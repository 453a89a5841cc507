//! What minderctl prints for people: the status table, event and log lines, the reload
//! plan, the one-line answers of the other commands. `--json` bypasses all of this and
//! prints minder's own JSON.
//!
//! Every function here is pure (a protocol value in, text out), so the layout is tested
//! below without a daemon. Tables are aligned to their longest cell; the last column is
//! free text and is never padded. In the status table a REASON that would run past 80
//! columns goes on a line of its own under its row.

use minder::control::protocol::{
    DoneResult, EventItem, GroupStatus, LastCheck, LastExit, LogItem, ReloadResult, ServiceStatus,
    StatusResult,
};
use std::collections::HashMap;
use std::fmt::Write;

/// What an empty cell shows.
const NONE: &str = "-";

/// `45s`, `12m05s`, `3h12m`, `2d04h`: an uptime, to the unit a person cares about.
pub fn human_duration(seconds: f64) -> String {
    let total = whole_seconds(seconds);
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    if total < 60 {
        format!("{secs}s")
    } else if total < 3600 {
        format!("{minutes}m{secs:02}s")
    } else if total < 86_400 {
        format!("{hours}h{minutes:02}m")
    } else {
        format!("{days}d{hours:02}h")
    }
}

/// `4.1s` under a minute (how long a stop has taken matters to the tenth), else as
/// `human_duration`.
pub fn short_duration(seconds: f64) -> String {
    if seconds.is_finite() && seconds < 60.0 {
        format!("{:.1}s", seconds.max(0.0))
    } else {
        human_duration(seconds)
    }
}

/// Whole seconds; a negative or non-finite value (which minder does not send) is 0
/// rather than a panic.
fn whole_seconds(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        // Truncation is the point; an absurdly large value saturates.
        seconds as u64
    } else {
        0
    }
}

/// `SIGTERM` for `TERM`, `signal 34` for a number.
fn signal_text(signal: &str) -> String {
    if signal.chars().all(|c| c.is_ascii_digit()) {
        format!("signal {signal}")
    } else {
        format!("SIG{signal}")
    }
}

fn last_exit_text(exit: Option<&LastExit>) -> String {
    match exit {
        Some(LastExit {
            code: Some(code), ..
        }) => code.to_string(),
        Some(LastExit {
            signal: Some(signal),
            ..
        }) => signal_text(signal),
        _ => NONE.to_string(),
    }
}

fn check_text(check: Option<&LastCheck>) -> String {
    match check {
        None => NONE.to_string(),
        Some(check) => match (check.kind.as_str(), check.passed) {
            ("ready", true) => "ready".to_string(),
            ("ready", false) => "not ready".to_string(),
            ("health", true) => "healthy".to_string(),
            ("health", false) => "unhealthy".to_string(),
            (kind, true) => format!("{kind} ok"),
            (kind, false) => format!("{kind} failed"),
        },
    }
}

/// The REASON cell of a service: how far a stop has come, then why it last restarted
/// or stopped.
fn service_reason(service: &ServiceStatus) -> String {
    let stopping = service.stopping.as_ref().map(|stopping| {
        let mut text = format!("stopping {}", short_duration(stopping.since_seconds));
        if let Some(kill_in) = stopping.kill_in_seconds {
            let _ = write!(text, ", kill in {}", short_duration(kill_in));
        }
        text
    });
    let reason = service
        .reason
        .as_deref()
        .filter(|reason| !reason.is_empty());
    match (stopping, reason) {
        (Some(stopping), Some(reason)) => format!("{stopping}; {reason}"),
        (Some(stopping), None) => stopping,
        (None, Some(reason)) => reason.to_string(),
        (None, None) => NONE.to_string(),
    }
}

/// The RESTARTS cell of a group: its restart decisions inside the window against its
/// budget, `2/3 in 10s`.
fn group_restarts(group: &GroupStatus) -> String {
    let period = humantime::format_duration(std::time::Duration::from_secs_f64(
        if group.period_seconds.is_finite() {
            group.period_seconds.max(0.0)
        } else {
            0.0
        },
    ));
    format!(
        "{}/{} in {period}",
        group.restarts_in_period, group.intensity
    )
}

/// The columns of the status table. A group's RESTARTS cell is its budget use and its
/// REASON its strategy.
const STATUS_HEADER: [&str; 9] = [
    "NAME", "KIND", "STATE", "PID", "UPTIME", "RESTARTS", "EXIT", "CHECK", "REASON",
];

/// The width the status table keeps to: a row whose REASON would go past it has its
/// REASON on a line of its own, under the row, so every line stays readable in a
/// terminal of 80 columns.
const STATUS_WIDTH: usize = 80;

/// A row of the status table, with its depth in the tree.
enum Node<'a> {
    Group(&'a GroupStatus),
    Service(&'a ServiceStatus),
}

/// The rows in tree order: each group before what it holds, services in the order
/// minder lists them (their start order), each with the number of its ancestors in the
/// answer. A group whose parent is not in the answer (`status backend`) is at depth 0.
fn tree_order<'a>(status: &'a StatusResult) -> Vec<(usize, Node<'a>)> {
    let groups: HashMap<&str, &'a GroupStatus> = status
        .groups
        .iter()
        .map(|group| (group.name.as_str(), group))
        .collect();
    let mut rows = Vec::new();
    let mut shown: Vec<&str> = Vec::new();
    let mut show_group = |name: &str, rows: &mut Vec<(usize, Node<'a>)>| {
        let chain = ancestry(&groups, name);
        let depth = chain.len();
        // Outermost first; the ones already shown are skipped.
        for (index, group) in chain.into_iter().rev().enumerate() {
            if !shown.contains(&group.name.as_str()) {
                shown.push(group.name.as_str());
                rows.push((index, Node::Group(group)));
            }
        }
        depth
    };
    for service in &status.services {
        let depth = show_group(&service.group, &mut rows);
        rows.push((depth, Node::Service(service)));
    }
    for group in &status.groups {
        show_group(&group.name, &mut rows);
    }
    rows
}

/// The chain of a group's ancestors in the answer, itself first. Bounded by the number
/// of groups, so a malformed answer with a parent cycle cannot loop.
fn ancestry<'a>(groups: &HashMap<&str, &'a GroupStatus>, name: &str) -> Vec<&'a GroupStatus> {
    let mut chain: Vec<&GroupStatus> = Vec::new();
    let mut current = groups.get(name).copied();
    while let Some(group) = current {
        if chain.len() > groups.len() {
            break;
        }
        chain.push(group);
        current = group
            .parent
            .as_deref()
            .and_then(|parent| groups.get(parent).copied());
    }
    chain
}

/// The status table, preceded by a line about minder itself; names are indented two
/// spaces per level of the tree, and a group's name ends in `/`.
pub fn status_table(status: &StatusResult) -> String {
    let rows: Vec<[String; 9]> = tree_order(status)
        .into_iter()
        .map(|(depth, node)| {
            let indent = "  ".repeat(depth);
            match node {
                Node::Group(group) => [
                    format!("{indent}{}", group.name),
                    "group".to_string(),
                    group.state.clone(),
                    NONE.to_string(),
                    NONE.to_string(),
                    group_restarts(group),
                    NONE.to_string(),
                    NONE.to_string(),
                    group.strategy.clone(),
                ],
                Node::Service(service) => [
                    format!("{indent}{}", service.name),
                    service.kind.clone(),
                    service.state.clone(),
                    service
                        .pid
                        .map_or_else(|| NONE.to_string(), |pid| pid.to_string()),
                    service
                        .uptime_seconds
                        .map_or_else(|| NONE.to_string(), human_duration),
                    service.restarts.to_string(),
                    last_exit_text(service.last_exit.as_ref()),
                    check_text(service.last_check.as_ref()),
                    service_reason(service),
                ],
            }
        })
        .collect();
    let minder = &status.minder;
    let mut out = format!(
        "minder {}, pid {}, up {}, {}\n",
        minder.version,
        minder.pid,
        human_duration(minder.uptime_seconds),
        minder.phase
    );
    out.push_str(&table(&STATUS_HEADER, &rows, Some(STATUS_WIDTH)));
    out
}

/// Rows under a header, each column as wide as its widest cell, two spaces apart; the
/// last column is not padded and no line ends in spaces. With `wrap_at`, a row whose
/// last cell would end past that column has that cell on the next line instead,
/// indented to the second column.
fn table<const N: usize>(
    header: &[&str; N],
    rows: &[[String; N]],
    wrap_at: Option<usize>,
) -> String {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row = header.map(str::to_string);
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == N {
                let width = line.chars().count() + cell.chars().count();
                if wrap_at.is_some_and(|limit| width > limit) {
                    line.truncate(line.trim_end().len());
                    line.push('\n');
                    line.push_str(&" ".repeat(widths[0] + 2));
                }
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[index]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One event: its time, what happened, to what, and the details it carries.
pub fn event_line(event: &EventItem) -> String {
    let mut details = Vec::new();
    if let Some(pid) = event.pid {
        details.push(format!("pid {pid}"));
    }
    if let Some(code) = event.code {
        details.push(format!("exit {code}"));
    }
    if let Some(signal) = &event.signal {
        details.push(signal_text(signal));
    }
    if let Some(delay) = event.delay_seconds {
        details.push(format!("in {}", short_duration(delay)));
    }
    if let Some(reason) = event.reason.as_deref().filter(|reason| !reason.is_empty()) {
        details.push(reason.to_string());
    }
    let subject = match (&event.service, &event.group) {
        (Some(service), _) => service.clone(),
        (None, Some(group)) => format!("group {group}"),
        (None, None) => "minder".to_string(),
    };
    let mut line = format!("{} {:<17} {subject}", event.time, event.event);
    if !details.is_empty() {
        let _ = write!(line, ": {}", details.join(", "));
    }
    line
}

/// How log lines are printed: bare for one service, `name | line` with the names
/// padded to the longest when the request covers several.
pub struct LogPrefix {
    width: Option<usize>,
}

impl LogPrefix {
    /// For a request covering `services`.
    pub fn for_services(services: &[String]) -> LogPrefix {
        let width = (services.len() > 1).then(|| {
            services
                .iter()
                .map(|name| name.chars().count())
                .max()
                .unwrap_or(0)
        });
        LogPrefix { width }
    }

    pub fn line(&self, item: &LogItem) -> String {
        match self.width {
            Some(width) => format!("{:<width$} | {}", item.service, item.line),
            None => item.line.clone(),
        }
    }
}

/// The answer of `start`, `stop`, `restart`, `signal`: what was asked, then what it
/// acted on.
pub fn done_line(asked: &str, result: &DoneResult) -> String {
    if result.affected.is_empty() {
        format!("{asked}: nothing to do")
    } else {
        format!("{asked}: {}", result.affected.join(", "))
    }
}

/// The reload plan (with `dry_run`) or report: one row per change with its action,
/// kind, name, outcome (not for a plan) and the config keys that caused it.
pub fn reload_report(result: &ReloadResult) -> String {
    if result.changes.is_empty() {
        return if result.dry_run {
            "no changes: the running tree matches the config file (dry run)\n".to_string()
        } else {
            "no changes: the running tree matches the config file\n".to_string()
        };
    }
    let keys = |keys: &[String]| {
        if keys.is_empty() {
            NONE.to_string()
        } else {
            keys.join(", ")
        }
    };
    if result.dry_run {
        let rows: Vec<[String; 4]> = result
            .changes
            .iter()
            .map(|change| {
                [
                    change.action.clone(),
                    change.kind.clone(),
                    change.name.clone(),
                    keys(&change.keys),
                ]
            })
            .collect();
        let mut out = table(&["ACTION", "KIND", "NAME", "KEYS"], &rows, None);
        out.push_str("dry run: nothing was changed\n");
        out
    } else {
        let rows: Vec<[String; 5]> = result
            .changes
            .iter()
            .map(|change| {
                [
                    change.action.clone(),
                    change.kind.clone(),
                    change.name.clone(),
                    change.outcome.clone(),
                    keys(&change.keys),
                ]
            })
            .collect();
        table(&["ACTION", "KIND", "NAME", "OUTCOME", "KEYS"], &rows, None)
    }
}

/// How many changes of a reload failed (an outcome `failed: ...`).
pub fn failed_changes(result: &ReloadResult) -> usize {
    result
        .changes
        .iter()
        .filter(|change| change.outcome.starts_with("failed"))
        .count()
}

#[cfg(test)]
mod tests;
