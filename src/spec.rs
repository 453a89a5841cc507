//! The typed, validated service tree: what a config file lowers to and what the
//! supervision core and the runtime consume.
//!
//! Owns no behaviour. Nothing here parses, reads files or touches the OS: a `Spec` is
//! plain data, built by `config::load` (or by hand in tests and in container mode), and
//! every value in it has already passed validation, so consumers never re-check it.

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
    pub log_format: LogFormat,
}

impl Default for DaemonSpec {
    fn default() -> Self {
        DaemonSpec {
            shutdown_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A group (or the root): an ordered list of children under one strategy and budget.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    pub strategy: Strategy,
    /// At most `intensity` restart decisions in any window of `period`; one more and
    /// the group fails.
    pub intensity: u32,
    pub period: Duration,
    /// Only meaningful on the root; `Never` elsewhere.
    pub auto_shutdown: AutoShutdown,
    /// In start order. Instances of a service appear as consecutive `Service` nodes.
    pub children: Vec<NodeSpec>,
}

// Services outnumber groups, so boxing the larger variant would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum NodeSpec {
    Service(ServiceSpec),
    Group(GroupSpec),
}

impl NodeSpec {
    pub fn name(&self) -> &str {
        match self {
            NodeSpec::Service(service) => &service.name,
            NodeSpec::Group(group) => &group.name,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    OneForOne,
    OneForAll,
    RestForOne,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoShutdown {
    Never,
    AnySignificant,
    AllSignificant,
}

/// When a service that ended on its own is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartType {
    /// Always (alias `always`).
    Permanent,
    /// Only after an abnormal end (alias `on-failure`).
    Transient,
    /// Never (alias `never`).
    Temporary,
}

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
    pub significant: bool,
    pub oneshot: bool,
    pub backoff: BackoffSpec,
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

/// Restart delay: `min(max, initial * multiplier^(n-1))`, then ±`jitter` fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffSpec {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// In [0, 1].
    pub jitter: f64,
    /// A run at least this long resets the consecutive-failure count.
    pub reset_after: Duration,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        BackoffSpec {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(30),
        }
    }
}

impl GroupSpec {
    /// A group with the documented defaults and no children.
    pub fn new(name: &str) -> Self {
        GroupSpec {
            name: name.to_string(),
            strategy: Strategy::OneForOne,
            intensity: 5,
            period: Duration::from_secs(30),
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
        }
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
            significant: false,
            oneshot: false,
            backoff: BackoffSpec::default(),
        }
    }
}
