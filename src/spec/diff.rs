//! What a reload would change: the running tree's spec compared with a newly loaded
//! one, as a `Plan` that names every service and group it touches and the config
//! key(s) behind each change.
//!
//! Pure: two `Spec`s in, a `Plan` out, no I/O. The plan is what `minderctl reload
//! --dry-run` shows and what the runtime logs before a reload; the core decides the
//! same things from the lowered trees (matching nodes by where they sit), and the
//! plan's `restart_names` tells it about the changes it cannot see (argv,
//! environment, identity...). A node is identified by its path from the root
//! (`root/backend/api`): a service or group whose path changed has moved, and is
//! stopped and started again, as everything under a moved group is. Any change to a
//! service's own settings restarts it; a group's own settings (strategy, budget...)
//! change without restarting its children. Keys are spelled as in the file
//! (`service.api.env.PORT`, `group.backend.intensity`, `root.strategy`), with the
//! name the user wrote (`service.web.command` for every instance of `web`).

use super::{DaemonSpec, GroupSpec, HealthSpec, NodeSpec, Probe, ReadyCheck, ReadySpec};
use super::{RlimitResource, ServiceSpec, Spec};
use minder_core::spec::BackoffSpec;
use std::collections::HashMap;
use std::fmt;

/// Everything a reload from `old` to `new` changes. Empty when the files mean the
/// same tree (comments, key order, a default written out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Removed services first (in reverse start order, as they stop), then the
    /// services of the new tree that start, restart or move, in start order.
    pub services: Vec<ServiceChange>,
    /// The root if its own settings changed, then removed groups, then added, updated
    /// and moved ones in the new tree's order.
    pub groups: Vec<GroupChange>,
    /// `[daemon]` keys that differ, each with whether it takes effect now.
    pub daemon: Vec<DaemonChange>,
}

/// One service instance the reload touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceChange {
    /// The full instance name (`api`, `web.2`).
    pub name: String,
    pub action: ServiceAction,
    /// The config keys that caused it, in a fixed order (never empty).
    pub keys: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceAction {
    /// New in the file (or a new instance): started in order, readiness-gated.
    Start,
    /// Gone from the file: stopped as a planned stop, never a failure.
    Stop,
    /// Its settings changed: stopped and started with the new ones, not counted
    /// against its group's budget.
    Restart,
    /// It (or a group above it) is under another group now: stopped where it was and
    /// started in its new place.
    Move,
}

/// One group the reload touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupChange {
    pub name: String,
    pub action: GroupAction,
    pub keys: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupAction {
    /// New group: its children start.
    Add,
    /// Gone: its children stop.
    Remove,
    /// Strategy, budget, restart type, `auto_shutdown`, significance or the order of
    /// its children changed: the new values apply, no child restarts for it.
    Update,
    /// Under another group now: it and everything under it stop and start again.
    Move,
}

/// One `[daemon]` key whose value differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonChange {
    /// `daemon.shutdown_timeout`.
    pub key: String,
    pub applies: Applies,
}

/// Whether a running minder takes a changed `[daemon]` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    /// From this reload on.
    Now,
    /// Only when minder itself is restarted: what it configures (a socket, a listener,
    /// the output writers, minder's own log format) is set up once, at start.
    AfterRestart,
}

impl Plan {
    /// Nothing to do: the running tree already is the file's.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.groups.is_empty() && self.daemon.is_empty()
    }

    /// Services whose own settings changed, for the core, which sees only part of a
    /// service's spec (not its argv, environment or identity). Moved, added and
    /// removed ones it finds itself from the trees.
    pub fn restart_names(&self) -> Vec<&str> {
        self.services
            .iter()
            .filter(|change| change.action == ServiceAction::Restart)
            .map(|change| change.name.as_str())
            .collect()
    }

    /// Services that start again (started, restarted or moved): the ones a reload
    /// waits for before it answers.
    pub fn starting(&self) -> impl Iterator<Item = &ServiceChange> {
        self.services
            .iter()
            .filter(|change| change.action != ServiceAction::Stop)
    }
}

impl ServiceAction {
    /// The word used in log lines and in the control protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceAction::Start => "start",
            ServiceAction::Stop => "stop",
            ServiceAction::Restart => "restart",
            ServiceAction::Move => "move",
        }
    }
}

impl GroupAction {
    /// The word used in log lines and in the control protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupAction::Add => "add",
            GroupAction::Remove => "remove",
            GroupAction::Update => "update",
            GroupAction::Move => "move",
        }
    }
}

impl fmt::Display for ServiceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} service {} ({})",
            self.action.as_str(),
            self.name,
            self.keys.join(", ")
        )
    }
}

impl fmt::Display for GroupChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} group {} ({})",
            self.action.as_str(),
            self.name,
            self.keys.join(", ")
        )
    }
}

impl fmt::Display for DaemonChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.applies {
            Applies::Now => write!(f, "{} changed", self.key),
            Applies::AfterRestart => write!(
                f,
                "{} changed: it takes effect only when minder is restarted",
                self.key
            ),
        }
    }
}

/// The plan that turns the tree of `old` into the tree of `new`.
pub fn diff(old: &Spec, new: &Spec) -> Plan {
    let old_tree = Index::new(&old.root);
    let new_tree = Index::new(&new.root);
    let mut plan = Plan::default();

    // Removed services, last started first.
    for entry in old_tree.services.iter().rev() {
        if !new_tree
            .service_names
            .contains_key(entry.spec.name.as_str())
        {
            plan.services.push(ServiceChange {
                name: entry.spec.name.clone(),
                action: ServiceAction::Stop,
                keys: vec![removed_service_key(entry.spec, &new_tree)],
            });
        }
    }
    for entry in &new_tree.services {
        let name = entry.spec.name.as_str();
        let Some(&index) = old_tree.service_names.get(name) else {
            plan.services.push(ServiceChange {
                name: name.to_string(),
                action: ServiceAction::Start,
                keys: vec![added_service_key(entry.spec, &old_tree)],
            });
            continue;
        };
        let before = &old_tree.services[index];
        let mut keys = Vec::new();
        if before.path != entry.path {
            keys.push(move_key(&entry.path, &old_tree, &new_tree));
        }
        let settings = service_keys(before.spec, entry.spec);
        let action = if !keys.is_empty() {
            ServiceAction::Move
        } else {
            ServiceAction::Restart
        };
        keys.extend(settings);
        if !keys.is_empty() {
            plan.services.push(ServiceChange {
                name: name.to_string(),
                action,
                keys,
            });
        }
    }

    let root_keys = group_keys(&old.root, &new.root);
    if !root_keys.is_empty() {
        plan.groups.push(GroupChange {
            name: new.root.name.clone(),
            action: GroupAction::Update,
            keys: root_keys,
        });
    }
    for entry in old_tree.groups.iter().rev() {
        if !new_tree.group_names.contains_key(entry.spec.name.as_str()) {
            plan.groups.push(GroupChange {
                name: entry.spec.name.clone(),
                action: GroupAction::Remove,
                keys: vec![group_prefix(&entry.spec.name)],
            });
        }
    }
    for entry in &new_tree.groups {
        let name = entry.spec.name.as_str();
        let Some(&index) = old_tree.group_names.get(name) else {
            plan.groups.push(GroupChange {
                name: name.to_string(),
                action: GroupAction::Add,
                keys: vec![group_prefix(name)],
            });
            continue;
        };
        let before = &old_tree.groups[index];
        if before.path != entry.path {
            let mut keys = vec![move_key(&entry.path, &old_tree, &new_tree)];
            keys.extend(group_keys(before.spec, entry.spec));
            plan.groups.push(GroupChange {
                name: name.to_string(),
                action: GroupAction::Move,
                keys,
            });
            continue;
        }
        let keys = group_keys(before.spec, entry.spec);
        if !keys.is_empty() {
            plan.groups.push(GroupChange {
                name: name.to_string(),
                action: GroupAction::Update,
                keys,
            });
        }
    }

    plan.daemon = daemon_changes(&old.daemon, &new.daemon);
    plan
}

/// One node of a tree and where it sits.
struct Entry<'a, T> {
    spec: &'a T,
    /// Names of the groups above it, from the root (`["root", "backend"]`).
    path: Vec<&'a str>,
}

/// Every service and group of one tree, in start order, with lookups by name (names
/// are unique in a valid tree).
struct Index<'a> {
    services: Vec<Entry<'a, ServiceSpec>>,
    groups: Vec<Entry<'a, GroupSpec>>,
    service_names: HashMap<&'a str, usize>,
    group_names: HashMap<&'a str, usize>,
    /// The user-given names of services (`web` for `web.0`), for telling a changed
    /// `instances` from an added or removed service.
    base_names: HashMap<&'a str, ()>,
}

impl<'a> Index<'a> {
    fn new(root: &'a GroupSpec) -> Index<'a> {
        let mut index = Index {
            services: Vec::new(),
            groups: Vec::new(),
            service_names: HashMap::new(),
            group_names: HashMap::new(),
            base_names: HashMap::new(),
        };
        let mut path = vec![root.name.as_str()];
        index.walk(root, &mut path);
        index
    }

    fn walk(&mut self, group: &'a GroupSpec, path: &mut Vec<&'a str>) {
        for child in &group.children {
            match child {
                NodeSpec::Service(service) => {
                    self.service_names
                        .insert(service.name.as_str(), self.services.len());
                    self.base_names.insert(service.base_name.as_str(), ());
                    self.services.push(Entry {
                        spec: service,
                        path: path.clone(),
                    });
                }
                NodeSpec::Group(inner) => {
                    self.group_names
                        .insert(inner.name.as_str(), self.groups.len());
                    self.groups.push(Entry {
                        spec: inner,
                        path: path.clone(),
                    });
                    path.push(inner.name.as_str());
                    self.walk(inner, path);
                    path.pop();
                }
            }
        }
    }
}

/// Why a service is gone: its instance was dropped (`service.web.instances`) or its
/// table was (`service.api`).
fn removed_service_key(service: &ServiceSpec, new_tree: &Index<'_>) -> String {
    if new_tree.base_names.contains_key(service.base_name.as_str()) {
        format!("{}.instances", service_prefix(service))
    } else {
        service_prefix(service)
    }
}

/// Why a service is new: more instances, or a new table.
fn added_service_key(service: &ServiceSpec, old_tree: &Index<'_>) -> String {
    if old_tree.base_names.contains_key(service.base_name.as_str()) {
        format!("{}.instances", service_prefix(service))
    } else {
        service_prefix(service)
    }
}

/// The key that moved a node whose new path is `path`: the `children` list of the
/// highest group on that path that is new or moved itself, or else of its parent.
/// A service under a group that moved is moved by that group's new listing.
fn move_key(path: &[&str], old_tree: &Index<'_>, new_tree: &Index<'_>) -> String {
    // Walk down from the root: the first group (below the root) whose own place
    // changed carries the whole subtree with it; its parent's listing is the cause.
    for depth in 1..path.len() {
        let group = path[depth];
        let moved = match (
            old_tree.group_names.get(group),
            new_tree.group_names.get(group),
        ) {
            (Some(&old), Some(&new)) => old_tree.groups[old].path != new_tree.groups[new].path,
            _ => false,
        };
        if moved {
            return children_key(path[depth - 1]);
        }
    }
    children_key(path.last().copied().unwrap_or("root"))
}

fn children_key(group: &str) -> String {
    if group == "root" {
        "root.children".to_string()
    } else {
        format!("group.{group}.children")
    }
}

fn service_prefix(service: &ServiceSpec) -> String {
    format!("service.{}", service.base_name)
}

fn group_prefix(group: &str) -> String {
    if group == "root" {
        "root".to_string()
    } else {
        format!("group.{group}")
    }
}

/// The keys of a service's own table that differ. Destructured field by field, so
/// a new field in `ServiceSpec` does not compile until it is compared here.
fn service_keys(old: &ServiceSpec, new: &ServiceSpec) -> Vec<String> {
    let ServiceSpec {
        name: _,
        base_name: _,
        instance: _,
        command,
        restart,
        working_dir,
        user,
        group,
        env_file,
        env,
        umask,
        rlimits,
        stop_signal,
        stop_timeout,
        success_codes,
        success_signals,
        significant,
        oneshot,
        backoff,
        ready,
        health,
        watchdog,
    } = new;
    let mut keys = Keys::new(service_prefix(new));
    keys.check("command", &old.command, command);
    keys.check("oneshot", &old.oneshot, oneshot);
    keys.check("restart", &old.restart, restart);
    keys.check("working_dir", &old.working_dir, working_dir);
    keys.check("user", &old.user, user);
    keys.check("group", &old.group, group);
    keys.check("env_file", &old.env_file, env_file);
    env_keys(&mut keys, &old.env, env);
    keys.check("umask", &old.umask, umask);
    rlimit_keys(&mut keys, old, rlimits);
    keys.check("stop_signal", &old.stop_signal, stop_signal);
    keys.check("stop_timeout", &old.stop_timeout, stop_timeout);
    keys.check("success_codes", &old.success_codes, success_codes);
    keys.check("success_signals", &old.success_signals, success_signals);
    keys.check("significant", &old.significant, significant);
    backoff_keys(&mut keys, &old.backoff, backoff);
    ready_keys(&mut keys, old.ready.as_ref(), ready.as_ref());
    health_keys(&mut keys, old.health.as_ref(), health.as_ref());
    keys.check("watchdog", &old.watchdog, watchdog);
    keys.into_vec()
}

/// Keys of one table that differ, each spelled `PREFIX.KEY`.
struct Keys {
    prefix: String,
    found: Vec<String>,
}

impl Keys {
    fn new(prefix: String) -> Keys {
        Keys {
            prefix,
            found: Vec::new(),
        }
    }

    fn check<T: PartialEq + ?Sized>(&mut self, key: &str, old: &T, new: &T) {
        if old != new {
            self.add(key);
        }
    }

    fn add(&mut self, key: &str) {
        self.found.push(format!("{}.{key}", self.prefix));
    }

    fn into_vec(self) -> Vec<String> {
        self.found
    }
}

/// One key per variable set, unset or changed; the order of `env` in the file does
/// not matter (a variable can be set only once there).
fn env_keys(keys: &mut Keys, old: &[(String, String)], new: &[(String, String)]) {
    let before: HashMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let after: HashMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // New order first, then the removed ones in their old order: stable output.
    for (name, value) in new {
        if before.get(name.as_str()) != Some(&value.as_str()) {
            keys.add(&format!("env.{name}"));
        }
    }
    for (name, _) in old {
        if !after.contains_key(name.as_str()) {
            keys.add(&format!("env.{name}"));
        }
    }
}

fn rlimit_keys(keys: &mut Keys, old: &ServiceSpec, new: &[super::Rlimit]) {
    let find = |list: &[super::Rlimit], resource: RlimitResource| {
        list.iter()
            .find(|limit| limit.resource == resource)
            .map(|limit| (limit.soft, limit.hard))
    };
    let mut seen: Vec<RlimitResource> = Vec::new();
    for limit in new.iter().chain(old.rlimits.iter()) {
        if seen.contains(&limit.resource) {
            continue;
        }
        seen.push(limit.resource);
        if find(&old.rlimits, limit.resource) != find(new, limit.resource) {
            keys.add(&format!("rlimits.{}", rlimit_name(limit.resource)));
        }
    }
}

/// The name of a resource in `rlimits` (as `config::lower` reads it).
fn rlimit_name(resource: RlimitResource) -> &'static str {
    match resource {
        RlimitResource::Nofile => "nofile",
        RlimitResource::Nproc => "nproc",
        RlimitResource::Core => "core",
        RlimitResource::Memlock => "memlock",
        RlimitResource::Stack => "stack",
        RlimitResource::As => "as",
        RlimitResource::Fsize => "fsize",
        RlimitResource::Cpu => "cpu",
        RlimitResource::Data => "data",
        RlimitResource::Rss => "rss",
    }
}

fn backoff_keys(keys: &mut Keys, old: &BackoffSpec, new: &BackoffSpec) {
    let BackoffSpec {
        initial,
        max,
        multiplier,
        jitter,
        reset_after,
    } = new;
    keys.check("backoff.initial", &old.initial, initial);
    keys.check("backoff.max", &old.max, max);
    // Compared as bits: the values are validated finite numbers, and a change from
    // 2.0 to 2.0 is no change.
    keys.check(
        "backoff.multiplier",
        &old.multiplier.to_bits(),
        &multiplier.to_bits(),
    );
    keys.check("backoff.jitter", &old.jitter.to_bits(), &jitter.to_bits());
    keys.check("backoff.reset_after", &old.reset_after, reset_after);
}

fn ready_keys(keys: &mut Keys, old: Option<&ReadySpec>, new: Option<&ReadySpec>) {
    match (old, new) {
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => keys.add("ready"),
        (Some(old), Some(new)) => {
            let ReadySpec {
                check,
                interval,
                timeout,
                deadline,
            } = new;
            if old.check != *check {
                let (before, after) = (ready_check_key(&old.check), ready_check_key(check));
                keys.add(&format!("ready.{after}"));
                if before != after {
                    keys.add(&format!("ready.{before}"));
                }
            }
            keys.check("ready.interval", &old.interval, interval);
            keys.check("ready.timeout", &old.timeout, timeout);
            keys.check("ready.deadline", &old.deadline, deadline);
        }
    }
}

fn ready_check_key(check: &ReadyCheck) -> &'static str {
    match check {
        ReadyCheck::Probe(probe) => probe_key(probe),
        ReadyCheck::Notify => "notify",
        ReadyCheck::Fd(_) => "fd",
    }
}

fn probe_key(probe: &Probe) -> &'static str {
    match probe {
        Probe::Tcp { .. } => "tcp",
        Probe::Http { .. } => "http",
        Probe::Exec { .. } => "exec",
    }
}

fn health_keys(keys: &mut Keys, old: Option<&HealthSpec>, new: Option<&HealthSpec>) {
    match (old, new) {
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => keys.add("health"),
        (Some(old), Some(new)) => {
            let HealthSpec {
                probe,
                interval,
                timeout,
                start_period,
                failures,
                max_memory,
            } = new;
            if old.probe != *probe {
                let name = |probe: Option<&Probe>| probe.map_or("probe", probe_key);
                let (before, after) = (name(old.probe.as_ref()), name(probe.as_ref()));
                keys.add(&format!("health.{after}"));
                if before != after {
                    keys.add(&format!("health.{before}"));
                }
            }
            keys.check("health.interval", &old.interval, interval);
            keys.check("health.timeout", &old.timeout, timeout);
            keys.check("health.start_period", &old.start_period, start_period);
            keys.check("health.failures", &old.failures, failures);
            keys.check("health.max_memory", &old.max_memory, max_memory);
        }
    }
}

/// The keys of a group's own table that differ. The children list counts only as
/// far as the order of children both trees have: added, removed and moved children
/// are changes of their own.
fn group_keys(old: &GroupSpec, new: &GroupSpec) -> Vec<String> {
    let GroupSpec {
        name,
        strategy,
        intensity,
        period,
        auto_shutdown,
        restart,
        significant,
        children,
    } = new;
    let mut keys = Keys::new(group_prefix(name));
    keys.check("strategy", &old.strategy, strategy);
    keys.check("intensity", &old.intensity, intensity);
    keys.check("period", &old.period, period);
    keys.check("auto_shutdown", &old.auto_shutdown, auto_shutdown);
    keys.check("restart", &old.restart, restart);
    keys.check("significant", &old.significant, significant);
    let names = |list: &[NodeSpec]| -> Vec<String> {
        list.iter().map(|child| child.name().to_string()).collect()
    };
    let (before, after) = (names(&old.children), names(children));
    let kept_before: Vec<&String> = before.iter().filter(|n| after.contains(n)).collect();
    let kept_after: Vec<&String> = after.iter().filter(|n| before.contains(n)).collect();
    if kept_before != kept_after {
        keys.add("children");
    }
    keys.into_vec()
}

/// `[daemon]` keys that differ, and whether a running minder takes each. Destructured
/// field by field, so a new daemon key must be placed in one class or the other.
fn daemon_changes(old: &DaemonSpec, new: &DaemonSpec) -> Vec<DaemonChange> {
    let DaemonSpec {
        shutdown_timeout,
        drain_delay,
        log_format,
        control,
        control_mode,
        control_group,
        metrics_listen,
        log_dir,
        log_max_size,
        log_keep,
        log_timestamps,
        log_overflow,
        state_file,
    } = new;
    let mut changes = Vec::new();
    let mut check = |key: &str, changed: bool, applies: Applies| {
        if changed {
            changes.push(DaemonChange {
                key: format!("daemon.{key}"),
                applies,
            });
        }
    };
    // The core's shutdown bound and where operator stops are remembered are plain
    // values, read when they are needed: a reload changes them.
    check(
        "shutdown_timeout",
        old.shutdown_timeout != *shutdown_timeout,
        Applies::Now,
    );
    check("state_file", old.state_file != *state_file, Applies::Now);
    // The rest configure things minder sets up once, at start: the drain timer of a
    // shutdown, its own log subscriber, the control socket, the metrics listener and
    // the output writers.
    let later = Applies::AfterRestart;
    check("drain_delay", old.drain_delay != *drain_delay, later);
    check("log_format", old.log_format != *log_format, later);
    check("control_socket", old.control != *control, later);
    check("control_mode", old.control_mode != *control_mode, later);
    check("control_group", old.control_group != *control_group, later);
    check(
        "metrics_listen",
        old.metrics_listen != *metrics_listen,
        later,
    );
    check("log_dir", old.log_dir != *log_dir, later);
    check("log_max_size", old.log_max_size != *log_max_size, later);
    check("log_keep", old.log_keep != *log_keep, later);
    check(
        "log_timestamps",
        old.log_timestamps != *log_timestamps,
        later,
    );
    check("log_overflow", old.log_overflow != *log_overflow, later);
    changes
}

#[cfg(test)]
mod tests;
