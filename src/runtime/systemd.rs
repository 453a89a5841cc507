//! minder's own side of the systemd notify protocol (sd_notify(3)): `READY=1` once the
//! tree is up, `STOPPING=1` at shutdown, `RELOADING=1`/`READY=1` around a reload,
//! `WATCHDOG=1` pings, and a one-line `STATUS=` summary of the tree (`summary`) that
//! `systemctl status` shows, sent to the service manager's socket named by
//! `NOTIFY_SOCKET`.
//!
//! Owns one unbound datagram socket, opened once when minder starts, close-on-exec and
//! non-blocking, and the address `NOTIFY_SOCKET` names (an absolute path, or `@name`
//! for a socket in the abstract namespace). Every message is one `sendto` that never
//! waits: a manager that does not drain its socket (a busy or wedged PID 1; the kernel
//! queues only `net.unix.max_dgram_qlen` datagrams, 10 by default) must not stall
//! minder's loop, which also reaps, restarts and shuts down. What happens to a message
//! that is refused:
//!
//! - A state message (`READY=1`, `STOPPING=1`, `RELOADING=1`, each with the current
//!   `STATUS=`) is kept and sent again at the loop's next wake-up, and at the latest
//!   after `STATE_RETRY`. Only the latest one is kept: a newer state replaces an
//!   undelivered older one, since the manager only needs to know where minder is now
//!   (`STOPPING=1` makes an undelivered `READY=1` moot).
//! - A status line is sent when it changes, alone, at most once per `STATUS_SPACING`:
//!   a change that comes sooner waits, and only the latest one is sent, so a
//!   crash-looping service cannot flood the manager. One refused is kept and tried
//!   again like a state message.
//! - A watchdog ping is dropped: the next one follows within the ping interval, and a
//!   late ping would only add to a queue that is already full.
//!
//! Refusals are counted (`NotifyCounters`) and logged when the socket starts refusing
//! (at most once per `WARNING_SPACING`) and when it accepts again, never once per
//! message. This module must not decide when minder is ready or stopping (the loop
//! asks), and must never block.
//!
//! The `sd-notify` crate (0.5) formats the messages (`NotifyState`) and reads
//! `WATCHDOG_USEC`/`WATCHDOG_PID` (`watchdog_enabled`). Its `notify` cannot be used
//! for sending: it opens a new blocking socket for every message and connects to
//! `NOTIFY_SOCKET` as a file path, so `@name` is not understood.

use crate::supervisor::{PhaseView, Supervisor, Time};
use sd_notify::NotifyState;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::{Duration, Instant};

/// The shortest interval between two watchdog pings, whatever `WATCHDOG_USEC` says.
///
/// minder pings at half the manager's watchdog period, but not more often than this:
/// `WATCHDOG_USEC=1` would otherwise ask for a ping every half microsecond, that is a
/// loop that does nothing but send (and, with a reader, hundreds of thousands of
/// datagrams a second for the manager to handle). Ten pings a second cost nothing to
/// either side. A watchdog period below 200 ms cannot be honoured anyway by a loop that
/// forks, execs and reaps processes (one spawn can take longer), so nobody loses
/// anything real: with such a period minder pings every 100 ms and says so at start.
pub const WATCHDOG_PING_FLOOR: Duration = Duration::from_millis(100);

/// How long an undelivered state message waits at most before it is sent again, when
/// nothing else wakes the loop first. Short enough that systemd's start timeout
/// (90 s by default) is never the one to notice, long enough to cost nothing.
pub const STATE_RETRY: Duration = Duration::from_millis(500);

/// The least time between two status-only messages; a change that comes sooner waits,
/// and is replaced by any later one. A state message carries the current status with
/// it whenever it goes, so it needs no spacing (state changes are rare).
pub const STATUS_SPACING: Duration = Duration::from_millis(250);

/// At most one warning about a refusing socket per this much time: a manager that
/// drains in fits and starts must not fill minder's log.
const WARNING_SPACING: Duration = Duration::from_secs(60);

/// What has happened to minder's messages so far; kept for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyCounters {
    /// Messages the manager's socket accepted.
    pub sent: u64,
    /// Sends refused because the manager's queue was full (EAGAIN).
    pub queue_full: u64,
    /// Sends that failed otherwise (no socket at that address, nobody bound to it).
    pub failed: u64,
    /// Watchdog pings given up (refused, and never sent again).
    pub pings_dropped: u64,
}

/// The connection to the service manager. Created by the loop at start when
/// `NOTIFY_SOCKET` is set and valid, held for minder's life; dropping it closes the
/// socket.
pub struct SystemdNotifier {
    /// Unbound, non-blocking, close-on-exec; each message names `address`. Unbound
    /// rather than connected, so a manager that recreates its socket is still reached.
    socket: UnixDatagram,
    /// Where `NOTIFY_SOCKET` points.
    address: SocketAddr,
    /// `NOTIFY_SOCKET` as given, for log lines.
    name: String,
    /// The latest state message not delivered yet (its `KEY=VALUE` lines, without the
    /// status, which is added when it goes), sent again at each `retry`.
    pending_state: Option<String>,
    /// When a send was last attempted for `pending_state`.
    last_attempt: Option<Instant>,
    /// The latest summary the loop handed over (`set_status`).
    status: String,
    /// The status line as sent: `status`, marked while a reload runs.
    rendered: String,
    /// Whether `status` still has to reach the manager.
    status_pending: bool,
    /// Not before this may a status-only message go (see `STATUS_SPACING`).
    next_status_at: Option<Instant>,
    /// Between `reloading` and `reloaded`: status lines say so.
    reloading: bool,
    /// Half `WATCHDOG_USEC`, floored; `None` when the manager wants no pings.
    watchdog_interval: Option<Duration>,
    /// The errno of the last refusal, while sends keep failing; `None` once one passes.
    refusing: Option<Refusal>,
    /// When the last warning about refusals was logged.
    last_warning: Option<Instant>,
    counters: NotifyCounters,
}

/// A run of refused sends, from the first to the next success.
struct Refusal {
    errno: i32,
    /// Sends refused in this run.
    refused: u64,
    /// Whether this run was announced in the log (so its end is too).
    logged: bool,
}

impl SystemdNotifier {
    /// The notifier for `NOTIFY_SOCKET`, or `None` when it is unset or empty (minder
    /// was not started by a service manager) or unusable (logged, and minder runs on
    /// without notifying).
    pub fn from_env() -> Option<SystemdNotifier> {
        let value = std::env::var_os("NOTIFY_SOCKET").filter(|value| !value.is_empty())?;
        let name = value.to_string_lossy().into_owned();
        let address = match parse_address(&value) {
            Ok(address) => address,
            Err(problem) => {
                tracing::warn!("NOTIFY_SOCKET={name}: {problem}; not notifying the manager");
                return None;
            }
        };
        // std opens it with SOCK_CLOEXEC; O_NONBLOCK makes every send fail with EAGAIN
        // instead of waiting for room in the manager's queue.
        let socket = match UnixDatagram::unbound().and_then(|socket| {
            socket.set_nonblocking(true)?;
            Ok(socket)
        }) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!("NOTIFY_SOCKET={name}: create a socket: {error}");
                return None;
            }
        };
        let watchdog_interval = sd_notify::watchdog_enabled()
            .filter(|period| !period.is_zero())
            .map(|period| {
                let interval = ping_interval(period);
                if interval > period / 2 {
                    tracing::warn!(
                        "WATCHDOG_USEC={} asks for a ping every {:?}; pinging every {:?}, \
                         the shortest interval minder uses",
                        period.as_micros(),
                        period / 2,
                        interval
                    );
                }
                interval
            });
        Some(SystemdNotifier {
            socket,
            address,
            name,
            pending_state: None,
            last_attempt: None,
            status: String::new(),
            rendered: String::new(),
            status_pending: false,
            next_status_at: None,
            reloading: false,
            watchdog_interval,
            refusing: None,
            last_warning: None,
            counters: NotifyCounters::default(),
        })
    }

    /// How often the loop should call `ping_watchdog`, if at all.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// `READY=1` with `status` as the `STATUS=` line; kept and retried until delivered.
    pub fn ready(&mut self, status: &str) {
        self.note_status(status);
        self.set_state(&[NotifyState::Ready]);
        self.retry();
    }

    /// `STOPPING=1`; kept and retried until delivered (replacing an undelivered
    /// `READY=1`). It goes at the loop's next `set_status` or `retry`, which comes at
    /// the end of the same turn, so it carries the status of the shutdown it announces
    /// (`draining (N s left)`) rather than the last one of the running tree.
    pub fn stopping(&mut self) {
        self.set_state(&[NotifyState::Stopping]);
    }

    /// A reload begins: `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC now, which
    /// systemd's `Type=notify-reload` requires to match the reload to its request);
    /// status lines say "reloading" until `reloaded`.
    pub fn reloading(&mut self) {
        self.reloading = true;
        let status = self.status.clone();
        self.note_status(&status);
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.set_state(&[NotifyState::Reloading, now]),
            // CLOCK_MONOTONIC cannot fail on Linux; without it, RELOADING=1 still goes.
            Err(_) => self.set_state(&[NotifyState::Reloading]),
        }
        // At once: a reload done within the same turn must not replace it unseen.
        self.retry();
    }

    /// The reload is done: `READY=1` again, with the current status.
    pub fn reloaded(&mut self) {
        self.reloading = false;
        let status = self.status.clone();
        self.note_status(&status);
        self.set_state(&[NotifyState::Ready]);
        self.retry();
    }

    /// The tree's one-line summary (`summary`): sent when it differs from the last
    /// one, no more than once per `STATUS_SPACING`, and also retries an undelivered
    /// state message. Cheap enough to call after every turn of the loop.
    pub fn set_status(&mut self, status: &str) {
        self.note_status(status);
        self.retry();
    }

    /// Records `status` as the latest summary; its line (marked while a reload runs)
    /// is to be sent if it differs from the last one.
    fn note_status(&mut self, status: &str) {
        status.clone_into(&mut self.status);
        let line = if self.reloading {
            format!("reloading; {status}")
        } else {
            status.to_string()
        };
        if line != self.rendered {
            self.rendered = line;
            self.status_pending = true;
        }
    }

    /// `WATCHDOG=1`, once; dropped (and counted) if refused.
    pub fn ping_watchdog(&mut self) {
        // A state message waiting for room goes first: it matters more.
        self.retry();
        if !self.send(&message(&[NotifyState::Watchdog])) {
            self.counters.pings_dropped += 1;
        }
    }

    /// Sends the undelivered state message again (with the current status), or else a
    /// changed status once its spacing allows. Cheap enough to call at every wake-up of
    /// the loop: with nothing waiting it does nothing.
    pub fn retry(&mut self) {
        let now = Instant::now();
        if let Some(state) = self.pending_state.take() {
            self.last_attempt = Some(now);
            let mut message = state.clone();
            if !self.rendered.is_empty() {
                let _ = writeln!(message, "{}", NotifyState::Status(&self.rendered));
            }
            if self.send(&message) {
                self.status_pending = false;
            } else {
                self.pending_state = Some(state);
            }
            return;
        }
        if self.status_pending && self.next_status_at.is_none_or(|at| now >= at) {
            let message = message(&[NotifyState::Status(&self.rendered)]);
            if self.send(&message) {
                self.status_pending = false;
                self.next_status_at = Some(now + STATUS_SPACING);
            } else {
                self.next_status_at = Some(now + STATE_RETRY);
            }
        }
    }

    /// When the loop should call `retry` if nothing wakes it before; `None` when
    /// nothing is waiting.
    pub fn retry_at(&self) -> Option<Instant> {
        // A waiting status goes with the waiting state message, so only the state's
        // retry counts then; the status's own time would wake the loop for nothing
        // (and, being past, again and again).
        if self.pending_state.is_some() {
            return Some(
                self.last_attempt
                    .map_or_else(Instant::now, |at| at + STATE_RETRY),
            );
        }
        self.status_pending
            .then(|| self.next_status_at.unwrap_or_else(Instant::now))
    }

    /// Whether a state message is still undelivered.
    pub fn has_pending_state(&self) -> bool {
        self.pending_state.is_some()
    }

    pub fn counters(&self) -> NotifyCounters {
        self.counters
    }

    /// Makes `states` the state message to deliver (sent by the next `retry`).
    fn set_state(&mut self, states: &[NotifyState]) {
        if let Some(replaced) = self.pending_state.take() {
            tracing::debug!(
                "replacing the undelivered {:?} for the service manager",
                replaced.trim_end()
            );
        }
        self.pending_state = Some(message(states));
    }

    /// One non-blocking send; whether the manager's socket took the message.
    fn send(&mut self, message: &str) -> bool {
        let result = loop {
            match self.socket.send_to_addr(message.as_bytes(), &self.address) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            // A datagram is sent whole or not at all.
            Ok(_) => {
                self.counters.sent += 1;
                if let Some(refusal) = self.refusing.take()
                    && refusal.logged
                {
                    tracing::info!(
                        "the service manager's notify socket {} accepts messages again \
                         ({} refused meanwhile)",
                        self.name,
                        refusal.refused
                    );
                }
                true
            }
            Err(error) => {
                let errno = error.raw_os_error().unwrap_or(0);
                if errno == libc::EAGAIN {
                    self.counters.queue_full += 1;
                } else {
                    self.counters.failed += 1;
                }
                self.note_refusal(errno, &error);
                false
            }
        }
    }

    /// Logs the start of a run of refusals (or a change of its cause), at most once per
    /// `WARNING_SPACING`; counts the refusal in the run.
    fn note_refusal(&mut self, errno: i32, error: &io::Error) {
        let mut announced = false;
        match &mut self.refusing {
            Some(refusal) if refusal.errno == errno => {
                refusal.refused += 1;
                return;
            }
            // A new cause within the same run: its end is still worth a line if the
            // run's start was logged.
            Some(refusal) => announced = refusal.logged,
            None => {}
        }
        let now = Instant::now();
        let may_warn = self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARNING_SPACING);
        if may_warn {
            self.last_warning = Some(now);
            if errno == libc::EAGAIN {
                tracing::warn!(
                    "the service manager's notify socket {} is full (nobody reads it): \
                     watchdog pings are dropped, READY=1/STOPPING=1 are kept and sent \
                     again; further refusals are counted, not logged",
                    self.name
                );
            } else {
                tracing::warn!(
                    "notify the service manager at {}: {error}; READY=1/STOPPING=1 are \
                     kept and sent again, further failures are counted, not logged",
                    self.name
                );
            }
        }
        self.refusing = Some(Refusal {
            errno,
            refused: 1,
            logged: may_warn || announced,
        });
    }
}

/// At most this many services are named in a status line; the rest are counted.
const STATUS_NAMES: usize = 3;

/// The tree in one line, for `STATUS=` (what `systemctl status` shows beside
/// "Status:"): `12/12 ready`; `11/12 ready, api restarting (3 in 30s)` while a service
/// waits out its backoff (with its group's restarts in the budget's window);
/// `draining (4 s left)` after a shutdown request with `drain_delay`; `stopping: db
/// (4.1 s)` for the services the shutdown waits for, longest first. Services an
/// operator stopped are counted apart (`, 1 stopped`) rather than as not ready; a
/// finished oneshot or temporary service counts as ready.
pub fn summary(supervisor: &Supervisor) -> String {
    let now = supervisor.now();
    // The live tree: after a reload, ids are no longer 0..count (removed services keep
    // theirs, added ones get new ones past them).
    let views = || {
        supervisor
            .services()
            .filter_map(|(id, _)| supervisor.view(id))
    };
    match supervisor.phase_view() {
        PhaseView::Draining { until, .. } => {
            let left = until.saturating_sub(now);
            // Whole seconds, rounded up: "0 s left" would read as over.
            let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            format!("draining ({seconds} s left)")
        }
        PhaseView::Stopping { .. } => {
            let mut stopping: Vec<(Time, &str)> = views()
                .filter_map(|view| Some((view.stopping?.since, view.name)))
                .collect();
            if stopping.is_empty() {
                return "stopping".into();
            }
            stopping.sort();
            let named: Vec<String> = stopping
                .iter()
                .take(STATUS_NAMES)
                .map(|(since, name)| {
                    format!("{name} ({:.1} s)", now.saturating_sub(*since).as_secs_f64())
                })
                .collect();
            format!(
                "stopping: {}{}",
                named.join(", "),
                more(stopping.len(), STATUS_NAMES)
            )
        }
        PhaseView::Exited => "exiting".into(),
        PhaseView::Running => {
            let (mut total, mut ready, mut held) = (0usize, 0usize, 0usize);
            let mut restarting = Vec::new();
            for view in views() {
                if view.held {
                    held += 1;
                    continue;
                }
                total += 1;
                if view.ready || view.state == "done" {
                    ready += 1;
                }
                if view.state == "backoff" {
                    restarting.push(view);
                }
            }
            let mut line = format!("{ready}/{total} ready");
            if held > 0 {
                let _ = write!(line, ", {held} stopped");
            }
            for view in restarting.iter().take(STATUS_NAMES) {
                let _ = write!(line, ", {} restarting", view.name);
                if let Some(group) = supervisor.group_view(view.group) {
                    let _ = write!(
                        line,
                        " ({} in {})",
                        group.restarts_in_period,
                        humantime::format_duration(group.period)
                    );
                }
            }
            line.push_str(&more(restarting.len(), STATUS_NAMES));
            line
        }
    }
}

/// `, +N more` when `count` is over what a status line names.
fn more(count: usize, named: usize) -> String {
    if count > named {
        format!(", +{} more", count - named)
    } else {
        String::new()
    }
}

/// The ping interval for a manager's watchdog `period`: half of it, as sd_watchdog_enabled(3)
/// advises, but never below `WATCHDOG_PING_FLOOR`.
pub fn ping_interval(period: Duration) -> Duration {
    (period / 2).max(WATCHDOG_PING_FLOOR)
}

/// `NOTIFY_SOCKET` as a socket address: an absolute path, or `@name` for `name` in the
/// abstract namespace (sd_notify(3)). Anything else (a relative path, the `vsock:`
/// addresses of virtual machines) is refused with the reason.
pub fn parse_address(value: &OsStr) -> Result<SocketAddr, String> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(Path::new(value))
            .map_err(|error| format!("not a usable socket path ({error}; at most 107 bytes fit)")),
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])
            .map_err(|error| format!("not a usable abstract socket name ({error})")),
        _ => Err("expected an absolute path or @ followed by an abstract socket name".into()),
    }
}

/// The datagram for `states`: one `KEY=VALUE` line each.
fn message(states: &[NotifyState]) -> String {
    let mut text = String::new();
    for state in states {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{state}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ping_interval_is_half_the_period_with_a_floor() {
        assert_eq!(
            ping_interval(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(ping_interval(Duration::from_micros(1)), WATCHDOG_PING_FLOOR);
        assert_eq!(ping_interval(WATCHDOG_PING_FLOOR * 2), WATCHDOG_PING_FLOOR);
    }

    #[test]
    fn notify_socket_addresses_are_paths_or_abstract_names() {
        let path = parse_address(OsStr::new("/run/systemd/notify")).expect("a path");
        assert_eq!(path.as_pathname(), Some(Path::new("/run/systemd/notify")));
        let abstract_name = parse_address(OsStr::new("@minder/test")).expect("abstract");
        assert_eq!(abstract_name.as_abstract_name(), Some(&b"minder/test"[..]));
        for refused in [
            "relative.sock",
            "vsock:2:1234",
            &format!("/{}", "x".repeat(200)),
        ] {
            assert!(parse_address(OsStr::new(refused)).is_err(), "{refused}");
        }
    }

    /// A notifier sending to a fresh manager socket of the test's own.
    fn notifier_and_manager() -> (tempfile::TempDir, SystemdNotifier, UnixDatagram) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("manager.sock");
        let manager = UnixDatagram::bind(&path).expect("bind");
        manager.set_nonblocking(true).expect("non-blocking");
        let socket = UnixDatagram::unbound().expect("socket");
        socket.set_nonblocking(true).expect("non-blocking");
        let notifier = SystemdNotifier {
            socket,
            address: SocketAddr::from_pathname(&path).expect("address"),
            name: path.display().to_string(),
            pending_state: None,
            last_attempt: None,
            status: String::new(),
            rendered: String::new(),
            status_pending: false,
            next_status_at: None,
            reloading: false,
            watchdog_interval: None,
            refusing: None,
            last_warning: None,
            counters: NotifyCounters::default(),
        };
        (dir, notifier, manager)
    }

    fn drain(manager: &UnixDatagram) -> Vec<String> {
        let mut buffer = [0u8; 512];
        let mut received = Vec::new();
        while let Ok(length) = manager.recv(&mut buffer) {
            received.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        received
    }

    /// The summary of a tree from a config, driven by a simulator script.
    fn summary_after(config: &str, script: &str) -> String {
        let spec = crate::config::load_str(config, "test.toml", Path::new("/"))
            .unwrap_or_else(|errors| panic!("{errors:?}"));
        let mut sim = minder_core::sim::Sim::new(&crate::spec::lower(&spec).0);
        sim.run_script(script).expect("script");
        summary(&sim.supervisor)
    }

    /// Regression: the summary walked ids 0..count, which after a reload that removed
    /// one service and added another still counted the removed one and missed the new.
    #[test]
    fn after_a_reload_the_summary_counts_the_new_tree() {
        let load = |text: &str| {
            let spec = crate::config::load_str(text, "test.toml", Path::new("/"))
                .unwrap_or_else(|errors| panic!("{errors:?}"));
            crate::spec::lower(&spec).0
        };
        let before = load("[service.a]\ncommand = \"x\"\n[service.gone]\ncommand = \"x\"\n");
        let after = load(
            "[service.a]\ncommand = \"x\"\n[service.new1]\ncommand = \"x\"\n[service.new2]\ncommand = \"x\"\n",
        );
        let mut sim = minder_core::sim::Sim::new(&before);
        sim.define("after", after);
        sim.run_script("exit a 1\nreload after\nadvance 1s")
            .expect("script");
        assert_eq!(summary(&sim.supervisor), "3/3 ready");
    }

    #[test]
    fn the_summary_counts_ready_names_restarts_and_counts_the_rest() {
        let mut config = String::from("[daemon]\ndrain_delay = \"3s\"\n");
        for name in ["a", "b", "c", "d", "e"] {
            config.push_str(&format!(
                "[service.{name}]\ncommand = \"x\"\nbackoff = {{ initial = \"5s\", jitter = 0.0 }}\n"
            ));
        }
        assert_eq!(summary_after(&config, ""), "5/5 ready");
        assert_eq!(
            summary_after(&config, "stop e\nadvance 1s\nexit a 1"),
            "3/4 ready, 1 stopped, a restarting (1 in 30s)"
        );
        assert_eq!(
            summary_after(&config, "exit a 1\nexit b 1\nexit c 1\nexit d 1"),
            "1/5 ready, a restarting (4 in 30s), b restarting (4 in 30s), \
             c restarting (4 in 30s), +1 more"
        );
        assert_eq!(
            summary_after(&config, "receive 15\nadvance 500ms"),
            "draining (3 s left)"
        );
        // The core's clock is that of its last event: here the progress tick at 4 s.
        assert_eq!(
            summary_after(
                &config,
                "stubborn e\nstubborn d\nreceive 15\nadvance 4500ms"
            ),
            "stopping: e (1.0 s)"
        );
    }

    #[test]
    fn status_changes_are_coalesced_and_only_the_latest_goes() {
        let (_dir, mut notifier, manager) = notifier_and_manager();
        notifier.set_status("0/2 ready");
        notifier.set_status("0/2 ready");
        notifier.set_status("1/2 ready");
        notifier.set_status("2/2 ready");
        // The first went at once; the next two came within the spacing, and only the
        // latest waits for its turn.
        assert_eq!(drain(&manager), ["STATUS=0/2 ready\n"]);
        let due = notifier.retry_at().expect("a status is waiting");
        assert!(due > Instant::now(), "not before the spacing has passed");
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        notifier.retry();
        assert_eq!(drain(&manager), ["STATUS=2/2 ready\n"]);
        assert_eq!(notifier.retry_at(), None);
        // A state message carries the current status, whatever the spacing: the loop
        // announces the shutdown, then hands over the status at the end of its turn.
        notifier.stopping();
        notifier.set_status("draining (2 s left)");
        assert_eq!(
            drain(&manager),
            ["STOPPING=1\nSTATUS=draining (2 s left)\n"]
        );
    }

    #[test]
    fn a_reload_is_announced_with_the_monotonic_clock_and_ends_ready() {
        let (_dir, mut notifier, manager) = notifier_and_manager();
        notifier.ready("2/2 ready");
        notifier.reloading();
        notifier.reloaded();
        let received = drain(&manager);
        assert_eq!(received.len(), 3, "{received:?}");
        assert_eq!(received[0], "READY=1\nSTATUS=2/2 ready\n");
        let lines: Vec<&str> = received[1].lines().collect();
        assert_eq!(lines[0], "RELOADING=1");
        let usec: i128 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {received:?}"));
        assert!(usec > 0);
        assert_eq!(lines[2], "STATUS=reloading; 2/2 ready");
        assert_eq!(received[2], "READY=1\nSTATUS=2/2 ready\n");
    }

    #[test]
    fn a_full_queue_keeps_the_latest_state_and_drops_pings() {
        let (_dir, mut notifier, manager) = notifier_and_manager();
        // Fill the manager's queue with pings until the kernel refuses one.
        let mut pings = 0;
        while notifier.counters().pings_dropped == 0 {
            notifier.ping_watchdog();
            pings += 1;
            assert!(pings < 10_000, "the queue never filled");
        }
        notifier.ready("1 services up");
        notifier.stopping();
        notifier.set_status("stopping");
        assert!(notifier.has_pending_state());
        // The status waits with the refused state message, for its retry: the loop is
        // not woken at once (before the fix it was, again and again, a busy loop).
        let retry_at = notifier.retry_at().expect("a retry is due");
        assert!(
            retry_at >= Instant::now() + STATE_RETRY / 2,
            "the retry is due at once"
        );
        // Drain: the pings that got in, then only the latest state once it is retried.
        let mut buffer = [0u8; 256];
        let mut received = Vec::new();
        while let Ok(length) = manager.recv(&mut buffer) {
            received.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        assert_eq!(received.len(), pings - 1);
        assert!(received.iter().all(|m| m == "WATCHDOG=1\n"), "{received:?}");
        notifier.retry();
        assert!(!notifier.has_pending_state());
        let length = manager.recv(&mut buffer).expect("the retried state");
        assert_eq!(&buffer[..length], b"STOPPING=1\nSTATUS=stopping\n");
        let counters = notifier.counters();
        assert_eq!(counters.pings_dropped, 1);
        assert_eq!(counters.sent, pings as u64);
        assert!(counters.queue_full >= 3, "{counters:?}");
    }
}
