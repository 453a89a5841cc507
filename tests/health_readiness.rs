//! Black-box tests of readiness on the real binary: a service starts only once the
//! sibling before it is ready, for each kind of check (tcp, http, sd_notify through the
//! real `systemd-notify`, an s6-style fd); the watchdog restarts a service that stops
//! sending `WATCHDOG=1`; a notify message from outside the service is ignored.
//!
//! Order is measured by the processes themselves, on one clock (CLOCK_REALTIME, via
//! `date +%s%N`): the first service stamps the moment just before it becomes ready,
//! the second stamps its start as its first action.

mod common;

use common::{
    Minder, PATIENCE, Signal, env_var_of, fixture, free_port, pid_then_sleep, send_signal,
    sh_service, wait_for,
};
use std::time::{Duration, Instant};

/// A root with `a`, which becomes ready through `ready` after `becoming_ready` (shell)
/// runs, and `b`, which stamps `b.start` as its first act. `a` waits 300 ms before it
/// stamps `a.ready` (just before it does what makes it ready): had minder started `b`
/// without waiting for `a`'s readiness, `b.start` would come some 300 ms before
/// `a.ready`. Returns the minder (still running) after checking the order.
fn assert_b_starts_after_a_is_ready(ready: &str, becoming_ready: &str) -> Minder {
    let a = format!("echo $$ > a.pid; sleep 0.3; date +%s%N > a.ready; {becoming_ready}");
    let config = format!(
        "{}{}",
        sh_service("a", &a, &format!("ready = {ready}")),
        sh_service(
            "b",
            "date +%s%N > b.start; echo $$ > b.pid; exec sleep 1000",
            ""
        ),
    );
    let minder = Minder::run(&config);
    minder.wait_pid("b", None);
    let b_start = minder.wait_number("b.start");
    let a_ready = minder.wait_number("a.ready");
    assert!(
        b_start >= a_ready,
        "b started {} ms before a became ready\nstderr:\n{}",
        (a_ready - b_start) / 1_000_000,
        minder.stderr_text()
    );
    minder.wait_log(&["ready", "service=\"a\""], 1, PATIENCE);
    minder
}

#[test]
fn a_tcp_ready_check_holds_the_next_sibling_until_the_port_accepts() {
    let port = free_port();
    assert_b_starts_after_a_is_ready(
        &format!("{{ tcp = \"127.0.0.1:{port}\", interval = \"50ms\" }}"),
        &format!("exec python3 -m http.server {port} --bind 127.0.0.1"),
    );
}

#[test]
fn an_http_ready_check_holds_the_next_sibling_until_the_endpoint_answers() {
    let port = free_port();
    assert_b_starts_after_a_is_ready(
        &format!("{{ http = \"http://127.0.0.1:{port}/ready\", interval = \"50ms\" }}"),
        &format!(
            "exec python3 {} {port} never-created requests.log",
            fixture("health_server.py")
        ),
    );
}

#[test]
fn a_notify_ready_check_waits_for_systemd_notify_ready() {
    // The real client, which also sends BARRIER=1 with a pipe and waits for minder to
    // close it (up to 5 s, then it fails): its exit code and duration are recorded.
    let minder = assert_b_starts_after_a_is_ready(
        "{ notify = true }",
        "t0=$(date +%s%N); systemd-notify --ready; echo $? > a.notify_code; \
         echo $(( ($(date +%s%N) - t0) / 1000000 )) > a.notify_ms; exec sleep 1000",
    );
    let code = minder.wait_number("a.notify_code");
    let millis = minder.wait_number("a.notify_ms");
    assert_eq!(
        code,
        0,
        "systemd-notify --ready failed after {millis} ms\nstderr:\n{}",
        minder.stderr_text()
    );
    // Its barrier times out after 5 s: well under that means minder closed the pipe.
    assert!(
        millis < 4000,
        "systemd-notify --ready took {millis} ms: minder did not close the barrier's fd"
    );
}

#[test]
fn an_fd_ready_check_waits_for_the_newline_on_fd_3() {
    assert_b_starts_after_a_is_ready("{ fd = 3 }", "echo >&3; exec sleep 1000");
}

#[test]
fn a_service_that_stops_sending_watchdog_is_restarted_and_one_that_keeps_sending_is_not() {
    // Both send READY=1 and then WATCHDOG=1 every 100 ms; `lapse` stops after 4 pings
    // and stays alive, silent. The watchdog is 700 ms.
    let client = fixture("notify_client.py");
    let notify =
        "ready = { notify = true }\nwatchdog = \"700ms\"\nbackoff = { initial = \"50ms\" }";
    let config = format!(
        "[root]\nintensity = 20\n\n{}{}",
        sh_service(
            "steady",
            &format!("echo $$ > steady.pid; exec python3 {client} 0.1 -1"),
            notify
        ),
        sh_service(
            "lapse",
            &format!("echo $$ > lapse.pid; exec python3 {client} 0.1 4"),
            notify
        ),
    );
    let minder = Minder::run(&config);
    let steady = minder.wait_pid("steady", None);
    // The client is told the timeout; not WATCHDOG_PID (docs/design.md §4).
    assert_eq!(
        env_var_of(steady, "WATCHDOG_USEC").as_deref(),
        Some("700000")
    );
    assert_eq!(env_var_of(steady, "WATCHDOG_PID"), None);
    let first = minder.wait_pid("lapse", None);
    minder.wait_log(&["ready", "service=\"steady\""], 1, PATIENCE);
    let second = minder.wait_pid("lapse", Some(first));
    minder.wait_log(&["failure: watchdog", "service=\"lapse\""], 1, PATIENCE);
    // A second lapse: by then `steady` has lived through several watchdog periods
    // since it was ready, fed only by its pings.
    minder.wait_pid("lapse", Some(second));
    assert_eq!(
        minder.pid_file("steady"),
        Some(steady),
        "stderr:\n{}",
        minder.stderr_text()
    );
    assert!(
        minder
            .log_lines(&["service=\"steady\"", "failure"])
            .is_empty(),
        "steady was condemned:\n{}",
        minder.stderr_text()
    );
}

#[test]
fn a_ready_message_from_outside_the_service_is_ignored() {
    // `n` never says READY=1 itself until the test creates `go`; `b` comes after it.
    let config = format!(
        "{}{}",
        sh_service(
            "n",
            "echo $$ > n.pid; while [ ! -e go ]; do sleep 0.05; done; \
             systemd-notify --ready; exec sleep 1000",
            "ready = { notify = true, deadline = \"30s\" }"
        ),
        sh_service("b", &pid_then_sleep("b"), ""),
    );
    let mut minder = Minder::run(&config);
    let n = minder.wait_pid("n", None);
    let mut socket = None;
    assert!(
        wait_for(PATIENCE, || {
            socket = env_var_of(n, "NOTIFY_SOCKET");
            socket.is_some()
        }),
        "n has no NOTIFY_SOCKET in its environment"
    );
    let socket = socket.expect("found");

    // The test process itself (root, so the socket's mode lets it in) ...
    let sender = std::os::unix::net::UnixDatagram::unbound().expect("datagram socket");
    sender
        .send_to(b"READY=1", &socket)
        .unwrap_or_else(|error| panic!("send to {socket}: {error}"));
    let me = std::process::id();
    minder.wait_log(
        &["from outside the service", &format!("sender={me}")],
        1,
        PATIENCE,
    );

    // ... and the real client started outside minder, with the path in its environment.
    let started = Instant::now();
    let mut outsider = std::process::Command::new("systemd-notify")
        .arg("--ready")
        .env("NOTIFY_SOCKET", &socket)
        .env(common::MARK_VAR, minder.mark())
        .spawn()
        .expect("spawn systemd-notify");
    let outsider_pid = outsider.id();
    minder.wait_log(
        &[
            "from outside the service",
            &format!("sender={outsider_pid}"),
        ],
        1,
        PATIENCE,
    );
    #[allow(clippy::disallowed_methods)] // the test's own child, not minder's
    let outsider_status = outsider.wait().expect("wait for systemd-notify");
    // Dropped or not, the barrier's pipe must be closed: the client must not hang 5 s.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "systemd-notify from outside took {:?} ({outsider_status}): its barrier fd was \
         not closed",
        started.elapsed()
    );

    // Both messages were dropped before this line; an accepted READY=1 would have
    // started b within milliseconds.
    assert!(
        !wait_for(Duration::from_millis(500), || minder
            .pid_file("b")
            .is_some()),
        "b started after a READY=1 from outside n\nstderr:\n{}",
        minder.stderr_text()
    );
    assert!(minder.is_running());

    // Control: the socket works, and the service's own READY=1 is heard.
    minder.write("go", "");
    minder.wait_pid("b", None);
    assert_eq!(minder.pid_file("n"), Some(n));
    send_signal(minder.pid(), Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    minder.assert_nothing_left();
}

#[test]
fn an_exec_ready_probe_runs_as_the_service_with_its_environment_and_directory() {
    // The probe passes only with the service's variable; it records who and where it
    // ran. The service runs as `nobody` in `work/`, which it must be able to write.
    let mut minder = Minder::new();
    let work = minder.path("work");
    std::fs::create_dir(&work).expect("create work/");
    common::make_world_writable(&work);
    let config = format!(
        "{}{}",
        sh_service(
            "a",
            "echo $$ > a.pid; exec sleep 1000",
            "user = \"nobody\"\nworking_dir = \"work\"\nenv = { PROBE_VAR = \"yes\" }\n\
             ready = { exec = [\"sh\", \"-c\", \
             \"id -u > probe.uid; pwd > probe.cwd; [ \\\"$PROBE_VAR\\\" = yes ]\"], \
             interval = \"50ms\" }"
        ),
        sh_service("b", &pid_then_sleep("b"), ""),
    );
    minder.write("cfg.toml", &config);
    minder.start_run(&[]);
    minder.wait_pid("b", None);
    let nobody = common::command_stdout("id", &["-u", "nobody"]);
    assert_eq!(minder.lines("work/probe.uid"), [nobody.trim()]);
    assert_eq!(
        minder.lines("work/probe.cwd"),
        [work
            .canonicalize()
            .expect("canonical work/")
            .display()
            .to_string()]
    );
}
