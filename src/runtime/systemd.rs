//! minder's own side of the systemd notify protocol (sd_notify(3)): `READY=1` with a
//! `STATUS=` line once the tree is up, `STOPPING=1` at shutdown, and `WATCHDOG=1`
//! pings, sent to the service manager's socket named by `NOTIFY_SOCKET`.
//!
//! Owns one unbound datagram socket, opened once when minder starts, close-on-exec and
//! non-blocking, and the address `NOTIFY_SOCKET` names (an absolute path, or `@name`
//! for a socket in the abstract namespace). Every message is one `sendto` that never
//! waits: a manager that does not drain its socket (a busy or wedged PID 1; the kernel
//! queues only `net.unix.max_dgram_qlen` datagrams, 10 by default) must not stall
//! minder's loop, which also reaps, restarts and shuts down. What happens to a message
//! that is refused:
//!
//! - A state message (`READY=1` with its status, `STOPPING=1`) is kept and sent again
//!   at the loop's next wake-up, and at the latest after `STATE_RETRY`. Only the latest
//!   one is kept: a newer state replaces an undelivered older one, since the manager
//!   only needs to know where minder is now (`STOPPING=1` makes an undelivered
//!   `READY=1` moot).
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
    /// The latest state message not delivered yet, sent again at each `retry`.
    pending_state: Option<String>,
    /// When a send was last attempted for `pending_state`.
    last_attempt: Option<Instant>,
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

    /// `READY=1` and a `STATUS=` line; kept and retried until delivered.
    pub fn ready(&mut self, status: &str) {
        self.set_state(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `STOPPING=1`; kept and retried until delivered (replacing an undelivered
    /// `READY=1`).
    pub fn stopping(&mut self) {
        self.set_state(&[NotifyState::Stopping]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (systemd refuses a reload notification
    /// without the time it began); kept and retried until delivered, like `READY=1`.
    pub fn reloading(&mut self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.set_state(&[NotifyState::Reloading, now]),
            Err(error) => {
                tracing::debug!("read CLOCK_MONOTONIC for RELOADING=1: {error}");
                self.set_state(&[NotifyState::Reloading]);
            }
        }
    }

    /// `READY=1` and a `STATUS=` line after a reload.
    pub fn reloaded(&mut self, status: &str) {
        self.ready(status);
    }

    /// `WATCHDOG=1`, once; dropped (and counted) if refused.
    pub fn ping_watchdog(&mut self) {
        // A state message waiting for room goes first: it matters more.
        self.retry();
        if !self.send(&message(&[NotifyState::Watchdog])) {
            self.counters.pings_dropped += 1;
        }
    }

    /// Sends the undelivered state message again, if there is one. Cheap enough to call
    /// at every wake-up of the loop: without one it does nothing.
    pub fn retry(&mut self) {
        if let Some(state) = self.pending_state.take() {
            self.last_attempt = Some(Instant::now());
            if !self.send(&state) {
                self.pending_state = Some(state);
            }
        }
    }

    /// When the loop should call `retry` if nothing wakes it before; `None` when
    /// nothing is waiting.
    pub fn retry_at(&self) -> Option<Instant> {
        self.pending_state.as_ref()?;
        Some(
            self.last_attempt
                .map_or_else(Instant::now, |at| at + STATE_RETRY),
        )
    }

    /// Whether a state message is still undelivered.
    pub fn has_pending_state(&self) -> bool {
        self.pending_state.is_some()
    }

    pub fn counters(&self) -> NotifyCounters {
        self.counters
    }

    fn set_state(&mut self, states: &[NotifyState]) {
        if let Some(replaced) = self.pending_state.take() {
            tracing::debug!(
                "replacing the undelivered {:?} for the service manager",
                replaced.trim_end()
            );
        }
        self.pending_state = Some(message(states));
        self.retry();
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

    #[test]
    fn a_full_queue_keeps_the_latest_state_and_drops_pings() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("manager.sock");
        let manager = UnixDatagram::bind(&path).expect("bind");
        manager.set_nonblocking(true).expect("non-blocking");
        let mut notifier = SystemdNotifier {
            socket: UnixDatagram::unbound().expect("socket"),
            address: SocketAddr::from_pathname(&path).expect("address"),
            name: path.display().to_string(),
            pending_state: None,
            last_attempt: None,
            watchdog_interval: None,
            refusing: None,
            last_warning: None,
            counters: NotifyCounters::default(),
        };
        notifier.socket.set_nonblocking(true).expect("non-blocking");
        // Fill the manager's queue with pings until the kernel refuses one.
        let mut pings = 0;
        while notifier.counters().pings_dropped == 0 {
            notifier.ping_watchdog();
            pings += 1;
            assert!(pings < 10_000, "the queue never filled");
        }
        notifier.ready("1 services up");
        notifier.stopping();
        assert!(notifier.has_pending_state());
        assert!(notifier.retry_at().is_some());
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
        assert_eq!(&buffer[..length], b"STOPPING=1\n");
        let counters = notifier.counters();
        assert_eq!(counters.pings_dropped, 1);
        assert_eq!(counters.sent, pings as u64);
        assert!(counters.queue_full >= 3, "{counters:?}");
    }
}
