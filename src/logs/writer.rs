//! The writer threads of minder's stdout and stderr: the only code that writes captured
//! output (and, through `OwnLogWriter`, minder's own log lines) there. (Log files have
//! their own thread, `files.rs`; the line types and counters here are shared with it.)
//!
//! There is one thread per sink, each with its own queue, so a blocked stdout (a full
//! pipe nobody reads, a stopped terminal) blocks only the stdout thread: the services
//! writing to stdout are held back by their budgets, while their stderr lines, other
//! services' stderr lines and minder's own log lines go on, and the supervision loop
//! never waits for either. Lines arrive over an unbounded channel; boundedness comes
//! from the byte permits each line carries (see `reader.rs`), released once the line
//! is written (in runs of `RELEASE_BYTES`, so a reader waiting on its budget wakes once
//! per run rather than once per write call).
//!
//! Every service line is accounted for in its stream's `LineCounts`: `finished` once
//! written whole (or refused by the sink, then also `dropped`). A thread writes at most
//! `PIPE_BUF` bytes per call, which a pipe takes whole or not at all, so a write still
//! blocked when minder gives up at exit has written nothing, and "lines not finished"
//! is exactly what did not get out.
//!
//! A thread must not read pipes, touch the tail, or do anything that could wait on the
//! loop.

use super::format::{self, Layout, Style};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

/// Which of minder's streams a line goes to (a service's stdout goes to minder's stdout,
/// its stderr to minder's stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Position in per-stream arrays.
    pub fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Where the writer threads write. Injectable so tests can capture output; the default
/// is minder's own fds 1 and 2.
pub struct Sinks {
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
}

impl Sinks {
    /// Duplicates of minder's fds 1 and 2. Writing through duplicates rather than
    /// `std::io::stdout()` keeps the writer threads off std's global stdout lock: a
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
        // fd 1 or 2 is closed: there is nowhere to write; lines are counted as dropped
        // through the write errors of a closed sink.
        return Box::new(ClosedSink);
    }
    // SAFETY: `copy` is a fresh fd owned by nobody else.
    Box::new(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(copy) })
}

/// A sink for a closed standard stream: every write fails, so lines are counted dropped.
struct ClosedSink;

impl Write for ClosedSink {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The line accounting of one service's stream, shared by its reader task, the writer
/// thread of that stream and the hub. Only grows.
#[derive(Debug, Default)]
pub struct LineCounts {
    /// Lines handed to the writer thread.
    pub queued: AtomicU64,
    /// Lines the writer thread is done with: written whole, or refused by the sink.
    pub finished: AtomicU64,
    /// Lines that did not reach the sink: refused by it, or given up when minder had
    /// to exit before it could write them (see `OutputHub::drain`).
    pub dropped: AtomicU64,
}

/// One line for a sink.
pub struct Line {
    /// minder's own lines: the bytes to write, as they are. A service's line: its text
    /// without the newline, which the writer thread formats (`format.rs`) when it takes
    /// the line, and then holds the bytes to write.
    pub bytes: Vec<u8>,
    /// Holds the line's bytes against its service's (or minder's own) queue budget
    /// until it is written.
    pub permit: Option<OwnedSemaphorePermit>,
    /// Where a service's line came from; `None` for minder's own lines.
    pub source: Option<Source>,
}

/// The facts about a service's line that its formatting and accounting need.
pub struct Source {
    /// The service's full name (`web.0`), shared with its `ServiceOutput`.
    pub service: Arc<str>,
    pub stream: Stream,
    /// When the reader read it (the time of the read that completed it).
    pub time: SystemTime,
    /// The counts of the service stream it came from.
    pub counts: Arc<LineCounts>,
}

impl Line {
    /// The counts of the service stream the line came from (`None` for minder's own).
    pub fn counts(&self) -> Option<&Arc<LineCounts>> {
        self.source.as_ref().map(|source| &source.counts)
    }

    /// Replaces a service line's text by its formatted bytes (minder's own lines are
    /// written as they are).
    pub fn format(&mut self, style: &Style, layout: Layout) {
        if let Some(source) = &self.source {
            let mut bytes = Vec::with_capacity(self.bytes.len() + format::OVERHEAD);
            style.render(
                &mut bytes,
                layout,
                &source.service,
                source.stream,
                source.time,
                &self.bytes,
            );
            self.bytes = bytes;
        }
    }
}

/// What travels to a writer thread.
pub enum Message {
    Line(Line),
    /// Answer once every line sent before has been written (or refused).
    Flush(oneshot::Sender<()>),
    /// minder is giving up on output at exit: from now on write no service line that
    /// is not begun (minder's own lines still go out); answer once no service line is
    /// half-written, so that the counts no longer change.
    GiveUp(oneshot::Sender<()>),
    /// SIGUSR1: close the log files and open them again by name (`files.rs`); minder's
    /// own streams have nothing to reopen.
    Reopen,
    /// The service was removed from the tree: close its log file (`files.rs`).
    Forget(Arc<str>),
}

/// Counters of the whole hub, shared with the writer threads, the readers and
/// `OwnLogWriter`s.
#[derive(Debug, Default)]
pub struct Counters {
    /// Service lines that did not reach their sink (the sum of every stream's
    /// `LineCounts::dropped`, kept even for services forgotten since): the future
    /// `minder_log_lines_dropped_total`.
    pub lines_dropped: AtomicU64,
    /// minder's own lines dropped: its queue was full (stderr blocked) or the sink
    /// refused them.
    pub own_lines_dropped: AtomicU64,
}

impl Counters {
    /// A line its sink refused (or that could not be written at all): finished, and
    /// counted as dropped where it belongs.
    pub fn refused(&self, line: &Line) {
        match line.counts() {
            Some(counts) => {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                counts.finished.fetch_add(1, Ordering::Relaxed);
                self.lines_dropped.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.own_lines_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The most one write call carries: `PIPE_BUF`, which a pipe writes whole or not at all
/// (the accounting above relies on it). Small enough to credit lines promptly, large
/// enough that a flood costs a few thousand calls per second.
const CHUNK_BYTES: usize = 4096;

/// Bytes of written lines whose permits are returned together (or sooner, when the
/// queue empties). A quarter of the default budget: the reader refills while the
/// writer still has plenty queued, and a sink that gets stuck keeps at most this much
/// of a budget held by lines already written.
const RELEASE_BYTES: usize = 16 * 1024;

/// Starts a writer thread for `sink`, named `name`. It ends when every sender (hub,
/// readers, own-log writers) is dropped and its queue is written.
pub fn start(
    name: &str,
    sink: Box<dyn Write + Send>,
    style: Style,
    counters: Arc<Counters>,
) -> io::Result<mpsc::Sender<Message>> {
    let (sender, receiver) = mpsc::channel();
    let writer = Writer {
        sink,
        style,
        counters,
        queue: VecDeque::new(),
        offset: 0,
        giving_up: false,
        give_up_acks: Vec::new(),
        chunk: Vec::with_capacity(CHUNK_BYTES),
        written_permits: Vec::new(),
        written_bytes: 0,
    };
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || writer.run(&receiver))?;
    Ok(sender)
}

/// An entry of a writer's queue: a line, or a flush waiting for the lines before it.
enum Item {
    Line(Line),
    Flush(oneshot::Sender<()>),
}

/// The state of one writer thread; lives on that thread only.
struct Writer {
    sink: Box<dyn Write + Send>,
    /// How service lines are formatted (`Layout::Shared`).
    style: Style,
    counters: Arc<Counters>,
    /// Received and not yet written, in order.
    queue: VecDeque<Item>,
    /// Bytes of the front line already written.
    offset: usize,
    /// Set by `Message::GiveUp`: service lines not begun are discarded on arrival.
    giving_up: bool,
    /// Answered once no service line is half-written.
    give_up_acks: Vec<oneshot::Sender<()>>,
    /// The bytes of the current write call.
    chunk: Vec<u8>,
    /// Permits of lines written since the last release, and their bytes.
    written_permits: Vec<OwnedSemaphorePermit>,
    written_bytes: usize,
}

impl Writer {
    fn run(mut self, receiver: &mpsc::Receiver<Message>) {
        loop {
            if self.queue.is_empty() {
                self.release_permits();
                flush_patiently(self.sink.as_mut());
                self.answer_give_up();
                match receiver.recv() {
                    Ok(message) => self.accept(message),
                    Err(mpsc::RecvError) => return,
                }
            }
            // Take whatever else is queued: one write call can then carry many lines.
            while let Ok(message) = receiver.try_recv() {
                self.accept(message);
            }
            while let Some(Item::Flush(_)) = self.queue.front() {
                if let Some(Item::Flush(ack)) = self.queue.pop_front() {
                    let _ = ack.send(());
                }
            }
            if self.offset == 0 {
                self.answer_give_up();
            }
            self.write_chunk();
        }
    }

    fn accept(&mut self, message: Message) {
        match message {
            Message::Line(line) if self.giving_up && line.source.is_some() => {
                // Not finished: the hub counts it as given up.
                drop(line);
            }
            Message::Line(mut line) => {
                line.format(&self.style, Layout::Shared);
                self.queue.push_back(Item::Line(line));
            }
            Message::Reopen | Message::Forget(_) => {}
            Message::Flush(ack) => self.queue.push_back(Item::Flush(ack)),
            Message::GiveUp(ack) => {
                self.giving_up = true;
                self.give_up_acks.push(ack);
                // Keep minder's own lines, the flushes, and a service line already
                // half-written (finishing it keeps the next line from being glued to
                // its first half).
                let mut front = self.offset > 0;
                self.queue.retain(|item| {
                    let keep = match item {
                        Item::Flush(_) => true,
                        Item::Line(line) => line.source.is_none() || front,
                    };
                    front = false;
                    keep
                });
            }
        }
    }

    fn answer_give_up(&mut self) {
        for ack in self.give_up_acks.drain(..) {
            let _ = ack.send(());
        }
    }

    /// Writes the next chunk of the queue (up to the first flush) with one call and
    /// credits the lines it completed.
    fn write_chunk(&mut self) {
        self.chunk.clear();
        let mut lines = 0;
        let mut skip = self.offset;
        for item in &self.queue {
            let Item::Line(line) = item else { break };
            let rest = &line.bytes[skip..];
            skip = 0;
            let take = rest.len().min(CHUNK_BYTES - self.chunk.len());
            self.chunk.extend_from_slice(&rest[..take]);
            lines += 1;
            if self.chunk.len() == CHUNK_BYTES {
                break;
            }
        }
        if self.chunk.is_empty() {
            // Only empty lines (nothing to write) before a flush, or nothing at all.
            self.advance(0);
            return;
        }
        match write_patiently(self.sink.as_mut(), &self.chunk) {
            Ok(written) => self.advance(written),
            Err(_) => {
                // The sink refused them (stdout closed, say): gone, but counted.
                for _ in 0..lines {
                    if let Some(Item::Line(line)) = self.queue.pop_front() {
                        self.refused(&line);
                    }
                }
                self.offset = 0;
            }
        }
    }

    /// `written` more bytes of the queue went out: finish every line they complete.
    fn advance(&mut self, mut written: usize) {
        while let Some(Item::Line(line)) = self.queue.front() {
            let remaining = line.bytes.len() - self.offset;
            if written < remaining {
                self.offset += written;
                return;
            }
            written -= remaining;
            self.offset = 0;
            if let Some(Item::Line(line)) = self.queue.pop_front() {
                if let Some(counts) = line.counts() {
                    counts.finished.fetch_add(1, Ordering::Relaxed);
                }
                self.written_bytes += line.bytes.len();
                self.written_permits.extend(line.permit);
                if self.written_bytes >= RELEASE_BYTES {
                    self.release_permits();
                }
            }
        }
    }

    fn release_permits(&mut self) {
        self.written_permits.clear();
        self.written_bytes = 0;
    }

    fn refused(&self, line: &Line) {
        self.counters.refused(line);
    }
}

/// One `write` call that succeeds with at least one byte, waiting out "would block"
/// (minder's stdout may be a non-blocking file description shared with another
/// process) instead of losing data: this thread may block; that is what it is for.
fn write_patiently(sink: &mut dyn Write, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match sink.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => return Ok(written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => return Err(error),
        }
    }
}

/// `flush` for sinks that buffer (minder's own fds do not); a refusal is ignored, the
/// next write reports it for the lines concerned.
fn flush_patiently(sink: &mut dyn Write) {
    loop {
        match sink.flush() {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return,
        }
    }
}
