//! Starting one process for a service: everything between a `ServiceSpec` and a running
//! child with a clean slate.
//!
//! Owns the fork/exec and the child's setup between them ("pre-exec hygiene"): session or
//! process group, terminal foreground, signal mask and dispositions, umask, rlimits,
//! privilege drop, parent-death signal, working directory, and close-on-exec of every fd
//! beyond 0, 1, 2. Everything that allocates, takes a lock or consults NSS (environment,
//! env file, user and group lookups, C strings) is prepared in the parent *before* the
//! fork; the closure that runs in the child (`ChildSetup::run`) makes raw syscalls on
//! prepared data only, because after a fork in a threaded process only async-signal-safe
//! calls are allowed.
//!
//! It must not wait for any process: `Command::spawn` is used through std's fork path
//! (taken because of `pre_exec`), which after a failed exec calls `waitpid` on that one
//! child itself. That is safe only because spawning and reaping happen on the same
//! thread (the runtime's loop), so no `waitpid(-1)` can run in between and steal the
//! failed child (process-notes §1). The `Child` handle is dropped right after the pipes
//! are taken; dropping it neither waits nor kills.

use super::credentials::{self, Credentials};
use super::env::{self, EnvVar};
use super::setup;
use crate::spec::{RlimitResource, ServiceSpec};
use nix::sys::resource::Resource;
use std::ffi::CString;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    /// and working directory, design.md §4). `None` for the service itself.
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
/// already been collected by std.
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

/// Starts the service (or probe) of `request`. Never blocks on the child and never
/// waits for it, except that std collects a child whose exec failed.
pub fn spawn(request: &SpawnRequest) -> Result<SpawnedProcess, SpawnError> {
    let spec = request.spec;
    let fail = |code: i32, what: String| SpawnError {
        code,
        reason: format!("spawn {}: {what}", spec.name),
    };
    let argv = request.command.unwrap_or(&spec.command);
    let Some(program) = argv.first() else {
        return Err(fail(CODE_OTHER, "empty command".into()));
    };

    let credentials = credentials::resolve(spec.user.as_deref(), spec.group.as_deref())
        .map_err(|what| fail(CODE_OTHER, what))?;
    let environment =
        build_environment(request, &credentials).map_err(|what| fail(CODE_OTHER, what))?;
    let program_path = resolve_program(program, &spec.working_dir);
    // Before the stage pipe, so that neither it nor std's own exec-error pipe (created
    // inside `Command::spawn`) can take the fd number N the child's pipe end goes to.
    let ready_pipe = match request.ready_fd {
        Some(target) => Some(ReadyPipe::create(target).map_err(|what| fail(CODE_OTHER, what))?),
        None => None,
    };
    let (stage_read, stage_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|errno| fail(CODE_OTHER, format!("create a pipe: {errno}")))?;
    let child_setup = ChildSetup::prepare(
        request,
        &credentials,
        stage_write.as_raw_fd(),
        ready_pipe.as_ref().map(ReadyPipe::child_step),
    )
    .map_err(|what| fail(CODE_OTHER, what))?;

    let mut command = Command::new(&program_path);
    command
        .arg0(program)
        .args(&argv[1..])
        .env_clear()
        .envs(environment);
    match request.stdio {
        StdioMode::Capture => {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        StdioMode::Foreground => {
            command
                .stdin(Stdio::inherit())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit());
        }
        StdioMode::Null => {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
    }
    let mut child_setup = child_setup;
    // SAFETY: `ChildSetup::run` performs only async-signal-safe system calls on data
    // prepared above; it neither allocates nor takes locks.
    unsafe {
        command.pre_exec(move || child_setup.run());
    }

    let result = command.spawn();
    // The child has exec'd or is gone; the closure's copy of the fd number is dead.
    drop(command);
    drop(stage_write);
    // minder must hold no copy of the readiness pipe's write end, or the watcher would
    // never see end of file.
    let ready_read = ready_pipe.map(|pipe| {
        drop(pipe.write);
        pipe.read
    });
    match result {
        Ok(mut child) => {
            let pid = child.id() as libc::pid_t;
            let stdout = child.stdout.take().map(OwnedFd::from);
            let stderr = child.stderr.take().map(OwnedFd::from);
            // Dropping `Child` neither waits for nor kills the process: the reaper owns
            // its exit status from here on.
            drop(child);
            Ok(SpawnedProcess {
                pid,
                stdout,
                stderr,
                ready_fd: ready_read,
            })
        }
        Err(error) => {
            let stage = last_stage(stage_read);
            let (code, what) = describe_failure(stage, &error, &program_path, spec);
            Err(fail(code, what))
        }
    }
}

/// A command with a `/` is a path relative to the working directory (design.md §2);
/// one without is looked up in the child's `PATH` by `execvp` (std sets the child's
/// environment before calling it, so the `PATH` the service gets is the one searched).
/// std itself would resolve a relative path against minder's own cwd, or ambiguously
/// (its docs say so), hence the explicit join. An absolute command stays as it is.
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
    // std would refuse these at spawn time with a less precise message.
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

/// Steps of the child's setup, reported to the parent through the stage pipe so that a
/// failure names the step (errno alone cannot tell a failed `setuid` from a failed
/// `exec`). Written as one byte each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    ProcessGroup = 1,
    Rlimit = 2,
    Groups = 3,
    Gid = 4,
    Uid = 5,
    ParentDeathSignal = 6,
    ParentGone = 7,
    Chdir = 8,
    /// All setup done; an error after this is exec's own.
    Exec = 9,
    /// Putting the readiness pipe's write end on fd N (numbered after `Exec` so that
    /// the existing bytes keep their meaning).
    ReadyFd = 10,
}

impl Stage {
    fn from_byte(byte: u8) -> Option<Stage> {
        [
            Stage::ProcessGroup,
            Stage::Rlimit,
            Stage::Groups,
            Stage::Gid,
            Stage::Uid,
            Stage::ParentDeathSignal,
            Stage::ParentGone,
            Stage::Chdir,
            Stage::Exec,
            Stage::ReadyFd,
        ]
        .into_iter()
        .find(|stage| *stage as u8 == byte)
    }
}

/// The last stage byte the child wrote, if any. Called only after `spawn` failed, when
/// the child is gone and the parent's write end is closed, so the read cannot block
/// (and the pipe is non-blocking anyway).
fn last_stage(stage_read: OwnedFd) -> Option<Stage> {
    let mut file = std::fs::File::from(stage_read);
    let mut bytes = [0u8; 16];
    let mut last = None;
    loop {
        match file.read(&mut bytes) {
            Ok(0) => break,
            Ok(n) => last = Some(bytes[n - 1]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    last.and_then(Stage::from_byte)
}

/// Maps a failed spawn to a shell exit code and a clause, by errno and the stage the
/// child reached (never by message text).
fn describe_failure(
    stage: Option<Stage>,
    error: &io::Error,
    program: &Path,
    spec: &ServiceSpec,
) -> (i32, String) {
    let errno = error.raw_os_error();
    let user = spec.user.as_deref().unwrap_or("");
    let group = spec.group.as_deref().unwrap_or("");
    match stage {
        Some(Stage::Exec) => {
            let code = if errno == Some(libc::ENOENT) {
                CODE_NOT_FOUND
            } else {
                CODE_NOT_EXECUTABLE
            };
            (code, format!("exec {}: {error}", program.display()))
        }
        Some(Stage::ProcessGroup) => (CODE_OTHER, format!("create the process group: {error}")),
        Some(Stage::Rlimit) => (CODE_OTHER, format!("set resource limits: {error}")),
        Some(Stage::Groups) => (
            CODE_OTHER,
            format!("set supplementary groups of user `{user}`: {error}"),
        ),
        Some(Stage::Gid) if group.is_empty() => (
            CODE_OTHER,
            format!("switch to the primary group of user `{user}`: {error}"),
        ),
        Some(Stage::Gid) => (CODE_OTHER, format!("switch to group `{group}`: {error}")),
        Some(Stage::Uid) => (CODE_OTHER, format!("switch to user `{user}`: {error}")),
        Some(Stage::ParentDeathSignal) => {
            (CODE_OTHER, format!("set the parent-death signal: {error}"))
        }
        Some(Stage::ParentGone) => (CODE_OTHER, "minder exited during the spawn".into()),
        Some(Stage::Chdir) => (
            CODE_OTHER,
            format!("chdir {}: {error}", spec.working_dir.display()),
        ),
        Some(Stage::ReadyFd) => (CODE_OTHER, format!("set up the readiness fd: {error}")),
        // The child never reached our setup: fork itself failed (EAGAIN: process limit,
        // ENOMEM) or std failed to wire stdio.
        None => (CODE_OTHER, format!("fork: {error}")),
    }
}

/// The s6-style readiness pipe of one spawn (`SpawnRequest::ready_fd`). Created by
/// `spawn` before any other fd of that spawn; `write` is dropped as soon as the child
/// exists (or failed to), `read` goes to the caller in `SpawnedProcess::ready_fd`.
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
    /// N. If that were the stage pipe or std's exec-error pipe, the child would report
    /// its setup into the service's readiness pipe and std would miss a failed exec.
    /// Both of those are created after this, at the lowest free numbers, so holding N
    /// now (with our own write end, or because minder already has something there)
    /// keeps them off it. A thread of minder closing its fd N during the spawn could
    /// reopen the gap; none does (the loop's thread is the only one that opens and
    /// closes fds in bulk).
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

/// What the child does between fork and exec, with every input prepared in the parent.
/// Created by `spawn`, moved into the `pre_exec` closure, dropped with the `Command`
/// (in the parent) and with the address space (in the child, at exec).
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
    /// The highest signal to reset (see `max_signal()`; SIGRTMAX is a function call in
    /// glibc, so it is asked in the parent).
    max_signal: libc::c_int,
    umask: Option<libc::mode_t>,
    /// Limits to set, the service's own plus, unless it sets `nofile`, minder's
    /// original RLIMIT_NOFILE (see `setup::original_nofile`).
    rlimits: Vec<(Resource, u64, u64)>,
    /// Set only when minder runs as root: an unprivileged minder cannot call
    /// `setgroups`, and can only "switch" to itself anyway.
    groups: Option<Vec<libc::gid_t>>,
    gid: Option<libc::gid_t>,
    uid: Option<libc::uid_t>,
    /// minder's pid, to detect that minder died before PR_SET_PDEATHSIG was armed.
    parent_pid: libc::pid_t,
    working_dir: CString,
    /// Write end of the stage pipe (owned by `spawn`; close-on-exec).
    stage_fd: RawFd,
    /// Upper bound for the close-on-exec loop when `close_range` is unavailable.
    fd_limit: libc::c_int,
    /// How to give the child its readiness fd, when asked (`SpawnRequest::ready_fd`);
    /// done after the close-on-exec step, which would otherwise undo it.
    ready_step: Option<ReadyStep>,
}

impl ChildSetup {
    fn prepare(
        request: &SpawnRequest,
        credentials: &Credentials,
        stage_fd: RawFd,
        ready_step: Option<ReadyStep>,
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
        let mut rlimits: Vec<(Resource, u64, u64)> = spec
            .rlimits
            .iter()
            .map(|limit| (resource_of(limit.resource), limit.soft, limit.hard))
            .collect();
        let sets_nofile = spec
            .rlimits
            .iter()
            .any(|limit| limit.resource == RlimitResource::Nofile);
        if let (false, Some((soft, hard))) = (sets_nofile, setup::original_nofile()) {
            rlimits.push((Resource::RLIMIT_NOFILE, soft, hard));
        }
        let working_dir = CString::new(spec.working_dir.as_os_str().as_bytes()).map_err(|_| {
            format!(
                "working directory {} contains a NUL byte",
                spec.working_dir.display()
            )
        })?;
        let is_root = nix::unistd::geteuid().is_root();
        let fd_limit = nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft.min(1 << 20) as libc::c_int)
            .unwrap_or(1 << 16);
        Ok(ChildSetup {
            stdio: request.stdio,
            take_terminal: request.stdio == StdioMode::Foreground
                && std::io::IsTerminal::is_terminal(&std::io::stdin()),
            default_action,
            ignore_action,
            empty_mask,
            max_signal: max_signal(),
            umask: spec.umask.map(|mask| mask as libc::mode_t),
            rlimits,
            groups: credentials.groups.clone().filter(|_| is_root),
            gid: credentials.gid,
            uid: credentials.uid,
            parent_pid: nix::unistd::getpid().as_raw(),
            working_dir,
            stage_fd,
            fd_limit,
            ready_step,
        })
    }

    /// Runs in the child after fork. Only async-signal-safe calls: raw syscalls on
    /// prepared data, no allocation, no locks. On failure it writes the stage byte and
    /// returns the errno, which std sends to the parent and turns into `spawn`'s error.
    fn run(&mut self) -> io::Result<()> {
        // SAFETY (whole function): plain system calls with valid pointers to data owned
        // by `self`, which lives until exec.
        unsafe {
            // Dispositions first: until they are reset, a signal would run minder's
            // handlers (tokio's and signal-hook's write to minder's wake-up pipes). Exec
            // resets caught signals but not ignored ones, so every signal is set to
            // SIG_DFL explicitly. SIGTTOU stays ignored until the terminal is taken.
            for signal in 1..=self.max_signal {
                if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                    continue;
                }
                self.set_disposition(signal, signal == libc::SIGTTOU);
            }

            match self.stdio {
                StdioMode::Capture | StdioMode::Null => {
                    if libc::setsid() < 0 {
                        return self.failed(Stage::ProcessGroup);
                    }
                }
                StdioMode::Foreground => {
                    if libc::setpgid(0, 0) < 0 {
                        return self.failed(Stage::ProcessGroup);
                    }
                    if self.take_terminal {
                        // Best effort, unlike tini: a terminal that cannot be handed
                        // over costs job control, not the service.
                        libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
                    }
                }
            }
            self.set_disposition(libc::SIGTTOU, false);
            // std no longer resets the mask it inherits from the forking thread.
            libc::sigprocmask(libc::SIG_SETMASK, &self.empty_mask, std::ptr::null_mut());

            if let Some(mask) = self.umask {
                libc::umask(mask);
            }
            // Limits before the privilege drop: raising a hard limit needs root.
            for &(resource, soft, hard) in &self.rlimits {
                if nix::sys::resource::setrlimit(resource, soft, hard).is_err() {
                    return self.failed(Stage::Rlimit);
                }
            }
            // Groups, then gid, then uid: each later step removes the right to do the
            // earlier ones.
            if let Some(groups) = &self.groups
                && libc::setgroups(groups.len(), groups.as_ptr()) < 0
            {
                return self.failed(Stage::Groups);
            }
            if let Some(gid) = self.gid
                && libc::setgid(gid) < 0
            {
                return self.failed(Stage::Gid);
            }
            if let Some(uid) = self.uid
                && libc::setuid(uid) < 0
            {
                return self.failed(Stage::Uid);
            }
            // After the credential change, which clears the parent-death signal. It
            // fires when the forking *thread* ends: the runtime forks from its main
            // thread, which lives as long as minder.
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) < 0
            {
                return self.failed(Stage::ParentDeathSignal);
            }
            // minder may have died before the prctl: then no signal will come.
            if libc::getppid() != self.parent_pid {
                self.write_stage(Stage::ParentGone);
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            // After the privilege drop, so a directory the service's user cannot enter
            // fails here with a clear message rather than later in the service.
            if libc::chdir(self.working_dir.as_ptr()) < 0 {
                return self.failed(Stage::Chdir);
            }
            // Close-on-exec, not close: std's own exec-error pipe (and our stage pipe)
            // must survive until exec.
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
            let ready_result = match self.ready_step {
                None => 0,
                Some(ReadyStep::InPlace(fd)) => libc::fcntl(fd, libc::F_SETFD, 0),
                Some(ReadyStep::Duplicate { from, to }) => libc::dup2(from, to),
            };
            if ready_result < 0 {
                return self.failed(Stage::ReadyFd);
            }
            self.write_stage(Stage::Exec);
        }
        Ok(())
    }

    /// Sets `signal` to SIG_IGN or SIG_DFL. Through the raw system call where the
    /// kernel's `struct sigaction` layout is known, because glibc's wrapper refuses the
    /// signals it reserves (32, 33), and those can arrive ignored from minder's own
    /// parent (seen under cargo-nextest) and would otherwise leak into every service.
    ///
    /// # Safety
    /// Async-signal-safe; only call between fork and exec (or with no handler code).
    unsafe fn set_disposition(&self, signal: libc::c_int, ignore: bool) {
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

    /// Records the failed stage and returns the current errno.
    fn failed(&self, stage: Stage) -> io::Result<()> {
        let error = io::Error::last_os_error();
        self.write_stage(stage);
        Err(error)
    }

    fn write_stage(&self, stage: Stage) {
        let byte = stage as u8;
        // SAFETY: a one-byte write from a stack variable to an fd we own.
        unsafe {
            libc::write(self.stage_fd, (&byte as *const u8).cast(), 1);
        }
    }
}

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

fn resource_of(resource: RlimitResource) -> Resource {
    match resource {
        RlimitResource::Nofile => Resource::RLIMIT_NOFILE,
        RlimitResource::Nproc => Resource::RLIMIT_NPROC,
        RlimitResource::Core => Resource::RLIMIT_CORE,
        RlimitResource::Memlock => Resource::RLIMIT_MEMLOCK,
        RlimitResource::Stack => Resource::RLIMIT_STACK,
        RlimitResource::As => Resource::RLIMIT_AS,
        RlimitResource::Fsize => Resource::RLIMIT_FSIZE,
        RlimitResource::Cpu => Resource::RLIMIT_CPU,
        RlimitResource::Data => Resource::RLIMIT_DATA,
        RlimitResource::Rss => Resource::RLIMIT_RSS,
    }
}
