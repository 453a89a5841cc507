//! `state_file`: services an operator stopped stay stopped when minder itself is
//! restarted; a missing file holds nothing; a corrupt one is a warning naming the file
//! and what is wrong, and minder starts normally.

mod common;

use common::{Minder, PATIENCE, Signal, pid_then_sleep, sh_service};
use std::time::Duration;

fn config() -> String {
    format!(
        "[daemon]\ncontrol_socket = \"\"\nstate_file = \"state/held.json\"\n\n{}{}{}",
        sh_service("a", &pid_then_sleep("a"), ""),
        sh_service("b", &pid_then_sleep("b"), ""),
        sh_service("c", &pid_then_sleep("c"), ""),
    )
}

#[test]
fn a_service_listed_in_the_state_file_starts_held() {
    let mut minder = Minder::new();
    minder.write("cfg.toml", &config());
    std::fs::create_dir(minder.path("state")).expect("mkdir");
    // `gone` is no longer in the config: it is forgotten, and the file rewritten.
    minder.write("state/held.json", r#"{"version":1,"held":["b","gone"]}"#);
    minder.start_run(&[]);
    minder.wait_pid("a", None);
    minder.wait_pid("c", None);
    minder.wait_log(&["held stopped", "b"], 1, PATIENCE);
    minder.wait_log(&["gone", "no longer in the config"], 1, PATIENCE);
    // c, after b in the start order, runs: b's turn came and went, and b never ran.
    assert_eq!(minder.pid_file("b"), None, "{}", minder.stderr_text());
    assert!(
        common::wait_for(PATIENCE, || minder.lines("state/held.json")
            == [r#"{"version":1,"held":["b"]}"#]),
        "state file: {:?}",
        minder.lines("state/held.json")
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(Duration::from_secs(10)), 0);
    minder.assert_nothing_left();
}

#[test]
fn a_corrupt_state_file_is_a_warning_and_minder_starts_normally() {
    let mut minder = Minder::new();
    minder.write("cfg.toml", &config());
    std::fs::create_dir(minder.path("state")).expect("mkdir");
    minder.write("state/held.json", "{\"version\":1,\"held\":[\"b\"");
    minder.start_run(&[]);
    minder.wait_pid("a", None);
    minder.wait_pid("b", None);
    let warning = minder.wait_log(
        &["WARN", "state file", "held.json", "not valid JSON"],
        1,
        PATIENCE,
    );
    assert!(
        warning[0].contains("starting with no service held"),
        "{warning:?}"
    );
    assert!(minder.is_running());
}

#[test]
fn a_missing_state_file_holds_nothing_and_is_not_created_for_nothing() {
    let mut minder = Minder::new();
    minder.write("cfg.toml", &config());
    minder.start_run(&[]);
    minder.wait_pid("a", None);
    minder.wait_pid("b", None);
    assert!(
        minder.log_lines(&["state file"]).is_empty(),
        "{}",
        minder.stderr_text()
    );
    assert!(!minder.path("state/held.json").exists());
}

#[test]
fn a_service_stopped_by_hand_stays_stopped_when_minder_restarts() {
    let state = tempfile::tempdir().expect("temp dir");
    let state_file = state.path().join("held.json");
    let config = format!(
        "[daemon]\nstate_file = \"{}\"\n\n{}{}{}",
        state_file.display(),
        sh_service("a", &pid_then_sleep("a"), ""),
        sh_service("b", &pid_then_sleep("b"), ""),
        sh_service("c", &pid_then_sleep("c"), ""),
    );
    let mut first = Minder::run(&config);
    let b = first.wait_pid("b", None);
    let stopped = first.control("stop", serde_json::json!({"name": "b"}));
    assert_eq!(stopped["ok"], true, "{stopped}");
    assert!(common::wait_for(PATIENCE, || !common::is_alive(b)));
    assert!(
        common::wait_for(PATIENCE, || std::fs::read_to_string(&state_file)
            .is_ok_and(|text| text.trim() == r#"{"version":1,"held":["b"]}"#)),
        "state file: {:?}",
        std::fs::read_to_string(&state_file)
    );
    first.signal(Signal::SIGTERM);
    assert_eq!(first.expect_exit(Duration::from_secs(10)), 0);

    // A new minder on the same file: a and c start, b stays stopped until started.
    let second = Minder::run(&config);
    second.wait_pid("a", None);
    second.wait_pid("c", None);
    assert_eq!(second.pid_file("b"), None, "{}", second.stderr_text());
    let status = second.control("status", serde_json::json!({"names": ["b"]}));
    assert_eq!(
        status["result"]["services"][0]["state"], "stopped",
        "{status}"
    );
    let started = second.control("start", serde_json::json!({"name": "b"}));
    assert_eq!(started["ok"], true, "{started}");
    second.wait_pid("b", None);
    assert!(
        common::wait_for(PATIENCE, || std::fs::read_to_string(&state_file)
            .is_ok_and(|text| text.trim() == r#"{"version":1,"held":[]}"#)),
        "state file after start: {:?}",
        std::fs::read_to_string(&state_file)
    );
}
