//! Probe runners: the checks minder runs for the core, off the loop, each bounded by
//! its timeout.
//!
//! Owns the *running* of network probes (`tcp`, `http`), the memory sampler
//! (`max_memory`) and the watcher of an s6-style readiness fd. Network probes and the
//! fd watcher run as tokio tasks on the loop's runtime; the name lookups of network
//! probes (`resolve`) and the /proc scans of the memory guard (`memory`) block, so each
//! runs on threads of its own, apart from one another and from tokio's blocking pool:
//! a resolver that never answers cannot delay the memory guard. Results go to the loop
//! as plain facts over its channel (`runtime::Fact`: a probe's outcome, a memory scan,
//! a readiness line); the loop, which knows which process is current, turns them into
//! events for the core and drops those of a process that has ended. No state is
//! shared with the loop.
//!
//! It must not decide anything: thresholds, intervals, start periods and what a failure
//! leads to live in the core (`supervisor`), which also ignores results for a stale
//! generation. Nor does it decide when a probe has run too long: the core does, and
//! the loop cancels the probe when told (`Effect::CancelProbe`). It must not spawn,
//! signal or wait for processes either: `exec` probes are started, killed and reaped by
//! the loop (the single spawner and reaper); `ExecProbes` only keeps the loop's books
//! on them and maps their ends to outcomes. Nothing here panics on what it reads from
//! the network, /proc or a pipe: every problem is a `Failed` outcome or a quiet end.

mod memory;
mod resolve;

use crate::process::SpawnError;
use crate::runtime::Fact;
use crate::spec::Probe;
use crate::supervisor::{ChildRef, Event, ExitStatus, ProbeKind, ProbeOutcome};
use http_body_util::Empty;
use hyper::body::Bytes;
use memory::MemorySampler;
use resolve::{Resolution, Resolver};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

/// Runs probes and reports their results to the loop. Created once by the loop (after
/// the runtime exists: its methods spawn tasks) and held by it; cheap to call for
/// every probe. Dropping it stops nothing already started: tasks finish on their own
/// (each is bounded by its timeout, or by its pipe's end for a readiness fd), a lookup
/// thread when the system resolver gives up, and the memory thread once it has
/// answered what it was asked.
pub struct Prober {
    /// The loop's channel; each task holds a clone until it has reported.
    facts: UnboundedSender<Fact>,
    /// The name lookups of network probes, at most one in flight per probe.
    resolver: Resolver,
    /// The memory guard's sampling thread.
    memory: MemorySampler,
}

impl Prober {
    /// `facts` is the sender of the channel the loop `select!`s on.
    pub fn new(facts: UnboundedSender<Fact>) -> Prober {
        Prober {
            memory: MemorySampler::new(facts.clone()),
            resolver: Resolver::default(),
            facts,
        }
    }

    /// Runs one `tcp` or `http` probe for `child` and reports `Fact::ProbeResult
    /// { child, kind, run, outcome }` within `timeout` (plus scheduling slack): `Passed`, or
    /// `Failed` with the reason. An `exec` probe is not run here (the loop spawns it):
    /// it is answered `Failed` at once, which points at the caller's mistake.
    ///
    /// A host name is looked up anew for each probe, except that a lookup still pending
    /// from this check's previous probe is waited for rather than repeated (see
    /// `resolve`); a lookup that does not answer within `timeout` fails the probe with
    /// "name lookup timed out". The timeout bounds lookup, connection and request
    /// together (a second bound: the core's own deadline for the probe comes first and
    /// cancels it). An address literal is not looked up.
    ///
    /// Returns the handle of the probe's task, which the loop keeps in the record of
    /// `child`'s process: aborting it (`Effect::CancelProbe`, or that process's end)
    /// stops the probe, and its result is never sent. A name lookup it started goes on
    /// on its own thread and may serve the check's next probe. `None` when the probe
    /// was answered at once.
    pub fn network(
        &mut self,
        child: ChildRef,
        kind: ProbeKind,
        run: u64,
        probe: &Probe,
        timeout: Duration,
    ) -> Option<AbortHandle> {
        let (target, http) = match probe {
            Probe::Tcp { address } => (address.clone(), None),
            Probe::Http { url } => match HttpTarget::parse(url) {
                Ok(parsed) => (parsed.connect_address(), Some((url.clone(), parsed))),
                Err(reason) => {
                    self.answer(child, kind, run, ProbeOutcome::Failed(reason));
                    return None;
                }
            },
            Probe::Exec { .. } => {
                let outcome = ProbeOutcome::Failed(
                    "exec probes are run by the loop, not by the network prober".into(),
                );
                self.answer(child, kind, run, outcome);
                return None;
            }
        };
        let resolution = self.resolver.resolve((child.id, kind), &target);
        let facts = self.facts.clone();
        let task = tokio::spawn(async move {
            let outcome = network_check(resolution, &target, http, timeout).await;
            // The loop has gone away only when minder is exiting: nothing to tell.
            let _ = facts.send(Fact::ProbeResult {
                child,
                kind,
                run,
                outcome,
            });
        });
        Some(task.abort_handle())
    }

    /// Reports `outcome` at once, for a probe that cannot run.
    fn answer(&self, child: ChildRef, kind: ProbeKind, run: u64, outcome: ProbeOutcome) {
        let _ = self.facts.send(Fact::ProbeResult {
            child,
            kind,
            run,
            outcome,
        });
    }

    /// Asks for a sample of the resident memory of `child`'s process group for run
    /// `run` of its memory check: the sampler answers with `Fact::MemoryScan`, a table
    /// of the resident bytes of every process group (the sum over the processes of each
    /// group), naming `(child, run)` among those it answers. The loop looks its process
    /// group up in the table (0 when the group is not there) and answers the core with
    /// a `Memory` outcome for that run, never `Failed`: the core schedules the next
    /// sample only on a `Memory` answer.
    ///
    /// Shared pages (libraries, copy-on-write after fork) count once per process, as in
    /// `ps` and `top`, so a forking server is over-counted; a cgroup would be exact.
    ///
    /// One walk over /proc answers every memory probe asked within
    /// `MEMORY_SCAN_FRESH` of it; the walk runs on the sampler's own thread.
    pub fn memory(&mut self, child: ChildRef, run: u64) {
        self.memory.sample(child, run);
    }

    /// Watches the read end of a service's readiness pipe (`ready.fd = N`, from
    /// `SpawnedProcess::ready_fd`): once a newline arrives, reports `Fact::ReadyLine
    /// { child }` and closes the pipe. Bytes before the newline are ignored (as by
    /// s6-supervise). End of file without a newline reports nothing: the core's ready
    /// deadline decides. If the fd is not a pipe's read end, nothing is reported either
    /// (logged at warn).
    ///
    /// The task ends at the newline or at end of file, which comes at the latest when
    /// the service's process group is killed, unless a process that escaped the group
    /// kept fd N. The returned handle lets the loop end the watch earlier (on the
    /// child's exit, for instance); dropping the handle does not end it.
    pub fn watch_ready_fd(&self, child: ChildRef, fd: OwnedFd) -> AbortHandle {
        let facts = self.facts.clone();
        let task = tokio::spawn(async move {
            let receiver = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                Ok(receiver) => receiver,
                Err(error) => {
                    tracing::warn!(?child, "watch the readiness fd: {error}");
                    return;
                }
            };
            if wait_for_newline(&receiver).await {
                let _ = facts.send(Fact::ReadyLine { child });
            }
        });
        task.abort_handle()
    }
}

/// The `exec` probes in flight, by pid: bookkeeping for the loop, which spawns them
/// (`process::spawn` with `StdioMode::Null` and the probe's argv as `command`), kills
/// their process group when the core cancels them and reaps them. This type spawns,
/// kills and waits for nothing; it only remembers what each pid is for and turns its
/// end into the `Event::ProbeResult` the core expects. Created by the loop at startup
/// and held by it; dropping it forgets the probes (the loop kills every group at exit
/// anyway). The record of the service's running process lists its probes too: it
/// kills one the core cancels, and those still running when that process ends; their
/// ends still come here, through the one reaper.
#[derive(Debug, Default)]
pub struct ExecProbes {
    /// By pid, which is also the probe's process group (its own session).
    running: HashMap<i32, ExecProbe>,
}

/// One exec probe in flight.
#[derive(Debug)]
struct ExecProbe {
    child: ChildRef,
    kind: ProbeKind,
    /// The run of the check it answers (from `Effect::Probe`).
    run: u64,
    /// The loop killed it because the core cancelled it: its end answers nothing, the
    /// core has counted it already. (A probe killed because its service's process
    /// ended is answered, and the loop drops that answer as it drops every fact about
    /// an ended process.)
    cancelled: bool,
}

impl ExecProbes {
    pub fn new() -> ExecProbes {
        ExecProbes::default()
    }

    /// Remembers a probe the loop has just spawned, in the same turn (before the next
    /// reap), as for services.
    pub fn register(&mut self, pid: i32, child: ChildRef, kind: ProbeKind, run: u64) {
        self.running.insert(
            pid,
            ExecProbe {
                child,
                kind,
                run,
                cancelled: false,
            },
        );
    }

    /// The incarnation `pid` probes, if it is a probe in flight.
    pub fn owner(&self, pid: i32) -> Option<ChildRef> {
        self.running.get(&pid).map(|probe| probe.child)
    }

    /// Whether `pid` is a probe in flight.
    pub fn contains(&self, pid: i32) -> bool {
        self.running.contains_key(&pid)
    }

    /// How many probes are in flight.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The loop killed the probe `pid` because the core cancelled its run (its timeout
    /// passed; the record of its service's process did the kill): its end, collected
    /// later by the reaper, answers nothing. False when `pid` is not a probe in flight
    /// or was already cancelled.
    pub fn cancel(&mut self, pid: i32) -> bool {
        match self.running.get_mut(&pid) {
            Some(probe) if !probe.cancelled => {
                probe.cancelled = true;
                true
            }
            _ => false,
        }
    }

    /// The reaper collected `pid`, a probe (see `contains`): forgets it and returns
    /// its result (`Passed` on exit code 0; `Failed` with the code or the signal), or
    /// `None` for a probe the loop killed, whose end answers nothing. The loop should
    /// also kill the probe's group (whatever the probe left behind), as it does for
    /// services.
    pub fn exited(&mut self, pid: i32, status: ExitStatus) -> Option<Event> {
        let probe = self.running.remove(&pid)?;
        if probe.cancelled {
            return None;
        }
        let outcome = match status {
            ExitStatus::Exited(0) => ProbeOutcome::Passed,
            ExitStatus::Exited(code) => ProbeOutcome::Failed(format!("exit code {code}")),
            ExitStatus::Signaled(signal) => {
                ProbeOutcome::Failed(format!("killed by {}", crate::signals::signal_name(signal)))
            }
        };
        Some(Event::ProbeResult {
            child: probe.child,
            kind: probe.kind,
            run: probe.run,
            outcome,
        })
    }

    /// The answer for a probe command that could not be started at all.
    pub fn spawn_failed(child: ChildRef, kind: ProbeKind, run: u64, error: &SpawnError) -> Event {
        Event::ProbeResult {
            child,
            kind,
            run,
            outcome: ProbeOutcome::Failed(error.reason.clone()),
        }
    }

    /// Every probe in flight (pids = process groups), for the final cleanup.
    pub fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.running.keys().copied()
    }
}

fn timed_out(timeout: Duration) -> ProbeOutcome {
    ProbeOutcome::Failed(format!(
        "timed out after {}",
        humantime::format_duration(timeout)
    ))
}

/// True once a newline has been read; false at end of file or on a read error.
async fn wait_for_newline(receiver: &tokio::net::unix::pipe::Receiver) -> bool {
    let mut buffer = [0u8; 512];
    loop {
        if receiver.readable().await.is_err() {
            return false;
        }
        match receiver.try_read(&mut buffer) {
            Ok(0) => return false,
            Ok(n) => {
                if buffer[..n].contains(&b'\n') {
                    return true;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
}

/// Gets the addresses of `target` (`host:port`), connects to the first that accepts
/// and, for an http probe, sends the request: all within `timeout`. Each failure is one
/// line naming the operation and the object.
async fn network_check(
    resolution: Resolution,
    target: &str,
    http: Option<(String, HttpTarget)>,
    timeout: Duration,
) -> ProbeOutcome {
    let started = Instant::now();
    let addresses = match resolution {
        Resolution::Literal(address) => vec![address],
        Resolution::Refused(reason) => return ProbeOutcome::Failed(reason),
        Resolution::Pending { lookup, joined } => {
            let lookup_started = lookup.started();
            match tokio::time::timeout(timeout, lookup.answer()).await {
                Ok(Ok(addresses)) => addresses,
                Ok(Err(reason)) => return ProbeOutcome::Failed(reason),
                Err(_) => {
                    let joined_at = joined.then_some(lookup_started);
                    return ProbeOutcome::Failed(lookup_timed_out(target, timeout, joined_at));
                }
            }
        }
    };
    let remaining = timeout.saturating_sub(started.elapsed());
    let exchange = async {
        let stream = connect(&addresses).await?;
        match &http {
            None => Ok(()),
            Some((url, parsed)) => http_get(stream, url, parsed).await,
        }
    };
    match tokio::time::timeout(remaining, exchange).await {
        Ok(Ok(())) => ProbeOutcome::Passed,
        Ok(Err(reason)) => ProbeOutcome::Failed(reason),
        Err(_) => timed_out(timeout),
    }
}

/// The reason of a probe whose name lookup did not answer in time. `joined_at` is when
/// the lookup started if an earlier probe of the same check started it: the reason
/// says so, and for how long it has been pending.
fn lookup_timed_out(target: &str, timeout: Duration, joined_at: Option<Instant>) -> String {
    let mut reason = format!(
        "resolve {target}: name lookup timed out after {}",
        humantime::format_duration(timeout)
    );
    if let Some(started) = joined_at {
        reason.push_str(&format!(
            " (the lookup an earlier probe started {} ago is still pending)",
            resolve::describe_age(started)
        ));
    }
    reason
}

/// Connects to the first of `addresses` that accepts, in order, as
/// `std::net::TcpStream::connect` does.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last_error = "no addresses to connect to".to_string();
    for candidate in addresses {
        match TcpStream::connect(candidate).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = format!("connect {candidate}: {}", describe(&error)),
        }
    }
    Err(last_error)
}

/// `GET` the URL over HTTP/1.1 (hyper's client connection on `stream`, connected to
/// `target`): 2xx and 3xx pass (redirects are not followed), anything else fails with
/// its status.
async fn http_get(stream: TcpStream, url: &str, target: &HttpTarget) -> Result<(), String> {
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|error| format!("GET {url}: {error}"))?;
    // The connection is driven by its own task, aborted when this function returns or
    // is cancelled by the timeout, so no socket outlives the probe.
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = hyper::Request::builder()
        .method(hyper::Method::GET)
        .uri(target.path_and_query.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(
            hyper::header::USER_AGENT,
            concat!("minder/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| format!("GET {url}: {error}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("GET {url}: {error}"))?;
    drop(driver);
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The parts of an `http://` URL a probe needs.
#[derive(Debug, PartialEq, Eq)]
struct HttpTarget {
    /// `host[:port]` as written, sent as the Host header.
    authority: String,
    /// Host without brackets (`::1` for `[::1]`).
    host: String,
    port: u16,
    /// `/path?query`, `/` when the URL has none. A fragment is dropped.
    path_and_query: String,
}

impl HttpTarget {
    /// Parses `http://host[:port][/path][?query][#fragment]`. The config validated the
    /// URL already; this still never panics and reports what it could not read.
    fn parse(url: &str) -> Result<HttpTarget, String> {
        let bad = |why: &str| format!("URL {url}: {why}");
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
            _ => return Err(bad("only http:// URLs can be probed")),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(bad("unclosed `[` in the host"));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(bad("unexpected text after `]`")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None | Some("") => 80,
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| bad(&format!("bad port `{port}`")))?,
        };
        let path_and_query = match path_and_query {
            "" => "/".to_string(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_string(),
        };
        // hyper would refuse these in the request line; say which part is wrong.
        if path_and_query
            .bytes()
            .any(|byte| byte.is_ascii_control() || byte == b' ')
        {
            return Err(bad("spaces or control characters in the path"));
        }
        Ok(HttpTarget {
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            path_and_query,
        })
    }

    /// What `connect` resolves: `host:port`, with brackets for an IPv6 literal.
    fn connect_address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// An I/O error as a clause: the system's text for an errno ("Connection refused"),
/// without std's "(os error N)" suffix; other errors as they display.
fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests;
