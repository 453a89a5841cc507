//! Output capture of services: reading their stdout and stderr pipes, writing each line
//! to minder's own stdout or stderr prefixed `NAME | ` (or, with `log_dir`, to the
//! service's own rotated file), and keeping a per-service tail in memory for
//! `minderctl logs`.
//!
//! `OutputHub` owns this. Reading happens in tokio tasks on the loop's runtime
//! (`reader.rs`); writing happens on dedicated threads (`writer.rs` for minder's stdout
//! and stderr, one each; `files.rs` for every log file), so a blocked sink never blocks
//! supervision, nor anything bound for another sink. How a line looks (text with
//! aligned names or the stream, a time, or one JSON object) is `format.rs`, applied on
//! the writer threads. Each stream of each service has a byte budget for lines read but
//! not yet written (64 KiB by default): a service that outruns its sink is slowed by
//! its own full pipe, and only it; with `log_overflow = "drop"` its lines are dropped
//! and counted instead. No line is dropped silently: over-long lines are split into
//! pieces, a partial last line is written at end of file, bytes that are not UTF-8 pass
//! through untouched (text) or as U+FFFD (JSON), lines a failing sink refuses are
//! counted (`lines_dropped`), and at exit `drain` delivers what is left within a
//! deadline or says, per service and stream, how many lines it had to give up, and
//! which services lost lines while minder ran. minder's own log lines go through the
//! stderr thread (`own_log_writer`): they are dropped and counted when their queue is
//! full, so logging never blocks the loop.
//!
//! Memory: an idle service costs its name, two budgets, an empty tail and two parked
//! tasks with their reactor registrations (about 3.5 KiB measured); read buffers exist
//! only while bytes are in flight and the tail grows only as output arrives (measured
//! in `tests::thousand_idle_services_are_cheap`).
//!
//! This module must not decide anything from what it reads: end of file is not an exit
//! (grandchildren may hold a pipe open), and it never signals or waits for processes.

mod files;
mod format;
mod reader;
mod tail;
#[cfg(test)]
mod tests;
mod writer;

pub use self::files::{FileSettings, create_log_dir};
pub use self::format::write_time;
pub use self::writer::{Sinks, Stream};

use self::format::Style;
use self::reader::{Reader, ServiceOutput};
use self::writer::{Counters, Line, Message};
use crate::spec::{DaemonSpec, LogFormat, LogOverflow};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use std::time::SystemTime;
use tokio::net::unix::pipe;
use tokio::sync::{Semaphore, broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Sizes of the capture machinery. docs/design.md §3 states the per-service queue and
/// the line limit as behaviour; the tail and minder's own queue are internal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    /// Per service and stream: bytes of lines read but not yet written. When spent,
    /// that stream's reader stops reading (back-pressure). Raised to fit at least one
    /// full line.
    pub queue_bytes: usize,
    /// Per service: bytes of the in-memory tail.
    pub tail_bytes: usize,
    /// Longest line written as one; longer ones are split into pieces of this size.
    pub max_line: usize,
    /// Bytes of minder's own log lines queued for the stderr thread; past it they are
    /// dropped and counted.
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

/// How lines are written: where, in which layout, and what happens when a sink is
/// behind. Built from `[daemon]` by `OutputSettings::from_daemon`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSettings {
    /// `log_format = "json"`: one JSON object per line.
    pub json: bool,
    /// `log_timestamps`: a time before each text line.
    pub timestamps: bool,
    /// `log_overflow`.
    pub overflow: LogOverflow,
    /// `log_dir` and rotation; `None` writes to minder's stdout and stderr.
    pub files: Option<FileSettings>,
    /// Pad names on minder's streams to this width (the longest service name); a
    /// longer name attached later widens it.
    pub name_width: usize,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            json: false,
            timestamps: false,
            overflow: LogOverflow::Block,
            files: None,
            name_width: 0,
        }
    }
}

impl OutputSettings {
    /// The settings `[daemon]` asks for, with names aligned to the longest of `names`.
    pub fn from_daemon<'a>(
        daemon: &DaemonSpec,
        names: impl IntoIterator<Item = &'a str>,
    ) -> OutputSettings {
        OutputSettings {
            json: daemon.log_format == LogFormat::Json,
            timestamps: daemon.log_timestamps,
            overflow: daemon.log_overflow,
            files: daemon.log_dir.as_ref().map(|dir| FileSettings {
                dir: dir.clone(),
                max_size: daemon.log_max_size,
                keep: daemon.log_keep,
            }),
            name_width: names.into_iter().map(str::len).max().unwrap_or(0),
        }
    }
}

/// After `drain` gives up: how long it lets the readers count what is left in their
/// pipes and the writers settle their counts. Reading a pipe's leftovers takes
/// microseconds; a writer stuck in a write never answers, and need not (writer.rs).
const SETTLE_GRACE: Duration = Duration::from_millis(100);

/// Then how long the stderr thread gets to write the report of what was lost: a few
/// lines, written at once unless stderr is stuck too.
const REPORT_GRACE: Duration = Duration::from_millis(250);

/// The capture of all services' output. Created once by the runtime (before or inside
/// its tokio runtime; `attach` needs the runtime) and held by it for minder's life.
/// Dropping it drops the hub's channel ends; each writer thread ends once every reader
/// and `OwnLogWriter` is gone too, after writing what is queued.
pub struct OutputHub {
    /// Where each stream's service lines go (`Stream::index`): the stdout and stderr
    /// threads, or the file thread for both. Cloned into every reader task.
    writers: [mpsc::Sender<Message>; 2],
    /// The stderr thread, which writes minder's own lines; cloned into every
    /// `OwnLogWriter`.
    own: mpsc::Sender<Message>,
    /// Every writer thread once (for flushes, giving up, reopening).
    threads: Vec<mpsc::Sender<Message>>,
    /// Formatting shared with the writer threads (the name width grows at `attach`).
    style: Style,
    /// `log_overflow`, given to each reader.
    overflow: LogOverflow,
    /// `log_dir`, if the services write to files.
    log_dir: Option<std::path::PathBuf>,
    /// Per-service state by full name (`web.0`). Entries are created on first attach
    /// and kept across restarts; `forget` removes one (service removed by a reload).
    services: Mutex<HashMap<String, Arc<ServiceOutput>>>,
    /// Sizes, fixed at creation (`max_line` at least 1).
    config: OutputConfig,
    /// Shared with the writer threads, the readers and `OwnLogWriter`s.
    counters: Arc<Counters>,
    /// Byte permits for minder's own lines (see `own_log_writer`).
    own_queue: Arc<Semaphore>,
    /// Every line read, for `minderctl logs -f`: cloned into every reader, which sends
    /// only while someone listens (`follow`). Sending never waits: a listener that
    /// falls `TAP_LINES` behind loses lines and learns so from its receiver.
    tap: broadcast::Sender<Arc<TappedLine>>,
}

/// How many lines a follower of `OutputHub::follow` may fall behind before it loses
/// some (and its receiver reports the lag).
const TAP_LINES: usize = 4096;

/// A follower's receiver of every line read (see `OutputHub::follow`).
pub type Tap = broadcast::Receiver<Arc<TappedLine>>;

/// One line as a reader read it, for followers of the output.
#[derive(Debug)]
pub struct TappedLine {
    /// The service's full name (`web.0`).
    pub service: Arc<str>,
    pub stream: Stream,
    /// The line without its newline (a piece of an over-long one).
    pub line: Vec<u8>,
    /// When it was read.
    pub time: SystemTime,
}

/// The reader tasks of one attach. Returned by `attach`; dropping it leaves the readers
/// running until end of file. `detach` ends them early (a service whose grandchildren
/// keep its pipes open after it exited, once the runtime has given them time to drain).
#[derive(Debug)]
pub struct Attachment {
    /// The stdout and stderr reader tasks.
    readers: [JoinHandle<()>; 2],
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
        self.readers.iter().all(JoinHandle::is_finished)
    }

    /// Waits until both readers have ended.
    async fn finished(&mut self) {
        for reader in &mut self.readers {
            // A handle already seen ready must not be polled again.
            if !reader.is_finished() {
                let _ = reader.await;
            }
        }
    }
}

/// What `drain` could not deliver, per service and stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostLines {
    pub service: String,
    pub stream: Stream,
    pub lines: u64,
}

impl OutputHub {
    /// A hub writing as `settings` ask (to minder's stdout and stderr, or to log
    /// files in a directory that must exist) with the default sizes.
    pub fn new(settings: OutputSettings) -> io::Result<OutputHub> {
        OutputHub::with_sinks(OutputConfig::default(), settings, Sinks::standard())
    }

    /// A hub writing to `sinks` (tests inject them): service lines go to them, or to
    /// files if `settings.files` says so; minder's own lines go to `sinks.stderr`.
    /// Starts the writer threads.
    pub fn with_sinks(
        config: OutputConfig,
        settings: OutputSettings,
        sinks: Sinks,
    ) -> io::Result<OutputHub> {
        let max_line = config.max_line.max(1);
        let config = OutputConfig { max_line, ..config };
        let counters = Arc::new(Counters::default());
        let style = Style {
            json: settings.json,
            timestamps: settings.timestamps,
            name_width: Arc::new(std::sync::atomic::AtomicUsize::new(settings.name_width)),
        };
        let stderr = writer::start(
            "minder-stderr",
            sinks.stderr,
            style.clone(),
            Arc::clone(&counters),
        )?;
        let log_dir = settings.files.as_ref().map(|files| files.dir.clone());
        let (writers, threads) = match settings.files {
            Some(files) => {
                let files = files::start(files, style.clone(), Arc::clone(&counters))?;
                ([files.clone(), files.clone()], vec![files, stderr.clone()])
            }
            None => {
                let stdout = writer::start(
                    "minder-stdout",
                    sinks.stdout,
                    style.clone(),
                    Arc::clone(&counters),
                )?;
                (
                    [stdout.clone(), stderr.clone()],
                    vec![stdout, stderr.clone()],
                )
            }
        };
        Ok(OutputHub {
            writers,
            own: stderr,
            threads,
            style,
            overflow: settings.overflow,
            log_dir,
            services: Mutex::new(HashMap::new()),
            own_queue: Arc::new(Semaphore::new(
                config.own_queue_bytes.min(Semaphore::MAX_PERMITS),
            )),
            config,
            counters,
            tap: broadcast::Sender::new(TAP_LINES),
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
        self.style
            .name_width
            .fetch_max(name.len(), Ordering::Relaxed);
        let spawn = |receiver, stream: Stream| {
            let reader = Reader {
                receiver,
                stream,
                service: Arc::clone(&service),
                sender: self.writers[stream.index()].clone(),
                counters: Arc::clone(&self.counters),
                max_line: self.config.max_line,
                tap: self.tap.clone(),
                overflow: self.overflow,
                drops: Mutex::default(),
            };
            runtime.spawn(reader.pump())
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

    /// The last `max_lines` lines of each of `names` (those ever attached), and a
    /// subscription to every line read after them. The tails are read under their
    /// locks, which readers hold while recording and sending a line, so each line is
    /// in exactly one of the two: nothing is missed or repeated at the seam.
    pub fn follow(
        &self,
        names: &[String],
        max_lines: Option<usize>,
    ) -> (Vec<(String, Vec<u8>)>, Tap) {
        let outputs: Vec<Arc<ServiceOutput>> = {
            let services = self.services();
            names
                .iter()
                .filter_map(|name| services.get(name).cloned())
                .collect()
        };
        let tails: Vec<_> = outputs.iter().map(|output| output.tail()).collect();
        let receiver = self.tap.subscribe();
        let lines = outputs
            .iter()
            .zip(&tails)
            .map(|(output, tail)| (output.name.to_string(), tail.last_lines(max_lines)))
            .collect();
        (lines, receiver)
    }

    /// Drops a service's tail and budget (it was removed from the tree), and closes its
    /// log file once what is queued for it is written. Readers still running keep
    /// their own reference until they end (a line they still deliver opens the file
    /// again).
    pub fn forget(&self, name: &str) {
        self.services().remove(name);
        for thread in &self.threads {
            let _ = thread.send(Message::Forget(name.into()));
        }
    }

    /// A `Write` (and `tracing_subscriber` `MakeWriter`) for minder's own log lines:
    /// each write is queued whole to the stderr thread and never blocks; when stderr has
    /// fallen `own_queue_bytes` behind, writes are dropped and counted in
    /// `own_lines_dropped`. A blocked stdout does not hold them up.
    pub fn own_log_writer(&self) -> OwnLogWriter {
        OwnLogWriter {
            sender: self.own.clone(),
            queue: Arc::clone(&self.own_queue),
            queue_bytes: u32::try_from(self.config.own_queue_bytes).unwrap_or(u32::MAX),
            counters: Arc::clone(&self.counters),
        }
    }

    /// Service lines that did not reach their sink: refused by it (a closed stdout, a
    /// log file on a full disk), dropped for `log_overflow = "drop"`, or given up by
    /// `drain`. For the metric `minder_log_lines_dropped_total`.
    pub fn lines_dropped(&self) -> u64 {
        self.counters.lines_dropped.load(Ordering::Relaxed)
    }

    /// Lines of one service (both streams) that did not reach their sink; `None` for a
    /// name never attached.
    pub fn service_lines_dropped(&self, name: &str) -> Option<u64> {
        let service = self.services().get(name).cloned()?;
        Some(
            service
                .streams
                .iter()
                .map(|queue| queue.counts.dropped.load(Ordering::Relaxed))
                .sum(),
        )
    }

    /// minder's own lines dropped because stderr was too far behind (or refused them).
    pub fn own_lines_dropped(&self) -> u64 {
        self.counters.own_lines_dropped.load(Ordering::Relaxed)
    }

    /// The directory of the services' log files, if they write to files.
    pub fn log_dir(&self) -> Option<&std::path::Path> {
        self.log_dir.as_deref()
    }

    /// SIGUSR1: every log file is closed and opened again by name at its service's
    /// next line (a file renamed away by logrotate is then created anew). A file that
    /// was failing is tried again at once. Nothing to do without `log_dir`.
    pub fn reopen(&self) {
        for thread in &self.threads {
            let _ = thread.send(Message::Reopen);
        }
    }

    /// Waits until everything queued so far on every sink is written, at most until
    /// `deadline`; true if it was.
    pub async fn flush(&self, deadline: Instant) -> bool {
        let flushed = async {
            let asked: Vec<_> = self.threads.iter().map(flush_thread).collect();
            let mut all = true;
            for done in asked {
                all &= done.await;
            }
            all
        };
        tokio::time::timeout_at(deadline, flushed)
            .await
            .unwrap_or(false)
    }

    /// minder's exit: delivers the output still on its way (what the readers will read
    /// up to end of file on every pipe of `attachments`, and what the writers hold) by
    /// `deadline`, or until `interrupt` completes (a second shutdown signal). If it has
    /// to give up, it logs per service and stream how many lines were lost, counts them
    /// in `lines_dropped`, and returns them; that takes at most `SETTLE_GRACE` and
    /// `REPORT_GRACE` more. Either way it ends with `report_dropped` (another
    /// `REPORT_GRACE` at most).
    pub async fn drain(
        self,
        mut attachments: Vec<Attachment>,
        deadline: Instant,
        interrupt: impl Future<Output = ()>,
    ) -> Vec<LostLines> {
        let delivered = async {
            for attachment in &mut attachments {
                attachment.finished().await;
            }
            self.flush(deadline).await
        };
        let why = tokio::select! {
            done = tokio::time::timeout_at(deadline, delivered) => match done {
                Ok(true) => None,
                _ => Some("shutdown_timeout reached"),
            },
            () = interrupt => Some("interrupted by a shutdown signal"),
        };
        let lost = match why {
            Some(why) => self.give_up(attachments, why).await,
            None => Vec::new(),
        };
        self.report_dropped().await;
        lost
    }

    /// At exit: a line per service that lost output while minder ran (refused or
    /// failing sinks, `log_overflow = "drop"`, or given up at exit), then what is
    /// queued for stderr is written, within `REPORT_GRACE`.
    pub async fn report_dropped(&self) {
        let services: Vec<Arc<ServiceOutput>> = self.services().values().cloned().collect();
        let mut losses: Vec<(&str, u64)> = services
            .iter()
            .map(|service| {
                let lines = service
                    .streams
                    .iter()
                    .map(|queue| queue.counts.dropped.load(Ordering::Relaxed))
                    .sum();
                (&*service.name, lines)
            })
            .filter(|(_, lines)| *lines > 0)
            .collect();
        if losses.is_empty() {
            return;
        }
        losses.sort_unstable();
        for (service, lines) in losses {
            tracing::warn!(
                service,
                dropped = lines,
                "{lines} lines of its output were dropped while minder ran"
            );
        }
        let report = Instant::now() + REPORT_GRACE;
        let _ = tokio::time::timeout_at(report, flush_thread(&self.own)).await;
    }

    /// The end of `drain` when not everything could be delivered: stop queueing, count
    /// what is left, report it.
    async fn give_up(&self, mut attachments: Vec<Attachment>, why: &str) -> Vec<LostLines> {
        let grace = Instant::now() + SETTLE_GRACE;
        let services: Vec<Arc<ServiceOutput>> = self.services().values().cloned().collect();
        let dropped_before: Vec<[u64; 2]> = services
            .iter()
            .map(|service| {
                Stream::BOTH.map(|stream| {
                    let counts = &service.stream(stream).counts;
                    counts.dropped.load(Ordering::Relaxed)
                })
            })
            .collect();
        // Closed budgets turn every reader into a counter of what is left in its pipe.
        for service in &services {
            for queue in &service.streams {
                queue.budget.close();
            }
        }
        let counted = async {
            for attachment in &mut attachments {
                attachment.finished().await;
            }
        };
        let _ = tokio::time::timeout_at(grace, counted).await;
        for attachment in &attachments {
            attachment.detach();
        }
        // The writers stop taking service lines; once they answer, what they have not
        // finished is final. One stuck in a write answers never: that write's lines
        // count as lost (a pipe has taken none of its bytes, see writer.rs).
        let settled: Vec<_> = self
            .threads
            .iter()
            .map(|thread| {
                let (ack, done) = oneshot::channel();
                let _ = thread.send(Message::GiveUp(ack));
                done
            })
            .collect();
        let _ = tokio::time::timeout_at(grace, async {
            for done in settled {
                let _ = done.await;
            }
        })
        .await;
        let mut lost = Vec::new();
        for (service, before) in services.iter().zip(dropped_before) {
            for stream in Stream::BOTH {
                let counts = &service.stream(stream).counts;
                let unwritten = counts
                    .queued
                    .load(Ordering::Relaxed)
                    .saturating_sub(counts.finished.load(Ordering::Relaxed));
                counts.dropped.fetch_add(unwritten, Ordering::Relaxed);
                self.counters
                    .lines_dropped
                    .fetch_add(unwritten, Ordering::Relaxed);
                let lines = counts.dropped.load(Ordering::Relaxed) - before[stream.index()];
                if lines > 0 {
                    lost.push(LostLines {
                        service: service.name.to_string(),
                        stream,
                        lines,
                    });
                }
            }
        }
        if !lost.is_empty() {
            tracing::warn!("gave up delivering the services' last output at exit: {why}");
        }
        for entry in &lost {
            tracing::warn!(
                service = entry.service,
                stream = entry.stream.name(),
                lines = entry.lines,
                "output lost: {} lines of its {} were not written",
                entry.lines,
                entry.stream.name()
            );
        }
        let report = Instant::now() + REPORT_GRACE;
        let _ = tokio::time::timeout_at(report, flush_thread(&self.own)).await;
        lost
    }

    fn service(&self, name: &str) -> Arc<ServiceOutput> {
        let mut services = self.services();
        let service = services.entry(name.to_string()).or_insert_with(|| {
            // At least one full line (max_line and what formatting adds) must fit.
            let queue_bytes = self
                .config
                .queue_bytes
                .max(name.len() + self.config.max_line + format::OVERHEAD);
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

/// Asks one writer thread for a flush; the returned future answers whether it was done.
fn flush_thread(thread: &mpsc::Sender<Message>) -> impl Future<Output = bool> + use<> {
    let (ack, done) = oneshot::channel();
    let sent = thread.send(Message::Flush(ack)).is_ok();
    async move { sent && done.await.is_ok() }
}

/// minder's own log lines into the stderr thread (see `OutputHub::own_log_writer`).
/// Cheap to clone; each clone holds a channel end, so the thread lives as long as any
/// of them.
#[derive(Clone, Debug)]
pub struct OwnLogWriter {
    /// To the stderr thread; keeps it alive while this clone lives.
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
        if bytes.is_empty() {
            return Ok(0);
        }
        let wanted = u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .min(self.queue_bytes);
        let queued = match Arc::clone(&self.queue).try_acquire_many_owned(wanted) {
            Ok(permit) => self
                .sender
                .send(Message::Line(Line {
                    bytes: bytes.to_vec(),
                    permit: Some(permit),
                    source: None,
                }))
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
