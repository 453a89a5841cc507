//! Reloading the config file of a running minder (SIGHUP here; the control socket's
//! `reload` goes through the same code): only what changed is touched, an invalid
//! file changes nothing, and the answer (minder's log for SIGHUP) names each change,
//! the key behind it and its outcome. Pids prove which services were restarted.

mod common;

use common::{Minder, PATIENCE, Signal, is_alive, pid_then_sleep, sh_service, wait_for};
use std::time::Duration;

/// Three services that write their pid and sleep; `b` has an environment variable.
fn three(b_port: &str) -> String {
    format!(
        "[daemon]\ncontrol_socket = \"\"\n\n{}{}{}",
        sh_service("a", &pid_then_sleep("a"), ""),
        sh_service(
            "b",
            &pid_then_sleep("b"),
            &format!("env = {{ PORT = \"{b_port}\" }}")
        ),
        sh_service("c", &pid_then_sleep("c"), ""),
    )
}

/// Rewrites the config, sends SIGHUP and waits for the `n`-th answer in the log.
fn reload(minder: &Minder, config: &str, n: usize) {
    minder.write("cfg.toml", config);
    minder.signal(Signal::SIGHUP);
    minder.wait_log(&["reload applied"], n, Duration::from_secs(10));
}

#[test]
fn sighup_reload_changing_one_of_three_services_restarts_exactly_that_one() {
    let minder = Minder::run(&three("80"));
    let a = minder.wait_pid("a", None);
    let b = minder.wait_pid("b", None);
    let c = minder.wait_pid("c", None);
    reload(&minder, &three("81"), 1);
    let new_b = minder.wait_pid("b", Some(b));
    assert!(
        !is_alive(b) || wait_for(PATIENCE, || !is_alive(b)),
        "old b lives on"
    );
    assert_eq!(minder.pid_file("a"), Some(a), "a was restarted");
    assert_eq!(minder.pid_file("c"), Some(c), "c was restarted");
    assert!(is_alive(a) && is_alive(c) && is_alive(new_b));
    // The plan names the service and the key, and the answer its outcome.
    minder.wait_log(
        &["reload: restart service b (service.b.env.PORT)"],
        1,
        PATIENCE,
    );
    minder.wait_log(&["reload: restart service b: ready"], 1, PATIENCE);
    assert!(
        minder.log_lines(&["reload: restart service a"]).is_empty()
            && minder.log_lines(&["reload: restart service c"]).is_empty(),
        "{}",
        minder.stderr_text()
    );
}

#[test]
fn sighup_reload_of_an_invalid_file_changes_nothing_and_logs_every_error() {
    let minder = Minder::run(&three("80"));
    let pids: Vec<i32> = ["a", "b", "c"]
        .iter()
        .map(|n| minder.wait_pid(n, None))
        .collect();
    // Two errors (a's restart on line 5, c's stop_timeout) and a change to b that
    // must not be applied.
    let broken = three("81")
        .replacen("[service.a]\n", "[service.a]\nrestart = \"sometimes\"\n", 1)
        .replacen("[service.c]\n", "[service.c]\nstop_timeout = 5\n", 1);
    minder.write("cfg.toml", &broken);
    minder.signal(Signal::SIGHUP);
    minder.wait_log(
        &["reload failed", "2 error(s); nothing changed"],
        1,
        PATIENCE,
    );
    let errors = minder.log_lines(&["reload: ", "cfg.toml:"]);
    assert_eq!(errors.len(), 2, "{}", minder.stderr_text());
    assert!(errors[0].contains("cfg.toml:5:11:"), "{errors:?}");
    assert!(errors[1].contains("stop_timeout"), "{errors:?}");
    // Every service keeps its process; b's new environment was not applied.
    for (name, pid) in ["a", "b", "c"].iter().zip(&pids) {
        assert_eq!(minder.pid_file(name), Some(*pid), "{name} changed");
        assert!(is_alive(*pid), "{name} died");
    }
    // The running tree is still the old one: fixing the file reloads from there.
    minder.write("cfg.toml", &three("80"));
    minder.signal(Signal::SIGHUP);
    minder.wait_log(&["the file describes the running tree"], 1, PATIENCE);
}

#[test]
fn sighup_reload_adds_and_removes_services() {
    let mut minder = Minder::run(&three("80"));
    let a = minder.wait_pid("a", None);
    let b = minder.wait_pid("b", None);
    let c = minder.wait_pid("c", None);
    let new = format!(
        "[daemon]\ncontrol_socket = \"\"\n\n{}{}{}",
        sh_service("a", &pid_then_sleep("a"), ""),
        sh_service("b", &pid_then_sleep("b"), "env = { PORT = \"80\" }"),
        sh_service("d", &pid_then_sleep("d"), ""),
    );
    reload(&minder, &new, 1);
    let d = minder.wait_pid("d", None);
    assert!(wait_for(PATIENCE, || !is_alive(c)), "removed c still runs");
    assert_eq!(minder.pid_file("a"), Some(a));
    assert_eq!(minder.pid_file("b"), Some(b));
    assert!(is_alive(a) && is_alive(b) && is_alive(d));
    minder.wait_log(&["reload: stop service c (service.c)"], 1, PATIENCE);
    minder.wait_log(&["reload: start service d (service.d)"], 1, PATIENCE);
    minder.wait_log(&["reload: start service d: ready"], 1, PATIENCE);
    // A removed service is stopped, not restarted: c's pid file is not rewritten.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(minder.pid_file("c"), Some(c));
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(Duration::from_secs(10)), 0);
    minder.assert_nothing_left();
}

#[test]
fn a_reload_answers_once_the_new_service_is_ready() {
    let minder = Minder::run(&three("80"));
    minder.wait_pid("c", None);
    // d becomes ready only once it has written d.ready, a while after it starts.
    let new = format!(
        "{}{}",
        three("80"),
        sh_service(
            "d",
            "sleep 0.5; echo up > d.ready; exec sleep 1000",
            "ready = { exec = \"test -f d.ready\", interval = \"100ms\" }",
        ),
    );
    reload(&minder, &new, 1);
    // d writes the file before its check can pass: an answer given before d was
    // ready would come while the file is still missing.
    assert!(
        minder.path("d.ready").exists(),
        "answered before d was ready\n{}",
        minder.stderr_text()
    );
    minder.wait_log(&["reload: start service d: ready"], 1, PATIENCE);
}

#[test]
fn a_reload_reports_a_service_that_fails_to_start() {
    let minder = Minder::run(&three("80"));
    minder.wait_pid("c", None);
    let new = format!(
        "{}[service.broken]\ncommand = \"/nonexistent/program\"\n",
        three("80")
    );
    minder.write("cfg.toml", &new);
    minder.signal(Signal::SIGHUP);
    minder.wait_log(&["service(s) failed to start"], 1, Duration::from_secs(10));
    let outcome = minder.wait_log(&["reload: start service broken: failed:"], 1, PATIENCE);
    assert!(outcome[0].contains("/nonexistent/program"), "{outcome:?}");
}

/// Everything minder has sent to the test's manager socket so far.
fn received(socket: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(length) = socket.recv(&mut buffer) {
        messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
    }
    messages
}

#[test]
fn under_systemd_a_reload_is_framed_by_reloading_and_ready() {
    let mut minder = Minder::new();
    minder.write("cfg.toml", &three("80"));
    let path = minder.path("manager.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    socket.set_nonblocking(true).expect("non-blocking");
    minder.env("NOTIFY_SOCKET", &path);
    minder.start_run(&[]);
    let mut messages = Vec::new();
    assert!(wait_for(PATIENCE, || {
        messages.extend(received(&socket));
        messages.iter().any(|m| m.contains("READY=1"))
    }));
    messages.clear();
    reload(&minder, &three("81"), 1);
    assert!(
        wait_for(PATIENCE, || {
            messages.extend(received(&socket));
            messages.iter().any(|m| m.contains("READY=1"))
        }),
        "no READY=1 after the reload: {messages:?}"
    );
    let reloading = messages
        .iter()
        .position(|m| m.contains("RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1: {messages:?}"));
    assert!(
        messages[reloading].contains("MONOTONIC_USEC="),
        "{messages:?}"
    );
    let ready = messages.iter().position(|m| m.contains("READY=1"));
    assert!(
        ready > Some(reloading),
        "READY=1 before RELOADING=1: {messages:?}"
    );
}

/// The three services with the control socket the fixture gives each minder.
fn three_with_socket(b_port: &str) -> String {
    three(b_port).replace("control_socket = \"\"\n", "")
}

#[test]
fn reload_over_the_socket_restarts_exactly_the_changed_service_and_dry_run_names_the_key() {
    let minder = Minder::run(&three_with_socket("80"));
    let pids: Vec<i32> = ["a", "b", "c"]
        .iter()
        .map(|name| minder.wait_pid(name, None))
        .collect();
    minder.write("cfg.toml", &three_with_socket("81"));

    let plan = minder.control("reload", serde_json::json!({"dry_run": true}));
    assert_eq!(plan["ok"], true, "{plan}");
    assert_eq!(
        plan["result"],
        serde_json::json!({"dry_run": true, "changes": [{
            "name": "b", "kind": "service", "action": "restart",
            "keys": ["service.b.env.PORT"], "outcome": "planned"
        }]}),
    );
    // A dry run changes nothing.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(minder.pid_file("b"), Some(pids[1]));

    let done = minder.control("reload", serde_json::json!({}));
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(
        done["result"]["changes"],
        serde_json::json!([{
            "name": "b", "kind": "service", "action": "restart",
            "keys": ["service.b.env.PORT"], "outcome": "ready"
        }]),
    );
    // The answer came once the new b was up: its pid file is already rewritten.
    let new_b = minder.wait_pid("b", Some(pids[1]));
    assert_eq!(common::env_var_of(new_b, "PORT").as_deref(), Some("81"));
    assert_eq!(minder.pid_file("a"), Some(pids[0]));
    assert_eq!(minder.pid_file("c"), Some(pids[2]));
    assert!(is_alive(pids[0]) && is_alive(pids[2]));
    assert!(wait_for(PATIENCE, || !is_alive(pids[1])), "old b lives on");
}

#[test]
fn an_invalid_reload_over_the_socket_returns_every_error_and_changes_no_pid() {
    let minder = Minder::run(&three_with_socket("80"));
    let pids: Vec<i32> = ["a", "b", "c"]
        .iter()
        .map(|name| minder.wait_pid(name, None))
        .collect();
    let broken = three_with_socket("81")
        .replacen("[service.a]\n", "[service.a]\nrestart = \"sometimes\"\n", 1)
        .replacen("[service.c]\n", "[service.c]\nstop_timeout = 5\n", 1);
    minder.write("cfg.toml", &broken);
    for dry_run in [true, false] {
        let answer = minder.control("reload", serde_json::json!({"dry_run": dry_run}));
        assert_eq!(answer["ok"], false, "{answer}");
        assert_eq!(answer["error"]["kind"], "reload_failed", "{answer}");
        let errors = answer["error"]["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 2, "{answer}");
        assert!(errors[0]["file"].as_str().unwrap().ends_with("cfg.toml"));
        assert_eq!(errors[0]["line"], 4, "{answer}");
        assert_eq!(errors[0]["column"], 11, "{answer}");
        assert!(
            errors[1]["message"]
                .as_str()
                .unwrap()
                .contains("stop_timeout"),
            "{answer}"
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    for (name, pid) in ["a", "b", "c"].iter().zip(&pids) {
        assert_eq!(minder.pid_file(name), Some(*pid), "{name} changed");
        assert!(is_alive(*pid), "{name} died");
    }
}

#[test]
fn a_second_reload_while_one_waits_for_its_services_is_refused() {
    let minder = Minder::run(&three_with_socket("80"));
    minder.wait_pid("c", None);
    // d is ready only once the test creates `go`: the first reload waits for it.
    let new = format!(
        "{}{}",
        three_with_socket("80"),
        sh_service(
            "d",
            &pid_then_sleep("d"),
            "ready = { exec = \"test -f go\", interval = \"50ms\" }",
        ),
    );
    minder.write("cfg.toml", &new);
    let mut first = minder.client();
    let id = first.send("reload", serde_json::json!({}));
    minder.wait_pid("d", None);
    let second = minder.control("reload", serde_json::json!({}));
    assert_eq!(second["ok"], false, "{second}");
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another reload is in progress"),
        "{second}"
    );
    // A dry run is only a reading: it is answered meanwhile, and plans nothing now.
    let plan = minder.control("reload", serde_json::json!({"dry_run": true}));
    assert_eq!(plan["result"]["changes"], serde_json::json!([]), "{plan}");
    minder.write("go", "");
    let answer = first.read().expect("the first reload's answer");
    assert_eq!(answer["id"], id);
    assert_eq!(
        answer["result"]["changes"][0]["outcome"], "ready",
        "{answer}"
    );
}

#[test]
fn status_and_names_follow_a_reload() {
    let minder = Minder::run(&three_with_socket("80"));
    minder.wait_pid("c", None);
    let new = format!(
        "{}{}",
        three_with_socket("80"),
        sh_service("d", &pid_then_sleep("d"), ""),
    );
    minder.write("cfg.toml", &new);
    assert_eq!(minder.control("reload", serde_json::json!({}))["ok"], true);
    let d = minder.wait_pid("d", None);
    let status = minder.control("status", serde_json::json!({"names": ["d"]}));
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["result"]["services"][0]["pid"], d, "{status}");
    let stopped = minder.control("stop", serde_json::json!({"name": "d"}));
    assert_eq!(stopped["ok"], true, "{stopped}");
    assert!(wait_for(PATIENCE, || !is_alive(d)));
}

#[test]
fn a_reload_adding_the_first_notify_service_gives_it_a_notify_socket() {
    let minder = Minder::run(&three_with_socket("80"));
    minder.wait_pid("c", None);
    let client = common::fixture("notify_client.py");
    let new = format!(
        "{}{}",
        three_with_socket("80"),
        sh_service(
            "n",
            &format!("echo $$ > n.pid; exec python3 {client} 0.1 -1"),
            "ready = { notify = true }",
        ),
    );
    minder.write("cfg.toml", &new);
    // The answer waits for n's READY=1, which needs the socket a reload had to create.
    let done = minder.control("reload", serde_json::json!({}));
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(
        done["result"]["changes"][0]["outcome"],
        "ready",
        "{done}\n{}",
        minder.stderr_text()
    );
    let n = minder.wait_pid("n", None);
    assert!(common::env_var_of(n, "NOTIFY_SOCKET").is_some());
}

#[test]
fn a_service_added_to_a_held_group_does_not_hold_up_the_answer() {
    let config = |extra: &str| {
        format!(
            "[group.g]\nchildren = [\"x\"{extra}]\n\n{}{}",
            sh_service("x", &pid_then_sleep("x"), ""),
            sh_service("y", &pid_then_sleep("y"), ""),
        )
    };
    // y is first a root child; then it moves into g, which an operator holds.
    let minder = Minder::run(&config(""));
    let x = minder.wait_pid("x", None);
    let y = minder.wait_pid("y", None);
    let stopped = minder.control("stop", serde_json::json!({"name": "g"}));
    assert_eq!(stopped["ok"], true, "{stopped}");
    assert!(wait_for(PATIENCE, || !is_alive(x)));
    minder.write("cfg.toml", &config(", \"y\""));
    let done = minder.control("reload", serde_json::json!({}));
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(
        done["result"]["changes"][0],
        serde_json::json!({
            "name": "y", "kind": "service", "action": "move",
            "keys": ["group.g.children"],
            "outcome": "not started: its group g is stopped by an operator"
        }),
        "{done}"
    );
    assert!(
        wait_for(PATIENCE, || !is_alive(y)),
        "y runs on in its old place"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        minder.pid_file("y"),
        Some(y),
        "y was started inside the held group"
    );
}

#[test]
fn a_reload_keeps_the_main_process_of_run_config_with_a_command() {
    let mut minder = Minder::new();
    minder.write("cfg.toml", &three_with_socket("80"));
    minder.start_run(&["sh", "-c", "echo $$ > main.pid; exec sleep 1000"]);
    let main = minder.wait_pid("main", None);
    let b = minder.wait_pid("b", None);
    minder.write("cfg.toml", &three_with_socket("81"));
    let done = minder.control("reload", serde_json::json!({}));
    assert_eq!(done["ok"], true, "{done}");
    let changes = done["result"]["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{done}");
    assert_eq!(changes[0]["name"], "b", "{done}");
    minder.wait_pid("b", Some(b));
    // The command is not in the file, yet it is not "removed" by the reload.
    assert_eq!(minder.pid_file("main"), Some(main));
    assert!(is_alive(main));
    assert!(minder.is_running());
}

#[test]
fn a_reload_during_a_shutdown_is_refused_and_changes_nothing() {
    // `slow` ignores TERM, so the shutdown waits its stop_timeout out: time to ask.
    let config = format!(
        "{}{}",
        sh_service(
            "slow",
            "trap '' TERM; echo $$ > slow.pid; while true; do sleep 0.05; done",
            "stop_timeout = \"3s\"",
        ),
        sh_service("a", &pid_then_sleep("a"), ""),
    );
    let mut minder = Minder::run(&config);
    minder.wait_pid("slow", None);
    minder.wait_pid("a", None);
    let mut client = minder.client();
    minder.signal(Signal::SIGTERM);
    minder.wait_log(&["orderly shutdown"], 1, PATIENCE);
    minder.write(
        "cfg.toml",
        &format!("{config}{}", sh_service("b", &pid_then_sleep("b"), "")),
    );
    let answer = client.request("reload", serde_json::json!({}));
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["error"]["kind"], "shutting_down", "{answer}");
    assert_eq!(minder.expect_exit(Duration::from_secs(10)), 0);
    assert_eq!(
        minder.pid_file("b"),
        None,
        "b was started during the shutdown"
    );
    minder.assert_nothing_left();
}

/// A service added by reload starts after every earlier sibling is ready. With an
/// earlier sibling in a long backoff, the reload waited for it without end: its answer
/// never came, and every later reload (the one that would fix the sibling) was refused
/// as "another reload is in progress".
#[test]
fn a_reload_held_back_by_a_sibling_in_backoff_answers_and_lets_the_next_reload_in() {
    let head = "[service.flaky]\ncommand = [\"sh\", \"-c\", \"exit 1\"]\n\
                backoff = { initial = \"1m\", max = \"1m\" }\n\n";
    let base = format!("{head}{}", sh_service("a", &pid_then_sleep("a"), ""));
    let minder = Minder::run(&base);
    minder.wait_pid("a", None);
    assert!(
        wait_for(PATIENCE, || {
            let status = minder.control("status", serde_json::json!({"names": ["flaky"]}));
            status["result"]["services"][0]["state"] == "backoff"
        }),
        "flaky never went into backoff"
    );
    let added = format!(
        "{base}[group.g]\nchildren = [\"x\"]\n\n{}",
        sh_service("x", &pid_then_sleep("x"), "")
    );
    minder.write("cfg.toml", &added);
    let done = minder.control("reload", serde_json::json!({}));
    assert_eq!(done["ok"], true, "{done}");
    let x = done["result"]["changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|change| change["name"] == "x"))
        .unwrap_or_else(|| panic!("no change for x: {done}"));
    let outcome = x["outcome"].as_str().unwrap_or_default();
    assert!(outcome.contains("flaky"), "{outcome}");
    // The next reload is taken, not refused as "in progress".
    let fixed = added.replace("exit 1", "exec sleep 1000");
    minder.write("cfg.toml", &fixed);
    let done = minder.control("reload", serde_json::json!({}));
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["result"]["changes"][0]["name"], "flaky", "{done}");
}

/// A service a reload adds waits for the earlier services to be ready. When an
/// operator stopped its group meanwhile, it was never going to start, yet the reload
/// kept waiting for it: the answer never came.
#[test]
fn a_reload_whose_new_service_is_held_by_stopping_its_group_meanwhile_answers() {
    let flags = tempfile::tempdir().expect("a temp dir");
    let go = flags.path().join("go");
    std::fs::write(&go, "").expect("create go");
    let slow = |port: &str| {
        sh_service(
            "slow",
            &pid_then_sleep("slow"),
            &format!(
                "env = {{ PORT = \"{port}\" }}\nready = {{ exec = [\"test\", \"-e\", \"{}\"], interval = \"100ms\" }}",
                go.display()
            ),
        )
    };
    let minder = Minder::run(&slow("80"));
    let old = minder.wait_pid("slow", None);
    // The reload restarts slow, which is not ready until `go` exists again, and adds
    // x in a group after it: x waits for slow.
    std::fs::remove_file(&go).expect("remove go");
    let added = format!(
        "{}[group.g]\nchildren = [\"x\"]\n\n{}",
        slow("81"),
        sh_service("x", &pid_then_sleep("x"), "")
    );
    minder.write("cfg.toml", &added);
    let mut reloading = minder.client();
    reloading.send("reload", serde_json::json!({}));
    minder.wait_pid("slow", Some(old));
    let stop = minder.control("stop", serde_json::json!({"name": "g"}));
    assert_eq!(stop["ok"], true, "{stop}");
    std::fs::write(&go, "").expect("create go");
    let done = reloading.read().expect("the reload's answer");
    assert_eq!(done["ok"], true, "{done}");
    let x = done["result"]["changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|change| change["name"] == "x"))
        .unwrap_or_else(|| panic!("no change for x: {done}"));
    assert_eq!(x["outcome"], "stopped by an operator", "{done}");
    assert_eq!(minder.pid_file("x"), None, "x started in a held group");
}
