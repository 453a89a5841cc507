//! Black-box tests of where minder's supervision follows Erlang/OTP and systemd: which
//! signals from outside count as a clean end (`success_signals`), groups as full OTP
//! children (`restart`, `significant`, `auto_shutdown` on any group), how each end is
//! reported when several come in one turn, and the log lines of a group's decisions.
//! Services record their pid in a file of the test directory; the tests kill them from
//! outside and watch which pids change and what minder logs.

mod common;

use common::{Minder, PATIENCE, Signal, is_alive, pid_then_sleep, send_signal, sh_service};

/// A service that records its pid and sleeps, with the given extra keys.
fn sleeper(name: &str, extra: &str) -> String {
    sh_service(name, &pid_then_sleep(name), extra)
}

/// Waits until `pid` is gone (reaped by minder); panics after `PATIENCE`.
fn wait_gone(minder: &Minder, pid: i32) {
    assert!(
        common::wait_for(PATIENCE, || !is_alive(pid)),
        "{pid} still alive\nstderr:\n{}",
        minder.stderr_text()
    );
}

/// `kill PID` on a transient service is a clean end, as for systemd's
/// `Restart=on-failure` and OTP's `shutdown`: it stays down. SIGKILL is not.
#[test]
fn transient_service_killed_by_sigterm_from_outside_stays_down() {
    let minder = Minder::run(&format!(
        "{}{}",
        sleeper(
            "term",
            "restart = \"transient\"\nbackoff = { initial = \"10ms\", jitter = 0.0 }"
        ),
        sleeper(
            "killed",
            "restart = \"transient\"\nbackoff = { initial = \"200ms\", jitter = 0.0 }"
        ),
    ));
    let term = minder.wait_pid("term", None);
    let killed = minder.wait_pid("killed", None);

    send_signal(term, Signal::SIGTERM);
    wait_gone(&minder, term);
    send_signal(killed, Signal::SIGKILL);
    // `killed` comes back. Had `term` been restarted, its shorter backoff would have
    // brought it back first: minder handled its end before `killed`'s.
    minder.wait_pid("killed", Some(killed));
    assert_eq!(
        minder.pid_file("term"),
        Some(term),
        "term was restarted\nstderr:\n{}",
        minder.stderr_text()
    );
    let log = minder.stderr_text();
    assert!(log.contains("killed by SIGTERM (normal)"), "{log}");
    assert!(log.contains("killed by SIGKILL (abnormal)"), "{log}");
}

/// With `success_signals = []` every death by a signal is a failure again.
#[test]
fn empty_success_signals_restart_a_transient_service_after_sigterm() {
    let minder = Minder::run(&sleeper(
        "term",
        "restart = \"transient\"\nsuccess_signals = []\nbackoff = { initial = \"10ms\" }",
    ));
    let term = minder.wait_pid("term", None);
    send_signal(term, Signal::SIGTERM);
    minder.wait_pid("term", Some(term));
}
