//! Starting one process for a service: everything between a `ServiceSpec` and a running
//! child with a clean slate.
//!
//! Owns the creation of the child and its setup before exec ("pre-exec hygiene"):
//! signal dispositions and mask, session or process group, terminal foreground, umask,
//! rlimits, privilege drop, parent-death signal, working directory, standard streams,
//! the readiness fd, and close-on-exec of every other fd beyond 0, 1, 2.
//!
//! # How the child is made
//!
//! With `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)`, as glibc's `posix_spawn` does: the
//! child runs in minder's own address space, on a stack of its own (`ChildStack`), and
//! the calling thread stays suspended in the kernel until the child has exec'd or
//! exited. Nothing is copied. (A `fork` copies minder's page tables and then pays a
//! copy-on-write fault for every page either side writes: with 1000 services that was
//! about half of minder's CPU time in a restart.) Sharing minder's memory with another
//! process is what makes this fast, and what every rule below is about:
//!
//! - **Everything is prepared in the parent, before the clone**: credentials (NSS
//!   lookups), the environment and env file, argv and envp as C arrays, the `PATH`
//!   search list, rlimits, the standard streams' fds (/dev/null, pipes), the readiness
//!   fd and the stack (`ChildSetup::prepare`, `ExecPlan`, `StdioFds`).
//! - **The child touches only that prepared data, with raw system calls**
//!   (`ChildSetup::run`): no allocation, no lock, no std I/O, no panic path. Other
//!   threads of minder keep running meanwhile, in the same memory, and may hold any
//!   lock. Credentials change through the raw `setgroups`/`setgid`/`setuid` system
//!   calls: glibc's wrappers would broadcast the change to every thread glibc knows
//!   of, i.e. to minder's own threads.
//! - **No signal handler of minder's ever runs in the child.** `spawn` blocks every
//!   signal on the calling thread right before the clone (raw `rt_sigprocmask`, so
//!   glibc's internal signals too) and restores the mask right after it
//!   (`SignalsBlocked`). The child inherits the full mask, first sets every
//!   disposition to SIG_DFL (the child has its own copy of the table: no
//!   `CLONE_SIGHAND`), and empties its mask only right before `execve`. A signal that
//!   reached the child in between is then acted on by its default action, as if it had
//!   come just after the exec. The job-control stop signals stay *ignored* until that
//!   last step, which discards any that arrived: a child stopped before exec would hold
//!   the calling thread (the runtime's loop) suspended until someone continued it. Only
//!   the few instructions between resetting them and `execve` remain exposed, as in
//!   glibc's `posix_spawn`. SIGSTOP cannot be ignored: a process of the service's own
//!   user that sends SIGSTOP to the child between its `setuid` and its `execve` holds
//!   the loop suspended until the child is continued or killed. That is the price of
//!   `CLONE_VFORK` (posix_spawn pays it too); known, not handled.
//! - **The child writes to minder's memory only its failure report** (`failure`: stage
//!   and errno) and one slot of the prepared shell argv (a file without a known format
//!   runs as `/bin/sh FILE ARGS`, as `execvp` does). The parent reads the report after
//!   the clone returns, when the child has either exec'd (its memory is its own from
//!   then on; no report) or exited (report set).
//! - **Who collects a child that failed before exec**: `spawn` itself, with `waitpid` on
//!   that one pid, right after reading the report. It is the one collecting call in
//!   minder besides `reap`, limited to a fresh child of the calling thread that never
//!   became a service: its pid is returned to nobody, and since the loop's thread is
//!   the one that spawns and reaps, no `reap` can run in between and take it first
//!   (docs/design.md §3). A child that exec'd belongs to `reap` like every other.
//! - The clone is made from the calling thread, so the parent-death signal is tied to
//!   it: the runtime spawns from its main thread, which lives as long as minder.
//!
//! `spawn` returns as soon as the exec has replaced the child's memory: a moment
//! before the kernel has closed the child's close-on-exec fds and laid out its argv
//! and environment, so /proc may briefly still show those as they were. A child killed
//! by a signal before its exec leaves no report: `spawn` returns its pid, and `reap`
//! reports the signal like any other death.

use super::credentials::{self, Credentials};
use super::env::{self, EnvVar};
use super::setup;
use crate::spec::{RlimitResource, ServiceSpec};
use nix::sys::resource::Resource;
use std::cell::Cell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

mod child;
use child::ChildSetup;

/// How the child's standard streams are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioMode {
    /// Config mode: stdin is /dev/null, stdout and stderr are fresh pipes whose read ends
    /// are returned in `SpawnedProcess` for `logs::OutputHub`; the child gets its own
    /// session (`setsid`), so no terminal signal reaches it directly.
    Capture,
    /// Container mode (`minder -- cmd`): the child inherits minder's stdin, stdout and
    /// stderr, gets its own process group only (same session, so the terminal stays its
    /// controlling terminal), and when stdin is a terminal it is made the terminal's
    /// foreground group (as tini does), so job control and Ctrl-C work in
    /// `minder -- bash`.
    Foreground,
    /// Probe commands (`exec` readiness and health checks): stdin, stdout and stderr
    /// are all /dev/null, and the child gets its own session (`setsid`), as in
    /// `Capture`, so the runtime can kill the probe's whole group at its timeout
    /// without touching the service. Its output is not kept: a probe answers with
    /// its exit status only.
    Null,
}

/// What to start. Built by the runtime for each spawn; borrowed only for the call.
#[derive(Clone, Copy, Debug)]
pub struct SpawnRequest<'a> {
    /// The service: argv (unless `command` overrides it), working dir, user, group,
    /// environment, umask, rlimits.
    pub spec: &'a ServiceSpec,
    pub stdio: StdioMode,
    /// Variables added last, over everything else (the runtime's `NOTIFY_SOCKET`,
    /// `WATCHDOG_USEC`).
    pub extra_env: &'a [(String, String)],
    /// Run this argv instead of `spec.command`, with everything else of the service
    /// (exec readiness and health probes run with the service's identity, environment
    /// and working directory, docs/design.md §4). `None` for the service itself.
    pub command: Option<&'a [String]>,
    /// `ready.fd = N` (s6 style): give the child the write end of a fresh pipe as its
    /// fd N (not close-on-exec, unlike every other fd beyond 2), and return the read
    /// end in `SpawnedProcess::ready_fd`. N must be 3 or more. `None` by default.
    pub ready_fd: Option<i32>,
}

impl<'a> SpawnRequest<'a> {
    /// A request to start the service itself.
    pub fn new(spec: &'a ServiceSpec, stdio: StdioMode, extra_env: &'a [(String, String)]) -> Self {
        SpawnRequest {
            spec,
            stdio,
            extra_env,
            command: None,
            ready_fd: None,
        }
    }
}

/// A started child. Returned to the runtime, which registers `pid` before it next calls
/// `reap()` (the same thread, so the exit cannot be missed).
#[derive(Debug)]
pub struct SpawnedProcess {
    /// The child's pid, which is also its process-group id (and session id in
    /// `Capture` mode): signal the service with `signal_group(pid, ..)`.
    pub pid: i32,
    /// Read end of the child's stdout pipe (`Capture` only). Close-on-exec, blocking;
    /// the runtime hands it to `logs::OutputHub::attach`. Dropping it closes the pipe,
    /// and the child's next write gets EPIPE/SIGPIPE.
    pub stdout: Option<OwnedFd>,
    /// Read end of the child's stderr pipe (`Capture` only); as `stdout`.
    pub stderr: Option<OwnedFd>,
    /// Read end of the readiness pipe when `SpawnRequest::ready_fd` was set.
    /// Close-on-exec, blocking; the runtime hands it to `health::Prober::watch_ready_fd`.
    /// minder holds no copy of the write end, so end of file means every process that
    /// had it (the service and whatever inherited its fd N) has closed it or exited.
    pub ready_fd: Option<OwnedFd>,
}

/// Why a spawn failed. Nothing is left running: a child that failed before exec has
/// already been collected by `spawn` itself (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnError {
    /// What a shell would report: 127 command not found, 126 found but not executable,
    /// 1 anything else (unknown user, unreadable env file, failed chdir, ...).
    pub code: i32,
    /// One line naming the operation and the object, e.g.
    /// `spawn db: exec /usr/bin/pg: No such file or directory (os error 2)`.
    pub reason: String,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SpawnError {}

/// Exit code of a command that was not found.
pub const CODE_NOT_FOUND: i32 = crate::exit::NOT_FOUND;
/// Exit code of a command that was found but could not be executed.
pub const CODE_NOT_EXECUTABLE: i32 = crate::exit::CANNOT_EXECUTE;
/// Exit code of every other start failure.
pub const CODE_OTHER: i32 = crate::exit::START_FAILED;

/// Starts the service (or probe) of `request`. Never blocks on the child beyond its
/// setup and exec, and never waits for it, except to collect a child whose setup or
/// exec failed (see the module doc).
pub fn spawn(request: &SpawnRequest) -> Result<SpawnedProcess, SpawnError> {
    spawn_with(request, None)
}

/// `spawn`, with the child made to fail at `stage` with `errno`, as if that step's
/// system call had failed: reaches the stages the OS cannot be made to fail on demand.
#[cfg(test)]
pub(super) fn spawn_failing_at(
    request: &SpawnRequest,
    stage: Stage,
    errno: c_int,
) -> Result<SpawnedProcess, SpawnError> {
    spawn_with(request, Some(ChildFailure { stage, errno }))
}

fn spawn_with(
    request: &SpawnRequest,
    injected: Option<ChildFailure>,
) -> Result<SpawnedProcess, SpawnError> {
    let spec = request.spec;
    let fail = |code: i32, what: String| SpawnError {
        code,
        reason: format!("spawn {}: {what}", spec.name),
    };
    let argv = request.command.unwrap_or(&spec.command);
    let Some(program) = argv.first() else {
        return Err(fail(CODE_OTHER, "empty command".into()));
    };

    let credentials = credentials::resolve_cached(spec.user.as_deref(), spec.group.as_deref())
        .map_err(|what| fail(CODE_OTHER, what))?;
    let environment =
        build_environment(request, &credentials).map_err(|what| fail(CODE_OTHER, what))?;
    let program_path = resolve_program(program, &spec.working_dir);
    let exec = ExecPlan::prepare(program, &program_path, argv, &environment)
        .map_err(|what| fail(CODE_OTHER, what))?;
    // The first fd of this spawn, so that no other can take the number N the child's
    // end goes to (see `ReadyPipe::create`).
    let ready_pipe = match request.ready_fd {
        Some(target) => Some(ReadyPipe::create(target).map_err(|what| fail(CODE_OTHER, what))?),
        None => None,
    };
    let stdio = StdioFds::open(request.stdio).map_err(|what| fail(CODE_OTHER, what))?;
    let mut child_setup = ChildSetup::prepare(
        request,
        &credentials,
        exec,
        stdio.sources,
        ready_pipe.as_ref().map(ReadyPipe::child_step),
        injected,
    )
    .map_err(|what| fail(CODE_OTHER, what))?;
    let stack = ChildStack::map()
        .map_err(|error| fail(CODE_OTHER, format!("map the child's stack: {error}")))?;

    let started = child_setup.start(&stack);

    // The child has exec'd or exited: it uses nothing of minder's any more. Its copies
    // of the stdio and readiness fds are its own; minder must hold no copy of the
    // readiness pipe's write end, or the watcher would never see end of file.
    drop(stack);
    let StdioFds {
        stdout,
        stderr,
        child_ends,
        sources: _,
    } = stdio;
    drop(child_ends);
    let ready_read = ready_pipe.map(|pipe| {
        drop(pipe.write);
        pipe.read
    });
    let pid = started.map_err(|error| fail(CODE_OTHER, format!("clone: {error}")))?;
    match child_setup.failure.get() {
        None => Ok(SpawnedProcess {
            pid,
            stdout,
            stderr,
            ready_fd: ready_read,
        }),
        Some(failure) => {
            collect_failed_child(pid);
            let (code, what) = describe_failure(failure, &program_path, spec);
            Err(fail(code, what))
        }
    }
}

/// Collects a child that reported a failure: it has called `_exit` already (the clone
/// returned), so this waits at most for the kernel to finish its exit. The one
/// `waitpid` besides `reap` (see the module doc); its pid went to nobody, so nobody
/// else expects its status.
fn collect_failed_child(pid: libc::pid_t) {
    let mut status: c_int = 0;
    loop {
        // SAFETY: waitpid with a valid pointer to a local.
        let collected = unsafe { libc::waitpid(pid, &mut status, 0) };
        if collected < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // Anything else is the child collected, or ECHILD: taken by a `reap` on another
        // thread, which only tests sharing a process with other tests can do.
        break;
    }
}

/// A command with a `/` is a path relative to the working directory (docs/design.md §2);
/// one without is looked up in the `PATH` the service gets (see `ExecPlan`). Joined
/// here because `execve` would resolve a relative path against minder's own cwd at the
/// time of the call, not the service's. An absolute command stays as it is.
pub fn resolve_program(program: &str, working_dir: &Path) -> PathBuf {
    if program.contains('/') {
        working_dir.join(program)
    } else {
        PathBuf::from(program)
    }
}

/// The child's environment, in precedence order (later wins): minder's own minus the
/// supervisor variables, the passwd entry's HOME/USER/LOGNAME/SHELL, `env_file`, `env`,
/// `MINDER_INSTANCE`, the runtime's `extra_env`. Putting the passwd variables before
/// `env_file` and `env` is what makes "unless `env` sets them" hold.
fn build_environment(
    request: &SpawnRequest,
    credentials: &Credentials,
) -> Result<Vec<EnvVar>, String> {
    let spec = request.spec;
    let mut environment = env::inherited();
    for (key, value) in &credentials.env {
        env::set(&mut environment, key.clone(), value.clone());
    }
    if let Some(path) = &spec.env_file {
        for (key, value) in env::read_env_file(path)? {
            env::set(&mut environment, key, value);
        }
    }
    for (key, value) in &spec.env {
        env::set(&mut environment, key.into(), value.into());
    }
    if let Some(instance) = spec.instance {
        env::set(
            &mut environment,
            "MINDER_INSTANCE".into(),
            instance.to_string().into(),
        );
    }
    for (key, value) in request.extra_env {
        env::set(&mut environment, key.into(), value.into());
    }
    // They could not be passed to `execve` (`ExecPlan` needs C strings).
    for (key, value) in &environment {
        let bad_key =
            key.is_empty() || key.as_bytes().contains(&b'=') || key.as_bytes().contains(&0);
        if bad_key || value.as_bytes().contains(&0) {
            return Err(format!(
                "invalid environment variable `{}`",
                key.to_string_lossy()
            ));
        }
    }
    Ok(environment)
}

/// Steps of the child's setup, in the order it takes them; a failure names its step,
/// since errno alone cannot tell a failed `setuid` from a failed `exec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    ProcessGroup,
    Rlimit,
    Groups,
    Gid,
    Uid,
    ParentDeathSignal,
    ParentGone,
    Chdir,
    /// Putting /dev/null or the output pipes on fds 0, 1, 2.
    Stdio,
    /// Putting the readiness pipe's write end on fd N.
    ReadyFd,
    /// All setup done; the error is exec's own.
    Exec,
}

/// What the child reports to the parent when it gives up: the step and its errno.
/// Written by the child into the parent's memory (`ChildSetup::failure`) right before
/// it exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ChildFailure {
    pub(super) stage: Stage,
    pub(super) errno: c_int,
}

/// Maps a failed child to a shell exit code and a clause, by errno and the step the
/// child failed at (never by message text).
fn describe_failure(failure: ChildFailure, program: &Path, spec: &ServiceSpec) -> (i32, String) {
    let error = io::Error::from_raw_os_error(failure.errno);
    let user = crate::config::printable(spec.user.as_deref().unwrap_or(""));
    let group = crate::config::printable(spec.group.as_deref().unwrap_or(""));
    match failure.stage {
        Stage::Exec => {
            let code = if failure.errno == libc::ENOENT {
                CODE_NOT_FOUND
            } else {
                CODE_NOT_EXECUTABLE
            };
            (code, format!("exec {}: {error}", program.display()))
        }
        Stage::ProcessGroup => (CODE_OTHER, format!("create the process group: {error}")),
        Stage::Rlimit => (CODE_OTHER, format!("set resource limits: {error}")),
        Stage::Groups => (
            CODE_OTHER,
            format!(
                "set {}: {error}",
                credentials::groups_being_set(spec.user.as_deref(), spec.group.as_deref())
            ),
        ),
        Stage::Gid if group.is_empty() => (
            CODE_OTHER,
            format!("switch to the primary group of user `{user}`: {error}"),
        ),
        Stage::Gid => (CODE_OTHER, format!("switch to group `{group}`: {error}")),
        Stage::Uid => (CODE_OTHER, format!("switch to user `{user}`: {error}")),
        Stage::ParentDeathSignal => (CODE_OTHER, format!("set the parent-death signal: {error}")),
        Stage::ParentGone => (CODE_OTHER, "minder exited during the spawn".into()),
        Stage::Chdir => (
            CODE_OTHER,
            format!("chdir {}: {error}", spec.working_dir.display()),
        ),
        Stage::Stdio => (CODE_OTHER, format!("connect the standard streams: {error}")),
        Stage::ReadyFd => (CODE_OTHER, format!("set up the readiness fd: {error}")),
    }
}

/// The s6-style readiness pipe of one spawn (`SpawnRequest::ready_fd`). Created by
/// `spawn` before any other fd of that spawn; `write` is dropped as soon as the child
/// has exec'd (or failed to), `read` goes to the caller in `SpawnedProcess::ready_fd`.
struct ReadyPipe {
    read: OwnedFd,
    /// Close-on-exec. When fd number N was free in minder, this *is* fd N.
    write: OwnedFd,
    /// The child's fd number N.
    target: RawFd,
}

/// What the child does to get its readiness fd.
#[derive(Clone, Copy, Debug)]
enum ReadyStep {
    /// The write end already is fd N: clear its close-on-exec flag.
    InPlace(RawFd),
    /// Copy the write end onto N (whatever minder had at N is close-on-exec anyway).
    Duplicate { from: RawFd, to: RawFd },
}

impl ReadyPipe {
    /// Creates the pipe and, when fd N is free in minder, moves the write end onto N.
    ///
    /// Why the care: in the child, `dup2(write, N)` silently replaces whatever sits at
    /// N, and nothing the child still needs may sit there. Holding N from the start
    /// (with our own write end, or because minder already has something there) keeps
    /// every later fd of the spawn (/dev/null, the output pipes) off it. A thread of
    /// minder closing its fd N during the spawn could reopen the gap; none does (the
    /// loop's thread is the only one that opens and closes fds in bulk).
    fn create(target: RawFd) -> Result<ReadyPipe, String> {
        if target < 3 {
            return Err(format!(
                "readiness fd {target}: must be 3 or more (0, 1 and 2 are the standard streams)"
            ));
        }
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|errno| format!("create the readiness pipe: {errno}"))?;
        if write.as_raw_fd() == target {
            return Ok(ReadyPipe {
                read,
                write,
                target,
            });
        }
        // The lowest free fd at or above N: N itself exactly when N is free.
        // SAFETY: fcntl on an fd we own; a successful result is a new fd we then own.
        let copy = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_DUPFD_CLOEXEC, target) };
        if copy < 0 {
            return Err(format!(
                "create the readiness pipe: {}",
                io::Error::last_os_error()
            ));
        }
        // SAFETY: `copy` was just returned by fcntl and is owned by nobody else.
        let copy = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(copy) };
        let write = if copy.as_raw_fd() == target {
            copy
        } else {
            // N is taken by some fd of minder's, which keeps it taken: drop the copy.
            write
        };
        Ok(ReadyPipe {
            read,
            write,
            target,
        })
    }

    fn child_step(&self) -> ReadyStep {
        if self.write.as_raw_fd() == self.target {
            ReadyStep::InPlace(self.target)
        } else {
            ReadyStep::Duplicate {
                from: self.write.as_raw_fd(),
                to: self.target,
            }
        }
    }
}

/// The fds of one spawn's standard streams, opened by `spawn` before the clone, all
/// close-on-exec. The child's ends are dropped right after the clone (the child holds
/// its own copies on 0, 1, 2 by then); the read ends go to the caller.
struct StdioFds {
    /// What the child puts on fds 0, 1 and 2; -1 leaves the one it inherits from
    /// minder (`Foreground`). Each is 3 or more, so that in the child no `dup2` onto
    /// 0, 1 or 2 can replace a source not yet copied.
    sources: [RawFd; 3],
    /// Owners of `sources`.
    child_ends: Vec<OwnedFd>,
    /// Read ends of the output pipes (`Capture`).
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

impl StdioFds {
    /// What std's `Stdio::null()` and `Stdio::piped()` did before: /dev/null opened
    /// read-only for stdin and write-only for output, and one pipe per output stream.
    fn open(mode: StdioMode) -> Result<StdioFds, String> {
        match mode {
            StdioMode::Foreground => Ok(StdioFds {
                sources: [-1, -1, -1],
                child_ends: Vec::new(),
                stdout: None,
                stderr: None,
            }),
            StdioMode::Capture => {
                let stdin = dev_null(false)?;
                let (stdout, stdout_write) = output_pipe()?;
                let (stderr, stderr_write) = output_pipe()?;
                Ok(StdioFds {
                    sources: [
                        stdin.as_raw_fd(),
                        stdout_write.as_raw_fd(),
                        stderr_write.as_raw_fd(),
                    ],
                    child_ends: vec![stdin, stdout_write, stderr_write],
                    stdout: Some(stdout),
                    stderr: Some(stderr),
                })
            }
            StdioMode::Null => {
                let stdin = dev_null(false)?;
                let output = dev_null(true)?;
                Ok(StdioFds {
                    sources: [stdin.as_raw_fd(), output.as_raw_fd(), output.as_raw_fd()],
                    child_ends: vec![stdin, output],
                    stdout: None,
                    stderr: None,
                })
            }
        }
    }
}

fn dev_null(write: bool) -> Result<OwnedFd, String> {
    let file = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")
        .map_err(|error| format!("open /dev/null: {error}"))?;
    above_stdio(OwnedFd::from(file)).map_err(|error| format!("open /dev/null: {error}"))
}

/// A pipe for one output stream: (read end for minder, write end for the child).
fn output_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|errno| format!("create a pipe: {errno}"))?;
    let write = above_stdio(write).map_err(|error| format!("create a pipe: {error}"))?;
    Ok((read, write))
}

/// `fd` itself when it is 3 or more, else a close-on-exec copy that is. (minder's 0, 1
/// and 2 are normally open, so fresh fds land above them; this covers a caller that
/// closed one.)
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl on an fd we own; a successful result is a new fd we then own.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// The shell `execvp` runs a file without a known format with (glibc's `_PATH_BSHELL`).
const SHELL: &std::ffi::CStr = c"/bin/sh";

/// glibc's default search path when the environment has no `PATH` (`_CS_PATH`).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// What the child hands to `execve`, built in the parent: the C strings and the
/// NULL-terminated pointer arrays into them. A string's bytes live on the heap and do
/// not move when the `CString` or its `Vec` is moved, so the pointers stay valid for
/// as long as the plan lives; nothing modifies the strings.
struct ExecPlan {
    /// The paths to try, in order: the program itself when its name contains a `/`
    /// (already joined to the working dir), else each entry of the service's `PATH`
    /// joined with the name (an empty entry is the name alone, relative to the
    /// working dir). `execvp`'s search, listed here so the child needs no allocation;
    /// tried in the child, with the service's credentials and working dir.
    candidates: Vec<CString>,
    /// The name had no `/`: errors that mean "not in this directory" move on to the
    /// next candidate, as `execvp` does.
    search: bool,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    /// `/bin/sh`, a slot for the candidate, argv[1..], NULL: how `execvp` runs a file
    /// `execve` refuses with ENOEXEC. The child fills the slot, hence the `Cell`s
    /// (`Cell<T>` has the layout of `T`, so this is still a C array).
    shell_argv: Vec<Cell<*const c_char>>,
    /// Owners of the bytes `argv` and `envp` point into.
    _strings: (Vec<CString>, Vec<CString>),
}

impl ExecPlan {
    fn prepare(
        program: &str,
        program_path: &Path,
        argv: &[String],
        environment: &[EnvVar],
    ) -> Result<ExecPlan, String> {
        let nul_free = |bytes: Vec<u8>, what: &dyn Fn() -> String| {
            CString::new(bytes).map_err(|_| format!("{} contains a NUL byte", what()))
        };
        let arg_strings = argv
            .iter()
            .map(|arg| nul_free(arg.clone().into_bytes(), &|| format!("argument {arg:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let env_strings = environment
            .iter()
            .map(|(key, value)| {
                let mut entry = Vec::with_capacity(key.len() + 1 + value.len());
                entry.extend_from_slice(key.as_bytes());
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                nul_free(entry, &|| {
                    format!("environment variable `{}`", key.to_string_lossy())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let search = !program.contains('/');
        let candidates = if !search {
            let path = program_path.as_os_str().as_bytes().to_vec();
            vec![nul_free(path, &|| format!("command {program:?}"))?]
        } else if program.is_empty() {
            // execvp: an empty name is ENOENT without a search.
            Vec::new()
        } else {
            let path = environment
                .iter()
                .find(|(key, _)| key.as_bytes() == b"PATH")
                .map_or(DEFAULT_PATH, |(_, value)| value.as_bytes());
            path.split(|&byte| byte == b':')
                .map(|directory| {
                    let mut candidate = Vec::with_capacity(directory.len() + 1 + program.len());
                    if !directory.is_empty() {
                        candidate.extend_from_slice(directory);
                        candidate.push(b'/');
                    }
                    candidate.extend_from_slice(program.as_bytes());
                    nul_free(candidate, &|| format!("command {program:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?
        };

        let pointers = |strings: &[CString]| -> Vec<*const c_char> {
            strings
                .iter()
                .map(|string| string.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let argv = pointers(&arg_strings);
        let envp = pointers(&env_strings);
        let shell_argv = [SHELL.as_ptr(), std::ptr::null()]
            .into_iter()
            .chain(argv.iter().skip(1).copied())
            .map(Cell::new)
            .collect();
        Ok(ExecPlan {
            candidates,
            search,
            argv,
            envp,
            shell_argv,
            _strings: (arg_strings, env_strings),
        })
    }
}

/// Size of the child's stack. The child runs a handful of small frames; this leaves
/// room for an unoptimised build.
const CHILD_STACK_SIZE: usize = 128 * 1024;

/// The child's stack: an anonymous mapping with an inaccessible guard page at its low
/// end, so that an overflow kills the child (SIGSEGV, whose default action it gets
/// even while blocked) instead of writing over whatever minder has mapped below.
/// Mapped by `spawn` for each child and unmapped on drop, once the clone has returned
/// (the child has exec'd or exited, so nothing runs on it any more).
struct ChildStack {
    base: *mut c_void,
    len: usize,
}

impl ChildStack {
    fn map() -> io::Result<ChildStack> {
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            size if size > 0 => size as usize,
            _ => 4096,
        };
        let len = CHILD_STACK_SIZE + page;
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Unmapped by drop if the guard page cannot be made.
        let stack = ChildStack { base, len };
        // SAFETY: the first page of the mapping just made, which nothing uses.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer: stacks grow down. Page-aligned, which satisfies
    /// every ABI's alignment.
    fn top(&self) -> *mut c_void {
        self.base.cast::<u8>().wrapping_add(self.len).cast()
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `map`, no longer in use.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Size of the kernel's signal set (`_NSIG / 8`), the size the raw `rt_sig*` calls
/// need. glibc's SIGRTMAX is the kernel's highest signal.
fn kernel_sigset_size() -> usize {
    (libc::SIGRTMAX() as usize + 1) / 8
}

/// Every signal blocked on the calling thread, from `all()` until drop, which restores
/// the mask the thread had. Taken by `ChildSetup::start` around the clone (see the
/// module doc).
struct SignalsBlocked {
    previous: libc::sigset_t,
    size: usize,
}

impl SignalsBlocked {
    /// Through the raw system call: glibc's `pthread_sigmask` leaves its internal
    /// signals (SIGCANCEL, SIGSETXID) unblocked, and their handlers must not run in
    /// the child either. The kernel itself never blocks SIGKILL and SIGSTOP.
    fn all() -> io::Result<SignalsBlocked> {
        let size = kernel_sigset_size();
        // SAFETY: sigset_t is plain bytes: all zeroes and all ones are both valid
        // sets, and the kernel reads only its first `size` bytes (fewer than glibc's
        // sigset_t has).
        let (all, mut previous) = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            std::ptr::write_bytes(
                (&mut all as *mut libc::sigset_t).cast::<u8>(),
                0xff,
                std::mem::size_of::<libc::sigset_t>(),
            );
            (all, std::mem::zeroed::<libc::sigset_t>())
        };
        // SAFETY: valid pointers to sets at least `size` bytes long.
        let result = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &all as *const libc::sigset_t,
                &mut previous as *mut libc::sigset_t,
                size,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SignalsBlocked { previous, size })
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the set the kernel gave us; valid pointer and size.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &self.previous as *const libc::sigset_t,
                std::ptr::null_mut::<libc::sigset_t>(),
                self.size,
            );
        }
    }
}
