//! Black-box test of network probes against a resolver that never answers, on the real
//! binary (issue: name resolution could exhaust the blocking pool).
//!
//! minder runs in a mount namespace of its own (`unshare --mount`, as root, which CI
//! is) where /etc/resolv.conf is bind-mounted over by a file of the test's that names a
//! single name server: a UDP socket of the test's on a loopback address, port 53, that
//! reads nothing and answers nothing. Every name lookup minder makes then blocks in
//! `getaddrinfo` for minutes (`timeout:30 attempts:5`), far longer than the test.
//! Address literals are untouched by this, so the memory guard's service, which needs
//! no lookup, is the control: it must be restarted on its schedule all along.

mod common;

use common::{Minder, PATIENCE, Signal, sh_service, wait_for};
use std::ffi::OsString;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

/// The host the probes name; only the silent name server could answer for it.
const STUCK_HOST: &str = "stuck.minder.test";

/// Far above what minder needs (its main thread, the output writer, the memory
/// sampler and one lookup per probe: 13 here), far below the 512 threads of tokio's
/// blocking pool that stuck lookups used to fill.
const THREAD_BOUND: usize = 50;

fn require_root() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "this test bind-mounts /etc/resolv.conf in a mount namespace (`unshare --mount`) \
         and listens on port 53, which needs root; CI runs it as root. Run it as root \
         (e.g. `sudo -E cargo nextest run --test health_dns`)."
    );
}

/// A UDP socket on port 53 of a loopback address of its own (derived from the test's
/// pid, so that concurrent test processes do not collide) that never reads: a name
/// server that never answers. Lookups sent to it wait for their full timeout.
fn silent_name_server() -> UdpSocket {
    let pid = std::process::id();
    let address = Ipv4Addr::new(127, 53, ((pid >> 8) & 0xff) as u8, (pid % 250 + 1) as u8);
    UdpSocket::bind((address, 53))
        .unwrap_or_else(|error| panic!("bind a silent name server on {address}:53: {error}"))
}

/// The threads of process `pid` (`Threads:` of /proc/PID/status).
fn threads_of(pid: i32) -> usize {
    minder::procfs::status_field(pid, "Threads")
        .unwrap_or_else(|error| panic!("read /proc/{pid}/status: {error}"))
        .and_then(|threads| threads.parse().ok())
        .unwrap_or_else(|| panic!("no Threads line in /proc/{pid}/status"))
}

#[test]
fn name_lookups_that_never_answer_neither_pile_up_threads_nor_delay_the_memory_guard() {
    require_root();
    let name_server = silent_name_server();
    let server_ip = name_server.local_addr().expect("local address").ip();
    let mut minder = Minder::new();
    minder.write(
        "resolv.conf",
        &format!("nameserver {server_ip}\noptions timeout:30 attempts:5\n"),
    );
    // `hog` is over its 64 KiB limit from the start (any process is): the memory guard
    // restarts it at every sample. `probed` (8 instances) and `web` probe a name every
    // 20 ms with a 20 ms timeout: a new lookup per probe would add a thread (stuck for
    // minutes) about every 40 ms per instance.
    let config = format!(
        "[root]\nintensity = 1000\nperiod = \"1s\"\n\n{}{}{}",
        sh_service(
            "hog",
            "echo $$ >> hog.pids; exec sleep 1000",
            "backoff = { initial = \"10ms\", multiplier = 1.0 }\n\
             health = { max_memory = \"64KiB\", interval = \"200ms\" }"
        ),
        sh_service(
            "probed",
            "exec sleep 1000",
            &format!(
                "instances = 8\nhealth = {{ tcp = \"{STUCK_HOST}:80\", interval = \"20ms\", \
                 timeout = \"20ms\", failures = 1000000 }}"
            )
        ),
        sh_service(
            "web",
            "exec sleep 1000",
            &format!(
                "health = {{ http = \"http://{STUCK_HOST}:8080/health\", interval = \"20ms\", \
                 timeout = \"20ms\", failures = 1000000 }}"
            )
        ),
    );
    minder.write("cfg.toml", &config);
    let script = format!(
        "mount --bind {} /etc/resolv.conf && exec {} run {}",
        minder.path("resolv.conf").display(),
        common::MINDER,
        minder.path("cfg.toml").display()
    );
    minder.start_program(
        "unshare",
        ["--mount", "sh", "-c", &script]
            .map(OsString::from)
            .to_vec(),
    );
    // unshare and sh exec in turn: the child's pid is minder's.
    let pid = minder.pid();

    // Many probe intervals: more failed probes than tokio's blocking pool has threads.
    minder.wait_log(
        &["check failed", "service=\"probed."],
        600,
        Duration::from_secs(30),
    );
    let threads = threads_of(pid);
    assert!(
        threads < THREAD_BOUND,
        "minder runs {threads} threads after 600 probes against a silent resolver"
    );

    // The memory guard keeps its schedule while the lookups hang: two more restarts,
    // some 0.2 s apart, well within the bound.
    let restarts_before = minder.lines("hog.pids").len();
    let restarted = wait_for(PATIENCE, || {
        minder.lines("hog.pids").len() >= restarts_before + 2
    });
    assert!(
        restarted,
        "the memory guard did not restart hog twice within {PATIENCE:?} while lookups hung \
         ({} starts in all)\nstderr:\n{}",
        minder.lines("hog.pids").len(),
        minder.stderr_text()
    );
    minder.wait_log(&["failure: memory", "service=\"hog\""], 2, PATIENCE);

    // The probes failed because the lookup did not answer, and a probe due while its
    // lookup was pending waited for that lookup instead of starting another.
    for service in [
        "service=\"probed.0\"",
        "service=\"probed.7\"",
        "service=\"web\"",
    ] {
        minder.wait_log(
            &["check failed", "name lookup timed out after 20ms", service],
            1,
            PATIENCE,
        );
        minder.wait_log(&["check failed", "is still pending", service], 1, PATIENCE);
    }
    let other_failures: Vec<String> = minder
        .log_lines(&["check failed", "kind=Health"])
        .into_iter()
        .filter(|line| !line.contains(&format!("resolve {STUCK_HOST}:")))
        .collect();
    assert!(
        other_failures.is_empty(),
        "probes failed for another reason than the lookup: {other_failures:#?}"
    );
    let threads = threads_of(pid);
    assert!(
        threads < THREAD_BOUND,
        "minder runs {threads} threads at the end"
    );

    // Stuck lookup threads do not hold minder's exit either.
    minder.signal(Signal::SIGTERM);
    let code = minder.expect_exit(PATIENCE);
    assert_eq!(code, 0, "stderr:\n{}", minder.stderr_text());
    minder.assert_nothing_left();
    drop(name_server);
}
