//! Tests of `diff`: each kind of edit to a file gives exactly the changes and keys a
//! user would expect, and nothing for what does not change.

use super::{Applies, GroupAction, Plan, ServiceAction, diff};
use crate::config::load_str;
use crate::spec::Spec;
use std::path::Path;

fn load(source: &str) -> Spec {
    match load_str(source, "test.toml", Path::new("/srv")) {
        Ok(spec) => spec,
        Err(errors) => panic!("test config is invalid:\n{errors}"),
    }
}

fn plan(old: &str, new: &str) -> Plan {
    diff(&load(old), &load(new))
}

/// The plan as short lines, `action name: keys`, for readable assertions.
fn lines(plan: &Plan) -> Vec<String> {
    let services = plan.services.iter().map(|change| {
        format!(
            "{} {}: {}",
            change.action.as_str(),
            change.name,
            change.keys.join(" ")
        )
    });
    let groups = plan.groups.iter().map(|change| {
        format!(
            "{} group {}: {}",
            change.action.as_str(),
            change.name,
            change.keys.join(" ")
        )
    });
    let daemon = plan.daemon.iter().map(|change| {
        let when = match change.applies {
            Applies::Now => "now",
            Applies::AfterRestart => "after restart",
        };
        format!("daemon {} ({when})", change.key)
    });
    services.chain(groups).chain(daemon).collect()
}

const THREE: &str = r#"
[service.a]
command = "sleep 100"

[service.b]
command = "sleep 100"
env = { PORT = "80", MODE = "x" }

[service.c]
command = "sleep 100"
"#;

#[test]
fn the_same_file_is_an_empty_plan() {
    let plan = plan(THREE, THREE);
    assert!(plan.is_empty(), "{:?}", lines(&plan));
}

#[test]
fn comments_order_of_env_and_defaults_written_out_change_nothing() {
    let new = r#"
# a comment
[service.a]
command = ["sleep", "100"]
restart = "always"
stop_timeout = "10s"

[service.b]
env = { MODE = "x", PORT = "80" }
command = "sleep 100"

[service.c]
command = "sleep 100"
backoff = { initial = "100ms" }
"#;
    let plan = plan(THREE, new);
    assert!(plan.is_empty(), "{:?}", lines(&plan));
}

#[test]
fn a_changed_command_restarts_that_service_only() {
    let new = THREE.replacen("sleep 100", "sleep 200", 1);
    let plan = plan(THREE, &new);
    assert_eq!(lines(&plan), ["restart a: service.a.command"]);
    assert_eq!(plan.restart_names(), ["a"]);
}

#[test]
fn env_changes_name_each_variable() {
    let new = THREE.replace(
        r#"env = { PORT = "80", MODE = "x" }"#,
        r#"env = { PORT = "81", EXTRA = "1" }"#,
    );
    let plan = plan(THREE, &new);
    assert_eq!(
        lines(&plan),
        ["restart b: service.b.env.PORT service.b.env.EXTRA service.b.env.MODE"]
    );
}

#[test]
fn added_and_removed_services() {
    let new = r#"
[service.a]
command = "sleep 100"

[service.c]
command = "sleep 100"

[service.d]
command = "sleep 100"
"#;
    let plan = plan(THREE, new);
    assert_eq!(lines(&plan), ["stop b: service.b", "start d: service.d"]);
    assert!(plan.restart_names().is_empty());
    let starting: Vec<&str> = plan.starting().map(|c| c.name.as_str()).collect();
    assert_eq!(starting, ["d"]);
}

#[test]
fn removed_services_stop_last_started_first() {
    let plan = plan(THREE, "[service.z]\ncommand = \"true\"\n");
    assert_eq!(
        lines(&plan),
        [
            "stop c: service.c",
            "stop b: service.b",
            "stop a: service.a",
            "start z: service.z"
        ]
    );
}

#[test]
fn instances_added_and_removed_are_named_by_the_instances_key() {
    let old = "[service.web]\ncommand = \"sleep 100\"\ninstances = 3\n";
    let fewer = "[service.web]\ncommand = \"sleep 100\"\ninstances = 2\n";
    assert_eq!(
        lines(&plan(old, fewer)),
        ["stop web.2: service.web.instances"]
    );
    assert_eq!(
        lines(&plan(fewer, old)),
        ["start web.2: service.web.instances"]
    );
    // A change to the table restarts every instance, each by the key as written.
    let changed = old.replace("sleep 100", "sleep 5");
    assert_eq!(
        lines(&plan(old, &changed)),
        [
            "restart web.0: service.web.command",
            "restart web.1: service.web.command",
            "restart web.2: service.web.command"
        ]
    );
}

#[test]
fn every_kind_of_service_key_is_named() {
    let old = r#"
[service.s]
command = "sleep 100"
ready = { tcp = "127.0.0.1:1", interval = "1s" }
health = { exec = "true", failures = 3 }
rlimits = { nofile = 100 }
backoff = { max = "10s" }
"#;
    let new = r#"
[service.s]
command = "sleep 100"
working_dir = "/tmp"
user = "nobody"
umask = "0027"
stop_signal = "INT"
success_codes = [0, 1]
ready = { http = "http://127.0.0.1:1/", interval = "2s" }
health = { exec = "true", failures = 4, max_memory = "1MiB" }
rlimits = { nofile = 200, core = 0 }
backoff = { max = "10s", jitter = 0.5 }
"#;
    assert_eq!(
        lines(&plan(old, new)),
        [
            "restart s: service.s.working_dir service.s.user service.s.umask \
          service.s.rlimits.nofile service.s.rlimits.core service.s.stop_signal \
          service.s.success_codes service.s.backoff.jitter service.s.ready.http \
          service.s.ready.tcp service.s.ready.interval service.s.health.failures \
          service.s.health.max_memory"
        ]
    );
}

const GROUPS: &str = r#"
[root]
children = ["front", "back"]

[group.front]
children = ["web"]

[group.back]
strategy = "one_for_all"
children = ["db", "cache"]

[service.web]
command = "sleep 100"

[service.db]
command = "sleep 100"

[service.cache]
command = "sleep 100"
"#;

#[test]
fn a_group_budget_change_updates_the_group_and_restarts_no_child() {
    let new = GROUPS.replace(
        "strategy = \"one_for_all\"",
        "strategy = \"rest_for_one\"\nintensity = 9\nperiod = \"1m\"",
    );
    let plan = plan(GROUPS, &new);
    assert_eq!(
        lines(&plan),
        ["update group back: group.back.strategy group.back.intensity group.back.period"]
    );
    assert!(plan.restart_names().is_empty());
}

#[test]
fn the_root_is_named_root() {
    let new = GROUPS.replace(
        "children = [\"front\", \"back\"]",
        "children = [\"back\", \"front\"]\nstrategy = \"one_for_all\"",
    );
    assert_eq!(
        lines(&plan(GROUPS, &new)),
        ["update group root: root.strategy root.children"]
    );
}

#[test]
fn a_service_moved_to_another_group_is_a_move_named_by_its_new_listing() {
    let new = GROUPS
        .replace("children = [\"web\"]", "children = [\"web\", \"cache\"]")
        .replace("children = [\"db\", \"cache\"]", "children = [\"db\"]");
    assert_eq!(
        lines(&plan(GROUPS, &new)),
        ["move cache: group.front.children"]
    );
}

#[test]
fn a_moved_group_moves_everything_under_it() {
    let new = GROUPS
        .replace("children = [\"front\", \"back\"]", "children = [\"front\"]")
        .replace("children = [\"web\"]", "children = [\"web\", \"back\"]");
    assert_eq!(
        lines(&plan(GROUPS, &new)),
        [
            "move db: group.front.children",
            "move cache: group.front.children",
            "move group back: group.front.children"
        ]
    );
}

#[test]
fn a_moved_service_that_also_changed_names_both_causes() {
    let new = GROUPS
        .replace("children = [\"web\"]", "children = [\"web\", \"cache\"]")
        .replace("children = [\"db\", \"cache\"]", "children = [\"db\"]")
        .replace(
            "[service.cache]\ncommand = \"sleep 100\"",
            "[service.cache]\ncommand = \"sleep 7\"",
        );
    assert_eq!(
        lines(&plan(GROUPS, &new)),
        ["move cache: group.front.children service.cache.command"]
    );
}

#[test]
fn added_and_removed_groups() {
    let new = r#"
[root]
children = ["front", "extra"]

[group.front]
children = ["web"]

[group.extra]
children = ["db"]

[service.web]
command = "sleep 100"

[service.db]
command = "sleep 100"
"#;
    assert_eq!(
        lines(&plan(GROUPS, new)),
        [
            "stop cache: service.cache",
            "move db: group.extra.children",
            "remove group back: group.back",
            "add group extra: group.extra"
        ]
    );
}

#[test]
fn daemon_keys_say_whether_they_apply_now() {
    let old = "[daemon]\nshutdown_timeout = \"5s\"\n[service.a]\ncommand = \"true\"\n";
    let new = r#"
[daemon]
shutdown_timeout = "6s"
log_format = "json"
state_file = "/tmp/state.json"
[service.a]
command = "true"
"#;
    assert_eq!(
        lines(&plan(old, new)),
        [
            "daemon daemon.shutdown_timeout (now)",
            "daemon daemon.state_file (now)",
            "daemon daemon.log_format (after restart)"
        ]
    );
}

#[test]
fn a_service_turned_into_a_group_is_a_stop_and_an_add() {
    let old = "[service.x]\ncommand = \"true\"\n";
    let new = r#"
[group.x]
children = ["y"]
[service.y]
command = "true"
"#;
    assert_eq!(
        lines(&plan(old, new)),
        [
            "stop x: service.x",
            "start y: service.y",
            "add group x: group.x"
        ]
    );
    assert_eq!(plan(old, new).services[0].action, ServiceAction::Stop);
    assert_eq!(plan(old, new).groups[0].action, GroupAction::Add);
}

#[test]
fn every_shipped_config_is_an_empty_plan_against_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in ["example.toml", "reference.toml", "sidecars.toml"] {
        let path = root.join(name);
        let spec = match crate::config::load(&path) {
            Ok(spec) => spec,
            Err(errors) => panic!("{name} is invalid:\n{errors}"),
        };
        let plan = diff(&spec, &spec.clone());
        assert!(plan.is_empty(), "{name}: {:?}", lines(&plan));
    }
}
