//! The event loop: owns the supervision core and performs its effects.

use crate::spec::Spec;

/// How the tree was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// `minder run CONFIG`: services captured, each in its own session.
    Config,
    /// `minder -- cmd`: one service on minder's own stdio and terminal.
    Container,
}

/// Supervise `spec` until it ends; returns minder's exit code.
pub fn run(spec: Spec, mode: RunMode) -> i32 {
    let _ = (spec, mode);
    1
}

/// The spec of container mode: one temporary, significant service `main`.
pub fn container_spec(command: Vec<String>) -> Spec {
    let _ = command;
    unimplemented!()
}

/// `minder run CONFIG -- cmd`: append `main` as the last root child.
pub fn add_main_service(spec: &mut Spec, command: Vec<String>) -> Result<(), String> {
    let _ = (spec, command);
    Err("not yet".into())
}
