//! Rendering a `Snapshot` as Prometheus text: the metric families of docs/design.md §6,
//! built as the `prometheus` crate's plain data model and written by its text encoder
//! (which owns escaping and the histogram's cumulative buckets).
//!
//! Runs on the metrics server's thread, never on the loop's. Service metrics carry the
//! labels `service` and `group` (plus `reason` for exits), group metrics `group`; no
//! pid or free text is ever a label value. Every service gets every series, zeros
//! included, so a rate over a series that has just started counting loses nothing.

use super::{ExitReason, RECOVERY_BUCKETS, ServiceInfo, Snapshot};
use crate::procfs::GroupUsage;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use std::collections::HashMap;

/// How CPU ticks and pages become seconds and bytes, from the system.
#[derive(Clone, Copy, Debug)]
pub struct Units {
    pub ticks_per_second: u64,
    pub page_size: u64,
}

/// The text of `/metrics`: the snapshot's families, the CPU and memory of each
/// service's process group from `usage` (by process group, see
/// `procfs::usage_by_group`), and `extra` (minder's own `process_*` families).
pub fn render(
    snapshot: &Snapshot,
    usage: &HashMap<i32, GroupUsage>,
    units: Units,
    extra: Vec<MetricFamily>,
) -> String {
    let mut families = service_families(snapshot, usage, units);
    families.extend(group_families(snapshot));
    families.push(family(
        "minder_orphans_reaped_total",
        "Processes re-parented to minder (orphans of its services) and reaped by it.",
        MetricType::COUNTER,
        vec![counter(Vec::new(), snapshot.orphans_reaped as f64)],
    ));
    families.push(family(
        "minder_log_lines_dropped_total",
        "Output lines that never reached their sink: a service's (log_overflow = \"drop\", a sink refusing them, given up at exit) or minder's own (stderr too far behind).",
        MetricType::COUNTER,
        vec![counter(Vec::new(), snapshot.log_lines_dropped as f64)],
    ));
    families.push(family(
        "minder_build_info",
        "Always 1; the version of minder in a label.",
        MetricType::GAUGE,
        vec![gauge(
            vec![label("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        )],
    ));
    families.extend(extra);
    // The encoder refuses a family without samples (and stops there): a tree without
    // services, or without groups but the root, leaves some empty.
    families.retain(|family| !family.get_metric().is_empty());
    let mut text = String::new();
    // The families are built here from fixed names and valid label names, and none is
    // empty; the encoder refuses nothing else, so an error is a bug of this file, and
    // what was written before it is still served.
    if let Err(error) = prometheus::TextEncoder::new().encode_utf8(&families, &mut text) {
        tracing::error!("internal error: render the metrics: {error}");
    }
    text
}

/// One vector of samples per service metric, filled in one pass over the services.
fn service_families(
    snapshot: &Snapshot,
    usage: &HashMap<i32, GroupUsage>,
    units: Units,
) -> Vec<MetricFamily> {
    let count = snapshot.services.len();
    let mut up = Vec::with_capacity(count);
    let mut ready = Vec::with_capacity(count);
    let mut restarts = Vec::with_capacity(count);
    let mut exits = Vec::with_capacity(count * ExitReason::ALL.len());
    let mut start_time = Vec::with_capacity(count);
    let mut backoff = Vec::with_capacity(count);
    let mut health = Vec::with_capacity(count);
    let mut cpu = Vec::with_capacity(count);
    let mut memory = Vec::with_capacity(count);
    let mut recovery = Vec::with_capacity(count);
    for (info, state) in snapshot.info.iter().zip(&snapshot.services) {
        let used = state
            .pid
            .and_then(|pid| usage.get(&pid))
            .copied()
            .unwrap_or_default();
        let counters = &state.counters;
        up.push(gauge(labels(info), flag(state.up)));
        ready.push(gauge(labels(info), flag(state.ready)));
        restarts.push(counter(labels(info), state.restarts as f64));
        for reason in ExitReason::ALL {
            let mut pairs = labels(info);
            pairs.push(label("reason", reason.label()));
            exits.push(counter(pairs, counters.exits[reason.index()] as f64));
        }
        start_time.push(gauge(labels(info), counters.start_time));
        backoff.push(gauge(labels(info), counters.backoff));
        health.push(counter(labels(info), counters.health_failures as f64));
        cpu.push(counter(
            labels(info),
            used.cpu_ticks as f64 / units.ticks_per_second as f64,
        ));
        memory.push(gauge(
            labels(info),
            used.rss_pages.saturating_mul(units.page_size) as f64,
        ));
        recovery.push(histogram(labels(info), &counters.recovery));
    }
    vec![
        family(
            "minder_service_up",
            "1 while the service's process runs (starting, ready or stopping), else 0.",
            MetricType::GAUGE,
            up,
        ),
        family(
            "minder_service_ready",
            "1 while the service's process is ready (its ready check passed, or it has none), else 0.",
            MetricType::GAUGE,
            ready,
        ),
        family(
            "minder_service_restarts_total",
            "Starts of the service after its first, whatever caused them.",
            MetricType::COUNTER,
            restarts,
        ),
        family(
            "minder_service_exits_total",
            "Ends of the service's process by reason: normal, abnormal (exit code), signal, health, watchdog, memory, ready_deadline, start_failure, stopped.",
            MetricType::COUNTER,
            exits,
        ),
        family(
            "minder_service_start_time_seconds",
            "When the service's current or last process started, in seconds since the Unix epoch (0 before its first start).",
            MetricType::GAUGE,
            start_time,
        ),
        family(
            "minder_service_backoff_seconds",
            "The delay before the restart the service waits for (0 when it waits for none).",
            MetricType::GAUGE,
            backoff,
        ),
        family(
            "minder_service_health_failures_total",
            "Failed health checks (probes, and memory samples over max_memory), start_period included.",
            MetricType::COUNTER,
            health,
        ),
        family(
            "minder_service_cpu_seconds_total",
            "User and system CPU time of the live processes of the service's process group, with the children they waited for; starts again from 0 with each new process.",
            MetricType::COUNTER,
            cpu,
        ),
        family(
            "minder_service_memory_bytes",
            "Resident memory of the processes of the service's process group.",
            MetricType::GAUGE,
            memory,
        ),
        family(
            "minder_service_recovery_seconds",
            "Time from an unplanned end of the service (a crash, an exit, a failed check, a failed start) to its next ready process (a oneshot: its next success); one observation per recovery, none if an operator stops it meanwhile.",
            MetricType::HISTOGRAM,
            recovery,
        ),
    ]
}

fn group_families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    let mut in_period = Vec::with_capacity(snapshot.groups.len());
    let mut escalations = Vec::with_capacity(snapshot.groups.len());
    for group in &snapshot.groups {
        in_period.push(gauge(
            vec![label("group", &group.name)],
            group.restarts_in_period as f64,
        ));
        escalations.push(counter(
            vec![label("group", &group.name)],
            group.escalations as f64,
        ));
    }
    vec![
        family(
            "minder_group_restarts_in_period",
            "Restart decisions inside the group's current window (its period); above its intensity, it gives up.",
            MetricType::GAUGE,
            in_period,
        ),
        family(
            "minder_group_escalations_total",
            "Times the group gave up because its restart budget was spent.",
            MetricType::COUNTER,
            escalations,
        ),
    ]
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn labels(info: &ServiceInfo) -> Vec<LabelPair> {
    vec![label("service", &info.name), label("group", &info.group)]
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_string());
    pair.set_value(value.to_string());
    pair
}

fn flag(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::from_label(labels);
    metric.set_gauge(gauge);
    metric
}

fn counter(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(value);
    let mut metric = Metric::from_label(labels);
    metric.set_counter(counter);
    metric
}

fn histogram(labels: Vec<LabelPair>, recovery: &super::Recovery) -> Metric {
    let mut cumulative = 0;
    let buckets = RECOVERY_BUCKETS
        .iter()
        .zip(recovery.buckets)
        .map(|(bound, count)| {
            cumulative += count;
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut histogram = Histogram::default();
    histogram.set_bucket(buckets);
    histogram.set_sample_count(recovery.count);
    histogram.set_sample_sum(recovery.sum);
    let mut metric = Metric::from_label(labels);
    metric.set_histogram(histogram);
    metric
}
