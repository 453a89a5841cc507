//! The typed, validated service tree: what a config file lowers to, and what the
//! runtime starts processes from.
//!
//! Owns no behaviour. Nothing here parses, reads files or touches the OS: a `Spec` is
//! plain data, built by `config::load` (or by hand in tests and in container mode), and
//! every value in it has already passed validation, so consumers never re-check it.
//! The core supervises a reduced copy (`minder_core::spec`), made by `lower`; the value
//! types both share (strategy, restart type, backoff...) are the core's own.

mod diff;
mod lower;
#[cfg(test)]
mod tests;

pub use self::diff::{
    Applies, DaemonChange, GroupAction, GroupChange, Plan, ServiceAction, ServiceChange, diff,
};
pub use self::lower::{ProcessTable, lower};
pub use minder_core::spec::{AutoShutdown, BackoffSpec, RestartType, Strategy};

use std::path::PathBuf;
use std::time::Duration;

/// A whole validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub daemon: DaemonSpec,
    /// The root group. Its `name` is `"root"`.
    pub root: GroupSpec,
}

/// `[daemon]`: settings of minder itself.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSpec {
    /// Bound on the whole orderly shutdown; past it every group left is killed.
    pub shutdown_timeout: Duration,
    /// On TERM/INT/QUIT, how long services keep running (with `/readyz` failing) before
    /// the orderly shutdown starts. Never more than `shutdown_timeout`.
    pub drain_delay: Duration,
    /// minder's own log lines: text or JSON (and, with `log_format = "json"`, the
    /// services' lines too).
    pub log_format: LogFormat,
    /// Where the control socket is, and whether the file asked for it.
    pub control: ControlSocket,
    /// File mode of the control socket (`control_mode`, default 0600).
    pub control_mode: u32,
    /// `control_group`: members of this group may read (status, logs, events).
    pub control_group: Option<String>,
    /// `metrics_listen`: the HTTP endpoint for /metrics, /healthz, /readyz.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `log_dir`: one file per service there, instead of minder's stdout/stderr.
    pub log_dir: Option<PathBuf>,
    /// Rotate a service's log file at this size...
    pub log_max_size: u64,
    /// ... keeping this many old files.
    pub log_keep: u32,
    /// Prefix each captured line with an RFC 3339 time.
    pub log_timestamps: bool,
    /// What happens to a service writing faster than its sink.
    pub log_overflow: LogOverflow,
    /// `state_file`: remembers services stopped by hand across restarts of minder.
    pub state_file: Option<PathBuf>,
}

impl Default for DaemonSpec {
    fn default() -> Self {
        DaemonSpec {
            shutdown_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            log_format: LogFormat::Text,
            control: ControlSocket::Default,
            control_mode: 0o600,
            control_group: None,
            metrics_listen: None,
            log_dir: None,
            log_max_size: 10 * 1024 * 1024,
            log_keep: 5,
            log_timestamps: false,
            log_overflow: LogOverflow::Block,
            state_file: None,
        }
    }
}

/// `control_socket`: where minder listens for `minderctl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlSocket {
    /// The key is absent: `$MINDER_SOCKET` if set, else the default path (see
    /// `control::default_socket_path`). If it cannot be created, minder runs without.
    Default,
    /// `control_socket = "PATH"`: failing to create it is a startup error.
    Path(PathBuf),
    /// `control_socket = ""`: no control socket.
    Disabled,
}

/// `log_overflow`: a service writing faster than its sink is slowed down (`Block`,
/// back-pressure through its pipe) or has its lines dropped and counted (`Drop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOverflow {
    Block,
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A group (or the root): an ordered list of children under one strategy and budget.
/// A group (or the root) of the full tree: the core's group type over full services.
pub type GroupSpec = minder_core::spec::GroupSpec<ServiceSpec>;

/// A child of a group in the full tree.
pub type NodeSpec = minder_core::spec::NodeSpec<ServiceSpec>;

/// One service instance. A service with `instances = N` lowers to N of these, named
/// `NAME.0` .. `NAME.N-1`, each with `instance = Some(i)` and `base_name = NAME`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSpec {
    /// The instance's full name (`web` or `web.3`).
    pub name: String,
    /// The name as written in the file (`web`); equal to `name` without instances.
    pub base_name: String,
    /// `Some(i)` when the service has `instances` set; exported as `MINDER_INSTANCE`.
    pub instance: Option<u32>,
    /// argv; never empty.
    pub command: Vec<String>,
    pub restart: RestartType,
    /// Absolute; defaults to the config file's directory.
    pub working_dir: PathBuf,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Absolute path of an env file, read when the service is spawned.
    pub env_file: Option<PathBuf>,
    /// `env` in file order; applied after `env_file`.
    pub env: Vec<(String, String)>,
    pub umask: Option<u32>,
    pub rlimits: Vec<Rlimit>,
    /// Signal number (e.g. `libc::SIGTERM`), sent to the whole process group on stop.
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// Exit codes that count as a normal end.
    pub success_codes: Vec<i32>,
    /// Signal numbers that count as a normal end when minder did not send them.
    /// Default SIGHUP, SIGINT, SIGTERM, SIGPIPE; empty: every signal is a failure.
    pub success_signals: Vec<i32>,
    pub significant: bool,
    pub oneshot: bool,
    pub backoff: BackoffSpec,
    /// `[service.X.ready]`: without it the service is ready once exec'd (a oneshot once
    /// it has exited with a success code).
    pub ready: Option<ReadySpec>,
    /// `[service.X.health]`: liveness checks and the memory guard.
    pub health: Option<HealthSpec>,
    /// `watchdog`: with `ready.notify`, `WATCHDOG=1` must arrive at least this often
    /// once the service is ready, or it is restarted with reason `watchdog`.
    pub watchdog: Option<Duration>,
}

/// A check minder runs itself, for readiness or liveness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Connecting to `host:port` succeeds. `address` is kept as written
    /// (`127.0.0.1:5432`, `localhost:80`, `[::1]:80`) and resolved at probe time.
    Tcp { address: String },
    /// `GET url` answers 2xx or 3xx. Only `http://` URLs.
    Http { url: String },
    /// The command exits 0. Runs with the service's user, group, environment and
    /// working directory, in its own process group, killed at the timeout.
    Exec { command: Vec<String> },
}

/// How a service tells that it is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadyCheck {
    Probe(Probe),
    /// `notify = true`: `READY=1` on the service's notify socket (sd_notify).
    Notify,
    /// `fd = N`: the service writes a newline to its file descriptor N (s6 style).
    Fd(i32),
}

/// `[service.X.ready]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadySpec {
    pub check: ReadyCheck,
    /// Between two probes (probe checks only). Default 1 s.
    pub interval: Duration,
    /// Bound on one probe. Default 1 s.
    pub timeout: Duration,
    /// Not ready this long after exec: a failed start (reason `ready_deadline`).
    /// Default 60 s.
    pub deadline: Duration,
}

/// `[service.X.health]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSpec {
    /// `None` when only `max_memory` is set.
    pub probe: Option<Probe>,
    /// Between two checks (probe and memory). Default 10 s.
    pub interval: Duration,
    /// Bound on one probe. Default 3 s.
    pub timeout: Duration,
    /// Failures within this time after exec do not count. Default 0 s.
    pub start_period: Duration,
    /// Consecutive failures that restart the service. Default 3.
    pub failures: u32,
    /// Resident memory of the service's whole process group above which it is
    /// restarted (reason `memory`).
    pub max_memory: Option<u64>,
}

impl ReadySpec {
    pub fn new(check: ReadyCheck) -> Self {
        ReadySpec {
            check,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(60),
        }
    }
}

impl HealthSpec {
    pub fn new(probe: Option<Probe>) -> Self {
        HealthSpec {
            probe,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            start_period: Duration::ZERO,
            failures: 3,
            max_memory: None,
        }
    }
}

/// One resource limit, `soft == hard` unless the file gave both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: RlimitResource,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RlimitResource {
    Nofile,
    Nproc,
    Core,
    Memlock,
    Stack,
    As,
    Fsize,
    Cpu,
    Data,
    Rss,
}

impl minder_core::spec::ServiceName for ServiceSpec {
    fn name(&self) -> &str {
        &self.name
    }
}

impl ServiceSpec {
    /// A service with the documented defaults, run from `working_dir`.
    pub fn new(name: &str, command: Vec<String>, working_dir: PathBuf) -> Self {
        ServiceSpec {
            name: name.to_string(),
            base_name: name.to_string(),
            instance: None,
            command,
            restart: RestartType::Permanent,
            working_dir,
            user: None,
            group: None,
            env_file: None,
            env: Vec::new(),
            umask: None,
            rlimits: Vec::new(),
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            success_codes: vec![0],
            success_signals: minder_core::spec::DEFAULT_SUCCESS_SIGNALS.to_vec(),
            significant: false,
            oneshot: false,
            backoff: BackoffSpec::default(),
            ready: None,
            health: None,
            watchdog: None,
        }
    }
}
