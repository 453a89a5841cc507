//! One connection to minder's control socket: send a request, read its answer, a single
//! result or a stream of items ending in an end marker.
//!
//! The protocol's types come from `minder::control::protocol`; this module only frames
//! them (one JSON object per line) and matches answers to requests by id. It never
//! prints: the caller decides what an item or a failure looks like. A followed stream
//! can be ended by Ctrl-C; see `interrupt`.

use minder::control::protocol::{Body, Command, Error as ProtocolError, Request, Response};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The longest response line minderctl accepts. minder's lines are far shorter (a status
/// of a thousand services is a few hundred KiB); the bound only keeps a broken peer from
/// making minderctl allocate without end.
const MAX_RESPONSE_LINE: u64 = 256 * 1024 * 1024;

/// Why a request did not get its answer.
#[derive(Debug)]
pub enum Failure {
    /// The socket could not be reached at all.
    Connect {
        path: PathBuf,
        error: std::io::Error,
    },
    /// minder answered with an error.
    Refused(ProtocolError),
    /// The connection broke, or minder said something that is not a valid answer.
    Broken(String),
}

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The end marker, with its reason (`complete`, `shutdown`, `too_slow`, ...).
    Marker(String),
    /// The user pressed Ctrl-C.
    Interrupted,
}

/// A connected client. Requests are answered in order on one connection, so each
/// request is sent and its whole answer read before the next.
pub struct Connection {
    path: PathBuf,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Connection {
    pub fn open(path: &Path) -> Result<Connection, Failure> {
        let connect_failure = |error| Failure::Connect {
            path: path.to_path_buf(),
            error,
        };
        let stream = UnixStream::connect(path).map_err(connect_failure)?;
        let reader = stream.try_clone().map_err(connect_failure)?;
        Ok(Connection {
            path: path.to_path_buf(),
            writer: stream,
            reader: BufReader::new(reader),
            next_id: 1,
        })
    }

    /// Sends `command` and returns its result, or the error minder answered with.
    pub fn call(&mut self, command: Command) -> Result<Value, Failure> {
        let name = command.name();
        let id = self.send(command)?;
        match self.answer(id, name)? {
            Some(Body::Ok(result)) => Ok(result),
            Some(Body::Error(error)) => Err(Failure::Refused(error)),
            Some(Body::Item(_) | Body::End(_)) => Err(self.broken(format!(
                "minder answered {name} with a stream, not a result"
            ))),
            None => Err(self.closed(name)),
        }
    }

    /// Sends a streaming `command` and hands each item to `on_item` until the end
    /// marker. An error from `on_item` (standard output is gone) stops reading and is
    /// returned as it is; the connection is then dropped, which ends the stream at
    /// minder's side too.
    pub fn stream<E>(
        &mut self,
        command: Command,
        mut on_item: impl FnMut(Value) -> Result<(), E>,
    ) -> Result<Result<StreamEnd, E>, Failure> {
        let name = command.name();
        let id = self.send(command)?;
        loop {
            match self.answer(id, name)? {
                Some(Body::Item(item)) => {
                    if let Err(error) = on_item(item) {
                        return Ok(Err(error));
                    }
                }
                Some(Body::End(reason)) => return Ok(Ok(StreamEnd::Marker(reason))),
                Some(Body::Error(error)) => return Err(Failure::Refused(error)),
                Some(Body::Ok(_)) => {
                    return Err(self.broken(format!(
                        "minder answered {name} with a single result, not a stream"
                    )));
                }
                None if interrupt::requested() => return Ok(Ok(StreamEnd::Interrupted)),
                None => return Err(self.closed(name)),
            }
        }
    }

    /// The socket's raw descriptor, for `interrupt::arm`.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.writer.as_raw_fd()
    }

    fn send(&mut self, command: Command) -> Result<u64, Failure> {
        let id = self.next_id;
        self.next_id += 1;
        let line = Request::new(id, command).to_line();
        self.writer.write_all(&line).map_err(|error| {
            self.broken(format!("sending the request: {}", describe_io(&error)))
        })?;
        Ok(id)
    }

    /// The next response line for request `id`, `None` at end of file. A line with a
    /// null id is minder's answer to a request it could not read, which can only be
    /// ours.
    fn answer(&mut self, id: u64, name: &str) -> Result<Option<Body>, Failure> {
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_RESPONSE_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|error| {
                self.broken(format!(
                    "reading the answer to {name}: {}",
                    describe_io(&error)
                ))
            })?;
        if read == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            if interrupt::requested() {
                return Ok(None);
            }
            return Err(self.broken(format!("the answer to {name} ends in the middle of a line")));
        }
        let response = Response::from_line(&line).map_err(|error| self.broken(error))?;
        match response.id {
            Some(answered) if answered != id => Err(self.broken(format!(
                "minder answered request {answered} while minderctl waited for {id}"
            ))),
            _ => Ok(Some(response.body)),
        }
    }

    fn broken(&self, what: String) -> Failure {
        Failure::Broken(format!("{}: {what}", self.path.display()))
    }

    fn closed(&self, name: &str) -> Failure {
        self.broken(format!(
            "minder closed the connection before the end of its answer to {name}"
        ))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The descriptor's number may be reused once it is closed: a late Ctrl-C must
        // not shut down whatever gets it.
        interrupt::disarm(self.raw_fd());
    }
}

/// `ENOENT: No such file or directory` for an OS error: the errno's name, which the
/// man page's advice refers to, then its text.
pub fn describe_io(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).to_string(),
        None => error.to_string(),
    }
}

/// Ctrl-C while following a stream: end quietly rather than die in the middle of a
/// line. The handler records the request and shuts the socket down for reading, so the
/// blocked (or next) read returns end of file at once and the stream loop sees why; there
/// is no window in which the signal can be missed. A second Ctrl-C (say, while standard
/// output is blocked) restores the default action and kills minderctl as usual.
pub mod interrupt {
    use std::os::fd::RawFd;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    static REQUESTED: AtomicBool = AtomicBool::new(false);
    static SOCKET: AtomicI32 = AtomicI32::new(-1);

    /// Whether Ctrl-C has been pressed since `arm`.
    pub fn requested() -> bool {
        REQUESTED.load(Ordering::SeqCst)
    }

    /// Installs the SIGINT handler for a stream read from `socket`.
    pub fn arm(socket: RawFd) {
        SOCKET.store(socket, Ordering::SeqCst);
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_sigint),
            nix::sys::signal::SaFlags::SA_RESTART,
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only touches atomics and calls shutdown, signal and raise,
        // which are async-signal-safe.
        if let Err(errno) =
            unsafe { nix::sys::signal::sigaction(nix::sys::signal::SIGINT, &action) }
        {
            // Without the handler Ctrl-C still ends minderctl, only not quietly.
            eprintln!("minderctl: warning: cannot handle Ctrl-C: {errno}");
        }
    }

    /// Forgets `socket`, which is about to be closed.
    pub fn disarm(socket: RawFd) {
        let _ = SOCKET.compare_exchange(socket, -1, Ordering::SeqCst, Ordering::SeqCst);
    }

    extern "C" fn on_sigint(_: libc::c_int) {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            // SAFETY: signal and raise are async-signal-safe.
            unsafe {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::raise(libc::SIGINT);
            }
            return;
        }
        let socket = SOCKET.load(Ordering::SeqCst);
        if socket >= 0 {
            // SAFETY: shutdown is async-signal-safe; the socket outlives the stream,
            // which is the only time the handler is installed.
            unsafe {
                libc::shutdown(socket, libc::SHUT_RD);
            }
        }
    }
}
