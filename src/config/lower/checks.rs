//! The per-service checks: `[service.NAME.ready]`, `[service.NAME.health]`, the probes
//! they share, and the `watchdog` key, with the rules that tie them to the rest of the
//! service (`oneshot`, `ready.notify`).
//!
//! Part of the per-table pass: like the rest of `lower`, it reports every problem and
//! never stops at the first, and it decides nothing that needs another table. A probe is
//! only checked for form (`host:port`, an `http://` URL, a non-empty command); whether
//! the host resolves or the program exists is for the probe to find out at run time,
//! since a file may be checked on another machine.

use super::{Key, Lowerer, Value, join, sorted};
use crate::config::values;
use crate::spec::{HealthSpec, Probe, ReadyCheck, ReadySpec, ServiceSpec};
use std::ops::Range;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

const READY_KEYS: &[&str] = &[
    "tcp", "http", "exec", "notify", "fd", "interval", "timeout", "deadline",
];
const HEALTH_KEYS: &[&str] = &[
    "tcp",
    "http",
    "exec",
    "interval",
    "timeout",
    "start_period",
    "failures",
    "max_memory",
];
/// The keys that set the check of each table.
const READY_CHECKS: &[&str] = &["tcp", "http", "exec", "notify", "fd"];
const HEALTH_CHECKS: &[&str] = &["tcp", "http", "exec", "max_memory"];
/// File descriptors a `ready.fd` may name: 0, 1 and 2 are the service's stdio.
const READY_FDS: Range<i64> = 3..1024;

/// Where the check-related keys of one service are written, for the rules that span
/// them (checked once the whole service table has been read, whatever the key order).
#[derive(Default)]
pub(super) struct CheckKeys {
    pub ready: Option<Range<usize>>,
    pub health: Option<Range<usize>>,
    pub watchdog: Option<Range<usize>>,
}

/// A key that sets a check (or a probe), kept so "two checks" can name both.
struct CheckKey {
    name: String,
    span: Range<usize>,
}

impl Lowerer<'_> {
    /// `[service.NAME.ready]` or `ready = { ... }`: exactly one check, plus timings.
    pub(super) fn ready(
        &mut self,
        service: &str,
        key: &Key<'_>,
        value: &Value<'_>,
    ) -> Option<ReadySpec> {
        let path = join(service, "ready");
        let table = self.check_table(&path, value, "{ tcp = \"127.0.0.1:5432\" }")?;
        let mut checks: Vec<CheckKey> = Vec::new();
        let mut check = None;
        // Keys that only mean something for a probe, checked once the check is known.
        let mut polling_keys: Vec<(String, Range<usize>)> = Vec::new();
        let mut notify_false = false;
        let mut misspelt_check = false;
        let mut ok = true;
        let (mut interval, mut timeout, mut deadline) = (None, None, None);
        for (item_key, item) in sorted(table) {
            let name = item_key.get_ref().as_ref();
            let item_path = join(&path, name);
            let found = CheckKey {
                name: name.to_string(),
                span: item_key.span(),
            };
            match name {
                "tcp" | "http" | "exec" => {
                    checks.push(found);
                    check = self.probe(name, &item_path, item).map(ReadyCheck::Probe);
                    ok &= check.is_some();
                }
                "notify" => match self.boolean(&item_path, item) {
                    Some(true) => {
                        checks.push(found);
                        check = Some(ReadyCheck::Notify);
                    }
                    Some(false) => notify_false = true,
                    None => {
                        // A broken value was still meant as the check: no "no check" too.
                        checks.push(found);
                        ok = false;
                    }
                },
                "fd" => {
                    checks.push(found);
                    let expected = "a file descriptor number from 3 to 1023 (0, 1 and 2 are the service's stdin, stdout and stderr)";
                    let fd = self.bounded(&item_path, item, READY_FDS, expected);
                    check = fd.and_then(|fd| i32::try_from(fd).ok()).map(ReadyCheck::Fd);
                    ok &= check.is_some();
                }
                "interval" | "timeout" => {
                    polling_keys.push((name.to_string(), item_key.span()));
                    let duration = self.positive_duration(&item_path, item);
                    ok &= duration.is_some();
                    if name == "interval" {
                        interval = duration;
                    } else {
                        timeout = duration;
                    }
                }
                "deadline" => {
                    deadline = self.positive_duration(&item_path, item);
                    ok &= deadline.is_some();
                }
                _ => {
                    // `tpc = ...` gets "did you mean `tcp`?"; "no check" too would be noise.
                    misspelt_check |= values::suggest(name, READY_CHECKS.iter().copied()).is_some();
                    self.misplaced_check_key(service, "ready", item_key, READY_KEYS);
                    ok = false;
                }
            }
        }
        match checks.as_slice() {
            [] if misspelt_check => return None,
            [] => {
                let hint = if notify_false {
                    " (`notify = false` sets none)"
                } else {
                    ""
                };
                self.error(
                    key.span(),
                    format!(
                        "`{path}`: no check is set{hint}; expected exactly one of tcp = \"host:port\", http = \"http://...\", exec = [\"cmd\", ...], notify = true, fd = N"
                    ),
                );
                return None;
            }
            [_] => {}
            [first, rest @ ..] => {
                self.several_checks(
                    &path,
                    first,
                    rest,
                    "exactly one of tcp, http, exec, notify = true, fd",
                );
                return None;
            }
        }
        if let Some(ReadyCheck::Notify | ReadyCheck::Fd(_)) = &check {
            let waits_for = if check == Some(ReadyCheck::Notify) {
                "`notify` waits for READY=1"
            } else {
                "`fd` waits for a newline on the descriptor"
            };
            for (name, span) in polling_keys {
                self.error(
                    span,
                    format!(
                        "`{path}.{name}`: only probe checks (tcp, http, exec) use `{name}`; {waits_for} until `deadline`; remove it"
                    ),
                );
                ok = false;
            }
        }
        let mut ready = ReadySpec::new(check.filter(|_| ok)?);
        ready.interval = interval.unwrap_or(ready.interval);
        ready.timeout = timeout.unwrap_or(ready.timeout);
        ready.deadline = deadline.unwrap_or(ready.deadline);
        Some(ready)
    }

    /// `[service.NAME.health]` or `health = { ... }`: at most one probe and/or
    /// `max_memory`, plus timings and the failure threshold.
    pub(super) fn health(
        &mut self,
        service: &str,
        key: &Key<'_>,
        value: &Value<'_>,
    ) -> Option<HealthSpec> {
        let path = join(service, "health");
        let table = self.check_table(&path, value, "{ exec = [\"pg_isready\", \"-q\"] }")?;
        let mut health = HealthSpec::new(None);
        let mut probes: Vec<CheckKey> = Vec::new();
        // A probe or max_memory, even a broken or misspelt one: something was meant to
        // be checked, so "nothing to check" would be noise.
        let mut meant_a_check = false;
        let mut meant_a_probe = false;
        // Keys that only tune a probe, checked once we know whether there is one.
        let mut probe_only_keys: Vec<(String, Range<usize>)> = Vec::new();
        let mut ok = true;
        for (item_key, item) in sorted(table) {
            let name = item_key.get_ref().as_ref();
            let item_path = join(&path, name);
            if matches!(name, "timeout" | "start_period" | "failures") {
                probe_only_keys.push((name.to_string(), item_key.span()));
            }
            let accepted = match name {
                "tcp" | "http" | "exec" => {
                    meant_a_probe = true;
                    probes.push(CheckKey {
                        name: name.to_string(),
                        span: item_key.span(),
                    });
                    self.probe(name, &item_path, item)
                        .map(|probe| health.probe = Some(probe))
                }
                "interval" => self
                    .positive_duration(&item_path, item)
                    .map(|interval| health.interval = interval),
                "timeout" => self
                    .positive_duration(&item_path, item)
                    .map(|timeout| health.timeout = timeout),
                "start_period" => self
                    .duration(&item_path, item)
                    .map(|period| health.start_period = period),
                "failures" => {
                    let expected = "an integer >= 1 (consecutive failures before a restart)";
                    self.bounded(&item_path, item, 1..i64::from(u32::MAX) + 1, expected)
                        .and_then(|count| u32::try_from(count).ok())
                        .map(|count| health.failures = count)
                }
                "max_memory" => {
                    meant_a_check = true;
                    self.size(&item_path, item)
                        .map(|bytes| health.max_memory = Some(bytes))
                }
                "notify" | "fd" => {
                    meant_a_check = true;
                    self.error(
                        item_key.span(),
                        format!(
                            "`{item_path}`: only `ready` supports notify and fd; a health check is a probe minder runs itself (tcp, http or exec) or max_memory (for keep-alive messages over the notify socket, set `watchdog` on the service with `ready.notify = true`)"
                        ),
                    );
                    None
                }
                _ => {
                    let close = values::suggest(name, HEALTH_CHECKS.iter().copied());
                    meant_a_check |= close.is_some();
                    meant_a_probe |= close.is_some_and(|close| close != "max_memory");
                    self.misplaced_check_key(service, "health", item_key, HEALTH_KEYS);
                    None
                }
            };
            ok &= accepted.is_some();
        }
        if let [first, rest @ ..] = probes.as_slice()
            && !rest.is_empty()
        {
            self.several_checks(&path, first, rest, "at most one probe of tcp, http, exec");
            return None;
        }
        if probes.is_empty() && !meant_a_check {
            self.error(
                key.span(),
                format!(
                    "`{path}`: nothing to check; expected a probe (tcp = \"host:port\", http = \"http://...\" or exec = [\"cmd\", ...]) and/or max_memory = \"512MiB\""
                ),
            );
            return None;
        }
        if !meant_a_probe {
            // The memory guard restarts at the first reading above the limit, from
            // exec on: a timeout, a grace period or a failure count would be ignored.
            for (name, span) in probe_only_keys {
                self.error(
                    span,
                    format!(
                        "`{path}.{name}`: only a probe (tcp, http or exec) uses `{name}`; max_memory restarts the service at the first reading above the limit; remove it or add a probe"
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(health)
    }

    /// The rules between a service's checks and its other keys, once all are read.
    pub(super) fn check_rules(&mut self, path: &str, spec: &ServiceSpec, keys: CheckKeys) {
        if spec.oneshot {
            if let Some(span) = keys.ready {
                self.error(
                    span,
                    format!(
                        "`{path}.ready`: a oneshot service cannot have a ready check: it counts as ready once it exits with a success code"
                    ),
                );
            }
            if let Some(span) = keys.health {
                self.error(
                    span,
                    format!(
                        "`{path}.health`: a oneshot service cannot have health checks: it is judged by its exit code (and retried after a failure), while health checks restart long-running services"
                    ),
                );
            }
            if let Some(span) = keys.watchdog {
                self.error(
                    span,
                    format!(
                        "`{path}.watchdog`: a oneshot service cannot have a watchdog: the watchdog is armed once the service is ready and needs `ready.notify`, which a oneshot cannot have"
                    ),
                );
            }
            return;
        }
        let Some(span) = keys.watchdog else {
            return;
        };
        let needs = "a watchdog needs `ready.notify = true` (WATCHDOG=1 arrives on the notify socket, which only notify sets up)";
        match (keys.ready, &spec.ready) {
            (_, Some(ready)) if ready.check == ReadyCheck::Notify => {}
            // The ready table is broken and already reported: it may well be notify.
            (Some(_), None) => {}
            (None, _) => self.error(
                span,
                format!("`{path}.watchdog`: {needs}; add it in [{path}.ready]"),
            ),
            (Some(_), Some(ready)) => {
                let uses = match &ready.check {
                    ReadyCheck::Probe(Probe::Tcp { .. }) => "tcp",
                    ReadyCheck::Probe(Probe::Http { .. }) => "http",
                    ReadyCheck::Probe(Probe::Exec { .. }) => "exec",
                    ReadyCheck::Fd(_) => "fd",
                    ReadyCheck::Notify => "notify",
                };
                self.error(
                    span,
                    format!(
                        "`{path}.watchdog`: {needs}, but `{path}.ready` uses `{uses}`; use notify there, or remove `watchdog`"
                    ),
                );
            }
        }
    }

    /// A duration that must not be zero (an interval, timeout, deadline or watchdog).
    pub(super) fn positive_duration(&mut self, path: &str, value: &Value<'_>) -> Option<Duration> {
        let duration = self.duration(path, value)?;
        if duration.is_zero() {
            self.wrong(path, value, "a duration greater than zero");
            return None;
        }
        Some(duration)
    }

    fn check_table<'v, 'i>(
        &mut self,
        path: &str,
        value: &'v Value<'i>,
        example: &str,
    ) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.wrong(
                    path,
                    value,
                    &format!("a table like {example}, or a [{path}] section"),
                );
                None
            }
        }
    }

    /// The value of a `tcp`, `http` or `exec` key (`kind`).
    fn probe(&mut self, kind: &str, path: &str, value: &Value<'_>) -> Option<Probe> {
        match kind {
            "tcp" => {
                let expected = "a \"host:port\" string like \"127.0.0.1:5432\"";
                let address = self.probe_text(path, value, expected, values::tcp_address)?;
                Some(Probe::Tcp { address })
            }
            "http" => {
                let expected = "a URL string like \"http://127.0.0.1:8080/health\"";
                let url = self.probe_text(path, value, expected, values::http_url)?;
                Some(Probe::Http { url })
            }
            _ => self
                .command(path, value)
                .map(|command| Probe::Exec { command }),
        }
    }

    /// A probe string that `check` accepts, kept as written.
    fn probe_text(
        &mut self,
        path: &str,
        value: &Value<'_>,
        expected: &str,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        self.parsed_string(path, value, expected, |text| {
            check(text).map(|()| text.to_string())
        })
    }

    /// A string that `parse` turns into a value; its complaint becomes an error at the
    /// value, with what was found.
    fn parsed_string<T>(
        &mut self,
        path: &str,
        value: &Value<'_>,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.string(path, value, expected)?;
        match parse(text) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.error(
                    value.span(),
                    format!(
                        "`{path}`: {message}; found {}",
                        super::describe(value.get_ref())
                    ),
                );
                None
            }
        }
    }

    /// `max_memory`: a size string or a TOML integer of bytes.
    pub(super) fn size(&mut self, path: &str, value: &Value<'_>) -> Option<u64> {
        let expected = "a size like \"512MiB\" or a number of bytes";
        if let DeValue::Integer(_) = value.get_ref() {
            let bytes = self.bounded(
                path,
                value,
                1..i64::MAX,
                &format!("{expected}, greater than zero"),
            )?;
            return u64::try_from(bytes).ok();
        }
        self.parsed_string(path, value, expected, values::size)
    }

    /// "Two checks are set" at the second, naming every one with its line.
    fn several_checks(&mut self, path: &str, first: &CheckKey, rest: &[CheckKey], expected: &str) {
        let named: Vec<String> = std::iter::once(first)
            .chain(rest)
            .map(|check| {
                let line = self.report.line(check.span.start);
                format!("`{}` (line {line})", check.name)
            })
            .collect();
        let span = rest
            .first()
            .map_or(first.span.clone(), |second| second.span.clone());
        self.error(
            span,
            format!(
                "`{path}`: {} checks are set, {}; expected {expected}",
                named.len(),
                and_list(&named)
            ),
        );
    }

    /// An unknown key in a ready or health table; a key that belongs to the other table
    /// (or to the service) says where it goes instead of only "unknown".
    fn misplaced_check_key(&mut self, service: &str, table: &str, key: &Key<'_>, known: &[&str]) {
        let name = key.get_ref().as_ref();
        let path = join(&join(service, table), name);
        let home = match (table, name) {
            ("ready", "start_period" | "failures" | "max_memory") => {
                Some(format!("[{service}.health]"))
            }
            ("health", "deadline") => Some(format!("[{service}.ready]")),
            (_, "watchdog") => Some(format!("[{service}] itself")),
            _ => None,
        };
        match home {
            Some(home) => self.error(
                key.span(),
                format!("`{path}`: `{name}` belongs in {home}, not in [{service}.{table}]"),
            ),
            None => self.unknown_key(&join(service, table), key, known, &[]),
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
