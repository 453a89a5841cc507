//! One-time preparation of minder's own process for supervising: child subreaper,
//! file-descriptor limit, inherited descriptors, and the job-control signals.
//!
//! Owns the record of minder's *original* RLIMIT_NOFILE, which `spawn` gives back to
//! every service that does not set its own (docs/design.md §3). It must run once, on the main
//! thread, before any thread is started or any fd is opened that should be inherited:
//! it changes process-wide state (signal dispositions, limits, fd flags) and it must not
//! install signal handlers (the runtime does that through tokio).

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::sync::OnceLock;

/// minder's RLIMIT_NOFILE (soft, hard) as it was before `prepare_supervisor` raised it.
/// Written once by `prepare_supervisor`; read by every spawn. Unset (tests, or a caller
/// that skipped the preparation) means services inherit minder's limit unchanged.
static ORIGINAL_NOFILE: OnceLock<(u64, u64)> = OnceLock::new();

/// The limit services get when they do not set `rlimits.nofile`.
pub fn original_nofile() -> Option<(u64, u64)> {
    ORIGINAL_NOFILE.get().copied()
}

/// What `prepare_supervisor` found and did. Returned to the runtime, which logs the
/// warnings once its logging is up (this runs before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorSetup {
    /// minder is PID 1 (of its pid namespace): orphans come to it by nature, and the
    /// kernel drops every signal minder has no handler for.
    pub is_pid1: bool,
    /// `PR_SET_CHILD_SUBREAPER` is in force (always false as PID 1, where it is moot).
    pub subreaper: bool,
    /// RLIMIT_NOFILE (soft, hard) before the raise; what services get by default.
    pub original_nofile: (u64, u64),
    /// RLIMIT_NOFILE (soft, hard) of minder after the raise.
    pub nofile: (u64, u64),
    /// Why raising the hard RLIMIT_NOFILE failed, when minder (as root) tried: EPERM
    /// without CAP_SYS_RESOURCE. Not a warning by itself; `nofile_warning` decides.
    pub nofile_raise_refused: Option<nix::errno::Errno>,
    /// Inherited descriptors (≥ 3) that were not close-on-exec and now are.
    pub inherited_fds_marked: Vec<i32>,
    /// Steps that failed; minder carries on without them.
    pub warnings: Vec<String>,
}

/// Limit on minder's own RLIMIT_NOFILE when it may raise the hard limit (as root):
/// enough for about 500 000 captured services, and small enough that code scanning
/// every possible fd stays fast.
const NOFILE_CEILING: u64 = 1 << 20;

/// Prepares minder's process (see the module doc). Call once, first thing in `main`.
pub fn prepare_supervisor() -> SupervisorSetup {
    let mut warnings = Vec::new();
    let is_pid1 = nix::unistd::getpid().as_raw() == 1;
    let mut subreaper = false;
    if !is_pid1 {
        // Orphans of services (double-forked daemons, workers whose parent died) are
        // re-parented to minder instead of the host's init, so minder reaps them and
        // can kill them with the group.
        match nix::sys::prctl::set_child_subreaper(true) {
            Ok(()) => subreaper = true,
            Err(errno) => warnings.push(format!("become a child subreaper: {errno}")),
        }
    }

    let mut nofile_raise_refused = None;
    let (original_nofile, nofile) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(original) => {
            let _ = ORIGINAL_NOFILE.set(original);
            let raised = raise_nofile(original, &mut warnings, &mut nofile_raise_refused);
            (original, raised)
        }
        Err(errno) => {
            warnings.push(format!("read RLIMIT_NOFILE: {errno}"));
            ((0, 0), (0, 0))
        }
    };

    let inherited_fds_marked = mark_inherited_fds_cloexec(&mut warnings);

    // Job-control signals would stop minder when it touches a terminal it does not own
    // (container mode hands the terminal to its child); SIGPIPE would kill it when a
    // reader of its stdout or of a control connection goes away. Children get the
    // defaults back in `spawn`. SIGCHLD is left alone: SIG_IGN there would make the
    // kernel discard exit statuses.
    for signal in [libc::SIGTTIN, libc::SIGTTOU, libc::SIGTSTP, libc::SIGPIPE] {
        // SAFETY: setting SIG_IGN installs no handler code; no other thread exists yet.
        if unsafe { libc::signal(signal, libc::SIG_IGN) } == libc::SIG_ERR {
            warnings.push(format!(
                "ignore signal {signal}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }

    SupervisorSetup {
        is_pid1,
        subreaper,
        original_nofile,
        nofile,
        nofile_raise_refused,
        inherited_fds_marked,
        warnings,
    }
}

/// Soft limit up to the hard limit; as root, both up to `min(fs.nr_open, 2^20)` when the
/// hard limit is lower. Returns the limit in force afterwards.
///
/// Root without CAP_SYS_RESOURCE (Docker's default capability set lacks it) cannot
/// raise the hard limit: that attempt fails, its errno goes to `refused`, and the soft
/// limit still goes up to the existing hard limit. Whether that is worth a warning
/// depends on what the tree needs (`nofile_warning`): a hard limit of 524288 is plenty,
/// one of 64 is not.
fn raise_nofile(
    original: (u64, u64),
    warnings: &mut Vec<String>,
    refused: &mut Option<nix::errno::Errno>,
) -> (u64, u64) {
    let (_, hard) = original;
    if nix::unistd::geteuid().is_root() {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(NOFILE_CEILING);
        let wanted = nr_open.min(NOFILE_CEILING);
        if wanted > hard {
            match setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted) {
                Ok(()) => return (wanted, wanted),
                Err(errno) => *refused = Some(errno),
            }
        }
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => (hard, hard),
        Err(errno) => {
            warnings.push(format!("raise RLIMIT_NOFILE to {hard}: {errno}"));
            original
        }
    }
}

/// A warning when minder's RLIMIT_NOFILE, as `prepare_supervisor` left it, is below
/// `needed`, the descriptors the tree will hold at once (the runtime's estimate):
/// output pipes, notify sockets and probe connections would then fail with EMFILE,
/// one by one and far from the cause. Says why the limit could not be raised.
pub fn nofile_warning(setup: &SupervisorSetup, needed: u64) -> Option<String> {
    let (soft, hard) = setup.nofile;
    if soft >= needed || setup.original_nofile == (0, 0) {
        return None;
    }
    let why = match setup.nofile_raise_refused {
        Some(errno) => {
            format!("raising the hard limit {hard} failed ({errno}; it needs CAP_SYS_RESOURCE)")
        }
        None if hard > soft => format!("raising it to the hard limit {hard} failed"),
        None => "it is the hard limit, which only root with CAP_SYS_RESOURCE may raise".to_string(),
    };
    Some(format!(
        "could not raise RLIMIT_NOFILE above {soft}: {why}; the tree needs about {needed} \
         file descriptors, so capturing output, notify sockets or probes may fail with \
         \"Too many open files\""
    ))
}

/// Marks every open fd ≥ 3 close-on-exec, so nothing minder inherited (a socket its
/// own parent leaked, a shell's extra fd) reaches services. `spawn` marks them again in
/// each child; this also covers helpers run by other means.
fn mark_inherited_fds_cloexec(warnings: &mut Vec<String>) -> Vec<i32> {
    let entries = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries,
        Err(error) => {
            warnings.push(format!("list /proc/self/fd: {error}"));
            return Vec::new();
        }
    };
    // Collect first: the directory's own fd is among the entries while it is open.
    let fds: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|fd| *fd >= 3)
        .collect();
    let mut marked = Vec::new();
    for fd in fds {
        // SAFETY: fcntl on a number that may or may not be open; EBADF is harmless.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            // SAFETY: as above.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == 0 {
                marked.push(fd);
            }
        }
    }
    marked
}
