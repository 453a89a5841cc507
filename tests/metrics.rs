//! Black-box tests of the metrics endpoint on the real binary: a live scrape passes
//! `promtool check metrics` (Debian's `prometheus` package; `.ci/run` installs it);
//! the values follow what happened (kills, a failed health check, a group that spent
//! its budget), with one recovery observation per recovery; `/readyz` turns 200 once
//! the checked services are ready and 503 as soon as a shutdown begins; `/healthz`
//! stays 200 beside a crash-looping service; an address that cannot be bound stops
//! minder before anything starts (exit 2, naming it); and a scraper that never
//! finishes its request does not hold up supervision.
//!
//! Each minder listens on `127.0.0.1:0` and the test reads the port it got from its
//! log. The client is a plain HTTP/1.1 exchange over a TCP socket, so a test can also
//! misbehave on purpose (send half a request and stall).

mod common;

use common::{Minder, PATIENCE, Signal, pid_then_sleep, send_signal, sh_service, wait_for};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The head of every config here: an endpoint on a free port, no control socket.
const DAEMON: &str = "[daemon]\nmetrics_listen = \"127.0.0.1:0\"\ncontrol_socket = \"\"\n";

/// The address minder logged as its endpoint's.
fn endpoint(minder: &Minder) -> SocketAddr {
    let lines = minder.wait_log(&["metrics listening on "], 1, PATIENCE);
    let address = lines[0]
        .rsplit("metrics listening on ")
        .next()
        .expect("address")
        .trim();
    address
        .parse()
        .unwrap_or_else(|error| panic!("{address:?}: {error}"))
}

/// `GET path` over a fresh connection: the status code and the body.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the metrics endpoint");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: minder\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    (status, body)
}

/// The value of the sample `series` (name with labels, as written) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// Scrapes until `series` has `expected`; panics with the last scrape after PATIENCE.
fn wait_value(minder: &Minder, address: SocketAddr, series: &str, expected: f64) -> String {
    let mut text = String::new();
    let reached = wait_for(PATIENCE, || {
        text = get(address, "/metrics").1;
        value(&text, series) == Some(expected)
    });
    assert!(
        reached,
        "{series} never became {expected}\nlast scrape:\n{text}\nstderr:\n{}",
        minder.stderr_text()
    );
    text
}

fn service_labels(service: &str, group: &str) -> String {
    format!("{{service=\"{service}\",group=\"{group}\"}}")
}

#[test]
fn a_live_scrape_passes_promtool_check_metrics() {
    let config = format!(
        "{DAEMON}[group.back]\nchildren = [\"db\"]\n{}{}",
        sh_service(
            "db",
            &pid_then_sleep("db"),
            "[service.db.health]\nexec = [\"true\"]\ninterval = \"100ms\""
        ),
        sh_service("web", &pid_then_sleep("web"), "")
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    let web = minder.wait_pid("web", None);
    send_signal(web, Signal::SIGKILL);
    minder.wait_pid("web", Some(web));
    let text = wait_value(
        &minder,
        address,
        &format!(
            "minder_service_restarts_total{}",
            service_labels("web", "root")
        ),
        1.0,
    );
    assert!(
        text.contains("\nprocess_resident_memory_bytes "),
        "minder's own process metrics:\n{text}"
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("run promtool ({error}): install Debian's `prometheus` package, as .ci/run does")
        });
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    #[allow(clippy::disallowed_methods)] // promtool is the test's own child
    let output = promtool.wait_with_output().expect("promtool's verdict");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\nscrape:\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn restarts_and_recoveries_count_each_of_three_kills() {
    let config = format!(
        "{DAEMON}{}",
        sh_service(
            "victim",
            &pid_then_sleep("victim"),
            "backoff = { initial = \"0s\" }"
        )
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    let mut pid = minder.wait_pid("victim", None);
    for _ in 0..3 {
        send_signal(pid, Signal::SIGKILL);
        pid = minder.wait_pid("victim", Some(pid));
    }
    let labels = service_labels("victim", "root");
    let text = wait_value(
        &minder,
        address,
        &format!("minder_service_recovery_seconds_count{labels}"),
        3.0,
    );
    let sample = |series: &str| value(&text, series);
    assert_eq!(
        sample(&format!("minder_service_restarts_total{labels}")),
        Some(3.0)
    );
    assert_eq!(
        sample(r#"minder_service_exits_total{service="victim",group="root",reason="signal"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(r#"minder_service_exits_total{service="victim",group="root",reason="abnormal"}"#),
        Some(0.0)
    );
    assert_eq!(sample(&format!("minder_service_up{labels}")), Some(1.0));
    assert_eq!(sample(&format!("minder_service_ready{labels}")), Some(1.0));
    // Every recovery is in some finite bucket: the histogram's buckets end at 5 min.
    assert_eq!(
        sample(r#"minder_service_recovery_seconds_bucket{service="victim",group="root",le="300"}"#),
        Some(3.0)
    );
    // Read from /proc at scrape time; a process caught in the middle of its exec can
    // show no resident pages for an instant, so a later scrape may be needed.
    let memory = format!("minder_service_memory_bytes{labels}");
    let resident = wait_for(PATIENCE, || {
        value(&get(address, "/metrics").1, &memory).is_some_and(|bytes| bytes > 0.0)
    });
    assert!(
        resident,
        "the service's process group has no resident memory"
    );
    assert_eq!(
        sample(r#"minder_group_restarts_in_period{group="root"}"#),
        Some(3.0)
    );
}

#[test]
fn a_failed_health_check_is_counted_and_ends_the_service_as_health() {
    // The check fails once, when `fail` exists (and removes it): one failure, one
    // restart for health, one recovery.
    let config = format!(
        "{DAEMON}{}",
        sh_service(
            "checked",
            &pid_then_sleep("checked"),
            "backoff = { initial = \"0s\" }\n\
             [service.checked.health]\n\
             exec = [\"sh\", \"-c\", \"if [ -e fail ]; then rm fail; exit 1; fi\"]\n\
             interval = \"100ms\"\nfailures = 1"
        )
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    let first = minder.wait_pid("checked", None);
    minder.write("fail", "");
    minder.wait_pid("checked", Some(first));
    let labels = service_labels("checked", "root");
    let text = wait_value(
        &minder,
        address,
        &format!("minder_service_recovery_seconds_count{labels}"),
        1.0,
    );
    let sample = |series: &str| value(&text, series);
    assert_eq!(
        sample(&format!("minder_service_health_failures_total{labels}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(r#"minder_service_exits_total{service="checked",group="root",reason="health"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&format!("minder_service_restarts_total{labels}")),
        Some(1.0)
    );
}

#[test]
fn a_group_that_spends_its_budget_is_counted_as_an_escalation() {
    // `inner` allows no restart: the first crash of its service makes it give up, and
    // the root restarts it as a whole. The service crashes only once.
    let config = format!(
        "{DAEMON}[group.inner]\nintensity = 0\nchildren = [\"flaky\"]\n{}",
        sh_service(
            "flaky",
            "if [ ! -e crashed ]; then touch crashed; exit 1; fi; echo $$ > flaky.pid; exec sleep 1000",
            ""
        )
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    minder.wait_pid("flaky", None);
    let text = wait_value(
        &minder,
        address,
        r#"minder_group_escalations_total{group="inner"}"#,
        1.0,
    );
    let sample = |series: &str| value(&text, series);
    assert_eq!(
        sample(r#"minder_group_escalations_total{group="root"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(r#"minder_group_restarts_in_period{group="root"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(r#"minder_service_exits_total{service="flaky",group="inner",reason="abnormal"}"#),
        Some(1.0),
        "{text}"
    );
    // The recovery spans the whole escalation: from the crash to the ready service
    // of the restarted group.
    let text = wait_value(
        &minder,
        address,
        &format!(
            "minder_service_recovery_seconds_count{}",
            service_labels("flaky", "inner")
        ),
        1.0,
    );
    assert_eq!(
        value(
            &text,
            &format!("minder_service_ready{}", service_labels("flaky", "inner"))
        ),
        Some(1.0)
    );
}

#[test]
fn readyz_turns_200_once_checked_services_are_ready_and_503_when_a_shutdown_begins() {
    // `gated` is ready once `go` exists; `plain` has no ready check and never counts.
    // `gated` ignores SIGTERM, so the shutdown lasts its stop_timeout.
    let config = format!(
        "{DAEMON}{}{}",
        sh_service(
            "gated",
            "trap '' TERM; echo $$ > gated.pid; while :; do sleep 0.1; done",
            "stop_timeout = \"2s\"\n[service.gated.ready]\nexec = [\"test\", \"-e\", \"go\"]\ninterval = \"50ms\""
        ),
        sh_service("plain", &pid_then_sleep("plain"), "")
    );
    let mut minder = Minder::run(&config);
    let address = endpoint(&minder);
    let gated = minder.wait_pid("gated", None);
    assert_eq!(get(address, "/readyz"), (503, "gated\n".to_string()));
    minder.write("go", "");
    let mut last = (0, String::new());
    let ready = wait_for(PATIENCE, || {
        last = get(address, "/readyz");
        last.0 == 200
    });
    assert!(ready, "/readyz stayed {last:?}\n{}", minder.stderr_text());
    minder.signal(Signal::SIGTERM);
    let mut last = (0, String::new());
    let refused = wait_for(PATIENCE, || {
        last = get(address, "/readyz");
        last.0 == 503
    });
    assert!(refused, "/readyz stayed {last:?} after SIGTERM");
    assert_eq!(last.1, "shutting down\n");
    assert!(
        common::is_alive(gated),
        "the 503 came while the service still ran (it ignores SIGTERM for 2 s)"
    );
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

#[test]
fn healthz_stays_200_beside_a_crash_looping_service() {
    let config = format!(
        "{DAEMON}[root]\nintensity = 1000000\nperiod = \"1s\"\n{}",
        sh_service("crasher", "exit 1", "backoff = { initial = \"0s\" }")
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    let labels = service_labels("crasher", "root");
    let series = format!("minder_service_restarts_total{labels}");
    let looping = wait_for(PATIENCE, || {
        value(&get(address, "/metrics").1, &series).is_some_and(|restarts| restarts >= 20.0)
    });
    assert!(
        looping,
        "the service does not crash-loop:\n{}",
        minder.stderr_text()
    );
    for _ in 0..20 {
        assert_eq!(get(address, "/healthz"), (200, "ok\n".to_string()));
    }
    let (status, body) = get(address, "/nothing-here");
    assert_eq!(status, 404, "{body}");
}

#[test]
fn an_address_that_cannot_be_bound_exits_2_naming_it_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address");
    let config = format!(
        "[daemon]\nmetrics_listen = \"{address}\"\ncontrol_socket = \"\"\n{}",
        sh_service("early", &pid_then_sleep("early"), "")
    );
    let mut minder = Minder::run(&config);
    assert_eq!(minder.expect_exit(PATIENCE), 2);
    // Read from the pipe by a thread of the fixture: wait for it, not just the exit.
    let errors = minder.wait_log(&["error: ", &address.to_string()], 1, PATIENCE);
    assert!(
        errors[0].contains("metrics_listen"),
        "the error names the key: {}",
        errors[0]
    );
    assert_eq!(minder.pid_file("early"), None, "nothing was started");
}

#[test]
fn a_scraper_that_stalls_mid_request_does_not_hold_up_restarts() {
    let config = format!(
        "{DAEMON}{}",
        sh_service(
            "victim",
            &pid_then_sleep("victim"),
            "backoff = { initial = \"0s\" }"
        )
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    let mut pid = minder.wait_pid("victim", None);
    // One client sends half a request and stalls; another asks for /metrics and
    // never reads the answer.
    let mut stalled = TcpStream::connect(address).expect("connect");
    stalled
        .write_all(b"GET /metr")
        .expect("send half a request");
    let mut deaf = TcpStream::connect(address).expect("connect");
    deaf.write_all(b"GET /metrics HTTP/1.1\r\nHost: minder\r\n\r\n")
        .expect("send a request");
    for _ in 0..3 {
        send_signal(pid, Signal::SIGKILL);
        pid = minder.wait_pid("victim", Some(pid));
    }
    assert_eq!(get(address, "/healthz"), (200, "ok\n".to_string()));
    wait_value(
        &minder,
        address,
        &format!(
            "minder_service_restarts_total{}",
            service_labels("victim", "root")
        ),
        3.0,
    );
    // Both are still connected: nothing was closed to make room.
    let mut byte = [0u8; 1];
    stalled
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let still_open = matches!(
        stalled.read(&mut byte),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
    );
    assert!(still_open, "the stalled client was disconnected");
    drop(deaf);
}

#[test]
fn a_tree_without_services_still_gets_minders_own_metrics() {
    // The encoder stops at a family without samples; the service families of an
    // empty tree have none.
    let minder = Minder::run(DAEMON);
    let address = endpoint(&minder);
    let (status, text) = get(address, "/metrics");
    assert_eq!(status, 200);
    for series in [
        "minder_orphans_reaped_total",
        r#"minder_group_escalations_total{group="root"}"#,
        "process_open_fds",
    ] {
        assert!(value(&text, series).is_some(), "{series} in:\n{text}");
    }
    assert_eq!(get(address, "/readyz"), (200, "ready\n".to_string()));
}

#[test]
fn readyz_says_draining_through_drain_delay_then_shutting_down() {
    // `stubborn` ignores SIGTERM, so after the drain the shutdown lasts its
    // stop_timeout: both phases can be seen.
    let config = format!(
        "[daemon]\nmetrics_listen = \"127.0.0.1:0\"\ncontrol_socket = \"\"\n\
         drain_delay = \"1s\"\nshutdown_timeout = \"10s\"\n{}",
        sh_service(
            "stubborn",
            "trap '' TERM; echo $$ > stubborn.pid; exec sleep 1000",
            "stop_timeout = \"2s\"\n[service.stubborn.ready]\nexec = [\"true\"]\ninterval = \"50ms\""
        )
    );
    let mut minder = Minder::run(&config);
    let address = endpoint(&minder);
    let stubborn = minder.wait_pid("stubborn", None);
    let ready = wait_for(PATIENCE, || get(address, "/readyz").0 == 200);
    assert!(ready, "never ready:\n{}", minder.stderr_text());
    minder.signal(Signal::SIGTERM);
    let mut last = (0, String::new());
    let draining = wait_for(PATIENCE, || {
        last = get(address, "/readyz");
        last.0 == 503
    });
    assert!(draining, "/readyz stayed {last:?} after SIGTERM");
    assert_eq!(last.1, "draining\n");
    assert!(
        minder.log_lines(&["orderly shutdown"]).is_empty() && common::is_alive(stubborn),
        "the 503 came before the drain ended, while the service ran:\n{}",
        minder.stderr_text()
    );
    let stopping = wait_for(PATIENCE, || {
        last = get(address, "/readyz");
        last.1 == "shutting down\n"
    });
    assert!(
        stopping,
        "/readyz stayed {last:?}\n{}",
        minder.stderr_text()
    );
    assert_eq!(last.0, 503);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

/// Regression: the endpoint's labels were fixed at start and paired with the services
/// by position, so after a reload that removed one service and added another, the
/// newcomer's series were labelled with the removed one's name.
#[test]
fn after_a_reload_the_series_follow_the_new_tree() {
    let before = format!(
        "{DAEMON}{}{}",
        sh_service("gone", &pid_then_sleep("gone"), ""),
        sh_service("kept", &pid_then_sleep("kept"), "")
    );
    let minder = Minder::run(&before);
    let address = endpoint(&minder);
    let kept = minder.wait_pid("kept", None);
    send_signal(kept, Signal::SIGKILL);
    minder.wait_pid("kept", Some(kept));
    wait_value(
        &minder,
        address,
        &format!(
            "minder_service_restarts_total{}",
            service_labels("kept", "root")
        ),
        1.0,
    );

    let after = format!(
        "{DAEMON}{}{}",
        sh_service("kept", &pid_then_sleep("kept"), ""),
        sh_service("added", &pid_then_sleep("added"), "")
    );
    minder.write("cfg.toml", &after);
    send_signal(minder.pid(), Signal::SIGHUP);
    minder.wait_pid("added", None);
    let text = wait_value(
        &minder,
        address,
        &format!("minder_service_up{}", service_labels("added", "root")),
        1.0,
    );
    // The kept service keeps its count under its own name; the removed one is gone.
    assert_eq!(
        value(
            &text,
            &format!(
                "minder_service_restarts_total{}",
                service_labels("kept", "root")
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("service=\"gone\""),
        "a removed service still has series:\n{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "minder_service_restarts_total{}",
                service_labels("added", "root")
            )
        ),
        Some(0.0),
        "{text}"
    );
}

#[test]
fn regression_an_operators_hold_was_timed_as_part_of_a_recovery() {
    // The service fails once, and an operator stops it while it waits out its backoff;
    // much later the operator starts it again. The time it was held down by request is
    // not the time minder took to heal it: no recovery is observed. Before the fix the
    // failure's recovery ran on through the hold and was observed at the next ready.
    let script = "if [ -e failed ]; then echo $$ > flaky.pid; exec sleep 1000; fi; \
                  touch failed; exit 1";
    let config = format!(
        "[daemon]\nmetrics_listen = \"127.0.0.1:0\"\n\n{}",
        sh_service(
            "flaky",
            script,
            "backoff = { initial = \"20s\", max = \"20s\", jitter = 0.0 }"
        )
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    let labels = service_labels("flaky", "root");
    wait_value(
        &minder,
        address,
        &format!("minder_service_backoff_seconds{labels}"),
        20.0,
    );
    let stopped = minder.control("stop", serde_json::json!({"name": "flaky"}));
    assert_eq!(stopped["ok"], true, "{stopped}");
    let started = minder.control("start", serde_json::json!({"name": "flaky"}));
    assert_eq!(started["ok"], true, "{started}");
    minder.wait_pid("flaky", None);
    let text = wait_value(
        &minder,
        address,
        &format!("minder_service_ready{labels}"),
        1.0,
    );
    let sample = |series: &str| value(&text, series);
    assert_eq!(
        sample(&format!("minder_service_recovery_seconds_count{labels}")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(r#"minder_service_exits_total{service="flaky",group="root",reason="abnormal"}"#),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn regression_a_oneshot_that_succeeded_after_failing_made_no_recovery_observation() {
    // A oneshot has no ready process: its success is what lets the tree go on, so it
    // is what ends a recovery from its earlier failure. Before the fix the failure
    // started a recovery that nothing ever ended: the count stayed 0.
    let script = "if [ -e failed ]; then exit 0; fi; touch failed; exit 1";
    let config = format!(
        "{DAEMON}{}{}",
        sh_service(
            "init",
            script,
            "oneshot = true\nbackoff = { initial = \"0s\" }"
        ),
        sh_service("after", &pid_then_sleep("after"), "")
    );
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    minder.wait_pid("after", None);
    let text = wait_value(
        &minder,
        address,
        r#"minder_service_exits_total{service="init",group="root",reason="normal"}"#,
        1.0,
    );
    let labels = service_labels("init", "root");
    assert_eq!(
        value(
            &text,
            r#"minder_service_exits_total{service="init",group="root",reason="abnormal"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("minder_service_recovery_seconds_count{labels}")
        ),
        Some(1.0),
        "{text}"
    );
}

/// Whether minder's end of the TCP connection from local port `client` to `server`
/// is still established, from /proc/net/tcp (addresses and ports in hex, state 01 =
/// ESTABLISHED): once minder closes its socket, its end moves on to FIN_WAIT.
fn server_end_established(server: SocketAddr, client: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!(":{:04X}", server.port());
    let remote = format!(":{client:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3
            && fields[1].ends_with(&local)
            && fields[2].ends_with(&remote)
            && fields[3] == "01"
    })
}

#[test]
fn regression_a_scraper_that_never_reads_its_responses_held_its_connection_forever() {
    // One connection asks for /metrics many times over (HTTP/1.1 pipelining) and never
    // reads: the responses fill both socket buffers and the server's writes stall. A
    // client that takes nothing for that long is gone or hostile; 64 of them took
    // every connection slot (and /healthz, a container's liveness probe) for good.
    // Before the fix the stalled connection stayed open forever; now the server drops
    // it once its writes make no progress for a while.
    let config = format!("{DAEMON}{}", sh_service("a", &pid_then_sleep("a"), ""));
    let minder = Minder::run(&config);
    let address = endpoint(&minder);
    minder.wait_pid("a", None);
    let (_, body) = get(address, "/metrics");
    let mut stream = TcpStream::connect(address).expect("connect");
    let port = stream.local_addr().expect("local address").port();
    // Enough responses to fill the largest send buffer the kernel allows (4 MiB by
    // default) plus the client's receive buffer, twice over.
    let requests = (8 << 20) / body.len().max(1) + 1;
    let request = "GET /metrics HTTP/1.1\r\nHost: minder\r\n\r\n";
    stream
        .write_all(request.repeat(requests).as_bytes())
        .expect("send the requests");
    assert!(
        server_end_established(address, port),
        "minder's end of the connection is not established"
    );
    let dropped = wait_for(Duration::from_secs(30), || {
        !server_end_established(address, port)
    });
    assert!(
        dropped,
        "a connection whose client never reads is still open after 30 s"
    );
    // The endpoint still answers.
    assert_eq!(get(address, "/healthz").0, 200);
    drop(stream);
}
