//! Tests of `lower` and `ProcessTable`: the core gets exactly what supervision needs
//! from each key, and the runtime finds the rest by the ids the core hands back.

use super::{NodeSpec, Probe, ProcessTable, ServiceSpec, Spec, lower};
use crate::config::load_str;
use minder_core::spec::{
    self as core, AutoShutdown, ProbeSpec, ReadyCheck, RestartType, ServiceKind, Strategy,
};
use minder_core::supervisor::Supervisor;
use std::path::Path;
use std::time::Duration;

fn load(source: &str) -> Spec {
    match load_str(source, "test.toml", Path::new("/srv")) {
        Ok(spec) => spec,
        Err(errors) => panic!("test config is invalid:\n{errors}"),
    }
}

/// A tree that uses every key the core reads, and some it must not see.
const TREE: &str = r#"
[daemon]
shutdown_timeout = "7s"

[root]
strategy = "rest_for_one"
intensity = 9
period = "40s"
auto_shutdown = "any_significant"
children = ["setup", "web", "back", "main"]

[group.back]
strategy = "one_for_all"
intensity = 2
period = "5s"
restart = "temporary"
significant = true
children = ["db", "cache"]

[service.setup]
command = "migrate --all"
oneshot = true
success_codes = [0, 3]

[service.web]
command = ["web", "--port", "80"]
instances = 2
user = "nobody"
env = { A = "1" }
stop_signal = "SIGINT"
stop_timeout = "4s"
backoff = { initial = "1s", max = "9s", multiplier = 3.0, jitter = 0.5, reset_after = "1m" }
ready = { http = "http://127.0.0.1:80/ready", interval = "250ms", timeout = "2s", deadline = "20s" }
health = { tcp = "127.0.0.1:80", interval = "5s", timeout = "1500ms", start_period = "8s", failures = 4, max_memory = "1MiB" }

[service.db]
command = "db"
restart = "transient"
success_signals = ["SIGUSR1"]
ready = { notify = true, deadline = "30s" }
watchdog = "12s"
health = { max_memory = 4096 }

[service.cache]
command = "cache"
ready = { fd = 3 }
health = { exec = ["cache-check", "-q"] }

[service.main]
command = "app"
restart = "temporary"
significant = true
"#;

fn services(group: &core::GroupSpec) -> Vec<&core::ServiceSpec> {
    group
        .children
        .iter()
        .flat_map(|child| match child {
            core::NodeSpec::Service(service) => vec![service],
            core::NodeSpec::Group(inner) => services(inner),
        })
        .collect()
}

fn full_services(group: &super::GroupSpec) -> Vec<&ServiceSpec> {
    group
        .children
        .iter()
        .flat_map(|child| match child {
            NodeSpec::Service(service) => vec![service],
            NodeSpec::Group(inner) => full_services(inner),
        })
        .collect()
}

#[test]
fn lower_keeps_the_tree_its_groups_and_the_shutdown_bound() {
    let (core, _) = lower(&load(TREE));
    assert_eq!(core.shutdown_timeout, Duration::from_secs(7));
    let root = &core.root;
    assert_eq!(
        (
            root.name.as_str(),
            root.strategy,
            root.intensity,
            root.period
        ),
        ("root", Strategy::RestForOne, 9, Duration::from_secs(40))
    );
    assert_eq!(root.auto_shutdown, AutoShutdown::AnySignificant);
    let names: Vec<&str> = root
        .children
        .iter()
        .map(|child| match child {
            core::NodeSpec::Service(service) => service.name.as_str(),
            core::NodeSpec::Group(group) => group.name.as_str(),
        })
        .collect();
    assert_eq!(names, ["setup", "web.0", "web.1", "back", "main"]);
    let core::NodeSpec::Group(back) = &root.children[3] else {
        panic!("back is not a group: {:?}", root.children[3]);
    };
    assert_eq!(
        (back.strategy, back.intensity, back.period),
        (Strategy::OneForAll, 2, Duration::from_secs(5))
    );
    assert_eq!(back.auto_shutdown, AutoShutdown::Never);
    assert_eq!(
        (back.restart, back.significant),
        (RestartType::Temporary, true)
    );
    let core::NodeSpec::Service(db) = &back.children[0] else {
        panic!("db is not a service: {:?}", back.children[0]);
    };
    assert_eq!(db.success_signals, [libc::SIGUSR1]);
    let core::NodeSpec::Service(setup) = &root.children[0] else {
        panic!("setup is not a service: {:?}", root.children[0]);
    };
    assert_eq!(
        setup.success_signals,
        [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE]
    );
}

#[test]
fn lower_gives_a_oneshot_no_restart_type_and_keeps_the_others() {
    let (core, _) = lower(&load(TREE));
    let kinds: Vec<(&str, ServiceKind, bool)> = services(&core.root)
        .into_iter()
        .map(|service| (service.name.as_str(), service.kind, service.significant))
        .collect();
    assert_eq!(
        kinds,
        [
            ("setup", ServiceKind::Oneshot, false),
            ("web.0", ServiceKind::Longrun(RestartType::Permanent), false),
            ("web.1", ServiceKind::Longrun(RestartType::Permanent), false),
            ("db", ServiceKind::Longrun(RestartType::Transient), false),
            ("cache", ServiceKind::Longrun(RestartType::Permanent), false),
            ("main", ServiceKind::Longrun(RestartType::Temporary), true),
        ]
    );
    let setup = services(&core.root)[0];
    assert_eq!(setup.success_codes, [0, 3]);
}

#[test]
fn lower_keeps_instances_stop_and_backoff() {
    let full = load(TREE);
    let (core, _) = lower(&full);
    let web = services(&core.root)[1];
    assert_eq!(
        (web.name.as_str(), web.base_name.as_str(), web.instance),
        ("web.0", "web", Some(0))
    );
    assert_eq!(services(&core.root)[2].instance, Some(1));
    assert_eq!(web.stop_signal, libc::SIGINT);
    assert_eq!(web.stop_timeout, Duration::from_secs(4));
    assert_eq!(web.backoff, full_services(&full.root)[1].backoff);
    assert_eq!(web.backoff.multiplier, 3.0);
}

#[test]
fn lower_turns_each_check_into_timings_and_a_probe_id() {
    let full = load(TREE);
    let (core, probes) = lower(&full);
    let all = services(&core.root);
    let target = |probe: ProbeSpec| probes[probe.id.0].clone();

    // web: an http ready probe and a tcp health probe, with their own timings.
    let ready = all[1].ready.expect("web has a ready check");
    let ReadyCheck::Probe { probe, interval } = ready.check else {
        panic!("web's ready check is not a probe: {ready:?}");
    };
    assert_eq!(interval, Duration::from_millis(250));
    assert_eq!(probe.timeout, Duration::from_secs(2));
    assert_eq!(ready.deadline, Duration::from_secs(20));
    assert_eq!(
        target(probe),
        Probe::Http {
            url: "http://127.0.0.1:80/ready".into()
        }
    );
    let health = all[1].health.expect("web has a health check");
    let probe = health.probe.expect("web has a health probe");
    assert_eq!(probe.timeout, Duration::from_millis(1500));
    assert_eq!(
        target(probe),
        Probe::Tcp {
            address: "127.0.0.1:80".into()
        }
    );
    assert_eq!(
        (health.interval, health.start_period, health.failures),
        (Duration::from_secs(5), Duration::from_secs(8), 4)
    );
    assert_eq!(health.max_memory, Some(1024 * 1024));
    // Each instance has its own probes (the same targets).
    assert_ne!(all[1].ready, all[2].ready);

    // db: notify readiness is reported, memory alone needs no probe.
    let db = all[3];
    assert_eq!(db.ready.map(|r| r.check), Some(ReadyCheck::Reported));
    assert_eq!(db.ready.map(|r| r.deadline), Some(Duration::from_secs(30)));
    assert_eq!(db.watchdog, Some(Duration::from_secs(12)));
    assert_eq!(
        db.health.map(|h| (h.probe, h.max_memory)),
        Some((None, Some(4096)))
    );

    // cache: fd readiness is reported too; its exec health probe keeps its argv.
    let cache = all[4];
    assert_eq!(cache.ready.map(|r| r.check), Some(ReadyCheck::Reported));
    let probe = cache.health.and_then(|h| h.probe).expect("cache's probe");
    assert_eq!(
        target(probe),
        Probe::Exec {
            command: vec!["cache-check".into(), "-q".into()]
        }
    );

    // Nothing else has checks, and every probe target is used exactly once.
    assert!(all[0].ready.is_none() && all[0].health.is_none());
    assert!(all[5].ready.is_none() && all[5].health.is_none());
    assert_eq!(probes.len(), 5);
}

#[test]
fn the_process_table_holds_every_service_by_the_id_the_core_gave_it() {
    let full = load(TREE);
    let (core, probes) = lower(&full);
    let supervisor = Supervisor::new(&core, 1);
    let table = ProcessTable::new(full.clone(), probes, &supervisor);
    let mut seen = 0;
    for (id, name) in supervisor.services() {
        let service = table
            .service(id)
            .unwrap_or_else(|| panic!("no process spec for {name}"));
        assert_eq!(service.name, name);
        assert_eq!(table.name(id), name);
        seen += 1;
    }
    assert_eq!(seen, full_services(&full.root).len());
    // The full spec is what the runtime starts from: argv, identity, environment.
    let web = supervisor
        .services()
        .find(|(_, name)| *name == "web.1")
        .map(|(id, _)| id)
        .expect("web.1 has an id");
    let web = table.service(web).expect("web.1's spec");
    assert_eq!(web.command, ["web", "--port", "80"]);
    assert_eq!(web.user.as_deref(), Some("nobody"));
    assert_eq!(web.env, [("A".to_string(), "1".to_string())]);
    assert_eq!(web.instance, Some(1));
}

#[test]
fn the_process_table_finds_each_probe_the_core_names() {
    let full = load(TREE);
    let (core, probes) = lower(&full);
    let supervisor = Supervisor::new(&core, 1);
    let table = ProcessTable::new(full.clone(), probes.clone(), &supervisor);
    for (index, probe) in probes.iter().enumerate() {
        assert_eq!(table.probe(core::ProbeId(index)), Some(probe));
    }
    assert_eq!(table.probe(core::ProbeId(probes.len())), None);
}
