//! Black-box tests of container mode (`minder -- cmd`, like tini) and of a main process
//! after a config's tree (`minder run CONFIG -- cmd`): exit codes pass through with the
//! shell's conventions, and signals to minder reach the command.

mod common;

use common::{Minder, PATIENCE, Signal, is_alive, pid_then_sleep, sh_service};

fn container_exit_code(command: &[&str]) -> i32 {
    let mut minder = Minder::new();
    minder.start_container(command);
    let code = minder.expect_exit(PATIENCE);
    minder.assert_nothing_left();
    code
}

#[test]
fn container_mode_passes_the_exit_code_through() {
    for code in [0, 1, 42, 255] {
        let script = format!("exit {code}");
        assert_eq!(
            container_exit_code(&["sh", "-c", &script]),
            code,
            "sh -c '{script}'"
        );
    }
}

#[test]
fn container_mode_exits_128_plus_the_signal_that_killed_the_command() {
    assert_eq!(container_exit_code(&["sh", "-c", "kill -9 $$"]), 128 + 9);
    assert_eq!(
        container_exit_code(&["sh", "-c", "kill -TERM $$"]),
        128 + 15
    );
}

#[test]
fn container_mode_exits_127_for_a_command_that_is_not_found() {
    assert_eq!(container_exit_code(&["/nonexistent"]), 127);
    assert_eq!(container_exit_code(&["no-such-command-in-path"]), 127);
}

#[test]
fn container_mode_exits_126_for_a_file_that_cannot_be_executed() {
    let mut minder = Minder::new();
    // Mode 0644: even root may not execute a file without any execute bit.
    minder.write("script", "#!/bin/sh\nexit 0\n");
    let path = minder.path("script");
    minder.start_container(&[path.to_str().expect("utf-8 path")]);
    assert_eq!(
        minder.expect_exit(PATIENCE),
        126,
        "{}",
        minder.stderr_text()
    );
}

#[test]
fn container_mode_forwards_sigterm_to_the_command() {
    let mut minder = Minder::new();
    // The trap runs once the foreground sleep ends; TERM to the process group ends it.
    let script = "trap 'echo TERM > got; exit 7' TERM; echo $$ > main.pid; \
                  while :; do sleep 0.05; done";
    minder.start_container(&["sh", "-c", script]);
    // The command has started, so minder's handlers are installed.
    let main = minder.wait_pid("main", None);
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 7, "{}", minder.stderr_text());
    assert_eq!(
        std::fs::read_to_string(minder.path("got")).ok().as_deref(),
        Some("TERM\n")
    );
    assert!(!is_alive(main));
    minder.assert_nothing_left();
}

#[test]
fn container_mode_kills_a_command_that_ignores_the_forwarded_sigterm() {
    // The command and what it forked ignore TERM: once its stop_timeout (8 s in
    // container mode) has passed since the forward, the core's deadline has the group
    // killed, and minder exits as the command's end leaves it, saying why.
    let mut minder = Minder::new();
    let script = "trap '' TERM; echo $$ > main.pid; sleep 1000 & wait";
    minder.start_container(&["sh", "-c", script]);
    let main = minder.wait_pid("main", None);
    minder.signal(Signal::SIGTERM);
    let code = minder.expect_exit(std::time::Duration::from_secs(30));
    let stderr = minder.stderr_text();
    assert_eq!(code, 128 + 9, "{stderr}");
    assert!(
        stderr.contains("did not exit within its stop_timeout after the forwarded signal"),
        "no line says why the command was killed:\n{stderr}"
    );
    assert!(!is_alive(main));
    minder.assert_nothing_left();
}

#[test]
fn container_mode_uses_minders_own_stdout_without_a_prefix() {
    let mut minder = Minder::new();
    minder.start_container(&["sh", "-c", "echo plain line; echo to stderr >&2"]);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    // The drain threads may still be reading the pipes' last bytes.
    assert!(
        common::wait_for(PATIENCE, || minder.stdout_text() == "plain line\n"),
        "{:?}",
        minder.stdout_text()
    );
    assert!(common::wait_for(PATIENCE, || minder
        .stderr_text()
        .contains("to stderr\n")));
    assert!(
        !minder.stderr_text().contains("| to stderr"),
        "{}",
        minder.stderr_text()
    );
}

#[test]
fn a_main_process_runs_after_its_sidecars_and_its_code_becomes_minders() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &sh_service(
            "sidecar",
            &pid_then_sleep("sidecar"),
            "stop_timeout = \"2s\"",
        ),
    );
    // main waits (bounded) for the sidecar's pid file, then reports and exits 5.
    let main = "for i in $(seq 250); do [ -s sidecar.pid ] && break; sleep 0.02; done; \
                [ -s sidecar.pid ] && echo seen > main.saw; exit 5";
    minder.start_run(&["sh", "-c", main]);
    let code = minder.expect_exit(PATIENCE);
    assert_eq!(code, 5, "{}", minder.stderr_text());
    assert!(
        minder.path("main.saw").exists(),
        "main ran without its sidecar"
    );
    let sidecar = minder.pid_file("sidecar").expect("sidecar started");
    assert!(!is_alive(sidecar), "the sidecar outlived minder");
    minder.assert_nothing_left();
}

/// Issue 7 item 9: `minder run CONFIG -- cmd` exited 0 after SIGTERM although the main
/// process then exited 7, while container mode returned 7. A requested shutdown of a
/// tree with a significant main process now exits with that process's code.
#[test]
fn regression_sigterm_to_run_with_main_exited_0_instead_of_the_main_code() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &sh_service("sidecar", &pid_then_sleep("sidecar"), ""),
    );
    // The main process answers the stop signal by exiting 7 (the trap runs once the
    // short foreground sleep ends).
    let main = "trap 'exit 7' TERM; echo $$ > main.pid; while :; do sleep 0.05; done";
    minder.start_run(&["sh", "-c", main]);
    minder.wait_pid("sidecar", None);
    let main = minder.wait_pid("main", None);
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 7, "{}", minder.stderr_text());
    assert!(!is_alive(main));
    minder.assert_nothing_left();
}

/// The same shutdown when the main process dies of the SIGTERM minder sends it: 143,
/// as container mode (and a shell) reports a death by signal 15.
#[test]
fn regression_sigterm_to_run_with_main_killed_by_term_exits_143() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &sh_service("sidecar", &pid_then_sleep("sidecar"), ""),
    );
    minder.start_run(&["sh", "-c", &pid_then_sleep("main")]);
    minder.wait_pid("sidecar", None);
    minder.wait_pid("main", None);
    minder.signal(Signal::SIGTERM);
    assert_eq!(
        minder.expect_exit(PATIENCE),
        128 + 15,
        "{}",
        minder.stderr_text()
    );
    minder.assert_nothing_left();
}
