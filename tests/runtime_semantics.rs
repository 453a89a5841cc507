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

/// A service that records its pid, waits until the file `go` exists, then exits 1.
fn exits_on_go(name: &str) -> String {
    sh_service(
        name,
        &format!("echo $$ > {name}.pid; while [ ! -e go ]; do sleep 0.02; done; exit 1"),
        "backoff = { initial = \"10ms\" }",
    )
}

/// Two children of a one_for_all group that exit at the same instant: the second used
/// to be logged "exited with code 1 (stopped)", as if minder had stopped it. minder
/// is paused (SIGSTOP) while both exit, so one reaper sweep collects both.
#[test]
fn two_exits_in_one_turn_are_not_logged_as_stopped() {
    let mut minder = Minder::run(&format!(
        "[root]\nstrategy = \"one_for_all\"\n\n{}{}",
        exits_on_go("a"),
        exits_on_go("b"),
    ));
    let a = minder.wait_pid("a", None);
    let b = minder.wait_pid("b", None);

    minder.signal(Signal::SIGSTOP);
    minder.write("go", "");
    let both_ended = common::wait_for(PATIENCE, || {
        common::proc_state(a) == Some('Z') && common::proc_state(b) == Some('Z')
    });
    // Let minder go before asserting, so a failure cannot leave it stopped.
    std::fs::remove_file(minder.path("go")).expect("remove go");
    minder.signal(Signal::SIGCONT);
    assert!(both_ended, "a and b did not both exit");

    // Both come back: one restart of the set.
    minder.wait_pid("a", Some(a));
    minder.wait_pid("b", Some(b));
    let log = minder.stderr_text();
    let abnormal = log
        .lines()
        .filter(|line| line.contains("exited with code 1 (abnormal)"))
        .count();
    assert_eq!(abnormal, 2, "{log}");
    assert!(!log.contains("(stopped)"), "{log}");
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

/// The nested group `job` shuts itself down when its significant task ends; its
/// helper is stopped, the sibling `side` keeps its pid, and the root restarts `job`
/// or not according to `job`'s restart type.
fn nested_group_with_auto_shutdown(restart: &str) -> (Minder, i32, i32, i32) {
    let minder = Minder::run(&format!(
        "[root]\nchildren = [\"job\", \"side\"]\n\
         [group.job]\nchildren = [\"task\", \"helper\"]\nauto_shutdown = \"any_significant\"\nrestart = \"{restart}\"\n\n{}{}{}",
        sh_service(
            "task",
            // It takes the file away as it ends, so a restarted task waits again.
            "echo $$ > task.pid; while [ ! -e done ]; do sleep 0.02; done; rm done",
            "restart = \"transient\"\nsignificant = true",
        ),
        sleeper("helper", ""),
        sleeper("side", ""),
    ));
    let task = minder.wait_pid("task", None);
    let helper = minder.wait_pid("helper", None);
    let side = minder.wait_pid("side", None);
    minder.write("done", "");
    wait_gone(&minder, task);
    wait_gone(&minder, helper);
    (minder, task, helper, side)
}

#[test]
fn a_transient_group_ends_with_its_significant_task_and_stays_down() {
    let (mut minder, task, helper, side) = nested_group_with_auto_shutdown("transient");
    assert!(
        common::wait_for(PATIENCE, || minder
            .stderr_text()
            .contains("job ended normally and stays down")),
        "{}",
        minder.stderr_text()
    );
    assert_eq!(minder.pid_file("task"), Some(task));
    assert_eq!(minder.pid_file("helper"), Some(helper));
    assert_eq!(minder.pid_file("side"), Some(side));
    assert!(is_alive(side));
    let log = minder.stderr_text();
    assert!(
        log.contains("job shuts itself down: its significant child task ended"),
        "{log}"
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    minder.assert_nothing_left();
}

#[test]
fn a_permanent_group_ends_with_its_significant_task_and_is_restarted() {
    let (mut minder, task, helper, side) = nested_group_with_auto_shutdown("permanent");
    // Restarted as a whole, as a new supervisor: both children come back.
    minder.wait_pid("task", Some(task));
    minder.wait_pid("helper", Some(helper));
    assert_eq!(minder.pid_file("side"), Some(side));
    assert!(is_alive(side));
    assert!(
        minder.stderr_text().contains("root restarts job"),
        "{}",
        minder.stderr_text()
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    minder.assert_nothing_left();
}

/// A group's give-up and its parent's decision are in minder's log at info level or
/// above, with the group's name and the budget.
#[test]
fn the_log_names_a_groups_escalation_and_its_restart() {
    let mut minder = Minder::run(&format!(
        "[group.backend]\nchildren = [\"api\"]\nintensity = 0\nperiod = \"10s\"\n\n{}",
        sleeper("api", "backoff = { initial = \"10ms\" }"),
    ));
    let api = minder.wait_pid("api", None);
    send_signal(api, Signal::SIGKILL);
    minder.wait_pid("api", Some(api));
    let log = minder.stderr_text();
    assert!(
        log.contains("backend gave up: 1 restart in 10s > intensity 0; stopping its children"),
        "{log}"
    );
    assert!(log.contains("root restarts backend"), "{log}");
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

/// `minder check` on `config`: exit code, stdout, stderr.
fn check(minder: &Minder, config: &str) -> (Option<i32>, String, String) {
    minder.write("check.toml", config);
    let child = std::process::Command::new(common::MINDER)
        .arg("check")
        .arg(minder.path("check.toml"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn minder check");
    // No reaper runs in this test process, so waiting here steals nothing.
    #[allow(clippy::disallowed_methods)]
    let output = child.wait_with_output().expect("wait for minder check");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A group with auto_shutdown whose restart is permanent is valid, but it would be
/// restarted as soon as it shut itself down: `minder check` says so and still passes.
#[test]
fn check_warns_about_a_permanent_group_with_auto_shutdown() {
    let minder = Minder::new();
    let (code, stdout, stderr) = check(
        &minder,
        "[group.job]\nchildren = [\"task\"]\nauto_shutdown = \"any_significant\"\n\
         [service.task]\ncommand = \"true\"\nrestart = \"transient\"\nsignificant = true\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("group job: one_for_one"), "{stdout}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("`group.job`: auto_shutdown is set but restart is \"permanent\""),
        "{stderr}"
    );
}

/// `minder run` prints the same warning at start, and runs the file as written.
#[test]
fn run_warns_about_a_permanent_group_with_auto_shutdown_and_runs_it() {
    let mut minder = Minder::run(&format!(
        "[group.job]\nchildren = [\"task\"]\nauto_shutdown = \"any_significant\"\n{}",
        sleeper("task", "restart = \"transient\"\nsignificant = true")
    ));
    minder.wait_pid("task", None);
    let log = minder.stderr_text();
    assert!(
        log.contains("warning: ")
            && log.contains("`group.job`: auto_shutdown is set but restart is \"permanent\""),
        "{log}"
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

/// What OTP refuses is a config error with line and column: a significant permanent
/// group, and a significant child under a parent whose auto_shutdown is "never".
#[test]
fn check_refuses_what_otp_refuses_of_significant_groups() {
    let minder = Minder::new();
    let (code, _, stderr) = check(
        &minder,
        "[root]\nauto_shutdown = \"any_significant\"\n\
         [group.job]\nchildren = [\"task\"]\nsignificant = true\n\
         [service.task]\ncommand = \"true\"\nrestart = \"temporary\"\nsignificant = true\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "check.toml:5:1: `group.job.significant`: a permanent group cannot be significant"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "check.toml:9:1: `service.task.significant`: significant = true has no effect while its parent's `group.job.auto_shutdown` is \"never\""
        ),
        "{stderr}"
    );
}
