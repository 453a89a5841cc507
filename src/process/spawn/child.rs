//! The child's side of `spawn`: `ChildSetup`, everything the new process does between
//! clone and exec, and the raw-syscall helpers it uses. Its inputs are all prepared in
//! the parent (`super`); code here runs in the child only through `ChildSetup::run`,
//! where it must stay async-signal-safe: no allocation, no lock, no std I/O, no panic
//! path (see the module documentation of `super`).

use super::*;

/// Everything the child does between clone and exec, with every input prepared in the
/// parent. Created by `spawn`, which keeps it on its own stack frame for the duration
/// of the clone; the child reads it through the pointer `clone` hands over (the
/// parent's thread is suspended meanwhile and nothing else knows of it) and writes
/// only `failure` and `exec.shell_argv`.
pub(super) struct ChildSetup {
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
    pub(super) failure: Cell<Option<ChildFailure>>,
}

impl ChildSetup {
    pub(super) fn prepare(
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
    pub(super) fn start(&mut self, stack: &ChildStack) -> io::Result<libc::pid_t> {
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
