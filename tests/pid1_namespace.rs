//! minder as PID 1 of a new pid namespace (`unshare --pid --fork --mount-proc`, as root,
//! which CI is): it reaps the orphans re-parented to it, and shuts down on SIGTERM,
//! SIGINT and SIGQUIT, which the kernel would drop for a PID 1 without handlers.
//!
//! Seen from the test, the namespace's processes are the descendants of `unshare` in the
//! host's /proc, whatever their pids inside. The zombie check is shown to work by a
//! negative control: the same workload under a PID 1 that never reaps leaves zombies,
//! and the same check sees them.

mod common;

use common::{Minder, PATIENCE, Signal, comm_of, descendants, sh_service, wait_for, zombies_under};
use std::ffi::OsString;
use std::time::Duration;

/// Makes five orphans: each `( sleep 0.2 & )` subshell exits at once, so its `sleep`
/// is re-parented to PID 1 and, 0.2 s later, becomes a zombie unless PID 1 reaps it.
/// The main process then becomes `tail`, which never waits for anything.
const ORPHAN_MAKER: &str = "for i in 1 2 3 4 5; do (sleep 0.2 &); done; \
                            touch orphans.made; exec tail -f /dev/null";

fn require_root() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the PID 1 tests run `unshare --pid`, which needs root; CI runs them as root. \
         Run them as root (e.g. `sudo -E cargo nextest run --test pid1_namespace`)."
    );
}

/// The orphans of `ORPHAN_MAKER` under `root`, alive or zombie: every process in the
/// namespace but minder and the main process (`tail` once it has exec'd). A fork that
/// has not exec'd `sleep` yet is still called `sh`, so it counts as an orphan too.
fn orphans_under(root: i32) -> Vec<i32> {
    descendants(root)
        .into_iter()
        .filter(|pid| !matches!(comm_of(*pid).as_deref(), Some("minder" | "tail")))
        .collect()
}

/// The check under test: the orphans were made, and all of them are gone for good
/// (reaped), with no zombie of any kind left in the namespace.
fn orphans_reaped(minder: &Minder) -> bool {
    let root = minder.child_pid();
    minder.path("orphans.made").exists()
        && orphans_under(root).is_empty()
        && zombies_under(root).is_empty()
}

/// Waits until `ORPHAN_MAKER` has run in `minder`'s namespace.
fn wait_for_orphans_made(minder: &Minder) {
    let made = wait_for(PATIENCE, || minder.path("orphans.made").exists());
    assert!(made, "the workload did not run:\n{}", minder.stderr_text());
}

#[test]
fn minder_as_pid_1_reaps_orphans_in_config_mode() {
    require_root();
    let mut minder = Minder::new();
    minder.write("cfg.toml", &sh_service("orphans", ORPHAN_MAKER, ""));
    minder.in_pid_namespace().start_run(&[]);
    assert_orphans_reaped(&minder);
}

#[test]
fn minder_as_pid_1_reaps_orphans_in_container_mode() {
    require_root();
    let mut minder = Minder::new();
    minder
        .in_pid_namespace()
        .start_container(&["sh", "-c", ORPHAN_MAKER]);
    assert_orphans_reaped(&minder);
}

#[test]
fn negative_control_the_zombie_check_fails_under_a_pid_1_that_does_not_reap() {
    require_root();
    let mut control = Minder::new();
    // sh is PID 1 until it execs tail, which never waits: the orphans become its
    // zombies.
    let args: Vec<OsString> = ["--pid", "--fork", "--mount-proc", "sh", "-c", ORPHAN_MAKER]
        .iter()
        .map(OsString::from)
        .collect();
    control.start_program("unshare", args);
    wait_for_orphans_made(&control);
    let root = control.child_pid();
    // The orphans end after 0.2 s; once all five are zombies the control has shown
    // what it must. The check under test must stay false for as long as the positive
    // tests wait for it, and more.
    let all_zombies = wait_for(PATIENCE, || zombies_under(root).len() == 5);
    assert!(
        all_zombies,
        "the control made no zombies: {:?} (orphans {:?})",
        zombies_under(root),
        orphans_under(root)
    );
    assert!(
        !wait_for(Duration::from_secs(1), || orphans_reaped(&control)),
        "the zombie check passed although nothing reaped"
    );
    assert_eq!(orphans_under(root), zombies_under(root));
}

#[test]
fn minder_as_pid_1_shuts_down_in_order_on_term_int_and_quit() {
    require_root();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        let config = format!(
            "{}{}",
            sh_service("a", &common::pid_then_sleep("a"), ""),
            // Ends only through the SIGKILL after its stop timeout.
            sh_service(
                "b",
                "trap '' TERM; echo $$ > b.pid; while :; do sleep 1; done",
                "stop_timeout = \"300ms\""
            ),
        );
        let mut minder = Minder::new();
        minder.write("cfg.toml", &config);
        minder.in_pid_namespace().start_run(&[]);
        // Both services have started, so minder's handlers are installed.
        minder.wait_pid("a", None);
        minder.wait_pid("b", None);
        minder.signal(signal);
        // unshare exits with the code of its child, minder.
        let code = minder.expect_exit(PATIENCE);
        assert_eq!(code, 0, "{signal}: stderr:\n{}", minder.stderr_text());
        assert!(
            minder.stderr_text().contains("shutdown requested"),
            "{signal}: no orderly shutdown:\n{}",
            minder.stderr_text()
        );
        minder.assert_nothing_left();
    }
}

#[test]
fn minder_as_pid_1_in_container_mode_forwards_sigterm() {
    require_root();
    let mut minder = Minder::new();
    let script =
        "trap 'echo TERM > got; exit 7' TERM; echo $$ > main.pid; while :; do sleep 0.05; done";
    minder
        .in_pid_namespace()
        .start_container(&["sh", "-c", script]);
    minder.wait_pid("main", None);
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 7, "{}", minder.stderr_text());
    assert!(minder.path("got").exists());
}

/// Once the workload has made its orphans, minder (PID 1 of the namespace) reaps them
/// all: none is left, not even as a zombie.
fn assert_orphans_reaped(minder: &Minder) {
    wait_for_orphans_made(minder);
    let root = minder.child_pid();
    let reaped = wait_for(PATIENCE, || orphans_reaped(minder));
    assert!(
        reaped,
        "orphans left: {:?}, zombies: {:?}\nstderr:\n{}",
        orphans_under(root),
        zombies_under(root),
        minder.stderr_text()
    );
}
