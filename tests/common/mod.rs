//! The fixture of the black-box runtime tests: the real `minder` binary in a temporary
//! directory, with everything it started killed on drop.
//!
//! Every `Minder` gets a unique marker, `MINDER_TEST_MARK=<mark>`, in minder's
//! environment. Services inherit it (and so do their forks), so on drop the fixture can
//! find and SIGKILL every process the test caused, even ones minder lost track of or
//! that outlived minder: a failing test must not leak processes into the next one.
//!
//! Services in the tests are `sh -c` scripts that write their pid (`echo $$ > a.pid`)
//! into the config's directory, which is their default working directory; the tests
//! read those files to see what minder started and when. Nothing here sleeps for
//! correctness: `wait_for` polls a condition with a bound.

// `Child::wait`/`try_wait` are banned by clippy.toml to protect minder's own reaper:
// only it may wait inside minder. A test is a separate process that owns exactly one
// child (minder or `unshare`), so waiting for it here steals nothing from anyone.
#![allow(clippy::disallowed_methods)]
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use nix::sys::signal::Signal;

/// The binary under test.
pub const MINDER: &str = env!("CARGO_BIN_EXE_minder");

/// The environment variable that marks every process of one test.
pub const MARK_VAR: &str = "MINDER_TEST_MARK";

/// A generous bound for things that normally take milliseconds: the tests check
/// behaviour, not speed, and a loaded CI machine must not make them flaky.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Polls `condition` every 10 ms until it holds or `timeout` has passed; returns whether
/// it held. The condition is checked once more at the end, so a slow machine that
/// overshoots the bound still gets a last chance.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return condition();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The state letter of `/proc/PID/stat` (R, S, D, Z, T, ...), `None` if there is no
/// such process (it never existed, or it has been reaped).
pub fn proc_state(pid: i32) -> Option<char> {
    let (state, _) = stat_fields(pid)?;
    Some(state)
}

/// The parent pid of `pid`, from `/proc/PID/stat`.
pub fn parent_of(pid: i32) -> Option<i32> {
    let (_, ppid) = stat_fields(pid)?;
    Some(ppid)
}

fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// `/proc/PID/comm` without its newline.
pub fn comm_of(pid: i32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_string())
}

/// Whether `pid` is a running process: present and neither a zombie (Z) nor dead (X).
/// A killed process whose parent has not reaped it yet is not alive.
pub fn is_alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(state) if state != 'Z' && state != 'X')
}

/// Every pid in `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// Every descendant of `root` (not `root` itself), from the parent links in `/proc`.
/// Seen from the host, this includes the processes of a pid namespace started by
/// `root` (`unshare --fork`), whatever their pids inside it.
pub fn descendants(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// The descendants of `root` that are zombies: ended, and not reaped by their parent.
pub fn zombies_under(root: i32) -> Vec<i32> {
    descendants(root)
        .into_iter()
        .filter(|pid| proc_state(*pid) == Some('Z'))
        .collect()
}

/// Live processes whose environment holds `MINDER_TEST_MARK=<mark>`. Zombies have no
/// readable environment, so they never count: they hold no resources but a pid.
pub fn marked_pids(mark: &str) -> Vec<i32> {
    let needle = format!("{MARK_VAR}={mark}");
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|entry| entry == needle.as_bytes())
            })
        })
        .filter(|pid| is_alive(*pid))
        .collect()
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn send_signal(pid: i32, signal: Signal) {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(errno) => panic!("kill({pid}, {signal}): {errno}"),
    }
}

/// The ids of `/proc/PID/status` lines such as `Uid:` or `Groups:`.
pub fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/status: {error}"));
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line in /proc/{pid}/status:\n{status}"));
    line.split_whitespace()
        .map(|id| id.parse().expect("numeric id"))
        .collect()
}

/// A signal mask line of `/proc/PID/status` (`SigBlk:`, `SigIgn:`, ...) as a bit set:
/// bit N-1 stands for signal N.
pub fn signal_set(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/status: {error}"));
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line in /proc/{pid}/status"));
    u64::from_str_radix(hex.trim(), 16).expect("hexadecimal signal set")
}

/// Waits until `pid` runs `program` (its comm), i.e. until a `sh -c '...; exec
/// program'` service has passed its exec: before that, the descriptors and signal state
/// seen in /proc are the shell's, in the middle of its own work.
pub fn wait_exec(pid: i32, program: &str) {
    let execd = wait_for(PATIENCE, || comm_of(pid).as_deref() == Some(program));
    assert!(
        execd,
        "{pid} did not exec {program} (comm {:?})",
        comm_of(pid)
    );
}

/// Each open fd of `pid` with what it points to, for assertion messages.
pub fn describe_fds(pid: i32) -> String {
    open_fds(pid)
        .into_iter()
        .map(|fd| {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map_or_else(|error| error.to_string(), |path| path.display().to_string());
            format!("{fd} -> {target}\n")
        })
        .collect()
}

/// The open file descriptors of `pid`, sorted.
pub fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|error| panic!("list /proc/{pid}/fd: {error}"))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// A marker no other test (in this or another process) uses.
fn unique_mark() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What happens to one of minder's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// A thread reads it continuously into a buffer the test can inspect.
    Drained,
    /// A pipe nobody reads until `drain_stdout`/`drain_stderr`: once its 64 KiB are
    /// full, every write minder makes to it blocks.
    Held,
}

/// Bytes read so far from one of minder's streams, shared with the thread reading it.
#[derive(Clone, Default)]
struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
    /// Set by the reading thread at end of file: every writer has closed the pipe.
    closed: Arc<AtomicBool>,
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().expect("capture lock")).into_owned()
    }

    /// Starts a thread that appends everything `source` yields until end of file. The
    /// thread is never joined: a grandchild can keep the pipe open after minder is gone.
    fn drain(&self, mut source: impl Read + Send + 'static) {
        let buffer = Arc::clone(&self.bytes);
        let closed = Arc::clone(&self.closed);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(read) = source.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                buffer
                    .lock()
                    .expect("capture lock")
                    .extend_from_slice(&chunk[..read]);
            }
            closed.store(true, Ordering::SeqCst);
        });
    }
}

/// One minder under test: its directory, its process and its output.
///
/// Created empty by `Minder::new` (write files with `write`, set options), then started
/// by `start`, or all at once by `Minder::run(config)`. On drop: minder is SIGKILLed if
/// it still runs, reaped, and every live process carrying the test's marker is
/// SIGKILLed, retried until none is left (bounded).
pub struct Minder {
    /// The config's directory, which is also every service's working directory (and
    /// minder's own, so container mode's `main` runs there too).
    pub dir: tempfile::TempDir,
    mark: String,
    stdout_mode: Stream,
    stderr_mode: Stream,
    /// Run minder as PID 1 of a new pid namespace (`unshare --pid --fork --mount-proc`).
    pid_namespace: bool,
    /// An fd of the test to hand to minder, without close-on-exec, as fd 5.
    leaked_fd: Option<std::fs::File>,
    /// Start minder with SIGALRM ignored and SIGXCPU blocked (see `dirty_signal_state`).
    dirty_signals: bool,
    /// Variables added to minder's environment (see `env`).
    extra_env: Vec<(OsString, OsString)>,
    /// minder itself, or `unshare` in a pid namespace. `None` before `start`.
    child: Option<Child>,
    /// Set once the child has been reaped.
    status: Option<ExitStatus>,
    held_stdout: Option<ChildStdout>,
    held_stderr: Option<ChildStderr>,
    stdout: Captured,
    stderr: Captured,
}

impl Minder {
    /// An empty test directory with its marker; nothing runs yet.
    pub fn new() -> Minder {
        let dir = tempfile::Builder::new()
            .prefix("minder-test-")
            .tempdir()
            .expect("create a temporary directory");
        Minder {
            dir,
            mark: unique_mark(),
            stdout_mode: Stream::Drained,
            stderr_mode: Stream::Drained,
            pid_namespace: false,
            leaked_fd: None,
            dirty_signals: false,
            extra_env: Vec::new(),
            child: None,
            status: None,
            held_stdout: None,
            held_stderr: None,
            stdout: Captured::default(),
            stderr: Captured::default(),
        }
    }

    /// `minder run cfg.toml` with `config` as the file.
    pub fn run(config: &str) -> Minder {
        let mut minder = Minder::new();
        minder.write("cfg.toml", config);
        minder.start_run(&[]);
        minder
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path(name), contents)
            .unwrap_or_else(|error| panic!("write {name}: {error}"));
    }

    pub fn mark(&self) -> &str {
        &self.mark
    }

    pub fn stdout(&mut self, mode: Stream) -> &mut Minder {
        self.stdout_mode = mode;
        self
    }

    pub fn stderr(&mut self, mode: Stream) -> &mut Minder {
        self.stderr_mode = mode;
        self
    }

    pub fn in_pid_namespace(&mut self) -> &mut Minder {
        self.pid_namespace = true;
        self
    }

    /// Start minder with `file` open as fd 5 and without close-on-exec, as a careless
    /// parent (a shell, a CI runner) would leave it.
    pub fn leak_fd_5(&mut self, file: std::fs::File) -> &mut Minder {
        self.leaked_fd = Some(file);
        self
    }

    /// Start minder with SIGALRM ignored and SIGXCPU blocked, as a careless parent
    /// could: both survive exec, and minder must not pass them on to its services.
    /// (minder handles neither signal itself, so it keeps them as given.)
    pub fn dirty_signal_state(&mut self) -> &mut Minder {
        self.dirty_signals = true;
        self
    }

    /// Start minder with `key=value` in its environment (e.g. the `NOTIFY_SOCKET` a
    /// service manager would give it).
    pub fn env(&mut self, key: &str, value: impl Into<OsString>) -> &mut Minder {
        self.extra_env.push((key.into(), value.into()));
        self
    }

    /// `minder run DIR/cfg.toml [-- main...]`.
    pub fn start_run(&mut self, main: &[&str]) {
        let mut args: Vec<OsString> = vec!["run".into(), self.path("cfg.toml").into()];
        if !main.is_empty() {
            args.push("--".into());
            args.extend(main.iter().map(OsString::from));
        }
        self.start(args);
    }

    /// Container mode: `minder -- command...`.
    pub fn start_container(&mut self, command: &[&str]) {
        let mut args: Vec<OsString> = vec!["--".into()];
        args.extend(command.iter().map(OsString::from));
        self.start(args);
    }

    /// Starts minder with `args`, in the test directory, stdin /dev/null.
    pub fn start(&mut self, args: Vec<OsString>) {
        if self.pid_namespace {
            let mut unshare_args: Vec<OsString> = ["--pid", "--fork", "--mount-proc", MINDER]
                .iter()
                .map(OsString::from)
                .collect();
            unshare_args.extend(args);
            self.start_program("unshare", unshare_args);
        } else {
            self.start_program(MINDER, args);
        }
    }

    /// Starts `program args` in minder's place, with the same directory, marker and
    /// output handling: for negative controls that show what happens without minder.
    pub fn start_program(&mut self, program: &str, args: Vec<OsString>) {
        assert!(self.child.is_none(), "already started");
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env(MARK_VAR, &self.mark)
            // Every minder of a test has its own control socket (an `env` call or the
            // config's `control_socket` can still point elsewhere).
            .env("MINDER_SOCKET", self.socket())
            .envs(self.extra_env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(file) = &self.leaked_fd {
            use std::os::fd::AsRawFd;
            let fd = file.as_raw_fd();
            // SAFETY: dup2 is async-signal-safe and the closure touches nothing else.
            // dup2 to a new number clears close-on-exec, so fd 5 survives into minder.
            unsafe {
                command.pre_exec(move || {
                    if libc::dup2(fd, 5) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if self.dirty_signals {
            // SAFETY: signal and sigprocmask are async-signal-safe; the set is local.
            unsafe {
                command.pre_exec(|| {
                    libc::signal(libc::SIGALRM, libc::SIG_IGN);
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGXCPU);
                    if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {command:?}: {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        match self.stdout_mode {
            Stream::Drained => self.stdout.drain(stdout),
            Stream::Held => self.held_stdout = Some(stdout),
        }
        match self.stderr_mode {
            Stream::Drained => self.stderr.drain(stderr),
            Stream::Held => self.held_stderr = Some(stderr),
        }
        self.child = Some(child);
    }

    /// Starts reading a `Held` stdout from now on.
    pub fn drain_stdout(&mut self) {
        if let Some(stdout) = self.held_stdout.take() {
            self.stdout.drain(stdout);
        }
    }

    pub fn drain_stderr(&mut self) {
        if let Some(stderr) = self.held_stderr.take() {
            self.stderr.drain(stderr);
        }
    }

    /// Bytes waiting in a `Held` stdout pipe (FIONREAD): at the pipe's capacity
    /// (64 KiB by default), minder's next write to its stdout blocks.
    pub fn held_stdout_bytes(&self) -> usize {
        use std::os::fd::AsRawFd;
        let stdout = self.held_stdout.as_ref().expect("stdout is not held");
        let mut bytes: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through a valid pointer.
        let result = unsafe { libc::ioctl(stdout.as_raw_fd(), libc::FIONREAD, &mut bytes) };
        assert_eq!(result, 0, "FIONREAD: {}", std::io::Error::last_os_error());
        usize::try_from(bytes).unwrap_or(0)
    }

    /// What minder has written to its stdout so far (as far as it has been read).
    pub fn stdout_text(&self) -> String {
        self.stdout.text()
    }

    /// Whether minder's (drained) stdout has reached end of file: nothing more can come.
    pub fn stdout_closed(&self) -> bool {
        self.stdout.closed.load(Ordering::SeqCst)
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// The pid of the process started: minder, or `unshare` in a pid namespace.
    pub fn child_pid(&self) -> i32 {
        self.child.as_ref().expect("minder not started").id() as i32
    }

    /// minder's pid as seen from the test. In a pid namespace it is the child of
    /// `unshare` once that child has exec'd minder (waited for, bounded).
    pub fn pid(&self) -> i32 {
        let child = self.child_pid();
        if !self.pid_namespace {
            return child;
        }
        let mut found = None;
        let exec_done = wait_for(PATIENCE, || {
            found = descendants(child).into_iter().find(|pid| {
                parent_of(*pid) == Some(child) && comm_of(*pid).as_deref() == Some("minder")
            });
            found.is_some()
        });
        assert!(
            exec_done,
            "unshare did not start minder:\n{}",
            self.stderr_text()
        );
        found.expect("found")
    }

    /// Sends `signal` to minder (not to `unshare`).
    pub fn signal(&self, signal: Signal) {
        send_signal(self.pid(), signal);
    }

    /// minder's exit status once it has ended, waiting at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            let child = self.child.as_mut().expect("minder not started");
            let deadline = Instant::now() + timeout;
            loop {
                if let Some(status) = child.try_wait().expect("try_wait minder") {
                    self.status = Some(status);
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.status
    }

    /// minder's exit code, within `timeout`; panics (with minder's stderr) if it is
    /// still running or was killed by a signal.
    pub fn expect_exit(&mut self, timeout: Duration) -> i32 {
        let status = self.wait_exit(timeout);
        let Some(status) = status else {
            panic!(
                "minder still running after {timeout:?}\nstderr:\n{}",
                self.stderr_text()
            );
        };
        status.code().unwrap_or_else(|| {
            panic!(
                "minder died by signal {:?}\nstderr:\n{}",
                status.signal(),
                self.stderr_text()
            )
        })
    }

    /// The pid in `DIR/name.pid`, if the file exists and holds a number. A file being
    /// rewritten may be empty for an instant; that reads as `None` too.
    pub fn pid_file(&self, name: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.path(&format!("{name}.pid"))).ok()?;
        text.trim().parse().ok()
    }

    /// Waits for `DIR/name.pid` to name a live process other than `old`; panics after
    /// `PATIENCE`.
    pub fn wait_pid(&self, name: &str, old: Option<i32>) -> i32 {
        let mut pid = None;
        let appeared = wait_for(PATIENCE, || {
            pid = self
                .pid_file(name)
                .filter(|pid| Some(*pid) != old && is_alive(*pid));
            pid.is_some()
        });
        assert!(
            appeared,
            "{name}.pid: no live pid other than {old:?} (now {:?})\nstderr:\n{}",
            self.pid_file(name),
            self.stderr_text()
        );
        pid.expect("found")
    }

    /// The control socket this minder uses unless its config says otherwise.
    pub fn socket(&self) -> PathBuf {
        self.path("control.sock")
    }

    /// A client connected to `socket()`, waiting (bounded) for minder to listen.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket())
    }

    /// One request on a connection of its own: the response line, parsed.
    pub fn control(&self, cmd: &str, args: serde_json::Value) -> serde_json::Value {
        self.client().request(cmd, args)
    }

    /// The lines of `DIR/name`, empty if it does not exist.
    pub fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(name))
            .map(|text| text.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Live processes of this test other than minder itself (and `unshare`).
    pub fn leftovers(&self) -> Vec<i32> {
        let mut exclude = Vec::new();
        if let Some(child) = &self.child
            && self.status.is_none()
        {
            exclude.push(child.id() as i32);
            if self.pid_namespace {
                exclude.push(self.pid());
            }
        }
        marked_pids(&self.mark)
            .into_iter()
            .filter(|pid| !exclude.contains(pid))
            .collect()
    }

    /// `leftovers`, each with its command line, for assertion messages.
    pub fn describe(&self, pids: &[i32]) -> String {
        pids.iter()
            .map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                format!("{pid} ({:?}) {cmdline}\n", proc_state(*pid))
            })
            .collect()
    }

    /// Asserts that nothing of this test is left alive (minder must have exited).
    pub fn assert_nothing_left(&self) {
        let mut left = Vec::new();
        // A process killed an instant ago may still be on its way out.
        let clean = wait_for(Duration::from_secs(2), || {
            left = self.leftovers();
            left.is_empty()
        });
        assert!(
            clean,
            "processes left behind:\n{}stderr of minder:\n{}",
            self.describe(&left),
            self.stderr_text()
        );
    }
}

impl Drop for Minder {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child
            && self.status.is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Kill whatever carries the marker until nothing does (a process can fork
        // while being killed); bounded so that a drop never hangs a test.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = marked_pids(&self.mark);
            if left.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in left {
                send_signal(pid, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A `sh -c` script that writes its pid to `NAME.pid` and then becomes `sleep`, so the
/// pid in the file is the service's main process for its whole life.
pub fn pid_then_sleep(name: &str) -> String {
    format!("echo $$ > {name}.pid; exec sleep 1000")
}

/// A TOML basic string holding `text`: the tests' scripts contain quotes of both kinds.
fn toml_escape(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `[service.NAME]` running `sh -c SCRIPT`, plus extra `key = value` lines.
pub fn sh_service(name: &str, script: &str, extra: &str) -> String {
    format!(
        "[service.{name}]\ncommand = [\"sh\", \"-c\", {}]\n{extra}\n",
        toml_escape(script)
    )
}

/// Lets `path` be entered and written by anyone, for services that run as `nobody`.
pub fn make_world_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .unwrap_or_else(|error| panic!("chmod {}: {error}", path.display()));
}

/// The standard output of `program args`, which must succeed.
pub fn command_stdout(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("run {program}: {error}"));
    assert!(output.status.success(), "{program} {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("utf-8 output")
}

// ----- helpers of the readiness and health tests ---------------------------------------

/// The absolute path of `tests/fixtures/NAME` (scripts the services of a test run).
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A TCP port on 127.0.0.1 that nothing listened on an instant ago: bound to port 0 to
/// let the kernel choose, then closed, so a service (or nobody) can take it. The
/// kernel hands out ephemeral ports in turn, so two tests do not get the same one.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The value of the variable `name` in the environment `pid` was started with
/// (`/proc/PID/environ`), if it has one.
pub fn env_var_of(pid: i32, name: &str) -> Option<String> {
    // Right after a spawn (or while a shell execs its program) /proc/PID/environ can
    // read empty, or from a memory map not set up yet, for an instant: wait, bounded,
    // until two reads in a row show the same non-empty environment.
    let mut environ = Vec::new();
    wait_for(Duration::from_secs(2), || {
        let previous = std::mem::take(&mut environ);
        environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        (!environ.is_empty() && environ == previous) || !is_alive(pid)
    });
    let prefix = format!("{name}=");
    environ.split(|byte| *byte == 0).find_map(|entry| {
        let value = entry.strip_prefix(prefix.as_bytes())?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

impl Minder {
    /// The lines minder has logged on stderr so far that contain every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.stderr_text()
            .lines()
            .filter(|line| needles.iter().all(|needle| line.contains(needle)))
            .map(str::to_string)
            .collect()
    }

    /// Waits until minder has logged at least `count` lines containing every one of
    /// `needles`; panics with minder's stderr after `timeout`.
    pub fn wait_log(&self, needles: &[&str], count: usize, timeout: Duration) -> Vec<String> {
        let mut found = Vec::new();
        let logged = wait_for(timeout, || {
            found = self.log_lines(needles);
            found.len() >= count
        });
        assert!(
            logged,
            "minder did not log {count} line(s) with {needles:?} within {timeout:?} \
             (found {})\nstderr:\n{}",
            found.len(),
            self.stderr_text()
        );
        found
    }

    /// Whether minder is still running (not exited, as far as the test can tell now).
    pub fn is_running(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_none()
    }

    /// The number in `DIR/name` (a `date +%s%N` stamp, say), waiting for the file to
    /// exist and hold one; panics after `PATIENCE`.
    pub fn wait_number(&self, name: &str) -> u128 {
        let mut number = None;
        let written = wait_for(PATIENCE, || {
            number = std::fs::read_to_string(self.path(name))
                .ok()
                .and_then(|text| text.trim().parse().ok());
            number.is_some()
        });
        assert!(
            written,
            "{name}: no number written\nstderr:\n{}",
            self.stderr_text()
        );
        number.expect("found")
    }
}

/// A control-socket client speaking the protocol of docs/protocol.md: one JSON object
/// per line each way. Reads give up after `CLIENT_PATIENCE`, so a daemon that never
/// answers fails the test instead of hanging it.
pub struct Client {
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
    next_id: u64,
}

/// How long a client waits for one response line.
pub const CLIENT_PATIENCE: Duration = Duration::from_secs(10);

impl Client {
    /// Connects to `path`, retrying (bounded) while minder is not listening yet.
    pub fn connect(path: &Path) -> Client {
        let mut stream = None;
        let connected = wait_for(PATIENCE, || {
            stream = std::os::unix::net::UnixStream::connect(path).ok();
            stream.is_some()
        });
        assert!(connected, "nobody listens on {}", path.display());
        let stream = stream.expect("connected");
        stream
            .set_read_timeout(Some(CLIENT_PATIENCE))
            .expect("set a read timeout");
        stream
            .set_write_timeout(Some(CLIENT_PATIENCE))
            .expect("set a write timeout");
        Client {
            reader: std::io::BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
            next_id: 1,
        }
    }

    /// Writes raw bytes (a request line must end in `\n`).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.writer.write_all(bytes)
    }

    /// Sends `{"v":1,"id":N,"cmd":cmd,"args":args}`; returns N.
    pub fn send(&mut self, cmd: &str, args: serde_json::Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let line = serde_json::json!({"v": 1, "id": id, "cmd": cmd, "args": args});
        self.send_raw(format!("{line}\n").as_bytes())
            .unwrap_or_else(|error| panic!("send {cmd}: {error}"));
        id
    }

    /// The next response line, parsed; `None` at end of file. Panics on a timeout or
    /// a line that is not JSON.
    pub fn read(&mut self) -> Option<serde_json::Value> {
        use std::io::BufRead;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(
                serde_json::from_str(&line)
                    .unwrap_or_else(|error| panic!("response is not JSON ({error}): {line}")),
            ),
            Err(error) => panic!("reading a response: {error}"),
        }
    }

    /// Reads until end of file, discarding lines; false if it did not come within
    /// `timeout` (the connection stayed open).
    pub fn reaches_end_of_file(&mut self, timeout: Duration) -> bool {
        use std::io::Read;
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0; 64 * 1024];
        while Instant::now() < deadline {
            match self.reader.read(&mut buffer) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // A reset is an end too: the server closed with data unread.
                Err(_) => return true,
            }
        }
        false
    }

    /// One request and its one response.
    pub fn request(&mut self, cmd: &str, args: serde_json::Value) -> serde_json::Value {
        let id = self.send(cmd, args);
        let response = self
            .read()
            .unwrap_or_else(|| panic!("connection closed before the answer to {cmd}"));
        assert_eq!(
            response["id"], id,
            "response to another request: {response}"
        );
        response
    }

    /// A streaming request without follow: its items and the end marker's reason.
    pub fn stream(
        &mut self,
        cmd: &str,
        args: serde_json::Value,
    ) -> (Vec<serde_json::Value>, String) {
        let id = self.send(cmd, args);
        let mut items = Vec::new();
        loop {
            let response = self
                .read()
                .unwrap_or_else(|| panic!("connection closed inside the {cmd} stream"));
            assert_eq!(response["id"], id, "{response}");
            if response["end"] == true {
                let reason = response["reason"].as_str().unwrap_or_default().to_string();
                return (items, reason);
            }
            assert!(response.get("item").is_some(), "not an item: {response}");
            items.push(response["item"].clone());
        }
    }
}
