//! The log-file writer: with `log_dir` set, one thread writes every service's lines to
//! its own file, `<log_dir>/<service>.log` (both streams, each line tagged with its
//! stream), rotates it by size and reopens it on SIGUSR1.
//!
//! Rotation happens between lines, never inside one: before a line that would take the
//! file past `log_max_size` (unless the file is empty), the file is closed,
//! `NAME.log.K-1` becomes `NAME.log.K` ... `NAME.log` becomes `NAME.log.1` (the newest
//! old file), the oldest beyond `log_keep` is replaced, and a new `NAME.log` is opened.
//! So a file never exceeds the limit unless one line alone does, and the old files
//! and the current one, read oldest first, hold the service's last lines in order.
//!
//! SIGUSR1 (`Message::Reopen`) closes every file; each is opened again by name at its
//! service's next line. That is what logrotate's default mode needs: it renames
//! `NAME.log` away, signals minder, and minder creates a fresh `NAME.log`.
//!
//! A file that cannot be opened or written (a full disk, a directory removed, a
//! read-only remount) never stops anything: its lines are counted as dropped
//! (`lines_dropped`), the failure is logged once when it starts and once when writing
//! works again, with how many lines were lost in between. While it fails, minder tries
//! again at most once a second (and at every SIGUSR1), so a disk that gets space back
//! heals on its own. A write that stopped in the middle of a line leaves a newline
//! before the next one, so no two lines are ever glued together.
//!
//! One thread serves every file: writes to local files are short, and it keeps the
//! thread count independent of the number of services. A slow file system slows every
//! service's output (each by its own budget, as for minder's stdout), never the loop.
//! This thread must not read pipes, touch the tail, or wait on the loop; it formats
//! the lines it takes (`format.rs`, `Layout::OwnFile`).

use super::format::{Layout, Style};
use super::writer::{Counters, Line, Message};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `log_dir` and its rotation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSettings {
    /// The directory, created by `create_log_dir` before the tree starts.
    pub dir: PathBuf,
    /// Rotate a file before a line would take it past this many bytes.
    pub max_size: u64,
    /// Old files kept: `NAME.log.1` (newest) to `NAME.log.KEEP`.
    pub keep: u32,
}

/// Mode of a directory `create_log_dir` makes (less minder's umask).
const DIR_MODE: u32 = 0o755;

/// Mode of a log file minder creates (less minder's umask): readable by all, like the
/// directory; services' output that must stay private needs a stricter umask.
const FILE_MODE: u32 = 0o644;

/// Bytes of lines gathered for one file before they are written with one call. Small
/// against a service's budget, so its reader refills while the file is written.
const BUFFER_BYTES: usize = 16 * 1024;

/// While a file fails, how often writing to it is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Creates `dir` and its missing parents (mode 0755 less the umask); an existing
/// directory is left as it is. The error names the directory.
pub fn create_log_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let made = fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir);
    match made {
        Ok(()) if dir.is_dir() => Ok(()),
        Ok(()) => Err(format!("log_dir {}: not a directory", dir.display())),
        Err(error) => Err(format!(
            "log_dir {}: cannot create it: {error}",
            dir.display()
        )),
    }
}

/// Whether the last byte of `file` (`size` bytes long) is a newline; an unreadable
/// one counts as a newline (nothing is added).
fn ends_with_newline(file: &File, size: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut last = [0u8; 1];
    match file.read_at(&mut last, size.saturating_sub(1)) {
        Ok(1) => last[0] == b'\n',
        _ => true,
    }
}

/// Starts the file writer thread. It ends when every sender is dropped, after writing
/// what is queued.
pub fn start(
    settings: FileSettings,
    style: Style,
    counters: Arc<Counters>,
) -> io::Result<mpsc::Sender<Message>> {
    let (sender, receiver) = mpsc::channel();
    let writer = FileWriter {
        settings,
        style,
        counters,
        files: HashMap::new(),
        giving_up: false,
    };
    std::thread::Builder::new()
        .name("minder-logfiles".into())
        .spawn(move || writer.run(&receiver))?;
    Ok(sender)
}

/// The state of the file writer thread; lives on that thread only.
struct FileWriter {
    settings: FileSettings,
    style: Style,
    counters: Arc<Counters>,
    /// One entry per service that has written a line, by full name; kept for the
    /// thread's life (a closed file costs its path and an empty buffer).
    files: HashMap<Arc<str>, LogFile>,
    /// Set by `Message::GiveUp`: service lines arriving later are not written.
    giving_up: bool,
}

impl FileWriter {
    fn run(mut self, receiver: &mpsc::Receiver<Message>) {
        loop {
            let message = match receiver.try_recv() {
                Ok(message) => message,
                Err(mpsc::TryRecvError::Empty) => {
                    // Nothing more queued: write what is gathered (which releases the
                    // lines' budget) before sleeping.
                    self.flush_all();
                    match receiver.recv() {
                        Ok(message) => message,
                        Err(mpsc::RecvError) => return,
                    }
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.flush_all();
                    return;
                }
            };
            self.accept(message);
        }
    }

    fn accept(&mut self, message: Message) {
        match message {
            Message::Line(line) if line.source.is_none() => {
                // minder's own lines go to stderr, never here; should one come, it is
                // counted rather than written into a service's file.
                self.counters.refused(&line);
            }
            Message::Line(line) if self.giving_up => {
                // Not finished: the hub counts it as given up.
                drop(line);
            }
            Message::Line(mut line) => {
                line.format(&self.style, Layout::OwnFile);
                let Some(service) = line.source.as_ref().map(|s| Arc::clone(&s.service)) else {
                    return;
                };
                let file = self.files.entry(Arc::clone(&service)).or_insert_with(|| {
                    LogFile::new(self.settings.dir.join(format!("{service}.log")))
                });
                file.push(line, &self.settings, &self.counters);
            }
            Message::Flush(ack) => {
                self.flush_all();
                let _ = ack.send(());
            }
            Message::GiveUp(ack) => {
                self.giving_up = true;
                // Files take what they are given at once: nothing is left half-written.
                self.flush_all();
                let _ = ack.send(());
            }
            Message::Reopen => {
                self.flush_all();
                for file in self.files.values_mut() {
                    file.close_for_reopen();
                }
            }
            Message::Forget(service) => {
                if let Some(mut file) = self.files.remove(&service) {
                    file.flush(&self.counters);
                }
            }
        }
    }

    fn flush_all(&mut self) {
        for file in self.files.values_mut() {
            file.flush(&self.counters);
        }
    }
}

/// One service's log file.
struct LogFile {
    /// `<log_dir>/<service>.log`.
    path: PathBuf,
    /// The open file; `None` before the first line, after a reopen, and while opening
    /// or writing fails.
    file: Option<File>,
    /// Bytes in the open file that count towards `max_size`: its length when opened,
    /// plus what minder wrote since.
    size: u64,
    /// Formatted lines gathered for one write...
    buffer: Vec<u8>,
    /// ... and each of them (its length in `buffer`, its budget and counts).
    lines: Vec<(usize, Line)>,
    /// The open file ends inside a line (read from it when opened): the next write
    /// starts with a newline.
    torn: bool,
    /// Set while the file cannot be opened or written.
    failure: Option<Failure>,
    /// Set while rotating fails (logged once, until a rotation works).
    rotation_failing: bool,
}

/// A failure episode of one file.
struct Failure {
    /// When it was last tried; `None` after a SIGUSR1 (try at once).
    tried: Option<Instant>,
    /// Lines dropped since it began.
    dropped: u64,
}

impl LogFile {
    fn new(path: PathBuf) -> LogFile {
        LogFile {
            path,
            file: None,
            size: 0,
            buffer: Vec::new(),
            lines: Vec::new(),
            torn: false,
            failure: None,
            rotation_failing: false,
        }
    }

    /// Gathers one formatted line, rotating first if it would take the file past
    /// `max_size`, and writing once enough is gathered.
    fn push(&mut self, mut line: Line, settings: &FileSettings, counters: &Counters) {
        if self.file.is_none() && self.may_try() {
            self.open();
        }
        let bytes = std::mem::take(&mut line.bytes);
        let used = self.size + self.buffer.len() as u64;
        if self.file.is_some() && used > 0 && used + bytes.len() as u64 > settings.max_size {
            self.flush(counters);
            if self.file.is_some() {
                self.rotate(settings.keep);
            }
        }
        self.buffer.extend_from_slice(&bytes);
        self.lines.push((bytes.len(), line));
        if self.buffer.len() >= BUFFER_BYTES {
            self.flush(counters);
        }
    }

    /// Whether opening or writing may be tried now: always, unless the file is failing
    /// and was tried less than `RETRY_EVERY` ago.
    fn may_try(&self) -> bool {
        match &self.failure {
            None => true,
            Some(failure) => failure
                .tried
                .is_none_or(|tried| tried.elapsed() >= RETRY_EVERY),
        }
    }

    fn open(&mut self) {
        let opened = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(&self.path)
            .and_then(|file| Ok((file.metadata()?.len(), file)));
        match opened {
            Ok((size, file)) => {
                // The file itself says whether it ends inside a line: a write cut
                // short by a full disk (every failure closes the file, so the next
                // try comes through here), or another program's partial line.
                self.torn = size > 0 && !ends_with_newline(&file, size);
                self.file = Some(file);
                self.size = size;
            }
            Err(error) => self.failed("open", &error),
        }
    }

    /// Writes the gathered lines; on failure those not written are counted as dropped.
    fn flush(&mut self, counters: &Counters) {
        if self.lines.is_empty() {
            return;
        }
        if !self.may_try() {
            self.drop_lines(counters);
            return;
        }
        if self.file.is_none() {
            self.open();
        }
        let Some(file) = self.file.as_mut() else {
            self.drop_lines(counters);
            return;
        };
        let lead = usize::from(self.torn);
        if self.torn {
            self.buffer.insert(0, b'\n');
        }
        let mut written = 0;
        let mut error = None;
        while written < self.buffer.len() {
            match file.write(&self.buffer[written..]) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(count) => written += count,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        self.size += written as u64;
        if written >= lead {
            self.torn = false;
        }
        // Lines whose last byte was written are finished. (After a failure the file is
        // closed; whether it ends inside a line is read from it when it is reopened.)
        let mut end = lead;
        let mut complete = 0;
        for (length, _) in &self.lines {
            end += length;
            if end > written {
                break;
            }
            complete += 1;
        }
        for (_, line) in self.lines.drain(..complete) {
            if let Some(counts) = line.counts() {
                counts.finished.fetch_add(1, Ordering::Relaxed);
            }
        }
        match error {
            None => {
                self.buffer.clear();
                self.recovered();
                self.shrink();
            }
            Some(error) => {
                self.failed("write", &error);
                self.drop_lines(counters);
            }
        }
    }

    /// Counts every gathered line as dropped and empties the buffer.
    fn drop_lines(&mut self, counters: &Counters) {
        if let Some(failure) = &mut self.failure {
            failure.dropped += self.lines.len() as u64;
        }
        for (_, line) in self.lines.drain(..) {
            counters.refused(&line);
        }
        self.buffer.clear();
        self.shrink();
    }

    /// A quiet service keeps no buffer.
    fn shrink(&mut self) {
        if self.buffer.capacity() > BUFFER_BYTES * 2 {
            self.buffer = Vec::new();
        }
        if self.lines.capacity() > 1024 {
            self.lines = Vec::new();
        }
    }

    /// Opening or writing failed: the file is closed (a later try opens it anew, so a
    /// file removed or a directory remounted meanwhile is found again), and the failure
    /// is logged if it begins an episode.
    fn failed(&mut self, what: &str, error: &io::Error) {
        self.file = None;
        match &mut self.failure {
            Some(failure) => failure.tried = Some(Instant::now()),
            None => {
                tracing::error!(
                    "{what} {}: {error}; its lines are dropped and counted until it can be written again (tried every {} s and at SIGUSR1)",
                    self.path.display(),
                    RETRY_EVERY.as_secs()
                );
                self.failure = Some(Failure {
                    tried: Some(Instant::now()),
                    dropped: 0,
                });
            }
        }
    }

    /// A write went through: ends a failure episode, if one was on.
    fn recovered(&mut self) {
        if let Some(failure) = self.failure.take() {
            tracing::info!(
                dropped = failure.dropped,
                "{} is written again; {} lines were dropped while it could not be",
                self.path.display(),
                failure.dropped
            );
        }
    }

    /// SIGUSR1: close now; the next line opens the file by name again, at once even if
    /// it was failing.
    fn close_for_reopen(&mut self) {
        self.file = None;
        if let Some(failure) = &mut self.failure {
            failure.tried = None;
        }
    }

    /// Shifts the old files up by one (replacing the oldest) and starts a new file. If
    /// a rename fails (logged once until a rotation works), writing goes on in the file
    /// that is there, counted from empty, rather than losing lines.
    fn rotate(&mut self, keep: u32) {
        self.file = None;
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let mut result = Ok(());
        for n in (1..keep).rev() {
            if let Err(error) = fs::rename(numbered(n), numbered(n + 1))
                && error.kind() != io::ErrorKind::NotFound
            {
                result = Err(error);
            }
        }
        let moved = if keep == 0 {
            fs::remove_file(&self.path)
        } else {
            fs::rename(&self.path, numbered(1))
        };
        if let Err(error) = moved
            && error.kind() != io::ErrorKind::NotFound
        {
            result = Err(error);
        }
        self.open();
        match result {
            Ok(()) => self.rotation_failing = false,
            Err(error) => {
                self.size = 0;
                if !self.rotation_failing {
                    self.rotation_failing = true;
                    tracing::error!(
                        "rotate {}: {error}; writing on to the current file",
                        self.path.display()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::writer::{LineCounts, Source, Stream};
    use std::time::SystemTime;

    fn writer(dir: &Path, max_size: u64, keep: u32) -> (FileWriter, Arc<LineCounts>) {
        let writer = FileWriter {
            settings: FileSettings {
                dir: dir.to_path_buf(),
                max_size,
                keep,
            },
            style: Style::default(),
            counters: Arc::new(Counters::default()),
            files: HashMap::new(),
            giving_up: false,
        };
        (writer, Arc::new(LineCounts::default()))
    }

    fn line(text: &str, counts: &Arc<LineCounts>) -> Message {
        counts.queued.fetch_add(1, Ordering::Relaxed);
        Message::Line(Line {
            bytes: text.as_bytes().to_vec(),
            permit: None,
            source: Some(Source {
                service: "svc".into(),
                stream: Stream::Stdout,
                time: SystemTime::now(),
                counts: Arc::clone(counts),
            }),
        })
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rotation_happens_between_lines_and_keeps_the_newest_files() {
        let dir = temp_dir();
        // "stdout | N\n" is 11 bytes for N < 10: three lines fit 40 bytes, a fourth not.
        let (mut writer, counts) = writer(dir.path(), 40, 2);
        for n in 1..=9 {
            writer.accept(line(&n.to_string(), &counts));
        }
        writer.flush_all();
        let lines = |name| -> Vec<String> {
            read(dir.path(), name)
                .lines()
                .map(|l| l.trim_start_matches("stdout | ").to_string())
                .collect()
        };
        assert_eq!(lines("svc.log"), ["7", "8", "9"]);
        assert_eq!(lines("svc.log.1"), ["4", "5", "6"]);
        assert_eq!(lines("svc.log.2"), ["1", "2", "3"]);
        writer.accept(line("10", &counts));
        writer.flush_all();
        // The oldest is replaced: 1..3 are gone, nothing beyond log_keep appears.
        assert_eq!(lines("svc.log.2"), ["4", "5", "6"]);
        assert_eq!(lines("svc.log"), ["10"]);
        assert!(!dir.path().join("svc.log.3").exists());
        assert_eq!(counts.finished.load(Ordering::Relaxed), 10);
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn keep_zero_starts_over_and_a_line_longer_than_the_limit_gets_a_file_of_its_own() {
        let dir = temp_dir();
        let (mut writer, counts) = writer(dir.path(), 20, 0);
        writer.accept(line("short", &counts));
        writer.accept(line("a line much longer than twenty bytes", &counts));
        writer.accept(line("after", &counts));
        writer.flush_all();
        assert_eq!(read(dir.path(), "svc.log"), "stdout | after\n");
        let entries = fs::read_dir(dir.path()).map_or(0, |d| d.count());
        assert_eq!(entries, 1);
    }

    #[test]
    fn reopen_after_a_rename_writes_a_new_file() {
        let dir = temp_dir();
        let (mut writer, counts) = writer(dir.path(), 1 << 20, 3);
        writer.accept(line("before", &counts));
        writer.flush_all();
        fs::rename(dir.path().join("svc.log"), dir.path().join("moved"))
            .unwrap_or_else(|e| panic!("{e}"));
        // Until the reopen, lines follow the open file to its new name.
        writer.accept(line("still the old file", &counts));
        writer.accept(Message::Reopen);
        writer.accept(line("after", &counts));
        writer.flush_all();
        assert_eq!(
            read(dir.path(), "moved"),
            "stdout | before\nstdout | still the old file\n"
        );
        assert_eq!(read(dir.path(), "svc.log"), "stdout | after\n");
    }

    #[test]
    fn a_forgotten_service_has_its_lines_written_and_its_file_closed() {
        let dir = temp_dir();
        let (mut writer, counts) = writer(dir.path(), 1 << 20, 3);
        writer.accept(line("last words", &counts));
        writer.accept(Message::Forget("svc".into()));
        assert!(writer.files.is_empty());
        assert_eq!(read(dir.path(), "svc.log"), "stdout | last words\n");
        assert_eq!(counts.finished.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_file_that_ends_inside_a_line_gets_a_newline_before_the_next_one() {
        let dir = temp_dir();
        fs::write(dir.path().join("svc.log"), "cut sho").unwrap_or_else(|e| panic!("{e}"));
        let (mut writer, counts) = writer(dir.path(), 1 << 20, 3);
        writer.accept(line("next", &counts));
        writer.flush_all();
        assert_eq!(read(dir.path(), "svc.log"), "cut sho\nstdout | next\n");
    }

    #[test]
    fn a_file_that_cannot_be_written_counts_its_lines_and_heals_at_reopen() {
        let dir = temp_dir();
        let (mut writer, counts) = writer(dir.path(), 1 << 20, 3);
        // /dev/full refuses every write with ENOSPC, like a full disk.
        std::os::unix::fs::symlink("/dev/full", dir.path().join("svc.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        for n in 0..5 {
            writer.accept(line(&n.to_string(), &counts));
        }
        writer.flush_all();
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 5);
        assert_eq!(writer.counters.lines_dropped.load(Ordering::Relaxed), 5);
        // Within the retry interval, lines are dropped without another try.
        writer.accept(line("5", &counts));
        writer.flush_all();
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 6);
        fs::remove_file(dir.path().join("svc.log")).unwrap_or_else(|e| panic!("{e}"));
        writer.accept(Message::Reopen);
        writer.accept(line("back", &counts));
        writer.flush_all();
        assert_eq!(read(dir.path(), "svc.log"), "stdout | back\n");
        assert_eq!(counts.finished.load(Ordering::Relaxed), 7);
        assert!(writer.files.values().all(|file| file.failure.is_none()));
    }

    #[test]
    fn a_log_dir_that_cannot_be_made_is_an_error_naming_it() {
        let dir = temp_dir();
        let file = dir.path().join("plain-file");
        fs::write(&file, "").unwrap_or_else(|e| panic!("{e}"));
        let error = create_log_dir(&file.join("logs")).err().unwrap_or_default();
        assert!(error.contains("plain-file/logs"), "{error}");
        let error = create_log_dir(&file).err().unwrap_or_default();
        assert!(error.contains("plain-file"), "{error}");
        let made = dir.path().join("a/b");
        assert_eq!(create_log_dir(&made), Ok(()));
        assert!(made.is_dir());
    }
}
