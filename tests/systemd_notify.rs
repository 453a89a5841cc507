//! minder as a systemd `Type=notify` service: it tells the service manager `READY=1`
//! once its tree is up and ready, `STOPPING=1` when it shuts down (at the request,
//! before a drain), a `STATUS=` line that follows the tree, and pings `WATCHDOG=1` from
//! its loop when `WATCHDOG_USEC` asks for it, never more often than every 100 ms. The service manager is played by the test: a datagram socket passed as
//! `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). A manager that does
//! not read its socket must not stall minder: sends never block.

mod common;

use common::{Minder, PATIENCE, is_alive, send_signal, sh_service, wait_for};
use nix::sys::signal::Signal;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// minder's floor on the watchdog ping interval (src/runtime/systemd.rs).
const PING_FLOOR: Duration = Duration::from_millis(100);

/// Everything minder has sent so far, one datagram per entry.
fn received(socket: &UnixDatagram) -> Vec<String> {
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(length) = socket.recv(&mut buffer) {
        messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
    }
    messages
}

fn manager(minder: &Minder) -> (UnixDatagram, std::path::PathBuf) {
    let path = minder.path("manager.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the manager's socket");
    socket.set_nonblocking(true).expect("non-blocking");
    (socket, path)
}

#[test]
fn ready_is_sent_only_once_the_tree_is_ready_and_stopping_at_shutdown() {
    let mut minder = Minder::new();
    // `b` waits for `a`, which is ready only once it writes to fd 3 after the test
    // creates a file: READY=1 must not come before that.
    minder.write(
        "cfg.toml",
        r#"
        [service.a]
        command = ["sh", "-c", "while [ ! -e go ]; do sleep 0.05; done; echo >&3; exec sleep 1000"]
        ready = { fd = 3 }
        [service.b]
        command = ["sh", "-c", "echo $$ > b.pid; exec sleep 1000"]
        "#,
    );
    let (socket, path) = manager(&minder);
    minder.env("NOTIFY_SOCKET", path);
    minder.start_run(&[]);
    std::thread::sleep(Duration::from_millis(300));
    let early = received(&socket);
    assert!(
        !early.iter().any(|m| m.contains("READY=1")),
        "READY=1 before the tree was ready: {early:?}"
    );
    minder.write("go", "");
    let mut messages = Vec::new();
    assert!(
        wait_for(Duration::from_secs(5), || {
            messages.extend(received(&socket));
            messages.iter().any(|m| m.contains("READY=1"))
        }),
        "no READY=1: {messages:?}\n{}",
        minder.stderr_text()
    );
    // `b` is ready once exec'd, which READY=1 waited for; its shell writes the pid file
    // right after, so give it a moment.
    assert!(wait_for(Duration::from_secs(5), || minder
        .pid_file("b")
        .is_some()));
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(Duration::from_secs(5)), 0);
    messages.extend(received(&socket));
    assert!(
        messages.iter().any(|m| m.contains("STOPPING=1")),
        "no STOPPING=1: {messages:?}"
    );
    assert_eq!(
        messages.iter().filter(|m| m.contains("READY=1")).count(),
        1,
        "{messages:?}"
    );
}

#[test]
fn the_loop_pings_the_systemd_watchdog_only_when_asked() {
    let config = "[service.a]\ncommand = [\"sleep\", \"1000\"]\n";
    let mut asked = Minder::new();
    asked.write("cfg.toml", config);
    let (socket, path) = manager(&asked);
    asked
        .env("NOTIFY_SOCKET", path)
        .env("WATCHDOG_USEC", "200000");
    asked.start_run(&[]);
    let mut messages = Vec::new();
    assert!(
        wait_for(Duration::from_secs(5), || {
            messages.extend(received(&socket));
            messages.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3
        }),
        "fewer than 3 WATCHDOG=1 in 5 s with WATCHDOG_USEC=200ms: {messages:?}"
    );

    let mut not_asked = Minder::new();
    not_asked.write("cfg.toml", config);
    let (quiet, path) = manager(&not_asked);
    not_asked.env("NOTIFY_SOCKET", path);
    not_asked.start_run(&[]);
    let mut messages = Vec::new();
    assert!(wait_for(Duration::from_secs(5), || {
        messages.extend(received(&quiet));
        messages.iter().any(|m| m.contains("READY=1"))
    }));
    std::thread::sleep(Duration::from_millis(500));
    messages.extend(received(&quiet));
    assert!(
        !messages.iter().any(|m| m.contains("WATCHDOG")),
        "{messages:?}"
    );
}

/// Fills `socket`'s receive queue from a sender of the test's own until the kernel
/// refuses one more datagram: from then on, any sender that waits for room waits
/// forever (nobody reads). Returns how many datagrams went in.
fn fill_queue(socket: &std::path::Path) -> usize {
    let filler = UnixDatagram::unbound().expect("socket");
    filler.set_nonblocking(true).expect("non-blocking");
    let mut queued = 0;
    loop {
        match filler.send_to(b"FILLER=1\n", socket) {
            Ok(_) => queued += 1,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return queued,
            Err(error) => panic!("fill the manager's queue: {error}"),
        }
        assert!(queued < 100_000, "the queue never filled");
    }
}

#[test]
fn an_undrained_notify_socket_does_not_block_restarts_or_shutdown() {
    // Before the fix, minder's send of READY=1 (and of every watchdog ping) waited for
    // room in this queue: restarts stopped and SIGTERM did nothing.
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[root]\nintensity = 100000\nperiod = \"1s\"\n\n{}{}",
            sh_service("steady", "exec sleep 1000", ""),
            sh_service(
                "crash",
                "echo x >> starts; exit 3",
                "backoff = { initial = \"10ms\", max = \"10ms\", jitter = 0.0 }"
            ),
        ),
    );
    let path = minder.path("manager.sock");
    let manager = UnixDatagram::bind(&path).expect("bind the manager's socket");
    let filled = fill_queue(&path);
    minder.env("NOTIFY_SOCKET", &path).env("WATCHDOG_USEC", "1");
    minder.start_run(&[]);

    // The crash loop goes on while every message to the manager is refused.
    let first = Instant::now();
    let restarting = wait_for(Duration::from_secs(10), || {
        minder.lines("starts").len() >= 50
    });
    let elapsed = first.elapsed();
    assert!(
        restarting,
        "the crash loop stalled at {} starts with the manager's queue full ({filled} \
         datagrams)\n{}",
        minder.lines("starts").len(),
        minder.stderr_text()
    );
    eprintln!(
        "{} starts in {elapsed:?} with the manager's queue full",
        minder.lines("starts").len()
    );
    // Refusals are logged once, not once per message.
    let full = minder.wait_log(&["notify socket", "is full"], 1, PATIENCE);
    assert_eq!(full.len(), 1, "{}", minder.stderr_text());

    // Once the manager reads again, the READY=1 it missed arrives (retried, not lost).
    manager.set_nonblocking(true).expect("non-blocking");
    let mut messages = Vec::new();
    assert!(
        wait_for(PATIENCE, || {
            messages.extend(received(&manager));
            messages.iter().any(|m| m.contains("READY=1"))
        }),
        "READY=1 never came once the queue was drained: {messages:?}\n{}",
        minder.stderr_text()
    );
    assert_eq!(
        minder.log_lines(&["notify socket", "is full"]).len(),
        1,
        "{}",
        minder.stderr_text()
    );

    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    minder.assert_nothing_left();
}

#[test]
fn shutdown_is_prompt_while_the_manager_never_reads() {
    // The same stuck manager, from start to exit: SIGTERM must still end minder.
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &sh_service("a", "echo $$ > a.pid; exec sleep 1000", ""),
    );
    let path = minder.path("manager.sock");
    let _manager = UnixDatagram::bind(&path).expect("bind the manager's socket");
    fill_queue(&path);
    minder.env("NOTIFY_SOCKET", &path).env("WATCHDOG_USEC", "1");
    minder.start_run(&[]);
    minder.wait_pid("a", None);
    // Let minder meet the full queue first (READY=1 follows the start of `a`). Before
    // the fix no such line ever came and minder sat in its send: the wait runs out and
    // SIGTERM finds it stuck.
    wait_for(PATIENCE, || {
        !minder.log_lines(&["notify socket", "is full"]).is_empty()
    });
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    minder.wait_log(&["notify socket", "is full"], 1, PATIENCE);
    minder.wait_log(&["refused messages"], 1, PATIENCE);
    minder.assert_nothing_left();
}

#[test]
fn watchdog_usec_of_one_microsecond_does_not_flood_the_manager() {
    // Before the fix, WATCHDOG_USEC=1 made minder ping every half microsecond: hundreds
    // of thousands of datagrams a second for a manager that reads them.
    let mut minder = Minder::new();
    minder.write("cfg.toml", "[service.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let (socket, path) = manager(&minder);
    minder.env("NOTIFY_SOCKET", path).env("WATCHDOG_USEC", "1");
    minder.start_run(&[]);
    let mut messages = Vec::new();
    assert!(
        wait_for(PATIENCE, || {
            messages.extend(received(&socket));
            messages.iter().any(|m| m.contains("WATCHDOG=1"))
        }),
        "no WATCHDOG=1 at all: {messages:?}\n{}",
        minder.stderr_text()
    );
    // Count the pings that arrive over one second (read as they come, so the queue
    // never fills): at one per 100 ms, about 10.
    let window = Duration::from_secs(1);
    let start = Instant::now();
    let mut pings = 0usize;
    while start.elapsed() < window {
        pings += received(&socket)
            .iter()
            .filter(|m| m.contains("WATCHDOG=1"))
            .count();
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    pings += received(&socket)
        .iter()
        .filter(|m| m.contains("WATCHDOG=1"))
        .count();
    let bound = (elapsed.as_millis() / PING_FLOOR.as_millis()) as usize + 2;
    eprintln!("{pings} pings in {elapsed:?} with WATCHDOG_USEC=1");
    assert!(
        pings <= bound,
        "{pings} pings in {elapsed:?}: more than one per {PING_FLOOR:?}"
    );
    assert!(pings >= 1, "the watchdog stopped pinging");
    minder.wait_log(&["WATCHDOG_USEC=1", "pinging every 100ms"], 1, PATIENCE);
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

#[test]
fn notify_socket_in_the_abstract_namespace_receives_ready() {
    // sd_notify(3): `@name` is `name` in the abstract namespace. Before the fix minder
    // took it for a relative file name, and READY=1 went nowhere.
    let name = format!("minder-test-{}-{}", std::process::id(), unique_suffix());
    let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
    let socket = UnixDatagram::bind_addr(&address).expect("bind the abstract socket");
    socket.set_nonblocking(true).expect("non-blocking");
    let mut minder = Minder::new();
    minder.write("cfg.toml", "[service.a]\ncommand = [\"sleep\", \"1000\"]\n");
    minder.env("NOTIFY_SOCKET", format!("@{name}"));
    minder.start_run(&[]);
    let mut messages = Vec::new();
    assert!(
        wait_for(PATIENCE, || {
            messages.extend(received(&socket));
            messages.iter().any(|m| m.contains("READY=1"))
        }),
        "no READY=1 on @{name}: {messages:?}\n{}",
        minder.stderr_text()
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    messages.extend(received(&socket));
    assert!(
        messages.iter().any(|m| m.contains("STOPPING=1")),
        "{messages:?}"
    );
}

/// A suffix that keeps two runs of the same test process apart.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The `STATUS=` values among `messages`, in order.
fn statuses(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .flat_map(|message| message.lines())
        .filter_map(|line| line.strip_prefix("STATUS="))
        .map(str::to_string)
        .collect()
}

/// Reads the manager's socket into `messages` until a `STATUS=` containing `needle`
/// has arrived (after the first `from` statuses); panics after `PATIENCE`.
fn wait_status(
    socket: &UnixDatagram,
    messages: &mut Vec<String>,
    from: usize,
    needle: &str,
    minder: &Minder,
) -> usize {
    let mut found = None;
    let arrived = wait_for(PATIENCE, || {
        messages.extend(received(socket));
        found = statuses(messages)
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, status)| status.contains(needle))
            .map(|(index, _)| index);
        found.is_some()
    });
    assert!(
        arrived,
        "no STATUS= with {needle:?} after the first {from}: {:?}\n{}",
        statuses(messages),
        minder.stderr_text()
    );
    found.expect("found")
}

#[test]
fn status_follows_the_tree_through_a_restart() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"\"\n\n{}{}",
            sh_service(
                "api",
                "echo $$ > api.pid; exec sleep 1000",
                "backoff = { initial = \"700ms\", jitter = 0.0 }"
            ),
            sh_service("db", "echo $$ > db.pid; exec sleep 1000", ""),
        ),
    );
    let (socket, path) = manager(&minder);
    minder.env("NOTIFY_SOCKET", path);
    minder.start_run(&[]);
    let mut messages = Vec::new();
    assert!(
        wait_for(PATIENCE, || {
            messages.extend(received(&socket));
            messages.iter().any(|m| m.contains("READY=1"))
        }),
        "no READY=1: {messages:?}"
    );
    let ready = messages
        .iter()
        .find(|m| m.contains("READY=1"))
        .expect("found");
    assert!(ready.contains("STATUS=2/2 ready"), "{ready:?}");

    // A kill puts `api` in its backoff: the status says so, with its group's restarts
    // in the window, then goes back to all ready once it has come back.
    let api = minder.wait_pid("api", None);
    send_signal(api, Signal::SIGKILL);
    let restarting = wait_status(&socket, &mut messages, 0, "api restarting", &minder);
    assert_eq!(
        statuses(&messages)[restarting],
        "1/2 ready, api restarting (1 in 30s)"
    );
    let again = wait_status(&socket, &mut messages, restarting + 1, "2/2 ready", &minder);
    assert_eq!(statuses(&messages)[again], "2/2 ready");
    minder.wait_pid("api", Some(api));

    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

#[test]
fn stopping_goes_out_at_the_request_and_the_status_shows_drain_then_shutdown() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ndrain_delay = \"1s\"\ncontrol_socket = \"\"\n\n{}",
            sh_service(
                "stubborn",
                "trap '' TERM; echo $$ > stubborn.pid; exec sleep 1000",
                "stop_timeout = \"2s\""
            ),
        ),
    );
    let (socket, path) = manager(&minder);
    minder.env("NOTIFY_SOCKET", path);
    minder.start_run(&[]);
    let stubborn = minder.wait_pid("stubborn", None);
    let mut messages = Vec::new();
    assert!(wait_for(PATIENCE, || {
        messages.extend(received(&socket));
        messages.iter().any(|m| m.contains("READY=1"))
    }));

    minder.signal(Signal::SIGTERM);
    let mut stopping = None;
    assert!(
        wait_for(PATIENCE, || {
            messages.extend(received(&socket));
            stopping = messages.iter().find(|m| m.contains("STOPPING=1")).cloned();
            stopping.is_some()
        }),
        "no STOPPING=1: {messages:?}"
    );
    // STOPPING=1 comes at the request, while the service still runs its drain.
    assert!(is_alive(stubborn), "{}", minder.stderr_text());
    let stopping = stopping.expect("found");
    assert!(
        stopping.contains("STATUS=draining (1 s left)"),
        "{stopping:?}"
    );
    let shown = wait_status(&socket, &mut messages, 0, "stopping: stubborn (", &minder);
    let draining = statuses(&messages)
        .iter()
        .position(|status| status.starts_with("draining"))
        .expect("a draining status");
    assert!(draining < shown, "{:?}", statuses(&messages));
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    minder.assert_nothing_left();
}

#[test]
fn regression_a_status_waiting_behind_a_refused_ready_made_the_loop_spin() {
    // READY=1 is refused (the queue is full) and a status line waits with it. Before
    // the fix the loop's next wake-up for the status was "now", again and again: it
    // tried the send thousands of times a second instead of every 500 ms.
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"\"\n\n{}",
            sh_service("a", "echo $$ > a.pid; exec sleep 1000", "")
        ),
    );
    let path = minder.path("manager.sock");
    let _manager = UnixDatagram::bind(&path).expect("bind the manager's socket");
    fill_queue(&path);
    minder.env("NOTIFY_SOCKET", &path);
    minder.start_run(&[]);
    minder.wait_pid("a", None);
    minder.wait_log(&["notify socket", "is full"], 1, PATIENCE);
    std::thread::sleep(Duration::from_secs(1));
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    let summary = minder.wait_log(&["refused messages"], 1, PATIENCE);
    let refused: u64 = summary[0]
        .split_whitespace()
        .find_map(|field| field.strip_prefix("queue_full="))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no queue_full count: {}", summary[0]));
    // About one try per 500 ms over a second or two, plus one per turn of the loop.
    assert!(
        refused < 50,
        "{refused} sends refused in about a second: the loop spun\n{}",
        summary[0]
    );
}
