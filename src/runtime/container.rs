//! The two trees minder builds without (or beyond) a config file: container mode
//! (`minder -- cmd`) and a main process after a config's tree (`minder run CONFIG --
//! cmd`). Both are plain `Spec`s, so the core supervises them like any other tree.

use crate::spec::{AutoShutdown, DaemonSpec, GroupSpec, NodeSpec, RestartType, ServiceSpec, Spec};
use std::time::Duration;

/// The main service's stop timeout: inside Docker's 10 s grace period, so the container
/// still exits through minder (with its log line) rather than by the runtime's SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(8);

/// The name of the service that runs the command given after `--`.
pub const MAIN: &str = "main";

fn main_service(command: Vec<String>) -> ServiceSpec {
    let working_dir = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let mut service = ServiceSpec::new(MAIN, command, working_dir);
    service.restart = RestartType::Temporary;
    service.significant = true;
    service.stop_timeout = STOP_TIMEOUT;
    service
}

/// Container mode: one temporary, significant service `main`, like tini.
pub fn container_spec(command: Vec<String>) -> Spec {
    let mut root = GroupSpec::new("root");
    root.auto_shutdown = AutoShutdown::AnySignificant;
    root.children.push(NodeSpec::Service(main_service(command)));
    Spec {
        daemon: DaemonSpec::default(),
        root,
    }
}

/// `minder run CONFIG -- cmd`: append `main` as the last root child, temporary and
/// significant, and shut the tree down when it ends (`any_significant`).
pub fn add_main_service(spec: &mut Spec, command: Vec<String>) -> Result<(), String> {
    fn taken(group: &GroupSpec) -> bool {
        group.name == MAIN
            || group.children.iter().any(|child| match child {
                NodeSpec::Service(service) => service.base_name == MAIN,
                NodeSpec::Group(inner) => taken(inner),
            })
    }
    if taken(&spec.root) {
        return Err(format!(
            "the config already has a service or group named `{MAIN}`, the name of the command given after `--`"
        ));
    }
    spec.root.auto_shutdown = AutoShutdown::AnySignificant;
    spec.root
        .children
        .push(NodeSpec::Service(main_service(command)));
    Ok(())
}
