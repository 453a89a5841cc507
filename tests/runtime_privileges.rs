//! Black-box tests of what a service inherits from `minder run`: the credentials of its
//! `user` (uid, gid and supplementary groups, as `id` reports them) and no file
//! descriptor beyond 0, 1, 2, even one minder itself was started with by mistake.

mod common;

use common::{Minder, PATIENCE, command_stdout, open_fds, status_ids};
use std::collections::BTreeSet;

fn ids(text: &str) -> BTreeSet<u32> {
    text.split_whitespace()
        .map(|id| id.parse().expect("numeric id"))
        .collect()
}

#[test]
fn a_service_with_a_user_runs_with_that_users_ids_and_groups() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "this test needs root (CI runs as root): minder can only drop privileges it has"
    );
    let mut minder = Minder::new();
    // `nobody` cannot enter a private temporary directory; it runs in `/` and writes
    // its pid by absolute path.
    common::make_world_writable(minder.dir.path());
    let pid_file = minder.path("low.pid");
    let script = format!("echo $$ > {}; exec sleep 1000", pid_file.display());
    let config = common::sh_service("low", &script, "user = \"nobody\"\nworking_dir = \"/\"");
    minder.write("cfg.toml", &config);
    minder.start_run(&[]);
    let pid = minder.wait_pid("low", None);

    let uid: u32 = command_stdout("id", &["-u", "nobody"])
        .trim()
        .parse()
        .expect("uid");
    let gid: u32 = command_stdout("id", &["-g", "nobody"])
        .trim()
        .parse()
        .expect("gid");
    let groups = ids(&command_stdout("id", &["-G", "nobody"]));
    // Real, effective, saved and filesystem ids alike: nothing left to regain root.
    assert_eq!(status_ids(pid, "Uid:"), [uid; 4]);
    assert_eq!(status_ids(pid, "Gid:"), [gid; 4]);
    let seen: BTreeSet<u32> = status_ids(pid, "Groups:").into_iter().collect();
    assert_eq!(seen, groups, "supplementary groups of {pid}");
}

#[test]
fn a_service_sees_no_fd_of_minders_beyond_0_1_2_not_even_a_leaked_one() {
    let mut minder = Minder::new();
    common::make_world_writable(minder.dir.path());
    let low_pid_file = minder.path("low.pid");
    let config = format!(
        "{}{}",
        common::sh_service("plain", &common::pid_then_sleep("plain"), ""),
        common::sh_service(
            "low",
            &format!("echo $$ > {}; exec sleep 1000", low_pid_file.display()),
            "user = \"nobody\"\nworking_dir = \"/\""
        ),
    );
    minder.write("cfg.toml", &config);
    minder.write("leaked", "a file minder's parent forgot to close\n");
    let leaked = std::fs::File::open(minder.path("leaked")).expect("open leaked");
    minder.leak_fd_5(leaked);
    minder.start_run(&[]);
    let plain = minder.wait_pid("plain", None);
    let low = minder.wait_pid("low", None);
    // The leak worked: minder itself holds fd 5.
    let target = std::fs::read_link(format!("/proc/{}/fd/5", minder.pid()))
        .expect("minder was started with fd 5 open");
    assert_eq!(target, minder.path("leaked"));
    // Once both have exec'd sleep, these are the services' own descriptors. sleep's
    // startup may hold one for an instant (glibc reads gconv-modules.cache while it sets
    // up its locale), so the check waits for the set to settle: an fd leaked by minder
    // never goes away.
    for (pid, what) in [
        (plain, "the root service"),
        (low, "the service run as nobody"),
    ] {
        common::wait_exec(pid, "sleep");
        let clean = common::wait_for(PATIENCE, || open_fds(pid) == [0, 1, 2]);
        assert!(clean, "fds of {what}:\n{}", common::describe_fds(pid));
    }
}

#[test]
fn a_service_starts_with_a_clean_signal_mask_and_dispositions_and_stdin_from_dev_null() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &common::sh_service("plain", &common::pid_then_sleep("plain"), ""),
    );
    minder.dirty_signal_state().start_run(&[]);
    let service = minder.wait_pid("plain", None);
    common::wait_exec(service, "sleep");
    let alarm = 1u64 << (libc::SIGALRM - 1);
    let xcpu = 1u64 << (libc::SIGXCPU - 1);
    // The dirt reached minder...
    assert_ne!(
        common::signal_set(minder.pid(), "SigIgn:") & alarm,
        0,
        "SIGALRM not ignored in minder"
    );
    assert_ne!(
        common::signal_set(minder.pid(), "SigBlk:") & xcpu,
        0,
        "SIGXCPU not blocked in minder"
    );
    // ...and none of it, nor anything minder blocks or ignores for itself, reached the
    // service (a non-interactive sh that exec'd sleep changes neither).
    assert_eq!(
        common::signal_set(service, "SigBlk:"),
        0,
        "blocked signals of the service"
    );
    assert_eq!(
        common::signal_set(service, "SigIgn:"),
        0,
        "ignored signals of the service"
    );
    let stdin = std::fs::read_link(format!("/proc/{service}/fd/0")).expect("fd 0 of the service");
    assert_eq!(stdin, std::path::Path::new("/dev/null"));
}
