//! The control socket server: making the socket file, accepting connections, and for
//! each one reading request lines, checking them, handing them to the event loop and
//! writing back what it answers.
//!
//! The socket is bound before the event loop starts (`bind`), so a path that cannot be
//! used is a startup error; `Server::start` then serves it from tasks on the loop's
//! runtime. Each connection is a task of its own that shares nothing with the loop: a
//! request reaches the loop as a `Fact::Control` carrying a oneshot sender, and the loop
//! answers in the same turn, never waiting for the client (`Answer`). A stream (`logs`
//! or `events` with `follow`) is a broadcast receiver the loop hands over: the sender
//! never waits for it, and a client that falls behind or stops reading is told
//! `too_slow` if that can still be written and disconnected. No client can slow the
//! loop, the services' output or another client.

use crate::control::auth::{Access, Role};
use crate::control::protocol::{
    self, Error, ErrorKind, EventItem, LogItem, MAX_LINE, Request, Response,
};
use crate::logs::TappedLine;
use crate::runtime::Fact;
use crate::spec::{ControlSocket, DaemonSpec};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How long one response line may wait for room in the client's socket buffer. A client
/// that reads nothing for this long is disconnected: its task must not live forever,
/// holding a stream subscription, because of a peer that went away without closing.
const WRITE_STALL: Duration = Duration::from_secs(2);

/// How long minder, on its way out, waits for its connections to write their last line
/// (see `Server::close`). A client that reads nothing is not waited for beyond it.
const FAREWELL: Duration = Duration::from_millis(500);

/// How often a follower that half-closed its connection is checked for having hung up
/// entirely (see `hung_up`).
const HANGUP_CHECK: Duration = Duration::from_secs(1);

/// A request on its way to the loop, with the peer's role and where the answer goes.
pub struct ControlRequest {
    pub request: Request,
    pub role: Role,
    /// The loop answers once; the connection task waits for it.
    pub reply: Reply,
}

/// Where the answer to one request goes, with the request's id. Answering consumes it;
/// dropping it unanswered tells the client minder is shutting down. The loop answers
/// most requests in the turn they arrive; one that waits for the tree (a reload that
/// replies once the changed services are ready) keeps it meanwhile.
#[derive(Debug)]
pub struct Reply {
    pub id: u64,
    sender: oneshot::Sender<Answer>,
}

impl Reply {
    pub fn send(self, answer: Answer) {
        // The client may have gone meanwhile; then nobody wants the answer.
        let _ = self.sender.send(answer);
    }

    pub fn ok(self, result: impl serde::Serialize) {
        let response = Response::ok(self.id, result);
        self.send(Answer::Done(response));
    }

    pub fn error(self, error: Error) {
        let response = Response::error(Some(self.id), error);
        self.send(Answer::Done(response));
    }
}

impl fmt::Debug for ControlRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlRequest")
            .field("request", &self.request)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Two requests are the same whatever their reply channels (for `Fact`'s equality).
impl PartialEq for ControlRequest {
    fn eq(&self, other: &Self) -> bool {
        self.request == other.request && self.role == other.role
    }
}

/// What the loop answers a request with.
#[derive(Debug)]
pub enum Answer {
    /// One response: a result or an error.
    Done(Response),
    /// A stream: these items first (the replay), then, with `follow`, every new one
    /// until minder stops or the client falls behind; then the end marker.
    Stream {
        items: Vec<Response>,
        follow: Option<Follow>,
    },
}

/// Where a followed stream's new items come from.
#[derive(Debug)]
pub enum Follow {
    /// Lines of the services named (full names), from the output hub's tap.
    Logs {
        services: HashSet<String>,
        lines: broadcast::Receiver<Arc<TappedLine>>,
    },
    /// Supervision events, from the loop's event broadcast.
    Events(broadcast::Receiver<Arc<EventItem>>),
}

/// A bound control socket, not yet served. Made by `bind` before the loop starts.
#[derive(Debug)]
pub struct Listener {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    access: Access,
}

/// Why `bind` refused: minder must not start (exit 2).
#[derive(Debug)]
pub struct BindError(pub String);

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Makes the control socket the config asks for. `Ok(None)`: no socket (disabled, or
/// the default path could not be used, which is logged). An explicit path that cannot
/// be used, or a `control_group` that does not exist, is an error.
pub fn bind(daemon: &DaemonSpec) -> Result<Option<Listener>, BindError> {
    let (path, explicit) = match &daemon.control {
        ControlSocket::Disabled => return Ok(None),
        ControlSocket::Default => (protocol::default_socket_path(), false),
        ControlSocket::Path(path) => (path.clone(), true),
    };
    let reader_gid = match &daemon.control_group {
        None => None,
        // A number is a gid as it is (a group need not have a name); a name must exist.
        Some(name) => match name.parse::<u32>() {
            Ok(gid) => Some(gid),
            Err(_) => match nix::unistd::Group::from_name(name) {
                Ok(Some(group)) => Some(group.gid.as_raw()),
                Ok(None) => {
                    return Err(BindError(format!("control_group {name:?}: no such group")));
                }
                Err(errno) => {
                    return Err(BindError(format!(
                        "control_group {name:?}: looking it up failed: {errno}"
                    )));
                }
            },
        },
    };
    let access = Access {
        own_uid: nix::unistd::geteuid().as_raw(),
        reader_gid,
    };
    match make_socket(&path, daemon.control_mode, reader_gid) {
        Ok(listener) => {
            tracing::info!(path = %path.display(), "control socket listening");
            Ok(Some(Listener {
                listener,
                path,
                access,
            }))
        }
        Err(problem) if explicit => Err(BindError(format!(
            "control socket {}: {problem}",
            path.display()
        ))),
        Err(problem) => {
            // The default path is shared by every minder of a host (and by tests): a
            // second one, or one without a writable /run, still supervises.
            tracing::warn!(
                "control socket {}: {problem}; running without a control socket",
                path.display()
            );
            Ok(None)
        }
    }
}

/// Creates the parent directory, clears a stale socket, binds, sets mode and group.
fn make_socket(
    path: &Path,
    mode: u32,
    group: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, String> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        // 0755: clients of every user must reach the socket to be refused or served by
        // its own mode and the peer check; the directory hides nothing worth hiding.
        // Set again after creating it, since the umask may have narrowed it.
        if !parent.exists() {
            let create = || -> io::Result<()> {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)?;
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))
            };
            create()
                .map_err(|error| format!("create the directory {}: {error}", parent.display()))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(format!("cannot inspect it: {error}")),
        Ok(metadata) if !metadata.file_type().is_socket() => {
            return Err("the path exists and is not a socket; not replacing it".to_string());
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err("another minder is answering on it".to_string());
            }
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                // Nobody listens: left by a minder that was killed. Replace it.
                std::fs::remove_file(path)
                    .map_err(|error| format!("remove the stale socket: {error}"))?;
                tracing::info!(path = %path.display(), "replaced a stale control socket");
            }
            Err(error) => return Err(format!("cannot check whether it is in use: {error}")),
        },
    }
    // Bound under a umask that lets nobody in, then opened up to `control_mode`: no
    // moment exists when the socket is more open than asked. The umask is process-wide,
    // but no other thread of minder creates files while this runs (before the loop).
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|error| format!("bind: {error}"))?;
    let finish = || -> Result<(), String> {
        if let Some(gid) = group {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|errno| format!("give it to control_group: {errno}"))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|error| format!("set its mode to {mode:o}: {error}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|error| format!("make it non-blocking: {error}"))
    };
    if let Err(problem) = finish() {
        let _ = std::fs::remove_file(path);
        return Err(problem);
    }
    Ok(listener)
}

/// The running server. Held by the loop; `close` ends every stream with `shutdown`,
/// and dropping it stops accepting and removes the socket file if it is still the one
/// this minder made (same inode: a newer minder's socket is left alone).
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    /// Device and inode of the socket file as bound.
    identity: Option<(u64, u64)>,
    accept: tokio::task::AbortHandle,
    /// Flipped by `close`; every connection task watches it.
    closing: watch::Sender<bool>,
}

impl Server {
    /// Serves `listener` on the current tokio runtime; requests go to the loop as facts.
    pub fn start(listener: Listener, facts: mpsc::UnboundedSender<Fact>) -> io::Result<Server> {
        let identity = std::fs::symlink_metadata(&listener.path)
            .ok()
            .map(|metadata| (metadata.dev(), metadata.ino()));
        let socket = tokio::net::UnixListener::from_std(listener.listener)?;
        let (closing, closed) = watch::channel(false);
        let access = listener.access;
        let accept = tokio::spawn(async move {
            loop {
                match socket.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(serve(stream, access, facts.clone(), closed.clone()));
                    }
                    Err(error) => {
                        // Out of fds, mostly: wait a little rather than spin, and go on.
                        tracing::warn!("control socket: accept: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
        .abort_handle();
        Ok(Server {
            path: listener.path,
            identity,
            accept,
            closing,
        })
    }

    /// minder is exiting: no new connection is taken, every stream ends with
    /// `shutdown`, a request waiting for the loop gets `shutting_down`. Returns once
    /// every connection task has written its last line and ended (each drops its
    /// receiver of `closing`), at most `FAREWELL` later: without the wait, minder could
    /// exit before those tasks ran and a client would see its stream cut without the
    /// end marker the protocol promises.
    pub async fn close(&self) {
        self.accept.abort();
        self.closing.send_replace(true);
        let _ = tokio::time::timeout(FAREWELL, self.closing.closed()).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
        self.closing.send_replace(true);
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|metadata| (metadata.dev(), metadata.ino()));
        if ours.is_some() && ours == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What reading one request line found.
enum Read {
    Line,
    TooLong,
    End,
}

/// Reads up to and without the next `\n` into `line`, never holding more than
/// `MAX_LINE` bytes: a longer line is reported as soon as it is known to be too long.
/// An unterminated last line before end of file counts as a line (a client that
/// half-closes after its request still gets an answer).
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> io::Result<Read> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() {
                Read::End
            } else {
                Read::Line
            });
        }
        let (chunk, used, done) = match available.iter().position(|byte| *byte == b'\n') {
            Some(newline) => (&available[..newline], newline + 1, true),
            None => (available, available.len(), false),
        };
        if line.len() + chunk.len() > MAX_LINE {
            return Ok(Read::TooLong);
        }
        line.extend_from_slice(chunk);
        reader.consume(used);
        if done {
            return Ok(Read::Line);
        }
    }
}

/// Writes one line, or gives up after `WRITE_STALL`; false when the client is gone or
/// too slow, and the connection should close.
async fn write_line(writer: &mut OwnedWriteHalf, response: &Response) -> bool {
    let line = response.to_line();
    matches!(
        tokio::time::timeout(WRITE_STALL, writer.write_all(&line)).await,
        Ok(Ok(()))
    )
}

/// One connection, until the client closes it, sends a line that is too long, or
/// cannot keep up.
async fn serve(
    stream: UnixStream,
    access: Access,
    facts: mpsc::UnboundedSender<Fact>,
    mut closing: watch::Receiver<bool>,
) {
    let role = match stream.peer_cred() {
        Ok(cred) => access.role(cred.uid(), cred.gid(), cred.pid()),
        // Without credentials there is nobody to trust.
        Err(_) => Role::None,
    };
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        let outcome = tokio::select! {
            outcome = read_line(&mut reader, &mut line) => outcome,
            _ = closing.wait_for(|closing| *closing) => return,
        };
        match outcome {
            Ok(Read::Line) => {}
            Ok(Read::End) | Err(_) => return,
            Ok(Read::TooLong) => {
                // The rest of the line would have to be read and dropped to find the
                // next request; closing is simpler and costs an abusive client only.
                let error = Error::new(
                    ErrorKind::BadRequest,
                    format!("request line longer than {MAX_LINE} bytes; closing the connection"),
                );
                let _ = write_line(&mut writer, &Response::error(None, error)).await;
                return;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            // Blank lines between requests are harmless (a human typing into socat).
            continue;
        }
        let request = match protocol::decode_request(&line) {
            Ok(request) => request,
            Err(error) => {
                if write_line(&mut writer, &error.into_response()).await {
                    continue;
                }
                return;
            }
        };
        let id = request.id;
        if !role.allows(&request.command) {
            let message = match role {
                Role::Reader => format!(
                    "{} changes the tree: only root and minder's own user may; members of control_group may only read",
                    request.command.name()
                ),
                Role::Admin | Role::None => {
                    "only root, minder's own user and members of control_group may use this socket"
                        .to_string()
                }
            };
            let response = Response::error(Some(id), Error::new(ErrorKind::Forbidden, message));
            if write_line(&mut writer, &response).await {
                continue;
            }
            return;
        }
        let (sender, answer) = oneshot::channel();
        let sent = facts.send(Fact::Control(ControlRequest {
            request,
            role,
            reply: Reply { id, sender },
        }));
        // minder may stop serving requests while this one waits (its loop has ended
        // and it is cleaning up): that is an answer too.
        let answer = tokio::select! {
            answer = answer => answer.ok(),
            _ = closing.wait_for(|closing| *closing) => None,
        };
        let answer = match (sent, answer) {
            (Ok(()), Some(answer)) => answer,
            // The loop is gone or dropped the request: minder is on its way out.
            _ => {
                let error = Error::new(ErrorKind::ShuttingDown, "minder is shutting down");
                let _ = write_line(&mut writer, &Response::error(Some(id), error)).await;
                return;
            }
        };
        let keep_going = match answer {
            Answer::Done(response) => write_line(&mut writer, &response).await,
            Answer::Stream { items, follow } => {
                stream_out(&mut reader, &mut writer, id, items, follow, &mut closing).await
            }
        };
        if !keep_going {
            return;
        }
    }
}

/// Writes a stream's replay, then its followed items, then the end marker. False when
/// the connection must close (client gone, too slow, or minder exiting).
///
/// While following, the client is watched too: an item may never come (a quiet
/// service, a quiet tree), and a client that hung up must not keep its socket, task
/// and subscription until one does.
async fn stream_out(
    reader: &mut BufReader<OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
    id: u64,
    items: Vec<Response>,
    follow: Option<Follow>,
    closing: &mut watch::Receiver<bool>,
) -> bool {
    for item in &items {
        if !write_line(writer, item).await {
            return false;
        }
    }
    let Some(mut follow) = follow else {
        return write_line(writer, &Response::end(id, "complete")).await;
    };
    let mut half_closed = false;
    // One clock for the whole stream: items for other clients wake the loop often and
    // must not push the check back each time.
    let mut checks = tokio::time::interval(HANGUP_CHECK);
    loop {
        let next = tokio::select! {
            next = follow.next(id) => next,
            _ = closing.wait_for(|closing| *closing) => Next::End("shutdown"),
            gone = hung_up(reader, &mut half_closed, &mut checks) => {
                if gone {
                    return false;
                }
                continue;
            }
        };
        match next {
            Next::Item(Some(response)) => {
                if !write_line(writer, &response).await {
                    return false;
                }
            }
            Next::Item(None) => {}
            Next::End(reason) => {
                // Best effort: a too-slow client may not have room for it either.
                let _ = write_line(writer, &Response::end(id, reason)).await;
                return false;
            }
        }
    }
}

/// Waits for news from a following client; true once it has hung up. Bytes it sends
/// are dropped: a followed stream holds its connection until the connection closes, so
/// no later request on it could be answered. End of file alone may be a half-close (a
/// client that sent its request and only reads now), so the socket itself is asked
/// whether the peer is gone entirely (`POLLHUP`): at once, then once a second, since a
/// half-closed peer sends nothing more to wake this.
async fn hung_up(
    reader: &mut BufReader<OwnedReadHalf>,
    half_closed: &mut bool,
    checks: &mut tokio::time::Interval,
) -> bool {
    if !*half_closed {
        match reader.fill_buf().await {
            Ok([]) => *half_closed = true,
            Ok(bytes) => {
                let used = bytes.len();
                reader.consume(used);
                return false;
            }
            Err(_) => return true,
        }
    } else {
        checks.tick().await;
    }
    peer_gone(reader.get_ref().as_ref())
}

/// Whether the peer has closed its end entirely: `POLLHUP` is set on a unix stream
/// socket only once both directions are shut, not on a half-close.
fn peer_gone(stream: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|events| events.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => false,
    }
}

enum Next {
    /// An item for this client, or `None` for one it did not ask for.
    Item(Option<Response>),
    End(&'static str),
}

impl Follow {
    async fn next(&mut self, id: u64) -> Next {
        match self {
            Follow::Logs { services, lines } => match lines.recv().await {
                Ok(line) if services.contains(&*line.service) => {
                    let item = LogItem {
                        service: line.service.to_string(),
                        stream: Some(line.stream.name().to_string()),
                        line: String::from_utf8_lossy(&line.line).into_owned(),
                        time: Some(rfc3339(line.time)),
                    };
                    Next::Item(Some(Response::item(id, item)))
                }
                Ok(_) => Next::Item(None),
                Err(broadcast::error::RecvError::Lagged(_)) => Next::End("too_slow"),
                Err(broadcast::error::RecvError::Closed) => Next::End("shutdown"),
            },
            Follow::Events(events) => match events.recv().await {
                Ok(event) => Next::Item(Some(Response::item(id, &*event))),
                Err(broadcast::error::RecvError::Lagged(_)) => Next::End("too_slow"),
                Err(broadcast::error::RecvError::Closed) => Next::End("shutdown"),
            },
        }
    }
}

/// A time as RFC 3339 in UTC with milliseconds, the form of every time in the protocol.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
