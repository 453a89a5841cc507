//! The loop keeps no timer of its own. Between what the core asks for (its one
//! deadline), signals, events and the 60 s reaper sweep, minder's main thread sleeps:
//! here an exec probe hangs, the core's deadline ends it, its group is killed and
//! reaped, and then nothing wakes the loop until the core's next deadline, an hour
//! away. A loop that polled, or kept a timer beside the core's, would wake.

mod common;

use common::{Minder, PATIENCE, descendants, pid_then_sleep, sh_service, wait_for};

use std::time::Duration;

/// Context switches of minder's main thread (the loop's), voluntary and not: each
/// time it blocked or was preempted. A thread asleep in epoll adds none.
fn loop_switches(pid: i32) -> u64 {
    let path = format!("/proc/{pid}/task/{pid}/status");
    let status =
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {path}: {error}"));
    status
        .lines()
        .filter(|line| line.contains("ctxt_switches:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

#[test]
fn after_a_hung_probe_is_cancelled_the_loop_sleeps_until_the_cores_next_deadline() {
    // The ready probe hangs; at its 200 ms timeout the core counts it failed and
    // cancels it. The next probe is due in an hour and the ready deadline is two.
    let config = format!(
        "{}[service.svc.ready]\nexec = [\"sleep\", \"1000\"]\ntimeout = \"200ms\"\n\
         interval = \"1h\"\ndeadline = \"2h\"\n",
        sh_service("svc", &pid_then_sleep("svc"), "")
    );
    let minder = Minder::run(&config);
    let svc = minder.wait_pid("svc", None);
    let pid = minder.pid();
    // The probe runs beside the service (it is spawned in the turn that saw the
    // service start, so it is there by now unless already cancelled and reaped) ...
    let mut probe_seen = false;
    let reaped = wait_for(PATIENCE, || {
        let left = descendants(pid);
        probe_seen |= left.iter().any(|p| *p != svc);
        // ... and once cancelled, it is killed and reaped: only the service is left.
        probe_seen && left == [svc]
    });
    assert!(
        reaped,
        "the probe was not seen, or not reaped: {:?}",
        descendants(pid)
    );
    // The turn that reaped it ends: the count stops moving.
    let mut last = loop_switches(pid);
    let quiet = wait_for(PATIENCE, || {
        std::thread::sleep(Duration::from_millis(100));
        let now = loop_switches(pid);
        std::mem::replace(&mut last, now) == now
    });
    assert!(quiet, "minder's loop never went quiet");

    // The window measured, not a wait for a condition: nothing is due in it.
    let before = loop_switches(pid);
    std::thread::sleep(Duration::from_secs(1));
    let woke = loop_switches(pid) - before;
    assert_eq!(
        woke,
        0,
        "minder's loop woke {woke} times with nothing due\nstderr:\n{}",
        minder.stderr_text()
    );
    assert!(common::is_alive(svc));
}
