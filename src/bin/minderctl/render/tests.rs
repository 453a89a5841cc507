//! The layouts, on answers written as minder sends them (JSON), so the tests also pin
//! that the protocol's shapes decode. `UPDATE_EXPECT=1` refreshes the snapshots.

use super::*;
use expect_test::expect;
use serde_json::json;

fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid answer")
}

fn service(name: &str, group: &str, state: &str) -> serde_json::Value {
    json!({
        "name": name, "group": group, "kind": "service", "state": state,
        "pid": null, "uptime_seconds": null, "restarts": 0, "last_exit": null,
        "last_check": null, "reason": null, "stopping": null
    })
}

fn group(name: &str, parent: Option<&str>) -> serde_json::Value {
    json!({
        "name": name, "parent": parent, "strategy": "one_for_one",
        "restarts_in_period": 0, "intensity": 5, "period_seconds": 30.0, "state": "up"
    })
}

fn minder() -> serde_json::Value {
    json!({"pid": 1, "version": "0.1.0", "uptime_seconds": 11_520.0, "phase": "running"})
}

#[test]
fn durations_are_shown_to_the_unit_that_matters() {
    let shown: Vec<String> = [
        0.0, 4.9, 59.99, 60.0, 725.0, 3599.0, 11_520.0, 86_399.0, 183_600.0,
    ]
    .into_iter()
    .map(human_duration)
    .collect();
    assert_eq!(
        shown,
        [
            "0s", "4s", "59s", "1m00s", "12m05s", "59m59s", "3h12m", "23h59m", "2d03h"
        ]
    );
    assert_eq!(short_duration(4.12), "4.1s");
    assert_eq!(short_duration(125.0), "2m05s");
    // Values minder never sends still print something rather than panic.
    assert_eq!(human_duration(-3.0), "0s");
    assert_eq!(human_duration(f64::NAN), "0s");
    assert_eq!(short_duration(f64::INFINITY), "0s");
}

#[test]
fn the_status_table_is_a_tree_aligned_to_the_longest_name() {
    let mut db = service("db", "root", "running");
    db["pid"] = json!(4121);
    db["uptime_seconds"] = json!(11_520.4);
    db["last_check"] = json!({"kind": "health", "passed": true, "detail": "", "seconds_ago": 2.0});
    let mut cache = service("cache", "backend", "backoff");
    cache["restarts"] = json!(3);
    cache["last_exit"] = json!({"code": 1});
    cache["reason"] = json!("exited with code 1");
    let mut api = service("api.0", "backend", "stopping");
    api["pid"] = json!(4188);
    api["uptime_seconds"] = json!(725.0);
    api["last_exit"] = json!({"signal": "KILL"});
    api["last_check"] =
        json!({"kind": "ready", "passed": false, "detail": "refused", "seconds_ago": 1.0});
    api["stopping"] = json!({"since_seconds": 4.1, "kill_in_seconds": 5.9});
    api["reason"] = json!("shutdown");
    let mut backend = group("backend", Some("root"));
    backend["strategy"] = json!("rest_for_one");
    backend["restarts_in_period"] = json!(2);
    backend["intensity"] = json!(3);
    backend["period_seconds"] = json!(10.0);
    let status: StatusResult = decode(json!({
        "services": [db, cache, api],
        "groups": [group("root", None), backend],
        "minder": minder(),
    }));
    expect![[r#"
        minder 0.1.0, pid 1, up 3h12m, running
        NAME       KIND     STATE     PID   UPTIME  RESTARTS    EXIT     CHECK
                   REASON
        root       group    up        -     -       0/5 in 30s  -        -
                   one_for_one
          db       service  running   4121  3h12m   0           -        healthy    -
          backend  group    up        -     -       2/3 in 10s  -        -
                   rest_for_one
            cache  service  backoff   -     -       3           1        -
                   exited with code 1
            api.0  service  stopping  4188  12m05s  0           SIGKILL  not ready
                   stopping 4.1s, kill in 5.9s; shutdown
    "#]]
    .assert_eq(&status_table(&status));
}

#[test]
fn a_status_of_part_of_the_tree_starts_at_the_left_edge() {
    let status: StatusResult = decode(json!({
        "services": [service("cache", "backend", "running"), service("web.0", "root", "waiting")],
        "groups": [group("backend", Some("root"))],
        "minder": minder(),
    }));
    expect![[r#"
        minder 0.1.0, pid 1, up 3h12m, running
        NAME     KIND     STATE    PID  UPTIME  RESTARTS    EXIT  CHECK  REASON
        backend  group    up       -    -       0/5 in 30s  -     -      one_for_one
          cache  service  running  -    -       0           -     -      -
        web.0    service  waiting  -    -       0           -     -      -
    "#]]
    .assert_eq(&status_table(&status));
}

#[test]
fn a_parent_cycle_in_a_malformed_answer_does_not_hang_the_table() {
    let status: StatusResult = decode(json!({
        "services": [service("x", "a", "running")],
        "groups": [group("a", Some("b")), group("b", Some("a"))],
        "minder": minder(),
    }));
    let table = status_table(&status);
    assert!(table.contains("x  "), "{table}");
}

/// Regression: only the columns before REASON were measured, and every group row (its
/// strategy and budget in REASON) was 102 columns wide.
#[test]
fn a_typical_table_fits_in_80_columns() {
    let mut services = Vec::new();
    for (name, group_name, reason) in [
        ("postgres", "root", "stopped by request"),
        ("redis", "backend", "exited with code 1"),
        ("api.0", "backend", "health check failed"),
        ("api.1", "backend", "-"),
        ("worker", "jobs", "killed by SIGKILL"),
    ] {
        let mut entry = service(name, group_name, "running");
        entry["pid"] = json!(1_234_567);
        entry["uptime_seconds"] = json!(200_000.0);
        entry["restarts"] = json!(12);
        entry["last_exit"] = json!({"code": 137});
        entry["last_check"] =
            json!({"kind": "health", "passed": false, "detail": "", "seconds_ago": 1.0});
        entry["reason"] = json!(reason);
        services.push(entry);
    }
    let mut backend = group("backend", Some("root"));
    backend["strategy"] = json!("rest_for_one");
    backend["restarts_in_period"] = json!(2);
    backend["intensity"] = json!(10);
    backend["period_seconds"] = json!(60.0);
    let status: StatusResult = decode(json!({
        "services": services,
        "groups": [group("root", None), backend, group("jobs", Some("backend"))],
        "minder": minder(),
    }));
    let table = status_table(&status);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns:\n{line}\n{table}",
            line.chars().count()
        );
    }
}

#[test]
fn events_read_as_sentences() {
    let exited: EventItem = decode(json!({
        "time": "2026-11-29T13:02:11.123Z", "event": "exited", "service": "api",
        "pid": 4188, "signal": "KILL", "reason": "health check failed"
    }));
    let scheduled: EventItem = decode(json!({
        "time": "2026-11-29T13:02:11.124Z", "event": "restart_scheduled", "service": "api",
        "delay_seconds": 0.2
    }));
    let escalated: EventItem = decode(json!({
        "time": "2026-11-29T13:02:12.000Z", "event": "escalated", "group": "backend"
    }));
    let reload: EventItem = decode(json!({"time": "2026-11-29T13:02:13.000Z", "event": "reload"}));
    let shown: Vec<String> = [exited, scheduled, escalated, reload]
        .iter()
        .map(event_line)
        .collect();
    expect![[r#"
        [
            "2026-11-29T13:02:11.123Z exited            api: pid 4188, SIGKILL, health check failed",
            "2026-11-29T13:02:11.124Z restart_scheduled api: in 0.2s",
            "2026-11-29T13:02:12.000Z escalated         group backend",
            "2026-11-29T13:02:13.000Z reload            minder",
        ]
    "#]]
    .assert_debug_eq(&shown);
}

#[test]
fn log_lines_are_prefixed_only_when_several_services_are_covered() {
    let item: LogItem =
        decode(json!({"service": "web.1", "stream": "stdout", "line": "GET /", "time": null}));
    let one = LogPrefix::for_services(&["web.1".to_string()]);
    assert_eq!(one.line(&item), "GET /");
    let several =
        LogPrefix::for_services(&["db".to_string(), "web.1".to_string(), "web.10".to_string()]);
    assert_eq!(several.line(&item), "web.1  | GET /");
}

#[test]
fn the_reload_plan_names_the_keys_and_the_report_the_outcomes() {
    let changes = json!([
        {"name": "api", "kind": "service", "action": "restart",
         "keys": ["service.api.command", "service.api.env"], "outcome": "planned"},
        {"name": "worker", "kind": "service", "action": "start", "keys": ["service.worker"],
         "outcome": "planned"},
        {"name": "backend", "kind": "group", "action": "update", "keys": [], "outcome": "planned"}
    ]);
    let plan: ReloadResult = decode(json!({"dry_run": true, "changes": changes}));
    expect![[r#"
        ACTION   KIND     NAME     KEYS
        restart  service  api      service.api.command, service.api.env
        start    service  worker   service.worker
        update   group    backend  -
        dry run: nothing was changed
    "#]]
    .assert_eq(&reload_report(&plan));
    assert_eq!(failed_changes(&plan), 0);

    let mut applied = plan.clone();
    applied.dry_run = false;
    applied.changes[0].outcome = "ready".to_string();
    applied.changes[1].outcome = "failed: exited with code 1".to_string();
    applied.changes[2].outcome = "ready".to_string();
    expect![[r#"
        ACTION   KIND     NAME     OUTCOME                     KEYS
        restart  service  api      ready                       service.api.command, service.api.env
        start    service  worker   failed: exited with code 1  service.worker
        update   group    backend  ready                       -
    "#]]
    .assert_eq(&reload_report(&applied));
    assert_eq!(failed_changes(&applied), 1);

    let nothing: ReloadResult = decode(json!({"dry_run": false, "changes": []}));
    assert_eq!(
        reload_report(&nothing),
        "no changes: the running tree matches the config file\n"
    );
}

#[test]
fn a_command_answer_names_what_it_acted_on() {
    let done: DoneResult = decode(json!({"done": true, "affected": ["web.0", "web.1"]}));
    assert_eq!(done_line("stop web", &done), "stop web: web.0, web.1");
    let none: DoneResult = decode(json!({"done": true, "affected": []}));
    assert_eq!(done_line("start api", &none), "start api: nothing to do");
}
