//! Black-box tests of `minder run` given bad input at run time: an `env_file` that is
//! a FIFO or an endless device (it must fail that service's start with a reason, while
//! the loop goes on supervising the rest), `--` with no command after it, and a
//! spawn failure of a service that sets `group` without `user`.

mod common;

use common::{Minder, PATIENCE, Signal, pid_then_sleep, send_signal, sh_service};
use std::ffi::OsString;

/// A tree of two services: `good`, which records its pid and sleeps, and `bad`, whose
/// env file is `env_file`. `bad` retries under a short fixed backoff, and the root's
/// budget is large enough that its failures never end minder during the test.
fn good_and_bad(env_file: &str) -> String {
    format!(
        "[root]\nintensity = 1000\n\n{}{}",
        sh_service(
            "good",
            &pid_then_sleep("good"),
            "backoff = { initial = \"10ms\" }"
        ),
        sh_service(
            "bad",
            &pid_then_sleep("bad"),
            &format!(
                "env_file = \"{env_file}\"\nbackoff = {{ initial = \"200ms\", max = \"200ms\" }}"
            ),
        ),
    )
}

/// Runs `good_and_bad(env_file)` and checks that `bad` fails to start, again and again,
/// with a reason naming the file and `what` it is, while `good` is restarted as usual
/// and a SIGTERM still ends minder cleanly.
fn bad_env_file_fails_only_its_own_start(minder: &mut Minder, env_file: &str, what: &str) {
    minder.start_run(&[]);
    let good = minder.wait_pid("good", None);
    let reason = format!(
        "spawn bad: read env file {env_file}: it is {what}, not a regular file (only regular files are read)"
    );
    // Two failed starts: the first one did not freeze the loop, and the service is
    // retried under its backoff like any failed start.
    minder.wait_log(&[&reason], 2, PATIENCE);
    assert_eq!(minder.pid_file("bad"), None, "bad must never have run");

    send_signal(good, Signal::SIGKILL);
    minder.wait_pid("good", Some(good));

    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0, "{}", minder.stderr_text());
    minder.assert_nothing_left();
}

#[test]
fn a_fifo_as_env_file_fails_that_start_and_does_not_freeze_the_loop() {
    let mut minder = Minder::new();
    let fifo = minder.path("bad.env");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    minder.write("cfg.toml", &good_and_bad("bad.env"));
    bad_env_file_fails_only_its_own_start(
        &mut minder,
        &fifo.display().to_string(),
        "a FIFO (named pipe)",
    );
}

#[test]
fn dev_zero_as_env_file_fails_that_start_instead_of_reading_forever() {
    let mut minder = Minder::new();
    minder.write("cfg.toml", &good_and_bad("/dev/zero"));
    bad_env_file_fails_only_its_own_start(&mut minder, "/dev/zero", "a character device");
}

#[test]
fn run_with_nothing_after_the_separator_is_a_usage_error() {
    let mut minder = Minder::new();
    minder.write("cfg.toml", &sh_service("side", &pid_then_sleep("side"), ""));
    let config = minder.path("cfg.toml");
    minder.start(vec!["run".into(), config.into(), "--".into()]);
    assert_eq!(minder.expect_exit(PATIENCE), 2);
    // minder has exited, but the test's reader of its stderr may not have caught up.
    let lines = minder.wait_log(&["error: `--`"], 1, PATIENCE);
    assert_eq!(
        lines,
        [
            "error: `--` must be followed by the command of the main process: minder run [CONFIG] -- CMD [ARGS...]"
        ]
    );
    assert_eq!(minder.pid_file("side"), None, "nothing may start");
    minder.assert_nothing_left();
}

#[test]
fn a_group_without_a_user_is_named_as_such_when_setting_groups_fails() {
    let mut minder = Minder::new();
    // In a user namespace that maps only root (as `unshare --map-root-user` makes it),
    // minder is root but `setgroups` is denied: the service's start fails at that
    // step, and the message must name the group it asked for, not an empty user.
    minder.write(
        "cfg.toml",
        &format!(
            "[root]\nintensity = 1000\n\n{}",
            sh_service("grouped", &pid_then_sleep("grouped"), "group = \"nogroup\"")
        ),
    );
    let config = minder.path("cfg.toml");
    let args: Vec<OsString> = vec![
        "--user".into(),
        "--map-root-user".into(),
        common::MINDER.into(),
        "run".into(),
        config.into(),
    ];
    minder.start_program("unshare", args);
    let lines = minder.wait_log(&["spawn grouped:"], 1, PATIENCE);
    assert!(
        lines[0].contains(
            "spawn grouped: set supplementary groups to group `nogroup` alone: Operation not permitted"
        ),
        "{}",
        minder.stderr_text()
    );
    assert!(!minder.stderr_text().contains("user ``"));
    assert_eq!(minder.pid_file("grouped"), None, "the service never ran");
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0, "{}", minder.stderr_text());
    minder.assert_nothing_left();
}
