//! The writer thread: the only code that writes captured output (and, through
//! `OwnLogWriter`, minder's own log lines) to minder's stdout and stderr.
//!
//! It runs on its own `std::thread`, so a blocked stdout (a full pipe nobody reads, a
//! stopped terminal) blocks only this thread, never the supervision loop. It receives
//! finished lines over an unbounded channel; boundedness comes from the byte permits
//! each line carries (see `reader.rs`), which it releases only once the line is written.
//! It must not read pipes, touch the tail, or do anything that could wait on the loop.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// Which of minder's streams a line goes to (a service's stdout goes to minder's stdout,
/// its stderr to minder's stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where the writer thread writes. Injectable so tests (and, later, log files) can
/// capture output; the default is minder's own fds 1 and 2.
pub struct Sinks {
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
}

impl Sinks {
    /// Duplicates of minder's fds 1 and 2. Writing through duplicates rather than
    /// `std::io::stdout()` keeps the writer thread off std's global stdout lock: a
    /// blocked write holding that lock would block any `println!` on the loop thread.
    pub fn standard() -> Sinks {
        Sinks {
            stdout: duplicate_fd(libc::STDOUT_FILENO),
            stderr: duplicate_fd(libc::STDERR_FILENO),
        }
    }
}

fn duplicate_fd(fd: libc::c_int) -> Box<dyn Write + Send> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we then own, or -1.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        // fd 1 or 2 is closed: there is nowhere to write; lines are counted as lost
        // through the write errors of a closed sink.
        return Box::new(ClosedSink);
    }
    // SAFETY: `copy` is a fresh fd owned by nobody else.
    Box::new(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(copy) })
}

/// A sink for a closed standard stream: every write fails, so lines are counted lost.
struct ClosedSink;

impl Write for ClosedSink {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What travels to the writer thread.
pub enum Message {
    /// One line, prefixed and newline-terminated. `permit` holds the line's bytes
    /// against its service's (or minder's own) queue budget until it is written.
    Line {
        stream: Stream,
        bytes: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    },
    /// Answer on the channel once every line sent before has been written.
    Flush(mpsc::SyncSender<()>),
}

/// Counters shared by the hub, the writer thread and `OwnLogWriter`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Lines the sink refused (write error other than "would block"): e.g. stdout
    /// closed. They are gone, but counted, never silently.
    pub lines_lost: AtomicU64,
    /// minder's own lines dropped because its queue was full (stdout blocked).
    pub own_lines_dropped: AtomicU64,
}

/// Bytes gathered before one write call; bounds the thread's buffer.
const BATCH_BYTES: usize = 256 * 1024;

/// Starts the writer thread. It ends when every sender (hub, readers, own-log writers)
/// is dropped.
pub fn start(sinks: Sinks, counters: Arc<Counters>) -> io::Result<mpsc::Sender<Message>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("minder-output".into())
        .spawn(move || run(receiver, sinks, &counters))?;
    Ok(sender)
}

/// A run of consecutive lines for one stream, written with one call.
struct Batch {
    stream: Stream,
    bytes: Vec<u8>,
    lines: u64,
    /// Released after the write: a service's budget counts bytes not yet written.
    permits: Vec<OwnedSemaphorePermit>,
}

fn run(receiver: mpsc::Receiver<Message>, mut sinks: Sinks, counters: &Counters) {
    let mut batch = Batch {
        stream: Stream::Stdout,
        bytes: Vec::new(),
        lines: 0,
        permits: Vec::new(),
    };
    let mut acks = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        // Take whatever else is queued, writing whenever the stream changes (keeps a
        // service's stdout/stderr order) or the batch is full.
        while let Some(message) = next {
            match message {
                Message::Line {
                    stream,
                    bytes,
                    permit,
                } => {
                    if stream != batch.stream || batch.bytes.len() >= BATCH_BYTES {
                        write_batch(&mut batch, &mut sinks, counters);
                        batch.stream = stream;
                    }
                    batch.bytes.extend_from_slice(&bytes);
                    batch.lines += 1;
                    batch.permits.extend(permit);
                }
                Message::Flush(ack) => acks.push(ack),
            }
            next = receiver.try_recv().ok();
        }
        write_batch(&mut batch, &mut sinks, counters);
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

fn write_batch(batch: &mut Batch, sinks: &mut Sinks, counters: &Counters) {
    if batch.bytes.is_empty() {
        return;
    }
    let sink = match batch.stream {
        Stream::Stdout => &mut sinks.stdout,
        Stream::Stderr => &mut sinks.stderr,
    };
    if write_all_patiently(sink.as_mut(), &batch.bytes).is_err() {
        counters
            .lines_lost
            .fetch_add(batch.lines, Ordering::Relaxed);
    }
    batch.bytes.clear();
    if batch.bytes.capacity() > 2 * BATCH_BYTES {
        batch.bytes.shrink_to(BATCH_BYTES);
    }
    batch.lines = 0;
    batch.permits.clear();
}

/// `write_all` + `flush` that waits out "would block" (minder's stdout may be a
/// non-blocking file description shared with another process) instead of losing data:
/// this thread may block; that is what it is for.
fn write_all_patiently(sink: &mut dyn Write, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match sink.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => return Err(error),
        }
    }
    loop {
        match sink.flush() {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
