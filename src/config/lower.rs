//! First validation pass: walks the parsed TOML tables key by key and lowers each
//! `[daemon]`, `[root]`, `[group.NAME]` and `[service.NAME]` table into a record that
//! keeps the positions the tree pass still needs (names, child references, the keys
//! behind cross-node rules).
//!
//! Owns every per-key rule: which keys exist, their types, ranges and defaults, and the
//! keys refused because minder does not implement them yet. It must not decide anything
//! that needs more than one table (children, cycles, `significant` against the
//! parent's `auto_shutdown`): that is `tree`'s job. It never stops at the first error, and it
//! keeps file order by sorting entries on their spans (the `toml` map sorts by key).

use super::Diagnostics;
use super::values::{self, short, suggest};
use crate::spec::{
    AutoShutdown, BackoffSpec, ControlSocket, DaemonSpec, GroupSpec, LogFormat, LogOverflow,
    RestartType, Rlimit, RlimitResource, ServiceSpec, Strategy,
};
use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

mod checks;

use checks::CheckKeys;

type Key<'i> = Spanned<Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;

/// The most instances one service may ask for: a typo such as `instances = 10000000`
/// must be an error, not an attempt to allocate and spawn millions of processes.
pub(crate) const MAX_INSTANCES: i64 = 1024;

/// The file after the per-table pass, in file order.
pub(crate) struct File {
    pub daemon: DaemonSpec,
    pub root: RawGroup,
    pub groups: Vec<RawGroup>,
    pub services: Vec<RawService>,
}

/// A `[root]` or `[group.NAME]` table; `spec.children` is still empty.
pub(crate) struct RawGroup {
    pub name: String,
    /// Where the name is written (the table header); `0..0` for an absent `[root]`.
    pub name_span: Range<usize>,
    pub spec: GroupSpec,
    /// `None` when the key is absent (allowed for the root only).
    pub children: Option<Vec<ChildName>>,
    /// The `significant` key, when set to true.
    pub significant_key: Option<Range<usize>>,
    /// The `auto_shutdown` key, when set to anything but "never".
    pub auto_shutdown_key: Option<Range<usize>>,
}

/// One entry of a `children` array.
#[derive(Clone)]
pub(crate) struct ChildName {
    pub name: String,
    pub span: Range<usize>,
}

/// A `[service.NAME]` table, not yet expanded into instances.
pub(crate) struct RawService {
    pub name: String,
    pub name_span: Range<usize>,
    pub spec: ServiceSpec,
    pub instances: Option<u32>,
    /// The `significant` key, when set to true.
    pub significant_key: Option<Range<usize>>,
}

const TOP_KEYS: &[&str] = &["daemon", "root", "group", "service"];
const DAEMON_KEYS: &[&str] = &[
    "shutdown_timeout",
    "drain_delay",
    "log_format",
    "control_socket",
    "control_mode",
    "control_group",
    "metrics_listen",
    "log_dir",
    "log_max_size",
    "log_keep",
    "log_timestamps",
    "log_overflow",
    "state_file",
];
const DAEMON_NOT_YET: &[&str] = &[];
const LOG_OVERFLOWS: &[(&str, LogOverflow)] =
    &[("block", LogOverflow::Block), ("drop", LogOverflow::Drop)];
const ROOT_KEYS: &[&str] = &[
    "strategy",
    "intensity",
    "period",
    "auto_shutdown",
    "children",
];
const GROUP_KEYS: &[&str] = &[
    "strategy",
    "intensity",
    "period",
    "auto_shutdown",
    "restart",
    "significant",
    "children",
];
const SERVICE_KEYS: &[&str] = &[
    "command",
    "restart",
    "working_dir",
    "user",
    "group",
    "env",
    "env_file",
    "umask",
    "rlimits",
    "stop_signal",
    "stop_timeout",
    "success_codes",
    "success_signals",
    "significant",
    "oneshot",
    "instances",
    "backoff",
    "ready",
    "health",
    "watchdog",
];
const BACKOFF_KEYS: &[&str] = &["initial", "max", "multiplier", "jitter", "reset_after"];

const STRATEGIES: &[(&str, Strategy)] = &[
    ("one_for_one", Strategy::OneForOne),
    ("one_for_all", Strategy::OneForAll),
    ("rest_for_one", Strategy::RestForOne),
];
const AUTO_SHUTDOWNS: &[(&str, AutoShutdown)] = &[
    ("never", AutoShutdown::Never),
    ("any_significant", AutoShutdown::AnySignificant),
    ("all_significant", AutoShutdown::AllSignificant),
];
const RESTARTS: &[(&str, RestartType)] = &[
    ("permanent", RestartType::Permanent),
    ("always", RestartType::Permanent),
    ("transient", RestartType::Transient),
    ("on-failure", RestartType::Transient),
    ("temporary", RestartType::Temporary),
    ("never", RestartType::Temporary),
];
const LOG_FORMATS: &[(&str, LogFormat)] = &[("text", LogFormat::Text), ("json", LogFormat::Json)];
pub(crate) const RLIMITS: &[(&str, RlimitResource)] = &[
    ("nofile", RlimitResource::Nofile),
    ("nproc", RlimitResource::Nproc),
    ("core", RlimitResource::Core),
    ("memlock", RlimitResource::Memlock),
    ("stack", RlimitResource::Stack),
    ("as", RlimitResource::As),
    ("fsize", RlimitResource::Fsize),
    ("cpu", RlimitResource::Cpu),
    ("data", RlimitResource::Data),
    ("rss", RlimitResource::Rss),
];
/// `rlimits` value meaning no limit (`RLIM_INFINITY`).
pub(crate) const UNLIMITED: u64 = u64::MAX;

/// Lowers a whole parsed document. Never fails: problems go to `report`, and a
/// placeholder keeps each named node so one bad table does not cause follow-on
/// "missing child" errors elsewhere.
pub(crate) fn lower_document(
    document: &DeTable<'_>,
    base_dir: &Path,
    report: &mut Diagnostics,
) -> File {
    let mut lowerer = Lowerer { report, base_dir };
    let mut file = File {
        daemon: DaemonSpec::default(),
        root: RawGroup {
            name: "root".to_string(),
            name_span: 0..0,
            spec: GroupSpec::new("root"),
            children: None,
            significant_key: None,
            auto_shutdown_key: None,
        },
        groups: Vec::new(),
        services: Vec::new(),
    };
    for (key, value) in sorted(document) {
        match key.get_ref().as_ref() {
            "daemon" => {
                if let Some(table) = lowerer.table("daemon", value) {
                    file.daemon = lowerer.daemon(table);
                }
            }
            "root" => {
                if let Some(table) = lowerer.table("root", value) {
                    file.root = lowerer.group("root", "root", key.span(), table, true);
                }
            }
            "group" => {
                if let Some(table) = lowerer.named_tables("group", value) {
                    for (name, body) in sorted(table) {
                        let path = format!("group.{}", name.get_ref());
                        lowerer.check_name(&path, name);
                        if let Some(body) = lowerer.table(&path, body) {
                            let raw =
                                lowerer.group(&path, name.get_ref(), name.span(), body, false);
                            file.groups.push(raw);
                        }
                    }
                }
            }
            "service" => {
                if let Some(table) = lowerer.named_tables("service", value) {
                    for (name, body) in sorted(table) {
                        let path = format!("service.{}", name.get_ref());
                        lowerer.check_name(&path, name);
                        if let Some(body) = lowerer.table(&path, body) {
                            let raw = lowerer.service(&path, name, body);
                            file.services.push(raw);
                        }
                    }
                }
            }
            _ => lowerer.unknown_key("", key, TOP_KEYS, &[]),
        }
    }
    file
}

/// A table's entries in the order they are written in the file.
fn sorted<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// How an error message shows the value it found.
pub(crate) fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(text) => format!("{:?}", short(text)),
        DeValue::Integer(integer) => format!("integer {}", integer.as_str()),
        DeValue::Float(float) => format!("float {}", float.as_str()),
        DeValue::Boolean(flag) => format!("boolean {flag}"),
        DeValue::Datetime(datetime) => format!("datetime {datetime}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

struct Lowerer<'r> {
    report: &'r mut Diagnostics,
    base_dir: &'r Path,
}

impl Lowerer<'_> {
    fn error(&mut self, span: Range<usize>, message: String) {
        self.report.error(&span, message);
    }

    /// "`path`: expected X, found Y" at the value.
    fn wrong(&mut self, path: &str, value: &Value<'_>, expected: &str) {
        let found = describe(value.get_ref());
        self.error(
            value.span(),
            format!("`{path}`: expected {expected}, found {found}"),
        );
    }

    fn unknown_key(&mut self, path: &str, key: &Key<'_>, known: &[&str], not_yet: &[&str]) {
        let name = key.get_ref().as_ref();
        let full = join(path, name);
        if not_yet.contains(&name) {
            self.error(
                key.span(),
                format!(
                    "`{full}` is not supported yet: this version of minder does not implement it; remove it"
                ),
            );
            return;
        }
        let mut message = format!("unknown key `{full}`");
        match suggest(name, known.iter().copied()) {
            Some(best) => message.push_str(&format!("; did you mean `{best}`?")),
            None => message.push_str(&format!("; expected one of: {}", known.join(", "))),
        }
        self.error(key.span(), message);
    }

    fn check_name(&mut self, path: &str, name: &Key<'_>) {
        if let Err(message) = values::check_name(name.get_ref()) {
            self.error(name.span(), format!("`{path}`: {message}"));
        }
    }

    fn table<'v, 'i>(&mut self, path: &str, value: &'v Value<'i>) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.wrong(path, value, &format!("a table (write it as [{path}])"));
                None
            }
        }
    }

    /// `[service]` / `[group]`: a table whose entries are named tables.
    fn named_tables<'v, 'i>(
        &mut self,
        path: &str,
        value: &'v Value<'i>,
    ) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.wrong(
                    path,
                    value,
                    &format!("one table per {path}, written as [{path}.NAME]"),
                );
                None
            }
        }
    }

    fn string<'v>(&mut self, path: &str, value: &'v Value<'_>, expected: &str) -> Option<&'v str> {
        match value.get_ref() {
            DeValue::String(text) if text.contains('\0') => {
                self.error(
                    value.span(),
                    format!("`{path}`: expected {expected}, found a string with a NUL character"),
                );
                None
            }
            DeValue::String(text) => Some(text.as_ref()),
            _ => {
                self.wrong(path, value, expected);
                None
            }
        }
    }

    fn nonempty_string(&mut self, path: &str, value: &Value<'_>, expected: &str) -> Option<String> {
        let text = self.string(path, value, expected)?;
        if text.is_empty() {
            self.wrong(path, value, expected);
            return None;
        }
        Some(text.to_string())
    }

    fn integer(&mut self, path: &str, value: &Value<'_>, expected: &str) -> Option<i64> {
        if let DeValue::Integer(integer) = value.get_ref() {
            let digits: String = integer.as_str().chars().filter(|c| *c != '_').collect();
            if let Ok(number) = i64::from_str_radix(&digits, integer.radix()) {
                return Some(number);
            }
        }
        self.wrong(path, value, expected);
        None
    }

    fn bounded(
        &mut self,
        path: &str,
        value: &Value<'_>,
        range: Range<i64>,
        expected: &str,
    ) -> Option<i64> {
        let number = self.integer(path, value, expected)?;
        if range.contains(&number) {
            Some(number)
        } else {
            self.wrong(path, value, expected);
            None
        }
    }

    fn float(&mut self, path: &str, value: &Value<'_>, expected: &str) -> Option<f64> {
        let number = match value.get_ref() {
            DeValue::Float(float) => float.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(_) => {
                let digits = match value.get_ref() {
                    DeValue::Integer(integer) => {
                        i64::from_str_radix(&integer.as_str().replace('_', ""), integer.radix())
                            .ok()
                    }
                    _ => None,
                };
                // Precision loss is irrelevant for the small factors this is used for.
                #[allow(clippy::cast_precision_loss)]
                digits.map(|number| number as f64)
            }
            _ => None,
        };
        match number {
            Some(number) if number.is_finite() => Some(number),
            _ => {
                self.wrong(path, value, expected);
                None
            }
        }
    }

    fn float_in(
        &mut self,
        path: &str,
        value: &Value<'_>,
        range: std::ops::RangeInclusive<f64>,
        expected: &str,
    ) -> Option<f64> {
        let number = self.float(path, value, expected)?;
        if range.contains(&number) {
            Some(number)
        } else {
            self.wrong(path, value, expected);
            None
        }
    }

    fn boolean(&mut self, path: &str, value: &Value<'_>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            _ => {
                self.wrong(path, value, "true or false");
                None
            }
        }
    }

    fn duration(&mut self, path: &str, value: &Value<'_>) -> Option<Duration> {
        let expected = "a duration string like \"250ms\", \"10s\" or \"5m\"";
        let text = self.string(path, value, expected)?;
        match values::duration(text) {
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(
                    value.span(),
                    format!("`{path}`: {message}, found {}", describe(value.get_ref())),
                );
                None
            }
        }
    }

    /// One of a fixed set of words, with a suggestion for a near miss.
    fn choice<T: Copy>(
        &mut self,
        path: &str,
        value: &Value<'_>,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
        let expected = format!("one of {}", quoted_list(&words));
        let text = self.string(path, value, &expected)?;
        if let Some((_, choice)) = choices.iter().find(|(word, _)| *word == text) {
            return Some(*choice);
        }
        let mut message = format!(
            "`{path}`: expected {expected}, found {}",
            describe(value.get_ref())
        );
        if let Some(best) = suggest(text, words.iter().copied()) {
            message.push_str(&format!("; did you mean \"{best}\"?"));
        }
        self.error(value.span(), message);
        None
    }

    /// A path, made absolute against the config file's directory.
    fn path(&mut self, path: &str, value: &Value<'_>) -> Option<PathBuf> {
        let text = self.nonempty_string(path, value, "a non-empty path")?;
        Some(self.base_dir.join(text))
    }

    fn daemon(&mut self, table: &DeTable<'_>) -> DaemonSpec {
        let mut daemon = DaemonSpec::default();
        let mut drain_delay_span = None;
        for (key, value) in sorted(table) {
            let path = join("daemon", key.get_ref());
            match key.get_ref().as_ref() {
                "shutdown_timeout" => {
                    if let Some(timeout) = self.duration(&path, value) {
                        daemon.shutdown_timeout = timeout;
                    }
                }
                "drain_delay" => {
                    if let Some(delay) = self.duration(&path, value) {
                        daemon.drain_delay = delay;
                        drain_delay_span = Some(value.span());
                    }
                }
                "log_format" => {
                    if let Some(format) = self.choice(&path, value, LOG_FORMATS) {
                        daemon.log_format = format;
                    }
                }
                "control_socket" => {
                    let expected = "a socket path, or \"\" for no control socket";
                    if let Some(text) = self.string(&path, value, expected) {
                        daemon.control = if text.is_empty() {
                            ControlSocket::Disabled
                        } else {
                            ControlSocket::Path(self.base_dir.join(text))
                        };
                    }
                }
                "control_mode" => {
                    if let Some(mode) =
                        self.octal_mode(&path, value, "an octal file mode like \"0660\"")
                    {
                        daemon.control_mode = mode;
                    }
                }
                "control_group" => {
                    daemon.control_group =
                        self.nonempty_string(&path, value, "a group name or gid");
                }
                "metrics_listen" => {
                    let expected = "an address like \"127.0.0.1:9733\", or \"\" for none";
                    if let Some(text) = self.string(&path, value, expected) {
                        if text.is_empty() {
                            daemon.metrics_listen = None;
                        } else {
                            match text.parse::<std::net::SocketAddr>() {
                                Ok(address) => daemon.metrics_listen = Some(address),
                                Err(_) => self.wrong(&path, value, expected),
                            }
                        }
                    }
                }
                "log_dir" => {
                    let expected = "a directory path, or \"\" for minder's stdout/stderr";
                    if let Some(text) = self.string(&path, value, expected) {
                        daemon.log_dir = (!text.is_empty()).then(|| self.base_dir.join(text));
                    }
                }
                "log_max_size" => {
                    if let Some(size) = self.size(&path, value) {
                        if size < 4096 {
                            self.wrong(&path, value, "a size of at least 4KiB");
                        } else {
                            daemon.log_max_size = size;
                        }
                    }
                }
                "log_keep" => {
                    if let Some(keep) =
                        self.bounded(&path, value, 0..1001, "an integer from 0 to 1000")
                    {
                        daemon.log_keep = keep as u32;
                    }
                }
                "log_timestamps" => {
                    if let Some(flag) = self.boolean(&path, value) {
                        daemon.log_timestamps = flag;
                    }
                }
                "log_overflow" => {
                    if let Some(overflow) = self.choice(&path, value, LOG_OVERFLOWS) {
                        daemon.log_overflow = overflow;
                    }
                }
                "state_file" => {
                    let expected = "a file path, or \"\" for none";
                    if let Some(text) = self.string(&path, value, expected) {
                        daemon.state_file = (!text.is_empty()).then(|| self.base_dir.join(text));
                    }
                }
                _ => self.unknown_key("daemon", key, DAEMON_KEYS, DAEMON_NOT_YET),
            }
        }
        if let Some(span) = drain_delay_span
            && daemon.drain_delay > daemon.shutdown_timeout
        {
            self.error(
                span,
                format!(
                    "`daemon.drain_delay`: expected at most `daemon.shutdown_timeout` ({}), since the drain is counted inside it, found {}",
                    values::format_duration(daemon.shutdown_timeout),
                    values::format_duration(daemon.drain_delay)
                ),
            );
        }
        daemon
    }

    fn group(
        &mut self,
        path: &str,
        name: &str,
        name_span: Range<usize>,
        table: &DeTable<'_>,
        is_root: bool,
    ) -> RawGroup {
        let mut group = RawGroup {
            name: name.to_string(),
            name_span: name_span.clone(),
            spec: GroupSpec::new(name),
            children: None,
            significant_key: None,
            auto_shutdown_key: None,
        };
        for (key, value) in sorted(table) {
            let key_path = join(path, key.get_ref());
            match key.get_ref().as_ref() {
                "strategy" => {
                    if let Some(strategy) = self.choice(&key_path, value, STRATEGIES) {
                        group.spec.strategy = strategy;
                    }
                }
                "intensity" => {
                    let expected = "an integer >= 0 (restarts allowed per period)";
                    if let Some(intensity) =
                        self.bounded(&key_path, value, 0..i64::from(u32::MAX) + 1, expected)
                    {
                        group.spec.intensity = u32::try_from(intensity).unwrap_or(u32::MAX);
                    }
                }
                "period" => {
                    if let Some(period) = self.duration(&key_path, value) {
                        if period.is_zero() {
                            self.wrong(&key_path, value, "a duration greater than zero");
                        } else {
                            group.spec.period = period;
                        }
                    }
                }
                "auto_shutdown" => {
                    if let Some(auto) = self.choice(&key_path, value, AUTO_SHUTDOWNS) {
                        group.spec.auto_shutdown = auto;
                        if auto != AutoShutdown::Never {
                            group.auto_shutdown_key = Some(key.span());
                        }
                    }
                }
                "restart" | "significant" if is_root => self.error(
                    key.span(),
                    format!(
                        "`{key_path}`: the root has no parent to restart it or to shut down; set `{}` on a [group.NAME] instead",
                        key.get_ref()
                    ),
                ),
                "restart" => {
                    if let Some(restart) = self.choice(&key_path, value, RESTARTS) {
                        group.spec.restart = restart;
                    }
                }
                "significant" => {
                    if let Some(flag) = self.boolean(&key_path, value) {
                        group.spec.significant = flag;
                        if flag {
                            group.significant_key = Some(key.span());
                        }
                    }
                }
                "children" => group.children = Some(self.children(&key_path, value)),
                _ => {
                    let known = if is_root { ROOT_KEYS } else { GROUP_KEYS };
                    self.unknown_key(path, key, known, &[]);
                }
            }
        }
        if !is_root && group.children.is_none() {
            self.error(
                name_span,
                format!("`{path}`: missing `children`, expected a list of service and group names"),
            );
        }
        group
    }

    fn children(&mut self, path: &str, value: &Value<'_>) -> Vec<ChildName> {
        let expected = "an array of service and group names";
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong(path, value, expected);
            return Vec::new();
        };
        let mut children = Vec::new();
        for item in items.iter() {
            if let Some(name) = self.string(path, item, "a service or group name") {
                children.push(ChildName {
                    name: name.to_string(),
                    span: item.span(),
                });
            }
        }
        children
    }

    fn service(&mut self, path: &str, name: &Key<'_>, table: &DeTable<'_>) -> RawService {
        let mut spec = ServiceSpec::new(name.get_ref(), Vec::new(), self.base_dir.to_path_buf());
        let mut instances = None;
        let mut significant_key = None;
        let mut restart_key = None;
        let mut has_command = false;
        let mut check_keys = CheckKeys::default();
        for (key, value) in sorted(table) {
            let key_path = join(path, key.get_ref());
            match key.get_ref().as_ref() {
                "command" => {
                    has_command = true;
                    if let Some(command) = self.command(&key_path, value) {
                        spec.command = command;
                    }
                }
                "restart" => {
                    restart_key = Some(key.span());
                    if let Some(restart) = self.choice(&key_path, value, RESTARTS) {
                        spec.restart = restart;
                    }
                }
                "working_dir" => {
                    if let Some(dir) = self.path(&key_path, value) {
                        spec.working_dir = dir;
                    }
                }
                "user" => {
                    spec.user = self.nonempty_string(&key_path, value, "a user name or numeric uid");
                }
                "group" => {
                    spec.group = self.nonempty_string(&key_path, value, "a group name or numeric gid");
                }
                "env" => spec.env = self.env(&key_path, value),
                "env_file" => spec.env_file = self.path(&key_path, value),
                "umask" => {
                    spec.umask = self.octal_mode(&key_path, value, "an octal umask string like \"0027\"")
                }
                "rlimits" => spec.rlimits = self.rlimits(&key_path, value),
                "stop_signal" => {
                    if let Some(signal) = self.signal(&key_path, value) {
                        spec.stop_signal = signal;
                    }
                }
                "stop_timeout" => {
                    if let Some(timeout) = self.duration(&key_path, value) {
                        spec.stop_timeout = timeout;
                    }
                }
                "success_codes" => {
                    if let Some(codes) = self.success_codes(&key_path, value) {
                        spec.success_codes = codes;
                    }
                }
                "success_signals" => {
                    if let Some(signals) = self.success_signals(&key_path, value) {
                        spec.success_signals = signals;
                    }
                }
                "significant" => {
                    if let Some(flag) = self.boolean(&key_path, value) {
                        spec.significant = flag;
                        if flag {
                            significant_key = Some(key.span());
                        }
                    }
                }
                "oneshot" => {
                    if let Some(flag) = self.boolean(&key_path, value) {
                        spec.oneshot = flag;
                    }
                }
                "instances" => {
                    let expected = format!("an integer from 1 to {MAX_INSTANCES}");
                    if let Some(count) = self.bounded(&key_path, value, 1..MAX_INSTANCES + 1, &expected) {
                        instances = u32::try_from(count).ok();
                    }
                }
                "backoff" => {
                    if let Some(backoff) = self.backoff(&key_path, value) {
                        spec.backoff = backoff;
                    }
                }
                "ready" => {
                    check_keys.ready = Some(key.span());
                    spec.ready = self.ready(path, key, value);
                }
                "health" => {
                    check_keys.health = Some(key.span());
                    spec.health = self.health(path, key, value);
                }
                "watchdog" => {
                    check_keys.watchdog = Some(key.span());
                    spec.watchdog = self.positive_duration(&key_path, value);
                }
                "auto_shutdown" => self.error(
                    key.span(),
                    format!(
                        "`{key_path}`: auto_shutdown is set on a group (or [root]), not on a service; mark the service with `significant = true` and set auto_shutdown on its group"
                    ),
                ),
                other => {
                    // `comand = ...` already gets "did you mean `command`?"; a second
                    // "missing `command`" for the same line would only add noise.
                    has_command |= suggest(other, ["command"]).is_some();
                    self.unknown_key(path, key, SERVICE_KEYS, &[]);
                }
            }
        }
        if !has_command {
            self.error(
                name.span(),
                format!("`{path}`: missing `command`, expected a string or an array of strings"),
            );
        }
        if spec.oneshot {
            if let Some(span) = restart_key {
                self.error(
                    span,
                    format!(
                        "`{path}.restart`: a oneshot service cannot set `restart` (it is retried after a failure and never restarted after success)"
                    ),
                );
            }
            // A oneshot behaves like a transient service: only a failure is retried.
            spec.restart = RestartType::Transient;
        }
        self.check_rules(path, &spec, check_keys);
        RawService {
            name: name.get_ref().to_string(),
            name_span: name.span(),
            spec,
            instances,
            significant_key,
        }
    }

    fn command(&mut self, path: &str, value: &Value<'_>) -> Option<Vec<String>> {
        let expected = "a command string or a non-empty array of strings";
        let argv = match value.get_ref() {
            DeValue::String(_) => {
                let text = self.string(path, value, expected)?;
                match values::split_command(text) {
                    Ok(argv) => argv,
                    Err(message) => {
                        self.error(
                            value.span(),
                            format!("`{path}`: {message}; found {}", describe(value.get_ref())),
                        );
                        return None;
                    }
                }
            }
            DeValue::Array(items) => {
                let mut argv = Vec::new();
                let mut ok = true;
                for item in items.iter() {
                    match self.string(path, item, "a string (each argument of the command)") {
                        Some(word) => argv.push(word.to_string()),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                argv
            }
            _ => {
                self.wrong(path, value, expected);
                return None;
            }
        };
        match argv.first() {
            None => {
                self.error(
                    value.span(),
                    format!("`{path}`: the command is empty; expected a program and its arguments"),
                );
                None
            }
            Some(program) if program.is_empty() => {
                self.error(
                    value.span(),
                    format!(
                        "`{path}`: the program name is empty; expected a program and its arguments"
                    ),
                );
                None
            }
            Some(_) => Some(argv),
        }
    }

    fn env(&mut self, path: &str, value: &Value<'_>) -> Vec<(String, String)> {
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong(path, value, "a table of strings like { KEY = \"value\" }");
            return Vec::new();
        };
        let mut env = Vec::new();
        for (key, value) in sorted(table) {
            let name = key.get_ref().as_ref();
            let key_path = join(path, name);
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                self.error(
                    key.span(),
                    format!(
                        "`{key_path}`: invalid environment variable name {:?}; expected a non-empty name without `=`",
                        short(name)
                    ),
                );
                continue;
            }
            if let Some(text) =
                self.string(&key_path, value, "a string (quote numbers and booleans)")
            {
                env.push((name.to_string(), text.to_string()));
            }
        }
        env
    }

    /// An octal mode (`umask`, `control_mode`): a string like "0027" or a TOML octal
    /// integer, at most 0777.
    fn octal_mode(&mut self, path: &str, value: &Value<'_>, expected: &str) -> Option<u32> {
        match value.get_ref() {
            // A TOML octal integer (0o027) is unambiguous; a decimal 27 is not.
            DeValue::Integer(integer) if integer.radix() == 8 => {
                match u32::from_str_radix(&integer.as_str().replace('_', ""), 8) {
                    Ok(mask) if mask <= 0o777 => Some(mask),
                    _ => {
                        self.wrong(path, value, expected);
                        None
                    }
                }
            }
            _ => {
                let text = self.string(path, value, expected)?;
                match values::umask_from_str(text) {
                    Ok(mask) => Some(mask),
                    Err(message) => {
                        self.error(
                            value.span(),
                            format!("`{path}`: {message}, found {}", describe(value.get_ref())),
                        );
                        None
                    }
                }
            }
        }
    }

    fn rlimits(&mut self, path: &str, value: &Value<'_>) -> Vec<Rlimit> {
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong(path, value, "a table like { nofile = 65536 }");
            return Vec::new();
        };
        let names: Vec<&str> = RLIMITS.iter().map(|(name, _)| *name).collect();
        let mut limits: Vec<Rlimit> = Vec::new();
        for (key, value) in sorted(table) {
            let key_path = join(path, key.get_ref());
            let Some((_, resource)) = RLIMITS
                .iter()
                .find(|(name, _)| *name == key.get_ref().as_ref())
            else {
                self.unknown_key(path, key, &names, &[]);
                continue;
            };
            let limit = match value.get_ref() {
                DeValue::Table(pair) => self.rlimit_pair(&key_path, value, pair),
                _ => self
                    .rlimit_value(&key_path, value)
                    .map(|limit| (limit, limit)),
            };
            if let Some((soft, hard)) = limit {
                limits.push(Rlimit {
                    resource: *resource,
                    soft,
                    hard,
                });
            }
        }
        limits
    }

    fn rlimit_value(&mut self, path: &str, value: &Value<'_>) -> Option<u64> {
        let expected = "an integer >= 0 or \"unlimited\"";
        match value.get_ref() {
            DeValue::String(text) if text.as_ref() == "unlimited" => Some(UNLIMITED),
            DeValue::String(text) => {
                let mut message = format!(
                    "`{path}`: expected {expected}, found {}",
                    describe(value.get_ref())
                );
                if suggest(text, ["unlimited"]).is_some() {
                    message.push_str("; did you mean \"unlimited\"?");
                }
                self.error(value.span(), message);
                None
            }
            _ => {
                let number = self.bounded(path, value, 0..i64::MAX, expected)?;
                u64::try_from(number).ok()
            }
        }
    }

    fn rlimit_pair(
        &mut self,
        path: &str,
        value: &Value<'_>,
        pair: &DeTable<'_>,
    ) -> Option<(u64, u64)> {
        let mut soft = None;
        let mut hard = None;
        let mut ok = true;
        for (key, item) in sorted(pair) {
            let key_path = join(path, key.get_ref());
            match key.get_ref().as_ref() {
                "soft" => soft = self.rlimit_value(&key_path, item),
                "hard" => hard = self.rlimit_value(&key_path, item),
                _ => {
                    self.unknown_key(path, key, &["soft", "hard"], &[]);
                    ok = false;
                }
            }
        }
        match (soft, hard) {
            (Some(soft), Some(hard)) if ok && soft <= hard => Some((soft, hard)),
            (Some(_), Some(_)) if ok => {
                self.error(
                    value.span(),
                    format!(
                        "`{path}`: the soft limit is above the hard limit; expected soft <= hard"
                    ),
                );
                None
            }
            (None, None) if ok && pair.is_empty() => {
                self.wrong(path, value, "{ soft = N, hard = N } with both keys");
                None
            }
            (Some(_), None) | (None, Some(_)) if ok => {
                self.wrong(
                    path,
                    value,
                    "{ soft = N, hard = N } with both keys (or a single number for both)",
                );
                None
            }
            _ => None,
        }
    }

    fn signal(&mut self, path: &str, value: &Value<'_>) -> Option<i32> {
        let result = match value.get_ref() {
            DeValue::String(text) => values::signal_by_name(text),
            DeValue::Integer(_) => {
                let number = self.integer(path, value, "a signal number")?;
                values::signal_by_number(number).map_err(|expected| (expected, None))
            }
            _ => Err((
                "expected a signal name like \"SIGTERM\" or a signal number".to_string(),
                None,
            )),
        };
        match result {
            Ok(signal) => Some(signal),
            Err((expected, best)) => {
                let mut message =
                    format!("`{path}`: {expected}, found {}", describe(value.get_ref()));
                if let Some(best) = best {
                    message.push_str(&format!("; did you mean \"{best}\"?"));
                }
                self.error(value.span(), message);
                None
            }
        }
    }

    fn success_codes(&mut self, path: &str, value: &Value<'_>) -> Option<Vec<i32>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong(path, value, "an array of exit codes like [0, 2]");
            return None;
        };
        let mut codes = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match self.bounded(path, item, 0..256, "an exit code from 0 to 255") {
                Some(code) => {
                    let code = i32::try_from(code).unwrap_or(0);
                    if !codes.contains(&code) {
                        codes.push(code);
                    }
                }
                None => ok = false,
            }
        }
        ok.then_some(codes)
    }

    /// A list of signals, each a name or a number as `stop_signal` takes it; each
    /// wrong item is reported with its own position.
    fn success_signals(&mut self, path: &str, value: &Value<'_>) -> Option<Vec<i32>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong(
                path,
                value,
                "an array of signals like [\"SIGTERM\", \"SIGINT\"] (or [] for none)",
            );
            return None;
        };
        let mut signals = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match self.signal(path, item) {
                Some(signal) => {
                    if !signals.contains(&signal) {
                        signals.push(signal);
                    }
                }
                None => ok = false,
            }
        }
        ok.then_some(signals)
    }

    fn backoff(&mut self, path: &str, value: &Value<'_>) -> Option<BackoffSpec> {
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong(
                path,
                value,
                "a table like { initial = \"100ms\", max = \"30s\" }",
            );
            return None;
        };
        let mut backoff = BackoffSpec::default();
        let mut ok = true;
        for (key, item) in sorted(table) {
            let key_path = join(path, key.get_ref());
            let accepted = match key.get_ref().as_ref() {
                "initial" => self.duration(&key_path, item).map(|d| backoff.initial = d),
                "max" => self.duration(&key_path, item).map(|d| backoff.max = d),
                "reset_after" => self
                    .duration(&key_path, item)
                    .map(|d| backoff.reset_after = d),
                "multiplier" => self
                    .float_in(&key_path, item, 1.0..=f64::MAX, "a number >= 1.0")
                    .map(|factor| backoff.multiplier = factor),
                "jitter" => self
                    .float_in(&key_path, item, 0.0..=1.0, "a number from 0.0 to 1.0")
                    .map(|fraction| backoff.jitter = fraction),
                _ => {
                    self.unknown_key(path, key, BACKOFF_KEYS, &[]);
                    None
                }
            };
            ok &= accepted.is_some();
        }
        if ok && backoff.initial > backoff.max {
            self.error(
                value.span(),
                format!(
                    "`{path}`: `initial` ({}) is longer than `max` ({}); expected initial <= max",
                    values::format_duration(backoff.initial),
                    values::format_duration(backoff.max)
                ),
            );
            return None;
        }
        ok.then_some(backoff)
    }
}

fn quoted_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|word| format!("\"{word}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
