//! Output capture with real children and real pipes, written into injectable sinks.
//!
//! Tests that start children call `process::reap`, which collects any child of the test
//! process, so each test starts with `own_process!` (one process per test under any
//! runner, see `crate::own_process`).
//! Every wait is bounded; every test runs on a current-thread runtime like minder's.

use super::*;
use crate::process::{self, SpawnRequest, StdioMode};
use crate::spec::ServiceSpec;
use crate::supervisor::ExitStatus;
use std::io::Write;
use std::path::Path;
use std::sync::Condvar;
use tokio::time::Instant;

/// A sink that records what is written; it can be held shut (writes block, like a full
/// stdout pipe) or made to fail (like a closed stdout).
#[derive(Clone, Default)]
struct Capture {
    state: Arc<(Mutex<CaptureState>, Condvar)>,
}

#[derive(Default)]
struct CaptureState {
    bytes: Vec<u8>,
    shut: bool,
    failing: bool,
    /// Count the flood's lines instead of keeping them (it writes hundreds of MB/s).
    discard_flood: bool,
    flood_bytes: usize,
    /// With `discard_flood`: the start of a line not yet complete (a write may end
    /// anywhere in a line).
    partial_line: Vec<u8>,
}

impl Capture {
    fn shut() -> Capture {
        let capture = Capture::default();
        capture.lock().shut = true;
        capture
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) {
        self.lock().shut = false;
        self.state.1.notify_all();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    fn bytes(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (lock, opened) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        while state.shut {
            state = opened.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.failing {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        if state.discard_flood {
            let mut pending = std::mem::take(&mut state.partial_line);
            pending.extend_from_slice(buf);
            let mut lines = pending.split_inclusive(|&b| b == b'\n').peekable();
            while let Some(line) = lines.next() {
                if lines.peek().is_none() && !line.ends_with(b"\n") {
                    state.partial_line = line.to_vec();
                } else if line.starts_with(b"flood | ") {
                    state.flood_bytes += line.len();
                } else {
                    state.bytes.extend_from_slice(line);
                }
            }
        } else {
            state.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn hub_with(stdout: &Capture, stderr: &Capture) -> OutputHub {
    OutputHub::with_sinks(
        OutputConfig::default(),
        OutputSettings::default(),
        Sinks {
            stdout: Box::new(stdout.clone()),
            stderr: Box::new(stderr.clone()),
        },
    )
    .unwrap_or_else(|error| panic!("hub: {error}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("runtime: {error}"))
}

/// Spawns `sh -c script` as service `name` and attaches its output.
fn start(hub: &OutputHub, name: &str, script: &str) -> (i32, Attachment) {
    let spec = ServiceSpec::new(
        name,
        vec!["/bin/sh".into(), "-c".into(), script.into()],
        Path::new("/").to_path_buf(),
    );
    let child = process::spawn(&SpawnRequest::new(&spec, StdioMode::Capture, &[]))
        .unwrap_or_else(|error| panic!("{error}"));
    let (Some(stdout), Some(stderr)) = (child.stdout, child.stderr) else {
        panic!("no pipes");
    };
    let attachment = hub
        .attach(name, stdout, stderr)
        .unwrap_or_else(|error| panic!("attach: {error}"));
    (child.pid, attachment)
}

/// Polls `condition` every few milliseconds (letting the readers run) for up to 10 s.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_exit(pid: i32, reaped: &mut HashMap<i32, ExitStatus>) -> ExitStatus {
    let mut status = None;
    wait_until(&format!("exit of {pid}"), || {
        reaped.extend(process::reap());
        status = reaped.get(&pid).copied();
        status.is_some()
    })
    .await;
    status.unwrap_or(ExitStatus::Exited(-1))
}

fn written_bytes(pid: i32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("wchar:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn lines_are_prefixed_per_stream_and_bytes_kept() {
    crate::own_process::own_process!(lines_are_prefixed_per_stream_and_bytes_kept);
    let (out, err) = (Capture::default(), Capture::default());
    runtime().block_on(async {
        let hub = hub_with(&out, &err);
        let (pid, attachment) = start(
            &hub,
            "web.0",
            r"echo one; echo oops >&2; printf 'bin\377\376ary\n'; printf 'no newline'",
        );
        wait_until("both readers to end", || attachment.is_finished()).await;
        // Each sink has its own writer thread: wait until both have written.
        assert!(hub.flush(Instant::now() + Duration::from_secs(10)).await);
        assert_eq!(
            out.bytes(),
            b"web.0 | one\nweb.0 | bin\xff\xfeary\nweb.0 | no newline\n"
        );
        assert_eq!(err.text(), "web.0 | oops\n");
        assert_eq!(
            wait_exit(pid, &mut HashMap::new()).await,
            ExitStatus::Exited(0)
        );
        // Both streams, in arrival order (which is not fixed between two pipes).
        let tail = hub.tail("web.0", None).unwrap_or_default();
        let mut lines: Vec<&[u8]> = tail.split_inclusive(|&b| b == b'\n').collect();
        lines.sort();
        let expected: [&[u8]; 4] = [b"bin\xff\xfeary\n", b"no newline\n", b"one\n", b"oops\n"];
        assert_eq!(lines, expected);
        assert_eq!(hub.tail("web.1", None), None);
    });
}

#[test]
fn a_100_kib_line_is_split_into_prefixed_pieces_and_nothing_is_lost() {
    crate::own_process::own_process!(
        a_100_kib_line_is_split_into_prefixed_pieces_and_nothing_is_lost
    );
    let (out, err) = (Capture::default(), Capture::default());
    runtime().block_on(async {
        let hub = hub_with(&out, &err);
        let (_, attachment) = start(
            &hub,
            "big",
            "head -c 102400 /dev/zero | tr '\\0' 'a'; echo; echo after",
        );
        wait_until("readers to end", || attachment.is_finished()).await;
        assert!(hub.flush(Instant::now() + Duration::from_secs(10)).await);
    });
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    // 102400 = 6 * 16384 + 4096.
    assert_eq!(
        lines.len(),
        8,
        "{:?}",
        lines.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    for piece in &lines[..7] {
        let body = piece
            .strip_prefix("big | ")
            .unwrap_or_else(|| panic!("no prefix"));
        assert!(body.len() <= 16 * 1024 && body.bytes().all(|b| b == b'a'));
    }
    let total: usize = lines[..7].iter().map(|l| l.len() - "big | ".len()).sum();
    assert_eq!(total, 102_400);
    assert_eq!(lines[7], "big | after");
}

#[test]
fn a_flooding_service_does_not_delay_a_quiet_one() {
    crate::own_process::own_process!(a_flooding_service_does_not_delay_a_quiet_one);
    let (out, err) = (Capture::default(), Capture::default());
    out.lock().discard_flood = true;
    runtime().block_on(async {
        let hub = hub_with(&out, &err);
        let (flood, _flood_readers) = start(&hub, "flood", "exec yes flood-flood-flood");
        wait_until("the flood to flow", || out.lock().flood_bytes > 1 << 20).await;
        let (quiet, _) = start(&hub, "quiet", "echo hello from quiet");
        let started = Instant::now();
        wait_until("the quiet line", || {
            out.text().contains("quiet | hello from quiet\n")
        })
        .await;
        let latency = started.elapsed();
        // The flood is still going when the quiet line is out.
        let mut reaped: HashMap<i32, ExitStatus> = process::reap().into_iter().collect();
        assert!(!reaped.contains_key(&flood), "the flood ended early");
        assert!(
            latency < Duration::from_secs(2),
            "quiet line took {latency:?}"
        );
        process::kill_group(flood);
        wait_exit(flood, &mut reaped).await;
        wait_exit(quiet, &mut reaped).await;
    });
}

/// With the sink blocked (minder's stdout full), the flooding service is held by its
/// own full pipe while another service still gets its 100 KiB read and exits, and the
/// loop keeps running. Opening the sink lets everything through, in order, unprefixed
/// by nothing and lost by nothing.
#[test]
fn a_blocked_sink_holds_back_each_service_by_its_own_budget() {
    crate::own_process::own_process!(a_blocked_sink_holds_back_each_service_by_its_own_budget);
    let out = Capture::shut();
    out.lock().discard_flood = true;
    let err = Capture::default();
    runtime().block_on(async {
        let hub = hub_with(&out, &err);
        let (flood, _flood_readers) = start(&hub, "flood", "exec yes flood-flood-flood");
        // The flood fills its budget and its pipe, then blocks in write().
        let mut last = written_bytes(flood);
        wait_until("the flood to block", || {
            std::thread::sleep(Duration::from_millis(50));
            let now = written_bytes(flood);
            let blocked = now == last && now > 0;
            last = now;
            blocked
        })
        .await;
        // What it got out: its queue budget plus the pipe, plus one read, no more.
        assert!(
            last < 300 * 1024,
            "flood wrote {last} bytes past a blocked sink"
        );

        // A second service writing 100 KiB (more than a pipe holds) is not held back
        // by the flood: its own budget takes it, and it exits.
        let (bulk, bulk_readers) = start(
            &hub,
            "bulk",
            "head -c 102400 /dev/zero | tr '\\0' 'q' | fold -w 99",
        );
        let mut reaped = HashMap::new();
        assert_eq!(wait_exit(bulk, &mut reaped).await, ExitStatus::Exited(0));
        assert!(!reaped.contains_key(&flood));
        // The loop is alive: a timer fires on time.
        let tick = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(tick.elapsed() < Duration::from_millis(500));
        assert!(out.bytes().is_empty());
        assert!(hub.tail("flood", None).unwrap_or_default().len() <= 64 * 1024);

        out.open();
        wait_until("bulk's lines", || bulk_readers.is_finished()).await;
        wait_until("bulk's last line written", || {
            out.text().matches("bulk  | ").count() == 1035
        })
        .await;
        process::kill_group(flood);
        wait_exit(flood, &mut reaped).await;
    });
    let text = out.text();
    let bulk: String = text
        .lines()
        .filter_map(|line| line.strip_prefix("bulk  | "))
        .collect();
    assert_eq!(bulk.len(), 102_400);
    // Aligned to "flood", the longest name attached.
    assert!(text.lines().all(|l| l.starts_with("bulk  | ")));
    assert!(out.lock().flood_bytes > 0);
}

#[test]
fn the_tail_is_bounded_in_bytes_and_ends_with_the_last_lines() {
    crate::own_process::own_process!(the_tail_is_bounded_in_bytes_and_ends_with_the_last_lines);
    let (out, err) = (Capture::default(), Capture::default());
    runtime().block_on(async {
        let hub = hub_with(&out, &err);
        let (_, attachment) = start(&hub, "counter", "seq 1 200000");
        wait_until("readers to end", || attachment.is_finished()).await;
        let tail = hub.tail("counter", None).unwrap_or_default();
        assert!(
            tail.len() <= 64 * 1024 && tail.len() > 60 * 1024,
            "{}",
            tail.len()
        );
        assert!(tail.ends_with(b"199999\n200000\n"));
        // It starts at a line boundary: every line is a whole number.
        let text = String::from_utf8_lossy(&tail).into_owned();
        let numbers: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        assert_eq!(numbers.len(), text.lines().count());
        assert_eq!(numbers.windows(2).filter(|w| w[1] != w[0] + 1).count(), 0);
        assert_eq!(hub.tail("counter", Some(1)), Some(b"200000\n".to_vec()));
    });
    assert!(out.text().ends_with("counter | 200000\n"));
}

#[test]
fn thousand_idle_services_are_cheap() {
    crate::own_process::own_process!(thousand_idle_services_are_cheap);
    // 1000 services × 2 pipes × 2 ends.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or_else(|e| panic!("{e}"));
    if hard < 5000 {
        eprintln!("SKIPPED: RLIMIT_NOFILE hard limit {hard} < 5000");
        return;
    }
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
        .unwrap_or_else(|e| panic!("{e}"));
    let (out, err) = (Capture::default(), Capture::default());
    runtime().block_on(async {
        let hub = hub_with(&out, &err);
        let mut writers = Vec::new();
        let mut read_ends = Vec::new();
        for _ in 0..1000 {
            let (stdout_read, stdout_write) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
            let (stderr_read, stderr_write) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
            read_ends.push((stdout_read, stderr_read));
            writers.push((std::fs::File::from(stdout_write), stderr_write));
        }
        let before = resident_bytes();
        let mut attachments = Vec::new();
        for (index, (stdout, stderr)) in read_ends.into_iter().enumerate() {
            let attachment = hub
                .attach(&format!("svc{index}"), stdout, stderr)
                .unwrap_or_else(|e| panic!("{e}"));
            attachments.push(attachment);
        }
        for (index, (stdout, _)) in writers.iter_mut().enumerate() {
            writeln!(stdout, "hello from {index}").unwrap_or_else(|e| panic!("{e}"));
        }
        wait_until("1000 lines", || out.text().lines().count() == 1000).await;
        let after = resident_bytes();
        let growth = after.saturating_sub(before);
        eprintln!("1000 idle services: RSS {before} -> {after} (+{growth} bytes)");
        // Measured here: about 3.5 KiB per service (two parked tasks of ~430-byte
        // futures, two reactor registrations, the budget, the map entry, allocator
        // overhead). The bound leaves room for allocator noise, not for a buffer per
        // service (a 16 KiB read buffer each would be 16 MiB).
        assert!(growth < 6 << 20, "1000 services cost {growth} bytes");
        assert_eq!(hub.tail("svc999", None), Some(b"hello from 999\n".to_vec()));
        drop(writers);
        wait_until("readers to end", || {
            attachments.iter().all(Attachment::is_finished)
        })
        .await;
    });
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn own_log_lines_never_block_and_drops_are_counted() {
    crate::own_process::own_process!(own_log_lines_never_block_and_drops_are_counted);
    let out = Capture::default();
    let err = Capture::shut();
    let hub = hub_with(&out, &err);
    let mut writer = hub.own_log_writer();
    let line = [b'x'; 1023];
    let started = Instant::now();
    for _ in 0..1000 {
        writer
            .write_all(&[line.as_slice(), b"\n"].concat())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    // 256 KiB of queue: 256 lines queued (one may be in the writer's hands), the rest
    // dropped and counted.
    let dropped = hub.own_lines_dropped();
    assert!((743..=744).contains(&dropped), "dropped {dropped}");
    err.open();
    assert!(runtime().block_on(hub.flush(Instant::now() + Duration::from_secs(10))));
    assert_eq!(err.bytes().len() as u64, (1000 - dropped) * 1024);
    assert!(out.bytes().is_empty());
}

#[test]
fn lines_a_failing_sink_refuses_are_counted() {
    crate::own_process::own_process!(lines_a_failing_sink_refuses_are_counted);
    let out = Capture::default();
    out.lock().failing = true;
    let err = Capture::default();
    runtime().block_on(async {
        let hub = hub_with(&out, &err);
        let (_, attachment) = start(&hub, "svc", "echo 1; echo 2; echo 3");
        wait_until("readers to end", || attachment.is_finished()).await;
        assert!(hub.flush(Instant::now() + Duration::from_secs(10)).await);
        assert_eq!(hub.lines_dropped(), 3);
        assert_eq!(hub.service_lines_dropped("svc"), Some(3));
    });
}

#[test]
fn attach_without_a_runtime_or_with_a_non_pipe_is_an_error() {
    crate::own_process::own_process!(attach_without_a_runtime_or_with_a_non_pipe_is_an_error);
    let (out, err) = (Capture::default(), Capture::default());
    let hub = hub_with(&out, &err);
    let (read, write) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
    let (read2, _write2) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
    assert!(hub.attach("svc", read, read2).is_err());
    runtime().block_on(async {
        let file = std::fs::File::open("/proc/self/stat").unwrap_or_else(|e| panic!("{e}"));
        let (read3, _write3) = nix::unistd::pipe().unwrap_or_else(|e| panic!("{e}"));
        assert!(hub.attach("svc", OwnedFd::from(file), read3).is_err());
    });
    drop(write);
}

/// At exit with a sink that takes nothing, `drain` gives up at its deadline and
/// accounts for every line: those queued for the writer and those still in the pipe
/// (read and counted once it gives up), per service and stream; the other stream,
/// whose sink works, delivers all of its lines.
#[test]
fn drain_gives_up_at_its_deadline_and_counts_every_line_it_could_not_write() {
    crate::own_process::own_process!(
        drain_gives_up_at_its_deadline_and_counts_every_line_it_could_not_write
    );
    let out = Capture::shut();
    let err = Capture::default();
    let lost = runtime().block_on(async {
        let hub = hub_with(&out, &err);
        // 12 000 lines: more than the budget holds, so some are still in the pipe at
        // the deadline, yet few enough for the budget and the pipe together, so the
        // service can end.
        let (pid, attachment) = start(&hub, "svc", "seq 1 12000; seq 1 500 >&2");
        assert_eq!(
            wait_exit(pid, &mut HashMap::new()).await,
            ExitStatus::Exited(0)
        );
        wait_until("stderr's lines", || err.text().lines().count() == 500).await;
        let deadline = Instant::now() + Duration::from_millis(300);
        hub.drain(vec![attachment], deadline, std::future::pending())
            .await
    });
    assert!(out.bytes().is_empty());
    assert_eq!(
        lost,
        vec![LostLines {
            service: "svc".into(),
            stream: Stream::Stdout,
            lines: 12_000,
        }],
        "{lost:?}"
    );
}
