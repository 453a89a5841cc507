//! Every control command through the real binary and a real socket, each response
//! parsed as JSON: status, stop/start (a stop holds through the group's restarts),
//! restart (not counted against the budget), signal, logs, events, reload (its own
//! tests are in reload.rs), shutdown.

mod common;

use common::{Minder, PATIENCE, is_alive, pid_then_sleep, sh_service, wait_for};
use serde_json::{Value, json};

fn ok(response: &Value) -> &Value {
    assert_eq!(response["ok"], true, "not ok: {response}");
    assert_eq!(response["v"], 1, "{response}");
    &response["result"]
}

fn error_kind(response: &Value) -> &str {
    assert_eq!(response["ok"], false, "not an error: {response}");
    response["error"]["kind"].as_str().expect("a kind")
}

fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|service| service["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

fn state_of(minder: &Minder, name: &str) -> String {
    let status = minder.control("status", json!({"names": [name]}));
    service(ok(&status), name)["state"]
        .as_str()
        .expect("a state")
        .to_string()
}

#[test]
fn status_describes_services_groups_and_minder() {
    let config = format!(
        "[root]\nchildren = [\"api\", \"backend\"]\n[group.backend]\nstrategy = \"rest_for_one\"\nintensity = 3\nperiod = \"10s\"\nchildren = [\"web\"]\n{}{}",
        sh_service("api", &pid_then_sleep("api"), ""),
        sh_service("web", "exec sleep 1000", "instances = 2"),
    );
    let minder = Minder::run(&config);
    let api = minder.wait_pid("api", None);
    assert!(wait_for(PATIENCE, || state_of(&minder, "web.1") == "running"));

    let response = minder.control("status", json!({}));
    let status = ok(&response);
    let row = service(status, "api");
    assert_eq!(row["state"], "running");
    assert_eq!(row["pid"], api);
    assert_eq!(row["group"], "root");
    assert_eq!(row["kind"], "service");
    assert_eq!(row["restarts"], 0);
    assert!(row["uptime_seconds"].as_f64().expect("uptime") >= 0.0);
    assert_eq!(row["last_exit"], Value::Null);
    assert_eq!(service(status, "web.0")["group"], "backend");
    let backend = status["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|group| group["name"] == "backend")
        .expect("the backend group");
    assert_eq!(backend["parent"], "root");
    assert_eq!(backend["strategy"], "rest_for_one");
    assert_eq!(backend["intensity"], 3);
    assert_eq!(backend["period_seconds"], 10.0);
    assert_eq!(status["minder"]["pid"], minder.pid());
    assert_eq!(status["minder"]["phase"], "running");

    // Names narrow it down: all instances of a service, or everything in a group.
    let response = minder.control("status", json!({"names": ["web"]}));
    let names: Vec<&str> = ok(&response)["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|service| service["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["web.0", "web.1"]);
    let response = minder.control("status", json!({"names": ["backend"]}));
    assert_eq!(
        ok(&response)["services"]
            .as_array()
            .expect("services")
            .len(),
        2
    );

    let response = minder.control("status", json!({"names": ["apx"]}));
    assert_eq!(error_kind(&response), "unknown_name");
    let message = response["error"]["message"].as_str().expect("message");
    assert!(message.contains("did you mean \"api\""), "{message}");
}

#[test]
fn a_stopped_service_stays_down_through_its_groups_restart_until_started() {
    let config = format!(
        "[root]\nstrategy = \"one_for_all\"\n{}{}",
        sh_service("held", &pid_then_sleep("held"), ""),
        sh_service("sibling", &pid_then_sleep("sibling"), ""),
    );
    let minder = Minder::run(&config);
    let held = minder.wait_pid("held", None);
    let sibling = minder.wait_pid("sibling", None);

    let response = minder.control("stop", json!({"name": "held"}));
    assert_eq!(ok(&response)["affected"], json!(["held"]));
    assert!(wait_for(PATIENCE, || !common::is_alive(held)));
    assert!(wait_for(PATIENCE, || state_of(&minder, "held") == "stopped"));
    let status = minder.control("status", json!({"names": ["held"]}));
    assert_eq!(service(ok(&status), "held")["reason"], "stopped by request");

    // The sibling crashes: one_for_all restarts the set, but not the held service.
    common::send_signal(sibling, common::Signal::SIGKILL);
    minder.wait_pid("sibling", Some(sibling));
    assert_eq!(state_of(&minder, "held"), "stopped");
    assert_eq!(
        minder.pid_file("held"),
        Some(held),
        "the held service ran again"
    );

    let response = minder.control("start", json!({"name": "held"}));
    assert_eq!(ok(&response)["affected"], json!(["held"]));
    minder.wait_pid("held", Some(held));
}

#[test]
fn status_of_a_stopping_service_says_since_when_and_when_it_will_be_killed() {
    // The service ignores SIGTERM, so it stays in `stopping` for its stop_timeout.
    let script = "trap '' TERM; echo $$ > slow.pid; while :; do sleep 0.1; done";
    let minder = Minder::run(&sh_service("slow", script, "stop_timeout = \"60s\""));
    minder.wait_pid("slow", None);
    ok(&minder.control("stop", json!({"name": "slow"})));
    let response = minder.control("status", json!({"names": ["slow"]}));
    let row = service(ok(&response), "slow");
    assert_eq!(row["state"], "stopping", "{row}");
    let since = row["stopping"]["since_seconds"].as_f64().expect("since");
    let kill_in = row["stopping"]["kill_in_seconds"]
        .as_f64()
        .expect("kill in");
    assert!(since >= 0.0 && kill_in > 0.0 && kill_in <= 60.0, "{row}");
    assert!((since + kill_in - 60.0).abs() < 1.0, "{row}");
}

#[test]
fn operator_restarts_are_not_counted_against_the_budget() {
    // intensity = 0: a single counted restart would fail the root and stop minder.
    let config = format!(
        "[root]\nintensity = 0\n{}",
        sh_service("api", &pid_then_sleep("api"), "")
    );
    let mut minder = Minder::run(&config);
    let mut pid = minder.wait_pid("api", None);
    for _ in 0..3 {
        let response = minder.control("restart", json!({"name": "api"}));
        assert_eq!(ok(&response)["affected"], json!(["api"]));
        pid = minder.wait_pid("api", Some(pid));
    }
    let response = minder.control("status", json!({}));
    let status = ok(&response);
    assert_eq!(status["groups"][0]["restarts_in_period"], 0);
    assert_eq!(service(status, "api")["restarts"], 3);
    assert!(
        minder.wait_exit(std::time::Duration::ZERO).is_none(),
        "minder exited"
    );
}

#[test]
fn signal_reaches_the_services_process_group() {
    let script = "trap 'echo got >> usr1.txt' USR1; echo $$ > api.pid; while :; do sleep 0.1; done";
    let minder = Minder::run(&sh_service("api", script, ""));
    let pid = minder.wait_pid("api", None);
    let response = minder.control("signal", json!({"name": "api", "signal": "SIGUSR1"}));
    assert_eq!(ok(&response)["affected"], json!(["api"]));
    assert!(wait_for(PATIENCE, || minder.lines("usr1.txt") == ["got"]));
    let response = minder.control("signal", json!({"name": "api", "signal": libc::SIGUSR1}));
    ok(&response);
    assert!(wait_for(PATIENCE, || minder.lines("usr1.txt").len() == 2));
    assert_eq!(minder.pid_file("api"), Some(pid));

    let response = minder.control("signal", json!({"name": "api", "signal": "HUPP"}));
    assert_eq!(error_kind(&response), "bad_request");
    let response = minder.control("signal", json!({"name": "nope", "signal": "HUP"}));
    assert_eq!(error_kind(&response), "unknown_name");
}

#[test]
fn logs_replay_the_tail_and_follow_new_lines() {
    let script = "for i in 1 2 3 4 5; do echo line$i; done; echo $$ > api.pid; read x < go.fifo; echo after; exec sleep 1000";
    let minder = Minder::new();
    let fifo = minder.path("go.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    minder.write("cfg.toml", &sh_service("api", script, ""));
    let mut minder = minder;
    minder.start_run(&[]);
    minder.wait_pid("api", None);

    let mut client = minder.client();
    let (items, reason) = client.stream("logs", json!({"names": ["api"], "lines": 2}));
    assert_eq!(reason, "complete");
    let lines: Vec<&str> = items
        .iter()
        .map(|item| item["line"].as_str().expect("line"))
        .collect();
    assert_eq!(lines, ["line4", "line5"]);
    assert_eq!(items[0]["service"], "api");

    let id = client.send(
        "logs",
        json!({"names": ["api"], "lines": 1, "follow": true}),
    );
    let replayed = client.read().expect("the replayed line");
    assert_eq!(replayed["id"], id);
    assert_eq!(replayed["item"]["line"], "line5");
    std::fs::write(&fifo, "go\n").expect("release the service");
    let followed = client.read().expect("the followed line");
    assert_eq!(followed["item"]["line"], "after", "{followed}");
    assert_eq!(followed["item"]["stream"], "stdout");
    assert!(followed["item"]["time"].is_string(), "{followed}");
}

#[test]
fn events_replay_and_follow_supervision() {
    let minder = Minder::run(&sh_service("api", &pid_then_sleep("api"), ""));
    let pid = minder.wait_pid("api", None);
    let mut client = minder.client();
    let (items, reason) = client.stream("events", json!({}));
    assert_eq!(reason, "complete");
    let started = items
        .iter()
        .find(|event| event["event"] == "started")
        .expect("a started event");
    assert_eq!(started["service"], "api");
    assert_eq!(started["pid"], pid);

    let mut follower = minder.client();
    follower.send("events", json!({"follow": true, "last": 1}));
    // The replayed event comes after the subscription: from now on nothing is missed.
    follower.read().expect("the replayed event");
    common::send_signal(pid, common::Signal::SIGKILL);
    let exited = loop {
        let line = follower.read().expect("an event");
        if line["item"]["event"] == "exited" {
            break line;
        }
    };
    assert_eq!(exited["item"]["signal"], "KILL", "{exited}");
    assert_eq!(exited["item"]["service"], "api");
    let scheduled = follower.read().expect("an event");
    assert_eq!(
        scheduled["item"]["event"], "restart_scheduled",
        "{scheduled}"
    );
    assert!(scheduled["item"]["delay_seconds"].is_number());
}

#[test]
fn shutdown_stops_minder_in_order_and_ends_streams() {
    let mut minder = Minder::run(&sh_service("api", &pid_then_sleep("api"), ""));
    minder.wait_pid("api", None);
    let mut follower = minder.client();
    follower.send("events", json!({"follow": true, "last": 1}));
    follower.read().expect("the replayed event");

    // The file is unchanged: the plan is empty.
    let response = minder.control("reload", json!({"dry_run": true}));
    assert_eq!(ok(&response)["changes"], json!([]));

    let response = minder.control("shutdown", json!({}));
    assert_eq!(ok(&response)["done"], true);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    let mut saw_shutdown = false;
    let end = loop {
        let line = follower.read().expect("the stream's end marker");
        if line["item"]["event"] == "shutdown" {
            saw_shutdown = true;
        }
        if line["end"] == true {
            break line;
        }
    };
    assert!(saw_shutdown, "no shutdown event before {end}");
    assert_eq!(end["reason"], "shutdown");
    assert!(!minder.socket().exists(), "the socket file was left behind");
    minder.assert_nothing_left();
}

/// A group stopped by `stop` was shown as `failing` (the word for a group that gave up
/// on its restart budget), as was any group not up for another reason.
#[test]
fn a_group_held_by_stop_is_shown_stopped_not_failing() {
    let config = format!(
        "[group.g]\nchildren = [\"x\"]\n\n{}",
        sh_service("x", &pid_then_sleep("x"), "")
    );
    let minder = Minder::run(&config);
    let x = minder.wait_pid("x", None);
    let response = minder.control("stop", json!({"name": "g"}));
    assert_eq!(response["ok"], true, "{response}");
    assert!(wait_for(PATIENCE, || !is_alive(x)), "x still runs");
    let status = minder.control("status", json!({"names": ["g"]}));
    assert_eq!(status["result"]["groups"][0]["name"], "g", "{status}");
    assert_eq!(
        status["result"]["groups"][0]["state"], "stopped",
        "{status}"
    );
    let response = minder.control("start", json!({"name": "g"}));
    assert_eq!(response["ok"], true, "{response}");
    minder.wait_pid("x", Some(x));
    let status = minder.control("status", json!({"names": ["g"]}));
    assert_eq!(status["result"]["groups"][0]["state"], "up", "{status}");
}

/// `stop root` was answered "no service or group named \"root\"; did you mean
/// \"root\"?": the root is a group status knows, but not one an operator command takes.
/// The answer now says why.
#[test]
fn stop_of_the_root_says_why_instead_of_suggesting_its_own_name() {
    let minder = Minder::run(&sh_service("x", &pid_then_sleep("x"), ""));
    let x = minder.wait_pid("x", None);
    for cmd in ["stop", "start", "restart"] {
        let response = minder.control(cmd, json!({"name": "root"}));
        assert_eq!(error_kind(&response), "bad_request", "{response}");
        let message = response["error"]["message"].as_str().expect("a message");
        assert!(message.contains("shutdown"), "{message}");
    }
    assert!(is_alive(x), "x was stopped");
}
