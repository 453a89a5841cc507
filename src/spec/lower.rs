//! From the full spec to the core's: what supervision decides with goes to the core,
//! what starting a process needs stays with the runtime.
//!
//! `lower` makes the core's `minder_core::spec::Spec` and collects every probe target
//! into a table the core refers to by `ProbeId`. `ProcessTable` is what the runtime
//! keeps beside the `Supervisor`: the whole `ServiceSpec` of each service by the
//! `ServiceId` the core gave it, and the probe targets by id. Plain functions over
//! data: no I/O.

use super::{GroupSpec, HealthSpec, NodeSpec, Probe, ReadyCheck, ReadySpec, ServiceSpec, Spec};
use minder_core::spec as core;
use minder_core::supervisor::{ServiceId, Supervisor};
use std::collections::HashMap;

/// The core's view of `spec`, and the probe targets its `ProbeId`s index.
pub fn lower(spec: &Spec) -> (core::Spec, Vec<Probe>) {
    let mut probes = Vec::new();
    let core = core::Spec {
        shutdown_timeout: spec.daemon.shutdown_timeout,
        drain_delay: spec.daemon.drain_delay,
        root: spec
            .root
            .map_services(&mut |service| lower_service(service, &mut probes)),
        // Container mode is the runtime's to set: the file says nothing about it.
        signals: core::SignalMode::Supervise,
    };
    (core, probes)
}

fn lower_service(service: &ServiceSpec, probes: &mut Vec<Probe>) -> core::ServiceSpec {
    core::ServiceSpec {
        name: service.name.clone(),
        base_name: service.base_name.clone(),
        instance: service.instance,
        // The config gives a oneshot the transient restart type; the core has no use
        // for it, as a oneshot's rule is its own.
        kind: if service.oneshot {
            core::ServiceKind::Oneshot
        } else {
            core::ServiceKind::Longrun(service.restart)
        },
        success_codes: service.success_codes.clone(),
        success_signals: service.success_signals.clone(),
        significant: service.significant,
        backoff: service.backoff,
        stop_signal: service.stop_signal,
        stop_timeout: service.stop_timeout,
        ready: service
            .ready
            .as_ref()
            .map(|ready| lower_ready(ready, probes)),
        health: service
            .health
            .as_ref()
            .map(|health| lower_health(health, probes)),
        watchdog: service.watchdog,
    }
}

fn lower_ready(ready: &ReadySpec, probes: &mut Vec<Probe>) -> core::ReadySpec {
    let check = match &ready.check {
        ReadyCheck::Probe(probe) => core::ReadyCheck::Probe {
            probe: add_probe(probes, probe, ready.timeout),
            interval: ready.interval,
        },
        ReadyCheck::Notify | ReadyCheck::Fd(_) => core::ReadyCheck::Reported,
    };
    core::ReadySpec {
        check,
        deadline: ready.deadline,
    }
}

fn lower_health(health: &HealthSpec, probes: &mut Vec<Probe>) -> core::HealthSpec {
    core::HealthSpec {
        probe: health
            .probe
            .as_ref()
            .map(|probe| add_probe(probes, probe, health.timeout)),
        interval: health.interval,
        start_period: health.start_period,
        failures: health.failures,
        max_memory: health.max_memory,
    }
}

fn add_probe(
    probes: &mut Vec<Probe>,
    probe: &Probe,
    timeout: std::time::Duration,
) -> core::ProbeSpec {
    probes.push(probe.clone());
    let grace = match probe {
        Probe::Tcp { .. } | Probe::Http { .. } => NETWORK_PROBE_GRACE,
        Probe::Exec { .. } => std::time::Duration::ZERO,
    };
    core::ProbeSpec {
        id: core::ProbeId(probes.len() - 1),
        timeout,
        grace,
    }
}

/// A network probe bounds itself by its timeout and reports why it ran out (see
/// `health`); the core waits this much longer for that report before its own
/// deadline cancels the probe (`minder_core::spec::ProbeSpec::grace`).
const NETWORK_PROBE_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// What the runtime keeps beside the core: each service's whole spec by the id the
/// core gave it, and the probe targets by the ids `lower` gave them. Built once from
/// the spec the core was built from; read-only afterwards.
#[derive(Debug)]
pub struct ProcessTable {
    services: HashMap<ServiceId, ServiceSpec>,
    probes: Vec<Probe>,
}

impl ProcessTable {
    /// Pair every service of `supervisor` (built from `lower(&spec)`) with its spec in
    /// `spec`, by name (names are unique in a tree); `probes` is what `lower` returned.
    /// Takes the spec, so the runtime keeps one copy of each service's spec, not two.
    pub fn new(spec: Spec, probes: Vec<Probe>, supervisor: &Supervisor) -> ProcessTable {
        let mut by_name: HashMap<String, ServiceSpec> = HashMap::new();
        collect(spec.root, &mut by_name);
        let services = supervisor
            .services()
            .filter_map(|(id, name)| Some((id, by_name.remove(name)?)))
            .collect();
        ProcessTable { services, probes }
    }

    /// After a reload: keeps from the table `old` the specs of `ids`, services the
    /// reload removed that are still stopping (their last log lines need a name).
    pub fn carry_over(&mut self, mut old: ProcessTable, ids: &[ServiceId]) {
        for id in ids {
            if let Some(spec) = old.services.remove(id) {
                self.services.entry(*id).or_insert(spec);
            }
        }
    }

    pub fn service(&self, id: ServiceId) -> Option<&ServiceSpec> {
        self.services.get(&id)
    }

    pub fn probe(&self, id: core::ProbeId) -> Option<&Probe> {
        self.probes.get(id.0)
    }

    /// The service's name, for log lines (`?` for an id the core never gave out).
    pub fn name(&self, id: ServiceId) -> &str {
        self.service(id)
            .map_or("?", |service| service.name.as_str())
    }
}

fn collect(group: GroupSpec, into: &mut HashMap<String, ServiceSpec>) {
    for child in group.children {
        match child {
            NodeSpec::Service(service) => {
                into.insert(service.name.clone(), service);
            }
            NodeSpec::Group(inner) => collect(inner, into),
        }
    }
}
