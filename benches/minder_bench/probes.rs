//! The `probes` section: "probes never block the supervision loop; a thousand services
//! with 1 s probes must not make the loop late."
//!
//! The bench serves the probes itself, one listener on 127.0.0.1 per service (on a
//! tokio runtime of its own, in one thread), and records when each service's probe
//! arrives: a `tcp` probe when its connection is accepted (then dropped), an `http`
//! probe when its request has been read (then answered 200 and closed). An `exec` probe
//! is the stamper itself in `exit` mode, one stamp file per service: its start stamp is
//! the probe's time. Then for each variant (1000 services with a `tcp` health probe,
//! 1000 with an `http` one, 100 with an `exec` one, all every 1 s with a 1 s timeout)
//! one minder runs:
//!
//! 1. with the probes alone for `MINDER_BENCH_PROBE_SECS` (10): probes per second,
//!    each service's probe period, minder's CPU time and wakeups, and how long its
//!    threads waited for a CPU (other load on the machine). minder schedules a
//!    service's next probe one interval after the previous result, so the period is the
//!    interval plus the probe's own duration plus whatever the loop is late by; the
//!    "lateness" is period − interval, and the effective rate services / mean period;
//! 2. then with one more service flapping (exits at once, zero backoff, as in
//!    `restart`) for `MINDER_BENCH_RESTARTS` restarts and 5 s at least: restart latency
//!    under the probe load, and the probe periods meanwhile.
//!
//! The flapper is there from the start but waits for a gate file before it exits (see
//! `stamp_and_exit`), so phase 1 has no restarts in it. The same flapper is measured
//! first in a minder with nothing else (the reference of the verdict) and beside 1000
//! services without probes (what the number of children alone costs a restart).
//! `MINDER_BENCH_PROBE_KINDS` (`tcp,http,exec`) picks the variants.
//!
//! Verdict per variant, "loop late?": PASS if in both phases every service was probed
//! and the effective rate is at least 95% of services / interval, and the restart p50
//! under load is at most twice the unloaded one.

use super::{
    Bench, Percentiles, ProcSample, RunningMinder, STALL, Series, WARMUP, count_lines,
    monotonic_ns, pair_latencies, read_stamps, toml_string,
};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Services with a network probe, and with an exec probe (each a fork+exec on the loop).
const NETWORK_SERVICES: usize = 1000;
const EXEC_SERVICES: usize = 100;

/// Every probe's interval (and timeout), as in the issue.
const INTERVAL: Duration = Duration::from_secs(1);

/// After the last service started: its first probe comes one interval later.
const SETTLE: Duration = Duration::from_secs(2);

/// The flapping phase lasts at least this long, whatever `MINDER_BENCH_RESTARTS`: a
/// few probe periods.
const MIN_FLAP: Duration = Duration::from_secs(5);

/// The verdict's bounds.
const MIN_RATE: f64 = 0.95;
const MAX_SLOWDOWN: f64 = 2.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Tcp,
    Http,
    Exec,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Tcp => "tcp",
            Variant::Http => "http",
            Variant::Exec => "exec",
        }
    }

    fn services(self) -> usize {
        match self {
            Variant::Tcp | Variant::Http => NETWORK_SERVICES,
            Variant::Exec => EXEC_SERVICES,
        }
    }

    fn restart_label(self) -> &'static str {
        match self {
            Variant::Tcp => "restart under 1000 tcp probes/s",
            Variant::Http => "restart under 1000 http probes/s",
            Variant::Exec => "restart under 100 exec probes/s",
        }
    }

    fn expected_rate(self) -> f64 {
        self.services() as f64 / INTERVAL.as_secs_f64()
    }
}

/// A row of the final table: name, goal, (measured, pass).
pub(super) type TargetRow = (String, String, Option<(String, bool)>);

pub(super) struct ProbesResult {
    /// The flapper in a minder without probes.
    unloaded: Series,
    /// The flapper beside 1000 sleeping services without probes: what the number of
    /// children costs a restart, apart from the probes.
    idle_children: Series,
    runs: Vec<ProbeRun>,
}

struct ProbeRun {
    variant: Variant,
    /// `None` if not every service started; nothing else was measured then.
    quiet: Option<Window>,
    flapping: Option<Window>,
    restarts: Option<Series>,
    /// "check failed" lines in minder's log, and services restarted for them.
    check_failures: usize,
    health_restarts: usize,
}

/// Probes and minder's resources over a stretch of time.
struct Window {
    variant: Variant,
    seconds: f64,
    /// Probes that arrived in the window, all services.
    probes: usize,
    /// Services without a probe in the window.
    unprobed: usize,
    /// Per service, consecutive probes both in the window: period − interval.
    lateness: Option<Percentiles>,
    mean_period_s: Option<f64>,
    cpu_ns: u64,
    /// Time minder's threads spent runnable but waiting for a CPU (other load).
    cpu_wait_ns: Option<u64>,
    switches: u64,
}

/// One moment of a run: the monotonic time and minder's resources.
struct Mark {
    at_ns: u64,
    sample: ProcSample,
    cpu_wait_ns: Option<u64>,
}

impl Mark {
    fn take(pid: i32) -> Mark {
        Mark {
            at_ns: monotonic_ns(),
            sample: ProcSample::take(pid),
            cpu_wait_ns: cpu_wait_ns(pid),
        }
    }
}

/// The run-queue wait of all of `pid`'s threads (second field of schedstat), if the
/// kernel keeps it.
fn cpu_wait_ns(pid: i32) -> Option<u64> {
    let mut total = 0;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let schedstat = fs::read_to_string(entry.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(total)
}

impl Window {
    fn new(variant: Variant, times: &[Vec<u64>], before: &Mark, after: &Mark) -> Window {
        let (from, to) = (before.at_ns, after.at_ns);
        let interval = INTERVAL.as_nanos() as u64;
        let (mut probes, mut unprobed, mut periods) = (0, 0, Vec::new());
        for service in times {
            let inside: Vec<u64> = service
                .iter()
                .copied()
                .filter(|at| (from..to).contains(at))
                .collect();
            probes += inside.len();
            unprobed += usize::from(inside.is_empty());
            periods.extend(
                inside
                    .windows(2)
                    .map(|pair| pair[1].saturating_sub(pair[0])),
            );
        }
        let mean_period_s = (!periods.is_empty())
            .then(|| periods.iter().sum::<u64>() as f64 / periods.len() as f64 / 1e9);
        Window {
            variant,
            seconds: (to - from) as f64 / 1e9,
            probes,
            unprobed,
            lateness: Percentiles::of(
                periods
                    .iter()
                    .map(|period| period.saturating_sub(interval))
                    .collect(),
            ),
            mean_period_s,
            cpu_ns: after.sample.cpu_ns().saturating_sub(before.sample.cpu_ns()),
            cpu_wait_ns: after
                .cpu_wait_ns
                .zip(before.cpu_wait_ns)
                .map(|(after, before)| after.saturating_sub(before)),
            switches: after
                .sample
                .switches()
                .saturating_sub(before.sample.switches()),
        }
    }

    /// services / mean period over the expected rate, counting unprobed services as
    /// never probed.
    fn rate_fraction(&self) -> f64 {
        let services = self.variant.services();
        let probed = services.saturating_sub(self.unprobed) as f64 / services as f64;
        self.mean_period_s
            .map_or(0.0, |period| probed * INTERVAL.as_secs_f64() / period)
    }

    fn print(&self, what: &str) {
        let seconds = self.seconds.max(1e-9);
        println!(
            "    {what}, {:.1} s: {:.0} probes/s, effective rate {:.1}% of {:.0}/s \
             ({} service(s) not probed); minder CPU {:.1}% ({:.0} µs per probe), {:.0} \
             wakeups/s, waited for a CPU {}",
            self.seconds,
            self.probes as f64 / seconds,
            self.rate_fraction() * 100.0,
            self.variant.expected_rate(),
            self.unprobed,
            self.cpu_ns as f64 / 1e7 / seconds,
            self.cpu_ns as f64 / 1000.0 / self.probes.max(1) as f64,
            self.switches as f64 / seconds,
            self.cpu_wait_ns.map_or_else(
                || "n/a".into(),
                |ns| format!("{:.0} ms/s", ns as f64 / 1e6 / seconds)
            ),
        );
        if let (Some(period), Some(late)) = (self.mean_period_s, self.lateness) {
            println!(
                "      period per service: mean {:.2} ms; lateness (period − {} ms) \
                 p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} ms over {} periods",
                period * 1000.0,
                INTERVAL.as_millis(),
                late.p50 / 1000.0,
                late.p90 / 1000.0,
                late.p99 / 1000.0,
                late.max / 1000.0,
                late.count
            );
        }
    }
}

impl ProbeRun {
    /// The lower of the two windows' effective rates, as a fraction of the expected.
    fn rate_fraction(&self) -> Option<f64> {
        let quiet = self.quiet.as_ref()?.rate_fraction();
        Some(
            self.flapping
                .as_ref()
                .map_or(quiet, |flapping| quiet.min(flapping.rate_fraction())),
        )
    }

    fn slowdown(&self, unloaded: &Series) -> Option<f64> {
        let loaded = self.restarts.as_ref()?.latency?.p50;
        Some(loaded / unloaded.latency?.p50)
    }

    /// (measured, pass) for the verdict.
    fn verdict(&self, unloaded: &Series) -> Option<(String, bool)> {
        let rate = self.rate_fraction()?;
        let slowdown = self.slowdown(unloaded);
        let text = match slowdown {
            Some(slowdown) => format!("{:.1}%, {slowdown:.2}×", rate * 100.0),
            None => format!("{:.1}%, no restarts", rate * 100.0),
        };
        let pass = rate >= MIN_RATE && slowdown.is_some_and(|s| s <= MAX_SLOWDOWN);
        Some((text, pass))
    }
}

impl ProbesResult {
    pub(super) fn target_rows(&self) -> Vec<TargetRow> {
        self.runs
            .iter()
            .map(|run| {
                (
                    format!(
                        "loop late? {} {} probes/s (rate, p50 ×)",
                        run.variant.expected_rate(),
                        run.variant.name()
                    ),
                    format!("≥{:.0}%, ≤{MAX_SLOWDOWN:.0}×", MIN_RATE * 100.0),
                    run.verdict(&self.unloaded),
                )
            })
            .collect()
    }

    fn print(&self) {
        println!("  restart latency with and without probe load:");
        println!(
            "  {:<44} {:>6} {:>7} {:>7} {:>7} {:>7}  {:>13}",
            "µs", "n", "p50", "p90", "p99", "max", "child CPU p50"
        );
        let rows = [&self.unloaded, &self.idle_children]
            .into_iter()
            .chain(self.runs.iter().filter_map(|run| run.restarts.as_ref()));
        for row in rows {
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
        for run in &self.runs {
            let verdict = match run.verdict(&self.unloaded) {
                Some((_, true)) => "PASS",
                Some((_, false)) => "FAIL",
                None => "not measured",
            };
            let rate = run
                .rate_fraction()
                .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0));
            let slowdown = run
                .slowdown(&self.unloaded)
                .map_or_else(|| "-".into(), |s| format!("{s:.2}×"));
            println!(
                "  loop late? {verdict}: {} probes at {rate} of their rate (≥ {:.0}% wanted), \
                 restart p50 {slowdown} unloaded (≤ {MAX_SLOWDOWN:.0}× wanted)",
                run.variant.name(),
                MIN_RATE * 100.0
            );
        }
    }
}

impl Bench {
    pub(super) fn probes(&self) -> ProbesResult {
        println!(
            "probes: 1 s health probes ({NETWORK_SERVICES} tcp, {NETWORK_SERVICES} http, \
             {EXEC_SERVICES} exec) and restart latency under them ..."
        );
        let unloaded = self.unloaded_flapper(0, "restart, no probes (same run)");
        let idle_children =
            self.unloaded_flapper(NETWORK_SERVICES, "restart beside 1000 services, no probes");
        let wanted =
            std::env::var("MINDER_BENCH_PROBE_KINDS").unwrap_or_else(|_| "tcp,http,exec".into());
        let runs = [Variant::Tcp, Variant::Http, Variant::Exec]
            .into_iter()
            .filter(|variant| wanted.split(',').any(|kind| kind.trim() == variant.name()))
            .map(|variant| self.probe_run(variant))
            .collect();
        let result = ProbesResult {
            unloaded,
            idle_children,
            runs,
        };
        result.print();
        result
    }

    /// The same flapper as in the loaded runs, in a minder with `sleepers` services
    /// without probes beside it.
    fn unloaded_flapper(&self, sleepers: usize, label: &'static str) -> Series {
        let name = format!("probes-unloaded-{sleepers}");
        let stamps = self.path(&format!("{name}.stamps"));
        let flapper_stamps = self.path(&format!("{name}-flapper.stamps"));
        let gate = self.path(&format!("{name}.gate"));
        let mut config = format!(
            "{}\n[root]\nintensity = 1000000000\nperiod = \"1s\"\n\n",
            self.daemon
        );
        let command = self.stamp_command(&stamps, "sleep");
        for index in 0..sleepers {
            let _ = write!(config, "[service.s{index:04}]\ncommand = {command}\n\n");
        }
        config.push_str(&self.flapper(&flapper_stamps, &gate));
        let mut minder = self.launch(&name, &config, &stamps);
        println!("  no probes, {sleepers} other services: the flapper alone ...");
        if !minder.wait_for_lines(sleepers, Instant::now() + Duration::from_secs(60), None) {
            println!("    only {} of {sleepers} started", count_lines(&stamps));
        }
        let series = self.flap(&mut minder, &flapper_stamps, &gate, label);
        minder.stop().print();
        series
    }

    fn probe_run(&self, variant: Variant) -> ProbeRun {
        let services = variant.services();
        let name = format!("probes-{}", variant.name());
        let target = match variant {
            Variant::Tcp => Some(ProbeTarget::start(services, false)),
            Variant::Http => Some(ProbeTarget::start(services, true)),
            Variant::Exec => None,
        };
        let stamps = self.path(&format!("{name}.stamps"));
        let flapper_stamps = self.path(&format!("{name}-flapper.stamps"));
        let gate = self.path(&format!("{name}.gate"));
        let exec_stamps: Vec<PathBuf> = (0..services)
            .map(|index| self.path(&format!("{name}-s{index:04}.stamps")))
            .collect();
        let interval = humantime::format_duration(INTERVAL);
        let command = self.stamp_command(&stamps, "sleep");
        let mut config = format!(
            "{}\n[root]\nintensity = 1000000000\nperiod = \"1s\"\n\n",
            self.daemon
        );
        for (index, exec_stamps) in exec_stamps.iter().enumerate() {
            let probe = match &target {
                Some(target) if variant == Variant::Tcp => {
                    format!("tcp = \"127.0.0.1:{}\"", target.ports[index])
                }
                Some(target) => format!(
                    "http = \"http://127.0.0.1:{}/healthz\"",
                    target.ports[index]
                ),
                None => format!("exec = {}", self.stamp_command(exec_stamps, "exit")),
            };
            let _ = write!(
                config,
                "[service.s{index:04}]\ncommand = {command}\n\
                 [service.s{index:04}.health]\n{probe}\ninterval = \"{interval}\"\n\
                 timeout = \"{interval}\"\n\n"
            );
        }
        config.push_str(&self.flapper(&flapper_stamps, &gate));

        println!(
            "  {services} services with {} probes every {interval} ...",
            variant.name()
        );
        let mut minder = self.launch(&name, &config, &stamps);
        let mut run = ProbeRun {
            variant,
            quiet: None,
            flapping: None,
            restarts: None,
            check_failures: 0,
            health_restarts: 0,
        };
        let up = minder.wait_for_lines(services, Instant::now() + Duration::from_secs(60), None);
        let mut marks = Vec::new();
        if up {
            std::thread::sleep(SETTLE);
            marks.push(Mark::take(minder.pid()));
            std::thread::sleep(self.probe_window);
            marks.push(Mark::take(minder.pid()));
            let series = self.flap(&mut minder, &flapper_stamps, &gate, variant.restart_label());
            marks.push(Mark::take(minder.pid()));
            run.restarts = Some(series);
        } else {
            println!(
                "    only {} of {services} services started within 60 s",
                count_lines(&stamps)
            );
        }
        let log = minder.log.clone();
        minder.stop().print();
        let times = match target {
            Some(target) => target.stop(),
            None => exec_stamps
                .iter()
                .map(|file| read_stamps(file).iter().map(|s| s.start_ns).collect())
                .collect(),
        };
        if let [quiet, flapping, end] = &marks[..] {
            let window = Window::new(variant, &times, quiet, flapping);
            window.print("probes only");
            run.quiet = Some(window);
            let window = Window::new(variant, &times, flapping, end);
            window.print("while flapping");
            run.flapping = Some(window);
        }
        let log = fs::read_to_string(log).unwrap_or_default();
        run.check_failures = log.matches("check failed").count();
        run.health_restarts = count_lines(&stamps).saturating_sub(services);
        println!(
            "    {} failed health check(s) logged, {} service restart(s) for them",
            run.check_failures, run.health_restarts
        );
        run
    }

    /// The `[service.flapper]` table: exits at once once `gate` exists, zero backoff.
    pub(super) fn flapper(&self, stamps: &Path, gate: &Path) -> String {
        format!(
            "[service.flapper]\ncommand = [{}, \"{}\", {}, \"exit\", {}]\n\
             backoff = {{ initial = \"0s\", jitter = 0.0 }}\n",
            toml_string(&self.stamper.display().to_string()),
            super::STAMP_FLAG,
            toml_string(&stamps.display().to_string()),
            toml_string(&gate.display().to_string()),
        )
    }

    /// Opens the flapper's gate, lets it restart `WARMUP + restarts` times (or stall)
    /// and for `MIN_FLAP` at least, closes the gate and returns its restart latencies.
    pub(super) fn flap(
        &self,
        minder: &mut RunningMinder,
        stamps: &Path,
        gate: &Path,
        label: &'static str,
    ) -> Series {
        fs::write(gate, "").expect("open the flapper's gate");
        let opened = Instant::now();
        let wanted = WARMUP + self.restarts + 1;
        let deadline = Instant::now()
            + Duration::from_secs(60)
            + self.restarts as u32 * Duration::from_millis(5);
        let reached = minder.wait_for_lines_in(stamps, wanted, deadline, Some(STALL));
        if reached {
            std::thread::sleep(MIN_FLAP.saturating_sub(opened.elapsed()));
        }
        let _ = fs::remove_file(gate);
        let all = read_stamps(stamps);
        if !reached {
            println!("    the flapper made only {} of {wanted} starts", all.len());
        }
        Series::new(label, pair_latencies(&all), &all)
    }
}

/// The bench's probe targets: one listener per service on 127.0.0.1, served by a tokio
/// current-thread runtime on a thread of its own. `tcp`: each connection is accepted,
/// its time recorded and dropped. `http`: the request head is read (1 s at most), its
/// time recorded, 200 answered with `Connection: close`.
struct ProbeTarget {
    ports: Vec<u16>,
    /// Per service, the monotonic times of its probes.
    times: Vec<Arc<Mutex<Vec<u64>>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ProbeTarget {
    fn start(services: usize, http: bool) -> ProbeTarget {
        raise_fd_limit(services as u64 + 256);
        let listeners: Vec<std::net::TcpListener> = (0..services)
            .map(|_| {
                let listener =
                    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe target");
                listener
                    .set_nonblocking(true)
                    .expect("make a probe target non-blocking");
                listener
            })
            .collect();
        let ports = listeners
            .iter()
            .map(|listener| listener.local_addr().expect("probe target address").port())
            .collect();
        let times: Vec<Arc<Mutex<Vec<u64>>>> = (0..services).map(|_| Arc::default()).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("start the probe targets' runtime");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = times.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                for (listener, times) in listeners.into_iter().zip(shared) {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("register a probe target");
                    tokio::spawn(async move {
                        loop {
                            let Ok((stream, _)) = listener.accept().await else {
                                // Out of fds, most likely: let the probe time out.
                                tokio::time::sleep(Duration::from_millis(1)).await;
                                continue;
                            };
                            if http {
                                tokio::spawn(answer_http(stream, Arc::clone(&times)));
                            } else {
                                record(&times);
                            }
                        }
                    });
                }
                let _ = stopped.await;
            });
        });
        ProbeTarget {
            ports,
            times,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops serving; per service, the times of its probes.
    fn stop(mut self) -> Vec<Vec<u64>> {
        self.shut_down();
        self.times
            .iter()
            .map(|times| {
                let mut times = times.lock().map(|t| t.clone()).unwrap_or_default();
                times.sort_unstable();
                times
            })
            .collect()
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ProbeTarget {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn record(times: &Mutex<Vec<u64>>) {
    let now = monotonic_ns();
    if let Ok(mut times) = times.lock() {
        times.push(now);
    }
}

/// Reads one request head (1 s at most), records it and answers 200.
async fn answer_http(mut stream: tokio::net::TcpStream, times: Arc<Mutex<Vec<u64>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let read_head = async {
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        true
    };
    if let Ok(true) = tokio::time::timeout(Duration::from_secs(1), read_head).await {
        record(&times);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
    }
}

/// Raises this process's soft RLIMIT_NOFILE to at least `needed` (within the hard
/// limit): one listener per service. minder raises its own to the hard limit anyway;
/// its services (stampers) get the raised one as their default, which they never use.
fn raise_fd_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= needed
    {
        return;
    }
    limit.rlim_cur = needed.min(limit.rlim_max);
    // SAFETY: valid pointer; raises the soft limit within the hard one.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
}
