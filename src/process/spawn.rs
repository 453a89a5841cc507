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

/// Everything the child does between clone and exec, with every input prepared in the
/// parent. Created by `spawn`, which keeps it on its own stack frame for the duration
/// of the clone; the child reads it through the pointer `clone` hands over (the
/// parent's thread is suspended meanwhile and nothing else knows of it) and writes
/// only `failure` and `exec.shell_argv`.
struct ChildSetup {
    stdio: StdioMode,
    /// Decided in the parent: is minder's stdin a terminal (Foreground only)?
    take_terminal: bool,
    /// `sigaction` records for SIG_DFL and SIG_IGN with empty masks, for targets where
    /// the raw system call is not used.
    #[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), allow(dead_code))]
    default_action: libc::sigaction,
    #[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), allow(dead_code))]
    ignore_action: libc::sigaction,
    empty_mask: libc::sigset_t,
    /// `kernel_sigset_size()`, asked in the parent.
    sigset_size: usize,
    /// The highest signal to reset (see `max_signal()`; SIGRTMAX is a function call in
    /// glibc, so it is asked in the parent).
    max_signal: c_int,
    umask: Option<libc::mode_t>,
    /// Limits to set (resource, limit), the service's own plus, unless it sets
    /// `nofile`, minder's original RLIMIT_NOFILE (see `setup::original_nofile`).
    rlimits: Vec<(c_int, libc::rlimit64)>,
    /// Set only when minder runs as root: an unprivileged minder cannot call
    /// `setgroups`, and can only "switch" to itself anyway.
    groups: Option<Vec<libc::gid_t>>,
    gid: Option<libc::gid_t>,
    uid: Option<libc::uid_t>,
    /// minder's pid, to detect that minder died before PR_SET_PDEATHSIG was armed.
    parent_pid: libc::pid_t,
    working_dir: CString,
    /// `StdioFds::sources`: what goes on 0, 1, 2 (-1: keep the inherited one).
    stdio_sources: [RawFd; 3],
    /// Upper bound for the close-on-exec loop when `close_range` is unavailable (0 when
    /// it is available).
    fd_limit: c_int,
    /// How to give the child its readiness fd, when asked (`SpawnRequest::ready_fd`);
    /// done after the close-on-exec step, which would otherwise undo it.
    ready_step: Option<ReadyStep>,
    exec: ExecPlan,
    /// Tests only (`spawn_failing_at`): fail at this step as if its call had failed.
    injected: Option<ChildFailure>,
    /// Written by the child, only when it gives up, right before `_exit`; read by the
    /// parent once the clone has returned. `None` then means the child exec'd.
    failure: Cell<Option<ChildFailure>>,
}

impl ChildSetup {
    fn prepare(
        request: &SpawnRequest,
        credentials: &Credentials,
        exec: ExecPlan,
        stdio_sources: [RawFd; 3],
        ready_step: Option<ReadyStep>,
        injected: Option<ChildFailure>,
    ) -> Result<ChildSetup, String> {
        let spec = request.spec;
        // SAFETY: zeroed `sigaction`/`sigset_t` are valid values, then initialised
        // through the libc calls made for that purpose.
        let (default_action, ignore_action, empty_mask) = unsafe {
            let mut empty_mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty_mask);
            let mut default_action: libc::sigaction = std::mem::zeroed();
            default_action.sa_sigaction = libc::SIG_DFL;
            default_action.sa_mask = empty_mask;
            let mut ignore_action = default_action;
            ignore_action.sa_sigaction = libc::SIG_IGN;
            (default_action, ignore_action, empty_mask)
        };
        let limit = |resource: c_int, soft: u64, hard: u64| {
            (
                resource,
                libc::rlimit64 {
                    rlim_cur: soft,
                    rlim_max: hard,
                },
            )
        };
        let mut rlimits: Vec<(c_int, libc::rlimit64)> = spec
            .rlimits
            .iter()
            .map(|rlimit| limit(resource_of(rlimit.resource), rlimit.soft, rlimit.hard))
            .collect();
        let sets_nofile = spec
            .rlimits
            .iter()
            .any(|rlimit| rlimit.resource == RlimitResource::Nofile);
        if let (false, Some((soft, hard))) = (sets_nofile, setup::original_nofile()) {
            rlimits.push(limit(libc::RLIMIT_NOFILE as c_int, soft, hard));
        }
        let working_dir = CString::new(spec.working_dir.as_os_str().as_bytes()).map_err(|_| {
            format!(
                "working directory {} contains a NUL byte",
                spec.working_dir.display()
            )
        })?;
        let is_root = nix::unistd::geteuid().is_root();
        let fd_limit = fallback_fd_limit();
        Ok(ChildSetup {
            stdio: request.stdio,
            take_terminal: request.stdio == StdioMode::Foreground
                && std::io::IsTerminal::is_terminal(&std::io::stdin()),
            default_action,
            ignore_action,
            empty_mask,
            sigset_size: kernel_sigset_size(),
            max_signal: max_signal(),
            umask: spec.umask.map(|mask| mask as libc::mode_t),
            rlimits,
            groups: credentials.groups.clone().filter(|_| is_root),
            gid: credentials.gid,
            uid: credentials.uid,
            parent_pid: nix::unistd::getpid().as_raw(),
            working_dir,
            stdio_sources,
            fd_limit,
            ready_step,
            exec,
            injected,
            failure: Cell::new(None),
        })
    }

    /// Starts the child on `stack` and returns its pid once it has exec'd or exited
    /// (`CLONE_VFORK`); then `failure` says which. Every signal is blocked on this
    /// thread from just before the clone until it returns.
    fn start(&mut self, stack: &ChildStack) -> io::Result<libc::pid_t> {
        let blocked = SignalsBlocked::all()?;
        // Not CLONE_SIGHAND (the child resets its own copy of the dispositions), not
        // CLONE_FS (its chdir and umask are its own), not CLONE_FILES (its dup2s too).
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        // SAFETY: `child_main` runs on `stack`, which stays mapped until after this
        // returns, and gets a pointer to `self`, which outlives the call; this thread
        // is suspended until the child has exec'd or exited, so nothing else uses
        // `self` meanwhile. The child keeps to the rules of the module doc.
        let pid = unsafe {
            libc::clone(
                child_main,
                stack.top(),
                flags,
                (self as *mut ChildSetup).cast::<c_void>(),
            )
        };
        // Read before the mask is restored. (When a child ran, it may have written
        // this thread's errno, which it shares: only a failed clone's errno counts.)
        let error = io::Error::last_os_error();
        drop(blocked);
        if pid < 0 { Err(error) } else { Ok(pid) }
    }

    /// Runs in the child, from `child_main`: the setup steps in order, then exec. Only
    /// raw system calls on prepared data: no allocation, no locks, nothing that can
    /// panic. Never returns: exec replaces the child, or it reports and exits.
    ///
    /// # Safety
    /// Only in a child made by `start`, with every signal blocked.
    unsafe fn run(&self) -> ! {
        // SAFETY (whole function): system calls with valid pointers to data owned by
        // `self`, which the parent keeps alive and untouched until we exec or exit.
        unsafe {
            // Dispositions first: a handler of minder's must never run here (it would
            // run on minder's memory from another process). Every signal is blocked
            // until the exec, but the mask is inherited across exec and SIG_IGN is
            // kept by it, so each one is reset explicitly. The job-control stop
            // signals stay ignored until the end (see the module doc).
            for signal in 1..=self.max_signal {
                if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                    continue;
                }
                self.set_disposition(signal, is_job_control_stop(signal));
            }

            self.injected_failure(Stage::ProcessGroup);
            match self.stdio {
                StdioMode::Capture | StdioMode::Null => {
                    if libc::setsid() < 0 {
                        self.fail(Stage::ProcessGroup);
                    }
                }
                StdioMode::Foreground => {
                    if libc::setpgid(0, 0) < 0 {
                        self.fail(Stage::ProcessGroup);
                    }
                    if self.take_terminal {
                        // Best effort, unlike tini: a terminal that cannot be handed
                        // over costs job control, not the service. (SIGTTOU, which a
                        // background group's tcsetpgrp raises, is ignored and blocked.)
                        libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
                    }
                }
            }

            if let Some(mask) = self.umask {
                libc::umask(mask);
            }
            // Limits before the privilege drop: raising a hard limit needs root.
            self.injected_failure(Stage::Rlimit);
            for (resource, limit) in &self.rlimits {
                if libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    *resource,
                    limit as *const libc::rlimit64,
                    std::ptr::null_mut::<libc::rlimit64>(),
                ) < 0
                {
                    self.fail(Stage::Rlimit);
                }
            }
            // Groups, then gid, then uid: each later step removes the right to do the
            // earlier ones. Raw system calls: glibc's wrappers would apply the change
            // to all of minder's threads (module doc).
            self.injected_failure(Stage::Groups);
            if let Some(groups) = &self.groups
                && libc::syscall(SYS_SETGROUPS, groups.len(), groups.as_ptr()) < 0
            {
                self.fail(Stage::Groups);
            }
            self.injected_failure(Stage::Gid);
            if let Some(gid) = self.gid
                && libc::syscall(SYS_SETGID, gid) < 0
            {
                self.fail(Stage::Gid);
            }
            self.injected_failure(Stage::Uid);
            if let Some(uid) = self.uid
                && libc::syscall(SYS_SETUID, uid) < 0
            {
                self.fail(Stage::Uid);
            }
            // After the credential change, which clears the parent-death signal. It
            // fires when the *thread* that cloned us ends: the runtime spawns from its
            // main thread, which lives as long as minder.
            self.injected_failure(Stage::ParentDeathSignal);
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) < 0
            {
                self.fail(Stage::ParentDeathSignal);
            }
            // minder may have died before the prctl: then no signal will come.
            self.injected_failure(Stage::ParentGone);
            if libc::getppid() != self.parent_pid {
                self.fail_with(Stage::ParentGone, libc::ESRCH);
            }
            // After the privilege drop, so a directory the service's user cannot enter
            // fails here with a clear message rather than later in the service.
            self.injected_failure(Stage::Chdir);
            if libc::chdir(self.working_dir.as_ptr()) < 0 {
                self.fail(Stage::Chdir);
            }
            // Every source is 3 or more (`StdioFds`), so no dup2 here replaces one not
            // yet copied; dup2 clears close-on-exec on the copy.
            self.injected_failure(Stage::Stdio);
            for (target, source) in [0, 1, 2].into_iter().zip(self.stdio_sources) {
                if source >= 0 && libc::dup2(source, target) < 0 {
                    self.fail(Stage::Stdio);
                }
            }
            // Close-on-exec rather than close: a failed exec must leave everything as
            // it was for the next candidate.
            if libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) < 0
            {
                // Kernels before 5.11: mark them one by one.
                for fd in 3..self.fd_limit {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
            // The one fd beyond 2 the child keeps. dup2 clears close-on-exec on the
            // copy; a write end that already sits at N only needs the flag cleared.
            self.injected_failure(Stage::ReadyFd);
            let ready_result = match self.ready_step {
                None => 0,
                Some(ReadyStep::InPlace(fd)) => libc::fcntl(fd, libc::F_SETFD, 0),
                Some(ReadyStep::Duplicate { from, to }) => libc::dup2(from, to),
            };
            if ready_result < 0 {
                self.fail(Stage::ReadyFd);
            }

            // Last: the stop signals back to their default (ignoring them discarded
            // any that came), then an empty mask, which the service inherits.
            for signal in [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
                self.set_disposition(signal, false);
            }
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &self.empty_mask as *const libc::sigset_t,
                std::ptr::null_mut::<libc::sigset_t>(),
                self.sigset_size,
            );
            self.injected_failure(Stage::Exec);
            let errno = self.exec();
            self.fail_with(Stage::Exec, errno)
        }
    }

    /// `execvp`'s algorithm over the prepared candidates; returns only when nothing
    /// could be exec'd, with the errno `execvp` would leave.
    ///
    /// # Safety
    /// Only in the child (`run`).
    unsafe fn exec(&self) -> c_int {
        let plan = &self.exec;
        let mut denied = false;
        // An empty name has no candidates.
        let mut errno = libc::ENOENT;
        for candidate in &plan.candidates {
            // SAFETY: NUL-terminated strings and NULL-terminated arrays of them, all
            // alive as long as `plan`.
            unsafe {
                libc::execve(candidate.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
                errno = last_errno();
                if errno == libc::ENOEXEC {
                    // No known format: run it as a shell script, as execvp does.
                    if let Some(slot) = plan.shell_argv.get(1) {
                        slot.set(candidate.as_ptr());
                    }
                    libc::execve(
                        SHELL.as_ptr(),
                        plan.shell_argv.as_ptr().cast::<*const c_char>(),
                        plan.envp.as_ptr(),
                    );
                    errno = last_errno();
                }
            }
            if !plan.search {
                return errno;
            }
            match errno {
                // Found but not executable by us: report that if nothing else runs.
                libc::EACCES => denied = true,
                // Not in this directory (or a file system's way of saying so).
                libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
                // Found, and something else went wrong: that is the answer.
                _ => return errno,
            }
        }
        if denied { libc::EACCES } else { errno }
    }

    /// Sets `signal` to SIG_IGN or SIG_DFL. Through the raw system call where the
    /// kernel's `struct sigaction` layout is known, because glibc's wrapper refuses the
    /// signals it reserves (32, 33), and those can arrive ignored from minder's own
    /// parent (seen under cargo-nextest) and would otherwise leak into every service.
    ///
    /// # Safety
    /// Only in the child (`run`).
    unsafe fn set_disposition(&self, signal: c_int, ignore: bool) {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            let action = KernelSigaction {
                handler: if ignore { libc::SIG_IGN } else { libc::SIG_DFL },
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // SAFETY: a valid pointer to a kernel-layout sigaction; no old action.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    &action as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let action = if ignore {
                &self.ignore_action
            } else {
                &self.default_action
            };
            // SAFETY: valid pointers; errors are expected for glibc's reserved signals.
            unsafe {
                libc::sigaction(signal, action, std::ptr::null_mut());
            }
        }
    }

    /// Fails at `stage` if a test asked for it (`spawn_failing_at`).
    fn injected_failure(&self, stage: Stage) {
        if let Some(failure) = self.injected
            && failure.stage == stage
        {
            self.fail_with(failure.stage, failure.errno);
        }
    }

    /// Reports `stage` with the current errno and exits.
    fn fail(&self, stage: Stage) -> ! {
        self.fail_with(stage, last_errno())
    }

    /// Reports the failure into the parent's memory and exits. `_exit`, not `exit`:
    /// no atexit handlers or stdio flushing of minder's may run here.
    fn fail_with(&self, stage: Stage, errno: c_int) -> ! {
        self.failure.set(Some(ChildFailure { stage, errno }));
        // SAFETY: _exit has no preconditions.
        unsafe { libc::_exit(127) }
    }
}

/// The child's entry point, on its own stack (see `ChildSetup::start`).
extern "C" fn child_main(setup: *mut c_void) -> c_int {
    // SAFETY: the pointer `start` gave to clone; the `ChildSetup` is alive and unused
    // by anyone else until this child has exec'd or exited, and every signal is
    // blocked (inherited from `start`).
    unsafe { (*setup.cast::<ChildSetup>()).run() }
}

/// This thread's errno (shared with the parent's thread in the child, whose thread
/// pointer is the parent's: harmless, as that thread is suspended).
fn last_errno() -> c_int {
    // SAFETY: __errno_location always returns a valid pointer for the thread.
    unsafe { *libc::__errno_location() }
}

/// The signals whose default action stops the process and that can be ignored.
fn is_job_control_stop(signal: c_int) -> bool {
    signal == libc::SIGTSTP || signal == libc::SIGTTIN || signal == libc::SIGTTOU
}

/// The credential system calls with 32-bit ids (on 32-bit x86 and Arm the plain
/// numbers are the old 16-bit ones).
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
const SYS_SETGROUPS: libc::c_long = libc::SYS_setgroups;
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
const SYS_SETGID: libc::c_long = libc::SYS_setgid;
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
const SYS_SETUID: libc::c_long = libc::SYS_setuid;
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
const SYS_SETGROUPS: libc::c_long = libc::SYS_setgroups32;
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
const SYS_SETGID: libc::c_long = libc::SYS_setgid32;
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
const SYS_SETUID: libc::c_long = libc::SYS_setuid32;

/// The kernel's `struct sigaction` on x86_64 and aarch64 (both have `sa_restorer`),
/// with its 64-bit signal set.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Highest signal number whose disposition the child resets.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn max_signal() -> libc::c_int {
    // The kernel's _NSIG: the raw call reaches the signals glibc hides, too.
    64
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn max_signal() -> libc::c_int {
    libc::SIGRTMAX()
}

fn resource_of(resource: RlimitResource) -> c_int {
    let resource = match resource {
        RlimitResource::Nofile => libc::RLIMIT_NOFILE,
        RlimitResource::Nproc => libc::RLIMIT_NPROC,
        RlimitResource::Core => libc::RLIMIT_CORE,
        RlimitResource::Memlock => libc::RLIMIT_MEMLOCK,
        RlimitResource::Stack => libc::RLIMIT_STACK,
        RlimitResource::As => libc::RLIMIT_AS,
        RlimitResource::Fsize => libc::RLIMIT_FSIZE,
        RlimitResource::Cpu => libc::RLIMIT_CPU,
        RlimitResource::Data => libc::RLIMIT_DATA,
        RlimitResource::Rss => libc::RLIMIT_RSS,
    };
    resource as c_int
}

/// The bound of the child's one-by-one close-on-exec loop, for kernels without
/// `close_range(CLOSE_RANGE_CLOEXEC)` (before 5.11): one past the highest fd open now.
/// Looping up to RLIMIT_NOFILE instead (2^20 as root) cost about 80 ms per spawn with
/// the loop thread suspended. Every fd minder opens later is close-on-exec from birth
/// (std, tokio, and the spawn's own pipes), so only fds below this bound can need the
/// flag. On kernels with `close_range` this is 0 and costs one probe per process.
fn fallback_fd_limit() -> c_int {
    static CLOSE_RANGE_WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let works = *CLOSE_RANGE_WORKS.get_or_init(|| {
        // An empty range at the very top: changes nothing, fails only if the call or
        // the flag is unknown to this kernel.
        // SAFETY: close_range with an fd range that holds no open fd has no effect.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                libc::c_uint::MAX,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) == 0
        }
    });
    if works {
        return 0;
    }
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<c_int>().ok())
                .max()
                .map_or(3, |highest| highest.saturating_add(1))
        })
        // Without /proc, fall back to the limit itself, bounded.
        .unwrap_or_else(|_| {
            nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE)
                .map(|(soft, _)| soft.min(1 << 20) as c_int)
                .unwrap_or(1 << 16)
        })
}
