//! Reader tasks: one per captured pipe, turning a service's output into lines for the
//! writer thread of its stream (which formats them, see `format.rs`) and the tail.
//!
//! A reader runs as a tokio task on the loop's runtime and never blocks: it reads only
//! when the pipe is readable, and before queueing a line it acquires that line's bytes
//! from its service stream's queue budget (a semaphore of byte permits). When the budget
//! is spent (the sink is slow or blocked), the reader waits for permits and stops
//! reading, so that pipe fills and the service blocks in `write`: back-pressure on that
//! service and stream alone. Other services, and the same service's other stream, have
//! their own budgets and go on. With `log_overflow = "drop"` the reader does not wait:
//! a line that finds the budget spent is dropped and counted (`lines_dropped`), so the
//! service is never slowed down; the first drop, and then at most one line every
//! `DROP_REPORT_EVERY`, says so in minder's log with the number dropped since.
//!
//! When minder gives up on output at exit, the hub closes the budgets: a reader then
//! reads what is left in its pipe at full speed and counts each line as dropped instead
//! of queueing it, so the hub can say how many lines were lost.
//!
//! It must not decide anything about the service's life: end of file only ends the
//! reader (grandchildren may hold the pipe; exits come from the reaper).

use super::TappedLine;
use super::format;
use super::tail::Tail;
use super::writer::{Counters, Line, LineCounts, Message, Source, Stream};
use crate::spec::LogOverflow;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::unix::pipe;
use tokio::sync::TryAcquireError;
use tokio::sync::{Semaphore, broadcast};

/// Read size. The buffer exists only while bytes are in flight (see `pump`).
const READ_CHUNK: usize = 16 * 1024;

/// With `log_overflow = "drop"`, how often a stream that keeps dropping says so.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Per-service output state, shared by the service's two readers, the writer threads
/// (through `LineCounts`) and the hub. Created by `OutputHub::attach` on a name's first
/// attach and kept across restarts (the tail of a crashed run is what an operator wants
/// to see); dropped when the hub forgets the name and the last reader ends.
#[derive(Debug)]
pub struct ServiceOutput {
    /// The service's full name (`web.0`), shared with every line it writes.
    pub name: Arc<str>,
    /// The queue budget and line counts of its stdout and stderr (`Stream::index`).
    pub streams: [StreamQueue; 2],
    /// The last lines (without prefix), both streams interleaved in arrival order.
    pub tail: Mutex<Tail>,
}

/// One stream of one service: its budget of bytes read but not yet written, and the
/// accounting of its lines.
#[derive(Debug)]
pub struct StreamQueue {
    /// Byte permits for lines queued but not yet written; `queue_bytes` in total.
    /// Closed when minder gives up on output at exit.
    pub budget: Arc<Semaphore>,
    /// Size of `budget` in permits, which caps what one line can ask for.
    pub queue_bytes: u32,
    pub counts: Arc<LineCounts>,
}

impl ServiceOutput {
    pub fn new(name: &str, queue_bytes: u32, tail_bytes: usize) -> ServiceOutput {
        let queue = || StreamQueue {
            budget: Arc::new(Semaphore::new(queue_bytes as usize)),
            queue_bytes,
            counts: Arc::new(LineCounts::default()),
        };
        ServiceOutput {
            name: name.into(),
            streams: [queue(), queue()],
            tail: Mutex::new(Tail::new(tail_bytes)),
        }
    }

    pub fn stream(&self, stream: Stream) -> &StreamQueue {
        &self.streams[stream.index()]
    }

    /// The tail, even if a holder panicked (it holds plain bytes; nothing to repair).
    pub fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Everything one reader task holds. Created by `OutputHub::attach`, moved into the
/// task, dropped when the task ends (EOF, read error, writer gone, or aborted through
/// `Attachment::detach`); dropping closes the pipe's read end.
pub struct Reader {
    /// The pipe's read end, registered with the runtime's reactor.
    pub receiver: pipe::Receiver,
    pub stream: Stream,
    pub service: Arc<ServiceOutput>,
    /// To the writer thread of `stream`.
    pub sender: mpsc::Sender<Message>,
    /// The hub's counters (`lines_dropped`).
    pub counters: Arc<Counters>,
    /// Longest piece written as one line; longer lines are split into pieces of this
    /// size, each prefixed, none lost.
    pub max_line: usize,
    /// The hub's tap for followers (`OutputHub::follow`); sent to only while one
    /// listens.
    pub tap: broadcast::Sender<Arc<TappedLine>>,
    /// Wait for budget (`Block`) or drop the line when there is none (`Drop`).
    pub overflow: LogOverflow,
    /// With `Drop`: lines dropped since the last report, and when that was.
    pub drops: Mutex<DropReport>,
}

/// What a reader has dropped and not yet said (`log_overflow = "drop"`).
#[derive(Debug, Default)]
pub struct DropReport {
    unreported: u64,
    last_report: Option<Instant>,
}

impl Reader {
    /// Reads until end of file (or a read error), emitting complete lines as they come
    /// and the unterminated rest at the end.
    pub async fn pump(self) {
        // Bytes read but not yet emitted: at most one partial line plus one read.
        // Empty, with no allocation, whenever the service is quiet.
        let mut pending: Vec<u8> = Vec::new();
        // The time stamped on the lines a read completes: the moment they arrived.
        let mut time = SystemTime::now();
        loop {
            if self.receiver.readable().await.is_err() {
                break;
            }
            pending.reserve(READ_CHUNK);
            match self.receiver.try_read_buf(&mut pending) {
                Ok(0) => break,
                Ok(_) => time = SystemTime::now(),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    release_if_empty(&mut pending);
                    continue;
                }
                Err(_) => break,
            }
            let consumed = match self.emit_complete(&pending, time).await {
                Some(consumed) => consumed,
                None => return,
            };
            pending.drain(..consumed);
            release_if_empty(&mut pending);
        }
        // End of file: what is left has no newline; emit it anyway (in pieces if long).
        let consumed = match self.emit_complete(&pending, time).await {
            Some(consumed) => consumed,
            None => return,
        };
        if consumed < pending.len() {
            self.emit(&pending[consumed..], time).await;
        }
    }

    /// Emits every complete line and every full-size piece at the start of `bytes`;
    /// returns how many bytes were used, or `None` if the writer is gone.
    async fn emit_complete(&self, bytes: &[u8], time: SystemTime) -> Option<usize> {
        let mut start = 0;
        loop {
            let rest = &bytes[start..];
            let window = &rest[..rest.len().min(self.max_line + 1)];
            let (line_length, used) = match window.iter().position(|&b| b == b'\n') {
                Some(newline) => (newline, newline + 1),
                None if rest.len() > self.max_line => {
                    let cut = piece_end(rest, self.max_line);
                    (cut, cut)
                }
                None => return Some(start),
            };
            if !self.emit(&rest[..line_length], time).await {
                return None;
            }
            start += used;
        }
    }

    /// Queues one line (without newline): waits for its bytes of budget (or, with
    /// `log_overflow = "drop"`, drops it if there are none), records it in the tail,
    /// hands it to the writer. False if the writer thread is gone.
    async fn emit(&self, line: &[u8], time: SystemTime) -> bool {
        let service = &self.service;
        let queue = service.stream(self.stream);
        // The formatted line is about this long (JSON escaping may add more; the
        // budget bounds memory, it need not be exact).
        let length = line.len() + service.name.len() + format::OVERHEAD;
        let wanted = u32::try_from(length)
            .unwrap_or(u32::MAX)
            .min(queue.queue_bytes);
        let budget = Arc::clone(&queue.budget);
        let acquired = match self.overflow {
            LogOverflow::Block => budget.acquire_many_owned(wanted).await.ok(),
            LogOverflow::Drop => match budget.try_acquire_many_owned(wanted) {
                Ok(permit) => Some(permit),
                Err(TryAcquireError::NoPermits) => {
                    // The sink is behind: this line is dropped so the service is not
                    // slowed down. It still reaches the tail.
                    self.record(service, line, time);
                    self.dropped_for_overflow(queue);
                    return true;
                }
                Err(TryAcquireError::Closed) => None,
            },
        };
        let Some(permit) = acquired else {
            // The budget is closed only when minder gives up on output at exit: the
            // line is dropped, and counted for the report of what was lost.
            queue.counts.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.lines_dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        self.record(service, line, time);
        queue.counts.queued.fetch_add(1, Ordering::Relaxed);
        self.sender
            .send(Message::Line(Line {
                bytes: line.to_vec(),
                permit: Some(permit),
                source: Some(Source {
                    service: Arc::clone(&service.name),
                    stream: self.stream,
                    time,
                    counts: Arc::clone(&queue.counts),
                }),
            }))
            .is_ok()
    }

    /// Keeps `line` in the service's tail and hands it to followers, both under the
    /// tail's lock, so `OutputHub::follow` sees each line exactly once.
    fn record(&self, service: &ServiceOutput, line: &[u8], time: SystemTime) {
        let mut tail = service.tail();
        tail.push(line);
        if self.tap.receiver_count() > 0 {
            let _ = self.tap.send(Arc::new(TappedLine {
                service: service.name.clone(),
                stream: self.stream,
                line: line.to_vec(),
                time,
            }));
        }
    }

    /// Counts a line dropped for `log_overflow = "drop"` and says so in minder's log
    /// at the first drop and then at most every `DROP_REPORT_EVERY`.
    fn dropped_for_overflow(&self, queue: &StreamQueue) {
        queue.counts.dropped.fetch_add(1, Ordering::Relaxed);
        self.counters.lines_dropped.fetch_add(1, Ordering::Relaxed);
        let mut report = self
            .drops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        report.unreported += 1;
        let due = report
            .last_report
            .is_none_or(|last| last.elapsed() >= DROP_REPORT_EVERY);
        if due {
            tracing::warn!(
                service = &*self.service.name,
                stream = self.stream.name(),
                lines = report.unreported,
                "output dropped: its {} is {} KiB ahead of the sink (log_overflow = \"drop\"); {} lines dropped since the last report",
                self.stream.name(),
                queue.queue_bytes / 1024,
                report.unreported
            );
            report.unreported = 0;
            report.last_report = Some(Instant::now());
        }
    }
}

/// Where to cut a piece of an over-long line: at `max_line`, moved back (by at most
/// three bytes) to the start of a UTF-8 sequence, so a split never cuts a character
/// in two. Arbitrary bytes are cut at `max_line`.
fn piece_end(rest: &[u8], max_line: usize) -> usize {
    let mut cut = max_line;
    while cut + 3 > max_line && cut > 1 && rest.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
        cut -= 1;
    }
    if rest.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
        max_line
    } else {
        cut
    }
}

/// Frees the read buffer of a quiet service, so 1000 idle services cost no buffers.
fn release_if_empty(pending: &mut Vec<u8>) {
    if pending.is_empty() {
        *pending = Vec::new();
    } else if pending.capacity() > 2 * pending.len() + READ_CHUNK {
        pending.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::piece_end;

    #[test]
    fn pieces_do_not_cut_utf8_characters() {
        // "é" is 0xC3 0xA9: a cut at 4 would land on 0xA9.
        let text = "abcé and more".as_bytes();
        assert_eq!(piece_end(text, 4), 3);
        assert_eq!(piece_end(text, 3), 3);
        assert_eq!(piece_end(text, 5), 5);
        // Not UTF-8 at all: cut where asked.
        let bytes = [0x80u8; 10];
        assert_eq!(piece_end(&bytes, 6), 6);
    }
}
