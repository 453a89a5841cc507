//! Second validation pass: the rules that span tables. Checks that names are unique
//! across services and groups, that every child exists and is listed once, that there
//! are no cycles, that every node is reachable from the root, and that `significant`
//! agrees with the node's restart type and its parent's `auto_shutdown`; then
//! assembles the `Spec` tree, expanding `instances`.
//!
//! Owns nothing about single keys (that is `lower`). Must not panic on any shape of
//! graph a file can describe: every lookup by a user-given name is checked, and tree
//! building is bounded by a visited set and a nesting limit. Every pass is linear in
//! the number of nodes and listings (the cycle check steps on each group once, tree
//! building stops at the nesting limit, "did you mean" is bounded), so a hostile file
//! of 100 000 nested groups is refused as fast as it is parsed.

use super::Diagnostics;
use super::lower::{ChildName, File, RawGroup, RawService};
use super::values::suggest;
use crate::spec::{AutoShutdown, GroupSpec, NodeSpec, RestartType, Spec};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// Deeper nesting than this is refused: no real tree needs it, and it bounds the
/// recursion that builds (and later walks) the tree.
const MAX_DEPTH: usize = 32;

/// The most services one tree may have, each instance counted. A few bytes of
/// `instances = 1024` per table would otherwise make a small file expand into millions
/// of services (gigabytes of memory before anything is reported); no real tree comes
/// near this.
pub(crate) const MAX_SERVICES: u64 = 10_000;

/// How many missing children get a "did you mean" (see `index_children`).
const MAX_SUGGESTIONS: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeRef {
    Service(usize),
    Group(usize),
}

/// Where a node is listed as a child: the listing group and the array entry.
struct Listing {
    parent: String,
    span: Range<usize>,
}

/// Runs the cross-table checks and builds the tree. Returns `None` only when the tree
/// cannot be built at all; callers must still treat any error in `report` as failure.
pub(crate) fn assemble(file: File, report: &mut Diagnostics) -> Option<Spec> {
    let File {
        daemon,
        root,
        groups,
        services,
    } = file;

    let nodes = index_names(&groups, &services, report);
    let listings = index_children(&root, &groups, &nodes, report);
    check_cycles(&groups, &listings, report);
    let root_children = root_children(&root, &groups, &services, &nodes, &listings, report);
    check_significant(&root, &groups, &services, &listings, report);
    let expand = check_service_count(&services, report);

    let mut builder = Builder {
        groups: &groups,
        services: &services,
        nodes: &nodes,
        built: HashSet::new(),
        expand,
        report,
    };
    let mut root_spec = root.spec.clone();
    root_spec.children = builder.children(&root_children, 1);
    Some(Spec {
        daemon,
        root: root_spec,
    })
}

/// Name → node, reporting a name used twice (a group and a service with one name;
/// TOML itself refuses two tables with the same name).
fn index_names(
    groups: &[RawGroup],
    services: &[RawService],
    report: &mut Diagnostics,
) -> HashMap<String, NodeRef> {
    let mut all: Vec<(&str, Range<usize>, NodeRef)> = Vec::new();
    all.extend(groups.iter().enumerate().map(|(index, group)| {
        (
            group.name.as_str(),
            group.name_span.clone(),
            NodeRef::Group(index),
        )
    }));
    all.extend(services.iter().enumerate().map(|(index, service)| {
        (
            service.name.as_str(),
            service.name_span.clone(),
            NodeRef::Service(index),
        )
    }));
    all.sort_by_key(|(_, span, _)| span.start);
    let mut nodes = HashMap::new();
    let mut first_seen: HashMap<&str, Range<usize>> = HashMap::new();
    for (name, span, node) in all {
        if let Some(first) = first_seen.get(name) {
            let line = report.line(first.start);
            report.error(
                &span,
                format!(
                    "the name `{name}` is already used at line {line}; services and groups need distinct names"
                ),
            );
            continue;
        }
        first_seen.insert(name, span);
        nodes.insert(name.to_string(), node);
    }
    nodes
}

/// Child name → where it is listed, reporting missing children and double listings.
/// Groups are visited in file order so "listed twice" points at the later listing.
fn index_children(
    root: &RawGroup,
    groups: &[RawGroup],
    nodes: &HashMap<String, NodeRef>,
    report: &mut Diagnostics,
) -> HashMap<String, Listing> {
    let mut parents: Vec<&RawGroup> = groups.iter().chain(std::iter::once(root)).collect();
    parents.sort_by_key(|group| group.name_span.start);
    let mut listings: HashMap<String, Listing> = HashMap::new();
    // A suggestion compares the name with every node's: offered for the first few
    // missing children only, so a file full of them still costs linear time.
    let mut suggestions_left = MAX_SUGGESTIONS;
    for parent in parents {
        let key = children_key(parent);
        for child in parent.children.iter().flatten() {
            if child.name == parent.name {
                report.error(
                    &child.span,
                    format!(
                        "`{key}`: cycle: group `{}` lists itself as a child",
                        parent.name
                    ),
                );
                continue;
            }
            if !nodes.contains_key(&child.name) {
                let mut message = format!(
                    "`{key}`: no service or group is named {:?}",
                    super::values::short(&child.name)
                );
                let best = if suggestions_left > 0 {
                    suggestions_left -= 1;
                    suggest(&child.name, nodes.keys().map(String::as_str))
                } else {
                    None
                };
                if let Some(best) = best {
                    message.push_str(&format!("; did you mean \"{best}\"?"));
                } else {
                    message
                        .push_str("; expected the name of a [service.NAME] or [group.NAME] table");
                }
                report.error(&child.span, message);
                continue;
            }
            if let Some(first) = listings.get(&child.name) {
                let line = report.line(first.span.start);
                let first_key = if first.parent == "root" {
                    "root.children".to_string()
                } else {
                    format!("group.{}.children", first.parent)
                };
                report.error(
                    &child.span,
                    format!(
                        "`{key}`: `{}` is already listed as a child in `{first_key}` (line {line}); a node has one parent",
                        child.name
                    ),
                );
                continue;
            }
            listings.insert(
                child.name.clone(),
                Listing {
                    parent: parent.name.clone(),
                    span: child.span.clone(),
                },
            );
        }
    }
    listings
}

fn children_key(group: &RawGroup) -> String {
    if group.name == "root" {
        "root.children".to_string()
    } else {
        format!("group.{}.children", group.name)
    }
}

/// Every node has at most one listing, so following parents from a group either ends
/// at the root (or an unlisted group) or comes back: that loop is a cycle. Each cycle
/// is reported once, at the listing of its first member in file order.
///
/// Linear in the number of groups: each group is stepped on by one walk only. A walk
/// stops at a group an earlier walk has seen (whatever lies above it is known), and a
/// group it meets twice closes a cycle.
fn check_cycles(
    groups: &[RawGroup],
    listings: &HashMap<String, Listing>,
    report: &mut Diagnostics,
) {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(groups.len());
    for (position, group) in groups.iter().enumerate() {
        index.entry(group.name.as_str()).or_insert(position);
    }
    // For each group, the walk that first stepped on it and its place in that walk.
    let mut seen: Vec<Option<(usize, usize)>> = vec![None; groups.len()];
    let mut trail: Vec<usize> = Vec::new();
    for start in 0..groups.len() {
        if seen[start].is_some() {
            continue;
        }
        trail.clear();
        let mut current = start;
        loop {
            seen[current] = Some((start, trail.len()));
            trail.push(current);
            let Some(parent) = listings
                .get(&groups[current].name)
                .and_then(|listing| index.get(listing.parent.as_str()).copied())
            else {
                break;
            };
            match seen[parent] {
                None => current = parent,
                Some((walk, place)) if walk == start => {
                    report_cycle(groups, listings, &trail[place..], report);
                    break;
                }
                Some(_) => break,
            }
        }
    }
}

/// Reports the cycle whose members are `members` (group indices, each one listed in the
/// next, the last one in the first), at the listing of its first member in file order.
fn report_cycle(
    groups: &[RawGroup],
    listings: &HashMap<String, Listing>,
    members: &[usize],
    report: &mut Diagnostics,
) {
    let Some(first) = members
        .iter()
        .enumerate()
        .min_by_key(|(_, group)| **group)
        .map(|(place, _)| place)
    else {
        return;
    };
    let Some(own) = groups
        .get(members[first])
        .and_then(|group| listings.get(&group.name))
    else {
        return;
    };
    // `members` runs child → parent; print it parent → child, as listed, from the
    // first member back to itself.
    let mut names: Vec<&str> = members[first..]
        .iter()
        .chain(&members[..first])
        .chain(std::iter::once(&members[first]))
        .filter_map(|group| groups.get(*group).map(|group| group.name.as_str()))
        .collect();
    names.reverse();
    report.error(
        &own.span,
        format!(
            "`group.{}.children`: cycle: {}; no node can contain itself",
            own.parent,
            cycle_text(&names)
        ),
    );
}

/// `a → b → c → a`, with the middle of a long cycle left out so that the message stays
/// one readable line whatever the file holds.
fn cycle_text(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    if names.len() <= SHOWN + 1 {
        return names.join(" → ");
    }
    let head = names[..SHOWN / 2].join(" → ");
    let tail = names[names.len() - SHOWN / 2..].join(" → ");
    let left_out = names.len() - SHOWN;
    format!("{head} → ({left_out} more) → {tail}")
}

/// The root's children: `root.children` if given (then every node must be listed
/// somewhere), else every node not listed as another group's child, in file order.
fn root_children(
    root: &RawGroup,
    groups: &[RawGroup],
    services: &[RawService],
    nodes: &HashMap<String, NodeRef>,
    listings: &HashMap<String, Listing>,
    report: &mut Diagnostics,
) -> Vec<ChildName> {
    let mut unlisted: Vec<ChildName> = groups
        .iter()
        .map(|group| (&group.name, &group.name_span))
        .chain(
            services
                .iter()
                .map(|service| (&service.name, &service.name_span)),
        )
        .filter(|(name, _)| nodes.contains_key(*name) && !listings.contains_key(*name))
        .map(|(name, span)| ChildName {
            name: name.clone(),
            span: span.clone(),
        })
        .collect();
    unlisted.sort_by_key(|child| child.span.start);
    match &root.children {
        Some(children) => {
            for node in &unlisted {
                report.error(
                    &node.span,
                    format!(
                        "`{}` is not listed under any group: add it to `root.children` or to a group's `children`",
                        node.name
                    ),
                );
            }
            children.clone()
        }
        None => unlisted,
    }
}

/// What OTP refuses of `significant`: on a permanent child (it never ends for good),
/// or under a parent whose `auto_shutdown` is "never" (it would mean nothing).
/// Significance acts on the direct parent only, as in OTP.
fn check_significant(
    root: &RawGroup,
    groups: &[RawGroup],
    services: &[RawService],
    listings: &HashMap<String, Listing>,
    report: &mut Diagnostics,
) {
    let by_name: HashMap<&str, &RawGroup> = groups
        .iter()
        .map(|group| (group.name.as_str(), group))
        .collect();
    let significant = services
        .iter()
        .filter_map(|service| {
            let span = service.significant_key.as_ref()?;
            Some(("service", &service.name, span, service.spec.restart))
        })
        .chain(groups.iter().filter_map(|group| {
            let span = group.significant_key.as_ref()?;
            Some(("group", &group.name, span, group.spec.restart))
        }));
    for (kind, name, span, restart) in significant {
        let path = format!("{kind}.{name}.significant");
        // A node no group lists is a child of the root (or unreachable, reported
        // elsewhere).
        let parent = listings
            .get(name)
            .and_then(|listing| by_name.get(listing.parent.as_str()).copied())
            .unwrap_or(root);
        if parent.spec.auto_shutdown == AutoShutdown::Never {
            let parent_key = if std::ptr::eq(parent, root) {
                "root.auto_shutdown".to_string()
            } else {
                format!("group.{}.auto_shutdown", parent.name)
            };
            report.error(
                span,
                format!(
                    "`{path}`: significant = true has no effect while its parent's `{parent_key}` is \"never\"; set it to \"any_significant\" or \"all_significant\""
                ),
            );
        }
        if restart == RestartType::Permanent {
            report.error(
                span,
                format!(
                    "`{path}`: a permanent {kind} cannot be significant (it never ends for good); set `restart` to \"transient\" or \"temporary\""
                ),
            );
        }
    }
}

/// Things that are allowed but probably not what the writer meant, one sentence each
/// (`minder check` prints them; they do not make the file invalid).
pub fn warnings(spec: &Spec) -> Vec<String> {
    fn walk(group: &GroupSpec, is_root: bool, out: &mut Vec<String>) {
        if !is_root
            && group.auto_shutdown != AutoShutdown::Never
            && group.restart == RestartType::Permanent
        {
            out.push(format!(
                "`group.{}`: auto_shutdown is set but restart is \"permanent\", so its parent restarts it as soon as it shuts itself down; set `restart` to \"transient\" or \"temporary\" to let it stay down",
                group.name
            ));
        }
        for child in &group.children {
            if let NodeSpec::Group(inner) = child {
                walk(inner, false, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&spec.root, true, &mut out);
    out
}

/// Refuses a tree of more than `MAX_SERVICES` services, once, at the service that goes
/// past the limit. Returns whether instances may be expanded (if not, the tree is built
/// with one entry per service, only to find the remaining errors).
fn check_service_count(services: &[RawService], report: &mut Diagnostics) -> bool {
    let mut total: u64 = 0;
    for service in services {
        let count = service.instances.map_or(1, u64::from);
        total += count;
        if total > MAX_SERVICES {
            let instances = if count > 1 {
                format!(" with its {count} instances")
            } else {
                String::new()
            };
            report.error(
                &service.name_span,
                format!(
                    "`service.{}`{instances} brings the tree to {total} services (each instance counts), more than the {MAX_SERVICES} minder supervises",
                    service.name
                ),
            );
            return false;
        }
    }
    true
}

struct Builder<'a, 'r> {
    groups: &'a [RawGroup],
    services: &'a [RawService],
    nodes: &'a HashMap<String, NodeRef>,
    /// Names already placed in the tree: a second placement (only possible in a file
    /// that already has a reported error) is skipped rather than recursed into.
    built: HashSet<String>,
    /// False when the tree has too many services (`check_service_count`).
    expand: bool,
    report: &'r mut Diagnostics,
}

impl Builder<'_, '_> {
    fn children(&mut self, children: &[ChildName], depth: usize) -> Vec<crate::spec::NodeSpec> {
        let mut built = Vec::new();
        for child in children {
            let Some(node) = self.nodes.get(&child.name).copied() else {
                continue;
            };
            if !self.built.insert(child.name.clone()) {
                continue;
            }
            match node {
                NodeRef::Service(index) => match self.services.get(index) {
                    Some(service) if self.expand => expand_instances(service, &mut built),
                    Some(service) => built.push(NodeSpec::Service(service.spec.clone())),
                    None => {}
                },
                NodeRef::Group(index) => {
                    let Some(group) = self.groups.get(index) else {
                        continue;
                    };
                    if depth >= MAX_DEPTH {
                        self.report.error(
                            &child.span,
                            format!(
                                "group `{}` is nested more than {MAX_DEPTH} levels deep",
                                group.name
                            ),
                        );
                        continue;
                    }
                    let mut spec: GroupSpec = group.spec.clone();
                    let grandchildren = group.children.clone().unwrap_or_default();
                    spec.children = self.children(&grandchildren, depth + 1);
                    built.push(NodeSpec::Group(spec));
                }
            }
        }
        built
    }
}

/// `instances = N` becomes N consecutive siblings `NAME.0` .. `NAME.N-1`.
fn expand_instances(service: &RawService, out: &mut Vec<NodeSpec>) {
    match service.instances {
        None => out.push(NodeSpec::Service(service.spec.clone())),
        Some(count) => {
            for instance in 0..count {
                let mut spec = service.spec.clone();
                spec.name = format!("{}.{instance}", service.name);
                spec.base_name = service.name.clone();
                spec.instance = Some(instance);
                out.push(NodeSpec::Service(spec));
            }
        }
    }
}
