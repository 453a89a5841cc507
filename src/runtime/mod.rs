//! The event loop: owns the supervision core and performs its effects.
//!
//! One tokio current-thread runtime on minder's main thread runs one loop. Everything
//! that can happen (SIGCHLD, a signal to minder, a deadline of the core, a probe
//! result or notify message on the event channel, an exec probe's timeout) wakes the
//! same `select!`, becomes an `Event` for the `Supervisor`, and the effects that come
//! back are carried out here, in order, through `process` (spawn, signal, kill),
//! `health` (probes), `notify` (sockets) and `logs` (output capture). The loop decides
//! nothing itself; it only translates.
//!
//! Because spawning and reaping both happen on this one thread, a pid is registered in
//! `Loop::children` before the `reap()` that could return it: no exit is ever missed or
//! misattributed. Besides those wake-ups there is a 60 s reaper sweep and, only under
//! systemd's `WatchdogSec=`, a watchdog ping; the loop never polls.

mod container;

use crate::health::{ExecProbes, Prober};
use crate::logs::{Attachment, OutputHub, OwnLogWriter};
use crate::notify::{self, NotifyServer};
use crate::process::{self, SpawnRequest, StdioMode};
use crate::spec::{LogFormat, Spec};
use crate::spec::{Probe, ProcessTable, ReadyCheck, ServiceSpec};
use crate::supervisor::ServiceId;
use crate::supervisor::{
    Check, ChildRef, EXIT_ROOT_FAILED, Effect, EndKind, Event, ExitStatus, ProbeOutcome, Report,
    ShutdownCause, Supervisor, Time,
};
use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

pub use self::container::{add_main_service, container_spec};

/// How the tree was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// `minder run CONFIG`: services captured, each in its own session.
    Config,
    /// `minder -- cmd`: one service on minder's own stdio and terminal.
    Container,
}

/// Exit code for an internal error of minder itself (design.md §7).
const EXIT_INTERNAL: i32 = crate::exit::INTERNAL;

/// The safety sweep of the reaper: SIGCHLD is the real trigger, this only catches a
/// child that ends without one (a clone with another exit signal). It is the loop's only
/// periodic wake-up.
const REAP_SWEEP: Duration = Duration::from_secs(60);

/// How long minder waits at exit for the last output of its services to be read and
/// written.
const OUTPUT_DRAIN_BOUND: Duration = Duration::from_secs(2);

/// How long the final cleanup waits for killed processes to be reaped before exiting.
const FINAL_REAP_BOUND: Duration = Duration::from_secs(5);

/// Supervise `spec` until it ends; returns minder's exit code.
pub fn run(spec: Spec, mode: RunMode) -> i32 {
    // In config mode minder's own lines share the services' writer thread: one order
    // on stderr, and lines dropped (and counted) rather than ever blocking the loop.
    let outputs = match mode {
        RunMode::Config => match OutputHub::new() {
            Ok(outputs) => Some(outputs),
            Err(error) => {
                eprintln!("minder: start the output writer: {error}");
                return EXIT_INTERNAL;
            }
        },
        RunMode::Container => None,
    };
    let _log_guard = init_logging(
        spec.daemon.log_format,
        mode,
        outputs.as_ref().map(OutputHub::own_log_writer),
    );
    let setup = process::prepare_supervisor();
    for problem in &setup.warnings {
        tracing::warn!("{problem}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("start the event loop: {error}");
            return EXIT_INTERNAL;
        }
    };
    // A panic in the loop is a bug of minder's; it must still leave nothing running
    // (the loop's drop kills what is left) and exit with the internal-error code.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            match Loop::new(&spec, mode, outputs) {
                Ok(mut event_loop) => event_loop.run().await,
                Err(error) => {
                    tracing::error!("{error}");
                    EXIT_INTERNAL
                }
            }
        })
    }));
    let code = outcome.unwrap_or(EXIT_INTERNAL);
    // A DNS lookup of a probe stuck in the blocking pool must not hold minder's exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

/// Text or JSON lines on stderr, written by a background thread (the output hub's in
/// config mode, a lossy one of tracing-appender's otherwise): if stderr blocks, lines
/// are dropped rather than stalling the loop.
/// Container mode is quiet by default, like tini: only warnings and errors.
fn init_logging(
    format: LogFormat,
    mode: RunMode,
    own: Option<OwnLogWriter>,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let (writer, guard) = match own {
        Some(own) => (BoxMakeWriter::new(own), None),
        None => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(true)
                .finish(std::io::stderr());
            (BoxMakeWriter::new(writer), Some(guard))
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MINDER_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(match mode {
            RunMode::Config => "info",
            RunMode::Container => "warn",
        })
    });
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}

/// The signals minder listens to. Created once; each handler stays installed for
/// minder's life (as PID 1 a signal without a handler would be dropped by the kernel).
struct Signals {
    child: Signal,
    terminate: Signal,
    interrupt: Signal,
    quit: Signal,
    hangup: Signal,
    user1: Signal,
    user2: Signal,
    window: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            child: signal(SignalKind::child())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            hangup: signal(SignalKind::hangup())?,
            user1: signal(SignalKind::user_defined1())?,
            user2: signal(SignalKind::user_defined2())?,
            window: signal(SignalKind::window_change())?,
        })
    }
}

/// What woke the loop.
enum Wake {
    ChildExited,
    Signal(i32),
    Deadline,
    Sweep,
    ContainerKill,
    /// A probe result or a notify message.
    Event(Event),
    /// An exec probe reached its timeout.
    ProbeTimeout,
    /// Time to tell systemd the loop is alive (`WatchdogSec=`).
    SystemdWatchdog,
}

/// The runtime's state. Created by `run` inside the tokio runtime and dropped when the
/// loop ends.
struct Loop {
    /// The decision maker; only this loop calls it.
    supervisor: Supervisor,
    /// What the core does not keep: each service's process spec by its id, and the
    /// probe targets the core's `Check`s refer to. Built with `supervisor`, read-only.
    processes: ProcessTable,
    /// `Time::ZERO` of the core: the moment the loop was created.
    origin: Instant,
    /// Live main processes by pid (= their process group), registered right after
    /// spawn and removed when reaped.
    children: HashMap<i32, ChildRef>,
    /// Captured output of every service (config mode only).
    outputs: Option<OutputHub>,
    /// Per service, the reader tasks of its incarnations' pipes still being read;
    /// pruned at each spawn of that service, awaited at exit so no last line is lost.
    attachments: HashMap<ServiceId, Vec<Attachment>>,
    mode: RunMode,
    /// Events produced while performing effects, handled before the next wait.
    pending: VecDeque<Event>,
    /// Orphans re-parented to minder and reaped (for metrics later).
    orphans_reaped: u64,
    /// Set by `Effect::Exit`.
    exit_code: Option<i32>,
    /// Container mode: after forwarding TERM/INT/QUIT, when to kill the group.
    container_kill_at: Option<Instant>,
    /// Probe results, ready-fd newlines and notify messages, from tasks of this runtime.
    events: mpsc::UnboundedReceiver<Event>,
    /// Runs tcp/http probes and memory samples as tasks; answers through `events`.
    prober: Prober,
    /// Exec probes in flight: registered at spawn, answered at reap or at their timeout.
    exec_probes: ExecProbes,
    /// The sd_notify sockets; created only when some service has `ready.notify`.
    /// Dropping it removes the sockets and their directory.
    notify: Option<NotifyServer>,
    /// Per service, the task waiting for the current incarnation's ready-fd newline;
    /// aborted when that incarnation ends.
    ready_fd_watches: HashMap<ServiceId, AbortHandle>,
    /// Whether systemd (`NOTIFY_SOCKET`, if any) has been told `READY=1`.
    announced_ready: bool,
}

impl Loop {
    fn new(spec: &Spec, mode: RunMode, outputs: Option<OutputHub>) -> std::io::Result<Loop> {
        // Backoff jitter exists to spread restarts of many minders (or many services)
        // apart, so each run gets its own seed; the core itself stays deterministic.
        let seed = fastrand::u64(..);
        let (sender, events) = mpsc::unbounded_channel();
        let needs_notify = services(&spec.root).any(|service| {
            matches!(
                service.ready.as_ref().map(|r| &r.check),
                Some(ReadyCheck::Notify)
            )
        });
        let notify = if needs_notify {
            match NotifyServer::new(sender.clone()) {
                Ok(server) => Some(server),
                Err(error) => {
                    // Those services then fail to start, each with this reason logged.
                    tracing::error!("create the notify sockets' directory: {error}");
                    None
                }
            }
        } else {
            None
        };
        let (core_spec, probes) = crate::spec::lower(spec);
        let supervisor = Supervisor::new(&core_spec, seed);
        let processes = ProcessTable::new(spec, probes, &supervisor);
        Ok(Loop {
            events,
            prober: Prober::new(sender),
            exec_probes: ExecProbes::new(),
            notify,
            ready_fd_watches: HashMap::new(),
            announced_ready: false,
            supervisor,
            processes,
            origin: Instant::now(),
            children: HashMap::new(),
            attachments: HashMap::new(),
            outputs,
            mode,
            pending: VecDeque::new(),
            orphans_reaped: 0,
            exit_code: None,
            container_kill_at: None,
        })
    }

    fn now(&self) -> Time {
        Time(self.origin.elapsed())
    }

    async fn run(&mut self) -> i32 {
        let mut signals = match Signals::install() {
            Ok(signals) => signals,
            Err(error) => {
                tracing::error!("install signal handlers: {error}");
                return EXIT_INTERNAL;
            }
        };
        tracing::info!(
            services = self.supervisor.service_count(),
            pid = std::process::id(),
            "minder {} starting",
            env!("CARGO_PKG_VERSION")
        );
        let effects = self.supervisor.boot(self.now());
        self.perform(effects);
        self.settle();
        let mut sweep =
            tokio::time::interval_at(tokio::time::Instant::now() + REAP_SWEEP, REAP_SWEEP);
        // Under systemd's WatchdogSec=, ping at half the interval from this loop itself,
        // so a wedged loop gets minder killed and restarted. No ping otherwise.
        let mut systemd_watchdog = sd_notify::watchdog_enabled()
            .filter(|timeout| !timeout.is_zero())
            .map(|timeout| tokio::time::interval(timeout / 2));
        self.tell_systemd();
        while self.exit_code.is_none() {
            let deadline = self
                .supervisor
                .next_deadline()
                // A deadline past what the clock can hold is no deadline at all.
                .and_then(|at| self.origin.checked_add(at.0))
                .map(tokio::time::Instant::from_std);
            let container_kill = self.container_kill_at.map(tokio::time::Instant::from_std);
            let probe_timeout = self
                .exec_probes
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let wake = tokio::select! {
                _ = signals.child.recv() => Wake::ChildExited,
                _ = signals.terminate.recv() => Wake::Signal(libc::SIGTERM),
                _ = signals.interrupt.recv() => Wake::Signal(libc::SIGINT),
                _ = signals.quit.recv() => Wake::Signal(libc::SIGQUIT),
                _ = signals.hangup.recv() => Wake::Signal(libc::SIGHUP),
                _ = signals.user1.recv() => Wake::Signal(libc::SIGUSR1),
                _ = signals.user2.recv() => Wake::Signal(libc::SIGUSR2),
                _ = signals.window.recv() => Wake::Signal(libc::SIGWINCH),
                _ = sleep_until(deadline) => Wake::Deadline,
                _ = sleep_until(container_kill) => Wake::ContainerKill,
                _ = sleep_until(probe_timeout) => Wake::ProbeTimeout,
                Some(event) = self.events.recv() => Wake::Event(event),
                _ = tick(systemd_watchdog.as_mut()) => Wake::SystemdWatchdog,
                _ = sweep.tick() => Wake::Sweep,
            };
            match wake {
                // waitpid(-1) costs the kernel a walk over all of minder's children, so
                // it runs only when a child may have ended.
                Wake::ChildExited | Wake::Sweep => self.reap(),
                Wake::Signal(number) => self.on_signal(number),
                Wake::Deadline => self.pending.push_back(Event::Timer),
                Wake::ContainerKill => self.container_kill(),
                Wake::Event(event) => {
                    // Take every result already queued in this one turn.
                    self.pending.push_back(event);
                    while let Ok(event) = self.events.try_recv() {
                        self.pending.push_back(event);
                    }
                }
                Wake::SystemdWatchdog => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                Wake::ProbeTimeout => {
                    // Its result (a failure) comes when the killed group is reaped.
                    for pid in self.exec_probes.expire(Instant::now()) {
                        process::kill_group(pid);
                    }
                }
            }
            self.settle();
            self.tell_systemd();
        }
        let code = self.exit_code.unwrap_or(EXIT_INTERNAL);
        self.final_cleanup().await;
        // Logged before the drain, whose flush then writes it out too.
        tracing::info!(code, "minder exiting");
        self.drain_output().await;
        code
    }

    /// `READY=1` once the initial tree is up and ready (a no-op without
    /// `NOTIFY_SOCKET`). Later readiness changes are not announced: for systemd, minder
    /// is ready once it has brought its tree up.
    fn tell_systemd(&mut self) {
        if !self.announced_ready && self.supervisor.tree_ready() {
            self.announced_ready = true;
            let status = format!("{} services up", self.children.len());
            if let Err(error) = sd_notify::notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&status),
            ]) {
                tracing::warn!("notify systemd: {error}");
            }
        }
    }

    /// Feed queued events to the core and perform what it decides, until quiet.
    fn settle(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            if self.exit_code.is_some() {
                break;
            }
            let effects = self.supervisor.handle(event, self.now());
            self.perform(effects);
        }
    }

    fn on_signal(&mut self, number: i32) {
        match (self.mode, number) {
            (RunMode::Container, _) => self.forward(number),
            (RunMode::Config, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT) => {
                tracing::info!(signal = signal_name(number), "shutdown requested");
                self.pending.push_back(Event::Shutdown);
            }
            (RunMode::Config, libc::SIGHUP) => {
                tracing::warn!("SIGHUP: reload not supported yet; nothing changed");
            }
            (RunMode::Config, libc::SIGUSR1) => {
                tracing::info!("SIGUSR1: no log files to reopen (log_dir not supported yet)");
            }
            (RunMode::Config, libc::SIGUSR2) => {
                tracing::info!("state of the tree:\n{}", self.supervisor.describe());
            }
            (RunMode::Config, _) => {}
        }
    }

    /// Container mode: pass the signal on to the service's process group; after
    /// TERM/INT/QUIT, kill it if it is still there after its stop_timeout.
    fn forward(&mut self, number: i32) {
        for pid in self.children.keys() {
            if let Err(errno) = process::signal_group(*pid, number) {
                tracing::debug!(pid, %errno, "forward {}", signal_name(number));
            }
        }
        if matches!(number, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
            && self.container_kill_at.is_none()
        {
            let timeout = self
                .processes
                .service(crate::supervisor::ServiceId(0))
                .map_or(container::STOP_TIMEOUT, |spec| spec.stop_timeout);
            self.container_kill_at = Instant::now().checked_add(timeout);
        }
    }

    fn container_kill(&mut self) {
        self.container_kill_at = None;
        for pid in self.children.keys() {
            tracing::warn!(
                pid,
                "the service did not exit after the forwarded signal; killing its process group"
            );
            process::kill_group(*pid);
        }
    }

    /// Collect every ended child; hand exits of services to the core.
    fn reap(&mut self) {
        for (pid, status) in process::reap() {
            if let Some(event) = self.exec_probes.exited(pid, status) {
                process::kill_group(pid);
                self.pending.push_back(event);
                continue;
            }
            match self.children.remove(&pid) {
                Some(child) => {
                    // Whatever the main process left in its group goes with it, before
                    // any restart: a forked worker must not hold the next one's port.
                    process::kill_group(pid);
                    if let Some(notify) = &mut self.notify {
                        notify.clear_current(child.id);
                    }
                    if let Some(watch) = self.ready_fd_watches.remove(&child.id) {
                        watch.abort();
                    }
                    // Its probes still running would only report on a dead incarnation.
                    for probe in self.exec_probes.abandon(child) {
                        process::kill_group(probe);
                    }
                    self.pending.push_back(Event::Exited { child, status });
                }
                None => {
                    self.orphans_reaped += 1;
                    tracing::debug!(pid, ?status, "reaped an orphan");
                }
            }
        }
    }

    fn perform(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Spawn { child } => self.spawn(child),
                Effect::Signal { child, pid, signal } => {
                    if self.children.get(&pid) == Some(&child)
                        && let Err(errno) = process::signal_group(pid, signal)
                    {
                        tracing::debug!(pid, %errno, "signal {}", signal_name(signal));
                    }
                }
                Effect::Kill { child, pid } => {
                    if self.children.get(&pid) == Some(&child) {
                        process::kill_group(pid);
                    }
                }
                Effect::Probe { child, pid, check } => self.probe(child, pid, check),
                Effect::Exit { code } => self.exit_code = Some(code),
                Effect::Report(report) => self.log(report),
            }
        }
    }

    fn spawn(&mut self, child: ChildRef) {
        let Some(spec) = self.processes.service(child.id) else {
            // Only a bug gets here (the table holds every service the core has); the
            // core still gets its answer rather than waiting for a spawn forever.
            tracing::error!("internal error: no process spec for service {:?}", child.id);
            self.pending.push_back(Event::SpawnFailed {
                child,
                code: process::CODE_OTHER,
                reason: "internal error: no process spec".into(),
            });
            return;
        };
        let stdio = match self.mode {
            RunMode::Config => StdioMode::Capture,
            RunMode::Container => StdioMode::Foreground,
        };
        let extra_env = match notify_environment(self.notify.as_mut(), child.id, spec) {
            Ok(env) => env,
            Err(reason) => {
                let reason = format!("spawn {}: {reason}", spec.name);
                self.pending.push_back(Event::SpawnFailed {
                    child,
                    code: process::CODE_OTHER,
                    reason,
                });
                return;
            }
        };
        let mut request = SpawnRequest::new(spec, stdio, &extra_env);
        if let Some(ReadyCheck::Fd(fd)) = spec.ready.as_ref().map(|ready| &ready.check) {
            request.ready_fd = Some(*fd);
        }
        match process::spawn(&request) {
            Ok(spawned) => {
                self.children.insert(spawned.pid, child);
                // Attribute notify messages to this incarnation from now on (same turn
                // as the spawn, before any message of it can be read).
                if let Some(notify) = &mut self.notify {
                    notify.set_current(child.id, child, spawned.pid);
                }
                if let Some(fd) = spawned.ready_fd {
                    let watch = self.prober.watch_ready_fd(child, fd);
                    if let Some(previous) = self.ready_fd_watches.insert(child.id, watch) {
                        previous.abort();
                    }
                }
                if let (Some(outputs), Some(stdout), Some(stderr)) =
                    (&self.outputs, spawned.stdout, spawned.stderr)
                {
                    match outputs.attach(&spec.name, stdout, stderr) {
                        Ok(attachment) => {
                            // Readers of ended incarnations finish at end of file;
                            // keep only the ones still reading.
                            let readers = self.attachments.entry(child.id).or_default();
                            readers.retain(|a| !a.is_finished());
                            readers.push(attachment);
                        }
                        Err(error) => {
                            tracing::warn!(service = spec.name, "capture output: {error}")
                        }
                    }
                }
                self.pending.push_back(Event::Spawned {
                    child,
                    pid: spawned.pid,
                });
            }
            Err(error) => {
                self.pending.push_back(Event::SpawnFailed {
                    child,
                    code: error.code,
                    reason: error.reason,
                });
            }
        }
    }

    /// Run one check for the core. Network probes and memory samples run as tasks;
    /// exec probes are spawned here, on the loop's thread, like every process, and
    /// answered when reaped or killed at their timeout. Every path answers with one
    /// `ProbeResult`, so the core never waits forever.
    fn probe(&mut self, child: ChildRef, pid: i32, check: Check) {
        // The incarnation may have ended in this same turn; its result would be stale.
        if self.children.get(&pid) != Some(&child) {
            return;
        }
        let kind = check.kind();
        let (Check::Ready(probe) | Check::Health(probe)) = check else {
            self.prober.memory(child, pid);
            return;
        };
        let timeout = probe.timeout;
        let (Some(spec), Some(probe)) = (
            self.processes.service(child.id),
            self.processes.probe(probe.id),
        ) else {
            // Only a bug gets here (the table holds every id the core can name); the
            // core still gets its one answer rather than waiting forever.
            tracing::error!(
                service = self.processes.name(child.id),
                "no such probe: {probe:?}"
            );
            self.pending.push_back(Event::ProbeResult {
                child,
                kind,
                outcome: ProbeOutcome::Failed("internal error: unknown probe".into()),
            });
            return;
        };
        match probe {
            Probe::Tcp { .. } | Probe::Http { .. } => {
                self.prober.network(child, kind, probe, timeout)
            }
            Probe::Exec { command } => {
                let mut request = SpawnRequest::new(spec, StdioMode::Null, &[]);
                request.command = Some(command);
                match process::spawn(&request) {
                    Ok(spawned) => {
                        self.exec_probes.register(
                            spawned.pid,
                            child,
                            kind,
                            timeout,
                            Instant::now(),
                        );
                    }
                    Err(error) => {
                        self.pending
                            .push_back(ExecProbes::spawn_failed(child, kind, &error));
                    }
                }
            }
        }
    }

    fn name(&self, child: ChildRef) -> &str {
        self.processes.name(child.id)
    }

    fn log(&self, report: Report) {
        match report {
            Report::Started { child, pid } => {
                tracing::info!(service = self.name(child), pid, "started")
            }
            Report::StartFailed { child, reason } => {
                tracing::error!(service = self.name(child), "{reason}");
            }
            Report::Ready { child } => {
                // Worth a line only when a check decided it; otherwise it is the start.
                let checked = self
                    .processes
                    .service(child.id)
                    .is_some_and(|spec| spec.ready.is_some());
                if checked {
                    tracing::info!(service = self.name(child), "ready");
                }
            }
            Report::Exited { child, status, end } => {
                let how = match status {
                    ExitStatus::Exited(code) => format!("exited with code {code}"),
                    ExitStatus::Signaled(number) => format!("killed by {}", signal_name(number)),
                };
                let service = self.name(child);
                match end {
                    // In container mode the command's end is the expected end of minder.
                    _ if self.mode == RunMode::Container => {
                        tracing::info!(service, "{how} ({})", end_name(end))
                    }
                    EndKind::Stopped | EndKind::Normal => {
                        tracing::info!(service, "{how} ({})", end_name(end))
                    }
                    _ => tracing::warn!(service, "{how} ({})", end_name(end)),
                }
            }
            Report::RestartScheduled { id, delay } => {
                let service = self.processes.name(id);
                tracing::info!(
                    service,
                    "restart in {}",
                    humantime::format_duration(round_ms(delay))
                );
            }
            Report::Escalated { group } => {
                let name = self.supervisor.group_name(group);
                tracing::error!(
                    group = name,
                    "restart budget exceeded: stopping the group and escalating"
                );
            }
            Report::StopTimedOut { child } => {
                tracing::warn!(
                    service = self.name(child),
                    "did not stop within its stop_timeout; killing its process group"
                );
            }
            Report::HealthFailed {
                child,
                kind,
                reason,
                consecutive,
            } => {
                tracing::warn!(
                    service = self.name(child),
                    ?kind,
                    consecutive,
                    "check failed: {reason}"
                );
            }
            Report::Condemned { child, reason } => {
                tracing::warn!(
                    service = self.name(child),
                    %reason,
                    "stopping the service for a failure"
                );
            }
            Report::ShuttingDown { cause } => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
                self.log_shutdown(cause);
            }
            Report::Unsettled { passes } => {
                tracing::error!(
                    "internal error: the supervisor did not settle in {passes} passes; it goes on at once"
                );
            }
        }
    }

    fn log_shutdown(&self, cause: ShutdownCause) {
        match cause {
            ShutdownCause::Requested => tracing::info!("orderly shutdown"),
            ShutdownCause::Forced => {
                tracing::warn!("second shutdown request: killing every process group")
            }
            ShutdownCause::RootFailed => tracing::error!(
                "the root's restart budget is exhausted: stopping everything, exit {EXIT_ROOT_FAILED}"
            ),
            ShutdownCause::Significant { id, code } => {
                let service = self.processes.name(id);
                tracing::info!(service, code, "significant service ended: shutting down");
            }
            ShutdownCause::TimedOut => {
                tracing::warn!("shutdown_timeout passed: killing every process group left")
            }
        }
    }

    /// Let the readers reach end of file on every pipe (everything that held one is
    /// dead by now), then let the writer write it all: a service's last lines must not
    /// be lost because minder exits. Bounded, so a blocked stdout or a pipe kept open by
    /// something minder could not kill cannot keep minder from exiting.
    async fn drain_output(&mut self) {
        let deadline = Instant::now() + OUTPUT_DRAIN_BOUND;
        while self
            .attachments
            .values()
            .flatten()
            .any(|a| !a.is_finished())
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for attachment in self.attachments.drain().flat_map(|(_, readers)| readers) {
            attachment.detach();
        }
        if let Some(outputs) = self.outputs.take() {
            outputs.flush(OUTPUT_DRAIN_BOUND);
        }
    }

    /// Kill and reap everything left (services, their groups, orphans) before exiting.
    async fn final_cleanup(&mut self) {
        let pids: Vec<i32> = self
            .children
            .keys()
            .copied()
            .chain(self.exec_probes.pids())
            .collect();
        for pid in pids {
            process::kill_group(pid);
        }
        let deadline = Instant::now() + FINAL_REAP_BOUND;
        loop {
            for pid in descendants() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            for (pid, _) in process::reap() {
                self.children.remove(&pid);
            }
            if !has_children() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The notify socket and watchdog variables for a service with `ready.notify`; empty
/// for any other service.
fn notify_environment(
    server: Option<&mut NotifyServer>,
    id: ServiceId,
    spec: &ServiceSpec,
) -> Result<Vec<(String, String)>, String> {
    if !matches!(
        spec.ready.as_ref().map(|ready| &ready.check),
        Some(ReadyCheck::Notify)
    ) {
        return Ok(Vec::new());
    }
    let server = server.ok_or("no notify socket: its directory could not be created")?;
    let owner = process::service_owner(spec)?;
    let path = server
        .socket_for(id, &spec.name, owner)
        .map_err(|error| format!("create the notify socket: {error}"))?;
    Ok(notify::environment(&path, spec.watchdog))
}

/// Every service of a tree, depth first.
fn services(group: &crate::spec::GroupSpec) -> Box<dyn Iterator<Item = &ServiceSpec> + '_> {
    Box::new(
        group
            .children
            .iter()
            .flat_map(|child| -> Box<dyn Iterator<Item = &ServiceSpec>> {
                match child {
                    crate::spec::NodeSpec::Service(service) => Box::new(std::iter::once(service)),
                    crate::spec::NodeSpec::Group(inner) => services(inner),
                }
            }),
    )
}

/// The last line of defence: whatever way the loop ends (a panic included), every
/// process group it still knows and every process still parented to minder is killed.
/// After an orderly exit there is nothing left and this finds nothing.
impl Drop for Loop {
    fn drop(&mut self) {
        for pid in self.children.keys().copied().chain(self.exec_probes.pids()) {
            process::kill_group(pid);
        }
        for pid in descendants() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Processes whose parent is minder (services and re-parented orphans), from /proc.
fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether minder still has any child, reaped or not (waitid with WNOWAIT peeks).
fn has_children() -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; WNOWAIT leaves any zombie in place for `reap`.
    let result = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    result == 0
}

fn round_ms(delay: Duration) -> Duration {
    Duration::from_millis(delay.as_millis().try_into().unwrap_or(u64::MAX))
}

fn end_name(end: EndKind) -> String {
    match end {
        EndKind::Stopped => "stopped".into(),
        EndKind::Normal => "normal".into(),
        EndKind::Abnormal => "abnormal".into(),
        EndKind::Failure(reason) => format!("failure: {reason}"),
        EndKind::StartFailure => "start failure".into(),
    }
}

/// `SIGTERM` for 15, `signal 42` for what has no name.
pub fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number)
        .map_or_else(|_| format!("signal {number}"), |s| s.as_str().to_string())
}
