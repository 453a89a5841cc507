//! The sd_notify server: one datagram socket per service with `ready.notify = true`,
//! read by a task on the loop's runtime that sends each datagram to the loop as a
//! `Fact::Notify`; the loop, which knows the service's current process, turns its
//! `READY=1`, `WATCHDOG=1`, `WATCHDOG_USEC=` and `WATCHDOG=trigger` lines into events for
//! the core through that incarnation's `NotifySlot` (which also keeps its last `STATUS=`).
//!
//! Owns a private directory (`$RUNTIME_DIR/minder-<pid>/`, mode 0711, removed on drop,
//! and held with an exclusive `flock` for minder's life) and in it one socket per service, `notify-<name>.sock`, owned by the service's uid
//! and gid with mode 0600, so only that user (and root) can reach it: the socket says
//! which service a message is for. Which *process* of the service sent it is checked
//! too: the kernel attaches the sender's pid (SCM_CREDENTIALS, enabled by
//! SO_PASSCRED), and a sender must be the service's main process or in its session or
//! process group, as /proc shows at the time the message is read: the reader task reads
//! the sender's `/proc/PID/stat` before anything else and sends what it found along
//! (`Sender`); the loop compares it with the main pid of the incarnation it holds. A
//! message that arrives while the service has no running process is dropped. The reader
//! shares no state with the loop: it only sends.
//!
//! Every file descriptor that arrives with a message is closed by the reader at once,
//! right after the sender's /proc entry was read, whatever the message said: `systemd-notify` (v252) sends `BARRIER=1` with a pipe and
//! waits up to 5 s for minder to close it, and a client that passes fds for a store
//! (`FDSTORE=1`) gets them closed, since minder keeps none.
//!
//! It must not decide anything (the core judges readiness and the watchdog) and must not
//! block the loop: sockets are non-blocking and read only when readable. Nothing a
//! client sends can make it panic.
//!
//! A minder killed by SIGKILL leaves its directory behind. `remove_stale_dirs`, run at
//! every start, removes such leftovers, and only those: a directory named exactly
//! `minder-<pid>`, owned by minder's user, whose pid is not alive, whose lock nobody
//! holds and none of whose sockets is still bound: a minder in another pid namespace
//! sharing the same `/run` has a pid that means nothing here, and is recognised by its
//! lock (or, for a minder from before the lock, by its live sockets). Only its sockets
//! are removed, then the directory if that left it empty: anything else in it is left
//! alone.
//!
//! A client must still be alive when its message is read, unless it is the main
//! process (whose pid minder knows): a process that has exited cannot be placed in the
//! service's session, so its message is dropped (logged). Clients that wait for the
//! barrier (`systemd-notify` by default, `sd_notify_barrier`) and the service's own
//! long-lived processes meet that; `systemd-notify --no-block` from a short-lived
//! helper may not.

use crate::runtime::Fact;
use crate::supervisor::{ChildRef, Event, FailureReason, ServiceId};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

/// Largest datagram read whole. sd_notify messages are a few short lines; a longer one
/// is truncated by the kernel and dropped here.
const MAX_DATAGRAM: usize = 4096;

/// Most fds the kernel passes with one message (`SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// `sun_path` holds 108 bytes, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The notify sockets of every service that uses `ready.notify`. Created once by the
/// loop at startup (inside the tokio runtime: sockets register with its reactor) and
/// held by it until minder exits. Dropping it aborts every reader task and removes
/// the sockets and the directory.
pub struct NotifyServer {
    /// The loop's channel; each reader task holds a clone.
    facts: UnboundedSender<Fact>,
    /// The private directory holding the sockets; created by `new`, removed on drop.
    dir: PathBuf,
    /// `dir` itself, open and locked with `flock(LOCK_EX)` until minder exits (or dies:
    /// the kernel releases the lock then), so that no other minder takes the directory
    /// for a stale one.
    _lock: std::fs::File,
    /// One socket per service, created on first use and kept across restarts.
    services: HashMap<ServiceId, ServiceSocket>,
}

/// One service's socket. The bound fd is owned by the reader task; this holds what the
/// loop needs to reach and end it.
struct ServiceSocket {
    path: PathBuf,
    /// Ends the reader task (closing the socket) when the server drops or forgets the
    /// service.
    reader: AbortHandle,
}

/// One datagram as the reader task read it, sent to the loop in `Fact::Notify`. Its
/// fds are already closed; what the loop needs to judge it is here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The payload (at most `MAX_DATAGRAM` bytes).
    pub payload: Vec<u8>,
    /// Longer than the reader's buffer: the kernel dropped the rest.
    pub truncated: bool,
    /// Who sent it, as the kernel and /proc said at the time it was read.
    pub sender: Sender,
}

/// The sender of a datagram, with what `/proc/PID/stat` said of it when the datagram
/// was read (the reader reads it at once, while a client waiting for its barrier is
/// sure to be alive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// No SCM_CREDENTIALS came with it.
    Unknown,
    /// Pid 0: a process outside minder's pid namespace.
    Invisible,
    /// A process of minder's pid namespace, with its (process group, session) at read
    /// time, or why they could not be read (it had already exited, for one).
    Process {
        pid: i32,
        place: Result<(i32, i32), String>,
    },
}

impl Sender {
    /// Reads the sender's process group and session from /proc, now.
    fn read(pid: Option<i32>) -> Sender {
        match pid {
            None => Sender::Unknown,
            Some(pid) if pid <= 0 => Sender::Invisible,
            Some(pid) => Sender::Process {
                pid,
                place: crate::procfs::stat(pid)
                    .map(|stat| (stat.pgrp, stat.session))
                    .map_err(|error| format!("read /proc/{pid}/stat: {error}")),
            },
        }
    }

    /// Whether the sender belongs to the service whose main process is `main_pid`: it
    /// is that process, or its session or process group (as read) is that pid (the
    /// service's session in config mode, its process group in container mode).
    pub fn belongs_to(&self, main_pid: i32) -> Result<(), String> {
        match self {
            Sender::Process { pid, .. } if *pid == main_pid => Ok(()),
            Sender::Unknown => Err("no credentials".into()),
            Sender::Invisible => Err("sender not visible in minder's pid namespace".into()),
            Sender::Process {
                place: Err(why), ..
            } => Err(why.clone()),
            Sender::Process {
                pid,
                place: Ok((pgrp, session)),
            } => {
                if *session == main_pid || *pgrp == main_pid {
                    Ok(())
                } else {
                    Err(format!(
                        "pid {pid} is in session {session}, process group {pgrp}"
                    ))
                }
            }
        }
    }
}

/// What the loop keeps for one running process of a service with a notify socket (in
/// its `Incarnation`): whom messages are attributed to, and the last `STATUS=`. Made
/// at the spawn, in the same turn, so no message of the new process can be judged
/// against the old one; gone with the incarnation, so messages read after its main
/// process was reaped find no slot and are dropped.
#[derive(Debug)]
pub struct NotifySlot {
    /// The generation messages are for.
    child: ChildRef,
    /// Its main pid: also its process group and, in config mode, its session.
    main_pid: i32,
    /// The last `STATUS=` it sent.
    status: Option<String>,
}

impl NotifySlot {
    pub fn new(child: ChildRef, main_pid: i32) -> NotifySlot {
        NotifySlot {
            child,
            main_pid,
            status: None,
        }
    }

    /// The last `STATUS=` this process sent, if any.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// Judges one message of the service `name` and turns it into events, in the order
    /// of its lines; a message from outside the service, truncated or without
    /// credentials gives none (logged). Records `STATUS=`.
    pub fn accept(&mut self, name: &str, message: &Message) -> Vec<Event> {
        let service = name;
        if message.truncated {
            tracing::warn!(
                service,
                "notify message longer than {MAX_DATAGRAM} bytes; dropped"
            );
            return Vec::new();
        }
        if message.sender == Sender::Unknown {
            tracing::warn!(service, "notify message without credentials; dropped");
            return Vec::new();
        }
        if let Err(why) = message.sender.belongs_to(self.main_pid) {
            let sender = match message.sender {
                Sender::Process { pid, .. } => pid,
                _ => 0,
            };
            tracing::warn!(
                service,
                sender,
                "notify message from outside the service ({why}); dropped"
            );
            return Vec::new();
        }
        let child = self.child;
        let mut events = Vec::new();
        for line in message.payload.split(|&b| b == b'\n') {
            let Some(equals) = line.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, value) = (&line[..equals], &line[equals + 1..]);
            let event = match key {
                b"READY" if value == b"1" => Some(Event::Ready { child }),
                b"WATCHDOG" if value == b"1" => Some(Event::WatchdogPing { child }),
                // systemd's "fail the watchdog now".
                b"WATCHDOG" if value == b"trigger" => Some(Event::Failed {
                    child,
                    reason: FailureReason::Watchdog,
                }),
                b"WATCHDOG_USEC" => match parse_micros(value) {
                    Some(timeout) => Some(Event::WatchdogTimeout { child, timeout }),
                    None => {
                        tracing::debug!(service, "ignored WATCHDOG_USEC={}", lossy(value));
                        None
                    }
                },
                b"STATUS" => {
                    let status = lossy(value);
                    tracing::debug!(service, "status: {status}");
                    self.status = Some(status);
                    None
                }
                b"STOPPING" if value == b"1" => {
                    tracing::info!(service, "the service says it is stopping (STOPPING=1)");
                    None
                }
                // minder tracks the process it started: signals go to that pid's
                // process group and its exit is the service's end. Adopting another
                // pid would let the service point minder at a process it never started.
                b"MAINPID" => {
                    tracing::debug!(service, "ignored MAINPID={}", lossy(value));
                    None
                }
                // The fd that came with it was closed by the reader: that is the whole
                // answer to a barrier.
                b"BARRIER" => None,
                _ => None,
            };
            events.extend(event);
        }
        events
    }
}

/// For a message read while its service has no running process (none started yet, or
/// its main process already reaped): dropped, with a debug line.
pub fn unattributed(name: &str) {
    tracing::debug!(
        service = name,
        "notify message while no process is current; dropped"
    );
}

impl NotifyServer {
    /// Creates the private directory under `/run` when minder can write there (as
    /// root), else under `$XDG_RUNTIME_DIR` when set, else under the system's
    /// temporary directory. No socket exists until `socket_for`.
    pub fn new(facts: UnboundedSender<Fact>) -> io::Result<NotifyServer> {
        NotifyServer::in_dir(facts, &runtime_dir())
    }

    /// As `new`, with the directory `minder-<pid>` created in `base`.
    pub fn in_dir(facts: UnboundedSender<Fact>, base: &Path) -> io::Result<NotifyServer> {
        let dir = base.join(format!("minder-{}", std::process::id()));
        if dir.to_str().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "notify socket directory {} is not UTF-8 (NOTIFY_SOCKET must be)",
                    dir.display()
                ),
            ));
        }
        let lock = create_private_dir(&dir)?;
        Ok(NotifyServer {
            facts,
            dir,
            _lock: lock,
            services: HashMap::new(),
        })
    }

    /// The directory holding the sockets.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The service's socket path, for `NOTIFY_SOCKET`. The first call for a service
    /// creates the socket (owned by `owner` = (uid, gid), or by minder's own user when
    /// `None`, mode 0600) and starts its reader task; later calls return the same path
    /// (the socket lives across restarts). Errors: the path does not fit a unix socket
    /// address, or creating, binding or chown'ing the socket failed.
    pub fn socket_for(
        &mut self,
        service: ServiceId,
        name: &str,
        owner: Option<(u32, u32)>,
    ) -> io::Result<PathBuf> {
        if let Some(existing) = self.services.get(&service) {
            return Ok(existing.path.clone());
        }
        let path = self.socket_path(service, name)?;
        // Binding removes a leftover file at the path first: never one of a live service.
        if self.services.values().any(|other| other.path == path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("notify socket {} is another service's", path.display()),
            ));
        }
        let socket = bind_socket(&path, owner)?;
        let socket = tokio::net::UnixDatagram::from_std(socket.into()).inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        })?;
        let reader = tokio::spawn(read_datagrams(
            socket,
            service,
            name.to_string(),
            self.facts.clone(),
        ))
        .abort_handle();
        self.services.insert(
            service,
            ServiceSocket {
                path: path.clone(),
                reader,
            },
        );
        Ok(path)
    }

    /// Whether the service has a socket (its processes get a `NotifySlot`).
    pub fn has_socket(&self, service: ServiceId) -> bool {
        self.services.contains_key(&service)
    }

    /// Closes and removes the service's socket (a reload removed the service or its
    /// `ready.notify`). A later `socket_for` creates a new one.
    pub fn remove(&mut self, service: ServiceId) {
        if let Some(socket) = self.services.remove(&service) {
            socket.reader.abort();
            let _ = std::fs::remove_file(&socket.path);
        }
    }

    /// `notify-<name>.sock` in the directory; `notify-#<slot>.sock` when the name does
    /// not make a plain file name or the path would be too long.
    fn socket_path(&self, service: ServiceId, name: &str) -> io::Result<PathBuf> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let by_name = self.dir.join(format!("notify-{name}.sock"));
        if plain && by_name.as_os_str().len() <= MAX_SOCKET_PATH {
            return Ok(by_name);
        }
        // `#` is in no service name, so a slot path never equals a name path (a service
        // may well be named `0`).
        let by_slot = self.dir.join(format!("notify-#{}.sock", service.0));
        if by_slot.as_os_str().len() <= MAX_SOCKET_PATH {
            return Ok(by_slot);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "notify socket path {} is {} bytes, more than the {MAX_SOCKET_PATH} a unix \
                 socket address holds",
                by_slot.display(),
                by_slot.as_os_str().len()
            ),
        ))
    }
}

impl Drop for NotifyServer {
    fn drop(&mut self) {
        for socket in self.services.values() {
            socket.reader.abort();
            let _ = std::fs::remove_file(&socket.path);
        }
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            tracing::debug!("remove {}: {error}", self.dir.display());
        }
    }
}

/// The variables a service with `ready.notify` gets through `SpawnRequest::extra_env`:
/// `NOTIFY_SOCKET`, and `WATCHDOG_USEC` when it has a `watchdog`. Not `WATCHDOG_PID`:
/// the environment is built before the pid exists (docs/design.md §4), and clients treat a
/// missing `WATCHDOG_PID` as "the watchdog is meant for you".
pub fn environment(socket: &Path, watchdog: Option<Duration>) -> Vec<(String, String)> {
    let mut variables = vec![(
        "NOTIFY_SOCKET".to_string(),
        socket.to_string_lossy().into_owned(),
    )];
    if let Some(timeout) = watchdog {
        variables.push(("WATCHDOG_USEC".to_string(), timeout.as_micros().to_string()));
    }
    variables
}

/// Removes the notify directories that minders killed without a chance to clean up left
/// in the directory minder uses (see the module doc for what counts as stale). Logs
/// each removal; returns how many were removed.
pub fn remove_stale_dirs() -> usize {
    let base = runtime_dir();
    let removed = remove_stale_dirs_in(&base);
    for dir in &removed {
        tracing::info!("removed {}, left by a minder that is gone", dir.display());
    }
    removed.len()
}

/// `remove_stale_dirs` in `base`; returns the directories removed.
fn remove_stale_dirs_in(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let own_pid = std::process::id();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("minder-"))
            .and_then(|digits| {
                let pid = digits.parse::<u32>().ok()?;
                // Exactly minder's spelling: no sign, no leading zero.
                (pid.to_string() == digits).then_some(pid)
            })
        else {
            continue;
        };
        // Our own pid's leftover (PID 1 in a restarted container) is create_private_dir's.
        if pid == own_pid || pid_alive(pid) {
            continue;
        }
        let dir = entry.path();
        match remove_if_stale(&dir) {
            Ok(true) => removed.push(dir),
            Ok(false) => {}
            Err(error) => tracing::debug!("leave {}: {error}", dir.display()),
        }
    }
    removed
}

/// Whether `pid` names a process in minder's pid namespace. EPERM means it exists
/// (someone else's); only ESRCH means there is none.
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence; it has no memory effects.
    unsafe { libc::kill(pid, 0) == 0 || nix::errno::Errno::last() != nix::errno::Errno::ESRCH }
}

/// Removes `dir` if it is a real directory owned by minder's user, nobody holds its
/// lock and none of its sockets is bound: its `notify-*.sock` sockets first, then the
/// directory, which stays (with whatever else it holds) unless that emptied it.
/// Whether it was removed.
fn remove_if_stale(dir: &Path) -> io::Result<bool> {
    let Some(lock) = lock_dir(dir)? else {
        return Ok(false);
    };
    let metadata = lock.metadata()?;
    if metadata.uid() != nix::unistd::geteuid().as_raw() {
        return Ok(false);
    }
    let sockets: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let is_notify_name = name
                .to_str()
                .is_some_and(|name| name.starts_with("notify-") && name.ends_with(".sock"));
            is_notify_name
                && std::fs::symlink_metadata(entry.path())
                    .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        })
        .map(|entry| entry.path())
        .collect();
    if sockets.iter().any(|socket| !socket_is_dead(socket)) {
        return Ok(false);
    }
    for socket in &sockets {
        std::fs::remove_file(socket)?;
    }
    std::fs::remove_dir(dir)?;
    drop(lock);
    Ok(true)
}

/// Whether nobody is bound to the datagram socket at `path` any more: connecting to
/// it is refused. Any other outcome (it connects, or the check itself fails) counts as
/// alive, so a doubtful directory is kept.
fn socket_is_dead(path: &Path) -> bool {
    let Ok(probe) = std::os::unix::net::UnixDatagram::unbound() else {
        return false;
    };
    matches!(
        probe.connect(path),
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused
    )
}

/// Opens `dir` (a real directory, not a symlink to one) and takes its exclusive lock
/// without waiting: `None` when another open of it (a live minder) holds the lock.
fn lock_dir(dir: &Path) -> io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)?;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(file));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(None),
            _ => return Err(error),
        }
    }
}

/// `/run` when minder can create entries there, else `$XDG_RUNTIME_DIR`, else the
/// temporary directory.
fn runtime_dir() -> PathBuf {
    let writable = |path: &Path| {
        nix::unistd::access(
            path,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .is_ok()
    };
    let run = Path::new("/run");
    if writable(run) {
        return run.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && dir.is_absolute()
        && writable(&dir)
    {
        return dir;
    }
    std::env::temp_dir()
}

/// Creates `dir` with mode 0711: others may reach a socket whose name they know (and
/// whose own mode lets them) but not list the directory. A leftover of an earlier
/// minder with the same pid (PID 1 in a restarted container) is removed first, but
/// only if it is a real directory owned by us that no live minder holds locked (PID 1
/// of another container sharing this `/run` has the same pid): in a shared temporary
/// directory, someone else's entry is an error, never followed.
fn create_private_dir(dir: &Path) -> io::Result<std::fs::File> {
    let context = |error: io::Error, what: &str| {
        io::Error::new(error.kind(), format!("{what} {}: {error}", dir.display()))
    };
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) => {
            let ours = metadata.uid() == nix::unistd::geteuid().as_raw();
            if !metadata.is_dir() || !ours {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a directory of minder's user",
                        dir.display()
                    ),
                ));
            }
            // Held while the leftover is removed, so no other minder takes it meanwhile.
            let Some(_leftover) = lock_dir(dir).map_err(|e| context(e, "lock the leftover"))?
            else {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is in use by another minder with the same pid (another pid \
                         namespace sharing this directory)",
                        dir.display()
                    ),
                ));
            };
            std::fs::remove_dir_all(dir).map_err(|e| context(e, "remove the stale"))?;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(context(error, "inspect")),
    }
    // Made and locked under a name no other minder looks at, then renamed into place
    // (never over anything): a directory named `minder-<pid>` is locked from the moment
    // it exists, so another pid namespace's `remove_stale_dirs` cannot take it for a
    // dead minder's in between.
    let mut staging = dir.as_os_str().to_owned();
    staging.push(format!(".new-{:016x}", fastrand::u64(..)));
    let staging = PathBuf::from(staging);
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&staging)
        .map_err(|e| context(e, "create"))?;
    let placed = (|| {
        // The umask may have removed bits from the mode asked for.
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| context(e, "chmod"))?;
        let lock = lock_dir(&staging)
            .map_err(|e| context(e, "lock"))?
            .ok_or_else(|| {
                io::Error::other(format!("{} was locked by another", staging.display()))
            })?;
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &staging,
            nix::fcntl::AT_FDCWD,
            dir,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|errno| context(io::Error::from(errno), "move into place"))?;
        Ok(lock)
    })();
    if placed.is_err() {
        let _ = std::fs::remove_dir(&staging);
    }
    placed
}

/// A non-blocking, close-on-exec datagram socket bound at `path`, with SO_PASSCRED,
/// mode 0600, owned by `owner`.
fn bind_socket(path: &Path, owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
    let context = |what: &str, errno: nix::errno::Errno| {
        io::Error::new(
            io::Error::from(errno).kind(),
            format!("{what} notify socket {}: {}", path.display(), errno.desc()),
        )
    };
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|errno| context("create", errno))?;
    socket::setsockopt(&fd, sockopt::PassCred, &true)
        .map_err(|errno| context("enable credentials on", errno))?;
    // Our own directory: anything at the path is a leftover of ours.
    let _ = std::fs::remove_file(path);
    let address = UnixAddr::new(path).map_err(|errno| context("address", errno))?;
    socket::bind(fd.as_raw_fd(), &address).map_err(|errno| context("bind", errno))?;
    let finish = || -> io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    };
    if let Err(error) = finish() {
        let _ = std::fs::remove_file(path);
        return Err(io::Error::new(
            error.kind(),
            format!(
                "set owner and mode of notify socket {}: {error}",
                path.display()
            ),
        ));
    }
    Ok(fd)
}

/// The reader task of one socket: reads every datagram as soon as the socket is
/// readable, in order, reads its sender's /proc entry, closes its fds and sends it to
/// the loop. Ends when aborted (the socket closes with it).
async fn read_datagrams(
    socket: tokio::net::UnixDatagram,
    service: ServiceId,
    name: String,
    facts: UnboundedSender<Fact>,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut control = vec![0u8; control_space()];
    let fd = socket.as_raw_fd();
    loop {
        if let Err(error) = socket.readable().await {
            tracing::warn!(service = name, "notify socket unusable: {error}");
            return;
        }
        // `try_io` clears the readiness on WouldBlock, so the next `readable` waits.
        match socket.try_io(tokio::io::Interest::READABLE, || {
            receive(fd, &mut buffer, &mut control)
        }) {
            Ok(datagram) => {
                // The sender is placed while it still waits for its fds (a barrier)...
                let message = Message {
                    payload: buffer[..datagram.length].to_vec(),
                    truncated: datagram.truncated,
                    sender: Sender::read(datagram.sender),
                };
                // ... and they are closed at once, whatever the message says.
                drop(datagram);
                // A closed channel means the loop is gone (minder exiting).
                let _ = facts.send(Fact::Notify { service, message });
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => {
                // Not expected on a bound datagram socket (ENOMEM at worst). The
                // readiness stays set, so pause before the next try rather than spin.
                tracing::warn!(service = name, "read notify socket: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One received datagram's metadata; its bytes stay in the reader's buffer.
struct Datagram {
    /// Bytes of payload in the buffer.
    length: usize,
    /// Longer than the buffer: the kernel dropped the rest.
    truncated: bool,
    /// The sender's pid from SCM_CREDENTIALS (0 if it is not visible in our pid
    /// namespace, `None` if no credentials came).
    sender: Option<i32>,
    /// Every fd that came with it, owned: closed when the datagram is dropped.
    fds: Vec<OwnedFd>,
}

/// Room for the most ancillary data one message can carry here: credentials plus
/// `MAX_FDS` descriptors.
fn control_space() -> usize {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    unsafe {
        libc::CMSG_SPACE(std::mem::size_of::<libc::ucred>() as u32) as usize
            + libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) as usize
    }
}

/// `recvmsg` of one datagram, non-blocking, fds received close-on-exec.
///
/// Written against libc rather than nix's `recvmsg` because nix refuses to iterate the
/// control messages when they were truncated, and the fds that did arrive would then
/// leak; here every SCM_RIGHTS entry the kernel wrote is taken into an `OwnedFd`.
fn receive(socket: RawFd, buffer: &mut [u8], control: &mut [u8]) -> io::Result<Datagram> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: an all-zero msghdr is a valid value; the pointers set below point into
    // `iov` and `control`, which outlive the call.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = control.len() as _;
    // SAFETY: recvmsg with a valid header, on a socket we own.
    let received = unsafe {
        libc::recvmsg(
            socket,
            &mut header,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        )
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut datagram = Datagram {
        length: (received as usize).min(buffer.len()),
        truncated: header.msg_flags & libc::MSG_TRUNC != 0,
        sender: None,
        fds: Vec::new(),
    };
    // SAFETY (whole walk): CMSG_FIRSTHDR/CMSG_NXTHDR stay within `msg_controllen`,
    // which the kernel set to the bytes it wrote into `control`; the data of each
    // header is read unaligned and only within that header's `cmsg_len`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let data_length = ((*cmsg).cmsg_len as usize)
                .saturating_sub(data.offset_from(cmsg.cast::<u8>()) as usize);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    let count = data_length / std::mem::size_of::<RawFd>();
                    for index in 0..count {
                        let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(index));
                        if fd >= 0 {
                            // Installed in our table by the kernel for us alone.
                            datagram.fds.push(OwnedFd::from_raw_fd(fd));
                        }
                    }
                }
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                    if data_length >= std::mem::size_of::<libc::ucred>() =>
                {
                    let credentials = std::ptr::read_unaligned(data.cast::<libc::ucred>());
                    datagram.sender = Some(credentials.pid);
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    Ok(datagram)
}

/// `WATCHDOG_USEC` value: positive decimal microseconds.
fn parse_micros(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?;
    let micros: u64 = text.trim().parse().ok()?;
    (micros > 0).then(|| Duration::from_micros(micros))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
