//! What minder checks and tidies when it starts: notify directories left behind by a
//! minder killed with SIGKILL are removed (only those: a live minder's stays, and so
//! does anything not clearly minder's), and a file-descriptor limit too small for the
//! tree, which minder cannot raise, is reported.

// The test waits for its own short-lived child (`true`), never for minder's.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{MINDER, Minder, PATIENCE, Signal, sh_service, wait_for};
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where minder puts its notify directories: `/run` when it may write there (as root),
/// else `$XDG_RUNTIME_DIR`, else the temporary directory (src/notify.rs).
fn runtime_dir() -> PathBuf {
    let writable = |path: &Path| {
        nix::unistd::access(
            path,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .is_ok()
    };
    if writable(Path::new("/run")) {
        return PathBuf::from("/run");
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && dir.is_absolute()
        && writable(&dir)
    {
        return dir;
    }
    std::env::temp_dir()
}

/// The pid of a process that has just ended and been reaped: no process has it now.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait for true");
    pid
}

/// `base/minder-<pid>` as a killed minder leaves it: mode 0711, holding a notify socket
/// nobody is bound to any more. Removed by the guard if the test leaves it.
fn leftover(base: &Path, pid: u32) -> Leftover {
    let dir = base.join(format!("minder-{pid}"));
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&dir)
        .unwrap_or_else(|error| panic!("create {}: {error}", dir.display()));
    // Bound, then closed: the file stays, and connecting to it is refused.
    drop(std::os::unix::net::UnixDatagram::bind(dir.join("notify-web.sock")).expect("bind"));
    Leftover(dir)
}

/// Removes a directory the test created, whatever minder did with it.
struct Leftover(PathBuf);

impl Drop for Leftover {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn notify_dirs_of_sigkilled_minders_are_removed_at_start_and_only_those() {
    let base = runtime_dir();
    // A live minder with a notify socket: its directory must survive.
    let live = Minder::run(&sh_service(
        "n",
        "echo $$ > n.pid; exec sleep 1000",
        "ready = { notify = true, deadline = \"1h\" }",
    ));
    live.wait_pid("n", None);
    let live_dir = base.join(format!("minder-{}", live.pid()));
    assert!(
        wait_for(PATIENCE, || live_dir.join("notify-n.sock").exists()),
        "{} has no socket\n{}",
        live_dir.display(),
        live.stderr_text()
    );

    let stale = leftover(&base, dead_pid());
    // Someone else's: another user's directory is never touched.
    let foreign = leftover(&base, dead_pid());
    std::os::unix::fs::lchown(&foreign.0, Some(65534), Some(65534)).expect("chown");
    // In use: a live minder whose pid means nothing here (another pid namespace
    // sharing this directory) holds its directory's lock.
    let locked = leftover(&base, dead_pid());
    let lock = std::fs::File::open(&locked.0).expect("open the directory");
    // SAFETY: flock on a descriptor the test owns.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    // More than sockets: the socket goes, the rest (and so the directory) stays.
    let cluttered = leftover(&base, dead_pid());
    std::fs::write(cluttered.0.join("notes.txt"), "mine").expect("write");
    // Not minder's spelling of a pid.
    let odd = Leftover(base.join(format!("minder-0{}", dead_pid())));
    std::fs::DirBuilder::new().create(&odd.0).expect("create");

    let mut starting = Minder::new();
    starting.write(
        "cfg.toml",
        &sh_service("a", "echo $$ > a.pid; exec sleep 1000", ""),
    );
    starting.start_run(&[]);
    starting.wait_pid("a", None);
    assert!(
        wait_for(PATIENCE, || !stale.0.exists()),
        "{} was left in place\n{}",
        stale.0.display(),
        starting.stderr_text()
    );
    // (Any minder starting meanwhile, of another test, may be the one that removed it.)
    assert!(
        live_dir.join("notify-n.sock").exists(),
        "the live minder's socket went"
    );
    assert!(foreign.0.exists(), "another user's directory was removed");
    assert!(
        locked.0.join("notify-web.sock").exists(),
        "a locked directory was emptied"
    );
    assert!(
        cluttered.0.join("notes.txt").exists(),
        "a file not minder's was removed"
    );
    assert!(!cluttered.0.join("notify-web.sock").exists());
    assert!(odd.0.exists());
    assert_eq!(
        std::fs::metadata(&foreign.0).expect("stat").uid(),
        65534,
        "the foreign directory changed hands"
    );
    drop(lock);
}

#[test]
fn minder_warns_when_the_fd_limit_is_too_small_and_cannot_be_raised() {
    // `ulimit -n 64` and no CAP_SYS_RESOURCE (a container without it, as root): minder
    // cannot raise the hard limit. Before the fix it said nothing, and services failed
    // later with EMFILE, far from the cause.
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &sh_service("a", "echo $$ > a.pid; exec sleep 1000", ""),
    );
    let args: Vec<OsString> = [
        "--nofile=64:64",
        "setpriv",
        "--inh-caps=-sys_resource",
        "--bounding-set=-sys_resource",
        "--",
        MINDER,
        "run",
    ]
    .iter()
    .map(OsString::from)
    .chain([minder.path("cfg.toml").into_os_string()])
    .collect();
    minder.start_program("prlimit", args);
    minder.wait_pid("a", None);
    let warned = minder.wait_log(
        &["WARN", "could not raise RLIMIT_NOFILE above 64"],
        1,
        PATIENCE,
    );
    assert!(warned[0].contains("CAP_SYS_RESOURCE"), "{warned:?}");
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);

    // The same tree with the limit it was given here says nothing.
    let mut plain = Minder::run(&sh_service("a", "echo $$ > a.pid; exec sleep 1000", ""));
    plain.wait_pid("a", None);
    plain.signal(Signal::SIGTERM);
    assert_eq!(plain.expect_exit(PATIENCE), 0);
    assert!(
        plain.log_lines(&["RLIMIT_NOFILE"]).is_empty(),
        "{}",
        plain.stderr_text()
    );
}
