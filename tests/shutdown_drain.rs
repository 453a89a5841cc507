//! The drain before a shutdown and the shutdown's progress, through the real binary:
//! with `drain_delay`, SIGTERM leaves every service running (and supervised: one that
//! dies is restarted) until the delay has passed, then the tree stops in reverse order;
//! while it stops, minder logs once a second which services it still waits for and
//! when each will be killed, and at the end which ones were slow or needed SIGKILL.
//! `minderctl status` (the control socket) shows the same: the drain as minder's phase,
//! and each stopping service with the moment it will really be killed.

mod common;

use common::{Minder, PATIENCE, Signal, is_alive, send_signal, sh_service, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

/// A service that ignores SIGTERM (the ignored disposition survives its `exec`), so
/// only minder's SIGKILL ends it.
fn term_ignoring(name: &str, stop_timeout: &str) -> String {
    sh_service(
        name,
        &format!("trap '' TERM; echo $$ > {name}.pid; exec sleep 1000"),
        &format!("stop_timeout = \"{stop_timeout}\""),
    )
}

/// `(4.1 s, killed in 5.9 s)` → (4.1, 5.9), from a progress line about `name`.
fn waited_and_kill_in(line: &str, name: &str) -> Option<(f64, f64)> {
    let rest = &line[line.find(&format!("{name} ("))? + name.len() + 2..];
    let (waited, rest) = rest.split_once(" s, killed in ")?;
    let (kill_in, _) = rest.split_once(" s)")?;
    Some((waited.parse().ok()?, kill_in.parse().ok()?))
}

#[test]
fn term_with_a_drain_keeps_services_running_then_stops_them_with_progress() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ndrain_delay = \"2s\"\nshutdown_timeout = \"20s\"\ncontrol_socket = \"\"\n\n{}{}",
            sh_service(
                "web",
                "echo $$ > web.pid; exec sleep 1000",
                "backoff = { initial = \"10ms\", jitter = 0.0 }"
            ),
            term_ignoring("stubborn", "3s"),
        ),
    );
    minder.start_run(&[]);
    let web = minder.wait_pid("web", None);
    let stubborn = minder.wait_pid("stubborn", None);

    minder.signal(Signal::SIGTERM);
    minder.wait_log(&["draining for 2.0 s"], 1, PATIENCE);
    // During the drain the tree is supervised as usual: a service that dies comes back.
    assert!(is_alive(stubborn), "{}", minder.stderr_text());
    send_signal(web, Signal::SIGKILL);
    let web_again = minder.wait_pid("web", Some(web));
    assert!(
        minder.log_lines(&["orderly shutdown"]).is_empty(),
        "the shutdown began before the drain ended:\n{}",
        minder.stderr_text()
    );
    assert!(is_alive(web_again) && is_alive(stubborn));

    // Then the orderly shutdown: `stubborn` (last) is asked first, ignores it, and the
    // progress names it with its kill time, 3 s after its stop signal.
    minder.wait_log(&["orderly shutdown"], 1, PATIENCE);
    let progress = minder.wait_log(&["waiting for stubborn ("], 1, PATIENCE);
    let (waited, kill_in) = waited_and_kill_in(&progress[0], "stubborn")
        .unwrap_or_else(|| panic!("unreadable progress line: {}", progress[0]));
    assert!(
        (waited + kill_in - 3.0).abs() < 0.15,
        "the kill time is not its stop_timeout after the stop signal: {}",
        progress[0]
    );
    assert!(is_alive(stubborn), "killed before its stop_timeout");

    assert_eq!(minder.expect_exit(Duration::from_secs(15)), 0);
    assert!(!is_alive(web_again) && !is_alive(stubborn));
    let summary = minder.log_lines(&["stubborn", "needed SIGKILL to stop"]);
    assert_eq!(summary.len(), 1, "{}", minder.stderr_text());
    // `web` stopped at once: neither slow nor killed, so not in the summary.
    assert!(
        minder.log_lines(&["web", "to stop"]).is_empty(),
        "{}",
        minder.stderr_text()
    );
    minder.assert_nothing_left();
}

#[test]
fn a_second_term_cuts_the_drain_short() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ndrain_delay = \"60s\"\nshutdown_timeout = \"90s\"\ncontrol_socket = \"\"\n\n{}",
            sh_service("a", "echo $$ > a.pid; exec sleep 1000", ""),
        ),
    );
    minder.start_run(&[]);
    let a = minder.wait_pid("a", None);
    minder.signal(Signal::SIGTERM);
    minder.wait_log(&["draining for 60.0 s"], 1, PATIENCE);
    assert!(is_alive(a));
    minder.signal(Signal::SIGTERM);
    // The orderly shutdown follows at once, not after the minute: `a` gets its stop
    // signal and ends by it.
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    minder.wait_log(&["orderly shutdown"], 1, PATIENCE);
    assert!(
        minder.log_lines(&["second shutdown request"]).is_empty(),
        "the second request killed instead of stopping in order:\n{}",
        minder.stderr_text()
    );
    minder.wait_log(&["service=\"a\"", "(stopped)"], 1, PATIENCE);
    minder.assert_nothing_left();
}

#[test]
fn without_a_drain_term_shuts_down_at_once() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"\"\n\n{}",
            sh_service("a", "echo $$ > a.pid; exec sleep 1000", "")
        ),
    );
    minder.start_run(&[]);
    minder.wait_pid("a", None);
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    assert!(minder.log_lines(&["draining"]).is_empty());
    assert!(wait_for(PATIENCE, || minder.leftovers().is_empty()));
}

/// The `status` row of `name`, and minder's phase.
fn status_of(minder: &Minder, name: &str) -> (Value, String) {
    let response = minder.control("status", json!({"names": [name]}));
    assert_eq!(response["ok"], true, "{response}");
    let result = &response["result"];
    let row = result["services"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {result}"))
        .clone();
    let phase = result["minder"]["phase"].as_str().unwrap_or("").to_string();
    (row, phase)
}

#[test]
fn regression_status_said_a_stopping_service_would_be_killed_after_the_shutdown_deadline() {
    // The stubborn service's stop_timeout (60 s) runs past shutdown_timeout (5 s from
    // the request): the kill comes at the shutdown's deadline. Before the fix, status
    // counted only the stop_timeout and said about 60 s; and it called the drain
    // "running".
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ndrain_delay = \"1s\"\nshutdown_timeout = \"5s\"\n\n{}",
            term_ignoring("stubborn", "60s")
        ),
    );
    minder.start_run(&[]);
    let stubborn = minder.wait_pid("stubborn", None);
    minder.signal(Signal::SIGTERM);
    minder.wait_log(&["draining for 1.0 s"], 1, PATIENCE);
    let (row, phase) = status_of(&minder, "stubborn");
    assert_eq!(phase, "draining", "{row}");
    assert_eq!(row["state"], "running", "{row}");
    assert!(row["uptime_seconds"].as_f64().is_some(), "{row}");

    minder.wait_log(&["orderly shutdown"], 1, PATIENCE);
    let mut row = Value::Null;
    let stopping = wait_for(PATIENCE, || {
        row = status_of(&minder, "stubborn").0;
        row["state"] == "stopping"
    });
    assert!(stopping, "{row}");
    let since = row["stopping"]["since_seconds"].as_f64().expect("since");
    let kill_in = row["stopping"]["kill_in_seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no kill time: {row}"));
    // Stopping since the drain ended (1 s after the request); killed 5 s after the
    // request, so the two add up to 4 s, not to its 60 s stop_timeout.
    assert!((since + kill_in - 4.0).abs() < 0.5, "{row}");
    assert!(is_alive(stubborn));
    assert_eq!(minder.expect_exit(Duration::from_secs(10)), 0);
    minder.wait_log(&["stubborn", "needed SIGKILL to stop"], 1, PATIENCE);
}
