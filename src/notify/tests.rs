//! The notify server against real clients: `systemd-notify` (systemd 252) run as a
//! service, raw datagrams from the test process, processes of other sessions. The
//! reader tasks' facts are judged as the loop judges them (`Judge`): against the
//! `NotifySlot` of the process current when the fact is taken off the channel.
//!
//! Tests that spawn processes collect them with `process::reap`, which takes *any*
//! child of the test process, so they start with `own_process!` (one process per test
//! under any runner, see `crate::own_process`).
//! They need root (as CI runs them) to chown sockets and switch users.

use super::*;
use crate::process::{self, SpawnRequest, SpawnedProcess, StdioMode};
use crate::spec::ServiceSpec;
use crate::supervisor::ExitStatus;
use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::time::Instant;
use tokio::sync::mpsc::{self, UnboundedReceiver};

const SERVICE: ServiceId = ServiceId(4);

fn child(generation: u64) -> ChildRef {
    ChildRef {
        id: SERVICE,
        generation,
    }
}

fn server() -> (NotifyServer, Judge) {
    let (sender, facts) = mpsc::unbounded_channel();
    let server = NotifyServer::new(sender).unwrap_or_else(|error| panic!("{error}"));
    let judge = Judge {
        facts,
        slot: None,
        events: VecDeque::new(),
    };
    (server, judge)
}

/// What the loop does with the facts of one service's socket: judges each against
/// the slot of the process current when it takes the fact (none: dropped).
struct Judge {
    facts: UnboundedReceiver<Fact>,
    slot: Option<NotifySlot>,
    /// Events made and not yet looked at.
    events: VecDeque<Event>,
}

impl Judge {
    /// A new process of the service is current, as at a spawn: facts already on the
    /// channel are judged first, as the loop does in the turns before the spawn.
    fn set_current(&mut self, child: ChildRef, pid: i32) {
        self.judge_queued();
        self.slot = Some(NotifySlot::new(child, pid));
    }

    /// No process runs (its main process was reaped).
    fn clear_current(&mut self) {
        self.judge_queued();
        self.slot = None;
    }

    /// The current process's last `STATUS=`.
    fn status(&mut self) -> Option<String> {
        self.judge_queued();
        self.slot
            .as_ref()
            .and_then(|slot| slot.status().map(str::to_string))
    }

    fn judge_queued(&mut self) {
        while let Ok(fact) = self.facts.try_recv() {
            self.judge(fact);
        }
    }

    fn judge(&mut self, fact: Fact) {
        let Fact::Notify { service, message } = fact else {
            panic!("not a notify fact: {fact:?}");
        };
        assert_eq!(service, SERVICE);
        match &mut self.slot {
            Some(slot) => self.events.extend(slot.accept("web.1", &message)),
            None => unattributed("web.1"),
        }
    }

    /// The next event, or a panic after `within`.
    async fn next_event(&mut self, within: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.events.pop_front() {
                return event;
            }
            self.next_fact(deadline).await;
        }
    }

    /// Waits for one fact (a panic at `deadline`) and judges it.
    async fn next_fact(&mut self, deadline: tokio::time::Instant) {
        match tokio::time::timeout_at(deadline, self.facts.recv()).await {
            Ok(Some(fact)) => self.judge(fact),
            Ok(None) => panic!("fact channel closed"),
            Err(_) => panic!("no event by the deadline"),
        }
    }

    /// An event made from what has arrived so far, if any.
    fn try_recv(&mut self) -> Option<Event> {
        self.judge_queued();
        self.events.pop_front()
    }
}

fn socket(server: &mut NotifyServer) -> PathBuf {
    server
        .socket_for(SERVICE, "web.1", None)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// Sends `payload` from the test process, with `fds` attached.
fn send(path: &Path, payload: &[u8], fds: &[RawFd]) {
    let client = UnixDatagram::unbound().unwrap_or_else(|error| panic!("{error}"));
    let address = UnixAddr::new(path).unwrap_or_else(|error| panic!("{error}"));
    let control: Vec<ControlMessage> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    sendmsg(
        client.as_raw_fd(),
        &[IoSlice::new(payload)],
        &control,
        MsgFlags::empty(),
        Some(&address),
    )
    .unwrap_or_else(|error| panic!("sendmsg: {error}"));
}

fn our_pid() -> i32 {
    std::process::id() as i32
}

fn service(command: &[&str], user: Option<&str>) -> ServiceSpec {
    let mut spec = ServiceSpec::new(
        "t",
        command.iter().map(|s| s.to_string()).collect(),
        Path::new("/").to_path_buf(),
    );
    spec.user = user.map(str::to_string);
    spec
}

fn spawn_service(spec: &ServiceSpec, socket: &Path) -> SpawnedProcess {
    let env = environment(socket, None);
    process::spawn(&SpawnRequest::new(spec, StdioMode::Null, &env))
        .unwrap_or_else(|error| panic!("{error}"))
}

fn wait_for_exit(pid: i32) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, status)) = process::reap().into_iter().find(|(p, _)| *p == pid) {
            return status;
        }
        assert!(Instant::now() < deadline, "pid {pid} did not exit in 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// As `wait_for_exit`, letting the reader tasks run meanwhile.
async fn wait_for_exit_async(pid: i32) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, status)) = process::reap().into_iter().find(|(p, _)| *p == pid) {
            return status;
        }
        assert!(Instant::now() < deadline, "pid {pid} did not exit in 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn finish(pid: i32) {
    process::kill_group(pid);
    wait_for_exit(pid);
}

/// Waits (bounded) until `path` has content, and returns it.
async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn systemd_notify_ready_arrives_and_its_barrier_is_released_at_once() {
    crate::own_process::own_process!(
        systemd_notify_ready_arrives_and_its_barrier_is_released_at_once
    );
    let (mut server, mut events) = server();
    let path = socket(&mut server);
    let scratch = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let took = scratch.path().join("took-ms");
    // systemd-notify waits up to 5 s for the barrier fd it sends to be closed; how
    // long it took shows whether minder closed it.
    let script = format!(
        "start=$(date +%s%N); systemd-notify --ready --status='up and running'; \
         echo $(( ($(date +%s%N) - start) / 1000000 )) > {}; exec sleep 30",
        took.display()
    );
    let spec = service(&["/bin/sh", "-c", &script], None);
    let spawned = spawn_service(&spec, &path);
    events.set_current(child(1), spawned.pid);
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::Ready { child: child(1) }
    );
    let took_ms: u64 = wait_for_file(&took)
        .await
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    assert!(took_ms < 2000, "systemd-notify took {took_ms} ms");
    assert_eq!(events.status().as_deref(), Some("up and running"));
    finish(spawned.pid);
}

#[tokio::test]
async fn a_service_running_as_its_user_reaches_its_socket_and_another_user_does_not() {
    crate::own_process::own_process!(
        a_service_running_as_its_user_reaches_its_socket_and_another_user_does_not
    );
    let (mut server, mut events) = server();
    let path = server
        .socket_for(SERVICE, "web.1", Some((65534, 65534)))
        .unwrap_or_else(|error| panic!("{error}"));
    let metadata = std::fs::metadata(&path).unwrap_or_else(|error| panic!("{error}"));
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.mode() & 0o7777, 0o600);

    assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    let dir = std::fs::metadata(server.dir()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(dir.mode() & 0o7777, 0o711);

    // Another user (daemon, uid 1) cannot send: systemd-notify fails (the reader runs
    // meanwhile; were the socket reachable, the message would be read, its barrier
    // closed, and systemd-notify would succeed).
    let intruder = spawn_service(
        &service(&["systemd-notify", "--ready"], Some("daemon")),
        &path,
    );
    assert_ne!(
        wait_for_exit_async(intruder.pid).await,
        ExitStatus::Exited(0)
    );

    // The service's own user can.
    let spawned = spawn_service(
        &service(
            &["/bin/sh", "-c", "systemd-notify --ready; exec sleep 30"],
            Some("nobody"),
        ),
        &path,
    );
    events.set_current(child(2), spawned.pid);
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::Ready { child: child(2) }
    );
    finish(spawned.pid);
}

#[tokio::test]
async fn a_message_from_outside_the_services_session_is_dropped() {
    crate::own_process::own_process!(a_message_from_outside_the_services_session_is_dropped);
    let (mut server, mut events) = server();
    let path = socket(&mut server);
    // The service speaks only after the intruder's datagram is queued, so by the time
    // its READY=1 is handled, the intruder's has been too.
    let spec = service(
        &[
            "/bin/sh",
            "-c",
            "sleep 0.3; systemd-notify --ready; exec sleep 30",
        ],
        None,
    );
    let spawned = spawn_service(&spec, &path);
    events.set_current(child(1), spawned.pid);
    // Negative control: the test process is really in another session.
    let our_session = nix::unistd::getsid(None).map(|pid| pid.as_raw());
    assert_ne!(our_session, Ok(spawned.pid));
    send(&path, b"STATUS=intruder\nWATCHDOG=1\nREADY=1\n", &[]);
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::Ready { child: child(1) }
    );
    assert!(
        events.try_recv().is_none(),
        "the intruder's message made an event"
    );
    assert_ne!(events.status().as_deref(), Some("intruder"));
    finish(spawned.pid);
}

#[tokio::test]
async fn watchdog_messages_and_status_become_events_for_the_current_generation() {
    let (mut server, mut events) = server();
    let path = socket(&mut server);
    // The test process as the service's main process.
    events.set_current(child(9), our_pid());
    send(
        &path,
        b"STATUS=warming up\nWATCHDOG=1\nWATCHDOG_USEC=2500000\nWATCHDOG_USEC=0\n\
          WATCHDOG_USEC=soon\nMAINPID=1\nSTOPPING=1\nX-UNKNOWN=1\nREADY=1",
        &[],
    );
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::WatchdogPing { child: child(9) }
    );
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::WatchdogTimeout {
            child: child(9),
            timeout: Duration::from_micros(2_500_000)
        }
    );
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::Ready { child: child(9) }
    );
    assert_eq!(events.status().as_deref(), Some("warming up"));
    send(&path, b"WATCHDOG=trigger", &[]);
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::Failed {
            child: child(9),
            reason: FailureReason::Watchdog
        }
    );
    // A new generation starts without the old status; while no process runs nothing
    // is attributed at all.
    events.set_current(child(10), our_pid());
    assert_eq!(events.status(), None);
    events.clear_current();
    send(&path, b"READY=1", &[]);
    events
        .next_fact(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(events.try_recv(), None);
    events.set_current(child(11), our_pid());
    send(&path, b"WATCHDOG=1", &[]);
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::WatchdogPing { child: child(11) }
    );
}

/// A pipe whose write end is sent away: `closed` is true once every copy of the
/// write end is closed (end of file on the read end).
struct Probe {
    read: tokio::net::unix::pipe::Receiver,
}

impl Probe {
    fn new() -> (Probe, OwnedFd) {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .unwrap_or_else(|error| panic!("{error}"));
        let read = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
            .unwrap_or_else(|error| panic!("{error}"));
        (Probe { read }, write)
    }

    async fn assert_closed_soon(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            assert!(!wait.is_zero(), "an fd sent to minder was not closed");
            if tokio::time::timeout(wait, self.read.readable())
                .await
                .is_err()
            {
                continue;
            }
            let mut byte = [0u8; 1];
            match self.read.try_read(&mut byte) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => panic!("{error}"),
            }
        }
    }
}

async fn send_fds_and_check_closed(path: &Path, payload: &[u8], count: usize) {
    let mut probes = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..count {
        let (probe, write) = Probe::new();
        probes.push(probe);
        writes.push(write);
    }
    let raw: Vec<RawFd> = writes.iter().map(AsRawFd::as_raw_fd).collect();
    send(path, payload, &raw);
    drop(writes);
    for probe in &probes {
        probe.assert_closed_soon().await;
    }
}

#[tokio::test]
async fn every_fd_that_arrives_is_closed_accepted_or_not() {
    crate::own_process::own_process!(every_fd_that_arrives_is_closed_accepted_or_not);
    let (mut server, mut events) = server();
    let path = socket(&mut server);
    // No current process: dropped, fds closed anyway.
    send_fds_and_check_closed(&path, b"BARRIER=1", 3).await;
    // Accepted, several fds.
    events.set_current(child(1), our_pid());
    send_fds_and_check_closed(&path, b"BARRIER=1", 5).await;
    send_fds_and_check_closed(&path, b"FDSTORE=1\nREADY=1", 2).await;
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::Ready { child: child(1) }
    );
    // From outside the service: dropped, fds closed.
    let spawned = spawn_service(&service(&["sleep", "30"], None), &path);
    events.set_current(child(2), spawned.pid);
    send_fds_and_check_closed(&path, b"READY=1\nBARRIER=1", 4).await;
    // The most one message can carry.
    events.set_current(child(3), our_pid());
    send_fds_and_check_closed(&path, b"BARRIER=1", MAX_FDS).await;
    assert_eq!(events.try_recv(), None);
    finish(spawned.pid);
}

#[tokio::test]
async fn garbage_and_truncated_datagrams_make_no_event_and_no_panic() {
    let (mut server, mut events) = server();
    let path = socket(&mut server);
    events.set_current(child(1), our_pid());
    let mut oversized = b"READY=1\n".to_vec();
    oversized.resize(MAX_DATAGRAM + 100, b'x');
    let garbage: [&[u8]; 8] = [
        b"",
        b"\n\n\n",
        b"=",
        b"READY",
        b"READY=0\nREADY=yes\nWATCHDOG=2",
        &[0xff, 0xfe, b'=', 0x00, b'\n', 0xc3],
        b"STATUS=\xff\xfe broken utf-8",
        &oversized,
    ];
    for datagram in garbage {
        send(&path, datagram, &[]);
    }
    send(&path, b"WATCHDOG=1", &[]);
    // The marker is the first event: nothing before it made one.
    assert_eq!(
        events.next_event(Duration::from_secs(5)).await,
        Event::WatchdogPing { child: child(1) }
    );
    assert_eq!(
        events.status().as_deref(),
        Some("\u{fffd}\u{fffd} broken utf-8")
    );
}

#[tokio::test]
async fn sockets_live_across_restarts_and_go_away_with_the_server() {
    let (mut server, _events) = server();
    let first = socket(&mut server);
    assert_eq!(
        first.file_name().and_then(|n| n.to_str()),
        Some("notify-web.1.sock")
    );
    assert_eq!(socket(&mut server), first);
    // A name that is not a plain file name uses the slot number.
    let odd = server
        .socket_for(ServiceId(5), "../escape", None)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(odd.parent(), Some(server.dir()));
    assert_eq!(
        odd.file_name().and_then(|n| n.to_str()),
        Some("notify-#5.sock")
    );
    server.remove(ServiceId(5));
    assert!(!odd.exists());
    let dir = server.dir().to_path_buf();
    assert!(dir.starts_with("/run"), "{}", dir.display());
    drop(server);
    assert!(!first.exists() && !dir.exists());
}

#[tokio::test]
async fn a_path_too_long_for_a_socket_address_is_an_error() {
    let (sender, _events) = mpsc::unbounded_channel();
    let base = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let long = base.path().join("d".repeat(100));
    std::fs::create_dir(&long).unwrap_or_else(|error| panic!("{error}"));
    let mut server = NotifyServer::in_dir(sender, &long).unwrap_or_else(|e| panic!("{e}"));
    let error = server
        .socket_for(SERVICE, "web", None)
        .err()
        .unwrap_or_else(|| panic!("a socket path over 107 bytes was accepted"));
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("more than the 107"), "{error}");
}

#[tokio::test]
async fn a_stale_directory_of_the_same_pid_is_replaced() {
    let (sender, _events) = mpsc::unbounded_channel();
    let base = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let stale = base.path().join(format!("minder-{}", std::process::id()));
    std::fs::create_dir(&stale).unwrap_or_else(|error| panic!("{error}"));
    std::fs::write(stale.join("notify-old.sock"), b"").unwrap_or_else(|e| panic!("{e}"));
    let server = NotifyServer::in_dir(sender, base.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!stale.join("notify-old.sock").exists());
    drop(server);
    // Someone else's entry at that name is refused, never followed.
    let (sender, _events) = mpsc::unbounded_channel();
    std::os::unix::fs::symlink("/etc", &stale).unwrap_or_else(|error| panic!("{error}"));
    assert!(NotifyServer::in_dir(sender, base.path()).is_err());
    assert!(Path::new("/etc/passwd").exists());
}

#[test]
fn environment_has_notify_socket_and_watchdog_usec_but_no_watchdog_pid() {
    let path = Path::new("/run/minder-1/notify-web.sock");
    assert_eq!(
        environment(path, Some(Duration::from_secs(30))),
        [
            (
                "NOTIFY_SOCKET".to_string(),
                "/run/minder-1/notify-web.sock".to_string()
            ),
            ("WATCHDOG_USEC".to_string(), "30000000".to_string()),
        ]
    );
    assert_eq!(environment(path, None).len(), 1);
}

#[test]
fn a_sender_belongs_by_its_pid_session_or_group_as_read_at_once() {
    let place = |pid: i32| Sender::read(Some(pid));
    assert!(place(our_pid()).belongs_to(our_pid()).is_ok());
    assert!(Sender::read(Some(0)).belongs_to(our_pid()).is_err());
    assert!(Sender::read(None).belongs_to(our_pid()).is_err());
    // Our own session and process group contain us.
    let session = nix::unistd::getsid(None).map_or(-1, |pid| pid.as_raw());
    assert!(place(our_pid()).belongs_to(session).is_ok());
    let group = nix::unistd::getpgrp().as_raw();
    assert!(place(our_pid()).belongs_to(group).is_ok());
    // pid 1 (init) is not in our session unless we are it.
    if our_pid() != 1 && session != 1 {
        assert!(place(1).belongs_to(our_pid()).is_err());
    }
    // What was read is what counts: a process read while alive stays placed.
    let read_earlier = Sender::Process {
        pid: 999_999,
        place: Ok((40, 30)),
    };
    assert!(read_earlier.belongs_to(30).is_ok());
    assert!(read_earlier.belongs_to(40).is_ok());
    assert!(read_earlier.belongs_to(41).is_err());
    // A sender gone before it was read cannot be placed.
    let gone = Sender::Process {
        pid: 999_999,
        place: Err("read /proc/999999/stat: No such file or directory".into()),
    };
    assert!(gone.belongs_to(41).is_err());
}

#[tokio::test]
async fn regression_a_long_named_service_and_a_service_named_by_its_slot_shared_a_socket() {
    let (mut server, _events) = server();
    // Too long for a socket path by name: it falls back to its slot, 0.
    let long = server
        .socket_for(ServiceId(0), &"a".repeat(100), None)
        .unwrap_or_else(|error| panic!("{error}"));
    let named_zero = server
        .socket_for(ServiceId(1), "0", None)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_ne!(long, named_zero);
    // The first socket was not removed to make room for the second.
    assert!(long.exists() && named_zero.exists());
}

/// The directory is locked from the moment it has its name (it is made and locked
/// under another name, then renamed into place), so a minder of another pid namespace
/// sharing the base directory never sees it unlocked; nothing of the staging is left.
#[tokio::test]
async fn the_directory_is_locked_as_soon_as_it_has_its_name() {
    let (sender, _events) = mpsc::unbounded_channel();
    let base = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let server = NotifyServer::in_dir(sender, base.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(super::lock_dir(server.dir()), Ok(None)),
        "the directory can be locked by someone else"
    );
    let names: Vec<String> = std::fs::read_dir(base.path())
        .unwrap_or_else(|error| panic!("{error}"))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(names, [format!("minder-{}", std::process::id())]);
    let mode = std::fs::metadata(server.dir())
        .unwrap_or_else(|error| panic!("{error}"))
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o711);
}
