//! `minder check`'s view of a `Spec`: the resolved tree, depth first, with every
//! effective value (defaults included) so the reader sees what will actually run.
//!
//! Owns only formatting. The output is for humans, but tests snapshot it, so it must be
//! deterministic: no clock, no environment, no hash-map order.

use super::lower::{RLIMITS, UNLIMITED};
use super::values::{format_size, quote_word, signal_name};
use crate::spec::{
    AutoShutdown, ControlSocket, GroupSpec, HealthSpec, LogFormat, LogOverflow, NodeSpec, Probe,
    ReadyCheck, ReadySpec, RestartType, ServiceSpec, Spec, Strategy,
};
use std::fmt::Write;
use std::time::Duration;

/// The resolved tree as `minder check` prints it.
pub fn render(spec: &Spec) -> String {
    let mut out = String::new();
    group(&mut out, &spec.root, 0, true);
    out.push_str("daemon\n");
    line(
        &mut out,
        1,
        "shutdown_timeout",
        &duration(spec.daemon.shutdown_timeout),
    );
    let format = match spec.daemon.log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    line(&mut out, 1, "log_format", format);
    let daemon = &spec.daemon;
    line(&mut out, 1, "drain_delay", &duration(daemon.drain_delay));
    let control = match &daemon.control {
        ControlSocket::Default => "default".to_string(),
        ControlSocket::Path(path) => path.display().to_string(),
        ControlSocket::Disabled => "none".to_string(),
    };
    line(&mut out, 1, "control_socket", &control);
    line(
        &mut out,
        1,
        "control_mode",
        &format!("{:04o}", daemon.control_mode),
    );
    if let Some(group) = &daemon.control_group {
        line(&mut out, 1, "control_group", group);
    }
    if let Some(address) = daemon.metrics_listen {
        line(&mut out, 1, "metrics_listen", &address.to_string());
    }
    match &daemon.log_dir {
        Some(dir) => {
            line(&mut out, 1, "log_dir", &dir.display().to_string());
            line(
                &mut out,
                1,
                "log_max_size",
                &format_size(daemon.log_max_size),
            );
            line(&mut out, 1, "log_keep", &daemon.log_keep.to_string());
        }
        None => line(&mut out, 1, "log_dir", "none (minder's stdout and stderr)"),
    }
    line(
        &mut out,
        1,
        "log_timestamps",
        &daemon.log_timestamps.to_string(),
    );
    let overflow = match daemon.log_overflow {
        LogOverflow::Block => "block",
        LogOverflow::Drop => "drop",
    };
    line(&mut out, 1, "log_overflow", overflow);
    if let Some(path) = &daemon.state_file {
        line(&mut out, 1, "state_file", &path.display().to_string());
    }
    out
}

fn group(out: &mut String, spec: &GroupSpec, depth: usize, is_root: bool) {
    let indent = "  ".repeat(depth);
    let title = if is_root {
        "root".to_string()
    } else {
        format!("group {}", spec.name)
    };
    let _ = write!(
        out,
        "{indent}{title}: {}, intensity {} per {}",
        strategy(spec.strategy),
        spec.intensity,
        duration(spec.period)
    );
    let auto = match spec.auto_shutdown {
        AutoShutdown::Never => "never",
        AutoShutdown::AnySignificant => "any_significant",
        AutoShutdown::AllSignificant => "all_significant",
    };
    // The root always shows it; a group only what differs from the defaults, so the
    // usual tree stays short.
    if is_root || spec.auto_shutdown != AutoShutdown::Never {
        let _ = write!(out, ", auto_shutdown {auto}");
    }
    if !is_root && spec.restart != RestartType::Permanent {
        let restart = match spec.restart {
            RestartType::Permanent => "permanent",
            RestartType::Transient => "transient",
            RestartType::Temporary => "temporary",
        };
        let _ = write!(out, ", restart {restart}");
    }
    if !is_root && spec.significant {
        out.push_str(", significant");
    }
    out.push('\n');
    if spec.children.is_empty() {
        let _ = writeln!(out, "{indent}  (no children)");
    }
    for child in &spec.children {
        match child {
            NodeSpec::Service(service_spec) => service(out, service_spec, depth + 1),
            NodeSpec::Group(group_spec) => group(out, group_spec, depth + 1, false),
        }
    }
}

fn service(out: &mut String, spec: &ServiceSpec, depth: usize) {
    let indent = "  ".repeat(depth);
    let _ = write!(out, "{indent}service {}", spec.name);
    if let Some(instance) = spec.instance {
        let _ = write!(out, " (instance {instance} of {})", spec.base_name);
    }
    out.push('\n');
    let depth = depth + 1;
    let command: Vec<String> = spec.command.iter().map(|word| quote_word(word)).collect();
    line(out, depth, "command", &command.join(" "));
    let restart = match (spec.oneshot, spec.restart) {
        (true, _) => "oneshot (retried after a failure, done after success)",
        (false, RestartType::Permanent) => "permanent",
        (false, RestartType::Transient) => "transient",
        (false, RestartType::Temporary) => "temporary",
    };
    line(out, depth, "restart", restart);
    line(
        out,
        depth,
        "significant",
        if spec.significant { "yes" } else { "no" },
    );
    line(
        out,
        depth,
        "working_dir",
        &spec.working_dir.display().to_string(),
    );
    line(
        out,
        depth,
        "user",
        spec.user.as_deref().unwrap_or("(minder's own)"),
    );
    // Without `group`, the spawner takes the user's primary group, or keeps minder's
    // own when no user is set either.
    let default_group = if spec.user.is_some() {
        "(the user's primary group)"
    } else {
        "(minder's own)"
    };
    line(
        out,
        depth,
        "group",
        spec.group.as_deref().unwrap_or(default_group),
    );
    let env_file = spec
        .env_file
        .as_ref()
        .map_or_else(|| "(none)".to_string(), |path| path.display().to_string());
    line(out, depth, "env_file", &env_file);
    let env: Vec<String> = spec
        .env
        .iter()
        .map(|(key, value)| quote_word(&format!("{key}={value}")))
        .collect();
    line(
        out,
        depth,
        "env",
        &or_none(env.join(" "), "(inherited only)"),
    );
    let umask = spec
        .umask
        .map_or_else(|| "(inherited)".to_string(), |mask| format!("{mask:04o}"));
    line(out, depth, "umask", &umask);
    let rlimits: Vec<String> = spec
        .rlimits
        .iter()
        .map(|limit| {
            let name = RLIMITS
                .iter()
                .find(|(_, resource)| *resource == limit.resource)
                .map_or("?", |(name, _)| *name);
            if limit.soft == limit.hard {
                format!("{name}={}", rlimit(limit.soft))
            } else {
                format!("{name}={}:{}", rlimit(limit.soft), rlimit(limit.hard))
            }
        })
        .collect();
    line(
        out,
        depth,
        "rlimits",
        &or_none(rlimits.join(" "), "(inherited)"),
    );
    let stop = format!(
        "{}, then SIGKILL after {}",
        signal_name(spec.stop_signal),
        duration(spec.stop_timeout)
    );
    line(out, depth, "stop", &stop);
    let codes: Vec<String> = spec.success_codes.iter().map(i32::to_string).collect();
    line(
        out,
        depth,
        "success_codes",
        &or_none(codes.join(" "), "(none)"),
    );
    let signals: Vec<String> = spec
        .success_signals
        .iter()
        .map(|signal| signal_name(*signal))
        .collect();
    line(
        out,
        depth,
        "success_signals",
        &or_none(signals.join(" "), "(none)"),
    );
    let backoff = &spec.backoff;
    let backoff = format!(
        "initial {}, max {}, multiplier {}, jitter {}, reset_after {}",
        duration(backoff.initial),
        duration(backoff.max),
        backoff.multiplier,
        backoff.jitter,
        duration(backoff.reset_after)
    );
    line(out, depth, "backoff", &backoff);
    let ready = match &spec.ready {
        Some(ready_spec) => ready(ready_spec),
        None if spec.oneshot => "(once it exits with a success code)".to_string(),
        None => "(once started)".to_string(),
    };
    line(out, depth, "ready", &ready);
    let health = spec
        .health
        .as_ref()
        .map_or_else(|| "(none)".to_string(), health);
    line(out, depth, "health", &health);
    let watchdog = spec.watchdog.map_or_else(|| "(none)".to_string(), duration);
    line(out, depth, "watchdog", &watchdog);
}

/// The check, then the timings that apply to it: `notify` and `fd` are waited for
/// rather than polled, so only probes show an interval and a timeout.
fn ready(spec: &ReadySpec) -> String {
    match &spec.check {
        ReadyCheck::Probe(probe_spec) => format!(
            "{}, interval {}, timeout {}, deadline {}",
            probe(probe_spec),
            duration(spec.interval),
            duration(spec.timeout),
            duration(spec.deadline)
        ),
        ReadyCheck::Notify => format!("notify (READY=1), deadline {}", duration(spec.deadline)),
        ReadyCheck::Fd(fd) => format!(
            "fd {fd} (a newline written to it), deadline {}",
            duration(spec.deadline)
        ),
    }
}

/// The probe with its timings, then the memory guard; a guard alone shows only the
/// interval, since the probe's timeout, grace period and failure count do not apply.
fn health(spec: &HealthSpec) -> String {
    let mut parts = Vec::new();
    if let Some(probe_spec) = &spec.probe {
        parts.push(format!(
            "{}, interval {}, timeout {}, start_period {}, failures {}",
            probe(probe_spec),
            duration(spec.interval),
            duration(spec.timeout),
            duration(spec.start_period),
            spec.failures
        ));
    }
    if let Some(bytes) = spec.max_memory {
        parts.push(format!("max_memory {}", format_size(bytes)));
        if spec.probe.is_none() {
            parts.push(format!("interval {}", duration(spec.interval)));
        }
    }
    parts.join(", ")
}

fn probe(probe: &Probe) -> String {
    match probe {
        Probe::Tcp { address } => format!("tcp {address}"),
        Probe::Http { url } => format!("http {url}"),
        Probe::Exec { command } => {
            let words: Vec<String> = command.iter().map(|word| quote_word(word)).collect();
            format!("exec {}", words.join(" "))
        }
    }
}

fn line(out: &mut String, depth: usize, label: &str, value: &str) {
    let indent = "  ".repeat(depth);
    let _ = writeln!(out, "{indent}{label:<16} {value}");
}

fn or_none(text: String, none: &str) -> String {
    if text.is_empty() {
        none.to_string()
    } else {
        text
    }
}

fn strategy(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::OneForOne => "one_for_one",
        Strategy::OneForAll => "one_for_all",
        Strategy::RestForOne => "rest_for_one",
    }
}

/// In the units a config accepts, so a rendered value can be pasted back into a file.
fn duration(duration: Duration) -> String {
    super::values::format_duration(duration)
}

fn rlimit(value: u64) -> String {
    if value == UNLIMITED {
        "unlimited".to_string()
    } else {
        value.to_string()
    }
}
