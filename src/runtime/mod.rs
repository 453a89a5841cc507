//! The event loop: owns the supervision core and performs its effects.
//!
//! One tokio current-thread runtime on minder's main thread runs one loop. Everything
//! that can happen (SIGCHLD, a signal to minder, the core's deadline, a `Fact` from a
//! task on the channel: a probe result, a notify message, a memory scan, a ready-fd
//! line) wakes the same `select!`, becomes an `Event` for the `Supervisor`, and the
//! effects that come back are carried out here, in order, through `process` (spawn,
//! signal, kill), `health` (probes), `notify` (sockets), `logs` (output capture) and
//! `systemd`. The loop decides nothing itself; it only translates: every signal minder
//! receives goes to the core as it is (container-mode forwarding and its kill time are
//! the core's), and it keeps no timer of the core's: the core's one deadline covers
//! stop and forward kill times, probe timeouts and the shutdown bound.
//!
//! Each running process is one `Incarnation` record (`incarnation.rs`), made by the
//! spawn and ended by the reaper; its `Drop` does the teardown. Because spawning and
//! reaping both happen on this one thread, a pid is registered in `Loop::children`
//! before the `reap()` that could return it: no exit is ever missed or misattributed.
//! Tasks share no state with the loop: they send facts, and the loop, which knows the
//! current incarnation of each service, turns them into events or drops stale ones. Besides those wake-ups there is a 60 s reaper sweep and, only under
//! systemd's `WatchdogSec=`, a watchdog ping (plus, while a message to systemd waits for
//! room in its queue, a retry); the loop never polls. Messages to systemd go through
//! `systemd`, whose sends never block.

mod container;
mod control;
mod fact;
mod incarnation;
mod reload;
mod report;
mod stats;
mod systemd;

use crate::health::{ExecProbes, Prober};
use crate::logs::{self, OutputHub, OutputSettings, OwnLogWriter};
use crate::metrics::Endpoint;
use crate::notify::{self, NotifyServer, NotifySlot};
use crate::process::{self, SpawnRequest, StdioMode};
use crate::signals::signal_name;
use crate::spec::{LogFormat, Spec};
use crate::spec::{Probe, ProcessTable, ReadyCheck, ServiceSpec};
use crate::supervisor::ServiceId;
use crate::supervisor::{
    Announcement, Check, ChildRef, Effect, Event, ExitStatus, ProbeKind, ProbeOutcome, Supervisor,
    Time,
};
use incarnation::{Incarnation, Incarnations};
use minder_core::spec::SignalMode;
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use systemd::SystemdNotifier;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

pub use self::container::{add_main_service, container_spec};
pub use self::fact::Fact;
pub use self::reload::ConfigSource;

/// How the tree was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// `minder run CONFIG`: services captured, each in its own session.
    Config,
    /// `minder -- cmd`: one service on minder's own stdio and terminal.
    Container,
}

/// Exit code for an internal error of minder itself (docs/design.md §7).
const EXIT_INTERNAL: i32 = crate::exit::INTERNAL;

/// The safety sweep of the reaper: SIGCHLD is the real trigger, this only catches a
/// child that ends without one (a clone with another exit signal). It is the loop's only
/// periodic wake-up.
const REAP_SWEEP: Duration = Duration::from_secs(60);

/// How long the final cleanup waits for killed processes to be reaped before exiting.
const FINAL_REAP_BOUND: Duration = Duration::from_secs(5);

/// Supervise `spec` until it ends; returns minder's exit code. `source` is the config
/// file it came from, which a reload reads again (`None` in container mode).
pub fn run(spec: Spec, mode: RunMode, source: Option<ConfigSource>) -> i32 {
    // Bound before anything starts: an endpoint that cannot listen is an error of the
    // config (exit 2), found before a single service runs. Written straight to stderr,
    // like the config's own errors: the log writer is not running yet, and a queued
    // line could be lost at this early exit.
    let metrics = match spec.daemon.metrics_listen.map(Endpoint::bind).transpose() {
        Ok(metrics) => metrics,
        Err(error) => {
            eprintln!("error: {error}");
            return crate::exit::USAGE;
        }
    };
    // In config mode minder's own lines share the services' writer thread: one order
    // on stderr, and lines dropped (and counted) rather than ever blocking the loop.
    let outputs = match mode {
        RunMode::Config => {
            let names = services(&spec.root).map(|service| service.name.as_str());
            let settings = OutputSettings::from_daemon(&spec.daemon, names);
            // A log_dir that cannot be made is the config's fault: said before
            // anything starts, with the config error's exit code.
            if let Some(files) = &settings.files
                && let Err(message) = logs::create_log_dir(&files.dir)
            {
                eprintln!("error: {message}");
                return crate::exit::USAGE;
            }
            match OutputHub::new(settings) {
                Ok(outputs) => Some(outputs),
                Err(error) => {
                    eprintln!("minder: start the output writer: {error}");
                    return EXIT_INTERNAL;
                }
            }
        }
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
    if let Some(problem) = process::nofile_warning(&setup, descriptors_needed(&spec, mode)) {
        tracing::warn!("{problem}");
    }
    if let Some(endpoint) = &metrics {
        tracing::info!("metrics listening on {}", endpoint.address());
    }
    // Bound before the loop starts, so that a socket path that cannot be used is a
    // startup error (exit 2) rather than a minder nobody can reach.
    let control_listener = match crate::control::server::bind(&spec.daemon) {
        Ok(listener) => listener,
        Err(error) => {
            // Written directly: minder exits at once, before its log writer thread
            // would get to a queued line.
            eprintln!("minder: {error}");
            return crate::exit::USAGE;
        }
    };
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
        runtime.block_on(async move {
            match Loop::new(spec, mode, outputs, control_listener, source, metrics) {
                Ok(mut event_loop) => event_loop.run().await,
                Err(error) => {
                    tracing::error!("{error}");
                    EXIT_INTERNAL
                }
            }
        })
    }));
    let code = outcome.unwrap_or(EXIT_INTERNAL);
    // Nothing of minder's uses the blocking pool (stuck name lookups have threads of
    // their own, which end with the process); should anything, it must not hold the exit.
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
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        // One flat object per line, its time printed like the services' JSON lines
        // (`format.rs` in logs), so a log shipper reads minder's lines and theirs alike:
        // `timestamp`, `level`, `message` and the fields (`service`, ...) at the top.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_timer(MillisecondTime)
            .with_ansi(false)
            .try_init(),
    };
    guard
}

/// RFC 3339 UTC time with milliseconds for minder's own JSON lines, as on the
/// services' lines.
struct MillisecondTime;

impl tracing_subscriber::fmt::time::FormatTime for MillisecondTime {
    fn format_time(
        &self,
        out: &mut tracing_subscriber::fmt::format::Writer<'_>,
    ) -> std::fmt::Result {
        let mut bytes = Vec::with_capacity(24);
        logs::write_time(&mut bytes, std::time::SystemTime::now());
        out.write_str(&String::from_utf8_lossy(&bytes))
    }
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
    /// What a task observed: a probe result, a notify message, a memory scan, a
    /// ready-fd line.
    Fact(Fact),
    /// Time to tell systemd the loop is alive (`WatchdogSec=`).
    SystemdWatchdog,
    /// Time to send systemd an undelivered state message again.
    SystemdRetry,
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
    /// One record per running main process, by pid (= its process group): made right
    /// after the spawn, ended when reaped (see `incarnation.rs`). Also keeps the output
    /// readers of ended processes, awaited at exit so no last line is lost.
    children: Incarnations,
    /// Captured output of every service (config mode only).
    outputs: Option<OutputHub>,
    /// `daemon.shutdown_timeout`: also bounds the delivery of the last output at exit.
    shutdown_timeout: Duration,
    /// When the core first reported the tree shutting down; the output still on its
    /// way at exit gets what is left of `shutdown_timeout` from then.
    shutdown_started: Option<Instant>,
    mode: RunMode,
    /// Events produced while performing effects, handled before the next wait.
    pending: VecDeque<Event>,
    /// Orphans re-parented to minder and reaped (`minder_orphans_reaped_total`).
    orphans_reaped: u64,
    /// Set by `Effect::Exit`.
    exit_code: Option<i32>,
    /// Probe results, ready-fd newlines, memory scans and notify messages, from tasks
    /// and threads that share nothing else with the loop.
    facts: mpsc::UnboundedReceiver<Fact>,
    /// Runs tcp/http probes and memory samples as tasks; answers through `facts`.
    prober: Prober,
    /// Exec probes in flight: registered at spawn, answered at reap, marked when the
    /// core cancels them. (Each is also listed in its incarnation's record, which
    /// kills it when cancelled or when the service's process ends first.)
    exec_probes: ExecProbes,
    /// The sd_notify sockets; created only when some service has `ready.notify`.
    /// Dropping it removes the sockets and their directory.
    notify: Option<NotifyServer>,
    /// minder's own service manager (`NOTIFY_SOCKET`), if it has one: created at
    /// start, told READY=1 (once `tree_ready`) and STOPPING=1 (`Effect::Announce`) and
    /// pinged by this loop, never blocking it.
    systemd: Option<SystemdNotifier>,
    /// Whether systemd has been told `READY=1` (queued for it, at least).
    announced_ready: bool,
    /// The sending end of `facts`, for what the loop creates later (the notify
    /// sockets' server when a reload adds the first `ready.notify` service).
    fact_sender: mpsc::UnboundedSender<Fact>,
    /// The config file, the running tree's shape and the reload in progress (see
    /// `reload.rs`).
    reloads: reload::Reloads,
    /// The operator's stops and `state_file` (see `reload.rs`).
    holds: reload::Holds,
    /// The control socket's server and what its answers need beyond the core (see
    /// `control.rs`).
    control: control::ControlState,
    /// What the metrics count, from the core's reports (`stats.rs`).
    stats: stats::Stats,
}

impl Loop {
    fn new(
        spec: Spec,
        mode: RunMode,
        outputs: Option<OutputHub>,
        control_listener: Option<crate::control::server::Listener>,
        source: Option<ConfigSource>,
        metrics: Option<Endpoint>,
    ) -> std::io::Result<Loop> {
        // Backoff jitter exists to spread restarts of many minders (or many services)
        // apart, so each run gets its own seed; the core itself stays deterministic.
        let seed = fastrand::u64(..);
        let (sender, facts) = mpsc::unbounded_channel();
        let needs_notify = services(&spec.root).any(|service| {
            matches!(
                service.ready.as_ref().map(|r| &r.check),
                Some(ReadyCheck::Notify)
            )
        });
        // Before creating our own: a minder killed by SIGKILL could not remove its.
        notify::remove_stale_dirs();
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
        let (mut core_spec, probes) = crate::spec::lower(&spec);
        core_spec.signals = match mode {
            RunMode::Config => SignalMode::Supervise,
            RunMode::Container => SignalMode::Forward,
        };
        let supervisor = Supervisor::new(&core_spec, seed);
        let control = control::ControlState::new(&spec, control_listener, sender.clone());
        let shutdown_timeout = spec.daemon.shutdown_timeout;
        let reloads = reload::Reloads::new(source, &spec);
        let holds = reload::Holds::new(&spec);
        let stats = stats::Stats::new(&spec, &supervisor);
        let processes = ProcessTable::new(spec, probes, &supervisor);
        if let Some(endpoint) = metrics {
            endpoint.start(sender.clone());
        }
        Ok(Loop {
            facts,
            prober: Prober::new(sender.clone()),
            fact_sender: sender,
            reloads,
            holds,
            exec_probes: ExecProbes::new(),
            notify,
            systemd: SystemdNotifier::from_env(),
            announced_ready: false,
            control,
            supervisor,
            processes,
            origin: Instant::now(),
            children: Incarnations::default(),
            shutdown_timeout,
            shutdown_started: None,
            outputs,
            mode,
            pending: VecDeque::new(),
            orphans_reaped: 0,
            exit_code: None,
            stats,
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
        self.restore_holds();
        let effects = self.supervisor.boot(self.now());
        self.perform(effects);
        self.settle();
        self.after_turn();
        let mut sweep =
            tokio::time::interval_at(tokio::time::Instant::now() + REAP_SWEEP, REAP_SWEEP);
        // Under systemd's WatchdogSec=, ping at half the interval (with a floor, see
        // systemd.rs) from this loop itself, so a wedged loop gets minder killed and
        // restarted. No ping otherwise. After a long turn, pings resume at the interval
        // rather than catching up in a burst.
        let mut systemd_watchdog = self
            .systemd
            .as_ref()
            .and_then(SystemdNotifier::watchdog_interval)
            .map(|period| {
                let mut interval = tokio::time::interval(period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            });
        self.tell_systemd();
        while self.exit_code.is_none() {
            let deadline = self
                .supervisor
                .next_deadline()
                // A deadline past what the clock can hold is no deadline at all.
                .and_then(|at| self.origin.checked_add(at.0))
                .map(tokio::time::Instant::from_std);
            let systemd_retry = self
                .systemd
                .as_ref()
                .and_then(SystemdNotifier::retry_at)
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
                Some(fact) = self.facts.recv() => Wake::Fact(fact),
                _ = tick(systemd_watchdog.as_mut()) => Wake::SystemdWatchdog,
                _ = sleep_until(systemd_retry) => Wake::SystemdRetry,
                _ = sweep.tick() => Wake::Sweep,
            };
            match wake {
                // waitpid(-1) costs the kernel a walk over all of minder's children, so
                // it runs only when a child may have ended.
                Wake::ChildExited | Wake::Sweep => self.reap(),
                // What a signal means (shutdown, forwarding) is the core's decision.
                Wake::Signal(number) => self.pending.push_back(Event::Signal(number)),
                Wake::Deadline => self.pending.push_back(Event::Timer),
                Wake::Fact(fact) => {
                    // Take every fact already queued in this one turn.
                    self.on_fact(fact);
                    while let Ok(fact) = self.facts.try_recv() {
                        self.on_fact(fact);
                    }
                }
                Wake::SystemdWatchdog => {
                    if let Some(systemd) = &mut self.systemd {
                        systemd.ping_watchdog();
                    }
                }
                // `tell_systemd` below retries.
                Wake::SystemdRetry => {}
            }
            self.settle();
            self.after_turn();
            self.tell_systemd();
        }
        let code = self.exit_code.unwrap_or(EXIT_INTERNAL);
        self.finish_state_writes();
        self.control.close().await;
        self.final_cleanup().await;
        self.last_word_to_systemd();
        // Logged before the drain, whose flush then writes it out too.
        tracing::info!(code, "minder exiting");
        self.drain_output(&mut signals).await;
        code
    }

    /// SIGUSR1 (reported by the core): reopen the services' log files, if they have any.
    fn reopen_log_files(&self) {
        let files = self
            .outputs
            .as_ref()
            .and_then(|outputs| Some((outputs, outputs.log_dir()?)));
        match files {
            Some((outputs, dir)) => {
                outputs.reopen();
                tracing::info!("SIGUSR1: reopening the log files in {}", dir.display());
            }
            None => tracing::info!("SIGUSR1: no log files to reopen (log_dir is not set)"),
        }
    }

    /// Called after every turn: `READY=1` once the initial tree is up and ready, the
    /// tree's one-line `STATUS=` when it has changed (coalesced by the notifier), and
    /// another try at a message systemd's queue refused (a no-op without
    /// `NOTIFY_SOCKET`). Later readiness changes show in the status only: for
    /// systemd, minder is ready once it has brought its tree up.
    fn tell_systemd(&mut self) {
        let Some(systemd) = &mut self.systemd else {
            return;
        };
        let status = systemd::summary(&self.supervisor);
        if !self.announced_ready && self.supervisor.tree_ready() {
            self.announced_ready = true;
            systemd.ready(&status);
        } else {
            systemd.set_status(&status);
        }
    }

    /// At exit: one last (non-blocking) try at an undelivered `STOPPING=1`, and the
    /// count of refused messages if there were any.
    fn last_word_to_systemd(&mut self) {
        let Some(systemd) = &mut self.systemd else {
            return;
        };
        systemd.retry();
        let counters = systemd.counters();
        if counters.queue_full + counters.failed > 0 {
            tracing::warn!(
                sent = counters.sent,
                queue_full = counters.queue_full,
                failed = counters.failed,
                pings_dropped = counters.pings_dropped,
                undelivered_state = systemd.has_pending_state(),
                "the service manager's notify socket refused messages"
            );
        }
    }

    /// Feed queued events to the core and perform what it decides, until quiet.
    /// Exits queued one after another were reaped in one sweep: those processes had
    /// all ended before minder could act on any of them, so they go to the core
    /// together (`handle_all`) and each end is reported as it happened.
    fn settle(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            if self.exit_code.is_some() {
                break;
            }
            self.note_operator_event(&event);
            let operator_stop = matches!(event, Event::Stop(_));
            let mut batch = vec![event];
            if matches!(batch[0], Event::Exited { .. }) {
                while let Some(Event::Exited { .. }) = self.pending.front() {
                    batch.extend(self.pending.pop_front());
                }
            }
            let effects = self.supervisor.handle_all(batch, self.now());
            self.perform(effects);
            if operator_stop {
                self.stats.forget_held(&self.supervisor);
            }
        }
    }

    /// Collect every ended child; hand exits of services to the core. The exits of
    /// one sweep are queued together, before the results of exec probes reaped with
    /// them, so `settle` hands them to the core in one batch: ends that happened
    /// together are judged together, whatever order waitpid returned them in.
    fn reap(&mut self) {
        let mut probe_results = Vec::new();
        for (pid, status) in process::reap() {
            match self.collected(pid, status) {
                Some(exit @ Event::Exited { .. }) => self.pending.push_back(exit),
                Some(other) => probe_results.push(other),
                None => {}
            }
        }
        self.pending.extend(probe_results);
    }

    /// The reaper collected `pid`: the event for the core, if any. Ending a service's
    /// record kills what is left of its process group, in this same turn, before any
    /// restart (a forked worker must not hold the next one's port), and the exec
    /// probes still running for it (their results would be about a dead process).
    fn collected(&mut self, pid: i32, status: ExitStatus) -> Option<Event> {
        if let Some(child) = self.exec_probes.owner(pid) {
            process::kill_group(pid);
            let listed = self.children.exec_probe_reaped(child, pid);
            // A probe the core cancelled answers nothing (`exited` says so): the core
            // has counted it already. One whose service's process has ended answers
            // about a process that is gone, and is dropped like any such fact.
            return self.exec_probes.exited(pid, status).filter(|_| listed);
        }
        match self.children.end(pid) {
            Some(child) => Some(Event::Exited { child, status }),
            None => {
                self.orphans_reaped += 1;
                tracing::debug!(pid, ?status, "reaped an orphan");
                None
            }
        }
    }

    /// Turns what a task observed into events for the core, if the process it is about
    /// is still the current one; facts about an ended process are dropped.
    fn on_fact(&mut self, fact: Fact) {
        match fact {
            Fact::Notify { service, message } => {
                let name = self.processes.name(service);
                match self
                    .children
                    .of_service_mut(service)
                    .and_then(|incarnation| incarnation.notify.as_mut())
                {
                    Some(slot) => self.pending.extend(slot.accept(name, &message)),
                    None => notify::unattributed(name),
                }
            }
            Fact::ProbeResult {
                child,
                kind,
                run,
                outcome,
            } => {
                if let Some(incarnation) = self.children.current_mut(child) {
                    incarnation.network_probe_done(kind, run);
                    self.pending.push_back(Event::ProbeResult {
                        child,
                        kind,
                        run,
                        outcome,
                    });
                }
            }
            Fact::MemoryScan { groups, asked } => {
                for (child, run) in asked {
                    let Some(incarnation) = self.children.current_mut(child) else {
                        continue;
                    };
                    let bytes = groups.get(&incarnation.pid).copied().unwrap_or(0);
                    self.pending.push_back(Event::ProbeResult {
                        child,
                        kind: ProbeKind::Memory,
                        run,
                        outcome: ProbeOutcome::Memory(bytes),
                    });
                }
            }
            Fact::ReadyLine { child } => {
                if self.children.is_current(child) {
                    self.pending.push_back(Event::Ready { child });
                }
            }
            Fact::Control(request) => self.on_control(request),
            Fact::Snapshot(request) => request.answer(self.snapshot()),
        }
    }

    fn perform(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.observe_for_control(&effect);
            match effect {
                Effect::Spawn { child } => self.spawn(child),
                Effect::Signal { child, pid, signal } => {
                    if self.children.child(pid) != Some(child) {
                        continue;
                    }
                    // A stop signal, followed by SIGCONT (see `Effect::Signal`).
                    if let Err(errno) = process::stop_group(pid, signal) {
                        tracing::debug!(pid, %errno, "signal {}", signal_name(signal));
                    }
                }
                Effect::Forward {
                    child,
                    pid,
                    signal,
                    and_continue,
                } => {
                    if self.children.child(pid) != Some(child) {
                        continue;
                    }
                    let sent = if and_continue {
                        process::stop_group(pid, signal)
                    } else {
                        process::signal_group(pid, signal)
                    };
                    if let Err(errno) = sent {
                        tracing::debug!(pid, %errno, "forward {}", signal_name(signal));
                    }
                }
                Effect::CancelProbe { child, kind, run } => {
                    // The probe is in the record of the process it checks: an exec
                    // probe's group is killed there, and its end, collected by `reap`,
                    // answers nothing; a network probe's task is aborted. If that
                    // process has ended, its record's drop already did both.
                    if let Some(incarnation) = self.children.current_mut(child) {
                        for pid in incarnation.cancel_probe(kind, run) {
                            self.exec_probes.cancel(pid);
                        }
                    }
                }
                Effect::Announce(Announcement::Stopping) => {
                    self.shutdown_started.get_or_insert_with(Instant::now);
                    if let Some(systemd) = &mut self.systemd {
                        systemd.stopping();
                    }
                }
                Effect::Kill { child, pid } => {
                    if self.children.child(pid) == Some(child) {
                        process::kill_group(pid);
                    }
                }
                Effect::Probe {
                    child,
                    pid,
                    check,
                    run,
                } => self.probe(child, pid, check, run),
                Effect::Exit { code } => self.exit_code = Some(code),
                Effect::Report(report) => {
                    self.observe_for_reload(&report);
                    self.stats.note(&report, Instant::now());
                    self.log(report);
                }
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
                let mut incarnation = Incarnation::new(child, spawned.pid);
                // Notify messages are judged against this process from now on (same
                // turn as the spawn, before any message of it can be read).
                if self
                    .notify
                    .as_ref()
                    .is_some_and(|notify| notify.has_socket(child.id))
                {
                    incarnation = incarnation.with_notify(NotifySlot::new(child, spawned.pid));
                }
                if let Some(fd) = spawned.ready_fd {
                    incarnation = incarnation.with_ready_fd(self.prober.watch_ready_fd(child, fd));
                }
                if let (Some(outputs), Some(stdout), Some(stderr)) =
                    (&self.outputs, spawned.stdout, spawned.stderr)
                {
                    match outputs.attach(&spec.name, stdout, stderr) {
                        Ok(attachment) => incarnation = incarnation.with_output(attachment),
                        Err(error) => {
                            tracing::warn!(service = spec.name, "capture output: {error}")
                        }
                    }
                }
                self.children.insert(incarnation);
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
    /// answered when reaped. Each is listed in the record of the process it checks, so
    /// `Effect::CancelProbe` (the core's timeout for it) finds it. Every path answers
    /// with one `ProbeResult` tagged with `run`, unless cancelled first.
    fn probe(&mut self, child: ChildRef, pid: i32, check: Check, run: u64) {
        // The incarnation may have ended in this same turn; its result would be stale.
        if self.children.child(pid) != Some(child) {
            return;
        }
        let kind = check.kind();
        let (Check::Ready(probe) | Check::Health(probe)) = check else {
            self.prober.memory(child, run);
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
                run,
                outcome: ProbeOutcome::Failed("internal error: unknown probe".into()),
            });
            return;
        };
        match probe {
            Probe::Tcp { .. } | Probe::Http { .. } => {
                // The task is the record's to abort (on a cancel, or when the process
                // ends), as an exec probe's group is.
                let task = self.prober.network(child, kind, run, probe, timeout);
                if let (Some(task), Some(incarnation)) = (task, self.children.current_mut(child)) {
                    incarnation.add_network_probe(kind, run, task);
                }
            }
            Probe::Exec { command } => {
                let mut request = SpawnRequest::new(spec, StdioMode::Null, &[]);
                request.command = Some(command);
                match process::spawn(&request) {
                    Ok(spawned) => {
                        // Listed in the same turn as the spawn: should the service's
                        // process end first, its record's drop kills the probe; a
                        // cancel finds it there too.
                        if let Some(incarnation) = self.children.current_mut(child) {
                            incarnation.add_exec_probe(kind, run, spawned.pid);
                        }
                        self.exec_probes.register(spawned.pid, child, kind, run);
                    }
                    Err(error) => {
                        self.pending
                            .push_back(ExecProbes::spawn_failed(child, kind, run, &error));
                    }
                }
            }
        }
    }

    /// Deliver the services' last output: the readers read every pipe to its end
    /// (everything that held one is dead by now) and the writers write it all, so no
    /// line is lost because minder exits. Bounded by what is left of
    /// `shutdown_timeout` since the shutdown began (all of it if none was reported),
    /// so minder's whole exit stays within the bound its docs tell users to set below
    /// the container runtime's grace period; a TERM/INT/QUIT arriving meanwhile cuts it
    /// short. If
    /// it must give up (a stdout nobody reads, a pipe held by something minder could
    /// not kill), the hub logs and counts how many lines of which service were lost.
    async fn drain_output(&mut self, signals: &mut Signals) {
        let Some(outputs) = self.outputs.take() else {
            return;
        };
        let attachments = self.children.take_outputs();
        let started = self.shutdown_started.unwrap_or_else(Instant::now);
        // Durations are capped at 10 years, so this cannot overflow; if it did, a
        // deadline that far is no deadline.
        let deadline = started
            .checked_add(self.shutdown_timeout)
            .unwrap_or(started + Duration::from_secs(365 * 24 * 3600));
        let interrupt = async {
            tokio::select! {
                _ = signals.terminate.recv() => {}
                _ = signals.interrupt.recv() => {}
                _ = signals.quit.recv() => {}
            }
        };
        outputs
            .drain(
                attachments,
                tokio::time::Instant::from_std(deadline),
                interrupt,
            )
            .await;
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
            for (pid, status) in process::reap() {
                self.collected(pid, status);
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

/// What minder holds for itself whatever the tree: standard streams, the event loop's
/// epoll and wake-up descriptors, signal pipes, the log writer, a spawn's transient
/// pipes, plus room for a few connections (a DNS lookup, a control client). About 20
/// are open in an idle minder; the rest is headroom.
const OWN_DESCRIPTORS: u64 = 64;

/// About how many file descriptors minder holds at once for `spec` (see the file
/// descriptor notes in minder(8)): its own, the metrics endpoint's, plus per service
/// its two output pipes and its log file (run mode), its notify socket, its ready-fd
/// pipe, and a socket per tcp or http check that may run at the same time.
fn descriptors_needed(spec: &Spec, mode: RunMode) -> u64 {
    let captured = match (mode, &spec.daemon.log_dir) {
        (RunMode::Config, Some(_)) => 3,
        (RunMode::Config, None) => 2,
        (RunMode::Container, _) => 0,
    };
    let per_service = |service: &ServiceSpec| -> u64 {
        let ready = match service.ready.as_ref().map(|ready| &ready.check) {
            Some(ReadyCheck::Notify | ReadyCheck::Fd(_)) => 1,
            Some(ReadyCheck::Probe(Probe::Tcp { .. } | Probe::Http { .. })) => 1,
            _ => 0,
        };
        let health = match service.health.as_ref().and_then(|h| h.probe.as_ref()) {
            Some(Probe::Tcp { .. } | Probe::Http { .. }) => 1,
            _ => 0,
        };
        captured + ready + health
    };
    // The metrics endpoint: its listening socket and as many connections as it serves.
    let metrics = match spec.daemon.metrics_listen {
        Some(_) => 1 + crate::metrics::MAX_CONNECTIONS as u64,
        None => 0,
    };
    OWN_DESCRIPTORS + metrics + services(&spec.root).map(per_service).sum::<u64>()
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
        // Ending each record kills its process group and its exec probes' groups.
        self.children.clear();
        for pid in self.exec_probes.pids() {
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
    crate::procfs::processes()
        .filter(|process| process.ppid == me)
        .map(|process| process.pid)
        .collect()
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
