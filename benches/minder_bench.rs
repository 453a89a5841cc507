//! minder's benchmark: `cargo bench --bench minder_bench` (a plain `main`, no harness).
//!
//! It runs the release `minder` binary of this crate as a black box and measures what the
//! issue asks for:
//!
//! - restart latency with zero backoff: a service that exits right after it starts;
//!   latency is the child's own exit stamp to its replacement's own start stamp, beside
//!   the same figure for a bare restart loop (blocking `waitpid` then fork+exec) and the
//!   cost of a bare fork+exec and of a bare `posix_spawn`, all measured in the same run;
//! - cold start of 100 and 1000 services: from just before minder is spawned until the
//!   last service has stamped, beside the bench itself forking and execing as many
//!   services one after another;
//! - minder's resident memory, CPU time and wakeups over an idle window (30 s by default)
//!   with 1000 services up;
//! - probes (`probes.rs`): 1000 services with 1 s tcp probes, 1000 with http probes and
//!   100 with exec probes, served and timed by the bench: whether each service is probed
//!   on schedule, minder's CPU time, and restart latency under that load;
//! - scrape (`scrape.rs`): latency of `/metrics` with 1000 and 10 000 services, and the
//!   restart latency of a zero-backoff service while `/metrics` is scraped 10 times a
//!   second, beside the same without scraping.
//!
//! Every timestamp is CLOCK_MONOTONIC, taken by the processes themselves: the services
//! are this very executable, re-executed as `--stamp FILE MODE` (see `stamp_and_exit`),
//! so the only program started is one whose startup cost the baselines also pay. Each
//! service also records the CPU time it had used on reaching `main` (fork, pre-exec
//! setup, `execve`, dynamic loading): the part of every figure that no supervisor can
//! remove, reported as "child CPU" and, for a cold start, as the floor N × that / CPUs.
//! A restart series that makes no progress for 5 s is stopped and reported as a stall.
//!
//! The bench reports; it never asserts. Knobs (environment):
//! `MINDER_BENCH_IDLE_SECS` (30), `MINDER_BENCH_RESTARTS` (2000),
//! `MINDER_BENCH_PROBE_SECS` (10), `MINDER_BENCH_PROBE_KINDS` (`tcp,http,exec`),
//! `MINDER_BENCH_BIN` (another minder binary to measure). A positional argument selects
//! sections by name: `cargo bench --bench minder_bench -- restart` runs only `restart`;
//! the others are `cold`, `idle` (which includes the 1000-service cold start),
//! `probes` and `scrape` (`MINDER_BENCH_SCRAPES`, 50: timed scrapes per size).
//!
//! Cleanup: minder is stopped with SIGTERM when a section ends, also on a panic (drop
//! guard), and gets SIGTERM from the kernel if the bench dies (parent-death signal).
//! Afterwards any service process still alive is reported and killed.

use std::ffi::CString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "minder_bench/probes.rs"]
mod probes;
#[path = "minder_bench/scrape.rs"]
mod scrape;

/// The argument that turns this executable into a stamping service.
const STAMP_FLAG: &str = "--stamp";

/// Samples dropped at the start of each restart series (cold page cache, lazy binding).
const WARMUP: usize = 20;

/// A restart series that makes no progress for this long has stalled.
const STALL: Duration = Duration::from_secs(5);

const TARGET_RESTART_P50_US: f64 = 1000.0;
const TARGET_COLD_1000_MS: f64 = 450.0;
const TARGET_RSS_MIB: f64 = 16.0;

fn main() {
    // First thing: a service's start stamp must include as little of our own work as
    // possible, and the baselines pay exactly the same.
    let started_ns = monotonic_ns();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(STAMP_FLAG) {
        stamp_and_exit(started_ns, &args[2..]);
    }
    let filters: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected =
        |section: &str| filters.is_empty() || filters.iter().any(|f| section.contains(f));

    let bench = Bench::new();
    bench.print_header();
    let mut results = Results::default();
    if selected("restart") {
        results.restart = Some(bench.restart_latency());
    }
    if selected("cold") {
        results.cold_100 = Some(bench.cold_start(100, None));
        if !selected("idle") {
            results.cold_1000 = Some(bench.cold_start(1000, None));
        }
    }
    if selected("idle") {
        let idle = bench.cold_start(1000, Some(bench.idle_window));
        results.cold_1000 = Some(idle);
    }
    if selected("probes") {
        results.probes = Some(bench.probes());
    }
    if selected("scrape") {
        results.scrape = Some(bench.scrape());
    }
    results.print_targets();
}

// ----- the stamping service ---------------------------------------------------------

/// `--stamp FILE exit`: append "PID START CPU EXIT\n" to FILE and exit 0 at once.
/// `--stamp FILE sleep`: append "PID START CPU\n" to FILE and sleep until killed.
/// `--stamp FILE exit GATE`: as `exit`, but first wait (polling every 2 ms) until the
/// file GATE exists: a flapping service the bench can switch on and off. The wait is
/// before the exit stamp, so it is not part of any measured restart.
///
/// START and EXIT are CLOCK_MONOTONIC; CPU is the process's CPU time when it reached
/// `main` (CLOCK_PROCESS_CPUTIME_ID, which counts from the fork, not from the exec): the
/// part of a restart spent in the new child itself (the parent's pre-exec setup in it,
/// `execve`, the dynamic loader), as opposed to waiting for its parent.
///
/// One `write` per line on an `O_APPEND` file, so concurrent services never interleave.
/// The exit stamp is taken right before that write and `_exit`: what follows it (the
/// write, the kernel's teardown of the process) is part of the measured restart.
fn stamp_and_exit(started_ns: u64, args: &[String]) -> ! {
    let (Some(path), Some(mode)) = (args.first(), args.get(1)) else {
        eprintln!("usage: {STAMP_FLAG} FILE exit [GATE] | {STAMP_FLAG} FILE sleep");
        std::process::exit(2);
    };
    let Ok(path) = CString::new(path.as_str()) else {
        std::process::exit(2);
    };
    // SAFETY: a valid NUL-terminated path; the fd is ours.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        std::process::exit(1);
    }
    let pid = std::process::id();
    let cpu_ns = clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    if let (Some(gate), "exit") = (args.get(2), mode.as_str()) {
        while !Path::new(gate).exists() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let line = match mode.as_str() {
        "exit" => format!("{pid} {started_ns} {cpu_ns} {}\n", monotonic_ns()),
        _ => format!("{pid} {started_ns} {cpu_ns}\n"),
    };
    // SAFETY: writes from a live buffer to our own fd.
    unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
    if mode == "exit" {
        // SAFETY: _exit has no preconditions; skipping std's exit path keeps the
        // stamp close to the real end of the process.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };
    loop {
        // SAFETY: pause has no preconditions; SIGTERM/SIGKILL (default dispositions)
        // end the process.
        unsafe { libc::pause() };
    }
}

fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; both clocks used here always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// One line of a stamp file.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    start_ns: u64,
    /// CPU time of the process when it reached `main`.
    cpu_ns: u64,
    exit_ns: Option<u64>,
}

/// Every complete line of `path`, in file (= write) order. A line being written while
/// we read is skipped; the next read sees it.
fn read_stamps(path: &Path) -> Vec<Stamp> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split_terminator('\n')
        .filter_map(|line| {
            let mut fields = line.split(' ');
            // The pid: the leftover check finds stampers in /proc instead.
            fields.next()?.parse::<i32>().ok()?;
            let start_ns = fields.next()?.parse().ok()?;
            let cpu_ns = fields.next()?.parse().ok()?;
            let exit_ns = match fields.next() {
                Some(field) => Some(field.parse().ok()?),
                None => None,
            };
            Some(Stamp {
                start_ns,
                cpu_ns,
                exit_ns,
            })
        })
        .collect()
}

/// Number of complete lines so far, cheaply.
fn count_lines(path: &Path) -> usize {
    fs::read(path).map_or(0, |bytes| bytes.iter().filter(|b| **b == b'\n').count())
}

// ----- the bench --------------------------------------------------------------------

struct Bench {
    minder: PathBuf,
    /// This executable, run as the services (`--stamp`).
    stamper: PathBuf,
    dir: tempfile::TempDir,
    restarts: usize,
    idle_window: Duration,
    /// How long the `probes` section watches each loaded minder.
    probe_window: Duration,
    /// The `[daemon]` table of every config: no control socket (so that the bench
    /// needs no /run and collides with no other minder), if this minder knows the key.
    daemon: String,
}

impl Bench {
    fn new() -> Bench {
        let minder = std::env::var_os("MINDER_BENCH_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_minder")),
            PathBuf::from,
        );
        let stamper = std::env::current_exe().expect("locate the bench executable");
        let dir = tempfile::Builder::new()
            .prefix("minder-bench")
            .tempdir()
            .expect("create a temporary directory");
        let daemon = daemon_table(&minder, dir.path());
        Bench {
            minder,
            stamper,
            dir,
            daemon,
            restarts: env_number("MINDER_BENCH_RESTARTS", 2000),
            idle_window: Duration::from_secs(env_number("MINDER_BENCH_IDLE_SECS", 30) as u64),
            probe_window: Duration::from_secs(env_number("MINDER_BENCH_PROBE_SECS", 10) as u64),
        }
    }

    fn print_header(&self) {
        let version = fs::metadata(&self.minder)
            .map(|_| self.minder.display().to_string())
            .unwrap_or_else(|_| format!("{} (missing!)", self.minder.display()));
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split(':').nth(1))
                    .map(|name| name.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        println!("minder benchmark");
        println!("  minder:  {version}");
        println!("  machine: {cpus} CPUs ({model}), Linux {}", kernel.trim());
        println!("  load:    {}", load_average());
        println!(
            "  knobs:   MINDER_BENCH_RESTARTS={} MINDER_BENCH_IDLE_SECS={} MINDER_BENCH_PROBE_SECS={}",
            self.restarts,
            self.idle_window.as_secs(),
            self.probe_window.as_secs()
        );
        println!();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn stamp_command(&self, file: &Path, mode: &str) -> String {
        format!(
            "[{}, \"{STAMP_FLAG}\", {}, \"{mode}\"]",
            toml_string(&self.stamper.display().to_string()),
            toml_string(&file.display().to_string())
        )
    }

    // ----- restart latency ----------------------------------------------------------

    fn restart_latency(&self) -> RestartResult {
        let total = self.restarts + WARMUP + 1;
        println!("restart latency: {} restarts each ...", self.restarts);

        // Baseline 1: a minimal supervisor. Blocking waitpid, then fork+exec (std's fork
        // path, forced by a pre_exec hook, as minder's spawn takes it).
        let fork_file = self.path("bare-fork.stamps");
        let mut before_fork = Vec::with_capacity(total);
        for _ in 0..total {
            let mut command = self.bare_command(&fork_file);
            command.arg("exit");
            // SAFETY: the hook does nothing; it only makes std fork instead of
            // posix_spawn.
            unsafe { command.pre_exec(|| Ok(())) };
            before_fork.push(spawn_and_wait(command));
        }
        let fork_stamps = read_stamps(&fork_file);

        // Baseline 2: the same loop with std's default spawn (posix_spawn, vfork-like).
        let posix_file = self.path("bare-posix-spawn.stamps");
        let mut before_posix = Vec::with_capacity(total);
        for _ in 0..total {
            let mut command = self.bare_command(&posix_file);
            command.arg("exit");
            before_posix.push(spawn_and_wait(command));
        }
        let posix_stamps = read_stamps(&posix_file);

        // minder: one permanent service that exits at once, zero backoff, a budget it
        // cannot exhaust.
        let stamps = self.path("restart.stamps");
        let config = format!(
            "{}\n[root]\nintensity = 1000000000\nperiod = \"1s\"\n\n\
             [service.flapper]\ncommand = {}\n\
             backoff = {{ initial = \"0s\", jitter = 0.0 }}\n",
            self.daemon,
            self.stamp_command(&stamps, "exit")
        );
        let mut minder = self.launch("restart", &config, &stamps);
        let deadline = Instant::now()
            + Duration::from_secs(60)
            + self.restarts as u32 * Duration::from_millis(5);
        minder.wait_for_lines(WARMUP, deadline, Some(STALL));
        let (lines_before, before) = (count_lines(&stamps), ProcSample::take(minder.pid()));
        let reached = minder.wait_for_lines(total + 1, deadline, Some(STALL));
        let (lines_after, after) = (count_lines(&stamps), ProcSample::take(minder.pid()));
        let stop = minder.stop();
        if !reached {
            println!("  minder made only {lines_after} of {} starts", total + 1);
        }
        let restarts = lines_after.saturating_sub(lines_before).max(1) as f64;
        let minder_stamps = read_stamps(&stamps);
        let result = RestartResult {
            rows: vec![
                Series::new(
                    "minder restart: exit → replacement's main",
                    pair_latencies(&minder_stamps),
                    &minder_stamps,
                ),
                Series::new(
                    "bare loop, fork+exec: exit → next main",
                    pair_latencies(&fork_stamps),
                    &fork_stamps,
                ),
                Series::new(
                    "bare loop, posix_spawn: exit → next main",
                    pair_latencies(&posix_stamps),
                    &posix_stamps,
                ),
                Series::new(
                    "bare fork+exec: before fork → main",
                    spawn_latencies(&fork_stamps, &before_fork),
                    &fork_stamps,
                ),
                Series::new(
                    "bare posix_spawn: before spawn → main",
                    spawn_latencies(&posix_stamps, &before_posix),
                    &posix_stamps,
                ),
            ],
            minder_cpu_per_restart_us: after.cpu_ns().saturating_sub(before.cpu_ns()) as f64
                / 1000.0
                / restarts,
            minder_sleeps_per_restart: after.switches().saturating_sub(before.switches()) as f64
                / restarts,
        };
        result.print();
        stop.print();
        result
    }

    fn bare_command(&self, file: &Path) -> Command {
        let mut command = Command::new(&self.stamper);
        command
            .arg(STAMP_FLAG)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    // ----- cold start and idle ------------------------------------------------------

    fn cold_start(&self, services: usize, idle: Option<Duration>) -> ColdResult {
        let name = format!("cold-{services}");
        println!("cold start: {services} services ...");
        let stamps = self.path(&format!("{name}.stamps"));
        let mut config = format!("{}\n[root]\n\n", self.daemon);
        let command = self.stamp_command(&stamps, "sleep");
        for index in 0..services {
            let _ = write!(config, "[service.s{index:04}]\ncommand = {command}\n\n");
        }
        let mut minder = self.launch(&name, &config, &stamps);
        let reached =
            minder.wait_for_lines(services, Instant::now() + Duration::from_secs(60), None);
        let all = read_stamps(&stamps);
        let elapsed_ms = |stamp_ns: u64| (stamp_ns.saturating_sub(minder.launched_ns)) as f64 / 1e6;
        let first_ms = all.iter().map(|s| s.start_ns).min().map(elapsed_ms);
        let last_ms = if reached {
            all.iter().map(|s| s.start_ns).max().map(elapsed_ms)
        } else {
            None
        };
        let mut result = ColdResult {
            services,
            last_ms,
            started: all.len(),
            idle: None,
            bare_ms: None,
        };
        match last_ms {
            Some(last) => println!(
                "  minder: all {services} started {last:.1} ms after its launch (first at {:.1} ms; {:.0} µs per service after the first)",
                first_ms.unwrap_or(0.0),
                (last - first_ms.unwrap_or(0.0)) * 1000.0 / (services.max(2) - 1) as f64,
            ),
            None => println!("  only {} of {services} started within 60 s", all.len()),
        }
        if let (Some(window), true) = (idle, reached) {
            result.idle = Some(self.idle(&minder, window));
        }
        minder.stop().print();
        if let Some(cpu) = Percentiles::of(all.iter().map(|stamp| stamp.cpu_ns).collect()) {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            println!(
                "  each service's own CPU to reach main: p50 {:.0} µs; {services} of them on {cpus} CPUs need ≥ {:.0} ms whatever the supervisor",
                cpu.p50,
                cpu.p50 * services as f64 / cpus as f64 / 1000.0
            );
        }
        result.bare_ms = self.bare_cold_start(services);
        result
    }

    /// The baseline for a cold start: this process forks and execs `services` stampers
    /// one after another (std's fork path, as minder's), without waiting for anything.
    fn bare_cold_start(&self, services: usize) -> Option<f64> {
        let file = self.path(&format!("bare-cold-{services}.stamps"));
        let mut children = BareChildren(Vec::with_capacity(services));
        let started = monotonic_ns();
        for _ in 0..services {
            let mut command = self.bare_command(&file);
            command.arg("sleep");
            // SAFETY: as in `restart_latency`: a no-op that only forces the fork path.
            unsafe { command.pre_exec(|| Ok(())) };
            children.0.push(command.spawn().expect("spawn a stamper"));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while count_lines(&file) < services && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(children);
        let stamps = read_stamps(&file);
        let last_ms = (stamps.len() >= services)
            .then(|| stamps.iter().map(|stamp| stamp.start_ns).max())
            .flatten()
            .map(|last| last.saturating_sub(started) as f64 / 1e6);
        match last_ms {
            Some(ms) => println!(
                "  bare sequential fork+exec from the bench: all {services} started in {ms:.1} ms"
            ),
            None => println!(
                "  bare sequential fork+exec: only {} of {services} started",
                stamps.len()
            ),
        }
        last_ms
    }

    fn idle(&self, minder: &RunningMinder, window: Duration) -> IdleResult {
        // Let the tail of the start-up (log lines on their way out) finish first.
        std::thread::sleep(Duration::from_secs(1));
        let before = ProcSample::take(minder.pid());
        println!("  idle for {} s ...", window.as_secs());
        std::thread::sleep(window);
        let after = ProcSample::take(minder.pid());
        let result = IdleResult::between(&before, &after, window);
        result.print();
        result
    }

    /// Writes `config` and starts minder on it, its output to a log file next to it.
    fn launch(&self, name: &str, config: &str, stamps: &Path) -> RunningMinder {
        let config_path = self.path(&format!("{name}.toml"));
        fs::write(&config_path, config).expect("write the config");
        let log_path = self.path(&format!("{name}.log"));
        let log = File::create(&log_path).expect("create minder's log file");
        let mut command = Command::new(&self.minder);
        command
            .arg("run")
            .arg(&config_path)
            .env("MINDER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log fd"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe. If the bench dies, minder gets SIGTERM and
        // shuts its tree down in order, so nothing outlives the bench.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let launched_ns = monotonic_ns();
        let child = command.spawn().expect("spawn minder");
        RunningMinder {
            child: Some(child),
            launched_ns,
            stamps: stamps.to_path_buf(),
            dir: self.dir.path().to_path_buf(),
            log: log_path,
        }
    }
}

/// `[daemon]` with `control_socket = ""` if `minder check` accepts it, else without.
#[expect(
    clippy::disallowed_methods,
    reason = "the ban protects minder's reaper; the bench waits only for its own child"
)]
fn daemon_table(minder: &Path, dir: &Path) -> String {
    let without = "[daemon]\nshutdown_timeout = \"10s\"\n";
    let with = format!("{without}control_socket = \"\"\n");
    let probe = dir.join("probe.toml");
    fs::write(
        &probe,
        format!("{with}\n[service.probe]\ncommand = [\"true\"]\n"),
    )
    .expect("write the probe config");
    let accepted = Command::new(minder)
        .arg("check")
        .arg(&probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if accepted { with } else { without.into() }
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: expected a whole number")),
        Err(_) => default,
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Spawns `command` (a bare stamper), waits for it, and returns the monotonic time just
/// before the spawn.
#[expect(
    clippy::disallowed_methods,
    reason = "the ban protects minder's reaper; the bench waits only for its own child"
)]
fn spawn_and_wait(mut command: Command) -> u64 {
    let before = monotonic_ns();
    let mut child = command.spawn().expect("spawn the stamper");
    child.wait().expect("wait for the stamper");
    before
}

/// Exit of one child → start of the next, for sequential children (file order).
fn pair_latencies(stamps: &[Stamp]) -> Vec<u64> {
    stamps
        .windows(2)
        .skip(WARMUP)
        .filter_map(|pair| pair[1].start_ns.checked_sub(pair[0].exit_ns?))
        .collect()
}

/// Parent's stamp before spawn → child's start stamp.
fn spawn_latencies(stamps: &[Stamp], before_spawn: &[u64]) -> Vec<u64> {
    stamps
        .iter()
        .zip(before_spawn)
        .skip(WARMUP)
        .filter_map(|(stamp, before)| stamp.start_ns.checked_sub(*before))
        .collect()
}

// ----- the running minder -----------------------------------------------------------

/// A minder under test. Dropping it stops it (SIGTERM, then SIGKILL) and kills any
/// service left behind, so a panic in the bench leaves nothing running.
struct RunningMinder {
    /// `None` once stopped and reaped.
    child: Option<Child>,
    /// Monotonic time just before the spawn.
    launched_ns: u64,
    /// The services' stamp file (`wait_for_lines` counts its lines).
    stamps: PathBuf,
    /// The bench's directory: every stamper's command line names it, which is how the
    /// leftover check finds them all (also a service or a probe that never stamped).
    dir: PathBuf,
    log: PathBuf,
}

struct StopReport {
    exit: String,
    stop_ms: f64,
    leftovers: Vec<i32>,
}

impl StopReport {
    fn print(&self) {
        print!(
            "  minder stopped by SIGTERM in {:.0} ms ({})",
            self.stop_ms, self.exit
        );
        if self.leftovers.is_empty() {
            println!("; no service left running");
        } else {
            println!(
                "; {} service process(es) left running and killed: {:?}",
                self.leftovers.len(),
                self.leftovers
            );
        }
    }
}

impl RunningMinder {
    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |child| child.id() as i32)
    }

    /// Waits until the stamp file has `lines` lines; false at `deadline` or if minder
    /// exits first (its log is printed then). Polls, which is fine for the bench: the
    /// figures come from the stamps, not from when we notice them.
    ///
    /// With `stall`, also gives up (and says so) when no new line has come for that long:
    /// a service that restarts at once must never pause.
    fn wait_for_lines(&mut self, lines: usize, deadline: Instant, stall: Option<Duration>) -> bool {
        let stamps = self.stamps.clone();
        self.wait_for_lines_in(&stamps, lines, deadline, stall)
    }

    /// `wait_for_lines` on another stamp file than the services'.
    fn wait_for_lines_in(
        &mut self,
        stamps: &Path,
        lines: usize,
        deadline: Instant,
        stall: Option<Duration>,
    ) -> bool {
        let (mut seen, mut since) = (0, Instant::now());
        loop {
            let count = count_lines(stamps);
            if count >= lines {
                return true;
            }
            if count != seen {
                (seen, since) = (count, Instant::now());
            } else if let Some(stall) = stall.filter(|stall| since.elapsed() >= *stall) {
                println!(
                    "  STALL: minder started nothing for {} s after {count} starts",
                    stall.as_secs()
                );
                return false;
            }
            if let Some(status) = self.exited() {
                println!("  minder exited early ({status}); its log:");
                print_tail(&self.log);
                return false;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "the ban protects minder's reaper; the bench waits only for its own child"
    )]
    fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(describe_status(status))
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "the ban protects minder's reaper; the bench waits only for its own child"
    )]
    fn stop(&mut self) -> StopReport {
        let started = Instant::now();
        let mut exit = String::from("already exited");
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped
            // child, so it cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            exit = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break describe_status(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break "did not exit within 15 s: SIGKILLed".into();
                    }
                }
            };
        }
        let stop_ms = started.elapsed().as_secs_f64() * 1000.0;
        // The services must be gone with minder. Give the kernel a moment to finish
        // SIGKILLed processes, then look.
        let mut leftovers = Vec::new();
        for _ in 0..50 {
            leftovers = live_stampers(&self.dir);
            if leftovers.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in &leftovers {
            // SAFETY: as above; checked to be one of our stampers just now.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        StopReport {
            exit,
            stop_ms,
            leftovers,
        }
    }
}

impl Drop for RunningMinder {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop().print();
        }
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("{status}"),
    }
}

/// Every running stamper whose command line names `dir` (the bench's directory).
fn live_stampers(dir: &Path) -> Vec<i32> {
    use std::os::unix::ffi::OsStrExt;
    let dir = dir.as_os_str().as_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            is_live_stamper(*pid)
                && fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| cmdline.windows(dir.len()).any(|w| w == dir))
        })
        .collect()
}

/// A running (not zombie) process whose command line is one of our stampers.
fn is_live_stamper(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    if matches!(state, Some("Z" | "X") | None) {
        return false;
    }
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == STAMP_FLAG.as_bytes())
    })
}

fn print_tail(path: &Path) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(20)..] {
        println!("    | {line}");
    }
}

// ----- /proc samples ----------------------------------------------------------------

/// minder's resources at one moment, from /proc/PID and /proc/PID/task/*.
struct ProcSample {
    at: Instant,
    rss_kib: u64,
    peak_rss_kib: u64,
    /// utime + stime of the whole process, in clock ticks.
    cpu_ticks: u64,
    /// Per thread: (tid, name, voluntary + involuntary context switches, run time in ns
    /// from schedstat if the kernel has it).
    threads: Vec<(i32, String, u64, Option<u64>)>,
}

impl ProcSample {
    fn take(pid: i32) -> ProcSample {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after_name = stat.rfind(')').map_or("", |end| &stat[end + 1..]);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // Fields after the name start at field 3 (state); utime and stime are 14 and 15.
        let tick = |index: usize| {
            fields
                .get(index)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut threads = Vec::new();
        if let Ok(entries) = fs::read_dir(format!("/proc/{pid}/task")) {
            for entry in entries.flatten() {
                let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let task = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
                let name = status_field(&task, "Name").unwrap_or_default();
                let switches = status_number(&task, "voluntary_ctxt_switches")
                    + status_number(&task, "nonvoluntary_ctxt_switches");
                let run_ns = fs::read_to_string(entry.path().join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok());
                threads.push((tid, name, switches, run_ns));
            }
        }
        threads.sort_by_key(|thread| thread.0);
        ProcSample {
            at: Instant::now(),
            rss_kib: status_number(&status, "VmRSS"),
            peak_rss_kib: status_number(&status, "VmHWM"),
            cpu_ticks: tick(11) + tick(12),
            threads,
        }
    }
}

impl ProcSample {
    /// CPU time of all threads from schedstat, else from the tick counters.
    fn cpu_ns(&self) -> u64 {
        let scheduled: Option<u64> = self.threads.iter().map(|thread| thread.3).sum();
        scheduled.unwrap_or(self.cpu_ticks * 1_000_000_000 / clock_ticks_per_second())
    }

    fn switches(&self) -> u64 {
        self.threads.iter().map(|thread| thread.2).sum()
    }
}

fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == key).then(|| value.trim().to_string())
    })
}

/// A number from a /proc status file ("VmRSS:  1234 kB" → 1234).
fn status_number(status: &str, key: &str) -> u64 {
    status_field(status, key)
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

// ----- results ----------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Percentiles {
    count: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    /// Percentiles in µs of samples in ns; `None` without samples.
    fn of(mut samples: Vec<u64>) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() - 1) as f64 * q).round() as usize;
            samples[index] as f64 / 1000.0
        };
        Some(Percentiles {
            count: samples.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// One measured series: latencies, and the CPU time each new process had used when it
/// reached `main`.
struct Series {
    label: &'static str,
    latency: Option<Percentiles>,
    child_cpu: Option<Percentiles>,
}

impl Series {
    fn new(label: &'static str, latencies: Vec<u64>, stamps: &[Stamp]) -> Series {
        let cpu = stamps
            .iter()
            .skip(WARMUP)
            .map(|stamp| stamp.cpu_ns)
            .collect();
        Series {
            label,
            latency: Percentiles::of(latencies),
            child_cpu: Percentiles::of(cpu),
        }
    }
}

struct RestartResult {
    /// The first row is minder's; the bare-loop fork+exec row is the second.
    rows: Vec<Series>,
    /// minder's own CPU time (user + system, all threads) per restart.
    minder_cpu_per_restart_us: f64,
    /// minder's context switches per restart: how often it went to sleep.
    minder_sleeps_per_restart: f64,
}

impl RestartResult {
    fn minder(&self) -> Option<Percentiles> {
        self.rows.first().and_then(|row| row.latency)
    }

    fn print(&self) {
        println!(
            "  {:<44} {:>6} {:>7} {:>7} {:>7} {:>7}  {:>13}",
            "µs", "n", "p50", "p90", "p99", "max", "child CPU p50"
        );
        for row in &self.rows {
            let cpu = row
                .child_cpu
                .map_or_else(|| "-".into(), |p| format!("{:.0}", p.p50));
            match row.latency {
                Some(p) => println!(
                    "  {:<44} {:>6} {:>7.0} {:>7.0} {:>7.0} {:>7.0}  {cpu:>13}",
                    row.label, p.count, p.p50, p.p90, p.p99, p.max
                ),
                None => println!("  {:<44} {:>6}", row.label, "no samples"),
            }
        }
        if let (Some(minder), Some(bare)) =
            (self.minder(), self.rows.get(1).and_then(|row| row.latency))
        {
            println!(
                "  minder's share at p50 (minder − bare fork+exec loop): {:.0} µs",
                minder.p50 - bare.p50
            );
        }
        println!(
            "  minder per restart: {:.0} µs of CPU, {:.1} sleeps (context switches)",
            self.minder_cpu_per_restart_us, self.minder_sleeps_per_restart
        );
        println!(
            "  (child CPU = CPU time of the new process when it reached main: its share of \
             fork, pre-exec setup, execve and dynamic loading)"
        );
    }
}

struct ColdResult {
    services: usize,
    /// `None` if not all services started.
    last_ms: Option<f64>,
    started: usize,
    idle: Option<IdleResult>,
    /// The same start done by the bench itself, without minder.
    bare_ms: Option<f64>,
}

/// Stampers started by the bench itself; killed and reaped on drop (also on a panic).
struct BareChildren(Vec<Child>);

impl Drop for BareChildren {
    #[expect(
        clippy::disallowed_methods,
        reason = "the ban protects minder's reaper; the bench waits only for its own children"
    )]
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

struct IdleResult {
    seconds: f64,
    rss_mib: f64,
    peak_rss_mib: f64,
    threads: usize,
    cpu_seconds: f64,
    cpu_ticks: u64,
    run_us: Option<f64>,
    wakeups: u64,
    /// Threads that woke during the window: (name, tid, switches).
    woken: Vec<(String, i32, u64)>,
    /// CPU time minder used before the window (start-up of the whole tree).
    startup_cpu_seconds: f64,
}

impl IdleResult {
    fn between(before: &ProcSample, after: &ProcSample, _window: Duration) -> IdleResult {
        let ticks = clock_ticks_per_second();
        let mut wakeups = 0;
        let mut woken = Vec::new();
        let mut run_ns: Option<u64> = Some(0);
        for (tid, name, switches, run) in &after.threads {
            let earlier = before.threads.iter().find(|t| t.0 == *tid);
            let delta = switches - earlier.map_or(0, |t| t.2);
            if delta > 0 {
                woken.push((name.clone(), *tid, delta));
            }
            wakeups += delta;
            run_ns = match (run_ns, run, earlier.and_then(|t| t.3)) {
                (Some(sum), Some(now), Some(then)) => Some(sum + now - then),
                (Some(sum), Some(now), None) if earlier.is_none() => Some(sum + now),
                _ => None,
            };
        }
        let cpu_ticks = after.cpu_ticks - before.cpu_ticks;
        IdleResult {
            seconds: (after.at - before.at).as_secs_f64(),
            rss_mib: after.rss_kib as f64 / 1024.0,
            peak_rss_mib: after.peak_rss_kib as f64 / 1024.0,
            threads: after.threads.len(),
            cpu_seconds: cpu_ticks as f64 / ticks as f64,
            cpu_ticks,
            run_us: run_ns.map(|ns| ns as f64 / 1000.0),
            wakeups,
            woken,
            startup_cpu_seconds: before.cpu_ticks as f64 / ticks as f64,
        }
    }

    fn print(&self) {
        println!(
            "  RSS {:.1} MiB (peak {:.1} MiB), {} thread(s)",
            self.rss_mib, self.peak_rss_mib, self.threads
        );
        println!(
            "  CPU time to start the tree: {:.2} s",
            self.startup_cpu_seconds
        );
        let run = self
            .run_us
            .map_or_else(|| "n/a".into(), |us| format!("{us:.0} µs"));
        println!(
            "  over {:.1} s idle: CPU {:.2} s ({} ticks), run time {run}, {} wakeup(s)",
            self.seconds, self.cpu_seconds, self.cpu_ticks, self.wakeups
        );
        for (name, tid, switches) in &self.woken {
            println!("    thread {name} ({tid}): {switches} context switch(es)");
        }
    }

    /// The one periodic wake-up ARCHITECTURE.md allows ("The loop never polls"): the
    /// reaper's safety sweep, once a minute. Anything more often is a polling tick.
    fn allowed_wakeups(&self) -> u64 {
        (self.seconds / 60.0).ceil() as u64
    }
}

#[derive(Default)]
struct Results {
    restart: Option<RestartResult>,
    cold_100: Option<ColdResult>,
    cold_1000: Option<ColdResult>,
    probes: Option<probes::ProbesResult>,
    scrape: Option<scrape::ScrapeResult>,
}

impl Results {
    fn print_targets(&self) {
        println!();
        println!(
            "load at the end: {} (other work on the machine inflates every figure)",
            load_average()
        );
        println!(
            "{:<44} {:>10} {:>22}  result",
            "target", "goal", "measured (bare)"
        );
        let row = |name: &str, goal: String, measured: Option<(String, bool)>| {
            let (value, verdict) = match measured {
                Some((value, _)) if goal.is_empty() => (value, "(no target)"),
                Some((value, true)) => (value, "PASS"),
                Some((value, false)) => (value, "MISS"),
                None => ("not measured".into(), "-"),
            };
            println!("{name:<44} {goal:>10} {value:>22}  {verdict}");
        };
        if let Some(restart) = &self.restart {
            row(
                "restart latency p50 (zero backoff)",
                format!("< {:.0} µs", TARGET_RESTART_P50_US),
                restart.minder().map(|p| {
                    let bare = restart
                        .rows
                        .get(1)
                        .and_then(|row| row.latency)
                        .map_or_else(String::new, |bare| format!(" ({:.0})", bare.p50));
                    (
                        format!("{:.0} µs{bare}", p.p50),
                        p.p50 < TARGET_RESTART_P50_US,
                    )
                }),
            );
        }
        if let Some(cold) = &self.cold_100 {
            row(
                "cold start, 100 services",
                String::new(),
                Some(cold_measure(cold, f64::INFINITY)),
            );
        }
        if let Some(cold) = &self.cold_1000 {
            row(
                "cold start, 1000 services",
                format!("< {TARGET_COLD_1000_MS:.0} ms"),
                Some(cold_measure(cold, TARGET_COLD_1000_MS)),
            );
            if let Some(idle) = &cold.idle {
                row(
                    "idle CPU time, 1000 services",
                    "0 ticks".into(),
                    Some((format!("{} ticks", idle.cpu_ticks), idle.cpu_ticks == 0)),
                );
                row(
                    "idle wakeups (1/min reaper sweep allowed)",
                    format!("<= {}", idle.allowed_wakeups()),
                    Some((
                        idle.wakeups.to_string(),
                        idle.wakeups <= idle.allowed_wakeups(),
                    )),
                );
                row(
                    "RSS with 1000 services",
                    format!("< {TARGET_RSS_MIB:.0} MiB"),
                    Some((
                        format!("{:.1} MiB", idle.rss_mib),
                        idle.rss_mib < TARGET_RSS_MIB,
                    )),
                );
            }
        }
        if let Some(probes) = &self.probes {
            for (name, goal, measured) in probes.target_rows() {
                row(&name, goal, measured);
            }
        }
        if let Some(scrape) = &self.scrape {
            for (name, goal, measured) in scrape.target_rows() {
                row(&name, goal, measured);
            }
        }
    }
}

fn cold_measure(cold: &ColdResult, goal_ms: f64) -> (String, bool) {
    let bare = cold
        .bare_ms
        .map_or_else(String::new, |ms| format!(" ({ms:.0})"));
    match cold.last_ms {
        Some(ms) => (format!("{ms:.0} ms{bare}"), ms < goal_ms),
        None => (format!("{}/{} up", cold.started, cold.services), false),
    }
}
