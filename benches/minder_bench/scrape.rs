//! The `scrape` section: "a scrape never blocks the supervision loop, and the loop
//! never waits for a scraper."
//!
//! 1. Latency of `GET /metrics` with 1000 and with 10 000 services up (every one a
//!    sleeping stamper): from `connect` until the whole response has been read, over a
//!    new connection each time, one after another (`MINDER_BENCH_SCRAPES`, 50), after a
//!    few unmeasured ones. Each scrape makes the loop fill a snapshot and the endpoint's
//!    thread walk /proc and render every service's series.
//! 2. Restart latency of the zero-backoff flapper (as in `restart` and `probes`) beside
//!    1000 sleeping services, once with nobody scraping and once while a thread of the
//!    bench scrapes `/metrics` 10 times a second: what scraping costs the loop.
//!
//! The endpoint listens on a port the bench picked free an instant before (bound to
//! port 0, then closed). The bench reports and never asserts; there is no target.
//! `MINDER_BENCH_SCRAPE_SIZES` (`1000,10000`) picks the tree sizes of part 1.

use super::{Bench, Percentiles, ProcSample, Series, count_lines, monotonic_ns};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One thread in a `ProcSample`: tid, name, context switches, run time in ns.
type ThreadSample = (i32, String, u64, Option<u64>);

/// Services up while `/metrics` is timed.
const SIZES: [usize; 2] = [1000, 10_000];

/// Services beside the flapper in the restart comparison.
const SLEEPERS: usize = 1000;

/// Unmeasured scrapes before the timed ones (first allocations, page cache).
const WARM_SCRAPES: usize = 3;

/// The scraper's period during the loaded restart series: 10 scrapes a second.
const SCRAPE_PERIOD: Duration = Duration::from_millis(100);

/// The timed scrapes of one size.
pub(super) struct Scrapes {
    pub(super) services: usize,
    /// Latency of one scrape (µs).
    pub(super) latency: Option<Percentiles>,
    /// The size of a body.
    pub(super) bytes: usize,
    /// CPU time per scrape (µs) of minder's main thread (the loop, which copies the
    /// snapshot) and of the endpoint's thread (/proc, rendering, sending).
    pub(super) loop_cpu_us: Option<f64>,
    pub(super) endpoint_cpu_us: Option<f64>,
}

pub(super) struct ScrapeResult {
    pub(super) latency: Vec<Scrapes>,
    pub(super) unscraped: Option<Series>,
    pub(super) scraped: Option<Series>,
    /// Scrapes completed during the scraped restart series.
    pub(super) scrapes_during: usize,
}

impl ScrapeResult {
    pub(super) fn target_rows(&self) -> Vec<super::probes::TargetRow> {
        let mut rows = Vec::new();
        for scrapes in &self.latency {
            rows.push((
                format!("/metrics p50 / p99, {} services", scrapes.services),
                String::new(),
                scrapes.latency.map(|p| {
                    (
                        format!("{:.1} / {:.1} ms", p.p50 / 1000.0, p.p99 / 1000.0),
                        true,
                    )
                }),
            ));
        }
        let p50 = |series: &Option<Series>| series.as_ref().and_then(|s| s.latency);
        rows.push((
            "restart p50, scraped 10/s (not scraped)".into(),
            String::new(),
            p50(&self.scraped).map(|scraped| {
                let unscraped =
                    p50(&self.unscraped).map_or_else(String::new, |p| format!(" ({:.0})", p.p50));
                (format!("{:.0} µs{unscraped}", scraped.p50), true)
            }),
        ));
        rows
    }
}

impl Bench {
    pub(super) fn scrape(&self) -> ScrapeResult {
        let scrapes = super::env_number("MINDER_BENCH_SCRAPES", 50);
        println!(
            "scrape: /metrics latency, and restart latency while scraped 10 times a second ..."
        );
        let mut result = ScrapeResult {
            latency: Vec::new(),
            unscraped: None,
            scraped: None,
            scrapes_during: 0,
        };
        let sizes = std::env::var("MINDER_BENCH_SCRAPE_SIZES").map_or_else(
            |_| SIZES.to_vec(),
            |list| {
                list.split(',')
                    .filter_map(|size| size.trim().parse().ok())
                    .collect()
            },
        );
        for services in sizes {
            let measured = self.scrape_latency(services, scrapes);
            match measured.latency {
                Some(p) => println!(
                    "  {services} services: {} scrapes of {:.0} KiB, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    p.count,
                    measured.bytes as f64 / 1024.0,
                    p.p50 / 1000.0,
                    p.p90 / 1000.0,
                    p.p99 / 1000.0,
                    p.max / 1000.0
                ),
                None => println!("  {services} services: not measured"),
            }
            let cpu = |us: Option<f64>| {
                us.map_or_else(|| "?".into(), |us| format!("{:.1} ms", us / 1000.0))
            };
            println!(
                "    CPU per scrape: the loop's thread {}, the endpoint's thread {}",
                cpu(measured.loop_cpu_us),
                cpu(measured.endpoint_cpu_us)
            );
            result.latency.push(measured);
        }
        result.unscraped = Some(self.flap_beside_sleepers(false).0);
        let (scraped, during) = self.flap_beside_sleepers(true);
        result.scraped = Some(scraped);
        result.scrapes_during = during;
        println!(
            "  {:<44} {:>6} {:>7} {:>7} {:>7} {:>7}",
            "restart latency, µs", "n", "p50", "p90", "p99", "max"
        );
        for series in [&result.unscraped, &result.scraped].into_iter().flatten() {
            match series.latency {
                Some(p) => println!(
                    "  {:<44} {:>6} {:>7.0} {:>7.0} {:>7.0} {:>7.0}",
                    series.label, p.count, p.p50, p.p90, p.p99, p.max
                ),
                None => println!("  {:<44} {:>6}", series.label, "no samples"),
            }
        }
        println!(
            "  ({} scrapes answered during the scraped series)",
            result.scrapes_during
        );
        result
    }

    /// The config head: the bench's `[daemon]` with the endpoint on `address`, and a
    /// root budget the flapper cannot spend.
    fn scrape_config(&self, address: SocketAddr) -> String {
        format!(
            "{}metrics_listen = \"{address}\"\n\n[root]\nintensity = 1000000000\nperiod = \"1s\"\n\n",
            self.daemon
        )
    }

    /// `services` sleeping stampers, then `scrapes` timed scrapes.
    fn scrape_latency(&self, services: usize, scrapes: usize) -> Scrapes {
        let name = format!("scrape-{services}");
        let stamps = self.path(&format!("{name}.stamps"));
        let address = free_address();
        let mut config = self.scrape_config(address);
        let command = self.stamp_command(&stamps, "sleep");
        for index in 0..services {
            let _ = write!(config, "[service.s{index:05}]\ncommand = {command}\n\n");
        }
        let mut minder = self.launch(&name, &config, &stamps);
        // 10 000 processes take a while to start on a busy machine; if a few are still
        // missing at the deadline (a fork refused for lack of pids, say), the scrapes
        // still cover every service's series, and the count says how many ran.
        let deadline = Instant::now() + Duration::from_secs(300);
        if !minder.wait_for_lines(services, deadline, None) {
            println!(
                "  only {} of {services} services started within 300 s; measuring anyway",
                count_lines(&stamps)
            );
        }
        let mut bytes = 0;
        for _ in 0..WARM_SCRAPES {
            bytes = get_metrics(address).unwrap_or(0);
        }
        let mut latencies = Vec::with_capacity(scrapes);
        let before = ProcSample::take(minder.pid());
        for _ in 0..scrapes {
            let before = monotonic_ns();
            if let Some(size) = get_metrics(address) {
                latencies.push(monotonic_ns().saturating_sub(before));
                bytes = size;
            }
        }
        let after = ProcSample::take(minder.pid());
        let count = latencies.len().max(1) as f64;
        let per_scrape = |thread: &dyn Fn(&ThreadSample) -> bool| {
            let run_ns = |sample: &ProcSample| {
                sample
                    .threads
                    .iter()
                    .find(|entry| thread(entry))
                    .and_then(|entry| entry.3)
            };
            Some(run_ns(&after)?.saturating_sub(run_ns(&before)?) as f64 / 1000.0 / count)
        };
        let pid = minder.pid();
        let result = Scrapes {
            services,
            latency: Percentiles::of(latencies),
            bytes,
            loop_cpu_us: per_scrape(&|entry| entry.0 == pid),
            endpoint_cpu_us: per_scrape(&|entry| entry.1 == "minder-metrics"),
        };
        minder.stop().print();
        result
    }

    /// The flapper beside `SLEEPERS` services, scraped 10 times a second or not: its
    /// restart latencies, and how many scrapes completed meanwhile.
    fn flap_beside_sleepers(&self, scraped: bool) -> (Series, usize) {
        let name = if scraped {
            "scrape-flap-scraped"
        } else {
            "scrape-flap-quiet"
        };
        let stamps = self.path(&format!("{name}.stamps"));
        let flapper_stamps = self.path(&format!("{name}-flapper.stamps"));
        let gate = self.path(&format!("{name}.gate"));
        let address = free_address();
        let mut config = self.scrape_config(address);
        let command = self.stamp_command(&stamps, "sleep");
        for index in 0..SLEEPERS {
            let _ = write!(config, "[service.s{index:04}]\ncommand = {command}\n\n");
        }
        config.push_str(&self.flapper(&flapper_stamps, &gate));
        let mut minder = self.launch(name, &config, &stamps);
        println!(
            "  the flapper beside {SLEEPERS} services, {} ...",
            if scraped {
                "scraped 10/s"
            } else {
                "not scraped"
            }
        );
        if !minder.wait_for_lines(SLEEPERS, Instant::now() + Duration::from_secs(60), None) {
            println!("    only {} of {SLEEPERS} started", count_lines(&stamps));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let scraper = scraped.then(|| {
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if get_metrics(address).is_some() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    next += SCRAPE_PERIOD;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            })
        });
        let label = if scraped {
            "flapper, /metrics scraped 10/s"
        } else {
            "flapper, not scraped"
        };
        let series = self.flap(&mut minder, &flapper_stamps, &gate, label);
        stop.store(true, Ordering::Relaxed);
        if let Some(scraper) = scraper {
            let _ = scraper.join();
        }
        minder.stop().print();
        (series, done.load(Ordering::Relaxed))
    }
}

/// 127.0.0.1 with a port nothing listened on an instant ago.
fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("pick a free port")
}

/// `GET /metrics` over a new connection, read to the end: the body's size, or `None`
/// if it failed or was not a 200.
fn get_metrics(address: SocketAddr) -> Option<usize> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")?;
    response
        .starts_with(b"HTTP/1.1 200")
        .then(|| response.len() - head_end - 4)
}
