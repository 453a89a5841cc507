//! A service stopped with SIGSTOP (by an operator, a debugger, a Ctrl-Z minder never
//! saw) is continued when minder stops it: its stop signal is followed by SIGCONT, so
//! its handler runs at once instead of minder waiting out its stop_timeout. The state
//! dump (SIGUSR2) marks a service whose main process is stopped. Container mode does the
//! same after it forwards SIGTERM, SIGINT or SIGQUIT.

mod common;

use common::{Minder, PATIENCE, Signal, proc_state, send_signal, sh_service, wait_for};
use std::time::Duration;

/// A service whose TERM handler writes `NAME.marker`, with a stop_timeout far beyond
/// the test's patience: only SIGCONT can let it stop in time. The pid file is written
/// after the shell forked its `sleep`, so a SIGSTOP of the group cannot catch the shell
/// inside that fork (where it would show state D, not T).
fn stoppable(name: &str) -> String {
    sh_service(
        name,
        &format!(
            "trap 'echo handled > {name}.marker; exit 0' TERM; sleep 1000 & echo $$ > {name}.pid; wait"
        ),
        "stop_timeout = \"60s\"",
    )
}

/// Stops the whole process group of `pid` with SIGSTOP and waits until its leader shows
/// state T.
fn sigstop_group(pid: i32) {
    send_signal(-pid, Signal::SIGSTOP);
    assert!(
        wait_for(PATIENCE, || proc_state(pid) == Some('T')),
        "{pid} did not stop (state {:?})",
        proc_state(pid)
    );
}

#[test]
fn a_sigstopped_service_runs_its_stop_handler_at_shutdown() {
    let config = format!(
        "[daemon]\nshutdown_timeout = \"120s\"\n\n{}",
        stoppable("a")
    );
    let mut minder = Minder::run(&config);
    let pid = minder.wait_pid("a", None);
    sigstop_group(pid);
    minder.signal(Signal::SIGTERM);
    // Well below the 60 s stop_timeout: without SIGCONT minder would still be waiting.
    assert_eq!(minder.expect_exit(Duration::from_secs(10)), 0);
    assert_eq!(
        minder.lines("a.marker"),
        ["handled"],
        "the TERM handler did not run\n{}",
        minder.stderr_text()
    );
    minder.assert_nothing_left();
}

#[test]
fn the_state_dump_marks_a_stopped_service() {
    let config = format!("{}{}", stoppable("a"), stoppable("b"));
    let mut minder = Minder::run(&config);
    let stopped = minder.wait_pid("a", None);
    let running = minder.wait_pid("b", None);
    sigstop_group(stopped);
    minder.signal(Signal::SIGUSR2);
    minder.wait_log(&["state of the tree"], 1, PATIENCE);
    let marked = minder.wait_log(
        &[&format!("pid {stopped}"), "stopped by a signal"],
        1,
        PATIENCE,
    );
    assert_eq!(marked.len(), 1, "{}", minder.stderr_text());
    assert!(
        minder
            .log_lines(&[&format!("pid {running}"), "stopped by a signal"])
            .is_empty(),
        "a running service was marked stopped\n{}",
        minder.stderr_text()
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(Duration::from_secs(10)), 0);
    minder.assert_nothing_left();
}

#[test]
fn container_mode_continues_a_stopped_command_after_forwarding_sigterm() {
    // minder would kill the command 8 s after the forwarded TERM (exit 137); with
    // SIGCONT its handler runs at once and its own code comes through.
    let mut minder = Minder::new();
    minder.start_container(&[
        "sh",
        "-c",
        "trap 'echo handled > c.marker; exit 0' TERM; sleep 1000 & echo $$ > c.pid; wait",
    ]);
    let pid = minder.wait_pid("c", None);
    sigstop_group(pid);
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(Duration::from_secs(5)), 0);
    assert_eq!(minder.lines("c.marker"), ["handled"]);
    minder.assert_nothing_left();
}
