//! Container mode on a real terminal: `minder -- bash` keeps the terminal usable. The
//! service gets the terminal's foreground process group, so Ctrl-C interrupts the
//! command bash runs (not bash, not minder) and Ctrl-Z stops a job; minder exits with
//! bash's code. Driven through a pseudo-terminal by tests/fixtures/tty_session.py.

#![allow(clippy::disallowed_methods)] // waits for the test's own driver, not minder's children

use std::process::Command;

#[test]
fn bash_under_minder_keeps_job_control_and_ctrl_c_on_a_terminal() {
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tty_session.py");
    let output = Command::new("python3")
        .arg(driver)
        .arg(env!("CARGO_BIN_EXE_minder"))
        .output()
        .expect("run python3 (the CI script installs it)");
    let transcript = String::from_utf8_lossy(&output.stdout);
    let problems = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(5),
        "minder did not exit with bash's code\n--- terminal ---\n{transcript}\n--- driver ---\n{problems}"
    );
    assert!(
        transcript.contains("alive-42"),
        "bash did not survive Ctrl-C:\n{transcript}"
    );
    assert!(
        transcript.contains("Stopped"),
        "Ctrl-Z did not stop the job:\n{transcript}"
    );
}
