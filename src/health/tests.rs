//! Probe runners against real listeners, servers, processes and pipes on this machine.
//!
//! Tests that spawn processes collect them with `process::reap`, which takes *any*
//! child of the test process, so they start with `own_process!` (one process per test
//! under any runner, see `crate::own_process`).

use super::*;
use crate::process::{self, SpawnRequest, StdioMode};
use crate::spec::ServiceSpec;
use crate::supervisor::{ExitStatus, ServiceId};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedReceiver};

const CHILD: ChildRef = ChildRef {
    id: ServiceId(7),
    generation: 3,
};

fn prober() -> (Prober, UnboundedReceiver<Fact>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Prober::new(sender), receiver)
}

/// The next fact, or a panic after `within`.
async fn next_event(events: &mut UnboundedReceiver<Fact>, within: Duration) -> Fact {
    match tokio::time::timeout(within, events.recv()).await {
        Ok(Some(fact)) => fact,
        Ok(None) => panic!("fact channel closed"),
        Err(_) => panic!("no fact within {within:?}"),
    }
}

async fn probe_outcome(probe: Probe, timeout: Duration) -> ProbeOutcome {
    let (mut prober, mut events) = prober();
    prober.network(CHILD, ProbeKind::Health, 7, &probe, timeout);
    match next_event(&mut events, timeout + Duration::from_secs(5)).await {
        Fact::ProbeResult {
            child,
            kind,
            run,
            outcome,
        } => {
            assert_eq!((child, kind, run), (CHILD, ProbeKind::Health, 7));
            outcome
        }
        other => panic!("unexpected fact {other:?}"),
    }
}

async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|error| panic!("bind: {error}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|error| panic!("local_addr: {error}"))
        .port();
    (listener, port)
}

/// A port nothing listens on: bound once, then released.
async fn closed_port() -> u16 {
    let (listener, port) = listener().await;
    drop(listener);
    port
}

#[tokio::test]
async fn tcp_probe_passes_against_a_listener() {
    let (_listener, port) = listener().await;
    let outcome = probe_outcome(
        Probe::Tcp {
            address: format!("127.0.0.1:{port}"),
        },
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::Passed);
    // A name resolves too.
    let outcome = probe_outcome(
        Probe::Tcp {
            address: format!("localhost:{port}"),
        },
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(outcome, ProbeOutcome::Passed);
}

#[tokio::test]
async fn tcp_probe_fails_on_a_closed_port_naming_it() {
    let port = closed_port().await;
    let outcome = probe_outcome(
        Probe::Tcp {
            address: format!("127.0.0.1:{port}"),
        },
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        outcome,
        ProbeOutcome::Failed(format!("connect 127.0.0.1:{port}: Connection refused"))
    );
}

#[tokio::test]
async fn tcp_probe_of_an_address_without_port_fails_without_panicking() {
    crate::own_process::own_process!(tcp_probe_of_an_address_without_port_fails_without_panicking);
    let outcome = probe_outcome(
        Probe::Tcp {
            address: "no port here".into(),
        },
        Duration::from_secs(1),
    )
    .await;
    let ProbeOutcome::Failed(reason) = outcome else {
        panic!("passed: {outcome:?}");
    };
    assert!(reason.starts_with("resolve no port here: "), "{reason}");
}

/// A tiny HTTP server: answers every request with `status` and an empty body after
/// reading its head, and hands each request head to `requests`.
async fn http_server(status: &'static str) -> (u16, UnboundedReceiver<String>) {
    let (listener, port) = listener().await;
    let (sender, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = sender.send(String::from_utf8_lossy(&head).into_owned());
                let response =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, requests)
}

#[tokio::test]
async fn http_probe_passes_on_2xx_and_3xx_and_sends_path_and_host() {
    for status in ["200 OK", "204 No Content", "301 Moved Permanently"] {
        let (port, mut requests) = http_server(status).await;
        let url = format!("http://127.0.0.1:{port}/healthz?deep=1");
        let outcome = probe_outcome(Probe::Http { url }, Duration::from_secs(2)).await;
        assert_eq!(outcome, ProbeOutcome::Passed, "{status}");
        let head = requests.recv().await.unwrap_or_default();
        assert!(
            head.starts_with("GET /healthz?deep=1 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
            "{head}"
        );
    }
}

#[tokio::test]
async fn http_probe_fails_on_4xx_and_5xx_with_the_status() {
    for (status, code) in [("404 Not Found", 404), ("500 Internal Server Error", 500)] {
        let (port, _requests) = http_server(status).await;
        let url = format!("http://localhost:{port}");
        let outcome = probe_outcome(Probe::Http { url }, Duration::from_secs(2)).await;
        assert_eq!(outcome, ProbeOutcome::Failed(format!("HTTP {code}")));
    }
}

#[tokio::test]
async fn http_probe_of_a_server_that_never_answers_times_out_in_time() {
    crate::own_process::own_process!(http_probe_of_a_server_that_never_answers_times_out_in_time);
    let (listener, port) = listener().await;
    // Accepts and holds every connection, never writing a byte.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let outcome = probe_outcome(
        Probe::Http {
            url: format!("http://127.0.0.1:{port}/"),
        },
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(
        outcome,
        ProbeOutcome::Failed("timed out after 300ms".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http_probe_of_a_closed_port_or_a_bad_url_fails() {
    let port = closed_port().await;
    let outcome = probe_outcome(
        Probe::Http {
            url: format!("http://127.0.0.1:{port}/"),
        },
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        outcome,
        ProbeOutcome::Failed(format!("connect 127.0.0.1:{port}: Connection refused"))
    );
    let outcome = probe_outcome(
        Probe::Http {
            url: "https://example.invalid/".into(),
        },
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        outcome,
        ProbeOutcome::Failed(
            "URL https://example.invalid/: only http:// URLs can be probed".into()
        )
    );
}

#[tokio::test]
async fn an_exec_probe_given_to_the_network_prober_fails_at_once() {
    let outcome = probe_outcome(
        Probe::Exec {
            command: vec!["true".into()],
        },
        Duration::from_secs(1),
    )
    .await;
    assert!(matches!(outcome, ProbeOutcome::Failed(_)), "{outcome:?}");
}

#[test]
fn http_urls_parse_into_what_the_probe_needs() {
    crate::own_process::own_process!(http_urls_parse_into_what_the_probe_needs);
    let target = |url: &str| HttpTarget::parse(url);
    let ok = |authority: &str, host: &str, port: u16, path: &str| {
        Ok(HttpTarget {
            authority: authority.into(),
            host: host.into(),
            port,
            path_and_query: path.into(),
        })
    };
    assert_eq!(target("http://db"), ok("db", "db", 80, "/"));
    assert_eq!(
        target("HTTP://127.0.0.1:8080/health"),
        ok("127.0.0.1:8080", "127.0.0.1", 8080, "/health")
    );
    assert_eq!(
        target("http://[::1]:9000?x=1#frag"),
        ok("[::1]:9000", "::1", 9000, "/?x=1")
    );
    assert_eq!(target("http://[::1]/"), ok("[::1]", "::1", 80, "/"));
    assert_eq!(
        HttpTarget::parse("http://[::1]:9000/")
            .map(|t| t.connect_address())
            .as_deref(),
        Ok("[::1]:9000")
    );
    for bad in [
        "",
        "http://",
        "http:///path",
        "http://host:99999/",
        "http://host:x/",
        "http://[::1/",
        "http://[::1]x/",
        "http://user@host/",
        "http://host/a b",
        "ftp://host/",
        "htt",
        "http://é:80/",
    ] {
        // None of these panics; all but the last are refused (a non-ASCII host is
        // left to the resolver, which fails it).
        let parsed = target(bad);
        if bad != "http://é:80/" {
            assert!(parsed.is_err(), "{bad}: {parsed:?}");
        }
    }
}

fn service(command: &[&str]) -> ServiceSpec {
    ServiceSpec::new(
        "t",
        command.iter().map(|s| s.to_string()).collect(),
        Path::new("/").to_path_buf(),
    )
}

/// Kills a test child's group and collects it (bounded).
fn finish(pid: i32) -> ExitStatus {
    process::kill_group(pid);
    wait_for_exit(pid)
}

fn wait_for_exit(pid: i32) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, status)) = process::reap().into_iter().find(|(p, _)| *p == pid) {
            return status;
        }
        assert!(Instant::now() < deadline, "pid {pid} did not exit in 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The resident bytes of `pgid` in the scan that answers one memory probe, looked up
/// as the loop does (a group not in the table has none).
async fn memory_sample(
    prober: &mut Prober,
    events: &mut UnboundedReceiver<Fact>,
    pgid: i32,
) -> u64 {
    prober.memory(CHILD, 3);
    match next_event(events, Duration::from_secs(5)).await {
        Fact::MemoryScan { groups, asked } if asked == [(CHILD, 3)] => {
            groups.get(&pgid).copied().unwrap_or(0)
        }
        other => panic!("unexpected fact {other:?}"),
    }
}

#[tokio::test]
async fn memory_of_a_process_group_counts_its_grandchildren() {
    crate::own_process::own_process!(memory_of_a_process_group_counts_its_grandchildren);
    const MIB: u64 = 1024 * 1024;
    // The main process is a shell; the 50 MiB belong to a process it started, in its
    // group. `b'x' * n` writes every page, so they are resident.
    let spec = service(&[
        "/bin/sh",
        "-c",
        "python3 -c 'import time; b = b\"x\" * (50 * 1024 * 1024); time.sleep(30)' & wait",
    ]);
    let child = process::spawn(&SpawnRequest::new(&spec, StdioMode::Null, &[]))
        .unwrap_or_else(|error| panic!("{error}"));
    let (mut prober, mut events) = prober();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut bytes = 0;
    while bytes < 50 * MIB {
        assert!(
            Instant::now() < deadline,
            "group {} reached only {bytes} bytes",
            child.pid
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        bytes = memory_sample(&mut prober, &mut events, child.pid).await;
    }
    // Negative control: the shell alone is far below that.
    let shell_only = crate::procfs::stat(child.pid)
        .map_or(0, |stat| stat.rss_pages * crate::procfs::page_size());
    assert!(shell_only < 10 * MIB, "{shell_only}");
    // Well under the 2 × 50 MiB a double count would give.
    assert!(bytes < 90 * MIB, "{bytes}");
    finish(child.pid);
    // An empty group is 0 (the next scan is after the cache's freshness).
    tokio::time::sleep(memory::MEMORY_SCAN_FRESH + Duration::from_millis(50)).await;
    assert_eq!(memory_sample(&mut prober, &mut events, child.pid).await, 0);
}

#[tokio::test]
async fn memory_probes_of_a_burst_share_one_scan() {
    crate::own_process::own_process!(memory_probes_of_a_burst_share_one_scan);
    let (mut prober, mut events) = prober();
    let ours = nix::unistd::getpgrp().as_raw();
    for generation in 0..50 {
        prober.memory(
            ChildRef {
                id: ServiceId(1),
                generation,
            },
            1,
        );
    }
    let mut answered = 0;
    let mut tables: Vec<std::sync::Arc<std::collections::HashMap<i32, u64>>> = Vec::new();
    while answered < 50 {
        match next_event(&mut events, Duration::from_secs(5)).await {
            Fact::MemoryScan { groups, asked } => {
                assert!(groups.get(&ours).is_some_and(|bytes| *bytes > 0));
                answered += asked.len();
                tables.push(groups);
            }
            other => panic!("unexpected fact {other:?}"),
        }
    }
    assert_eq!(answered, 50);
    // The 50 requests were sent within microseconds: one scan answered them all (a
    // table sent again is the same allocation; a new scan makes a new one).
    assert!(
        tables
            .iter()
            .all(|table| std::sync::Arc::ptr_eq(table, &tables[0])),
        "{} answers, not all from one scan",
        tables.len()
    );
}

fn spawn_with_ready_fd(command: &[&str], ready_fd: i32) -> process::SpawnedProcess {
    let spec = service(command);
    let mut request = SpawnRequest::new(&spec, StdioMode::Null, &[]);
    request.ready_fd = Some(ready_fd);
    process::spawn(&request).unwrap_or_else(|error| panic!("{error}"))
}

#[tokio::test]
async fn a_newline_on_the_ready_fd_reports_ready_once() {
    crate::own_process::own_process!(a_newline_on_the_ready_fd_reports_ready_once);
    let mut child = spawn_with_ready_fd(
        &[
            "/bin/sh",
            "-c",
            "printf 'warming up'; sleep 0.2; echo done >&3; exec sleep 30",
        ],
        3,
    );
    let (prober, mut events) = prober();
    let Some(fd) = child.ready_fd.take() else {
        panic!("no readiness pipe");
    };
    let watch = prober.watch_ready_fd(CHILD, fd);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        Fact::ReadyLine { child: CHILD }
    );
    // The watch ended with the newline (and closed the pipe): nothing more comes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !watch.is_finished() {
        assert!(Instant::now() < deadline, "the watch did not end");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(events.try_recv().is_err());
    finish(child.pid);
}

#[tokio::test]
async fn end_of_file_on_the_ready_fd_without_a_newline_reports_nothing() {
    crate::own_process::own_process!(end_of_file_on_the_ready_fd_without_a_newline_reports_nothing);
    let mut child = spawn_with_ready_fd(&["/bin/sh", "-c", "printf 'no newline' >&4; exit 3"], 4);
    let (prober, mut events) = prober();
    let Some(fd) = child.ready_fd.take() else {
        panic!("no readiness pipe");
    };
    let watch = prober.watch_ready_fd(CHILD, fd);
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(3));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !watch.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the watch did not end at end of file"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn a_ready_fd_that_is_not_a_pipe_reports_nothing() {
    let (prober, mut events) = prober();
    let file = std::fs::File::open("/dev/null").unwrap_or_else(|error| panic!("{error}"));
    let watch = prober.watch_ready_fd(CHILD, OwnedFd::from(file));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !watch.is_finished() {
        assert!(Instant::now() < deadline, "the watch did not end");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(events.try_recv().is_err());
}

#[test]
fn exec_probe_bookkeeping_maps_exits_cancels_and_start_failures() {
    crate::own_process::own_process!(exec_probe_bookkeeping_maps_exits_cancels_and_start_failures);
    let mut probes = ExecProbes::new();
    probes.register(100, CHILD, ProbeKind::Ready, 1);
    probes.register(101, CHILD, ProbeKind::Health, 1);
    probes.register(102, CHILD, ProbeKind::Health, 2);
    probes.register(103, CHILD, ProbeKind::Health, 3);
    assert_eq!(probes.len(), 4);
    assert_eq!(probes.owner(101), Some(CHILD));
    assert_eq!(probes.owner(999), None);
    // The core cancels the ready probe (the loop killed it): only once, and only a
    // probe in flight.
    assert!(probes.cancel(100));
    assert!(!probes.cancel(100));
    assert!(!probes.cancel(999));
    let result = |outcome: ProbeOutcome, kind, run| Event::ProbeResult {
        child: CHILD,
        kind,
        run,
        outcome,
    };
    // Cancelled: the core has counted it already; its end answers nothing, but it is
    // still a probe (not an orphan) until reaped.
    assert!(probes.contains(100));
    assert_eq!(
        probes.exited(100, ExitStatus::Signaled(libc::SIGKILL)),
        None
    );
    assert!(!probes.contains(100));
    assert_eq!(
        probes.exited(101, ExitStatus::Exited(0)),
        Some(result(ProbeOutcome::Passed, ProbeKind::Health, 1))
    );
    assert_eq!(
        probes.exited(102, ExitStatus::Exited(2)),
        Some(result(
            ProbeOutcome::Failed("exit code 2".into()),
            ProbeKind::Health,
            2
        ))
    );
    assert_eq!(
        probes.exited(103, ExitStatus::Signaled(libc::SIGSEGV)),
        Some(result(
            ProbeOutcome::Failed("killed by SIGSEGV".into()),
            ProbeKind::Health,
            3
        ))
    );
    // Not a probe (a service or an orphan), or already answered.
    assert_eq!(probes.exited(101, ExitStatus::Exited(0)), None);
    assert!(probes.is_empty());
    let error = process::SpawnError {
        code: process::CODE_NOT_FOUND,
        reason: "spawn db: exec pg_isready: No such file or directory (os error 2)".into(),
    };
    assert_eq!(
        ExecProbes::spawn_failed(CHILD, ProbeKind::Health, 4, &error),
        result(
            ProbeOutcome::Failed(error.reason.clone()),
            ProbeKind::Health,
            4
        )
    );
}

/// The whole exec path as the loop runs it: spawn with the probe's argv in Null mode,
/// register, kill when cancelled (as the core asks once the probe's timeout has
/// passed), reap, map.
#[tokio::test]
async fn exec_probes_run_through_spawn_and_reap_end_to_end() {
    crate::own_process::own_process!(exec_probes_run_through_spawn_and_reap_end_to_end);
    let spec = service(&["sleep", "30"]);
    let mut probes = ExecProbes::new();
    let commands: [(&[&str], ProbeKind); 3] = [
        (&["true"], ProbeKind::Health),
        (&["/bin/sh", "-c", "exit 4"], ProbeKind::Health),
        (&["sleep", "30"], ProbeKind::Ready),
    ];
    let mut pids = Vec::new();
    for (command, kind) in commands {
        let argv: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        let mut request = SpawnRequest::new(&spec, StdioMode::Null, &[]);
        request.command = Some(&argv);
        let spawned = process::spawn(&request).unwrap_or_else(|error| panic!("{error}"));
        probes.register(spawned.pid, CHILD, kind, 1);
        pids.push(spawned.pid);
    }
    assert!(probes.cancel(pids[2]));
    process::kill_group(pids[2]);
    let mut results = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probes.is_empty() {
        assert!(
            Instant::now() < deadline,
            "probes did not finish: {results:?}"
        );
        for (pid, status) in process::reap() {
            assert!(probes.contains(pid), "reaped {pid}, not a probe");
            if let Some(Event::ProbeResult { outcome, .. }) = probes.exited(pid, status) {
                results.insert(pid, outcome);
            }
            process::kill_group(pid);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(results[&pids[0]], ProbeOutcome::Passed);
    assert_eq!(
        results[&pids[1]],
        ProbeOutcome::Failed("exit code 4".into())
    );
    // The cancelled (hung) probe was killed and reaped, and answered nothing.
    assert!(!results.contains_key(&pids[2]));
}

/// The loop aborts a network probe's task when the core cancels that run (or the
/// process it checks ends): the aborted probe never reports.
#[tokio::test]
async fn an_aborted_network_probe_reports_nothing() {
    // Accepts and never answers: the http probe waits for a response until aborted.
    let (listener, port) = listener().await;
    let (mut prober, mut events) = prober();
    let task = prober
        .network(
            CHILD,
            ProbeKind::Health,
            2,
            &Probe::Http {
                url: format!("http://127.0.0.1:{port}/"),
            },
            Duration::from_secs(60),
        )
        .unwrap_or_else(|| panic!("an http probe runs as a task"));
    let (_connection, _) = listener
        .accept()
        .await
        .unwrap_or_else(|error| panic!("accept: {error}"));
    task.abort();
    // Once the task and the prober are gone, every sender is: the channel ends without
    // a fact.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !task.is_finished() {
        assert!(Instant::now() < deadline, "the aborted task did not end");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(prober);
    assert_eq!(events.recv().await, None);
}
