//! Name lookups for tcp and http probes: on threads of their own, at most one in
//! flight per probe, never holding up anything else.
//!
//! `getaddrinfo` blocks and cannot be cancelled: a resolver that never answers keeps a
//! thread for as long as the C library retries (`timeout` × `attempts` in
//! resolv.conf(5), per name server and per search domain). Starting a lookup for every
//! probe, as `tokio::net::lookup_host` would, piles up one stuck thread per probe
//! interval and fills tokio's blocking pool (512 threads), behind which every other
//! blocking job then waits. So:
//! - an address literal (`127.0.0.1:80`, `[::1]:80`) is never looked up;
//! - a probe (one service's ready or health check) has at most one lookup in flight.
//!   A probe that comes due while its previous lookup is still pending waits for that
//!   same lookup, within its own timeout, instead of starting another; if the lookup
//!   answers late, that answer serves the probe that is waiting then;
//! - all lookups together are capped (`MAX_LOOKUPS`): past it, a probe that needs a
//!   new lookup fails at once, naming the cause;
//! - lookups run on plain threads, not on tokio's blocking pool, and nobody joins
//!   them: a lookup that outlives its probe ends on its own, or with minder's exit.
//!
//! The `Resolver` belongs to the `Prober` and is used from the loop's thread only; a
//! lookup thread shares nothing with it but the count of lookups in flight and the
//! channel that carries its one answer.

use crate::supervisor::{ProbeKind, ServiceId};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Lookups in flight at once, over all probes. Each holds a thread while the resolver
/// keeps it waiting; with a resolver that answers, lookups end in milliseconds and this
/// is never reached.
pub(super) const MAX_LOOKUPS: usize = 32;

/// The addresses of a name, or the reason there are none.
pub(super) type Addresses = Result<Vec<SocketAddr>, String>;

/// Which probe a lookup belongs to: one service's ready or health check. Every
/// incarnation of the service shares the slot, so a restart does not add a lookup.
pub(super) type Slot = (ServiceId, ProbeKind);

/// Starts lookups and remembers, per probe, the last one started.
#[derive(Default)]
pub(super) struct Resolver {
    /// The last lookup of each probe; a finished one stays until the probe's next
    /// lookup replaces it (one small entry per probe that names a host).
    lookups: HashMap<Slot, Lookup>,
    /// Lookups whose thread has not finished yet; decremented by the thread.
    in_flight: Arc<AtomicUsize>,
}

/// One lookup, shared by the probes that wait for it.
#[derive(Clone)]
pub(super) struct Lookup {
    /// `host:port` as the probe names it.
    target: String,
    started: Instant,
    /// `None` until the lookup thread answers.
    answer: watch::Receiver<Option<Addresses>>,
}

/// How a probe gets the addresses it connects to.
pub(super) enum Resolution {
    /// The target is an address literal: nothing to look up.
    Literal(SocketAddr),
    /// A lookup in flight: started for this probe, or (`joined`) by an earlier probe
    /// of the same check and still pending.
    Pending { lookup: Lookup, joined: bool },
    /// No lookup could be started; the probe fails with this reason.
    Refused(String),
}

impl Resolver {
    /// How `slot`'s probe of `target` (`host:port`, IPv6 literals in brackets) gets
    /// its addresses. Never blocks.
    pub(super) fn resolve(&mut self, slot: Slot, target: &str) -> Resolution {
        if let Ok(address) = target.parse::<SocketAddr>() {
            return Resolution::Literal(address);
        }
        if let Some(lookup) = self.lookups.get(&slot)
            && lookup.is_pending()
        {
            if lookup.target == target {
                return Resolution::Pending {
                    lookup: lookup.clone(),
                    joined: true,
                };
            }
            // Only a changed probe can get here (the target of a probe is fixed for a
            // run); the lookup of the old target still holds the probe's thread.
            return Resolution::Refused(format!(
                "resolve {target}: the lookup of {} by this check has been pending for {}",
                lookup.target,
                describe_age(lookup.started)
            ));
        }
        if self.in_flight.load(Ordering::Relaxed) >= MAX_LOOKUPS {
            return Resolution::Refused(format!(
                "resolve {target}: {MAX_LOOKUPS} name lookups are pending already \
                 (the resolver is not answering)"
            ));
        }
        match self.start(target) {
            Ok(lookup) => {
                self.lookups.insert(slot, lookup.clone());
                Resolution::Pending {
                    lookup,
                    joined: false,
                }
            }
            Err(reason) => Resolution::Refused(reason),
        }
    }

    /// Starts a lookup thread for `target`.
    fn start(&self, target: &str) -> Result<Lookup, String> {
        let (sender, answer) = watch::channel(None);
        let in_flight = Arc::clone(&self.in_flight);
        let owned_target = target.to_string();
        in_flight.fetch_add(1, Ordering::Relaxed);
        let started = std::thread::Builder::new()
            .name("minder-resolve".into())
            .spawn(move || {
                let addresses = look_up(&owned_target);
                in_flight.fetch_sub(1, Ordering::Relaxed);
                // Nobody listening any more (the probe timed out and no later probe
                // joined) is fine: the answer is simply dropped.
                sender.send_replace(Some(addresses));
            });
        match started {
            Ok(_) => Ok(Lookup {
                target: target.to_string(),
                started: Instant::now(),
                answer,
            }),
            Err(error) => {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                Err(format!("resolve {target}: start a lookup thread: {error}"))
            }
        }
    }
}

impl Lookup {
    fn is_pending(&self) -> bool {
        self.answer.borrow().is_none()
    }

    /// When the lookup was started, for messages.
    pub(super) fn started(&self) -> Instant {
        self.started
    }

    /// The lookup's answer, once it comes. Cancel-safe: dropping the future leaves the
    /// lookup running for the next probe.
    pub(super) async fn answer(mut self) -> Addresses {
        match self.answer.wait_for(Option::is_some).await {
            Ok(answer) => answer
                .clone()
                .unwrap_or_else(|| Err(format!("resolve {}: no answer", self.target))),
            // The thread dropped its sender without answering: only a panic inside the
            // C library's resolver could do that.
            Err(_) => Err(format!("resolve {}: the lookup thread failed", self.target)),
        }
    }
}

/// `getaddrinfo` for `host:port`, as `std` does it: blocks for as long as the system
/// resolver takes.
fn look_up(target: &str) -> Addresses {
    match target.to_socket_addrs() {
        Ok(addresses) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() {
                Err(format!("resolve {target}: no addresses"))
            } else {
                Ok(addresses)
            }
        }
        Err(error) => Err(format!("resolve {target}: {}", super::describe(&error))),
    }
}

/// "3.2s" for a lookup started 3.2 seconds ago (milliseconds are enough for a message).
pub(super) fn describe_age(started: Instant) -> humantime::FormattedDuration {
    let age = started.elapsed();
    humantime::format_duration(Duration::from_millis(
        age.as_millis().try_into().unwrap_or(u64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    //! The resolver's rules, with lookups of `localhost` (answered from /etc/hosts) and
    //! pending lookups made by hand (a watch channel nobody answers). A resolver that
    //! never answers is tested through the real binary in tests/health_dns.rs.

    use super::*;

    const SLOT: Slot = (ServiceId(3), ProbeKind::Health);

    /// A lookup of `target` that stays pending until the returned sender answers it.
    fn pending_by_hand(resolver: &mut Resolver, target: &str) -> watch::Sender<Option<Addresses>> {
        let (sender, answer) = watch::channel(None);
        let lookup = Lookup {
            target: target.to_string(),
            started: Instant::now(),
            answer,
        };
        resolver.lookups.insert(SLOT, lookup);
        sender
    }

    #[test]
    fn an_address_literal_is_never_looked_up() {
        let mut resolver = Resolver::default();
        for target in ["127.0.0.1:80", "[::1]:8080", "10.1.2.3:5432"] {
            match resolver.resolve(SLOT, target) {
                Resolution::Literal(address) => assert_eq!(address.to_string(), target),
                _ => panic!("{target} was looked up"),
            }
        }
        assert_eq!(resolver.in_flight.load(Ordering::Relaxed), 0);
        assert!(resolver.lookups.is_empty());
    }

    #[tokio::test]
    async fn a_name_is_looked_up_on_a_thread_and_afresh_for_each_probe() {
        let mut resolver = Resolver::default();
        let Resolution::Pending {
            lookup,
            joined: false,
        } = resolver.resolve(SLOT, "localhost:8080")
        else {
            panic!("localhost was not looked up");
        };
        let addresses = lookup.answer().await.expect("localhost resolves");
        assert!(!addresses.is_empty());
        for address in addresses {
            assert!(address.ip().is_loopback(), "{address}");
            assert_eq!(address.port(), 8080);
        }
        // That lookup has ended: the next probe starts its own.
        assert!(matches!(
            resolver.resolve(SLOT, "localhost:8080"),
            Resolution::Pending { joined: false, .. }
        ));
    }

    #[tokio::test]
    async fn a_probe_due_while_its_lookup_is_pending_waits_for_that_lookup() {
        let mut resolver = Resolver::default();
        let answer = pending_by_hand(&mut resolver, "db.internal:5432");
        let Resolution::Pending {
            lookup,
            joined: true,
        } = resolver.resolve(SLOT, "db.internal:5432")
        else {
            panic!("a second lookup was started");
        };
        // No thread was started for it.
        assert_eq!(resolver.in_flight.load(Ordering::Relaxed), 0);
        // Another check (the ready one) of the same service has a slot of its own.
        let other_slot = (ServiceId(3), ProbeKind::Ready);
        let other = resolver.resolve(other_slot, "localhost:1");
        assert!(matches!(other, Resolution::Pending { joined: false, .. }));
        // The late answer serves the probe that waits for it.
        let address: SocketAddr = "10.0.0.7:5432".parse().expect("address");
        answer.send_replace(Some(Ok(vec![address])));
        assert_eq!(lookup.answer().await, Ok(vec![address]));
    }

    #[test]
    fn a_changed_target_does_not_start_a_second_lookup_for_the_same_check() {
        let mut resolver = Resolver::default();
        let _answer = pending_by_hand(&mut resolver, "old.internal:80");
        let Resolution::Refused(reason) = resolver.resolve(SLOT, "new.internal:80") else {
            panic!("a second lookup was started");
        };
        assert!(
            reason.starts_with(
                "resolve new.internal:80: the lookup of old.internal:80 by this check has been pending for "
            ),
            "{reason}"
        );
    }

    #[test]
    fn past_the_cap_a_probe_that_needs_a_lookup_fails_at_once() {
        let mut resolver = Resolver::default();
        resolver.in_flight.store(MAX_LOOKUPS, Ordering::Relaxed);
        let Resolution::Refused(reason) = resolver.resolve(SLOT, "localhost:80") else {
            panic!("a lookup was started past the cap");
        };
        assert_eq!(
            reason,
            format!(
                "resolve localhost:80: {MAX_LOOKUPS} name lookups are pending already \
                 (the resolver is not answering)"
            )
        );
        // Literals need no lookup, so the cap does not touch them.
        assert!(matches!(
            resolver.resolve(SLOT, "127.0.0.1:80"),
            Resolution::Literal(_)
        ));
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_reason_not_a_panic() {
        let mut resolver = Resolver::default();
        for target in ["no port here", "host:99999"] {
            let Resolution::Pending { lookup, .. } = resolver.resolve(SLOT, target) else {
                panic!("{target}: no lookup");
            };
            let Err(reason) = lookup.answer().await else {
                panic!("{target} resolved");
            };
            assert!(
                reason.starts_with(&format!("resolve {target}: ")),
                "{reason}"
            );
        }
    }
}
