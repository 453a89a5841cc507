//! minder as a systemd `Type=notify` service: it tells the service manager `READY=1`
//! once its tree is up and ready, `STOPPING=1` when it shuts down, and pings
//! `WATCHDOG=1` from its loop when `WATCHDOG_USEC` asks for it. The service manager is
//! played by the test: a datagram socket passed as `NOTIFY_SOCKET`.

mod common;

use common::{Minder, wait_for};
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

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
