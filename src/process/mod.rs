//! Process handling: spawning services with pre-exec hygiene, reaping, signalling
//! process groups, and preparing minder's own process for supervising.
//!
//! Everything here is synchronous and non-blocking, and is called from one thread: the
//! runtime's loop on minder's main thread. That thread spawns (`spawn`), reaps (`reap`,
//! on SIGCHLD and on a slow sweep) and signals (`signal_group`, `kill_group`), so a pid
//! is always registered by the runtime before the `reap` that could return it, a child
//! that failed before exec is collected by `spawn` before any `reap` can take it, and
//! the parent-death signal is tied to a thread that lives as long as minder.
//!
//! This module must not own a loop, keep a registry of pids, or wait in any other way:
//! `reap` collects every process that became a service or probe, and the only other
//! `waitpid` in minder is `spawn`'s, on its own child that failed before exec and whose
//! pid it returns to nobody (spawn.rs). clippy.toml bans the std and tokio waiters, and
//! deciding whose exit a pid is belongs to the runtime.
//!
//! Tests start real processes and call `reap`, which collects *any* child of the test
//! process; they are meant for `cargo nextest` (one process per test), the project's
//! test runner. Under plain `cargo test` they filter by their own pids and usually pass,
//! but a concurrent test may steal an exit.

mod credentials;
mod env;
mod setup;
mod spawn;
#[cfg(test)]
mod tests;

pub use self::env::parse_env_file;
pub use self::setup::{SupervisorSetup, nofile_warning, original_nofile, prepare_supervisor};
pub use self::spawn::{
    CODE_NOT_EXECUTABLE, CODE_NOT_FOUND, CODE_OTHER, SpawnError, SpawnRequest, SpawnedProcess,
    StdioMode, resolve_program, spawn,
};

use crate::spec::ServiceSpec;
use crate::supervisor::ExitStatus;
use nix::errno::Errno;

/// The (uid, gid) a service's processes run as, when `user` or `group` changes it:
/// what a file only the service may reach (its notify socket) is chown'd to. `None`
/// when the service keeps minder's own identity. Resolved like `spawn` does (names
/// through NSS, numeric ids accepted), so call it on the loop's thread before the
/// spawn, not in a child. The error is a clause such as "unknown user `pg`".
pub fn service_owner(spec: &ServiceSpec) -> Result<Option<(u32, u32)>, String> {
    let credentials = credentials::resolve_cached(spec.user.as_deref(), spec.group.as_deref())?;
    Ok(match (credentials.uid, credentials.gid) {
        (None, None) => None,
        (uid, gid) => Some((
            uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw()),
            gid.unwrap_or_else(|| nix::unistd::getegid().as_raw()),
        )),
    })
}

/// Collects every child that has ended: drains `waitpid(-1, WNOHANG)` until nothing is
/// left (0) or there are no children (ECHILD), retrying on EINTR. Never blocks.
///
/// One SIGCHLD can stand for many exits (standard signals coalesce), hence the drain.
/// Stopped and continued children are not reported (not requested: WUNTRACED and
/// WCONTINUED are off). `__WALL` also collects children that announce their end with a
/// signal other than SIGCHLD (clone with another exit signal), so none stays a zombie;
/// those send no SIGCHLD, so only the runtime's periodic sweep finds them.
///
/// Returned pids the runtime does not know are orphans re-parented to minder.
pub fn reap() -> Vec<(i32, ExitStatus)> {
    let mut exits = Vec::new();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid with a valid pointer to a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if pid > 0 {
            // Decoded with libc's macros rather than nix's `WaitStatus`, which fails on
            // a death by a real-time signal (no `Signal` variant for it).
            if libc::WIFEXITED(status) {
                exits.push((pid, ExitStatus::Exited(libc::WEXITSTATUS(status))));
            } else if libc::WIFSIGNALED(status) {
                exits.push((pid, ExitStatus::Signaled(libc::WTERMSIG(status))));
            }
            continue;
        }
        if pid == 0 {
            break;
        }
        match Errno::last() {
            Errno::EINTR => continue,
            // ECHILD: no children at all. Anything else (EINVAL) cannot be fixed by
            // retrying; the next SIGCHLD or sweep tries again.
            _ => break,
        }
    }
    exits
}

/// Sends `signal` to the process group `pgid` (a service's pid). ESRCH means the group
/// is already empty, which callers treat as done. Refuses pgids ≤ 1 with EINVAL: 0 would
/// signal minder's own group, 1 init's, negatives are meaningless, and each would
/// come from a bug, not from a service.
pub fn signal_group(pgid: i32, signal: i32) -> Result<(), Errno> {
    if pgid <= 1 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: killpg has no memory-safety preconditions.
    if unsafe { libc::killpg(pgid, signal) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sends a stop signal to the process group `pgid`, then SIGCONT, as systemd and s6 do:
/// a process stopped by SIGSTOP or SIGTSTP keeps a caught signal pending and would run
/// its handler only when continued, so without SIGCONT a stopped service would go only
/// at its stop_timeout, killed. The stop signal goes first, so it is already pending
/// when the process resumes. No SIGCONT follows SIGKILL (it needs none), SIGCONT
/// itself, or a signal that stops (it would be undone). Errors are those of the stop
/// signal; SIGCONT can only fail the same way a moment later (the group has just
/// emptied), which changes nothing.
pub fn stop_group(pgid: i32, signal: i32) -> Result<(), Errno> {
    signal_group(pgid, signal)?;
    let needs_no_continue = matches!(
        signal,
        libc::SIGKILL
            | libc::SIGCONT
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    );
    if !needs_no_continue {
        let _ = signal_group(pgid, libc::SIGCONT);
    }
    Ok(())
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `D`, `T` stopped by a signal, `t`
/// stopped by a tracer, `Z`, ...), `None` when there is no such process.
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let end_of_name = stat.iter().rposition(|byte| *byte == b')')?;
    stat[end_of_name + 1..]
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .map(|byte| char::from(*byte))
}

/// SIGKILLs the process group `pgid`. An empty group (ESRCH) is success; any other
/// error is logged, since the caller can do nothing else about it.
pub fn kill_group(pgid: i32) {
    match signal_group(pgid, libc::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(errno) => tracing::warn!(pgid, %errno, "kill process group"),
    }
}
