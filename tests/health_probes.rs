//! Black-box tests of liveness on the real binary: health probes (exec, http, tcp)
//! restart a service after exactly `failures` failures in a row and never during
//! `start_period`; a hung exec probe is killed at its timeout, counted as a failure
//! and reaped, and so is one still running when its service's main process dies;
//! the memory guard restarts a service over `max_memory`; a service never
//! ready by its deadline is restarted until the root's budget is spent (exit 3); a bad
//! probe in the config is refused with its position; a probe target that does not
//! exist is a failure, never a crash.
//!
//! The http services are `tests/fixtures/health_server.py`, which answers 503 while a
//! flag file exists and logs every request it receives, with its pid, so the tests
//! count the probes each incarnation got.

mod common;

use common::{
    Minder, PATIENCE, Signal, fixture, free_port, is_alive, pid_then_sleep, proc_state,
    send_signal, sh_service, wait_for, zombies_under,
};
use std::time::Duration;

/// The statuses `health_server.py` answered to the incarnation `pid`, in order.
fn answers_of(minder: &Minder, pid: i32) -> Vec<u16> {
    requests_of(minder, pid)
        .into_iter()
        .map(|(status, _)| status)
        .collect()
}

/// The requests the incarnation `pid` answered: (status, CLOCK_REALTIME ns).
fn requests_of(minder: &Minder, pid: i32) -> Vec<(u16, u128)> {
    minder
        .lines("requests.log")
        .iter()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let by: i32 = fields.next()?.parse().ok()?;
            let status = fields.next()?.parse().ok()?;
            let at = fields.next()?.parse().ok()?;
            (by == pid).then_some((status, at))
        })
        .collect()
}

/// Waits until the incarnation `pid` has answered `count` probes with `status`.
fn wait_answers(minder: &Minder, pid: i32, status: u16, count: usize) {
    let answered = wait_for(PATIENCE, || {
        answers_of(minder, pid)
            .iter()
            .filter(|s| **s == status)
            .count()
            >= count
    });
    assert!(
        answered,
        "{pid} did not answer {count} probes with {status}: {:?}\nstderr:\n{}",
        answers_of(minder, pid),
        minder.stderr_text()
    );
}

/// `web`: the fixture server on `port`, unhealthy while `fail` exists, checked by
/// `health` (TOML table body lines after `http = ...`). It stamps `web.start`
/// (CLOCK_REALTIME ns, the clock of the request log) just before it execs python.
fn web_service(port: u16, health: &str) -> String {
    format!(
        "{}\n[service.web.health]\nhttp = \"http://127.0.0.1:{port}/health\"\n{health}\n",
        sh_service(
            "web",
            &format!(
                "date +%s%N > web.start; echo $$ > web.pid; \
                 exec python3 {} {port} fail requests.log",
                fixture("health_server.py")
            ),
            "backoff = { initial = \"50ms\" }"
        )
    )
}

#[test]
fn an_http_health_check_restarts_the_service_after_exactly_failures_failed_probes() {
    let port = free_port();
    let config = format!(
        "[root]\nintensity = 10\n\n{}",
        web_service(
            port,
            "interval = \"150ms\"\ntimeout = \"1s\"\nfailures = 3\nstart_period = \"3s\""
        )
    );
    let minder = Minder::run(&config);
    let first = minder.wait_pid("web", None);
    // Health probes run from exec; start_period covers python's start, which takes
    // over a second on a loaded machine. The flag is created once a probe past
    // start_period has passed (by the server's own clock), so every failure from then
    // on counts.
    let started = minder.wait_number("web.start");
    let past_start_period = started + Duration::from_millis(3100).as_nanos();
    let healthy_after_grace = wait_for(PATIENCE, || {
        requests_of(&minder, first)
            .iter()
            .any(|(status, at)| *status == 200 && *at > past_start_period)
    });
    assert!(
        healthy_after_grace,
        "no passing probe after start_period: {:?}\nstderr:\n{}",
        requests_of(&minder, first),
        minder.stderr_text()
    );

    minder.write("fail", "");
    let second = minder.wait_pid("web", Some(first));
    std::fs::remove_file(minder.path("fail")).expect("remove the flag");
    minder.wait_log(&["failure: health", "service=\"web\""], 1, PATIENCE);

    // Every answer after the flag was 503, and the third one ended the incarnation:
    // no probe was answered before the restart beyond those three.
    let answers = answers_of(&minder, first);
    let failed: Vec<_> = answers.iter().skip_while(|s| **s == 200).collect();
    assert_eq!(
        failed,
        [&503, &503, &503],
        "answers of {first}: {answers:?}\nstderr:\n{}",
        minder.stderr_text()
    );
    // minder counted them 1, 2, 3 and acted on the third, not later.
    minder.wait_log(&["check failed", "HTTP 503", "consecutive=3"], 1, PATIENCE);
    assert!(
        minder
            .log_lines(&["check failed", "consecutive=4"])
            .is_empty(),
        "stderr:\n{}",
        minder.stderr_text()
    );
    // The new incarnation is healthy and stays.
    wait_answers(&minder, second, 200, 3);
    assert_eq!(minder.pid_file("web"), Some(second));
}

#[test]
fn a_tcp_health_check_restarts_the_service_once_its_listener_is_gone() {
    // The service's shell starts a listener in the background and stays in the
    // foreground itself: killing the listener leaves the service running, only its
    // port closed. The ready check on the same port shows the listener is up. Health
    // probes run from exec, so start_period covers python's start (which takes over a
    // second on a loaded machine, for the first incarnation and for the next).
    let port = free_port();
    let config = format!(
        "[root]\nintensity = 10\n\n{}",
        sh_service(
            "svc",
            &format!(
                "echo $$ > svc.pid; python3 -m http.server {port} --bind 127.0.0.1 & \
                 echo $! > listener.pid; sleep 1000"
            ),
            &format!(
                "backoff = {{ initial = \"50ms\" }}\n\
                 ready = {{ tcp = \"127.0.0.1:{port}\", interval = \"50ms\" }}\n\
                 health = {{ tcp = \"127.0.0.1:{port}\", interval = \"100ms\", failures = 2, \
                 start_period = \"3s\" }}"
            )
        ),
    );
    let minder = Minder::run(&config);
    let first = minder.wait_pid("svc", None);
    let listener = minder.wait_pid("listener", None);
    minder.wait_log(&["ready", "service=\"svc\""], 1, PATIENCE);

    // Failures inside start_period show as consecutive=0; the listener stays dead, so
    // they go on past it and count.
    send_signal(listener, Signal::SIGKILL);
    let second = minder.wait_pid("svc", Some(first));
    minder.wait_log(
        &["check failed", "Connection refused", "consecutive=2"],
        1,
        PATIENCE,
    );
    minder.wait_log(&["failure: health", "service=\"svc\""], 1, PATIENCE);
    // The new incarnation's listener is up again, and it stays.
    minder.wait_pid("listener", Some(listener));
    minder.wait_log(&["ready", "service=\"svc\""], 2, PATIENCE);
    assert_eq!(minder.pid_file("svc"), Some(second));
}

#[test]
fn failures_during_start_period_do_not_restart_the_service() {
    let port = free_port();
    let config = web_service(
        port,
        "interval = \"150ms\"\ntimeout = \"1s\"\nfailures = 2\nstart_period = \"3s\"",
    );
    let mut minder = Minder::new();
    // Unhealthy from its very first probe.
    minder.write("fail", "");
    minder.write("cfg.toml", &config);
    minder.start_run(&[]);
    let web = minder.wait_pid("web", None);
    // More failures in a row than `failures`, all inside the grace period ...
    wait_answers(&minder, web, 503, 4);
    std::fs::remove_file(minder.path("fail")).expect("remove the flag");
    // ... then healthy.
    wait_answers(&minder, web, 200, 3);

    assert_eq!(minder.pid_file("web"), Some(web));
    assert!(is_alive(web));
    let failed = minder.log_lines(&["check failed", "service=\"web\""]);
    assert!(failed.len() >= 4, "stderr:\n{}", minder.stderr_text());
    assert!(
        failed.iter().all(|line| line.contains("consecutive=0")),
        "a failure in start_period counted:\n{}",
        minder.stderr_text()
    );
    assert!(
        minder.log_lines(&["stopping the service"]).is_empty(),
        "stderr:\n{}",
        minder.stderr_text()
    );
}

#[test]
fn a_hung_exec_probe_is_killed_at_its_timeout_counted_and_reaped() {
    // Each probe records its pid and, until `healthy` exists, hangs far past its
    // timeout. Two timeouts in a row restart the service. Every probe, hung or
    // passing, also leaves a background sleep (recorded too) in its process group:
    // it must go with the probe.
    let config = format!(
        "[root]\nintensity = 10\n\n{}\
         [service.svc.health]\n\
         exec = [\"sh\", \"-c\", \"echo $$ >> probe.pids; sleep 100 & echo $! >> probe.pids; \
         [ -e healthy ] && exit 0; exec sleep 100\"]\n\
         timeout = \"200ms\"\ninterval = \"300ms\"\nfailures = 2\n",
        sh_service(
            "svc",
            &pid_then_sleep("svc"),
            "backoff = { initial = \"50ms\" }"
        ),
    );
    let mut minder = Minder::run(&config);
    let first = minder.wait_pid("svc", None);
    let second = minder.wait_pid("svc", Some(first));
    minder.write("healthy", "");
    minder.wait_log(
        &["check failed", "timed out after 200ms", "consecutive=2"],
        1,
        PATIENCE,
    );
    minder.wait_log(&["failure: health", "service=\"svc\""], 1, PATIENCE);

    // Later probes pass: the new incarnation stays, and every probe so far is gone,
    // neither alive nor a zombie (proc_state is None only once it has been reaped).
    let hung: Vec<i32> = minder
        .lines("probe.pids")
        .iter()
        .filter_map(|line| line.parse().ok())
        .collect();
    assert!(hung.len() >= 4, "probes and their forks: {hung:?}");
    let mut left = Vec::new();
    let reaped = wait_for(PATIENCE, || {
        left = hung
            .iter()
            .copied()
            .filter(|pid| proc_state(*pid).is_some())
            .collect();
        left.is_empty()
    });
    assert!(
        reaped,
        "probe processes not reaped:\n{}stderr:\n{}",
        minder.describe(&left),
        minder.stderr_text()
    );
    assert!(
        wait_for(PATIENCE, || zombies_under(minder.pid()).is_empty()),
        "zombies under minder: {:?}",
        zombies_under(minder.pid())
    );
    let is_hung_probe = |pid: &i32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|argv| argv == b"sleep\x00100\x00")
    };
    assert!(
        !minder.leftovers().iter().any(is_hung_probe),
        "a hung probe is alive:\n{}",
        minder.describe(&minder.leftovers())
    );
    assert_eq!(minder.pid_file("svc"), Some(second));
    assert!(minder.is_running());
}

#[test]
fn a_service_over_max_memory_is_restarted_and_one_under_it_is_not() {
    // `hog` touches 64 MiB (every byte written) and sleeps; `calm` is a python doing
    // nothing, some 10 MiB; `parent` is a shell (small) whose forked python touches
    // 64 MiB: the guard measures the service's whole process group. All have the same
    // 32 MiB limit.
    let allocate = "python3 -c 'import time; hog = b\"\\x01\" * (64 << 20); time.sleep(1000)'";
    let health = "[service.NAME.health]\nmax_memory = \"32MiB\"\ninterval = \"200ms\"\n";
    let backoff = "backoff = { initial = \"50ms\" }";
    let config = format!(
        "[root]\nintensity = 20\n\n{}{}{}{}{}{}",
        sh_service(
            "hog",
            &format!("echo $$ > hog.pid; exec {allocate}"),
            backoff
        ),
        health.replace("NAME", "hog"),
        sh_service(
            "parent",
            &format!("echo $$ > parent.pid; {allocate} & wait"),
            backoff
        ),
        health.replace("NAME", "parent"),
        sh_service(
            "calm",
            "echo $$ > calm.pid; exec python3 -c 'import time; time.sleep(1000)'",
            ""
        ),
        health.replace("NAME", "calm"),
    );
    let minder = Minder::run(&config);
    let calm = minder.wait_pid("calm", None);
    let first = minder.wait_pid("hog", None);
    let second = minder.wait_pid("hog", Some(first));
    minder.wait_log(&["failure: memory", "service=\"hog\""], 1, PATIENCE);
    minder.wait_log(
        &["exceeds max_memory 33554432", "service=\"hog\""],
        1,
        PATIENCE,
    );
    let parent = minder.wait_pid("parent", None);
    minder.wait_pid("parent", Some(parent));
    minder.wait_log(&["failure: memory", "service=\"parent\""], 1, PATIENCE);
    // A second restart of `hog`: `calm` has been sampled many times meanwhile.
    minder.wait_pid("hog", Some(second));
    assert_eq!(minder.pid_file("calm"), Some(calm));
    assert!(is_alive(calm));
    assert!(
        minder
            .log_lines(&["service=\"calm\"", "failure"])
            .is_empty(),
        "calm was condemned:\n{}",
        minder.stderr_text()
    );
}

#[test]
fn a_service_never_ready_by_its_deadline_is_restarted_until_the_root_gives_up() {
    // Nothing listens on the port; `after` must never start (it waits for `never`).
    let port = free_port();
    let config = format!(
        "[root]\nintensity = 2\nperiod = \"30s\"\n\n{}{}",
        sh_service(
            "never",
            "echo $$ >> never.pids; echo $$ > never.pid; exec sleep 1000",
            &format!(
                "backoff = {{ initial = \"10ms\" }}\n\
                 ready = {{ tcp = \"127.0.0.1:{port}\", interval = \"100ms\", deadline = \"500ms\" }}"
            )
        ),
        sh_service("after", &pid_then_sleep("after"), ""),
    );
    let mut minder = Minder::run(&config);
    let first = minder.wait_pid("never", None);
    minder.wait_pid("never", Some(first));
    minder.wait_log(
        &["failure: ready_deadline", "service=\"never\""],
        1,
        PATIENCE,
    );
    let code = minder.expect_exit(Duration::from_secs(8));
    assert_eq!(code, 3, "stderr:\n{}", minder.stderr_text());
    let starts = minder.lines("never.pids");
    assert_eq!(starts.len(), 3, "one start and two restarts: {starts:?}");
    assert!(minder.pid_file("after").is_none(), "after started");
    minder.assert_nothing_left();
}

#[test]
fn an_invalid_probe_in_the_config_is_refused_with_its_position() {
    let config = "[service.a]\ncommand = \"sleep 1000\"\n\
                  [service.a.health]\nhttp = \"http://127.0.0.1:99999/\"\n";
    let mut minder = Minder::run(config);
    let code = minder.expect_exit(PATIENCE);
    assert_eq!(code, 2, "stderr:\n{}", minder.stderr_text());
    // minder has exited; its last lines may still be on their way through the pipe.
    minder.wait_log(
        &["cfg.toml:4:8", "service.a.health.http", "99999"],
        1,
        PATIENCE,
    );
    minder.assert_nothing_left();
}

#[test]
fn a_probe_target_that_does_not_exist_or_never_answers_is_a_failure_not_a_crash() {
    // A port nothing listens on; a host name that cannot resolve; and a listener of
    // the test's that never accepts: the kernel completes the handshake, so the GET
    // hangs until the probe's timeout.
    let port = free_port();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let silent_address = silent.local_addr().expect("local address");
    let config = format!(
        "{}{}{}",
        sh_service(
            "closed",
            &pid_then_sleep("closed"),
            &format!(
                "health = {{ tcp = \"127.0.0.1:{port}\", interval = \"100ms\", failures = 1000 }}"
            )
        ),
        sh_service(
            "nohost",
            &pid_then_sleep("nohost"),
            "health = { http = \"http://no-such-host.invalid/\", interval = \"100ms\", \
             timeout = \"1s\", failures = 1000 }"
        ),
        sh_service(
            "silent",
            &pid_then_sleep("silent"),
            &format!(
                "health = {{ http = \"http://{silent_address}/\", interval = \"100ms\", \
                 timeout = \"300ms\", failures = 1000 }}"
            )
        ),
    );
    let mut minder = Minder::run(&config);
    let pids = ["closed", "nohost", "silent"].map(|name| minder.wait_pid(name, None));
    minder.wait_log(&["check failed", "service=\"closed\""], 3, PATIENCE);
    minder.wait_log(&["check failed", "service=\"nohost\""], 3, PATIENCE);
    minder.wait_log(&["check failed", "no-such-host.invalid"], 1, PATIENCE);
    minder.wait_log(
        &[
            "check failed",
            "timed out after 300ms",
            "service=\"silent\"",
        ],
        3,
        PATIENCE,
    );
    assert!(minder.is_running(), "stderr:\n{}", minder.stderr_text());
    for (name, pid) in ["closed", "nohost", "silent"].into_iter().zip(pids) {
        assert_eq!(minder.pid_file(name), Some(pid));
        assert!(is_alive(pid), "{name} was stopped");
    }
    drop(silent);
}

#[test]
fn a_probe_in_flight_at_shutdown_is_killed_and_reaped() {
    // The probe hangs well inside its 30 s timeout when minder is told to stop: the
    // orderly shutdown must not wait for it, nor leave it behind.
    let config = format!(
        "{}[service.svc.health]\n\
         exec = [\"sh\", \"-c\", \"echo $$ > probe.pid; exec sleep 100\"]\n\
         timeout = \"30s\"\ninterval = \"100ms\"\n",
        sh_service("svc", &pid_then_sleep("svc"), ""),
    );
    let mut minder = Minder::run(&config);
    minder.wait_pid("svc", None);
    let probe = minder.wait_pid("probe", None);
    minder.signal(Signal::SIGTERM);
    let code = minder.expect_exit(PATIENCE);
    assert_eq!(code, 0, "stderr:\n{}", minder.stderr_text());
    assert!(!is_alive(probe), "the probe {probe} outlived minder");
    minder.assert_nothing_left();
}

#[test]
fn a_probe_in_flight_when_its_service_dies_is_killed_and_reaped_at_once() {
    // The probe hangs well inside its 30 s timeout, with a fork of its own in its
    // process group, when the service's main process is killed from outside. The
    // probe runs in a session of its own, so killing the service's group does not
    // reach it: only the end of the service's record does. Its result would be about
    // a process that is gone; it must not wait for its timeout, nor be left behind.
    let config = format!(
        "[root]\nintensity = 10\n\n{}[service.svc.health]\n\
         exec = [\"sh\", \"-c\", \"[ -e probe.pid ] && exit 0; sleep 100 & echo $! > fork.pid; \
         echo $$ > probe.pid; exec sleep 100\"]\n\
         timeout = \"30s\"\ninterval = \"100ms\"\n",
        sh_service(
            "svc",
            &pid_then_sleep("svc"),
            "backoff = { initial = \"10ms\" }"
        ),
    );
    let mut minder = Minder::run(&config);
    let first = minder.wait_pid("svc", None);
    let probe = minder.wait_pid("probe", None);
    let fork = minder.wait_pid("fork", None);
    send_signal(first, Signal::SIGKILL);
    let mut left = Vec::new();
    let reaped = wait_for(PATIENCE, || {
        left = [probe, fork]
            .into_iter()
            .filter(|pid| proc_state(*pid).is_some())
            .collect();
        left.is_empty()
    });
    assert!(
        reaped,
        "the probe of the dead process is still there:\n{}stderr:\n{}",
        minder.describe(&left),
        minder.stderr_text()
    );
    // The service itself goes on: restarted, and later probes pass.
    minder.wait_pid("svc", Some(first));
    assert!(
        wait_for(PATIENCE, || zombies_under(minder.pid()).is_empty()),
        "zombies under minder: {:?}",
        zombies_under(minder.pid())
    );
    assert!(minder.is_running());
}
