//! The HTTP/1 server of the metrics endpoint (hyper), on a thread of its own.
//!
//! The listening socket is bound before the tree starts (`Endpoint::bind`), so an
//! address that cannot be bound is a startup error, not a silent gap in monitoring.
//! The server then runs on the thread `minder-metrics` with a current-thread tokio
//! runtime: nothing it does (reading /proc, rendering ten thousand services, writing
//! to a scraper that does not read) runs on the supervision loop's thread. It shares
//! nothing with the loop but the loop's fact channel, over which it asks for
//! snapshots. Connections are bounded in number, in how long their request headers
//! may take and in how long a response may wait for a client that takes none of it
//! (`Stalling`), so idle, half-open or never-reading clients cannot pile up.

use super::render::Units;
use super::{Phase, Snapshot, SnapshotRequest};
use crate::runtime::Fact;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// `/healthz` is 200 when the loop answers a snapshot request within this bound; any
/// request for the tree's state gives up after it.
pub const HEALTH_BOUND: Duration = Duration::from_secs(1);

/// At most this many connections at once; more are closed as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// A client must send its request headers within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A client must take some of a response within this long whenever its socket is full;
/// else the connection is dropped (see `Stalling`).
const WRITE_STALL: Duration = Duration::from_secs(10);

/// The bound listening socket, until the server is started on it.
#[derive(Debug)]
pub struct Endpoint {
    listener: std::net::TcpListener,
    address: SocketAddr,
}

impl Endpoint {
    /// Binds `address` (port 0: a free port). The error names the address.
    pub fn bind(address: SocketAddr) -> Result<Endpoint, String> {
        let failed = |error: std::io::Error| format!("metrics_listen {address}: {error}");
        let listener = std::net::TcpListener::bind(address).map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?;
        Ok(Endpoint { listener, address })
    }

    /// The address it listens on (with the port the kernel chose for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves on a thread of its own until minder exits, asking the loop for
    /// snapshots through `facts`. A failure to start is logged: minder supervises on
    /// without its endpoint rather than stopping a running tree for it.
    pub fn start(self, facts: mpsc::UnboundedSender<Fact>) {
        let started = std::thread::Builder::new()
            .name("minder-metrics".into())
            .spawn(move || {
                yield_to_supervision();
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!("metrics endpoint: start its runtime: {error}");
                        return;
                    }
                };
                runtime.block_on(serve(self.listener, facts));
            });
        if let Err(error) = started {
            tracing::error!("metrics endpoint: start its thread: {error}");
        }
    }
}

/// Lowers this thread's scheduling priority (nice 10): on a machine short of CPU, a
/// scrape of a large tree waits rather than the supervision loop. Linux applies nice
/// per thread; the loop's thread, which spawns every service, keeps minder's own. A
/// failure changes nothing but the priority, so it is ignored.
fn yield_to_supervision() {
    // SAFETY: gettid and setpriority take and return plain integers.
    unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 10);
    }
}

/// What every connection of the server shares.
struct Server {
    facts: mpsc::UnboundedSender<Fact>,
    /// The last snapshot and when it was asked for. Held while a request to the loop
    /// is in flight, so concurrent requests wait for that one instead of asking again.
    latest: Mutex<Option<(Instant, Arc<Snapshot>)>>,
    process: ProcessCollector,
    units: Units,
}

async fn serve(listener: std::net::TcpListener, facts: mpsc::UnboundedSender<Fact>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("metrics endpoint: {error}");
            return;
        }
    };
    let server = Arc::new(Server {
        facts,
        latest: Mutex::new(None),
        process: ProcessCollector::for_self(),
        units: Units {
            ticks_per_second: crate::procfs::clock_ticks_per_second(),
            page_size: crate::procfs::page_size(),
        },
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, most likely: give the others time to close
                // rather than spinning on the error.
                tracing::debug!("metrics endpoint: accept: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let server = Arc::clone(&server);
                async move { Ok::<_, Infallible>(server.answer(&request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(Stalling::new(stream)), service)
                .await;
            drop(slot);
        });
    }
}

impl Server {
    async fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        }
        match request.uri().path() {
            "/metrics" => match self.snapshot().await {
                Some(snapshot) => {
                    let mut response = text(StatusCode::OK, self.metrics(&snapshot));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(prometheus::TEXT_FORMAT),
                    );
                    response
                }
                None => unresponsive(),
            },
            "/healthz" => match self.snapshot().await {
                Some(_) => text(StatusCode::OK, "ok\n".into()),
                None => unresponsive(),
            },
            "/readyz" => match self.snapshot().await {
                Some(snapshot) => readiness(&snapshot),
                None => unresponsive(),
            },
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz or /readyz\n".into(),
            ),
        }
    }

    /// A snapshot taken after this call began: the one another request has just
    /// obtained, or a new one from the loop. `None` if the loop did not answer within
    /// `HEALTH_BOUND` (or is gone).
    async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        let asked = Instant::now();
        let mut latest = tokio::time::timeout(HEALTH_BOUND, self.latest.lock())
            .await
            .ok()?;
        if let Some((at, snapshot)) = latest.as_ref()
            && *at >= asked
        {
            return Some(Arc::clone(snapshot));
        }
        let sent = Instant::now();
        let (reply, answer) = oneshot::channel();
        self.facts
            .send(Fact::Snapshot(SnapshotRequest(reply)))
            .ok()?;
        let remaining = HEALTH_BOUND.saturating_sub(asked.elapsed());
        let snapshot = Arc::new(tokio::time::timeout(remaining, answer).await.ok()?.ok()?);
        *latest = Some((sent, Arc::clone(&snapshot)));
        Some(snapshot)
    }

    /// The text of `/metrics`: the tree's, with CPU and memory from /proc, and
    /// minder's own `process_*`.
    fn metrics(&self, snapshot: &Snapshot) -> String {
        let usage = if snapshot
            .services
            .iter()
            .any(|service| service.pid.is_some())
        {
            crate::procfs::usage_by_group()
        } else {
            Default::default()
        };
        super::render(snapshot, &usage, self.units, self.process.collect())
    }
}

/// `/readyz`: 200 when every service with a ready check is ready (or ended for good,
/// or held stopped) and no shutdown has begun; else 503 with the phase (draining,
/// shutting down), or the missing services one per line.
fn readiness(snapshot: &Snapshot) -> Response<Full<Bytes>> {
    match snapshot.phase {
        Phase::Running => {}
        Phase::Draining => return text(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into()),
        Phase::ShuttingDown => {
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
        }
    }
    let missing: String = snapshot
        .info
        .iter()
        .zip(&snapshot.services)
        .filter(|(info, state)| info.ready_check && !state.settled)
        .map(|(info, _)| format!("{}\n", info.name))
        .collect();
    if missing.is_empty() {
        text(StatusCode::OK, "ready\n".into())
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, missing)
    }
}

fn unresponsive() -> Response<Full<Bytes>> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the supervision loop did not answer within {}\n",
            humantime::format_duration(HEALTH_BOUND)
        ),
    )
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A connection whose writes fail once they have made no progress for `WRITE_STALL`.
///
/// hyper has no write timeout: a client that sends requests and never reads the
/// responses (or a pipeline of them) fills both socket buffers, and the connection's
/// task then waits forever, holding one of the `MAX_CONNECTIONS` slots and its
/// rendered body. Enough of them would starve every later request, `/healthz`
/// included. The timer runs only while a write waits for room and restarts with each
/// byte the client takes, so a slow reader of a large body is served to the end.
struct Stalling {
    stream: TcpStream,
    /// Armed when a write or flush had to wait; disarmed when one goes through.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stalling {
    fn new(stream: TcpStream) -> Stalling {
        Stalling {
            stream,
            stalled: None,
        }
    }

    /// What a write that made progress (or failed) returns, and what one that must
    /// wait returns: pending until `WRITE_STALL` has passed since it began waiting.
    fn check<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        context: &mut Context,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
        match timer.as_mut().poll(context) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took none of the response for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Stalling {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context,
        buffer: &mut ReadBuf,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for Stalling {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(context, bytes);
        this.check(result, context)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context,
        slices: &[io::IoSlice],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(context, slices);
        this.check(result, context)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_flush(context);
        this.check(result, context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}
