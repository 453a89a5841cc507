//! The memory guard's sampler: one thread of its own that walks /proc and answers
//! memory probes with a table of the resident bytes of every process group.
//!
//! The walk is blocking file I/O (one read per process), so it cannot run on the loop's
//! thread; it does not run on tokio's blocking pool either, where it would queue
//! behind whatever else waits there (stuck name lookups once delayed it by seconds).
//! The thread starts at the first memory probe, so a tree without `max_memory` never
//! has it, owns the last scan (no state is shared with the loop: each answer is a
//! `Fact::MemoryScan` carrying the table, immutable, and the probes it answers), and
//! ends when the `MemorySampler` is dropped. It must not decide anything: it reports
//! numbers, the loop picks the asking process's group and the core compares it with
//! the limit.

use crate::procfs;
use crate::runtime::Fact;
use crate::supervisor::ChildRef;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// How long one scan of /proc answers memory probes. With 1000 services sampled every
/// 10 s, probes come in bursts; one scan serves every probe of a burst.
pub(super) const MEMORY_SCAN_FRESH: Duration = Duration::from_millis(200);

/// One memory probe: the incarnation asking and the run of its check it answers.
struct Request {
    child: ChildRef,
    run: u64,
}

/// The loop's handle on the sampling thread. Created with the `Prober`, held by it.
pub(super) struct MemorySampler {
    /// Where the thread reports; it holds a clone while it runs.
    facts: UnboundedSender<Fact>,
    /// Requests to the thread. `None` until the first probe starts the thread.
    /// Dropping the sender ends the thread once it has answered what it was sent.
    requests: Option<mpsc::Sender<Request>>,
}

impl MemorySampler {
    pub(super) fn new(facts: UnboundedSender<Fact>) -> MemorySampler {
        MemorySampler {
            facts,
            requests: None,
        }
    }

    /// Asks for a scan on behalf of run `run` of `child`'s memory check; the thread
    /// answers with a `Fact::MemoryScan` that names them. Every call is answered, even
    /// if the thread cannot be started (with an empty table, so 0 bytes, and a warning:
    /// the core's schedule of samples must go on, and the next probe tries again).
    pub(super) fn sample(&mut self, child: ChildRef, run: u64) {
        let mut request = Request { child, run };
        if let Some(requests) = &self.requests {
            match requests.send(request) {
                Ok(()) => return,
                // The thread is gone (it cannot panic on a scan; see `serve`): start
                // another one for this request.
                Err(mpsc::SendError(returned)) => request = returned,
            }
        }
        let (sender, receiver) = mpsc::channel();
        let facts = self.facts.clone();
        let started = std::thread::Builder::new()
            .name("minder-memory".into())
            .spawn(move || serve(&receiver, &facts));
        match started {
            Ok(_) => {
                // The receiver lives in the thread, which ends only once this sender
                // is dropped, so the send cannot fail.
                let _ = sender.send(request);
                self.requests = Some(sender);
            }
            Err(error) => {
                tracing::warn!("start the memory sampling thread: {error}");
                self.requests = None;
                let _ = self.facts.send(Fact::MemoryScan {
                    groups: Arc::default(),
                    asked: vec![(child, run)],
                });
            }
        }
    }
}

/// The thread's body: answers requests until the sender is dropped (or the loop's
/// channel is closed, when minder is exiting). Requests that arrive together, or
/// within `MEMORY_SCAN_FRESH` of the last scan, share one scan: the same table is
/// sent again.
fn serve(requests: &mpsc::Receiver<Request>, facts: &UnboundedSender<Fact>) {
    let mut table: Arc<HashMap<i32, u64>> = Arc::default();
    let mut scanned_at: Option<Instant> = None;
    while let Ok(first) = requests.recv() {
        let batch: Vec<Request> = std::iter::once(first).chain(requests.try_iter()).collect();
        if scanned_at.is_none_or(|at| at.elapsed() >= MEMORY_SCAN_FRESH) {
            // A bug in the walk must not end the thread with requests unanswered: the
            // core waits for each answer before it schedules the next sample.
            table = Arc::new(
                std::panic::catch_unwind(resident_bytes_by_group).unwrap_or_else(|_| {
                    tracing::warn!("memory scan of /proc failed; answering 0 bytes");
                    HashMap::new()
                }),
            );
            scanned_at = Some(Instant::now());
        }
        let fact = Fact::MemoryScan {
            groups: Arc::clone(&table),
            asked: batch
                .into_iter()
                .map(|request| (request.child, request.run))
                .collect(),
        };
        if facts.send(fact).is_err() {
            return;
        }
    }
}

/// Resident bytes per process group, over every process in /proc. Processes that end
/// during the walk, kernel threads (group 0) and unreadable entries are skipped.
/// Reads one small file per process (`stat`, whose field 24 is the resident set in
/// pages), so 1000 services with a few processes each cost a few thousand reads, a few
/// milliseconds.
pub(super) fn resident_bytes_by_group() -> HashMap<i32, u64> {
    let page_size = procfs::page_size();
    let mut groups: HashMap<i32, u64> = HashMap::new();
    for process in procfs::processes().filter(|process| process.pgrp > 0) {
        let bytes = process.rss_pages.saturating_mul(page_size);
        let total = groups.entry(process.pgrp).or_insert(0);
        *total = total.saturating_add(bytes);
    }
    groups
}
