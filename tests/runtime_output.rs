//! Black-box tests of output capture in `minder run`: each line of a service appears on
//! minder's matching stream with a `NAME | ` prefix, and a blocked sink (a reader that
//! does not read) slows only the services that write to it, never the supervision loop.

mod common;

use common::{Minder, PATIENCE, Stream, pid_then_sleep, sh_service, wait_for};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn service_lines_appear_prefixed_on_the_matching_stream() {
    let config = format!(
        "{}{}{}",
        sh_service(
            "talker",
            &format!(
                "echo 'to stdout'; echo 'to stderr' >&2; {}",
                pid_then_sleep("talker")
            ),
            ""
        ),
        sh_service(
            "other",
            &format!("echo 'other line'; {}", pid_then_sleep("other")),
            ""
        ),
        // Ends while minder runs on: its unterminated last line is due at end of file.
        sh_service(
            "partial",
            "printf 'no newline at end'",
            "restart = \"temporary\""
        ),
    );
    let minder = Minder::run(&config);
    minder.wait_pid("talker", None);
    let expected_stdout = [
        "talker | to stdout",
        "other | other line",
        "partial | no newline at end",
    ];
    let complete = wait_for(PATIENCE, || {
        let stdout = minder.stdout_text();
        let stderr = minder.stderr_text();
        expected_stdout
            .iter()
            .all(|line| stdout.lines().any(|seen| seen == *line))
            && stderr.lines().any(|seen| seen == "talker | to stderr")
    });
    assert!(
        complete,
        "stdout:\n{}\nstderr:\n{}",
        minder.stdout_text(),
        minder.stderr_text()
    );
    assert!(
        !minder.stdout_text().contains("to stderr"),
        "{}",
        minder.stdout_text()
    );
}

/// Bug: the last output of a service could be lost when minder exits. minder flushes
/// the writer thread at exit, but the reader tasks that turn pipe bytes into lines are
/// not run to end of file first, so whatever they have not read yet (and an
/// unterminated last line, which is only emitted at end of file) is dropped with the
/// runtime. A service that prints a few KiB and exits loses most of them every time
/// (1024 of 3001 lines arrived); one short line was lost in 3 to 40 runs of 100.
#[test]
fn regression_last_lines_of_a_service_lost_at_minder_exit() {
    // 3000 short lines (about 14 KiB) fit in the pipe, so `last` never blocks: all its
    // output is written before it exits.
    let config = format!(
        "[root]\nauto_shutdown = \"any_significant\"\n\n{}",
        sh_service(
            "last",
            "seq 1 3000; printf 'unterminated'",
            "restart = \"temporary\"\nsignificant = true"
        )
    );
    // The loss is a race; a few attempts make a miss practically impossible.
    for attempt in 1..=5 {
        let mut minder = Minder::run(&config);
        assert_eq!(minder.expect_exit(PATIENCE), 0, "{}", minder.stderr_text());
        // minder has exited: whatever it wrote is in the pipe, or lost for good.
        let all_read = wait_for(PATIENCE, || minder.stdout_closed());
        assert!(all_read, "minder's stdout is still open");
        let stdout = minder.stdout_text();
        let lines: Vec<&str> = stdout.lines().collect();
        let expected: Vec<String> = (1..=3000)
            .map(|n| format!("last | {n}"))
            .chain(["last | unterminated".to_string()])
            .collect();
        assert!(
            lines == expected,
            "attempt {attempt}: {} of {} lines arrived; the last ones were {:?}",
            lines.len(),
            expected.len(),
            &lines[lines.len().saturating_sub(3)..]
        );
    }
}

#[test]
fn a_flooding_service_with_an_unread_stdout_does_not_delay_another_services_restarts() {
    // `flood` writes as fast as it can; nobody reads minder's stdout or stderr, so both
    // pipes fill and every write minder makes to them would block. `crasher` writes
    // nothing and exits 1 every 100 ms: its restarts depend only on the loop.
    let config = format!(
        "[root]\nintensity = 1000\nperiod = \"1s\"\n\n{}{}",
        sh_service(
            "flood",
            "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done",
            ""
        ),
        sh_service(
            "crasher",
            "echo $$ >> crasher.pids; sleep 0.1; exit 1",
            "backoff = { initial = \"10ms\", multiplier = 1.0, jitter = 0.0 }"
        ),
    );
    let mut minder = Minder::new();
    minder.write("cfg.toml", &config);
    minder.stdout(Stream::Held).stderr(Stream::Held);
    minder.start_run(&[]);
    // Wait until minder's stdout pipe is full: filled and no longer growing while the
    // flood goes on. (A pipe is 16 page-sized slots and a write that does not fit the
    // last one takes a new slot, so "full" can be well short of 64 KiB.) From then on,
    // every write minder makes to its stdout blocks.
    let (mut last, mut unchanged) = (0, 0);
    let blocked = wait_for(PATIENCE, || {
        let bytes = minder.held_stdout_bytes();
        unchanged = if bytes == last { unchanged + 1 } else { 0 };
        last = bytes;
        bytes >= 32 * 1024 && unchanged >= 10
    });
    assert!(blocked, "minder's stdout did not fill up: {last} bytes");
    let before = minder.lines("crasher.pids").len();
    let restarted = wait_for(Duration::from_secs(4), || {
        let pids: HashSet<String> = minder.lines("crasher.pids").into_iter().collect();
        pids.len() >= before + 3
    });
    let after = minder.lines("crasher.pids").len();
    // Now read, to see what minder did and that the flood got through prefixed.
    minder.drain_stdout();
    minder.drain_stderr();
    assert!(
        wait_for(PATIENCE, || minder.stdout_text().contains("flood | xxxx")),
        "no flood output at all"
    );
    assert!(
        restarted,
        "crasher was restarted {} times in 4 s while minder's stdout was blocked\nstderr:\n{}",
        after - before,
        minder.stderr_text()
    );
}
