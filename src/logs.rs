//! Output capture of services: reading their stdout and stderr pipes, writing each line
//! to minder's own stdout or stderr prefixed `NAME | `, and keeping a per-service tail
//! in memory for `minderctl logs`.
//!
//! `OutputHub` owns this. Reading happens in tokio tasks on the loop's runtime
//! (`reader.rs`); writing happens on one dedicated thread (`writer.rs`), so a blocked
//! stdout never blocks supervision. Each service has a byte budget for lines read but
//! not yet written (64 KiB by default): a service that outruns the sink is slowed by its
//! own full pipe, and only it. No line is dropped silently: over-long lines are split
//! into prefixed pieces, a partial last line is written at end of file, bytes that are
//! not UTF-8 pass through untouched, and lines a failing sink refuses are counted
//! (`lines_lost`). minder's own log lines can go through the same thread
//! (`own_log_writer`): they are dropped and counted when its queue is full, so logging
//! never blocks the loop.
//!
//! Memory: an idle service costs its name, a semaphore, an empty tail and two parked
//! tasks with their reactor registrations (about 3.5 KiB measured); read buffers exist only while bytes are in flight and the
//! tail grows only as output arrives (measured in `tests::thousand_idle_services_are_cheap`).
//!
//! This module must not decide anything from what it reads: end of file is not an exit
//! (grandchildren may hold a pipe open), and it never signals or waits for processes.

mod reader;
mod tail;
#[cfg(test)]
mod tests;
mod writer;

pub use self::writer::{Sinks, Stream};

use self::reader::{Reader, ServiceOutput};
use self::writer::{Counters, Message};
use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::net::unix::pipe;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

/// Sizes of the capture machinery. The defaults are design.md's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    /// Per service: bytes of lines read but not yet written. When spent, the service's
    /// readers stop reading (back-pressure). Raised to fit at least one full line.
    pub queue_bytes: usize,
    /// Per service: bytes of the in-memory tail.
    pub tail_bytes: usize,
    /// Longest line written as one; longer ones are split into pieces of this size.
    pub max_line: usize,
    /// Bytes of minder's own log lines queued for the writer; past it they are dropped
    /// and counted.
    pub own_queue_bytes: usize,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            queue_bytes: 64 * 1024,
            tail_bytes: 64 * 1024,
            max_line: 16 * 1024,
            own_queue_bytes: 256 * 1024,
        }
    }
}

/// The capture of all services' output. Created once by the runtime (before or inside
/// its tokio runtime; `attach` needs the runtime) and held by it for minder's life.
/// Dropping it drops the hub's channel end; the writer thread ends once every reader
/// and `OwnLogWriter` is gone too, after writing what is queued.
pub struct OutputHub {
    /// To the writer thread; cloned into every reader task and `OwnLogWriter`.
    sender: mpsc::Sender<Message>,
    /// Per-service state by full name (`web.0`). Entries are created on first attach
    /// and kept across restarts; `forget` removes one (service removed by a reload).
    services: Mutex<HashMap<String, Arc<ServiceOutput>>>,
    /// Sizes, fixed at creation (`max_line` at least 1).
    config: OutputConfig,
    /// Shared with the writer thread and `OwnLogWriter`s.
    counters: Arc<Counters>,
    /// Byte permits for minder's own lines (see `own_log_writer`).
    own_queue: Arc<Semaphore>,
}

/// The reader tasks of one attach. Returned by `attach`; dropping it leaves the readers
/// running until end of file. `detach` ends them early (a service whose grandchildren
/// keep its pipes open after it exited, once the runtime has given them time to drain).
#[derive(Debug)]
pub struct Attachment {
    /// Abort handles of the stdout and stderr reader tasks.
    readers: [AbortHandle; 2],
}

impl Attachment {
    /// Stops both readers now; their pipes close, unread output is lost.
    pub fn detach(&self) {
        for reader in &self.readers {
            reader.abort();
        }
    }

    /// Both readers have ended (end of file on both pipes, or detached).
    pub fn is_finished(&self) -> bool {
        self.readers.iter().all(AbortHandle::is_finished)
    }
}

impl OutputHub {
    /// A hub writing to minder's stdout and stderr with the default sizes.
    pub fn new() -> io::Result<OutputHub> {
        OutputHub::with_sinks(OutputConfig::default(), Sinks::standard())
    }

    /// A hub writing to `sinks` (tests; later, log files). Starts the writer thread.
    pub fn with_sinks(config: OutputConfig, sinks: Sinks) -> io::Result<OutputHub> {
        let max_line = config.max_line.max(1);
        let config = OutputConfig { max_line, ..config };
        let counters = Arc::new(Counters::default());
        let sender = writer::start(sinks, Arc::clone(&counters))?;
        Ok(OutputHub {
            sender,
            services: Mutex::new(HashMap::new()),
            own_queue: Arc::new(Semaphore::new(
                config.own_queue_bytes.min(Semaphore::MAX_PERMITS),
            )),
            config,
            counters,
        })
    }

    /// Starts reading a service's stdout and stderr pipes (the read ends from
    /// `process::spawn`). Must be called inside the tokio runtime. Fails if either fd is
    /// not a pipe's read end or there is no runtime; the fds are closed then.
    pub fn attach(&self, name: &str, stdout: OwnedFd, stderr: OwnedFd) -> io::Result<Attachment> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|error| io::Error::other(format!("attach {name}: {error}")))?;
        let stdout = pipe::Receiver::from_owned_fd(stdout)?;
        let stderr = pipe::Receiver::from_owned_fd(stderr)?;
        let service = self.service(name);
        let spawn = |receiver, stream| {
            let reader = Reader {
                receiver,
                stream,
                service: Arc::clone(&service),
                sender: self.sender.clone(),
                max_line: self.config.max_line,
            };
            runtime.spawn(reader.pump()).abort_handle()
        };
        Ok(Attachment {
            readers: [spawn(stdout, Stream::Stdout), spawn(stderr, Stream::Stderr)],
        })
    }

    /// The last `max_lines` lines of a service's output (all that is kept with `None`),
    /// each ending in `\n`, without prefix; `None` for a name never attached.
    pub fn tail(&self, name: &str, max_lines: Option<usize>) -> Option<Vec<u8>> {
        let service = self.services().get(name).cloned()?;
        let lines = service.tail().last_lines(max_lines);
        Some(lines)
    }

    /// Drops a service's tail and budget (it was removed from the tree). Readers still
    /// running keep their own reference until they end.
    pub fn forget(&self, name: &str) {
        self.services().remove(name);
    }

    /// A `Write` (and `tracing_subscriber` `MakeWriter`) for minder's own log lines:
    /// each write is queued whole to the writer thread, for minder's stderr, and never
    /// blocks; when the sink has fallen `own_queue_bytes` behind, writes are dropped and
    /// counted in `own_lines_dropped`.
    pub fn own_log_writer(&self) -> OwnLogWriter {
        OwnLogWriter {
            sender: self.sender.clone(),
            queue: Arc::clone(&self.own_queue),
            queue_bytes: u32::try_from(self.config.own_queue_bytes).unwrap_or(u32::MAX),
            counters: Arc::clone(&self.counters),
        }
    }

    /// Lines the sinks refused (write errors such as a closed stdout).
    pub fn lines_lost(&self) -> u64 {
        self.counters.lines_lost.load(Ordering::Relaxed)
    }

    /// minder's own lines dropped because the sink was too far behind.
    pub fn own_lines_dropped(&self) -> u64 {
        self.counters.own_lines_dropped.load(Ordering::Relaxed)
    }

    /// Waits until everything queued so far is written, at most `timeout`; true if it
    /// was. Blocks the calling thread: for the end of minder's shutdown, not the loop.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        if self.sender.send(Message::Flush(ack)).is_err() {
            return false;
        }
        done.recv_timeout(timeout).is_ok()
    }

    fn service(&self, name: &str) -> Arc<ServiceOutput> {
        let mut services = self.services();
        let service = services.entry(name.to_string()).or_insert_with(|| {
            // At least one full line (prefix + max_line + newline) must fit the budget.
            let queue_bytes = self
                .config
                .queue_bytes
                .max(name.len() + 3 + self.config.max_line + 1);
            let queue_bytes = u32::try_from(queue_bytes).unwrap_or(u32::MAX);
            Arc::new(ServiceOutput::new(
                name,
                queue_bytes,
                self.config.tail_bytes,
            ))
        });
        Arc::clone(service)
    }

    fn services(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ServiceOutput>>> {
        self.services
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// minder's own log lines into the writer thread (see `OutputHub::own_log_writer`).
/// Cheap to clone; each clone holds a channel end, so the writer thread lives as long as
/// any of them.
#[derive(Clone, Debug)]
pub struct OwnLogWriter {
    /// To the writer thread; keeps it alive while this clone lives.
    sender: mpsc::Sender<Message>,
    /// The hub's `own_queue`: byte permits shared by every clone, so all of minder's
    /// own lines together are bounded.
    queue: Arc<Semaphore>,
    /// Size of `queue`, the cap on what one write can ask for.
    queue_bytes: u32,
    /// The hub's counters (`own_lines_dropped`).
    counters: Arc<Counters>,
}

impl io::Write for OwnLogWriter {
    /// Queues `bytes` as written (tracing's formatter writes one whole event per call).
    /// Never blocks and never fails: a full queue or a gone writer counts a drop.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let wanted = u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .min(self.queue_bytes);
        let queued = match Arc::clone(&self.queue).try_acquire_many_owned(wanted) {
            Ok(permit) => self
                .sender
                .send(Message::Line {
                    stream: Stream::Stderr,
                    bytes: bytes.to_vec(),
                    permit: Some(permit),
                })
                .is_ok(),
            Err(_) => false,
        };
        if !queued {
            self.counters
                .own_lines_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for OwnLogWriter {
    type Writer = OwnLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
