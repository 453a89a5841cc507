//! minder leaks no file descriptor over restarts: every incarnation's pipes (stdout,
//! stderr, ready fd) and every exec probe's are closed once it is gone, and a notify
//! socket is made once per service, not per start.

mod common;

use common::{Minder, descendants, open_fds, send_signal, wait_for};
use nix::sys::signal::Signal;
use std::time::Duration;

const SERVICES: [&str; 4] = ["plain", "probed", "fdready", "notified"];

/// Starts so far of `name`, counted by the lines its incarnations append.
fn starts(minder: &Minder, name: &str) -> usize {
    minder.lines(&format!("{name}.starts")).len()
}

/// minder's fd count once every service has settled: no start for half a second.
fn settled_fd_count(minder: &Minder) -> usize {
    let mut last: Vec<usize> = Vec::new();
    let settled = wait_for(Duration::from_secs(10), || {
        let now: Vec<usize> = SERVICES.iter().map(|name| starts(minder, name)).collect();
        let same = now == last;
        last = now;
        if !same {
            std::thread::sleep(Duration::from_millis(500));
        }
        same
    });
    assert!(
        settled,
        "services kept restarting\n{}",
        minder.stderr_text()
    );
    // A health probe runs every 50 ms, and each run holds a pipe or two for a moment:
    // the fewest fds seen over half a second is what minder holds for good. A leak
    // raises that floor; a probe caught mid-spawn does not.
    (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            open_fds(minder.pid()).len()
        })
        .min()
        .unwrap_or(0)
}

#[test]
fn fifty_restarts_leave_minders_fd_count_where_it_was() {
    // Each service runs calmly while the file `calm` exists and crashes at once
    // otherwise; each holds a different kind of fd: captured output only, an exec
    // probe, a ready fd, a notify socket.
    let minder = Minder::new();
    minder.write("calm", "");
    let crash_unless_calm = "if [ -e calm ]; then exec sleep 1000; fi; exit 1";
    minder.write(
        "cfg.toml",
        &format!(
            r#"
            [root]
            intensity = 100000
            period = "1s"

            [service.plain]
            command = ["sh", "-c", "echo x >> plain.starts; echo out; echo err >&2; {crash_unless_calm}"]
            backoff = {{ initial = "0s", jitter = 0.0 }}

            [service.probed]
            command = ["sh", "-c", "echo x >> probed.starts; sleep 0.03; {crash_unless_calm}"]
            backoff = {{ initial = "0s", jitter = 0.0 }}
            health = {{ exec = ["true"], interval = "50ms", timeout = "1s" }}

            [service.fdready]
            command = ["sh", "-c", "echo x >> fdready.starts; echo >&3; sleep 0.03; {crash_unless_calm}"]
            backoff = {{ initial = "0s", jitter = 0.0 }}
            ready = {{ fd = 3 }}

            # Never ready (it sends nothing): last, so it holds up no sibling.
            [service.notified]
            command = ["sh", "-c", "echo x >> notified.starts; {crash_unless_calm}"]
            backoff = {{ initial = "0s", jitter = 0.0 }}
            ready = {{ notify = true, deadline = "60s" }}
            "#
        ),
    );
    let mut minder = minder;
    minder.start_run(&[]);
    assert!(wait_for(Duration::from_secs(10), || SERVICES
        .iter()
        .all(|name| starts(&minder, name) >= 1)));
    let before = settled_fd_count(&minder);

    std::fs::remove_file(minder.path("calm")).expect("remove calm");
    // End the calm incarnations; from now on every start crashes at once.
    for pid in descendants(minder.pid()) {
        send_signal(pid, Signal::SIGKILL);
    }
    let enough = |minimum: usize| SERVICES.iter().all(|name| starts(&minder, name) >= minimum);
    assert!(
        wait_for(Duration::from_secs(30), || enough(51)),
        "services did not restart fifty times\n{}",
        minder.stderr_text()
    );
    minder.write("calm", "");
    let after = settled_fd_count(&minder);
    assert_eq!(
        after, before,
        "minder had {before} fds before fifty restarts of each service and {after} after"
    );
}
